//! `voltmesh node`: one neighborhood validator.
//!
//! The driver task owns the consensus [`Replica`](crate::protocol::Replica) with its
//! [`LedgerApp`](crate::ledger::LedgerApp), the [`Store`](crate::store::Store) and the API's read
//! [`Index`](crate::index::Index); it `select!`s over network events, API requests, the replica's
//! timer and shutdown, and executes the replica's outputs in order: persist (durable before the
//! next send), send, commit. The libp2p event loop and the HTTP server run as their own tasks and
//! talk to the driver only through bounded channels.

pub mod api;
mod api_listener;
pub mod api_reads;
mod bill_totals;
mod config;
mod driver;
mod epochs;
mod gossip;
pub mod metrics;
mod read_access;
mod timer;

pub use config::{NodeConfig, NodeConfigError, NodeFault, Testing};
pub use driver::{run, NodeError};
