//! Bills by consensus (issue 14, deliverable 2): when an interval's delivery window closes, the
//! ledger settles it. The rule, the household without a delivery and the rounding are
//! [`voltmesh_wire::bill`]'s; this module executes them on the state.
//!
//! # Invariants
//! - `settling` holds the trades of every cleared interval with trades whose bills are not
//!   committed yet; an interval leaves it (and its deliveries leave `deliveries`) in the block
//!   that settles it, which is the first block whose time is past the interval's delivery window
//!   and that finds it cleared. Intervals settle oldest first.
//! - `carries` holds every party's exact amount not billed yet (non-zero ones only), at most
//!   half a minor unit each.
//! - Published tariffs of an interval stay in the community until the interval's window closed
//!   (its bills need them), then are forgotten.

use std::collections::BTreeMap;
use std::sync::Arc;

use voltmesh_engine::rounding::round_line;
use voltmesh_engine::{Money, ParticipantId, Trade};
use voltmesh_wire::bill::{Bill, BillsRecord, IntervalBills, PartyLine};
use voltmesh_wire::Genesis;

use super::deliveries::window_of;
use super::{BlockRejection, LedgerState};

/// Every party's exact amount not billed yet ([`voltmesh_engine::rounding`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Carries {
    /// Participants with a non-zero carry.
    pub participants: BTreeMap<ParticipantId, Money>,
    /// The utility's.
    pub utility: Money,
    /// The network operator's.
    pub network: Money,
    /// Participants with a non-zero correction carry ([`voltmesh_wire::correction`]).
    pub corrections: BTreeMap<ParticipantId, Money>,
    /// The utility's correction carry.
    pub utility_corrections: Money,
}

