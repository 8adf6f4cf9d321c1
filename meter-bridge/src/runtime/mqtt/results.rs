//! Results back to households over MQTT, and their topic layout.
//!
//! # Topics
//! The whole topic tree lives in [`crate::household::topic`]: [`HouseholdFills`] go to
//! `<prefix>/households/<participant>/fills`, [`ClearingSummary`] to `<prefix>/market/clearing`,
//! [`SettlementNotice`] to `<prefix>/households/<participant>/settlement` and the ledger's
//! [`CommittedBill`] to `<prefix>/households/<participant>/bill` (under `topics.results_prefix`,
//! default `voltmesh`; JSON; QoS 1; retained).
//!
//! Retained, so a household that connects later still gets its latest result; every message
//! carries its interval, so a household can tell an old result from a new one.
//!
//! The data comes from the node's committed clearing ([`ClearingOutcome`]) and the bridge's own
//! meter registers; the constructors here turn it into per-household messages
//! ([`HouseholdFills::for_households`], [`ClearingSummary::from_outcome`],
//! [`SettlementNotice::for_household`]). A [`SettlementNotice`] is therefore the bridge's
//! estimate; the bill the validators agreed on is the [`CommittedBill`], published as the node
//! serves it ([`crate::runtime::bills`]). Participant ids that are not safe as one topic level (empty,
//! or containing `/`, `+`, `#` or NUL) are refused with [`ResultsError::BadParticipant`].

use std::collections::{BTreeMap, BTreeSet};

use crate::household::price_signal::{emhass_forecast, evcc_forecast, IndicativePrice};
pub use crate::household::topic::ResultsError;
use crate::household::topic::{
    bill_topic, clearing_topic, fills_topic, price_signal_topic, settlement_topic,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use voltmesh_engine::settlement::{settle, SettlementError};
use voltmesh_engine::{
    Bill, ClearingOutcome, Interval, ParticipantId, Price, Settlement, Side, Tariffs, Trade, Wh,
};
use voltmesh_wire::bill::CommittedBill;
use voltmesh_wire::clearing::Withheld;
use voltmesh_wire::Currency;

/// One fill of a household's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FillLine {
    /// The household's order.
    pub order_id: String,
    /// Whether the household bought or sold.
    pub side: Side,
    /// Energy traded, Wh.
    pub quantity_wh: Wh,
    /// Price of this trade per kWh.
    pub price: Price,
}

/// A household's fills for one interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HouseholdFills {
    /// The interval's start.
    pub interval_start: DateTime<Utc>,
    /// The household.
    pub participant: ParticipantId,
    /// The uniform clearing price, if the mechanism has one.
    pub clearing_price: Option<Price>,
    /// Its trades, in the engine's trade order.
    pub fills: Vec<FillLine>,
    /// Total bought, Wh.
    pub bought_wh: Wh,
    /// Total sold, Wh.
    pub sold_wh: Wh,
    /// The currency of the prices (ISO 4217).
    pub currency: Currency,
}

/// An interval's market-wide result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearingSummary {
    /// The interval's start.
    pub interval_start: DateTime<Utc>,
    /// Uniform clearing price, if any.
    pub clearing_price: Option<Price>,
    /// Energy traded locally, Wh.
    pub volume_wh: Wh,
    /// Number of trades.
    pub trades: usize,
    /// Number of orders left (partly) unfilled.
    pub unfilled_orders: usize,
    /// The currency of the price (ISO 4217).
    pub currency: Currency,
}

/// A household's settlement for one delivered interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettlementNotice {
    /// The interval's start.
    pub interval_start: DateTime<Utc>,
    /// The bill: metered energy, traded energy and money (positive = the household pays).
    pub bill: Bill,
    /// The currency of the bill's amounts (ISO 4217).
    pub currency: Currency,
}

/// The indicative prices of the coming intervals, as published in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PriceSignal {
    /// The currency of every price (ISO 4217).
    pub currency: Currency,
    /// One entry per interval, in time order.
    pub intervals: Vec<IndicativePrice>,
}

/// Something to publish to households.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultMessage {
    /// One household's fills.
    Fills(HouseholdFills),
    /// The market summary.
    Clearing(ClearingSummary),
    /// One household's settlement, as the bridge computed it from its registers (an estimate).
    Settlement(SettlementNotice),
    /// One household's bill as the ledger committed it, published exactly as the node served
    /// it.
    Bill(CommittedBill),
    /// The price signal, published in full and in evcc's and EMHASS's formats.
    PriceSignal(PriceSignal),
}

