//! The Voltmesh market engine: orders, market intervals, tariffs, the clearing mechanisms and
//! settlement.
//!
//! # Determinism
//!
//! Every neighborhood node re-executes this crate on the same orders and must produce the same
//! bytes, so the engine is pure: no I/O, no clock, no randomness and no floating point. Prices are
//! fixed-point integers ([`Price`], micro-units per kWh, i.e. a `rust_decimal` value at scale 6),
//! energy is integer watt-hours and money is an exact integer count of nano-units ([`Money`]).
//! Hash maps are used only for lookups, never iterated to produce output.
//!
//! # Mechanisms
//!
//! * [`Mechanism::Uniform`]: periodic uniform-price double auction (pay-as-clear), see [`uniform`].
//! * [`Mechanism::PayAsBid`]: periodic discriminatory matching, see [`pay_as_bid`].
//! * [`Mechanism::Continuous`]: continuous double auction with price-time priority, see
//!   [`continuous`].
//!
//! Periodic mechanisms collect an interval's orders in a [`CallAuction`] and clear them at gate
//! closure; the continuous one matches on arrival in a [`ContinuousBook`]. Both admit orders through
//! the same [`MarketRules`], so a price outside `[feed-in tariff, retail price]` is rejected with the
//! same [`RejectReason`] everywhere. [`settlement`] turns trades and metered energy into bills, and
//! [`rounding`] rounds bill lines to the currency's minor unit, carrying the rest (nothing is lost).
#![deny(clippy::float_arithmetic, clippy::print_stdout, clippy::print_stderr)]

pub mod admission;
pub mod book_file;
pub mod call_auction;
#[cfg(feature = "clap")]
pub mod cli;
pub mod config;
pub mod continuous;
pub mod interval;
pub mod marginal;
pub mod matching;
pub mod money;
pub mod order;
pub mod outcome;
pub mod pay_as_bid;
pub mod price;
pub mod rounding;
pub mod settlement;
pub mod uniform;

mod key;
mod radix;
mod walk;

pub use admission::AdmissionLimits;
pub use call_auction::CallAuction;
pub use config::{ConfigError, MarketConfig, MarketRules, Mechanism, PayAsBidPricing, Tariffs, K};
pub use continuous::{BookIntegrityError, ContinuousBook, Submitted};
pub use interval::{Interval, IntervalError, IntervalSpec};
pub use marginal::{marginal_prices, MarginalPrices};
pub use matching::{Matching, TradeRef};
pub use money::Money;
pub use order::{Order, OrderId, ParticipantId, RejectReason, Side};
pub use outcome::{ClearingOutcome, PriceRange, Trade, Unfilled};
pub use price::{Price, PriceError};
pub use settlement::{Bill, Settlement, SettlementError, UtilityExchange};

/// Energy in watt-hours, as meters count it.
pub type Wh = u64;

#[cfg(test)]
pub(crate) mod test_books {
    use crate::{Order, Side};

    /// Orders from `(quantity_wh, limit)` pairs: bids `b0, b1, …` then asks `a0, a1, …`, with
    /// sequence numbers in that order.
    pub(crate) fn book(bids: &[(u64, &str)], asks: &[(u64, &str)]) -> Vec<Order> {
        let side = |side: Side, prefix: &'static str, list: &[(u64, &str)]| {
            list.iter()
                .enumerate()
                .map(|(i, &(q, p))| Order {
                    id: format!("{prefix}{i}").into(),
                    participant: format!("{prefix}{i}-owner").into(),
                    side,
                    quantity_wh: q,
                    limit_price: p.parse().expect("a test price"),
                    seq: 0,
                })
                .collect::<Vec<_>>()
        };
        let mut all = side(Side::Buy, "b", bids);
        all.extend(side(Side::Sell, "a", asks));
        for (seq, o) in all.iter_mut().enumerate() {
            o.seq = seq as u64;
        }
        all
    }
}
