//! Home Assistant: publishes the discovery configs and states that
//! [`crate::household::home_assistant`] builds, and carries out the households' control commands.
//!
//! # Connection and task
//! A third MQTT connection (`<client_id>-ha`, clean session) subscribes to Home Assistant's
//! birth topic (`<discovery_prefix>/status`), the households' control commands
//! (`<hprefix>/households/+/controls/+/set`) and their preferences (`.../preferences`), and hands
//! every message to the Home Assistant task, waiting while the task is busy (the broker's TCP
//! flow control holds the rest). The task publishes on the publishing connection, whose last
//! will drives every entity's availability ([`crate::runtime::mqtt::publisher`]). Neither waits
//! for the other, so this cannot deadlock, and neither holds up the subscribing connection's
//! acknowledgements.
//!
//! # What the task does
//! * On every connection of its own (at start, and after a broker restart): publishes every
//!   household's and the neighborhood's discovery configs and every household's `controls`, and
//!   reads every household's totals from the node. On Home Assistant's birth (`online`):
//!   publishes the configs again (states are retained).
//! * When the household list is reloaded ([`crate::runtime::reload`]): configs and states for
//!   new households, empty retained payloads (which delete the entities) for removed ones.
//! * After every interval's fills ([`crate::runtime::followups`]): reads the totals of each
//!   household that traded from the node ([`OrderSink::balance`]) and publishes them on its
//!   `totals` topic. A node that does not answer is asked again with backoff (1 s doubling to
//!   30 s), one household at a time, so the task keeps taking commands meanwhile.
//! * A command (`ON`/`OFF`, or a limit) is merged into the household's last preferences message
//!   (the message is the household's whole wish, [`crate::household::preferences`]), checked as
//!   the bridge checks preferences, and published retained on the household's preferences
//!   topic: the bridge's own subscription applies it exactly like one the household wrote. A
//!   command that is not `ON`/`OFF` or a price, puts a limit outside the tariffs, or names an
//!   unknown household or control is refused: logged at `warn` and published to the
//!   dead-letter topic; nothing is written and the bridge carries on.
//! * Each preferences message seen (a command's echo or the household's own) republishes the
//!   household's `controls` with the values in force.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, Packet, Publish, SubscribeFilter};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};
use voltmesh_engine::{ParticipantId, Tariffs};

use crate::dead_letter::DeadLetter;
use crate::error_kind::ErrorKind;
use crate::household::home_assistant::{
    apply_command, CommandError, Controls, Discovery, Totals, BIRTH,
};
use crate::household::preferences::{PreferencesError, PreferencesMessage};
use crate::household::registry::{Preferences, Registry};
use crate::household::topic::{
    controls_topic, parse_control_command, parse_topic, preferences_topic, totals_topic, Control,
    HouseholdTopic,
};
use crate::order_sink::{OrderSink, SinkError};
use crate::runtime::clock::SharedClock;
use crate::runtime::mqtt::backoff::Backoff;
use crate::runtime::mqtt::publisher::{PublishError, Publisher};
use crate::shutdown::Shutdown;

/// Messages waiting between the Home Assistant connection and its task, and households that
/// traded waiting for their totals to be read.
pub(crate) const HA_QUEUE: usize = 256;
/// The Home Assistant connection's request queue: it only carries subscriptions.
pub(crate) const HA_REQUEST_QUEUE: usize = 16;
/// First and longest wait before asking the node for a balance again.
const BALANCE_RETRY_MIN: Duration = Duration::from_secs(1);
const BALANCE_RETRY_MAX: Duration = Duration::from_secs(30);

/// What the Home Assistant connection hands its task.
#[derive(Debug)]
pub(crate) enum HaEvent {
    /// The connection is up (again).
    Connected,
    /// A message on one of its subscriptions.
    Message(Publish),
}

