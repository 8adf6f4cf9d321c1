//! Continuous double auction: submit-and-match throughput on a realistic stream (80 % new orders,
//! 12 % cancels, 8 % replaces). Target: at least 2 million commands per second on one core.
//!
//! `cargo bench -p voltmesh-benches --bench cda`

use criterion::{
    black_box, criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput,
};
use voltmesh_benches::{cda_stream, Command};
use voltmesh_engine::{ContinuousBook, MarketRules};

fn cda(c: &mut Criterion) {
    let mut group = c.benchmark_group("cda");
    for n in [10_000, 100_000] {
        let stream = cda_stream(n, 7);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("stream", n), &stream, |b, stream| {
            b.iter_batched_ref(
                || (ContinuousBook::new(MarketRules::PERMISSIVE), stream.clone()),
                |(book, stream)| {
                    for cmd in stream.drain(..) {
                        let _ = black_box(match cmd {
                            Command::Submit(order) => book.submit(order).map(|_| ()),
                            Command::Cancel(id) => book.cancel(&id).map(|_| ()),
                            Command::Replace(id, q, p) => book.replace(&id, q, p).map(|_| ()),
                        });
                    }
                    black_box(book.take_trades());
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, cda);
criterion_main!(benches);
