//! Every decoder against the real sample payloads (values read off the files by hand).

mod common;

use common::{fixture, utc};
use voltmesh_meter_bridge::decode::shelly_gen2::{self, Gen2Accumulator};
use voltmesh_meter_bridge::decode::tasmota::{self, TasmotaConfig};
use voltmesh_meter_bridge::decode::{dsmr, native};
use voltmesh_meter_bridge::decode::{Decoder, DecoderConfig, Format};
use voltmesh_meter_bridge::Reading;

fn dsmr(name: &str) -> Reading {
    dsmr::decode(&fixture(name), utc("2026-11-22T10:00:00Z"))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn summary(r: &Reading) -> (String, String, u64, u64, i64) {
    (
        r.meter.to_string(),
        r.timestamp.to_rfc3339(),
        r.import_wh,
        r.export_wh,
        r.power_w,
    )
}

fn s(
    meter: &str,
    ts: &str,
    import: u64,
    export: u64,
    power: i64,
) -> (String, String, u64, u64, i64) {
    (meter.to_owned(), ts.to_owned(), import, export, power)
}

#[test]
fn dsmr_v2_2_uses_receive_time_and_the_header() {
    assert_eq!(
        summary(&dsmr("dsmr_v2_2_iskra_MT382.txt")),
        s(
            "ISk5\\2MT382-1004",
            "2026-11-22T10:00:00+00:00",
            2002,
            2002,
            1010
        )
    );
}

#[test]
fn dsmr_v4_kaifa_winter_time() {
    // The equipment id is not hex-encoded printable text, so it is kept as printed.
    assert_eq!(
        summary(&dsmr("dsmr_v4_2_kaifa.txt")),
        s(
            "3960221976967177082151037881335713",
            "2016-11-13T19:57:57+00:00",
            1_581_123 + 1_435_706,
            0,
            2027
        )
    );
}

#[test]
fn dsmr_v5_iskra() {
    assert_eq!(
        summary(&dsmr("dsmr_v5_iskra_MT382.txt")),
        s(
            "K8EG004046395507",
            "2017-01-02T18:20:02+00:00",
            4426 + 2399,
            2444,
            244
        )
    );
}

#[test]
fn dsmr_belgian_fluvius_summer_time() {
    assert_eq!(
        summary(&dsmr("dsmr_be_fluvius_v1_7_1.txt")),
        s(
            "1SAG3101021605",
            "2020-05-12T11:54:09+00:00",
            34 + 15_758,
            11,
            0
        )
    );
}

#[test]
fn dsmr_austrian_sagemcom_totals_in_wh() {
    assert_eq!(
        summary(&dsmr("dsmr_at_sagemcom_t210_d_r.txt")),
        s(
            "EST5\\253710000_A",
            "2022-10-06T13:50:14+00:00",
            6_545_766,
            58,
            286
        )
    );
}

#[test]
fn dsmr_eon_hungary_uses_the_total_registers() {
    assert_eq!(
        summary(&dsmr("dsmr_v5_eon_hungary.txt")),
        s(
            "890082200002160",
            "2023-07-24T13:07:30+00:00",
            173_640,
            627_177,
            -2601
        )
    );
}

#[test]
fn dsmr_project_fixture_prosumer() {
    assert_eq!(
        summary(&dsmr("voltmesh_dsmr5_prosumer_summer.txt")),
        s(
            "E0046003234567",
            "2026-06-14T10:30:00+00:00",
            4_812_337 + 3_990_105,
            1_204_990 + 2_761_042,
            -3412
        )
    );
}

#[test]
fn dsmr_without_line_feeds_at_the_end_and_with_lf_only_lines() {
    let raw = fixture("dsmr_v5_iskra_MT382.txt");
    let trimmed = raw.trim_ascii_end();
    assert!(dsmr::decode(trimmed, utc("2026-01-01T00:00:00Z")).is_ok());
    // Same contents with LF-only line ends changes the CRC'd bytes: refused.
    let lf: Vec<u8> = raw.iter().copied().filter(|&b| b != b'\r').collect();
    assert!(matches!(
        dsmr::decode(&lf, utc("2026-01-01T00:00:00Z")),
        Err(dsmr::DsmrError::CrcMismatch { .. })
    ));
}

#[test]
fn tasmota_tele_sensor_and_status_sns() {
    let c = TasmotaConfig::default();
    for (file, expected) in [
        (
            "tasmota_sml_tele_SENSOR_1phase.json",
            s(
                "haus-1",
                "2022-07-07T11:01:11+00:00",
                34_507_476,
                14_737_142,
                -894,
            ),
        ),
        (
            "tasmota_sml_statussns_1phase.json",
            s(
                "haus-1",
                "2022-07-07T11:01:11+00:00",
                34_507_476,
                14_737_142,
                -894,
            ),
        ),
        (
            "tasmota_sml_tele_SENSOR_3phase.json",
            s(
                "haus-1",
                "2026-01-21T10:07:31+00:00",
                2_687_368,
                582_456,
                -36,
            ),
        ),
        (
            "tasmota_sml_statussns_3phase.json",
            s(
                "haus-1",
                "2026-01-21T10:07:31+00:00",
                2_687_368,
                582_456,
                -36,
            ),
        ),
    ] {
        let r =
            tasmota::decode(&fixture(file), "haus-1", &c).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(summary(&r), expected, "{file}");
    }
    // Naming the sensor explicitly gives the same result.
    let named = TasmotaConfig {
        sensor: Some("SML".to_owned()),
        ..TasmotaConfig::default()
    };
    let r = tasmota::decode(
        &fixture("tasmota_sml_tele_SENSOR_1phase.json"),
        "haus-1",
        &named,
    )
    .unwrap();
    assert_eq!(r.import_wh, 34_507_476);
    let wrong = TasmotaConfig {
        sensor: Some("Gas".to_owned()),
        ..TasmotaConfig::default()
    };
    assert!(tasmota::decode(
        &fixture("tasmota_sml_tele_SENSOR_1phase.json"),
        "haus-1",
        &wrong
    )
    .is_err());
}

#[test]
fn shelly_pro_3em_needs_both_notifications() {
    let em = shelly_gen2::decode(&fixture("shelly_pro3em_events_rpc_em0.json")).unwrap();
    let emdata = shelly_gen2::decode(&fixture("shelly_pro3em_events_rpc_emdata0.json")).unwrap();
    assert_eq!(em.power_w, Some(-18));
    assert_eq!(emdata.energy_wh, Some((26_289, 131_881)));
    let mut acc = Gen2Accumulator::new(16);
    assert_eq!(acc.push(em).unwrap(), None);
    let r = acc.push(emdata).unwrap().expect("a complete reading");
    assert_eq!(
        summary(&r),
        s(
            "shellypro3em-1234567890ab",
            "2025-09-05T08:18:00.210+00:00",
            26_289,
            131_881,
            -18
        )
    );
}

#[test]
fn shelly_gen1_session_through_the_dispatcher() {
    let text = String::from_utf8(fixture("voltmesh_shelly_gen1_session.txt")).unwrap();
    let mut decoder = Decoder::new(DecoderConfig::default());
    let t = utc("2026-11-22T10:00:00Z");
    let mut readings = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (topic, payload) = line.split_once(' ').unwrap();
        if let Some(r) = decoder.decode(None, topic, payload.as_bytes(), t).unwrap() {
            readings.push(r);
        }
    }
    assert_eq!(readings.len(), 1);
    assert_eq!(
        summary(&readings[0]),
        s(
            "shellyem-C45BBE6B4A21/emeter/0",
            "2026-11-22T10:00:00+00:00",
            2_716_455,
            904_112,
            1532
        )
    );
}

