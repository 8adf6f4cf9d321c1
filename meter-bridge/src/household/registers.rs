//! Cumulative register tracking per meter, validation, and metered energy per market interval.
//!
//! # Validation
//! A reading is accepted only if its meter is registered, it is not stamped more than
//! [`RegisterPolicy::max_future_skew`] after the caller's `now`, it is newer than the meter's
//! last accepted reading, and neither register decreased. A register that decreases means a
//! meter swap or a rollover: [`RegisterError::RegisterWentBackwards`] is returned and nothing
//! changes; once the operator (or the ingest policy) has decided it is a swap,
//! [`RegisterBook::rebase`] starts the meter afresh from that reading.
//!
//! # Attribution
//! The energy between two consecutive readings is spread over the intervals they span in
//! proportion to time, with integer arithmetic: the share of `[a, b)` is
//! `floor(Δ·(b−t₀)/(t₁−t₀)) − floor(Δ·(a−t₀)/(t₁−t₀))`, so shares always sum to exactly Δ.
//! An interval's energy is *complete* once the meter has readings at or before its start and at
//! or after its end; [`RegisterBook::metered`] reports only complete intervals.
//!
//! # Known limitations
//! Only the most recent [`RegisterPolicy::retention_intervals`] intervals are kept; energy that
//! falls before that window (a meter silent for days) is not attributed.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use voltmesh_engine::{Interval, IntervalSpec};

use crate::household::registry::{Registry, RegistryError};
use crate::reading::{MeterId, Reading};

/// Which register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Register {
    /// Energy from the grid.
    Import,
    /// Energy to the grid.
    Export,
}

/// Why a reading was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// The meter is not registered.
    #[error(transparent)]
    UnknownMeter(#[from] RegistryError),
    /// A cumulative register decreased: meter swap or rollover.
    #[error("meter {meter}: {register:?} register went backwards from {previous_wh} Wh to {current_wh} Wh")]
    RegisterWentBackwards {
        /// The meter.
        meter: MeterId,
        /// Which register.
        register: Register,
        /// The last accepted value.
        previous_wh: u64,
        /// The refused value.
        current_wh: u64,
    },
    /// Stamped too far after `now`.
    #[error("meter {meter}: reading at {timestamp} is more than the allowed skew after {now}")]
    TimestampInFuture {
        /// The meter.
        meter: MeterId,
        /// The reading's time.
        timestamp: DateTime<Utc>,
        /// The caller's clock.
        now: DateTime<Utc>,
    },
    /// Not newer than the meter's last accepted reading.
    #[error("meter {meter}: reading at {timestamp} is not after the last one at {last}")]
    OutOfOrder {
        /// The meter.
        meter: MeterId,
        /// The reading's time.
        timestamp: DateTime<Utc>,
        /// The last accepted reading's time.
        last: DateTime<Utc>,
    },
}

impl RegisterError {
    /// The error's countable kind.
    pub fn kind(&self) -> crate::error_kind::ErrorKind {
        use crate::error_kind::ErrorKind as K;
        match self {
            RegisterError::UnknownMeter(_) => K::UnknownMeter,
            RegisterError::RegisterWentBackwards { .. } => K::RegisterWentBackwards,
            RegisterError::TimestampInFuture { .. } => K::TimestampInFuture,
            RegisterError::OutOfOrder { .. } => K::OutOfOrder,
        }
    }
}

/// Validation and retention settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegisterPolicy {
    /// How far after `now` a reading may be stamped (meter clocks drift), seconds.
    pub max_future_skew_secs: u32,
    /// How many recent intervals of metered energy to keep per meter.
    pub retention_intervals: u32,
}

impl RegisterPolicy {
    /// The allowed skew.
    pub fn max_future_skew(self) -> TimeDelta {
        TimeDelta::seconds(i64::from(self.max_future_skew_secs))
    }
}

impl Default for RegisterPolicy {
    /// Five minutes of skew; two days and a bit of 15-minute intervals (enough for "same
    /// interval yesterday").
    fn default() -> Self {
        RegisterPolicy {
            max_future_skew_secs: 300,
            retention_intervals: 200,
        }
    }
}

/// Energy metered in one interval, Wh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IntervalEnergy {
    /// Imported from the grid.
    pub import_wh: u64,
    /// Exported to the grid.
    pub export_wh: u64,
}

impl IntervalEnergy {
    /// Net export (positive = surplus sold to the grid, negative = consumption), Wh.
    pub fn net_export_wh(self) -> i64 {
        i64::try_from(i128::from(self.export_wh) - i128::from(self.import_wh)).unwrap_or(
            if self.export_wh > self.import_wh {
                i64::MAX
            } else {
                i64::MIN
            },
        )
    }
}

