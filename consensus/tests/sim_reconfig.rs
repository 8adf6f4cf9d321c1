//! Validator set changes across an epoch boundary, in the deterministic simulation (issue 13):
//! a fifth validator joins and one of the first four leaves in one reconfiguration, with
//! loss, crashes and partitions around the reconfiguration block, and with the leaving
//! validator Byzantine (it keeps running the old epoch and proposes payloads after the
//! reconfiguration). The harness (`reconfig/mod.rs`) checks safety across the switch on every
//! commit; these tests check that the switch happens, at one block, and that the new set
//! commits.

mod reconfig;
mod sim;

use reconfig::{tag, EpochSim};
use sim::for_each_seed;
use voltmesh_consensus::protocol::Config;

/// Nodes 0..4 are epoch 0; the reconfiguration at 3 s names nodes 1..=4.
fn five_nodes(seed: u64, lossy: bool) -> EpochSim {
    let mut sim = EpochSim::new(seed, 5, 4, Config::default());
    if lossy {
        sim = sim.lossy();
    }
    sim.reconfigure = Some((3_000, vec![1, 2, 3, 4]));
    sim
}

/// Every node of the new set runs epoch 1 on the same chain, the leaving node runs nothing,
/// and the new epoch has committed at least `min_blocks` blocks, all proposed by the new set.
fn assert_switched(sim: &EpochSim, min_blocks: u64) {
    let seed = sim.seed;
    let rc = sim
        .reconfig_height(0)
        .unwrap_or_else(|| panic!("seed {seed}: the reconfiguration never committed"));
    assert_eq!(
        sim.epoch_of(0),
        None,
        "seed {seed}: the leaving validator still runs an epoch"
    );
    let chain = sim.epoch_chain(1).expect("epoch 1");
    for i in 1..5 {
        assert_eq!(
            sim.epoch_of(i),
            Some(1),
            "seed {seed}: node {i} is not in epoch 1"
        );
        assert_eq!(sim.nodes[i].store.epochs[&1].id(), chain.id());
        let height = sim.committed_height(i);
        assert!(
            height >= rc + min_blocks,
            "seed {seed}: node {i} committed only {} blocks of epoch 1",
            height.saturating_sub(rc)
        );
    }
    // Blocks above the reconfiguration are the new set's, each extending the one below.
    let node = &sim.nodes[1].store;
    let mut parent = node.committed[&rc].hash();
    for height in rc + 1..=sim.committed_height(1) {
        let Some(block) = node.committed.get(&height) else {
            break;
        };
        assert_eq!(block.parent(), parent, "seed {seed}: height {height}");
        assert_eq!(
            tag(block),
            Some(b"ok".as_slice()),
            "seed {seed}: height {height}"
        );
        assert!(chain.validators().key(block.proposer()).is_some());
        parent = block.hash();
    }
    assert_eq!(
        tag(&node.committed[&rc]),
        Some(b"rc".as_slice()),
        "seed {seed}: the switch is not at the reconfiguration block"
    );
}

#[test]
fn a_validator_joins_and_one_leaves_at_one_block() {
    for_each_seed(4, |seed| {
        // Every other seed on a lossy network.
        let mut sim = five_nodes(seed, seed % 2 == 1);
        sim.start();
        sim.run_until(30_000);
        assert_switched(&sim, 10);
        // The joiner committed the new epoch's blocks too (it started from the root).
        assert!(sim.committed_height(4) > sim.reconfig_height(0).expect("rc"));
    });
}

#[test]
fn the_switch_survives_a_crash_and_a_partition() {
    for_each_seed(4, |seed| {
        // No loss here: with one of four crashed, a quorum needs every live vote, and on a
        // lossy network the pacemaker's backoff can stall a young chain for tens of seconds
        // with or without a reconfiguration (seen in the plain simulation too; see the
        // consensus README's known limits). Delays and duplicates stay.
        let mut sim = five_nodes(seed, true);
        sim.loss = 0.0;
        sim.start();
        sim.run_until(2_800);
        // One staying validator crashes just before the reconfiguration is proposed and
        // restarts after the others switched (with one of four down the rest is a quorum,
        // once the crashed leader's views have timed out).
        let crashed = 1 + (seed % 3) as usize;
        sim.crash(crashed);
        sim.run_until(20_000);
        sim.restart(crashed);
        // Then, in the new epoch, another is cut off for a while.
        sim.run_until(30_000);
        let cut = 1 + ((seed + 1) % 4) as usize;
        let mut groups = vec![0; 5];
        groups[cut] = 1;
        sim.partition(groups);
        sim.run_until(33_000);
        sim.heal();
        sim.run_until(50_000);
        assert_switched(&sim, 10);
        // The restarted validator finished the old epoch after the others had left it: the
        // retired replicas handed it the certificates that commit the reconfiguration.
        let rc = sim.reconfig_height(0).expect("rc");
        let first = (1..5)
            .filter_map(|i| sim.commit_time(i, rc))
            .min()
            .expect("rc");
        let late = sim
            .commit_time(crashed, rc)
            .expect("restarted node committed rc");
        assert!(
            late >= 20_000 && first < 20_000,
            "seed {seed}: {first} / {late}"
        );
        let answers: u64 = (0..5).map(|i| sim.retired_answers(i)).sum();
        assert!(answers > 0, "seed {seed}: no laggard was answered");
    });
}

#[test]
fn a_byzantine_leaving_validator_cannot_extend_the_old_epoch() {
    for_each_seed(4, |seed| {
        let mut sim = five_nodes(seed, true);
        sim.nodes[0].byzantine = true;
        sim.start();
        // A staying validator lags through the switch, so the Byzantine one has an honest
        // old-epoch replica to court.
        sim.run_until(2_800);
        let lagging = 1 + (seed % 3) as usize;
        let mut groups = vec![0; 5];
        groups[lagging] = 1;
        sim.partition(groups);
        sim.run_until(8_000);
        sim.heal();
        sim.run_until(40_000);
        let rc = sim.reconfig_height(0).expect("rc");
        let late = sim
            .commit_time(lagging, rc)
            .expect("the laggard committed rc");
        assert!(late >= 8_000, "seed {seed}: {late}");
        // The Byzantine validator keeps its old replica running (it never retires) but the
        // old epoch commits nothing above the reconfiguration anywhere (checked on every
        // commit) and the new set runs on.
        let rc = sim.reconfig_height(0).expect("rc");
        for i in 1..5 {
            assert_eq!(sim.epoch_of(i), Some(1), "seed {seed}: node {i}");
            assert!(sim.committed_height(i) >= rc + 10, "seed {seed}: node {i}");
        }
    });
}
