//! Key performance indicators of a run, computed from its interval and household records.
//!
//! # Definitions
//! - self-sufficiency: `1 − energy from the utility / household demand` (baseline: imports);
//! - self-consumption: `1 − energy to the utility / household PV` (baseline: exports);
//! - neighbour share: `energy bought from neighbours / household demand`;
//! - savings: baseline bills (buy at retail, sell at feed-in, same physics without the market's
//!   price signal to batteries) minus market bills, in total and per household;
//! - price statistics over the intervals that cleared a price;
//! - violations: counts summed over profile steps, and steps that did not converge.

use serde::Serialize;

use crate::record::{money_f64, HouseholdRecord, IntervalRecord};
use crate::scenario::Scenario;
use crate::simbench::Grid;

/// The KPIs of a run (energy in kWh, money in currency units, rounded only here).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Grid name.
    pub grid: String,
    /// The seed of the run.
    pub seed: u64,
    /// The scenario.
    pub scenario: Option<Scenario>,
    /// Market intervals run.
    pub intervals: usize,
    /// Households.
    pub households: usize,
    /// Households with PV.
    pub households_with_pv: usize,
    /// Households with a battery.
    pub households_with_battery: usize,
    /// Household demand, kWh.
    pub demand_kwh: f64,
    /// Household PV, kWh.
    pub pv_kwh: f64,
    /// Traded between neighbours, kWh.
    pub traded_kwh: f64,
    /// From the utility with the market, kWh.
    pub from_utility_kwh: f64,
    /// To the utility with the market, kWh.
    pub to_utility_kwh: f64,
    /// Self-sufficiency with the market.
    pub self_sufficiency: f64,
    /// Self-sufficiency without.
    pub baseline_self_sufficiency: f64,
    /// Self-consumption with the market.
    pub self_consumption: f64,
    /// Self-consumption without.
    pub baseline_self_consumption: f64,
    /// Share of demand met by neighbours.
    pub neighbor_share: f64,
    /// Sum of bills with the market.
    pub market_cost: f64,
    /// Sum of bills without.
    pub baseline_cost: f64,
    /// `baseline_cost − market_cost`.
    pub savings_total: f64,
    /// Mean savings per household.
    pub savings_mean: f64,
    /// Smallest savings of a household.
    pub savings_min: f64,
    /// Largest savings of a household.
    pub savings_max: f64,
    /// Intervals that cleared a price.
    pub priced_intervals: usize,
    /// Mean clearing price.
    pub price_mean: Option<f64>,
    /// Volume-weighted mean clearing price.
    pub price_volume_weighted: Option<f64>,
    /// Lowest clearing price.
    pub price_min: Option<f64>,
    /// Median clearing price.
    pub price_median: Option<f64>,
    /// Highest clearing price.
    pub price_max: Option<f64>,
    /// Lowest bus voltage seen, p.u.
    pub vm_min: f64,
    /// Highest bus voltage seen, p.u.
    pub vm_max: f64,
    /// Highest line loading seen, percent.
    pub max_line_loading: f64,
    /// Highest transformer loading seen, percent.
    pub max_trafo_loading: f64,
    /// Violations with the market (summed over steps and elements).
    pub violations: u64,
    /// Violations without.
    pub baseline_violations: u64,
    /// Intervals with any violation, with the market.
    pub violation_intervals: usize,
    /// Intervals with any violation, without.
    pub baseline_violation_intervals: usize,
    /// Steps without power flow convergence (market, baseline).
    pub non_converged: (u64, u64),
}

fn ratio(num: f64, den: f64) -> f64 {
    if den > 0.0 {
        num / den
    } else {
        0.0
    }
}

