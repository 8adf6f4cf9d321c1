//! Orders as participants sign them.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier};
use serde::{Deserialize, Serialize};
use voltmesh_engine::{OrderId, ParticipantId, Price, Side, Wh};

use crate::genesis::PublicKey;

/// What a participant (or its meter bridge) signs: one order for one interval.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderTicket {
    /// Who buys or sells (a pseudonym from genesis).
    pub participant: ParticipantId,
    /// Start of the delivery interval, Unix seconds, aligned to the interval length.
    pub interval_start: i64,
    /// Unique within the interval.
    pub id: OrderId,
    /// Buy or sell.
    pub side: Side,
    /// Energy in Wh.
    pub quantity_wh: Wh,
    /// Limit price per kWh.
    pub limit_price: Price,
    /// Strictly increasing per participant: a replayed order is refused.
    pub nonce: u64,
}

/// A ticket with its signer's key and signature.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedOrder {
    /// The order.
    pub ticket: OrderTicket,
    /// The signer: one of the participant's keys in genesis.
    pub public_key: PublicKey,
    /// ed25519 over [`OrderTicket::signing_bytes`], hex.
    #[serde(with = "hex_signature")]
    pub signature: [u8; 64],
}

impl OrderTicket {
    /// The bytes a signature covers: a domain tag, the neighborhood (so an order cannot be replayed
    /// in another neighborhood) and the ticket's canonical JSON.
    pub fn signing_bytes(&self, neighborhood: &str) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(160);
        bytes.extend_from_slice(b"voltmesh/order/v1\n");
        bytes.extend_from_slice(neighborhood.as_bytes());
        bytes.push(b'\n');
        // Serializing a struct of strings and integers cannot fail.
        bytes.extend_from_slice(&serde_json::to_vec(self).unwrap_or_default());
        bytes
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
    /// Whether the signature is valid for the ticket under `public_key`.
    pub fn signature_valid(&self, neighborhood: &str) -> bool {
        let Ok(key) = self.public_key.verifying_key() else {
            return false;
        };
        key.verify(
            &self.ticket.signing_bytes(neighborhood),
            &Signature::from_bytes(&self.signature),
        )
        .is_ok()
    }
}

mod hex_signature {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        sig: &[u8; 64],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(sig))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<[u8; 64], D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let mut sig = [0u8; 64];
        hex::decode_to_slice(text.as_bytes(), &mut sig).map_err(serde::de::Error::custom)?;
        Ok(sig)
    }
}
