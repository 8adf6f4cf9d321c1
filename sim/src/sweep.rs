//! `voltmesh sim sweep`: a grid of scenarios × seeds, run in parallel, into one Parquet file of
//! KPIs (one row per scenario) and optionally one of every interval.
//!
//! # The spec
//! Every flag of a run (`voltmesh sim --pv-share …`) takes a comma-separated list here
//! (`--pv-share 0,0.3,0.6 --battery-share 0,0.5 --mechanism uniform,pay-as-bid`), and `--seeds`
//! takes seeds and ranges (`1..5` is 1 to 4 as in Rust and Python's `range`, `1..=4` includes 4,
//! `1,2,10..12` mixes them). The scenarios are the Cartesian product in the flags' order
//! ([`AXES`]), seeds innermost; a flag not given takes the run's default. Scenarios that come out
//! the same (`--k` with a mechanism other than uniform) are run and listed once.
//!
//! # Invariants
//! - A scenario is a pure function of (grid, scenario, window): each one goes through the CLI's
//!   own parser and [`crate::cli::plan_on`], then [`crate::run::run`], exactly as `voltmesh sim`
//!   with the same flags; its KPIs are the ones `summary.json` shows.
//! - Results do not depend on the number of workers: each finished scenario is a part file named
//!   by its key (a hash of the grid's folder, the resolved scenario and window, and the crate's
//!   version), and the output is merged from the parts in the spec's order with fixed writer
//!   properties ([`crate::table`]), so 1 and 8 workers write the same bytes.
//! - Resumable: a part is written to a temporary name and renamed, so it exists only whole; a
//!   rerun with the same parts folder runs only the scenarios whose parts are missing (an
//!   interrupted sweep, a sweep extended by more values or seeds). Two sweeps must not share a
//!   parts folder at the same time.
//! - Every scenario is checked (flags, ranges, window) before any runs: a bad spec fails at once
//!   with [`SweepError::Spec`], naming the scenario.

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use clap::Parser;
use sha2::{Digest, Sha256};
use voltmesh_engine::Mechanism;

use crate::cli::{grid_dir, plan_on, RunArgs};
use crate::kpi::Summary;
use crate::output::{interval_row, Cell, INTERVAL_COLUMNS};
use crate::record::{money_f64, price_f64};
use crate::run::{run, SimError, Window};
use crate::scenario::Scenario;
use crate::simbench::{Grid, GridError};
use crate::table::{self, Column, Table, TableError};

/// The run flags a sweep takes lists of, in the order the scenarios are enumerated.
pub const AXES: [&str; 16] = [
    "from",
    "days",
    "pv-scale",
    "pv-share",
    "pv-kwp",
    "battery-share",
    "battery-kwh",
    "battery-kw",
    "retail",
    "feed-in",
    "network-fee",
    "mechanism",
    "k",
    "interval-minutes",
    "vm-min",
    "vm-max",
];

/// At most this many scenarios in one sweep (a typo such as `--seeds 1..100000000` fails early).
pub const MAX_SCENARIOS: usize = 1_000_000;

