//! [`HttpNode`]: the [`OrderSink`] that talks to a node's HTTP API (`consensus/src/node/api.rs`).
//!
//! # How answers are classified
//! | node answer | result |
//! |---|---|
//! | 202 | [`Submitted::Accepted`] |
//! | 422 `replayed_nonce` / `duplicate_id` | [`Submitted::AlreadyThere`] (a resubmission; see the nonce rule in [`crate::order_sink`]) |
//! | 422 `mempool_full`, 503, 5xx, connection refused, timeout | [`SinkError::Unavailable`]: retry |
//! | other 422 | [`SinkError::Rejected`]: permanent, counted, never retried |
//! | 400 | [`SinkError::Malformed`]: a bug, counted, never retried |
//! | anything else | [`SinkError::Unexpected`] |
//!
//! Every request has a connect timeout ([`CONNECT_TIMEOUT`]) and a total timeout
//! ([`REQUEST_TIMEOUT`]); proxies from the environment are ignored, so the bridge only ever
//! talks to the configured node. Clones share one connection pool and one set of counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};
use voltmesh_consensus::ledger::{IntervalClearing, SignedOrder};

use crate::order_sink::{OrderSink, SinkError, Submitted};

/// How long to wait for a TCP connection to the node.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one request may take in total.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest part of an unexpected body kept in an error.
const BODY_SNIPPET: usize = 200;

/// Why an [`HttpNode`] cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum NodeClientError {
    /// The base URL is not `http://host:port` (optionally with a path prefix).
    #[error("node api url {0:?} must start with http:// or https:// and name a host")]
    BadUrl(String),
    /// The HTTP client could not be built (TLS backend initialisation).
    #[error("http client: {0}")]
    Client(#[from] reqwest::Error),
}

/// What [`HttpNode`] has seen since it was built (shared by clones).
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

/// The node's error body (`{"error": kind, "message": text}`).
#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    message: String,
}

/// A node's HTTP API as an [`OrderSink`] (module docs for the classification of answers).
#[derive(Debug, Clone)]
pub struct HttpNode {
    client: reqwest::Client,
    base: Arc<str>,
    counters: Arc<Counters>,
}

impl HttpNode {
    /// A client for the node API at `api_base`, e.g. `"http://127.0.0.1:7600"` (a trailing `/`
    /// is ignored). Nothing is contacted until the first request.
    ///
    /// # Errors
    /// [`NodeClientError::BadUrl`] if `api_base` is not an http(s) URL with a host;
    /// [`NodeClientError::Client`] if the HTTP client cannot be built.
    pub fn new(api_base: &str) -> Result<HttpNode, NodeClientError> {
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
            .build()?;
        Ok(HttpNode {
            client,
            base: Arc::from(base),
            counters: Arc::default(),
        })
    }

    /// The base URL, without a trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A snapshot of the counters.
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

    fn unavailable(&self, cause: impl std::fmt::Display) -> SinkError {
        bump(&self.counters.unavailable);
        SinkError::Unavailable(cause.to_string())
    }

    fn classify(&self, order: &SignedOrder, status: StatusCode, body: &[u8]) -> SinkError {
        let c = &self.counters;
        let participant = order.ticket.participant.as_str();
        let parsed = serde_json::from_slice::<ErrorBody>(body).ok();
        match (status.as_u16(), parsed) {
            (422, Some(e)) if e.error == "mempool_full" => self.unavailable(e.message),
            (422, Some(e)) => {
                bump(&c.rejected);
                warn!(
                    participant,
                    order = %order.ticket.id,
                    interval = order.ticket.interval_start,
                    kind = %e.error,
                    message = %e.message,
                    "node rejected the order; not retrying"
                );
                SinkError::Rejected {
                    kind: e.error,
                    message: e.message,
                }
            }
            (400, parsed) => {
                bump(&c.malformed);
                let message = parsed.map_or_else(|| snippet(body), |e| e.message);
                warn!(participant, order = %order.ticket.id, %message, "node could not parse the order (a bug)");
                SinkError::Malformed(message)
            }
            (s, _) if status.is_server_error() => {
                self.unavailable(format!("HTTP {s}: {}", snippet(body)))
            }
            (s, _) => {
                bump(&c.unexpected);
                warn!(participant, status = s, body = %snippet(body), "unexpected answer to an order");
                SinkError::Unexpected {
                    status: s,
                    body: snippet(body),
                }
            }
        }
    }
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(BODY_SNIPPET)]);
    text.into_owned()
}