impl HouseholdFills {
    /// One message per participant that traded in `outcome`, ordered by participant.
    pub fn from_outcome(
        interval: Interval,
        outcome: &ClearingOutcome,
        currency: Currency,
    ) -> Vec<HouseholdFills> {
        let mut by: BTreeMap<&ParticipantId, HouseholdFills> = BTreeMap::new();
        let blank = |p: &ParticipantId| HouseholdFills {
            interval_start: interval.start(),
            participant: p.clone(),
            clearing_price: outcome.clearing_price,
            fills: Vec::new(),
            bought_wh: 0,
            sold_wh: 0,
            currency,
        };
        for t in &outcome.trades {
            let buyer = by.entry(&t.buyer).or_insert_with(|| blank(&t.buyer));
            buyer.bought_wh = buyer.bought_wh.saturating_add(t.quantity_wh);
            buyer.fills.push(FillLine {
                order_id: t.buy_id.to_string(),
                side: Side::Buy,
                quantity_wh: t.quantity_wh,
                price: t.price,
            });
            let seller = by.entry(&t.seller).or_insert_with(|| blank(&t.seller));
            seller.sold_wh = seller.sold_wh.saturating_add(t.quantity_wh);
            seller.fills.push(FillLine {
                order_id: t.sell_id.to_string(),
                side: Side::Sell,
                quantity_wh: t.quantity_wh,
                price: t.price,
            });
        }
        by.into_values().collect()
    }
}

impl HouseholdFills {
    /// One message for each of `households`, ordered by participant: its fills from `outcome`,
    /// or none (bought and sold 0) if its order did not trade. Other traders are left out: their
    /// results are not this bridge's to publish.
    pub fn for_households(
        interval: Interval,
        outcome: &ClearingOutcome,
        households: &BTreeSet<ParticipantId>,
        currency: Currency,
    ) -> Vec<HouseholdFills> {
        let mut traded: BTreeMap<ParticipantId, HouseholdFills> =
            HouseholdFills::from_outcome(interval, outcome, currency)
                .into_iter()
                .filter(|f| households.contains(&f.participant))
                .map(|f| (f.participant.clone(), f))
                .collect();
        households
            .iter()
            .map(|p| {
                traded.remove(p).unwrap_or_else(|| HouseholdFills {
                    interval_start: interval.start(),
                    participant: p.clone(),
                    clearing_price: outcome.clearing_price,
                    fills: Vec::new(),
                    bought_wh: 0,
                    sold_wh: 0,
                    currency,
                })
            })
            .collect()
    }
}

impl ClearingSummary {
    /// The summary of `outcome`, of which the node withheld `withheld` from the bridge (the
    /// trades and orders of households it does not serve): the counts are the interval's.
    pub fn from_outcome(
        interval: Interval,
        outcome: &ClearingOutcome,
        withheld: Withheld,
        currency: Currency,
    ) -> ClearingSummary {
        let count = |shown: usize, hidden: u64| shown + usize::try_from(hidden).unwrap_or(0);
        ClearingSummary {
            interval_start: interval.start(),
            clearing_price: outcome.clearing_price,
            volume_wh: outcome.volume_wh,
            trades: count(outcome.trades.len(), withheld.trades),
            unfilled_orders: count(outcome.unfilled.len(), withheld.unfilled),
            currency,
        }
    }
}

impl SettlementNotice {
    /// One notice per bill, ordered as the settlement's bills.
    pub fn from_settlement(
        interval: Interval,
        settlement: &Settlement,
        currency: Currency,
    ) -> Vec<SettlementNotice> {
        settlement
            .bills
            .iter()
            .map(|bill| SettlementNotice {
                interval_start: interval.start(),
                bill: bill.clone(),
                currency,
            })
            .collect()
    }
}

impl SettlementNotice {
    /// `participant`'s bill for `interval`: its trades among `trades` against its metered net
    /// export, settled by [`voltmesh_engine::settlement::settle`]. A bill depends only on the
    /// participant's own trades and meter, so counterparties need no reading: they are settled
    /// at their contract and their bills dropped.
    ///
    /// # Errors
    /// None in practice: every participant in the trades handed to `settle` has a reading.
    pub fn for_household(
        interval: Interval,
        trades: &[Trade],
        participant: &ParticipantId,
        metered_net_export_wh: i64,
        tariffs: Tariffs,
        network_fee: Price,
        currency: Currency,
    ) -> Result<SettlementNotice, SettlementError> {
        let own: Vec<Trade> = trades
            .iter()
            .filter(|t| &t.buyer == participant || &t.seller == participant)
            .cloned()
            .collect();
        let mut metered: BTreeMap<ParticipantId, i64> = BTreeMap::new();
        for t in &own {
            let q = i64::try_from(t.quantity_wh).unwrap_or(i64::MAX);
            let buyer = metered.entry(t.buyer.clone()).or_default();
            *buyer = buyer.saturating_sub(q);
            let seller = metered.entry(t.seller.clone()).or_default();
            *seller = seller.saturating_add(q);
        }
        metered.insert(participant.clone(), metered_net_export_wh);
        let settlement = settle(&own, &metered, tariffs, network_fee)?;
        let bill = settlement
            .bills
            .into_iter()
            .find(|b| &b.participant == participant)
            .ok_or_else(|| SettlementError::MissingReading(participant.clone()))?;
        Ok(SettlementNotice {
            interval_start: interval.start(),
            bill,
            currency,
        })
    }
}

