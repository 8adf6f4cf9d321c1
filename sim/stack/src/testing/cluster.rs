//! A neighborhood of real `voltmesh node` processes on 127.0.0.1, for tests, benches and local
//! experiments: keys, genesis and configs in a directory of its own, the node API read through
//! the wire contract's typed client ([`BlockingNodeClient`]), and the processes killed when the
//! [`Cluster`] is dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use serde_json::{json, Value};
pub use voltmesh_consensus::node::NodeFault;
use voltmesh_engine::{AdmissionLimits, Price, Side};
use voltmesh_wire::api::{self, StatusView};
use voltmesh_wire::client::BlockingNodeClient;
use voltmesh_wire::{IntervalClearing, OrderTicket, SignedOrder};

/// The test neighborhood's name.
pub const NEIGHBORHOOD: &str = "testnet";
/// Interval length of test markets: short, so that intervals clear quickly.
pub const INTERVAL_SECS: i64 = 20;
/// Gate-closure lead of test markets.
pub const LEAD_SECS: i64 = 5;
/// Households `h1..=h6` are in genesis, with keys from [`household_key`] and [`bridge_key`].
pub const HOUSEHOLDS: u8 = 6;

/// `fault` as the line of a node's `[testing]` section.
fn fault_toml(fault: NodeFault) -> String {
    let name = match fault {
        NodeFault::Flood(n) => return format!("fault = {{ flood = {n} }}\n"),
        NodeFault::WrongClearing => "wrong_clearing",
        NodeFault::WrongHeightVotes => "wrong_height_votes",
        NodeFault::FutureTimestamps => "future_timestamps",
        NodeFault::WithholdVotes => "withhold_votes",
    };
    format!("fault = \"{name}\"\n")
}

/// Why a cluster could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// `voltmesh keygen` failed or printed something unexpected.
    #[error("keygen: {0}")]
    Keygen(String),
    /// The node API client could not be built.
    #[error("node api client: {0}")]
    Client(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
    let what = what.into();
    move |source| ClusterError::Io { what, source }
}

/// A port for a node to listen on, chosen below the kernel's ephemeral range: a port picked by
/// binding `:0` lies inside it, and an outgoing connection (from any test) can take it between
/// our check and the node's bind. Ports are handed out in turn from a per-process random start,
/// so one process never hands out the same port twice.
///
/// The demo's nodes and broker take their ports from here too.
///
/// # Errors
/// `AddrInUse` if no port in the range below the ephemeral range can be bound.
pub fn free_port() -> std::io::Result<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| {
            r.split_whitespace()
                .next()
                .and_then(|p| p.parse::<u32>().ok())
        })
        .unwrap_or(32_768);
    let low = ephemeral_low.saturating_sub(12_000).max(1_024);
    let span = ephemeral_low.saturating_sub(low).max(1);
    if NEXT.load(Ordering::Relaxed) == 0 {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
            ^ std::process::id().wrapping_mul(2_654_435_761);
        let _ = NEXT.compare_exchange(0, seed % span + 1, Ordering::Relaxed, Ordering::Relaxed);
    }
    for _ in 0..span {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % span;
        let port = u16::try_from(low + offset).unwrap_or(u16::MAX);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        "no free port below the ephemeral range",
    ))
}

/// Seconds since the epoch.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A household's signing key (deterministic from its number).
pub fn household_key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

/// The test meter bridge's signing key: genesis lists it for every household besides the
/// household's own key, as a neighborhood whose meters report through one bridge would.
pub fn bridge_key() -> SigningKey {
    SigningKey::from_bytes(&[0xB7; 32])
}

/// The test community's billing key: genesis names it in `billing_keys`, so it reads every
/// participant's trades, bills and statements; every node's [`Node::client`] signs with it.
pub fn billing_key() -> SigningKey {
    SigningKey::from_bytes(&[0xB1; 32])
}

/// The name of the `p`-th participant that only the bridge key signs for
/// ([`ClusterOptions::bridge_participants`]).
pub fn bridge_participant(p: u32) -> String {
    format!("p{p}")
}

