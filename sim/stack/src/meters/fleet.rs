//! The neighborhood's meters: one per household, each speaking one format, and the task that
//! publishes them over MQTT.
//!
//! Households are given formats in turn ([`MeterFormat::ALL`]), so a neighborhood of three or more
//! exercises every decoder. Device ids look like the real thing: a DSMR equipment number, a
//! Tasmota device name, a Shelly `src` with a MAC-like suffix.
//!
//! # Publishing
//! [`publish`] samples every meter at each multiple of `period` since the Unix epoch (whole
//! seconds, which is what DSMR and Tasmota timestamps can show) and publishes the payloads at QoS 1,
//! not retained, in meter order. A sample is taken at the instant it is stamped with, so the bridge
//! sees what a real meter would have measured.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rumqttc::{AsyncClient, QoS};
use tracing::{debug, warn};
use voltmesh_engine::ParticipantId;

use super::profile::{ProfileMeter, StepEnergy};
use super::MeterFormat;
use voltmesh_sim::household::Household;
use voltmesh_sim::simbench::Grid;

/// One simulated meter.
#[derive(Debug, Clone)]
pub struct SimMeter {
    /// The household it belongs to.
    pub participant: ParticipantId,
    /// Its payload format.
    pub format: MeterFormat,
    /// Its device id (what the bridge reads as the meter id).
    pub device: String,
    /// What it measures.
    pub profile: ProfileMeter,
}

/// The device id of the `n`-th meter (0-based) in `format`.
pub fn device_id(format: MeterFormat, n: usize) -> String {
    match format {
        MeterFormat::Dsmr => format!("E00460031{:08}", 1000 + n),
        MeterFormat::Tasmota => format!("sml-{:02}", n + 1),
        MeterFormat::ShellyPro3Em => format!("shellypro3em-a0b765{:06x}", 0x3e_0000 + n),
    }
}

/// Watt-hours in one 15-minute profile step of one MW.
const WH_PER_MW_STEP: f64 = 1e6 * 0.25;

/// `home`'s net export in steps `start..start + count` of `grid`'s profiles (PV scaled by
/// `pv_scale`), as step energies.
pub fn household_steps(
    grid: &Grid,
    home: &Household,
    start: usize,
    count: usize,
    pv_scale: f64,
) -> Vec<StepEnergy> {
    let load = &grid.loads[home.load];
    let at = |column: &[f64], step: usize| column.get(step).copied().unwrap_or(0.0);
    (start..start + count)
        .map(|step| {
            let load_wh =
                load.p_mw * at(grid.load_profiles.column(load.p_column), step) * WH_PER_MW_STEP;
            let pv_wh: f64 = home
                .pv
                .iter()
                .map(|&(c, mw)| mw * pv_scale * at(grid.res_profiles.column(c), step))
                .sum::<f64>()
                * WH_PER_MW_STEP;
            StepEnergy::from_net_wh(pv_wh - load_wh)
        })
        .collect()
}

/// One meter per household, formats in turn, playing `steps_of(home)` from `origin` with
/// `step` of real time per profile step. Starting registers differ per meter (older meters have
/// counted more), deterministically.
pub fn build_meters(
    homes: &[Household],
    origin: DateTime<Utc>,
    step: TimeDelta,
    mut steps_of: impl FnMut(&Household) -> Vec<StepEnergy>,
) -> Vec<SimMeter> {
    homes
        .iter()
        .enumerate()
        .map(|(n, home)| {
            let format = MeterFormat::ALL[n % MeterFormat::ALL.len()];
            let n64 = n as u64;
            let base = (
                1_250_000 + n64 * 731_117 % 9_000_000,
                n64 * 211_303 % 4_000_000,
            );
            SimMeter {
                participant: home.id.clone(),
                format,
                device: device_id(format, n),
                profile: ProfileMeter::new(origin, step, base, steps_of(home)),
            }
        })
        .collect()
}

/// The first multiple of `period` since the epoch at or after `t`.
fn next_tick(t: DateTime<Utc>, period_ms: i64) -> DateTime<Utc> {
    let ms = t.timestamp_millis();
    let tick = (ms + period_ms - 1).div_euclid(period_ms) * period_ms;
    DateTime::from_timestamp_millis(tick).unwrap_or(t)
}

fn now() -> DateTime<Utc> {
    DateTime::<Utc>::from(std::time::SystemTime::now())
}

/// Publishes every meter's payloads through `client` every `period` (module docs) until
/// `shutdown` completes or the client's request queue is closed. Returns the number of messages
/// handed to the client. The client's event loop must be polled elsewhere.
pub async fn publish(
    meters: &[SimMeter],
    client: &AsyncClient,
    period: Duration,
    shutdown: impl Future<Output = ()>,
) -> u64 {
    let period_ms = i64::try_from(period.as_millis()).unwrap_or(1000).max(1000);
    let mut sent = 0u64;
    tokio::pin!(shutdown);
    let mut tick = next_tick(now(), period_ms);
    loop {
        let wait = (tick - now()).to_std().unwrap_or(Duration::ZERO);
        tokio::select! {
            biased;
            () = &mut shutdown => return sent,
            () = tokio::time::sleep(wait) => {}
        }
        for meter in meters {
            let sample = meter.profile.sample(tick);
            for payload in meter.format.encode(&meter.device, &sample) {
                let published = tokio::select! {
                    biased;
                    () = &mut shutdown => return sent,
                    r = client.publish(payload.topic, QoS::AtLeastOnce, false, payload.bytes) => r,
                };
                if let Err(e) = published {
                    warn!(cause = %e, "meter publisher stopped: MQTT client closed");
                    return sent;
                }
                sent += 1;
            }
        }
        debug!(at = %tick, meters = meters.len(), "meters published");
        // Skip ticks that have already passed (a stalled machine), never stamp in the past.
        tick = next_tick(
            now().max(tick + TimeDelta::milliseconds(period_ms)),
            period_ms,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_whole_periods() {
        let t = DateTime::from_timestamp_millis(1_000_001_500).unwrap();
        assert_eq!(next_tick(t, 1000).timestamp_millis(), 1_000_002_000);
        assert_eq!(next_tick(t, 2000).timestamp_millis(), 1_000_002_000);
        let exact = DateTime::from_timestamp_millis(1_000_002_000).unwrap();
        assert_eq!(next_tick(exact, 1000), exact);
    }

    #[test]
    fn device_ids_are_valid_and_distinct() {
        let mut ids: Vec<String> = (0..30)
            .flat_map(|n| MeterFormat::ALL.map(|f| device_id(f, n)))
            .collect();
        for id in &ids {
            voltmesh_meter_bridge::MeterId::new(id).unwrap();
        }
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 90);
    }
}
