//! The bridge's configuration file (`bridge.toml`).
//!
//! [`Config::from_toml`] parses the file ([`RawConfig`], every key with a default, unknown keys
//! refused) and [`RawConfig::validate`]s it into a [`Config`] whose invariants the rest of the
//! bridge relies on. [`DEFAULT_CONFIG`] is the commented default file, printed by
//! `voltmesh bridge --print-example-config`; [`Config::load`] reads a file.
//!
//! # Invariants of a [`Config`]
//! * The client id is 1..=64 bytes; the broker port is non-zero; the backoff is `0 < min <= max`.
//! * Every subscription filter is a valid MQTT topic filter; the dead-letter topic, the results
//!   and households prefixes and the Home Assistant discovery prefix are valid topic names (no
//!   wildcards, no NUL, not empty).
//! * Every queue is at least 1 message.
//! * A client key comes with a client certificate; a password comes with a username.
//! * The household registry is valid ([`Registry::from_config`]).
//! * `ingest.formats` holds each subscription's literal prefix (the filter up to its first
//!   wildcard) mapped to its format, for subscriptions with a format and a non-empty prefix.
//! * `market`, `settlement` and `deliveries` are the neighborhood genesis's (`node.genesis`) when
//!   one is given.
//!
//! # Genesis
//! `node.genesis` names the neighborhood's `genesis.json` (relative to the config file's
//! directory): the bridge reads the market interval, the tariffs and the network fee from it, and
//! checks `node.neighborhood` against it. The tariffs and fee are only where the bridge starts:
//! before each interval it follows the node's rule schedule ([`crate::community`]), and falls back
//! on what it last knew (genesis's, at start) while no node answers. The `[[household]]` list can
//! be reloaded while the bridge runs ([`crate::runtime::reload`]). The older `[market]` and `[settlement]` tables are
//! deprecated: without `node.genesis` they (or their defaults) are used with a warning; with it,
//! they are refused if they disagree with genesis (the error says to remove them).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use voltmesh_engine::{IntervalSpec, Price, Tariffs};
use voltmesh_wire::delivery::DeliveryRules;

use crate::household::registry::{Registry, RegistryConfig, RegistryError};
use crate::household::topic::{check_filter, check_topic_name, literal_prefix};
use crate::ingest::IngestConfig;
pub use voltmesh_metrics::MetricsSection;

/// The commented default `bridge.toml`.
pub const DEFAULT_CONFIG: &str = include_str!("../../bridge.toml");

/// Longest client id accepted (MQTT 3.1.1 brokers must accept 23 bytes; Mosquitto takes more).
pub const MAX_CLIENT_ID_LEN: usize = 64;

/// Why a configuration is refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read (the cause is the error's source).
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML does not parse or has unknown keys or wrong types.
    #[error("bridge config: {0}")]
    Parse(#[from] toml::de::Error),
    /// The client id is empty or too long.
    #[error("broker.client_id must be 1..={MAX_CLIENT_ID_LEN} bytes, got {0} bytes")]
    BadClientId(usize),
    /// Port zero.
    #[error("broker.port must not be 0")]
    ZeroPort,
    /// The host is empty.
    #[error("broker.host must not be empty")]
    EmptyHost,
    /// Backoff bounds out of order or zero.
    #[error("broker.reconnect_min_ms ({min}) must be > 0 and <= reconnect_max_ms ({max})")]
    BadBackoff {
        /// The minimum.
        min: u64,
        /// The maximum.
        max: u64,
    },
    /// The packet limit cannot hold a meter payload.
    #[error("broker.max_packet_bytes must be at least {min}, got {got}")]
    PacketLimitTooSmall {
        /// Smallest accepted.
        min: usize,
        /// Configured.
        got: usize,
    },
    /// A password without a username.
    #[error("broker.password is set but broker.username is not")]
    PasswordWithoutUsername,
    /// A client key without a certificate or the other way round.
    #[error("broker.tls.client_cert_file and client_key_file must be given together")]
    ClientCertWithoutKey,
    /// A topic or filter that MQTT refuses.
    #[error("{field}: {topic:?} is not a valid MQTT {what}: {reason}")]
    BadTopic {
        /// Which setting.
        field: &'static str,
        /// The text.
        topic: String,
        /// "topic filter" or "topic name".
        what: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// No subscriptions: the bridge would receive nothing.
    #[error("at least one [[subscription]] is required")]
    NoSubscriptions,
    /// A zero-sized queue.
    #[error("queues.{0} must be at least 1")]
    ZeroQueue(&'static str),
    /// A node URL that is not `http://` or `https://`.
    #[error("node.api_url: {0:?} must start with http:// or https://")]
    BadNodeUrl(String),
    /// `settlement.feed_in` above `settlement.retail`.
    #[error("settlement.feed_in ({feed_in}) must not exceed settlement.retail ({retail})")]
    FeedInAboveRetail {
        /// Configured feed-in tariff.
        feed_in: Price,
        /// Configured retail price.
        retail: Price,
    },
    /// No neighborhood name.
    #[error("node.neighborhood must not be empty")]
    EmptyNeighborhood,
    /// `node.submit_lead_secs` is 0 or not shorter than an interval.
    #[error(
        "node.submit_lead_secs = {lead} must be at least 1 and less than the {interval} s interval"
    )]
    BadSubmitLead {
        /// Configured lead, seconds.
        lead: u32,
        /// The market interval, seconds.
        interval: u32,
    },
    /// `node.genesis` cannot be read or is not a valid genesis.
    #[error("node.genesis {}: {message}", path.display())]
    Genesis {
        /// The genesis file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A deprecated table disagrees with `node.genesis`.
    #[error(
        "[{table}] ({config}) disagrees with genesis {} ({genesis}); remove [{table}]: \
         the bridge reads it from node.genesis",
        path.display()
    )]
    DisagreesWithGenesis {
        /// `market` or `settlement`.
        table: &'static str,
        /// The genesis file.
        path: PathBuf,
        /// What the bridge config says.
        config: String,
        /// What genesis says.
        genesis: String,
    },
    /// `node.neighborhood` is not the genesis's: every signature would be refused.
    #[error(
        "node.neighborhood = {config:?} but genesis {} names {genesis:?}; write \
         neighborhood = {genesis:?}",
        path.display()
    )]
    NeighborhoodDisagrees {
        /// The genesis file.
        path: PathBuf,
        /// What the bridge config says.
        config: String,
        /// What genesis says.
        genesis: String,
    },
    /// The household registry breaks an invariant.
    #[error("households: {0}")]
    Registry(#[from] RegistryError),
}

