//! What the node API reads: committed clearings by interval and trades and balances by
//! participant, built from committed blocks.
//!
//! # Invariant
//! The index is a pure function of the committed chain: a restarted node rebuilds it by feeding
//! the committed blocks again, in height order.

use std::collections::BTreeMap;

use voltmesh_engine::ParticipantId;
use voltmesh_wire::api::{Balance, ParticipantTrade};
use voltmesh_wire::IntervalClearing;

use crate::ledger::CommittedBlock;

/// The API's read model.
#[derive(Debug, Default)]
pub struct Index {
    clearings: BTreeMap<i64, IntervalClearing>,
    trades: BTreeMap<ParticipantId, Vec<ParticipantTrade>>,
    balances: BTreeMap<ParticipantId, Balance>,
    last_commit_ms: Option<u64>,
    orders_committed: u64,
}

impl Index {
    /// Adds a committed block.
    pub fn apply(&mut self, block: &CommittedBlock) {
        self.last_commit_ms = Some(block.timestamp_ms);
        self.orders_committed += block.orders.len() as u64;
        for clearing in &block.clearings {
            for trade in &clearing.outcome.trades {
                for (who, side) in [
                    (&trade.buyer, voltmesh_engine::Side::Buy),
                    (&trade.seller, voltmesh_engine::Side::Sell),
                ] {
                    self.trades
                        .entry(who.clone())
                        .or_default()
                        .push(ParticipantTrade {
                            interval_start: clearing.interval_start,
                            side,
                            trade: trade.clone(),
                        });
                    let balance = self.balances.entry(who.clone()).or_default();
                    match side {
                        voltmesh_engine::Side::Buy => {
                            balance.bought_wh += trade.quantity_wh;
                            balance.net_paid += trade.value();
                        }
                        voltmesh_engine::Side::Sell => {
                            balance.sold_wh += trade.quantity_wh;
                            balance.net_paid -= trade.value();
                        }
                    }
                }
            }
            self.clearings
                .insert(clearing.interval_start, clearing.clone());
        }
    }

    /// The clearing of an interval.
    pub fn clearing(&self, interval_start: i64) -> Option<&IntervalClearing> {
        self.clearings.get(&interval_start)
    }

    /// A participant's trades, oldest first.
    pub fn trades_of(&self, participant: &ParticipantId) -> &[ParticipantTrade] {
        self.trades.get(participant).map_or(&[], Vec::as_slice)
    }

    /// A participant's balance.
    pub fn balance_of(&self, participant: &ParticipantId) -> Balance {
        self.balances.get(participant).cloned().unwrap_or_default()
    }

    /// Time of the last committed block.
    pub fn last_commit_ms(&self) -> Option<u64> {
        self.last_commit_ms
    }

    /// Orders committed so far.
    pub fn orders_committed(&self) -> u64 {
        self.orders_committed
    }
}
