//! End-to-end tests of the libp2p adapter: real TCP + Noise + Yamux swarms on 127.0.0.1 with
//! ports chosen by the OS. Every wait is bounded by [`WAIT`]; no test sleeps for correctness.

use std::{collections::BTreeMap, future::Future, time::Duration};

use tokio::{task::JoinHandle, time::timeout};
use voltmesh_consensus::net::{
    self, Client, Event, Events, Keypair, Multiaddr, NetConfig, PeerId, PublishError, SendError,
    Validator, ValidatorIndex,
};

/// Upper bound of every wait; generous because the machine is shared.
const WAIT: Duration = Duration::from_secs(20);
/// Poll interval of [`eventually`] (a wait on a counter, not a timing assumption).
const POLL: Duration = Duration::from_millis(20);

struct Node {
    client: Client,
    events: Events,
    task: JoinHandle<()>,
    addr: Multiaddr,
}

impl Node {
    /// Stops the node abruptly: the event loop future is dropped with its swarm.
    async fn stop(self) {
        self.task.abort();
        let _cancelled = self.task.await;
    }
}

fn any_port() -> Multiaddr {
    "/ip4/127.0.0.1/tcp/0".parse().expect("valid multiaddr")
}

/// A loopback address nobody listens on, used until the real address is known.
fn unknown_addr() -> Multiaddr {
    "/ip4/127.0.0.1/tcp/1".parse().expect("valid multiaddr")
}

fn validator(key: &Keypair, addr: Multiaddr) -> Validator {
    Validator {
        public_key: key.public().try_into_ed25519().expect("ed25519 key"),
        addr,
    }
}

fn keys(n: usize) -> Vec<Keypair> {
    (0..n).map(|_| net::keyfile::generate_keypair()).collect()
}

fn v(i: usize) -> ValidatorIndex {
    ValidatorIndex(u16::try_from(i).expect("small index"))
}

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out after {WAIT:?} waiting for {what}"))
}

/// Waits until `cond` holds, checking every [`POLL`], for at most [`WAIT`].
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    within(what, async {
        while !cond() {
            tokio::time::sleep(POLL).await;
        }
    })
    .await;
}

/// Next event for which `pick` returns `Some`; other events are passed to `seen`.
async fn next_where<T>(
    what: &str,
    events: &mut Events,
    mut pick: impl FnMut(&Event) -> Option<T>,
    mut seen: impl FnMut(Event),
) -> T {
    within(what, async {
        loop {
            let event = events.recv().await.expect("event loop running");
            if let Some(found) = pick(&event) {
                return found;
            }
            seen(event);
        }
    })
    .await
}

/// Sends `bytes` through `client` to validator `to`, whose events are `events`, and waits until
/// `to` receives exactly these bytes (other events are dropped); returns the origin `to` saw.
async fn send_and_hear(
    client: &Client,
    to: ValidatorIndex,
    events: &mut Events,
    bytes: &[u8],
    what: &str,
) -> ValidatorIndex {
    client.send(to, bytes.to_vec()).await.expect("queued");
    let (from, _, _) = next_where(
        what,
        events,
        |e| message_from(e).filter(|(_, _, b)| b == bytes),
        drop,
    )
    .await;
    from
}

/// Starts one node and waits for its listen address.
async fn start(config: NetConfig) -> Node {
    let (client, mut events, event_loop) = net::new(config).expect("network starts");
    let task = tokio::spawn(event_loop.run());
    let addr = next_where(
        "the listen address",
        &mut events,
        |e| match e {
            Event::Listening { address } => Some(address.clone()),
            _ => None,
        },
        drop,
    )
    .await;
    Node {
        client,
        events,
        task,
        addr,
    }
}

