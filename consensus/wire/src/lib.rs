//! The contract between Voltmesh nodes and their clients (meter bridges, household apps, test
//! harnesses): what is signed, what the node API sends and receives, and the files both sides
//! read.
//!
//! | module | what |
//! |---|---|
//! | [`order`] | [`OrderTicket`], [`SignedOrder`] and the signing bytes (`voltmesh/order/v1`; prices with six decimals) |
//! | [`clearing`] | [`IntervalClearing`]: one interval's clearing |
//! | [`delivery`] | [`delivery::SignedDelivery`]: what a participant's meters recorded in an interval, signed (`voltmesh/delivery/v1`), and [`delivery::DeliveryRejection`] |
//! | [`bill`] | [`bill::IntervalBills`]: an interval's bills as the validators computed them, and the [`bill::BillsRecord`] a block carries |
//! | [`read`] | signed reads of a participant's data (`voltmesh/read/v1` headers) and [`read::ReadRejection`] |
//! | [`reject`] | [`OrderRejection`] and its stable [`kind`](OrderRejection::kind) |
//! | [`governance`] | [`governance::SignedProposal`], [`governance::Action`], policies and the signing bytes (`voltmesh/governance/v1`) |
//! | [`genesis`] | [`Genesis`] (parse and validate), [`PublicKey`], [`GenesisError`] |
//! | [`currency`] | [`Currency`]: the community's ISO 4217 currency and its minor unit |
//! | [`key`] | the hex ed25519 key file |
//! | [`api`] | routes, views and the error body of the node API |
//! | `openapi` (feature `openapi`) | the node API's OpenAPI document, generated from these types |
//! | `client` (feature `client`) | [`NodeClient`](client::NodeClient), a typed node API client, and a blocking facade |
//!
//! No networking stack, store or server: a household app can depend on this crate alone.

pub mod api;
pub mod bill;
pub mod clearing;
#[cfg(feature = "client")]
pub mod client;
pub mod correction;
pub mod currency;
pub mod delivery;
pub mod genesis;
pub mod governance;
pub mod key;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod order;
pub mod read;
pub mod reject;
mod signature;

pub use clearing::IntervalClearing;
pub use currency::{Currency, CurrencyError};
pub use genesis::{Genesis, GenesisError, GenesisValidator, PublicKey};
pub use order::{OrderTicket, SignedOrder};
pub use reject::OrderRejection;
pub use voltmesh_engine as engine;
