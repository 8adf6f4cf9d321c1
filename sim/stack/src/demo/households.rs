//! The demo's households: the first `count` loads of the grid, each with its meter and its limit
//! prices, and the bridge configuration that serves them.
//!
//! # More households than the grid has loads
//! A neighborhood larger than the grid (the scale bench's 1,000 and 10,000 households) plays the
//! grid's loads again, round after round: household `n` plays load `n mod loads`, with PV,
//! battery and limit prices drawn afresh for it from the same seeded stream. The first round is
//! exactly the households of a neighborhood no larger than the grid.
//!
//! # Limit prices
//! The simulation's seeded bidding strategy ([`voltmesh_sim::household`]) without its per-interval
//! jitter (the bridge keeps one pair of limits per household): sellers ask
//! `feed_in + a·spread`, buyers bid `retail − fee − b·spread`, with `spread = retail − fee −
//! feed_in` and `a, b` drawn per household from the seed ([`voltmesh_sim::run::households`]).

use chrono::{DateTime, TimeDelta, Utc};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use voltmesh_engine::{ParticipantId, Price};
use voltmesh_meter_bridge::testing::{BridgeToml, BrokerSection, HouseholdEntry};

use super::broker::BrokerAddr;
use super::neighborhood::Prices;
use super::DemoError;
use crate::meters::fleet::{build_meters, household_steps, SimMeter};
use voltmesh_sim::scenario::Scenario;
use voltmesh_sim::simbench::Grid;

/// One household of the demo.
#[derive(Debug, Clone)]
pub struct DemoHousehold {
    /// Its pseudonym in genesis (`hh-01`, ...).
    pub participant: ParticipantId,
    /// The grid's load it plays.
    pub load: String,
    /// PV peak, kW (0 without PV).
    pub pv_kwp: f64,
    /// The most it pays per kWh.
    pub buy_limit: Price,
    /// The least it takes per kWh.
    pub sell_limit: Price,
    /// Its meter.
    pub meter: SimMeter,
}

/// What the households play.
#[derive(Debug, Clone, Copy)]
pub struct Playback {
    /// First profile step.
    pub first_step: usize,
    /// Profile steps to prepare (the last one repeats after that).
    pub steps: usize,
    /// Real time at which the first step starts.
    pub origin: DateTime<Utc>,
    /// Real time per profile step.
    pub step: TimeDelta,
    /// PV scale.
    pub pv_scale: f64,
}

/// Most households a demo neighborhood may have.
pub const MAX_HOUSEHOLDS: usize = 20_000;

