//! `voltmesh sim`: run a scenario on a SimBench grid, or `voltmesh sim powerflow` one moment.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use chrono::{NaiveDate, NaiveDateTime};
use voltmesh_engine::{Mechanism, PayAsBidPricing, Price, K};

use crate::metrics::{summary_line, SimMetrics};
use crate::powerflow::{snapshot_at, VoltageBand};
use crate::run::{run_observed, Window};
use crate::scenario::Scenario;
use crate::simbench::Grid;
use crate::{data, output, plot};

/// `voltmesh sim`: simulate a neighbourhood trading on a real LV grid, with a power flow.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SimArgs {
    /// A one-off task instead of a run.
    #[command(subcommand)]
    pub command: Option<SimCommand>,
    /// The run's options.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Sub-tasks of `voltmesh sim`.
#[derive(Debug, clap::Subcommand)]
pub enum SimCommand {
    /// Solve the grid's power flow at one moment and print it as JSON (the reference shape).
    Powerflow(PowerflowArgs),
}

/// `voltmesh sim powerflow`.
#[derive(Debug, clap::Args)]
pub struct PowerflowArgs {
    /// SimBench grid folder (default: the bundled 1-LV-rural1--0-sw).
    #[arg(long)]
    pub grid: Option<PathBuf>,
    /// Interval start, "YYYY-MM-DD HH:MM" (standard time, as the profile index counts).
    #[arg(long)]
    pub at: String,
}

/// Options of a simulation run.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// SimBench grid folder (default: the bundled 1-LV-rural1--0-sw).
    #[arg(long)]
    pub grid: Option<PathBuf>,
    /// First day, "YYYY-MM-DD" or "YYYY-MM-DD HH:MM" (default: the profiles' start).
    #[arg(long)]
    pub from: Option<String>,
    /// Number of days to simulate.
    #[arg(long, default_value_t = 7.0)]
    pub days: f64,
    /// Output folder for CSV, JSON and PNG files.
    #[arg(long, default_value = "sim-out")]
    pub out: PathBuf,
    /// Multiplies every PV system of the grid.
    #[arg(long, default_value_t = 1.0)]
    pub pv_scale: f64,
    /// Share (0..1) of households without PV that get a new system.
    #[arg(long, default_value_t = 0.0)]
    pub pv_share: f64,
    /// Peak power of a new PV system, kW.
    #[arg(long, default_value_t = 5.0)]
    pub pv_kwp: f64,
    /// Share (0..1) of households with a battery.
    #[arg(long, default_value_t = 0.0)]
    pub battery_share: f64,
    /// Battery capacity, kWh.
    #[arg(long, default_value_t = 10.0)]
    pub battery_kwh: f64,
    /// Battery power, kW.
    #[arg(long, default_value_t = 5.0)]
    pub battery_kw: f64,
    /// Retail price per kWh.
    #[arg(long, default_value = "0.30")]
    pub retail: Price,
    /// Feed-in tariff per kWh.
    #[arg(long, default_value = "0.08")]
    pub feed_in: Price,
    /// Network fee per locally traded kWh (paid by the buyer).
    #[arg(long, default_value = "0.02")]
    pub network_fee: Price,
    /// Clearing mechanism: uniform, pay-as-bid or cda.
    #[arg(long, default_value = "uniform")]
    pub mechanism: String,
    /// k of the uniform price, in [0, 1].
    #[arg(long, default_value = "0.5")]
    pub k: K,
    /// Market interval in minutes (multiple of 15).
    #[arg(long, default_value_t = 15)]
    pub interval_minutes: u32,
    /// Seed for every random choice.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Lower limit of the voltage band, p.u.
    #[arg(long, default_value_t = 0.9)]
    pub vm_min: f64,
    /// Upper limit of the voltage band, p.u.
    #[arg(long, default_value_t = 1.1)]
    pub vm_max: f64,
    /// Do not draw PNG plots.
    #[arg(long)]
    pub no_plots: bool,
    /// Run the simulation for `--intervals` intervals, publish its households' orders through
    /// MQTT, the meter bridge and 4 local validator nodes (the `voltmesh demo` stack), and check
    /// that every interval the nodes finalize equals the in-process run (book, price, volume,
    /// trades by participant). `--from` defaults to a sunny 2016-06-21 10:00 here.
    #[arg(long)]
    pub via_network: bool,
    /// Market intervals to drive through the network (with `--via-network`; 10 s each).
    #[arg(long, default_value_t = 4)]
    pub intervals: u32,
    /// Neighborhood tag of the metrics (default: the grid's name).
    #[arg(long)]
    pub neighborhood: Option<String>,
    /// Where to write every interval's market, household and grid figures (simulated time).
    #[command(flatten)]
    pub influx: voltmesh_metrics::InfluxArgs,
}

