//! Orders on the gossip topic: a message holds one order (its JSON, as a node gossips an order
//! from `POST /v1/orders` with one order), or a JSON array of orders (what one API batch
//! admitted), so that the other nodes check the array's signatures in one batch too.
//!
//! # Invariant
//! [`batch_messages`] puts every order it is given in exactly one message, in order, each
//! message at most `max_bytes` long unless one order alone is longer (that order then goes on its
//! own, and the network refuses it as too large).

use voltmesh_wire::SignedOrder;

/// Largest gossip message of batched orders: under the network's default 64 KiB cap on one
/// gossiped message (`net::config::DEFAULT_MAX_ORDER_SIZE`), with room for the envelope.
pub(crate) const GOSSIP_BATCH_BYTES: usize = 48 * 1024;

/// Packs encoded orders into JSON arrays of at most `max_bytes` each.
pub(crate) fn batch_messages(
    orders: impl IntoIterator<Item = Vec<u8>>,
    max_bytes: usize,
) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    let mut message: Vec<u8> = Vec::new();
    for order in orders {
        if !message.is_empty() && message.len() + order.len() + 2 > max_bytes {
            message.push(b']');
            messages.push(std::mem::take(&mut message));
        }
        message.push(if message.is_empty() { b'[' } else { b',' });
        message.extend_from_slice(&order);
    }
    if !message.is_empty() {
        message.push(b']');
        messages.push(message);
    }
    messages
}

/// The orders of one gossip message: one order or an array; nothing if it is neither.
pub(crate) fn decode(bytes: &[u8]) -> Vec<SignedOrder> {
    if bytes.first() == Some(&b'[') {
        serde_json::from_slice(bytes).unwrap_or_default()
    } else {
        serde_json::from_slice(bytes).map_or_else(|_| Vec::new(), |order| vec![order])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use voltmesh_engine::Side;
    use voltmesh_wire::OrderTicket;

    fn orders(n: u64) -> Vec<SignedOrder> {
        (0..n)
            .map(|i| {
                OrderTicket {
                    participant: format!("p{i}").into(),
                    interval_start: 1_790_000_100,
                    id: format!("o-{i}").into(),
                    side: Side::Buy,
                    quantity_wh: 100 + i,
                    limit_price: "0.2".parse().expect("price"),
                    nonce: i,
                }
                .sign("nb", &SigningKey::from_bytes(&[5; 32]))
            })
            .collect()
    }

    #[test]
    fn batches_hold_every_order_once_in_order_within_the_size() {
        let orders = orders(500);
        let encoded: Vec<Vec<u8>> = orders
            .iter()
            .map(|o| serde_json::to_vec(o).expect("json"))
            .collect();
        let messages = batch_messages(encoded, 16 * 1024);
        assert!(messages.len() > 5, "{} messages", messages.len());
        assert!(messages.iter().all(|m| m.len() <= 16 * 1024));
        let back: Vec<SignedOrder> = messages.iter().flat_map(|m| decode(m)).collect();
        assert_eq!(back, orders);
        assert!(batch_messages(Vec::new(), 1024).is_empty());
    }

    #[test]
    fn a_message_of_one_order_or_junk_decodes() {
        let order = orders(1).remove(0);
        assert_eq!(
            decode(&serde_json::to_vec(&order).expect("json")),
            vec![order]
        );
        assert!(decode(b"[not json").is_empty());
        assert!(decode(b"{}").is_empty());
        assert!(decode(b"").is_empty());
    }
}
