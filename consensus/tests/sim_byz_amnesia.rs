//! Audit M5 in simulation: a validator whose store lost its safety record restarts in the
//! middle of a view it voted in, and its (equivocating) leader then sends it a conflicting block
//! for that view. Restarted with `Replica::restore_untrusted`, it abstains until the amnesia
//! guard lifts: the double-vote oracle stays silent, the chain keeps committing, and the node
//! votes again once it is past every view it could have signed in. A fresh chain where every
//! node starts guarded still starts.

mod sim;

use sim::{for_each_seed, Sim, SimConfig};
use voltmesh_consensus::protocol::ValidatorIndex;

/// Runs until `node` has voted in its current view (and the QC has not moved it on yet).
fn until_voted_in_current_view(sim: &mut Sim, node: usize) -> u64 {
    for _ in 0..20_000 {
        sim.run_for(1);
        let status = sim.replica(node).status();
        let voted = sim
            .votes
            .contains_key(&(ValidatorIndex(node as u16), status.view));
        if voted && status.last_voted_view == status.view {
            return status.view;
        }
    }
    panic!("seed {}: node {node} never voted", sim.seed);
}

fn wiped_safety_record_mid_view(seed: u64) {
    let mut sim = Sim::new(seed, SimConfig::new(4));
    sim.run_until(3_000);
    let node = (seed % 4) as usize;
    let view = until_voted_in_current_view(&mut sim, node);
    let me = ValidatorIndex(node as u16);
    let voted_for = sim.votes[&(me, view)];
    let block = sim.nodes[node].store.blocks[&voted_for].clone();
    let height_before = sim.min_live_height();
    let votes_before = sim.replica(node).stats().votes;

    sim.crash(node);
    sim.nodes[node].store.safety = None;
    sim.restart_untrusted(node);
    let leader = usize::from(block.proposer().0);
    if leader != node {
        // The leader of that view equivocates towards the amnesiac validator.
        let other = sim.equivocation_of(&block);
        sim.inject(leader, node, &other);
    }
    // Every vote sent is checked by the oracle: a second vote in `view` panics.
    sim.run_for(20_000);

    let replica = sim.replica(node);
    assert!(!replica.is_guarded(), "seed {seed}: the guard never lifted");
    assert!(
        replica.stats().abstained > 0 || leader == node,
        "seed {seed}: the guard was never tested"
    );
    assert!(
        replica.stats().votes > 0,
        "seed {seed}: node {node} never voted again (had {votes_before} before)"
    );
    let height = sim.min_live_height();
    assert!(
        height >= height_before + 20,
        "seed {seed}: chain went from {height_before} to only {height} in 20 s"
    );
}

#[test]
fn a_validator_that_lost_its_safety_record_mid_view_never_double_votes() {
    for_each_seed(4, wiped_safety_record_mid_view);
}

#[test]
fn a_fresh_chain_of_guarded_validators_starts() {
    for_each_seed(2, |seed| {
        for n in [4, 7] {
            let mut sim = Sim::new(seed, SimConfig::new(n));
            for i in 0..n {
                sim.crash(i);
                sim.restart_untrusted(i);
            }
            sim.run_until(20_000);
            let height = sim.min_live_height();
            assert!(
                height >= 20,
                "seed {seed} n {n}: a fresh guarded chain committed only {height} in 20 s"
            );
            for i in 0..n {
                assert!(
                    !sim.replica(i).is_guarded(),
                    "seed {seed}: node {i} still guarded"
                );
            }
        }
    });
}
