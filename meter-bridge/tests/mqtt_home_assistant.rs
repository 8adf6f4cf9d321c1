//! Home Assistant MQTT discovery against a real Mosquitto: retained configs with what Home
//! Assistant and its Energy dashboard need, availability from the bridge's last will, configs
//! again on Home Assistant's birth message, the switch and numbers writing the household's
//! retained preferences (a bad command refused, the bridge running on), and totals from the
//! node's ledger.
//!
//! The node is an in-process [`OrderSink`] that answers balances from a table the test sets,
//! like the other bridge tests' sinks (`ChannelSink`, the runtime's `FakeSink`); the node's own
//! balance (`paid`, `received`) is tested in `consensus/src/index.rs` and its route in
//! `consensus/tests/api_contract.rs`.

mod mqtt_support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mqtt_support::{
    bridge_config, client_options, mosquitto_pub, wait_until, BrokerOptions, Mosquitto,
    RunningBridge, TestClient,
};
use serde_json::Value;
use voltmesh_engine::{Money, ParticipantId};
use voltmesh_meter_bridge::config::Config;
use voltmesh_meter_bridge::order_sink::{OrderSink, SinkError, Submitted};
use voltmesh_meter_bridge::runtime::lock;
use voltmesh_meter_bridge::runtime::mqtt::{HouseholdFills, ResultMessage};
use voltmesh_wire::api::Balance;
use voltmesh_wire::{IntervalClearing, SignedOrder};

/// The households of `tests/fixtures/households.toml`.
const HOUSEHOLDS: [&str; 4] = ["kaifa", "tasmota", "shelly", "native"];
/// Entities per household (the neighborhood has `NEIGHBORHOOD` more).
const PER_HOUSEHOLD: usize = 10;
/// The neighborhood's entities: clearing price, volume, indicative import and export prices.
const NEIGHBORHOOD: usize = 4;

/// The node's ledger as far as balances go: the test sets what it answers.
#[derive(Debug, Clone, Default)]
struct Ledger(Arc<Mutex<BTreeMap<String, Balance>>>);

impl Ledger {
    fn set(&self, participant: &str, bought_wh: u64, paid_nanos: i128, received_nanos: i128) {
        let balance = Balance {
            bought_wh,
            sold_wh: 250,
            net_paid: Money::from_nanos(paid_nanos - received_nanos),
            paid: Money::from_nanos(paid_nanos),
            received: Money::from_nanos(received_nanos),
            currency: "CHF".parse().expect("currency"),
        };
        self.0
            .lock()
            .expect("ledger")
            .insert(participant.to_owned(), balance);
    }
}

impl OrderSink for Ledger {
    async fn submit(&self, _: &SignedOrder) -> Result<Submitted, SinkError> {
        Ok(Submitted::Accepted)
    }

    async fn clearing(&self, _: i64) -> Result<Option<IntervalClearing>, SinkError> {
        Ok(None)
    }

    async fn balance(&self, participant: &ParticipantId) -> Result<Balance, SinkError> {
        Ok(self
            .0
            .lock()
            .expect("ledger")
            .get(participant.as_str())
            .cloned()
            .unwrap_or_default())
    }
}

fn config(port: u16, client_id: &str) -> Config {
    let mut config = bridge_config(port, client_id, "", "");
    config.home_assistant.discovery = true;
    config.settlement.currency = "CHF".parse().expect("currency");
    config
}

/// Starts a bridge with Home Assistant on, against `ledger`, and waits until its Home Assistant
/// connection is subscribed and every discovery config is out.
async fn start(broker: &Mosquitto, client_id: &str, ledger: &Ledger) -> RunningBridge {
    let mut bridge =
        RunningBridge::start_with_sink(config(broker.port, client_id), 16, ledger.clone());
    bridge.wait_subscribed(1).await;
    let suback = format!("Sending SUBACK to {client_id}-ha");
    wait_until("the home assistant connection subscribed", || {
        broker.log().contains(&suback)
    })
    .await;
    let mut watch = TestClient::connect(
        client_options(broker.port, &format!("{client_id}-watch")),
        &["homeassistant/#"],
    )
    .await;
    collect(&mut watch, |seen| {
        seen.len() == HOUSEHOLDS.len() * PER_HOUSEHOLD + NEIGHBORHOOD
    })
    .await;
    bridge
}

