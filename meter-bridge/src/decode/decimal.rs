//! Exact decimal parsing for meter values: no floating point anywhere.
//!
//! Meters print decimals (`001234.567*kWh`, `"Total_in": 34507.4761`). We parse the text into
//! an integer count of a smaller unit (`1234.567 kWh` → `1_234_567 Wh`) with integer arithmetic
//! only, so every replica and every machine gets the same number.
//!
//! # Rounding
//!
//! * Energy registers truncate toward zero ([`Rounding::Truncate`]): a register must never run
//!   ahead of the meter, or the next reading could look like it went backwards.
//! * Power rounds half away from zero ([`Rounding::HalfAwayFromZero`]).
//!
//! # Accepted syntax
//!
//! `-?digits(.digits)?([eE][+-]?digits)?` — JSON numbers and DSMR values. At most
//! [`MAX_DIGITS`] significant digits and an exponent within ±[`MAX_EXPONENT`]; results must fit
//! in an `i64`.

use serde::{Deserialize, Serialize};

/// Most digits (integer and fraction together) a value may have.
pub const MAX_DIGITS: usize = 30;
/// Largest exponent magnitude accepted.
pub const MAX_EXPONENT: i32 = 40;

/// How a value with more decimals than the target unit is brought onto it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    /// Drop the extra digits (toward zero).
    Truncate,
    /// Round to nearest, ties away from zero.
    HalfAwayFromZero,
}

/// A value that is not an acceptable decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    /// Not a decimal number at all.
    #[error("not a decimal number")]
    Syntax,
    /// Too many digits, exponent too large, or the result does not fit.
    #[error("number out of range")]
    OutOfRange,
    /// A negative value where only non-negative values make sense (energy registers).
    #[error("negative value for a cumulative register")]
    Negative,
}

/// Energy unit of a register value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum EnergyUnit {
    /// Kilowatt-hours.
    #[default]
    #[serde(rename = "kWh")]
    KWh,
    /// Watt-hours.
    #[serde(rename = "Wh")]
    Wh,
}

impl EnergyUnit {
    /// Decimal places that separate this unit from Wh.
    pub const fn scale(self) -> i32 {
        match self {
            EnergyUnit::KWh => 3,
            EnergyUnit::Wh => 0,
        }
    }
}

/// Power unit of an instantaneous value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum PowerUnit {
    /// Kilowatts.
    #[serde(rename = "kW")]
    KW,
    /// Watts.
    #[default]
    #[serde(rename = "W")]
    W,
}

impl PowerUnit {
    /// Decimal places that separate this unit from W.
    pub const fn scale(self) -> i32 {
        match self {
            PowerUnit::KW => 3,
            PowerUnit::W => 0,
        }
    }
}

