//! DSMR 5.0 P1 telegrams, as an Iskra AM550 or Landis+Gyr E360 sends them every second (we send
//! one per sample).
//!
//! ```text
//! /ISK5\2M550T-1012              header
//!                                (empty line)
//! 1-3:0.2.8(50)                  version 5.0
//! 0-0:1.0.0(260115125958W)       CET/CEST time, S = summer, W = winter
//! 0-0:96.1.1(4530...)            equipment id, hex-encoded ASCII
//! 1-0:1.8.1(000004.426*kWh)      import, tariff 1 (all of it) ...
//! 1-0:1.8.2(000000.000*kWh)      ... and tariff 2
//! 1-0:2.8.1 / 1-0:2.8.2          export likewise
//! 0-0:96.14.0(0001)              tariff in force
//! 1-0:1.7.0(00.244*kW)           import power
//! 1-0:2.7.0(00.000*kW)           export power
//! !6EEE                          CRC-16/ARC of everything from '/' to '!', 4 hex digits
//! ```
//!
//! Lines end in CR LF. Registers print Wh exactly (kWh with 3 decimals); power in kW with 3
//! decimals is whole W.

use std::fmt::Write as _;

use crc::{Crc, CRC_16_ARC};

use super::local_clock::cet;
use super::{kwh_text, Payload, Sample};

const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_ARC);

/// The telegram of `sample` for the meter whose equipment id is `device`, on `dsmr/<device>`.
pub fn encode(device: &str, sample: &Sample) -> Payload {
    let local = cet(sample.timestamp);
    let mut t = String::with_capacity(512);
    // Writing into a String cannot fail.
    let _ = write!(
        t,
        "/ISK5\\2M550T-1012\r\n\r\n1-3:0.2.8(50)\r\n0-0:1.0.0({}{})\r\n0-0:96.1.1({})\r\n",
        local.wall.format("%y%m%d%H%M%S"),
        if local.summer { 'S' } else { 'W' },
        hex::encode_upper(device.as_bytes()),
    );
    let _ = write!(
        t,
        "1-0:1.8.1({}*kWh)\r\n1-0:1.8.2(000000.000*kWh)\r\n1-0:2.8.1({}*kWh)\r\n1-0:2.8.2(000000.000*kWh)\r\n0-0:96.14.0(0001)\r\n",
        kwh_text(sample.import_wh, 6, 3),
        kwh_text(sample.export_wh, 6, 3),
    );
    let import_w = sample.power_w.max(0).unsigned_abs();
    let export_w = sample.power_w.min(0).unsigned_abs();
    let _ = write!(
        t,
        "1-0:1.7.0({}*kW)\r\n1-0:2.7.0({}*kW)\r\n0-0:96.7.21(00004)\r\n0-0:96.7.9(00002)\r\n1-0:32.7.0(230.1*V)\r\n!",
        kwh_text(import_w, 2, 3),
        kwh_text(export_w, 2, 3),
    );
    let crc = CRC16.checksum(t.as_bytes());
    let _ = write!(t, "{crc:04X}\r\n");
    Payload {
        topic: format!("dsmr/{device}"),
        bytes: t.into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn shape_and_crc() {
        let sample = Sample {
            timestamp: chrono::Utc
                .with_ymd_and_hms(2026, 1, 15, 11, 59, 58)
                .unwrap(),
            import_wh: 4_426,
            export_wh: 2_444,
            power_w: 244,
        };
        let p = encode("E0046", &sample);
        assert_eq!(p.topic, "dsmr/E0046");
        let text = String::from_utf8(p.bytes.clone()).unwrap();
        assert!(text.starts_with("/ISK5\\2M550T-1012\r\n\r\n"));
        assert!(text.contains("0-0:1.0.0(260115125958W)\r\n"));
        assert!(text.contains("0-0:96.1.1(4530303436)\r\n"));
        assert!(text.contains("1-0:1.8.1(000004.426*kWh)\r\n"));
        assert!(text.contains("1-0:1.7.0(00.244*kW)\r\n1-0:2.7.0(00.000*kW)\r\n"));
        let bang = text.rfind('!').unwrap();
        let stated = u16::from_str_radix(&text[bang + 1..bang + 5], 16).unwrap();
        assert_eq!(stated, CRC16.checksum(&p.bytes[..=bang]));
        // A flipped digit must break the CRC.
        let mut bad = p.bytes;
        let i = text.find("4.426").unwrap();
        bad[i] = b'5';
        assert!(voltmesh_meter_bridge::decode::dsmr::decode(&bad, sample.timestamp).is_err());
    }
}
