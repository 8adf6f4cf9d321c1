//! Columnar tables and their Parquet files: what a sweep writes ([`crate::sweep`]).
//!
//! A [`Table`] is named, typed columns of equal length. [`write()`] puts tables into one Parquet
//! file, one row group per table; [`read()`] gives a file back as one table. The writer uses the
//! `parquet` crate's column writers (no Arrow), Snappy pages and page statistics.
//!
//! # Invariants
//! - Deterministic bytes: the same tables give the same file, byte for byte. The writer's
//!   properties are fixed here (no timestamp, no host, `created_by` without a build id, no
//!   key-value metadata), and nothing depends on the order threads finished in.
//! - Types: [`Column::Str`] is a required UTF-8 `BYTE_ARRAY`, [`Column::Int`] a required `INT64`,
//!   [`Column::Time`] a required `INT64` timestamp in milliseconds (not adjusted to UTC: the
//!   profiles' standard time), [`Column::Float`] an optional `DOUBLE` (`None` is null). Pandas
//!   reads them as `object`, `int64`, `datetime64[ms]` and `float64`.
//! - [`read()`] of a file [`write()`] wrote gives the tables' rows back exactly (floats to the
//!   bit).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use parquet::basic::{Compression, LogicalType, Repetition, TimeUnit, Type as PhysicalType};
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::record::Field;
use parquet::schema::types::Type;

/// One column's values.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Text.
    Str(Vec<String>),
    /// Whole numbers.
    Int(Vec<i64>),
    /// Milliseconds since 1970-01-01 00:00 of a naive (profile) time.
    Time(Vec<i64>),
    /// Floats; `None` is a missing value (null).
    Float(Vec<Option<f64>>),
}

impl Column {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Column::Str(v) => v.len(),
            Column::Int(v) | Column::Time(v) => v.len(),
            Column::Float(v) => v.len(),
        }
    }

    /// No values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An empty column of the same type.
    fn empty_like(&self) -> Column {
        match self {
            Column::Str(_) => Column::Str(Vec::new()),
            Column::Int(_) => Column::Int(Vec::new()),
            Column::Time(_) => Column::Time(Vec::new()),
            Column::Float(_) => Column::Float(Vec::new()),
        }
    }

    /// Appends `other`'s values; false (and nothing appended) if the types differ.
    fn extend(&mut self, other: &Column) -> bool {
        match (self, other) {
            (Column::Str(a), Column::Str(b)) => a.extend_from_slice(b),
            (Column::Int(a), Column::Int(b)) | (Column::Time(a), Column::Time(b)) => {
                a.extend_from_slice(b);
            }
            (Column::Float(a), Column::Float(b)) => a.extend_from_slice(b),
            _ => return false,
        }
        true
    }
}

/// Named columns of equal length.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// `(name, values)` in file order.
    pub columns: Vec<(String, Column)>,
}

/// Why a table could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The Parquet library failed (an unreadable or foreign file, or a write error).
    #[error(transparent)]
    Parquet(#[from] ParquetError),
    /// Tables of one file must have the same columns, each column as many values as the others.
    #[error("table shape: {0}")]
    Shape(String),
}

impl Table {
    /// Number of rows (0 without columns).
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, |(_, c)| c.len())
    }

    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }

    /// A table with `column` put first.
    pub fn with_first(mut self, name: &str, column: Column) -> Table {
        self.columns.insert(0, (name.to_owned(), column));
        self
    }

    /// Appends `other`'s rows.
    ///
    /// # Errors
    /// [`TableError::Shape`] if the column names or types differ.
    pub fn append(&mut self, other: &Table) -> Result<(), TableError> {
        if self.columns.is_empty() {
            self.columns = other
                .columns
                .iter()
                .map(|(n, c)| (n.clone(), c.empty_like()))
                .collect();
        }
        if self.columns.len() != other.columns.len() {
            return Err(TableError::Shape("different numbers of columns".into()));
        }
        for ((name, mine), (theirs_name, theirs)) in self.columns.iter_mut().zip(&other.columns) {
            if name != theirs_name || !mine.extend(theirs) {
                return Err(TableError::Shape(format!(
                    "column {theirs_name:?} does not match {name:?}"
                )));
            }
        }
        Ok(())
    }

    fn check(&self) -> Result<(), TableError> {
        let rows = self.rows();
        match self.columns.iter().find(|(_, c)| c.len() != rows) {
            Some((name, c)) => Err(TableError::Shape(format!(
                "column {name:?} has {} values, not {rows}",
                c.len()
            ))),
            None => Ok(()),
        }
    }
}

/// The fixed writer properties (see the module's invariants).
fn properties() -> Arc<WriterProperties> {
    Arc::new(
        WriterProperties::builder()
            .set_writer_version(WriterVersion::PARQUET_1_0)
            .set_compression(Compression::SNAPPY)
            .set_created_by(concat!("voltmesh-sim ", env!("CARGO_PKG_VERSION")).to_owned())
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_max_row_group_size(usize::MAX)
            .build(),
    )
}

