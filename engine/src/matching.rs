//! The result of a periodic clearing, borrowed from the orders it cleared.
//!
//! # Ordering invariant
//! [`Matching::trades`] yields trades in matching order (best bid with best ask first);
//! [`Matching::unfilled`] yields bids in priority order, then asks in priority order. Neither
//! depends on the order of the input slice.
//!
//! # Performance
//! Clearing stops at the walk: a [`Matching`] holds the sorted priority keys and where the walk
//! stopped; trades are replayed from the keys and orders are named only when asked. [`Matching::to_outcome`] materialises an owned
//! [`ClearingOutcome`] (one pass, cloning ids) for callers that keep the result past the book.

use crate::key::{self, Key};
use crate::walk::{Sides, Walk};
use crate::{ClearingOutcome, Mechanism, Order, Price, PriceRange, Trade, Unfilled, Wh};

/// How the pairs of a matching are priced.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Pricing {
    /// Every pair at one price (`None` without volume).
    Uniform {
        mechanism: Mechanism,
        price: Option<Price>,
        range: Option<PriceRange>,
    },
    /// Each pair at its own price.
    PerPair {
        mechanism: Mechanism,
        price_of: fn(&Order, &Order) -> Price,
    },
}

/// A cleared book: who trades with whom, how much and at what price.
#[derive(Debug)]
pub struct Matching<'a> {
    orders: &'a [Order],
    sides: Sides,
    walk: Walk,
    pricing: Pricing,
}

/// One trade of a [`Matching`], borrowing its orders.
#[derive(Debug, Clone, Copy)]
pub struct TradeRef<'a> {
    /// The buy order.
    pub buy: &'a Order,
    /// The sell order.
    pub sell: &'a Order,
    /// Energy traded.
    pub quantity_wh: Wh,
    /// Price per kWh.
    pub price: Price,
}

impl TradeRef<'_> {
    /// The owned trade.
    pub fn to_trade(&self) -> Trade {
        Trade {
            buy_id: self.buy.id.clone(),
            sell_id: self.sell.id.clone(),
            buyer: self.buy.participant.clone(),
            seller: self.sell.participant.clone(),
            quantity_wh: self.quantity_wh,
            price: self.price,
        }
    }
}

impl<'a> Matching<'a> {
    pub(crate) fn new(orders: &'a [Order], sides: Sides, walk: Walk, pricing: Pricing) -> Self {
        Matching {
            orders,
            sides,
            walk,
            pricing,
        }
    }

    /// The mechanism that cleared.
    pub fn mechanism(&self) -> Mechanism {
        match self.pricing {
            Pricing::Uniform { mechanism, .. } | Pricing::PerPair { mechanism, .. } => mechanism,
        }
    }

    /// The uniform price (uniform mechanism with volume only).
    pub fn clearing_price(&self) -> Option<Price> {
        match self.pricing {
            Pricing::Uniform { price, .. } => price,
            Pricing::PerPair { .. } => None,
        }
    }

    /// The range the uniform price was chosen from (uniform mechanism with volume only).
    pub fn price_range(&self) -> Option<PriceRange> {
        match self.pricing {
            Pricing::Uniform { range, .. } => range,
            Pricing::PerPair { .. } => None,
        }
    }

    /// Total energy traded.
    pub fn volume_wh(&self) -> Wh {
        self.walk.volume
    }

    /// Number of trades.
    pub fn trade_count(&self) -> usize {
        self.walk.pair_count
    }

    /// The trades, in matching order.
    pub fn trades(&self) -> impl ExactSizeIterator<Item = TradeRef<'a>> + '_ {
        let orders = self.orders;
        self.walk.pairs(&self.sides, orders).map(move |pair| {
            let buy = &orders[key::idx(self.sides.bids[pair.bid])];
            let sell = &orders[key::idx(self.sides.asks[pair.ask])];
            let price = match self.pricing {
                Pricing::Uniform { price, .. } => price.unwrap_or_default(),
                Pricing::PerPair { price_of, .. } => price_of(buy, sell),
            };
            TradeRef {
                buy,
                sell,
                quantity_wh: pair.quantity_wh,
                price,
            }
        })
    }

    /// Orders with energy left and how much: bids in priority order, then asks.
    pub fn unfilled(&self) -> impl Iterator<Item = (&'a Order, Wh)> + '_ {
        leftovers(
            self.orders,
            &self.sides.bids,
            self.walk.next_bid,
            self.walk.bid_left,
        )
        .chain(leftovers(
            self.orders,
            &self.sides.asks,
            self.walk.next_ask,
            self.walk.ask_left,
        ))
    }

    /// An owned copy of the result.
    pub fn to_outcome(&self) -> ClearingOutcome {
        ClearingOutcome {
            mechanism: self.mechanism(),
            clearing_price: self.clearing_price(),
            price_range: self.price_range(),
            volume_wh: self.volume_wh(),
            trades: self.trades().map(|t| t.to_trade()).collect(),
            unfilled: self
                .unfilled()
                .map(|(o, remaining_wh)| Unfilled {
                    id: o.id.clone(),
                    side: o.side,
                    remaining_wh,
                })
                .collect(),
        }
    }
}

/// The orders of one side from position `next` on, the first with `left` Wh remaining.
fn leftovers<'a, 'k>(
    orders: &'a [Order],
    keys: &'k [Key],
    next: usize,
    left: Wh,
) -> impl Iterator<Item = (&'a Order, Wh)> + 'k
where
    'a: 'k,
{
    keys.iter().enumerate().skip(next).map(move |(pos, &k)| {
        (
            &orders[key::idx(k)],
            if pos == next {
                left
            } else {
                key::quantity(k, orders)
            },
        )
    })
}
