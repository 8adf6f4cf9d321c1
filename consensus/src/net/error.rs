//! Errors of the network adapter, one enum per concern.

use std::io;

use libp2p::PeerId;

use super::validator::ValidatorIndex;

/// A [`super::NetConfig`] that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The node key must be ed25519 (it doubles as the validator key).
    #[error("the node key is not an ed25519 key")]
    NotEd25519,
    /// The genesis validator list is empty.
    #[error("the genesis validator list is empty")]
    NoValidators,
    /// More validators than a [`ValidatorIndex`] can number.
    #[error("{0} validators do not fit a u16 index")]
    TooManyValidators(usize),
    /// The same key appears twice in the genesis validator list.
    #[error("validator {0} appears twice in the genesis validator list")]
    DuplicateValidator(PeerId),
    /// The neighborhood name is empty or contains `/` (it becomes part of a topic name).
    #[error("neighborhood name {0:?} must be non-empty and must not contain '/'")]
    BadNeighborhood(String),
    /// A size bound is zero or above its hard limit ([`super::MAX_MESSAGE_SIZE_LIMIT`],
    /// [`super::MAX_IN_FLIGHT_LIMIT`]).
    #[error("{name} = {value} is zero or above its hard limit")]
    BadSize {
        /// Name of the config field.
        name: &'static str,
        /// The rejected value.
        value: usize,
    },
    /// A queue capacity is zero.
    #[error("{0} must be at least 1")]
    ZeroCapacity(&'static str),
    /// `redial_initial` is zero or larger than `redial_max`.
    #[error("redial delays must satisfy 0 < redial_initial <= redial_max")]
    BadRedial,
    /// `request_timeout` is zero.
    #[error("request_timeout must be positive")]
    ZeroRequestTimeout,
}

/// Failure to build or start the network adapter.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The configuration was refused.
    #[error("invalid network config: {0}")]
    Config(#[from] ConfigError),
    /// The Noise security upgrade could not be set up with the node key.
    #[error("cannot set up the noise transport: {0}")]
    Noise(#[source] libp2p::noise::Error),
    /// The gossipsub behaviour could not be configured.
    #[error("cannot configure gossipsub: {0}")]
    Gossip(String),
    /// Listening on the configured address failed (address in use, unsupported protocol, ...).
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The configured listen address.
        addr: libp2p::Multiaddr,
        /// Why it failed.
        #[source]
        source: libp2p::TransportError<io::Error>,
    },
}

/// A consensus message that could not be queued for sending.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The target is not in the genesis validator list.
    #[error("{0} is not a genesis validator")]
    UnknownValidator(ValidatorIndex),
    /// The target is the local node; the consensus core handles its own messages.
    #[error("{0} is the local validator")]
    ToSelf(ValidatorIndex),
    /// The message is larger than `max_message_size`.
    #[error("message of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Length of the refused message.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The command queue is full (only from the `try_*` methods).
    #[error("the network command queue is full")]
    QueueFull,
    /// The event loop has stopped.
    #[error("the network event loop has stopped")]
    Closed,
}

/// An order that could not be published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The order is larger than `max_order_size`.
    #[error("order of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Length of the refused order.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The same bytes were already published or received recently (message id = hash of bytes).
    #[error("an order with the same bytes was already seen")]
    Duplicate,
    /// No connected peer subscribes to the order topic yet.
    #[error("no peer subscribes to the order topic")]
    NoPeers,
    /// Gossipsub refused the message for another reason.
    #[error("gossipsub refused the order: {0}")]
    Gossip(String),
    /// The command queue is full (only from the `try_*` methods).
    #[error("the network command queue is full")]
    QueueFull,
    /// The event loop has stopped.
    #[error("the network event loop has stopped")]
    Closed,
}

/// The event loop has stopped, so a query could not be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the network event loop has stopped")]
pub struct Stopped;

/// A node key that cannot be read, written, parsed or used as a libp2p identity. The key file
/// itself is the wire contract's ([`voltmesh_wire::key`]); only the libp2p conversions add kinds.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The key file or its text (I/O, hex, length, randomness): [`voltmesh_wire::key::KeyError`].
    #[error(transparent)]
    Key(#[from] voltmesh_wire::key::KeyError),
    /// The bytes are not a valid ed25519 key for libp2p.
    #[error("not a valid ed25519 key: {0}")]
    Invalid(#[source] libp2p::identity::DecodingError),
    /// The keypair is not ed25519.
    #[error("the keypair is not an ed25519 key")]
    NotEd25519,
}
