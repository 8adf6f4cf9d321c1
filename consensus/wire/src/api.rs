//! The node's HTTP/JSON API: routes, what each route answers, and the error body.
//!
//! | method | path | answer |
//! |---|---|---|
//! | POST | [`ORDERS`] | body: a [`SignedOrder`]; 202 [`Accepted`]; 400 [`ErrorBody`] `malformed_body`; 422 [`ErrorBody`] with `error` = an [`OrderRejection::kind`]; 503 `busy`/`stopping` |
//! | GET | [`ORDER_STATUS`] | 200 [`OrderStatusView`] (optional `?interval=` Unix seconds); 400 `malformed_interval`; 404 `unknown_order` |
//! | GET | [`INTERVAL`] | 200 [`IntervalClearing`] (`start` in Unix seconds or RFC 3339); 400 `malformed_interval`; 404 `not_cleared` |
//! | GET | [`PARTICIPANT`] | 200 [`ParticipantView`] |
//! | GET | [`BLOCK`] | 200 [`BlockView`]; 400 `malformed_height`; 404 `not_committed` |
//! | GET | [`STATUS`] | 200 [`StatusView`] |
//! | POST | [`GOVERNANCE`] | body: a [`SignedProposal`]; 202 [`ProposalAnswer`]; 400 `malformed_body`; 422 [`ErrorBody`] with `error` = a [`GovernanceRejection::kind`] |
//! | GET | [`GOVERNANCE`] | 200 [`CommunityView`]: participants, rules with their schedule, policies, validators and epoch, pending proposals with their approvals |
//! | POST | [`DELIVERIES`] | body: a JSON array of at most [`MAX_BATCH_DELIVERIES`] [`SignedDelivery`]s; 200 [`BatchAnswer`], one result per delivery (`error` = a [`DeliveryRejection::kind`]); 400 `malformed_body`; 413 `batch_too_large` |
//!
//! Every error answer is an [`ErrorBody`] (`{"error": kind, "message": text}`); a node whose
//! request queue is full answers 503 `busy`, one shutting down 503 `stopping`.
//!
//! Prices inside orders are strings with six decimals (see [`crate::order`]).
//!
//! [`SignedOrder`]: crate::SignedOrder
//! [`IntervalClearing`]: crate::IntervalClearing
//! [`OrderRejection::kind`]: crate::OrderRejection::kind
//! [`GovernanceRejection::kind`]: crate::governance::GovernanceRejection::kind
//! [`SignedDelivery`]: crate::delivery::SignedDelivery
//! [`DeliveryRejection::kind`]: crate::delivery::DeliveryRejection::kind

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use voltmesh_engine::{Money, ParticipantId, Side, Tariffs, Trade, Wh};

use crate::governance::{Member, Policies, Proposal, ProposalHash, Rules, SignedProposal};
use crate::{Currency, GenesisValidator, IntervalClearing, PublicKey, SignedOrder};

/// `GET`: the node API's OpenAPI document (feature `openapi` of this crate generates it).
pub const OPENAPI: &str = "/v1/openapi.json";
/// `POST`: submit a signed order.
pub const ORDERS: &str = "/v1/orders";
/// `GET`: what became of a participant's order, by id ([`OrderStatusView`]).
///
/// Ids are unique per participant within an interval, so one id may name orders in several
/// intervals: the answer lists every interval the node knows the id in, oldest first; the
/// optional query `?interval=<Unix seconds>` narrows it to one.
pub const ORDER_STATUS: &str = "/v1/orders/{participant}/{id}";
/// `GET`: an interval's clearing.
pub const INTERVAL: &str = "/v1/intervals/{start}";
/// `GET`, signed ([`crate::read`]): a participant's trades and balance.
pub const PARTICIPANT: &str = "/v1/participants/{id}";
/// `GET`, signed: a participant's committed bills of `?from=` (inclusive) to `?to=` (exclusive)
/// ([`BillsView`]).
pub const PARTICIPANT_BILLS: &str = "/v1/participants/{id}/bills";
/// `GET`, signed: a participant's statement for `?from=` to `?to=`
/// ([`crate::bill::Statement`]).
pub const PARTICIPANT_STATEMENT: &str = "/v1/participants/{id}/statement";
/// `GET`: the neighborhood's settled intervals of `?from=` to `?to=`, aggregates only
/// ([`SettlementsView`]).
pub const SETTLEMENTS: &str = "/v1/settlements";
/// `GET`, signed by a billing key: one interval's settlement with every bill
/// ([`SettlementView`]).
pub const SETTLEMENT: &str = "/v1/settlements/{start}";
/// `POST`, signed by a billing key inside the body: a correction import
/// ([`crate::correction::SignedCorrection`]), answered 202 [`CorrectionAnswer`]; `GET`, signed
/// by a billing key: the corrections of `?from=` to `?to=` ([`CorrectionsView`]).
pub const CORRECTIONS: &str = "/v1/corrections";
/// `GET`: a committed block.
pub const BLOCK: &str = "/v1/blocks/{height}";
/// `GET`: the node's status.
pub const STATUS: &str = "/v1/status";
/// `GET`: the node's latest ledger snapshot with its proof ([`SnapshotView`]), for state sync.
pub const SNAPSHOT: &str = "/v1/snapshot";
/// `POST`: a signed governance proposal ([`crate::governance::SignedProposal`]), answered 202
/// [`ProposalAnswer`]; `GET`: the community ([`CommunityView`]).
pub const GOVERNANCE: &str = "/v1/governance";

