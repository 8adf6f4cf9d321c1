//! Shelly Pro 3EM (Gen2 RPC) `NotifyStatus` / `NotifyFullStatus` on `<prefix>/events/rpc`.
//!
//! The device sends power and energy in separate notifications: `em:0` (`total_act_power`, W,
//! positive = import) whenever power changes and `emdata:0` (`total_act` / `total_act_ret`,
//! cumulative Wh) once a minute. [`decode`] turns one message into a [`Gen2Status`] holding
//! whichever parts it has; [`Gen2Accumulator`] merges them per device into [`Reading`]s.
//!
//! # Merge rule
//! A reading is emitted once per `emdata:0` update, stamped with that update's `ts`, with the
//! latest power seen from the device. If energy arrives before any power sample, it waits and is
//! emitted when the first `em:0` arrives.
//!
//! # Known limitations
//! Only the three-phase profile (`em:0`/`emdata:0`) is read; the monophase profile (`em1:N`) is
//! not. Registers truncate to whole Wh, power rounds to whole W.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::decode::decimal::parse_scaled;
use crate::decode::decimal::Rounding;
use crate::decode::json::{self, JsonNumberError};
use crate::reading::{check_size, MeterId, PayloadTooLarge, Reading};

/// Why a Shelly Gen2 message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShellyGen2Error {
    /// Larger than [`MAX_PAYLOAD_BYTES`](crate::MAX_PAYLOAD_BYTES).
    #[error(transparent)]
    TooLarge(#[from] PayloadTooLarge),
    /// Not a JSON-RPC notification of the expected shape.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// A method other than `NotifyStatus`, `NotifyFullStatus` or `NotifyEvent`.
    #[error("unexpected method {0:?}")]
    UnexpectedMethod(String),
    /// `src` is not a valid meter id.
    #[error("bad device id: {0}")]
    BadDevice(String),
    /// `params.ts` is missing or not a valid Unix time.
    #[error("missing or invalid params.ts")]
    BadTimestamp,
    /// A field is missing or not an acceptable number.
    #[error("field {field}: {cause}")]
    BadNumber {
        /// The field.
        field: &'static str,
        /// Why.
        cause: JsonNumberError,
    },
    /// The accumulator already tracks its maximum number of devices.
    #[error("too many Shelly devices (limit {0})")]
    TooManyDevices(usize),
}

/// What one notification says about a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gen2Status {
    /// The device (`src`, e.g. `shellypro3em-1234567890ab`).
    pub device: MeterId,
    /// The notification's time.
    pub timestamp: DateTime<Utc>,
    /// `em:0.total_act_power`, W.
    pub power_w: Option<i64>,
    /// `emdata:0.total_act` and `total_act_ret`, Wh.
    pub energy_wh: Option<(u64, u64)>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    src: Cow<'a, str>,
    #[serde(borrow)]
    method: Cow<'a, str>,
    #[serde(borrow)]
    params: Option<Params<'a>>,
}

#[derive(Deserialize)]
struct Params<'a> {
    #[serde(borrow)]
    ts: Option<&'a RawValue>,
    #[serde(rename = "em:0", borrow)]
    em: Option<Em<'a>>,
    #[serde(rename = "emdata:0", borrow)]
    emdata: Option<EmData<'a>>,
}

#[derive(Deserialize)]
struct Em<'a> {
    #[serde(borrow)]
    total_act_power: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct EmData<'a> {
    #[serde(borrow)]
    total_act: Option<&'a RawValue>,
    #[serde(borrow)]
    total_act_ret: Option<&'a RawValue>,
}

/// Decodes one notification.
///
/// # Errors
/// [`ShellyGen2Error`] for oversized or malformed payloads, other RPC methods, a bad `ts`, or an
/// `em:0`/`emdata:0` object without its numbers.
pub fn decode(bytes: &[u8]) -> Result<Gen2Status, ShellyGen2Error> {
    check_size(bytes)?;
    let env: Envelope<'_> =
        serde_json::from_slice(bytes).map_err(|e| ShellyGen2Error::Json(e.to_string()))?;
    if !matches!(
        env.method.as_ref(),
        "NotifyStatus" | "NotifyFullStatus" | "NotifyEvent"
    ) {
        return Err(ShellyGen2Error::UnexpectedMethod(crate::reading::snippet(
            env.method.as_bytes(),
        )));
    }
    let device = MeterId::new(&env.src).map_err(|e| ShellyGen2Error::BadDevice(e.to_string()))?;
    let params = env.params.ok_or(ShellyGen2Error::BadTimestamp)?;
    let timestamp = params
        .ts
        .and_then(|raw| parse_scaled(raw.get().as_bytes(), 3, Rounding::Truncate).ok())
        .and_then(DateTime::from_timestamp_millis)
        .ok_or(ShellyGen2Error::BadTimestamp)?;
    let power_w = match params.em {
        Some(em) => Some(number(
            em.total_act_power,
            "em:0.total_act_power",
            json::power,
        )?),
        None => None,
    };
    let energy_wh = match params.emdata {
        Some(data) => Some((
            number(data.total_act, "emdata:0.total_act", json::register)?,
            number(data.total_act_ret, "emdata:0.total_act_ret", json::register)?,
        )),
        None => None,
    };
    Ok(Gen2Status {
        device,
        timestamp,
        power_w,
        energy_wh,
    })
}

