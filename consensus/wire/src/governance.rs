//! Governance: the community's own changes (members, keys, market rules, who may approve what)
//! as signed proposals that the validators commit and every node applies at the same height.
//!
//! # The model (after Substrate's multisig and Fabric's signature policies)
//! A [`Proposal`] names one [`Action`], a unique `id` and the block time until which it may take
//! effect (`valid_until_ms`, at most [`MAX_PROPOSAL_LIFETIME_MS`] after the block that first
//! carries it). Each organisation signs the proposal on its own machine ([`Proposal::approve`]);
//! approvals travel in a [`SignedProposal`] (one or several, combined with
//! [`SignedProposal::combine`]). Blocks carry signed proposals; the ledger collects their
//! approvals, and the action takes effect in the block in which the approvals committed so far
//! by distinct keys of the action's [`Policy`] reach its threshold. Fewer change nothing.
//!
//! # Signing bytes (`voltmesh/governance/v1`)
//! ```text
//! voltmesh/governance/v1\n<neighborhood>\n<compact JSON of the Proposal>
//! ```
//! The proposal's id ([`ProposalHash`]) is the SHA-256 of those bytes. Signatures are ed25519
//! under the ZIP-215 rules, like orders' ([`crate::order`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use voltmesh_engine::{
    AdmissionLimits, IntervalSpec, MarketConfig, MarketRules, Mechanism, ParticipantId, Price,
    Tariffs,
};

use crate::genesis::{GenesisValidator, PublicKey};

/// Longest a proposal may wait for its approvals: 30 days of block time. Bounds the ledger's
/// memory of applied proposals (a replay after `valid_until_ms` is refused as expired).
pub const MAX_PROPOSAL_LIFETIME_MS: u64 = 30 * 24 * 3600 * 1000;
/// Most approvals one signed proposal carries.
pub const MAX_APPROVALS: usize = 64;
/// Most keys a participant or a policy may have.
pub const MAX_KEYS: usize = 64;
/// Most proposals collecting approvals at once.
pub const MAX_PENDING_PROPOSALS: usize = 256;
/// Most intervals one [`Action::SetPrices`] prices: two days of 15-minute intervals.
pub const MAX_PRICED_INTERVALS: usize = 192;
/// Longest proposal id and participant id of a new member, in bytes.
pub const MAX_ID_BYTES: usize = 64;
/// Most validators a set may have (the consensus core's bound).
pub const MAX_VALIDATORS: usize = 256;
/// Longest validator address (a libp2p multiaddr), in bytes.
pub const MAX_ADDRESS_BYTES: usize = 256;

/// Who may approve a kind of action: at least `threshold` distinct keys among `keys`.
///
/// # Invariants (checked by [`Policy::check`])
/// `keys` are distinct, strong ed25519 keys, at most [`MAX_KEYS`]; `1 <= threshold <= keys.len()`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Keys that may approve.
    pub keys: Vec<PublicKey>,
    /// How many distinct ones must.
    pub threshold: u32,
}

impl Policy {
    /// A Byzantine quorum of `keys`: `2f + 1` of `n = 3f + 1` (with `f = (n - 1) / 3`), the
    /// default for every scope, over the validators' keys.
    #[must_use]
    pub fn quorum_of(keys: Vec<PublicKey>) -> Policy {
        let n = keys.len();
        let f = n.saturating_sub(1) / 3;
        let threshold = u32::try_from((2 * f + 1).min(n)).unwrap_or(u32::MAX);
        Policy { keys, threshold }
    }

    /// Checks the invariants.
    ///
    /// # Errors
    /// [`GovernanceRejection::BadPolicy`] naming the problem.
    pub fn check(&self) -> Result<(), GovernanceRejection> {
        let bad = |why: String| Err(GovernanceRejection::BadPolicy(why));
        if self.keys.is_empty() || self.keys.len() > MAX_KEYS {
            return bad(format!("a policy has 1 to {MAX_KEYS} keys"));
        }
        let mut seen = BTreeSet::new();
        for key in &self.keys {
            if key.strong_verifying_key().is_err() {
                return bad(format!("{key} is not a strong ed25519 key"));
            }
            if !seen.insert(key) {
                return bad(format!("key {key} appears twice"));
            }
        }
        if self.threshold == 0 || self.threshold as usize > self.keys.len() {
            return bad(format!(
                "threshold {} is not between 1 and the {} keys",
                self.threshold,
                self.keys.len()
            ));
        }
        Ok(())
    }
}

