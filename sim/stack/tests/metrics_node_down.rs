//! With the metrics database down, four `voltmesh node` processes keep committing, and a node that
//! stops cleanly reports in its log how many points it recorded, wrote and dropped.
//!
//! The nodes find the (dead) database through `VOLTMESH_INFLUX_URL`, inherited from this test
//! process (one test per file: the variable is process-wide).

#[allow(dead_code, unused_imports)]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::{open_interval, order};
use voltmesh_engine::Side;
use voltmesh_metrics::testing::free_port;

/// The log without ANSI colour sequences.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte (a letter).
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The number after `key=` in `line`.
fn field(line: &str, key: &str) -> u64 {
    let pattern = format!("{key}=");
    let start = line
        .find(&pattern)
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        + pattern.len();
    line[start..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{key} in {line}"))
}

#[test]
fn the_market_carries_on_and_a_stopping_node_reports_its_drops() {
    std::env::set_var(
        "VOLTMESH_INFLUX_URL",
        format!("http://127.0.0.1:{}", free_port()),
    );
    let mut cluster = support::start("metrics-node-down", 4, &[]);
    cluster.expect_height(3, Duration::from_secs(30));
    let start = open_interval(3);
    cluster.submit_accepted(0, &order(1, "s1", start, Side::Sell, 600, "0.10", 1));
    let h = cluster.height(1);
    cluster
        .wait_for("more commits", Duration::from_secs(30), |c| {
            (0..4).all(|i| c.height(i) >= h + 3)
        })
        .unwrap_or_else(|e| panic!("{e}"));

    // Stop node 0 cleanly (SIGINT, as Ctrl-C): its writer gives up on the dead database.
    let pid = cluster.nodes[0].pid().expect("node 0 runs");
    let kill = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let log = cluster.nodes[0].dir.join("node.log");
    let deadline = Instant::now() + Duration::from_secs(60);
    let line = loop {
        let text = plain(&std::fs::read_to_string(&log).unwrap_or_default());
        if let Some(line) = text
            .lines()
            .find(|l| l.contains("metrics writer stopped") && l.contains("recorded="))
        {
            break line.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "node 0 did not report its metrics:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let (recorded, written, dropped) = (
        field(&line, "recorded"),
        field(&line, "written"),
        field(&line, "dropped"),
    );
    assert!(recorded > 0, "{line}");
    assert_eq!((written, dropped), (0, recorded), "{line}");

    // The other three keep committing.
    let h = cluster.height(1);
    cluster
        .wait_for("commits without node 0", Duration::from_secs(60), |c| {
            (1..4).all(|i| c.height(i) >= h + 3)
        })
        .unwrap_or_else(|e| panic!("{e}"));
    cluster.kill(0);
}
