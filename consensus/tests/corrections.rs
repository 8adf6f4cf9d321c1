//! Corrections from official metering data (issue 14, deliverable 5): a billing key's signed
//! import re-settles exactly the leaves and intervals it names as new entries, every validator
//! agrees, the money balances and matches a naive recomputation, the bills stay as billed, and
//! stale, forged, foreign, absurd and late imports are refused.

mod ledger_support;

use ledger_support::{
    at, correction_import as import, meters_book, meters_delivery as delivery, meters_genesis, pk,
    t0, MetersChain, BILLING, METERS_INTERVAL as INTERVAL,
};
use voltmesh_consensus::ledger::{BlockBody, LedgerState};
use voltmesh_consensus::protocol::App;
use voltmesh_consensus::wire::bill::{Bill, IntervalBills};
use voltmesh_consensus::wire::correction::{settlement_root, IntervalCorrections, SettledLeaf};
use voltmesh_engine::{Money, Price};

/// The interval's window closes at 11:30; this block settles it.
const SETTLES: i64 = INTERVAL + 900 + 3601;

/// h1 sells 1,000 Wh to h2 and 500 to h3; h1 delivers 1,400 (100 short), h2 imports 1,200,
/// h3 sends nothing (settled at its contract), h4 feeds in 2,000 without trading. Returns the
/// chain after the settling block and the interval's bills.
fn settled_chain() -> (MetersChain, IntervalBills) {
    let mut genesis = meters_genesis();
    genesis.billing_keys = vec![pk(BILLING)];
    let mut chain = MetersChain::of(genesis);
    for o in meters_book() {
        chain.apps[0].submit(o, at(0)).unwrap();
    }
    chain.block(1);
    chain.block(601);
    let answers = chain.apps[0].submit_deliveries(
        vec![
            delivery(1, 0, 1_400),
            delivery(2, 1_200, 0),
            delivery(4, 0, 2_000),
        ],
        at(1900),
    );
    assert!(answers.iter().all(Result::is_ok));
    chain.block(1900);
    assert_eq!(chain.block(SETTLES).bills.len(), 1);
    let bills = take_bills(&mut chain);
    (chain, bills)
}

fn take_bills(chain: &mut MetersChain) -> IntervalBills {
    let mut all: Vec<IntervalBills> = Vec::new();
    for app in &mut chain.apps {
        let bills: Vec<IntervalBills> = app
            .take_committed()
            .into_iter()
            .flat_map(|b| b.bills)
            .collect();
        all.push(bills.into_iter().next().unwrap());
    }
    assert!(all.iter().all(|b| *b == all[0]));
    all.swap_remove(0)
}

/// Every committed correction of every validator, which must agree.
fn take_corrections(chain: &mut MetersChain) -> Vec<IntervalCorrections> {
    let logs: Vec<Vec<IntervalCorrections>> = chain
        .apps
        .iter_mut()
        .map(|app| {
            app.take_committed()
                .into_iter()
                .flat_map(|b| b.corrections)
                .collect()
        })
        .collect();
    assert!(logs.iter().all(|l| *l == logs[0]), "validators disagree");
    logs.into_iter().next().unwrap()
}

/// What `who` settles with the utility for a contract and a reading, with no engine code
/// (tariffs 0.08 / 0.32).
fn naive_utility(contract: i64, net_export: i64) -> Money {
    let p = |s: &str| s.parse::<Price>().unwrap();
    let deviation = net_export - contract;
    if deviation > 0 {
        Money::ZERO - Money::of(deviation as u64, p("0.08"))
    } else {
        Money::of((-deviation) as u64, p("0.32"))
    }
}

fn leaves_of(bills: &[Bill]) -> Vec<SettledLeaf> {
    bills.iter().map(SettledLeaf::of).collect()
}

