//! Periodic discriminatory matching (pay-as-bid).
//!
//! # Ordering invariant
//! As in [`crate::uniform`]: bids by price descending, asks ascending, ties by sequence then id.
//!
//! # The rule
//! The highest remaining bid is matched with the lowest remaining ask while the bid is at least the
//! ask; each pair trades at its own price: the midpoint of the two limits (rounded half to even at
//! the price scale) or, with [`PayAsBidPricing::Bid`], the bid's limit. The volume equals the
//! uniform auction's.
//!
//! # Performance
//! Same as the uniform auction: a sort per side and a linear walk.

use crate::matching::Pricing;
use crate::walk::{sort_sides, walk, Sides};
use crate::{ClearingOutcome, Matching, Mechanism, Order, PayAsBidPricing, Price};

fn midpoint(bid: &Order, ask: &Order) -> Price {
    bid.limit_price.midpoint(ask.limit_price)
}

fn bid_price(bid: &Order, _ask: &Order) -> Price {
    bid.limit_price
}

/// Clears `orders` pair by pair, borrowing them.
///
/// The orders must already be admitted by a book: positive quantities, unique ids.
pub fn match_orders(orders: &[Order], pricing: PayAsBidPricing) -> Matching<'_> {
    match_sorted(orders, sort_sides(orders), pricing)
}

/// Clears orders already sorted by priority into `sides` (keys indexing `orders`).
pub(crate) fn match_sorted(
    orders: &[Order],
    sides: Sides,
    pricing: PayAsBidPricing,
) -> Matching<'_> {
    let w = walk(&sides, orders);
    let price_of = match pricing {
        PayAsBidPricing::Midpoint => midpoint,
        PayAsBidPricing::Bid => bid_price,
    };
    let pricing = Pricing::PerPair {
        mechanism: Mechanism::PayAsBid { pricing },
        price_of,
    };
    Matching::new(orders, sides, w, pricing)
}

/// Clears `orders` pair by pair and returns an owned outcome.
///
/// The orders must already be admitted by a book: positive quantities, unique ids.
pub fn clear(orders: &[Order], pricing: PayAsBidPricing) -> ClearingOutcome {
    match_orders(orders, pricing).to_outcome()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_books::book;

    #[test]
    fn pairs_trade_at_their_midpoint() {
        let orders = book(&[(5, "30"), (5, "22")], &[(5, "10"), (5, "20")]);
        let out = clear(&orders, PayAsBidPricing::Midpoint);
        let prices: Vec<String> = out.trades.iter().map(|t| t.price.to_string()).collect();
        assert_eq!(prices, ["20.000000", "21.000000"]);
        assert_eq!(out.volume_wh, 10);
        assert!(out.unfilled.is_empty());
    }

    #[test]
    fn bid_pricing_charges_the_bid() {
        let orders = book(&[(4, "30"), (10, "25")], &[(10, "20")]);
        let out = clear(&orders, PayAsBidPricing::Bid);
        let got: Vec<(u64, String)> = out
            .trades
            .iter()
            .map(|t| (t.quantity_wh, t.price.to_string()))
            .collect();
        assert_eq!(
            got,
            [(4, "30.000000".to_string()), (6, "25.000000".to_string())]
        );
        assert_eq!(out.unfilled.len(), 1);
        assert_eq!(out.unfilled[0].remaining_wh, 4);
    }
}
