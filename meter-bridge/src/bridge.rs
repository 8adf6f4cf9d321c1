//! [`run`]: the whole bridge as one future, stopped by a shutdown future (mini-redis style).
//!
//! # Tasks
//! * the subscribing connection: its event loop, which also records every message in the shared
//!   [`Ingest`] and acknowledges it ([`crate::mqtt::ingest`]);
//! * the publishing connection's event loop ([`crate::mqtt::publisher`]);
//! * the results task: [`ResultMessage`]s handed in through [`Io::results`] → household topics
//!   ([`crate::mqtt::results`]);
//! * the follow-up task: for every interval whose orders the node took, reads the committed
//!   clearing from the node once the gate has closed ([`OrderSink::clearing`], polled with
//!   backoff), publishes each household's fills and the clearing summary, and once a household's
//!   meters have read past the interval's end, its settlement (its trades against its metered
//!   energy, at `[settlement]`'s tariffs). It gives up on what is still missing
//!   [`FOLLOW_INTERVALS`] intervals after the interval's end;
//! * the order planner: before every interval's gate closure, plans each household's order from
//!   the shared [`Ingest`] (its own order from its MQTT topic if it sent one, else the forecast's;
//!   see [`crate::household_order`]), signs each one for the node ([`crate::order_sink::sign_orders`]) and
//!   submits them to the [`OrderSink`] one by one; orders the node could not take yet (down,
//!   busy, timeout) are retried with backoff until gate closure, refused ones are logged and
//!   dropped (a node that is down delays orders, never crashes the bridge).
//!
//! # Shutdown
//! When `shutdown` completes, [`run`] broadcasts the signal, then waits until every task has
//! dropped its clone of an `mpsc::Sender` (the receiver's `recv` returns `None`). Messages
//! received but not yet acknowledged stay with the broker for the next session.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use ed25519_dalek::SigningKey;
use rumqttc::{AsyncClient, QoS, SubscribeFilter};
use tokio::sync::{broadcast, mpsc, watch};
use tracing::{info, warn};
use voltmesh_engine::{Interval, ParticipantId, Trade};
use voltmesh_wire::SignedOrder;

use crate::config::{Config, SettlementConfig};
use crate::household_topic::subscription_filters;
use crate::ingest::Ingest;
use crate::mqtt::backoff::Backoff;
use crate::mqtt::ingest::{lock, Handler, LinkStatus, SharedIngest, Subscriber, REQUEST_QUEUE};
use crate::mqtt::options::{mqtt_options, OptionsError};
use crate::mqtt::publisher::{run_publisher_loop, Publisher};
use crate::mqtt::results::{ClearingSummary, HouseholdFills, ResultMessage, SettlementNotice};
use crate::order_sink::{sign_orders, OrderSink, SinkError};
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
    Arc::new(Mutex::new(
        Ingest::new(
            config.ingest.clone(),
            config.registry.clone(),
            config.market,
        )
        .with_household_topics(
            config.topics.households_prefix.clone(),
            config.settlement.tariffs(),
        ),
    ))
}

/// Everything [`run`] talks to besides the broker.
#[derive(Debug)]
pub struct Io<S> {
    /// Where signed orders go ([`voltmesh_wire::client::NodeClient`] in production).
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
    let unacked = crate::mqtt::ingest::Unacked::default();
    // Metrics ([metrics], else VOLTMESH_INFLUX_*; off without a URL): see `crate::metrics`.
    let metrics = crate::metrics::BridgeMetrics::start(
        config.metrics.to_config(|key| std::env::var(key).ok()),
        &config,
    );
    let filters: Vec<SubscribeFilter> = config
        .subscriptions
        .iter()
        .map(|s| SubscribeFilter::new(s.filter.clone(), QoS::AtLeastOnce))
        .chain(
            subscription_filters(&config.topics.households_prefix)
                .into_iter()
                .map(|f| SubscribeFilter::new(f, QoS::AtLeastOnce)),
        )
        .collect();
    let spawn = |fut: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>| {
        let done = complete_tx.clone();
        tokio::spawn(async move {
            fut.await;
            drop(done);
        });
    };

