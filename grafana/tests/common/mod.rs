//! Test helpers: a VictoriaMetrics process on a free loopback port, and reading points back.
#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde::Deserialize;

/// Where Debian's `victoria-metrics` package puts the server (override with
/// `VOLTMESH_VICTORIA_METRICS`).
const DEFAULT_BINARY: &str = "/usr/bin/victoria-metrics";

/// A port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// A running VictoriaMetrics; killed and its data removed on drop.
pub struct VictoriaMetrics {
    child: Child,
    data: PathBuf,
    pub port: u16,
}

impl VictoriaMetrics {
    /// Starts the server on `127.0.0.1:port` with a fresh data directory and waits until it answers
    /// `/health`.
    pub async fn start(port: u16) -> Self {
        let binary =
            std::env::var("VOLTMESH_VICTORIA_METRICS").unwrap_or_else(|_| DEFAULT_BINARY.into());
        let data =
            std::env::temp_dir().join(format!("voltmesh-metrics-vm-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data).expect("create the data directory");
        let child = Command::new(&binary)
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg(format!("-storageDataPath={}", data.display()))
            .arg("-loggerLevel=ERROR")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {binary} ({e}); install Debian's victoria-metrics package (.ci/test.sh does)")
            });
        let vm = VictoriaMetrics { child, data, port };
        // VictoriaMetrics answers InfluxDB's `/ready` (its `/health` differs from InfluxDB's).
        let client = influxdb2::Client::new(vm.base_url(), "voltmesh", "");
        for _ in 0..300 {
            if matches!(client.ready().await, Ok(true)) {
                return vm;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("victoria-metrics did not become ready on port {port}");
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// Every sample of the series whose name matches `regex`, after forcing a flush.
    pub async fn export(&self, regex: &str) -> Vec<Series> {
        let flush = reqwest::get(self.url("/internal/force_flush"))
            .await
            .expect("force_flush");
        assert!(
            flush.status().is_success(),
            "force_flush: {}",
            flush.status()
        );
        let client = reqwest::Client::new();
        let body = client
            .get(self.url("/api/v1/export"))
            .query(&[("match[]", format!("{{__name__=~\"{regex}\"}}"))])
            .send()
            .await
            .expect("export")
            .text()
            .await
            .expect("export body");
        let mut series: Vec<Series> = body
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("export line is JSON"))
            .collect();
        series.sort_by(|a, b| a.name().cmp(b.name()));
        series
    }
}

impl Drop for VictoriaMetrics {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// One series from `/api/v1/export`.
#[derive(Debug, Deserialize)]
pub struct Series {
    pub metric: std::collections::BTreeMap<String, String>,
    pub values: Vec<f64>,
    pub timestamps: Vec<i64>,
}

impl Series {
    /// `<measurement>_<field>`, as VictoriaMetrics names InfluxDB fields.
    pub fn name(&self) -> &str {
        self.metric.get("__name__").map_or("", String::as_str)
    }

    /// `(timestamp ms, value)` pairs sorted by time.
    pub fn samples(&self) -> Vec<(i64, f64)> {
        let mut s: Vec<(i64, f64)> = self
            .timestamps
            .iter()
            .copied()
            .zip(self.values.iter().copied())
            .collect();
        s.sort_by_key(|(t, _)| *t);
        s
    }
}

/// Polls `check` every 50 ms until it holds, for at most `secs` seconds.
pub async fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..secs * 20 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

pub mod provisioning;
