//! Results reach households over MQTT: fills and price, the clearing summary and the settlement,
//! on the documented topics, retained, as JSON.

mod mqtt_support;

use mqtt_support::{
    bridge_config, client_options, BrokerOptions, Mosquitto, RunningBridge, TestClient,
};
use voltmesh_engine::{
    settlement, ClearingOutcome, IntervalSpec, Mechanism, Price, Tariffs, Trade,
};
use voltmesh_meter_bridge::runtime::mqtt::{
    ClearingSummary, HouseholdFills, ResultMessage, SettlementNotice,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fills_clearing_and_settlement_are_published() {
    let broker = Mosquitto::start(&BrokerOptions::default());
    let mut bridge = RunningBridge::start(bridge_config(broker.port, "bridge-results", "", ""), 16);
    bridge.wait_subscribed(1).await;

    let interval = IntervalSpec::DEFAULT
        .containing(chrono::DateTime::from_timestamp(1_790_000_000, 0).expect("time"));
    let price: Price = "0.210000".parse().expect("price");
    let outcome = ClearingOutcome {
        mechanism: Mechanism::default(),
        clearing_price: Some(price),
        price_range: None,
        volume_wh: 700,
        trades: vec![Trade {
            buy_id: "native-b".into(),
            sell_id: "kaifa-s".into(),
            buyer: "native".into(),
            seller: "kaifa".into(),
            quantity_wh: 700,
            price,
        }],
        unfilled: Vec::new(),
    };
    let metered = [("native".into(), -650i64), ("kaifa".into(), 720i64)]
        .into_iter()
        .collect();
    let tariffs = Tariffs {
        feed_in: "0.080000".parse().expect("price"),
        retail: "0.300000".parse().expect("price"),
    };
    let fee: Price = "0.020000".parse().expect("price");
    let settled = settlement::settle(&outcome.trades, &metered, tariffs, fee).expect("settles");

    let mut messages: Vec<ResultMessage> = HouseholdFills::from_outcome(interval, &outcome, chf())
        .into_iter()
        .map(ResultMessage::Fills)
        .collect();
    messages.push(ResultMessage::Clearing(ClearingSummary::from_outcome(
        interval,
        &outcome,
        chf(),
    )));
    messages.extend(
        SettlementNotice::from_settlement(interval, &settled, chf())
            .into_iter()
            .map(ResultMessage::Settlement),
    );
    assert_eq!(messages.len(), 5);
    let mut household = TestClient::connect(
        client_options(broker.port, "household-native"),
        &["voltmesh/households/native/#"],
    )
    .await;
    let mut market = TestClient::connect(
        client_options(broker.port, "market-watch"),
        &["voltmesh/market/clearing"],
    )
    .await;
    for m in messages {
        bridge.results.send(m).await.expect("bridge takes results");
    }
    let mut got = Vec::new();
    for _ in 0..2 {
        let msg = household.next().await;
        let json: serde_json::Value = serde_json::from_slice(&msg.payload).expect("JSON");
        got.push((msg.topic.clone(), json));
    }
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got[0].0, "voltmesh/households/native/fills");
    assert_eq!(got[0].1["bought_wh"], 700);
    assert_eq!(got[0].1["clearing_price"], "0.210000");
    assert_eq!(got[0].1["currency"], "CHF");
    assert_eq!(got[1].1["currency"], "CHF");
    assert_eq!(got[1].0, "voltmesh/households/native/settlement");
    assert_eq!(got[1].1["bill"]["bought_wh"], 700);
    assert_eq!(got[1].1["bill"]["metered_net_export_wh"], -650);

    // Retained: a household that subscribes later still gets its latest results.
    let mut late = TestClient::connect(
        client_options(broker.port, "household-late"),
        &["voltmesh/households/native/#"],
    )
    .await;
    for _ in 0..2 {
        assert!(late.next().await.retain, "results are retained");
    }
    let summary = market.next().await;
    let json: serde_json::Value = serde_json::from_slice(&summary.payload).expect("JSON");
    assert_eq!(
        (json["volume_wh"].as_u64(), json["trades"].as_u64()),
        (Some(700), Some(1))
    );
    assert_eq!(json["currency"], "CHF");
    bridge.shutdown().await;
}

/// A currency other than the default, so the test sees it carried.
fn chf() -> voltmesh_wire::Currency {
    "CHF".parse().expect("currency")
}
