//! The ingest state machine on real payloads: accepted, pending, duplicate, dead-lettered.

mod common;

use chrono::TimeDelta;
use common::{fixture, utc};
use proptest::prelude::*;
use voltmesh_engine::IntervalSpec;
use voltmesh_meter_bridge::household::registry::{Registry, RegistryConfig};
use voltmesh_meter_bridge::{ErrorKind, Format, Ingest, IngestConfig, Outcome};

const REGISTRY: &str = include_str!("fixtures/households.toml");

fn ingest() -> Ingest {
    let registry =
        Registry::from_config(toml::from_str::<RegistryConfig>(REGISTRY).unwrap()).unwrap();
    Ingest::new(IngestConfig::default(), registry, IntervalSpec::DEFAULT)
}

fn kind(outcome: &Outcome) -> Option<ErrorKind> {
    match outcome {
        Outcome::Rejected(letter) => Some(letter.kind),
        _ => None,
    }
}

#[test]
fn accepts_dedupes_and_dead_letters() {
    let mut ingest = ingest();
    let kaifa = fixture("dsmr_v4_2_kaifa.txt");
    let at = utc("2016-11-13T20:00:00Z");

    assert!(matches!(
        ingest.handle("p1/kaifa", &kaifa, at),
        Outcome::Accepted(_)
    ));
    assert!(
        matches!(ingest.handle("p1/kaifa", &kaifa, at), Outcome::Duplicate(_)),
        "a QoS 1 redelivery is not counted twice"
    );

    // One digit changed: CRC failure, dead-lettered with the payload.
    let mut corrupt = kaifa.clone();
    let i = corrupt.windows(3).position(|w| w == b"581").unwrap();
    corrupt[i] = b'9';
    let out = ingest.handle("p1/kaifa", &corrupt, at);
    let Outcome::Rejected(letter) = &out else {
        panic!("{out:?}")
    };
    assert_eq!(letter.kind, ErrorKind::CrcMismatch);
    assert_eq!(letter.payload().unwrap(), corrupt);
    assert_eq!(letter.topic, "p1/kaifa");

    // A meter that belongs to nobody.
    let iskra = fixture("dsmr_v5_iskra_MT382.txt");
    let out = ingest.handle("p1/iskra", &iskra, utc("2017-01-02T18:30:00Z"));
    assert_eq!(kind(&out), Some(ErrorKind::UnknownMeter));
    let Outcome::Rejected(letter) = out else {
        unreachable!()
    };
    assert_eq!(letter.meter.unwrap().as_str(), "K8EG004046395507");

    // Registers that go backwards, then an accepted swap.
    let swapped = String::from_utf8(fixture("voltmesh_native_reading.json"))
        .unwrap()
        .replace("8802442", "12");
    let first = fixture("voltmesh_native_reading.json");
    let t = utc("2026-06-14T10:31:00Z");
    assert!(matches!(
        ingest.handle("voltmesh/hh-042", &first, t),
        Outcome::Accepted(_)
    ));
    let later = swapped.replace("10:30:00Z", "10:45:00Z");
    let out = ingest.handle(
        "voltmesh/hh-042",
        later.as_bytes(),
        utc("2026-06-14T10:46:00Z"),
    );
    assert_eq!(kind(&out), Some(ErrorKind::RegisterWentBackwards));
    let Outcome::Rejected(letter) = out else {
        unreachable!()
    };
    let reading = letter
        .reading
        .expect("the decoded reading travels with the letter");
    ingest.rebase(reading).unwrap();
    let next = swapped
        .replace("10:30:00Z", "11:00:00Z")
        .replace(":12,", ":40,");
    assert!(matches!(
        ingest.handle(
            "voltmesh/hh-042",
            next.as_bytes(),
            utc("2026-06-14T11:01:00Z")
        ),
        Outcome::Accepted(_)
    ));

    // Far in the future relative to the receive time.
    let future = String::from_utf8(first.clone())
        .unwrap()
        .replace("2026-06-14T10:30:00Z", "2026-06-14T13:00:00Z");
    assert_eq!(
        kind(&ingest.handle(
            "voltmesh/hh-042",
            future.as_bytes(),
            utc("2026-06-14T11:02:00Z")
        )),
        Some(ErrorKind::TimestampInFuture)
    );

    // Oversized, garbage, Shelly halves.
    let huge = vec![b'{'; 20_000];
    assert_eq!(
        kind(&ingest.handle("voltmesh/x", &huge, t)),
        Some(ErrorKind::TooLarge)
    );
    assert_eq!(
        kind(&ingest.handle("voltmesh/x", b"\x00\x01", t)),
        Some(ErrorKind::UnknownFormat)
    );
    let rpc = "shellypro3em-1234567890ab/events/rpc";
    let ts = utc("2025-09-05T08:20:00Z");
    assert_eq!(
        ingest.handle(rpc, &fixture("shelly_pro3em_events_rpc_em0.json"), ts),
        Outcome::Pending
    );
    assert!(matches!(
        ingest.handle(rpc, &fixture("shelly_pro3em_events_rpc_emdata0.json"), ts),
        Outcome::Accepted(_)
    ));

    let c = ingest.counters();
    assert_eq!((c.accepted, c.pending, c.duplicates), (5, 1, 1), "{c:?}");
    let errors: Vec<(ErrorKind, u64)> = c.errors.iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(
        errors,
        [
            (ErrorKind::TooLarge, 1),
            (ErrorKind::UnknownFormat, 1),
            (ErrorKind::CrcMismatch, 1),
            (ErrorKind::UnknownMeter, 1),
            (ErrorKind::RegisterWentBackwards, 1),
            (ErrorKind::TimestampInFuture, 1),
        ]
    );
}

