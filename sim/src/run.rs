//! The simulation loop: households dispatch, bid, the engine clears and settles every market
//! interval, and the power flow checks every profile step, with and without the market.
//!
//! # Determinism
//! One `u64` seed drives a `ChaCha8Rng` that makes every random choice, in a fixed order: PV
//! assignment, battery assignment, bid markups (all in Load.csv order), then one jitter draw per
//! household per interval. Same grid, scenario and window: same report.
//!
//! # Invariants (checked by tests)
//! Per interval, energy bought equals energy sold equals the cleared volume; each bill balances
//! metered energy against contracts and utility energy; money is conserved
//! (`Settlement::imbalance() == 0`).

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use voltmesh_engine::settlement::settle;
use voltmesh_engine::{CallAuction, MarketRules, Money, ParticipantId, Price, Tariffs};

use crate::household::{markups, Battery, Household};
use crate::invariants::{check_interval, InvariantError};
use crate::kpi::Summary;
use crate::metrics_observer::{IntervalObserver, IntervalView};
use crate::powerflow::{
    PowerFlow, PowerFlowError, PowerFlowOptions, Solution, Violations, VoltageBand,
};
use crate::scenario::{Scenario, ScenarioError};
use crate::simbench::{BusPower, Grid};

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A scenario knob is out of range.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The grid cannot be modelled.
    #[error(transparent)]
    PowerFlow(#[from] PowerFlowError),
    /// The window is outside the profiles.
    #[error("window of {steps} steps from step {start} is outside the {len} profile steps")]
    Window {
        /// First step.
        start: usize,
        /// Steps.
        steps: usize,
        /// Steps in the profiles.
        len: usize,
    },
    /// Settlement failed (a trader without a reading; a bug if it happens).
    #[error(transparent)]
    Settlement(#[from] voltmesh_engine::SettlementError),
    /// An interval broke an invariant (a bug if it happens).
    #[error(transparent)]
    Invariant(#[from] InvariantError),
}

/// The profile steps a run covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    /// First profile step.
    pub start: usize,
    /// Number of profile steps (rounded down to whole market intervals).
    pub steps: usize,
}

/// One market interval's results.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IntervalRecord {
    /// Start, `YYYY-MM-DD HH:MM` (standard time).
    pub time: String,
    /// First profile step.
    pub step: usize,
    /// Orders submitted.
    pub orders: u32,
    /// Clearing price per kWh, if anything traded.
    pub price: Option<f64>,
    /// Energy traded between neighbours, Wh.
    pub volume_wh: u64,
    /// Household demand, Wh.
    pub demand_wh: f64,
    /// Household PV generation, Wh.
    pub pv_wh: f64,
    /// Bought from the utility after the market, Wh.
    pub from_utility_wh: u64,
    /// Sold to the utility after the market, Wh.
    pub to_utility_wh: u64,
    /// Imported without a market, Wh.
    pub baseline_import_wh: u64,
    /// Exported without a market, Wh.
    pub baseline_export_wh: u64,
    /// Sum of all households' bills with the market.
    pub market_cost: f64,
    /// Sum of all households' bills without it.
    pub baseline_cost: f64,
    /// Lowest bus voltage over the interval's steps, p.u.
    pub vm_min: f64,
    /// Highest bus voltage, p.u.
    pub vm_max: f64,
    /// Highest line loading, percent.
    pub max_line_loading: f64,
    /// Highest transformer loading, percent.
    pub max_trafo_loading: f64,
    /// Mean power from the external grid, MW.
    pub ext_grid_p_mw: f64,
    /// Limit violations summed over the steps.
    pub violations: u32,
    /// Same for the baseline.
    pub baseline_vm_min: f64,
    /// Same for the baseline.
    pub baseline_vm_max: f64,
    /// Same for the baseline.
    pub baseline_violations: u32,
    /// Steps whose power flow did not converge (market, baseline).
    pub non_converged: (u32, u32),
}

