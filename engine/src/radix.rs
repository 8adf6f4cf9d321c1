//! A stable least-significant-digit radix sort of priority keys by rank.
//!
//! # Invariants
//! A [`Histogram`] counts, for each digit of the rank, how many keys fall in each bucket; it must
//! count exactly the keys being sorted (tombstones excluded). The sort is stable: keys of equal
//! rank keep their input order, which is how arrival order breaks price ties.
//!
//! # Performance
//! Histograms are counted while keys are collected (or as orders arrive in a book), with the
//! smallest and largest rank and the bits in which ranks differ. When the ranks, with the low bits
//! they all share dropped, span fewer than 2^17 values (prices on a 0.001 tick within ±65 units,
//! or at micro resolution within ±0.065), one counting pass and one scatter sort them. Otherwise
//! an LSD radix sort runs one scatter per 11-bit digit in which the ranks differ. Keys are 16
//! bytes and buffers are allocated zeroed.

use std::fmt;

use crate::key::{self, Key, TOMBSTONE};

/// Bits per digit: 2,048 buckets keep the offsets in L1.
const DIGIT_BITS: u32 = 11;
const BUCKETS: usize = 1 << DIGIT_BITS;
/// Digits that cover a rank (below 2^41, see [`crate::key`]).
const DIGITS: usize = 4;
/// Largest number of buckets for the one-pass counting sort: 512 KiB of counts, within L2.
const ONE_PASS_BUCKETS: u64 = 1 << 17;

/// Per-digit bucket counts of the ranks of a set of keys.
///
/// # Invariants
/// `counts` counts exactly the keys being sorted. `min`, `max` and `varying` cover every rank ever
/// added (removing a key does not narrow them): each counted rank lies in `[min, max]` and differs
/// from `first` only in bits set in `varying`.
#[derive(Clone)]
pub(crate) struct Histogram {
    counts: Vec<[u32; BUCKETS]>,
    first: Option<u64>,
    varying: u64,
    min: u64,
    max: u64,
}

impl fmt::Debug for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Histogram")
            .field(
                "keys",
                &self.counts.first().map_or(0, |c| c.iter().sum::<u32>()),
            )
            .finish_non_exhaustive()
    }
}

