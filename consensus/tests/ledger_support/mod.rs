//! What the ledger's in-process tests (`ledger.rs`, `governance.rs`, `deliveries.rs`) share: the
//! start time `T0`, deterministic keys, block times after `T0`, and a block on top of another.

#![allow(dead_code, unreachable_pub)]

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use voltmesh_consensus::protocol::{Block, QuorumCert, ValidatorIndex};
use voltmesh_consensus::wire::PublicKey;

/// The genesis time of every ledger test.
pub const T0: &str = "2026-11-22T10:00:00Z";

/// The signing key made of byte `n`.
pub fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

/// [`key`]`(n)`'s public key.
pub fn pk(n: u8) -> PublicKey {
    PublicKey(key(n).verifying_key().to_bytes())
}

/// `T0` in Unix seconds.
pub fn t0() -> i64 {
    T0.parse::<DateTime<Utc>>().unwrap().timestamp()
}

/// Milliseconds at `T0 + secs`.
pub fn at(secs: i64) -> u64 {
    (t0() + secs) as u64 * 1000
}

/// A block on `parent` (next height and view, proposer 0) at `T0 + secs` carrying `payload`.
pub fn child(parent: &Block, secs: i64, payload: Vec<u8>) -> Block {
    Block::new(
        parent.height() + 1,
        parent.view() + 1,
        ValidatorIndex(0),
        at(secs),
        QuorumCert::empty(parent.hash()),
        payload,
    )
}
