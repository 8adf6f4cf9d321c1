//! Safety under faults: across many seeds, with message loss, duplication, delay, reordering,
//! clock skew, crashes, restarts and partitions, no two replicas ever commit different blocks
//! at the same height, no validator votes twice in a view, and the chain still grows.
//!
//! More seeds: `VOLTMESH_SEEDS=200 cargo test -p voltmesh-consensus --test sim_safety`.

mod sim;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sim::{for_each_seed, Sim, SimConfig};

#[test]
fn no_conflicting_commits_under_faults() {
    for_each_seed(6, |seed| {
        let n = if seed % 2 == 0 { 4 } else { 7 };
        let mut sim = Sim::new(seed, SimConfig::new(n).lossy());
        let f = (n - 1) / 3;
        let mut chaos = ChaCha8Rng::seed_from_u64(seed ^ 0xC4A0);
        // Safety phase: 40 s of random crashes, restarts and partitions.
        for _ in 0..8 {
            match chaos.gen_range(0..3) {
                0 => {
                    let down = (0..n).filter(|i| !sim.is_up(*i)).count();
                    if down < f {
                        sim.crash(chaos.gen_range(0..n));
                    }
                }
                1 => {
                    if let Some(i) = (0..n).find(|i| !sim.is_up(*i)) {
                        sim.restart(i);
                    }
                }
                _ => {
                    let groups = (0..n).map(|_| chaos.gen_range(0..2u8)).collect();
                    sim.partition(groups);
                }
            }
            sim.run_for(5_000);
        }
        // Liveness phase: heal everything, then the chain must grow on every node.
        sim.heal();
        for i in 0..n {
            if !sim.is_up(i) {
                sim.restart(i);
            }
        }
        let before = sim.committed.len() as u64;
        sim.run_for(30_000);
        let after = sim.min_live_height();
        assert!(
            after > before + 5,
            "seed {seed}: chain did not grow after healing ({before} -> {after})"
        );
        assert_eq!(
            (0..n)
                .map(|i| sim.replica(i).stats().commit_conflicts)
                .sum::<u64>(),
            0
        );
    });
}

/// A byzantine leader sends two conflicting, individually valid proposals for each of its views
/// to different halves of the network and votes for both; on a lossy network. Honest replicas
/// never commit conflicting blocks (checked on every commit) and the chain keeps growing.
#[test]
fn equivocating_leader_cannot_split_the_chain() {
    for_each_seed(2, |seed| {
        let n = if seed % 2 == 0 { 4 } else { 7 };
        let mut config = SimConfig::new(n).lossy();
        let bad = (seed % n as u64) as usize;
        config.equivocator = Some(bad);
        let mut sim = Sim::new(seed, config);
        sim.run_until(40_000);
        let height = sim.min_live_height();
        assert!(height >= 20, "seed {seed}: chain stalled at {height}");
        assert!(
            sim.split_views(bad) > 0,
            "seed {seed}: the equivocation never split the honest votes; the test shows nothing"
        );
    });
}
