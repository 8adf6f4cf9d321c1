//! Rounding bills to the currency's minor unit without losing money.
//!
//! # The rule
//! Every amount the engine computes is exact ([`Money`], nano-units). Money is rounded only where
//! it leaves the ledger as a bill line, to the currency's minor unit (`decimals`: 2 for cents),
//! **half to even**, once per line and billing period, and the difference is **carried**: each
//! party (a participant, the utility, the network operator) has a carry, the exact amount not yet
//! billed, which is added to its next period's exact amount before rounding. So:
//! - a party's billed total over any number of periods differs from its exact total by its
//!   current carry, at most half a minor unit: nothing is rounded away, it is billed later;
//! - in every period, `Σ billed + Σ carry out = Σ exact + Σ carry in`, to the nano-unit; since
//!   the exact amounts of a settlement sum to zero (participants pay what the utility and the
//!   network operator receive), the billed amounts of a period sum to zero up to the change in
//!   carries, which a statement shows beside them.
//!
//! Signs follow the bill: positive is paid by the party, negative is paid to it.

use crate::Money;

/// Decimal places of [`Money`]'s exact representation: a minor unit has at most this many.
pub const MAX_DECIMALS: u32 = Money::SCALE;

/// One party's line of a billing period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundedLine {
    /// The billed amount, in minor units of the currency (cents for EUR).
    pub minor_units: i128,
    /// The exact amount not billed yet, carried into the party's next period
    /// (`|carry_out|` ≤ half a minor unit).
    pub carry_out: Money,
}

impl RoundedLine {
    /// The billed amount as exact money.
    #[must_use]
    pub fn billed(&self, decimals: u32) -> Money {
        Money::from_nanos(self.minor_units * minor_unit_nanos(decimals))
    }
}

/// Nano-units in one minor unit of a currency with `decimals` decimal places.
///
/// # Panics
/// If `decimals` exceeds [`MAX_DECIMALS`] (no ISO 4217 currency has more than 4).
#[must_use]
pub fn minor_unit_nanos(decimals: u32) -> i128 {
    assert!(
        decimals <= MAX_DECIMALS,
        "a minor unit of {decimals} decimals is finer than the exact representation"
    );
    10_i128.pow(MAX_DECIMALS - decimals)
}

/// Bills `exact` plus the party's `carry_in`, rounded half to even to `decimals` places, and
/// what is carried on (module docs).
///
/// # Panics
/// As [`minor_unit_nanos`].
#[must_use]
pub fn round_line(exact: Money, carry_in: Money, decimals: u32) -> RoundedLine {
    let unit = minor_unit_nanos(decimals);
    let due = exact.nanos() + carry_in.nanos();
    let minor_units = div_round_half_even(due, unit);
    RoundedLine {
        minor_units,
        carry_out: Money::from_nanos(due - minor_units * unit),
    }
}

/// `n / d` rounded to the nearest integer, ties to even; `d > 0`.
fn div_round_half_even(n: i128, d: i128) -> i128 {
    let q = n.div_euclid(d);
    let r = n.rem_euclid(d); // 0 <= r < d
    match (2 * r).cmp(&d) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q & 1),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn m(nanos: i128) -> Money {
        Money::from_nanos(nanos)
    }

    #[test]
    fn cents_half_to_even_with_the_rest_carried() {
        // 1.234999999 EUR: 1.23, 0.004999999 carried.
        let line = round_line(m(1_234_999_999), Money::ZERO, 2);
        assert_eq!((line.minor_units, line.carry_out), (123, m(4_999_999)));
        // Ties go to the even cent, both ways.
        assert_eq!(round_line(m(5_000_000), Money::ZERO, 2).minor_units, 0);
        assert_eq!(round_line(m(15_000_000), Money::ZERO, 2).minor_units, 2);
        assert_eq!(round_line(m(-5_000_000), Money::ZERO, 2).minor_units, 0);
        assert_eq!(round_line(m(-15_000_000), Money::ZERO, 2).minor_units, -2);
        // The carry is billed next period: 0.4 + 0.4 cents bill one cent the second time.
        let first = round_line(m(4_000_000), Money::ZERO, 2);
        let second = round_line(m(4_000_000), first.carry_out, 2);
        assert_eq!((first.minor_units, second.minor_units), (0, 1));
        assert_eq!(second.carry_out, m(-2_000_000));
        // Yen have no minor unit; a nano-unit currency rounds nothing.
        assert_eq!(round_line(m(2_500_000_000), Money::ZERO, 0).minor_units, 2);
        assert_eq!(round_line(m(7), Money::ZERO, 9).carry_out, Money::ZERO);
        assert_eq!(
            round_line(m(1_234_999_999), Money::ZERO, 2).billed(2),
            m(1_230_000_000)
        );
    }

    /// The naive reference: round the decimal with rust_decimal's banker's rounding.
    fn reference(due: i128, decimals: u32) -> i128 {
        let rounded = Money::from_nanos(due).round_to(decimals);
        let scaled = rounded * rust_decimal::Decimal::from(10_i64.pow(decimals));
        scaled.mantissa() / 10_i128.pow(scaled.scale())
    }

    proptest! {
        #[test]
        fn matches_decimal_rounding_and_conserves_money(
            exact in -10_i128.pow(15)..10_i128.pow(15),
            carry in -5_000_000_i128..=5_000_000,
            decimals in 0_u32..=4,
        ) {
            let line = round_line(m(exact), m(carry), decimals);
            let unit = minor_unit_nanos(decimals);
            prop_assert_eq!(line.minor_units, reference(exact + carry, decimals));
            prop_assert_eq!(line.minor_units * unit + line.carry_out.nanos(), exact + carry);
            prop_assert!(2 * line.carry_out.nanos().abs() <= unit);
        }

        /// Over many periods a party's billed total stays within half a minor unit of its
        /// exact total, and a zero-sum period stays zero-sum up to the carries.
        #[test]
        fn carries_keep_every_party_within_half_a_minor_unit(
            periods in proptest::collection::vec(
                proptest::collection::vec(-10_i128.pow(12)..10_i128.pow(12), 1..6), 1..40),
        ) {
            let unit = minor_unit_nanos(2);
            let mut carries: Vec<Money> = Vec::new();
            let (mut billed, mut exact_total) = (Vec::<i128>::new(), Vec::<i128>::new());
            for amounts in periods {
                // Participants' amounts, and the counterparty that receives their sum.
                let mut lines: Vec<i128> = amounts.clone();
                lines.push(-amounts.iter().sum::<i128>());
                carries.resize(carries.len().max(lines.len()), Money::ZERO);
                billed.resize(carries.len(), 0);
                exact_total.resize(carries.len(), 0);
                let mut period_billed = 0;
                let mut carry_change = 0;
                for (party, amount) in lines.iter().enumerate() {
                    let line = round_line(m(*amount), carries[party], 2);
                    carry_change += line.carry_out.nanos() - carries[party].nanos();
                    carries[party] = line.carry_out;
                    billed[party] += line.minor_units * unit;
                    exact_total[party] += amount;
                    period_billed += line.minor_units * unit;
                }
                prop_assert_eq!(period_billed + carry_change, 0);
            }
            for party in 0..billed.len() {
                prop_assert!(2 * (exact_total[party] - billed[party]).abs() <= unit);
            }
        }
    }
}
