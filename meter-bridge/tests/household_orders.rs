//! Households' own messages through the ingest core. Orders replace the forecast's order for
//! their interval, are idempotent, can be replaced until the interval is planned; preferences
//! change the limits of the orders planned next; bad ones are dead-lettered and counted apart from
//! meter errors.

mod common;

use chrono::{DateTime, Utc};
use common::{fixture, utc};
use voltmesh_engine::{Interval, IntervalSpec, ParticipantId, Side, Tariffs};
use voltmesh_meter_bridge::household::own_order::HouseholdOrder;
use voltmesh_meter_bridge::household::preferences::PreferencesMessage;
use voltmesh_meter_bridge::household::registry::{Registry, RegistryConfig};
use voltmesh_meter_bridge::household::topic::{orders_topic, preferences_topic};
use voltmesh_meter_bridge::ingest::HouseholdUpdate;
use voltmesh_meter_bridge::{ErrorKind, Ingest, IngestConfig, Outcome};

const REGISTRY: &str = include_str!("fixtures/households.toml");

fn ingest() -> Ingest {
    let registry =
        Registry::from_config(toml::from_str::<RegistryConfig>(REGISTRY).unwrap()).unwrap();
    let tariffs = Tariffs::new("0.08".parse().unwrap(), "0.32".parse().unwrap()).unwrap();
    Ingest::new(IngestConfig::default(), registry, IntervalSpec::DEFAULT)
        .with_household_topics("voltmesh", tariffs)
}

/// Three Tasmota readings: the household's forecast is a 200 Wh sale for the interval open at
/// the returned time.
fn with_forecast(ingest: &mut Ingest) -> DateTime<Utc> {
    let topic = "tele/haus-1/SENSOR";
    let base = String::from_utf8(fixture("tasmota_sml_tele_SENSOR_1phase.json")).unwrap();
    for (i, (local, register)) in [
        ("13:01:11", "14737.1422"),
        ("13:16:11", "14737.3422"),
        ("13:31:11", "14737.5422"),
    ]
    .into_iter()
    .enumerate()
    {
        let payload = base
            .replace("13:01:11", local)
            .replace("14737.1422", register);
        let at = utc("2022-07-07T11:01:12Z") + chrono::TimeDelta::minutes(15 * i as i64);
        assert!(matches!(
            ingest.handle(topic, payload.as_bytes(), at),
            Outcome::Accepted(_)
        ));
    }
    utc("2022-07-07T11:31:12Z")
}

fn own(interval: Interval, side: Side, quantity_wh: u64, price: &str) -> Vec<u8> {
    HouseholdOrder {
        interval_start: interval.start(),
        side,
        quantity_wh,
        limit_price: price.parse().unwrap(),
    }
    .to_json()
    .unwrap()
}

fn rejected(outcome: Outcome) -> (ErrorKind, String) {
    match outcome {
        Outcome::Rejected(letter) => {
            assert_eq!(letter.meter, None);
            (letter.kind, letter.reason)
        }
        other => panic!("not rejected: {other:?}"),
    }
}

#[test]
fn own_order_replaces_the_forecast_and_is_idempotent() {
    let mut ingest = ingest();
    let now = with_forecast(&mut ingest);
    let target = IntervalSpec::DEFAULT.first_open(now);
    let forecast = ingest.plan_orders(target, now);
    assert_eq!(forecast.len(), 1);
    assert_eq!(
        (forecast[0].side, forecast[0].quantity_wh),
        (Side::Sell, 200)
    );

    let tasmota = ParticipantId::from("tasmota");
    let topic = orders_topic("voltmesh", &tasmota);
    let message = own(target, Side::Buy, 350, "0.25");
    let out = ingest.handle(&topic, &message, now);
    let Outcome::Household(HouseholdUpdate::Orders {
        participant,
        orders,
    }) = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(participant, tasmota);
    assert_eq!(orders.len(), 1);
    let planned = ingest.plan_orders(target, now);
    assert_eq!(planned.len(), 1, "the own order replaces the forecast's");
    assert_eq!(planned[0], orders[0]);
    assert_eq!((planned[0].side, planned[0].quantity_wh), (Side::Buy, 350));
    assert_eq!(planned[0].limit_price.to_string(), "0.250000");

    // The same message again: still one order, the same one.
    assert!(matches!(
        ingest.handle(&topic, &message, now),
        Outcome::Household(_)
    ));
    assert_eq!(ingest.plan_orders(target, now), planned);

    // A later message for the interval replaces the earlier one; the next interval is untouched.
    let later = own(target, Side::Sell, 120, "0.10");
    assert!(matches!(
        ingest.handle(&topic, &later, now),
        Outcome::Household(_)
    ));
    let replaced = ingest.plan_orders(target, now);
    assert_eq!(replaced.len(), 1);
    assert_eq!(
        (replaced[0].side, replaced[0].quantity_wh),
        (Side::Sell, 120)
    );
    assert_eq!(ingest.plan_orders(target.next(), now).len(), 1);
    assert_eq!(ingest.plan_orders(target.next(), now)[0].quantity_wh, 200);

    // Planned for submission: the own order is used, and later ones for it are refused.
    assert_eq!(ingest.plan_for_submission(target, now), replaced);
    let (kind, reason) = rejected(ingest.handle(&topic, &message, now));
    assert_eq!(kind, ErrorKind::GateClosed);
    assert!(reason.contains("already submitted"), "{reason}");
    assert_eq!(ingest.counters().household_orders, 3);
    assert!(ingest.counters().errors.is_empty(), "not meter errors");
    assert_eq!(
        ingest.counters().household_errors[&ErrorKind::GateClosed],
        1
    );
}