/// `text × 10^scale`, rounded as asked, as an integer.
///
/// # Errors
/// [`NumberError::Syntax`] for anything but the accepted syntax (module docs),
/// [`NumberError::OutOfRange`] if it has too many digits or does not fit in an `i64`.
pub fn parse_scaled(text: &[u8], scale: i32, rounding: Rounding) -> Result<i64, NumberError> {
    let (negative, rest) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    // The mantissa lives in a u64 while it fits (every real meter value), in an i128 beyond.
    let mut narrow: u64 = 0;
    let mut wide: Option<i128> = None;
    let mut digits = 0usize;
    let mut frac_digits = 0i32;
    let mut seen_point = false;
    let mut int_digits = 0usize;
    let mut i = 0;
    while i < rest.len() {
        let b = rest[i];
        match b {
            b'0'..=b'9' => {
                // Leading zeros cost nothing and do not count against the digit budget.
                if wide.is_some() || narrow != 0 || b != b'0' {
                    digits += 1;
                    if digits > MAX_DIGITS {
                        return Err(NumberError::OutOfRange);
                    }
                }
                let d = b - b'0';
                match wide {
                    Some(w) => wide = Some(w * 10 + i128::from(d)),
                    None => match narrow
                        .checked_mul(10)
                        .and_then(|m| m.checked_add(u64::from(d)))
                    {
                        Some(m) => narrow = m,
                        None => wide = Some(i128::from(narrow) * 10 + i128::from(d)),
                    },
                }
                if seen_point {
                    frac_digits += 1;
                    if frac_digits > MAX_DIGITS as i32 {
                        return Err(NumberError::OutOfRange);
                    }
                } else {
                    int_digits += 1;
                }
            }
            b'.' if !seen_point => {
                if int_digits == 0 {
                    return Err(NumberError::Syntax);
                }
                seen_point = true;
            }
            b'e' | b'E' => break,
            _ => return Err(NumberError::Syntax),
        }
        i += 1;
    }
    if int_digits == 0 || (seen_point && frac_digits == 0) {
        return Err(NumberError::Syntax);
    }
    let exponent = if i < rest.len() {
        parse_exponent(&rest[i + 1..])?
    } else {
        0
    };
    // value = mantissa × 10^(exponent − frac_digits); we want value × 10^scale.
    let shift = exponent - frac_digits + scale;
    if wide.is_none() {
        if let Some(magnitude) = narrow_magnitude(narrow, shift, rounding) {
            let signed = i64::try_from(magnitude).map_err(|_| NumberError::OutOfRange)?;
            return Ok(if negative { -signed } else { signed });
        }
    }
    let mantissa = wide.unwrap_or(i128::from(narrow));
    let magnitude = if shift >= 0 {
        if mantissa == 0 {
            0
        } else {
            let factor = pow10(shift)?;
            mantissa
                .checked_mul(factor)
                .ok_or(NumberError::OutOfRange)?
        }
    } else {
        // More than 38 dropped digits: the mantissa (at most 30 digits) is below half a unit.
        let Ok(divisor) = pow10(-shift) else {
            return Ok(0);
        };
        let quotient = mantissa / divisor;
        let remainder = mantissa % divisor;
        match rounding {
            Rounding::Truncate => quotient,
            Rounding::HalfAwayFromZero => {
                if remainder * 2 >= divisor {
                    quotient + 1
                } else {
                    quotient
                }
            }
        }
    };
    let signed = if negative { -magnitude } else { magnitude };
    i64::try_from(signed).map_err(|_| NumberError::OutOfRange)
}

/// Like [`parse_scaled`] with [`Rounding::Truncate`], for a cumulative register.
///
/// # Errors
/// As [`parse_scaled`], plus [`NumberError::Negative`] for a value below zero.
pub fn parse_register(text: &[u8], scale: i32) -> Result<u64, NumberError> {
    let value = parse_scaled(text, scale, Rounding::Truncate)?;
    u64::try_from(value).map_err(|_| NumberError::Negative)
}

/// Like [`parse_scaled`] with [`Rounding::HalfAwayFromZero`], for a power value.
///
/// # Errors
/// As [`parse_scaled`].
pub fn parse_power(text: &[u8], scale: i32) -> Result<i64, NumberError> {
    parse_scaled(text, scale, Rounding::HalfAwayFromZero)
}

/// `mantissa × 10^shift` in u64 arithmetic, or `None` when that needs more than 64 bits (the
/// caller then redoes it in i128).
fn narrow_magnitude(mantissa: u64, shift: i32, rounding: Rounding) -> Option<u64> {
    const POW10: [u64; 20] = {
        let mut table = [1u64; 20];
        let mut i = 1;
        while i < 20 {
            table[i] = table[i - 1] * 10;
            i += 1;
        }
        table
    };
    if shift >= 0 {
        let factor = *POW10.get(usize::try_from(shift).ok()?)?;
        mantissa.checked_mul(factor)
    } else {
        let divisor = *POW10.get(usize::try_from(-shift).ok()?)?;
        let (quotient, remainder) = (mantissa / divisor, mantissa % divisor);
        Some(match rounding {
            Rounding::Truncate => quotient,
            Rounding::HalfAwayFromZero if remainder >= divisor - remainder => quotient + 1,
            Rounding::HalfAwayFromZero => quotient,
        })
    }
}

fn parse_exponent(text: &[u8]) -> Result<i32, NumberError> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(NumberError::Syntax);
    }
    let mut value: i32 = 0;
    for &d in digits {
        value = value * 10 + i32::from(d - b'0');
        if value > MAX_EXPONENT {
            return Err(NumberError::OutOfRange);
        }
    }
    Ok(if negative { -value } else { value })
}

