//! Bills by consensus at 10,000 households (issue 14): what settling one interval costs a
//! validator (the block at the delivery window's close: the engine's settlement of 5,000 trades
//! against 10,000 metered deliveries, rounding with carries, the record's SHA-256), and what
//! storing its bills costs a node (the API index's write of 10,000 bills, and the bytes it
//! keeps per bill, printed as MB per household-year). Then corrections from official metering
//! data: what the state keeps per settled interval for them (printed, as a snapshot encodes
//! it), and what executing an import of 100 corrected households in that 10,000-bill interval
//! costs a validator (multi-proof check, re-settlement, new root).
//!
//! `cargo bench -p voltmesh-benches --bench bills`

use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ed25519_dalek::SigningKey;
use voltmesh_consensus::index::Index;
use voltmesh_consensus::ledger::{CommittedBlock, LedgerState};
use voltmesh_consensus::protocol::BlockHash;
use voltmesh_engine::{
    AdmissionLimits, IntervalSpec, MarketConfig, MarketRules, Mechanism, Price, Side, Tariffs, K,
};
use voltmesh_wire::correction::{
    settlement_proof, settlement_root, CorrectionTicket, IntervalCorrection, LeafCorrection,
    SettledLeaf,
};
use voltmesh_wire::delivery::DeliveryTicket;
use voltmesh_wire::{Genesis, GenesisValidator, OrderTicket, PublicKey};

const HOUSEHOLDS: u32 = 10_000;
const T0: &str = "2026-11-22T10:00:00Z";

fn key(n: u32) -> SigningKey {
    let mut seed = [9u8; 32];
    seed[..4].copy_from_slice(&n.to_le_bytes());
    SigningKey::from_bytes(&seed)
}

/// The community's billing key (it signs correction imports).
fn billing() -> SigningKey {
    key(2_000_000)
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
            admission: AdmissionLimits {
                max_orders_per_interval: 20_000,
                ..AdmissionLimits::DEFAULT
            },
        },
        validators: (0..4)
            .map(|n| GenesisValidator {
                public_key: PublicKey(key(1_000_000 + n).verifying_key().to_bytes()),
                address: format!("/ip4/127.0.0.1/tcp/{}", 9000 + n),
            })
            .collect(),
        participants: (0..HOUSEHOLDS)
            .map(|i| {
                (
                    format!("hh-{i:05}").into(),
                    vec![PublicKey(key(i).verifying_key().to_bytes())],
                )
            })
            .collect(),
        snapshot_interval_blocks: 0,
        governance: None,
        deliveries: Default::default(),
        billing_keys: vec![PublicKey(billing().verifying_key().to_bytes())],
    }
    .validate()
    .expect("a valid genesis")
}

/// The state after 10,000 households traded in the 10:15 interval (even ones sell 300 Wh, odd
/// ones buy 250 Wh at staggered limits) and delivered a little off their contracts.
fn traded_and_delivered(g: &Genesis) -> LedgerState {
    let t0 = g.genesis_time_ms();
    let start = i64::try_from(t0 / 1000).expect("a time") + 900;
    let mut state = LedgerState::new(g);
    for i in 0..HOUSEHOLDS {
        let sell = i % 2 == 0;
        let order = OrderTicket {
            participant: format!("hh-{i:05}").into(),
            interval_start: start,
            id: "o".into(),
            side: if sell { Side::Sell } else { Side::Buy },
            quantity_wh: if sell { 300 } else { 250 },
            limit_price: Price::from_micros(if sell { 100_000 } else { 200_000 } + i64::from(i))
                .expect("a price"),
            nonce: 1,
        }
        .sign("benchville", &key(i));
        state.insert(g, &order, t0 + 60_000).expect("admitted");
    }
    // The gate closes at 10:10.
    let cleared = state.build(g, &[], [].iter(), t0 + 601_000, 0);
    assert_eq!(cleared.clearings.len(), 1);
    for i in 0..HOUSEHOLDS {
        let (import_wh, export_wh) = if i % 2 == 0 {
            (0, 280 + u64::from(i % 7))
        } else {
            (260 + u64::from(i % 5), 0)
        };
        let delivery = DeliveryTicket {
            participant: format!("hh-{i:05}").into(),
            interval_start: start,
            import_wh,
            export_wh,
            meters: vec![format!("m-{i}")],
        }
        .sign("benchville", &key(i));
        state
            .insert_delivery(g, &delivery, t0 + 1_900_000)
            .expect("delivered");
    }
    state
}

