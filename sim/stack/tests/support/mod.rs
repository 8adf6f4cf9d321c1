//! The node tests' cluster: `voltmesh::cluster` with this build's binary and temp area, and
//! panics instead of errors.

use std::path::PathBuf;
use std::process::Command;

pub(crate) use voltmesh::cluster::{http, open_interval, order, Cluster};

pub(crate) fn voltmesh() -> Command {
    Command::new(env!("CARGO_BIN_EXE_voltmesh"))
}

/// Starts a cluster in the target's temp area.
pub(crate) fn start(name: &str, n: usize, faulty: &[usize]) -> Cluster {
    let root =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    Cluster::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_voltmesh")),
        &root,
        n,
        faulty,
    )
    .expect("the cluster starts")
}

pub(crate) fn path_str(p: &std::path::Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}
