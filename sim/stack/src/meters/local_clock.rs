//! The wall-clock time a European meter prints: Central European Time with EU summer time.
//!
//! DSMR telegrams print `YYMMDDhhmmssX` with `X` = `S` in summer (UTC+2) and `W` in winter
//! (UTC+1); Tasmota prints its local time without an offset (factory zone CET/CEST). Summer time
//! runs from the last Sunday of March to the last Sunday of October, switching at 01:00 UTC.

use chrono::{DateTime, Datelike, NaiveDateTime, TimeDelta, Utc};
use voltmesh_meter_bridge::decode::local_time::last_sunday_0100;

/// A UTC instant as a CET/CEST meter shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    /// The wall-clock time.
    pub wall: NaiveDateTime,
    /// Whether summer time (UTC+2) is in force.
    pub summer: bool,
}

/// `t` on a CET/CEST wall clock.
pub fn cet(t: DateTime<Utc>) -> LocalTime {
    let summer = is_summer_time(t);
    let offset = if summer { 2 } else { 1 };
    LocalTime {
        wall: t.naive_utc() + TimeDelta::hours(offset),
        summer,
    }
}

/// Whether EU summer time is in force at `t`.
pub fn is_summer_time(t: DateTime<Utc>) -> bool {
    let year = t.year();
    match (last_sunday_0100(year, 3), last_sunday_0100(year, 10)) {
        (Some(start), Some(end)) => {
            let t = t.naive_utc();
            t >= start && t < end
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn switches_on_the_last_sundays_at_one_utc() {
        let at = |y, mo, d, h, mi| Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap();
        // 2026: summer time from 29 March to 25 October.
        assert!(!is_summer_time(at(2026, 3, 29, 0, 59)));
        assert!(is_summer_time(at(2026, 3, 29, 1, 0)));
        assert!(is_summer_time(at(2026, 10, 25, 0, 59)));
        assert!(!is_summer_time(at(2026, 10, 25, 1, 0)));
        let winter = cet(at(2026, 1, 15, 12, 0));
        assert_eq!(winter.wall.to_string(), "2026-01-15 13:00:00");
        assert!(!winter.summer);
        let summer = cet(at(2026, 7, 1, 23, 30));
        assert_eq!(summer.wall.to_string(), "2026-07-02 01:30:00");
        assert!(summer.summer);
    }
}
