//! Configuration of the network adapter: the local key, where to listen, the genesis validator
//! set and the bounds of every queue.

use std::{collections::HashMap, time::Duration};

use libp2p::{
    identity::{ed25519, Keypair},
    Multiaddr, PeerId,
};

use super::error::ConfigError;
use super::validator::{Validator, ValidatorIndex};

/// Default cap on one consensus message (4 MiB), enforced when sending and when receiving.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;
/// Default cap on one gossiped order (64 KiB).
pub const DEFAULT_MAX_ORDER_SIZE: usize = 64 * 1024;
/// Hard upper bound for `max_message_size`: frames carry a `u32` length prefix and we refuse to
/// buffer more than this in one message.
pub const MAX_MESSAGE_SIZE_LIMIT: usize = 64 * 1024 * 1024;

/// Hard upper bound for `max_in_flight_per_validator` (each in-flight message is a stream).
pub const MAX_IN_FLIGHT_LIMIT: usize = 1024;

/// Everything [`super::new`] needs.
///
/// Build it with [`NetConfig::new`] (which fills the bounds with the `DEFAULT_*` values) and
/// adjust the public fields; [`super::new`] calls [`NetConfig::validate`].
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// The node's ed25519 key: libp2p identity and validator key at once.
    pub keypair: Keypair,
    /// Address to listen on, e.g. `/ip4/0.0.0.0/tcp/7000` (`/tcp/0` lets the OS choose).
    pub listen_addr: Multiaddr,
    /// Genesis validators; a validator's position in this list is its [`ValidatorIndex`]. The
    /// node lists them in the order of the consensus
    /// [`ValidatorSet`](crate::protocol::ValidatorSet), so that index is the protocol's (see
    /// `net/validator.rs`). The local node may or may not be in this list (a node outside it can
    /// still dial, but is refused by the validators).
    pub validators: Vec<Validator>,
    /// Neighborhood name; orders are gossiped on the topic `voltmesh/<neighborhood>/orders`.
    pub neighborhood: String,
    /// Largest consensus message accepted, in bytes (sending a larger one is an error, receiving
    /// one resets that stream and is counted in [`super::NetStats::messages_oversized`]).
    pub max_message_size: usize,
    /// Largest gossiped order, in bytes.
    pub max_order_size: usize,
    /// Capacity of the command queue from [`super::Client`] to the event loop.
    pub command_capacity: usize,
    /// Capacity of the inbound consensus messages, split evenly into one queue per other
    /// validator (drained round-robin, so one validator's flood only fills its own queue; audit
    /// M1). When a validator's queue is full, its new messages are dropped and counted.
    pub message_capacity: usize,
    /// Capacity of the inbound queue of gossiped orders. When full, new orders are dropped and
    /// counted.
    pub order_capacity: usize,
    /// First redial delay after a validator connection drops or a dial fails.
    pub redial_initial: Duration,
    /// Largest redial delay; the delay doubles after each failure up to this value.
    pub redial_max: Duration,
    /// How long one consensus message may take to be delivered and acknowledged.
    pub request_timeout: Duration,
    /// Consensus messages on the wire (sent, not yet acknowledged) per validator; more wait in
    /// that validator's outbox.
    pub max_in_flight_per_validator: usize,
    /// Consensus messages that may wait in one validator's outbox; beyond that (or beyond
    /// `outbox_bytes_per_validator`) new messages are dropped and counted.
    pub outbox_messages_per_validator: usize,
    /// Bytes that may wait in one validator's outbox.
    pub outbox_bytes_per_validator: usize,
}

impl NetConfig {
    /// A config with the default bounds.
    #[must_use]
    pub fn new(
        keypair: Keypair,
        listen_addr: Multiaddr,
        validators: Vec<Validator>,
        neighborhood: impl Into<String>,
    ) -> Self {
        Self {
            keypair,
            listen_addr,
            validators,
            neighborhood: neighborhood.into(),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_order_size: DEFAULT_MAX_ORDER_SIZE,
            command_capacity: 1024,
            message_capacity: 4096,
            order_capacity: 4096,
            redial_initial: Duration::from_millis(100),
            redial_max: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            max_in_flight_per_validator: 32,
            outbox_messages_per_validator: 1024,
            outbox_bytes_per_validator: 64 * 1024 * 1024,
        }
    }