/// How to set up a cluster: [`ClusterOptions::new`] gives the defaults of [`Cluster::start`].
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Number of validators.
    pub validators: usize,
    /// Node `i` of each `(i, fault)` shows that Byzantine behaviour.
    pub faults: Vec<(usize, NodeFault)>,
    /// The nodes' minimum block interval.
    pub block_interval_ms: u64,
    /// Participants besides `h1..=h6`, named by [`bridge_participant`], for which only the
    /// bridge key ([`bridge_key`]) signs: a neighborhood of many households behind one bridge.
    pub bridge_participants: u32,
    /// Genesis `market.admission` (the defaults when `None`).
    pub admission: Option<AdmissionLimits>,
    /// Genesis `snapshot_interval_blocks` (state sync).
    pub snapshot_interval_blocks: u64,
    /// The nodes' `idle_block_interval_ms` (0: a block every `block_interval_ms`, as the
    /// cluster tests were written for).
    pub idle_block_interval_ms: u64,
    /// Genesis `deliveries.window_secs`: an interval's bills commit in the first block after
    /// its end plus this window (3600 by default: no bills within a short test).
    pub delivery_window_secs: u32,
}

impl ClusterOptions {
    /// `validators` honest nodes pacing blocks at 300 ms, households `h1..=h6`, default limits.
    pub fn new(validators: usize) -> ClusterOptions {
        ClusterOptions {
            validators,
            faults: Vec::new(),
            block_interval_ms: 300,
            bridge_participants: 0,
            admission: None,
            snapshot_interval_blocks: voltmesh_wire::genesis::DEFAULT_SNAPSHOT_INTERVAL_BLOCKS,
            idle_block_interval_ms: 0,
            delivery_window_secs: 3600,
        }
    }
}

/// One node of the cluster.
#[derive(Debug)]
pub struct Node {
    /// Its directory (key, config, data, log).
    pub dir: PathBuf,
    /// Its API address.
    pub api: String,
    /// Its libp2p port.
    pub p2p_port: u16,
    /// The Byzantine behaviour it was told to show, if any.
    pub fault: Option<NodeFault>,
    child: Option<Child>,
    client: BlockingNodeClient,
}

impl Node {
    /// The running process's id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Its API, through the wire contract's client, signing reads with [`billing_key`].
    pub fn client(&self) -> &BlockingNodeClient {
        &self.client
    }
}

/// Node processes of one neighborhood.
#[derive(Debug)]
pub struct Cluster {
    /// The `voltmesh` binary.
    pub bin: PathBuf,
    /// The cluster's directory (genesis and one folder per node).
    pub root: PathBuf,
    /// The nodes, by position in genesis (the validator set orders them by public key: a
    /// node's validator index is in its `/v1/status`).
    pub nodes: Vec<Node>,
}

impl Cluster {
    /// Writes keys, genesis and configs for `n` validators under `root` (emptied first) and
    /// starts them all; node `i` of each `(i, fault)` in `faults` shows that Byzantine
    /// behaviour.
    ///
    /// # Errors
    /// [`ClusterError`] if a file or process cannot be made.
    pub fn start(
        bin: &Path,
        root: &Path,
        n: usize,
        faults: &[(usize, NodeFault)],
    ) -> Result<Cluster, ClusterError> {
        Self::start_paced(bin, root, n, faults, 300)
    }

    /// As [`Cluster::start`], with the nodes' minimum block interval.
    ///
    /// # Errors
    /// [`ClusterError`] if a file or process cannot be made.
    pub fn start_paced(
        bin: &Path,
        root: &Path,
        n: usize,
        faults: &[(usize, NodeFault)],
        block_interval_ms: u64,
    ) -> Result<Cluster, ClusterError> {
        let options = ClusterOptions {
            faults: faults.to_vec(),
            block_interval_ms,
            ..ClusterOptions::new(n)
        };
        Self::start_with(bin, root, &options)
    }