/// Polls the Home Assistant connection until shutdown: subscribes on every connection and hands
/// every message to the task (module docs).
pub(crate) async fn run_ha_connection(
    mut eventloop: EventLoop,
    client: AsyncClient,
    filters: Vec<SubscribeFilter>,
    mut backoff: Backoff,
    events: mpsc::Sender<HaEvent>,
    mut shutdown: Shutdown,
) {
    loop {
        let event = tokio::select! {
            biased;
            () = shutdown.recv() => return,
            event = eventloop.poll() => event,
        };
        let handed = match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff.reset();
                info!("home assistant connection up");
                let client = client.clone();
                let filters = filters.clone();
                tokio::spawn(async move {
                    if let Err(e) = client.subscribe_many(filters).await {
                        debug!(cause = %e, "home assistant subscriptions not queued");
                    }
                });
                HaEvent::Connected
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => HaEvent::Message(publish),
            Ok(other) => {
                debug!(event = ?other, "home assistant connection");
                continue;
            }
            Err(e) => {
                let delay = backoff.next_delay();
                warn!(cause = %e, delay_ms = delay.as_millis() as u64, "home assistant connection lost; reconnecting");
                tokio::select! {
                    biased;
                    () = shutdown.recv() => return,
                    () = tokio::time::sleep(delay) => {}
                }
                continue;
            }
        };
        let sent = tokio::select! {
            biased;
            () = shutdown.recv() => return,
            sent = events.send(handed) => sent,
        };
        if sent.is_err() {
            return;
        }
    }
}

/// The Home Assistant task's state (module docs).
#[derive(Debug)]
pub(crate) struct HomeAssistant<S> {
    pub(crate) discovery: Discovery,
    pub(crate) publisher: Publisher,
    pub(crate) sink: Arc<S>,
    pub(crate) clock: SharedClock,
    /// Each household's preferences from `bridge.toml`, which its preferences message amends.
    pub(crate) configured: BTreeMap<ParticipantId, Preferences>,
    /// Each household's last preferences message seen.
    pub(crate) wishes: BTreeMap<ParticipantId, PreferencesMessage>,
    /// Households whose configs are out.
    pub(crate) announced: BTreeSet<ParticipantId>,
    /// Households whose totals are to be read from the node.
    pub(crate) pending: BTreeSet<ParticipantId>,
}

/// The preferences of every household of `registry` as configured.
pub(crate) fn configured(registry: &Registry) -> BTreeMap<ParticipantId, Preferences> {
    registry
        .households()
        .map(|(p, h)| (p.clone(), h.preferences))
        .collect()
}

impl<S: OrderSink> HomeAssistant<S> {
    fn tariffs(&self) -> Tariffs {
        self.discovery.tariffs
    }

    /// Publishes the neighborhood's and every household's configs, and with `states`, every
    /// household's controls and a read of its totals.
    async fn announce_all(&mut self, states: bool) -> Result<(), PublishError> {
        for config in self.discovery.neighborhood_configs() {
            self.publisher
                .json(&config.topic, &config.payload, true)
                .await?;
        }
        let households: Vec<ParticipantId> = self.configured.keys().cloned().collect();
        for participant in households {
            self.announce(&participant, states).await?;
        }
        info!(
            households = self.announced.len(),
            "home assistant discovery published"
        );
        Ok(())
    }

    async fn announce(
        &mut self,
        participant: &ParticipantId,
        states: bool,
    ) -> Result<(), PublishError> {
        let configs = match self.discovery.household(participant) {
            Ok(configs) => configs,
            Err(e) => {
                warn!(cause = %e, "no home assistant device for this household");
                return Ok(());
            }
        };
        for config in configs {
            self.publisher
                .json(&config.topic, &config.payload, true)
                .await?;
        }
        self.announced.insert(participant.clone());
        if states {
            self.publish_controls(participant).await?;
            self.pending.insert(participant.clone());
        }
        Ok(())
    }

    /// Deletes a removed household's entities and states (empty retained payloads).
    async fn withdraw(&mut self, participant: &ParticipantId) -> Result<(), PublishError> {
        let prefix = &self.discovery.results_prefix;
        let mut topics = self.discovery.household_config_topics(participant);
        topics.extend(totals_topic(prefix, participant).ok());
        topics.extend(controls_topic(prefix, participant).ok());
        for topic in topics {
            self.publisher.bytes(&topic, Vec::new(), true).await?;
        }
        self.announced.remove(participant);
        self.pending.remove(participant);
        self.wishes.remove(participant);
        Ok(())
    }