/// `voltmesh sim sweep`: each run flag takes a comma-separated list of values.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SweepArgs {
    /// SimBench grid folder (default: the bundled 1-LV-rural1--0-sw).
    #[arg(long)]
    pub grid: Option<PathBuf>,
    /// First days, "YYYY-MM-DD" or "YYYY-MM-DD HH:MM", comma-separated (default: profiles' start).
    #[arg(long, value_name = "LIST")]
    pub from: Option<String>,
    /// Numbers of days to simulate (default: 7).
    #[arg(long, value_name = "LIST")]
    pub days: Option<String>,
    /// Multipliers of every PV system of the grid (default: 1).
    #[arg(long, value_name = "LIST")]
    pub pv_scale: Option<String>,
    /// Shares (0..1) of households without PV that get a new system (default: 0).
    #[arg(long, value_name = "LIST")]
    pub pv_share: Option<String>,
    /// Peak powers of a new PV system, kW (default: 5).
    #[arg(long, value_name = "LIST")]
    pub pv_kwp: Option<String>,
    /// Shares (0..1) of households with a battery (default: 0).
    #[arg(long, value_name = "LIST")]
    pub battery_share: Option<String>,
    /// Battery capacities, kWh (default: 10).
    #[arg(long, value_name = "LIST")]
    pub battery_kwh: Option<String>,
    /// Battery powers, kW (default: 5).
    #[arg(long, value_name = "LIST")]
    pub battery_kw: Option<String>,
    /// Retail prices per kWh (default: 0.30).
    #[arg(long, value_name = "LIST")]
    pub retail: Option<String>,
    /// Feed-in tariffs per kWh (default: 0.08).
    #[arg(long, value_name = "LIST")]
    pub feed_in: Option<String>,
    /// Network fees per locally traded kWh (default: 0.02).
    #[arg(long, value_name = "LIST")]
    pub network_fee: Option<String>,
    /// Clearing mechanisms: uniform, pay-as-bid, cda (default: uniform).
    #[arg(long, value_name = "LIST")]
    pub mechanism: Option<String>,
    /// k of the uniform price, in [0, 1] (default: 0.5; only for uniform).
    #[arg(long, value_name = "LIST")]
    pub k: Option<String>,
    /// Market intervals in minutes, multiples of 15 (default: 15).
    #[arg(long, value_name = "LIST")]
    pub interval_minutes: Option<String>,
    /// Lower limits of the voltage band, p.u. (default: 0.9).
    #[arg(long, value_name = "LIST")]
    pub vm_min: Option<String>,
    /// Upper limits of the voltage band, p.u. (default: 1.1).
    #[arg(long, value_name = "LIST")]
    pub vm_max: Option<String>,
    /// Seeds: "1..5" (1 to 4), "1..=4" (1 to 4), "7", or a list "1,2,10..12".
    #[arg(long, value_name = "SEEDS", default_value = "42")]
    pub seeds: String,
    /// The Parquet file of KPIs, one row per scenario.
    #[arg(long, default_value = "sweep.parquet")]
    pub out: PathBuf,
    /// Also write every market interval of every scenario to this Parquet file (column
    /// `scenario` joins it to the KPIs).
    #[arg(long)]
    pub intervals_out: Option<PathBuf>,
    /// Folder of finished scenarios (one part file each), read by a rerun to skip them
    /// (default: OUT.parts beside OUT).
    #[arg(long)]
    pub parts: Option<PathBuf>,
    /// Scenarios run at once (default: the available parallelism).
    #[arg(long)]
    pub workers: Option<usize>,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
}

impl SweepArgs {
    /// The list flag of [`AXES`] `name`.
    fn axis(&self, name: &str) -> Option<&String> {
        match name {
            "from" => self.from.as_ref(),
            "days" => self.days.as_ref(),
            "pv-scale" => self.pv_scale.as_ref(),
            "pv-share" => self.pv_share.as_ref(),
            "pv-kwp" => self.pv_kwp.as_ref(),
            "battery-share" => self.battery_share.as_ref(),
            "battery-kwh" => self.battery_kwh.as_ref(),
            "battery-kw" => self.battery_kw.as_ref(),
            "retail" => self.retail.as_ref(),
            "feed-in" => self.feed_in.as_ref(),
            "network-fee" => self.network_fee.as_ref(),
            "mechanism" => self.mechanism.as_ref(),
            "k" => self.k.as_ref(),
            "interval-minutes" => self.interval_minutes.as_ref(),
            "vm-min" => self.vm_min.as_ref(),
            "vm-max" => self.vm_max.as_ref(),
            _ => None,
        }
    }
}

/// Why a sweep could not be planned, run or written.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// A bad spec: a list, a value, a scenario out of range, no workers.
    #[error("{0}")]
    Spec(String),
    /// The grid cannot be read.
    #[error("reading grid {dir}")]
    Grid {
        /// The grid folder.
        dir: PathBuf,
        /// The cause.
        source: GridError,
    },
    /// A scenario failed while it ran.
    #[error("scenario {label}")]
    Run {
        /// The scenario's flags.
        label: String,
        /// The cause.
        source: SimError,
    },
    /// A file or folder could not be written or read.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A Parquet file could not be written or read.
    #[error("{file}: {source}")]
    Table {
        /// The file.
        file: PathBuf,
        /// The cause.
        source: TableError,
    },
}

