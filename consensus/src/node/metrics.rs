//! What a node writes to InfluxDB: its consensus health and the committed ledger.
//!
//! * `consensus` (height, view, commit latency, peers, pending orders): on every commit and at
//!   least every [`HEALTH_EVERY_MS`];
//! * `consensus_rejection` (`rejected_total` per reason, counters since the node started): orders
//!   the API refused and proposals the replica refused, every [`HEALTH_EVERY_MS`];
//! * from each COMMITTED block only (data flows meters → bridge → nodes → ledger → dashboards):
//!   one `order` per order (time = block time plus the order's position in the block in
//!   nanoseconds, so two orders of one household in one block stay two points), and per interval
//!   the block clears one `clearing` and the `trade`s (time = interval start); per interval the
//!   block settles, one `settlement` per bill and the participant's `balance` after it (time =
//!   interval start), as `voltmesh sim` writes them (`bill_points`).
//!
//! Every validator writes the same ledger points; they carry no `node` tag, so they are the same
//! series and points and the database keeps one copy.
//!
//! # Balances
//! A `balance` point carries the participant's totals since the ledger began (the dashboard
//! shows the last one), read from and added to a table in the node's store, not a map in memory
//! (`bill_totals.rs` says why). A node whose store does not hold the chain from genesis
//! (state-synced) writes no `balance` points, only `settlement`s: its totals would undercount
//! and overwrite the other validators' points of the same series. The `settlement` and
//! `balance` amounts are the bills' exact totals (nano-units), not the rounded `billed`.
//!
//! # Determinism
//! Nothing here feeds back into consensus: the driver hands in the time it read (`now_ms`, the
//! driver's clock) and recording never blocks or fails ([`MetricsHandle::record`]).
//!
//! [`MetricsHandle::record`]: voltmesh_metrics::MetricsHandle::record

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use voltmesh_engine::Tariffs;
use voltmesh_metrics::schema::{money_value, wh_value};
use voltmesh_metrics::{
    clearing_point_from_outcome, trade_points, Balance, ConfigError, ConsensusHealth,
    ConsensusRejection, HouseholdId, IdError, MechanismTag, MetricsConfig, MetricsHandle,
    MetricsWriter, Neighborhood, NodeId, OrderPoint, RejectionReason, SettlementPoint, Side,
    WriterStats,
};
use voltmesh_wire::bill::Bill;
use voltmesh_wire::{Genesis, OrderRejection};

use super::bill_totals::{BillTotals, Totals};
use crate::index::Index;
use crate::ledger::CommittedBlock;

/// How often health and rejection counters are written when nothing commits.
pub const HEALTH_EVERY_MS: u64 = 5_000;

/// The optional `[metrics]` section of `node.toml` (shared with the bridge; keys absent there
/// fall back to `VOLTMESH_INFLUX_*`, and without a URL in either place metrics are off).
pub use voltmesh_metrics::MetricsSection;

/// Why the node's metrics could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeMetricsError {
    /// The writer configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The neighborhood or node name cannot be a tag.
    #[error("metrics tag: {0}")]
    Tag(#[from] IdError),
}

/// The node's view of consensus at one moment, as the driver reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Health {
    pub(crate) height: u64,
    pub(crate) view: u64,
    pub(crate) peers: u64,
    pub(crate) pending_orders: usize,
    /// Proposals the replica refused since it started (a counter).
    pub(crate) rejected_proposals: u64,
}

/// Records the node's points; owned by the driver.
#[derive(Debug)]
pub(crate) struct NodeMetrics {
    handle: MetricsHandle,
    writer: Option<tokio::task::JoinHandle<WriterStats>>,
    neighborhood: Neighborhood,
    node: NodeId,
    mechanism: MechanismTag,
    tariffs: Tariffs,
    /// The participants' running totals for `balance` points (`None`: metrics off, the store
    /// could not keep them, or the node does not hold the chain from genesis).
    totals: Option<BillTotals>,
    /// Order refusals by reason since start (a `BTreeMap`: written in a fixed order).
    rejections: BTreeMap<RejectionReason, u64>,
    last_commit_latency_ms: Option<f64>,
    next_health_ms: u64,
}

