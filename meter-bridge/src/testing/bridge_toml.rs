//! [`BridgeToml`]: a `bridge.toml` built from typed parts and rendered as the text an operator
//! would write, one table after the other, only the keys that are set.

use std::fmt::{self, Write as _};

use crate::config::{Config, ConfigError};

/// `[broker]`.
#[derive(Debug, Clone, Default)]
pub struct BrokerSection {
    /// `host` (the bridge's default, `localhost`, when `None`).
    pub host: Option<String>,
    /// `port`.
    pub port: u16,
    /// `client_id`.
    pub client_id: String,
    /// `keep_alive_secs`.
    pub keep_alive_secs: Option<u64>,
    /// `reconnect_min_ms` and `reconnect_max_ms`.
    pub reconnect_ms: Option<(u64, u64)>,
}

impl BrokerSection {
    /// A broker on `port` for client `client_id`, every other key at the bridge's default.
    pub fn new(port: u16, client_id: &str) -> Self {
        BrokerSection {
            port,
            client_id: client_id.to_owned(),
            ..BrokerSection::default()
        }
    }

    /// Sets `host`.
    #[must_use]
    pub fn host(mut self, host: &str) -> Self {
        self.host = Some(host.to_owned());
        self
    }

    /// Sets `keep_alive_secs`.
    #[must_use]
    pub fn keep_alive_secs(mut self, secs: u64) -> Self {
        self.keep_alive_secs = Some(secs);
        self
    }

    /// Sets `reconnect_min_ms` and `reconnect_max_ms`.
    #[must_use]
    pub fn reconnect_ms(mut self, min: u64, max: u64) -> Self {
        self.reconnect_ms = Some((min, max));
        self
    }
}

/// `[node]`: the node API the bridge submits orders to.
#[derive(Debug, Clone)]
pub struct NodeSection {
    /// `api_url`.
    pub api_url: String,
    /// `neighborhood`.
    pub neighborhood: String,
    /// `key_file`.
    pub key_file: String,
    /// `genesis`: where the bridge reads the market interval and tariffs (instead of
    /// `[market]`/`[settlement]`).
    pub genesis: Option<String>,
    /// Further node API URLs to fail over to: with any, `api_url` is written as a list.
    pub failover: Vec<String>,
    /// `submit_lead_secs`.
    pub submit_lead_secs: Option<u32>,
    /// `submit_deliveries` (the bridge's default, on, when `None`).
    pub submit_deliveries: Option<bool>,
    /// `publish_bills` (the bridge's default, on, when `None`).
    pub publish_bills: Option<bool>,
}

/// `[settlement]`: tariffs and fee, as decimal strings.
#[derive(Debug, Clone)]
pub struct SettlementSection {
    /// `feed_in`.
    pub feed_in: String,
    /// `retail`.
    pub retail: String,
    /// `network_fee`.
    pub network_fee: String,
}

/// One `[[household]]`.
#[derive(Debug, Clone)]
pub struct HouseholdEntry {
    /// `participant`.
    pub participant: String,
    /// `meters`.
    pub meters: Vec<String>,
    /// `buy_limit`, a decimal string.
    pub buy_limit: String,
    /// `sell_limit`, a decimal string.
    pub sell_limit: String,
    /// `enabled` (the bridge's default, `true`, when `None`).
    pub enabled: Option<bool>,
}

impl HouseholdEntry {
    /// Household `participant` with one meter and its limits.
    pub fn new(participant: &str, meter: &str, buy_limit: &str, sell_limit: &str) -> Self {
        HouseholdEntry {
            participant: participant.to_owned(),
            meters: vec![meter.to_owned()],
            buy_limit: buy_limit.to_owned(),
            sell_limit: sell_limit.to_owned(),
            enabled: None,
        }
    }

    /// Sets `meters`.
    #[must_use]
    pub fn meters(mut self, meters: &[&str]) -> Self {
        self.meters = meters.iter().map(|m| (*m).to_owned()).collect();
        self
    }

    /// Sets `enabled`.
    #[must_use]
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = Some(enabled);
        self
    }
}

