//! The node API's OpenAPI document, generated from this crate's types (feature `openapi`).
//!
//! [`document`] / [`json`] describe every route of [`crate::api`], its parameters, its request
//! body and each answer with its schema. The node serves it at [`crate::api::OPENAPI`];
//! `consensus/wire/openapi.json` is a checked-in copy (a test keeps it equal to [`json`]).
//!
//! The engine's types that answers embed (a clearing's outcome, trades, unfilled orders, the
//! mechanism, sides) are described by the schema-only mirrors below; `consensus/tests/openapi.rs`
//! checks real answers of the node's router against the document, so a mirror cannot drift from
//! what the node sends.

#![allow(dead_code)] // The path functions exist only for their `#[utoipa::path]` descriptions.

use utoipa::{OpenApi, ToSchema};

use crate::api::{
    Accepted, Balance, BatchAnswer, BatchResult, BlockView, CommunityView, ErrorBody, OrderState,
    OrderStatusEntry, OrderStatusView, OrderSubmission, ParticipantTrade, ParticipantView,
    ProposalAnswer, SnapshotView, StatusView,
};
use crate::api::{BillsView, CorrectionAnswer, CorrectionsView, SettlementView, SettlementsView};
use crate::bill::{Bill, CommittedBill, PartyLine, Settled, Statement};
use crate::clearing::Withheld;
use crate::correction::{
    CommittedCorrections, CorrectionEntry, CorrectionTicket, IntervalCorrection,
    IntervalCorrections, LeafCorrection, ParticipantCorrection, SettledLeaf, SignedCorrection,
    UtilityExchange,
};
use crate::delivery::{DeliveryTicket, SignedDelivery};
use crate::governance::{Approval, SignedProposal};
use crate::{IntervalClearing, OrderTicket, SignedOrder};

/// Buy or sell.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Side {
    /// A buy order (or the buying side of a trade).
    Buy,
    /// A sell order.
    Sell,
}

/// How an interval's orders are matched: `{"kind": "uniform", "k": "0.5"}`,
/// `{"kind": "pay-as-bid", "pricing": "midpoint"}` or `{"kind": "continuous"}`.
#[derive(Debug, ToSchema)]
pub struct Mechanism {
    /// `uniform`, `pay-as-bid` or `continuous`.
    pub kind: String,
    /// Uniform auction: where the price sits inside the clearing range, a decimal in [0, 1].
    pub k: Option<String>,
    /// Pay-as-bid: `midpoint` or `bid`.
    pub pricing: Option<String>,
}

/// One match between a buy and a sell order.
#[derive(Debug, ToSchema)]
pub struct Trade {
    /// The buy order's id.
    pub buy_id: String,
    /// The sell order's id.
    pub sell_id: String,
    /// Who buys.
    pub buyer: String,
    /// Who sells.
    pub seller: String,
    /// Energy traded, Wh.
    pub quantity_wh: u64,
    /// Price per kWh, six decimals.
    #[schema(example = "0.200000")]
    pub price: String,
}

/// An order's part that did not trade.
#[derive(Debug, ToSchema)]
pub struct Unfilled {
    /// The order's id.
    pub id: String,
    /// Its side.
    pub side: Side,
    /// Energy not traded, Wh.
    pub remaining_wh: u64,
}

/// The uniform auction's range of market-clearing prices.
#[derive(Debug, ToSchema)]
pub struct PriceRange {
    /// Lowest clearing price.
    pub lo: String,
    /// Highest clearing price.
    pub hi: String,
}

/// The result of clearing one interval's book.
#[derive(Debug, ToSchema)]
pub struct ClearingOutcome {
    /// The mechanism that produced it.
    pub mechanism: Mechanism,
    /// The single price of every trade (uniform auction with volume only).
    pub clearing_price: Option<String>,
    /// The range the uniform price was chosen from (uniform auction with volume only).
    pub price_range: Option<PriceRange>,
    /// Total energy traded, Wh.
    pub volume_wh: u64,
    /// The trades, in matching order.
    pub trades: Vec<Trade>,
    /// Orders with energy left over.
    pub unfilled: Vec<Unfilled>,
}

