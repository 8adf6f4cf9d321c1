//! Runs the market on the bundled grid and checks the report against independent, naive
//! computations: energy and money conservation, baseline bills, KPIs, determinism.

use voltmesh_engine::{Money, Price};
use voltmesh_sim::data;
use voltmesh_sim::run::{run, Report, Window};
use voltmesh_sim::scenario::Scenario;
use voltmesh_sim::simbench::Grid;

fn grid() -> Grid {
    Grid::read(&data::demo_grid_dir()).expect("bundled grid reads")
}

/// Two June days from 2016-06-20 00:00 (standard time).
const JUNE: Window = Window {
    start: 171 * 96,
    steps: 2 * 96,
};

fn simulate(grid: &Grid, scenario: &Scenario) -> Report {
    run(grid, scenario, JUNE, |_, _| {}).expect("run succeeds")
}

#[test]
fn energy_is_conserved_per_interval_and_per_household() {
    let grid = grid();
    let scenario = Scenario {
        pv_share: 0.3,
        ..Scenario::default()
    };
    let report = simulate(&grid, &scenario);
    assert_eq!(report.intervals.len(), 192);
    // Without batteries the baseline meters exactly what the market run meters.
    for r in &report.intervals {
        let market = i128::from(r.to_utility_wh) - i128::from(r.from_utility_wh);
        let metered = i128::from(r.baseline_export_wh) - i128::from(r.baseline_import_wh);
        assert_eq!(market, metered, "interval {}", r.time);
        let physical = r.pv_wh - r.demand_wh;
        let rounding = 0.5 * report.households.len() as f64 + 1e-6;
        assert!((physical - metered as f64).abs() <= rounding, "{}", r.time);
    }
    for h in &report.households {
        let contract = i128::from(h.sold_wh) - i128::from(h.bought_wh);
        let utility = i128::from(h.to_utility_wh) - i128::from(h.from_utility_wh);
        let metered = i128::from(h.baseline_export_wh) - i128::from(h.baseline_import_wh);
        assert_eq!(contract + utility, metered, "household {}", h.id);
    }
    let bought: u64 = report.households.iter().map(|h| h.bought_wh).sum();
    let sold: u64 = report.households.iter().map(|h| h.sold_wh).sum();
    let volume: u64 = report.intervals.iter().map(|r| r.volume_wh).sum();
    assert_eq!(bought, volume);
    assert_eq!(sold, volume);
    assert!(volume > 0, "June with PV must trade");
}

#[test]
fn money_is_conserved_and_bills_match_a_naive_recomputation() {
    let grid = grid();
    for battery_share in [0.0, 0.6] {
        let scenario = Scenario {
            pv_share: 0.4,
            battery_share,
            ..Scenario::default()
        };
        let report = simulate(&grid, &scenario);
        let (retail, feed_in, fee) = (scenario.retail, scenario.feed_in, scenario.network_fee);
        // Local payments cancel between buyers and sellers, so all bills together are the utility's
        // and the network's revenue.
        let from: u64 = report.households.iter().map(|h| h.from_utility_wh).sum();
        let to: u64 = report.households.iter().map(|h| h.to_utility_wh).sum();
        let volume: u64 = report.intervals.iter().map(|r| r.volume_wh).sum();
        let expected = Money::of(from, retail) - Money::of(to, feed_in) + Money::of(volume, fee);
        let total: Money = report.households.iter().map(|h| h.market_cost).sum();
        assert_eq!(total, expected, "battery share {battery_share}");
        for h in &report.households {
            let naive =
                Money::of(h.baseline_import_wh, retail) - Money::of(h.baseline_export_wh, feed_in);
            assert_eq!(h.baseline_cost, naive, "{}", h.id);
            assert_eq!(h.savings(), h.baseline_cost - h.market_cost);
        }
        let s = &report.summary;
        let naive_savings: f64 = report
            .households
            .iter()
            .map(|h| h.savings().nanos() as f64 / 1e9)
            .sum();
        assert!((s.savings_total - naive_savings).abs() < 1e-6);
        assert!(s.savings_total > 0.0, "a June market saves money: {s:?}");
        let demand: f64 = report.households.iter().map(|h| h.load_wh).sum();
        assert!((s.self_sufficiency - (1.0 - from as f64 / demand)).abs() < 1e-12);
        assert!((s.neighbor_share - volume as f64 / demand).abs() < 1e-12);
        if battery_share > 0.0 {
            assert!(s.households_with_battery > 0);
        }
        // Every cleared price lies within the tariffs.
        for p in report.intervals.iter().filter_map(|r| r.price) {
            assert!(p >= feed_in.micros() as f64 / 1e6 && p <= retail.micros() as f64 / 1e6);
        }
    }
}

