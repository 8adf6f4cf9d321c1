//! The order planner: before every interval's gate closure, plans each household's order from
//! the shared [`Ingest`](crate::Ingest) (its own order from its MQTT topic if it sent one, else
//! the forecast's; see [`crate::household::own_order`]), signs each one for the node
//! ([`crate::order_sink::sign_orders`]) and submits them to the [`OrderSink`] one by one; orders
//! the node could not take yet (down, busy, timeout) are retried with backoff until gate closure,
//! refused ones are logged and dropped (a node that is down delays orders, never crashes the
//! bridge).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use ed25519_dalek::SigningKey;
use tokio::sync::mpsc;
use tracing::{info, warn};
use voltmesh_consensus::ledger::SignedOrder;
use voltmesh_engine::{Interval, ParticipantId};

use crate::config::Config;
use crate::order_sink::{sign_orders, OrderSink};
use crate::runtime::clock::{Clock, SharedClock};
use crate::runtime::mqtt::backoff::Backoff;
use crate::runtime::shared::{lock, SharedIngest};
use crate::shutdown::Shutdown;

/// Plans, signs and submits every interval's orders before its gate closure.
pub(crate) async fn run_planner<S: OrderSink>(
    ingest: SharedIngest,
    config: Config,
    sink: Arc<S>,
    key: SigningKey,
    follow: mpsc::Sender<(Interval, BTreeSet<ParticipantId>)>,
    clock: SharedClock,
    mut shutdown: Shutdown,
) {
    let spec = config.market;
    loop {
        let target = spec.first_open(clock.now());
        let closure = target.gate_closure();
        // Plan a little before gate closure: late enough for fresh readings, early enough to
        // retry a few times.
        let lead = ((closure - (target.start() - TimeDelta::seconds(spec_len(target)))) / 4)
            .min(TimeDelta::seconds(60));
        tokio::select! {
            biased;
            () = shutdown.recv() => return,
            () = tokio::time::sleep(clock.until(closure - lead)) => {}
        }
        let orders = lock(&ingest).plan_for_submission(target, clock.now());
        let signed = sign_orders(&orders, target, &config.node.neighborhood, &key);
        if !signed.is_empty() {
            let Some(delivery) =
                submit_until_closure(&*sink, signed, target, closure, &*clock, &mut shutdown).await
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
            () = tokio::time::sleep(clock.until(closure) + Duration::from_millis(1)) => {}
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
    clock: &dyn Clock,
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
            () = tokio::time::sleep(clock.until(closure)) => {
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
