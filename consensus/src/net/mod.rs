//! libp2p network adapter: carries opaque consensus messages between genesis validators and
//! gossips opaque order bytes.
//!
//! The adapter knows nothing about HotStuff or orders; it moves `Vec<u8>` and says who sent them.
//!
//! # Shape
//! [`new`] returns `(Client, Events, EventLoop)`, as in libp2p's file-sharing example:
//! - [`EventLoop`] owns the [`libp2p::Swarm`]; spawn [`EventLoop::run`] on tokio. It `select!`s
//!   over swarm events, client commands and redial timers.
//! - [`Client`] (cloneable) queues commands on a bounded queue. Commands that need an answer carry
//!   a `oneshot` reply. Every method has a `try_*` twin or is itself non-blocking, so a synchronous
//!   consensus core can call it without `block_on`.
//! - [`Events`] delivers [`Event`]s on two bounded queues (consensus traffic and orders), readable
//!   with `recv().await`, `try_recv()`, as a `Stream`, or split in two.
//!
//! # Transport and admission
//! TCP + Noise (XX, ed25519 identity) + Yamux. The node key is the validator key: the genesis
//! validator list maps each ed25519 public key to a [`ValidatorIndex`] (the consensus core's own
//! index, see `validator.rs`) and a dial address. An
//! allow-list behaviour denies every connection whose Noise-authenticated key is not a genesis
//! validator (counted in [`NetStats::connections_denied`]), so every byte that reaches the
//! protocols comes from a genesis validator, and the origin reported with each message is the
//! authenticated remote, never a claim inside the payload.
//!
//! # Connectivity
//! At start the node dials every other validator. When the last connection to a validator
//! closes, or a dial fails, it redials after an exponential backoff (`redial_initial` doubling
//! to `redial_max`, reset on success), so a restarted validator is reconnected without help.
//! Both sides dial, so a pair may briefly hold two connections; that is harmless.
//!
//! # Consensus messages
//! Protocol `/voltmesh/consensus/1` over libp2p request-response, one Yamux stream per message:
//! a `u32` big-endian length prefix and the bytes, answered by a one-byte acknowledgement once
//! the receiver has read the whole frame (see [`CONSENSUS_PROTOCOL`]'s module). A frame above `max_message_size` is refused before its body is read
//! and counted in [`NetStats::messages_oversized`]; only that stream fails. Messages are
//! fire-and-forget and unordered: a message to a validator that is not connected is dropped and
//! counted, and there is no retry (the consensus protocol's timeouts and sync recover). Each
//! validator has an outbox: at most `max_in_flight_per_validator` messages on the wire, then a
//! FIFO bounded in messages and bytes; a message that does not fit is dropped and counted.
//!
//! # Orders
//! Gossipsub, topic `voltmesh/<neighborhood>/orders`, strict signing by the publishing node, and
//! message id = SHA-256 of the order bytes, so the same order published twice (by one node or by
//! two) is delivered once per node within gossipsub's duplicate-cache window.
//!
//! # Bounds
//! Commands, consensus events and orders each have a bounded queue (sizes in [`NetConfig`]).
//! The event loop never waits on the app: when an inbound queue is full the event is dropped and
//! counted ([`NetStats`]). Message and order sizes are capped, and so are each validator's
//! outbound messages in flight and waiting. Redial timers are at most one per validator.
//! Connections are limited to genesis validators, two per validator, and 32 handshakes in flight.
//!
//! # Known limitations
//! - Dropping is the overload policy: a slow consumer loses messages, it does not slow peers.
//! - Peer events share the consensus queue; a full queue can drop a `PeerConnected`. Use
//!   [`Client::connected_validators`] or [`NetStats::connected_validators`] for the truth.
//! - No keep-alive ping: a peer that vanishes without closing TCP is noticed only when a request
//!   times out or the OS gives up on the connection.

