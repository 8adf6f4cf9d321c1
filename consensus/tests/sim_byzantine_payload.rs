//! Bar (e) of the node issue, in simulation: a validator built to propose payloads that the
//! others' `App::validate` rejects (the test-only `TestFault::InvalidPayload` switch) never gets
//! such a block committed, and the chain moves on without it.

mod sim;

use sim::{for_each_seed, Sim, SimConfig};
use voltmesh_consensus::protocol::{TestFault, ValidatorIndex};

fn byzantine_proposer(seed: u64, n: usize) {
    let bad = (seed % n as u64) as usize;
    let mut sim = Sim::new(seed, SimConfig::new(n));
    sim.set_fault(bad, TestFault::InvalidPayload);
    sim.run_until(40_000);
    sim.assert_committed_payloads_valid();
    let bad_index = ValidatorIndex(u16::try_from(bad).expect("small"));
    for node in &sim.nodes {
        assert!(
            node.store
                .committed
                .iter()
                .all(|b| b.proposer() != bad_index),
            "seed {seed}: a block of the faulty proposer was committed"
        );
    }
    assert!(
        sim.replica(bad).stats().proposals > 0,
        "seed {seed}: the faulty validator never got to propose, the test shows nothing"
    );
    let refused: u64 = (0..n)
        .filter(|i| *i != bad)
        .map(|i| sim.replica(i).stats().rejected_proposals)
        .sum();
    assert!(refused > 0, "seed {seed}: nobody refused a bad proposal");
    let height = sim.min_live_height();
    // Healthy is ~80 in 40 s. Each failed turn of the faulty validator costs one timed-out
    // view and is recorded in the next block, which keeps it out of the rotation for a while:
    // about 53 in 40 s.
    assert!(
        height >= 40,
        "seed {seed}: chain stalled at {height} in 40 s"
    );
}

#[test]
fn invalid_payload_is_never_committed_and_chain_moves_on() {
    for_each_seed(2, |seed| {
        byzantine_proposer(seed, 4);
        byzantine_proposer(seed, 7);
    });
}
