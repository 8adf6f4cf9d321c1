//! Audit finding M4: a stranger holding half-open connections must not keep a genesis validator
//! from connecting. Real TCP + Noise + Yamux swarms on 127.0.0.1; the stranger dials from
//! 127.0.0.2 (also loopback on Linux), so the per-address bound can tell the two apart.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use libp2p::multiaddr::Protocol;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use voltmesh_consensus::net::{
    self, Event, Events, Keypair, Multiaddr, NetConfig, Validator, ValidatorIndex,
    MAX_PENDING_PER_IP,
};

/// Upper bound of every wait; generous because the machine is shared.
const WAIT: Duration = Duration::from_secs(20);
/// Half-open connections the stranger keeps open: twice the pending slots in total.
const STRANGER_CONNECTIONS: usize = 64;
/// Pending inbound connections a node allows in total (`net/behaviour.rs`).
const MAX_PENDING_TOTAL: usize = 32;

fn validator(key: &Keypair, addr: Multiaddr) -> Validator {
    Validator {
        public_key: key.public().try_into_ed25519().expect("ed25519 key"),
        addr,
    }
}

fn addr(port: u16) -> Multiaddr {
    format!("/ip4/127.0.0.1/tcp/{port}")
        .parse()
        .expect("valid multiaddr")
}

/// A started node: its client, events, task and TCP port.
struct Node {
    client: net::Client,
    events: Events,
    task: JoinHandle<()>,
    port: u16,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start(config: NetConfig) -> Node {
    let (client, mut events, event_loop) = net::new(config).expect("network starts");
    let task = tokio::spawn(event_loop.run());
    let port = timeout(WAIT, async {
        loop {
            if let Some(Event::Listening { address }) = events.recv().await {
                if let Some(port) = address.iter().find_map(|p| match p {
                    Protocol::Tcp(port) => Some(port),
                    _ => None,
                }) {
                    return port;
                }
            }
        }
    })
    .await
    .expect("the node listens");
    Node {
        client,
        events,
        task,
        port,
    }
}

/// One TCP connection to `to` from 127.0.0.2 that never says a word.
async fn silent_connection(to: SocketAddr) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind("127.0.0.2:0".parse().ok()?).ok()?;
    socket.connect(to).await.ok()
}

/// The stranger: `n` silent connections to `to`, each re-opened as soon as the node closes it
/// (handshake timeout or refusal), until the tasks are aborted. `opened` counts connections.
fn stranger(to: SocketAddr, n: usize, opened: &Arc<AtomicUsize>) -> Vec<JoinHandle<()>> {
    (0..n)
        .map(|_| {
            let opened = Arc::clone(opened);
            tokio::spawn(async move {
                loop {
                    let Some(mut stream) = silent_connection(to).await else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    opened.fetch_add(1, Ordering::Relaxed);
                    // Wait until the node closes it (read returns 0 or fails), then re-open.
                    let mut buf = [0u8; 256];
                    while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
                }
            })
        })
        .collect()
}

#[tokio::test]
async fn a_stranger_holding_half_open_connections_does_not_lock_out_a_validator() {
    let keys: Vec<Keypair> = (0..2).map(|_| net::keyfile::generate_keypair()).collect();
    // Node 0 cannot dial node 1 (nobody listens at port 1), so the only way the two meet is
    // node 1 dialling in: an inbound connection at node 0, the one the stranger competes with.
    let provisional: Vec<Validator> = keys.iter().map(|k| validator(k, addr(1))).collect();
    let mut listener = start(NetConfig::new(
        keys[0].clone(),
        addr(0),
        provisional.clone(),
        "test",
    ))
    .await;
    let target: SocketAddr = format!("127.0.0.1:{}", listener.port)
        .parse()
        .expect("socket address");

    // The stranger opens its connections and keeps them open and silent.
    let opened = Arc::new(AtomicUsize::new(0));
    let tasks = stranger(target, STRANGER_CONNECTIONS, &opened);
    // Every connection beyond what the node lets one address hold is refused by a limit; wait
    // until the node has refused that many (with or without the per-address bound: without it,
    // the total bound refuses the ones beyond 32).
    let refused_at_least =
        (STRANGER_CONNECTIONS - MAX_PENDING_TOTAL.max(MAX_PENDING_PER_IP)) as u64;
    timeout(WAIT, async {
        while listener.client.stats().connections_limited < refused_at_least {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the node processes the stranger's connections");

    // Now the genesis validator dials in, while the stranger still holds its connections.
    let mut genesis = provisional;
    genesis[0] = validator(&keys[0], addr(listener.port));
    let mut config = NetConfig::new(keys[1].clone(), addr(0), genesis, "test");
    config.redial_initial = Duration::from_millis(50);
    config.redial_max = Duration::from_millis(200);
    let _dialer = start(config).await;
    let connected = timeout(WAIT, async {
        loop {
            match listener.events.recv().await {
                Some(Event::PeerConnected { validator, .. }) => return validator,
                Some(_) => {}
                None => panic!("event loop stopped"),
            }
        }
    })
    .await
    .expect("the validator connects while the stranger holds its half-open connections");
    assert_eq!(connected, ValidatorIndex(1));
    assert!(
        opened.load(Ordering::Relaxed) >= STRANGER_CONNECTIONS,
        "the stranger kept its connections open"
    );
    for task in tasks {
        task.abort();
    }
}
