//! Continuous double auction: a price-time priority limit order book that matches on arrival.
//!
//! # Ordering invariant
//! Each side is a `BTreeMap` from price to a `Level`; a level is a FIFO queue of resting orders in
//! arrival order. An incoming order trades with the best opposite level first and, within a level,
//! with the earliest arrival, at the resting order's price, while prices cross. Whatever is left
//! rests. After every command the book is uncrossed: best bid < best ask
//! ([`ContinuousBook::check_integrity`]).
//!
//! # Modify semantics
//! [`ContinuousBook::cancel`] withdraws a resting order. [`ContinuousBook::replace`] keeps the
//! order's time priority only when the price is unchanged and the quantity does not grow (a pure
//! reduction); any other change is a cancel followed by a fresh arrival with the same id, which may
//! trade at once. Ids stay reserved for the book's lifetime, so a filled or cancelled order can
//! never be replayed. [`ContinuousBook::close`] (gate closure) ends trading and returns what rests.
//!
//! # Known limitations
//! No self-trade prevention: a participant's bid can meet its own ask. There are no stop, iceberg
//! or immediate-or-cancel orders.
//!
//! # Performance
//! Submit is `O(log L + f)` for `L` price levels and `f` fills; cancel is `O(1)` expected to find
//! (hash index of `id → (side, price, position)`) plus `O(log L)` to reach the level. Cancelled
//! slots are tombstones, skipped when they reach the front of their queue. The `cda` bench measures
//! orders per second on a realistic mix.

use std::collections::{BTreeMap, VecDeque};

use rustc_hash::FxHashMap;

use crate::{
    ClearingOutcome, MarketRules, Mechanism, Order, OrderId, Price, RejectReason, Side, Trade,
    Unfilled, Wh,
};

/// Where a resting order sits.
#[derive(Debug, Clone, Copy)]
struct Loc {
    side: Side,
    price: i64,
    /// Absolute position in the level's queue (see [`Level::head`]).
    pos: u64,
}

/// All resting orders at one price, in arrival order.
#[derive(Debug, Default)]
struct Level {
    /// Resting orders; `None` marks a cancelled slot not yet popped.
    queue: VecDeque<Option<Order>>,
    /// Absolute position of `queue[0]`: how many slots were ever popped from the front.
    head: u64,
    /// Live (non-tombstone) orders in the queue.
    live: usize,
    /// Sum of live orders' remaining quantities.
    live_wh: Wh,
}

impl Level {
    fn pop_tombstones(&mut self) {
        while matches!(self.queue.front(), Some(None)) {
            self.queue.pop_front();
            self.head += 1;
        }
    }
}

/// What happened to a submitted order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Submitted {
    /// Energy that traded on arrival.
    pub filled_wh: Wh,
    /// Energy left resting in the book.
    pub resting_wh: Wh,
}

/// A continuous double auction for one interval.
#[derive(Debug, Default)]
pub struct ContinuousBook {
    rules: MarketRules,
    bids: BTreeMap<i64, Level>,
    asks: BTreeMap<i64, Level>,
    /// Every id ever seen: `Some` while resting, `None` once filled or cancelled.
    index: FxHashMap<OrderId, Option<Loc>>,
    /// Trades since the last [`ContinuousBook::take_trades`].
    trades: Vec<Trade>,
    closed: bool,
}

/// A broken book invariant (found by [`ContinuousBook::check_integrity`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookIntegrityError {
    /// Best bid ≥ best ask after matching.
    #[error("book is crossed: best bid {bid} ≥ best ask {ask}")]
    OrdersCrossed {
        /// Best bid.
        bid: Price,
        /// Best ask.
        ask: Price,
    },
    /// A level's cached totals disagree with its queue, or it is empty but still present.
    #[error("level {price} on the {side} side is inconsistent")]
    LevelTotals {
        /// Side.
        side: Side,
        /// Level price.
        price: Price,
    },
    /// The id index disagrees with the queues.
    #[error("index entry for {0:?} does not point at its order")]
    Index(OrderId),
}

impl ContinuousBook {
    /// An empty, open book that admits orders by `rules`.
    pub fn new(rules: MarketRules) -> Self {
        ContinuousBook {
            rules,
            ..ContinuousBook::default()
        }
    }

    /// Submits an order: it trades against resting orders it crosses, and any remainder rests.
    /// Trades are appended to the book's output ([`ContinuousBook::take_trades`]).
    ///
    /// # Errors
    /// [`RejectReason::Closed`] after gate closure, a broken [`MarketRules`] rule, or
    /// [`RejectReason::DuplicateId`] for an id this book has seen.
    pub fn submit(&mut self, order: Order) -> Result<Submitted, RejectReason> {
        if self.closed {
            return Err(RejectReason::Closed);
        }
        self.rules.admit(&order)?;
        if self.index.contains_key(&order.id) {
            return Err(RejectReason::DuplicateId(order.id));
        }
        Ok(self.arrive(order))
    }

