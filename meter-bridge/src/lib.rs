//! Voltmesh meter bridge: decodes smart-meter payloads that arrive over MQTT, forecasts each
//! household's next interval, submits its order to a node, and publishes the results back to
//! households.
//!
//! # Layout
//!
//! The crate is a pure core with three wings; only [`runtime`] does I/O or reads a clock.
//!
//! * **Core** (this folder): [`Reading`] and [`MeterId`] ([`reading`], with the shared payload
//!   size check), [`ErrorKind`] (the countable kind of every refusal), [`DeadLetter`] records,
//!   the [`Ingest`] state machine the MQTT loop drives ([`ingest`]), [`config`] (`bridge.toml`)
//!   and [`shutdown`]. [`community`] is what the ledger says about members, keys and market rules
//!   per interval (the bridge follows the node's `GET /v1/governance`). [`order_sink`] (signing, the [`order_sink::OrderSink`] seam and the
//!   counting decorator) and [`cli`] (`voltmesh bridge`'s arguments, feature `clap`) sit here too.
//! * **[`decode`]**: the [`Format`] enum, the [`Decoder`] dispatcher and [`DecodeError`], and
//!   one pure module per format, each with its own error type: [`decode::dsmr`] (P1
//!   telegrams), [`decode::tasmota`] (SML JSON), [`decode::shelly_gen2`] (Pro 3EM
//!   `NotifyStatus`), [`decode::shelly_gen1`] (EM per-value topics), [`decode::native`]
//!   (Voltmesh's own JSON), with their number and local-time helpers; [`decode::capture`] decodes
//!   payloads an installer captured (`voltmesh bridge decode`).
//! * **[`household`]**: who the households are and what they trade: [`household::registry`]
//!   (meters → participants and limit prices), [`household::registers`] (validated cumulative
//!   registers and metered energy per interval), [`household::forecast`],
//!   [`household::plan`] (deterministic, idempotent orders), households' own messages
//!   ([`household::own_order`], [`household::preferences`]) and [`household::topic`], the
//!   whole MQTT topic tree between the bridge and households, both directions.
//! * **[`runtime`]**: the tasks around that core: [`runtime::run`] with its [`runtime::Io`],
//!   the order planner, the node's HTTP API as the order sink ([`runtime::node_sink`], over
//!   [`voltmesh_wire::client::NodeClient`]), the follow-ups (a pure state machine polled by a task), the
//!   [`runtime::clock::Clock`] seam, the shared ingest state, metrics, and the MQTT
//!   connections ([`runtime::mqtt`]).
//!
//! Nothing outside [`runtime`] does I/O or reads a clock: times arrive as arguments, and the
//! runtime's tasks read the one [`runtime::clock::Clock`] they are given.
#![deny(clippy::float_arithmetic, clippy::print_stdout, clippy::print_stderr)]

#[cfg(feature = "clap")]
pub mod cli;
pub mod community;
pub mod config;
pub mod dead_letter;
pub mod decode;
pub mod error_kind;
pub mod household;
pub mod ingest;
pub mod order_sink;
pub mod reading;
pub mod runtime;
pub mod shutdown;
#[cfg(feature = "testing")]
pub mod testing;

pub use dead_letter::DeadLetter;
pub use decode::{DecodeError, Decoder, DecoderConfig, Format};
pub use error_kind::ErrorKind;
pub use ingest::{Counters, Ingest, IngestConfig, Outcome};
pub use reading::{BadMeterId, MeterId, Reading, MAX_PAYLOAD_BYTES};
pub use voltmesh_engine as engine;
