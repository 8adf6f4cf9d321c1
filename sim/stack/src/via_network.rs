//! `voltmesh sim --via-network`: the in-process simulation's own orders go through MQTT, the
//! meter bridge and the validators, and the trades the validators finalize must equal the
//! in-process run's, interval by interval.
//!
//! # The two paths
//! [`simulate`] runs the in-process simulation ([`voltmesh_sim::run::run_observed`]) over the window and
//! keeps every market interval's admitted orders and clearing outcome. Each order becomes a
//! [`PlannedOrder`] of the network household that plays the same load; the demo stack
//! ([`crate::demo`]) publishes it on the bridge's household-orders topic for the matching network
//! interval, the bridge signs and submits it, the validators clear and commit it. [`check`]
//! compares the committed outcome with the simulation's.
//!
//! # Participant mapping
//! The simulation names a household by its load id in `Load.csv` (`LV1.101 Load 1`, ...); genesis
//! names the network household that plays the `n`-th load (Load.csv order, from 1) `hh-NN`
//! ([`network_participant`]). Order ids differ between the paths (the bridge makes its own), so a
//! trade is compared as (buyer, seller, quantity, price) with both participants mapped to the
//! network names, as a sorted list: the same multiset of trades, whatever order they were
//! matched in.
//!
//! # Interval mapping
//! Network interval `i` (the `i`-th interval the demo shows) carries the simulation's interval `i`
//! of the compared window. The simulation starts one interval before the window: its households
//! forecast from the previous interval's metered energy, so that warm-up interval has no orders
//! and is not compared.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::NaiveDateTime;
use voltmesh_engine::{ClearingOutcome, Order, ParticipantId, Price, Side};
use voltmesh_wire::SignedOrder;

use voltmesh_sim::metrics_observer::{IntervalObserver, IntervalView};
use voltmesh_sim::run::{run_observed, SimError, Window};
use voltmesh_sim::scenario::Scenario;
use voltmesh_sim::simbench::Grid;

/// One market interval of the in-process run.
#[derive(Debug, Clone, PartialEq)]
pub struct SimInterval {
    /// Start in simulated time.
    pub start: NaiveDateTime,
    /// The admitted orders, in submission order.
    pub orders: Vec<Order>,
    /// The engine's outcome.
    pub outcome: ClearingOutcome,
}

/// One order a network household publishes for an interval (also how a committed order is
/// compared: order ids differ between the paths).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PlannedOrder {
    /// The network participant (`hh-NN`).
    pub participant: ParticipantId,
    /// Buy or sell.
    pub side: Side,
    /// Energy, Wh (positive).
    pub quantity_wh: u64,
    /// Limit price per kWh.
    pub limit_price: Price,
}

/// One trade as both paths can state it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TradeLine {
    /// Network name of the buyer.
    pub buyer: ParticipantId,
    /// Network name of the seller.
    pub seller: ParticipantId,
    /// Energy, Wh.
    pub quantity_wh: u64,
    /// Price per kWh.
    pub price: Price,
}

/// Why an interval failed the check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Difference {
    /// The network committed no clearing for an interval the simulation had orders in.
    #[error("missing: the nodes committed no clearing for {orders} simulated orders")]
    Missing {
        /// Orders the simulation had.
        orders: usize,
    },
    /// The clearing prices differ.
    #[error("price: simulation {}, nodes {}", show(*.sim), show(*.net))]
    Price {
        /// In process.
        sim: Option<Price>,
        /// Committed.
        net: Option<Price>,
    },
    /// The volumes differ.
    #[error("volume: simulation {sim} Wh, nodes {net} Wh")]
    Volume {
        /// In process.
        sim: u64,
        /// Committed.
        net: u64,
    },
    /// The books differ (as sorted (participant, side, quantity, limit) lists).
    #[error("orders: {only_sim} only in the simulation, {only_net} only on the nodes")]
    Orders {
        /// Orders the network lacks.
        only_sim: usize,
        /// Orders the simulation lacks.
        only_net: usize,
    },
    /// The trade lists differ (as sorted (buyer, seller, quantity, price) lists).
    #[error("trades: {only_sim} only in the simulation, {only_net} only on the nodes")]
    Trades {
        /// Trades the network lacks.
        only_sim: usize,
        /// Trades the simulation lacks.
        only_net: usize,
    },
    /// A simulated participant has no network household.
    #[error("participant {0} has no network household")]
    Unmapped(String),
}

