//! A broker restart mid-stream loses no QoS 1 reading and counts none twice.
//!
//! The readings queue is tiny and the test does not read it until after the restart, so when the
//! broker goes down the bridge holds messages it has received but not acknowledged (one recorded
//! and waiting for the queue, more read from the connection and not yet handled) while the rest
//! wait in the broker's persistent session. Once the test reads again, the bridge finds its
//! connection gone and reconnects; the broker redelivers the unacknowledged messages, and the
//! one the bridge had already recorded is recognised as a redelivery.

mod mqtt_support;

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};
use mqtt_support::{
    bridge_config, client_options, hh042_reading, wait_until, BrokerOptions, Mosquitto,
    RunningBridge, TestClient,
};
use voltmesh_meter_bridge::runtime::shared::lock;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_loses_nothing_and_counts_nothing_twice() {
    const BEFORE: u32 = 400;
    const AFTER: u32 = 200;
    let mut broker = Mosquitto::start(&BrokerOptions {
        persistence: true,
        ..BrokerOptions::default()
    });
    let config = bridge_config(broker.port, "bridge-restart", "", "");
    let mut bridge = RunningBridge::start(config, 4);
    bridge.wait_subscribed(1).await;

    let mut meter = TestClient::connect(client_options(broker.port, "meter-1"), &[]).await;
    meter
        .publish_all(
            "voltmesh/meters/hh-042",
            (0..BEFORE).map(hh042_reading).collect(),
        )
        .await;
    // The bridge is now stuck handing readings on: 4 queued + 1 in hand, the rest unacknowledged.
    wait_until("bridge holds readings", || {
        lock(&bridge.ingest).counters().accepted >= 5
    })
    .await;
    drop(meter);

    broker.restart();
    let mut seen = BTreeSet::new();
    drain(&mut bridge, &mut broker, &mut seen, BEFORE as usize).await;
    let resumed = tokio::time::timeout(
        mqtt_support::PATIENCE,
        bridge
            .status
            .wait_for(|s| s.connected && s.subscribed && s.connects >= 2),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    if !resumed {
        let log = broker.log();
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        panic!(
            "not resumed: status {:?}; counters {:?}; broker log (newest first):\n{}",
            *bridge.status.borrow(),
            lock(&bridge.ingest).counters(),
            tail.join("\n")
        );
    }
    let mut meter = TestClient::connect(client_options(broker.port, "meter-2"), &[]).await;
    meter
        .publish_all(
            "voltmesh/meters/hh-042",
            (BEFORE..BEFORE + AFTER).map(hh042_reading).collect(),
        )
        .await;
    drain(
        &mut bridge,
        &mut broker,
        &mut seen,
        (BEFORE + AFTER) as usize,
    )
    .await;
    let first = DateTime::parse_from_rfc3339("2026-06-14T00:00:00Z")
        .expect("time")
        .with_timezone(&Utc);
    let expected: BTreeSet<_> = (0..BEFORE + AFTER)
        .map(|i| first + TimeDelta::minutes(i64::from(i)))
        .collect();
    assert_eq!(seen, expected);
    let c = lock(&bridge.ingest).counters().clone();
    assert_eq!(c.accepted, u64::from(BEFORE + AFTER), "{c:?}");
    assert!(c.errors.is_empty(), "{c:?}");
    // The reading in hand at the restart was recorded, and its ack never reached the broker.
    assert!(c.duplicates >= 1, "the broker redelivered: {c:?}");
    assert!(
        bridge.status.borrow().connects >= 2,
        "the bridge reconnected"
    );
    bridge.shutdown().await;
}

/// Reads handed-on readings into `seen` until it holds `total`, failing on a reading handed on
/// twice or when none comes for [`mqtt_support::PATIENCE`].
async fn drain(
    bridge: &mut RunningBridge,
    broker: &mut Mosquitto,
    seen: &mut BTreeSet<DateTime<Utc>>,
    total: usize,
) {
    while seen.len() < total {
        let next = tokio::time::timeout(mqtt_support::PATIENCE, bridge.readings.recv()).await;
        let Ok(Some(r)) = next else {
            broker.stop();
            let log = broker.log();
            let tail: Vec<&str> = log.lines().rev().take(120).collect();
            panic!(
                "only {} of {total} readings; counters {:?}; status {:?}; broker log (newest first):\n{}",
                seen.len(),
                lock(&bridge.ingest).counters(),
                *bridge.status.borrow(),
                tail.join("\n")
            );
        };
        assert!(
            seen.insert(r.timestamp),
            "reading {} handed on twice",
            r.timestamp
        );
    }
}
