//! The community a ledger state serves: its members and their keys, the market rules with their
//! schedule, the governance policies, and the proposals collecting approvals. It starts as
//! genesis says and changes only by committed governance actions ([`voltmesh_wire::governance`]).
//!
//! # Invariants
//! The rules of an interval are those of the last `schedule` entry at or before its start, or
//! the genesis rules (`base`) if none is; every `schedule` entry starts at an interval whose gate
//! was open when its change took effect. Every member has 1 to
//! [`MAX_KEYS`] distinct strong keys. `pending` holds at most [`MAX_PENDING_PROPOSALS`]
//! proposals, none expired at the last block, each with fewer approvals by keys of its policy
//! than the threshold, and none in `applied`; `applied` holds the proposals that took effect
//! and whose `valid_until_ms` has not passed (a replay after it is refused as expired).
//! `epochs` is never empty, starts with the genesis set at height 0, and its numbers count up
//! by one, with strictly increasing root heights.

use std::collections::BTreeMap;

use chrono::DateTime;
use voltmesh_engine::{Interval, IntervalSpec, ParticipantId, Tariffs};
use voltmesh_wire::governance::{
    check_id, check_validators, Action, Approval, Epoch, GovernanceRejection, Member, Policies,
    Proposal, ProposalHash, Rules, SignedProposal, MAX_KEYS, MAX_PENDING_PROPOSALS,
    MAX_PRICED_INTERVALS, MAX_PROPOSAL_LIFETIME_MS,
};
use voltmesh_wire::{Genesis, OrderRejection, PublicKey};

/// A proposal collecting approvals: the approvals committed so far, by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The proposal.
    pub proposal: Proposal,
    /// Approvals committed so far, by key.
    pub approvals: BTreeMap<PublicKey, Approval>,
}

/// What a signed proposal does to the community, once checked ([`Community::prepare`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// Its approvals are recorded; the threshold is not reached yet.
    Collect {
        /// The proposal's identity.
        hash: ProposalHash,
        /// The proposal with every approval collected so far (new ones included).
        pending: Pending,
        /// Approvals by keys of the policy, and the threshold.
        approved: (usize, u32),
    },
    /// The threshold is reached: the action takes effect.
    Apply {
        /// The proposal's identity.
        hash: ProposalHash,
        /// Until when a replay is refused as such (then as expired).
        valid_until_ms: u64,
        /// The change.
        action: Action,
    },
}

/// The community (module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Community {
    pub(super) members: BTreeMap<ParticipantId, Member>,
    /// The genesis rules.
    pub(super) base: Rules,
    /// Changes: from which interval start on which rules apply.
    pub(super) schedule: BTreeMap<i64, Rules>,
    /// Per-interval tariffs published for intervals not cleared yet.
    pub(super) prices: BTreeMap<i64, Tariffs>,
    pub(super) policies: Policies,
    pub(super) pending: BTreeMap<ProposalHash, Pending>,
    pub(super) applied: BTreeMap<ProposalHash, u64>,
    /// How many actions took effect since genesis.
    pub(super) actions_applied: u64,
    /// Every epoch since genesis, oldest first (never empty; the last is in force).
    pub(super) epochs: Vec<Epoch>,
}

impl Community {
    /// The community genesis describes.
    pub fn genesis(genesis: &Genesis) -> Community {
        Community {
            members: genesis
                .participants
                .iter()
                .map(|(id, keys)| {
                    (
                        id.clone(),
                        Member {
                            keys: keys.clone(),
                            removed_from: None,
                        },
                    )
                })
                .collect(),
            base: Rules::of(&genesis.market),
            schedule: BTreeMap::new(),
            prices: BTreeMap::new(),
            policies: genesis.policies(),
            pending: BTreeMap::new(),
            applied: BTreeMap::new(),
            actions_applied: 0,
            epochs: vec![Epoch {
                number: 0,
                root_height: 0,
                validators: genesis.validators.clone(),
            }],
        }
    }

    /// Whether nothing happened since genesis (no action applied, no approval collected):
    /// snapshots then leave the community out.
    pub fn is_genesis(&self) -> bool {
        self.actions_applied == 0 && self.pending.is_empty() && self.applied.is_empty()
    }

