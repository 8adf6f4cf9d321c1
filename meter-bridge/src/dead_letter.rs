//! What the bridge publishes to its dead-letter topic for every message it could not use.
//!
//! A record says what was wrong ([`ErrorKind`] plus the error's text), which meter it was from
//! when that is known, the topic, when it arrived, and the payload itself (base64, at most
//! [`MAX_DEAD_LETTER_PAYLOAD`] bytes of it), so an operator can replay or inspect it. Nothing
//! good is lost: a record for a register error also carries the decoded reading, which the
//! operator can accept with `Ingest::rebase` after a meter swap.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use voltmesh_engine::ParticipantId;

use crate::error_kind::ErrorKind;
use crate::reading::{MeterId, Reading};

/// Most payload bytes a dead-letter record keeps.
pub const MAX_DEAD_LETTER_PAYLOAD: usize = 4 * 1024;
/// Most topic bytes a dead-letter record keeps.
pub const MAX_DEAD_LETTER_TOPIC: usize = 256;

/// One unusable message (see the module docs). Serializes to JSON for the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// What kind of problem.
    pub kind: ErrorKind,
    /// The error's message.
    pub reason: String,
    /// The meter or device, when known.
    pub meter: Option<MeterId>,
    /// The household, for a message on a household topic (see [`crate::household::topic`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<ParticipantId>,
    /// The MQTT topic (truncated to [`MAX_DEAD_LETTER_TOPIC`] bytes).
    pub topic: String,
    /// When the bridge received it.
    pub received_at: DateTime<Utc>,
    /// The payload's full length in bytes.
    pub payload_len: usize,
    /// The first [`MAX_DEAD_LETTER_PAYLOAD`] bytes of the payload, base64 (standard, padded).
    pub payload_base64: String,
    /// Whether `payload_base64` holds less than the whole payload.
    pub payload_truncated: bool,
    /// The decoded reading, when decoding succeeded and a later check refused it.
    pub reading: Option<Reading>,
}

impl DeadLetter {
    /// A record for `payload` on `topic`.
    pub fn new(
        kind: ErrorKind,
        reason: impl ToString,
        meter: Option<MeterId>,
        topic: &str,
        payload: &[u8],
        received_at: DateTime<Utc>,
    ) -> Self {
        let kept = &payload[..payload.len().min(MAX_DEAD_LETTER_PAYLOAD)];
        let mut topic_end = topic.len().min(MAX_DEAD_LETTER_TOPIC);
        while !topic.is_char_boundary(topic_end) {
            topic_end -= 1;
        }
        DeadLetter {
            kind,
            reason: reason.to_string(),
            meter,
            participant: None,
            topic: topic[..topic_end].to_owned(),
            received_at,
            payload_len: payload.len(),
            payload_base64: STANDARD.encode(kept),
            payload_truncated: kept.len() < payload.len(),
            reading: None,
        }
    }

    /// The kept payload bytes.
    ///
    /// # Errors
    /// [`base64::DecodeError`] if the record was altered.
    pub fn payload(&self) -> Result<Vec<u8>, base64::DecodeError> {
        STANDARD.decode(&self.payload_base64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_bounded_copy_of_the_payload() {
        let t = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let small = DeadLetter::new(
            ErrorKind::Malformed,
            "bad",
            None,
            "tele/x/SENSOR",
            b"{oops",
            t,
        );
        assert_eq!(small.payload().unwrap(), b"{oops");
        assert!(!small.payload_truncated);
        let big_payload = vec![0xFFu8; MAX_DEAD_LETTER_PAYLOAD + 10];
        let long_topic = "é".repeat(200);
        let big = DeadLetter::new(
            ErrorKind::TooLarge,
            "big",
            None,
            &long_topic,
            &big_payload,
            t,
        );
        assert!(big.payload_truncated);
        assert_eq!(big.payload_len, MAX_DEAD_LETTER_PAYLOAD + 10);
        assert_eq!(big.payload().unwrap().len(), MAX_DEAD_LETTER_PAYLOAD);
        assert!(big.topic.len() <= MAX_DEAD_LETTER_TOPIC);
        let json = serde_json::to_string(&small).unwrap();
        assert!(json.contains(r#""kind":"malformed""#), "{json}");
        let back: DeadLetter = serde_json::from_str(&json).unwrap();
        assert_eq!(back, small);
    }
}
