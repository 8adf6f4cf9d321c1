//! The whole MQTT topic tree between the bridge and households, in both directions: the topics
//! households publish to (and how the bridge recognises them) and the ones the bridge publishes
//! results on.
//!
//! # Layout (JSON; QoS 1)
//! | topic | direction | message | retained |
//! |---|---|---|---|
//! | `<hprefix>/households/<participant>/orders/set` | household → bridge | [`HouseholdOrder`](crate::household::own_order::HouseholdOrder) or a JSON array of them | no |
//! | `<hprefix>/households/<participant>/preferences` | household → bridge | [`PreferencesMessage`](crate::household::preferences::PreferencesMessage) (limit prices, on/off) | yes |
//! | `<prefix>/households/<participant>/fills` | bridge → household | [`HouseholdFills`](crate::runtime::mqtt::HouseholdFills) | yes |
//! | `<prefix>/households/<participant>/settlement` | bridge → household | [`SettlementNotice`](crate::runtime::mqtt::SettlementNotice): the bridge's own estimate, from its registers | yes |
//! | `<prefix>/households/<participant>/bill` | bridge → household | [`CommittedBill`](voltmesh_wire::bill::CommittedBill): the ledger's bill, with the height and hash of the block holding it ([`crate::runtime::bills`]) | yes |
//! | `<prefix>/market/clearing` | bridge → everyone | [`ClearingSummary`](crate::runtime::mqtt::ClearingSummary) | yes |
//! | `<prefix>/households/<participant>/totals` | bridge → household | [`Totals`](crate::household::home_assistant::Totals): the ledger's totals | yes |
//! | `<prefix>/households/<participant>/controls` | bridge → household | [`Controls`](crate::household::home_assistant::Controls): trading on/off and limits in force | yes |
//! | `<hprefix>/households/<participant>/controls/<control>/set` | Home Assistant → bridge | `ON`/`OFF` (`trading`) or a price (`buy_limit`, `sell_limit`) | no |
//! | `<prefix>/bridge/status` | bridge → everyone | `online`, or `offline` (the publishing connection's last will) | yes |
//! | `<prefix>/market/price_signal` | bridge → everyone | [`PriceSignal`](crate::runtime::mqtt::results::PriceSignal): indicative import/export prices of the coming intervals | yes |
//! | `<prefix>/market/price_signal/evcc/grid`, `.../evcc/feedin` | bridge → energy managers | evcc's `custom` tariff forecast (`[{"start","end","value"}]`) | yes |
//! | `<prefix>/market/price_signal/emhass` | bridge → energy managers | EMHASS's `load_cost_forecast` / `prod_price_forecast` | yes |
//!
//! Home Assistant's discovery configs live under its own prefix
//! ([`crate::household::home_assistant`]).
//!
//! `<hprefix>` is `topics.households_prefix` and `<prefix>` is `topics.results_prefix`, both
//! `voltmesh` by default. With one prefix, a household's messages in both directions live under
//! `<prefix>/households/<participant>/`, so one broker ACL line per household (`pattern
//! readwrite voltmesh/households/%u/#` with the participant as username) covers both directions.
//! Outbound topics refuse participant ids that are not one safe topic level ([`ResultsError`]).
//!
//! The MQTT 3.1.1 syntax checks for the configured topics and filters ([`check_filter`],
//! [`check_topic_name`], [`literal_prefix`]) are here too.
//!
//! The participant is the topic level after `households/`; it must be registered. A topic that
//! has the prefix but not this shape is not a household topic and goes to the meter decoders.

use voltmesh_engine::ParticipantId;

/// The suffix of a household's order topic.
pub const ORDERS_SUFFIX: &str = "orders/set";
/// The suffix of a household's preferences topic.
pub const PREFERENCES_SUFFIX: &str = "preferences";

/// The suffix of a household's fills topic.
pub const FILLS_SUFFIX: &str = "fills";
/// The suffix of a household's settlement topic.
pub const SETTLEMENT_SUFFIX: &str = "settlement";
/// The suffix of a household's committed bill topic.
pub const BILL_SUFFIX: &str = "bill";

/// The suffix of a household's totals topic.
pub const TOTALS_SUFFIX: &str = "totals";
/// The suffix of a household's controls topic; its commands go to `controls/<control>/set`.
pub const CONTROLS_SUFFIX: &str = "controls";

