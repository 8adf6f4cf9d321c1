//! A real Home Assistant (2024.3.3, pinned in `tests/home-assistant/requirements.txt`) with its
//! MQTT integration on the same Mosquitto as `voltmesh demo --broker`: the households' devices
//! come from the bridge's discovery, their values from the ledger, and switching trading off in
//! Home Assistant writes the household's retained preferences.
//!
//! Home Assistant comes from `VOLTMESH_HASS` (the path of `hass`) or
//! `<target dir>/home-assistant-venv/bin/hass`, where `tests/home-assistant/install.sh` puts it
//! (`.ci/test.sh` runs it). Without either the test is skipped with a message, unless `CI` is
//! set: then it fails. With `VOLTMESH_HA_SCREENSHOT=<file.png>` it also photographs the
//! household's device page in Chromium (`tests/home-assistant/screenshot.sh` sets everything up;
//! the README's picture).

#[allow(dead_code, unused_imports)]
mod support;

#[path = "support/home_assistant.rs"]
mod home_assistant;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use home_assistant::HomeAssistant;
use serde_json::{json, Value};
use voltmesh_meter_bridge::testing::{free_port, BrokerOptions, Mosquitto, TestClient};

/// The demo's households (`hh-01` ... `hh-13`), neighborhood and tariffs (its defaults).
const HOUSEHOLDS: usize = 13;
const NEIGHBORHOOD: &str = "demo";
const FEED_IN: f64 = 0.08;
const RETAIL: f64 = 0.30;
/// How long Home Assistant may take to answer after its start (a cold first start after the
/// install compiles nothing, but the machine may be busy).
const HA_START: Duration = Duration::from_secs(120);
/// How long until the first household's totals from the ledger are in Home Assistant: the demo
/// shows its first interval about 20 s after its start, the bridge reads the totals right after.
const FIRST_VALUES: Duration = Duration::from_secs(150);
/// How long a command may take from Home Assistant through the broker and the bridge and back.
const ROUND_TRIP: Duration = Duration::from_secs(30);

/// A household's entity id: `object_id` is the `unique_id`, which Home Assistant slugifies.
fn entity(component: &str, participant: &str, key: &str) -> String {
    format!(
        "{component}.voltmesh_{NEIGHBORHOOD}_{}_{key}",
        participant.replace('-', "_")
    )
}

fn neighborhood_sensor(key: &str) -> String {
    format!("sensor.voltmesh_{NEIGHBORHOOD}_{key}")
}

/// The state of `id` as a number, if it is one.
fn number(states: &BTreeMap<String, Value>, id: &str) -> Option<f64> {
    states.get(id)?["state"].as_str()?.parse().ok()
}

/// A JSON number or decimal string as a number.
fn decimal(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str()?.parse().ok())
}

fn same(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// The demo's stdout lines so far, collected by a thread.
#[derive(Clone, Default)]
struct Output(Arc<Mutex<Vec<String>>>);

impl Output {
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn text(&self) -> String {
        self.lines().join("\n")
    }
}

/// The running demo: stopped with SIGINT when dropped, also on a panic, so that it removes its
/// directory (killed if it does not stop within 30 s).
struct Demo(support::Proc);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.interrupt();
    }
}

/// Why the test failed, with what every part said.
fn diagnose(ha: &HomeAssistant, demo: &Output, demo_err: &Path) -> String {
    let err = std::fs::read_to_string(demo_err).unwrap_or_default();
    let err: Vec<&str> = err.lines().collect();
    let err = err[err.len().saturating_sub(30)..].join("\n");
    format!(
        "--- voltmesh demo stdout\n{}\n--- voltmesh demo stderr (last 30 lines)\n{err}\n{}",
        demo.text(),
        ha.log_tail(40)
    )
}

fn household_entities(participant: &str) -> Vec<String> {
    let mut ids: Vec<String> = [
        "energy_bought",
        "energy_sold",
        "money_paid",
        "money_received",
        "clearing_price",
        "interval_bought",
        "interval_sold",
    ]
    .iter()
    .map(|k| entity("sensor", participant, k))
    .collect();
    ids.push(entity("switch", participant, "trading"));
    ids.push(entity("number", participant, "buy_limit"));
    ids.push(entity("number", participant, "sell_limit"));
    ids.sort();
    ids
}

