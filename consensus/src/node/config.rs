//! `node.toml`: where a node finds its key, genesis and data, and where it listens.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::protocol::TestFault;

/// A node's configuration file, as written.
///
/// ```toml
/// genesis = "genesis.json"      # shared by every node of the neighborhood
/// key_file = "node.key"         # from `voltmesh keygen`
/// data_dir = "data"             # redb store; back it up
/// listen = "/ip4/0.0.0.0/tcp/7100"
/// api = "127.0.0.1:8100"
/// block_interval_ms = 500
/// idle_block_interval_ms = 5000 # a quiet chain's pace (0: a block every block_interval_ms)
/// untrusted_safety_record = false # true once after restoring or losing data_dir (see below)
///
/// [api_limits]                  # optional; these are the defaults (see `api::ApiLimits`)
/// max_body_bytes = 524288
/// max_concurrent_requests = 64
/// request_timeout_ms = 5000
/// max_connections = 128
/// read_timeout_ms = 10000
///
/// [state_sync]                  # optional: an empty store starts from a peer's snapshot
/// peers = ["http://10.0.0.2:8100"]
///
/// [storage]                     # optional: keep_blocks = N prunes older blocks (0: keep all)
/// keep_blocks = 0
///
/// [metrics]                     # optional; each key falls back to VOLTMESH_INFLUX_*
/// url = "http://127.0.0.1:8086" # unset here and in the environment: no metrics
/// org = "voltmesh"
/// bucket = "voltmesh"
/// node = "node-1"               # the `node` tag (default: validator-<index>)
/// ```
/// Relative paths are relative to the file's directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The genesis file.
    pub genesis: PathBuf,
    /// The node's ed25519 key file.
    pub key_file: PathBuf,
    /// Where the store lives.
    pub data_dir: PathBuf,
    /// libp2p listen address.
    pub listen: String,
    /// HTTP API address.
    pub api: SocketAddr,
    /// Shortest time between a block and its parent (default 500 ms).
    #[serde(default = "default_block_interval")]
    pub block_interval_ms: u64,
    /// Idle pacing: with no pending order, no gate to clear and everything committed, the next
    /// block comes this long after its parent (default 5,000 ms; 0 makes a block every
    /// `block_interval_ms` whether or not there is work). An order or a closing gate ends the
    /// wait at once. See `protocol/replica/idle.rs`.
    #[serde(default = "default_idle_block_interval")]
    pub idle_block_interval_ms: u64,
    /// The store may not hold this validator's latest safety record: it was restored from a
    /// backup, or wiped or lost with the same key kept (audit M5). The node then signs nothing
    /// (no vote, no timeout, no proposal) until messages from a quorum of other validators and a
    /// certificate above them show it is past every view it could have signed in; see
    /// `protocol::replica::amnesia`. Without it, a store with committed blocks but no safety
    /// record refuses to start. Default false; `voltmesh node --untrusted-safety-record` sets
    /// it for one run.
    #[serde(default)]
    pub untrusted_safety_record: bool,
    /// Bounds on the HTTP API (audit L10).
    #[serde(default)]
    pub api_limits: super::api::ApiLimits,
    /// Test-only switches.
    #[serde(default)]
    pub testing: Testing,
    /// Where the node writes its metrics (see [`super::metrics`]).
    #[serde(default)]
    pub metrics: super::metrics::MetricsSection,
    /// Where a node with an empty store fetches a ledger snapshot (see `crate::state_sync`).
    #[serde(default)]
    pub state_sync: StateSync,
    /// How much committed history the store keeps.
    #[serde(default)]
    pub storage: Storage,
}

/// `[storage]`: full history by default. With `keep_blocks = N > 0` (pruning mode; needs
/// snapshots in genesis) the node deletes committed blocks more than `N` below the tip, never
/// above its oldest stored snapshot, and compacts its store at startup. A pruned node still
/// answers its API from the index (trades, balances, clearings of every interval), serves
/// block sync only from its oldest block up (peers far behind use state sync), and
/// `voltmesh verify` cannot re-execute it from genesis. At the default 500 ms blocks, a day is
/// about 172,800 blocks.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    /// Committed blocks kept below the tip; 0 keeps them all.
    #[serde(default)]
    pub keep_blocks: u64,
}