#[test]
fn bad_household_messages_are_dead_lettered() {
    let mut ingest = ingest();
    let now = with_forecast(&mut ingest);
    let target = IntervalSpec::DEFAULT.first_open(now);
    let before = ingest.plan_orders(target, now);
    let topic = orders_topic("voltmesh", &"tasmota".into());
    let cases: Vec<(String, Vec<u8>, ErrorKind)> = vec![
        (
            orders_topic("voltmesh", &"stranger".into()),
            own(target, Side::Buy, 1, "0.2"),
            ErrorKind::UnknownParticipant,
        ),
        (
            topic.clone(),
            b"{\"side\":\"buy\"".to_vec(),
            ErrorKind::Malformed,
        ),
        (
            topic.clone(),
            own(target, Side::Buy, 0, "0.2"),
            ErrorKind::BadValue,
        ),
        (
            topic.clone(),
            own(target, Side::Buy, 5, "0.33"),
            ErrorKind::BadValue,
        ),
        (
            topic.clone(),
            own(target, Side::Buy, 5_000_000, "0.2"),
            ErrorKind::BadValue,
        ),
        (
            topic.clone(),
            own(IntervalSpec::DEFAULT.containing(now), Side::Buy, 5, "0.2"),
            ErrorKind::GateClosed,
        ),
    ];
    for (topic, payload, expected) in cases {
        let out = ingest.handle(&topic, &payload, now);
        let Outcome::Rejected(letter) = out else {
            panic!("{topic}: {out:?}")
        };
        assert_eq!(letter.kind, expected, "{}", letter.reason);
        assert_eq!(letter.payload().unwrap(), payload);
        assert!(letter.participant.is_some());
    }
    // An array with one bad order records none of it.
    let mut batch = b"[".to_vec();
    batch.extend(own(target, Side::Buy, 5, "0.2"));
    batch.push(b',');
    batch.extend(own(target.next(), Side::Buy, 0, "0.2"));
    batch.push(b']');
    assert_eq!(
        rejected(ingest.handle(&topic, &batch, now)).0,
        ErrorKind::BadValue
    );
    assert_eq!(
        ingest.plan_orders(target, now),
        before,
        "the forecast still stands"
    );
    assert_eq!(ingest.counters().household_orders, 0);
    assert_eq!(ingest.counters().household_errors.values().sum::<u64>(), 7);
}

