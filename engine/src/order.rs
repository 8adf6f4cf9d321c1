//! Orders and the reasons an order is refused.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{Price, Wh};

/// Buy (bid) or sell (ask).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// A bid: the participant wants to buy energy.
    Buy,
    /// An ask: the participant wants to sell energy.
    Sell,
}

impl Side {
    /// The other side.
    pub const fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        })
    }
}

macro_rules! shared_str_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Cheap to clone (a shared string); ordered and hashed by its text.
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl $name {
            /// The id's text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                Self(Arc::from(text))
            }
        }

        impl From<String> for $name {
            fn from(text: String) -> Self {
                Self(Arc::from(text))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

shared_str_id!(
    /// An order's id, unique within a market interval.
    OrderId
);
shared_str_id!(
    /// A participant's pseudonym (bound to its keys in genesis).
    ParticipantId
);

/// A limit order for one market interval.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Order {
    /// Unique within the interval.
    pub id: OrderId,
    /// Who buys or sells.
    pub participant: ParticipantId,
    /// Buy or sell.
    pub side: Side,
    /// Energy in Wh; admitted orders have `quantity_wh > 0`.
    pub quantity_wh: Wh,
    /// The worst price per kWh the participant accepts: the most a buyer pays, the least a seller
    /// takes.
    pub limit_price: Price,
    /// Submission sequence: earlier orders win price ties.
    pub seq: u64,
}

impl Order {
    /// Whether this order would trade against `other` (opposite sides, prices cross).
    pub fn crosses(&self, other: &Order) -> bool {
        match (self.side, other.side) {
            (Side::Buy, Side::Sell) => self.limit_price >= other.limit_price,
            (Side::Sell, Side::Buy) => other.limit_price >= self.limit_price,
            _ => false,
        }
    }
}

/// Why a book refused an order or a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    /// The quantity is zero.
    #[error("quantity must be positive")]
    ZeroQuantity,
    /// The quantity exceeds the market's per-order bound.
    #[error("quantity {quantity_wh} Wh exceeds the per-order maximum of {max_wh} Wh")]
    QuantityTooLarge {
        /// The order's quantity.
        quantity_wh: Wh,
        /// The market's bound.
        max_wh: Wh,
    },
    /// The limit is below what the utility pays for feed-in: no seller needs to sell for less, and
    /// no buyer may bid below it.
    #[error("limit price {limit} is below the feed-in tariff {feed_in}")]
    BelowFeedIn {
        /// The order's limit.
        limit: Price,
        /// The feed-in tariff.
        feed_in: Price,
    },
    /// The limit is above the utility's retail price.
    #[error("limit price {limit} is above the retail price {retail}")]
    AboveRetail {
        /// The order's limit.
        limit: Price,
        /// The retail price.
        retail: Price,
    },
    /// An order with this id is already in the book.
    #[error("duplicate order id {0:?}")]
    DuplicateId(OrderId),
    /// No live order has this id.
    #[error("no live order with id {0:?}")]
    UnknownOrder(OrderId),
    /// The book has closed (gate closure) and takes no more orders.
    #[error("the market for this interval is closed")]
    Closed,
}
