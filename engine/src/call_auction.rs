//! The book of one interval in a periodic auction: orders collect until gate closure, then clear at
//! once.
//!
//! # Modify semantics
//! An order may be cancelled before clearing; a replacement is a cancel followed by a new order
//! with a new sequence, so it loses its time priority. Ids stay unique for the life of the book,
//! including ids of cancelled orders, so a replayed order can never re-enter.
//!
//! # Known limitations
//! The book holds one interval; the caller keeps one book per open interval. A book holds fewer
//! than `u32::MAX` live orders.
//!
//! # Performance
//! `submit` and `cancel` are `O(1)` expected (a hash index, never iterated; amortised compaction of
//! cancelled keys). Each side keeps its priority keys in arrival order with a radix histogram of
//! their ranks, so that clearing only scatters the keys into price order and walks them. While
//! orders arrive in increasing sequence (as a ledger assigns it) arrival order breaks price ties;
//! one order arriving out of sequence switches the book to a comparison sort for good.
//! The id index hashes with std's randomly keyed SipHash by default, since ids come from the
//! network; a caller whose ids are its own (the simulation) may pick a faster hasher with
//! [`CallAuction::with_capacity_and_hasher`]. [`CallAuction::reset`] empties a book for the next
//! interval without giving its memory back.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use crate::key::{self, Key, TOMBSTONE};
use crate::radix::{self, Histogram};
use crate::walk::{sort_by_priority, Sides};
use crate::{
    pay_as_bid, uniform, ClearingOutcome, MarketRules, Matching, Mechanism, Order, OrderId,
    PayAsBidPricing, RejectReason, Side, K,
};

/// A side with at least this many keys keeps a radix histogram; smaller sides clear with a
/// comparison sort.
const RADIX_MIN_KEYS: usize = 512;

/// Orders for one interval of a periodic auction.
#[derive(Debug, Clone)]
pub struct CallAuction<S = RandomState> {
    rules: MarketRules,
    orders: Vec<Order>,
    /// Position in `orders` of each live order; `None` for a cancelled id (kept so it cannot
    /// return).
    index: HashMap<OrderId, Option<usize>, S>,
    /// For each order in `orders`, the position of its key in its side's queue.
    key_pos: Vec<u32>,
    bids: Queue,
    asks: Queue,
    /// The highest sequence submitted so far, cancelled orders included.
    last_seq: Option<u64>,
    /// Whether every order arrived with a higher sequence than all before it, so that arrival
    /// order is priority order among equal prices.
    arrival_is_priority: bool,
}

/// One side's priority keys.
///
/// # Invariants
/// `keys` holds a key for every live order of the side in arrival order, plus tombstones for
/// cancelled ones; `live` counts the others, and `hist` (once present) counts exactly their ranks.
/// Each live key's index is its order's position in the book's `orders`.
#[derive(Debug, Clone, Default)]
struct Queue {
    keys: Vec<Key>,
    live: usize,
    hist: Option<Histogram>,
}

impl Queue {
    /// Appends a key and returns its position.
    fn push(&mut self, key: Key) -> u32 {
        let pos = u32::try_from(self.keys.len()).unwrap_or(u32::MAX);
        self.keys.push(key);
        self.live += 1;
        match &mut self.hist {
            Some(hist) => hist.add(key::rank(key)),
            None if self.keys.len() >= RADIX_MIN_KEYS => {
                let mut hist = Histogram::new();
                for &k in self.keys.iter().filter(|&&k| key::raw_idx(k) != TOMBSTONE) {
                    hist.add(key::rank(k));
                }
                self.hist = Some(hist);
            }
            None => {}
        }
        pos
    }

    /// Turns the live key at `pos` into a tombstone.
    fn remove(&mut self, pos: u32) {
        if let Some(k) = self.keys.get_mut(pos as usize) {
            if key::raw_idx(*k) != TOMBSTONE {
                if let Some(hist) = &mut self.hist {
                    hist.remove(key::rank(*k));
                }
                *k = key::with_idx(*k, TOMBSTONE);
                self.live -= 1;
            }
        }
    }

    /// Points the key at `pos` to the order now at `idx`.
    fn repoint(&mut self, pos: u32, idx: u32) {
        if let Some(k) = self.keys.get_mut(pos as usize) {
            *k = key::with_idx(*k, idx);
        }
    }

    /// Drops tombstones once they outnumber the live keys, recording the keys' new positions in
    /// `key_pos`.
    fn compact_if_sparse(&mut self, key_pos: &mut [u32]) {
        if self.keys.len() < 64 || self.keys.len() - self.live <= self.live {
            return;
        }
        self.keys.retain(|&k| key::raw_idx(k) != TOMBSTONE);
        for (pos, &k) in self.keys.iter().enumerate() {
            if let Some(slot) = key_pos.get_mut(key::idx(k)) {
                *slot = u32::try_from(pos).unwrap_or(u32::MAX);
            }
        }
    }

