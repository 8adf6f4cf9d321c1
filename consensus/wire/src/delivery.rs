//! Metered deliveries (issue 14): what a participant's meters recorded in one interval, signed by
//! one of its keys (in practice its meter bridge's), so that the ledger holds the energy every
//! bill is computed from.
//!
//! # Signing bytes (`voltmesh/delivery/v1`)
//! ```text
//! voltmesh/delivery/v1\n<neighborhood>\n<compact JSON of the DeliveryTicket>
//! ```
//! Fields in declaration order (`participant`, `interval_start`, `import_wh`, `export_wh`,
//! `meters`), no whitespace. Signatures are ed25519 under the ZIP-215 rules, like orders'
//! ([`crate::order`]).
//!
//! # What the ledger admits ([`DeliveryRules`], genesis `deliveries`)
//! One delivery per participant and interval, for an interval on the chain's grid that has
//! ended by the block's time and whose delivery window (`window_secs` after its end) is still
//! open, signed by a key allowed for the participant in that interval, with 1 to
//! [`MAX_METERS`] meter ids and no more energy either way than the connection can carry in an
//! interval (`max_connection_kw`). Anything else is refused with its own
//! [`DeliveryRejection::kind`].

use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};
use voltmesh_engine::{ParticipantId, Wh};

use crate::genesis::PublicKey;
use crate::order::hex_signature;

/// Most meter ids one delivery names.
pub const MAX_METERS: usize = 8;
/// Longest meter id, in bytes.
pub const MAX_METER_ID_BYTES: usize = 64;

/// What the ledger admits (genesis `deliveries`; absent: the defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryRules {
    /// How long after an interval's end its deliveries are admitted, seconds (default 3600).
    pub window_secs: u32,
    /// The largest connection a participant may have, kW (default 50): a delivery with more
    /// energy either way than this power over one interval is absurd.
    pub max_connection_kw: u32,
    /// How long after an interval ends official metering data may correct its bills, seconds
    /// (default 62 days; [`crate::correction`]). The ledger keeps 171 bytes (as a snapshot
    /// encodes them; the bills bench measures) per settled
    /// interval for this long.
    pub correction_window_secs: u32,
}

impl Default for DeliveryRules {
    fn default() -> Self {
        DeliveryRules {
            window_secs: 3600,
            max_connection_kw: 50,
            correction_window_secs: 62 * 86_400,
        }
    }
}

impl DeliveryRules {
    /// The most energy either way in an interval of `length_secs` seconds, Wh.
    #[must_use]
    pub fn max_wh(&self, length_secs: u32) -> Wh {
        u64::from(self.max_connection_kw) * u64::from(length_secs) * 1000 / 3600
    }
}

/// What a participant's meters recorded in one interval.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeliveryTicket {
    /// Whose meters.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub participant: ParticipantId,
    /// Start of the interval, Unix seconds, on the chain's interval grid.
    pub interval_start: i64,
    /// Energy taken from the grid in the interval, Wh.
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub import_wh: Wh,
    /// Energy fed into the grid in the interval, Wh.
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub export_wh: Wh,
    /// The meters read (1 to [`MAX_METERS`] ids, printable ASCII, at most
    /// [`MAX_METER_ID_BYTES`] each).
    pub meters: Vec<String>,
}

/// A ticket with its signer's key and signature.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SignedDelivery {
    /// The delivery.
    pub ticket: DeliveryTicket,
    /// The signer: one of the participant's keys (64 hex digits).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub public_key: PublicKey,
    /// ed25519 over [`DeliveryTicket::signing_bytes`], hex (128 digits).
    #[serde(with = "hex_signature")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub signature: [u8; 64],
}

impl DeliveryTicket {
    /// The bytes a signature covers (module docs).
    #[must_use]
    pub fn signing_bytes(&self, neighborhood: &str) -> Vec<u8> {
        crate::signature::signing_bytes("voltmesh/delivery/v1", neighborhood, self)
    }

