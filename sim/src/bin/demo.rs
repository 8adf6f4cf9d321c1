//! `voltmesh demo`: a whole neighborhood on one machine (the work lives in
//! `voltmesh_sim::demo`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use voltmesh_engine::Price;
use voltmesh_sim::demo::broker::BrokerAddr;
use voltmesh_sim::demo::neighborhood::Prices;
use voltmesh_sim::demo::{run_blocking, DemoOptions};

/// Arguments of `voltmesh demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Market intervals to show before the summary.
    #[arg(long, default_value_t = 8)]
    intervals: u32,
    /// Real seconds per market interval; each plays one 15-minute profile step.
    #[arg(long, default_value_t = 10)]
    interval_secs: u32,
    /// Validator nodes (at least 4), in this process over libp2p on 127.0.0.1.
    #[arg(long, default_value_t = 4)]
    nodes: usize,
    /// Households: the first N loads of the bundled 1-LV-rural1--0-sw grid (1..=13).
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

fn fail(message: impl std::fmt::Display) -> ExitCode {
    let _ = writeln!(std::io::stderr().lock(), "error: {message}");
    ExitCode::FAILURE
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,libp2p=error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
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

pub(crate) fn demo(args: &DemoArgs) -> ExitCode {
    init_logging();
    let options = match options(args) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    let mut stdout = std::io::stdout();
    let outcome = match run_blocking(&options, &mut stdout) {
        Ok(outcome) => outcome,
        Err(e) => return fail(e),
    };
    if let Some(path) = &args.summary_json {
        let written = serde_json::to_vec_pretty(&outcome)
            .map_err(anyhow::Error::from)
            .and_then(|bytes| std::fs::write(path, bytes).map_err(anyhow::Error::from));
        if let Err(e) = written {
            return fail(format!("{}: {e}", path.display()));
        }
    }
    ExitCode::SUCCESS
}
