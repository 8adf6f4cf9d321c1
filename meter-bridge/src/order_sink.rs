//! Where the bridge's signed orders go: the [`OrderSink`] seam, and how planned orders become
//! the node's [`SignedOrder`]s.
//!
//! Each planned [`Order`] becomes one [`OrderTicket`] ([`ticket`]) signed with the bridge key for
//! the neighborhood in genesis ([`sign_orders`]); the node checks it against the keys genesis lists
//! for the participant. [`voltmesh_wire::client::NodeClient`] posts them to a node's API
//! ([`crate::runtime::node_sink`]);
//! [`ChannelSink`] hands them to a bounded channel (tests and benches read it).
//!
//! # Nonce and id rule
//! A ticket's nonce is its interval's start in Unix seconds; the node no longer treats nonces as a
//! gate (it refuses a replay by participant, interval and id), so the nonce only records when the
//! bridge made the order. The bridge plans at most one order per household and interval, and its
//! id ([`crate::household::plan::order_id`]) is a function of participant, interval and side:
//! rebuilding or resubmitting the same interval's order gives the same signed bytes, which the
//! node answers with `duplicate_id` (taken as "already there") or, asked through
//! [`OrderSink::status`], as pending or committed.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use tokio::sync::mpsc;
use voltmesh_engine::{Interval, Order, ParticipantId};
use voltmesh_wire::api::{Balance, CommunityView, OrderState};
use voltmesh_wire::bill::CommittedBill;
use voltmesh_wire::delivery::SignedDelivery;
use voltmesh_wire::{IntervalClearing, OrderTicket, SignedOrder};

/// The node's ticket for `order` in `interval` (module nonce rule), or `None` if the interval
/// starts before 1970 (no nonce can be derived).
pub fn ticket(order: &Order, interval: Interval) -> Option<OrderTicket> {
    let start = interval.start_unix();
    let nonce = u64::try_from(start).ok()?;
    Some(OrderTicket {
        participant: order.participant.clone(),
        interval_start: start,
        id: order.id.clone(),
        side: order.side,
        quantity_wh: order.quantity_wh,
        limit_price: order.limit_price,
        nonce,
    })
}

/// Signs every order of `interval` with `key` for `neighborhood`, in the given order. Orders for
/// which [`ticket`] gives `None` are left out.
pub fn sign_orders(
    orders: &[Order],
    interval: Interval,
    neighborhood: &str,
    key: &SigningKey,
) -> Vec<SignedOrder> {
    orders
        .iter()
        .filter_map(|o| ticket(o, interval))
        .map(|t| t.sign(neighborhood, key))
        .collect()
}

pub use voltmesh_wire::client::{ClientError, Submitted};

/// Why an order was not taken, or a clearing or an order's state not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// The receiving side is gone.
    #[error("order sink closed")]
    Closed,
    /// The node's answer, classified by the wire client (`voltmesh_wire::client`, module docs):
    /// unavailable (retry), rejected, malformed or unexpected (do not retry).
    #[error(transparent)]
    Node(#[from] ClientError),
    /// This sink cannot do that (read clearings, order states, bills, ...).
    #[error("this order sink does not support the request")]
    Unsupported,
}

impl SinkError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SinkError::Node(e) if e.is_retryable())
    }
}

