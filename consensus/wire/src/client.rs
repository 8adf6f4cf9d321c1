//! [`NodeClient`]: the typed client of the node API ([`crate::api`]), and [`BlockingNodeClient`]
//! for synchronous callers (test harnesses, command-line tools).
//!
//! # How answers to `POST /v1/orders` are classified
//! | node answer | result |
//! |---|---|
//! | 202 | [`Submitted::Accepted`] |
//! | 422 `replayed_nonce` / `duplicate_id` | [`Submitted::AlreadyThere`] (a resubmission: a signer that reuses the nonce and id of an order it sent before gets this) |
//! | 422 `mempool_full`, `participant_pending_full`, 503, 5xx, connection refused, timeout | [`ClientError::Unavailable`]: retry |
//! | other 422 | [`ClientError::Rejected`]: permanent, counted, never retried |
//! | 400 | [`ClientError::Malformed`]: a bug, counted, never retried |
//! | anything else | [`ClientError::Unexpected`] |
//!
//! [`NodeClient::submit_batch`] sends an array in one request; each order's result in the
//! node's 200 answer is classified by the 202 and 422 rows above.
//!
//! The read routes answer `Ok` for 200 (and `Ok(None)` for the documented 404s of
//! [`NodeClient::interval`], [`NodeClient::block`] and [`NodeClient::order_status`]), [`ClientError::Unavailable`] for
//! transport errors and 5xx, and [`ClientError::Unexpected`] for anything else, including a 200
//! whose body is not the documented view.
//!
//! Every request has a connect timeout ([`CONNECT_TIMEOUT`]) and a total timeout
//! ([`REQUEST_TIMEOUT`]); proxies from the environment are ignored, so the client only ever
//! talks to the configured node. Idle connections are dropped after [`POOL_IDLE_TIMEOUT`] (the
//! node closes them after its read deadline), and a request that fails on a pooled connection
//! the node had closed is sent once more on a new one. Clones share one connection pool and one set of counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::{debug, warn};

use crate::api::{
    self, error_kind, BlockView, ErrorBody, OrderStatusView, ParticipantView, SnapshotView,
    StatusView,
};
use crate::{IntervalClearing, SignedOrder};

/// How long to wait for a TCP connection to the node.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one request may take in total.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle pooled connection is kept: below the node's default read deadline
/// (`api_limits.read_timeout_ms`, 10 s), after which the node closes it.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest part of an unexpected body kept in an error.
const BODY_SNIPPET: usize = 200;

/// Why a [`NodeClient`] cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum NodeClientError {
    /// The base URL is not `http://host:port` (optionally with a path prefix).
    #[error("node api url {0:?} must start with http:// or https:// and name a host")]
    BadUrl(String),
    /// The HTTP client could not be built (TLS backend initialisation).
    #[error("http client: {0}")]
    Client(#[from] reqwest::Error),
    /// The blocking facade's runtime could not be built.
    #[error("runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// How a node took an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    /// Newly accepted into the node's mempool.
    Accepted,
    /// The node already has it (`replayed_nonce` or `duplicate_id`): a resubmission.
    AlreadyThere,
}

/// Why a request did not give the answer asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The node could not be reached, timed out or is busy; worth retrying.
    #[error("node unavailable: {0}")]
    Unavailable(String),
    /// The node refused the order (bad signature, unknown participant, closed interval, price
    /// outside the tariffs, ...) or the governance proposal (unauthorised, expired, ...) for
    /// good: do not retry.
    #[error("rejected ({kind}): {message}")]
    Rejected {
        /// The node's error code ([`crate::OrderRejection::kind`],
        /// [`crate::governance::GovernanceRejection::kind`]).
        kind: String,
        /// The node's explanation.
        message: String,
    },
    /// The node could not parse the request (400): a bug on one side; do not retry.
    #[error("node refused the request as malformed: {0}")]
    Malformed(String),
    /// An answer the API does not document (wrong URL, proxy in the way, ...); do not retry.
    #[error("unexpected answer from the node: HTTP {status}: {body}")]
    Unexpected {
        /// HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
}

impl ClientError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ClientError::Unavailable(_))
    }
}

