//! Settlement: an interval's trades and metered energy become bills.
//!
//! # The rule
//! Each participant's *contract* is what it sold minus what it bought in the interval's trades.
//! Its metered net export (export minus import, Wh) rarely matches the contract exactly; the
//! difference is settled with the utility: energy delivered beyond the contract is bought by the
//! utility at the feed-in tariff, energy missing from the contract is supplied by the utility at the
//! retail price. The buyer of every local trade pays the network fee per kWh to the network
//! operator.
//!
//! All amounts are exact [`Money`]; positive means the participant pays. Money is conserved:
//! participants' totals = utility revenue + network fees, i.e. [`Settlement::imbalance`] is zero.
//!
//! # Known limitations
//! Delivery is settled per interval; there is no netting across intervals.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::{Money, ParticipantId, Price, Tariffs, Trade, Wh};

/// One participant's bill for one interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bill {
    /// Who pays.
    pub participant: ParticipantId,
    /// Energy bought locally.
    pub bought_wh: Wh,
    /// Energy sold locally.
    pub sold_wh: Wh,
    /// Metered export minus import.
    pub metered_net_export_wh: i64,
    /// Energy the utility supplied because the participant delivered less than its contract.
    pub from_utility_wh: Wh,
    /// Energy the utility took because the participant delivered more than its contract.
    pub to_utility_wh: Wh,
    /// Paid for local purchases minus received for local sales.
    pub local_energy: Money,
    /// Network fees on local purchases.
    pub network_fees: Money,
    /// Paid to the utility at retail minus received at feed-in.
    pub utility: Money,
    /// The sum: what the participant pays (negative: receives).
    pub total: Money,
}

/// An interval's settlement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settlement {
    /// One bill per participant that traded or was metered, ordered by participant id.
    pub bills: Vec<Bill>,
    /// The utility's net revenue: retail sales minus feed-in purchases.
    pub utility_revenue: Money,
    /// The network operator's fee revenue.
    pub network_revenue: Money,
}

impl Settlement {
    /// Participants' payments minus everyone else's revenue; zero for every settlement this module
    /// produces.
    pub fn imbalance(&self) -> Money {
        self.bills.iter().map(|b| b.total).sum::<Money>()
            - self.utility_revenue
            - self.network_revenue
    }
}

/// Why an interval cannot be settled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettlementError {
    /// A participant traded but has no meter reading for the interval.
    #[error("participant {0} traded but has no metered energy for the interval")]
    MissingReading(ParticipantId),
}

/// What a participant settles with the utility: the deviation of its metered net export from
/// its contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtilityExchange {
    /// Supplied by the utility (delivered less than the contract), Wh.
    pub from_utility_wh: Wh,
    /// Taken by the utility (delivered more than the contract), Wh.
    pub to_utility_wh: Wh,
    /// Paid to the utility at retail minus received at feed-in.
    pub utility: Money,
}

/// The utility's side of the rule (module docs) for one participant: `contract_wh` is sold
/// minus bought, `metered_net_export_wh` export minus import. Corrections from official
/// metering data re-apply it with the official reading.
#[must_use]
pub fn utility_exchange(
    contract_wh: i128,
    metered_net_export_wh: i64,
    tariffs: Tariffs,
) -> UtilityExchange {
    let deviation = i128::from(metered_net_export_wh) - contract_wh;
    let to_utility_wh = Wh::try_from(deviation.max(0)).unwrap_or(Wh::MAX);
    let from_utility_wh = Wh::try_from((-deviation).max(0)).unwrap_or(Wh::MAX);
    UtilityExchange {
        from_utility_wh,
        to_utility_wh,
        utility: Money::of(from_utility_wh, tariffs.retail)
            - Money::of(to_utility_wh, tariffs.feed_in),
    }
}

/// What `metered_net_export_wh` would cost with no market: all of it with the utility, at
/// retail (net import) or feed-in (net export).
#[must_use]
pub fn no_market(metered_net_export_wh: i64, tariffs: Tariffs) -> Money {
    utility_exchange(0, metered_net_export_wh, tariffs).utility
}

