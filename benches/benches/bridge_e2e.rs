//! End-to-end readings/s from Mosquitto through the bridge at QoS 1, side by side with a bare
//! rumqttc subscriber on the same broker.
//!
//! Consumers:
//! * `bare_rumqttc`: an `AsyncClient` polling its event loop, auto-acks, counting publishes;
//! * `bridge`: [`bridge::run`] with manual acks, decoding, dedupe, register validation and the
//!   hand-off of every accepted reading to a bounded queue before its ack.
//!
//! Modes, `BATCH` native-JSON readings (QoS 1) per iteration, each consumer on its own topic and
//! persistent session:
//! * `bridge_e2e_live`: the consumer is connected; the clock runs while a meter client publishes
//!   the batch and until the consumer has it all (what a deployment sees; the issue's 25–40k/s);
//! * `bridge_e2e_drain`: the batch was queued while the consumer was offline; the clock runs from
//!   connect until it has drained it (the consumer's own ceiling).
//!
//! The bench starts its own `mosquitto` on a free loopback port and skips (with a message) when
//! the binary is missing. `VOLTMESH_BENCH_MOSQUITTO_INFLIGHT=<n>` sets the broker's
//! `max_inflight_messages` (its default, 20, bounds a consumer that acks after handling by its ack
//! latency; `0` lifts the window). At the end it prints, per mode, both rates and the bridge's share of the
//! bare rate (target ≥ 90 % live): over the criterion runs, and as the median of paired rounds
//! that alternate the two consumers (robust against the machine's load changing between runs).
//!
//! `cargo bench -p voltmesh-benches --bench bridge_e2e`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ed25519_dalek::SigningKey;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot, watch};
use voltmesh_benches::native_meters_bridge;
use voltmesh_meter_bridge::config::Config;
use voltmesh_meter_bridge::order_sink::ChannelSink;
use voltmesh_meter_bridge::runtime::{self as bridge, Io, WallClock};
use voltmesh_meter_bridge::runtime::{LinkStatus, SharedIngest};
use voltmesh_meter_bridge::testing::{have_mosquitto, BrokerOptions, BrokerSection, Mosquitto};
use voltmesh_meter_bridge::Reading;
use voltmesh_wire::SignedOrder;

/// Readings per iteration.
const BATCH: u64 = 20_000;
/// Meters the readings are spread over.
const METERS: u64 = 100;
/// Topics of the two consumers (separate, so neither's session queues the other's batches).
const BARE_TOPIC: &str = "bench/bare";
const BRIDGE_TOPIC: &str = "voltmesh/meters/bench";

fn options(port: u16, id: &str) -> MqttOptions {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30))
        .set_clean_session(false)
        .set_max_packet_size(256 * 1024, 256 * 1024);
    o
}

