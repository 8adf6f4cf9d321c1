//! Home Assistant MQTT discovery: the retained configs that make every household a Home Assistant
//! device with its local-market entities, the states they read, and the commands of its controls.
//! Pure: the runtime task ([`crate::runtime::home_assistant`]) publishes what this builds.
//!
//! # Devices and entities
//! One device per household (`identifiers: ["voltmesh_<neighborhood>_<participant>"]`, model
//! `meter bridge household`, linked to the neighborhood's device) and one for the neighborhood
//! (`voltmesh_<neighborhood>`, model `neighborhood market`). Every config is retained, names its
//! `unique_id` (`voltmesh_<neighborhood>_<participant>_<key>`, stable across restarts) and the
//! bridge's availability topic ([`bridge_status_topic`]).
//!
//! | key | component | state topic, value | unit | classes |
//! |---|---|---|---|---|
//! | `energy_bought` | sensor | `totals`, `bought_kwh` | kWh | `energy`, `total_increasing` |
//! | `energy_sold` | sensor | `totals`, `sold_kwh` | kWh | `energy`, `total_increasing` |
//! | `money_paid` | sensor | `totals`, `paid` | the currency code | `monetary`, `total` |
//! | `money_received` | sensor | `totals`, `received` | the currency code | `monetary`, `total` |
//! | `clearing_price` | sensor | `fills`, `clearing_price` | `<CUR>/kWh` | `measurement` |
//! | `interval_bought` | sensor | `fills`, `bought_wh`/1000; fills as attributes | kWh | `energy`, no state class |
//! | `interval_sold` | sensor | `fills`, `sold_wh`/1000; fills as attributes | kWh | `energy`, no state class |
//! | `trading` | switch | `controls`, `trading` (`ON`/`OFF`) | | |
//! | `buy_limit`, `sell_limit` | number | `controls`, the limit; min/max the tariffs, step 0.001 | `<CUR>/kWh` | |
//!
//! The neighborhood's device has `clearing_price` and `volume` (kWh) from `market/clearing`, and
//! `import_price_next` and `export_price_next` (`<CUR>/kWh`) from `market/price_signal`: the
//! indicative prices of the next interval not yet planned, with the whole day ahead as
//! attributes ([`crate::household::price_signal`]).
//!
//! The totals come from the ledger (the node's balance of the participant), so they survive a
//! bridge restart and never double-count: only they carry a `total`/`total_increasing` state
//! class, which the Energy dashboard asks for (energy in kWh; cost and compensation with
//! `device_class: monetary` in the ISO currency); the per-interval values have no state class.
//!
//! # Known limitations
//! The numbers' bounds are the tariffs the bridge started with (genesis); a later rule change on the
//! ledger is enforced when the preferences are applied, not shown in the bounds.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use voltmesh_engine::{Money, ParticipantId, Price, Tariffs, Wh};
use voltmesh_wire::api::Balance;
use voltmesh_wire::Currency;

use crate::household::preferences::{PreferencesError, PreferencesMessage};
use crate::household::registry::Preferences;
use crate::household::topic::{
    bridge_status_topic, clearing_topic, control_command_topic, controls_topic, fills_topic,
    price_signal_topic, totals_topic, Control, ResultsError,
};

/// The payload of [`bridge_status_topic`] while the bridge is up.
pub const ONLINE: &str = "online";
/// The payload of [`bridge_status_topic`] once it is gone (the last will).
pub const OFFLINE: &str = "offline";
/// Home Assistant's birth payload on `<discovery_prefix>/status`.
pub const BIRTH: &str = "online";

/// One discovery config: its topic and its JSON (an empty payload deletes the entity).
#[derive(Debug, Clone, PartialEq)]
pub struct EntityConfig {
    /// `<discovery_prefix>/<component>/<node_id>/<key>/config`.
    pub topic: String,
    /// The config.
    pub payload: Value,
}

/// What the configs are built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// Home Assistant's discovery prefix (`home_assistant.discovery_prefix`).
    pub discovery_prefix: String,
    /// `topics.results_prefix`: states and availability.
    pub results_prefix: String,
    /// `topics.households_prefix`: control commands.
    pub households_prefix: String,
    /// The neighborhood (`node.neighborhood`).
    pub neighborhood: String,
    /// The community's currency.
    pub currency: Currency,
    /// The bounds of the limit numbers.
    pub tariffs: Tariffs,
}

