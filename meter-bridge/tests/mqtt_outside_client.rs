//! An outside client (`mosquitto_pub`) publishes real DSMR, Tasmota, Shelly and native payloads to
//! a real Mosquitto; the bridge decodes each into the reading the pure decoder gives.

mod mqtt_support;

use std::collections::BTreeMap;

use mqtt_support::{
    bridge_config, fixture, fixture_path, mosquitto_pub, wait_until, BrokerOptions, Mosquitto,
    RunningBridge,
};
use voltmesh_meter_bridge::runtime::shared::lock;
use voltmesh_meter_bridge::runtime::{Clock, WallClock};
use voltmesh_meter_bridge::{Ingest, Outcome, Reading};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_pub_payloads_become_readings() {
    let broker = Mosquitto::start(&BrokerOptions::default());
    let config = bridge_config(broker.port, "bridge-outside", "", "");
    let mut expected_ingest = Ingest::new(
        config.ingest.clone(),
        config.registry.clone(),
        config.market,
    );
    let mut bridge = RunningBridge::start(config, 16);
    bridge.wait_subscribed(1).await;

    let messages = [
        ("dsmr/kaifa", "dsmr_v4_2_kaifa.txt"),
        ("tele/haus-1/SENSOR", "tasmota_sml_tele_SENSOR_1phase.json"),
        (
            "shellypro3em-1234567890ab/events/rpc",
            "shelly_pro3em_events_rpc_em0.json",
        ),
        (
            "shellypro3em-1234567890ab/events/rpc",
            "shelly_pro3em_events_rpc_emdata0.json",
        ),
        ("voltmesh/meters/hh-042", "voltmesh_native_reading.json"),
    ];
    let mut expected: BTreeMap<String, Reading> = BTreeMap::new();
    let now = WallClock.now();
    for (topic, file) in messages {
        let path = fixture_path(file);
        mosquitto_pub(
            broker.port,
            &["-t", topic, "-f", path.to_str().expect("utf-8 path")],
        );
        if let Outcome::Accepted(r) = expected_ingest.handle(topic, &fixture(file), now) {
            expected.insert(r.meter.to_string(), r);
        }
    }
    assert_eq!(expected.len(), 4, "four complete readings expected");

    let mut got = BTreeMap::new();
    while got.len() < expected.len() {
        let r = bridge.next_reading().await;
        assert!(
            got.insert(r.meter.to_string(), r).is_none(),
            "a reading arrived twice"
        );
    }
    assert_eq!(got, expected);
    wait_until("counters settle", || {
        let ingest = lock(&bridge.ingest);
        let c = ingest.counters();
        c.accepted == 4 && c.pending == 1
    })
    .await;
    assert!(lock(&bridge.ingest).counters().errors.is_empty());
    bridge.shutdown().await;
}
