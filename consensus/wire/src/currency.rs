//! The community's currency: an ISO 4217 code with a minor unit, named in genesis.
//!
//! Amounts inside Voltmesh are exact integers of nano-units ([`voltmesh_engine::Money`]) and
//! prices micro-units per kWh ([`voltmesh_engine::Price`]) of this currency; the currency says
//! what the unit is, and its minor unit (2 decimals for EUR, 0 for JPY, 3 for KWD) is where bills
//! are rounded. Every amount shown outside the node (API, MQTT, exports, dashboards) carries the
//! code.
//!
//! # Invariants
//! - Only active ISO 4217 currencies with a minor unit are accepted: not funds, precious metals
//!   or other special codes (`XAU`, `XDR`, `XXX`...), and not superseded ones (`HRK`).
//! - Serialized as the three-letter code; a genesis without `currency` means EUR (every genesis
//!   written before the field existed was a euro community).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An ISO 4217 currency with a minor unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(iso_currency::Currency);

/// A currency code genesis cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurrencyError {
    /// Not an ISO 4217 alphabetic code.
    #[error("{0:?} is not an ISO 4217 currency code")]
    Unknown(String),
    /// A fund, precious metal, testing or other code without a minor unit.
    #[error(
        "{0} has no minor unit (a fund, metal or special code), so no bill can be rounded in it"
    )]
    NoMinorUnit(&'static str),
    /// Replaced by another currency.
    #[error("{0} is no longer in use")]
    Superseded(&'static str),
}

impl Currency {
    /// The euro, the default.
    pub const EUR: Currency = Currency(iso_currency::Currency::EUR);

    /// The three-letter code, e.g. `EUR`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        self.0.code()
    }

    /// Decimal places of the minor unit: 2 for EUR, 0 for JPY, 3 for KWD.
    #[must_use]
    pub fn minor_unit_decimals(&self) -> u32 {
        self.0.exponent().map_or(0, u32::from)
    }
}

impl Default for Currency {
    fn default() -> Self {
        Currency::EUR
    }
}

impl FromStr for Currency {
    type Err = CurrencyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let currency =
            iso_currency::Currency::from_code(s).ok_or_else(|| CurrencyError::Unknown(s.into()))?;
        if currency.exponent().is_none() || currency.is_fund() || currency.is_special() {
            return Err(CurrencyError::NoMinorUnit(currency.code()));
        }
        if currency.is_superseded().is_some() {
            return Err(CurrencyError::Superseded(currency.code()));
        }
        Ok(Currency(currency))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_minor_units() {
        let eur: Currency = "EUR".parse().unwrap();
        assert_eq!((eur.code(), eur.minor_unit_decimals()), ("EUR", 2));
        assert_eq!(eur, Currency::default());
        let jpy: Currency = "JPY".parse().unwrap();
        assert_eq!(jpy.minor_unit_decimals(), 0);
        let kwd: Currency = "KWD".parse().unwrap();
        assert_eq!(kwd.minor_unit_decimals(), 3);
        assert_eq!("CHF".parse::<Currency>().unwrap().to_string(), "CHF");
        assert_eq!(serde_json::to_string(&eur).unwrap(), "\"EUR\"");
        assert_eq!(
            serde_json::from_str::<Currency>("\"SEK\"").unwrap().code(),
            "SEK"
        );
    }

    #[test]
    fn unusable_codes_are_refused_with_their_reason() {
        assert_eq!(
            "eur".parse::<Currency>(),
            Err(CurrencyError::Unknown("eur".into()))
        );
        assert!(matches!(
            "EURO".parse::<Currency>(),
            Err(CurrencyError::Unknown(_))
        ));
        assert!(matches!(
            "XAU".parse::<Currency>(),
            Err(CurrencyError::NoMinorUnit("XAU"))
        ));
        assert!(matches!(
            "HRK".parse::<Currency>(),
            Err(CurrencyError::Superseded("HRK"))
        ));
        assert!(serde_json::from_str::<Currency>("\"ZZZ\"").is_err());
    }
}
