//! The writer against a real time-series database on loopback: Debian's `victoria-metrics`, which
//! accepts the InfluxDB v2 write API. Each test starts its own server on a free port.

mod common;

use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use common::eventually;
use voltmesh_metrics::testing::{free_port, VictoriaMetrics};
use voltmesh_metrics::{
    Clearing, GridState, HouseholdId, MechanismTag, MeterReading, MetricsConfig, MetricsHandle,
    MetricsWriter, Neighborhood, Point, WriterStats,
};

fn neighborhood() -> Neighborhood {
    Neighborhood::new("nb-test").expect("id")
}

/// A recent interval start (the database keeps a month by default).
fn start() -> DateTime<Utc> {
    (DateTime::<Utc>::from(std::time::SystemTime::now()) - TimeDelta::hours(6))
        .duration_trunc(TimeDelta::minutes(15))
        .expect("truncate")
}

fn clearing(time: DateTime<Utc>, volume_wh: i64, price: Option<f64>) -> Clearing {
    Clearing {
        time,
        neighborhood: neighborhood(),
        mechanism: MechanismTag::Uniform,
        price,
        price_lo: price.map(|p| p - 0.01),
        price_hi: price.map(|p| p + 0.01),
        volume_wh,
        bid_wh: 2 * volume_wh,
        ask_wh: volume_wh + 5,
        local_share: Some(0.5),
        orders: 4,
        trades: 2,
        feed_in: 0.08,
        retail: 0.32,
    }
}

fn fast(url: String) -> MetricsConfig {
    MetricsConfig {
        flush_interval: Duration::from_millis(20),
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        ..MetricsConfig::new(url, "voltmesh", "voltmesh", "")
    }
}

