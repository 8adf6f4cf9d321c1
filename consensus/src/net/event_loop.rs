//! The task that owns the libp2p [`Swarm`]: it reacts to swarm events, executes client commands
//! and redials validators.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    future::Future,
    pin::Pin,
    sync::Arc,
    time::Duration,
};

use futures::{stream::FuturesUnordered, StreamExt};
use libp2p::{
    allow_block_list::NotAllowed,
    gossipsub::{self, IdentTopic},
    request_response::{self, InboundFailure},
    swarm::{
        dial_opts::{DialOpts, PeerCondition},
        DialError, ListenError, SwarmEvent,
    },
    Multiaddr, PeerId, Swarm,
};
use tokio::sync::mpsc;
use tracing::{debug, info, trace, warn};

use super::{
    behaviour::{Behaviour, BehaviourEvent},
    client::Command,
    codec::FrameTooLarge,
    config::ValidatorTable,
    error::PublishError,
    events::Event,
    inbound::InboundSender,
    outbox::{Admit, Outbox, OutboxLimits},
    redial::Backoff,
    stats::Counters,
    validator::ValidatorIndex,
};

type RedialTimer = Pin<Box<dyn Future<Output = PeerId> + Send>>;

/// Drives the network. Spawn [`EventLoop::run`] on the tokio runtime that called
/// [`super::new`].
///
/// Invariants: `connected` holds exactly the genesis validators with at least one open
/// connection; at most one redial timer is pending per validator (`redial_pending`), so the
/// timer set is bounded by the validator count.
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    consensus_events: InboundSender,
    order_events: mpsc::Sender<Event>,
    table: Arc<ValidatorTable>,
    counters: Arc<Counters>,
    topic: IdentTopic,
    connected: BTreeSet<ValidatorIndex>,
    /// Dial address per validator index: the genesis address unless replaced by a client.
    addrs: Vec<Multiaddr>,
    backoff: Backoff<PeerId>,
    redials: FuturesUnordered<RedialTimer>,
    redial_pending: HashSet<PeerId>,
    /// One outbox per remote validator, created up front (bounded by the validator count).
    outboxes: HashMap<PeerId, Outbox>,
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("local_peer_id", self.swarm.local_peer_id())
            .field("connected", &self.connected)
            .field("redial_pending", &self.redial_pending.len())
            .finish_non_exhaustive()
    }
}

/// The queues the event loop feeds.
pub(crate) struct Outputs {
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) consensus_events: InboundSender,
    pub(crate) order_events: mpsc::Sender<Event>,
}

