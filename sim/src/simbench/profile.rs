//! Yearly time series (LoadProfile.csv, RESProfile.csv), parsed once into columns.
//!
//! # Time
//! The `time` labels are local wall-clock time (CET/CEST): an hour is skipped in March and repeated
//! in October. The series itself is regular, so interval `i` starts at `first label + i·step`,
//! which is standard time all year; this is also how the reference power flows index it.
//!
//! # Performance
//! Each column is one `Vec<f64>`, indexed by interval: reading a value per interval is a load.

use std::path::Path;

use chrono::{NaiveDateTime, TimeDelta};

use super::table::{header, malformed, open};
use super::GridError;

/// The time format of SimBench profile files.
const TIME_FORMAT: &str = "%d.%m.%Y %H:%M";

/// A regular time series table. Invariant: every column has [`Profiles::len`] values, the `i`-th
/// of which belongs to the interval starting at `start + i·step`.
#[derive(Debug, Clone, PartialEq)]
pub struct Profiles {
    names: Vec<String>,
    columns: Vec<Vec<f64>>,
    start: NaiveDateTime,
    step: TimeDelta,
    len: usize,
}

impl Profiles {
    /// Reads a profile file: a `time` column and one column per profile.
    ///
    /// # Errors
    /// [`GridError::NotSimBench`] without a `time` column, [`GridError::BadValue`] for a value that
    /// is not a number or a bad time, [`GridError::IrregularTime`] if the step changes.
    pub fn read(file: &Path) -> Result<Profiles, GridError> {
        let mut reader = open(file)?;
        let headers = header(file, &mut reader, &["time"])?;
        let time_col = headers.iter().position(|h| h == "time").unwrap_or(0);
        let names: Vec<String> = headers
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != time_col)
            .map(|(_, h)| h.clone())
            .collect();
        let mut columns: Vec<Vec<f64>> = vec![Vec::with_capacity(35_136); names.len()];
        let mut start = None;
        let mut step = TimeDelta::zero();
        let mut expected: Option<NaiveDateTime> = None;
        let mut record = csv::StringRecord::new();
        let mut len = 0;
        while reader
            .read_record(&mut record)
            .map_err(|e| malformed(file, &e))?
        {
            let line = record.position().map_or(0, csv::Position::line);
            let text = record.get(time_col).unwrap_or("");
            let time = NaiveDateTime::parse_from_str(text, TIME_FORMAT).map_err(|_| {
                GridError::BadValue {
                    file: file.to_owned(),
                    line,
                    column: "time".into(),
                    value: text.to_owned(),
                    expected: "a time like 21.06.2016 12:00",
                }
            })?;
            match (start, len) {
                (None, _) => start = Some(time),
                (Some(first), 1) => {
                    step = time - first;
                    if step <= TimeDelta::zero() {
                        return Err(irregular(file, line, text));
                    }
                }
                // Labels are local wall-clock time: daylight saving time skips or repeats an hour.
                _ if expected.is_some_and(|want: NaiveDateTime| {
                    (time - want).abs() > TimeDelta::hours(1)
                }) =>
                {
                    return Err(irregular(file, line, text))
                }
                _ => {}
            }
            expected = start.map(|first| first + step * i32::try_from(len + 1).unwrap_or(i32::MAX));
            let mut c = 0;
            for (i, field) in record.iter().enumerate() {
                if i == time_col {
                    continue;
                }
                let value = field.parse::<f64>().ok().filter(|v| v.is_finite());
                let value = value.ok_or_else(|| GridError::BadValue {
                    file: file.to_owned(),
                    line,
                    column: names[c].clone(),
                    value: field.to_owned(),
                    expected: "a finite number",
                })?;
                columns[c].push(value);
                c += 1;
            }
            len += 1;
        }
        let start = start.ok_or_else(|| GridError::NotSimBench {
            file: file.to_owned(),
            reason: "no rows".into(),
        })?;
        if step == TimeDelta::zero() {
            step = TimeDelta::minutes(15);
        }
        Ok(Profiles {
            names,
            columns,
            start,
            step,
            len,
        })
    }

    /// The index of the column called `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// The values of column `index`, one per interval.
    pub fn column(&self, index: usize) -> &[f64] {
        self.columns.get(index).map_or(&[], Vec::as_slice)
    }

    /// Column names in file order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Number of intervals.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if there are no intervals.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Start of the first interval.
    pub fn start(&self) -> NaiveDateTime {
        self.start
    }

    /// Length of an interval.
    pub fn step(&self) -> TimeDelta {
        self.step
    }

    /// The index of the interval starting exactly at `time`, if the series has it.
    pub fn index_of(&self, time: NaiveDateTime) -> Option<usize> {
        let offset = (time - self.start).num_seconds();
        let step = self.step.num_seconds();
        if offset < 0 || step <= 0 || offset % step != 0 {
            return None;
        }
        usize::try_from(offset / step)
            .ok()
            .filter(|&i| i < self.len)
    }

    /// The start time of interval `index`.
    pub fn time_of(&self, index: usize) -> NaiveDateTime {
        self.start + self.step * i32::try_from(index).unwrap_or(i32::MAX)
    }
}

fn irregular(file: &Path, line: u64, time: &str) -> GridError {
    GridError::IrregularTime {
        file: file.to_owned(),
        line,
        time: time.to_owned(),
    }
}
