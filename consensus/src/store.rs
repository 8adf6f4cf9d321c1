//! The node's durable store on redb: every block the replica persisted, its safety state, the
//! committed chain by height, and the genesis it runs.
//!
//! # Durability invariant
//! Each `put_*`/`commit` call is one redb write transaction, durable when it returns. The node
//! calls [`Store::put_safety`] before it sends the vote or timeout that depends on it, so a
//! restarted node never votes twice in a view; it records a committed block only after the
//! replica committed it, so the committed chain on disk is always a prefix of the replica's.
//!
//! # Recovery (audit L5)
//! - A file that is not a redb database, or that redb cannot repair, is a
//!   [`StoreError::Open`] naming the file; never a panic.
//! - A stored block that does not decode and is not on the committed chain is quarantined:
//!   [`Store::recover`] leaves it out and lists it in [`Recovered::quarantined`] (the node logs
//!   it and goes on; the replica fetches what it needs again). A committed block that does not
//!   decode is [`StoreError::Corrupt`].
//!
//! # Pruning (audit H2)
//! Recording the commit of height `h` deletes, in the same transaction, every stored block at a
//! height `<= h` that is not committed: those are dead forks (or junk) that can never commit.
//! Blocks above `h` stay (they may still be certified). [`Store::upgrade_layout`] does the same
//! by a full scan, once at startup, for stores written before the `uncommitted` index existed.
//!
//! - [`Store::check_committed_chain`] checks that the committed blocks are contiguous from
//!   height 1 and each one's parent is the one below (the first one's is genesis).

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableTable, TableDefinition};

use crate::protocol::{Block, BlockHash, SafetyState};

const BLOCKS: TableDefinition<'_, &[u8; 32], &[u8]> = TableDefinition::new("blocks");
const COMMITTED: TableDefinition<'_, u64, &[u8; 32]> = TableDefinition::new("committed");
const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
/// Height → snapshot bytes of the state after that committed block (the last
/// [`SNAPSHOTS_KEPT`]).
const SNAPSHOTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("snapshots");

/// redb's page cache (its default is 1 GiB, which a long chain would fill): memory a node
/// spends on its store is bounded by this, not by the store's size.
pub const STORE_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Snapshots a store keeps.
pub const SNAPSHOTS_KEPT: usize = 2;
/// `(height, hash)` of every stored block not (yet) known committed: what a commit prunes.
const UNCOMMITTED: TableDefinition<'_, (u64, &[u8; 32]), ()> = TableDefinition::new("uncommitted");

/// Epoch number → the committed block it is rooted at (the block whose validator change ended
/// the epoch before): what a restart needs to derive the epoch's chain, kept whatever pruning
/// deletes.
const EPOCH_ROOTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("epoch_roots");

const SAFETY: &str = "safety";
/// Meta key of the lowest committed height a state-synced or pruned store holds (big-endian
/// u64); absent when the store holds the chain from height 1.
const BASE: &str = "base";
/// Meta key of the store layout version; [`Store::upgrade_layout`] brings older stores to it.
const LAYOUT: &str = "layout";
const LAYOUT_VERSION: &[u8] = b"2";
const GENESIS: &str = "genesis";

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file cannot be opened: not a redb file, truncated beyond repair, or
    /// unreadable.
    #[error("cannot open the store {path}: {detail}")]
    Open {
        /// The database file.
        path: String,
        /// Why.
        detail: String,
    },
    /// The committed chain on disk has a gap or a broken parent link.
    #[error("the committed chain in the store is broken: {0}")]
    BrokenChain(String),
    /// redb failed.
    #[error("database: {0}")]
    Database(String),
    /// Stored bytes do not decode.
    #[error("corrupt {what}: {detail}")]
    Corrupt {
        /// Which record.
        what: &'static str,
        /// The decoder's message.
        detail: String,
    },
    /// The data directory belongs to another chain.
    #[error("the data directory holds a different genesis")]
    GenesisMismatch,
}

fn db_err<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Database(e.to_string())
}

/// What a restarted node reads back: bounded by the retained window and the uncommitted
/// blocks, whatever the chain's length.
#[derive(Debug)]
pub struct Recovered {
    /// The last persisted safety state, if any.
    pub safety: Option<SafetyState>,
    /// Height of the last committed block (0 if none).
    pub committed_height: u64,
    /// Hash of the last committed block, if any.
    pub last_committed: Option<BlockHash>,
    /// The last committed blocks asked for (ascending) and every stored uncommitted block:
    /// what [`crate::protocol::Replica::restore`] takes.
    pub blocks: Vec<Block>,
    /// Stored blocks that did not decode and are not committed, left out: (key in hex, why).
    pub quarantined: Vec<(String, String)>,
}

