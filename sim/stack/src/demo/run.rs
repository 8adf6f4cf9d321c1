//! The demo's orchestration: set up, run the intervals, show them, stop cleanly.
//!
//! # Timeline
//! Meters start publishing at once; the profile's first step is delivered during the first whole
//! market interval after the nodes are up (the *origin*), one step per interval. The bridge
//! forecasts an interval from the last complete interval before its gate closes, so the first
//! interval it can order for is the one two after the origin: that is the first interval shown,
//! and `intervals` are shown from there. With households' own orders (`--via-network`) one more
//! interval comes first, so the bridge has been subscribed for a whole interval before the first
//! own order is published.
//!
//! # Stopping
//! The run ends after the last interval or when `shutdown` completes (Ctrl-C in `voltmesh demo`),
//! whichever is first. Either way the meters, the bridge and every node are stopped and joined,
//! and the temporary directory is removed unless `keep` is set.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use serde::Serialize;
use tokio::sync::{oneshot, watch};
use voltmesh_consensus::node::metrics::MetricsSection;
use voltmesh_engine::{Mechanism, ParticipantId, Price, K};
use voltmesh_meter_bridge::config::Config as BridgeConfig;
use voltmesh_meter_bridge::runtime as bridge;
use voltmesh_wire::client::NodeClient;
use voltmesh_wire::{IntervalClearing, SignedOrder};

use super::broker::BrokerAddr;
use super::households::{self, DemoHousehold, Playback};
use super::neighborhood::{self, Prices};
use super::progress::{wait_for_interval, wait_for_peers, IntervalView, NodeApi};
use super::summary::{self, IntervalRecord, Ledger, Summary};
use super::{compare, io_error, nodes, own_orders, DemoError};
use crate::meters::fleet;
use crate::via_network::PlannedOrder;
use voltmesh_sim::simbench::Grid;

/// Intervals between the origin and the first interval shown (see the module timeline).
const WARM_UP_INTERVALS: usize = 2;

/// What to run.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Market intervals to show.
    pub intervals: u32,
    /// Real seconds per market interval (each plays one 15-minute profile step).
    pub interval_secs: u32,
    /// Validators (at least 4).
    pub nodes: usize,
    /// Households (the grid's first loads).
    pub households: usize,
    /// An external broker instead of the embedded one.
    pub broker: Option<BrokerAddr>,
    /// Seed of the households' bidding strategy.
    pub seed: u64,
    /// Keep the temporary directory (keys, genesis, node data).
    pub keep: bool,
    /// Profile time of the first step played.
    pub from: NaiveDateTime,
    /// Tariffs and fee.
    pub prices: Prices,
    /// How intervals clear (genesis).
    pub mechanism: Mechanism,
    /// PV scale.
    pub pv_scale: f64,
    /// SimBench grid folder.
    pub grid: PathBuf,
    /// Seconds between meter readings.
    pub publish_secs: u32,
    /// At the end, re-clear every committed interval in process and compare
    /// (`voltmesh sim --via-network`).
    pub compare: bool,
    /// Where the validators write their metrics (`[metrics]` of `node.toml`; each node's `node`
    /// tag is set to `demo-node<i>`). Keys left `None` fall back to `VOLTMESH_INFLUX_*`.
    pub node_metrics: MetricsSection,
    /// The households publish these orders themselves, one list per shown interval, on the
    /// bridge's household-orders topic ([`super::own_orders`]; `voltmesh sim --via-network`).
    pub own_orders: Option<Vec<Vec<PlannedOrder>>>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        let price = |micros| Price::from_micros(micros).unwrap_or(Price::ZERO);
        DemoOptions {
            intervals: 8,
            interval_secs: 10,
            nodes: 4,
            households: 13,
            broker: None,
            seed: 42,
            keep: false,
            from: chrono::NaiveDate::from_ymd_opt(2016, 6, 21)
                .and_then(|d| d.and_hms_opt(10, 0, 0))
                .unwrap_or_default(),
            prices: Prices {
                feed_in: price(80_000),
                retail: price(300_000),
                network_fee: price(20_000),
            },
            mechanism: Mechanism::Uniform { k: K::HALF },
            pv_scale: 1.0,
            grid: voltmesh_sim::data::demo_grid_dir(),
            publish_secs: 1,
            compare: false,
            node_metrics: MetricsSection::default(),
            own_orders: None,
        }
    }
}

