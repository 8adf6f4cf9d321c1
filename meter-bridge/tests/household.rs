//! Readings → registers → forecast → orders, end to end without I/O.

mod common;

use chrono::{DateTime, TimeDelta, Utc};
use common::utc;
use voltmesh_engine::{IntervalSpec, Side};
use voltmesh_meter_bridge::decode::native;
use voltmesh_meter_bridge::household::forecast::ForecastConfig;
use voltmesh_meter_bridge::household::plan::{plan_orders, OrderPolicy};
use voltmesh_meter_bridge::household::registers::{RegisterBook, RegisterPolicy};
use voltmesh_meter_bridge::household::registry::{Registry, RegistryConfig};
use voltmesh_meter_bridge::testing::{BridgeToml, HouseholdEntry};
use voltmesh_meter_bridge::Reading;

/// The households' registry: `solar`, `flat` and `away` (disabled), one meter each.
fn config() -> String {
    BridgeToml::default()
        .household(HouseholdEntry::new("solar", "m-solar", "0.30", "0.12"))
        .household(HouseholdEntry::new("flat", "m-flat", "0.28", "0.15"))
        .household(HouseholdEntry::new("away", "m-away", "0.25", "0.10").enabled(false))
        .to_string()
}

fn registry() -> Registry {
    Registry::from_config(toml::from_str::<RegistryConfig>(&config()).unwrap()).unwrap()
}

fn native_reading(meter: &str, ts: DateTime<Utc>, import_wh: u64, export_wh: u64) -> Reading {
    let json = format!(
        r#"{{"meter":"{meter}","ts":"{}","import_wh":{import_wh},"export_wh":{export_wh},"power_w":0}}"#,
        ts.to_rfc3339()
    );
    native::decode(json.as_bytes()).expect("valid native reading")
}

#[test]
fn two_days_of_readings_become_orders_at_each_households_limits() {
    let registry = registry();
    let spec = IntervalSpec::DEFAULT;
    let mut book = RegisterBook::new(spec, RegisterPolicy::default());
    let start = utc("2026-06-13T00:00:00Z");
    // Every 5 minutes for two days. "solar" exports 40 Wh per 5 min between 08:00 and 16:00 UTC
    // and imports 10 Wh otherwise; "flat" always imports 25 Wh; "away" imports 1 Wh.
    let mut registers = [(0u64, 0u64); 3];
    let meters = ["m-solar", "m-flat", "m-away"];
    let mut now = start;
    while now <= utc("2026-06-14T10:40:00Z") {
        for (i, meter) in meters.iter().enumerate() {
            if now > start {
                let hour = now.time().format("%H").to_string().parse::<u32>().unwrap();
                let (imp, exp) = match i {
                    0 if (8..16).contains(&hour) => (0, 40),
                    0 => (10, 0),
                    1 => (25, 0),
                    _ => (1, 0),
                };
                registers[i].0 += imp;
                registers[i].1 += exp;
            }
            let r = native_reading(meter, now, registers[i].0, registers[i].1);
            book.record(&registry, &r, now).unwrap();
        }
        now += TimeDelta::minutes(5);
    }
    // At 10:40 the 10:45 interval's gate (5 min lead) has just closed: orders go to 11:00.
    let decided_at = utc("2026-06-14T10:40:00Z");
    let target = spec.first_open(decided_at);
    assert_eq!(target.start(), utc("2026-06-14T11:00:00Z"));
    let plan = || {
        plan_orders(
            &book,
            &registry,
            target,
            decided_at,
            ForecastConfig::default(),
            OrderPolicy::default(),
        )
    };
    let orders = plan();
    // Yesterday 11:00–11:15 and the last complete interval 10:15–10:30: solar exported 120 Wh
    // in both; flat imported 75 Wh in both; away is disabled.
    let summary: Vec<(String, Side, u64, String)> = orders
        .iter()
        .map(|o| {
            (
                o.id.to_string(),
                o.side,
                o.quantity_wh,
                o.limit_price.to_string(),
            )
        })
        .collect();
    let start_unix = target.start_unix();
    assert_eq!(
        summary,
        vec![
            (
                format!("flat-{start_unix}-buy"),
                Side::Buy,
                75,
                "0.280000".to_owned()
            ),
            (
                format!("solar-{start_unix}-sell"),
                Side::Sell,
                120,
                "0.120000".to_owned()
            ),
        ]
    );
    // Planning again is idempotent: identical orders, identical ids.
    let again = plan();
    assert_eq!(orders, again);
}

#[test]
fn forecast_blends_yesterday_with_the_last_interval() {
    let registry = registry();
    let spec = IntervalSpec::DEFAULT;
    let mut book = RegisterBook::new(spec, RegisterPolicy::default());
    let record = |book: &mut RegisterBook, ts: &str, imp: u64, exp: u64| {
        let r = native_reading("m-solar", utc(ts), imp, exp);
        book.record(&registry, &r, utc("2026-06-15T00:00:00Z"))
            .unwrap();
    };
    // Yesterday 12:00–12:15: exported 900 Wh. Today 11:30–11:45: exported 300 Wh.
    record(&mut book, "2026-06-13T12:00:00Z", 0, 0);
    record(&mut book, "2026-06-13T12:15:00Z", 0, 900);
    record(&mut book, "2026-06-14T11:30:00Z", 0, 900);
    record(&mut book, "2026-06-14T11:45:00Z", 0, 1200);
    let target = spec.containing(utc("2026-06-14T12:00:00Z"));
    let at = utc("2026-06-14T11:50:00Z");
    let plan = |w: u8| {
        plan_orders(
            &book,
            &registry,
            target,
            at,
            ForecastConfig {
                weight_yesterday_pct: w,
            },
            OrderPolicy::default(),
        )
    };
    assert_eq!(plan(50)[0].quantity_wh, 600);
    assert_eq!(plan(100)[0].quantity_wh, 900);
    assert_eq!(plan(0)[0].quantity_wh, 300);
    assert_eq!(plan(75)[0].quantity_wh, 750);
}
