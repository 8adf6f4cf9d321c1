//! The bridge acknowledges every QoS 1 message it handled exactly once and in the order the broker
//! sent them (MQTT-4.6.0-2), although it writes its acks in batches; a bridge started afterwards on
//! the same session gets nothing redelivered.
//!
//! Mosquitto logs (`log_type all`) every PUBLISH it sends and every PUBACK it receives, with the
//! packet id, which is what the test compares.

mod mqtt_support;

use mqtt_support::{
    bridge_config, client_options, hh042_reading, wait_until, BrokerOptions, Mosquitto,
    RunningBridge, TestClient,
};
use voltmesh_meter_bridge::runtime::shared::lock;
use voltmesh_meter_bridge::Counters;

const CLIENT: &str = "bridge-acks";
const TOPIC: &str = "voltmesh/meters/hh-042";

/// Packet ids in the broker's log lines that start with `prefix` followed by ` <CLIENT> (`, in
/// log order; `id_field` is the text right before the id (`m` or `Mid: `).
fn packet_ids(log: &str, prefix: &str, id_field: &str) -> Vec<u16> {
    let head = format!("{prefix} {CLIENT} (");
    log.lines()
        .filter_map(|line| {
            let rest = &line[line.find(&head)? + head.len()..];
            let at = rest.find(id_field)? + id_field.len();
            let digits: String = rest[at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .collect()
}

fn counters(bridge: &RunningBridge) -> Counters {
    lock(&bridge.ingest).counters().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_handled_message_is_acknowledged_once_and_in_order() {
    const N: u32 = 3_000;
    let broker = Mosquitto::start(&BrokerOptions::default());
    let config = bridge_config(broker.port, CLIENT, "", "");
    let mut bridge = RunningBridge::start(config.clone(), 16);
    bridge.wait_subscribed(1).await;

    let mut meter = TestClient::connect(client_options(broker.port, "meter-acks"), &[]).await;
    meter
        .publish_all(TOPIC, (0..N).map(hh042_reading).collect())
        .await;
    for i in 0..N {
        let r = bridge.next_reading().await;
        assert_eq!(r.import_wh, 1_000_000 + u64::from(i) * 2, "reading {i}");
    }

    wait_until("the broker received an ack for every message", || {
        packet_ids(&broker.log(), "Received PUBACK from", "Mid: ").len() >= N as usize
    })
    .await;
    let log = broker.log();
    let sent = packet_ids(&log, "Sending PUBLISH to", ", m");
    let acked = packet_ids(&log, "Received PUBACK from", "Mid: ");
    assert_eq!(sent.len(), N as usize, "each message sent once");
    assert_eq!(
        acked, sent,
        "acks in the order the messages were sent, once each"
    );
    let c = counters(&bridge);
    assert_eq!(c.accepted, u64::from(N), "{c:?}");
    bridge.shutdown().await;

    // A fresh bridge (empty ingest state) on the same session: nothing is redelivered, so the
    // first reading it hands on is the next new one.
    let mut again = RunningBridge::start(config, 16);
    again.wait_subscribed(1).await;
    meter.publish_all(TOPIC, vec![hh042_reading(N)]).await;
    let r = again.next_reading().await;
    assert_eq!(r.import_wh, 1_000_000 + u64::from(N) * 2);
    let c = counters(&again);
    assert_eq!((c.accepted, c.duplicates), (1, 0), "{c:?}");
    again.shutdown().await;
}