/// Starts `keys.len()` validators on OS-chosen ports, tells each the others' addresses and
/// waits until every node has reported every other as connected.
async fn mesh(keys: &[Keypair], tweak: impl Fn(usize, &mut NetConfig)) -> Vec<Node> {
    let genesis: Vec<Validator> = keys.iter().map(|k| validator(k, unknown_addr())).collect();
    let mut nodes = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let mut config = NetConfig::new(key.clone(), any_port(), genesis.clone(), "test");
        tweak(i, &mut config);
        nodes.push(start(config).await);
    }
    let addrs: Vec<Multiaddr> = nodes.iter().map(|n| n.addr.clone()).collect();
    for (i, node) in nodes.iter().enumerate() {
        for (j, addr) in addrs.iter().enumerate() {
            if i != j {
                node.client
                    .set_validator_addr(v(j), addr.clone())
                    .await
                    .expect("known validator");
            }
        }
    }
    for (i, node) in nodes.iter_mut().enumerate() {
        wait_connected(
            node,
            keys.len() - 1,
            &format!("node {i} to see the full mesh"),
        )
        .await;
    }
    nodes
}

async fn wait_connected(node: &mut Node, count: usize, what: &str) {
    let mut up = std::collections::BTreeSet::new();
    within(what, async {
        while up.len() < count {
            match node.events.recv().await.expect("event loop running") {
                Event::PeerConnected { validator, .. } => {
                    up.insert(validator);
                }
                Event::PeerDisconnected { validator, .. } => {
                    up.remove(&validator);
                }
                _ => {}
            }
        }
    })
    .await;
}

fn message_from(event: &Event) -> Option<(ValidatorIndex, PeerId, Vec<u8>)> {
    match event {
        Event::Message {
            from,
            peer_id,
            bytes,
        } => Some((*from, *peer_id, bytes.clone())),
        _ => None,
    }
}