/// What a [`NodeClient`] has seen of its order submissions since it was built (shared by
/// clones).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SubmitCounts {
    /// Orders the node newly accepted.
    pub accepted: u64,
    /// Resubmissions the node already had.
    pub already_there: u64,
    /// Orders refused for good (other 422s).
    pub rejected: u64,
    /// Requests the node could not parse (400).
    pub malformed: u64,
    /// Attempts that failed in a retryable way (node down, busy, timeout).
    pub unavailable: u64,
    /// Answers the API does not document.
    pub unexpected: u64,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    already_there: AtomicU64,
    rejected: AtomicU64,
    malformed: AtomicU64,
    unavailable: AtomicU64,
    unexpected: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A raw answer: the status and the body's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAnswer {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

impl RawAnswer {
    /// The body as an [`ErrorBody`], if it is one.
    pub fn error(&self) -> Option<ErrorBody> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// The client's wall clock, ms since the Unix epoch: a signed read carries it and the node
/// checks it against its own ([`crate::read::MAX_SKEW_MS`]).
#[allow(clippy::disallowed_methods)] // A client's reads are stamped with its own clock.
fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A node's HTTP API (module docs for the classification of answers).
#[derive(Debug, Clone)]
pub struct NodeClient {
    client: reqwest::Client,
    base: Arc<str>,
    counters: Arc<Counters>,
    /// Signs every GET when set ([`NodeClient::with_read_key`]).
    reader: Option<Arc<ReadKey>>,
}

/// The key a [`NodeClient`] signs its reads with, and the neighborhood it signs for.
struct ReadKey {
    neighborhood: String,
    key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for ReadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadKey")
            .field("neighborhood", &self.neighborhood)
            .field("key", &hex::encode(self.key.verifying_key().to_bytes()))
            .finish()
    }
}

