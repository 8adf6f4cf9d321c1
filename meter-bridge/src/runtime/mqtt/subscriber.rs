//! The subscribing connection: one task owns the [`EventLoop`], handles every message through
//! [`Ingest`](crate::Ingest) as it arrives and acknowledges it.
//!
//! # Delivery guarantee
//! QoS 1 with a persistent session (`clean_session = false`, fixed client id) and manual acks.
//! A message is acknowledged only after [`Ingest::handle`](crate::Ingest::handle) has recorded it and the accepted
//! reading has been handed to the readings queue (or, for a refused message, its dead letter has
//! been queued on the publishing connection). Until then the broker keeps the message and
//! redelivers it after any reconnect, to this process or to the next one; a redelivery of a
//! reading already recorded is recognised by (meter, timestamp) and counted once
//! ([`Outcome::Duplicate`]). Acks not written when the connection fails are dropped, never sent
//! on the next connection, where the packet id may by then name a different message; the broker
//! redelivers those messages instead.
//!
//! # Acks in batches, in order, without a hop
//! rumqttc turns every manual ack into its own request: a trip through its request queue and a
//! flushed write each (rumqtt issue #810). Here the task that polls the connection handles the
//! messages itself and writes their acks itself, as PUBACKs into the connection's write buffer in
//! the order the messages arrived (MQTT-4.6.0-2), with one flush whenever the next poll would
//! wait on the network: the way rumqttc flushes the acks it sends on its own. No other task lies
//! between a message's arrival and its ack, so a broker's in-flight window (Mosquitto's
//! `max_inflight_messages`, 20 by default) refills as soon as for a client that acks on receipt.
//!
//! # Waiting, and why it cannot deadlock
//! [`Ingest::handle`](crate::Ingest::handle) never waits. Handing a message on waits only for backpressure: a full
//! readings queue, or a full request queue of the publishing connection (dead letters). Before
//! such a wait the acks of the messages handled so far are flushed, so none is held back; during
//! it the connection is not polled and TCP flow control holds the broker's next messages. Nothing
//! this task waits for waits for it: the publishing connection has its own event loop, and the
//! readings consumer never touches the subscribing connection. Subscriptions are queued from a
//! separate task, so the request queue is never waited on here.
//!
//! # Bad input
//! Every refusal is counted by [`crate::ErrorKind`] inside [`Ingest`](crate::Ingest), logged at `warn` with the
//! meter id, kind and topic, published to the dead-letter topic and then acknowledged: it never
//! stops the bridge.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, Packet, PubAck, PubRec, Publish, QoS,
    SubscribeFilter, SubscribeReasonCode,
};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, trace, warn};

use crate::ingest::Outcome;
use crate::reading::Reading;
use crate::runtime::clock::SharedClock;
use crate::runtime::mqtt::backoff::Backoff;
use crate::runtime::mqtt::publisher::Publisher;
use crate::runtime::shared::{lock, SharedIngest, Unacked};
use crate::shutdown::Shutdown;

/// Capacity of the subscribing connection's request queue: it carries only the subscriptions
/// (acks are written directly, see the module docs).
pub const REQUEST_QUEUE: usize = 64;

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

/// Where a message goes before it is acknowledged.
#[derive(Debug)]
pub(crate) struct Handler {
    pub(crate) ingest: SharedIngest,
    pub(crate) publisher: Publisher,
    pub(crate) readings: Option<mpsc::Sender<Reading>>,
    pub(crate) unacked: Unacked,
    /// Stamps each message's receive time.
    pub(crate) clock: SharedClock,
}

/// The subscribing connection's parts besides its event loop.
#[derive(Debug)]
pub(crate) struct Subscriber {
    /// The connection's client, to queue the subscriptions on every connection.
    pub(crate) client: AsyncClient,
    pub(crate) filters: Vec<SubscribeFilter>,
    pub(crate) backoff: Backoff,
    pub(crate) status: watch::Sender<LinkStatus>,
    pub(crate) handler: Handler,
    pub(crate) shutdown: Shutdown,
}