/// A whole `bridge.toml`; [`fmt::Display`] renders it, [`BridgeToml::to_config`] parses it.
#[derive(Debug, Clone, Default)]
pub struct BridgeToml {
    /// `[broker]` (omitted when `None`: a households-only registry file).
    pub broker: Option<BrokerSection>,
    /// `[[subscription]]`s: `(filter, format)`.
    pub subscriptions: Vec<(String, String)>,
    /// `[node]`.
    pub node: Option<NodeSection>,
    /// `[market]`: `(length_secs, gate_closure_lead_secs)`.
    pub market: Option<(i64, i64)>,
    /// `[settlement]`.
    pub settlement: Option<SettlementSection>,
    /// `[ingest]` `dedupe_window`.
    pub dedupe_window: Option<u64>,
    /// `[ingest.orders]` `min_order_wh` (the bridge's default, 10 Wh, when `None`).
    pub min_order_wh: Option<u64>,
    /// `[home_assistant]` `discovery` (the bridge's default, on, when `None`).
    pub home_assistant_discovery: Option<bool>,
    /// `[price_signal]` `horizon_intervals` (the bridge's default when `None`; 0 turns it off).
    pub price_signal_horizon: Option<u32>,
    /// `[[household]]`s.
    pub households: Vec<HouseholdEntry>,
}

impl BridgeToml {
    /// A config with `[broker]` and nothing else yet.
    pub fn new(broker: BrokerSection) -> Self {
        BridgeToml {
            broker: Some(broker),
            ..BridgeToml::default()
        }
    }

    /// Adds a `[[subscription]]`.
    #[must_use]
    pub fn subscribe(mut self, filter: &str, format: &str) -> Self {
        self.subscriptions
            .push((filter.to_owned(), format.to_owned()));
        self
    }

    /// Sets `[node]`.
    #[must_use]
    pub fn node(mut self, api_url: &str, neighborhood: &str, key_file: &str) -> Self {
        self.node = Some(NodeSection {
            api_url: api_url.to_owned(),
            neighborhood: neighborhood.to_owned(),
            key_file: key_file.to_owned(),
            genesis: None,
            failover: Vec::new(),
            submit_lead_secs: None,
            submit_deliveries: None,
            publish_bills: None,
        });
        self
    }

    /// Adds a node API URL to fail over to (after [`BridgeToml::node`]).
    ///
    /// # Panics
    /// If `[node]` is not set yet.
    #[must_use]
    pub fn failover(mut self, api_url: &str) -> Self {
        self.node
            .as_mut()
            .expect("BridgeToml::node before BridgeToml::failover")
            .failover
            .push(api_url.to_owned());
        self
    }

    /// Sets `[node]` `submit_lead_secs` (after [`BridgeToml::node`]).
    ///
    /// # Panics
    /// If `[node]` is not set yet.
    #[must_use]
    pub fn submit_lead_secs(mut self, secs: u32) -> Self {
        self.node
            .as_mut()
            .expect("BridgeToml::node before BridgeToml::submit_lead_secs")
            .submit_lead_secs = Some(secs);
        self
    }

    /// Sets `[node]` `submit_deliveries` (after [`BridgeToml::node`]).
    ///
    /// # Panics
    /// If `[node]` is not set yet.
    #[must_use]
    pub fn submit_deliveries(mut self, on: bool) -> Self {
        self.node
            .as_mut()
            .expect("BridgeToml::node before BridgeToml::submit_deliveries")
            .submit_deliveries = Some(on);
        self
    }

    /// Sets `[node]` `publish_bills` (after [`BridgeToml::node`]).
    ///
    /// # Panics
    /// If `[node]` is not set yet.
    #[must_use]
    pub fn publish_bills(mut self, on: bool) -> Self {
        self.node
            .as_mut()
            .expect("BridgeToml::node before BridgeToml::publish_bills")
            .publish_bills = Some(on);
        self
    }

