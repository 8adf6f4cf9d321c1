//! The node's HTTP API as an [`OrderSink`]: [`NodeClient`] from the wire contract, whose
//! classification of the node's answers (`voltmesh_wire::client`, module docs) the sink passes on
//! as they are ([`Submitted`], [`SinkError::Node`]).
//!
//! The router ↔ client contract test (`consensus/tests/api_contract.rs`) checks that
//! classification against the node's real API router.

use voltmesh_engine::ParticipantId;
use voltmesh_wire::api::{
    Balance, CommunityView, OrderState, MAX_BATCH_DELIVERIES, MAX_BATCH_ORDERS,
};
use voltmesh_wire::bill::CommittedBill;
use voltmesh_wire::client::{ClientError, NodeClient};
use voltmesh_wire::delivery::SignedDelivery;
use voltmesh_wire::{IntervalClearing, SignedOrder};

use crate::order_sink::{OrderSink, SinkError, Submitted};

impl OrderSink for NodeClient {
    async fn submit(&self, order: &SignedOrder) -> Result<Submitted, SinkError> {
        Ok(NodeClient::submit(self, order).await?)
    }

    /// One `POST /v1/orders` per [`MAX_BATCH_ORDERS`] orders; a request that fails as a whole
    /// gives its error to each of its orders.
    async fn submit_batch(&self, orders: &[SignedOrder]) -> Vec<Result<Submitted, SinkError>> {
        let mut results = Vec::with_capacity(orders.len());
        for chunk in orders.chunks(MAX_BATCH_ORDERS) {
            let started = std::time::Instant::now();
            let answer = NodeClient::submit_batch(self, chunk).await;
            tracing::debug!(
                orders = chunk.len(),
                ms = started.elapsed().as_millis(),
                "batch request answered"
            );
            match answer {
                Ok(answers) => results.extend(answers.into_iter().map(|r| Ok(r?))),
                Err(e) => results.extend(chunk.iter().map(|_| Err(SinkError::Node(e.clone())))),
            }
        }
        results
    }

    async fn clearing(&self, interval_start: i64) -> Result<Option<IntervalClearing>, SinkError> {
        Ok(self.interval(interval_start).await?)
    }

    async fn status(&self, order: &SignedOrder) -> Result<Option<OrderState>, SinkError> {
        let t = &order.ticket;
        let view = self
            .order_status(
                t.participant.as_str(),
                t.id.as_str(),
                Some(t.interval_start),
            )
            .await?;
        Ok(view.and_then(|v| {
            v.orders
                .into_iter()
                .find(|e| e.interval_start == t.interval_start)
                .map(|e| e.status)
        }))
    }

    async fn community(&self) -> Result<CommunityView, SinkError> {
        Ok(NodeClient::community(self).await?)
    }

    async fn balance(&self, participant: &ParticipantId) -> Result<Balance, SinkError> {
        Ok(NodeClient::balance(self, participant.as_str()).await?)
    }

    /// One `POST /v1/deliveries` per [`MAX_BATCH_DELIVERIES`]; a node without the route (404)
    /// is [`SinkError::Unsupported`].
    async fn submit_deliveries(
        &self,
        deliveries: &[SignedDelivery],
    ) -> Result<Vec<Result<(), SinkError>>, SinkError> {
        let mut results = Vec::with_capacity(deliveries.len());
        for chunk in deliveries.chunks(MAX_BATCH_DELIVERIES) {
            match NodeClient::submit_deliveries(self, chunk).await {
                Ok(answers) => {
                    results.extend(answers.into_iter().map(|r| r.map_err(SinkError::Node)));
                }
                Err(ClientError::Unexpected { status: 404, .. }) => {
                    return Err(SinkError::Unsupported)
                }
                Err(e) => return Err(SinkError::Node(e)),
            }
        }
        Ok(results)
    }

