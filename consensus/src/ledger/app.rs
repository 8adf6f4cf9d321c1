//! [`LedgerApp`]: the ledger as the consensus replica's [`App`].

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::body::{
    MAX_CORRECTIONS_PER_BLOCK, MAX_CORRECTION_BYTES, MAX_DELIVERIES_PER_BLOCK, MAX_ORDERS_PER_BLOCK,
};
use super::mempool::{key_of, MempoolError, OrderKey};
use voltmesh_wire::bill::IntervalBills;
use voltmesh_wire::correction::{CorrectionRejection, IntervalCorrections, SignedCorrection};
use voltmesh_wire::delivery::{DeliveryRejection, SignedDelivery};
use voltmesh_wire::governance::{Epoch, GovernanceRejection, SignedProposal};
use voltmesh_wire::{Genesis, IntervalClearing, OrderRejection, SignedOrder};

use super::community::Prepared;

use super::snapshot::{carries_digest, digest, is_snapshot_height};
use super::{BlockBody, BlockRejection, ClearingRecord, LedgerState, Mempool};
use crate::protocol::{App, Block, BlockHash, Reject};

/// A block the replica committed, decoded for storage and the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedBlock {
    /// Height in the chain.
    pub height: u64,
    /// The block's hash.
    pub hash: BlockHash,
    /// Block time, ms since the epoch.
    pub timestamp_ms: u64,
    /// Orders the block added.
    pub orders: Vec<SignedOrder>,
    /// Intervals the block cleared: the full clearings, as this node computed them (the block
    /// carries their [`ClearingRecord`]s).
    pub clearings: Vec<IntervalClearing>,
    /// Intervals the block settled: every bill, as this node computed them (the block carries
    /// their [`voltmesh_wire::bill::BillsRecord`]s).
    pub bills: Vec<IntervalBills>,
    /// Intervals the block's correction imports corrected, as this node computed them.
    pub corrections: Vec<IntervalCorrections>,
    /// At a snapshot height ([`super::snapshot::is_snapshot_height`]), the snapshot bytes of
    /// the state after this block, for the node to store and serve.
    pub snapshot: Option<Vec<u8>>,
}

/// The ledger application: validates and builds block bodies, keeps the mempool and the state
/// after every block it has seen, and logs committed blocks for the node to store.
///
/// # Invariants
/// `states` holds the state after every block the app proposed on, was told is certified
/// ([`App::certified`]) or committed that is not yet below the committed height; `validated` holds
/// the state each `validate` computed, keyed by what identifies the block before its hash is known
/// (parent, payload digest, block time), pruned the same way. The state after a block is computed
/// once, from its parent's, and never changes. Once `halted` is set, nothing more is applied.
///
/// # Epochs
/// The app serves the replica of epoch `epoch`. A block whose parent's state is in a later
/// epoch (the parent or an ancestor applied a validator change) is above the epoch's last
/// block: it must be empty (its payload is no bytes at all), its state is its parent's, and if
/// it commits it is not applied. Once the epoch's last block commits, [`LedgerApp::epoch_ended`]
/// says so and the node starts the next epoch's replica ([`LedgerApp::enter_epoch`]).
#[derive(Debug)]
pub struct LedgerApp {
    genesis: Arc<Genesis>,
    /// The epoch of the replica this app serves.
    epoch: u64,
    /// State after each known block, with the block's height (for pruning).
    states: HashMap<BlockHash, Arc<After>>,
    /// State after each validated payload.
    validated: HashMap<ValidatedKey, Arc<After>>,
    committed: Arc<LedgerState>,
    committed_height: u64,
    mempool: Mempool,
    /// Signed proposals this node took through its API and will put in the blocks it proposes
    /// until they are committed (at most [`PROPOSAL_POOL`]; approvals of one proposal merged).
    proposals: Vec<SignedProposal>,
    /// Metered deliveries this node took through its API (signatures verified), waiting for
    /// its blocks until committed or refused (at most [`DELIVERY_POOL`]), by interval and
    /// participant (oldest intervals go into blocks first).
    deliveries: DeliveryPool,
    /// Correction imports this node took through its API, waiting for its blocks until
    /// committed or refused (at most [`CORRECTION_POOL`]).
    corrections: Vec<SignedCorrection>,
    log: Vec<CommittedBlock>,
    halted: Option<String>,
    /// The last [`DROPPED_RECORD`] accepted orders that were dropped without being committed,
    /// oldest first.
    dropped: VecDeque<DroppedOrder>,
}

