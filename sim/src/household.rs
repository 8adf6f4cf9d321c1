//! Household agents: a load profile, PV if the grid (or the scenario) gives one, and optionally a
//! battery, with a seeded bidding strategy.
//!
//! # Battery strategy (price-responsive)
//! Each interval the battery looks at the household's own balance and at the interval's clearing
//! price (the last one if nothing cleared). A surplus charges the battery unless the price is above
//! the midpoint of feed-in and retail (then the surplus is worth more sold to neighbours); a
//! deficit is covered from the battery unless the price is below that midpoint (then neighbours'
//! energy is cheap and the charge is kept for dearer hours). Power is limited to `battery_kw`, the state of charge to
//! 0..=capacity, with 95 % efficiency each way. The no-market baseline uses the same battery
//! without the price signal (plain self-consumption).
//!
//! # Bidding strategy (seeded)
//! A household offers its forecast net export: the previous interval's metered net energy
//! (persistence forecast), after its battery. Sellers ask `feed_in + a·spread`, buyers bid
//! `retail − fee − b·spread`, where `spread = retail − fee − feed_in` and `a, b` are drawn once
//! per household from U(0.05, 0.5) with the run's seed, plus a per-interval jitter of ±0.05 of
//! the spread from the same generator. Limits are rounded to whole micro-units.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use voltmesh_engine::{Order, OrderId, ParticipantId, Price, Side};

use crate::flex::FlexLoad;
use crate::record::round_i64;
use crate::scenario::Scenario;

/// Battery parameters and state.
#[derive(Debug, Clone, PartialEq)]
pub struct Battery {
    /// Capacity, Wh.
    pub capacity_wh: f64,
    /// Power limit per interval, Wh.
    pub max_step_wh: f64,
    /// State of charge, Wh.
    pub soc_wh: f64,
}

const EFFICIENCY: f64 = 0.95;

impl Battery {
    /// Charges with up to `surplus_wh`; returns the energy taken from the household.
    pub fn charge(&mut self, surplus_wh: f64) -> f64 {
        let room = (self.capacity_wh - self.soc_wh) / EFFICIENCY;
        let taken = surplus_wh.min(self.max_step_wh).min(room).max(0.0);
        self.soc_wh = (self.soc_wh + taken * EFFICIENCY).min(self.capacity_wh);
        taken
    }

    /// Discharges to cover up to `deficit_wh`; returns the energy delivered to the household.
    pub fn discharge(&mut self, deficit_wh: f64) -> f64 {
        let available = self.soc_wh * EFFICIENCY;
        let given = deficit_wh.min(self.max_step_wh).min(available).max(0.0);
        self.soc_wh = (self.soc_wh - given / EFFICIENCY).max(0.0);
        given
    }
}

/// One household (or business) agent.
#[derive(Debug, Clone)]
pub struct Household {
    /// Participant id: the load's id in Load.csv.
    pub id: ParticipantId,
    /// Index of the load in the grid.
    pub load: usize,
    /// Its bus.
    pub bus: usize,
    /// PV systems: (RES profile column, peak MW). Grid PV first, then a scenario one.
    pub pv: Vec<(usize, f64)>,
    /// Battery under the market strategy.
    pub battery: Option<Battery>,
    /// The same battery under the baseline (self-consumption) strategy.
    pub baseline_battery: Option<Battery>,
    /// Ask markup in units of the spread.
    pub ask_markup: f64,
    /// Bid markdown in units of the spread.
    pub bid_markdown: f64,
    /// Last metered net export, Wh (the persistence forecast for the next order).
    pub last_net_wh: i64,
    /// Its flexible load, if it has one ([`crate::flex`]).
    pub flex: Option<FlexLoad>,
}

/// One interval's physical outcome for a household.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Dispatch {
    /// Net export after the battery, Wh (negative: import).
    pub net_wh: f64,
    /// Energy into the battery, Wh.
    pub charged_wh: f64,
    /// Energy out of the battery, Wh.
    pub discharged_wh: f64,
}

impl Household {
    /// Runs the battery for one interval: `own_wh` is PV minus load, `price_signal` says whether
    /// the previous clearing price was high (`Some(true)`), low (`Some(false)`) or is ignored
    /// (`None`, the baseline). Uses the baseline battery when `baseline` is set.
    pub fn dispatch(
        &mut self,
        own_wh: f64,
        price_signal: Option<bool>,
        baseline: bool,
    ) -> Dispatch {
        let battery = if baseline {
            self.baseline_battery.as_mut()
        } else {
            self.battery.as_mut()
        };
        let Some(battery) = battery else {
            return Dispatch {
                net_wh: own_wh,
                ..Dispatch::default()
            };
        };
        if own_wh > 0.0 && price_signal != Some(true) {
            let c = battery.charge(own_wh);
            Dispatch {
                net_wh: own_wh - c,
                charged_wh: c,
                discharged_wh: 0.0,
            }
        } else if own_wh < 0.0 && price_signal != Some(false) {
            let d = battery.discharge(-own_wh);
            Dispatch {
                net_wh: own_wh + d,
                charged_wh: 0.0,
                discharged_wh: d,
            }
        } else {
            Dispatch {
                net_wh: own_wh,
                ..Dispatch::default()
            }
        }
    }

    /// The order for the coming interval from the persistence forecast (none if it is zero),
    /// with id `id`: a run gives each household one id for good ([`Household::order_id`]),
    /// as a book holds one interval with at most one order per household.
    pub fn order(
        &self,
        id: &OrderId,
        scenario: &Scenario,
        rng: &mut ChaCha8Rng,
        seq: u64,
    ) -> Option<Order> {
        let forecast = self.last_net_wh;
        let jitter: f64 = rng.gen_range(-0.05..=0.05);
        self.order_for(id, scenario, forecast, jitter, seq)
    }

    /// The id of this household's orders: its participant id (unique within an interval,
    /// which is all the engine asks of an order id). Built once per run and cloned per order,
    /// so an interval allocates no id.
    pub fn order_id(&self) -> OrderId {
        OrderId::from(self.id.as_str())
    }

    /// The order for a net export of `forecast` Wh with limit jitter `jitter` (none if zero).
    pub fn order_for(
        &self,
        id: &OrderId,
        scenario: &Scenario,
        forecast: i64,
        jitter: f64,
        seq: u64,
    ) -> Option<Order> {
        if forecast == 0 {
            return None;
        }
        let feed_in = scenario.feed_in.micros();
        let ceiling = (scenario.retail.micros() - scenario.network_fee.micros()).max(feed_in);
        let spread = (ceiling - feed_in) as f64;
        let (side, micros) = if forecast > 0 {
            let a = (self.ask_markup + jitter).clamp(0.0, 1.0);
            (Side::Sell, feed_in + round_i64(a * spread))
        } else {
            let b = (self.bid_markdown + jitter).clamp(0.0, 1.0);
            (Side::Buy, ceiling - round_i64(b * spread))
        };
        let limit_price = Price::from_micros(micros.clamp(feed_in, ceiling)).ok()?;
        Some(Order {
            id: id.clone(),
            participant: self.id.clone(),
            side,
            quantity_wh: forecast.unsigned_abs(),
            limit_price,
            seq,
        })
    }
}

/// Draws a household's markups.
pub(crate) fn markups(rng: &mut ChaCha8Rng) -> (f64, f64) {
    (rng.gen_range(0.05..0.5), rng.gen_range(0.05..0.5))
}