fn bills(c: &mut Criterion) {
    let g = genesis();
    let state = traded_and_delivered(&g);
    // The window of the 10:15 interval closes at 11:30.
    let at = g.genesis_time_ms() + 5_401_000;
    let body = state.clone().build(&g, &[], [].iter(), at, 0);
    assert_eq!(body.bills.len(), 1);
    let settled = state
        .clone()
        .execute_settled(&g, &body, at)
        .expect("the settling block executes");
    let interval = settled.bills[0].clone();
    assert_eq!(interval.bills.len(), HOUSEHOLDS as usize);
    let mut after = state.clone();
    after.execute_settled(&g, &body, at).expect("executes");
    let snapshot: serde_json::Value =
        serde_json::from_slice(&after.snapshot_bytes()).expect("snapshot json");
    let kept = &snapshot["correctable"][0];
    let kept_bytes = serde_json::to_vec(kept).expect("json").len();
    println!(
        "corrections: {kept_bytes} bytes of snapshot JSON per settled interval kept for corrections = {:.0} kB for the default 62-day window of 15-minute intervals",
        kept_bytes as f64 * 62.0 * 96.0 / 1e3
    );
    // Official data for every 100th household: 10 Wh more imported than delivered.
    let leaves: Vec<SettledLeaf> = interval.bills.iter().map(SettledLeaf::of).collect();
    let hashes: Vec<[u8; 32]> = leaves.iter().map(SettledLeaf::hash).collect();
    let indices: Vec<usize> = (0..leaves.len()).step_by(100).collect();
    let corrections = indices
        .iter()
        .map(|&i| {
            let net = leaves[i].metered_net_export_wh - 10;
            LeafCorrection {
                index: u32::try_from(i).expect("small"),
                leaf: leaves[i].clone(),
                metering_points: vec![format!("AT-{i}")],
                import_wh: u64::try_from((-net).max(0)).expect("small"),
                export_wh: u64::try_from(net.max(0)).expect("small"),
            }
        })
        .collect();
    let import = CorrectionTicket {
        id: "eda-bench".into(),
        source: "EDA".into(),
        intervals: vec![IntervalCorrection {
            interval_start: interval.interval_start,
            proof: settlement_proof(&hashes, &indices),
            corrections,
        }],
    }
    .sign("benchville", &billing());
    let import_bytes = serde_json::to_vec(&import).expect("json").len();
    println!(
        "corrections: an import of 100 households in a 10,000-bill interval is {import_bytes} bytes of JSON"
    );
    let bytes: usize = interval
        .bills
        .iter()
        .map(|b| serde_json::to_vec(b).expect("json").len())
        .sum();
    let per_bill = bytes as f64 / f64::from(HOUSEHOLDS);
    println!(
        "bills/10000: {per_bill:.0} bytes of JSON per bill in the index = {:.1} MB per household-year (35,040 intervals)",
        per_bill * 35_040.0 / 1e6
    );
    let mut group = c.benchmark_group("bills");
    group.sample_size(10);
    group.throughput(Throughput::Elements(u64::from(HOUSEHOLDS)));
    group.bench_function("settle_interval/10000_households", |b| {
        b.iter_batched(
            || state.clone(),
            |mut s| s.execute_settled(&g, &body, at).expect("executes"),
            BatchSize::LargeInput,
        );
    });
    group.bench_function("leaves_root/10000_households", |b| {
        b.iter(|| {
            let hashes: Vec<[u8; 32]> = interval
                .bills
                .iter()
                .map(|bill| SettledLeaf::of(bill).hash())
                .collect();
            settlement_root(&hashes)
        });
    });
    group.throughput(Throughput::Elements(100));
    group.bench_function("correct/100_of_10000_households", |b| {
        b.iter_batched(
            || after.clone(),
            |mut s| s.apply_correction(&g, &import).expect("applies"),
            BatchSize::LargeInput,
        );
    });
    group.throughput(Throughput::Elements(u64::from(HOUSEHOLDS)));
    let block = CommittedBlock {
        height: 1,
        hash: BlockHash([1; 32]),
        timestamp_ms: at,
        orders: Vec::new(),
        clearings: Vec::new(),
        bills: vec![interval],
        corrections: Vec::new(),
        snapshot: None,
    };
    group.bench_function("index_bills/10000_households", |b| {
        b.iter_batched(
            Index::in_memory,
            |mut index| index.apply(&block).expect("stored"),
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, bills);
criterion_main!(benches);
