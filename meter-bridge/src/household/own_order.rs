//! A household's own order, published by its gateway over MQTT.
//!
//! # Message (topic [`orders_topic`](crate::household::topic::orders_topic), QoS 1, not retained)
//! ```json
//! {"interval_start": "2026-11-22T08:00:00Z", "side": "buy", "quantity_wh": 400, "limit_price": "0.25"}
//! ```
//! or a JSON array of such objects (at most [`MAX_ORDERS_PER_MESSAGE`]), e.g. a gateway's plan for
//! the next hours. `interval_start` is RFC 3339 or Unix seconds and must be the start of a market
//! interval; prices travel as decimal strings (as everywhere in Voltmesh); unknown fields are
//! refused.
//!
//! # Bid curves
//! Several objects for one interval are a **bid curve**: each is a block, and each block is an
//! order of its own, e.g. a heat pump's "2 kWh at up to 0.20, 1 kWh more at up to 0.15":
//! ```json
//! [{"interval_start": 1795000500, "side": "buy", "quantity_wh": 2000, "limit_price": "0.20"},
//!  {"interval_start": 1795000500, "side": "buy", "quantity_wh": 1000, "limit_price": "0.15"}]
//! ```
//! At most [`MAX_BLOCKS_PER_INTERVAL`] blocks per interval, all on one side (a household does not
//! trade with itself), each checked like a single order.
//!
//! # Rules ([`HouseholdOrder::to_order`])
//! * the interval's gate is still open when the message arrives, and the interval starts at most
//!   [`MAX_INTERVALS_AHEAD`] intervals after the one open now;
//! * `0 < quantity_wh <= max_order_wh` (the bridge's `ingest.orders.max_order_wh`);
//! * `feed_in <= limit_price <= retail` (the `[settlement]` tariffs: the market refuses anything
//!   outside).
//!
//! For its interval, a household's own orders replace the order the bridge would plan from its
//! forecast. The first block's id is the bridge's deterministic [`order_id`] and block `i > 0`'s
//! is that id with `-<i>` appended ([`block_order_id`]), so the same message twice is the same
//! orders; a later message naming an interval, arriving before the bridge plans that interval,
//! replaces the whole set the earlier one gave it (a curve of three blocks followed by one order
//! leaves one order).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use voltmesh_engine::{
    Interval, IntervalSpec, Order, OrderId, ParticipantId, Price, Side, Tariffs, Wh,
};

use crate::household::plan::order_id;

/// Most orders one message may carry.
pub const MAX_ORDERS_PER_MESSAGE: usize = 96;
/// Most blocks of one interval's bid curve (the ledger admits 16 orders per participant and
/// interval by default).
pub const MAX_BLOCKS_PER_INTERVAL: usize = 8;
/// How far ahead (in intervals after the first open one) a household may place orders.
pub const MAX_INTERVALS_AHEAD: i64 = 192;

/// One order as a household gateway publishes it (module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HouseholdOrder {
    /// Start of the delivery interval (serialized as RFC 3339; Unix seconds also accepted).
    #[serde(deserialize_with = "rfc3339_or_unix")]
    pub interval_start: DateTime<Utc>,
    /// Buy or sell.
    pub side: Side,
    /// Energy, Wh (> 0).
    pub quantity_wh: Wh,
    /// Most it pays (buy) or least it takes (sell) per kWh.
    pub limit_price: Price,
}

