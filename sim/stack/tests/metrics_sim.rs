//! `voltmesh sim --influx-url …` against a real time-series database on loopback (Debian's
//! `victoria-metrics`, which speaks the InfluxDB v2 write API): the points carry the SIMULATED
//! interval times and agree with the run's own CSV report; with the database down the run still
//! finishes and reports what it dropped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::NaiveDateTime;
use voltmesh_metrics::testing::{free_port, Series, VictoriaMetrics};

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("voltmesh-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// One day from 2016-06-21 with extra PV (so there is local trade), no plots.
fn sim(url: &str, out: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_voltmesh"))
        .args([
            "sim",
            "--from",
            "2016-06-21",
            "--days",
            "1",
            "--pv-share",
            "0.5",
        ])
        .args([
            "--no-plots",
            "--neighborhood",
            "rural-test",
            "--influx-url",
            url,
        ])
        .arg("--out")
        .arg(out)
        .env_remove("VOLTMESH_INFLUX_TOKEN")
        .output()
        .expect("the binary runs")
}

fn csv_rows(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).expect("report CSV");
    let headers = reader.headers().expect("header").clone();
    reader
        .records()
        .map(|r| {
            let r = r.expect("row");
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

fn ms(time: &str) -> i64 {
    NaiveDateTime::parse_from_str(time, "%Y-%m-%d %H:%M")
        .expect("report time")
        .and_utc()
        .timestamp_millis()
}

fn num(row: &BTreeMap<String, String>, key: &str) -> f64 {
    row[key]
        .parse()
        .unwrap_or_else(|_| panic!("{key} = {:?}", row[key]))
}

fn one<'a>(series: &'a [Series], name: &str) -> &'a Series {
    let found: Vec<&Series> = series.iter().filter(|s| s.name() == name).collect();
    assert_eq!(
        found.len(),
        1,
        "{name}: {:?}",
        found.iter().map(|s| &s.metric).collect::<Vec<_>>()
    );
    found[0]
}

/// Runs [`sim`], which must succeed: its stdout and its summary's counts.
fn sim_ok(url: &str, out: &Path) -> (String, (u64, u64, u64)) {
    let run = sim(url, out);
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let counts = summary_counts(&stdout);
    (stdout, counts)
}

/// The `recorded, written, dropped` numbers of the summary's metrics line.
fn summary_counts(stdout: &str) -> (u64, u64, u64) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("metrics "))
        .unwrap_or_else(|| panic!("no metrics line in:\n{stdout}"));
    let after = |word: &str| -> u64 {
        let rest = &line[line
            .find(word)
            .unwrap_or_else(|| panic!("{word} in {line}"))
            + word.len()..];
        rest.trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{word} count in {line}"))
    };
    (after("recorded"), after("written"), after("dropped"))
}

#[tokio::test]
async fn a_simulated_day_lands_in_the_database_at_simulated_times() {
    let vm = VictoriaMetrics::start(free_port()).await;
    let out = out_dir("metrics-sim");
    let (stdout, (recorded, written, dropped)) = sim_ok(&vm.base_url(), &out);
    assert!(recorded > 96 * 3, "{stdout}");
    assert_eq!((written, dropped), (recorded, 0), "{stdout}");

    let intervals = csv_rows(&out.join("intervals.csv"));
    assert_eq!(intervals.len(), 96);
    let times: Vec<i64> = intervals.iter().map(|r| ms(&r["time"])).collect();
    // 2016-06-21 00:00 UTC: the profiles' simulated time, not the wall clock.
    assert_eq!(times[0], 1_466_467_200_000);

    let clearing = vm.export("clearing_.*").await;
    for s in &clearing {
        assert_eq!(s.tag("neighborhood"), Some("rural-test"), "{:?}", s.metric);
        assert_eq!(s.tag("mechanism"), Some("uniform"), "{:?}", s.metric);
    }
    let expect = |column: &str| -> Vec<(i64, f64)> {
        times
            .iter()
            .zip(&intervals)
            .map(|(t, r)| (*t, num(r, column)))
            .collect()
    };
    assert_eq!(
        one(&clearing, "clearing_volume_wh").samples(),
        expect("volume_wh")
    );
    assert_eq!(
        one(&clearing, "clearing_orders").samples(),
        expect("orders")
    );
    assert_eq!(
        one(&clearing, "clearing_retail").samples(),
        times.iter().map(|t| (*t, 0.30)).collect::<Vec<_>>()
    );
    // A price only where something traded, equal to the report's.
    let priced: Vec<(i64, f64)> = times
        .iter()
        .zip(&intervals)
        .filter(|(_, r)| !r["price"].is_empty())
        .map(|(t, r)| (*t, num(r, "price")))
        .collect();
    assert!(!priced.is_empty(), "the day has local trade");
    let price = one(&clearing, "clearing_price").samples();
    assert_eq!(price.len(), priced.len());
    for ((t, p), (te, pe)) in price.iter().zip(&priced) {
        assert_eq!(t, te);
        assert!((p - pe).abs() < 1e-6, "{t}: {p} vs {pe}");
    }

    // Trades: per interval, the buy side sums to the cleared volume.
    let trades = vm.export("trade_quantity_wh").await;
    let mut bought: BTreeMap<i64, f64> = BTreeMap::new();
    for s in trades.iter().filter(|s| s.tag("side") == Some("buy")) {
        for (t, v) in s.samples() {
            *bought.entry(t).or_default() += v;
        }
    }
    let traded: BTreeMap<i64, f64> = expect("volume_wh")
        .into_iter()
        .filter(|(_, v)| *v > 0.0)
        .collect();
    assert_eq!(bought, traded);

    // Grid state per interval, as the report has it.
    let grid = vm.export("grid_.*").await;
    let vm_min = one(&grid, "grid_voltage_min_pu").samples();
    assert_eq!(vm_min.len(), 96);
    for ((t, v), (te, ve)) in vm_min.iter().zip(expect("vm_min_pu")) {
        assert_eq!(*t, te);
        assert!((v - ve).abs() < 1e-5, "{t}: {v} vs {ve}");
    }
    assert_eq!(one(&grid, "grid_overloaded_lines").samples().len(), 96);

    // Households: the last running balance equals the report's market bill, per household.
    let households = csv_rows(&out.join("households.csv"));
    let balances = vm.export("balance_amount_total").await;
    assert_eq!(balances.len(), households.len());
    for h in &households {
        let tag = h["id"].replace(' ', "_");
        let series = balances
            .iter()
            .find(|s| s.tag("household") == Some(tag.as_str()))
            .unwrap_or_else(|| panic!("no balance for {tag}"));
        let samples = series.samples();
        assert_eq!(samples.len(), 96, "{tag}");
        let last = samples.last().map(|s| s.1).unwrap_or_default();
        assert!((last - num(h, "market_cost")).abs() < 1e-6, "{tag}: {last}");
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn with_the_database_down_the_run_finishes_and_reports_the_drops() {
    let out = out_dir("metrics-sim-down");
    let (stdout, (recorded, written, dropped)) =
        sim_ok(&format!("http://127.0.0.1:{}", free_port()), &out);
    assert!(recorded > 0, "{stdout}");
    assert_eq!((written, dropped), (0, recorded), "{stdout}");
    assert!(stdout.contains("last error"), "{stdout}");
    assert!(
        out.join("intervals.csv").exists(),
        "the report is still written"
    );
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_bad_metrics_url_is_a_clear_error_before_the_run() {
    let out = out_dir("metrics-sim-bad");
    let run = sim("influx:8086", &out);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("metrics URL"), "{stderr}");
    assert!(!out.join("intervals.csv").exists());
}
