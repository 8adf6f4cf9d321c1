//! `voltmesh verify`: an auditor re-executes a node's committed ledger from genesis.
//!
//! Every committed block must extend the previous one (height and parent hash), and its payload
//! must re-execute through the engine to exactly the clearings it records, with every order's
//! signature, id and interval checked, as a validator checks a proposal; every interval a block
//! settles is settled again and its bills must hash to the block's record. The first block that
//! fails is reported with the reason.
//!
//! Then what the node SERVES is checked against what was recomputed: every settled interval's
//! summary and bills in the node's API index ([`Index::settled_bills`]) must equal the
//! recomputed ones, and the index must serve no settlement the chain does not hold. A
//! difference (an operator or an attacker altered the served data) is reported with the
//! interval and the participant ([`VerifyError::IndexMismatch`]).
//!
//! # Known limitations
//! Run it on a stopped node's data directory (redb holds a lock while the node runs), or on a
//! copy. Quorum certificates are not re-verified here; the node verified them before committing.
//! The index is compared up to its own height: after a crash it may be behind the stored chain
//! (the node re-applies the blocks above it when it starts), and the bills of the blocks above
//! it are recomputed but not compared. Opening the index creates its tables if the store has
//! none (a store written before the index existed); nothing else is written.

use std::path::Path;
use std::sync::Arc;

use voltmesh_engine::ParticipantId;
use voltmesh_wire::bill::{Bill, IntervalBills, Settled};
use voltmesh_wire::Genesis;

use crate::chain::chain_of;
use crate::index::Index;
use crate::ledger::{BlockBody, LedgerApp};
use crate::protocol::App;
use crate::store::{Store, StoreError};

/// Settled intervals of the index read at a time when looking for ones the chain lacks.
const INDEX_PAGE: usize = 1_000;

/// What an audit found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Committed blocks checked.
    pub blocks: u64,
    /// Orders in them.
    pub orders: u64,
    /// Interval clearings re-executed.
    pub clearings: u64,
    /// Intervals settled (their bills recomputed and checked against the blocks' records).
    pub settled_intervals: u64,
    /// Bills recomputed.
    pub bills: u64,
    /// Correction entries recomputed (official metering data), each compared with the index's.
    pub corrections: u64,
    /// The index's height: the bills the blocks up to it settled were compared with the ones
    /// the index serves.
    pub index_height: u64,
}

/// Why an audit failed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// No store in the directory.
    #[error("{0} holds no voltmesh store")]
    NoStore(String),
    /// The store cannot be read.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The store has no genesis or it is invalid.
    #[error("genesis: {0}")]
    Genesis(String),
    /// The store starts at a snapshot (the node was state-synced) or was pruned: the history
    /// below is not there to re-execute.
    #[error(
        "the store starts at a snapshot at height {0} (the node was state-synced or prunes its \
         history): verify needs the full history; run it on a node that keeps it"
    )]
    NoFullHistory(u64),
    /// A block does not check out.
    #[error("block {height} does not check out: {reason}")]
    Mismatch {
        /// The first failing height.
        height: u64,
        /// Why.
        reason: String,
    },
    /// The node's index serves bills other than the ones the chain committed.
    #[error(
        "the index serves bills the ledger did not commit: interval {interval_start}{}: {reason}",
        participant.as_ref().map(|p| format!(", participant {p}")).unwrap_or_default()
    )]
    IndexMismatch {
        /// The interval's start, Unix seconds.
        interval_start: i64,
        /// Whose bill, if the difference is in one bill.
        participant: Option<ParticipantId>,
        /// What differs.
        reason: String,
    },
}

