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
/// ([`radix_sort_by_price`]). Otherwise a comparison sort on (price, sequence, id) runs.
pub(crate) fn sort_sides(orders: &[Order]) -> Sides {
    let mut bids = Vec::with_capacity(orders.len() / 2 + 1);
    let mut asks = Vec::with_capacity(orders.len() / 2 + 1);
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
    for side in [&mut bids, &mut asks] {
        if in_seq_order {
            radix_sort_by_price(side);
        } else {
            side.sort_unstable_by(|a, b| {
                let (oa, ob) = (&orders[a.idx()], &orders[b.idx()]);
                (a.price_rank, oa.seq, &oa.id).cmp(&(b.price_rank, ob.seq, &ob.id))
            });
        }
    }
    Sides { bids, asks }
}

/// Bits per radix digit: 2,048 buckets keep the counts in L1 and need two passes for a price
/// range of up to 4.2 currency units per kWh at micro resolution.
const DIGIT_BITS: u32 = 11;

/// Stable least-significant-digit radix sort on `price_rank - min`, with as many passes as the
/// range of prices needs.
fn radix_sort_by_price(keys: &mut Vec<Key>) {
    let Some(min) = keys.iter().map(|k| k.price_rank).min() else {
        return;
    };
    let max = keys.iter().map(|k| k.price_rank).max().unwrap_or(min);
    let bits = u64::BITS - (max - min).leading_zeros();
    let buckets = 1usize << DIGIT_BITS;
    let mask = (buckets - 1) as u64;
    let mut buffer = keys.clone();
    let mut shift = 0;
    while shift < bits {
        let mut offsets = vec![0usize; buckets];
        for k in keys.iter() {
            offsets[(((k.price_rank - min) >> shift) & mask) as usize] += 1;
        }
        let mut total = 0;
        for offset in offsets.iter_mut() {
            let count = *offset;
            *offset = total;
            total += count;
        }
        for k in keys.iter() {
            let bucket = (((k.price_rank - min) >> shift) & mask) as usize;
            buffer[offsets[bucket]] = *k;
            offsets[bucket] += 1;
        }
        std::mem::swap(keys, &mut buffer);
        shift += DIGIT_BITS;
    }
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