/// Why handling a message stopped short.
#[derive(Debug)]
enum Stop {
    /// Shutdown: leave the message unacknowledged (the broker redelivers it to the next session).
    Shutdown,
    /// The connection failed while acks were flushed ahead of a wait.
    Connection(ConnectionError),
}

/// Acks written but not yet flushed, in the order their messages arrived.
struct Acks {
    packets: Vec<Packet>,
    flush_timeout: Duration,
}

impl Acks {
    fn push(&mut self, publish: &Publish) {
        match publish.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.packets.push(Packet::PubAck(PubAck::new(publish.pkid))),
            // The broker then waits for PUBREL, which rumqttc answers with PUBCOMP on its own.
            QoS::ExactlyOnce => self.packets.push(Packet::PubRec(PubRec::new(publish.pkid))),
        }
    }

    /// Writes every waiting ack into the connection's buffer and flushes once.
    ///
    /// # Errors
    /// The connection failed, or the flush took longer than the connection timeout.
    async fn write(&mut self, eventloop: &mut EventLoop) -> Result<(), ConnectionError> {
        if self.packets.is_empty() {
            return Ok(());
        }
        let Some(network) = eventloop.network.as_mut() else {
            // Not connected: the broker redelivers.
            self.packets.clear();
            return Ok(());
        };
        for packet in self.packets.drain(..) {
            network.write(packet).await?;
        }
        tokio::time::timeout(self.flush_timeout, network.flush())
            .await
            .map_err(|_| ConnectionError::FlushTimeout)??;
        Ok(())
    }
}