/// Messages received on `client` until `done` says the map (latest payload per topic) is
/// complete.
async fn collect(
    client: &mut TestClient,
    mut done: impl FnMut(&BTreeMap<String, (bool, Vec<u8>)>) -> bool,
) -> BTreeMap<String, (bool, Vec<u8>)> {
    let mut seen = BTreeMap::new();
    while !done(&seen) {
        let m = client.next().await;
        seen.insert(m.topic.clone(), (m.retain, m.payload.to_vec()));
    }
    seen
}

fn json(payload: &[u8]) -> Value {
    serde_json::from_slice(payload)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(payload)))
}

/// The latest payload on `topic` that `accept` takes, within [`PATIENCE`].
async fn wait_for(
    client: &mut TestClient,
    topic: &str,
    mut accept: impl FnMut(&[u8]) -> bool,
) -> Vec<u8> {
    loop {
        let m = client.next().await;
        if m.topic == topic && accept(&m.payload) {
            return m.payload.to_vec();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_configs_are_retained_complete_and_follow_the_bridges_availability() {
    let broker = Mosquitto::start(&BrokerOptions::default());
    let ledger = Ledger::default();
    ledger.set("native", 1_234, 2_500_000_000, 1_000_000_001);
    let bridge = start(&broker, "bridge-ha-discovery", &ledger).await;

    // Watch until everything is out, then connect again: a client that connects later (Home
    // Assistant starting) gets all of it retained.
    let filters = [
        "homeassistant/#",
        "voltmesh/bridge/status",
        "voltmesh/households/+/totals",
    ];
    let configs = HOUSEHOLDS.len() * PER_HOUSEHOLD + NEIGHBORHOOD;
    let complete = |seen: &BTreeMap<String, (bool, Vec<u8>)>| {
        seen.keys().filter(|t| t.ends_with("/config")).count() == configs
            && seen.contains_key("voltmesh/bridge/status")
            && HOUSEHOLDS
                .iter()
                .all(|h| seen.contains_key(&format!("voltmesh/households/{h}/totals")))
    };
    let mut ha = TestClient::connect(client_options(broker.port, "ha-discovery"), &filters).await;
    collect(&mut ha, complete).await;
    let mut late = TestClient::connect(client_options(broker.port, "ha-late"), &filters).await;
    let seen = collect(&mut late, complete).await;
    let (retained, status) = &seen["voltmesh/bridge/status"];
    assert!(*retained);
    assert_eq!(status, b"online");

    let mut unique_ids = std::collections::BTreeSet::new();
    for (topic, (retained, payload)) in seen.iter().filter(|(t, _)| t.ends_with("/config")) {
        assert!(*retained, "{topic} retained");
        let v = json(payload);
        // <prefix>/<component>/<node_id>/<object_id>/config, ids of [a-zA-Z0-9_-].
        let levels: Vec<&str> = topic.split('/').collect();
        assert_eq!(levels.len(), 5, "{topic}");
        assert!(
            ["sensor", "switch", "number"].contains(&levels[1]),
            "{topic}"
        );
        for id in &levels[2..4] {
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
                "{topic}"
            );
        }
        for field in [
            "name",
            "unique_id",
            "object_id",
            "state_topic",
            "availability_topic",
        ] {
            assert!(v[field].is_string(), "{topic}: {field}");
        }
        assert!(unique_ids.insert(v["unique_id"].as_str().unwrap_or_default().to_owned()));
        assert_eq!(v["availability_topic"], "voltmesh/bridge/status");
        assert_eq!(v["device"]["manufacturer"], "Voltmesh");
        assert!(v["device"]["identifiers"][0].is_string(), "{topic}");
        if levels[1] != "sensor" {
            assert!(v["command_topic"].is_string(), "{topic}");
        }
    }
    let config_of = |node: &str, key: &str, component: &str| {
        json(&seen[&format!("homeassistant/{component}/{node}/{key}/config")].1)
    };
    let node = "voltmesh_voltmesh_native";
    assert_eq!(
        config_of(node, "energy_bought", "sensor")["unique_id"],
        "voltmesh_voltmesh_native_energy_bought"
    );
    assert_eq!(
        config_of(node, "energy_bought", "sensor")["device"]["model"],
        "meter bridge household"
    );
    // The Energy dashboard's rules: energy totals in kWh, money totals in the ISO currency.
    for key in ["energy_bought", "energy_sold"] {
        let v = config_of(node, key, "sensor");
        assert_eq!(
            (
                v["device_class"].as_str(),
                v["state_class"].as_str(),
                v["unit_of_measurement"].as_str()
            ),
            (Some("energy"), Some("total_increasing"), Some("kWh")),
            "{key}"
        );
    }
    for key in ["money_paid", "money_received"] {
        let v = config_of(node, key, "sensor");
        assert_eq!(
            (
                v["device_class"].as_str(),
                v["state_class"].as_str(),
                v["unit_of_measurement"].as_str()
            ),
            (Some("monetary"), Some("total"), Some("CHF")),
            "{key}"
        );
    }
    let price = config_of(node, "clearing_price", "sensor");
    assert_eq!(price["unit_of_measurement"], "CHF/kWh");
    assert!(price.get("device_class").is_none());
    let buy = config_of(node, "buy_limit", "number");
    assert_eq!(
        (
            buy["min"].as_f64(),
            buy["max"].as_f64(),
            buy["step"].as_f64()
        ),
        (Some(0.08), Some(0.32), Some(0.001))
    );
    assert_eq!(
        config_of("voltmesh_voltmesh", "clearing_price", "sensor")["device"]["model"],
        "neighborhood market"
    );

    // The totals come from the ledger.
    let totals = json(&seen["voltmesh/households/native/totals"].1);
    assert_eq!(totals["bought_kwh"], "1.234");
    assert_eq!(totals["paid"], "2.500000000");
    assert_eq!(totals["received"], "1.000000001");
    assert_eq!(totals["currency"], "CHF");

    // The bridge goes away without a DISCONNECT: the broker publishes its last will.
    bridge.shutdown().await;
    wait_for(&mut ha, "voltmesh/bridge/status", |p| p == b"offline").await;
    let mut later = TestClient::connect(
        client_options(broker.port, "ha-later"),
        &["voltmesh/bridge/status"],
    )
    .await;
    let m = later.next().await;
    assert_eq!(
        (m.retain, m.payload.as_ref()),
        (true, &b"offline"[..]),
        "offline is retained"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configs_are_published_again_when_home_assistant_comes_online() {
    let broker = Mosquitto::start(&BrokerOptions::default());
    let ledger = Ledger::default();
    let bridge = start(&broker, "bridge-ha-birth", &ledger).await;
    let topic = "homeassistant/switch/voltmesh_voltmesh_kaifa/trading/config";
    let mut ha = TestClient::connect(client_options(broker.port, "ha-birth"), &[topic]).await;
    let first = ha.next().await;
    assert!(first.retain);
    // Home Assistant's birth message (it restarted): every config comes again.
    mosquitto_pub(broker.port, &["-t", "homeassistant/status", "-m", "online"]);
    let again = ha.next().await;
    assert_eq!(again.topic, topic);
    assert_eq!(json(&again.payload), json(&first.payload));
    // Its last will (`offline`) changes nothing.
    mosquitto_pub(
        broker.port,
        &["-t", "homeassistant/status", "-m", "offline"],
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(500), ha.messages.recv())
            .await
            .is_err(),
        "nothing published on offline"
    );
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_switch_and_numbers_write_the_preferences_and_bad_commands_are_refused() {
    let broker = Mosquitto::start(&BrokerOptions::default());
    let ledger = Ledger::default();
    let bridge = start(&broker, "bridge-ha-commands", &ledger).await;
    let mut watch = TestClient::connect(
        client_options(broker.port, "ha-commands"),
        &[
            "voltmesh/households/tasmota/preferences",
            "voltmesh/households/tasmota/controls",
            "voltmesh/dead-letter",
        ],
    )
    .await;
    let set = |control: &str, value: &str| {
        mosquitto_pub(
            broker.port,
            &[
                "-t",
                &format!("voltmesh/households/tasmota/controls/{control}/set"),
                "-m",
                value,
            ],
        );
    };
    let prefs_topic = "voltmesh/households/tasmota/preferences";
    let controls_topic = "voltmesh/households/tasmota/controls";
    wait_for(&mut watch, controls_topic, |p| json(p)["trading"] == "ON").await;

    set("trading", "OFF");
    let prefs = wait_for(&mut watch, prefs_topic, |_| true).await;
    assert_eq!(json(&prefs), serde_json::json!({"enabled": false}));
    wait_for(&mut watch, controls_topic, |p| json(p)["trading"] == "OFF").await;
    let tasmota = ParticipantId::from("tasmota");
    let enabled = |bridge: &RunningBridge| {
        lock(&bridge.ingest)
            .registry()
            .household(&tasmota)
            .expect("registered")
            .preferences
    };
    wait_until("the bridge applies trading off", || {
        !enabled(&bridge).enabled
    })
    .await;

    set("buy_limit", "0.25");
    let prefs = wait_for(&mut watch, prefs_topic, |_| true).await;
    assert_eq!(
        json(&prefs),
        serde_json::json!({"buy_limit": "0.250000", "enabled": false}),
        "merged into the whole wish"
    );
    wait_until("the bridge applies the buy limit", || {
        enabled(&bridge).buy_limit.to_string() == "0.250000"
    })
    .await;

    // Outside the tariffs [0.08, 0.32]: refused, nothing written.
    set("sell_limit", "0.50");
    let letter = json(&wait_for(&mut watch, "voltmesh/dead-letter", |_| true).await);
    assert_eq!(letter["kind"], "bad_value");
    assert_eq!(letter["participant"], "tasmota");
    set("trading", "maybe");
    let letter = json(&wait_for(&mut watch, "voltmesh/dead-letter", |_| true).await);
    assert_eq!(letter["kind"], "malformed");
    set("colour", "blue");
    let letter = json(&wait_for(&mut watch, "voltmesh/dead-letter", |_| true).await);
    assert_eq!(letter["kind"], "malformed");

    // Still running: the next command works, and the retained wish holds all of it.
    set("sell_limit", "0.15");
    let prefs = wait_for(&mut watch, prefs_topic, |_| true).await;
    assert_eq!(
        json(&prefs),
        serde_json::json!({"buy_limit": "0.250000", "sell_limit": "0.150000", "enabled": false})
    );
    let mut later = TestClient::connect(
        client_options(broker.port, "ha-later-prefs"),
        &[prefs_topic],
    )
    .await;
    let retained = later.next().await;
    assert!(retained.retain);
    assert_eq!(json(&retained.payload), json(&prefs));
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totals_are_read_from_the_ledger_after_a_households_fills() {
    let broker = Mosquitto::start(&BrokerOptions::default());
    let ledger = Ledger::default();
    ledger.set("shelly", 100, 20_000_000, 0);
    let bridge = start(&broker, "bridge-ha-totals", &ledger).await;
    let topic = "voltmesh/households/shelly/totals";
    let mut watch = TestClient::connect(client_options(broker.port, "ha-totals"), &[topic]).await;
    wait_for(&mut watch, topic, |p| json(p)["bought_kwh"] == "0.100").await;

    // The interval clears: the ledger has more, and the bridge publishes the household's fills.
    ledger.set("shelly", 1_100, 220_000_000, 0);
    let interval = voltmesh_engine::IntervalSpec::DEFAULT
        .containing(chrono::DateTime::from_timestamp(1_790_000_000, 0).expect("time"));
    bridge
        .results
        .send(ResultMessage::Fills(HouseholdFills {
            interval_start: interval.start(),
            participant: "shelly".into(),
            clearing_price: Some("0.200000".parse().expect("price")),
            fills: Vec::new(),
            bought_wh: 1_000,
            sold_wh: 0,
            currency: "CHF".parse().expect("currency"),
        }))
        .await
        .expect("bridge takes results");
    let totals = json(&wait_for(&mut watch, topic, |p| json(p)["bought_kwh"] == "1.100").await);
    assert_eq!(totals["paid"], "0.220000000");
    assert_eq!(totals["bought_wh"], 1_100);
    bridge.shutdown().await;
}
