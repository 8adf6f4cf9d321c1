//! Power flow of one interval on the 15-bus (bundled) and the 111-bus (shared data) grid.
//!
//! Each iteration solves the next of a day's 96 demand vectors, so the warm start from the
//! previous interval is as realistic as in a run. Run: `cargo bench -p voltmesh-benches --bench
//! powerflow`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use voltmesh_sim::data;
use voltmesh_sim::powerflow::{PowerFlow, PowerFlowOptions, Solution};
use voltmesh_sim::simbench::{BusPower, Grid};

/// 2016-06-21 00:00, standard time.
const DAY_START: usize = 172 * 96;

fn grids() -> Vec<(String, Grid)> {
    let mut out = Vec::new();
    for name in [data::DEMO_GRID, data::SEMIURB_GRID] {
        match data::find_grid(name).map(|dir| Grid::read(&dir)) {
            Some(Ok(grid)) => out.push((format!("{name} ({} buses)", grid.buses.len()), grid)),
            Some(Err(e)) => eprintln!("skipping {name}: {e}"),
            None => eprintln!("skipping {name}: grid folder not found (../shared/data absent?)"),
        }
    }
    out
}

fn powerflow(c: &mut Criterion) {
    let mut group = c.benchmark_group("powerflow_interval");
    group.throughput(Throughput::Elements(1));
    for (label, grid) in grids() {
        let day: Vec<BusPower> = (DAY_START..DAY_START + 96)
            .map(|t| {
                let mut p = BusPower::zeros(grid.buses.len());
                grid.bus_power_at(t, &mut p);
                p
            })
            .collect();
        let mut pf = PowerFlow::new(&grid, PowerFlowOptions::default()).expect("radial grid");
        let mut solution = Solution::default();
        let mut i = 0;
        group.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter(|| {
                i = (i + 1) % day.len();
                black_box(pf.solve(black_box(&day[i]), &mut solution).ok());
            });
        });
    }
    group.finish();
}

criterion_group!(benches, powerflow);
criterion_main!(benches);
