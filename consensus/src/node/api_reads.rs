//! The API's private reads (issue 14, deliverables 4 and 6): a participant's trades, bills and
//! statements, served only to requests signed by one of its keys or by a billing key
//! ([`voltmesh_wire::read`]), and the neighborhood's settlements: aggregates for anyone, every
//! bill for billing keys.
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/v1/participants/{id}/bills` | signed: [`voltmesh_wire::api::BillsView`], bills of `?from=` to `?to=` (both required) |
//! | GET | `/v1/participants/{id}/statement` | signed: [`voltmesh_wire::bill::Statement`] of `?from=` to `?to=` (both required) |
//! | GET | `/v1/settlements` | [`SettlementsView`]: the settled intervals of `?from=` to `?to=`, aggregates only |
//! | GET | `/v1/settlements/{start}` | signed by a billing key: [`SettlementView`] (the bills and their corrections); 404 `not_settled` |
//! | GET | `/v1/corrections` | signed by a billing key: [`voltmesh_wire::api::CorrectionsView`], the corrections of `?from=` to `?to=` |
//! | POST | `/v1/corrections` | a [`SignedCorrection`] (signed by a billing key inside): 202 [`CorrectionAnswer`]; 422 with its refusal's kind |
//!
//! A refused read answers 401 (`unsigned_read`, `malformed_signature`, `stale_read`,
//! `bad_signature`) or 403 (`forbidden`).

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tokio::sync::{mpsc, oneshot};
use voltmesh_engine::ParticipantId;
use voltmesh_wire::api::{error_kind, SettlementView, SettlementsView};
use voltmesh_wire::read::{
    ReadRejection, ReadSignature, KEY_HEADER, SIGNATURE_HEADER, TIME_HEADER,
};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use voltmesh_wire::api::CorrectionAnswer;
use voltmesh_wire::correction::SignedCorrection;

use super::api::{ask, error, parse_interval, ApiRequest};

/// What a request offers to prove who reads: its signature headers, and the path and query
/// they must cover.
#[derive(Debug, Clone)]
pub struct ReadAuth {
    /// The signature, if the request carried one.
    pub signature: Option<ReadSignature>,
    /// The path and query as the request named them.
    pub path_and_query: String,
}

/// A range of intervals, `from..to`, and a page size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// First interval (inclusive), Unix seconds.
    pub from: i64,
    /// End (exclusive), Unix seconds.
    pub to: i64,
    /// Most settled intervals a page looks at.
    pub limit: usize,
}

/// Every read handler takes its reader this way: the signature headers parsed (headers that do
/// not parse are answered 401 before the handler runs).
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ReadAuth {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<ReadAuth, Response> {
        read_auth(&parts.headers, &parts.uri).map_err(|e| refused(&e))
    }
}

/// A private read's answer: the view, or why the reader may not have it.
pub type ReadReply<T> = oneshot::Sender<Result<T, ReadRejection>>;

/// The reader's signature headers and the request's path and query.
///
/// # Errors
/// [`ReadRejection::Malformed`] for headers that do not parse.
pub(super) fn read_auth(headers: &HeaderMap, uri: &Uri) -> Result<ReadAuth, ReadRejection> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signature = ReadSignature::from_headers(
        header(KEY_HEADER),
        header(TIME_HEADER),
        header(SIGNATURE_HEADER),
    )?;
    Ok(ReadAuth {
        signature,
        path_and_query: uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned()),
    })
}

/// The answer to a refused read.
pub(super) fn refused(rejection: &ReadRejection) -> Response {
    let status = match rejection {
        ReadRejection::Forbidden { .. } => StatusCode::FORBIDDEN,
        _ => StatusCode::UNAUTHORIZED,
    };
    error(status, rejection.kind(), rejection.to_string())
}

/// `from`, `to` (both required, `from <= to`) and `limit`; a bad one is `(error kind,
/// message)`.
fn period(query: Option<&str>) -> Result<Period, (&'static str, String)> {
    let (mut from, mut to, mut limit) = (None, None, voltmesh_wire::api::MAX_SETTLED_PAGE);
    for pair in query.unwrap_or_default().split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let bad = || {
            (
                error_kind::MALFORMED_INTERVAL,
                format!("{key}: use Unix seconds or RFC 3339"),
            )
        };
        match key {
            "from" => from = Some(parse_interval(value).ok_or_else(bad)?),
            "to" => to = Some(parse_interval(value).ok_or_else(bad)?),
            "limit" => {
                limit = value.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    (
                        error_kind::MALFORMED_QUERY,
                        "limit: a positive integer".to_owned(),
                    )
                })?;
            }
            _ => {}
        }
    }
    match (from, to) {
        (Some(from), Some(to)) if from <= to => Ok(Period { from, to, limit }),
        _ => Err((
            error_kind::MALFORMED_QUERY,
            "from and to (from <= to) are required".to_owned(),
        )),
    }
}