/// What a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct DemoOutcome {
    /// Every interval shown.
    pub records: Vec<IntervalRecord>,
    /// The summary.
    pub summary: Summary,
    /// Whether the run was stopped before its last interval.
    pub interrupted: bool,
    /// Intervals compared with the in-process engine (with `compare`).
    pub compared: usize,
    /// Of those, intervals whose outcomes differ.
    pub mismatched: usize,
    /// The kept directory (with `keep`).
    pub kept_dir: Option<PathBuf>,
    /// Every interval shown, with the clearing the nodes committed for it.
    #[serde(skip)]
    pub views: Vec<IntervalView>,
    /// What the nodes had committed after the last interval (with `compare`).
    #[serde(skip)]
    pub committed: Committed,
}

/// What the nodes had committed after the last interval shown.
#[derive(Debug, Clone, Default)]
pub struct Committed {
    /// Every committed order, by interval start, in ledger order.
    pub orders: BTreeMap<i64, Vec<SignedOrder>>,
    /// The clearing of every shown interval that has one, by interval start (read after the last
    /// interval: a clearing committed after the demo showed its interval is here too).
    pub clearings: BTreeMap<i64, IntervalClearing>,
}

fn now() -> DateTime<Utc> {
    DateTime::<Utc>::from(std::time::SystemTime::now())
}

/// Runs the demo in a fresh single-threaded runtime until it ends or Ctrl-C.
///
/// # Errors
/// As [`run`], or [`DemoError::Io`] if the runtime cannot start.
pub fn run_blocking(
    options: &DemoOptions,
    out: &mut (dyn Write + Send),
) -> Result<DemoOutcome, DemoError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io_error("start the runtime"))?;
    runtime.block_on(run(options, out, async {
        let _ = tokio::signal::ctrl_c().await;
    }))
}

/// Runs the demo until its last interval or until `shutdown` completes (module docs), writing
/// progress to `out`.
///
/// # Errors
/// [`DemoError`] if an option is out of range, something cannot be set up, or the neighborhood
/// stalls; everything started is stopped first.
pub async fn run(
    options: &DemoOptions,
    out: &mut (dyn Write + Send),
    shutdown: impl Future<Output = ()>,
) -> Result<DemoOutcome, DemoError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let body = run_until(options, out, stop_rx);
    tokio::pin!(body);
    tokio::select! {
        result = &mut body => return result,
        () = shutdown => {
            let _ = stop_tx.send(true);
        }
    }
    body.await
}

/// Completes once `stop` is set.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn check(options: &DemoOptions) -> Result<(), DemoError> {
    let bad = |m: String| Err(DemoError::Options(m));
    if options.nodes < 4 {
        return bad(format!(
            "--nodes must be at least 4 (BFT with one fault), got {}",
            options.nodes
        ));
    }
    if options.nodes > 16 {
        return bad(format!("--nodes must be at most 16, got {}", options.nodes));
    }
    if options.intervals == 0 {
        return bad("--intervals must be at least 1".into());
    }
    if options.interval_secs < 6 || 86_400 % options.interval_secs != 0 {
        return bad(format!(
            "--interval-secs must divide a day and be at least 6, got {}",
            options.interval_secs
        ));
    }
    if options.publish_secs == 0 || options.interval_secs % options.publish_secs != 0 {
        return bad("the meter period must divide the interval".into());
    }
    if !(options.pv_scale >= 0.0 && options.pv_scale.is_finite()) {
        return bad("--pv-scale must be a non-negative number".into());
    }
    if let Some(own) = &options.own_orders {
        if own.len() != options.intervals as usize {
            return bad(format!(
                "{} intervals of household orders for {} intervals",
                own.len(),
                options.intervals
            ));
        }
    }
    Ok(())
}