/// Runs `voltmesh sim`.
pub fn run(args: &SimArgs) -> ExitCode {
    let result = match &args.command {
        Some(SimCommand::Powerflow(p)) => powerflow(p),
        None => simulate(&args.run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn grid_dir(grid: Option<&PathBuf>) -> PathBuf {
    grid.cloned().unwrap_or_else(data::demo_grid_dir)
}

fn parse_time(text: &str) -> anyhow::Result<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M")
        .or_else(|_| {
            NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
                .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default())
        })
        .with_context(|| format!("bad time {text:?}: expected \"YYYY-MM-DD HH:MM\""))
}

fn powerflow(args: &PowerflowArgs) -> anyhow::Result<()> {
    let dir = grid_dir(args.grid.as_ref());
    let grid = Grid::read(&dir).with_context(|| format!("reading grid {}", dir.display()))?;
    let at = parse_time(&args.at)?;
    let Some(index) = grid.load_profiles.index_of(at) else {
        bail!(
            "{at} is not an interval start within the profiles ({} to {})",
            grid.load_profiles.start(),
            grid.load_profiles
                .time_of(grid.intervals().saturating_sub(1))
        );
    };
    let snapshot = snapshot_at(&grid, index).context("power flow")?;
    let out = serde_json::json!({ "grid": grid.name, "snapshots": [snapshot] });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn mechanism(args: &RunArgs) -> anyhow::Result<Mechanism> {
    Ok(match args.mechanism.as_str() {
        "uniform" => Mechanism::Uniform { k: args.k },
        "pay-as-bid" => Mechanism::PayAsBid {
            pricing: PayAsBidPricing::Midpoint,
        },
        "cda" | "continuous" => Mechanism::Continuous,
        other => bail!("unknown mechanism {other:?}: expected uniform, pay-as-bid or cda"),
    })
}

/// The scenario `args` describe.
fn scenario(args: &RunArgs) -> anyhow::Result<Scenario> {
    Ok(Scenario {
        pv_scale: args.pv_scale,
        pv_share: args.pv_share,
        pv_kwp: args.pv_kwp,
        battery_share: args.battery_share,
        battery_kwh: args.battery_kwh,
        battery_kw: args.battery_kw,
        retail: args.retail,
        feed_in: args.feed_in,
        network_fee: args.network_fee,
        mechanism: mechanism(args)?,
        interval_minutes: args.interval_minutes,
        seed: args.seed,
        band: VoltageBand {
            min_pu: args.vm_min,
            max_pu: args.vm_max,
        },
    })
}

fn simulate(args: &RunArgs) -> anyhow::Result<()> {
    if args.via_network {
        return via_network(args);
    }
    let dir = grid_dir(args.grid.as_ref());
    let grid = Grid::read(&dir).with_context(|| format!("reading grid {}", dir.display()))?;
    let start = match &args.from {
        Some(text) => {
            let at = parse_time(text)?;
            grid.load_profiles
                .index_of(at)
                .with_context(|| format!("{at} is not an interval start within the profiles"))?
        }
        None => 0,
    };
    if !(args.days > 0.0 && args.days.is_finite()) {
        bail!("--days must be positive");
    }
    let steps = ((args.days * 96.0).round() as usize).min(grid.intervals().saturating_sub(start));
    let scenario = scenario(args)?;
    eprintln!(
        "voltmesh sim: grid {} ({} buses, {} households), {} steps from {}, seed {}",
        grid.name,
        grid.buses.len(),
        grid.loads.len(),
        steps,
        grid.load_profiles.time_of(start),
        scenario.seed
    );
    let mut metrics = if args.influx.is_enabled() {
        let name = args.neighborhood.as_deref().unwrap_or(&grid.name);
        let neighborhood = voltmesh_metrics::Neighborhood::lossy(name)
            .with_context(|| format!("neighborhood {name:?}"))?;
        let metrics = SimMetrics::start(args.influx.to_config(), neighborhood)?;
        eprintln!("  metrics to {}", args.influx.url.as_deref().unwrap_or(""));
        Some(metrics)
    } else {
        None
    };
    let started = std::time::Instant::now();
    let mut last_percent = usize::MAX;
    let progress = |done: usize, total: usize| {
        let percent = done * 100 / total.max(1);
        if percent / 5 != last_percent / 5 || done == total {
            last_percent = percent;
            eprint!("\r  progress {percent:3}% ({done}/{total} intervals)");
            let _ = std::io::stderr().flush();
        }
    };
    let window = Window { start, steps };
    let report = match metrics.as_mut() {
        Some(m) => run_observed(&grid, &scenario, window, progress, m),
        None => run_observed(&grid, &scenario, window, progress, &mut ()),
    }
    .context("simulation")?;
    eprintln!(" in {:.2} s", started.elapsed().as_secs_f64());
    let metrics_stats = metrics.map(SimMetrics::finish);
    let mut files = output::write_report(&report, &args.out)?;
    if !args.no_plots {
        files.extend(plot::write_plots(&report, &args.out)?);
    }
    print_summary(&report.summary);
    if let Some(stats) = &metrics_stats {
        println!("{}", summary_line(stats));
    }
    for f in files {
        println!("wrote {}", f.display());
    }
    Ok(())
}

fn print_summary(s: &crate::kpi::Summary) {
    let pct = |x: f64| format!("{:.1} %", x * 100.0);
    let price = |p: Option<f64>| p.map_or("-".into(), |p| format!("{p:.4}"));
    println!(
        "== KPIs: {} ({} intervals, seed {})",
        s.grid, s.intervals, s.seed
    );
    println!(
        "households        {} ({} with PV, {} with battery)",
        s.households, s.households_with_pv, s.households_with_battery
    );
    println!(
        "energy            demand {:.1} kWh, PV {:.1} kWh, traded {:.1} kWh",
        s.demand_kwh, s.pv_kwh, s.traded_kwh
    );
    println!(
        "self-sufficiency  {} (baseline {})",
        pct(s.self_sufficiency),
        pct(s.baseline_self_sufficiency)
    );
    println!(
        "self-consumption  {} (baseline {})",
        pct(s.self_consumption),
        pct(s.baseline_self_consumption)
    );
    println!("met by neighbours {}", pct(s.neighbor_share));
    println!(
        "bills             market {:.2}, baseline {:.2}, savings {:.2} total, {:.2} per household (min {:.2}, max {:.2})",
        s.market_cost, s.baseline_cost, s.savings_total, s.savings_mean, s.savings_min, s.savings_max
    );
    println!(
        "price per kWh     mean {}, volume-weighted {}, min {}, median {}, max {} ({} intervals cleared)",
        price(s.price_mean),
        price(s.price_volume_weighted),
        price(s.price_min),
        price(s.price_median),
        price(s.price_max),
        s.priced_intervals
    );
    println!(
        "grid              vm {:.4}..{:.4} p.u., max line {:.1} %, max trafo {:.1} %",
        s.vm_min, s.vm_max, s.max_line_loading, s.max_trafo_loading
    );
    println!(
        "violations        {} in {} intervals (baseline {} in {}), non-converged steps {} (baseline {})",
        s.violations,
        s.violation_intervals,
        s.baseline_violations,
        s.baseline_violation_intervals,
        s.non_converged.0,
        s.non_converged.1
    );
}

/// `voltmesh sim --via-network`: the in-process run's household orders through the demo's stack
/// (MQTT, the bridge, 4 validators), interval by interval against the in-process trades
/// ([`crate::via_network`] documents the mapping).
fn via_network(args: &RunArgs) -> anyhow::Result<()> {
    if args.interval_minutes != 15 {
        bail!("--via-network plays one 15-minute profile step per network interval: it does not take --interval-minutes");
    }
    let scenario = scenario(args)?;
    if scenario.mechanism == Mechanism::Continuous {
        bail!("--via-network compares call auctions: the continuous book (cda) matches in arrival order, which the network does not keep");
    }
    if args.intervals == 0 {
        bail!("--intervals must be at least 1");
    }
    let from = match &args.from {
        Some(text) => parse_time(text)?,
        None => parse_time("2016-06-21 10:00")?,
    };
    let dir = grid_dir(args.grid.as_ref());
    let grid = Grid::read(&dir).with_context(|| format!("reading grid {}", dir.display()))?;
    let first = grid
        .load_profiles
        .index_of(from)
        .filter(|&i| i >= 3)
        .with_context(|| {
            format!(
                "{from} is not an interval start at least 45 minutes into the profiles of {}",
                grid.name
            )
        })?;
    let intervals = args.intervals as usize;
    // One warm-up interval first: the households' forecasts need a metered interval.
    let window = Window {
        start: first - 1,
        steps: intervals + 1,
    };
    let mut sims = crate::via_network::simulate(&grid, &scenario, window).context("simulation")?;
    let sims = sims.split_off(1);
    let map = crate::via_network::participant_map(&grid);
    let own = sims
        .iter()
        .map(|s| crate::via_network::planned_orders(s, &map))
        .collect::<Result<Vec<_>, _>>()?;
    println!(
        "voltmesh sim --via-network: {} intervals of {} from {} (seed {}): {} orders, {} trades in process; the same orders now go through MQTT, the bridge and the nodes",
        sims.len(),
        grid.name,
        from.format("%Y-%m-%d %H:%M"),
        args.seed,
        own.iter().map(Vec::len).sum::<usize>(),
        sims.iter().map(|s| s.outcome.trades.len()).sum::<usize>(),
    );
    let options = crate::demo::DemoOptions {
        intervals: args.intervals,
        households: grid.loads.len(),
        grid: dir,
        // With own orders the demo's first shown interval plays the profile step three after
        // `from` (two warm-up intervals and one more for the bridge's subscriptions).
        from: grid.load_profiles.time_of(first - 3),
        seed: args.seed,
        prices: crate::demo::neighborhood::Prices {
            feed_in: args.feed_in,
            retail: args.retail,
            network_fee: args.network_fee,
        },
        mechanism: scenario.mechanism,
        pv_scale: args.pv_scale,
        compare: true,
        own_orders: Some(own),
        ..crate::demo::DemoOptions::default()
    };
    let outcome = crate::demo::run_blocking(&options, &mut std::io::stdout())?;
    if outcome.interrupted {
        bail!("interrupted");
    }
    let len = i64::from(options.interval_secs);
    let first_start = outcome.views.first().map_or(0, |v| v.start);
    let committed = &outcome.committed;
    let checks: Vec<_> = sims
        .iter()
        .enumerate()
        .map(|(i, sim)| {
            let start = outcome
                .views
                .get(i)
                .map_or(first_start + len * i as i64, |v| v.start);
            let book = committed
                .orders
                .get(&start)
                .map(|o| crate::via_network::committed_book(o))
                .unwrap_or_default();
            let clearing = committed.clearings.get(&start).map(|c| &c.outcome);
            crate::via_network::check(sim, &map, start, &book, clearing)
        })
        .collect();
    print!("{}", crate::via_network::table(&checks));
    let mismatched = checks.iter().filter(|c| !c.matches()).count();
    let traded = checks.iter().filter(|c| !c.sim_trades.is_empty()).count();
    println!(
        "re-clearing the committed orders in process: {} of {} committed intervals equal",
        outcome.compared - outcome.mismatched,
        outcome.compared
    );
    if mismatched > 0 {
        bail!(
            "{mismatched} of {} intervals finalized by the nodes differ from the in-process run",
            checks.len()
        );
    }
    if outcome.mismatched > 0 {
        bail!(
            "{} of {} committed intervals re-clear differently in process",
            outcome.mismatched,
            outcome.compared
        );
    }
    println!(
        "via network: all {} intervals equal the in-process run ({traded} with trades, {} trades)",
        checks.len(),
        checks.iter().map(|c| c.sim_trades.len()).sum::<usize>()
    );
    Ok(())
}
