//! What the bridge writes to InfluxDB (`[metrics]` of `bridge.toml`, else `VOLTMESH_INFLUX_*`;
//! off without a URL; see [`voltmesh_metrics::section`]).
//!
//! Every [`HEALTH_EVERY`] and once more at shutdown, [`BridgeMetrics::run`] writes:
//! * `bridge`: readings accepted, decode errors, orders the node took and refused, dead letters
//!   (all counters since the bridge started) and, as `queue_depth`, the messages received from
//!   the broker and not yet acknowledged;
//! * `bridge_decode_error`: the refusal counter of every [`ErrorKind`] seen so far;
//! * `meter_reading`: each meter's latest accepted registers, if newer than the last one written
//!   (so at most one point per meter per tick, stamped with the meter's own time).
//!
//! Tags: `neighborhood` is the genesis neighborhood of `[node]`, `node` is `[metrics] node`, else
//! the broker client id;
//! both are made tag-safe with `lossy` (see `voltmesh_metrics::BoundedId::lossy`).
//!
//! # Counting
//! `decode_errors_total` counts messages that did not decode (the kinds up to
//! [`ErrorKind::TooManyDevices`]); `dead_letters_total` counts every refused message (decode
//! errors plus unknown meters, registers that went backwards, readings from the future or out of
//! order, and households' own messages refused), since each one is published to the dead-letter
//! topic. Households' refusals are not in `bridge_decode_error` (their kinds are in
//! [`crate::Counters::household_errors`]).
//! [`Counted`] (in [`crate::order_sink`]) wraps the order sink: `orders_total` counts orders the node newly accepted,
//! `orders_rejected_total` orders it refused for good (retryable failures are not counted).
//!
//! # Never in the way
//! Recording never blocks ([`MetricsHandle::record`]); a bad metrics configuration is logged and
//! leaves metrics off, it never stops the bridge. At shutdown the writer gets a bounded number of
//! attempts to flush, then the bridge reports what was written and dropped in its log.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;
use tracing::{info, warn};
use voltmesh_metrics::{
    BridgeDecodeError, BridgeHealth, DecodeErrorKind, HouseholdId, MeterReading, MetricsConfig,
    MetricsHandle, MetricsWriter, Neighborhood, NodeId, WriterStats,
};

use crate::config::Config;
use crate::error_kind::ErrorKind;
use crate::order_sink::{Counted, OrderCounts};
use crate::reading::{MeterId, Reading};
use crate::runtime::clock::SharedClock;
use crate::runtime::shared::{lock, SharedIngest, Unacked};
use crate::shutdown::Shutdown;

/// How often the bridge writes its health.
pub const HEALTH_EVERY: Duration = Duration::from_secs(10);

/// The bridge's metrics: a writer (or nothing, when off), its tags and the order counts.
#[derive(Debug)]
pub struct BridgeMetrics {
    handle: MetricsHandle,
    writer: Option<JoinHandle<WriterStats>>,
    tags: Option<(Neighborhood, NodeId)>,
    orders: Arc<OrderCounts>,
}

impl BridgeMetrics {
    /// Metrics for `config`'s neighborhood and client id, written where `metrics` says. Must run
    /// inside a tokio runtime. Never fails: a bad configuration or tag is logged and metrics
    /// stay off.
    pub fn start(metrics: MetricsConfig, config: &Config) -> BridgeMetrics {
        let off = |orders| BridgeMetrics {
            handle: MetricsHandle::disabled(),
            writer: None,
            tags: None,
            orders,
        };
        let orders = Arc::new(OrderCounts::default());
        if metrics.url.is_none() {
            return off(orders);
        }
        let tags = Neighborhood::lossy(&config.node.neighborhood).and_then(|n| {
            let node = config
                .metrics
                .node
                .as_ref()
                .unwrap_or(&config.broker.client_id);
            Ok((n, NodeId::lossy(node)?))
        });
        let tags = match tags {
            Ok(tags) => tags,
            Err(e) => {
                warn!(cause = %e, "metrics off: neighborhood or client id cannot be a tag");
                return off(orders);
            }
        };
        match MetricsWriter::spawn(metrics) {
            Ok((handle, writer)) => BridgeMetrics {
                handle,
                writer: Some(writer),
                tags: Some(tags),
                orders,
            },
            Err(e) => {
                warn!(cause = %e, "metrics off: bad configuration");
                off(orders)
            }
        }
    }

    /// As [`BridgeMetrics::start`] with the `VOLTMESH_INFLUX_*` environment variables.
    pub fn from_env(config: &Config) -> BridgeMetrics {
        Self::start(MetricsConfig::from_env(), config)
    }

