//! What the node API reads: committed clearings by interval, trades and balances by participant,
//! where each committed order is, and the committed bills ([`bills`]); kept on disk in the node's redb store, next to the blocks.
//!
//! # Invariants
//! - The index is a pure function of the committed chain up to [`Index::height`]: blocks are
//!   applied once each, in height order, and `height` is written in the same transaction as
//!   what a block adds.
//! - Index transactions are not flushed on their own (redb's eventual durability): the block
//!   commit that follows makes them durable. After a crash the index may be behind the stored
//!   chain, never ahead; the node re-applies the blocks above [`Index::height`] at startup.
//! - Memory does not grow with history: every lookup is a range or point read of a B-tree
//!   keyed by what it asks for (participant, interval, order id), so it costs the same at
//!   height 100 and at height 10 million.

use std::collections::BTreeMap;
use std::sync::Arc;

use redb::{Database, Durability, ReadableTable, TableDefinition};
use voltmesh_engine::ParticipantId;
use voltmesh_wire::api::{
    Balance, OrderState, OrderStatusEntry, OrderStatusView, ParticipantTrade,
};
use voltmesh_wire::IntervalClearing;

pub mod bills;
pub mod corrections;

use crate::ledger::{CommittedBlock, LedgerApp};
use crate::store::StoreError;

/// Interval start → the clearing, JSON.
const CLEARINGS: TableDefinition<'_, i64, &[u8]> = TableDefinition::new("index_clearings");
/// (participant, interval start, n-th trade of the participant in the interval) → the trade,
/// JSON.
const TRADES: TableDefinition<'_, (&str, i64, u32), &[u8]> = TableDefinition::new("index_trades");
/// Participant → balance, JSON.
const BALANCES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("index_balances");
/// (participant, order id, interval start) → (height, block hash) of the block holding it.
const ORDERS: TableDefinition<'_, (&str, &str, i64), (u64, [u8; 32])> =
    TableDefinition::new("index_orders");
/// Counters: `height`, `orders`, `last_commit_ms`.
const COUNTERS: TableDefinition<'_, &str, u64> = TableDefinition::new("index_counters");

/// Most trades one participant page holds, unless one interval alone has more.
pub const MAX_TRADES_PAGE: usize = 10_000;

fn db_err<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Database(e.to_string())
}

fn corrupt(what: &'static str) -> impl FnOnce(serde_json::Error) -> StoreError {
    move |e| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    }
}

/// One page of a participant's trades, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TradePage {
    /// The trades.
    pub trades: Vec<ParticipantTrade>,
    /// The interval the next page starts at, if the range holds more.
    pub next_from: Option<i64>,
}

/// The API's read model, on disk.
#[derive(Debug)]
pub struct Index {
    db: Arc<Database>,
    height: u64,
    orders_committed: u64,
    last_commit_ms: Option<u64>,
}

impl Index {
    /// The index kept in `db` (the node's store), creating its tables on first use.
    ///
    /// # Errors
    /// [`StoreError::Database`] if the tables cannot be created or read.
    pub fn open(db: Arc<Database>) -> Result<Index, StoreError> {
        let tx = db.begin_write().map_err(db_err)?;
        tx.open_table(CLEARINGS).map_err(db_err)?;
        tx.open_table(TRADES).map_err(db_err)?;
        tx.open_table(BALANCES).map_err(db_err)?;
        tx.open_table(ORDERS).map_err(db_err)?;
        bills::create_tables(&tx)?;
        corrections::create_tables(&tx)?;
        let (height, orders, last) = {
            let counters = tx.open_table(COUNTERS).map_err(db_err)?;
            let read = |key: &str| -> Result<Option<u64>, StoreError> {
                Ok(counters.get(key).map_err(db_err)?.map(|v| v.value()))
            };
            (read("height")?, read("orders")?, read("last_commit_ms")?)
        };
        tx.commit().map_err(db_err)?;
        Ok(Index {
            db,
            height: height.unwrap_or(0),
            orders_committed: orders.unwrap_or(0),
            last_commit_ms: last,
        })
    }

    /// An index in memory (tests and tools).
    ///
    /// # Panics
    /// If redb cannot create an in-memory database.
    #[must_use]
    pub fn in_memory() -> Index {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .expect("in-memory redb");
        Index::open(Arc::new(db)).expect("in-memory index")
    }

    /// Height of the last block applied (0: none).
    #[must_use]
    pub fn height(&self) -> u64 {
        self.height
    }

