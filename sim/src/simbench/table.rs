//! One SimBench CSV table: `;`-separated, a header row, `NULL` for missing values.
//!
//! # Known limitations
//! Fields are not quoted in SimBench files, so quoting is left to the `csv` crate's defaults.

use std::path::{Path, PathBuf};

use super::GridError;

/// A parsed table: its header and its rows, each with its line number in the file.
#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) file: PathBuf,
    headers: Vec<String>,
    rows: Vec<(u64, csv::StringRecord)>,
}

/// One row of a [`Table`], with typed accessors that report errors with file and line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row<'a> {
    table: &'a Table,
    pub(crate) line: u64,
    record: &'a csv::StringRecord,
}

impl Table {
    /// Reads `dir/name` and checks that every `required` column is in its header.
    ///
    /// # Errors
    /// [`GridError::Io`] if the file cannot be read, [`GridError::NotSimBench`] if it is not a
    /// `;`-separated table with the required columns, [`GridError::Malformed`] for a bad row.
    pub(crate) fn read(dir: &Path, name: &str, required: &[&str]) -> Result<Table, GridError> {
        let file = dir.join(name);
        let mut reader = open(&file)?;
        let headers = header(&file, &mut reader, required)?;
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| malformed(&file, &e))?;
            let line = record.position().map_or(0, |p| p.line());
            if record.iter().all(str::is_empty) {
                continue;
            }
            rows.push((line, record));
        }
        Ok(Table {
            file,
            headers,
            rows,
        })
    }

    /// Reads `dir/name` as [`Table::read`] does and maps every row with `f`, in file order.
    ///
    /// # Errors
    /// [`Table::read`]'s errors, or the first error of `f`.
    pub(crate) fn read_rows<T>(
        dir: &Path,
        name: &str,
        required: &[&str],
        mut f: impl FnMut(&Row<'_>) -> Result<T, GridError>,
    ) -> Result<Vec<T>, GridError> {
        let table = Table::read(dir, name, required)?;
        table.rows().map(|row| f(&row)).collect()
    }

    /// The index of a column (which [`Table::read`] has checked is present).
    pub(crate) fn col(&self, name: &str) -> usize {
        self.headers
            .iter()
            .position(|h| h == name)
            .unwrap_or(usize::MAX)
    }

    /// The rows in file order.
    pub(crate) fn rows(&self) -> impl Iterator<Item = Row<'_>> {
        self.rows.iter().map(|(line, record)| Row {
            table: self,
            line: *line,
            record,
        })
    }

    /// How many data rows the table has.
    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }
}

pub(crate) fn open(file: &Path) -> Result<csv::Reader<std::fs::File>, GridError> {
    let handle = std::fs::File::open(file).map_err(|source| GridError::Io {
        file: file.to_owned(),
        source,
    })?;
    Ok(csv::ReaderBuilder::new()
        .delimiter(b';')
        .trim(csv::Trim::All)
        .from_reader(handle))
}

/// Reads and checks the header of a SimBench table.
pub(crate) fn header(
    file: &Path,
    reader: &mut csv::Reader<std::fs::File>,
    required: &[&str],
) -> Result<Vec<String>, GridError> {
    let not_simbench = |reason: String| GridError::NotSimBench {
        file: file.to_owned(),
        reason,
    };
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| not_simbench(e.to_string()))?
        .iter()
        .map(str::to_owned)
        .collect();
    if headers.len() < 2 {
        return Err(not_simbench(
            "the header has fewer than two `;`-separated columns".into(),
        ));
    }
    if let Some(missing) = required.iter().find(|c| !headers.iter().any(|h| h == *c)) {
        return Err(not_simbench(format!("column `{missing}` is missing")));
    }
    Ok(headers)
}

pub(crate) fn malformed(file: &Path, e: &csv::Error) -> GridError {
    GridError::Malformed {
        file: file.to_owned(),
        line: e.position().map_or(0, csv::Position::line),
        reason: e.to_string(),
    }
}

impl<'a> Row<'a> {
    /// The field of `column` as text (empty if the row is short).
    pub(crate) fn str(&self, column: &str) -> &'a str {
        self.record.get(self.table.col(column)).unwrap_or("")
    }

    fn bad(&self, column: &str, expected: &'static str) -> GridError {
        GridError::BadValue {
            file: self.table.file.clone(),
            line: self.line,
            column: column.to_owned(),
            value: self.str(column).to_owned(),
            expected,
        }
    }

    /// The field of `column` as a finite number.
    ///
    /// # Errors
    /// [`GridError::BadValue`] if it is not a finite number (including `NULL`).
    pub(crate) fn f64(&self, column: &str) -> Result<f64, GridError> {
        self.str(column)
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| self.bad(column, "a finite number"))
    }

    /// The field of `column` as a finite number, `None` for `NULL` or an empty field.
    ///
    /// # Errors
    /// [`GridError::BadValue`] if it is neither empty, `NULL` nor a finite number.
    pub(crate) fn opt_f64(&self, column: &str) -> Result<Option<f64>, GridError> {
        match self.str(column) {
            "" | "NULL" => Ok(None),
            _ => self.f64(column).map(Some),
        }
    }

    /// The field of `column` as an integer (SimBench writes some as `1` or `1.0`).
    ///
    /// # Errors
    /// [`GridError::BadValue`] if it is not an integer.
    pub(crate) fn int(&self, column: &str) -> Result<i64, GridError> {
        let v = self.f64(column)?;
        if v.fract() == 0.0 && v.abs() < 1e15 {
            Ok(v as i64)
        } else {
            Err(self.bad(column, "an integer"))
        }
    }

    /// The field of `column` as a non-empty id.
    ///
    /// # Errors
    /// [`GridError::BadValue`] if it is empty or `NULL`.
    pub(crate) fn id(&self, column: &str) -> Result<String, GridError> {
        match self.str(column) {
            "" | "NULL" => Err(self.bad(column, "a non-empty id")),
            s => Ok(s.to_owned()),
        }
    }

    /// The file this row comes from.
    pub(crate) fn file(&self) -> &'a Path {
        &self.table.file
    }
}
