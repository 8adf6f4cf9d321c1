//! Money on the ledger with real parts (issue 14): a Mosquitto broker, four `voltmesh node`
//! processes and a `voltmesh bridge` process on 127.0.0.1. Two meters publish (h1 exports, h2
//! imports); the bridge trades and delivers for them; h3 buys directly from a node and never
//! delivers. Once the interval's delivery window closes, the validators commit its bills: every
//! node serves the same ones, they equal a naive recomputation, h3 is settled by the rule for a
//! household without a delivery, a statement sums the bills, reads are refused without the
//! participant's key, the export reconciles to zero and to the statement, and `voltmesh verify`
//! re-executes every bill. The bridge publishes each household's committed bill over MQTT.
//! Official metering data imported with `voltmesh correct` re-settles exactly the interval and
//! households it names, as correction entries beside the bills.

#[allow(dead_code, unused_imports)]
mod support;

use std::path::Path;
use std::time::Duration;

use voltmesh::testing::cluster::{
    billing_key, household_key, open_interval, order, ClusterOptions, INTERVAL_SECS, NEIGHBORHOOD,
};
use voltmesh_engine::{Money, Price, Side};
use voltmesh_meter_bridge::testing::{
    BridgeToml, BrokerOptions, BrokerSection, HouseholdEntry, Mosquitto,
};
use voltmesh_wire::api::SettlementView;
use voltmesh_wire::client::{BlockingNodeClient, ClientError};

/// Longest wait for anything here: an interval, its window (two intervals) and some blocks.
const PATIENCE: Duration = Duration::from_secs(180);

fn client(
    cluster: &support::Cluster,
    i: usize,
    key: ed25519_dalek::SigningKey,
) -> BlockingNodeClient {
    BlockingNodeClient::new(&format!("http://{}", cluster.nodes[i].api))
        .expect("client")
        .with_read_key(NEIGHBORHOOD, key)
}

/// What `who` pays in one interval, computed here from the committed trades, its metered net
/// export and the genesis tariffs (0.08 / 0.32, fee 0.01), with no engine settlement code.
fn naive_total(who: &str, trades: &[voltmesh_engine::Trade], metered_net_export_wh: i64) -> Money {
    let price = |s: &str| s.parse::<Price>().expect("price");
    let (mut total, mut contract) = (Money::ZERO, 0_i64);
    for t in trades {
        let wh = i64::try_from(t.quantity_wh).expect("small");
        if t.buyer.as_str() == who {
            total += Money::of(t.quantity_wh, t.price) + Money::of(t.quantity_wh, price("0.01"));
            contract -= wh;
        }
        if t.seller.as_str() == who {
            total -= Money::of(t.quantity_wh, t.price);
            contract += wh;
        }
    }
    let deviation = metered_net_export_wh - contract;
    if deviation >= 0 {
        total - Money::of(deviation.unsigned_abs(), price("0.08"))
    } else {
        total + Money::of(deviation.unsigned_abs(), price("0.32"))
    }
}

fn start_bridge(
    dir: &Path,
    broker_port: u16,
    node_api: &str,
    genesis: &Path,
) -> (support::Proc, std::path::PathBuf) {
    let household = |h: &str, meter: &str| HouseholdEntry::new(h, meter, "0.30", "0.10");
    let config =
        BridgeToml::new(BrokerSection::new(broker_port, "bills-test").reconnect_ms(50, 500))
            .subscribe("voltmesh/meters/+", "native")
            .node(&format!("http://{node_api}"), NEIGHBORHOOD, "bridge.key")
            .genesis(&genesis.display().to_string())
            .household(household("h1", "m-h1"))
            .household(household("h2", "m-h2"));
    support::start_bridge(dir, &config, &[])
}

