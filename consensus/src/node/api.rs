//! The node's HTTP/JSON API (see `consensus/README.md`, section "Node API"). What each route
//! sends and receives is the wire contract's ([`voltmesh_wire::api`]); this module serves it.
//!
//! Handlers never touch node state: each request becomes an [`ApiRequest`] on a bounded queue to
//! the node's driver task, answered on a `oneshot`. A full queue answers 503 at once.
//!
//! | method | path | answer |
//! |---|---|---|
//! | POST | `/v1/orders` | a JSON array of orders: 200 [`BatchAnswer`], one result per order; 413 `batch_too_large` over [`wire_api::MAX_BATCH_ORDERS`] |
//! | POST | `/v1/orders` | one order: 202 `{"status":"accepted"}`; 400 `malformed_body`; 422 with `error` = `bad_signature`, `unknown_participant`, `key_not_allowed`, `participant_removed`, `bad_order_id`, `order_id_too_long`, `participant_interval_full`, `interval_full`, `participant_pending_full`, `replayed_nonce` (older nodes), `wrong_interval`, `closed_interval`, `price_outside_tariffs`, `duplicate_id`, `market_rules`, `mempool_full` |
//! | GET | `/v1/orders/{participant}/{id}` | [`OrderStatusView`]: the order's state (pending, committed, expired, refused) in every interval the node knows the id in, or only in `?interval=`; 400 `malformed_interval`; 404 `unknown_order` |
//! | GET | `/v1/intervals/{start}` | the interval's clearing and trades (`start` in Unix seconds or RFC 3339); 404 before it clears |
//! | GET | `/v1/participants/{id}` | signed by one of the participant's keys or a billing key ([`voltmesh_wire::read`]; 401/403 otherwise): [`ParticipantView`]: the participant's balance and its trades of the intervals `?from=` (inclusive) to `?to=` (exclusive), oldest first, at most `?limit=` (default [`DEFAULT_TRADES_PAGE`]) in whole intervals, with `next_from` when more follow; 400 `malformed_interval`, `malformed_query` |
//! | GET | `/v1/participants/{id}/bills`, `/statement`; `/v1/settlements`, `/v1/settlements/{start}` | bills and statements: see `api_reads.rs` |
//! | GET | `/v1/blocks/{height}` | a committed block, decoded ([`BlockView`]: `timestamp_ms`, orders, clearings) |
//! | GET | `/v1/openapi.json` | the API's OpenAPI document, generated from the wire types ([`voltmesh_wire::openapi`]) |
//! | GET | `/v1/snapshot` | [`SnapshotView`]: the latest ledger snapshot and the committed blocks that prove it, for state sync; 404 `no_snapshot` |
//! | POST | `/v1/governance` | a signed governance proposal: 202 [`ProposalAnswer`] (approvals counted once committed, and the policy's threshold); 400 `malformed_body`; 422 with `error` = a [`GovernanceRejection::kind`] |
//! | GET | `/v1/governance` | [`CommunityView`]: participants and their keys, the rule schedule, policies, validators and epoch, proposals collecting approvals, and those this node holds for its next blocks |
//! | GET | `/v1/status` | [`StatusView`]: height, committed hash, view, peers, validators, last commit time, mempool, orders committed, rejected proposals |
//!
//! # Limits (audit L10)
//! Every route answers within [`ApiLimits::request_timeout_ms`] or with 503 `busy`; at most
//! [`ApiLimits::max_concurrent_requests`] are handled at once and any more are answered 503
//! `busy` at once (no queueing); a body over [`ApiLimits::max_body_bytes`] is answered 413
//! `body_too_large`. Connections are bounded and have a read deadline
//! ([`ApiLimits::max_connections`], [`ApiLimits::read_timeout_ms`]; see `api_listener.rs`). A
//! 503 after the node took the request (a timeout) may still have admitted the order: ask the
//! order-status route before resending. Every error body has the [`ErrorBody`] shape.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot, Semaphore};
use voltmesh_engine::ParticipantId;
use voltmesh_wire::api::CorrectionsView;
use voltmesh_wire::api::{
    self as wire_api, error_kind, Accepted, BatchAnswer, BatchResult, BlockView, ErrorBody,
    OrderStatusView, ParticipantView, SnapshotView, StatusView,
};
use voltmesh_wire::api::{BillsView, CommunityView, ProposalAnswer};
use voltmesh_wire::bill::Statement;
use voltmesh_wire::correction::{CorrectionRejection, SignedCorrection};
use voltmesh_wire::delivery::{DeliveryRejection, SignedDelivery};
use voltmesh_wire::governance::{GovernanceRejection, SignedProposal};
use voltmesh_wire::{IntervalClearing, OrderRejection, SignedOrder};