/// A household control that Home Assistant (or anyone allowed on the topic) can set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Control {
    /// Trading on or off (`ON`/`OFF`): the preferences' `enabled`.
    Trading,
    /// The buy limit, per kWh: the preferences' `buy_limit`.
    BuyLimit,
    /// The sell limit, per kWh: the preferences' `sell_limit`.
    SellLimit,
}

impl Control {
    /// Every control.
    pub const ALL: [Control; 3] = [Control::Trading, Control::BuyLimit, Control::SellLimit];

    /// Its topic level (and key in the controls state).
    pub fn as_str(self) -> &'static str {
        match self {
            Control::Trading => "trading",
            Control::BuyLimit => "buy_limit",
            Control::SellLimit => "sell_limit",
        }
    }
}

/// A participant id that cannot be one topic level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResultsError {
    /// Empty or containing `/`, `+`, `#` or NUL.
    #[error("participant id {0:?} cannot be used as an MQTT topic level")]
    BadParticipant(String),
}

/// What a household topic carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HouseholdTopic {
    /// The household's own orders.
    Orders(ParticipantId),
    /// The household's preferences.
    Preferences(ParticipantId),
}

impl HouseholdTopic {
    /// The participant named by the topic.
    pub fn participant(&self) -> &ParticipantId {
        match self {
            HouseholdTopic::Orders(p) | HouseholdTopic::Preferences(p) => p,
        }
    }
}

/// `<prefix>/households/<participant>/orders/set`: where `participant` publishes its own orders.
pub fn orders_topic(prefix: &str, participant: &ParticipantId) -> String {
    format!("{prefix}/households/{participant}/{ORDERS_SUFFIX}")
}

/// `<prefix>/households/<participant>/preferences`: where `participant` keeps its preferences
/// (retained).
pub fn preferences_topic(prefix: &str, participant: &ParticipantId) -> String {
    format!("{prefix}/households/{participant}/{PREFERENCES_SUFFIX}")
}

/// `<prefix>/households/<participant>/fills`: the household's fills of each interval.
///
/// # Errors
/// [`ResultsError::BadParticipant`] if the participant id is not one safe topic level.
pub fn fills_topic(prefix: &str, participant: &ParticipantId) -> Result<String, ResultsError> {
    Ok(format!(
        "{prefix}/households/{}/{FILLS_SUFFIX}",
        level(participant)?
    ))
}

/// `<prefix>/households/<participant>/settlement`: the household's bill of each interval.
///
/// # Errors
/// [`ResultsError::BadParticipant`] if the participant id is not one safe topic level.
pub fn settlement_topic(prefix: &str, participant: &ParticipantId) -> Result<String, ResultsError> {
    Ok(format!(
        "{prefix}/households/{}/{SETTLEMENT_SUFFIX}",
        level(participant)?
    ))
}

/// `<prefix>/households/<participant>/bill`: the household's committed bill of each interval,
/// as the ledger holds it.
///
/// # Errors
/// [`ResultsError::BadParticipant`] if the participant id is not one safe topic level.
pub fn bill_topic(prefix: &str, participant: &ParticipantId) -> Result<String, ResultsError> {
    Ok(format!(
        "{prefix}/households/{}/{BILL_SUFFIX}",
        level(participant)?
    ))
}

/// `<prefix>/households/<participant>/totals`: the household's totals from the ledger.
///
/// # Errors
/// [`ResultsError::BadParticipant`] if the participant id is not one safe topic level.
pub fn totals_topic(prefix: &str, participant: &ParticipantId) -> Result<String, ResultsError> {
    Ok(format!(
        "{prefix}/households/{}/{TOTALS_SUFFIX}",
        level(participant)?
    ))
}

/// `<prefix>/households/<participant>/controls`: the household's controls as in force.
///
/// # Errors
/// [`ResultsError::BadParticipant`] if the participant id is not one safe topic level.
pub fn controls_topic(prefix: &str, participant: &ParticipantId) -> Result<String, ResultsError> {
    Ok(format!(
        "{prefix}/households/{}/{CONTROLS_SUFFIX}",
        level(participant)?
    ))
}

/// `<prefix>/households/<participant>/controls/<control>/set`: where a control is set.
///
/// # Errors
/// [`ResultsError::BadParticipant`] if the participant id is not one safe topic level.
pub fn control_command_topic(
    prefix: &str,
    participant: &ParticipantId,
    control: Control,
) -> Result<String, ResultsError> {
    Ok(format!(
        "{prefix}/households/{}/{CONTROLS_SUFFIX}/{}/set",
        level(participant)?,
        control.as_str()
    ))
}

