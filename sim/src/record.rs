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
    // The same correctly rounded conversion as `i128 as f64`, in one instruction when the amount
    // fits an `i64` (always, below 9.2 billion currency units). The wide case is a call the
    // optimiser cannot see through: with `nanos as f64` inline in both arms it folds them into
    // the one `i128` conversion, a library routine of about 90 instructions.
    let nanos = m.nanos();
    let nanos = match i64::try_from(nanos) {
        Ok(n) => n as f64,
        Err(_) => wide_f64(nanos),
    };
    nanos / 1e9
}

#[inline(never)]
fn wide_f64(n: i128) -> f64 {
    n as f64
}

/// `x.round() as i64` (half away from zero, saturating, NaN to 0) without the `round` call of
/// the C library while `|x| < 2^52` (then `x` minus its truncation is exact).
pub(crate) fn round_i64(x: f64) -> i64 {
    const EXACT: f64 = 4_503_599_627_370_496.0; // 2^52
    if x.abs() < EXACT {
        let t = x as i64;
        let frac = x - t as f64;
        if frac >= 0.5 {
            t + 1
        } else if frac <= -0.5 {
            t - 1
        } else {
            t
        }
    } else {
        x.round() as i64
    }
}

/// Converts a price to a float for reports.
pub fn price_f64(p: Price) -> f64 {
    p.micros() as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_and_money_match_the_plain_conversions() {
        let edge = 0.499_999_999_999_999_94_f64;
        for x in [
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            -2.5,
            0.49,
            -0.49,
            edge,
            -edge,
            1e15 + 0.5,
            -1e15 - 0.5,
            4_503_599_627_370_495.5,
            4.6e18,
            -9.3e18,
            1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            12_345.678,
            -98_765.432_1,
        ] {
            assert_eq!(round_i64(x), x.round() as i64, "{x}");
        }
        for nanos in [
            0,
            1,
            -1,
            123_456_789_012,
            i128::from(i64::MAX),
            i128::from(i64::MIN),
            i128::from(i64::MAX) + 1,
            -(1_i128 << 100),
            (1 << 90) + 12_345,
        ] {
            let m = Money::from_nanos(nanos);
            assert_eq!(
                money_f64(m).to_bits(),
                (nanos as f64 / 1e9).to_bits(),
                "{nanos}"
            );
        }
    }
}
