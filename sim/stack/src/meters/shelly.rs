//! Shelly Pro 3EM (Gen2) `NotifyStatus` notifications on `<device>/events/rpc`.
//!
//! The device reports power (`em:0`) and energy (`emdata:0`) in separate notifications; we send
//! both per sample, power first, so the bridge merges them into one reading stamped with the
//! energy notification's `ts`. Power is split evenly over the three phases; energy is Wh.
//!
//! ```json
//! {"src":"shellypro3em-...","dst":"voltmesh/events","method":"NotifyStatus",
//!  "params":{"ts":1767956400.00,"em:0":{"id":0,"a_act_power":-6.0,...,"total_act_power":-18.0}}}
//! ```

use super::{Payload, Sample};

/// The `em:0` and `emdata:0` notifications of `sample` for the Shelly `device` (its `src`).
pub fn encode(device: &str, sample: &Sample) -> [Payload; 2] {
    let topic = format!("{device}/events/rpc");
    let millis = sample.timestamp.timestamp_millis();
    let ts = format!(
        "{}.{:02}",
        millis.div_euclid(1000),
        millis.rem_euclid(1000) / 10
    );
    let p = sample.power_w;
    // Phase powers in tenths of a watt that add up to the total exactly.
    let tenths = p * 10;
    let a = tenths / 3;
    let b = tenths / 3;
    let c = tenths - a - b;
    let w = |t: i64| {
        format!(
            "{}{}.{}",
            if t < 0 { "-" } else { "" },
            t.abs() / 10,
            t.abs() % 10
        )
    };
    let em = format!(
        "{{\"src\":\"{device}\",\"dst\":\"voltmesh/events\",\"method\":\"NotifyStatus\",\"params\":{{\"ts\":{ts},\"em:0\":{{\"id\":0,\"a_act_power\":{},\"a_voltage\":230.1,\"b_act_power\":{},\"b_voltage\":229.8,\"c_act_power\":{},\"c_voltage\":230.4,\"n_current\":null,\"total_act_power\":{}}}}}}}",
        w(a),
        w(b),
        w(c),
        w(tenths),
    );
    let data = format!(
        "{{\"src\":\"{device}\",\"dst\":\"voltmesh/events\",\"method\":\"NotifyStatus\",\"params\":{{\"ts\":{ts},\"emdata:0\":{{\"id\":0,\"total_act\":{}.00,\"total_act_ret\":{}.00}}}}}}",
        sample.import_wh, sample.export_wh,
    );
    [
        Payload {
            topic: topic.clone(),
            bytes: em.into_bytes(),
        },
        Payload {
            topic,
            bytes: data.into_bytes(),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_add_up_and_json_is_valid() {
        let sample = Sample::summer_night(26_289, 131_881, -17);
        let [em, data] = encode("shellypro3em-1", &sample);
        assert_eq!(em.topic, "shellypro3em-1/events/rpc");
        let em: serde_json::Value = serde_json::from_slice(&em.bytes).unwrap();
        let phases: f64 = ["a", "b", "c"]
            .iter()
            .map(|p| {
                em["params"]["em:0"][format!("{p}_act_power")]
                    .as_f64()
                    .unwrap()
            })
            .sum();
        assert!((phases + 17.0).abs() < 1e-9);
        let data: serde_json::Value = serde_json::from_slice(&data.bytes).unwrap();
        assert_eq!(data["params"]["emdata:0"]["total_act_ret"], 131_881.0);
        assert_eq!(data["params"]["ts"], em["params"]["ts"]);
    }
}