mod genesis;
mod sections;
#[cfg(test)]
mod tests;

pub use sections::{
    ApiUrls, BrokerConfig, HomeAssistantConfig, HttpConfig, NodeConfig, PriceSignalConfig, Queues,
    SettlementConfig, Subscription, TlsConfig, Topics,
};

/// The file as parsed, before [`RawConfig::validate`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    /// `[broker]`.
    pub broker: BrokerConfig,
    /// `[[subscription]]`.
    #[serde(rename = "subscription")]
    pub subscriptions: Vec<Subscription>,
    /// `[topics]`.
    pub topics: Topics,
    /// `[home_assistant]`.
    pub home_assistant: HomeAssistantConfig,
    /// `[queues]`.
    pub queues: Queues,
    /// `[node]`.
    pub node: NodeConfig,
    /// `[market]` (deprecated: use `node.genesis`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub market: Option<IntervalSpec>,
    /// `[settlement]` (deprecated: use `node.genesis`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settlement: Option<SettlementConfig>,
    /// `[ingest]`.
    pub ingest: IngestConfig,
    /// `[metrics]`.
    pub metrics: MetricsSection,
    /// `[price_signal]`.
    pub price_signal: PriceSignalConfig,
    /// `[http]`.
    pub http: HttpConfig,
    /// `[[household]]`.
    #[serde(rename = "household")]
    pub households: Vec<crate::household::registry::HouseholdConfig>,
}

/// A validated configuration (see the module invariants).
#[derive(Debug, Clone)]
pub struct Config {
    /// `[broker]`.
    pub broker: BrokerConfig,
    /// `[[subscription]]`, at least one.
    pub subscriptions: Vec<Subscription>,
    /// `[topics]`.
    pub topics: Topics,
    /// `[home_assistant]`.
    pub home_assistant: HomeAssistantConfig,
    /// `[queues]`.
    pub queues: Queues,
    /// `[node]`.
    pub node: NodeConfig,
    /// The market interval: genesis's (`node.genesis`), else `[market]` or its default.
    pub market: IntervalSpec,
    /// Tariffs and network fee: genesis's (`node.genesis`), else `[settlement]` or its default.
    pub settlement: SettlementConfig,
    /// What the ledger admits of metered deliveries, in particular how long after an interval's
    /// end its bills commit (`window_secs`): genesis's `deliveries` (`node.genesis`), else the
    /// default (one hour).
    pub deliveries: DeliveryRules,
    /// `[ingest]`, with the subscriptions' formats merged into `formats`.
    pub ingest: IngestConfig,
    /// `[metrics]` (before `VOLTMESH_INFLUX_*` fallbacks; see [`MetricsSection::to_config`]).
    pub metrics: MetricsSection,
    /// `[price_signal]`.
    pub price_signal: PriceSignalConfig,
    /// `[http]`.
    pub http: HttpConfig,
    /// The household registry.
    pub registry: Registry,
}

impl Config {
    /// Reads, parses and validates the file at `path`; a relative `node.key_file` or
    /// `node.genesis` is resolved against the file's directory.
    ///
    /// # Errors
    /// [`ConfigError::Read`] if the file cannot be read, else as [`Config::from_toml`].
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let dir = path.parent().unwrap_or_else(|| Path::new(""));
        let mut config = toml::from_str::<RawConfig>(&text)?.validate_in(dir)?;
        if config.node.key_file.is_relative() {
            config.node.key_file = dir.join(&config.node.key_file);
        }
        Ok(config)
    }

    /// Parses and validates a `bridge.toml`; a relative `node.genesis` is read from the current
    /// directory.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] for TOML or schema errors, else whatever [`RawConfig::validate`]
    /// refuses.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        toml::from_str::<RawConfig>(text)?.validate()
    }
}

