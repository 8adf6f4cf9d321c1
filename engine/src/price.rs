//! Fixed-point prices per kWh.
//!
//! # Representation invariant
//!
//! A [`Price`] is an integer count of micro-units (10⁻⁶ of the currency) per kWh, i.e. exactly a
//! `rust_decimal::Decimal` rescaled to [`Price::SCALE`] = 6 decimal places. `1.0`, `1.00` and
//! `1.000000` are the same value, print the same (`"1.000000"`) and serialize to the same bytes, so
//! replicas never hash different bytes for equal prices. Values never exceed
//! [`Price::MAX`] in magnitude, so sums and products with energy fit in `i128` without overflow.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A price per kWh with exactly six decimal places (see the module invariant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Price(i64);

/// Why a decimal could not become a [`Price`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    /// The text is not a decimal number.
    #[error("{text:?} is not a decimal number")]
    NotADecimal {
        /// The offending text.
        text: String,
    },
    /// The value has more significant decimals than the price scale allows.
    #[error("{value} has more than {} decimal places", Price::SCALE)]
    TooManyDecimals {
        /// The offending value.
        value: Decimal,
    },
    /// The value is larger in magnitude than [`Price::MAX`].
    #[error("{value} is outside the accepted range ±{}", Price::MAX)]
    OutOfRange {
        /// The offending value.
        value: Decimal,
    },
}

impl Price {
    /// Decimal places of every price.
    pub const SCALE: u32 = 6;
    /// Micro-units per currency unit.
    pub const MICROS_PER_UNIT: i64 = 1_000_000;
    /// The largest accepted price: one million currency units per kWh. Anything beyond is absurd
    /// for a retail energy market and is rejected at the boundary.
    pub const MAX: Price = Price(1_000_000 * Self::MICROS_PER_UNIT);
    /// The most negative accepted price.
    pub const MIN: Price = Price(-1_000_000 * Self::MICROS_PER_UNIT);
    /// Zero.
    pub const ZERO: Price = Price(0);

    /// A price from micro-units per kWh.
    ///
    /// # Errors
    /// [`PriceError::OutOfRange`] beyond ±[`Price::MAX`].
    pub fn from_micros(micros: i64) -> Result<Self, PriceError> {
        if (Self::MIN.0..=Self::MAX.0).contains(&micros) {
            Ok(Price(micros))
        } else {
            Err(PriceError::OutOfRange {
                value: Decimal::new(micros, Self::SCALE),
            })
        }
    }

    /// A whole number of currency units per kWh.
    ///
    /// # Errors
    /// [`PriceError::OutOfRange`] beyond ±[`Price::MAX`].
    pub fn from_units(units: i64) -> Result<Self, PriceError> {
        units
            .checked_mul(Self::MICROS_PER_UNIT)
            .ok_or(PriceError::OutOfRange {
                value: Decimal::from(units),
            })
            .and_then(Self::from_micros)
    }

    /// The price in micro-units per kWh.
    pub const fn micros(self) -> i64 {
        self.0
    }

    /// The price as a decimal at scale 6.
    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.0, Self::SCALE)
    }

    /// The midpoint of two prices, rounded half to even at the price scale.
    pub fn midpoint(self, other: Price) -> Price {
        // Both operands are within ±MAX, so the sum fits and so does the rounded half.
        let sum = i128::from(self.0) + i128::from(other.0);
        Price(div_round_half_even(sum, 2) as i64)
    }
}

impl TryFrom<Decimal> for Price {
    type Error = PriceError;

    /// Accepts any value that is exactly representable at scale 6: `1.5000000` is accepted (it is
    /// on the tick), `1.5000001` is not.
    fn try_from(value: Decimal) -> Result<Self, PriceError> {
        let normal = value.normalize();
        if normal.scale() > Self::SCALE {
            return Err(PriceError::TooManyDecimals { value });
        }
        let mantissa = normal.mantissa();
        let factor = 10_i128.pow(Self::SCALE - normal.scale());
        let micros = mantissa
            .checked_mul(factor)
            .and_then(|m| i64::try_from(m).ok())
            .ok_or(PriceError::OutOfRange { value })?;
        Self::from_micros(micros).map_err(|_| PriceError::OutOfRange { value })
    }
}