/// `voltmesh sim`'s run flags alone, to parse one scenario's command line.
#[derive(Debug, Parser)]
#[command(name = "voltmesh sim", no_binary_name = true)]
struct RunCli {
    #[command(flatten)]
    run: RunArgs,
}

/// A run's flags parsed as `voltmesh sim` parses them.
///
/// # Errors
/// [`SweepError::Spec`] with clap's message (without its `error: ` prefix and hints).
pub fn parse_run(argv: &[String]) -> Result<RunArgs, SweepError> {
    RunCli::try_parse_from(argv).map(|c| c.run).map_err(|e| {
        let text = e.render().to_string();
        let text = text.trim_start_matches("error: ");
        SweepError::Spec(text.split("\n\n").next().unwrap_or(text).trim().to_owned())
    })
}

/// One scenario of a sweep.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Hex key naming its part files (see the module's invariants).
    pub key: String,
    /// Its swept flags and seed, for messages (`--pv-share=0.3 --seed=2`).
    pub label: String,
    /// The whole `voltmesh sim` command line of the scenario, `--grid` included: what
    /// [`parts_for_argv`] takes on another machine.
    pub argv: Vec<String>,
    /// The resolved scenario.
    pub scenario: Scenario,
    /// The profile steps it covers.
    pub window: Window,
}

/// A checked sweep: its grid, its scenarios in spec order, and where it writes.
#[derive(Debug)]
pub struct SweepPlan {
    /// The grid, read once.
    pub grid: Grid,
    /// Unique scenarios, in the spec's order (the output's row order and `scenario` index).
    pub scenarios: Vec<Planned>,
    /// The KPI file.
    pub out: PathBuf,
    /// The interval file, if asked for.
    pub intervals_out: Option<PathBuf>,
    /// The parts folder.
    pub parts: PathBuf,
    /// Scenarios run at once (at least 1).
    pub workers: usize,
}

impl SweepPlan {
    /// The KPI part of `s`.
    pub fn kpi_part(&self, s: &Planned) -> PathBuf {
        self.parts.join(format!("{}.kpi.parquet", s.key))
    }

    /// The interval part of `s` (written only with an interval output).
    pub fn intervals_part(&self, s: &Planned) -> PathBuf {
        self.parts.join(format!("{}.intervals.parquet", s.key))
    }

    /// `s` has every part this sweep needs.
    pub fn is_done(&self, s: &Planned) -> bool {
        self.kpi_part(s).is_file()
            && (self.intervals_out.is_none() || self.intervals_part(s).is_file())
    }

    /// The scenarios still to run.
    pub fn todo(&self) -> Vec<&Planned> {
        self.scenarios.iter().filter(|s| !self.is_done(s)).collect()
    }
}

/// The seeds of `--seeds`.
///
/// # Errors
/// [`SweepError::Spec`] for a malformed or empty item.
pub fn parse_seeds(text: &str) -> Result<Vec<u64>, SweepError> {
    let bad = |item: &str, why: &str| {
        SweepError::Spec(format!(
            "--seeds: bad item {item:?}: {why} (expected seeds and ranges such as \"1..5\", \"1..=4\" or \"1,2,10..12\")"
        ))
    };
    let number = |item: &str, text: &str| -> Result<u64, SweepError> {
        let n: u64 = text
            .trim()
            .parse()
            .map_err(|_| bad(item, "not a whole number"))?;
        if i64::try_from(n).is_err() {
            return Err(bad(item, "above 2^63 - 1"));
        }
        Ok(n)
    };
    let mut seeds = Vec::new();
    for item in text.split(',') {
        let item = item.trim();
        if let Some((a, b)) = item.split_once("..=") {
            let (a, b) = (number(item, a)?, number(item, b)?);
            if a > b {
                return Err(bad(item, "empty range"));
            }
            seeds.extend(a..=b);
        } else if let Some((a, b)) = item.split_once("..") {
            let (a, b) = (number(item, a)?, number(item, b)?);
            if a >= b {
                return Err(bad(item, "empty range"));
            }
            seeds.extend(a..b);
        } else {
            seeds.push(number(item, item)?);
        }
        if seeds.len() > MAX_SCENARIOS {
            return Err(bad(item, "too many seeds"));
        }
    }
    Ok(seeds)
}

