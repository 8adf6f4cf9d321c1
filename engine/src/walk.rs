//! The shared core of the periodic mechanisms: walk the sorted bids and asks while they cross.

use crate::{Order, Wh};

/// One pairing produced by [`walk`]: indices into the order slice and the quantity.
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
    /// Energy filled per order index.
    pub(crate) filled: Vec<Wh>,
    /// Position in `bids` of the first bid left with energy (partly filled or untouched).
    pub(crate) next_bid: usize,
    /// Position in `asks` of the first ask left with energy.
    pub(crate) next_ask: usize,
}

/// Sorts the indices of live bids (price descending) and asks (price ascending), ties by
/// submission sequence and then order id.
pub(crate) fn sort_sides(orders: &[Order], live: impl Fn(usize) -> bool) -> (Vec<u32>, Vec<u32>) {
    // Sorting compact keys (price, seq, index) keeps the sort close to a sort of bare prices; the id
    // is only consulted for exact (price, seq) ties.
    let mut bids: Vec<(i64, u64, u32)> = Vec::new();
    let mut asks: Vec<(i64, u64, u32)> = Vec::new();
    for (i, o) in orders.iter().enumerate() {
        if !live(i) {
            continue;
        }
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        match o.side {
            crate::Side::Buy => bids.push((-o.limit_price.micros(), o.seq, i)),
            crate::Side::Sell => asks.push((o.limit_price.micros(), o.seq, i)),
        }
    }
    let cmp = |a: &(i64, u64, u32), b: &(i64, u64, u32)| {
        (a.0, a.1)
            .cmp(&(b.0, b.1))
            .then_with(|| orders[a.2 as usize].id.cmp(&orders[b.2 as usize].id))
    };
    bids.sort_unstable_by(cmp);
    asks.sort_unstable_by(cmp);
    (
        bids.into_iter().map(|k| k.2).collect(),
        asks.into_iter().map(|k| k.2).collect(),
    )
}

/// Pairs the best bid with the best ask while the bid's limit is at least the ask's.
///
/// # Invariants
/// The traded volume is the maximum any matching of these orders can reach at one price, and each
/// pair is individually rational (bid ≥ ask). At most one order, the last touched on one side, is
/// left partly filled.
pub(crate) fn walk(orders: &[Order], bids: &[u32], asks: &[u32]) -> Walk {
    let mut filled = vec![0; orders.len()];
    let mut pairs = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < bids.len() && j < asks.len() {
        let (b, a) = (bids[i] as usize, asks[j] as usize);
        if orders[b].limit_price < orders[a].limit_price {
            break;
        }
        let rem_b = orders[b].quantity_wh - filled[b];
        let rem_a = orders[a].quantity_wh - filled[a];
        let q = rem_b.min(rem_a);
        pairs.push(Pair {
            bid: bids[i],
            ask: asks[j],
            quantity_wh: q,
        });
        filled[b] += q;
        filled[a] += q;
        if q == rem_b {
            i += 1;
        }
        if q == rem_a {
            j += 1;
        }
    }
    Walk {
        pairs,
        filled,
        next_bid: i,
        next_ask: j,
    }
}

/// The orders with energy left, bids in priority order then asks.
pub(crate) fn unfilled(
    orders: &[Order],
    bids: &[u32],
    asks: &[u32],
    walk: &Walk,
) -> Vec<crate::Unfilled> {
    bids[walk.next_bid.min(bids.len())..]
        .iter()
        .chain(&asks[walk.next_ask.min(asks.len())..])
        .map(|&i| {
            let o = &orders[i as usize];
            crate::Unfilled {
                id: o.id.clone(),
                side: o.side,
                remaining_wh: o.quantity_wh - walk.filled[i as usize],
            }
        })
        .collect()
}

/// Builds a trade from a pair at `price`.
pub(crate) fn trade(orders: &[Order], pair: Pair, price: crate::Price) -> crate::Trade {
    let (b, a) = (&orders[pair.bid as usize], &orders[pair.ask as usize]);
    crate::Trade {
        buy_id: b.id.clone(),
        sell_id: a.id.clone(),
        buyer: b.participant.clone(),
        seller: a.participant.clone(),
        quantity_wh: pair.quantity_wh,
        price,
    }
}
