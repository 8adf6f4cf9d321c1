//! The order-book file that `voltmesh clear` reads and the report it prints, as pure functions of
//! text, so auditors get the same bytes for the same input on every machine.
//!
//! # Input
//! A JSON array of orders:
//! `{"id": str, "participant": str, "side": "buy"|"sell", "quantity_wh": int,
//!   "limit_price": "decimal string per kWh", "seq": optional int}`; `seq` defaults to the order's
//! position in the array (0-based). Unknown fields, a missing field, a zero or negative quantity, an
//! unknown side, a price that is not a decimal string or has more decimals than the price scale, and
//! a duplicate id are errors that name the offending order ([`BookFileError`]).
//!
//! # Output
//! `{"mechanism", "clearing_price" (uniform only; null without volume), "price_range" (uniform
//! only), "volume_wh", "trades": [{"buy_id", "sell_id", "quantity_wh", "price"}],
//! "unfilled": [{"id", "remaining_wh"}], "rejected": [{"id", "reason"}]}`. Orders that are well
//! formed but break the market's rules (a limit outside the tariffs, a quantity above the per-order
//! maximum) are not errors: they are listed under `rejected` with the reason, as an exchange would.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::{CallAuction, ClearingOutcome, MarketRules, Mechanism, Order, Price, PriceRange, Side};

/// A book file that cannot be cleared; the message names the offending order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookFileError {
    /// The text is not JSON.
    #[error("the orders file is not valid JSON: {0}")]
    NotJson(String),
    /// The JSON is not an array.
    #[error("the orders file must hold a JSON array of orders")]
    NotAnArray,
    /// One order is malformed.
    #[error("order at index {index}{}: {reason}", id.as_deref().map(|id| format!(" (id {id:?})")).unwrap_or_default())]
    BadOrder {
        /// Position in the array (0-based).
        index: usize,
        /// The order's id, when it has a readable one.
        id: Option<String>,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrder {
    id: String,
    participant: String,
    side: String,
    quantity_wh: serde_json::Number,
    limit_price: serde_json::Value,
    #[serde(default)]
    seq: Option<serde_json::Number>,
}

/// The example book of ten households (`engine/examples/book.json`) that `voltmesh clear`
/// clears when it is given no file.
pub const EXAMPLE_BOOK: &str = include_str!("../examples/book.json");

/// Parses a book file into orders, checking each one's form (not the market's rules).
///
/// # Errors
/// [`BookFileError`] for the first malformed order, in array order.
pub fn parse_orders(text: &str) -> Result<Vec<Order>, BookFileError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| BookFileError::NotJson(e.to_string()))?;
    let serde_json::Value::Array(items) = value else {
        return Err(BookFileError::NotAnArray);
    };
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(items.len());
    let mut orders = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let id = item.get("id").and_then(|v| v.as_str()).map(str::to_owned);
        let bad = |reason: String| BookFileError::BadOrder {
            index,
            id: id.clone(),
            reason,
        };
        let raw: RawOrder = serde_json::from_value(item).map_err(|e| bad(e.to_string()))?;
        let side = match raw.side.as_str() {
            "buy" => Side::Buy,
            "sell" => Side::Sell,
            other => {
                return Err(bad(format!(
                    "unknown side {other:?} (expected \"buy\" or \"sell\")"
                )))
            }
        };
        let quantity_wh = match raw.quantity_wh.as_u64() {
            Some(q) if q > 0 => q,
            _ => {
                return Err(bad(format!(
                    "quantity_wh must be a positive integer number of Wh, got {}",
                    raw.quantity_wh
                )))
            }
        };
        let limit_price: Price = match &raw.limit_price {
            serde_json::Value::String(text) => {
                text.parse().map_err(|e| bad(format!("limit_price: {e}")))?
            }
            other => {
                return Err(bad(format!(
                    "limit_price must be a decimal string such as \"0.25\", got {other}"
                )))
            }
        };
        let seq = match raw.seq {
            None => index as u64,
            Some(n) => n
                .as_u64()
                .ok_or_else(|| bad(format!("seq must be a non-negative integer, got {n}")))?,
        };
        if raw.id.is_empty() {
            return Err(bad("id must not be empty".into()));
        }
        if raw.participant.is_empty() {
            return Err(bad("participant must not be empty".into()));
        }
        if let Some(first) = seen.insert(raw.id.clone(), index) {
            return Err(bad(format!("duplicate id (first used at index {first})")));
        }
        orders.push(Order {
            id: raw.id.into(),
            participant: raw.participant.into(),
            side,
            quantity_wh,
            limit_price,
            seq,
        });
    }
    Ok(orders)
}

