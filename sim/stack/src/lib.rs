//! Voltmesh, the whole neighborhood: the `voltmesh` command and the runs that start every part
//! of the stack together.
//!
//! The parts live in their own crates: the market engine (`voltmesh-engine`), the validator node
//! (`voltmesh-consensus`), the meter bridge (`voltmesh-meter-bridge`), the grid simulation
//! (`voltmesh-sim`) and the metrics schema (`voltmesh-metrics`). This crate wires them:
//!
//! - [`cmd`]: one module per subcommand of the `voltmesh` binary, each returning
//!   `anyhow::Result` to the binary's one error reporter;
//! - [`demo`]: `voltmesh demo`, a whole neighborhood in one process (validators, an MQTT broker,
//!   simulated meters, the bridge);
//! - [`via_network`]: `voltmesh sim --via-network`, the network's finalized trades against the
//!   in-process simulation's;
//! - [`meters`]: simulated smart meters (DSMR, Tasmota, Shelly payloads from the profiles);
//! - [`testing`]: real processes on 127.0.0.1 for tests and benches: [`testing::cluster`]
//!   (`voltmesh node` processes of one neighborhood), a `voltmesh bridge` starter and a process
//!   guard.

pub mod cmd;
pub mod demo;
pub mod meters;
pub mod testing;
pub mod via_network;
