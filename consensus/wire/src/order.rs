//! Orders as participants sign them, and the bytes a signature covers.
//!
//! # Signing bytes (`voltmesh/order/v1`)
//! ```text
//! voltmesh/order/v1\n<neighborhood>\n<compact JSON of the OrderTicket>
//! ```
//! The JSON is the ticket's canonical serde encoding: fields in declaration order
//! (`participant`, `interval_start`, `id`, `side`, `quantity_wh`, `limit_price`, `nonce`), no
//! whitespace, and **`limit_price` as a string with exactly six decimals** (`"0.250000"`).
//!
//! # Prices have six decimals
//! The node does not check a signature against the bytes it received: it decodes the order and
//! re-encodes the ticket. A client that signs `"limit_price":"0.25"` signs different bytes from
//! the node's `"limit_price":"0.250000"`, and the node answers `bad_signature`. Build the ticket
//! with [`OrderTicket`] and [`OrderTicket::sign`] (which encode prices through
//! [`voltmesh_engine::Price`]), or write prices with six decimals when signing by hand.
//!
//! # Which signatures are valid (ZIP-215)
//! An order's signature is valid under the rules of
//! [ZIP-215](https://zips.z.cash/zip-0215) (`ed25519-zebra`): `S` canonical, `A` and `R` any
//! encoding of a curve point, and the cofactored equation `[8][S]B = [8]R + [8][k]A`. These rules
//! are the same for one signature and for a batch ([`signatures_valid`]), so a node that checks
//! a block's orders in one batch and a node that checks them one by one always agree on the
//! block; ed25519's other rules (`verify_strict`, or a cofactorless batch) do not, and a
//! signature crafted between them could split the validators. Every signature that
//! `verify_strict` takes is valid here too, so ledgers written before the change replay the same.
//! Small-order ("weak") keys, under which one signature verifies for many messages, never sign:
//! genesis refuses them for participants (audit finding L8), and an order's key must be one of
//! its participant's.

use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};
use voltmesh_engine::{OrderId, ParticipantId, Price, Side, Wh};

use crate::genesis::PublicKey;

/// What a participant (or its meter bridge) signs: one order for one interval.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OrderTicket {
    /// Who buys or sells (a pseudonym from genesis).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub participant: ParticipantId,
    /// Start of the delivery interval, Unix seconds, aligned to the interval length.
    pub interval_start: i64,
    /// Unique per participant within the interval. Printable ASCII without `:`, `"` or `\\`
    /// (see [`check_order_id`]).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: OrderId,
    /// Buy or sell.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Side))]
    pub side: Side,
    /// Energy in Wh.
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub quantity_wh: Wh,
    /// Limit price per kWh: a decimal string with exactly six decimals (`"0.250000"`).
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "0.250000"))]
    pub limit_price: Price,
    /// Signed, but not checked by the ledger any more (audit finding M3): a replay is refused by
    /// `(participant, interval_start, id)`, which the signature covers, and orders of one
    /// participant do not have to be included in nonce order. Kept in the signed bytes so that
    /// existing signers and signatures stay valid; any value is accepted.
    pub nonce: u64,
}

/// A ticket with its signer's key and signature.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SignedOrder {
    /// The order.
    pub ticket: OrderTicket,
    /// The signer: one of the participant's keys in genesis (64 hex digits).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub public_key: PublicKey,
    /// ed25519 over [`OrderTicket::signing_bytes`], hex (128 digits).
    #[serde(with = "hex_signature")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub signature: [u8; 64],
}

/// Why an order id is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderIdError {
    /// The id is empty.
    #[error("the order id is empty")]
    Empty,
    /// The id has a character outside printable ASCII, or one of `:` `"` `\\`.
    #[error("the order id has {0:?} at byte {1}: only printable ASCII without ':', '\"' or '\\' is allowed")]
    BadCharacter(char, usize),
}

/// Checks an order id's characters.
///
/// Ids are non-empty printable ASCII (`!` to `~`) without `:`, `"` and `\\`. Without `:` the
/// ledger's engine id `participant:id` is unambiguous (audit finding L6: `("a:b", "c")` and
/// `("a", "b:c")` would both be `a:b:c`); without `"` and `\\` an id's JSON encoding is its own
/// length plus two quotes, which bounds the size of a clearing.
///
/// # Errors
/// [`OrderIdError`] naming the first problem.
pub fn check_order_id(id: &str) -> Result<(), OrderIdError> {
    if id.is_empty() {
        return Err(OrderIdError::Empty);
    }
    match id
        .char_indices()
        .find(|&(_, c)| !c.is_ascii_graphic() || matches!(c, ':' | '"' | '\\'))
    {
        Some((at, c)) => Err(OrderIdError::BadCharacter(c, at)),
        None => Ok(()),
    }
}

