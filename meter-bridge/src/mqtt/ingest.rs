//! The subscribing connection: one task owns the [`EventLoop`], one worker drives [`Ingest`].
//!
//! # Delivery guarantee
//! QoS 1 with a persistent session (`clean_session = false`, fixed client id) and manual acks.
//! The worker acknowledges a message only after [`Ingest::handle`] has recorded it and the
//! accepted reading has been handed to the readings queue (or, for a refused message, its dead
//! letter has been queued on the publishing connection). Until then the broker keeps the message
//! and redelivers it after any reconnect, to this process or to the next one; a redelivery of a
//! reading already recorded is recognised by (meter, timestamp) and counted once
//! ([`Outcome::Duplicate`]). Acks are per connection ([`AckLink`]): those not written before the
//! connection failed are dropped, never sent on the next connection, and the broker's
//! redeliveries are handled the same way.
//!
//! # Batches
//! The worker takes up to [`WORKER_BATCH`] queued messages at once, records them under one lock of
//! the ingest state with one receive time, hands their outcomes on in order and then hands their
//! packet ids to the connection's [`AckLink`] (earlier, before anything that may wait). The event
//! loop writes all acks waiting there as PUBACKs, in the order the messages arrived, with a single
//! flush before each poll that waits on the network, instead of rumqttc's flushed write per
//! manual ack (see [`crate::mqtt::acks`]).
//!
//! # Why this cannot deadlock
//! MQTT packet ids are 16 bits, so a session has at most [`MAX_UNACKED`] QoS 1 messages received
//! and not yet acknowledged, whatever the broker's in-flight setting (the bounds below do not rely
//! on the broker's `max_inflight_messages`). The queues between the event loop and
//! the worker are sized from that bound or never wait:
//! * the event loop hands messages to the ingest queue with `try_send` and keeps what does not
//!   fit in a local overflow of up to [`MAX_UNACKED`] messages, so it never waits for the worker
//!   (only a flood of QoS 0 messages, which need no acks, can make it wait);
//! * the worker hands acks to the [`AckLink`] under a short lock and never waits for the event
//!   loop; the subscribing connection's request queue carries subscriptions and at most one
//!   doorbell ack per batch written, and holds [`REQUEST_QUEUE`] requests.
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
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, Outgoing, Packet, PubAck, Publish, QoS,
    SubscribeFilter, SubscribeReasonCode,
};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, trace, warn};

use crate::ingest::{Ingest, Outcome};
use crate::mqtt::acks::AckLink;
use crate::mqtt::backoff::Backoff;
use crate::mqtt::publisher::Publisher;
use crate::reading::Reading;
use crate::shutdown::Shutdown;

/// Most QoS 1 messages a session can have received and not acknowledged (the packet-id space).
pub const MAX_UNACKED: usize = 65_535;

/// Capacity of the subscribing connection's request queue: room for an ack per unacknowledged
/// message (QoS 2 acks and doorbells go through it; QoS 1 acks mostly do not), plus subscriptions.
pub const REQUEST_QUEUE: usize = MAX_UNACKED + 64;

/// Most messages the worker takes from the ingest queue at a time and records under one lock of
/// the ingest state.
pub const WORKER_BATCH: usize = 128;

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

/// What the event loop hands the worker, in order.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A connection is up: the messages that follow are acknowledged through this link.
    Connected(Arc<AckLink>),
    /// A received message.
    Message(Publish),
}

