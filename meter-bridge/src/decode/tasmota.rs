//! Tasmota SML JSON, as published on `tele/<device>/SENSOR` (and inside `StatusSNS` on
//! `stat/<device>/STATUS10`).
//!
//! ```json
//! {"Time":"2022-07-07T13:01:11","SML":{"Total_in":34507.4761,"Total_out":14737.1422,"Power_curr":-894}}
//! ```
//!
//! The sensor object's name and its field names come from the meter script the user wrote, so
//! they are configurable ([`TasmotaConfig`]); the defaults follow the common convention
//! `Total_in`/`Total_out` (kWh, OBIS 1.8.0/2.8.0) and `Power_curr` (W, OBIS 16.7.0, negative =
//! export). With no sensor name configured, the one top-level object that has the import field
//! is used.
//!
//! `Time` is the device's local wall-clock time. If it carries an offset (`SetOption52 1`) the
//! offset is used, otherwise [`TasmotaConfig::clock`] places it on UTC (default: Tasmota's
//! factory CET/CEST). The meter id is the device's MQTT topic ([`device_from_topic`]).
//!
//! Numbers are parsed exactly from their JSON text (no floats): registers truncate to whole Wh,
//! power rounds to whole W.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::decode::decimal::{EnergyUnit, PowerUnit};
use crate::decode::json::{self, JsonNumberError, Key};
use crate::decode::local_time::{LocalClock, LocalTimeError};
use crate::reading::snippet;
use crate::reading::{check_size, MeterId, PayloadTooLarge, Reading};

/// Where the reading is in a Tasmota payload and what its units are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TasmotaConfig {
    /// The sensor object's name (`"SML"`, `"Haus"`…); `None` = the one object holding
    /// [`import_field`](Self::import_field).
    pub sensor: Option<String>,
    /// Cumulative import register field.
    pub import_field: String,
    /// Cumulative export register field.
    pub export_field: String,
    /// Net power field (positive = import).
    pub power_field: String,
    /// Unit of the two register fields.
    pub energy_unit: EnergyUnit,
    /// Unit of the power field.
    pub power_unit: PowerUnit,
    /// How `Time` maps to UTC when it has no offset.
    pub clock: LocalClock,
}

impl Default for TasmotaConfig {
    fn default() -> Self {
        TasmotaConfig {
            sensor: None,
            import_field: "Total_in".to_owned(),
            export_field: "Total_out".to_owned(),
            power_field: "Power_curr".to_owned(),
            energy_unit: EnergyUnit::KWh,
            power_unit: PowerUnit::W,
            clock: LocalClock::default(),
        }
    }
}

/// Why a Tasmota payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TasmotaError {
    /// Larger than [`MAX_PAYLOAD_BYTES`](crate::MAX_PAYLOAD_BYTES).
    #[error(transparent)]
    TooLarge(#[from] PayloadTooLarge),
    /// Not a JSON object of the expected shape.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// No `Time` field.
    #[error("no \"Time\" field")]
    MissingTime,
    /// `Time` is not an ISO-8601 date-time.
    #[error("bad \"Time\" {0:?}")]
    BadTime(String),
    /// `Time` cannot be placed on UTC.
    #[error(transparent)]
    LocalTime(#[from] LocalTimeError),
    /// No sensor object with the import field (or not the configured one).
    #[error("no sensor object with field {0:?}")]
    NoSensor(String),
    /// More than one object has the import field and no sensor name is configured.
    #[error("several sensor objects have field {0:?}; configure the sensor name")]
    AmbiguousSensor(String),
    /// The sensor object lacks a field.
    #[error("sensor field {0:?} is missing")]
    MissingField(String),
    /// A field is not an acceptable number.
    #[error("sensor field {field:?}: {cause}")]
    BadNumber {
        /// The field.
        field: String,
        /// Why.
        cause: JsonNumberError,
    },
    /// The device id from the topic is not a valid meter id.
    #[error("bad device id: {0}")]
    BadDevice(String),
}

/// The device name in a Tasmota topic: `tele/<device>/SENSOR`, `stat/<device>/STATUS10`, or the
/// swapped full-topic form `<device>/tele/SENSOR`.
pub fn device_from_topic(topic: &str) -> Option<&str> {
    let parts: Vec<&str> = topic.split('/').collect();
    match parts.as_slice() {
        [.., "tele", device, "SENSOR"] | [.., "stat", device, "STATUS10"] => Some(*device),
        [device, "tele", "SENSOR"] | [device, "stat", "STATUS10"] => Some(*device),
        _ => None,
    }
    .filter(|d| !d.is_empty())
}

/// Decodes one `SENSOR` (or `STATUS10`) payload of device `device`.
///
/// # Errors
/// [`TasmotaError`] if the payload is oversized, not JSON, lacks `Time` or the configured
/// sensor fields, or holds values that are not exact non-negative registers / integral power.
pub fn decode(bytes: &[u8], device: &str, config: &TasmotaConfig) -> Result<Reading, TasmotaError> {
    check_size(bytes)?;
    let meter = MeterId::new(device).map_err(|e| TasmotaError::BadDevice(e.to_string()))?;
    let top = parse_top(bytes, config)?;
    let top = match (&top.time, top.status_sns) {
        (None, Some(inner)) => parse_top(inner.get().as_bytes(), config)?,
        _ => top,
    };
    let time = top.time.as_deref().ok_or(TasmotaError::MissingTime)?;
    let timestamp = parse_time(time, config.clock)?;
    let fields = top.sensor.ok_or_else(|| match &config.sensor {
        Some(name) => TasmotaError::NoSensor(name.clone()),
        None => TasmotaError::NoSensor(config.import_field.clone()),
    })?;
    fn get<'a>(raw: Option<&'a RawValue>, name: &str) -> Result<&'a RawValue, TasmotaError> {
        raw.ok_or_else(|| TasmotaError::MissingField(name.to_owned()))
    }
    let bad = |field: &str| {
        let field = field.to_owned();
        move |cause| TasmotaError::BadNumber { field, cause }
    };
    let scale_e = config.energy_unit.scale();
    let import_wh = json::register(get(fields.import, &config.import_field)?, scale_e)
        .map_err(bad(&config.import_field))?;
    let export_wh = json::register(get(fields.export, &config.export_field)?, scale_e)
        .map_err(bad(&config.export_field))?;
    let power_w = json::power(
        get(fields.power, &config.power_field)?,
        config.power_unit.scale(),
    )
    .map_err(bad(&config.power_field))?;
    Ok(Reading {
        meter,
        timestamp,
        import_wh,
        export_wh,
        power_w,
    })
}