#[test]
fn an_import_re_settles_exactly_the_leaves_it_names_and_validators_agree() {
    let (mut chain, bills) = settled_chain();
    let mut leaves = leaves_of(&bills.bills);
    assert_eq!(
        chain.apps[0].committed().correctable().count(),
        1,
        "the settled interval may be corrected"
    );
    // The official data: h1 delivered its whole contract (1,500, not 1,400), h3 (billed at its
    // contract, no delivery) imported 520 Wh; h2 and h4 are as billed.
    let signed = import(
        &leaves,
        &[("h1", 0, 1_500), ("h3", 520, 0)],
        "eda-1",
        BILLING,
    );
    // Only a billing key may sign one.
    let foreign = import(&leaves, &[("h1", 0, 1_500)], "eda-x", 1);
    assert_eq!(
        chain.apps[0].submit_correction(foreign).unwrap_err().kind(),
        "not_billing_key"
    );
    chain.apps[0].submit_correction(signed.clone()).unwrap();
    assert_eq!(
        chain.apps[0]
            .submit_correction(signed.clone())
            .unwrap_err()
            .kind(),
        "duplicate_correction"
    );
    let body = chain.block(SETTLES + 60);
    assert_eq!(body.corrections, vec![signed.clone()]);
    let committed = take_corrections(&mut chain);
    assert_eq!(committed.len(), 1, "one interval corrected");
    let c = &committed[0];
    assert_eq!(c.interval_start, t0() + INTERVAL);
    assert_eq!((c.import.as_str(), c.source.as_str()), ("eda-1", "EDA"));
    assert_eq!(c.digest, signed.digest());
    let who: Vec<&str> = c.entries.iter().map(|e| e.participant.as_str()).collect();
    assert_eq!(who, ["h1", "h3"], "exactly the leaves the import names");
    // Each entry is the naive utility amount on the official reading minus the billed one.
    for (e, contract, billed_net, official_net) in [
        (&c.entries[0], 1_500, 1_400, 1_500),
        (&c.entries[1], -500, -500, -520),
    ] {
        assert_eq!(
            e.total,
            naive_utility(contract, official_net) - naive_utility(contract, billed_net),
            "{}",
            e.participant
        );
        assert_eq!(e.before.metered_net_export_wh, billed_net);
        assert_eq!(e.after.metered_net_export_wh, official_net);
        assert_eq!(
            e.billed + e.carry,
            e.total + e.carry_in,
            "nothing rounded away"
        );
    }
    assert!(c.entries[0].was_metered && !c.entries[1].was_metered);
    // h1 pays 100 Wh at retail less: -0.032; h3 20 Wh more: +0.0064.
    assert_eq!(c.entries[0].total, Money::from_nanos(-32_000_000));
    assert_eq!(c.entries[1].total, Money::from_nanos(6_400_000));
    assert_eq!(
        c.imbalance(),
        Money::ZERO,
        "participants and utility balance"
    );
    assert_eq!(c.utility.revenue, Money::from_nanos(-25_600_000));
    assert_eq!(
        c.utility.billed + c.utility.carry,
        c.utility.revenue,
        "the utility's line loses nothing"
    );
    // The root is now that of the corrected leaves; the others' leaves are untouched.
    leaves[0].metered_net_export_wh = 1_500;
    leaves[2].metered_net_export_wh = -520;
    leaves[2].metered = true;
    let hashes: Vec<[u8; 32]> = leaves.iter().map(SettledLeaf::hash).collect();
    for app in &chain.apps {
        let (start, kept) = app.committed().correctable().next().unwrap();
        assert_eq!(start, t0() + INTERVAL);
        assert_eq!(kept.root, settlement_root(&hashes));
    }

    // The same import again no longer proves against the corrected root.
    assert_eq!(
        chain.apps[0].submit_correction(signed).unwrap_err().kind(),
        "bad_proof"
    );
    // A later import corrects the corrected reading: h1 really delivered 1,450.
    let again = import(&leaves, &[("h1", 0, 1_450)], "eda-2", BILLING);
    chain.apps[0].submit_correction(again).unwrap();
    chain.block(SETTLES + 120);
    let second = take_corrections(&mut chain);
    let e = &second[0].entries[0];
    assert_eq!(e.before.metered_net_export_wh, 1_500);
    assert_eq!(e.after.metered_net_export_wh, 1_450);
    assert_eq!(e.total, naive_utility(1_500, 1_450));
    assert_eq!(
        e.carry_in, c.entries[0].carry,
        "h1's correction carry chains"
    );
}

#[test]
fn forged_absurd_and_late_imports_are_refused() {
    let (mut chain, bills) = settled_chain();
    let leaves = leaves_of(&bills.bills);
    // More than a 50 kW connection carries in 15 minutes.
    let absurd = import(&leaves, &[("h2", 12_501, 0)], "eda-a", BILLING);
    assert_eq!(
        chain.apps[0].submit_correction(absurd).unwrap_err().kind(),
        "absurd_energy"
    );
    // A leaf that is not the one billed does not prove.
    let mut wrong = leaves.clone();
    wrong[1].metered_net_export_wh = -1_000;
    let forged = import(&wrong, &[("h2", 1_100, 0)], "eda-f", BILLING);
    assert_eq!(
        chain.apps[0].submit_correction(forged).unwrap_err().kind(),
        "bad_proof"
    );
    // A block whose import was altered after signing is refused by every validator.
    let mut altered = import(&leaves, &[("h2", 1_100, 0)], "eda-b", BILLING);
    altered.ticket.intervals[0].corrections[0].import_wh = 900;
    let body = BlockBody {
        corrections: vec![altered],
        ..BlockBody::default()
    };
    let payload = body.encode();
    for app in &mut chain.apps {
        let refused = app
            .validate(&chain.tip, &payload, at(SETTLES + 60))
            .unwrap_err();
        assert!(
            refused.reason.contains("bad signature"),
            "{}",
            refused.reason
        );
    }
    // Past the correction window (62 days after the interval's end) nothing can be corrected.
    let late = INTERVAL + 900 + 62 * 86_400 + 1;
    chain.block(late);
    assert_eq!(chain.apps[0].committed().correctable().count(), 0);
    let too_late = import(&leaves, &[("h2", 1_100, 0)], "eda-l", BILLING);
    assert_eq!(
        chain.apps[0]
            .submit_correction(too_late)
            .unwrap_err()
            .kind(),
        "not_correctable"
    );
}

#[test]
fn snapshots_keep_the_roots_and_the_correction_carries() {
    let (mut chain, bills) = settled_chain();
    let leaves = leaves_of(&bills.bills);
    chain.apps[0]
        .submit_correction(import(&leaves, &[("h1", 0, 1_500)], "eda-1", BILLING))
        .unwrap();
    chain.block(SETTLES + 60);
    let state = chain.apps[0].committed();
    assert_ne!(state.carries().corrections.len(), 0, "h1 carries -0.002");
    let bytes = state.snapshot_bytes();
    let back = LedgerState::from_snapshot(&meters_genesis(), &bytes).unwrap();
    assert_eq!(back.snapshot_bytes(), bytes);
    assert_eq!(
        back.correctable().collect::<Vec<_>>(),
        state.correctable().collect::<Vec<_>>()
    );
    assert_eq!(back.carries(), state.carries());
}
