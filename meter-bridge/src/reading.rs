//! The normalised meter reading every decoder produces.
//!
//! # Invariants
//!
//! * `import_wh` and `export_wh` are the meter's cumulative registers in whole watt-hours. A
//!   decoder never rounds a register up: fractions of a watt-hour are truncated, so a register
//!   never runs ahead of the meter and two readings of a monotonic meter stay monotonic.
//! * `power_w` is the net active power at `timestamp`: positive when the household imports from
//!   the grid, negative when it exports.
//! * `meter` is 1..=[`MeterId::MAX_LEN`] bytes of printable ASCII without spaces.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Largest payload any decoder accepts, in bytes. Real payloads are well under 4 KiB (a long
/// DSMR 5 telegram with gas and water channels is about 1.5 KiB); anything larger is refused
/// before parsing.
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024;

/// A meter's identity as the meter (or its gateway) reports it.
///
/// Cheap to clone; ordered and hashed by its text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct MeterId(Arc<str>);

/// A meter id that is empty, too long or not printable ASCII.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "meter id must be 1..={} printable ASCII characters without spaces, got {shown:?}",
    MeterId::MAX_LEN
)]
pub struct BadMeterId {
    /// The offending text, truncated.
    pub shown: String,
}

impl MeterId {
    /// Longest accepted meter id, in bytes.
    pub const MAX_LEN: usize = 96;

    /// A validated meter id.
    ///
    /// # Errors
    /// [`BadMeterId`] if `text` is empty, longer than [`MeterId::MAX_LEN`] or contains anything
    /// but printable, non-space ASCII.
    pub fn new(text: &str) -> Result<Self, BadMeterId> {
        let ok = !text.is_empty()
            && text.len() <= Self::MAX_LEN
            && text.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(MeterId(Arc::from(text)))
        } else {
            Err(BadMeterId {
                shown: crate::snippet(text.as_bytes()),
            })
        }
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MeterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for MeterId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        MeterId::new(&text).map_err(serde::de::Error::custom)
    }
}

/// One normalised reading of a household meter (see the module invariants).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reading {
    /// Which meter.
    pub meter: MeterId,
    /// When the meter took the reading (or, for formats without a clock, when it was received).
    pub timestamp: DateTime<Utc>,
    /// Cumulative energy imported from the grid, Wh.
    pub import_wh: u64,
    /// Cumulative energy exported to the grid, Wh.
    pub export_wh: u64,
    /// Net active power, W: positive = import, negative = export.
    pub power_w: i64,
}