/// Receives signed orders, and reads back what the node committed.
pub trait OrderSink: Send + Sync + 'static {
    /// Submits one order; waits while the sink is full.
    ///
    /// # Errors
    /// [`SinkError`] if the order was not taken ([`SinkError::is_retryable`] says whether to
    /// try again).
    fn submit(
        &self,
        order: &SignedOrder,
    ) -> impl Future<Output = Result<Submitted, SinkError>> + Send;

    /// Submits several orders, one result per order in order, each what
    /// [`OrderSink::submit`] would have answered. The default submits them one by one; the node
    /// client sends them in as few requests as the node takes (`POST /v1/orders` with an array).
    fn submit_batch(
        &self,
        orders: &[SignedOrder],
    ) -> impl Future<Output = Vec<Result<Submitted, SinkError>>> + Send {
        async move {
            let mut results = Vec::with_capacity(orders.len());
            for order in orders {
                results.push(self.submit(order).await);
            }
            results
        }
    }

    /// The committed clearing of the interval starting at `interval_start` (Unix seconds), or
    /// `None` while it has not cleared.
    ///
    /// # Errors
    /// [`SinkError::Unsupported`] if the sink cannot read clearings, else why it could not.
    fn clearing(
        &self,
        interval_start: i64,
    ) -> impl Future<Output = Result<Option<IntervalClearing>, SinkError>> + Send;

    /// What became of `order` on the node (`GET /v1/orders/{participant}/{id}?interval=`), or
    /// `None` if the node has never seen it: after a failed submission the planner asks this
    /// instead of guessing whether the order arrived.
    ///
    /// # Errors
    /// [`SinkError::Unsupported`] (the default) if the sink cannot tell, else why it could not.
    fn status(
        &self,
        order: &SignedOrder,
    ) -> impl Future<Output = Result<Option<OrderState>, SinkError>> + Send {
        let _ = order;
        async { Err(SinkError::Unsupported) }
    }

    /// A participant's totals over every committed trade (`GET /v1/participants/{id}`):
    /// energy bought and sold, paid and received. Home Assistant's totals come from here, so
    /// they survive a bridge restart.
    ///
    /// # Errors
    /// [`SinkError::Unsupported`] (the default) if the sink cannot tell, else why it could not.
    fn balance(
        &self,
        participant: &ParticipantId,
    ) -> impl Future<Output = Result<Balance, SinkError>> + Send {
        let _ = participant;
        async { Err(SinkError::Unsupported) }
    }

    /// The community as the node's committed ledger says (`GET /v1/governance`): members, their
    /// keys and the market rules' schedule ([`crate::community`]).
    ///
    /// # Errors
    /// [`SinkError::Unsupported`] (the default) if the sink cannot tell, else why it could not.
    fn community(&self) -> impl Future<Output = Result<CommunityView, SinkError>> + Send {
        async { Err(SinkError::Unsupported) }
    }

    /// Submits metered deliveries (`POST /v1/deliveries`), one result per delivery in order:
    /// `Ok` once the node holds it (or held it already).
    ///
    /// # Errors
    /// The request as a whole: [`SinkError::Unsupported`] (the default) if the sink takes no
    /// deliveries, else why it could not.
    fn submit_deliveries(
        &self,
        deliveries: &[SignedDelivery],
    ) -> impl Future<Output = Result<Vec<Result<(), SinkError>>, SinkError>> + Send {
        let _ = deliveries;
        async { Err(SinkError::Unsupported) }
    }

    /// `participant`'s committed bills of the intervals starting in `from..to` (Unix seconds,
    /// `to` exclusive; `GET /v1/participants/{id}/bills`, every page), oldest first, each with
    /// the height and hash of the block that holds it. The node serves them only to a signed
    /// read ([`voltmesh_wire::client::NodeClient::with_read_key`]).
    ///
    /// # Errors
    /// [`SinkError::Unsupported`] (the default) if the sink serves no bills, else why it could
    /// not (a refused read is a non-retryable [`SinkError::Node`]).
    fn bills(
        &self,
        participant: &ParticipantId,
        from: i64,
        to: i64,
    ) -> impl Future<Output = Result<Vec<CommittedBill>, SinkError>> + Send {
        let _ = (participant, from, to);
        async { Err(SinkError::Unsupported) }
    }
}

/// An [`OrderSink`] over a bounded channel; it cannot read clearings.
#[derive(Debug, Clone)]
pub struct ChannelSink {
    tx: mpsc::Sender<SignedOrder>,
}

impl ChannelSink {
    /// A sink and its receiver, holding at most `capacity` orders (at least 1).
    pub fn new(capacity: usize) -> (ChannelSink, mpsc::Receiver<SignedOrder>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (ChannelSink { tx }, rx)
    }
}

impl OrderSink for ChannelSink {
    async fn submit(&self, order: &SignedOrder) -> Result<Submitted, SinkError> {
        self.tx
            .send(order.clone())
            .await
            .map(|()| Submitted::Accepted)
            .map_err(|_| SinkError::Closed)
    }

    async fn clearing(&self, _interval_start: i64) -> Result<Option<IntervalClearing>, SinkError> {
        Err(SinkError::Unsupported)
    }
}

