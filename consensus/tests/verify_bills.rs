//! `voltmesh verify` on a data directory with settled bills (issue 14, deliverable 7): it
//! recomputes every bill, and fails when the node's index serves a bill, or a settlement, the
//! ledger did not commit. The data directory is written in process, as a node writes it: blocks
//! in the store, each committed block applied to the API index in the same database.

mod ledger_support;

use std::path::Path;
use std::sync::Arc;

use ledger_support::{
    at, child, correction_import, meters_book, meters_delivery as delivery, meters_genesis, pk, t0,
    BILLING, METERS_INTERVAL as INTERVAL,
};
use redb::{Database, ReadableTable, TableDefinition};
use voltmesh_consensus::index::Index;
use voltmesh_consensus::ledger::LedgerApp;
use voltmesh_consensus::protocol::App;
use voltmesh_consensus::store::Store;
use voltmesh_consensus::verify::{verify, VerifyError};
use voltmesh_consensus::wire::correction::SettledLeaf;

/// The index's tables, as `consensus/src/index/bills.rs` defines them.
const BILLS: TableDefinition<'_, (i64, &str), &[u8]> = TableDefinition::new("index_bills");
const SETTLED: TableDefinition<'_, i64, &[u8]> = TableDefinition::new("index_settled");

/// Writes a node's data directory in `dir`: h1 sells to h2 and h3, h1, h2 and h4 deliver, the
/// block after the window settles the interval (four bills), and the next one carries a
/// billing key's correction of h1's reading. Returns the committed height.
fn honest_data_dir(dir: &Path) -> u64 {
    let mut genesis = meters_genesis();
    genesis.billing_keys = vec![pk(BILLING)];
    let text = serde_json::to_vec(&genesis).unwrap();
    let chain = voltmesh_consensus::chain_of(&genesis, &text).unwrap();
    let store = Store::open(dir).unwrap();
    store.bind_genesis(&text).unwrap();
    let mut index = Index::open(store.database()).unwrap();
    let mut app = LedgerApp::new(Arc::new(genesis), chain.genesis());
    for o in meters_book() {
        app.submit(o, at(0)).unwrap();
    }
    let mut tip = chain.genesis().clone();
    let (mut settled, mut corrected) = (0, 0);
    let mut bills = Vec::new();
    for secs in [1, 601, 1900, INTERVAL + 900 + 3601, INTERVAL + 900 + 3700] {
        if secs == 1900 {
            let answers = app.submit_deliveries(
                vec![
                    delivery(1, 0, 1_400),
                    delivery(2, 1_200, 0),
                    delivery(4, 0, 2_000),
                ],
                at(secs),
            );
            assert!(answers.iter().all(Result::is_ok), "{answers:?}");
        }
        if secs == INTERVAL + 900 + 3700 {
            let leaves: Vec<SettledLeaf> = bills.iter().map(SettledLeaf::of).collect();
            app.submit_correction(correction_import(
                &leaves,
                &[("h1", 0, 1_500)],
                "eda",
                BILLING,
            ))
            .unwrap();
        }
        let payload = app.propose(&tip, at(secs));
        let block = child(&tip, secs, payload);
        app.validate(&tip, block.payload(), at(secs)).unwrap();
        app.certified(&block);
        app.commit(&block);
        store.put_block(&block).unwrap();
        store.commit(&block).unwrap();
        for committed in app.take_committed() {
            settled += committed.bills.len();
            bills.extend(committed.bills.iter().flat_map(|b| b.bills.clone()));
            corrected += committed.corrections.len();
            index.apply(&committed).unwrap();
        }
        tip = block;
    }
    assert_eq!(
        settled, 1,
        "the block after the window settled the interval"
    );
    assert_eq!(corrected, 1, "the last block corrected it");
    tip.height()
}

/// Opens the data directory's database (the store is closed) and hands `f` a write
/// transaction, committed after.
fn tamper(dir: &Path, f: impl FnOnce(&redb::WriteTransaction)) {
    let db = Database::create(Store::path_in(dir)).unwrap();
    let tx = db.begin_write().unwrap();
    f(&tx);
    tx.commit().unwrap();
}

#[test]
fn verify_recomputes_every_bill_and_the_index_serves_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let height = honest_data_dir(dir.path());
    let report = verify(dir.path()).unwrap();
    assert_eq!(report.blocks, height);
    assert_eq!(
        (report.settled_intervals, report.bills, report.corrections),
        (1, 4, 1)
    );
    assert_eq!(
        report.index_height, height,
        "every settled bill was compared"
    );
}