impl EventLoop {
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        outputs: Outputs,
        table: Arc<ValidatorTable>,
        counters: Arc<Counters>,
        topic: IdentTopic,
        redial: (Duration, Duration),
        outbox: OutboxLimits,
    ) -> Self {
        let outboxes = table
            .remotes()
            .map(|(_, peer)| (peer, Outbox::new(outbox)))
            .collect();
        let addrs = (0..u16::try_from(table.len()).unwrap_or(u16::MAX))
            .filter_map(|i| table.addr_of(ValidatorIndex(i)).cloned())
            .collect();
        Self {
            swarm,
            commands: outputs.commands,
            consensus_events: outputs.consensus_events,
            order_events: outputs.order_events,
            table,
            counters,
            topic,
            connected: BTreeSet::new(),
            addrs,
            backoff: Backoff::new(redial.0, redial.1),
            redials: FuturesUnordered::new(),
            redial_pending: HashSet::new(),
            outboxes,
        }
    }

    /// Dials every other genesis validator, then runs until every [`super::Client`] has been
    /// dropped.
    ///
    /// # Cancel safety
    /// Dropping the future stops the node: the swarm, its listeners and all its connections are
    /// closed, and queued commands are discarded. That is the intended way to stop a node
    /// abruptly; dropping every client stops it after the queued commands have run.
    #[tracing::instrument(name = "net", skip_all, fields(local = %self.swarm.local_peer_id()))]
    pub async fn run(mut self) {
        let remotes: Vec<PeerId> = self.table.remotes().map(|(_, peer)| peer).collect();
        for peer in remotes {
            self.dial(peer);
        }
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => {
                        debug!("all clients dropped; stopping the network event loop");
                        return;
                    }
                },
                Some(peer) = self.redials.next(), if !self.redials.is_empty() => {
                    self.redial_pending.remove(&peer);
                    Counters::set(&self.counters.redials_pending, self.redial_pending.len());
                    if !self.swarm.is_connected(&peer) {
                        self.dial(peer);
                    }
                }
            }
        }
    }

    fn dial(&mut self, peer: PeerId) {
        let Some(addr) = self
            .table
            .index_of(&peer)
            .and_then(|index| self.addrs.get(index.0 as usize))
        else {
            return;
        };
        let opts = DialOpts::peer_id(peer)
            .addresses(vec![addr.clone()])
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .allocate_new_port()
            .build();
        match self.swarm.dial(opts) {
            Ok(()) => {
                Counters::inc(&self.counters.dials);
                trace!(peer_id = %peer, %addr, "dialing validator");
            }
            Err(DialError::DialPeerConditionFalse(_)) => {}
            Err(error) => {
                debug!(peer_id = %peer, %addr, %error, "dial refused");
                self.schedule_redial(peer);
            }
        }
    }

    fn schedule_redial(&mut self, peer: PeerId) {
        if self.table.index_of(&peer).is_none() || !self.redial_pending.insert(peer) {
            return;
        }
        Counters::set(&self.counters.redials_pending, self.redial_pending.len());
        let delay = self.backoff.next_delay(peer);
        debug!(peer_id = %peer, ?delay, "redial scheduled");
        self.redials.push(Box::pin(async move {
            tokio::time::sleep(delay).await;
            peer
        }));
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(
                BehaviourEvent::Allow(never)
                | BehaviourEvent::Limits(never)
                | BehaviourEvent::PendingPerIp(never),
            ) => match never {},
            SwarmEvent::Behaviour(BehaviourEvent::Consensus(event)) => self.on_consensus(event),
            SwarmEvent::Behaviour(BehaviourEvent::Gossip(event)) => self.on_gossip(event),
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
                emit_consensus(
                    &self.consensus_events,
                    Event::Listening { address },
                    &self.counters.events_dropped_full,
                );
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                endpoint,
                ..
            } => {
                let Some(validator) = self.table.index_of(&peer_id) else {
                    // Unreachable while the allow-list holds; close defensively.
                    warn!(%peer_id, "connection to a non-genesis peer; closing");
                    let _closed = self.swarm.disconnect_peer_id(peer_id);
                    return;
                };
                self.backoff.reset(&peer_id);
                if num_established.get() == 1 && self.connected.insert(validator) {
                    info!(%peer_id, %validator, addr = %endpoint.get_remote_address(), "validator connected");
                    Counters::set(&self.counters.connected_validators, self.connected.len());
                    emit_consensus(
                        &self.consensus_events,
                        Event::PeerConnected { validator, peer_id },
                        &self.counters.events_dropped_full,
                    );
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                ..
            } => {
                let Some(validator) = self.table.index_of(&peer_id) else {
                    return;
                };
                if num_established == 0 && self.connected.remove(&validator) {
                    if let Some(outbox) = self.outboxes.get_mut(&peer_id) {
                        Counters::add(&self.counters.messages_not_connected, outbox.reset());
                    }
                    info!(%peer_id, %validator, cause = ?cause, "validator disconnected");
                    Counters::set(&self.counters.connected_validators, self.connected.len());
                    self.count_topic_peers();
                    emit_consensus(
                        &self.consensus_events,
                        Event::PeerDisconnected { validator, peer_id },
                        &self.counters.events_dropped_full,
                    );
                    self.schedule_redial(peer_id);
                }
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer_id),
                error,
                ..
            } => {
                debug!(%peer_id, %error, "dial failed");
                if !self.swarm.is_connected(&peer_id) {
                    self.schedule_redial(peer_id);
                }
            }
            SwarmEvent::IncomingConnectionError {
                peer_id,
                error: ListenError::Denied { cause },
                send_back_addr,
                ..
            } => {
                if cause.downcast_ref::<NotAllowed>().is_some() {
                    Counters::inc(&self.counters.connections_denied);
                    warn!(peer_id = ?peer_id, remote = %send_back_addr, "refused a connection from a non-genesis key");
                } else {
                    debug!(peer_id = ?peer_id, %cause, "inbound connection denied");
                }
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                debug!(%error, "inbound connection failed");
            }
            SwarmEvent::ListenerError { error, .. } => warn!(%error, "listener error"),
            SwarmEvent::ListenerClosed {
                addresses, reason, ..
            } => {
                warn!(?addresses, ?reason, "listener closed");
            }
            other => trace!(event = ?other, "swarm event"),
        }
    }

    fn on_consensus(&mut self, event: request_response::Event<Vec<u8>, ()>) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                // Acknowledge first: the ack means "read by the network layer", whatever the
                // app's queue does with it.
                let _acked = self
                    .swarm
                    .behaviour_mut()
                    .consensus
                    .send_response(channel, ());
                let Some(from) = self.table.index_of(&peer) else {
                    warn!(%peer, "consensus message from a non-genesis peer dropped");
                    return;
                };
                trace!(%peer, %from, len = request.len(), "consensus message");
                if emit_consensus(
                    &self.consensus_events,
                    Event::Message {
                        from,
                        peer_id: peer,
                        bytes: request,
                    },
                    &self.counters.messages_dropped_full,
                ) {
                    Counters::inc(&self.counters.messages_received);
                }
            }
            request_response::Event::Message {
                peer,
                message: request_response::Message::Response { .. },
                ..
            } => {
                Counters::inc(&self.counters.messages_acked);
                self.pump(peer);
            }
            request_response::Event::OutboundFailure { peer, error, .. } => {
                Counters::inc(&self.counters.messages_failed);
                debug!(%peer, %error, "consensus message not delivered");
                self.pump(peer);
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                let oversized = matches!(
                    &error,
                    InboundFailure::Io(e) if e.get_ref().is_some_and(|inner| inner.is::<FrameTooLarge>())
                );
                if oversized {
                    warn!(%peer, %error, "refused an oversized consensus message");
                } else {
                    debug!(%peer, %error, "inbound consensus stream failed");
                }
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_gossip(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message { message, .. } => {
                let Some((from, peer_id)) = message
                    .source
                    .and_then(|peer| self.table.index_of(&peer).map(|index| (index, peer)))
                else {
                    Counters::inc(&self.counters.orders_foreign);
                    debug!(source = ?message.source, "order from a non-genesis author dropped");
                    return;
                };
                if emit(
                    &self.order_events,
                    Event::Order {
                        from,
                        peer_id,
                        bytes: message.data,
                    },
                    &self.counters.orders_dropped_full,
                ) {
                    Counters::inc(&self.counters.orders_received);
                }
            }
            gossipsub::Event::Subscribed { .. } | gossipsub::Event::Unsubscribed { .. } => {
                self.count_topic_peers();
            }
            gossipsub::Event::SlowPeer {
                peer_id,
                failed_messages,
            } => {
                warn!(%peer_id, ?failed_messages, "slow gossip peer");
            }
            gossipsub::Event::GossipsubNotSupported { peer_id } => {
                warn!(%peer_id, "validator does not speak gossipsub");
            }
        }
    }

    fn count_topic_peers(&self) {
        let topic = self.topic.hash();
        let count = self
            .swarm
            .behaviour()
            .gossip
            .all_peers()
            .filter(|(_, topics)| topics.contains(&&topic))
            .count();
        Counters::set(&self.counters.order_topic_peers, count);
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Send { to, bytes } => self.send_to(to, bytes),
            Command::Broadcast { bytes } => {
                let remotes: Vec<PeerId> = self.table.remotes().map(|(_, peer)| peer).collect();
                for peer in remotes {
                    self.send_to(peer, bytes.clone());
                }
            }
            Command::Publish { bytes, reply } => {
                let outcome = self
                    .swarm
                    .behaviour_mut()
                    .gossip
                    .publish(self.topic.clone(), bytes)
                    .map(|_| ())
                    .map_err(|e| match e {
                        gossipsub::PublishError::Duplicate => PublishError::Duplicate,
                        gossipsub::PublishError::NoPeersSubscribedToTopic => PublishError::NoPeers,
                        other => PublishError::Gossip(other.to_string()),
                    });
                match &outcome {
                    Ok(()) => Counters::inc(&self.counters.orders_published),
                    Err(error) => debug!(%error, "order not published"),
                }
                if let Some(reply) = reply {
                    let _receiver_gone = reply.send(outcome);
                }
            }
            Command::ConnectedValidators { reply } => {
                let _receiver_gone = reply.send(self.connected.iter().copied().collect());
            }
            Command::ListenAddrs { reply } => {
                let _receiver_gone = reply.send(self.swarm.listeners().cloned().collect());
            }
            Command::SetValidatorAddr { index, addr } => {
                let (Some(slot), Some(peer)) = (
                    self.addrs.get_mut(index.0 as usize),
                    self.table.peer_of(index),
                ) else {
                    return;
                };
                debug!(validator = %index, %addr, "validator address replaced");
                *slot = addr;
                self.backoff.reset(&peer);
                if !self.swarm.is_connected(&peer) {
                    self.dial(peer);
                }
            }
        }
    }

    /// Sends to a connected validator only (requests to an unconnected peer would make
    /// request-response dial on its own and queue them without bound), through its outbox.
    fn send_to(&mut self, peer: PeerId, bytes: Vec<u8>) {
        if !self.swarm.is_connected(&peer) {
            Counters::inc(&self.counters.messages_not_connected);
            trace!(%peer, "consensus message dropped: validator not connected");
            return;
        }
        let Some(outbox) = self.outboxes.get_mut(&peer) else {
            return;
        };
        match outbox.admit(bytes) {
            Admit::SendNow(bytes) => self.request(peer, bytes),
            Admit::Queued => {}
            Admit::Full => {
                Counters::inc(&self.counters.messages_outbox_full);
                debug!(%peer, "consensus message dropped: outbox full");
            }
        }
    }

    /// An in-flight message to `peer` completed: send the next queued one, if any.
    fn pump(&mut self, peer: PeerId) {
        let next = self.outboxes.get_mut(&peer).and_then(Outbox::complete);
        if let Some(bytes) = next {
            self.request(peer, bytes);
        }
    }

    fn request(&mut self, peer: PeerId, bytes: Vec<u8>) {
        let _id = self
            .swarm
            .behaviour_mut()
            .consensus
            .send_request(&peer, bytes);
        Counters::inc(&self.counters.messages_sent);
    }
}

/// Queues an event without ever waiting; a full queue drops the event and bumps `dropped`.
/// Returns whether the event was queued.
fn emit(queue: &mpsc::Sender<Event>, event: Event, dropped: &std::sync::atomic::AtomicU64) -> bool {
    match queue.try_send(event) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            Counters::inc(dropped);
            debug!("event queue full; event dropped");
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

/// Queues a consensus event in its sender's fair queue without ever waiting; a full queue drops
/// the event and bumps `dropped`. Returns whether the event was queued.
fn emit_consensus(
    queue: &InboundSender,
    event: Event,
    dropped: &std::sync::atomic::AtomicU64,
) -> bool {
    if queue.try_push(event) {
        true
    } else {
        Counters::inc(dropped);
        debug!("consensus queue full; event dropped");
        false
    }
}
