//! The power flow against the reference results shipped with the data: every bus voltage within
//! 1e-4 p.u., every loading within 0.5 percentage points, external grid within 1 kW.

use std::path::Path;

use serde_json::Value;
use voltmesh_sim::data;
use voltmesh_sim::powerflow::snapshot_at;
use voltmesh_sim::simbench::Grid;

fn check_against_reference(grid_dir: &Path, reference: &Path) {
    let grid = Grid::read(grid_dir).expect("grid reads");
    let text = std::fs::read_to_string(reference).expect("reference readable");
    let reference: Value = serde_json::from_str(&text).expect("reference is JSON");
    let snapshots = reference["snapshots"].as_array().expect("snapshots");
    assert!(!snapshots.is_empty());
    for snap in snapshots {
        let time = snap["time"].as_str().expect("time");
        let at = chrono::NaiveDateTime::parse_from_str(time, "%Y-%m-%d %H:%M").expect("time");
        let index = grid.load_profiles.index_of(at).expect("time in profiles");
        assert_eq!(Some(index as u64), snap["index"].as_u64(), "{time}");
        let ours = snapshot_at(&grid, index).expect("converges");
        let ours = serde_json::to_value(&ours).expect("serializes");
        for (key, tolerance) in [
            ("bus_vm_pu", 1e-4),
            ("line_loading_percent", 0.5),
            ("trafo_loading_percent", 0.5),
        ] {
            let want = snap[key].as_object().expect(key);
            let got = ours[key].as_object().expect(key);
            assert_eq!(want.len(), got.len(), "{time} {key}: element count");
            let mut worst: f64 = 0.0;
            for (name, w) in want {
                let w = w.as_f64().expect("number");
                let g = got
                    .get(name)
                    .and_then(Value::as_f64)
                    .unwrap_or_else(|| panic!("{time} {key}: {name} missing"));
                assert!(
                    (w - g).abs() <= tolerance,
                    "{time} {key} {name}: reference {w}, ours {g}"
                );
                worst = worst.max((w - g).abs());
            }
            eprintln!("{time} {key}: largest deviation {worst:.2e}");
        }
        let w = snap["ext_grid_p_mw"].as_f64().expect("ext grid");
        let g = ours["ext_grid_p_mw"].as_f64().expect("ext grid");
        eprintln!("{time} ext_grid_p_mw: reference {w}, ours {g:.6}");
        assert!(
            (w - g).abs() <= 1e-3,
            "{time} ext grid: reference {w}, ours {g}"
        );
    }
}

#[test]
fn rural1_matches_the_reference_power_flow() {
    check_against_reference(
        &data::demo_grid_dir(),
        &data::reference_json(data::DEMO_GRID),
    );
}

#[test]
fn semiurb5_matches_the_reference_power_flow() {
    let Some(dir) = data::shared_simbench_dir() else {
        eprintln!("skipped: shared data folder not found");
        return;
    };
    check_against_reference(
        &dir.join(data::SEMIURB_GRID),
        &data::reference_json(data::SEMIURB_GRID),
    );
}