/// `count` households of `grid` for `seed` (module docs: beyond the grid's loads, the loads
/// repeat).
///
/// # Errors
/// [`DemoError::Options`] if `count` is 0 or above [`MAX_HOUSEHOLDS`], the grid has no loads,
/// or the window is outside the profiles.
pub fn build(
    grid: &Grid,
    count: usize,
    seed: u64,
    prices: Prices,
    playback: Playback,
) -> Result<Vec<DemoHousehold>, DemoError> {
    check_count(grid, count)?;
    if playback.first_step + playback.steps > grid.intervals() {
        return Err(DemoError::Options(format!(
            "the profiles have {} steps; {} from step {} do not fit",
            grid.intervals(),
            playback.steps,
            playback.first_step
        )));
    }
    let scenario = Scenario {
        seed,
        retail: prices.retail,
        feed_in: prices.feed_in,
        network_fee: prices.network_fee,
        pv_scale: playback.pv_scale,
        ..Scenario::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut homes = Vec::with_capacity(count);
    while homes.len() < count {
        homes.extend(voltmesh_sim::run::households(grid, &scenario, &mut rng));
    }
    homes.truncate(count);
    let meters = build_meters(&homes, playback.origin, playback.step, |home| {
        household_steps(
            grid,
            home,
            playback.first_step,
            playback.steps,
            playback.pv_scale,
        )
    });
    let feed_in = prices.feed_in.micros();
    let ceiling = (prices.retail.micros() - prices.network_fee.micros()).max(feed_in);
    let spread = (ceiling - feed_in) as f64;
    let price = |micros: i64| Price::from_micros(micros.clamp(feed_in, ceiling)).ok();
    homes
        .iter()
        .zip(meters)
        .enumerate()
        .map(|(n, (home, mut meter))| {
            let participant = ParticipantId::from(format!("hh-{:02}", n + 1));
            meter.participant = participant.clone();
            let sell = price(feed_in + (home.ask_markup * spread).round() as i64);
            let buy = price(ceiling - (home.bid_markdown * spread).round() as i64);
            let (Some(sell_limit), Some(buy_limit)) = (sell, buy) else {
                return Err(DemoError::Options("tariffs out of range".into()));
            };
            Ok(DemoHousehold {
                participant,
                load: grid.loads[home.load].id.clone(),
                pv_kwp: home
                    .pv
                    .iter()
                    .map(|p| p.1 * 1000.0 * playback.pv_scale)
                    .sum(),
                buy_limit,
                sell_limit,
                meter,
            })
        })
        .collect()
}

/// Checks a household count against [`MAX_HOUSEHOLDS`] and the grid.
///
/// # Errors
/// [`DemoError::Options`] saying what is wrong.
pub fn check_count(grid: &Grid, count: usize) -> Result<(), DemoError> {
    if grid.loads.is_empty() {
        return Err(DemoError::Options(format!("{} has no loads", grid.name)));
    }
    if count == 0 || count > MAX_HOUSEHOLDS {
        return Err(DemoError::Options(format!(
            "--households must be 1..={MAX_HOUSEHOLDS} (beyond the {} loads of {}, the loads play again)",
            grid.loads.len(),
            grid.name
        )));
    }
    Ok(())
}

/// The bridge's `bridge.toml` for the demo: the broker, node 0's API, the bridge key, the
/// genesis file (where the bridge reads the market's intervals and tariffs), how long before
/// each gate it submits (`submit_lead_secs`, the bridge's default when `None`) and one
/// `[[household]]` per household; every other key at the bridge's default (callers may set
/// more on the returned builder).
pub fn bridge_toml(
    broker: &BrokerAddr,
    api: &str,
    neighborhood: &str,
    key_file: &std::path::Path,
    genesis_file: &std::path::Path,
    homes: &[DemoHousehold],
    submit_lead_secs: Option<u32>,
) -> BridgeToml {
    let mut toml = BridgeToml::new(
        BrokerSection::new(broker.port, "voltmesh-demo-bridge")
            .host(&broker.host)
            .reconnect_ms(100, 2000),
    )
    .subscribe("dsmr/+", "dsmr")
    .subscribe("tele/+/SENSOR", "tasmota")
    .subscribe("+/events/rpc", "shelly_gen2")
    .node(
        &format!("http://{api}"),
        neighborhood,
        &key_file.display().to_string(),
    )
    .genesis(&genesis_file.display().to_string());
    if let Some(secs) = submit_lead_secs {
        toml = toml.submit_lead_secs(secs);
    }
    for h in homes {
        toml = toml.household(HouseholdEntry::new(
            h.participant.as_str(),
            &h.meter.device,
            &h.buy_limit.to_string(),
            &h.sell_limit.to_string(),
        ));
    }
    toml
}

#[cfg(test)]
mod tests {
    use super::*;
    use voltmesh_engine::IntervalSpec;

    fn prices() -> Prices {
        Prices {
            feed_in: "0.08".parse().unwrap(),
            retail: "0.30".parse().unwrap(),
            network_fee: "0.02".parse().unwrap(),
        }
    }

    #[test]
    fn households_have_limits_inside_the_tariffs_and_a_valid_bridge_config() {
        let grid = Grid::read(&voltmesh_sim::data::demo_grid_dir()).unwrap();
        let playback = Playback {
            first_step: 16_000,
            steps: 8,
            origin: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            step: TimeDelta::seconds(10),
            pv_scale: 1.0,
        };
        let homes = build(&grid, 13, 7, prices(), playback).unwrap();
        assert_eq!(homes.len(), 13);
        assert!(homes.iter().filter(|h| h.pv_kwp > 0.0).count() >= 2);
        for h in &homes {
            assert!(h.sell_limit >= prices().feed_in && h.buy_limit <= prices().retail);
        }
        let again = build(&grid, 13, 7, prices(), playback).unwrap();
        assert_eq!(
            homes
                .iter()
                .map(|h| (h.buy_limit, h.sell_limit))
                .collect::<Vec<_>>(),
            again
                .iter()
                .map(|h| (h.buy_limit, h.sell_limit))
                .collect::<Vec<_>>(),
            "same seed, same limits"
        );
        let broker = BrokerAddr {
            host: "127.0.0.1".into(),
            port: 1883,
        };
        let dir = tempfile::tempdir().unwrap();
        let participants: Vec<ParticipantId> =
            homes.iter().map(|h| h.participant.clone()).collect();
        let hood = super::super::neighborhood::write(
            dir.path(),
            1,
            &participants,
            super::super::neighborhood::Market {
                mechanism: voltmesh_engine::Mechanism::Uniform {
                    k: voltmesh_engine::K::HALF,
                },
                prices: prices(),
                interval_secs: 10,
            },
        )
        .unwrap();
        let text = bridge_toml(
            &broker,
            "127.0.0.1:7600",
            &hood.genesis.neighborhood,
            std::path::Path::new("/tmp/bridge.key"),
            &dir.path().join("genesis.json"),
            &homes,
            None,
        )
        .to_string();
        let config = voltmesh_meter_bridge::config::Config::from_toml(&text).unwrap();
        assert_eq!(config.registry.households().count(), 13);
        assert_eq!(config.settlement.retail, prices().retail);
        assert_eq!(config.market, IntervalSpec::new(10, 3).unwrap());
        assert!(build(&grid, 0, 7, prices(), playback).is_err());
        assert!(build(&grid, MAX_HOUSEHOLDS + 1, 7, prices(), playback).is_err());
        // Beyond the grid's loads, the loads play again with households of their own; the
        // first round is the small neighborhood's.
        let many = build(&grid, 40, 7, prices(), playback).unwrap();
        assert_eq!(many.len(), 40);
        assert_eq!(many[13].load, many[0].load, "load 0 plays again");
        assert_eq!(
            many[..13]
                .iter()
                .map(|h| (h.buy_limit, h.sell_limit))
                .collect::<Vec<_>>(),
            homes
                .iter()
                .map(|h| (h.buy_limit, h.sell_limit))
                .collect::<Vec<_>>()
        );
        let devices: std::collections::BTreeSet<&str> =
            many.iter().map(|h| h.meter.device.as_str()).collect();
        assert_eq!(devices.len(), 40, "every meter has its own id");
        assert!(
            many[13..]
                .iter()
                .zip(&many[..27])
                .any(|(a, b)| (a.buy_limit, a.sell_limit) != (b.buy_limit, b.sell_limit)),
            "repeated loads draw their own limits"
        );
    }
}