    /// The household list was reloaded.
    async fn households(&mut self, registry: &Registry) -> Result<(), PublishError> {
        self.configured = configured(registry);
        let gone: Vec<ParticipantId> = self
            .announced
            .iter()
            .filter(|p| !self.configured.contains_key(*p))
            .cloned()
            .collect();
        for participant in &gone {
            self.withdraw(participant).await?;
        }
        let listed: Vec<ParticipantId> = self.configured.keys().cloned().collect();
        for participant in listed {
            if self.announced.contains(&participant) {
                // Its configured preferences may have changed.
                self.publish_controls(&participant).await?;
            } else {
                self.announce(&participant, true).await?;
            }
        }
        Ok(())
    }

    /// The preferences in force for `participant`: its last message over its configured ones.
    fn in_force(&self, participant: &ParticipantId) -> Option<Preferences> {
        let configured = *self.configured.get(participant)?;
        let wish = self.wishes.get(participant).copied().unwrap_or_default();
        Some(wish.apply(configured, self.tariffs()).unwrap_or(configured))
    }

    async fn publish_controls(&self, participant: &ParticipantId) -> Result<(), PublishError> {
        let (Some(preferences), Ok(topic)) = (
            self.in_force(participant),
            controls_topic(&self.discovery.results_prefix, participant),
        ) else {
            return Ok(());
        };
        self.publisher
            .json(&topic, &Controls::of(preferences), true)
            .await
    }

    /// Reads one pending household's totals from the node and publishes them; `Ok(false)` if
    /// the node did not answer (ask again later).
    async fn read_totals(&mut self) -> Result<bool, PublishError> {
        let Some(participant) = self.pending.pop_first() else {
            return Ok(true);
        };
        match self.sink.balance(&participant).await {
            Ok(balance) => {
                if let Ok(topic) = totals_topic(&self.discovery.results_prefix, &participant) {
                    self.publisher
                        .json(&topic, &Totals::of(&balance), true)
                        .await?;
                }
                Ok(true)
            }
            Err(SinkError::Unsupported) => {
                debug!("the order sink has no balances: no totals for home assistant");
                self.pending.clear();
                Ok(true)
            }
            Err(e) => {
                warn!(%participant, cause = %e, "totals not read from the node; retrying");
                self.pending.insert(participant);
                Ok(false)
            }
        }
    }

    /// Handles a message of the Home Assistant connection.
    async fn message(&mut self, publish: &Publish) -> Result<(), PublishError> {
        let topic = publish.topic.as_str();
        if topic == self.discovery.birth_topic() {
            if publish.payload.as_ref() == BIRTH.as_bytes() {
                info!("home assistant is online; publishing discovery again");
                self.announce_all(false).await?;
            }
            return Ok(());
        }
        let prefix = self.discovery.households_prefix.clone();
        match parse_control_command(&prefix, topic) {
            Some(Ok((participant, control))) => {
                return self
                    .command(&participant, control, topic, &publish.payload)
                    .await;
            }
            Some(Err(name)) => {
                let reason = format!("unknown control {name:?}");
                return self
                    .refuse(ErrorKind::Malformed, reason, None, topic, &publish.payload)
                    .await;
            }
            None => {}
        }
        if let Some(HouseholdTopic::Preferences(participant)) = parse_topic(&prefix, topic) {
            if !self.configured.contains_key(&participant) {
                return Ok(());
            }
            // A refused message is the subscribing connection's dead letter; it changes nothing.
            let Ok(wish) = PreferencesMessage::parse(&publish.payload) else {
                return Ok(());
            };
            self.wishes.insert(participant.clone(), wish);
            self.publish_controls(&participant).await?;
        }
        Ok(())
    }

    /// Carries out a control command (module docs).
    async fn command(
        &mut self,
        participant: &ParticipantId,
        control: Control,
        topic: &str,
        payload: &[u8],
    ) -> Result<(), PublishError> {
        let Some(configured) = self.configured.get(participant).copied() else {
            let reason = format!("{participant} is not a household of this bridge");
            return self
                .refuse(
                    ErrorKind::UnknownParticipant,
                    reason,
                    Some(participant),
                    topic,
                    payload,
                )
                .await;
        };
        let wish = self.wishes.get(participant).copied().unwrap_or_default();
        match apply_command(wish, control, payload, configured, self.tariffs()) {
            Ok((next, preferences)) => {
                let target = preferences_topic(&self.discovery.households_prefix, participant);
                self.publisher.json(&target, &next, true).await?;
                self.wishes.insert(participant.clone(), next);
                info!(
                    %participant,
                    control = control.as_str(),
                    enabled = preferences.enabled,
                    buy_limit = %preferences.buy_limit,
                    sell_limit = %preferences.sell_limit,
                    "home assistant command written to the preferences"
                );
                self.publish_controls(participant).await
            }
            Err(e) => {
                let kind = match &e {
                    CommandError::Refused(PreferencesError::OutsideTariffs { .. }) => {
                        ErrorKind::BadValue
                    }
                    CommandError::Malformed { .. } | CommandError::Refused(_) => {
                        ErrorKind::Malformed
                    }
                };
                self.refuse(kind, e.to_string(), Some(participant), topic, payload)
                    .await
            }
        }
    }

