//! Ledger state snapshots: the state after a committed block, in one canonical encoding, and
//! the digest the chain commits to.
//!
//! # The rule
//! With `genesis.snapshot_interval_blocks = N > 0`, the state after every block at a height
//! `s` with `s % N == 0` is a snapshot. The block at height `s + 1` carries
//! `sha256(snapshot bytes)` in its body ([`super::BlockBody::state`]), computed by its proposer
//! from the state it builds on; every validator recomputes it from its own state and refuses
//! the block if it differs (and refuses a digest at any other height). A certified block at
//! `s + 1` therefore proves the digest of the state after `s`: a quorum voted for it, and at
//! least one honest validator among them checked it.
//!
//! # Encoding
//! Compact JSON of [`StateSnapshot`]: block time, next sequence, each open book's orders in
//! the order they entered it, books by interval start ascending, and, once governance changed
//! anything, the community ([`CommunitySnapshot`]; absent while it is as genesis says). Decoding checks that the bytes
//! re-encode identically, so one state has one encoding, and rebuilds the books by submitting
//! the orders again in that order (the engine's book is a deterministic function of them).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use voltmesh_engine::{CallAuction, Money, Order, ParticipantId, Tariffs, Trade};
use voltmesh_wire::governance::{Epoch, Member, Policies, ProposalHash, Rules, SignedProposal};
use voltmesh_wire::Genesis;

use super::community::{Community, Pending};
use super::LedgerState;

/// The state after a block, as encoded in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSnapshot {
    /// Time of the block the state follows, ms.
    pub last_block_ms: u64,
    /// The next order's sequence number.
    pub next_seq: u64,
    /// Open books, by interval start ascending.
    pub books: Vec<BookSnapshot>,
    /// The community, once governance changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community: Option<CommunitySnapshot>,
    /// Metered deliveries of the intervals whose window is open, by interval then participant
    /// (absent when there are none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deliveries: Vec<DeliverySnapshot>,
    /// Trades of the cleared intervals waiting for their bills, by interval (absent when there
    /// are none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settling: Vec<SettlingSnapshot>,
    /// Every party's amount not billed yet (absent while all are zero).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carries: Option<CarriesSnapshot>,
    /// Settled intervals that may still be corrected, by interval (absent when there are none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub correctable: Vec<CorrectableSnapshot>,
}

/// What the state keeps of a settled interval for corrections
/// ([`super::corrections::Correctable`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorrectableSnapshot {
    /// The interval.
    pub interval_start: i64,
    /// The Merkle root of its leaves as corrected so far, hex.
    pub root: String,
    /// Its number of bills.
    pub leaves: u32,
    /// The tariffs its bills were settled with.
    pub tariffs: Tariffs,
}

/// A cleared interval's trades, waiting for its bills ([`super::billing`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettlingSnapshot {
    /// The interval.
    pub interval_start: i64,
    /// Its trades, as the clearing made them.
    pub trades: Vec<Trade>,
}

/// The carries of [`super::billing::Carries`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CarriesSnapshot {
    /// Participants with a non-zero carry.
    pub participants: BTreeMap<ParticipantId, Money>,
    /// The utility's.
    pub utility: Money,
    /// The network operator's.
    pub network: Money,
    /// Participants with a non-zero correction carry (absent when there are none).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub corrections: BTreeMap<ParticipantId, Money>,
    /// The utility's correction carry (absent while zero).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub utility_corrections: Money,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(m: &Money) -> bool {
    *m == Money::ZERO
}

/// One metered delivery in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySnapshot {
    /// The interval.
    pub interval_start: i64,
    /// The participant.
    pub participant: ParticipantId,
    /// Taken from the grid, Wh.
    pub import_wh: u64,
    /// Fed into the grid, Wh.
    pub export_wh: u64,
}

/// The community in a snapshot ([`Community`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommunitySnapshot {
    /// Every member, removed ones included.
    pub members: BTreeMap<ParticipantId, Member>,
    /// The genesis rules.
    pub base: Rules,
    /// Rule changes: from which interval start on.
    pub schedule: BTreeMap<i64, Rules>,
    /// Per-interval tariffs published for intervals not cleared yet.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub prices: BTreeMap<i64, Tariffs>,
    /// The policies in force.
    pub policies: Policies,
    /// Proposals collecting approvals, with the approvals committed so far.
    pub pending: Vec<SignedProposal>,
    /// Proposals that took effect, with their deadlines.
    pub applied: BTreeMap<ProposalHash, u64>,
    /// How many actions took effect since genesis.
    pub actions_applied: u64,
    /// The epochs after genesis's, oldest first (absent while the genesis set runs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub epochs: Vec<Epoch>,
}