/// The filter of every household's control commands under `prefix`.
pub fn control_command_filter(prefix: &str) -> String {
    format!("{prefix}/households/+/{CONTROLS_SUFFIX}/+/set")
}

/// Recognises a control command topic under `prefix`: the participant (not checked against
/// the registry) and the control, or `Err` with the unknown control's name; `None` for any
/// other topic.
pub fn parse_control_command(
    prefix: &str,
    topic: &str,
) -> Option<Result<(ParticipantId, Control), String>> {
    let rest = topic.strip_prefix(prefix)?.strip_prefix("/households/")?;
    let (participant, rest) = rest.split_once('/')?;
    let name = rest
        .strip_prefix(CONTROLS_SUFFIX)?
        .strip_prefix('/')?
        .strip_suffix("/set")?;
    if participant.is_empty() || name.contains('/') {
        return None;
    }
    let participant = ParticipantId::from(participant);
    Some(
        Control::ALL
            .into_iter()
            .find(|c| c.as_str() == name)
            .map(|c| (participant, c))
            .ok_or_else(|| name.to_owned()),
    )
}

/// `<prefix>/bridge/status`: `online` while the bridge's publishing connection is up, `offline`
/// (its last will) once it is gone; retained.
pub fn bridge_status_topic(prefix: &str) -> String {
    format!("{prefix}/bridge/status")
}

/// `<prefix>/market/clearing`: every interval's clearing summary.
pub fn clearing_topic(prefix: &str) -> String {
    format!("{prefix}/market/clearing")
}

/// `<prefix>/market/price_signal[/<format>]`: the indicative prices of the coming intervals
/// ([`crate::household::price_signal`]); `format` is `evcc/grid`, `evcc/feedin` or `emhass`,
/// none for the full JSON.
pub fn price_signal_topic(prefix: &str, format: Option<&str>) -> String {
    match format {
        None => format!("{prefix}/market/price_signal"),
        Some(format) => format!("{prefix}/market/price_signal/{format}"),
    }
}

fn level(participant: &ParticipantId) -> Result<&str, ResultsError> {
    let text = participant.as_str();
    if text.is_empty() || text.contains(['/', '+', '#', '\0']) {
        return Err(ResultsError::BadParticipant(text.to_owned()));
    }
    Ok(text)
}

/// The two topic filters the bridge subscribes to for every household's messages.
pub fn subscription_filters(prefix: &str) -> [String; 2] {
    [
        format!("{prefix}/households/+/{ORDERS_SUFFIX}"),
        format!("{prefix}/households/+/{PREFERENCES_SUFFIX}"),
    ]
}

/// Recognises a household topic under `prefix`; `None` for any other topic (including an empty
/// participant level).
pub fn parse_topic(prefix: &str, topic: &str) -> Option<HouseholdTopic> {
    let rest = topic.strip_prefix(prefix)?.strip_prefix("/households/")?;
    let (participant, suffix) = rest.split_once('/')?;
    if participant.is_empty() {
        return None;
    }
    let participant = ParticipantId::from(participant);
    match suffix {
        ORDERS_SUFFIX => Some(HouseholdTopic::Orders(participant)),
        PREFERENCES_SUFFIX => Some(HouseholdTopic::Preferences(participant)),
        _ => None,
    }
}

/// The part of a topic filter before its first wildcard level (`tele/+/SENSOR` → `tele/`).
pub fn literal_prefix(filter: &str) -> &str {
    let end = filter.find(['+', '#']).unwrap_or(filter.len());
    &filter[..end]
}

/// Checks an MQTT 3.1.1 topic filter (section 4.7).
///
/// # Errors
/// What is wrong, as a short phrase.
pub fn check_filter(filter: &str) -> Result<(), &'static str> {
    check_common(filter)?;
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
            return Err("'#' must be a whole level and the last one");
        }
        if level.contains('+') && *level != "+" {
            return Err("'+' must be a whole level");
        }
    }
    Ok(())
}

/// Checks an MQTT topic name (no wildcards).
///
/// # Errors
/// What is wrong, as a short phrase.
pub fn check_topic_name(topic: &str) -> Result<(), &'static str> {
    check_common(topic)?;
    if topic.contains(['+', '#']) {
        return Err("wildcards are not allowed in a topic name");
    }
    Ok(())
}

