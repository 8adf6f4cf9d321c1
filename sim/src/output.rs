//! Writes a run's report: `intervals.csv`, `households.csv` and `summary.json`.

use std::io::Write;
use std::path::{Path, PathBuf};

use voltmesh_engine::Money;

use crate::record::{money_f64, HouseholdRecord, IntervalRecord};
use crate::run::Report;

/// Why the report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// A file could not be created or written.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A CSV row could not be written.
    #[error("{file}: {source}")]
    Csv {
        /// The file.
        file: PathBuf,
        /// The cause.
        source: csv::Error,
    },
    /// The summary could not be serialized.
    #[error("{file}: {source}")]
    Json {
        /// The file.
        file: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
}

/// One value of an output table, and how `intervals.csv` / `households.csv` write it. The CSV
/// files and the Python package's DataFrames are both made from these cells, so they cannot
/// disagree on a column's name, order or value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Text, written as is.
    Text(String),
    /// A whole number, written in full.
    Int(u64),
    /// A float, written with this many decimals (the value itself is not rounded).
    Float(f64, usize),
    /// A float that may be missing (written as an empty field), with this many decimals.
    OptFloat(Option<f64>, usize),
    /// An exact amount of money, written with its nine decimals.
    Money(Money),
}

impl Cell {
    /// The cell as the CSV files write it.
    pub fn to_csv(&self) -> String {
        match self {
            Cell::Text(t) => t.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Float(v, decimals) => format!("{v:.decimals$}"),
            Cell::OptFloat(v, decimals) => v.map(|v| format!("{v:.decimals$}")).unwrap_or_default(),
            Cell::Money(m) => m.to_string(),
        }
    }
}

/// The columns of `intervals.csv`, in order; [`interval_row`] gives one cell per column.
pub const INTERVAL_COLUMNS: [&str; 24] = [
    "time",
    "step",
    "orders",
    "price",
    "volume_wh",
    "demand_wh",
    "pv_wh",
    "from_utility_wh",
    "to_utility_wh",
    "baseline_import_wh",
    "baseline_export_wh",
    "market_cost",
    "baseline_cost",
    "vm_min_pu",
    "vm_max_pu",
    "max_line_loading_percent",
    "max_trafo_loading_percent",
    "ext_grid_p_mw",
    "violations",
    "baseline_vm_min_pu",
    "baseline_vm_max_pu",
    "baseline_violations",
    "non_converged",
    "baseline_non_converged",
];

/// One row of `intervals.csv`, in the order of [`INTERVAL_COLUMNS`].
pub fn interval_row(r: &IntervalRecord) -> [Cell; 24] {
    [
        Cell::Text(r.time.clone()),
        Cell::Int(r.step as u64),
        Cell::Int(r.orders.into()),
        Cell::OptFloat(r.price, 6),
        Cell::Int(r.volume_wh),
        Cell::Float(r.demand_wh, 3),
        Cell::Float(r.pv_wh, 3),
        Cell::Int(r.from_utility_wh),
        Cell::Int(r.to_utility_wh),
        Cell::Int(r.baseline_import_wh),
        Cell::Int(r.baseline_export_wh),
        Cell::Float(r.market_cost, 9),
        Cell::Float(r.baseline_cost, 9),
        Cell::Float(r.vm_min, 6),
        Cell::Float(r.vm_max, 6),
        Cell::Float(r.max_line_loading, 4),
        Cell::Float(r.max_trafo_loading, 4),
        Cell::Float(r.ext_grid_p_mw, 6),
        Cell::Int(r.violations.into()),
        Cell::Float(r.baseline_vm_min, 6),
        Cell::Float(r.baseline_vm_max, 6),
        Cell::Int(r.baseline_violations.into()),
        Cell::Int(r.non_converged.0.into()),
        Cell::Int(r.non_converged.1.into()),
    ]
}

/// The columns of `households.csv`, in order; [`household_row`] gives one cell per column.
pub const HOUSEHOLD_COLUMNS: [&str; 15] = [
    "id",
    "bus",
    "pv_kwp",
    "battery_kwh",
    "load_wh",
    "pv_wh",
    "bought_wh",
    "sold_wh",
    "from_utility_wh",
    "to_utility_wh",
    "baseline_import_wh",
    "baseline_export_wh",
    "market_cost",
    "baseline_cost",
    "savings",
];

/// One row of `households.csv`, in the order of [`HOUSEHOLD_COLUMNS`].
pub fn household_row(h: &HouseholdRecord) -> [Cell; 15] {
    [
        Cell::Text(h.id.clone()),
        Cell::Text(h.bus.clone()),
        Cell::Float(h.pv_kwp, 3),
        Cell::Float(h.battery_kwh, 3),
        Cell::Float(h.load_wh, 3),
        Cell::Float(h.pv_wh, 3),
        Cell::Int(h.bought_wh),
        Cell::Int(h.sold_wh),
        Cell::Int(h.from_utility_wh),
        Cell::Int(h.to_utility_wh),
        Cell::Int(h.baseline_import_wh),
        Cell::Int(h.baseline_export_wh),
        Cell::Money(h.market_cost),
        Cell::Money(h.baseline_cost),
        Cell::Float(money_f64(h.savings()), 9),
    ]
}

/// Writes a CSV file: `header`, then one record per row (as many columns as the header).
fn write_csv<const N: usize>(
    file: &Path,
    header: [&str; N],
    rows: impl Iterator<Item = [String; N]>,
) -> Result<(), OutputError> {
    let csv_err = |source| OutputError::Csv {
        file: file.to_owned(),
        source,
    };
    let mut w = csv::Writer::from_path(file).map_err(csv_err)?;
    w.write_record(header).map_err(csv_err)?;
    for row in rows {
        w.write_record(row).map_err(csv_err)?;
    }
    w.flush().map_err(|source| OutputError::Io {
        file: file.to_owned(),
        source,
    })
}

/// Writes the three files into `dir` (created if missing) and returns their paths.
///
/// # Errors
/// [`OutputError`] naming the file that failed.
pub fn write_report(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, OutputError> {
    std::fs::create_dir_all(dir).map_err(|source| OutputError::Io {
        file: dir.to_owned(),
        source,
    })?;
    let intervals = dir.join("intervals.csv");
    write_csv(
        &intervals,
        INTERVAL_COLUMNS,
        report
            .intervals
            .iter()
            .map(|r| interval_row(r).map(|c| c.to_csv())),
    )?;

    let households = dir.join("households.csv");
    write_csv(
        &households,
        HOUSEHOLD_COLUMNS,
        report
            .households
            .iter()
            .map(|h| household_row(h).map(|c| c.to_csv())),
    )?;

    let summary = dir.join("summary.json");
    let text =
        serde_json::to_string_pretty(&report.summary).map_err(|source| OutputError::Json {
            file: summary.clone(),
            source,
        })?;
    std::fs::File::create(&summary)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|source| OutputError::Io {
            file: summary.clone(),
            source,
        })?;
    Ok(vec![intervals, households, summary])
}