impl ResultMessage {
    /// The topic under `prefix` (module table).
    ///
    /// # Errors
    /// [`ResultsError::BadParticipant`] if the participant id is not one safe topic level.
    pub fn topic(&self, prefix: &str) -> Result<String, ResultsError> {
        match self {
            ResultMessage::Fills(f) => fills_topic(prefix, &f.participant),
            ResultMessage::Clearing(_) => Ok(clearing_topic(prefix)),
            ResultMessage::Settlement(s) => settlement_topic(prefix, &s.bill.participant),
            ResultMessage::Bill(b) => bill_topic(prefix, &b.bill.participant),
            ResultMessage::PriceSignal(_) => Ok(price_signal_topic(prefix, None)),
        }
    }

    /// The JSON payload.
    ///
    /// # Errors
    /// [`serde_json::Error`] (not expected for these types).
    pub fn payload(&self) -> Result<Vec<u8>, serde_json::Error> {
        match self {
            ResultMessage::Fills(f) => serde_json::to_vec(f),
            ResultMessage::Clearing(c) => serde_json::to_vec(c),
            ResultMessage::Settlement(s) => serde_json::to_vec(s),
            ResultMessage::Bill(b) => serde_json::to_vec(b),
            ResultMessage::PriceSignal(p) => serde_json::to_vec(p),
        }
    }