fn show(price: Option<Price>) -> String {
    price.map_or("none".into(), |p| p.to_string())
}

/// One interval compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntervalCheck {
    /// The simulation's interval start.
    pub sim_start: NaiveDateTime,
    /// The network interval's start, Unix seconds.
    pub net_start: i64,
    /// Orders in the simulation's book.
    pub sim_orders: usize,
    /// Orders the nodes committed for the interval.
    pub net_orders: usize,
    /// The simulation's trades, mapped and sorted.
    pub sim_trades: Vec<TradeLine>,
    /// The simulation's volume, Wh.
    pub sim_volume_wh: u64,
    /// The simulation's price.
    pub sim_price: Option<Price>,
    /// The nodes' trades, sorted (`None`: no clearing committed).
    pub net_trades: Option<Vec<TradeLine>>,
    /// The nodes' volume, Wh.
    pub net_volume_wh: u64,
    /// The nodes' price.
    pub net_price: Option<Price>,
    /// Every difference found (empty: equal).
    pub differences: Vec<Difference>,
}

impl IntervalCheck {
    /// Whether both paths agree.
    pub fn matches(&self) -> bool {
        self.differences.is_empty()
    }
}

/// The network name of the household that plays the grid's `index`-th load (from 0).
pub fn network_participant(index: usize) -> ParticipantId {
    ParticipantId::from(format!("hh-{:02}", index + 1))
}

/// Simulation participant (load id) → network participant, for every load of `grid`.
pub fn participant_map(grid: &Grid) -> BTreeMap<ParticipantId, ParticipantId> {
    grid.loads
        .iter()
        .enumerate()
        .map(|(i, load)| {
            (
                ParticipantId::from(load.id.as_str()),
                network_participant(i),
            )
        })
        .collect()
}

struct Keep(Vec<SimInterval>);

impl IntervalObserver for Keep {
    fn interval(&mut self, view: &IntervalView<'_>) {
        self.0.push(SimInterval {
            start: view.start,
            orders: view.orders.to_vec(),
            outcome: view.outcome.clone(),
        });
    }
}

/// Runs the in-process simulation of `scenario` over `window` and keeps every interval's orders
/// and outcome.
///
/// # Errors
/// As [`voltmesh_sim::run::run`].
pub fn simulate(
    grid: &Grid,
    scenario: &Scenario,
    window: Window,
) -> Result<Vec<SimInterval>, SimError> {
    let mut keep = Keep(Vec::new());
    run_observed(grid, scenario, window, |_, _| {}, &mut keep)?;
    Ok(keep.0)
}

/// The orders each network household publishes for `interval`, in the simulation's order.
///
/// # Errors
/// [`Difference::Unmapped`] if an order's participant is not in `map`.
pub fn planned_orders(
    interval: &SimInterval,
    map: &BTreeMap<ParticipantId, ParticipantId>,
) -> Result<Vec<PlannedOrder>, Difference> {
    interval
        .orders
        .iter()
        .map(|o| {
            Ok(PlannedOrder {
                participant: mapped(map, &o.participant)?,
                side: o.side,
                quantity_wh: o.quantity_wh,
                limit_price: o.limit_price,
            })
        })
        .collect()
}

