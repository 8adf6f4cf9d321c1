//! Settlement of one interval for 10,000 participants: the trades of a 10k-order uniform auction
//! and a meter reading for each participant.
//!
//! `cargo bench -p voltmesh-benches --bench settlement`

use std::collections::BTreeMap;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use voltmesh_engine::settlement::settle;
use voltmesh_engine::{uniform, ParticipantId, Price, Tariffs, K};

fn settlement(c: &mut Criterion) {
    let orders = voltmesh_benches::book(10_000, 3);
    let trades = uniform::clear(&orders, K::HALF).trades;
    let metered: BTreeMap<ParticipantId, i64> = (0..10_000)
        .map(|i| (format!("h{i}").into(), (i % 1_001) - 500))
        .collect();
    let tariffs = Tariffs::new(
        Price::from_micros(80_000).unwrap_or_default(),
        Price::from_micros(320_000).unwrap_or_default(),
    )
    .unwrap_or(Tariffs::UNBOUNDED);
    let fee = Price::from_micros(20_000).unwrap_or_default();
    let mut group = c.benchmark_group("settlement");
    group.throughput(Throughput::Elements(metered.len() as u64));
    group.bench_function("participants/10000", |b| {
        b.iter(|| black_box(settle(black_box(&trades), &metered, tariffs, fee)));
    });
    group.finish();
}

criterion_group!(benches, settlement);
criterion_main!(benches);
