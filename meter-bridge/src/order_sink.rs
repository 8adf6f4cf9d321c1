//! Where the bridge's signed order batches go: the [`OrderSink`] seam.
//!
//! The node's HTTP API is not there yet; [`ChannelSink`] hands batches to a bounded channel (the
//! demo and tests read it), and an HTTP sink will implement the same trait. Batches are signed
//! with the bridge's ed25519 key over [`SignedOrderBatch::signing_bytes`], so a node can check
//! them against the bridge key named in genesis. Resubmitting a batch is idempotent: order ids
//! are deterministic per household, interval and side ([`crate::orders::order_id`]).

use std::future::Future;

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use voltmesh_engine::Order;

/// Domain separator of the signed bytes.
pub const SIGNING_CONTEXT: &[u8] = b"voltmesh/order-batch/v1\0";

/// One interval's orders from this bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderBatch {
    /// The interval the orders are for.
    pub interval_start: DateTime<Utc>,
    /// The orders, ordered by participant.
    pub orders: Vec<Order>,
}

/// An [`OrderBatch`] signed by the bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedOrderBatch {
    /// The batch.
    pub batch: OrderBatch,
    /// The bridge's ed25519 public key.
    pub signer: [u8; 32],
    /// ed25519 signature over [`SignedOrderBatch::signing_bytes`] (64 bytes).
    pub signature: Vec<u8>,
}

/// A batch whose signature does not verify.
#[derive(Debug, thiserror::Error)]
#[error("order batch signature does not verify: {0}")]
pub struct BadSignature(String);

impl SignedOrderBatch {
    /// The bytes that are signed: [`SIGNING_CONTEXT`] followed by the batch as JSON.
    pub fn signing_bytes(batch: &OrderBatch) -> Vec<u8> {
        let mut bytes = SIGNING_CONTEXT.to_vec();
        // Serializing plain data (strings, integers, enums) into a Vec cannot fail.
        if let Ok(json) = serde_json::to_vec(batch) {
            bytes.extend_from_slice(&json);
        }
        bytes
    }

    /// Signs `batch` with `key`.
    pub fn sign(batch: OrderBatch, key: &SigningKey) -> SignedOrderBatch {
        let signature = key.sign(&Self::signing_bytes(&batch));
        SignedOrderBatch {
            batch,
            signer: key.verifying_key().to_bytes(),
            signature: signature.to_bytes().to_vec(),
        }
    }

    /// Checks the signature against the embedded signer key.
    ///
    /// # Errors
    /// [`BadSignature`] if the key or signature is malformed or does not match.
    pub fn verify(&self) -> Result<(), BadSignature> {
        let key =
            VerifyingKey::from_bytes(&self.signer).map_err(|e| BadSignature(e.to_string()))?;
        let signature =
            Signature::from_slice(&self.signature).map_err(|e| BadSignature(e.to_string()))?;
        key.verify(&Self::signing_bytes(&self.batch), &signature)
            .map_err(|e| BadSignature(e.to_string()))
    }
}

/// Why a batch was not submitted.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The receiving side is gone.
    #[error("order sink closed")]
    Closed,
    /// The node could not be reached; worth retrying.
    #[error("node unavailable: {0}")]
    Unavailable(String),
}

/// Receives signed order batches.
pub trait OrderSink: Send + Sync + 'static {
    /// Submits one batch; waits while the sink is full.
    ///
    /// # Errors
    /// [`SinkError`] if the batch could not be handed over.
    fn submit(&self, batch: SignedOrderBatch)
        -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// An [`OrderSink`] over a bounded channel.
#[derive(Debug, Clone)]
pub struct ChannelSink {
    tx: mpsc::Sender<SignedOrderBatch>,
}

impl ChannelSink {
    /// A sink and its receiver, holding at most `capacity` batches (at least 1).
    pub fn new(capacity: usize) -> (ChannelSink, mpsc::Receiver<SignedOrderBatch>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (ChannelSink { tx }, rx)
    }
}

impl OrderSink for ChannelSink {
    async fn submit(&self, batch: SignedOrderBatch) -> Result<(), SinkError> {
        self.tx.send(batch).await.map_err(|_| SinkError::Closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_detect_tampering() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let batch = OrderBatch {
            interval_start: DateTime::from_timestamp(1_790_000_100, 0).unwrap(),
            orders: Vec::new(),
        };
        let mut signed = SignedOrderBatch::sign(batch, &key);
        signed.verify().unwrap();
        signed.batch.interval_start = DateTime::from_timestamp(1_790_000_200, 0).unwrap();
        assert!(signed.verify().is_err());
    }
}