/// The `n`-th reading overall: meter `m<n % METERS>`, one minute apart per meter.
fn reading(n: u64) -> Vec<u8> {
    let meter = n % METERS;
    let step = n / METERS;
    let ts = chrono::DateTime::from_timestamp(1_600_000_000 + 60 * step as i64, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ");
    format!(
        r#"{{"meter":"m{meter}","ts":"{ts}","import_wh":{},"export_wh":{},"power_w":300}}"#,
        1_000 + 5 * step,
        2_000 + 3 * step
    )
    .into_bytes()
}

/// Publishes readings `from..from + BATCH` at QoS 1 and waits for every PUBACK.
async fn queue_batch(port: u16, topic: &'static str, from: u64) {
    let mut o = options(port, "bench-meter");
    o.set_clean_session(true).set_inflight(1000);
    let (client, mut eventloop) = AsyncClient::new(o, 1000);
    let publisher = tokio::spawn(async move {
        for n in from..from + BATCH {
            if client
                .publish(topic, QoS::AtLeastOnce, false, reading(n))
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let mut acked = 0;
    while acked < BATCH {
        if let Ok(Event::Incoming(Packet::PubAck(_))) = eventloop.poll().await {
            acked += 1;
        }
    }
    let _ = publisher.await;
}

/// A bare subscriber: connects its persistent session and counts `BATCH` publishes. With `live`
/// (readings `from..`), the clock starts once connected and the batch is published meanwhile;
/// otherwise the batch was queued before and the clock starts at connect.
async fn bare_consume(port: u16, live: Option<u64>) -> Duration {
    let mut start = Instant::now();
    let (client, mut eventloop) = AsyncClient::new(options(port, "bench-bare"), 1000);
    let mut publisher = None;
    if let Some(from) = live {
        loop {
            if let Ok(Event::Incoming(Packet::ConnAck(_))) = eventloop.poll().await {
                break;
            }
        }
        start = Instant::now();
        publisher = Some(tokio::spawn(queue_batch(port, BARE_TOPIC, from)));
    }
    let mut got = 0;
    while got < BATCH {
        if let Ok(Event::Incoming(Packet::Publish(_))) = eventloop.poll().await {
            got += 1;
        }
    }
    let elapsed = start.elapsed();
    if let Some(p) = publisher {
        let _ = p.await;
    }
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while eventloop.poll().await.is_ok() {}
    })
    .await;
    elapsed
}

fn bridge_config(port: u16) -> Config {
    native_meters_bridge(
        BrokerSection::new(port, "bench-bridge").keep_alive_secs(30),
        1024,
        METERS,
    )
}

/// Runs the bridge until it has handed on `BATCH` readings; returns the time from start (or, with
/// `live`, from being connected while readings `from..` are published meanwhile).
async fn bridge_consume(config: Config, ingest: SharedIngest, live: Option<u64>) -> Duration {
    let ingest_view = ingest.clone();
    let port = config.broker.port;
    let mut start = Instant::now();
    let (readings_tx, mut readings) = mpsc::channel(1024);
    let mut running = BenchBridge::spawn(config, ingest, Some(readings_tx));
    let mut publisher = None;
    if let Some(from) = live {
        let _ = running
            .status
            .wait_for(|s| s.connected && s.subscribed)
            .await;
        start = Instant::now();
        publisher = Some(tokio::spawn(queue_batch(port, BRIDGE_TOPIC, from)));
    }
    let mut got = 0;
    while got < BATCH {
        match tokio::time::timeout(Duration::from_secs(60), readings.recv()).await {
            Ok(Some(_)) => got += 1,
            Ok(None) => break,
            Err(_) => {
                let counters = voltmesh_meter_bridge::runtime::shared::lock(&ingest_view)
                    .counters()
                    .clone();
                panic!("bridge stalled after {got} readings: {counters:?}");
            }
        }
    }
    let elapsed = start.elapsed();
    if let Some(p) = publisher {
        let _ = p.await;
    }
    drop(readings);
    running.stop().await;
    elapsed
}

/// Paired rounds per mode after the criterion runs (see `e2e`).
const PAIRS: usize = 10;

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// (messages, time) for live bare, live bridge, drain bare, drain bridge.
static TOTALS: Mutex<[(u64, Duration); 4]> = Mutex::new([(0, Duration::ZERO); 4]);

fn record(which: usize, n: u64, d: Duration) {
    if let Ok(mut t) = TOTALS.lock() {
        t[which].0 += n;
        t[which].1 += d;
    }
}

fn e2e(c: &mut Criterion) {
    if !have_mosquitto() {
        eprintln!("bridge_e2e: skipped, `mosquitto` is not installed (apt-get install mosquitto)");
        return;
    }
    // Mosquitto's in-flight window per client (default 20; 0 = none), for both consumers.
    let broker = Mosquitto::start(&BrokerOptions {
        log_all: false,
        ..BrokerOptions::default().inflight_from_env("VOLTMESH_BENCH_MOSQUITTO_INFLIGHT")
    });
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("runtime: {e}"),
    };
    let port = broker.port;
    let config = bridge_config(port);
    let ingest = bridge::new_ingest(&config);
    let next = AtomicU64::new(0);
    // Create both persistent sessions (subscribed) before queueing for them.
    rt.block_on(async {
        let (client, mut eventloop) = AsyncClient::new(options(port, "bench-bare"), 10);
        let _ = client.subscribe(BARE_TOPIC, QoS::AtLeastOnce).await;
        loop {
            if let Ok(Event::Incoming(Packet::SubAck(_))) = eventloop.poll().await {
                break;
            }
        }
        let _ = client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while eventloop.poll().await.is_ok() {}
        })
        .await;
    });
    subscribe_bridge(&rt, &config, &ingest);

    let round = |live: bool, through_bridge: bool| -> Duration {
        let from = next.fetch_add(BATCH, Ordering::Relaxed);
        match (live, through_bridge) {
            (true, false) => rt.block_on(bare_consume(port, Some(from))),
            (true, true) => rt.block_on(bridge_consume(config.clone(), ingest.clone(), Some(from))),
            (false, false) => {
                rt.block_on(queue_batch(port, BARE_TOPIC, from));
                rt.block_on(bare_consume(port, None))
            }
            (false, true) => {
                rt.block_on(queue_batch(port, BRIDGE_TOPIC, from));
                rt.block_on(bridge_consume(config.clone(), ingest.clone(), None))
            }
        }
    };

    for (mode, live) in [("live", true), ("drain", false)] {
        let mut group = c.benchmark_group(format!("bridge_e2e_{mode}"));
        group
            .throughput(Throughput::Elements(BATCH))
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(15));
        let slot = if live { 0 } else { 2 };
        for (name, through_bridge) in [("bare_rumqttc", false), ("bridge", true)] {
            group.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let d = round(live, through_bridge);
                        record(slot + usize::from(through_bridge), BATCH, d);
                        total += d;
                    }
                    total
                });
            });
        }
        group.finish();
    }
    let totals = TOTALS.lock().map(|t| *t).unwrap_or_default();
    let rate = |n: u64, d: Duration| n as f64 / d.as_secs_f64().max(1e-9);
    for (mode, live, i) in [("live", true, 0), ("drain", false, 2)] {
        if totals[i].0 == 0 || totals[i + 1].0 == 0 {
            continue; // filtered out on the command line
        }
        let (bare, bridge) = (
            rate(totals[i].0, totals[i].1),
            rate(totals[i + 1].0, totals[i + 1].1),
        );
        eprintln!(
            "bridge_e2e {mode}, criterion runs: bare rumqttc {bare:.0} msg/s, bridge {bridge:.0} readings/s = {:.1} % of bare",
            100.0 * bridge / bare.max(1e-9)
        );
        // The criterion runs measure one consumer after the other, so a change in the machine's
        // load between them skews the share. Paired rounds alternate the two (and which goes
        // first) and report the median of the per-pair shares.
        let mut shares = Vec::with_capacity(PAIRS);
        let (mut bares, mut bridges) = (Vec::new(), Vec::new());
        for k in 0..PAIRS {
            let (b, r) = if k % 2 == 0 {
                let b = round(live, false);
                (b, round(live, true))
            } else {
                let r = round(live, true);
                (round(live, false), r)
            };
            let (b, r) = (rate(BATCH, b), rate(BATCH, r));
            bares.push(b);
            bridges.push(r);
            shares.push(100.0 * r / b.max(1e-9));
        }
        let (lo, hi) = (
            shares.iter().copied().fold(f64::INFINITY, f64::min),
            shares.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        );
        eprintln!(
            "bridge_e2e {mode}, {PAIRS} paired rounds: bare rumqttc {:.0} msg/s, bridge {:.0} readings/s (medians); bridge/bare median {:.1} % (range {lo:.1}–{hi:.1} %)",
            median(&mut bares),
            median(&mut bridges),
            median(&mut shares),
        );
    }
    drop(broker);
}

