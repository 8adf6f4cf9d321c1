//! Bars of the node issue, each with real `voltmesh node` processes on 127.0.0.1.

mod support;

use std::time::Duration;

use support::{open_interval, order, Cluster};
use voltmesh_engine::Side;

/// (a) Four validators commit identical ledgers from orders sent to different nodes.
#[test]
fn four_validators_commit_identical_ledgers() {
    let cluster = Cluster::start("a", 4, &[]);
    cluster.wait_for("first commits", Duration::from_secs(30), |c| {
        (0..4).all(|i| c.height(i) >= 3)
    });
    let start = open_interval(3);
    let orders = [
        (0, order(1, "s1", start, Side::Sell, 600, "0.10", 1)),
        (1, order(2, "b1", start, Side::Buy, 400, "0.30", 1)),
        (2, order(3, "b2", start, Side::Buy, 400, "0.20", 1)),
        (3, order(4, "s2", start, Side::Sell, 100, "0.15", 1)),
    ];
    for (node, o) in &orders {
        let (status, body) = cluster.submit(*node, o);
        assert_eq!(status, 202, "{body}");
    }
    cluster.wait_for(
        "the interval to clear everywhere",
        Duration::from_secs(60),
        |c| (0..4).all(|i| c.interval(i, start).is_some()),
    );
    let clearings: Vec<_> = (0..4)
        .map(|i| cluster.interval(i, start).unwrap())
        .collect();
    assert!(
        clearings.iter().all(|c| c == &clearings[0]),
        "{clearings:?}"
    );
    let outcome = &clearings[0]["outcome"];
    assert_eq!(outcome["volume_wh"], 700);
    assert_eq!(outcome["clearing_price"], "0.200000");
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