/// Awaits the writer task's end (every handle must be gone), failing instead of hanging.
async fn finish(writer: tokio::task::JoinHandle<WriterStats>) -> WriterStats {
    tokio::time::timeout(Duration::from_secs(120), writer)
        .await
        .expect("the writer task ends once every handle is dropped")
        .expect("the writer task does not panic")
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

#[tokio::test]
async fn points_written_through_the_writer_read_back_with_tags_and_fields() {
    let vm = VictoriaMetrics::start(free_port()).await;
    let (metrics, writer) = MetricsWriter::spawn(fast(vm.base_url())).expect("valid config");
    assert!(metrics.is_enabled());

    let t0 = start();
    let t1 = t0 + TimeDelta::minutes(15);
    metrics.record(clearing(t0, 1_000, Some(0.21)));
    metrics.record(clearing(t1, 2_500, None));
    metrics.record(MeterReading {
        time: t0,
        neighborhood: neighborhood(),
        household: HouseholdId::new("hh-1").expect("id"),
        import_wh: 123_456,
        export_wh: 7_890,
        power_w: None,
    });
    metrics.record(GridState {
        time: t0,
        neighborhood: neighborhood(),
        voltage_min_pu: 0.97,
        voltage_max_pu: 1.04,
        line_loading_max_pct: 61.5,
        trafo_loading_max_pct: 48.0,
        ext_grid_kw: -12.5,
        undervoltage_buses: 0,
        overvoltage_buses: 1,
        overloaded_lines: 0,
        overloaded_trafos: 0,
    });
    drop(metrics);
    let stats = finish(writer).await;
    assert_eq!(stats.recorded, 4);
    assert_eq!(stats.written, 4, "{stats:?}");
    assert_eq!(stats.dropped(), 0, "{stats:?}");
    assert!(stats.batches >= 1);

    // Every clearing field of the schema arrives as `clearing_<field>` with the tags as labels.
    let series = vm.export("clearing_.*").await;
    let names: Vec<&str> = series.iter().map(|s| s.name()).collect();
    for field in Clearing::SPEC.fields {
        assert!(
            names.contains(&format!("clearing_{}", field.name).as_str()),
            "missing clearing_{} in {names:?}",
            field.name
        );
    }
    for s in &series {
        assert_eq!(
            s.metric.get("neighborhood").map(String::as_str),
            Some("nb-test")
        );
        assert_eq!(
            s.metric.get("mechanism").map(String::as_str),
            Some("uniform")
        );
    }
    let by_name = |n: &str| {
        series
            .iter()
            .find(|s| s.name() == n)
            .unwrap_or_else(|| panic!("{n}"))
            .samples()
    };
    assert_eq!(
        by_name("clearing_volume_wh"),
        vec![(ms(t0), 1_000.0), (ms(t1), 2_500.0)]
    );
    // The second interval had no price: the field is absent there, not zero.
    assert_eq!(by_name("clearing_price"), vec![(ms(t0), 0.21)]);
    assert_eq!(
        by_name("clearing_retail"),
        vec![(ms(t0), 0.32), (ms(t1), 0.32)]
    );

    let readings = vm.export("meter_reading_.*").await;
    let names: Vec<&str> = readings.iter().map(|s| s.name()).collect();
    assert_eq!(
        names,
        vec!["meter_reading_export_wh", "meter_reading_import_wh"]
    );
    assert_eq!(
        readings[1].metric.get("household").map(String::as_str),
        Some("hh-1")
    );
    assert_eq!(readings[1].samples(), vec![(ms(t0), 123_456.0)]);

    let grid = vm.export("grid_ext_grid_kw").await;
    assert_eq!(grid.len(), 1);
    assert_eq!(grid[0].samples(), vec![(ms(t0), -12.5)]);
}

#[tokio::test]
async fn database_down_at_start_queues_up_to_the_bound_then_writes_when_it_returns() {
    let port = free_port();
    let config = MetricsConfig {
        batch_size: 10,
        max_buffered: 30,
        ..fast(format!("http://127.0.0.1:{port}"))
    };
    let (metrics, writer) = MetricsWriter::spawn(config).expect("valid config");

    // 45 intervals of one series while nothing listens on the port; the 15 oldest overflow.
    let t0 = start() - TimeDelta::hours(12);
    let times: Vec<DateTime<Utc>> = (0..45).map(|i| t0 + TimeDelta::minutes(15 * i)).collect();
    for (i, t) in times.iter().enumerate() {
        metrics.record(clearing(
            *t,
            100 + i64::try_from(i).expect("small"),
            Some(0.2),
        ));
    }
    eventually(30, "a failed write and a full buffer", || {
        let s = metrics.stats();
        s.retries >= 1 && s.buffered == 30
    })
    .await;
    let stats = metrics.stats();
    assert_eq!(stats.written, 0);
    assert_eq!(stats.dropped_overflow, 15, "{stats:?}");
    assert!(stats.last_error.is_some());

    // The database comes up on that port: the buffered points arrive.
    let vm = VictoriaMetrics::start(port).await;
    eventually(60, "buffered points written", || {
        metrics.stats().written == 30
    })
    .await;
    drop(metrics);
    let stats = finish(writer).await;
    assert_eq!(stats.recorded, 45);
    assert_eq!(stats.written + stats.dropped(), 45, "{stats:?}");
    assert_eq!(stats.buffered, 0);

    let series = vm.export("clearing_volume_wh").await;
    assert_eq!(series.len(), 1);
    let expected: Vec<(i64, f64)> = times[15..]
        .iter()
        .enumerate()
        .map(|(i, t)| (ms(*t), 115.0 + f64::from(u8::try_from(i).expect("small"))))
        .collect();
    assert_eq!(
        series[0].samples(),
        expected,
        "the newest 30 points, in order"
    );
}

#[tokio::test]
async fn a_full_channel_and_a_dead_database_at_shutdown_are_counted_not_blocking() {
    let port = free_port();
    let config = MetricsConfig {
        queue_capacity: 4,
        shutdown_attempts: 2,
        ..fast(format!("http://127.0.0.1:{port}"))
    };
    let (metrics, writer) = MetricsWriter::spawn(config).expect("valid config");
    let t0 = start();
    // The writer task cannot run between these calls (single-threaded test runtime), so exactly
    // 4 fit in the channel.
    for i in 0..10 {
        metrics.record(clearing(t0 + TimeDelta::minutes(15 * i), 1, Some(0.2)));
    }
    let stats = metrics.stats();
    assert_eq!(stats.recorded, 10);
    assert_eq!(stats.dropped_queue_full, 6);

    drop(metrics);
    let stats = finish(writer).await;
    assert_eq!(stats.written, 0);
    assert_eq!(stats.dropped_shutdown, 4, "{stats:?}");
    assert_eq!(stats.dropped(), 10);
}

#[tokio::test]
async fn without_a_url_the_writer_is_disabled() {
    let (metrics, writer) = MetricsWriter::spawn(MetricsConfig::default()).expect("valid");
    assert!(!metrics.is_enabled());
    metrics.record(Point::from(clearing(start(), 1, None)));
    assert_eq!(finish(writer).await, WriterStats::default());
    assert_eq!(metrics.stats(), MetricsHandle::disabled().stats());
    assert!(MetricsWriter::spawn(MetricsConfig {
        url: Some("nope".into()),
        ..MetricsConfig::default()
    })
    .is_err());
}

#[tokio::test]
async fn batches_are_cut_by_size_and_partial_batches_flush_by_time() {
    let vm = VictoriaMetrics::start(free_port()).await;

    // By time: three points and a live handle still get written.
    let (metrics, writer) = MetricsWriter::spawn(MetricsConfig {
        batch_size: 100,
        ..fast(vm.base_url())
    })
    .expect("valid config");
    let t0 = start() - TimeDelta::days(1);
    for i in 0..3 {
        metrics.record(clearing(t0 + TimeDelta::minutes(15 * i), 7, Some(0.2)));
    }
    eventually(30, "a partial batch written by the flush interval", || {
        metrics.stats().written == 3
    })
    .await;
    assert_eq!(metrics.stats().batches, 1);
    drop(metrics);
    finish(writer).await;

    // By size: 25 points, batches of 10, a flush interval that never fires: 10 + 10, then the
    // last 5 when the handle is dropped.
    let (metrics, writer) = MetricsWriter::spawn(MetricsConfig {
        batch_size: 10,
        max_buffered: 100,
        flush_interval: Duration::from_secs(3_600),
        ..fast(vm.base_url())
    })
    .expect("valid config");
    let t1 = t0 + TimeDelta::hours(2);
    for i in 0..25 {
        metrics.record(clearing(t1 + TimeDelta::minutes(15 * i), 9, Some(0.2)));
    }
    drop(metrics);
    let stats = finish(writer).await;
    assert_eq!((stats.written, stats.batches), (25, 3), "{stats:?}");

    let series = vm.export("clearing_volume_wh").await;
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].samples().len(), 28);
}