/// Settles one interval.
///
/// `metered_net_export_wh` holds each participant's export minus import over the interval.
/// Participants with a reading but no trades are settled with the utility alone.
///
/// # Errors
/// [`SettlementError::MissingReading`] if a trading participant has no reading.
pub fn settle(
    trades: &[Trade],
    metered_net_export_wh: &BTreeMap<ParticipantId, i64>,
    tariffs: Tariffs,
    network_fee: Price,
) -> Result<Settlement, SettlementError> {
    #[derive(Default)]
    struct Position {
        bought_wh: Wh,
        sold_wh: Wh,
        local_energy: Money,
        network_fees: Money,
    }
    // The positions of those who traded. Fx hashing: participants come from the book, whose
    // ids genesis binds, and the map is only looked up (its order never shows).
    let mut positions: FxHashMap<&ParticipantId, Position> =
        FxHashMap::with_capacity_and_hasher(2 * trades.len(), Default::default());
    for trade in trades {
        let value = trade.value();
        let buyer = positions.entry(&trade.buyer).or_default();
        buyer.bought_wh += trade.quantity_wh;
        buyer.local_energy += value;
        buyer.network_fees += Money::of(trade.quantity_wh, network_fee);
        let seller = positions.entry(&trade.seller).or_default();
        seller.sold_wh += trade.quantity_wh;
        seller.local_energy -= value;
    }
    // Bills for the readings' participants, in id order, each taking its position; a position
    // left over is a trader without a reading.
    let mut bills = Vec::with_capacity(metered_net_export_wh.len());
    let (mut utility_revenue, mut network_revenue) = (Money::ZERO, Money::ZERO);
    for (participant, &metered) in metered_net_export_wh {
        let pos = positions.remove(participant).unwrap_or_default();
        let contract = i128::from(pos.sold_wh) - i128::from(pos.bought_wh);
        let UtilityExchange {
            from_utility_wh,
            to_utility_wh,
            utility,
        } = utility_exchange(contract, metered, tariffs);
        utility_revenue += utility;
        network_revenue += pos.network_fees;
        bills.push(Bill {
            participant: participant.clone(),
            bought_wh: pos.bought_wh,
            sold_wh: pos.sold_wh,
            metered_net_export_wh: metered,
            from_utility_wh,
            to_utility_wh,
            local_energy: pos.local_energy,
            network_fees: pos.network_fees,
            utility,
            total: pos.local_energy + pos.network_fees + utility,
        });
    }
    if !positions.is_empty() {
        let missing = trades
            .iter()
            .flat_map(|t| [&t.buyer, &t.seller])
            .filter(|p| !metered_net_export_wh.contains_key(*p))
            .min();
        if let Some(participant) = missing {
            return Err(SettlementError::MissingReading(participant.clone()));
        }
    }
    Ok(Settlement {
        bills,
        utility_revenue,
        network_revenue,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Price {
        s.parse().unwrap()
    }

    fn trade(buyer: &str, seller: &str, wh: Wh, price: &str) -> Trade {
        Trade {
            buy_id: format!("{buyer}-bid").into(),
            sell_id: format!("{seller}-ask").into(),
            buyer: buyer.into(),
            seller: seller.into(),
            quantity_wh: wh,
            price: p(price),
        }
    }

    #[test]
    fn bills_follow_contract_and_meter() {
        let tariffs = Tariffs::new(p("0.08"), p("0.30")).unwrap();
        let trades = [trade("alice", "bob", 1_000, "0.20")];
        // Alice consumed 1.5 kWh (bought 1), Bob exported 0.8 kWh (sold 1), Carol only metered.
        let metered = BTreeMap::from([
            ("alice".into(), -1_500),
            ("bob".into(), 800),
            ("carol".into(), 2_000),
        ]);
        let s = settle(&trades, &metered, tariffs, p("0.01")).unwrap();
        let alice = &s.bills[0];
        assert_eq!(alice.from_utility_wh, 500);
        // 1 kWh × 0.20 + 1 kWh × 0.01 fee + 0.5 kWh × 0.30 retail = 0.36
        assert_eq!(alice.total.to_string(), "0.360000000");
        let bob = &s.bills[1];
        // Bob delivered 200 Wh short: −0.20 + 0.2 kWh × 0.30 = −0.14
        assert_eq!((bob.from_utility_wh, bob.to_utility_wh), (200, 0));
        assert_eq!(bob.total.to_string(), "-0.140000000");
        let carol = &s.bills[2];
        assert_eq!(carol.total.to_string(), "-0.160000000");
        assert_eq!(s.network_revenue.to_string(), "0.010000000");
        assert_eq!(s.utility_revenue.to_string(), "0.050000000");
        assert_eq!(s.imbalance(), Money::ZERO);
    }

    #[test]
    fn a_trader_without_a_reading_cannot_be_settled() {
        let trades = [trade("alice", "bob", 10, "0.2")];
        let metered = BTreeMap::from([("alice".into(), -10)]);
        assert_eq!(
            settle(&trades, &metered, Tariffs::UNBOUNDED, Price::ZERO),
            Err(SettlementError::MissingReading("bob".into()))
        );
    }

    /// The settlement as it was first written (a `BTreeMap` of positions over traders and
    /// readings): the oracle for the hashed one.
    fn reference(
        trades: &[Trade],
        metered: &BTreeMap<ParticipantId, i64>,
        tariffs: Tariffs,
        network_fee: Price,
    ) -> Result<Settlement, SettlementError> {
        #[derive(Default)]
        struct Position {
            bought_wh: Wh,
            sold_wh: Wh,
            local_energy: Money,
            network_fees: Money,
        }
        let mut positions: BTreeMap<&ParticipantId, Position> = BTreeMap::new();
        for trade in trades {
            let value = trade.value();
            let buyer = positions.entry(&trade.buyer).or_default();
            buyer.bought_wh += trade.quantity_wh;
            buyer.local_energy += value;
            buyer.network_fees += Money::of(trade.quantity_wh, network_fee);
            let seller = positions.entry(&trade.seller).or_default();
            seller.sold_wh += trade.quantity_wh;
            seller.local_energy -= value;
        }
        for participant in metered.keys() {
            positions.entry(participant).or_default();
        }
        let mut bills = Vec::new();
        let (mut utility_revenue, mut network_revenue) = (Money::ZERO, Money::ZERO);
        for (participant, pos) in positions {
            let metered = *metered
                .get(participant)
                .ok_or_else(|| SettlementError::MissingReading(participant.clone()))?;
            let contract = i128::from(pos.sold_wh) - i128::from(pos.bought_wh);
            let deviation = i128::from(metered) - contract;
            let to_utility_wh = Wh::try_from(deviation.max(0)).unwrap_or(Wh::MAX);
            let from_utility_wh = Wh::try_from((-deviation).max(0)).unwrap_or(Wh::MAX);
            let utility = Money::of(from_utility_wh, tariffs.retail)
                - Money::of(to_utility_wh, tariffs.feed_in);
            utility_revenue += utility;
            network_revenue += pos.network_fees;
            bills.push(Bill {
                participant: participant.clone(),
                bought_wh: pos.bought_wh,
                sold_wh: pos.sold_wh,
                metered_net_export_wh: metered,
                from_utility_wh,
                to_utility_wh,
                local_energy: pos.local_energy,
                network_fees: pos.network_fees,
                utility,
                total: pos.local_energy + pos.network_fees + utility,
            });
        }
        Ok(Settlement {
            bills,
            utility_revenue,
            network_revenue,
        })
    }

    proptest::proptest! {
        /// Same bills, revenues and errors as the reference, for trades among 8 participants,
        /// each metered with probability 0.9.
        #[test]
        fn matches_the_reference(
            trades in proptest::collection::vec(
                (0_u8..8, 0_u8..8, 1_u64..5_000, 1_i64..400_000), 0..24),
            metered in proptest::collection::vec(
                proptest::option::weighted(0.9, -9_000_i64..9_000), 8),
            fee in 0_i64..20_000,
        ) {
            let name = |i: u8| ParticipantId::from(format!("hh-{i}").as_str());
            let trades: Vec<Trade> = trades
                .into_iter()
                .enumerate()
                .map(|(n, (b, s, wh, micros))| Trade {
                    buy_id: format!("b{n}").into(),
                    sell_id: format!("s{n}").into(),
                    buyer: name(b),
                    seller: name(s),
                    quantity_wh: wh,
                    price: Price::from_micros(micros).unwrap(),
                })
                .collect();
            let metered: BTreeMap<ParticipantId, i64> = (0..)
                .zip(metered)
                .filter_map(|(i, m)| Some((name(i), m?)))
                .collect();
            let tariffs = Tariffs::new(p("0.08"), p("0.30")).unwrap();
            let fee = Price::from_micros(fee).unwrap();
            proptest::prop_assert_eq!(
                settle(&trades, &metered, tariffs, fee),
                reference(&trades, &metered, tariffs, fee)
            );
        }
    }
}
