//! [`run`]: the whole bridge as one future, stopped by a shutdown future (mini-redis style).
//!
//! # Tasks
//! * the subscribing connection's event loop and the ingest worker ([`crate::mqtt::ingest`]);
//! * the publishing connection's event loop ([`crate::mqtt::publisher`]);
//! * the results task: [`ResultMessage`]s from the node → household topics
//!   ([`crate::mqtt::results`]);
//! * the order planner: before every interval's gate closure, plans each household's order from
//!   the shared [`Ingest`], signs each one for the node ([`crate::order_sink::sign_orders`]) and
//!   submits them to the [`OrderSink`] one by one; orders the node could not take yet (down,
//!   busy, timeout) are retried with backoff until gate closure, refused ones are logged and
//!   dropped (a node that is down delays orders, never crashes the bridge).
//!
//! # Shutdown
//! When `shutdown` completes, [`run`] broadcasts the signal, then waits until every task has
//! dropped its clone of an `mpsc::Sender` (the receiver's `recv` returns `None`). Messages
//! received but not yet acknowledged stay with the broker for the next session.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use ed25519_dalek::SigningKey;
use rumqttc::{AsyncClient, QoS, SubscribeFilter};
use tokio::sync::{broadcast, mpsc, watch};
use tracing::{info, warn};
use voltmesh_consensus::ledger::SignedOrder;
use voltmesh_engine::Interval;

use crate::config::Config;
use crate::ingest::Ingest;
use crate::mqtt::backoff::Backoff;
use crate::mqtt::ingest::{
    lock, run_event_loop, Handler, LinkStatus, SharedIngest, Worker, REQUEST_QUEUE,
};
use crate::mqtt::options::{mqtt_options, OptionsError};
use crate::mqtt::publisher::{run_publisher_loop, Publisher};
use crate::mqtt::results::ResultMessage;
use crate::order_sink::{sign_orders, OrderSink};
use crate::reading::Reading;
use crate::shutdown::Shutdown;

/// Why the bridge could not start.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The connection options (TLS files) are unusable.
    #[error(transparent)]
    Options(#[from] OptionsError),
}

/// A fresh shared [`Ingest`] for `config`.
pub fn new_ingest(config: &Config) -> SharedIngest {
    Arc::new(Mutex::new(Ingest::new(
        config.ingest.clone(),
        config.registry.clone(),
        config.market,
    )))
}

/// Everything [`run`] talks to besides the broker.
#[derive(Debug)]
pub struct Io<S> {
    /// Where signed orders go ([`crate::node_client::HttpNode`] in production).
    pub orders: S,
    /// The bridge key named in genesis.
    pub signing_key: SigningKey,
    /// Results from the node, to publish to households.
    pub results: mpsc::Receiver<ResultMessage>,
    /// Optional consumer of every accepted reading (waited for before the reading is acked).
    pub readings: Option<mpsc::Sender<Reading>>,
    /// Receives the subscribing connection's status.
    pub status: watch::Sender<LinkStatus>,
}

/// Runs the bridge until `shutdown` completes (see the module docs).
///
/// # Errors
/// [`BridgeError`] if it cannot start; once running, broker and node failures are retried, never
/// returned.
pub async fn run<S: OrderSink>(
    config: Config,
    ingest: SharedIngest,
    io: Io<S>,
    shutdown: impl Future,
) -> Result<(), BridgeError> {
    let (min, max) = config.broker.backoff();
    let sub_options = mqtt_options(
        &config.broker,
        &config.broker.client_id,
        true,
        REQUEST_QUEUE,
    )?;
    let pub_options = mqtt_options(
        &config.broker,
        &format!("{}-out", config.broker.client_id),
        false,
        config.queues.publish,
    )?;
    let (sub_client, sub_loop) = AsyncClient::new(sub_options, REQUEST_QUEUE);
    let (pub_client, pub_loop) = AsyncClient::new(pub_options, config.queues.publish);
    let publisher = Publisher::new(pub_client, config.topics.dead_letter.clone());

    let (notify, _) = broadcast::channel::<()>(1);
    let (complete_tx, mut complete_rx) = mpsc::channel::<()>(1);
    let (ingest_tx, ingest_rx) = mpsc::channel(config.queues.ingest);
    let filters: Vec<SubscribeFilter> = config
        .subscriptions
        .iter()
        .map(|s| SubscribeFilter::new(s.filter.clone(), QoS::AtLeastOnce))
        .collect();
    let spawn = |fut: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>| {
        let done = complete_tx.clone();
        tokio::spawn(async move {
            fut.await;
            drop(done);
        });
    };

    spawn(Box::pin(run_event_loop(
        sub_loop,
        sub_client.clone(),
        filters,
        Backoff::new(min, max),
        ingest_tx,
        io.status,
        Shutdown::new(notify.subscribe()),
    )));
    spawn(Box::pin(
        Worker {
            rx: ingest_rx,
            acks: sub_client,
            handler: Handler {
                ingest: ingest.clone(),
                publisher: publisher.clone(),
                readings: io.readings,
            },
            shutdown: Shutdown::new(notify.subscribe()),
        }
        .run(),
    ));
    spawn(Box::pin(run_publisher_loop(
        pub_loop,
        Backoff::new(min, max),
        Shutdown::new(notify.subscribe()),
    )));
    spawn(Box::pin(run_results(
        io.results,
        publisher,
        config.topics.results_prefix.clone(),
        Shutdown::new(notify.subscribe()),
    )));
    spawn(Box::pin(run_planner(
        ingest,
        config,
        io.orders,
        io.signing_key,
        Shutdown::new(notify.subscribe()),
    )));

    shutdown.await;
    info!("shutting down");
    drop(notify);
    drop(complete_tx);
    let _ = complete_rx.recv().await;
    Ok(())
}

