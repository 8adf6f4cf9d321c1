//! Households talk to the bridge over a real Mosquitto: an order published with `mosquitto_pub`
//! reaches the order sink signed and with the household's values; a retained preferences message
//! changes the limit price of the next planned order; bad payloads are dead-lettered and the
//! bridge keeps going.

mod mqtt_support;

use chrono::{DateTime, Utc};
use mqtt_support::{
    bridge_config, client_options, mosquitto_pub, wait_until, BrokerOptions, Mosquitto,
    RunningBridge, TestClient, PATIENCE,
};
use voltmesh_engine::{IntervalSpec, ParticipantId, Side};
use voltmesh_meter_bridge::household::own_order::HouseholdOrder;
use voltmesh_meter_bridge::household::topic::{orders_topic, preferences_topic};
use voltmesh_meter_bridge::runtime::shared::lock;
use voltmesh_meter_bridge::runtime::{Clock, WallClock};
use voltmesh_meter_bridge::{DeadLetter, ErrorKind};

/// The bridge runs on the wall clock here, so the test reads the same one.
fn now() -> DateTime<Utc> {
    WallClock.now()
}

async fn next_letter(watcher: &mut TestClient) -> DeadLetter {
    let msg = watcher.next().await;
    serde_json::from_slice(&msg.payload).expect("dead letter JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_orders_over_mqtt_reach_the_sink_signed() {
    let broker = Mosquitto::start(&BrokerOptions::default());
    let mut config = bridge_config(broker.port, "bridge-hh-orders", "", "");
    // 6 s intervals, gate 2 s before: the planner plans each interval about 3 s before it starts.
    let spec = IntervalSpec::new(6, 2).expect("spec");
    config.market = spec;
    let neighborhood = config.node.neighborhood.clone();
    let mut bridge = RunningBridge::start(config, 16);
    bridge.wait_subscribed(1).await;
    let mut watcher = TestClient::connect(
        client_options(broker.port, "hh-dl-watch"),
        &["voltmesh/dead-letter"],
    )
    .await;

    // Two intervals after the first open one: its gate is at least 6 s away.
    let target = spec.first_open(now()).next().next();
    let tasmota = ParticipantId::from("tasmota");
    let topic = orders_topic("voltmesh", &tasmota);
    let order = format!(
        r#"{{"interval_start": {}, "side": "buy", "quantity_wh": 350, "limit_price": "0.25"}}"#,
        target.start_unix()
    );
    // Twice (one order), then bad ones: each dead-lettered, none stops the bridge.
    mosquitto_pub(broker.port, &["-t", &topic, "-m", &order]);
    mosquitto_pub(broker.port, &["-t", &topic, "-m", &order]);
    let stranger = orders_topic("voltmesh", &"stranger".into());
    let too_dear = order.replace("0.25", "0.99");
    let bad: [(&str, &str, ErrorKind); 3] = [
        (&stranger, &order, ErrorKind::UnknownParticipant),
        (&topic, &too_dear, ErrorKind::BadValue),
        (
            &topic,
            "{\"side\": \"buy\", \"quantity_wh\": 1",
            ErrorKind::Malformed,
        ),
    ];
    for (topic, payload, _) in &bad {
        mosquitto_pub(broker.port, &["-t", topic, "-m", payload]);
    }
    for (topic, payload, kind) in &bad {
        let letter = next_letter(&mut watcher).await;
        assert_eq!(
            (letter.topic.as_str(), letter.kind),
            (*topic, *kind),
            "{}",
            letter.reason
        );
        assert_eq!(letter.payload().expect("base64"), payload.as_bytes());
        assert!(letter.participant.is_some());
    }

    // The planner submits the household's own order, signed by the bridge key, nonce = start.
    let signed = tokio::time::timeout(PATIENCE, async {
        loop {
            let o = bridge.orders.recv().await.expect("bridge running");
            if o.ticket.interval_start == target.start_unix() {
                return o;
            }
        }
    })
    .await
    .expect("the order in time");
    assert!(signed.signature_valid(&neighborhood));
    assert_eq!(signed.ticket.participant, tasmota);
    assert_eq!(signed.ticket.side, Side::Buy);
    assert_eq!(signed.ticket.quantity_wh, 350);
    assert_eq!(signed.ticket.limit_price.to_string(), "0.250000");
    assert_eq!(
        i64::try_from(signed.ticket.nonce).ok(),
        Some(target.start_unix())
    );
    {
        let ingest = lock(&bridge.ingest);
        assert_eq!(ingest.counters().household_orders, 2);
        assert_eq!(ingest.counters().household_errors.values().sum::<u64>(), 3);
    }

    // Planned: a later order for that interval is refused, one for the next goes through.
    mosquitto_pub(broker.port, &["-t", &topic, "-m", &order]);
    let letter = next_letter(&mut watcher).await;
    assert_eq!(letter.kind, ErrorKind::GateClosed, "{}", letter.reason);
    let next = HouseholdOrder {
        interval_start: target.next().start(),
        side: Side::Sell,
        quantity_wh: 120,
        limit_price: "0.10".parse().expect("price"),
    };
    let payload = String::from_utf8(next.to_json().expect("json")).expect("utf-8");
    mosquitto_pub(broker.port, &["-t", &topic, "-m", &payload]);
    let signed = tokio::time::timeout(PATIENCE, bridge.orders.recv())
        .await
        .expect("the next order in time")
        .expect("bridge running");
    assert_eq!(signed.ticket.interval_start, target.next().start_unix());
    assert_eq!(
        (signed.ticket.side, signed.ticket.quantity_wh),
        (Side::Sell, 120)
    );
    assert!(signed.signature_valid(&neighborhood));
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_preferences_change_the_next_planned_order() {
    let broker = Mosquitto::start(&BrokerOptions::default());
    let native = ParticipantId::from("native");
    let topic = preferences_topic("voltmesh", &native);
    // Retained before the bridge exists: it gets it when it subscribes.
    mosquitto_pub(
        broker.port,
        &["-r", "-t", &topic, "-m", r#"{"sell_limit": "0.15"}"#],
    );
    let config = bridge_config(broker.port, "bridge-hh-prefs", "", "");
    let spec = config.market;
    let mut bridge = RunningBridge::start(config, 16);
    bridge.wait_subscribed(1).await;
    let updates = |bridge: &RunningBridge| lock(&bridge.ingest).counters().preferences_updates;
    wait_until("retained preferences applied", || updates(&bridge) == 1).await;

    // Two readings a whole interval apart, 500 Wh exported: a 500 Wh sale is forecast.
    let t = spec.containing(now()).start() - chrono::TimeDelta::seconds(1800);
    for (at, export) in [(t - chrono::TimeDelta::seconds(900), 1000), (t, 1500)] {
        let reading = format!(
            r#"{{"meter":"hh-042","ts":"{}","import_wh":5000,"export_wh":{export},"power_w":0}}"#,
            at.to_rfc3339()
        );
        mosquitto_pub(
            broker.port,
            &["-t", "voltmesh/meters/hh-042", "-m", &reading],
        );
        bridge.next_reading().await;
    }
    let target = spec.first_open(t);
    let planned = |bridge: &RunningBridge| lock(&bridge.ingest).plan_orders(target, t);
    let orders = planned(&bridge);
    assert_eq!(orders.len(), 1);
    assert_eq!((orders[0].side, orders[0].quantity_wh), (Side::Sell, 500));
    assert_eq!(orders[0].limit_price.to_string(), "0.150000", "from MQTT");

    // A new retained message replaces it; a bad one is dead-lettered and changes nothing.
    let mut watcher = TestClient::connect(
        client_options(broker.port, "hh-prefs-watch"),
        &["voltmesh/dead-letter"],
    )
    .await;
    mosquitto_pub(
        broker.port,
        &[
            "-r",
            "-t",
            &topic,
            "-m",
            r#"{"sell_limit": "0.11", "enabled": true}"#,
        ],
    );
    wait_until("new preferences applied", || updates(&bridge) == 2).await;
    assert_eq!(planned(&bridge)[0].limit_price.to_string(), "0.110000");
    mosquitto_pub(
        broker.port,
        &["-r", "-t", &topic, "-m", r#"{"sell_limit": "5.00"}"#],
    );
    let letter = next_letter(&mut watcher).await;
    assert_eq!(letter.kind, ErrorKind::BadValue, "{}", letter.reason);
    assert_eq!(letter.participant, Some(native.clone()));
    assert_eq!(planned(&bridge)[0].limit_price.to_string(), "0.110000");
    // Switched off over MQTT: no order.
    mosquitto_pub(
        broker.port,
        &["-r", "-t", &topic, "-m", r#"{"enabled": false}"#],
    );
    wait_until("switched off", || updates(&bridge) == 3).await;
    assert!(planned(&bridge).is_empty());
    bridge.shutdown().await;
}
