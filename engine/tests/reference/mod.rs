//! Naive reference implementations the property tests compare the engine against. They favour
//! obviousness over speed: quantities are walked one watt-hour at a time and books are scanned
//! linearly.

#![allow(dead_code)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use voltmesh_engine::{
    ClearingOutcome, Mechanism, Order, Price, PriceRange, Side, Trade, Unfilled, K,
};

/// Orders with small quantities and prices on a coarse grid, so ties and crossings are common.
pub(crate) fn arb_orders(max: usize) -> impl Strategy<Value = Vec<Order>> {
    (
        prop::collection::vec((any::<bool>(), 1u64..40, -10i64..30, 0u64..8), 0..max),
        any::<bool>(),
    )
        .prop_map(|(raw, arrival_order)| {
            raw.into_iter()
                .enumerate()
                .map(|(i, (buy, q, tick, seq))| Order {
                    id: format!("o{i:03}").into(),
                    participant: format!("p{}", i % 7).into(),
                    side: if buy { Side::Buy } else { Side::Sell },
                    quantity_wh: q,
                    limit_price: Price::from_micros(tick * 250_000).unwrap(),
                    // Half the books arrive in sequence order (the radix fast path), half not.
                    seq: if arrival_order { i as u64 } else { seq },
                })
                .collect()
        })
}

/// The largest volume any individually rational matching can reach: `max_p min(D(p), S(p))`.
pub(crate) fn max_volume(orders: &[Order]) -> u64 {
    orders
        .iter()
        .map(|candidate| {
            let p = candidate.limit_price;
            let demand: u64 = orders
                .iter()
                .filter(|o| o.side == Side::Buy && o.limit_price >= p)
                .map(|o| o.quantity_wh)
                .sum();
            let supply: u64 = orders
                .iter()
                .filter(|o| o.side == Side::Sell && o.limit_price <= p)
                .map(|o| o.quantity_wh)
                .sum();
            demand.min(supply)
        })
        .max()
        .unwrap_or(0)
}

/// Priority order of one side: bids by price descending, asks ascending, then seq, then id.
pub(crate) fn priority(orders: &[Order], side: Side) -> Vec<&Order> {
    let mut list: Vec<&Order> = orders.iter().filter(|o| o.side == side).collect();
    list.sort_by(|a, b| {
        let price = if side == Side::Buy {
            b.limit_price.cmp(&a.limit_price)
        } else {
            a.limit_price.cmp(&b.limit_price)
        };
        price.then(a.seq.cmp(&b.seq)).then(a.id.cmp(&b.id))
    });
    list
}

/// Fills per order id from matching one watt-hour at a time, best bid against best ask.
pub(crate) fn unit_fills(orders: &[Order]) -> BTreeMap<String, u64> {
    let bids = priority(orders, Side::Buy);
    let asks = priority(orders, Side::Sell);
    let mut fills: BTreeMap<String, u64> = orders.iter().map(|o| (o.id.to_string(), 0)).collect();
    let (mut i, mut j) = (0, 0);
    while i < bids.len() && j < asks.len() && bids[i].limit_price >= asks[j].limit_price {
        *fills.get_mut(bids[i].id.as_str()).unwrap() += 1;
        *fills.get_mut(asks[j].id.as_str()).unwrap() += 1;
        if fills[bids[i].id.as_str()] == bids[i].quantity_wh {
            i += 1;
        }
        if fills[asks[j].id.as_str()] == asks[j].quantity_wh {
            j += 1;
        }
    }
    fills
}

/// The set of uniform prices consistent with `fills`, as `[lo, hi]`: accepted bids and rejected
/// asks at or above, accepted asks and rejected bids at or below, partly filled orders exactly at
/// their limit. `None` without volume.
pub(crate) fn price_range(
    orders: &[Order],
    fills: &BTreeMap<String, u64>,
) -> Option<(Price, Price)> {
    if fills.values().all(|&f| f == 0) {
        return None;
    }
    let (mut lo, mut hi) = (Price::MIN, Price::MAX);
    for o in orders {
        let f = fills[o.id.as_str()];
        let p = o.limit_price;
        let partial = f > 0 && f < o.quantity_wh;
        let (at_least, at_most) = match (o.side, f > 0) {
            _ if partial => (true, true),
            (Side::Buy, true) | (Side::Sell, false) => (false, true),
            (Side::Sell, true) | (Side::Buy, false) => (true, false),
        };
        if at_least {
            lo = lo.max(p);
        }
        if at_most {
            hi = hi.min(p);
        }
    }
    Some((lo, hi))
}

/// A continuous double auction kept as a plain list, scanned linearly for the best order.
#[derive(Default)]
pub(crate) struct NaiveCda {
    /// Resting orders in arrival order.
    pub(crate) resting: Vec<Order>,
    /// (buy id, sell id, quantity, price) in execution order.
    pub(crate) trades: Vec<(String, String, u64, Price)>,
}

