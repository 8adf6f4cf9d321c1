//! The node API's read model on disk (issue 12: "the API answers a participant's trades and
//! balance in milliseconds however long the history"): a store holding 1x and then 2x a history
//! of cleared intervals (each with trades among [`PARTICIPANTS`] households, one of them,
//! `hh-0`, trading in every interval), timing what `GET /v1/participants/hh-0` does: its balance,
//! its first page of trades, and the page of its last day. Flat lookup times across the two
//! history lengths are the point; the bench prints both.
//!
//! `cargo bench -p voltmesh-benches --bench index`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use voltmesh_consensus::index::Index;
use voltmesh_consensus::ledger::CommittedBlock;
use voltmesh_consensus::protocol::BlockHash;
use voltmesh_engine::{ClearingOutcome, Mechanism, ParticipantId, Trade};
use voltmesh_wire::IntervalClearing;

/// Households trading.
const PARTICIPANTS: u32 = 200;
/// Trades per interval (each between `hh-0` or a rotating household and another one).
const TRADES: u32 = 20;
/// Intervals in the 1x history (about 104 days of 15-minute intervals).
const INTERVALS: u32 = 10_000;
/// Seconds per interval.
const LENGTH: i64 = 900;

fn clearing(interval: u32) -> IntervalClearing {
    let start = i64::from(interval) * LENGTH;
    let trades: Vec<Trade> = (0..TRADES)
        .map(|t| {
            let seller = if t == 0 {
                0
            } else {
                (interval + t) % PARTICIPANTS
            };
            let buyer = (interval + t + 1) % PARTICIPANTS;
            Trade {
                buy_id: format!("hh-{buyer}:b{interval}").as_str().into(),
                sell_id: format!("hh-{seller}:s{interval}").as_str().into(),
                buyer: format!("hh-{buyer}").as_str().into(),
                seller: format!("hh-{seller}").as_str().into(),
                quantity_wh: 100 + u64::from(t),
                price: "0.200000".parse().expect("price"),
            }
        })
        .collect();
    IntervalClearing {
        withheld: None,
        interval_start: start,
        outcome: ClearingOutcome {
            volume_wh: trades.iter().map(|t| t.quantity_wh).sum(),
            trades,
            clearing_price: Some("0.200000".parse().expect("price")),
            mechanism: Mechanism::default(),
            price_range: None,
            unfilled: Vec::new(),
        },
    }
}

/// Applies intervals `from..to`, one block each.
fn grow(index: &mut Index, from: u32, to: u32) {
    for interval in from..to {
        let height = u64::from(interval) + 1;
        let mut hash = [0u8; 32];
        hash[..8].copy_from_slice(&height.to_be_bytes());
        index
            .apply(&CommittedBlock {
                height,
                hash: BlockHash(hash),
                timestamp_ms: height * 1_000,
                orders: Vec::new(),
                clearings: vec![clearing(interval)],
                bills: Vec::new(),
                corrections: Vec::new(),
                snapshot: None,
            })
            .expect("apply");
    }
}

fn lookups(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("voltmesh-bench-index-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = voltmesh_consensus::store::Store::open(&dir).expect("store");
    let mut index = Index::open(store.database()).expect("index");
    let who = ParticipantId::from("hh-0");
    let day = 96 * LENGTH;
    let mut group = c.benchmark_group("index");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for (label, upto) in [("1x", INTERVALS), ("2x", 2 * INTERVALS)] {
        let from = if label == "1x" { 0 } else { INTERVALS };
        grow(&mut index, from, upto);
        let last_day = i64::from(upto) * LENGTH - day;
        group.bench_function(format!("{label}/balance"), |b| {
            b.iter(|| index.balance_of(&who).expect("balance"));
        });
        group.bench_function(format!("{label}/first_page_1000"), |b| {
            b.iter(|| index.trades_of(&who, None, None, 1_000).expect("page"));
        });
        group.bench_function(format!("{label}/last_day"), |b| {
            b.iter(|| {
                index
                    .trades_of(&who, Some(last_day), None, 1_000)
                    .expect("page")
            });
        });
        let page = index
            .trades_of(&who, Some(last_day), None, 1_000)
            .expect("page");
        println!(
            "index/{label}: {} intervals, {} trades in the store; hh-0's last day holds {} trades",
            upto,
            u64::from(upto) * u64::from(TRADES),
            page.trades.len()
        );
    }
    group.finish();
    drop(index);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, lookups);
criterion_main!(benches);
