//! `voltmesh verify`: an auditor re-executes a node's committed ledger from genesis.
//!
//! Every committed block must extend the previous one (height and parent hash), and its payload
//! must re-execute through the engine to exactly the clearings it records, with every order's
//! signature, id and interval checked, as a validator checks a proposal. The first block that
//! fails is reported with the reason.
//!
//! # Known limitations
//! Run it on a stopped node's data directory (redb holds a lock while the node runs), or on a
//! copy. Quorum certificates are not re-verified here; the node verified them before committing.

use std::path::Path;
use std::sync::Arc;

use voltmesh_wire::Genesis;

use crate::chain::chain_of;
use crate::ledger::{BlockBody, LedgerApp};
use crate::protocol::App;
use crate::store::{Store, StoreError};

/// What an audit found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Committed blocks checked.
    pub blocks: u64,
    /// Orders in them.
    pub orders: u64,
    /// Interval clearings re-executed.
    pub clearings: u64,
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
    let mut app = LedgerApp::new(Arc::new(genesis), chain.genesis());
    let mut previous = chain.genesis().clone();
    let mut report = VerifyReport {
        blocks: 0,
        orders: 0,
        clearings: 0,
    };
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
        // The log of committed blocks is the node's, not the auditor's: drop it as it goes.
        drop(app.take_committed());
        let body = BlockBody::decode(block.payload()).map_err(|e| fail(e.to_string()))?;
        report.blocks += 1;
        report.orders += body.orders.len() as u64;
        report.clearings += body.clearings.len() as u64;
        previous = block;
        Ok(())
    })?;
    Ok(report)
}
