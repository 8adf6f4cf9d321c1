//! The ledger's replicated state and the deterministic execution of a block body.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::DateTime;
use voltmesh_engine::{CallAuction, Interval, Order, OrderId, ParticipantId, Trade};
use voltmesh_wire::bill::{BillsRecord, IntervalBills};
use voltmesh_wire::correction::IntervalCorrections;

use voltmesh_wire::genesis::MAX_CLEARINGS_PER_BLOCK;
use voltmesh_wire::governance::{Action, GovernanceRejection, SignedProposal};
use voltmesh_wire::{Genesis, IntervalClearing, OrderRejection, SignedOrder};

use super::community::{Community, Prepared};

use super::body::{MAX_PROPOSALS_PER_BLOCK, ORDER_BYTES_BUDGET};
use super::{BlockBody, BlockRejection, ClearingRecord};

/// How far ahead an order may target an interval: one day of 15-minute intervals.
pub const MAX_INTERVALS_AHEAD: i64 = 96;

/// The state after a block: open books and the ledger sequence.
///
/// # Replay protection (audit finding M3)
/// An order is identified by `(participant, interval, id)`, all three covered by its signature. A
/// replay while the interval is open finds the id in the interval's book (`duplicate_id`); once the
/// gate has closed it is `closed_interval`. Nothing else is needed, so orders of one participant
/// are independent: including one never voids another. The ticket's `nonce` stays in the signed
/// bytes (wire compatibility) but the ledger does not order or gate on it.
///
/// # Bounded clearings (audit finding C1)
/// Each book holds at most `market.admission.max_orders_per_interval` orders, at most
/// `max_orders_per_participant_interval` per participant, with ids of at most
/// `max_order_id_bytes`. A block clears at most [`MAX_CLEARINGS_PER_BLOCK`] intervals and carries
/// only each clearing's [`ClearingRecord`] (under 200 bytes), so a block at a gate can always be
/// built however large the interval's book.
///
/// # Invariants
/// Every book in `books` belongs to an interval whose gate had not closed at `last_block_ms`, or
/// whose gate closed but that waits its turn to be cleared (oldest first; no order is admitted to
/// it, since admission checks the gate against block time); `counts` holds each (interval,
/// participant)'s number of orders in `books`; `next_seq` exceeds every order's sequence.
/// Execution is a pure function of (state, body, block time).
///
/// # Governance
/// Who may sign for whom and the market rules of each interval come from `community`
/// ([`Community`]), which starts as genesis says and changes only by committed governance
/// actions: a block's signed proposals are executed before its orders, so a member added in a
/// block may trade in it. Every book was built with the rules of its interval; an action that
/// changes them (rules from an open interval on, a member removed) rebuilds the books it
/// touches, and the orders the new rules refuse expire.
#[derive(Debug, Clone)]
pub struct LedgerState {
    pub(super) books: BTreeMap<i64, CallAuction>,
    pub(super) counts: BTreeMap<(i64, ParticipantId), u32>,
    pub(super) next_seq: u64,
    pub(super) last_block_ms: u64,
    /// Height of the block this state follows (0 at genesis): [`LedgerState::build`] and
    /// [`LedgerState::execute`] count one block each. Not in the snapshot encoding (a snapshot
    /// is found at its block's height, [`super::LedgerApp::from_snapshot`]).
    pub(super) height: u64,
    /// Shared between the states of consecutive blocks until an action changes it.
    pub(super) community: Arc<Community>,
    /// Metered deliveries of the intervals whose window is open ([`super::deliveries`]),
    /// shared between states until a block changes them.
    pub(super) deliveries: Arc<BTreeMap<(i64, ParticipantId), super::deliveries::Metered>>,
    /// Trades of the cleared intervals whose bills are not committed yet ([`super::billing`]).
    pub(super) settling: Arc<BTreeMap<i64, Arc<[Trade]>>>,
    /// Every party's exact amount not billed yet ([`super::billing::Carries`]).
    pub(super) carries: Arc<super::billing::Carries>,
    /// Settled intervals that may still be corrected ([`super::corrections`]).
    pub(super) correctable: Arc<BTreeMap<i64, super::corrections::Correctable>>,
}

