//! How good the bridge's local price signal is (issue 15, deliverable 2): the mean absolute
//! error of the indicative prices against the prices of the book the bridge then submits, over
//! simulated months of the bundled SimBench grid. Run on demand, not in CI.
//!
//! The demo's households (the bundled grid's 13 loads with their PV, limits drawn as
//! `voltmesh demo` draws them) play their real 15-minute profiles on simulated DSMR, Tasmota and
//! Shelly meters, one reading a minute, into the bridge's own `Ingest` (decode, registers,
//! forecast) in simulated time. At each interval's planning time (60 s before its gate, the
//! bridge's default lead) the bench takes, exactly as the bridge does:
//! - the **firm** prices of that interval: its planned book cleared by the engine
//!   (`price_signal::indicative` of the orders the bridge submits; every household is the
//!   bridge's, as in the demo), and
//! - the **indicative** prices of the intervals `h` ahead (`h` = 1, 4, 16, 96: 15 min to a day),
//!   as the planner publishes them then.
//!
//! It prints, per month and horizon, the MAE of the indicative import price (what one more kWh
//! taken costs) and export price (what one more kWh fed in earns) against the firm ones, the
//! MAE of the local price where both books trade, how often the signal got "trades or not"
//! right, and, for scale, the MAE of the no-market guess (retail to import, feed-in to export).
//!
//! ```sh
//! cargo bench -p voltmesh-benches --bench price_signal
//! VOLTMESH_PRICE_SIGNAL_MONTHS=2016-01-01,2016-06-01 cargo bench -p voltmesh-benches --bench price_signal
//! ```

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use voltmesh::demo::households::{self, DemoHousehold, Playback};
use voltmesh::demo::DemoOptions;
use voltmesh_engine::{Interval, Price, Tariffs};
use voltmesh_meter_bridge::community::IntervalRules;
use voltmesh_meter_bridge::household::price_signal::{indicative, IndicativePrice};
use voltmesh_meter_bridge::ingest::Ingest;
use voltmesh_meter_bridge::testing::{BridgeToml, BrokerSection, HouseholdEntry};
use voltmesh_sim::simbench::Grid;

/// Horizons measured, in intervals ahead of the one being planned.
const HORIZONS: [usize; 4] = [1, 4, 16, 96];
/// Intervals in a measured month.
const MONTH: usize = 30 * 96;
/// Intervals played before the first measured one: a day of history for the forecast's
/// "same interval yesterday", and one more.
const WARM_UP: usize = 97;
/// Seconds between a meter's readings.
const READING_SECS: i64 = 60;
/// The bridge plans an interval this long before its gate (its default lead).
const PLAN_LEAD_SECS: i64 = 60;

fn main() {
    let months: Vec<String> = std::env::var("VOLTMESH_PRICE_SIGNAL_MONTHS")
        .map(|v| v.split(',').map(str::to_owned).collect())
        .unwrap_or_else(|_| vec!["2016-01-01".to_owned(), "2016-06-01".to_owned()]);
    let grid = Grid::read(&voltmesh_sim::data::demo_grid_dir()).expect("the bundled grid");
    for month in months {
        let from: NaiveDateTime = format!("{month}T00:00:00")
            .parse()
            .unwrap_or_else(|e| panic!("VOLTMESH_PRICE_SIGNAL_MONTHS: {month}: {e}"));
        run_month(&grid, from);
    }
}

/// Sums of absolute errors and counts for one horizon.
#[derive(Debug, Default)]
struct Errors {
    intervals: u64,
    import_micros: u64,
    export_micros: u64,
    local_micros: u64,
    local_both: u64,
    trade_agrees: u64,
    naive_import_micros: u64,
    naive_export_micros: u64,
}

fn abs_diff(a: Price, b: Price) -> u64 {
    a.micros().abs_diff(b.micros())
}