    /// Matches an admitted order and rests the remainder.
    fn arrive(&mut self, mut order: Order) -> Submitted {
        let wanted = order.quantity_wh;
        let limit = order.limit_price.micros();
        let opposite = match order.side {
            Side::Buy => &mut self.asks,
            Side::Sell => &mut self.bids,
        };
        while order.quantity_wh > 0 {
            let entry = match order.side {
                Side::Buy => opposite.first_entry(),
                Side::Sell => opposite.last_entry(),
            };
            let Some(mut entry) = entry else { break };
            let level_price = *entry.key();
            let crosses = match order.side {
                Side::Buy => level_price <= limit,
                Side::Sell => level_price >= limit,
            };
            if !crosses {
                break;
            }
            let level = entry.get_mut();
            while order.quantity_wh > 0 {
                let Some(front) = level.queue.front_mut() else {
                    break;
                };
                let Some(resting) = front else {
                    level.queue.pop_front();
                    level.head += 1;
                    continue;
                };
                let q = order.quantity_wh.min(resting.quantity_wh);
                let (buy, sell) = match order.side {
                    Side::Buy => (&order, &*resting),
                    Side::Sell => (&*resting, &order),
                };
                self.trades.push(Trade {
                    buy_id: buy.id.clone(),
                    sell_id: sell.id.clone(),
                    buyer: buy.participant.clone(),
                    seller: sell.participant.clone(),
                    quantity_wh: q,
                    price: resting.limit_price,
                });
                resting.quantity_wh -= q;
                order.quantity_wh -= q;
                level.live_wh -= q;
                if resting.quantity_wh == 0 {
                    if let Some(Some(done)) = level.queue.pop_front() {
                        self.index.insert(done.id, None);
                    }
                    level.head += 1;
                    level.live -= 1;
                }
            }
            if level.live == 0 {
                entry.remove();
            } else {
                level.pop_tombstones();
            }
        }
        let resting_wh = order.quantity_wh;
        if resting_wh == 0 {
            self.index.insert(order.id, None);
        } else {
            let side = match order.side {
                Side::Buy => &mut self.bids,
                Side::Sell => &mut self.asks,
            };
            let level = side.entry(limit).or_default();
            let loc = Loc {
                side: order.side,
                price: limit,
                pos: level.head + level.queue.len() as u64,
            };
            level.live += 1;
            level.live_wh += resting_wh;
            self.index.insert(order.id.clone(), Some(loc));
            level.queue.push_back(Some(order));
        }
        Submitted {
            filled_wh: wanted - resting_wh,
            resting_wh,
        }
    }

    /// Withdraws a resting order and returns it with its remaining quantity.
    ///
    /// # Errors
    /// [`RejectReason::Closed`] after gate closure, [`RejectReason::UnknownOrder`] if no order
    /// with this id rests in the book.
    pub fn cancel(&mut self, id: &OrderId) -> Result<Order, RejectReason> {
        if self.closed {
            return Err(RejectReason::Closed);
        }
        let loc = self
            .index
            .get_mut(id)
            .and_then(Option::take)
            .ok_or_else(|| RejectReason::UnknownOrder(id.clone()))?;
        let side = match loc.side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        let mut entry = match side.entry(loc.price) {
            std::collections::btree_map::Entry::Occupied(e) => e,
            std::collections::btree_map::Entry::Vacant(_) => {
                return Err(RejectReason::UnknownOrder(id.clone()))
            }
        };
        let level = entry.get_mut();
        let slot = usize::try_from(loc.pos - level.head).unwrap_or(usize::MAX);
        let order = level
            .queue
            .get_mut(slot)
            .and_then(Option::take)
            .ok_or_else(|| RejectReason::UnknownOrder(id.clone()))?;
        level.live -= 1;
        level.live_wh -= order.quantity_wh;
        if level.live == 0 {
            entry.remove();
        } else {
            level.pop_tombstones();
        }
        Ok(order)
    }