    /// The live keys by priority.
    fn sorted(&self, orders: &[Order], arrival_is_priority: bool) -> Vec<Key> {
        match &self.hist {
            Some(hist) if arrival_is_priority => radix::sort_live(&self.keys, self.live, hist),
            _ => {
                let mut keys: Vec<Key> = self
                    .keys
                    .iter()
                    .copied()
                    .filter(|&k| key::raw_idx(k) != TOMBSTONE)
                    .collect();
                if arrival_is_priority {
                    keys.sort_by_key(|&k| key::rank(k));
                } else {
                    sort_by_priority(&mut keys, orders);
                }
                keys
            }
        }
    }
}

impl Default for CallAuction {
    fn default() -> Self {
        CallAuction::new(MarketRules::default())
    }
}

impl CallAuction {
    /// An empty book that admits orders by `rules`.
    pub fn new(rules: MarketRules) -> Self {
        CallAuction::with_capacity(rules, 0)
    }

    /// An empty book with room for `n` orders.
    pub fn with_capacity(rules: MarketRules, n: usize) -> Self {
        CallAuction::with_capacity_and_hasher(rules, n, RandomState::new())
    }
}

impl<S: BuildHasher> CallAuction<S> {
    /// An empty book with room for `n` orders whose id index hashes with `hasher`. Clearing does
    /// not depend on the hasher (the index is never iterated).
    pub fn with_capacity_and_hasher(rules: MarketRules, n: usize, hasher: S) -> Self {
        CallAuction {
            rules,
            orders: Vec::with_capacity(n),
            index: HashMap::with_capacity_and_hasher(n, hasher),
            key_pos: Vec::with_capacity(n),
            bids: Queue::default(),
            asks: Queue::default(),
            last_seq: None,
            arrival_is_priority: true,
        }
    }

    /// Empties the book, cancelled ids included, for a new interval under the same rules: the
    /// book is then as new, but keeps the memory it had.
    pub fn reset(&mut self) {
        self.orders.clear();
        self.index.clear();
        self.key_pos.clear();
        for queue in [&mut self.bids, &mut self.asks] {
            queue.keys.clear();
            queue.live = 0;
            queue.hist = None;
        }
        self.last_seq = None;
        self.arrival_is_priority = true;
    }

    fn queue(&mut self, side: Side) -> &mut Queue {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// Adds an order.
    ///
    /// # Errors
    /// The rule it breaks ([`MarketRules::admit`]) or [`RejectReason::DuplicateId`] if the id was
    /// ever used in this book.
    pub fn submit(&mut self, order: Order) -> Result<(), RejectReason> {
        self.rules.admit(&order)?;
        let slot = self.orders.len();
        // One hash of the id for the duplicate check and the insert.
        match self.index.entry(order.id.clone()) {
            Entry::Occupied(_) => return Err(RejectReason::DuplicateId(order.id)),
            Entry::Vacant(entry) => {
                entry.insert(Some(slot));
            }
        }
        self.arrival_is_priority &= self.last_seq < Some(order.seq);
        self.last_seq = self.last_seq.max(Some(order.seq));
        let key = key::pack(&order, u32::try_from(slot).unwrap_or(u32::MAX));
        let pos = self.queue(order.side).push(key);
        self.key_pos.push(pos);
        self.orders.push(order);
        Ok(())
    }

    /// Withdraws a live order and returns it.
    ///
    /// # Errors
    /// [`RejectReason::UnknownOrder`] if no live order has this id.
    pub fn cancel(&mut self, id: &OrderId) -> Result<Order, RejectReason> {
        let slot = self
            .index
            .get_mut(id)
            .and_then(Option::take)
            .ok_or_else(|| RejectReason::UnknownOrder(id.clone()))?;
        let removed = self.orders.swap_remove(slot);
        let pos = self.key_pos.swap_remove(slot);
        self.queue(removed.side).remove(pos);
        if let Some(moved) = self.orders.get(slot) {
            let (moved_id, moved_side) = (moved.id.clone(), moved.side);
            let moved_pos = self.key_pos[slot];
            self.queue(moved_side)
                .repoint(moved_pos, u32::try_from(slot).unwrap_or(u32::MAX));
            self.index.insert(moved_id, Some(slot));
        }
        let queue = match removed.side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        queue.compact_if_sparse(&mut self.key_pos);
        Ok(removed)
    }

    /// Whether an order with this id was ever submitted to this book (live or cancelled).
    pub fn contains_id(&self, id: &OrderId) -> bool {
        self.index.contains_key(id)
    }

    /// The live orders, in no particular order.
    pub fn orders(&self) -> &[Order] {
        &self.orders
    }

    /// Number of live orders.
    pub fn len(&self) -> usize {
        self.orders.len()
    }

    /// Whether the book has no live orders.
    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    fn sides(&self) -> Sides {
        Sides {
            bids: self.bids.sorted(&self.orders, self.arrival_is_priority),
            asks: self.asks.sorted(&self.orders, self.arrival_is_priority),
        }
    }

    /// Clears the book at one price ([`crate::uniform`]), borrowing its orders.
    ///
    /// The result is the one [`uniform::match_orders`] gives for [`CallAuction::orders`].
    pub fn match_uniform(&self, k: K) -> Matching<'_> {
        uniform::match_sorted(&self.orders, self.sides(), k)
    }

