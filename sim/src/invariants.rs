//! Invariants checked on every simulated interval; a violation stops the run with
//! [`InvariantError`] (it would be a bug in the engine or in the simulation, never bad input).
//!
//! - energy: every trade's energy is bought once and sold once, and the cleared volume is their sum;
//! - no order is filled beyond its quantity, and every trade crosses (bid ≥ price ≥ ask);
//! - each bill balances: metered net export = sold − bought + to utility − from utility;
//! - money: the bills sum to the utility's plus the network's revenue.

use rustc_hash::FxHashMap;
use voltmesh_engine::{ClearingOutcome, Money, Order, OrderId, Price, Settlement, Side};

/// An interval broke an invariant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("interval starting at step {step}: {what}")]
pub struct InvariantError {
    /// First profile step of the interval.
    pub step: usize,
    /// What went wrong.
    pub what: String,
}

/// Checks one interval's clearing and settlement.
///
/// # Errors
/// [`InvariantError`] describing the first broken invariant.
pub fn check_interval(
    step: usize,
    orders: &[Order],
    outcome: &ClearingOutcome,
    settlement: &Settlement,
) -> Result<(), InvariantError> {
    let fail = |what: String| Err(InvariantError { step, what });
    let traded: u64 = outcome.trades.iter().map(|t| t.quantity_wh).sum();
    if traded != outcome.volume_wh {
        return fail(format!(
            "trades sum to {traded} Wh, volume is {}",
            outcome.volume_wh
        ));
    }
    // Each order with what it has filled so far, by id (Fx hashing: the ids are the
    // simulation's own, and this runs every interval); not built for an interval without trades
    // (every night).
    let mut by_id: FxHashMap<&OrderId, (&Order, u64)> = FxHashMap::default();
    if !outcome.trades.is_empty() {
        by_id.reserve(orders.len());
        for o in orders {
            by_id.insert(&o.id, (o, 0));
        }
    }
    for t in &outcome.trades {
        let fills = [(&t.buy_id, Side::Buy), (&t.sell_id, Side::Sell)]
            .map(|(id, side)| fill(&mut by_id, id, side, t.quantity_wh));
        let [bid, ask] = match fills {
            [Ok(bid), Ok(ask)] => [bid, ask],
            [Err(what), _] | [_, Err(what)] => return fail(what),
        };
        if !(bid >= t.price && t.price >= ask) {
            return fail(format!(
                "trade at {} outside bid {bid} / ask {ask}",
                t.price
            ));
        }
    }
    let bought: u64 = settlement.bills.iter().map(|b| b.bought_wh).sum();
    let sold: u64 = settlement.bills.iter().map(|b| b.sold_wh).sum();
    if bought != traded || sold != traded {
        return fail(format!(
            "bills buy {bought} Wh and sell {sold} Wh of {traded} Wh traded"
        ));
    }
    for b in &settlement.bills {
        let balance = i128::from(b.sold_wh) - i128::from(b.bought_wh) + i128::from(b.to_utility_wh)
            - i128::from(b.from_utility_wh);
        if balance != i128::from(b.metered_net_export_wh) {
            return fail(format!("bill of {} does not balance", b.participant));
        }
    }
    if settlement.imbalance() != Money::ZERO {
        return fail(format!("money imbalance {}", settlement.imbalance()));
    }
    Ok(())
}

/// Adds `wh` to what order `id` on `side` has filled; returns its limit price, or what is wrong.
fn fill(
    by_id: &mut FxHashMap<&OrderId, (&Order, u64)>,
    id: &OrderId,
    side: Side,
    wh: u64,
) -> Result<Price, String> {
    let Some((order, filled)) = by_id.get_mut(id) else {
        return Err(format!("trade refers to unknown order {id}"));
    };
    if order.side != side {
        return Err(format!("order {id} traded on the wrong side"));
    }
    *filled += wh;
    if *filled > order.quantity_wh {
        return Err(format!("order {id} overfilled"));
    }
    Ok(order.limit_price)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use voltmesh_engine::settlement::settle;
    use voltmesh_engine::{CallAuction, MarketRules, Mechanism, Price, Tariffs, Trade};

    use super::*;

    fn order(id: &str, side: Side, wh: u64, price: &str, seq: u64) -> Order {
        Order {
            id: id.into(),
            participant: id.into(),
            side,
            quantity_wh: wh,
            limit_price: price.parse().unwrap(),
            seq,
        }
    }

    fn metered(pairs: &[(&str, i64)]) -> BTreeMap<voltmesh_engine::ParticipantId, i64> {
        pairs.iter().map(|&(p, m)| (p.into(), m)).collect()
    }

    #[test]
    fn a_real_clearing_passes_and_an_overfill_is_caught() {
        let orders = vec![
            order("b", Side::Buy, 10, "0.30", 0),
            order("s", Side::Sell, 10, "0.10", 1),
        ];
        let mut auction = CallAuction::new(MarketRules::PERMISSIVE);
        for o in &orders {
            auction.submit(o.clone()).unwrap();
        }
        let outcome = auction.clear(Mechanism::default());
        let m = metered(&[("b", -12), ("s", 10)]);
        let settlement = settle(&outcome.trades, &m, Tariffs::UNBOUNDED, Price::ZERO).unwrap();
        assert_eq!(check_interval(0, &orders, &outcome, &settlement), Ok(()));

        let mut bad = outcome;
        bad.trades.push(Trade {
            quantity_wh: 5,
            ..bad.trades[0].clone()
        });
        bad.volume_wh += 5;
        let settlement = settle(&bad.trades, &m, Tariffs::UNBOUNDED, Price::ZERO).unwrap();
        let err = check_interval(3, &orders, &bad, &settlement).unwrap_err();
        assert_eq!(err.step, 3);
        assert!(err.what.contains("overfilled"), "{err}");
    }
}
