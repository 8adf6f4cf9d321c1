//! The bridge's MQTT I/O, built around the pure [`Ingest`](crate::Ingest) core.
//!
//! # Connections and tasks
//! ```text
//!             subscribing connection (client id = broker.client_id, persistent session)
//!  broker ──► [event loop task] ──ingest queue──► [ingest worker] ──► Ingest (shared)
//!     ▲              ▲                                 │  │             └─► readings queue
//!     │              └──── PUBACKs in batches (AckLink) ┘  │
//!     │        publishing connection ("<client_id>-out") │ dead letters
//!     └──────── [publisher event loop task] ◄────────────┴── results task ◄── node results
//! ```
//! * [`ingest`]: one task owns the subscribing [`rumqttc::EventLoop`] and polls it forever,
//!   reconnecting with capped exponential [`backoff`]. QoS 1, `clean_session = false`, manual
//!   acks: a message is acknowledged by the worker only after [`Ingest::handle`](crate::Ingest)
//!   recorded it and the reading was handed on (or its dead letter queued), so neither a broker
//!   restart nor a bridge crash loses a QoS 1 reading; redeliveries are recognised by (meter,
//!   timestamp) and counted once.
//! * [`acks`]: the acks of one connection, written by the event loop task in batches (one flush
//!   per batch instead of one per message).
//! * [`publisher`]: a second connection for everything the bridge publishes, so a slow or
//!   disconnected publisher can never hold up the acknowledgements of the subscribing connection.
//! * [`results`]: fills, clearing summaries and settlements to households; topic layout there.
//! * [`options`]: [`rumqttc::MqttOptions`] from the config (credentials, TLS with rustls/ring).

pub mod acks;
pub mod backoff;
pub mod ingest;
pub mod options;
pub mod publisher;
pub mod results;

pub use backoff::Backoff;
pub use options::{mqtt_options, OptionsError};
pub use publisher::{PublishError, Publisher};
pub use results::{ClearingSummary, FillLine, HouseholdFills, ResultMessage, SettlementNotice};