impl RawConfig {
    /// Checks every invariant in the module docs and builds the registry; a relative
    /// `node.genesis` is read from the current directory.
    ///
    /// # Errors
    /// The first [`ConfigError`] found.
    pub fn validate(self) -> Result<Config, ConfigError> {
        self.validate_in(Path::new(""))
    }

    /// [`RawConfig::validate`], with a relative `node.genesis` resolved against `dir`.
    fn validate_in(mut self, dir: &Path) -> Result<Config, ConfigError> {
        let b = &self.broker;
        if b.client_id.is_empty() || b.client_id.len() > MAX_CLIENT_ID_LEN {
            return Err(ConfigError::BadClientId(b.client_id.len()));
        }
        if b.host.is_empty() {
            return Err(ConfigError::EmptyHost);
        }
        if b.port == 0 {
            return Err(ConfigError::ZeroPort);
        }
        if b.reconnect_min_ms == 0 || b.reconnect_min_ms > b.reconnect_max_ms {
            return Err(ConfigError::BadBackoff {
                min: b.reconnect_min_ms,
                max: b.reconnect_max_ms,
            });
        }
        let min_packet = crate::reading::MAX_PAYLOAD_BYTES + 1024;
        if b.max_packet_bytes < min_packet {
            return Err(ConfigError::PacketLimitTooSmall {
                min: min_packet,
                got: b.max_packet_bytes,
            });
        }
        if b.password.is_some() && b.username.is_none() {
            return Err(ConfigError::PasswordWithoutUsername);
        }
        if let Some(tls) = &b.tls {
            if tls.client_cert_file.is_some() != tls.client_key_file.is_some() {
                return Err(ConfigError::ClientCertWithoutKey);
            }
        }
        if self.subscriptions.is_empty() {
            return Err(ConfigError::NoSubscriptions);
        }
        for s in &self.subscriptions {
            check_filter(&s.filter).map_err(|reason| ConfigError::BadTopic {
                field: "subscription.filter",
                topic: s.filter.clone(),
                what: "topic filter",
                reason,
            })?;
        }
        for (field, topic) in [
            ("topics.dead_letter", &self.topics.dead_letter),
            ("topics.results_prefix", &self.topics.results_prefix),
            ("topics.households_prefix", &self.topics.households_prefix),
            (
                "home_assistant.discovery_prefix",
                &self.home_assistant.discovery_prefix,
            ),
        ] {
            check_topic_name(topic).map_err(|reason| ConfigError::BadTopic {
                field,
                topic: topic.clone(),
                what: "topic name",
                reason,
            })?;
        }
        let q = self.queues;
        for (name, value) in [
            ("readings", q.readings),
            ("publish", q.publish),
            ("orders", q.orders),
        ] {
            if value == 0 {
                return Err(ConfigError::ZeroQueue(name));
            }
        }
        for url in self.node.api_url.urls() {
            let host = url
                .strip_prefix("http://")
                .or_else(|| url.strip_prefix("https://"));
            if host.is_none_or(|h| h.is_empty() || h.starts_with('/')) {
                return Err(ConfigError::BadNodeUrl(url.clone()));
            }
        }
        if self.node.neighborhood.is_empty() {
            return Err(ConfigError::EmptyNeighborhood);
        }
        let (market, settlement, deliveries) = self.market_and_settlement(dir)?;
        if let Some(lead) = self.node.submit_lead_secs {
            if lead == 0 || lead >= market.length_secs() {
                return Err(ConfigError::BadSubmitLead {
                    lead,
                    interval: market.length_secs(),
                });
            }
        }
        let st = settlement;
        Tariffs::new(st.feed_in, st.retail).map_err(|_| ConfigError::FeedInAboveRetail {
            feed_in: st.feed_in,
            retail: st.retail,
        })?;
        let registry = Registry::from_config(RegistryConfig {
            households: self.households,
        })?;
        let mut ingest = self.ingest;
        for s in &self.subscriptions {
            let prefix = literal_prefix(&s.filter);
            if let (Some(format), false) = (s.format, prefix.is_empty()) {
                ingest.formats.insert(prefix.to_owned(), format);
            }
        }
        Ok(Config {
            broker: self.broker,
            subscriptions: self.subscriptions,
            topics: self.topics,
            home_assistant: self.home_assistant,
            queues: self.queues,
            node: self.node,
            market,
            settlement,
            deliveries,
            ingest,
            metrics: self.metrics,
            price_signal: PriceSignalConfig {
                horizon_intervals: self.price_signal.horizon_intervals.min(192),
            },
            http: self.http,
            registry,
        })
    }
}
