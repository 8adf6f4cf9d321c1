//! The order planner: before every interval's gate closure, plans each household's order from
//! the shared [`Ingest`](crate::Ingest) (its own order from its MQTT topic if it sent one, else
//! the forecast's; see [`crate::household::own_order`]), signs each one for the node
//! ([`crate::order_sink::sign_orders`]) and submits them to the [`OrderSink`] as one batch; orders
//! the node could not take yet (down, busy, timeout) are retried with backoff until gate closure,
//! refused ones are logged and dropped (a node that is down delays orders, never crashes the
//! bridge).
//!
//! # Following the community
//! Right before it plans an interval, the planner asks the node for the community
//! ([`OrderSink::community`], `GET /v1/governance`, through the failover like orders), waiting at
//! most half the planning lead (10 s at most). It then plans with what the ledger says for that
//! interval ([`crate::community`]): limit prices are clamped into the interval's tariffs and
//! quantities capped at its `max_order_wh`, households the ledger would refuse (not a member
//! yet, removed from this interval on, or the bridge's key not allowed) get no order, with one
//! warning per change of standing (and one info line when they may trade again), and the
//! interval's tariffs and network fee go with it to the follow-ups for settlement. A node that
//! does not answer changes nothing: the planner warns and keeps the community it last knew
//! (genesis's rules, and no member list, until a node first answers).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use ed25519_dalek::SigningKey;
use tokio::sync::mpsc;
use tracing::{info, warn};
use voltmesh_engine::{Interval, ParticipantId};
use voltmesh_wire::api::OrderState;
use voltmesh_wire::{PublicKey, SignedOrder};

use crate::community::{admit, Community, IntervalRules, Standing, StandingChange, Standings};
use crate::config::Config;
use crate::household::price_signal::indicative;
use crate::order_sink::{sign_orders, OrderSink, SinkError};
use crate::runtime::clock::{Clock, SharedClock};
use crate::runtime::followups::Follow;
use crate::runtime::mqtt::backoff::Backoff;
use crate::runtime::mqtt::results::{PriceSignal, ResultMessage};
use crate::runtime::shared::{lock, SharedIngest};
use crate::shutdown::Shutdown;

/// Where the planner hands its work on.
pub(crate) struct Outlets {
    /// Submitted intervals, for their results ([`crate::runtime::followups`]).
    pub(crate) follow: mpsc::Sender<Follow>,
    /// The price signal of the coming intervals, for publishing.
    pub(crate) signal: mpsc::Sender<ResultMessage>,
}

