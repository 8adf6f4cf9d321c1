//! Market plus power flow every interval: a week of `1-LV-semiurb5--0-sw` (111 buses, 104
//! households) and, for the growth from 15 to 111 buses, of the bundled `1-LV-rural1--0-sw`.
//! A full year (35,136 intervals) is too long for criterion's samples, so the bench measures a
//! week with `Throughput::Elements(intervals)` and prints the extrapolated year, plus one timed
//! full year when `VOLTMESH_BENCH_FULL_YEAR=1`.
//! Run: `cargo bench -p voltmesh-benches --bench sim_year`.

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use voltmesh_sim::data;
use voltmesh_sim::run::{run, Window};
use voltmesh_sim::scenario::Scenario;
use voltmesh_sim::simbench::Grid;

const WEEK: usize = 7 * 96;
const YEAR: usize = 35_136;
/// 2016-06-20 00:00, standard time: a sunny week, so the market trades.
const START: usize = 171 * 96;

fn scenario() -> Scenario {
    Scenario {
        pv_share: 0.3,
        battery_share: 0.2,
        ..Scenario::default()
    }
}

fn sim_year(c: &mut Criterion) {
    let mut group = c.benchmark_group("sim_week");
    group.sample_size(10);
    group.throughput(Throughput::Elements(WEEK as u64));
    for name in [data::DEMO_GRID, data::SEMIURB_GRID] {
        let Some(dir) = data::find_grid(name) else {
            eprintln!("skipping {name}: grid folder not found (../shared/data absent?)");
            continue;
        };
        let grid = match Grid::read(&dir) {
            Ok(grid) => grid,
            Err(e) => {
                eprintln!("skipping {name}: {e}");
                continue;
            }
        };
        let scenario = scenario();
        let window = Window {
            start: START,
            steps: WEEK,
        };
        let t = Instant::now();
        let report = run(&grid, &scenario, window, |_, _| {}).expect("run");
        let week = t.elapsed().as_secs_f64();
        eprintln!(
            "{name}: {} buses, {} households; one week {:.3} s, extrapolated year {:.2} s ({} intervals traded)",
            grid.buses.len(),
            grid.loads.len(),
            week,
            week * YEAR as f64 / WEEK as f64,
            report.intervals.iter().filter(|r| r.volume_wh > 0).count()
        );
        if std::env::var_os("VOLTMESH_BENCH_FULL_YEAR").is_some() {
            let t = Instant::now();
            let year = Window {
                start: 0,
                steps: grid.intervals(),
            };
            run(&grid, &scenario, year, |_, _| {}).expect("year");
            eprintln!(
                "{name}: full year ({} intervals) {:.2} s",
                grid.intervals(),
                t.elapsed().as_secs_f64()
            );
        }
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| black_box(run(&grid, &scenario, window, |_, _| {}).expect("run")));
        });
    }
    group.finish();
}

criterion_group!(benches, sim_year);
criterion_main!(benches);
