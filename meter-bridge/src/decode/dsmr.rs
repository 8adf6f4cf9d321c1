//! DSMR P1 telegrams: Dutch DSMR 2.2/4/5, Belgian e-MUCS (Fluvius), the Austrian Sagemcom
//! T210-D-r plaintext and the E.ON Hungary variant.
//!
//! # Telegram
//!
//! ```text
//! /XXXZ Identification     header
//!                          (empty line)
//! 0-0:1.0.0(221006155014S) one COSEM object per line: OBIS(value)...
//! 1-0:1.8.1(001581.123*kWh)
//! !6796                    end marker and CRC (DSMR 4+; absent in 2.2)
//! ```
//!
//! The CRC is CRC-16/ARC (reflected polynomial 0xA001, initial value 0) over every byte from `/`
//! through `!`, printed as four hex digits. It is checked whenever present, and required when
//! the telegram declares DSMR 4 or later (`1-3:0.2.8` ≥ 40) or is Belgian (`0-0:96.1.4`).
//!
//! # What is read
//!
//! * Import: `1-0:1.8.0` when present (Austria, Hungary), otherwise the sum of the tariff
//!   registers `1-0:1.8.1`, `1-0:1.8.2`, … Export likewise from `1-0:2.8.x`. Both are required.
//! * Power: `1-0:1.7.0` (import, required) minus `1-0:2.7.0` (export, 0 when absent).
//! * Units `kWh`/`Wh` and `kW`/`W`, converted exactly with integer arithmetic.
//! * Timestamp: `0-0:1.0.0` `YYMMDDhhmmssX`, with `X` = `S` (summer, UTC+2) or `W` (winter,
//!   UTC+1); every DSMR country so far is on Central European Time. DSMR 2.2 has no timestamp,
//!   so the caller's receive time is used.
//! * Meter id: the electricity meter's equipment id `0-0:96.1.1` (hex-encoded ASCII, decoded
//!   when it decodes to printable text), else `0-0:96.1.0`, else the logical device name
//!   `0-0:42.0.0`, else the header's identification. All-zero placeholders are skipped.
//!
//! Other objects (gas, water, voltages, events) are ignored; the objects above must each appear
//! at most once.
//!
//! # Performance
//! One pass over the lines with byte-prefix matches; no regex, no allocation except the meter
//! id. See the `decode` bench.

use chrono::{DateTime, NaiveDate, Utc};
use crc::{Crc, Table, CRC_16_ARC};

use crate::decode::decimal::{parse_power, parse_register, NumberError};
use crate::decode::local_time::{shift, LocalTimeError};
use crate::reading::snippet;
use crate::reading::{check_size, MeterId, PayloadTooLarge, Reading};

const CRC16: Crc<u16, Table<16>> = Crc::<u16, Table<16>>::new(&CRC_16_ARC);

/// Standard (winter) offset of every DSMR meter, minutes east of UTC.
const STANDARD_OFFSET_MINUTES: i32 = 60;