impl NodeClient {
    /// A client for the node API at `api_base`, e.g. `"http://127.0.0.1:7600"` (a trailing `/`
    /// is ignored). Nothing is contacted until the first request.
    ///
    /// # Errors
    /// [`NodeClientError::BadUrl`] if `api_base` is not an http(s) URL with a host;
    /// [`NodeClientError::Client`] if the HTTP client cannot be built.
    pub fn new(api_base: &str) -> Result<NodeClient, NodeClientError> {
        let base = api_base.trim_end_matches('/');
        let rest = base
            .strip_prefix("http://")
            .or_else(|| base.strip_prefix("https://"))
            .ok_or_else(|| NodeClientError::BadUrl(api_base.to_owned()))?;
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(NodeClientError::BadUrl(api_base.to_owned()));
        }
        let client = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build()?;
        Ok(NodeClient {
            client,
            base: Arc::from(base),
            counters: Arc::default(),
            reader: None,
        })
    }

    /// This client, signing every read with `key` for `neighborhood` ([`crate::read`]): a
    /// participant's own key (or its bridge's) reads its data, a billing key everyone's.
    #[must_use]
    pub fn with_read_key(mut self, neighborhood: &str, key: ed25519_dalek::SigningKey) -> Self {
        self.reader = Some(Arc::new(ReadKey {
            neighborhood: neighborhood.to_owned(),
            key,
        }));
        self
    }

    /// The base URL, without a trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A snapshot of the submission counters.
    pub fn counts(&self) -> SubmitCounts {
        let c = &self.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SubmitCounts {
            accepted: load(&c.accepted),
            already_there: load(&c.already_there),
            rejected: load(&c.rejected),
            malformed: load(&c.malformed),
            unavailable: load(&c.unavailable),
            unexpected: load(&c.unexpected),
        }
    }

    /// Sends one request and reads the whole answer, without interpreting it (for harnesses that
    /// check exact answers; `body` is sent as JSON).
    ///
    /// # Errors
    /// [`ClientError::Unavailable`] if the node cannot be reached or the answer not read.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<RawAnswer, ClientError> {
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| ClientError::Malformed(e.to_string()))?;
        let url = format!("{}{path}", self.base);
        let request = |body: Option<Vec<u8>>| {
            let mut request = self.client.request(method.clone(), url.as_str());
            if let Some(reader) = self
                .reader
                .as_deref()
                .filter(|_| method == reqwest::Method::GET)
            {
                let now_ms = wall_clock_ms();
                for (name, value) in
                    crate::read::sign(&reader.neighborhood, "GET", path, now_ms, &reader.key)
                {
                    request = request.header(name, value);
                }
            }
            if let Some(body) = body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body);
            }
            request.send()
        };
        let response = match request(body.clone()).await {
            // A pooled connection the node closed while it sat idle (it closes connections
            // idle for its read deadline, and a client whose runtime was not running cannot
            // have noticed): one new attempt on a fresh connection. Every request of this API
            // may be repeated: reads change nothing and a resubmitted order is `duplicate_id`.
            Err(e) if e.is_request() && !e.is_connect() && !e.is_timeout() => {
                debug!(url = %url, error = %e, "request on a closed connection; trying once more");
                request(body).await
            }
            answer => answer,
        }
        .map_err(|e| ClientError::Unavailable(e.to_string()))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| ClientError::Unavailable(e.to_string()))?;
        Ok(RawAnswer {
            status,
            body: body.to_vec(),
        })
    }

    /// `POST /v1/orders` with `body` as JSON, an unreachable node counted as unavailable.
    async fn post_orders<T: Serialize + ?Sized>(&self, body: &T) -> Result<RawAnswer, ClientError> {
        let body = serde_json::to_vec(body).map_err(|e| ClientError::Malformed(e.to_string()))?;
        self.raw("POST", api::ORDERS, Some(body))
            .await
            .inspect_err(|_| bump(&self.counters.unavailable))
    }

    /// `POST /v1/orders` (module docs for the classification of answers; counted).
    ///
    /// # Errors
    /// [`ClientError`] as classified.
    pub async fn submit(&self, order: &SignedOrder) -> Result<Submitted, ClientError> {
        let answer = self.post_orders(order).await?;
        if answer.status == StatusCode::ACCEPTED.as_u16() {
            bump(&self.counters.accepted);
            return Ok(Submitted::Accepted);
        }
        if answer.status == StatusCode::UNPROCESSABLE_ENTITY.as_u16() {
            if let Some(e) = answer.error() {
                return self.refused(order, e);
            }
        }
        Err(self.classify(order, &answer))
    }

    /// `POST /v1/orders` with an array of at most [`api::MAX_BATCH_ORDERS`] orders: one
    /// request, one result per order in order, each classified (and counted) as
    /// [`NodeClient::submit`] classifies a single order's answer.
    ///
    /// # Errors
    /// The request as a whole: [`ClientError::Unavailable`] (unreachable, busy; retry the
    /// batch: orders the node already took come back [`Submitted::AlreadyThere`]),
    /// [`ClientError::Malformed`], or [`ClientError::Unexpected`] (including an array longer than
    /// the node takes, 413 `batch_too_large`).
    pub async fn submit_batch(
        &self,
        orders: &[SignedOrder],
    ) -> Result<Vec<Result<Submitted, ClientError>>, ClientError> {
        let answer = self.post_orders(orders).await?;
        match answer.status {
            200 => {}
            400 => {
                bump(&self.counters.malformed);
                let message = answer
                    .error()
                    .map_or_else(|| snippet(&answer.body), |e| e.message);
                return Err(ClientError::Malformed(message));
            }
            s if s >= 500 => {
                return Err(self.unavailable(format!("HTTP {s}: {}", snippet(&answer.body))))
            }
            s => {
                bump(&self.counters.unexpected);
                return Err(ClientError::Unexpected {
                    status: s,
                    body: snippet(&answer.body),
                });
            }
        }
        let batch: api::BatchAnswer = serde_json::from_slice(&answer.body).map_err(|e| {
            bump(&self.counters.unexpected);
            ClientError::Unexpected {
                status: 200,
                body: format!("not the documented answer: {e}"),
            }
        })?;
        if batch.results.len() != orders.len() {
            bump(&self.counters.unexpected);
            return Err(ClientError::Unexpected {
                status: 200,
                body: format!(
                    "{} results for {} orders",
                    batch.results.len(),
                    orders.len()
                ),
            });
        }
        Ok(orders
            .iter()
            .zip(batch.results)
            .map(|(order, result)| match result {
                api::BatchResult::Accepted(_) => {
                    bump(&self.counters.accepted);
                    Ok(Submitted::Accepted)
                }
                api::BatchResult::Refused(e) => self.refused(order, e),
            })
            .collect())
    }

    /// A 422 answer to `order`: a resubmission is [`Submitted::AlreadyThere`], a full pool is
    /// worth retrying, anything else is a rejection for good.
    fn refused(&self, order: &SignedOrder, e: ErrorBody) -> Result<Submitted, ClientError> {
        let participant = order.ticket.participant.as_str();
        if e.error == error_kind::REPLAYED_NONCE || e.error == error_kind::DUPLICATE_ID {
            bump(&self.counters.already_there);
            debug!(participant, order = %order.ticket.id, kind = %e.error, "node already has the order");
            return Ok(Submitted::AlreadyThere);
        }
        if e.error == error_kind::MEMPOOL_FULL || e.error == error_kind::PARTICIPANT_PENDING_FULL {
            return Err(self.unavailable(e.message));
        }
        bump(&self.counters.rejected);
        warn!(
            participant,
            order = %order.ticket.id,
            interval = order.ticket.interval_start,
            kind = %e.error,
            message = %e.message,
            "node rejected the order; not retrying"
        );
        Err(ClientError::Rejected {
            kind: e.error,
            message: e.message,
        })
    }

    fn unavailable(&self, cause: impl std::fmt::Display) -> ClientError {
        bump(&self.counters.unavailable);
        ClientError::Unavailable(cause.to_string())
    }

    fn classify(&self, order: &SignedOrder, answer: &RawAnswer) -> ClientError {
        let c = &self.counters;
        let participant = order.ticket.participant.as_str();
        let body = &answer.body;
        match (answer.status, answer.error()) {
            (400, parsed) => {
                bump(&c.malformed);
                let message = parsed.map_or_else(|| snippet(body), |e| e.message);
                warn!(participant, order = %order.ticket.id, %message, "node could not parse the order (a bug)");
                ClientError::Malformed(message)
            }
            (s, _) if s >= 500 => self.unavailable(format!("HTTP {s}: {}", snippet(body))),
            (s, _) => {
                bump(&c.unexpected);
                warn!(participant, status = s, body = %snippet(body), "unexpected answer to an order");
                ClientError::Unexpected {
                    status: s,
                    body: snippet(body),
                }
            }
        }
    }

    /// `GET path` as a `T`; `Ok(None)` for a 404.
    async fn view<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, ClientError> {
        let answer = self.raw("GET", path, None).await?;
        match answer.status {
            200 => serde_json::from_slice(&answer.body).map(Some).map_err(|e| {
                ClientError::Unexpected {
                    status: 200,
                    body: format!("not the documented answer: {e}"),
                }
            }),
            404 => Ok(None),
            401 | 403 => Err(match answer.error() {
                Some(e) => ClientError::Rejected {
                    kind: e.error,
                    message: e.message,
                },
                None => ClientError::Unexpected {
                    status: answer.status,
                    body: snippet(&answer.body),
                },
            }),
            s if s >= 500 => Err(ClientError::Unavailable(format!(
                "HTTP {s}: {}",
                snippet(&answer.body)
            ))),
            s => Err(ClientError::Unexpected {
                status: s,
                body: snippet(&answer.body),
            }),
        }
    }

    /// `GET /v1/intervals/{start}`: the interval's committed clearing, `None` while it has not
    /// cleared.
    ///
    /// # Errors
    /// [`ClientError`] (module docs).
    pub async fn interval(&self, start: i64) -> Result<Option<IntervalClearing>, ClientError> {
        self.view(&api::interval_path(start)).await
    }

    /// `GET /v1/blocks/{height}`: the committed block, `None` if there is none at `height`.
    ///
    /// # Errors
    /// [`ClientError`] (module docs).
    pub async fn block(&self, height: u64) -> Result<Option<BlockView>, ClientError> {
        self.view(&api::block_path(height)).await
    }

    /// `GET /v1/orders/{participant}/{id}`: what became of the order (every interval the node
    /// knows the id in, or only `interval_start`), `None` if the node knows no such order.
    ///
    /// # Errors
    /// [`ClientError`] (module docs).
    pub async fn order_status(
        &self,
        participant: &str,
        id: &str,
        interval_start: Option<i64>,
    ) -> Result<Option<OrderStatusView>, ClientError> {
        self.view(&api::order_status_path(participant, id, interval_start))
            .await
    }

    /// `GET /v1/status`.
    ///
    /// # Errors
    /// [`ClientError`] (module docs); a 404 is [`ClientError::Unexpected`].
    pub async fn status(&self) -> Result<StatusView, ClientError> {
        self.view(api::STATUS).await?.ok_or_else(not_found)
    }

    /// `GET /v1/snapshot`: the node's latest ledger snapshot with its proof, `None` if it has
    /// none (snapshots off, or the chain is younger than the first snapshot height).
    ///
    /// # Errors
    /// [`ClientError`] (module docs).
    pub async fn snapshot(&self) -> Result<Option<SnapshotView>, ClientError> {
        self.view(api::SNAPSHOT).await
    }

    /// `GET /v1/participants/{id}`.
    ///
    /// # Errors
    /// [`ClientError`] (module docs); a 404 is [`ClientError::Unexpected`].
    pub async fn participant(&self, id: &str) -> Result<ParticipantView, ClientError> {
        self.view(&api::participant_path(id))
            .await?
            .ok_or_else(not_found)
    }

    /// A participant's totals over every committed trade: `GET /v1/participants/{id}` for an
    /// empty range of intervals (`from=0&to=0`), so no trades travel with the balance.
    ///
    /// # Errors
    /// As [`NodeClient::participant`].
    pub async fn balance(&self, id: &str) -> Result<api::Balance, ClientError> {
        let path = format!("{}?from=0&to=0", api::participant_path(id));
        let view: ParticipantView = self.view(&path).await?.ok_or_else(not_found)?;
        Ok(view.balance)
    }

    /// `GET /v1/participants/{id}/bills`: the participant's committed bills of the intervals
    /// `from..to` (one page; `next_from` says where the next starts). Needs a read key
    /// ([`NodeClient::with_read_key`]).
    ///
    /// # Errors
    /// [`ClientError::Rejected`] (`unsigned_read`, `forbidden`, ...) for a refused read;
    /// otherwise as [`NodeClient::participant`].
    pub async fn bills(&self, id: &str, from: i64, to: i64) -> Result<api::BillsView, ClientError> {
        self.view(&api::bills_path(id, from, to))
            .await?
            .ok_or_else(not_found)
    }

    /// `GET /v1/participants/{id}/statement` for the intervals `from..to`. Needs a read key.
    ///
    /// # Errors
    /// As [`NodeClient::bills`].
    pub async fn statement(
        &self,
        id: &str,
        from: i64,
        to: i64,
    ) -> Result<crate::bill::Statement, ClientError> {
        self.view(&api::statement_path(id, from, to))
            .await?
            .ok_or_else(not_found)
    }

    /// `GET /v1/settlements`: the settled intervals of `from..to`, aggregates only (one page).
    ///
    /// # Errors
    /// As [`NodeClient::participant`].
    pub async fn settlements(
        &self,
        from: i64,
        to: i64,
    ) -> Result<api::SettlementsView, ClientError> {
        self.view(&api::settlements_path(from, to))
            .await?
            .ok_or_else(not_found)
    }

    /// `GET /v1/settlements/{start}`: one interval's settlement with every bill, `None` while it
    /// is not settled. Needs a billing key.
    ///
    /// # Errors
    /// As [`NodeClient::bills`].
    pub async fn settlement(&self, start: i64) -> Result<Option<api::SettlementView>, ClientError> {
        self.view(&api::settlement_path(start)).await
    }

    /// `POST /v1/governance`: hands a signed proposal to the node, which puts its approvals in
    /// the next block it proposes.
    ///
    /// # Errors
    /// [`ClientError::Rejected`] with a [`crate::governance::GovernanceRejection::kind`] if the
    /// node refuses it; otherwise as [`NodeClient::raw`], and [`ClientError::Unexpected`] for an
    /// undocumented answer.
    pub async fn submit_proposal(
        &self,
        signed: &crate::governance::SignedProposal,
    ) -> Result<api::ProposalAnswer, ClientError> {
        self.post_for_202(api::GOVERNANCE, signed).await
    }

    /// `POST /v1/corrections`: hands a signed correction import to the node, which puts it in
    /// the next block it proposes; the answer names its digest.
    ///
    /// # Errors
    /// [`ClientError::Rejected`] with a [`crate::correction::CorrectionRejection::kind`] if the
    /// node refuses it; otherwise as [`NodeClient::submit_proposal`].
    pub async fn submit_correction(
        &self,
        signed: &crate::correction::SignedCorrection,
    ) -> Result<api::CorrectionAnswer, ClientError> {
        self.post_for_202(api::CORRECTIONS, signed).await
    }

    /// `GET /v1/corrections`: the corrections of `from..to` (one page). Needs a billing key.
    ///
    /// # Errors
    /// As [`NodeClient::bills`].
    pub async fn corrections(
        &self,
        from: i64,
        to: i64,
    ) -> Result<api::CorrectionsView, ClientError> {
        self.view(&api::corrections_path(from, to))
            .await?
            .ok_or_else(not_found)
    }

    /// POSTs `value` as JSON to `path`, whose documented answers are 202 with a `T` and 422
    /// with a refusal.
    async fn post_for_202<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        value: &impl serde::Serialize,
    ) -> Result<T, ClientError> {
        let body = serde_json::to_vec(value).map_err(|e| ClientError::Malformed(e.to_string()))?;
        let answer = self.raw("POST", path, Some(body)).await?;
        match (answer.status, answer.error()) {
            (202, _) => serde_json::from_slice(&answer.body).map_err(|e| ClientError::Unexpected {
                status: 202,
                body: format!("not the documented answer: {e}"),
            }),
            (422, Some(e)) => Err(ClientError::Rejected {
                kind: e.error,
                message: e.message,
            }),
            (400, parsed) => Err(ClientError::Malformed(
                parsed.map_or_else(|| snippet(&answer.body), |e| e.message),
            )),
            (s, _) if s >= 500 => Err(ClientError::Unavailable(format!(
                "HTTP {s}: {}",
                snippet(&answer.body)
            ))),
            (s, _) => Err(ClientError::Unexpected {
                status: s,
                body: snippet(&answer.body),
            }),
        }
    }

    /// `GET /v1/governance`: the community as the node's committed ledger says.
    ///
    /// # Errors
    /// [`ClientError`] (module docs); a 404 is [`ClientError::Unexpected`].
    pub async fn community(&self) -> Result<api::CommunityView, ClientError> {
        self.view(api::GOVERNANCE).await?.ok_or_else(not_found)
    }

    /// `POST /v1/deliveries` with at most [`api::MAX_BATCH_DELIVERIES`] deliveries: one result
    /// per delivery, in order. A delivery the ledger or the node's pool holds already
    /// (`duplicate_delivery`) is `Ok`; a full pool (`pool_full`) is [`ClientError::Unavailable`]
    /// (retry); any other refusal is [`ClientError::Rejected`] with a
    /// [`crate::delivery::DeliveryRejection::kind`].
    ///
    /// # Errors
    /// The request as a whole: as [`NodeClient::raw`], [`ClientError::Malformed`] for 400 and
    /// 413, [`ClientError::Unexpected`] for an undocumented answer.
    pub async fn submit_deliveries(
        &self,
        deliveries: &[crate::delivery::SignedDelivery],
    ) -> Result<Vec<Result<(), ClientError>>, ClientError> {
        let body =
            serde_json::to_vec(deliveries).map_err(|e| ClientError::Malformed(e.to_string()))?;
        let answer = self.raw("POST", api::DELIVERIES, Some(body)).await?;
        match answer.status {
            200 => {}
            400 | 413 => {
                return Err(ClientError::Malformed(
                    answer
                        .error()
                        .map_or_else(|| snippet(&answer.body), |e| e.message),
                ))
            }
            s if s >= 500 => {
                return Err(ClientError::Unavailable(format!(
                    "HTTP {s}: {}",
                    snippet(&answer.body)
                )))
            }
            s => {
                return Err(ClientError::Unexpected {
                    status: s,
                    body: snippet(&answer.body),
                })
            }
        }
        let batch: api::BatchAnswer =
            serde_json::from_slice(&answer.body).map_err(|e| ClientError::Unexpected {
                status: 200,
                body: format!("not the documented answer: {e}"),
            })?;
        if batch.results.len() != deliveries.len() {
            return Err(ClientError::Unexpected {
                status: 200,
                body: format!(
                    "{} results for {} deliveries",
                    batch.results.len(),
                    deliveries.len()
                ),
            });
        }
        Ok(batch
            .results
            .into_iter()
            .map(|result| match result {
                api::BatchResult::Accepted(_) => Ok(()),
                api::BatchResult::Refused(e) if e.error == "duplicate_delivery" => Ok(()),
                api::BatchResult::Refused(e) if e.error == "pool_full" => {
                    Err(ClientError::Unavailable(e.message))
                }
                api::BatchResult::Refused(e) => Err(ClientError::Rejected {
                    kind: e.error,
                    message: e.message,
                }),
            })
            .collect())
    }
}