/// Why a household order message is refused.
#[derive(Debug, thiserror::Error)]
pub enum HouseholdOrderError {
    /// Not JSON, not the message's shape, or unknown fields.
    #[error("malformed household order: {0}")]
    Malformed(#[from] serde_json::Error),
    /// An empty array.
    #[error("no orders in the message")]
    Empty,
    /// Too many orders in one message.
    #[error("{0} orders in one message (at most {MAX_ORDERS_PER_MESSAGE})")]
    TooMany(usize),
    /// More blocks for one interval than [`MAX_BLOCKS_PER_INTERVAL`].
    #[error("{count} orders for interval {interval} (a bid curve has at most {MAX_BLOCKS_PER_INTERVAL} blocks)")]
    TooManyBlocks {
        /// The interval's start.
        interval: DateTime<Utc>,
        /// Blocks sent.
        count: usize,
    },
    /// Buy and sell blocks for one interval.
    #[error("buy and sell orders for interval {0}: a bid curve is on one side")]
    MixedSides(DateTime<Utc>),
    /// `interval_start` is not the start of an interval.
    #[error("interval_start {0} is not the start of a market interval")]
    NotAnIntervalStart(DateTime<Utc>),
    /// The interval's gate has closed.
    #[error("the gate of interval {interval} is closed (orders were due before {closure})")]
    GateClosed {
        /// The interval's start.
        interval: DateTime<Utc>,
        /// Its gate closure.
        closure: DateTime<Utc>,
    },
    /// The bridge has already planned and submitted the interval's orders.
    #[error("the orders of interval {0} are already submitted")]
    AlreadyPlanned(DateTime<Utc>),
    /// Too far in the future.
    #[error("interval {0} is more than {MAX_INTERVALS_AHEAD} intervals ahead")]
    TooFarAhead(DateTime<Utc>),
    /// Zero quantity.
    #[error("quantity_wh must be > 0")]
    ZeroQuantity,
    /// Quantity above the bridge's bound.
    #[error("quantity_wh {got} exceeds the maximum of {max}")]
    QuantityTooLarge {
        /// Asked.
        got: Wh,
        /// Bound.
        max: Wh,
    },
    /// Limit price outside the tariffs.
    #[error("limit_price {price} is outside the tariffs [{feed_in}, {retail}]")]
    PriceOutsideTariffs {
        /// Asked.
        price: Price,
        /// Lowest accepted.
        feed_in: Price,
        /// Highest accepted.
        retail: Price,
    },
}

/// What a household's order is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderBounds {
    /// The market's intervals.
    pub spec: IntervalSpec,
    /// Limit prices must lie within these.
    pub tariffs: Tariffs,
    /// Largest quantity accepted.
    pub max_order_wh: Wh,
}

impl HouseholdOrder {
    /// The engine order for `participant`, block `block` of its interval's curve (0 for a single
    /// order), checked against `bounds` at `now` (module rules).
    ///
    /// # Errors
    /// [`HouseholdOrderError::NotAnIntervalStart`], [`HouseholdOrderError::GateClosed`],
    /// [`HouseholdOrderError::TooFarAhead`], [`HouseholdOrderError::ZeroQuantity`],
    /// [`HouseholdOrderError::QuantityTooLarge`] or
    /// [`HouseholdOrderError::PriceOutsideTariffs`].
    pub fn to_order(
        &self,
        participant: &ParticipantId,
        block: usize,
        bounds: OrderBounds,
        now: DateTime<Utc>,
    ) -> Result<(Interval, Order), HouseholdOrderError> {
        let interval = Interval::starting_at(bounds.spec, self.interval_start)
            .ok_or(HouseholdOrderError::NotAnIntervalStart(self.interval_start))?;
        if !interval.is_open_at(now) {
            return Err(HouseholdOrderError::GateClosed {
                interval: interval.start(),
                closure: interval.gate_closure(),
            });
        }
        let first_open = bounds.spec.first_open(now);
        let ahead = (interval.start_unix() - first_open.start_unix())
            / i64::from(bounds.spec.length_secs().max(1));
        if ahead > MAX_INTERVALS_AHEAD {
            return Err(HouseholdOrderError::TooFarAhead(interval.start()));
        }
        if self.quantity_wh == 0 {
            return Err(HouseholdOrderError::ZeroQuantity);
        }
        if self.quantity_wh > bounds.max_order_wh {
            return Err(HouseholdOrderError::QuantityTooLarge {
                got: self.quantity_wh,
                max: bounds.max_order_wh,
            });
        }
        let Tariffs { feed_in, retail } = bounds.tariffs;
        if self.limit_price < feed_in || self.limit_price > retail {
            return Err(HouseholdOrderError::PriceOutsideTariffs {
                price: self.limit_price,
                feed_in,
                retail,
            });
        }
        let order = Order {
            id: block_order_id(participant, interval, self.side, block),
            participant: participant.clone(),
            side: self.side,
            quantity_wh: self.quantity_wh,
            limit_price: self.limit_price,
            seq: 0,
        };
        Ok((interval, order))
    }

