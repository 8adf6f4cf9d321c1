//! [`Failover`]: several nodes' APIs as one [`OrderSink`], moving to the next node when one is
//! down or overloaded.
//!
//! # Rule
//! Requests go to the *current* node. When it answers with a retryable error
//! ([`SinkError::is_retryable`]: unreachable, timed out, `503 busy`/`stopping`, `mempool_full`),
//! the same request goes to the next node in the configured order, and that node becomes the
//! current one; after every node has failed once, the last error is returned and the caller's own
//! retry (the planner retries until gate closure) starts again from the node that is now current.
//! A permanent answer (a rejection, a malformed request) is returned at once: another node of the
//! same neighborhood would answer the same.
//!
//! # Never one order under two ids
//! An order is signed once, by the planner, and every node receives those exact bytes: the same
//! participant, interval, id and signature. If a node took it but its answer was lost, the next
//! node answers `duplicate_id` once gossip has reached it ([`Submitted::AlreadyThere`]) or takes
//! the identical order, which the ledger admits at most once per (participant, interval, id).

use std::sync::atomic::{AtomicUsize, Ordering};

use tracing::warn;
use voltmesh_engine::ParticipantId;
use voltmesh_wire::api::{Balance, CommunityView, OrderState};
use voltmesh_wire::bill::CommittedBill;
use voltmesh_wire::{IntervalClearing, SignedOrder};

use crate::order_sink::{OrderSink, SinkError, Submitted};

/// Several sinks tried in order, starting from the one that last answered.
///
/// # Invariant
/// `sinks` is not empty and `current < sinks.len()`.
#[derive(Debug)]
pub struct Failover<S> {
    sinks: Vec<S>,
    current: AtomicUsize,
}

impl<S> Failover<S> {
    /// Fails over across `sinks` in this order, or `None` if there are none.
    pub fn new(sinks: Vec<S>) -> Option<Failover<S>> {
        (!sinks.is_empty()).then(|| Failover {
            sinks,
            current: AtomicUsize::new(0),
        })
    }

    /// The sinks, in failover order.
    pub fn sinks(&self) -> &[S] {
        &self.sinks
    }

    /// Index of the sink requests go to first.
    pub fn current(&self) -> usize {
        self.current.load(Ordering::Relaxed)
    }

    /// Runs `request` (given a sink's index) against the current sink, moving on while the
    /// answers are retryable.
    async fn attempt<T, F, Fut>(&self, what: &'static str, request: F) -> Result<T, SinkError>
    where
        F: Fn(usize) -> Fut,
        Fut: std::future::Future<Output = Result<T, SinkError>>,
    {
        let n = self.sinks.len();
        let start = self.current();
        let mut last = None;
        for step in 0..n {
            let index = (start + step) % n;
            match request(index).await {
                Err(e) if e.is_retryable() => {
                    let next = (index + 1) % n;
                    if n > 1 {
                        warn!(request = what, node = index, next, error = %e, "node unavailable; failing over");
                    }
                    self.current.store(next, Ordering::Relaxed);
                    last = Some(e);
                }
                answer => {
                    self.current.store(index, Ordering::Relaxed);
                    return answer;
                }
            }
        }
        Err(last.unwrap_or(SinkError::Closed))
    }
}

impl<S: OrderSink> OrderSink for Failover<S> {
    async fn submit(&self, order: &SignedOrder) -> Result<Submitted, SinkError> {
        self.attempt("submit", |i| self.sinks[i].submit(order))
            .await
    }

    /// The batch goes to the current node; the orders it answers with a retryable error go
    /// on to the next node (which becomes current), and so on once round the nodes.
    async fn submit_batch(&self, orders: &[SignedOrder]) -> Vec<Result<Submitted, SinkError>> {
        let n = self.sinks.len();
        let start = self.current();
        let mut results: Vec<Option<Result<Submitted, SinkError>>> = vec![None; orders.len()];
        let mut open: Vec<usize> = (0..orders.len()).collect();
        for step in 0..n {
            let index = (start + step) % n;
            let batch: Vec<SignedOrder> = open.iter().map(|&k| orders[k].clone()).collect();
            let answers = self.sinks[index].submit_batch(&batch).await;
            let mut still = Vec::new();
            for (k, answer) in open.into_iter().zip(answers) {
                if matches!(&answer, Err(e) if e.is_retryable()) {
                    still.push(k);
                }
                results[k] = Some(answer);
            }
            if still.is_empty() {
                self.current.store(index, Ordering::Relaxed);
                break;
            }
            let next = (index + 1) % n;
            if n > 1 {
                warn!(
                    request = "submit_batch",
                    node = index,
                    next,
                    retryable = still.len(),
                    "node unavailable for part of a batch; failing over"
                );
            }
            self.current.store(next, Ordering::Relaxed);
            open = still;
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(SinkError::Closed)))
            .collect()
    }

