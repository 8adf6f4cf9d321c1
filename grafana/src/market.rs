//! Points from the engine's results: one place that turns a book, its [`ClearingOutcome`] and its
//! [`Settlement`] into `clearing`, `order`, `trade`, `settlement` and `balance` points, so the
//! simulator and the node feed the dashboards the same numbers.
//!
//! # Invariants
//! * Per interval: `clearing.volume_wh` equals the `quantity_wh` summed over the `trade` points of
//!   either side, and `clearing.trades` the `trades` summed over either side.
//! * Output order is deterministic: households in id order (`BTreeMap`), buy before sell.
//! * Household tags come from participant ids through [`HouseholdId::lossy`]; a participant whose
//!   id is empty is skipped (no point without a household).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use voltmesh_engine::{ClearingOutcome, Money, Order, ParticipantId, Settlement, Tariffs};

use crate::schema::{
    money_value, price_value, wh_value, Balance, Clearing, OrderPoint, SettlementPoint, TradePoint,
};
use crate::tag::{HouseholdId, MechanismTag, Neighborhood, Side};

/// The `clearing` point of one interval: `orders` is the book that was cleared, `time` the
/// interval start.
pub fn clearing_point(
    time: DateTime<Utc>,
    neighborhood: &Neighborhood,
    orders: &[Order],
    outcome: &ClearingOutcome,
    tariffs: Tariffs,
) -> Clearing {
    let (mut bid_wh, mut ask_wh) = (0_u64, 0_u64);
    for order in orders {
        match order.side {
            voltmesh_engine::Side::Buy => bid_wh = bid_wh.saturating_add(order.quantity_wh),
            voltmesh_engine::Side::Sell => ask_wh = ask_wh.saturating_add(order.quantity_wh),
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let local_share = (bid_wh > 0).then(|| outcome.volume_wh as f64 / bid_wh as f64);
    Clearing {
        time,
        neighborhood: neighborhood.clone(),
        mechanism: MechanismTag::from(outcome.mechanism),
        price: outcome.clearing_price.map(price_value),
        price_lo: outcome.price_range.map(|r| price_value(r.lo)),
        price_hi: outcome.price_range.map(|r| price_value(r.hi)),
        volume_wh: wh_value(outcome.volume_wh),
        bid_wh: wh_value(bid_wh),
        ask_wh: wh_value(ask_wh),
        local_share,
        orders: i64::try_from(orders.len()).unwrap_or(i64::MAX),
        trades: i64::try_from(outcome.trades.len()).unwrap_or(i64::MAX),
        feed_in: price_value(tariffs.feed_in),
        retail: price_value(tariffs.retail),
    }
}

/// The `clearing` point of one interval from its outcome alone (as a committed block records it):
/// the book is every order that traded or has energy left, so bid (ask) energy is the volume plus
/// the unfilled buy (sell) energy, and the order count is the number of distinct order ids.
pub fn clearing_point_from_outcome(
    time: DateTime<Utc>,
    neighborhood: &Neighborhood,
    outcome: &ClearingOutcome,
    tariffs: Tariffs,
) -> Clearing {
    let (mut bid_wh, mut ask_wh) = (outcome.volume_wh, outcome.volume_wh);
    let mut ids = std::collections::BTreeSet::new();
    for trade in &outcome.trades {
        ids.insert((voltmesh_engine::Side::Buy, &trade.buy_id));
        ids.insert((voltmesh_engine::Side::Sell, &trade.sell_id));
    }
    for unfilled in &outcome.unfilled {
        match unfilled.side {
            voltmesh_engine::Side::Buy => bid_wh = bid_wh.saturating_add(unfilled.remaining_wh),
            voltmesh_engine::Side::Sell => ask_wh = ask_wh.saturating_add(unfilled.remaining_wh),
        }
        ids.insert((unfilled.side, &unfilled.id));
    }
    #[allow(clippy::cast_precision_loss)]
    let local_share = (bid_wh > 0).then(|| outcome.volume_wh as f64 / bid_wh as f64);
    Clearing {
        bid_wh: wh_value(bid_wh),
        ask_wh: wh_value(ask_wh),
        local_share,
        orders: i64::try_from(ids.len()).unwrap_or(i64::MAX),
        ..clearing_point(time, neighborhood, &[], outcome, tariffs)
    }
}

/// The `order` point of one accepted order, stamped `time` (its submission or block time).
/// `None` if the participant id is empty.
pub fn order_point(
    time: DateTime<Utc>,
    neighborhood: &Neighborhood,
    mechanism: MechanismTag,
    order: &Order,
) -> Option<OrderPoint> {
    Some(OrderPoint {
        time,
        neighborhood: neighborhood.clone(),
        household: HouseholdId::lossy(order.participant.as_str()).ok()?,
        side: Side::from(order.side),
        mechanism,
        quantity_wh: wh_value(order.quantity_wh),
        limit_price: price_value(order.limit_price),
    })
}

/// One `trade` point per household and side that traded in the interval (its fills summed).
pub fn trade_points(
    time: DateTime<Utc>,
    neighborhood: &Neighborhood,
    outcome: &ClearingOutcome,
) -> Vec<TradePoint> {
    #[derive(Default)]
    struct Sum {
        wh: u64,
        amount: Money,
        fills: i64,
    }
    let mut sums: BTreeMap<(&ParticipantId, Side), Sum> = BTreeMap::new();
    for trade in &outcome.trades {
        for key in [(&trade.buyer, Side::Buy), (&trade.seller, Side::Sell)] {
            let sum = sums.entry(key).or_default();
            sum.wh = sum.wh.saturating_add(trade.quantity_wh);
            sum.amount += trade.value();
            sum.fills += 1;
        }
    }
    let mechanism = MechanismTag::from(outcome.mechanism);
    sums.into_iter()
        .filter_map(|((participant, side), sum)| {
            Some(TradePoint {
                time,
                neighborhood: neighborhood.clone(),
                household: HouseholdId::lossy(participant.as_str()).ok()?,
                side,
                mechanism,
                quantity_wh: wh_value(sum.wh),
                amount: money_value(sum.amount),
                trades: sum.fills,
            })
        })
        .collect()
}

/// A household's running totals, kept exact between intervals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Totals {
    amount: Money,
    bought_wh: u64,
    sold_wh: u64,
}

/// Turns each interval's [`Settlement`] into `settlement` and `balance` points, keeping every
/// household's running totals (exact [`Money`]) since the ledger, or the run, began.
#[derive(Debug, Default)]
pub struct Balances {
    totals: BTreeMap<ParticipantId, Totals>,
}

impl Balances {
    /// No household has a balance yet.
    pub fn new() -> Self {
        Balances::default()
    }

    /// Adds one interval's bills to the totals and returns, per bill in the settlement's order,
    /// its `settlement` point and the household's `balance` point after it.
    pub fn settle(
        &mut self,
        time: DateTime<Utc>,
        neighborhood: &Neighborhood,
        settlement: &Settlement,
    ) -> Vec<(SettlementPoint, Balance)> {
        let mut points = Vec::with_capacity(settlement.bills.len());
        for bill in &settlement.bills {
            let totals = self.totals.entry(bill.participant.clone()).or_default();
            totals.amount += bill.total;
            totals.bought_wh = totals.bought_wh.saturating_add(bill.bought_wh);
            totals.sold_wh = totals.sold_wh.saturating_add(bill.sold_wh);
            let Ok(household) = HouseholdId::lossy(bill.participant.as_str()) else {
                continue;
            };
            let balance = Balance {
                time,
                neighborhood: neighborhood.clone(),
                household: household.clone(),
                amount_total: money_value(totals.amount),
                bought_wh_total: wh_value(totals.bought_wh),
                sold_wh_total: wh_value(totals.sold_wh),
            };
            points.push((
                SettlementPoint::from_bill(time, neighborhood.clone(), household, bill),
                balance,
            ));
        }
        points
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use voltmesh_engine::settlement::settle;
    use voltmesh_engine::{
        CallAuction, MarketRules, Mechanism, OrderId, Price, Side as EngineSide,
    };

    use super::*;

    fn price(text: &str) -> Price {
        text.parse().expect("price")
    }

    fn order(id: &str, who: &str, side: EngineSide, wh: u64, limit: &str, seq: u64) -> Order {
        Order {
            id: OrderId::from(id),
            participant: ParticipantId::from(who),
            side,
            quantity_wh: wh,
            limit_price: price(limit),
            seq,
        }
    }

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_451_606_400, 0).expect("2016-01-01")
    }

    /// Bids 5@0.30 (a), 5@0.22 (b, seq later), asks 5@0.10 (c), 5@0.25 (c): the architecture's
    /// fourth worked book, scaled to kWh prices: 5 Wh trade at 0.235.
    fn book() -> (Vec<Order>, ClearingOutcome, Tariffs) {
        let tariffs = Tariffs::new(price("0.08"), price("0.32")).expect("tariffs");
        let rules = MarketRules {
            tariffs,
            ..MarketRules::PERMISSIVE
        };
        let mut auction = CallAuction::new(rules);
        for o in [
            order("1", "hh a", EngineSide::Buy, 5, "0.30", 1),
            order("2", "hh-b", EngineSide::Buy, 5, "0.22", 2),
            order("3", "hh-c", EngineSide::Sell, 5, "0.10", 3),
            order("4", "hh-c", EngineSide::Sell, 5, "0.25", 4),
        ] {
            auction.submit(o).expect("admitted");
        }
        let outcome = auction.clear(Mechanism::default());
        (auction.orders().to_vec(), outcome, tariffs)
    }

    #[test]
    fn clearing_point_sums_the_book_and_copies_the_outcome() {
        let nb = Neighborhood::new("nb").expect("id");
        let (orders, outcome, tariffs) = book();
        let c = clearing_point(t0(), &nb, &orders, &outcome, tariffs);
        assert_eq!((c.bid_wh, c.ask_wh, c.orders), (10, 10, 4));
        assert_eq!(
            c.volume_wh,
            i64::try_from(outcome.volume_wh).expect("small")
        );
        assert_eq!(c.price, outcome.clearing_price.map(price_value));
        assert_eq!(
            c.local_share,
            Some(outcome.volume_wh as f64 / 10.0),
            "volume over bid energy"
        );
        assert_eq!((c.feed_in, c.retail), (0.08, 0.32));
        assert_eq!(c.mechanism, MechanismTag::Uniform);
        let empty = ClearingOutcome {
            trades: Vec::new(),
            volume_wh: 0,
            clearing_price: None,
            price_range: None,
            ..outcome
        };
        let c = clearing_point(t0(), &nb, &[], &empty, tariffs);
        assert_eq!((c.local_share, c.price, c.orders), (None, None, 0));
    }

    #[test]
    fn the_outcome_alone_gives_the_same_clearing_as_the_book() {
        let nb = Neighborhood::new("nb").expect("id");
        let (orders, outcome, tariffs) = book();
        assert_eq!(
            clearing_point_from_outcome(t0(), &nb, &outcome, tariffs),
            clearing_point(t0(), &nb, &orders, &outcome, tariffs)
        );
    }

    #[test]
    fn trades_sum_per_household_and_side_and_match_the_volume() {
        let nb = Neighborhood::new("nb").expect("id");
        let (_, outcome, _) = book();
        assert!(outcome.volume_wh > 0);
        let points = trade_points(t0(), &nb, &outcome);
        let side_sum = |side: Side| -> (i64, i64, f64) {
            points
                .iter()
                .filter(|p| p.side == side)
                .fold((0, 0, 0.0), |(wh, n, a), p| {
                    (wh + p.quantity_wh, n + p.trades, a + p.amount)
                })
        };
        let (buy_wh, buy_n, buy_amount) = side_sum(Side::Buy);
        let (sell_wh, sell_n, sell_amount) = side_sum(Side::Sell);
        assert_eq!(buy_wh, i64::try_from(outcome.volume_wh).expect("small"));
        assert_eq!(buy_wh, sell_wh);
        assert_eq!(buy_n, i64::try_from(outcome.trades.len()).expect("small"));
        assert_eq!(buy_n, sell_n);
        assert_eq!(buy_amount, money_value(outcome.turnover()));
        assert_eq!(buy_amount, sell_amount);
        // "hh a" becomes a valid tag; points come in participant-id order, buy before sell.
        let keys: Vec<(&str, Side)> = points
            .iter()
            .map(|p| (p.household.as_str(), p.side))
            .collect();
        assert_eq!(keys, vec![("hh_a", Side::Buy), ("hh-c", Side::Sell)]);
    }

    #[test]
    fn balances_accumulate_exactly_across_intervals() {
        let nb = Neighborhood::new("nb").expect("id");
        let (_, outcome, tariffs) = book();
        let metered: BTreeMap<ParticipantId, i64> = [
            (ParticipantId::from("hh a"), -7),
            (ParticipantId::from("hh-b"), 0),
            (ParticipantId::from("hh-c"), 5),
        ]
        .into_iter()
        .collect();
        let settlement = settle(&outcome.trades, &metered, tariffs, price("0.02")).expect("settle");
        let mut balances = Balances::new();
        let first = balances.settle(t0(), &nb, &settlement);
        let second = balances.settle(t0(), &nb, &settlement);
        assert_eq!(first.len(), settlement.bills.len());
        for ((s1, b1), ((s2, b2), bill)) in first.iter().zip(second.iter().zip(&settlement.bills)) {
            assert_eq!(s1, s2);
            assert_eq!(s1.total, money_value(bill.total));
            assert_eq!(b1.amount_total, money_value(bill.total));
            assert_eq!(b2.amount_total, money_value(bill.total + bill.total));
            assert_eq!(
                b2.bought_wh_total,
                2 * i64::try_from(bill.bought_wh).expect("small")
            );
            assert_eq!(b2.sold_wh_total, 2 * s1.sold_wh);
        }
    }

    #[test]
    fn order_points_carry_side_limit_and_a_clean_household() {
        let nb = Neighborhood::new("nb").expect("id");
        let o = order("9", "LV1.101 Load 1", EngineSide::Sell, 1_200, "0.11", 1);
        let p = order_point(t0(), &nb, MechanismTag::Uniform, &o).expect("point");
        assert_eq!(p.household.as_str(), "LV1.101_Load_1");
        assert_eq!(
            (p.side, p.quantity_wh, p.limit_price),
            (Side::Sell, 1_200, 0.11)
        );
        let nobody = order("9", "", EngineSide::Sell, 1, "0.11", 1);
        assert_eq!(order_point(t0(), &nb, MechanismTag::Uniform, &nobody), None);
    }
}
