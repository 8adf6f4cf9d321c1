//! The shared core of the periodic mechanisms: sort both sides by priority, then walk the sorted
//! bids and asks while they cross.
//!
//! # Performance
//! The sort and the walk touch only compact [`Key`]s (priority rank, quantity, index), never the
//! orders themselves, so they stream through memory. Orders are read again only when a caller
//! names the trades and leftovers ([`crate::Matching`]).

use crate::{Order, Side, Wh};

/// An order's place in its side's priority, with what the walk needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key {
    /// The limit mapped onto `u64` so that a better price is smaller: ascending for asks,
    /// descending for bids.
    price_rank: u64,
    pub(crate) quantity_wh: Wh,
    /// Index into the order slice.
    idx: u32,
}

impl Key {
    fn new(order: &Order, idx: u32) -> Key {
        // Flipping the sign bit maps i64 order onto u64 order.
        let price = (order.limit_price.micros() as u64) ^ (1 << 63);
        Key {
            price_rank: match order.side {
                Side::Buy => !price,
                Side::Sell => price,
            },
            quantity_wh: order.quantity_wh,
            idx,
        }
    }

    pub(crate) fn idx(self) -> usize {
        self.idx as usize
    }
}

/// Bids (best first) and asks (best first).
#[derive(Debug)]
pub(crate) struct Sides {
    pub(crate) bids: Vec<Key>,
    pub(crate) asks: Vec<Key>,
}

/// Sorts the orders by priority: bids by limit descending, asks ascending, ties by submission
/// sequence and then by order id.
///
/// # Performance
/// When the slice is in strictly increasing sequence order (a book that only appended), slice
/// order already breaks every price tie, so a stable radix sort on the price alone suffices
/// (see `Radix`). Otherwise a comparison sort on (price, sequence, id) runs.
pub(crate) fn sort_sides(orders: &[Order]) -> Sides {
    let mut bids = Radix::with_capacity(orders.len());
    let mut asks = Radix::with_capacity(orders.len());
    let mut in_seq_order = true;
    let mut last_seq = None;
    for (i, order) in orders.iter().enumerate() {
        in_seq_order &= last_seq < Some(order.seq);
        last_seq = Some(order.seq);
        let key = Key::new(order, u32::try_from(i).unwrap_or(u32::MAX));
        match order.side {
            Side::Buy => bids.push(key),
            Side::Sell => asks.push(key),
        }
    }
    let mut sorted = [Vec::new(), Vec::new()];
    for (side, out) in [bids, asks].into_iter().zip(&mut sorted) {
        *out = if in_seq_order {
            side.sort()
        } else {
            let mut keys = side.keys;
            keys.sort_unstable_by(|a, b| {
                let (oa, ob) = (&orders[a.idx()], &orders[b.idx()]);
                (a.price_rank, oa.seq, &oa.id).cmp(&(b.price_rank, ob.seq, &ob.id))
            });
            keys
        };
    }
    let [bids, asks] = sorted;
    Sides { bids, asks }
}

/// Bits per radix digit: 2,048 buckets keep the counts in L1/L2, and two passes cover a price
/// range of up to 4.2 currency units per kWh at micro resolution.
const DIGIT_BITS: u32 = 11;
const DIGITS: usize = u64::BITS.div_ceil(DIGIT_BITS) as usize;
const BUCKETS: usize = 1 << DIGIT_BITS;
/// Digits counted while collecting keys: prices within ±4,294 units of each other (33 bits of
/// micro-units) need no more. Higher digits that vary are counted in a pass of their own.
const EAGER_DIGITS: usize = 3;

/// Keys of one side with the digit histograms of a least-significant-digit radix sort on
/// `price_rank`, counted while the keys are collected so that sorting only scatters.
struct Radix {
    keys: Vec<Key>,
    counts: Vec<[usize; BUCKETS]>,
    /// Bits in which some key differs from the first: digits without any are skipped.
    varying: u64,
}

impl Radix {
    fn with_capacity(n: usize) -> Self {
        Radix {
            keys: Vec::with_capacity(n),
            counts: vec![[0; BUCKETS]; EAGER_DIGITS],
            varying: 0,
        }
    }

    fn push(&mut self, key: Key) {
        if let Some(first) = self.keys.first() {
            self.varying |= first.price_rank ^ key.price_rank;
        }
        for (digit, count) in self.counts.iter_mut().enumerate() {
            count[digit_of(key.price_rank, digit)] += 1;
        }
        self.keys.push(key);
    }

    /// Stable sort by `price_rank`: one scatter pass per digit in which the keys differ.
    fn sort(self) -> Vec<Key> {
        let Radix {
            mut keys,
            counts,
            varying,
        } = self;
        let Some(&filler) = keys.first() else {
            return keys;
        };
        let mut buffer = vec![filler; keys.len()];
        for digit in 0..DIGITS {
            let mask = ((BUCKETS - 1) as u64) << (digit as u32 * DIGIT_BITS);
            if varying & mask == 0 {
                continue;
            }
            let late;
            let count = match counts.get(digit) {
                Some(count) => count,
                None => {
                    let mut c = [0usize; BUCKETS];
                    for k in &keys {
                        c[digit_of(k.price_rank, digit)] += 1;
                    }
                    late = c;
                    &late
                }
            };
            let mut offsets = [0usize; BUCKETS];
            let mut total = 0;
            for (offset, &c) in offsets.iter_mut().zip(count.iter()) {
                *offset = total;
                total += c;
            }
            for k in &keys {
                let bucket = digit_of(k.price_rank, digit);
                buffer[offsets[bucket]] = *k;
                offsets[bucket] += 1;
            }
            std::mem::swap(&mut keys, &mut buffer);
        }
        keys
    }
}