    /// `GET /v1/participants/{id}/bills`, page after page while the node names a `next_from`
    /// inside the range; a node without the route (404) is [`SinkError::Unsupported`].
    async fn bills(
        &self,
        participant: &ParticipantId,
        from: i64,
        to: i64,
    ) -> Result<Vec<CommittedBill>, SinkError> {
        let mut bills = Vec::new();
        let mut page_from = from;
        loop {
            let view = match NodeClient::bills(self, participant.as_str(), page_from, to).await {
                Ok(view) => view,
                Err(ClientError::Unexpected { status: 404, .. }) => {
                    return Err(SinkError::Unsupported)
                }
                Err(e) => return Err(SinkError::Node(e)),
            };
            bills.extend(view.bills);
            match view.next_from {
                Some(next) if next > page_from && next < to => page_from = next,
                _ => return Ok(bills),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use voltmesh_wire::client::ClientError;

    #[test]
    fn client_errors_keep_their_retry_class() {
        let cases = [
            (ClientError::Unavailable("down".into()), true),
            (
                ClientError::Rejected {
                    kind: "bad_signature".into(),
                    message: "bad signature".into(),
                },
                false,
            ),
            (ClientError::Malformed("x".into()), false),
            (
                ClientError::Unexpected {
                    status: 404,
                    body: String::new(),
                },
                false,
            ),
        ];
        for (e, retryable) in cases {
            assert_eq!(e.is_retryable(), retryable, "{e}");
            let sink = SinkError::from(e.clone());
            assert_eq!(sink.is_retryable(), retryable, "{sink}");
            assert_eq!(sink.to_string(), e.to_string());
        }
    }

    /// A node serving `/v1/participants/{id}/bills` from three bills, two intervals a page, or
    /// 404 for every path (`bills: false`, a node older than bills on the ledger).
    async fn bills_node(bills: bool) -> (NodeClient, tokio::task::JoinHandle<()>) {
        use axum::extract::{Path, RawQuery};
        use voltmesh_wire::api::BillsView;
        let mut router = axum::Router::new();
        if bills {
            router = router.route(
                voltmesh_wire::api::PARTICIPANT_BILLS,
                axum::routing::get(|Path(id): Path<String>, RawQuery(q): RawQuery| async move {
                    let q = q.unwrap_or_default();
                    let arg = |k: &str| -> i64 {
                        q.split('&')
                            .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
                            .and_then(|v| v.parse().ok())
                            .unwrap_or_default()
                    };
                    let (from, to) = (arg("from"), arg("to"));
                    let page: Vec<i64> = [900, 1800, 2700]
                        .into_iter()
                        .filter(|s| (from..to).contains(s))
                        .collect();
                    let next_from = page.get(2).copied();
                    axum::Json(BillsView {
                        participant: ParticipantId::from(id.as_str()),
                        bills: page
                            .iter()
                            .take(2)
                            .map(|&s| crate::runtime::bills::sample::committed(&id, s, 7))
                            .collect(),
                        next_from,
                    })
                }),
            );
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        (NodeClient::new(&format!("http://{addr}")).unwrap(), server)
    }

    #[tokio::test]
    async fn bills_are_read_page_after_page_and_a_node_without_them_is_unsupported() {
        let (client, server) = bills_node(true).await;
        let hh = ParticipantId::from("hh-1");
        let all = OrderSink::bills(&client, &hh, 0, 3_600).await.unwrap();
        let starts: Vec<(i64, &str)> = all
            .iter()
            .map(|b| (b.interval_start, b.bill.participant.as_str()))
            .collect();
        assert_eq!(starts, [(900, "hh-1"), (1_800, "hh-1"), (2_700, "hh-1")]);
        let some = OrderSink::bills(&client, &hh, 1_800, 2_700).await.unwrap();
        assert_eq!(some.len(), 1);
        server.abort();
        let (old, server) = bills_node(false).await;
        assert_eq!(
            OrderSink::bills(&old, &hh, 0, 3_600).await,
            Err(SinkError::Unsupported)
        );
        server.abort();
    }

    #[tokio::test]
    async fn an_absent_node_is_worth_retrying() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let absent = NodeClient::new(&format!("http://127.0.0.1:{port}")).unwrap();
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let order = voltmesh_wire::OrderTicket {
            participant: "hh-1".into(),
            interval_start: 1_790_000_100,
            id: "hh-1-x-sell".into(),
            side: voltmesh_engine::Side::Sell,
            quantity_wh: 100,
            limit_price: "0.10".parse().unwrap(),
            nonce: 1_790_000_100,
        }
        .sign("nb", &key);
        let e = OrderSink::submit(&absent, &order).await.unwrap_err();
        assert!(e.is_retryable(), "refused: {e}");
        assert!(OrderSink::clearing(&absent, 0)
            .await
            .unwrap_err()
            .is_retryable());
        assert!(OrderSink::bills(&absent, &"hh-1".into(), 0, 900)
            .await
            .unwrap_err()
            .is_retryable());
        assert_eq!(absent.counts().unavailable, 1);
    }
}