/// Asserts `id`'s unit, device class and state class as Home Assistant reports them (`None`:
/// the attribute is absent).
fn assert_classes(
    states: &BTreeMap<String, Value>,
    id: &str,
    unit: &str,
    device_class: Option<&str>,
    state_class: Option<&str>,
) {
    let attributes = &states.get(id).unwrap_or_else(|| panic!("no entity {id}"))["attributes"];
    assert_eq!(
        (
            attributes["unit_of_measurement"].as_str(),
            attributes["device_class"].as_str(),
            attributes["state_class"].as_str(),
        ),
        (Some(unit), device_class, state_class),
        "{id}: {attributes}"
    );
}

fn assert_within_tariffs(states: &BTreeMap<String, Value>, id: &str) {
    let price = number(states, id).unwrap_or_else(|| panic!("{id}: {:?}", states.get(id)));
    assert!(
        (FEED_IN - 1e-9..=RETAIL + 1e-9).contains(&price),
        "{id} = {price}, outside [{FEED_IN}, {RETAIL}]"
    );
}

#[test]
fn home_assistant_shows_the_households_market_and_switches_its_trading_off() {
    let Some(hass) = home_assistant::find_hass() else {
        let install = "bash sim/stack/tests/home-assistant/install.sh";
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but Home Assistant is not installed: run `{install}` (as .ci/test.sh \
             does) or set VOLTMESH_HASS to a `hass`"
        );
        eprintln!(
            "SKIPPED home_assistant: no Home Assistant (VOLTMESH_HASS unset and no \
             <target dir>/home-assistant-venv); install it with `{install}`"
        );
        return;
    };
    let started = Instant::now();
    let broker = Mosquitto::start(&BrokerOptions::default());
    let dir = tempfile::Builder::new()
        .prefix("home-assistant-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir");

    // The neighborhood, on the test broker (its bridge has discovery on by default).
    let demo_err = dir.path().join("demo.err");
    let mut child = support::voltmesh()
        .args([
            "demo",
            "--broker",
            &format!("mqtt://127.0.0.1:{}", broker.port),
        ])
        .args(["--intervals", "40", "--interval-secs", "10"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&demo_err).expect("demo.err"))
        .spawn()
        .expect("start voltmesh demo");
    let output = Output::default();
    {
        let stdout = child.stdout.take().expect("piped stdout");
        let output = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                output
                    .0
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(line);
            }
        });
    }
    let mut demo = Demo(support::Proc::new(child));

    // Home Assistant, meanwhile: up, onboarded, with the MQTT integration on the test broker.
    let mut ha = HomeAssistant::start(&hass, &dir.path().join("config"), free_port());
    ha.wait_up(HA_START);
    let ha_up = started.elapsed();
    ha.onboard();
    ha.add_mqtt(broker.port);

    let api = {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(api) = output
                .lines()
                .iter()
                .find_map(|l| l.trim().strip_prefix("node API http://").map(str::to_owned))
            {
                break api;
            }
            assert!(
                Instant::now() < deadline && demo.0.running(),
                "the demo shows no node API\n{}",
                diagnose(&ha, &output, &demo_err)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };

    // The demo's directory holds the bridge key, which genesis allows for every household.
    let demo_dir = output
        .lines()
        .iter()
        .find_map(|l| {
            l.trim()
                .strip_prefix("directory ")
                .map(std::path::PathBuf::from)
        })
        .expect("the demo names its directory");
    let bridge_key =
        voltmesh_wire::key::read(&demo_dir.join("bridge.key")).expect("the demo's bridge key");
    let reader = voltmesh_wire::client::BlockingNodeClient::new(&format!("http://{api}"))
        .expect("node client")
        .with_read_key(NEIGHBORHOOD, bridge_key);

    // Wait until Home Assistant shows real values: the market's clearing price and indicative
    // prices, and a household that bought locally whose four totals are exactly the ledger's.
    let deadline = Instant::now() + FIRST_VALUES;
    let (participant, states, balance) = 'found: loop {
        let states = ha.states();
        let market = ["clearing_price", "import_price_next", "export_price_next"]
            .iter()
            .all(|k| number(&states, &neighborhood_sensor(k)).is_some());
        if market {
            for n in 1..=HOUSEHOLDS {
                let p = format!("hh-{n:02}");
                let bought = number(&states, &entity("sensor", &p, "energy_bought"));
                let priced = number(&states, &entity("sensor", &p, "clearing_price")).is_some();
                if !(priced && bought.is_some_and(|b| b > 0.0)) {
                    continue;
                }
                // A household's data is served to its keys only: the bridge's signs.
                let Some(ledger) = reader
                    .raw("GET", &format!("/v1/participants/{p}"), None)
                    .ok()
                    .filter(|answer| answer.status == 200)
                    .and_then(|answer| {
                        serde_json::from_slice::<serde_json::Value>(&answer.body).ok()
                    })
                else {
                    continue;
                };
                let balance = ledger["balance"].clone();
                let pairs = [
                    (
                        "energy_bought",
                        decimal(&balance["bought_wh"]).map(|w| w / 1000.0),
                    ),
                    (
                        "energy_sold",
                        decimal(&balance["sold_wh"]).map(|w| w / 1000.0),
                    ),
                    ("money_paid", decimal(&balance["paid"])),
                    ("money_received", decimal(&balance["received"])),
                ];
                let equal = pairs.iter().all(|(key, ledger)| {
                    let shown = number(&states, &entity("sensor", &p, key));
                    matches!((shown, ledger), (Some(a), Some(b)) if same(a, *b))
                });
                if equal {
                    break 'found (p, states, balance);
                }
            }
        }
        if Instant::now() > deadline {
            let shown: Vec<String> = household_entities("hh-01")
                .iter()
                .chain(&[neighborhood_sensor("clearing_price")])
                .map(|id| format!("{id} = {:?}", states.get(id).map(|s| &s["state"])))
                .collect();
            panic!(
                "no household's totals from the ledger in Home Assistant within {FIRST_VALUES:?}\
                 \n{}\n{}",
                shown.join("\n"),
                diagnose(&ha, &output, &demo_err)
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let values_in = started.elapsed();

    // What Home Assistant made of the discovery configs: one device with the household's ten
    // entities, and the units and classes its Energy dashboard asks for.
    let currency = balance["currency"].as_str().expect("the ledger's currency");
    assert!(
        currency.len() == 3 && currency.chars().all(|c| c.is_ascii_uppercase()),
        "an ISO 4217 code: {currency}"
    );
    let price_unit = format!("{currency}/kWh");
    let energy_bought = entity("sensor", &participant, "energy_bought");
    let device = ha.render(&format!("{{{{ device_id('{energy_bought}') }}}}"));
    assert!(
        !device.trim().is_empty() && device != "None",
        "device {device:?}"
    );
    let on_device = ha.render(&format!(
        "{{{{ device_entities('{device}') | sort | join(',') }}}}"
    ));
    assert_eq!(
        on_device.split(',').map(str::to_owned).collect::<Vec<_>>(),
        household_entities(&participant),
        "the household's device"
    );
    let named = ha.render(&format!(
        "{{{{ device_attr('{device}', 'name') }}}}|{{{{ device_attr('{device}', 'model') }}}}"
    ));
    assert_eq!(
        named,
        format!("Voltmesh {participant}|meter bridge household")
    );

    for key in ["energy_bought", "energy_sold"] {
        let id = entity("sensor", &participant, key);
        assert_classes(
            &states,
            &id,
            "kWh",
            Some("energy"),
            Some("total_increasing"),
        );
    }
    for key in ["money_paid", "money_received"] {
        let id = entity("sensor", &participant, key);
        assert_classes(&states, &id, currency, Some("monetary"), Some("total"));
    }
    for key in ["interval_bought", "interval_sold"] {
        let id = entity("sensor", &participant, key);
        assert_classes(&states, &id, "kWh", Some("energy"), None);
    }
    let household_price = entity("sensor", &participant, "clearing_price");
    assert_classes(
        &states,
        &household_price,
        &price_unit,
        None,
        Some("measurement"),
    );
    assert_within_tariffs(&states, &household_price);
    for key in ["clearing_price", "import_price_next", "export_price_next"] {
        let id = neighborhood_sensor(key);
        assert_classes(&states, &id, &price_unit, None, Some("measurement"));
        assert_within_tariffs(&states, &id);
    }
    assert!(
        number(&states, &entity("sensor", &participant, "money_paid")).is_some_and(|p| p > 0.0),
        "a household that bought paid for it"
    );
    for key in ["buy_limit", "sell_limit"] {
        let id = entity("number", &participant, key);
        let attributes = &states[&id]["attributes"];
        assert_eq!(attributes["unit_of_measurement"], price_unit, "{id}");
        let (min, max, step) = (
            decimal(&attributes["min"]),
            decimal(&attributes["max"]),
            decimal(&attributes["step"]),
        );
        assert!(
            matches!((min, max, step), (Some(a), Some(b), Some(s))
                if same(a, FEED_IN) && same(b, RETAIL) && same(s, 0.001)),
            "{id}: {attributes}"
        );
        assert_within_tariffs(&states, &id);
    }
    let switch = entity("switch", &participant, "trading");
    assert_eq!(states[&switch]["state"], "on", "trading is on at first");

    if let Some(png) = std::env::var_os("VOLTMESH_HA_SCREENSHOT").filter(|p| !p.is_empty()) {
        screenshot(&ha, &device, Path::new(&png));
    }

    // Trading off from Home Assistant: the switch's command goes through the bridge into the
    // household's retained preferences, and the switch shows what the bridge then publishes.
    let answer = ha.post(
        "/api/services/switch/turn_off",
        &json!({"entity_id": switch}),
    );
    assert_eq!(answer.status, 200, "switch.turn_off: {}", answer.text());
    let deadline = Instant::now() + ROUND_TRIP;
    loop {
        let state = ha.states().get(&switch).map(|s| s["state"].clone());
        if state == Some(json!("off")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{switch} is {state:?}, not off, {ROUND_TRIP:?} after switch.turn_off\n{}",
            diagnose(&ha, &output, &demo_err)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let topic = format!("voltmesh/households/{participant}/preferences");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let preferences = rt.block_on(async {
        let options = rumqttc::MqttOptions::new("home-assistant-test", "127.0.0.1", broker.port);
        let mut client = TestClient::connect(options, &[&topic]).await;
        client.next().await
    });
    let wish: Value = serde_json::from_slice(&preferences.payload).expect("preferences JSON");
    assert!(preferences.retain, "the preferences are retained");
    assert_eq!(wish["enabled"], false, "{topic}: {wish}");

    drop(demo);
    eprintln!(
        "home_assistant: {participant}; Home Assistant up after {:.1} s, values from the ledger \
         after {:.1} s, done after {:.1} s",
        ha_up.as_secs_f64(),
        values_in.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

/// Photographs the household's device page in Chromium through playwright-core
/// (`tests/home-assistant/screenshot.cjs`), signed in with the owner's tokens.
fn screenshot(ha: &HomeAssistant, device: &str, png: &Path) {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let playwright = std::env::var_os("VOLTMESH_PLAYWRIGHT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| target.join("home-assistant-screenshot"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/home-assistant/screenshot.cjs");
    let tokens = ha.frontend_tokens.as_ref().expect("onboarded").to_string();
    let status = std::process::Command::new("node")
        .arg(&script)
        .env("VOLTMESH_PLAYWRIGHT_DIR", &playwright)
        .env("HA_URL", ha.url())
        .env("HA_PAGE", format!("/config/devices/device/{device}"))
        .env("HA_TOKENS", tokens)
        .env("HA_SCREENSHOT", png)
        .status()
        .expect("run node (the screenshot needs node, playwright-core and chromium)");
    assert!(status.success(), "the screenshot failed: {status}");
    eprintln!("home_assistant: screenshot written to {}", png.display());
}