/// Submit a signed order, or an array of them (prices with six decimals: the signature covers the
/// node's encoding).
#[utoipa::path(
    post,
    path = "/v1/orders",
    request_body = OrderSubmission,
    responses(
        (status = 200, description = "An array was submitted: one result per order, in order, each what the order alone would have been answered (202's body or 422's)", body = BatchAnswer),
        (status = 202, description = "In the mempool, gossiped to the other nodes: it commits unless its gate closes first, or (orders posted through several nodes at once beyond the participant's per-interval quota) it is refused at block building with `participant_interval_full`; `GET /v1/orders/{participant}/{id}` says which", body = Accepted),
        (status = 400, description = "`malformed_body`", body = ErrorBody),
        (status = 413, description = "`body_too_large` (over the node's body limit, 512 KiB by default) or `batch_too_large` (an array of more than 1,000 orders)", body = ErrorBody),
        (status = 422, description = "Refused: `error` is an order rejection kind (`bad_signature`, `unknown_participant`, `key_not_allowed`, `bad_order_id`, `order_id_too_long`, `participant_interval_full`, `interval_full`, `participant_pending_full`, `replayed_nonce` (older nodes), `wrong_interval`, `closed_interval`, `price_outside_tariffs`, `duplicate_id`, `market_rules`, `mempool_full`)", body = ErrorBody),
        (status = 503, description = "`busy` or `stopping`: retry", body = ErrorBody),
    )
)]
fn submit_order() {}

/// The headers of a signed read (`voltmesh/read/v1`, [`crate::read`]).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // only its OpenAPI description is used
struct SignedRead {
    /// Signed read (`voltmesh/read/v1`): the signer's public key, hex
    #[param(rename = "x-voltmesh-key")]
    key: Option<String>,
    /// Signed read: the request's time, ms since the Unix epoch (within 300 s of the node's clock)
    #[param(rename = "x-voltmesh-time")]
    time: Option<u64>,
    /// Signed read: ed25519 signature of `voltmesh/read/v1\n<neighborhood>\nGET\n<path and query>\n<time>`, hex
    #[param(rename = "x-voltmesh-signature")]
    signature: Option<String>,
}

/// What became of a participant's order (every interval the node knows the id in, oldest first).
/// Only for a request signed by one of the participant's keys or a billing key.
#[utoipa::path(
    get,
    path = "/v1/orders/{participant}/{id}",
    params(
        ("participant" = String, Path, description = "The participant's pseudonym"),
        ("id" = String, Path, description = "The order id"),
        ("interval" = Option<i64>, Query, description = "Only this interval (Unix seconds)"),
        SignedRead,
    ),
    responses(
        (status = 200, description = "The order's state in each interval", body = OrderStatusView),
        (status = 400, description = "`malformed_interval`", body = ErrorBody),
        (status = 401, description = "`unsigned_read`, `malformed_signature`, `stale_read` or `bad_signature`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the key is neither the participant's nor a billing key", body = ErrorBody),
        (status = 404, description = "`unknown_order`", body = ErrorBody),
        (status = 503, description = "`busy` or `stopping`", body = ErrorBody),
    )
)]
fn order_status() {}

/// An interval's committed clearing, as much as the reader may see: price and volume for
/// anyone; the trades and unfilled orders of the participants the signing key may sign for
/// (every one for a billing or validator key); none for an unsigned request.
#[utoipa::path(
    get,
    path = "/v1/intervals/{start}",
    params(
        ("start" = String, Path, description = "Interval start: Unix seconds or RFC 3339"),
        SignedRead,
    ),
    responses(
        (status = 200, description = "The clearing", body = IntervalClearing),
        (status = 400, description = "`malformed_interval`", body = ErrorBody),
        (status = 401, description = "`malformed_signature`, `stale_read` or `bad_signature` (an unsigned read gets the aggregates)", body = ErrorBody),
        (status = 404, description = "`not_cleared`: not (yet) cleared", body = ErrorBody),
        (status = 503, description = "`busy` or `stopping`", body = ErrorBody),
    )
)]
fn interval() {}

/// A participant's balance and a page of its committed trades, oldest first, whole intervals at
/// a time; `next_from` names the next page's `from` when the range holds more. Only for a
/// request signed by one of the participant's keys or a billing key.
#[utoipa::path(
    get,
    path = "/v1/participants/{id}",
    params(
        ("id" = String, Path, description = "The participant's pseudonym"),
        SignedRead,
        ("from" = Option<String>, Query, description = "First interval start (inclusive), Unix seconds or RFC 3339"),
        ("to" = Option<String>, Query, description = "Last interval start (exclusive), Unix seconds or RFC 3339"),
        ("limit" = Option<u64>, Query, description = "Most trades in the page (default 1000, at most 10000); a page ends at an interval boundary"),
    ),
    responses(
        (status = 200, description = "Balance and trades", body = ParticipantView),
        (status = 400, description = "`malformed_interval` or `malformed_query`", body = ErrorBody),
        (status = 401, description = "`unsigned_read`, `malformed_signature`, `stale_read` or `bad_signature`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the key is neither the participant's nor a billing key", body = ErrorBody),
        (status = 503, description = "`busy` or `stopping`", body = ErrorBody),
    )
)]
fn participant() {}

