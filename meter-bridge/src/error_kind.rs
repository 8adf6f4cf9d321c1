//! A flat, countable classification of everything that can go wrong with one message.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What kind of problem a message had: the key of the bridge's error counters and of the
/// dead-letter records. Ordered, so counters iterate deterministically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The payload exceeds the size limit.
    TooLarge,
    /// No decoder claims the topic/payload.
    UnknownFormat,
    /// Syntax or structure is wrong (bad JSON, no telegram frame, unexpected method…).
    Malformed,
    /// A DSMR CRC does not match.
    CrcMismatch,
    /// A DSMR 4+ telegram has no CRC.
    MissingCrc,
    /// A required field or object is missing.
    MissingField,
    /// A value is out of range, has the wrong unit or does not parse.
    BadValue,
    /// A timestamp does not parse or does not exist.
    BadTimestamp,
    /// The meter id (or device id) is unusable.
    BadMeterId,
    /// A per-device accumulator is full.
    TooManyDevices,
    /// The meter is not in the registry.
    UnknownMeter,
    /// A cumulative register decreased (meter swap or rollover).
    RegisterWentBackwards,
    /// The reading is stamped too far in the future.
    TimestampInFuture,
    /// The reading is older than the meter's last accepted reading.
    OutOfOrder,
    /// A household topic names a participant that is not registered.
    UnknownParticipant,
    /// A household's order came after its interval's gate closed or after the bridge planned it.
    GateClosed,
}

impl ErrorKind {
    /// The snake_case name used in logs, metrics and dead-letter records.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::TooLarge => "too_large",
            ErrorKind::UnknownFormat => "unknown_format",
            ErrorKind::Malformed => "malformed",
            ErrorKind::CrcMismatch => "crc_mismatch",
            ErrorKind::MissingCrc => "missing_crc",
            ErrorKind::MissingField => "missing_field",
            ErrorKind::BadValue => "bad_value",
            ErrorKind::BadTimestamp => "bad_timestamp",
            ErrorKind::BadMeterId => "bad_meter_id",
            ErrorKind::TooManyDevices => "too_many_devices",
            ErrorKind::UnknownMeter => "unknown_meter",
            ErrorKind::RegisterWentBackwards => "register_went_backwards",
            ErrorKind::TimestampInFuture => "timestamp_in_future",
            ErrorKind::OutOfOrder => "out_of_order",
            ErrorKind::UnknownParticipant => "unknown_participant",
            ErrorKind::GateClosed => "gate_closed",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