    /// Sets `[node]` `genesis` (after [`BridgeToml::node`]).
    ///
    /// # Panics
    /// If `[node]` is not set yet.
    #[must_use]
    pub fn genesis(mut self, path: &str) -> Self {
        self.node
            .as_mut()
            .expect("BridgeToml::node before BridgeToml::genesis")
            .genesis = Some(path.to_owned());
        self
    }

    /// Sets `[market]`.
    #[must_use]
    pub fn market(mut self, length_secs: i64, gate_closure_lead_secs: i64) -> Self {
        self.market = Some((length_secs, gate_closure_lead_secs));
        self
    }

    /// Sets `[settlement]`.
    #[must_use]
    pub fn settlement(mut self, feed_in: &str, retail: &str, network_fee: &str) -> Self {
        self.settlement = Some(SettlementSection {
            feed_in: feed_in.to_owned(),
            retail: retail.to_owned(),
            network_fee: network_fee.to_owned(),
        });
        self
    }

    /// Sets `[ingest]` `dedupe_window`.
    #[must_use]
    pub fn dedupe_window(mut self, window: u64) -> Self {
        self.dedupe_window = Some(window);
        self
    }

    /// Sets `[ingest.orders]` `min_order_wh`: forecasts smaller than this give no order.
    #[must_use]
    pub fn min_order_wh(mut self, wh: u64) -> Self {
        self.min_order_wh = Some(wh);
        self
    }

    /// Sets `[home_assistant]` `discovery`.
    #[must_use]
    pub fn home_assistant_discovery(mut self, on: bool) -> Self {
        self.home_assistant_discovery = Some(on);
        self
    }

    /// Sets `[price_signal]` `horizon_intervals` (0: no price signal).
    #[must_use]
    pub fn price_signal_horizon(mut self, intervals: u32) -> Self {
        self.price_signal_horizon = Some(intervals);
        self
    }

    /// Adds a `[[household]]`.
    #[must_use]
    pub fn household(mut self, household: HouseholdEntry) -> Self {
        self.households.push(household);
        self
    }

    /// Parses and validates the rendered text as the bridge would.
    ///
    /// # Errors
    /// The bridge's [`ConfigError`] if the parts do not make a valid config.
    pub fn to_config(&self) -> Result<Config, ConfigError> {
        Config::from_toml(&self.to_string())
    }
}

/// A TOML basic string (the values here are plain ASCII: Rust's escapes are TOML's).
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// `key = "value"` lines.
fn strings(out: &mut String, keys: &[(&str, &str)]) -> fmt::Result {
    for (key, value) in keys {
        writeln!(out, "{key} = {}", Quoted(value))?;
    }
    Ok(())
}

