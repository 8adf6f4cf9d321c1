//! The system tests' processes: `voltmesh::testing` with this build's binary and temp area.

use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) use voltmesh::testing::cluster::{http, open_interval, order, Cluster, NodeFault};
pub(crate) use voltmesh::testing::{submit_four_orders, Proc};
use voltmesh_meter_bridge::testing::BridgeToml;

pub(crate) fn voltmesh() -> Command {
    Command::new(env!("CARGO_BIN_EXE_voltmesh"))
}

/// Starts a cluster in the target's temp area; node `i` of each `(i, fault)` in `faults`
/// is Byzantine.
pub(crate) fn start(name: &str, n: usize, faults: &[(usize, NodeFault)]) -> Cluster {
    Cluster::start(
        Path::new(env!("CARGO_BIN_EXE_voltmesh")),
        &tmp_path(name),
        n,
        faults,
    )
    .expect("the cluster starts")
}

/// Starts a cluster as `options` say in the target's temp area.
pub(crate) fn start_with(
    name: &str,
    options: &voltmesh::testing::cluster::ClusterOptions,
) -> Cluster {
    Cluster::start_with(
        Path::new(env!("CARGO_BIN_EXE_voltmesh")),
        &tmp_path(name),
        options,
    )
    .expect("the cluster starts")
}

/// `<target tmp>/<name>-<pid>`, fresh and empty.
pub(crate) fn temp_dir(name: &str) -> PathBuf {
    voltmesh::testing::fresh_dir(tmp_path(name))
}

fn tmp_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()))
}

/// Starts this build's `voltmesh bridge` in `dir` (see `voltmesh::testing::start_bridge`).
pub(crate) fn start_bridge(
    dir: &Path,
    config: &BridgeToml,
    env: &[(&str, Option<&str>)],
) -> (Proc, PathBuf) {
    voltmesh::testing::start_bridge(Path::new(env!("CARGO_BIN_EXE_voltmesh")), dir, config, env)
}

pub(crate) fn path_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}
