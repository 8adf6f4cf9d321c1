//! Writes a run's report: `intervals.csv`, `households.csv` and `summary.json`.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::record::money_f64;
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

fn opt(v: Option<f64>) -> String {
    v.map(|p| format!("{p:.6}")).unwrap_or_default()
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
        [
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
        ],
        report.intervals.iter().map(|r| {
            [
                r.time.clone(),
                r.step.to_string(),
                r.orders.to_string(),
                opt(r.price),
                r.volume_wh.to_string(),
                format!("{:.3}", r.demand_wh),
                format!("{:.3}", r.pv_wh),
                r.from_utility_wh.to_string(),
                r.to_utility_wh.to_string(),
                r.baseline_import_wh.to_string(),
                r.baseline_export_wh.to_string(),
                format!("{:.9}", r.market_cost),
                format!("{:.9}", r.baseline_cost),
                format!("{:.6}", r.vm_min),
                format!("{:.6}", r.vm_max),
                format!("{:.4}", r.max_line_loading),
                format!("{:.4}", r.max_trafo_loading),
                format!("{:.6}", r.ext_grid_p_mw),
                r.violations.to_string(),
                format!("{:.6}", r.baseline_vm_min),
                format!("{:.6}", r.baseline_vm_max),
                r.baseline_violations.to_string(),
                r.non_converged.0.to_string(),
                r.non_converged.1.to_string(),
            ]
        }),
    )?;

    let households = dir.join("households.csv");
    write_csv(
        &households,
        [
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
        ],
        report.households.iter().map(|h| {
            [
                h.id.clone(),
                h.bus.clone(),
                format!("{:.3}", h.pv_kwp),
                format!("{:.3}", h.battery_kwh),
                format!("{:.3}", h.load_wh),
                format!("{:.3}", h.pv_wh),
                h.bought_wh.to_string(),
                h.sold_wh.to_string(),
                h.from_utility_wh.to_string(),
                h.to_utility_wh.to_string(),
                h.baseline_import_wh.to_string(),
                h.baseline_export_wh.to_string(),
                h.market_cost.to_string(),
                h.baseline_cost.to_string(),
                format!("{:.9}", money_f64(h.savings())),
            ]
        }),
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