impl NodeMetrics {
    /// Starts the writer (on the current tokio runtime) if `config` has a URL; otherwise every
    /// call is a no-op. `validator` names the node when `node` is `None`. With a URL, the
    /// participants' running totals are kept in `db` (the node's store) and caught up with
    /// `index`; `full_history`: the store holds the chain from genesis ([`super::bill_totals`]).
    ///
    /// # Errors
    /// [`NodeMetricsError`] if the configuration or a tag is invalid.
    pub(crate) fn start(
        config: MetricsConfig,
        genesis: &Genesis,
        node: Option<&str>,
        validator: u16,
        (db, index, full_history): (Arc<redb::Database>, &Index, bool),
    ) -> Result<NodeMetrics, NodeMetricsError> {
        let neighborhood = Neighborhood::lossy(&genesis.neighborhood)?;
        let node = match node {
            Some(name) => NodeId::new(name)?,
            None => NodeId::new(&format!("validator-{validator}"))?,
        };
        let (handle, writer) = if config.validate()?.is_some() {
            let (handle, writer) = MetricsWriter::spawn(config)?;
            (handle, Some(writer))
        } else {
            (MetricsHandle::disabled(), None)
        };
        let totals = if handle.is_enabled() {
            match BillTotals::open(db, index, full_history) {
                Ok(totals) if totals.is_complete() => Some(totals),
                Ok(_) => {
                    tracing::info!("the store does not hold the chain from genesis: writing settlement points but no balance points");
                    None
                }
                Err(e) => {
                    tracing::warn!(cause = %e, "cannot keep the bill totals: writing no balance points");
                    None
                }
            }
        } else {
            None
        };
        Ok(NodeMetrics {
            handle,
            writer,
            neighborhood,
            node,
            mechanism: MechanismTag::from(genesis.market.mechanism),
            tariffs: genesis.market.rules.tariffs,
            totals,
            rejections: BTreeMap::new(),
            last_commit_latency_ms: None,
            next_health_ms: 0,
        })
    }

    /// True if points go to a database.
    pub(crate) fn is_enabled(&self) -> bool {
        self.handle.is_enabled()
    }

    /// Counts an order the node refused.
    pub(crate) fn order_rejected(&mut self, rejection: &OrderRejection) {
        if self.is_enabled() {
            *self.rejections.entry(reason_of(rejection)).or_default() += 1;
        }
    }

    /// True if [`NodeMetrics::health`] is due at `now_ms`.
    pub(crate) fn health_due(&self, now_ms: u64) -> bool {
        self.is_enabled() && now_ms >= self.next_health_ms
    }

    /// Writes `consensus` and the `consensus_rejection` counters.
    pub(crate) fn health(&mut self, now_ms: u64, health: Health) {
        if !self.is_enabled() {
            return;
        }
        self.next_health_ms = now_ms.saturating_add(HEALTH_EVERY_MS);
        let time = time_of_ms(now_ms);
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.handle.record(ConsensusHealth {
            time,
            neighborhood: self.neighborhood.clone(),
            node: self.node.clone(),
            height: count(health.height),
            view: count(health.view),
            commit_latency_ms: self.last_commit_latency_ms,
            peers: count(health.peers),
            pending_orders: count(u64::try_from(health.pending_orders).unwrap_or(u64::MAX)),
        });
        if health.rejected_proposals > 0 {
            self.rejections
                .insert(RejectionReason::RejectedProposal, health.rejected_proposals);
        }
        for (&reason, &total) in &self.rejections {
            self.handle.record(ConsensusRejection {
                time,
                neighborhood: self.neighborhood.clone(),
                node: self.node.clone(),
                reason,
                rejected_total: count(total),
            });
        }
    }

    /// Writes the ledger points of a block just committed (`index` has it already), and the
    /// node's health after it.
    pub(crate) fn committed(
        &mut self,
        block: &CommittedBlock,
        index: &Index,
        now_ms: u64,
        health: Health,
    ) {
        if !self.is_enabled() {
            return;
        }
        #[allow(clippy::cast_precision_loss)]
        let latency = now_ms.saturating_sub(block.timestamp_ms) as f64;
        self.last_commit_latency_ms = Some(latency);
        let block_time = time_of_ms(block.timestamp_ms);
        for (i, order) in block.orders.iter().enumerate() {
            let ticket = &order.ticket;
            let Ok(household) = HouseholdId::lossy(ticket.participant.as_str()) else {
                continue;
            };
            let offset = chrono::TimeDelta::nanoseconds(i64::try_from(i).unwrap_or(0));
            self.handle.record(OrderPoint {
                time: block_time + offset,
                neighborhood: self.neighborhood.clone(),
                household,
                side: Side::from(ticket.side),
                mechanism: self.mechanism,
                quantity_wh: voltmesh_metrics::schema::wh_value(ticket.quantity_wh),
                limit_price: voltmesh_metrics::schema::price_value(ticket.limit_price),
            });
        }
        for clearing in &block.clearings {
            let Some(start) = DateTime::<Utc>::from_timestamp(clearing.interval_start, 0) else {
                continue;
            };
            self.handle.record(clearing_point_from_outcome(
                start,
                &self.neighborhood,
                &clearing.outcome,
                self.tariffs,
            ));
            for trade in trade_points(start, &self.neighborhood, &clearing.outcome) {
                self.handle.record(trade);
            }
        }
        self.bills(block, index);
        self.health(now_ms, health);
    }

