//! Priority keys: an order's place in its side's priority packed into 16 bytes, so that sorting
//! and walking stream through compact keys and never touch the 64-byte orders.
//!
//! # Layout
//! A key is a `u128`: bits 64..128 hold the rank, bits 32..64 the quantity, bits 0..32 the
//! order's index. Keys are plain integers so that buffers of them can be allocated zeroed (the
//! allocator hands out fresh zero pages instead of the sort filling them first).
//!
//! # Invariants
//! * The rank is `Price::MAX − limit` for bids and `limit − Price::MIN` for asks: a better price is
//!   a smaller rank on both sides, and every rank is below `2 · Price::MAX` (41 bits).
//! * A quantity of `u32::MAX` or more is stored as [`QUANTITY_IN_ORDER`] and read from the order.
//! * Index [`TOMBSTONE`] marks a cancelled order's key in a book; no live key carries it.

use crate::{Order, Price, Side, Wh};

/// A packed priority key (see the module documentation).
pub(crate) type Key = u128;

/// Stored quantity meaning "too large for 32 bits: read it from the order".
pub(crate) const QUANTITY_IN_ORDER: u32 = u32::MAX;

/// Index of a cancelled order's key.
pub(crate) const TOMBSTONE: u32 = u32::MAX;

/// `Price::MAX − Price::MIN` in micro-units: a bid of rank `b` crosses an ask of rank `a` iff
/// `a + b ≤ SPAN`.
pub(crate) const SPAN: u64 = Price::MAX.micros().abs_diff(Price::MIN.micros());

/// The rank of `order`'s limit on its side.
pub(crate) fn rank_of(order: &Order) -> u64 {
    let micros = order.limit_price.micros();
    match order.side {
        Side::Buy => Price::MAX.micros().abs_diff(micros),
        Side::Sell => micros.abs_diff(Price::MIN.micros()),
    }
}

/// The key of `order`, stored at `idx`.
pub(crate) fn pack(order: &Order, idx: u32) -> Key {
    let quantity = u32::try_from(order.quantity_wh)
        .ok()
        .filter(|&q| q != QUANTITY_IN_ORDER)
        .unwrap_or(QUANTITY_IN_ORDER);
    (u128::from(rank_of(order)) << 64) | (u128::from(quantity) << 32) | u128::from(idx)
}

/// The key's rank.
pub(crate) fn rank(key: Key) -> u64 {
    (key >> 64) as u64
}

/// The key's index into its orders.
pub(crate) fn idx(key: Key) -> usize {
    key as u32 as usize
}

/// The key's index field, which is [`TOMBSTONE`] for a cancelled order.
pub(crate) fn raw_idx(key: Key) -> u32 {
    key as u32
}

/// The same key pointing at `idx`.
pub(crate) fn with_idx(key: Key, idx: u32) -> Key {
    (key & !u128::from(u32::MAX)) | u128::from(idx)
}

/// The key's quantity; `orders` is the slice its index points into.
pub(crate) fn quantity(key: Key, orders: &[Order]) -> Wh {
    match (key >> 32) as u32 {
        QUANTITY_IN_ORDER => orders.get(idx(key)).map_or(0, |o| o.quantity_wh),
        q => Wh::from(q),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(side: Side, micros: i64, quantity_wh: Wh) -> Order {
        Order {
            id: "o".into(),
            participant: "p".into(),
            side,
            quantity_wh,
            limit_price: Price::from_micros(micros).unwrap(),
            seq: 0,
        }
    }

    #[test]
    fn better_prices_rank_lower_and_ranks_fit_41_bits() {
        let (lo, hi) = (Price::MIN.micros(), Price::MAX.micros());
        for (a, b) in [
            (lo, hi),
            (-1, 0),
            (0, 1),
            (5, 7),
            (lo, lo + 1),
            (hi - 1, hi),
        ] {
            assert!(rank_of(&order(Side::Buy, b, 1)) < rank_of(&order(Side::Buy, a, 1)));
            assert!(rank_of(&order(Side::Sell, a, 1)) < rank_of(&order(Side::Sell, b, 1)));
        }
        for m in [lo, 0, hi] {
            for side in [Side::Buy, Side::Sell] {
                assert!(rank_of(&order(side, m, 1)) < 1 << 41);
            }
        }
    }

    #[test]
    fn crossing_is_a_sum_of_ranks() {
        for (bid, ask) in [
            (5, 5),
            (5, 6),
            (6, 5),
            (Price::MIN.micros(), Price::MAX.micros()),
        ] {
            let b = rank_of(&order(Side::Buy, bid, 1));
            let a = rank_of(&order(Side::Sell, ask, 1));
            assert_eq!(a + b <= SPAN, bid >= ask, "bid {bid} ask {ask}");
        }
    }

    #[test]
    fn fields_round_trip_and_huge_quantities_are_read_from_the_order() {
        let small = [order(Side::Sell, -3, 4_000_000_000)];
        let k = pack(&small[0], 0);
        assert_eq!(
            (rank(k), idx(k), quantity(k, &small)),
            (rank_of(&small[0]), 0, 4_000_000_000)
        );
        for q in [u64::from(u32::MAX), u64::from(u32::MAX) + 1, u64::MAX] {
            let huge = [order(Side::Buy, 9, q)];
            let k = pack(&huge[0], 0);
            assert_eq!(quantity(k, &huge), q);
            assert_eq!(quantity(with_idx(k, 0), &huge), q);
        }
        assert_eq!(raw_idx(with_idx(k, TOMBSTONE)), TOMBSTONE);
        assert_eq!(rank(with_idx(k, TOMBSTONE)), rank(k));
    }
}
