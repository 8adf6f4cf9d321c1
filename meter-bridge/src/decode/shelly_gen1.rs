//! Shelly EM / 3EM Gen1: one plain-text value per MQTT topic,
//! `shellies/<device>/emeter/<channel>/<quantity>`.
//!
//! We read `power` (W, signed, positive = import), `total` and `total_returned` (cumulative
//! Wh); the other quantities (`voltage`, `pf`, `reactive_power`, and the watt-minute counters
//! `energy`/`returned_energy`) are recognised and ignored. Gen1 payloads carry no clock, so
//! readings are stamped with the receive time.
//!
//! Each channel is a meter of its own, with id `<device>/emeter/<channel>`. [`Gen1Accumulator`]
//! emits a reading once all three values of a channel have been refreshed since the last one
//! (the device publishes them together every 30 s or so).
//!
//! # Known limitations
//! A 3EM's phases are separate meters; summing them into one household meter is the registry's
//! job, not the decoder's.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::decode::decimal::{parse_power, parse_register, NumberError};
use crate::reading::{MeterId, PayloadTooLarge, Reading};

/// Largest Gen1 payload: one number.
pub const MAX_VALUE_BYTES: usize = 64;

/// Why a Gen1 message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShellyGen1Error {
    /// Not `shellies/<device>/emeter/<channel>/<quantity>`.
    #[error("not a Shelly Gen1 emeter topic: {0:?}")]
    BadTopic(String),
    /// A quantity we do not know.
    #[error("unknown emeter quantity {0:?}")]
    UnknownQuantity(String),
    /// Payload larger than [`MAX_VALUE_BYTES`] (`max` says so).
    #[error(transparent)]
    TooLarge(#[from] PayloadTooLarge),
    /// The payload is not an acceptable number.
    #[error("bad value for {quantity}: {cause}")]
    BadNumber {
        /// The quantity.
        quantity: &'static str,
        /// Why.
        cause: NumberError,
    },
    /// The accumulator already tracks its maximum number of channels.
    #[error("too many Shelly Gen1 channels (limit {0})")]
    TooManyChannels(usize),
}

/// The value one Gen1 message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gen1Quantity {
    /// Instantaneous active power, W.
    Power(i64),
    /// Cumulative import, Wh.
    Total(u64),
    /// Cumulative export, Wh.
    TotalReturned(u64),
    /// A value we do not use.
    Ignored,
}

/// One decoded Gen1 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gen1Value {
    /// `<device>/emeter/<channel>`.
    pub meter: MeterId,
    /// What it says.
    pub quantity: Gen1Quantity,
}

/// Decodes one Gen1 emeter message.
///
/// # Errors
/// [`ShellyGen1Error`] for other topics, unknown quantities, oversized or non-numeric payloads.
pub fn decode(topic: &str, payload: &[u8]) -> Result<Gen1Value, ShellyGen1Error> {
    let bad_topic = || ShellyGen1Error::BadTopic(crate::reading::snippet(topic.as_bytes()));
    let mut parts = topic.split('/');
    let (Some("shellies"), Some(device), Some("emeter"), Some(channel), Some(name), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(bad_topic());
    };
    if channel.is_empty() || channel.len() > 2 || !channel.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_topic());
    }
    let meter = MeterId::new(&format!("{device}/emeter/{channel}")).map_err(|_| bad_topic())?;
    if payload.len() > MAX_VALUE_BYTES {
        return Err(PayloadTooLarge {
            len: payload.len(),
            max: MAX_VALUE_BYTES,
        }
        .into());
    }
    let text = payload.trim_ascii();
    let quantity = match name {
        "power" => Gen1Quantity::Power(parse_power(text, 0).map_err(|cause| {
            ShellyGen1Error::BadNumber {
                quantity: "power",
                cause,
            }
        })?),
        "total" => Gen1Quantity::Total(parse_register(text, 0).map_err(|cause| {
            ShellyGen1Error::BadNumber {
                quantity: "total",
                cause,
            }
        })?),
        "total_returned" => {
            Gen1Quantity::TotalReturned(parse_register(text, 0).map_err(|cause| {
                ShellyGen1Error::BadNumber {
                    quantity: "total_returned",
                    cause,
                }
            })?)
        }
        "reactive_power" | "pf" | "voltage" | "current" | "energy" | "returned_energy" => {
            Gen1Quantity::Ignored
        }
        other => {
            return Err(ShellyGen1Error::UnknownQuantity(crate::reading::snippet(
                other.as_bytes(),
            )))
        }
    };
    Ok(Gen1Value { meter, quantity })
}

