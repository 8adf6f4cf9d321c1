//! Voltmesh grid simulation: SimBench grids and profiles, household agents, power flow and KPIs.
//!
//! - [`simbench`] reads grid folders; [`powerflow`] solves them per interval;
//! - [`household`] and [`scenario`] describe the agents; [`run`] drives them through the engine
//!   (`voltmesh_engine::CallAuction` + `settlement::settle`) and the power flow;
//! - [`cluster`] runs real `voltmesh node` processes on 127.0.0.1 for tests and benches;
//! - [`metrics`] records a run's intervals in InfluxDB (through the [`metrics_observer`] seam);
//! - [`meters`] encodes simulated meter payloads (DSMR, Tasmota, Shelly) from the profiles;
//!   [`demo`] is `voltmesh demo`, a whole neighborhood in one process;
//! - [`via_network`] checks the network's finalized trades against the in-process run's;
//! - [`kpi`] summarises a run; [`output`] and [`plot`] write it; [`cli`] is `voltmesh sim`.

pub mod cli;
pub mod cluster;
pub mod data;
pub mod demo;
pub mod household;
pub mod invariants;
pub mod kpi;
pub mod meters;
pub mod metrics;
pub mod metrics_observer;
pub mod output;
pub mod plot;
pub mod powerflow;
pub mod run;
pub mod scenario;
pub mod simbench;
pub mod via_network;
