//! The shared core of the periodic mechanisms: sort both sides by priority, then walk the sorted
//! bids and asks while they cross.
//!
//! # Performance
//! The sort and the walk touch only 16-byte [`Key`]s (rank, quantity, index), never the orders
//! themselves, so they stream through memory. Orders are read again only when a caller names the
//! trades and leftovers ([`crate::Matching`]).

use crate::key::{self, Key, SPAN};
use crate::radix::{self, Histogram};
use crate::{Order, Side, Wh};

/// Bids (best first) and asks (best first).
#[derive(Debug)]
pub(crate) struct Sides {
    pub(crate) bids: Vec<Key>,
    pub(crate) asks: Vec<Key>,
}

/// Sorts the orders by priority: bids by limit descending, asks ascending, ties by submission
/// sequence and then by order id. Keys index into `orders`, which must hold fewer than
/// `u32::MAX` orders.
///
/// # Performance
/// When the slice is in strictly increasing sequence order (a book that only appended), slice
/// order already breaks every price tie, so a stable radix sort on the rank alone suffices
/// (see [`crate::radix`]). Otherwise a comparison sort on (rank, sequence, id) runs.
pub(crate) fn sort_sides(orders: &[Order]) -> Sides {
    let mut sides = [Vec::new(), Vec::new()];
    let mut hists = [Histogram::new(), Histogram::new()];
    let mut in_seq_order = true;
    let mut last_seq = None;
    for (i, order) in orders.iter().enumerate() {
        in_seq_order &= last_seq < Some(order.seq);
        last_seq = Some(order.seq);
        let key = key::pack(order, u32::try_from(i).unwrap_or(u32::MAX));
        let s = usize::from(order.side == Side::Sell);
        sides[s].push(key);
        hists[s].add(key::rank(key));
    }
    let [bids, asks] = sides;
    let [bid_hist, ask_hist] = &hists;
    if in_seq_order {
        Sides {
            bids: radix::sort(bids, bid_hist),
            asks: radix::sort(asks, ask_hist),
        }
    } else {
        let (mut bids, mut asks) = (bids, asks);
        sort_by_priority(&mut bids, orders);
        sort_by_priority(&mut asks, orders);
        Sides { bids, asks }
    }
}

/// Sorts one side's keys by (rank, sequence, id) with a comparison sort: the order of `keys` does
/// not matter.
pub(crate) fn sort_by_priority(keys: &mut [Key], orders: &[Order]) {
    keys.sort_unstable_by(|&a, &b| {
        key::rank(a).cmp(&key::rank(b)).then_with(|| {
            let (oa, ob) = (&orders[key::idx(a)], &orders[key::idx(b)]);
            (oa.seq, &oa.id).cmp(&(ob.seq, &ob.id))
        })
    });
}

/// One pairing of the walk: positions in the sorted sides and the quantity.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pair {
    pub(crate) bid: usize,
    pub(crate) ask: usize,
    pub(crate) quantity_wh: Wh,
}

/// The walk's position: the next bid and ask and the energy left on each.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    bid: usize,
    ask: usize,
    bid_left: Wh,
    ask_left: Wh,
}

impl Cursor {
    fn start(sides: &Sides, orders: &[Order]) -> Self {
        Cursor {
            bid: 0,
            ask: 0,
            bid_left: quantity_at(&sides.bids, 0, orders),
            ask_left: quantity_at(&sides.asks, 0, orders),
        }
    }

    /// Whether the next bid and ask exist and cross.
    fn crosses(&self, sides: &Sides) -> bool {
        match (sides.bids.get(self.bid), sides.asks.get(self.ask)) {
            (Some(&b), Some(&a)) => key::rank(b) + key::rank(a) <= SPAN,
            _ => false,
        }
    }

