//! Errors from reading a SimBench CSV grid folder.

use std::path::PathBuf;

/// Why a SimBench grid folder could not be read. Every variant names the file and, where one row is
/// at fault, its line number in that file (the header is line 1).
#[derive(Debug, thiserror::Error)]
pub enum GridError {
    /// The file could not be opened or read.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file does not look like a SimBench CSV table (not `;`-separated, or a column is missing).
    #[error("{file}: not a SimBench CSV file: {reason}")]
    NotSimBench {
        /// The file.
        file: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A row could not be split into fields (for example a wrong number of fields).
    #[error("{file}, line {line}: {reason}")]
    Malformed {
        /// The file.
        file: PathBuf,
        /// The line number (header is line 1).
        line: u64,
        /// The parser's complaint.
        reason: String,
    },
    /// A field does not hold the value its column needs.
    #[error("{file}, line {line}: column `{column}` has {value:?}, expected {expected}")]
    BadValue {
        /// The file.
        file: PathBuf,
        /// The line number.
        line: u64,
        /// The column.
        column: String,
        /// The field as written.
        value: String,
        /// What the column needs.
        expected: &'static str,
    },
    /// An element refers to a node that Node.csv does not define.
    #[error("{file}, line {line}: unknown node {node:?}")]
    UnknownNode {
        /// The file.
        file: PathBuf,
        /// The line number.
        line: u64,
        /// The node id as written.
        node: String,
    },
    /// An element refers to a type that its type table does not define.
    #[error("{file}, line {line}: unknown type {type_id:?} (not in {type_file})")]
    UnknownType {
        /// The file.
        file: PathBuf,
        /// The line number.
        line: u64,
        /// The type id as written.
        type_id: String,
        /// The type table that should define it.
        type_file: &'static str,
    },
    /// A load or generator names a profile that has no column in the profile file.
    #[error("{file}, line {line}: profile column {column:?} is missing from {profile_file}")]
    MissingProfile {
        /// The file of the element.
        file: PathBuf,
        /// The line number.
        line: u64,
        /// The missing column.
        column: String,
        /// The profile file searched.
        profile_file: PathBuf,
    },
    /// A line has a negative (or non-finite) length.
    #[error("{file}, line {line}: line {id:?} has negative length {length} km")]
    NegativeLength {
        /// The file.
        file: PathBuf,
        /// The line number.
        line: u64,
        /// The line id.
        id: String,
        /// The length in km.
        length: f64,
    },
    /// A bus cannot be reached from the external grid through closed switches, lines and
    /// transformers.
    #[error("{file}, line {line}: bus {node:?} is islanded (no path to the external grid)")]
    IslandedBus {
        /// Node.csv.
        file: PathBuf,
        /// The line of the islanded node.
        line: u64,
        /// The node id.
        node: String,
    },
    /// A branch connects a bus to itself once closed switches have merged buses.
    #[error("{file}, line {line}: {id:?} connects bus {bus:?} to itself")]
    SelfLoop {
        /// The file.
        file: PathBuf,
        /// The line number.
        line: u64,
        /// The element id.
        id: String,
        /// The merged bus.
        bus: String,
    },
    /// The same id appears twice in one table.
    #[error("{file}, line {line}: duplicate id {id:?}")]
    DuplicateId {
        /// The file.
        file: PathBuf,
        /// The line number.
        line: u64,
        /// The id.
        id: String,
    },
    /// The grid needs exactly one external grid (the slack).
    #[error("{file}: expected exactly one external grid, found {found}")]
    ExternalNetCount {
        /// ExternalNet.csv.
        file: PathBuf,
        /// How many rows it has.
        found: usize,
    },
    /// A profile file's time column is not a regular 15-minute (or other fixed-step) series.
    #[error("{file}, line {line}: time {time:?} breaks the fixed step of the series")]
    IrregularTime {
        /// The profile file.
        file: PathBuf,
        /// The line number.
        line: u64,
        /// The time as written.
        time: String,
    },
}
