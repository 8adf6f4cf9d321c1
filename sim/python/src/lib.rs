//! `voltmesh._native`: the extension module behind the Python package `voltmesh`
//! (`sim/python/python/voltmesh/`).
//!
//! Every function takes the command line of the CLI command it stands for (the flags after
//! `voltmesh sim`, `voltmesh sim powerflow` or `voltmesh clear`), parses it with the CLI's own
//! `clap` definitions and calls the library functions the CLI calls. So a Python call and the
//! command with the same flags read the same defaults, run the same code and fail with the same
//! messages; the Python layer only turns keyword arguments into flags and results into
//! DataFrames.
//!
//! # Invariants
//! - No panic crosses into Python: bad input is an error value all the way, and each call runs
//!   under `catch_unwind` so a bug surfaces as `voltmesh.VoltmeshError`, not an aborted
//!   interpreter.
//! - Errors are the exception classes of `voltmesh.errors`: `ArgumentError` (bad flags, times,
//!   scenario values, orders), `GridError` (a grid that cannot be read or modelled) and their
//!   base `VoltmeshError` for anything else. The message is what the CLI prints after `error: `.
//! - `sweep`, `sweep_plan` and `sweep_scenario` are `voltmesh sim sweep` ([`voltmesh_sim::sweep`]):
//!   the same parts and the same merged bytes, whether the scenarios ran here or on Dask workers.
//! - A table is a list of `(column, kind, values)` in the CSV file's column order, made from the
//!   same cells as `intervals.csv` and `households.csv` ([`voltmesh_sim::output::Cell`]).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use clap::Parser;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};
use voltmesh_engine::cli::ClearArgs;
use voltmesh_sim::cli::{plan, powerflow_json, Plan, SimArgs, SimCommand};
use voltmesh_sim::output::{self, household_row, interval_row, Cell};
use voltmesh_sim::record::money_f64;
use voltmesh_sim::run::{run, SimError};
use voltmesh_sim::sweep::{self as sweeps, SweepArgs, SweepError};
use voltmesh_sim::table::{Column, Table as SweepTable};

pyo3::import_exception!(voltmesh.errors, VoltmeshError);
pyo3::import_exception!(voltmesh.errors, ArgumentError);
pyo3::import_exception!(voltmesh.errors, GridError);

/// `voltmesh sim [powerflow]`'s command line, parsed by the CLI's own definitions.
#[derive(Debug, Parser)]
#[command(name = "voltmesh sim", no_binary_name = true)]
struct SimCli {
    #[command(flatten)]
    sim: SimArgs,
}

/// `voltmesh clear`'s command line.
#[derive(Debug, Parser)]
#[command(name = "voltmesh clear", no_binary_name = true)]
struct ClearCli {
    #[command(flatten)]
    clear: ClearArgs,
}

/// `voltmesh sim sweep`'s command line.
#[derive(Debug, Parser)]
#[command(name = "voltmesh sim sweep", no_binary_name = true)]
struct SweepCli {
    #[command(flatten)]
    sweep: SweepArgs,
}

/// How a call failed; becomes the matching `voltmesh.errors` exception.
#[derive(Debug)]
enum Failure {
    Argument(String),
    Grid(String),
    Other(String),
}

impl Failure {
    /// Classifies an error of the CLI's functions by its causes; the message is the CLI's
    /// (`{:#}`: the context chain joined by `: `).
    fn of(e: &anyhow::Error) -> Failure {
        let message = format!("{e:#}");
        for cause in e.chain() {
            if cause.is::<voltmesh_sim::simbench::GridError>()
                || cause.is::<voltmesh_sim::powerflow::PowerFlowError>()
            {
                return Failure::Grid(message);
            }
            if let Some(sim) = cause.downcast_ref::<SimError>() {
                return match sim {
                    SimError::Scenario(_) | SimError::Window { .. } => Failure::Argument(message),
                    SimError::PowerFlow(_) => Failure::Grid(message),
                    SimError::Settlement(_) | SimError::Invariant(_) => Failure::Other(message),
                };
            }
            if cause.is::<output::OutputError>() {
                return Failure::Other(message);
            }
        }
        Failure::Argument(message)
    }

    /// A sweep's error: a bad spec is an argument error, a grid one a grid error, a failed run
    /// as [`Failure::of`] classifies its cause; the message is the CLI's.
    fn sweep(e: SweepError) -> Failure {
        match e {
            SweepError::Spec(m) => Failure::Argument(m),
            SweepError::Io { .. } | SweepError::Table { .. } => {
                Failure::Other(format!("{:#}", anyhow::Error::new(e)))
            }
            SweepError::Grid { .. } | SweepError::Run { .. } => Failure::of(&anyhow::Error::new(e)),
        }
    }

    /// A command line clap refused: its message without the `error: ` prefix and the hint.
    fn clap(e: &clap::Error) -> Failure {
        let text = e.render().to_string();
        let text = text.trim_start_matches("error: ");
        let first = text.split("\n\n").next().unwrap_or(text).trim_end();
        Failure::Argument(first.to_owned())
    }

