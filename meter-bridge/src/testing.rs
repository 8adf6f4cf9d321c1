//! Test support for this crate's tests and other crates' tests and benches (feature `testing`):
//! a real Mosquitto on a free loopback port ([`Mosquitto`], [`BrokerOptions`]), `mosquitto_pub`,
//! a small rumqttc client ([`TestClient`]), temp directories, and [`BridgeToml`], the one place
//! tests, benches and the demo write a `bridge.toml`.
//!
//! Every wait is on a condition with a generous timeout ([`PATIENCE`]).
//!
//! # Panics
//! Everything here panics on failure: it is for tests only.
#![allow(clippy::missing_panics_doc)]

mod bridge_toml;

use std::fmt::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub use bridge_toml::{BridgeToml, BrokerSection, HouseholdEntry, NodeSection, SettlementSection};
/// A free TCP port on 127.0.0.1 (bound and released; the broker binds it right after).
pub use voltmesh_metrics::testing::free_port;

/// Generous limit for anything the tests wait for.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Whether the Mosquitto binaries are installed (`.ci/test.sh` installs them).
pub fn have_mosquitto() -> bool {
    Command::new("mosquitto")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// A directory removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh, empty directory.
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "voltmesh-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `name` in the directory and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Mosquitto TLS listener files.
#[derive(Debug, Clone)]
pub struct BrokerTls {
    /// CA certificate (PEM).
    pub ca: PathBuf,
    /// Server certificate (PEM).
    pub cert: PathBuf,
    /// Server key (PEM).
    pub key: PathBuf,
}

/// How to configure the broker.
#[derive(Debug, Clone)]
pub struct BrokerOptions {
    /// `persistence true` in the broker's temp dir.
    pub persistence: bool,
    /// `password_file` (then `allow_anonymous false`).
    pub password_file: Option<PathBuf>,
    /// `acl_file`.
    pub acl_file: Option<PathBuf>,
    /// TLS on the listener.
    pub tls: Option<BrokerTls>,
    /// `max_inflight_messages` (Mosquitto's default 20 when `None`; `Some(0)` = no window).
    pub max_inflight: Option<u32>,
    /// `max_packet_size` in bytes (default 256 KiB, as the bridge's own limit; 0 = no limit).
    pub max_packet_size: u32,
    /// `log_type all` into [`Mosquitto::log`] (the default); `false` keeps Mosquitto's default
    /// types (errors, warnings, notices, connections), for benches that publish a lot.
    pub log_all: bool,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        BrokerOptions {
            persistence: false,
            password_file: None,
            acl_file: None,
            tls: None,
            max_inflight: None,
            max_packet_size: 262_144,
            log_all: true,
        }
    }
}

impl BrokerOptions {
    /// Takes `max_inflight` from the environment variable `var` when it is set (the benches'
    /// `VOLTMESH_BENCH_MOSQUITTO_INFLIGHT`).
    ///
    /// # Panics
    /// If `var` is set but is not a whole number.
    #[must_use]
    pub fn inflight_from_env(mut self, var: &str) -> Self {
        if let Ok(n) = std::env::var(var) {
            let Ok(n) = n.trim().parse::<u32>() else {
                panic!("{var}={n:?}: not a whole number");
            };
            self.max_inflight = Some(n);
        }
        self
    }
}

/// A Mosquitto process on a loopback port, killed on drop.
#[derive(Debug)]
pub struct Mosquitto {
    /// The port.
    pub port: u16,
    dir: TempDir,
    conf: PathBuf,
    child: Option<Child>,
}

impl Mosquitto {
    /// Starts a broker on a free port and waits until it accepts connections.
    pub fn start(options: &BrokerOptions) -> Mosquitto {
        let dir = TempDir::new("mosquitto");
        let port = free_port();
        let mut conf = String::new();
        // Running as root, Mosquitto would switch to the `mosquitto` user, which cannot read
        // files in our temp dir; stay as whoever runs the tests.
        if is_root() {
            conf.push_str("user root\n");
        }
        let _ = writeln!(conf, "listener {port} 127.0.0.1");
        // 0 = no limit: the default drops QoS 1 messages past 1000 queued for an offline client.
        conf.push_str("max_queued_messages 0\n");
        if options.max_packet_size > 0 {
            let _ = writeln!(conf, "max_packet_size {}", options.max_packet_size);
        }
        if let Some(n) = options.max_inflight {
            let _ = writeln!(conf, "max_inflight_messages {n}");
        }
        if options.persistence {
            conf.push_str("persistence true\n");
            let _ = writeln!(conf, "persistence_location {}/", dir.path().display());
            conf.push_str("autosave_interval 1\n");
        }
        match &options.password_file {
            Some(file) => {
                conf.push_str("allow_anonymous false\n");
                let _ = writeln!(conf, "password_file {}", file.display());
            }
            None => conf.push_str("allow_anonymous true\n"),
        }
        if let Some(acl) = &options.acl_file {
            let _ = writeln!(conf, "acl_file {}", acl.display());
        }
        if let Some(tls) = &options.tls {
            let _ = writeln!(conf, "cafile {}", tls.ca.display());
            let _ = writeln!(conf, "certfile {}", tls.cert.display());
            let _ = writeln!(conf, "keyfile {}", tls.key.display());
        }
        let _ = writeln!(conf, "log_dest file {}/mosquitto.log", dir.path().display());
        if options.log_all {
            conf.push_str("log_type all\n");
        }
        let conf_path = dir.write("mosquitto.conf", conf);
        let mut broker = Mosquitto {
            port,
            dir,
            conf: conf_path,
            child: None,
        };
        broker.spawn();
        broker
    }