    /// Signs the ticket.
    #[must_use]
    pub fn sign(self, neighborhood: &str, key: &SigningKey) -> SignedDelivery {
        let signature = key.sign(&self.signing_bytes(neighborhood)).to_bytes();
        SignedDelivery {
            public_key: PublicKey(key.verifying_key().to_bytes()),
            ticket: self,
            signature,
        }
    }

    /// Checks the meter ids (count and characters).
    ///
    /// # Errors
    /// [`DeliveryRejection::Malformed`] naming the problem.
    pub fn check_meters(&self) -> Result<(), DeliveryRejection> {
        let bad = |why: String| Err(DeliveryRejection::Malformed(why));
        if self.meters.is_empty() || self.meters.len() > MAX_METERS {
            return bad(format!("a delivery names 1 to {MAX_METERS} meters"));
        }
        for meter in &self.meters {
            if meter.is_empty()
                || meter.len() > MAX_METER_ID_BYTES
                || !meter.bytes().all(|b| b.is_ascii_graphic())
            {
                return bad(format!(
                    "meter id {meter:?} is not 1 to {MAX_METER_ID_BYTES} printable ASCII bytes"
                ));
            }
        }
        Ok(())
    }
}

impl SignedDelivery {
    /// Whether the signature is valid for the ticket under `public_key` (ZIP-215).
    #[must_use]
    pub fn signature_valid(&self, neighborhood: &str) -> bool {
        crate::signature::valid(
            self.public_key.0,
            self.signature,
            &self.ticket.signing_bytes(neighborhood),
        )
    }
}

/// Whether each delivery's signature is valid, as [`SignedDelivery::signature_valid`] says,
/// checked in one ZIP-215 batch (as orders are: [`crate::order::signatures_valid`]); if the
/// batch fails, each is checked on its own.
#[must_use]
pub fn signatures_valid(deliveries: &[&SignedDelivery], neighborhood: &str) -> Vec<bool> {
    let entries: Vec<_> = deliveries
        .iter()
        .map(|d| {
            (
                d.public_key.0,
                d.signature,
                d.ticket.signing_bytes(neighborhood),
            )
        })
        .collect();
    crate::signature::batch_valid(&entries)
}

/// Why a delivery is refused (by the node API or a validator).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryRejection {
    /// Meter ids missing, too many or badly formed.
    #[error("malformed delivery: {0}")]
    Malformed(String),
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// The participant is not a member.
    #[error("unknown participant {0}")]
    UnknownParticipant(String),
    /// The participant was removed before this interval.
    #[error("participant {participant} was removed from interval {from_interval} on")]
    ParticipantRemoved {
        /// The participant.
        participant: String,
        /// Its first interval out.
        from_interval: i64,
    },
    /// The key may not sign for the participant.
    #[error("key {key} may not sign for {participant}")]
    KeyNotAllowed {
        /// The participant.
        participant: String,
        /// The key.
        key: String,
    },
    /// The interval is not on the chain's grid.
    #[error("{0} is not an interval start of this chain")]
    WrongInterval(i64),
    /// The interval has not ended by the block's time: nothing is delivered yet.
    #[error("interval {interval_start} has not ended yet (it ends at {ends_ms} ms)")]
    NotDelivered {
        /// The interval.
        interval_start: i64,
        /// When it ends, ms since the Unix epoch.
        ends_ms: u64,
    },
    /// The interval's delivery window has closed.
    #[error("the delivery window of interval {interval_start} closed at {closed_ms} ms")]
    Late {
        /// The interval.
        interval_start: i64,
        /// When its window closed, ms since the Unix epoch.
        closed_ms: u64,
    },
    /// The participant's delivery for the interval is on the ledger already.
    #[error("{participant} has a delivery for interval {interval_start} already")]
    Duplicate {
        /// The participant.
        participant: String,
        /// The interval.
        interval_start: i64,
    },
    /// More energy either way than the connection can carry in an interval.
    #[error("{wh} Wh in one interval is more than a connection carries ({max} Wh)")]
    AbsurdEnergy {
        /// The larger of import and export.
        wh: Wh,
        /// The most the rules admit.
        max: Wh,
    },
    /// The node's pool of deliveries waiting for a block is full; retry later.
    #[error("the node's delivery pool is full; retry later")]
    PoolFull,
}

