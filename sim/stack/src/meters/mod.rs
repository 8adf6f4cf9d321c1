//! Simulated smart meters: real payloads, in the formats the meter bridge decodes, from SimBench
//! household profiles played at accelerated time.
//!
//! - [`Sample`]: what a meter knows at one instant (cumulative registers, net power);
//! - encoders, one per format, each a pure function `Sample -> Payload`s:
//!   [`dsmr`] (DSMR 5 P1 telegram with its CRC16), [`tasmota`] (SML JSON on `tele/<device>/SENSOR`),
//!   [`shelly`] (Pro 3EM Gen2 `NotifyStatus` on `<device>/events/rpc`);
//! - [`local_clock`]: the CET/CEST wall-clock time that DSMR and Tasmota meters print;
//! - [`profile`]: a household's per-step energy and the registers it gives at any instant of an
//!   accelerated clock ([`profile::ProfileMeter`]);
//! - [`fleet`]: one meter per household of a grid, each with a format and a device id, and the
//!   task that publishes their payloads over MQTT.
//!
//! # Invariants
//! Registers are whole Wh, never decrease, and every encoder writes them so that the bridge's
//! decoder gives back exactly the same numbers (tested below for every format).

pub mod dsmr;
pub mod fleet;
pub mod local_clock;
pub mod profile;
pub mod shelly;
pub mod tasmota;

use std::fmt;

use chrono::{DateTime, Utc};

/// One instant of a meter: cumulative registers and net power.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// When the meter reads (whole seconds for DSMR and Tasmota, which print no fraction).
    pub timestamp: DateTime<Utc>,
    /// Cumulative energy from the grid, Wh.
    pub import_wh: u64,
    /// Cumulative energy to the grid, Wh.
    pub export_wh: u64,
    /// Net active power, W: positive = import, negative = export.
    pub power_w: i64,
}

#[cfg(test)]
impl Sample {
    /// The encoders' test sample: 2026-07-01 23:30 UTC, 01:30 summer time on a meter's clock.
    pub(crate) fn summer_night(import_wh: u64, export_wh: u64, power_w: i64) -> Sample {
        use chrono::TimeZone;
        Sample {
            timestamp: Utc.with_ymd_and_hms(2026, 7, 1, 23, 30, 0).unwrap(),
            import_wh,
            export_wh,
            power_w,
        }
    }
}

/// One MQTT message a meter publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// The topic.
    pub topic: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// A payload format a simulated meter speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MeterFormat {
    /// DSMR 5 P1 telegram on `dsmr/<device>`.
    Dsmr,
    /// Tasmota SML JSON on `tele/<device>/SENSOR`.
    Tasmota,
    /// Shelly Pro 3EM Gen2 `NotifyStatus` on `<device>/events/rpc` (two messages per sample:
    /// `em:0` with power, then `emdata:0` with the registers).
    ShellyPro3Em,
}

impl MeterFormat {
    /// Every format, in the order households are assigned to them.
    pub const ALL: [MeterFormat; 3] = [
        MeterFormat::Dsmr,
        MeterFormat::Tasmota,
        MeterFormat::ShellyPro3Em,
    ];

    /// The payloads of `sample` for the meter `device` in this format.
    pub fn encode(self, device: &str, sample: &Sample) -> Vec<Payload> {
        match self {
            MeterFormat::Dsmr => vec![dsmr::encode(device, sample)],
            MeterFormat::Tasmota => vec![tasmota::encode(device, sample)],
            MeterFormat::ShellyPro3Em => shelly::encode(device, sample).to_vec(),
        }
    }

    /// The meter id the bridge reads from this format's payloads for `device`.
    pub fn meter_id(self, device: &str) -> String {
        device.to_owned()
    }
}

impl fmt::Display for MeterFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MeterFormat::Dsmr => "dsmr",
            MeterFormat::Tasmota => "tasmota",
            MeterFormat::ShellyPro3Em => "shelly",
        })
    }
}

/// `wh` as kWh with `decimals` (3 or more) fraction digits, exact (no floating point); the
/// integer part is zero-padded to `int_width` digits.
pub(crate) fn kwh_text(wh: u64, int_width: usize, decimals: u32) -> String {
    let scale = 10u64.pow(decimals.saturating_sub(3));
    let frac = (wh % 1000) * scale;
    format!(
        "{:0int_width$}.{:0width$}",
        wh / 1000,
        frac,
        width = decimals as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use voltmesh_meter_bridge::{Decoder, DecoderConfig, Format, Reading};

    fn decode_all(format: Format, payloads: &[Payload], at: DateTime<Utc>) -> Vec<Reading> {
        let mut decoder = Decoder::new(DecoderConfig::default());
        payloads
            .iter()
            .filter_map(|p| {
                decoder
                    .decode(Some(format), &p.topic, &p.bytes, at)
                    .unwrap_or_else(|e| panic!("{format:?} payload on {} refused: {e}", p.topic))
            })
            .collect()
    }

    fn samples() -> Vec<Sample> {
        // Winter and summer time, a value at every digit boundary, import and export power.
        let times = [
            Utc.with_ymd_and_hms(2026, 1, 15, 11, 59, 58).unwrap(),
            Utc.with_ymd_and_hms(2026, 7, 1, 23, 30, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 10, 25, 0, 59, 59).unwrap(),
        ];
        let registers = [
            (0, 0, 0),
            (1, 999, 1),
            (4_426, 2_444, -894),
            (123_456_789, 98_765_432, 12_345),
            (999_999_999, 10, -3),
        ];
        times
            .iter()
            .flat_map(|&timestamp| {
                registers
                    .iter()
                    .map(move |&(import_wh, export_wh, power_w)| Sample {
                        timestamp,
                        import_wh,
                        export_wh,
                        power_w,
                    })
            })
            .collect()
    }

    #[test]
    fn every_format_decodes_to_the_same_registers() {
        for (format, bridge_format) in [
            (MeterFormat::Dsmr, Format::Dsmr),
            (MeterFormat::Tasmota, Format::Tasmota),
            (MeterFormat::ShellyPro3Em, Format::ShellyGen2),
        ] {
            let device = match format {
                MeterFormat::Dsmr => "E0099000000000042",
                MeterFormat::Tasmota => "tasmota-sml-07",
                MeterFormat::ShellyPro3Em => "shellypro3em-0000000000a1",
            };
            for sample in samples() {
                let payloads = format.encode(device, &sample);
                // A receive time far from the sample's: decoders must use the meter's own time.
                let received = sample.timestamp + chrono::TimeDelta::hours(5);
                let readings = decode_all(bridge_format, &payloads, received);
                assert_eq!(readings.len(), 1, "{format}: one reading per sample");
                let r = &readings[0];
                assert_eq!(r.meter.as_str(), format.meter_id(device), "{format}");
                assert_eq!(r.timestamp, sample.timestamp, "{format} timestamp");
                assert_eq!(
                    (r.import_wh, r.export_wh, r.power_w),
                    (sample.import_wh, sample.export_wh, sample.power_w),
                    "{format} registers of {sample:?}"
                );
            }
        }
    }

    #[test]
    fn kwh_text_is_exact() {
        assert_eq!(kwh_text(4_426, 6, 3), "000004.426");
        assert_eq!(kwh_text(34_507_476, 0, 4), "34507.4760");
        assert_eq!(kwh_text(999, 1, 3), "0.999");
    }
}
