//! One participant key floods four real `voltmesh node` processes; another participant's
//! ordinary order still commits within a few blocks and the chain keeps committing.

#[allow(dead_code, unused_imports)]
mod support;

use std::time::Duration;

use support::{open_interval, order};
use voltmesh::testing::cluster::INTERVAL_SECS;
use voltmesh_engine::Side;
use voltmesh_wire::api::OrderState;

/// Blocks an ordinary order may wait behind a flood (a block takes every participant's
/// orders round-robin, so a flood costs others at most a block or two).
const FEW_BLOCKS: u64 = 4;

/// The height of the block that committed `(participant, id)` in `interval`, on node `i`.
fn committed_height(
    cluster: &support::Cluster,
    i: usize,
    participant: &str,
    id: &str,
    interval: i64,
) -> Option<u64> {
    let view = cluster.nodes[i]
        .client()
        .order_status(participant, id, Some(interval))
        .ok()
        .flatten()?;
    view.orders.iter().find_map(|e| match e.status {
        OrderState::Committed { height, .. } => Some(height),
        _ => None,
    })
}

#[test]
fn one_participant_key_cannot_stop_commits_or_delay_other_participants_orders() {
    let cluster = support::start("abuse", 4, &[]);
    cluster.expect_height(2, Duration::from_secs(60));
    let start = open_interval(8);
    let intervals = [start, start + INTERVAL_SECS, start + 2 * INTERVAL_SECS];

    // The audit's 60 KB id is refused at the door.
    let huge = "x".repeat(60_000);
    let (status, body) = cluster.submit(0, &order(1, &huge, start, Side::Buy, 100, "0.20", 1));
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("order_id_too_long")),
        "{body}"
    );

    let (accepted, victim_delay) = std::thread::scope(|s| {
        let flooders: Vec<_> = (0..4)
            .map(|t| {
                let cluster = &cluster;
                s.spawn(move || {
                    let mut accepted = Vec::new();
                    for k in 0..150usize {
                        let interval = intervals[k % intervals.len()];
                        // Maximal ids (64 bytes) and a few oversized ones.
                        let id = if k % 10 == 0 {
                            format!("{t}-{k}-{}", "y".repeat(100))
                        } else {
                            format!("{t}-{k:04}-{}", "z".repeat(57))[..64].to_owned()
                        };
                        let o = order(1, &id, interval, Side::Sell, 100, "0.10", 1);
                        let (status, body) = cluster.submit(k % 4, &o);
                        match status {
                            202 => accepted.push((interval, id, k % 4)),
                            422 | 503 | 429 => assert!(body["error"].is_string(), "{body}"),
                            _ => panic!("flood answered {status}: {body}"),
                        }
                    }
                    accepted
                })
            })
            .collect();
        // Meanwhile another participant's one ordinary order.
        std::thread::sleep(Duration::from_millis(200));
        let before = cluster.height(2);
        cluster.submit_accepted(2, &order(2, "ordinary", start, Side::Buy, 400, "0.30", 1));
        cluster
            .wait_for(
                "the ordinary order to commit",
                Duration::from_secs(60),
                |c| committed_height(c, 2, "h2", "ordinary", start).is_some(),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        let committed = committed_height(&cluster, 2, "h2", "ordinary", start).unwrap();
        let accepted: Vec<(i64, String, usize)> = flooders
            .into_iter()
            .flat_map(|f| f.join().unwrap())
            .collect();
        (accepted, committed.saturating_sub(before))
    });
    assert!(
        victim_delay <= FEW_BLOCKS,
        "the ordinary order waited {victim_delay} blocks behind the flood"
    );
    assert!(
        !accepted.is_empty(),
        "the flooder's valid orders are admitted up to its quota"
    );

    // Every node commits the ordinary order in the same block.
    for i in 0..4 {
        let h = committed_height(&cluster, i, "h2", "ordinary", start);
        let h = h.or_else(|| {
            cluster
                .wait_for("every node to commit it", Duration::from_secs(30), |c| {
                    committed_height(c, i, "h2", "ordinary", start).is_some()
                })
                .ok()
                .and_then(|()| committed_height(&cluster, i, "h2", "ordinary", start))
        });
        assert!(h.is_some(), "node {i} never committed the ordinary order");
    }

    // The chain keeps committing after the flooded intervals' gates.
    let last = intervals[intervals.len() - 1];
    cluster
        .wait_for(
            "the flooded intervals to clear",
            Duration::from_secs(120),
            |c| (0..4).all(|i| c.interval(i, last).is_some()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let after_gate = (0..4).map(|i| cluster.height(i)).max().unwrap();
    cluster.expect_height(after_gate + 3, Duration::from_secs(60));

    // The ledger held the flooder to its quota in every interval. Each node admits up to the
    // quota from its own view, so a participant flooding several nodes at once can get more
    // 202s than the quota; those orders are then refused when the quota fills, and the order
    // status of the node that took it says so: none is silently lost.
    for interval in intervals {
        let mut committed = 0;
        for (_, id, node) in accepted.iter().filter(|(i, _, _)| *i == interval) {
            // Asked where it was accepted: another node may never have taken it from gossip.
            let view = cluster.nodes[*node]
                .client()
                .order_status("h1", id, Some(interval))
                .expect("order status")
                .expect("a node that answered 202 knows the order");
            match &view.orders[0].status {
                OrderState::Committed { .. } => committed += 1,
                OrderState::Refused { reason, .. } => assert!(
                    reason == "participant_interval_full" || reason == "interval_full",
                    "{id}: refused as {reason}"
                ),
                other => panic!("{id} answered 202 ended {other:?}"),
            }
        }
        assert!(
            (1..=16).contains(&committed),
            "interval {interval}: {committed} flood orders committed"
        );
    }
}
