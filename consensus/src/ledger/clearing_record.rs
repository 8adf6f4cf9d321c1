//! [`ClearingRecord`]: what a block carries of an interval's clearing.
//!
//! A block records each clearing in a bounded form: the interval, the clearing price, the volume,
//! the number of trades and the SHA-256 of the clearing's canonical JSON (the [`IntervalClearing`]
//! the node API serves, with every trade and every unfilled order). Every validator re-runs the
//! engine on the interval's book, so it computes the full clearing itself and votes only if its
//! record is byte for byte the block's; the full clearing never travels in a block. A clearing's
//! size therefore no longer bounds how many orders an interval may hold (audit C1, issue 12): a
//! record is under 200 bytes however many households traded.

use serde::{Deserialize, Serialize};
use voltmesh_engine::Price;
use voltmesh_wire::IntervalClearing;

/// One interval's clearing as a block records it.
///
/// # Invariant
/// `sha256` is the hex SHA-256 of `serde_json::to_vec(clearing)` of the clearing it was made
/// from ([`ClearingRecord::of`]); the other fields repeat parts of it for people reading blocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClearingRecord {
    /// The interval's start, Unix seconds.
    pub interval_start: i64,
    /// The uniform clearing price, if there is one.
    pub clearing_price: Option<Price>,
    /// Energy traded, Wh.
    pub volume_wh: u64,
    /// Number of trades.
    pub trades: u64,
    /// SHA-256 of the full clearing's canonical JSON, hex.
    pub sha256: String,
}

impl ClearingRecord {
    /// The record of `clearing`.
    pub fn of(clearing: &IntervalClearing) -> ClearingRecord {
        // A struct of strings, integers and vectors always serializes.
        let bytes = serde_json::to_vec(clearing).unwrap_or_default();
        ClearingRecord {
            interval_start: clearing.interval_start,
            clearing_price: clearing.outcome.clearing_price,
            volume_wh: clearing.outcome.volume_wh,
            trades: clearing.outcome.trades.len() as u64,
            sha256: hex::encode(crate::protocol::hash::sha256(&bytes)),
        }
    }

    /// Whether this record was made from `clearing`.
    pub fn records(&self, clearing: &IntervalClearing) -> bool {
        *self == ClearingRecord::of(clearing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use voltmesh_engine::{uniform, Order, Side, K};

    fn clearing(buy_price: &str) -> IntervalClearing {
        let order = |id: &str, side, price: &str| Order {
            id: id.into(),
            participant: id.into(),
            side,
            quantity_wh: 100,
            limit_price: price.parse().unwrap(),
            seq: 0,
        };
        IntervalClearing {
            withheld: None,
            interval_start: 900,
            outcome: uniform::clear(
                &[
                    order("s", Side::Sell, "0.10"),
                    order("b", Side::Buy, buy_price),
                ],
                K::HALF,
            ),
        }
    }

    #[test]
    fn a_record_names_its_clearing_and_no_other() {
        let a = clearing("0.30");
        let record = ClearingRecord::of(&a);
        assert_eq!(record.interval_start, 900);
        assert_eq!(record.volume_wh, 100);
        assert_eq!(record.trades, 1);
        assert_eq!(record.clearing_price, Some("0.200000".parse().unwrap()));
        assert_eq!(record.sha256.len(), 64);
        assert!(record.records(&a));
        // Another price, the same volume and trade count: only the digest tells them apart.
        let b = clearing("0.32");
        assert!(!record.records(&b));
        let json = serde_json::to_string(&record).unwrap();
        assert!(json.len() < 200, "{json}");
        assert_eq!(
            serde_json::from_str::<ClearingRecord>(&json).unwrap(),
            record
        );
    }
}
