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
}