/// Why a DSMR telegram was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DsmrError {
    /// Larger than [`MAX_PAYLOAD_BYTES`](crate::MAX_PAYLOAD_BYTES).
    #[error(transparent)]
    TooLarge(#[from] PayloadTooLarge),
    /// Does not start with `/`.
    #[error("telegram does not start with '/'")]
    NoStart,
    /// No `!` end marker.
    #[error("telegram has no '!' end marker")]
    NoEnd,
    /// The header line is empty, too long or not printable ASCII.
    #[error("bad header line {0:?}")]
    BadHeader(String),
    /// Something other than four hex digits and a line end follows `!`.
    #[error("bad CRC field {0:?} after '!'")]
    BadCrcField(String),
    /// The telegram declares DSMR 4+ but carries no CRC.
    #[error("telegram declares a version that requires a CRC but has none")]
    MissingCrc,
    /// The CRC does not match the contents.
    #[error("CRC mismatch: telegram says {stated:04X}, contents give {computed:04X}")]
    CrcMismatch {
        /// The CRC printed in the telegram.
        stated: u16,
        /// The CRC of the received bytes.
        computed: u16,
    },
    /// A line we read is not `OBIS(value)`.
    #[error("malformed object {obis}: {line:?}")]
    Malformed {
        /// The OBIS code.
        obis: &'static str,
        /// The line, truncated.
        line: String,
    },
    /// A number did not parse.
    #[error("bad number in {obis}: {cause}")]
    BadNumber {
        /// The OBIS code.
        obis: &'static str,
        /// Why.
        cause: NumberError,
    },
    /// A value carries a unit we do not expect for its object.
    #[error("unexpected unit {unit:?} for {obis}")]
    BadUnit {
        /// The OBIS code.
        obis: &'static str,
        /// The unit as printed, truncated.
        unit: String,
    },
    /// An object we read appears twice.
    #[error("object {0} appears more than once")]
    Duplicate(&'static str),
    /// A required object is missing.
    #[error("required object {0} is missing")]
    Missing(&'static str),
    /// The timestamp is not `YYMMDDhhmmss[SW]` or not a valid time.
    #[error("bad timestamp {0:?}")]
    BadTimestamp(String),
    /// A register sum overflowed.
    #[error("register sum overflows")]
    Overflow,
    /// No usable meter id.
    #[error("no usable meter id: {0}")]
    BadMeterId(String),
}

/// The objects of one telegram that make a reading.
#[derive(Default)]
struct Objects<'a> {
    version: Option<&'a [u8]>,
    belgian: bool,
    timestamp: Option<&'a [u8]>,
    equipment_id: Option<&'a [u8]>,
    equipment_id_alt: Option<&'a [u8]>,
    device_name: Option<&'a [u8]>,
    import: Register,
    export: Register,
    power_import: Option<i64>,
    power_export: Option<i64>,
}

/// A total register (`x.8.0`) and its tariff registers (`x.8.1`…`x.8.9`).
#[derive(Default)]
struct Register {
    total: Option<u64>,
    tariff_sum: u64,
    tariffs_seen: u16,
}

impl Register {
    fn value(&self) -> Option<u64> {
        self.total
            .or((self.tariffs_seen != 0).then_some(self.tariff_sum))
    }
}

/// Decodes one P1 telegram.
///
/// `receive_time` is used as the reading's timestamp only when the telegram has none (DSMR 2.2).
///
/// # Errors
/// [`DsmrError`] for anything that is not a complete, intact telegram with the objects listed in
/// the module docs.
pub fn decode(bytes: &[u8], receive_time: DateTime<Utc>) -> Result<Reading, DsmrError> {
    check_size(bytes)?;
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .ok_or(DsmrError::NoStart)?;
    let telegram = &bytes[start..];
    if telegram.first() != Some(&b'/') {
        return Err(DsmrError::NoStart);
    }
    let bang = memchr::memchr(b'!', telegram).ok_or(DsmrError::NoEnd)?;
    let crc = parse_crc_field(&telegram[bang + 1..])?;
    let covered = &telegram[..=bang];
    // Integrity first: a corrupted telegram must report the corruption, not whatever the
    // corrupted line happens to look like.
    if let Some(stated) = crc {
        let computed = CRC16.checksum(covered);
        if stated != computed {
            return Err(DsmrError::CrcMismatch { stated, computed });
        }
    }

    let body = &covered[..bang];
    let header_end = memchr::memchr(b'\n', body).unwrap_or(body.len());
    let header = trim_cr(&body[..header_end]);
    let header_text = &header[1..];
    if header_text.is_empty()
        || header_text.len() > MeterId::MAX_LEN
        || !header_text
            .iter()
            .all(|b| b.is_ascii_graphic() || *b == b' ')
    {
        return Err(DsmrError::BadHeader(snippet(header)));
    }

    let mut objects = Objects::default();
    let mut line_start = header_end + 1;
    for line_end in memchr::memchr_iter(b'\n', body).skip(1).chain([body.len()]) {
        if let Some(line) = body.get(line_start..line_end) {
            read_line(trim_cr(line), &mut objects)?;
        }
        line_start = line_end + 1;
    }

    let requires_crc = objects.belgian
        || objects
            .version
            .and_then(|v| crate::decode::decimal::parse_register(v, 0).ok())
            .is_some_and(|v| v >= 40);
    if crc.is_none() && requires_crc {
        return Err(DsmrError::MissingCrc);
    }

    let import_wh = objects
        .import
        .value()
        .ok_or(DsmrError::Missing("1-0:1.8.x"))?;
    let export_wh = objects
        .export
        .value()
        .ok_or(DsmrError::Missing("1-0:2.8.x"))?;
    let power_import = objects
        .power_import
        .ok_or(DsmrError::Missing("1-0:1.7.0"))?;
    let power_w = power_import - objects.power_export.unwrap_or(0);
    let timestamp = match objects.timestamp {
        Some(text) => parse_timestamp(text)?,
        None => receive_time,
    };
    let meter = meter_id(&objects, header_text)?;
    Ok(Reading {
        meter,
        timestamp,
        import_wh,
        export_wh,
        power_w,
    })
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// `None` when nothing but a line end follows `!`, the CRC when four hex digits do.
fn parse_crc_field(after: &[u8]) -> Result<Option<u16>, DsmrError> {
    let end = after
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(after.len());
    let (field, rest) = after.split_at(end);
    if !rest.iter().all(u8::is_ascii_whitespace) {
        return Err(DsmrError::BadCrcField(snippet(after)));
    }
    match field.len() {
        0 => Ok(None),
        4 => {
            let mut value = 0u16;
            for &b in field {
                let digit = char::from(b)
                    .to_digit(16)
                    .ok_or_else(|| DsmrError::BadCrcField(snippet(field)))?;
                value = value << 4 | digit as u16;
            }
            Ok(Some(value))
        }
        _ => Err(DsmrError::BadCrcField(snippet(field))),
    }
}

/// The value of a one-value object line `OBIS(value)`.
fn single_value<'a>(line: &'a [u8], obis: &'static str) -> Result<&'a [u8], DsmrError> {
    // Every OBIS code we read is matched as a prefix of the line, so this slice is in bounds;
    // `get` keeps it panic-free regardless.
    let rest = line.get(obis.len()..).unwrap_or_default();
    rest.strip_prefix(b"(")
        .and_then(|r| r.strip_suffix(b")"))
        .filter(|v| !v.iter().any(|&b| b == b'(' || b == b')'))
        .ok_or_else(|| DsmrError::Malformed {
            obis,
            line: snippet(line),
        })
}

/// `value*unit` split, the unit checked against the two accepted ones (`big` with 3 decimals to
/// the base unit, `base` with none).
fn value_with_unit<'a>(
    value: &'a [u8],
    obis: &'static str,
    big: &[u8],
    base: &[u8],
) -> Result<(&'a [u8], i32), DsmrError> {
    let star = value
        .iter()
        .position(|&b| b == b'*')
        .ok_or(DsmrError::BadUnit {
            obis,
            unit: String::new(),
        })?;
    let (number, unit) = (&value[..star], &value[star + 1..]);
    let scale = if unit == big {
        3
    } else if unit == base {
        0
    } else {
        return Err(DsmrError::BadUnit {
            obis,
            unit: snippet(unit),
        });
    };
    Ok((number, scale))
}

fn set_once<T>(slot: &mut Option<T>, value: T, obis: &'static str) -> Result<(), DsmrError> {
    if slot.is_some() {
        return Err(DsmrError::Duplicate(obis));
    }
    *slot = Some(value);
    Ok(())
}

const IMPORT_TOTAL: &str = "1-0:1.8.0";
const EXPORT_TOTAL: &str = "1-0:2.8.0";
const IMPORT_TARIFF: &str = "1-0:1.8.x";
const EXPORT_TARIFF: &str = "1-0:2.8.x";
const POWER_IMPORT: &str = "1-0:1.7.0";
const POWER_EXPORT: &str = "1-0:2.7.0";
const TIMESTAMP: &str = "0-0:1.0.0";
const EQUIPMENT_ID: &str = "0-0:96.1.1";
const EQUIPMENT_ID_ALT: &str = "0-0:96.1.0";
const DEVICE_NAME: &str = "0-0:42.0.0";
const VERSION: &str = "1-3:0.2.8";
const BELGIAN_VERSION: &str = "0-0:96.1.4";

fn read_line<'a>(line: &'a [u8], o: &mut Objects<'a>) -> Result<(), DsmrError> {
    // Dispatch on the 4-byte prefix: electricity objects are "1-0:", the rest "0-0:"/"1-3:".
    if line.len() < 9 {
        return Ok(());
    }
    match &line[..4] {
        b"1-0:" => electricity_line(line, o),
        b"0-0:" | b"1-3:" => other_line(line, o),
        _ => Ok(()),
    }
}