fn run_month(grid: &Grid, from: NaiveDateTime) {
    let options = DemoOptions::default();
    let first_step = grid
        .load_profiles
        .index_of(from)
        .unwrap_or_else(|| panic!("{from} is not in the profiles"));
    let origin: DateTime<Utc> = from.and_utc();
    let intervals = WARM_UP + MONTH + HORIZONS[HORIZONS.len() - 1] + 1;
    let homes: Vec<DemoHousehold> = households::build(
        grid,
        grid.loads.len(),
        options.seed,
        options.prices,
        Playback {
            first_step,
            steps: intervals + 1,
            origin,
            step: TimeDelta::minutes(15),
            pv_scale: options.pv_scale,
        },
    )
    .expect("households");
    let prices = options.prices;
    let mut toml = BridgeToml::new(BrokerSection::new(1883, "price-signal-bench"))
        .subscribe("dsmr/+", "dsmr")
        .subscribe("tele/+/SENSOR", "tasmota")
        .subscribe("+/events/rpc", "shelly_gen2")
        .market(900, 300)
        .settlement(
            &prices.feed_in.to_string(),
            &prices.retail.to_string(),
            &prices.network_fee.to_string(),
        );
    for h in &homes {
        toml = toml.household(HouseholdEntry::new(
            h.participant.as_str(),
            &h.meter.device,
            &h.buy_limit.to_string(),
            &h.sell_limit.to_string(),
        ));
    }
    let config = toml.to_config().expect("bench config");
    let spec = config.market;
    let mut ingest = Ingest::new(config.ingest, config.registry, spec);
    let rules = IntervalRules {
        tariffs: Tariffs::new(prices.feed_in, prices.retail).expect("tariffs"),
        network_fee: prices.network_fee,
        max_order_wh: 1_000_000,
        mechanism: options.mechanism,
    };
    let book = |ingest: &Ingest, interval: Interval, now: DateTime<Utc>| -> IndicativePrice {
        let orders: Vec<_> = ingest
            .plan_orders(interval, now)
            .into_iter()
            .map(|o| rules.bound(o))
            .collect();
        indicative(interval, &orders, rules, rules.mechanism)
    };

    let first = spec.containing(origin);
    let mut readings_until = origin;
    let mut predicted: BTreeMap<usize, Vec<(usize, IndicativePrice)>> = BTreeMap::new();
    let mut errors: BTreeMap<usize, Errors> =
        HORIZONS.iter().map(|&h| (h, Errors::default())).collect();
    let mut interval = first;
    let started = std::time::Instant::now();
    for k in 0..WARM_UP + MONTH {
        let plan_at = interval.start()
            - TimeDelta::seconds(i64::from(spec.gate_closure_lead_secs()) + PLAN_LEAD_SECS);
        while readings_until <= plan_at {
            for h in &homes {
                let sample = h.meter.profile.sample(readings_until);
                for payload in h.meter.format.encode(&h.meter.device, &sample) {
                    let _ = ingest.handle(&payload.topic, &payload.bytes, readings_until);
                }
            }
            readings_until += TimeDelta::seconds(READING_SECS);
        }
        let firm = book(&ingest, interval, plan_at);
        if let Some(guesses) = predicted.remove(&k) {
            for (h, guess) in guesses {
                let e = errors.get_mut(&h).expect("a horizon");
                e.intervals += 1;
                e.import_micros += abs_diff(guess.import, firm.import);
                e.export_micros += abs_diff(guess.export, firm.export);
                if let (Some(g), Some(f)) = (guess.local, firm.local) {
                    e.local_both += 1;
                    e.local_micros += abs_diff(g, f);
                }
                e.trade_agrees += u64::from((guess.local_wh > 0) == (firm.local_wh > 0));
                e.naive_import_micros += abs_diff(rules.tariffs.retail, firm.import);
                e.naive_export_micros += abs_diff(rules.tariffs.feed_in, firm.export);
            }
        }
        if k + 1 >= WARM_UP - HORIZONS[HORIZONS.len() - 1] {
            let mut ahead = interval;
            for h in 1..=HORIZONS[HORIZONS.len() - 1] {
                ahead = ahead.next();
                if HORIZONS.contains(&h) && k + h >= WARM_UP && k + h < WARM_UP + MONTH {
                    predicted
                        .entry(k + h)
                        .or_default()
                        .push((h, book(&ingest, ahead, plan_at)));
                }
            }
        }
        interval = interval.next();
    }
    println!(
        "price_signal/{}: {} households, {} intervals from {} UTC, {} (network fee {}), mechanism {:?}; {:.1} s",
        from.format("%Y-%m"),
        homes.len(),
        MONTH,
        from,
        rules.tariffs.feed_in.to_string() + ".." + &rules.tariffs.retail.to_string(),
        rules.network_fee,
        rules.mechanism,
        started.elapsed().as_secs_f64()
    );
    let per_kwh = |micros: u64, n: u64| micros as f64 / 1e6 / n.max(1) as f64;
    for (h, e) in &errors {
        println!(
            "  {:>3} interval(s) ahead ({:>5} min): MAE import {:.4}, export {:.4} /kWh; local price {:.4} /kWh over the {} intervals both trade; trades-or-not right {:.1} %; no-market guess MAE import {:.4}, export {:.4}",
            h,
            h * 15,
            per_kwh(e.import_micros, e.intervals),
            per_kwh(e.export_micros, e.intervals),
            per_kwh(e.local_micros, e.local_both),
            e.local_both,
            100.0 * e.trade_agrees as f64 / e.intervals.max(1) as f64,
            per_kwh(e.naive_import_micros, e.intervals),
            per_kwh(e.naive_export_micros, e.intervals),
        );
    }
}
