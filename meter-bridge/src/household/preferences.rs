//! A household's preferences, kept retained on its MQTT topic.
//!
//! # Message (topic [`preferences_topic`](crate::household::topic::preferences_topic), retained)
//! ```json
//! {"buy_limit": "0.25", "sell_limit": "0.10", "enabled": true}
//! ```
//! Every field is optional; a missing one keeps the household's value from `bridge.toml`. So the
//! message is the household's whole wish, not a change: applying it twice, or again after the
//! bridge restarts (the broker hands the retained message to every new subscription), gives the
//! same preferences. An empty payload (how MQTT clears a retained message) goes back to the
//! config's preferences. Limits must lie within the `[settlement]` tariffs; unknown fields are
//! refused.

use serde::{Deserialize, Serialize};
use voltmesh_engine::{Price, Tariffs};

use crate::household::registry::Preferences;

/// The preferences message (module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreferencesMessage {
    /// The most the household pays per kWh when it buys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buy_limit: Option<Price>,
    /// The least the household accepts per kWh when it sells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sell_limit: Option<Price>,
    /// Whether the bridge trades for the household.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Why a preferences message is refused.
#[derive(Debug, thiserror::Error)]
pub enum PreferencesError {
    /// Not JSON, not the message's shape, or unknown fields.
    #[error("malformed preferences: {0}")]
    Malformed(#[from] serde_json::Error),
    /// A limit outside the tariffs.
    #[error("{field} {price} is outside the tariffs [{feed_in}, {retail}]")]
    OutsideTariffs {
        /// `buy_limit` or `sell_limit`.
        field: &'static str,
        /// The limit.
        price: Price,
        /// Lowest accepted.
        feed_in: Price,
        /// Highest accepted.
        retail: Price,
    },
}

impl PreferencesMessage {
    /// Parses a payload; an empty (or all-whitespace) payload is the empty message.
    ///
    /// # Errors
    /// [`PreferencesError::Malformed`].
    pub fn parse(payload: &[u8]) -> Result<PreferencesMessage, PreferencesError> {
        if payload.iter().all(u8::is_ascii_whitespace) {
            return Ok(PreferencesMessage::default());
        }
        Ok(serde_json::from_slice(payload)?)
    }

    /// `configured` with this message's fields put in, checked against `tariffs`.
    ///
    /// # Errors
    /// [`PreferencesError::OutsideTariffs`].
    pub fn apply(
        self,
        configured: Preferences,
        tariffs: Tariffs,
    ) -> Result<Preferences, PreferencesError> {
        let check = |field, price: Option<Price>| match price {
            Some(p) if p < tariffs.feed_in || p > tariffs.retail => {
                Err(PreferencesError::OutsideTariffs {
                    field,
                    price: p,
                    feed_in: tariffs.feed_in,
                    retail: tariffs.retail,
                })
            }
            _ => Ok(()),
        };
        check("buy_limit", self.buy_limit)?;
        check("sell_limit", self.sell_limit)?;
        Ok(Preferences {
            buy_limit: self.buy_limit.unwrap_or(configured.buy_limit),
            sell_limit: self.sell_limit.unwrap_or(configured.sell_limit),
            enabled: self.enabled.unwrap_or(configured.enabled),
        })
    }

    /// The message's JSON.
    ///
    /// # Errors
    /// Never in practice (every field serializes); the `serde_json` error otherwise.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Price {
        text.parse().unwrap()
    }

    fn configured() -> Preferences {
        Preferences {
            buy_limit: p("0.30"),
            sell_limit: p("0.12"),
            enabled: true,
        }
    }

    fn tariffs() -> Tariffs {
        Tariffs::new(p("0.08"), p("0.32")).unwrap()
    }

    #[test]
    fn fields_override_the_config_and_missing_ones_keep_it() {
        let m = PreferencesMessage::parse(br#"{"buy_limit":"0.25","enabled":false}"#).unwrap();
        let got = m.apply(configured(), tariffs()).unwrap();
        assert_eq!(got.buy_limit, p("0.25"));
        assert_eq!(got.sell_limit, p("0.12"));
        assert!(!got.enabled);
        for empty in [&b""[..], b"  \n", b"{}"] {
            let m = PreferencesMessage::parse(empty).unwrap();
            assert_eq!(m.apply(configured(), tariffs()).unwrap(), configured());
        }
        let json = m.to_json().unwrap();
        assert_eq!(PreferencesMessage::parse(&json).unwrap(), m);
    }

    #[test]
    fn refuses_bad_messages() {
        for bad in [
            &br#"{"buy_limit":0.25}"#[..],
            br#"{"buy_limt":"0.25"}"#,
            br#"{"enabled":"yes"}"#,
            b"[1]",
            b"nope",
        ] {
            assert!(
                matches!(
                    PreferencesMessage::parse(bad),
                    Err(PreferencesError::Malformed(_))
                ),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        for bad in [r#"{"buy_limit":"0.33"}"#, r#"{"sell_limit":"0.07"}"#] {
            let m = PreferencesMessage::parse(bad.as_bytes()).unwrap();
            assert!(matches!(
                m.apply(configured(), tariffs()),
                Err(PreferencesError::OutsideTariffs { .. })
            ));
        }
    }
}
