//! The composed libp2p behaviour: genesis allow-list, consensus request-response and order
//! gossip.

use std::sync::Arc;

use libp2p::{
    allow_block_list::{self, AllowedPeers},
    connection_limits::{self, ConnectionLimits},
    gossipsub::{self, IdentTopic, MessageAuthenticity, MessageId, ValidationMode},
    request_response::{self, ProtocolSupport},
    swarm::NetworkBehaviour,
};
use sha2::{Digest, Sha256};

use super::{
    codec::{FrameCodec, CONSENSUS_PROTOCOL},
    config::{NetConfig, ValidatorTable},
    error::NetError,
    stats::Counters,
};

/// Bytes of gossipsub framing allowed on top of `max_order_size` (protobuf fields, the author's
/// public key, the signature, the sequence number and the topic name).
const GOSSIP_ENVELOPE_OVERHEAD: usize = 4096;

/// Inbound connections still in their handshake, from anyone; bounds what unknown dialers cost.
/// Per address the bound is much lower ([`MAX_PENDING_PER_IP`]), so one host cannot take them
/// all (audit M4).
const MAX_PENDING_INCOMING: u32 = 256;
/// Inbound handshakes in flight from one IP address that no genesis validator is listed at.
const MAX_PENDING_PER_IP: usize = 4;
/// Inbound handshakes in flight from one IP address a genesis validator is listed at (several
/// validators may share a host, e.g. in tests and small deployments).
const MAX_PENDING_PER_GENESIS_IP: usize = 64;
/// Established connections per validator: one dialed by each side is the normal worst case.
const MAX_ESTABLISHED_PER_PEER: u32 = 2;

/// The node's network behaviour.
///
/// Invariant: `allow` lists exactly the genesis validators, so every connection that reaches
/// `consensus` or `gossip` is to an authenticated genesis validator; a connection from any other
/// key is denied as soon as its Noise handshake reveals the key. `limits` bounds handshakes in
/// flight and connections per validator; `pending_per_ip` bounds handshakes in flight per remote
/// IP address.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) allow: allow_block_list::Behaviour<AllowedPeers>,
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) pending_per_ip: super::pending::Behaviour,
    pub(crate) consensus: request_response::Behaviour<FrameCodec>,
    pub(crate) gossip: gossipsub::Behaviour,
}

/// The id gossipsub uses to suppress duplicates: SHA-256 of the order bytes, so the same order
/// published by two nodes is delivered once.
pub(crate) fn order_message_id(message: &gossipsub::Message) -> MessageId {
    MessageId::new(&Sha256::digest(&message.data))
}

impl Behaviour {
    pub(crate) fn new(
        config: &NetConfig,
        table: &ValidatorTable,
        counters: Arc<Counters>,
        topic: &IdentTopic,
    ) -> Result<Self, NetError> {
        let mut allow = allow_block_list::Behaviour::<AllowedPeers>::default();
        for (_, peer) in table.remotes() {
            allow.allow_peer(peer);
        }

        let limits = connection_limits::Behaviour::new(
            ConnectionLimits::default()
                .with_max_pending_incoming(Some(MAX_PENDING_INCOMING))
                .with_max_established_per_peer(Some(MAX_ESTABLISHED_PER_PEER)),
        );

        let genesis_ips = (0..u16::try_from(table.len()).unwrap_or(u16::MAX))
            .filter_map(|i| table.addr_of(super::ValidatorIndex(i)))
            .filter_map(super::pending::ip_of)
            .collect();
        let pending_per_ip = super::pending::Behaviour::new(
            genesis_ips,
            MAX_PENDING_PER_IP,
            MAX_PENDING_PER_GENESIS_IP,
        );

        let consensus = request_response::Behaviour::with_codec(
            FrameCodec::new(config.max_message_size, counters),
            [(CONSENSUS_PROTOCOL, ProtocolSupport::Full)],
            request_response::Config::default()
                .with_request_timeout(config.request_timeout)
                // Our in-flight messages plus the peer's, with room to spare; past this limit
                // request-response drops streams.
                .with_max_concurrent_streams(
                    config.max_in_flight_per_validator.saturating_mul(2) + 16,
                ),
        );

        let gossip_config = gossipsub::ConfigBuilder::default()
            .validation_mode(ValidationMode::Strict)
            .message_id_fn(order_message_id)
            .max_transmit_size(config.max_order_size + GOSSIP_ENVELOPE_OVERHEAD)
            .build()
            .map_err(|e| NetError::Gossip(e.to_string()))?;
        let mut gossip = gossipsub::Behaviour::new(
            MessageAuthenticity::Signed(config.keypair.clone()),
            gossip_config,
        )
        .map_err(|e| NetError::Gossip(e.to_string()))?;
        gossip
            .subscribe(topic)
            .map_err(|e| NetError::Gossip(e.to_string()))?;

        Ok(Self {
            allow,
            limits,
            pending_per_ip,
            consensus,
            gossip,
        })
    }
}
