//! Corrections from official metering data (issue 14, deliverable 5).
//!
//! In a real energy community the grid operator's quarter-hour data (Austria's EDA, Germany's
//! MSCONS) is the legal truth, and it arrives days after the bridge's own deliveries were
//! billed. A **correction import** carries such data for settled intervals, signed by one of the
//! community's billing keys (genesis `billing_keys`); every validator re-settles what it names
//! and the ledger records the difference as new **correction entries**. Bills are never
//! rewritten: a statement shows a bill and the corrections to it.
//!
//! # What a validator keeps, and what an import proves
//! Re-settling one household's interval needs its contract (sold minus bought), the reading it
//! was billed on and the interval's tariffs. A validator does not keep every bill: when an
//! interval settles, its state keeps, for the correction window (genesis
//! `deliveries.correction_window_days`, default 62), the interval's tariffs and a SHA-256
//! Merkle root over one [`SettledLeaf`] per bill, in bill (participant) order
//! ([`settlement_root`]; 171 bytes of snapshot JSON an interval, the bills bench measures). An
//! import carries, per interval, the
//! leaves it corrects with their indices and one multi-proof (rs_merkle's, over
//! [`SettledLeaf::hash`]es); the validator checks the proof against its root, re-settles each
//! leaf with the official reading ([`UtilityExchange`] before and after, the engine's rule), and
//! replaces the root by the one the same proof gives for the corrected leaves. A second import
//! for the same leaf therefore corrects the corrected reading, and an import replayed no longer
//! proves against the root (`bad_proof`).
//!
//! # Money
//! A correction changes only what a participant settles with the utility: its local trades and
//! network fees stand. Each entry's `total` is the participant's utility amount after minus
//! before, billed rounded half to even to the currency's minor unit with a *correction carry*
//! per participant (kept apart from the bills' carries, so that a bill's carry chain does not
//! depend on when official data arrived); the utility's line of an interval's corrections is
//! rounded with its own correction carry. The entries' exact totals equal the utility's line.
//!
//! # Signing bytes (`voltmesh/correction/v1`)
//! ```text
//! voltmesh/correction/v1\n<neighborhood>\n<compact JSON of the CorrectionTicket>
//! ```
//! ed25519 under the ZIP-215 rules, like orders'.

use ed25519_dalek::{Signer, SigningKey};
use rs_merkle::algorithms::Sha256 as MerkleSha256;
use rs_merkle::{MerkleProof, MerkleTree};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use voltmesh_engine::settlement::{no_market, utility_exchange};
use voltmesh_engine::{Money, ParticipantId, Price, Tariffs, Wh};

use crate::bill::{Bill, PartyLine};
use crate::delivery::{MAX_METERS, MAX_METER_ID_BYTES};
use crate::genesis::PublicKey;
use crate::order::hex_signature;
use crate::Currency;

/// Most leaves one import corrects, over all its intervals.
pub const MAX_CORRECTIONS: usize = 5_000;
/// Longest import id and source, in bytes.
pub const MAX_IMPORT_ID_BYTES: usize = 64;

/// What the ledger commits to of one bill, for corrections: its contract and the reading it
/// was settled on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SettledLeaf {
    /// Whose bill.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub participant: ParticipantId,
    /// Sold minus bought locally, Wh.
    pub contract_wh: i64,
    /// Whether the reading was metered (a delivery or an official reading); `false`: the rule
    /// for a household without a delivery.
    pub metered: bool,
    /// The reading: export minus import, Wh.
    pub metered_net_export_wh: i64,
}

impl SettledLeaf {
    /// The leaf of a committed bill.
    #[must_use]
    pub fn of(bill: &Bill) -> SettledLeaf {
        let contract = i128::from(bill.sold_wh) - i128::from(bill.bought_wh);
        SettledLeaf {
            participant: bill.participant.clone(),
            contract_wh: i64::try_from(contract).unwrap_or(i64::MAX),
            metered: bill.metered,
            metered_net_export_wh: bill.metered_net_export_wh,
        }
    }

    /// SHA-256 of `0x00` and the leaf's compact JSON (the prefix keeps a leaf from passing for
    /// an inner node).
    #[must_use]
    pub fn hash(&self) -> [u8; 32] {
        let mut hasher = sha2::Sha256::new();
        hasher.update([0u8]);
        // A struct of strings, integers and booleans always serializes.
        hasher.update(serde_json::to_vec(self).unwrap_or_default());
        hasher.finalize().into()
    }
}