/// The path of [`INTERVAL`] for `start` (Unix seconds).
pub fn interval_path(start: i64) -> String {
    format!("/v1/intervals/{start}")
}

/// The path of [`ORDER_STATUS`] for `participant`'s order `id` (both percent-encoded), narrowed
/// to one interval if `interval_start` is given.
pub fn order_status_path(participant: &str, id: &str, interval_start: Option<i64>) -> String {
    let mut path = format!(
        "/v1/orders/{}/{}",
        percent_encode(participant),
        percent_encode(id)
    );
    if let Some(start) = interval_start {
        path.push_str(&format!("?interval={start}"));
    }
    path
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The path of [`PARTICIPANT`] for `id`.
pub fn participant_path(id: &str) -> String {
    format!("/v1/participants/{id}")
}

/// Most settled intervals one page of [`PARTICIPANT_BILLS`] or [`SETTLEMENTS`] looks at (a
/// month of 15-minute intervals).
pub const MAX_SETTLED_PAGE: usize = 2_976;

/// The path of [`PARTICIPANT_BILLS`] for `id` and the intervals `from..to`.
pub fn bills_path(id: &str, from: i64, to: i64) -> String {
    format!("/v1/participants/{id}/bills?from={from}&to={to}")
}

/// The path of [`PARTICIPANT_STATEMENT`] for `id` and the intervals `from..to`.
pub fn statement_path(id: &str, from: i64, to: i64) -> String {
    format!("/v1/participants/{id}/statement?from={from}&to={to}")
}

/// The path of [`SETTLEMENTS`] for the intervals `from..to`.
pub fn settlements_path(from: i64, to: i64) -> String {
    format!("/v1/settlements?from={from}&to={to}")
}

/// The path of [`CORRECTIONS`] for the intervals `from..to`.
pub fn corrections_path(from: i64, to: i64) -> String {
    format!("/v1/corrections?from={from}&to={to}")
}

/// The path of [`SETTLEMENT`] for `start`.
pub fn settlement_path(start: i64) -> String {
    format!("/v1/settlements/{start}")
}

/// The path of [`BLOCK`] for `height`.
pub fn block_path(height: u64) -> String {
    format!("/v1/blocks/{height}")
}

/// Error kinds the API itself answers (order rejections use [`crate::OrderRejection::kind`]).
pub mod error_kind {
    /// 400: the order body is not a signed order.
    pub const MALFORMED_BODY: &str = "malformed_body";
    /// 400: the interval is neither Unix seconds nor RFC 3339.
    pub const MALFORMED_INTERVAL: &str = "malformed_interval";
    /// 400: the height is not a non-negative integer.
    pub const MALFORMED_HEIGHT: &str = "malformed_height";
    /// 400: a query parameter does not parse (`limit` not a positive integer).
    pub const MALFORMED_QUERY: &str = "malformed_query";
    /// 404: the interval has not cleared (yet).
    pub const NOT_CLEARED: &str = "not_cleared";
    /// 404: the node holds no ledger snapshot yet (or its genesis turns snapshots off).
    pub const NO_SNAPSHOT: &str = "no_snapshot";
    /// 404: no committed block at that height.
    pub const NOT_COMMITTED: &str = "not_committed";
    /// 404: the node knows no order of the participant with that id (never submitted here, or
    /// dropped so long ago that the node no longer remembers it).
    pub const UNKNOWN_ORDER: &str = "unknown_order";
    /// 404: the interval's bills are not committed (yet).
    pub const NOT_SETTLED: &str = "not_settled";
    /// 503: the node's request queue is full; retry.
    pub const BUSY: &str = "busy";
    /// 503: the node is shutting down.
    pub const STOPPING: &str = "stopping";
    /// 413: the request body is larger than the node reads (orders are small).
    pub const BODY_TOO_LARGE: &str = "body_too_large";
    /// 413: an array of more than [`super::MAX_BATCH_ORDERS`] orders.
    pub const BATCH_TOO_LARGE: &str = "batch_too_large";
    /// 422: the mempool is full; retry (an [`crate::OrderRejection::MempoolFull`]).
    pub const MEMPOOL_FULL: &str = "mempool_full";
    /// 422: the participant has as many pending orders as allowed; retry once some are in a
    /// block (an [`crate::OrderRejection::ParticipantPendingFull`]).
    pub const PARTICIPANT_PENDING_FULL: &str = "participant_pending_full";
    /// 422: the nonce was used already (a resubmission of an accepted order, or a replay).
    pub const REPLAYED_NONCE: &str = "replayed_nonce";
    /// 422: the interval already has an order with this id.
    pub const DUPLICATE_ID: &str = "duplicate_id";
}

/// The answer to an accepted order: `{"status":"accepted"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Accepted {
    /// Always `"accepted"`.
    pub status: String,
}

