//! Corrections from official metering data (issue 14, deliverable 5): the rule and the proofs
//! are [`voltmesh_wire::correction`]'s; this module keeps what a validator needs to check them
//! and executes them on the state.
//!
//! # Invariants
//! - `correctable` holds, for every interval settled with at least one bill whose correction
//!   window (`deliveries.correction_window_secs` after the interval's end) was open at the last
//!   block, its tariffs, its number of bills and the Merkle root of its leaves as corrected so
//!   far ([`voltmesh_wire::correction::settlement_root`]); an interval enters it in the block
//!   that settles it and leaves it in the first block past its window.
//! - `carries.corrections` and `carries.utility_corrections` hold the correction carries
//!   (non-zero participants only), apart from the bills' carries.

use std::sync::Arc;

use voltmesh_engine::rounding::round_line;
use voltmesh_engine::{Money, Tariffs};
use voltmesh_wire::bill::{IntervalBills, PartyLine};
use voltmesh_wire::correction::{
    root_from_proof, settlement_root, CorrectionEntry, CorrectionRejection, IntervalCorrections,
    SettledLeaf, SignedCorrection, UtilityExchange,
};
use voltmesh_wire::Genesis;

use super::deliveries::window_of;
use super::LedgerState;

/// What the state keeps of a settled interval while it may be corrected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Correctable {
    /// The Merkle root of its leaves, as corrected so far.
    pub root: [u8; 32],
    /// Its number of bills (leaves).
    pub leaves: u32,
    /// The tariffs its bills were settled with.
    pub tariffs: Tariffs,
}

impl Correctable {
    /// What the state keeps of `bills` when they settle.
    pub(super) fn of(bills: &IntervalBills) -> Correctable {
        let hashes: Vec<[u8; 32]> = bills
            .bills
            .iter()
            .map(|b| SettledLeaf::of(b).hash())
            .collect();
        Correctable {
            root: settlement_root(&hashes),
            leaves: u32::try_from(hashes.len()).unwrap_or(u32::MAX),
            tariffs: Tariffs {
                feed_in: bills.feed_in,
                retail: bills.retail,
            },
        }
    }
}

/// One interval's corrections, checked but not applied.
struct Planned<'a> {
    interval_start: i64,
    new_root: [u8; 32],
    tariffs: Tariffs,
    entries: Vec<(
        &'a voltmesh_wire::correction::LeafCorrection,
        UtilityExchange,
        UtilityExchange,
    )>,
}