#[derive(Debug, Default, Clone, Copy)]
struct Channel {
    power: Option<i64>,
    total: Option<u64>,
    returned: Option<u64>,
}

/// Collects a channel's three values into readings; pure, at most `max_channels` channels.
#[derive(Debug, Clone)]
pub struct Gen1Accumulator {
    channels: BTreeMap<MeterId, Channel>,
    max_channels: usize,
}

impl Gen1Accumulator {
    /// An empty accumulator for at most `max_channels` channels.
    pub fn new(max_channels: usize) -> Self {
        Gen1Accumulator {
            channels: BTreeMap::new(),
            max_channels,
        }
    }

    /// Takes one value received at `receive_time`; returns a reading once the channel's power,
    /// total and total_returned have all arrived since the previous reading.
    ///
    /// # Errors
    /// [`ShellyGen1Error::TooManyChannels`] for a new channel beyond the limit.
    pub fn push(
        &mut self,
        value: Gen1Value,
        receive_time: DateTime<Utc>,
    ) -> Result<Option<Reading>, ShellyGen1Error> {
        if value.quantity == Gen1Quantity::Ignored {
            return Ok(None);
        }
        if !self.channels.contains_key(&value.meter) && self.channels.len() >= self.max_channels {
            return Err(ShellyGen1Error::TooManyChannels(self.max_channels));
        }
        let channel = self.channels.entry(value.meter.clone()).or_default();
        match value.quantity {
            Gen1Quantity::Power(p) => channel.power = Some(p),
            Gen1Quantity::Total(t) => channel.total = Some(t),
            Gen1Quantity::TotalReturned(r) => channel.returned = Some(r),
            Gen1Quantity::Ignored => {}
        }
        if let (Some(power_w), Some(import_wh), Some(export_wh)) =
            (channel.power, channel.total, channel.returned)
        {
            *channel = Channel::default();
            return Ok(Some(Reading {
                meter: value.meter,
                timestamp: receive_time,
                import_wh,
                export_wh,
                power_w,
            }));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_values_make_a_reading() {
        let t = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let mut acc = Gen1Accumulator::new(8);
        let topic = |q: &str| format!("shellies/shellyem-C45BBE6B/emeter/0/{q}");
        let push = |acc: &mut Gen1Accumulator, q: &str, v: &str| {
            acc.push(decode(&topic(q), v.as_bytes()).unwrap(), t)
                .unwrap()
        };
        assert_eq!(push(&mut acc, "power", "-512.34"), None);
        assert_eq!(push(&mut acc, "voltage", "242.27"), None);
        assert_eq!(push(&mut acc, "total", "500000.9"), None);
        let r = push(&mut acc, "total_returned", "8000").expect("complete");
        assert_eq!(r.meter.as_str(), "shellyem-C45BBE6B/emeter/0");
        assert_eq!((r.import_wh, r.export_wh, r.power_w), (500_000, 8000, -512));
        assert_eq!(push(&mut acc, "total", "500001"), None, "needs a fresh set");
    }

    #[test]
    fn refuses_other_topics_and_values() {
        for topic in [
            "shellies/x/relay/0/power",
            "shellies/x/emeter/a/power",
            "shellies/x/emeter/0/power/extra",
            "tele/x/SENSOR",
            "shellies/bad id/emeter/0/power",
        ] {
            assert!(
                matches!(decode(topic, b"1"), Err(ShellyGen1Error::BadTopic(_))),
                "{topic}"
            );
        }
        assert!(matches!(
            decode("shellies/x/emeter/0/bogus", b"1"),
            Err(ShellyGen1Error::UnknownQuantity(_))
        ));
        assert!(matches!(
            decode("shellies/x/emeter/0/total", b"-5"),
            Err(ShellyGen1Error::BadNumber { .. })
        ));
        assert!(matches!(
            decode("shellies/x/emeter/0/total", &[b'1'; 65]),
            Err(ShellyGen1Error::TooLarge(PayloadTooLarge {
                len: 65,
                max: MAX_VALUE_BYTES
            }))
        ));
    }
}
