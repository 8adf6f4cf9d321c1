//! What a run records: one [`IntervalRecord`] per market interval and one [`HouseholdRecord`] per
//! household, filled by [`crate::run`] and read by [`crate::kpi`], [`crate::output`],
//! [`crate::plot`] and the [`crate::metrics_observer`] seam. Energy is exact (Wh, integers) where
//! it is metered and money is exact per household; the `f64` figures are for reports only.

use serde::Serialize;
use voltmesh_engine::{Money, Price};

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

/// Converts money to a float for reports.
pub fn money_f64(m: Money) -> f64 {
    m.nanos() as f64 / 1e9
}

/// Converts a price to a float for reports.
pub fn price_f64(p: Price) -> f64 {
    p.micros() as f64 / 1e6
}
