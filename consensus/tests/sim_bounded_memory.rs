//! Issue 12, deliverable 1 in simulation: a replica's memory follows its live state, not the
//! chain's age. However long the chain, each replica holds the retained window of committed
//! blocks plus the uncommitted tree, and a replica restarted from a long store reads back only
//! that tail and goes on committing with the others.

mod sim;

use sim::{for_each_seed, Sim, SimConfig};

/// The most blocks a replica may hold: the retained committed window, plus the uncommitted
/// chain above it (a handful in a healthy network), plus forks in flight.
fn bound() -> usize {
    voltmesh_consensus::protocol::Config::default().retained_committed_blocks + 16
}

fn held_stays_flat(seed: u64) {
    let n = 4;
    let mut sim = Sim::new(seed, SimConfig::new(n));
    sim.run_until(60_000);
    let first = sim.min_live_height();
    assert!(first > 60, "seed {seed}: only {first} heights in a minute");
    let held_1x: Vec<usize> = (0..n).map(|i| sim.replica(i).blocks_held()).collect();
    sim.run_until(120_000);
    let second = sim.min_live_height();
    assert!(
        second >= 2 * first - 10,
        "seed {seed}: {first} then {second}"
    );
    for (i, held_1x) in held_1x.into_iter().enumerate() {
        let held_2x = sim.replica(i).blocks_held();
        assert!(
            held_1x <= bound() && held_2x <= bound(),
            "seed {seed}: node {i} holds {held_1x} then {held_2x} blocks"
        );
    }
    // A restart reads back the tail only, and the node keeps up from there.
    sim.crash(1);
    sim.restart(1);
    assert!(sim.replica(1).blocks_held() <= bound());
    sim.run_until(130_000);
    assert!(
        sim.committed_height(1) > second,
        "seed {seed}: the restarted node stopped at {}",
        sim.committed_height(1)
    );
}

#[test]
fn blocks_held_do_not_grow_with_the_chain() {
    for_each_seed(2, held_stays_flat);
}