use super::api_reads::{self, Period, ReadAuth, ReadReply, SettlementReply, SettlementsReply};
use crate::index::Index;
use crate::ledger::BlockBody;
use crate::protocol::Block;
use crate::store::StoreError;

/// A request from the API to the driver.
#[derive(Debug)]
pub enum ApiRequest {
    /// Submit a signed order.
    SubmitOrder(SignedOrder, oneshot::Sender<Result<(), OrderRejection>>),
    /// Submit several signed orders, each admitted (or refused) on its own, in order.
    SubmitBatch(
        Vec<SignedOrder>,
        oneshot::Sender<Vec<Result<(), OrderRejection>>>,
    ),
    /// What became of an order: participant, id, optionally one interval.
    OrderStatus(
        ParticipantId,
        String,
        Option<i64>,
        ReadAuth,
        ReadReply<Option<OrderStatusView>>,
    ),
    /// An interval's clearing, as much of it as the reader may see.
    Interval(i64, ReadAuth, ReadReply<Option<IntervalClearing>>),
    /// A participant's balance and a page of its trades, for a signed reader.
    Participant(
        ParticipantId,
        TradeQuery,
        ReadAuth,
        ReadReply<ParticipantView>,
    ),
    /// A participant's committed bills of a period, for a signed reader.
    Bills(ParticipantId, Period, ReadAuth, ReadReply<BillsView>),
    /// A participant's statement for a period, for a signed reader.
    Statement(ParticipantId, Period, ReadAuth, ReadReply<Statement>),
    /// The settled intervals of a period, aggregates only.
    Settlements(Period, SettlementsReply),
    /// One interval's settlement with every bill, for a billing key.
    Settlement(i64, ReadAuth, SettlementReply),
    /// A committed block, as much of it as the reader may see.
    Block(u64, ReadAuth, ReadReply<Option<BlockView>>),
    /// The node's status.
    Status(oneshot::Sender<StatusView>),
    /// The latest ledger snapshot with its proof, for a billing or validator key.
    Snapshot(ReadAuth, ReadReply<Option<Arc<SnapshotView>>>),
    /// Submit a signed governance proposal.
    SubmitProposal(
        SignedProposal,
        oneshot::Sender<Result<ProposalAnswer, GovernanceRejection>>,
    ),
    /// The community as the committed ledger says.
    Community(oneshot::Sender<CommunityView>),
    /// Submit metered deliveries, each taken (or refused) on its own, in order.
    SubmitDeliveries(
        Vec<SignedDelivery>,
        oneshot::Sender<Vec<Result<(), DeliveryRejection>>>,
    ),
    /// Submit a correction import; answered with its digest.
    SubmitCorrection(
        SignedCorrection,
        oneshot::Sender<Result<String, CorrectionRejection>>,
    ),
    /// The corrections of a period, for a billing key.
    Corrections(Period, ReadAuth, ReadReply<CorrectionsView>),
}

pub(super) fn error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    (status, Json(ErrorBody::new(kind, message))).into_response()
}