/// One household's totals over the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HouseholdRecord {
    /// Participant id (load id).
    pub id: String,
    /// Bus name.
    pub bus: String,
    /// PV peak, kW.
    pub pv_kwp: f64,
    /// Battery capacity, kWh (0 without).
    pub battery_kwh: f64,
    /// Demand, Wh.
    pub load_wh: f64,
    /// PV generation, Wh.
    pub pv_wh: f64,
    /// Bought from neighbours, Wh.
    pub bought_wh: u64,
    /// Sold to neighbours, Wh.
    pub sold_wh: u64,
    /// From the utility with the market, Wh.
    pub from_utility_wh: u64,
    /// To the utility with the market, Wh.
    pub to_utility_wh: u64,
    /// Metered net export without the market, summed (import negative), Wh.
    pub baseline_import_wh: u64,
    /// Baseline export, Wh.
    pub baseline_export_wh: u64,
    /// Total bill with the market (exact).
    pub market_cost: Money,
    /// Total bill without the market (exact).
    pub baseline_cost: Money,
}

impl HouseholdRecord {
    /// Baseline bill minus market bill.
    pub fn savings(&self) -> Money {
        self.baseline_cost - self.market_cost
    }
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Per market interval.
    pub intervals: Vec<IntervalRecord>,
    /// Per household.
    pub households: Vec<HouseholdRecord>,
    /// KPIs.
    pub summary: Summary,
}

/// Converts money to a float for reports.
pub fn money_f64(m: Money) -> f64 {
    m.nanos() as f64 / 1e9
}

fn price_f64(p: Price) -> f64 {
    p.micros() as f64 / 1e6
}

/// Builds the households of `grid` for `scenario` (draws from `rng` in a fixed order).
pub fn households(grid: &Grid, scenario: &Scenario, rng: &mut ChaCha8Rng) -> Vec<Household> {
    let mut homes: Vec<Household> = grid
        .loads
        .iter()
        .enumerate()
        .map(|(i, load)| Household {
            id: ParticipantId::from(load.id.as_str()),
            load: i,
            bus: load.bus,
            pv: Vec::new(),
            battery: None,
            baseline_battery: None,
            ask_markup: 0.0,
            bid_markdown: 0.0,
            last_net_wh: 0,
        })
        .collect();
    for gen in &grid.res {
        if let Some(home) = homes.iter_mut().find(|h| h.bus == gen.bus) {
            home.pv.push((gen.column, gen.p_mw));
        }
    }
    let pv_columns: Vec<usize> = grid
        .res
        .iter()
        .filter(|r| r.kind.eq_ignore_ascii_case("pv"))
        .map(|r| r.column)
        .collect();
    for home in &mut homes {
        let draw = rng.gen_bool(scenario.pv_share);
        if draw && home.pv.is_empty() && !pv_columns.is_empty() {
            let column = pv_columns[rng.gen_range(0..pv_columns.len())];
            home.pv.push((column, scenario.pv_kwp / 1000.0));
        }
    }
    let steps_per_hour = 60.0 / 15.0;
    for home in &mut homes {
        if rng.gen_bool(scenario.battery_share) && scenario.battery_kwh > 0.0 {
            let battery = Battery {
                capacity_wh: scenario.battery_kwh * 1000.0,
                max_step_wh: scenario.battery_kw * 1000.0 / steps_per_hour,
                soc_wh: 0.0,
            };
            home.baseline_battery = Some(battery.clone());
            home.battery = Some(battery);
        }
    }
    for home in &mut homes {
        (home.ask_markup, home.bid_markdown) = markups(rng);
    }
    homes
}

/// Physical state of one power flow run per step, folded into an interval record.
struct Grids {
    market: PowerFlow,
    baseline: PowerFlow,
    power: BusPower,
    baseline_power: BusPower,
    solution: Solution,
    band: VoltageBand,
}

struct Physical {
    vm_min: f64,
    vm_max: f64,
    line: f64,
    trafo: f64,
    ext_p: f64,
    violations: u32,
    /// Per kind, the most elements in violation at any step.
    worst: Violations,
    failed: u32,
}

