//! The tables of `bridge.toml` other than the households: `[broker]` (with `[broker.tls]`),
//! `[[subscription]]`, `[topics]`, `[home_assistant]`, `[queues]`, `[node]` and the deprecated
//! `[settlement]`. Each
//! is a serde struct with every key defaulted; [`super::RawConfig::validate`] checks them.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use voltmesh_engine::{Price, Tariffs};
use voltmesh_wire::{Currency, Genesis};

use crate::decode::Format;

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

/// `[home_assistant]`: Home Assistant MQTT discovery ([`crate::household::home_assistant`]).
///
/// # Invariant (after validation)
/// `discovery_prefix` is a valid MQTT topic name (no wildcards).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HomeAssistantConfig {
    /// Publish discovery configs and states for every household and the neighborhood, and take
    /// the switch and number commands. On by default: households in an energy community almost
    /// all run Home Assistant, and retained discovery configs cost the broker a few kB per
    /// household (the integrations households like, Tasmota, Shelly, dsmr-reader, are on by
    /// default too).
    pub discovery: bool,
    /// Home Assistant's discovery prefix (its MQTT integration's setting, `homeassistant` by
    /// default); the bridge also listens for its birth message on `<discovery_prefix>/status`.
    pub discovery_prefix: String,
}

impl Default for HomeAssistantConfig {
    fn default() -> Self {
        HomeAssistantConfig {
            discovery: true,
            discovery_prefix: "homeassistant".to_owned(),
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

/// `[price_signal]`: the indicative prices for home energy managers
/// ([`crate::household::price_signal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PriceSignalConfig {
    /// Intervals ahead to forecast after each planned interval (96: a day of 15-minute
    /// intervals; 0 turns the signal off). At most 192 (two days, the bridge's register window).
    pub horizon_intervals: u32,
}

impl Default for PriceSignalConfig {
    fn default() -> Self {
        PriceSignalConfig {
            horizon_intervals: 96,
        }
    }
}

/// `[http]`: the bridge's read-only HTTP server for home energy managers
/// ([`crate::runtime::http`]): the market topics' latest payloads (the price signal in its own,
/// evcc's and EMHASS's formats, the last clearing), for managers that poll a URL rather than
/// subscribe to MQTT.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Where to listen, e.g. `"0.0.0.0:7710"` (absent: no HTTP server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<std::net::SocketAddr>,
}

/// `[node] api_url`: one node API URL (`"http://…"`) or a list of them, tried in order
/// ([`crate::runtime::failover`]).
///
/// # Invariant
/// Not empty (an empty list does not deserialize).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiUrls(Vec<String>);

impl ApiUrls {
    /// The URLs, in failover order.
    pub fn urls(&self) -> &[String] {
        &self.0
    }

    /// The first URL: the node tried first.
    pub fn primary(&self) -> &str {
        &self.0[0]
    }
}

impl From<&str> for ApiUrls {
    fn from(url: &str) -> Self {
        ApiUrls(vec![url.to_owned()])
    }
}

impl Serialize for ApiUrls {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => serializer.serialize_str(one),
            many => many.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for ApiUrls {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        match OneOrMany::deserialize(deserializer)? {
            OneOrMany::One(url) => Ok(ApiUrls(vec![url])),
            OneOrMany::Many(urls) if urls.is_empty() => Err(serde::de::Error::custom(
                "node.api_url: the list names no node",
            )),
            OneOrMany::Many(urls) => Ok(ApiUrls(urls)),
        }
    }
}

/// `[node]`: which nodes the bridge submits orders to and how it signs them.
///
/// # Invariants (after validation)
/// Every `api_url` starts with `http://` or `https://`; `neighborhood` is not empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Base URL of the node's HTTP API (its `api` setting), e.g. `http://127.0.0.1:7600`, or a
    /// list of the neighborhood's nodes' URLs: the bridge moves to the next one when a node is
    /// down or overloaded ([`crate::runtime::failover`]).
    pub api_url: ApiUrls,
    /// The neighborhood's name as in genesis: signatures are bound to it.
    pub neighborhood: String,
    /// The bridge's ed25519 key, in the format `voltmesh keygen` writes (64 hex characters). Its
    /// public key must be listed in genesis for every participant the bridge serves. A relative
    /// path is relative to the config file's directory.
    pub key_file: PathBuf,
    /// The neighborhood's genesis file, where the market interval and the starting tariffs and
    /// network fee (then followed from the node, [`crate::community`]) come
    /// from (module docs). A relative path is relative to the config file's directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub genesis: Option<PathBuf>,
    /// How long before each gate closure the bridge plans and submits the interval's orders,
    /// seconds. Without it: a quarter of the time from the previous interval's start to the
    /// gate, at most 60 s (60 s for 15-minute intervals with a 5-minute lead). A large
    /// neighborhood on accelerated intervals raises it so that every order is committed before
    /// the gate; it must be shorter than an interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submit_lead_secs: Option<u32>,
    /// Sign and submit every household's metered energy after each interval
    /// ([`crate::runtime::deliveries`]): what the ledger's bills are computed from.
    pub submit_deliveries: bool,
    /// After each interval's bills commit (genesis `deliveries.window_secs` after its end), read
    /// every household's committed bill from the node and publish it on the household's `bill`
    /// topic ([`crate::runtime::bills`]).
    pub publish_bills: bool,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            api_url: ApiUrls::from("http://127.0.0.1:7600"),
            neighborhood: "voltmesh".to_owned(),
            key_file: PathBuf::from("bridge.key"),
            genesis: None,
            submit_lead_secs: None,
            submit_deliveries: true,
            publish_bills: true,
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
    /// The currency of prices and bills (genesis `currency`; EUR by default).
    pub currency: Currency,
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
            currency: Currency::EUR,
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
            currency: genesis.currency,
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