impl Summary {
    /// Computes the KPIs.
    pub fn compute(
        grid: &Grid,
        scenario: &Scenario,
        intervals: &[IntervalRecord],
        households: &[HouseholdRecord],
    ) -> Summary {
        let sum = |f: &dyn Fn(&IntervalRecord) -> f64| intervals.iter().map(f).sum::<f64>();
        let demand = sum(&|r| r.demand_wh);
        let pv = sum(&|r| r.pv_wh);
        let traded = sum(&|r| r.volume_wh as f64);
        let from_u = sum(&|r| r.from_utility_wh as f64);
        let to_u = sum(&|r| r.to_utility_wh as f64);
        let b_import = sum(&|r| r.baseline_import_wh as f64);
        let b_export = sum(&|r| r.baseline_export_wh as f64);
        let market_cost: f64 = households.iter().map(|h| money_f64(h.market_cost)).sum();
        let baseline_cost: f64 = households.iter().map(|h| money_f64(h.baseline_cost)).sum();
        let savings: Vec<f64> = households.iter().map(|h| money_f64(h.savings())).collect();
        let mut prices: Vec<f64> = intervals.iter().filter_map(|r| r.price).collect();
        prices.sort_by(f64::total_cmp);
        let weighted = intervals
            .iter()
            .filter_map(|r| r.price.map(|p| p * r.volume_wh as f64))
            .sum::<f64>();
        let n = households.len().max(1) as f64;
        Summary {
            grid: grid.name.clone(),
            seed: scenario.seed,
            scenario: Some(scenario.clone()),
            intervals: intervals.len(),
            households: households.len(),
            households_with_pv: households.iter().filter(|h| h.pv_kwp > 0.0).count(),
            households_with_battery: households.iter().filter(|h| h.battery_kwh > 0.0).count(),
            demand_kwh: demand / 1000.0,
            pv_kwh: pv / 1000.0,
            traded_kwh: traded / 1000.0,
            from_utility_kwh: from_u / 1000.0,
            to_utility_kwh: to_u / 1000.0,
            self_sufficiency: 1.0 - ratio(from_u, demand),
            baseline_self_sufficiency: 1.0 - ratio(b_import, demand),
            self_consumption: 1.0 - ratio(to_u, pv),
            baseline_self_consumption: 1.0 - ratio(b_export, pv),
            neighbor_share: ratio(traded, demand),
            market_cost,
            baseline_cost,
            savings_total: baseline_cost - market_cost,
            savings_mean: savings.iter().sum::<f64>() / n,
            savings_min: savings.iter().copied().fold(f64::INFINITY, f64::min),
            savings_max: savings.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            priced_intervals: prices.len(),
            price_mean: (!prices.is_empty())
                .then(|| prices.iter().sum::<f64>() / prices.len() as f64),
            price_volume_weighted: (traded > 0.0).then(|| weighted / traded),
            price_min: prices.first().copied(),
            price_median: prices.get(prices.len() / 2).copied(),
            price_max: prices.last().copied(),
            vm_min: intervals
                .iter()
                .map(|r| r.vm_min)
                .fold(f64::INFINITY, f64::min),
            vm_max: intervals
                .iter()
                .map(|r| r.vm_max)
                .fold(f64::NEG_INFINITY, f64::max),
            max_line_loading: intervals
                .iter()
                .map(|r| r.max_line_loading)
                .fold(0.0, f64::max),
            max_trafo_loading: intervals
                .iter()
                .map(|r| r.max_trafo_loading)
                .fold(0.0, f64::max),
            violations: intervals.iter().map(|r| u64::from(r.violations)).sum(),
            baseline_violations: intervals
                .iter()
                .map(|r| u64::from(r.baseline_violations))
                .sum(),
            violation_intervals: intervals.iter().filter(|r| r.violations > 0).count(),
            baseline_violation_intervals: intervals
                .iter()
                .filter(|r| r.baseline_violations > 0)
                .count(),
            non_converged: (
                intervals.iter().map(|r| u64::from(r.non_converged.0)).sum(),
                intervals.iter().map(|r| u64::from(r.non_converged.1)).sum(),
            ),
        }
    }
}