fn pow10(exp: i32) -> Result<i128, NumberError> {
    u32::try_from(exp)
        .ok()
        .and_then(|e| 10_i128.checked_pow(e))
        .ok_or(NumberError::OutOfRange)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wh(text: &str) -> Result<u64, NumberError> {
        parse_register(text.as_bytes(), 3)
    }

    #[test]
    fn kwh_to_wh_is_exact() {
        assert_eq!(wh("001234.567"), Ok(1_234_567));
        assert_eq!(wh("000000.034"), Ok(34));
        assert_eq!(wh("0"), Ok(0));
        assert_eq!(
            wh("34507.4761"),
            Ok(34_507_476),
            "truncates the sub-Wh digit"
        );
        assert_eq!(wh("26289.999"), Ok(26_289_999));
        assert_eq!(parse_register(b"26289.57", 0), Ok(26_289));
        assert_eq!(parse_register(b"006545766", 0), Ok(6_545_766));
    }

    #[test]
    fn power_rounds_half_away_from_zero() {
        assert_eq!(parse_power(b"-18.017", 0), Ok(-18));
        assert_eq!(parse_power(b"-18.5", 0), Ok(-19));
        assert_eq!(parse_power(b"18.5", 0), Ok(19));
        assert_eq!(parse_power(b"18.49", 0), Ok(18));
        assert_eq!(parse_power(b"02.027", 3), Ok(2027));
        assert_eq!(parse_power(b"-894", 0), Ok(-894));
    }

    #[test]
    fn exponents_shift_the_point() {
        assert_eq!(parse_power(b"1.5e3", 0), Ok(1500));
        assert_eq!(parse_power(b"15E-1", 0), Ok(2));
        assert_eq!(parse_register(b"2e-1", 3), Ok(200));
        assert_eq!(parse_register(b"1e-40", 3), Ok(0));
        assert_eq!(parse_register(b"1e41", 0), Err(NumberError::OutOfRange));
    }

    #[test]
    fn rejects_malformed_and_huge() {
        for bad in [
            "", "-", ".5", "5.", "1.2.3", "1,5", "+1", "0x10", "1e", "1e+", " 1", "NaN",
        ] {
            assert_eq!(wh(bad), Err(NumberError::Syntax), "{bad:?}");
        }
        assert_eq!(wh("-1"), Err(NumberError::Negative));
        assert_eq!(
            parse_register(b"9223372036854775808", 0),
            Err(NumberError::OutOfRange)
        );
        assert_eq!(
            parse_register(b"9223372036854775807", 0),
            Ok(9_223_372_036_854_775_807)
        );
        assert_eq!(wh(&"9".repeat(31)), Err(NumberError::OutOfRange));
        assert_eq!(
            wh(&format!("{}1", "0".repeat(100))),
            Ok(1000),
            "leading zeros are free"
        );
    }

    proptest::proptest! {
        /// The u64 fast path and the i128 path agree with a reference computed from the digits.
        #[test]
        fn matches_a_reference(
            int in "[0-9]{1,22}",
            frac in "[0-9]{0,8}",
            scale in 0i32..=3,
            negative in proptest::bool::ANY,
        ) {
            let text = format!("{}{int}{}{frac}", if negative { "-" } else { "" }, if frac.is_empty() { "" } else { "." });
            let digits: i128 = format!("{int}{frac}").parse().unwrap();
            let shift = scale - frac.len() as i32;
            let (reference_trunc, reference_round) = if shift >= 0 {
                let v = digits * 10_i128.pow(shift as u32);
                (v, v)
            } else {
                let d = 10_i128.pow((-shift) as u32);
                let (q, r) = (digits / d, digits % d);
                (q, if 2 * r >= d { q + 1 } else { q })
            };
            let sign = if negative { -1 } else { 1 };
            let expect = |v: i128| i64::try_from(sign * v).map_err(|_| NumberError::OutOfRange);
            let significant = format!("{int}{frac}").trim_start_matches('0').len();
            proptest::prop_assume!(significant <= MAX_DIGITS);
            proptest::prop_assert_eq!(
                parse_scaled(text.as_bytes(), scale, Rounding::Truncate),
                expect(reference_trunc)
            );
            proptest::prop_assert_eq!(
                parse_scaled(text.as_bytes(), scale, Rounding::HalfAwayFromZero),
                expect(reference_round)
            );
        }
    }
}
