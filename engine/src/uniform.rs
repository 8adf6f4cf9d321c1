//! Periodic uniform-price double auction (pay-as-clear).
//!
//! # Ordering invariant
//! Bids are taken by limit price descending, asks ascending; ties go to the lower submission
//! sequence, then the lower order id. The result does not depend on the order of the input slice.
//!
//! # The rule
//! 1. Walk both sorted lists while the bid's limit is at least the ask's; this reaches the maximum
//!    tradable volume.
//! 2. The clearing range `[lo, hi]`: if the walk leaves the marginal order partly filled, both ends
//!    are that order's limit. Otherwise `lo = max(last accepted ask, first rejected bid)` and
//!    `hi = min(last accepted bid, first rejected ask)`, where a missing rejected order leaves the
//!    other term.
//! 3. The price is `lo + k·(hi − lo)` rounded half to even at the price scale; every trade of the
//!    interval uses it.
//!
//! Every price in `[lo, hi]` keeps the accepted set individually rational and the rejected set out
//! of the money, so no participant regrets the outcome at that price.
//!
//! # Known limitations
//! Orders are all-or-part: there are no all-or-none or block orders.
//!
//! # Performance
//! `O(n log n)`: one sort of compact `(price, seq, index)` keys per side and a linear walk. The
//! `clearing` bench compares it with a bare sort of the same prices.

use crate::key::{self, Key};
use crate::matching::Pricing;
use crate::walk::{sort_sides, walk, Sides};
use crate::{ClearingOutcome, Matching, Mechanism, Order, PriceRange, K};

/// Clears `orders` at one price, borrowing them.
///
/// The orders must already be admitted by a book: positive quantities, unique ids.
pub fn match_orders(orders: &[Order], k: K) -> Matching<'_> {
    match_sorted(orders, sort_sides(orders), k)
}

/// Clears orders already sorted by priority into `sides` (keys indexing `orders`).
pub(crate) fn match_sorted(orders: &[Order], sides: Sides, k: K) -> Matching<'_> {
    let w = walk(&sides, orders);
    let limit_at = |key: Key| orders[key::idx(key)].limit_price;
    let limit = |keys: &[Key], pos: usize| keys.get(pos).map(|&key| limit_at(key));
    let range = w.last.map(|last| {
        let last_bid = limit_at(sides.bids[last.bid]);
        let last_ask = limit_at(sides.asks[last.ask]);
        let pin = |p| PriceRange { lo: p, hi: p };
        if w.bid_partial() {
            pin(last_bid)
        } else if w.ask_partial() {
            pin(last_ask)
        } else {
            PriceRange {
                lo: limit(&sides.bids, w.next_bid).map_or(last_ask, |b| b.max(last_ask)),
                hi: limit(&sides.asks, w.next_ask).map_or(last_bid, |a| a.min(last_bid)),
            }
        }
    });
    let pricing = Pricing::Uniform {
        mechanism: Mechanism::Uniform { k },
        price: range.map(|r| k.interpolate(r.lo, r.hi)),
        range,
    };
    Matching::new(orders, sides, w, pricing)
}

/// Clears `orders` at one price and returns an owned outcome.
///
/// The orders must already be admitted by a book: positive quantities, unique ids.
pub fn clear(orders: &[Order], k: K) -> ClearingOutcome {
    match_orders(orders, k).to_outcome()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_books::book;

    fn clears(bids: &[(u64, &str)], asks: &[(u64, &str)]) -> (String, u64) {
        let out = clear(&book(bids, asks), K::HALF);
        (
            out.clearing_price.expect("a price").to_string(),
            out.volume_wh,
        )
    }

    #[test]
    fn architecture_worked_books() {
        assert_eq!(
            clears(&[(10, "30")], &[(10, "20")]),
            ("25.000000".into(), 10)
        );
        assert_eq!(
            clears(&[(10, "30")], &[(4, "10"), (10, "20")]),
            ("20.000000".into(), 10)
        );
        assert_eq!(
            clears(&[(4, "30"), (10, "25")], &[(10, "20")]),
            ("25.000000".into(), 10)
        );
        assert_eq!(
            clears(&[(5, "30"), (5, "22")], &[(5, "10"), (5, "25")]),
            ("23.500000".into(), 5)
        );
    }

    #[test]
    fn issue_golden_books() {
        assert_eq!(
            clears(
                &[(10, "1"), (15, "2"), (20, "3")],
                &[(25, "1.00001"), (30, "5"), (35, "2.4")]
            ),
            ("2.000000".into(), 25)
        );
        assert_eq!(
            clears(
                &[(40, "1.5"), (45, "2"), (50, "6")],
                &[(55, "1"), (60, "5"), (65, "1")]
            ),
            ("1.500000".into(), 120)
        );
    }

    #[test]
    fn no_cross_means_no_price() {
        let out = clear(&book(&[(10, "1")], &[(10, "2")]), K::HALF);
        assert_eq!(out.clearing_price, None);
        assert_eq!(out.volume_wh, 0);
        assert!(out.trades.is_empty());
        assert_eq!(out.unfilled.len(), 2);
        assert_eq!(clear(&[], K::HALF).volume_wh, 0);
    }

    #[test]
    fn k_moves_the_price_inside_the_range() {
        let orders = book(&[(5, "30"), (5, "22")], &[(5, "10"), (5, "25")]);
        let at = |k: &str| {
            clear(&orders, k.parse().unwrap())
                .clearing_price
                .unwrap()
                .to_string()
        };
        assert_eq!(at("0"), "22.000000");
        assert_eq!(at("1"), "25.000000");
        assert_eq!(at("0.25"), "22.750000");
    }

    #[test]
    fn ties_go_to_the_earlier_sequence_then_the_lower_id() {
        // Two asks at the same price; only 5 Wh is wanted. seq decides.
        let mut orders = book(&[(5, "30")], &[(5, "10"), (5, "10")]);
        orders[1].seq = 9;
        orders[2].seq = 3;
        let out = clear(&orders, K::HALF);
        assert_eq!(out.trades[0].sell_id, orders[2].id);
        // Same seq: the lower id wins.
        orders[1].seq = 3;
        let lower = orders[1].id.clone().min(orders[2].id.clone());
        assert_eq!(clear(&orders, K::HALF).trades[0].sell_id, lower);
    }

    #[test]
    fn input_order_does_not_change_the_bytes() {
        let orders = book(
            &[(10, "1"), (15, "2"), (20, "3")],
            &[(25, "1.00001"), (30, "5"), (35, "2.4")],
        );
        let mut reversed = orders.clone();
        reversed.reverse();
        assert_eq!(
            serde_json::to_string(&clear(&orders, K::HALF)).unwrap(),
            serde_json::to_string(&clear(&reversed, K::HALF)).unwrap()
        );
    }
}