impl Histogram {
    pub(crate) fn new() -> Self {
        Histogram {
            counts: vec![[0; BUCKETS]; DIGITS],
            first: None,
            varying: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Counts a key of this rank. At most `u32::MAX` keys may be counted at once.
    pub(crate) fn add(&mut self, rank: u64) {
        self.varying |= rank ^ *self.first.get_or_insert(rank);
        self.min = self.min.min(rank);
        self.max = self.max.max(rank);
        for (digit, count) in self.counts.iter_mut().enumerate() {
            let c = &mut count[digit_of(rank, digit)];
            *c = c.wrapping_add(1);
        }
    }

    /// Forgets a key of this rank counted before.
    pub(crate) fn remove(&mut self, rank: u64) {
        for (digit, count) in self.counts.iter_mut().enumerate() {
            let c = &mut count[digit_of(rank, digit)];
            *c = c.wrapping_sub(1);
        }
    }

    /// The digits in which the `live` counted keys do not all share one bucket, lowest first.
    fn varying(&self, live: usize) -> Vec<usize> {
        (0..DIGITS)
            .filter(|&d| !self.counts[d].iter().any(|&c| c as usize == live))
            .collect()
    }
}

/// How the one-pass sort buckets ranks: `(rank − min) >> shift`, below `buckets`.
#[derive(Debug, Clone, Copy)]
struct Dense {
    min: u64,
    shift: u32,
    buckets: usize,
}

impl Dense {
    /// The plan for `hist`'s keys, if they span few enough buckets (and more than one).
    fn plan(hist: &Histogram) -> Option<Dense> {
        if hist.varying == 0 || hist.min > hist.max {
            return None;
        }
        // All counted ranks, `min` included, agree with `first` below this bit, so the shift
        // drops only zeros from `rank − min`: bucket order is rank order.
        let shift = hist.varying.trailing_zeros();
        let span = (hist.max - hist.min) >> shift;
        (span < ONE_PASS_BUCKETS).then(|| Dense {
            min: hist.min,
            shift,
            buckets: span as usize + 1,
        })
    }

    fn bucket(self, rank: u64) -> usize {
        (rank.wrapping_sub(self.min) >> self.shift) as usize
    }

    /// Counts `keys` per bucket, then writes them into `out` by bucket, stably.
    fn sort<I: Iterator<Item = Key> + Clone>(self, keys: I, out: &mut [Key]) {
        let mut offsets = vec![0usize; self.buckets];
        for k in keys.clone() {
            if let Some(c) = offsets.get_mut(self.bucket(key::rank(k))) {
                *c += 1;
            }
        }
        let mut total = 0;
        for offset in &mut offsets {
            let c = *offset;
            *offset = total;
            total += c;
        }
        for k in keys {
            if let Some(offset) = offsets.get_mut(self.bucket(key::rank(k))) {
                if let Some(slot) = out.get_mut(*offset) {
                    *slot = k;
                }
                *offset += 1;
            }
        }
    }
}

fn digit_of(rank: u64, digit: usize) -> usize {
    ((rank >> (digit as u32 * DIGIT_BITS)) & (BUCKETS as u64 - 1)) as usize
}

/// Sorts the keys of `src` other than tombstones by rank, stably. `live` is their number and
/// `hist` counts exactly their ranks.
pub(crate) fn sort_live(src: &[Key], live: usize, hist: &Histogram) -> Vec<Key> {
    let is_live = |k: &Key| key::raw_idx(*k) != TOMBSTONE;
    if let Some(dense) = Dense::plan(hist) {
        let mut out = vec![0; live];
        if src.len() == live {
            dense.sort(src.iter().copied(), &mut out);
        } else {
            dense.sort(src.iter().copied().filter(is_live), &mut out);
        }
        return out;
    }
    let digits = hist.varying(live);
    let Some((&first, rest)) = digits.split_first() else {
        return src.iter().copied().filter(is_live).collect();
    };
    let mut out = vec![0; live];
    if src.len() == live {
        scatter(src.iter().copied(), hist, first, &mut out);
    } else {
        scatter(src.iter().copied().filter(is_live), hist, first, &mut out);
    }
    if rest.is_empty() {
        return out;
    }
    passes(out, rest, hist)
}

/// Sorts `keys` (no tombstones) by rank, stably; `hist` counts exactly their ranks.
pub(crate) fn sort(keys: Vec<Key>, hist: &Histogram) -> Vec<Key> {
    if let Some(dense) = Dense::plan(hist) {
        let mut out = vec![0; keys.len()];
        dense.sort(keys.iter().copied(), &mut out);
        return out;
    }
    let digits = hist.varying(keys.len());
    if digits.is_empty() {
        return keys;
    }
    passes(keys, &digits, hist)
}

fn passes(mut keys: Vec<Key>, digits: &[usize], hist: &Histogram) -> Vec<Key> {
    let mut spare = vec![0; keys.len()];
    for &digit in digits {
        scatter(keys.iter().copied(), hist, digit, &mut spare);
        std::mem::swap(&mut keys, &mut spare);
    }
    keys
}

/// Writes `keys` into `out` ordered by one digit, keeping the input order within a bucket.
fn scatter(keys: impl Iterator<Item = Key>, hist: &Histogram, digit: usize, out: &mut [Key]) {
    let mut offsets = [0usize; BUCKETS];
    let mut total = 0;
    for (offset, &c) in offsets.iter_mut().zip(hist.counts[digit].iter()) {
        *offset = total;
        total += c as usize;
    }
    for k in keys {
        let offset = &mut offsets[digit_of(key::rank(k), digit)];
        if let Some(slot) = out.get_mut(*offset) {
            *slot = k;
        }
        *offset += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(ranks: &[u64]) -> Vec<Key> {
        ranks
            .iter()
            .enumerate()
            .map(|(i, &r)| (u128::from(r) << 64) | i as u128)
            .collect()
    }

    fn reference(keys: &[Key]) -> Vec<Key> {
        let mut want: Vec<Key> = keys
            .iter()
            .copied()
            .filter(|&k| key::raw_idx(k) != TOMBSTONE)
            .collect();
        want.sort_by_key(|&k| key::rank(k));
        want
    }

    #[test]
    fn sorts_stably_in_every_digit() {
        let ranks = [
            (1 << 41) - 1,
            0,
            5,
            5,
            1 << 11,
            (1 << 22) + 3,
            1 << 33,
            5,
            (1 << 41) - 1,
            2047,
        ];
        let keys = keys(&ranks);
        let mut hist = Histogram::new();
        for &r in &ranks {
            hist.add(r);
        }
        assert_eq!(sort_live(&keys, keys.len(), &hist), reference(&keys));
        assert_eq!(sort(keys.clone(), &hist), reference(&keys));
    }

    #[test]
    fn dense_ranges_sort_in_one_pass_stably() {
        // Shared low bits (…011) dropped, span just inside and just outside one pass.
        for top in [ONE_PASS_BUCKETS - 1, ONE_PASS_BUCKETS] {
            let base = (1u64 << 40) + 3;
            let ranks: Vec<u64> = [top, 0, 5, 5, 1, top, 0, 7, 2]
                .iter()
                .map(|&r| base + (r << 3))
                .collect();
            let mut keys = keys(&ranks);
            let mut hist = Histogram::new();
            for &r in &ranks {
                hist.add(r);
            }
            let dense = Dense::plan(&hist);
            assert_eq!(dense.is_some(), top < ONE_PASS_BUCKETS);
            if let Some(d) = dense {
                assert_eq!((d.shift, d.buckets as u64), (3, top + 1));
            }
            assert_eq!(sort(keys.clone(), &hist), reference(&keys));
            hist.remove(ranks[1]);
            keys[1] = key::with_idx(keys[1], TOMBSTONE);
            assert_eq!(sort_live(&keys, ranks.len() - 1, &hist), reference(&keys));
        }
    }

    #[test]
    fn drops_tombstones_and_skips_constant_digits() {
        let ranks = [7u64, 7, 3 << 11, 7, 1 << 11];
        let mut keys = keys(&ranks);
        let mut hist = Histogram::new();
        for &r in &ranks {
            hist.add(r);
        }
        for dead in [2, 0] {
            hist.remove(ranks[dead]);
            keys[dead] = key::with_idx(keys[dead], TOMBSTONE);
        }
        assert_eq!(sort_live(&keys, 3, &hist), reference(&keys));
        // All equal: no pass at all.
        let same = self::keys(&[9, 9, 9]);
        let mut hist = Histogram::new();
        (0..3).for_each(|_| hist.add(9));
        assert!(hist.varying(3).is_empty());
        assert_eq!(sort(same.clone(), &hist), same);
    }
}
