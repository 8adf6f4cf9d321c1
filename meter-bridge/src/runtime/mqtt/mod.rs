//! The bridge's MQTT I/O, built around the pure [`Ingest`](crate::Ingest) core.
//!
//! # Connections and tasks
//! ```text
//!             subscribing connection (client id = broker.client_id, persistent session)
//!  broker ──► [subscriber task: poll → Ingest (shared) → PUBACKs in batches]
//!     ▲                                  │        └─► readings queue
//!     │        publishing connection     │ dead letters
//!     │        ("<client_id>-out")       ▼
//!     └──────── [publisher event loop task] ◄──── results task ◄── follow-ups (node clearings)
//! ```
//! * [`subscriber`]: one task owns the subscribing [`rumqttc::EventLoop`] and polls it forever,
//!   reconnecting with capped exponential [`backoff`]. QoS 1, `clean_session = false`, manual
//!   acks: the same task records each message with [`Ingest::handle`](crate::Ingest), hands the
//!   reading on (or queues its dead letter) and only then acknowledges it, in batches with one
//!   flush each, so neither a broker restart nor a bridge crash loses a QoS 1 reading;
//!   redeliveries are recognised by (meter, timestamp) and counted once.
//! * [`publisher`]: a second connection for everything the bridge publishes, so a slow or
//!   disconnected publisher can never hold up the acknowledgements of the subscribing connection.
//! * [`results`]: the fills, clearing summaries and settlements sent to households (their topics
//!   are in [`crate::household::topic`]).
//! * [`options`]: [`rumqttc::MqttOptions`] from the config (credentials, TLS with rustls/ring).

pub mod backoff;
pub mod options;
pub mod publisher;
pub mod results;
pub mod subscriber;

pub use backoff::Backoff;
pub use options::{mqtt_options, OptionsError};
pub use publisher::{PublishError, Publisher};
pub use results::{ClearingSummary, FillLine, HouseholdFills, ResultMessage, SettlementNotice};
