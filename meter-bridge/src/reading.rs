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

/// A payload larger than [`MAX_PAYLOAD_BYTES`], refused before parsing. Every decoder embeds it
/// (`#[from]`) in its own error, and it always counts as [`ErrorKind::TooLarge`](crate::error_kind::ErrorKind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("payload of {len} bytes exceeds the {max} byte limit")]
pub struct PayloadTooLarge {
    /// The payload's length.
    pub len: usize,
    /// The limit ([`MAX_PAYLOAD_BYTES`]).
    pub max: usize,
}

/// Refuses a payload larger than [`MAX_PAYLOAD_BYTES`].
///
/// # Errors
/// [`PayloadTooLarge`] with the payload's length.
pub fn check_size(bytes: &[u8]) -> Result<(), PayloadTooLarge> {
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(PayloadTooLarge {
            len: bytes.len(),
            max: MAX_PAYLOAD_BYTES,
        });
    }
    Ok(())
}

/// At most 48 bytes of `bytes`, lossily as text, for error messages and logs.
pub(crate) fn snippet(bytes: &[u8]) -> String {
    const MAX: usize = 48;
    let cut = &bytes[..bytes.len().min(MAX)];
    let mut text = String::from_utf8_lossy(cut).into_owned();
    if bytes.len() > MAX {
        text.push('…');
    }
    text
}

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
                shown: snippet(text.as_bytes()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_check_refuses_only_what_is_over_the_limit() {
        assert_eq!(check_size(&vec![b'x'; MAX_PAYLOAD_BYTES]), Ok(()));
        let err = check_size(&vec![b'x'; MAX_PAYLOAD_BYTES + 1]).unwrap_err();
        assert_eq!(
            err,
            PayloadTooLarge {
                len: MAX_PAYLOAD_BYTES + 1,
                max: MAX_PAYLOAD_BYTES
            }
        );
        assert_eq!(
            err.to_string(),
            "payload of 16385 bytes exceeds the 16384 byte limit"
        );
        assert_eq!(snippet(b"short"), "short");
        assert_eq!(snippet(&[b'a'; 60]).chars().count(), 49);
    }

    #[test]
    fn every_decoder_counts_an_oversized_payload_as_too_large() {
        use crate::decode::{Decoder, DecoderConfig, Format};
        let t = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let big = vec![b'{'; MAX_PAYLOAD_BYTES + 1];
        let mut decoder = Decoder::new(DecoderConfig::default());
        for (format, topic) in [
            (Format::Dsmr, "dsmr/m"),
            (Format::Tasmota, "tele/dev/SENSOR"),
            (Format::ShellyGen2, "dev/events/rpc"),
            (Format::ShellyGen1, "shellies/dev/emeter/0/power"),
            (Format::Native, "voltmesh/meters/m"),
        ] {
            let err = decoder.decode(Some(format), topic, &big, t).unwrap_err();
            assert_eq!(
                err.kind(),
                crate::error_kind::ErrorKind::TooLarge,
                "{format:?}"
            );
        }
    }
}
