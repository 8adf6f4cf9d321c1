//! Voltmesh metrics: what the utilities see.
//!
//! * [`schema`]: every measurement, tag and field Voltmesh writes to InfluxDB, as typed structs
//!   ([`Point`] is any of them). `grafana/README.md` documents the same schema for people.
//! * [`tag`]: the only types that may become tags; all are low-cardinality by construction.
//! * [`writer`]: [`MetricsWriter::spawn`] starts a task that batches points and writes them through
//!   the `influxdb2` client; [`MetricsHandle::record`] never blocks and never fails the caller.
//!
//! * [`market`]: the engine's books, outcomes and settlements as points (shared by sim and node).
//!
//! Node, bridge and sim record through a [`MetricsHandle`]; the engine never depends on this crate.
//! Dashboards (`grafana/dashboards/`), provisioning (`grafana/provisioning/`) and a deployment
//! (`grafana/deploy/`) live next to this crate and are checked by its tests.

#[cfg(feature = "clap")]
pub mod cli;
pub mod config;
pub mod market;
pub mod schema;
pub mod section;
pub mod stats;
pub mod tag;
#[cfg(feature = "testing")]
pub mod testing;
pub mod writer;

#[cfg(feature = "clap")]
pub use cli::InfluxArgs;
pub use config::{ConfigError, MetricsConfig};
pub use market::{
    clearing_point, clearing_point_from_outcome, order_point, trade_points, Balances,
};
pub use schema::{
    measurement, Balance, BridgeDecodeError, BridgeHealth, Clearing, ConsensusHealth,
    ConsensusRejection, FieldKind, FieldSpec, GridState, MeasurementSpec, MeterReading, OrderPoint,
    Point, PointError, SettlementPoint, TagSpec, TradePoint, Unit, MEASUREMENTS,
};
pub use section::MetricsSection;
pub use stats::WriterStats;
pub use tag::{
    BoundedId, DecodeErrorKind, HouseholdId, IdError, MechanismTag, Neighborhood, NodeId,
    RejectionReason, Side, TagValue,
};
pub use writer::{MetricsHandle, MetricsWriter};
