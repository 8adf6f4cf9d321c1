//! The bridge's configuration file (`bridge.toml`).
//!
//! [`Config::from_toml`] parses the file ([`RawConfig`], every key with a default, unknown keys
//! refused) and [`RawConfig::validate`]s it into a [`Config`] whose invariants the rest of the
//! bridge relies on. [`DEFAULT_CONFIG`] is the commented default file, printed by
//! `voltmesh bridge --print-example-config`; [`Config::load`] reads a file.
//!
//! # Invariants of a [`Config`]
//! * The client id is 1..=64 bytes; the broker port is non-zero; the backoff is `0 < min <= max`.
//! * Every subscription filter is a valid MQTT topic filter; the dead-letter topic and the results
//!   prefix are valid topic names (no wildcards, no NUL, not empty).
//! * Every queue is at least 1 message.
//! * A client key comes with a client certificate; a password comes with a username.
//! * The household registry is valid ([`Registry::from_config`]).
//! * `ingest.formats` holds each subscription's literal prefix (the filter up to its first
//!   wildcard) mapped to its format, for subscriptions with a format and a non-empty prefix.
//! * `market` and `settlement` are the neighborhood genesis's (`node.genesis`) when one is given.
//!
//! # Genesis
//! `node.genesis` names the neighborhood's `genesis.json` (relative to the config file's
//! directory): the bridge reads the market interval, the tariffs and the network fee from it, and
//! checks `node.neighborhood` against it. The older `[market]` and `[settlement]` tables are
//! deprecated: without `node.genesis` they (or their defaults) are used with a warning; with it,
//! they are refused if they disagree with genesis (the error says to remove them).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::warn;
use voltmesh_engine::{IntervalSpec, Price, Tariffs};
use voltmesh_wire::Genesis;

use crate::decode::Format;
use crate::household::registry::{Registry, RegistryConfig, RegistryError};
use crate::household::topic::{check_filter, check_topic_name, literal_prefix};
use crate::ingest::IngestConfig;
pub use voltmesh_metrics::MetricsSection;

/// The commented default `bridge.toml`.
pub const DEFAULT_CONFIG: &str = include_str!("../bridge.toml");

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

/// `[broker]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerConfig {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Fixed client id of the persistent session.
    pub client_id: String,
    /// Username, if the broker wants one.
    pub username: Option<String>,
    /// Password (needs `username`).
    pub password: Option<String>,
    /// MQTT keep-alive, seconds.
    pub keep_alive_secs: u64,
    /// Largest packet accepted or sent, bytes.
    pub max_packet_bytes: usize,
    /// First reconnect delay, ms.
    pub reconnect_min_ms: u64,
    /// Largest reconnect delay, ms.
    pub reconnect_max_ms: u64,
    /// TLS, if wanted.
    pub tls: Option<TlsConfig>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            host: "127.0.0.1".to_owned(),
            port: 1883,
            client_id: "voltmesh-bridge".to_owned(),
            username: None,
            password: None,
            keep_alive_secs: 30,
            max_packet_bytes: 256 * 1024,
            reconnect_min_ms: 100,
            reconnect_max_ms: 30_000,
            tls: None,
        }
    }
}

impl BrokerConfig {
    /// The reconnect backoff bounds.
    pub fn backoff(&self) -> (Duration, Duration) {
        (
            Duration::from_millis(self.reconnect_min_ms),
            Duration::from_millis(self.reconnect_max_ms),
        )
    }
}

/// `[broker.tls]`: files are read when the bridge connects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the CA certificate(s) that sign the broker's certificate.
    pub ca_file: PathBuf,
    /// PEM client certificate chain, for brokers that require client certificates.
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate.
    pub client_key_file: Option<PathBuf>,
}

/// One `[[subscription]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    /// MQTT topic filter (wildcards allowed), subscribed at QoS 1.
    pub filter: String,
    /// The payload format; `None` sniffs it per message.
    pub format: Option<Format>,
}

/// `[topics]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Topics {
    /// Where dead letters go.
    pub dead_letter: String,
    /// Prefix of every results topic.
    pub results_prefix: String,
    /// Prefix of the households' own topics (orders, preferences; see
    /// [`crate::household::topic`]), which the bridge subscribes to.
    pub households_prefix: String,
}

