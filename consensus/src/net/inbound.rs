//! [`PerIpPending`]: a bound on the inbound connections one IP address may hold in their
//! handshake (audit finding M4).
//!
//! Every inbound connection is "pending" until its Noise handshake reveals the dialer's key, and
//! only then does the genesis allow-list refuse a stranger. `connection_limits` bounds pending
//! inbound connections in total ([`super::behaviour`]), so without a per-address bound anyone who
//! can reach the p2p port can hold every slot with half-open connections and keep genesis
//! validators from reconnecting. With at most [`MAX_PENDING_PER_IP`] per address, one address holds
//! a few slots and the others stay free for validators.
//!
//! This is a bound, not a firewall: many addresses (an IPv6 prefix, a botnet) can still fill the
//! slots. Operators should allow the p2p port only from the validators' addresses in genesis
//! (`consensus/README.md`, "Operating a node").

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    dummy, ConnectionDenied, ConnectionId, FromSwarm, ListenFailure, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

/// Inbound connections one IP address may have in their handshake at once.
pub const MAX_PENDING_PER_IP: usize = 4;

/// Refused because the dialer's address already has [`MAX_PENDING_PER_IP`] handshakes pending.
#[derive(Debug, thiserror::Error)]
#[error("{ip} already has {MAX_PENDING_PER_IP} inbound handshakes pending")]
pub struct TooManyPendingFromIp {
    /// The dialer's address.
    pub ip: IpAddr,
}

/// Counts pending inbound connections per remote IP address and refuses one beyond
/// [`MAX_PENDING_PER_IP`].
///
/// # Invariant
/// `by_ip[ip]` is the number of entries of `pending` with that address, and no entry is zero.
#[derive(Debug, Default)]
pub(crate) struct PerIpPending {
    pending: HashMap<ConnectionId, IpAddr>,
    by_ip: HashMap<IpAddr, usize>,
}

/// The IP address of a remote multiaddr (`/ip4/…` or `/ip6/…` first), if it has one.
fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

impl PerIpPending {
    /// The handshake of `connection` ended (established or failed): it no longer holds a slot.
    fn release(&mut self, connection: ConnectionId) {
        let Some(ip) = self.pending.remove(&connection) else {
            return;
        };
        if let Some(count) = self.by_ip.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                self.by_ip.remove(&ip);
            }
        }
    }

    /// Handshakes pending from `ip`.
    #[cfg(test)]
    fn pending_from(&self, ip: IpAddr) -> usize {
        self.by_ip.get(&ip).copied().unwrap_or(0)
    }

    fn admit(
        &mut self,
        connection: ConnectionId,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        let Some(ip) = ip_of(remote) else {
            return Ok(());
        };
        let count = self.by_ip.entry(ip).or_insert(0);
        if *count >= MAX_PENDING_PER_IP {
            return Err(ConnectionDenied::new(TooManyPendingFromIp { ip }));
        }
        *count += 1;
        self.pending.insert(connection, ip);
        Ok(())
    }
}

impl NetworkBehaviour for PerIpPending {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.admit(connection_id, remote_addr)
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _peer: PeerId,
        _local_addr: &Multiaddr,
        _remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.release(connection_id);
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        _peer: PeerId,
        _addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        if let FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) = event {
            self.release(connection_id);
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _connection: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(ip: &str) -> Multiaddr {
        format!("/ip4/{ip}/tcp/40000").parse().expect("addr")
    }

    #[test]
    fn one_address_holds_at_most_its_share_and_gets_it_back() {
        let mut gate = PerIpPending::default();
        let ids: Vec<ConnectionId> = (0..MAX_PENDING_PER_IP + 1)
            .map(|_| ConnectionId::new_unchecked(rand_free_id()))
            .collect();
        for id in &ids[..MAX_PENDING_PER_IP] {
            gate.admit(*id, &from("127.0.0.2"))
                .expect("within the share");
        }
        assert!(gate
            .admit(ids[MAX_PENDING_PER_IP], &from("127.0.0.2"))
            .is_err());
        let other = ConnectionId::new_unchecked(rand_free_id());
        gate.admit(other, &from("127.0.0.1"))
            .expect("another address is not affected");

        gate.release(ids[0]);
        assert_eq!(
            gate.pending_from("127.0.0.2".parse().unwrap()),
            MAX_PENDING_PER_IP - 1
        );
        gate.admit(ids[MAX_PENDING_PER_IP], &from("127.0.0.2"))
            .expect("a finished handshake frees its slot");
        for id in ids.iter().chain([&other]) {
            gate.release(*id);
        }
        assert!(gate.by_ip.is_empty() && gate.pending.is_empty());
        gate.release(other); // releasing twice changes nothing
        assert!(gate.by_ip.is_empty());
    }

    /// Distinct connection ids for the test (the swarm hands out its own in production).
    fn rand_free_id() -> usize {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(1_000_000);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }
}