impl Default for Accepted {
    fn default() -> Self {
        Accepted {
            status: "accepted".into(),
        }
    }
}

/// Most orders one `POST /v1/orders` array may carry; a longer one is answered 413
/// `batch_too_large`.
pub const MAX_BATCH_ORDERS: usize = 1_000;

/// `POST`: metered deliveries (a JSON array), for the node's next blocks
/// ([`crate::delivery`]).
pub const DELIVERIES: &str = "/v1/deliveries";

/// Most deliveries one `POST /v1/deliveries` array may carry; a longer one is answered 413
/// `batch_too_large`.
pub const MAX_BATCH_DELIVERIES: usize = 1_000;

/// The answer to `POST /v1/orders` with a JSON array of orders (HTTP 200): one result per order,
/// in the array's order, each what the order alone would have been answered (202's body or
/// 422's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchAnswer {
    /// One per order, in order.
    pub results: Vec<BatchResult>,
}

/// What `POST /v1/orders` takes: one signed order (answered 202 or 422), or a JSON array of at
/// most [`MAX_BATCH_ORDERS`] (answered 200 with a [`BatchAnswer`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum OrderSubmission {
    /// One order.
    One(SignedOrder),
    /// Several, each admitted or refused on its own.
    Many(Vec<SignedOrder>),
}

/// One order's result in a [`BatchAnswer`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum BatchResult {
    /// In the mempool: `{"status":"accepted"}`.
    Accepted(Accepted),
    /// Refused: `{"error": kind, "message": text}` with an order rejection kind.
    Refused(ErrorBody),
}

/// The answer to an accepted signed proposal (HTTP 202): the node holds its approvals and puts
/// them in the next block it proposes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProposalAnswer {
    /// The proposal's identity ([`crate::governance::ProposalHash`]), 64 hex digits.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub hash: ProposalHash,
    /// Approvals by keys of the action's policy once these are committed (this node's held
    /// approvals and the committed ones included).
    pub approved: usize,
    /// How many the policy needs: at `approved >= threshold` the action takes effect in the
    /// block that commits these approvals.
    pub threshold: u32,
}

/// Rules from an interval on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledRules {
    /// First interval (Unix seconds) they apply to; `None`: since genesis.
    pub from_interval: Option<i64>,
    /// The rules.
    pub rules: Rules,
}

/// A proposal collecting approvals on the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingProposalView {
    /// Its identity.
    pub hash: ProposalHash,
    /// The proposal.
    pub proposal: Proposal,
    /// Keys whose approvals are committed.
    pub approved_by: Vec<PublicKey>,
    /// How many approvals its policy needs.
    pub threshold: u32,
}

