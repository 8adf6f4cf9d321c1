//! Block payloads.

use serde::{Deserialize, Serialize};
use voltmesh_wire::{IntervalClearing, SignedOrder};

use super::BlockRejection;

/// The most orders one block carries.
pub const MAX_ORDERS_PER_BLOCK: usize = 2_000;

/// What a block carries.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockBody {
    /// New orders, in ledger (sequence) order.
    pub orders: Vec<SignedOrder>,
    /// Clearings of every interval whose gate closed by this block's time, oldest first.
    pub clearings: Vec<IntervalClearing>,
}

impl BlockBody {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        // Plain structs of strings, integers and vectors always serialize.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes a payload and checks that it is in canonical form.
    ///
    /// # Errors
    /// [`BlockRejection::Malformed`] if it does not decode or is not canonical.
    pub fn decode(bytes: &[u8]) -> Result<BlockBody, BlockRejection> {
        if bytes.is_empty() {
            return Ok(BlockBody::default());
        }
        let body: BlockBody =
            serde_json::from_slice(bytes).map_err(|e| BlockRejection::Malformed(e.to_string()))?;
        if body.encode() != bytes {
            return Err(BlockRejection::Malformed(
                "payload is not in canonical form".into(),
            ));
        }
        if body.orders.len() > MAX_ORDERS_PER_BLOCK {
            return Err(BlockRejection::Malformed(format!(
                "{} orders exceed the per-block maximum {MAX_ORDERS_PER_BLOCK}",
                body.orders.len()
            )));
        }
        Ok(body)
    }
}
