//! Test helpers: polling, and provisioning types (the VictoriaMetrics harness is the crate's own
//! `testing` module, enabled for its tests through its dev-dependency on itself).
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

/// Polls `check` every 50 ms until it holds, for at most `secs` seconds.
pub async fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..secs * 20 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

pub mod provisioning;