/// `text` as one `[a-zA-Z0-9_-]` word, the characters Home Assistant allows in a node or object
/// id: letters, digits and `-` stay, every other byte becomes `_` and its two hex digits, so two
/// different ids never give the same word.
pub fn id_word(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    out
}

impl Discovery {
    /// Where every config says availability is.
    pub fn availability_topic(&self) -> String {
        bridge_status_topic(&self.results_prefix)
    }

    /// `<discovery_prefix>/status`: Home Assistant's birth and last will.
    pub fn birth_topic(&self) -> String {
        format!("{}/status", self.discovery_prefix)
    }

    fn neighborhood_id(&self) -> String {
        format!("voltmesh_{}", id_word(&self.neighborhood))
    }

    fn household_id(&self, participant: &ParticipantId) -> String {
        format!(
            "voltmesh_{}_{}",
            id_word(&self.neighborhood),
            id_word(participant.as_str())
        )
    }

    fn price_unit(&self) -> String {
        format!("{}/kWh", self.currency.code())
    }

    /// The fields every config shares: ids, device, availability, origin.
    fn base(&self, node_id: &str, key: &str, name: &str, device: &Value) -> Value {
        let unique = format!("{node_id}_{key}");
        json!({
            "name": name,
            "unique_id": unique,
            "object_id": unique,
            "device": device,
            "availability_topic": self.availability_topic(),
            "payload_available": ONLINE,
            "payload_not_available": OFFLINE,
            "qos": 1,
            "origin": {
                "name": "Voltmesh meter bridge",
                "sw_version": env!("CARGO_PKG_VERSION"),
            },
        })
    }

    fn config(&self, component: &str, node_id: &str, key: &str, payload: Value) -> EntityConfig {
        EntityConfig {
            topic: format!(
                "{}/{component}/{node_id}/{key}/config",
                self.discovery_prefix
            ),
            payload,
        }
    }

    /// The config topics of a household's entities (to delete them: empty retained payloads).
    pub fn household_config_topics(&self, participant: &ParticipantId) -> Vec<String> {
        let node_id = self.household_id(participant);
        HOUSEHOLD_ENTITIES
            .iter()
            .map(|(component, key)| {
                format!(
                    "{}/{component}/{node_id}/{key}/config",
                    self.discovery_prefix
                )
            })
            .collect()
    }

