//! `voltmesh bridge`: the meter bridge (the work lives in `voltmesh_meter_bridge`).
//!
//! Reads `bridge.toml` ([`voltmesh_meter_bridge::config`]), loads the bridge key (the format
//! `voltmesh keygen` writes), and runs [`voltmesh_meter_bridge::runtime::run`] with the node's HTTP
//! API as the order sink until Ctrl-C (SIGINT), which stops it cleanly: readings received but not
//! yet acknowledged stay with the broker for the next session.
//!
//! SIGHUP, or a change of the config file (checked every
//! [`voltmesh_meter_bridge::runtime::reload::WATCH_PERIOD`]), reloads the
//! `[[household]]` list without a restart ([`voltmesh_meter_bridge::runtime::reload`]).

use anyhow::Context;
use ed25519_dalek::SigningKey;
use tokio::sync::{mpsc, watch};
use voltmesh_meter_bridge::cli::{BridgeArgs, BridgeCommand, DecodeArgs};
use voltmesh_meter_bridge::config::{Config, DEFAULT_CONFIG};
use voltmesh_meter_bridge::runtime::failover::Failover;
use voltmesh_meter_bridge::runtime::reload::{Reload, WATCH_PERIOD};
use voltmesh_meter_bridge::runtime::{self as bridge, Io, LinkStatus, WallClock};
use voltmesh_wire::client::NodeClient;

use super::BadInput;

/// The bridge key from `path` (64 hex characters, as `voltmesh keygen` writes it).
///
/// # Errors
/// If the file cannot be read or holds no ed25519 key.
pub fn load_key(path: &std::path::Path) -> anyhow::Result<SigningKey> {
    voltmesh_wire::key::read(path).with_context(|| format!("bridge key file {}", path.display()))
}

fn serve(args: &BridgeArgs) -> anyhow::Result<()> {
    let mut config = Config::load(&args.config)?;
    let flags = args.influx.to_section();
    config.metrics = config
        .metrics
        .overridden_by(&flags, |key| std::env::var(key).ok());
    let key = load_key(&config.node.key_file)?;
    let clients = config
        .node
        .api_url
        .urls()
        .iter()
        // Reads of the households' balances are signed with the bridge's key, which genesis
        // allows for every household it serves (issue 14: a household's data is private).
        .map(|url| {
            NodeClient::new(url).map(|c| c.with_read_key(&config.node.neighborhood, key.clone()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let nodes = clients
        .iter()
        .map(|c| c.base().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let node = Failover::new(clients).context("[node] api_url names no node")?;
    tracing::info!(
        nodes = %nodes,
        neighborhood = %config.node.neighborhood,
        bridge_key = %hex::encode(key.verifying_key().to_bytes()),
        households = config.registry.households().count(),
        metrics = config.metrics.to_config(|key| std::env::var(key).ok()).url.is_some(),
        "starting the bridge"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let clients = node.sinks().to_vec();
    let path = args.config.clone();
    runtime.block_on(async move {
        let ingest = bridge::new_ingest(&config);
        let (reload_tx, requests) = mpsc::channel(1);
        forward_hangups(reload_tx);
        let (status, _status_rx) = watch::channel(LinkStatus::default());
        let io = Io {
            orders: node,
            signing_key: key,
            clock: WallClock::shared(),
            results: None,
            readings: None,
            status,
            reload: Some(Reload {
                path,
                requests,
                watch: Some(WATCH_PERIOD),
            }),
        };
        bridge::run(config, ingest, io, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
    })?;
    for client in clients {
        let c = client.counts();
        tracing::info!(
            node = %client.base(),
            accepted = c.accepted,
            already_there = c.already_there,
            rejected = c.rejected,
            malformed = c.malformed,
            unavailable = c.unavailable,
            "bridge stopped"
        );
    }
    Ok(())
}

/// Sends a reload request on `requests` for every SIGHUP (one waiting request is enough: a full
/// channel means a reload is already due). Call inside the runtime.
fn forward_hangups(requests: mpsc::Sender<()>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(cause = %e, "SIGHUP not handled: reload by editing the file");
                return;
            }
        };
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the household list");
            let _ = requests.try_send(());
        }
    });
    #[cfg(not(unix))]
    drop(requests);
}

/// `voltmesh bridge decode`: prints every reading the capture completes as a JSON line.
///
/// # Errors
/// [`BadInput`] (exit status 2) with the decoder's error when the capture gives no reading.
fn decode(args: &DecodeArgs) -> anyhow::Result<()> {
    let readings = voltmesh_meter_bridge::cli::decode(args, chrono::Utc::now())
        .map_err(|e| BadInput(e.into()))?;
    for reading in readings {
        super::print(&format!("{}\n", serde_json::to_string(&reading)?));
    }
    Ok(())
}

/// Runs `voltmesh bridge` until Ctrl-C, prints the example configuration, or decodes a capture.
///
/// # Errors
/// A bad configuration or key file, or a bridge that stops on an error.
pub fn run(args: &BridgeArgs) -> anyhow::Result<()> {
    if let Some(BridgeCommand::Decode(decode_args)) = &args.command {
        return decode(decode_args);
    }
    if args.print_example_config {
        super::print(DEFAULT_CONFIG);
        return Ok(());
    }
    serve(args)
}