/// How many dropped orders [`LedgerApp::dropped`] remembers.
pub const DROPPED_RECORD: usize = 10_000;

/// An accepted order that left the mempool without being committed, and why: its gate closed
/// (`closed_interval`), or the committed state refused it (a limit filled by orders other nodes
/// accepted, a conflicting order with its id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedOrder {
    /// Participant, interval, id.
    pub key: OrderKey,
    /// Why.
    pub reason: OrderRejection,
}

/// The state after a block, with the block's height (for pruning) and the full clearings it
/// recorded (a block carries only their records; these are what the node serves once it
/// commits).
#[derive(Debug)]
struct After {
    height: u64,
    state: Arc<LedgerState>,
    clearings: Vec<IntervalClearing>,
    /// The bills it settled.
    bills: Vec<IntervalBills>,
    /// The corrections it executed.
    corrections: Vec<IntervalCorrections>,
    /// The block's orders, decoded once at execution (the commit log takes a copy).
    orders: Vec<SignedOrder>,
}

/// A validated block before its hash is known: parent, SHA-256 of the payload, block time.
type ValidatedKey = (BlockHash, [u8; 32], u64);

fn validated_key(parent: BlockHash, payload: &[u8], block_time_ms: u64) -> ValidatedKey {
    (
        parent,
        crate::protocol::hash::sha256(payload),
        block_time_ms,
    )
}

/// Bytes a built body keeps free for its state digest (`,"state":"<64 hex>"`).
const DIGEST_ROOM: usize = 128;

/// Signed proposals a node holds for its blocks at most.
pub const PROPOSAL_POOL: usize = 64;

/// What became of a signed proposal a node took: its approvals wait for a block, and then
/// either collect (`approved` of `threshold` so far, counting these) or take effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProposalAccepted {
    /// Approvals by keys of the action's policy, these included.
    pub approved: usize,
    /// How many the policy needs.
    pub threshold: u32,
}

/// Pending orders a node accepts at most.
pub const MEMPOOL_CAPACITY: usize = 100_000;

/// Metered deliveries a node holds for its blocks at most: four intervals of 10,000 households
/// and more.
pub const DELIVERY_POOL: usize = 50_000;

/// Correction imports a node holds for its blocks at most.
pub const CORRECTION_POOL: usize = 16;

/// A node's metered deliveries waiting for its blocks, by interval and participant.
pub type DeliveryPool =
    std::collections::BTreeMap<(i64, voltmesh_engine::ParticipantId), SignedDelivery>;

impl LedgerApp {
    /// A fresh app whose chain starts at `genesis_block`.
    pub fn new(genesis: Arc<Genesis>, genesis_block: &Block) -> Self {
        let initial = LedgerState::new(&genesis);
        Self::starting_at(genesis, genesis_block, initial)
    }

    /// An app whose committed tip is `block`, with `state` the state after it: a node that
    /// starts from a verified snapshot (state sync) instead of replaying the chain.
    pub fn from_snapshot(genesis: Arc<Genesis>, block: &Block, state: LedgerState) -> Self {
        Self::starting_at(genesis, block, state)
    }

