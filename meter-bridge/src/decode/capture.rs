//! Captured payloads, as an installer has them: what `mosquitto_sub` printed for a household's
//! meter, decoded with the bridge's own [`Decoder`] so a meter can be checked before it is added
//! to `bridge.toml` (`voltmesh bridge decode`).
//!
//! # Input
//! Either one message per capture (the whole text is the payload, published on the topic the
//! caller names), or, with `mosquitto_sub -v`'s layout, one message per line: the topic, white
//! space, the payload ([`parse_lines`]; empty lines and lines starting with `#` are skipped).
//! A final `\n` that `mosquitto_sub` adds after a payload is dropped; a `\r\n` that ends a DSMR
//! telegram is part of the telegram and kept.
//!
//! # Output
//! Every reading the messages complete, in order. Shelly meters need several messages for one
//! reading (Gen2: `em:0` and `emdata:0`; Gen1: one topic per quantity), so give every message of
//! one publish burst; messages that are valid but complete no reading are [`CaptureError::Incomplete`].
//!
//! Pure: the receive time arrives as an argument.

use chrono::{DateTime, Utc};

use crate::{DecodeError, Decoder, DecoderConfig, Format, Reading};

/// One captured message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The topic it was published on (may be empty: the payload alone then picks the format).
    pub topic: String,
    /// Its payload.
    pub payload: Vec<u8>,
}

impl Message {
    /// A message from a capture's whole text, without the final `\n` `mosquitto_sub` adds.
    pub fn from_capture(topic: &str, capture: &[u8]) -> Message {
        Message {
            topic: topic.to_owned(),
            payload: strip_sub_newline(capture).to_vec(),
        }
    }
}

/// Why a capture gave no reading.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptureError {
    /// A message did not decode.
    #[error("message {index} (topic {topic:?}): {error}")]
    Decode {
        /// Which message, counting from 1.
        index: usize,
        /// Its topic.
        topic: String,
        /// The decoder's error (in the message, so not also a `source`).
        error: DecodeError,
    },
    /// A line of a `topic payload` capture has no payload.
    #[error("line {line}: expected \"topic payload\" (as mosquitto_sub -v prints it)")]
    BadLine {
        /// The line, counting from 1.
        line: usize,
    },
    /// No message was given.
    #[error("the capture holds no message")]
    Empty,
    /// Every message decoded, but none completed a reading.
    #[error("{messages} valid message(s) but no complete reading: a Shelly reading needs every message of one publish burst (Gen2: em:0 and emdata:0; Gen1: power and energy topics)")]
    Incomplete {
        /// How many messages were decoded.
        messages: usize,
    },
}

/// Splits a `mosquitto_sub -v` capture into messages (see the module docs).
///
/// # Errors
/// [`CaptureError::BadLine`] for a line with a topic but no payload.
pub fn parse_lines(text: &str) -> Result<Vec<Message>, CaptureError> {
    let mut messages = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (topic, payload) = line
            .split_once(char::is_whitespace)
            .ok_or(CaptureError::BadLine { line: i + 1 })?;
        messages.push(Message {
            topic: topic.to_owned(),
            payload: payload.trim_start().as_bytes().to_vec(),
        });
    }
    Ok(messages)
}

/// Decodes `messages` in order with one [`Decoder`] (default settings), as the bridge would have
/// received them at `receive_time`. `format` = `None` picks each message's format as the bridge
/// does without a configured one ([`Format::sniff`]).
///
/// # Errors
/// The first message that does not decode, no message, or no complete reading.
pub fn decode(
    format: Option<Format>,
    messages: &[Message],
    receive_time: DateTime<Utc>,
) -> Result<Vec<Reading>, CaptureError> {
    if messages.is_empty() {
        return Err(CaptureError::Empty);
    }
    let mut decoder = Decoder::new(DecoderConfig::default());
    let mut readings = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        match decoder.decode(format, &m.topic, &m.payload, receive_time) {
            Ok(Some(reading)) => readings.push(reading),
            Ok(None) => {}
            Err(error) => {
                return Err(CaptureError::Decode {
                    index: i + 1,
                    topic: m.topic.clone(),
                    error,
                })
            }
        }
    }
    if readings.is_empty() {
        return Err(CaptureError::Incomplete {
            messages: messages.len(),
        });
    }
    Ok(readings)
}

/// `capture` without one final `\n` that is not part of a `\r\n`.
fn strip_sub_newline(capture: &[u8]) -> &[u8] {
    match capture {
        [.., b'\r', b'\n'] => capture,
        [rest @ .., b'\n'] => rest,
        _ => capture,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_750_000_000, 0).unwrap()
    }

    #[test]
    fn a_dsmr_telegram_as_mosquitto_sub_prints_it() {
        let mut printed = fixture("dsmr_v5_iskra_MT382.txt");
        printed.push(b'\n');
        let readings = decode(None, &[Message::from_capture("", &printed)], at()).unwrap();
        assert_eq!(readings.len(), 1);
        let raw = fixture("dsmr_v5_iskra_MT382.txt");
        let direct = decode(None, &[Message::from_capture("dsmr/x", &raw)], at()).unwrap();
        assert_eq!(
            readings, direct,
            "the final newline of mosquitto_sub is dropped"
        );
    }

    #[test]
    fn shelly_gen2_needs_both_halves() {
        let topic = "shellypro3em-c8f09e8a1b2c/events/rpc";
        let em = Message::from_capture(topic, &fixture("shelly_pro3em_events_rpc_em0.json"));
        let emdata =
            Message::from_capture(topic, &fixture("shelly_pro3em_events_rpc_emdata0.json"));
        assert_eq!(
            decode(None, std::slice::from_ref(&em), at()),
            Err(CaptureError::Incomplete { messages: 1 })
        );
        let readings = decode(None, &[em, emdata], at()).unwrap();
        assert_eq!(readings.len(), 1);
    }

    #[test]
    fn a_gen1_session_in_topic_payload_lines() {
        let text = String::from_utf8(fixture("voltmesh_shelly_gen1_session.txt")).unwrap();
        let messages = parse_lines(&text).unwrap();
        assert!(messages.len() > 2);
        assert!(messages[0].topic.starts_with("shellies/"));
        let readings = decode(Some(Format::ShellyGen1), &messages, at()).unwrap();
        assert!(!readings.is_empty());
    }

    #[test]
    fn errors_name_the_message() {
        let good = Message::from_capture("", &fixture("voltmesh_native_reading.json"));
        let bad = Message::from_capture("tele/m7/SENSOR", b"{\"StatusSNS\": 1}");
        let err = decode(None, &[good, bad], at()).unwrap_err();
        let CaptureError::Decode { index, topic, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!((*index, topic.as_str()), (2, "tele/m7/SENSOR"));
        assert!(err
            .to_string()
            .starts_with("message 2 (topic \"tele/m7/SENSOR\"): Tasmota"));
        assert_eq!(decode(None, &[], at()), Err(CaptureError::Empty));
        assert_eq!(
            parse_lines("# comment\n\nshellies/x/emeter/0/power\n"),
            Err(CaptureError::BadLine { line: 3 })
        );
    }

    #[test]
    fn only_the_subscribers_newline_is_dropped() {
        assert_eq!(strip_sub_newline(b"{}\n"), b"{}");
        assert_eq!(strip_sub_newline(b"!6EEE\r\n"), b"!6EEE\r\n");
        assert_eq!(strip_sub_newline(b"{}"), b"{}");
    }
}
