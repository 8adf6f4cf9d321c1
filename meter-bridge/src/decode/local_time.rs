//! Wall-clock times without an offset, as meters print them, turned into UTC.
//!
//! DSMR telegrams carry a summer/winter flag, so they need only the zone's standard offset.
//! Tasmota prints its local time without any offset: it needs the zone's rules. We support the
//! rule every Voltmesh meter so far lives under, the European Union's (summer time from the last
//! Sunday of March to the last Sunday of October, switching at 01:00 UTC), which is also
//! Tasmota's factory default (`Timezone 99` with the CET/CEST `TimeStd`/`TimeDst`).
//!
//! # Known limitations
//! In the autumn hour that occurs twice, [`LocalClock::EuropeanUnion`] picks the earlier (summer)
//! instant; the spring hour that does not exist is an error.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeDelta, Utc, Weekday};
use serde::{Deserialize, Serialize};

/// How a meter's local wall-clock time maps to UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum LocalClock {
    /// The meter's clock runs on UTC.
    Utc,
    /// A fixed offset east of UTC, in minutes.
    Fixed {
        /// Minutes east of UTC (`60` for CET without daylight saving).
        offset_minutes: i32,
    },
    /// EU daylight-saving rules on top of a standard offset (60 = CET/CEST, 0 = WET/WEST,
    /// 120 = EET/EEST).
    EuropeanUnion {
        /// The winter (standard) offset, minutes east of UTC.
        standard_offset_minutes: i32,
    },
}

impl Default for LocalClock {
    /// Central European Time with EU summer time (Tasmota's and every DSMR meter's zone).
    fn default() -> Self {
        LocalClock::EuropeanUnion {
            standard_offset_minutes: 60,
        }
    }
}

/// A local time that does not exist or cannot be placed on the UTC line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LocalTimeError {
    /// The wall-clock time falls in the hour skipped when summer time starts.
    #[error("local time {0} does not exist (skipped at the start of summer time)")]
    Skipped(NaiveDateTime),
    /// The offset is absurd (more than 18 hours) or the instant overflows.
    #[error("local time {0} cannot be converted to UTC")]
    OutOfRange(NaiveDateTime),
}

impl LocalClock {
    /// The UTC instant of wall-clock time `local`.
    ///
    /// # Errors
    /// [`LocalTimeError::Skipped`] for a time in the spring gap, [`LocalTimeError::OutOfRange`]
    /// for absurd offsets.
    pub fn to_utc(self, local: NaiveDateTime) -> Result<DateTime<Utc>, LocalTimeError> {
        match self {
            LocalClock::Utc => Ok(local.and_utc()),
            LocalClock::Fixed { offset_minutes } => shift(local, offset_minutes),
            LocalClock::EuropeanUnion {
                standard_offset_minutes,
            } => {
                let summer = shift(local, standard_offset_minutes + 60)?;
                if eu_summer_time_at(summer) {
                    return Ok(summer);
                }
                let winter = shift(local, standard_offset_minutes)?;
                if eu_summer_time_at(winter) {
                    Err(LocalTimeError::Skipped(local))
                } else {
                    Ok(winter)
                }
            }
        }
    }
}

/// `local` minus `offset_minutes`.
///
/// # Errors
/// [`LocalTimeError::OutOfRange`] for offsets beyond ±18 h or an overflowing instant.
pub fn shift(local: NaiveDateTime, offset_minutes: i32) -> Result<DateTime<Utc>, LocalTimeError> {
    if offset_minutes.abs() > 18 * 60 {
        return Err(LocalTimeError::OutOfRange(local));
    }
    local
        .checked_sub_signed(TimeDelta::minutes(i64::from(offset_minutes)))
        .map(|t| t.and_utc())
        .ok_or(LocalTimeError::OutOfRange(local))
}

/// Whether EU summer time is in force at `t`.
fn eu_summer_time_at(t: DateTime<Utc>) -> bool {
    let year = t.year();
    let (Some(start), Some(end)) = (last_sunday_0100(year, 3), last_sunday_0100(year, 10)) else {
        return false;
    };
    let naive = t.naive_utc();
    start <= naive && naive < end
}

/// 01:00 UTC on the last Sunday of `month`.
pub fn last_sunday_0100(year: i32, month: u32) -> Option<NaiveDateTime> {
    let last_day = NaiveDate::from_ymd_opt(year, month, 31)?;
    let back = last_day.weekday().num_days_from_sunday();
    let sunday = last_day - TimeDelta::days(i64::from(back));
    debug_assert_eq!(sunday.weekday(), Weekday::Sun);
    sunday.and_hms_opt(1, 0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").unwrap()
    }
    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn eu_rules_switch_on_the_last_sundays() {
        let cet = LocalClock::default();
        assert_eq!(
            cet.to_utc(local("2022-07-07T13:01:11")),
            Ok(utc("2022-07-07T11:01:11Z"))
        );
        assert_eq!(
            cet.to_utc(local("2026-01-21T11:07:31")),
            Ok(utc("2026-01-21T10:07:31Z"))
        );
        // 2026: summer time from 29 March 01:00 UTC to 25 October 01:00 UTC.
        assert_eq!(
            cet.to_utc(local("2026-03-29T01:59:59")),
            Ok(utc("2026-03-29T00:59:59Z"))
        );
        assert!(matches!(
            cet.to_utc(local("2026-03-29T02:30:00")),
            Err(LocalTimeError::Skipped(_))
        ));
        assert_eq!(
            cet.to_utc(local("2026-03-29T03:00:00")),
            Ok(utc("2026-03-29T01:00:00Z"))
        );
        // The repeated autumn hour resolves to the earlier (summer) instant.
        assert_eq!(
            cet.to_utc(local("2026-10-25T02:30:00")),
            Ok(utc("2026-10-25T00:30:00Z"))
        );
        assert_eq!(
            cet.to_utc(local("2026-10-25T03:00:00")),
            Ok(utc("2026-10-25T02:00:00Z"))
        );
    }

    #[test]
    fn fixed_and_utc() {
        assert_eq!(
            LocalClock::Utc.to_utc(local("2026-01-01T00:00:00")),
            Ok(utc("2026-01-01T00:00:00Z"))
        );
        let ist = LocalClock::Fixed {
            offset_minutes: 330,
        };
        assert_eq!(
            ist.to_utc(local("2026-01-01T05:30:00")),
            Ok(utc("2026-01-01T00:00:00Z"))
        );
        let absurd = LocalClock::Fixed {
            offset_minutes: 10_000,
        };
        assert!(absurd.to_utc(local("2026-01-01T05:30:00")).is_err());
    }
}