/// `GET /v1/governance`: the community as the committed ledger says, and the proposals this
/// node holds for its next blocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommunityView {
    /// The neighborhood.
    pub neighborhood: String,
    /// The currency of every price and amount (ISO 4217), from genesis.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "EUR"))]
    pub currency: Currency,
    /// Committed height the view is at.
    pub height: u64,
    /// The validator set's epoch as the committed ledger says (0: the genesis set; one more per
    /// committed `set_validators`).
    pub epoch: u64,
    /// The validator set (`public_key`, `address`).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub validators: Vec<GenesisValidator>,
    /// Who may approve what: `members`, `rules` and optionally `prices`, each
    /// `{"keys": [..], "threshold": n}`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub policies: Policies,
    /// The rule schedule, oldest first: `{"from_interval": null | start, "rules": {..}}`.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub rules: Vec<ScheduledRules>,
    /// Per-interval tariffs published (a supplier's dynamic tariff) for intervals not cleared
    /// yet: interval start → tariffs; they replace the rules' tariffs for that interval.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub prices: BTreeMap<i64, Tariffs>,
    /// Every participant, removed ones included: id → `{"keys": [..], "removed_from"?}`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub participants: BTreeMap<ParticipantId, Member>,
    /// Proposals collecting approvals on the ledger: `hash`, `proposal`, `approved_by`,
    /// `threshold`.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub pending: Vec<PendingProposalView>,
    /// Actions that took effect since genesis.
    pub actions_applied: u64,
    /// Signed proposals this node holds for its next blocks.
    pub held: Vec<SignedProposal>,
}

/// Every error answer: `{"error": kind, "message": text}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// A stable, low-cardinality kind ([`error_kind`], [`crate::OrderRejection::kind`]).
    pub error: String,
    /// For humans.
    #[serde(default)]
    pub message: String,
}

impl ErrorBody {
    /// An error body.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorBody {
            error: kind.into(),
            message: message.into(),
        }
    }
}

/// What became of one order.
///
/// A 202 to `POST /v1/orders` means the order commits unless its gate closes first (`expired`), or
/// a limit filled by orders other nodes accepted at the same time refuses it (`refused`); a node
/// keeps a bounded record of recently expired and refused orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum OrderState {
    /// Accepted, waiting for a block.
    Pending,
    /// In a committed block.
    Committed {
        /// The block's height.
        height: u64,
        /// The block's hash, hex.
        block_hash: String,
    },
    /// Dropped because the interval's gate closed before a block took it.
    Expired {
        /// An [`crate::OrderRejection::kind`] (`closed_interval`).
        reason: String,
        /// For humans.
        message: String,
    },
    /// Dropped because the ledger refused it after it was accepted (for example a limit that
    /// orders accepted by other nodes filled first).
    Refused {
        /// An [`crate::OrderRejection::kind`].
        reason: String,
        /// For humans.
        message: String,
    },
}

/// One interval's order with the requested id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderStatusEntry {
    /// Delivery interval start, Unix seconds.
    pub interval_start: i64,
    /// What became of it.
    pub status: OrderState,
}

/// The answer of [`ORDER_STATUS`]: every interval in which the node knows the participant's id,
/// oldest first (one entry with `?interval=`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderStatusView {
    /// The participant.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub participant: ParticipantId,
    /// The order id.
    pub id: String,
    /// One entry per interval, oldest first; never empty (an unknown order is a 404).
    pub orders: Vec<OrderStatusEntry>,
}

/// One of a participant's trades.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ParticipantTrade {
    /// Delivery interval start, Unix seconds.
    pub interval_start: i64,
    /// `buy` or `sell` from the participant's side.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Side))]
    pub side: Side,
    /// The trade.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Trade))]
    pub trade: Trade,
}

/// A participant's position over all committed trades.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Balance {
    /// Energy bought.
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub bought_wh: Wh,
    /// Energy sold.
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub sold_wh: Wh,
    /// Paid for purchases minus received for sales, exact (network fees and utility settlement
    /// are billed after delivery, from metered energy). A decimal string with nine decimals.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "0.025000000"))]
    pub net_paid: Money,
    /// Paid for purchases, exact (the sum of the participant's bought trades' values; never
    /// decreases). A decimal string with nine decimals. `net_paid = paid - received`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "0.025000000"))]
    pub paid: Money,
    /// Received for sales, exact (the sum of the participant's sold trades' values; never
    /// decreases). A decimal string with nine decimals.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "0.000000000"))]
    pub received: Money,
    /// The currency of the amounts (ISO 4217), from genesis.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "EUR"))]
    pub currency: Currency,
}

/// `GET /v1/participants/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ParticipantView {
    /// The pseudonym.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub participant: ParticipantId,
    /// Totals.
    pub balance: Balance,
    /// Trades of the intervals asked for (`from`, `to`, `limit` query parameters; all
    /// intervals by default), oldest first, whole intervals at a time.
    pub trades: Vec<ParticipantTrade>,
    /// When the range holds more trades than the page: the `from` of the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_from: Option<i64>,
}

