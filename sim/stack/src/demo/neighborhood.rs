//! The demo neighborhood's files: validator keys, the bridge key, `genesis.json` and one
//! `node.toml` per node, in a directory of their own.
//!
//! # Genesis
//! Neighborhood `"demo"`, the mechanism (by default the uniform-price auction with k = 1/2), the
//! tariffs and network fee given,
//! intervals of `interval_secs` with a gate-closure lead of 30 % of the interval (at least 1 s),
//! and every household participant allowed to be signed for by the bridge key only. Admission
//! limits are the defaults, with room for four orders per household and interval in a large
//! neighborhood ([`admission_for`]).

use crate::testing::cluster::free_port;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use voltmesh_consensus::net::keyfile;
use voltmesh_consensus::node::NodeConfig;
use voltmesh_engine::{
    IntervalSpec, MarketConfig, MarketRules, Mechanism, ParticipantId, Price, Tariffs,
};
use voltmesh_wire::delivery::DeliveryRules;
use voltmesh_wire::{Genesis, GenesisValidator, PublicKey};

use super::{io_error, DemoError};

/// The neighborhood name in the demo's genesis.
pub const NEIGHBORHOOD: &str = "demo";

/// Tariffs and fee of the demo market.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prices {
    /// What the utility pays for exported energy, per kWh.
    pub feed_in: Price,
    /// What the utility charges for imported energy, per kWh.
    pub retail: Price,
    /// Fee per locally traded kWh, paid by the buyer.
    pub network_fee: Price,
}

/// One validator of the demo.
#[derive(Debug, Clone)]
pub struct DemoNode {
    /// Its configuration (paths resolved).
    pub config: NodeConfig,
    /// Its HTTP API, `host:port`.
    pub api: String,
}

/// Everything written for the demo neighborhood.
#[derive(Debug, Clone)]
pub struct Neighborhood {
    /// The directory holding it all.
    pub dir: PathBuf,
    /// The genesis as written.
    pub genesis: Genesis,
    /// The validators, in genesis order.
    pub nodes: Vec<DemoNode>,
    /// The bridge's key (genesis allows it for every participant).
    pub bridge_key: SigningKey,
    /// Where the bridge key is stored.
    pub bridge_key_file: PathBuf,
}

/// The gate-closure lead for intervals of `interval_secs`: 30 %, at least 1 s.
pub fn gate_lead_secs(interval_secs: u32) -> u32 {
    (interval_secs * 3 / 10).max(1)
}

/// The admission limits of a neighborhood of `households`: the defaults, with an interval's book
/// raised to four orders per household when that is more (10,000 households: 40,000).
pub fn admission_for(households: usize) -> voltmesh_engine::AdmissionLimits {
    let default = voltmesh_engine::AdmissionLimits::DEFAULT;
    voltmesh_engine::AdmissionLimits {
        max_orders_per_interval: u32::try_from(households.saturating_mul(4))
            .unwrap_or(u32::MAX)
            .max(default.max_orders_per_interval),
        ..default
    }
}

/// The market of a demo neighborhood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Market {
    /// How intervals clear.
    pub mechanism: Mechanism,
    /// Tariffs and fee.
    pub prices: Prices,
    /// Real seconds per interval.
    pub interval_secs: u32,
}