    /// Writes keys, genesis and configs as `options` say under `root` (emptied first) and starts
    /// every node.
    ///
    /// # Errors
    /// [`ClusterError`] if a file or process cannot be made.
    pub fn start_with(
        bin: &Path,
        root: &Path,
        options: &ClusterOptions,
    ) -> Result<Cluster, ClusterError> {
        let (n, faults, block_interval_ms) = (
            options.validators,
            options.faults.as_slice(),
            options.block_interval_ms,
        );
        let _ = std::fs::remove_dir_all(root);
        std::fs::create_dir_all(root).map_err(io(format!("create {}", root.display())))?;
        let mut validators = Vec::new();
        let mut nodes = Vec::new();
        for i in 0..n {
            let dir = root.join(format!("node{i}"));
            std::fs::create_dir_all(&dir).map_err(io("create a node directory"))?;
            let out = Command::new(bin)
                .args(["keygen", "--out"])
                .arg(dir.join("node.key"))
                .output()
                .map_err(io("run voltmesh keygen"))?;
            let text = String::from_utf8_lossy(&out.stdout);
            let public = text
                .lines()
                .find_map(|l| l.strip_prefix("public_key = \""))
                .map(|k| k.trim_end_matches('"').to_owned())
                .ok_or_else(|| {
                    ClusterError::Keygen(String::from_utf8_lossy(&out.stderr).into_owned())
                })?;
            let p2p_port = free_port().map_err(io("find a free port"))?;
            validators.push(
                json!({"public_key": public, "address": format!("/ip4/127.0.0.1/tcp/{p2p_port}")}),
            );
            let api = format!("127.0.0.1:{}", free_port().map_err(io("find a free port"))?);
            nodes.push(Node {
                client: BlockingNodeClient::new(&format!("http://{api}"))
                    .map_err(|e| ClusterError::Client(e.to_string()))?
                    .with_read_key(NEIGHBORHOOD, billing_key()),
                api,
                dir,
                p2p_port,
                fault: faults
                    .iter()
                    .find(|(f, _)| *f == i)
                    .map(|(_, fault)| *fault),
                child: None,
            });
        }
        let bridge = hex::encode(bridge_key().verifying_key().to_bytes());
        let mut participants: serde_json::Map<String, Value> = (1..=HOUSEHOLDS)
            .map(|h| {
                (
                    format!("h{h}"),
                    json!([
                        hex::encode(household_key(h).verifying_key().to_bytes()),
                        bridge
                    ]),
                )
            })
            .collect();
        for p in 0..options.bridge_participants {
            participants.insert(bridge_participant(p), json!([bridge]));
        }
        let genesis = json!({
            "neighborhood": NEIGHBORHOOD,
            "genesis_time": "2026-01-01T00:00:00Z",
            "market": {
                "mechanism": {"kind": "uniform", "k": "0.5"},
                "rules": {"tariffs": {"feed_in": "0.080000", "retail": "0.320000"}, "max_order_wh": 1_000_000},
                "network_fee": "0.010000",
                "interval": {"length_secs": INTERVAL_SECS, "gate_closure_lead_secs": LEAD_SECS},
                "admission": options.admission.unwrap_or(AdmissionLimits::DEFAULT)
            },
            "validators": validators,
            "participants": participants,
            "billing_keys": [hex::encode(billing_key().verifying_key().to_bytes())],
            "snapshot_interval_blocks": options.snapshot_interval_blocks,
            // Test meters play accelerated time: a 50 kW connection's 15 minutes in an interval.
            "deliveries": {"window_secs": options.delivery_window_secs, "max_connection_kw": 50 * 900 / INTERVAL_SECS},
        });
        std::fs::write(
            root.join("genesis.json"),
            serde_json::to_vec_pretty(&genesis).unwrap_or_default(),
        )
        .map_err(io("write genesis.json"))?;
        for node in &nodes {
            let config = format!(
                "genesis = \"../genesis.json\"\nkey_file = \"node.key\"\ndata_dir = \"data\"\nlisten = \"/ip4/127.0.0.1/tcp/{}\"\napi = \"{}\"\nblock_interval_ms = {block_interval_ms}\nidle_block_interval_ms = {}\n[testing]\n{}",
                node.p2p_port,
                node.api,
                options.idle_block_interval_ms,
                node.fault.map(fault_toml).unwrap_or_default()
            );
            std::fs::write(node.dir.join("node.toml"), config).map_err(io("write node.toml"))?;
        }
        let mut cluster = Cluster {
            bin: bin.to_owned(),
            root: root.to_owned(),
            nodes,
        };
        for i in 0..n {
            cluster.start_node(i)?;
        }
        Ok(cluster)
    }

