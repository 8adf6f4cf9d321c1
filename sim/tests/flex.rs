//! Flexible loads (issue 15): electric cars that take a day's energy within a daily window,
//! either as soon as plugged in or in the cheapest steps by the neighborhood's indicative price.
//! Checked on the bundled grid in June: a run without them is unchanged by the feature; loads
//! free to run any time of the day (a heat pump with a tank) take exactly their energy under
//! both strategies, the price strategy moves it from the night into the midday surplus and the
//! neighborhood pays less for it; in a window without sun (no local surplus, every indicative
//! price retail) both charge alike.

use voltmesh_sim::data;
use voltmesh_sim::flex::{FlexLoads, FlexStrategy};
use voltmesh_sim::run::{run, Report, Window};
use voltmesh_sim::scenario::Scenario;
use voltmesh_sim::simbench::Grid;

fn grid() -> Grid {
    Grid::read(&data::demo_grid_dir()).expect("bundled grid reads")
}

/// Three June days from 2016-06-20 00:00.
const JUNE: Window = Window {
    start: 171 * 96,
    steps: 3 * 96,
};

/// Cars at home from `from_hour` for `hours` hours, 10 kWh a day at up to 3.7 kW.
fn with_flex(share: f64, strategy: FlexStrategy, from_hour: u32, hours: u32) -> Scenario {
    Scenario {
        pv_share: 0.5,
        flex: Some(FlexLoads {
            share,
            kwh_per_day: 10.0,
            kw: 3.7,
            from_hour,
            hours,
            strategy,
        }),
        ..Scenario::default()
    }
}

fn simulate(grid: &Grid, scenario: &Scenario) -> Report {
    run(grid, scenario, JUNE, |_, _| {}).expect("run succeeds")
}

fn demand(report: &Report) -> Vec<f64> {
    report.intervals.iter().map(|r| r.demand_wh).collect()
}

#[test]
fn flexible_loads_take_their_energy_and_the_price_strategy_moves_it_to_cheap_steps() {
    let grid = grid();
    let plain = simulate(
        &grid,
        &Scenario {
            pv_share: 0.5,
            ..Scenario::default()
        },
    );
    // No car: the same run, draw for draw.
    let none = simulate(&grid, &with_flex(0.0, FlexStrategy::Price, 0, 24));
    assert_eq!(demand(&none), demand(&plain));
    assert_eq!(
        none.summary.market_cost, plain.summary.market_cost,
        "a run without cars is unchanged"
    );

    // Loads free all day, from 00:00.
    let asap = simulate(&grid, &with_flex(1.0, FlexStrategy::Asap, 0, 24));
    let price = simulate(&grid, &with_flex(1.0, FlexStrategy::Price, 0, 24));
    let homes = grid.loads.len() as f64;
    // Three days in the run: each car takes 10 kWh a day under both strategies.
    let extra = |r: &Report| demand(r).iter().sum::<f64>() - demand(&plain).iter().sum::<f64>();
    let (a, p) = (extra(&asap), extra(&price));
    assert!(
        (a - 3.0 * 10_000.0 * homes).abs() < 1e-3,
        "{a} Wh for {homes} cars"
    );
    assert!((p - a).abs() < 1e-3, "asap {a} Wh, price {p} Wh");
    // The baseline (no market) charges as soon as plugged in under both: same baseline bills.
    assert_eq!(asap.summary.baseline_cost, price.summary.baseline_cost);
    // As soon as plugged in takes it all in the night; the price strategy moves it into the
    // midday surplus (the first day, with no history yet, every price is retail).
    let night = |r: &Report| -> f64 {
        r.intervals
            .iter()
            .zip(&plain.intervals)
            .filter(|(i, _)| {
                ["T00:", "T01:", " 00:", " 01:"]
                    .iter()
                    .any(|h| i.time.contains(h))
            })
            .map(|(i, base)| i.demand_wh - base.demand_wh)
            .sum()
    };
    assert!(
        night(&price) < night(&asap) / 2.0,
        "price {} Wh vs asap {} Wh at 00:00-02:00",
        night(&price),
        night(&asap)
    );
    assert!(
        price.summary.market_cost < asap.summary.market_cost,
        "price {} vs asap {}",
        price.summary.market_cost,
        asap.summary.market_cost
    );

    // A window without sun (22:00 for 6 hours): no local surplus, every indicative price is
    // retail, and the price strategy charges as soon as plugged in too.
    let night_asap = simulate(&grid, &with_flex(1.0, FlexStrategy::Asap, 22, 6));
    let night_price = simulate(&grid, &with_flex(1.0, FlexStrategy::Price, 22, 6));
    assert_eq!(demand(&night_price), demand(&night_asap));
}
