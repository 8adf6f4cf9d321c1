//! Snapshots and state sync: how a node serves its latest ledger snapshot with a proof, and how
//! a new or wiped node verifies one against the validators' certificates and starts from it
//! instead of replaying the chain from genesis.
//!
//! # What proves a snapshot
//! A [`SnapshotView`] at height `s` carries the state after block `s` and the committed blocks
//! `s, s + 1, …, j + 2` from the serving node's store. The receiver checks, trusting nothing
//! but the genesis validator set:
//! 1. `s` is a snapshot height and the first proof block is `s` with the named hash;
//! 2. each proof block is the parent of the next, heights consecutive;
//! 3. some pair `(j, j + 1)` of proof blocks has consecutive views and the last proof block's
//!    justify is a valid quorum certificate for `j + 1`: by the commit rule, `j` is committed,
//!    and with it every block below it, `s` included;
//! 4. block `s + 1` carries the digest of exactly these state bytes: it is certified (it is
//!    `j`, below it, or `j + 1`, which the certificate names), so at least one honest validator
//!    checked that digest against its own state after `s`;
//! 5. the bytes decode to a canonical state.
//!
//! A lying peer can therefore only withhold a snapshot or serve an older one, never a false
//! one. The synced node then fetches the blocks above `s` by ordinary block sync.

use std::sync::Arc;

use tracing::{info, warn};
use voltmesh_wire::api::SnapshotView;
use voltmesh_wire::client::NodeClient;
use voltmesh_wire::Genesis;

use crate::ledger::snapshot::{digest, is_snapshot_height};
use crate::ledger::{BlockBody, LedgerState};
use crate::protocol::{Block, Chain};
use crate::store::{Store, StoreError};

/// Committed blocks above a snapshot a node reads, at most, to find its commit proof.
const PROOF_SEARCH: u64 = 64;

/// Why a snapshot was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateSyncError {
    /// The snapshot or its proof does not check out.
    #[error("snapshot at height {height} refused: {reason}")]
    Refused {
        /// The snapshot's height.
        height: u64,
        /// What failed.
        reason: String,
    },
    /// No peer served a snapshot that checks out.
    #[error("no peer served a usable snapshot: {0}")]
    NoSnapshot(String),
}

/// A snapshot that checked out: the block it follows, the state after it, and its bytes.
#[derive(Debug)]
pub struct VerifiedSnapshot {
    /// The committed block at the snapshot height.
    pub block: Block,
    /// The state after it.
    pub state: LedgerState,
    /// The state's canonical bytes.
    pub bytes: Vec<u8>,
}

/// The newest stored snapshot whose commit proof the store already holds, as served by
/// `GET /v1/snapshot`; `None` if there is none yet.
///
/// # Errors
/// [`StoreError`] on a read failure.
pub fn latest_snapshot(store: &Store) -> Result<Option<SnapshotView>, StoreError> {
    for height in store.snapshot_heights()? {
        let Some(state) = store.snapshot(height)? else {
            continue;
        };
        let blocks = store.committed_blocks(height, height + PROOF_SEARCH)?;
        let Some(end) = proof_end(&blocks) else {
            continue;
        };
        let Ok(state) = String::from_utf8(state) else {
            continue;
        };
        return Ok(Some(SnapshotView {
            height,
            block_hash: hex::encode(blocks[0].hash().0),
            state,
            proof: blocks[..=end]
                .iter()
                .map(|b| hex::encode(b.to_bytes()))
                .collect(),
        }));
    }
    Ok(None)
}

/// The index of the last proof block: the first `j + 2` such that blocks `j` and `j + 1` have
/// consecutive views (the last block's justify certifies `j + 1`).
fn proof_end(blocks: &[Block]) -> Option<usize> {
    (0..blocks.len().saturating_sub(2))
        .find(|&j| blocks[j].view().checked_add(1) == Some(blocks[j + 1].view()))
        .map(|j| j + 2)
}