    /// Pairs the next bid with the next ask for as much as both have, and moves past what filled.
    fn step(&mut self, sides: &Sides, orders: &[Order]) -> Pair {
        let q = self.bid_left.min(self.ask_left);
        let pair = Pair {
            bid: self.bid,
            ask: self.ask,
            quantity_wh: q,
        };
        self.bid_left -= q;
        self.ask_left -= q;
        if self.bid_left == 0 {
            self.bid += 1;
            self.bid_left = quantity_at(&sides.bids, self.bid, orders);
        }
        if self.ask_left == 0 {
            self.ask += 1;
            self.ask_left = quantity_at(&sides.asks, self.ask, orders);
        }
        pair
    }
}

fn quantity_at(keys: &[Key], pos: usize, orders: &[Order]) -> Wh {
    keys.get(pos).map_or(0, |&k| key::quantity(k, orders))
}

/// Where the walk stopped.
///
/// The pairs themselves are not stored: [`Walk::pairs`] replays the walk, which is cheaper than
/// writing and reading them back when nobody asks.
#[derive(Debug)]
pub(crate) struct Walk {
    /// Position of the first bid left with energy (partly filled or untouched).
    pub(crate) next_bid: usize,
    /// Position of the first ask left with energy.
    pub(crate) next_ask: usize,
    /// Energy left on the bid at `next_bid`, if there is one.
    pub(crate) bid_left: Wh,
    /// Energy left on the ask at `next_ask`, if there is one.
    pub(crate) ask_left: Wh,
    /// Number of pairs.
    pub(crate) pair_count: usize,
    /// Total energy paired.
    pub(crate) volume: Wh,
    /// The last pair, if any.
    pub(crate) last: Option<Pair>,
}

impl Walk {
    /// Whether the last pair left its bid partly filled (it is then the marginal order).
    pub(crate) fn bid_partial(&self) -> bool {
        self.last.is_some_and(|p| p.bid == self.next_bid)
    }

    /// Whether the last pair left its ask partly filled.
    pub(crate) fn ask_partial(&self) -> bool {
        self.last.is_some_and(|p| p.ask == self.next_ask)
    }

    /// The pairs in walk order; `sides` and `orders` must be the ones walked.
    pub(crate) fn pairs<'s>(&self, sides: &'s Sides, orders: &'s [Order]) -> Pairs<'s> {
        Pairs {
            cursor: Cursor::start(sides, orders),
            sides,
            orders,
            left: self.pair_count,
        }
    }
}

/// Iterator over a walk's pairs (see [`Walk::pairs`]).
#[derive(Debug)]
pub(crate) struct Pairs<'s> {
    cursor: Cursor,
    sides: &'s Sides,
    orders: &'s [Order],
    left: usize,
}

impl Iterator for Pairs<'_> {
    type Item = Pair;

    fn next(&mut self) -> Option<Pair> {
        self.left = self.left.checked_sub(1)?;
        Some(self.cursor.step(self.sides, self.orders))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Pairs<'_> {}

/// Pairs the best bid with the best ask while the bid's limit is at least the ask's.
///
/// # Invariants
/// The traded volume is the maximum any matching of these orders can reach, and each pair is
/// individually rational (bid ≥ ask). At most one order, the last touched on one side, is left
/// partly filled; every order before `next_bid`/`next_ask` is fully filled, every one after is
/// untouched.
pub(crate) fn walk(sides: &Sides, orders: &[Order]) -> Walk {
    let mut cursor = Cursor::start(sides, orders);
    let (mut pair_count, mut volume, mut last) = (0, 0, None);
    while cursor.crosses(sides) {
        let pair = cursor.step(sides, orders);
        pair_count += 1;
        volume += pair.quantity_wh;
        last = Some(pair);
    }
    Walk {
        next_bid: cursor.bid,
        next_ask: cursor.ask,
        bid_left: cursor.bid_left,
        ask_left: cursor.ask_left,
        pair_count,
        volume,
        last,
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
                .map(|&k| {
                    let o = &orders[key::idx(k)];
                    (o.limit_price.micros(), o.seq)
                })
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