fn answer<T: serde::Serialize>(result: Result<Result<T, ReadRejection>, Response>) -> Response {
    match result {
        Ok(Ok(view)) => Json(view).into_response(),
        Ok(Err(rejection)) => refused(&rejection),
        Err(response) => response,
    }
}

pub(super) async fn bills(
    State(tx): State<mpsc::Sender<ApiRequest>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    auth: ReadAuth,
) -> Response {
    private_read(&tx, id, query.as_deref(), auth, ApiRequest::Bills).await
}

pub(super) async fn statement(
    State(tx): State<mpsc::Sender<ApiRequest>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    auth: ReadAuth,
) -> Response {
    private_read(&tx, id, query.as_deref(), auth, ApiRequest::Statement).await
}

/// A participant's data over a period, for the reader the request's signature names.
async fn private_read<T: serde::Serialize>(
    tx: &mpsc::Sender<ApiRequest>,
    id: String,
    query: Option<&str>,
    auth: ReadAuth,
    make: fn(ParticipantId, Period, ReadAuth, ReadReply<T>) -> ApiRequest,
) -> Response {
    let period = match period(query) {
        Ok(period) => period,
        Err((kind, message)) => return error(StatusCode::BAD_REQUEST, kind, message),
    };
    let who = ParticipantId::from(id);
    answer(ask(tx, |reply| make(who, period, auth, reply)).await)
}

pub(super) async fn settlements(
    State(tx): State<mpsc::Sender<ApiRequest>>,
    RawQuery(query): RawQuery,
) -> Response {
    let period = match period(query.as_deref()) {
        Ok(period) => period,
        Err((kind, message)) => return error(StatusCode::BAD_REQUEST, kind, message),
    };
    match ask(&tx, |reply| ApiRequest::Settlements(period, reply)).await {
        Ok(view) => Json(view).into_response(),
        Err(response) => response,
    }
}

pub(super) async fn settlement(
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
    match ask(&tx, |reply| ApiRequest::Settlement(start, auth, reply)).await {
        Ok(Ok(Some(view))) => Json(view).into_response(),
        Ok(Ok(None)) => error(
            StatusCode::NOT_FOUND,
            error_kind::NOT_SETTLED,
            format!("interval {start} is not settled (yet)"),
        ),
        Ok(Err(rejection)) => refused(&rejection),
        Err(response) => response,
    }
}

/// The views the driver answers [`ApiRequest::Settlements`] and [`ApiRequest::Settlement`]
/// with.
pub type SettlementReply = oneshot::Sender<Result<Option<SettlementView>, ReadRejection>>;
/// See [`SettlementReply`].
pub type SettlementsReply = oneshot::Sender<SettlementsView>;

pub(super) async fn corrections(
    State(tx): State<mpsc::Sender<ApiRequest>>,
    RawQuery(query): RawQuery,
    auth: ReadAuth,
) -> Response {
    let period = match period(query.as_deref()) {
        Ok(period) => period,
        Err((kind, message)) => return error(StatusCode::BAD_REQUEST, kind, message),
    };
    answer(ask(&tx, |reply| ApiRequest::Corrections(period, auth, reply)).await)
}

pub(super) async fn submit_correction(
    State(tx): State<mpsc::Sender<ApiRequest>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let signed: SignedCorrection =
        match body.map_err(|e| (e.status(), e.body_text())).and_then(|b| {
            serde_json::from_slice(&b).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))
        }) {
            Ok(signed) => signed,
            Err((status, message)) => return error(status, error_kind::MALFORMED_BODY, message),
        };
    match ask(&tx, |reply| ApiRequest::SubmitCorrection(signed, reply)).await {
        Ok(Ok(digest)) => (StatusCode::ACCEPTED, Json(CorrectionAnswer { digest })).into_response(),
        Ok(Err(rejection)) => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            rejection.kind(),
            rejection.to_string(),
        ),
        Err(response) => response,
    }
}
