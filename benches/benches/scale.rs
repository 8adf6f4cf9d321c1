//! A neighborhood at scale, end to end, for simulated weeks: simulated meters of 1,000 or
//! 10,000 households publish real DSMR, Tasmota and Shelly payloads to a real Mosquitto, a
//! `voltmesh bridge` process turns them into signed orders, and four `voltmesh node` processes
//! finalize and clear every interval (issue 12, deliverable 5). Run on demand, not in CI.
//!
//! Time is accelerated as in `voltmesh demo`: every market interval of `interval_secs` real
//! seconds plays one 15-minute step of the bundled grid's profiles (its 13 loads play again,
//! round after round, each household with limits of its own). A simulated week is 672
//! intervals. The run lasts two simulated periods of `VOLTMESH_SCALE_INTERVALS` (default: a
//! week each), and prints, per size:
//! - orders committed per interval (min / median / max) against the households, and against
//!   what the bridge says it planned and the node took (its planner's log lines): a household
//!   whose forecast is under the bridge's minimum order (10 Wh) has nothing to trade that
//!   interval, but every order the node took must be in the committed clearing;
//! - gate-to-committed-clearing time: from an interval's gate closure until node 0's API
//!   serves its clearing (polled every 50 ms), p50 / p99 / max, and how many intervals took
//!   more than 5 s;
//! - resident memory and CPU (share of one core) of each node and of the bridge, after the
//!   first period and after the second (twice the chain): the memory ratio shows whether the
//!   curve is flat;
//! - each node's store on disk per household-year.
//!
//! ```sh
//! cargo build --release -p voltmesh --bin voltmesh
//! cargo bench -p voltmesh-benches --bench scale                       # 1,000 then 10,000
//! VOLTMESH_SCALE_HOUSEHOLDS=1000 VOLTMESH_SCALE_INTERVAL_SECS=6 \
//!   VOLTMESH_SCALE_INTERVALS=672 cargo bench -p voltmesh-benches --bench scale
//! ```
//! Settings (environment): `VOLTMESH_SCALE_HOUSEHOLDS` (comma-separated sizes, default
//! `1000,10000`), `VOLTMESH_SCALE_INTERVAL_SECS` (comma-separated, one per size; default 6 s up
//! to 2,000 households, else 30 s), `VOLTMESH_SCALE_INTERVALS` (intervals per period, default
//! 672), `VOLTMESH_SCALE_PUBLISH_SECS` (seconds between a meter's readings; default 1 s up to
//! 2,000 households, else 5 s), `VOLTMESH_SCALE_HOME_ASSISTANT` (set: the bridge runs with its
//! Home Assistant discovery and price signal, its defaults; unset: both off, so the figures are
//! the ledger's and the orders' path), `VOLTMESH_SCALE_DELIVERIES` (set: the bridge submits every
//! household's metered delivery after each interval and publishes their committed bills, its
//! defaults; unset: both off). It needs the release binary (`$VOLTMESH_BIN` or
//! `target/release/voltmesh`) and Debian's `mosquitto`, and skips with a message without them.
//! Everything it starts is stopped when it ends, even on panic.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use voltmesh::demo::broker::BrokerAddr;
use voltmesh::demo::households::{self, DemoHousehold, Playback};
use voltmesh::demo::neighborhood::{self, Market};
use voltmesh::demo::DemoOptions;
use voltmesh::meters::fleet;
use voltmesh_benches::{bytes_under, cpu_secs, release_binary, rss_mb};
use voltmesh_engine::ParticipantId;
use voltmesh_meter_bridge::testing::{have_mosquitto, BrokerOptions, Mosquitto};
use voltmesh_sim::simbench::Grid;
use voltmesh_wire::client::NodeClient;

/// Validators.
const NODES: usize = 4;
/// Intervals played before the first one measured (the bridge needs readings to forecast).
const WARM_UP: usize = 3;
/// The bridge's log filter: warnings, and the planner's lines per interval (orders planned and
/// signed; submitted, with those taken and refused), which [`BridgeLog`] reads.
const BRIDGE_LOG: &str = "warn,voltmesh_meter_bridge::runtime::planner=info";
/// Simulated intervals in a year.
const INTERVALS_PER_YEAR: f64 = 365.0 * 96.0;

