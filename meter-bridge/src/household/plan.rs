//! Orders from forecasts.
//!
//! A household with a forecast net export `n` Wh for an interval gets, if it is enabled and
//! `|n|` ≥ [`OrderPolicy::min_order_wh`]:
//! * `n > 0`: a sell order for `n` Wh at its sell limit;
//! * `n < 0`: a buy order for `−n` Wh at its buy limit;
//!
//! with the quantity capped at [`OrderPolicy::max_order_wh`]. The order id is
//! `<participant>-<interval start, Unix seconds>-<side>`, so building the order again for the same
//! interval gives the same id and resubmission is idempotent (the book refuses the duplicate id).
//! `seq` is left 0: the node assigns submission sequence numbers when it admits orders.

use serde::{Deserialize, Serialize};
use voltmesh_engine::{Interval, Order, OrderId, ParticipantId, Side, Wh};

use crate::household::forecast::{forecast_net_export, ForecastConfig};
use crate::household::registers::RegisterBook;
use crate::household::registry::{Preferences, Registry};

/// Bounds on generated orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrderPolicy {
    /// Forecasts smaller than this (in magnitude) produce no order: not worth a slot in a block.
    pub min_order_wh: Wh,
    /// Quantities are capped here (keep it at or below the market's `max_order_wh`).
    pub max_order_wh: Wh,
}

impl Default for OrderPolicy {
    /// 10 Wh minimum; 1 MWh maximum per household and interval.
    fn default() -> Self {
        OrderPolicy {
            min_order_wh: 10,
            max_order_wh: 1_000_000,
        }
    }
}

/// The deterministic id of `participant`'s `side` order for `interval`.
pub fn order_id(participant: &ParticipantId, interval: Interval, side: Side) -> OrderId {
    OrderId::from(format!("{participant}-{}-{side}", interval.start_unix()))
}

/// The order for one household and interval (module rule), or `None` when there is nothing to
/// trade.
pub fn build_order(
    participant: &ParticipantId,
    preferences: &Preferences,
    interval: Interval,
    forecast_net_export_wh: i64,
    policy: OrderPolicy,
) -> Option<Order> {
    if !preferences.enabled {
        return None;
    }
    let (side, limit_price) = if forecast_net_export_wh > 0 {
        (Side::Sell, preferences.sell_limit)
    } else {
        (Side::Buy, preferences.buy_limit)
    };
    let quantity_wh = forecast_net_export_wh
        .unsigned_abs()
        .min(policy.max_order_wh);
    if quantity_wh == 0 || quantity_wh < policy.min_order_wh {
        return None;
    }
    Some(Order {
        id: order_id(participant, interval, side),
        participant: participant.clone(),
        side,
        quantity_wh,
        limit_price,
        seq: 0,
    })
}

/// Every household's order for `target`, forecast at `now`, ordered by participant. Households
/// that are disabled, have no forecast, or forecast less than the minimum get none.
pub fn plan_orders(
    book: &RegisterBook,
    registry: &Registry,
    target: Interval,
    now: chrono::DateTime<chrono::Utc>,
    forecast: ForecastConfig,
    policy: OrderPolicy,
) -> Vec<Order> {
    registry
        .households()
        .filter_map(|(participant, household)| {
            let net = forecast_net_export(book, registry, participant, target, now, forecast)
                .ok()
                .flatten()?;
            build_order(participant, &household.preferences, target, net, policy)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use voltmesh_engine::{IntervalSpec, MarketRules};

    fn prefs(enabled: bool) -> Preferences {
        Preferences {
            buy_limit: "0.30".parse().unwrap(),
            sell_limit: "0.12".parse().unwrap(),
            enabled,
        }
    }

    fn interval() -> Interval {
        IntervalSpec::DEFAULT.containing(DateTime::from_timestamp(1_790_000_100, 0).unwrap())
    }

    #[test]
    fn surplus_sells_deficit_buys_with_stable_ids() {
        let p = ParticipantId::from("hh-01");
        let policy = OrderPolicy::default();
        let sell = build_order(&p, &prefs(true), interval(), 420, policy).unwrap();
        assert_eq!(sell.side, Side::Sell);
        assert_eq!(sell.quantity_wh, 420);
        assert_eq!(sell.limit_price.to_string(), "0.120000");
        assert_eq!(sell.id.as_str(), "hh-01-1790000100-sell");
        let buy = build_order(&p, &prefs(true), interval(), -75, policy).unwrap();
        assert_eq!((buy.side, buy.quantity_wh), (Side::Buy, 75));
        assert_eq!(buy.limit_price.to_string(), "0.300000");
        assert_eq!(buy.id.as_str(), "hh-01-1790000100-buy");
        assert_eq!(
            build_order(&p, &prefs(true), interval(), 420, policy),
            Some(sell.clone()),
            "rebuilding gives the identical order"
        );
        assert!(MarketRules::PERMISSIVE.admit(&sell).is_ok());
    }

    #[test]
    fn nothing_to_trade() {
        let p = ParticipantId::from("hh-01");
        let policy = OrderPolicy::default();
        assert_eq!(
            build_order(&p, &prefs(false), interval(), 420, policy),
            None
        );
        assert_eq!(build_order(&p, &prefs(true), interval(), 0, policy), None);
        assert_eq!(build_order(&p, &prefs(true), interval(), 9, policy), None);
        assert_eq!(build_order(&p, &prefs(true), interval(), -9, policy), None);
        let capped = build_order(&p, &prefs(true), interval(), i64::MIN, policy).unwrap();
        assert_eq!(capped.quantity_wh, 1_000_000);
    }
}