/// Runs the bridge once until it is subscribed, so its session exists before messages queue.
fn subscribe_bridge(rt: &Runtime, config: &Config, ingest: &SharedIngest) {
    rt.block_on(async {
        let mut running = BenchBridge::spawn(config.clone(), ingest.clone(), None);
        let _ = running.status.wait_for(|s| s.subscribed).await;
        running.stop().await;
    });
}

/// [`bridge::run`] on the bench's runtime, with the order channel's receiving end kept
/// open until it stops.
struct BenchBridge {
    status: watch::Receiver<LinkStatus>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    _orders: mpsc::Receiver<SignedOrder>,
}

impl BenchBridge {
    /// Starts the bridge, handing accepted readings to `readings` if given.
    fn spawn(
        config: Config,
        ingest: SharedIngest,
        readings: Option<mpsc::Sender<Reading>>,
    ) -> Self {
        let (status, status_rx) = watch::channel(LinkStatus::default());
        let (sink, orders) = ChannelSink::new(1);
        let (stop, stop_rx) = oneshot::channel::<()>();
        let io = Io {
            orders: sink,
            signing_key: SigningKey::from_bytes(&[1; 32]),
            clock: WallClock::shared(),
            results: None,
            readings,
            status,
            reload: None,
        };
        let task = tokio::spawn(async move {
            let _ = bridge::run(config, ingest, io, async {
                let _ = stop_rx.await;
            })
            .await;
        });
        BenchBridge {
            status: status_rx,
            stop,
            task,
            _orders: orders,
        }
    }

    /// Stops the bridge and waits for it.
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

criterion_group!(benches, e2e);
criterion_main!(benches);