fn not_found() -> ClientError {
    ClientError::Unexpected {
        status: 404,
        body: "not found".into(),
    }
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(BODY_SNIPPET)]);
    text.into_owned()
}

/// [`NodeClient`] for synchronous callers (test harnesses, tools): each call runs on the facade's
/// own current-thread runtime and blocks until the answer. Called from inside an async runtime
/// (where tokio refuses a nested `block_on`) it runs the call on a short-lived thread of its own,
/// still blocking the caller; async code should use [`NodeClient`]. It may be dropped anywhere
/// (its runtime shuts down in the background).
#[derive(Debug)]
pub struct BlockingNodeClient {
    /// Always `Some` until dropped.
    runtime: Option<tokio::runtime::Runtime>,
    client: NodeClient,
}

impl Drop for BlockingNodeClient {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which tokio refuses inside an async context.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl BlockingNodeClient {
    /// A blocking client for the node API at `api_base` (as [`NodeClient::new`]).
    ///
    /// # Errors
    /// As [`NodeClient::new`], or [`NodeClientError::Runtime`].
    pub fn new(api_base: &str) -> Result<BlockingNodeClient, NodeClientError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(BlockingNodeClient {
            client: NodeClient::new(api_base)?,
            runtime: Some(runtime),
        })
    }

