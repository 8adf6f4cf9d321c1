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

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use serde_json::Value;
use support::{open_interval, Cluster};
use voltmesh::testing::cluster::{bridge_key, NEIGHBORHOOD};
use voltmesh_engine::{Price, Tariffs};
use voltmesh_meter_bridge::testing::{
    BridgeToml, BrokerOptions, BrokerSection, HouseholdEntry, Mosquitto,
};
use voltmesh_wire::governance::Action;
use voltmesh_wire::PublicKey;

/// Longest wait for anything here (several 20 s intervals on a busy machine).
const PATIENCE: Duration = Duration::from_secs(180);

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

fn wait(what: &str, log: &Path, cond: impl FnMut() -> bool) {
    support::wait_logged(what, log, PATIENCE, cond);
}

fn participant(cluster: &Cluster, i: usize, id: &str) -> Value {
    support::participant(cluster, i, id)
}

fn balance(cluster: &Cluster, i: usize, id: &str, key: &str) -> u64 {
    support::balance(cluster, i, id, key)
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
    let _meters = support::Meters::start(port, &[("m-h1", 12, 0), ("m-h2", 0, 4), ("m-h9", 0, 5)]);
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
