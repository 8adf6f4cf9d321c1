//! Issue 13, "the bridge follows", with real processes on 127.0.0.1: four `voltmesh node`s, a
//! Mosquitto broker, three meters publishing through `mosquitto_pub` and a `voltmesh bridge`.
//!
//! The bridge starts with households `h1` (exports) and `h2` (imports). A third household, `h9`,
//! which the ledger does not know yet, is added to `bridge.toml` and the bridge gets SIGHUP: it
//! reloads its list without a restart and skips `h9` (one warning) instead of sending orders the
//! node would refuse. Governance then admits `h9` (with the bridge's key) and changes the tariffs
//! from an open interval on to bounds that exclude the households' configured limits. The bridge
//! learns both from the node: `h9`'s orders are committed once it is a member, and the orders of
//! the intervals under the new tariffs are committed too (their limits clamped into the new
//! bounds; the node refuses any outside them as `price_outside_tariffs`).

#[allow(dead_code, unused_imports)]
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use serde_json::Value;
use support::{http, open_interval, Cluster, Proc};
use voltmesh::testing::cluster::{bridge_key, NEIGHBORHOOD};
use voltmesh_engine::{Price, Tariffs};
use voltmesh_meter_bridge::testing::{
    BridgeToml, BrokerOptions, BrokerSection, HouseholdEntry, Mosquitto,
};
use voltmesh_wire::governance::Action;
use voltmesh_wire::PublicKey;

/// Longest wait for anything here (several 20 s intervals on a busy machine).
const PATIENCE: Duration = Duration::from_secs(180);

/// Meters publishing native readings every second through `mosquitto_pub -l`, one process per
/// meter: `(meter, Wh exported per second, Wh imported per second)`.
struct Meters {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    _pubs: Vec<Proc>,
}