    /// Writes the `settlement` and `balance` points of the intervals `block` settled.
    fn bills(&mut self, block: &CommittedBlock, index: &Index) {
        if block.bills.is_empty() {
            return;
        }
        let totals = match self.totals.as_mut().map(|t| t.add(index, &block.bills)) {
            Some(Ok(totals)) => Some(totals),
            Some(Err(e)) => {
                // The next block's catch-up adds these intervals from the index.
                tracing::warn!(cause = %e, height = block.height, "cannot add to the bill totals: no balance points for this block");
                None
            }
            None => None,
        };
        for (i, interval) in block.bills.iter().enumerate() {
            let Some(start) = DateTime::<Utc>::from_timestamp(interval.interval_start, 0) else {
                continue;
            };
            let after = totals.as_ref().and_then(|t| t.get(i));
            for (j, bill) in interval.bills.iter().enumerate() {
                let running = after.and_then(|t| t.get(j)).copied();
                let Some((settlement, balance)) =
                    bill_points(start, &self.neighborhood, bill, running)
                else {
                    continue;
                };
                self.handle.record(settlement);
                if let Some(balance) = balance {
                    self.handle.record(balance);
                }
            }
        }
    }

    /// Lets the writer flush (a bounded number of attempts if the database is down) and returns
    /// its final counters.
    pub(crate) async fn finish(self) -> WriterStats {
        let last = self.handle.stats();
        let NodeMetrics { handle, writer, .. } = self;
        drop(handle);
        match writer {
            Some(writer) => writer.await.unwrap_or(last),
            None => last,
        }
    }
}

/// The rejection tag of an order refusal.
fn reason_of(rejection: &OrderRejection) -> RejectionReason {
    match rejection {
        OrderRejection::BadSignature => RejectionReason::BadSignature,
        OrderRejection::UnknownParticipant(_) | OrderRejection::ParticipantRemoved { .. } => {
            RejectionReason::UnknownParticipant
        }
        OrderRejection::KeyNotAllowed { .. } => RejectionReason::KeyNotAllowed,
        OrderRejection::ReplayedNonce { .. } => RejectionReason::ReplayedNonce,
        OrderRejection::BadOrderId(_) | OrderRejection::OrderIdTooLong { .. } => {
            RejectionReason::Malformed
        }
        OrderRejection::ParticipantIntervalFull { .. }
        | OrderRejection::ParticipantPendingFull { .. } => RejectionReason::RateLimited,
        OrderRejection::IntervalFull { .. } => RejectionReason::QueueFull,
        OrderRejection::WrongInterval(_) => RejectionReason::WrongInterval,
        OrderRejection::ClosedInterval(_) => RejectionReason::MarketClosed,
        OrderRejection::MempoolFull => RejectionReason::QueueFull,
        OrderRejection::Market(reason) => RejectionReason::from(reason),
    }
}

/// One committed bill's `settlement` point and, given the participant's totals after it, its
/// `balance` point, at the interval start `time`; `None` for a participant whose id cannot be a
/// household tag (empty).
pub(crate) fn bill_points(
    time: DateTime<Utc>,
    neighborhood: &Neighborhood,
    bill: &Bill,
    totals: Option<Totals>,
) -> Option<(SettlementPoint, Option<Balance>)> {
    let household = HouseholdId::lossy(bill.participant.as_str()).ok()?;
    let balance = totals.map(|t| Balance {
        time,
        neighborhood: neighborhood.clone(),
        household: household.clone(),
        amount_total: money_value(t.amount),
        bought_wh_total: wh_value(t.bought_wh),
        sold_wh_total: wh_value(t.sold_wh),
    });
    // The same point `voltmesh sim` writes for the engine's bill.
    let settlement =
        SettlementPoint::from_bill(time, neighborhood.clone(), household, &bill.engine_bill());
    Some((settlement, balance))
}