/// The values of a list flag.
fn values(name: &str, text: &str) -> Result<Vec<String>, SweepError> {
    text.split(',')
        .map(|v| {
            let v = v.trim();
            if v.is_empty() {
                Err(SweepError::Spec(format!(
                    "--{name}: empty value in the list {text:?}"
                )))
            } else {
                Ok(v.to_owned())
            }
        })
        .collect()
}

/// The key of a scenario's parts.
fn key(grid_dir: &Path, grid: &Grid, scenario: &Scenario, window: Window) -> String {
    let text = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "grid_dir": grid_dir.display().to_string(),
        "grid": grid.name,
        "scenario": scenario,
        "window": window,
    })
    .to_string();
    hex::encode(&Sha256::digest(text.as_bytes())[..16])
}

/// Reads the grid and checks every scenario of `args`.
///
/// # Errors
/// [`SweepError::Spec`] for a bad list, seed, flag value, scenario or worker count (the message
/// names the scenario's flags); [`SweepError::Grid`] for an unreadable grid.
pub fn plan(args: &SweepArgs) -> Result<SweepPlan, SweepError> {
    let workers = match args.workers {
        Some(0) => return Err(SweepError::Spec("--workers must be at least 1".into())),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
    };
    let seeds = parse_seeds(&args.seeds)?;
    let mut axes = Vec::new();
    let mut count = seeds.len();
    for name in AXES {
        if let Some(text) = args.axis(name) {
            let list = values(name, text)?;
            count = count.saturating_mul(list.len());
            axes.push((name, list));
        }
    }
    if count > MAX_SCENARIOS {
        return Err(SweepError::Spec(format!(
            "{count} scenarios: a sweep runs at most {MAX_SCENARIOS}"
        )));
    }
    let dir = grid_dir(args.grid.as_ref());
    let grid = Grid::read(&dir).map_err(|source| SweepError::Grid {
        dir: dir.clone(),
        source,
    })?;
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    let mut scenarios = Vec::new();
    let mut keys = BTreeSet::new();
    let mut choice = vec![0_usize; axes.len()];
    'product: loop {
        for &seed in &seeds {
            let mut flags: Vec<String> = axes
                .iter()
                .zip(&choice)
                .map(|((name, list), &i)| format!("--{name}={}", list[i]))
                .collect();
            flags.push(format!("--seed={seed}"));
            let label = flags.join(" ");
            let fail = |why: String| SweepError::Spec(format!("scenario {label}: {why}"));
            let run_args = parse_run(&flags).map_err(|e| fail(e.to_string()))?;
            let (scenario, window) =
                plan_on(&grid, &run_args).map_err(|e| fail(format!("{e:#}")))?;
            scenario.validate().map_err(|e| fail(e.to_string()))?;
            let per_interval = (scenario.interval_minutes / 15) as usize;
            if window.steps < per_interval {
                return Err(fail(format!(
                    "the window ({} profile steps) is shorter than one market interval",
                    window.steps
                )));
            }
            let key = key(&dir, &grid, &scenario, window);
            if keys.insert(key.clone()) {
                let mut argv = vec![format!("--grid={}", dir.display())];
                argv.extend(flags);
                scenarios.push(Planned {
                    key,
                    label,
                    argv,
                    scenario,
                    window,
                });
            }
        }
        // The next combination, the last axis fastest.
        for axis in (0..axes.len()).rev() {
            choice[axis] += 1;
            if choice[axis] < axes[axis].1.len() {
                continue 'product;
            }
            choice[axis] = 0;
        }
        break;
    }
    let parts = args.parts.clone().unwrap_or_else(|| {
        let mut name = args.out.clone().into_os_string();
        name.push(".parts");
        PathBuf::from(name)
    });
    Ok(SweepPlan {
        grid,
        scenarios,
        out: args.out.clone(),
        intervals_out: args.intervals_out.clone(),
        parts,
        workers,
    })
}

fn mechanism_name(m: &Mechanism) -> &'static str {
    match m {
        Mechanism::Uniform { .. } => "uniform",
        Mechanism::PayAsBid { .. } => "pay-as-bid",
        Mechanism::Continuous => "cda",
    }
}

fn millis(t: chrono::NaiveDateTime) -> i64 {
    t.and_utc().timestamp_millis()
}

