//! Voltmesh neighborhood node: HotStuff consensus over libp2p, the durable ledger and the node API.
//!
//! Modules: [`protocol`] (sans-I/O HotStuff replica), [`net`] (libp2p adapter), [`ledger`] (the
//! replicated application), [`store`] (redb), [`index`] (the API's read model), [`node`] (the
//! driver task and HTTP API), [`verify`] (the auditor's re-execution). The types shared with
//! clients (signed orders, clearings, genesis, the key file, the API's views) are in
//! [`voltmesh_wire`], re-exported as [`wire`]; [`chain_of`] turns a genesis into a consensus chain;
//! [`state_sync`] serves and verifies ledger snapshots.

pub use voltmesh_engine as engine;
pub use voltmesh_wire as wire;

mod chain;
pub use chain::chain_of;
#[cfg(feature = "clap")]
pub mod cli;
pub mod index;
pub mod ledger;
pub mod net;
pub mod node;
pub mod protocol;
pub mod state_sync;
pub mod store;
pub mod verify;
