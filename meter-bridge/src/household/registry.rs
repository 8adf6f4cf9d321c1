//! Which meters belong to which household, and what each household wants.
//!
//! # Config (TOML)
//!
//! ```toml
//! [[household]]
//! participant = "hh-01"            # pseudonym bound to keys in genesis
//! meters = ["E0046003234567"]      # one or more meters (a 3EM's phases are three)
//! buy_limit = "0.300000"           # most it pays per kWh (prices travel as strings)
//! sell_limit = "0.120000"          # least it takes per kWh
//! enabled = true                   # default true; false = meter readings only, no orders
//! ```
//!
//! # Invariants
//! Every meter belongs to exactly one household; every participant appears once and has at least
//! one meter.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use voltmesh_engine::{ParticipantId, Price};

use crate::reading::MeterId;

/// A household's trading preferences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    /// The most the household pays per kWh when it buys.
    pub buy_limit: Price,
    /// The least the household accepts per kWh when it sells.
    pub sell_limit: Price,
    /// Whether the bridge trades for this household at all.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// One household in the config file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HouseholdConfig {
    /// The participant pseudonym.
    pub participant: ParticipantId,
    /// The household's meters.
    pub meters: Vec<MeterId>,
    /// Trading preferences.
    #[serde(flatten)]
    pub preferences: Preferences,
}

/// The registry's config: a list of `[[household]]` tables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// The households.
    #[serde(default, rename = "household")]
    pub households: Vec<HouseholdConfig>,
}

/// A registry config that breaks an invariant, or a lookup that fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// A meter is listed under two households (or twice under one).
    #[error("meter {meter} is listed more than once (under {first} and {second})")]
    DuplicateMeter {
        /// The meter.
        meter: MeterId,
        /// The first household listing it.
        first: ParticipantId,
        /// The second.
        second: ParticipantId,
    },
    /// A participant appears twice.
    #[error("participant {0} appears more than once")]
    DuplicateParticipant(ParticipantId),
    /// A household has no meters.
    #[error("participant {0} has no meters")]
    NoMeters(ParticipantId),
    /// The meter is not registered.
    #[error("meter {0} is not registered to any household")]
    UnknownMeter(MeterId),
    /// The participant is not registered.
    #[error("participant {0} is not registered")]
    UnknownParticipant(ParticipantId),
}

/// Meter → participant, participant → (meters, preferences). Ordered maps only, so every
/// iteration is deterministic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registry {
    by_meter: BTreeMap<MeterId, ParticipantId>,
    households: BTreeMap<ParticipantId, Household>,
}

/// A registered household.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Household {
    /// Its meters, sorted.
    pub meters: Vec<MeterId>,
    /// Its preferences.
    pub preferences: Preferences,
}

impl Registry {
    /// A validated registry.
    ///
    /// # Errors
    /// [`RegistryError::DuplicateMeter`], [`RegistryError::DuplicateParticipant`] or
    /// [`RegistryError::NoMeters`].
    pub fn from_config(config: RegistryConfig) -> Result<Registry, RegistryError> {
        let mut registry = Registry::default();
        for household in config.households {
            if household.meters.is_empty() {
                return Err(RegistryError::NoMeters(household.participant));
            }
            if registry.households.contains_key(&household.participant) {
                return Err(RegistryError::DuplicateParticipant(household.participant));
            }
            let mut meters = household.meters;
            meters.sort();
            for meter in &meters {
                if let Some(first) = registry.by_meter.get(meter) {
                    return Err(RegistryError::DuplicateMeter {
                        meter: meter.clone(),
                        first: first.clone(),
                        second: household.participant,
                    });
                }
                registry
                    .by_meter
                    .insert(meter.clone(), household.participant.clone());
            }
            registry.households.insert(
                household.participant,
                Household {
                    meters,
                    preferences: household.preferences,
                },
            );
        }
        Ok(registry)
    }

    /// The household a meter belongs to.
    ///
    /// # Errors
    /// [`RegistryError::UnknownMeter`].
    pub fn participant_of(&self, meter: &MeterId) -> Result<&ParticipantId, RegistryError> {
        self.by_meter
            .get(meter)
            .ok_or_else(|| RegistryError::UnknownMeter(meter.clone()))
    }