/// Checks a served snapshot (module docs, "What proves a snapshot").
///
/// # Errors
/// [`StateSyncError::Refused`] naming the first check that failed.
pub fn verify(
    chain: &Chain,
    genesis: &Genesis,
    view: &SnapshotView,
) -> Result<VerifiedSnapshot, StateSyncError> {
    let refuse = |reason: String| StateSyncError::Refused {
        height: view.height,
        reason,
    };
    if !is_snapshot_height(genesis, view.height) {
        return Err(refuse("not a snapshot height of this genesis".into()));
    }
    let mut blocks = Vec::with_capacity(view.proof.len());
    for text in &view.proof {
        let bytes = hex::decode(text).map_err(|e| refuse(format!("proof block: {e}")))?;
        blocks.push(Block::from_bytes(&bytes).map_err(|e| refuse(format!("proof block: {e}")))?);
    }
    let first = blocks.first().ok_or_else(|| refuse("empty proof".into()))?;
    if first.height() != view.height || hex::encode(first.hash().0) != view.block_hash {
        return Err(refuse("the first proof block is not the snapshot's".into()));
    }
    for pair in blocks.windows(2) {
        if pair[1].parent() != pair[0].hash() || pair[1].height() != pair[0].height() + 1 {
            return Err(refuse(format!(
                "proof block at height {} does not extend the one below",
                pair[1].height()
            )));
        }
    }
    let end = proof_end(&blocks)
        .filter(|end| *end == blocks.len() - 1)
        .ok_or_else(|| refuse("the proof does not end with a commit certificate".into()))?;
    let certified = &blocks[end - 1];
    let qc = blocks[end].justify();
    if qc.block != certified.hash() || qc.view != certified.view() {
        return Err(refuse(
            "the last justify does not certify its parent".into(),
        ));
    }
    qc.verify(chain)
        .map_err(|e| refuse(format!("commit certificate: {e}")))?;
    let next = BlockBody::decode(blocks[1].payload())
        .map_err(|e| refuse(format!("block {}: {e}", blocks[1].height())))?;
    let bytes = view.state.as_bytes().to_vec();
    if next.state.as_deref() != Some(digest(&bytes).as_str()) {
        return Err(refuse(
            "the state's digest is not the one the next block carries".into(),
        ));
    }
    let state = LedgerState::from_snapshot(genesis, &bytes).map_err(|e| refuse(e.to_string()))?;
    Ok(VerifiedSnapshot {
        block: blocks.swap_remove(0),
        state,
        bytes,
    })
}

/// Asks every peer (node API base URLs) for its latest snapshot, signing the reads with this
/// node's `key` (peers serve snapshots to validators' keys only), and returns the highest one
/// that checks out.
///
/// # Errors
/// [`StateSyncError::NoSnapshot`] if none does, naming each peer's problem.
pub async fn fetch(
    peers: &[String],
    chain: &Chain,
    genesis: &Arc<Genesis>,
    key: &ed25519_dalek::SigningKey,
) -> Result<VerifiedSnapshot, StateSyncError> {
    let mut best: Option<VerifiedSnapshot> = None;
    let mut problems = Vec::new();
    for peer in peers {
        // Snapshots are served to validators' (and billing) keys only: this node signs its read.
        let client = match NodeClient::new(peer) {
            Ok(client) => client.with_read_key(&genesis.neighborhood, key.clone()),
            Err(e) => {
                problems.push(format!("{peer}: {e}"));
                continue;
            }
        };
        match client.snapshot().await {
            Ok(Some(view)) => match verify(chain, genesis, &view) {
                Ok(snapshot) => {
                    info!(%peer, height = snapshot.block.height(), "snapshot checks out");
                    if best
                        .as_ref()
                        .is_none_or(|b| b.block.height() < snapshot.block.height())
                    {
                        best = Some(snapshot);
                    }
                }
                Err(e) => {
                    warn!(%peer, cause = %e, "snapshot refused");
                    problems.push(format!("{peer}: {e}"));
                }
            },
            Ok(None) => problems.push(format!("{peer}: no snapshot yet")),
            Err(e) => problems.push(format!("{peer}: {e}")),
        }
    }
    best.ok_or_else(|| StateSyncError::NoSnapshot(problems.join("; ")))
}
