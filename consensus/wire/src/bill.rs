//! Bills by consensus (issue 14): what every validator computes for an interval once its
//! delivery window closes, and what the node API serves.
//!
//! # The rule
//! When the first block after an interval's delivery window ([`crate::delivery::DeliveryRules`])
//! finds the interval cleared, every validator settles it with the engine's settlement
//! ([`voltmesh_engine::settlement`]) on the interval's committed trades, the metered deliveries
//! the ledger admitted for it, and the tariffs and network fee in force for that interval. The
//! block records the result ([`BillsRecord`]); a validator whose own result differs refuses the
//! block.
//!
//! **A household without a delivery** (it traded, but no signed delivery reached the ledger in
//! the window) is settled as if its meters had recorded exactly its contract (what it sold minus
//! what it bought): it pays or receives its local trades and network fees, nothing is settled
//! with the utility, and its bill says `metered: false`. Official data can correct it later. A
//! participant that neither traded nor delivered has no bill.
//!
//! **Money** is exact (nano-units). Participants' exact totals equal the utility's plus the
//! network operator's exact revenue in every interval, checked at execution. Each bill's `total`
//! is billed rounded half to even to the currency's minor unit with a carry per party
//! ([`voltmesh_engine::rounding`]): `billed + carry = total + carry_in`, so nothing is rounded
//! away, only billed later; the utility's and the network operator's lines are rounded the same
//! way with their own carries.

use serde::{Deserialize, Serialize};
use voltmesh_engine::{Money, ParticipantId, Price, Wh};

use crate::Currency;

/// One participant's bill for one interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Bill {
    /// Who pays.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub participant: ParticipantId,
    /// Energy bought locally, Wh.
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub bought_wh: Wh,
    /// Energy sold locally, Wh.
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub sold_wh: Wh,
    /// Whether a metered delivery was on the ledger; `false`: settled by the rule for a
    /// household without one (module docs).
    pub metered: bool,
    /// Metered export minus import, Wh (the contract when `metered` is false).
    pub metered_net_export_wh: i64,
    /// Energy the utility supplied (delivered less than the contract), Wh.
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub from_utility_wh: Wh,
    /// Energy the utility took (delivered more than the contract), Wh.
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub to_utility_wh: Wh,
    /// Paid for local purchases minus received for local sales, exact.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub local_energy: Money,
    /// Network fees on local purchases, exact.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub network_fees: Money,
    /// Paid to the utility at retail minus received at feed-in, exact.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub utility: Money,
    /// What the participant pays (negative: receives), exact.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub total: Money,
    /// `total` plus the carry in, rounded half to even to the currency's minor unit: what is
    /// billed.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub billed: Money,
    /// The exact amount not billed yet, carried into the participant's next bill.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub carry: Money,
    /// What the same metered energy would have cost with no market (all of it with the
    /// utility, at retail and feed-in), exact: `no_market - total` is the saving.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub no_market: Money,
}

impl Bill {
    /// The engine's settlement bill this bill extends (without the rounding and `no_market`).
    #[must_use]
    pub fn engine_bill(&self) -> voltmesh_engine::Bill {
        voltmesh_engine::Bill {
            participant: self.participant.clone(),
            bought_wh: self.bought_wh,
            sold_wh: self.sold_wh,
            metered_net_export_wh: self.metered_net_export_wh,
            from_utility_wh: self.from_utility_wh,
            to_utility_wh: self.to_utility_wh,
            local_energy: self.local_energy,
            network_fees: self.network_fees,
            utility: self.utility,
            total: self.total,
        }
    }
}

/// The utility's or the network operator's line of an interval's settlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PartyLine {
    /// Revenue, exact (the utility: retail sales minus feed-in purchases; the network operator:
    /// fees).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub revenue: Money,
    /// `revenue` plus the carry in, rounded like a bill.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub billed: Money,
    /// Carried into the next interval.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub carry: Money,
}