impl OrderTicket {
    /// The bytes a signature covers: a domain tag, the neighborhood (so an order cannot be replayed
    /// in another neighborhood) and the ticket's canonical JSON (module docs: prices with six
    /// decimals).
    pub fn signing_bytes(&self, neighborhood: &str) -> Vec<u8> {
        crate::signature::signing_bytes("voltmesh/order/v1", neighborhood, self)
    }

    /// Signs the ticket.
    pub fn sign(self, neighborhood: &str, key: &SigningKey) -> SignedOrder {
        let signature = key.sign(&self.signing_bytes(neighborhood)).to_bytes();
        SignedOrder {
            public_key: PublicKey(key.verifying_key().to_bytes()),
            ticket: self,
            signature,
        }
    }
}

impl SignedOrder {
    /// Whether the signature is valid for the ticket under `public_key`, by the ZIP-215 rules
    /// (module docs).
    pub fn signature_valid(&self, neighborhood: &str) -> bool {
        crate::signature::valid(
            self.public_key.0,
            self.signature,
            &self.ticket.signing_bytes(neighborhood),
        )
    }
}

/// Whether each order's signature is valid, as [`SignedOrder::signature_valid`] says, checked in
/// one batch: for hundreds of orders about a third of the cost of checking them one by one. If
/// the batch fails, each order is checked on its own to find the bad ones, so a bad signature
/// costs what it always did, never another order's admission.
///
/// # Invariant
/// `signatures_valid(orders)[i] == orders[i].signature_valid(neighborhood)` for every `i`:
/// ZIP-215 makes the batch equation and the single one agree (module docs). The batch's random
/// coefficients come from the operating system, so nobody can craft a bad signature that passes
/// it (a batch accepts a bad signature with probability below 2^-128).
pub fn signatures_valid(orders: &[&SignedOrder], neighborhood: &str) -> Vec<bool> {
    let entries: Vec<_> = orders
        .iter()
        .map(|o| {
            (
                o.public_key.0,
                o.signature,
                o.ticket.signing_bytes(neighborhood),
            )
        })
        .collect();
    crate::signature::batch_valid(&entries)
}

