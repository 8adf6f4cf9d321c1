//! The meter bridge against real parts: a Mosquitto broker, four `voltmesh node` processes and a
//! `voltmesh bridge` process, all on 127.0.0.1. Two meters publish native readings through
//! `mosquitto_pub` (one household exports, one imports); the bridge turns them into signed orders
//! on a node; the test reads the committed trades from the node API and the fills, clearing
//! summary and settlement from the household topics with `mosquitto_sub`, and the households'
//! metered deliveries committed.

#[allow(dead_code, unused_imports)]
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::{http, Cluster, Proc};
use voltmesh::testing::cluster::{INTERVAL_SECS, NEIGHBORHOOD};
use voltmesh_meter_bridge::testing::{
    BridgeToml, BrokerOptions, BrokerSection, HouseholdEntry, Mosquitto,
};

/// Longest wait for anything in these tests (a few 20 s intervals).
const PATIENCE: Duration = Duration::from_secs(150);

/// Two meters publishing native readings every second: `m-h1` exports 6 Wh per second,
/// `m-h2` imports 4.
fn two_meters(port: u16) -> support::Meters {
    support::Meters::start(port, &[("m-h1", 6, 0), ("m-h2", 0, 4)])
}

/// Starts `voltmesh bridge` in `dir` on the broker at `broker_port`, its orders to the node API
/// at `node_api`, for households `h1` (meter `m-h1`) and `h2` (`m-h2`); the bridge reads the
/// market interval and tariffs from the cluster's `genesis`.
fn start_bridge(dir: &Path, broker_port: u16, node_api: &str, genesis: &Path) -> (Proc, PathBuf) {
    start_bridge_failing_over(dir, broker_port, &[node_api], genesis)
}

/// [`start_bridge`] with a list of node APIs, tried in this order.
fn start_bridge_failing_over(
    dir: &Path,
    broker_port: u16,
    node_apis: &[&str],
    genesis: &Path,
) -> (Proc, PathBuf) {
    let household = |h: &str, meter: &str| HouseholdEntry::new(h, meter, "0.30", "0.10");
    let mut config =
        BridgeToml::new(BrokerSection::new(broker_port, "bridge-node-test").reconnect_ms(50, 500))
            .subscribe("voltmesh/meters/+", "native")
            .node(
                &format!("http://{}", node_apis[0]),
                NEIGHBORHOOD,
                "bridge.key",
            )
            .genesis(&genesis.display().to_string())
            .household(household("h1", "m-h1"))
            .household(household("h2", "m-h2"));
    for api in &node_apis[1..] {
        config = config.failover(&format!("http://{api}"));
    }
    support::start_bridge(dir, &config, &[])
}

fn wait(what: &str, log: &Path, cond: impl FnMut() -> bool) {
    support::wait_logged(what, log, PATIENCE, cond);
}

fn traded(cluster: &Cluster, i: usize, id: &str, key: &str) -> u64 {
    support::balance(cluster, i, id, key)
}

