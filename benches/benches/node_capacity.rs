//! Capacity of real `voltmesh node` processes on 127.0.0.1, measured as capacity: concurrent
//! submitters keep the nodes loaded (`POST /v1/orders` arrays of [`BATCH`] freshly signed
//! orders, spread over every node's API, as long as fewer than [`BACKLOG`] accepted orders wait
//! to be committed), and each criterion iteration is the time node 0 takes to commit [`RUN`]
//! more orders under that load, from one observed commit to the first at least [`RUN`] orders
//! later: sustained finalized orders/s, not a burst and its drain. The load generator signs on
//! the same 2-core machine, so its CPU counts against the nodes.
//! Then a paced run at half the measured rate prints submit-to-commit latency p50 / p99 (the time
//! from an order's request to node 0's API showing the block that holds it). 4 and 7 validators;
//! 10,000 participants signed for by one bridge key, admission limits raised so that quotas do
//! not bind.
//!
//! With 4 validators it then measures memory against chain length (issue 12): each node's
//! resident memory (`VmRSS`) at a chain of `L` committed orders (twice what the runs above
//! committed) and at `2L`, the ratio, and the store's bytes on disk per committed order. With
//! `VOLTMESH_BENCH_WIPE_ORDERS=1000000` it then grows the ledger to that many orders, wipes one
//! validator's data directory and restarts it with `[state_sync]` peers, and prints how long it
//! took to vote again (target: within 60 s on a ledger of at least 1 million orders).
//!
//! ```sh
//! cargo build --release -p voltmesh --bin voltmesh
//! cargo bench -p voltmesh-benches --bench node_capacity
//! VOLTMESH_BENCH_VALIDATORS=4 cargo bench -p voltmesh-benches --bench node_capacity  # one size
//! VOLTMESH_BENCH_MEMORY=0 cargo bench -p voltmesh-benches --bench node_capacity  # no memory phase
//! ```
//! The bench finds the binary in `target/release/` (or `$VOLTMESH_BIN`) and skips with a message
//! if it is missing. Nodes pace blocks at the default 500 ms.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use voltmesh::testing::cluster::{
    bridge_key, bridge_participant, open_interval, Cluster, ClusterOptions, INTERVAL_SECS,
    NEIGHBORHOOD,
};
use voltmesh_benches::{bytes_under, rss_mb};
use voltmesh_engine::{AdmissionLimits, Side};
use voltmesh_wire::client::{ClientError, Submitted};
use voltmesh_wire::{OrderTicket, SignedOrder};

/// Participants, each signed for by the bridge key.
const PARTICIPANTS: u32 = 10_000;
/// Orders per criterion iteration.
const RUN: u64 = 6_000;
/// Orders per request.
const BATCH: usize = 250;
/// Concurrent submitters.
const SUBMITTERS: usize = 4;

/// Signs fresh orders for intervals that stay open while the bench runs: each interval at
/// least 10 s plus the gate lead ahead gets `per_interval` orders, round robin over the
/// participants (so each stays within its per-interval quota), then the next interval.
struct Orders {
    per_interval: u64,
    /// The interval being filled and how many orders it has.
    filling: Mutex<(i64, u64)>,
    next_id: AtomicU64,
}

impl Orders {
    fn new(per_interval: u64) -> Orders {
        Orders {
            per_interval,
            filling: Mutex::new((0, 0)),
            next_id: AtomicU64::new(0),
        }
    }

    fn take(&self, count: usize) -> Vec<SignedOrder> {
        let mut filling = self.filling.lock().unwrap_or_else(|e| e.into_inner());
        let earliest = open_interval(10);
        if filling.0 < earliest {
            *filling = (earliest, 0);
        }
        (0..count)
            .map(|_| {
                if filling.1 == self.per_interval {
                    *filling = (filling.0 + INTERVAL_SECS, 0);
                }
                let p = u32::try_from(filling.1 % u64::from(PARTICIPANTS)).unwrap_or(0);
                filling.1 += 1;
                let k = self.next_id.fetch_add(1, Ordering::Relaxed);
                let sell = k % 2 == 0;
                OrderTicket {
                    participant: bridge_participant(p).into(),
                    interval_start: filling.0,
                    id: format!("c{k}").as_str().into(),
                    side: if sell { Side::Sell } else { Side::Buy },
                    quantity_wh: 100,
                    limit_price: (if sell { "0.12" } else { "0.25" }).parse().unwrap(),
                    nonce: k + 1,
                }
                .sign(NEIGHBORHOOD, &bridge_key())
            })
            .collect()
    }
}

