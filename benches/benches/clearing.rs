//! Uniform-price clearing of 1k to 1M orders beside a bare sort of the same prices (the floor:
//! clearing must at least sort both sides). Target: clearing 1M orders within 3× of the sort.
//!
//! `sort_prices_only` sorts prices already copied out of the orders (setup, not timed);
//! `extract_and_sort_prices` also reads them out of the order slice.
//! `uniform` and `pay_as_bid` clear the book the nodes hold (a [`CallAuction`] the orders were
//! submitted to, as the ledger and the simulation fill it) and stop at the matching (price,
//! volume, pairs, leftovers, with orders named on demand); `uniform_outcome` is the ledger's call,
//! `CallAuction::clear`, which also builds the owned result with every id. `uniform_slice` clears
//! a plain order slice (`uniform::match_orders`, as `voltmesh clear` does). `submit` fills the
//! book (the work moved out of clearing into the interval: keys and histograms kept per order).
//!
//! `cargo bench -p voltmesh-benches --bench clearing`

use criterion::{
    black_box, criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput,
};
use voltmesh_engine::{uniform, CallAuction, MarketRules, Mechanism, Order, PayAsBidPricing, K};

fn auction(orders: &[Order]) -> CallAuction {
    let mut book = CallAuction::with_capacity(MarketRules::PERMISSIVE, orders.len());
    for o in orders {
        if let Err(e) = book.submit(o.clone()) {
            panic!("bench order refused: {e}");
        }
    }
    book
}

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
        let book = auction(&orders);
        // Price, volume and who trades with whom (trades named lazily), from the book.
        group.bench_with_input(BenchmarkId::new("uniform", n), &book, |b, book| {
            b.iter(|| black_box(black_box(book).match_uniform(K::HALF)));
        });
        // The ledger's call: the same plus an owned outcome, every trade and leftover with its ids.
        group.bench_with_input(BenchmarkId::new("uniform_outcome", n), &book, |b, book| {
            b.iter(|| black_box(black_box(book).clear(Mechanism::Uniform { k: K::HALF })));
        });
        // The slice API: keys built from the orders, then sorted and walked.
        group.bench_with_input(
            BenchmarkId::new("uniform_slice", n),
            &orders,
            |b, orders| {
                b.iter(|| black_box(uniform::match_orders(black_box(orders), K::HALF)));
            },
        );
        group.bench_with_input(BenchmarkId::new("pay_as_bid", n), &book, |b, book| {
            b.iter(|| black_box(black_box(book).match_pay_as_bid(PayAsBidPricing::Midpoint)));
        });
        // Filling the book: admission, the id index, keys and histograms.
        group.bench_with_input(BenchmarkId::new("submit", n), &orders, |b, orders| {
            b.iter_batched(
                || orders.to_vec(),
                |orders| {
                    let mut book =
                        CallAuction::with_capacity(MarketRules::PERMISSIVE, orders.len());
                    for o in orders {
                        if let Err(e) = book.submit(o) {
                            panic!("bench order refused: {e}");
                        }
                    }
                    book
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, clearing);
criterion_main!(benches);