    /// Adds a committed block; a block at or below [`Index::height`] is skipped (already in).
    ///
    /// # Errors
    /// [`StoreError`] if the write fails or a stored record does not decode.
    pub fn apply(&mut self, block: &CommittedBlock) -> Result<(), StoreError> {
        if block.height <= self.height {
            return Ok(());
        }
        let mut tx = self.db.begin_write().map_err(db_err)?;
        tx.set_durability(Durability::Eventual);
        let orders_committed = self.orders_committed + block.orders.len() as u64;
        {
            let mut orders = tx.open_table(ORDERS).map_err(db_err)?;
            for order in &block.orders {
                let ticket = &order.ticket;
                orders
                    .insert(
                        (
                            ticket.participant.as_str(),
                            ticket.id.as_str(),
                            ticket.interval_start,
                        ),
                        (block.height, block.hash.0),
                    )
                    .map_err(db_err)?;
            }
            let mut clearings = tx.open_table(CLEARINGS).map_err(db_err)?;
            let mut trades = tx.open_table(TRADES).map_err(db_err)?;
            let mut balances = tx.open_table(BALANCES).map_err(db_err)?;
            let mut changed: BTreeMap<ParticipantId, Balance> = BTreeMap::new();
            for clearing in &block.clearings {
                let mut nth: BTreeMap<&ParticipantId, u32> = BTreeMap::new();
                for trade in &clearing.outcome.trades {
                    for (who, side) in [
                        (&trade.buyer, voltmesh_engine::Side::Buy),
                        (&trade.seller, voltmesh_engine::Side::Sell),
                    ] {
                        let n = nth.entry(who).or_default();
                        let entry = ParticipantTrade {
                            interval_start: clearing.interval_start,
                            side,
                            trade: trade.clone(),
                        };
                        let bytes = serde_json::to_vec(&entry).map_err(corrupt("trade"))?;
                        trades
                            .insert(
                                (who.as_str(), clearing.interval_start, *n),
                                bytes.as_slice(),
                            )
                            .map_err(db_err)?;
                        *n += 1;
                        if !changed.contains_key(who) {
                            let stored = read_balance(&balances, who)?;
                            changed.insert(who.clone(), stored);
                        }
                        let balance = changed.get_mut(who).expect("inserted above");
                        match side {
                            voltmesh_engine::Side::Buy => {
                                balance.bought_wh += trade.quantity_wh;
                                balance.net_paid += trade.value();
                                balance.paid += trade.value();
                            }
                            voltmesh_engine::Side::Sell => {
                                balance.sold_wh += trade.quantity_wh;
                                balance.net_paid -= trade.value();
                                balance.received += trade.value();
                            }
                        }
                    }
                }
                let bytes = serde_json::to_vec(clearing).map_err(corrupt("clearing"))?;
                clearings
                    .insert(clearing.interval_start, bytes.as_slice())
                    .map_err(db_err)?;
            }
            for (who, balance) in &changed {
                let bytes = serde_json::to_vec(balance).map_err(corrupt("balance"))?;
                balances
                    .insert(who.as_str(), bytes.as_slice())
                    .map_err(db_err)?;
            }
            bills::apply(&tx, block)?;
            corrections::apply(&tx, block)?;
            let mut counters = tx.open_table(COUNTERS).map_err(db_err)?;
            counters.insert("height", block.height).map_err(db_err)?;
            counters
                .insert("orders", orders_committed)
                .map_err(db_err)?;
            counters
                .insert("last_commit_ms", block.timestamp_ms)
                .map_err(db_err)?;
        }
        tx.commit().map_err(db_err)?;
        self.height = block.height;
        self.orders_committed = orders_committed;
        self.last_commit_ms = Some(block.timestamp_ms);
        Ok(())
    }