/// A committed block as the API shows it, its clearing records expanded to the full clearings
/// from the node's `index` (which it computed when it executed the block).
pub(crate) fn block_view(block: &Block, index: &Index) -> Result<BlockView, StoreError> {
    let body = BlockBody::decode(block.payload()).unwrap_or_default();
    let mut clearings = Vec::with_capacity(body.clearings.len());
    for record in &body.clearings {
        clearings.extend(index.clearing(record.interval_start)?);
    }
    Ok(BlockView {
        height: block.height(),
        hash: hex::encode(block.hash().0),
        parent: hex::encode(block.parent().0),
        view: block.view(),
        proposer: block.proposer().0,
        failed_leaders: block.failed_leaders().iter().map(|v| v.0).collect(),
        justify_signers: block.justify().signers().map(|v| v.0).collect(),
        timestamp_ms: block.timestamp_ms(),
        deliveries: body.deliveries.len(),
        orders: body.orders,
        clearings,
    })
}

/// Which of a participant's trades `GET /v1/participants/{id}` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradeQuery {
    /// First interval (inclusive), if any.
    pub from: Option<i64>,
    /// End interval (exclusive), if any.
    pub to: Option<i64>,
    /// Most trades in the page (whole intervals; see [`Index::trades_of`]).
    pub limit: usize,
}

/// Trades per participant page unless `limit` says otherwise.
pub const DEFAULT_TRADES_PAGE: usize = 1_000;

/// Parses `from`, `to` (Unix seconds or RFC 3339) and `limit`; other parameters are ignored.
/// A bad one is `(error kind, message)`.
fn trade_query(query: Option<&str>) -> Result<TradeQuery, (&'static str, String)> {
    let mut parsed = TradeQuery {
        from: None,
        to: None,
        limit: DEFAULT_TRADES_PAGE,
    };
    for pair in query.unwrap_or_default().split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let bad_interval = || {
            (
                error_kind::MALFORMED_INTERVAL,
                format!("{key}: use Unix seconds or RFC 3339"),
            )
        };
        match key {
            "from" => parsed.from = Some(parse_interval(value).ok_or_else(bad_interval)?),
            "to" => parsed.to = Some(parse_interval(value).ok_or_else(bad_interval)?),
            "limit" => {
                parsed.limit = value.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    (
                        error_kind::MALFORMED_QUERY,
                        "limit: a positive integer".to_owned(),
                    )
                })?;
            }
            _ => {}
        }
    }
    Ok(parsed)
}

pub(super) async fn ask<T>(
    tx: &mpsc::Sender<ApiRequest>,
    make: impl FnOnce(oneshot::Sender<T>) -> ApiRequest,
) -> Result<T, Response> {
    let (reply, rx) = oneshot::channel();
    tx.try_send(make(reply)).map_err(|_| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            error_kind::BUSY,
            "the node is busy; retry",
        )
    })?;
    rx.await.map_err(|_| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            error_kind::STOPPING,
            "the node is shutting down",
        )
    })
}

async fn submit(
    State(tx): State<mpsc::Sender<ApiRequest>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                error_kind::BODY_TOO_LARGE,
                rejection.body_text(),
            )
        }
        Err(rejection) => {
            return error(
                rejection.status(),
                error_kind::MALFORMED_BODY,
                rejection.body_text(),
            )
        }
    };
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return submit_batch(&tx, &body).await;
    }
    let order: SignedOrder = match serde_json::from_slice(&body) {
        Ok(order) => order,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                error_kind::MALFORMED_BODY,
                e.to_string(),
            )
        }
    };
    match ask(&tx, |reply| ApiRequest::SubmitOrder(order, reply)).await {
        Ok(Ok(())) => (StatusCode::ACCEPTED, Json(Accepted::default())).into_response(),
        Ok(Err(rejection)) => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            rejection.kind(),
            rejection.to_string(),
        ),
        Err(response) => response,
    }
}

/// `POST /v1/orders` with a JSON array: 200 with one result per order.
async fn submit_batch(tx: &mpsc::Sender<ApiRequest>, body: &[u8]) -> Response {
    let orders: Vec<SignedOrder> = match serde_json::from_slice(body) {
        Ok(orders) => orders,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                error_kind::MALFORMED_BODY,
                e.to_string(),
            )
        }
    };
    if orders.len() > wire_api::MAX_BATCH_ORDERS {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            error_kind::BATCH_TOO_LARGE,
            format!(
                "{} orders; at most {} per request",
                orders.len(),
                wire_api::MAX_BATCH_ORDERS
            ),
        );
    }
    match ask(tx, |reply| ApiRequest::SubmitBatch(orders, reply)).await {
        Ok(results) => batch_answer(results, OrderRejection::kind),
        Err(response) => response,
    }
}

