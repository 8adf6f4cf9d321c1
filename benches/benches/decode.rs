//! Meter payload decode throughput, one bench per format (and per DSMR variant), on the real
//! sample payloads in `meter-bridge/tests/fixtures/`. Target: ≥ 200,000 decodes/s per format on
//! one core. An element is one message; for the Shelly formats, whose readings span several
//! messages, the `reading` benches count one element per completed reading.
//!
//! `ingest/native_100_meters` is the bridge's whole per-message core, [`Ingest::handle`]: routing by
//! topic, decode, dedupe, registry lookup and register validation, for native readings from 100
//! registered meters (each reading newer than the meter's last), as the bridge's subscriber task
//! runs it before every ack.
//!
//! `cargo bench -p voltmesh-benches --bench decode`
//!
//! Measured 2026-11-22 on the idle 2-core dev machine (criterion means): DSMR 612k–1.74M/s per
//! telegram (E.ON Hungary slowest, 1.9 KB), Tasmota 642k/s, Shelly Gen2 836k–1.19M/s per message
//! and 472k/s per merged reading, Shelly Gen1 4.8M/s per message, native 3.36M/s; ingest 1.40M/s.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use voltmesh_benches::native_meters_bridge;
use voltmesh_meter_bridge::config::Config;
use voltmesh_meter_bridge::decode::shelly_gen1::{self, Gen1Accumulator};
use voltmesh_meter_bridge::decode::shelly_gen2::{self, Gen2Accumulator};
use voltmesh_meter_bridge::decode::tasmota::{self, TasmotaConfig};
use voltmesh_meter_bridge::decode::{dsmr, native};
use voltmesh_meter_bridge::decode::{Decoder, DecoderConfig, Format};
use voltmesh_meter_bridge::ingest::{Ingest, Outcome};
use voltmesh_meter_bridge::testing::BrokerSection;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../meter-bridge/tests/fixtures/",
            $name
        ))
    };
}

const DSMR: [(&str, &[u8]); 6] = [
    ("v2_2_iskra", fixture!("dsmr_v2_2_iskra_MT382.txt")),
    ("v4_2_kaifa", fixture!("dsmr_v4_2_kaifa.txt")),
    ("v5_iskra", fixture!("dsmr_v5_iskra_MT382.txt")),
    ("be_fluvius", fixture!("dsmr_be_fluvius_v1_7_1.txt")),
    ("at_sagemcom", fixture!("dsmr_at_sagemcom_t210_d_r.txt")),
    ("hu_eon", fixture!("dsmr_v5_eon_hungary.txt")),
];

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default()
}