/// Writes keys, genesis and node configs for `nodes` validators and `participants` under `dir`.
///
/// # Errors
/// [`DemoError`] if a key, port or file cannot be made or the market is inconsistent.
pub fn write(
    dir: &Path,
    nodes: usize,
    participants: &[ParticipantId],
    market: Market,
) -> Result<Neighborhood, DemoError> {
    let Market {
        mechanism,
        prices,
        interval_secs,
    } = market;
    let setup = |e: &dyn std::fmt::Display| DemoError::Setup(e.to_string());
    let interval = IntervalSpec::new(interval_secs, gate_lead_secs(interval_secs))
        .map_err(|e| DemoError::Options(format!("--interval-secs: {e}")))?;
    let tariffs = Tariffs::new(prices.feed_in, prices.retail).map_err(|e| setup(&e))?;
    let bridge_pair = keyfile::generate_keypair();
    let bridge_key_file = dir.join("bridge.key");
    keyfile::save_keypair(&bridge_key_file, &bridge_pair).map_err(|e| setup(&e))?;
    let bridge_key =
        SigningKey::from_bytes(&keyfile::secret_key_bytes(&bridge_pair).map_err(|e| setup(&e))?);
    let bridge_public = PublicKey(bridge_key.verifying_key().to_bytes());

    let mut validators = Vec::with_capacity(nodes);
    let mut planned = Vec::with_capacity(nodes);
    for i in 0..nodes {
        let node_dir = dir.join(format!("node{i}"));
        std::fs::create_dir_all(&node_dir).map_err(io_error("create a node directory"))?;
        let pair = keyfile::generate_keypair();
        keyfile::save_keypair(&node_dir.join("node.key"), &pair).map_err(|e| setup(&e))?;
        let public = PublicKey(keyfile::public_key_bytes(&pair).map_err(|e| setup(&e))?);
        let p2p = free_port().map_err(io_error("find a free port"))?;
        let api = format!(
            "127.0.0.1:{}",
            free_port().map_err(io_error("find a free port"))?
        );
        validators.push(GenesisValidator {
            public_key: public,
            address: format!("/ip4/127.0.0.1/tcp/{p2p}"),
        });
        planned.push((node_dir, p2p, api));
    }
    let now = DateTime::<Utc>::from(std::time::SystemTime::now());
    let genesis = Genesis {
        neighborhood: NEIGHBORHOOD.into(),
        genesis_time: DateTime::from_timestamp(now.timestamp() - 60, 0).unwrap_or(now),
        currency: voltmesh_wire::Currency::EUR,
        market: MarketConfig {
            mechanism,
            rules: MarketRules {
                tariffs,
                ..MarketRules::PERMISSIVE
            },
            network_fee: prices.network_fee,
            interval,
            admission: admission_for(participants.len()),
        },
        validators,
        participants: participants
            .iter()
            .map(|p| (p.clone(), vec![bridge_public]))
            .collect(),
        snapshot_interval_blocks: voltmesh_wire::genesis::DEFAULT_SNAPSHOT_INTERVAL_BLOCKS,
        governance: None,
        // Every interval plays 15 profile minutes in `interval_secs`: a 50 kW connection's
        // energy in 15 minutes must pass as one interval's delivery, and the delivery window
        // (after which the interval's bills commit) is the default hour of profile time.
        deliveries: voltmesh_wire::delivery::DeliveryRules {
            max_connection_kw: DeliveryRules::default().max_connection_kw * 900
                / interval_secs.max(1),
            window_secs: (DeliveryRules::default().window_secs * interval_secs / 900).max(1),
            // Two months of profile time, as the default is of real time.
            correction_window_secs: u32::try_from(
                u64::from(DeliveryRules::default().correction_window_secs)
                    * u64::from(interval_secs)
                    / 900,
            )
            .unwrap_or(u32::MAX)
            .max(1),
        },
        billing_keys: Vec::new(),
    };
    let text = serde_json::to_string_pretty(&genesis).map_err(|e| setup(&e))?;
    // Validate exactly what the nodes will read.
    let genesis = Genesis::from_json(&text).map_err(|e| setup(&e))?;
    std::fs::write(dir.join("genesis.json"), &text).map_err(io_error("write genesis.json"))?;

    let mut demo_nodes = Vec::with_capacity(nodes);
    for (node_dir, p2p, api) in planned {
        let path = node_dir.join("node.toml");
        let toml = format!(
            "genesis = \"../genesis.json\"\nkey_file = \"node.key\"\ndata_dir = \"data\"\nlisten = \"/ip4/127.0.0.1/tcp/{p2p}\"\napi = \"{api}\"\nblock_interval_ms = 500\n"
        );
        std::fs::write(&path, toml).map_err(io_error("write node.toml"))?;
        let config = NodeConfig::load(&path).map_err(|e| setup(&e))?;
        demo_nodes.push(DemoNode { config, api });
    }
    Ok(Neighborhood {
        dir: dir.to_owned(),
        genesis,
        nodes: demo_nodes,
        bridge_key,
        bridge_key_file,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use voltmesh_engine::K;

    #[test]
    fn writes_a_genesis_the_nodes_accept() {
        let dir = tempfile::tempdir().unwrap();
        let prices = Prices {
            feed_in: "0.08".parse().unwrap(),
            retail: "0.30".parse().unwrap(),
            network_fee: "0.02".parse().unwrap(),
        };
        let hh: Vec<ParticipantId> = ["hh-01", "hh-02"].map(ParticipantId::from).to_vec();
        let market = |interval_secs| Market {
            mechanism: Mechanism::Uniform { k: K::HALF },
            prices,
            interval_secs,
        };
        let n = write(dir.path(), 4, &hh, market(10)).unwrap();
        assert_eq!(n.nodes.len(), 4);
        assert_eq!(n.genesis.validators.len(), 4);
        assert_eq!(n.genesis.market.interval.length_secs(), 10);
        assert_eq!(n.genesis.market.interval.gate_closure_lead_secs(), 3);
        let bridge = PublicKey(n.bridge_key.verifying_key().to_bytes());
        for p in &hh {
            assert_eq!(n.genesis.may_sign(p, &bridge), Some(true));
        }
        let text = std::fs::read_to_string(dir.path().join("genesis.json")).unwrap();
        assert_eq!(Genesis::from_json(&text).unwrap(), n.genesis);
        assert!(n.nodes[3].config.key_file.is_file());
        assert!(matches!(
            write(dir.path(), 4, &hh, market(7)),
            Err(DemoError::Options(_))
        ));
    }
}