/// Most orders accepted but not yet committed on node 0 while the sustained load runs: enough
/// to fill a few blocks ahead, few enough that a queued order's interval stays open.
const BACKLOG: u64 = 15_000;

/// A sustained load: [`SUBMITTERS`] threads sign and post batches of [`BATCH`] orders, each to
/// the next node in turn, for as long as the backlog (orders accepted and not yet committed on
/// node 0) is under [`BACKLOG`]; one thread polls node 0's committed count every 5 ms. The
/// generator signs on the same machine as the nodes, so its CPU counts against them.
struct Load<'a> {
    cluster: &'a Cluster,
    orders: &'a Orders,
    accepted: AtomicU64,
    committed: AtomicU64,
    /// Orders a node refused with "retry later" (its mempool was full).
    refused_busy: AtomicU64,
    stopped: std::sync::atomic::AtomicBool,
}

impl<'a> Load<'a> {
    fn new(cluster: &'a Cluster, orders: &'a Orders) -> Load<'a> {
        let committed = cluster.orders_committed(0);
        Load {
            cluster,
            orders,
            accepted: AtomicU64::new(committed),
            committed: AtomicU64::new(committed),
            refused_busy: AtomicU64::new(0),
            stopped: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Starts the poller and the submitters on `s`; they run until [`Load::stop`].
    fn spawn<'scope>(&'scope self, s: &'scope std::thread::Scope<'scope, '_>) {
        let load = self;
        s.spawn(move || {
            while !load.stopped.load(Ordering::Relaxed) {
                let committed = load.cluster.orders_committed(0);
                load.committed.fetch_max(committed, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        for t in 0..SUBMITTERS {
            s.spawn(move || {
                let mut b = t;
                while !load.stopped.load(Ordering::Relaxed) {
                    let backlog = load.accepted.load(Ordering::Relaxed)
                        - load
                            .committed
                            .load(Ordering::Relaxed)
                            .min(load.accepted.load(Ordering::Relaxed));
                    if backlog >= BACKLOG {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    let batch = load.orders.take(BATCH);
                    let node = &load.cluster.nodes[b % load.cluster.nodes.len()];
                    b += SUBMITTERS;
                    let results = node
                        .client()
                        .submit_batch(&batch)
                        .or_else(|_| node.client().submit_batch(&batch))
                        .expect("the node answers");
                    let mut ok = 0;
                    let mut busy = 0;
                    for result in &results {
                        match result {
                            Ok(Submitted::Accepted | Submitted::AlreadyThere) => ok += 1,
                            // A full mempool (a node that lags the quorum) asks to retry later:
                            // those orders are dropped and not counted.
                            Err(ClientError::Unavailable(_)) => busy += 1,
                            Err(e) => panic!("an order of the load was refused: {e}"),
                        }
                    }
                    load.accepted.fetch_add(ok, Ordering::Relaxed);
                    load.refused_busy.fetch_add(busy, Ordering::Relaxed);
                    if busy > 0 {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            });
        }
    }

    fn committed(&self) -> u64 {
        self.committed.load(Ordering::Relaxed)
    }

    /// Waits for node 0's committed count to change and returns the new count.
    fn next_commit(&self) -> u64 {
        let now = self.committed();
        self.wait_committed(now + 1)
    }

    /// Waits until node 0 has committed at least `target` orders and returns its count.
    fn wait_committed(&self, target: u64) -> u64 {
        let start = Instant::now();
        loop {
            let committed = self.committed();
            if committed >= target {
                return committed;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "node 0 committed {committed} orders, not {target}, within 120 s"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }
}

/// Stops a [`Load`] when dropped.
struct StopOnDrop<'l, 'a>(&'l Load<'a>);

impl Drop for StopOnDrop<'_, '_> {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// Posts `orders` in batches from [`SUBMITTERS`] threads, batch `b` to node `b % n`; returns how
/// many were accepted.
fn submit_concurrently(cluster: &Cluster, orders: Vec<SignedOrder>) -> u64 {
    let batches: Vec<Vec<SignedOrder>> = orders.chunks(BATCH).map(<[_]>::to_vec).collect();
    let queue = Mutex::new(batches.into_iter().enumerate());
    let accepted = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..SUBMITTERS {
            s.spawn(|| loop {
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                let Some((b, batch)) = next else { return };
                let node = &cluster.nodes[b % cluster.nodes.len()];
                // A batch is safe to send again: orders the node took come back `duplicate_id`.
                let results = node
                    .client()
                    .submit_batch(&batch)
                    .or_else(|_| node.client().submit_batch(&batch))
                    .expect("the node answers");
                let ok = results
                    .iter()
                    .filter(|r| matches!(r, Ok(Submitted::Accepted | Submitted::AlreadyThere)))
                    .count();
                accepted.fetch_add(ok as u64, Ordering::Relaxed);
            });
        }
    });
    accepted.into_inner()
}

/// How fast one client gets a bridge's worth of orders into one node: 10,000 orders in
/// requests of [`voltmesh_wire::api::MAX_BATCH_ORDERS`], one after the other, to node 0 (what a
/// bridge with 10,000 households does before each gate). Prints the time to all answers.
fn one_client(cluster: &Cluster, orders: &Orders) {
    const ORDERS: usize = 10_000;
    let batch = orders.take(ORDERS);
    let client = cluster.nodes[0].client();
    let start = Instant::now();
    let mut accepted = 0;
    for chunk in batch.chunks(voltmesh_wire::api::MAX_BATCH_ORDERS) {
        let results = client.submit_batch(chunk).expect("the node answers");
        accepted += results.iter().filter(|r| r.is_ok()).count();
    }
    let elapsed = start.elapsed();
    println!(
        "node_capacity/{}_validators: one client, {ORDERS} orders in requests of {} to node 0: all answered in {elapsed:.2?} ({:.0} orders/s), {accepted} accepted",
        cluster.nodes.len(),
        voltmesh_wire::api::MAX_BATCH_ORDERS,
        ORDERS as f64 / elapsed.as_secs_f64()
    );
}

/// Submits at `rate` orders/s for `duration` (batches of 50 from one thread) and returns every
/// order's submit-to-commit latency as node 0 shows it (committed blocks polled every 10 ms).
fn latencies(cluster: &Cluster, orders: &Orders, rate: f64, duration: Duration) -> Vec<Duration> {
    const PACED: usize = 50;
    let sent: Mutex<HashMap<String, Instant>> = Mutex::default();
    let done = std::sync::atomic::AtomicBool::new(false);
    let mut seen = Vec::new();
    std::thread::scope(|s| {
        s.spawn(|| {
            let start = Instant::now();
            let gap = Duration::from_secs_f64(PACED as f64 / rate);
            let mut b = 0u32;
            while start.elapsed() < duration {
                let batch = orders.take(PACED);
                let at = Instant::now();
                sent.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(batch.iter().map(|o| (o.ticket.id.to_string(), at)));
                let node = &cluster.nodes[b as usize % cluster.nodes.len()];
                if let Err(e) = node.client().submit_batch(&batch) {
                    eprintln!("a paced batch was not taken ({e}); its orders are not counted");
                    let mut sent = sent.lock().unwrap_or_else(|e| e.into_inner());
                    for order in &batch {
                        sent.remove(order.ticket.id.as_str());
                    }
                }
                b += 1;
                std::thread::sleep((start + gap * b).saturating_duration_since(Instant::now()));
            }
            done.store(true, Ordering::Relaxed);
        });
        let mut height = cluster.height(0);
        let mut quiet_since: Option<Instant> = None;
        loop {
            let tip = cluster.height(0);
            for h in height + 1..=tip {
                let block = cluster.nodes[0]
                    .client()
                    .block(h)
                    .expect("the node answers")
                    .expect("committed");
                let now = Instant::now();
                let sent = sent.lock().unwrap_or_else(|e| e.into_inner());
                seen.extend(
                    block
                        .orders
                        .iter()
                        .filter_map(|o| sent.get(o.ticket.id.as_str()))
                        .map(|at| now - *at),
                );
            }
            height = tip;
            if done.load(Ordering::Relaxed) {
                let all = seen.len() >= sent.lock().unwrap_or_else(|e| e.into_inner()).len();
                let since = *quiet_since.get_or_insert_with(Instant::now);
                if all || since.elapsed() > Duration::from_secs(30) {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    seen
}

fn capacity(c: &mut Criterion) {
    let Some(bin) = voltmesh_benches::release_binary() else {
        println!("node_capacity bench skipped: build the binary first (cargo build --release -p voltmesh --bin voltmesh)");
        return;
    };
    let admission = AdmissionLimits {
        max_orders_per_interval: 1_000_000,
        ..AdmissionLimits::DEFAULT
    };
    // `VOLTMESH_BENCH_VALIDATORS=4` runs one cluster size only.
    let sizes: Vec<usize> = std::env::var("VOLTMESH_BENCH_VALIDATORS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or_else(|| vec![4, 7], |n| vec![n]);
    for n in sizes {
        let root = std::env::temp_dir().join(format!(
            "voltmesh-bench-capacity-{n}-{}",
            std::process::id()
        ));
        let options = ClusterOptions {
            block_interval_ms: 500,
            bridge_participants: PARTICIPANTS,
            admission: Some(admission),
            ..ClusterOptions::new(n)
        };
        let mut cluster = Cluster::start_with(&bin, &root, &options).expect("the cluster starts");
        cluster.expect_height(2, Duration::from_secs(60));
        let orders = Orders::new(
            u64::from(PARTICIPANTS) * u64::from(admission.max_orders_per_participant_interval),
        );
        let mut rates = Vec::new();
        let mut group = c.benchmark_group(format!("node_capacity/{n}_validators"));
        group
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_millis(1))
            .measurement_time(Duration::from_secs(1));
        group.throughput(Throughput::Elements(RUN));
        let load = Load::new(&cluster, &orders);
        std::thread::scope(|s| {
            load.spawn(s);
            // Stops the load when this scope ends, also by a panic (the scope would otherwise
            // wait for the submitters for ever).
            let _stop = StopOnDrop(&load);
            // Fill the pipeline before the first measured run.
            load.wait_committed(load.committed() + RUN);
            group.bench_function("orders_finalized", |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        // From one observed commit to the first at least RUN orders later, so
                        // that a run is not cut in the middle of a block interval.
                        let from = load.next_commit();
                        let start = Instant::now();
                        let to = load.wait_committed(from + RUN);
                        let elapsed = start.elapsed();
                        let rate = (to - from) as f64 / elapsed.as_secs_f64();
                        rates.push(rate);
                        total += Duration::from_secs_f64(RUN as f64 / rate);
                    }
                    total
                });
            });
        });
        println!(
            "node_capacity/{n}_validators: {} orders refused as \"retry later\" during the sustained load; heights at its end: {:?}",
            load.refused_busy.load(Ordering::Relaxed),
            (0..n).map(|i| cluster.height(i)).collect::<Vec<_>>()
        );
        group.finish();

        rates.sort_by(f64::total_cmp);
        let sustained = rates[rates.len() / 2];
        one_client(&cluster, &orders);
        let mut lat = latencies(&cluster, &orders, sustained / 2.0, Duration::from_secs(20));
        lat.sort();
        let pct = |p: usize| lat[(lat.len() * p / 100).min(lat.len().saturating_sub(1))];
        println!(
            "node_capacity/{n}_validators: sustained {sustained:.0} finalized orders/s (median of {} runs of {RUN}); at {:.0} orders/s, submit-to-commit over {} orders: p50 {:?}, p99 {:?}",
            rates.len(),
            sustained / 2.0,
            lat.len(),
            pct(50),
            pct(99)
        );
        // `VOLTMESH_BENCH_MEMORY=0` skips the memory phase (capacity only).
        if n == 4 && std::env::var("VOLTMESH_BENCH_MEMORY").as_deref() != Ok("0") {
            memory_against_chain_length(&cluster, &orders);
            if let Some(ledger) = std::env::var("VOLTMESH_BENCH_WIPE_ORDERS")
                .ok()
                .and_then(|v| v.parse().ok())
            {
                wipe_on_a_long_ledger(&mut cluster, &orders, ledger);
            }
        }
        drop(cluster);
        let _ = std::fs::remove_dir_all(&root);
    }
}

/// Submits `count` more orders, a run at a time, each committed before the next (orders target
/// intervals a little ahead; a longer backlog would see their gates close).
fn commit_more(cluster: &Cluster, orders: &Orders, count: u64) {
    let mut sent = 0;
    while sent < count {
        let chunk = RUN.min(count - sent);
        let target = cluster.orders_committed(0) + chunk;
        let accepted =
            submit_concurrently(cluster, orders.take(usize::try_from(chunk).unwrap_or(0)));
        assert_eq!(accepted, chunk, "every order is accepted");
        cluster
            .wait_for("the run to commit", Duration::from_secs(120), |c| {
                c.orders_committed(0) >= target
            })
            .expect("the run commits");
        sent += chunk;
    }
}

/// Prints each node's resident memory at a chain of `L` committed orders and at `2L`, and the
/// store's size per committed order. `L` is twice what the capacity runs committed, so that
/// the first figure is taken after the store's page cache and the allocator have warmed up
/// (the issue's bar compares a chain with one twice as long, not a young node with an old one).
fn memory_against_chain_length(cluster: &Cluster, orders: &Orders) {
    let rss = |c: &Cluster| -> Vec<f64> {
        // Let the last block's work settle before reading.
        std::thread::sleep(Duration::from_secs(5));
        c.nodes
            .iter()
            .map(|node| node.pid().and_then(rss_mb).unwrap_or(f64::NAN))
            .collect()
    };
    let warm = cluster.orders_committed(0);
    commit_more(cluster, orders, warm);
    let once = cluster.orders_committed(0);
    let (height_1x, rss_1x) = (cluster.height(0), rss(cluster));
    commit_more(cluster, orders, once);
    let twice = cluster.orders_committed(0);
    let (height_2x, rss_2x) = (cluster.height(0), rss(cluster));
    let store = bytes_under(&cluster.data_dir(0));
    let fmt = |v: &[f64]| {
        v.iter()
            .map(|mb| format!("{mb:.0}"))
            .collect::<Vec<_>>()
            .join("/")
    };
    let ratio = rss_2x.iter().sum::<f64>() / rss_1x.iter().sum::<f64>();
    println!(
        "node_memory/4_validators ({PARTICIPANTS} households in genesis): resident MB per node at {once} committed orders (height {height_1x}): {}; at {twice} (height {height_2x}): {}; 2x/1x = {ratio:.2}; store {:.0} bytes per committed order",
        fmt(&rss_1x),
        fmt(&rss_2x),
        store as f64 / twice as f64
    );
}

/// Grows the ledger to `ledger` committed orders, wipes the last node's data directory, restarts
/// it from its peers' snapshot, and prints how long until it signs a vote again.
fn wipe_on_a_long_ledger(cluster: &mut Cluster, orders: &Orders, ledger: u64) {
    let have = cluster.orders_committed(0);
    commit_more(cluster, orders, ledger.saturating_sub(have));
    let wiped = cluster.nodes.len() - 1;
    let (orders_then, height_then) = (cluster.orders_committed(0), cluster.height(0));
    let store = bytes_under(&cluster.data_dir(0));
    let start = Instant::now();
    cluster.wipe_and_state_sync(wiped).expect("restart");
    cluster
        .wait_for(
            "the wiped node to vote again",
            Duration::from_secs(600),
            |c| c.status(wiped).is_some_and(|s| s.votes > 0),
        )
        .expect("votes again");
    let voting = start.elapsed();
    let status = cluster.status(wiped).expect("status");
    println!(
        "state_sync/4_validators: a node wiped at {orders_then} committed orders (height {height_then}, {:.0} MB store on a peer) voted again {voting:.1?} after its restart, at height {}",
        store as f64 / 1e6,
        status.height
    );
}

criterion_group!(benches, capacity);
criterion_main!(benches);