fn electricity_line<'a>(line: &'a [u8], o: &mut Objects<'a>) -> Result<(), DsmrError> {
    if let Some(rest) = line.strip_prefix(b"1-0:1.8.") {
        return register_line(line, rest, &mut o.import, IMPORT_TOTAL, IMPORT_TARIFF);
    }
    if let Some(rest) = line.strip_prefix(b"1-0:2.8.") {
        return register_line(line, rest, &mut o.export, EXPORT_TOTAL, EXPORT_TARIFF);
    }
    for (obis, import) in [(POWER_IMPORT, true), (POWER_EXPORT, false)] {
        if line.starts_with(obis.as_bytes()) && line.get(obis.len()) == Some(&b'(') {
            let value = single_value(line, obis)?;
            let (number, scale) = value_with_unit(value, obis, b"kW", b"W")?;
            let watts =
                parse_power(number, scale).map_err(|cause| DsmrError::BadNumber { obis, cause })?;
            if watts < 0 {
                return Err(DsmrError::BadNumber {
                    obis,
                    cause: NumberError::Negative,
                });
            }
            let slot = if import {
                &mut o.power_import
            } else {
                &mut o.power_export
            };
            return set_once(slot, watts, obis);
        }
    }
    Ok(())
}

fn other_line<'a>(line: &'a [u8], o: &mut Objects<'a>) -> Result<(), DsmrError> {
    for (obis, which) in [
        (TIMESTAMP, 0),
        (EQUIPMENT_ID, 1),
        (EQUIPMENT_ID_ALT, 2),
        (DEVICE_NAME, 3),
        (VERSION, 4),
        (BELGIAN_VERSION, 5),
    ] {
        if line.starts_with(obis.as_bytes()) && line.get(obis.len()) == Some(&b'(') {
            let value = single_value(line, obis)?;
            let slot = match which {
                0 => &mut o.timestamp,
                1 => &mut o.equipment_id,
                2 => &mut o.equipment_id_alt,
                3 => &mut o.device_name,
                4 => &mut o.version,
                _ => {
                    o.belgian = true;
                    return Ok(());
                }
            };
            return set_once(slot, value, obis);
        }
    }
    Ok(())
}