impl Physical {
    fn new() -> Physical {
        Physical {
            vm_min: f64::INFINITY,
            vm_max: f64::NEG_INFINITY,
            line: 0.0,
            trafo: 0.0,
            ext_p: 0.0,
            violations: 0,
            worst: Violations::default(),
            failed: 0,
        }
    }
}

fn solve_into(
    pf: &mut PowerFlow,
    power: &BusPower,
    solution: &mut Solution,
    band: VoltageBand,
    acc: &mut Physical,
) {
    match pf.solve(power, solution) {
        Ok(_) => {
            let (lo, hi) = solution.vm_range();
            acc.vm_min = acc.vm_min.min(lo);
            acc.vm_max = acc.vm_max.max(hi);
            acc.line = acc.line.max(solution.max_line_loading());
            acc.trafo = acc.trafo.max(solution.max_trafo_loading());
            acc.ext_p += solution.ext_grid_p_mw;
            let v = solution.violations(band);
            acc.violations += v.total();
            acc.worst = Violations {
                undervoltage_buses: acc.worst.undervoltage_buses.max(v.undervoltage_buses),
                overvoltage_buses: acc.worst.overvoltage_buses.max(v.overvoltage_buses),
                overloaded_lines: acc.worst.overloaded_lines.max(v.overloaded_lines),
                overloaded_trafos: acc.worst.overloaded_trafos.max(v.overloaded_trafos),
            };
        }
        Err(_) => acc.failed += 1,
    }
}

/// Runs `scenario` on `grid` over `window`, calling `progress(done, total)` after each interval.
///
/// # Errors
/// [`SimError`] if the scenario or window is invalid or the grid cannot be modelled. A step whose
/// power flow does not converge is counted in the report, not an error.
pub fn run(
    grid: &Grid,
    scenario: &Scenario,
    window: Window,
    progress: impl FnMut(usize, usize),
) -> Result<Report, SimError> {
    run_observed(grid, scenario, window, progress, &mut ())
}