/// A participant's committed bills of a period (one page of at most 2,976 settled intervals;
/// `next_from` names the next). Only for a request signed by one of the participant's keys or a
/// billing key.
#[utoipa::path(
    get,
    path = "/v1/participants/{id}/bills",
    params(
        ("id" = String, Path, description = "The participant's pseudonym"),
        ("from" = String, Query, description = "First interval start (inclusive), Unix seconds or RFC 3339"),
        ("to" = String, Query, description = "Last interval start (exclusive), Unix seconds or RFC 3339"),
        ("limit" = Option<u64>, Query, description = "Most settled intervals the page looks at (default and maximum 2976)"),
        SignedRead,
    ),
    responses(
        (status = 200, description = "The bills, oldest first, each with the block that holds it", body = BillsView),
        (status = 400, description = "`malformed_interval` or `malformed_query` (`from` and `to` are required)", body = ErrorBody),
        (status = 401, description = "`unsigned_read`, `malformed_signature`, `stale_read` or `bad_signature`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the key is neither the participant's nor a billing key", body = ErrorBody),
        (status = 503, description = "`busy` or `stopping`", body = ErrorBody),
    )
)]
fn bills() {}

/// A participant's statement for a period: its committed bills summed, with the heights of the
/// blocks that hold them. Only for a request signed by one of its keys or a billing key.
#[utoipa::path(
    get,
    path = "/v1/participants/{id}/statement",
    params(
        ("id" = String, Path, description = "The participant's pseudonym"),
        ("from" = String, Query, description = "First interval start (inclusive), Unix seconds or RFC 3339"),
        ("to" = String, Query, description = "Last interval start (exclusive), Unix seconds or RFC 3339"),
        SignedRead,
    ),
    responses(
        (status = 200, description = "The statement", body = Statement),
        (status = 400, description = "`malformed_interval` or `malformed_query`", body = ErrorBody),
        (status = 401, description = "`unsigned_read`, `malformed_signature`, `stale_read` or `bad_signature`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the key is neither the participant's nor a billing key", body = ErrorBody),
        (status = 503, description = "`busy` or `stopping`", body = ErrorBody),
    )
)]
fn statement() {}

/// The neighborhood's settled intervals of a period: aggregates anyone may read (the utility's
/// and the network operator's lines, bill counts, tariffs, the block that holds them).
#[utoipa::path(
    get,
    path = "/v1/settlements",
    params(
        ("from" = String, Query, description = "First interval start (inclusive), Unix seconds or RFC 3339"),
        ("to" = String, Query, description = "Last interval start (exclusive), Unix seconds or RFC 3339"),
        ("limit" = Option<u64>, Query, description = "Most intervals in the page (default and maximum 2976)"),
    ),
    responses(
        (status = 200, description = "The settled intervals, oldest first", body = SettlementsView),
        (status = 400, description = "`malformed_interval` or `malformed_query`", body = ErrorBody),
        (status = 503, description = "`busy` or `stopping`", body = ErrorBody),
    )
)]
fn settlements() {}

/// One interval's settlement with every participant's bill. Only for a request signed by a
/// billing key (genesis `billing_keys`).
#[utoipa::path(
    get,
    path = "/v1/settlements/{start}",
    params(
        ("start" = String, Path, description = "Interval start, Unix seconds or RFC 3339"),
        SignedRead,
    ),
    responses(
        (status = 200, description = "The settlement", body = SettlementView),
        (status = 400, description = "`malformed_interval`", body = ErrorBody),
        (status = 401, description = "`unsigned_read`, `malformed_signature`, `stale_read` or `bad_signature`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the key is neither the participant's nor a billing key", body = ErrorBody),
        (status = 404, description = "`not_settled`: not (yet) settled", body = ErrorBody),
        (status = 503, description = "`busy` or `stopping`", body = ErrorBody),
    )
)]
fn settlement() {}