pub(crate) mod hex_signature {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        sig: &[u8; 64],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(sig))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<[u8; 64], D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let mut sig = [0u8; 64];
        hex::decode_to_slice(text.as_bytes(), &mut sig).map_err(serde::de::Error::custom)?;
        Ok(sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(price: &str) -> OrderTicket {
        OrderTicket {
            participant: "hh-1".into(),
            interval_start: 1_790_000_100,
            id: "hh-1-x-sell".into(),
            side: Side::Sell,
            quantity_wh: 420,
            limit_price: price.parse().expect("price"),
            nonce: 1_790_000_100,
        }
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[3; 32])
    }

    /// The exact bytes of `voltmesh/order/v1`: changing them is a protocol change.
    const GOLDEN_BYTES: &str = "voltmesh/order/v1\nnb\n{\"participant\":\"hh-1\",\"interval_start\":1790000100,\"id\":\"hh-1-x-sell\",\"side\":\"sell\",\"quantity_wh\":420,\"limit_price\":\"0.250000\",\"nonce\":1790000100}";
    const GOLDEN_SIGNATURE: &str = "c56310d339d6399e631f3a9202bd89b9ab0e39d442daf83ae03169f496d8595c0db7dd954b751707a0529f0c319f89dadc24346a88ee168ac88409097aa7f90f";

    #[test]
    fn signing_bytes_are_stable() {
        let ticket = ticket("0.25");
        assert_eq!(
            String::from_utf8(ticket.signing_bytes("nb")).expect("utf-8"),
            GOLDEN_BYTES
        );
        let signed = ticket.sign("nb", &key());
        assert_eq!(hex::encode(signed.signature), GOLDEN_SIGNATURE);
        assert_eq!(
            signed.public_key.to_string(),
            hex::encode(key().verifying_key().to_bytes())
        );
        assert!(signed.signature_valid("nb"));
        assert!(
            !signed.signature_valid("other"),
            "bound to the neighborhood"
        );
    }

    #[test]
    fn prices_are_serialised_with_six_decimals() {
        for price in ["0.25", "0.250", "0.250000"] {
            let json = serde_json::to_string(&ticket(price)).expect("json");
            assert!(json.contains("\"limit_price\":\"0.250000\""), "{json}");
        }
        // A client that signs the short form signs other bytes than the node checks.
        let signed = ticket("0.25").sign("nb", &key());
        let short = String::from_utf8(signed.ticket.signing_bytes("nb"))
            .expect("utf-8")
            .replace("\"0.250000\"", "\"0.25\"");
        let sig = key().sign(short.as_bytes()).to_bytes();
        let by_hand = SignedOrder {
            signature: sig,
            ..signed
        };
        assert!(
            !by_hand.signature_valid("nb"),
            "\"0.25\" gives a bad signature"
        );
    }

    /// Audit L8: under the small-order key (the identity point), the signature `(R = identity,
    /// s = 0)` verifies for every message, under plain ed25519 and under ZIP-215 alike. Such a
    /// key never signs an order: genesis refuses it for participants (`WeakKey`), and the ledger
    /// checks that an order's key is one of its participant's before its signature.
    #[test]
    fn a_small_order_key_is_refused_by_genesis_not_by_the_signature() {
        use ed25519_dalek::{Signature, Verifier, VerifyingKey};
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut forged = ticket("0.25").sign("nb", &key());
        forged.public_key = PublicKey(identity);
        forged.signature = [0; 64];
        forged.signature[0] = 1;
        let weak = VerifyingKey::from_bytes(&identity).expect("a curve point");
        assert!(weak.is_weak());
        let bytes = forged.ticket.signing_bytes("nb");
        assert!(
            weak.verify(&bytes, &Signature::from_bytes(&forged.signature))
                .is_ok(),
            "plain verification accepts the forgery"
        );
        assert!(forged.signature_valid("nb"), "so does ZIP-215");
        assert_eq!(
            PublicKey(identity).strong_verifying_key(),
            Err(crate::genesis::GenesisError::WeakKey(
                PublicKey(identity).to_string()
            )),
            "genesis refuses the key"
        );
    }

    /// A batch says what the single checks say, order by order, whether the batch holds bad
    /// signatures or not.
    #[test]
    fn a_batch_check_agrees_with_single_checks() {
        let good: Vec<SignedOrder> = (0..40)
            .map(|i| ticket(&format!("0.{:02}", i + 10)).sign("nb", &key()))
            .collect();
        let refs: Vec<&SignedOrder> = good.iter().collect();
        assert_eq!(signatures_valid(&refs, "nb"), vec![true; 40]);
        assert_eq!(
            signatures_valid(&refs, "other"),
            vec![false; 40],
            "bound to the neighborhood"
        );
        let mut mixed = good.clone();
        mixed[3].signature[5] ^= 1;
        mixed[17].ticket.quantity_wh += 1;
        mixed[39].signature[63] |= 0xf0; // S not canonical
        let refs: Vec<&SignedOrder> = mixed.iter().collect();
        let batch = signatures_valid(&refs, "nb");
        let single: Vec<bool> = mixed.iter().map(|o| o.signature_valid("nb")).collect();
        assert_eq!(batch, single);
        assert_eq!(batch.iter().filter(|ok| !**ok).count(), 3);
        assert!(signatures_valid(&[], "nb").is_empty());
        assert_eq!(signatures_valid(&refs[3..4], "nb"), vec![false]);
    }

    /// Audit L6: `:` is not allowed in ids, so `participant:id` cannot collide.
    #[test]
    fn order_ids_are_printable_ascii_without_colons_quotes_or_backslashes() {
        for ok in ["a", "hh-1-1790000100-sell", "h1@7", "bridge_3.x~!"] {
            assert_eq!(check_order_id(ok), Ok(()), "{ok}");
        }
        assert_eq!(check_order_id(""), Err(OrderIdError::Empty));
        assert_eq!(
            check_order_id("b:c"),
            Err(OrderIdError::BadCharacter(':', 1))
        );
        for bad in ["a b", "a\"b", "a\\b", "é", "a\n"] {
            assert!(check_order_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn signed_orders_round_trip_through_json() {
        let signed = ticket("0.1").sign("nb", &key());
        let text = serde_json::to_string(&signed).expect("json");
        let back: SignedOrder = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, signed);
        assert!(back.signature_valid("nb"));
        let mut tampered = back;
        tampered.ticket.quantity_wh += 1;
        assert!(!tampered.signature_valid("nb"));
        assert!(serde_json::from_str::<SignedOrder>(
            &text.replace("\"nonce\":", "\"x\":1,\"nonce\":")
        )
        .is_err());
    }
}
