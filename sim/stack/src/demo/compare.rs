//! `voltmesh sim --via-network`'s check: the trades the validators finalized equal what the
//! in-process engine makes of the same orders.
//!
//! [`committed_orders`] reads every committed block from a node's API and groups the signed
//! orders by delivery interval, in ledger order. [`reclear`] builds the interval's book the way
//! the ledger does (order ids namespaced by participant, submission sequence = ledger order) and
//! clears it with the genesis mechanism and rules in this process. [`Comparison::matches`] holds
//! when the node's committed outcome (price, range, volume, every trade and every leftover) is
//! identical.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use voltmesh_engine::{CallAuction, ClearingOutcome, Order, OrderId};
use voltmesh_wire::{Genesis, IntervalClearing, SignedOrder};

use super::progress::NodeApi;
use super::DemoError;

/// One interval compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// Interval start, Unix seconds.
    pub start: i64,
    /// Orders committed for it.
    pub orders: usize,
    /// What the validators committed.
    pub node: ClearingOutcome,
    /// What the in-process engine makes of the same orders.
    pub engine: ClearingOutcome,
}

impl Comparison {
    /// Whether both outcomes are identical.
    pub fn matches(&self) -> bool {
        self.node == self.engine
    }
}

/// Every committed order up to `height`, by interval start, in ledger order.
///
/// # Errors
/// [`DemoError::Stalled`] if a block cannot be read or holds malformed orders.
pub async fn committed_orders(
    api: &NodeApi,
    height: u64,
) -> Result<BTreeMap<i64, Vec<SignedOrder>>, DemoError> {
    let mut by_interval: BTreeMap<i64, Vec<SignedOrder>> = BTreeMap::new();
    for h in 1..=height {
        let block = api
            .block(h)
            .await
            .ok_or_else(|| DemoError::Stalled(format!("block {h} cannot be read")))?;
        for order in block.orders {
            by_interval
                .entry(order.ticket.interval_start)
                .or_default()
                .push(order);
        }
    }
    Ok(by_interval)
}

/// The in-process engine's clearing of `orders` under `genesis`'s market.
pub fn reclear(genesis: &Genesis, orders: &[SignedOrder]) -> ClearingOutcome {
    let mut book = CallAuction::new(genesis.market.rules);
    for (seq, order) in orders.iter().enumerate() {
        let t = &order.ticket;
        // Orders the ledger committed passed the same rules; a refusal here shows up as a
        // mismatch.
        let _ = book.submit(Order {
            id: OrderId::from(format!("{}:{}", t.participant, t.id)),
            participant: t.participant.clone(),
            side: t.side,
            quantity_wh: t.quantity_wh,
            limit_price: t.limit_price,
            seq: seq as u64,
        });
    }
    book.clear(genesis.market.mechanism)
}

/// Compares every clearing in `clearings` with the engine's clearing of its committed orders.
pub fn compare(
    genesis: &Genesis,
    clearings: &[IntervalClearing],
    orders: &BTreeMap<i64, Vec<SignedOrder>>,
) -> Vec<Comparison> {
    clearings
        .iter()
        .map(|c| {
            let committed = orders
                .get(&c.interval_start)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            Comparison {
                start: c.interval_start,
                orders: committed.len(),
                node: c.outcome.clone(),
                engine: reclear(genesis, committed),
            }
        })
        .collect()
}

/// The comparison as a table, one line per interval.
pub fn table(comparisons: &[Comparison]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "== via network vs in-process engine (same committed orders)\n{:>10}  {:>6}  {:>22}  {:>22}  same",
        "interval", "orders", "nodes: trades/Wh/price", "engine: trades/Wh/price"
    );
    let fmt = |o: &ClearingOutcome| {
        format!(
            "{}/{}/{}",
            o.trades.len(),
            o.volume_wh,
            o.clearing_price.map_or("-".into(), |p| p.to_string())
        )
    };
    for c in comparisons {
        let _ = writeln!(
            out,
            "{:>10}  {:>6}  {:>22}  {:>22}  {}",
            c.start,
            c.orders,
            fmt(&c.node),
            fmt(&c.engine),
            if c.matches() { "yes" } else { "NO" }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use voltmesh_engine::Side;
    use voltmesh_wire::{OrderTicket, PublicKey};

    #[test]
    fn reclearing_follows_the_ledger_book_and_detects_a_difference() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let genesis: Genesis = serde_json::from_value(serde_json::json!({
            "neighborhood": "demo",
            "genesis_time": "2026-01-01T00:00:00Z",
            "market": {
                "mechanism": {"kind": "uniform", "k": "0.5"},
                "rules": {"tariffs": {"feed_in": "0.080000", "retail": "0.300000"}, "max_order_wh": 1_000_000},
                "network_fee": "0.020000",
                "interval": {"length_secs": 10, "gate_closure_lead_secs": 3}
            },
            "validators": [{"public_key": PublicKey(key.verifying_key().to_bytes()), "address": "/ip4/127.0.0.1/tcp/1"}],
            "participants": {"a": [PublicKey(key.verifying_key().to_bytes())], "b": [PublicKey(key.verifying_key().to_bytes())]}
        }))
        .unwrap();
        let order = |p: &str, side, wh, price: &str| {
            OrderTicket {
                participant: p.into(),
                interval_start: 1_800_000_000,
                id: format!("{p}-{side}").into(),
                side,
                quantity_wh: wh,
                limit_price: price.parse().unwrap(),
                nonce: 1,
            }
            .sign("demo", &key)
        };
        let orders = vec![
            order("a", Side::Sell, 500, "0.10"),
            order("b", Side::Buy, 300, "0.20"),
        ];
        let outcome = reclear(&genesis, &orders);
        assert_eq!(outcome.volume_wh, 300);
        // The partly filled ask is marginal: it pins the price to its limit.
        assert_eq!(outcome.clearing_price, Some("0.10".parse().unwrap()));
        assert_eq!(outcome.trades[0].buy_id.as_str(), "b:b-buy");
        let by_interval = BTreeMap::from([(1_800_000_000, orders)]);
        let clearing = IntervalClearing {
            withheld: None,
            interval_start: 1_800_000_000,
            outcome,
        };
        let same = compare(&genesis, std::slice::from_ref(&clearing), &by_interval);
        assert!(same[0].matches());
        let mut forged = clearing;
        forged.outcome.trades[0].quantity_wh = 299;
        let differs = compare(&genesis, &[forged], &by_interval);
        assert!(!differs[0].matches());
        assert!(table(&differs).contains("NO"));
    }
}