#[test]
fn configured_formats_override_sniffing_by_longest_prefix() {
    let mut config = IngestConfig::default();
    config.formats.insert("meters/".to_owned(), Format::Native);
    config.formats.insert("meters/p1/".to_owned(), Format::Dsmr);
    let registry =
        Registry::from_config(toml::from_str::<RegistryConfig>(REGISTRY).unwrap()).unwrap();
    let mut ingest = Ingest::new(config, registry, IntervalSpec::DEFAULT);
    assert_eq!(ingest.format_for("meters/p1/kaifa"), Some(Format::Dsmr));
    assert_eq!(ingest.format_for("meters/hh-042"), Some(Format::Native));
    assert_eq!(ingest.format_for("other/hh-042"), None);
    // The DSMR telegram on a native topic is refused as malformed native JSON.
    let kaifa = fixture("dsmr_v4_2_kaifa.txt");
    let at = utc("2016-11-13T20:00:00Z");
    let out = ingest.handle("meters/kaifa", &kaifa, at);
    assert_eq!(kind(&out), Some(ErrorKind::Malformed));
    assert!(matches!(
        ingest.handle("meters/p1/kaifa", &kaifa, at),
        Outcome::Accepted(_)
    ));
}

#[test]
fn tasmota_readings_feed_orders() {
    let mut ingest = ingest();
    let topic = "tele/haus-1/SENSOR";
    let base = String::from_utf8(fixture("tasmota_sml_tele_SENSOR_1phase.json")).unwrap();
    // 13:01:11 local CEST = 11:01:11 UTC; the next reading 15 min later exported 200 Wh more.
    let second = base
        .replace("13:01:11", "13:16:11")
        .replace("14737.1422", "14737.3422");
    let t1 = utc("2022-07-07T11:01:12Z");
    let t2 = utc("2022-07-07T11:16:12Z");
    assert!(matches!(
        ingest.handle(topic, base.as_bytes(), t1),
        Outcome::Accepted(_)
    ));
    assert!(matches!(
        ingest.handle(topic, second.as_bytes(), t2),
        Outcome::Accepted(_)
    ));
    // 11:15–11:30 is not complete yet, 11:00–11:15 lacks its start: no forecast, no order.
    let target = IntervalSpec::DEFAULT.first_open(t2);
    assert!(ingest.plan_orders(target, t2).is_empty());
    let third = base
        .replace("13:01:11", "13:31:11")
        .replace("14737.1422", "14737.5422");
    let t3 = utc("2022-07-07T11:31:12Z");
    assert!(matches!(
        ingest.handle(topic, third.as_bytes(), t3),
        Outcome::Accepted(_)
    ));
    let orders = ingest.plan_orders(IntervalSpec::DEFAULT.first_open(t3), t3);
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].participant.as_str(), "tasmota");
    assert_eq!(orders[0].side, voltmesh_engine::Side::Sell);
    assert_eq!(orders[0].quantity_wh, 200);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Any stream of real, mutated and random messages: never panics, and every message is
    /// counted exactly once.
    #[test]
    fn every_message_is_counted_once(
        messages in prop::collection::vec(
            (0usize..6, prop::collection::vec(any::<u8>(), 0..32), 0i64..100_000),
            1..40,
        ),
    ) {
        let sources = [
            ("p1/kaifa", "dsmr_v4_2_kaifa.txt"),
            ("tele/haus-1/SENSOR", "tasmota_sml_tele_SENSOR_3phase.json"),
            ("shellypro3em-1234567890ab/events/rpc", "shelly_pro3em_events_rpc_em0.json"),
            ("shellypro3em-1234567890ab/events/rpc", "shelly_pro3em_events_rpc_emdata0.json"),
            ("voltmesh/hh-042", "voltmesh_native_reading.json"),
            ("shellies/x/emeter/0/power", "voltmesh_native_reading.json"),
        ];
        let mut ingest = ingest();
        let start = utc("2026-06-14T10:00:00Z");
        let n = messages.len() as u64;
        for (which, noise, secs) in messages {
            let (topic, file) = sources[which];
            let mut payload = fixture(file);
            if noise.len() > 16 {
                // Mutate: overwrite a few bytes at positions chosen by the noise.
                for pair in noise.chunks(2) {
                    if let [pos, byte] = pair {
                        let i = usize::from(*pos) % payload.len();
                        payload[i] = *byte;
                    }
                }
            }
            let _ = ingest.handle(topic, &payload, start + TimeDelta::seconds(secs));
        }
        let c = ingest.counters();
        let errors: u64 = c.errors.values().sum();
        prop_assert_eq!(c.accepted + c.pending + c.duplicates + errors, n);
    }
}