/// Which policy approves an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Adding and removing participants, adding and revoking their keys.
    Members,
    /// Market rules, and every policy.
    Rules,
    /// Per-interval tariffs (a supplier's day-ahead dynamic tariff), if the community names a
    /// publisher ([`Policies::prices`]).
    Prices,
}

/// The policies of every scope. Genesis may name them; if it does not, each is a Byzantine
/// quorum of the validators' keys ([`Policy::quorum_of`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policies {
    /// Approves member and key changes (a community operator's key, or a quorum).
    pub members: Policy,
    /// Approves rule changes and policy changes.
    pub rules: Policy,
    /// Approves per-interval tariffs ([`Action::SetPrices`]): typically the supplier's one key
    /// with threshold 1. Absent: nobody publishes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prices: Option<Policy>,
}

impl Policies {
    /// The policy of `scope` (`None`: nobody may approve such actions).
    #[must_use]
    pub fn of(&self, scope: Scope) -> Option<&Policy> {
        match scope {
            Scope::Members => Some(&self.members),
            Scope::Rules => Some(&self.rules),
            Scope::Prices => self.prices.as_ref(),
        }
    }

    /// Sets the policy of `scope`.
    pub fn set(&mut self, scope: Scope, policy: Policy) {
        match scope {
            Scope::Members => self.members = policy,
            Scope::Rules => self.rules = policy,
            Scope::Prices => self.prices = Some(policy),
        }
    }

    /// Checks every policy.
    ///
    /// # Errors
    /// As [`Policy::check`].
    pub fn check(&self) -> Result<(), GovernanceRejection> {
        self.members.check()?;
        self.rules.check()?;
        self.prices.as_ref().map_or(Ok(()), Policy::check)
    }
}

/// The market rules a governance action can change: everything in [`MarketConfig`] except the
/// interval length and gate closure, which fix the chain's interval grid for its whole life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// How each interval clears.
    pub mechanism: Mechanism,
    /// Tariff bounds and quantity bound.
    pub rules: MarketRules,
    /// Fee per kWh on locally traded energy.
    pub network_fee: Price,
    /// Admission limits.
    pub admission: AdmissionLimits,
}

impl Rules {
    /// The changeable part of a market configuration.
    #[must_use]
    pub fn of(config: &MarketConfig) -> Rules {
        Rules {
            mechanism: config.mechanism,
            rules: config.rules,
            network_fee: config.network_fee,
            admission: config.admission,
        }
    }

    /// The whole configuration on the chain's interval grid.
    #[must_use]
    pub fn on(&self, interval: IntervalSpec) -> MarketConfig {
        MarketConfig {
            mechanism: self.mechanism,
            rules: self.rules,
            network_fee: self.network_fee,
            interval,
            admission: self.admission,
        }
    }
}

/// One change to the community.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// A new member (or a former one back) with the keys allowed to sign its orders. It may
    /// trade from the block the action takes effect in.
    AddParticipant {
        /// Its pseudonym: printable ASCII without `:`, `"` or `\`, at most [`MAX_ID_BYTES`].
        participant: ParticipantId,
        /// Keys allowed to sign for it (its own, its bridge's).
        keys: Vec<PublicKey>,
    },
    /// A member leaves from an interval on: its orders for that interval and later are refused,
    /// and those already booked for them expire. Its history and balance stay readable.
    RemoveParticipant {
        /// The member.
        participant: ParticipantId,
        /// First interval (Unix seconds) it may not trade in; its gate must still be open
        /// when the action takes effect.
        from_interval: i64,
    },
    /// Another key may sign for a member (a new phone, a new bridge).
    AddKey {
        /// The member.
        participant: ParticipantId,
        /// The key.
        key: PublicKey,
    },
    /// A key may no longer sign for a member (lost or retired). A member keeps at least one key.
    RevokeKey {
        /// The member.
        participant: ParticipantId,
        /// The key.
        key: PublicKey,
    },
    /// New market rules from an interval on, until a later change; never retroactive: the
    /// interval's gate must still be open when the action takes effect. Orders already booked
    /// for those intervals that the new rules refuse expire.
    ChangeRules {
        /// First interval (Unix seconds) the rules apply to.
        from_interval: i64,
        /// The rules.
        rules: Rules,
    },
    /// Per-interval tariffs (a supplier's day-ahead dynamic tariff): for each listed interval,
    /// the feed-in and retail prices that bound its orders, instead of the rules' tariffs. Each
    /// interval's gate must still be open when the action takes effect (a late publication is
    /// refused as `retroactive`); orders already booked outside the new bounds expire. At most
    /// [`MAX_PRICED_INTERVALS`] intervals per action.
    SetPrices {
        /// Interval start (Unix seconds) → its tariffs.
        prices: BTreeMap<i64, Tariffs>,
    },
    /// A new validator set: add, remove or replace validators. The block in which it takes
    /// effect ends the current epoch of the chain; the new set runs the next one, rooted at that
    /// block (the rule: `consensus/README.md`, "Validator set changes"). It is the last action
    /// of its block, and the policies do not follow it: a community whose approving
    /// organisations change sends a [`Action::SetPolicy`] too.
    SetValidators {
        /// The whole new set, in index order (1 to [`MAX_VALIDATORS`] distinct strong keys),
        /// each with the libp2p address where the others dial it.
        validators: Vec<GenesisValidator>,
    },
    /// A new policy for a scope, effective for every approval counted after it.
    SetPolicy {
        /// Which scope.
        scope: Scope,
        /// Its new policy.
        policy: Policy,
    },
}

