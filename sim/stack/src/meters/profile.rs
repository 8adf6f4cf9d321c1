//! A household's energy per profile step, played on an accelerated clock.
//!
//! # Time
//! Step `k` of the profile is delivered during `[origin + k·step, origin + (k+1)·step)` of real
//! (wall-clock) time, at a constant rate within the step. With `step` equal to the market
//! interval, every market interval meters exactly one profile step: 15 minutes of the household's
//! life in, say, 10 seconds. Past the last step the last step's rate continues.
//!
//! # Registers
//! Cumulative import and export are kept in milliwatt-hours and shown truncated to whole Wh, so
//! they never decrease and never run ahead of the energy delivered. Within a step only one of them
//! moves (a household either imports or exports on balance over a step).

use chrono::{DateTime, TimeDelta, Utc};

use super::Sample;

/// Energy of one profile step, in mWh; at most one of the two is non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StepEnergy {
    /// Drawn from the grid.
    pub import_mwh: u64,
    /// Fed into the grid.
    pub export_mwh: u64,
}

impl StepEnergy {
    /// The step's energy from its net export in Wh (negative: import), rounded to mWh.
    pub fn from_net_wh(net_wh: f64) -> StepEnergy {
        let mwh = (net_wh.abs() * 1000.0).round();
        // Profiles give a few kWh per step; anything not finite counts as nothing.
        let mwh = if mwh.is_finite() { mwh as u64 } else { 0 };
        if net_wh >= 0.0 {
            StepEnergy {
                import_mwh: 0,
                export_mwh: mwh,
            }
        } else {
            StepEnergy {
                import_mwh: mwh,
                export_mwh: 0,
            }
        }
    }

    /// Net export in mWh (negative: import).
    pub fn net_mwh(self) -> i64 {
        i64::try_from(self.export_mwh).unwrap_or(i64::MAX)
            - i64::try_from(self.import_mwh).unwrap_or(i64::MAX)
    }
}

/// A meter that plays `steps` from `origin` with `step` of real time per profile step.
#[derive(Debug, Clone)]
pub struct ProfileMeter {
    origin: DateTime<Utc>,
    step_ms: i64,
    /// Registers at the origin, mWh.
    base: (u64, u64),
    /// Cumulative (import, export) at the start of each step, mWh; one entry more than `steps`.
    cumulative: Vec<(u64, u64)>,
    steps: Vec<StepEnergy>,
}

impl ProfileMeter {
    /// A meter whose registers read `base_wh` (import, export) at `origin`. `steps` must not be
    /// empty and `step` must be at least a millisecond (else the meter never moves).
    pub fn new(
        origin: DateTime<Utc>,
        step: TimeDelta,
        base_wh: (u64, u64),
        steps: Vec<StepEnergy>,
    ) -> ProfileMeter {
        let mut cumulative = Vec::with_capacity(steps.len() + 1);
        let mut acc = (0u64, 0u64);
        cumulative.push(acc);
        for s in &steps {
            acc = (
                acc.0.saturating_add(s.import_mwh),
                acc.1.saturating_add(s.export_mwh),
            );
            cumulative.push(acc);
        }
        ProfileMeter {
            origin,
            step_ms: step.num_milliseconds().max(1),
            base: (
                base_wh.0.saturating_mul(1000),
                base_wh.1.saturating_mul(1000),
            ),
            cumulative,
            steps,
        }
    }

    /// The step delivered at `t` (0 before the origin) and the milliseconds into it.
    fn position(&self, t: DateTime<Utc>) -> (usize, i64) {
        let elapsed = (t - self.origin).num_milliseconds().max(0);
        let k = usize::try_from(elapsed / self.step_ms).unwrap_or(usize::MAX);
        (k, elapsed % self.step_ms)
    }

    fn step(&self, k: usize) -> StepEnergy {
        self.steps
            .get(k)
            .or(self.steps.last())
            .copied()
            .unwrap_or_default()
    }

