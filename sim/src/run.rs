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

use chrono::{Datelike, NaiveDateTime, Timelike};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rustc_hash::FxBuildHasher;
use serde::Serialize;
use voltmesh_engine::settlement::settle;
use voltmesh_engine::{
    marginal_prices, CallAuction, ClearingOutcome, MarketRules, Money, Order, OrderId,
    ParticipantId, Price, Settlement, Tariffs,
};

use crate::flex::FlexLoad;
use crate::household::{markups, Battery, Household};
use crate::invariants::{check_interval, InvariantError};
use crate::kpi::Summary;
use crate::metrics_observer::{IntervalObserver, IntervalView};
use crate::powerflow::{
    PowerFlow, PowerFlowError, PowerFlowOptions, Solution, Violations, VoltageBand,
};
use crate::record::price_f64;
use crate::record::{money_f64, round_i64, HouseholdRecord, IntervalRecord};
use crate::scenario::{Scenario, ScenarioError};
use crate::simbench::{BusPower, Grid, Profiles};

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
            flex: None,
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
    // Flexible loads from their own stream, so the other draws stay those of a run without.
    if let Some(flex) = &scenario.flex {
        let mut draws = ChaCha8Rng::seed_from_u64(scenario.seed ^ FLEX_STREAM);
        for home in &mut homes {
            if draws.gen_bool(flex.share) {
                home.flex = Some(FlexLoad::new(flex));
            }
        }
    }
    homes
}

/// Mixed into the seed for the flexible loads' draws.
const FLEX_STREAM: u64 = 0x666c_6578_6c6f_6164;

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
) -> bool {
    match pf.solve(power, solution) {
        Ok(_) => {
            accumulate(solution, band, acc);
            true
        }
        Err(_) => {
            acc.failed += 1;
            false
        }
    }
}

/// Adds one converged step's `solution` to `acc`.
fn accumulate(solution: &Solution, band: VoltageBand, acc: &mut Physical) {
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
    run_with(grid, scenario, window, &mut progress, observer, Start::Warm)
}

/// Where each power flow starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// From the previous step's solution (the baseline from the market's of the same step).
    Warm,
    /// Flat, every time (the tests' reference for the warm start).
    #[cfg_attr(not(test), allow(dead_code))]
    Cold,
}

fn run_with(
    grid: &Grid,
    scenario: &Scenario,
    window: Window,
    progress: &mut impl FnMut(usize, usize),
    observer: &mut impl IntervalObserver,
    start: Start,
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
    let mut state = RunState::new(grid, scenario)?;
    state.start = start;
    let mut records = Vec::with_capacity(count);
    for interval in 0..count {
        let first = window.start + interval * per_interval;
        records.push(state.interval(first, observer)?);
        progress(interval + 1, count);
    }
    let summary = Summary::compute(grid, scenario, &records, &state.totals);
    Ok(Report {
        intervals: records,
        households: state.totals,
        summary,
    })
}

/// Energy of one MW held for one 15-minute profile step, Wh.
const WH_PER_MW_STEP: f64 = 1e6 * 0.25;

/// What a run carries from one market interval to the next. Each interval runs three steps in a
/// fixed order: [`RunState::market_step`] (orders and clearing; the only random draws),
/// [`RunState::physics_step`] (dispatch and power flow per profile step) and
/// [`RunState::settle_step`] (settlement against the metered energy, and the invariants).
struct RunState<'a> {
    grid: &'a Grid,
    scenario: &'a Scenario,
    /// Profile steps per market interval.
    per_interval: usize,
    tariffs: Tariffs,
    rules: MarketRules,
    rng: ChaCha8Rng,
    homes: Vec<Household>,
    /// Whether the baseline differs from the market by more than the market itself (batteries
    /// or flexible loads dispatch differently), so it needs its own power flow.
    separate_baseline: bool,
    /// Per household, its metered net export in each interval of the last day, Wh, by the
    /// interval's slot in the day (the flexible loads' forecast books; empty without them).
    history: Vec<Vec<i64>>,
    /// Per generator: whether a household owns it (the others still feed the grid).
    owned: Vec<bool>,
    grids: Grids,
    /// Midpoint of the tariffs, micro-units: above it a cleared price tells batteries to sell.
    mid_micros: i64,
    last_price: Option<Price>,
    totals: Vec<HouseholdRecord>,
    /// Household indexes in participant-id order (the order of the bills).
    by_id: Vec<usize>,
    /// This interval's metered net export per household, Wh (with and without the market).
    net: Vec<f64>,
    baseline_net: Vec<f64>,
    /// This interval's metered net export per participant. Every household's id is a key from
    /// the start, so an interval only overwrites the values (in id order, `by_id`), unless two
    /// households share an id (then it is refilled every interval, the later household winning).
    metered: BTreeMap<ParticipantId, i64>,
    /// Whether the households' ids are distinct (the keys of `metered` are then fixed).
    distinct_ids: bool,
    /// Each household's order id ([`Household::order_id`]), cloned into its orders.
    order_ids: Vec<OrderId>,
    /// The last interval's book, reset and reused by the next (absent while an interval runs).
    auction: Option<Book>,
    start: Start,
}

