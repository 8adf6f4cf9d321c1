//! Market intervals.
//!
//! # Alignment invariant
//!
//! Intervals tile UTC time from the Unix epoch: an interval of length `L` seconds starts at a
//! multiple of `L` (with `L` dividing a day, starts fall on the same wall-clock marks every day:
//! :00, :15, :30, :45 for the default 15 minutes). Orders for an interval are accepted until its
//! gate closes, `gate_closure_lead` before the interval starts. The engine never reads a clock: the
//! caller passes the time (the consensus layer passes block time).

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

const SECS_PER_DAY: u32 = 86_400;

/// Interval length and gate-closure lead time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawSpec", into = "RawSpec")]
pub struct IntervalSpec {
    length_secs: u32,
    gate_closure_lead_secs: u32,
}

#[derive(Serialize, Deserialize)]
struct RawSpec {
    length_secs: u32,
    gate_closure_lead_secs: u32,
}

impl TryFrom<RawSpec> for IntervalSpec {
    type Error = IntervalError;
    fn try_from(raw: RawSpec) -> Result<Self, IntervalError> {
        IntervalSpec::new(raw.length_secs, raw.gate_closure_lead_secs)
    }
}

impl From<IntervalSpec> for RawSpec {
    fn from(spec: IntervalSpec) -> Self {
        RawSpec {
            length_secs: spec.length_secs,
            gate_closure_lead_secs: spec.gate_closure_lead_secs,
        }
    }
}

/// An invalid interval specification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntervalError {
    /// The length is zero or does not divide a day.
    #[error("interval length must be a positive divisor of 86400 s, got {0} s")]
    BadLength(u32),
    /// The lead time exceeds a day.
    #[error("gate-closure lead must be at most one day, got {0} s")]
    LeadTooLong(u32),
}

impl IntervalSpec {
    /// 15-minute intervals with a 5-minute gate-closure lead.
    pub const DEFAULT: IntervalSpec = IntervalSpec {
        length_secs: 900,
        gate_closure_lead_secs: 300,
    };

    /// A validated specification.
    ///
    /// # Errors
    /// [`IntervalError`] if the length does not divide a day or the lead exceeds one.
    pub fn new(length_secs: u32, gate_closure_lead_secs: u32) -> Result<Self, IntervalError> {
        if length_secs == 0 || SECS_PER_DAY % length_secs != 0 {
            return Err(IntervalError::BadLength(length_secs));
        }
        if gate_closure_lead_secs > SECS_PER_DAY {
            return Err(IntervalError::LeadTooLong(gate_closure_lead_secs));
        }
        Ok(IntervalSpec {
            length_secs,
            gate_closure_lead_secs,
        })
    }

    /// Interval length in seconds.
    pub const fn length_secs(self) -> u32 {
        self.length_secs
    }

    /// Gate-closure lead in seconds.
    pub const fn gate_closure_lead_secs(self) -> u32 {
        self.gate_closure_lead_secs
    }

    /// The interval that contains `t` (delivery is under way at `t`).
    pub fn containing(self, t: DateTime<Utc>) -> Interval {
        let len = i64::from(self.length_secs);
        Interval {
            start_unix: t.timestamp().div_euclid(len) * len,
            spec: self,
        }
    }

    /// The first interval whose gate is still open at `t`: where an order submitted at `t` goes.
    pub fn first_open(self, t: DateTime<Utc>) -> Interval {
        let mut interval = self.containing(t);
        while !interval.is_open_at(t) {
            interval = interval.next();
        }
        interval
    }
}

impl Default for IntervalSpec {
    fn default() -> Self {
        IntervalSpec::DEFAULT
    }
}

/// One market interval: `[start, start + length)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval {
    start_unix: i64,
    spec: IntervalSpec,
}

impl Interval {
    /// The interval starting at `start`.
    ///
    /// # Errors
    /// `None` if `start` is not on the specification's grid.
    pub fn starting_at(spec: IntervalSpec, start: DateTime<Utc>) -> Option<Interval> {
        let interval = spec.containing(start);
        (interval.start_unix == start.timestamp() && start.timestamp_subsec_nanos() == 0)
            .then_some(interval)
    }

    /// Start of delivery.
    pub fn start(self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.start_unix, 0).unwrap_or_default()
    }

    /// End of delivery (exclusive).
    pub fn end(self) -> DateTime<Utc> {
        self.start() + TimeDelta::seconds(i64::from(self.spec.length_secs))
    }

    /// Start as Unix seconds: a compact, ordered interval id.
    pub const fn start_unix(self) -> i64 {
        self.start_unix
    }

    /// When the gate closes: no orders for this interval are accepted at or after this instant.
    pub fn gate_closure(self) -> DateTime<Utc> {
        self.start() - TimeDelta::seconds(i64::from(self.spec.gate_closure_lead_secs))
    }

    /// Whether orders for this interval are still accepted at `t`.
    pub fn is_open_at(self, t: DateTime<Utc>) -> bool {
        t < self.gate_closure()
    }

    /// The following interval.
    pub fn next(self) -> Interval {
        Interval {
            start_unix: self.start_unix + i64::from(self.spec.length_secs),
            spec: self.spec,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn intervals_align_to_the_length() {
        let spec = IntervalSpec::DEFAULT;
        let i = spec.containing(at("2026-11-22T10:07:31Z"));
        assert_eq!(i.start(), at("2026-11-22T10:00:00Z"));
        assert_eq!(i.end(), at("2026-11-22T10:15:00Z"));
        assert_eq!(i.gate_closure(), at("2026-11-22T09:55:00Z"));
        assert_eq!(i.next().start(), at("2026-11-22T10:15:00Z"));
        let before_epoch = spec.containing(at("1969-12-31T23:59:59Z"));
        assert_eq!(before_epoch.start(), at("1969-12-31T23:45:00Z"));
    }

    #[test]
    fn gate_closure_decides_the_open_interval() {
        let spec = IntervalSpec::DEFAULT;
        // 10:09:59 is before 10:10 (gate of 10:15), so 10:15 is open.
        assert_eq!(
            spec.first_open(at("2026-11-22T10:09:59Z")).start(),
            at("2026-11-22T10:15:00Z")
        );
        // At 10:10:00 exactly the gate of 10:15 is closed.
        assert_eq!(
            spec.first_open(at("2026-11-22T10:10:00Z")).start(),
            at("2026-11-22T10:30:00Z")
        );
        let long_lead = IntervalSpec::new(900, 3600).unwrap();
        assert_eq!(
            long_lead.first_open(at("2026-11-22T10:00:00Z")).start(),
            at("2026-11-22T11:15:00Z")
        );
    }

    #[test]
    fn rejects_bad_specs() {
        assert_eq!(IntervalSpec::new(0, 0), Err(IntervalError::BadLength(0)));
        assert_eq!(IntervalSpec::new(7, 0), Err(IntervalError::BadLength(7)));
        assert!(IntervalSpec::new(3600, 86_401).is_err());
        assert!(Interval::starting_at(IntervalSpec::DEFAULT, at("2026-11-22T10:01:00Z")).is_none());
        assert!(Interval::starting_at(IntervalSpec::DEFAULT, at("2026-11-22T10:15:00Z")).is_some());
    }
}