    spawn(Box::pin(
        Subscriber {
            client: sub_client,
            filters,
            backoff: Backoff::new(min, max),
            status: io.status,
            handler: Handler {
                ingest: ingest.clone(),
                publisher: publisher.clone(),
                readings: io.readings,
                unacked: unacked.clone(),
            },
            shutdown: Shutdown::new(notify.subscribe()),
        }
        .run(sub_loop),
    ));
    spawn(Box::pin(run_publisher_loop(
        pub_loop,
        Backoff::new(min, max),
        Shutdown::new(notify.subscribe()),
    )));
    spawn(Box::pin(run_results(
        io.results,
        publisher.clone(),
        config.topics.results_prefix.clone(),
        Shutdown::new(notify.subscribe()),
    )));
    let sink = Arc::new(metrics.count_orders(io.orders));
    spawn(Box::pin(metrics.run(
        ingest.clone(),
        unacked,
        Shutdown::new(notify.subscribe()),
    )));
    let (follow_tx, follow_rx) = mpsc::channel(FOLLOW_QUEUE);
    spawn(Box::pin(run_followups(
        follow_rx,
        sink.clone(),
        ingest.clone(),
        config.settlement,
        publisher,
        config.topics.results_prefix.clone(),
        Shutdown::new(notify.subscribe()),
    )));
    spawn(Box::pin(run_planner(
        ingest,
        config,
        sink,
        io.signing_key,
        follow_tx,
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
        if publish_result(&publisher, &prefix, &message, &mut shutdown)
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Publishes one result (retained, QoS 1). `Err(())` if the publishing connection is closed or
/// shutdown came first; a message that cannot be published (bad participant id) is logged and
/// skipped.
async fn publish_result(
    publisher: &Publisher,
    prefix: &str,
    message: &ResultMessage,
    shutdown: &mut Shutdown,
) -> Result<(), ()> {
    let topic = match message.topic(prefix) {
        Ok(topic) => topic,
        Err(e) => {
            warn!(cause = %e, "result not published");
            return Ok(());
        }
    };
    let payload = match message.payload() {
        Ok(p) => p,
        Err(e) => {
            warn!(cause = %e, %topic, "result not serialized");
            return Ok(());
        }
    };
    let sent = tokio::select! {
        biased;
        () = shutdown.recv() => return Err(()),
        sent = publisher.bytes(&topic, payload, true) => sent,
    };
    sent.map_err(|e| warn!(cause = %e, %topic, "publishing connection closed"))
}

/// How many intervals past its end the bridge keeps following an interval (waiting for its
/// clearing, then for meter readings past its end) before it gives up on what is still missing.
pub const FOLLOW_INTERVALS: i64 = 8;
/// Follow-ups waiting between the planner and the results task.
const FOLLOW_QUEUE: usize = 16;
/// How often the results task looks at the intervals it follows.
const FOLLOW_TICK: Duration = Duration::from_millis(250);

/// An interval the bridge submitted orders for, followed until every household's results are out.
#[derive(Debug)]
struct Followed {
    interval: Interval,
    /// Households whose orders the node took.
    households: BTreeSet<ParticipantId>,
    /// The committed trades, once the clearing was read and fills published.
    trades: Option<Vec<Trade>>,
    /// When to read the clearing next.
    next_poll: tokio::time::Instant,
    backoff: Backoff,
}

/// Reads each followed interval's clearing from the node once its gate has closed (polling with
/// backoff; 404 = not yet), publishes the households' fills and the clearing summary, then, once
/// the meters of a household have read past the interval's end, its settlement.
async fn run_followups<S: OrderSink>(
    mut intervals: mpsc::Receiver<(Interval, BTreeSet<ParticipantId>)>,
    sink: Arc<S>,
    ingest: SharedIngest,
    settlement: SettlementConfig,
    publisher: Publisher,
    prefix: String,
    mut shutdown: Shutdown,
) {
    let mut followed: BTreeMap<i64, Followed> = BTreeMap::new();
    let mut tick = tokio::time::interval(FOLLOW_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = shutdown.recv() => return,
            next = intervals.recv() => {
                let Some((interval, households)) = next else { return };
                followed.insert(interval.start_unix(), Followed {
                    interval,
                    households,
                    trades: None,
                    next_poll: tokio::time::Instant::now() + until(interval.gate_closure()),
                    backoff: Backoff::new(Duration::from_millis(250), Duration::from_secs(5)),
                });
                continue;
            }
            _ = tick.tick() => {}
        }
        let now = wall_clock();
        let mut done = Vec::new();
        for (start, f) in &mut followed {
            let length = f.interval.next().start() - f.interval.start();
            let give_up = f.interval.end() + length * i32::try_from(FOLLOW_INTERVALS).unwrap_or(8);
            if f.trades.is_none() && tokio::time::Instant::now() >= f.next_poll {
                match sink.clearing(*start).await {
                    Ok(Some(clearing)) => {
                        let outcome = clearing.outcome;
                        let mut messages: Vec<ResultMessage> =
                            HouseholdFills::for_households(f.interval, &outcome, &f.households)
                                .into_iter()
                                .map(ResultMessage::Fills)
                                .collect();
                        messages.push(ResultMessage::Clearing(ClearingSummary::from_outcome(
                            f.interval, &outcome,
                        )));
                        for m in &messages {
                            if publish_result(&publisher, &prefix, m, &mut shutdown)
                                .await
                                .is_err()
                            {
                                return;
                            }
                        }
                        info!(
                            interval = *start,
                            households = f.households.len(),
                            volume_wh = outcome.volume_wh,
                            "clearing published"
                        );
                        f.trades = Some(outcome.trades);
                    }
                    Ok(None) => f.next_poll = tokio::time::Instant::now() + f.backoff.next_delay(),
                    Err(SinkError::Unsupported) => {
                        done.push(*start);
                        continue;
                    }
                    Err(e) => {
                        let delay = f.backoff.next_delay();
                        warn!(interval = *start, cause = %e, delay_ms = delay.as_millis() as u64, "clearing not read; retrying");
                        f.next_poll = tokio::time::Instant::now() + delay;
                    }
                }
            }
            if let Some(trades) = &f.trades {
                let ready: Vec<(ParticipantId, i64)> = {
                    let ingest = lock(&ingest);
                    f.households
                        .iter()
                        .filter_map(|p| {
                            let net = ingest.book().household_net_export(
                                ingest.registry(),
                                p,
                                f.interval,
                            );
                            net.ok().flatten().map(|n| (p.clone(), n))
                        })
                        .collect()
                };
                for (participant, net) in ready {
                    f.households.remove(&participant);
                    match SettlementNotice::for_household(
                        f.interval,
                        trades,
                        &participant,
                        net,
                        settlement.tariffs(),
                        settlement.network_fee,
                    ) {
                        Ok(notice) => {
                            info!(
                                interval = *start,
                                %participant,
                                metered_net_export_wh = net,
                                total = %notice.bill.total,
                                "settlement published"
                            );
                            let m = ResultMessage::Settlement(notice);
                            if publish_result(&publisher, &prefix, &m, &mut shutdown)
                                .await
                                .is_err()
                            {
                                return;
                            }
                        }
                        Err(e) => warn!(interval = *start, %participant, cause = %e, "not settled"),
                    }
                }
                if f.households.is_empty() {
                    done.push(*start);
                    continue;
                }
            }
            if now > give_up {
                warn!(
                    interval = *start,
                    cleared = f.trades.is_some(),
                    households = ?f.households,
                    "gave up following the interval (no clearing or no readings past its end)"
                );
                done.push(*start);
            }
        }
        for start in done {
            followed.remove(&start);
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
    sink: Arc<S>,
    key: SigningKey,
    follow: mpsc::Sender<(Interval, BTreeSet<ParticipantId>)>,
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
        let orders = lock(&ingest).plan_for_submission(target, wall_clock());
        let signed = sign_orders(&orders, target, &config.node.neighborhood, &key);
        if !signed.is_empty() {
            let Some(delivery) =
                submit_until_closure(&*sink, signed, target, closure, &mut shutdown).await
            else {
                return;
            };
            if !delivery.taken.is_empty() && follow.try_send((target, delivery.taken)).is_err() {
                warn!(
                    interval = target.start_unix(),
                    "results task busy; this interval's results are not followed"
                );
            }
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
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Delivery {
    /// Households whose order the node took (new or already there).
    taken: BTreeSet<ParticipantId>,
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
                Ok(_) => {
                    delivery.taken.insert(order.ticket.participant.clone());
                }
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
                taken = delivery.taken.len(),
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
                warn!(interval, taken = delivery.taken.len(), expired = delivery.expired, "gate closed before the node took every order");
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
