//! The sans-I/O consensus core: chained HotStuff with the 2-chain commit rule of
//! Jolteon/HotStuff-2, a pacemaker with timeout certificates, leader reputation and block sync.
//!
//! Start at [`Replica`]; the design, message types and safety argument are in
//! `consensus/README.md`.
//!
//! # Determinism
//! Nothing here reads a clock, draws randomness or performs I/O; maps are `BTreeMap`s. The
//! driver passes the time into every call and executes the returned [`Output`]s.
//!
//! # Example
//! A single-validator chain driven by ticks alone (a real node also feeds messages from peers
//! and persists, sends and applies the outputs in order):
//!
//! ```
//! use ed25519_dalek::SigningKey;
//! use voltmesh_consensus::protocol::{
//!     App, Block, Chain, Config, Input, Output, Reject, Replica, ValidatorSet,
//! };
//!
//! struct Counter;
//! impl App for Counter {
//!     fn propose(&mut self, parent: &Block, _time_ms: u64) -> Vec<u8> {
//!         (parent.height() + 1).to_be_bytes().to_vec()
//!     }
//!     fn validate(&mut self, parent: &Block, payload: &[u8], _time_ms: u64) -> Result<(), Reject> {
//!         if payload == (parent.height() + 1).to_be_bytes() {
//!             Ok(())
//!         } else {
//!             Err(Reject::new("not the next number"))
//!         }
//!     }
//!     fn commit(&mut self, _block: &Block) {}
//! }
//!
//! let key = SigningKey::from_bytes(&[7; 32]);
//! let validators = ValidatorSet::new([key.verifying_key()]).unwrap();
//! let chain = Chain::new(validators, Block::genesis(0, b"example".to_vec()));
//! let mut replica = Replica::new(chain, key, Config::default(), Counter).unwrap();
//!
//! let (mut now, mut committed) = (0, Vec::new());
//! while committed.len() < 3 {
//!     for output in replica.handle(now, Input::Tick) {
//!         match output {
//!             Output::Commit(block) => committed.push(block.height()),
//!             Output::ScheduleTick(at) => now = at,
//!             _ => {} // persist, send: nothing to do with one validator
//!         }
//!     }
//! }
//! assert_eq!(committed, [1, 2, 3]);
//! ```

pub mod app;
pub mod block;
mod block_tree;
pub mod certificate;
pub mod chain;
pub mod codec;
pub mod config;
pub mod error;
pub mod hash;
mod leader;
pub mod message;
pub mod replica;
pub mod safety;
pub mod timeout;
pub mod validators;

pub use app::{App, Reject};
pub use block::Block;
pub use block_tree::CommitConflict;
pub use certificate::{QuorumCert, Vote};
pub use chain::Chain;
pub use codec::{DecodeError, MAX_MESSAGE_BYTES, MAX_PAYLOAD_BYTES};
pub use config::{Config, TestFault};
pub use error::{ReplicaError, VerifyError};
pub use hash::BlockHash;
pub use message::{Msg, Proposal};
pub use replica::{
    committed_sync_response, Input, Output, Persist, Replica, RetiredApp, Stats, Status,
};
pub use safety::SafetyState;
pub use timeout::{Timeout, TimeoutCert};
pub use validators::{ValidatorIndex, ValidatorSet, ValidatorSetError, MAX_VALIDATORS};