    /// The rules of the interval starting at `interval_start`: the schedule's, with the
    /// interval's published tariffs if any ([`Action::SetPrices`]).
    pub fn rules_for(&self, interval_start: i64) -> Rules {
        let mut rules = *self
            .schedule
            .range(..=interval_start)
            .next_back()
            .map_or(&self.base, |(_, rules)| rules);
        if let Some(&tariffs) = self.prices.get(&interval_start) {
            rules.rules.tariffs = tariffs;
        }
        rules
    }

    /// Per-interval tariffs published for intervals not cleared yet.
    pub fn prices(&self) -> &BTreeMap<i64, Tariffs> {
        &self.prices
    }

    /// Whether [`Community::forget_prices_through`] would change anything.
    pub(super) fn has_prices_through(&self, interval_start: i64) -> bool {
        self.prices.range(..=interval_start).next().is_some()
    }

    /// Forgets the published tariffs of the intervals up to `interval_start` (cleared).
    pub(super) fn forget_prices_through(&mut self, interval_start: i64) {
        self.prices = self.prices.split_off(&interval_start.saturating_add(1));
    }

    /// The rule schedule: from which interval on (`None`: genesis) which rules apply.
    pub fn schedule(&self) -> impl Iterator<Item = (Option<i64>, &Rules)> + '_ {
        std::iter::once((None, &self.base)).chain(
            self.schedule
                .iter()
                .map(|(&from, rules)| (Some(from), rules)),
        )
    }

    /// Every member, removed ones included.
    pub fn members(&self) -> &BTreeMap<ParticipantId, Member> {
        &self.members
    }

    /// The policies in force.
    pub fn policies(&self) -> &Policies {
        &self.policies
    }

    /// Proposals collecting approvals.
    pub fn pending(&self) -> &BTreeMap<ProposalHash, Pending> {
        &self.pending
    }

    /// How many actions took effect since genesis.
    pub fn actions_applied(&self) -> u64 {
        self.actions_applied
    }

    /// The epoch in force: its number, root and validator set.
    pub fn epoch(&self) -> &Epoch {
        // Never empty (invariant).
        &self.epochs[self.epochs.len() - 1]
    }

    /// Every epoch since genesis, oldest first: what a node needs to derive the chain of the
    /// epoch in force (`protocol::Chain::next_epoch` from genesis, one root after the other).
    pub fn epochs(&self) -> &[Epoch] {
        &self.epochs
    }

    /// Whether `key` may sign `participant`'s orders for the interval at `interval_start`.
    ///
    /// # Errors
    /// `unknown_participant`, `participant_removed` (from its `removed_from` interval on) or
    /// `key_not_allowed`.
    pub fn check_signer(
        &self,
        participant: &ParticipantId,
        key: &PublicKey,
        interval_start: i64,
    ) -> Result<(), OrderRejection> {
        let Some(member) = self.members.get(participant) else {
            return Err(OrderRejection::UnknownParticipant(participant.to_string()));
        };
        if let Some(from_interval) = member.removed_from.filter(|&f| interval_start >= f) {
            return Err(OrderRejection::ParticipantRemoved {
                participant: participant.to_string(),
                from_interval,
            });
        }
        if !member.keys.contains(key) {
            return Err(OrderRejection::KeyNotAllowed {
                participant: participant.to_string(),
                key: key.to_string(),
            });
        }
        Ok(())
    }

    /// Checks a signed proposal at block time `at_ms` and says what it does, without changing
    /// anything: form, deadline, replay, each approval's key (in the action's policy) and
    /// signature, something new to collect, and the action's validity against this community.
    ///
    /// # Errors
    /// [`GovernanceRejection`] naming the first problem.
    pub fn prepare(
        &self,
        signed: &SignedProposal,
        at_ms: u64,
        neighborhood: &str,
        spec: IntervalSpec,
    ) -> Result<Prepared, GovernanceRejection> {
        signed.check_form()?;
        let proposal = &signed.proposal;
        if at_ms > proposal.valid_until_ms {
            return Err(GovernanceRejection::Expired {
                valid_until_ms: proposal.valid_until_ms,
                at_ms,
            });
        }
        if proposal.valid_until_ms - at_ms > MAX_PROPOSAL_LIFETIME_MS {
            return Err(GovernanceRejection::LifetimeTooLong);
        }
        let hash = proposal.hash(neighborhood);
        if self.applied.contains_key(&hash) {
            return Err(GovernanceRejection::Replayed(hash));
        }
        let scope = proposal.action.scope();
        let no_one = voltmesh_wire::governance::Policy {
            keys: Vec::new(),
            threshold: 1,
        };
        let policy = self.policies.of(scope).unwrap_or(&no_one);
        for approval in &signed.approvals {
            if !policy.keys.contains(&approval.public_key) {
                return Err(GovernanceRejection::Unauthorised {
                    scope,
                    key: approval.public_key.to_string(),
                });
            }
        }
        let mut pending = self.pending.get(&hash).cloned().unwrap_or_else(|| Pending {
            proposal: proposal.clone(),
            approvals: BTreeMap::new(),
        });
        let new: Vec<&Approval> = signed
            .approvals
            .iter()
            .filter(|a| !pending.approvals.contains_key(&a.public_key))
            .collect();
        if new.is_empty() {
            return Err(GovernanceRejection::DuplicateApproval(hash));
        }
        for approval in &new {
            if !approval.valid_for(proposal, neighborhood) {
                return Err(GovernanceRejection::BadSignature(
                    approval.public_key.to_string(),
                ));
            }
        }
        self.check_action(&proposal.action, at_ms, spec)?;
        for approval in new {
            pending
                .approvals
                .insert(approval.public_key, approval.clone());
        }
        let approved = pending
            .approvals
            .keys()
            .filter(|k| policy.keys.contains(k))
            .count();
        if approved >= policy.threshold as usize {
            return Ok(Prepared::Apply {
                hash,
                valid_until_ms: proposal.valid_until_ms,
                action: proposal.action.clone(),
            });
        }
        if !self.pending.contains_key(&hash) && self.pending.len() >= MAX_PENDING_PROPOSALS {
            return Err(GovernanceRejection::GovernanceFull);
        }
        Ok(Prepared::Collect {
            hash,
            pending,
            approved: (approved, policy.threshold),
        })
    }

    /// Whether `action` could take effect at `at_ms`.
    fn check_action(
        &self,
        action: &Action,
        at_ms: u64,
        spec: IntervalSpec,
    ) -> Result<(), GovernanceRejection> {
        let bad_key = |why: String| Err(GovernanceRejection::BadKey(why));
        let strong = |key: &PublicKey| {
            key.strong_verifying_key()
                .map(|_| ())
                .map_err(|e| GovernanceRejection::BadKey(e.to_string()))
        };
        match action {
            Action::AddParticipant { participant, keys } => {
                check_id(participant.as_str()).map_err(GovernanceRejection::Malformed)?;
                if self
                    .members
                    .get(participant)
                    .is_some_and(|m| m.removed_from.is_none())
                {
                    return Err(GovernanceRejection::AlreadyMember(participant.to_string()));
                }
                if keys.is_empty() || keys.len() > MAX_KEYS {
                    return bad_key(format!("a participant has 1 to {MAX_KEYS} keys"));
                }
                for (i, key) in keys.iter().enumerate() {
                    strong(key)?;
                    if keys[..i].contains(key) {
                        return bad_key(format!("{key} appears twice"));
                    }
                }
            }
            Action::RemoveParticipant {
                participant,
                from_interval,
            } => {
                self.active(participant)?;
                open_interval(*from_interval, at_ms, spec)?;
            }
            Action::AddKey { participant, key } => {
                let member = self.active(participant)?;
                strong(key)?;
                if member.keys.contains(key) {
                    return bad_key(format!("{key} may sign for {participant} already"));
                }
                if member.keys.len() >= MAX_KEYS {
                    return bad_key(format!("{participant} has {MAX_KEYS} keys, the most"));
                }
            }
            Action::RevokeKey { participant, key } => {
                let member = self.active(participant)?;
                if !member.keys.contains(key) {
                    return bad_key(format!("{key} does not sign for {participant}"));
                }
                if member.keys.len() == 1 {
                    return bad_key(format!(
                        "{key} is {participant}'s last key: add its new key first"
                    ));
                }
            }
            Action::ChangeRules {
                from_interval,
                rules,
            } => {
                open_interval(*from_interval, at_ms, spec)?;
                rules
                    .on(spec)
                    .validate()
                    .map_err(|e| GovernanceRejection::BadRules(e.to_string()))?;
            }
            Action::SetPrices { prices } => {
                if prices.is_empty() || prices.len() > MAX_PRICED_INTERVALS {
                    return Err(GovernanceRejection::BadRules(format!(
                        "prices for 1 to {MAX_PRICED_INTERVALS} intervals"
                    )));
                }
                for (&start, tariffs) in prices {
                    open_interval(start, at_ms, spec)?;
                    Tariffs::new(tariffs.feed_in, tariffs.retail)
                        .map_err(|e| GovernanceRejection::BadRules(e.to_string()))?;
                }
            }
            Action::SetPolicy { policy, .. } => policy.check()?,
            Action::SetValidators { validators } => {
                check_validators(validators)?;
                if *validators == self.epoch().validators {
                    return Err(GovernanceRejection::BadValidators(
                        "the set is the one in force".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    fn active(&self, participant: &ParticipantId) -> Result<&Member, GovernanceRejection> {
        match self.members.get(participant) {
            None => Err(GovernanceRejection::UnknownParticipant(
                participant.to_string(),
            )),
            Some(m) if m.removed_from.is_some() => {
                Err(GovernanceRejection::Removed(participant.to_string()))
            }
            Some(m) => Ok(m),
        }
    }

    /// Records what [`Community::prepare`] found, in the block at `height`. For
    /// [`Prepared::Apply`] the caller applies the action's effect on the books
    /// ([`super::LedgerState`]) too.
    pub(super) fn record(&mut self, prepared: Prepared, height: u64) {
        match prepared {
            Prepared::Collect { hash, pending, .. } => {
                self.pending.insert(hash, pending);
            }
            Prepared::Apply {
                hash,
                valid_until_ms,
                action,
            } => {
                self.pending.remove(&hash);
                self.applied.insert(hash, valid_until_ms);
                self.actions_applied += 1;
                self.apply(action, height);
            }
        }
    }

    /// The action's effect on the community (checked by [`Community::check_action`]).
    fn apply(&mut self, action: Action, height: u64) {
        match action {
            Action::AddParticipant { participant, keys } => {
                self.members.insert(
                    participant,
                    Member {
                        keys,
                        removed_from: None,
                    },
                );
            }
            Action::RemoveParticipant {
                participant,
                from_interval,
            } => {
                if let Some(member) = self.members.get_mut(&participant) {
                    member.removed_from = Some(from_interval);
                }
            }
            Action::AddKey { participant, key } => {
                if let Some(member) = self.members.get_mut(&participant) {
                    member.keys.push(key);
                }
            }
            Action::RevokeKey { participant, key } => {
                if let Some(member) = self.members.get_mut(&participant) {
                    member.keys.retain(|k| *k != key);
                }
            }
            Action::ChangeRules {
                from_interval,
                rules,
            } => {
                self.schedule.insert(from_interval, rules);
            }
            Action::SetPrices { prices } => self.prices.extend(prices),
            Action::SetPolicy { scope, policy } => self.policies.set(scope, policy),
            Action::SetValidators { validators } => {
                let number = self.epoch().number + 1;
                self.epochs.push(Epoch {
                    number,
                    root_height: height,
                    validators,
                });
            }
        }
    }

    /// Whether [`Community::expire`] at `block_ms` would change anything.
    pub(super) fn has_expired(&self, block_ms: u64) -> bool {
        self.pending
            .values()
            .any(|p| p.proposal.valid_until_ms < block_ms)
            || self.applied.values().any(|&until| until < block_ms)
    }

    /// Forgets the proposals whose deadline passed before `block_ms`.
    pub(super) fn expire(&mut self, block_ms: u64) {
        self.pending
            .retain(|_, p| p.proposal.valid_until_ms >= block_ms);
        self.applied.retain(|_, &mut until| until >= block_ms);
    }
}

/// Checks that `interval_start` is on the grid and its gate still open at `at_ms`.
fn open_interval(
    interval_start: i64,
    at_ms: u64,
    spec: IntervalSpec,
) -> Result<(), GovernanceRejection> {
    let now = DateTime::from_timestamp_millis(i64::try_from(at_ms).unwrap_or(i64::MAX))
        .unwrap_or_default();
    DateTime::from_timestamp(interval_start, 0)
        .and_then(|start| Interval::starting_at(spec, start))
        .filter(|interval| interval.is_open_at(now))
        .map(|_| ())
        .ok_or(GovernanceRejection::Retroactive(interval_start))
}
