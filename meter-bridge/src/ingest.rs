//! The bridge's pure core: `(topic, payload, receive_time)` in, a reading or a dead letter out.
//!
//! [`Ingest::handle`] routes the message to a decoder (by configured topic prefix, else by
//! sniffing), drops exact redeliveries (same meter and timestamp, as QoS 1 may redeliver after a
//! broker restart), validates the reading against the registry and the meter's registers, and
//! records it. Every refusal becomes a [`DeadLetter`] and is counted by [`ErrorKind`]. No I/O,
//! no clock: the MQTT event loop calls it and publishes what it returns.
//!
//! Messages on the households' own topics ([`crate::household::topic`], recognised once
//! [`Ingest::with_household_topics`] names their prefix) are handled before any meter decoder:
//! a household's own orders ([`crate::household::own_order`]) are validated and kept until the bridge
//! plans their interval, where they replace the forecast's order ([`Ingest::plan_orders`]); a
//! household's preferences ([`crate::household::preferences`]) replace its registry entry's.
//! Their refusals are counted apart, in [`Counters::household_errors`].
//!
//! # Bounds
//! Dedupe memory is [`IngestConfig::dedupe_window`] timestamps per registered meter; unknown
//! meters are never remembered. Shelly accumulators are bounded by
//! [`DecoderConfig::max_shelly_devices`](crate::DecoderConfig). Households' own orders: at most
//! one per registered household and interval, for intervals at most
//! [`MAX_INTERVALS_AHEAD`](crate::household::own_order::MAX_INTERVALS_AHEAD) ahead; they are dropped
//! once their interval is planned ([`Ingest::plan_for_submission`]).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use voltmesh_engine::{Interval, Order, ParticipantId, Tariffs};

use crate::dead_letter::DeadLetter;
use crate::decode::{Decoder, DecoderConfig, Format};
use crate::error_kind::ErrorKind;
use crate::household::forecast::ForecastConfig;
use crate::household::own_order::{parse_orders, HouseholdOrderError, OrderBounds};
use crate::household::plan::{plan_orders, OrderPolicy};
use crate::household::preferences::{PreferencesError, PreferencesMessage};
use crate::household::registers::{RegisterBook, RegisterPolicy};
use crate::household::registry::{Preferences, Registry};
use crate::household::topic::{parse_topic, HouseholdTopic};
use crate::reading::{check_size, MeterId, Reading};
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
    /// A household's own message, now recorded.
    Household(HouseholdUpdate),
}

/// What a household's own message changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HouseholdUpdate {
    /// Its own orders, each now the household's order for its interval (replacing any earlier
    /// one for that interval).
    Orders {
        /// The household.
        participant: ParticipantId,
        /// The orders, as they will be submitted.
        orders: Vec<Order>,
    },
    /// Its preferences, now in the registry.
    Preferences {
        /// The household.
        participant: ParticipantId,
        /// Its preferences from now on.
        preferences: Preferences,
    },
}

/// What [`Ingest::replace_households`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HouseholdsChange {
    /// Households new to the list, ordered.
    pub added: Vec<ParticipantId>,
    /// Households no longer listed, ordered.
    pub removed: Vec<ParticipantId>,
    /// Households kept with other meters or other configured preferences, ordered.
    pub changed: Vec<ParticipantId>,
    /// Households kept as they were.
    pub kept: usize,
}

impl HouseholdsChange {
    /// Whether the list is the same as before.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
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
    /// Households' own orders recorded (a redelivered or repeated order counts again).
    pub household_orders: u64,
    /// Households' preferences messages applied.
    pub preferences_updates: u64,
    /// Refusals of households' own messages, by kind.
    pub household_errors: BTreeMap<ErrorKind, u64>,
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
    households: Option<HouseholdInputs>,
}