    /// Every `(topic, payload)` this message is published as: one, except the price signal,
    /// which also goes out in evcc's and EMHASS's formats (module table of
    /// [`crate::household::topic`]).
    ///
    /// # Errors
    /// As [`ResultMessage::topic`] and [`ResultMessage::payload`].
    pub fn publications(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, PublicationError> {
        let mut out = vec![(self.topic(prefix)?, self.payload()?)];
        if let ResultMessage::PriceSignal(p) = self {
            let grid = serde_json::to_vec(&evcc_forecast(&p.intervals, Side::Buy))?;
            let feedin = serde_json::to_vec(&evcc_forecast(&p.intervals, Side::Sell))?;
            let emhass = serde_json::to_vec(&emhass_forecast(&p.intervals))?;
            out.push((price_signal_topic(prefix, Some("evcc/grid")), grid));
            out.push((price_signal_topic(prefix, Some("evcc/feedin")), feedin));
            out.push((price_signal_topic(prefix, Some("emhass")), emhass));
        }
        Ok(out)
    }
}

/// Why a result could not be turned into publications.
#[derive(Debug, thiserror::Error)]
pub enum PublicationError {
    /// A participant id that cannot be a topic level.
    #[error(transparent)]
    Topic(#[from] ResultsError),
    /// JSON encoding failed.
    #[error("encoding: {0}")]
    Json(#[from] serde_json::Error),
}

impl ResultMessage {}

#[cfg(test)]
mod tests {
    use super::*;
    use voltmesh_engine::{IntervalSpec, Trade};

    fn p(text: &str) -> ParticipantId {
        ParticipantId::from(text)
    }

    /// A trade of `q` Wh from `seller` to `buyer` at `price`, with ids named after them.
    fn trade(buyer: &str, seller: &str, q: Wh, price: Price) -> Trade {
        Trade {
            buy_id: format!("{buyer}-b").into(),
            sell_id: format!("{seller}-s").into(),
            buyer: p(buyer),
            seller: p(seller),
            quantity_wh: q,
            price,
        }
    }

    #[test]
    fn fills_are_split_per_household_and_topics_are_laid_out() {
        let interval =
            IntervalSpec::DEFAULT.containing(DateTime::from_timestamp(1_790_000_000, 0).unwrap());
        let price: Price = "0.210000".parse().unwrap();
        let trade = |buyer: &str, seller: &str, q: Wh| trade(buyer, seller, q, price);
        let outcome = ClearingOutcome {
            trades: vec![trade("hh-2", "hh-1", 300), trade("hh-3", "hh-1", 200)],
            volume_wh: 500,
            clearing_price: Some(price),
            mechanism: voltmesh_engine::Mechanism::default(),
            price_range: None,
            unfilled: Vec::new(),
        };
        let fills = HouseholdFills::from_outcome(interval, &outcome, Currency::EUR);
        let who: Vec<_> = fills
            .iter()
            .map(|f| (f.participant.as_str(), f.bought_wh, f.sold_wh))
            .collect();
        assert_eq!(who, [("hh-1", 0, 500), ("hh-2", 300, 0), ("hh-3", 200, 0)]);
        assert_eq!(fills[0].fills.len(), 2);
        let msg = ResultMessage::Fills(fills[0].clone());
        assert_eq!(msg.topic("vm").unwrap(), "vm/households/hh-1/fills");
        let json: serde_json::Value = serde_json::from_slice(&msg.payload().unwrap()).unwrap();
        assert_eq!(json["sold_wh"], 500);
        let summary =
            ClearingSummary::from_outcome(interval, &outcome, Withheld::default(), Currency::EUR);
        assert_eq!((summary.volume_wh, summary.trades), (500, 2));
        assert_eq!(
            ResultMessage::Clearing(summary).topic("vm").unwrap(),
            "vm/market/clearing"
        );
        let ours = BTreeSet::from([p("hh-2"), p("hh-9")]);
        let mine = HouseholdFills::for_households(interval, &outcome, &ours, Currency::EUR);
        let who: Vec<_> = mine
            .iter()
            .map(|f| (f.participant.as_str(), f.bought_wh, f.fills.len()))
            .collect();
        assert_eq!(
            who,
            [("hh-2", 300, 1), ("hh-9", 0, 0)],
            "only ours, unfilled too"
        );
        let mut bad = fills[0].clone();
        bad.participant = p("a/#");
        assert!(ResultMessage::Fills(bad).topic("vm").is_err());
    }

    #[test]
    fn a_household_is_billed_on_its_own_trades_and_meter() {
        let interval =
            IntervalSpec::DEFAULT.containing(DateTime::from_timestamp(1_790_000_000, 0).unwrap());
        let price: Price = "0.200000".parse().unwrap();
        let trade = |buyer: &str, seller: &str, q: Wh| trade(buyer, seller, q, price);
        let trades = [trade("a", "b", 1_000), trade("c", "d", 500)];
        let tariffs = Tariffs::new("0.08".parse().unwrap(), "0.30".parse().unwrap()).unwrap();
        let fee: Price = "0.01".parse().unwrap();
        // a bought 1 kWh and consumed 1.5: 0.20 + 0.01 fee + 0.5 kWh at 0.30 retail = 0.36.
        let a = SettlementNotice::for_household(
            interval,
            &trades,
            &p("a"),
            -1_500,
            tariffs,
            fee,
            Currency::EUR,
        )
        .unwrap();
        assert_eq!(a.bill.participant, p("a"));
        assert_eq!((a.bill.bought_wh, a.bill.from_utility_wh), (1_000, 500));
        assert_eq!(a.bill.total.to_string(), "0.360000000");
        // b sold 1 kWh and exported only 0.8: −0.20 + 0.2 kWh at retail = −0.14.
        let b = SettlementNotice::for_household(
            interval,
            &trades,
            &p("b"),
            800,
            tariffs,
            fee,
            Currency::EUR,
        )
        .unwrap();
        assert_eq!(b.bill.total.to_string(), "-0.140000000");
        // e did not trade: only the utility (2 kWh exported at feed-in).
        let e = SettlementNotice::for_household(
            interval,
            &trades,
            &p("e"),
            2_000,
            tariffs,
            fee,
            Currency::EUR,
        )
        .unwrap();
        assert_eq!((e.bill.sold_wh, e.bill.to_utility_wh), (0, 2_000));
        assert_eq!(e.bill.total.to_string(), "-0.160000000");
        let msg = ResultMessage::Settlement(e);
        assert_eq!(msg.topic("vm").unwrap(), "vm/households/e/settlement");
    }

    #[test]
    fn a_committed_bill_goes_out_as_the_node_served_it() {
        let bill = crate::runtime::bills::sample::committed("hh-7", 1_790_000_100, 42);
        let msg = ResultMessage::Bill(bill.clone());
        assert_eq!(msg.topic("vm").unwrap(), "vm/households/hh-7/bill");
        let payload = msg.payload().unwrap();
        let back: CommittedBill = serde_json::from_slice(&payload).unwrap();
        assert_eq!(back, bill);
        let json: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(json["interval_start"], 1_790_000_100);
        assert_eq!(json["height"], 42);
        assert_eq!(json["block"], format!("{:064x}", 42));
        assert_eq!(json["currency"], "EUR");
        assert_eq!(json["bill"]["participant"], "hh-7");
        assert_eq!(json["bill"]["total"], bill.bill.total.to_string());
        let mut bad = bill;
        bad.bill.participant = p("a/b");
        assert!(ResultMessage::Bill(bad).topic("vm").is_err());
    }
}
