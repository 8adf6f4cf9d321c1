//! Uniform-price clearing of 1k to 1M orders beside a bare sort of the same prices (the floor:
//! clearing must at least sort both sides). Target: clearing 1M orders within 3× of the sort.
//!
//! `sort_prices_only` sorts prices already copied out of the orders (setup, not timed);
//! `extract_and_sort_prices` also reads them out of the order slice.
//! `uniform` and `pay_as_bid` stop at the matching (price, volume, pairs, leftovers, with
//! orders named on demand); `uniform_outcome` also builds the owned result with every id, as `voltmesh clear` and
//! the ledger need it.
//!
//! `cargo bench -p voltmesh-benches --bench clearing`

use criterion::{
    black_box, criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput,
};
use voltmesh_engine::{pay_as_bid, uniform, PayAsBidPricing, K};

const SIZES: [usize; 4] = [1_000, 10_000, 100_000, 1_000_000];

fn clearing(c: &mut Criterion) {
    let mut group = c.benchmark_group("clearing");
    for n in SIZES {
        if n >= 100_000 {
            group.sample_size(10);
        }
        let orders = voltmesh_benches::book(n, 42);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(
            BenchmarkId::new("sort_prices_only", n),
            &orders,
            |b, orders| {
                b.iter_batched_ref(
                    || {
                        orders
                            .iter()
                            .map(|o| o.limit_price.micros())
                            .collect::<Vec<i64>>()
                    },
                    |prices| prices.sort_unstable(),
                    BatchSize::LargeInput,
                );
            },
        );
        // The floor including reading each order's price out of the order slice.
        group.bench_with_input(
            BenchmarkId::new("extract_and_sort_prices", n),
            &orders,
            |b, orders| {
                b.iter(|| {
                    let mut prices: Vec<i64> =
                        orders.iter().map(|o| o.limit_price.micros()).collect();
                    prices.sort_unstable();
                    black_box(prices)
                });
            },
        );
        // Price, volume and who trades with whom (trades named lazily).
        group.bench_with_input(BenchmarkId::new("uniform", n), &orders, |b, orders| {
            b.iter(|| black_box(uniform::match_orders(black_box(orders), K::HALF)));
        });
        // The same plus an owned outcome: every trade and leftover with its ids.
        group.bench_with_input(
            BenchmarkId::new("uniform_outcome", n),
            &orders,
            |b, orders| {
                b.iter(|| black_box(uniform::clear(black_box(orders), K::HALF)));
            },
        );
        group.bench_with_input(BenchmarkId::new("pay_as_bid", n), &orders, |b, orders| {
            b.iter(|| {
                black_box(pay_as_bid::match_orders(
                    black_box(orders),
                    PayAsBidPricing::Midpoint,
                ))
            });
        });
    }
    group.finish();
}

criterion_group!(benches, clearing);
criterion_main!(benches);
