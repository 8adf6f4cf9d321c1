//! `voltmesh demo`: a whole neighborhood on one machine, with nothing to install.
//!
//! One process runs, on 127.0.0.1:
//! - an MQTT broker ([`broker`]: rumqttd in-process behind the `embedded-broker` feature, or an
//!   external one named with `--broker`);
//! - `nodes` validator nodes ([`nodes`]), each `voltmesh_consensus::node::run` on a thread of its
//!   own with its own runtime, talking libp2p to each other over loopback TCP;
//! - simulated meters ([`crate::meters`]) that publish real DSMR, Tasmota and Shelly payloads of
//!   the bundled SimBench `1-LV-rural1--0-sw` households at accelerated time (one 15-minute profile
//!   step per market interval of `interval_secs` seconds);
//! - the meter bridge (`voltmesh_meter_bridge::runtime::run`), which decodes the readings, forecasts
//!   each household, signs orders with the bridge key genesis allows for every household and
//!   submits them to node 0's HTTP API.
//!
//! [`neighborhood`] writes keys, genesis and node configs into a temporary directory;
//! [`households`] picks the households, their limit prices (the simulation's seeded bidding
//! strategy) and their meters; [`progress`] reads each interval's committed clearing from the node
//! API; [`summary`] settles the intervals and prints the table; [`compare`] re-clears the committed
//! orders with the in-process engine and [`own_orders`] publishes households' own orders
//! (`voltmesh sim --via-network`); [`mod@run`] ties it together.

pub mod broker;
pub mod compare;
pub mod households;
pub mod neighborhood;
pub mod nodes;
pub mod own_orders;
pub mod progress;
pub mod run;
pub mod summary;

pub use run::{run, run_blocking, DemoOptions, DemoOutcome};

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// An option is out of range.
    #[error("{0}")]
    Options(String),
    /// The bundled grid could not be read.
    #[error("grid: {0}")]
    Grid(String),
    /// A file, directory, port or thread could not be made.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Keys or genesis could not be made.
    #[error("setup: {0}")]
    Setup(String),
    /// The broker could not start or the `--broker` URL is unusable.
    #[error("broker: {0}")]
    Broker(String),
    /// A node failed to start or stopped.
    #[error("node {index}: {message}")]
    Node {
        /// Which node.
        index: usize,
        /// What happened.
        message: String,
    },
    /// The meter bridge could not start.
    #[error("bridge: {0}")]
    Bridge(String),
    /// The neighborhood did not come up or stalled.
    #[error("{0}")]
    Stalled(String),
}

pub(crate) fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DemoError {
    let what = what.into();
    move |source| DemoError::Io { what, source }
}