fn env_list(name: &str) -> Vec<u64> {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.split(',')
                .map(|s| {
                    s.trim()
                        .parse()
                        .unwrap_or_else(|_| panic!("{name}={v:?}: not a list of whole numbers"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// One size's settings.
#[derive(Debug, Clone, Copy)]
struct Size {
    households: usize,
    interval_secs: u32,
    publish_secs: u32,
    /// Intervals per period (the run is two periods).
    intervals: usize,
}

fn sizes() -> Vec<Size> {
    let households = env_list("VOLTMESH_SCALE_HOUSEHOLDS");
    let households = if households.is_empty() {
        vec![1_000, 10_000]
    } else {
        households
    };
    let secs = env_list("VOLTMESH_SCALE_INTERVAL_SECS");
    let publish = env_list("VOLTMESH_SCALE_PUBLISH_SECS");
    let intervals = env_list("VOLTMESH_SCALE_INTERVALS")
        .first()
        .copied()
        .unwrap_or(672);
    households
        .iter()
        .enumerate()
        .map(|(i, &h)| {
            let large = h > 2_000;
            Size {
                households: usize::try_from(h).unwrap_or(usize::MAX),
                interval_secs: secs
                    .get(i)
                    .or(secs.last())
                    .map_or(if large { 30 } else { 6 }, |&s| {
                        u32::try_from(s).unwrap_or(30)
                    }),
                publish_secs: publish
                    .get(i)
                    .or(publish.last())
                    .map_or(if large { 5 } else { 1 }, |&s| {
                        u32::try_from(s).unwrap_or(5)
                    }),
                intervals: usize::try_from(intervals).unwrap_or(672),
            }
        })
        .collect()
}

/// Child processes and the run's directory, stopped and removed on drop (also on panic).
struct Processes {
    children: Vec<(String, Child)>,
    dir: PathBuf,
    /// Keep `dir` (the logs) when dropped: set on a failed run, or by `VOLTMESH_SCALE_KEEP`.
    keep: bool,
}

impl Processes {
    /// Starts `bin args config` with its stderr in `log`, logging at `filter` (or
    /// `VOLTMESH_SCALE_LOG`, which replaces every process's filter when debugging).
    fn spawn(
        &mut self,
        name: &str,
        bin: &Path,
        args: &[&str],
        config: &Path,
        log: &Path,
        filter: &str,
    ) {
        let log = std::fs::File::create(log).expect("create a log file");
        let child = Command::new(bin)
            .args(args)
            .arg(config)
            .env(
                "RUST_LOG",
                std::env::var("VOLTMESH_SCALE_LOG").unwrap_or_else(|_| filter.to_owned()),
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        self.children.push((name.to_owned(), child));
    }

    fn pids(&self) -> Vec<(String, u32)> {
        self.children
            .iter()
            .map(|(name, child)| (name.clone(), child.id()))
            .collect()
    }

    /// Panics naming a process that has exited.
    fn check(&mut self) {
        for (name, child) in &mut self.children {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "{name} exited with {status}; its log is in {}",
                    self.dir.display()
                );
            }
        }
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.keep || std::thread::panicking() {
            eprintln!("scale: logs and stores kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Resident memory (MB) and CPU seconds of every process at one instant.
#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    procs: Vec<(String, f64, f64)>,
}

fn sample(pids: &[(String, u32)]) -> Sample {
    Sample {
        at: Instant::now(),
        procs: pids
            .iter()
            .map(|(name, pid)| {
                (
                    name.clone(),
                    rss_mb(*pid).unwrap_or(f64::NAN),
                    cpu_secs(*pid).unwrap_or(f64::NAN),
                )
            })
            .collect(),
    }
}

/// One line per process: memory at the end of the period and CPU share over it.
fn report_period(label: &str, from: &Sample, to: &Sample) {
    let wall = to.at.duration_since(from.at).as_secs_f64();
    for ((name, _, cpu0), (_, rss, cpu1)) in from.procs.iter().zip(&to.procs) {
        println!(
            "  {label}: {name:<8} resident {rss:7.1} MB, CPU {:5.1} % of a core",
            (cpu1 - cpu0) / wall * 100.0
        );
    }
}

/// What one interval showed.
#[derive(Debug, Clone, Copy)]
struct Seen {
    /// The interval's start (Unix seconds).
    start: i64,
    /// Orders in its committed clearing (filled or not).
    orders: usize,
    /// Gate closure to the clearing on node 0's API.
    delay: Duration,
}

/// What the bridge said of one interval's orders.
#[derive(Debug, Clone, Copy, Default)]
struct Submitted {
    /// Orders planned and signed (households with less than the bridge's minimum order to
    /// trade get none).
    signed: usize,
    /// Refused by the node for good.
    refused: usize,
    /// Still not taken at gate closure.
    expired: usize,
}

impl Submitted {
    /// Orders the node took: each must be in the interval's committed clearing.
    fn taken(&self) -> usize {
        self.signed.saturating_sub(self.refused + self.expired)
    }
}

/// The bridge's log (filter [`BRIDGE_LOG`]), read as it grows: per interval, the orders planned
/// and signed, refused and expired.
struct BridgeLog {
    path: PathBuf,
    /// The log, once it exists; each read continues where the last one stopped.
    file: Option<std::fs::File>,
    /// Bytes read after the last complete line.
    partial: Vec<u8>,
    intervals: std::collections::BTreeMap<i64, Submitted>,
}

impl BridgeLog {
    fn new(path: PathBuf) -> Self {
        BridgeLog {
            path,
            file: None,
            partial: Vec::new(),
            intervals: std::collections::BTreeMap::new(),
        }
    }

    /// Reads the complete lines written since the last call.
    fn refresh(&mut self) {
        use std::io::Read;
        if self.file.is_none() {
            self.file = std::fs::File::open(&self.path).ok();
        }
        let Some(file) = self.file.as_mut() else {
            return;
        };
        if file.read_to_end(&mut self.partial).is_err() {
            return;
        }
        let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return;
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        for line in String::from_utf8_lossy(&complete).lines() {
            let line = strip_ansi(line);
            let Some(interval) = field(&line, "interval") else {
                continue;
            };
            let entry = self.intervals.entry(interval).or_default();
            if line.contains("orders planned and signed") {
                entry.signed = field(&line, "orders").unwrap_or(0) as usize;
            } else if line.contains("orders submitted") {
                entry.refused = field(&line, "refused").unwrap_or(0) as usize;
            } else if line.contains("gate closed before the node took every order") {
                entry.expired = field(&line, "expired").unwrap_or(0) as usize;
            }
        }
    }
}

/// `line` without its terminal colour sequences (`ESC [ ... m`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The whole number of the structured field ` name=` in a log line.
fn field(line: &str, name: &str) -> Option<i64> {
    let at = line.find(&format!(" {name}="))? + name.len() + 2;
    let digits: String = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn now() -> DateTime<Utc> {
    DateTime::<Utc>::from(std::time::SystemTime::now())
}

/// Waits for interval `start`'s clearing on `api` (gate closure at `gate`), polling every 50 ms
/// from the gate on, for at most `timeout` after it; `None` if it did not come.
async fn clearing_of(
    api: &NodeClient,
    start: i64,
    gate: DateTime<Utc>,
    timeout: Duration,
) -> Option<Seen> {
    if let Ok(wait) = (gate - now()).to_std() {
        tokio::time::sleep(wait).await;
    }
    loop {
        if let Ok(Some(clearing)) = api.interval(start).await {
            let o = &clearing.outcome;
            let orders = o
                .trades
                .iter()
                .flat_map(|t| [&t.buy_id, &t.sell_id])
                .chain(o.unfilled.iter().map(|u| &u.id))
                .collect::<std::collections::BTreeSet<_>>()
                .len();
            return Some(Seen {
                start,
                orders,
                delay: (now() - gate).to_std().unwrap_or_default(),
            });
        }
        if (now() - gate).to_std().unwrap_or_default() > timeout {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn run(bin: &Path, grid: &Grid, size: Size) {
    let Size {
        households: count,
        interval_secs,
        publish_secs,
        intervals,
    } = size;
    let household_services = std::env::var_os("VOLTMESH_SCALE_HOME_ASSISTANT").is_some();
    println!(
        "scale/{count}_households: {NODES} node processes, bridge process, Mosquitto; {interval_secs} s intervals (= 15 profile minutes), meters every {publish_secs} s; 2 x {intervals} intervals; the bridge submits half the time between an interval's start and its gate before the gate; Home Assistant discovery and price signal {}, metered deliveries {}",
        if household_services { "on" } else { "off" },
        if std::env::var_os("VOLTMESH_SCALE_DELIVERIES").is_some() { "on" } else { "off" }
    );
    let dir = std::env::temp_dir().join(format!("voltmesh-scale-{}-{count}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the run directory");
    let mut procs = Processes {
        children: Vec::new(),
        dir: dir.clone(),
        keep: std::env::var_os("VOLTMESH_SCALE_KEEP").is_some(),
    };
    let defaults = DemoOptions::default();
    let participants: Vec<ParticipantId> = (1..=count)
        .map(|n| ParticipantId::from(format!("hh-{n:02}")))
        .collect();
    let hood = neighborhood::write(
        &dir,
        NODES,
        &participants,
        Market {
            mechanism: defaults.mechanism,
            prices: defaults.prices,
            interval_secs,
        },
    )
    .expect("write the neighborhood");
    let broker = Mosquitto::start(&BrokerOptions {
        log_all: false,
        ..BrokerOptions::default()
    });
    for i in 0..NODES {
        let node_dir = dir.join(format!("node{i}"));
        procs.spawn(
            &format!("node{i}"),
            bin,
            &["node", "--config"],
            &node_dir.join("node.toml"),
            &node_dir.join("node.log"),
            "warn",
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let apis: Vec<NodeClient> = hood
        .nodes
        .iter()
        .map(|n| {
            NodeClient::new(&format!("http://{}", n.api))
                .expect("client")
                .with_read_key(&hood.genesis.neighborhood, hood.bridge_key.clone())
        })
        .collect();
    runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(60);
        for api in &apis {
            while api.status().await.map_or(0, |s| s.peers) < NODES - 1 {
                assert!(Instant::now() < deadline, "the nodes did not connect");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });
    procs.check();

    let len = i64::from(interval_secs);
    let lead = i64::from(hood.genesis.market.interval.gate_closure_lead_secs());
    // The bridge submits half an interval before each gate: at 10,000 households the orders take
    // seconds to commit (by default it would plan a quarter of the way, like 60 s of a real
    // 15-minute interval).
    let submit_lead = u32::try_from((len - lead) / 2).unwrap_or(1).max(1);
    let origin_unix = (now().timestamp() / len + 2) * len;
    let origin = DateTime::from_timestamp(origin_unix, 0).unwrap_or_else(now);
    let total = 2 * intervals;
    let first_step = grid
        .load_profiles
        .index_of(defaults.from)
        .expect("the demo's first profile step");
    // Profiles wrap around the year: the window starts early enough to fit.
    let first_step = first_step.min(grid.intervals().saturating_sub(WARM_UP + total + 2));
    let homes: Vec<DemoHousehold> = households::build(
        grid,
        count,
        defaults.seed,
        defaults.prices,
        Playback {
            first_step,
            steps: WARM_UP + total + 2,
            origin,
            step: TimeDelta::seconds(len),
            pv_scale: defaults.pv_scale,
        },
    )
    .expect("households");
    let toml = households::bridge_toml(
        &BrokerAddr {
            host: "127.0.0.1".into(),
            port: broker.port,
        },
        &hood.nodes[0].api,
        &hood.genesis.neighborhood,
        &hood.bridge_key_file,
        &dir.join("genesis.json"),
        &homes,
        Some(submit_lead),
    );
    // Home Assistant discovery and the price signal (the bridge's defaults) only on request:
    // with them the bridge also reads every trading household's totals from node 0 after each
    // interval, which this bench does not measure separately yet.
    let toml = if household_services {
        toml
    } else {
        toml.home_assistant_discovery(false).price_signal_horizon(0)
    };
    // Metered deliveries (issue 14) likewise only on request. Every household with any energy
    // to trade bids (1 Wh, not the default 10 Wh: a small load's night or a PV roof's evening
    // crossing stays a whole interval under 10 Wh), so the node sees the full 10,000 orders.
    let toml = toml
        .submit_deliveries(std::env::var_os("VOLTMESH_SCALE_DELIVERIES").is_some())
        // Reading every household's committed bill after each window is part of the same
        // household services: on with them, off by default.
        .publish_bills(std::env::var_os("VOLTMESH_SCALE_DELIVERIES").is_some())
        .min_order_wh(1)
        .to_string();
    let bridge_toml = dir.join("bridge.toml");
    std::fs::write(&bridge_toml, toml).expect("write bridge.toml");
    procs.spawn(
        "bridge",
        bin,
        &["bridge", "--config"],
        &bridge_toml,
        &dir.join("bridge.log"),
        // The planner's two lines per interval say how many orders the node took.
        BRIDGE_LOG,
    );

    let meters: Vec<fleet::SimMeter> = homes.iter().map(|h| h.meter.clone()).collect();
    drop(homes);
    let pids = procs.pids();
    let mut bridge_log = BridgeLog::new(dir.join("bridge.log"));
    let (seen, samples, missed) = runtime.block_on(async {
        let mut mqtt = rumqttc::MqttOptions::new("voltmesh-scale-meters", "127.0.0.1", broker.port);
        mqtt.set_keep_alive(Duration::from_secs(30));
        let (client, mut eventloop) = rumqttc::AsyncClient::new(mqtt, 1024);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut loop_stop = stopped.clone();
        let event_loop = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = loop_stop.changed() => return,
                    event = eventloop.poll() => if event.is_err() {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    },
                }
            }
        });
        let mut meters_stop = stopped.clone();
        let publisher = tokio::spawn(async move {
            let period = Duration::from_secs(u64::from(publish_secs));
            let stop = async move {
                let _ = meters_stop.changed().await;
            };
            fleet::publish(&meters, &client, period, stop).await
        });
        let mut seen = Vec::with_capacity(total);
        let mut samples = Vec::new();
        let mut missed = 0usize;
        let timeout = Duration::from_secs(u64::from(interval_secs) * 3 + 30);
        for i in 0..total {
            if i == 0 || i == intervals {
                samples.push(sample(&pids));
                if let [.., from, to] = samples.as_slice() {
                    // Printed now, so that a run that stops later still gives period 1.
                    report_period("period 1", from, to);
                }
            }
            let start = origin_unix + len * (WARM_UP + i) as i64;
            let gate = DateTime::from_timestamp(start - lead, 0).unwrap_or_else(now);
            let Some(s) = clearing_of(&apis[0], start, gate, timeout).await else {
                // Counted and reported, not fatal: the run's other figures stay worth having.
                missed += 1;
                let status = apis[0].status().await;
                println!(
                    "  interval {start} ({}/{total}) did not clear within {} s of its gate; node 0: {status:?}",
                    i + 1,
                    timeout.as_secs()
                );
                if missed > 3 {
                    println!("  more than 3 intervals missed: the run stops here");
                    break;
                }
                continue;
            };
            // Every 96th interval, and any that committed fewer orders than the node took from
            // the bridge or took more than 5 s (what to look into in the logs, kept with
            // VOLTMESH_SCALE_KEEP).
            bridge_log.refresh();
            let submitted = bridge_log.intervals.get(&start).copied();
            let short = submitted.is_none_or(|b| s.orders < b.taken())
                || s.delay > Duration::from_secs(5);
            if short || (i + 1) % 96 == 0 || i + 1 == total {
                let of = submitted.map_or("? (not in the bridge's log)".to_owned(), |b| {
                    format!("{} taken ({} planned, {} households)", b.taken(), b.signed, count)
                });
                println!(
                    "  interval {:>5}/{total}: {} orders of {of}, committed {:.2} s after the gate",
                    i + 1,
                    s.orders,
                    s.delay.as_secs_f64()
                );
            }
            seen.push(s);
        }
        samples.push(sample(&pids));
        if samples.len() == 3 {
            report_period("period 2", &samples[1], &samples[2]);
        }
        let _ = stop.send(true);
        let sent = publisher.await.unwrap_or(0);
        let _ = event_loop.await;
        println!("  meters published {sent} readings");
        (seen, samples, missed)
    });
    procs.check();

    if seen.is_empty() {
        println!("scale/{count}_households: no interval cleared");
        procs.keep = true;
        return;
    }
    bridge_log.refresh();
    let mut planned = Vec::with_capacity(seen.len());
    let (mut lost, mut unknown, mut refused, mut expired) = (0usize, 0usize, 0usize, 0usize);
    for s in &seen {
        match bridge_log.intervals.get(&s.start) {
            Some(b) => {
                planned.push(b.signed);
                refused += b.refused;
                expired += b.expired;
                lost += usize::from(s.orders < b.taken());
            }
            None => unknown += 1,
        }
    }
    planned.sort_unstable();
    if let (Some(min), Some(max)) = (planned.first(), planned.last()) {
        println!(
            "scale/{count}_households: orders the bridge planned per interval min {min} / median {} / max {max} (a household whose forecast is under the bridge's minimum order has nothing to trade); refused by the node {refused}, still not taken at the gate {expired}",
            planned[planned.len() / 2],
        );
    }
    println!(
        "scale/{count}_households: {lost} of {} intervals committed fewer orders than the node took from the bridge{}",
        seen.len(),
        if unknown > 0 {
            format!(" ({unknown} intervals not in the bridge's log)")
        } else {
            String::new()
        }
    );
    let mut orders: Vec<usize> = seen.iter().map(|s| s.orders).collect();
    orders.sort_unstable();
    let mut delays: Vec<Duration> = seen.iter().map(|s| s.delay).collect();
    delays.sort_unstable();
    let over_5s = delays.iter().filter(|d| d.as_secs_f64() > 5.0).count();
    println!(
        "scale/{count}_households: orders committed per interval min {} / median {} / max {} of {count} households ({} orders in all over {total} intervals)",
        orders.first().copied().unwrap_or(0),
        orders[orders.len() / 2],
        orders.last().copied().unwrap_or(0),
        orders.iter().sum::<usize>(),
    );
    println!(
        "scale/{count}_households: gate to committed clearing min {:.2} s, p50 {:.2} s, p99 {:.2} s, max {:.2} s; {over_5s} of {total} intervals over 5 s",
        delays.first().copied().unwrap_or_default().as_secs_f64(),
        percentile(&delays, 0.5).as_secs_f64(),
        percentile(&delays, 0.99).as_secs_f64(),
        delays.last().copied().unwrap_or_default().as_secs_f64(),
    );
    let simulated_years = (WARM_UP + seen.len() + missed) as f64 / INTERVALS_PER_YEAR;
    for i in 0..NODES {
        let bytes = bytes_under(&dir.join(format!("node{i}")).join("data"));
        println!(
            "scale/{count}_households: node{i} store {:.1} MB = {:.1} kB per household-year",
            bytes as f64 / 1e6,
            bytes as f64 / 1e3 / (count as f64 * simulated_years)
        );
    }
    println!(
        "scale/{count}_households: {missed} of {total} intervals did not clear within the timeout"
    );
    if missed > 0 || lost > 0 {
        // Keep the logs of a run that missed intervals or lost orders.
        procs.keep = true;
    }
    let finished = seen.len() + missed == total;
    let (Some(first), Some(second), true) = (samples.get(1), samples.get(2), finished) else {
        println!(
            "scale/{count}_households: the run stopped before twice the chain; no memory ratio"
        );
        return;
    };
    for ((name, first, _), (_, second, _)) in first.procs.iter().zip(&second.procs) {
        println!(
            "scale/{count}_households: {name} resident memory after 2x the chain / after 1x = {:.2} ({first:.0} -> {second:.0} MB)",
            second / first
        );
    }
    drop(broker);
}

fn main() {
    // `cargo test --benches` runs every bench target with `--test`: nothing to check here.
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let Some(bin) = release_binary() else {
        println!("scale: skipped: build target/release/voltmesh first (cargo build --release -p voltmesh --bin voltmesh) or set VOLTMESH_BIN");
        return;
    };
    if !have_mosquitto() {
        println!("scale: skipped: mosquitto is not installed (apt-get install mosquitto)");
        return;
    }
    let grid = Grid::read(&voltmesh_sim::data::demo_grid_dir()).expect("the bundled grid");
    for size in sizes() {
        run(&bin, &grid, size);
    }
}
