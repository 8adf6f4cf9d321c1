//! An interval's clearing, as a block records it and `GET /v1/intervals/{start}` answers it.

use serde::{Deserialize, Serialize};
use voltmesh_engine::ClearingOutcome;

/// One interval's clearing, as the block records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IntervalClearing {
    /// Start of the delivery interval, Unix seconds.
    pub interval_start: i64,
    /// The engine's result on the interval's book.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::ClearingOutcome))]
    pub outcome: ClearingOutcome,
    /// What the node API did not show this reader of `outcome` (absent: nothing; the ledger
    /// never has it): a participant's trades and orders go to its own keys only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withheld: Option<Withheld>,
}

/// How many of an interval's trades and unfilled orders a reader was not shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Withheld {
    /// Trades not shown.
    pub trades: u64,
    /// Unfilled orders not shown.
    pub unfilled: u64,
}

impl IntervalClearing {
    /// The interval's number of trades, those withheld from this reader included.
    #[must_use]
    pub fn trade_count(&self) -> u64 {
        self.outcome.trades.len() as u64 + self.withheld.map_or(0, |w| w.trades)
    }

    /// The interval's number of unfilled orders, those withheld from this reader included.
    #[must_use]
    pub fn unfilled_count(&self) -> u64 {
        self.outcome.unfilled.len() as u64 + self.withheld.map_or(0, |w| w.unfilled)
    }
}