    /// Every discovery config of `participant`'s device (module docs).
    ///
    /// # Errors
    /// [`ResultsError::BadParticipant`] if the participant id cannot be a topic level.
    pub fn household(
        &self,
        participant: &ParticipantId,
    ) -> Result<Vec<EntityConfig>, ResultsError> {
        let node_id = self.household_id(participant);
        let totals = totals_topic(&self.results_prefix, participant)?;
        let fills = fills_topic(&self.results_prefix, participant)?;
        let controls = controls_topic(&self.results_prefix, participant)?;
        let device = json!({
            "identifiers": [node_id],
            "name": format!("Voltmesh {participant}"),
            "manufacturer": "Voltmesh",
            "model": "meter bridge household",
            "via_device": self.neighborhood_id(),
        });
        let currency = self.currency.code();
        let price_unit = self.price_unit();
        let entity = |component: &str, key: &str, name: &str, extra: Value| {
            let mut payload = self.base(&node_id, key, name, &device);
            merge(&mut payload, extra);
            self.config(component, &node_id, key, payload)
        };
        let energy_total = |value: &str| {
            json!({
                "state_topic": totals,
                "value_template": format!("{{{{ value_json.{value} }}}}"),
                "unit_of_measurement": "kWh",
                "device_class": "energy",
                "state_class": "total_increasing",
                "suggested_display_precision": 3,
            })
        };
        let money_total = |value: &str| {
            json!({
                "state_topic": totals,
                "value_template": format!("{{{{ value_json.{value} }}}}"),
                "unit_of_measurement": currency,
                "device_class": "monetary",
                "state_class": "total",
                "suggested_display_precision": 2,
            })
        };
        let last_interval = |field: &str| {
            json!({
                "state_topic": fills,
                "value_template": format!("{{{{ value_json.{field} / 1000 }}}}"),
                "unit_of_measurement": "kWh",
                "device_class": "energy",
                "suggested_display_precision": 3,
                "json_attributes_topic": fills,
                "json_attributes_template":
                    "{{ {'interval_start': value_json.interval_start, 'fills': value_json.fills} | tojson }}",
            })
        };
        let limit = |control: Control| -> Result<Value, ResultsError> {
            Ok(json!({
                "state_topic": controls,
                "value_template": format!("{{{{ value_json.{} }}}}", control.as_str()),
                "command_topic": control_command_topic(&self.households_prefix, participant, control)?,
                "min": price_number(self.tariffs.feed_in),
                "max": price_number(self.tariffs.retail),
                "step": 0.001,
                "mode": "box",
                "unit_of_measurement": price_unit,
                "retain": false,
            }))
        };
        Ok(vec![
            entity(
                "sensor",
                "energy_bought",
                "Energy bought locally",
                energy_total("bought_kwh"),
            ),
            entity(
                "sensor",
                "energy_sold",
                "Energy sold locally",
                energy_total("sold_kwh"),
            ),
            entity(
                "sensor",
                "money_paid",
                "Paid for local energy",
                money_total("paid"),
            ),
            entity(
                "sensor",
                "money_received",
                "Received for local energy",
                money_total("received"),
            ),
            entity(
                "sensor",
                "clearing_price",
                "Last clearing price",
                json!({
                    "state_topic": fills,
                    "value_template": "{{ value_json.clearing_price }}",
                    "unit_of_measurement": price_unit,
                    "state_class": "measurement",
                    "suggested_display_precision": 4,
                }),
            ),
            entity(
                "sensor",
                "interval_bought",
                "Bought last interval",
                last_interval("bought_wh"),
            ),
            entity(
                "sensor",
                "interval_sold",
                "Sold last interval",
                last_interval("sold_wh"),
            ),
            entity(
                "switch",
                "trading",
                "Trading",
                json!({
                    "state_topic": controls,
                    "value_template": "{{ value_json.trading }}",
                    "command_topic": control_command_topic(
                        &self.households_prefix,
                        participant,
                        Control::Trading,
                    )?,
                    "payload_on": "ON",
                    "payload_off": "OFF",
                    "state_on": "ON",
                    "state_off": "OFF",
                    "retain": false,
                    "icon": "mdi:swap-horizontal",
                }),
            ),
            entity(
                "number",
                "buy_limit",
                "Buy limit",
                limit(Control::BuyLimit)?,
            ),
            entity(
                "number",
                "sell_limit",
                "Sell limit",
                limit(Control::SellLimit)?,
            ),
        ])
    }

    /// The neighborhood device's configs: the market's clearing price and volume, and the
    /// indicative prices of the next interval.
    pub fn neighborhood_configs(&self) -> Vec<EntityConfig> {
        let node_id = self.neighborhood_id();
        let device = json!({
            "identifiers": [node_id],
            "name": format!("Voltmesh {}", self.neighborhood),
            "manufacturer": "Voltmesh",
            "model": "neighborhood market",
        });
        let clearing = clearing_topic(&self.results_prefix);
        let signal = price_signal_topic(&self.results_prefix, None);
        let next_price = |side: &str| {
            json!({
                "state_topic": signal,
                "value_template": format!("{{{{ value_json.intervals[0].{side} }}}}"),
                "unit_of_measurement": self.price_unit(),
                "state_class": "measurement",
                "suggested_display_precision": 4,
                "json_attributes_topic": signal,
                "json_attributes_template": format!(
                    "{{{{ {{'start': value_json.intervals[0].start, 'forecast': value_json.intervals | map(attribute='{side}') | list}} | tojson }}}}"
                ),
            })
        };
        let entity = |key: &str, name: &str, extra: Value| {
            let mut payload = self.base(&node_id, key, name, &device);
            merge(&mut payload, extra);
            self.config("sensor", &node_id, key, payload)
        };
        vec![
            entity(
                "clearing_price",
                "Clearing price",
                json!({
                    "state_topic": clearing,
                    "value_template": "{{ value_json.clearing_price }}",
                    "unit_of_measurement": self.price_unit(),
                    "state_class": "measurement",
                    "suggested_display_precision": 4,
                }),
            ),
            entity(
                "volume",
                "Traded last interval",
                json!({
                    "state_topic": clearing,
                    "value_template": "{{ value_json.volume_wh / 1000 }}",
                    "unit_of_measurement": "kWh",
                    "device_class": "energy",
                    "suggested_display_precision": 3,
                    "json_attributes_topic": clearing,
                    "json_attributes_template":
                        "{{ {'interval_start': value_json.interval_start, 'trades': value_json.trades} | tojson }}",
                }),
            ),
            entity(
                "import_price_next",
                "Indicative import price",
                next_price("import"),
            ),
            entity(
                "export_price_next",
                "Indicative export price",
                next_price("export"),
            ),
        ]
    }
}