#[tokio::test]
async fn broadcast_reaches_every_other_validator_once_with_authenticated_origin() {
    let keys = keys(4);
    let mut nodes = mesh(&keys, |_, _| {}).await;

    for round in 0..2 {
        for (i, node) in nodes.iter().enumerate() {
            node.client
                .broadcast(format!("round {round} from {i}").into_bytes())
                .await
                .expect("queued");
        }
        for (i, node) in nodes.iter_mut().enumerate() {
            let mut got: BTreeMap<ValidatorIndex, Vec<u8>> = BTreeMap::new();
            while got.len() < 3 {
                let (from, peer, bytes) = next_where(
                    &format!("node {i} to receive round {round}"),
                    &mut node.events,
                    message_from,
                    drop,
                )
                .await;
                assert_ne!(from, v(i), "a node never receives its own broadcast");
                assert_eq!(peer, keys[from.0 as usize].public().to_peer_id());
                let expected = format!("round {round} from {}", from.0).into_bytes();
                assert_eq!(bytes, expected, "payload matches the authenticated sender");
                assert!(
                    got.insert(from, bytes).is_none(),
                    "{from} delivered twice to node {i}"
                );
            }
        }
    }
    for (i, node) in nodes.iter().enumerate() {
        let stats = node.client.stats();
        assert_eq!(
            stats.messages_received, 6,
            "node {i}: exactly two rounds of three"
        );
        assert_eq!(stats.messages_sent, 6, "node {i}");
        assert_eq!(stats.connected_validators, 3, "node {i}");
        assert_eq!(stats.messages_not_connected, 0, "node {i}");
        assert_eq!(
            node.client
                .connected_validators()
                .await
                .expect("running")
                .len(),
            3
        );
        assert_eq!(
            node.client.listen_addrs().await.expect("running"),
            vec![node.addr.clone()]
        );
    }
    // Point-to-point: only the addressee receives it.
    nodes[2]
        .client
        .send(v(1), b"just for 1".to_vec())
        .await
        .expect("queued");
    let (from, _, bytes) = next_where(
        "the direct message",
        &mut nodes[1].events,
        message_from,
        drop,
    )
    .await;
    assert_eq!((from, bytes.as_slice()), (v(2), &b"just for 1"[..]));
    assert_eq!(
        nodes[2].client.try_send(v(2), vec![1]),
        Err(SendError::ToSelf(v(2)))
    );
    assert_eq!(
        nodes[2].client.try_send(v(9), vec![1]),
        Err(SendError::UnknownValidator(v(9)))
    );
    assert_eq!(
        nodes[2]
            .client
            .set_validator_addr(v(9), unknown_addr())
            .await,
        Err(SendError::UnknownValidator(v(9)))
    );
    eventually("every message acknowledged", || {
        nodes
            .iter()
            .map(|n| n.client.stats().messages_acked)
            .sum::<u64>()
            == 25
    })
    .await;
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test]
async fn non_genesis_key_is_refused_and_never_heard() {
    let keys = keys(2);
    let mut nodes = mesh(&keys, |_, _| {}).await;
    let genesis: Vec<Validator> = keys
        .iter()
        .zip(&nodes)
        .map(|(k, n)| validator(k, n.addr.clone()))
        .collect();

    // The intruder knows the genesis and the addresses, but its key is not a validator.
    let intruder_key = net::keyfile::generate_keypair();
    let intruder_peer = intruder_key.public().to_peer_id();
    let mut config = NetConfig::new(intruder_key, any_port(), genesis, "test");
    config.redial_initial = Duration::from_millis(20);
    config.redial_max = Duration::from_millis(100);
    let intruder = start(config).await;
    assert_eq!(intruder.client.local_validator(), None);

    within(
        "the validators to refuse the intruder's dials and redials",
        async {
            loop {
                let denied: u64 = nodes
                    .iter()
                    .map(|n| n.client.stats().connections_denied)
                    .sum();
                if denied >= 4 {
                    break;
                }
                // Keep trying to inject while the intruder redials.
                let _ = intruder.client.try_broadcast(b"forged".to_vec());
                let _ = intruder.client.try_publish_order(b"forged order".to_vec());
                tokio::time::sleep(POLL).await;
            }
        },
    )
    .await;

    nodes[1]
        .client
        .broadcast(b"genuine".to_vec())
        .await
        .expect("queued");
    let mut before = Vec::new();
    let (from, peer, _) = next_where(
        "the genuine message",
        &mut nodes[0].events,
        |e| message_from(e).filter(|(_, _, b)| b == b"genuine"),
        |e| before.push(e),
    )
    .await;
    assert_eq!((from, peer), (v(1), keys[1].public().to_peer_id()));
    for event in &before {
        match event {
            Event::Message { peer_id, .. }
            | Event::Order { peer_id, .. }
            | Event::PeerConnected { peer_id, .. }
            | Event::PeerDisconnected { peer_id, .. } => {
                assert_ne!(
                    *peer_id, intruder_peer,
                    "intruder leaked through: {event:?}"
                );
            }
            Event::Listening { .. } => {}
        }
    }
    for (i, node) in nodes.iter().enumerate() {
        let stats = node.client.stats();
        assert_eq!(
            stats.messages_received,
            u64::from(i == 0),
            "only the genuine message: {stats:?}"
        );
        assert_eq!(stats.orders_received, 0);
        assert_eq!(stats.connected_validators, 1);
    }
    let intruder_stats = intruder.client.stats();
    assert_eq!(
        intruder_stats.messages_acked, 0,
        "no forged message was ever read"
    );
    assert_eq!(
        intruder_stats.orders_published, 0,
        "no validator subscribed for it"
    );
    intruder.stop().await;
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test]
async fn oversized_message_is_rejected_counted_and_the_link_survives() {
    const SMALL_LIMIT: usize = 64 * 1024;
    let keys = keys(2);
    // Node 0 may send up to 1 MiB; node 1 accepts at most 64 KiB.
    let mut nodes = mesh(&keys, |i, c| {
        c.max_message_size = if i == 0 { 1024 * 1024 } else { SMALL_LIMIT };
    })
    .await;

    assert_eq!(
        nodes[1].client.try_send(v(0), vec![0; SMALL_LIMIT + 1]),
        Err(SendError::TooLarge {
            len: SMALL_LIMIT + 1,
            max: SMALL_LIMIT
        }),
        "the sender's own limit applies locally"
    );

    nodes[0]
        .client
        .send(v(1), vec![0xAB; SMALL_LIMIT + 1])
        .await
        .expect("within the sender's limit");
    let receiver = nodes[1].client.clone();
    eventually("the receiver to count the oversized frame", || {
        receiver.stats().messages_oversized == 1
    })
    .await;
    let sender = nodes[0].client.clone();
    eventually("the sender to see the failure", || {
        sender.stats().messages_failed == 1
    })
    .await;

    nodes[0]
        .client
        .send(v(1), vec![7; SMALL_LIMIT])
        .await
        .expect("queued");
    let mut before = Vec::new();
    let (from, _, bytes) = next_where(
        "a message at the limit after the rejection",
        &mut nodes[1].events,
        message_from,
        |e| before.push(e),
    )
    .await;
    assert_eq!(from, v(0));
    assert_eq!(bytes, vec![7; SMALL_LIMIT]);
    assert!(
        !before
            .iter()
            .any(|e| matches!(e, Event::PeerDisconnected { .. })),
        "the connection survived: {before:?}"
    );
    let stats = nodes[1].client.stats();
    assert_eq!(stats.messages_received, 1);
    assert_eq!(stats.messages_oversized, 1);
    assert_eq!(stats.connected_validators, 1);
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test]
async fn restarted_validator_is_redialed_and_hears_again() {
    let keys = keys(3);
    let tweak = |_: usize, c: &mut NetConfig| {
        c.redial_initial = Duration::from_millis(50);
        c.redial_max = Duration::from_millis(500);
    };
    let mut nodes = mesh(&keys, tweak).await;
    // Let the redials left over from the mesh set-up (dials to unknown addresses) run out, so
    // that only the reaction to the stop can reconnect the restarted node.
    let clients: Vec<Client> = nodes.iter().map(|n| n.client.clone()).collect();
    eventually("no redial pending", || {
        clients.iter().all(|c| c.stats().redials_pending == 0)
    })
    .await;
    let restarted = nodes.pop().expect("three nodes");
    let port_addr = restarted.addr.clone();
    let dials_before: Vec<u64> = nodes.iter().map(|n| n.client.stats().dials).collect();
    restarted.stop().await;

    for (i, node) in nodes.iter_mut().enumerate() {
        next_where(
            &format!("node {i} to notice the stop"),
            &mut node.events,
            |e| {
                matches!(e, Event::PeerDisconnected { validator, .. } if *validator == v(2))
                    .then_some(())
            },
            drop,
        )
        .await;
    }

    // Same key, same port; it does not know where the others are, so only their redials can
    // reconnect it.
    let genesis: Vec<Validator> = keys.iter().map(|k| validator(k, unknown_addr())).collect();
    let mut config = NetConfig::new(keys[2].clone(), port_addr.clone(), genesis, "test");
    tweak(2, &mut config);
    let mut back = start(config).await;
    assert_eq!(back.addr, port_addr, "restarted on the same port");

    for (i, node) in nodes.iter_mut().enumerate() {
        next_where(
            &format!("node {i} to redial the restarted validator"),
            &mut node.events,
            |e| {
                matches!(e, Event::PeerConnected { validator, .. } if *validator == v(2))
                    .then_some(())
            },
            drop,
        )
        .await;
        assert!(
            node.client.stats().dials > dials_before[i],
            "node {i} redialed"
        );
    }
    wait_connected(&mut back, 2, "the restarted node to see both peers").await;

    nodes[0]
        .client
        .broadcast(b"after restart".to_vec())
        .await
        .expect("queued");
    let (from, _, bytes) = next_where(
        "the message after restart",
        &mut back.events,
        message_from,
        drop,
    )
    .await;
    assert_eq!((from, bytes.as_slice()), (v(0), &b"after restart"[..]));
    let from = send_and_hear(
        &back.client,
        v(1),
        &mut nodes[1].events,
        b"hello again",
        "the reply",
    )
    .await;
    assert_eq!(from, v(2));

    back.stop().await;
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test]
async fn gossiped_order_reaches_every_node_once() {
    let keys = keys(4);
    let mut nodes = mesh(&keys, |_, _| {}).await;
    let clients: Vec<Client> = nodes.iter().map(|n| n.client.clone()).collect();
    eventually("every node to see three order subscribers", || {
        clients.iter().all(|c| c.stats().order_topic_peers == 3)
    })
    .await;

    nodes[0]
        .client
        .publish_order(b"order-1".to_vec())
        .await
        .expect("published");
    // Wait for order-1 everywhere before the marker: gossip gives no ordering guarantee
    // between different publishers.
    for (i, node) in nodes.iter_mut().enumerate().skip(1) {
        let from = next_where(
            &format!("node {i} to receive order-1"),
            &mut node.events,
            |e| match e {
                Event::Order { from, bytes, .. } if bytes == b"order-1" => Some(*from),
                _ => None,
            },
            drop,
        )
        .await;
        assert_eq!(from, v(0), "origin is the signing publisher");
    }
    assert_eq!(
        nodes[1].client.publish_order(b"order-1".to_vec()).await,
        Err(PublishError::Duplicate),
        "same bytes, same message id: suppressed"
    );
    nodes[2]
        .client
        .publish_order(b"order-2".to_vec())
        .await
        .expect("published");
    for (i, node) in nodes.iter_mut().enumerate() {
        if i == 2 {
            continue;
        }
        let mut orders = Vec::new();
        let from = next_where(
            &format!("node {i} to receive order-2"),
            &mut node.events,
            |e| match e {
                Event::Order { from, bytes, .. } if bytes == b"order-2" => Some(*from),
                _ => None,
            },
            |e| orders.push(e),
        )
        .await;
        assert_eq!(from, v(2));
        assert!(
            !orders.iter().any(|e| matches!(e, Event::Order { .. })),
            "node {i} got an extra order: {orders:?}"
        );
    }
    let received: Vec<u64> = nodes
        .iter()
        .map(|n| n.client.stats().orders_received)
        .collect();
    assert_eq!(
        received,
        vec![1, 2, 1, 2],
        "each order once, never one's own"
    );
    assert_eq!(nodes[0].client.stats().orders_published, 1);
    assert_eq!(
        nodes[3]
            .client
            .try_publish_order(vec![0; net::DEFAULT_MAX_ORDER_SIZE + 1]),
        Err(PublishError::TooLarge {
            len: net::DEFAULT_MAX_ORDER_SIZE + 1,
            max: net::DEFAULT_MAX_ORDER_SIZE
        })
    );
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test]
async fn full_inbound_queue_drops_and_counts_without_stalling() {
    const CAPACITY: usize = 4;
    const SENT: u64 = 40;
    let keys = keys(2);
    let mut nodes = mesh(&keys, |i, c| {
        if i == 1 {
            c.message_capacity = CAPACITY;
        }
    })
    .await;

    // Node 1's app reads nothing while node 0 floods it.
    for k in 0..SENT {
        nodes[0]
            .client
            .send(v(1), k.to_be_bytes().to_vec())
            .await
            .expect("queued");
    }
    let receiver = nodes[1].client.clone();
    eventually("every message queued or dropped", || {
        let s = receiver.stats();
        s.messages_received + s.messages_dropped_full == SENT
    })
    .await;
    let stats = receiver.stats();
    assert!(stats.messages_received <= CAPACITY as u64, "{stats:?}");
    assert!(
        stats.messages_dropped_full >= SENT - CAPACITY as u64,
        "{stats:?}"
    );

    // The swarm never waited on the app: every message was acknowledged.
    let sender = nodes[0].client.clone();
    eventually("every message acknowledged", || {
        sender.stats().messages_acked == SENT
    })
    .await;

    // What was queued is intact and in the queue.
    let mut queued = 0;
    while let Ok(event) = nodes[1].events.try_recv() {
        if let Event::Message { from, bytes, .. } = event {
            assert_eq!(from, v(0));
            assert_eq!(bytes.len(), 8);
            queued += 1;
        }
    }
    assert_eq!(queued, stats.messages_received);

    let sender = nodes[0].client.clone();
    let flood = "a message after the flood";
    send_and_hear(
        &sender,
        v(1),
        &mut nodes[1].events,
        b"after the flood",
        flood,
    )
    .await;
    for node in nodes {
        node.stop().await;
    }
}

