//! Byzantine validators as real `voltmesh node` processes with real clocks (issue 11, the audit's
//! H1, H4 and M1 where timing matters): with 1 of 4 and 2 of 7 validators Byzantine, the honest
//! nodes keep committing, clear an interval with the engine's result, and every honest
//! validator keeps proposing committed blocks and is never recorded as a failed leader (none
//! leaves the leader rotation because of the faulty ones). The deterministic simulation (`consensus/tests/sim_byz_*.rs`) proves the same
//! with a simulated clock; this runs the node's real timers, network and store.

#[allow(dead_code, unused_imports)]
mod support;

use std::time::Duration;

use support::{open_interval, order, Cluster, NodeFault};
use voltmesh_engine::Side;

/// What a window of committed blocks shows about the leader rotation, by validator index.
#[derive(Debug)]
struct Rotation {
    /// Committed blocks proposed, by validator.
    proposed: Vec<usize>,
    /// Committed blocks that record each validator as a failed leader.
    recorded_failed: Vec<usize>,
}

/// Starts `n` validators with `faults`, and checks what every Byzantine run must show.
fn contained(name: &str, n: usize, faults: &[(usize, NodeFault)]) {
    let cluster = support::start(name, n, faults);
    let honest: Vec<usize> = (0..n)
        .filter(|i| faults.iter().all(|(f, _)| f != i))
        .collect();
    cluster
        .wait_for("first commits", Duration::from_secs(60), |c| {
            honest.iter().all(|&i| c.height(i) >= 3)
        })
        .unwrap_or_else(|e| panic!("{e}"));

    // An interval clears on every honest node with the engine's result.
    let start = open_interval(3);
    let (a, b) = (honest[0], honest[honest.len() - 1]);
    cluster.submit_accepted(a, &order(1, "s1", start, Side::Sell, 600, "0.10", 1));
    cluster.submit_accepted(b, &order(2, "b1", start, Side::Buy, 400, "0.30", 1));
    cluster.submit_accepted(a, &order(3, "b2", start, Side::Buy, 400, "0.20", 1));
    cluster
        .wait_for(
            "the interval to clear on honest nodes",
            Duration::from_secs(90),
            |c| honest.iter().all(|&i| c.interval(i, start).is_some()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    for &i in &honest {
        let outcome = cluster.interval(i, start).unwrap().outcome;
        assert_eq!(
            (outcome.volume_wh, outcome.clearing_price),
            (600, Some("0.200000".parse().unwrap())),
            "node {i}"
        );
    }

    // Over the next 4n committed blocks every honest validator proposes at least one: the
    // leader rotation keeps them all.
    let from = cluster.height(a) + 1;
    let to = from + 4 * n as u64;
    cluster
        .wait_for("4n more commits", Duration::from_secs(120), |c| {
            honest.iter().all(|&i| c.height(i) >= to)
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let rotation = rotation(&cluster, a, from..to, n);
    for &i in &honest {
        // Blocks name validators by their index in the validator set, not by node position.
        let v = usize::from(cluster.status(i).expect("the node answers").validator);
        assert!(
            rotation.proposed[v] > 0,
            "honest node {i} (validator {v}) proposed none of blocks {from}..{to}: {rotation:?}"
        );
        assert_eq!(
            rotation.recorded_failed[v], 0,
            "honest node {i} (validator {v}) recorded as a failed leader in blocks {from}..{to}: {rotation:?}"
        );
    }
    eprintln!("{name}: blocks {from}..{to}: {rotation:?}");
}

/// The proposers and recorded failed leaders of committed blocks `heights`, read from node `i`.
fn rotation(cluster: &Cluster, i: usize, heights: std::ops::Range<u64>, n: usize) -> Rotation {
    let mut rotation = Rotation {
        proposed: vec![0; n],
        recorded_failed: vec![0; n],
    };
    for height in heights {
        let block = cluster.nodes[i]
            .client()
            .block(height)
            .expect("the node answers")
            .expect("the block is committed");
        rotation.proposed[usize::from(block.proposer)] += 1;
        for failed in block.failed_leaders {
            rotation.recorded_failed[usize::from(failed)] += 1;
        }
    }
    rotation
}

/// Audit H4 with real clocks: one validator stamps its proposals as far ahead as voters accept.
#[test]
fn one_of_four_stamping_the_future() {
    contained("byz-future", 4, &[(3, NodeFault::FutureTimestamps)]);
}

/// Audit H1: one validator sends a wrong-height vote before each real one.
#[test]
fn one_of_four_voting_wrong_heights() {
    contained("byz-height", 4, &[(3, NodeFault::WrongHeightVotes)]);
}

/// Two of seven: one withholds every vote, one floods each vote and timeout 50 times (M1).
#[test]
fn two_of_seven_withholding_and_flooding() {
    contained(
        "byz-7",
        7,
        &[(5, NodeFault::WithholdVotes), (6, NodeFault::Flood(50))],
    );
}