#[test]
fn preferences_change_the_next_planned_order() {
    let mut ingest = ingest();
    let now = with_forecast(&mut ingest);
    let target = IntervalSpec::DEFAULT.first_open(now);
    assert_eq!(
        ingest.plan_orders(target, now)[0].limit_price.to_string(),
        "0.120000"
    );
    let topic = preferences_topic("voltmesh", &"tasmota".into());
    let out = ingest.handle(&topic, br#"{"sell_limit": "0.15"}"#, now);
    let Outcome::Household(HouseholdUpdate::Preferences { preferences, .. }) = out else {
        panic!("{out:?}")
    };
    assert_eq!(preferences.sell_limit.to_string(), "0.150000");
    assert_eq!(
        preferences.buy_limit.to_string(),
        "0.300000",
        "from the config"
    );
    let planned = ingest.plan_orders(target, now);
    assert_eq!(planned[0].limit_price.to_string(), "0.150000");
    assert_eq!(planned[0].quantity_wh, 200);

    // Out of the tariffs or malformed: refused, the preferences stay.
    for (bad, kind) in [
        (&br#"{"sell_limit": "0.01"}"#[..], ErrorKind::BadValue),
        (br#"{"sell_limit": 0.2}"#, ErrorKind::Malformed),
        (br#"{"sell": "0.2"}"#, ErrorKind::Malformed),
    ] {
        assert_eq!(rejected(ingest.handle(&topic, bad, now)).0, kind);
    }
    assert_eq!(
        ingest.plan_orders(target, now)[0].limit_price.to_string(),
        "0.150000"
    );

    // Disabled: no order at all, not even its own.
    let off = PreferencesMessage {
        enabled: Some(false),
        ..PreferencesMessage::default()
    };
    assert!(matches!(
        ingest.handle(&topic, &off.to_json().unwrap(), now),
        Outcome::Household(_)
    ));
    let orders = orders_topic("voltmesh", &"tasmota".into());
    assert!(matches!(
        ingest.handle(&orders, &own(target, Side::Buy, 5, "0.2"), now),
        Outcome::Household(_)
    ));
    assert!(ingest.plan_orders(target, now).is_empty());
    // An empty retained message clears it: back to the config (enabled, sell at 0.12).
    assert!(matches!(
        ingest.handle(&topic, b"", now),
        Outcome::Household(_)
    ));
    let planned = ingest.plan_orders(target, now);
    assert_eq!(
        (planned[0].side, planned[0].quantity_wh),
        (Side::Buy, 5),
        "its own order"
    );
    assert_eq!(
        ingest
            .registry()
            .household(&"tasmota".into())
            .unwrap()
            .preferences
            .sell_limit
            .to_string(),
        "0.120000"
    );
    assert_eq!(ingest.counters().preferences_updates, 3);
    assert_eq!(ingest.counters().household_errors.values().sum::<u64>(), 3);
    let unknown = preferences_topic("voltmesh", &"stranger".into());
    assert_eq!(
        rejected(ingest.handle(&unknown, b"{}", now)).0,
        ErrorKind::UnknownParticipant
    );
}

#[test]
fn a_bid_curve_is_several_orders_and_a_later_message_replaces_the_whole_set() {
    let mut ingest = ingest();
    let now = with_forecast(&mut ingest);
    let target = IntervalSpec::DEFAULT.first_open(now);
    let tasmota = ParticipantId::from("tasmota");
    let topic = orders_topic("voltmesh", &tasmota);
    let block = |quantity_wh, price: &str| HouseholdOrder {
        interval_start: target.start(),
        side: Side::Buy,
        quantity_wh,
        limit_price: price.parse().unwrap(),
    };
    // "2 kWh at up to 0.20, one more at up to 0.15".
    let curve = serde_json::to_vec(&[block(2_000, "0.20"), block(1_000, "0.15")]).unwrap();
    let out = ingest.handle(&topic, &curve, now);
    assert!(
        matches!(&out, Outcome::Household(HouseholdUpdate::Orders { orders, .. }) if orders.len() == 2),
        "{out:?}"
    );
    let planned = ingest.plan_orders(target, now);
    assert_eq!(planned.len(), 2, "both blocks replace the forecast's order");
    assert_eq!(
        planned
            .iter()
            .map(|o| (o.quantity_wh, o.limit_price.to_string()))
            .collect::<Vec<_>>(),
        [
            (2_000, "0.200000".to_owned()),
            (1_000, "0.150000".to_owned())
        ]
    );
    assert_ne!(planned[0].id, planned[1].id);
    // The same curve again is the same two orders.
    let _ = ingest.handle(&topic, &curve, now);
    assert_eq!(ingest.plan_orders(target, now), planned);
    // One order for the interval replaces the whole curve.
    let _ = ingest.handle(&topic, &own(target, Side::Buy, 500, "0.18"), now);
    let single = ingest.plan_orders(target, now);
    assert_eq!(single.len(), 1);
    assert_eq!(single[0].quantity_wh, 500);
    assert_eq!(
        single[0].id, planned[0].id,
        "block 0 keeps the single order's id"
    );
    // A curve with both sides, or a block outside the tariffs, is refused as a whole.
    let mut mixed = vec![block(100, "0.20")];
    mixed.push(HouseholdOrder {
        side: Side::Sell,
        ..block(100, "0.20")
    });
    let (_, reason) = rejected(ingest.handle(&topic, &serde_json::to_vec(&mixed).unwrap(), now));
    assert!(reason.contains("one side"), "{reason}");
    let outside = serde_json::to_vec(&[block(100, "0.20"), block(100, "0.40")]).unwrap();
    let _ = rejected(ingest.handle(&topic, &outside, now));
    assert_eq!(
        ingest.plan_orders(target, now),
        single,
        "nothing of a refused message"
    );
}