/// The Merkle root over leaf hashes, in order (all zeros for none).
#[must_use]
pub fn settlement_root(leaf_hashes: &[[u8; 32]]) -> [u8; 32] {
    MerkleTree::<MerkleSha256>::from_leaves(leaf_hashes)
        .root()
        .unwrap_or([0; 32])
}

/// The multi-proof of the leaves at `indices` (ascending) among `leaf_hashes`, hex.
#[must_use]
pub fn settlement_proof(leaf_hashes: &[[u8; 32]], indices: &[usize]) -> Vec<String> {
    MerkleTree::<MerkleSha256>::from_leaves(leaf_hashes)
        .proof(indices)
        .proof_hashes()
        .iter()
        .map(hex::encode)
        .collect()
}

/// The root a multi-proof gives for `leaf_hashes` at `indices` in a tree of `total` leaves;
/// `None` if the proof is malformed or the indices are not strictly ascending below `total`.
#[must_use]
pub fn root_from_proof(
    proof: &[String],
    indices: &[usize],
    leaf_hashes: &[[u8; 32]],
    total: usize,
) -> Option<[u8; 32]> {
    if indices.is_empty()
        || indices.len() != leaf_hashes.len()
        || indices.windows(2).any(|w| w[0] >= w[1])
        || indices.last().is_some_and(|&last| last >= total)
    {
        return None;
    }
    let hashes = proof
        .iter()
        .map(|h| {
            let mut out = [0u8; 32];
            hex::decode_to_slice(h, &mut out).ok().map(|()| out)
        })
        .collect::<Option<Vec<[u8; 32]>>>()?;
    MerkleProof::<MerkleSha256>::new(hashes)
        .root(indices, leaf_hashes, total)
        .ok()
}

/// One participant's official reading for one settled interval, with the leaf it corrects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LeafCorrection {
    /// The leaf's index among the interval's bills (participant order).
    pub index: u32,
    /// The leaf as the ledger holds it now (the participant's bill, or its last correction).
    pub leaf: SettledLeaf,
    /// The metering points whose official data this sums (1 to 8 ids).
    pub metering_points: Vec<String>,
    /// Official energy taken from the grid, Wh.
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub import_wh: Wh,
    /// Official energy fed into the grid, Wh.
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub export_wh: Wh,
}

impl LeafCorrection {
    /// The leaf once corrected.
    #[must_use]
    pub fn corrected(&self) -> SettledLeaf {
        let net = i128::from(self.export_wh) - i128::from(self.import_wh);
        SettledLeaf {
            participant: self.leaf.participant.clone(),
            contract_wh: self.leaf.contract_wh,
            metered: true,
            metered_net_export_wh: i64::try_from(net).unwrap_or(0),
        }
    }
}

/// The corrections of one settled interval, with their multi-proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IntervalCorrection {
    /// The interval's start, Unix seconds.
    pub interval_start: i64,
    /// The corrected leaves, by ascending index.
    pub corrections: Vec<LeafCorrection>,
    /// rs_merkle multi-proof of the leaves against the interval's root, hex hashes.
    pub proof: Vec<String>,
}

/// A correction import: official readings for settled intervals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CorrectionTicket {
    /// The import's id (1 to 64 printable ASCII bytes), for people and the API.
    pub id: String,
    /// Where the data comes from (`EDA`, `MSCONS`, a file name; 1 to 64 printable bytes).
    pub source: String,
    /// By ascending interval, each once.
    pub intervals: Vec<IntervalCorrection>,
}

/// A correction import with its signer's key and signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SignedCorrection {
    /// The import.
    pub ticket: CorrectionTicket,
    /// The signer: one of genesis `billing_keys` (64 hex digits).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub public_key: PublicKey,
    /// ed25519 over [`CorrectionTicket::signing_bytes`], hex (128 digits).
    #[serde(with = "hex_signature")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub signature: [u8; 64],
}

impl CorrectionTicket {
    /// The bytes a signature covers (module docs).
    #[must_use]
    pub fn signing_bytes(&self, neighborhood: &str) -> Vec<u8> {
        crate::signature::signing_bytes("voltmesh/correction/v1", neighborhood, self)
    }