/// A trade as the report shows it.
#[derive(Debug, Serialize)]
struct ReportTrade<'a> {
    buy_id: &'a str,
    sell_id: &'a str,
    quantity_wh: u64,
    price: Price,
}

#[derive(Debug, Serialize)]
struct ReportUnfilled<'a> {
    id: &'a str,
    remaining_wh: u64,
}

/// An order the market's rules refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    /// The order.
    pub id: String,
    /// Why.
    pub reason: String,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    mechanism: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    clearing_price: Option<Option<Price>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    price_range: Option<Option<PriceRange>>,
    volume_wh: u64,
    trades: Vec<ReportTrade<'a>>,
    unfilled: Vec<ReportUnfilled<'a>>,
    rejected: &'a [Rejected],
}

/// Admits `orders` under `rules` and clears them with `mechanism`; returns the outcome and the
/// orders the rules refused (in submission order: sequence, then id).
pub fn clear_orders(
    orders: Vec<Order>,
    mechanism: Mechanism,
    rules: MarketRules,
) -> (ClearingOutcome, Vec<Rejected>) {
    let mut auction = CallAuction::with_capacity(rules, orders.len());
    let mut rejected: Vec<(u64, Rejected)> = Vec::new();
    for order in orders {
        let (seq, id) = (order.seq, order.id.to_string());
        if let Err(reason) = auction.submit(order) {
            rejected.push((
                seq,
                Rejected {
                    id,
                    reason: reason.to_string(),
                },
            ));
        }
    }
    rejected.sort_by(|a, b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));
    (
        auction.clear(mechanism),
        rejected.into_iter().map(|(_, r)| r).collect(),
    )
}

/// Renders a clearing as the report's JSON (pretty-printed, newline-terminated).
pub fn render(outcome: &ClearingOutcome, rejected: &[Rejected]) -> String {
    let uniform = matches!(outcome.mechanism, Mechanism::Uniform { .. });
    let report = Report {
        mechanism: outcome.mechanism.name(),
        clearing_price: uniform.then_some(outcome.clearing_price),
        price_range: uniform.then_some(outcome.price_range),
        volume_wh: outcome.volume_wh,
        trades: outcome
            .trades
            .iter()
            .map(|t| ReportTrade {
                buy_id: t.buy_id.as_str(),
                sell_id: t.sell_id.as_str(),
                quantity_wh: t.quantity_wh,
                price: t.price,
            })
            .collect(),
        unfilled: outcome
            .unfilled
            .iter()
            .map(|u| ReportUnfilled {
                id: u.id.as_str(),
                remaining_wh: u.remaining_wh,
            })
            .collect(),
        rejected,
    };
    // Serializing plain structs of strings and integers into a String cannot fail.
    let mut text = serde_json::to_string_pretty(&report).unwrap_or_default();
    text.push('\n');
    text
}

