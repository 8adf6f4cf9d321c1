//! Forecast of a household's net energy in the next interval.
//!
//! # Rule
//! With `Y` = the household's metered net export in the same interval one day earlier and `L` =
//! its net export in the most recent complete interval, the forecast is
//! `(w·Y + (100 − w)·L) / 100`, rounded half away from zero, with `w` =
//! [`ForecastConfig::weight_yesterday_pct`] (default 50). If only one of `Y` and `L` is known the
//! forecast is that one; with neither there is no forecast (and no order).
//!
//! `Y` carries the daily shape (the sun rises at the same time tomorrow), `L` the current
//! conditions (clouds, who is home). Integer arithmetic only: every replay gives the same Wh.

use serde::{Deserialize, Serialize};
use voltmesh_engine::{Interval, IntervalSpec, ParticipantId};

use crate::household::registers::RegisterBook;
use crate::household::registry::{Registry, RegistryError};

/// Forecast settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForecastConfig {
    /// Weight of "same interval yesterday", percent (0..=100); the rest goes to the last
    /// complete interval.
    pub weight_yesterday_pct: u8,
}

impl Default for ForecastConfig {
    fn default() -> Self {
        ForecastConfig {
            weight_yesterday_pct: 50,
        }
    }
}

/// The blend of the module rule. Weights above 100 count as 100.
pub fn blend(yesterday: Option<i64>, last: Option<i64>, weight_yesterday_pct: u8) -> Option<i64> {
    let w = i128::from(weight_yesterday_pct.min(100));
    match (yesterday, last) {
        (None, None) => None,
        (Some(y), None) => Some(y),
        (None, Some(l)) => Some(l),
        (Some(y), Some(l)) => {
            let num = w * i128::from(y) + (100 - w) * i128::from(l);
            let q = num / 100;
            let r = num % 100;
            let rounded = if 2 * r.abs() >= 100 {
                q + num.signum()
            } else {
                q
            };
            // A weighted mean lies between y and l, so it fits in i64.
            Some(i64::try_from(rounded).unwrap_or(if rounded > 0 { i64::MAX } else { i64::MIN }))
        }
    }
}

/// The interval one day before `interval`.
pub fn same_interval_yesterday(spec: IntervalSpec, interval: Interval) -> Interval {
    spec.containing(interval.start() - chrono::TimeDelta::days(1))
}

/// The most recent interval that has ended by `now` (its end ≤ `now`).
pub fn last_complete(spec: IntervalSpec, now: chrono::DateTime<chrono::Utc>) -> Interval {
    spec.containing(now - chrono::TimeDelta::seconds(i64::from(spec.length_secs())))
}

/// Forecast of `participant`'s net export (Wh; positive = surplus) in `target`, made at `now`.
///
/// # Errors
/// [`RegistryError::UnknownParticipant`].
pub fn forecast_net_export(
    book: &RegisterBook,
    registry: &Registry,
    participant: &ParticipantId,
    target: Interval,
    now: chrono::DateTime<chrono::Utc>,
    config: ForecastConfig,
) -> Result<Option<i64>, RegistryError> {
    let spec = book.spec();
    let yesterday =
        book.household_net_export(registry, participant, same_interval_yesterday(spec, target))?;
    let last = book.household_net_export(registry, participant, last_complete(spec, now))?;
    Ok(blend(yesterday, last, config.weight_yesterday_pct))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn blend_rule() {
        assert_eq!(blend(None, None, 50), None);
        assert_eq!(blend(Some(300), None, 50), Some(300));
        assert_eq!(blend(None, Some(-40), 50), Some(-40));
        assert_eq!(blend(Some(300), Some(100), 50), Some(200));
        assert_eq!(
            blend(Some(301), Some(100), 50),
            Some(201),
            "200.5 rounds away from zero"
        );
        assert_eq!(blend(Some(-301), Some(-100), 50), Some(-201));
        assert_eq!(blend(Some(1000), Some(0), 70), Some(700));
        assert_eq!(blend(Some(1000), Some(0), 0), Some(0));
        assert_eq!(
            blend(Some(1000), Some(0), 255),
            Some(1000),
            "clamped to 100"
        );
        assert_eq!(blend(Some(i64::MAX), Some(i64::MAX), 50), Some(i64::MAX));
        assert_eq!(
            blend(Some(i64::MIN), Some(i64::MAX), 50),
            Some(-1),
            "-0.5 rounds away from zero"
        );
    }

    #[test]
    fn reference_intervals() {
        let spec = IntervalSpec::DEFAULT;
        let target = spec.containing(t("2026-11-22T12:15:00Z"));
        assert_eq!(
            same_interval_yesterday(spec, target).start(),
            t("2026-11-21T12:15:00Z")
        );
        assert_eq!(
            last_complete(spec, t("2026-11-22T12:07:00Z")).start(),
            t("2026-11-22T11:45:00Z")
        );
        assert_eq!(
            last_complete(spec, t("2026-11-22T12:00:00Z")).start(),
            t("2026-11-22T11:45:00Z")
        );
    }
}