    /// An app whose committed tip is `tip`, with `initial` the state after it.
    fn starting_at(genesis: Arc<Genesis>, tip: &Block, mut initial: LedgerState) -> Self {
        initial.height = tip.height();
        let epoch = initial.community().epoch().number;
        let initial = Arc::new(initial);
        let mut states = HashMap::new();
        states.insert(
            tip.hash(),
            Arc::new(After {
                height: tip.height(),
                state: Arc::clone(&initial),
                clearings: Vec::new(),
                bills: Vec::new(),
                corrections: Vec::new(),
                orders: Vec::new(),
            }),
        );
        LedgerApp {
            genesis,
            epoch,
            states,
            validated: HashMap::new(),
            committed: initial,
            committed_height: tip.height(),
            mempool: Mempool::new(MEMPOOL_CAPACITY),
            proposals: Vec::new(),
            deliveries: DeliveryPool::new(),
            corrections: Vec::new(),
            log: Vec::new(),
            halted: None,
            dropped: VecDeque::new(),
        }
    }

    /// Why the app stopped, if a committed block did not execute (audit finding L9).
    ///
    /// A quorum committed a payload this replica cannot execute: its state can no longer follow
    /// the chain, so it applies nothing more and the node must stop (the driver checks this after
    /// every commit) rather than serve a state that silently diverged.
    pub fn halted(&self) -> Option<&str> {
        self.halted.as_deref()
    }

    /// The genesis this app runs.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The epoch of the replica this app serves.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The next epoch, once the last block of this app's epoch committed (its validator change
    /// took effect): the node then retires this epoch's replica and starts the next one on this
    /// app ([`LedgerApp::enter_epoch`]), rooted at the committed tip.
    pub fn epoch_ended(&self) -> Option<&Epoch> {
        let next = self.committed.community().epoch();
        (next.number > self.epoch).then_some(next)
    }

    /// Serves the epoch the committed state is in (after [`LedgerApp::epoch_ended`]): forgets
    /// the states of the blocks above the committed tip (the ended epoch's empty tail; the new
    /// epoch's blocks all extend the tip).
    pub fn enter_epoch(&mut self) {
        self.epoch = self.committed.community().epoch().number;
        let tip = self.committed_height;
        self.states.retain(|_, after| after.height <= tip);
        self.validated.clear();
    }

    /// Whether a block on top of a block with state `parent` is above its epoch's last block.
    fn after_epoch_end(&self, parent: &LedgerState) -> bool {
        parent.community().epoch().number > self.epoch
    }

    /// The committed state.
    pub fn committed(&self) -> &LedgerState {
        &self.committed
    }

    /// Accepted orders dropped without being committed, oldest first (at most
    /// [`DROPPED_RECORD`]).
    pub fn dropped(&self) -> impl DoubleEndedIterator<Item = &DroppedOrder> {
        self.dropped.iter()
    }

    /// Pending orders.
    pub fn mempool(&self) -> &Mempool {
        &self.mempool
    }

    /// Signed proposals waiting for a block of this node.
    pub fn proposals(&self) -> &[SignedProposal] {
        &self.proposals
    }

    /// Takes a signed proposal for the next blocks this node proposes if the committed state
    /// would take it at `now_ms`; approvals of a proposal the node holds already are merged.
    ///
    /// # Errors
    /// [`GovernanceRejection`] saying why; `pool_full` if [`PROPOSAL_POOL`] other proposals wait.
    pub fn submit_proposal(
        &mut self,
        signed: SignedProposal,
        now_ms: u64,
    ) -> Result<ProposalAccepted, GovernanceRejection> {
        let held = self
            .proposals
            .iter()
            .position(|p| p.proposal == signed.proposal);
        let merged = match held {
            Some(i) => self.proposals[i].clone().combine(signed.clone())?,
            None => signed.clone(),
        };
        // Checked as the node will carry it (with the approvals it holds), but refused if these
        // approvals bring nothing new.
        self.committed
            .check_proposal(&self.genesis, &signed, now_ms)?;
        let prepared = self
            .committed
            .check_proposal(&self.genesis, &merged, now_ms)?;
        let accepted = match prepared {
            Prepared::Collect { approved, .. } => ProposalAccepted {
                approved: approved.0,
                threshold: approved.1,
            },
            Prepared::Apply { .. } => {
                let threshold = self
                    .committed
                    .community()
                    .policies()
                    .of(signed.proposal.action.scope())
                    .map_or(0, |p| p.threshold);
                ProposalAccepted {
                    approved: threshold as usize,
                    threshold,
                }
            }
        };
        match held {
            Some(i) => self.proposals[i] = merged,
            None if self.proposals.len() >= PROPOSAL_POOL => {
                return Err(GovernanceRejection::PoolFull)
            }
            None => self.proposals.push(merged),
        }
        Ok(accepted)
    }

