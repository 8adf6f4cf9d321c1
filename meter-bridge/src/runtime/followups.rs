//! The follow-up task: for every interval whose orders the node took, reads the committed
//! clearing from the node once the gate has closed ([`OrderSink::clearing`], polled with backoff),
//! publishes each household's fills and the clearing summary, and once a household's meters have
//! read past the interval's end, its settlement (its trades against its metered energy, at
//! `[settlement]`'s tariffs). It gives up on what is still missing [`FOLLOW_INTERVALS`] intervals
//! after the interval's end.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{info, warn};
use voltmesh_engine::{Interval, ParticipantId, Trade};

use crate::config::SettlementConfig;
use crate::order_sink::{OrderSink, SinkError};
use crate::runtime::clock::SharedClock;
use crate::runtime::mqtt::backoff::Backoff;
use crate::runtime::mqtt::publisher::Publisher;
use crate::runtime::mqtt::results::{
    ClearingSummary, HouseholdFills, ResultMessage, SettlementNotice,
};
use crate::runtime::shared::{lock, SharedIngest};
use crate::shutdown::Shutdown;

/// How many intervals past its end the bridge keeps following an interval (waiting for its
/// clearing, then for meter readings past its end) before it gives up on what is still missing.
pub const FOLLOW_INTERVALS: i64 = 8;
/// Follow-ups waiting between the planner and the results task.
pub(crate) const FOLLOW_QUEUE: usize = 16;
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
#[allow(clippy::too_many_arguments)] // Until the follow-ups become a state machine.
pub(crate) async fn run_followups<S: OrderSink>(
    mut intervals: mpsc::Receiver<(Interval, BTreeSet<ParticipantId>)>,
    sink: Arc<S>,
    ingest: SharedIngest,
    settlement: SettlementConfig,
    publisher: Publisher,
    prefix: String,
    clock: SharedClock,
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
                    next_poll: tokio::time::Instant::now() + clock.until(interval.gate_closure()),
                    backoff: Backoff::new(Duration::from_millis(250), Duration::from_secs(5)),
                });
                continue;
            }
            _ = tick.tick() => {}
        }
        let now = clock.now();
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

/// Publishes one result (retained, QoS 1). `Err(())` if the publishing connection is closed or
/// shutdown came first; a message that cannot be published (bad participant id) is logged and
/// skipped.
pub(crate) async fn publish_result(
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