/// Polls the subscribing connection until shutdown (see the module docs).
///
/// Received messages go to the bounded ingest queue with `try_send`; what does not fit waits in
/// a local overflow (at most [`MAX_UNACKED`]), moved on after every poll. Before each poll that
/// will wait on the network, the acks the worker has handed over are written and flushed in one
/// go (see [`crate::mqtt::acks`]).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_event_loop(
    mut eventloop: EventLoop,
    client: AsyncClient,
    filters: Vec<SubscribeFilter>,
    mut backoff: Backoff,
    tx: mpsc::Sender<Inbound>,
    status: watch::Sender<LinkStatus>,
    mut shutdown: Shutdown,
) {
    let mut network = eventloop.network_options();
    let flush_timeout = Duration::from_secs(network.connection_timeout().max(1));
    // Acks leave in batches, each written at once: nothing to gain from Nagle's algorithm, which
    // would hold a batch written right after a doorbell until the broker's delayed TCP ack.
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);
    let mut queue = Forward {
        tx,
        overflow: VecDeque::new(),
    };
    let mut link: Option<Arc<AckLink>> = None;
    let mut acks: Vec<u16> = Vec::new();
    loop {
        if !queue.move_on() {
            return;
        }
        // Nothing buffered: the poll will wait on the network, so write the acks now (one flush).
        let parked = match &link {
            Some(l) if eventloop.state.events.is_empty() => {
                l.take_and_park(&mut acks);
                true
            }
            _ => false,
        };
        if !acks.is_empty() {
            let written = tokio::select! {
                biased;
                () = shutdown.recv() => return,
                written = write_acks(&mut eventloop, &mut acks, flush_timeout) => written,
            };
            if let Err(e) = written {
                let cause = e.to_string();
                if !connection_lost(
                    &mut eventloop,
                    &mut link,
                    &status,
                    &mut backoff,
                    &cause,
                    &mut shutdown,
                )
                .await
                {
                    return;
                }
                continue;
            }
        }
        let event = tokio::select! {
            biased;
            () = shutdown.recv() => return,
            event = eventloop.poll() => event,
        };
        if parked {
            if let Some(l) = &link {
                l.unpark();
            }
        }
        match event {
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                trace!(topic = %publish.topic, pkid = publish.pkid, "message");
                if !queue.push(Inbound::Message(publish), &mut shutdown).await {
                    return;
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
                let fresh = Arc::new(AckLink::new(client.clone()));
                link = Some(fresh.clone());
                if !queue.push(Inbound::Connected(fresh), &mut shutdown).await {
                    return;
                }
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
            Ok(Event::Outgoing(Outgoing::PubAck(pkid))) => {
                // Only doorbells go through rumqttc's request queue as PUBACKs.
                trace!(pkid, "doorbell ack written");
                if let Some(l) = &link {
                    l.rang();
                }
            }
            Ok(other) => trace!(event = ?other, "subscribing connection"),
            Err(e) => {
                let cause = e.to_string();
                if !connection_lost(
                    &mut eventloop,
                    &mut link,
                    &status,
                    &mut backoff,
                    &cause,
                    &mut shutdown,
                )
                .await
                {
                    return;
                }
            }
        }
    }
}

/// Writes `acks` (emptied) as PUBACKs into the connection's buffer and flushes once.
///
/// # Errors
/// The connection failed, or the flush took longer than `flush_timeout`.
async fn write_acks(
    eventloop: &mut EventLoop,
    acks: &mut Vec<u16>,
    flush_timeout: Duration,
) -> Result<(), ConnectionError> {
    let Some(network) = eventloop.network.as_mut() else {
        // Not connected: the link is closed and the broker redelivers.
        acks.clear();
        return Ok(());
    };
    for pkid in acks.drain(..) {
        network.write(Packet::PubAck(PubAck::new(pkid))).await?;
    }
    tokio::time::timeout(flush_timeout, network.flush())
        .await
        .map_err(|_| ConnectionError::FlushTimeout)??;
    Ok(())
}