#[tokio::test]
async fn record_blocking_waits_for_room_instead_of_dropping() {
    let vm = VictoriaMetrics::start(free_port()).await;
    let (metrics, writer) = MetricsWriter::spawn(MetricsConfig {
        queue_capacity: 4,
        batch_size: 8,
        ..fast(vm.base_url())
    })
    .expect("valid config");
    let t0 = start() - TimeDelta::days(2);
    // A producer thread outside the runtime, 50 points into a 4-point channel.
    let producer = {
        let metrics = metrics.clone();
        std::thread::spawn(move || {
            for i in 0..50 {
                metrics.record_blocking(clearing(t0 + TimeDelta::minutes(15 * i), i + 1, None));
            }
        })
    };
    while !producer.is_finished() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    producer.join().expect("the producer does not panic");
    // Let the writer drain the channel.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Inside the runtime it never blocks: the channel bound applies as with `record`.
    for i in 0..10 {
        metrics.record_blocking(clearing(
            t0 - TimeDelta::days(1) + TimeDelta::minutes(15 * i),
            1,
            None,
        ));
    }
    drop(metrics);
    let stats = finish(writer).await;
    assert_eq!(stats.recorded, 60);
    assert_eq!(stats.dropped_queue_full, 6, "{stats:?}");
    assert_eq!(stats.written, 54, "{stats:?}");
    let series = vm.export("clearing_volume_wh").await;
    assert_eq!(series[0].samples().len(), 54);
}
