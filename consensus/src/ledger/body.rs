//! Block payloads.

use serde::{Deserialize, Serialize};
use voltmesh_wire::bill::BillsRecord;
use voltmesh_wire::correction::SignedCorrection;
use voltmesh_wire::delivery::SignedDelivery;
use voltmesh_wire::governance::SignedProposal;
use voltmesh_wire::SignedOrder;

use super::{BlockRejection, ClearingRecord};

/// The most orders one block carries (a consensus rule: a block with more is refused).
///
/// With the default 500 ms block pacing this caps throughput at 10,000 orders/s, above what
/// four validators sustain on a 2-core machine (about 9,400/s, `node_capacity` bench); at
/// 2,000 the cap itself was the limit (4,000/s). A block this full is about 1.9 MB of JSON,
/// under [`ORDER_BYTES_BUDGET`], which binds first for orders with long ids.
pub const MAX_ORDERS_PER_BLOCK: usize = 5_000;

/// The most signed proposals one block carries (a consensus rule).
pub const MAX_PROPOSALS_PER_BLOCK: usize = 16;

/// The most metered deliveries one block carries (a consensus rule).
pub const MAX_DELIVERIES_PER_BLOCK: usize = 5_000;

/// The most correction imports one block carries (a consensus rule).
pub const MAX_CORRECTIONS_PER_BLOCK: usize = 4;

/// The most bytes of JSON one correction import may have: a node refuses a larger one (it
/// would crowd a block out; it is also under the API's default 512 KiB body limit), so an
/// importer splits its data (`voltmesh correct` does; an import of 100 households' readings
/// in a 10,000-bill interval is about 61 kB, the bills bench prints it).
pub const MAX_CORRECTION_BYTES: usize = 256 * 1024;

/// Room for the body's own JSON around its orders, and for its clearing records (at most
/// [`voltmesh_wire::genesis::MAX_CLEARINGS_PER_BLOCK`], each under 200 bytes).
const ENVELOPE_BYTES: usize = 64 * 1024;

/// The most bytes of orders a proposer puts in one block: the payload limit less the envelope,
/// so that a block at a gate can always carry the clearing record it must (audit finding C1).
pub const ORDER_BYTES_BUDGET: usize = crate::protocol::MAX_PAYLOAD_BYTES - ENVELOPE_BYTES;

/// What a block carries.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockBody {
    /// New orders, in ledger (sequence) order.
    pub orders: Vec<SignedOrder>,
    /// Records of the clearings of the intervals whose gate closed by this block's time, oldest
    /// first (at most [`voltmesh_wire::genesis::MAX_CLEARINGS_PER_BLOCK`]).
    pub clearings: Vec<ClearingRecord>,
    /// Signed governance proposals, executed before the orders (at most
    /// [`MAX_PROPOSALS_PER_BLOCK`]); absent when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<SignedProposal>,
    /// Metered deliveries, executed after the clearings (at most
    /// [`MAX_DELIVERIES_PER_BLOCK`]); absent when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deliveries: Vec<SignedDelivery>,
    /// Records of the bills of the intervals whose delivery window closed by this block's time
    /// and that are cleared, oldest first ([`voltmesh_wire::bill`]); executed before anything
    /// else; absent when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bills: Vec<BillsRecord>,
    /// Signed correction imports from official metering data ([`voltmesh_wire::correction`]),
    /// executed last (at most [`MAX_CORRECTIONS_PER_BLOCK`]); absent when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub corrections: Vec<SignedCorrection>,
    /// At the heights right after a snapshot height ([`super::snapshot::carries_digest`]), the
    /// digest of the state after the parent ([`super::snapshot::digest`]); absent elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

impl BlockBody {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        // Plain structs of strings, integers and vectors always serialize.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Whether `payload` is a body without orders, clearings and proposals (a state digest
    /// aside): a block that only moves the chain on. Cheap: by the canonical encoding, such a
    /// body is exactly these bytes, or these followed by the digest, and no other body is.
    #[must_use]
    pub fn is_empty_payload(payload: &[u8]) -> bool {
        const EMPTY: &[u8] = br#"{"orders":[],"clearings":[]"#;
        payload.is_empty()
            || payload
                .strip_prefix(EMPTY)
                .is_some_and(|rest| rest == b"}" || rest.starts_with(br#","state":"#))
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
        if body.actions.len() > MAX_PROPOSALS_PER_BLOCK {
            return Err(BlockRejection::Malformed(format!(
                "{} proposals exceed the per-block maximum {MAX_PROPOSALS_PER_BLOCK}",
                body.actions.len()
            )));
        }
        if body.corrections.len() > MAX_CORRECTIONS_PER_BLOCK {
            return Err(BlockRejection::Malformed(format!(
                "{} correction imports exceed the per-block maximum {MAX_CORRECTIONS_PER_BLOCK}",
                body.corrections.len()
            )));
        }
        if body.deliveries.len() > MAX_DELIVERIES_PER_BLOCK {
            return Err(BlockRejection::Malformed(format!(
                "{} deliveries exceed the per-block maximum {MAX_DELIVERIES_PER_BLOCK}",
                body.deliveries.len()
            )));
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