fn decode(c: &mut Criterion) {
    let t = now();
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(1));

    for (name, telegram) in DSMR {
        assert!(dsmr::decode(telegram, t).is_ok(), "{name} must decode");
        group.bench_function(format!("dsmr/{name}"), |b| {
            b.iter(|| dsmr::decode(black_box(telegram), t))
        });
    }

    let config = TasmotaConfig::default();
    let sensor = fixture!("tasmota_sml_tele_SENSOR_3phase.json");
    assert!(tasmota::decode(sensor, "haus-1", &config).is_ok());
    group.bench_function("tasmota/sensor_3phase", |b| {
        b.iter(|| tasmota::decode(black_box(sensor), "haus-1", &config))
    });
    let named = TasmotaConfig {
        sensor: Some("SML".to_owned()),
        ..TasmotaConfig::default()
    };
    group.bench_function("tasmota/sensor_3phase_named", |b| {
        b.iter(|| tasmota::decode(black_box(sensor), "haus-1", &named))
    });

    let em = fixture!("shelly_pro3em_events_rpc_em0.json");
    let emdata = fixture!("shelly_pro3em_events_rpc_emdata0.json");
    group.bench_function("shelly_gen2/em0", |b| {
        b.iter(|| shelly_gen2::decode(black_box(em)))
    });
    group.bench_function("shelly_gen2/emdata0", |b| {
        b.iter(|| shelly_gen2::decode(black_box(emdata)))
    });
    group.bench_function("shelly_gen2/reading", |b| {
        let mut acc = Gen2Accumulator::new(16);
        b.iter(|| {
            let first = shelly_gen2::decode(black_box(em)).map(|s| acc.push(s));
            let second = shelly_gen2::decode(black_box(emdata)).map(|s| acc.push(s));
            (first, second)
        })
    });

    let topic = "shellies/shellyem-C45BBE6B4A21/emeter/0/total";
    group.bench_function("shelly_gen1/message", |b| {
        b.iter(|| shelly_gen1::decode(black_box(topic), black_box(b"2716455.3")))
    });
    let burst = [
        (
            "shellies/shellyem-C45BBE6B4A21/emeter/0/power",
            &b"1532.48"[..],
        ),
        (
            "shellies/shellyem-C45BBE6B4A21/emeter/0/total",
            b"2716455.3",
        ),
        (
            "shellies/shellyem-C45BBE6B4A21/emeter/0/total_returned",
            b"904112.8",
        ),
    ];
    group.bench_function("shelly_gen1/reading", |b| {
        let mut acc = Gen1Accumulator::new(16);
        b.iter(|| {
            let mut last = None;
            for (topic, payload) in burst {
                last = shelly_gen1::decode(black_box(topic), black_box(payload))
                    .map(|v| acc.push(v, t))
                    .ok();
            }
            last
        })
    });

    let reading = fixture!("voltmesh_native_reading.json");
    group.bench_function("native", |b| b.iter(|| native::decode(black_box(reading))));

    // The dispatcher's own cost on top of a decoder (format sniffed from topic and payload).
    let mut decoder = Decoder::new(DecoderConfig::default());
    let kaifa = fixture!("dsmr_v4_2_kaifa.txt");
    assert_eq!(Format::sniff("p1/kaifa", kaifa), Some(Format::Dsmr));
    group.bench_function("dispatch/dsmr_v4_2_kaifa", |b| {
        b.iter(|| decoder.decode(None, black_box("p1/kaifa"), black_box(kaifa), t))
    });
    group.finish();
}

/// Meters in the ingest bench.
const METERS: u64 = 100;

/// A bridge config with `METERS` households, one meter each, native format on `voltmesh/meters/+`.
fn ingest_config() -> Config {
    native_meters_bridge(BrokerSection::new(1883, "bench"), 64, METERS)
}

/// The `n`-th reading: meter `m<n % METERS>`, 10 s after that meter's previous one.
fn native_reading(n: u64) -> (String, Vec<u8>) {
    let meter = n % METERS;
    let step = n / METERS;
    let ts = DateTime::from_timestamp(1_780_000_000 + 10 * step as i64, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ");
    let payload = format!(
        r#"{{"meter":"m{meter}","ts":"{ts}","import_wh":{},"export_wh":{},"power_w":300}}"#,
        1_000 + step,
        2_000 + step / 2
    );
    (format!("voltmesh/meters/m{meter}"), payload.into_bytes())
}

fn ingest(c: &mut Criterion) {
    let config = ingest_config();
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(1));
    group.bench_function("native_100_meters", |b| {
        b.iter_custom(|iters| {
            let messages: Vec<_> = (0..iters).map(native_reading).collect();
            let received =
                DateTime::from_timestamp(1_780_000_000 + 10 * (iters / METERS) as i64 + 5, 0)
                    .unwrap_or_default();
            let mut ingest = Ingest::new(
                config.ingest.clone(),
                config.registry.clone(),
                config.market,
            );
            let start = Instant::now();
            for (topic, payload) in &messages {
                let outcome = ingest.handle(black_box(topic), black_box(payload), received);
                debug_assert!(matches!(outcome, Outcome::Accepted(_)), "{outcome:?}");
                black_box(outcome);
            }
            let elapsed = start.elapsed();
            assert_eq!(ingest.counters().accepted, iters, "every reading accepted");
            elapsed.max(Duration::from_nanos(1))
        })
    });
    group.finish();
}

criterion_group!(benches, decode, ingest);
criterion_main!(benches);
