//! The subscribing connection: one task owns the [`EventLoop`], one worker drives [`Ingest`].
//!
//! # Delivery guarantee
//! QoS 1 with a persistent session (`clean_session = false`, fixed client id) and manual acks.
//! The worker acknowledges a message only after [`Ingest::handle`] has recorded it and the
//! accepted reading has been handed to the readings queue (or, for a refused message, its dead
//! letter has been queued on the publishing connection). Until then the broker keeps the message
//! and redelivers it after any reconnect, to this process or to the next one; a redelivery of a
//! reading already recorded is recognised by (meter, timestamp) and counted once
//! ([`Outcome::Duplicate`]). A redelivery dropped by rumqttc's reconnect (it discards queued
//! acks, expecting the broker to resend) is handled the same way.
//!
//! # Why this cannot deadlock
//! MQTT packet ids are 16 bits, so a session has at most [`MAX_UNACKED`] QoS 1 messages received
//! and not yet acknowledged, whatever the broker's in-flight setting (Mosquitto sends far more
//! than its `max_inflight_messages` to an online client). Both queues between the event loop and
//! the worker are sized from that bound:
//! * the event loop hands messages to the ingest queue with `try_send` and keeps what does not
//!   fit in a local overflow of up to [`MAX_UNACKED`] messages, so it never waits for the worker
//!   (only a flood of QoS 0 messages, which need no acks, can make it wait);
//! * the subscribing connection's request queue carries only acks and subscriptions and holds
//!   [`REQUEST_QUEUE`] requests, so the worker's ack never waits for the event loop, even while
//!   rumqttc is busy handing out a burst of received messages before it reads its requests.
//!
//! Memory is therefore bounded by the broker's in-flight window times the packet size limit; the
//! queues allocate only what they hold.
//!
//! # Bad input
//! Every refusal is counted by [`crate::ErrorKind`] inside [`Ingest`], logged at `warn` with the
//! meter id, kind and topic, published to the dead-letter topic and then acknowledged: it never
//! stops the bridge.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use rumqttc::{
    AsyncClient, Event, EventLoop, Packet, Publish, SubscribeFilter, SubscribeReasonCode,
};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, trace, warn};

use crate::ingest::{Ingest, Outcome};
use crate::mqtt::backoff::Backoff;
use crate::mqtt::publisher::Publisher;
use crate::reading::Reading;
use crate::shutdown::Shutdown;

/// Most QoS 1 messages a session can have received and not acknowledged (the packet-id space).
pub const MAX_UNACKED: usize = 65_535;

/// Capacity of the subscribing connection's request queue: an ack per unacknowledged message,
/// plus subscriptions.
pub const REQUEST_QUEUE: usize = MAX_UNACKED + 64;

/// The ingest state shared by the worker (writes) and the order planner (reads).
pub type SharedIngest = Arc<Mutex<Ingest>>;

/// Locks `ingest`, recovering from a poisoned lock (the state is still consistent: `Ingest`
/// never panics half-way through a message).
pub fn lock(ingest: &SharedIngest) -> std::sync::MutexGuard<'_, Ingest> {
    ingest.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The subscribing connection's state, for health checks and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStatus {
    /// Connected to the broker now.
    pub connected: bool,
    /// The broker holds every subscription: it acknowledged them on this connection, or the
    /// connection resumed a session that had them.
    pub subscribed: bool,
    /// Successful connections so far (reconnects = connects − 1).
    pub connects: u64,
    /// Connection errors so far.
    pub errors: u64,
}