/// The node's database.
#[derive(Debug)]
pub struct Store {
    db: Arc<Database>,
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    ///
    /// # Errors
    /// [`StoreError::Database`] if the directory or file cannot be used.
    /// [`StoreError::Open`] (naming the file) if it is not a usable redb database.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Self::open_with(dir, false)
    }

    /// As [`Store::open`]; with `compact`, redb compacts the file first (gives the pages that
    /// pruning freed back to the file system; the node does it at startup in pruning mode).
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn open_with(dir: &Path, compact: bool) -> Result<Store, StoreError> {
        let path = Self::path_in(dir);
        let open_err = |detail: String| StoreError::Open {
            path: path.display().to_string(),
            detail,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        // redb checks the header and repairs an unclean file; a file it cannot make sense of
        // is an error (a panic inside it is turned into one too: startup must say which file).
        let opened = std::panic::catch_unwind(|| {
            Database::builder()
                .set_cache_size(STORE_CACHE_BYTES)
                .create(&path)
        })
        .map_err(|_| open_err("the database is corrupt (redb panicked opening it)".into()))?;
        let mut db = opened.map_err(|e| open_err(e.to_string()))?;
        if compact {
            db.compact()
                .map_err(|e| open_err(format!("compaction: {e}")))?;
        }
        let tx = db.begin_write().map_err(|e| open_err(e.to_string()))?;
        for result in [
            tx.open_table(BLOCKS).map(drop),
            tx.open_table(COMMITTED).map(drop),
            tx.open_table(META).map(drop),
            tx.open_table(UNCOMMITTED).map(drop),
            tx.open_table(SNAPSHOTS).map(drop),
        ] {
            result.map_err(|e| open_err(e.to_string()))?;
        }
        tx.commit().map_err(|e| open_err(e.to_string()))?;
        Ok(Store { db: Arc::new(db) })
    }

    /// The database, shared with the API's [`crate::index::Index`].
    #[must_use]
    pub fn database(&self) -> Arc<Database> {
        Arc::clone(&self.db)
    }

    /// The database file inside a data directory.
    pub fn path_in(dir: &Path) -> std::path::PathBuf {
        dir.join("voltmesh.redb")
    }

    /// Records the genesis on first use, or checks that it is the same one.
    ///
    /// # Errors
    /// [`StoreError::GenesisMismatch`] if the directory belongs to another genesis.
    pub fn bind_genesis(&self, genesis_json: &[u8]) -> Result<(), StoreError> {
        match self.genesis()? {
            Some(stored) if stored == genesis_json => Ok(()),
            Some(_) => Err(StoreError::GenesisMismatch),
            None => self.put_meta(GENESIS, genesis_json),
        }
    }

    /// The genesis this directory was created for.
    ///
    /// # Errors
    /// [`StoreError::Database`] on a read failure.
    pub fn genesis(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(META).map_err(db_err)?;
        Ok(table
            .get(GENESIS)
            .map_err(db_err)?
            .map(|v| v.value().to_vec()))
    }

    fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        tx.open_table(META)
            .map_err(db_err)?
            .insert(key, value)
            .map_err(db_err)?;
        tx.commit().map_err(db_err)
    }

    /// Stores a block of the tree.
    ///
    /// # Errors
    /// [`StoreError::Database`] if the write fails.
    pub fn put_block(&self, block: &Block) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let hash = block.hash().0;
            tx.open_table(BLOCKS)
                .map_err(db_err)?
                .insert(&hash, block.to_bytes().as_slice())
                .map_err(db_err)?;
            let committed = tx
                .open_table(COMMITTED)
                .map_err(db_err)?
                .get(block.height())
                .map_err(db_err)?
                .is_some_and(|h| *h.value() == hash);
            if !committed {
                tx.open_table(UNCOMMITTED)
                    .map_err(db_err)?
                    .insert((block.height(), &hash), ())
                    .map_err(db_err)?;
            }
        }
        tx.commit().map_err(db_err)
    }

    /// Replaces the safety state.
    ///
    /// # Errors
    /// [`StoreError::Database`] if the write fails.
    pub fn put_safety(&self, safety: &SafetyState) -> Result<(), StoreError> {
        self.put_meta(SAFETY, &safety.to_bytes())
    }

    /// Starts epoch `number` rooted at the committed block `root`, in one transaction: records
    /// the root, replaces the safety state with the new epoch's first one, and deletes every
    /// uncommitted block (the ended epoch's blocks above `root` never commit, and the new epoch's
    /// blocks are stored only once its replica runs).
    ///
    /// # Errors
    /// [`StoreError::Database`] if the write fails.
    pub fn start_epoch(
        &self,
        number: u64,
        root: &Block,
        safety: &SafetyState,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            tx.open_table(EPOCH_ROOTS)
                .map_err(db_err)?
                .insert(number, root.to_bytes().as_slice())
                .map_err(db_err)?;
            tx.open_table(META)
                .map_err(db_err)?
                .insert(SAFETY, safety.to_bytes().as_slice())
                .map_err(db_err)?;
            let mut uncommitted = tx.open_table(UNCOMMITTED).map_err(db_err)?;
            let mut listed = Vec::new();
            for entry in uncommitted.iter().map_err(db_err)? {
                let (key, _) = entry.map_err(db_err)?;
                let (height, hash) = key.value();
                listed.push((height, *hash));
            }
            let mut blocks = tx.open_table(BLOCKS).map_err(db_err)?;
            for (height, hash) in listed {
                uncommitted.remove((height, &hash)).map_err(db_err)?;
                blocks.remove(&hash).map_err(db_err)?;
            }
        }
        tx.commit().map_err(db_err)
    }

    /// The block epoch `number` is rooted at, if [`Store::start_epoch`] recorded it.
    ///
    /// # Errors
    /// [`StoreError`] on a read failure or a corrupt record.
    pub fn epoch_root(&self, number: u64) -> Result<Option<Block>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = match tx.open_table(EPOCH_ROOTS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(db_err(e)),
        };
        let Some(bytes) = table.get(number).map_err(db_err)? else {
            return Ok(None);
        };
        decode_block(bytes.value()).map(Some)
    }

    /// Records a committed block at its height.
    ///
    /// # Errors
    /// [`StoreError::Database`] if the write fails.
    pub fn commit(&self, block: &Block) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut blocks = tx.open_table(BLOCKS).map_err(db_err)?;
            blocks
                .insert(&block.hash().0, block.to_bytes().as_slice())
                .map_err(db_err)?;
            let mut committed = tx.open_table(COMMITTED).map_err(db_err)?;
            committed
                .insert(block.height(), &block.hash().0)
                .map_err(db_err)?;
            // Every block at or below this height that is not committed is a dead fork.
            let mut uncommitted = tx.open_table(UNCOMMITTED).map_err(db_err)?;
            let mut listed = Vec::new();
            for entry in uncommitted
                .range(..=(block.height(), &[0xff; 32]))
                .map_err(db_err)?
            {
                let (key, _) = entry.map_err(db_err)?;
                let (height, hash) = key.value();
                listed.push((height, *hash));
            }
            for (height, hash) in listed {
                uncommitted.remove((height, &hash)).map_err(db_err)?;
                let is_committed = committed
                    .get(height)
                    .map_err(db_err)?
                    .is_some_and(|h| *h.value() == hash);
                if !is_committed {
                    blocks.remove(&hash).map_err(db_err)?;
                }
            }
        }
        tx.commit().map_err(db_err)
    }

    /// Brings a store written by an older version to the current layout, once (a full scan;
    /// later starts skip it): deletes every stored block at or below the committed height that
    /// is not committed (dead forks, audit H2) and lists every other uncommitted block in the
    /// `uncommitted` index, which [`Store::recover`] reads instead of scanning. Blocks that do
    /// not decode are listed too, for [`Store::recover`] to quarantine. Returns how many blocks
    /// it deleted.
    ///
    /// # Errors
    /// [`StoreError::Database`] on a read or write failure.
    pub fn upgrade_layout(&self) -> Result<usize, StoreError> {
        {
            let tx = self.db.begin_read().map_err(db_err)?;
            let meta = tx.open_table(META).map_err(db_err)?;
            if meta
                .get(LAYOUT)
                .map_err(db_err)?
                .is_some_and(|v| v.value() == LAYOUT_VERSION)
            {
                return Ok(0);
            }
        }
        let tx = self.db.begin_write().map_err(db_err)?;
        let mut removed = 0;
        {
            let committed = tx.open_table(COMMITTED).map_err(db_err)?;
            let top = committed
                .last()
                .map_err(db_err)?
                .map_or(0, |(h, _)| h.value());
            let mut blocks = tx.open_table(BLOCKS).map_err(db_err)?;
            let mut dead = Vec::new();
            let mut live = Vec::new();
            for entry in blocks.iter().map_err(db_err)? {
                let (key, bytes) = entry.map_err(db_err)?;
                let Ok(block) = Block::from_bytes(bytes.value()) else {
                    live.push((u64::MAX, *key.value()));
                    continue;
                };
                let is_committed = committed
                    .get(block.height())
                    .map_err(db_err)?
                    .is_some_and(|h| h.value() == key.value());
                if block.height() > top {
                    live.push((block.height(), *key.value()));
                } else if !is_committed {
                    dead.push((block.height(), *key.value()));
                }
            }
            let mut uncommitted = tx.open_table(UNCOMMITTED).map_err(db_err)?;
            for (height, hash) in dead {
                blocks.remove(&hash).map_err(db_err)?;
                uncommitted.remove((height, &hash)).map_err(db_err)?;
                removed += 1;
            }
            for (height, hash) in live {
                uncommitted.insert((height, &hash), ()).map_err(db_err)?;
            }
            tx.open_table(META)
                .map_err(db_err)?
                .insert(LAYOUT, LAYOUT_VERSION)
                .map_err(db_err)?;
        }
        tx.commit().map_err(db_err)?;
        Ok(removed)
    }

    /// The committed block at `height`.
    ///
    /// # Errors
    /// [`StoreError`] on a read failure or a corrupt record.
    pub fn committed_block(&self, height: u64) -> Result<Option<Block>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let committed = tx.open_table(COMMITTED).map_err(db_err)?;
        let Some(hash) = committed.get(height).map_err(db_err)?.map(|h| *h.value()) else {
            return Ok(None);
        };
        let blocks = tx.open_table(BLOCKS).map_err(db_err)?;
        let bytes = blocks
            .get(&hash)
            .map_err(db_err)?
            .ok_or(StoreError::Corrupt {
                what: "committed index",
                detail: format!("height {height} names a missing block"),
            })?;
        decode_block(bytes.value()).map(Some)
    }

    /// Stores the snapshot of the state after the committed block at `height`, keeping the
    /// last [`SNAPSHOTS_KEPT`].
    ///
    /// # Errors
    /// [`StoreError::Database`] if the write fails.
    pub fn put_snapshot(&self, height: u64, bytes: &[u8]) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut table = tx.open_table(SNAPSHOTS).map_err(db_err)?;
            table.insert(height, bytes).map_err(db_err)?;
            let mut heights = Vec::new();
            for entry in table.iter().map_err(db_err)? {
                heights.push(entry.map_err(db_err)?.0.value());
            }
            let old = heights.len().saturating_sub(SNAPSHOTS_KEPT);
            for h in &heights[..old] {
                table.remove(*h).map_err(db_err)?;
            }
        }
        tx.commit().map_err(db_err)
    }

    /// The stored snapshots' heights, newest first.
    ///
    /// # Errors
    /// [`StoreError::Database`] on a read failure.
    pub fn snapshot_heights(&self) -> Result<Vec<u64>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(SNAPSHOTS).map_err(db_err)?;
        let mut heights = Vec::new();
        for entry in table.iter().map_err(db_err)? {
            heights.push(entry.map_err(db_err)?.0.value());
        }
        heights.reverse();
        Ok(heights)
    }

    /// The snapshot bytes of the state after the committed block at `height`, if stored.
    ///
    /// # Errors
    /// [`StoreError::Database`] on a read failure.
    pub fn snapshot(&self, height: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(SNAPSHOTS).map_err(db_err)?;
        let bytes = table
            .get(height)
            .map_err(db_err)?
            .map(|v| v.value().to_vec());
        Ok(bytes)
    }

    /// Makes an empty store start at a verified snapshot: `block` is recorded as committed at
    /// its height, `snapshot` as the state after it, and the store's base set to it (blocks
    /// below are never held; [`Store::check_committed_chain`] starts there).
    ///
    /// # Errors
    /// [`StoreError::Database`] if the write fails; [`StoreError::BrokenChain`] if the store
    /// already holds committed blocks.
    pub fn install_snapshot(&self, block: &Block, snapshot: &[u8]) -> Result<(), StoreError> {
        if self.committed_height()? > 0 {
            return Err(StoreError::BrokenChain(
                "a snapshot can only start an empty store".into(),
            ));
        }
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            tx.open_table(BLOCKS)
                .map_err(db_err)?
                .insert(&block.hash().0, block.to_bytes().as_slice())
                .map_err(db_err)?;
            tx.open_table(COMMITTED)
                .map_err(db_err)?
                .insert(block.height(), &block.hash().0)
                .map_err(db_err)?;
            tx.open_table(SNAPSHOTS)
                .map_err(db_err)?
                .insert(block.height(), snapshot)
                .map_err(db_err)?;
            tx.open_table(META)
                .map_err(db_err)?
                .insert(BASE, block.height().to_be_bytes().as_slice())
                .map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }

    /// Pruning mode: deletes the committed blocks below `height` (at most `max` of them, oldest
    /// first, in one transaction) and moves the store's base up to the lowest height left.
    /// Returns how many it deleted. The block at `height` and everything above stay; the
    /// caller never prunes above its oldest stored snapshot, so a restart always finds a
    /// snapshot with the blocks above it.
    ///
    /// # Errors
    /// [`StoreError::Database`] if the write fails.
    pub fn prune_committed_below(&self, height: u64, max: usize) -> Result<usize, StoreError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        let mut deleted = 0;
        {
            let mut committed = tx.open_table(COMMITTED).map_err(db_err)?;
            let mut doomed = Vec::new();
            for entry in committed.range(..height).map_err(db_err)?.take(max) {
                let (h, hash) = entry.map_err(db_err)?;
                doomed.push((h.value(), *hash.value()));
            }
            let mut blocks = tx.open_table(BLOCKS).map_err(db_err)?;
            for (h, hash) in &doomed {
                committed.remove(*h).map_err(db_err)?;
                blocks.remove(hash).map_err(db_err)?;
                deleted += 1;
            }
            let lowest = committed.first().map_err(db_err)?.map(|(h, _)| h.value());
            if let Some(lowest) = lowest.filter(|_| deleted > 0) {
                tx.open_table(META)
                    .map_err(db_err)?
                    .insert(BASE, lowest.to_be_bytes().as_slice())
                    .map_err(db_err)?;
            }
        }
        tx.commit().map_err(db_err)?;
        Ok(deleted)
    }

    /// The lowest committed block a state-synced or pruned store holds, if it does not hold the
    /// chain from height 1 (`None`).
    ///
    /// # Errors
    /// [`StoreError`] on a read failure or a corrupt record.
    pub fn base(&self) -> Result<Option<Block>, StoreError> {
        let height = {
            let tx = self.db.begin_read().map_err(db_err)?;
            let meta = tx.open_table(META).map_err(db_err)?;
            let Some(bytes) = meta.get(BASE).map_err(db_err)? else {
                return Ok(None);
            };
            let raw: [u8; 8] = bytes.value().try_into().map_err(|_| StoreError::Corrupt {
                what: "base height",
                detail: "not 8 bytes".into(),
            })?;
            u64::from_be_bytes(raw)
        };
        self.committed_block(height)?
            .ok_or(StoreError::Corrupt {
                what: "base",
                detail: format!("no committed block at the base height {height}"),
            })
            .map(Some)
    }

    /// Height of the last committed block (0 if none).
    ///
    /// # Errors
    /// [`StoreError::Database`] on a read failure.
    pub fn committed_height(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let committed = tx.open_table(COMMITTED).map_err(db_err)?;
        let top = committed
            .last()
            .map_err(db_err)?
            .map_or(0, |(h, _)| h.value());
        Ok(top)
    }

    /// The committed blocks at heights `from..=to` (as many as are recorded), ascending: one
    /// read transaction, so callers page through long ranges in chunks.
    ///
    /// # Errors
    /// [`StoreError`] on a read failure, a committed height naming a missing block, or a
    /// committed block that does not decode.
    pub fn committed_blocks(&self, from: u64, to: u64) -> Result<Vec<Block>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let committed = tx.open_table(COMMITTED).map_err(db_err)?;
        let blocks = tx.open_table(BLOCKS).map_err(db_err)?;
        let mut out = Vec::new();
        for entry in committed.range(from..=to).map_err(db_err)? {
            let (height, hash) = entry.map_err(db_err)?;
            let height = height.value();
            let bytes = blocks
                .get(hash.value())
                .map_err(db_err)?
                .ok_or(StoreError::Corrupt {
                    what: "committed index",
                    detail: format!("height {height} names a missing block"),
                })?;
            let block = Block::from_bytes(bytes.value()).map_err(|e| StoreError::Corrupt {
                what: "committed block",
                detail: format!("height {height}: {e}"),
            })?;
            out.push(block);
        }
        Ok(out)
    }

    /// Calls `f` with every committed block from height `from` up, ascending, reading
    /// [`COMMITTED_CHUNK`] blocks at a time (memory stays bounded however long the chain).
    ///
    /// # Errors
    /// The first error of the store or of `f`.
    pub fn for_each_committed<E: From<StoreError>>(
        &self,
        from: u64,
        mut f: impl FnMut(Block) -> Result<(), E>,
    ) -> Result<(), E> {
        let top = self.committed_height()?;
        let mut next = from.max(1);
        while next <= top {
            let to = next.saturating_add(COMMITTED_CHUNK - 1).min(top);
            let chunk = self.committed_blocks(next, to)?;
            if chunk.is_empty() {
                break;
            }
            for block in chunk {
                next = block.height() + 1;
                f(block)?;
            }
        }
        Ok(())
    }

    /// Checks that the committed blocks are heights 1, 2, … (in a state-synced store, from
    /// its base on) without a gap and that each one's parent is the block below it (the
    /// first one's is `genesis`), reading the chain in chunks.
    ///
    /// # Errors
    /// [`StoreError::BrokenChain`] naming the first height that does not link; [`StoreError`]
    /// on a read failure or a corrupt committed block.
    pub fn check_committed_chain(&self, genesis: BlockHash) -> Result<(), StoreError> {
        self.for_each_linked(self.base()?.as_ref(), genesis, |_| Ok::<(), StoreError>(()))
    }

    /// Calls `f` with every committed block above `start` (from height 1 if `None`), ascending
    /// and streamed as [`Store::for_each_committed`] does, checking on the way that the heights
    /// have no gap and that each block extends the one below it (the first one `start`, or
    /// genesis): a restart checks the chain and replays it in one pass.
    ///
    /// # Errors
    /// [`StoreError::BrokenChain`] naming the first height that does not link; the store's or
    /// `f`'s first error.
    pub fn for_each_linked<E: From<StoreError>>(
        &self,
        start: Option<&Block>,
        genesis: BlockHash,
        mut f: impl FnMut(Block) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut parent = start.map_or(genesis, Block::hash);
        let mut expected = start.map_or(1, |b| b.height() + 1);
        self.for_each_committed(expected, |block: Block| {
            if block.height() != expected {
                return Err(StoreError::BrokenChain(format!(
                    "height {expected} is missing (the next committed block is at height {})",
                    block.height()
                ))
                .into());
            }
            if block.parent() != parent {
                return Err(StoreError::BrokenChain(format!(
                    "the committed block at height {expected} does not extend the one below it"
                ))
                .into());
            }
            parent = block.hash();
            expected += 1;
            f(block)
        })
    }

    /// What a restart needs: the safety state, the last `tail` committed blocks, and every
    /// stored uncommitted block (undecodable ones quarantined).
    ///
    /// # Errors
    /// [`StoreError`] on a read failure or a corrupt record.
    pub fn recover(&self, tail: usize) -> Result<Recovered, StoreError> {
        let committed_height = self.committed_height()?;
        let from = committed_height
            .saturating_sub(u64::try_from(tail).unwrap_or(u64::MAX))
            .saturating_add(1);
        let mut blocks = self.committed_blocks(from, committed_height)?;
        let last_committed = blocks.last().map(Block::hash);
        let tx = self.db.begin_read().map_err(db_err)?;
        let meta = tx.open_table(META).map_err(db_err)?;
        let safety =
            match meta.get(SAFETY).map_err(db_err)? {
                Some(bytes) => Some(SafetyState::from_bytes(bytes.value()).map_err(|e| {
                    StoreError::Corrupt {
                        what: "safety state",
                        detail: e.to_string(),
                    }
                })?),
                None => None,
            };
        let uncommitted = tx.open_table(UNCOMMITTED).map_err(db_err)?;
        let table = tx.open_table(BLOCKS).map_err(db_err)?;
        let mut quarantined = Vec::new();
        for entry in uncommitted.iter().map_err(db_err)? {
            let (key, _) = entry.map_err(db_err)?;
            let (_, hash) = key.value();
            let Some(bytes) = table.get(hash).map_err(db_err)? else {
                continue;
            };
            match Block::from_bytes(bytes.value()) {
                Ok(block) => blocks.push(block),
                Err(e) => quarantined.push((hex::encode(hash), e.to_string())),
            }
        }
        Ok(Recovered {
            safety,
            committed_height,
            last_committed,
            blocks,
            quarantined,
        })
    }
}