/// Re-executes the committed ledger in `data_dir`.
///
/// # Errors
/// [`VerifyError::Mismatch`] for the first block that fails, or why the audit could not run.
pub fn verify(data_dir: &Path) -> Result<VerifyReport, VerifyError> {
    if !Store::path_in(data_dir).exists() {
        return Err(VerifyError::NoStore(data_dir.display().to_string()));
    }
    let store = Store::open(data_dir)?;
    let genesis_text = store
        .genesis()?
        .ok_or_else(|| VerifyError::Genesis("not recorded".into()))?;
    let genesis = Genesis::from_json(&String::from_utf8_lossy(&genesis_text))
        .map_err(|e| VerifyError::Genesis(e.to_string()))?;
    let chain =
        chain_of(&genesis, &genesis_text).map_err(|e| VerifyError::Genesis(e.to_string()))?;
    if let Some(base) = store.base()? {
        return Err(VerifyError::NoFullHistory(base.height()));
    }
    let index = Index::open(store.database())?;
    let mut app = LedgerApp::new(Arc::new(genesis), chain.genesis());
    let mut previous = chain.genesis().clone();
    let mut report = VerifyReport {
        blocks: 0,
        orders: 0,
        clearings: 0,
        settled_intervals: 0,
        bills: 0,
        corrections: 0,
        index_height: index.height(),
    };
    // Intervals compared with the index (settled at or below its height).
    let mut compared = 0_u64;
    // Streamed from the store a chunk at a time: memory stays flat however long the chain.
    store.for_each_committed(1, |block| {
        let height = block.height();
        let fail = |reason: String| VerifyError::Mismatch { height, reason };
        if height != previous.height() + 1 {
            return Err(fail(format!("follows height {}", previous.height())));
        }
        if block.parent() != previous.hash() {
            return Err(fail(
                "its parent is not the previous committed block".into(),
            ));
        }
        app.validate(&previous, block.payload(), block.timestamp_ms())
            .map_err(|e| fail(e.to_string()))?;
        app.commit(&block);
        // A validator change ended the epoch at this block: the next blocks are the next
        // epoch's (the ended epoch's empty tail never commits on the ledger).
        if app.epoch_ended().is_some() {
            app.enter_epoch();
        }
        // The log of committed blocks is the node's, not the auditor's: drop it as it goes,
        // after comparing the bills it recomputed with the ones the index serves.
        for committed in app.take_committed() {
            for bills in &committed.bills {
                report.settled_intervals += 1;
                report.bills += bills.bills.len() as u64;
                if committed.height <= report.index_height {
                    let summary = Settled::of(bills, committed.height, committed.hash.to_string());
                    check_served(&index, bills, &summary)?;
                    compared += 1;
                }
            }
            for corrections in &committed.corrections {
                report.corrections += corrections.entries.len() as u64;
            }
            if committed.height <= report.index_height {
                check_corrections_served(&index, &committed)?;
            }
        }
        let body = BlockBody::decode(block.payload()).map_err(|e| fail(e.to_string()))?;
        report.blocks += 1;
        report.orders += body.orders.len() as u64;
        report.clearings += body.clearings.len() as u64;
        previous = block;
        Ok(())
    })?;
    check_no_extra(&store, &index, compared)?;
    Ok(report)
}

/// Compares the corrections a block's re-execution made with the ones the index serves for it.
fn check_corrections_served(
    index: &Index,
    committed: &crate::ledger::CommittedBlock,
) -> Result<(), VerifyError> {
    let mut intervals: Vec<i64> = committed
        .corrections
        .iter()
        .map(|c| c.interval_start)
        .collect();
    intervals.sort_unstable();
    intervals.dedup();
    for start in intervals {
        let ours: Vec<_> = committed
            .corrections
            .iter()
            .filter(|c| c.interval_start == start)
            .collect();
        let served = index.corrections(start, start.saturating_add(1))?;
        let theirs: Vec<_> = served
            .iter()
            .filter(|c| c.height == committed.height)
            .map(|c| &c.corrections)
            .collect();
        if ours != theirs {
            return Err(VerifyError::IndexMismatch {
                interval_start: start,
                participant: None,
                reason: format!(
                    "the corrections committed at height {} differ from the ones served",
                    committed.height
                ),
            });
        }
    }
    Ok(())
}

