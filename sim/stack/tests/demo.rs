//! `voltmesh demo` end to end: the real binary runs validators, the embedded broker, simulated
//! meters and the bridge on 127.0.0.1; we check what it reports, what its validators write to a
//! real time-series database (Debian's `victoria-metrics`, on loopback), and that Ctrl-C (SIGINT)
//! stops it cleanly.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use voltmesh_metrics::testing::{free_port, VictoriaMetrics};

/// Each test runs a whole neighborhood; under `cargo test` the two run one after the other (on 2
/// cores, two at once starve each other's consensus timers). nextest runs them in the
/// `node-cluster` group for the same reason.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn voltmesh() -> Command {
    Command::new(env!("CARGO_BIN_EXE_voltmesh"))
}

/// Kills the child if the test fails before it exits.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_exit(child: &mut Child, timeout: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            start.elapsed() < timeout,
            "voltmesh demo did not exit within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Stdout lines as they come.
fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Starts `command` (a `voltmesh demo`) with errors only on stderr, and reads its stdout lines.
fn spawn_demo(command: &mut Command) -> (Guard, mpsc::Receiver<String>) {
    let child = command
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut guard = Guard(child);
    let rx = lines(&mut guard.0);
    (guard, rx)
}

fn price(v: &Value) -> f64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("price {v}"))
}

#[test]
fn demo_finalizes_orders_and_trades_within_the_tariffs() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let vm = rt.block_on(VictoriaMetrics::start(free_port()));
    let dir = tempfile::tempdir().unwrap();
    let summary_file = dir.path().join("summary.json");
    let (mut guard, rx) = spawn_demo(
        voltmesh()
            .args(["demo", "--intervals", "3", "--seed", "7", "--summary-json"])
            .arg(&summary_file)
            .args(["--influx-url", &vm.base_url()])
            .env_remove("VOLTMESH_INFLUX_TOKEN"),
    );
    let status = wait_exit(&mut guard.0, Duration::from_secs(240));
    let output: Vec<String> = rx.try_iter().collect();
    let text = output.join("\n");
    assert!(status.success(), "exit {status}\n{text}");
    assert!(text.contains("== summary"), "{text}");

    let outcome: Value = serde_json::from_slice(&std::fs::read(&summary_file).unwrap()).unwrap();
    assert_eq!(outcome["interrupted"], false);
    let records = outcome["records"].as_array().unwrap();
    assert_eq!(records.len(), 3, "{text}");
    let summary = &outcome["summary"];
    let (feed_in, retail) = (price(&summary["feed_in"]), price(&summary["retail"]));
    assert!(
        summary["orders"].as_u64().unwrap() > 0,
        "orders finalized\n{text}"
    );
    assert!(summary["trades"].as_u64().unwrap() > 0, "trades\n{text}");
    assert!(summary["traded_wh"].as_u64().unwrap() > 0);
    let mut priced = 0;
    for r in records {
        if r["price"].is_null() {
            assert_eq!(r["volume_wh"], 0);
            continue;
        }
        priced += 1;
        let p = price(&r["price"]);
        assert!(
            (feed_in..=retail).contains(&p),
            "price {p} outside [{feed_in}, {retail}]"
        );
        assert!(r["volume_wh"].as_u64().unwrap() > 0);
        assert!(
            r["orders"].as_u64().unwrap() >= 2,
            "a trade needs two orders"
        );
    }
    assert!(priced > 0, "{text}");
    let share = summary["local_share"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&share));

    // Every validator wrote its health, and the ledger's trades arrived (written before the
    // nodes' clean shutdown returned).
    let heights = rt.block_on(vm.export("consensus_height"));
    let nodes: std::collections::BTreeSet<&str> =
        heights.iter().filter_map(|s| s.tag("node")).collect();
    assert_eq!(
        nodes,
        ["demo-node0", "demo-node1", "demo-node2", "demo-node3"].into(),
        "{text}"
    );
    let trades = rt.block_on(vm.export("trade_quantity_wh"));
    assert!(!trades.is_empty(), "trades in the database");
    assert!(trades.iter().all(|s| s.tag("neighborhood") == Some("demo")));
}

#[test]
fn sigint_stops_the_demo_cleanly() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (mut guard, rx) = spawn_demo(voltmesh().args(["demo", "--intervals", "100"]));
    let mut dir = None;
    let mut api = None;
    let mut seen = Vec::new();
    // Wait for the first interval row: every part (nodes, broker, meters, bridge) is running.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no interval shown:\n{}", seen.join("\n")));
        if let Some(d) = line.trim().strip_prefix("directory ") {
            dir = Some(PathBuf::from(d));
        }
        if let Some(a) = line.trim().strip_prefix("node API http://") {
            api = Some(a.to_owned());
        }
        let is_row = line.contains("2016-06-21") && !line.contains("meters play");
        seen.push(line);
        if is_row {
            break;
        }
    }
    let dir = dir.expect("the demo prints its directory");
    let api = api.expect("the demo prints node 0's API");
    assert!(dir.is_dir());
    assert!(std::net::TcpStream::connect(&api).is_ok());

    let pid = guard.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let status = wait_exit(&mut guard.0, Duration::from_secs(60));
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(
        status.success(),
        "exit {status} after SIGINT\n{}",
        rest.join("\n")
    );
    assert!(
        rest.iter().any(|l| l.contains("stopped by Ctrl-C")),
        "{rest:?}"
    );
    assert!(rest.iter().any(|l| l.contains("== summary")), "{rest:?}");
    assert!(!dir.exists(), "the temporary directory is removed");
    assert!(
        std::net::TcpStream::connect(&api).is_err(),
        "node 0's API is closed"
    );
}
