//! Four real `voltmesh node` processes write to a real time-series database on loopback (Debian's
//! `victoria-metrics`): each node's consensus health, and from the committed ledger the orders,
//! the interval's clearing, its trades, and once its bills commit (a one-second delivery window)
//! each household's `settlement` and `balance`.
//!
//! The nodes find the database through `VOLTMESH_INFLUX_URL`, which they inherit from this test
//! process (one test per file: the variable is process-wide).

#[allow(dead_code, unused_imports)]
mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use voltmesh_metrics::testing::{free_port, Series, VictoriaMetrics};

/// The distinct values at `t_ms` (every validator writes the same ledger point).
fn at(series: &[Series], t_ms: i64) -> BTreeSet<String> {
    series
        .iter()
        .flat_map(|s| s.samples())
        .filter(|(t, _)| *t == t_ms)
        .map(|(_, v)| v.to_string())
        .collect()
}

#[tokio::test]
async fn nodes_write_consensus_health_and_the_committed_ledger() {
    let vm = VictoriaMetrics::start(free_port()).await;
    std::env::set_var("VOLTMESH_INFLUX_URL", vm.base_url());
    std::env::remove_var("VOLTMESH_INFLUX_TOKEN");
    let options = voltmesh::testing::cluster::ClusterOptions {
        delivery_window_secs: 1,
        ..voltmesh::testing::cluster::ClusterOptions::new(4)
    };
    let cluster = support::start_with("metrics-node", &options);
    let (start, orders) = support::submit_four_orders(&cluster);
    // A refused order (a replayed nonce) shows up as a rejection with its reason.
    let (status, _) = cluster.submit(0, &orders[0].1);
    assert_eq!(status, 422);
    cluster
        .wait_for("the interval to clear", Duration::from_secs(60), |c| {
            (0..4).all(|i| c.interval(i, start).is_some())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let t = start * 1000;

    // Ledger: the clearing at the interval start, as the node API reports it (700 Wh at 0.20).
    let clearing = vm
        .wait_for_series("clearing_.*", 30, |s| {
            !at(s, t).is_empty() && s.iter().any(|x| x.name() == "clearing_price")
        })
        .await;
    let field = |name: &str| -> BTreeSet<String> {
        clearing
            .iter()
            .filter(|s| s.name() == name)
            .flat_map(|s| s.samples())
            .filter(|(ts, _)| *ts == t)
            .map(|(_, v)| v.to_string())
            .collect()
    };
    let one = |v: &str| BTreeSet::from([v.to_owned()]);
    assert_eq!(field("clearing_volume_wh"), one("700"));
    assert_eq!(field("clearing_price"), one("0.2"));
    assert_eq!(field("clearing_bid_wh"), one("800"));
    assert_eq!(field("clearing_ask_wh"), one("700"));
    assert_eq!(field("clearing_orders"), one("4"));
    assert_eq!(field("clearing_feed_in"), one("0.08"));
    for s in &clearing {
        assert_eq!(s.tag("neighborhood"), Some("testnet"));
        assert_eq!(s.tag("node"), None, "ledger points carry no node tag");
    }

    // Trades: per household and side; the buyers' energy adds up to the volume.
    let trades = vm
        .wait_for_series("trade_quantity_wh", 30, |s| !s.is_empty())
        .await;
    let bought: f64 = trades
        .iter()
        .filter(|s| s.tag("side") == Some("buy"))
        .filter_map(|s| s.samples().into_iter().find(|(ts, _)| *ts == t))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(bought, 700.0);

    // Orders: one series per household, with its side.
    let order_series = vm
        .wait_for_series("order_quantity_wh", 30, |s| s.len() >= 4)
        .await;
    let households: BTreeSet<(&str, &str)> = order_series
        .iter()
        .filter_map(|s| Some((s.tag("household")?, s.tag("side")?)))
        .collect();
    assert_eq!(
        households,
        BTreeSet::from([("h1", "sell"), ("h2", "buy"), ("h3", "buy"), ("h4", "sell")])
    );

    // Health: every node, with its committed height growing and a commit latency.
    let heights = vm
        .wait_for_series("consensus_height", 30, |s| s.len() == 4)
        .await;
    let nodes: BTreeSet<&str> = heights.iter().filter_map(|s| s.tag("node")).collect();
    assert_eq!(
        nodes,
        BTreeSet::from(["validator-0", "validator-1", "validator-2", "validator-3"])
    );
    for s in &heights {
        let samples = s.samples();
        assert!(samples.len() >= 2, "{:?}", s.metric);
        assert!(samples.windows(2).all(|w| w[0].1 <= w[1].1), "{samples:?}");
        assert!(samples.last().map_or(0.0, |x| x.1) >= 3.0);
    }
    let latency = vm.export("consensus_commit_latency_ms").await;
    assert_eq!(latency.len(), 4);
    let rejections = vm
        .wait_for_series("consensus_rejection_rejected_total", 30, |s| !s.is_empty())
        .await;
    assert!(
        rejections.iter().any(|s| matches!(
            s.tag("reason"),
            Some("replayed_nonce" | "duplicate_order")
        ) && s.tag("node").is_some()),
        "{:?}",
        rejections.iter().map(|s| &s.metric).collect::<Vec<_>>()
    );

    // Bills: no delivery reached the ledger, so every trader is settled at its contract: the
    // buyers pay 0.20 plus the 0.01 network fee per kWh, the sellers receive 0.20. One point
    // per household at the interval start; its balance (the first bill) is the same amount.
    let totals = vm
        .wait_for_series("settlement_total", 60, |s| {
            s.iter()
                .filter(|x| x.samples().iter().any(|(ts, _)| *ts == t))
                .count()
                == 4
        })
        .await;
    let per_household = |series: &[voltmesh_metrics::testing::Series]| {
        series
            .iter()
            .filter_map(|s| {
                let (_, v) = s.samples().into_iter().find(|(ts, _)| *ts == t)?;
                Some((s.tag("household")?.to_owned(), v))
            })
            .collect::<std::collections::BTreeMap<String, f64>>()
    };
    let paid = per_household(&totals);
    let fees: f64 = paid.values().sum();
    assert!((fees - 0.007).abs() < 1e-9, "700 Wh at 0.01: {paid:?}");
    let bought = per_household(&vm.export("settlement_bought_wh").await);
    let sold = per_household(&vm.export("settlement_sold_wh").await);
    assert_eq!(bought.values().sum::<f64>(), 700.0, "{bought:?}");
    assert_eq!(sold.values().sum::<f64>(), 700.0, "{sold:?}");
    for s in &totals {
        assert_eq!(s.tag("neighborhood"), Some("testnet"));
        assert_eq!(s.tag("node"), None, "ledger points carry no node tag");
    }
    let balances = vm
        .wait_for_series("balance_amount_total", 30, |s| {
            s.iter()
                .filter(|x| x.samples().iter().any(|(ts, _)| *ts == t))
                .count()
                == 4
        })
        .await;
    assert_eq!(per_household(&balances), paid);
    let bought_total = per_household(&vm.export("balance_bought_wh_total").await);
    assert_eq!(bought_total, bought);
}