fn digit_of(rank: u64, digit: usize) -> usize {
    ((rank >> (digit as u32 * DIGIT_BITS)) & (BUCKETS as u64 - 1)) as usize
}

/// One pairing produced by [`walk`]: positions in the sorted sides and the quantity.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pair {
    pub(crate) bid: u32,
    pub(crate) ask: u32,
    pub(crate) quantity_wh: Wh,
}

/// Where the walk stopped.
#[derive(Debug)]
pub(crate) struct Walk {
    pub(crate) pairs: Vec<Pair>,
    /// Position of the first bid left with energy (partly filled or untouched).
    pub(crate) next_bid: usize,
    /// Position of the first ask left with energy.
    pub(crate) next_ask: usize,
    /// Energy left on the bid at `next_bid`, if there is one.
    pub(crate) bid_left: Wh,
    /// Energy left on the ask at `next_ask`, if there is one.
    pub(crate) ask_left: Wh,
}

impl Walk {
    /// Whether the last pair left its bid partly filled (it is then the marginal order).
    pub(crate) fn bid_partial(&self) -> bool {
        self.pairs
            .last()
            .is_some_and(|p| p.bid as usize == self.next_bid)
    }

    /// Whether the last pair left its ask partly filled.
    pub(crate) fn ask_partial(&self) -> bool {
        self.pairs
            .last()
            .is_some_and(|p| p.ask as usize == self.next_ask)
    }

    /// Total energy paired.
    pub(crate) fn volume(&self) -> Wh {
        self.pairs.iter().map(|p| p.quantity_wh).sum()
    }
}

/// Pairs the best bid with the best ask while the bid's limit is at least the ask's.
///
/// # Invariants
/// The traded volume is the maximum any matching of these orders can reach, and each pair is
/// individually rational (bid ≥ ask). At most one order, the last touched on one side, is left
/// partly filled; every order before `next_bid`/`next_ask` is fully filled, every one after is
/// untouched.
pub(crate) fn walk(sides: &Sides) -> Walk {
    let (bids, asks) = (&sides.bids, &sides.asks);
    let mut pairs = Vec::new();
    let (mut i, mut j) = (0, 0);
    let mut bid_left = bids.first().map_or(0, |k| k.quantity_wh);
    let mut ask_left = asks.first().map_or(0, |k| k.quantity_wh);
    // A bid crosses an ask when price(bid) ≥ price(ask), i.e. !hi(bid) ≥ hi(ask) as u64.
    while i < bids.len() && j < asks.len() && !bids[i].price_rank >= asks[j].price_rank {
        let q = bid_left.min(ask_left);
        pairs.push(Pair {
            bid: i as u32,
            ask: j as u32,
            quantity_wh: q,
        });
        bid_left -= q;
        ask_left -= q;
        if bid_left == 0 {
            i += 1;
            bid_left = bids.get(i).map_or(0, |k| k.quantity_wh);
        }
        if ask_left == 0 {
            j += 1;
            ask_left = asks.get(j).map_or(0, |k| k.quantity_wh);
        }
    }
    Walk {
        pairs,
        next_bid: i,
        next_ask: j,
        bid_left,
        ask_left,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Price;

    /// Prices far apart make digits above the eagerly counted ones vary: the radix path must
    /// still agree with a comparison sort.
    #[test]
    fn radix_handles_prices_across_the_whole_range() {
        let micros = [
            Price::MAX.micros(),
            Price::MIN.micros(),
            0,
            12_345_678_901,
            -999_999_500_000,
            1,
            -1,
            Price::MAX.micros(),
            77,
        ];
        let orders: Vec<Order> = micros
            .iter()
            .enumerate()
            .flat_map(|(i, &m)| {
                [Side::Buy, Side::Sell].map(|side| Order {
                    id: format!("{side}{i}").into(),
                    participant: "p".into(),
                    side,
                    quantity_wh: 1,
                    limit_price: Price::from_micros(m).unwrap(),
                    seq: 0,
                })
            })
            .enumerate()
            .map(|(seq, mut o)| {
                o.seq = seq as u64;
                o
            })
            .collect();
        let sides = sort_sides(&orders);
        let prices = |keys: &[Key]| -> Vec<(i64, u64)> {
            keys.iter()
                .map(|k| (orders[k.idx()].limit_price.micros(), orders[k.idx()].seq))
                .collect()
        };
        let mut want_bids: Vec<(i64, u64)> = orders
            .iter()
            .filter(|o| o.side == Side::Buy)
            .map(|o| (o.limit_price.micros(), o.seq))
            .collect();
        want_bids.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut want_asks: Vec<(i64, u64)> = orders
            .iter()
            .filter(|o| o.side == Side::Sell)
            .map(|o| (o.limit_price.micros(), o.seq))
            .collect();
        want_asks.sort();
        assert_eq!(prices(&sides.bids), want_bids);
        assert_eq!(prices(&sides.asks), want_asks);
    }
}