/// Every bill of one interval, as the validators computed them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IntervalBills {
    /// The interval's start, Unix seconds.
    pub interval_start: i64,
    /// The currency of every amount.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "EUR"))]
    pub currency: Currency,
    /// The feed-in tariff in force for the interval, per kWh.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub feed_in: Price,
    /// The retail price in force for the interval, per kWh.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub retail: Price,
    /// The network fee per locally traded kWh.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub network_fee: Price,
    /// One bill per participant that traded or delivered, by participant id.
    pub bills: Vec<Bill>,
    /// The utility's line.
    pub utility: PartyLine,
    /// The network operator's line.
    pub network: PartyLine,
}

impl IntervalBills {
    /// Participants' exact totals minus the utility's and the network operator's revenue: zero
    /// for every settlement the ledger commits.
    #[must_use]
    pub fn imbalance(&self) -> Money {
        self.bills.iter().map(|b| b.total).sum::<Money>()
            - self.utility.revenue
            - self.network.revenue
    }

    /// The participant's bill, if it has one.
    #[must_use]
    pub fn bill_of(&self, participant: &ParticipantId) -> Option<&Bill> {
        self.bills
            .binary_search_by(|b| b.participant.cmp(participant))
            .ok()
            .map(|i| &self.bills[i])
    }
}

/// What a block carries of an interval's settlement.
///
/// # Invariant
/// `sha256` is the hex SHA-256 of the canonical JSON of the [`IntervalBills`] it was made from
/// ([`BillsRecord::of`]); the other fields repeat parts of it for people reading blocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BillsRecord {
    /// The interval's start, Unix seconds.
    pub interval_start: i64,
    /// Number of bills.
    pub bills: u64,
    /// The participants' exact totals, summed (= the utility's plus the network's revenue).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub total: Money,
    /// SHA-256 of the settlement's canonical JSON, hex.
    pub sha256: String,
}

impl BillsRecord {
    /// The record of `bills`.
    #[must_use]
    pub fn of(bills: &IntervalBills) -> BillsRecord {
        use sha2::Digest;
        // A struct of strings, integers and vectors always serializes.
        let bytes = serde_json::to_vec(bills).unwrap_or_default();
        BillsRecord {
            interval_start: bills.interval_start,
            bills: bills.bills.len() as u64,
            total: bills.bills.iter().map(|b| b.total).sum(),
            sha256: hex::encode(sha2::Sha256::digest(&bytes)),
        }
    }
}

/// An interval's settlement as committed, without the bills: the utility's and the network
/// operator's lines and where the chain holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Settled {
    /// The interval's start, Unix seconds.
    pub interval_start: i64,
    /// Height of the block that committed the bills.
    pub height: u64,
    /// That block's hash, hex.
    pub block: String,
    /// The currency of every amount.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "EUR"))]
    pub currency: Currency,
    /// The feed-in tariff in force for the interval, per kWh.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub feed_in: Price,
    /// The retail price in force for the interval, per kWh.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub retail: Price,
    /// The network fee per locally traded kWh.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub network_fee: Price,
    /// Number of bills.
    pub bills: u64,
    /// Bills settled without a metered delivery.
    pub unmetered: u64,
    /// The utility's line.
    pub utility: PartyLine,
    /// The network operator's line.
    pub network: PartyLine,
}

impl Settled {
    /// The summary of `bills`, committed at `height` in block `block`.
    #[must_use]
    pub fn of(bills: &IntervalBills, height: u64, block: String) -> Settled {
        Settled {
            interval_start: bills.interval_start,
            height,
            block,
            currency: bills.currency,
            feed_in: bills.feed_in,
            retail: bills.retail,
            network_fee: bills.network_fee,
            bills: bills.bills.len() as u64,
            unmetered: bills.bills.iter().filter(|b| !b.metered).count() as u64,
            utility: bills.utility,
            network: bills.network,
        }
    }
}

/// One committed bill, with where the chain holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CommittedBill {
    /// The interval's start, Unix seconds.
    pub interval_start: i64,
    /// Height of the block that committed it.
    pub height: u64,
    /// That block's hash, hex.
    pub block: String,
    /// The currency of every amount.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "EUR"))]
    pub currency: Currency,
    /// The bill.
    pub bill: Bill,
}

