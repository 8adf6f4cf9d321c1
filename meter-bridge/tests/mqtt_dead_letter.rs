//! Garbage, a CRC failure, an unknown meter and an oversized payload go to the dead-letter topic
//! with their reason and original topic, and the bridge keeps decoding good readings.

mod mqtt_support;

use mqtt_support::{
    bridge_config, client_options, fixture, mosquitto_pub, wait_until, BrokerOptions, Mosquitto,
    RunningBridge, TempDir, TestClient,
};
use voltmesh_meter_bridge::runtime::shared::lock;
use voltmesh_meter_bridge::{DeadLetter, ErrorKind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_payloads_are_dead_lettered_and_the_bridge_goes_on() {
    let broker = Mosquitto::start(&BrokerOptions::default());
    let mut bridge = RunningBridge::start(bridge_config(broker.port, "bridge-dl", "", ""), 16);
    bridge.wait_subscribed(1).await;
    let mut watcher = TestClient::connect(
        client_options(broker.port, "dl-watch"),
        &["voltmesh/dead-letter"],
    )
    .await;

    let files = TempDir::new("dl");
    let kaifa = fixture("dsmr_v4_2_kaifa.txt");
    let mut corrupt = kaifa.clone();
    let i = corrupt
        .windows(3)
        .position(|w| w == b"581")
        .expect("digits to corrupt");
    corrupt[i] = b'9';
    let bad = [
        (
            "voltmesh/meters/x",
            files.write("garbage", b"\x00\x01not json"),
        ),
        ("dsmr/kaifa", files.write("corrupt", &corrupt)),
        (
            "dsmr/iskra",
            files.write("iskra", fixture("dsmr_v5_iskra_MT382.txt")),
        ),
        (
            "voltmesh/meters/big",
            files.write("big", vec![b'{'; 20_000]),
        ),
    ];
    for (topic, path) in &bad {
        mosquitto_pub(
            broker.port,
            &["-t", topic, "-f", path.to_str().expect("utf-8")],
        );
    }
    let mut letters = Vec::new();
    for _ in 0..bad.len() {
        let msg = watcher.next().await;
        let letter: DeadLetter = serde_json::from_slice(&msg.payload).expect("dead letter JSON");
        letters.push(letter);
    }
    letters.sort_by(|a, b| a.topic.cmp(&b.topic));
    let summary: Vec<(&str, ErrorKind, Option<&str>)> = letters
        .iter()
        .map(|l| {
            (
                l.topic.as_str(),
                l.kind,
                l.meter.as_ref().map(|m| m.as_str()),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "dsmr/iskra",
                ErrorKind::UnknownMeter,
                Some("K8EG004046395507")
            ),
            ("dsmr/kaifa", ErrorKind::CrcMismatch, None),
            ("voltmesh/meters/big", ErrorKind::TooLarge, None),
            ("voltmesh/meters/x", ErrorKind::Malformed, None),
        ]
    );
    let crc = &letters[1];
    assert_eq!(
        crc.payload().expect("base64"),
        corrupt,
        "the original payload travels along"
    );
    assert!(!crc.reason.is_empty());

    // Still working: a good reading after the bad ones.
    let good = files.write("good", fixture("dsmr_v4_2_kaifa.txt"));
    mosquitto_pub(
        broker.port,
        &["-t", "dsmr/kaifa", "-f", good.to_str().expect("utf-8")],
    );
    let reading = bridge.next_reading().await;
    assert_eq!(reading.meter.as_str(), "3960221976967177082151037881335713");
    wait_until("counted", || {
        let ingest = lock(&bridge.ingest);
        let c = ingest.counters();
        c.accepted == 1 && c.errors.values().sum::<u64>() == 4
    })
    .await;
    let errors = lock(&bridge.ingest).counters().errors.clone();
    for kind in [
        ErrorKind::UnknownMeter,
        ErrorKind::CrcMismatch,
        ErrorKind::TooLarge,
        ErrorKind::Malformed,
    ] {
        assert_eq!(errors.get(&kind), Some(&1), "{kind}");
    }
    bridge.shutdown().await;
}