    /// Signs the import.
    #[must_use]
    pub fn sign(self, neighborhood: &str, key: &SigningKey) -> SignedCorrection {
        let signature = key.sign(&self.signing_bytes(neighborhood)).to_bytes();
        SignedCorrection {
            public_key: PublicKey(key.verifying_key().to_bytes()),
            ticket: self,
            signature,
        }
    }

    /// Checks the import's form: ids, intervals ascending, leaves ascending, metering points,
    /// at most [`MAX_CORRECTIONS`] leaves and none of them unchanged.
    ///
    /// # Errors
    /// [`CorrectionRejection::Malformed`] naming the problem.
    pub fn check_form(&self) -> Result<(), CorrectionRejection> {
        let bad = |why: String| Err(CorrectionRejection::Malformed(why));
        let printable = |s: &str| {
            !s.is_empty()
                && s.len() <= MAX_IMPORT_ID_BYTES
                && s.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        };
        if !printable(&self.id) || !printable(&self.source) {
            return bad(format!(
                "id and source are 1 to {MAX_IMPORT_ID_BYTES} printable ASCII bytes"
            ));
        }
        if self.intervals.is_empty() {
            return bad("an import corrects at least one interval".into());
        }
        if self
            .intervals
            .windows(2)
            .any(|w| w[0].interval_start >= w[1].interval_start)
        {
            return bad("intervals are not strictly ascending".into());
        }
        let leaves: usize = self.intervals.iter().map(|i| i.corrections.len()).sum();
        if leaves > MAX_CORRECTIONS {
            return bad(format!(
                "{leaves} corrections exceed the per-import maximum {MAX_CORRECTIONS}"
            ));
        }
        for interval in &self.intervals {
            if interval.corrections.is_empty()
                || interval
                    .corrections
                    .windows(2)
                    .any(|w| w[0].index >= w[1].index)
            {
                return bad(format!(
                    "interval {}: corrections are empty or not by strictly ascending index",
                    interval.interval_start
                ));
            }
            for c in &interval.corrections {
                if c.metering_points.is_empty()
                    || c.metering_points.len() > MAX_METERS
                    || c.metering_points.iter().any(|m| {
                        m.is_empty()
                            || m.len() > MAX_METER_ID_BYTES
                            || !m.bytes().all(|b| b.is_ascii_graphic())
                    })
                {
                    return bad(format!(
                        "interval {}, {}: 1 to {MAX_METERS} metering point ids of 1 to \
                         {MAX_METER_ID_BYTES} printable ASCII bytes",
                        interval.interval_start, c.leaf.participant
                    ));
                }
                if c.corrected() == c.leaf {
                    return bad(format!(
                        "interval {}, {}: the official reading is the one billed",
                        interval.interval_start, c.leaf.participant
                    ));
                }
            }
        }
        Ok(())
    }
}

impl SignedCorrection {
    /// Whether the signature is valid for the ticket under `public_key` (ZIP-215).
    #[must_use]
    pub fn signature_valid(&self, neighborhood: &str) -> bool {
        crate::signature::valid(
            self.public_key.0,
            self.signature,
            &self.ticket.signing_bytes(neighborhood),
        )
    }

    /// SHA-256 of the signed import's compact JSON, hex: what identifies it on the chain.
    #[must_use]
    pub fn digest(&self) -> String {
        // Plain structs always serialize.
        hex::encode(sha2::Sha256::digest(
            serde_json::to_vec(self).unwrap_or_default(),
        ))
    }
}

/// One side (before or after a correction) of what a participant settles with the utility.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UtilityExchange {
    /// The reading: export minus import, Wh.
    pub metered_net_export_wh: i64,
    /// Supplied by the utility, Wh.
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub from_utility_wh: Wh,
    /// Taken by the utility, Wh.
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub to_utility_wh: Wh,
    /// Paid to the utility at retail minus received at feed-in, exact.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub utility: Money,
    /// The reading with no market, exact ([`voltmesh_engine::settlement::no_market`]).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub no_market: Money,
}

