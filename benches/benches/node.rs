//! Real `voltmesh node` processes on 127.0.0.1: sustained orders/s finalized and submit-to-commit
//! latency with 4 and 7 validators, and idle CPU per node process (target: under 5 % of a core).
//!
//! ```sh
//! cargo build --release -p voltmesh --bin voltmesh
//! cargo bench -p voltmesh-benches --bench node
//! ```
//! The bench finds the binary in `target/release/` (or `$VOLTMESH_BIN`) and skips with a message
//! if it is missing. Nodes pace blocks at the default 500 ms.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use voltmesh::testing::cluster::{open_interval, order, Cluster, HOUSEHOLDS};
use voltmesh_engine::Side;

/// Orders per measured batch.
const BATCH: u64 = 240;

/// Per-household nonces, so every order is new; each household always uses the same node, as a
/// bridge does, so its nonces reach the ledger in order.
struct Feeder {
    nonce: [u64; HOUSEHOLDS as usize],
    next: u64,
}

impl Feeder {
    fn submit(&mut self, cluster: &Cluster, household: u8, interval: i64) -> bool {
        let h = usize::from(household - 1);
        self.nonce[h] += 1;
        self.next += 1;
        let side = if household % 2 == 0 {
            Side::Buy
        } else {
            Side::Sell
        };
        let price = if side == Side::Buy { "0.25" } else { "0.12" };
        let o = order(
            household,
            &format!("o{}", self.next),
            interval,
            side,
            100,
            price,
            self.nonce[h],
        );
        cluster
            .submit(usize::from(household) % cluster.nodes.len(), &o)
            .0
            == 202
    }
}

/// CPU time (user + system) of a process in clock ticks, from /proc.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn nodes(c: &mut Criterion) {
    let Some(bin) = voltmesh_benches::release_binary() else {
        println!("node bench skipped: build the binary first (cargo build --release -p voltmesh --bin voltmesh)");
        return;
    };
    for n in [4usize, 7] {
        let root =
            std::env::temp_dir().join(format!("voltmesh-bench-node-{n}-{}", std::process::id()));
        let cluster = Cluster::start_paced(&bin, &root, n, &[], 500).expect("the cluster starts");
        cluster.expect_height(2, Duration::from_secs(60));
        let mut feeder = Feeder {
            nonce: [0; HOUSEHOLDS as usize],
            next: 0,
        };

        let mut group = c.benchmark_group(format!("node/{n}_validators"));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(20));
        group.throughput(Throughput::Elements(BATCH));
        group.bench_function("orders_finalized", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let target = cluster.orders_committed(0) + BATCH;
                    let interval = open_interval(2);
                    let start = Instant::now();
                    let accepted = (0..BATCH)
                        .filter(|i| {
                            feeder.submit(&cluster, (i % u64::from(HOUSEHOLDS)) as u8 + 1, interval)
                        })
                        .count();
                    assert_eq!(accepted as u64, BATCH, "every order is accepted");
                    cluster
                        .wait_for("the batch to commit", Duration::from_secs(60), |c| {
                            c.orders_committed(0) >= target
                        })
                        .expect("the batch commits");
                    total += start.elapsed();
                }
                total
            });
        });
        group.finish();

        // Submit-to-commit latency, one order at a time, as seen through node 0's API.
        let mut latencies = Vec::new();
        for i in 0..40u64 {
            let target = cluster.orders_committed(0) + 1;
            let start = Instant::now();
            assert!(feeder.submit(
                &cluster,
                (i % u64::from(HOUSEHOLDS)) as u8 + 1,
                open_interval(2)
            ));
            cluster
                .wait_for("the order to commit", Duration::from_secs(30), |c| {
                    c.orders_committed(0) >= target
                })
                .expect("the order commits");
            latencies.push(start.elapsed());
        }
        latencies.sort();
        let pct = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
        println!(
            "node/{n}_validators submit-to-commit latency over {} orders: p50 {:?}, p99 {:?}",
            latencies.len(),
            pct(50),
            pct(99)
        );

        // Idle CPU per node process: no orders for 10 s.
        std::thread::sleep(Duration::from_secs(2));
        let ticks_per_sec = 100.0; // USER_HZ on Linux
        let before: Vec<Option<u64>> = cluster
            .nodes
            .iter()
            .map(|node| node.pid().and_then(cpu_ticks))
            .collect();
        let window = Duration::from_secs(10);
        std::thread::sleep(window);
        let after: Vec<Option<u64>> = cluster
            .nodes
            .iter()
            .map(|node| node.pid().and_then(cpu_ticks))
            .collect();
        let shares: Vec<String> = before
            .iter()
            .zip(&after)
            .map(|(b, a)| match (b, a) {
                (Some(b), Some(a)) => format!(
                    "{:.1}%",
                    (a - b) as f64 / ticks_per_sec / window.as_secs_f64() * 100.0
                ),
                _ => "n/a".into(),
            })
            .collect();
        println!(
            "node/{n}_validators idle CPU per node process over {window:?} (share of one core): {}",
            shares.join(", ")
        );
        drop(cluster);
        let _ = std::fs::remove_dir_all(&root);
    }
}

criterion_group!(benches, nodes);
criterion_main!(benches);
