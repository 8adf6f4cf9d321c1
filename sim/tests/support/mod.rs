//! A neighborhood of real `voltmesh node` processes on 127.0.0.1 for tests, with a minimal HTTP
//! client. Processes are killed when the [`Cluster`] is dropped.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use serde_json::{json, Value};
use voltmesh_consensus::ledger::{OrderTicket, SignedOrder};
use voltmesh_engine::{Price, Side};

pub(crate) const NEIGHBORHOOD: &str = "testnet";
/// Interval length and gate-closure lead of test markets: short, so tests finish quickly.
pub(crate) const INTERVAL_SECS: i64 = 20;
pub(crate) const LEAD_SECS: i64 = 5;

pub(crate) fn voltmesh() -> Command {
    Command::new(env!("CARGO_BIN_EXE_voltmesh"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A household's signing key (seeds 1..=99 are households).
pub(crate) fn household_key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

pub(crate) struct Node {
    pub(crate) dir: PathBuf,
    pub(crate) api: String,
    pub(crate) p2p_port: u16,
    child: Option<Child>,
    pub(crate) faulty: bool,
}

pub(crate) struct Cluster {
    pub(crate) root: PathBuf,
    pub(crate) nodes: Vec<Node>,
}

impl Cluster {
    /// Writes keys, genesis and configs for `n` validators (the ones in `faulty` propose wrong
    /// clearings) and starts them all.
    pub(crate) fn start(name: &str, n: usize, faulty: &[usize]) -> Cluster {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let mut validators = Vec::new();
        let mut nodes = Vec::new();
        for i in 0..n {
            let dir = root.join(format!("node{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            let out = voltmesh()
                .args(["keygen", "--out"])
                .arg(dir.join("node.key"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8(out.stdout).unwrap();
            let public = text
                .lines()
                .find_map(|l| l.strip_prefix("public_key = \""))
                .unwrap()
                .trim_end_matches('"')
                .to_string();
            let p2p_port = free_port();
            validators.push(
                json!({"public_key": public, "address": format!("/ip4/127.0.0.1/tcp/{p2p_port}")}),
            );
            nodes.push(Node {
                api: format!("127.0.0.1:{}", free_port()),
                dir,
                p2p_port,
                child: None,
                faulty: faulty.contains(&i),
            });
        }
        let participants: serde_json::Map<String, Value> = (1..=6u8)
            .map(|h| {
                (
                    format!("h{h}"),
                    json!([hex::encode(household_key(h).verifying_key().to_bytes())]),
                )
            })
            .collect();
        let genesis = json!({
            "neighborhood": NEIGHBORHOOD,
            "genesis_time": "2026-01-01T00:00:00Z",
            "market": {
                "mechanism": {"kind": "uniform", "k": "0.5"},
                "rules": {"tariffs": {"feed_in": "0.080000", "retail": "0.320000"}, "max_order_wh": 1_000_000},
                "network_fee": "0.010000",
                "interval": {"length_secs": INTERVAL_SECS, "gate_closure_lead_secs": LEAD_SECS}
            },
            "validators": validators,
            "participants": participants,
        });
        std::fs::write(
            root.join("genesis.json"),
            serde_json::to_vec_pretty(&genesis).unwrap(),
        )
        .unwrap();
        for node in &nodes {
            let config = format!(
                "genesis = \"../genesis.json\"\nkey_file = \"node.key\"\ndata_dir = \"data\"\nlisten = \"/ip4/127.0.0.1/tcp/{}\"\napi = \"{}\"\nblock_interval_ms = 300\n[testing]\npropose_wrong_clearing = {}\n",
                node.p2p_port, node.api, node.faulty
            );
            std::fs::write(node.dir.join("node.toml"), config).unwrap();
        }
        let mut cluster = Cluster { root, nodes };
        for i in 0..n {
            cluster.start_node(i);
        }
        cluster
    }

    pub(crate) fn start_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.dir.join("node.log"))
            .unwrap();
        let child = voltmesh()
            .args(["node", "--config"])
            .arg(node.dir.join("node.toml"))
            .env("RUST_LOG", "info,libp2p=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        node.child = Some(child);
    }

    /// SIGKILL: no clean shutdown.
    pub(crate) fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub(crate) fn live(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|&i| self.nodes[i].child.is_some())
    }

    pub(crate) fn status(&self, i: usize) -> Option<Value> {
        http(&self.nodes[i].api, "GET", "/v1/status", None)
            .ok()
            .map(|(_, v)| v)
    }

    pub(crate) fn height(&self, i: usize) -> u64 {
        self.status(i)
            .and_then(|s| s["height"].as_u64())
            .unwrap_or(0)
    }

    /// Waits until `cond` holds, or panics with `what` and the nodes' logs' tails.
    pub(crate) fn wait_for(&self, what: &str, timeout: Duration, mut cond: impl FnMut(&Cluster) -> bool) {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if cond(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
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
        panic!("timed out waiting for {what}\n{logs}");
    }

    pub(crate) fn block_hash(&self, i: usize, height: u64) -> Option<String> {
        match http(
            &self.nodes[i].api,
            "GET",
            &format!("/v1/blocks/{height}"),
            None,
        ) {
            Ok((200, v)) => v["hash"].as_str().map(str::to_owned),
            _ => None,
        }
    }

    pub(crate) fn submit(&self, i: usize, order: &SignedOrder) -> (u16, Value) {
        http(
            &self.nodes[i].api,
            "POST",
            "/v1/orders",
            Some(serde_json::to_vec(order).unwrap()),
        )
        .unwrap()
    }

    pub(crate) fn interval(&self, i: usize, start: i64) -> Option<Value> {
        match http(
            &self.nodes[i].api,
            "GET",
            &format!("/v1/intervals/{start}"),
            None,
        ) {
            Ok((200, v)) => Some(v),
            _ => None,
        }
    }

    pub(crate) fn data_dir(&self, i: usize) -> PathBuf {
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

/// The first interval that is still open `margin` seconds from now.
pub(crate) fn open_interval(margin: i64) -> i64 {
    let t = now_secs() + margin + LEAD_SECS;
    (t / INTERVAL_SECS + 1) * INTERVAL_SECS
}

pub(crate) fn order(
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
        limit_price: price.parse::<Price>().unwrap(),
        nonce,
    }
    .sign(NEIGHBORHOOD, &household_key(household))
}

/// A one-shot HTTP/1.1 request; returns the status and the JSON body.
pub(crate) fn http(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
) -> std::io::Result<(u16, Value)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let body = body.unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    stream.write_all(&body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let json = text
        .split("\r\n\r\n")
        .nth(1)
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    Ok((status, json))
}

pub(crate) fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}
