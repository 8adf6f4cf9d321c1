//! The topics households publish to the bridge, and how the bridge recognises them.
//!
//! # Layout (under `topics.households_prefix`, default `voltmesh`; JSON; QoS 1)
//! | topic | message | retained |
//! |---|---|---|
//! | `<prefix>/households/<participant>/orders/set` | [`HouseholdOrder`](crate::household_order::HouseholdOrder) or a JSON array of them | no |
//! | `<prefix>/households/<participant>/preferences` | preferences (limit prices, on/off) | yes |
//!
//! The bridge's results for a household live under the same `<prefix>/households/<participant>/`
//! (see [`crate::mqtt::results`]), so one broker ACL line per household (`pattern readwrite
//! voltmesh/households/%u/#` with the participant as username) covers both directions.
//!
//! The participant is the topic level after `households/`; it must be registered. A topic that
//! has the prefix but not this shape is not a household topic and goes to the meter decoders.

use voltmesh_engine::ParticipantId;

/// The suffix of a household's order topic.
pub const ORDERS_SUFFIX: &str = "orders/set";
/// The suffix of a household's preferences topic.
pub const PREFERENCES_SUFFIX: &str = "preferences";

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
}
