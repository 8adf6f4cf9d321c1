//! The sending side of the adapter: a cheap, cloneable handle that queues commands for the event
//! loop.

use std::sync::Arc;

use libp2p::{Multiaddr, PeerId};
use tokio::sync::{
    mpsc::{self, error::TrySendError},
    oneshot,
};

use super::{
    config::ValidatorTable,
    error::{PublishError, SendError, Stopped},
    stats::{Counters, NetStats},
    validator::ValidatorIndex,
};

/// A command from a [`Client`] to the event loop.
#[derive(Debug)]
pub(crate) enum Command {
    /// Send one consensus message to one validator.
    Send { to: PeerId, bytes: Vec<u8> },
    /// Send one consensus message to every other validator.
    Broadcast { bytes: Vec<u8> },
    /// Publish an order on the order topic; `reply` carries gossipsub's verdict if wanted.
    Publish {
        bytes: Vec<u8>,
        reply: Option<oneshot::Sender<Result<(), PublishError>>>,
    },
    /// Report the currently connected validators.
    ConnectedValidators {
        reply: oneshot::Sender<Vec<ValidatorIndex>>,
    },
    /// Report the current listen addresses.
    ListenAddrs {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    /// Replace a validator's dial address and dial it now if it is not connected.
    SetValidatorAddr {
        index: ValidatorIndex,
        addr: Multiaddr,
    },
}

/// Handle for sending consensus messages and orders and for querying the adapter.
///
/// Every method only queues a command on a bounded queue; none waits for the network. The
/// `try_*` methods never wait at all and are what a synchronous consensus core calls; the `async`
/// methods wait for room in the queue. Consensus messages are fire-and-forget: delivery to a
/// validator that is not connected is dropped and counted (the consensus protocol tolerates
/// loss), and messages on different streams may arrive in any order.
///
/// The event loop stops when every `Client` clone has been dropped.
#[derive(Debug, Clone)]
pub struct Client {
    commands: mpsc::Sender<Command>,
    counters: Arc<Counters>,
    table: Arc<ValidatorTable>,
    local_peer_id: PeerId,
    max_message_size: usize,
    max_order_size: usize,
}

impl Client {
    pub(crate) fn new(
        commands: mpsc::Sender<Command>,
        counters: Arc<Counters>,
        table: Arc<ValidatorTable>,
        local_peer_id: PeerId,
        max_message_size: usize,
        max_order_size: usize,
    ) -> Self {
        Self {
            commands,
            counters,
            table,
            local_peer_id,
            max_message_size,
            max_order_size,
        }
    }

    /// The local libp2p identity.
    #[must_use]
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// The local validator index, if the local key is a genesis validator.
    #[must_use]
    pub fn local_validator(&self) -> Option<ValidatorIndex> {
        self.table.local()
    }

    /// The genesis validator table.
    #[must_use]
    pub fn validators(&self) -> &ValidatorTable {
        &self.table
    }

    /// A snapshot of the counters; never waits.
    #[must_use]
    pub fn stats(&self) -> NetStats {
        self.counters.snapshot()
    }

    /// Queues `bytes` for validator `to`, waiting for room in the command queue.
    ///
    /// # Cancel safety
    /// Cancel-safe: if the future is dropped before it completes, the message was not queued.
    ///
    /// # Errors
    /// [`SendError::UnknownValidator`], [`SendError::ToSelf`], [`SendError::TooLarge`], or
    /// [`SendError::Closed`] if the event loop has stopped.
    pub async fn send(&self, to: ValidatorIndex, bytes: Vec<u8>) -> Result<(), SendError> {
        let command = self.send_command(to, bytes)?;
        self.commands
            .send(command)
            .await
            .map_err(|_| SendError::Closed)
    }

    /// Queues `bytes` for validator `to` without waiting.
    ///
    /// # Errors
    /// As [`Client::send`], plus [`SendError::QueueFull`] if the command queue is full (the
    /// message is dropped).
    pub fn try_send(&self, to: ValidatorIndex, bytes: Vec<u8>) -> Result<(), SendError> {
        let command = self.send_command(to, bytes)?;
        self.commands.try_send(command).map_err(send_error)
    }

    /// Queues `bytes` for every other genesis validator, waiting for room in the command queue.
    ///
    /// # Cancel safety
    /// Cancel-safe: if the future is dropped before it completes, the message was not queued.
    ///
    /// # Errors
    /// [`SendError::TooLarge`], or [`SendError::Closed`] if the event loop has stopped.
    pub async fn broadcast(&self, bytes: Vec<u8>) -> Result<(), SendError> {
        self.check_message_size(&bytes)?;
        self.commands
            .send(Command::Broadcast { bytes })
            .await
            .map_err(|_| SendError::Closed)
    }