/// Closes the connection's ack link, drops queued acks and waits out the backoff; `false` on
/// shutdown.
async fn connection_lost(
    eventloop: &mut EventLoop,
    link: &mut Option<Arc<AckLink>>,
    status: &watch::Sender<LinkStatus>,
    backoff: &mut Backoff,
    cause: &str,
    shutdown: &mut Shutdown,
) -> bool {
    if let Some(l) = link.take() {
        l.close();
    }
    // Drops the connection if it is still there and any ack (doorbell) queued before the link
    // closed: none may reach the next connection.
    eventloop.clean();
    status.send_modify(|s| {
        s.connected = false;
        s.subscribed = false;
        s.errors += 1;
    });
    let delay = backoff.next_delay();
    warn!(
        cause,
        delay_ms = delay.as_millis() as u64,
        "subscribing connection lost; reconnecting"
    );
    tokio::select! {
        biased;
        () = shutdown.recv() => false,
        () = tokio::time::sleep(delay) => true,
    }
}

/// The ingest queue's sending side with its overflow (module docs).
struct Forward {
    tx: mpsc::Sender<Inbound>,
    overflow: VecDeque<Inbound>,
}

impl Forward {
    /// Moves on what fits from the overflow; `false` if the worker is gone.
    fn move_on(&mut self) -> bool {
        while let Some(item) = self.overflow.pop_front() {
            match self.tx.try_send(item) {
                Ok(()) => {}
                Err(TrySendError::Full(item)) => {
                    self.overflow.push_front(item);
                    break;
                }
                Err(TrySendError::Closed(_)) => return false,
            }
        }
        true
    }

    /// Queues `item` behind everything before it, waiting for the worker only when the overflow
    /// is full (unreachable for QoS 1, see the module docs); `false` on shutdown or if the worker
    /// is gone.
    async fn push(&mut self, item: Inbound, shutdown: &mut Shutdown) -> bool {
        if self.overflow.is_empty() {
            match self.tx.try_send(item) {
                Ok(()) => return true,
                Err(TrySendError::Full(item)) => self.overflow.push_back(item),
                Err(TrySendError::Closed(_)) => return false,
            }
        } else {
            self.overflow.push_back(item);
        }
        if self.overflow.len() >= MAX_UNACKED {
            // Unreachable for QoS 1 (packet ids); a QoS 0 flood waits for the worker.
            let permit = tokio::select! {
                biased;
                () = shutdown.recv() => return false,
                permit = self.tx.reserve() => permit,
            };
            match (permit, self.overflow.pop_front()) {
                (Ok(permit), Some(item)) => permit.send(item),
                (Ok(_), None) => {}
                (Err(_), _) => return false,
            }
        }
        true
    }
}

/// What the worker needs.
#[derive(Debug)]
pub(crate) struct Worker {
    pub(crate) rx: mpsc::Receiver<Inbound>,
    /// The subscribing connection's client, for the acks of QoS 2 messages (QoS 1 acks go
    /// through the connection's [`AckLink`]).
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

/// Whether the worker goes on after a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

/// Packet ids of handled messages, not yet handed to the link.
struct Pending<'a> {
    link: Option<&'a AckLink>,
    pkids: &'a mut Vec<u16>,
}

impl Pending<'_> {
    /// Hands the packet ids over; done before anything that may wait, so no ack is held back.
    fn release(&mut self) {
        match self.link {
            Some(link) => link.acknowledge(self.pkids),
            // Messages arrive only after their connection's link; nothing to acknowledge through.
            None => self.pkids.clear(),
        }
    }
}

impl Worker {
    /// Handles messages until shutdown or until the event loop stops.
    ///
    /// Takes up to [`WORKER_BATCH`] queued messages at a time and records them under one lock
    /// of the ingest state; each is acknowledged only after its outcome was handed on.
    pub(crate) async fn run(mut self) {
        let mut items = Vec::with_capacity(WORKER_BATCH);
        let mut messages = Vec::with_capacity(WORKER_BATCH);
        let mut outcomes = Vec::with_capacity(WORKER_BATCH);
        let mut pkids = Vec::with_capacity(WORKER_BATCH);
        let mut link: Option<Arc<AckLink>> = None;
        loop {
            let got = tokio::select! {
                biased;
                () = self.shutdown.recv() => return,
                got = self.rx.recv_many(&mut items, WORKER_BATCH) => got,
            };
            if got == 0 {
                return;
            }
            for item in items.drain(..) {
                match item {
                    Inbound::Message(publish) => messages.push(publish),
                    Inbound::Connected(next) => {
                        // Messages before it belong to the previous connection.
                        let flow = self
                            .handle(&mut messages, &mut outcomes, &mut pkids, link.as_deref())
                            .await;
                        if flow == Flow::Stop {
                            return;
                        }
                        link = Some(next);
                    }
                }
            }
            let flow = self
                .handle(&mut messages, &mut outcomes, &mut pkids, link.as_deref())
                .await;
            if flow == Flow::Stop {
                return;
            }
        }
    }

