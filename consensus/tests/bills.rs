//! Bills by consensus (issue 14, deliverable 2): the first block after an interval's delivery
//! window settles it; every validator recomputes the bills and refuses a block whose records
//! differ; a trader without a delivery is settled at its contract; money balances and rounding
//! loses nothing; snapshots keep what waits for its bills.

mod ledger_support;

use std::collections::BTreeMap;

use ledger_support::{
    at, meters_book, meters_delivery as delivery, meters_genesis, meters_order as order, t0,
    MetersChain as Chain, METERS_INTERVAL as INTERVAL,
};
use voltmesh_consensus::ledger::{BlockBody, BlockRejection, LedgerState};
use voltmesh_consensus::protocol::App;
use voltmesh_consensus::wire::bill::{BillsRecord, IntervalBills};
use voltmesh_engine::{Money, Price, Side, Trade};

/// The naive bill: what `who` pays for `trades` and a metered net export, with no engine code.
fn naive_total(who: &str, trades: &[Trade], net_export: Option<i64>) -> (Money, bool) {
    let p = |s: &str| s.parse::<Price>().unwrap();
    let (mut total, mut contract) = (Money::ZERO, 0_i64);
    for t in trades {
        if t.buyer.as_str() == who {
            total += Money::of(t.quantity_wh, t.price) + Money::of(t.quantity_wh, p("0.01"));
            contract -= t.quantity_wh as i64;
        }
        if t.seller.as_str() == who {
            total -= Money::of(t.quantity_wh, t.price);
            contract += t.quantity_wh as i64;
        }
    }
    let metered = net_export.unwrap_or(contract);
    let deviation = metered - contract;
    if deviation > 0 {
        total -= Money::of(deviation as u64, p("0.08"));
    } else {
        total += Money::of((-deviation) as u64, p("0.32"));
    }
    (total, net_export.is_some())
}

#[test]
fn the_first_block_after_the_window_settles_every_participant_and_validators_agree() {
    let mut chain = Chain::new();
    for o in meters_book() {
        chain.apps[0].submit(o, at(0)).unwrap();
    }
    chain.block(1);
    // The gate closes at 10:10: the interval clears, and its trades wait for their bills.
    let cleared = chain.block(601);
    assert_eq!(cleared.clearings.len(), 1);
    assert!(cleared.bills.is_empty());
    let trades: Vec<Trade> = chain.apps[0]
        .committed()
        .settling()
        .flat_map(|(_, t)| t.to_vec())
        .collect();
    assert_eq!(trades.len(), 2, "h1 sells to h2 and h3");
    assert_eq!(
        chain.apps[0].work_due_at(),
        Some(at(INTERVAL + 900 + 3600) + 1),
        "a block is due when the window closes"
    );
    // h1 delivers 100 Wh short, h2 takes 200 Wh more than it bought, h3 sends nothing, h4 did
    // not trade but fed 2 kWh in.
    let answers = chain.apps[0].submit_deliveries(
        vec![
            delivery(1, 0, 1_400),
            delivery(2, 1_200, 0),
            delivery(4, 0, 2_000),
        ],
        at(1900),
    );
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    let carried = chain.block(1900);
    assert_eq!(carried.deliveries.len(), 3);
    assert!(carried.bills.is_empty());
    // The window closes at 11:30 (5400 s): a block at 5400 settles nothing, the next does.
    assert!(chain.block(INTERVAL + 900 + 3600).bills.is_empty());
    let settled = chain.block(INTERVAL + 900 + 3601);
    assert_eq!(settled.bills.len(), 1);
    let record = &settled.bills[0];
    assert_eq!(record.interval_start, t0() + INTERVAL);
    assert_eq!(record.bills, 4);

    // Every validator computed the same bills, which the block's record stands for.
    let log: Vec<Vec<IntervalBills>> = chain
        .apps
        .iter_mut()
        .map(|app| {
            app.take_committed()
                .into_iter()
                .flat_map(|b| b.bills)
                .collect()
        })
        .collect();
    assert!(log.iter().all(|bills| *bills == log[0]));
    let bills = &log[0][0];
    assert_eq!(BillsRecord::of(bills), *record);
    assert_eq!(bills.imbalance(), Money::ZERO);
    let nets = BTreeMap::from([("h1", 1_400), ("h2", -1_200), ("h4", 2_000)]);
    for bill in &bills.bills {
        let who = bill.participant.as_str();
        let (total, metered) = naive_total(who, &trades, nets.get(who).copied());
        assert_eq!((bill.total, bill.metered), (total, metered), "{who}");
        // Billed to the cent, half to even; nothing lost.
        assert_eq!(bill.billed + bill.carry, bill.total, "{who}");
        assert_eq!(bill.billed.nanos() % 10_000_000, 0);
        assert!(bill.carry.nanos().abs() <= 5_000_000);
    }
    let h3 = bills.bill_of(&"h3".into()).unwrap();
    assert!(!h3.metered, "h3 sent no delivery: settled at its contract");
    assert_eq!((h3.from_utility_wh, h3.to_utility_wh), (0, 0));
    let h4 = bills.bill_of(&"h4".into()).unwrap();
    assert_eq!(h4.total, Money::from_nanos(-160_000_000), "2 kWh at 0.08");
    assert_eq!(h4.no_market, h4.total, "no trades: no saving");
    assert_eq!(
        bills.utility.billed + bills.utility.carry,
        bills.utility.revenue
    );
    // The interval, its trades and its deliveries are gone; the carries stay.
    let state = chain.apps[0].committed();
    assert_eq!(state.settling().count(), 0);
    assert_eq!(state.deliveries().count(), 0);
    let carried: Money = state.carries().participants.values().copied().sum();
    let exact: Money = bills.bills.iter().map(|b| b.carry).sum();
    assert_eq!(carried, exact);
}

