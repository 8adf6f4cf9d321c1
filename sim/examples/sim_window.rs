//! Runs one scenario of the bench (`benches/benches/sim_year.rs`: PV share 0.3, battery share
//! 0.2, the rest default) over a window of a grid and prints a digest of the report: a small,
//! repeatable unit of work for `valgrind --tool=callgrind` and `perf`.
//!
//! `cargo run --release -p voltmesh-sim --example sim_window -- [GRID] [START] [STEPS] [JSON]`
//! (defaults: `1-LV-semiurb5--0-sw`, step 0, the whole year; with `JSON`, the whole report is
//! written there too, to compare two builds).

use std::time::Instant;

use voltmesh_sim::data;
use voltmesh_sim::run::{run, Window};
use voltmesh_sim::scenario::Scenario;
use voltmesh_sim::simbench::Grid;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| data::SEMIURB_GRID.to_owned());
    let dir = data::find_grid(&name).ok_or_else(|| format!("grid {name} not found"))?;
    let grid = Grid::read(&dir)?;
    let start: usize = args.next().map_or(Ok(0), |s| s.parse())?;
    let steps: usize = args
        .next()
        .map_or(Ok(grid.intervals() - start), |s| s.parse())?;
    let scenario = Scenario {
        pv_share: 0.3,
        battery_share: 0.2,
        ..Scenario::default()
    };
    let t = Instant::now();
    let report = run(&grid, &scenario, Window { start, steps }, |_, _| {})?;
    let elapsed = t.elapsed().as_secs_f64();
    let s = &report.summary;
    println!(
        "{name}: {} intervals in {elapsed:.3} s; traded {:.3} kWh, market cost {:.6}, \
         baseline cost {:.6}, vm {:.9}..{:.9}",
        report.intervals.len(),
        s.traded_kwh,
        s.market_cost,
        s.baseline_cost,
        s.vm_min,
        s.vm_max
    );
    if let Some(file) = args.next() {
        let out = std::io::BufWriter::new(std::fs::File::create(file)?);
        serde_json::to_writer(out, &report)?;
    }
    Ok(())
}
