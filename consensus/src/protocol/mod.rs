//! The sans-I/O consensus core: chained HotStuff with the 2-chain commit rule of
//! Jolteon/HotStuff-2, a pacemaker with timeout certificates, leader reputation and block sync.
//!
//! Start at [`Replica`]; the design, message types and safety argument are in
//! `consensus/README.md`.
//!
//! # Determinism
//! Nothing here reads a clock, draws randomness or performs I/O; maps are `BTreeMap`s. The
//! driver passes the time into every call and executes the returned [`Output`]s.

pub mod app;
pub mod block;
mod block_tree;
pub mod certificate;
pub mod chain;
pub mod codec;
pub mod config;
pub mod error;
mod leader;
pub mod message;
pub mod replica;
pub mod safety;
pub mod timeout;
pub mod validators;

pub use app::{App, Reject};
pub use block::{Block, BlockHash};
pub use block_tree::CommitConflict;
pub use certificate::{QuorumCert, Vote};
pub use chain::Chain;
pub use codec::{DecodeError, MAX_MESSAGE_BYTES, MAX_PAYLOAD_BYTES};
pub use config::{Config, TestFault};
pub use error::{ReplicaError, VerifyError};
pub use message::{Msg, Proposal};
pub use replica::{Input, Output, Persist, Replica, Stats, Status};
pub use safety::SafetyState;
pub use timeout::{Timeout, TimeoutCert};
pub use validators::{ValidatorIndex, ValidatorSet, ValidatorSetError, MAX_VALIDATORS};
