//! Audit H2 in simulation: one validator floods the others with unasked sync responses (its
//! own certified chain, replayed) and with many conflicting proposals for the current view.
//! The others keep committing one ledger, drop the unasked responses, and keep what they
//! store bounded by the views that actually happened.

mod sim;

use sim::{for_each_seed, Sim, SimConfig};
use voltmesh_consensus::protocol::{Block, Msg, Proposal};

fn flood(seed: u64) {
    let byz = 3;
    let mut sim = Sim::new(seed, SimConfig::new(4));
    sim.run_until(3_000);
    let mut t = 3_000;
    while t < 30_000 {
        let chain: Vec<Block> = sim.nodes[byz]
            .store
            .committed
            .iter()
            .rev()
            .take(4)
            .rev()
            .map(|b| Block::clone(b))
            .collect();
        // The newest QC the Byzantine node holds (the justify of its newest stored block) and
        // the block it certifies: conflicting children of it are valid proposals for the view
        // after the QC's whenever the Byzantine node leads that view.
        let store = &sim.nodes[byz].store;
        let base = store
            .blocks
            .values()
            .max_by_key(|b| b.view())
            .and_then(|newest| {
                let qc = newest.justify().clone();
                store
                    .blocks
                    .get(&qc.block)
                    .map(|parent| (parent.clone(), qc))
            });
        for to in 0..3 {
            sim.send_as(
                byz,
                to,
                &Msg::SyncResponse {
                    blocks: chain.clone(),
                    qc: None,
                },
            );
            if let Some((parent, qc)) = &base {
                let key = sim.nodes[byz].key.clone();
                for i in 0..10u64 {
                    let b = Block::new(
                        parent.height() + 1,
                        qc.view + 1,
                        sim.nodes[byz].index,
                        1_700_000_000_000 + t + i,
                        qc.clone(),
                        vec![i as u8],
                    );
                    let p = Proposal::new(&sim.chain, &key, b, None);
                    sim.send_as(byz, to, &Msg::Proposal(p));
                }
            }
        }
        t += 250;
        sim.run_until(t);
    }
    let top_view = (0..3).map(|i| sim.replica(i).status().view).max().unwrap();
    for i in 0..3 {
        assert!(
            sim.committed_height(i) > 20,
            "seed {seed}: node {i} stalled at {}",
            sim.committed_height(i)
        );
        assert!(
            sim.replica(i).stats().unasked_sync_responses > 0,
            "seed {seed}: node {i} took the unasked responses"
        );
        let stored = sim.nodes[i].store.blocks.len() as u64;
        assert!(
            stored <= 2 * top_view + 2,
            "seed {seed}: node {i} stored {stored} blocks for {top_view} views"
        );
    }
}

#[test]
fn unasked_sync_responses_and_proposal_floods_stay_bounded() {
    for_each_seed(2, flood);
}