/// The KPI row of a run: its parameters, seed and [`Summary`], as one-row columns.
///
/// Columns: `grid`, `from` (timestamp), `days`, `pv_scale`, `pv_share`, `pv_kwp`,
/// `battery_share`, `battery_kwh`, `battery_kw`, `retail`, `feed_in`, `network_fee`,
/// `mechanism`, `k` (null unless uniform), `interval_minutes`, `band_vm_min`, `band_vm_max`
/// (`--vm-min`/`--vm-max`), `seed`, then the KPIs under `summary.json`'s names
/// (`non_converged` split into `non_converged` and `baseline_non_converged`).
pub fn kpi_table(grid: &Grid, scenario: &Scenario, window: Window, s: &Summary) -> Table {
    let f = |v: f64| Column::Float(vec![Some(v)]);
    let o = |v: Option<f64>| Column::Float(vec![v]);
    let i = |v: u64| Column::Int(vec![v as i64]);
    let k = match scenario.mechanism {
        Mechanism::Uniform { k } => Some(f64::from(k.ppm()) / 1e6),
        _ => None,
    };
    let columns: Vec<(&str, Column)> = vec![
        ("grid", Column::Str(vec![s.grid.clone()])),
        (
            "from",
            Column::Time(vec![millis(grid.load_profiles.time_of(window.start))]),
        ),
        ("days", f(window.steps as f64 / 96.0)),
        ("pv_scale", f(scenario.pv_scale)),
        ("pv_share", f(scenario.pv_share)),
        ("pv_kwp", f(scenario.pv_kwp)),
        ("battery_share", f(scenario.battery_share)),
        ("battery_kwh", f(scenario.battery_kwh)),
        ("battery_kw", f(scenario.battery_kw)),
        ("retail", f(price_f64(scenario.retail))),
        ("feed_in", f(price_f64(scenario.feed_in))),
        ("network_fee", f(price_f64(scenario.network_fee))),
        (
            "mechanism",
            Column::Str(vec![mechanism_name(&scenario.mechanism).to_owned()]),
        ),
        ("k", o(k)),
        ("interval_minutes", i(scenario.interval_minutes.into())),
        ("band_vm_min", f(scenario.band.min_pu)),
        ("band_vm_max", f(scenario.band.max_pu)),
        ("seed", i(scenario.seed)),
        ("intervals", i(s.intervals as u64)),
        ("households", i(s.households as u64)),
        ("households_with_pv", i(s.households_with_pv as u64)),
        (
            "households_with_battery",
            i(s.households_with_battery as u64),
        ),
        ("demand_kwh", f(s.demand_kwh)),
        ("pv_kwh", f(s.pv_kwh)),
        ("traded_kwh", f(s.traded_kwh)),
        ("from_utility_kwh", f(s.from_utility_kwh)),
        ("to_utility_kwh", f(s.to_utility_kwh)),
        ("self_sufficiency", f(s.self_sufficiency)),
        ("baseline_self_sufficiency", f(s.baseline_self_sufficiency)),
        ("self_consumption", f(s.self_consumption)),
        ("baseline_self_consumption", f(s.baseline_self_consumption)),
        ("neighbor_share", f(s.neighbor_share)),
        ("market_cost", f(s.market_cost)),
        ("baseline_cost", f(s.baseline_cost)),
        ("savings_total", f(s.savings_total)),
        ("savings_mean", f(s.savings_mean)),
        ("savings_min", f(s.savings_min)),
        ("savings_max", f(s.savings_max)),
        ("priced_intervals", i(s.priced_intervals as u64)),
        ("price_mean", o(s.price_mean)),
        ("price_volume_weighted", o(s.price_volume_weighted)),
        ("price_min", o(s.price_min)),
        ("price_median", o(s.price_median)),
        ("price_max", o(s.price_max)),
        ("vm_min", f(s.vm_min)),
        ("vm_max", f(s.vm_max)),
        ("max_line_loading", f(s.max_line_loading)),
        ("max_trafo_loading", f(s.max_trafo_loading)),
        ("violations", i(s.violations)),
        ("baseline_violations", i(s.baseline_violations)),
        ("violation_intervals", i(s.violation_intervals as u64)),
        (
            "baseline_violation_intervals",
            i(s.baseline_violation_intervals as u64),
        ),
        ("non_converged", i(s.non_converged.0)),
        ("baseline_non_converged", i(s.non_converged.1)),
    ];
    Table {
        columns: columns
            .into_iter()
            .map(|(n, c)| (n.to_owned(), c))
            .collect(),
    }
}

