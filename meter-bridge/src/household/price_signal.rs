//! The local price signal for home energy managers: an indicative import and export price per
//! interval, from the real engine run on the forecast book.
//!
//! # How the forecast is made
//! For each coming interval the bridge plans every household's order as it would at that
//! interval's gate (the household's own orders or bid curve if it sent them, else the order
//! from its metered forecast: same interval yesterday blended with the last complete interval,
//! see [`crate::household::forecast`]), and clears that book with the market's own engine and
//! the interval's rules ([`indicative`], the engine's [`voltmesh_engine::marginal`]). The
//! signal is the price of one more kWh:
//! - **import** (what a household pays to take one more kWh): when the forecast book leaves
//!   sell volume unmatched (a local surplus), the local price plus the network fee; the local
//!   price is the forecast clearing price (the trades' volume-weighted price under pay-as-bid),
//!   or, when nothing trades, the cheapest unmatched ask's limit. Otherwise retail: the extra
//!   kWh comes from the utility. Never above retail.
//! - **export** (what a household gets for one more kWh fed in): when buy volume is left
//!   unmatched (a local deficit), the local price (or the dearest unmatched bid's limit when
//!   nothing trades); otherwise the feed-in tariff. Never below feed-in.
//!
//! An energy manager that moves load to intervals with a low import price moves it to the
//! neighborhood's surplus, which is what the market is for. The firm price replaces the
//! indicative one once an interval clears (the clearing on `<prefix>/market/clearing`).
//!
//! # Formats
//! [`evcc_forecast`] gives evcc's `custom` tariff forecast (`[{"start", "end", "value"}]`, RFC
//! 3339, currency/kWh); [`emhass_forecast`] gives EMHASS's runtime parameters
//! (`load_cost_forecast`, `prod_price_forecast`: one value per interval). Prices are exact
//! decimals with six places, written as JSON numbers because both tools read numbers.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use voltmesh_engine::{
    marginal_prices, Interval, MarginalPrices, Mechanism, Order, Price, Side, Wh,
};

use crate::community::IntervalRules;

/// One interval's indicative prices (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IndicativePrice {
    /// The interval's start.
    pub start: DateTime<Utc>,
    /// Its end.
    pub end: DateTime<Utc>,
    /// The price of one more kWh taken, network fee included.
    pub import: Price,
    /// The price of one more kWh fed in.
    pub export: Price,
    /// The forecast local price, if the forecast book trades.
    pub local: Option<Price>,
    /// Energy the forecast book trades locally.
    pub local_wh: Wh,
}

/// The indicative prices of `interval` for the forecast book `orders`, cleared by `mechanism`
/// under `rules` (module docs). Orders the rules refuse are left out.
pub fn indicative(
    interval: Interval,
    orders: &[Order],
    rules: IntervalRules,
    mechanism: Mechanism,
) -> IndicativePrice {
    let market = voltmesh_engine::MarketRules {
        tariffs: rules.tariffs,
        max_order_wh: rules.max_order_wh,
    };
    let MarginalPrices {
        import,
        export,
        local: traded,
        local_wh,
    } = marginal_prices(orders, market, rules.network_fee, mechanism);
    IndicativePrice {
        start: interval.start(),
        end: interval.end(),
        import,
        export,
        local: traded,
        local_wh,
    }
}

/// A price as a JSON number with its six decimals (exact, no float on the way).
fn number(price: Price) -> Box<RawValue> {
    // A decimal with digits, a point and a sign only: always a valid JSON number.
    RawValue::from_string(price.to_string())
        .unwrap_or_else(|_| RawValue::from_string("0".to_owned()).expect("0 is JSON"))
}

/// One slot of evcc's `custom` tariff forecast.
#[derive(Debug, Serialize)]
pub struct EvccSlot {
    /// RFC 3339.
    pub start: DateTime<Utc>,
    /// RFC 3339.
    pub end: DateTime<Utc>,
    /// Currency per kWh.
    pub value: Box<RawValue>,
}

/// evcc's `custom` tariff forecast: the import side for `tariffs: grid:`, the export side for
/// `tariffs: feedin:`.
pub fn evcc_forecast(prices: &[IndicativePrice], side: Side) -> Vec<EvccSlot> {
    prices
        .iter()
        .map(|p| EvccSlot {
            start: p.start,
            end: p.end,
            value: number(match side {
                Side::Buy => p.import,
                Side::Sell => p.export,
            }),
        })
        .collect()
}

/// EMHASS's runtime price parameters, one value per interval from the first.
#[derive(Debug, Serialize)]
pub struct EmhassForecast {
    /// Cost of taking a kWh, currency/kWh.
    pub load_cost_forecast: Vec<Box<RawValue>>,
    /// Price of feeding in a kWh, currency/kWh.
    pub prod_price_forecast: Vec<Box<RawValue>>,
}