    /// The gossipsub topic orders travel on.
    #[must_use]
    pub fn order_topic(&self) -> String {
        format!("voltmesh/{}/orders", self.neighborhood)
    }

    /// Checks the config and returns the validator lookup table.
    ///
    /// # Errors
    /// [`ConfigError`] if the key is not ed25519, the validator list is empty or holds a key
    /// twice, the neighborhood name is empty or contains `/`, a capacity or outbox bound is zero,
    /// a size bound is zero or above [`MAX_MESSAGE_SIZE_LIMIT`], `max_in_flight_per_validator`
    /// is above [`MAX_IN_FLIGHT_LIMIT`], or the redial delays are zero or inverted.
    pub fn validate(&self) -> Result<ValidatorTable, ConfigError> {
        if self.keypair.clone().try_into_ed25519().is_err() {
            return Err(ConfigError::NotEd25519);
        }
        if self.validators.is_empty() {
            return Err(ConfigError::NoValidators);
        }
        if u16::try_from(self.validators.len()).is_err() {
            return Err(ConfigError::TooManyValidators(self.validators.len()));
        }
        if self.neighborhood.is_empty() || self.neighborhood.contains('/') {
            return Err(ConfigError::BadNeighborhood(self.neighborhood.clone()));
        }
        for (name, value) in [
            ("max_message_size", self.max_message_size),
            ("max_order_size", self.max_order_size),
        ] {
            if value == 0 || value > MAX_MESSAGE_SIZE_LIMIT {
                return Err(ConfigError::BadSize { name, value });
            }
        }
        for (name, value) in [
            ("command_capacity", self.command_capacity),
            ("message_capacity", self.message_capacity),
            ("order_capacity", self.order_capacity),
            (
                "max_in_flight_per_validator",
                self.max_in_flight_per_validator,
            ),
            (
                "outbox_messages_per_validator",
                self.outbox_messages_per_validator,
            ),
            (
                "outbox_bytes_per_validator",
                self.outbox_bytes_per_validator,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::ZeroCapacity(name));
            }
        }
        if self.redial_initial.is_zero() || self.redial_max < self.redial_initial {
            return Err(ConfigError::BadRedial);
        }
        if self.request_timeout.is_zero() {
            return Err(ConfigError::ZeroRequestTimeout);
        }
        if self.max_in_flight_per_validator > MAX_IN_FLIGHT_LIMIT {
            return Err(ConfigError::BadSize {
                name: "max_in_flight_per_validator",
                value: self.max_in_flight_per_validator,
            });
        }
        ValidatorTable::new(&self.validators, self.keypair.public().to_peer_id())
    }
}

/// Lookup from authenticated [`PeerId`] to [`ValidatorIndex`] and back.
///
/// Invariant: `by_peer` and `peers` describe the same bijection, and no key appears twice.
#[derive(Debug, Clone)]
pub struct ValidatorTable {
    peers: Vec<(PeerId, Multiaddr)>,
    keys: Vec<ed25519::PublicKey>,
    by_peer: HashMap<PeerId, ValidatorIndex>,
    local: Option<ValidatorIndex>,
}

impl ValidatorTable {
    fn new(validators: &[Validator], local_peer: PeerId) -> Result<Self, ConfigError> {
        let mut peers = Vec::with_capacity(validators.len());
        let mut by_peer = HashMap::with_capacity(validators.len());
        for (i, v) in validators.iter().enumerate() {
            let index = ValidatorIndex(
                u16::try_from(i).map_err(|_| ConfigError::TooManyValidators(validators.len()))?,
            );
            let peer_id = v.peer_id();
            if by_peer.insert(peer_id, index).is_some() {
                return Err(ConfigError::DuplicateValidator(peer_id));
            }
            peers.push((peer_id, v.addr.clone()));
        }
        let local = by_peer.get(&local_peer).copied();
        Ok(Self {
            peers,
            keys: validators.iter().map(|v| v.public_key.clone()).collect(),
            by_peer,
            local,
        })
    }

    /// Number of genesis validators.
    #[must_use]
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Always false for a validated table (validation refuses an empty list).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// The local node's index, if its key is a genesis validator.
    #[must_use]
    pub fn local(&self) -> Option<ValidatorIndex> {
        self.local
    }

    /// The validator index of an authenticated peer, if it is a genesis validator.
    #[must_use]
    pub fn index_of(&self, peer: &PeerId) -> Option<ValidatorIndex> {
        self.by_peer.get(peer).copied()
    }

