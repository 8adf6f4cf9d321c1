//! `voltmesh demo`: a whole neighborhood on one machine (the work lives in
//! `voltmesh::demo`).

use std::path::PathBuf;

use crate::demo::broker::BrokerAddr;
use crate::demo::neighborhood::Prices;
use crate::demo::{run_blocking, DemoOptions};
use anyhow::Context;
use clap::Args;
use voltmesh_engine::Price;

/// Arguments of `voltmesh demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Market intervals to show before the summary.
    #[arg(long, default_value_t = 8)]
    intervals: u32,
    /// Real seconds per market interval; each plays one 15-minute profile step.
    #[arg(long, default_value_t = 10)]
    interval_secs: u32,
    /// Validator nodes (at least 4), in this process over libp2p on 127.0.0.1.
    #[arg(long, default_value_t = 4)]
    nodes: usize,
    /// Households (1..=20000): the loads of the bundled 1-LV-rural1--0-sw grid in turn (13 loads;
    /// beyond 13 they play again, each household with limits of its own).
    #[arg(long, default_value_t = 13)]
    households: usize,
    /// Use this MQTT broker (mqtt://host:port) instead of the embedded one.
    #[arg(long, value_name = "URL")]
    broker: Option<String>,
    /// Seed of the households' bidding strategy.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Profile time of the first step, "YYYY-MM-DD HH:MM".
    #[arg(long, default_value = "2016-06-21 10:00")]
    from: String,
    /// Feed-in tariff per kWh.
    #[arg(long, default_value = "0.08")]
    feed_in: Price,
    /// Retail price per kWh.
    #[arg(long, default_value = "0.30")]
    retail: Price,
    /// Network fee per locally traded kWh.
    #[arg(long, default_value = "0.02")]
    network_fee: Price,
    /// Keep the temporary directory (keys, genesis, node data, bridge.toml).
    #[arg(long)]
    keep: bool,
    /// Also write the summary as JSON to this file.
    #[arg(long, value_name = "FILE")]
    summary_json: Option<PathBuf>,
    /// Where the validators write their metrics (InfluxDB 2); unset: no metrics.
    #[command(flatten)]
    influx: voltmesh_metrics::cli::InfluxArgs,
}

/// The options `args` describe.
fn options(args: &DemoArgs) -> anyhow::Result<DemoOptions> {
    let from = chrono::NaiveDateTime::parse_from_str(args.from.trim(), "%Y-%m-%d %H:%M").map_err(
        |_| anyhow::anyhow!("bad --from {:?}: expected \"YYYY-MM-DD HH:MM\"", args.from),
    )?;
    let broker = match &args.broker {
        Some(url) => Some(url.parse::<BrokerAddr>()?),
        None => None,
    };
    Ok(DemoOptions {
        intervals: args.intervals,
        interval_secs: args.interval_secs,
        nodes: args.nodes,
        households: args.households,
        broker,
        seed: args.seed,
        keep: args.keep,
        from,
        prices: Prices {
            feed_in: args.feed_in,
            retail: args.retail,
            network_fee: args.network_fee,
        },
        node_metrics: args.influx.to_section(),
        ..DemoOptions::default()
    })
}

/// Runs `voltmesh demo` and prints its summary (and writes it as JSON with `--summary-json`).
///
/// # Errors
/// Bad options, a part of the stack that cannot start, or a summary file that cannot be written.
pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let options = options(args)?;
    let outcome = run_blocking(&options, &mut std::io::stdout())?;
    if let Some(path) = &args.summary_json {
        let bytes = serde_json::to_vec_pretty(&outcome)?;
        std::fs::write(path, bytes).with_context(|| path.display().to_string())?;
    }
    Ok(())
}
