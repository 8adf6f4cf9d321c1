//! Bar (c) of the node issue, in simulation: a validator crashes, the others keep committing,
//! and the validator restarts from its persisted state (safety state + stored blocks), fetches
//! what it missed by block sync, and reaches the others' height with an identical ledger (the
//! harness checks every commit against every other node's).

mod sim;

use sim::{for_each_seed, Sim, SimConfig};

fn crash_restart_catch_up(seed: u64, config: SimConfig) {
    let n = config.validators;
    let victim = (seed % n as u64) as usize;
    let mut sim = Sim::new(seed, config);
    sim.run_until(6_000);
    let at_crash = sim.committed_height(victim);
    assert!(
        at_crash > 3,
        "seed {seed}: nothing committed before the crash"
    );
    sim.crash(victim);
    sim.run_until(36_000);
    let others = sim.min_live_height();
    assert!(
        others > at_crash + 15,
        "seed {seed}: the others did not move on without the victim ({at_crash} -> {others})"
    );
    sim.restart(victim);
    sim.run_until(50_000);
    let caught_up = sim.committed_height(victim);
    let top = (0..n).map(|i| sim.committed_height(i)).max().unwrap_or(0);
    assert!(
        caught_up + 3 >= top && caught_up > others,
        "seed {seed}: restarted node at {caught_up}, others at {top}"
    );
    assert!(
        sim.replica(victim).stats().sync_requests > 0,
        "seed {seed}: caught up without block sync?"
    );
    // The victim missed more heights than a replica keeps in memory: the old ones came from
    // the others' stores.
    let retained = voltmesh_consensus::protocol::Config::default().retained_committed_blocks;
    if others - at_crash > retained as u64 {
        let from_stores: u64 = (0..n)
            .filter(|i| *i != victim)
            .map(|i| sim.replica(i).stats().store_sync_answers)
            .sum();
        assert!(
            from_stores > 0,
            "seed {seed}: no sync answer came from a store"
        );
    }
    assert!(sim.max_message <= voltmesh_consensus::protocol::MAX_MESSAGE_BYTES);
    // Identical ledgers: the same hash at every height on every node.
    for h in 1..=caught_up {
        let hashes: Vec<_> = (0..n)
            .filter(|i| sim.committed_height(*i) >= h)
            .map(|i| sim.nodes[i].store.committed[(h - 1) as usize].hash())
            .collect();
        assert!(
            hashes.windows(2).all(|w| w[0] == w[1]),
            "seed {seed}: ledgers differ at {h}"
        );
    }
}

#[test]
fn restarted_replica_catches_up_by_block_sync() {
    for_each_seed(3, |seed| crash_restart_catch_up(seed, SimConfig::new(4)));
}

#[test]
fn restarted_replica_catches_up_on_a_lossy_network() {
    for_each_seed(2, |seed| {
        crash_restart_catch_up(seed, SimConfig::new(7).lossy())
    });
}

#[test]
fn restarted_replica_catches_up_with_large_blocks() {
    for_each_seed(1, |seed| {
        // 300 KB blocks: a full catch-up needs several size-bounded sync responses.
        let mut config = SimConfig::new(4);
        config.payload_pad = 300 * 1024;
        crash_restart_catch_up(seed, config);
    });
}
