//! The batching writer: a handle that never blocks and a task that writes to InfluxDB.
//!
//! # Flow
//! [`MetricsHandle::record`] `try_send`s a [`Point`] into a bounded channel (full: the point is
//! dropped and counted). The task drains the channel into a buffer of at most
//! [`MetricsConfig::max_buffered`] encoded points (full: the oldest point is dropped and counted)
//! and writes the oldest [`MetricsConfig::batch_size`] points in one request when that many are
//! waiting or when the oldest has waited [`MetricsConfig::flush_interval`].
//!
//! # Failure semantics
//! * Connection errors, timeouts, HTTP 5xx, 429 and auth errors: the batch stays buffered and is
//!   retried after a delay that starts at [`MetricsConfig::backoff_initial`] and doubles up to
//!   [`MetricsConfig::backoff_max`]; new points keep queueing meanwhile. A success resets the delay.
//! * HTTP 400, 413 and 422 (the database refuses the data itself): the batch is dropped and counted
//!   as `rejected`, since resending the same bytes cannot succeed.
//! * When every handle is gone the task makes up to [`MetricsConfig::shutdown_attempts`] failed
//!   attempts to write what is left, counts the rest as `dropped_shutdown`, and ends.
//!
//! The market never waits for the database: nothing on the recording side awaits or locks.
//!
//! # Cancel safety
//! Aborting the task's `JoinHandle` loses the buffered points (uncounted); drop every handle and
//! await the `JoinHandle` instead to flush.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use influxdb2::models::{DataPoint, WriteDataPoint};
use influxdb2::{Client, ClientBuilder, RequestError};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::task::JoinHandle;
use tokio::time::{sleep, sleep_until, timeout, Instant};

use crate::config::{ConfigError, MetricsConfig};
use crate::schema::Point;
use crate::stats::{Counters, WriterStats};

/// How long one write request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Records points for the writer task. Cheap to clone; every clone feeds the same task.
#[derive(Debug, Clone)]
pub struct MetricsHandle {
    tx: Option<mpsc::Sender<Point>>,
    counters: Arc<Counters>,
}

impl MetricsHandle {
    /// A handle that discards everything (metrics disabled); its counters stay zero.
    pub fn disabled() -> Self {
        MetricsHandle {
            tx: None,
            counters: Arc::new(Counters::default()),
        }
    }

    /// True if points go to a database.
    pub fn is_enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Queues a point for writing. Never blocks and never fails: if the queue is full the point is
    /// dropped and counted in [`WriterStats::dropped_queue_full`].
    pub fn record(&self, point: impl Into<Point>) {
        let Some(tx) = &self.tx else {
            return;
        };
        Counters::add(&self.counters.recorded, 1);
        match tx.try_send(point.into()) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => Counters::add(&self.counters.dropped_queue_full, 1),
            Err(TrySendError::Closed(_)) => Counters::add(&self.counters.dropped_shutdown, 1),
        }
    }

    /// Queues a point, WAITING while the channel is full instead of dropping it: backpressure
    /// for offline producers on their own thread (the simulator), which would rather slow down to
    /// the database's pace than lose points. While the database is down the writer keeps taking
    /// points into its buffer (dropping the oldest beyond [`crate::MetricsConfig::max_buffered`]),
    /// so this never waits for the database itself.
    ///
    /// Inside an async runtime (where blocking would stall it) it behaves as
    /// [`MetricsHandle::record`] and never blocks.
    pub fn record_blocking(&self, point: impl Into<Point>) {
        let Some(tx) = &self.tx else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            self.record(point);
            return;
        }
        Counters::add(&self.counters.recorded, 1);
        if tx.blocking_send(point.into()).is_err() {
            Counters::add(&self.counters.dropped_shutdown, 1);
        }
    }

    /// The writer's counters now.
    pub fn stats(&self) -> WriterStats {
        self.counters.snapshot()
    }
}

/// Starts the writer task.
#[derive(Debug)]
pub struct MetricsWriter;