    fn spawn(&mut self) {
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto (is it installed? .ci/test.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("mosquitto exited with {status}; log:\n{}", self.log());
                }
            }
            assert!(Instant::now() < deadline, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the broker with SIGTERM (it saves its persistence file) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + PATIENCE;
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Stops the broker and starts it again on the same port with the same config.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    /// The broker's temp dir (for certificates, password files...).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs `mosquitto_pub` against 127.0.0.1:`port` with QoS 1 and `args`; panics if it fails.
pub fn mosquitto_pub(port: u16, args: &[&str]) {
    run_ok(
        Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
            .args(args),
    );
}

/// Runs `command` to completion and returns its output; panics, with its stderr, if it cannot
/// start or exits unsuccessfully.
pub fn run_ok(command: &mut Command) -> std::process::Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A rumqttc client for tests: connect, subscribe and wait for the SUBACK.
#[derive(Debug)]
pub struct TestClient {
    /// The client.
    pub client: AsyncClient,
    /// Received publishes.
    pub messages: mpsc::Receiver<rumqttc::Publish>,
    /// PUBACKs received for our publishes.
    pub pubacks: watch::Receiver<u64>,
    task: JoinHandle<()>,
}

impl TestClient {
    /// Connects with `options`, subscribing to `filters` at QoS 1 (waits for the SUBACK).
    pub async fn connect(options: MqttOptions, filters: &[&str]) -> TestClient {
        let (client, eventloop) = AsyncClient::new(options, 1024);
        let (msg_tx, messages) = mpsc::channel(100_000);
        let (ack_tx, pubacks) = watch::channel(0u64);
        let (sub_tx, sub_rx) = oneshot::channel();
        let task = tokio::spawn(drive(eventloop, msg_tx, ack_tx, sub_tx));
        for f in filters {
            client
                .subscribe(*f, QoS::AtLeastOnce)
                .await
                .expect("subscribe");
        }
        if !filters.is_empty() {
            tokio::time::timeout(PATIENCE, sub_rx)
                .await
                .expect("suback in time")
                .expect("suback");
        }
        TestClient {
            client,
            messages,
            pubacks,
            task,
        }
    }

    /// The next message within [`PATIENCE`].
    pub async fn next(&mut self) -> rumqttc::Publish {
        tokio::time::timeout(PATIENCE, self.messages.recv())
            .await
            .expect("a message in time")
            .expect("client running")
    }

    /// Publishes `payloads` to `topic` at QoS 1 and waits until the broker acknowledged them all.
    pub async fn publish_all(&mut self, topic: &str, payloads: Vec<Vec<u8>>) {
        let target = *self.pubacks.borrow() + payloads.len() as u64;
        for p in payloads {
            self.client
                .publish(topic, QoS::AtLeastOnce, false, p)
                .await
                .expect("publish");
        }
        let waited = tokio::time::timeout(PATIENCE, self.pubacks.wait_for(|n| *n >= target)).await;
        let ok = waited.is_ok_and(|r| r.is_ok());
        assert!(ok, "broker did not ack our publishes");
    }
}

impl Drop for TestClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn drive(
    mut eventloop: EventLoop,
    messages: mpsc::Sender<rumqttc::Publish>,
    pubacks: watch::Sender<u64>,
    suback: oneshot::Sender<()>,
) {
    let mut suback = Some(suback);
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if messages.try_send(p).is_err() {
                    return;
                }
            }
            Ok(Event::Incoming(Packet::PubAck(_))) => pubacks.send_modify(|n| *n += 1),
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                if let Some(tx) = suback.take() {
                    let _ = tx.send(());
                }
            }
            Ok(_) => {}
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Plain options for a test client on `port`.
pub fn client_options(port: u16, id: &str) -> MqttOptions {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(5))
        .set_max_packet_size(256 * 1024, 256 * 1024);
    o
}