/// The committed `orders` as comparable lines.
pub fn committed_book(orders: &[SignedOrder]) -> Vec<PlannedOrder> {
    orders
        .iter()
        .map(|o| PlannedOrder {
            participant: o.ticket.participant.clone(),
            side: o.ticket.side,
            quantity_wh: o.ticket.quantity_wh,
            limit_price: o.ticket.limit_price,
        })
        .collect()
}

fn mapped(
    map: &BTreeMap<ParticipantId, ParticipantId>,
    p: &ParticipantId,
) -> Result<ParticipantId, Difference> {
    map.get(p)
        .cloned()
        .ok_or_else(|| Difference::Unmapped(p.to_string()))
}

/// `outcome`'s trades as sorted lines, participants renamed by `rename`.
fn lines(
    outcome: &ClearingOutcome,
    rename: impl Fn(&ParticipantId) -> Result<ParticipantId, Difference>,
) -> Result<Vec<TradeLine>, Difference> {
    let mut lines = outcome
        .trades
        .iter()
        .map(|t| {
            Ok(TradeLine {
                buyer: rename(&t.buyer)?,
                seller: rename(&t.seller)?,
                quantity_wh: t.quantity_wh,
                price: t.price,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    lines.sort();
    Ok(lines)
}

/// Counts the lines of `a` not matched by a line of `b` (multiset difference).
fn missing_from<T: Ord>(a: &[T], b: &[T]) -> usize {
    let mut left: BTreeMap<&T, usize> = BTreeMap::new();
    for l in b {
        *left.entry(l).or_default() += 1;
    }
    a.iter()
        .filter(|l| match left.get_mut(l) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .count()
}

/// Compares the simulation's `sim` interval with what the nodes committed for network interval
/// `net_start`: its orders `committed` and its clearing `net` (`None`: none). An interval
/// without simulated orders and without a committed clearing is equal; one with orders and no
/// clearing is [`Difference::Missing`]. Otherwise the books, prices, volumes and trade lists
/// must be equal.
pub fn check(
    sim: &SimInterval,
    map: &BTreeMap<ParticipantId, ParticipantId>,
    net_start: i64,
    committed: &[PlannedOrder],
    net: Option<&ClearingOutcome>,
) -> IntervalCheck {
    let mut differences = Vec::new();
    match planned_orders(sim, map) {
        Ok(mut book) => {
            book.sort();
            let mut committed = committed.to_vec();
            committed.sort();
            let only_sim = missing_from(&book, &committed);
            let only_net = missing_from(&committed, &book);
            if only_sim + only_net > 0 {
                differences.push(Difference::Orders { only_sim, only_net });
            }
        }
        Err(e) => differences.push(e),
    }
    let sim_trades = lines(&sim.outcome, |p| mapped(map, p)).unwrap_or_else(|e| {
        differences.push(e);
        Vec::new()
    });
    let net_trades = net.map(|o| lines(o, |p| Ok(p.clone())).unwrap_or_default());
    let (net_volume_wh, net_price) = net.map_or((0, None), |o| (o.volume_wh, o.clearing_price));
    match &net_trades {
        None if !sim.orders.is_empty() => differences.push(Difference::Missing {
            orders: sim.orders.len(),
        }),
        None => {}
        Some(net_trades) => {
            if sim.outcome.clearing_price != net_price {
                differences.push(Difference::Price {
                    sim: sim.outcome.clearing_price,
                    net: net_price,
                });
            }
            if sim.outcome.volume_wh != net_volume_wh {
                differences.push(Difference::Volume {
                    sim: sim.outcome.volume_wh,
                    net: net_volume_wh,
                });
            }
            let only_sim = missing_from(&sim_trades, net_trades);
            let only_net = missing_from(net_trades, &sim_trades);
            if only_sim + only_net > 0 {
                differences.push(Difference::Trades { only_sim, only_net });
            }
        }
    }
    IntervalCheck {
        sim_start: sim.start,
        net_start,
        sim_orders: sim.orders.len(),
        net_orders: committed.len(),
        sim_volume_wh: sim.outcome.volume_wh,
        sim_price: sim.outcome.clearing_price,
        sim_trades,
        net_trades,
        net_volume_wh,
        net_price,
        differences,
    }
}

/// The comparison as a table, one line per interval, then one line per difference.
pub fn table(checks: &[IntervalCheck]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "== via network vs in-process sim (same household orders)\n{:<16}  {:>10}  {:>14}  {:>22}  {:>22}  same",
        "sim interval", "network", "orders sim/net", "sim: trades/Wh/price", "nodes: trades/Wh/price"
    );
    let fmt = |trades: usize, wh: u64, price: Option<Price>| {
        format!(
            "{trades}/{wh}/{}",
            price.map_or("-".into(), |p| p.to_string())
        )
    };
    for c in checks {
        let net = c.net_trades.as_ref().map_or("missing".into(), |t| {
            fmt(t.len(), c.net_volume_wh, c.net_price)
        });
        let _ = writeln!(
            out,
            "{:<16}  {:>10}  {:>14}  {:>22}  {:>22}  {}",
            c.sim_start.format("%Y-%m-%d %H:%M"),
            c.net_start,
            format!("{}/{}", c.sim_orders, c.net_orders),
            fmt(c.sim_trades.len(), c.sim_volume_wh, c.sim_price),
            net,
            if c.matches() { "yes" } else { "NO" }
        );
    }
    for c in checks {
        for d in &c.differences {
            let _ = writeln!(out, "  {}: {d}", c.sim_start.format("%Y-%m-%d %H:%M"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use voltmesh_engine::{CallAuction, MarketRules, Mechanism, Tariffs, K};

    fn price(text: &str) -> Price {
        text.parse().unwrap()
    }

    fn order(p: &str, side: Side, wh: u64, limit: &str, seq: u64) -> Order {
        Order {
            id: format!("{p}@{seq}").into(),
            participant: p.into(),
            side,
            quantity_wh: wh,
            limit_price: price(limit),
            seq,
        }
    }

    fn clear(orders: &[Order]) -> ClearingOutcome {
        let rules = MarketRules {
            tariffs: Tariffs::new(price("0.08"), price("0.30")).unwrap(),
            ..MarketRules::PERMISSIVE
        };
        let mut book = CallAuction::new(rules);
        for o in orders {
            book.submit(o.clone()).unwrap();
        }
        book.clear(Mechanism::Uniform { k: K::HALF })
    }

    fn sim_interval() -> SimInterval {
        let orders = vec![
            order("load a", Side::Sell, 500, "0.10", 0),
            order("load b", Side::Buy, 300, "0.20", 1),
            order("load c", Side::Buy, 400, "0.25", 2),
        ];
        SimInterval {
            start: chrono::NaiveDate::from_ymd_opt(2016, 6, 21)
                .unwrap()
                .and_hms_opt(10, 0, 0)
                .unwrap(),
            outcome: clear(&orders),
            orders,
        }
    }

    /// The committed book: the planned orders, in another order.
    fn book(sim: &SimInterval) -> Vec<PlannedOrder> {
        let mut book = planned_orders(sim, &map()).unwrap();
        book.reverse();
        book
    }

    fn map() -> BTreeMap<ParticipantId, ParticipantId> {
        ["load a", "load b", "load c"]
            .iter()
            .enumerate()
            .map(|(i, p)| (ParticipantId::from(*p), network_participant(i)))
            .collect()
    }

    /// The network path: the same orders under network names, other ids, another arrival order.
    fn network_outcome(sim: &SimInterval) -> ClearingOutcome {
        let map = map();
        let mut orders: Vec<Order> = sim
            .orders
            .iter()
            .rev()
            .enumerate()
            .map(|(seq, o)| Order {
                id: format!("bridge-{seq}").into(),
                participant: map[&o.participant].clone(),
                seq: seq as u64,
                ..o.clone()
            })
            .collect();
        orders.sort_by_key(|o| o.seq);
        clear(&orders)
    }

    #[test]
    fn the_same_orders_under_network_names_and_ids_are_equal() {
        let sim = sim_interval();
        assert!(sim.outcome.volume_wh > 0, "the example trades");
        let planned = planned_orders(&sim, &map()).unwrap();
        assert_eq!(planned[1].participant.as_str(), "hh-02");
        assert_eq!(planned[1].quantity_wh, 300);
        let net = network_outcome(&sim);
        let c = check(&sim, &map(), 1_800_000_000, &book(&sim), Some(&net));
        assert!(c.matches(), "{:?}", c.differences);
        assert_eq!(c.sim_trades, c.net_trades.clone().unwrap());
        assert!(c.sim_trades.iter().all(|t| t.seller.as_str() == "hh-01"));
        assert!(table(&[c]).contains(" yes"));
    }

    #[test]
    fn a_perturbed_trade_list_is_flagged() {
        let sim = sim_interval();
        let good = network_outcome(&sim);
        let good_again = good.clone();
        assert!(check(&sim, &map(), 1, &book(&sim), Some(&good)).matches());

        let mut quantity = good.clone();
        quantity.trades[0].quantity_wh -= 1;
        let c = check(&sim, &map(), 1, &book(&sim), Some(&quantity));
        assert!(!c.matches());
        assert!(c.differences.contains(&Difference::Trades {
            only_sim: 1,
            only_net: 1
        }));

        let mut buyer = good.clone();
        buyer.trades[0].buyer = "hh-09".into();
        assert!(!check(&sim, &map(), 1, &book(&sim), Some(&buyer)).matches());

        let mut extra = good.clone();
        extra.trades.push(good.trades[0].clone());
        let c = check(&sim, &map(), 1, &book(&sim), Some(&extra));
        assert!(c.differences.contains(&Difference::Trades {
            only_sim: 0,
            only_net: 1
        }));

        let mut priced = good.clone();
        priced.clearing_price = Some(price("0.11"));
        assert!(matches!(
            check(&sim, &map(), 1, &book(&sim), Some(&priced)).differences[..],
            [Difference::Price { .. }]
        ));

        let mut volume = good;
        volume.volume_wh += 1;
        assert!(matches!(
            check(&sim, &map(), 1, &book(&sim), Some(&volume)).differences[..],
            [Difference::Volume { .. }]
        ));

        let missing = check(&sim, &map(), 1, &[], None);
        assert_eq!(
            missing.differences,
            [
                Difference::Orders {
                    only_sim: 3,
                    only_net: 0
                },
                Difference::Missing { orders: 3 }
            ]
        );

        // An order the simulation did not place (e.g. the bridge's own forecast order).
        let mut more = book(&sim);
        more.push(PlannedOrder {
            participant: "hh-04".into(),
            side: Side::Sell,
            quantity_wh: 10,
            limit_price: price("0.29"),
        });
        assert_eq!(
            check(&sim, &map(), 1, &more, Some(&good_again)).differences,
            [Difference::Orders {
                only_sim: 0,
                only_net: 1
            }]
        );
        let mut other_limit = book(&sim);
        other_limit[0].limit_price = price("0.11");
        assert!(!check(&sim, &map(), 1, &other_limit, Some(&good_again)).matches());
        let text = table(&[missing]);
        assert!(text.contains("missing") && text.contains(" NO"), "{text}");
    }

    #[test]
    fn an_empty_interval_without_a_clearing_is_equal_and_unknown_loads_are_flagged() {
        let mut sim = sim_interval();
        let mut empty = sim.clone();
        empty.orders.clear();
        empty.outcome = clear(&[]);
        assert!(check(&empty, &map(), 1, &[], None).matches());
        sim.orders[0].participant = "load z".into();
        assert_eq!(
            planned_orders(&sim, &map()),
            Err(Difference::Unmapped("load z".into()))
        );
    }
}