    /// Metered deliveries waiting for a block of this node, by interval and participant.
    pub fn delivery_pool(&self) -> &DeliveryPool {
        &self.deliveries
    }

    /// Whether the pool holds exactly `delivery` (its signature verified on the way in).
    fn delivery_pool_holds(&self, delivery: &SignedDelivery) -> bool {
        let t = &delivery.ticket;
        self.deliveries
            .get(&(t.interval_start, t.participant.clone()))
            .is_some_and(|held| held == delivery)
    }

    /// Takes metered deliveries for the next blocks this node proposes, each if the committed
    /// state would take it at `now_ms` and the pool holds none for its participant and interval
    /// (then `duplicate_delivery`); each answered on its own.
    pub fn submit_deliveries(
        &mut self,
        batch: Vec<SignedDelivery>,
        now_ms: u64,
    ) -> Vec<Result<(), DeliveryRejection>> {
        batch
            .into_iter()
            .map(|delivery| {
                self.committed
                    .admit_delivery(&self.genesis, &delivery, now_ms)?;
                let key = (
                    delivery.ticket.interval_start,
                    delivery.ticket.participant.clone(),
                );
                if self.deliveries.contains_key(&key) {
                    return Err(DeliveryRejection::Duplicate {
                        participant: key.1.to_string(),
                        interval_start: key.0,
                    });
                }
                if self.deliveries.len() >= DELIVERY_POOL {
                    return Err(DeliveryRejection::PoolFull);
                }
                self.deliveries.insert(key, delivery);
                Ok(())
            })
            .collect()
    }

    /// Takes a correction import for the next blocks this node proposes, if the committed
    /// state would take it and it is not larger than [`MAX_CORRECTION_BYTES`].
    ///
    /// # Errors
    /// [`CorrectionRejection`] saying why; the pool's own: `duplicate_correction`, `pool_full`.
    pub fn submit_correction(
        &mut self,
        correction: SignedCorrection,
    ) -> Result<(), CorrectionRejection> {
        let bytes = serde_json::to_vec(&correction).map_or(usize::MAX, |v| v.len());
        if bytes > MAX_CORRECTION_BYTES {
            return Err(CorrectionRejection::Malformed(format!(
                "{bytes} bytes exceed the per-import maximum {MAX_CORRECTION_BYTES}; split it"
            )));
        }
        self.committed
            .admit_correction(&self.genesis, &correction)?;
        if self.corrections.contains(&correction) {
            return Err(CorrectionRejection::Duplicate);
        }
        if self.corrections.len() >= CORRECTION_POOL {
            return Err(CorrectionRejection::PoolFull);
        }
        self.corrections.push(correction);
        Ok(())
    }

    /// Accepts an order into the mempool if the committed state would take it at `now_ms`.
    ///
    /// # Errors
    /// [`OrderRejection`] saying why; an order with the participant, interval and id of a pending
    /// one is a `duplicate_id`.
    ///
    /// Capacity is checked here, counting the pending orders with the committed ones, so that an
    /// accepted order is not later dropped for a limit this node already knew about (audit C1).
    pub fn submit(&mut self, order: SignedOrder, now_ms: u64) -> Result<(), OrderRejection> {
        self.committed.admit(&self.genesis, &order, now_ms)?;
        self.enter(order)
    }