/// Plans, signs and submits every interval's orders before its gate closure, then computes
/// the price signal of the coming intervals.
pub(crate) async fn run_planner<S: OrderSink>(
    ingest: SharedIngest,
    config: Config,
    sink: Arc<S>,
    key: SigningKey,
    outlets: Outlets,
    clock: SharedClock,
    mut shutdown: Shutdown,
) {
    let Outlets { follow, signal } = outlets;
    let spec = config.market;
    let bridge_key = PublicKey(key.verifying_key().to_bytes());
    let mut community = Community::genesis(IntervalRules {
        tariffs: config.settlement.tariffs(),
        network_fee: config.settlement.network_fee,
        max_order_wh: voltmesh_engine::MarketRules::DEFAULT_MAX_ORDER_WH,
        // Until the node's community view arrives (it names the ledger's mechanism).
        mechanism: voltmesh_engine::Mechanism::default(),
    });
    let mut standings = Standings::default();
    let mut last_rules: Option<IntervalRules> = None;
    loop {
        let target = spec.first_open(clock.now());
        let closure = target.gate_closure();
        // Plan a little before gate closure: late enough for fresh readings, early enough to
        // retry a few times (or as configured).
        let lead = match config.node.submit_lead_secs {
            Some(secs) => TimeDelta::seconds(i64::from(secs)),
            None => ((closure - (target.start() - TimeDelta::seconds(spec_len(target)))) / 4)
                .min(TimeDelta::seconds(60)),
        };
        tokio::select! {
            biased;
            () = shutdown.recv() => return,
            () = tokio::time::sleep(clock.until(closure - lead)) => {}
        }
        let budget = (lead / 2).to_std().unwrap_or_default().min(COMMUNITY_WAIT);
        let Some(()) = refresh(
            &*sink,
            &mut community,
            &config.node.neighborhood,
            target,
            budget,
            &mut shutdown,
        )
        .await
        else {
            return;
        };
        let rules = community.rules_for(target.start_unix());
        if last_rules.is_some_and(|r| r != rules) {
            info!(
                interval = target.start_unix(),
                feed_in = %rules.tariffs.feed_in,
                retail = %rules.tariffs.retail,
                network_fee = %rules.network_fee,
                max_order_wh = rules.max_order_wh,
                "new market rules from this interval on"
            );
        }
        last_rules = Some(rules);
        let started = std::time::Instant::now();
        let (orders, households) = {
            let mut ingest = lock(&ingest);
            let orders = ingest.plan_for_submission(target, clock.now());
            let households: Vec<ParticipantId> = ingest
                .registry()
                .households()
                .filter(|(_, h)| h.preferences.enabled)
                .map(|(p, _)| p.clone())
                .collect();
            ingest.set_tariffs(community.rules_for(target.next().start_unix()).tariffs);
            (orders, households)
        };
        let (orders, changes) = admit(
            orders,
            households,
            &community,
            &bridge_key,
            target.start_unix(),
            &mut standings,
        );
        for change in changes {
            log_standing(target, &change);
        }
        let planned = started.elapsed();
        let signed = sign_orders(&orders, target, &config.node.neighborhood, &key);
        info!(
            interval = target.start_unix(),
            orders = signed.len(),
            plan_ms = planned.as_millis(),
            sign_ms = (started.elapsed() - planned).as_millis(),
            "orders planned and signed"
        );
        if !signed.is_empty() {
            let Some(delivery) =
                submit_until_closure(&*sink, signed, target, closure, &*clock, &mut shutdown).await
            else {
                return;
            };
            if !delivery.taken.is_empty()
                && follow.try_send((target, delivery.taken, rules)).is_err()
            {
                warn!(
                    interval = target.start_unix(),
                    "results task busy; this interval's results are not followed"
                );
            }
        }
        // The local price signal for the coming intervals, from the same plans.
        if config.price_signal.horizon_intervals > 0 {
            let started = std::time::Instant::now();
            let message = price_signal(
                &ingest,
                &community,
                target.next(),
                config.price_signal.horizon_intervals,
                clock.now(),
                config.settlement.currency,
            );
            info!(
                intervals = message.intervals.len(),
                ms = started.elapsed().as_millis(),
                "price signal computed"
            );
            if let Err(mpsc::error::TrySendError::Full(_)) =
                signal.try_send(ResultMessage::PriceSignal(message))
            {
                warn!(
                    interval = target.start_unix(),
                    "results queue full; this interval's price signal is not published"
                );
            }
        }
        // Move on to the next interval.
        tokio::select! {
            biased;
            () = shutdown.recv() => return,
            () = tokio::time::sleep(clock.until(closure) + Duration::from_millis(1)) => {}
        }
    }
}

/// The indicative prices of `horizon` intervals from `first`, each from the orders the bridge
/// would plan for it now, bounded by and cleared under that interval's rules
/// ([`crate::household::price_signal`]). The ingest is locked one interval at a time.
fn price_signal(
    ingest: &SharedIngest,
    community: &Community,
    first: Interval,
    horizon: u32,
    now: DateTime<Utc>,
    currency: voltmesh_wire::Currency,
) -> PriceSignal {
    let mut intervals = Vec::with_capacity(horizon as usize);
    let mut interval = first;
    for _ in 0..horizon {
        let rules = community.rules_for(interval.start_unix());
        let orders: Vec<_> = lock(ingest)
            .plan_orders(interval, now)
            .into_iter()
            .map(|o| rules.bound(o))
            .collect();
        intervals.push(indicative(interval, &orders, rules, rules.mechanism));
        interval = interval.next();
    }
    PriceSignal {
        currency,
        intervals,
    }
}

/// Longest wait for the node's community before planning (less if the planning lead is short).
const COMMUNITY_WAIT: Duration = Duration::from_secs(10);