fn schema(table: &Table) -> Result<Arc<Type>, ParquetError> {
    let fields = table
        .columns
        .iter()
        .map(|(name, column)| {
            let (physical, logical, repetition) = match column {
                Column::Str(_) => (
                    PhysicalType::BYTE_ARRAY,
                    Some(LogicalType::String),
                    Repetition::REQUIRED,
                ),
                Column::Int(_) => (PhysicalType::INT64, None, Repetition::REQUIRED),
                Column::Time(_) => (
                    PhysicalType::INT64,
                    Some(LogicalType::Timestamp {
                        is_adjusted_to_u_t_c: false,
                        unit: TimeUnit::MILLIS,
                    }),
                    Repetition::REQUIRED,
                ),
                Column::Float(_) => (PhysicalType::DOUBLE, None, Repetition::OPTIONAL),
            };
            Type::primitive_type_builder(name, physical)
                .with_logical_type(logical)
                .with_repetition(repetition)
                .build()
                .map(Arc::new)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Arc::new(
        Type::group_type_builder("schema")
            .with_fields(fields)
            .build()?,
    ))
}

/// Writes `tables` (same columns, at least one) as one Parquet file into `out`, one row group
/// per table, and returns `out`.
///
/// # Errors
/// [`TableError::Shape`] for tables of different columns or ragged columns, else the writer's.
pub fn write<W: Write + Send>(
    out: W,
    tables: impl IntoIterator<Item = Result<Table, TableError>>,
) -> Result<W, TableError> {
    let mut tables = tables.into_iter();
    let Some(first) = tables.next().transpose()? else {
        return Err(TableError::Shape("no table to write".into()));
    };
    let mut writer = SerializedFileWriter::new(out, schema(&first)?, properties())?;
    let mut next = Some(first);
    while let Some(table) = next.take() {
        table.check()?;
        let mut group = writer.next_row_group()?;
        for (name, column) in &table.columns {
            let mut col = group.next_column()?.ok_or_else(|| {
                TableError::Shape(format!("column {name:?} is not in the file's schema"))
            })?;
            match column {
                Column::Str(values) => {
                    let values: Vec<ByteArray> =
                        values.iter().map(|s| ByteArray::from(s.as_str())).collect();
                    col.typed::<ByteArrayType>()
                        .write_batch(&values, None, None)?;
                }
                Column::Int(values) | Column::Time(values) => {
                    col.typed::<Int64Type>().write_batch(values, None, None)?;
                }
                Column::Float(values) => {
                    let present: Vec<f64> = values.iter().flatten().copied().collect();
                    let levels: Vec<i16> = values.iter().map(|v| i16::from(v.is_some())).collect();
                    col.typed::<DoubleType>()
                        .write_batch(&present, Some(&levels), None)?;
                }
            }
            col.close()?;
        }
        group.close()?;
        next = tables.next().transpose()?;
    }
    Ok(writer.into_inner()?)
}

/// Reads a Parquet file of the types [`write()`] writes as one table (all row groups).
///
/// # Errors
/// An unreadable file, or one with a column of another type.
pub fn read(path: &Path) -> Result<Table, TableError> {
    let file = std::fs::File::open(path).map_err(|e| ParquetError::External(Box::new(e)))?;
    let reader = SerializedFileReader::new(file)?;
    let schema = reader.metadata().file_metadata().schema_descr_ptr();
    let mut columns = schema
        .columns()
        .iter()
        .map(|c| {
            let column = match (c.physical_type(), c.logical_type_ref()) {
                (PhysicalType::BYTE_ARRAY, _) => Column::Str(Vec::new()),
                (PhysicalType::INT64, Some(LogicalType::Timestamp { .. })) => {
                    Column::Time(Vec::new())
                }
                (PhysicalType::INT64, _) => Column::Int(Vec::new()),
                (PhysicalType::DOUBLE, _) => Column::Float(Vec::new()),
                (other, _) => {
                    return Err(TableError::Shape(format!(
                        "column {:?} has the unexpected type {other}",
                        c.name()
                    )))
                }
            };
            Ok((c.name().to_owned(), column))
        })
        .collect::<Result<Vec<_>, _>>()?;
    for row in reader.get_row_iter(None)? {
        let row = row?;
        for ((name, column), (_, field)) in columns.iter_mut().zip(row.get_column_iter()) {
            let ok = match (column, field) {
                (Column::Str(v), Field::Str(s)) => {
                    v.push(s.clone());
                    true
                }
                (Column::Int(v), Field::Long(n)) | (Column::Time(v), Field::TimestampMillis(n)) => {
                    v.push(*n);
                    true
                }
                (Column::Float(v), Field::Double(x)) => {
                    v.push(Some(*x));
                    true
                }
                (Column::Float(v), Field::Null) => {
                    v.push(None);
                    true
                }
                _ => false,
            };
            if !ok {
                return Err(TableError::Shape(format!(
                    "column {name:?}: unexpected value {field}"
                )));
            }
        }
    }
    Ok(Table { columns })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        Table {
            columns: vec![
                ("name".into(), Column::Str(vec!["a".into(), "bé".into()])),
                ("n".into(), Column::Int(vec![-1, i64::MAX])),
                ("t".into(), Column::Time(vec![0, 1_451_606_400_000])),
                ("x".into(), Column::Float(vec![Some(0.1 + 0.2), None])),
            ],
        }
    }

    #[test]
    fn round_trip_is_exact_and_bytes_are_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let bytes = write(Vec::new(), [Ok(sample()), Ok(sample())]).unwrap();
        assert_eq!(
            bytes,
            write(Vec::new(), [Ok(sample()), Ok(sample())]).unwrap()
        );
        std::fs::write(&path, &bytes).unwrap();
        let mut both = sample();
        both.append(&sample()).unwrap();
        assert_eq!(read(&path).unwrap(), both);
    }

    #[test]
    fn ragged_and_mismatched_tables_are_refused() {
        let mut ragged = sample();
        ragged.columns[1].1 = Column::Int(vec![1]);
        assert!(matches!(
            write(Vec::new(), [Ok(ragged)]),
            Err(TableError::Shape(_))
        ));
        let mut other = sample();
        other.columns[0].0 = "other".into();
        assert!(sample().append(&other).is_err());
    }
}
