//! Meter payloads into [`Reading`]s: the supported formats, the dispatcher that routes a message
//! to its decoder, and one pure module per format.
//!
//! Every decoder is a pure function (times are arguments) with its own error type, refuses a
//! payload over [`MAX_PAYLOAD_BYTES`](crate::MAX_PAYLOAD_BYTES) first through the shared
//! [`check_size`](crate::reading::check_size), and imports only down: [`crate::reading`] and
//! the helpers here ([`decimal`], [`local_time`], `json`).

pub mod capture;
pub mod decimal;
pub mod dsmr;
mod json;
pub mod local_time;
pub mod native;
pub mod shelly_gen1;
pub mod shelly_gen2;
pub mod tasmota;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error_kind::ErrorKind;
use crate::reading::{MeterId, Reading};
use dsmr::DsmrError;
use native::NativeError;
use shelly_gen1::{Gen1Accumulator, ShellyGen1Error};
use shelly_gen2::{Gen2Accumulator, ShellyGen2Error};
use tasmota::{TasmotaConfig, TasmotaError};

/// A meter payload format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// DSMR P1 telegram (all variants, see [`dsmr`]).
    Dsmr,
    /// Tasmota SML JSON on `tele/<device>/SENSOR` (see [`tasmota`]).
    Tasmota,
    /// Shelly Pro 3EM Gen2 `NotifyStatus` on `<prefix>/events/rpc` (see [`shelly_gen2`]).
    ShellyGen2,
    /// Shelly EM Gen1 `shellies/<id>/emeter/<i>/<quantity>` (see [`shelly_gen1`]).
    ShellyGen1,
    /// Voltmesh native JSON (see [`native`]).
    Native,
}

impl Format {
    /// Every format, in a fixed order.
    pub const ALL: [Format; 5] = [
        Format::Dsmr,
        Format::Tasmota,
        Format::ShellyGen2,
        Format::ShellyGen1,
        Format::Native,
    ];

    /// Guesses the format from the topic (Shelly, Tasmota) or the payload's first byte (`/` for
    /// DSMR, `{` for native JSON). Deployments that know their meters configure it instead.
    pub fn sniff(topic: &str, payload: &[u8]) -> Option<Format> {
        if topic.starts_with("shellies/") && topic.contains("/emeter/") {
            return Some(Format::ShellyGen1);
        }
        if topic.ends_with("/events/rpc") {
            return Some(Format::ShellyGen2);
        }
        if tasmota::device_from_topic(topic).is_some() {
            return Some(Format::Tasmota);
        }
        match payload.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'/') => Some(Format::Dsmr),
            Some(b'{') => Some(Format::Native),
            _ => None,
        }
    }
}