/// The (component, key) of every household entity, in [`Discovery::household`]'s order.
const HOUSEHOLD_ENTITIES: [(&str, &str); 10] = [
    ("sensor", "energy_bought"),
    ("sensor", "energy_sold"),
    ("sensor", "money_paid"),
    ("sensor", "money_received"),
    ("sensor", "clearing_price"),
    ("sensor", "interval_bought"),
    ("sensor", "interval_sold"),
    ("switch", "trading"),
    ("number", "buy_limit"),
    ("number", "sell_limit"),
];

/// Puts `extra`'s fields into `base` (both objects).
fn merge(base: &mut Value, extra: Value) {
    if let (Value::Object(base), Value::Object(extra)) = (base, extra) {
        base.extend(extra);
    }
}

/// A price as a JSON number (six decimals at most, exact in an `f64`'s shortest form).
fn price_number(price: Price) -> Value {
    price
        .to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// `wh` in kWh as an exact decimal string (`1234` → `"1.234"`).
pub fn kwh(wh: Wh) -> String {
    format!("{}.{:03}", wh / 1000, wh % 1000)
}

/// A household's totals from the ledger, on its `totals` topic (retained).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Energy bought locally, kWh (exact decimal string).
    pub bought_kwh: String,
    /// Energy sold locally, kWh (exact decimal string).
    pub sold_kwh: String,
    /// Energy bought locally, Wh.
    pub bought_wh: Wh,
    /// Energy sold locally, Wh.
    pub sold_wh: Wh,
    /// Paid for local purchases (nine decimals).
    pub paid: Money,
    /// Received for local sales (nine decimals).
    pub received: Money,
    /// The currency of `paid` and `received` (ISO 4217).
    pub currency: Currency,
}

impl Totals {
    /// The totals of a node's balance.
    pub fn of(balance: &Balance) -> Totals {
        Totals {
            bought_kwh: kwh(balance.bought_wh),
            sold_kwh: kwh(balance.sold_wh),
            bought_wh: balance.bought_wh,
            sold_wh: balance.sold_wh,
            paid: balance.paid,
            received: balance.received,
            currency: balance.currency,
        }
    }
}

/// A household's controls as in force, on its `controls` topic (retained).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Controls {
    /// `ON` or `OFF`.
    pub trading: String,
    /// The buy limit per kWh.
    pub buy_limit: Price,
    /// The sell limit per kWh.
    pub sell_limit: Price,
}

impl Controls {
    /// The controls showing `preferences`.
    pub fn of(preferences: Preferences) -> Controls {
        Controls {
            trading: if preferences.enabled { "ON" } else { "OFF" }.to_owned(),
            buy_limit: preferences.buy_limit,
            sell_limit: preferences.sell_limit,
        }
    }
}

/// Why a control command is refused.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The payload is not `ON`/`OFF` (trading) or a plain decimal price (limits).
    #[error("{control}: {payload:?} is not {expected}")]
    Malformed {
        /// The control.
        control: &'static str,
        /// The payload (lossy UTF-8).
        payload: String,
        /// What was expected.
        expected: &'static str,
    },
    /// The resulting preferences are refused (a limit outside the tariffs).
    #[error(transparent)]
    Refused(#[from] PreferencesError),
}

