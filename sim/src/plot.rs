//! PNG plots of a run with `plotters` (bitmap backend; text in DejaVu Sans, embedded from
//! `sim/assets/` and drawn with `ab_glyph`, so the plots look the same on every machine).
//!
//! Every plot has a title, labelled axes with units and a legend where series share it. Time
//! axes count days since the first interval (whose start the axis label names).
//!
//! - `price_volume.png`: top, clearing price per interval in EUR/kWh (gaps where nothing
//!   cleared); bottom, energy traded between neighbours per interval in kWh.
//! - `voltage.png`: lowest and highest bus voltage per interval in p.u. with the market and
//!   without it (baseline), and the allowed voltage band.
//! - `savings.png`: each household's savings over the run against the baseline, in EUR, sorted
//!   (green: pays less with the market, red: pays more).

use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::record::money_f64;
use crate::run::Report;

/// Why a plot could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct PlotError {
    /// The PNG file.
    pub file: PathBuf,
    /// The drawing backend's complaint.
    pub reason: String,
}

const SIZE: (u32, u32) = (1200, 700);

/// The font family every text on the plots uses (registered from [`FONT`]).
const FAMILY: &str = "sans-serif";

/// DejaVu Sans (licence in `sim/assets/DejaVuSans-LICENSE.txt`).
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

const TITLE_PX: u32 = 20;
const DESC_PX: u32 = 16;
const LABEL_PX: u32 = 13;

/// Grey of the baseline series.
const GREY: RGBColor = RGBColor(150, 150, 150);
/// Dark green (readable as a line and as bars).
const GREEN_DARK: RGBColor = RGBColor(30, 140, 60);

/// Intervals per day when the run has fewer than two intervals to tell (15-minute intervals).
const DEFAULT_PER_DAY: f64 = 96.0;

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

fn err(file: &Path) -> impl Fn(String) -> PlotError + '_ {
    move |reason| PlotError {
        file: file.to_owned(),
        reason,
    }
}

/// The finite range of `values`, padded by 5 % (`(0, 1)` if there is none).
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

/// Market intervals per day, from the first two interval start times.
fn intervals_per_day(report: &Report) -> f64 {
    let start = |i: usize| {
        report
            .intervals
            .get(i)
            .and_then(|r| NaiveDateTime::parse_from_str(&r.time, "%Y-%m-%d %H:%M").ok())
    };
    match (start(0), start(1)) {
        (Some(a), Some(b)) if b > a => 86_400.0 / (b - a).num_seconds() as f64,
        _ => DEFAULT_PER_DAY,
    }
}

/// The time axis description: days since the first interval's start.
fn time_desc(report: &Report) -> String {
    match report.intervals.first() {
        Some(r) => format!("time (days since {})", r.time),
        None => "time (days)".to_owned(),
    }
}

/// Draws the mesh with labelled axes, with as many digits after the point as the axes' spans
/// need (at least `min_y_decimals` on the y axis).
fn axes<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    x_desc: &str,
    y_desc: &str,
    min_y_decimals: usize,
) -> Result<(), String> {
    let (x, y) = (chart.x_range(), chart.y_range());
    let x_decimals = decimals(x.start, x.end);
    let y_decimals = decimals(y.start, y.end).max(min_y_decimals);
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .axis_desc_style((FAMILY, DESC_PX))
        .label_style((FAMILY, LABEL_PX))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(210, 210, 210))
        .x_label_formatter(&|x| format!("{x:.x_decimals$}"))
        .y_label_formatter(&|y| format!("{y:.y_decimals$}"))
        .draw()
        .map_err(|x| x.to_string())
}

/// Draws the legend of the labelled series at `position`.
fn legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    position: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FAMILY, LABEL_PX))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|x| x.to_string())
}

/// A legend entry's sample: a short line in `color`.
fn line_sample(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
}

/// Decimals that tell apart the labels of a `lo..hi` axis with about ten labels.
fn decimals(lo: f64, hi: f64) -> usize {
    let step = (hi - lo).abs() / 10.0;
    if step >= 1.0 || step <= 0.0 {
        0
    } else {
        (-step.log10()).ceil().clamp(0.0, 6.0) as usize
    }
}

