//! Voltmesh grid simulation: SimBench grids and profiles, household agents, power flow and KPIs.
//!
//! Pure of any network: the same engine the nodes run, driven in process. The whole-neighborhood
//! runs (`voltmesh demo`, `voltmesh sim --via-network`, the node cluster harness, simulated
//! meters) live in the `voltmesh` crate beside this one (`sim/stack/`).
//!
//! - [`simbench`] reads grid folders; [`powerflow`] solves them per interval;
//! - [`household`], [`flex`] and [`scenario`] describe the agents; [`run`] drives them through the engine
//!   (`voltmesh_engine::CallAuction` + `settlement::settle`) and the power flow;
//! - [`metrics`] records a run's intervals in InfluxDB (through the [`metrics_observer`] seam);
//! - [`record`] holds what a run records per interval and household; [`kpi`] summarises a run; [`output`] and [`plot`] write it; [`cli`] is `voltmesh sim`;
//! - [`sweep`] runs grids of scenarios in parallel into Parquet ([`table`]) (`voltmesh sim sweep`).

pub mod cli;
pub mod data;
pub mod flex;
pub mod household;
pub mod invariants;
pub mod kpi;
pub mod metrics;
pub mod metrics_observer;
pub mod output;
pub mod plot;
pub mod powerflow;
pub mod record;
pub mod run;
pub mod scenario;
pub mod simbench;
pub mod sweep;
pub mod table;