/// Compares the recomputed settlement `bills` (committed as `summary`) with what the index
/// serves for its interval.
fn check_served(
    index: &Index,
    bills: &IntervalBills,
    summary: &Settled,
) -> Result<(), VerifyError> {
    let fail = |participant: Option<&ParticipantId>, reason: String| VerifyError::IndexMismatch {
        interval_start: bills.interval_start,
        participant: participant.cloned(),
        reason,
    };
    let served = match index.settled_bills(bills.interval_start) {
        Ok(Some(served)) => served,
        Ok(None) => {
            return Err(fail(
                None,
                format!(
                    "block {} settled it, the index serves no settlement",
                    summary.height
                ),
            ))
        }
        Err(StoreError::Corrupt { what, detail }) => {
            return Err(fail(
                None,
                format!("a stored {what} does not decode: {detail}"),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    if served.settled != *summary {
        return Err(fail(
            None,
            format!(
                "the settlement summary differs from block {}'s: {}",
                summary.height,
                differences(summary, &served.settled)
            ),
        ));
    }
    let missing = |bill: &Bill| {
        fail(
            Some(&bill.participant),
            "the ledger committed a bill the index does not serve".into(),
        )
    };
    // Both lists are in participant order.
    let (ours, theirs) = (&bills.bills, &served.bills);
    let (mut i, mut j) = (0, 0);
    loop {
        match (ours.get(i), theirs.get(j)) {
            (None, None) => return Ok(()),
            (Some(a), Some(b)) if a.participant == b.participant => {
                if a != b {
                    return Err(fail(
                        Some(&a.participant),
                        format!("the bill differs: {}", differences(a, b)),
                    ));
                }
                i += 1;
                j += 1;
            }
            (Some(a), None) => return Err(missing(a)),
            (Some(a), Some(b)) if a.participant.as_str() < b.participant.as_str() => {
                return Err(missing(a))
            }
            (_, Some(b)) => {
                return Err(fail(
                    Some(&b.participant),
                    "the index serves a bill the ledger did not commit".into(),
                ));
            }
        }
    }
}

/// Checks that the index serves only the `compared` settlements the chain committed: if it
/// holds more, names one whose block does not settle it.
fn check_no_extra(store: &Store, index: &Index, compared: u64) -> Result<(), VerifyError> {
    let mut served = 0_u64;
    for_each_served(index, |_| {
        served += 1;
        Ok(())
    })?;
    if served == compared {
        return Ok(());
    }
    // Every settlement the chain committed up to the index's height is served as committed
    // (height included; checked above), so one of the others names a block that does not
    // settle its interval, or one above the index's height.
    for_each_served(index, |settled| {
        let holds = settled.height <= index.height()
            && match store.committed_block(settled.height)? {
                Some(block) => BlockBody::decode(block.payload()).is_ok_and(|body| {
                    body.bills
                        .iter()
                        .any(|r| r.interval_start == settled.interval_start)
                }),
                None => false,
            };
        if holds {
            return Ok(());
        }
        Err(VerifyError::IndexMismatch {
            interval_start: settled.interval_start,
            participant: None,
            reason: format!(
                "the index serves a settlement of block {}, which did not settle it",
                settled.height
            ),
        })
    })?;
    // Not reached (the argument above); said rather than passed over.
    Err(VerifyError::IndexMismatch {
        interval_start: 0,
        participant: None,
        reason: format!("the index serves {served} settlements, the ledger committed {compared}"),
    })
}

/// Calls `f` with every settlement summary the index serves, oldest first, a page at a time.
fn for_each_served(
    index: &Index,
    mut f: impl FnMut(&Settled) -> Result<(), VerifyError>,
) -> Result<(), VerifyError> {
    let mut next = Some(i64::MIN);
    while let Some(from) = next {
        let (page, more) = index.settled_page(from, i64::MAX, INDEX_PAGE)?;
        for settled in &page {
            f(settled)?;
        }
        next = more;
    }
    Ok(())
}

/// The top-level fields in which two records' JSON differ, `field: committed X, served Y`.
fn differences<T: serde::Serialize>(committed: &T, served: &T) -> String {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) = (
        serde_json::to_value(committed),
        serde_json::to_value(served),
    ) else {
        return "they differ".into();
    };
    let fields: Vec<String> = a
        .iter()
        .filter(|(key, value)| b.get(*key) != Some(*value))
        .map(|(key, value)| {
            let theirs = b.get(key).map_or("nothing".into(), ToString::to_string);
            format!("{key}: committed {value}, served {theirs}")
        })
        .collect();
    fields.join("; ")
}
