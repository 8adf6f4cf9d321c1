//! Liveness after a partition heals: while no side holds a quorum nothing new commits; once the
//! network heals, every replica commits again and they agree.

mod sim;

use sim::{for_each_seed, Sim, SimConfig};

fn partition_then_heal(seed: u64, config: SimConfig, groups: Vec<u8>) {
    let n = config.validators;
    let mut sim = Sim::new(seed, config);
    sim.run_until(5_000);
    sim.partition(groups);
    // Let in-flight messages settle; from then on no side can form a new QC, so the highest
    // certified view stays put. (Committed heights may still catch up inside a side, by block
    // sync or by certificates formed before the split, so they are not the right measure.)
    sim.run_until(8_000);
    let high_qc_view = |sim: &Sim| (0..n).map(|i| sim.replica(i).status().high_qc_view).max();
    let frozen = high_qc_view(&sim);
    sim.run_until(28_000);
    assert_eq!(
        frozen,
        high_qc_view(&sim),
        "seed {seed}: a QC formed without a quorum"
    );
    let during: Vec<u64> = (0..n).map(|i| sim.committed_height(i)).collect();
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