#[test]
fn verify_fails_naming_the_interval_and_participant_of_an_altered_bill() {
    let dir = tempfile::tempdir().unwrap();
    honest_data_dir(dir.path());
    let start = t0() + INTERVAL;
    // h2's bill says it pays one unit less.
    tamper(dir.path(), |tx| {
        let mut bills = tx.open_table(BILLS).unwrap();
        let stored = bills.get((start, "h2")).unwrap().unwrap().value().to_vec();
        let mut bill: serde_json::Value = serde_json::from_slice(&stored).unwrap();
        let total: voltmesh_engine::Money = serde_json::from_value(bill["total"].clone()).unwrap();
        let lower = total - voltmesh_engine::Money::from_nanos(1_000_000_000);
        bill["total"] = serde_json::to_value(lower).unwrap();
        let altered = serde_json::to_vec(&bill).unwrap();
        bills.insert((start, "h2"), altered.as_slice()).unwrap();
    });
    let err = verify(dir.path()).unwrap_err();
    match &err {
        VerifyError::IndexMismatch {
            interval_start,
            participant,
            reason,
        } => {
            assert_eq!(*interval_start, start);
            assert_eq!(participant.as_ref().map(|p| p.as_str()), Some("h2"));
            assert!(reason.contains("total: committed"), "{reason}");
        }
        other => panic!("expected an index mismatch, got {other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&format!("interval {start}")) && message.contains("participant h2"),
        "{message}"
    );
}

#[test]
fn verify_fails_on_a_served_bill_or_settlement_the_ledger_never_committed() {
    let start = t0() + INTERVAL;
    // A bill for h3 moved to a participant that had none.
    let dir = tempfile::tempdir().unwrap();
    honest_data_dir(dir.path());
    tamper(dir.path(), |tx| {
        let mut bills = tx.open_table(BILLS).unwrap();
        let stored = bills.get((start, "h3")).unwrap().unwrap().value().to_vec();
        let mut bill: serde_json::Value = serde_json::from_slice(&stored).unwrap();
        bill["participant"] = "h5".into();
        let moved = serde_json::to_vec(&bill).unwrap();
        bills.insert((start, "h5"), moved.as_slice()).unwrap();
    });
    match verify(dir.path()).unwrap_err() {
        VerifyError::IndexMismatch {
            interval_start,
            participant,
            ..
        } => assert_eq!(
            (interval_start, participant.as_ref().map(|p| p.as_str())),
            (start, Some("h5"))
        ),
        other => panic!("expected an index mismatch, got {other}"),
    }

    // A settlement of an interval no block settled, copied from the real one.
    let dir = tempfile::tempdir().unwrap();
    honest_data_dir(dir.path());
    let fake = start + 900;
    tamper(dir.path(), |tx| {
        let mut settled = tx.open_table(SETTLED).unwrap();
        let stored = settled.get(start).unwrap().unwrap().value().to_vec();
        let mut summary: serde_json::Value = serde_json::from_slice(&stored).unwrap();
        summary["interval_start"] = fake.into();
        let copy = serde_json::to_vec(&summary).unwrap();
        settled.insert(fake, copy.as_slice()).unwrap();
        let count = settled.iter().unwrap().count();
        assert_eq!(count, 2);
    });
    match verify(dir.path()).unwrap_err() {
        VerifyError::IndexMismatch {
            interval_start,
            participant,
            reason,
        } => {
            assert_eq!((interval_start, participant), (fake, None));
            assert!(reason.contains("did not settle it"), "{reason}");
        }
        other => panic!("expected an index mismatch, got {other}"),
    }
}

#[test]
fn verify_fails_on_a_served_correction_the_ledger_never_committed() {
    const CORRECTIONS: TableDefinition<'_, (i64, u64, u32), &[u8]> =
        TableDefinition::new("index_corrections");
    let dir = tempfile::tempdir().unwrap();
    honest_data_dir(dir.path());
    let start = t0() + INTERVAL;
    // h1's correction says it receives one unit more.
    tamper(dir.path(), |tx| {
        let mut table = tx.open_table(CORRECTIONS).unwrap();
        let (key, stored) = {
            let (k, v) = table.first().unwrap().unwrap();
            (k.value(), v.value().to_vec())
        };
        let mut c: serde_json::Value = serde_json::from_slice(&stored).unwrap();
        let total: voltmesh_engine::Money =
            serde_json::from_value(c["corrections"]["entries"][0]["total"].clone()).unwrap();
        let lower = total - voltmesh_engine::Money::from_nanos(1_000_000_000);
        c["corrections"]["entries"][0]["total"] = serde_json::to_value(lower).unwrap();
        table
            .insert(key, serde_json::to_vec(&c).unwrap().as_slice())
            .unwrap();
    });
    match verify(dir.path()).unwrap_err() {
        VerifyError::IndexMismatch {
            interval_start,
            reason,
            ..
        } => {
            assert_eq!(interval_start, start);
            assert!(reason.contains("corrections"), "{reason}");
        }
        other => panic!("expected an index mismatch, got {other}"),
    }
}