/// `1-0:x.8.T(value*unit)` with `rest` = `T(value*unit)`.
fn register_line(
    line: &[u8],
    rest: &[u8],
    register: &mut Register,
    total_obis: &'static str,
    tariff_obis: &'static str,
) -> Result<(), DsmrError> {
    let Some(open) = rest.iter().position(|&b| b == b'(') else {
        return Ok(());
    };
    let tariff = match &rest[..open] {
        [d] if d.is_ascii_digit() => d - b'0',
        // Not a plain energy register (e.g. 1.8.10 or a malformed code): not ours.
        _ => return Ok(()),
    };
    let obis = if tariff == 0 { total_obis } else { tariff_obis };
    // `obis` has the same length as the line's code (`1-0:x.8.T`, one tariff digit).
    let value = single_value(line, obis)?;
    let (number, scale) = value_with_unit(value, obis, b"kWh", b"Wh")?;
    let wh = parse_register(number, scale).map_err(|cause| DsmrError::BadNumber { obis, cause })?;
    if tariff == 0 {
        set_once(&mut register.total, wh, obis)
    } else {
        let bit = 1u16 << tariff;
        if register.tariffs_seen & bit != 0 {
            return Err(DsmrError::Duplicate(obis));
        }
        register.tariffs_seen |= bit;
        register.tariff_sum = register
            .tariff_sum
            .checked_add(wh)
            .ok_or(DsmrError::Overflow)?;
        Ok(())
    }
}

