//! Signed reads (issue 14, deliverable 6): a participant's trades, balance, bills and statements
//! are its load curve, so the node serves them only to a request signed by one of the
//! participant's keys or by a key the community names for billing (genesis `billing_keys`).
//!
//! # Signing bytes (`voltmesh/read/v1`)
//! ```text
//! voltmesh/read/v1\n<neighborhood>\n<METHOD>\n<path and query, as sent>\n<time ms>
//! ```
//! sent as three headers: [`KEY_HEADER`] (hex public key), [`TIME_HEADER`] (the time, ms since
//! the Unix epoch) and [`SIGNATURE_HEADER`] (hex ed25519 signature, ZIP-215 rules like orders').
//! A node accepts a time within [`MAX_SKEW_MS`] of its clock, so a captured request cannot be
//! replayed later; within that window a replay reads the same data again and changes nothing.

use ed25519_dalek::{Signer, SigningKey};

use crate::genesis::PublicKey;

/// The signing key's public key, hex.
pub const KEY_HEADER: &str = "x-voltmesh-key";
/// The request's time, ms since the Unix epoch.
pub const TIME_HEADER: &str = "x-voltmesh-time";
/// The signature, hex.
pub const SIGNATURE_HEADER: &str = "x-voltmesh-signature";
/// How far a signed request's time may be from the node's clock, ms.
pub const MAX_SKEW_MS: u64 = 300_000;

/// The bytes a read request's signature covers.
#[must_use]
pub fn signing_bytes(
    neighborhood: &str,
    method: &str,
    path_and_query: &str,
    time_ms: u64,
) -> Vec<u8> {
    format!("voltmesh/read/v1\n{neighborhood}\n{method}\n{path_and_query}\n{time_ms}").into_bytes()
}

/// The three headers of a read signed with `key` at `time_ms`.
#[must_use]
pub fn sign(
    neighborhood: &str,
    method: &str,
    path_and_query: &str,
    time_ms: u64,
    key: &SigningKey,
) -> [(&'static str, String); 3] {
    let signature = key.sign(&signing_bytes(
        neighborhood,
        method,
        path_and_query,
        time_ms,
    ));
    [
        (KEY_HEADER, hex::encode(key.verifying_key().to_bytes())),
        (TIME_HEADER, time_ms.to_string()),
        (SIGNATURE_HEADER, hex::encode(signature.to_bytes())),
    ]
}

/// A read request's signature, as the headers carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadSignature {
    /// Who signed.
    pub key: PublicKey,
    /// When, ms since the Unix epoch.
    pub time_ms: u64,
    /// The signature.
    pub signature: [u8; 64],
}

/// Why a read is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadRejection {
    /// No signature headers: the route serves a participant's data only to its keys.
    #[error("this route serves a participant's data only to requests signed by one of its keys or a billing key (headers {KEY_HEADER}, {TIME_HEADER}, {SIGNATURE_HEADER})")]
    Unsigned,
    /// The headers do not parse.
    #[error("malformed signature headers: {0}")]
    Malformed(String),
    /// The time is too far from the node's clock.
    #[error(
        "the request's time {time_ms} is more than {MAX_SKEW_MS} ms from the node's clock {now_ms}"
    )]
    Stale {
        /// The request's time.
        time_ms: u64,
        /// The node's.
        now_ms: u64,
    },
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// The key may not read this participant's data.
    #[error("key {key} may not read {participant}'s data")]
    Forbidden {
        /// The key.
        key: String,
        /// The participant.
        participant: String,
    },
}

impl ReadRejection {
    /// The stable error kind the API answers with.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            ReadRejection::Unsigned => "unsigned_read",
            ReadRejection::Malformed(_) => "malformed_signature",
            ReadRejection::Stale { .. } => "stale_read",
            ReadRejection::BadSignature => "bad_signature",
            ReadRejection::Forbidden { .. } => "forbidden",
        }
    }
}

impl ReadSignature {
    /// The signature the three headers carry; `None` when none of them is present.
    ///
    /// # Errors
    /// [`ReadRejection::Malformed`] if some are present but not all, or one does not parse.
    pub fn from_headers(
        key: Option<&str>,
        time: Option<&str>,
        signature: Option<&str>,
    ) -> Result<Option<ReadSignature>, ReadRejection> {
        let (key, time, signature) = match (key, time, signature) {
            (None, None, None) => return Ok(None),
            (Some(k), Some(t), Some(s)) => (k, t, s),
            _ => return Err(ReadRejection::Malformed("all three headers or none".into())),
        };
        let malformed = |what: &str| ReadRejection::Malformed(format!("bad {what}"));
        let key: [u8; 32] = hex::decode(key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| malformed(KEY_HEADER))?;
        let signature: [u8; 64] = hex::decode(signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| malformed(SIGNATURE_HEADER))?;
        let time_ms = time.parse().map_err(|_| malformed(TIME_HEADER))?;
        Ok(Some(ReadSignature {
            key: PublicKey(key),
            time_ms,
            signature,
        }))
    }

    /// Checks the time against `now_ms` and the signature over the request.
    ///
    /// # Errors
    /// [`ReadRejection::Stale`] or [`ReadRejection::BadSignature`].
    pub fn check(
        &self,
        neighborhood: &str,
        method: &str,
        path_and_query: &str,
        now_ms: u64,
    ) -> Result<(), ReadRejection> {
        if self.time_ms.abs_diff(now_ms) > MAX_SKEW_MS {
            return Err(ReadRejection::Stale {
                time_ms: self.time_ms,
                now_ms,
            });
        }
        let message = signing_bytes(neighborhood, method, path_and_query, self.time_ms);
        if !crate::signature::valid(self.key.0, self.signature, &message) {
            return Err(ReadRejection::BadSignature);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_read_checks_and_anything_altered_does_not() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let path = "/v1/participants/h1/statement?from=0&to=900";
        let headers = sign("nb", "GET", path, 1_000_000, &key);
        let parse = |h: &[(&str, String); 3]| {
            ReadSignature::from_headers(Some(&h[0].1), Some(&h[1].1), Some(&h[2].1))
                .unwrap()
                .unwrap()
        };
        let read = parse(&headers);
        assert_eq!(read.check("nb", "GET", path, 1_000_000), Ok(()));
        assert_eq!(
            read.check("nb", "GET", path, 1_000_000 + MAX_SKEW_MS),
            Ok(())
        );
        assert!(matches!(
            read.check("nb", "GET", path, 1_000_001 + MAX_SKEW_MS),
            Err(ReadRejection::Stale { .. })
        ));
        for (nb, p) in [
            ("other", path),
            ("nb", "/v1/participants/h2/statement?from=0&to=900"),
        ] {
            assert_eq!(
                read.check(nb, "GET", p, 1_000_000),
                Err(ReadRejection::BadSignature)
            );
        }
        assert_eq!(ReadSignature::from_headers(None, None, None), Ok(None));
        assert_eq!(
            ReadSignature::from_headers(Some("00"), None, None).map_err(|e| e.kind()),
            Err("malformed_signature")
        );
    }
}