impl DeliveryRejection {
    /// A stable name for metrics and the API's `error` field.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            DeliveryRejection::Malformed(_) => "malformed_delivery",
            DeliveryRejection::BadSignature => "bad_signature",
            DeliveryRejection::UnknownParticipant(_) => "unknown_participant",
            DeliveryRejection::ParticipantRemoved { .. } => "participant_removed",
            DeliveryRejection::KeyNotAllowed { .. } => "key_not_allowed",
            DeliveryRejection::WrongInterval(_) => "wrong_interval",
            DeliveryRejection::NotDelivered { .. } => "not_delivered",
            DeliveryRejection::Late { .. } => "late",
            DeliveryRejection::Duplicate { .. } => "duplicate_delivery",
            DeliveryRejection::AbsurdEnergy { .. } => "absurd_energy",
            DeliveryRejection::PoolFull => "pool_full",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket() -> DeliveryTicket {
        DeliveryTicket {
            participant: "hh-1".into(),
            interval_start: 1_790_000_100,
            import_wh: 120,
            export_wh: 30,
            meters: vec!["E0046003100001001".into()],
        }
    }

    /// The exact bytes of `voltmesh/delivery/v1`: changing them is a protocol change.
    #[test]
    fn signing_bytes_are_fixed() {
        assert_eq!(
            String::from_utf8(ticket().signing_bytes("nb")).unwrap(),
            "voltmesh/delivery/v1\nnb\n{\"participant\":\"hh-1\",\"interval_start\":1790000100,\"import_wh\":120,\"export_wh\":30,\"meters\":[\"E0046003100001001\"]}"
        );
    }

    #[test]
    fn a_signature_binds_the_ticket_and_the_neighborhood() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let signed = ticket().sign("nb", &key);
        assert!(signed.signature_valid("nb"));
        assert!(!signed.signature_valid("other"));
        let mut changed = signed.clone();
        changed.ticket.import_wh += 1;
        assert!(!changed.signature_valid("nb"));
        let json = serde_json::to_string(&signed).unwrap();
        let back: SignedDelivery = serde_json::from_str(&json).unwrap();
        assert_eq!(back, signed);
    }

    #[test]
    fn a_batch_finds_the_one_bad_signature() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let good = ticket().sign("nb", &key);
        let mut bad = good.clone();
        bad.ticket.export_wh += 1;
        let mut other = ticket();
        other.interval_start += 900;
        let other = other.sign("nb", &key);
        assert_eq!(
            signatures_valid(&[&good, &bad, &other], "nb"),
            [true, false, true]
        );
        assert_eq!(signatures_valid(&[&good, &other], "nb"), [true, true]);
        assert_eq!(signatures_valid(&[&bad], "nb"), [false]);
    }

    #[test]
    fn meters_and_the_energy_bound_are_checked() {
        let mut t = ticket();
        assert_eq!(t.check_meters(), Ok(()));
        t.meters.clear();
        assert_eq!(t.check_meters().unwrap_err().kind(), "malformed_delivery");
        t.meters = vec!["a b".into()];
        assert!(t.check_meters().is_err());
        t.meters = vec!["m".into(); MAX_METERS + 1];
        assert!(t.check_meters().is_err());
        // 50 kW over 15 minutes: 12.5 kWh.
        assert_eq!(DeliveryRules::default().max_wh(900), 12_500);
    }
}