    /// Changes a resting order's quantity and limit. A pure reduction (same price, quantity not
    /// above what rests) keeps time priority; anything else re-enters as a new arrival.
    ///
    /// # Errors
    /// As [`ContinuousBook::cancel`], or a rule the new order breaks (the old order is then left
    /// untouched).
    pub fn replace(
        &mut self,
        id: &OrderId,
        quantity_wh: Wh,
        limit_price: Price,
    ) -> Result<Submitted, RejectReason> {
        if self.closed {
            return Err(RejectReason::Closed);
        }
        let loc = self
            .index
            .get(id)
            .copied()
            .flatten()
            .ok_or_else(|| RejectReason::UnknownOrder(id.clone()))?;
        let side = match loc.side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        let level = side
            .get_mut(&loc.price)
            .ok_or_else(|| RejectReason::UnknownOrder(id.clone()))?;
        let slot = usize::try_from(loc.pos - level.head).unwrap_or(usize::MAX);
        let Some(Some(resting)) = level.queue.get_mut(slot) else {
            return Err(RejectReason::UnknownOrder(id.clone()));
        };
        let mut new = resting.clone();
        new.quantity_wh = quantity_wh;
        new.limit_price = limit_price;
        self.rules.admit(&new)?;
        if limit_price.micros() == loc.price && quantity_wh <= resting.quantity_wh {
            level.live_wh -= resting.quantity_wh - quantity_wh;
            resting.quantity_wh = quantity_wh;
            return Ok(Submitted {
                filled_wh: 0,
                resting_wh: quantity_wh,
            });
        }
        self.cancel(id)?;
        Ok(self.arrive(new))
    }

    /// Takes the trades produced since the last call, in execution order.
    pub fn take_trades(&mut self) -> Vec<Trade> {
        std::mem::take(&mut self.trades)
    }

    /// Best (highest) bid price.
    pub fn best_bid(&self) -> Option<Price> {
        self.bids
            .keys()
            .next_back()
            .map(|&p| Price::from_micros(p).unwrap_or(Price::MAX))
    }

    /// Best (lowest) ask price.
    pub fn best_ask(&self) -> Option<Price> {
        self.asks
            .keys()
            .next()
            .map(|&p| Price::from_micros(p).unwrap_or(Price::MIN))
    }

    /// Whether gate closure has passed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Closes the book at gate closure: no more orders, cancels or trades. Returns the resting
    /// orders, bids in priority order then asks.
    pub fn close(&mut self) -> Vec<Unfilled> {
        self.closed = true;
        let bids = std::mem::take(&mut self.bids);
        let asks = std::mem::take(&mut self.asks);
        let levels = bids.into_values().rev().chain(asks.into_values());
        let mut out = Vec::new();
        for level in levels {
            for order in level.queue.into_iter().flatten() {
                self.index.insert(order.id.clone(), None);
                out.push(Unfilled {
                    id: order.id,
                    side: order.side,
                    remaining_wh: order.quantity_wh,
                });
            }
        }
        out
    }

    /// Checks the book's invariants; tests call it after every command.
    ///
    /// # Errors
    /// The first broken invariant.
    // Counting index entries and picking the least stray id do not depend on iteration order.
    #[allow(clippy::disallowed_methods)]
    pub fn check_integrity(&self) -> Result<(), BookIntegrityError> {
        if let (Some(bid), Some(ask)) = (self.best_bid(), self.best_ask()) {
            if bid >= ask {
                return Err(BookIntegrityError::OrdersCrossed { bid, ask });
            }
        }
        let mut live = 0;
        for (side, levels) in [(Side::Buy, &self.bids), (Side::Sell, &self.asks)] {
            for (&price, level) in levels {
                let orders: Vec<&Order> = level.queue.iter().flatten().collect();
                let wh: Wh = orders.iter().map(|o| o.quantity_wh).sum();
                let consistent = level.live == orders.len()
                    && level.live_wh == wh
                    && level.live > 0
                    && !matches!(level.queue.front(), Some(None))
                    && orders.iter().all(|o| {
                        o.side == side && o.limit_price.micros() == price && o.quantity_wh > 0
                    });
                if !consistent {
                    return Err(BookIntegrityError::LevelTotals {
                        side,
                        price: Price::from_micros(price).unwrap_or_default(),
                    });
                }
                for (slot, order) in level.queue.iter().enumerate() {
                    let Some(order) = order else { continue };
                    let at = self.index.get(&order.id).copied().flatten();
                    match at {
                        Some(loc)
                            if loc.side == side
                                && loc.price == price
                                && loc.pos == level.head + slot as u64 => {}
                        _ => return Err(BookIntegrityError::Index(order.id.clone())),
                    }
                }
                live += orders.len();
            }
        }
        // Every id the index calls resting was found above.
        let indexed = self.index.values().filter(|loc| loc.is_some()).count();
        if indexed != live {
            let stray = self
                .index
                .iter()
                .filter(|(_, loc)| loc.is_some())
                .map(|(id, _)| id.clone())
                .min()
                .unwrap_or_else(|| OrderId::from(""));
            return Err(BookIntegrityError::Index(stray));
        }
        Ok(())
    }
}