/// The intervals of a run as the columns of `intervals.csv` (`time` as a timestamp, full
/// precision instead of the CSV's decimals).
pub fn intervals_table(report: &crate::run::Report) -> Table {
    let mut columns: Vec<(String, Column)> = Vec::with_capacity(INTERVAL_COLUMNS.len());
    for row in report.intervals.iter().map(interval_row) {
        if columns.is_empty() {
            columns = INTERVAL_COLUMNS
                .iter()
                .zip(&row)
                .map(|(name, cell)| {
                    let column = match cell {
                        Cell::Text(_) if *name == "time" => Column::Time(Vec::new()),
                        Cell::Text(_) => Column::Str(Vec::new()),
                        Cell::Int(_) => Column::Int(Vec::new()),
                        _ => Column::Float(Vec::new()),
                    };
                    ((*name).to_owned(), column)
                })
                .collect();
        }
        for ((_, column), cell) in columns.iter_mut().zip(row) {
            match (column, cell) {
                (Column::Time(v), Cell::Text(t)) => {
                    v.push(crate::cli::parse_time(&t).map(millis).unwrap_or(i64::MIN))
                }
                (Column::Str(v), Cell::Text(t)) => v.push(t),
                (Column::Int(v), Cell::Int(n)) => v.push(n as i64),
                (Column::Float(v), Cell::Float(x, _) | Cell::OptFloat(Some(x), _)) => {
                    v.push(Some(x));
                }
                (Column::Float(v), Cell::OptFloat(None, _)) => v.push(None),
                (Column::Float(v), Cell::Money(m)) => v.push(Some(money_f64(m))),
                _ => {}
            }
        }
    }
    Table { columns }
}

/// The part files of one scenario, as bytes: its KPI row and, with `intervals`, its intervals.
/// A pure function of (grid, scenario, window).
///
/// # Errors
/// [`SweepError::Run`] if the run fails.
pub fn parts(
    grid: &Grid,
    planned: &Planned,
    intervals: bool,
) -> Result<(Vec<u8>, Option<Vec<u8>>), SweepError> {
    let report = run(grid, &planned.scenario, planned.window, |_, _| {}).map_err(|source| {
        SweepError::Run {
            label: planned.label.clone(),
            source,
        }
    })?;
    let bytes = |t: Table| {
        table::write(Vec::new(), [Ok(t)]).map_err(|source| SweepError::Table {
            file: PathBuf::from(format!("{}.parquet", planned.key)),
            source,
        })
    };
    let kpi = bytes(kpi_table(
        grid,
        &planned.scenario,
        planned.window,
        &report.summary,
    ))?;
    let intervals = if intervals {
        Some(bytes(intervals_table(&report))?)
    } else {
        None
    };
    Ok((kpi, intervals))
}

/// The parts of the scenario whose whole command line is `argv` (a [`Planned::argv`], e.g. on a
/// Dask worker): reads the grid `--grid` names and runs it, as [`parts`].
///
/// # Errors
/// [`SweepError::Spec`] for bad flags, [`SweepError::Grid`] for an unreadable grid, else as
/// [`parts`].
pub fn parts_for_argv(
    argv: &[String],
    intervals: bool,
) -> Result<(Vec<u8>, Option<Vec<u8>>), SweepError> {
    let args = parse_run(argv)?;
    let dir = grid_dir(args.grid.as_ref());
    let grid = Grid::read(&dir).map_err(|source| SweepError::Grid {
        dir: dir.clone(),
        source,
    })?;
    let (scenario, window) =
        plan_on(&grid, &args).map_err(|e| SweepError::Spec(format!("{e:#}")))?;
    let planned = Planned {
        key: String::new(),
        label: argv.join(" "),
        argv: argv.to_vec(),
        scenario,
        window,
    };
    parts(&grid, &planned, intervals)
}