#[test]
fn meters_to_orders_on_the_node_and_results_back_to_households() {
    let dir = support::temp_dir("bridge-node");
    let cluster = support::start("bridge-node-cluster", 4, &[]);
    cluster
        .wait_for("first commits", Duration::from_secs(60), |c| {
            c.height(0) >= 2
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let broker = Mosquitto::start(&BrokerOptions::default());
    let port = broker.port;
    let results =
        support::Subscription::start(port, &["voltmesh/households/#", "voltmesh/market/#"]);
    let (mut bridge, log) = start_bridge(
        &dir,
        port,
        &cluster.nodes[0].api,
        &cluster.root.join("genesis.json"),
    );
    let _meters = two_meters(port);

    // The bridge's orders are committed: the seller's and the buyer's trades show on another
    // node than the one the bridge talks to.
    wait("trades of h1 and h2 committed", &log, || {
        traded(&cluster, 2, "h1", "sold_wh") > 0 && traded(&cluster, 2, "h2", "bought_wh") > 0
    });
    let h1 = support::participant(&cluster, 2, "h1");
    let trade = &h1["trades"][0];
    assert_eq!(trade["side"], "sell", "{h1}");
    assert_eq!(trade["trade"]["buyer"], "h2", "{h1}");
    let interval = trade["interval_start"].as_i64().expect("interval_start");

    // Fills and the clearing summary of that interval reach the household topics.
    let of_interval = |v: &Value| {
        v["interval_start"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .is_some_and(|t| t.timestamp() == interval)
    };
    // The first message of that interval on `topic`.
    let of_interval_on = |topic: &str| {
        results
            .messages(topic)
            .into_iter()
            .find(of_interval)
            .unwrap_or_else(|| panic!("no message of interval {interval} on {topic}"))
    };
    // Whether every topic in `topics` has had a message of that interval.
    let each_has_one = |topics: &[&str]| {
        topics
            .iter()
            .all(|t| results.messages(t).iter().any(of_interval))
    };
    wait("fills and clearing on MQTT", &log, || {
        each_has_one(&[
            "voltmesh/households/h1/fills",
            "voltmesh/households/h2/fills",
            "voltmesh/market/clearing",
        ])
    });
    let clearing = http(
        &cluster.nodes[1].api,
        "GET",
        &format!("/v1/intervals/{interval}"),
        None,
    )
    .expect("node 1 answers")
    .1;
    let volume = clearing["outcome"]["volume_wh"].as_u64().expect("volume");
    assert!(volume > 0, "{clearing}");
    let fills_h1 = of_interval_on("voltmesh/households/h1/fills");
    let fills_h2 = of_interval_on("voltmesh/households/h2/fills");
    assert_eq!(fills_h1["sold_wh"].as_u64(), Some(volume), "{fills_h1}");
    assert_eq!(fills_h2["bought_wh"].as_u64(), Some(volume), "{fills_h2}");
    assert_eq!(
        fills_h1["clearing_price"], clearing["outcome"]["clearing_price"],
        "{fills_h1}"
    );
    let summary = of_interval_on("voltmesh/market/clearing");
    assert_eq!(summary["volume_wh"].as_u64(), Some(volume), "{summary}");

    // After delivery (meters read past the interval's end) each household gets its bill.
    wait("settlements on MQTT", &log, || {
        each_has_one(&[
            "voltmesh/households/h1/settlement",
            "voltmesh/households/h2/settlement",
        ])
    });
    let bill_h1 = of_interval_on("voltmesh/households/h1/settlement");
    assert_eq!(
        bill_h1["bill"]["sold_wh"].as_u64(),
        Some(volume),
        "{bill_h1}"
    );
    // h1 exports 6 Wh a second (a reading about every second): the whole interval is metered.
    let metered = bill_h1["bill"]["metered_net_export_wh"]
        .as_i64()
        .expect("metered");
    assert!(
        (6 * (INTERVAL_SECS - 2)..=6 * (INTERVAL_SECS + 1)).contains(&metered),
        "{bill_h1}"
    );
    assert!(results
        .latest("voltmesh/households/h2/settlement")
        .is_some());

    // The bridge signs each household's metered energy of every ended interval and the
    // validators commit it (read from another node's blocks).
    let deliveries = |c: &Cluster| -> usize {
        (1..=c.height(1))
            .filter_map(|h| c.nodes[1].client().block(h).ok().flatten())
            .map(|b| b.deliveries)
            .sum()
    };
    wait("metered deliveries committed", &log, || {
        deliveries(&cluster) >= 2
    });

    // Ctrl-C stops the bridge cleanly.
    let status = bridge.interrupt().expect("the bridge stops within 30 s");
    assert!(status.success(), "bridge exit status {status}");
}

/// The bridge's node is down for at least one gate closure: the bridge retries, drops that
/// interval's orders at gate closure, keeps running, and its orders go through once the node is
/// back.
#[test]
fn a_node_that_is_down_delays_orders_and_does_not_stop_the_bridge() {
    // The bridge's node is down before the bridge starts; the other three keep committing.
    let (dir, mut cluster, broker) = cluster_with_node_3_down("bridge-node-down");
    let port = broker.port;
    let (mut bridge, log) = start_bridge(
        &dir,
        port,
        &cluster.nodes[3].api,
        &cluster.root.join("genesis.json"),
    );
    let _meters = two_meters(port);
    // It retries until the interval's gate closes, gives that interval's orders up and carries
    // on with the next interval.
    wait("the bridge to retry until gate closure", &log, || {
        std::fs::read_to_string(&log).is_ok_and(|t| {
            t.matches("node unavailable; retrying").count() >= 2
                && t.contains("gate closed before the node took every order")
        })
    });
    assert!(
        bridge.running(),
        "the bridge keeps running while its node is down"
    );
    assert_eq!(traded(&cluster, 0, "h1", "sold_wh"), 0);

    cluster.start_node(3).expect("node 3 restarts");
    trades_commit_then_the_bridge_stops(&cluster, &mut bridge, &log, "the restarted node");
}

/// A 4-node cluster that has committed twice, with node 3 killed, and a broker; `name` names the
/// temp dirs.
fn cluster_with_node_3_down(name: &str) -> (PathBuf, Cluster, Mosquitto) {
    let dir = support::temp_dir(name);
    let mut cluster = support::start(&format!("{name}-cluster"), 4, &[]);
    cluster
        .wait_for("first commits", Duration::from_secs(60), |c| {
            c.height(0) >= 2
        })
        .unwrap_or_else(|e| panic!("{e}"));
    cluster.kill(3);
    (dir, cluster, Mosquitto::start(&BrokerOptions::default()))
}

/// Waits until node 0's ledger has h1 selling and h2 buying (orders that went `through`
/// somewhere), then stops the still running bridge with Ctrl-C.
fn trades_commit_then_the_bridge_stops(
    cluster: &Cluster,
    bridge: &mut Proc,
    log: &Path,
    through: &str,
) {
    wait(&format!("orders through {through}"), log, || {
        traded(cluster, 0, "h1", "sold_wh") > 0 && traded(cluster, 0, "h2", "bought_wh") > 0
    });
    assert!(bridge.running(), "pid {}", bridge.id());
    let status = bridge.interrupt().expect("the bridge stops within 30 s");
    assert!(status.success(), "bridge exit status {status}");
}

/// The bridge lists two nodes and the first is down: it fails over to the second, and the
/// households' orders commit without waiting for the first node to come back.
#[test]
fn a_bridge_with_two_nodes_fails_over_when_the_first_is_down() {
    let (dir, cluster, broker) = cluster_with_node_3_down("bridge-node-failover");
    let port = broker.port;
    let (mut bridge, log) = start_bridge_failing_over(
        &dir,
        port,
        &[&cluster.nodes[3].api, &cluster.nodes[0].api],
        &cluster.root.join("genesis.json"),
    );
    let _meters = two_meters(port);
    trades_commit_then_the_bridge_stops(&cluster, &mut bridge, &log, "the second node");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("failing over"),
        "the bridge says it moved to the next node"
    );
}