mod behaviour;
mod client;
mod codec;
mod config;
mod error;
mod event_loop;
mod events;
mod inbound;
pub mod keyfile;
mod outbox;
mod pending;
mod redial;
mod stats;
mod validator;

use std::{sync::Arc, time::Duration};

use libp2p::{gossipsub::IdentTopic, noise, tcp, yamux, SwarmBuilder};
use tokio::sync::mpsc;

pub use self::{
    client::Client,
    codec::{FrameTooLarge, CONSENSUS_PROTOCOL},
    config::{
        NetConfig, ValidatorTable, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_ORDER_SIZE,
        MAX_IN_FLIGHT_LIMIT, MAX_MESSAGE_SIZE_LIMIT,
    },
    error::{ConfigError, KeyFileError, NetError, PublishError, SendError, Stopped},
    event_loop::EventLoop,
    events::Event,
    events::Events,
    inbound::ConsensusEvents,
    stats::NetStats,
    validator::{Validator, ValidatorIndex},
};
pub use libp2p::{identity::Keypair, Multiaddr, PeerId};

/// How long an idle connection stays open. Validators should stay connected, and gossipsub keeps
/// mesh connections alive anyway; the redial logic reconnects if one is closed.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(3600);

/// How long an inbound or outbound connection may take to finish TCP, Noise and Yamux
/// negotiation (libp2p's default is 10 s). Validators finish in milliseconds; a dialer that
/// stalls its handshake holds a pending slot for at most this long (audit M4).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds the adapter and starts listening on `config.listen_addr`.
///
/// Nothing is dialed until [`EventLoop::run`] is polled.
///
/// # Errors
/// [`NetError::Config`] if [`NetConfig::validate`] refuses the config, [`NetError::Noise`] or
/// [`NetError::Gossip`] if a protocol cannot be set up with the key, [`NetError::Listen`] if the
/// listen address cannot be bound.
///
/// # Panics
/// Must be called from within a tokio runtime (binding the TCP listener needs its reactor);
/// outside one, tokio panics.
pub fn new(config: NetConfig) -> Result<(Client, Events, EventLoop), NetError> {
    let table = Arc::new(config.validate()?);
    let counters = Arc::new(stats::Counters::default());
    let topic = IdentTopic::new(config.order_topic());
    let behaviour = behaviour::Behaviour::new(&config, &table, counters.clone(), &topic)?;

    let mut swarm = SwarmBuilder::with_existing_identity(config.keypair.clone())
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(NetError::Noise)?
        .with_behaviour(|_| behaviour)
        .unwrap_or_else(|never| match never {})
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .with_connection_timeout(HANDSHAKE_TIMEOUT)
        .build();
    swarm
        .listen_on(config.listen_addr.clone())
        .map_err(|source| NetError::Listen {
            addr: config.listen_addr.clone(),
            source,
        })?;
    let local_peer_id = *swarm.local_peer_id();

    let (command_tx, command_rx) = mpsc::channel(config.command_capacity);
    // Split between the other validators, so the total stays `message_capacity`.
    let remotes = table.len().saturating_sub(1).max(1);
    let (consensus_tx, consensus_rx) =
        inbound::fair_inbound(table.len(), config.message_capacity / remotes);
    let (order_tx, order_rx) = mpsc::channel(config.order_capacity);

    let client = Client::new(
        command_tx,
        counters.clone(),
        table.clone(),
        local_peer_id,
        config.max_message_size,
        config.max_order_size,
    );
    let event_loop = EventLoop::new(
        swarm,
        event_loop::Outputs {
            commands: command_rx,
            consensus_events: consensus_tx,
            order_events: order_tx,
        },
        table,
        counters,
        topic,
        (config.redial_initial, config.redial_max),
        outbox::OutboxLimits {
            max_in_flight: config.max_in_flight_per_validator,
            max_queued: config.outbox_messages_per_validator,
            max_queued_bytes: config.outbox_bytes_per_validator,
        },
    );
    Ok((client, Events::new(consensus_rx, order_rx), event_loop))
}