impl UtilityExchange {
    /// The engine's rule for `leaf` under `tariffs`.
    #[must_use]
    pub fn of(leaf: &SettledLeaf, tariffs: Tariffs) -> UtilityExchange {
        let e = utility_exchange(
            i128::from(leaf.contract_wh),
            leaf.metered_net_export_wh,
            tariffs,
        );
        UtilityExchange {
            metered_net_export_wh: leaf.metered_net_export_wh,
            from_utility_wh: e.from_utility_wh,
            to_utility_wh: e.to_utility_wh,
            utility: e.utility,
            no_market: no_market(leaf.metered_net_export_wh, tariffs),
        }
    }
}

/// One participant's correction entry for one interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CorrectionEntry {
    /// Whose.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub participant: ParticipantId,
    /// The official metering points.
    pub metering_points: Vec<String>,
    /// Official import, Wh.
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub import_wh: Wh,
    /// Official export, Wh.
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub export_wh: Wh,
    /// Whether the reading corrected was metered (`false`: the rule without a delivery).
    pub was_metered: bool,
    /// With the utility as billed until now.
    pub before: UtilityExchange,
    /// With the utility on the official reading.
    pub after: UtilityExchange,
    /// `after.utility - before.utility`: what the participant pays more (negative: receives),
    /// exact.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub total: Money,
    /// The participant's correction carry before this entry.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub carry_in: Money,
    /// `total + carry_in` rounded half to even to the minor unit: what is billed.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub billed: Money,
    /// `total + carry_in - billed`, carried to the participant's next correction.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub carry: Money,
}

/// What one import did to one interval, as every validator computed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IntervalCorrections {
    /// The interval's start, Unix seconds.
    pub interval_start: i64,
    /// The import's id ([`CorrectionTicket::id`]).
    pub import: String,
    /// The import's source.
    pub source: String,
    /// The signed import's digest ([`SignedCorrection::digest`]).
    pub digest: String,
    /// The currency of every amount.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "EUR"))]
    pub currency: Currency,
    /// The interval's feed-in tariff, per kWh.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub feed_in: Price,
    /// The interval's retail price, per kWh.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub retail: Price,
    /// One entry per corrected participant, by participant id.
    pub entries: Vec<CorrectionEntry>,
    /// The utility's line: its revenue change (the entries' totals summed), rounded with the
    /// utility's correction carry.
    pub utility: PartyLine,
}

impl IntervalCorrections {
    /// The entries' exact totals minus the utility's revenue change: zero for every correction
    /// the ledger commits.
    #[must_use]
    pub fn imbalance(&self) -> Money {
        self.entries.iter().map(|e| e.total).sum::<Money>() - self.utility.revenue
    }
}

/// One interval's corrections as committed, with where the chain holds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CommittedCorrections {
    /// Height of the block that committed them.
    pub height: u64,
    /// That block's hash, hex.
    pub block: String,
    /// The corrections.
    pub corrections: IntervalCorrections,
}

/// One participant's correction entry, with where the chain holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ParticipantCorrection {
    /// The corrected interval's start, Unix seconds.
    pub interval_start: i64,
    /// Height of the block that committed the correction.
    pub height: u64,
    /// That block's hash, hex.
    pub block: String,
    /// The import's id.
    pub import: String,
    /// The import's source.
    pub source: String,
    /// The currency of every amount.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "EUR"))]
    pub currency: Currency,
    /// The entry.
    pub entry: CorrectionEntry,
}

impl ParticipantCorrection {
    /// `participant`'s entry in `committed`, if it has one (at most one: an import corrects a
    /// leaf once).
    #[must_use]
    pub fn of(
        committed: &CommittedCorrections,
        participant: &ParticipantId,
    ) -> Option<ParticipantCorrection> {
        let c = &committed.corrections;
        let entry = c.entries.iter().find(|e| &e.participant == participant)?;
        Some(ParticipantCorrection {
            interval_start: c.interval_start,
            height: committed.height,
            block: committed.block.clone(),
            import: c.import.clone(),
            source: c.source.clone(),
            currency: c.currency,
            entry: entry.clone(),
        })
    }
}