impl Action {
    /// The policy that approves this action.
    #[must_use]
    pub fn scope(&self) -> Scope {
        match self {
            Action::AddParticipant { .. }
            | Action::RemoveParticipant { .. }
            | Action::AddKey { .. }
            | Action::RevokeKey { .. } => Scope::Members,
            Action::ChangeRules { .. }
            | Action::SetPolicy { .. }
            | Action::SetValidators { .. } => Scope::Rules,
            Action::SetPrices { .. } => Scope::Prices,
        }
    }

    /// A stable name for logs and metrics.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Action::AddParticipant { .. } => "add_participant",
            Action::RemoveParticipant { .. } => "remove_participant",
            Action::AddKey { .. } => "add_key",
            Action::RevokeKey { .. } => "revoke_key",
            Action::ChangeRules { .. } => "change_rules",
            Action::SetPrices { .. } => "set_prices",
            Action::SetPolicy { .. } => "set_policy",
            Action::SetValidators { .. } => "set_validators",
        }
    }
}

/// An epoch of the chain: the validator set that runs it, and the block it is rooted at (the
/// block whose [`Action::SetValidators`] ended the epoch before).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Epoch {
    /// 0 for the genesis set, then one more per validator change.
    pub number: u64,
    /// Height of the block the epoch is rooted at (0: genesis).
    pub root_height: u64,
    /// The validator set, in index order.
    pub validators: Vec<GenesisValidator>,
}

/// A participant as the ledger knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// Keys allowed to sign its orders.
    pub keys: Vec<PublicKey>,
    /// The first interval it may not trade in, once removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_from: Option<i64>,
}

/// What approvers sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proposal {
    /// A name unique to the proposal (printable ASCII without `:`, `"` or `\`, at most
    /// [`MAX_ID_BYTES`]): two proposals of the same action differ by it.
    pub id: String,
    /// The last block time (ms since the Unix epoch) at which the action may take effect.
    pub valid_until_ms: u64,
    /// The change.
    pub action: Action,
}

/// A proposal's identity: SHA-256 of its signing bytes, written as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProposalHash(pub [u8; 32]);

impl fmt::Display for ProposalHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ProposalHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProposalHash({self})")
    }
}

impl Serialize for ProposalHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ProposalHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.as_bytes(), &mut bytes).map_err(serde::de::Error::custom)?;
        Ok(ProposalHash(bytes))
    }
}

impl Proposal {
    /// The bytes an approval signs (module docs).
    #[must_use]
    pub fn signing_bytes(&self, neighborhood: &str) -> Vec<u8> {
        crate::signature::signing_bytes("voltmesh/governance/v1", neighborhood, self)
    }

    /// The proposal's identity in `neighborhood`.
    #[must_use]
    pub fn hash(&self, neighborhood: &str) -> ProposalHash {
        ProposalHash(Sha256::digest(self.signing_bytes(neighborhood)).into())
    }

    /// An approval of this proposal by `key`.
    #[must_use]
    pub fn approve(&self, neighborhood: &str, key: &SigningKey) -> Approval {
        Approval {
            public_key: PublicKey(key.verifying_key().to_bytes()),
            signature: key.sign(&self.signing_bytes(neighborhood)).to_bytes(),
        }
    }
}

