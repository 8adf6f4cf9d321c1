//! Exact money.
//!
//! # Representation invariant
//!
//! [`Money`] is an integer count of nano-units (10⁻⁹ of the currency). Energy in Wh times a
//! [`Price`] in micro-units per kWh is exactly `wh × micros` nano-units (Wh/1000 × micros/10⁶), so
//! every amount the engine computes is exact and sums conserve to the last digit. Amounts are rounded
//! only for display on a bill ([`Money::round_to`]).

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Price, Wh};

/// An exact amount of money in nano-units; positive and negative amounts are both meaningful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(i128);

impl Money {
    /// Decimal places of the exact representation.
    pub const SCALE: u32 = 9;
    /// Nothing.
    pub const ZERO: Money = Money(0);

    /// The cost of `energy` at `price` per kWh, exact.
    pub fn of(energy: Wh, price: Price) -> Money {
        Money(i128::from(energy) * i128::from(price.micros()))
    }

    /// The amount in nano-units.
    pub const fn nanos(self) -> i128 {
        self.0
    }

    /// An amount from nano-units.
    pub const fn from_nanos(nanos: i128) -> Money {
        Money(nanos)
    }

    /// The exact amount as a decimal at scale 9.
    ///
    /// # Panics
    /// Never for amounts the engine produces: they stay far below 2⁹⁶ nano-units (an order is at
    /// most 2⁶⁴ Wh at ±10¹² micros/kWh, and sums would need 10⁹ such orders to overflow).
    pub fn to_decimal(self) -> Decimal {
        Decimal::from_i128_with_scale(self.0, Self::SCALE)
    }

    /// The amount rounded half to even at `dp` decimal places, as a bill shows it (`dp` = 2 for
    /// cents).
    pub fn round_to(self, dp: u32) -> Decimal {
        self.to_decimal()
            .round_dp_with_strategy(dp, RoundingStrategy::MidpointNearestEven)
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0 + rhs.0)
    }
}

impl AddAssign for Money {
    fn add_assign(&mut self, rhs: Money) {
        self.0 += rhs.0;
    }
}

impl Sub for Money {
    type Output = Money;
    fn sub(self, rhs: Money) -> Money {
        Money(self.0 - rhs.0)
    }
}

impl SubAssign for Money {
    fn sub_assign(&mut self, rhs: Money) {
        self.0 -= rhs.0;
    }
}

impl Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money(-self.0)
    }
}

impl Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Add::add)
    }
}

impl fmt::Display for Money {
    /// The exact amount with nine decimal places.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(
            f,
            "{sign}{}.{:09}",
            abs / 1_000_000_000,
            abs % 1_000_000_000
        )
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Reads what [`Serialize`] writes: a decimal string with at most nine decimal places (API
/// clients read balances back exactly).
impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let mut value: Decimal = text.parse().map_err(serde::de::Error::custom)?;
        if value.scale() > Self::SCALE {
            return Err(serde::de::Error::custom(format!(
                "{text} has more than {} decimal places",
                Self::SCALE
            )));
        }
        value.rescale(Self::SCALE);
        Ok(Money(value.mantissa()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_round_trip_is_exact() {
        for m in [
            Money::ZERO,
            Money::from_nanos(123_457),
            -Money::from_nanos(12_345_000_001),
        ] {
            let text = serde_json::to_string(&m).unwrap();
            assert_eq!(serde_json::from_str::<Money>(&text).unwrap(), m, "{text}");
        }
        assert_eq!(
            serde_json::from_str::<Money>("\"1.5\"").unwrap(),
            Money::from_nanos(1_500_000_000)
        );
        assert!(serde_json::from_str::<Money>("\"0.0000000001\"").is_err());
    }

    #[test]
    fn cost_is_exact() {
        let p: Price = "0.123457".parse().unwrap();
        // 1 Wh at 0.123457 per kWh is 0.000123457 exactly.
        assert_eq!(Money::of(1, p).to_string(), "0.000123457");
        assert_eq!(Money::of(1_000, p).to_string(), "0.123457000");
        assert_eq!((-Money::of(3, p)).to_string(), "-0.000370371");
    }

    #[test]
    fn bills_round_half_to_even() {
        assert_eq!(
            Money::from_nanos(12_345_000_000).round_to(2).to_string(),
            "12.34"
        );
        assert_eq!(
            Money::from_nanos(12_355_000_000).round_to(2).to_string(),
            "12.36"
        );
        assert_eq!(
            Money::from_nanos(-5_000_000).round_to(2).to_string(),
            "0.00"
        );
    }
}