/// A committed block, decoded, as much as the reader may see: its header and counts for
/// anyone; the orders (and clearings' trades) of the participants the signing key may sign for
/// (every one for a billing or validator key); none for an unsigned request.
#[utoipa::path(
    get,
    path = "/v1/blocks/{height}",
    params(
        ("height" = u64, Path, description = "Block height"),
        SignedRead,
    ),
    responses(
        (status = 200, description = "The block", body = BlockView),
        (status = 400, description = "`malformed_height`", body = ErrorBody),
        (status = 401, description = "`malformed_signature`, `stale_read` or `bad_signature` (an unsigned read gets the header and counts)", body = ErrorBody),
        (status = 404, description = "`not_committed`", body = ErrorBody),
        (status = 503, description = "`busy` or `stopping`", body = ErrorBody),
    )
)]
fn block() {}

/// The node's latest ledger snapshot and the committed blocks that prove it (state sync). Only
/// for a request signed by a validator's or a billing key: it holds every participant's open
/// orders and metered deliveries.
#[utoipa::path(
    get,
    path = "/v1/snapshot",
    params(
        SignedRead,
    ),
    responses(
        (status = 200, description = "The snapshot and its proof", body = SnapshotView),
        (status = 401, description = "`unsigned_read`, `malformed_signature`, `stale_read` or `bad_signature`", body = ErrorBody),
        (status = 403, description = "`forbidden`: neither a validator's nor a billing key", body = ErrorBody),
        (status = 404, description = "`no_snapshot`", body = ErrorBody),
        (status = 503, description = "`busy` or `stopping`", body = ErrorBody),
    )
)]
fn snapshot() {}

/// The node's status.
#[utoipa::path(
    get,
    path = "/v1/status",
    responses(
        (status = 200, description = "Status", body = StatusView),
        (status = 503, description = "`busy` or `stopping`", body = ErrorBody),
    )
)]
fn status() {}

/// Hands a signed governance proposal to the node, which puts its approvals in the next block
/// it proposes.
#[utoipa::path(
    post,
    path = "/v1/governance",
    request_body = SignedProposal,
    responses(
        (status = 202, description = "Taken: approvals counted once committed, and the threshold", body = ProposalAnswer),
        (status = 400, description = "`malformed_body`", body = ErrorBody),
        (status = 422, description = "Refused: `error` is a governance rejection kind (`unauthorised`, `expired`, `replayed`, `bad_signature`, `duplicate_approval`, `retroactive`, ...)", body = ErrorBody),
        (status = 503, description = "`busy` or `stopping`", body = ErrorBody),
    )
)]
fn submit_proposal() {}

/// Metered deliveries for the node's next blocks: what each participant's meters recorded in an
/// ended interval, signed by one of its keys.
#[utoipa::path(
    post,
    path = "/v1/deliveries",
    request_body = Vec<SignedDelivery>,
    responses(
        (status = 200, description = "One result per delivery, in order: `{\"status\":\"accepted\"}` (in the node's pool for its next blocks) or the error body with a delivery rejection kind (`malformed_delivery`, `bad_signature`, `unknown_participant`, `participant_removed`, `key_not_allowed`, `wrong_interval`, `not_delivered`, `late`, `duplicate_delivery`, `absurd_energy`, `pool_full`)", body = BatchAnswer),
        (status = 400, description = "`malformed_body` (not a JSON array of deliveries)", body = ErrorBody),
        (status = 413, description = "`body_too_large` or `batch_too_large` (more than 1,000 deliveries)", body = ErrorBody),
        (status = 503, description = "`busy` or `stopping`", body = ErrorBody),
    )
)]
fn submit_deliveries() {}

/// A correction import from official metering data (EDA, MSCONS) for the node's next blocks,
/// signed inside by a billing key: every validator checks its Merkle proofs against the
/// settled intervals' roots and re-settles the leaves it names as new correction entries.
#[utoipa::path(
    post,
    path = "/v1/corrections",
    request_body = SignedCorrection,
    responses(
        (status = 202, description = "Taken for the node's next blocks; the digest the committed corrections name", body = CorrectionAnswer),
        (status = 400, description = "`malformed_body`", body = ErrorBody),
        (status = 422, description = "Refused: `malformed_correction`, `not_billing_key`, `bad_signature`, `not_correctable` (not settled, or past the correction window), `bad_proof` (stale or forged leaves), `absurd_energy`, `duplicate_correction`, `pool_full`", body = ErrorBody),
        (status = 503, description = "`busy` or `stopping`", body = ErrorBody),
    )
)]
fn submit_correction() {}