    /// Accepts orders as [`LedgerApp::submit`] one after the other would, each answered on its
    /// own, with the signatures of those that pass the cheap checks verified in one batch
    /// ([`voltmesh_wire::order::signatures_valid`]): the answers are the same, the cost of the
    /// signatures about a third.
    pub fn submit_batch(
        &mut self,
        orders: Vec<SignedOrder>,
        now_ms: u64,
    ) -> Vec<Result<(), OrderRejection>> {
        // The committed state does not change while the batch is admitted, so checking every
        // order against it first gives what checking each just before its turn would.
        let checked: Vec<Result<(), OrderRejection>> = orders
            .iter()
            .map(|o| self.committed.admit_unsigned(&self.genesis, o, now_ms))
            .collect();
        let valid = self.signatures_where(&orders, |i| checked[i].is_ok());
        orders
            .into_iter()
            .zip(checked)
            .zip(valid)
            .map(|((order, checked), valid)| {
                checked?;
                if valid != Some(true) {
                    return Err(OrderRejection::BadSignature);
                }
                self.enter(order)
            })
            .collect()
    }

    /// For each order `i` with `check(i)`, whether its signature is valid, all of them checked in
    /// one batch ([`voltmesh_wire::order::signatures_valid`]); `None` for the others.
    fn signatures_where(
        &self,
        orders: &[SignedOrder],
        check: impl Fn(usize) -> bool,
    ) -> Vec<Option<bool>> {
        let to_verify: Vec<&SignedOrder> = orders
            .iter()
            .enumerate()
            .filter(|&(i, _)| check(i))
            .map(|(_, o)| o)
            .collect();
        let mut valid =
            voltmesh_wire::order::signatures_valid(&to_verify, &self.genesis.neighborhood)
                .into_iter();
        (0..orders.len())
            .map(|i| if check(i) { valid.next() } else { None })
            .collect()
    }

    /// The mempool's checks of an order the committed state admits, signature verified.
    fn enter(&mut self, order: SignedOrder) -> Result<(), OrderRejection> {
        let limits = self
            .committed
            .community()
            .rules_for(order.ticket.interval_start)
            .admission;
        let ticket = &order.ticket;
        let (participant, interval_start) = (&ticket.participant, ticket.interval_start);
        if self
            .committed
            .participant_orders_in(participant, interval_start)
            + self
                .mempool
                .participant_orders_in(participant, interval_start)
            >= limits.max_orders_per_participant_interval
        {
            return Err(OrderRejection::ParticipantIntervalFull {
                interval_start,
                max: limits.max_orders_per_participant_interval,
            });
        }
        let pending = self.mempool.pending_of(participant);
        if pending >= usize::try_from(limits.max_pending_per_participant).unwrap_or(usize::MAX) {
            return Err(OrderRejection::ParticipantPendingFull {
                max: limits.max_pending_per_participant,
            });
        }
        let in_interval = self.committed.orders_in(interval_start)
            + usize::try_from(self.mempool.orders_in(interval_start)).unwrap_or(usize::MAX);
        if in_interval >= usize::try_from(limits.max_orders_per_interval).unwrap_or(usize::MAX) {
            return Err(OrderRejection::IntervalFull {
                interval_start,
                max: limits.max_orders_per_interval,
            });
        }
        let id = LedgerState::engine_id(&order);
        match self.mempool.add(order) {
            Ok(()) => Ok(()),
            Err(MempoolError::Duplicate) => {
                Err(voltmesh_engine::RejectReason::DuplicateId(id).into())
            }
            Err(MempoolError::Full) => Err(OrderRejection::MempoolFull),
        }
    }

    /// Takes the blocks committed since the last call, in height order.
    pub fn take_committed(&mut self) -> Vec<CommittedBlock> {
        std::mem::take(&mut self.log)
    }

    /// The state after `block`, computing it from its parent's if needed.
    fn state_after(&mut self, block: &Block) -> Result<Arc<After>, Reject> {
        if let Some(after) = self.states.get(&block.hash()) {
            return Ok(Arc::clone(after));
        }
        let key = validated_key(block.parent(), block.payload(), block.timestamp_ms());
        if let Some(after) = self.validated.get(&key) {
            let after = Arc::clone(after);
            self.states.insert(block.hash(), Arc::clone(&after));
            return Ok(after);
        }
        let parent = self
            .states
            .get(&block.parent())
            .map(|after| Arc::clone(&after.state))
            .ok_or_else(|| Reject::new("unknown parent state"))?;
        let after = Arc::new(self.execute(
            parent,
            block.height(),
            block.payload(),
            block.timestamp_ms(),
        )?);
        self.states.insert(block.hash(), Arc::clone(&after));
        Ok(after)
    }