/// Writes `bytes` to `file` whole: to a temporary name first, then renamed.
///
/// # Errors
/// [`SweepError::Io`].
pub fn write_atomic(file: &Path, bytes: &[u8]) -> Result<(), SweepError> {
    let io = |source| SweepError::Io {
        file: file.to_owned(),
        source,
    };
    let mut tmp = file.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, file).map_err(io)
}

/// What a sweep did.
#[derive(Debug)]
pub struct SweepOutcome {
    /// Scenarios in the sweep.
    pub scenarios: usize,
    /// Scenarios run now (the others were done before).
    pub ran: usize,
    /// The KPI table written to the output (column `scenario` first).
    pub kpis: Table,
}

/// Progress of [`execute`]: `done` of `total` scenarios to run have finished.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Finished now.
    pub done: usize,
    /// To run now.
    pub total: usize,
}

/// Runs the scenarios of `plan` whose parts are missing on `plan.workers` threads, then merges
/// every part into the output file(s). `progress` sees every finished scenario.
///
/// # Errors
/// The first failed scenario (by spec order, among those that failed before the workers
/// stopped), or a part or output that cannot be written or read.
pub fn execute(
    plan: &SweepPlan,
    mut progress: impl FnMut(Progress),
) -> Result<SweepOutcome, SweepError> {
    std::fs::create_dir_all(&plan.parts).map_err(|source| SweepError::Io {
        file: plan.parts.clone(),
        source,
    })?;
    let todo = plan.todo();
    let total = todo.len();
    let with_intervals = plan.intervals_out.is_some();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let mut failures: Vec<(usize, SweepError)> = Vec::new();
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<(usize, Result<(), SweepError>)>(plan.workers);
        for _ in 0..plan.workers.min(total) {
            let tx = tx.clone();
            let (todo, next, stop) = (&todo, &next, &stop);
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= todo.len() || stop.load(Ordering::Relaxed) {
                    break;
                }
                let s = todo[i];
                let result = parts(&plan.grid, s, with_intervals).and_then(|(kpi, intervals)| {
                    if let Some(bytes) = intervals {
                        write_atomic(&plan.intervals_part(s), &bytes)?;
                    }
                    write_atomic(&plan.kpi_part(s), &kpi)
                });
                if tx.send((i, result)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut done = 0;
        for (i, result) in rx {
            match result {
                Ok(()) => {
                    done += 1;
                    progress(Progress { done, total });
                }
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    failures.push((i, e));
                }
            }
        }
    });
    if let Some((_, e)) = failures.into_iter().min_by_key(|(i, _)| *i) {
        return Err(e);
    }
    let kpis = merge(plan)?;
    Ok(SweepOutcome {
        scenarios: plan.scenarios.len(),
        ran: total,
        kpis,
    })
}

/// A part read back, with the `scenario` column (its index in the spec) put first.
fn read_part(file: &Path, index: usize) -> Result<Table, SweepError> {
    let part = table::read(file).map_err(|source| SweepError::Table {
        file: file.to_owned(),
        source,
    })?;
    let rows = part.rows();
    Ok(part.with_first("scenario", Column::Int(vec![index as i64; rows])))
}

/// Merges the parts into the output files (written whole, then renamed); returns the KPIs.
fn merge(plan: &SweepPlan) -> Result<Table, SweepError> {
    let mut kpis = Table::default();
    for (index, s) in plan.scenarios.iter().enumerate() {
        let file = plan.kpi_part(s);
        kpis.append(&read_part(&file, index)?)
            .map_err(|source| SweepError::Table { file, source })?;
    }
    let bytes =
        table::write(Vec::new(), [Ok(kpis.clone())]).map_err(|source| SweepError::Table {
            file: plan.out.clone(),
            source,
        })?;
    if let Some(dir) = plan.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| SweepError::Io {
            file: dir.to_owned(),
            source,
        })?;
    }
    write_atomic(&plan.out, &bytes)?;
    if let Some(out) = &plan.intervals_out {
        // One row group per scenario, streamed: a year of intervals per scenario stays out of
        // memory but for one scenario at a time.
        let mut tmp = out.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let io = |source| SweepError::Io {
            file: out.clone(),
            source,
        };
        let file = std::fs::File::create(&tmp).map_err(io)?;
        let mut failed = None;
        let tables = plan.scenarios.iter().enumerate().map_while(|(index, s)| {
            match read_part(&plan.intervals_part(s), index) {
                Ok(t) => Some(Ok(t)),
                Err(e) => {
                    failed = Some(e);
                    None
                }
            }
        });
        let written = table::write(std::io::BufWriter::new(file), tables);
        if let Some(e) = failed {
            return Err(e);
        }
        let mut writer = written.map_err(|source| SweepError::Table {
            file: out.clone(),
            source,
        })?;
        std::io::Write::flush(&mut writer).map_err(io)?;
        drop(writer);
        std::fs::rename(&tmp, out).map_err(io)?;
    }
    Ok(kpis)
}