/// The parts that run and must be stopped.
struct Running {
    nodes: nodes::RunningNodes,
    stop_parts: Option<oneshot::Sender<()>>,
    parts: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    async fn stop(mut self) -> Result<(), DemoError> {
        drop(self.stop_parts.take());
        for part in self.parts.drain(..) {
            // Each part stops within a few hundred ms of the signal; a stuck one is aborted.
            let abort = part.abort_handle();
            if tokio::time::timeout(Duration::from_secs(10), part)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        self.nodes.stop()
    }
}

async fn run_until(
    options: &DemoOptions,
    out: &mut (dyn Write + Send),
    mut stop: watch::Receiver<bool>,
) -> Result<DemoOutcome, DemoError> {
    check(options)?;
    let grid = Grid::read(&options.grid).map_err(|e| DemoError::Grid(e.to_string()))?;
    let first_step = grid.load_profiles.index_of(options.from).ok_or_else(|| {
        DemoError::Options(format!(
            "{} is not a profile step of {} (from {})",
            options.from,
            grid.name,
            grid.load_profiles.start()
        ))
    })?;
    households::check_count(&grid, options.households)?;
    let participants: Vec<ParticipantId> = (1..=options.households)
        .map(|n| ParticipantId::from(format!("hh-{n:02}")))
        .collect();
    let dir = tempfile::Builder::new()
        .prefix("voltmesh-demo-")
        .tempdir()
        .map_err(io_error("create the demo directory"))?;
    let mut hood = neighborhood::write(
        dir.path(),
        options.nodes,
        &participants,
        neighborhood::Market {
            mechanism: options.mechanism,
            prices: options.prices,
            interval_secs: options.interval_secs,
        },
    )?;
    for (i, node) in hood.nodes.iter_mut().enumerate() {
        node.config.metrics = MetricsSection {
            node: Some(format!("demo-node{i}")),
            ..options.node_metrics.clone()
        };
    }
    let broker = match &options.broker {
        Some(addr) => {
            super::broker::wait_listening(addr, Duration::from_secs(5))?;
            addr.clone()
        }
        None => embedded_broker()?,
    };
    let say = |out: &mut (dyn Write + Send), line: &str| {
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    say(
        out,
        &format!(
            "voltmesh demo: {} validators, {} households of {} ({} meters: DSMR, Tasmota, Shelly), broker {}, {} s intervals = 15 profile minutes\n  directory {}\n  node API http://{}",
            options.nodes,
            options.households,
            grid.name,
            options.households,
            broker,
            options.interval_secs,
            dir.path().display(),
            hood.nodes[0].api
        ),
    );
    let spec = hood.genesis.market.interval;
    let apis: Vec<NodeApi> = hood
        .nodes
        .iter()
        .map(|n| NodeApi::new(&n.api, &hood.genesis.neighborhood, &hood.bridge_key))
        .collect();
    let mut running = Running {
        nodes: nodes::start(&hood.nodes)?,
        stop_parts: None,
        parts: Vec::new(),
    };
    let result = async {
        tokio::select! {
            r = wait_for_peers(&apis, Duration::from_secs(60)) => r?,
            () = stopped(&mut stop) => return Ok(None),
        }
        running.nodes.check()?;
        let len = i64::from(options.interval_secs);
        let origin_unix = (now().timestamp() / len + 1) * len;
        let origin = DateTime::from_timestamp(origin_unix, 0).unwrap_or_else(now);
        let intervals = options.intervals as usize;
        // Households that publish their own orders get one more interval first, so the bridge
        // has been subscribed for a whole interval before the first of them is published.
        let warm_up = WARM_UP_INTERVALS + usize::from(options.own_orders.is_some());
        let homes = households::build(
            &grid,
            options.households,
            options.seed,
            options.prices,
            Playback {
                first_step,
                steps: warm_up + intervals + 2,
                origin,
                step: TimeDelta::seconds(len),
                pv_scale: options.pv_scale,
            },
        )?;
        say(
            out,
            &format!(
                "  nodes connected; meters play {} from {} UTC; first interval shown: {}",
                grid.load_profiles
                    .time_of(first_step)
                    .format("%Y-%m-%d %H:%M"),
                origin.format("%H:%M:%S"),
                (origin + TimeDelta::seconds(len * warm_up as i64)).format("%H:%M:%S"),
            ),
        );
        let (stop_parts, parts_stopped) = oneshot::channel::<()>();
        running.stop_parts = Some(stop_parts);
        let schedule = options.own_orders.as_ref().map(|own| own_orders::Schedule {
            first_start: origin_unix + len * warm_up as i64,
            len_secs: len,
            lead_secs: i64::from(spec.gate_closure_lead_secs()),
            intervals: own.clone(),
            prefix: String::new(),
            households: Vec::new(),
        });
        running.parts = start_parts(&broker, &hood, &homes, options, schedule, parts_stopped)?;

        let mut ledger = Ledger::new(options.prices)?;
        let mut views = Vec::with_capacity(intervals);
        say(out, &summary::row_header());
        let timeout = Duration::from_secs(u64::from(options.interval_secs) * 3 + 30);
        for i in 0..intervals {
            let step = warm_up + i;
            let start = origin_unix + len * step as i64;
            let wait = wait_for_interval(&apis[0], start, spec.gate_closure_lead_secs(), timeout);
            tokio::pin!(wait);
            let view = loop {
                tokio::select! {
                    v = &mut wait => break Some(v?),
                    () = stopped(&mut stop) => break None,
                    // A node that stops on its own says why at once, not after the timeout.
                    () = tokio::time::sleep(Duration::from_secs(1)) => running.nodes.check()?,
                }
            };
            let Some(view) = view else { break };
            let record = ledger.record(
                &view,
                step,
                grid.load_profiles.time_of(first_step + step),
                &homes,
            )?;
            say(out, &summary::row(record));
            views.push(view);
        }
        let (compared, mismatched, committed) = if options.compare && !ledger.records.is_empty() {
            compare_with_engine(&apis[0], &hood.genesis, &ledger, out).await?
        } else {
            (0, 0, Committed::default())
        };
        Ok(Some((
            ledger,
            homes,
            (compared, mismatched, committed),
            views,
        )))
    }
    .await;
    let stopped_ok = running.stop().await;
    let interrupted = *stop.borrow();
    if let (Err(e), Err(node)) = (&result, &stopped_ok) {
        // The node's own error says more than the stall it caused.
        tracing::error!(cause = %e, "the demo stalled");
        return Err(DemoError::Stalled(format!("{e}; {node}")));
    }
    let (ledger, homes, (compared, mismatched, committed), views) = match result? {
        Some(parts) => parts,
        None => (
            Ledger::new(options.prices)?,
            Vec::new(),
            (0, 0, Committed::default()),
            Vec::new(),
        ),
    };
    stopped_ok?;
    let summary = ledger.summary();
    say(out, &summary::table(&summary, homes.len()));
    if interrupted {
        say(
            out,
            "stopped by Ctrl-C; every node, the bridge and the meters are shut down",
        );
    }
    let kept_dir = if options.keep {
        let kept = dir.keep();
        say(out, &format!("kept {}", kept.display()));
        Some(kept)
    } else {
        None
    };
    Ok(DemoOutcome {
        records: ledger.records,
        summary,
        interrupted,
        compared,
        mismatched,
        kept_dir,
        views,
        committed,
    })
}

#[cfg(feature = "embedded-broker")]
fn embedded_broker() -> Result<BrokerAddr, DemoError> {
    super::broker::start_embedded()
}

#[cfg(not(feature = "embedded-broker"))]
fn embedded_broker() -> Result<BrokerAddr, DemoError> {
    Err(DemoError::Broker(
        "built without the embedded-broker feature: pass --broker mqtt://host:port".into(),
    ))
}

/// Starts the bridge, the meters' MQTT connection and the meters; all stop when `stop` is
/// dropped or fires.
fn start_parts(
    broker: &BrokerAddr,
    hood: &neighborhood::Neighborhood,
    homes: &[DemoHousehold],
    options: &DemoOptions,
    own: Option<own_orders::Schedule>,
    stop: oneshot::Receiver<()>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, DemoError> {
    let toml = households::bridge_toml(
        broker,
        &hood.nodes[0].api,
        &hood.genesis.neighborhood,
        &hood.bridge_key_file,
        &hood.dir.join("genesis.json"),
        homes,
        None,
    )
    .to_string();
    std::fs::write(hood.dir.join("bridge.toml"), &toml).map_err(io_error("write bridge.toml"))?;
    let mut config =
        BridgeConfig::from_toml(&toml).map_err(|e| DemoError::Bridge(e.to_string()))?;
    // The bridge writes its metrics where the nodes do (`voltmesh demo --influx-*`).
    // The nodes' connection settings; the bridge's `node` tag stays its client id.
    config.metrics = MetricsSection {
        node: None,
        ..options.node_metrics.clone()
    };
    let households_prefix = config.topics.households_prefix.clone();
    // The bridge reads its households' balances signed with its key (genesis allows it for
    // every household): a household's data is served to its keys only.
    let sink = NodeClient::new(&format!("http://{}", hood.nodes[0].api))
        .map_err(|e| DemoError::Bridge(e.to_string()))?
        .with_read_key(&hood.genesis.neighborhood, hood.bridge_key.clone());
    let (stop_all, _) = tokio::sync::broadcast::channel::<()>(1);
    let signal = {
        let stop_all = stop_all.clone();
        async move {
            let _ = stop.await;
            let _ = stop_all.send(());
        }
    };
    let until = |stop_all: &tokio::sync::broadcast::Sender<()>| {
        let mut rx = stop_all.subscribe();
        async move {
            let _ = rx.recv().await;
        }
    };
    let mut parts = vec![tokio::spawn(signal)];

    let (status, _) = watch::channel(Default::default());
    let ingest = bridge::new_ingest(&config);
    let io = bridge::Io {
        orders: sink,
        signing_key: hood.bridge_key.clone(),
        clock: bridge::WallClock::shared(),
        results: None,
        readings: None,
        status,
        reload: None,
    };
    let bridge_stop = until(&stop_all);
    parts.push(tokio::spawn(async move {
        if let Err(e) = bridge::run(config, ingest, io, bridge_stop).await {
            tracing::error!(cause = %e, "bridge stopped");
        }
    }));

    let mut mqtt = rumqttc::MqttOptions::new("voltmesh-demo-meters", &broker.host, broker.port);
    mqtt.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = rumqttc::AsyncClient::new(mqtt, 256);
    let loop_stop = until(&stop_all);
    parts.push(tokio::spawn(async move {
        tokio::pin!(loop_stop);
        loop {
            tokio::select! {
                biased;
                () = &mut loop_stop => return,
                event = eventloop.poll() => if let Err(e) = event {
                    tracing::warn!(cause = %e, "meters' MQTT connection; reconnecting");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                },
            }
        }
    }));
    if let Some(mut schedule) = own {
        schedule.prefix = households_prefix;
        schedule.households = homes.iter().map(|h| h.participant.clone()).collect();
        let client = client.clone();
        let own_stop = until(&stop_all);
        parts.push(tokio::spawn(async move {
            tokio::select! {
                sent = own_orders::publish(&client, &schedule) => tracing::debug!(sent, "households published their orders"),
                () = own_stop => {}
            }
        }));
    }
    let meters: Vec<fleet::SimMeter> = homes.iter().map(|h| h.meter.clone()).collect();
    let period = Duration::from_secs(u64::from(options.publish_secs));
    let meters_stop = until(&stop_all);
    parts.push(tokio::spawn(async move {
        let sent = fleet::publish(&meters, &client, period, meters_stop).await;
        tracing::debug!(sent, "meters stopped");
        let _ = client.disconnect().await;
    }));
    Ok(parts)
}

/// Re-clears every committed interval shown with the in-process engine and prints the table;
/// returns the intervals compared, those that differ, and what was committed.
async fn compare_with_engine(
    api: &NodeApi,
    genesis: &voltmesh_wire::Genesis,
    ledger: &Ledger,
    out: &mut (dyn Write + Send),
) -> Result<(usize, usize, Committed), DemoError> {
    let mut clearings = Vec::new();
    for r in &ledger.records {
        if let Some(c) = api.interval(r.start).await? {
            clearings.push(c);
        }
    }
    // Read after the clearings: every order they cleared is at or below this height.
    let height = api.height().await;
    let orders = compare::committed_orders(api, height).await?;
    let comparisons = compare::compare(genesis, &clearings, &orders);
    let _ = write!(out, "{}", compare::table(&comparisons));
    let mismatched = comparisons.iter().filter(|c| !c.matches()).count();
    let clearings = clearings
        .into_iter()
        .map(|c| (c.interval_start, c))
        .collect();
    Ok((
        comparisons.len(),
        mismatched,
        Committed { orders, clearings },
    ))
}