/// Why a message did not decode, by format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// No format could be determined for the message.
    #[error("no decoder for topic {0:?}")]
    UnknownFormat(String),
    /// A Tasmota topic without a device name.
    #[error("cannot find a device name in Tasmota topic {0:?}")]
    NoTasmotaDevice(String),
    /// DSMR.
    #[error("DSMR: {0}")]
    Dsmr(#[from] DsmrError),
    /// Tasmota.
    #[error("Tasmota: {0}")]
    Tasmota(#[from] TasmotaError),
    /// Shelly Gen2.
    #[error("Shelly Gen2: {0}")]
    ShellyGen2(#[from] ShellyGen2Error),
    /// Shelly Gen1.
    #[error("Shelly Gen1: {0}")]
    ShellyGen1(#[from] ShellyGen1Error),
    /// Native JSON.
    #[error("native: {0}")]
    Native(#[from] NativeError),
}

impl DecodeError {
    /// The error's countable kind.
    pub fn kind(&self) -> ErrorKind {
        use ErrorKind as K;
        match self {
            DecodeError::UnknownFormat(_) => K::UnknownFormat,
            DecodeError::NoTasmotaDevice(_) => K::BadMeterId,
            DecodeError::Dsmr(e) => match e {
                DsmrError::TooLarge(_) => K::TooLarge,
                DsmrError::NoStart
                | DsmrError::NoEnd
                | DsmrError::BadHeader(_)
                | DsmrError::BadCrcField(_)
                | DsmrError::Malformed { .. }
                | DsmrError::Duplicate(_) => K::Malformed,
                DsmrError::MissingCrc => K::MissingCrc,
                DsmrError::CrcMismatch { .. } => K::CrcMismatch,
                DsmrError::BadNumber { .. } | DsmrError::BadUnit { .. } | DsmrError::Overflow => {
                    K::BadValue
                }
                DsmrError::Missing(_) => K::MissingField,
                DsmrError::BadTimestamp(_) => K::BadTimestamp,
                DsmrError::BadMeterId(_) => K::BadMeterId,
            },
            DecodeError::Tasmota(e) => match e {
                TasmotaError::TooLarge(_) => K::TooLarge,
                TasmotaError::Json(_) | TasmotaError::AmbiguousSensor(_) => K::Malformed,
                TasmotaError::MissingTime
                | TasmotaError::NoSensor(_)
                | TasmotaError::MissingField(_) => K::MissingField,
                TasmotaError::BadTime(_) | TasmotaError::LocalTime(_) => K::BadTimestamp,
                TasmotaError::BadNumber { .. } => K::BadValue,
                TasmotaError::BadDevice(_) => K::BadMeterId,
            },
            DecodeError::ShellyGen2(e) => match e {
                ShellyGen2Error::TooLarge(_) => K::TooLarge,
                ShellyGen2Error::Json(_) | ShellyGen2Error::UnexpectedMethod(_) => K::Malformed,
                ShellyGen2Error::BadDevice(_) => K::BadMeterId,
                ShellyGen2Error::BadTimestamp => K::BadTimestamp,
                ShellyGen2Error::BadNumber { .. } => K::BadValue,
                ShellyGen2Error::TooManyDevices(_) => K::TooManyDevices,
            },
            DecodeError::ShellyGen1(e) => match e {
                ShellyGen1Error::BadTopic(_) | ShellyGen1Error::UnknownQuantity(_) => K::Malformed,
                ShellyGen1Error::TooLarge(_) => K::TooLarge,
                ShellyGen1Error::BadNumber { .. } => K::BadValue,
                ShellyGen1Error::TooManyChannels(_) => K::TooManyDevices,
            },
            DecodeError::Native(e) => match e {
                NativeError::TooLarge(_) => K::TooLarge,
                NativeError::Invalid(_) => K::Malformed,
            },
        }
    }

    /// The meter or device the message is from, when the error still tells.
    pub fn meter_hint(&self, topic: &str) -> Option<MeterId> {
        let device = match self {
            DecodeError::Tasmota(_) => tasmota::device_from_topic(topic),
            DecodeError::ShellyGen1(_) => topic.split('/').nth(1),
            _ => None,
        };
        device.and_then(|d| MeterId::new(d).ok())
    }
}

/// Decoder settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecoderConfig {
    /// Where Tasmota payloads keep their values.
    pub tasmota: TasmotaConfig,
    /// Most Shelly devices (Gen2) and channels (Gen1) tracked at once.
    pub max_shelly_devices: usize,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            tasmota: TasmotaConfig::default(),
            max_shelly_devices: 4096,
        }
    }
}

/// Routes messages to the decoders and holds the Shelly accumulators. Pure: the caller passes
/// the receive time.
#[derive(Debug, Clone)]
pub struct Decoder {
    config: DecoderConfig,
    gen2: Gen2Accumulator,
    gen1: Gen1Accumulator,
}

impl Decoder {
    /// A decoder with empty accumulators.
    pub fn new(config: DecoderConfig) -> Self {
        Decoder {
            gen2: Gen2Accumulator::new(config.max_shelly_devices),
            gen1: Gen1Accumulator::new(config.max_shelly_devices),
            config,
        }
    }

    /// Decodes one message. `format` = `None` sniffs it ([`Format::sniff`]). Returns
    /// `Ok(None)` for a valid message that does not complete a reading yet (Shelly halves,
    /// ignored Shelly Gen1 quantities).
    ///
    /// # Errors
    /// [`DecodeError`] when the message is not a valid payload of its format.
    pub fn decode(
        &mut self,
        format: Option<Format>,
        topic: &str,
        payload: &[u8],
        receive_time: DateTime<Utc>,
    ) -> Result<Option<Reading>, DecodeError> {
        let format = format
            .or_else(|| Format::sniff(topic, payload))
            .ok_or_else(|| DecodeError::UnknownFormat(crate::reading::snippet(topic.as_bytes())))?;
        match format {
            Format::Dsmr => Ok(Some(dsmr::decode(payload, receive_time)?)),
            Format::Tasmota => {
                let device = tasmota::device_from_topic(topic).ok_or_else(|| {
                    DecodeError::NoTasmotaDevice(crate::reading::snippet(topic.as_bytes()))
                })?;
                Ok(Some(tasmota::decode(
                    payload,
                    device,
                    &self.config.tasmota,
                )?))
            }
            Format::ShellyGen2 => {
                let status = shelly_gen2::decode(payload)?;
                Ok(self.gen2.push(status)?)
            }
            Format::ShellyGen1 => {
                let value = shelly_gen1::decode(topic, payload)?;
                Ok(self.gen1.push(value, receive_time)?)
            }
            Format::Native => Ok(Some(native::decode(payload)?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing() {
        assert_eq!(
            Format::sniff("shellies/shellyem-1/emeter/0/power", b"1"),
            Some(Format::ShellyGen1)
        );
        assert_eq!(
            Format::sniff("shellypro3em-1/events/rpc", b"{}"),
            Some(Format::ShellyGen2)
        );
        assert_eq!(
            Format::sniff("tele/m1/SENSOR", b"{}"),
            Some(Format::Tasmota)
        );
        assert_eq!(Format::sniff("p1/m1", b"\r\n/ISK5"), Some(Format::Dsmr));
        assert_eq!(Format::sniff("voltmesh/m1", b" {"), Some(Format::Native));
        assert_eq!(Format::sniff("voltmesh/m1", b"hello"), None);
    }

    #[test]
    fn errors_carry_their_kind() {
        let t = DateTime::from_timestamp(0, 0).unwrap();
        let mut d = Decoder::new(DecoderConfig::default());
        let kind = |d: &mut Decoder, topic: &str, payload: &[u8]| {
            d.decode(None, topic, payload, t).unwrap_err().kind()
        };
        assert_eq!(kind(&mut d, "x", b"hello"), ErrorKind::UnknownFormat);
        assert_eq!(kind(&mut d, "x", b"/abc"), ErrorKind::Malformed);
        assert_eq!(
            kind(&mut d, "tele/m/SENSOR", b"{}"),
            ErrorKind::MissingField
        );
        assert_eq!(
            kind(&mut d, "shellies/m/emeter/0/total", b"x"),
            ErrorKind::BadValue
        );
        let err = d.decode(None, "tele/m7/SENSOR", b"{", t).unwrap_err();
        assert_eq!(err.meter_hint("tele/m7/SENSOR").unwrap().as_str(), "m7");
    }
}