    /// Executes `payload` (of a block at `height`) on a copy of `parent`, skipping the signature
    /// checks of the orders this node's mempool holds byte for byte (verified at admission).
    fn execute(
        &self,
        parent: Arc<LedgerState>,
        height: u64,
        payload: &[u8],
        block_time_ms: u64,
    ) -> Result<After, Reject> {
        if self.after_epoch_end(&parent) {
            if !payload.is_empty() {
                return Err(Reject::new(
                    BlockRejection::AfterEpochEnd { epoch: self.epoch }.to_string(),
                ));
            }
            return Ok(After {
                height,
                state: parent,
                clearings: Vec::new(),
                bills: Vec::new(),
                corrections: Vec::new(),
                orders: Vec::new(),
            });
        }
        let body = BlockBody::decode(payload).map_err(|e| Reject::new(e.to_string()))?;
        let expected =
            carries_digest(&self.genesis, height).then(|| digest(&parent.snapshot_bytes()));
        if body.state != expected {
            return Err(Reject::new(
                BlockRejection::WrongStateDigest {
                    expected,
                    got: body.state,
                }
                .to_string(),
            ));
        }
        // Orders this node holds were verified at admission; the others' signatures are checked
        // here in one batch (a bad one is then refused by the single check in execution).
        let held: Vec<bool> = body.orders.iter().map(|o| self.mempool.holds(o)).collect();
        let verified: Vec<bool> = self
            .signatures_where(&body.orders, |i| !held[i])
            .into_iter()
            .zip(&held)
            .map(|(valid, &held)| held || valid == Some(true))
            .collect();
        // Deliveries this node's pool holds were verified when it took them; the others' in
        // one batch.
        let pooled: Vec<bool> = body
            .deliveries
            .iter()
            .map(|d| self.delivery_pool_holds(d))
            .collect();
        let to_check: Vec<&SignedDelivery> = body
            .deliveries
            .iter()
            .zip(&pooled)
            .filter(|(_, &held)| !held)
            .map(|(d, _)| d)
            .collect();
        let mut checked =
            voltmesh_wire::delivery::signatures_valid(&to_check, &self.genesis.neighborhood)
                .into_iter();
        let delivery_verified: Vec<bool> = pooled
            .iter()
            .map(|&held| held || checked.next() == Some(true))
            .collect();
        let mut state = (*parent).clone();
        // The block's height, whatever the parent's state was built with (a validator change
        // records the height of its block).
        state.height = height.saturating_sub(1);
        let executed = state
            .execute_with(
                &self.genesis,
                &body,
                block_time_ms,
                |index| verified.get(index).copied().unwrap_or(false),
                |index| delivery_verified.get(index).copied().unwrap_or(false),
            )
            .map_err(|e| Reject::new(e.to_string()))?;
        Ok(After {
            height,
            state: Arc::new(state),
            clearings: executed.clearings,
            bills: executed.bills,
            corrections: executed.corrections,
            orders: body.orders,
        })
    }