    async fn refuse(
        &self,
        kind: ErrorKind,
        reason: String,
        participant: Option<&ParticipantId>,
        topic: &str,
        payload: &[u8],
    ) -> Result<(), PublishError> {
        warn!(
            participant = participant.map_or("unknown", ParticipantId::as_str),
            %kind,
            %topic,
            %reason,
            "home assistant command refused"
        );
        let mut letter = DeadLetter::new(kind, reason, None, topic, payload, self.clock.now());
        letter.participant = participant.cloned();
        self.publisher.dead_letter(&letter).await
    }
}

/// What woke the task.
enum Step {
    Event(HaEvent),
    Households(Registry),
    Traded(ParticipantId),
    Totals,
}

/// Runs the Home Assistant task until shutdown (module docs): `events` from its connection,
/// `traded` households from the results task, `households` reloads, if any.
pub(crate) async fn run_home_assistant<S: OrderSink>(
    mut ha: HomeAssistant<S>,
    mut events: mpsc::Receiver<HaEvent>,
    traded: mpsc::Receiver<ParticipantId>,
    households: Option<watch::Receiver<Registry>>,
    mut shutdown: Shutdown,
) {
    let mut traded = Some(traded);
    let mut households = households;
    let mut backoff = Backoff::new(BALANCE_RETRY_MIN, BALANCE_RETRY_MAX);
    let mut retry_at: Option<Instant> = None;
    loop {
        let read_at = retry_at.unwrap_or_else(Instant::now);
        let step = tokio::select! {
            biased;
            () = shutdown.recv() => return,
            event = events.recv() => match event {
                Some(event) => Step::Event(event),
                None => return,
            },
            registry = next_registry(&mut households) => match registry {
                Some(registry) => Step::Households(registry),
                None => {
                    households = None;
                    continue;
                }
            },
            participant = next_traded(&mut traded) => match participant {
                Some(p) => Step::Traded(p),
                None => {
                    traded = None;
                    continue;
                }
            },
            () = tokio::time::sleep_until(read_at), if !ha.pending.is_empty() => Step::Totals,
        };
        let done = match step {
            Step::Event(HaEvent::Connected) => ha.announce_all(true).await,
            Step::Event(HaEvent::Message(publish)) => ha.message(&publish).await,
            Step::Households(registry) => ha.households(&registry).await,
            Step::Traded(participant) => {
                if ha.configured.contains_key(&participant) {
                    ha.pending.insert(participant);
                }
                Ok(())
            }
            Step::Totals => match ha.read_totals().await {
                Ok(true) => {
                    backoff.reset();
                    retry_at = None;
                    Ok(())
                }
                Ok(false) => {
                    retry_at = Some(Instant::now() + backoff.next_delay());
                    Ok(())
                }
                Err(e) => Err(e),
            },
        };
        if let Err(e) = done {
            // The publishing connection only stops at shutdown.
            debug!(cause = %e, "home assistant task stops");
            return;
        }
    }
}

/// The next reloaded registry; `None` once the reload task is gone; never completes without one.
async fn next_registry(households: &mut Option<watch::Receiver<Registry>>) -> Option<Registry> {
    match households {
        Some(rx) => match rx.changed().await {
            Ok(()) => Some(rx.borrow_and_update().clone()),
            Err(_) => None,
        },
        None => std::future::pending().await,
    }
}

/// The next household that traded; `None` once the results task is gone.
async fn next_traded(traded: &mut Option<mpsc::Receiver<ParticipantId>>) -> Option<ParticipantId> {
    match traded {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