/// One approver's signature of a proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// The approver's key (64 hex digits).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub public_key: PublicKey,
    /// ed25519 over [`Proposal::signing_bytes`], hex (128 digits).
    #[serde(with = "crate::order::hex_signature")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub signature: [u8; 64],
}

impl Approval {
    /// Whether the signature is valid for `proposal` under the ZIP-215 rules.
    #[must_use]
    pub fn valid_for(&self, proposal: &Proposal, neighborhood: &str) -> bool {
        let Ok(key) = ed25519_zebra::VerificationKey::try_from(self.public_key.0) else {
            return false;
        };
        key.verify(
            &ed25519_zebra::Signature::from(self.signature),
            &proposal.signing_bytes(neighborhood),
        )
        .is_ok()
    }
}

/// A proposal with approvals, as blocks carry it and `POST /v1/governance` takes it.
///
/// # Canonical form (checked by [`SignedProposal::check_form`])
/// At least one approval, at most [`MAX_APPROVALS`], sorted by key with no key twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SignedProposal {
    /// What is approved: `{"id", "valid_until_ms", "action": {"type": .., ..}}`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub proposal: Proposal,
    /// Who approves it.
    pub approvals: Vec<Approval>,
}

impl SignedProposal {
    /// A proposal signed by `keys`, in canonical form.
    #[must_use]
    pub fn signed(proposal: Proposal, neighborhood: &str, keys: &[&SigningKey]) -> Self {
        let mut approvals: Vec<Approval> = keys
            .iter()
            .map(|k| proposal.approve(neighborhood, k))
            .collect();
        approvals.sort_by_key(|a| a.public_key);
        approvals.dedup_by_key(|a| a.public_key);
        SignedProposal {
            proposal,
            approvals,
        }
    }

    /// The approvals of both, in canonical form (each organisation signs on its own machine;
    /// this puts their files together).
    ///
    /// # Errors
    /// [`GovernanceRejection::Malformed`] if the two are of different proposals.
    pub fn combine(mut self, other: SignedProposal) -> Result<SignedProposal, GovernanceRejection> {
        if self.proposal != other.proposal {
            return Err(GovernanceRejection::Malformed(
                "the approvals are of different proposals".into(),
            ));
        }
        self.approvals.extend(other.approvals);
        self.approvals.sort_by_key(|a| a.public_key);
        self.approvals.dedup_by_key(|a| a.public_key);
        Ok(self)
    }

    /// Checks the canonical form and the ids.
    ///
    /// # Errors
    /// [`GovernanceRejection::Malformed`] naming the problem.
    pub fn check_form(&self) -> Result<(), GovernanceRejection> {
        let bad = |why: &str| Err(GovernanceRejection::Malformed(why.to_owned()));
        if self.approvals.is_empty() {
            return bad("a signed proposal needs at least one approval");
        }
        if self.approvals.len() > MAX_APPROVALS {
            return bad("too many approvals");
        }
        if self
            .approvals
            .windows(2)
            .any(|w| w[0].public_key >= w[1].public_key)
        {
            return bad("approvals must be sorted by key, each key once");
        }
        check_id(&self.proposal.id).map_err(GovernanceRejection::Malformed)?;
        Ok(())
    }
}

/// Checks a proposal id or a new participant id: non-empty printable ASCII without `:`, `"` or
/// `\`, at most [`MAX_ID_BYTES`] bytes.
///
/// # Errors
/// What is wrong with it.
pub fn check_id(id: &str) -> Result<(), String> {
    if id.len() > MAX_ID_BYTES {
        return Err(format!("id {id:?} is longer than {MAX_ID_BYTES} bytes"));
    }
    crate::order::check_order_id(id).map_err(|e| format!("id {id:?}: {e}"))
}