#[test]
fn a_block_with_altered_or_missing_bills_is_refused() {
    let mut chain = Chain::new();
    chain.apps[0]
        .submit(order(1, Side::Sell, 1_000, "0.10"), at(0))
        .unwrap();
    chain.apps[0]
        .submit(order(2, Side::Buy, 1_000, "0.30"), at(0))
        .unwrap();
    chain.block(1);
    chain.block(601);
    let mut parent = chain.apps[0].committed().clone();
    let g = meters_genesis();
    let secs = INTERVAL + 900 + 3601;
    let honest = {
        let payload = chain.apps[0].propose(&chain.tip, at(secs));
        BlockBody::decode(&payload).unwrap()
    };
    assert_eq!(honest.bills.len(), 1);
    parent
        .clone()
        .execute(&g, &honest, at(secs))
        .expect("the honest block executes");
    let mut altered = honest.clone();
    altered.bills[0].total += Money::from_nanos(1);
    assert!(matches!(
        parent.clone().execute(&g, &altered, at(secs)),
        Err(BlockRejection::WrongBills { .. })
    ));
    let mut missing = honest;
    missing.bills.clear();
    assert!(matches!(
        parent.execute(&g, &missing, at(secs)),
        Err(BlockRejection::WrongBills {
            expected: 1,
            got: 0
        })
    ));
}

#[test]
fn snapshots_keep_the_trades_waiting_for_bills_and_the_carries() {
    let mut chain = Chain::new();
    for o in [
        order(1, Side::Sell, 333, "0.10"),
        order(2, Side::Buy, 333, "0.30"),
    ] {
        chain.apps[0].submit(o, at(0)).unwrap();
    }
    chain.block(1);
    chain.block(601);
    let g = meters_genesis();
    let waiting = chain.apps[0].committed().snapshot_bytes();
    let restored = LedgerState::from_snapshot(&g, &waiting).unwrap();
    assert_eq!(restored.snapshot_bytes(), waiting);
    assert_eq!(restored.settling().count(), 1);
    chain.block(INTERVAL + 900 + 3601);
    let after = chain.apps[0].committed();
    assert!(
        !after.carries().participants.is_empty(),
        "333 Wh at 0.20 is not a whole cent"
    );
    let bytes = after.snapshot_bytes();
    let restored = LedgerState::from_snapshot(&g, &bytes).unwrap();
    assert_eq!(restored.snapshot_bytes(), bytes);
    assert_eq!(restored.carries(), after.carries());
}
