//! Flexible loads: an electric car (or a heat pump with a hot-water tank) that must take a day's
//! energy within a daily window, and may choose when (issue 15: the price signal's effect on
//! bills and the grid).
//!
//! # The agent
//! A household with a flexible load plugs in at [`FlexLoads::from_hour`]:00 every day and must
//! take [`FlexLoads::kwh_per_day`] within [`FlexLoads::hours`] hours, at most [`FlexLoads::kw`]
//! in any step (a commuter's car: 18:00 for 13 hours; a car at home by day: 9:00 for 8 hours; a
//! hot-water heat pump: 0:00 for 24 hours). At plug-in it plans the whole window at once:
//! - [`FlexStrategy::Asap`]: from the first step on, as fast as it can (plain charging; the
//!   baseline without a market always charges so);
//! - [`FlexStrategy::Price`]: the window's steps by the neighborhood's indicative import price
//!   (cheapest first, earlier first among equals), each filled up to the power limit until the
//!   energy is planned. The indicative price of an interval is the engine's marginal import
//!   price ([`voltmesh_engine::marginal`]) of its forecast book: every household's order from
//!   its metered net energy in the same interval one day earlier, with its own limits, which is
//!   what the meter bridge publishes to households' energy managers.
//!
//! A window too short for the energy plans what fits. Plans are exact per step (Wh, `f64`).
//! Where the window holds no local surplus (a night with no PV anywhere), every step's
//! indicative import price is retail, and the price strategy charges as soon as plugged in too.

use serde::Serialize;
use voltmesh_engine::Price;

/// How a flexible load chooses its steps (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlexStrategy {
    /// As soon as plugged in.
    Asap,
    /// In the cheapest steps by the indicative import price.
    Price,
}

/// The scenario's flexible loads.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FlexLoads {
    /// Share (0..=1) of households with one.
    pub share: f64,
    /// Energy it takes every day, kWh.
    pub kwh_per_day: f64,
    /// Its power limit, kW.
    pub kw: f64,
    /// Hour of the day (profile time, 0..=23) at which it plugs in.
    pub from_hour: u32,
    /// Hours it stays plugged in (1..=24).
    pub hours: u32,
    /// How it chooses its steps with the market (the baseline charges as soon as plugged in).
    pub strategy: FlexStrategy,
}

/// One household's flexible load and its plans for the current window.
#[derive(Debug, Clone, PartialEq)]
pub struct FlexLoad {
    /// Energy per window, Wh.
    pub day_wh: f64,
    /// Most energy per profile step, Wh.
    pub max_step_wh: f64,
    /// First profile step of the current window.
    pub from_step: usize,
    /// Planned energy per step of the window, with the market.
    pub market: Vec<f64>,
    /// Planned energy per step of the window, in the baseline without a market.
    pub baseline: Vec<f64>,
}

impl FlexLoad {
    /// A load of `loads` with nothing planned.
    #[must_use]
    pub fn new(loads: &FlexLoads) -> FlexLoad {
        FlexLoad {
            day_wh: loads.kwh_per_day * 1000.0,
            max_step_wh: loads.kw * 1000.0 / 4.0,
            from_step: 0,
            market: Vec::new(),
            baseline: Vec::new(),
        }
    }

    /// Energy taken in profile step `step`: (with the market, in the baseline).
    #[must_use]
    pub fn at(&self, step: usize) -> (f64, f64) {
        let Some(k) = step.checked_sub(self.from_step) else {
            return (0.0, 0.0);
        };
        (
            self.market.get(k).copied().unwrap_or(0.0),
            self.baseline.get(k).copied().unwrap_or(0.0),
        )
    }

    /// Plans the window starting at `from_step`; `prices` are the indicative import prices of
    /// its steps (used by [`FlexStrategy::Price`]).
    pub fn plan(&mut self, from_step: usize, strategy: FlexStrategy, prices: &[Price]) {
        self.from_step = from_step;
        self.baseline = asap(self.day_wh, self.max_step_wh, prices.len());
        self.market = match strategy {
            FlexStrategy::Asap => self.baseline.clone(),
            FlexStrategy::Price => cheapest(self.day_wh, self.max_step_wh, prices),
        };
    }
}

/// `energy` over `steps` steps, each up to `max_step`, from the first on.
#[must_use]
pub fn asap(energy: f64, max_step: f64, steps: usize) -> Vec<f64> {
    let mut left = energy.max(0.0);
    (0..steps)
        .map(|_| {
            let e = left.min(max_step.max(0.0));
            left -= e;
            e
        })
        .collect()
}

/// `energy` over the steps of `prices`, each up to `max_step`, cheapest steps first (earlier
/// first among equal prices).
#[must_use]
pub fn cheapest(energy: f64, max_step: f64, prices: &[Price]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..prices.len()).collect();
    order.sort_by_key(|&k| (prices[k], k));
    let mut plan = vec![0.0; prices.len()];
    let mut left = energy.max(0.0);
    for k in order {
        if left <= 0.0 {
            break;
        }
        let e = left.min(max_step.max(0.0));
        plan[k] = e;
        left -= e;
    }
    plan
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn cost(plan: &[f64], prices: &[Price]) -> f64 {
        plan.iter()
            .zip(prices)
            .map(|(e, p)| e * p.micros() as f64)
            .sum()
    }

    #[test]
    fn asap_fills_from_the_start_and_cheapest_fills_the_cheap_steps() {
        let p = |m: i64| Price::from_micros(m).unwrap();
        let prices = [p(300_000), p(100_000), p(200_000), p(100_000)];
        assert_eq!(
            asap(2_500.0, 1_000.0, 4),
            vec![1_000.0, 1_000.0, 500.0, 0.0]
        );
        assert_eq!(
            cheapest(2_500.0, 1_000.0, &prices),
            vec![0.0, 1_000.0, 500.0, 1_000.0]
        );
        // A window too short: what fits.
        assert_eq!(asap(9_000.0, 1_000.0, 2), vec![1_000.0, 1_000.0]);
        let mut load = FlexLoad::new(&FlexLoads {
            share: 1.0,
            kwh_per_day: 2.5,
            kw: 4.0,
            from_hour: 18,
            hours: 13,
            strategy: FlexStrategy::Price,
        });
        load.plan(100, FlexStrategy::Price, &prices);
        assert_eq!(load.at(99), (0.0, 0.0));
        assert_eq!(load.at(101), (1_000.0, 1_000.0));
        assert_eq!(load.at(103), (1_000.0, 0.0));
        assert_eq!(load.at(104), (0.0, 0.0));
    }

    proptest! {
        /// Both plans take the same energy (all of it when it fits), never more than the limit
        /// per step, and the cheapest plan never costs more at the prices it planned with.
        #[test]
        fn plans_take_the_energy_within_the_limit_and_cheapest_costs_least(
            micros in proptest::collection::vec(80_000i64..300_000, 1..60),
            energy in 0.0f64..20_000.0,
            max_step in 1.0f64..3_000.0,
        ) {
            let prices: Vec<Price> = micros.iter().map(|&m| Price::from_micros(m).unwrap()).collect();
            let a = asap(energy, max_step, prices.len());
            let c = cheapest(energy, max_step, &prices);
            let want = energy.min(max_step * prices.len() as f64);
            for plan in [&a, &c] {
                let total: f64 = plan.iter().sum();
                prop_assert!((total - want).abs() < 1e-6, "{total} vs {want}");
                prop_assert!(plan.iter().all(|&e| (0.0..=max_step + 1e-9).contains(&e)));
            }
            prop_assert!(cost(&c, &prices) <= cost(&a, &prices) + 1e-3);
        }
    }
}
