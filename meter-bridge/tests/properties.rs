//! Properties of every decoder: arbitrary and mutated input never panics, and a DSMR telegram
//! with any single digit changed fails its CRC.

mod common;

use common::{fixture, utc, DSMR_ALL, DSMR_WITH_CRC};
use proptest::prelude::*;
use voltmesh_meter_bridge::decode::dsmr::{self, DsmrError};
use voltmesh_meter_bridge::decode::shelly_gen1;
use voltmesh_meter_bridge::decode::tasmota::{self, TasmotaConfig};
use voltmesh_meter_bridge::decode::{native, shelly_gen2};
use voltmesh_meter_bridge::decode::{Decoder, DecoderConfig, Format};

const JSON_FIXTURES: [&str; 7] = [
    "tasmota_sml_tele_SENSOR_1phase.json",
    "tasmota_sml_tele_SENSOR_3phase.json",
    "tasmota_sml_statussns_1phase.json",
    "tasmota_sml_statussns_3phase.json",
    "shelly_pro3em_events_rpc_em0.json",
    "shelly_pro3em_events_rpc_emdata0.json",
    "voltmesh_native_reading.json",
];

/// Runs every decoder (directly and through the dispatcher under every format) on `bytes`.
fn decode_everything(topic: &str, bytes: &[u8]) {
    let t = utc("2026-11-22T10:00:00Z");
    let _ = dsmr::decode(bytes, t);
    let _ = tasmota::decode(bytes, "dev", &TasmotaConfig::default());
    let _ = shelly_gen2::decode(bytes);
    let _ = native::decode(bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = shelly_gen1::decode("shellies/x/emeter/0/power", bytes);
        let _ = shelly_gen1::decode(text, b"1");
    }
    let mut d = Decoder::new(DecoderConfig::default());
    let _ = d.decode(None, topic, bytes, t);
    for format in Format::ALL {
        let _ = d.decode(Some(format), topic, bytes, t);
    }
}

#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
    Duplicate(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Replace(i, b)),
        (
            any::<usize>(),
            prop::sample::select(b"0123456789.-()*!/:\r\n{}\",e ".to_vec())
        )
            .prop_map(|(i, b)| Edit::Replace(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Edit::Duplicate(i, n)),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let len = bytes.len().max(1);
        match *e {
            Edit::Replace(i, b) if !bytes.is_empty() => bytes[i % len] = b,
            Edit::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
            Edit::Delete(i) if !bytes.is_empty() => {
                bytes.remove(i % len);
            }
            Edit::Truncate(i) => bytes.truncate(i % (bytes.len() + 1)),
            Edit::Duplicate(i, n) if !bytes.is_empty() => {
                let start = i % len;
                let end = (start + n).min(bytes.len());
                let copy = bytes[start..end].to_vec();
                bytes.splice(end..end, copy);
            }
            _ => {}
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048), topic in ".{0,40}") {
        decode_everything(&topic, &bytes);
    }

    #[test]
    fn framed_garbage_never_panics(body in prop::collection::vec(any::<u8>(), 0..512)) {
        // Past the first structural checks: a header, then garbage, then an end marker.
        let mut t = b"/XMX5 x\r\n\r\n".to_vec();
        t.extend_from_slice(&body);
        t.extend_from_slice(b"\r\n!");
        decode_everything("p1/x", &t);
        let mut j = b"{\"Time\":\"2026-01-01T00:00:00\",\"SML\":{\"Total_in\":".to_vec();
        j.extend_from_slice(&body);
        decode_everything("tele/x/SENSOR", &j);
    }

    #[test]
    fn mutated_real_payloads_never_panic(
        which in 0..(DSMR_ALL.len() + JSON_FIXTURES.len()),
        edits in prop::collection::vec(edit(), 1..8),
    ) {
        let name = DSMR_ALL.iter().chain(JSON_FIXTURES.iter()).nth(which).unwrap();
        let topic = if name.starts_with("tasmota") { "tele/x/SENSOR" } else { "x/events/rpc" };
        decode_everything(topic, &apply(fixture(name), &edits));
    }

    #[test]
    fn one_changed_digit_fails_the_crc(which in 0..DSMR_WITH_CRC.len(), pick in any::<usize>(), delta in 1u8..10) {
        let mut t = fixture(DSMR_WITH_CRC[which]);
        let digits: Vec<usize> = (0..t.len()).filter(|&i| t[i].is_ascii_digit()).collect();
        let i = digits[pick % digits.len()];
        t[i] = b'0' + (t[i] - b'0' + delta) % 10;
        let result = dsmr::decode(&t, utc("2026-01-01T00:00:00Z"));
        prop_assert!(matches!(result, Err(DsmrError::CrcMismatch { .. })), "{result:?}");
    }
}

/// The CRC property again, exhaustively: every digit of every CRC'd fixture, every other digit.
#[test]
fn every_single_digit_change_fails_the_crc() {
    let t0 = utc("2026-01-01T00:00:00Z");
    for name in DSMR_WITH_CRC {
        let original = fixture(name);
        assert!(dsmr::decode(&original, t0).is_ok(), "{name} decodes");
        let mut checked = 0;
        for i in (0..original.len()).filter(|&i| original[i].is_ascii_digit()) {
            for d in b'0'..=b'9' {
                if d == original[i] {
                    continue;
                }
                let mut t = original.clone();
                t[i] = d;
                assert!(
                    matches!(dsmr::decode(&t, t0), Err(DsmrError::CrcMismatch { .. })),
                    "{name}: byte {i} -> {}",
                    char::from(d)
                );
                checked += 1;
            }
        }
        assert!(checked > 100, "{name}: only {checked} variants");
    }
}

/// Without a CRC (DSMR 2.2) nothing protects the digits; the decoder still reads them exactly.
#[test]
fn dsmr_2_2_digit_change_changes_the_reading() {
    let t0 = utc("2026-01-01T00:00:00Z");
    let original = fixture("dsmr_v2_2_iskra_MT382.txt");
    let text = String::from_utf8(original).unwrap();
    let changed = text.replace("1-0:1.8.1(00001.001*kWh)", "1-0:1.8.1(00001.002*kWh)");
    assert_eq!(
        dsmr::decode(changed.as_bytes(), t0).unwrap().import_wh,
        2003
    );
}