    async fn clearing(&self, interval_start: i64) -> Result<Option<IntervalClearing>, SinkError> {
        self.attempt("clearing", |i| self.sinks[i].clearing(interval_start))
            .await
    }

    async fn status(&self, order: &SignedOrder) -> Result<Option<OrderState>, SinkError> {
        self.attempt("status", |i| self.sinks[i].status(order))
            .await
    }

    async fn community(&self) -> Result<CommunityView, SinkError> {
        self.attempt("community", |i| self.sinks[i].community())
            .await
    }

    async fn balance(&self, participant: &ParticipantId) -> Result<Balance, SinkError> {
        self.attempt("balance", |i| self.sinks[i].balance(participant))
            .await
    }

    async fn submit_deliveries(
        &self,
        deliveries: &[voltmesh_wire::delivery::SignedDelivery],
    ) -> Result<Vec<Result<(), SinkError>>, SinkError> {
        self.attempt("submit_deliveries", |i| {
            self.sinks[i].submit_deliveries(deliveries)
        })
        .await
    }

    async fn bills(
        &self,
        participant: &ParticipantId,
        from: i64,
        to: i64,
    ) -> Result<Vec<CommittedBill>, SinkError> {
        self.attempt("bills", |i| self.sinks[i].bills(participant, from, to))
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::order_sink::ClientError;

    /// A node that answers from a script and records the ids it was sent.
    #[derive(Debug, Default)]
    struct Scripted {
        answers: Mutex<Vec<Result<Submitted, SinkError>>>,
        seen: Mutex<Vec<String>>,
    }

    impl Scripted {
        fn answering(answers: Vec<Result<Submitted, SinkError>>) -> Scripted {
            Scripted {
                answers: Mutex::new(answers.into_iter().rev().collect()),
                seen: Mutex::default(),
            }
        }

        fn seen(&self) -> Vec<String> {
            self.seen.lock().unwrap().clone()
        }
    }

    impl OrderSink for Scripted {
        async fn submit(&self, order: &SignedOrder) -> Result<Submitted, SinkError> {
            self.seen.lock().unwrap().push(order.ticket.id.to_string());
            self.answers
                .lock()
                .unwrap()
                .pop()
                .unwrap_or(Ok(Submitted::Accepted))
        }

        async fn clearing(&self, _: i64) -> Result<Option<IntervalClearing>, SinkError> {
            Ok(None)
        }
    }

    fn down() -> Result<Submitted, SinkError> {
        Err(SinkError::Node(ClientError::Unavailable(
            "connection refused".into(),
        )))
    }

    fn order(id: &str) -> SignedOrder {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        voltmesh_wire::OrderTicket {
            participant: "h1".into(),
            interval_start: 900,
            id: id.into(),
            side: voltmesh_engine::Side::Buy,
            quantity_wh: 100,
            limit_price: voltmesh_engine::Price::ZERO,
            nonce: 900,
        }
        .sign("nb", &key)
    }

    #[tokio::test]
    async fn a_down_node_is_skipped_and_the_next_one_stays_current() {
        let sink = Failover::new(vec![
            Scripted::answering(vec![down()]),
            Scripted::answering(vec![]),
        ])
        .unwrap();
        assert_eq!(sink.submit(&order("o1")).await, Ok(Submitted::Accepted));
        assert_eq!(sink.current(), 1);
        assert_eq!(sink.submit(&order("o2")).await, Ok(Submitted::Accepted));
        assert_eq!(sink.sinks()[0].seen(), ["o1"], "o2 went straight to node 1");
        assert_eq!(
            sink.sinks()[1].seen(),
            ["o1", "o2"],
            "the same order, same id"
        );
    }

    #[tokio::test]
    async fn a_rejection_is_final_and_does_not_fail_over() {
        let rejected = Err(SinkError::Node(ClientError::Rejected {
            kind: "bad_signature".into(),
            message: "bad signature".into(),
        }));
        let sink = Failover::new(vec![
            Scripted::answering(vec![rejected.clone()]),
            Scripted::answering(vec![]),
        ])
        .unwrap();
        assert_eq!(sink.submit(&order("o1")).await, rejected);
        assert!(sink.sinks()[1].seen().is_empty());
        assert_eq!(sink.current(), 0);
    }

    #[tokio::test]
    async fn when_every_node_is_down_the_error_is_retryable_and_each_was_tried_once() {
        let sink = Failover::new(vec![
            Scripted::answering(vec![down()]),
            Scripted::answering(vec![Err(SinkError::Node(ClientError::Unavailable(
                "busy".into(),
            )))]),
        ])
        .unwrap();
        let e = sink.submit(&order("o1")).await.unwrap_err();
        assert!(e.is_retryable());
        assert_eq!(e, SinkError::Node(ClientError::Unavailable("busy".into())));
        assert_eq!(sink.sinks()[0].seen(), ["o1"]);
        assert_eq!(sink.sinks()[1].seen(), ["o1"]);
        assert_eq!(sink.current(), 0, "the next attempt starts over at node 0");
        assert_eq!(sink.submit(&order("o1")).await, Ok(Submitted::Accepted));
    }

    #[tokio::test]
    async fn only_the_retryable_part_of_a_batch_fails_over() {
        let rejected = Err(SinkError::Node(ClientError::Rejected {
            kind: "closed_interval".into(),
            message: "closed".into(),
        }));
        let sink = Failover::new(vec![
            Scripted::answering(vec![
                Ok(Submitted::Accepted),
                down(),
                rejected.clone(),
                down(),
            ]),
            Scripted::answering(vec![Ok(Submitted::AlreadyThere)]),
        ])
        .unwrap();
        let orders: Vec<SignedOrder> = ["o1", "o2", "o3", "o4"].map(order).to_vec();
        let results = sink.submit_batch(&orders).await;
        assert_eq!(
            results,
            [
                Ok(Submitted::Accepted),
                Ok(Submitted::AlreadyThere),
                rejected,
                Ok(Submitted::Accepted)
            ]
        );
        assert_eq!(
            sink.sinks()[1].seen(),
            ["o2", "o4"],
            "same orders, same ids"
        );
        assert_eq!(sink.current(), 1);
    }

    /// A node that serves one bill, or is down.
    #[derive(Debug)]
    struct Billing {
        down: bool,
        asked: AtomicUsize,
    }

    impl OrderSink for Billing {
        async fn submit(&self, _: &SignedOrder) -> Result<Submitted, SinkError> {
            Ok(Submitted::Accepted)
        }

        async fn clearing(&self, _: i64) -> Result<Option<IntervalClearing>, SinkError> {
            Ok(None)
        }

        async fn bills(
            &self,
            participant: &ParticipantId,
            from: i64,
            _: i64,
        ) -> Result<Vec<CommittedBill>, SinkError> {
            self.asked.fetch_add(1, Ordering::Relaxed);
            if self.down {
                return down().map(|_| Vec::new());
            }
            Ok(vec![crate::runtime::bills::sample::committed(
                participant.as_str(),
                from,
                3,
            )])
        }
    }

    #[tokio::test]
    async fn bills_are_read_from_the_next_node_when_one_is_down() {
        let node = |down| Billing {
            down,
            asked: AtomicUsize::new(0),
        };
        let sink = Failover::new(vec![node(true), node(false)]).unwrap();
        let bills = sink.bills(&"h1".into(), 900, 1_800).await.unwrap();
        assert_eq!(bills.len(), 1);
        assert_eq!(sink.current(), 1);
        let asked: Vec<usize> = sink
            .sinks()
            .iter()
            .map(|s| s.asked.load(Ordering::Relaxed))
            .collect();
        assert_eq!(asked, [1, 1]);
        let all_down = Failover::new(vec![node(true), node(true)]).unwrap();
        let e = all_down.bills(&"h1".into(), 900, 1_800).await.unwrap_err();
        assert!(e.is_retryable(), "{e}");
    }

    #[test]
    fn no_nodes_no_sink() {
        assert!(Failover::<Scripted>::new(Vec::new()).is_none());
    }
}
