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
        Default::default(),
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

/// `GET path` on `addr` over a fresh connection: the status code and the body.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: bridge\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    (status, response[split + 4..].to_vec())
}

/// evcc's `custom` tariff forecast (docs.evcc.io, "tariffs", `forecast: {source: http}`): an
/// array of `{"start", "end", "value"}`, RFC 3339 times, a number per slot; here one slot per
/// interval, back to back.
fn check_evcc(payload: &[u8], intervals: usize) {
    let slots: Vec<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_slice(payload).expect("an array of objects");
    assert_eq!(slots.len(), intervals);
    let mut previous_end = None;
    for slot in &slots {
        let keys: Vec<&str> = slot.keys().map(String::as_str).collect();
        assert_eq!(keys, ["end", "start", "value"], "{slot:?}");
        let time = |k: &str| {
            chrono::DateTime::parse_from_rfc3339(slot[k].as_str().expect("a string"))
                .expect("RFC 3339")
        };
        let (start, end) = (time("start"), time("end"));
        assert_eq!(end - start, chrono::TimeDelta::minutes(15));
        if let Some(previous) = previous_end {
            assert_eq!(start, previous, "back to back");
        }
        previous_end = Some(end);
        assert!(slot["value"].is_number(), "{slot:?}");
    }
}

/// EMHASS's runtime price parameters (emhass.readthedocs.io, "Passing your own data"): lists
/// `load_cost_forecast` and `prod_price_forecast` of numbers, one per time step.
fn check_emhass(payload: &[u8], intervals: usize) {
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(payload).expect("an object");
    let keys: Vec<&str> = object.keys().map(String::as_str).collect();
    assert_eq!(keys, ["load_cost_forecast", "prod_price_forecast"]);
    for list in object.values() {
        let values = list.as_array().expect("a list");
        assert_eq!(values.len(), intervals);
        assert!(values.iter().all(serde_json::Value::is_number), "{list}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_market_topics_are_served_over_http_as_published() {
    use voltmesh_meter_bridge::household::price_signal::IndicativePrice;
    use voltmesh_meter_bridge::runtime::mqtt::results::PriceSignal;

    let broker = Mosquitto::start(&BrokerOptions::default());
    let addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        probe.local_addr().expect("its address")
    };
    let mut config = bridge_config(broker.port, "bridge-http", "", "");
    config.http.listen = Some(addr);
    // The bridge computes no price signal of its own: one it planned at a wall-clock interval
    // boundary would replace the test's between publishing and reading (a CI run hit it).
    config.price_signal.horizon_intervals = 0;
    let mut bridge = RunningBridge::start(config, 16);
    bridge.wait_subscribed(1).await;
    let (status, body) = http_get(addr, "/v1/market/price_signal/evcc/grid").await;
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("not_published_yet"));

    let first = IntervalSpec::DEFAULT
        .containing(chrono::DateTime::from_timestamp(1_790_000_000, 0).expect("time"));
    let intervals: Vec<IndicativePrice> = (0..4)
        .scan(first, |interval, i| {
            let this = *interval;
            *interval = interval.next();
            Some(IndicativePrice {
                start: this.start(),
                end: this.end(),
                import: format!("0.{}", 20 + i).parse().expect("price"),
                export: "0.080000".parse().expect("price"),
                local: None,
                local_wh: 0,
            })
        })
        .collect();
    let mut market = TestClient::connect(
        client_options(broker.port, "market-http-watch"),
        &["voltmesh/market/#"],
    )
    .await;
    bridge
        .results
        .send(ResultMessage::PriceSignal(PriceSignal {
            currency: chf(),
            intervals,
        }))
        .await
        .expect("bridge takes results");
    let outcome = ClearingOutcome {
        mechanism: Mechanism::default(),
        clearing_price: None,
        price_range: None,
        volume_wh: 0,
        trades: Vec::new(),
        unfilled: Vec::new(),
    };
    bridge
        .results
        .send(ResultMessage::Clearing(ClearingSummary::from_outcome(
            first,
            &outcome,
            Default::default(),
            chf(),
        )))
        .await
        .expect("bridge takes results");
    let mut published = std::collections::BTreeMap::new();
    while published.len() < 5 {
        let msg = market.next().await;
        published.insert(msg.topic.clone(), msg.payload.to_vec());
    }
    // Every market topic, byte for byte as retained over MQTT.
    for (topic, payload) in &published {
        let path = format!("/v1/{}", topic.strip_prefix("voltmesh/").expect("prefix"));
        let (status, body) = http_get(addr, &path).await;
        assert_eq!((status, &body), (200, payload), "{path}");
    }
    let (_, grid) = http_get(addr, "/v1/market/price_signal/evcc/grid").await;
    check_evcc(&grid, 4);
    let grid: serde_json::Value = serde_json::from_slice(&grid).expect("JSON");
    assert_eq!(grid[3]["value"].as_f64(), Some(0.23));
    let (_, feedin) = http_get(addr, "/v1/market/price_signal/evcc/feedin").await;
    check_evcc(&feedin, 4);
    let (_, emhass) = http_get(addr, "/v1/market/price_signal/emhass").await;
    check_emhass(&emhass, 4);
    let (status, _) = http_get(addr, "/v1/households/native/fills").await;
    assert_eq!(status, 404, "households' topics are not served");
    bridge.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the http server stops with the bridge"
    );
}