#[derive(Debug, Clone)]
struct MeterState {
    /// First reading since the last (re)base: intervals starting before it are incomplete.
    since: DateTime<Utc>,
    last: Reading,
    /// Interval start (Unix seconds) → energy.
    intervals: BTreeMap<i64, IntervalEnergy>,
}

/// Per-meter registers and per-interval energy (see the module docs). Pure: `now` is passed in.
#[derive(Debug, Clone)]
pub struct RegisterBook {
    spec: IntervalSpec,
    policy: RegisterPolicy,
    meters: BTreeMap<MeterId, MeterState>,
}

/// What accepting a reading did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The meter's first reading: a baseline, no energy attributed.
    Baseline,
    /// Energy since the previous reading was attributed to intervals.
    Delta {
        /// Imported since the previous reading, Wh.
        import_wh: u64,
        /// Exported since the previous reading, Wh.
        export_wh: u64,
    },
}

impl RegisterBook {
    /// An empty book for intervals of `spec`.
    pub fn new(spec: IntervalSpec, policy: RegisterPolicy) -> Self {
        RegisterBook {
            spec,
            policy,
            meters: BTreeMap::new(),
        }
    }

    /// The interval specification.
    pub fn spec(&self) -> IntervalSpec {
        self.spec
    }

    /// Forgets everything about `meter` (its household left the bridge's list, or it moved to
    /// another household): its next reading is a baseline again.
    pub fn forget(&mut self, meter: &MeterId) {
        self.meters.remove(meter);
    }

    /// Validates and records a reading (module docs).
    ///
    /// # Errors
    /// [`RegisterError`]; on error nothing changes.
    pub fn record(
        &mut self,
        registry: &Registry,
        reading: &Reading,
        now: DateTime<Utc>,
    ) -> Result<Recorded, RegisterError> {
        registry.participant_of(&reading.meter)?;
        if reading.timestamp > now + self.policy.max_future_skew() {
            return Err(RegisterError::TimestampInFuture {
                meter: reading.meter.clone(),
                timestamp: reading.timestamp,
                now,
            });
        }
        let Some(state) = self.meters.get_mut(&reading.meter) else {
            self.rebase(reading.clone());
            return Ok(Recorded::Baseline);
        };
        let last = &state.last;
        if reading.timestamp <= last.timestamp {
            return Err(RegisterError::OutOfOrder {
                meter: reading.meter.clone(),
                timestamp: reading.timestamp,
                last: last.timestamp,
            });
        }
        for (register, previous_wh, current_wh) in [
            (Register::Import, last.import_wh, reading.import_wh),
            (Register::Export, last.export_wh, reading.export_wh),
        ] {
            if current_wh < previous_wh {
                return Err(RegisterError::RegisterWentBackwards {
                    meter: reading.meter.clone(),
                    register,
                    previous_wh,
                    current_wh,
                });
            }
        }
        let import_wh = reading.import_wh - last.import_wh;
        let export_wh = reading.export_wh - last.export_wh;
        let (t0, t1) = (last.timestamp, reading.timestamp);
        attribute(
            self.spec,
            self.policy.retention_intervals,
            &mut state.intervals,
            t0,
            t1,
            import_wh,
            export_wh,
        );
        state.last = reading.clone();
        Ok(Recorded::Delta {
            import_wh,
            export_wh,
        })
    }

    /// Starts `reading.meter` afresh from `reading` (after a meter swap or rollover): its
    /// history is dropped and intervals before `reading` are incomplete.
    pub fn rebase(&mut self, reading: Reading) {
        self.meters.insert(
            reading.meter.clone(),
            MeterState {
                since: reading.timestamp,
                last: reading,
                intervals: BTreeMap::new(),
            },
        );
    }

    /// The meter's last accepted reading.
    pub fn last_reading(&self, meter: &MeterId) -> Option<&Reading> {
        self.meters.get(meter).map(|s| &s.last)
    }

    /// Energy the meter metered in `interval`, if complete (module docs).
    pub fn metered(&self, meter: &MeterId, interval: Interval) -> Option<IntervalEnergy> {
        let state = self.meters.get(meter)?;
        if state.since > interval.start() || state.last.timestamp < interval.end() {
            return None;
        }
        let oldest_kept = state.last.timestamp.timestamp()
            - i64::from(self.policy.retention_intervals) * i64::from(self.spec.length_secs());
        if interval.start_unix() < oldest_kept {
            return None;
        }
        Some(
            state
                .intervals
                .get(&interval.start_unix())
                .copied()
                .unwrap_or_default(),
        )
    }