/// `YYMMDDhhmmssX` → UTC.
fn parse_timestamp(text: &[u8]) -> Result<DateTime<Utc>, DsmrError> {
    let bad = || DsmrError::BadTimestamp(snippet(text));
    let [digits @ .., flag] = text else {
        return Err(bad());
    };
    if digits.len() != 12 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let two = |i: usize| u32::from(digits[i] - b'0') * 10 + u32::from(digits[i + 1] - b'0');
    let offset = match flag {
        b'S' => STANDARD_OFFSET_MINUTES + 60,
        b'W' => STANDARD_OFFSET_MINUTES,
        _ => return Err(bad()),
    };
    let local = NaiveDate::from_ymd_opt(2000 + two(0) as i32, two(2), two(4))
        .and_then(|d| d.and_hms_opt(two(6), two(8), two(10)))
        .ok_or_else(bad)?;
    shift(local, offset).map_err(|_: LocalTimeError| bad())
}

fn meter_id(o: &Objects<'_>, header: &[u8]) -> Result<MeterId, DsmrError> {
    let candidates = [o.equipment_id, o.equipment_id_alt, o.device_name];
    for raw in candidates.into_iter().flatten() {
        if raw.is_empty() || raw.iter().all(|&b| b == b'0') {
            continue;
        }
        let text = hex_ascii(raw).unwrap_or_else(|| String::from_utf8_lossy(raw).into_owned());
        return MeterId::new(&text).map_err(|e| DsmrError::BadMeterId(e.to_string()));
    }
    // The header may contain spaces ("/XXX5 Ident"); ids may not.
    let text: String = header
        .iter()
        .map(|&b| if b == b' ' { '_' } else { char::from(b) })
        .collect();
    MeterId::new(&text).map_err(|e| DsmrError::BadMeterId(e.to_string()))
}