/// The EMHASS parameters of `prices`.
pub fn emhass_forecast(prices: &[IndicativePrice]) -> EmhassForecast {
    EmhassForecast {
        load_cost_forecast: prices.iter().map(|p| number(p.import)).collect(),
        prod_price_forecast: prices.iter().map(|p| number(p.export)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use voltmesh_engine::{IntervalSpec, ParticipantId, Tariffs, K};

    use super::*;

    fn p(s: &str) -> Price {
        s.parse().unwrap()
    }

    fn rules() -> IntervalRules {
        IntervalRules {
            tariffs: Tariffs::new(p("0.08"), p("0.32")).unwrap(),
            network_fee: p("0.01"),
            max_order_wh: 100_000,
            mechanism: Mechanism::Uniform { k: K::HALF },
        }
    }

    fn order(who: &str, side: Side, wh: Wh, limit: &str) -> Order {
        Order {
            id: format!("{who}-{side}").as_str().into(),
            participant: ParticipantId::from(who),
            side,
            quantity_wh: wh,
            limit_price: p(limit),
            seq: 0,
        }
    }

    fn interval() -> Interval {
        IntervalSpec::DEFAULT.first_open(DateTime::from_timestamp(1_790_000_000, 0).unwrap())
    }

    fn signal(orders: &[Order]) -> IndicativePrice {
        indicative(interval(), orders, rules(), rules().mechanism)
    }

    #[test]
    fn a_surplus_makes_importing_cheap_and_a_deficit_makes_exporting_pay() {
        // Surplus: 1,000 Wh offered at 0.10, 400 Wh wanted at up to 0.30: the partly filled
        // seller sets the price, 0.10, and sell volume is left over. One more kWh taken costs
        // 0.10 + 0.01; one more fed in earns the feed-in tariff (nobody left to buy it).
        let surplus = signal(&[
            order("a", Side::Sell, 1_000, "0.10"),
            order("b", Side::Buy, 400, "0.30"),
        ]);
        assert_eq!(surplus.local, Some(p("0.10")));
        assert_eq!((surplus.import, surplus.export), (p("0.11"), p("0.08")));
        assert_eq!(surplus.local_wh, 400);
        // Deficit: the mirror image; the partly filled buyer sets the price.
        let deficit = signal(&[
            order("a", Side::Sell, 400, "0.10"),
            order("b", Side::Buy, 1_000, "0.30"),
        ]);
        assert_eq!((deficit.import, deficit.export), (p("0.32"), p("0.30")));
        // Both fully matched at 0.20 (k = 0.5 between 0.10 and 0.30): nothing left either way.
        let balanced = signal(&[
            order("a", Side::Sell, 400, "0.10"),
            order("b", Side::Buy, 400, "0.30"),
        ]);
        assert_eq!(balanced.local, Some(p("0.20")));
        assert_eq!((balanced.import, balanced.export), (p("0.32"), p("0.08")));
    }

    #[test]
    fn without_a_trade_the_best_unmatched_limit_is_the_local_price() {
        // Only sellers: importing costs the cheapest ask plus the fee.
        let sellers = signal(&[
            order("a", Side::Sell, 500, "0.12"),
            order("b", Side::Sell, 500, "0.09"),
        ]);
        assert_eq!(sellers.local, None);
        assert_eq!((sellers.import, sellers.export), (p("0.10"), p("0.08")));
        // Only buyers: exporting earns the dearest bid.
        let buyers = signal(&[order("a", Side::Buy, 500, "0.25")]);
        assert_eq!((buyers.import, buyers.export), (p("0.32"), p("0.25")));
        // An empty book: the utility's prices.
        let empty = signal(&[]);
        assert_eq!((empty.import, empty.export), (p("0.32"), p("0.08")));
        // A limit outside the tariffs is refused by the engine, not used.
        let outside = signal(&[order("a", Side::Sell, 500, "0.05")]);
        assert_eq!(outside.import, p("0.32"));
    }

    #[test]
    fn pay_as_bid_uses_the_volume_weighted_price_and_import_never_exceeds_retail() {
        let mut rules = rules();
        rules.mechanism = Mechanism::PayAsBid {
            pricing: Default::default(),
        };
        let s = indicative(
            interval(),
            &[
                order("a", Side::Sell, 1_000, "0.31"),
                order("b", Side::Buy, 500, "0.32"),
            ],
            rules,
            rules.mechanism,
        );
        assert!(s.local.is_some());
        assert_eq!(s.import, p("0.32"), "0.31.. + 0.01 is capped at retail");
    }

    #[test]
    fn evcc_and_emhass_formats() {
        let s = signal(&[
            order("a", Side::Sell, 1_000, "0.10"),
            order("b", Side::Buy, 400, "0.30"),
        ]);
        let evcc = serde_json::to_value(evcc_forecast(&[s], Side::Buy)).unwrap();
        assert_eq!(evcc[0]["value"].as_f64(), Some(0.11));
        assert_eq!(
            evcc[0]["start"],
            s.start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        assert_eq!(
            DateTime::parse_from_rfc3339(evcc[0]["end"].as_str().unwrap()).unwrap(),
            s.end
        );
        let text = serde_json::to_string(&evcc_forecast(&[s], Side::Sell)).unwrap();
        assert!(text.contains(r#""value":0.080000"#), "{text}");
        let emhass = serde_json::to_value(emhass_forecast(&[s, s])).unwrap();
        assert_eq!(emhass["load_cost_forecast"][1].as_f64(), Some(0.11));
        assert_eq!(emhass["prod_price_forecast"].as_array().unwrap().len(), 2);
    }
}
