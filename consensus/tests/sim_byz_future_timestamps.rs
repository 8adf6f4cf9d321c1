//! Audit H4 and L12 in simulation: Byzantine leaders that stamp every block `now +
//! max_clock_drift_ms`, the latest time voters accept (`TestFault::FutureTimestamps`), cannot
//! make the next (honest) leader's view time out. The chain keeps committing, no honest leader
//! is ever recorded in a block's `failed_leaders`, and the honest validators stay in the
//! rotation.

mod sim;

use std::collections::BTreeSet;

use sim::{for_each_seed, Sim};
use voltmesh_consensus::protocol::{TestFault, ValidatorIndex};

fn future_stampers(seed: u64, n: usize, bad: &[usize]) {
    let (sim, bad_set, honest) =
        Sim::run_with_faulty(seed, n, bad, TestFault::FutureTimestamps, 30_000);
    let drift = sim.config.replica.max_clock_drift_ms;
    let mut future_blocks = 0;
    for &i in &honest {
        let height = sim.committed_height(i);
        assert!(
            height >= 40,
            "seed {seed} n {n}: node {i} committed only {height} blocks in 30 s"
        );
        assert_eq!(
            sim.replica(i).stats().timeouts,
            0,
            "seed {seed} n {n}: node {i} timed out a view"
        );
        let committed = &sim.nodes[i].store.committed;
        for block in committed {
            for failed in block.failed_leaders() {
                assert!(
                    bad_set.contains(failed),
                    "seed {seed} n {n}: honest leader {failed} recorded as failed at height {}",
                    block.height()
                );
            }
        }
        // Every honest validator still leads blocks in the last third of the run.
        let recent: BTreeSet<ValidatorIndex> = committed
            .iter()
            .skip(committed.len() * 2 / 3)
            .map(|b| b.proposer())
            .collect();
        for &h in &honest {
            let h = ValidatorIndex(u16::try_from(h).expect("small"));
            assert!(
                recent.contains(&h),
                "seed {seed} n {n}: honest {h} left the rotation"
            );
        }
        future_blocks += committed
            .iter()
            .filter(|b| bad_set.contains(&b.proposer()))
            .count();
    }
    assert!(
        future_blocks > 0 && drift > 0,
        "seed {seed} n {n}: no block of a faulty leader was committed, the test shows nothing"
    );
}

#[test]
fn one_of_four_stamping_blocks_in_the_future_does_not_stall_or_evict_honest_leaders() {
    for_each_seed(3, |seed| future_stampers(seed, 4, &[(seed % 4) as usize]));
}

#[test]
fn two_of_seven_stamping_blocks_in_the_future_do_not_stall_or_evict_honest_leaders() {
    for_each_seed(3, |seed| {
        let a = (seed % 7) as usize;
        future_stampers(seed, 7, &[a, (a + 2) % 7]);
    });
}