    /// The message's JSON (one object).
    ///
    /// # Errors
    /// Never in practice (every field serializes); the `serde_json` error otherwise.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

/// The id of block `block` of a household's curve for `interval`: [`order_id`] for block 0,
/// with `-<block>` appended after.
pub fn block_order_id(
    participant: &ParticipantId,
    interval: Interval,
    side: Side,
    block: usize,
) -> OrderId {
    let id = order_id(participant, interval, side);
    if block == 0 {
        id
    } else {
        OrderId::from(format!("{id}-{block}"))
    }
}

/// Parses a message: one order object or an array of them (module docs).
///
/// # Errors
/// [`HouseholdOrderError::Malformed`], [`HouseholdOrderError::Empty`],
/// [`HouseholdOrderError::TooMany`], [`HouseholdOrderError::TooManyBlocks`] or
/// [`HouseholdOrderError::MixedSides`].
pub fn parse_orders(payload: &[u8]) -> Result<Vec<HouseholdOrder>, HouseholdOrderError> {
    let first = payload.iter().find(|b| !b.is_ascii_whitespace());
    let orders = if first == Some(&b'[') {
        serde_json::from_slice::<Vec<HouseholdOrder>>(payload)?
    } else {
        vec![serde_json::from_slice::<HouseholdOrder>(payload)?]
    };
    if orders.is_empty() {
        return Err(HouseholdOrderError::Empty);
    }
    if orders.len() > MAX_ORDERS_PER_MESSAGE {
        return Err(HouseholdOrderError::TooMany(orders.len()));
    }
    let mut curves: BTreeMap<DateTime<Utc>, (Side, usize)> = BTreeMap::new();
    for order in &orders {
        let (side, count) = curves
            .entry(order.interval_start)
            .or_insert((order.side, 0));
        if *side != order.side {
            return Err(HouseholdOrderError::MixedSides(order.interval_start));
        }
        *count += 1;
        if *count > MAX_BLOCKS_PER_INTERVAL {
            return Err(HouseholdOrderError::TooManyBlocks {
                interval: order.interval_start,
                count: orders
                    .iter()
                    .filter(|o| o.interval_start == order.interval_start)
                    .count(),
            });
        }
    }
    Ok(orders)
}

/// RFC 3339 text or Unix seconds.
fn rfc3339_or_unix<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Unix(i64),
        Text(String),
    }
    match Repr::deserialize(d)? {
        Repr::Unix(secs) => DateTime::from_timestamp(secs, 0)
            .ok_or_else(|| serde::de::Error::custom(format!("unix time {secs} out of range"))),
        Repr::Text(text) => DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| serde::de::Error::custom(format!("interval_start {text:?}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds() -> OrderBounds {
        OrderBounds {
            spec: IntervalSpec::DEFAULT,
            tariffs: Tariffs::new("0.08".parse().unwrap(), "0.32".parse().unwrap()).unwrap(),
            max_order_wh: 10_000,
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap()
    }

    fn next_start() -> i64 {
        IntervalSpec::DEFAULT.first_open(now()).start_unix()
    }

    #[test]
    fn one_or_many_in_either_time_format() {
        let start = next_start();
        let text = DateTime::from_timestamp(start, 0).unwrap().to_rfc3339();
        let one = format!(
            r#"{{"interval_start":"{text}","side":"buy","quantity_wh":400,"limit_price":"0.25"}}"#
        );
        let parsed = parse_orders(one.as_bytes()).unwrap();
        assert_eq!(parsed.len(), 1);
        let p = ParticipantId::from("hh-01");
        let (interval, order) = parsed[0].to_order(&p, 0, bounds(), now()).unwrap();
        assert_eq!(interval.start_unix(), start);
        assert_eq!((order.side, order.quantity_wh), (Side::Buy, 400));
        assert_eq!(order.limit_price.to_string(), "0.250000");
        assert_eq!(order.id, order_id(&p, interval, Side::Buy));
        let many = format!(
            r#" [{{"interval_start":{start},"side":"sell","quantity_wh":1,"limit_price":"0.08"}},
                {{"interval_start":{},"side":"buy","quantity_wh":2,"limit_price":"0.32"}}]"#,
            start + 900
        );
        let parsed = parse_orders(many.as_bytes()).unwrap();
        assert_eq!(parsed[0].interval_start.timestamp(), start);
        assert_eq!(parsed[1].side, Side::Buy);
        let json = parsed[0].to_json().unwrap();
        assert_eq!(parse_orders(&json).unwrap()[0], parsed[0], "round trip");
    }

    #[test]
    fn a_bid_curve_is_one_order_per_block_with_its_own_id() {
        let start = next_start();
        let curve = format!(
            r#"[{{"interval_start":{start},"side":"buy","quantity_wh":2000,"limit_price":"0.20"}},
                {{"interval_start":{start},"side":"buy","quantity_wh":1000,"limit_price":"0.15"}},
                {{"interval_start":{},"side":"sell","quantity_wh":500,"limit_price":"0.10"}}]"#,
            start + 900
        );
        let parsed = parse_orders(curve.as_bytes()).unwrap();
        assert_eq!(parsed.len(), 3);
        let p = ParticipantId::from("hh-01");
        let (interval, first) = parsed[0].to_order(&p, 0, bounds(), now()).unwrap();
        let (_, second) = parsed[1].to_order(&p, 1, bounds(), now()).unwrap();
        assert_eq!(first.id, order_id(&p, interval, Side::Buy));
        assert_eq!(second.id.as_str(), format!("{}-1", first.id.as_str()));
        assert_eq!(
            (second.quantity_wh, second.limit_price.to_string()),
            (1000, "0.150000".to_owned())
        );
        assert_eq!(
            (0..=MAX_BLOCKS_PER_INTERVAL)
                .map(|b| block_order_id(&p, interval, Side::Buy, b))
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            MAX_BLOCKS_PER_INTERVAL + 1,
            "distinct ids"
        );
    }

    #[test]
    fn refuses_bad_messages() {
        let start = next_start();
        let msg = |fields: &str| {
            format!(r#"{{"interval_start":{start},"side":"buy","quantity_wh":400{fields}}}"#)
        };
        for bad in [
            msg(r#","limit_price":0.25"#),
            msg(r#","limit_price":"0.25","extra":1"#),
            msg(""),
            r#"{"interval_start":"yesterday","side":"buy","quantity_wh":1,"limit_price":"0.1"}"#
                .to_owned(),
            msg(r#","limit_price":"0.25""#).replace("400", "-4"),
            msg(r#","limit_price":"0.25""#).replace("buy", "hold"),
            "[]".to_owned(),
            "not json".to_owned(),
        ] {
            assert!(parse_orders(bad.as_bytes()).is_err(), "{bad}");
        }
        let block = msg(r#","limit_price":"0.25""#);
        let nine = format!("[{}]", [block.as_str(); 9].join(","));
        assert!(matches!(
            parse_orders(nine.as_bytes()),
            Err(HouseholdOrderError::TooManyBlocks { count: 9, .. })
        ));
        let mixed = format!("[{block},{}]", block.replace("buy", "sell"));
        assert!(matches!(
            parse_orders(mixed.as_bytes()),
            Err(HouseholdOrderError::MixedSides(_))
        ));
        let p = ParticipantId::from("hh-01");
        let order = |start: i64, q: Wh, price: &str| HouseholdOrder {
            interval_start: DateTime::from_timestamp(start, 0).unwrap(),
            side: Side::Sell,
            quantity_wh: q,
            limit_price: price.parse().unwrap(),
        };
        let check = |o: HouseholdOrder| o.to_order(&p, 0, bounds(), now()).unwrap_err();
        assert!(matches!(
            check(order(start + 1, 1, "0.1")),
            HouseholdOrderError::NotAnIntervalStart(_)
        ));
        assert!(matches!(
            check(order(start - 900, 1, "0.1")),
            HouseholdOrderError::GateClosed { .. }
        ));
        assert!(matches!(
            check(order(start + 900 * (MAX_INTERVALS_AHEAD + 1), 1, "0.1")),
            HouseholdOrderError::TooFarAhead(_)
        ));
        assert!(order(start + 900 * MAX_INTERVALS_AHEAD, 1, "0.1")
            .to_order(&p, 0, bounds(), now())
            .is_ok());
        assert!(matches!(
            check(order(start, 0, "0.1")),
            HouseholdOrderError::ZeroQuantity
        ));
        assert!(matches!(
            check(order(start, 10_001, "0.1")),
            HouseholdOrderError::QuantityTooLarge { .. }
        ));
        assert!(matches!(
            check(order(start, 1, "0.079999")),
            HouseholdOrderError::PriceOutsideTariffs { .. }
        ));
        assert!(matches!(
            check(order(start, 1, "0.320001")),
            HouseholdOrderError::PriceOutsideTariffs { .. }
        ));
    }
}