/// Polls the subscribing connection until shutdown (see the module docs).
///
/// Received messages go to the bounded ingest queue with `try_send`; what does not fit waits in
/// a local overflow (at most [`MAX_UNACKED`]), moved on after every poll (every ack the worker
/// sends wakes the poll).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_event_loop(
    mut eventloop: EventLoop,
    client: AsyncClient,
    filters: Vec<SubscribeFilter>,
    mut backoff: Backoff,
    tx: mpsc::Sender<Publish>,
    status: watch::Sender<LinkStatus>,
    mut shutdown: Shutdown,
) {
    let mut overflow: VecDeque<Publish> = VecDeque::new();
    loop {
        while let Some(publish) = overflow.pop_front() {
            match tx.try_send(publish) {
                Ok(()) => {}
                Err(TrySendError::Full(publish)) => {
                    overflow.push_front(publish);
                    break;
                }
                Err(TrySendError::Closed(_)) => return,
            }
        }
        let event = tokio::select! {
            biased;
            () = shutdown.recv() => return,
            event = eventloop.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                trace!(topic = %publish.topic, pkid = publish.pkid, "message");
                if overflow.is_empty() {
                    match tx.try_send(publish) {
                        Ok(()) => {}
                        Err(TrySendError::Full(publish)) => overflow.push_back(publish),
                        Err(TrySendError::Closed(_)) => return,
                    }
                } else {
                    overflow.push_back(publish);
                }
                if overflow.len() >= MAX_UNACKED {
                    // Unreachable for QoS 1 (packet ids); a QoS 0 flood waits for the worker.
                    let permit = tokio::select! {
                        biased;
                        () = shutdown.recv() => return,
                        permit = tx.reserve() => permit,
                    };
                    match (permit, overflow.pop_front()) {
                        (Ok(permit), Some(publish)) => permit.send(publish),
                        (Ok(_), None) => {}
                        (Err(_), _) => return,
                    }
                }
            }
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                backoff.reset();
                // A resumed session still holds our subscriptions.
                status.send_modify(|s| {
                    s.connected = true;
                    s.subscribed = ack.session_present;
                    s.connects += 1;
                });
                info!(
                    session_present = ack.session_present,
                    "subscribing connection up"
                );
                // Subscribe on every connection (idempotent); from a task, so the event loop
                // never waits on its own request queue.
                let client = client.clone();
                let filters = filters.clone();
                tokio::spawn(async move {
                    if let Err(e) = client.subscribe_many(filters).await {
                        warn!(cause = %e, "could not queue the subscriptions");
                    }
                });
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                let refused = ack
                    .return_codes
                    .iter()
                    .filter(|c| matches!(c, SubscribeReasonCode::Failure))
                    .count();
                if refused == 0 {
                    status.send_modify(|s| s.subscribed = true);
                    info!(filters = filters.len(), "subscribed");
                } else {
                    error!(refused, "the broker refused subscriptions (check its ACL)");
                }
            }
            Ok(other) => trace!(event = ?other, "subscribing connection"),
            Err(e) => {
                status.send_modify(|s| {
                    s.connected = false;
                    s.subscribed = false;
                    s.errors += 1;
                });
                let delay = backoff.next_delay();
                warn!(cause = %e, delay_ms = delay.as_millis() as u64, "subscribing connection lost; reconnecting");
                tokio::select! {
                    biased;
                    () = shutdown.recv() => return,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// What the worker needs.
#[derive(Debug)]
pub(crate) struct Worker {
    pub(crate) rx: mpsc::Receiver<Publish>,
    pub(crate) acks: AsyncClient,
    pub(crate) handler: Handler,
    pub(crate) shutdown: Shutdown,
}

/// Where a message goes before it is acknowledged.
#[derive(Debug)]
pub(crate) struct Handler {
    pub(crate) ingest: SharedIngest,
    pub(crate) publisher: Publisher,
    pub(crate) readings: Option<mpsc::Sender<Reading>>,
}

impl Worker {
    /// Handles messages until shutdown or until the event loop stops.
    pub(crate) async fn run(mut self) {
        loop {
            let publish = tokio::select! {
                biased;
                () = self.shutdown.recv() => return,
                publish = self.rx.recv() => match publish {
                    Some(p) => p,
                    None => return,
                },
            };
            // On shutdown mid-message the message stays unacknowledged: the broker redelivers it
            // to the next session.
            let handled = tokio::select! {
                biased;
                () = self.shutdown.recv() => return,
                handled = self.handler.hand_on(&publish) => handled,
            };
            if !handled {
                return;
            }
            if let Err(e) = self.acks.ack(&publish).await {
                debug!(cause = %e, "subscribing connection closed; stopping the worker");
                return;
            }
        }
    }
}

impl Handler {
    /// Records the message and hands it on; `false` if the next stage is gone for good.
    async fn hand_on(&self, publish: &Publish) -> bool {
        let outcome = lock(&self.ingest).handle(
            &publish.topic,
            &publish.payload,
            crate::bridge::wall_clock(),
        );
        match outcome {
            Outcome::Accepted(reading) => {
                trace!(meter = %reading.meter, timestamp = %reading.timestamp, "reading accepted");
                if let Some(readings) = &self.readings {
                    // The reading is recorded in `Ingest` either way; a consumer that went away
                    // must not stop ingest.
                    if readings.send(reading).await.is_err() {
                        debug!("readings consumer gone");
                    }
                }
            }
            Outcome::Pending => trace!(topic = %publish.topic, "partial reading"),
            Outcome::Duplicate(reading) => {
                debug!(meter = %reading.meter, timestamp = %reading.timestamp, "redelivery ignored");
            }
            Outcome::Rejected(letter) => {
                warn!(
                    meter = letter.meter.as_ref().map_or("unknown", |m| m.as_str()),
                    kind = %letter.kind,
                    topic = %letter.topic,
                    reason = %letter.reason,
                    "dead letter"
                );
                if let Err(e) = self.publisher.dead_letter(&letter).await {
                    warn!(cause = %e, "dead letter not published; leaving the message unacknowledged");
                    return false;
                }
            }
        }
        true
    }
}