    /// True if points go to a database.
    pub fn is_enabled(&self) -> bool {
        self.handle.is_enabled()
    }

    /// `sink`, counting the orders the node takes and refuses.
    pub fn count_orders<S>(&self, sink: S) -> Counted<S> {
        Counted::new(sink, Arc::clone(&self.orders))
    }

    /// Writes the bridge's health every [`HEALTH_EVERY`] until `shutdown`, then once more, lets
    /// the writer flush and logs what it wrote and dropped. `unacked` is the subscribing
    /// connection's gauge of messages not yet acknowledged; `clock` stamps the points.
    ///
    /// # Cancel safety
    /// Dropping the future loses what the writer still buffers; complete `shutdown` instead.
    pub async fn run(
        self,
        ingest: SharedIngest,
        unacked: Unacked,
        clock: SharedClock,
        mut shutdown: Shutdown,
    ) {
        let Some((neighborhood, node)) = self.tags.clone() else {
            return;
        };
        let mut tick = tokio::time::interval(HEALTH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut written: BTreeMap<MeterId, DateTime<Utc>> = BTreeMap::new();
        loop {
            let stop = tokio::select! {
                biased;
                () = shutdown.recv() => true,
                _ = tick.tick() => false,
            };
            let depth = unacked.load(std::sync::atomic::Ordering::Relaxed);
            let snapshot = Snapshot::take(&ingest, &mut written);
            self.record(&neighborhood, &node, &snapshot, depth, clock.now());
            if stop {
                break;
            }
        }
        let BridgeMetrics { handle, writer, .. } = self;
        let last = handle.stats();
        drop(handle);
        let stats = match writer {
            Some(writer) => writer.await.unwrap_or(last),
            None => last,
        };
        info!(
            recorded = stats.recorded,
            written = stats.written,
            dropped = stats.dropped(),
            last_error = stats.last_error.as_deref().unwrap_or(""),
            "metrics writer stopped"
        );
    }

    fn record(
        &self,
        neighborhood: &Neighborhood,
        node: &NodeId,
        s: &Snapshot,
        depth: usize,
        now: DateTime<Utc>,
    ) {
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let (taken, refused) = self.orders.get();
        let decode_errors: u64 = s
            .errors
            .iter()
            .filter(|(k, _)| is_decode_error(**k))
            .map(|(_, n)| n)
            .sum();
        self.handle.record(BridgeHealth {
            time: now,
            neighborhood: neighborhood.clone(),
            node: node.clone(),
            readings_total: count(s.accepted),
            decode_errors_total: count(decode_errors),
            orders_total: count(taken),
            orders_rejected_total: count(refused),
            dead_letters_total: count(s.errors.values().sum::<u64>() + s.household_dead_letters),
            queue_depth: i64::try_from(depth).unwrap_or(i64::MAX),
        });
        for (&kind, &n) in &s.errors {
            let Some(kind) = decode_kind(kind) else {
                continue;
            };
            self.handle.record(BridgeDecodeError {
                time: now,
                neighborhood: neighborhood.clone(),
                node: node.clone(),
                kind,
                errors_total: count(n),
            });
        }
        for (household, reading) in &s.readings {
            self.handle.record(MeterReading {
                time: reading.timestamp,
                neighborhood: neighborhood.clone(),
                household: household.clone(),
                import_wh: count(reading.import_wh),
                export_wh: count(reading.export_wh),
                #[allow(clippy::cast_precision_loss)]
                power_w: Some(reading.power_w as f64),
            });
        }
    }
}

/// What one tick reads from the ingest state (under its lock, briefly).
struct Snapshot {
    accepted: u64,
    errors: BTreeMap<ErrorKind, u64>,
    /// Households' own messages refused (dead-lettered too).
    household_dead_letters: u64,
    /// Readings newer than the last written, with their household.
    readings: Vec<(HouseholdId, Reading)>,
}

impl Snapshot {
    fn take(ingest: &SharedIngest, written: &mut BTreeMap<MeterId, DateTime<Utc>>) -> Snapshot {
        let ingest = lock(ingest);
        let counters = ingest.counters();
        let mut readings = Vec::new();
        for (participant, household) in ingest.registry().households() {
            let Ok(tag) = HouseholdId::lossy(participant.as_str()) else {
                continue;
            };
            for meter in &household.meters {
                let Some(reading) = ingest.book().last_reading(meter) else {
                    continue;
                };
                if written.get(meter).is_some_and(|t| *t >= reading.timestamp) {
                    continue;
                }
                written.insert(meter.clone(), reading.timestamp);
                readings.push((tag.clone(), reading.clone()));
            }
        }
        Snapshot {
            accepted: counters.accepted,
            errors: counters.errors.clone(),
            household_dead_letters: counters.household_errors.values().sum(),
            readings,
        }
    }
}

/// True for the kinds that mean "did not decode" (as opposed to a decoded reading refused).
fn is_decode_error(kind: ErrorKind) -> bool {
    !matches!(
        kind,
        ErrorKind::UnknownMeter
            | ErrorKind::RegisterWentBackwards
            | ErrorKind::TimestampInFuture
            | ErrorKind::OutOfOrder
    )
}

/// The metrics tag of a bridge error kind (the same spelling); `None` for the kinds only household
/// messages have (those are counted in [`crate::Counters::household_errors`], not as meter errors).
fn decode_kind(kind: ErrorKind) -> Option<DecodeErrorKind> {
    Some(match kind {
        ErrorKind::TooLarge => DecodeErrorKind::TooLarge,
        ErrorKind::UnknownFormat => DecodeErrorKind::UnknownFormat,
        ErrorKind::Malformed => DecodeErrorKind::Malformed,
        ErrorKind::CrcMismatch => DecodeErrorKind::CrcMismatch,
        ErrorKind::MissingCrc => DecodeErrorKind::MissingCrc,
        ErrorKind::MissingField => DecodeErrorKind::MissingField,
        ErrorKind::BadValue => DecodeErrorKind::BadValue,
        ErrorKind::BadTimestamp => DecodeErrorKind::BadTimestamp,
        ErrorKind::BadMeterId => DecodeErrorKind::BadMeterId,
        ErrorKind::TooManyDevices => DecodeErrorKind::TooManyDevices,
        ErrorKind::UnknownMeter => DecodeErrorKind::UnknownMeter,
        ErrorKind::RegisterWentBackwards => DecodeErrorKind::RegisterWentBackwards,
        ErrorKind::TimestampInFuture => DecodeErrorKind::TimestampInFuture,
        ErrorKind::OutOfOrder => DecodeErrorKind::OutOfOrder,
        ErrorKind::UnknownParticipant | ErrorKind::GateClosed => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_household_messages_count_as_dead_letters_not_decode_errors() {
        let registry = crate::household::registry::Registry::from_config(
            toml::from_str(
                "[[household]]\nparticipant = \"hh-01\"\nmeters = [\"m1\"]\n\
                 buy_limit = \"0.3\"\nsell_limit = \"0.1\"",
            )
            .unwrap(),
        )
        .unwrap();
        let ingest = crate::ingest::Ingest::new(
            crate::ingest::IngestConfig::default(),
            registry,
            voltmesh_engine::IntervalSpec::DEFAULT,
        )
        .with_household_topics("voltmesh", voltmesh_engine::Tariffs::UNBOUNDED);
        let shared: SharedIngest = Arc::new(std::sync::Mutex::new(ingest));
        let t = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        for topic in [
            "voltmesh/households/hh-01/orders/set",
            "voltmesh/households/zz/preferences",
        ] {
            let out = lock(&shared).handle(topic, b"{", t);
            assert!(matches!(out, crate::ingest::Outcome::Rejected(_)));
        }
        let snapshot = Snapshot::take(&shared, &mut BTreeMap::new());
        assert_eq!(snapshot.household_dead_letters, 2);
        assert!(snapshot.errors.is_empty(), "not meter decode errors");
    }

    #[test]
    fn every_error_kind_keeps_its_spelling_as_a_tag() {
        let kinds = [
            ErrorKind::TooLarge,
            ErrorKind::UnknownFormat,
            ErrorKind::Malformed,
            ErrorKind::CrcMismatch,
            ErrorKind::MissingCrc,
            ErrorKind::MissingField,
            ErrorKind::BadValue,
            ErrorKind::BadTimestamp,
            ErrorKind::BadMeterId,
            ErrorKind::TooManyDevices,
            ErrorKind::UnknownMeter,
            ErrorKind::RegisterWentBackwards,
            ErrorKind::TimestampInFuture,
            ErrorKind::OutOfOrder,
        ];
        assert_eq!(kinds.len(), DecodeErrorKind::ALL.len());
        for kind in kinds {
            assert_eq!(decode_kind(kind).map(|k| k.as_str()), Some(kind.as_str()));
        }
        assert!(is_decode_error(ErrorKind::CrcMismatch));
        assert!(!is_decode_error(ErrorKind::UnknownMeter));
        assert_eq!(decode_kind(ErrorKind::GateClosed), None);
        assert_eq!(decode_kind(ErrorKind::UnknownParticipant), None);
    }
}
