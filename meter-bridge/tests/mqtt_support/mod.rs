//! Test support for the MQTT tests: the bridge under test, fixtures, and (from
//! [`voltmesh_meter_bridge::testing`]) a real Mosquitto on a free loopback port and small MQTT
//! clients. Every wait is on a condition with a generous timeout.
#![allow(dead_code, unreachable_pub, unused_imports)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use voltmesh_meter_bridge::config::Config;
use voltmesh_meter_bridge::order_sink::{ChannelSink, OrderSink};
use voltmesh_meter_bridge::runtime::mqtt::ResultMessage;
use voltmesh_meter_bridge::runtime::{self as bridge, Io, WallClock};
use voltmesh_meter_bridge::runtime::{LinkStatus, SharedIngest};
use voltmesh_meter_bridge::Reading;
use voltmesh_wire::SignedOrder;

pub use voltmesh_meter_bridge::testing::{
    client_options, free_port, have_mosquitto, mosquitto_pub, BrokerOptions, BrokerTls, Mosquitto,
    TempDir, TestClient, PATIENCE,
};

/// A fixture file's bytes.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = fixture_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fixture file's path.
pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The households the tests register (meters taken from the fixtures).
pub const HOUSEHOLDS: &str = include_str!("../fixtures/households.toml");

/// A bridge config for a broker on `port`: default subscriptions, fast reconnects, `extra` TOML
/// inserted in the `[broker]` table.
pub fn bridge_config(port: u16, client_id: &str, broker_extra: &str, queues: &str) -> Config {
    let text = format!(
        r#"
[broker]
port = {port}
client_id = "{client_id}"
keep_alive_secs = 5
reconnect_min_ms = 50
reconnect_max_ms = 500
{broker_extra}

[[subscription]]
filter = "dsmr/+"
format = "dsmr"

[[subscription]]
filter = "tele/+/SENSOR"
format = "tasmota"

[[subscription]]
filter = "+/events/rpc"
format = "shelly_gen2"

[[subscription]]
filter = "voltmesh/meters/+"
format = "native"

[topics]
dead_letter = "voltmesh/dead-letter"
results_prefix = "voltmesh"

[queues]
{queues}

# Off here: these tests watch the household topics; tests/mqtt_home_assistant.rs turns it on.
[home_assistant]
discovery = false

[ingest]
dedupe_window = 1024
{HOUSEHOLDS}
"#
    );
    Config::from_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// The bridge running in the test's runtime.
#[derive(Debug)]
pub struct RunningBridge {
    /// Its ingest state (counters, registers).
    pub ingest: SharedIngest,
    /// Accepted readings, in order.
    pub readings: mpsc::Receiver<Reading>,
    /// The subscribing connection's status.
    pub status: watch::Receiver<LinkStatus>,
    /// Feed results to publish.
    pub results: mpsc::Sender<ResultMessage>,
    /// Orders the planner submitted.
    pub orders: mpsc::Receiver<SignedOrder>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RunningBridge {
    /// Starts `config` with a readings queue of `readings_capacity`.
    pub fn start(config: Config, readings_capacity: usize) -> RunningBridge {
        let (sink, orders) = ChannelSink::new(4);
        let mut bridge = RunningBridge::start_with_sink(config, readings_capacity, sink);
        bridge.orders = orders;
        bridge
    }

    /// Starts `config` with orders going to `sink` ([`RunningBridge::orders`] then stays empty).
    pub fn start_with_sink<S: OrderSink>(
        config: Config,
        readings_capacity: usize,
        sink: S,
    ) -> RunningBridge {
        let ingest = bridge::new_ingest(&config);
        let (readings_tx, readings) = mpsc::channel(readings_capacity);
        let (status_tx, status) = watch::channel(LinkStatus::default());
        let (results, results_rx) = mpsc::channel(16);
        let (_, orders) = mpsc::channel(1);
        let (stop, stop_rx) = oneshot::channel::<()>();
        let io = Io {
            orders: sink,
            signing_key: SigningKey::from_bytes(&[42; 32]),
            clock: WallClock::shared(),
            results: Some(results_rx),
            readings: Some(readings_tx),
            status: status_tx,
            reload: None,
        };
        let shared = ingest.clone();
        let task = tokio::spawn(async move {
            bridge::run(config, shared, io, async {
                let _ = stop_rx.await;
            })
            .await
            .expect("bridge starts");
        });
        RunningBridge {
            ingest,
            readings,
            status,
            results,
            orders,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Waits until connected and subscribed, at least `connects` times in total.
    pub async fn wait_subscribed(&mut self, connects: u64) {
        let waited = tokio::time::timeout(
            PATIENCE,
            self.status
                .wait_for(|s| s.connected && s.subscribed && s.connects >= connects),
        )
        .await;
        let ok = waited.is_ok_and(|r| r.is_ok());
        assert!(ok, "bridge not subscribed: {:?}", *self.status.borrow());
    }

    /// The next accepted reading.
    pub async fn next_reading(&mut self) -> Reading {
        tokio::time::timeout(PATIENCE, self.readings.recv())
            .await
            .expect("a reading in time")
            .expect("bridge running")
    }

    /// Stops the bridge and waits for all its tasks.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(PATIENCE, task)
                .await
                .expect("bridge stops in time")
                .expect("bridge task");
        }
    }
}

/// Polls `cond` every 10 ms until it holds, failing after [`PATIENCE`].
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The `i`-th native reading of meter `hh-042`: one a minute from 2026-06-14, import rising
/// 2 Wh and export 1 Wh a reading.
pub fn hh042_reading(i: u32) -> Vec<u8> {
    let start = chrono::DateTime::parse_from_rfc3339("2026-06-14T00:00:00Z")
        .expect("time")
        .with_timezone(&chrono::Utc);
    let ts = start + chrono::TimeDelta::minutes(i64::from(i));
    format!(
        r#"{{"meter":"hh-042","ts":"{}","import_wh":{},"export_wh":{},"power_w":120}}"#,
        ts.format("%Y-%m-%dT%H:%M:%SZ"),
        1_000_000 + u64::from(i) * 2,
        500_000 + u64::from(i),
    )
    .into_bytes()
}
