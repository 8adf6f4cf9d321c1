//! A `voltmesh bridge` process writes its health, decode errors by kind and meter registers to a
//! real time-series database on loopback (Debian's `victoria-metrics`), fed by a Mosquitto broker
//! and `mosquitto_pub`: three good readings, one payload that does not decode and one reading from
//! a meter nobody registered. No node runs: orders wait, the metrics do not.

#[allow(dead_code, unused_imports)]
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DurationRound, TimeDelta, Utc};
use support::Proc;
use voltmesh::testing::cluster::NEIGHBORHOOD;
use voltmesh_meter_bridge::testing::{
    mosquitto_pub, BridgeToml, BrokerOptions, BrokerSection, HouseholdEntry, Mosquitto,
};
use voltmesh_metrics::testing::{free_port, Series, VictoriaMetrics};

fn start_bridge(dir: &Path, broker: u16, influx: &str) -> (Proc, PathBuf) {
    // The node API points at a port nothing listens on.
    let config =
        BridgeToml::new(BrokerSection::new(broker, "metrics-bridge-test").reconnect_ms(50, 500))
            .subscribe("voltmesh/meters/+", "native")
            .node(
                &format!("http://127.0.0.1:{}", free_port()),
                NEIGHBORHOOD,
                "bridge.key",
            )
            .household(HouseholdEntry::new("h1", "m-h1", "0.30", "0.10"));
    support::start_bridge(
        dir,
        &config,
        &[
            ("VOLTMESH_INFLUX_URL", Some(influx)),
            ("VOLTMESH_INFLUX_TOKEN", None),
        ],
    )
}

fn publish(port: u16, meter: &str, payload: &str) {
    mosquitto_pub(
        port,
        &["-t", &format!("voltmesh/meters/{meter}"), "-m", payload],
    );
}

/// The value of the newest sample of the one series named `name` with tag `key=value`.
fn last(series: &[Series], name: &str, key: &str, value: &str) -> Option<(i64, f64)> {
    series
        .iter()
        .find(|s| s.name() == name && s.tag(key) == Some(value))
        .and_then(|s| s.samples().last().copied())
}

#[tokio::test]
async fn the_bridge_writes_its_health_errors_by_kind_and_meter_registers() {
    let vm = VictoriaMetrics::start(free_port()).await;
    let dir = support::temp_dir("metrics-bridge");
    let mosquitto = Mosquitto::start(&BrokerOptions::default());
    let port = mosquitto.port;
    let (mut bridge, log) = start_bridge(&dir, port, &vm.base_url());
    // Wait until the bridge has subscribed.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("subscribed")
    {
        assert!(
            Instant::now() < deadline,
            "the bridge did not subscribe:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let t0 = (Utc::now() - TimeDelta::seconds(30))
        .duration_trunc(TimeDelta::seconds(1))
        .expect("truncate");
    for i in 0..3_i64 {
        let ts = (t0 + TimeDelta::seconds(i)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let import = 1_000 + 10 * i;
        publish(
            port,
            "m-h1",
            &format!(
                r#"{{"meter":"m-h1","ts":"{ts}","import_wh":{import},"export_wh":7,"power_w":-250}}"#
            ),
        );
    }
    publish(port, "m-h1", "this is not json");
    let ts = t0.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    publish(
        port,
        "m-x",
        &format!(r#"{{"meter":"m-x","ts":"{ts}","import_wh":1,"export_wh":1,"power_w":0}}"#),
    );
    // The next health tick (every 10 s) sees all five; then a clean stop writes once more.
    vm.wait_for_series("bridge_.*", 60, |health| {
        last(
            health,
            "bridge_dead_letters_total",
            "node",
            "metrics-bridge-test",
        )
        .is_some_and(|(_, v)| v >= 2.0)
    })
    .await;
    assert!(
        bridge.interrupt().is_some_and(|s| s.success()),
        "the bridge stops cleanly on Ctrl-C"
    );

    let health = vm.export("bridge_.*").await;
    for s in &health {
        assert_eq!(s.tag("neighborhood"), Some(NEIGHBORHOOD), "{:?}", s.metric);
        assert_eq!(s.tag("node"), Some("metrics-bridge-test"), "{:?}", s.metric);
    }
    let node = |name: &str| last(&health, name, "node", "metrics-bridge-test").map(|x| x.1);
    assert_eq!(node("bridge_readings_total"), Some(3.0));
    assert_eq!(
        node("bridge_decode_errors_total"),
        Some(1.0),
        "only the bad payload"
    );
    assert_eq!(node("bridge_dead_letters_total"), Some(2.0));
    assert_eq!(
        node("bridge_orders_total"),
        Some(0.0),
        "no node took anything"
    );
    assert!(node("bridge_queue_depth").is_some());
    let kinds =
        |kind: &str| last(&health, "bridge_decode_error_errors_total", "kind", kind).map(|x| x.1);
    assert_eq!(kinds("malformed"), Some(1.0));
    assert_eq!(kinds("unknown_meter"), Some(1.0));

    // The meter's latest registers, at the meter's own time.
    let readings = vm.export("meter_reading_.*").await;
    let newest = t0 + TimeDelta::seconds(2);
    assert_eq!(
        last(&readings, "meter_reading_import_wh", "household", "h1"),
        Some((newest.timestamp_millis(), 1_020.0))
    );
    assert_eq!(
        last(&readings, "meter_reading_power_w", "household", "h1"),
        Some((newest.timestamp_millis(), -250.0))
    );

    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.lines()
            .any(|l| l.contains("metrics writer stopped") && l.contains("dropped")),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