impl LedgerState {
    /// The settled intervals that may still be corrected, with what the state keeps of each.
    pub fn correctable(&self) -> impl Iterator<Item = (i64, &Correctable)> + '_ {
        self.correctable.iter().map(|(&start, c)| (start, c))
    }

    /// Keeps what corrections of a settled interval need.
    pub(super) fn keep_correctable(&mut self, bills: &IntervalBills) {
        if !bills.bills.is_empty() {
            Arc::make_mut(&mut self.correctable)
                .insert(bills.interval_start, Correctable::of(bills));
        }
    }

    /// Forgets the intervals whose correction window closed before `block_ms`.
    pub(super) fn forget_uncorrectable(&mut self, genesis: &Genesis, block_ms: u64) {
        let window_ms = u64::from(genesis.deliveries.correction_window_secs) * 1000;
        let closed = |start: i64| {
            window_of(genesis, start)
                .is_none_or(|(ends, _)| ends.saturating_add(window_ms) < block_ms)
        };
        if self.correctable.keys().next().is_some_and(|&s| closed(s)) {
            let kept = Arc::make_mut(&mut self.correctable);
            while kept.first_key_value().is_some_and(|(&s, _)| closed(s)) {
                kept.pop_first();
            }
        }
    }

    /// Checks a correction import against this state, without changing anything: form, signer,
    /// energy, each interval correctable, each proof, and the signature last.
    ///
    /// # Errors
    /// The first check it fails, with its own [`CorrectionRejection::kind`].
    pub fn admit_correction(
        &self,
        genesis: &Genesis,
        correction: &SignedCorrection,
    ) -> Result<(), CorrectionRejection> {
        self.plan_correction(genesis, correction).map(|_| ())
    }

    fn plan_correction<'a>(
        &self,
        genesis: &Genesis,
        correction: &'a SignedCorrection,
    ) -> Result<Vec<Planned<'a>>, CorrectionRejection> {
        let ticket = &correction.ticket;
        ticket.check_form()?;
        if !genesis.billing_keys.contains(&correction.public_key) {
            return Err(CorrectionRejection::NotBillingKey(
                correction.public_key.to_string(),
            ));
        }
        let max = genesis
            .deliveries
            .max_wh(genesis.market.interval.length_secs());
        let mut planned = Vec::with_capacity(ticket.intervals.len());
        for interval in &ticket.intervals {
            let start = interval.interval_start;
            let kept = self
                .correctable
                .get(&start)
                .ok_or(CorrectionRejection::NotCorrectable(start))?;
            let mut indices = Vec::with_capacity(interval.corrections.len());
            let mut old = Vec::with_capacity(interval.corrections.len());
            let mut new = Vec::with_capacity(interval.corrections.len());
            let mut entries = Vec::with_capacity(interval.corrections.len());
            for c in &interval.corrections {
                let wh = c.import_wh.max(c.export_wh);
                if wh > max {
                    return Err(CorrectionRejection::AbsurdEnergy { wh, max });
                }
                let corrected = c.corrected();
                indices.push(c.index as usize);
                old.push(c.leaf.hash());
                new.push(corrected.hash());
                entries.push((
                    c,
                    UtilityExchange::of(&c.leaf, kept.tariffs),
                    UtilityExchange::of(&corrected, kept.tariffs),
                ));
            }
            let total = kept.leaves as usize;
            if root_from_proof(&interval.proof, &indices, &old, total) != Some(kept.root) {
                return Err(CorrectionRejection::BadProof(start));
            }
            let new_root = root_from_proof(&interval.proof, &indices, &new, total)
                .ok_or(CorrectionRejection::BadProof(start))?;
            planned.push(Planned {
                interval_start: start,
                new_root,
                tariffs: kept.tariffs,
                entries,
            });
        }
        if !correction.signature_valid(&genesis.neighborhood) {
            return Err(CorrectionRejection::BadSignature);
        }
        Ok(planned)
    }

    /// Admits a correction import and executes it: every corrected leaf re-settled with the
    /// utility as a new entry, rounded with the correction carries, and each interval's root
    /// replaced by its corrected leaves'.
    ///
    /// # Errors
    /// As [`LedgerState::admit_correction`]; the state is unchanged on error.
    pub fn apply_correction(
        &mut self,
        genesis: &Genesis,
        correction: &SignedCorrection,
    ) -> Result<Vec<IntervalCorrections>, CorrectionRejection> {
        let planned = self.plan_correction(genesis, correction)?;
        let decimals = genesis.currency.minor_unit_decimals();
        let digest = correction.digest();
        let carries = Arc::make_mut(&mut self.carries);
        let correctable = Arc::make_mut(&mut self.correctable);
        let mut out = Vec::with_capacity(planned.len());
        for plan in planned {
            let entries: Vec<CorrectionEntry> = plan
                .entries
                .into_iter()
                .map(|(c, before, after)| {
                    let participant = c.leaf.participant.clone();
                    let total = after.utility - before.utility;
                    let carry_in = carries
                        .corrections
                        .get(&participant)
                        .copied()
                        .unwrap_or(Money::ZERO);
                    let line = round_line(total, carry_in, decimals);
                    if line.carry_out == Money::ZERO {
                        carries.corrections.remove(&participant);
                    } else {
                        carries
                            .corrections
                            .insert(participant.clone(), line.carry_out);
                    }
                    CorrectionEntry {
                        participant,
                        metering_points: c.metering_points.clone(),
                        import_wh: c.import_wh,
                        export_wh: c.export_wh,
                        was_metered: c.leaf.metered,
                        before,
                        after,
                        total,
                        carry_in,
                        billed: line.billed(decimals),
                        carry: line.carry_out,
                    }
                })
                .collect();
            let revenue: Money = entries.iter().map(|e| e.total).sum();
            let line = round_line(revenue, carries.utility_corrections, decimals);
            carries.utility_corrections = line.carry_out;
            if let Some(kept) = correctable.get_mut(&plan.interval_start) {
                kept.root = plan.new_root;
            }
            out.push(IntervalCorrections {
                interval_start: plan.interval_start,
                import: correction.ticket.id.clone(),
                source: correction.ticket.source.clone(),
                digest: digest.clone(),
                currency: genesis.currency,
                feed_in: plan.tariffs.feed_in,
                retail: plan.tariffs.retail,
                entries,
                utility: PartyLine {
                    revenue,
                    billed: line.billed(decimals),
                    carry: line.carry_out,
                },
            });
        }
        Ok(out)
    }
}
