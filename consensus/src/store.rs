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
//! Blocks above `h` stay (they may still be certified). [`Store::prune_dead_forks`] does the same
//! by a full scan, once at startup, for stores written before the `uncommitted` index existed.
//!
//! - [`Recovered::check_committed_chain`] checks that the committed blocks are contiguous from
//!   height 1 and each one's parent is the one below (the first one's is genesis).

use std::path::Path;

use redb::{Database, ReadableTable, TableDefinition};

use crate::protocol::{Block, BlockHash, SafetyState};

const BLOCKS: TableDefinition<'_, &[u8; 32], &[u8]> = TableDefinition::new("blocks");
const COMMITTED: TableDefinition<'_, u64, &[u8; 32]> = TableDefinition::new("committed");
const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
/// `(height, hash)` of every stored block not (yet) known committed: what a commit prunes.
const UNCOMMITTED: TableDefinition<'_, (u64, &[u8; 32]), ()> = TableDefinition::new("uncommitted");

const SAFETY: &str = "safety";
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

/// Everything a restarted node needs.
#[derive(Debug)]
pub struct Recovered {
    /// The last persisted safety state, if any.
    pub safety: Option<SafetyState>,
    /// Every persisted block.
    pub blocks: Vec<Block>,
    /// Committed blocks in height order (height 1 upwards).
    pub committed: Vec<Block>,
    /// Stored blocks that did not decode and are not committed, left out: (key in hex, why).
    pub quarantined: Vec<(String, String)>,
}

impl Recovered {
    /// Checks that the committed blocks are heights 1, 2, … without a gap and that each one's
    /// parent is the block below it (the first one's is `genesis`).
    ///
    /// # Errors
    /// [`StoreError::BrokenChain`] naming the first height that does not link.
    pub fn check_committed_chain(&self, genesis: BlockHash) -> Result<(), StoreError> {
        let mut parent = genesis;
        for (expected, block) in (1u64..).zip(&self.committed) {
            if block.height() != expected {
                return Err(StoreError::BrokenChain(format!(
                    "height {expected} is missing (the next committed block is at height {})",
                    block.height()
                )));
            }
            if block.parent() != parent {
                return Err(StoreError::BrokenChain(format!(
                    "the committed block at height {expected} does not extend the one below it"
                )));
            }
            parent = block.hash();
        }
        Ok(())
    }
}

/// The node's database.
#[derive(Debug)]
pub struct Store {
    db: Database,
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    ///
    /// # Errors
    /// [`StoreError::Database`] if the directory or file cannot be used.
    /// [`StoreError::Open`] (naming the file) if it is not a usable redb database.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let path = Self::path_in(dir);
        let open_err = |detail: String| StoreError::Open {
            path: path.display().to_string(),
            detail,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        // redb checks the header and repairs an unclean file; a file it cannot make sense of
        // is an error (a panic inside it is turned into one too: startup must say which file).
        let opened = std::panic::catch_unwind(|| Database::create(&path))
            .map_err(|_| open_err("the database is corrupt (redb panicked opening it)".into()))?;
        let db = opened.map_err(|e| open_err(e.to_string()))?;
        let tx = db.begin_write().map_err(|e| open_err(e.to_string()))?;
        for result in [
            tx.open_table(BLOCKS).map(drop),
            tx.open_table(COMMITTED).map(drop),
            tx.open_table(META).map(drop),
            tx.open_table(UNCOMMITTED).map(drop),
        ] {
            result.map_err(|e| open_err(e.to_string()))?;
        }
        tx.commit().map_err(|e| open_err(e.to_string()))?;
        Ok(Store { db })
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

    /// Deletes every stored block at or below the committed height that is not committed, by a
    /// full scan (for stores written before commits pruned them); returns how many it deleted.
    /// Blocks that do not decode are left for [`Store::recover`] to skip.
    ///
    /// # Errors
    /// [`StoreError::Database`] on a read or write failure.
    pub fn prune_dead_forks(&self) -> Result<usize, StoreError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        let mut removed = 0;
        {
            let committed = tx.open_table(COMMITTED).map_err(db_err)?;
            let Some(top) = committed.last().map_err(db_err)?.map(|(h, _)| h.value()) else {
                return Ok(0);
            };
            let mut blocks = tx.open_table(BLOCKS).map_err(db_err)?;
            let mut dead = Vec::new();
            for entry in blocks.iter().map_err(db_err)? {
                let (key, bytes) = entry.map_err(db_err)?;
                let Ok(block) = Block::from_bytes(bytes.value()) else {
                    continue;
                };
                if block.height() > top {
                    continue;
                }
                let is_committed = committed
                    .get(block.height())
                    .map_err(db_err)?
                    .is_some_and(|h| h.value() == key.value());
                if !is_committed {
                    dead.push((block.height(), *key.value()));
                }
            }
            let mut uncommitted = tx.open_table(UNCOMMITTED).map_err(db_err)?;
            for (height, hash) in dead {
                blocks.remove(&hash).map_err(db_err)?;
                uncommitted.remove((height, &hash)).map_err(db_err)?;
                removed += 1;
            }
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

    /// Everything persisted, for a restart or an audit.
    ///
    /// # Errors
    /// [`StoreError`] on a read failure or a corrupt record.
    pub fn recover(&self) -> Result<Recovered, StoreError> {
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
        let committed_table = tx.open_table(COMMITTED).map_err(db_err)?;
        let mut committed_hashes = std::collections::BTreeMap::new();
        for entry in committed_table.iter().map_err(db_err)? {
            let (height, hash) = entry.map_err(db_err)?;
            committed_hashes.insert(*hash.value(), height.value());
        }
        let table = tx.open_table(BLOCKS).map_err(db_err)?;
        let mut blocks = Vec::new();
        let mut quarantined = Vec::new();
        for entry in table.iter().map_err(db_err)? {
            let (key, bytes) = entry.map_err(db_err)?;
            match Block::from_bytes(bytes.value()) {
                Ok(block) => blocks.push(block),
                Err(e) => match committed_hashes.get(key.value()) {
                    Some(height) => {
                        return Err(StoreError::Corrupt {
                            what: "committed block",
                            detail: format!("height {height}: {e}"),
                        })
                    }
                    None => quarantined.push((hex::encode(key.value()), e.to_string())),
                },
            }
        }
        let by_hash: std::collections::BTreeMap<BlockHash, &Block> =
            blocks.iter().map(|b| (b.hash(), b)).collect();
        let mut committed = Vec::new();
        for entry in committed_table.iter().map_err(db_err)? {
            let (height, hash) = entry.map_err(db_err)?;
            let block = by_hash
                .get(&BlockHash(*hash.value()))
                .ok_or(StoreError::Corrupt {
                    what: "committed index",
                    detail: format!("height {} names a missing block", height.value()),
                })?;
            committed.push((*block).clone());
        }
        Ok(Recovered {
            safety,
            blocks,
            committed,
            quarantined,
        })
    }
}

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
            .recover()
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
        let recovered = store.recover().expect("recover");
        assert_eq!(recovered.committed.len(), 2);
        recovered
            .check_committed_chain(genesis.hash())
            .expect("linked");
    }

    #[test]
    fn startup_prune_deletes_dead_forks_left_by_older_stores() {
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
        assert_eq!(store.prune_dead_forks().expect("prune"), 1);
        let expected: std::collections::BTreeSet<BlockHash> =
            [b1.hash(), b2.hash()].into_iter().collect();
        assert_eq!(stored_hashes(&store), expected);
    }
}