    /// A registered household.
    ///
    /// # Errors
    /// [`RegistryError::UnknownParticipant`].
    pub fn household(&self, participant: &ParticipantId) -> Result<&Household, RegistryError> {
        self.households
            .get(participant)
            .ok_or_else(|| RegistryError::UnknownParticipant(participant.clone()))
    }

    /// Replaces a household's preferences (e.g. from its retained MQTT preferences topic).
    ///
    /// # Errors
    /// [`RegistryError::UnknownParticipant`].
    pub fn set_preferences(
        &mut self,
        participant: &ParticipantId,
        preferences: Preferences,
    ) -> Result<(), RegistryError> {
        let household = self
            .households
            .get_mut(participant)
            .ok_or_else(|| RegistryError::UnknownParticipant(participant.clone()))?;
        household.preferences = preferences;
        Ok(())
    }

    /// Every household, ordered by participant.
    pub fn households(&self) -> impl Iterator<Item = (&ParticipantId, &Household)> {
        self.households.iter()
    }

    /// Every registered meter with its household, ordered by meter.
    pub fn meters(&self) -> impl Iterator<Item = (&MeterId, &ParticipantId)> {
        self.by_meter.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[[household]]
participant = "hh-01"
meters = ["E0046003234567"]
buy_limit = "0.30"
sell_limit = "0.12"

[[household]]
participant = "hh-02"
meters = ["shellyem-A/emeter/0", "shellyem-A/emeter/1"]
buy_limit = "0.28"
sell_limit = "0.10"
enabled = false
"#;

    fn parse(text: &str) -> Result<RegistryConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn parses_toml_and_looks_up() {
        let registry = Registry::from_config(parse(CONFIG).unwrap()).unwrap();
        let m = |s: &str| MeterId::new(s).unwrap();
        assert_eq!(
            registry
                .participant_of(&m("E0046003234567"))
                .unwrap()
                .as_str(),
            "hh-01"
        );
        assert_eq!(
            registry
                .participant_of(&m("shellyem-A/emeter/1"))
                .unwrap()
                .as_str(),
            "hh-02"
        );
        assert_eq!(
            registry.participant_of(&m("nope")),
            Err(RegistryError::UnknownMeter(m("nope")))
        );
        let hh2 = registry.household(&"hh-02".into()).unwrap();
        assert!(!hh2.preferences.enabled);
        assert_eq!(hh2.meters.len(), 2);
        let hh1 = registry.household(&"hh-01".into()).unwrap();
        assert!(hh1.preferences.enabled, "enabled defaults to true");
        assert_eq!(hh1.preferences.buy_limit.to_string(), "0.300000");
        let order: Vec<&str> = registry.households().map(|(p, _)| p.as_str()).collect();
        assert_eq!(order, ["hh-01", "hh-02"]);
    }

    #[test]
    fn rejects_inconsistent_configs() {
        let dup_meter = CONFIG.replace("shellyem-A/emeter/1", "E0046003234567");
        assert!(matches!(
            Registry::from_config(parse(&dup_meter).unwrap()),
            Err(RegistryError::DuplicateMeter { .. })
        ));
        let dup_participant = CONFIG.replace("hh-02", "hh-01");
        assert!(matches!(
            Registry::from_config(parse(&dup_participant).unwrap()),
            Err(RegistryError::DuplicateParticipant(_))
        ));
        let no_meters = CONFIG.replace(r#"["E0046003234567"]"#, "[]");
        assert!(matches!(
            Registry::from_config(parse(&no_meters).unwrap()),
            Err(RegistryError::NoMeters(_))
        ));
        assert!(
            parse(&CONFIG.replace("enabled", "enabeld")).is_err(),
            "typos are refused"
        );
        assert!(
            parse(&CONFIG.replace(r#""0.30""#, "0.30")).is_err(),
            "prices are strings"
        );
        assert!(parse(&CONFIG.replace("E0046003234567", "has space")).is_err());
    }

    #[test]
    fn preferences_can_change() {
        let mut registry = Registry::from_config(parse(CONFIG).unwrap()).unwrap();
        let p = Preferences {
            buy_limit: "0.5".parse().unwrap(),
            sell_limit: "0.2".parse().unwrap(),
            enabled: false,
        };
        registry.set_preferences(&"hh-01".into(), p).unwrap();
        assert_eq!(registry.household(&"hh-01".into()).unwrap().preferences, p);
        assert!(registry.set_preferences(&"zz".into(), p).is_err());
    }
}