/// 200 with one result per submission, in order: accepted, or the error body of its refusal.
fn batch_answer<E: std::fmt::Display>(
    results: Vec<Result<(), E>>,
    kind: impl Fn(&E) -> &'static str,
) -> Response {
    Json(BatchAnswer {
        results: results
            .into_iter()
            .map(|result| match result {
                Ok(()) => BatchResult::Accepted(Accepted::default()),
                Err(rejection) => {
                    BatchResult::Refused(ErrorBody::new(kind(&rejection), rejection.to_string()))
                }
            })
            .collect(),
    })
    .into_response()
}

pub(super) fn parse_interval(text: &str) -> Option<i64> {
    text.parse::<i64>().ok().or_else(|| {
        chrono::DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.timestamp())
    })
}

async fn interval(
    State(tx): State<mpsc::Sender<ApiRequest>>,
    Path(start): Path<String>,
    auth: ReadAuth,
) -> Response {
    let Some(start) = parse_interval(&start) else {
        return error(
            StatusCode::BAD_REQUEST,
            error_kind::MALFORMED_INTERVAL,
            "use Unix seconds or RFC 3339",
        );
    };
    match ask(&tx, |reply| ApiRequest::Interval(start, auth, reply)).await {
        Ok(Err(rejection)) => api_reads::refused(&rejection),
        Ok(Ok(Some(clearing))) => Json(clearing).into_response(),
        Ok(Ok(None)) => error(
            StatusCode::NOT_FOUND,
            error_kind::NOT_CLEARED,
            format!("interval {start} has not cleared"),
        ),
        Err(response) => response,
    }
}

async fn order_status(
    State(tx): State<mpsc::Sender<ApiRequest>>,
    Path((participant, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    auth: ReadAuth,
) -> Response {
    // The only parameter is `interval` (Unix seconds or RFC 3339); others are ignored.
    let wanted = query
        .as_deref()
        .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("interval=")));
    let interval = match wanted.map(parse_interval) {
        None => None,
        Some(Some(start)) => Some(start),
        Some(None) => {
            return error(
                StatusCode::BAD_REQUEST,
                error_kind::MALFORMED_INTERVAL,
                "use Unix seconds or RFC 3339",
            )
        }
    };
    let who = ParticipantId::from(participant.as_str());
    match ask(&tx, |reply| {
        ApiRequest::OrderStatus(who, id.clone(), interval, auth, reply)
    })
    .await
    {
        Ok(Err(rejection)) => api_reads::refused(&rejection),
        Ok(Ok(Some(view))) => Json(view).into_response(),
        Ok(Ok(None)) => error(
            StatusCode::NOT_FOUND,
            error_kind::UNKNOWN_ORDER,
            format!("no order {id} of {participant} is known here"),
        ),
        Err(response) => response,
    }
}

async fn participant(
    State(tx): State<mpsc::Sender<ApiRequest>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    auth: ReadAuth,
) -> Response {
    let query = match trade_query(query.as_deref()) {
        Ok(query) => query,
        Err((kind, message)) => return error(StatusCode::BAD_REQUEST, kind, message),
    };
    match ask(&tx, |reply| {
        ApiRequest::Participant(ParticipantId::from(id), query, auth, reply)
    })
    .await
    {
        Ok(Ok(view)) => Json(view).into_response(),
        Ok(Err(rejection)) => api_reads::refused(&rejection),
        Err(response) => response,
    }
}