/// Replays admitted orders through a fresh book in submission order (sequence, then id) and closes
/// it: the continuous market that these arrivals would have produced.
pub fn replay(rules: MarketRules, orders: &[Order]) -> ClearingOutcome {
    let mut arrivals: Vec<&Order> = orders.iter().collect();
    arrivals.sort_unstable_by(|a, b| (a.seq, &a.id).cmp(&(b.seq, &b.id)));
    let mut book = ContinuousBook::new(rules);
    for order in arrivals {
        // Orders were admitted by the caller's book under the same rules; a rejection here can only
        // be a duplicate id, which the caller's book already refused.
        let _ = book.submit(order.clone());
    }
    let unfilled = book.close();
    let trades = book.take_trades();
    ClearingOutcome {
        mechanism: Mechanism::Continuous,
        clearing_price: None,
        price_range: None,
        volume_wh: trades.iter().map(|t| t.quantity_wh).sum(),
        trades,
        unfilled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_books::book;

    fn p(s: &str) -> Price {
        s.parse().unwrap()
    }

    #[test]
    fn trades_at_the_resting_price_in_time_priority() {
        let mut book_ = ContinuousBook::new(MarketRules::PERMISSIVE);
        let orders = book(&[(15, "30")], &[(5, "20"), (5, "20"), (5, "18")]);
        for ask in &orders[1..] {
            book_.submit(ask.clone()).unwrap();
        }
        let got = book_.submit(orders[0].clone()).unwrap();
        assert_eq!(
            got,
            Submitted {
                filled_wh: 15,
                resting_wh: 0
            }
        );
        let trades = book_.take_trades();
        let seen: Vec<(&str, Price)> = trades
            .iter()
            .map(|t| (t.sell_id.as_str(), t.price))
            .collect();
        assert_eq!(seen, [("a2", p("18")), ("a0", p("20")), ("a1", p("20"))]);
        book_.check_integrity().unwrap();
    }

    #[test]
    fn remainder_rests_and_the_book_stays_uncrossed() {
        let mut b = ContinuousBook::new(MarketRules::PERMISSIVE);
        let orders = book(&[(10, "25")], &[(4, "20"), (10, "26")]);
        b.submit(orders[1].clone()).unwrap();
        b.submit(orders[2].clone()).unwrap();
        assert_eq!(
            b.submit(orders[0].clone()).unwrap(),
            Submitted {
                filled_wh: 4,
                resting_wh: 6
            }
        );
        assert_eq!(b.best_bid(), Some(p("25")));
        assert_eq!(b.best_ask(), Some(p("26")));
        b.check_integrity().unwrap();
        let rest = b.close();
        assert_eq!(rest.len(), 2);
        assert_eq!((rest[0].id.as_str(), rest[0].remaining_wh), ("b0", 6));
        assert_eq!(b.submit(orders[0].clone()), Err(RejectReason::Closed));
    }

    #[test]
    fn cancel_and_replace() {
        let mut b = ContinuousBook::new(MarketRules::PERMISSIVE);
        let orders = book(&[(5, "10"), (5, "10"), (5, "11")], &[(7, "12")]);
        for o in &orders {
            b.submit(o.clone()).unwrap();
        }
        // Reducing b0 keeps it ahead of b1.
        b.replace(&orders[0].id, 3, p("10")).unwrap();
        b.check_integrity().unwrap();
        // Cancel the best bid; the remaining best is 10.
        assert_eq!(b.cancel(&orders[2].id).unwrap().quantity_wh, 5);
        assert!(matches!(
            b.cancel(&orders[2].id),
            Err(RejectReason::UnknownOrder(_))
        ));
        assert_eq!(b.best_bid(), Some(p("10")));
        // Re-pricing the ask down to 10 crosses: it trades with b0 (3 Wh) then b1 (4 Wh).
        let got = b.replace(&orders[3].id, 7, p("10")).unwrap();
        assert_eq!(got.filled_wh, 7);
        let fills: Vec<(String, u64)> = b
            .take_trades()
            .iter()
            .map(|t| (t.buy_id.to_string(), t.quantity_wh))
            .collect();
        assert_eq!(fills, [("b0".to_string(), 3), ("b1".to_string(), 4)]);
        b.check_integrity().unwrap();
        // A filled id can never come back.
        assert!(matches!(
            b.submit(orders[0].clone()),
            Err(RejectReason::DuplicateId(_))
        ));
    }

    #[test]
    fn replay_orders_by_sequence() {
        let orders = book(&[(10, "30")], &[(10, "20")]);
        let out = replay(MarketRules::PERMISSIVE, &orders);
        // The bid arrived first and rests; the ask trades at the bid's price.
        assert_eq!(out.trades[0].price, p("30"));
        assert_eq!(out.volume_wh, 10);
    }
}
