//! Voltmesh meter bridge: decodes smart-meter payloads that arrive over MQTT, forecasts each
//! household's next interval and turns it into orders.
//!
//! # Layout
//!
//! * [`Reading`]: the normalised reading every decoder produces.
//! * Decoders, one module per format, each a pure function with its own error type:
//!   [`dsmr`] (P1 telegrams), [`tasmota`] (SML JSON), [`shelly_gen2`] (Pro 3EM `NotifyStatus`),
//!   [`shelly_gen1`] (EM per-value topics), [`native`] (Voltmesh's own JSON).
//! * [`format`](mod@format): the [`Format`] enum, the [`Decoder`] dispatcher and [`DecodeError`].
//! * Households: [`registry`] (meters → participants and their limit prices), [`registers`]
//!   (validated cumulative registers and metered energy per interval), [`forecast`] (next
//!   interval's net energy) and [`orders`] (deterministic, idempotent orders).
//! * Households' own messages: [`household_topic`] (topic layout), [`household_order`]
//!   (their own orders, which replace the forecast's for their interval) and
//!   [`household_preferences`] (retained limit prices and on/off).
//! * [`ingest`]: the [`Ingest`] state machine the MQTT loop drives, and [`DeadLetter`] records.
//! * I/O around that core: [`config`] (`bridge.toml`), [`mqtt`] (subscribing and publishing
//!   connections, results to households), [`order_sink`] (per-order signing and the sink seam),
//!   [`node_client`] (the node's HTTP API as a sink) and
//!   [`bridge::run`], which runs it all until a shutdown future completes.
//!
//! Nothing in this crate's core does I/O or reads a clock: times arrive as arguments.
#![deny(clippy::float_arithmetic, clippy::print_stdout, clippy::print_stderr)]

pub mod bridge;
pub mod config;
pub mod dead_letter;
pub mod decimal;
pub mod dsmr;
pub mod error_kind;
pub mod forecast;
pub mod format;
pub mod household_order;
pub mod household_preferences;
pub mod household_topic;
pub mod ingest;
mod json;
pub mod local_time;
pub mod metrics;
pub mod mqtt;
pub mod native;
pub mod node_client;
pub mod order_sink;
pub mod orders;
pub mod reading;
pub mod registers;
pub mod registry;
pub mod shelly_gen1;
pub mod shelly_gen2;
pub mod shutdown;
pub mod tasmota;
#[cfg(feature = "testing")]
pub mod testing;

pub use dead_letter::DeadLetter;
pub use error_kind::ErrorKind;
pub use format::{DecodeError, Decoder, DecoderConfig, Format};
pub use ingest::{Counters, Ingest, IngestConfig, Outcome};
pub use reading::{BadMeterId, MeterId, Reading, MAX_PAYLOAD_BYTES};
pub use voltmesh_engine as engine;

/// At most 48 bytes of `bytes`, lossily as text, for error messages and logs.
pub(crate) fn snippet(bytes: &[u8]) -> String {
    const MAX: usize = 48;
    let cut = &bytes[..bytes.len().min(MAX)];
    let mut text = String::from_utf8_lossy(cut).into_owned();
    if bytes.len() > MAX {
        text.push('…');
    }
    text
}