/// The committed corrections of a period, every participant's. Only for a request signed by a
/// billing key.
#[utoipa::path(
    get,
    path = "/v1/corrections",
    params(
        ("from" = String, Query, description = "First interval start (inclusive), Unix seconds or RFC 3339"),
        ("to" = String, Query, description = "Last interval start (exclusive), Unix seconds or RFC 3339"),
        ("limit" = Option<u64>, Query, description = "Most corrections in the page (whole intervals; default and maximum 2976)"),
        SignedRead,
    ),
    responses(
        (status = 200, description = "The corrections, by interval then as committed", body = CorrectionsView),
        (status = 400, description = "`malformed_interval` or `malformed_query`", body = ErrorBody),
        (status = 401, description = "`unsigned_read`, `malformed_signature`, `stale_read` or `bad_signature`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a billing key", body = ErrorBody),
        (status = 503, description = "`busy` or `stopping`", body = ErrorBody),
    )
)]
fn corrections() {}

/// The community as the node's committed ledger says.
#[utoipa::path(
    get,
    path = "/v1/governance",
    responses(
        (status = 200, description = "Participants, rules and their schedule, policies, validators, pending proposals", body = CommunityView),
        (status = 503, description = "`busy` or `stopping`", body = ErrorBody),
    )
)]
fn community() {}

/// This document.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
fn openapi() {}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Voltmesh node API",
        description = "A neighborhood node's HTTP/JSON API. Every error answer is `ErrorBody`. Prices are strings with six decimals."
    ),
    paths(
        submit_order,
        order_status,
        interval,
        participant,
        bills,
        statement,
        settlements,
        settlement,
        block,
        status,
        snapshot,
        submit_proposal,
        community,
        submit_deliveries,
        submit_correction,
        corrections,
        openapi
    ),
    components(schemas(
        SignedOrder,
        OrderTicket,
        Accepted,
        OrderSubmission,
        BatchAnswer,
        BatchResult,
        ErrorBody,
        IntervalClearing,
        ClearingOutcome,
        Trade,
        Unfilled,
        PriceRange,
        Mechanism,
        Side,
        ParticipantView,
        ParticipantTrade,
        Balance,
        BlockView,
        StatusView,
        SnapshotView,
        OrderStatusView,
        OrderStatusEntry,
        OrderState,
        SignedProposal,
        Approval,
        ProposalAnswer,
        CommunityView,
        SignedDelivery,
        DeliveryTicket,
        BillsView,
        SettlementsView,
        SettlementView,
        Bill,
        CommittedBill,
        Settled,
        PartyLine,
        Statement,
        Withheld,
        SignedCorrection,
        CorrectionTicket,
        IntervalCorrection,
        LeafCorrection,
        SettledLeaf,
        CorrectionAnswer,
        CorrectionsView,
        CommittedCorrections,
        IntervalCorrections,
        CorrectionEntry,
        UtilityExchange,
        ParticipantCorrection
    ))
)]
struct ApiDoc;

/// The node API's OpenAPI document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// [`document`] as pretty-printed JSON (what the node serves and `openapi.json` holds).
pub fn json() -> String {
    let mut text = document().to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regenerate the checked-in copy with `VOLTMESH_BLESS=1 cargo test -p voltmesh-wire
    /// --features openapi`.
    #[test]
    fn the_checked_in_document_is_the_generated_one() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
        if std::env::var_os("VOLTMESH_BLESS").is_some() {
            std::fs::write(path, json()).unwrap();
        }
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            checked_in == json(),
            "consensus/wire/openapi.json is stale: regenerate it with VOLTMESH_BLESS=1 \
             cargo test -p voltmesh-wire --features openapi"
        );
    }

    #[test]
    fn every_route_is_documented() {
        let doc = document();
        for route in [
            crate::api::ORDERS,
            crate::api::INTERVAL,
            crate::api::PARTICIPANT,
            crate::api::PARTICIPANT_BILLS,
            crate::api::PARTICIPANT_STATEMENT,
            crate::api::SETTLEMENTS,
            crate::api::SETTLEMENT,
            crate::api::BLOCK,
            crate::api::STATUS,
            crate::api::SNAPSHOT,
            crate::api::GOVERNANCE,
            crate::api::OPENAPI,
        ] {
            assert!(doc.paths.paths.contains_key(route), "{route}");
        }
    }
}