    /// The peer id of a validator.
    #[must_use]
    pub fn peer_of(&self, index: ValidatorIndex) -> Option<PeerId> {
        self.entry(index).map(|(p, _)| *p)
    }

    /// The ed25519 public key of a validator (what its consensus signatures verify against).
    #[must_use]
    pub fn public_key(&self, index: ValidatorIndex) -> Option<&ed25519::PublicKey> {
        self.keys.get(usize::from(index.0))
    }

    /// The genesis address of a validator.
    #[must_use]
    pub fn addr_of(&self, index: ValidatorIndex) -> Option<&Multiaddr> {
        self.entry(index).map(|(_, a)| a)
    }

    fn entry(&self, index: ValidatorIndex) -> Option<&(PeerId, Multiaddr)> {
        self.peers.get(usize::from(index.0))
    }

    /// All validators other than the local node, in index order.
    pub fn remotes(&self) -> impl Iterator<Item = (ValidatorIndex, PeerId)> + '_ {
        self.peers
            .iter()
            .zip(0u16..)
            .map(|((p, _), i)| (ValidatorIndex(i), *p))
            .filter(move |(i, _)| Some(*i) != self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validator(kp: &Keypair, port: u16) -> Validator {
        Validator {
            public_key: kp.public().try_into_ed25519().expect("ed25519"),
            addr: format!("/ip4/127.0.0.1/tcp/{port}").parse().expect("addr"),
        }
    }

    #[test]
    fn table_maps_both_ways_and_finds_local() {
        let keys: Vec<Keypair> = (0..3).map(|_| Keypair::generate_ed25519()).collect();
        let vals = keys
            .iter()
            .enumerate()
            .map(|(i, k)| validator(k, 7000 + i as u16))
            .collect();
        let cfg = NetConfig::new(
            keys[1].clone(),
            "/ip4/127.0.0.1/tcp/0".parse().expect("a"),
            vals,
            "n",
        );
        let table = cfg.validate().expect("valid");
        assert_eq!(table.local(), Some(ValidatorIndex(1)));
        for (i, k) in keys.iter().enumerate() {
            let peer = k.public().to_peer_id();
            assert_eq!(
                table.index_of(&peer),
                Some(ValidatorIndex(u16::try_from(i).expect("small")))
            );
            assert_eq!(
                table.peer_of(ValidatorIndex(u16::try_from(i).expect("small"))),
                Some(peer)
            );
            let key = table
                .public_key(ValidatorIndex(u16::try_from(i).expect("small")))
                .expect("key");
            assert_eq!(libp2p::identity::PublicKey::from(key.clone()), k.public());
        }
        let remotes: Vec<_> = table.remotes().map(|(i, _)| i.0).collect();
        assert_eq!(remotes, vec![0, 2]);
        assert_eq!(table.peer_of(ValidatorIndex(3)), None);
        assert_eq!(cfg.order_topic(), "voltmesh/n/orders");
    }

    #[test]
    fn rejects_duplicates_and_bad_bounds() {
        let k = Keypair::generate_ed25519();
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/0".parse().expect("a");
        let dup = vec![validator(&k, 1), validator(&k, 2)];
        let cfg = NetConfig::new(k.clone(), addr.clone(), dup, "n");
        assert!(matches!(
            cfg.validate(),
            Err(ConfigError::DuplicateValidator(_))
        ));

        let mut cfg = NetConfig::new(k.clone(), addr.clone(), vec![validator(&k, 1)], "n");
        assert!(cfg.validate().is_ok());
        cfg.message_capacity = 0;
        assert!(matches!(
            cfg.validate(),
            Err(ConfigError::ZeroCapacity("message_capacity"))
        ));
        cfg.message_capacity = 1;
        cfg.max_message_size = MAX_MESSAGE_SIZE_LIMIT + 1;
        assert!(matches!(cfg.validate(), Err(ConfigError::BadSize { .. })));
        cfg.max_message_size = 1;
        cfg.neighborhood = "a/b".into();
        assert!(matches!(
            cfg.validate(),
            Err(ConfigError::BadNeighborhood(_))
        ));

        let empty = NetConfig::new(k, addr, vec![], "n");
        assert!(matches!(empty.validate(), Err(ConfigError::NoValidators)));
    }
}