/// Hex-encoded printable ASCII decoded, or `None` if `raw` is not that.
fn hex_ascii(raw: &[u8]) -> Option<String> {
    if raw.len() % 2 != 0 {
        return None;
    }
    raw.chunks_exact(2)
        .map(|pair| {
            let hi = char::from(pair[0]).to_digit(16)?;
            let lo = char::from(pair[1]).to_digit(16)?;
            let byte = (hi << 4 | lo) as u8;
            byte.is_ascii_graphic().then_some(char::from(byte))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receive() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn telegram_with_crc(body: &str) -> String {
        let covered = format!("{body}!");
        format!("{covered}{:04X}\r\n", CRC16.checksum(covered.as_bytes()))
    }

    #[test]
    fn crc_is_crc16_arc() {
        assert_eq!(CRC16.checksum(b"123456789"), 0xBB3D);
    }

    #[test]
    fn minimal_telegram_decodes() {
        let t = telegram_with_crc(
            "/XMX5 test\r\n\r\n1-3:0.2.8(50)\r\n0-0:1.0.0(261122110000W)\r\n\
             0-0:96.1.1(4142)\r\n1-0:1.8.1(000001.500*kWh)\r\n1-0:1.8.2(000000.001*kWh)\r\n\
             1-0:2.8.1(000002.000*kWh)\r\n1-0:2.8.2(000000.000*kWh)\r\n\
             1-0:1.7.0(00.100*kW)\r\n1-0:2.7.0(00.350*kW)\r\n",
        );
        let r = decode(t.as_bytes(), receive()).unwrap();
        assert_eq!(r.meter.as_str(), "AB");
        assert_eq!(r.import_wh, 1501);
        assert_eq!(r.export_wh, 2000);
        assert_eq!(r.power_w, -250);
        assert_eq!(r.timestamp.to_rfc3339(), "2026-11-22T10:00:00+00:00");
    }

    #[test]
    fn version_5_without_crc_is_refused() {
        let t = "/XMX5 test\r\n\r\n1-3:0.2.8(50)\r\n1-0:1.8.0(1*Wh)\r\n1-0:2.8.0(1*Wh)\r\n\
                 1-0:1.7.0(1*W)\r\n!\r\n";
        assert_eq!(decode(t.as_bytes(), receive()), Err(DsmrError::MissingCrc));
    }

    #[test]
    fn structural_errors() {
        let ok_body = "/XMX5 test\r\n\r\n1-0:1.8.0(1*Wh)\r\n1-0:2.8.0(1*Wh)\r\n1-0:1.7.0(1*W)\r\n";
        assert!(decode(format!("{ok_body}!\r\n").as_bytes(), receive()).is_ok());
        assert_eq!(decode(b"", receive()), Err(DsmrError::NoStart));
        assert_eq!(decode(b"hello", receive()), Err(DsmrError::NoStart));
        assert_eq!(decode(ok_body.as_bytes(), receive()), Err(DsmrError::NoEnd));
        assert!(matches!(
            decode(format!("{ok_body}!12\r\n").as_bytes(), receive()),
            Err(DsmrError::BadCrcField(_))
        ));
        assert!(matches!(
            decode(format!("{ok_body}!ABCD junk").as_bytes(), receive()),
            Err(DsmrError::BadCrcField(_))
        ));
        let dup = format!("{ok_body}1-0:1.7.0(1*W)\r\n!\r\n");
        assert_eq!(
            decode(dup.as_bytes(), receive()),
            Err(DsmrError::Duplicate("1-0:1.7.0"))
        );
        let unit = ok_body.replace("1-0:2.8.0(1*Wh)", "1-0:2.8.0(1*m3)");
        assert!(matches!(
            decode(format!("{unit}!").as_bytes(), receive()),
            Err(DsmrError::BadUnit { .. })
        ));
        let missing = ok_body.replace("1-0:1.7.0(1*W)\r\n", "");
        assert_eq!(
            decode(format!("{missing}!").as_bytes(), receive()),
            Err(DsmrError::Missing("1-0:1.7.0"))
        );
        let big = vec![b'/'; crate::reading::MAX_PAYLOAD_BYTES + 1];
        assert!(matches!(
            decode(&big, receive()),
            Err(DsmrError::TooLarge(_))
        ));
    }

    #[test]
    fn timestamps_follow_the_summer_flag() {
        let utc = |s: &str| parse_timestamp(s.as_bytes()).map(|t| t.to_rfc3339());
        assert_eq!(
            utc("221006155014S"),
            Ok("2022-10-06T13:50:14+00:00".to_owned())
        );
        assert_eq!(
            utc("161113205757W"),
            Ok("2016-11-13T19:57:57+00:00".to_owned())
        );
        for bad in [
            "161113205757",
            "161113205757X",
            "161313205757W",
            "1611132057W",
            "16111320575aW",
        ] {
            assert!(utc(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn meter_ids_decode_hex_and_skip_placeholders() {
        assert_eq!(hex_ascii(b"4B384547").as_deref(), Some("K8EG"));
        assert_eq!(hex_ascii(b"0000"), None);
        assert_eq!(hex_ascii(b"4B3"), None);
        assert_eq!(hex_ascii(b"ZZ"), None);
    }
}