    /// Records `messages` (emptied) under one lock, hands each outcome on and acknowledges it.
    async fn handle(
        &mut self,
        messages: &mut Vec<Publish>,
        outcomes: &mut Vec<Outcome>,
        pkids: &mut Vec<u16>,
        link: Option<&AckLink>,
    ) -> Flow {
        if messages.is_empty() {
            return Flow::Continue;
        }
        let received = crate::bridge::wall_clock();
        {
            let mut ingest = lock(&self.handler.ingest);
            outcomes.extend(
                messages
                    .iter()
                    .map(|p| ingest.handle(&p.topic, &p.payload, received)),
            );
        }
        let mut pending = Pending { link, pkids };
        let mut flow = Flow::Continue;
        for (publish, outcome) in messages.drain(..).zip(outcomes.drain(..)) {
            // After a stop the rest stay unacknowledged: the broker redelivers them to the next
            // session.
            if flow == Flow::Stop {
                continue;
            }
            flow = self.hand_on(&publish, outcome, &mut pending).await;
            if flow == Flow::Stop {
                continue;
            }
            match publish.qos {
                QoS::AtMostOnce => {}
                QoS::AtLeastOnce => pending.pkids.push(publish.pkid),
                QoS::ExactlyOnce => {
                    pending.release();
                    if let Err(e) = self.acks.ack(&publish).await {
                        debug!(cause = %e, "subscribing connection closed; stopping the worker");
                        flow = Flow::Stop;
                    }
                }
            }
        }
        pending.release();
        flow
    }

    /// Hands one outcome on; [`Flow::Stop`] on shutdown or if the next stage is gone for good.
    async fn hand_on(
        &mut self,
        publish: &Publish,
        outcome: Outcome,
        pending: &mut Pending<'_>,
    ) -> Flow {
        match outcome {
            Outcome::Accepted(reading) => {
                trace!(meter = %reading.meter, timestamp = %reading.timestamp, "reading accepted");
                let Some(readings) = &self.handler.readings else {
                    return Flow::Continue;
                };
                // The reading is recorded in `Ingest` either way; a consumer that went away must
                // not stop ingest.
                match readings.try_send(reading) {
                    Ok(()) => {}
                    Err(TrySendError::Full(reading)) => {
                        pending.release();
                        let sent = tokio::select! {
                            biased;
                            () = self.shutdown.recv() => return Flow::Stop,
                            sent = readings.send(reading) => sent,
                        };
                        if sent.is_err() {
                            debug!("readings consumer gone");
                        }
                    }
                    Err(TrySendError::Closed(_)) => debug!("readings consumer gone"),
                }
            }
            Outcome::Pending => trace!(topic = %publish.topic, "partial reading"),
            Outcome::Household(update) => {
                debug!(topic = %publish.topic, ?update, "household message recorded")
            }
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
                pending.release();
                let published = tokio::select! {
                    biased;
                    () = self.shutdown.recv() => return Flow::Stop,
                    published = self.handler.publisher.dead_letter(&letter) => published,
                };
                if let Err(e) = published {
                    warn!(cause = %e, "dead letter not published; leaving the message unacknowledged");
                    return Flow::Stop;
                }
            }
        }
        Flow::Continue
    }
}