impl MetricsWriter {
    /// Validates `config` and spawns the writer task on the current tokio runtime. Without a URL
    /// the handle is [`MetricsHandle::disabled`] and the task ends at once.
    ///
    /// The task ends after every clone of the handle is dropped and what was buffered has been
    /// written (or given up on, see the module's failure semantics); its `JoinHandle` then yields
    /// the final counters. (A handle kept only to read [`MetricsHandle::stats`] keeps the task
    /// alive; await the `JoinHandle` instead.)
    ///
    /// # Errors
    /// [`ConfigError`] for a bad URL or setting, or if the HTTP client cannot be built.
    ///
    /// # Panics
    /// Outside a tokio runtime (as `tokio::spawn` does).
    pub fn spawn(
        config: MetricsConfig,
    ) -> Result<(MetricsHandle, JoinHandle<WriterStats>), ConfigError> {
        let Some(url) = config.validate()? else {
            return Ok((
                MetricsHandle::disabled(),
                tokio::spawn(async { WriterStats::default() }),
            ));
        };
        let client = ClientBuilder::new(url.as_str(), config.org.clone(), config.token.clone())
            .build()
            .map_err(|e| ConfigError::Client {
                reason: e.to_string(),
            })?;
        let (tx, rx) = mpsc::channel(config.queue_capacity);
        let counters = Arc::new(Counters::default());
        let task = Task {
            client,
            buffer: VecDeque::with_capacity(config.batch_size.min(config.max_buffered)),
            tag_values: HashMap::new(),
            counters: Arc::clone(&counters),
            rx,
            config,
        };
        tracing::info!(url = %url, "metrics writer started");
        let join = tokio::spawn(task.run());
        Ok((
            MetricsHandle {
                tx: Some(tx),
                counters,
            },
            join,
        ))
    }
}

/// What one write attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    /// Written (or refused as malformed and dropped): move on.
    Done,
    /// The database is unreachable or unwell: keep the batch and retry later.
    Retry,
}

struct Task {
    client: Client,
    config: MetricsConfig,
    rx: mpsc::Receiver<Point>,
    buffer: VecDeque<DataPoint>,
    /// Distinct values seen per tag key (membership only; never iterated).
    tag_values: HashMap<&'static str, HashSet<String>>,
    counters: Arc<Counters>,
}