async fn block(
    State(tx): State<mpsc::Sender<ApiRequest>>,
    Path(height): Path<String>,
    auth: ReadAuth,
) -> Response {
    let Ok(height) = height.parse::<u64>() else {
        return error(
            StatusCode::BAD_REQUEST,
            error_kind::MALFORMED_HEIGHT,
            "height is a non-negative integer",
        );
    };
    match ask(&tx, |reply| ApiRequest::Block(height, auth, reply)).await {
        Ok(Err(rejection)) => api_reads::refused(&rejection),
        Ok(Ok(Some(block))) => Json(block).into_response(),
        Ok(Ok(None)) => error(
            StatusCode::NOT_FOUND,
            error_kind::NOT_COMMITTED,
            format!("no committed block at {height}"),
        ),
        Err(response) => response,
    }
}

async fn status(State(tx): State<mpsc::Sender<ApiRequest>>) -> Response {
    match ask(&tx, ApiRequest::Status).await {
        Ok(view) => Json(view).into_response(),
        Err(response) => response,
    }
}

async fn snapshot(State(tx): State<mpsc::Sender<ApiRequest>>, auth: ReadAuth) -> Response {
    match ask(&tx, |reply| ApiRequest::Snapshot(auth, reply)).await {
        Ok(Err(rejection)) => api_reads::refused(&rejection),
        Ok(Ok(Some(view))) => Json(&*view).into_response(),
        Ok(Ok(None)) => error(
            StatusCode::NOT_FOUND,
            error_kind::NO_SNAPSHOT,
            "this node has no snapshot yet (or its genesis turns snapshots off)",
        ),
        Err(response) => response,
    }
}

async fn submit_proposal(
    State(tx): State<mpsc::Sender<ApiRequest>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let signed: SignedProposal = match body.map_err(|e| (e.status(), e.body_text())).and_then(|b| {
        serde_json::from_slice(&b).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))
    }) {
        Ok(signed) => signed,
        Err((status, message)) => return error(status, error_kind::MALFORMED_BODY, message),
    };
    match ask(&tx, |reply| ApiRequest::SubmitProposal(signed, reply)).await {
        Ok(Ok(answer)) => (StatusCode::ACCEPTED, Json(answer)).into_response(),
        Ok(Err(rejection)) => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            rejection.kind(),
            rejection.to_string(),
        ),
        Err(response) => response,
    }
}

/// `POST /v1/deliveries`: a JSON array; 200 with one result per delivery.
async fn submit_deliveries(
    State(tx): State<mpsc::Sender<ApiRequest>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let deliveries: Vec<SignedDelivery> =
        match body.map_err(|e| (e.status(), e.body_text())).and_then(|b| {
            serde_json::from_slice(&b).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))
        }) {
            Ok(deliveries) => deliveries,
            Err((status, message)) => return error(status, error_kind::MALFORMED_BODY, message),
        };
    if deliveries.len() > wire_api::MAX_BATCH_DELIVERIES {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            error_kind::BATCH_TOO_LARGE,
            format!(
                "{} deliveries; at most {} per request",
                deliveries.len(),
                wire_api::MAX_BATCH_DELIVERIES
            ),
        );
    }
    match ask(&tx, |reply| ApiRequest::SubmitDeliveries(deliveries, reply)).await {
        Ok(results) => batch_answer(results, DeliveryRejection::kind),
        Err(response) => response,
    }
}

async fn community(State(tx): State<mpsc::Sender<ApiRequest>>) -> Response {
    match ask(&tx, ApiRequest::Community).await {
        Ok(view) => Json(view).into_response(),
        Err(response) => response,
    }
}

async fn openapi() -> Response {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let text = DOCUMENT.get_or_init(voltmesh_wire::openapi::json);
    ([(header::CONTENT_TYPE, "application/json")], text.as_str()).into_response()
}