/// Audit M1: inbound consensus messages are queued per validator and drained round-robin, so a
/// validator that floods only fills its own share: another validator's messages, sent after the
/// flood while the reader is busy, are still queued and read.
#[tokio::test]
async fn a_flooding_validator_does_not_crowd_out_another() {
    const CAPACITY: usize = 8; // four per other validator
    const FLOOD: u64 = 40;
    let keys = keys(3);
    let mut nodes = mesh(&keys, |i, c| {
        if i == 2 {
            c.message_capacity = CAPACITY;
        }
    })
    .await;

    // Node 2's app reads nothing while node 0 floods it.
    for k in 0..FLOOD {
        nodes[0]
            .client
            .send(v(2), k.to_be_bytes().to_vec())
            .await
            .expect("queued");
    }
    let receiver = nodes[2].client.clone();
    eventually("the flood queued or dropped", || {
        let s = receiver.stats();
        s.messages_received + s.messages_dropped_full == FLOOD
    })
    .await;

    // Then node 1 speaks: its messages are not dropped for node 0's flood.
    let from_1: Vec<Vec<u8>> = (0..3u8).map(|k| vec![0xa0 + k]).collect();
    for bytes in &from_1 {
        nodes[1]
            .client
            .send(v(2), bytes.clone())
            .await
            .expect("queued");
    }
    eventually("node 1's messages queued or dropped", || {
        let s = receiver.stats();
        s.messages_received + s.messages_dropped_full == FLOOD + 3
    })
    .await;
    let mut heard = Vec::new();
    let mut flood_heard = 0;
    while let Ok(event) = nodes[2].events.try_recv() {
        match message_from(&event) {
            Some((from, _, bytes)) if from == v(1) => heard.push(bytes),
            Some((from, _, _)) if from == v(0) => flood_heard += 1,
            _ => {}
        }
    }
    assert_eq!(heard, from_1, "node 1 was crowded out");
    assert!(
        flood_heard <= CAPACITY / 2,
        "node 0 took more than its share"
    );
    for node in nodes {
        node.stop().await;
    }
}