/// Why a correction import is refused (by the node API or a validator).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CorrectionRejection {
    /// Not of the import's form ([`CorrectionTicket::check_form`]).
    #[error("malformed correction: {0}")]
    Malformed(String),
    /// The signer is not one of genesis `billing_keys`.
    #[error("key {0} is not a billing key")]
    NotBillingKey(String),
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// The interval is not settled, or its correction window has closed.
    #[error("interval {0} is not settled, or its correction window has closed")]
    NotCorrectable(i64),
    /// The leaves do not prove against the interval's root (a stale or forged import).
    #[error("interval {0}: the corrected leaves do not prove against the settled root")]
    BadProof(i64),
    /// More energy either way than the connection can carry in an interval.
    #[error("{wh} Wh in one interval is more than a connection carries ({max} Wh)")]
    AbsurdEnergy {
        /// The larger of import and export.
        wh: Wh,
        /// The most the rules admit.
        max: Wh,
    },
    /// The node holds this import already, waiting for a block.
    #[error("the node holds this import already")]
    Duplicate,
    /// The node's pool of imports waiting for a block is full; retry later.
    #[error("the node's correction pool is full; retry later")]
    PoolFull,
}

impl CorrectionRejection {
    /// A stable name for metrics and the API's `error` field.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            CorrectionRejection::Malformed(_) => "malformed_correction",
            CorrectionRejection::NotBillingKey(_) => "not_billing_key",
            CorrectionRejection::BadSignature => "bad_signature",
            CorrectionRejection::NotCorrectable(_) => "not_correctable",
            CorrectionRejection::BadProof(_) => "bad_proof",
            CorrectionRejection::AbsurdEnergy { .. } => "absurd_energy",
            CorrectionRejection::Duplicate => "duplicate_correction",
            CorrectionRejection::PoolFull => "pool_full",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(i: usize) -> SettledLeaf {
        SettledLeaf {
            participant: format!("hh-{i:02}").into(),
            contract_wh: i as i64 * 10 - 30,
            metered: i % 3 != 0,
            metered_net_export_wh: i as i64 * 7 - 20,
        }
    }

    /// Every subset of leaves of trees of 1 to 9 leaves proves against the root, and the same
    /// proof gives the root of the tree with those leaves changed.
    #[test]
    fn multi_proofs_prove_and_update_roots() {
        for n in 1..=9usize {
            let leaves: Vec<SettledLeaf> = (0..n).map(leaf).collect();
            let hashes: Vec<[u8; 32]> = leaves.iter().map(SettledLeaf::hash).collect();
            let root = settlement_root(&hashes);
            for mask in 1u32..(1 << n) {
                let indices: Vec<usize> = (0..n).filter(|i| mask & (1 << i) != 0).collect();
                let proof = settlement_proof(&hashes, &indices);
                let proven: Vec<[u8; 32]> = indices.iter().map(|&i| hashes[i]).collect();
                assert_eq!(
                    root_from_proof(&proof, &indices, &proven, n),
                    Some(root),
                    "n {n} mask {mask:b}"
                );
                let mut changed = hashes.clone();
                for &i in &indices {
                    let mut l = leaves[i].clone();
                    l.metered_net_export_wh += 1;
                    changed[i] = l.hash();
                }
                let new: Vec<[u8; 32]> = indices.iter().map(|&i| changed[i]).collect();
                assert_eq!(
                    root_from_proof(&proof, &indices, &new, n),
                    Some(settlement_root(&changed)),
                    "n {n} mask {mask:b}: updated root"
                );
                // A changed leaf does not prove against the old root.
                assert_ne!(root_from_proof(&proof, &indices, &new, n), Some(root));
            }
        }
    }