    /// A household's energy in `interval` summed over all its meters, if every meter is
    /// complete.
    ///
    /// # Errors
    /// [`RegistryError::UnknownParticipant`].
    pub fn household_energy(
        &self,
        registry: &Registry,
        participant: &voltmesh_engine::ParticipantId,
        interval: Interval,
    ) -> Result<Option<IntervalEnergy>, RegistryError> {
        let household = registry.household(participant)?;
        let mut total = IntervalEnergy::default();
        for meter in &household.meters {
            let Some(energy) = self.metered(meter, interval) else {
                return Ok(None);
            };
            total.import_wh = total.import_wh.saturating_add(energy.import_wh);
            total.export_wh = total.export_wh.saturating_add(energy.export_wh);
        }
        Ok(Some(total))
    }

    /// A household's net export in `interval` over all its meters, if every meter is complete.
    ///
    /// # Errors
    /// [`RegistryError::UnknownParticipant`].
    pub fn household_net_export(
        &self,
        registry: &Registry,
        participant: &voltmesh_engine::ParticipantId,
        interval: Interval,
    ) -> Result<Option<i64>, RegistryError> {
        let household = registry.household(participant)?;
        let mut net: i64 = 0;
        for meter in &household.meters {
            let Some(energy) = self.metered(meter, interval) else {
                return Ok(None);
            };
            net = net.saturating_add(energy.net_export_wh());
        }
        Ok(Some(net))
    }
}

