//! The runtime's clock.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The wall clock (the I/O layer's only clock; the pure core takes times as arguments).
pub(crate) fn wall_clock() -> DateTime<Utc> {
    DateTime::<Utc>::from(std::time::SystemTime::now())
}

pub(crate) fn until(t: DateTime<Utc>) -> Duration {
    (t - wall_clock()).to_std().unwrap_or(Duration::ZERO)
}
