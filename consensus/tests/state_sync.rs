//! Issue 12 (snapshots and state sync), one real node in-process: it serves its latest
//! snapshot with a proof that `state_sync::verify` accepts against the validator set, and
//! refuses once the state, the proof or the certificate is tampered with; restarted, it starts
//! from its stored snapshot and goes on committing with the same ledger.

mod common;

use std::time::Duration;

use common::{http, write_node_with, RunningNode};
use voltmesh_consensus::net::keyfile;
use voltmesh_consensus::state_sync::{verify, StateSyncError};
use voltmesh_consensus::wire::api::SnapshotView;
use voltmesh_consensus::wire::client::{ClientError, NodeClient};
use voltmesh_consensus::wire::{Genesis, OrderTicket};
use voltmesh_engine::Side;

/// Unix seconds now (the test's own clock; the node reads its own).
#[allow(clippy::disallowed_methods)] // a test driving a real node reads the wall clock
fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The node's snapshot, read signed with its own (validator) key: snapshots are served to
/// validators' and billing keys only.
async fn snapshot(node: &RunningNode, dir: &std::path::Path) -> Option<SnapshotView> {
    let keypair = keyfile::load_keypair(&dir.join("node.key")).expect("node key");
    let key = ed25519_dalek::SigningKey::from_bytes(
        &keyfile::secret_key_bytes(&keypair).expect("secret key"),
    );
    NodeClient::new(&format!("http://{}", node.api))
        .expect("client")
        .with_read_key("solo", key)
        .snapshot()
        .await
        .ok()
        .flatten()
}

#[tokio::test]
async fn a_served_snapshot_verifies_and_tampering_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_node_with(dir.path(), "", &[("h1", 1), ("h2", 2)], 8);
    let genesis_text = std::fs::read(dir.path().join("genesis.json")).expect("genesis");
    let genesis = Genesis::from_json(&String::from_utf8_lossy(&genesis_text)).expect("genesis");
    let chain = voltmesh_consensus::chain_of(&genesis, &genesis_text).expect("chain");
    let node = RunningNode::start(&config);
    node.wait_height(1, Duration::from_secs(30)).await;
    // Two orders in a book whose gate is at least 30 s away.
    let interval = ((now_secs() + 35) / 20 + 1) * 20;
    for (seed, who, side, price) in [
        (1u8, "h1", Side::Sell, "0.10"),
        (2, "h2", Side::Buy, "0.25"),
    ] {
        let order = OrderTicket {
            participant: who.into(),
            interval_start: interval,
            id: "o1".into(),
            side,
            quantity_wh: 300,
            limit_price: price.parse().expect("price"),
            nonce: 1,
        }
        .sign("solo", &ed25519_dalek::SigningKey::from_bytes(&[seed; 32]));
        let body = serde_json::to_vec(&order).expect("json");
        let (status, answer) = http(node.api, "POST", "/v1/orders", &body)
            .await
            .expect("post");
        assert_eq!(status, 202, "{}", String::from_utf8_lossy(&answer));
    }
    // A snapshot taken after both orders committed.
    let served = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Some(s) = snapshot(&node, dir.path()).await {
                if s.state.contains("h1:o1") && s.state.contains("h2:o1") {
                    return s;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("a snapshot with both orders within 30 s");
    assert_eq!(served.height % 8, 0);
    // Unsigned, or signed by a participant's key, the snapshot is refused: it holds every
    // participant's open orders.
    let (status, _) = http(node.api, "GET", "/v1/snapshot", b"")
        .await
        .expect("get");
    assert_eq!(status, 401);
    let member = NodeClient::new(&format!("http://{}", node.api))
        .expect("client")
        .with_read_key("solo", ed25519_dalek::SigningKey::from_bytes(&[1; 32]));
    match member.snapshot().await {
        Err(ClientError::Rejected { kind, .. }) => assert_eq!(kind, "forbidden"),
        other => panic!(
            "a member read the snapshot: {:?}",
            other.map(|s| s.is_some())
        ),
    }
    let verified = verify(&chain, &genesis, &served).expect("the served snapshot checks out");
    assert_eq!(verified.block.height(), served.height);
    assert_eq!(verified.state.orders_in(interval), 2);

    let refused = |view: &SnapshotView, why: &str| {
        let err = verify(&chain, &genesis, view).expect_err(why);
        assert!(
            matches!(err, StateSyncError::Refused { .. }),
            "{why}: {err}"
        );
        err.to_string()
    };
    // The state: one Wh more for h1 no longer matches the digest block height + 1 carries.
    let mut more = served.clone();
    more.state = served
        .state
        .replacen("\"quantity_wh\":300", "\"quantity_wh\":301", 1);
    assert_ne!(more.state, served.state);
    assert!(refused(&more, "a changed state").contains("digest"));
    // The proof: without its last block no certificate proves the snapshot committed.
    let mut short = served.clone();
    short.proof.pop();
    refused(&short, "a proof without its certificate");
    // The certificate: a signature bit flipped in the last block's justify (its hash changes
    // too, so the chain of parents no longer links; either way it is refused).
    let mut forged = served.clone();
    let last = forged.proof.last_mut().expect("proof");
    let mut bytes = hex::decode(&*last).expect("hex");
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    *last = hex::encode(bytes);
    refused(&forged, "a forged certificate");
    // Another height: not the block the proof starts with.
    let mut moved = served.clone();
    moved.height += 8;
    refused(&moved, "a wrong height");

    // Restarted, the node replays from its stored snapshot and goes on.
    let before = node.height().await.expect("height");
    node.stop().await.expect("clean stop");
    let node = RunningNode::start(&config);
    node.wait_height(before + 3, Duration::from_secs(30)).await;
    let again = snapshot(&node, dir.path())
        .await
        .expect("still serves a snapshot");
    verify(&chain, &genesis, &again).expect("checks out after the restart");
    node.stop().await.expect("clean stop");
}

/// Pruning mode: with `[storage] keep_blocks = 2` and a snapshot every 2 blocks, the node
/// deletes old committed blocks (never above its oldest snapshot), keeps answering from its
/// index, restarts (compacting its store) from a stored snapshot, and `voltmesh verify` says
/// the history is not there.
#[tokio::test]
async fn a_pruning_node_drops_old_blocks_and_still_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_node_with(dir.path(), "[storage]\nkeep_blocks = 2\n", &[], 2);
    let node = RunningNode::start(&config);
    node.wait_height(9, Duration::from_secs(60)).await;
    let block = |height: u64| {
        let api = node.api;
        async move {
            http(api, "GET", &format!("/v1/blocks/{height}"), b"")
                .await
                .expect("answer")
                .0
        }
    };
    assert_eq!(block(1).await, 404, "height 1 was pruned");
    let top = node.height().await.expect("height");
    assert_eq!(block(top).await, 200, "the tip is kept");
    node.stop().await.expect("clean stop");
    let err = voltmesh_consensus::verify::verify(&dir.path().join("data"))
        .expect_err("a pruned store has no full history");
    assert!(err.to_string().contains("starts at a snapshot"), "{err}");
    let node = RunningNode::start(&config);
    node.wait_height(top + 2, Duration::from_secs(30)).await;
    node.stop().await.expect("clean stop");
}
