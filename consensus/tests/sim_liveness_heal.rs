//! Liveness after a partition heals: while no side holds a quorum nothing new commits; once the
//! network heals, every replica commits again and they agree.

mod sim;

use sim::{for_each_seed, Sim, SimConfig};

fn partition_then_heal(seed: u64, config: SimConfig, groups: Vec<u8>) {
    let n = config.validators;
    let mut sim = Sim::new(seed, config);
    sim.run_until(5_000);
    sim.partition(groups);
    // Let in-flight certificates settle, then nothing may commit without a quorum.
    sim.run_until(8_000);
    let frozen: Vec<u64> = (0..n).map(|i| sim.committed_height(i)).collect();
    sim.run_until(28_000);
    let during: Vec<u64> = (0..n).map(|i| sim.committed_height(i)).collect();
    assert_eq!(frozen, during, "seed {seed}: committed without a quorum");
    sim.heal();
    sim.run_until(48_000);
    let top = *during.iter().max().unwrap_or(&0);
    for i in 0..n {
        let h = sim.committed_height(i);
        assert!(
            h >= top + 10,
            "seed {seed}: node {i} at {h} after healing (was {top})"
        );
    }
}

#[test]
fn four_validators_split_two_two_recover() {
    for_each_seed(3, |seed| {
        partition_then_heal(seed, SimConfig::new(4), vec![0, 0, 1, 1])
    });
}

#[test]
fn seven_validators_split_three_four_recover_on_a_lossy_network() {
    for_each_seed(2, |seed| {
        partition_then_heal(seed, SimConfig::new(7).lossy(), vec![0, 1, 0, 1, 0, 1, 1]);
    });
}