/// `[state_sync]`: a node whose store is empty (new, or wiped) asks these nodes' APIs for their
/// latest snapshot, verifies it against the validators' certificates, and starts from it
/// instead of replaying the chain from genesis; it then signs nothing until it is provably past
/// every view it could have signed in (as with `untrusted_safety_record`). With no peers, or
/// none serving a snapshot that checks out, it replays from genesis by block sync.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSync {
    /// Node API base URLs, e.g. `["http://10.0.0.2:8080"]`.
    #[serde(default)]
    pub peers: Vec<String>,
}

/// Switches for fault-injection tests; never set them in a deployment.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Testing {
    /// Propose blocks whose clearing result is wrong (honest nodes must refuse them); the
    /// same as `fault = "wrong_clearing"`.
    #[serde(default)]
    pub propose_wrong_clearing: bool,
    /// One Byzantine behaviour of the replica, for tests that show honest nodes contain it
    /// with real processes and real clocks.
    #[serde(default)]
    pub fault: Option<NodeFault>,
}

/// The Byzantine behaviours a node can be told to show (`[testing] fault = "..."`, or
/// `fault = { flood = N }`); each maps to one [`TestFault`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum NodeFault {
    /// Propose blocks whose clearing result is wrong.
    WrongClearing,
    /// Send a validly signed vote naming a wrong height before each real vote (audit H1).
    WrongHeightVotes,
    /// Stamp proposals as far ahead as voters accept (audit H4).
    FutureTimestamps,
    /// Never vote.
    WithholdVotes,
    /// Send every vote and timeout this many times.
    Flood(u16),
}

impl Testing {
    /// The replica's test fault, if any (`fault` wins over `propose_wrong_clearing`).
    pub fn test_fault(&self) -> Option<TestFault> {
        match self.fault {
            Some(NodeFault::WrongClearing) => Some(TestFault::InvalidPayload),
            Some(NodeFault::WrongHeightVotes) => Some(TestFault::WrongHeightVotes),
            Some(NodeFault::FutureTimestamps) => Some(TestFault::FutureTimestamps),
            Some(NodeFault::WithholdVotes) => Some(TestFault::WithholdVotes),
            Some(NodeFault::Flood(n)) => Some(TestFault::Flood(n)),
            None => self
                .propose_wrong_clearing
                .then_some(TestFault::InvalidPayload),
        }
    }
}

fn default_block_interval() -> u64 {
    500
}

fn default_idle_block_interval() -> u64 {
    5_000
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NodeConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid node configuration.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl NodeConfig {
    /// Reads `path` and resolves relative paths against its directory.
    ///
    /// # Errors
    /// [`NodeConfigError`] naming the file and the problem.
    pub fn load(path: &Path) -> Result<NodeConfig, NodeConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| NodeConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config: NodeConfig =
            toml::from_str(&text).map_err(|e| NodeConfigError::Invalid {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [
            &mut config.genesis,
            &mut config.key_file,
            &mut config.data_dir,
        ] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if config.block_interval_ms == 0 {
            return Err(NodeConfigError::Invalid {
                path: path.to_owned(),
                message: "block_interval_ms must be positive".into(),
            });
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn testing(toml_text: &str) -> Result<Testing, toml::de::Error> {
        toml::from_str(toml_text)
    }

    #[test]
    fn a_testing_section_names_one_fault() {
        let cases = [
            ("", None),
            (
                "propose_wrong_clearing = true",
                Some(TestFault::InvalidPayload),
            ),
            (
                "fault = \"wrong_clearing\"",
                Some(TestFault::InvalidPayload),
            ),
            (
                "fault = \"wrong_height_votes\"",
                Some(TestFault::WrongHeightVotes),
            ),
            (
                "fault = \"future_timestamps\"",
                Some(TestFault::FutureTimestamps),
            ),
            ("fault = \"withhold_votes\"", Some(TestFault::WithholdVotes)),
            ("fault = { flood = 50 }", Some(TestFault::Flood(50))),
        ];
        for (text, fault) in cases {
            assert_eq!(testing(text).unwrap().test_fault(), fault, "{text}");
        }
        assert!(testing("fault = \"lie\"").is_err());
        assert!(testing("fault = { flood = -1 }").is_err());
    }
}