/// `voltmesh sim sweep`: plans, runs what is missing with a progress line, merges, and says
/// what it wrote.
///
/// # Errors
/// As [`plan`] and [`execute`].
pub fn run_cli(args: &SweepArgs) -> Result<(), SweepError> {
    let plan = plan(args)?;
    let todo = plan.todo().len();
    let quiet = args.quiet;
    if !quiet {
        eprintln!(
            "voltmesh sim sweep: {} scenarios on {} ({} done before), {} workers",
            plan.scenarios.len(),
            plan.grid.name,
            plan.scenarios.len() - todo,
            plan.workers.min(todo.max(1))
        );
    }
    let started = std::time::Instant::now();
    let outcome = execute(&plan, |p| {
        if !quiet {
            eprint!(
                "\r  {}/{} scenarios run, {:.1} s",
                p.done,
                p.total,
                started.elapsed().as_secs_f64()
            );
            if p.done == p.total {
                eprintln!();
            }
        }
    })?;
    println!(
        "ran {} of {} scenarios ({} already done)",
        outcome.ran,
        outcome.scenarios,
        outcome.scenarios - outcome.ran
    );
    println!("wrote {}", plan.out.display());
    if let Some(out) = &plan.intervals_out {
        println!("wrote {}", out.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_lists_and_ranges() {
        assert_eq!(parse_seeds("1..4").unwrap(), vec![1, 2, 3]);
        assert_eq!(parse_seeds("1..=3, 7").unwrap(), vec![1, 2, 3, 7]);
        assert_eq!(parse_seeds("5").unwrap(), vec![5]);
        for bad in ["", "1..1", "3..=2", "x", "1,,2", "-1"] {
            assert!(
                matches!(parse_seeds(bad), Err(SweepError::Spec(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_spec_is_a_product_seeds_innermost_without_duplicates() {
        let args = SweepArgs {
            pv_share: Some("0,0.5".into()),
            mechanism: Some("uniform,cda".into()),
            k: Some("0.5,1".into()),
            seeds: "1..3".into(),
            days: Some("1".into()),
            ..SweepArgs::default()
        };
        let plan = plan(&args).unwrap();
        let labels: Vec<&str> = plan.scenarios.iter().map(|s| s.label.as_str()).collect();
        // cda ignores k: its second k is the same scenario as its first.
        assert_eq!(plan.scenarios.len(), 2 * (2 + 1) * 2);
        assert_eq!(
            labels[..3],
            [
                "--days=1 --pv-share=0 --mechanism=uniform --k=0.5 --seed=1",
                "--days=1 --pv-share=0 --mechanism=uniform --k=0.5 --seed=2",
                "--days=1 --pv-share=0 --mechanism=uniform --k=1 --seed=1",
            ]
        );
    }

    #[test]
    fn bad_specs_fail_before_anything_runs() {
        let bad = |args: SweepArgs| match plan(&args) {
            Err(SweepError::Spec(m)) => m,
            other => panic!("{other:?}"),
        };
        let m = bad(SweepArgs {
            pv_share: Some("0,2".into()),
            seeds: "1".into(),
            ..SweepArgs::default()
        });
        assert!(
            m.contains("--pv-share=2") && m.contains("between 0 and 1"),
            "{m}"
        );
        let m = bad(SweepArgs {
            battery_share: Some("x".into()),
            seeds: "1".into(),
            ..SweepArgs::default()
        });
        assert!(m.contains("--battery-share"), "{m}");
        let m = bad(SweepArgs {
            seeds: "1".into(),
            workers: Some(0),
            ..SweepArgs::default()
        });
        assert!(m.contains("--workers"), "{m}");
    }
}
