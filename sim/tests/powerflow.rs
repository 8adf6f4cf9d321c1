//! Power flow behaviour beyond the reference points: non-convergence is an interval's error, not
//! a crash; parallel lines share the current; the violation counts follow the band.

use voltmesh_sim::data;
use voltmesh_sim::powerflow::{PowerFlow, PowerFlowError, PowerFlowOptions, Solution, VoltageBand};
use voltmesh_sim::simbench::{BusPower, Grid};

const NOON: usize = 16_560;

fn grid() -> Grid {
    Grid::read(&data::demo_grid_dir()).expect("bundled grid reads")
}

#[test]
fn an_impossible_load_is_reported_and_the_next_interval_solves() {
    let grid = grid();
    let mut pf = PowerFlow::new(&grid, PowerFlowOptions::default()).unwrap();
    let mut power = BusPower::zeros(grid.buses.len());
    grid.bus_power_at(NOON, &mut power);
    let mut heavy = power.clone();
    for p in &mut heavy.p_mw {
        *p = 50.0;
    }
    let mut solution = Solution::default();
    assert!(matches!(
        pf.solve(&heavy, &mut solution),
        Err(PowerFlowError::NotConverged { .. })
    ));
    pf.solve(&power, &mut solution).expect("recovers");
    let (lo, hi) = solution.vm_range();
    assert!(lo > 1.0 && hi < 1.03, "{lo} {hi}");
    assert_eq!(
        pf.solve(&BusPower::zeros(3), &mut solution),
        Err(PowerFlowError::WrongSize {
            expected: grid.buses.len(),
            got: 3
        })
    );
}

#[test]
fn a_doubled_line_halves_its_loading_and_its_voltage_drop() {
    let grid = grid();
    let mut doubled = grid.clone();
    // Line 7 carries the PV of bus 8 at noon.
    let line = doubled
        .lines
        .iter()
        .position(|l| l.id == "LV1.101 Line 7")
        .unwrap();
    let mut twin = doubled.lines[line].clone();
    twin.id = "LV1.101 Line 7b".into();
    doubled.lines.push(twin);
    let solve = |g: &Grid| {
        let mut pf = PowerFlow::new(g, PowerFlowOptions::default()).unwrap();
        let mut power = BusPower::zeros(g.buses.len());
        g.bus_power_at(NOON, &mut power);
        let mut s = Solution::default();
        pf.solve(&power, &mut s).unwrap();
        s
    };
    let (one, two) = (solve(&grid), solve(&doubled));
    let (a, b) = (grid.lines[line].from_bus, grid.lines[line].to_bus);
    let ratio = two.line_loading_percent[line] / one.line_loading_percent[line];
    assert!((ratio - 0.5).abs() < 0.02, "loading ratio {ratio}");
    let last = two.line_loading_percent.len() - 1;
    assert!((two.line_loading_percent[line] - two.line_loading_percent[last]).abs() < 1e-9);
    let drop_one = (one.vm_pu[a] - one.vm_pu[b]).abs();
    let drop_two = (two.vm_pu[a] - two.vm_pu[b]).abs();
    assert!(
        (drop_two / drop_one - 0.5).abs() < 0.05,
        "{drop_one} {drop_two}"
    );
}

#[test]
fn violations_follow_the_band_and_the_limits() {
    let grid = grid();
    let mut pf = PowerFlow::new(&grid, PowerFlowOptions::default()).unwrap();
    let mut power = BusPower::zeros(grid.buses.len());
    grid.bus_power_at(NOON, &mut power);
    let mut s = Solution::default();
    pf.solve(&power, &mut s).unwrap();
    assert!(s.violations(VoltageBand::default()).is_empty());
    let tight = VoltageBand {
        min_pu: 0.9,
        max_pu: 1.026,
    };
    let over = s.vm_pu.iter().filter(|&&v| v > 1.026).count() as u32;
    assert!(over > 0);
    assert_eq!(s.violations(tight).overvoltage_buses, over);
    s.line_loading_max_percent[0] = 0.1;
    assert_eq!(s.violations(VoltageBand::default()).overloaded_lines, 1);
}

/// A warm start (the previous interval's voltages, or another flow's) reaches the fixed point of
/// a flat start within the tolerance, on consecutive intervals of both grids.
#[test]
fn warm_starts_reach_the_cold_solution() {
    let mut grids = vec![grid()];
    if let Some(dir) = data::find_grid(data::SEMIURB_GRID) {
        grids.push(Grid::read(&dir).expect("semiurb5 reads"));
    }
    for grid in &grids {
        let mut warm = PowerFlow::new(grid, PowerFlowOptions::default()).unwrap();
        let mut other = warm.clone();
        let mut cold = warm.clone();
        let mut power = BusPower::zeros(grid.buses.len());
        let (mut w, mut o, mut c) = (
            Solution::default(),
            Solution::default(),
            Solution::default(),
        );
        // A night, a sunrise and noon, four consecutive intervals each.
        for step in [
            8_000,
            8_001,
            8_002,
            8_003,
            16_530,
            16_531,
            16_532,
            16_533,
            NOON,
            NOON + 1,
        ] {
            grid.bus_power_at(step, &mut power);
            let warm_iterations = warm.solve(&power, &mut w).unwrap();
            other.start_from(&warm);
            other.solve(&power, &mut o).unwrap();
            cold.reset();
            let cold_iterations = cold.solve(&power, &mut c).unwrap();
            assert!(warm_iterations <= cold_iterations, "{step}");
            for s in [&w, &o] {
                for (a, b) in s.vm_pu.iter().zip(&c.vm_pu) {
                    assert!((a - b).abs() < 1e-10, "{step}: vm {a} vs {b}");
                }
                let loadings = |s: &Solution| {
                    let mut l = s.line_loading_percent.clone();
                    l.extend(&s.trafo_loading_percent);
                    l
                };
                for (a, b) in loadings(s).iter().zip(&loadings(&c)) {
                    assert!((a - b).abs() < 1e-6, "{step}: loading {a} vs {b}");
                }
                assert!((s.ext_grid_p_mw - c.ext_grid_p_mw).abs() < 1e-9, "{step}");
            }
        }
    }
}
