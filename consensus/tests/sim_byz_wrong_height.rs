//! Audit H1 in simulation: Byzantine validators that send a validly signed vote naming a wrong
//! height before each proposal and each real vote (`TestFault::WrongHeightVotes`) cannot stop
//! honest replicas from forming QCs. The chain keeps committing at the healthy pace and no
//! honest leader is ever recorded in a block's `failed_leaders`.

mod sim;

use sim::{for_each_seed, Sim};
use voltmesh_consensus::protocol::TestFault;

fn wrong_height_voters(seed: u64, n: usize, bad: &[usize]) {
    let (sim, bad_set, honest) =
        Sim::run_with_faulty(seed, n, bad, TestFault::WrongHeightVotes, 30_000);
    for &i in &honest {
        let height = sim.committed_height(i);
        // Healthy is about 2 blocks per second.
        assert!(
            height >= 45,
            "seed {seed} n {n}: node {i} committed only {height} blocks in 30 s"
        );
        for block in &sim.nodes[i].store.committed {
            for failed in block.failed_leaders() {
                assert!(
                    bad_set.contains(failed),
                    "seed {seed} n {n}: honest leader {failed} recorded as failed at height {}",
                    block.height()
                );
            }
        }
    }
    let refused: u64 = honest
        .iter()
        .map(|&i| sim.replica(i).stats().invalid_messages)
        .sum();
    assert!(
        refused > 0,
        "seed {seed} n {n}: no wrong-height vote was ever seen, the test shows nothing"
    );
    assert!(
        bad.iter().all(|&b| sim.replica(b).stats().proposals > 0),
        "seed {seed} n {n}: a faulty validator never led a view"
    );
}

#[test]
fn one_of_four_sending_wrong_height_votes_does_not_stop_the_chain() {
    for_each_seed(3, |seed| {
        wrong_height_voters(seed, 4, &[(seed % 4) as usize])
    });
}

#[test]
fn two_of_seven_sending_wrong_height_votes_do_not_stop_the_chain() {
    for_each_seed(3, |seed| {
        let a = (seed % 7) as usize;
        wrong_height_voters(seed, 7, &[a, (a + 3) % 7]);
    });
}