impl Default for Topics {
    fn default() -> Self {
        Topics {
            dead_letter: "voltmesh/dead-letter".to_owned(),
            results_prefix: "voltmesh".to_owned(),
            households_prefix: "voltmesh".to_owned(),
        }
    }
}

/// `[queues]`: capacities of the bridge's bounded queues, in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Queues {
    /// Accepted readings waiting for their consumer.
    pub readings: usize,
    /// Dead letters and results waiting for the publishing connection.
    pub publish: usize,
    /// Signed orders waiting for the node.
    pub orders: usize,
}

impl Default for Queues {
    fn default() -> Self {
        Queues {
            readings: 1024,
            publish: 1024,
            orders: 16,
        }
    }
}

/// `[node]`: which node the bridge submits orders to and how it signs them.
///
/// # Invariants (after validation)
/// `api_url` starts with `http://` or `https://`; `neighborhood` is not empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Base URL of the node's HTTP API (its `api` setting), e.g. `http://127.0.0.1:7600`.
    pub api_url: String,
    /// The neighborhood's name as in genesis: signatures are bound to it.
    pub neighborhood: String,
    /// The bridge's ed25519 key, in the format `voltmesh keygen` writes (64 hex characters). Its
    /// public key must be listed in genesis for every participant the bridge serves. A relative
    /// path is relative to the config file's directory.
    pub key_file: PathBuf,
    /// The neighborhood's genesis file, where the market interval, tariffs and network fee come
    /// from (module docs). A relative path is relative to the config file's directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub genesis: Option<PathBuf>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            api_url: "http://127.0.0.1:7600".to_owned(),
            neighborhood: "voltmesh".to_owned(),
            key_file: PathBuf::from("bridge.key"),
            genesis: None,
        }
    }
}

/// `[settlement]` (deprecated: use `node.genesis`): the genesis market's tariffs and network
/// fee, for households' bills.
///
/// # Invariant (after validation)
/// `feed_in <= retail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SettlementConfig {
    /// What the utility pays per kWh fed in (genesis `market.rules.tariffs.feed_in`).
    pub feed_in: Price,
    /// What the utility charges per kWh taken (genesis `market.rules.tariffs.retail`).
    pub retail: Price,
    /// Fee per locally traded kWh, paid by the buyer (genesis `market.network_fee`).
    pub network_fee: Price,
}

impl Default for SettlementConfig {
    /// 0.08 feed-in, 0.32 retail, 0.01 network fee (the README's example genesis).
    fn default() -> Self {
        // In range by construction (|p| ≤ Price::MAX).
        let micros = |m| Price::from_micros(m).unwrap_or(Price::ZERO);
        SettlementConfig {
            feed_in: micros(80_000),
            retail: micros(320_000),
            network_fee: micros(10_000),
        }
    }
}

impl SettlementConfig {
    /// The tariffs and network fee of a genesis.
    pub fn of(genesis: &Genesis) -> SettlementConfig {
        SettlementConfig {
            feed_in: genesis.market.rules.tariffs.feed_in,
            retail: genesis.market.rules.tariffs.retail,
            network_fee: genesis.market.network_fee,
        }
    }