fn parse_time(text: &str, clock: LocalClock) -> Result<DateTime<Utc>, TasmotaError> {
    if let Ok(with_offset) = DateTime::parse_from_rfc3339(text) {
        return Ok(with_offset.with_timezone(&Utc));
    }
    let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .map_err(|_| TasmotaError::BadTime(snippet(text.as_bytes())))?;
    Ok(clock.to_utc(local)?)
}

/// The parts of a top-level object we use.
struct Top<'de> {
    time: Option<String>,
    status_sns: Option<&'de RawValue>,
    sensor: Option<SensorFields<'de>>,
}

#[derive(Default)]
struct SensorFields<'de> {
    import: Option<&'de RawValue>,
    export: Option<&'de RawValue>,
    power: Option<&'de RawValue>,
}

fn parse_top<'de>(bytes: &'de [u8], config: &TasmotaConfig) -> Result<Top<'de>, TasmotaError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let top = TopSeed(config)
        .deserialize(&mut de)
        .map_err(|e| TasmotaError::Json(e.to_string()))?;
    de.end().map_err(|e| TasmotaError::Json(e.to_string()))?;
    match top {
        TopOutcome::Ok(top) => Ok(top),
        TopOutcome::Ambiguous => Err(TasmotaError::AmbiguousSensor(config.import_field.clone())),
    }
}

enum TopOutcome<'de> {
    Ok(Top<'de>),
    Ambiguous,
}

struct TopSeed<'c>(&'c TasmotaConfig);

impl<'de> DeserializeSeed<'de> for TopSeed<'_> {
    type Value = TopOutcome<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_> {
    type Value = TopOutcome<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Tasmota telemetry object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let config = self.0;
        let mut top = Top {
            time: None,
            status_sns: None,
            sensor: None,
        };
        let mut ambiguous = false;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if key == "Time" {
                if top.time.is_some() {
                    return Err(de::Error::duplicate_field("Time"));
                }
                top.time = Some(map.next_value::<String>()?);
            } else if key == "StatusSNS" {
                top.status_sns = Some(map.next_value::<&'de RawValue>()?);
            } else if let Some(name) = &config.sensor {
                if key == name.as_str() {
                    if top.sensor.is_some() {
                        return Err(de::Error::custom("duplicate sensor object"));
                    }
                    top.sensor = Some(map.next_value_seed(FieldsSeed(config))?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            } else {
                // Auto-detect: any object value may be the sensor.
                let raw = map.next_value::<&'de RawValue>()?;
                if raw.get().starts_with('{') {
                    let mut inner = serde_json::Deserializer::from_str(raw.get());
                    let fields = FieldsSeed(config)
                        .deserialize(&mut inner)
                        .map_err(de::Error::custom)?;
                    if fields.import.is_some() {
                        if top.sensor.is_some() {
                            ambiguous = true;
                        }
                        top.sensor = Some(fields);
                    }
                }
            }
        }
        Ok(if ambiguous {
            TopOutcome::Ambiguous
        } else {
            TopOutcome::Ok(top)
        })
    }
}

struct FieldsSeed<'c>(&'c TasmotaConfig);

