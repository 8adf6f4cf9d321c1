//! `voltmesh sim` end to end: the power flow JSON, a short run's files, and clear errors.

use std::process::Command;

use serde_json::Value;
use voltmesh_sim::data;

fn voltmesh(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_voltmesh"))
        .args(args)
        .output()
        .expect("binary runs")
}

#[test]
fn powerflow_prints_the_reference_shape() {
    let grid = data::demo_grid_dir();
    let out = voltmesh(&[
        "sim",
        "powerflow",
        "--grid",
        grid.to_str().unwrap(),
        "--at",
        "2016-06-21 12:00",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let text = std::fs::read_to_string(data::reference_json(data::DEMO_GRID)).unwrap();
    let reference: Value = serde_json::from_str(&text).unwrap();
    let (ours, want) = (&ours["snapshots"][0], &reference["snapshots"][0]);
    for key in ["bus_vm_pu", "line_loading_percent", "trafo_loading_percent"] {
        let keys = |v: &Value| {
            let mut k: Vec<String> = v[key].as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(keys(ours), keys(want), "{key}");
    }
    let vm = ours["bus_vm_pu"]["LV1.101 Bus 13"].as_f64().unwrap();
    assert!((vm - want["bus_vm_pu"]["LV1.101 Bus 13"].as_f64().unwrap()).abs() < 1e-4);
}

#[test]
fn a_short_run_writes_csv_json_and_plots() {
    let dir = std::env::temp_dir().join(format!("voltmesh-sim-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = voltmesh(&[
        "sim",
        "--from",
        "2016-06-21",
        "--days",
        "1",
        "--pv-share",
        "0.5",
        "--battery-share",
        "0.3",
        "--seed",
        "9",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("seed 9"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("self-sufficiency"), "{stdout}");
    for f in [
        "intervals.csv",
        "households.csv",
        "summary.json",
        "price_volume.png",
        "voltage.png",
        "savings.png",
    ] {
        let meta = std::fs::metadata(dir.join(f)).unwrap_or_else(|_| panic!("{f} written"));
        assert!(meta.len() > 0, "{f} empty");
    }
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["intervals"], 96);
    assert_eq!(summary["seed"], 9);
    let rows = std::fs::read_to_string(dir.join("intervals.csv")).unwrap();
    assert_eq!(rows.lines().count(), 97);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn errors_are_clear_and_not_panics() {
    let out = voltmesh(&["sim", "--via-network", "--intervals", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--intervals must be at least 1"));

    let out = voltmesh(&["sim", "powerflow", "--at", "2030-01-01 00:00"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an interval start"));

    let missing = std::env::temp_dir().join("voltmesh-no-such-grid");
    let out = voltmesh(&[
        "sim",
        "powerflow",
        "--grid",
        missing.to_str().unwrap(),
        "--at",
        "2016-06-21 12:00",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("Node.csv") && !stderr.contains("panicked"),
        "{stderr}"
    );
}
