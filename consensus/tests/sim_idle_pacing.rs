//! Issue 12 (a node's cost follows its work, not its age), idle pacing in simulation: with
//! `idle_block_interval_ms` set, a quiet chain makes a block per idle interval, not per
//! `min_block_interval_ms`; work is proposed at once and committed on every node within a few
//! block intervals; and leaders and voters agree on when the chain is quiet, so nobody times out.

mod sim;

use std::sync::Arc;

use sim::{for_each_seed, Sim, SimConfig};

const IDLE_MS: u64 = 5_000;

fn idle_chain(seed: u64, lossy: bool) {
    let n = 4;
    let mut config = SimConfig::new(n);
    if lossy {
        config = config.lossy();
    }
    config.replica.idle_block_interval_ms = IDLE_MS;
    // Work appears at 20 s and at 47.3 s.
    config.work = Some(Arc::new(vec![20_000, 47_300]));
    let mut sim = Sim::new(seed, config);
    sim.run_until(19_000);
    let quiet_height = sim.min_live_height();
    // 19 s at 500 ms blocks would be ~38 heights; quiet, about one per idle interval.
    assert!(
        (2..=8).contains(&quiet_height),
        "seed {seed}: {quiet_height} heights in 19 quiet seconds"
    );
    // The work at 20 s is committed everywhere within 5 s (not one idle interval per block).
    sim.run_until(25_000);
    for i in 0..n {
        let committed_ms = sim.replica(i).app().committed_ms;
        assert!(
            committed_ms >= 20_000,
            "seed {seed}: node {i} has not committed the work (last block at {committed_ms} ms)"
        );
    }
    sim.run_until(70_000);
    let end_height = sim.min_live_height();
    assert!(
        end_height < quiet_height + 30,
        "seed {seed}: {end_height} heights by 70 s"
    );
    for i in 0..n {
        assert!(
            sim.replica(i).app().committed_ms >= 47_300,
            "seed {seed}: node {i}"
        );
        if !lossy {
            assert_eq!(
                sim.replica(i).stats().timeouts,
                0,
                "seed {seed}: node {i} timed out on a healthy network"
            );
        }
    }
    sim.assert_committed_payloads_valid();
}

#[test]
fn a_quiet_chain_slows_down_and_work_still_commits_at_once() {
    for_each_seed(4, |seed| idle_chain(seed, false));
}

#[test]
fn idle_pacing_on_a_lossy_network() {
    for_each_seed(3, |seed| idle_chain(seed, true));
}