    /// Whatever proof an import carries, checking it never panics (a validator runs it on
    /// anyone's block): random hashes, counts and ascending indices against trees of every size.
    #[test]
    fn random_proofs_never_panic() {
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |bound: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % bound.max(1)
        };
        for _ in 0..5_000 {
            let total = 1 + next(300) as usize;
            let mut indices: Vec<usize> = (0..1 + next(6))
                .map(|_| next(total as u64) as usize)
                .collect();
            indices.sort_unstable();
            indices.dedup();
            let leaves: Vec<[u8; 32]> = indices.iter().map(|&i| leaf(i % 50).hash()).collect();
            let proof: Vec<String> = (0..next(20))
                .map(|_| hex::encode(leaf(next(50) as usize).hash()))
                .collect();
            let _ = root_from_proof(&proof, &indices, &leaves, total);
        }
    }

    #[test]
    fn proofs_with_bad_indices_give_no_root() {
        let hashes: Vec<[u8; 32]> = (0..4).map(|i| leaf(i).hash()).collect();
        let proof = settlement_proof(&hashes, &[1]);
        assert_eq!(root_from_proof(&proof, &[4], &[hashes[1]], 4), None);
        assert_eq!(root_from_proof(&proof, &[], &[], 4), None);
        assert_eq!(
            root_from_proof(&proof, &[2, 1], &[hashes[2], hashes[1]], 4),
            None
        );
        assert_eq!(root_from_proof(&["zz".into()], &[1], &[hashes[1]], 4), None);
    }

    /// The exact bytes of `voltmesh/correction/v1`: changing them is a protocol change.
    #[test]
    fn signing_bytes_are_fixed_and_bind_the_ticket() {
        let ticket = CorrectionTicket {
            id: "eda-2026-11".into(),
            source: "EDA".into(),
            intervals: vec![IntervalCorrection {
                interval_start: 900,
                corrections: vec![LeafCorrection {
                    index: 0,
                    leaf: leaf(1),
                    metering_points: vec!["AT001".into()],
                    import_wh: 10,
                    export_wh: 0,
                }],
                proof: vec![],
            }],
        };
        assert_eq!(
            String::from_utf8(ticket.signing_bytes("nb")).unwrap(),
            "voltmesh/correction/v1\nnb\n{\"id\":\"eda-2026-11\",\"source\":\"EDA\",\"intervals\":[{\"interval_start\":900,\"corrections\":[{\"index\":0,\"leaf\":{\"participant\":\"hh-01\",\"contract_wh\":-20,\"metered\":true,\"metered_net_export_wh\":-13},\"metering_points\":[\"AT001\"],\"import_wh\":10,\"export_wh\":0}],\"proof\":[]}]}"
        );
        assert_eq!(ticket.check_form(), Ok(()));
        let key = SigningKey::from_bytes(&[9; 32]);
        let signed = ticket.sign("nb", &key);
        assert!(signed.signature_valid("nb"));
        assert!(!signed.signature_valid("other"));
        let mut changed = signed;
        changed.ticket.intervals[0].corrections[0].import_wh += 1;
        assert!(!changed.signature_valid("nb"));
    }

    #[test]
    fn the_form_is_checked() {
        let correction = |index, import_wh| LeafCorrection {
            index,
            leaf: leaf(1),
            metering_points: vec!["AT001".into()],
            import_wh,
            export_wh: 0,
        };
        let mut ticket = CorrectionTicket {
            id: "x".into(),
            source: "EDA".into(),
            intervals: vec![IntervalCorrection {
                interval_start: 900,
                corrections: vec![correction(0, 10), correction(1, 12)],
                proof: vec![],
            }],
        };
        assert_eq!(ticket.check_form(), Ok(()));
        let kind = |t: &CorrectionTicket| t.check_form().unwrap_err().kind();
        let mut t = ticket.clone();
        t.intervals[0].corrections[1].index = 0;
        assert_eq!(kind(&t), "malformed_correction");
        let mut t = ticket.clone();
        // -13 Wh billed: importing 13 Wh is the same reading.
        t.intervals[0].corrections[0].import_wh = 13;
        assert_eq!(kind(&t), "malformed_correction");
        let mut t = ticket.clone();
        t.intervals[0].corrections[0].metering_points.clear();
        assert_eq!(kind(&t), "malformed_correction");
        let mut t = ticket.clone();
        t.intervals.push(t.intervals[0].clone());
        assert_eq!(kind(&t), "malformed_correction");
        ticket.id = String::new();
        assert_eq!(kind(&ticket), "malformed_correction");
    }

    #[test]
    fn an_exchange_follows_the_engine_rule() {
        let tariffs = Tariffs {
            feed_in: "0.08".parse().unwrap(),
            retail: "0.30".parse().unwrap(),
        };
        // Sold 1,000 Wh, delivered 400: 600 Wh from the utility at retail.
        let mut l = leaf(0);
        l.contract_wh = 1_000;
        l.metered_net_export_wh = 400;
        let e = UtilityExchange::of(&l, tariffs);
        assert_eq!((e.from_utility_wh, e.to_utility_wh), (600, 0));
        assert_eq!(e.utility, Money::of(600, tariffs.retail));
        assert_eq!(e.no_market, Money::ZERO - Money::of(400, tariffs.feed_in));
    }
}