/// As [`run`], and shows `observer` every market interval after it is settled (see
/// [`crate::metrics_observer`]); the report is the same whatever the observer does.
///
/// # Errors
/// As [`run`].
pub fn run_observed(
    grid: &Grid,
    scenario: &Scenario,
    window: Window,
    mut progress: impl FnMut(usize, usize),
    observer: &mut impl IntervalObserver,
) -> Result<Report, SimError> {
    scenario.validate()?;
    let per_interval = (scenario.interval_minutes / 15) as usize;
    let len = grid.intervals();
    let count = window.steps / per_interval;
    if window.start >= len || window.start + count * per_interval > len || count == 0 {
        return Err(SimError::Window {
            start: window.start,
            steps: window.steps,
            len,
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(scenario.seed);
    let mut homes = households(grid, scenario, &mut rng);
    let any_battery = homes.iter().any(|h| h.battery.is_some());
    let tariffs =
        Tariffs::new(scenario.feed_in, scenario.retail).map_err(|_| ScenarioError::Tariffs {
            feed_in: scenario.feed_in,
            retail: scenario.retail,
            fee: scenario.network_fee,
        })?;
    let rules = MarketRules {
        tariffs,
        ..MarketRules::PERMISSIVE
    };
    let pf = PowerFlow::new(grid, PowerFlowOptions::default())?;
    let n_bus = grid.buses.len();
    let mut grids = Grids {
        baseline: pf.clone(),
        market: pf,
        power: BusPower::zeros(n_bus),
        baseline_power: BusPower::zeros(n_bus),
        solution: Solution::default(),
        band: scenario.band,
    };
    // Generators not owned by a household still feed the grid.
    let owned: Vec<bool> = grid
        .res
        .iter()
        .map(|r| homes.iter().any(|h| h.bus == r.bus))
        .collect();
    let mid_micros = (scenario.feed_in.micros() + scenario.retail.micros()) / 2;
    let mut last_price: Option<Price> = None;
    let mut records = Vec::with_capacity(count);
    let mut totals: Vec<HouseholdRecord> = homes
        .iter()
        .map(|h| HouseholdRecord {
            id: h.id.to_string(),
            bus: grid.buses[h.bus].name.clone(),
            pv_kwp: h.pv.iter().map(|p| p.1 * 1000.0 * scenario.pv_scale).sum(),
            battery_kwh: h.battery.as_ref().map_or(0.0, |b| b.capacity_wh / 1000.0),
            load_wh: 0.0,
            pv_wh: 0.0,
            bought_wh: 0,
            sold_wh: 0,
            from_utility_wh: 0,
            to_utility_wh: 0,
            baseline_import_wh: 0,
            baseline_export_wh: 0,
            market_cost: Money::ZERO,
            baseline_cost: Money::ZERO,
        })
        .collect();
    let mut by_id: Vec<usize> = (0..homes.len()).collect();
    by_id.sort_by(|&a, &b| homes[a].id.cmp(&homes[b].id));
    let mut net = vec![0.0_f64; homes.len()];
    let mut baseline_net = vec![0.0_f64; homes.len()];
    let mut metered: BTreeMap<ParticipantId, i64> = BTreeMap::new();
    let wh_per_mw_step = 1e6 * 0.25;

    for interval in 0..count {
        let first = window.start + interval * per_interval;
        // Orders from the persistence forecast.
        let mut auction = CallAuction::with_capacity(rules, homes.len());
        let mut orders = 0;
        for (seq, home) in homes.iter().enumerate() {
            if let Some(order) = home.order(scenario, &mut rng, first, seq as u64) {
                if auction.submit(order).is_ok() {
                    orders += 1;
                }
            }
        }
        let outcome = auction.clear(scenario.mechanism);
        let signal =
            outcome
                .clearing_price
                .or(last_price)
                .and_then(|p| match p.micros().cmp(&mid_micros) {
                    std::cmp::Ordering::Greater => Some(true),
                    std::cmp::Ordering::Less => Some(false),
                    std::cmp::Ordering::Equal => None,
                });

        // Physics over the interval's steps.
        let mut rec = IntervalRecord {
            time: grid
                .load_profiles
                .time_of(first)
                .format("%Y-%m-%d %H:%M")
                .to_string(),
            step: first,
            orders,
            volume_wh: outcome.volume_wh,
            price: outcome.clearing_price.map(price_f64),
            ..IntervalRecord::default()
        };
        net.fill(0.0);
        baseline_net.fill(0.0);
        let mut phys = Physical::new();
        let mut base_phys = Physical::new();
        for step in first..first + per_interval {
            grids.power.clear();
            grids.baseline_power.clear();
            for (gen, owned) in grid.res.iter().zip(&owned) {
                if !owned {
                    let p = gen.p_mw
                        * scenario.pv_scale
                        * grid
                            .res_profiles
                            .column(gen.column)
                            .get(step)
                            .copied()
                            .unwrap_or(0.0);
                    grids.power.p_mw[gen.bus] -= p;
                    grids.baseline_power.p_mw[gen.bus] -= p;
                }
            }
            for (i, home) in homes.iter_mut().enumerate() {
                let load = &grid.loads[home.load];
                let p_load = load.p_mw
                    * grid
                        .load_profiles
                        .column(load.p_column)
                        .get(step)
                        .copied()
                        .unwrap_or(0.0);
                let q_load = load.q_mvar
                    * grid
                        .load_profiles
                        .column(load.q_column)
                        .get(step)
                        .copied()
                        .unwrap_or(0.0);
                let p_pv: f64 = home
                    .pv
                    .iter()
                    .map(|&(c, mw)| {
                        mw * scenario.pv_scale
                            * grid
                                .res_profiles
                                .column(c)
                                .get(step)
                                .copied()
                                .unwrap_or(0.0)
                    })
                    .sum();
                let load_wh = p_load * wh_per_mw_step;
                let pv_wh = p_pv * wh_per_mw_step;
                rec.demand_wh += load_wh;
                rec.pv_wh += pv_wh;
                totals[i].load_wh += load_wh;
                totals[i].pv_wh += pv_wh;
                let own = pv_wh - load_wh;
                let d = home.dispatch(own, signal, false);
                net[i] += d.net_wh;
                grids.power.p_mw[home.bus] -= d.net_wh / wh_per_mw_step;
                grids.power.q_mvar[home.bus] += q_load;
                let b = if any_battery {
                    home.dispatch(own, None, true).net_wh
                } else {
                    d.net_wh
                };
                baseline_net[i] += b;
                grids.baseline_power.p_mw[home.bus] -= b / wh_per_mw_step;
                grids.baseline_power.q_mvar[home.bus] += q_load;
            }
            solve_into(
                &mut grids.market,
                &grids.power,
                &mut grids.solution,
                grids.band,
                &mut phys,
            );
            if any_battery {
                solve_into(
                    &mut grids.baseline,
                    &grids.baseline_power,
                    &mut grids.solution,
                    grids.band,
                    &mut base_phys,
                );
            }
        }
        if !any_battery {
            base_phys = Physical { ..phys };
        }

        // Settlement against metered energy.
        metered.clear();
        for (i, home) in homes.iter_mut().enumerate() {
            let m = net[i].round() as i64;
            home.last_net_wh = m;
            metered.insert(home.id.clone(), m);
            let b = baseline_net[i].round() as i64;
            let (import, export) = ((-b).max(0).unsigned_abs(), b.max(0).unsigned_abs());
            let cost = Money::of(import, scenario.retail) - Money::of(export, scenario.feed_in);
            totals[i].baseline_import_wh += import;
            totals[i].baseline_export_wh += export;
            totals[i].baseline_cost += cost;
            rec.baseline_import_wh += import;
            rec.baseline_export_wh += export;
            rec.baseline_cost += money_f64(cost);
        }
        let settlement = settle(&outcome.trades, &metered, tariffs, scenario.network_fee)?;
        check_interval(first, auction.orders(), &outcome, &settlement)?;
        for (j, bill) in settlement.bills.iter().enumerate() {
            // Bills come in participant-id order; fall back to a search if that ever changes.
            let i = by_id
                .get(j)
                .copied()
                .filter(|&i| homes[i].id == bill.participant)
                .or_else(|| homes.iter().position(|h| h.id == bill.participant));
            if let Some(i) = i {
                let t = &mut totals[i];
                t.bought_wh += bill.bought_wh;
                t.sold_wh += bill.sold_wh;
                t.from_utility_wh += bill.from_utility_wh;
                t.to_utility_wh += bill.to_utility_wh;
                t.market_cost += bill.total;
            }
            rec.from_utility_wh += bill.from_utility_wh;
            rec.to_utility_wh += bill.to_utility_wh;
            rec.market_cost += money_f64(bill.total);
        }
        last_price = outcome.clearing_price.or(last_price);
        let steps = per_interval as f64;
        rec.vm_min = phys.vm_min;
        rec.vm_max = phys.vm_max;
        rec.max_line_loading = phys.line;
        rec.max_trafo_loading = phys.trafo;
        rec.ext_grid_p_mw = phys.ext_p / steps;
        rec.violations = phys.violations;
        rec.baseline_vm_min = base_phys.vm_min;
        rec.baseline_vm_max = base_phys.vm_max;
        rec.baseline_violations = base_phys.violations;
        rec.non_converged = (phys.failed, base_phys.failed);
        observer.interval(&IntervalView {
            start: grid.load_profiles.time_of(first),
            orders: auction.orders(),
            outcome: &outcome,
            settlement: &settlement,
            tariffs,
            record: &rec,
            worst: phys.worst,
        });
        records.push(rec);
        progress(interval + 1, count);
    }
    let summary = Summary::compute(grid, scenario, &records, &totals);
    Ok(Report {
        intervals: records,
        households: totals,
        summary,
    })
}