#[test]
fn the_seed_decides_everything() {
    let grid = grid();
    let scenario = Scenario {
        pv_share: 0.5,
        battery_share: 0.5,
        ..Scenario::default()
    };
    let a = simulate(&grid, &scenario);
    let b = simulate(&grid, &scenario);
    assert_eq!(a.intervals, b.intervals);
    assert_eq!(a.households, b.households);
    let c = simulate(
        &grid,
        &Scenario {
            seed: 7,
            ..scenario
        },
    );
    assert_ne!(a.intervals, c.intervals);
}

#[test]
fn bad_scenarios_and_windows_are_errors() {
    let grid = grid();
    let bad = Scenario {
        pv_share: 1.5,
        ..Scenario::default()
    };
    assert!(run(&grid, &bad, JUNE, |_, _| {}).is_err());
    let bad = Scenario {
        feed_in: Price::from_micros(400_000).unwrap(),
        ..Scenario::default()
    };
    assert!(run(&grid, &bad, JUNE, |_, _| {}).is_err());
    let outside = Window {
        start: grid.intervals() - 1,
        steps: 96,
    };
    assert!(run(&grid, &Scenario::default(), outside, |_, _| {}).is_err());
}

#[test]
fn hourly_intervals_aggregate_four_steps() {
    let grid = grid();
    let scenario = Scenario {
        interval_minutes: 60,
        ..Scenario::default()
    };
    let report = simulate(&grid, &scenario);
    assert_eq!(report.intervals.len(), 48);
    let quarter = simulate(&grid, &Scenario::default());
    let d60: f64 = report.intervals.iter().map(|r| r.demand_wh).sum();
    let d15: f64 = quarter.intervals.iter().map(|r| r.demand_wh).sum();
    assert!((d60 - d15).abs() < 1e-6);
}

#[test]
fn every_mechanism_runs_and_conserves_money() {
    use voltmesh_engine::{Mechanism, PayAsBidPricing, K};
    let grid = grid();
    for mechanism in [
        Mechanism::Uniform {
            k: K::from_ppm(250_000).unwrap(),
        },
        Mechanism::PayAsBid {
            pricing: PayAsBidPricing::Midpoint,
        },
        Mechanism::PayAsBid {
            pricing: PayAsBidPricing::Bid,
        },
        Mechanism::Continuous,
    ] {
        let scenario = Scenario {
            pv_share: 0.4,
            battery_share: 0.3,
            mechanism,
            ..Scenario::default()
        };
        // `run` checks every interval's invariants and fails on the first broken one.
        let report = simulate(&grid, &scenario);
        let volume: u64 = report.intervals.iter().map(|r| r.volume_wh).sum();
        assert!(volume > 0, "{mechanism:?} traded nothing");
        let from: u64 = report.households.iter().map(|h| h.from_utility_wh).sum();
        let to: u64 = report.households.iter().map(|h| h.to_utility_wh).sum();
        let expected = Money::of(from, scenario.retail) - Money::of(to, scenario.feed_in)
            + Money::of(volume, scenario.network_fee);
        let total: Money = report.households.iter().map(|h| h.market_cost).sum();
        assert_eq!(total, expected, "{mechanism:?}");
    }
}