impl<'de> DeserializeSeed<'de> for FieldsSeed<'_> {
    type Value = SensorFields<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FieldsSeed<'_> {
    type Value = SensorFields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sensor object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let c = self.0;
        let mut fields = SensorFields::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let slot = if key == c.import_field.as_str() {
                &mut fields.import
            } else if key == c.export_field.as_str() {
                &mut fields.export
            } else if key == c.power_field.as_str() {
                &mut fields.power
            } else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            if slot.is_some() {
                return Err(de::Error::custom(format_args!("duplicate field {key:?}")));
            }
            *slot = Some(map.next_value::<&'de RawValue>()?);
        }
        Ok(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics() {
        assert_eq!(device_from_topic("tele/meter-7/SENSOR"), Some("meter-7"));
        assert_eq!(
            device_from_topic("site/tele/meter-7/SENSOR"),
            Some("meter-7")
        );
        assert_eq!(device_from_topic("meter-7/tele/SENSOR"), Some("meter-7"));
        assert_eq!(device_from_topic("stat/meter-7/STATUS10"), Some("meter-7"));
        assert_eq!(device_from_topic("tele//SENSOR"), None);
        assert_eq!(device_from_topic("tele/meter-7/STATE"), None);
    }

    #[test]
    fn custom_names_units_and_offsets() {
        let config = TasmotaConfig {
            sensor: Some("Haus".to_owned()),
            import_field: "bezug".to_owned(),
            export_field: "einsp".to_owned(),
            power_field: "leistung".to_owned(),
            energy_unit: EnergyUnit::Wh,
            power_unit: PowerUnit::KW,
            clock: LocalClock::Utc,
        };
        let payload = br#"{"Time":"2026-11-22T11:00:00+01:00","Other":{"bezug":1},"Haus":{"bezug":1234.9,"einsp":5,"leistung":-1.2345}}"#;
        let r = decode(payload, "dev", &config).unwrap();
        assert_eq!((r.import_wh, r.export_wh, r.power_w), (1234, 5, -1235));
        assert_eq!(r.timestamp.to_rfc3339(), "2026-11-22T10:00:00+00:00");
    }

    #[test]
    fn errors_are_specific() {
        let c = TasmotaConfig::default();
        let e = |p: &str| decode(p.as_bytes(), "dev", &c).unwrap_err();
        assert_eq!(e(r#"{"SML":{"Total_in":1}}"#), TasmotaError::MissingTime);
        assert!(matches!(
            e(r#"{"Time":"x","SML":{}}"#),
            TasmotaError::BadTime(_)
        ));
        assert!(matches!(
            e(r#"{"Time":"2026-03-29T02:30:00","SML":{"Total_in":1}}"#),
            TasmotaError::LocalTime(_)
        ));
        assert_eq!(
            e(r#"{"Time":"2026-01-01T00:00:00","Gas":{"Count":1}}"#),
            TasmotaError::NoSensor("Total_in".to_owned())
        );
        assert_eq!(
            e(r#"{"Time":"2026-01-01T00:00:00","A":{"Total_in":1},"B":{"Total_in":2}}"#),
            TasmotaError::AmbiguousSensor("Total_in".to_owned())
        );
        assert_eq!(
            e(r#"{"Time":"2026-01-01T00:00:00","SML":{"Total_in":1,"Power_curr":3}}"#),
            TasmotaError::MissingField("Total_out".to_owned())
        );
        assert!(matches!(
            e(
                r#"{"Time":"2026-01-01T00:00:00","SML":{"Total_in":"1","Total_out":1,"Power_curr":3}}"#
            ),
            TasmotaError::BadNumber {
                cause: JsonNumberError::NotANumber,
                ..
            }
        ));
        assert!(matches!(
            e(
                r#"{"Time":"2026-01-01T00:00:00","SML":{"Total_in":-1,"Total_out":1,"Power_curr":3}}"#
            ),
            TasmotaError::BadNumber { .. }
        ));
        assert!(matches!(e("[1,2]"), TasmotaError::Json(_)));
        assert!(matches!(e("{} trailing"), TasmotaError::Json(_)));
        assert!(matches!(
            decode(b"{}", "bad id", &c),
            Err(TasmotaError::BadDevice(_))
        ));
    }
}
