//! What the adapter reports to the node, on two bounded queues.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use futures::Stream;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::mpsc::{self, error::TryRecvError};

use super::inbound::ConsensusEvents;
use super::validator::ValidatorIndex;

/// An event from the network.
///
/// Origins are authenticated: `from` is the genesis validator whose key completed the Noise
/// handshake of the connection the message arrived on (for [`Event::Message`]), or whose key
/// signed the gossip message (for [`Event::Order`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The node listens on a new address (with `/tcp/0`, this carries the port the OS chose).
    Listening {
        /// The concrete listen address.
        address: Multiaddr,
    },
    /// The first connection to a genesis validator was established.
    PeerConnected {
        /// The validator.
        validator: ValidatorIndex,
        /// Its libp2p identity.
        peer_id: PeerId,
    },
    /// The last connection to a genesis validator closed; the adapter redials it.
    PeerDisconnected {
        /// The validator.
        validator: ValidatorIndex,
        /// Its libp2p identity.
        peer_id: PeerId,
    },
    /// A point-to-point or broadcast consensus message.
    Message {
        /// The authenticated sender.
        from: ValidatorIndex,
        /// The sender's libp2p identity.
        peer_id: PeerId,
        /// The opaque payload, at most `max_message_size` bytes.
        bytes: Vec<u8>,
    },
    /// An order received by gossip (never one this node published itself).
    Order {
        /// The validator that published it (the gossip signer).
        from: ValidatorIndex,
        /// Its libp2p identity.
        peer_id: PeerId,
        /// The opaque order bytes, at most `max_order_size` bytes.
        bytes: Vec<u8>,
    },
}

/// The receiving side of the adapter: consensus events ([`Event::Listening`],
/// [`Event::PeerConnected`], [`Event::PeerDisconnected`], [`Event::Message`]) and orders
/// ([`Event::Order`]) arrive on two separate bounded queues so that a flood of orders never
/// delays or pushes out consensus traffic. Reading prefers the consensus queue, which is itself
/// one bounded queue per validator drained round-robin ([`ConsensusEvents`]).
///
/// When a queue is full the event loop drops the new event and counts it (see
/// [`super::NetStats`]); it never waits for the reader.
#[derive(Debug)]
pub struct Events {
    consensus: ConsensusEvents,
    orders: mpsc::Receiver<Event>,
}

impl Events {
    pub(crate) fn new(consensus: ConsensusEvents, orders: mpsc::Receiver<Event>) -> Self {
        Self { consensus, orders }
    }

    /// Waits for the next event, consensus events first. Returns `None` once the event loop has
    /// stopped and both queues are drained.
    ///
    /// # Cancel safety
    /// Cancel-safe: if the future is dropped before it completes, no event is lost.
    pub async fn recv(&mut self) -> Option<Event> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    /// Takes the next queued event without waiting, consensus events first.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] if nothing is queued, [`TryRecvError::Disconnected`] if the event
    /// loop has stopped and both queues are drained.
    pub fn try_recv(&mut self) -> Result<Event, TryRecvError> {
        let consensus = match self.consensus.try_recv() {
            Ok(event) => return Ok(event),
            Err(e) => e,
        };
        match self.orders.try_recv() {
            Ok(event) => Ok(event),
            Err(TryRecvError::Disconnected) if consensus == TryRecvError::Disconnected => {
                Err(TryRecvError::Disconnected)
            }
            Err(_) => Err(TryRecvError::Empty),
        }
    }

    /// Splits into the consensus queue and the order queue, for a node that drains them from
    /// different tasks (the consensus driver and the mempool).
    #[must_use]
    pub fn split(self) -> (ConsensusEvents, mpsc::Receiver<Event>) {
        (self.consensus, self.orders)
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let consensus_closed = match self.consensus.poll_recv(cx) {
            Poll::Ready(Some(event)) => return Poll::Ready(Some(event)),
            Poll::Ready(None) => true,
            Poll::Pending => false,
        };
        match self.orders.poll_recv(cx) {
            Poll::Ready(Some(event)) => Poll::Ready(Some(event)),
            Poll::Ready(None) if consensus_closed => Poll::Ready(None),
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.get_mut().poll_event(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::inbound::fair_inbound;

    fn order(b: u8) -> Event {
        Event::Order {
            from: ValidatorIndex(0),
            peer_id: PeerId::random(),
            bytes: vec![b],
        }
    }

    #[tokio::test]
    async fn consensus_first_then_orders_then_end() {
        let (ctx, crx) = fair_inbound(2, 4);
        let (otx, orx) = mpsc::channel(4);
        let mut events = Events::new(crx, orx);
        assert_eq!(events.try_recv(), Err(TryRecvError::Empty));
        let o = order(1);
        otx.try_send(o.clone()).expect("room");
        let listening = Event::Listening {
            address: "/ip4/127.0.0.1/tcp/1".parse().expect("addr"),
        };
        assert!(ctx.try_push(listening.clone()), "room");
        assert_eq!(events.recv().await, Some(listening));
        assert_eq!(events.recv().await, Some(o));
        drop(ctx);
        assert_eq!(
            events.try_recv(),
            Err(TryRecvError::Empty),
            "orders still open"
        );
        drop(otx);
        assert_eq!(events.try_recv(), Err(TryRecvError::Disconnected));
        assert_eq!(events.recv().await, None);
    }
}