/// A participant's statement for a period: its committed bills summed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// Who.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub participant: ParticipantId,
    /// The currency of every amount.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "EUR"))]
    pub currency: Currency,
    /// First interval of the period (inclusive), Unix seconds.
    pub from: i64,
    /// End of the period (exclusive), Unix seconds.
    pub to: i64,
    /// Intervals with a bill.
    pub intervals: u64,
    /// Of which settled without a metered delivery.
    pub unmetered: u64,
    /// Energy bought locally, Wh.
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub bought_wh: Wh,
    /// Energy sold locally, Wh.
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub sold_wh: Wh,
    /// Energy from the utility, Wh.
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub from_utility_wh: Wh,
    /// Energy to the utility, Wh.
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub to_utility_wh: Wh,
    /// Paid for local purchases minus received for local sales, exact.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub local_energy: Money,
    /// Network fees, exact.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub network_fees: Money,
    /// With the utility, exact.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub utility: Money,
    /// The exact total.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub total: Money,
    /// What was billed (the bills' rounded amounts summed): `total` plus the carry in at the
    /// period's start minus the carry out at its end.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub billed: Money,
    /// The carry after the period's last bill.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub carry: Money,
    /// The same energy with no market, exact.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub no_market: Money,
    /// `no_market - total`: what the market saved (negative: cost).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub savings: Money,
    /// The heights of the blocks holding the bills, ascending, each once.
    pub heights: Vec<u64>,
    /// Corrections of the period's bills from official metering data committed so far
    /// ([`crate::correction`]), by interval then as committed; the bills above stand as billed.
    pub corrections: Vec<crate::correction::ParticipantCorrection>,
    /// The corrections' exact totals summed.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub corrections_total: Money,
    /// What the corrections billed (their rounded amounts summed).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub corrections_billed: Money,
    /// `total + corrections_total`: the period on the official data, exact.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub corrected_total: Money,
    /// What the market saved on the official data: `no_market` with each correction's
    /// change, minus `corrected_total`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub corrected_savings: Money,
}

impl Statement {
    /// An empty statement of `participant` for `from..to`.
    #[must_use]
    pub fn new(participant: ParticipantId, currency: Currency, from: i64, to: i64) -> Statement {
        Statement {
            participant,
            currency,
            from,
            to,
            intervals: 0,
            unmetered: 0,
            bought_wh: 0,
            sold_wh: 0,
            from_utility_wh: 0,
            to_utility_wh: 0,
            local_energy: Money::ZERO,
            network_fees: Money::ZERO,
            utility: Money::ZERO,
            total: Money::ZERO,
            billed: Money::ZERO,
            carry: Money::ZERO,
            no_market: Money::ZERO,
            savings: Money::ZERO,
            heights: Vec::new(),
            corrections: Vec::new(),
            corrections_total: Money::ZERO,
            corrections_billed: Money::ZERO,
            corrected_total: Money::ZERO,
            corrected_savings: Money::ZERO,
        }
    }

    /// Adds one bill (bills must come in interval order).
    pub fn add(&mut self, bill: &CommittedBill) {
        let b = &bill.bill;
        self.intervals += 1;
        self.unmetered += u64::from(!b.metered);
        self.bought_wh += b.bought_wh;
        self.sold_wh += b.sold_wh;
        self.from_utility_wh += b.from_utility_wh;
        self.to_utility_wh += b.to_utility_wh;
        self.local_energy += b.local_energy;
        self.network_fees += b.network_fees;
        self.utility += b.utility;
        self.total += b.total;
        self.billed += b.billed;
        self.carry = b.carry;
        self.no_market += b.no_market;
        self.savings = self.no_market - self.total;
        if self.heights.last() != Some(&bill.height) {
            self.heights.push(bill.height);
        }
        self.corrected();
    }

    /// Adds one correction of a bill of the period.
    pub fn add_correction(&mut self, correction: crate::correction::ParticipantCorrection) {
        self.corrections_total += correction.entry.total;
        self.corrections_billed += correction.entry.billed;
        self.corrections.push(correction);
        self.corrected();
    }

    fn corrected(&mut self) {
        self.corrected_total = self.total + self.corrections_total;
        let no_market_change: Money = self
            .corrections
            .iter()
            .map(|c| c.entry.after.no_market - c.entry.before.no_market)
            .sum();
        self.corrected_savings = self.no_market + no_market_change - self.corrected_total;
    }
}