fn check_common(text: &str) -> Result<(), &'static str> {
    if text.is_empty() {
        return Err("empty");
    }
    if text.len() > 65_535 {
        return Err("longer than 65535 bytes");
    }
    if text.contains('\0') {
        return Err("contains NUL");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip_and_others_are_not_household_topics() {
        let p = ParticipantId::from("hh-01");
        let orders = orders_topic("voltmesh", &p);
        assert_eq!(orders, "voltmesh/households/hh-01/orders/set");
        assert_eq!(
            parse_topic("voltmesh", &orders),
            Some(HouseholdTopic::Orders(p.clone()))
        );
        let prefs = preferences_topic("site/a", &p);
        assert_eq!(prefs, "site/a/households/hh-01/preferences");
        assert_eq!(
            parse_topic("site/a", &prefs),
            Some(HouseholdTopic::Preferences(p))
        );
        for other in [
            "voltmesh/households/hh-01/fills",
            "voltmesh/households//orders/set",
            "voltmesh/households/hh-01/orders/set/x",
            "voltmesh/hh-01/orders/set",
            "voltmeshx/households/hh-01/orders/set",
            "tele/meter/SENSOR",
        ] {
            assert_eq!(parse_topic("voltmesh", other), None, "{other}");
        }
        assert_eq!(
            subscription_filters("voltmesh"),
            [
                "voltmesh/households/+/orders/set",
                "voltmesh/households/+/preferences"
            ]
        );
    }

    #[test]
    fn outbound_topics_are_laid_out_and_refuse_unsafe_participants() {
        let p = ParticipantId::from("hh-01");
        assert_eq!(fills_topic("vm", &p).unwrap(), "vm/households/hh-01/fills");
        assert_eq!(
            settlement_topic("vm", &p).unwrap(),
            "vm/households/hh-01/settlement"
        );
        assert_eq!(bill_topic("vm", &p).unwrap(), "vm/households/hh-01/bill");
        assert_eq!(clearing_topic("vm"), "vm/market/clearing");
        for bad in ["", "a/b", "+", "#", "a\0"] {
            let bad = ParticipantId::from(bad);
            assert!(fills_topic("vm", &bad).is_err(), "{bad}");
            assert!(settlement_topic("vm", &bad).is_err(), "{bad}");
            assert!(bill_topic("vm", &bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_topic("vm", &fills_topic("vm", &p).unwrap()),
            None,
            "outbound topics are never taken for inbound ones"
        );
    }

    #[test]
    fn control_topics_round_trip() {
        let p = ParticipantId::from("hh-01");
        let topic = control_command_topic("vm", &p, Control::BuyLimit).unwrap();
        assert_eq!(topic, "vm/households/hh-01/controls/buy_limit/set");
        assert_eq!(
            parse_control_command("vm", &topic),
            Some(Ok((p.clone(), Control::BuyLimit)))
        );
        for c in Control::ALL {
            let t = control_command_topic("vm", &p, c).unwrap();
            assert_eq!(parse_control_command("vm", &t), Some(Ok((p.clone(), c))));
        }
        assert_eq!(
            parse_control_command("vm", "vm/households/hh-01/controls/colour/set"),
            Some(Err("colour".to_owned()))
        );
        for other in [
            "vm/households/hh-01/controls",
            "vm/households/hh-01/controls/trading",
            "vm/households//controls/trading/set",
            "vm/households/hh-01/controls/a/b/set",
            "vm/households/hh-01/preferences",
        ] {
            assert_eq!(parse_control_command("vm", other), None, "{other}");
        }
        assert_eq!(
            control_command_filter("vm"),
            "vm/households/+/controls/+/set"
        );
        assert_eq!(
            totals_topic("vm", &p).unwrap(),
            "vm/households/hh-01/totals"
        );
        assert_eq!(
            controls_topic("vm", &p).unwrap(),
            "vm/households/hh-01/controls"
        );
        assert_eq!(bridge_status_topic("vm"), "vm/bridge/status");
        assert!(totals_topic("vm", &ParticipantId::from("a/b")).is_err());
        assert_eq!(parse_topic("vm", &topic), None, "not an orders topic");
    }

    #[test]
    fn topic_filters() {
        for ok in ["a", "a/+/b", "#", "a/#", "+", "+/events/rpc"] {
            assert_eq!(check_filter(ok), Ok(()), "{ok}");
        }
        for bad in ["", "a/#/b", "a#", "a/b+", "x\0"] {
            assert!(check_filter(bad).is_err(), "{bad}");
        }
        assert!(check_topic_name("a/+").is_err());
        assert_eq!(literal_prefix("tele/+/SENSOR"), "tele/");
        assert_eq!(literal_prefix("+/events/rpc"), "");
        assert_eq!(literal_prefix("a/b"), "a/b");
    }
}