/// Spreads `(import, export)` metered over `[t0, t1)` across the intervals it spans.
fn attribute(
    spec: IntervalSpec,
    retention: u32,
    intervals: &mut BTreeMap<i64, IntervalEnergy>,
    t0: DateTime<Utc>,
    t1: DateTime<Utc>,
    import_wh: u64,
    export_wh: u64,
) {
    let len = i64::from(spec.length_secs());
    let (s0, s1) = (t0.timestamp(), t1.timestamp());
    let span = i128::from(s1 - s0).max(1);
    let window_start = spec.containing(t1).start_unix() - i64::from(retention) * len;
    // Cumulative share at time `t` (clamped to [t0, t1]).
    let cumulative = |delta: u64, t: i64| -> u64 {
        let elapsed = i128::from(t.clamp(s0, s1) - s0);
        // ≤ delta, so it fits back into u64.
        u64::try_from(i128::from(delta) * elapsed / span).unwrap_or(delta)
    };
    if s1 == s0 {
        // Readings less than a second apart: all of it in t0's interval.
        let slot = intervals
            .entry(spec.containing(t0).start_unix())
            .or_default();
        slot.import_wh = slot.import_wh.saturating_add(import_wh);
        slot.export_wh = slot.export_wh.saturating_add(export_wh);
    }
    let mut start = spec.containing(t0).start_unix().max(window_start);
    while start < s1 {
        let end = start + len;
        let import = cumulative(import_wh, end) - cumulative(import_wh, start);
        let export = cumulative(export_wh, end) - cumulative(export_wh, start);
        if import != 0 || export != 0 {
            let slot = intervals.entry(start).or_default();
            slot.import_wh = slot.import_wh.saturating_add(import);
            slot.export_wh = slot.export_wh.saturating_add(export);
        }
        start = end;
    }
    while intervals.len() > retention as usize {
        intervals.pop_first();
    }
    // Drop anything older than the window.
    while intervals
        .first_key_value()
        .is_some_and(|(&k, _)| k < window_start)
    {
        intervals.pop_first();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::household::registry::RegistryConfig;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn registry() -> Registry {
        let config: RegistryConfig = toml::from_str(
            r#"
[[household]]
participant = "hh"
meters = ["m1", "m2"]
buy_limit = "0.3"
sell_limit = "0.1"
"#,
        )
        .unwrap();
        Registry::from_config(config).unwrap()
    }

    fn reading(meter: &str, ts: &str, import_wh: u64, export_wh: u64) -> Reading {
        Reading {
            meter: MeterId::new(meter).unwrap(),
            timestamp: t(ts),
            import_wh,
            export_wh,
            power_w: 0,
        }
    }

    fn interval(start: &str) -> Interval {
        Interval::starting_at(IntervalSpec::DEFAULT, t(start)).unwrap()
    }

    #[test]
    fn deltas_split_across_intervals_in_proportion_and_sum_exactly() {
        let reg = registry();
        let mut book = RegisterBook::new(IntervalSpec::DEFAULT, RegisterPolicy::default());
        let now = t("2026-11-22T12:00:00Z");
        let m1 = MeterId::new("m1").unwrap();
        assert_eq!(
            book.record(&reg, &reading("m1", "2026-11-22T10:10:00Z", 1000, 0), now),
            Ok(Recorded::Baseline)
        );
        // 10:10 → 10:40: 5 min in [10:00), 15 in [10:15), 10 in [10:30). 301 Wh import.
        assert_eq!(
            book.record(&reg, &reading("m1", "2026-11-22T10:40:00Z", 1301, 7), now),
            Ok(Recorded::Delta {
                import_wh: 301,
                export_wh: 7
            })
        );
        assert_eq!(
            book.metered(&m1, interval("2026-11-22T10:00:00Z")),
            None,
            "baseline mid-interval"
        );
        let e15 = book.metered(&m1, interval("2026-11-22T10:15:00Z")).unwrap();
        assert_eq!(
            book.metered(&m1, interval("2026-11-22T10:30:00Z")),
            None,
            "not over yet"
        );
        book.record(&reg, &reading("m1", "2026-11-22T10:45:00Z", 1401, 7), now)
            .unwrap();
        let e30 = book.metered(&m1, interval("2026-11-22T10:30:00Z")).unwrap();
        // floor(301·5/30)=50 → [10:00); floor(301·20/30)=200 → 150 in [10:15); 101 in [10:30) + 100.
        assert_eq!(
            e15,
            IntervalEnergy {
                import_wh: 150,
                export_wh: 3
            }
        );
        assert_eq!(
            e30,
            IntervalEnergy {
                import_wh: 201,
                export_wh: 3
            }
        );
        assert_eq!(e30.net_export_wh(), -198);
    }

    #[test]
    fn validation_errors_change_nothing() {
        let reg = registry();
        let mut book = RegisterBook::new(IntervalSpec::DEFAULT, RegisterPolicy::default());
        let now = t("2026-11-22T12:00:00Z");
        book.record(&reg, &reading("m1", "2026-11-22T11:00:00Z", 1000, 50), now)
            .unwrap();
        let backwards = book.record(&reg, &reading("m1", "2026-11-22T11:15:00Z", 999, 50), now);
        assert_eq!(
            backwards,
            Err(RegisterError::RegisterWentBackwards {
                meter: MeterId::new("m1").unwrap(),
                register: Register::Import,
                previous_wh: 1000,
                current_wh: 999
            })
        );
        assert_eq!(
            backwards.unwrap_err().kind(),
            crate::error_kind::ErrorKind::RegisterWentBackwards
        );
        let export_back = book.record(&reg, &reading("m1", "2026-11-22T11:15:00Z", 1000, 49), now);
        assert!(matches!(
            export_back,
            Err(RegisterError::RegisterWentBackwards {
                register: Register::Export,
                ..
            })
        ));
        let future = book.record(&reg, &reading("m1", "2026-11-22T12:05:01Z", 1001, 50), now);
        assert!(matches!(
            future,
            Err(RegisterError::TimestampInFuture { .. })
        ));
        assert!(
            book.record(&reg, &reading("m1", "2026-11-22T12:05:00Z", 1001, 50), now)
                .is_ok(),
            "within the skew"
        );
        let old = book.record(&reg, &reading("m1", "2026-11-22T11:30:00Z", 1001, 50), now);
        assert!(matches!(old, Err(RegisterError::OutOfOrder { .. })));
        let unknown = book.record(&reg, &reading("m9", "2026-11-22T11:30:00Z", 1, 1), now);
        assert_eq!(
            unknown.unwrap_err().kind(),
            crate::error_kind::ErrorKind::UnknownMeter
        );
        assert_eq!(
            book.last_reading(&MeterId::new("m1").unwrap())
                .unwrap()
                .import_wh,
            1001
        );
    }

    #[test]
    fn rebase_after_a_meter_swap() {
        let reg = registry();
        let mut book = RegisterBook::new(IntervalSpec::DEFAULT, RegisterPolicy::default());
        let now = t("2026-11-22T12:00:00Z");
        book.record(&reg, &reading("m1", "2026-11-22T10:00:00Z", 90_000, 0), now)
            .unwrap();
        let swap = reading("m1", "2026-11-22T10:20:00Z", 3, 0);
        assert!(book.record(&reg, &swap, now).is_err());
        book.rebase(swap);
        assert!(matches!(
            book.record(&reg, &reading("m1", "2026-11-22T10:50:00Z", 33, 0), now),
            Ok(Recorded::Delta { import_wh: 30, .. })
        ));
        let m1 = MeterId::new("m1").unwrap();
        assert_eq!(book.metered(&m1, interval("2026-11-22T10:15:00Z")), None);
        assert_eq!(
            book.metered(&m1, interval("2026-11-22T10:30:00Z")),
            Some(IntervalEnergy {
                import_wh: 15,
                export_wh: 0
            })
        );
    }

    #[test]
    fn household_net_needs_every_meter() {
        let reg = registry();
        let mut book = RegisterBook::new(IntervalSpec::DEFAULT, RegisterPolicy::default());
        let now = t("2026-11-22T12:00:00Z");
        let i = interval("2026-11-22T10:00:00Z");
        for (ts, imp, exp) in [
            ("2026-11-22T10:00:00Z", 0, 0),
            ("2026-11-22T10:15:00Z", 100, 400),
        ] {
            book.record(&reg, &reading("m1", ts, imp, exp), now)
                .unwrap();
        }
        assert_eq!(book.household_net_export(&reg, &"hh".into(), i), Ok(None));
        for (ts, imp) in [("2026-11-22T09:59:00Z", 0), ("2026-11-22T10:16:00Z", 170)] {
            book.record(&reg, &reading("m2", ts, imp, 0), now).unwrap();
        }
        // m2: 170 Wh over 17 min, 15 of them in the interval → 150.
        assert_eq!(
            book.household_net_export(&reg, &"hh".into(), i),
            Ok(Some(400 - 100 - 150))
        );
        assert!(book.household_net_export(&reg, &"zz".into(), i).is_err());
    }

    #[test]
    fn retention_bounds_memory_and_long_gaps() {
        let reg = registry();
        let policy = RegisterPolicy {
            retention_intervals: 8,
            ..RegisterPolicy::default()
        };
        let mut book = RegisterBook::new(IntervalSpec::DEFAULT, policy);
        let now = t("2027-01-01T00:00:00Z");
        book.record(&reg, &reading("m1", "2026-01-01T00:00:00Z", 0, 0), now)
            .unwrap();
        // A year-long gap: only the retained window is attributed, and it is quick.
        book.record(
            &reg,
            &reading("m1", "2026-12-31T23:00:00Z", 1_000_000, 0),
            now,
        )
        .unwrap();
        let m1 = MeterId::new("m1").unwrap();
        assert!(book.meters[&m1].intervals.len() <= 8);
        assert!(book
            .metered(&m1, interval("2026-12-31T22:00:00Z"))
            .is_some());
        assert_eq!(book.metered(&m1, interval("2026-06-01T00:00:00Z")), None);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::household::registry::RegistryConfig;
    use proptest::prelude::*;

    proptest! {
        /// However readings fall, the interval shares add up to exactly the register deltas.
        #[test]
        fn shares_sum_to_the_deltas(
            steps in prop::collection::vec((1i64..4000, 0u64..5000, 0u64..5000), 1..60),
        ) {
            let config: RegistryConfig = toml::from_str(
                "[[household]]\nparticipant = \"hh\"\nmeters = [\"m\"]\nbuy_limit = \"0.3\"\nsell_limit = \"0.1\"\n",
            ).unwrap();
            let registry = Registry::from_config(config).unwrap();
            let policy = RegisterPolicy { retention_intervals: 10_000, ..RegisterPolicy::default() };
            let mut book = RegisterBook::new(IntervalSpec::DEFAULT, policy);
            let meter = MeterId::new("m").unwrap();
            let mut r = Reading {
                meter: meter.clone(),
                timestamp: DateTime::from_timestamp(1_790_000_123, 0).unwrap(),
                import_wh: 10,
                export_wh: 20,
                power_w: 0,
            };
            let now = DateTime::from_timestamp(2_000_000_000, 0).unwrap();
            book.record(&registry, &r, now).unwrap();
            for (secs, imp, exp) in steps {
                r.timestamp += TimeDelta::seconds(secs);
                r.import_wh += imp;
                r.export_wh += exp;
                book.record(&registry, &r, now).unwrap();
            }
            let state = &book.meters[&meter];
            let import: u64 = state.intervals.values().map(|e| e.import_wh).sum();
            let export: u64 = state.intervals.values().map(|e| e.export_wh).sum();
            prop_assert_eq!(import, r.import_wh - 10);
            prop_assert_eq!(export, r.export_wh - 20);
        }
    }
}