    /// The async client underneath.
    pub fn client(&self) -> &NodeClient {
        &self.client
    }

    fn run<'a, T: Send, F: std::future::Future<Output = T>>(
        &'a self,
        call: impl FnOnce(&'a NodeClient) -> F + Send,
    ) -> T {
        let Some(runtime) = &self.runtime else {
            unreachable!("the runtime is only taken on drop")
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return runtime.block_on(call(&self.client));
        }
        std::thread::scope(|s| {
            s.spawn(|| runtime.block_on(call(&self.client)))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// [`NodeClient::raw`].
    ///
    /// # Errors
    /// As [`NodeClient::raw`].
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<RawAnswer, ClientError> {
        self.run(|c| c.raw(method, path, body))
    }

    /// [`NodeClient::submit`].
    ///
    /// # Errors
    /// As [`NodeClient::submit`].
    pub fn submit(&self, order: &SignedOrder) -> Result<Submitted, ClientError> {
        self.run(|c| c.submit(order))
    }

    /// [`NodeClient::submit_proposal`].
    ///
    /// # Errors
    /// As [`NodeClient::submit_proposal`].
    pub fn submit_proposal(
        &self,
        signed: &crate::governance::SignedProposal,
    ) -> Result<api::ProposalAnswer, ClientError> {
        self.run(|c| c.submit_proposal(signed))
    }

    /// [`NodeClient::community`].
    ///
    /// # Errors
    /// As [`NodeClient::community`].
    pub fn community(&self) -> Result<api::CommunityView, ClientError> {
        self.run(|c| c.community())
    }

    /// [`NodeClient::submit_batch`].
    ///
    /// # Errors
    /// As [`NodeClient::submit_batch`].
    pub fn submit_batch(
        &self,
        orders: &[SignedOrder],
    ) -> Result<Vec<Result<Submitted, ClientError>>, ClientError> {
        self.run(|c| c.submit_batch(orders))
    }

    /// [`NodeClient::interval`].
    ///
    /// # Errors
    /// As [`NodeClient::interval`].
    pub fn interval(&self, start: i64) -> Result<Option<IntervalClearing>, ClientError> {
        self.run(|c| c.interval(start))
    }

    /// [`NodeClient::block`].
    ///
    /// # Errors
    /// As [`NodeClient::block`].
    pub fn block(&self, height: u64) -> Result<Option<BlockView>, ClientError> {
        self.run(|c| c.block(height))
    }

    /// [`NodeClient::order_status`].
    ///
    /// # Errors
    /// As [`NodeClient::order_status`].
    pub fn order_status(
        &self,
        participant: &str,
        id: &str,
        interval_start: Option<i64>,
    ) -> Result<Option<OrderStatusView>, ClientError> {
        self.run(|c| c.order_status(participant, id, interval_start))
    }

    /// [`NodeClient::status`].
    ///
    /// # Errors
    /// As [`NodeClient::status`].
    pub fn status(&self) -> Result<StatusView, ClientError> {
        self.run(NodeClient::status)
    }

    /// [`NodeClient::snapshot`].
    ///
    /// # Errors
    /// As [`NodeClient::snapshot`].
    pub fn snapshot(&self) -> Result<Option<SnapshotView>, ClientError> {
        self.run(NodeClient::snapshot)
    }

    /// [`NodeClient::participant`].
    ///
    /// # Errors
    /// As [`NodeClient::participant`].
    pub fn participant(&self, id: &str) -> Result<ParticipantView, ClientError> {
        self.run(|c| c.participant(id))
    }

    /// This client, signing its reads ([`NodeClient::with_read_key`]).
    #[must_use]
    pub fn with_read_key(mut self, neighborhood: &str, key: ed25519_dalek::SigningKey) -> Self {
        self.client = self.client.clone().with_read_key(neighborhood, key);
        self
    }

    /// [`NodeClient::bills`].
    ///
    /// # Errors
    /// As [`NodeClient::bills`].
    pub fn bills(&self, id: &str, from: i64, to: i64) -> Result<api::BillsView, ClientError> {
        self.run(|c| c.bills(id, from, to))
    }

    /// [`NodeClient::statement`].
    ///
    /// # Errors
    /// As [`NodeClient::statement`].
    pub fn statement(
        &self,
        id: &str,
        from: i64,
        to: i64,
    ) -> Result<crate::bill::Statement, ClientError> {
        self.run(|c| c.statement(id, from, to))
    }

    /// [`NodeClient::settlements`].
    ///
    /// # Errors
    /// As [`NodeClient::settlements`].
    pub fn settlements(&self, from: i64, to: i64) -> Result<api::SettlementsView, ClientError> {
        self.run(|c| c.settlements(from, to))
    }

    /// [`NodeClient::settlement`].
    ///
    /// # Errors
    /// As [`NodeClient::settlement`].
    pub fn settlement(&self, start: i64) -> Result<Option<api::SettlementView>, ClientError> {
        self.run(|c| c.settlement(start))
    }

    /// [`NodeClient::submit_correction`].
    ///
    /// # Errors
    /// As [`NodeClient::submit_correction`].
    pub fn submit_correction(
        &self,
        signed: &crate::correction::SignedCorrection,
    ) -> Result<api::CorrectionAnswer, ClientError> {
        self.run(|c| c.submit_correction(signed))
    }

    /// [`NodeClient::corrections`].
    ///
    /// # Errors
    /// As [`NodeClient::corrections`].
    pub fn corrections(&self, from: i64, to: i64) -> Result<api::CorrectionsView, ClientError> {
        self.run(|c| c.corrections(from, to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked() {
        assert_eq!(
            NodeClient::new("http://127.0.0.1:7600/").unwrap().base(),
            "http://127.0.0.1:7600"
        );
        assert!(NodeClient::new("https://node.example/api").is_ok());
        for bad in [
            "127.0.0.1:7600",
            "ftp://x",
            "http://",
            "http:///v1",
            "http://a b",
        ] {
            assert!(
                matches!(NodeClient::new(bad), Err(NodeClientError::BadUrl(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_absent_node_is_worth_retrying() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let absent = BlockingNodeClient::new(&format!("http://127.0.0.1:{port}")).unwrap();
        let e = absent.status().unwrap_err();
        assert!(e.is_retryable(), "refused: {e}");
        // Also from inside a runtime (as a `#[tokio::test]` harness calls it).
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let e = runtime.block_on(async {
            let e = absent.status().unwrap_err();
            drop(absent);
            e
        });
        assert!(e.is_retryable(), "refused: {e}");
    }
}