impl Meters {
    fn start(port: u16, meters: &[(&'static str, u64, u64)]) -> Meters {
        let mut pubs = Vec::new();
        let mut inputs: Vec<(&'static str, u64, u64, ChildStdin)> = Vec::new();
        for &(meter, export, import) in meters {
            let mut child = Command::new("mosquitto_pub")
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-l"])
                .args(["-t", &format!("voltmesh/meters/{meter}")])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start mosquitto_pub");
            inputs.push((meter, export, import, child.stdin.take().expect("stdin")));
            pubs.push(Proc::new(child));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut tick = 0u64;
            while !stopping.load(Ordering::Relaxed) {
                tick += 1;
                let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                for (meter, export, import, input) in &mut inputs {
                    let (exp, imp) = (1_000_000 + *export * tick, 2_000_000 + *import * tick);
                    let line = format!(
                        "{{\"meter\":\"{meter}\",\"ts\":\"{ts}\",\"import_wh\":{imp},\"export_wh\":{exp},\"power_w\":0}}\n"
                    );
                    let _ = input.write_all(line.as_bytes());
                    let _ = input.flush();
                }
                std::thread::sleep(Duration::from_millis(1_000));
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
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The bridge's config: broker, node 0 (then node 1), genesis, and `households`
/// (`(participant, meter)`, each buying at most at 0.30 and selling at least at 0.10).
fn bridge_toml(port: u16, cluster: &Cluster, households: &[(&str, &str)]) -> BridgeToml {
    let mut config =
        BridgeToml::new(BrokerSection::new(port, "bridge-governance-test").reconnect_ms(50, 500))
            .subscribe("voltmesh/meters/+", "native")
            .node(
                &format!("http://{}", cluster.nodes[0].api),
                NEIGHBORHOOD,
                "bridge.key",
            )
            .failover(&format!("http://{}", cluster.nodes[1].api))
            .genesis(&cluster.root.join("genesis.json").display().to_string());
    for (participant, meter) in households {
        config = config.household(HouseholdEntry::new(participant, meter, "0.30", "0.10"));
    }
    config
}

/// Replaces `dir/bridge.toml` by `config` in one step (write aside, rename over).
fn rewrite(dir: &Path, config: &BridgeToml) {
    let aside = dir.join("bridge.toml.new");
    std::fs::write(&aside, config.to_string()).expect("write the new bridge.toml");
    std::fs::rename(&aside, dir.join("bridge.toml")).expect("rename over bridge.toml");
}

fn log_text(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

/// Log lines holding every one of `parts`.
fn lines_with(log: &Path, parts: &[&str]) -> usize {
    log_text(log)
        .lines()
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .count()
}

fn wait(what: &str, log: &Path, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < PATIENCE {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let text = log_text(log);
    let tail: Vec<&str> = text.lines().rev().take(50).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    panic!(
        "timed out waiting for {what}; bridge log:\n{}",
        tail.join("\n")
    );
}

/// `GET /v1/participants/{id}` on node `i`.
fn participant(cluster: &Cluster, i: usize, id: &str) -> Value {
    http(
        &cluster.nodes[i].api,
        "GET",
        &format!("/v1/participants/{id}"),
        None,
    )
    .map(|(_, v)| v)
    .unwrap_or(Value::Null)
}

fn balance(cluster: &Cluster, i: usize, id: &str, key: &str) -> u64 {
    participant(cluster, i, id)["balance"][key]
        .as_u64()
        .unwrap_or(0)
}

/// `id`'s trades on node `i` in intervals starting at `from` or later.
fn trades_from(cluster: &Cluster, i: usize, id: &str, from: i64) -> Vec<Value> {
    participant(cluster, i, id)["trades"]
        .as_array()
        .map(|trades| {
            trades
                .iter()
                .filter(|t| t["interval_start"].as_i64().is_some_and(|s| s >= from))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

fn public(key: &SigningKey) -> PublicKey {
    PublicKey(key.verifying_key().to_bytes())
}

fn enact(cluster: &Cluster, to: usize, id: &str, action: Action) {
    cluster
        .enact(to, id, action, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn the_bridge_follows_members_and_tariffs_from_the_node_and_reloads_households_on_sighup() {
    let dir: PathBuf = support::temp_dir("bridge-governance");
    let cluster = support::start("bridge-governance-cluster", 4, &[]);
    cluster
        .wait_for("first commits", Duration::from_secs(60), |c| {
            c.height(0) >= 2
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let broker = Mosquitto::start(&BrokerOptions::default());
    let port = broker.port;
    // h1 exports 12 Wh a second, h2 imports 4 and h9 5: h1's surplus covers both buyers.
    let _meters = Meters::start(port, &[("m-h1", 12, 0), ("m-h2", 0, 4), ("m-h9", 0, 5)]);
    let two = bridge_toml(port, &cluster, &[("h1", "m-h1"), ("h2", "m-h2")]);
    let (mut bridge, log) = support::start_bridge(&dir, &two, &[]);
    wait("h1 and h2 trading through the bridge", &log, || {
        balance(&cluster, 2, "h1", "sold_wh") > 0 && balance(&cluster, 2, "h2", "bought_wh") > 0
    });

    // h9 joins the bridge's list before the ledger knows it: reloaded on SIGHUP, skipped.
    rewrite(
        &dir,
        &bridge_toml(
            port,
            &cluster,
            &[("h1", "m-h1"), ("h2", "m-h2"), ("h9", "m-h9")],
        ),
    );
    let hup = Command::new("kill")
        .args(["-HUP", &bridge.id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(hup.success());
    wait("the reload", &log, || {
        lines_with(&log, &["households reloaded", "h9"]) == 1
    });
    wait("h9 skipped as unknown to the ledger", &log, || {
        lines_with(&log, &["household skipped", "h9", "unknown_participant"]) == 1
    });
    assert!(bridge.running(), "reloaded without a restart");
    let members = cluster.nodes[0].client().community().unwrap().participants;
    assert!(!members.contains_key(&"h9".into()), "not a member yet");

    // Governance admits h9 with the bridge's key, and narrows the tariffs from an open interval
    // on to [0.12, 0.28]: the households' limits (0.10 and 0.30) lie outside them.
    enact(
        &cluster,
        1,
        "add-h9",
        Action::AddParticipant {
            participant: "h9".into(),
            keys: vec![public(&bridge_key())],
        },
    );
    let from = open_interval(30);
    let mut rules = cluster.nodes[0].client().community().unwrap().rules[0].rules;
    rules.rules.tariffs = Tariffs::new("0.12".parse().unwrap(), "0.28".parse().unwrap()).unwrap();
    enact(
        &cluster,
        2,
        "narrow-tariffs",
        Action::ChangeRules {
            from_interval: from,
            rules,
        },
    );

    // h9's orders are committed now that it is a member; h1's and h2's keep being committed
    // under the new tariffs.
    wait("h9 buying", &log, || {
        balance(&cluster, 3, "h9", "bought_wh") > 0
    });
    wait("h1 and h2 trading under the new tariffs", &log, || {
        !trades_from(&cluster, 3, "h1", from).is_empty()
            && !trades_from(&cluster, 3, "h2", from).is_empty()
    });
    let (lo, hi): (Price, Price) = ("0.12".parse().unwrap(), "0.28".parse().unwrap());
    for trade in trades_from(&cluster, 3, "h1", from) {
        let price: Price = trade["trade"]["price"]
            .as_str()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("a price: {trade}"));
        assert!(lo <= price && price <= hi, "{trade}");
    }
    // The node refused none of the bridge's orders for membership, keys or tariffs.
    for kind in [
        "price_outside_tariffs",
        "unknown_participant",
        "participant_removed",
        "key_not_allowed",
    ] {
        for what in ["order not submitted", "order dropped by the node"] {
            assert_eq!(lines_with(&log, &[what, kind]), 0, "{}", log_text(&log));
        }
    }
    assert_eq!(
        lines_with(&log, &["household skipped", "h9"]),
        1,
        "one warning for h9's change of standing, not one per interval"
    );
    assert_eq!(lines_with(&log, &["household may trade", "h9"]), 1);
    assert_eq!(
        lines_with(&log, &["new market rules from this interval on"]),
        1
    );

    let status = bridge.interrupt().expect("the bridge stops within 30 s");
    assert!(status.success(), "bridge exit status {status}");
}