    /// Clears the book pair by pair ([`crate::pay_as_bid`]), borrowing its orders.
    ///
    /// The result is the one [`pay_as_bid::match_orders`] gives for [`CallAuction::orders`].
    pub fn match_pay_as_bid(&self, pricing: PayAsBidPricing) -> Matching<'_> {
        pay_as_bid::match_sorted(&self.orders, self.sides(), pricing)
    }

    /// Clears the book with a periodic mechanism.
    ///
    /// # Panics
    /// Never; [`Mechanism::Continuous`] replays the orders by sequence (then id) through a
    /// [`crate::ContinuousBook`] and closes it, which is what a continuous market with these
    /// arrivals would have done.
    pub fn clear(&self, mechanism: Mechanism) -> ClearingOutcome {
        match mechanism {
            Mechanism::Uniform { k } => self.match_uniform(k).to_outcome(),
            Mechanism::PayAsBid { pricing } => self.match_pay_as_bid(pricing).to_outcome(),
            Mechanism::Continuous => crate::continuous::replay(self.rules, &self.orders),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_books::book;
    use crate::{Price, Tariffs, K};

    #[test]
    fn rejects_duplicates_even_after_cancel() {
        let orders = book(&[(10, "30")], &[(10, "20")]);
        let mut auction = CallAuction::new(MarketRules::PERMISSIVE);
        auction.submit(orders[0].clone()).unwrap();
        assert_eq!(
            auction.submit(orders[0].clone()),
            Err(RejectReason::DuplicateId(orders[0].id.clone()))
        );
        auction.cancel(&orders[0].id).unwrap();
        assert!(matches!(
            auction.cancel(&orders[0].id),
            Err(RejectReason::UnknownOrder(_))
        ));
        assert!(matches!(
            auction.submit(orders[0].clone()),
            Err(RejectReason::DuplicateId(_))
        ));
        assert!(auction.is_empty());
    }

    #[test]
    fn cancel_keeps_the_index_consistent() {
        let orders = book(&[(1, "5"), (2, "5"), (3, "5")], &[(6, "1")]);
        let mut auction = CallAuction::new(MarketRules::PERMISSIVE);
        for o in &orders {
            auction.submit(o.clone()).unwrap();
        }
        auction.cancel(&orders[0].id).unwrap();
        // The order that moved into slot 0 must still be cancellable.
        auction.cancel(&orders[3].id).unwrap();
        auction.cancel(&orders[1].id).unwrap();
        assert_eq!(auction.orders(), &orders[2..3]);
    }

    #[test]
    fn tariffs_bound_admission() {
        let p = |s: &str| s.parse::<Price>().unwrap();
        let rules = MarketRules {
            tariffs: Tariffs::new(p("10"), p("25")).unwrap(),
            ..MarketRules::PERMISSIVE
        };
        let mut auction = CallAuction::new(rules);
        let orders = book(&[(10, "30"), (10, "25")], &[(10, "9"), (10, "10")]);
        let results: Vec<bool> = orders
            .into_iter()
            .map(|o| auction.submit(o).is_ok())
            .collect();
        assert_eq!(results, [false, true, false, true]);
        let out = auction.clear(Mechanism::Uniform { k: K::HALF });
        assert_eq!(out.clearing_price, Some(p("17.5")));
    }

    #[test]
    fn a_reset_book_clears_as_a_new_one_whatever_the_hasher() {
        // 600 bids: the bid side keeps a radix histogram, which the reset must drop.
        let prices = ["0.21", "0.19", "0.25", "0.18", "0.30"];
        let bids: Vec<(u64, &str)> = (0..600)
            .map(|i| (10 + i % 7, prices[i as usize % 5]))
            .collect();
        let asks: Vec<(u64, &str)> = (0..40)
            .map(|i| (50 + i % 3, prices[(i as usize + 2) % 5]))
            .collect();
        let first = book(&bids, &asks);
        let second = book(&bids[..90], &asks[..30]);
        let mut reused = CallAuction::with_capacity_and_hasher(
            MarketRules::PERMISSIVE,
            8,
            rustc_hash::FxBuildHasher,
        );
        for o in &first {
            reused.submit(o.clone()).unwrap();
        }
        reused.cancel(&first[3].id).unwrap();
        // Out of sequence: the book switches to the comparison sort, until the reset.
        let mut late = first[0].clone();
        late.id = "late".into();
        reused.submit(late).unwrap();
        reused.reset();
        assert!(reused.is_empty() && !reused.contains_id(&first[3].id));
        let mut fresh = CallAuction::new(MarketRules::PERMISSIVE);
        for o in &second {
            reused.submit(o.clone()).unwrap();
            fresh.submit(o.clone()).unwrap();
        }
        for mechanism in [
            Mechanism::Uniform { k: K::HALF },
            Mechanism::PayAsBid {
                pricing: PayAsBidPricing::default(),
            },
            Mechanism::Continuous,
        ] {
            assert_eq!(reused.clear(mechanism), fresh.clear(mechanism));
        }
        assert_eq!(reused.orders(), fresh.orders());
    }
}