impl fmt::Display for BridgeToml {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        let table = |out: &mut String, header: &str| {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(header);
            out.push('\n');
        };
        if let Some(b) = &self.broker {
            table(&mut out, "[broker]");
            if let Some(host) = &b.host {
                writeln!(out, "host = {}", Quoted(host))?;
            }
            writeln!(out, "port = {}", b.port)?;
            writeln!(out, "client_id = {}", Quoted(&b.client_id))?;
            if let Some(secs) = b.keep_alive_secs {
                writeln!(out, "keep_alive_secs = {secs}")?;
            }
            if let Some((min, max)) = b.reconnect_ms {
                writeln!(out, "reconnect_min_ms = {min}\nreconnect_max_ms = {max}")?;
            }
        }
        for (filter, format) in &self.subscriptions {
            table(&mut out, "[[subscription]]");
            writeln!(
                out,
                "filter = {}\nformat = {}",
                Quoted(filter),
                Quoted(format)
            )?;
        }
        if let Some(n) = &self.node {
            table(&mut out, "[node]");
            if n.failover.is_empty() {
                strings(&mut out, &[("api_url", &n.api_url)])?;
            } else {
                let urls: Vec<String> = std::iter::once(&n.api_url)
                    .chain(&n.failover)
                    .map(|u| Quoted(u).to_string())
                    .collect();
                writeln!(out, "api_url = [{}]", urls.join(", "))?;
            }
            strings(
                &mut out,
                &[("neighborhood", &n.neighborhood), ("key_file", &n.key_file)],
            )?;
            if let Some(genesis) = &n.genesis {
                strings(&mut out, &[("genesis", genesis)])?;
            }
            if let Some(secs) = n.submit_lead_secs {
                writeln!(out, "submit_lead_secs = {secs}")?;
            }
            if let Some(on) = n.submit_deliveries {
                writeln!(out, "submit_deliveries = {on}")?;
            }
            if let Some(on) = n.publish_bills {
                writeln!(out, "publish_bills = {on}")?;
            }
        }
        if let Some((length, lead)) = self.market {
            table(&mut out, "[market]");
            writeln!(
                out,
                "length_secs = {length}\ngate_closure_lead_secs = {lead}"
            )?;
        }
        if let Some(s) = &self.settlement {
            table(&mut out, "[settlement]");
            strings(
                &mut out,
                &[
                    ("feed_in", &s.feed_in),
                    ("retail", &s.retail),
                    ("network_fee", &s.network_fee),
                ],
            )?;
        }
        if let Some(window) = self.dedupe_window {
            table(&mut out, "[ingest]");
            writeln!(out, "dedupe_window = {window}")?;
        }
        if let Some(wh) = self.min_order_wh {
            table(&mut out, "[ingest.orders]");
            writeln!(out, "min_order_wh = {wh}")?;
        }
        if let Some(on) = self.home_assistant_discovery {
            table(&mut out, "[home_assistant]");
            writeln!(out, "discovery = {on}")?;
        }
        if let Some(horizon) = self.price_signal_horizon {
            table(&mut out, "[price_signal]");
            writeln!(out, "horizon_intervals = {horizon}")?;
        }
        for h in &self.households {
            table(&mut out, "[[household]]");
            writeln!(out, "participant = {}", Quoted(&h.participant))?;
            let meters: Vec<String> = h.meters.iter().map(|m| Quoted(m).to_string()).collect();
            writeln!(out, "meters = [{}]", meters.join(", "))?;
            writeln!(out, "buy_limit = {}", Quoted(&h.buy_limit))?;
            writeln!(out, "sell_limit = {}", Quoted(&h.sell_limit))?;
            if let Some(enabled) = h.enabled {
                writeln!(out, "enabled = {enabled}")?;
            }
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_tables_an_operator_writes() {
        let text = BridgeToml::new(BrokerSection::new(1883, "b").reconnect_ms(50, 500))
            .subscribe("voltmesh/meters/+", "native")
            .node("http://127.0.0.1:8080", "testnet", "bridge.key")
            .market(20, 5)
            .settlement("0.080000", "0.320000", "0.010000")
            .household(HouseholdEntry::new("h1", "m-h1", "0.30", "0.10").enabled(false))
            .to_string();
        assert_eq!(
            text,
            r#"[broker]
port = 1883
client_id = "b"
reconnect_min_ms = 50
reconnect_max_ms = 500

[[subscription]]
filter = "voltmesh/meters/+"
format = "native"

[node]
api_url = "http://127.0.0.1:8080"
neighborhood = "testnet"
key_file = "bridge.key"

[market]
length_secs = 20
gate_closure_lead_secs = 5

[settlement]
feed_in = "0.080000"
retail = "0.320000"
network_fee = "0.010000"

[[household]]
participant = "h1"
meters = ["m-h1"]
buy_limit = "0.30"
sell_limit = "0.10"
enabled = false
"#
        );
    }

    #[test]
    fn ingest_tables_reach_the_config() {
        let config = BridgeToml::new(BrokerSection::new(1883, "b"))
            .subscribe("voltmesh/meters/+", "native")
            .dedupe_window(8)
            .min_order_wh(1)
            .to_config()
            .expect("a valid config");
        assert_eq!(config.ingest.dedupe_window, 8);
        assert_eq!(config.ingest.orders.min_order_wh, 1);
        assert_eq!(
            config.ingest.orders.max_order_wh,
            crate::household::plan::OrderPolicy::default().max_order_wh,
            "the other bound keeps its default"
        );
    }
}