/// Keeps `count` TCP connections from `source` to `target` open without ever starting a
/// handshake, reopening any that the target closes, until the returned task is aborted.
fn hold_half_open(
    source: std::net::IpAddr,
    target: std::net::SocketAddr,
    count: usize,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut held: Vec<tokio::net::TcpStream> = Vec::new();
        loop {
            held.retain(|stream| {
                let mut byte = [0u8; 1];
                matches!(stream.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            });
            while held.len() < count {
                let Ok(socket) = tokio::net::TcpSocket::new_v4() else {
                    break;
                };
                if socket.bind(std::net::SocketAddr::new(source, 0)).is_err() {
                    break;
                }
                match socket.connect(target).await {
                    Ok(stream) => held.push(stream),
                    Err(_) => break,
                }
            }
            tokio::time::sleep(POLL).await;
        }
    })
}

fn socket_addr(addr: &Multiaddr) -> std::net::SocketAddr {
    use libp2p::multiaddr::Protocol;
    let mut ip = None;
    let mut port = None;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(a) => ip = Some(std::net::IpAddr::V4(a)),
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    std::net::SocketAddr::new(ip.expect("ip4"), port.expect("tcp port"))
}

/// Audit M4: half-open connections (TCP open, no handshake) from one address cannot take every
/// pending-handshake slot: a genesis validator dialing in still connects. The victim does not
/// know the validator's address, so only the validator's inbound dial can link them. The flood
/// comes from 127.0.0.1 (a genesis validator's address here, so it gets the larger allowance;
/// more than the old global bound of 32) and from 127.0.0.2 (any other address: a small one).
#[tokio::test]
async fn half_open_connections_do_not_lock_a_validator_out() {
    let keys = keys(2);
    let genesis: Vec<Validator> = keys.iter().map(|k| validator(k, unknown_addr())).collect();
    let mut victim = start(NetConfig::new(
        keys[0].clone(),
        any_port(),
        genesis.clone(),
        "test",
    ))
    .await;
    let target = socket_addr(&victim.addr);
    let floods = [
        hold_half_open("127.0.0.1".parse().expect("ip"), target, 48),
        hold_half_open("127.0.0.2".parse().expect("ip"), target, 100),
    ];
    // Let the flood take its slots first (the flood keeps them; this only orders the start).
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut genesis_1 = genesis;
    genesis_1[0].addr = victim.addr.clone();
    let mut dialer = start(NetConfig::new(
        keys[1].clone(),
        any_port(),
        genesis_1,
        "test",
    ))
    .await;
    wait_connected(&mut dialer, 1, "the validator to connect despite the flood").await;
    wait_connected(&mut victim, 1, "the victim to see the validator").await;
    let client = dialer.client.clone();
    send_and_hear(
        &client,
        v(0),
        &mut victim.events,
        b"through the flood",
        "a message through the flood",
    )
    .await;
    for flood in floods {
        flood.abort();
    }
    victim.stop().await;
    dialer.stop().await;
}