/// The household's whole wish after a command: `wish` (its current preferences message) with
/// the control's field set from `payload`, checked against `configured` and `tariffs` as the
/// bridge will check it. Returns the new message and the preferences it gives.
///
/// # Errors
/// [`CommandError`]: a bad payload, or a limit outside the tariffs.
pub fn apply_command(
    wish: PreferencesMessage,
    control: Control,
    payload: &[u8],
    configured: Preferences,
    tariffs: Tariffs,
) -> Result<(PreferencesMessage, Preferences), CommandError> {
    let text = String::from_utf8_lossy(payload);
    let text = text.trim();
    let malformed = |expected| CommandError::Malformed {
        control: control.as_str(),
        payload: text.to_owned(),
        expected,
    };
    let mut next = wish;
    match control {
        Control::Trading => {
            next.enabled = Some(match text {
                "ON" => true,
                "OFF" => false,
                _ => return Err(malformed("ON or OFF")),
            });
        }
        Control::BuyLimit | Control::SellLimit => {
            let price: Price = text.parse().map_err(|_| malformed("a price"))?;
            if control == Control::BuyLimit {
                next.buy_limit = Some(price);
            } else {
                next.sell_limit = Some(price);
            }
        }
    }
    let preferences = next.apply(configured, tariffs)?;
    Ok((next, preferences))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Price {
        text.parse().unwrap()
    }

    fn discovery() -> Discovery {
        Discovery {
            discovery_prefix: "homeassistant".into(),
            results_prefix: "voltmesh".into(),
            households_prefix: "voltmesh".into(),
            neighborhood: "oak street".into(),
            currency: "CHF".parse().unwrap(),
            tariffs: Tariffs::new(p("0.08"), p("0.32")).unwrap(),
        }
    }

    fn configured() -> Preferences {
        Preferences {
            buy_limit: p("0.30"),
            sell_limit: p("0.12"),
            enabled: true,
        }
    }

    #[test]
    fn ids_are_safe_words_and_never_collide() {
        assert_eq!(id_word("hh-01"), "hh-01");
        assert_eq!(id_word("oak street"), "oak_20street");
        assert_ne!(id_word("a.b"), id_word("a_b"));
        assert!(id_word("ä/+#_x")
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
    }

    #[test]
    fn household_configs_carry_what_home_assistant_and_the_energy_dashboard_need() {
        let d = discovery();
        let hh = ParticipantId::from("hh-01");
        let configs = d.household(&hh).unwrap();
        let topics: Vec<&str> = configs.iter().map(|c| c.topic.as_str()).collect();
        assert_eq!(
            topics,
            d.household_config_topics(&hh)
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
        );
        assert_eq!(
            topics[0],
            "homeassistant/sensor/voltmesh_oak_20street_hh-01/energy_bought/config"
        );
        for c in &configs {
            let v = &c.payload;
            let key = c.topic.rsplit('/').nth(1).unwrap();
            assert_eq!(v["unique_id"], format!("voltmesh_oak_20street_hh-01_{key}"));
            assert_eq!(v["object_id"], v["unique_id"]);
            assert_eq!(v["availability_topic"], "voltmesh/bridge/status");
            assert_eq!(v["device"]["identifiers"][0], "voltmesh_oak_20street_hh-01");
            assert_eq!(v["device"]["manufacturer"], "Voltmesh");
            assert_eq!(v["device"]["model"], "meter bridge household");
            assert!(v["state_topic"].is_string(), "{key}");
            assert!(v["name"].is_string(), "{key}");
        }
        let by = |key: &str| {
            &configs
                .iter()
                .find(|c| c.topic.contains(&format!("/{key}/")))
                .unwrap()
                .payload
        };
        for key in ["energy_bought", "energy_sold"] {
            let v = by(key);
            assert_eq!(
                (
                    &v["device_class"],
                    &v["state_class"],
                    &v["unit_of_measurement"]
                ),
                (&json!("energy"), &json!("total_increasing"), &json!("kWh"))
            );
            assert_eq!(v["state_topic"], "voltmesh/households/hh-01/totals");
        }
        for key in ["money_paid", "money_received"] {
            let v = by(key);
            assert_eq!(
                (
                    &v["device_class"],
                    &v["state_class"],
                    &v["unit_of_measurement"]
                ),
                (&json!("monetary"), &json!("total"), &json!("CHF"))
            );
        }
        for key in ["interval_bought", "interval_sold", "clearing_price"] {
            let v = by(key);
            assert_ne!(v["state_class"], "total", "{key} would double-count");
            assert_ne!(v["state_class"], "total_increasing", "{key}");
            assert_eq!(v["state_topic"], "voltmesh/households/hh-01/fills");
        }
        assert_eq!(by("clearing_price")["unit_of_measurement"], "CHF/kWh");
        assert!(by("clearing_price").get("device_class").is_none());
        let switch = by("trading");
        assert_eq!(
            switch["command_topic"],
            "voltmesh/households/hh-01/controls/trading/set"
        );
        let buy = by("buy_limit");
        assert_eq!(
            (buy["min"].as_f64(), buy["max"].as_f64()),
            (Some(0.08), Some(0.32))
        );
        assert_eq!(buy["step"].as_f64(), Some(0.001));
        assert_eq!(buy["unit_of_measurement"], "CHF/kWh");
        assert_eq!(
            buy["command_topic"],
            "voltmesh/households/hh-01/controls/buy_limit/set"
        );
        let n = d.neighborhood_configs();
        assert_eq!(
            n[0].topic,
            "homeassistant/sensor/voltmesh_oak_20street/clearing_price/config"
        );
        assert_eq!(n[0].payload["state_topic"], "voltmesh/market/clearing");
        let import = n
            .iter()
            .find(|c| c.topic.ends_with("/import_price_next/config"))
            .expect("the indicative import price");
        assert_eq!(
            import.payload["state_topic"],
            "voltmesh/market/price_signal"
        );
        assert_eq!(
            import.payload["value_template"],
            "{{ value_json.intervals[0].import }}"
        );
        assert_eq!(import.payload["unit_of_measurement"], "CHF/kWh");
        assert_eq!(
            by("energy_bought")["device"]["via_device"],
            "voltmesh_oak_20street"
        );
        assert!(d.household(&ParticipantId::from("a/b")).is_err());
    }

    #[test]
    fn totals_are_exact_and_controls_show_the_preferences() {
        let balance = Balance {
            bought_wh: 12_345,
            sold_wh: 7,
            net_paid: Money::from_nanos(1_000_000_000),
            paid: Money::from_nanos(2_500_000_001),
            received: Money::from_nanos(1_500_000_001),
            currency: "CHF".parse().unwrap(),
        };
        let json = serde_json::to_value(Totals::of(&balance)).unwrap();
        assert_eq!(json["bought_kwh"], "12.345");
        assert_eq!(json["sold_kwh"], "0.007");
        assert_eq!(json["paid"], "2.500000001");
        assert_eq!(json["received"], "1.500000001");
        assert_eq!(json["currency"], "CHF");
        let controls = serde_json::to_value(Controls::of(configured())).unwrap();
        assert_eq!(
            controls,
            json!({"trading": "ON", "buy_limit": "0.300000", "sell_limit": "0.120000"})
        );
    }

    #[test]
    fn commands_merge_into_the_whole_wish_and_bad_ones_are_refused() {
        let tariffs = discovery().tariffs;
        let wish = PreferencesMessage {
            sell_limit: Some(p("0.15")),
            ..PreferencesMessage::default()
        };
        let (next, prefs) =
            apply_command(wish, Control::Trading, b"OFF", configured(), tariffs).unwrap();
        assert_eq!(
            next.sell_limit,
            Some(p("0.15")),
            "the rest of the wish is kept"
        );
        assert_eq!(next.enabled, Some(false));
        assert!(!prefs.enabled);
        let (next, prefs) =
            apply_command(next, Control::BuyLimit, b"0.25", configured(), tariffs).unwrap();
        assert_eq!(
            (next.buy_limit, next.enabled, prefs.sell_limit),
            (Some(p("0.25")), Some(false), p("0.15"))
        );
        for (control, bad) in [
            (Control::Trading, &b"on"[..]),
            (Control::BuyLimit, b"cheap"),
            (Control::SellLimit, b""),
        ] {
            assert!(matches!(
                apply_command(next, control, bad, configured(), tariffs),
                Err(CommandError::Malformed { .. })
            ));
        }
        assert!(matches!(
            apply_command(next, Control::BuyLimit, b"0.5", configured(), tariffs),
            Err(CommandError::Refused(
                PreferencesError::OutsideTariffs { .. }
            ))
        ));
    }
}
