//! Byzantine validators built from the test-only switches (`TestFault`): with 1 of 4 and 2 of 7
//! misbehaving, over a lossy, reordering network with clock skew, the chain keeps committing
//! and the oracle's safety invariants hold (no conflicting commits, no honest double vote).
//! A validator that floods every vote and timeout many times costs the honest replicas no
//! extra signature checks.

mod sim;

use sim::{for_each_seed, Sim, SimConfig};
use voltmesh_consensus::protocol::TestFault;

/// Blocks every honest node must commit in 40 s on the lossy network. Healthy is about 80.
/// With `WithholdVotes` the honest validators are exactly a quorum, and every vote lost (5 %
/// loss, votes are not retransmitted) costs a timed-out view with a doubled timer: 14 to 40 over
/// 30 seeds. The bar says the chain keeps committing; the non-lossy `sim_byz_*` tests set
/// tighter pace bars per switch.
const LOSSY_FLOOR: u64 = 10;

fn run(seed: u64, n: usize, faults: &[(usize, TestFault)], lossy: bool) -> Sim {
    let config = if lossy {
        SimConfig::new(n).lossy()
    } else {
        SimConfig::new(n)
    };
    let mut sim = Sim::new(seed, config);
    for &(node, fault) in faults {
        sim.set_fault(node, fault);
    }
    sim.run_until(40_000);
    sim.assert_committed_payloads_valid();
    sim
}

fn assert_commits(sim: &Sim, faults: &[(usize, TestFault)], at_least: u64) {
    let n = sim.nodes.len();
    for i in (0..n).filter(|i| faults.iter().all(|(b, _)| b != i)) {
        let height = sim.committed_height(i);
        assert!(
            height >= at_least,
            "seed {} n {n} {faults:?}: node {i} committed only {height} blocks in 40 s",
            sim.seed
        );
        assert_eq!(sim.replica(i).stats().commit_conflicts, 0);
    }
}

#[test]
fn one_of_four_byzantine_under_each_switch_keeps_the_chain_committing() {
    for_each_seed(2, |seed| {
        let bad = (seed % 4) as usize;
        for fault in [
            TestFault::WrongHeightVotes,
            TestFault::FutureTimestamps,
            TestFault::WithholdVotes,
            TestFault::Flood(20),
            TestFault::InvalidPayload,
        ] {
            let faults = [(bad, fault)];
            let sim = run(seed, 4, &faults, true);
            assert_commits(&sim, &faults, LOSSY_FLOOR);
        }
    });
}

#[test]
fn two_of_seven_byzantine_with_mixed_switches_keep_the_chain_committing() {
    for_each_seed(2, |seed| {
        let a = (seed % 7) as usize;
        let b = (a + 3) % 7;
        for (fa, fb) in [
            (TestFault::WrongHeightVotes, TestFault::FutureTimestamps),
            (TestFault::WithholdVotes, TestFault::Flood(20)),
            (TestFault::WithholdVotes, TestFault::WithholdVotes),
            (TestFault::InvalidPayload, TestFault::WrongHeightVotes),
        ] {
            let faults = [(a, fa), (b, fb)];
            let sim = run(seed, 7, &faults, true);
            assert_commits(&sim, &faults, LOSSY_FLOOR);
        }
    });
}

#[test]
fn a_flooding_validator_costs_no_extra_signature_checks() {
    for_each_seed(2, |seed| {
        let bad = (seed % 4) as usize;
        let honest = (bad + 1) % 4;
        let baseline = run(seed, 4, &[], false);
        let flooded = run(seed, 4, &[(bad, TestFault::Flood(50))], false);
        let per_block = |sim: &Sim| {
            sim.replica(honest).stats().signature_checks / sim.committed_height(honest).max(1)
        };
        let (base, flood) = (per_block(&baseline), per_block(&flooded));
        assert!(
            flooded.delivered > 10 * baseline.delivered / 2,
            "seed {seed}: the flood did not happen ({} vs {} messages)",
            flooded.delivered,
            baseline.delivered
        );
        assert!(
            flood <= base + 1,
            "seed {seed}: {flood} signature checks per block under a flood, {base} without"
        );
    });
}