fn time_of_ms(ms: u64) -> DateTime<Utc> {
    i64::try_from(ms)
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use voltmesh_engine::RejectReason;

    use super::*;

    #[test]
    fn section_keys_win_over_the_environment_which_fills_the_rest() {
        let env = |key: &str| match key {
            "VOLTMESH_INFLUX_URL" => Some("http://env:8086".to_owned()),
            "VOLTMESH_INFLUX_TOKEN" => Some("env-token".to_owned()),
            _ => None,
        };
        let section = MetricsSection {
            url: Some("http://file:8086".into()),
            bucket: Some("nb1".into()),
            ..MetricsSection::default()
        };
        let c = section.to_config(env);
        assert_eq!(c.url.as_deref(), Some("http://file:8086"));
        assert_eq!(
            (c.org.as_str(), c.bucket.as_str(), c.token.as_str()),
            ("voltmesh", "nb1", "env-token")
        );
        let from_env = MetricsSection::default().to_config(env);
        assert_eq!(from_env.url.as_deref(), Some("http://env:8086"));
        assert_eq!(MetricsSection::default().to_config(|_| None).url, None);
        assert!(!format!(
            "{:?}",
            MetricsSection {
                token: Some("s3cret".into()),
                ..MetricsSection::default()
            }
        )
        .contains("s3cret"));
    }

    #[test]
    fn node_toml_takes_an_optional_metrics_section_and_refuses_unknown_keys() {
        let base = "genesis = \"g.json\"\nkey_file = \"k\"\ndata_dir = \"d\"\n\
                    listen = \"/ip4/127.0.0.1/tcp/7100\"\napi = \"127.0.0.1:8100\"\n";
        let plain: super::super::NodeConfig = toml::from_str(base).expect("no [metrics]");
        assert_eq!(plain.metrics, MetricsSection::default());
        let with: super::super::NodeConfig = toml::from_str(&format!(
            "{base}[metrics]\nurl = \"http://db:8086\"\nnode = \"node-1\"\n"
        ))
        .expect("[metrics]");
        assert_eq!(with.metrics.url.as_deref(), Some("http://db:8086"));
        assert_eq!(with.metrics.node.as_deref(), Some("node-1"));
        assert!(toml::from_str::<super::super::NodeConfig>(&format!(
            "{base}[metrics]\nurll = \"x\"\n"
        ))
        .is_err());
    }

    #[test]
    fn a_committed_bill_becomes_a_settlement_and_a_balance_point() {
        use voltmesh_engine::Money;
        let nb = Neighborhood::new("nb").expect("id");
        let time = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).expect("in range");
        let bill = Bill {
            participant: "hh 1".into(),
            bought_wh: 300,
            sold_wh: 0,
            metered: true,
            metered_net_export_wh: -500,
            from_utility_wh: 200,
            to_utility_wh: 0,
            local_energy: Money::from_nanos(60_000_000),
            network_fees: Money::from_nanos(3_000_000),
            utility: Money::from_nanos(64_000_000),
            total: Money::from_nanos(127_000_000),
            billed: Money::from_nanos(130_000_000),
            carry: Money::from_nanos(-3_000_000),
            no_market: Money::from_nanos(160_000_000),
        };
        let totals = Totals {
            amount: Money::from_nanos(-1_250_000_001),
            bought_wh: 300,
            sold_wh: 9_000,
        };
        let (settlement, balance) =
            bill_points(time, &nb, &bill, Some(totals)).expect("a household");
        assert_eq!(
            settlement,
            SettlementPoint {
                time,
                neighborhood: nb.clone(),
                household: HouseholdId::new("hh_1").expect("id"),
                bought_wh: 300,
                sold_wh: 0,
                metered_net_export_wh: -500,
                from_utility_wh: 200,
                to_utility_wh: 0,
                local_energy: 0.06,
                network_fees: 0.003,
                utility: 0.064,
                total: 0.127,
            }
        );
        let balance = balance.expect("with totals");
        assert_eq!(balance.household, settlement.household);
        assert_eq!(
            (
                balance.amount_total,
                balance.bought_wh_total,
                balance.sold_wh_total
            ),
            (-1.250_000_001, 300, 9_000)
        );
        // The exact total, not the rounded `billed`; no totals, no balance.
        let (_, none) = bill_points(time, &nb, &bill, None).expect("a household");
        assert_eq!(none, None);
        let nobody = Bill {
            participant: "".into(),
            ..bill
        };
        assert_eq!(bill_points(time, &nb, &nobody, Some(totals)), None);
    }

    #[test]
    fn every_order_refusal_has_its_own_tag() {
        let cases = [
            (OrderRejection::BadSignature, "bad_signature"),
            (
                OrderRejection::UnknownParticipant("x".into()),
                "unknown_participant",
            ),
            (
                OrderRejection::KeyNotAllowed {
                    participant: "p".into(),
                    key: "k".into(),
                },
                "key_not_allowed",
            ),
            (
                OrderRejection::ReplayedNonce { nonce: 1, last: 2 },
                "replayed_nonce",
            ),
            (OrderRejection::WrongInterval(5), "wrong_interval"),
            (OrderRejection::ClosedInterval(5), "market_closed"),
            (OrderRejection::MempoolFull, "queue_full"),
            (
                OrderRejection::Market(RejectReason::ZeroQuantity),
                "zero_quantity",
            ),
        ];
        for (rejection, tag) in cases {
            assert_eq!(reason_of(&rejection).as_str(), tag, "{rejection:?}");
        }
    }
}