    fn into_py(self) -> PyErr {
        match self {
            Failure::Argument(m) => ArgumentError::new_err(m),
            Failure::Grid(m) => GridError::new_err(m),
            Failure::Other(m) => VoltmeshError::new_err(m),
        }
    }
}

/// Runs `f` without the GIL and with panics caught: a panic (a bug) becomes a
/// [`Failure::Other`] instead of unwinding into Python.
fn guarded<T: Send>(py: Python<'_>, f: impl FnOnce() -> Result<T, Failure> + Send) -> PyResult<T> {
    py.detach(|| {
        catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(Failure::Other(format!("internal error (a bug): {what}")))
        })
    })
    .map_err(Failure::into_py)
}

fn parse_sim(argv: Vec<String>) -> Result<SimArgs, Failure> {
    SimCli::try_parse_from(argv)
        .map(|c| c.sim)
        .map_err(|e| Failure::clap(&e))
}

/// One column of an output table: its cells, converted to Python values of one kind.
fn column<'py>(
    py: Python<'py>,
    name: &str,
    cells: Vec<Cell>,
) -> PyResult<(String, &'static str, Bound<'py, PyList>)> {
    let kind = match cells.first() {
        Some(Cell::Text(_)) => "str",
        Some(Cell::Int(_)) => "int",
        _ => "float",
    };
    let float = |v: f64| {
        let Ok(v) = v.into_pyobject(py);
        v.into_any()
    };
    let values = cells.into_iter().map(|cell| match cell {
        Cell::Text(t) => {
            let Ok(t) = t.into_pyobject(py);
            t.into_any()
        }
        Cell::Int(n) => {
            let Ok(n) = n.into_pyobject(py);
            n.into_any()
        }
        Cell::Float(v, _) | Cell::OptFloat(Some(v), _) => float(v),
        Cell::OptFloat(None, _) => float(f64::NAN),
        Cell::Money(m) => float(money_f64(m)),
    });
    Ok((name.to_owned(), kind, PyList::new(py, values)?))
}

/// A table as columns: `rows` of `N` cells, under `names`.
fn table<'py, const N: usize>(
    py: Python<'py>,
    names: [&str; N],
    rows: impl Iterator<Item = [Cell; N]>,
) -> PyResult<Vec<(String, &'static str, Bound<'py, PyList>)>> {
    let mut columns: Vec<Vec<Cell>> = (0..N).map(|_| Vec::new()).collect();
    for row in rows {
        for (column, cell) in columns.iter_mut().zip(row) {
            column.push(cell);
        }
    }
    names
        .into_iter()
        .zip(columns)
        .map(|(name, cells)| column(py, name, cells))
        .collect()
}

/// A table: `(column, kind, values)` in CSV order; kind is `"str"`, `"int"` or `"float"`.
type Table<'py> = Vec<(String, &'static str, Bound<'py, PyList>)>;

/// `voltmesh sim` with the flags `argv` (without `--out`, `--no-plots`, `--via-network` or the
/// metrics flags, which the Python layer does not pass): returns the intervals table, the
/// households table and the summary as JSON text (`summary.json`'s values). With `out`, also
/// writes `intervals.csv`, `households.csv` and `summary.json` there, as the CLI does.
#[pyfunction]
#[pyo3(signature = (argv, out=None))]
fn simulate<'py>(
    py: Python<'py>,
    argv: Vec<String>,
    out: Option<PathBuf>,
) -> PyResult<(Table<'py>, Table<'py>, String)> {
    let report = guarded(py, move || {
        let args = parse_sim(argv)?;
        if args.command.is_some() {
            return Err(Failure::Argument(
                "expected the flags of a run, not a subcommand".into(),
            ));
        }
        let fail = |e: anyhow::Error| Failure::of(&e);
        let Plan {
            grid,
            scenario,
            window,
        } = plan(&args.run).map_err(fail)?;
        let report = run(&grid, &scenario, window, |_, _| {})
            .map_err(|e| fail(anyhow::Error::new(e).context("simulation")))?;
        if let Some(dir) = out {
            output::write_report(&report, &dir).map_err(|e| fail(e.into()))?;
        }
        let summary = serde_json::to_string(&report.summary)
            .map_err(|e| Failure::Other(format!("summary: {e}")))?;
        Ok((report, summary))
    })?;
    let (report, summary) = report;
    let intervals = table(
        py,
        output::INTERVAL_COLUMNS,
        report.intervals.iter().map(interval_row),
    )?;
    let households = table(
        py,
        output::HOUSEHOLD_COLUMNS,
        report.households.iter().map(household_row),
    )?;
    Ok((intervals, households, summary))
}

/// `voltmesh sim powerflow` with the flags `argv`: returns what it prints (pretty JSON).
#[pyfunction]
fn powerflow(py: Python<'_>, argv: Vec<String>) -> PyResult<String> {
    guarded(py, move || {
        let mut line = vec!["powerflow".to_owned()];
        line.extend(argv);
        match parse_sim(line)?.command {
            Some(SimCommand::Powerflow(args)) => powerflow_json(&args).map_err(|e| Failure::of(&e)),
            _ => Err(Failure::Other("no powerflow command parsed".into())),
        }
    })
}