    /// The tariffs.
    pub fn tariffs(self) -> Tariffs {
        Tariffs {
            feed_in: self.feed_in,
            retail: self.retail,
        }
    }
}

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
    /// `[queues]`.
    pub queues: Queues,
    /// `[node]`.
    pub node: NodeConfig,
    /// The market interval: genesis's (`node.genesis`), else `[market]` or its default.
    pub market: IntervalSpec,
    /// Tariffs and network fee: genesis's (`node.genesis`), else `[settlement]` or its default.
    pub settlement: SettlementConfig,
    /// `[ingest]`, with the subscriptions' formats merged into `formats`.
    pub ingest: IngestConfig,
    /// `[metrics]` (before `VOLTMESH_INFLUX_*` fallbacks; see [`MetricsSection::to_config`]).
    pub metrics: MetricsSection,
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

    /// The market interval and settlement values: genesis's if `node.genesis` is given (the
    /// deprecated tables must then agree with it), else the deprecated tables' or their defaults,
    /// with a warning. Resolves `node.genesis` against `dir`.
    fn market_and_settlement(
        &mut self,
        dir: &Path,
    ) -> Result<(IntervalSpec, SettlementConfig), ConfigError> {
        let Some(file) = &self.node.genesis else {
            let tables: Vec<&str> = [
                self.market.is_some().then_some("[market]"),
                self.settlement.is_some().then_some("[settlement]"),
            ]
            .into_iter()
            .flatten()
            .collect();
            if tables.is_empty() {
                warn!(
                    "node.genesis is not set: using the default market interval and tariffs, \
                     which must match genesis; set node.genesis = \"genesis.json\""
                );
            } else {
                warn!(
                    tables = %tables.join(" and "),
                    "deprecated bridge config tables: set node.genesis = \"genesis.json\" \
                     and remove them (the bridge then reads them from genesis)"
                );
            }
            return Ok((
                self.market.unwrap_or(IntervalSpec::DEFAULT),
                self.settlement.unwrap_or_default(),
            ));
        };
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::Genesis {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let genesis = Genesis::from_json(&text).map_err(|e| ConfigError::Genesis {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if self.node.neighborhood != genesis.neighborhood {
            return Err(ConfigError::NeighborhoodDisagrees {
                path,
                config: self.node.neighborhood.clone(),
                genesis: genesis.neighborhood,
            });
        }
        let market = genesis.market.interval;
        let settlement = SettlementConfig::of(&genesis);
        let show_market = |m: IntervalSpec| {
            format!(
                "length_secs = {}, gate_closure_lead_secs = {}",
                m.length_secs(),
                m.gate_closure_lead_secs()
            )
        };
        let show_settlement = |s: SettlementConfig| {
            format!(
                "feed_in = {}, retail = {}, network_fee = {}",
                s.feed_in, s.retail, s.network_fee
            )
        };
        if let Some(own) = self.market.filter(|&m| m != market) {
            return Err(ConfigError::DisagreesWithGenesis {
                table: "market",
                path,
                config: show_market(own),
                genesis: show_market(market),
            });
        }
        if let Some(own) = self.settlement.filter(|&s| s != settlement) {
            return Err(ConfigError::DisagreesWithGenesis {
                table: "settlement",
                path,
                config: show_settlement(own),
                genesis: show_settlement(settlement),
            });
        }
        if self.market.is_some() || self.settlement.is_some() {
            warn!(
                genesis = %path.display(),
                "[market] and [settlement] are deprecated and repeat node.genesis; remove them"
            );
        }
        self.node.genesis = Some(path);
        Ok((market, settlement))
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
        let url = &self.node.api_url;
        let host = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        if host.is_none_or(|h| h.is_empty() || h.starts_with('/')) {
            return Err(ConfigError::BadNodeUrl(url.clone()));
        }
        if self.node.neighborhood.is_empty() {
            return Err(ConfigError::EmptyNeighborhood);
        }
        let (market, settlement) = self.market_and_settlement(dir)?;
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
            queues: self.queues,
            node: self.node,
            market,
            settlement,
            ingest,
            metrics: self.metrics,
            registry,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_file_is_valid_and_complete() {
        let config = Config::from_toml(DEFAULT_CONFIG).unwrap();
        assert_eq!(config.broker, BrokerConfig::default());
        assert_eq!(config.queues, Queues::default());
        assert_eq!(config.topics, Topics::default());
        assert_eq!(config.node, NodeConfig::default());
        assert_eq!(config.market, IntervalSpec::DEFAULT);
        assert_eq!(config.settlement, SettlementConfig::default());
        assert_eq!(config.subscriptions.len(), 5);
        // `+/events/rpc` has no literal prefix: sniffed, not mapped.
        assert_eq!(config.ingest.formats.len(), 4);
        assert_eq!(config.ingest.formats.get("tele/"), Some(&Format::Tasmota));
        assert_eq!(config.ingest.formats.get("dsmr/"), Some(&Format::Dsmr));
    }

    fn with(extra: &str) -> Result<Config, ConfigError> {
        Config::from_toml(&format!(
            "{extra}\n[[subscription]]\nfilter = \"m/#\"\nformat = \"native\"\n"
        ))
    }

    #[test]
    fn refuses_what_breaks_an_invariant() {
        assert!(with("").is_ok());
        assert!(matches!(
            Config::from_toml("[broker]\nport = 1\n"),
            Err(ConfigError::NoSubscriptions)
        ));
        assert!(matches!(
            with("[broker]\nprot = 1"),
            Err(ConfigError::Parse(_))
        ));
        assert!(matches!(
            with("[broker]\nclient_id = \"\""),
            Err(ConfigError::BadClientId(0))
        ));
        assert!(matches!(
            with("[broker]\nport = 0"),
            Err(ConfigError::ZeroPort)
        ));
        assert!(matches!(
            with("[broker]\nreconnect_min_ms = 10\nreconnect_max_ms = 5"),
            Err(ConfigError::BadBackoff { .. })
        ));
        assert!(matches!(
            with("[broker]\npassword = \"x\""),
            Err(ConfigError::PasswordWithoutUsername)
        ));
        assert!(matches!(
            with("[broker]\nmax_packet_bytes = 100"),
            Err(ConfigError::PacketLimitTooSmall { .. })
        ));
        assert!(matches!(
            with("[broker.tls]\nca_file = \"ca.pem\"\nclient_key_file = \"k.pem\""),
            Err(ConfigError::ClientCertWithoutKey)
        ));
        assert!(matches!(
            with("[topics]\ndead_letter = \"dl/#\""),
            Err(ConfigError::BadTopic { .. })
        ));
        assert!(matches!(
            with("[queues]\nreadings = 0"),
            Err(ConfigError::ZeroQueue("readings"))
        ));
        assert!(matches!(
            with("[node]\napi_url = \"ftp://x\""),
            Err(ConfigError::BadNodeUrl(_))
        ));
        assert!(matches!(
            with("[node]\napi_url = \"http://\""),
            Err(ConfigError::BadNodeUrl(_))
        ));
        assert!(matches!(
            with("[node]\nneighborhood = \"\""),
            Err(ConfigError::EmptyNeighborhood)
        ));
        assert!(matches!(
            with("[settlement]\nfeed_in = \"0.5\"\nretail = \"0.3\""),
            Err(ConfigError::FeedInAboveRetail { .. })
        ));
        let dup = "[[household]]\nparticipant = \"a\"\nmeters = [\"m1\"]\nbuy_limit = \"0.3\"\nsell_limit = \"0.1\"\n";
        assert!(matches!(
            with(&format!("{dup}{}", dup.replace("\"a\"", "\"b\""))),
            Err(ConfigError::Registry(RegistryError::DuplicateMeter { .. }))
        ));
    }

    #[test]
    fn load_resolves_the_key_file_next_to_the_config() {
        let dir = std::env::temp_dir().join(format!("vm-bridge-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bridge.toml");
        std::fs::write(&path, DEFAULT_CONFIG).unwrap();
        let config = Config::load(&path).unwrap();
        assert_eq!(config.node.key_file, dir.join("bridge.key"));
        std::fs::write(
            &path,
            DEFAULT_CONFIG.replace("\"bridge.key\"", "\"/k/b.key\""),
        )
        .unwrap();
        assert_eq!(
            Config::load(&path).unwrap().node.key_file,
            Path::new("/k/b.key")
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(Config::load(&path), Err(ConfigError::Read { .. })));
    }

    /// A valid genesis for neighborhood `nb`: 600 s intervals, 0.07/0.30 tariffs, 0.02 fee.
    fn genesis_json() -> String {
        use voltmesh_engine::{MarketConfig, MarketRules, Mechanism, K};
        use voltmesh_wire::{GenesisValidator, PublicKey};
        let key = |n: u8| {
            PublicKey(
                ed25519_dalek::SigningKey::from_bytes(&[n; 32])
                    .verifying_key()
                    .to_bytes(),
            )
        };
        let p = |s: &str| s.parse::<Price>().unwrap();
        let genesis = Genesis {
            neighborhood: "nb".into(),
            genesis_time: "2026-09-21T00:00:00Z".parse().unwrap(),
            market: MarketConfig {
                mechanism: Mechanism::Uniform { k: K::HALF },
                rules: MarketRules {
                    tariffs: Tariffs::new(p("0.07"), p("0.30")).unwrap(),
                    max_order_wh: 1_000_000,
                },
                network_fee: p("0.02"),
                interval: IntervalSpec::new(600, 120).unwrap(),
            },
            validators: vec![GenesisValidator {
                public_key: key(1),
                address: "/ip4/127.0.0.1/tcp/7100".into(),
            }],
            participants: [("h1".into(), vec![key(2)])].into(),
        };
        serde_json::to_string(&genesis).unwrap()
    }

    #[test]
    fn genesis_supplies_the_market_and_settlement() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("genesis.json"), genesis_json()).unwrap();
        let path = dir.path().join("bridge.toml");
        let base = "[node]\nneighborhood = \"nb\"\ngenesis = \"genesis.json\"\n\n\
                    [[subscription]]\nfilter = \"m/#\"\n";
        std::fs::write(&path, base).unwrap();
        let config = Config::load(&path).unwrap();
        assert_eq!(config.market, IntervalSpec::new(600, 120).unwrap());
        assert_eq!(config.settlement.feed_in, "0.07".parse().unwrap());
        assert_eq!(config.settlement.retail, "0.30".parse().unwrap());
        assert_eq!(config.settlement.network_fee, "0.02".parse().unwrap());
        assert_eq!(
            config.node.genesis.as_deref(),
            Some(dir.path().join("genesis.json").as_path())
        );

        // Deprecated tables that agree are accepted; ones that disagree are refused, and the
        // error says what to do.
        let agreeing = format!(
            "{base}[market]\nlength_secs = 600\ngate_closure_lead_secs = 120\n\
             [settlement]\nfeed_in = \"0.07\"\nretail = \"0.3\"\nnetwork_fee = \"0.020000\"\n"
        );
        std::fs::write(&path, &agreeing).unwrap();
        assert!(Config::load(&path).is_ok());
        std::fs::write(&path, agreeing.replace("600", "900")).unwrap();
        let e = Config::load(&path).unwrap_err();
        assert!(
            matches!(
                e,
                ConfigError::DisagreesWithGenesis {
                    table: "market",
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("remove [market]"), "{e}");
        std::fs::write(&path, agreeing.replace("\"0.3\"", "\"0.32\"")).unwrap();
        let e = Config::load(&path).unwrap_err();
        assert!(
            matches!(
                e,
                ConfigError::DisagreesWithGenesis {
                    table: "settlement",
                    ..
                }
            ),
            "{e}"
        );

        std::fs::write(&path, base.replace("\"nb\"", "\"other\"")).unwrap();
        let e = Config::load(&path).unwrap_err();
        assert!(
            matches!(e, ConfigError::NeighborhoodDisagrees { .. }),
            "{e}"
        );
        assert!(e.to_string().contains("write neighborhood = \"nb\""), "{e}");

        std::fs::write(&path, base.replace("genesis.json", "missing.json")).unwrap();
        assert!(matches!(
            Config::load(&path),
            Err(ConfigError::Genesis { .. })
        ));
        std::fs::write(dir.path().join("genesis.json"), "{}").unwrap();
        std::fs::write(&path, base).unwrap();
        assert!(matches!(
            Config::load(&path),
            Err(ConfigError::Genesis { .. })
        ));
    }

    #[test]
    fn deprecated_tables_still_work_without_genesis() {
        let config = with(
            "[market]\nlength_secs = 600\ngate_closure_lead_secs = 120\n\
             [settlement]\nretail = \"0.40\"",
        )
        .unwrap();
        assert_eq!(config.market, IntervalSpec::new(600, 120).unwrap());
        assert_eq!(config.settlement.retail, "0.40".parse().unwrap());
        assert_eq!(
            config.settlement.feed_in,
            SettlementConfig::default().feed_in
        );
        assert_eq!(config.node.genesis, None);
    }
}