/// Where households' own messages arrive and what their orders are checked against.
#[derive(Debug, Clone)]
struct HouseholdInputs {
    prefix: String,
    tariffs: Tariffs,
    /// Own orders by household, then interval start: one order, or a bid curve's blocks.
    own_orders: BTreeMap<ParticipantId, BTreeMap<i64, Vec<Order>>>,
    /// The latest interval planned for submission: later own orders for it are refused.
    planned_through: Option<i64>,
    /// Each household's preferences from the config, which a preferences message amends.
    configured: BTreeMap<ParticipantId, Preferences>,
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
            households: None,
        }
    }

    /// Also takes households' own messages on the topics under `prefix` (see
    /// [`crate::household::topic`]); their order limit prices must lie within `tariffs`.
    #[must_use]
    pub fn with_household_topics(mut self, prefix: impl Into<String>, tariffs: Tariffs) -> Self {
        self.households = Some(HouseholdInputs {
            prefix: prefix.into(),
            tariffs,
            own_orders: BTreeMap::new(),
            planned_through: None,
            configured: self
                .registry
                .households()
                .map(|(p, h)| (p.clone(), h.preferences))
                .collect(),
        });
        self
    }

    /// Households' own orders and preferences are checked against `tariffs` from now on (the
    /// planner sets the rules of the next interval it plans, as the node says; orders are bound
    /// by their own interval's rules again when planned, see [`crate::community`]).
    pub fn set_tariffs(&mut self, tariffs: Tariffs) {
        if let Some(inputs) = &mut self.households {
            inputs.tariffs = tariffs;
        }
    }

    /// Replaces the household list with `registry` (a reloaded `bridge.toml`), keeping what the
    /// bridge knows of the households and meters that stay:
    /// * a kept meter of a kept household keeps its registers, dedupe memory and readings;
    /// * a meter no longer listed, or now listed under another household, is forgotten (its next
    ///   reading is a baseline, so no energy moves between households);
    /// * a removed household's own orders are dropped; a new household starts empty;
    /// * a kept household keeps its current preferences (amended over MQTT) unless the file
    ///   changed them, in which case the file's apply.
    ///
    /// Runs under the ingest lock, between two messages: no reading is lost or half-applied.
    pub fn replace_households(&mut self, registry: Registry) -> HouseholdsChange {
        let mut change = HouseholdsChange::default();
        let old = std::mem::take(&mut self.registry);
        for (meter, participant) in old.meters() {
            if registry.participant_of(meter).ok() != Some(participant) {
                self.book.forget(meter);
                self.seen.remove(meter);
            }
        }
        let mut registry = registry;
        let configured_before = self.households.as_ref().map(|h| &h.configured);
        let mut kept_preferences = Vec::new();
        for (participant, household) in registry.households() {
            match old.household(participant) {
                Err(_) => change.added.push(participant.clone()),
                Ok(before) => {
                    let was_configured = configured_before
                        .and_then(|c| c.get(participant))
                        .copied()
                        .unwrap_or(before.preferences);
                    if was_configured == household.preferences {
                        kept_preferences.push((participant.clone(), before.preferences));
                    }
                    if before.meters != household.meters || was_configured != household.preferences
                    {
                        change.changed.push(participant.clone());
                    } else {
                        change.kept += 1;
                    }
                }
            }
        }
        for (participant, _) in old.households() {
            if registry.household(participant).is_err() {
                change.removed.push(participant.clone());
            }
        }
        for (participant, preferences) in kept_preferences {
            // Listed: taken from the new registry above.
            let _ = registry.set_preferences(&participant, preferences);
        }
        if let Some(inputs) = &mut self.households {
            inputs.configured = registry
                .households()
                .map(|(p, h)| (p.clone(), h.preferences))
                .collect();
            inputs
                .own_orders
                .retain(|p, _| registry.household(p).is_ok());
        }
        self.registry = registry;
        change
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
        if let Some(kind) = self
            .households
            .as_ref()
            .and_then(|h| parse_topic(&h.prefix, topic))
        {
            return self.handle_household(&kind, topic, payload, receive_time);
        }
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

    /// A message on a household topic (module docs).
    fn handle_household(
        &mut self,
        kind: &HouseholdTopic,
        topic: &str,
        payload: &[u8],
        receive_time: DateTime<Utc>,
    ) -> Outcome {
        let participant = kind.participant().clone();
        let refused = |kind: ErrorKind, reason: &dyn std::fmt::Display| {
            let mut letter = DeadLetter::new(kind, reason, None, topic, payload, receive_time);
            letter.participant = Some(participant.clone());
            letter
        };
        let letter = if let Err(e) = check_size(payload) {
            refused(ErrorKind::TooLarge, &e)
        } else {
            let current = match self.registry.household(&participant) {
                Ok(household) => household.preferences,
                Err(e) => {
                    let letter = refused(ErrorKind::UnknownParticipant, &e);
                    return self.reject_household(letter);
                }
            };
            match kind {
                HouseholdTopic::Orders(_) => {
                    match self.own_orders(&participant, payload, receive_time) {
                        Ok(orders) => {
                            self.counters.household_orders += orders.len() as u64;
                            return Outcome::Household(HouseholdUpdate::Orders {
                                participant,
                                orders,
                            });
                        }
                        Err(e) => {
                            let kind = match e {
                                HouseholdOrderError::Malformed(_) => ErrorKind::Malformed,
                                HouseholdOrderError::GateClosed { .. }
                                | HouseholdOrderError::AlreadyPlanned(_) => ErrorKind::GateClosed,
                                _ => ErrorKind::BadValue,
                            };
                            refused(kind, &e)
                        }
                    }
                }
                HouseholdTopic::Preferences(_) => {
                    match self.preferences(&participant, current, payload) {
                        Ok(preferences) => {
                            self.counters.preferences_updates += 1;
                            return Outcome::Household(HouseholdUpdate::Preferences {
                                participant,
                                preferences,
                            });
                        }
                        Err(e) => {
                            let kind = match e {
                                PreferencesError::Malformed(_) => ErrorKind::Malformed,
                                PreferencesError::OutsideTariffs { .. } => ErrorKind::BadValue,
                            };
                            refused(kind, &e)
                        }
                    }
                }
            }
        };
        self.reject_household(letter)
    }

    fn reject_household(&mut self, letter: DeadLetter) -> Outcome {
        *self
            .counters
            .household_errors
            .entry(letter.kind)
            .or_insert(0) += 1;
        Outcome::Rejected(Box::new(letter))
    }

    /// Validates a household's preferences message and puts the result in the registry.
    fn preferences(
        &mut self,
        participant: &ParticipantId,
        current: Preferences,
        payload: &[u8],
    ) -> Result<Preferences, PreferencesError> {
        let message = PreferencesMessage::parse(payload)?;
        let (configured, tariffs) = match &self.households {
            Some(inputs) => (
                inputs
                    .configured
                    .get(participant)
                    .copied()
                    .unwrap_or(current),
                inputs.tariffs,
            ),
            None => (current, Tariffs::UNBOUNDED),
        };
        let preferences = message.apply(configured, tariffs)?;
        // Registered: checked before.
        let _ = self.registry.set_preferences(participant, preferences);
        Ok(preferences)
    }

    /// Validates and records a household's own orders: all of the message or none.
    fn own_orders(
        &mut self,
        participant: &ParticipantId,
        payload: &[u8],
        receive_time: DateTime<Utc>,
    ) -> Result<Vec<Order>, HouseholdOrderError> {
        let Some(inputs) = self.households.as_mut() else {
            return Ok(Vec::new());
        };
        let bounds = OrderBounds {
            spec: self.book.spec(),
            tariffs: inputs.tariffs,
            max_order_wh: self.config.orders.max_order_wh,
        };
        // Each interval's orders, in message order: a single order or a bid curve's blocks.
        let mut checked: BTreeMap<i64, Vec<Order>> = BTreeMap::new();
        for own in parse_orders(payload)? {
            let block = checked
                .get(&own.interval_start.timestamp())
                .map_or(0, Vec::len);
            let (interval, order) = own.to_order(participant, block, bounds, receive_time)?;
            if inputs
                .planned_through
                .is_some_and(|p| interval.start_unix() <= p)
            {
                return Err(HouseholdOrderError::AlreadyPlanned(interval.start()));
            }
            checked
                .entry(interval.start_unix())
                .or_default()
                .push(order);
        }
        let mine = inputs.own_orders.entry(participant.clone()).or_default();
        let mut accepted = Vec::new();
        for (start, orders) in checked {
            accepted.extend(orders.iter().cloned());
            // The message's set replaces whatever the household sent for that interval before.
            mine.insert(start, orders);
        }
        Ok(accepted)
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
    /// [`crate::household::registry::RegistryError::UnknownMeter`] if the meter is not registered.
    pub fn rebase(
        &mut self,
        reading: Reading,
    ) -> Result<(), crate::household::registry::RegistryError> {
        self.registry.participant_of(&reading.meter)?;
        self.seen.remove(&reading.meter);
        self.remember(&reading);
        self.book.rebase(reading);
        self.counters.accepted += 1;
        Ok(())
    }

    /// Every enabled household's orders for `target`, planned at `now`, ordered by participant:
    /// the household's own orders for `target` (one, or a bid curve's blocks in the order sent)
    /// if it sent any, else the forecast's one.
    pub fn plan_orders(&self, target: Interval, now: DateTime<Utc>) -> Vec<Order> {
        let forecast = plan_orders(
            &self.book,
            &self.registry,
            target,
            now,
            self.config.forecast,
            self.config.orders,
        );
        let Some(inputs) = &self.households else {
            return forecast;
        };
        let mut planned: BTreeMap<ParticipantId, Vec<Order>> = forecast
            .into_iter()
            .map(|o| (o.participant.clone(), vec![o]))
            .collect();
        for (participant, orders) in &inputs.own_orders {
            let enabled = self
                .registry
                .household(participant)
                .is_ok_and(|h| h.preferences.enabled);
            if let (true, Some(own)) = (enabled, orders.get(&target.start_unix())) {
                planned.insert(participant.clone(), own.clone());
            }
        }
        planned.into_values().flatten().collect()
    }

    /// [`Ingest::plan_orders`], for submission: afterwards own orders for `target` or earlier are
    /// refused ([`HouseholdOrderError::AlreadyPlanned`]) and the ones kept are dropped.
    pub fn plan_for_submission(&mut self, target: Interval, now: DateTime<Utc>) -> Vec<Order> {
        let orders = self.plan_orders(target, now);
        if let Some(inputs) = &mut self.households {
            let through = target.start_unix();
            inputs.planned_through =
                Some(inputs.planned_through.map_or(through, |p| p.max(through)));
            for orders in inputs.own_orders.values_mut() {
                *orders = orders.split_off(&(through + 1));
            }
            inputs.own_orders.retain(|_, orders| !orders.is_empty());
        }
        orders
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
