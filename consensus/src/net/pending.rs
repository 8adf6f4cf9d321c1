//! Inbound connections still in their handshake, bounded per remote IP address (audit M4).
//!
//! The allow-list can only refuse a key once the Noise handshake has revealed it, so before
//! that every dialer costs a pending-connection slot. libp2p's `connection_limits` bounds the
//! slots in total; this behaviour bounds them per IP address, so one host cannot take them all
//! and lock the validators out.
//!
//! # Invariants
//! - At most `per_ip` inbound connections from one IP address are in their handshake at once,
//!   or `per_genesis_ip` when the address is one a genesis validator is listed at (several
//!   validators may share a host, and their redials must never be the ones refused).
//! - A connection is counted from `handle_pending_inbound_connection` until it is established
//!   or fails (`ListenFailure`), whichever comes first.
//!
//! # Known limitations
//! An attacker on a genesis validator's host, or one with many addresses, still takes slots up
//! to the global bound; firewall the p2p port to the genesis validators' addresses
//! (`consensus/README.md`).

use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll};

use libp2p::core::{transport::PortUse, Endpoint};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    dummy, ConnectionDenied, ConnectionId, FromSwarm, ListenFailure, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

/// Why a pending inbound connection was refused.
#[derive(Debug, thiserror::Error)]
#[error("{pending} inbound connections from {ip} are already in their handshake")]
pub(crate) struct TooManyPendingFromIp {
    ip: IpAddr,
    pending: usize,
}

/// The first IP address in `addr`, if any.
pub(crate) fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

/// The per-IP bound on inbound handshakes.
#[derive(Debug)]
pub(crate) struct Behaviour {
    genesis_ips: BTreeSet<IpAddr>,
    per_ip: usize,
    per_genesis_ip: usize,
    pending: HashMap<ConnectionId, IpAddr>,
    per_address: HashMap<IpAddr, usize>,
}

impl Behaviour {
    pub(crate) fn new(genesis_ips: BTreeSet<IpAddr>, per_ip: usize, per_genesis_ip: usize) -> Self {
        Self {
            genesis_ips,
            per_ip,
            per_genesis_ip,
            pending: HashMap::new(),
            per_address: HashMap::new(),
        }
    }

    fn finished(&mut self, connection_id: ConnectionId) {
        let Some(ip) = self.pending.remove(&connection_id) else {
            return;
        };
        if let Some(count) = self.per_address.get_mut(&ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_address.remove(&ip);
            }
        }
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        let Some(ip) = ip_of(remote_addr) else {
            return Ok(());
        };
        let limit = if self.genesis_ips.contains(&ip) {
            self.per_genesis_ip
        } else {
            self.per_ip
        };
        let pending = self.per_address.get(&ip).copied().unwrap_or(0);
        if pending >= limit {
            return Err(ConnectionDenied::new(TooManyPendingFromIp { ip, pending }));
        }
        self.per_address.insert(ip, pending + 1);
        self.pending.insert(connection_id, ip);
        Ok(())
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _peer: PeerId,
        _local_addr: &Multiaddr,
        _remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.finished(connection_id);
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
            self.finished(connection_id);
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _connection_id: ConnectionId,
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

    fn addr(text: &str) -> Multiaddr {
        text.parse().expect("multiaddr")
    }

    #[test]
    fn one_address_cannot_take_more_than_its_share() {
        let genesis: BTreeSet<IpAddr> = ["10.0.0.1".parse().expect("ip")].into_iter().collect();
        let mut limits = Behaviour::new(genesis, 2, 3);
        let local = addr("/ip4/10.0.0.9/tcp/7000");
        let stranger = addr("/ip4/192.0.2.7/tcp/5555");
        let validator = addr("/ip4/10.0.0.1/tcp/6000");
        let mut next = 0..;
        let mut try_from = |limits: &mut Behaviour, remote: &Multiaddr| {
            let id = ConnectionId::new_unchecked(next.next().expect("endless"));
            limits
                .handle_pending_inbound_connection(id, &local, remote)
                .map(|()| id)
        };
        let first = try_from(&mut limits, &stranger).expect("first");
        try_from(&mut limits, &stranger).expect("second");
        assert!(try_from(&mut limits, &stranger).is_err(), "third refused");
        for _ in 0..3 {
            try_from(&mut limits, &validator).expect("a genesis address has more room");
        }
        assert!(try_from(&mut limits, &validator).is_err());
        // A handshake that finishes frees its slot.
        let _ = limits.handle_established_inbound_connection(
            first,
            PeerId::random(),
            &local,
            &stranger,
        );
        try_from(&mut limits, &stranger).expect("room again");
    }
}
