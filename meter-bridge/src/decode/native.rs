//! Voltmesh's native JSON reading, for meters and gateways that can choose their format.
//! Documented for users in the crate's `README.md`.
//!
//! ```json
//! {"meter":"hh-042","ts":"2026-11-22T10:15:00Z","import_wh":1234567,"export_wh":89012,"power_w":-1530,"seq":17}
//! ```
//!
//! Every field except `seq` is required; unknown fields are an error (a typo must not silently
//! drop a value). Energy and power are JSON integers: a fraction is an error, not rounded.
//! `seq` is the gateway's message counter; it is checked but not part of the reading.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::reading::{check_size, MeterId, PayloadTooLarge, Reading};

/// Why a native payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NativeError {
    /// Larger than [`MAX_PAYLOAD_BYTES`](crate::MAX_PAYLOAD_BYTES).
    #[error(transparent)]
    TooLarge(#[from] PayloadTooLarge),
    /// Not a valid native reading (syntax, missing or unknown field, wrong type, bad value).
    #[error("invalid native reading: {0}")]
    Invalid(String),
}

/// The wire object; strings are borrowed from the payload unless they hold escapes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire<'a> {
    #[serde(borrow)]
    meter: Cow<'a, str>,
    #[serde(borrow)]
    ts: Cow<'a, str>,
    import_wh: u64,
    export_wh: u64,
    power_w: i64,
    #[serde(default)]
    #[allow(dead_code)]
    seq: Option<u64>,
}

/// Decodes one native reading.
///
/// # Errors
/// [`NativeError`] if the payload is oversized or not exactly the documented object.
pub fn decode(bytes: &[u8]) -> Result<Reading, NativeError> {
    check_size(bytes)?;
    let wire: Wire<'_> =
        serde_json::from_slice(bytes).map_err(|e| NativeError::Invalid(e.to_string()))?;
    let meter = MeterId::new(&wire.meter).map_err(|e| NativeError::Invalid(e.to_string()))?;
    let timestamp = DateTime::parse_from_rfc3339(&wire.ts)
        .map_err(|e| NativeError::Invalid(format!("ts {:?}: {e}", wire.ts)))?
        .with_timezone(&Utc);
    Ok(Reading {
        meter,
        timestamp,
        import_wh: wire.import_wh,
        export_wh: wire.export_wh,
        power_w: wire.power_w,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_rejects() {
        let ok = br#"{"meter":"hh-042","ts":"2026-11-22T11:15:00+01:00","import_wh":1234567,"export_wh":89012,"power_w":-1530,"seq":17}"#;
        let r = decode(ok).unwrap();
        assert_eq!(r.meter.as_str(), "hh-042");
        assert_eq!(r.timestamp.to_rfc3339(), "2026-11-22T10:15:00+00:00");
        assert_eq!(
            (r.import_wh, r.export_wh, r.power_w),
            (1_234_567, 89_012, -1530)
        );
        let without_seq =
            br#"{"meter":"m","ts":"2026-11-22T10:15:00Z","import_wh":1,"export_wh":2,"power_w":3}"#;
        assert!(decode(without_seq).is_ok());
        for bad in [
            r#"{"meter":"m","ts":"2026-11-22T10:15:00Z","import_wh":1,"export_wh":2,"power_w":3,"extra":1}"#,
            r#"{"meter":"m","ts":"2026-11-22T10:15:00Z","import_wh":1.5,"export_wh":2,"power_w":3}"#,
            r#"{"meter":"m","ts":"2026-11-22T10:15:00Z","import_wh":-1,"export_wh":2,"power_w":3}"#,
            r#"{"meter":"m","ts":"2026-11-22 10:15","import_wh":1,"export_wh":2,"power_w":3}"#,
            r#"{"meter":"","ts":"2026-11-22T10:15:00Z","import_wh":1,"export_wh":2,"power_w":3}"#,
            r#"{"meter":"m","ts":"2026-11-22T10:15:00Z","import_wh":1,"export_wh":2}"#,
            "not json",
        ] {
            assert!(
                matches!(decode(bad.as_bytes()), Err(NativeError::Invalid(_))),
                "{bad}"
            );
        }
    }
}