#[test]
fn bills_commit_by_consensus_and_every_reader_gets_what_it_may() {
    let dir = support::temp_dir("bills");
    let options = ClusterOptions {
        delivery_window_secs: u32::try_from(2 * INTERVAL_SECS).expect("small"),
        ..ClusterOptions::new(4)
    };
    let mut cluster = support::start_with("bills-cluster", &options);
    cluster
        .wait_for("first commits", Duration::from_secs(60), |c| {
            c.height(0) >= 2
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let broker = Mosquitto::start(&BrokerOptions::default());
    let bills_on_mqtt = support::Subscription::start(broker.port, &["voltmesh/households/+/bill"]);
    let (mut bridge, log) = start_bridge(
        &dir,
        broker.port,
        &cluster.nodes[0].api,
        &cluster.root.join("genesis.json"),
    );
    let _meters = support::Meters::start(broker.port, &[("m-h1", 6, 0), ("m-h2", 0, 4)]);

    // Once the bridge's households trade, h3 outbids h2 for 50 Wh of an interval a little ahead
    // and never delivers.
    support::wait_logged("the bridge's orders committed", &log, PATIENCE, || {
        support::balance(&cluster, 0, "h1", "sold_wh") > 0
    });
    let interval = open_interval(INTERVAL_SECS);
    cluster.submit_accepted(1, &order(3, "h3-buys", interval, Side::Buy, 50, "0.31", 1));
    let clearing = cluster
        .wait_cleared(interval, PATIENCE)
        .unwrap_or_else(|e| panic!("{e}"));
    let volume_wh = clearing.outcome.volume_wh;
    let trades = clearing.outcome.trades;
    assert!(
        trades.iter().any(|t| t.buyer.as_str() == "h3")
            && trades.iter().any(|t| t.seller.as_str() == "h1"),
        "h1 sells to h3 in interval {interval}: {trades:?}"
    );

    // Its bills commit once its window closes, the same on every node.
    let billing: Vec<BlockingNodeClient> =
        (0..4).map(|i| client(&cluster, i, billing_key())).collect();
    support::wait_logged(
        "the interval's bills committed everywhere",
        &log,
        PATIENCE,
        || {
            billing
                .iter()
                .all(|c| c.settlement(interval).ok().flatten().is_some())
        },
    );
    let views: Vec<SettlementView> = billing
        .iter()
        .map(|c| c.settlement(interval).unwrap().unwrap())
        .collect();
    assert!(views.iter().all(|v| *v == views[0]), "{views:?}");
    let view = &views[0];

    // Every bill equals the naive recomputation; h1 and h2 were metered by the bridge's
    // deliveries (6 and 4 Wh a second), h3 is settled at its contract.
    let bill = |who: &str| {
        view.bills
            .iter()
            .find(|b| b.participant.as_str() == who)
            .unwrap_or_else(|| panic!("no bill of {who}: {view:?}"))
    };
    for who in ["h1", "h2", "h3"] {
        let b = bill(who);
        assert_eq!(
            b.total,
            naive_total(who, &trades, b.metered_net_export_wh),
            "{who}: {b:?}"
        );
        // What was not billed before is billed now: the carry in is the carry of the
        // participant's previous bill (none for h3).
        let earlier = billing[0]
            .bills(who, interval - 1_000 * INTERVAL_SECS, interval)
            .expect("earlier bills");
        let carry_in = earlier.bills.last().map_or(Money::ZERO, |c| c.bill.carry);
        assert_eq!(b.billed + b.carry, b.total + carry_in, "{who}: {b:?}");
        assert_eq!(b.billed.nanos() % 10_000_000, 0, "whole cents: {b:?}");
    }
    let h1 = bill("h1");
    assert!(h1.metered, "{h1:?}");
    assert!(
        (6 * (INTERVAL_SECS - 2)..=6 * (INTERVAL_SECS + 1)).contains(&h1.metered_net_export_wh),
        "{h1:?}"
    );
    let h2 = bill("h2");
    assert!(h2.metered, "{h2:?}");
    assert!(
        (-4 * (INTERVAL_SECS + 1)..=-4 * (INTERVAL_SECS - 2)).contains(&h2.metered_net_export_wh),
        "{h2:?}"
    );
    let h3 = bill("h3");
    assert!(!h3.metered, "h3 delivered nothing: {h3:?}");
    assert_eq!(h3.metered_net_export_wh, -50);
    assert_eq!((h3.from_utility_wh, h3.to_utility_wh), (0, 0));
    let sum: Money = view.bills.iter().map(|b| b.total).sum();
    assert_eq!(
        sum,
        view.settled.utility.revenue + view.settled.network.revenue
    );

    // h1's own key reads its statement, which holds this interval's bill and the block height;
    // an unsigned read and h2's key are refused.
    let to = interval + INTERVAL_SECS;
    let own = client(&cluster, 2, household_key(1));
    let statement = own
        .statement("h1", interval, to)
        .expect("h1 reads its statement");
    assert_eq!(statement.intervals, 1);
    assert_eq!(statement.total, h1.total);
    assert_eq!(statement.heights, vec![view.settled.height]);
    let unsigned =
        BlockingNodeClient::new(&format!("http://{}", cluster.nodes[2].api)).expect("client");
    let refused = |result: Result<voltmesh_wire::bill::Statement, ClientError>| match result {
        Err(ClientError::Rejected { kind, .. }) => kind,
        other => panic!("not refused: {other:?}"),
    };
    assert_eq!(
        refused(unsigned.statement("h1", interval, to)),
        "unsigned_read"
    );
    assert_eq!(
        refused(client(&cluster, 2, household_key(2)).statement("h1", interval, to)),
        "forbidden"
    );

    // The ledger's replication surface: an unsigned read of the interval gets its price and
    // volume, h1's key its own trades, a billing key every trade; the snapshot goes to billing
    // and validator keys only.
    let public = unsigned.interval(interval).expect("read").expect("cleared");
    assert_eq!(public.outcome.volume_wh, volume_wh);
    assert!(public.outcome.trades.is_empty() && public.outcome.unfilled.is_empty());
    let mine = own.interval(interval).expect("read").expect("cleared");
    assert!(!mine.outcome.trades.is_empty());
    assert_eq!(
        mine.outcome.trades,
        trades
            .iter()
            .filter(|t| t.buyer.as_str() == "h1" || t.seller.as_str() == "h1")
            .cloned()
            .collect::<Vec<_>>()
    );
    let all = billing[2]
        .interval(interval)
        .expect("read")
        .expect("cleared");
    assert_eq!(all.outcome.trades, trades);
    let refused_snapshot =
        |result: Result<Option<voltmesh_wire::api::SnapshotView>, ClientError>| match result {
            Err(ClientError::Rejected { kind, .. }) => kind,
            other => panic!("not refused: {}", other.is_ok()),
        };
    assert_eq!(refused_snapshot(unsigned.snapshot()), "unsigned_read");
    assert_eq!(refused_snapshot(own.snapshot()), "forbidden");

    // The bridge publishes each household's committed bill, byte for byte what the nodes
    // serve, with the height and block that hold it.
    let served = own.bills("h1", interval, to).expect("h1's bills");
    assert_eq!(served.bills.len(), 1);
    let served = serde_json::to_value(&served.bills[0]).expect("json");
    assert_eq!(served["height"].as_u64(), Some(view.settled.height));
    support::wait_logged("h1's committed bill on MQTT", &log, PATIENCE, || {
        bills_on_mqtt
            .messages("voltmesh/households/h1/bill")
            .contains(&served)
    });
    assert_eq!(
        bills_on_mqtt
            .messages("voltmesh/households/h1/bill")
            .iter()
            .filter(|m| **m == served)
            .count(),
        1,
        "published once"
    );

    // The grid operator's official data arrives (EDA): h1's two metering points say it fed in
    // 10 Wh less than its bridge delivered, h2's is what was billed, h3 (billed at its
    // contract) imported 60 Wh; a later interval is not settled yet.
    let key_file = dir.join("billing.key");
    voltmesh_wire::key::write(&key_file, &billing_key()).expect("key file");
    let later = interval + 50 * INTERVAL_SECS;
    let readings = dir.join("eda.csv");
    std::fs::write(
        &readings,
        format!(
            "metering_point,interval_start,import_wh,export_wh\n\
             AT-h1-a,{interval},0,{}\n\
             AT-h1-b,{interval},0,0\n\
             AT-h2,{interval},{},0\n\
             AT-h3,{interval},60,0\n\
             AT-h1-a,{later},0,7\n",
            h1.metered_net_export_wh - 10,
            -h2.metered_net_export_wh,
        ),
    )
    .expect("readings");
    let points = dir.join("points.csv");
    std::fs::write(
        &points,
        "metering_point,participant\nAT-h1-a,h1\nAT-h1-b,h1\nAT-h2,h2\nAT-h3,h3\n",
    )
    .expect("points");
    let correct = |key: &Path| {
        support::voltmesh()
            .args([
                "correct",
                "--node",
                &format!("http://{}", cluster.nodes[1].api),
            ])
            .args(["--key", support::path_str(key)])
            .args(["--readings", support::path_str(&readings)])
            .args(["--points", support::path_str(&points)])
            .args(["--id", "eda-test", "--wait-secs", "120"])
            .output()
            .expect("voltmesh correct")
    };
    // A household's key may not import official data (nor read everyone's bills).
    let h1_key = dir.join("h1.key");
    voltmesh_wire::key::write(&h1_key, &household_key(1)).expect("key file");
    let out = correct(&h1_key);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("forbidden"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = correct(&key_file);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("interval {later}: not settled")),
        "{stdout}"
    );
    // Every node serves exactly one correction, of exactly the interval the data names, with
    // entries for exactly h1 and h3, each the naive difference of the utility amounts.
    let span = (interval - 100 * INTERVAL_SECS, later + INTERVAL_SECS);
    let corrections: Vec<_> = billing
        .iter()
        .map(|c| {
            c.corrections(span.0, span.1)
                .expect("corrections")
                .corrections
        })
        .collect();
    assert!(
        corrections.iter().all(|c| *c == corrections[0]),
        "{corrections:?}"
    );
    let [committed] = &corrections[0][..] else {
        panic!("one correction: {corrections:?}")
    };
    let c = &committed.corrections;
    assert_eq!(c.interval_start, interval);
    assert_eq!((c.import.as_str(), c.source.as_str()), ("eda-test", "EDA"));
    let who: Vec<&str> = c.entries.iter().map(|e| e.participant.as_str()).collect();
    assert_eq!(who, ["h1", "h3"], "{c:?}");
    for (e, billed, official) in [
        (
            &c.entries[0],
            h1.metered_net_export_wh,
            h1.metered_net_export_wh - 10,
        ),
        (&c.entries[1], -50, -60),
    ] {
        let who = e.participant.as_str();
        assert_eq!(
            e.total,
            naive_total(who, &trades, official) - naive_total(who, &trades, billed),
            "{e:?}"
        );
        assert_eq!(e.billed + e.carry, e.total + e.carry_in, "{e:?}");
    }
    assert_eq!(c.imbalance(), Money::ZERO);
    assert_eq!(
        c.entries[0].metering_points,
        ["AT-h1-a", "AT-h1-b"],
        "h1's points summed"
    );
    // History is not rewritten: the interval's bills are as committed, beside the correction.
    let after = billing[2].settlement(interval).unwrap().unwrap();
    assert_eq!(after.bills, view.bills);
    assert_eq!(after.corrections, corrections[0]);
    let corrected = own.statement("h1", interval, to).expect("statement");
    assert_eq!(corrected.total, h1.total, "the bill stands");
    assert_eq!(corrected.corrections.len(), 1);
    assert_eq!(corrected.corrected_total, h1.total + c.entries[0].total);

    // The export of every settled interval so far reconciles to zero and to the statements.
    let out_dir = dir.join("export");
    let from = interval - 100 * INTERVAL_SECS;
    let out = support::voltmesh()
        .args([
            "export",
            "--node",
            &format!("http://{}", cluster.nodes[3].api),
        ])
        .args(["--key", support::path_str(&key_file)])
        .args(["--from", &from.to_string(), "--to", &to.to_string()])
        .args(["--period", "all", "--out", support::path_str(&out_dir)])
        .output()
        .expect("voltmesh export");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut members = csv::Reader::from_path(out_dir.join("members.csv")).expect("members.csv");
    let headers = members.headers().expect("headers").clone();
    let column = |name: &str| headers.iter().position(|h| h == name).expect(name);
    let (party, total) = (column("party"), column("total"));
    let mut sum = Money::ZERO;
    let mut h1_total = None;
    for row in members.records() {
        let row = row.expect("row");
        let amount: Money =
            serde_json::from_value(serde_json::Value::from(&row[total])).expect("money");
        sum += amount;
        if &row[party] == "h1" {
            *h1_total.get_or_insert(Money::ZERO) += amount;
        }
    }
    assert_eq!(sum, Money::ZERO, "the export reconciles to zero");
    let h1_statement = own.statement("h1", from, to).expect("statement");
    assert_eq!(
        h1_total,
        Some(h1_statement.corrected_total),
        "the export (bill and correction rows) reconciles to h1's statement"
    );
    let detail = std::fs::read_to_string(out_dir.join("intervals.csv")).expect("intervals.csv");
    assert!(
        detail.contains(&view.settled.block) && detail.contains(&committed.block),
        "the detail names the blocks of the bill and of the correction"
    );

    // `voltmesh verify` re-executes the chain, every bill included, on a stopped node.
    let status = bridge.interrupt().expect("the bridge stops");
    assert!(status.success());
    cluster.kill(2);
    let out = support::voltmesh()
        .args([
            "verify",
            "--data-dir",
            support::path_str(&cluster.data_dir(2)),
        ])
        .output()
        .expect("voltmesh verify");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