/// `GET /v1/participants/{id}/bills`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BillsView {
    /// The pseudonym.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub participant: ParticipantId,
    /// Its committed bills of the intervals asked for, oldest first.
    pub bills: Vec<crate::bill::CommittedBill>,
    /// When more intervals are settled in the range than one page looks at: the `from` of the
    /// next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_from: Option<i64>,
}

/// `GET /v1/settlements`: aggregates anyone may read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SettlementsView {
    /// The settled intervals asked for, oldest first.
    pub settled: Vec<crate::bill::Settled>,
    /// When the range holds more: the `from` of the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_from: Option<i64>,
}

/// `GET /v1/settlements/{start}`: for billing keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SettlementView {
    /// The summary, with the block that committed it.
    pub settled: crate::bill::Settled,
    /// Every bill, by participant.
    pub bills: Vec<crate::bill::Bill>,
    /// The interval's corrections committed so far, as committed
    /// ([`crate::correction`]); the bills above stand as billed.
    pub corrections: Vec<crate::correction::CommittedCorrections>,
}

/// `GET /v1/corrections`: for billing keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CorrectionsView {
    /// The corrections of the intervals asked for, by interval then as committed.
    pub corrections: Vec<crate::correction::CommittedCorrections>,
    /// When the range holds more: the `from` of the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_from: Option<i64>,
}

/// `POST /v1/corrections`: the import was taken for the node's next blocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CorrectionAnswer {
    /// The signed import's digest ([`crate::correction::SignedCorrection::digest`]): the
    /// committed corrections name it.
    pub digest: String,
}

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusView {
    /// Neighborhood name.
    pub neighborhood: String,
    /// This node's validator index (in the consensus validator set).
    pub validator: u16,
    /// Committed height.
    pub height: u64,
    /// Hash of the committed tip, hex.
    pub committed_hash: String,
    /// Current view.
    pub view: u64,
    /// Connected validators.
    pub peers: usize,
    /// Size of the validator set.
    pub validators: usize,
    /// Block time of the last commit (ms since the epoch), if any.
    pub last_commit_ms: Option<u64>,
    /// Orders waiting for a block.
    pub mempool: usize,
    /// Orders committed so far.
    pub orders_committed: u64,
    /// Blocks proposed by this node whose payload honest validators refused.
    pub rejected_proposals: u64,
    /// Votes this node signed since it started (a node restored without a trustworthy safety
    /// record, or state-synced, signs none until it is provably past every view it could have
    /// signed in).
    #[serde(default)]
    pub votes: u64,
}

/// `GET /v1/blocks/{height}`: a committed block, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlockView {
    /// Height (genesis is 0).
    pub height: u64,
    /// The block's hash, hex.
    pub hash: String,
    /// The parent's hash, hex.
    pub parent: String,
    /// The view it was proposed in.
    pub view: u64,
    /// The proposer's validator index.
    pub proposer: u16,
    /// The validators recorded as failed leaders: the leaders of the views between its
    /// justify's view and its own, which produced no certified block. They stay out of the
    /// leader rotation for the reputation window.
    pub failed_leaders: Vec<u16>,
    /// The validators whose votes form its justify (the certificate of its parent).
    #[serde(default)]
    pub justify_signers: Vec<u16>,
    /// Block time: the proposer's clock, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// The orders it carries, in ledger order.
    pub orders: Vec<SignedOrder>,
    /// The full clearings of the intervals it records, oldest first, as the answering node
    /// computed them (the block itself carries each one's price, volume, trade count and
    /// SHA-256, which every validator checked against its own).
    pub clearings: Vec<IntervalClearing>,
    /// How many metered deliveries it carries (a household's deliveries are its load curve:
    /// the API does not show them to anyone who asks).
    #[serde(default)]
    pub deliveries: usize,
}

