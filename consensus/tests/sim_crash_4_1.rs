//! Bar (b) of the node issue, in simulation: 4 validators, 1 crashed. Commits keep coming at a
//! steady rate: from 10 s after the crash on, the crashed validator has left the leader rotation
//! (reputation window), no view times out, at least 1.5 blocks per second commit and no two
//! commits are a second apart. hotstuff_rs 0.4.0 committed nothing in this setting.

mod sim;

use sim::{crashed_validators_steady, for_each_seed};

#[test]
fn four_validators_one_crashed_commit_steadily() {
    for_each_seed(3, |seed| {
        // Crash a different validator per seed.
        let victim = (seed % 4) as usize;
        crashed_validators_steady(4, &[victim], seed);
    });
}

/// Control: with reputation off (plain round-robin, as in hotstuff_rs), the crashed validator
/// stays in the rotation and keeps costing views, which is what the steady-rate test rules out.
#[test]
fn without_reputation_a_crashed_leader_keeps_costing_views() {
    for_each_seed(1, |seed| {
        let runs = sim::run_with_crashes(4, &[(seed % 4) as usize], seed, 0);
        for run in runs {
            assert!(run.timeouts > 0, "seed {seed}: {run:?}");
            assert!(run.max_gap_ms >= 1_000, "seed {seed}: {run:?}");
        }
    });
}