/// Committed blocks read per transaction by [`Store::for_each_committed`].
pub const COMMITTED_CHUNK: u64 = 256;

fn decode_block(bytes: &[u8]) -> Result<Block, StoreError> {
    Block::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        what: "block",
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{QuorumCert, ValidatorIndex};

    fn child(parent: &Block, tag: u8) -> Block {
        let qc = QuorumCert {
            block: parent.hash(),
            view: parent.view(),
            height: parent.height(),
            signatures: Vec::new(),
        };
        Block::new(
            parent.height() + 1,
            parent.view() + 1,
            ValidatorIndex(0),
            1_000 * parent.height(),
            qc,
            vec![tag],
        )
    }

    fn stored_hashes(store: &Store) -> std::collections::BTreeSet<BlockHash> {
        store
            .recover(usize::MAX)
            .expect("recover")
            .blocks
            .iter()
            .map(Block::hash)
            .collect()
    }

    #[test]
    fn a_commit_deletes_uncommitted_blocks_at_or_below_its_height() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let genesis = Block::genesis(0, Vec::new());
        let b1 = child(&genesis, 1);
        let f1 = child(&genesis, 2); // a dead fork at height 1
        let b2 = child(&b1, 1);
        let f2 = child(&f1, 2); // its child at height 2
        let b3 = child(&b2, 1); // above the committed height: kept
        for block in [&b1, &f1, &b2, &f2, &b3] {
            store.put_block(block).expect("put");
        }
        store.commit(&b1).expect("commit 1");
        let after_1 = stored_hashes(&store);
        assert!(!after_1.contains(&f1.hash()), "the fork at height 1 stays");
        assert!(after_1.contains(&f2.hash()), "height 2 is not decided yet");
        // A committed block persisted again (e.g. by sync) is not a dead fork.
        store.put_block(&b1).expect("put again");
        store.commit(&b2).expect("commit 2");
        let after_2 = stored_hashes(&store);
        let expected: std::collections::BTreeSet<BlockHash> =
            [b1.hash(), b2.hash(), b3.hash()].into_iter().collect();
        assert_eq!(after_2, expected);
        let recovered = store.recover(1).expect("recover");
        assert_eq!(recovered.committed_height, 2);
        assert_eq!(recovered.last_committed, Some(b2.hash()));
        let read: Vec<BlockHash> = recovered.blocks.iter().map(Block::hash).collect();
        assert_eq!(
            read,
            vec![b2.hash(), b3.hash()],
            "the tail asked for and the rest"
        );
        store.check_committed_chain(genesis.hash()).expect("linked");
    }

    #[test]
    fn layout_upgrade_deletes_dead_forks_and_indexes_what_older_stores_left() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let genesis = Block::genesis(0, Vec::new());
        let b1 = child(&genesis, 1);
        let f1 = child(&genesis, 2);
        let b2 = child(&b1, 1);
        store.commit(&b1).expect("commit");
        // Written without the `uncommitted` index, as before it existed.
        let tx = store.db.begin_write().expect("write");
        {
            let mut blocks = tx.open_table(BLOCKS).expect("blocks");
            for block in [&f1, &b2] {
                blocks
                    .insert(&block.hash().0, block.to_bytes().as_slice())
                    .expect("insert");
            }
        }
        tx.commit().expect("commit");
        assert_eq!(store.upgrade_layout().expect("upgrade"), 1);
        assert_eq!(store.upgrade_layout().expect("once"), 0);
        let expected: std::collections::BTreeSet<BlockHash> =
            [b1.hash(), b2.hash()].into_iter().collect();
        assert_eq!(stored_hashes(&store), expected);
    }
}
