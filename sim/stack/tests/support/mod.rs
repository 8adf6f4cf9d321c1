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

/// Polls `cond` every 100 ms until it holds; after `patience`, panics with `what` and the tail
/// of the process log at `log`.
pub(crate) fn wait_logged(
    what: &str,
    log: &Path,
    patience: std::time::Duration,
    mut cond: impl FnMut() -> bool,
) {
    let start = std::time::Instant::now();
    while start.elapsed() < patience {
        if cond() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(50).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    panic!("timed out waiting for {what}; log:\n{}", tail.join("\n"));
}

/// `GET /v1/participants/{id}` on node `i`, signed with the cluster's billing key (`null` if it
/// does not answer).
pub(crate) fn participant(cluster: &Cluster, i: usize, id: &str) -> serde_json::Value {
    cluster.nodes[i]
        .client()
        .raw("GET", &format!("/v1/participants/{id}"), None)
        .ok()
        .and_then(|answer| serde_json::from_slice(&answer.body).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// `id`'s committed balance field `key` (`bought_wh`, `sold_wh`) on node `i` (0 if unknown).
pub(crate) fn balance(cluster: &Cluster, i: usize, id: &str, key: &str) -> u64 {
    participant(cluster, i, id)["balance"][key]
        .as_u64()
        .unwrap_or(0)
}

/// Meters publishing native readings every second through `mosquitto_pub -l`, one process per
/// meter: `(meter, Wh exported per second, Wh imported per second)`.
pub(crate) struct Meters {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    _pubs: Vec<Proc>,
}

impl Meters {
    pub(crate) fn start(port: u16, meters: &[(&'static str, u64, u64)]) -> Meters {
        let mut pubs = Vec::new();
        let mut inputs: Vec<(&'static str, u64, u64, std::process::ChildStdin)> = Vec::new();
        for &(meter, export, import) in meters {
            let mut child = std::process::Command::new("mosquitto_pub")
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-l"])
                .args(["-t", &format!("voltmesh/meters/{meter}")])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start mosquitto_pub");
            inputs.push((meter, export, import, child.stdin.take().expect("stdin")));
            pubs.push(Proc::new(child));
        }
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut tick = 0u64;
            while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
                tick += 1;
                let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                for (meter, export, import, input) in &mut inputs {
                    let (exp, imp) = (1_000_000 + *export * tick, 2_000_000 + *import * tick);
                    let line = format!(
                        "{{\"meter\":\"{meter}\",\"ts\":\"{ts}\",\"import_wh\":{imp},\"export_wh\":{exp},\"power_w\":0}}\n"
                    );
                    let _ = std::io::Write::write_all(input, line.as_bytes());
                    let _ = std::io::Write::flush(input);
                }
                std::thread::sleep(std::time::Duration::from_millis(1_000));
            }
        });
        Meters {
            stop,
            thread: Some(thread),
            _pubs: pubs,
        }
    }
}

impl Drop for Meters {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Everything `mosquitto_sub` receives on some topics (MQTT wildcards allowed), one
/// `(topic, JSON payload)` each; stopped when dropped.
pub(crate) struct Subscription {
    _sub: Proc,
    lines: std::sync::Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>,
}

impl Subscription {
    pub(crate) fn start(port: u16, topics: &[&str]) -> Subscription {
        use std::io::BufRead;
        let mut command = std::process::Command::new("mosquitto_sub");
        command.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-v"]);
        for topic in topics {
            command.args(["-t", topic]);
        }
        let mut child = command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start mosquitto_sub");
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some((topic, payload)) = line.split_once(' ') {
                    let value = serde_json::from_str(payload).unwrap_or(serde_json::Value::Null);
                    sink.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((topic.to_owned(), value));
                }
            }
        });
        Subscription {
            _sub: Proc::new(child),
            lines,
        }
    }

    /// Every message on `topic`, oldest first.
    pub(crate) fn messages(&self, topic: &str) -> Vec<serde_json::Value> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines
            .iter()
            .filter(|(t, _)| t == topic)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The latest message on `topic`, if any.
    pub(crate) fn latest(&self, topic: &str) -> Option<serde_json::Value> {
        self.messages(topic).pop()
    }
}