    /// Queues `bytes` for every other genesis validator without waiting.
    ///
    /// # Errors
    /// As [`Client::broadcast`], plus [`SendError::QueueFull`].
    pub fn try_broadcast(&self, bytes: Vec<u8>) -> Result<(), SendError> {
        self.check_message_size(&bytes)?;
        self.commands
            .try_send(Command::Broadcast { bytes })
            .map_err(send_error)
    }

    /// Publishes an order on the neighborhood's order topic and waits for gossipsub's verdict.
    ///
    /// # Cancel safety
    /// Not cancel-safe: once the command is queued, dropping the future does not withdraw the
    /// order; it may still be published, and its verdict is then only logged.
    ///
    /// # Errors
    /// [`PublishError::TooLarge`], [`PublishError::Duplicate`] (same bytes seen recently),
    /// [`PublishError::NoPeers`] (no connected peer subscribes yet), [`PublishError::Gossip`], or
    /// [`PublishError::Closed`].
    pub async fn publish_order(&self, bytes: Vec<u8>) -> Result<(), PublishError> {
        self.check_order_size(&bytes)?;
        let (reply, verdict) = oneshot::channel();
        self.commands
            .send(Command::Publish {
                bytes,
                reply: Some(reply),
            })
            .await
            .map_err(|_| PublishError::Closed)?;
        verdict.await.map_err(|_| PublishError::Closed)?
    }

    /// Queues an order for publication without waiting; gossipsub's verdict is logged and a
    /// successful publication counted in [`NetStats::orders_published`].
    ///
    /// # Errors
    /// [`PublishError::TooLarge`], [`PublishError::QueueFull`] or [`PublishError::Closed`].
    pub fn try_publish_order(&self, bytes: Vec<u8>) -> Result<(), PublishError> {
        self.check_order_size(&bytes)?;
        self.commands
            .try_send(Command::Publish { bytes, reply: None })
            .map_err(|e| match e {
                TrySendError::Full(_) => PublishError::QueueFull,
                TrySendError::Closed(_) => PublishError::Closed,
            })
    }

    /// The genesis validators currently connected, in index order.
    ///
    /// # Cancel safety
    /// Cancel-safe: the query has no effect.
    ///
    /// # Errors
    /// [`Stopped`] if the event loop has stopped.
    pub async fn connected_validators(&self) -> Result<Vec<ValidatorIndex>, Stopped> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::ConnectedValidators { reply })
            .await
            .map_err(|_| Stopped)?;
        answer.await.map_err(|_| Stopped)
    }

    /// The addresses the node currently listens on.
    ///
    /// # Cancel safety
    /// Cancel-safe: the query has no effect.
    ///
    /// # Errors
    /// [`Stopped`] if the event loop has stopped.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, Stopped> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::ListenAddrs { reply })
            .await
            .map_err(|_| Stopped)?;
        answer.await.map_err(|_| Stopped)
    }

    /// Replaces the address validator `index` is dialed at (the genesis address until then) and
    /// dials it at once if it is not connected, resetting its backoff. For a validator that moved,
    /// or a test whose ports are chosen by the OS.
    ///
    /// # Cancel safety
    /// Cancel-safe: if the future is dropped before it completes, nothing changed.
    ///
    /// # Errors
    /// [`SendError::UnknownValidator`], [`SendError::ToSelf`], or [`SendError::Closed`].
    pub async fn set_validator_addr(
        &self,
        index: ValidatorIndex,
        addr: Multiaddr,
    ) -> Result<(), SendError> {
        if self.table.local() == Some(index) {
            return Err(SendError::ToSelf(index));
        }
        if self.table.peer_of(index).is_none() {
            return Err(SendError::UnknownValidator(index));
        }
        self.commands
            .send(Command::SetValidatorAddr { index, addr })
            .await
            .map_err(|_| SendError::Closed)
    }

    fn send_command(&self, to: ValidatorIndex, bytes: Vec<u8>) -> Result<Command, SendError> {
        if self.table.local() == Some(to) {
            return Err(SendError::ToSelf(to));
        }
        let peer = self
            .table
            .peer_of(to)
            .ok_or(SendError::UnknownValidator(to))?;
        self.check_message_size(&bytes)?;
        Ok(Command::Send { to: peer, bytes })
    }

    fn check_message_size(&self, bytes: &[u8]) -> Result<(), SendError> {
        if bytes.len() > self.max_message_size {
            return Err(SendError::TooLarge {
                len: bytes.len(),
                max: self.max_message_size,
            });
        }
        Ok(())
    }

    fn check_order_size(&self, bytes: &[u8]) -> Result<(), PublishError> {
        if bytes.len() > self.max_order_size {
            return Err(PublishError::TooLarge {
                len: bytes.len(),
                max: self.max_order_size,
            });
        }
        Ok(())
    }
}

fn send_error(e: TrySendError<Command>) -> SendError {
    match e {
        TrySendError::Full(_) => SendError::QueueFull,
        TrySendError::Closed(_) => SendError::Closed,
    }
}