impl CommunitySnapshot {
    fn of(community: &Community) -> CommunitySnapshot {
        CommunitySnapshot {
            members: community.members.clone(),
            base: community.base,
            schedule: community.schedule.clone(),
            prices: community.prices.clone(),
            policies: community.policies.clone(),
            pending: community
                .pending
                .values()
                .map(|p| SignedProposal {
                    proposal: p.proposal.clone(),
                    approvals: p.approvals.values().cloned().collect(),
                })
                .collect(),
            applied: community.applied.clone(),
            actions_applied: community.actions_applied,
            epochs: community.epochs[1..].to_vec(),
        }
    }

    fn into_community(self, genesis: &Genesis) -> Community {
        let neighborhood = genesis.neighborhood.as_str();
        let mut epochs = Community::genesis(genesis).epochs;
        epochs.extend(self.epochs);
        Community {
            members: self.members,
            base: self.base,
            schedule: self.schedule,
            prices: self.prices,
            policies: self.policies,
            pending: self
                .pending
                .into_iter()
                .map(|signed| {
                    (
                        signed.proposal.hash(neighborhood),
                        Pending {
                            proposal: signed.proposal,
                            approvals: signed
                                .approvals
                                .into_iter()
                                .map(|a| (a.public_key, a))
                                .collect(),
                        },
                    )
                })
                .collect(),
            applied: self.applied,
            actions_applied: self.actions_applied,
            epochs,
        }
    }
}

/// One open book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookSnapshot {
    /// Interval start, Unix seconds.
    pub interval_start: i64,
    /// Its orders, in the order they entered the book.
    pub orders: Vec<Order>,
}

/// A snapshot that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The bytes are not a canonical snapshot.
    #[error("malformed snapshot: {0}")]
    Malformed(String),
    /// An order in it does not enter its book again.
    #[error("snapshot book {interval_start}: {reason}")]
    Book {
        /// The book.
        interval_start: i64,
        /// The engine's refusal.
        reason: String,
    },
}

/// Whether the block at `height` carries the digest of the state after its parent.
#[must_use]
pub fn carries_digest(genesis: &Genesis, height: u64) -> bool {
    let every = genesis.snapshot_interval_blocks;
    every > 0 && height > 1 && (height - 1) % every == 0
}

/// Whether the state after the block at `height` is a snapshot.
#[must_use]
pub fn is_snapshot_height(genesis: &Genesis, height: u64) -> bool {
    let every = genesis.snapshot_interval_blocks;
    every > 0 && height > 0 && height % every == 0
}

/// The digest blocks carry: SHA-256 of the snapshot bytes, lowercase hex.
#[must_use]
pub fn digest(snapshot_bytes: &[u8]) -> String {
    hex::encode(crate::protocol::hash::sha256(snapshot_bytes))
}

impl LedgerState {
    /// The canonical snapshot bytes of this state.
    #[must_use]
    pub fn snapshot_bytes(&self) -> Vec<u8> {
        let snapshot = StateSnapshot {
            last_block_ms: self.last_block_ms,
            next_seq: self.next_seq,
            books: self
                .books
                .iter()
                .map(|(&interval_start, book)| BookSnapshot {
                    interval_start,
                    orders: book.orders().to_vec(),
                })
                .collect(),
            community: (!self.community.is_genesis())
                .then(|| CommunitySnapshot::of(&self.community)),
            deliveries: self
                .deliveries
                .iter()
                .map(|((interval_start, participant), m)| DeliverySnapshot {
                    interval_start: *interval_start,
                    participant: participant.clone(),
                    import_wh: m.import_wh,
                    export_wh: m.export_wh,
                })
                .collect(),
            settling: self
                .settling
                .iter()
                .map(|(&interval_start, trades)| SettlingSnapshot {
                    interval_start,
                    trades: trades.to_vec(),
                })
                .collect(),
            carries: (*self.carries != super::billing::Carries::default()).then(|| {
                CarriesSnapshot {
                    participants: self.carries.participants.clone(),
                    utility: self.carries.utility,
                    network: self.carries.network,
                    corrections: self.carries.corrections.clone(),
                    utility_corrections: self.carries.utility_corrections,
                }
            }),
            correctable: self
                .correctable
                .iter()
                .map(|(&interval_start, c)| CorrectableSnapshot {
                    interval_start,
                    root: hex::encode(c.root),
                    leaves: c.leaves,
                    tariffs: c.tariffs,
                })
                .collect(),
        };
        // Plain structs of strings, integers and vectors always serialize.
        serde_json::to_vec(&snapshot).unwrap_or_default()
    }

