//! What the node API reads: committed clearings by interval and trades and balances by
//! participant, built from committed blocks.
//!
//! # Invariant
//! The index is a pure function of the committed chain: a restarted node rebuilds it by feeding
//! the committed blocks again, in height order.

use std::collections::BTreeMap;

use voltmesh_engine::{OrderId, ParticipantId};
use voltmesh_wire::api::{
    Balance, OrderState, OrderStatusEntry, OrderStatusView, ParticipantTrade,
};
use voltmesh_wire::IntervalClearing;

use crate::ledger::{CommittedBlock, LedgerApp};
use crate::protocol::BlockHash;

/// The API's read model.
#[derive(Debug, Default)]
pub struct Index {
    clearings: BTreeMap<i64, IntervalClearing>,
    trades: BTreeMap<ParticipantId, Vec<ParticipantTrade>>,
    balances: BTreeMap<ParticipantId, Balance>,
    last_commit_ms: Option<u64>,
    orders_committed: u64,
    /// Where each committed order is: (participant, id) → interval → (height, block hash).
    committed_orders: BTreeMap<(ParticipantId, OrderId), BTreeMap<i64, (u64, BlockHash)>>,
}

impl Index {
    /// Adds a committed block.
    pub fn apply(&mut self, block: &CommittedBlock) {
        self.last_commit_ms = Some(block.timestamp_ms);
        self.orders_committed += block.orders.len() as u64;
        for order in &block.orders {
            let ticket = &order.ticket;
            self.committed_orders
                .entry((ticket.participant.clone(), ticket.id.clone()))
                .or_default()
                .insert(ticket.interval_start, (block.height, block.hash));
        }
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

    /// What became of `participant`'s order `id` in every interval this node knows it in (or only
    /// in `interval`), oldest first; `None` if none. A committed order answers `committed`, one
    /// in `app`'s mempool `pending`, one `app` dropped recently `expired` (gate closed) or
    /// `refused`; the first of these that applies wins.
    pub fn order_status(
        &self,
        app: &LedgerApp,
        participant: &ParticipantId,
        id: &str,
        interval: Option<i64>,
    ) -> Option<OrderStatusView> {
        let mut states: BTreeMap<i64, OrderState> = BTreeMap::new();
        for dropped in app.dropped() {
            let (who, start, order_id) = &dropped.key;
            if who == participant && order_id.as_str() == id {
                let reason = dropped.reason.kind().to_owned();
                let message = dropped.reason.to_string();
                let state = if reason == "closed_interval" {
                    OrderState::Expired { reason, message }
                } else {
                    OrderState::Refused { reason, message }
                };
                states.insert(*start, state);
            }
        }
        for start in app.mempool().pending_intervals(participant, id) {
            states.insert(start, OrderState::Pending);
        }
        if let Some(found) = self
            .committed_orders
            .get(&(participant.clone(), OrderId::from(id)))
        {
            for (&start, (height, hash)) in found {
                states.insert(
                    start,
                    OrderState::Committed {
                        height: *height,
                        block_hash: hex::encode(hash.0),
                    },
                );
            }
        }
        let orders: Vec<OrderStatusEntry> = states
            .into_iter()
            .filter(|(start, _)| interval.is_none_or(|wanted| wanted == *start))
            .map(|(interval_start, status)| OrderStatusEntry {
                interval_start,
                status,
            })
            .collect();
        (!orders.is_empty()).then(|| OrderStatusView {
            participant: participant.clone(),
            id: id.to_owned(),
            orders,
        })
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
