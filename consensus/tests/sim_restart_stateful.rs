//! Audit H3 in simulation: with a stateful app (validating a block needs the state after its
//! parent, which survives a restart only for the committed tip), one of n = 4 validators is
//! down and another restarts right after a timeout certificate. The restarted replica must
//! learn the state of the certified, uncommitted blocks through `App::certified`, or it refuses
//! every proposal and the chain (which needs its vote) halts.

mod sim;

use sim::{for_each_seed, Sim, SimConfig};

fn restart_after_tc_with_one_down(seed: u64) {
    let mut config = SimConfig::new(4);
    config.stateful_app = true;
    let mut sim = Sim::new(seed, config);
    sim.run_until(4_000);
    let before = sim.min_live_height();
    assert!(before > 3, "seed {seed}: nothing committed ({before})");
    // Node 3 goes down; wait for a view it leads to time out (a TC forms), then restart node 0.
    sim.crash(3);
    let timeouts = sim.replica(1).stats().timeouts;
    let mut waited = 0;
    while sim.replica(1).stats().timeouts == timeouts {
        sim.run_for(5);
        waited += 5;
        assert!(waited < 30_000, "seed {seed}: no timeout with node 3 down");
    }
    sim.run_for(60);
    let at_restart = sim.committed_height(0);
    sim.crash(0);
    sim.restart(0);
    sim.run_for(15_000);
    let after = sim.min_live_height();
    assert!(
        after > at_restart + 10,
        "seed {seed}: chain halted after the restart ({at_restart} -> {after})"
    );
    for node in 0..3 {
        assert_eq!(
            sim.replica(node).app().out_of_order,
            0,
            "seed {seed}: node {node} was told about a child before its parent"
        );
    }
    sim.assert_committed_payloads_valid();
}

#[test]
fn restart_right_after_a_tc_with_one_node_down_keeps_committing() {
    for_each_seed(11, restart_after_tc_with_one_down);
}
