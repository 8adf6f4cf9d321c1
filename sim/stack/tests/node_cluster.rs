//! Bars of the node issue, each with real `voltmesh node` processes on 127.0.0.1.

#[allow(dead_code, unused_imports)]
mod support;

use std::time::Duration;

use support::{open_interval, order, NodeFault};
use voltmesh_engine::Side;

/// (a) Four validators commit identical ledgers from orders sent to different nodes.
#[test]
fn four_validators_commit_identical_ledgers() {
    let cluster = support::start("a", 4, &[]);
    let (start, _) = support::submit_four_orders(&cluster);
    let clearing = cluster
        .wait_cleared(start, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    let outcome = &clearing.outcome;
    assert_eq!(outcome.volume_wh, 700);
    assert_eq!(outcome.clearing_price, Some("0.200000".parse().unwrap()));
    // Same block hashes at every height all four have.
    let common = (0..4).map(|i| cluster.height(i)).min().unwrap();
    for h in 1..=common {
        let hashes: Vec<_> = (0..4).map(|i| cluster.block_hash(i, h)).collect();
        assert!(
            hashes.iter().all(|x| x.is_some() && x == &hashes[0]),
            "height {h}: {hashes:?}"
        );
    }
}

/// (f) Every rejection of the node API, with its reason.
#[test]
fn api_rejections_say_why() {
    let cluster = support::start("f", 4, &[]);
    cluster
        .wait_for("first commits", Duration::from_secs(30), |c| {
            c.height(0) >= 2
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let start = open_interval(3);
    let ok = order(1, "s1", start, Side::Sell, 600, "0.10", 1);
    cluster.submit_accepted(0, &ok);
    let expect = |o: &voltmesh_wire::SignedOrder, kind: &str| {
        let (status, body) = cluster.submit(0, o);
        assert_eq!(
            (status, body["error"].as_str()),
            (422, Some(kind)),
            "expected {kind}: {body}"
        );
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    };
    let mut tampered = order(2, "b1", start, Side::Buy, 400, "0.30", 1);
    tampered.ticket.quantity_wh = 40_000;
    expect(&tampered, "bad_signature");
    expect(
        &order(9, "x", start, Side::Buy, 400, "0.30", 1),
        "unknown_participant",
    );
    expect(&ok, "duplicate_id");
    expect(
        &order(2, "b2", start + 7, Side::Buy, 400, "0.30", 1),
        "wrong_interval",
    );
    expect(
        &order(2, "b3", start - 600, Side::Buy, 400, "0.30", 1),
        "closed_interval",
    );
    expect(
        &order(2, "b4", start, Side::Buy, 400, "0.50", 1),
        "price_outside_tariffs",
    );
    expect(
        &order(2, "b5", start, Side::Buy, 400, "0.01", 1),
        "price_outside_tariffs",
    );
    let (status, body) = support::http(
        &cluster.nodes[0].api,
        "POST",
        "/v1/orders",
        Some(b"{not json".to_vec()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("malformed_body")),
        "{body}"
    );
    let (status, _) = support::http(
        &cluster.nodes[0].api,
        "GET",
        "/v1/intervals/yesterday",
        None,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 400);
    let (status, _) =
        support::http(&cluster.nodes[0].api, "GET", "/v1/blocks/999999", None).unwrap();
    assert_eq!(status, 404);
    // A batch is answered order by order: the good one is taken, the tampered one refused.
    let batch = [order(2, "b6", start, Side::Buy, 400, "0.30", 1), tampered];
    let results = cluster.nodes[2]
        .client()
        .submit_batch(&batch)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(results[0], Ok(voltmesh_wire::client::Submitted::Accepted));
    assert!(
        matches!(&results[1], Err(voltmesh_wire::client::ClientError::Rejected { kind, .. }) if kind == "bad_signature"),
        "{results:?}"
    );
    // The good orders are finalized.
    cluster
        .wait_for("the interval to clear", Duration::from_secs(60), |c| {
            c.interval(1, start).is_some()
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let clearing = cluster.interval(1, start).unwrap();
    assert_eq!(clearing.outcome.volume_wh, 400);
    assert_eq!(clearing.outcome.trades[0].buy_id.as_str(), "h2:b6");
    assert_eq!(clearing.outcome.unfilled[0].id.as_str(), "h1:s1");
}

/// (b) + (c) Four validators, one killed: commits continue within 10 s and every order sent to a
/// live node is finalized; the killed node restarts from disk, catches up with an identical
/// ledger, and its data directory passes `voltmesh verify`.
#[test]
fn one_of_four_killed_then_restarted() {
    let mut cluster = support::start("bc", 4, &[]);
    cluster.expect_height(3, Duration::from_secs(30));
    cluster.kill(3);
    let before = (0..3).map(|i| cluster.height(i)).max().unwrap();
    cluster
        .wait_for(
            "commits to continue without node 3",
            Duration::from_secs(10),
            |c| (0..3).all(|i| c.height(i) >= before + 2),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let start = open_interval(3);
    let orders = [
        (0, order(1, "s1", start, Side::Sell, 500, "0.10", 1)),
        (1, order(2, "b1", start, Side::Buy, 300, "0.25", 1)),
        (2, order(3, "b2", start, Side::Buy, 300, "0.22", 1)),
    ];
    for (node, o) in &orders {
        cluster.submit_accepted(*node, o);
    }
    cluster
        .wait_for(
            "the interval to clear on live nodes",
            Duration::from_secs(60),
            |c| (0..3).all(|i| c.interval(i, start).is_some()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let outcome = cluster.interval(0, start).unwrap().outcome;
    assert_eq!(outcome.volume_wh, 500, "{outcome:?}");
    let traded: Vec<&str> = outcome.trades.iter().map(|t| t.buy_id.as_str()).collect();
    assert_eq!(traded, ["h2:b1", "h3:b2"]);

    let target = (0..3).map(|i| cluster.height(i)).max().unwrap();
    cluster.start_node(3).unwrap();
    cluster
        .wait_for("node 3 to catch up", Duration::from_secs(60), |c| {
            c.height(3) >= target
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cluster.interval(3, start), cluster.interval(0, start));
    for h in 1..=target {
        assert_eq!(
            cluster.block_hash(3, h),
            cluster.block_hash(0, h),
            "height {h}"
        );
    }
    cluster.kill(3);
    let out = support::voltmesh()
        .args([
            "verify",
            "--data-dir",
            support::path_str(&cluster.data_dir(3)),
        ])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("all ") && stdout.contains("blocks check out"),
        "{stdout}"
    );
}

/// (d) Seven validators with two killed: commits continue.
#[test]
fn two_of_seven_killed() {
    let mut cluster = support::start("d", 7, &[]);
    cluster.expect_height(3, Duration::from_secs(40));
    cluster.kill(2);
    cluster.kill(5);
    let before = cluster.live().map(|i| cluster.height(i)).max().unwrap();
    cluster
        .wait_for(
            "commits to continue without two nodes",
            Duration::from_secs(30),
            |c| c.live().all(|i| c.height(i) >= before + 3),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let start = open_interval(3);
    cluster.submit_accepted(0, &order(1, "s1", start, Side::Sell, 500, "0.10", 1));
    cluster.submit_accepted(6, &order(2, "b1", start, Side::Buy, 300, "0.25", 1));
    cluster
        .wait_for("the interval to clear", Duration::from_secs(60), |c| {
            c.live().all(|i| c.interval(i, start).is_some())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cluster.interval(4, start).unwrap().outcome.volume_wh, 300);
}

/// (e) A validator that proposes wrong clearings gets its blocks refused; no honest node commits
/// them and the chain moves on with the engine's result.
#[test]
fn wrong_clearing_proposals_are_refused() {
    let cluster = support::start("e", 4, &[(0, NodeFault::WrongClearing)]);
    cluster
        .wait_for("first commits", Duration::from_secs(40), |c| {
            (1..4).all(|i| c.height(i) >= 3)
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let start = open_interval(3);
    cluster.submit_accepted(1, &order(1, "s1", start, Side::Sell, 600, "0.10", 1));
    cluster.submit_accepted(2, &order(2, "b1", start, Side::Buy, 400, "0.30", 1));
    cluster.submit_accepted(3, &order(3, "b2", start, Side::Buy, 400, "0.20", 1));
    cluster
        .wait_for(
            "the interval to clear on honest nodes",
            Duration::from_secs(90),
            |c| (1..4).all(|i| c.interval(i, start).is_some()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    for i in 1..4 {
        let outcome = cluster.interval(i, start).unwrap().outcome;
        assert_eq!(
            (outcome.volume_wh, outcome.clearing_price),
            (600, Some("0.200000".parse().unwrap()))
        );
    }
    let refused: u64 = (1..4)
        .map(|i| cluster.status(i).unwrap().rejected_proposals)
        .sum();
    assert!(refused > 0, "honest nodes saw the faulty proposals");
    let before = cluster.height(1);
    cluster
        .wait_for("the chain to move on", Duration::from_secs(30), |c| {
            c.height(1) >= before + 3
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Issue 12 (snapshots and state sync): a validator whose disk is wiped while the others run
/// starts from a snapshot its peers serve, verified against the validators' certificates, and
/// signs votes again within a minute; its ledger is the others' from the snapshot on, and
/// `voltmesh verify` says its store lacks the history below the snapshot.
#[test]
fn a_wiped_validator_state_syncs_and_votes_again_within_a_minute() {
    let options = voltmesh::testing::cluster::ClusterOptions {
        snapshot_interval_blocks: 16,
        ..voltmesh::testing::cluster::ClusterOptions::new(4)
    };
    let mut cluster = support::start_with("wipe", &options);
    cluster.expect_height(3, Duration::from_secs(30));
    let wiped = 3;
    // Orders in open books, so the snapshot carries real state.
    let start = open_interval(60);
    cluster.submit_accepted(0, &order(1, "s1", start, Side::Sell, 500, "0.10", 1));
    cluster.submit_accepted(1, &order(2, "b1", start, Side::Buy, 300, "0.25", 1));
    cluster
        .wait_for("a snapshot on every node", Duration::from_secs(90), |c| {
            (0..4).all(|i| {
                c.nodes[i]
                    .client()
                    .snapshot()
                    .ok()
                    .flatten()
                    .is_some_and(|s| s.height >= 16)
            })
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let snapshot = cluster.nodes[0]
        .client()
        .snapshot()
        .expect("the API answers")
        .expect("a snapshot");
    assert!(
        snapshot.state.contains("h1:s1") && snapshot.state.contains("h2:b1"),
        "the snapshot holds the open book: {}",
        snapshot.state
    );
    cluster.wipe_and_state_sync(wiped).expect("restart");
    let restarted = std::time::Instant::now();
    cluster
        .wait_for(
            "the wiped node to vote again",
            Duration::from_secs(60),
            |c| c.status(wiped).is_some_and(|s| s.votes > 0),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let voting_after = restarted.elapsed();
    let log =
        std::fs::read_to_string(cluster.nodes[wiped].dir.join("node.log")).unwrap_or_default();
    assert!(
        log.contains("starting from a verified ledger snapshot"),
        "the node replayed instead of state-syncing:\n{log}"
    );
    // Same blocks as the others from its snapshot on; its open book is the others' too.
    let top = cluster.height(0).min(cluster.height(wiped));
    let base = snapshot.height;
    assert!(top > base, "no block above the snapshot yet ({top})");
    for h in base..=top {
        assert_eq!(
            cluster.block_hash(wiped, h),
            cluster.block_hash(0, h),
            "height {h}"
        );
    }
    cluster
        .wait_for(
            "the interval to clear everywhere",
            Duration::from_secs(120),
            |c| (0..4).all(|i| c.interval(i, start).is_some()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cluster.interval(wiped, start), cluster.interval(0, start));
    assert_eq!(
        cluster.interval(wiped, start).map(|c| c.outcome.volume_wh),
        Some(300)
    );
    cluster.kill(wiped);
    let out = support::voltmesh()
        .args([
            "verify",
            "--data-dir",
            support::path_str(&cluster.data_dir(wiped)),
        ])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("starts at a snapshot"),
        "{stderr}"
    );
    eprintln!("the wiped node voted again {voting_after:?} after its restart");
}

/// Issue 12 (idle pacing): a quiet cluster makes a block per idle interval instead of one per
/// block interval, and an order wakes it: the block holding the order does not wait out the
/// idle interval after its parent.
#[test]
fn a_quiet_cluster_slows_down_and_an_order_wakes_it() {
    use voltmesh_consensus::wire::api::OrderState;
    const IDLE_MS: u64 = 10_000;
    let options = voltmesh::testing::cluster::ClusterOptions {
        idle_block_interval_ms: IDLE_MS,
        ..voltmesh::testing::cluster::ClusterOptions::new(4)
    };
    let cluster = support::start_with("idle", &options);
    cluster.expect_height(2, Duration::from_secs(60));
    let before = cluster.height(0);
    std::thread::sleep(Duration::from_secs(12));
    let after = cluster.height(0);
    // At the 300 ms block interval, 12 s would be about 40 heights.
    assert!(
        after <= before + 4,
        "{before} -> {after} heights in 12 quiet seconds"
    );
    // Right after a new block, send an order: the next block comes for it, not 10 s later.
    let seen = cluster.height(0);
    cluster
        .wait_for("the next quiet block", Duration::from_secs(30), |c| {
            c.height(0) > seen
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let start = open_interval(30);
    cluster.submit_accepted(1, &order(1, "wake", start, Side::Sell, 100, "0.10", 1));
    let mut height = 0;
    cluster
        .wait_for("the order to commit", Duration::from_secs(30), |c| {
            let status = c.nodes[0]
                .client()
                .order_status("h1", "wake", Some(start))
                .ok()
                .flatten();
            match status
                .and_then(|s| s.orders.into_iter().next())
                .map(|e| e.status)
            {
                Some(OrderState::Committed { height: h, .. }) => {
                    height = h;
                    true
                }
                _ => false,
            }
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let block = |h: u64| {
        cluster.nodes[0]
            .client()
            .block(h)
            .expect("the API answers")
            .expect("committed")
    };
    let (holding, parent) = (block(height), block(height - 1));
    assert!(
        holding.timestamp_ms < parent.timestamp_ms + IDLE_MS,
        "the order waited out the idle interval: block {height} at {} ms, its parent at {} ms",
        holding.timestamp_ms,
        parent.timestamp_ms
    );
}