/// `GET /v1/snapshot`: the ledger state after a committed block, and the blocks that prove it.
///
/// A node that starts empty with `[state_sync]` peers verifies it before use (see
/// `consensus/README.md`, "Snapshots and state sync"): `proof` holds the committed blocks from
/// `height` up, each the parent of the next; the block at `height + 1` carries the SHA-256 of
/// `state`; a later pair of consecutive-view blocks, certified by the justify of the block after
/// them, proves them (and so `height`) committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SnapshotView {
    /// Height of the block the state follows.
    pub height: u64,
    /// That block's hash, hex.
    pub block_hash: String,
    /// The state, in its canonical encoding (a JSON document, as a string: its exact bytes
    /// are what the digest covers).
    pub state: String,
    /// The proof blocks, in the consensus encoding, hex, from `height` up.
    pub proof: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;
    use std::fmt::Debug;

    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) -> String {
        let text = serde_json::to_string(value).expect("serialise");
        let back: T = serde_json::from_str(&text).expect("deserialise");
        assert_eq!(&back, value);
        text
    }

    #[test]
    fn status_round_trips_with_every_field() {
        let status = StatusView {
            neighborhood: "nb".into(),
            validator: 2,
            height: 41,
            committed_hash: "ab".repeat(32),
            view: 44,
            peers: 3,
            validators: 4,
            last_commit_ms: Some(1_790_000_000_123),
            mempool: 5,
            orders_committed: 17,
            rejected_proposals: 1,
            votes: 12,
        };
        let text = round_trip(&status);
        for field in [
            "\"last_commit_ms\":1790000000123",
            "\"rejected_proposals\":1",
            "\"committed_hash\":",
        ] {
            assert!(text.contains(field), "{field} in {text}");
        }
        round_trip(&StatusView {
            last_commit_ms: None,
            ..status
        });
    }

    #[test]
    fn participant_and_error_views_round_trip() {
        let view = ParticipantView {
            participant: "hh-1".into(),
            balance: Balance {
                bought_wh: 100,
                sold_wh: 0,
                net_paid: Money::ZERO,
                paid: Money::from_nanos(20_000_000),
                received: Money::from_nanos(20_000_000),
                currency: Currency::EUR,
            },
            trades: Vec::new(),
            next_from: Some(1_700_000_000),
        };
        round_trip(&view);
        // A balance from before `paid` and `received` existed still reads (as zero).
        let older: Balance =
            serde_json::from_str(r#"{"bought_wh":1,"sold_wh":2,"net_paid":"0.000000000"}"#)
                .expect("an older balance");
        assert_eq!((older.paid, older.received), (Money::ZERO, Money::ZERO));
        assert_eq!(
            round_trip(&ErrorBody::new("bad_signature", "bad signature")),
            r#"{"error":"bad_signature","message":"bad signature"}"#
        );
        let bare: ErrorBody = serde_json::from_str(r#"{"error":"busy"}"#).expect("no message");
        assert_eq!(bare.message, "");
        assert_eq!(round_trip(&Accepted::default()), r#"{"status":"accepted"}"#);
    }

    #[test]
    fn block_view_sends_timestamp_ms() {
        let block = BlockView {
            height: 3,
            hash: "11".repeat(32),
            parent: "22".repeat(32),
            view: 3,
            proposer: 1,
            failed_leaders: Vec::new(),
            justify_signers: vec![0, 2, 3],
            timestamp_ms: 1_790_000_000_000,
            orders: Vec::new(),
            clearings: Vec::new(),
            deliveries: 0,
        };
        assert!(round_trip(&block).contains("\"timestamp_ms\":1790000000000"));
    }

    #[test]
    fn paths_fill_the_routes() {
        assert_eq!(interval_path(900), INTERVAL.replace("{start}", "900"));
        assert_eq!(participant_path("h1"), PARTICIPANT.replace("{id}", "h1"));
        assert_eq!(block_path(7), BLOCK.replace("{height}", "7"));
        assert_eq!(
            order_status_path("h1", "a-1", None),
            ORDER_STATUS
                .replace("{participant}", "h1")
                .replace("{id}", "a-1")
        );
        assert_eq!(
            order_status_path("h 1", "a/b?", Some(900)),
            "/v1/orders/h%201/a%2Fb%3F?interval=900"
        );
    }

    #[test]
    fn order_states_are_tagged() {
        let view = OrderStatusView {
            participant: "h1".into(),
            id: "a".into(),
            orders: vec![
                OrderStatusEntry {
                    interval_start: 900,
                    status: OrderState::Committed {
                        height: 3,
                        block_hash: "ab".into(),
                    },
                },
                OrderStatusEntry {
                    interval_start: 1800,
                    status: OrderState::Pending,
                },
            ],
        };
        let text = serde_json::to_string(&view).unwrap();
        assert!(
            text.contains(r#"{"state":"committed","height":3,"block_hash":"ab"}"#),
            "{text}"
        );
        assert!(text.contains(r#"{"state":"pending"}"#), "{text}");
        assert_eq!(
            serde_json::from_str::<OrderStatusView>(&text).unwrap(),
            view
        );
    }
}