impl LedgerState {
    /// The trades of the cleared intervals waiting for their bills, oldest first.
    pub fn settling(&self) -> impl Iterator<Item = (i64, &[Trade])> + '_ {
        self.settling
            .iter()
            .map(|(&start, trades)| (start, &trades[..]))
    }

    /// Every party's exact amount not billed yet.
    pub fn carries(&self) -> &Carries {
        &self.carries
    }

    /// When the next interval waiting for its bills may be settled (ms): just after its delivery
    /// window closes. A block then is due even if nothing else is.
    pub fn next_settlement_ms(&self, genesis: &Genesis) -> Option<u64> {
        let first_settling = self.settling.keys().next().copied();
        let first_delivered = self.deliveries.keys().next().map(|(start, _)| *start);
        let start = match (first_settling, first_delivered) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        window_of(genesis, start).map(|(_, closes)| closes + 1)
    }

    /// Records a cleared interval's trades until its window closes.
    pub(super) fn hold_for_settlement(&mut self, interval_start: i64, trades: &[Trade]) {
        if !trades.is_empty() {
            Arc::make_mut(&mut self.settling).insert(interval_start, trades.into());
        }
    }

    /// Settles every interval whose delivery window closed before `block_ms` and that is
    /// cleared, oldest first, and forgets its trades, deliveries and published tariffs.
    ///
    /// # Errors
    /// [`BlockRejection::Unbalanced`] if a settlement does not balance (never, by the engine's
    /// settlement rule; checked because money is at stake).
    pub(super) fn settle_closed_windows(
        &mut self,
        genesis: &Genesis,
        block_ms: u64,
    ) -> Result<Vec<IntervalBills>, BlockRejection> {
        let closed =
            |start: i64| window_of(genesis, start).is_none_or(|(_, closes)| closes < block_ms);
        let first_open_book = self.books.keys().next().copied().unwrap_or(i64::MAX);
        let due = |start: i64| closed(start) && start < first_open_book;
        let mut starts: Vec<i64> = self
            .settling
            .keys()
            .copied()
            .take_while(|&s| due(s))
            .collect();
        let mut last = None;
        for (start, _) in self.deliveries.keys() {
            if !due(*start) {
                break;
            }
            if last != Some(*start) {
                starts.push(*start);
                last = Some(*start);
            }
        }
        starts.sort_unstable();
        starts.dedup();
        self.forget_uncorrectable(genesis, block_ms);
        let mut settled = Vec::with_capacity(starts.len());
        for start in starts {
            let bills = self.settle_interval(genesis, start)?;
            self.keep_correctable(&bills);
            settled.push(bills);
        }
        // Published tariffs of intervals that can no longer be billed are not needed any more.
        let spec = genesis.market.interval;
        let window_ms =
            (i64::from(spec.length_secs()) + i64::from(genesis.deliveries.window_secs)) * 1000;
        let through = (i64::try_from(block_ms).unwrap_or(i64::MAX) - window_ms)
            .div_euclid(1000)
            .min(first_open_book.saturating_sub(1));
        if self.community.has_prices_through(through) {
            Arc::make_mut(&mut self.community).forget_prices_through(through);
        }
        Ok(settled)
    }

    /// Settles one cleared interval (module docs) and forgets what it needed.
    fn settle_interval(
        &mut self,
        genesis: &Genesis,
        start: i64,
    ) -> Result<IntervalBills, BlockRejection> {
        let trades = Arc::make_mut(&mut self.settling)
            .remove(&start)
            .unwrap_or_default();
        let deliveries = Arc::make_mut(&mut self.deliveries);
        let mut from = deliveries.split_off(&(start, ParticipantId::from("")));
        let later = from.split_off(&(start.saturating_add(1), ParticipantId::from("")));
        deliveries.extend(later);
        // Readings: the deliveries', then each trader without one at its contract.
        let mut metered: BTreeMap<ParticipantId, i64> = from
            .into_iter()
            .map(|((_, participant), m)| {
                let net = i128::from(m.export_wh) - i128::from(m.import_wh);
                (participant, i64::try_from(net).unwrap_or(0))
            })
            .collect();
        let mut contracts: BTreeMap<&ParticipantId, i64> = BTreeMap::new();
        for trade in trades.iter() {
            let wh = i64::try_from(trade.quantity_wh).unwrap_or(i64::MAX);
            *contracts.entry(&trade.seller).or_insert(0) += wh;
            *contracts.entry(&trade.buyer).or_insert(0) -= wh;
        }
        let unmetered: Vec<ParticipantId> = contracts
            .keys()
            .filter(|p| !metered.contains_key(**p))
            .map(|p| (*p).clone())
            .collect();
        for participant in &unmetered {
            metered.insert(participant.clone(), contracts[participant]);
        }
        let rules = self.community.rules_for(start);
        let tariffs = rules.rules.tariffs;
        let settlement =
            voltmesh_engine::settlement::settle(&trades, &metered, tariffs, rules.network_fee)
                .map_err(|e| BlockRejection::Malformed(format!("settlement: {e}")))?;
        let imbalance = settlement.imbalance();
        if imbalance != Money::ZERO {
            return Err(BlockRejection::Unbalanced {
                interval_start: start,
                imbalance,
            });
        }
        let decimals = genesis.currency.minor_unit_decimals();
        let carries = Arc::make_mut(&mut self.carries);
        let round = |exact: Money, carry: &mut Money| {
            let line = round_line(exact, *carry, decimals);
            *carry = line.carry_out;
            line.billed(decimals)
        };
        let bills = settlement
            .bills
            .into_iter()
            .map(|bill| {
                let mut carry = carries
                    .participants
                    .get(&bill.participant)
                    .copied()
                    .unwrap_or(Money::ZERO);
                let billed = round(bill.total, &mut carry);
                if carry == Money::ZERO {
                    carries.participants.remove(&bill.participant);
                } else {
                    carries.participants.insert(bill.participant.clone(), carry);
                }
                let net = bill.metered_net_export_wh;
                let no_market = voltmesh_engine::settlement::no_market(net, tariffs);
                Bill {
                    metered: unmetered.binary_search(&bill.participant).is_err(),
                    participant: bill.participant,
                    bought_wh: bill.bought_wh,
                    sold_wh: bill.sold_wh,
                    metered_net_export_wh: net,
                    from_utility_wh: bill.from_utility_wh,
                    to_utility_wh: bill.to_utility_wh,
                    local_energy: bill.local_energy,
                    network_fees: bill.network_fees,
                    utility: bill.utility,
                    total: bill.total,
                    billed,
                    carry,
                    no_market,
                }
            })
            .collect();
        let line = |revenue: Money, carry: &mut Money| PartyLine {
            revenue,
            billed: round(revenue, carry),
            carry: *carry,
        };
        let utility = line(settlement.utility_revenue, &mut carries.utility);
        let network = line(settlement.network_revenue, &mut carries.network);
        Ok(IntervalBills {
            interval_start: start,
            currency: genesis.currency,
            feed_in: tariffs.feed_in,
            retail: tariffs.retail,
            network_fee: rules.network_fee,
            bills,
            utility,
            network,
        })
    }

    /// Settles what is due at `block_ms` and checks the result against the records a block
    /// carries.
    ///
    /// # Errors
    /// [`BlockRejection::WrongBills`] if the records differ, or as
    /// [`LedgerState::settle_closed_windows`].
    pub(super) fn settle_checked(
        &mut self,
        genesis: &Genesis,
        block_ms: u64,
        records: &[BillsRecord],
    ) -> Result<Vec<IntervalBills>, BlockRejection> {
        let bills = self.settle_closed_windows(genesis, block_ms)?;
        if bills.len() != records.len()
            || bills
                .iter()
                .zip(records)
                .any(|(b, r)| BillsRecord::of(b) != *r)
        {
            return Err(BlockRejection::WrongBills {
                expected: bills.len(),
                got: records.len(),
            });
        }
        Ok(bills)
    }
}
