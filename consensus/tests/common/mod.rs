//! One in-process node with a one-validator genesis on 127.0.0.1, for tests of the node's own
//! behaviour (API limits, store recovery): the replica commits alone (a quorum of one).

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use voltmesh_consensus::net::keyfile;
use voltmesh_consensus::node::{NodeConfig, NodeError};

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Writes a key, a one-validator genesis and `node.toml` (plus `extra` TOML) into `dir`;
/// returns the config file.
pub fn write_node(dir: &Path, extra: &str) -> PathBuf {
    let keypair = keyfile::generate_keypair();
    keyfile::save_keypair(&dir.join("node.key"), &keypair).expect("save key");
    let public = keyfile::public_key_hex(&keypair).expect("public key");
    let p2p = free_port();
    let api = free_port();
    let genesis = serde_json::json!({
        "neighborhood": "solo",
        "genesis_time": "2026-01-01T00:00:00Z",
        "market": {
            "mechanism": {"kind": "uniform", "k": "0.5"},
            "rules": {"tariffs": {"feed_in": "0.080000", "retail": "0.320000"}, "max_order_wh": 1_000_000},
            "network_fee": "0.010000",
            "interval": {"length_secs": 20, "gate_closure_lead_secs": 5}
        },
        "validators": [{"public_key": public, "address": format!("/ip4/127.0.0.1/tcp/{p2p}")}],
        "participants": {},
    });
    std::fs::write(
        dir.join("genesis.json"),
        serde_json::to_vec_pretty(&genesis).expect("genesis json"),
    )
    .expect("write genesis");
    let config = format!(
        "genesis = \"genesis.json\"\nkey_file = \"node.key\"\ndata_dir = \"data\"\nlisten = \"/ip4/127.0.0.1/tcp/{p2p}\"\napi = \"127.0.0.1:{api}\"\nblock_interval_ms = 100\nidle_block_interval_ms = 0\n{extra}"
    );
    let path = dir.join("node.toml");
    std::fs::write(&path, config).expect("write node.toml");
    path
}

/// As [`write_node`], with `participants` (pseudonym → signing key seed) in genesis and a
/// snapshot every `snapshot_interval_blocks` blocks.
pub fn write_node_with(
    dir: &Path,
    extra: &str,
    participants: &[(&str, u8)],
    snapshot_interval_blocks: u64,
) -> PathBuf {
    let config = write_node(dir, extra);
    let path = dir.join("genesis.json");
    let mut genesis: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read genesis")).expect("json");
    for (name, seed) in participants {
        let key = ed25519_dalek::SigningKey::from_bytes(&[*seed; 32]);
        genesis["participants"][*name] =
            serde_json::json!([hex::encode(key.verifying_key().to_bytes())]);
    }
    genesis["snapshot_interval_blocks"] = snapshot_interval_blocks.into();
    std::fs::write(&path, serde_json::to_vec_pretty(&genesis).expect("json")).expect("write");
    config
}

/// A running in-process node; dropping the handle stops it.
pub struct RunningNode {
    pub api: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), NodeError>>,
}

impl RunningNode {
    /// Starts the node of `config`.
    pub fn start(config: &Path) -> RunningNode {
        let config = NodeConfig::load(config).expect("node.toml");
        let api = config.api;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(voltmesh_consensus::node::run(config, async {
            let _ = stopped.await;
        }));
        RunningNode {
            api,
            stop: Some(stop),
            task,
        }
    }

    /// Stops the node and returns how it ended.
    pub async fn stop(mut self) -> Result<(), NodeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.expect("node task")
    }

    /// The committed height from `/v1/status`, if the API answers.
    pub async fn height(&self) -> Option<u64> {
        let (status, body) = http(self.api, "GET", "/v1/status", b"").await.ok()?;
        if status != 200 {
            return None;
        }
        let value: serde_json::Value = serde_json::from_slice(&body).ok()?;
        value["height"].as_u64()
    }

    /// Waits until the committed height reaches `height`; panics after `timeout`.
    pub async fn wait_height(&self, height: u64, timeout: Duration) -> u64 {
        let waited = tokio::time::timeout(timeout, async {
            loop {
                if let Some(h) = self.height().await {
                    if h >= height {
                        return h;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        waited.unwrap_or_else(|_| panic!("height {height} not reached in {timeout:?}"))
    }
}

/// One HTTP/1.1 request on its own connection: (status, body).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect(addr).await?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    // A server may answer (413) and close before reading the whole body.
    let _ = stream.write_all(body).await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no HTTP answer: {text:.80}")))?;
    let start = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(answer.len(), |p| p + 4);
    Ok((status, answer[start..].to_vec()))
}