/// How much of the node one API client, or all of them together, may use (the
/// `[api_limits]` section of `node.toml`; every key is optional).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiLimits {
    /// Largest request body read, in bytes (default 512 KiB: an order is under 1 KiB, a batch
    /// of [`wire_api::MAX_BATCH_ORDERS`] typical orders about 450 KB).
    pub max_body_bytes: usize,
    /// Requests handled at once (default 64); more are answered 503 `busy` at once.
    pub max_concurrent_requests: usize,
    /// A request not answered within this many milliseconds gets 503 `busy` (default 5000).
    pub request_timeout_ms: u64,
    /// Open connections (default 128); more wait in the listen backlog.
    pub max_connections: usize,
    /// A connection that sends nothing for this many milliseconds since it was opened or last
    /// answered is closed (default 10 000): slow or idle clients cannot hold a slot for longer.
    pub read_timeout_ms: u64,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            max_body_bytes: 512 * 1024,
            max_concurrent_requests: 64,
            request_timeout_ms: 5_000,
            max_connections: 128,
            read_timeout_ms: 10_000,
        }
    }
}

/// The in-flight bound and the deadline of every request.
#[derive(Debug, Clone)]
struct RequestLimits {
    in_flight: Arc<Semaphore>,
    timeout: Duration,
}

/// Answers 503 `busy` when too many requests are in flight or one takes too long.
///
/// Cancel safety: dropping the future drops the request (and its permit); the driver may still
/// answer a request it already took, into a closed `oneshot`.
async fn limit_requests(
    State(limits): State<RequestLimits>,
    request: Request,
    next: Next,
) -> Response {
    let Ok(_permit) = limits.in_flight.try_acquire() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            error_kind::BUSY,
            "too many requests in flight; retry",
        );
    };
    match tokio::time::timeout(limits.timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            error_kind::BUSY,
            "the node did not answer in time; retry (an order may have been taken: ask its status)",
        ),
    }
}

/// The API's routes, feeding `tx`, with the default [`ApiLimits`].
pub fn router(tx: mpsc::Sender<ApiRequest>) -> Router {
    router_with_limits(tx, &ApiLimits::default())
}

/// The API's routes, feeding `tx`, with the request limits of `limits` (the connection limits
/// are the listener's: see [`serve`]).
pub fn router_with_limits(tx: mpsc::Sender<ApiRequest>, limits: &ApiLimits) -> Router {
    let request_limits = RequestLimits {
        in_flight: Arc::new(Semaphore::new(limits.max_concurrent_requests.max(1))),
        timeout: Duration::from_millis(limits.request_timeout_ms.max(1)),
    };
    routes(tx)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            request_limits,
            limit_requests,
        ))
}

/// Serves the API on `listener` with `limits` until `shutdown` completes.
///
/// # Errors
/// The server's I/O error.
///
/// # Cancel safety
/// Dropping the future closes the listener and every open connection.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tx: mpsc::Sender<ApiRequest>,
    limits: &ApiLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = super::api_listener::LimitedListener::new(
        listener,
        limits.max_connections,
        Duration::from_millis(limits.read_timeout_ms.max(1)),
    );
    axum::serve(listener, router_with_limits(tx, limits))
        .with_graceful_shutdown(shutdown)
        .await
}

fn routes(tx: mpsc::Sender<ApiRequest>) -> Router {
    Router::new()
        .route(wire_api::ORDERS, post(submit))
        .route(wire_api::ORDER_STATUS, get(order_status))
        .route(wire_api::INTERVAL, get(interval))
        .route(wire_api::PARTICIPANT, get(participant))
        .route(wire_api::PARTICIPANT_BILLS, get(api_reads::bills))
        .route(wire_api::PARTICIPANT_STATEMENT, get(api_reads::statement))
        .route(wire_api::SETTLEMENTS, get(api_reads::settlements))
        .route(wire_api::SETTLEMENT, get(api_reads::settlement))
        .route(wire_api::BLOCK, get(block))
        .route(wire_api::STATUS, get(status))
        .route(wire_api::SNAPSHOT, get(snapshot))
        .route(wire_api::GOVERNANCE, get(community).post(submit_proposal))
        .route(wire_api::DELIVERIES, post(submit_deliveries))
        .route(
            wire_api::CORRECTIONS,
            get(api_reads::corrections).post(api_reads::submit_correction),
        )
        .route(wire_api::OPENAPI, get(openapi))
        .with_state(tx)
}
