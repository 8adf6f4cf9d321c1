//! What a clearing produces.

use serde::{Deserialize, Serialize};

use crate::{Mechanism, Money, OrderId, ParticipantId, Price, Side, Wh};

/// One match between a buy and a sell order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Trade {
    /// The buy order.
    pub buy_id: OrderId,
    /// The sell order.
    pub sell_id: OrderId,
    /// Who buys.
    pub buyer: ParticipantId,
    /// Who sells.
    pub seller: ParticipantId,
    /// Energy traded, always positive.
    pub quantity_wh: Wh,
    /// Price per kWh, within both orders' limits.
    pub price: Price,
}

impl Trade {
    /// What the buyer pays the seller, exact.
    pub fn value(&self) -> Money {
        Money::of(self.quantity_wh, self.price)
    }
}

/// An order's part that did not trade.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Unfilled {
    /// The order.
    pub id: OrderId,
    /// Its side.
    pub side: Side,
    /// Energy not traded, always positive.
    pub remaining_wh: Wh,
}

/// The uniform auction's range of market-clearing prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PriceRange {
    /// Lowest clearing price.
    pub lo: Price,
    /// Highest clearing price.
    pub hi: Price,
}

/// The result of clearing one interval's book.
///
/// # Ordering invariant
/// `trades` are in matching order; `unfilled` lists bids in price-time priority, then asks in
/// price-time priority. Neither depends on the order in which orders were handed to the book.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClearingOutcome {
    /// The mechanism that produced this outcome.
    pub mechanism: Mechanism,
    /// The single price of every trade (uniform auction with volume only).
    pub clearing_price: Option<Price>,
    /// The range the uniform price was chosen from (uniform auction with volume only).
    pub price_range: Option<PriceRange>,
    /// Total energy traded.
    pub volume_wh: Wh,
    /// The trades.
    pub trades: Vec<Trade>,
    /// Orders with energy left over.
    pub unfilled: Vec<Unfilled>,
}

impl ClearingOutcome {
    /// Total money that changes hands between participants, exact.
    pub fn turnover(&self) -> Money {
        self.trades.iter().map(Trade::value).sum()
    }
}