    /// The state a snapshot encodes.
    ///
    /// # Errors
    /// [`SnapshotError`] if the bytes are not canonical or an order does not enter its book.
    pub fn from_snapshot(genesis: &Genesis, bytes: &[u8]) -> Result<LedgerState, SnapshotError> {
        let snapshot: StateSnapshot =
            serde_json::from_slice(bytes).map_err(|e| SnapshotError::Malformed(e.to_string()))?;
        if serde_json::to_vec(&snapshot).ok().as_deref() != Some(bytes) {
            return Err(SnapshotError::Malformed("not in canonical form".into()));
        }
        let community = match snapshot.community {
            Some(community) => community.into_community(genesis),
            None => Community::genesis(genesis),
        };
        let mut state = LedgerState {
            books: BTreeMap::new(),
            counts: BTreeMap::new(),
            next_seq: snapshot.next_seq,
            last_block_ms: snapshot.last_block_ms,
            height: 0,
            community: Arc::new(community),
            deliveries: Arc::default(),
            settling: Arc::default(),
            carries: Arc::default(),
            correctable: Arc::default(),
        };
        let mut settling = BTreeMap::new();
        for interval in snapshot.settling {
            if settling
                .last_key_value()
                .is_some_and(|(&last, _)| last >= interval.interval_start)
                || interval.trades.is_empty()
            {
                return Err(SnapshotError::Malformed(
                    "settling intervals are not in ascending order, or one has no trades".into(),
                ));
            }
            settling.insert(interval.interval_start, interval.trades.into());
        }
        state.settling = Arc::new(settling);
        if let Some(carries) = snapshot.carries {
            if carries
                .participants
                .values()
                .chain(carries.corrections.values())
                .any(|c| *c == Money::ZERO)
            {
                return Err(SnapshotError::Malformed("a zero carry is not kept".into()));
            }
            state.carries = Arc::new(super::billing::Carries {
                participants: carries.participants,
                utility: carries.utility,
                network: carries.network,
                corrections: carries.corrections,
                utility_corrections: carries.utility_corrections,
            });
        }
        let mut correctable = BTreeMap::new();
        for c in snapshot.correctable {
            let mut root = [0u8; 32];
            if hex::decode_to_slice(&c.root, &mut root).is_err()
                || correctable
                    .last_key_value()
                    .is_some_and(|(&last, _)| last >= c.interval_start)
            {
                return Err(SnapshotError::Malformed(
                    "correctable intervals are not in ascending order, or a root is not hex".into(),
                ));
            }
            correctable.insert(
                c.interval_start,
                super::corrections::Correctable {
                    root,
                    leaves: c.leaves,
                    tariffs: c.tariffs,
                },
            );
        }
        state.correctable = Arc::new(correctable);
        let mut deliveries = BTreeMap::new();
        for d in snapshot.deliveries {
            let key = (d.interval_start, d.participant);
            if deliveries
                .last_key_value()
                .is_some_and(|(last, _)| *last >= key)
            {
                return Err(SnapshotError::Malformed(
                    "deliveries are not in ascending order".into(),
                ));
            }
            deliveries.insert(
                key,
                super::deliveries::Metered {
                    import_wh: d.import_wh,
                    export_wh: d.export_wh,
                },
            );
        }
        state.deliveries = Arc::new(deliveries);
        let mut previous = None;
        for book in snapshot.books {
            if previous.is_some_and(|p| p >= book.interval_start) {
                return Err(SnapshotError::Malformed(
                    "books are not in ascending interval order".into(),
                ));
            }
            previous = Some(book.interval_start);
            let mut auction =
                CallAuction::new(state.community.rules_for(book.interval_start).rules);
            for order in book.orders {
                let participant = order.participant.clone();
                auction
                    .submit(order)
                    .map_err(|reason| SnapshotError::Book {
                        interval_start: book.interval_start,
                        reason: reason.to_string(),
                    })?;
                *state
                    .counts
                    .entry((book.interval_start, participant))
                    .or_insert(0) += 1;
            }
            state.books.insert(book.interval_start, auction);
        }
        Ok(state)
    }
}
