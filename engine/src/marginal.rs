//! Marginal prices of one interval's book: what one more kWh taken from, or fed into, the
//! neighborhood would cost or earn, given how the book clears. The meter bridge's local price
//! signal (`voltmesh_meter_bridge::household::price_signal`) runs it on forecast books; the
//! simulation's flexible loads plan with it.
//!
//! # The rule
//! The book is cleared by the engine (orders the rules refuse are left out). The **local**
//! price is the clearing price (the trades' volume-weighted price under pay-as-bid), or, when
//! nothing trades, the best unmatched limit on the side that matters.
//! - **import**: when sell volume is left unmatched (a local surplus), the local price (or the
//!   cheapest unmatched ask's limit) plus the network fee, never above retail; otherwise retail.
//! - **export**: when buy volume is left unmatched (a local deficit), the local price (or the
//!   dearest unmatched bid's limit), never below feed-in; otherwise the feed-in tariff.

use std::collections::BTreeMap;

use crate::{CallAuction, MarketRules, Mechanism, Order, OrderId, Price, Side, Tariffs};

/// The marginal prices of a book (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarginalPrices {
    /// The price of one more kWh taken, network fee included.
    pub import: Price,
    /// The price of one more kWh fed in.
    pub export: Price,
    /// The local price, if the book trades.
    pub local: Option<Price>,
    /// Energy the book trades locally, Wh.
    pub local_wh: u64,
}

/// The marginal prices of the book `orders`, cleared by `mechanism` under `rules`, with
/// `network_fee` per locally traded kWh (module docs).
#[must_use]
pub fn marginal_prices(
    orders: &[Order],
    rules: MarketRules,
    network_fee: Price,
    mechanism: Mechanism,
) -> MarginalPrices {
    let mut book = CallAuction::with_capacity(rules, orders.len());
    for order in orders {
        let _ = book.submit(order.clone());
    }
    let outcome = book.clear(mechanism);
    let limits: BTreeMap<&OrderId, Price> = book
        .orders()
        .iter()
        .map(|o| (&o.id, o.limit_price))
        .collect();
    let unmatched = |side: Side| {
        outcome
            .unfilled
            .iter()
            .filter(move |u| u.side == side)
            .filter_map(|u| limits.get(&u.id).copied())
    };
    let traded = outcome.clearing_price.or_else(|| {
        let volume = i128::from(outcome.volume_wh);
        (volume > 0).then(|| {
            // Volume-weighted micros per kWh: turnover (nanos) / Wh.
            Price::from_micros(i64::try_from(outcome.turnover().nanos() / volume).unwrap_or(0))
                .unwrap_or(Price::ZERO)
        })
    });
    let Tariffs { feed_in, retail } = rules.tariffs;
    let import = match (traded, unmatched(Side::Sell).min()) {
        (_, None) => retail,
        (Some(local), Some(_)) | (None, Some(local)) => add(local, network_fee).min(retail),
    };
    let export = match (traded, unmatched(Side::Buy).max()) {
        (_, None) => feed_in,
        (Some(local), Some(_)) | (None, Some(local)) => local.max(feed_in),
    };
    MarginalPrices {
        import,
        export,
        local: traded,
        local_wh: outcome.volume_wh,
    }
}

fn add(a: Price, b: Price) -> Price {
    Price::from_micros(a.micros().saturating_add(b.micros())).unwrap_or(Price::MAX)
}
