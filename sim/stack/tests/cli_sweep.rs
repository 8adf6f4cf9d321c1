//! `voltmesh sim sweep` end to end: the same bytes for 1 and 2 workers, a resumed sweep runs only
//! what is missing, the KPIs equal `voltmesh sim`'s summary, and a bad spec exits with status 2.

use std::path::Path;
use std::process::Command;

use voltmesh_sim::table::{self, Column};

fn voltmesh(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_voltmesh"))
        .args(args)
        .output()
        .expect("binary runs")
}

const SPEC: [&str; 10] = [
    "--from",
    "2016-06-20",
    "--days",
    "1",
    "--pv-share",
    "0,0.5",
    "--battery-share",
    "0,0.5",
    "--seeds",
    "1..3",
];

fn sweep(dir: &Path, name: &str, workers: &str) -> String {
    let out = dir.join(format!("{name}.parquet"));
    let intervals = dir.join(format!("{name}-intervals.parquet"));
    let mut args = vec!["sim", "sweep", "--quiet", "--workers", workers];
    args.extend(SPEC);
    args.extend(["--out", out.to_str().unwrap()]);
    args.extend(["--intervals-out", intervals.to_str().unwrap()]);
    let done = voltmesh(&args);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    String::from_utf8(done.stdout).unwrap()
}

#[test]
fn workers_do_not_change_the_bytes_and_a_rerun_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let said = sweep(dir.path(), "one", "1");
    assert!(said.contains("ran 8 of 8 scenarios"), "{said}");
    sweep(dir.path(), "two", "2");
    for file in ["one.parquet", "one-intervals.parquet"] {
        let a = std::fs::read(dir.path().join(file)).unwrap();
        let b = std::fs::read(dir.path().join(file.replace("one", "two"))).unwrap();
        assert!(a == b, "{file} differs between 1 and 2 workers");
    }

    // One scenario lost (an interrupted sweep): the rerun runs only that one, same bytes.
    let parts = dir.path().join("one.parquet.parts");
    let mut kpi_parts: Vec<_> = std::fs::read_dir(&parts)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().ends_with(".kpi.parquet"))
        .collect();
    kpi_parts.sort();
    assert_eq!(kpi_parts.len(), 8);
    std::fs::remove_file(&kpi_parts[3]).unwrap();
    let kept = std::fs::metadata(&kpi_parts[0])
        .unwrap()
        .modified()
        .unwrap();
    let said = sweep(dir.path(), "one", "2");
    assert!(
        said.contains("ran 1 of 8 scenarios (7 already done)"),
        "{said}"
    );
    assert_eq!(
        std::fs::metadata(&kpi_parts[0])
            .unwrap()
            .modified()
            .unwrap(),
        kept
    );
    assert!(
        std::fs::read(dir.path().join("one.parquet")).unwrap()
            == std::fs::read(dir.path().join("two.parquet")).unwrap()
    );

    // The KPIs are the run's: the rows' order is the spec's, seeds innermost.
    let kpis = table::read(&dir.path().join("one.parquet")).unwrap();
    assert_eq!(kpis.rows(), 8);
    assert_eq!(
        kpis.column("seed"),
        Some(&Column::Int(vec![1, 2, 1, 2, 1, 2, 1, 2]))
    );
    assert_eq!(
        kpis.column("scenario"),
        Some(&Column::Int((0..8).collect()))
    );
    let intervals = table::read(&dir.path().join("one-intervals.parquet")).unwrap();
    assert_eq!(intervals.rows(), 8 * 96);
}

#[test]
fn kpis_equal_the_summary_of_voltmesh_sim() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("k.parquet");
    let done = voltmesh(&[
        "sim",
        "sweep",
        "--quiet",
        "--from",
        "2016-06-20",
        "--days",
        "1",
        "--pv-share",
        "0.5",
        "--battery-share",
        "0.5",
        "--seeds",
        "7",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(done.status.success());
    let run_dir = dir.path().join("run");
    let done = voltmesh(&[
        "sim",
        "--no-plots",
        "--from",
        "2016-06-20",
        "--days",
        "1",
        "--pv-share",
        "0.5",
        "--battery-share",
        "0.5",
        "--seed",
        "7",
        "--out",
        run_dir.to_str().unwrap(),
    ]);
    assert!(done.status.success());
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("summary.json")).unwrap()).unwrap();
    let kpis = table::read(&out).unwrap();
    for name in [
        "self_sufficiency",
        "traded_kwh",
        "savings_total",
        "price_mean",
        "vm_min",
    ] {
        let Some(Column::Float(v)) = kpis.column(name) else {
            panic!("{name}")
        };
        // serde_json's default float parser may miss the last bit of summary.json's shortest
        // decimals; the Python tests compare these to the bit (Python parses them exactly).
        let (got, want) = (v[0].unwrap(), summary[name].as_f64().unwrap());
        assert!(
            (got - want).abs() <= 1e-13 * want.abs().max(1.0),
            "{name}: {got} vs {want}"
        );
    }
    assert_eq!(
        kpis.column("households_with_battery"),
        Some(&Column::Int(vec![summary["households_with_battery"]
            .as_i64()
            .unwrap()]))
    );
}

#[test]
fn bad_specs_exit_2_with_one_line() {
    for (args, says) in [
        (vec!["--pv-share", "0,1.5"], "--pv-share=1.5"),
        (vec!["--seeds", "3..1"], "--seeds"),
        (vec!["--mechanism", "uniform,dutch"], "dutch"),
        (vec!["--days", "1,", "--seeds", "1"], "empty value"),
        (vec!["--workers", "0"], "--workers"),
    ] {
        let mut line = vec!["sim", "sweep", "--quiet", "--out", "/nonexistent/x.parquet"];
        line.extend(args);
        let done = voltmesh(&line);
        let err = String::from_utf8_lossy(&done.stderr);
        assert_eq!(done.status.code(), Some(2), "{line:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("error: ") && err.contains(says), "{err}");
    }
}