#[tokio::test]
async fn burst_beyond_the_stream_window_waits_in_the_outbox() {
    const BURST: u64 = 500;
    let keys = keys(2);
    let mut nodes = mesh(&keys, |_, _| {}).await;
    // Far more than request-response's concurrent-stream limit at once.
    for k in 0..BURST {
        nodes[0]
            .client
            .try_send(v(1), k.to_be_bytes().to_vec())
            .expect("command queue has room");
    }
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < BURST as usize {
        let (from, _, bytes) =
            next_where("the whole burst", &mut nodes[1].events, message_from, drop).await;
        assert_eq!(from, v(0));
        let k = u64::from_be_bytes(bytes.try_into().expect("8 bytes"));
        assert!(seen.insert(k), "message {k} delivered twice");
    }
    let stats = nodes[0].client.stats();
    assert_eq!(stats.messages_failed, 0, "{stats:?}");
    assert_eq!(stats.messages_outbox_full, 0, "{stats:?}");
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test]
async fn full_outbox_drops_and_counts() {
    const SENT: u64 = 20;
    let keys = keys(2);
    let mut nodes = mesh(&keys, |i, c| {
        if i == 0 {
            c.max_in_flight_per_validator = 2;
            c.outbox_messages_per_validator = 3;
        }
    })
    .await;
    for k in 0..SENT {
        nodes[0]
            .client
            .try_send(v(1), k.to_be_bytes().to_vec())
            .expect("command queue has room");
    }
    let (sender, receiver) = (nodes[0].client.clone(), nodes[1].client.clone());
    eventually("every message delivered or refused", || {
        receiver.stats().messages_received + sender.stats().messages_outbox_full == SENT
    })
    .await;
    let stats = sender.stats();
    assert!(stats.messages_outbox_full >= 1, "{stats:?}");
    assert_eq!(stats.messages_failed, 0, "{stats:?}");
    assert_eq!(stats.messages_sent, receiver.stats().messages_received);
    let drained = "a message once the outbox drained";
    send_and_hear(&sender, v(1), &mut nodes[1].events, b"still open", drained).await;
    for node in nodes {
        node.stop().await;
    }
}