impl FromStr for Price {
    type Err = PriceError;

    fn from_str(text: &str) -> Result<Self, PriceError> {
        let trimmed = text.trim();
        // rust_decimal accepts `1_000`; a price on the wire must be a plain decimal.
        let plain = !trimmed.is_empty()
            && trimmed
                .chars()
                .enumerate()
                .all(|(i, c)| c.is_ascii_digit() || c == '.' || (i == 0 && (c == '-' || c == '+')));
        let decimal = plain
            .then(|| Decimal::from_str_exact(trimmed).ok())
            .flatten()
            .ok_or_else(|| PriceError::NotADecimal {
                text: text.to_owned(),
            })?;
        Price::try_from(decimal)
    }
}

impl fmt::Display for Price {
    /// Always six decimal places: `2.5` prints as `2.500000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let unit = Self::MICROS_PER_UNIT.unsigned_abs();
        write!(f, "{sign}{}.{:06}", abs / unit, abs % unit)
    }
}

impl Serialize for Price {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Price {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// `num / den` rounded to the nearest integer, ties to even. `den` must be positive.
pub(crate) fn div_round_half_even(num: i128, den: i128) -> i128 {
    debug_assert!(den > 0);
    let q = num.div_euclid(den);
    let r = num.rem_euclid(den);
    match (2 * r).cmp(&den) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q & 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_print_and_serialize_identically() {
        let a: Price = "1.0".parse().unwrap();
        let b: Price = "1.00".parse().unwrap();
        let c: Price = "1".parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.to_string(), "1.000000");
        assert_eq!(serde_json::to_string(&b).unwrap(), "\"1.000000\"");
    }

    #[test]
    fn parses_signs_and_small_values() {
        assert_eq!("-0.5".parse::<Price>().unwrap().micros(), -500_000);
        assert_eq!("0.000001".parse::<Price>().unwrap().micros(), 1);
        assert_eq!(
            "-0.000001".parse::<Price>().unwrap().to_string(),
            "-0.000001"
        );
        assert_eq!("+2".parse::<Price>().unwrap().to_string(), "2.000000");
    }

    #[test]
    fn rejects_off_tick_absurd_and_malformed() {
        assert!(matches!(
            "1.0000001".parse::<Price>(),
            Err(PriceError::TooManyDecimals { .. })
        ));
        assert!(
            "1.5000000".parse::<Price>().is_ok(),
            "on-tick trailing zeros are fine"
        );
        assert!(matches!(
            "1000000.000001".parse::<Price>(),
            Err(PriceError::OutOfRange { .. })
        ));
        assert!(matches!(
            "1e3".parse::<Price>(),
            Err(PriceError::NotADecimal { .. })
        ));
        assert!(matches!(
            "1_000".parse::<Price>(),
            Err(PriceError::NotADecimal { .. })
        ));
        assert!(matches!(
            "".parse::<Price>(),
            Err(PriceError::NotADecimal { .. })
        ));
        assert!(matches!(
            "abc".parse::<Price>(),
            Err(PriceError::NotADecimal { .. })
        ));
        assert!(
            serde_json::from_str::<Price>("1.5").is_err(),
            "prices travel as strings"
        );
    }

    #[test]
    fn midpoint_rounds_half_to_even() {
        let p = |s: &str| s.parse::<Price>().unwrap();
        assert_eq!(p("1").midpoint(p("2")), p("1.5"));
        assert_eq!(p("0.000001").midpoint(p("0.000002")), p("0.000002"));
        assert_eq!(p("0.000002").midpoint(p("0.000003")), p("0.000002"));
        assert_eq!(p("-0.000001").midpoint(p("0")), p("0"));
    }

    #[test]
    fn round_half_even_table() {
        assert_eq!(div_round_half_even(5, 2), 2);
        assert_eq!(div_round_half_even(7, 2), 4);
        assert_eq!(div_round_half_even(-5, 2), -2);
        assert_eq!(div_round_half_even(-7, 2), -4);
        assert_eq!(div_round_half_even(10, 3), 3);
        assert_eq!(div_round_half_even(11, 3), 4);
    }
}