/// Orders the node took and refused, shared by [`Counted`] and the metrics task
/// ([`crate::runtime::metrics::BridgeMetrics`]).
#[derive(Debug, Default)]
pub struct OrderCounts {
    taken: AtomicU64,
    refused: AtomicU64,
}

impl OrderCounts {
    /// `(taken, refused)` so far.
    pub fn get(&self) -> (u64, u64) {
        (
            self.taken.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
        )
    }
}

/// An [`OrderSink`] that counts what the node takes and refuses, and otherwise passes through.
#[derive(Debug)]
pub struct Counted<S> {
    inner: S,
    counts: Arc<OrderCounts>,
}

impl<S> Counted<S> {
    /// `inner`, counting into `counts`.
    pub fn new(inner: S, counts: Arc<OrderCounts>) -> Counted<S> {
        Counted { inner, counts }
    }
}

impl<S> Counted<S> {
    fn count(&self, result: &Result<Submitted, SinkError>) {
        match result {
            Ok(Submitted::Accepted) => {
                self.counts.taken.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) if !e.is_retryable() => {
                self.counts.refused.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Submitted::AlreadyThere) | Err(_) => {}
        }
    }
}

impl<S: OrderSink> OrderSink for Counted<S> {
    async fn submit(&self, order: &SignedOrder) -> Result<Submitted, SinkError> {
        let result = self.inner.submit(order).await;
        self.count(&result);
        result
    }

    /// The inner sink's batch submission (without this, the trait's default would send a
    /// bridge's orders one request each: 10,000 households took over 4 s).
    async fn submit_batch(&self, orders: &[SignedOrder]) -> Vec<Result<Submitted, SinkError>> {
        let results = self.inner.submit_batch(orders).await;
        for result in &results {
            self.count(result);
        }
        results
    }

    async fn clearing(&self, interval_start: i64) -> Result<Option<IntervalClearing>, SinkError> {
        self.inner.clearing(interval_start).await
    }

    async fn status(&self, order: &SignedOrder) -> Result<Option<OrderState>, SinkError> {
        self.inner.status(order).await
    }

    async fn community(&self) -> Result<CommunityView, SinkError> {
        self.inner.community().await
    }

    async fn balance(&self, participant: &ParticipantId) -> Result<Balance, SinkError> {
        self.inner.balance(participant).await
    }

    async fn submit_deliveries(
        &self,
        deliveries: &[SignedDelivery],
    ) -> Result<Vec<Result<(), SinkError>>, SinkError> {
        self.inner.submit_deliveries(deliveries).await
    }

    async fn bills(
        &self,
        participant: &ParticipantId,
        from: i64,
        to: i64,
    ) -> Result<Vec<CommittedBill>, SinkError> {
        self.inner.bills(participant, from, to).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use voltmesh_engine::{IntervalSpec, Side};

    fn order(participant: &str, side: Side, interval: Interval) -> Order {
        Order {
            id: crate::household::plan::order_id(&ParticipantId::from(participant), interval, side),
            participant: participant.into(),
            side,
            quantity_wh: 420,
            limit_price: "0.12".parse().unwrap(),
            seq: 0,
        }
    }

    #[test]
    fn orders_are_signed_per_order_with_interval_nonces() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let spec = IntervalSpec::DEFAULT;
        let first = spec.containing(DateTime::from_timestamp(1_790_000_100, 0).unwrap());
        let second = first.next();
        let orders = [order("a", Side::Sell, first), order("b", Side::Buy, first)];
        let signed = sign_orders(&orders, first, "nb", &key);
        assert_eq!(signed.len(), 2);
        for (s, o) in signed.iter().zip(&orders) {
            assert!(s.signature_valid("nb"));
            assert!(!s.signature_valid("other"), "bound to the neighborhood");
            assert_eq!(s.ticket.participant, o.participant);
            assert_eq!(s.ticket.id, o.id);
            assert_eq!(s.ticket.interval_start, first.start_unix());
            assert_eq!(s.ticket.nonce, first.start_unix() as u64);
        }
        let later = sign_orders(&[order("a", Side::Buy, second)], second, "nb", &key);
        assert!(later[0].ticket.nonce > signed[0].ticket.nonce);
        assert_eq!(
            sign_orders(&orders, first, "nb", &key),
            signed,
            "re-signing gives the identical order"
        );
        let mut tampered = signed[0].clone();
        tampered.ticket.quantity_wh += 1;
        assert!(!tampered.signature_valid("nb"));
    }