/// Parses, clears and renders in one step: what `voltmesh clear` does between reading the file
/// and printing.
///
/// # Errors
/// [`BookFileError`] if the file is malformed.
pub fn clear_text(
    text: &str,
    mechanism: Mechanism,
    rules: MarketRules,
) -> Result<String, BookFileError> {
    let orders = parse_orders(text)?;
    let (outcome, rejected) = clear_orders(orders, mechanism, rules);
    Ok(render(&outcome, &rejected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Tariffs, K};

    const UNIFORM: Mechanism = Mechanism::Uniform { k: K::HALF };

    fn err(text: &str) -> String {
        clear_text(text, UNIFORM, MarketRules::PERMISSIVE)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn clears_the_worked_example() {
        let text = r#"[
            {"id": "b1", "participant": "h1", "side": "buy", "quantity_wh": 5, "limit_price": "30"},
            {"id": "b2", "participant": "h2", "side": "buy", "quantity_wh": 5, "limit_price": "22"},
            {"id": "a1", "participant": "h3", "side": "sell", "quantity_wh": 5, "limit_price": "10"},
            {"id": "a2", "participant": "h4", "side": "sell", "quantity_wh": 5, "limit_price": "25.0"}
        ]"#;
        let out = clear_text(text, UNIFORM, MarketRules::PERMISSIVE).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["mechanism"], "uniform");
        assert_eq!(v["clearing_price"], "23.500000");
        assert_eq!(v["volume_wh"], 5);
        assert_eq!(v["trades"][0]["buy_id"], "b1");
        assert_eq!(v["trades"][0]["sell_id"], "a1");
        assert_eq!(v["unfilled"].as_array().unwrap().len(), 2);
        assert_eq!(v["unfilled"][0]["id"], "b2");
        // Same input, same bytes.
        assert_eq!(
            out,
            clear_text(text, UNIFORM, MarketRules::PERMISSIVE).unwrap()
        );
    }

    #[test]
    fn non_uniform_reports_have_no_clearing_price() {
        let text = r#"[{"id": "b", "participant": "h", "side": "buy", "quantity_wh": 1, "limit_price": "1"}]"#;
        let out = clear_text(text, Mechanism::Continuous, MarketRules::PERMISSIVE).unwrap();
        assert!(!out.contains("clearing_price"));
        let out = clear_text(text, UNIFORM, MarketRules::PERMISSIVE).unwrap();
        assert!(out.contains("\"clearing_price\": null"));
    }

    #[test]
    fn errors_name_the_offending_order() {
        assert!(err("not json").starts_with("the orders file is not valid JSON"));
        assert_eq!(
            err("{}"),
            "the orders file must hold a JSON array of orders"
        );
        let e = err(
            r#"[{"id": "x", "participant": "h", "side": "buy", "quantity_wh": 0, "limit_price": "1"}]"#,
        );
        assert!(
            e.starts_with("order at index 0 (id \"x\"): quantity_wh must be a positive"),
            "{e}"
        );
        let e = err(
            r#"[{"id": "x", "participant": "h", "side": "buy", "quantity_wh": -3, "limit_price": "1"}]"#,
        );
        assert!(e.contains("quantity_wh"), "{e}");
        let e = err(
            r#"[{"id": "x", "participant": "h", "side": "hold", "quantity_wh": 3, "limit_price": "1"}]"#,
        );
        assert!(e.contains("unknown side \"hold\""), "{e}");
        let e = err(
            r#"[{"id": "x", "participant": "h", "side": "buy", "quantity_wh": 3, "limit_price": "1.1234567"}]"#,
        );
        assert!(e.contains("more than 6 decimal places"), "{e}");
        let e = err(
            r#"[{"id": "x", "participant": "h", "side": "buy", "quantity_wh": 3, "limit_price": 1.5}]"#,
        );
        assert!(e.contains("decimal string"), "{e}");
        let e = err(r#"[{"id": "x", "participant": "h", "side": "buy", "quantity_wh": 3}]"#);
        assert!(e.contains("missing field `limit_price`"), "{e}");
        let e = err(
            r#"[{"id": "x", "participant": "h", "side": "buy", "quantity_wh": 3, "limit_price": "1", "colour": 1}]"#,
        );
        assert!(e.contains("unknown field `colour`"), "{e}");
        let e = err(
            r#"[{"id": "x", "participant": "h", "side": "buy", "quantity_wh": 3, "limit_price": "1"},
                {"id": "x", "participant": "g", "side": "sell", "quantity_wh": 3, "limit_price": "1"}]"#,
        );
        assert_eq!(
            e,
            "order at index 1 (id \"x\"): duplicate id (first used at index 0)"
        );
        assert!(err("[5]").starts_with("order at index 0:"));
    }

    #[test]
    fn tariff_violations_are_listed_not_fatal() {
        let text = r#"[
            {"id": "b", "participant": "h1", "side": "buy", "quantity_wh": 5, "limit_price": "0.40"},
            {"id": "a", "participant": "h2", "side": "sell", "quantity_wh": 5, "limit_price": "0.10"}
        ]"#;
        let p = |s: &str| s.parse::<Price>().unwrap();
        let rules = MarketRules {
            tariffs: Tariffs::new(p("0.08"), p("0.30")).unwrap(),
            ..MarketRules::PERMISSIVE
        };
        let v: serde_json::Value =
            serde_json::from_str(&clear_text(text, UNIFORM, rules).unwrap()).unwrap();
        assert_eq!(v["volume_wh"], 0);
        assert_eq!(v["rejected"][0]["id"], "b");
        assert_eq!(
            v["rejected"][0]["reason"],
            "limit price 0.400000 is above the retail price 0.300000"
        );
    }
}