#[test]
fn native_fixture_and_dispatch_of_every_format() {
    let r = native::decode(&fixture("voltmesh_native_reading.json")).unwrap();
    assert_eq!(
        summary(&r),
        s(
            "hh-042",
            "2026-06-14T10:30:00+00:00",
            8_802_442,
            3_966_032,
            -3412
        )
    );
    let t = utc("2026-11-22T10:00:00Z");
    let mut d = Decoder::new(DecoderConfig::default());
    let cases = [
        ("p1/kaifa", "dsmr_v4_2_kaifa.txt", Format::Dsmr),
        (
            "tele/haus-1/SENSOR",
            "tasmota_sml_tele_SENSOR_1phase.json",
            Format::Tasmota,
        ),
        (
            "voltmesh/hh-042",
            "voltmesh_native_reading.json",
            Format::Native,
        ),
    ];
    for (topic, file, format) in cases {
        assert_eq!(Format::sniff(topic, &fixture(file)), Some(format));
        let sniffed = d.decode(None, topic, &fixture(file), t).unwrap().unwrap();
        let told = d
            .decode(Some(format), topic, &fixture(file), t)
            .unwrap()
            .unwrap();
        assert_eq!(sniffed, told);
    }
    let topic = "shellypro3em-1234567890ab/events/rpc";
    assert_eq!(
        d.decode(
            None,
            topic,
            &fixture("shelly_pro3em_events_rpc_em0.json"),
            t
        ),
        Ok(None)
    );
    assert!(d
        .decode(
            None,
            topic,
            &fixture("shelly_pro3em_events_rpc_emdata0.json"),
            t
        )
        .unwrap()
        .is_some());
}
