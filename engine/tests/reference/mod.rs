//! Naive reference implementations the property tests compare the engine against. They favour
//! obviousness over speed: quantities are walked one watt-hour at a time and books are scanned
//! linearly.

#![allow(dead_code)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use voltmesh_engine::{Order, Price, Side};

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