/// The simulation's book: its order ids are its own, so the index hashes with Fx, not SipHash
/// (the clearing does not depend on the hasher).
type Book = CallAuction<FxBuildHasher>;

impl<'a> RunState<'a> {
    fn new(grid: &'a Grid, scenario: &'a Scenario) -> Result<Self, SimError> {
        let mut rng = ChaCha8Rng::seed_from_u64(scenario.seed);
        let homes = households(grid, scenario, &mut rng);
        let tariffs = Tariffs::new(scenario.feed_in, scenario.retail).map_err(|_| {
            ScenarioError::Tariffs {
                feed_in: scenario.feed_in,
                retail: scenario.retail,
                fee: scenario.network_fee,
            }
        })?;
        let rules = MarketRules {
            tariffs,
            ..MarketRules::PERMISSIVE
        };
        let pf = PowerFlow::new(grid, PowerFlowOptions::default())?;
        let n_bus = grid.buses.len();
        let grids = Grids {
            baseline: pf.clone(),
            market: pf,
            power: BusPower::zeros(n_bus),
            baseline_power: BusPower::zeros(n_bus),
            solution: Solution::default(),
            band: scenario.band,
        };
        let owned = grid
            .res
            .iter()
            .map(|r| homes.iter().any(|h| h.bus == r.bus))
            .collect();
        let totals = homes
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
        let metered: BTreeMap<ParticipantId, i64> =
            homes.iter().map(|h| (h.id.clone(), 0)).collect();
        let distinct_ids = metered.len() == homes.len();
        Ok(RunState {
            grid,
            scenario,
            per_interval: (scenario.interval_minutes / 15) as usize,
            tariffs,
            rules,
            rng,
            separate_baseline: homes
                .iter()
                .any(|h| h.battery.is_some() || h.flex.is_some()),
            history: if homes.iter().any(|h| h.flex.is_some()) {
                vec![vec![0; 24 * 60 / scenario.interval_minutes.max(1) as usize]; homes.len()]
            } else {
                Vec::new()
            },
            owned,
            grids,
            mid_micros: (scenario.feed_in.micros() + scenario.retail.micros()) / 2,
            last_price: None,
            totals,
            by_id,
            net: vec![0.0; homes.len()],
            baseline_net: vec![0.0; homes.len()],
            metered,
            distinct_ids,
            order_ids: homes.iter().map(Household::order_id).collect(),
            auction: None,
            start: Start::Warm,
            homes,
        })
    }