/// Draws the three plots into `dir` and returns their paths.
///
/// # Errors
/// [`PlotError`] naming the file the backend could not draw or write (or the embedded font if
/// it cannot be read).
pub fn write_plots(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    let file = dir.join("price_volume.png");
    plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).map_err(|_| PlotError {
        file: file.clone(),
        reason: "the embedded font cannot be read".to_owned(),
    })?;
    let band = report
        .summary
        .scenario
        .as_ref()
        .map_or((0.9, 1.1), |s| (s.band.min_pu, s.band.max_pu));
    let per_day = intervals_per_day(report);
    let day = |i: usize| i as f64 / per_day;
    let days = (report.intervals.len().max(2) as f64 / per_day).max(1.0 / per_day);
    let time = time_desc(report);

    {
        let e = err(&file);
        let root = BitMapBackend::new(&file, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
        let (top, bottom) = root.split_vertically(SIZE.1 / 2);
        let (lo, hi) = range(report.intervals.iter().filter_map(|r| r.price));
        let mut chart = ChartBuilder::on(&top)
            .margin(10)
            .caption("Clearing price per market interval", (FAMILY, TITLE_PX))
            .x_label_area_size(45)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..days, lo..hi)
            .map_err(|x| e(x.to_string()))?;
        axes(&mut chart, &time, "price (EUR/kWh)", 0).map_err(&e)?;
        // One line per run of cleared intervals: no line across intervals without a price.
        let mut segment = Vec::new();
        for (i, r) in report.intervals.iter().enumerate() {
            match r.price {
                Some(p) => segment.push((day(i), p)),
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
        let kwh: Vec<(f64, f64)> = report
            .intervals
            .iter()
            .enumerate()
            .map(|(i, r)| (day(i), r.volume_wh as f64 / 1000.0))
            .collect();
        let (_, vhi) = range(kwh.iter().map(|&(_, v)| v));
        let vhi = vhi.max(0.001);
        let mut chart = ChartBuilder::on(&bottom)
            .margin(10)
            .caption(
                "Energy traded between neighbours per market interval",
                (FAMILY, TITLE_PX),
            )
            .x_label_area_size(45)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..days, 0.0..vhi)
            .map_err(|x| e(x.to_string()))?;
        axes(&mut chart, &time, "traded energy (kWh)", 0).map_err(&e)?;
        chart
            .draw_series(LineSeries::new(kwh, &GREEN_DARK))
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
            .caption(
                "Lowest and highest bus voltage per market interval",
                (FAMILY, TITLE_PX),
            )
            .x_label_area_size(45)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..days, lo..hi)
            .map_err(|x| e(x.to_string()))?;
        axes(&mut chart, &time, "bus voltage (p.u.)", 0).map_err(&e)?;
        let series = |f: fn(&crate::record::IntervalRecord) -> f64| {
            report
                .intervals
                .iter()
                .enumerate()
                .map(move |(i, r)| (day(i), f(r)))
                .filter(|(_, v)| v.is_finite())
                .collect::<Vec<_>>()
        };
        // (data, colour, legend entry: only the first line of each pair is labelled).
        let lines = [
            (
                series(|r| r.baseline_vm_min),
                GREY,
                Some("without the market (baseline): lowest and highest"),
            ),
            (series(|r| r.baseline_vm_max), GREY, None),
            (
                series(|r| r.vm_min),
                RED,
                Some("with the market: lowest and highest"),
            ),
            (series(|r| r.vm_max), RED, None),
            (
                vec![(0.0, band.0), (days, band.0)],
                BLACK,
                Some("voltage band limits"),
            ),
            (vec![(0.0, band.1), (days, band.1)], BLACK, None),
        ];
        for (data, color, label) in lines {
            let drawn = chart
                .draw_series(LineSeries::new(data, &color))
                .map_err(|x| e(x.to_string()))?;
            if let Some(label) = label {
                drawn.label(label).legend(line_sample(color));
            }
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight).map_err(&e)?;
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
            .caption(
                "Savings per household over the run, against the same run without the market",
                (FAMILY, TITLE_PX),
            )
            .x_label_area_size(45)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..m, lo..hi)
            .map_err(|x| e(x.to_string()))?;
        axes(
            &mut chart,
            "households, sorted by savings (count)",
            "savings (EUR per household)",
            2,
        )
        .map_err(&e)?;
        chart
            .draw_series(values.iter().enumerate().map(|(i, &v)| {
                let color = if v >= 0.0 { GREEN_DARK } else { RED };
                Rectangle::new([(i as f64 + 0.1, 0.0), (i as f64 + 0.9, v)], color.filled())
            }))
            .map_err(|x| e(x.to_string()))?;
        chart
            .draw_series(LineSeries::new(vec![(0.0, 0.0), (m, 0.0)], &BLACK))
            .map_err(|x| e(x.to_string()))?;
        // Legend entries for the two bar colours (empty series carry only the labels).
        for (color, label) in [
            (GREEN_DARK, "pays less with the market"),
            (RED, "pays more with the market"),
        ] {
            chart
                .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())
                .map_err(|x| e(x.to_string()))?
                .label(label)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled())
                });
        }
        // Sorted ascending: the upper left is where the bars are lowest.
        legend(&mut chart, SeriesLabelPosition::UpperLeft).map_err(&e)?;
        root.present().map_err(|x| e(x.to_string()))?;
    }
    Ok(vec![file, voltage, savings])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_decimals_follow_the_axis_span() {
        assert_eq!(decimals(0.0, 200.0), 0);
        assert_eq!(decimals(0.9, 1.1), 2);
        assert_eq!(decimals(0.10, 0.12), 3);
        assert_eq!(decimals(1.0, 1.0), 0);
    }
}
