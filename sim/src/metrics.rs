//! `voltmesh sim --influx-url …`: every market interval of a run as InfluxDB points, stamped with
//! the SIMULATED interval start, so Grafana shows the simulated period (the profiles' year).
//!
//! Per interval [`SimMetrics`] records: one `clearing` (price, range, volume, bid/ask energy, local
//! share, orders, trades, tariffs), one `order` per admitted order, one `trade` per household and
//! side that traded, one `settlement` and one `balance` per bill, and one `grid` (bus voltage
//! range, highest line and transformer loading, upstream power, violations), all through
//! [`voltmesh_metrics::market`] so the node writes the same shapes.
//!
//! # Threads and bounds
//! The simulation is synchronous; the writer runs on its own thread with a current-thread tokio
//! runtime. Recording is [`MetricsHandle::record_blocking`]: when the simulation outruns the
//! database it waits for room in the writer's bounded channel (backpressure, so a simulated year
//! arrives whole) instead of dropping points. While the database is down the writer keeps taking
//! points and drops the oldest beyond its buffer bound; every dropped point is counted
//! ([`WriterStats::dropped`]) and the command reports it in its summary.
//!
//! Without `--influx-url` nothing here runs: the command uses the plain run (observer `()`).

use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;

use voltmesh_metrics::{
    clearing_point, order_point, trade_points, Balances, ConfigError, GridState, MechanismTag,
    MetricsConfig, MetricsHandle, MetricsWriter, Neighborhood, WriterStats,
};

use crate::metrics_observer::{IntervalObserver, IntervalView};

/// Why the metrics writer could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimMetricsError {
    /// The configuration is unusable (bad URL, empty bucket, ...).
    #[error("metrics: {0}")]
    Config(#[from] ConfigError),
    /// The writer thread or its runtime could not start.
    #[error("metrics writer thread: {0}")]
    Thread(#[from] std::io::Error),
    /// The writer thread ended before handing back its handle.
    #[error("metrics writer thread ended while starting")]
    WriterGone,
}

/// Records a run's intervals (an [`IntervalObserver`]) and owns the writer thread.
#[derive(Debug)]
pub struct SimMetrics {
    handle: MetricsHandle,
    neighborhood: Neighborhood,
    balances: Balances,
    writer: Option<JoinHandle<WriterStats>>,
}

impl SimMetrics {
    /// Starts the writer for `config` on its own thread; points are tagged `neighborhood`. With a
    /// disabled `config` (no URL) no thread starts and every point is discarded.
    ///
    /// # Errors
    /// [`SimMetricsError`] if the configuration is invalid or the thread cannot start.
    pub fn start(
        config: MetricsConfig,
        neighborhood: Neighborhood,
    ) -> Result<SimMetrics, SimMetricsError> {
        if config.validate()?.is_none() {
            return Ok(SimMetrics {
                handle: MetricsHandle::disabled(),
                neighborhood,
                balances: Balances::new(),
                writer: None,
            });
        }
        let (tx, rx) = std_mpsc::sync_channel(1);
        let writer = std::thread::Builder::new()
            .name("metrics-writer".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = tx.send(Err(SimMetricsError::Thread(e)));
                        return WriterStats::default();
                    }
                };
                runtime.block_on(async move {
                    match MetricsWriter::spawn(config) {
                        Ok((handle, join)) => {
                            let _ = tx.send(Ok(handle));
                            join.await.unwrap_or_default()
                        }
                        Err(e) => {
                            let _ = tx.send(Err(SimMetricsError::Config(e)));
                            WriterStats::default()
                        }
                    }
                })
            })?;
        let handle = rx.recv().map_err(|_| SimMetricsError::WriterGone)??;
        Ok(SimMetrics {
            handle,
            neighborhood,
            balances: Balances::new(),
            writer: Some(writer),
        })
    }

    /// True if points go to a database.
    pub fn is_enabled(&self) -> bool {
        self.handle.is_enabled()
    }

    /// The writer's counters now.
    pub fn stats(&self) -> WriterStats {
        self.handle.stats()
    }

    /// Lets the writer flush what is buffered (a bounded number of attempts while the database
    /// is down) and returns its final counters.
    pub fn finish(self) -> WriterStats {
        let SimMetrics { handle, writer, .. } = self;
        let last = handle.stats();
        drop(handle);
        match writer {
            Some(thread) => thread.join().unwrap_or(last),
            None => last,
        }
    }
}

impl IntervalObserver for SimMetrics {
    fn interval(&mut self, view: &IntervalView<'_>) {
        let time = view.start.and_utc();
        let nb = &self.neighborhood;
        let mechanism = MechanismTag::from(view.outcome.mechanism);
        self.handle.record_blocking(clearing_point(
            time,
            nb,
            view.orders,
            view.outcome,
            view.tariffs,
        ));
        for order in view.orders {
            if let Some(point) = order_point(time, nb, mechanism, order) {
                self.handle.record_blocking(point);
            }
        }
        for point in trade_points(time, nb, view.outcome) {
            self.handle.record_blocking(point);
        }
        for (settlement, balance) in self.balances.settle(time, nb, view.settlement) {
            self.handle.record_blocking(settlement);
            self.handle.record_blocking(balance);
        }
        let rec = view.record;
        let count = |n: u32| i64::from(n);
        self.handle.record_blocking(GridState {
            time,
            neighborhood: nb.clone(),
            voltage_min_pu: rec.vm_min,
            voltage_max_pu: rec.vm_max,
            line_loading_max_pct: rec.max_line_loading,
            trafo_loading_max_pct: rec.max_trafo_loading,
            ext_grid_kw: rec.ext_grid_p_mw * 1000.0,
            undervoltage_buses: count(view.worst.undervoltage_buses),
            overvoltage_buses: count(view.worst.overvoltage_buses),
            overloaded_lines: count(view.worst.overloaded_lines),
            overloaded_trafos: count(view.worst.overloaded_trafos),
        });
    }
}

/// One line for the run's summary: what the writer did with the points.
pub fn summary_line(stats: &WriterStats) -> String {
    let mut line = format!(
        "metrics           recorded {}, written {}, dropped {}",
        stats.recorded,
        stats.written,
        stats.dropped()
    );
    if stats.dropped() > 0 {
        line.push_str(&format!(
            " (queue full {}, overflow {}, at shutdown {}, refused {}, invalid {}, cardinality {})",
            stats.dropped_queue_full,
            stats.dropped_overflow,
            stats.dropped_shutdown,
            stats.rejected,
            stats.invalid,
            stats.dropped_cardinality
        ));
    }
    if let Some(e) = &stats.last_error {
        line.push_str(&format!("; last error: {e}"));
    }
    line
}