/// Checks a validator set an [`Action::SetValidators`] names, on its own: 1 to
/// [`MAX_VALIDATORS`] distinct strong keys, each with an address of printable ASCII that
/// starts with `/` (a multiaddr), at most [`MAX_ADDRESS_BYTES`].
///
/// # Errors
/// [`GovernanceRejection::BadValidators`] or [`GovernanceRejection::BadKey`] naming the first
/// problem.
pub fn check_validators(validators: &[GenesisValidator]) -> Result<(), GovernanceRejection> {
    let bad = |why: String| Err(GovernanceRejection::BadValidators(why));
    if validators.is_empty() || validators.len() > MAX_VALIDATORS {
        return bad(format!(
            "a validator set has 1 to {MAX_VALIDATORS} validators"
        ));
    }
    let mut seen = BTreeSet::new();
    for v in validators {
        v.public_key
            .strong_verifying_key()
            .map_err(|e| GovernanceRejection::BadKey(e.to_string()))?;
        if !seen.insert(v.public_key) {
            return bad(format!("validator {} appears twice", v.public_key));
        }
        let address = &v.address;
        if address.len() > MAX_ADDRESS_BYTES
            || !address.starts_with('/')
            || !address.bytes().all(|b| b.is_ascii_graphic())
        {
            return bad(format!(
                "address {address:?} of {} is not a multiaddr of at most {MAX_ADDRESS_BYTES} printable ASCII bytes",
                v.public_key
            ));
        }
    }
    Ok(())
}

/// Why a signed proposal is refused (by the node API or a validator).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GovernanceRejection {
    /// Not in canonical form, or an id is not allowed.
    #[error("malformed proposal: {0}")]
    Malformed(String),
    /// Its `valid_until_ms` has passed.
    #[error("the proposal expired at {valid_until_ms} ms (block time {at_ms} ms)")]
    Expired {
        /// The proposal's deadline.
        valid_until_ms: u64,
        /// Block time.
        at_ms: u64,
    },
    /// Its `valid_until_ms` is further ahead than [`MAX_PROPOSAL_LIFETIME_MS`].
    #[error("the proposal is valid for longer than {MAX_PROPOSAL_LIFETIME_MS} ms")]
    LifetimeTooLong,
    /// The proposal took effect already: a replay.
    #[error("proposal {0} took effect already")]
    Replayed(ProposalHash),
    /// An approval's key is not in the action's policy (or the scope has no policy).
    #[error("key {key} may not approve {scope:?} actions")]
    Unauthorised {
        /// The scope.
        scope: Scope,
        /// The approver's key.
        key: String,
    },
    /// An approval's signature does not verify.
    #[error("bad signature by {0}")]
    BadSignature(String),
    /// Every approval carried was collected already.
    #[error("proposal {0} has every one of these approvals already")]
    DuplicateApproval(ProposalHash),
    /// As many proposals collect approvals as the ledger allows.
    #[error("{MAX_PENDING_PROPOSALS} proposals are collecting approvals already; retry once some take effect or expire")]
    GovernanceFull,
    /// The action names a participant the ledger does not know.
    #[error("unknown participant {0}")]
    UnknownParticipant(String),
    /// The participant is a member already.
    #[error("participant {0} is a member already")]
    AlreadyMember(String),
    /// The participant was removed.
    #[error("participant {0} was removed")]
    Removed(String),
    /// The key is a strong ed25519 key the action cannot use (weak, not a point, present or
    /// absent, the member's last, too many).
    #[error("key: {0}")]
    BadKey(String),
    /// The action would change an interval whose gate has closed, or names an interval that is
    /// not on the chain's grid.
    #[error("interval {0} is closed or not on the interval grid: changes are never retroactive")]
    Retroactive(i64),
    /// The rules are inconsistent.
    #[error("rules: {0}")]
    BadRules(String),
    /// The policy is inconsistent.
    #[error("policy: {0}")]
    BadPolicy(String),
    /// The validator set is unusable (empty, too large, a key twice or weak, a bad address,
    /// the set in force), or a validator change is not the last action of its block.
    #[error("validators: {0}")]
    BadValidators(String),
    /// The node's pool of proposals waiting for a block is full; retry later.
    #[error("the node's proposal pool is full; retry later")]
    PoolFull,
}

impl GovernanceRejection {
    /// A stable name for metrics and the API's `error` field.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            GovernanceRejection::Malformed(_) => "malformed_proposal",
            GovernanceRejection::Expired { .. } => "expired",
            GovernanceRejection::LifetimeTooLong => "lifetime_too_long",
            GovernanceRejection::Replayed(_) => "replayed",
            GovernanceRejection::Unauthorised { .. } => "unauthorised",
            GovernanceRejection::BadSignature(_) => "bad_signature",
            GovernanceRejection::DuplicateApproval(_) => "duplicate_approval",
            GovernanceRejection::GovernanceFull => "governance_full",
            GovernanceRejection::UnknownParticipant(_) => "unknown_participant",
            GovernanceRejection::AlreadyMember(_) => "already_member",
            GovernanceRejection::Removed(_) => "participant_removed",
            GovernanceRejection::BadKey(_) => "bad_key",
            GovernanceRejection::Retroactive(_) => "retroactive",
            GovernanceRejection::BadRules(_) => "bad_rules",
            GovernanceRejection::BadPolicy(_) => "bad_policy",
            GovernanceRejection::BadValidators(_) => "bad_validators",
            GovernanceRejection::PoolFull => "pool_full",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    fn pk(n: u8) -> PublicKey {
        PublicKey(key(n).verifying_key().to_bytes())
    }

