//! Shared helpers for the integration tests.
#![allow(dead_code, unreachable_pub)]

use chrono::{DateTime, Utc};

/// A fixture file's bytes.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// An RFC 3339 instant.
pub fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("test time")
        .with_timezone(&Utc)
}

/// The DSMR fixtures that carry a CRC.
pub const DSMR_WITH_CRC: [&str; 6] = [
    "dsmr_v4_2_kaifa.txt",
    "dsmr_v5_iskra_MT382.txt",
    "dsmr_be_fluvius_v1_7_1.txt",
    "dsmr_at_sagemcom_t210_d_r.txt",
    "dsmr_v5_eon_hungary.txt",
    "voltmesh_dsmr5_prosumer_summer.txt",
];

/// Every DSMR fixture.
pub const DSMR_ALL: [&str; 7] = [
    "dsmr_v2_2_iskra_MT382.txt",
    "dsmr_v4_2_kaifa.txt",
    "dsmr_v5_iskra_MT382.txt",
    "dsmr_be_fluvius_v1_7_1.txt",
    "dsmr_at_sagemcom_t210_d_r.txt",
    "dsmr_v5_eon_hungary.txt",
    "voltmesh_dsmr5_prosumer_summer.txt",
];