    /// Cumulative (import, export) in mWh at `t`.
    pub fn registers_mwh(&self, t: DateTime<Utc>) -> (u64, u64) {
        let (k, into) = self.position(t);
        let n = self.steps.len();
        let (done, extra_steps) = if k <= n {
            (self.cumulative[k.min(n)], 0)
        } else {
            (self.cumulative[n], (k - n) as u64)
        };
        let s = self.step(k);
        let part = |e: u64| -> u64 {
            let p = u128::from(e) * u128::from(into.unsigned_abs())
                / u128::from(self.step_ms.unsigned_abs());
            u64::try_from(p).unwrap_or(e)
        };
        (
            self.base.0 + done.0 + extra_steps * s.import_mwh + part(s.import_mwh),
            self.base.1 + done.1 + extra_steps * s.export_mwh + part(s.export_mwh),
        )
    }

    /// The meter at `t`: registers truncated to Wh, and the step's power.
    pub fn sample(&self, t: DateTime<Utc>) -> Sample {
        let (import, export) = self.registers_mwh(t);
        let (k, _) = self.position(t);
        let s = self.step(k);
        // mWh over `step` of accelerated time is mWh per 15 minutes of profile time: ×4 ÷ 1000 W.
        let power_w = (-s.net_mwh()).saturating_mul(4) / 1000;
        Sample {
            timestamp: t,
            import_wh: import / 1000,
            export_wh: export / 1000,
            power_w,
        }
    }

    /// Real time at which step `k` starts.
    pub fn step_start(&self, k: usize) -> DateTime<Utc> {
        self.origin + TimeDelta::milliseconds(self.step_ms.saturating_mul(k as i64))
    }

    /// Net export in whole Wh that the meter's registers show between the starts of steps `k`
    /// and `k + 1` (what a bridge meters for the interval of step `k`).
    pub fn metered_net_wh(&self, k: usize) -> i64 {
        let a = self.sample(self.step_start(k));
        let b = self.sample(self.step_start(k + 1));
        (b.export_wh as i64 - a.export_wh as i64) - (b.import_wh as i64 - a.import_wh as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meter() -> ProfileMeter {
        ProfileMeter::new(
            DateTime::from_timestamp(1_000_000_000, 0).unwrap(),
            TimeDelta::seconds(10),
            (1_000, 500),
            vec![
                StepEnergy::from_net_wh(-1500.4),
                StepEnergy::from_net_wh(2000.0),
                StepEnergy::from_net_wh(0.0),
            ],
        )
    }

    #[test]
    fn registers_move_linearly_and_never_back() {
        let m = meter();
        let at = |s: i64, ms: i64| m.origin + TimeDelta::seconds(s) + TimeDelta::milliseconds(ms);
        assert_eq!(m.registers_mwh(at(-5, 0)), (1_000_000, 500_000));
        assert_eq!(m.registers_mwh(at(5, 0)), (1_000_000 + 750_200, 500_000));
        assert_eq!(m.registers_mwh(at(10, 0)), (1_000_000 + 1_500_400, 500_000));
        assert_eq!(
            m.registers_mwh(at(15, 0)),
            (1_000_000 + 1_500_400, 500_000 + 1_000_000)
        );
        // Past the end the last step (zero) continues.
        assert_eq!(m.registers_mwh(at(30, 0)), m.registers_mwh(at(95, 0)));
        let mut last = (0, 0);
        for ms in (0..40_000).step_by(333) {
            let r = m.registers_mwh(at(0, ms));
            assert!(r.0 >= last.0 && r.1 >= last.1);
            last = r;
        }
        assert_eq!(
            m.sample(at(1, 0)).power_w,
            6001,
            "1500.4 Wh per 15 min is 6001.6 W"
        );
        assert_eq!(m.sample(at(11, 0)).power_w, -8000);
        assert_eq!(m.metered_net_wh(0), -1500, "whole Wh the registers show");
        assert_eq!(m.metered_net_wh(1), 2000);
        assert_eq!(m.metered_net_wh(2), 0);
    }
}