/// Asks `sink` for the community, waiting at most `budget`, and takes its answer into
/// `community`; on failure keeps `community` as it is and warns. `None` on shutdown.
async fn refresh<S: OrderSink>(
    sink: &S,
    community: &mut Community,
    neighborhood: &str,
    target: Interval,
    budget: Duration,
    shutdown: &mut Shutdown,
) -> Option<()> {
    let answer = tokio::select! {
        biased;
        () = shutdown.recv() => return None,
        r = tokio::time::timeout(budget, sink.community()) => r,
    };
    let interval = target.start_unix();
    let kept = "keeping the community last known (rules and members)";
    match answer {
        Ok(Ok(view)) => match Community::from_view(&view, neighborhood) {
            Ok(fresh) => {
                if !community.knows_members() {
                    info!(
                        interval,
                        height = view.height,
                        members = view.participants.len(),
                        rules = view.rules.len(),
                        "following the node's community"
                    );
                }
                *community = fresh;
            }
            Err(e) => warn!(interval, cause = %e, "{kept}"),
        },
        // A sink without a node behind it (tests, benches): genesis's rules for good.
        Ok(Err(SinkError::Unsupported)) => {}
        Ok(Err(e)) => warn!(interval, cause = %e, "community not read from the node; {kept}"),
        Err(_) => warn!(
            interval,
            wait_ms = budget.as_millis() as u64,
            "community not read from the node in time; {kept}"
        ),
    }
    Some(())
}

