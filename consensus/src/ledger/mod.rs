//! The replicated application: signed orders in, interval clearings out.
//!
//! The order, clearing and rejection types are the wire contract's ([`voltmesh_wire`]);
//! this module holds what only validators need.
//!
//! Every block's payload is a [`BlockBody`]: the signed orders the proposer took from its mempool
//! and, for the oldest interval whose gate closed at or before the block's time, the record of
//! that interval's clearing ([`ClearingRecord`]: price, volume, trade count and the SHA-256 of the
//! full clearing). A validator re-executes the body on its own copy of the state after the parent
//! ([`LedgerState::execute`]): it checks every order (signature by a key genesis allows for the
//! participant, id not yet used by the participant in the interval, interval still open at block
//! time, the market's rules) and re-runs the engine on each closing interval's book; it votes
//! only if the records in the body are byte-for-byte those of the clearings it computed, which it
//! keeps to serve. Gate closure is decided from block time only. Once an interval's delivery
//! window has closed, the next block settles it ([`billing`]): every validator computes every
//! participant's bill from the committed trades and metered deliveries and votes only if the
//! block's [`voltmesh_wire::bill::BillsRecord`]s are those of the bills it computed.
//!
//! # Canonical encoding
//! Bodies are compact JSON of these types (fixed field order, `BTreeMap`s only, prices as 6-decimal
//! strings). A body is accepted only if re-encoding the decoded value gives back the same bytes,
//! so one value has exactly one encoding.

mod app;
pub mod billing;
mod body;
mod clearing_record;
mod community;
pub mod corrections;
pub mod deliveries;
mod mempool;
mod reject;
pub mod snapshot;
mod state;

pub use app::{
    CommittedBlock, DeliveryPool, DroppedOrder, LedgerApp, ProposalAccepted, CORRECTION_POOL,
    DELIVERY_POOL, DROPPED_RECORD, MEMPOOL_CAPACITY, PROPOSAL_POOL,
};
pub use body::{
    BlockBody, MAX_CORRECTIONS_PER_BLOCK, MAX_CORRECTION_BYTES, MAX_DELIVERIES_PER_BLOCK,
    MAX_ORDERS_PER_BLOCK, MAX_PROPOSALS_PER_BLOCK, ORDER_BYTES_BUDGET,
};
pub use clearing_record::ClearingRecord;
pub use community::{Community, Pending, Prepared};
pub use mempool::{key_of, Mempool, MempoolError, OrderKey};
pub use reject::BlockRejection;
pub use state::{Executed, LedgerState, MAX_INTERVALS_AHEAD};