impl NaiveCda {
    pub(crate) fn submit(&mut self, mut order: Order) {
        loop {
            if order.quantity_wh == 0 {
                return;
            }
            let best = self
                .resting
                .iter()
                .enumerate()
                .filter(|(_, r)| r.side != order.side && order.crosses(r))
                .min_by(|(ia, a), (ib, b)| {
                    let price = if order.side == Side::Buy {
                        a.limit_price.cmp(&b.limit_price)
                    } else {
                        b.limit_price.cmp(&a.limit_price)
                    };
                    price.then(ia.cmp(ib))
                })
                .map(|(i, _)| i);
            let Some(i) = best else { break };
            let q = order.quantity_wh.min(self.resting[i].quantity_wh);
            let r = &mut self.resting[i];
            let (buy, sell) = if order.side == Side::Buy {
                (order.id.to_string(), r.id.to_string())
            } else {
                (r.id.to_string(), order.id.to_string())
            };
            self.trades.push((buy, sell, q, r.limit_price));
            r.quantity_wh -= q;
            order.quantity_wh -= q;
            if r.quantity_wh == 0 {
                self.resting.remove(i);
            }
        }
        self.resting.push(order);
    }

    pub(crate) fn cancel(&mut self, id: &str) -> Option<Order> {
        let i = self.resting.iter().position(|o| o.id.as_str() == id)?;
        Some(self.resting.remove(i))
    }

    pub(crate) fn replace(&mut self, id: &str, quantity_wh: u64, limit: Price) -> bool {
        let Some(i) = self.resting.iter().position(|o| o.id.as_str() == id) else {
            return false;
        };
        if self.resting[i].limit_price == limit && quantity_wh <= self.resting[i].quantity_wh {
            self.resting[i].quantity_wh = quantity_wh;
            if quantity_wh == 0 {
                self.resting.remove(i);
            }
        } else {
            let mut order = self.resting.remove(i);
            order.quantity_wh = quantity_wh;
            order.limit_price = limit;
            self.submit(order);
        }
        true
    }
}

/// Uniform clearing written out plainly: sort each side with [`priority`], pair best bid with best
/// ask while they cross (whole remainders at a time, so huge quantities stay cheap), price from
/// [`price_range`] of those fills, leftovers bids first then asks, each in priority order.
pub(crate) fn uniform_outcome(orders: &[Order], k: K) -> ClearingOutcome {
    let bids = priority(orders, Side::Buy);
    let asks = priority(orders, Side::Sell);
    let mut left: Vec<u64> = bids.iter().chain(&asks).map(|o| o.quantity_wh).collect();
    let mut fills: BTreeMap<String, u64> = orders.iter().map(|o| (o.id.to_string(), 0)).collect();
    let mut pairs = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < bids.len() && j < asks.len() && bids[i].limit_price >= asks[j].limit_price {
        let q = left[i].min(left[bids.len() + j]);
        pairs.push((bids[i], asks[j], q));
        left[i] -= q;
        left[bids.len() + j] -= q;
        *fills.get_mut(bids[i].id.as_str()).unwrap() += q;
        *fills.get_mut(asks[j].id.as_str()).unwrap() += q;
        if left[i] == 0 {
            i += 1;
        }
        if left[bids.len() + j] == 0 {
            j += 1;
        }
    }
    let range = price_range(orders, &fills);
    let price = range.map(|(lo, hi)| k.interpolate(lo, hi));
    ClearingOutcome {
        mechanism: Mechanism::Uniform { k },
        clearing_price: price,
        price_range: range.map(|(lo, hi)| PriceRange { lo, hi }),
        volume_wh: pairs.iter().map(|p| p.2).sum(),
        trades: pairs
            .iter()
            .map(|&(b, a, q)| Trade {
                buy_id: b.id.clone(),
                sell_id: a.id.clone(),
                buyer: b.participant.clone(),
                seller: a.participant.clone(),
                quantity_wh: q,
                price: price.unwrap(),
            })
            .collect(),
        unfilled: bids
            .iter()
            .chain(&asks)
            .zip(&left)
            .filter(|(_, &l)| l > 0)
            .map(|(o, &l)| Unfilled {
                id: o.id.clone(),
                side: o.side,
                remaining_wh: l,
            })
            .collect(),
    }
}

/// What to do to a call auction.
#[derive(Debug, Clone)]
pub(crate) enum AuctionOp {
    /// Submit a new order.
    Submit {
        buy: bool,
        quantity_wh: u64,
        micros: i64,
        seq: u64,
    },
    /// Cancel the order submitted this many submissions ago (it may be gone already).
    Cancel(usize),
}

/// Long streams of submissions and cancels: sides large enough for the radix path, prices both on
/// a coarse grid (ties) and anywhere in the accepted range (every radix digit varies), quantities
/// small or beyond 32 bits, sequences in arrival order or not.
pub(crate) fn arb_auction_ops(max: usize) -> impl Strategy<Value = (Vec<AuctionOp>, bool)> {
    let micros = prop_oneof![
        4 => (-10i64..30).prop_map(|t| t * 250_000),
        1 => Price::MIN.micros()..=Price::MAX.micros(),
    ];
    let quantity = prop_oneof![
        8 => 1u64..40,
        1 => u64::from(u32::MAX) - 2..u64::from(u32::MAX) + 2,
        1 => 1u64..1 << 40,
    ];
    let op = prop_oneof![
        8 => (any::<bool>(), quantity, micros, 0u64..64).prop_map(|(buy, quantity_wh, micros, seq)| {
            AuctionOp::Submit { buy, quantity_wh, micros, seq }
        }),
        1 => (0usize..200).prop_map(AuctionOp::Cancel),
    ];
    (prop::collection::vec(op, 0..max), any::<bool>())
}