    #[tokio::test]
    async fn channel_sink_hands_orders_over() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let interval =
            IntervalSpec::DEFAULT.containing(DateTime::from_timestamp(1_790_000_100, 0).unwrap());
        let signed = sign_orders(&[order("a", Side::Sell, interval)], interval, "nb", &key);
        let (sink, mut rx) = ChannelSink::new(1);
        assert_eq!(sink.submit(&signed[0]).await, Ok(Submitted::Accepted));
        assert_eq!(rx.recv().await, Some(signed[0].clone()));
        assert_eq!(sink.clearing(0).await, Err(SinkError::Unsupported));
        drop(rx);
        assert_eq!(sink.submit(&signed[0]).await, Err(SinkError::Closed));
    }

    #[derive(Debug)]
    struct Fixed(Result<Submitted, SinkError>);

    impl OrderSink for Fixed {
        async fn submit(&self, _: &SignedOrder) -> Result<Submitted, SinkError> {
            self.0.clone()
        }

        async fn clearing(&self, _: i64) -> Result<Option<IntervalClearing>, SinkError> {
            Err(SinkError::Unsupported)
        }
    }

    fn signed() -> SignedOrder {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        voltmesh_wire::OrderTicket {
            participant: "h1".into(),
            interval_start: 900,
            id: "o1".into(),
            side: voltmesh_engine::Side::Buy,
            quantity_wh: 100,
            limit_price: voltmesh_engine::Price::ZERO,
            nonce: 1,
        }
        .sign("nb", &key)
    }

    #[tokio::test]
    async fn the_counted_sink_counts_taken_and_refused_orders_only() {
        let counts = Arc::new(OrderCounts::default());
        let order = signed();
        for answer in [
            Ok(Submitted::Accepted),
            Ok(Submitted::Accepted),
            Ok(Submitted::AlreadyThere),
            Err(SinkError::Node(ClientError::Unavailable("down".into()))),
            Err(SinkError::Node(ClientError::Rejected {
                kind: "closed_interval".into(),
                message: "late".into(),
            })),
        ] {
            let sink = Counted {
                inner: Fixed(answer.clone()),
                counts: Arc::clone(&counts),
            };
            assert_eq!(sink.submit(&order).await, answer);
        }
        assert_eq!(counts.get(), (2, 1));
    }

    /// Answers each batch with `Accepted` for all of it, and records how it was called.
    #[derive(Debug, Default)]
    struct Batches {
        singles: std::sync::atomic::AtomicUsize,
        batches: std::sync::Mutex<Vec<usize>>,
    }

    impl OrderSink for Batches {
        async fn submit(&self, _: &SignedOrder) -> Result<Submitted, SinkError> {
            self.singles.fetch_add(1, Ordering::Relaxed);
            Ok(Submitted::Accepted)
        }

        async fn submit_batch(&self, orders: &[SignedOrder]) -> Vec<Result<Submitted, SinkError>> {
            self.batches.lock().unwrap().push(orders.len());
            orders.iter().map(|_| Ok(Submitted::Accepted)).collect()
        }

        async fn clearing(&self, _: i64) -> Result<Option<IntervalClearing>, SinkError> {
            Err(SinkError::Unsupported)
        }
    }

    #[tokio::test]
    async fn the_counted_sink_passes_a_batch_on_as_one_batch() {
        let counts = Arc::new(OrderCounts::default());
        let sink = Counted::new(Batches::default(), Arc::clone(&counts));
        let orders = vec![signed(); 3];
        let results = sink.submit_batch(&orders).await;
        assert_eq!(results, vec![Ok(Submitted::Accepted); 3]);
        assert_eq!(*sink.inner.batches.lock().unwrap(), vec![3]);
        assert_eq!(sink.inner.singles.load(Ordering::Relaxed), 0);
        assert_eq!(counts.get(), (3, 0));
    }
}
