//! Voltmesh neighborhood node: HotStuff consensus over libp2p, the durable ledger and the node API.
//!
//! This crate is filled by the node issue; for now it only re-exports the engine it will replicate.

pub use voltmesh_engine as engine;

pub mod genesis;
pub mod ledger;
pub mod net;
pub mod protocol;