    /// Runs the market interval starting at profile step `first` and shows it to `observer`.
    fn interval(
        &mut self,
        first: usize,
        observer: &mut impl IntervalObserver,
    ) -> Result<IntervalRecord, SimError> {
        let (auction, outcome, orders) = self.market_step();
        let start = self.grid.load_profiles.time_of(first);
        let mut rec = IntervalRecord {
            time: minute_text(start),
            step: first,
            orders,
            volume_wh: outcome.volume_wh,
            price: outcome.clearing_price.map(price_f64),
            ..IntervalRecord::default()
        };
        let signal = self.price_signal(&outcome);
        let (phys, base_phys) = self.physics_step(first, signal, &mut rec);
        let settlement = self.settle_step(first, &auction, &outcome, &mut rec)?;
        self.last_price = outcome.clearing_price.or(self.last_price);
        let steps = self.per_interval as f64;
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
            start,
            orders: auction.orders(),
            outcome: &outcome,
            settlement: &settlement,
            tariffs: self.tariffs,
            record: &rec,
            worst: phys.worst,
        });
        self.auction = Some(auction);
        Ok(rec)
    }

    /// Every household's order from its persistence forecast, cleared by the engine. Returns the
    /// auction (its book), the outcome and how many orders it admitted.
    fn market_step(&mut self) -> (Book, ClearingOutcome, u32) {
        let mut auction = self.auction.take().unwrap_or_else(|| {
            CallAuction::with_capacity_and_hasher(self.rules, self.homes.len(), FxBuildHasher)
        });
        auction.reset();
        let mut orders = 0;
        for (seq, (home, id)) in self.homes.iter().zip(&self.order_ids).enumerate() {
            let order = home.order(id, self.scenario, &mut self.rng, seq as u64);
            if let Some(order) = order {
                if auction.submit(order).is_ok() {
                    orders += 1;
                }
            }
        }
        let outcome = auction.clear(self.scenario.mechanism);
        (auction, outcome, orders)
    }

    /// The slot in the day of the market interval starting at profile step `first`.
    fn slot_of(&self, first: usize) -> usize {
        let t = self.grid.load_profiles.time_of(first);
        ((t.hour() * 60 + t.minute()) / self.scenario.interval_minutes.max(1)) as usize
    }

    /// Plans every flexible load's window from profile step `from` (plug-in): the indicative
    /// import price of each window step is the engine's marginal import price of its
    /// interval's forecast book (every household's metered net export in the same interval one
    /// day earlier, with its own limits) ([`crate::flex`]).
    fn plan_flex(&mut self, from: usize) {
        let Some(flex) = self.scenario.flex else {
            return;
        };
        let rules = self.rules;
        let mut by_slot: BTreeMap<usize, Price> = BTreeMap::new();
        let steps = flex.hours as usize * 4;
        let mut prices = Vec::with_capacity(steps);
        for step in (from..from + steps).take_while(|&s| s < self.grid.intervals()) {
            let first = step - (step - from) % self.per_interval.max(1);
            let slot = self.slot_of(first);
            let price = match by_slot.get(&slot) {
                Some(&p) => p,
                None => {
                    let orders: Vec<Order> = self
                        .homes
                        .iter()
                        .enumerate()
                        .filter_map(|(i, home)| {
                            let net = self.history[i].get(slot).copied().unwrap_or(0);
                            home.order_for(&self.order_ids[i], self.scenario, net, 0.0, i as u64)
                        })
                        .collect();
                    let p = marginal_prices(
                        &orders,
                        rules,
                        self.scenario.network_fee,
                        self.scenario.mechanism,
                    )
                    .import;
                    by_slot.insert(slot, p);
                    p
                }
            };
            prices.push(price);
        }
        for home in &mut self.homes {
            if let Some(load) = &mut home.flex {
                load.plan(from, flex.strategy, &prices);
            }
        }
    }

    /// What the price tells batteries: `Some(true)` sell (above the tariffs' midpoint),
    /// `Some(false)` buy, `None` neither; the last cleared price stands in when nothing cleared.
    fn price_signal(&self, outcome: &ClearingOutcome) -> Option<bool> {
        outcome.clearing_price.or(self.last_price).and_then(|p| {
            match p.micros().cmp(&self.mid_micros) {
                std::cmp::Ordering::Greater => Some(true),
                std::cmp::Ordering::Less => Some(false),
                std::cmp::Ordering::Equal => None,
            }
        })
    }

    /// Dispatches every household over the interval's profile steps (with and without the
    /// market) and solves both power flows per step; adds the energy to `rec` and the totals.
    fn physics_step(
        &mut self,
        first: usize,
        signal: Option<bool>,
        rec: &mut IntervalRecord,
    ) -> (Physical, Physical) {
        let (grid, scenario) = (self.grid, self.scenario);
        self.net.fill(0.0);
        self.baseline_net.fill(0.0);
        let mut phys = Physical::new();
        let mut base_phys = Physical::new();
        for step in first..first + self.per_interval {
            if let (false, Some(flex)) = (self.history.is_empty(), scenario.flex) {
                let t = grid.load_profiles.time_of(step);
                if t.hour() == flex.from_hour && t.minute() == 0 {
                    self.plan_flex(step);
                }
            }
            let grids = &mut self.grids;
            grids.power.clear();
            grids.baseline_power.clear();
            for (gen, owned) in grid.res.iter().zip(&self.owned) {
                if !owned {
                    let p = gen.p_mw
                        * scenario.pv_scale
                        * profile(&grid.res_profiles, gen.column, step);
                    grids.power.p_mw[gen.bus] -= p;
                    grids.baseline_power.p_mw[gen.bus] -= p;
                }
            }
            for (i, home) in self.homes.iter_mut().enumerate() {
                let load = &grid.loads[home.load];
                let p_load = load.p_mw * profile(&grid.load_profiles, load.p_column, step);
                let q_load = load.q_mvar * profile(&grid.load_profiles, load.q_column, step);
                let p_pv: f64 = home
                    .pv
                    .iter()
                    .map(|&(c, mw)| mw * scenario.pv_scale * profile(&grid.res_profiles, c, step))
                    .sum();
                let (flex_wh, baseline_flex_wh) =
                    home.flex.as_ref().map_or((0.0, 0.0), |f| f.at(step));
                let load_wh = p_load * WH_PER_MW_STEP;
                let pv_wh = p_pv * WH_PER_MW_STEP;
                rec.demand_wh += load_wh + flex_wh;
                rec.pv_wh += pv_wh;
                self.totals[i].load_wh += load_wh + flex_wh;
                self.totals[i].pv_wh += pv_wh;
                let own = pv_wh - load_wh - flex_wh;
                let d = home.dispatch(own, signal, false);
                self.net[i] += d.net_wh;
                grids.power.p_mw[home.bus] -= d.net_wh / WH_PER_MW_STEP;
                grids.power.q_mvar[home.bus] += q_load;
                let b = if self.separate_baseline {
                    home.dispatch(pv_wh - load_wh - baseline_flex_wh, None, true)
                        .net_wh
                } else {
                    d.net_wh
                };
                self.baseline_net[i] += b;
                grids.baseline_power.p_mw[home.bus] -= b / WH_PER_MW_STEP;
                grids.baseline_power.q_mvar[home.bus] += q_load;
            }
            if self.start == Start::Cold {
                grids.market.reset();
            }
            let converged = solve_into(
                &mut grids.market,
                &grids.power,
                &mut grids.solution,
                grids.band,
                &mut phys,
            );
            if self.separate_baseline && grids.baseline_power == grids.power {
                // No battery or flexible load dispatched differently this step: the baseline's
                // flow is the market's (the next step starts it from the market's again).
                if converged {
                    accumulate(&grids.solution, grids.band, &mut base_phys);
                } else {
                    base_phys.failed += 1;
                }
            } else if self.separate_baseline {
                // The baseline differs from the market only by the batteries' (and flexible
                // loads') dispatch, so this
                // step's market solution is a nearer start than the baseline's previous step
                // (about 3 sweeps instead of 4.6 on the 111-bus grid).
                match self.start {
                    Start::Warm => grids.baseline.start_from(&grids.market),
                    Start::Cold => grids.baseline.reset(),
                }
                solve_into(
                    &mut grids.baseline,
                    &grids.baseline_power,
                    &mut grids.solution,
                    grids.band,
                    &mut base_phys,
                );
            }
        }
        if !self.separate_baseline {
            base_phys = Physical { ..phys };
        }
        (phys, base_phys)
    }

    /// Settles the interval's trades against the metered energy (and the baseline without a
    /// market), checks the interval's invariants and adds the bills to `rec` and the totals.
    fn settle_step(
        &mut self,
        first: usize,
        auction: &Book,
        outcome: &ClearingOutcome,
        rec: &mut IntervalRecord,
    ) -> Result<Settlement, SimError> {
        let scenario = self.scenario;
        if !self.distinct_ids {
            self.metered.clear();
        }
        let slot = self.slot_of(first);
        for (i, home) in self.homes.iter_mut().enumerate() {
            let m = round_i64(self.net[i]);
            home.last_net_wh = m;
            if let Some(h) = self.history.get_mut(i) {
                if let Some(at) = h.get_mut(slot) {
                    *at = m;
                }
            }
            if !self.distinct_ids {
                self.metered.insert(home.id.clone(), m);
            }
            let b = round_i64(self.baseline_net[i]);
            let (import, export) = ((-b).max(0).unsigned_abs(), b.max(0).unsigned_abs());
            let cost = Money::of(import, scenario.retail) - Money::of(export, scenario.feed_in);
            let t = &mut self.totals[i];
            t.baseline_import_wh += import;
            t.baseline_export_wh += export;
            t.baseline_cost += cost;
            rec.baseline_import_wh += import;
            rec.baseline_export_wh += export;
            rec.baseline_cost += money_f64(cost);
        }
        if self.distinct_ids {
            for (slot, &i) in self.metered.values_mut().zip(&self.by_id) {
                *slot = self.homes[i].last_net_wh;
            }
        }
        let settlement = settle(
            &outcome.trades,
            &self.metered,
            self.tariffs,
            scenario.network_fee,
        )?;
        check_interval(first, auction.orders(), outcome, &settlement)?;
        // Bills come in participant-id order, one per reading (every household has one, and a
        // trader without one is an error): with distinct ids, bill `j` is household `by_id[j]`.
        let aligned = self.distinct_ids && settlement.bills.len() == self.by_id.len();
        for (j, bill) in settlement.bills.iter().enumerate() {
            let i = if aligned {
                debug_assert!(self.homes[self.by_id[j]].id == bill.participant);
                Some(self.by_id[j])
            } else {
                self.homes.iter().position(|h| h.id == bill.participant)
            };
            if let Some(i) = i {
                let t = &mut self.totals[i];
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
        Ok(settlement)
    }
}

/// A profile's value at `step` (0 past its end).
fn profile(profiles: &Profiles, column: usize, step: usize) -> f64 {
    profiles.column(column).get(step).copied().unwrap_or(0.0)
}

/// `t` as `%Y-%m-%d %H:%M`, written without parsing the format string each interval.
fn minute_text(t: NaiveDateTime) -> String {
    if !(0..=9999).contains(&t.year()) {
        return t.format("%Y-%m-%d %H:%M").to_string();
    }
    let mut text = String::with_capacity(16);
    let two = |text: &mut String, n: u32| {
        text.push(char::from(b'0' + (n / 10 % 10) as u8));
        text.push(char::from(b'0' + (n % 10) as u8));
    };
    let year = t.year().unsigned_abs();
    two(&mut text, year / 100);
    two(&mut text, year % 100);
    text.push('-');
    two(&mut text, t.month());
    text.push('-');
    two(&mut text, t.day());
    text.push(' ');
    two(&mut text, t.hour());
    text.push(':');
    two(&mut text, t.minute());
    text
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::data;

    #[test]
    fn minute_text_is_strftime() {
        for (y, mo, d, h, mi) in [
            (2016, 1, 1, 0, 0),
            (2016, 12, 31, 23, 45),
            (987, 6, 5, 4, 3),
        ] {
            let t = NaiveDate::from_ymd_opt(y, mo, d)
                .and_then(|d| d.and_hms_opt(h, mi, 0))
                .unwrap();
            assert_eq!(minute_text(t), t.format("%Y-%m-%d %H:%M").to_string());
        }
    }

    /// Warm-started power flows change the physical figures only within the solver's tolerance,
    /// and nothing else: the market, the bills and the energy are those of flat starts.
    #[test]
    fn warm_starts_change_nothing_but_rounding() {
        let grid = Grid::read(&data::demo_grid_dir()).unwrap();
        let scenario = Scenario {
            pv_share: 0.5,
            battery_share: 0.5,
            ..Scenario::default()
        };
        // Two sunny June days.
        let window = Window {
            start: 171 * 96,
            steps: 2 * 96,
        };
        let go = |start| run_with(&grid, &scenario, window, &mut |_, _| {}, &mut (), start);
        let (warm, cold) = (go(Start::Warm).unwrap(), go(Start::Cold).unwrap());
        assert_eq!(warm.households, cold.households);
        assert!(warm.intervals.iter().any(|r| r.volume_wh > 0));
        for (w, c) in warm.intervals.iter().zip(&cold.intervals) {
            let physical = |r: &IntervalRecord| {
                [
                    r.vm_min,
                    r.vm_max,
                    r.baseline_vm_min,
                    r.baseline_vm_max,
                    r.max_line_loading / 100.0,
                    r.max_trafo_loading / 100.0,
                    r.ext_grid_p_mw,
                ]
            };
            for (a, b) in physical(w).into_iter().zip(physical(c)) {
                assert!((a - b).abs() < 1e-9, "{}: {a} vs {b}", w.time);
            }
            let market_only = |r: &IntervalRecord| IntervalRecord {
                vm_min: 0.0,
                vm_max: 0.0,
                baseline_vm_min: 0.0,
                baseline_vm_max: 0.0,
                max_line_loading: 0.0,
                max_trafo_loading: 0.0,
                ext_grid_p_mw: 0.0,
                ..r.clone()
            };
            assert_eq!(market_only(w), market_only(c));
        }
        let kpis = |s: &Summary| Summary {
            vm_min: 0.0,
            vm_max: 0.0,
            max_line_loading: 0.0,
            max_trafo_loading: 0.0,
            ..s.clone()
        };
        assert_eq!(kpis(&warm.summary), kpis(&cold.summary));
    }
}