/// What a block's execution produced: the full clearings and bills its records stand for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Executed {
    /// Intervals the block cleared.
    pub clearings: Vec<IntervalClearing>,
    /// Intervals the block settled.
    pub bills: Vec<IntervalBills>,
    /// Intervals the block's correction imports corrected, import by import.
    pub corrections: Vec<IntervalCorrections>,
}

impl LedgerState {
    /// The state at genesis.
    pub fn new(genesis: &Genesis) -> Self {
        LedgerState {
            books: BTreeMap::new(),
            counts: BTreeMap::new(),
            next_seq: 0,
            last_block_ms: genesis.genesis_time_ms(),
            height: 0,
            community: Arc::new(Community::genesis(genesis)),
            deliveries: Arc::default(),
            settling: Arc::default(),
            carries: Arc::default(),
            correctable: Arc::default(),
        }
    }

    /// The community: members, rules and their schedule, policies, pending proposals.
    pub fn community(&self) -> &Community {
        &self.community
    }

    /// The height of the block this state follows.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The time of the block this state follows, ms.
    pub fn last_block_ms(&self) -> u64 {
        self.last_block_ms
    }

    /// The engine id of a ticket: ids are namespaced by participant, so one participant cannot
    /// block another's id. Order ids have no `:` ([`voltmesh_wire::order::check_order_id`]), so
    /// the last `:` separates the two and no two (participant, id) pairs share an engine id.
    pub(crate) fn engine_id(order: &SignedOrder) -> OrderId {
        OrderId::from(format!("{}:{}", order.ticket.participant, order.ticket.id))
    }

    /// How many orders the interval's book holds.
    pub fn orders_in(&self, interval_start: i64) -> usize {
        self.books.get(&interval_start).map_or(0, CallAuction::len)
    }

    /// How many orders `participant` has in the interval's book.
    pub fn participant_orders_in(&self, participant: &ParticipantId, interval_start: i64) -> u32 {
        self.counts
            .get(&(interval_start, participant.clone()))
            .copied()
            .unwrap_or(0)
    }

    /// When the oldest open book's gate closes (ms), if any book is open: a block at or after
    /// it must clear that interval.
    pub fn next_gate_ms(&self, genesis: &Genesis) -> Option<u64> {
        let lead_ms = i64::from(genesis.market.interval.gate_closure_lead_secs()) * 1000;
        let (&start, _) = self.books.first_key_value()?;
        u64::try_from(start.saturating_mul(1000).saturating_sub(lead_ms)).ok()
    }