    fn build(&mut self, parent: &Block, block_time_ms: u64) -> BlockBody {
        let Ok(after) = self.state_after(parent) else {
            return BlockBody::default();
        };
        let mut state = (*after.state).clone();
        // Round-robin across participants (audit M2): one flooding participant cannot delay
        // another's order by more than the rounds before it.
        let digest = carries_digest(&self.genesis, parent.height() + 1)
            .then(|| digest(&state.snapshot_bytes()));
        let candidates = self.mempool.round_robin();
        let mut body = state.build(
            &self.genesis,
            &self.proposals,
            candidates,
            block_time_ms,
            MAX_ORDERS_PER_BLOCK,
        );
        // Deliveries fill what room the payload has left (a state digest aside).
        let mut used = body.encode().len() + DIGEST_ROOM;
        for delivery in self.deliveries.values() {
            if body.deliveries.len() == MAX_DELIVERIES_PER_BLOCK {
                break;
            }
            let size = serde_json::to_vec(delivery).map_or(usize::MAX, |v| v.len() + 1);
            if used.saturating_add(size) > crate::protocol::MAX_PAYLOAD_BYTES {
                break;
            }
            if state
                .insert_verified_delivery(&self.genesis, delivery, block_time_ms)
                .is_ok()
            {
                used += size;
                body.deliveries.push(delivery.clone());
            }
        }
        // Correction imports after them, while they fit.
        for correction in &self.corrections {
            if body.corrections.len() == MAX_CORRECTIONS_PER_BLOCK {
                break;
            }
            let size = serde_json::to_vec(correction).map_or(usize::MAX, |v| v.len() + 1);
            if used.saturating_add(size) > crate::protocol::MAX_PAYLOAD_BYTES {
                continue;
            }
            if state.apply_correction(&self.genesis, correction).is_ok() {
                used += size;
                body.corrections.push(correction.clone());
            }
        }
        body.state = digest;
        body
    }
}

impl App for LedgerApp {
    fn propose(&mut self, parent: &Block, block_time_ms: u64) -> Vec<u8> {
        if let Ok(after) = self.state_after(parent) {
            if self.after_epoch_end(&after.state) {
                return Vec::new();
            }
        }
        self.build(parent, block_time_ms).encode()
    }

    fn validate(
        &mut self,
        parent: &Block,
        payload: &[u8],
        block_time_ms: u64,
    ) -> Result<(), Reject> {
        let key = validated_key(parent.hash(), payload, block_time_ms);
        if self.validated.contains_key(&key) {
            return Ok(());
        }
        let parent_after = self.state_after(parent)?;
        let after = self.execute(
            Arc::clone(&parent_after.state),
            parent.height() + 1,
            payload,
            block_time_ms,
        )?;
        self.validated.insert(key, Arc::new(after));
        Ok(())
    }

    /// Computes and keeps the state after a certified block (audit finding H3), so that proposals
    /// on top of it can be validated even if this replica never validated it. Parents come first,
    /// so the parent's state is known unless the block is below the committed height (then it is
    /// not needed) or on a branch this app never saw the base of.
    fn certified(&mut self, block: &Block) {
        if block.height() <= self.committed_height || self.halted.is_some() {
            return;
        }
        if let Err(reject) = self.state_after(block) {
            tracing::warn!(
                height = block.height(),
                block = %block.hash(),
                reason = %reject,
                "state after a certified block is unknown"
            );
        }
    }

