//! PNG plots of a run with `plotters` (bitmap backend, no fonts: the plots carry no text, their
//! legends are in the file names and in the sim README).
//!
//! - `price_volume.png`: top, clearing price per interval (blue; gaps where nothing cleared);
//!   bottom, traded volume in Wh (green). Light grey verticals mark days in the price and voltage
//!   plots; horizontals split the y range in tenths.
//! - `voltage.png`: lowest and highest bus voltage per interval with the market (red) and without
//!   (grey), and the voltage band (black).
//! - `savings.png`: savings per household against the baseline, sorted (green above zero, red
//!   below; the black line is zero).

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::run::{money_f64, Report};

/// Why a plot could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct PlotError {
    /// The PNG file.
    pub file: PathBuf,
    /// The drawing backend's complaint.
    pub reason: String,
}

const SIZE: (u32, u32) = (1200, 600);

/// Light grid lines (one per day on the x axis, ten on the y axis) without any text.
fn grid_lines<DB: DrawingBackend>(
    chart: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
) -> Result<(), String> {
    let (x0, x1) = (chart.x_range().start, chart.x_range().end);
    let (y0, y1) = (chart.y_range().start, chart.y_range().end);
    let light = RGBColor(225, 225, 225);
    let days = ((x1 - x0) / 96.0).floor() as usize;
    let verticals = (1..=days.min(400)).map(|d| {
        let x = x0 + d as f64 * 96.0;
        PathElement::new(vec![(x, y0), (x, y1)], light)
    });
    let horizontals = (1..10).map(|i| {
        let y = y0 + (y1 - y0) * i as f64 / 10.0;
        PathElement::new(vec![(x0, y), (x1, y)], light)
    });
    chart
        .draw_series(verticals.chain(horizontals))
        .map(|_| ())
        .map_err(|x| x.to_string())
}

fn err(file: &Path) -> impl Fn(String) -> PlotError + '_ {
    move |reason| PlotError {
        file: file.to_owned(),
        reason,
    }
}

fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-6);
    (lo - pad, hi + pad)
}

/// Draws the three plots into `dir` and returns their paths.
///
/// # Errors
/// [`PlotError`] naming the file the backend could not draw or write.
pub fn write_plots(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    let band = report
        .summary
        .scenario
        .as_ref()
        .map_or((0.9, 1.1), |s| (s.band.min_pu, s.band.max_pu));
    let n = report.intervals.len().max(2) as f64;

    let file = dir.join("price_volume.png");
    {
        let e = err(&file);
        let root = BitMapBackend::new(&file, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
        let (top, bottom) = root.split_vertically(SIZE.1 / 2);
        let (lo, hi) = range(report.intervals.iter().filter_map(|r| r.price));
        let mut chart = ChartBuilder::on(&top)
            .margin(10)
            .build_cartesian_2d(0.0..n, lo..hi)
            .map_err(|x| e(x.to_string()))?;
        grid_lines(&mut chart).map_err(&e)?;
        let mut segment = Vec::new();
        for (i, r) in report.intervals.iter().enumerate() {
            match r.price {
                Some(p) => segment.push((i as f64, p)),
                None if !segment.is_empty() => {
                    chart
                        .draw_series(LineSeries::new(std::mem::take(&mut segment), &BLUE))
                        .map_err(|x| e(x.to_string()))?;
                }
                None => {}
            }
        }
        if !segment.is_empty() {
            chart
                .draw_series(LineSeries::new(segment, &BLUE))
                .map_err(|x| e(x.to_string()))?;
        }
        let (_, vhi) = range(report.intervals.iter().map(|r| r.volume_wh as f64));
        let mut chart = ChartBuilder::on(&bottom)
            .margin(10)
            .build_cartesian_2d(0.0..n, 0.0..vhi.max(1.0))
            .map_err(|x| e(x.to_string()))?;
        chart
            .draw_series(LineSeries::new(
                report
                    .intervals
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (i as f64, r.volume_wh as f64)),
                &GREEN,
            ))
            .map_err(|x| e(x.to_string()))?;
        root.present().map_err(|x| e(x.to_string()))?;
    }

    let voltage = dir.join("voltage.png");
    {
        let e = err(&voltage);
        let root = BitMapBackend::new(&voltage, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
        let all = report
            .intervals
            .iter()
            .flat_map(|r| [r.vm_min, r.vm_max, r.baseline_vm_min, r.baseline_vm_max]);
        let (lo, hi) = range(all.chain([band.0, band.1]));
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .build_cartesian_2d(0.0..n, lo..hi)
            .map_err(|x| e(x.to_string()))?;
        grid_lines(&mut chart).map_err(&e)?;
        let series = |f: fn(&crate::run::IntervalRecord) -> f64| {
            report
                .intervals
                .iter()
                .enumerate()
                .map(move |(i, r)| (i as f64, f(r)))
                .filter(|(_, v)| v.is_finite())
                .collect::<Vec<_>>()
        };
        for (data, color) in [
            (series(|r| r.baseline_vm_min), RGBColor(160, 160, 160)),
            (series(|r| r.baseline_vm_max), RGBColor(160, 160, 160)),
            (series(|r| r.vm_min), RED),
            (series(|r| r.vm_max), RED),
            (vec![(0.0, band.0), (n, band.0)], BLACK),
            (vec![(0.0, band.1), (n, band.1)], BLACK),
        ] {
            chart
                .draw_series(LineSeries::new(data, &color))
                .map_err(|x| e(x.to_string()))?;
        }
        root.present().map_err(|x| e(x.to_string()))?;
    }

    let savings = dir.join("savings.png");
    {
        let e = err(&savings);
        let root = BitMapBackend::new(&savings, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
        let mut values: Vec<f64> = report
            .households
            .iter()
            .map(|h| money_f64(h.savings()))
            .collect();
        values.sort_by(f64::total_cmp);
        let (lo, hi) = range(values.iter().copied().chain([0.0]));
        let m = values.len().max(1) as f64;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .build_cartesian_2d(0.0..m, lo..hi)
            .map_err(|x| e(x.to_string()))?;
        chart
            .draw_series(values.iter().enumerate().map(|(i, &v)| {
                let color = if v >= 0.0 { GREEN } else { RED };
                Rectangle::new([(i as f64 + 0.1, 0.0), (i as f64 + 0.9, v)], color.filled())
            }))
            .map_err(|x| e(x.to_string()))?;
        chart
            .draw_series(LineSeries::new(vec![(0.0, 0.0), (m, 0.0)], &BLACK))
            .map_err(|x| e(x.to_string()))?;
        root.present().map_err(|x| e(x.to_string()))?;
    }
    Ok(vec![file, voltage, savings])
}
