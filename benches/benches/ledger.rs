//! The ledger application validating a block of 1,000 signed orders (one interval's book at the
//! default admission cap, 200 participants with 5 orders each), as a validator does for every
//! proposal: with the orders already in its mempool (gossip came first, the usual case: their
//! signatures were verified at admission and are not verified again) and with orders it has
//! never seen (every signature verified during execution, in one batch). Then admission of the
//! same 1,000 orders into an empty mempool, one `submit` per order (one signature check each, as
//! `POST /v1/orders` with one order) and one `submit_batch` (the signatures in one batch, as
//! `POST /v1/orders` with an array and gossip messages of arrays).
//!
//! `cargo bench -p voltmesh-benches --bench ledger`

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ed25519_dalek::SigningKey;
use voltmesh_consensus::ledger::LedgerApp;
use voltmesh_consensus::protocol::{App, Block};
use voltmesh_engine::{
    AdmissionLimits, IntervalSpec, MarketConfig, MarketRules, Mechanism, Price, Side, Tariffs, K,
};
use voltmesh_wire::{Genesis, GenesisValidator, OrderTicket, PublicKey, SignedOrder};

const PARTICIPANTS: u32 = 200;
const ORDERS_EACH: u32 = 5;
const T0: &str = "2026-11-22T10:00:00Z";

fn key(n: u32) -> SigningKey {
    let mut seed = [7u8; 32];
    seed[..4].copy_from_slice(&n.to_le_bytes());
    SigningKey::from_bytes(&seed)
}

fn price(s: &str) -> Price {
    s.parse().expect("a price")
}

fn genesis() -> Genesis {
    Genesis {
        neighborhood: "benchville".into(),
        genesis_time: T0.parse::<DateTime<Utc>>().expect("a time"),
        currency: voltmesh_wire::Currency::EUR,
        market: MarketConfig {
            mechanism: Mechanism::Uniform { k: K::HALF },
            rules: MarketRules {
                tariffs: Tariffs::new(price("0.08"), price("0.32")).expect("tariffs"),
                max_order_wh: 1_000_000,
            },
            network_fee: price("0.01"),
            interval: IntervalSpec::DEFAULT,
            admission: AdmissionLimits::DEFAULT,
        },
        validators: (0..4)
            .map(|n| GenesisValidator {
                public_key: PublicKey(key(1_000_000 + n).verifying_key().to_bytes()),
                address: format!("/ip4/127.0.0.1/tcp/{}", 9000 + n),
            })
            .collect(),
        participants: (0..PARTICIPANTS)
            .map(|i| {
                (
                    format!("h{i}").into(),
                    vec![PublicKey(key(i).verifying_key().to_bytes())],
                )
            })
            .collect::<BTreeMap<_, _>>(),
        snapshot_interval_blocks: 0,
        governance: None,
        deliveries: Default::default(),
        billing_keys: Vec::new(),
    }
    .validate()
    .expect("a valid genesis")
}

/// The orders: participant `i` sells (even) or buys (odd) 100 Wh, five times, for the 10:15
/// interval.
fn orders(interval_start: i64) -> Vec<SignedOrder> {
    (0..PARTICIPANTS)
        .flat_map(|i| (0..ORDERS_EACH).map(move |k| (i, k)))
        .map(|(i, k)| {
            let sell = i % 2 == 0;
            OrderTicket {
                participant: format!("h{i}").into(),
                interval_start,
                id: format!("o{k}").as_str().into(),
                side: if sell { Side::Sell } else { Side::Buy },
                quantity_wh: 100,
                limit_price: price(if sell { "0.10" } else { "0.30" }),
                nonce: u64::from(k) + 1,
            }
            .sign("benchville", &key(i))
        })
        .collect()
}

fn ledger(c: &mut Criterion) {
    let g = Arc::new(genesis());
    let t0 = g.genesis_time_ms();
    let genesis_block = Block::genesis(t0, b"benchville".to_vec());
    let interval_start = i64::try_from(t0 / 1000).expect("a time") + 900;
    let orders = orders(interval_start);
    let at = t0 + 60_000;
    let app_with = |orders: &[SignedOrder]| {
        let mut app = LedgerApp::new(Arc::clone(&g), &genesis_block);
        for order in orders {
            app.submit(order.clone(), at).expect("admitted");
        }
        app
    };
    let payload = app_with(&orders).propose(&genesis_block, at);
    let mut group = c.benchmark_group("ledger");
    group.sample_size(10);
    group.throughput(Throughput::Elements(orders.len() as u64));
    group.bench_function("validate_1000_orders/gossiped_first", |b| {
        b.iter_batched(
            || app_with(&orders),
            |mut validator| {
                validator
                    .validate(&genesis_block, &payload, at)
                    .expect("valid")
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function("validate_1000_orders/never_seen", |b| {
        b.iter_batched(
            || app_with(&[]),
            |mut validator| {
                validator
                    .validate(&genesis_block, &payload, at)
                    .expect("valid")
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function("admit_1000_orders/one_by_one", |b| {
        b.iter_batched(
            || (app_with(&[]), orders.clone()),
            |(mut app, orders)| {
                for order in orders {
                    app.submit(order, at).expect("admitted");
                }
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function("admit_1000_orders/one_batch", |b| {
        b.iter_batched(
            || (app_with(&[]), orders.clone()),
            |(mut app, orders)| {
                let results = app.submit_batch(orders, at);
                assert!(results.iter().all(Result::is_ok));
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, ledger);
criterion_main!(benches);