/// One log line per change of a household's standing (module docs).
fn log_standing(target: Interval, change: &StandingChange) {
    let interval = target.start_unix();
    let participant = change.participant.as_str();
    match change.now {
        Standing::Allowed => info!(
            interval,
            participant,
            before = change.before.map_or("new", Standing::kind),
            "household may trade: its orders go to the node again"
        ),
        refused => warn!(
            interval,
            participant,
            standing = refused.kind(),
            reason = %refused,
            "household skipped: the ledger would refuse its orders"
        ),
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

/// Submits `pending` as one batch; retries the retryable failures with backoff until all are taken
/// or refused, or until `closure`. `None` if shutdown came first.
async fn submit_until_closure<S: OrderSink>(
    sink: &S,
    mut pending: Vec<SignedOrder>,
    target: Interval,
    closure: DateTime<Utc>,
    clock: &dyn Clock,
    shutdown: &mut Shutdown,
) -> Option<Delivery> {
    let mut delivery = Delivery::default();
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    let interval = target.start_unix();
    let mut first_round = true;
    loop {
        let mut retry = Vec::new();
        let mut submit = Vec::with_capacity(pending.len());
        for order in pending {
            // A retried order may have reached a node whose answer was lost: ask before sending
            // it again, so that the node's own record decides, not a guess.
            if !first_round {
                let known = tokio::select! {
                    biased;
                    () = shutdown.recv() => return None,
                    r = sink.status(&order) => r,
                };
                match known {
                    Ok(Some(OrderState::Pending | OrderState::Committed { .. })) => {
                        delivery.taken.insert(order.ticket.participant.clone());
                        continue;
                    }
                    Ok(Some(
                        OrderState::Expired { reason, message }
                        | OrderState::Refused { reason, message },
                    )) => {
                        delivery.refused += 1;
                        warn!(interval, participant = %order.ticket.participant, reason, message, "order dropped by the node");
                        continue;
                    }
                    Err(e) if e.is_retryable() => {
                        retry.push(order);
                        continue;
                    }
                    // Unknown to the node, or a sink that cannot tell: submit.
                    Ok(None) | Err(_) => {}
                }
            }
            submit.push(order);
        }
        // The whole round in one batch (the node client sends it as few requests).
        let answers = tokio::select! {
            biased;
            () = shutdown.recv() => return None,
            r = sink.submit_batch(&submit) => r,
        };
        for (order, submitted) in submit.into_iter().zip(answers) {
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
            () = tokio::time::sleep(clock.until(closure)) => {
                delivery.expired = retry.len();
                warn!(interval, taken = delivery.taken.len(), expired = delivery.expired, "gate closed before the node took every order");
                return Some(delivery);
            }
            () = tokio::time::sleep(delay) => {}
        }
        pending = retry;
        first_round = false;
    }
}

/// The interval length in seconds.
fn spec_len(interval: voltmesh_engine::Interval) -> i64 {
    (interval.next().start() - interval.start()).num_seconds()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_CONFIG;
    use crate::order_sink::{ClientError, SinkError};
    use crate::runtime::testing::{self, at, Call, FakeSink};

    fn config() -> Config {
        Config::from_toml(DEFAULT_CONFIG).expect("default config")
    }

    fn submitted(calls: &[Call]) -> Vec<(DateTime<Utc>, String, i64)> {
        calls
            .iter()
            .filter_map(|c| match c {
                Call::Submit {
                    at,
                    participant,
                    interval,
                } => Some((*at, participant.to_string(), *interval)),
                Call::Clearing { .. } | Call::Status { .. } => None,
            })
            .collect()
    }

    /// What the planner hands to follow-ups.
    type Followed = mpsc::Receiver<Follow>;

    /// A running planner: its task, the intervals it hands to follow-ups, and the sender whose
    /// drop shuts it down.
    type Running = (
        tokio::task::JoinHandle<()>,
        Followed,
        tokio::sync::broadcast::Sender<()>,
    );

    /// The planner with the default config, running on `ingest` against `sink`.
    fn spawn_planner(ingest: SharedIngest, sink: &Arc<FakeSink>, clock: &SharedClock) -> Running {
        spawn_planner_with(config(), ingest, sink, clock)
    }

    fn spawn_planner_with(
        config: Config,
        ingest: SharedIngest,
        sink: &Arc<FakeSink>,
        clock: &SharedClock,
    ) -> Running {
        let (follow_tx, follow_rx) = mpsc::channel(4);
        // The price signal is checked in `a_price_signal_follows_each_planned_interval`.
        let (signal_tx, _) = mpsc::channel(1);
        let (notify, shutdown) = testing::shutdown();
        let task = tokio::spawn(run_planner(
            ingest,
            config,
            Arc::clone(sink),
            SigningKey::from_bytes(&[7; 32]),
            Outlets {
                follow: follow_tx,
                signal: signal_tx,
            },
            clock.clone(),
            shutdown,
        ));
        (task, follow_rx, notify)
    }

    #[tokio::test(start_paused = true)]
    async fn every_households_order_is_submitted_before_gate_closure_and_a_retryable_error_retried()
    {
        let clock = testing::clock();
        let ingest = testing::ingest();
        let target = config().market.first_open(at(0));
        let closure = target.gate_closure();
        testing::own_order(&ingest, "hh-01", "buy", target, at(0));
        testing::own_order(&ingest, "hh-02", "sell", target, at(0));
        let sink = FakeSink::new(clock.clone());
        sink.answers
            .lock()
            .unwrap()
            .push_back(Err(SinkError::Node(ClientError::Unavailable(
                "node down".into(),
            ))));
        let sink = Arc::new(sink);
        let (task, mut follow_rx, notify) = spawn_planner(ingest, &sink, &clock);

        let (interval, taken, _) = follow_rx.recv().await.expect("the interval is followed");
        assert_eq!(interval, target);
        let households: Vec<&str> = taken.iter().map(ParticipantId::as_str).collect();
        assert_eq!(households, ["hh-01", "hh-02"]);
        let calls = submitted(&sink.calls());
        let who: Vec<&str> = calls.iter().map(|(_, p, _)| p.as_str()).collect();
        assert_eq!(who, ["hh-01", "hh-02", "hh-01"], "hh-01 was retried");
        let plan_at = closure - TimeDelta::seconds(60);
        assert_eq!(calls[0].0, plan_at, "planned a minute before gate closure");
        assert_eq!(
            calls[2].0 - calls[1].0,
            TimeDelta::milliseconds(200),
            "backoff"
        );
        assert!(calls
            .iter()
            .all(|(t, _, i)| *t < closure && *i == target.start_unix()));
        drop(notify);
        task.await.expect("planner stops at shutdown");
    }

    #[tokio::test(start_paused = true)]
    async fn a_price_signal_follows_each_planned_interval() {
        let clock = testing::clock();
        let ingest = testing::ingest();
        let target = config().market.first_open(at(0));
        testing::own_order(&ingest, "hh-01", "buy", target, at(0));
        // The next interval's book holds one offer: 400 Wh at 0.20.
        testing::own_order(&ingest, "hh-02", "sell", target.next(), at(0));
        let sink = Arc::new(FakeSink::new(clock.clone()));
        let (follow_tx, mut follow_rx) = mpsc::channel(4);
        let (signal_tx, mut signal_rx) = mpsc::channel(4);
        let (notify, shutdown) = testing::shutdown();
        let task = tokio::spawn(run_planner(
            ingest,
            config(),
            Arc::clone(&sink),
            SigningKey::from_bytes(&[7; 32]),
            Outlets {
                follow: follow_tx,
                signal: signal_tx,
            },
            clock.clone(),
            shutdown,
        ));
        follow_rx.recv().await.expect("the interval is followed");
        let Some(ResultMessage::PriceSignal(signal)) = signal_rx.recv().await else {
            panic!("no price signal");
        };
        assert_eq!(signal.intervals.len(), 96, "a day ahead by default");
        assert_eq!(signal.currency.code(), "EUR");
        let first = signal.intervals[0];
        assert_eq!(first.start, target.next().start());
        // One more kWh taken would come from the offer: 0.20 plus the 0.01 network fee; one more
        // fed in finds no buyer: the feed-in tariff.
        assert_eq!(first.import.to_string(), "0.210000");
        assert_eq!(first.export.to_string(), "0.080000");
        let second = signal.intervals[1];
        assert_eq!(
            (second.import.to_string(), second.export.to_string()),
            ("0.320000".to_owned(), "0.080000".to_owned()),
            "nothing planned: the utility's prices"
        );
        // Published as evcc's and EMHASS's formats too.
        let publications = ResultMessage::PriceSignal(signal)
            .publications("voltmesh")
            .expect("publications");
        let topics: Vec<&str> = publications.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            topics,
            [
                "voltmesh/market/price_signal",
                "voltmesh/market/price_signal/evcc/grid",
                "voltmesh/market/price_signal/evcc/feedin",
                "voltmesh/market/price_signal/emhass"
            ]
        );
        let grid: serde_json::Value = serde_json::from_slice(&publications[1].1).unwrap();
        assert_eq!(grid[0]["value"].as_f64(), Some(0.21));
        drop(notify);
        task.await.expect("planner stops at shutdown");
    }

    #[tokio::test(start_paused = true)]
    async fn a_configured_submit_lead_plans_that_long_before_gate_closure() {
        let clock = testing::clock();
        let ingest = testing::ingest();
        let mut config = config();
        config.node.submit_lead_secs = Some(200);
        let target = config.market.first_open(at(0));
        testing::own_order(&ingest, "hh-01", "buy", target, at(0));
        let sink = Arc::new(FakeSink::new(clock.clone()));
        let (task, mut follow_rx, notify) = spawn_planner_with(config, ingest, &sink, &clock);
        follow_rx.recv().await.expect("the interval is followed");
        let calls = submitted(&sink.calls());
        assert_eq!(
            calls[0].0,
            target.gate_closure() - TimeDelta::seconds(200),
            "planned 200 s before gate closure, not the default 60 s"
        );
        drop(notify);
        task.await.expect("planner stops at shutdown");
    }

    #[tokio::test(start_paused = true)]
    async fn retries_stop_at_gate_closure_and_the_next_interval_is_planned() {
        let clock = testing::clock();
        let ingest = testing::ingest();
        let target = config().market.first_open(at(0));
        let closure = target.gate_closure();
        testing::own_order(&ingest, "hh-01", "buy", target, at(0));
        testing::own_order(&ingest, "hh-01", "buy", target.next(), at(0));
        let mut sink = FakeSink::new(clock.clone());
        sink.always = Some(Err(SinkError::Node(ClientError::Unavailable(
            "node down".into(),
        ))));
        let sink = Arc::new(sink);
        let (task, mut follow_rx, notify) = spawn_planner(ingest, &sink, &clock);

        tokio::time::sleep(clock.until(target.next().gate_closure() + TimeDelta::minutes(1))).await;
        let calls = submitted(&sink.calls());
        let first: Vec<_> = calls
            .iter()
            .filter(|(_, _, i)| *i == target.start_unix())
            .collect();
        let second: Vec<_> = calls
            .iter()
            .filter(|(_, _, i)| *i == target.next().start_unix())
            .collect();
        assert!(first.len() > 5, "retried with backoff: {}", first.len());
        assert!(
            first.iter().all(|(t, _, _)| *t < closure),
            "none after closure"
        );
        assert!(
            second
                .iter()
                .all(|(t, _, _)| *t > closure && *t < target.next().gate_closure()),
            "the next interval is planned before its own closure"
        );
        assert!(!second.is_empty());
        assert!(
            follow_rx.try_recv().is_err(),
            "nothing taken, nothing followed"
        );
        drop(notify);
        task.await.expect("planner stops at shutdown");
    }

    /// Each of `households` sends its own buy order for the first open interval; the planner
    /// submits them to `sink` until that interval's gate closes.
    async fn deliver(sink: &FakeSink, clock: &SharedClock, households: &[&str]) -> Delivery {
        let ingest = testing::ingest();
        let target = config().market.first_open(at(0));
        for household in households {
            testing::own_order(&ingest, household, "buy", target, at(0));
        }
        let orders = lock(&ingest).plan_for_submission(target, at(0));
        let signed = sign_orders(
            &orders,
            target,
            "voltmesh",
            &SigningKey::from_bytes(&[7; 32]),
        );
        let (_notify, mut shutdown) = testing::shutdown();
        submit_until_closure(
            sink,
            signed,
            target,
            target.gate_closure(),
            &**clock,
            &mut shutdown,
        )
        .await
        .expect("no shutdown")
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_order_is_not_retried() {
        let clock = testing::clock();
        let sink = FakeSink::new(clock.clone());
        sink.answers
            .lock()
            .unwrap()
            .push_back(Err(SinkError::Node(ClientError::Rejected {
                kind: "bad_signature".into(),
                message: "no".into(),
            })));
        let delivery = deliver(&sink, &clock, &["hh-01", "hh-02"]).await;
        assert_eq!(delivery.refused, 1);
        assert_eq!(delivery.expired, 0);
        assert_eq!(
            delivery.taken,
            BTreeSet::from([ParticipantId::from("hh-02")])
        );
        assert_eq!(submitted(&sink.calls()).len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_failed_submission_the_node_is_asked_before_the_order_is_sent_again() {
        let clock = testing::clock();
        let sink = FakeSink::new(clock.clone());
        // Both submissions fail as if the answers were lost; the node then says it has hh-01's
        // order and has never seen hh-02's.
        for _ in 0..2 {
            sink.answers
                .lock()
                .unwrap()
                .push_back(Err(SinkError::Node(ClientError::Unavailable(
                    "timeout".into(),
                ))));
        }
        sink.statuses.lock().unwrap().extend([
            Ok(Some(OrderState::Committed {
                height: 7,
                block_hash: "ab".into(),
            })),
            Ok(None),
        ]);
        let delivery = deliver(&sink, &clock, &["hh-01", "hh-02"]).await;
        assert_eq!(
            delivery.taken,
            BTreeSet::from([ParticipantId::from("hh-01"), ParticipantId::from("hh-02")])
        );
        assert_eq!((delivery.refused, delivery.expired), (0, 0));
        let sent: Vec<String> = submitted(&sink.calls())
            .into_iter()
            .map(|(_, p, _)| p)
            .collect();
        assert_eq!(
            sent,
            ["hh-01", "hh-02", "hh-02"],
            "hh-01's order is not sent twice"
        );
        let asked = sink
            .calls()
            .iter()
            .filter(|c| matches!(c, Call::Status { .. }))
            .count();
        assert_eq!(asked, 2, "asked once per retried order");
    }

    #[tokio::test(start_paused = true)]
    async fn an_order_the_node_dropped_is_counted_as_refused_not_retried() {
        let clock = testing::clock();
        let sink = FakeSink::new(clock.clone());
        sink.answers
            .lock()
            .unwrap()
            .push_back(Err(SinkError::Node(ClientError::Unavailable(
                "timeout".into(),
            ))));
        sink.statuses
            .lock()
            .unwrap()
            .push_back(Ok(Some(OrderState::Refused {
                reason: "interval_full".into(),
                message: "full".into(),
            })));
        let delivery = deliver(&sink, &clock, &["hh-01"]).await;
        assert_eq!((delivery.refused, delivery.expired), (1, 0));
        assert!(delivery.taken.is_empty());
        assert_eq!(submitted(&sink.calls()).len(), 1);
    }
}