/// A required whole-unit number (`scale` 0) from an optional raw field.
fn number<T>(
    raw: Option<&RawValue>,
    field: &'static str,
    parse: fn(&RawValue, i32) -> Result<T, JsonNumberError>,
) -> Result<T, ShellyGen2Error> {
    raw.ok_or(JsonNumberError::NotANumber)
        .and_then(|raw| parse(raw, 0))
        .map_err(|cause| ShellyGen2Error::BadNumber { field, cause })
}

#[derive(Debug, Default, Clone)]
struct DeviceState {
    power_w: Option<i64>,
    /// Energy not yet emitted (waiting for a first power sample).
    pending: Option<(DateTime<Utc>, u64, u64)>,
}

/// Merges power and energy notifications per device (see the module's merge rule).
///
/// Pure: no clock, no I/O. Tracks at most `max_devices` devices.
#[derive(Debug, Clone)]
pub struct Gen2Accumulator {
    devices: BTreeMap<MeterId, DeviceState>,
    max_devices: usize,
}

impl Gen2Accumulator {
    /// An empty accumulator for at most `max_devices` devices.
    pub fn new(max_devices: usize) -> Self {
        Gen2Accumulator {
            devices: BTreeMap::new(),
            max_devices,
        }
    }

    /// Takes one decoded notification; returns a reading when it completes one.
    ///
    /// # Errors
    /// [`ShellyGen2Error::TooManyDevices`] for a new device beyond the limit.
    pub fn push(&mut self, status: Gen2Status) -> Result<Option<Reading>, ShellyGen2Error> {
        if !self.devices.contains_key(&status.device) {
            if self.devices.len() >= self.max_devices {
                return Err(ShellyGen2Error::TooManyDevices(self.max_devices));
            }
            if status.power_w.is_none() && status.energy_wh.is_none() {
                return Ok(None);
            }
        }
        let state = self.devices.entry(status.device.clone()).or_default();
        if let Some(p) = status.power_w {
            state.power_w = Some(p);
        }
        if let Some((import, export)) = status.energy_wh {
            state.pending = Some((status.timestamp, import, export));
        }
        match (state.power_w, state.pending) {
            (Some(power_w), Some((timestamp, import_wh, export_wh))) => {
                state.pending = None;
                Ok(Some(Reading {
                    meter: status.device,
                    timestamp,
                    import_wh,
                    export_wh,
                    power_w,
                }))
            }
            _ => Ok(None),
        }
    }

    /// Devices currently tracked.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// Whether no device is tracked.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ts: &str, body: &str) -> Vec<u8> {
        format!(
            r#"{{"src":"shellypro3em-ab","method":"NotifyStatus","params":{{"ts":{ts},{body}}}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn merges_power_then_energy_and_energy_then_power() {
        let mut acc = Gen2Accumulator::new(4);
        let energy = decode(&msg(
            "1700000060.00",
            r#""emdata:0":{"total_act":1000.99,"total_act_ret":5}"#,
        ))
        .unwrap();
        assert_eq!(acc.push(energy).unwrap(), None, "waits for power");
        let power = decode(&msg("1700000061.5", r#""em:0":{"total_act_power":-18.5}"#)).unwrap();
        let r = acc
            .push(power.clone())
            .unwrap()
            .expect("completes the reading");
        assert_eq!((r.import_wh, r.export_wh, r.power_w), (1000, 5, -19));
        assert_eq!(
            r.timestamp.timestamp(),
            1_700_000_060,
            "stamped with the energy's ts"
        );
        assert_eq!(acc.push(power).unwrap(), None, "energy is emitted once");
        let energy2 = decode(&msg(
            "1700000120",
            r#""emdata:0":{"total_act":1001,"total_act_ret":5}"#,
        ))
        .unwrap();
        let r2 = acc.push(energy2).unwrap().expect("power already known");
        assert_eq!((r2.import_wh, r2.power_w), (1001, -19));
        assert_eq!(r2.timestamp.timestamp(), 1_700_000_120);
    }

    #[test]
    fn refuses_bad_messages_and_too_many_devices() {
        assert!(matches!(decode(b"{}"), Err(ShellyGen2Error::Json(_))));
        assert!(matches!(
            decode(br#"{"src":"a","method":"Shelly.Reboot","params":{"ts":1}}"#),
            Err(ShellyGen2Error::UnexpectedMethod(_))
        ));
        assert_eq!(
            decode(&msg("\"x\"", r#""em:0":{}"#)),
            Err(ShellyGen2Error::BadTimestamp)
        );
        assert!(matches!(
            decode(&msg("1", r#""em:0":{"total_act_power":null}"#)),
            Err(ShellyGen2Error::BadNumber { .. })
        ));
        assert!(matches!(
            decode(&msg("1", r#""emdata:0":{"total_act":1}"#)),
            Err(ShellyGen2Error::BadNumber {
                field: "emdata:0.total_act_ret",
                ..
            })
        ));
        let mut acc = Gen2Accumulator::new(1);
        let a = decode(&msg("1", r#""em:0":{"total_act_power":1}"#)).unwrap();
        acc.push(a).unwrap();
        let mut other = decode(&msg("1", r#""em:0":{"total_act_power":1}"#)).unwrap();
        other.device = MeterId::new("other").unwrap();
        assert_eq!(acc.push(other), Err(ShellyGen2Error::TooManyDevices(1)));
    }
}