    fn proposal() -> Proposal {
        Proposal {
            id: "add-h9".into(),
            valid_until_ms: 1_790_000_000_000,
            action: Action::AddParticipant {
                participant: "h9".into(),
                keys: vec![pk(9)],
            },
        }
    }

    /// The exact bytes of `voltmesh/governance/v1`: changing them is a protocol change.
    #[test]
    fn signing_bytes_are_stable() {
        let p = proposal();
        let text = String::from_utf8(p.signing_bytes("nb")).expect("utf-8");
        assert_eq!(
            text,
            format!(
                "voltmesh/governance/v1\nnb\n{{\"id\":\"add-h9\",\"valid_until_ms\":1790000000000,\"action\":{{\"type\":\"add_participant\",\"participant\":\"h9\",\"keys\":[\"{}\"]}}}}",
                pk(9)
            )
        );
        assert_ne!(p.hash("nb"), p.hash("other"), "bound to the neighborhood");
        let approval = p.approve("nb", &key(1));
        assert!(approval.valid_for(&p, "nb"));
        assert!(!approval.valid_for(&p, "other"));
        let mut changed = p;
        changed.valid_until_ms += 1;
        assert!(!approval.valid_for(&changed, "nb"));
    }

    #[test]
    fn approvals_combine_into_canonical_form() {
        let a = SignedProposal::signed(proposal(), "nb", &[&key(3)]);
        let b = SignedProposal::signed(proposal(), "nb", &[&key(1), &key(3)]);
        let both = a.clone().combine(b).expect("same proposal");
        assert_eq!(both.approvals.len(), 2);
        assert_eq!(both.check_form(), Ok(()));
        let mut unsorted = both.clone();
        unsorted.approvals.reverse();
        assert!(matches!(
            unsorted.check_form(),
            Err(GovernanceRejection::Malformed(_))
        ));
        let mut other = proposal();
        other.id = "another".into();
        assert!(a
            .combine(SignedProposal::signed(other, "nb", &[&key(1)]))
            .is_err());
        let empty = SignedProposal {
            proposal: proposal(),
            approvals: Vec::new(),
        };
        assert!(empty.check_form().is_err());
        let text = serde_json::to_string(&both).expect("json");
        assert_eq!(
            serde_json::from_str::<SignedProposal>(&text).expect("parse"),
            both
        );
    }

    #[test]
    fn the_default_policy_is_a_byzantine_quorum() {
        let keys = |n: u8| (1..=n).map(pk).collect::<Vec<_>>();
        assert_eq!(Policy::quorum_of(keys(1)).threshold, 1);
        assert_eq!(Policy::quorum_of(keys(4)).threshold, 3);
        assert_eq!(Policy::quorum_of(keys(5)).threshold, 3);
        assert_eq!(Policy::quorum_of(keys(7)).threshold, 5);
        assert_eq!(Policy::quorum_of(keys(4)).check(), Ok(()));
        let twice = Policy {
            keys: vec![pk(1), pk(1)],
            threshold: 1,
        };
        assert!(twice.check().is_err());
        let none = Policy {
            keys: keys(2),
            threshold: 0,
        };
        assert!(none.check().is_err());
        let too_many = Policy {
            keys: keys(2),
            threshold: 3,
        };
        assert!(too_many.check().is_err());
    }

    #[test]
    fn actions_name_their_scope_and_parse_by_type() {
        let json = format!(
            "{{\"type\":\"revoke_key\",\"participant\":\"h1\",\"key\":\"{}\"}}",
            pk(2)
        );
        let action: Action = serde_json::from_str(&json).expect("parse");
        assert_eq!(action.scope(), Scope::Members);
        assert_eq!(action.kind(), "revoke_key");
        assert!(serde_json::from_str::<Action>(&json.replace("}", ",\"x\":1}")).is_err());
        assert!(check_id("ok-1").is_ok());
        assert!(check_id("a:b").is_err());
        assert!(check_id(&"x".repeat(MAX_ID_BYTES + 1)).is_err());
    }
}
