//! The book of one interval in a periodic auction: orders collect until gate closure, then clear at
//! once.
//!
//! # Modify semantics
//! An order may be cancelled before clearing; a replacement is a cancel followed by a new order
//! with a new sequence, so it loses its time priority. Ids stay unique for the life of the book,
//! including ids of cancelled orders, so a replayed order can never re-enter.
//!
//! # Known limitations
//! The book holds one interval; the caller keeps one book per open interval.
//!
//! # Performance
//! `submit` and `cancel` are `O(1)` expected (a hash index, never iterated); clearing sorts.

use std::collections::HashMap;

use crate::{
    pay_as_bid, uniform, ClearingOutcome, MarketRules, Mechanism, Order, OrderId, RejectReason,
};

/// Orders for one interval of a periodic auction.
#[derive(Debug, Clone, Default)]
pub struct CallAuction {
    rules: MarketRules,
    orders: Vec<Order>,
    /// Position in `orders` of each live order; `None` for a cancelled id (kept so it cannot
    /// return).
    index: HashMap<OrderId, Option<usize>>,
}

impl CallAuction {
    /// An empty book that admits orders by `rules`.
    pub fn new(rules: MarketRules) -> Self {
        CallAuction {
            rules,
            orders: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// An empty book with room for `n` orders.
    pub fn with_capacity(rules: MarketRules, n: usize) -> Self {
        CallAuction {
            rules,
            orders: Vec::with_capacity(n),
            index: HashMap::with_capacity(n),
        }
    }

    /// Adds an order.
    ///
    /// # Errors
    /// The rule it breaks ([`MarketRules::admit`]) or [`RejectReason::DuplicateId`] if the id was
    /// ever used in this book.
    pub fn submit(&mut self, order: Order) -> Result<(), RejectReason> {
        self.rules.admit(&order)?;
        if self.index.contains_key(&order.id) {
            return Err(RejectReason::DuplicateId(order.id));
        }
        self.index.insert(order.id.clone(), Some(self.orders.len()));
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
        if let Some(moved) = self.orders.get(slot) {
            self.index.insert(moved.id.clone(), Some(slot));
        }
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

    /// Clears the book with a periodic mechanism.
    ///
    /// # Panics
    /// Never; [`Mechanism::Continuous`] replays the orders by sequence (then id) through a
    /// [`crate::ContinuousBook`] and closes it, which is what a continuous market with these
    /// arrivals would have done.
    pub fn clear(&self, mechanism: Mechanism) -> ClearingOutcome {
        match mechanism {
            Mechanism::Uniform { k } => uniform::clear(&self.orders, k),
            Mechanism::PayAsBid { pricing } => pay_as_bid::clear(&self.orders, pricing),
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
}
