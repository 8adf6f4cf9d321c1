//! Tasmota SML JSON on `tele/<device>/SENSOR`, as a Tasmota ESP with an SML read head publishes
//! it every `TelePeriod`.
//!
//! ```json
//! {"Time":"2026-07-02T01:30:00","SML":{"Total_in":4.4260,"Total_out":2.4440,"Power_curr":-894,"Meter_number":"..."}}
//! ```
//!
//! `Time` is the device's local CET/CEST wall-clock time without an offset (Tasmota's factory
//! default); `Total_in`/`Total_out` are kWh with 4 decimals (exact Wh), `Power_curr` W with the
//! sign of net import.

use super::local_clock::cet;
use super::{kwh_text, Payload, Sample};

/// The `SENSOR` message of `sample` for the Tasmota device `device`.
pub fn encode(device: &str, sample: &Sample) -> Payload {
    let time = cet(sample.timestamp).wall.format("%Y-%m-%dT%H:%M:%S");
    let json = format!(
        "{{\"Time\":\"{time}\",\"SML\":{{\"Total_in\":{},\"Total_out\":{},\"Power_curr\":{},\"Meter_number\":\"{}\"}}}}",
        kwh_text(sample.import_wh, 0, 4),
        kwh_text(sample.export_wh, 0, 4),
        sample.power_w,
        hex::encode(device.as_bytes()),
    );
    Payload {
        topic: format!("tele/{device}/SENSOR"),
        bytes: json.into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape() {
        let sample = Sample::summer_night(34_507_476, 14_737_142, -894);
        let p = encode("sml1", &sample);
        assert_eq!(p.topic, "tele/sml1/SENSOR");
        let v: serde_json::Value = serde_json::from_slice(&p.bytes).unwrap();
        assert_eq!(v["Time"], "2026-07-02T01:30:00");
        assert_eq!(v["SML"]["Power_curr"], -894);
        assert!(String::from_utf8(p.bytes)
            .unwrap()
            .contains("\"Total_in\":34507.4760,"));
    }
}
