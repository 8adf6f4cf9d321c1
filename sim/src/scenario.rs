//! Scenario knobs of a simulation run: PV, batteries, tariffs, market rules, seed.

use serde::Serialize;
use voltmesh_engine::{Mechanism, Price};

use crate::flex::FlexLoads;
use crate::powerflow::VoltageBand;

/// Everything a run varies. All money in currency units per kWh; energy in kWh/kW.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    /// Multiplies every PV system the grid gives (1 = as in the grid).
    pub pv_scale: f64,
    /// Share (0..=1) of households without PV in the grid that get a new PV system.
    pub pv_share: f64,
    /// Peak power of a new PV system, kW.
    pub pv_kwp: f64,
    /// Share (0..=1) of households with a battery.
    pub battery_share: f64,
    /// Battery capacity, kWh.
    pub battery_kwh: f64,
    /// Battery charge/discharge power limit, kW.
    pub battery_kw: f64,
    /// What a household pays the utility per kWh.
    pub retail: Price,
    /// What the utility pays for exported energy per kWh.
    pub feed_in: Price,
    /// Network fee per kWh traded locally (paid by the buyer).
    pub network_fee: Price,
    /// Clearing mechanism (and k for the uniform price).
    pub mechanism: Mechanism,
    /// Market interval length in minutes (a multiple of the profile step).
    pub interval_minutes: u32,
    /// Seed for every random choice (who gets PV and batteries, bid markups).
    pub seed: u64,
    /// Voltage band for violations.
    pub band: VoltageBand,
    /// Flexible loads (electric cars), if any ([`crate::flex`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flex: Option<FlexLoads>,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            pv_scale: 1.0,
            pv_share: 0.0,
            pv_kwp: 5.0,
            battery_share: 0.0,
            battery_kwh: 10.0,
            battery_kw: 5.0,
            retail: Price::from_micros(300_000).unwrap_or(Price::ZERO),
            feed_in: Price::from_micros(80_000).unwrap_or(Price::ZERO),
            network_fee: Price::from_micros(20_000).unwrap_or(Price::ZERO),
            mechanism: Mechanism::default(),
            interval_minutes: 15,
            seed: 42,
            band: VoltageBand::default(),
            flex: None,
        }
    }
}

/// A scenario value out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScenarioError {
    /// A share outside 0..=1 or a negative size.
    #[error("{name} must be {expected}, got {value}")]
    OutOfRange {
        /// The knob.
        name: &'static str,
        /// What it must be.
        expected: &'static str,
        /// What it is.
        value: f64,
    },
    /// Feed-in above retail, or a negative fee.
    #[error("tariffs must satisfy 0 <= feed-in <= retail and fee >= 0 (feed-in {feed_in}, retail {retail}, fee {fee})")]
    Tariffs {
        /// Feed-in tariff.
        feed_in: Price,
        /// Retail price.
        retail: Price,
        /// Network fee.
        fee: Price,
    },
    /// The interval is not a positive multiple of the profile step.
    #[error("interval of {0} min is not a positive multiple of the profiles' step")]
    Interval(u32),
}

impl Scenario {
    /// Checks every knob.
    ///
    /// # Errors
    /// A [`ScenarioError`] for the first knob out of range.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let share = |name, value: f64| {
            if (0.0..=1.0).contains(&value) {
                Ok(())
            } else {
                Err(ScenarioError::OutOfRange {
                    name,
                    expected: "between 0 and 1",
                    value,
                })
            }
        };
        let non_negative = |name, value: f64| {
            if value >= 0.0 && value.is_finite() {
                Ok(())
            } else {
                Err(ScenarioError::OutOfRange {
                    name,
                    expected: "a non-negative number",
                    value,
                })
            }
        };
        share("pv share", self.pv_share)?;
        share("battery share", self.battery_share)?;
        non_negative("pv scale", self.pv_scale)?;
        non_negative("pv kWp", self.pv_kwp)?;
        non_negative("battery kWh", self.battery_kwh)?;
        non_negative("battery kW", self.battery_kw)?;
        if let Some(flex) = &self.flex {
            share("flex share", flex.share)?;
            non_negative("flex kWh per day", flex.kwh_per_day)?;
            non_negative("flex kW", flex.kw)?;
            if flex.from_hour > 23 || !(1..=24).contains(&flex.hours) {
                return Err(ScenarioError::OutOfRange {
                    name: "flex window",
                    expected: "a start hour 0..=23 and 1..=24 hours",
                    value: f64::from(flex.from_hour * 100 + flex.hours),
                });
            }
        }
        if self.feed_in < Price::ZERO
            || self.feed_in > self.retail
            || self.network_fee < Price::ZERO
        {
            return Err(ScenarioError::Tariffs {
                feed_in: self.feed_in,
                retail: self.retail,
                fee: self.network_fee,
            });
        }
        if self.interval_minutes == 0 || self.interval_minutes % 15 != 0 {
            return Err(ScenarioError::Interval(self.interval_minutes));
        }
        Ok(())
    }
}