impl Subscriber {
    /// Polls the subscribing connection until shutdown (see the module docs).
    pub(crate) async fn run(mut self, mut eventloop: EventLoop) {
        let mut network = eventloop.network_options();
        // Acks leave in batches, each written at once: nothing to gain from Nagle's algorithm,
        // which would hold a batch until the broker's delayed TCP ack.
        network.set_tcp_nodelay(true);
        let flush_timeout = Duration::from_secs(network.connection_timeout().max(1));
        eventloop.set_network_options(network);
        let mut acks = Acks {
            packets: Vec::new(),
            flush_timeout,
        };
        loop {
            // Nothing buffered: the poll will wait on the network, so flush the acks now.
            if eventloop.state.events.is_empty() && !acks.packets.is_empty() {
                let written = tokio::select! {
                    biased;
                    () = self.shutdown.recv() => return,
                    written = acks.write(&mut eventloop) => written,
                };
                self.handler.unacked.store(0, Ordering::Relaxed);
                if let Err(e) = written {
                    if !self.connection_lost(&mut eventloop, &mut acks, &e).await {
                        return;
                    }
                    continue;
                }
            }
            let event = tokio::select! {
                biased;
                () = self.shutdown.recv() => return,
                event = eventloop.poll() => event,
            };
            match event {
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    trace!(topic = %publish.topic, pkid = publish.pkid, "message");
                    self.handler
                        .unacked
                        .store(acks.packets.len() + 1, Ordering::Relaxed);
                    match self.handle(&publish, &mut eventloop, &mut acks).await {
                        Ok(()) => acks.push(&publish),
                        Err(Stop::Shutdown) => return,
                        Err(Stop::Connection(e)) => {
                            if !self.connection_lost(&mut eventloop, &mut acks, &e).await {
                                return;
                            }
                        }
                    }
                }
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    self.backoff.reset();
                    // A resumed session still holds our subscriptions.
                    self.status.send_modify(|s| {
                        s.connected = true;
                        s.subscribed = ack.session_present;
                        s.connects += 1;
                    });
                    info!(
                        session_present = ack.session_present,
                        "subscribing connection up"
                    );
                    // Subscribe on every connection (idempotent); from a task, so this one
                    // never waits on its own request queue.
                    let client = self.client.clone();
                    let filters = self.filters.clone();
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
                        self.status.send_modify(|s| s.subscribed = true);
                        info!(filters = self.filters.len(), "subscribed");
                    } else {
                        error!(refused, "the broker refused subscriptions (check its ACL)");
                    }
                }
                Ok(other) => trace!(event = ?other, "subscribing connection"),
                Err(e) => {
                    if !self.connection_lost(&mut eventloop, &mut acks, &e).await {
                        return;
                    }
                }
            }
        }
    }

    /// Records one message and hands its outcome on; `Ok` when it may be acknowledged.
    async fn handle(
        &mut self,
        publish: &Publish,
        eventloop: &mut EventLoop,
        acks: &mut Acks,
    ) -> Result<(), Stop> {
        let received = self.handler.clock.now();
        let outcome = lock(&self.handler.ingest).handle(&publish.topic, &publish.payload, received);
        match outcome {
            Outcome::Accepted(reading) => {
                trace!(meter = %reading.meter, timestamp = %reading.timestamp, "reading accepted");
                let Some(readings) = &self.handler.readings else {
                    return Ok(());
                };
                // The reading is recorded in `Ingest` either way; a consumer that went away must
                // not stop ingest.
                match readings.try_send(reading) {
                    Ok(()) => {}
                    Err(TrySendError::Full(reading)) => {
                        let flushed =
                            flush_before_wait(eventloop, acks, &self.handler.unacked).await;
                        let sent = tokio::select! {
                            biased;
                            () = self.shutdown.recv() => return Err(Stop::Shutdown),
                            sent = readings.send(reading) => sent,
                        };
                        if sent.is_err() {
                            debug!("readings consumer gone");
                        }
                        // Handed on even if the connection failed: its redelivery is a duplicate.
                        flushed?;
                    }
                    Err(TrySendError::Closed(_)) => debug!("readings consumer gone"),
                }
            }
            Outcome::Pending => trace!(topic = %publish.topic, "partial reading"),
            Outcome::Household(update) => {
                debug!(topic = %publish.topic, ?update, "household message recorded");
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
                let flushed = flush_before_wait(eventloop, acks, &self.handler.unacked).await;
                let published = tokio::select! {
                    biased;
                    () = self.shutdown.recv() => return Err(Stop::Shutdown),
                    published = self.handler.publisher.dead_letter(&letter) => published,
                };
                if let Err(e) = published {
                    // The publishing connection only stops at shutdown.
                    warn!(cause = %e, "dead letter not published; leaving the message unacknowledged");
                    return Err(Stop::Shutdown);
                }
                flushed?;
            }
        }
        Ok(())
    }

    /// Drops the connection and the acks not yet written, and waits out the backoff; `false` on
    /// shutdown.
    async fn connection_lost(
        &mut self,
        eventloop: &mut EventLoop,
        acks: &mut Acks,
        cause: &ConnectionError,
    ) -> bool {
        acks.packets.clear();
        self.handler.unacked.store(0, Ordering::Relaxed);
        // Drops the connection if it is still there; the next poll reconnects.
        eventloop.clean();
        // Messages read from the failed connection but not handled yet would be acknowledged on
        // the next one, where their packet ids may name other messages: drop them, the broker
        // redelivers them.
        eventloop.state.events.clear();
        self.status.send_modify(|s| {
            s.connected = false;
            s.subscribed = false;
            s.errors += 1;
        });
        let delay = self.backoff.next_delay();
        warn!(
            cause = %cause,
            delay_ms = delay.as_millis() as u64,
            "subscribing connection lost; reconnecting"
        );
        tokio::select! {
            biased;
            () = self.shutdown.recv() => false,
            () = tokio::time::sleep(delay) => true,
        }
    }
}

/// Flushes the acks of the messages handled so far, ahead of a wait that may be long.
async fn flush_before_wait(
    eventloop: &mut EventLoop,
    acks: &mut Acks,
    unacked: &AtomicUsize,
) -> Result<(), Stop> {
    acks.write(eventloop).await.map_err(Stop::Connection)?;
    unacked.store(1, Ordering::Relaxed);
    Ok(())
}
