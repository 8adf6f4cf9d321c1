//! Who the validators are, as the adapter sees them: one genesis entry ([`Validator`]) and the
//! index it is known by ([`ValidatorIndex`]).
//!
//! # One index for the node
//! [`ValidatorIndex`] is the consensus core's own type ([`crate::protocol::ValidatorIndex`]):
//! the adapter numbers validators by their position in [`super::NetConfig::validators`], and the
//! node (`node/driver.rs`) lists them in the order of the consensus
//! [`ValidatorSet`](crate::protocol::ValidatorSet) (keys sorted by bytes). So the index that
//! [`super::Event::Message`] reports as the sender, and that [`super::Client::send`] takes, is
//! the index the replica uses in `Input::Message` and `Output::Send`: no translation.
//!
//! The consensus core is untouched by this: its set, its order and every signed byte are as
//! before; only the adapter's numbering follows it.

use libp2p::{identity::ed25519, Multiaddr, PeerId};

pub use crate::protocol::ValidatorIndex;

/// One genesis validator: its ed25519 public key (which is also its libp2p identity) and the
/// address the others dial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validator {
    /// The validator's ed25519 public key.
    pub public_key: ed25519::PublicKey,
    /// Where the validator listens, e.g. `/ip4/127.0.0.1/tcp/7000`.
    pub addr: Multiaddr,
}

impl Validator {
    /// The libp2p peer id derived from [`Self::public_key`].
    #[must_use]
    pub fn peer_id(&self) -> PeerId {
        libp2p::identity::PublicKey::from(self.public_key.clone()).to_peer_id()
    }
}