    /// Intervals with open books, oldest first, with their order counts.
    pub fn open_intervals(&self) -> impl Iterator<Item = (i64, usize)> + '_ {
        self.books.iter().map(|(&start, book)| (start, book.len()))
    }

    /// Checks an order against this state at time `at_ms`, without changing anything.
    ///
    /// The cheap checks (keys, id, interval, limits, duplicates) come first and the signature
    /// last (audit finding M2), so junk costs no signature verification.
    ///
    /// # Errors
    /// The first check the order fails.
    pub fn admit(
        &self,
        genesis: &Genesis,
        order: &SignedOrder,
        at_ms: u64,
    ) -> Result<(), OrderRejection> {
        self.admit_unsigned(genesis, order, at_ms)?;
        if !order.signature_valid(&genesis.neighborhood) {
            return Err(OrderRejection::BadSignature);
        }
        Ok(())
    }

    /// Every check of [`LedgerState::admit`] except the signature: for orders whose signature was
    /// already verified (the mempool re-checks its orders after commits with this).
    ///
    /// # Errors
    /// The first check the order fails.
    pub fn admit_unsigned(
        &self,
        genesis: &Genesis,
        order: &SignedOrder,
        at_ms: u64,
    ) -> Result<(), OrderRejection> {
        let ticket = &order.ticket;
        self.community.check_signer(
            &ticket.participant,
            &order.public_key,
            ticket.interval_start,
        )?;
        let rules = self.community.rules_for(ticket.interval_start);
        let limits = rules.admission;
        let id_bytes = ticket.id.as_str().len();
        if id_bytes > usize::try_from(limits.max_order_id_bytes).unwrap_or(usize::MAX) {
            return Err(OrderRejection::OrderIdTooLong {
                bytes: id_bytes,
                max: limits.max_order_id_bytes,
            });
        }
        voltmesh_wire::order::check_order_id(ticket.id.as_str())?;
        let spec = genesis.market.interval;
        let start = DateTime::from_timestamp(ticket.interval_start, 0)
            .ok_or(OrderRejection::WrongInterval(ticket.interval_start))?;
        let interval = Interval::starting_at(spec, start)
            .ok_or(OrderRejection::WrongInterval(ticket.interval_start))?;
        let now = DateTime::from_timestamp_millis(i64::try_from(at_ms).unwrap_or(i64::MAX))
            .unwrap_or_default();
        if !interval.is_open_at(now) {
            return Err(OrderRejection::ClosedInterval(ticket.interval_start));
        }
        let horizon = now.timestamp() + MAX_INTERVALS_AHEAD * i64::from(spec.length_secs());
        if ticket.interval_start > horizon {
            return Err(OrderRejection::WrongInterval(ticket.interval_start));
        }
        if self.participant_orders_in(&ticket.participant, ticket.interval_start)
            >= limits.max_orders_per_participant_interval
        {
            return Err(OrderRejection::ParticipantIntervalFull {
                interval_start: ticket.interval_start,
                max: limits.max_orders_per_participant_interval,
            });
        }
        if self.orders_in(ticket.interval_start)
            >= usize::try_from(limits.max_orders_per_interval).unwrap_or(usize::MAX)
        {
            return Err(OrderRejection::IntervalFull {
                interval_start: ticket.interval_start,
                max: limits.max_orders_per_interval,
            });
        }
        let engine_order = self.engine_order(order);
        rules.rules.admit(&engine_order)?;
        if self
            .books
            .get(&ticket.interval_start)
            .is_some_and(|book| book.contains_id(&engine_order.id))
        {
            return Err(voltmesh_engine::RejectReason::DuplicateId(engine_order.id).into());
        }
        Ok(())
    }

    fn engine_order(&self, order: &SignedOrder) -> Order {
        let ticket = &order.ticket;
        Order {
            id: Self::engine_id(order),
            participant: ticket.participant.clone(),
            side: ticket.side,
            quantity_wh: ticket.quantity_wh,
            limit_price: ticket.limit_price,
            seq: self.next_seq,
        }
    }

    /// Admits and records an order.
    ///
    /// # Errors
    /// As [`LedgerState::admit`]; the state is unchanged on error.
    pub fn insert(
        &mut self,
        genesis: &Genesis,
        order: &SignedOrder,
        at_ms: u64,
    ) -> Result<(), OrderRejection> {
        self.record(genesis, order, at_ms, Signature::Check)
    }

    /// As [`LedgerState::insert`], checking the signature only if `signature` says so.
    fn record(
        &mut self,
        genesis: &Genesis,
        order: &SignedOrder,
        at_ms: u64,
        signature: Signature,
    ) -> Result<(), OrderRejection> {
        match signature {
            Signature::Check => self.admit(genesis, order, at_ms)?,
            Signature::Verified => self.admit_unsigned(genesis, order, at_ms)?,
        }
        let engine_order = self.engine_order(order);
        let rules = self.community.rules_for(order.ticket.interval_start).rules;
        self.books
            .entry(order.ticket.interval_start)
            .or_insert_with(|| CallAuction::new(rules))
            .submit(engine_order)?;
        self.next_seq += 1;
        *self
            .counts
            .entry((
                order.ticket.interval_start,
                order.ticket.participant.clone(),
            ))
            .or_insert(0) += 1;
        Ok(())
    }

    /// Checks a signed proposal against this state at block time `at_ms`, changing nothing
    /// (the node API's admission of proposals).
    ///
    /// # Errors
    /// [`GovernanceRejection`] naming the first problem.
    pub fn check_proposal(
        &self,
        genesis: &Genesis,
        signed: &SignedProposal,
        at_ms: u64,
    ) -> Result<Prepared, GovernanceRejection> {
        self.community.prepare(
            signed,
            at_ms,
            &genesis.neighborhood,
            genesis.market.interval,
        )
    }

    /// Checks and records a signed proposal at block time `at_ms`: its new approvals are
    /// collected and, once they reach the policy's threshold, the action takes effect.
    ///
    /// # Errors
    /// As [`LedgerState::check_proposal`]; the state is unchanged on error.
    pub fn apply_proposal(
        &mut self,
        genesis: &Genesis,
        signed: &SignedProposal,
        at_ms: u64,
    ) -> Result<(), GovernanceRejection> {
        let prepared = self.check_proposal(genesis, signed, at_ms)?;
        let effect = match &prepared {
            Prepared::Apply { action, .. } => Some(action.clone()),
            Prepared::Collect { .. } => None,
        };
        Arc::make_mut(&mut self.community).record(prepared, self.height);
        match effect {
            Some(Action::RemoveParticipant {
                participant,
                from_interval,
            }) => self.rebook(from_interval.., |order| order.participant != participant),
            Some(Action::ChangeRules { from_interval, .. }) => {
                self.rebook(from_interval.., |_| true);
            }
            Some(Action::SetPrices { prices }) => {
                for start in prices.into_keys() {
                    self.rebook(start..=start, |_| true);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Rebuilds the books of the intervals in `range` with their rules, keeping the orders
    /// `keep` says and the rules admit, in the order they entered; the others expire. An
    /// emptied book stays, so its interval still clears (with no trades).
    fn rebook(&mut self, range: impl std::ops::RangeBounds<i64>, keep: impl Fn(&Order) -> bool) {
        let starts: Vec<i64> = self.books.range(range).map(|(&start, _)| start).collect();
        for start in starts {
            let Some(old) = self.books.remove(&start) else {
                continue;
            };
            let mut book = CallAuction::new(self.community.rules_for(start).rules);
            // Drop the interval's counts, keep the later intervals'.
            let mut from_start = self.counts.split_off(&(start, ParticipantId::from("")));
            let later = from_start.split_off(&(start.saturating_add(1), ParticipantId::from("")));
            self.counts.extend(later);
            for order in old.orders() {
                if keep(order) && book.submit(order.clone()).is_ok() {
                    *self
                        .counts
                        .entry((start, order.participant.clone()))
                        .or_insert(0) += 1;
                }
            }
            self.books.insert(start, book);
        }
    }

    /// Forgets the proposals whose deadline passed before `block_ms` (a no-op, and no copy of
    /// the community, when none did).
    fn expire_proposals(&mut self, block_ms: u64) {
        if self.community.has_expired(block_ms) {
            Arc::make_mut(&mut self.community).expire(block_ms);
        }
    }

    /// Clears and removes the oldest books whose gate has closed at `block_ms`, at most
    /// [`MAX_CLEARINGS_PER_BLOCK`] of them (the rest wait for the next blocks).
    pub fn close_gates(&mut self, genesis: &Genesis, block_ms: u64) -> Vec<IntervalClearing> {
        let lead_ms = i64::from(genesis.market.interval.gate_closure_lead_secs()) * 1000;
        let block_ms = i64::try_from(block_ms).unwrap_or(i64::MAX);
        let mut clearings = Vec::new();
        while let Some(entry) = self.books.first_entry() {
            if entry.key() * 1000 - lead_ms > block_ms || clearings.len() == MAX_CLEARINGS_PER_BLOCK
            {
                break;
            }
            let (interval_start, book) = entry.remove_entry();
            self.counts = self
                .counts
                .split_off(&(interval_start.saturating_add(1), ParticipantId::from("")));
            let outcome = book.clear(self.community.rules_for(interval_start).mechanism);
            self.hold_for_settlement(interval_start, &outcome.trades);
            clearings.push(IntervalClearing {
                withheld: None,
                interval_start,
                outcome,
            });
        }
        clearings
    }

    /// Builds a block body at `block_ms` from candidate orders (skipping any this state refuses),
    /// and applies it to `self`.
    ///
    /// The candidates' signatures are not checked again: they must have been verified (the
    /// mempool admits only orders whose signature verified). A candidate with a bad signature
    /// would make every validator refuse the block.
    ///
    /// At most `max_orders` orders, and at most [`ORDER_BYTES_BUDGET`] bytes of them, so that
    /// with the clearing records the body always fits in a block payload (audit finding C1).
    ///
    /// Candidate proposals come first (at most [`MAX_PROPOSALS_PER_BLOCK`], skipping any this
    /// state refuses), and their bytes count against the same budget.
    pub fn build<'a>(
        &mut self,
        genesis: &Genesis,
        proposals: &[SignedProposal],
        candidates: impl IntoIterator<Item = &'a SignedOrder>,
        block_ms: u64,
        max_orders: usize,
    ) -> BlockBody {
        self.height += 1;
        // Settlement cannot fail on a state that executed (it balances by construction); if it
        // ever did, the block carries no bills and every validator refuses it.
        let bills: Vec<BillsRecord> = match self.settle_closed_windows(genesis, block_ms) {
            Ok(bills) => bills.iter().map(BillsRecord::of).collect(),
            Err(e) => {
                tracing::error!(error = %e, "settlement failed while building a block");
                Vec::new()
            }
        };
        self.expire_proposals(block_ms);
        let mut actions = Vec::new();
        let mut bytes = 0usize;
        let epoch = self.community.epoch().number;
        for proposal in proposals {
            // A validator change ends the block's actions (and the epoch).
            if actions.len() == MAX_PROPOSALS_PER_BLOCK || self.community.epoch().number != epoch {
                break;
            }
            let size = serde_json::to_vec(proposal).map_or(usize::MAX, |v| v.len() + 1);
            if bytes.saturating_add(size) > ORDER_BYTES_BUDGET {
                continue;
            }
            if self.apply_proposal(genesis, proposal, block_ms).is_ok() {
                bytes += size;
                actions.push(proposal.clone());
            }
        }
        let mut orders = Vec::new();
        for order in candidates {
            if orders.len() == max_orders {
                break;
            }
            // Its encoding plus the separating comma.
            let size = serde_json::to_vec(order).map_or(usize::MAX, |v| v.len() + 1);
            if bytes.saturating_add(size) > ORDER_BYTES_BUDGET {
                continue;
            }
            if self
                .record(genesis, order, block_ms, Signature::Verified)
                .is_ok()
            {
                bytes += size;
                orders.push(order.clone());
            }
        }
        let clearings = self
            .close_gates(genesis, block_ms)
            .iter()
            .map(ClearingRecord::of)
            .collect();
        self.last_block_ms = self.last_block_ms.max(block_ms);
        BlockBody {
            orders,
            clearings,
            actions,
            deliveries: Vec::new(),
            bills,
            corrections: Vec::new(),
            state: None,
        }
    }

    /// Re-executes a body at `block_ms`: every order must be admissible and the clearing records
    /// must be exactly those of the clearings the engine computes, which it returns (the full
    /// clearings, to serve).
    ///
    /// # Errors
    /// [`BlockRejection`] naming the first problem; `self` is then in an unspecified state (callers
    /// execute on a copy).
    pub fn execute(
        &mut self,
        genesis: &Genesis,
        body: &BlockBody,
        block_ms: u64,
    ) -> Result<Vec<IntervalClearing>, BlockRejection> {
        Ok(self.execute_settled(genesis, body, block_ms)?.clearings)
    }

    /// As [`LedgerState::execute`], with the bills the block settled.
    ///
    /// # Errors
    /// As [`LedgerState::execute`].
    pub fn execute_settled(
        &mut self,
        genesis: &Genesis,
        body: &BlockBody,
        block_ms: u64,
    ) -> Result<Executed, BlockRejection> {
        self.execute_with(genesis, body, block_ms, |_| false, |_| false)
    }

    /// As [`LedgerState::execute`], skipping the signature check of the orders whose index in
    /// the body `verified` holds for: orders this node verified already (the exact bytes of an
    /// order in its mempool, or a batch check of the body's others), so that an order costs each
    /// node one signature verification, not one at admission and one more per block execution.
    /// The result is the same as `execute`'s, because a verified signature stays valid.
    ///
    /// # Errors
    /// As [`LedgerState::execute`].
    pub fn execute_with(
        &mut self,
        genesis: &Genesis,
        body: &BlockBody,
        block_ms: u64,
        verified: impl Fn(usize) -> bool,
        delivery_verified: impl Fn(usize) -> bool,
    ) -> Result<Executed, BlockRejection> {
        if block_ms < self.last_block_ms {
            return Err(BlockRejection::TimeWentBackwards {
                block_ms,
                parent_ms: self.last_block_ms,
            });
        }
        self.height += 1;
        let bills = self.settle_checked(genesis, block_ms, &body.bills)?;
        self.expire_proposals(block_ms);
        let epoch = self.community.epoch().number;
        for (index, proposal) in body.actions.iter().enumerate() {
            if self.community.epoch().number != epoch {
                return Err(BlockRejection::Proposal {
                    index,
                    reason: GovernanceRejection::BadValidators(
                        "a validator change is the last action of its block".into(),
                    ),
                });
            }
            self.apply_proposal(genesis, proposal, block_ms)
                .map_err(|reason| BlockRejection::Proposal { index, reason })?;
        }
        for (index, order) in body.orders.iter().enumerate() {
            let signature = if verified(index) {
                Signature::Verified
            } else {
                Signature::Check
            };
            self.record(genesis, order, block_ms, signature)
                .map_err(|reason| BlockRejection::Order { index, reason })?;
        }
        let clearings = self.close_gates(genesis, block_ms);
        let records: Vec<ClearingRecord> = clearings.iter().map(ClearingRecord::of).collect();
        if records != body.clearings {
            return Err(BlockRejection::WrongClearing {
                expected: records.len(),
                got: body.clearings.len(),
            });
        }
        // Deliveries come after the gates (a proposer adds them to a built body).
        for (index, delivery) in body.deliveries.iter().enumerate() {
            let inserted = if delivery_verified(index) {
                self.insert_verified_delivery(genesis, delivery, block_ms)
            } else {
                self.insert_delivery(genesis, delivery, block_ms)
            };
            inserted.map_err(|reason| BlockRejection::Delivery { index, reason })?;
        }
        // Corrections come last (a proposer adds them after the deliveries).
        let mut corrections = Vec::new();
        for (index, correction) in body.corrections.iter().enumerate() {
            corrections.extend(
                self.apply_correction(genesis, correction)
                    .map_err(|reason| BlockRejection::Correction { index, reason })?,
            );
        }
        self.last_block_ms = block_ms;
        Ok(Executed {
            clearings,
            bills,
            corrections,
        })
    }
}

/// Whether [`LedgerState::record`] checks an order's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signature {
    /// Verify it.
    Check,
    /// It was verified before (the mempool's orders).
    Verified,
}
