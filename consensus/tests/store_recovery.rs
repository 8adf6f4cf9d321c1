//! A corrupt, truncated or incomplete store is a clear startup error naming the file, never a
//! panic (audit L5), and a store that lost its safety record starts only when the operator says
//! so (audit M5). Each test runs a one-validator node until it has committed a few blocks, stops
//! it, damages its store, and starts it again.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{write_node, RunningNode};
use redb::{Database, TableDefinition};
use voltmesh_consensus::node::{NodeConfig, NodeError};

const BLOCKS: TableDefinition<'_, &[u8; 32], &[u8]> = TableDefinition::new("blocks");
const COMMITTED: TableDefinition<'_, u64, &[u8; 32]> = TableDefinition::new("committed");
const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
const UNCOMMITTED: TableDefinition<'_, (u64, &[u8; 32]), ()> = TableDefinition::new("uncommitted");

fn store_file(dir: &Path) -> PathBuf {
    dir.join("data").join("voltmesh.redb")
}

/// A node that has committed at least 4 blocks and stopped cleanly; returns its config file.
async fn node_with_history(dir: &Path, extra: &str) -> PathBuf {
    let config = write_node(dir, extra);
    let node = RunningNode::start(&config);
    node.wait_height(4, Duration::from_secs(30)).await;
    node.stop().await.expect("clean stop");
    config
}

/// Starts the node of `config` and returns how startup went: `Ok` if it ran (and was stopped
/// after committing another block), or the error it stopped with.
async fn restart(config: &Path) -> Result<(), NodeError> {
    let loaded = NodeConfig::load(config).expect("node.toml");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(voltmesh_consensus::node::run(loaded, async {
        let _ = stopped.await;
    }));
    // Give startup time to fail; a node that starts answers its API.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    if task.is_finished() {
        return task.await.expect("node task");
    }
    let _ = stop.send(());
    task.await.expect("node task")
}

fn write(path: &Path, f: impl FnOnce(&redb::WriteTransaction)) {
    let db = Database::create(path).expect("open the store");
    let tx = db.begin_write().expect("write");
    f(&tx);
    tx.commit().expect("commit");
}

/// `config`'s node refuses to start with a [`NodeError::StoreFile`] that names the store file.
async fn refuses_naming_the_store(config: &Path, why: &str) {
    let err = restart(config).await.expect_err(why);
    assert!(matches!(err, NodeError::StoreFile { .. }), "{err:?}");
    assert!(err.to_string().contains("voltmesh.redb"), "{err}");
}

#[tokio::test]
async fn garbage_store_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_node(dir.path(), "");
    std::fs::create_dir_all(dir.path().join("data")).expect("data dir");
    std::fs::write(store_file(dir.path()), vec![0x5a; 64 * 1024]).expect("garbage");
    refuses_naming_the_store(&config, "a garbage store must not start").await;
}

#[tokio::test]
async fn truncated_store_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = node_with_history(dir.path(), "").await;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(store_file(dir.path()))
        .expect("open");
    let len = file.metadata().expect("metadata").len();
    file.set_len(len / 3).expect("truncate");
    drop(file);
    refuses_naming_the_store(&config, "a truncated store must not start").await;
}

#[tokio::test]
async fn committed_blocks_without_a_safety_record_refuse_to_start_unless_told() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = node_with_history(dir.path(), "").await;
    write(&store_file(dir.path()), |tx| {
        tx.open_table(META)
            .expect("meta")
            .remove("safety")
            .expect("remove");
    });
    let err = restart(&config)
        .await
        .expect_err("amnesia must not start silently");
    assert!(
        matches!(err, NodeError::LostSafetyRecord { committed, .. } if committed >= 4),
        "{err:?}"
    );
    assert!(err.to_string().contains("voltmesh.redb"), "{err}");

    // The operator says the store lost its safety record: the node starts, guarded.
    let mut text = std::fs::read_to_string(&config).expect("read");
    text = format!("untrusted_safety_record = true\n{text}");
    std::fs::write(&config, text).expect("write");
    restart(&config)
        .await
        .expect("starts with untrusted_safety_record");
}

#[tokio::test]
async fn undecodable_uncommitted_block_is_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = node_with_history(dir.path(), "").await;
    write(&store_file(dir.path()), |tx| {
        tx.open_table(BLOCKS)
            .expect("blocks")
            .insert(&[7u8; 32], b"not a block".as_slice())
            .expect("insert");
        // Listed as an uncommitted block, so recovery reads (and quarantines) it.
        tx.open_table(UNCOMMITTED)
            .expect("uncommitted")
            .insert((1_000_000u64, &[7u8; 32]), ())
            .expect("insert");
    });
    restart(&config)
        .await
        .expect("a junk uncommitted block must not stop startup");
}

#[tokio::test]
async fn gap_in_the_committed_chain_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = node_with_history(dir.path(), "").await;
    write(&store_file(dir.path()), |tx| {
        tx.open_table(COMMITTED)
            .expect("committed")
            .remove(2)
            .expect("remove");
    });
    let err = restart(&config)
        .await
        .expect_err("a broken chain must not start");
    let text = err.to_string();
    assert!(matches!(err, NodeError::StoreFile { .. }), "{err:?}");
    assert!(text.contains("height 2"), "{text}");
    assert!(text.contains("voltmesh.redb"), "{text}");
}
