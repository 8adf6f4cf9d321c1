//! `voltmesh bridge`: the meter bridge (the work lives in `voltmesh_meter_bridge`).
//!
//! Reads `bridge.toml` ([`voltmesh_meter_bridge::config`]), loads the bridge key (the format
//! `voltmesh keygen` writes), and runs [`voltmesh_meter_bridge::runtime::run`] with the node's HTTP
//! API as the order sink until Ctrl-C (SIGINT), which stops it cleanly: readings received but not
//! yet acknowledged stay with the broker for the next session.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use ed25519_dalek::SigningKey;
use tokio::sync::watch;
use voltmesh_consensus::net::keyfile;
use voltmesh_meter_bridge::config::{Config, DEFAULT_CONFIG};
use voltmesh_meter_bridge::node_client::HttpNode;
use voltmesh_meter_bridge::runtime::LinkStatus;
use voltmesh_meter_bridge::runtime::{self as bridge, Io, WallClock};

/// Arguments of `voltmesh bridge`.
#[derive(Debug, Args)]
pub(crate) struct BridgeArgs {
    /// The bridge's configuration file.
    #[arg(long, default_value = "bridge.toml")]
    config: PathBuf,
    /// Print a commented example configuration (every key with its default) and exit.
    #[arg(long)]
    print_example_config: bool,
    /// Where the bridge writes its metrics: these flags override `[metrics]` of the config file,
    /// whose missing keys fall back to the `VOLTMESH_INFLUX_*` variables.
    #[command(flatten)]
    influx: voltmesh_metrics::InfluxArgs,
}

/// The bridge key from `path` (64 hex characters, as `voltmesh keygen` writes it).
///
/// # Errors
/// If the file cannot be read or holds no ed25519 key.
pub(crate) fn load_key(path: &std::path::Path) -> anyhow::Result<SigningKey> {
    let keypair = keyfile::load_keypair(path)
        .with_context(|| format!("bridge key file {}", path.display()))?;
    let secret = keyfile::secret_key_bytes(&keypair)?;
    Ok(SigningKey::from_bytes(&secret))
}

fn run(args: &BridgeArgs) -> anyhow::Result<()> {
    let mut config = Config::load(&args.config)?;
    let flags = args.influx.to_section();
    config.metrics = config
        .metrics
        .overridden_by(&flags, |key| std::env::var(key).ok());
    let key = load_key(&config.node.key_file)?;
    let node = HttpNode::new(&config.node.api_url)?;
    tracing::info!(
        node = %node.base(),
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
    let counts = node.clone();
    runtime.block_on(async move {
        let ingest = bridge::new_ingest(&config);
        let (status, _status_rx) = watch::channel(LinkStatus::default());
        let io = Io {
            orders: node,
            signing_key: key,
            clock: WallClock::shared(),
            results: None,
            readings: None,
            status,
        };
        bridge::run(config, ingest, io, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
    })?;
    let c = counts.counts();
    tracing::info!(
        accepted = c.accepted,
        already_there = c.already_there,
        rejected = c.rejected,
        malformed = c.malformed,
        unavailable = c.unavailable,
        "bridge stopped"
    );
    Ok(())
}

pub(crate) fn bridge(args: &BridgeArgs) -> ExitCode {
    if args.print_example_config {
        let _ = std::io::stdout()
            .lock()
            .write_all(DEFAULT_CONFIG.as_bytes());
        return ExitCode::SUCCESS;
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr().lock(), "error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
