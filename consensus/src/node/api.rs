//! The node's HTTP/JSON API (see `consensus/README.md`, section "Node API").
//!
//! Handlers never touch node state: each request becomes an [`ApiRequest`] on a bounded queue to
//! the node's driver task, answered on a `oneshot`. A full queue answers 503 at once.
//!
//! | method | path | answer |
//! |---|---|---|
//! | POST | `/v1/orders` | 202 `{"status":"accepted"}`; 400 `malformed_body`; 422 with `error` = `bad_signature`, `unknown_participant`, `key_not_allowed`, `replayed_nonce`, `wrong_interval`, `closed_interval`, `price_outside_tariffs`, `duplicate_id`, `market_rules`, `mempool_full` |
//! | GET | `/v1/intervals/{start}` | the interval's clearing and trades (`start` in Unix seconds or RFC 3339); 404 before it clears |
//! | GET | `/v1/participants/{id}` | the participant's trades and balance |
//! | GET | `/v1/blocks/{height}` | a committed block, decoded |
//! | GET | `/v1/status` | height, view, peers, validators, last commit time |

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use voltmesh_engine::ParticipantId;

use crate::index::{Balance, ParticipantTrade};
use crate::ledger::{IntervalClearing, OrderRejection, SignedOrder};

/// A request from the API to the driver.
#[derive(Debug)]
pub enum ApiRequest {
    /// Submit a signed order.
    SubmitOrder(SignedOrder, oneshot::Sender<Result<(), OrderRejection>>),
    /// An interval's clearing.
    Interval(i64, oneshot::Sender<Option<IntervalClearing>>),
    /// A participant's trades and balance.
    Participant(ParticipantId, oneshot::Sender<ParticipantView>),
    /// A committed block.
    Block(u64, oneshot::Sender<Option<serde_json::Value>>),
    /// The node's status.
    Status(oneshot::Sender<StatusView>),
}

/// A participant's view.
#[derive(Debug, Clone, Serialize)]
pub struct ParticipantView {
    /// The pseudonym.
    pub participant: ParticipantId,
    /// Totals.
    pub balance: Balance,
    /// Trades, oldest first.
    pub trades: Vec<ParticipantTrade>,
}

/// The node's status.
#[derive(Debug, Clone, Serialize)]
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
}

fn error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error": kind, "message": message.into()})),
    )
        .into_response()
}

async fn ask<T>(
    tx: &mpsc::Sender<ApiRequest>,
    make: impl FnOnce(oneshot::Sender<T>) -> ApiRequest,
) -> Result<T, Response> {
    let (reply, rx) = oneshot::channel();
    tx.try_send(make(reply)).map_err(|_| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "the node is busy; retry",
        )
    })?;
    rx.await.map_err(|_| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "stopping",
            "the node is shutting down",
        )
    })
}

async fn submit(State(tx): State<mpsc::Sender<ApiRequest>>, body: Bytes) -> Response {
    let order: SignedOrder = match serde_json::from_slice(&body) {
        Ok(order) => order,
        Err(e) => return error(StatusCode::BAD_REQUEST, "malformed_body", e.to_string()),
    };
    match ask(&tx, |reply| ApiRequest::SubmitOrder(order, reply)).await {
        Ok(Ok(())) => (StatusCode::ACCEPTED, Json(json!({"status": "accepted"}))).into_response(),
        Ok(Err(rejection)) => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            rejection.kind(),
            rejection.to_string(),
        ),
        Err(response) => response,
    }
}

fn parse_interval(text: &str) -> Option<i64> {
    text.parse::<i64>().ok().or_else(|| {
        chrono::DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.timestamp())
    })
}

async fn interval(
    State(tx): State<mpsc::Sender<ApiRequest>>,
    Path(start): Path<String>,
) -> Response {
    let Some(start) = parse_interval(&start) else {
        return error(
            StatusCode::BAD_REQUEST,
            "malformed_interval",
            "use Unix seconds or RFC 3339",
        );
    };
    match ask(&tx, |reply| ApiRequest::Interval(start, reply)).await {
        Ok(Some(clearing)) => Json(clearing).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "not_cleared",
            format!("interval {start} has not cleared"),
        ),
        Err(response) => response,
    }
}

async fn participant(
    State(tx): State<mpsc::Sender<ApiRequest>>,
    Path(id): Path<String>,
) -> Response {
    match ask(&tx, |reply| {
        ApiRequest::Participant(ParticipantId::from(id), reply)
    })
    .await
    {
        Ok(view) => Json(view).into_response(),
        Err(response) => response,
    }
}

async fn block(State(tx): State<mpsc::Sender<ApiRequest>>, Path(height): Path<String>) -> Response {
    let Ok(height) = height.parse::<u64>() else {
        return error(
            StatusCode::BAD_REQUEST,
            "malformed_height",
            "height is a non-negative integer",
        );
    };
    match ask(&tx, |reply| ApiRequest::Block(height, reply)).await {
        Ok(Some(block)) => Json(block).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "not_committed",
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

/// The API's routes, feeding `tx`.
pub fn router(tx: mpsc::Sender<ApiRequest>) -> Router {
    Router::new()
        .route("/v1/orders", post(submit))
        .route("/v1/intervals/{start}", get(interval))
        .route("/v1/participants/{id}", get(participant))
        .route("/v1/blocks/{height}", get(block))
        .route("/v1/status", get(status))
        .with_state(tx)
}