/// Publishes results to households until shutdown or until the node side closes the channel.
async fn run_results(
    mut results: mpsc::Receiver<ResultMessage>,
    publisher: Publisher,
    prefix: String,
    mut shutdown: Shutdown,
) {
    loop {
        let message = tokio::select! {
            biased;
            () = shutdown.recv() => return,
            m = results.recv() => match m { Some(m) => m, None => return },
        };
        let topic = match message.topic(&prefix) {
            Ok(topic) => topic,
            Err(e) => {
                warn!(cause = %e, "result not published");
                continue;
            }
        };
        let payload = match message.payload() {
            Ok(p) => p,
            Err(e) => {
                warn!(cause = %e, %topic, "result not serialized");
                continue;
            }
        };
        let sent = tokio::select! {
            biased;
            () = shutdown.recv() => return,
            sent = publisher.bytes(&topic, payload, true) => sent,
        };
        if let Err(e) = sent {
            warn!(cause = %e, %topic, "publishing connection closed");
            return;
        }
    }
}

/// The wall clock (the I/O layer's only clock; the pure core takes times as arguments).
pub(crate) fn wall_clock() -> DateTime<Utc> {
    DateTime::<Utc>::from(std::time::SystemTime::now())
}

fn until(t: DateTime<Utc>) -> Duration {
    (t - wall_clock()).to_std().unwrap_or(Duration::ZERO)
}

/// Plans, signs and submits every interval's orders before its gate closure.
async fn run_planner<S: OrderSink>(
    ingest: SharedIngest,
    config: Config,
    sink: S,
    key: SigningKey,
    mut shutdown: Shutdown,
) {
    let spec = config.market;
    loop {
        let target = spec.first_open(wall_clock());
        let closure = target.gate_closure();
        // Plan a little before gate closure: late enough for fresh readings, early enough to
        // retry a few times.
        let lead = ((closure - (target.start() - TimeDelta::seconds(spec_len(target)))) / 4)
            .min(TimeDelta::seconds(60));
        tokio::select! {
            biased;
            () = shutdown.recv() => return,
            () = tokio::time::sleep(until(closure - lead)) => {}
        }
        let orders = lock(&ingest).plan_orders(target, wall_clock());
        let signed = sign_orders(&orders, target, &config.node.neighborhood, &key);
        if !signed.is_empty()
            && submit_until_closure(&sink, signed, target, closure, &mut shutdown)
                .await
                .is_none()
        {
            return;
        }
        // Move on to the next interval.
        tokio::select! {
            biased;
            () = shutdown.recv() => return,
            () = tokio::time::sleep(until(closure) + Duration::from_millis(1)) => {}
        }
    }
}

/// What became of one interval's orders.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Delivery {
    /// Taken by the node (new or already there).
    taken: usize,
    /// Refused for good.
    refused: usize,
    /// Still not taken at gate closure.
    expired: usize,
}

/// Submits `pending` one by one; retries the retryable failures with backoff until all are taken
/// or refused, or until `closure`. `None` if shutdown came first.
async fn submit_until_closure<S: OrderSink>(
    sink: &S,
    mut pending: Vec<SignedOrder>,
    target: Interval,
    closure: DateTime<Utc>,
    shutdown: &mut Shutdown,
) -> Option<Delivery> {
    let mut delivery = Delivery::default();
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    let interval = target.start_unix();
    loop {
        let mut retry = Vec::new();
        for order in pending {
            let submitted = tokio::select! {
                biased;
                () = shutdown.recv() => return None,
                r = sink.submit(&order) => r,
            };
            match submitted {
                Ok(_) => delivery.taken += 1,
                Err(e) if e.is_retryable() => retry.push(order),
                Err(e) => {
                    delivery.refused += 1;
                    warn!(interval, participant = %order.ticket.participant, cause = %e, "order not submitted");
                }
            }
        }
        if retry.is_empty() {
            info!(
                interval,
                taken = delivery.taken,
                refused = delivery.refused,
                "orders submitted"
            );
            return Some(delivery);
        }
        let delay = backoff.next_delay();
        warn!(
            interval,
            waiting = retry.len(),
            delay_ms = delay.as_millis() as u64,
            "node unavailable; retrying"
        );
        tokio::select! {
            biased;
            () = shutdown.recv() => return None,
            () = tokio::time::sleep(until(closure)) => {
                delivery.expired = retry.len();
                warn!(interval, taken = delivery.taken, expired = delivery.expired, "gate closed before the node took every order");
                return Some(delivery);
            }
            () = tokio::time::sleep(delay) => {}
        }
        pending = retry;
    }
}

/// The interval length in seconds.
fn spec_len(interval: voltmesh_engine::Interval) -> i64 {
    (interval.next().start() - interval.start()).num_seconds()
}