impl Task {
    async fn run(mut self) -> WriterStats {
        let mut backoff = self.config.backoff_initial;
        let mut backing_off = false;
        // When the next write attempt is due; `None` while the buffer is empty.
        let mut due: Option<Instant> = None;
        loop {
            tokio::select! {
                biased;
                () = sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                    match self.write_batch().await {
                        Attempt::Done => {
                            backoff = self.config.backoff_initial;
                            backing_off = false;
                            due = self.next_due(None);
                        }
                        Attempt::Retry => {
                            backing_off = true;
                            due = Some(Instant::now() + backoff);
                            backoff = (backoff * 2).min(self.config.backoff_max);
                        }
                    }
                }
                received = self.rx.recv() => {
                    let Some(point) = received else { break };
                    self.accept(point);
                    while self.buffer.len() < self.config.batch_size {
                        let Ok(point) = self.rx.try_recv() else { break };
                        self.accept(point);
                    }
                    if !backing_off {
                        due = self.next_due(due);
                    }
                }
            }
        }
        let counters = Arc::clone(&self.counters);
        self.shut_down().await;
        counters.snapshot()
    }

    /// When to write next given the buffer: now for a full batch, after the flush interval for a
    /// partial one (keeping an earlier deadline), never when empty.
    fn next_due(&self, current: Option<Instant>) -> Option<Instant> {
        if self.buffer.is_empty() {
            None
        } else if self.buffer.len() >= self.config.batch_size {
            Some(Instant::now())
        } else {
            Some(current.unwrap_or_else(|| Instant::now() + self.config.flush_interval))
        }
    }

    /// Encodes a point into the buffer, enforcing the cardinality guard and the buffer bound.
    fn accept(&mut self, point: Point) {
        if !self.within_cardinality(&point) {
            Counters::add(&self.counters.dropped_cardinality, 1);
            return;
        }
        let data_point = match point.to_data_point() {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(error = %e, "invalid metrics point dropped");
                Counters::add(&self.counters.invalid, 1);
                return;
            }
        };
        if self.buffer.len() >= self.config.max_buffered {
            self.buffer.pop_front();
            Counters::add(&self.counters.dropped_overflow, 1);
        }
        self.buffer.push_back(data_point);
        self.publish_buffered();
    }

    fn within_cardinality(&mut self, point: &Point) -> bool {
        let max = self.config.max_tag_values;
        let tags = point.tags();
        let fits = tags.iter().all(|(key, value)| {
            self.tag_values
                .get(key)
                .is_none_or(|seen| seen.contains(*value) || seen.len() < max)
        });
        if fits {
            for (key, value) in tags {
                let seen = self.tag_values.entry(key).or_default();
                if !seen.contains(value) {
                    seen.insert(value.to_owned());
                }
            }
        }
        fits
    }

    fn publish_buffered(&self) {
        let n = u64::try_from(self.buffer.len()).unwrap_or(u64::MAX);
        self.counters
            .buffered
            .store(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Writes the oldest batch once.
    async fn write_batch(&mut self) -> Attempt {
        let n = self.buffer.len().min(self.config.batch_size);
        if n == 0 {
            return Attempt::Done;
        }
        let mut body = Vec::with_capacity(n * 128);
        for point in self.buffer.iter().take(n) {
            // Writing into a Vec cannot fail.
            if point.write_data_point_to(&mut body).is_err() {
                Counters::add(&self.counters.invalid, 1);
            }
        }
        let count = u64::try_from(n).unwrap_or(u64::MAX);
        let result = timeout(
            REQUEST_TIMEOUT,
            self.client
                .write_line_protocol(&self.config.org, &self.config.bucket, body),
        )
        .await;
        let error = match result {
            Ok(Ok(())) => {
                self.buffer.drain(..n);
                self.publish_buffered();
                Counters::add(&self.counters.written, count);
                Counters::add(&self.counters.batches, 1);
                tracing::debug!(points = n, "metrics batch written");
                return Attempt::Done;
            }
            Ok(Err(e)) => e,
            Err(_) => {
                let text = format!("write timed out after {REQUEST_TIMEOUT:?}");
                tracing::warn!(error = %text, points = n, "metrics write failed; will retry");
                self.counters.set_error(text);
                Counters::add(&self.counters.retries, 1);
                return Attempt::Retry;
            }
        };
        let text = error.to_string();
        self.counters.set_error(text.clone());
        if is_refused_data(&error) {
            tracing::warn!(error = %text, points = n, "database refused a metrics batch; dropped");
            self.buffer.drain(..n);
            self.publish_buffered();
            Counters::add(&self.counters.rejected, count);
            Attempt::Done
        } else {
            tracing::warn!(error = %text, points = n, "metrics write failed; will retry");
            Counters::add(&self.counters.retries, 1);
            Attempt::Retry
        }
    }

    /// Flushes what is left after every handle is gone, with a bounded number of failures.
    async fn shut_down(mut self) {
        let mut backoff = self.config.backoff_initial;
        let mut failures = 0;
        while !self.buffer.is_empty() && failures < self.config.shutdown_attempts {
            if self.write_batch().await == Attempt::Retry {
                failures += 1;
                if failures < self.config.shutdown_attempts {
                    sleep(backoff).await;
                    backoff = (backoff * 2).min(self.config.backoff_max);
                }
            }
        }
        let left = u64::try_from(self.buffer.len()).unwrap_or(u64::MAX);
        if left > 0 {
            tracing::warn!(
                points = left,
                "metrics writer stopped with unwritten points"
            );
            Counters::add(&self.counters.dropped_shutdown, left);
            self.buffer.clear();
            self.publish_buffered();
        }
        tracing::info!("metrics writer stopped");
    }
}

/// True if the database refused the data itself (resending cannot help).
fn is_refused_data(error: &RequestError) -> bool {
    match error {
        RequestError::Http { status, .. } => matches!(status.as_u16(), 400 | 413 | 422),
        RequestError::Serializing { .. } => true,
        RequestError::ReqwestProcessing { .. } | RequestError::Deserializing { .. } => false,
    }
}