/// `voltmesh clear` with the flags `argv` (the book from `--orders`, or the example book) or,
/// when `book` is given, for that JSON text: returns what it prints (pretty JSON).
#[pyfunction]
#[pyo3(signature = (argv, book=None))]
fn clear(py: Python<'_>, argv: Vec<String>, book: Option<String>) -> PyResult<String> {
    guarded(py, move || {
        let args = ClearCli::try_parse_from(argv)
            .map(|c| c.clear)
            .map_err(|e| Failure::clap(&e))?;
        args.report(book.as_deref()).map_err(Failure::Argument)
    })
}

fn parse_sweep(argv: Vec<String>) -> Result<SweepArgs, Failure> {
    SweepCli::try_parse_from(argv)
        .map(|c| c.sweep)
        .map_err(|e| Failure::clap(&e))
}

/// A sweep's table as `(column, kind, values)`; kind is `"str"`, `"int"`, `"float"` (null:
/// NaN) or `"time"` (milliseconds since 1970-01-01 00:00, naive).
fn sweep_table<'py>(py: Python<'py>, table: SweepTable) -> PyResult<Table<'py>> {
    table
        .columns
        .into_iter()
        .map(|(name, column)| {
            let (kind, values) = match column {
                Column::Str(v) => ("str", PyList::new(py, v)?),
                Column::Int(v) => ("int", PyList::new(py, v)?),
                Column::Time(v) => ("time", PyList::new(py, v)?),
                Column::Float(v) => (
                    "float",
                    PyList::new(py, v.into_iter().map(|x| x.unwrap_or(f64::NAN)))?,
                ),
            };
            Ok((name, kind, values))
        })
        .collect()
}

/// `voltmesh sim sweep` with the flags `argv`: runs the scenarios whose parts are missing,
/// writes the output file(s) and returns the KPI table, the scenarios run now and the
/// scenarios in the sweep. Prints a progress line on stderr unless `--quiet`.
#[pyfunction]
fn sweep<'py>(py: Python<'py>, argv: Vec<String>) -> PyResult<(Table<'py>, usize, usize)> {
    let outcome = guarded(py, move || {
        let args = parse_sweep(argv)?;
        let plan = sweeps::plan(&args).map_err(Failure::sweep)?;
        let quiet = args.quiet;
        sweeps::execute(&plan, |p| {
            if !quiet {
                eprint!("\r  {}/{} scenarios run", p.done, p.total);
                if p.done == p.total {
                    eprintln!();
                }
            }
        })
        .map_err(Failure::sweep)
    })?;
    Ok((
        sweep_table(py, outcome.kpis)?,
        outcome.ran,
        outcome.scenarios,
    ))
}

/// A scenario still to run: `(kpi part, intervals part or None, its whole command line)`.
type PendingScenario = (String, Option<String>, Vec<String>);

/// The scenarios of the sweep `argv` still to run, each as `(kpi part, intervals part or None,
/// the scenario's whole command line)`; creates the parts folder. The caller runs each command
/// line with [`sweep_scenario`] (anywhere), writes its bytes to the part paths, then calls
/// [`sweep`] to merge.
#[pyfunction]
fn sweep_plan(py: Python<'_>, argv: Vec<String>) -> PyResult<Vec<PendingScenario>> {
    guarded(py, move || {
        let plan = sweeps::plan(&parse_sweep(argv)?).map_err(Failure::sweep)?;
        std::fs::create_dir_all(&plan.parts)
            .map_err(|e| Failure::Other(format!("{}: {e}", plan.parts.display())))?;
        let with_intervals = plan.intervals_out.is_some();
        Ok(plan
            .todo()
            .into_iter()
            .map(|s| {
                (
                    plan.kpi_part(s).display().to_string(),
                    with_intervals.then(|| plan.intervals_part(s).display().to_string()),
                    s.argv.clone(),
                )
            })
            .collect())
    })
}

/// One scenario of a sweep, from its whole command line (`voltmesh sim` flags with `--grid`):
/// the bytes of its KPI part and, with `intervals`, of its intervals part. A pure function of
/// the grid, the scenario and the seed.
#[pyfunction]
fn sweep_scenario<'py>(
    py: Python<'py>,
    argv: Vec<String>,
    intervals: bool,
) -> PyResult<(Bound<'py, PyBytes>, Option<Bound<'py, PyBytes>>)> {
    let (kpi, rows) = guarded(py, move || {
        sweeps::parts_for_argv(&argv, intervals).map_err(Failure::sweep)
    })?;
    Ok((PyBytes::new(py, &kpi), rows.map(|r| PyBytes::new(py, &r))))
}

/// The extension module `voltmesh._native`.
#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(simulate, m)?)?;
    m.add_function(wrap_pyfunction!(powerflow, m)?)?;
    m.add_function(wrap_pyfunction!(clear, m)?)?;
    m.add_function(wrap_pyfunction!(sweep, m)?)?;
    m.add_function(wrap_pyfunction!(sweep_plan, m)?)?;
    m.add_function(wrap_pyfunction!(sweep_scenario, m)?)?;
    Ok(())
}
