//! Test support for the system tests and benches that start real processes: [`cluster`] (node
//! processes of one neighborhood), [`Proc`] (a child process stopped on drop) and
//! [`start_bridge`] (a `voltmesh bridge` process on a [`BridgeToml`]). The Mosquitto broker
//! and MQTT clients are `voltmesh_meter_bridge::testing`'s; VictoriaMetrics is
//! `voltmesh_metrics::testing`'s.
//!
//! # Panics
//! The helpers here panic on failure: they are for tests.
#![allow(clippy::missing_panics_doc)]

pub mod cluster;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use voltmesh_engine::Side;
use voltmesh_meter_bridge::testing::BridgeToml;
use voltmesh_wire::SignedOrder;

use cluster::{bridge_key, open_interval, order, Cluster};

/// A child process, killed (SIGKILL) and reaped when dropped, also when a test panics.
#[derive(Debug)]
pub struct Proc(Option<Child>);

impl Proc {
    /// Guards `child`.
    pub fn new(child: Child) -> Proc {
        Proc(Some(child))
    }

    /// The process id (0 once it has been stopped).
    pub fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        self.0
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Sends SIGINT (Ctrl-C) and waits up to 30 s for the exit status; `None` if it had to be
    /// killed (or was stopped before).
    pub fn interrupt(&mut self) -> Option<ExitStatus> {
        let mut child = self.0.take()?;
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `path`, emptied (created if missing).
pub fn fresh_dir(path: PathBuf) -> PathBuf {
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).expect("create the test directory");
    path
}

/// Writes the test bridge's key ([`cluster::bridge_key`], as `bridge.key`) and `config` (as
/// `bridge.toml`) into `dir` and starts `bin bridge --config` on it with `RUST_LOG=info`, its log
/// in `bridge.log`; `env` sets (`Some`) or removes (`None`) further variables. Returns the
/// process and the log's path.
pub fn start_bridge(
    bin: &Path,
    dir: &Path,
    config: &BridgeToml,
    env: &[(&str, Option<&str>)],
) -> (Proc, PathBuf) {
    let key = hex::encode(bridge_key().to_bytes());
    std::fs::write(dir.join("bridge.key"), format!("{key}\n")).expect("write bridge.key");
    let path = dir.join("bridge.toml");
    std::fs::write(&path, config.to_string()).expect("write bridge.toml");
    let log_path = dir.join("bridge.log");
    let log = std::fs::File::create(&log_path).expect("create bridge.log");
    let mut command = Command::new(bin);
    command
        .args(["bridge", "--config"])
        .arg(&path)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log);
    for (name, value) in env {
        match value {
            Some(v) => command.env(name, v),
            None => command.env_remove(name),
        };
    }
    let child = command.spawn().expect("start voltmesh bridge");
    (Proc::new(child), log_path)
}

/// The shared cluster scenario: once every node has committed 3 blocks (30 s at most), four
/// orders for the first interval still open 3 s from now, each sent to another node: sellers
/// `s1` (h1, 600 Wh at 0.10) and `s2` (h4, 100 Wh at 0.15), buyers `b1` (h2, 400 Wh at 0.30)
/// and `b2` (h3, 400 Wh at 0.20); it clears 700 Wh at 0.20. Every order must be accepted (202).
/// Returns the interval's start and the orders with the node each went to.
pub fn submit_four_orders(cluster: &Cluster) -> (i64, [(usize, SignedOrder); 4]) {
    cluster.expect_height(3, Duration::from_secs(30));
    let start = open_interval(3);
    let orders = [
        (0, order(1, "s1", start, Side::Sell, 600, "0.10", 1)),
        (1, order(2, "b1", start, Side::Buy, 400, "0.30", 1)),
        (2, order(3, "b2", start, Side::Buy, 400, "0.20", 1)),
        (3, order(4, "s2", start, Side::Sell, 100, "0.15", 1)),
    ];
    for (node, o) in &orders {
        cluster.submit_accepted(*node, o);
    }
    (start, orders)
}
