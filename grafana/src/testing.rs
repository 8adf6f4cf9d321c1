//! Test support for other crates (feature `testing`): a VictoriaMetrics process on a free
//! loopback port, and reading points back through its export API.
//!
//! Debian's `victoria-metrics` accepts the InfluxDB v2 write API (`/api/v2/write`); a field `f` of
//! measurement `m` becomes the series `m_f` with the tags as labels. The server is started with a
//! 100-year retention so simulated timestamps (the SimBench profile year) are kept.
//!
//! # Panics
//! Everything here panics on failure: it is for tests only.
#![allow(clippy::missing_panics_doc)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde::Deserialize;

/// Where Debian's `victoria-metrics` package puts the server (override with
/// `VOLTMESH_VICTORIA_METRICS`).
pub const DEFAULT_BINARY: &str = "/usr/bin/victoria-metrics";

/// A port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// A running VictoriaMetrics; killed and its data removed on drop.
#[derive(Debug)]
pub struct VictoriaMetrics {
    child: Child,
    data: PathBuf,
    /// The HTTP port on 127.0.0.1.
    pub port: u16,
}

impl VictoriaMetrics {
    /// Starts the server on `127.0.0.1:port` with a fresh data directory and waits until it
    /// answers InfluxDB's `/ready`.
    pub async fn start(port: u16) -> Self {
        let binary =
            std::env::var("VOLTMESH_VICTORIA_METRICS").unwrap_or_else(|_| DEFAULT_BINARY.into());
        let data = std::env::temp_dir().join(format!("voltmesh-vm-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data).expect("create the data directory");
        let child = Command::new(&binary)
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg(format!("-storageDataPath={}", data.display()))
            .arg("-retentionPeriod=100y")
            .arg("-loggerLevel=ERROR")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {binary} ({e}); install Debian's victoria-metrics package (.ci/test.sh does)")
            });
        let vm = VictoriaMetrics { child, data, port };
        let client = influxdb2::Client::new(vm.base_url(), "voltmesh", "");
        for _ in 0..300 {
            if matches!(client.ready().await, Ok(true)) {
                return vm;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("victoria-metrics did not become ready on port {port}");
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every sample of the series whose name matches `regex`, after forcing a flush; sorted by
    /// name, then by labels.
    pub async fn export(&self, regex: &str) -> Vec<Series> {
        let base = self.base_url();
        let flush = reqwest::get(format!("{base}/internal/force_flush"))
            .await
            .expect("force_flush");
        assert!(
            flush.status().is_success(),
            "force_flush: {}",
            flush.status()
        );
        let body = reqwest::Client::new()
            .get(format!("{base}/api/v1/export"))
            .query(&[
                ("match[]", format!("{{__name__=~\"{regex}\"}}")),
                ("start", "0".to_owned()),
            ])
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
        series.sort_by(|a, b| a.metric.cmp(&b.metric));
        series
    }

    /// Polls [`VictoriaMetrics::export`]`(regex)` every 500 ms until `check` holds and returns
    /// those series; panics with what it last saw after `secs` seconds.
    pub async fn wait_for_series(
        &self,
        regex: &str,
        secs: u64,
        check: impl Fn(&[Series]) -> bool,
    ) -> Vec<Series> {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let series = self.export(regex).await;
            if check(&series) {
                return series;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {regex}: {:?}",
                series
                    .iter()
                    .map(|s| (&s.metric, s.samples()))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
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
    /// `__name__` (`<measurement>_<field>`) and the tags.
    pub metric: BTreeMap<String, String>,
    /// Values, in the order of `timestamps`.
    pub values: Vec<f64>,
    /// Milliseconds since the epoch.
    pub timestamps: Vec<i64>,
}

impl Series {
    /// `<measurement>_<field>`.
    pub fn name(&self) -> &str {
        self.metric.get("__name__").map_or("", String::as_str)
    }

    /// The value of tag `key`, if the series has it.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.metric.get(key).map(String::as_str)
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
