//! Small helpers shared by the JSON decoders: borrowed keys and exact numbers from raw JSON.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde_json::value::RawValue;

use crate::decode::decimal::{parse_power, parse_register, NumberError};

/// An object key, borrowed from the input when it has no escapes.
pub(crate) struct Key<'de>(pub(crate) Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Why a JSON value is not the number we need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JsonNumberError {
    /// The value is not a JSON number (a string, `null`, an object…).
    #[error("not a JSON number")]
    NotANumber,
    /// The number is unacceptable.
    #[error(transparent)]
    Number(#[from] NumberError),
}

fn number_text(raw: &RawValue) -> Result<&[u8], JsonNumberError> {
    let text = raw.get().as_bytes();
    match text.first() {
        Some(b'-' | b'0'..=b'9') => Ok(text),
        _ => Err(JsonNumberError::NotANumber),
    }
}

/// A cumulative register from a JSON number, in Wh (`scale` decimal places from the JSON unit).
pub(crate) fn register(raw: &RawValue, scale: i32) -> Result<u64, JsonNumberError> {
    Ok(parse_register(number_text(raw)?, scale)?)
}

/// A power value from a JSON number, in W.
pub(crate) fn power(raw: &RawValue, scale: i32) -> Result<i64, JsonNumberError> {
    Ok(parse_power(number_text(raw)?, scale)?)
}