    fn commit(&mut self, block: &Block) {
        if self.halted.is_some() {
            return;
        }
        if self.epoch_ended().is_some() {
            // Above the epoch's last block: empty, never applied; the node switches epochs.
            tracing::debug!(height = block.height(), block = %block.hash(), epoch = self.epoch, "block after the end of its epoch not applied");
            return;
        }
        // A committed block extends the committed tip, whose state is known, so this only fails
        // if a quorum committed a payload this replica cannot execute: then it stops applying
        // for good (audit finding L9) and [`LedgerApp::halted`] says why.
        let after = match self.state_after(block) {
            Ok(after) => after,
            Err(reject) => {
                let reason = format!(
                    "committed block {} at height {} does not execute: {}",
                    block.hash(),
                    block.height(),
                    reject.reason
                );
                tracing::error!(height = block.height(), block = %block.hash(), reason = %reject, "committed block does not execute; the ledger halts");
                self.halted = Some(reason);
                return;
            }
        };
        let orders = after.orders.clone();
        let community_changed = !Arc::ptr_eq(&self.committed.community, &after.state.community);
        self.committed = Arc::clone(&after.state);
        self.committed_height = block.height();
        let now_ms = block.timestamp_ms();
        // The block's own orders leave the pool as committed, not as refused.
        for order in &orders {
            let key = key_of(order);
            if self.mempool.holds(order) {
                self.mempool.remove(&key);
            }
        }
        // After a governance change (a member removed, new rules) every pending order is
        // checked again; otherwise those of the block's participants.
        let changed: std::collections::BTreeSet<_> = if community_changed {
            self.mempool.participants().cloned().collect()
        } else {
            orders
                .iter()
                .map(|o| o.ticket.participant.clone())
                .collect()
        };
        if !self.proposals.is_empty() {
            let (committed, genesis) = (&self.committed, &self.genesis);
            self.proposals
                .retain(|p| committed.check_proposal(genesis, p, now_ms).is_ok());
        }
        // Deliveries the chain now holds, or would refuse (late), leave the pool.
        if !self.deliveries.is_empty() {
            let (committed, genesis) = (&self.committed, &self.genesis);
            self.deliveries.retain(|_, d| {
                committed
                    .admit_delivery_unsigned(genesis, d, now_ms)
                    .is_ok()
            });
        }
        // Imports the chain now holds no longer prove against its roots; refused ones go too.
        if !self.corrections.is_empty() {
            let (committed, genesis) = (&self.committed, &self.genesis);
            self.corrections.retain(|c| {
                let kept = committed.admit_correction(genesis, c);
                if let Err(e) = &kept {
                    tracing::debug!(import = %c.ticket.id, reason = e.kind(), "correction import left the pool");
                }
                kept.is_ok()
            });
        }
        let dropped = self
            .mempool
            .prune(&self.genesis, &self.committed, now_ms, &changed);
        for (order, reason) in dropped {
            tracing::debug!(participant = %order.ticket.participant, id = %order.ticket.id.as_str(), interval = order.ticket.interval_start, reason = reason.kind(), "pending order dropped");
            if self.dropped.len() == DROPPED_RECORD {
                self.dropped.pop_front();
            }
            self.dropped.push_back(DroppedOrder {
                key: key_of(&order),
                reason,
            });
        }
        let floor = self.committed_height;
        self.states.retain(|_, after| after.height >= floor);
        self.validated.retain(|_, after| after.height > floor);
        self.log.push(CommittedBlock {
            height: block.height(),
            hash: block.hash(),
            timestamp_ms: now_ms,
            orders,
            clearings: after.clearings.clone(),
            bills: after.bills.clone(),
            corrections: after.corrections.clone(),
            snapshot: is_snapshot_height(&self.genesis, block.height())
                .then(|| after.state.snapshot_bytes()),
        });
    }

    /// Pending orders, or a gate that closed by `now_ms` in the committed state.
    fn has_work(&self, now_ms: u64) -> bool {
        !self.mempool.is_empty()
            || !self.proposals.is_empty()
            || !self.deliveries.is_empty()
            || !self.corrections.is_empty()
            || self.work_due_at().is_some_and(|at| at <= now_ms)
    }

    /// The next gate, or the next interval whose bills are due (its delivery window closed).
    fn work_due_at(&self) -> Option<u64> {
        let gate = self.committed.next_gate_ms(&self.genesis);
        let bills = self.committed.next_settlement_ms(&self.genesis);
        match (gate, bills) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn is_empty(&self, payload: &[u8]) -> bool {
        BlockBody::is_empty_payload(payload)
    }

    /// A wrong clearing: the honest body with the first clearing's price moved (or a clearing
    /// invented for an interval that has none).
    fn propose_invalid(&mut self, parent: &Block, block_time_ms: u64) -> Vec<u8> {
        let mut body = self.build(parent, block_time_ms);
        match body.clearings.first_mut() {
            Some(record) => {
                record.volume_wh += 1;
            }
            None => body.clearings.push(ClearingRecord::of(&IntervalClearing {
                withheld: None,
                interval_start: 0,
                outcome: voltmesh_engine::uniform::clear(&[], voltmesh_engine::K::HALF),
            })),
        }
        body.encode()
    }
}