    /// (Re)starts node `i` from its directory.
    ///
    /// # Errors
    /// [`ClusterError::Io`] if the process cannot start.
    pub fn start_node(&mut self, i: usize) -> Result<(), ClusterError> {
        let node = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.dir.join("node.log"))
            .map_err(io("open node.log"))?;
        let child = Command::new(&self.bin)
            .args(["node", "--config"])
            .arg(node.dir.join("node.toml"))
            // `VOLTMESH_CLUSTER_LOG` replaces the nodes' log filter when debugging a run.
            .env(
                "RUST_LOG",
                std::env::var("VOLTMESH_CLUSTER_LOG")
                    .unwrap_or_else(|_| "info,libp2p=warn".to_owned()),
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(io("start voltmesh node"))?;
        node.child = Some(child);
        Ok(())
    }

    /// Kills node `i`, deletes its data directory (store and all) and starts it again with
    /// every other node's API as its `[state_sync]` peers: a validator that lost its disk
    /// and rejoins from a snapshot.
    ///
    /// # Errors
    /// [`ClusterError::Io`] if the directory or config cannot be changed or the process
    /// cannot start.
    pub fn wipe_and_state_sync(&mut self, i: usize) -> Result<(), ClusterError> {
        self.kill(i);
        let dir = self.nodes[i].dir.clone();
        std::fs::remove_dir_all(dir.join("data")).map_err(io("delete the data directory"))?;
        let peers: Vec<String> = (0..self.nodes.len())
            .filter(|&j| j != i)
            .map(|j| format!("\"http://{}\"", self.nodes[j].api))
            .collect();
        let path = dir.join("node.toml");
        let mut config = std::fs::read_to_string(&path).map_err(io("read node.toml"))?;
        if !config.contains("[state_sync]") {
            config.push_str(&format!("\n[state_sync]\npeers = [{}]\n", peers.join(", ")));
            std::fs::write(&path, config).map_err(io("write node.toml"))?;
        }
        self.start_node(i)
    }

