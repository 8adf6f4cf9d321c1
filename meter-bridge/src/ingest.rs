//! The bridge's pure core: `(topic, payload, receive_time)` in, a reading or a dead letter out.
//!
//! [`Ingest::handle`] routes the message to a decoder (by configured topic prefix, else by
//! sniffing), drops exact redeliveries (same meter and timestamp, as QoS 1 may redeliver after a
//! broker restart), validates the reading against the registry and the meter's registers, and
//! records it. Every refusal becomes a [`DeadLetter`] and is counted by [`ErrorKind`]. No I/O,
//! no clock: the MQTT event loop calls it and publishes what it returns.
//!
//! # Bounds
//! Dedupe memory is [`IngestConfig::dedupe_window`] timestamps per registered meter; unknown
//! meters are never remembered. Shelly accumulators are bounded by
//! [`DecoderConfig::max_shelly_devices`](crate::DecoderConfig).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use voltmesh_engine::{Interval, Order};

use crate::dead_letter::DeadLetter;
use crate::error_kind::ErrorKind;
use crate::forecast::ForecastConfig;
use crate::format::{Decoder, DecoderConfig, Format};
use crate::orders::{plan_orders, OrderPolicy};
use crate::reading::{MeterId, Reading};
use crate::registers::{RegisterBook, RegisterPolicy};
use crate::registry::Registry;
use voltmesh_engine::IntervalSpec;

/// Ingest settings (TOML-friendly).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Topic prefix → format; the longest matching prefix wins, unmatched topics are sniffed.
    pub formats: BTreeMap<String, Format>,
    /// Decoder settings.
    pub decoder: DecoderConfig,
    /// Register validation and retention.
    pub registers: RegisterPolicy,
    /// Forecast weights.
    pub forecast: ForecastConfig,
    /// Order bounds.
    pub orders: OrderPolicy,
    /// Recent timestamps remembered per meter for dedupe.
    pub dedupe_window: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            formats: BTreeMap::new(),
            decoder: DecoderConfig::default(),
            registers: RegisterPolicy::default(),
            forecast: ForecastConfig::default(),
            orders: OrderPolicy::default(),
            dedupe_window: 64,
        }
    }
}

/// What one message came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new, valid reading, now recorded.
    Accepted(Reading),
    /// A valid message that does not complete a reading yet (half of a Shelly pair, an ignored
    /// Shelly Gen1 quantity).
    Pending,
    /// A redelivery of a reading already accepted (same meter and timestamp); not counted twice.
    Duplicate(Reading),
    /// Refused: publish this to the dead-letter topic.
    Rejected(Box<DeadLetter>),
}

/// Message counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Readings accepted.
    pub accepted: u64,
    /// Valid partial messages.
    pub pending: u64,
    /// Redeliveries dropped.
    pub duplicates: u64,
    /// Refusals by kind.
    pub errors: BTreeMap<ErrorKind, u64>,
}

/// The ingest state machine (module docs).
#[derive(Debug, Clone)]
pub struct Ingest {
    config: IngestConfig,
    decoder: Decoder,
    registry: Registry,
    book: RegisterBook,
    seen: BTreeMap<MeterId, BTreeSet<DateTime<Utc>>>,
    counters: Counters,
}

impl Ingest {
    /// A fresh ingest for `registry`'s households and intervals of `spec`.
    pub fn new(config: IngestConfig, registry: Registry, spec: IntervalSpec) -> Self {
        Ingest {
            decoder: Decoder::new(config.decoder.clone()),
            book: RegisterBook::new(spec, config.registers),
            config,
            registry,
            seen: BTreeMap::new(),
            counters: Counters::default(),
        }
    }

    /// The format configured for `topic` (longest matching prefix), if any.
    pub fn format_for(&self, topic: &str) -> Option<Format> {
        self.config
            .formats
            // Every prefix of `topic` sorts at or before it, longer prefixes later: the first
            // prefix met walking backwards is the longest.
            .range::<str, _>((Bound::Unbounded, Bound::Included(topic)))
            .rev()
            .find(|(prefix, _)| topic.starts_with(prefix.as_str()))
            .map(|(_, f)| *f)
    }

    /// Handles one message received at `receive_time` (module docs). Never panics on any input.
    pub fn handle(&mut self, topic: &str, payload: &[u8], receive_time: DateTime<Utc>) -> Outcome {
        let format = self.format_for(topic);
        let reading = match self.decoder.decode(format, topic, payload, receive_time) {
            Ok(Some(reading)) => reading,
            Ok(None) => {
                self.counters.pending += 1;
                return Outcome::Pending;
            }
            Err(e) => {
                let meter = e.meter_hint(topic);
                return self.reject(DeadLetter::new(
                    e.kind(),
                    &e,
                    meter,
                    topic,
                    payload,
                    receive_time,
                ));
            }
        };
        if self
            .seen
            .get(&reading.meter)
            .is_some_and(|s| s.contains(&reading.timestamp))
        {
            self.counters.duplicates += 1;
            return Outcome::Duplicate(reading);
        }
        match self.book.record(&self.registry, &reading, receive_time) {
            Ok(_) => {
                self.remember(&reading);
                self.counters.accepted += 1;
                Outcome::Accepted(reading)
            }
            Err(e) => {
                let mut letter = DeadLetter::new(
                    e.kind(),
                    &e,
                    Some(reading.meter.clone()),
                    topic,
                    payload,
                    receive_time,
                );
                letter.reading = Some(reading);
                self.reject(letter)
            }
        }
    }

    fn reject(&mut self, letter: DeadLetter) -> Outcome {
        *self.counters.errors.entry(letter.kind).or_insert(0) += 1;
        Outcome::Rejected(Box::new(letter))
    }

    fn remember(&mut self, reading: &Reading) {
        let window = self.config.dedupe_window.max(1);
        let seen = self.seen.entry(reading.meter.clone()).or_default();
        seen.insert(reading.timestamp);
        while seen.len() > window {
            seen.pop_first();
        }
    }

    /// Starts a meter afresh from `reading` after a swap or rollover (see
    /// [`RegisterBook::rebase`]); the reading counts as accepted.
    ///
    /// # Errors
    /// [`crate::registry::RegistryError::UnknownMeter`] if the meter is not registered.
    pub fn rebase(&mut self, reading: Reading) -> Result<(), crate::registry::RegistryError> {
        self.registry.participant_of(&reading.meter)?;
        self.seen.remove(&reading.meter);
        self.remember(&reading);
        self.book.rebase(reading);
        self.counters.accepted += 1;
        Ok(())
    }

    /// Every enabled household's order for `target`, planned at `now`.
    pub fn plan_orders(&self, target: Interval, now: DateTime<Utc>) -> Vec<Order> {
        plan_orders(
            &self.book,
            &self.registry,
            target,
            now,
            self.config.forecast,
            self.config.orders,
        )
    }

    /// The counters so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The household registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The household registry, to update preferences.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// The register book.
    pub fn book(&self) -> &RegisterBook {
        &self.book
    }
}