    /// The clearing of an interval.
    ///
    /// # Errors
    /// [`StoreError`] on a read failure or a record that does not decode.
    pub fn clearing(&self, interval_start: i64) -> Result<Option<IntervalClearing>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(CLEARINGS).map_err(db_err)?;
        table
            .get(interval_start)
            .map_err(db_err)?
            .map(|bytes| serde_json::from_slice(bytes.value()).map_err(corrupt("clearing")))
            .transpose()
    }

    /// `participant`'s trades of the intervals `from..to` (Unix seconds, either end open),
    /// oldest first, whole intervals at a time: at most `limit` trades (capped at
    /// [`MAX_TRADES_PAGE`]) unless the first interval alone has more.
    ///
    /// # Errors
    /// [`StoreError`] on a read failure or a record that does not decode.
    pub fn trades_of(
        &self,
        participant: &ParticipantId,
        from: Option<i64>,
        to: Option<i64>,
        limit: usize,
    ) -> Result<TradePage, StoreError> {
        let limit = limit.clamp(1, MAX_TRADES_PAGE);
        let who = participant.as_str();
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(TRADES).map_err(db_err)?;
        let start = (who, from.unwrap_or(i64::MIN), 0u32);
        let end = (who, to.unwrap_or(i64::MAX), 0u32);
        let mut page = TradePage::default();
        let mut current: Option<(i64, Vec<ParticipantTrade>)> = None;
        for entry in table.range(start..end).map_err(db_err)? {
            let (key, bytes) = entry.map_err(db_err)?;
            let (_, interval, _) = key.value();
            if current.as_ref().is_some_and(|(at, _)| *at != interval) {
                let (_, trades) = current.take().expect("checked");
                if !page.trades.is_empty() && page.trades.len() + trades.len() > limit {
                    page.next_from = trades.first().map(|t| t.interval_start);
                    return Ok(page);
                }
                page.trades.extend(trades);
                if page.trades.len() >= limit {
                    page.next_from = Some(interval);
                    return Ok(page);
                }
            }
            let trade: ParticipantTrade =
                serde_json::from_slice(bytes.value()).map_err(corrupt("trade"))?;
            current
                .get_or_insert_with(|| (interval, Vec::new()))
                .1
                .push(trade);
        }
        if let Some((interval, trades)) = current {
            if !page.trades.is_empty() && page.trades.len() + trades.len() > limit {
                page.next_from = Some(interval);
            } else {
                page.trades.extend(trades);
            }
        }
        Ok(page)
    }

    /// A participant's balance over every committed trade.
    ///
    /// # Errors
    /// [`StoreError`] on a read failure or a record that does not decode.
    pub fn balance_of(&self, participant: &ParticipantId) -> Result<Balance, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(BALANCES).map_err(db_err)?;
        read_balance(&table, participant)
    }

    /// What became of `participant`'s order `id` in every interval this node knows it in (or only
    /// in `interval`), oldest first; `None` if none. A committed order answers `committed`, one
    /// in `app`'s mempool `pending`, one `app` dropped recently `expired` (gate closed) or
    /// `refused`; the first of these that applies wins.
    ///
    /// # Errors
    /// [`StoreError`] on a read failure.
    pub fn order_status(
        &self,
        app: &LedgerApp,
        participant: &ParticipantId,
        id: &str,
        interval: Option<i64>,
    ) -> Result<Option<OrderStatusView>, StoreError> {
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
        {
            let tx = self.db.begin_read().map_err(db_err)?;
            let table = tx.open_table(ORDERS).map_err(db_err)?;
            let who = participant.as_str();
            let (low, high) = interval.map_or((i64::MIN, i64::MAX), |at| (at, at));
            for entry in table
                .range((who, id, low)..=(who, id, high))
                .map_err(db_err)?
            {
                let (key, value) = entry.map_err(db_err)?;
                let (_, _, start) = key.value();
                let (height, hash) = value.value();
                states.insert(
                    start,
                    OrderState::Committed {
                        height,
                        block_hash: hex::encode(hash),
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
        Ok((!orders.is_empty()).then(|| OrderStatusView {
            participant: participant.clone(),
            id: id.to_owned(),
            orders,
        }))
    }

    /// Time of the last committed block.
    #[must_use]
    pub fn last_commit_ms(&self) -> Option<u64> {
        self.last_commit_ms
    }

    /// Orders committed so far.
    #[must_use]
    pub fn orders_committed(&self) -> u64 {
        self.orders_committed
    }
}

fn read_balance(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    participant: &ParticipantId,
) -> Result<Balance, StoreError> {
    table
        .get(participant.as_str())
        .map_err(db_err)?
        .map(|bytes| serde_json::from_slice(bytes.value()).map_err(corrupt("balance")))
        .transpose()
        .map(Option::unwrap_or_default)
}

#[cfg(test)]
mod tests {
    use voltmesh_engine::{ClearingOutcome, Mechanism, Money, Trade};

    use crate::protocol::BlockHash;

    use super::*;

    /// A clearing of `start` where hh-1 sells to each of `buyers`, 100 Wh at 0.20.
    fn clearing(start: i64, buyers: &[&str]) -> IntervalClearing {
        let trades: Vec<Trade> = buyers
            .iter()
            .map(|buyer| Trade {
                buy_id: format!("{buyer}:b").as_str().into(),
                sell_id: "hh-1:s".into(),
                buyer: (*buyer).into(),
                seller: "hh-1".into(),
                quantity_wh: 100,
                price: "0.200000".parse().expect("price"),
            })
            .collect();
        IntervalClearing {
            withheld: None,
            interval_start: start,
            outcome: ClearingOutcome {
                volume_wh: 100 * trades.len() as u64,
                trades,
                clearing_price: Some("0.200000".parse().expect("price")),
                mechanism: Mechanism::default(),
                price_range: None,
                unfilled: Vec::new(),
            },
        }
    }

    fn block(height: u64, clearings: Vec<IntervalClearing>) -> CommittedBlock {
        CommittedBlock {
            height,
            hash: BlockHash([u8::try_from(height).expect("small"); 32]),
            timestamp_ms: height * 1_000,
            orders: Vec::new(),
            clearings,
            bills: Vec::new(),
            corrections: Vec::new(),
            snapshot: None,
        }
    }

    fn starts(page: &TradePage) -> Vec<i64> {
        page.trades.iter().map(|t| t.interval_start).collect()
    }

    #[test]
    fn paid_and_received_are_kept_apart_exactly() {
        // hh-1 sells 100 Wh at 0.20 to hh-2, then buys 300 Wh back from hh-2 at 1/3-ish
        // prices: paid and received each add up exactly, and their difference is net_paid.
        let mut index = Index::in_memory();
        let mut sold = clearing(900, &["hh-2"]);
        let price: voltmesh_engine::Price = "0.333333".parse().expect("price");
        let mut bought = clearing(1800, &["hh-2"]);
        for trade in &mut bought.outcome.trades {
            std::mem::swap(&mut trade.buyer, &mut trade.seller);
            trade.quantity_wh = 333;
            trade.price = price;
        }
        sold.outcome.trades[0].quantity_wh = 1;
        index.apply(&block(1, vec![sold])).expect("apply");
        index.apply(&block(2, vec![bought])).expect("apply");
        let hh1 = index.balance_of(&"hh-1".into()).expect("read");
        // 1 Wh at 0.20 = 0.0002; 333 Wh at 0.333333 = 0.110999889.
        assert_eq!(hh1.received.to_string(), "0.000200000");
        assert_eq!(hh1.paid.to_string(), "0.110999889");
        assert_eq!(hh1.net_paid, hh1.paid - hh1.received);
        let hh2 = index.balance_of(&"hh-2".into()).expect("read");
        assert_eq!((hh2.paid, hh2.received), (hh1.received, hh1.paid));
        assert_eq!(hh2.net_paid, hh2.paid - hh2.received);
    }

    #[test]
    fn trades_page_by_whole_intervals_and_balances_add_up() {
        let mut index = Index::in_memory();
        index
            .apply(&block(1, vec![clearing(900, &["hh-2", "hh-3"])]))
            .expect("apply");
        index
            .apply(&block(
                2,
                vec![clearing(1800, &["hh-2"]), clearing(2700, &["hh-3"])],
            ))
            .expect("apply");
        // Applying a block again (a replay after a crash) changes nothing.
        index
            .apply(&block(2, vec![clearing(1800, &["hh-2"])]))
            .expect("skip");
        assert_eq!(index.height(), 2);
        let seller = ParticipantId::from("hh-1");
        let all = index.trades_of(&seller, None, None, 100).expect("read");
        assert_eq!(starts(&all), [900, 900, 1800, 2700]);
        assert_eq!(all.next_from, None);
        // A page never splits an interval: 900 has two trades, so a limit of 1 still returns
        // both, and a limit of 3 stops before 2700.
        let first = index.trades_of(&seller, None, None, 1).expect("read");
        assert_eq!(
            (starts(&first), first.next_from),
            (vec![900, 900], Some(1800))
        );
        let three = index.trades_of(&seller, None, None, 3).expect("read");
        assert_eq!(
            (starts(&three), three.next_from),
            (vec![900, 900, 1800], Some(2700))
        );
        let rest = index.trades_of(&seller, Some(2700), None, 3).expect("read");
        assert_eq!((starts(&rest), rest.next_from), (vec![2700], None));
        let window = index
            .trades_of(&seller, Some(1800), Some(2700), 100)
            .expect("read");
        assert_eq!(starts(&window), [1800]);
        let balance = index.balance_of(&seller).expect("read");
        assert_eq!((balance.sold_wh, balance.bought_wh), (400, 0));
        assert_eq!(balance.net_paid.to_string(), "-0.080000000");
        let buyer = index.balance_of(&"hh-2".into()).expect("read");
        assert_eq!(
            (buyer.bought_wh, buyer.net_paid.to_string().as_str()),
            (200, "0.040000000")
        );
        assert_eq!(
            (buyer.paid, buyer.received),
            (Money::from_nanos(40_000_000), Money::ZERO)
        );
        assert_eq!(
            (balance.paid, balance.received),
            (Money::ZERO, Money::from_nanos(80_000_000))
        );
        assert_eq!(
            index.balance_of(&"nobody".into()).expect("read"),
            Balance::default()
        );
        assert_eq!(
            index.clearing(1800).expect("read"),
            Some(clearing(1800, &["hh-2"]))
        );
        assert_eq!(index.clearing(3600).expect("read"), None);
    }
}