impl OrderSink for HttpNode {
    async fn submit(&self, order: &SignedOrder) -> Result<Submitted, SinkError> {
        let body = serde_json::to_vec(order).map_err(|e| SinkError::Malformed(e.to_string()))?;
        let response = self
            .client
            .post(format!("{}/v1/orders", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| self.unavailable(e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| self.unavailable(e))?;
        if status == StatusCode::ACCEPTED {
            bump(&self.counters.accepted);
            return Ok(Submitted::Accepted);
        }
        if status == StatusCode::UNPROCESSABLE_ENTITY {
            if let Ok(e) = serde_json::from_slice::<ErrorBody>(&bytes) {
                if e.error == "replayed_nonce" || e.error == "duplicate_id" {
                    bump(&self.counters.already_there);
                    debug!(participant = %order.ticket.participant, order = %order.ticket.id, kind = %e.error, "node already has the order");
                    return Ok(Submitted::AlreadyThere);
                }
            }
        }
        Err(self.classify(order, status, &bytes))
    }

    async fn clearing(&self, interval_start: i64) -> Result<Option<IntervalClearing>, SinkError> {
        let response = self
            .client
            .get(format!("{}/v1/intervals/{interval_start}", self.base))
            .send()
            .await
            .map_err(|e| SinkError::Unavailable(e.to_string()))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| SinkError::Unavailable(e.to_string()))?;
        match status {
            StatusCode::OK => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| SinkError::Unexpected {
                        status: 200,
                        body: format!("not a clearing: {e}"),
                    })
            }
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_server_error() => Err(SinkError::Unavailable(format!(
                "HTTP {}: {}",
                s.as_u16(),
                snippet(&bytes)
            ))),
            s => Err(SinkError::Unexpected {
                status: s.as_u16(),
                body: snippet(&bytes),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use tokio::sync::mpsc;
    use voltmesh_consensus::ledger::OrderRejection;
    use voltmesh_consensus::node::api::{router, ApiRequest};
    use voltmesh_engine::{ClearingOutcome, IntervalSpec, Mechanism, Order, RejectReason, Side};

    #[test]
    fn base_urls_are_checked() {
        assert_eq!(
            HttpNode::new("http://127.0.0.1:7600/").unwrap().base(),
            "http://127.0.0.1:7600"
        );
        assert!(HttpNode::new("https://node.example/api").is_ok());
        for bad in [
            "127.0.0.1:7600",
            "ftp://x",
            "http://",
            "http:///v1",
            "http://a b",
        ] {
            assert!(
                matches!(HttpNode::new(bad), Err(NodeClientError::BadUrl(_))),
                "{bad}"
            );
        }
    }

    const CLEARED: i64 = 1_790_000_100;

    /// The node's real API router on a loopback port, with a driver that answers submissions
    /// from `answers` in turn and knows one cleared interval, [`CLEARED`]. With `answers` =
    /// `None` the driver is gone, so the API answers 503.
    async fn node(answers: Option<Vec<Result<(), OrderRejection>>>) -> HttpNode {
        let (tx, mut rx) = mpsc::channel::<ApiRequest>(8);
        match answers {
            Some(answers) => {
                tokio::spawn(async move {
                    let mut answers = answers.into_iter();
                    while let Some(request) = rx.recv().await {
                        match request {
                            ApiRequest::SubmitOrder(_, reply) => {
                                let _ = reply.send(answers.next().unwrap_or(Ok(())));
                            }
                            ApiRequest::Interval(start, reply) => {
                                let _ = reply.send((start == CLEARED).then(|| IntervalClearing {
                                    interval_start: start,
                                    outcome: ClearingOutcome {
                                        trades: Vec::new(),
                                        volume_wh: 0,
                                        clearing_price: None,
                                        mechanism: Mechanism::default(),
                                        price_range: None,
                                        unfilled: Vec::new(),
                                    },
                                }));
                            }
                            _ => {}
                        }
                    }
                });
            }
            None => drop(rx),
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router(tx)).await;
        });
        HttpNode::new(&format!("http://{addr}")).unwrap()
    }

    fn signed() -> SignedOrder {
        let interval =
            IntervalSpec::DEFAULT.containing(DateTime::from_timestamp(CLEARED, 0).unwrap());
        let order = Order {
            id: "hh-1-x-sell".into(),
            participant: "hh-1".into(),
            side: Side::Sell,
            quantity_wh: 100,
            limit_price: "0.10".parse().unwrap(),
            seq: 0,
        };
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        crate::order_sink::sign_orders(&[order], interval, "nb", &key).remove(0)
    }

    #[tokio::test]
    async fn answers_are_classified_as_documented() {
        let answers = vec![
            Ok(()),
            Err(OrderRejection::ReplayedNonce { nonce: 1, last: 1 }),
            Err(OrderRejection::Market(RejectReason::DuplicateId(
                "x".into(),
            ))),
            Err(OrderRejection::MempoolFull),
            Err(OrderRejection::BadSignature),
            Err(OrderRejection::ClosedInterval(CLEARED)),
        ];
        let node = node(Some(answers)).await;
        let order = signed();
        assert_eq!(node.submit(&order).await, Ok(Submitted::Accepted));
        assert_eq!(node.submit(&order).await, Ok(Submitted::AlreadyThere));
        assert_eq!(node.submit(&order).await, Ok(Submitted::AlreadyThere));
        let full = node.submit(&order).await.unwrap_err();
        assert!(full.is_retryable(), "{full}");
        let bad = node.submit(&order).await.unwrap_err();
        assert!(
            matches!(&bad, SinkError::Rejected { kind, .. } if kind == "bad_signature"),
            "{bad}"
        );
        assert!(!bad.is_retryable());
        let closed = node.submit(&order).await.unwrap_err();
        assert!(
            matches!(&closed, SinkError::Rejected { kind, .. } if kind == "closed_interval"),
            "{closed}"
        );
        assert_eq!(
            node.counts(),
            SubmitCounts {
                accepted: 1,
                already_there: 2,
                rejected: 2,
                unavailable: 1,
                ..SubmitCounts::default()
            }
        );
        assert_eq!(node.clearing(CLEARED - 900).await, Ok(None), "404: not yet");
        let clearing = node.clearing(CLEARED).await.unwrap().expect("cleared");
        assert_eq!(clearing.interval_start, CLEARED);
    }

    #[tokio::test]
    async fn a_busy_or_absent_node_is_worth_retrying() {
        let busy = node(None).await;
        let e = busy.submit(&signed()).await.unwrap_err();
        assert!(e.is_retryable(), "503: {e}");
        assert!(busy.clearing(CLEARED).await.unwrap_err().is_retryable());
        // Nothing listens on the port any more.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let absent = HttpNode::new(&format!("http://127.0.0.1:{port}")).unwrap();
        let e = absent.submit(&signed()).await.unwrap_err();
        assert!(e.is_retryable(), "refused: {e}");
        assert_eq!(absent.counts().unavailable, 1);
    }
}
