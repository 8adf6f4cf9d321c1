//! `voltmesh sim`: run a scenario on a SimBench grid, or `voltmesh sim powerflow` one moment.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use chrono::{NaiveDate, NaiveDateTime};
use voltmesh_engine::{Mechanism, PayAsBidPricing, Price, K};

use crate::flex::{FlexLoads, FlexStrategy};
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
    /// Run a grid of scenarios × seeds in parallel into one Parquet file of KPIs per scenario
    /// (resumable; the same bytes for any number of workers).
    Sweep(Box<crate::sweep::SweepArgs>),
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
    /// Share (0..1) of households with a flexible load: an electric car (or a hot-water heat
    /// pump) that takes `--flex-kwh` a day within its window (0: none).
    #[arg(long, default_value_t = 0.0)]
    pub flex_share: f64,
    /// Energy a flexible load takes every day, kWh.
    #[arg(long, default_value_t = 10.0)]
    pub flex_kwh: f64,
    /// A flexible load's power limit, kW.
    #[arg(long, default_value_t = 3.7)]
    pub flex_kw: f64,
    /// Hour of the day at which flexible loads plug in (18: a commuter's car).
    #[arg(long, default_value_t = 18)]
    pub flex_from_hour: u32,
    /// Hours they stay plugged in (13: until 07:00; 24 for a heat pump with a tank).
    #[arg(long, default_value_t = 13)]
    pub flex_hours: u32,
    /// How flexible loads charge with the market: `price` (in the cheapest steps by the
    /// indicative import price) or `asap` (as soon as plugged in, as the baseline does).
    #[arg(long, default_value = "price")]
    pub flex_strategy: String,
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

/// Runs `voltmesh sim` (all but `--via-network`, which needs the whole stack: the `voltmesh`
/// crate runs it).
///
/// # Errors
/// Bad arguments, an unreadable grid, a failed run or output that cannot be written.
pub fn run(args: &SimArgs) -> anyhow::Result<()> {
    match &args.command {
        Some(SimCommand::Powerflow(p)) => powerflow(p),
        Some(SimCommand::Sweep(s)) => Ok(crate::sweep::run_cli(s)?),
        None => simulate(&args.run),
    }
}

/// The grid folder `--grid` names, or the bundled demo grid.
pub fn grid_dir(grid: Option<&PathBuf>) -> PathBuf {
    grid.cloned().unwrap_or_else(data::demo_grid_dir)
}

/// A profile time, "YYYY-MM-DD HH:MM" or "YYYY-MM-DD".
///
/// # Errors
/// If `text` is neither.
pub fn parse_time(text: &str) -> anyhow::Result<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M")
        .or_else(|_| {
            NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
                .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default())
        })
        .with_context(|| format!("bad time {text:?}: expected \"YYYY-MM-DD HH:MM\""))
}

fn powerflow(args: &PowerflowArgs) -> anyhow::Result<()> {
    println!("{}", powerflow_json(args)?);
    Ok(())
}

/// What `voltmesh sim powerflow` prints (without the final newline): the grid's power flow at
/// `--at` as pretty JSON, `{"grid": name, "snapshots": [snapshot]}` (the shape of
/// `sim/data/reference/*.json`).
///
/// # Errors
/// An unreadable grid, a bad time or one outside the profiles, or a power flow that fails.
pub fn powerflow_json(args: &PowerflowArgs) -> anyhow::Result<String> {
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
    Ok(serde_json::to_string_pretty(&out)?)
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
///
/// # Errors
/// An unknown mechanism.
pub fn scenario(args: &RunArgs) -> anyhow::Result<Scenario> {
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
        flex: (args.flex_share > 0.0)
            .then(|| {
                let strategy = match args.flex_strategy.as_str() {
                    "price" => FlexStrategy::Price,
                    "asap" => FlexStrategy::Asap,
                    other => bail!("unknown flex strategy {other:?}: expected price or asap"),
                };
                Ok(FlexLoads {
                    share: args.flex_share,
                    kwh_per_day: args.flex_kwh,
                    kw: args.flex_kw,
                    from_hour: args.flex_from_hour,
                    hours: args.flex_hours,
                    strategy,
                })
            })
            .transpose()?,
    })
}

/// What a run needs, read from its options: the grid, the scenario and the profile steps.
#[derive(Debug)]
pub struct Plan {
    /// The grid `--grid` names (or the bundled one), read.
    pub grid: Grid,
    /// The scenario of the flags.
    pub scenario: Scenario,
    /// From `--from` (or the profiles' start) for `--days`, cut at the profiles' end.
    pub window: Window,
}

/// Reads the grid and checks the options of a run, as `voltmesh sim` does before it runs.
///
/// # Errors
/// An unreadable grid, a bad `--from` or one outside the profiles, `--days` not positive, or an
/// unknown mechanism. (The scenario's ranges are checked when the run starts.)
pub fn plan(args: &RunArgs) -> anyhow::Result<Plan> {
    let dir = grid_dir(args.grid.as_ref());
    let grid = Grid::read(&dir).with_context(|| format!("reading grid {}", dir.display()))?;
    let (scenario, window) = plan_on(&grid, args)?;
    Ok(Plan {
        grid,
        scenario,
        window,
    })
}

/// The scenario and window of a run's options on a grid already read (`--grid` is not looked
/// at): what [`plan`] does after reading the grid.
///
/// # Errors
/// A bad `--from` or one outside the profiles, `--days` not positive, or an unknown mechanism.
pub fn plan_on(grid: &Grid, args: &RunArgs) -> anyhow::Result<(Scenario, Window)> {
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
    Ok((scenario(args)?, Window { start, steps }))
}

fn simulate(args: &RunArgs) -> anyhow::Result<()> {
    if args.via_network {
        bail!("--via-network drives the whole stack (MQTT, the bridge, validators): run it with the `voltmesh` binary");
    }
    let Plan {
        grid,
        scenario,
        window,
    } = plan(args)?;
    let (start, steps) = (window.start, window.steps);
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