    /// A new node that is not in genesis (a validator joining by governance): its key, ports
    /// and a `node.toml` like node 0's (with `extra` appended), in `<root>/<name>`, not started
    /// and not yet one of [`Cluster::nodes`] ([`Cluster::add_node`]). Returns the node and its
    /// validator entry (`public_key`, `address`).
    ///
    /// # Errors
    /// [`ClusterError`] if a file cannot be made or `voltmesh keygen` fails.
    pub fn make_node(
        &self,
        name: &str,
        extra: &str,
    ) -> Result<(Node, voltmesh_wire::GenesisValidator), ClusterError> {
        let dir = self.root.join(name);
        std::fs::create_dir_all(&dir).map_err(io("create a node directory"))?;
        let out = Command::new(&self.bin)
            .args(["keygen", "--out"])
            .arg(dir.join("node.key"))
            .output()
            .map_err(io("run voltmesh keygen"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let public_key = text
            .lines()
            .find_map(|l| l.strip_prefix("public_key = \""))
            .and_then(|k| k.trim_end_matches('"').parse().ok())
            .ok_or_else(|| {
                ClusterError::Keygen(String::from_utf8_lossy(&out.stderr).into_owned())
            })?;
        let p2p_port = free_port().map_err(io("find a free port"))?;
        let api = format!("127.0.0.1:{}", free_port().map_err(io("find a free port"))?);
        let template = &self.nodes[0];
        let config = std::fs::read_to_string(template.dir.join("node.toml"))
            .map_err(io("read node.toml"))?
            .replace(
                &format!("/ip4/127.0.0.1/tcp/{}\"", template.p2p_port),
                &format!("/ip4/127.0.0.1/tcp/{p2p_port}\""),
            )
            .replace(&format!("\"{}\"", template.api), &format!("\"{api}\""));
        // Top-level keys go before the first table.
        let config = match config.find("\n[") {
            Some(at) => format!("{}\n{extra}{}", &config[..at], &config[at..]),
            None => format!("{config}\n{extra}"),
        };
        std::fs::write(dir.join("node.toml"), config).map_err(io("write node.toml"))?;
        let node = Node {
            client: BlockingNodeClient::new(&format!("http://{api}"))
                .map_err(|e| ClusterError::Client(e.to_string()))?
                .with_read_key(NEIGHBORHOOD, billing_key()),
            api,
            dir,
            p2p_port,
            fault: None,
            child: None,
        };
        let validator = voltmesh_wire::GenesisValidator {
            public_key,
            address: format!("/ip4/127.0.0.1/tcp/{p2p_port}"),
        };
        Ok((node, validator))
    }

    /// Adds a node made by [`Cluster::make_node`] (not started); its index.
    pub fn add_node(&mut self, node: Node) -> usize {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// Kills node `i` with SIGKILL: no clean shutdown.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Nodes whose process runs.
    pub fn live(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|&i| self.nodes[i].child.is_some())
    }

    /// `GET /v1/status` of node `i`.
    pub fn status(&self, i: usize) -> Option<StatusView> {
        self.nodes[i].client.status().ok()
    }

    /// Committed height of node `i` (0 if it does not answer).
    pub fn height(&self, i: usize) -> u64 {
        self.status(i).map_or(0, |s| s.height)
    }

    /// Orders node `i` has committed (0 if it does not answer).
    pub fn orders_committed(&self, i: usize) -> u64 {
        self.status(i).map_or(0, |s| s.orders_committed)
    }

    /// Polls `cond` every 20 ms until it holds or `timeout` passes.
    ///
    /// # Errors
    /// A message with `what` and the tail of every node's log.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        mut cond: impl FnMut(&Cluster) -> bool,
    ) -> Result<(), String> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if cond(self) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut logs = String::new();
        for node in &self.nodes {
            let text = std::fs::read_to_string(node.dir.join("node.log")).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            logs += &format!(
                "--- {}\n{}\n",
                node.dir.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        Err(format!("timed out waiting for {what}\n{logs}"))
    }

    /// Waits until every node has committed at least `height` blocks.
    ///
    /// # Panics
    /// With the tail of every node's log if that takes longer than `timeout`.
    pub fn expect_height(&self, height: u64, timeout: Duration) {
        let n = self.nodes.len();
        self.wait_for("first commits", timeout, |c| {
            (0..n).all(|i| c.height(i) >= height)
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }

    /// The hash of node `i`'s committed block at `height`.
    pub fn block_hash(&self, i: usize, height: u64) -> Option<String> {
        let block = self.nodes[i].client.block(height).ok().flatten()?;
        Some(block.hash)
    }

    /// `POST /v1/orders` to node `i`: the status and the JSON answer, unclassified (tests check
    /// exact answers; 0 and `null` if the node cannot be reached).
    pub fn submit(&self, i: usize, order: &SignedOrder) -> (u16, Value) {
        let body = serde_json::to_vec(order).unwrap_or_default();
        let path = api::ORDERS;
        http_with(&self.nodes[i].client, "POST", path, Some(body)).unwrap_or((0, Value::Null))
    }

    /// [`Cluster::submit`], which must be accepted (202).
    ///
    /// # Panics
    /// With the node's answer if it is not.
    pub fn submit_accepted(&self, i: usize, order: &SignedOrder) {
        let (status, body) = self.submit(i, order);
        assert_eq!(status, 202, "{body}");
    }

    /// `GET /v1/intervals/{start}` of node `i`, once it has cleared.
    pub fn interval(&self, i: usize, start: i64) -> Option<IntervalClearing> {
        self.nodes[i].client.interval(start).ok().flatten()
    }

    /// Waits until every node has cleared the interval at `start`, and returns the clearing,
    /// which must be the same on every running node.
    ///
    /// # Errors
    /// A message if a node has not cleared it within `timeout`, or the nodes disagree.
    pub fn wait_cleared(&self, start: i64, timeout: Duration) -> Result<IntervalClearing, String> {
        let live: Vec<usize> = self.live().collect();
        self.wait_for("the interval to clear everywhere", timeout, |c| {
            live.iter().all(|&i| c.interval(i, start).is_some())
        })?;
        let clearings: Vec<IntervalClearing> = live
            .iter()
            .filter_map(|&i| self.interval(i, start))
            .collect();
        match clearings.first() {
            Some(first)
                if clearings.len() == live.len() && clearings.iter().all(|c| c == first) =>
            {
                Ok(first.clone())
            }
            _ => Err(format!("the nodes' clearings differ: {clearings:?}")),
        }
    }

    /// `GET /v1/governance` of node `i` (`None` if it does not answer).
    pub fn community(&self, i: usize) -> Option<api::CommunityView> {
        self.nodes[i].client.community().ok()
    }

    /// A governance `action` approved by the key files of the first `2f + 1` validators (the
    /// default policy), submitted to node `to`; waits until every node's committed ledger
    /// applied it.
    ///
    /// # Errors
    /// A message if a key file cannot be read, the node refuses the proposal, or a node does not
    /// apply it within `timeout` (with the nodes' log tails).
    pub fn enact(
        &self,
        to: usize,
        id: &str,
        action: voltmesh_wire::governance::Action,
        timeout: Duration,
    ) -> Result<(), String> {
        let n = self.nodes.len();
        let quorum = n - (n.saturating_sub(1)) / 3;
        let keys = (0..quorum)
            .map(|i| voltmesh_wire::key::read(&self.nodes[i].dir.join("node.key")))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let refs: Vec<&SigningKey> = keys.iter().collect();
        let proposal = voltmesh_wire::governance::Proposal {
            id: id.into(),
            valid_until_ms: u64::try_from(now_secs() + 3600).unwrap_or(0) * 1000,
            action,
        };
        let applied = |c: &Cluster, i: usize| c.community(i).map_or(0, |v| v.actions_applied);
        let before: Vec<u64> = (0..n).map(|i| applied(self, i)).collect();
        let signed =
            voltmesh_wire::governance::SignedProposal::signed(proposal, NEIGHBORHOOD, &refs);
        let answer = self.nodes[to]
            .client
            .submit_proposal(&signed)
            .map_err(|e| format!("{id}: {e}"))?;
        if answer.approved < answer.threshold as usize {
            return Err(format!("{id}: {answer:?}: below the threshold"));
        }
        self.wait_for(id, timeout, |c| (0..n).all(|i| applied(c, i) > before[i]))
    }

    /// Node `i`'s data directory.
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.nodes[i].dir.join("data")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// The first interval whose gate is still open `margin` seconds from now.
pub fn open_interval(margin: i64) -> i64 {
    let t = now_secs() + margin + LEAD_SECS;
    (t / INTERVAL_SECS + 1) * INTERVAL_SECS
}

/// An order of household `h<household>`, signed with its key.
///
/// # Panics
/// If `price` is not a valid price (a programming error in the caller).
pub fn order(
    household: u8,
    id: &str,
    interval_start: i64,
    side: Side,
    wh: u64,
    price: &str,
    nonce: u64,
) -> SignedOrder {
    OrderTicket {
        participant: format!("h{household}").into(),
        interval_start,
        id: id.into(),
        side,
        quantity_wh: wh,
        limit_price: price.parse::<Price>().unwrap_or(Price::ZERO),
        nonce,
    }
    .sign(NEIGHBORHOOD, &household_key(household))
}

/// One request to the node API at `addr` (`host:port`) through the wire contract's client;
/// returns the status and the JSON body (`null` if not JSON). For tests that send what the typed
/// client never would (malformed bodies and paths).
///
/// # Errors
/// An I/O error if the node cannot be reached.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
) -> std::io::Result<(u16, Value)> {
    let client =
        BlockingNodeClient::new(&format!("http://{addr}")).map_err(std::io::Error::other)?;
    http_with(&client, method, path, body)
}

fn http_with(
    client: &BlockingNodeClient,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
) -> std::io::Result<(u16, Value)> {
    let answer = client
        .raw(method, path, body)
        .map_err(std::io::Error::other)?;
    let json = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    Ok((answer.status, json))
}
