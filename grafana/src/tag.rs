//! Tag values: the only things that become InfluxDB tags.
//!
//! # Cardinality invariant
//!
//! Every tag value is either a closed enum ([`Side`], [`MechanismTag`], [`RejectionReason`],
//! [`DecodeErrorKind`]) or a [`BoundedId`] newtype naming something a neighborhood has few of
//! (itself, its nodes, its households). There is deliberately no tag type for an order id or a trade
//! id: those grow without bound and would explode the number of series. The [`TagValue`] trait is
//! sealed, so no other type can be used as a tag.

use std::fmt;

use thiserror::Error;
use voltmesh_engine::{ParticipantId, RejectReason};

mod sealed {
    pub trait Sealed {}
}

/// A value that may be written as a tag (sealed: see the module's cardinality invariant).
pub trait TagValue: sealed::Sealed {
    /// The tag's text as written to the database.
    fn tag_str(&self) -> &str;
}

/// Why text is not a valid [`BoundedId`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    /// The id is empty.
    #[error("an id must not be empty")]
    Empty,
    /// The id is longer than [`BoundedId::MAX_LEN`].
    #[error("id {id:?} is longer than {} bytes", BoundedId::MAX_LEN)]
    TooLong {
        /// The offending id.
        id: String,
    },
    /// The id contains a character outside `[A-Za-z0-9_.:-]`.
    #[error("id {id:?} contains {bad:?}; only ASCII letters, digits and `_ . : -` are allowed")]
    BadChar {
        /// The offending id.
        id: String,
        /// The first character that is not allowed.
        bad: char,
    },
}

/// Short, plain-ASCII id text: 1 to [`BoundedId::MAX_LEN`] bytes of `[A-Za-z0-9_.:-]`.
///
/// Plain text needs no escaping in line protocol or Flux and reads well in a Grafana variable.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BoundedId(Box<str>);

impl BoundedId {
    /// The longest accepted id, in bytes.
    pub const MAX_LEN: usize = 64;

    /// Checks `text` and wraps it.
    ///
    /// # Errors
    /// [`IdError`] if `text` is empty, too long or has a character outside `[A-Za-z0-9_.:-]`.
    pub fn new(text: &str) -> Result<Self, IdError> {
        if text.is_empty() {
            return Err(IdError::Empty);
        }
        if text.len() > Self::MAX_LEN {
            return Err(IdError::TooLong { id: text.into() });
        }
        if let Some(bad) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')))
        {
            return Err(IdError::BadChar {
                id: text.into(),
                bad,
            });
        }
        Ok(BoundedId(text.into()))
    }

    /// Wraps `text` after replacing every character outside `[A-Za-z0-9_.:-]` with `_` and
    /// cutting it to [`BoundedId::MAX_LEN`] bytes (for ids from elsewhere, such as SimBench load
    /// names with spaces). Distinct inputs may map to the same id; callers that need the mapping
    /// to be one-to-one must check.
    ///
    /// # Errors
    /// [`IdError::Empty`] if `text` is empty.
    pub fn lossy(text: &str) -> Result<Self, IdError> {
        if text.is_empty() {
            return Err(IdError::Empty);
        }
        let clean: String = text
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .take(Self::MAX_LEN)
            .collect();
        Ok(BoundedId(clean.into()))
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BoundedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `Display` and [`TagValue`] of a tag type, both through its `as_str`.
macro_rules! tag_impls {
    ($name:ident) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl sealed::Sealed for $name {}

        impl TagValue for $name {
            fn tag_str(&self) -> &str {
                self.as_str()
            }
        }
    };
}

macro_rules! id_tag {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(BoundedId);

        impl $name {
            /// Checks `text` (see [`BoundedId::new`]) and wraps it.
            ///
            /// # Errors
            /// [`IdError`] if `text` is not a valid [`BoundedId`].
            pub fn new(text: &str) -> Result<Self, IdError> {
                BoundedId::new(text).map($name)
            }

            /// Wraps `text` with disallowed characters replaced (see [`BoundedId::lossy`]).
            ///
            /// # Errors
            /// [`IdError::Empty`] if `text` is empty.
            pub fn lossy(text: &str) -> Result<Self, IdError> {
                BoundedId::lossy(text).map($name)
            }

            /// The id's text.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
        }

        tag_impls!($name);
    };
}

id_tag!(
    /// A neighborhood (one validator group and its market).
    Neighborhood
);
id_tag!(
    /// A node or bridge instance of a neighborhood.
    NodeId
);
id_tag!(
    /// A household: a participant pseudonym as bound in genesis, never a name or address.
    HouseholdId
);

impl TryFrom<&ParticipantId> for HouseholdId {
    type Error = IdError;

    fn try_from(participant: &ParticipantId) -> Result<Self, IdError> {
        HouseholdId::new(participant.as_str())
    }
}

macro_rules! enum_tag {
    (
        $(#[$doc:meta])*
        $name:ident { $( $(#[$vdoc:meta])* $variant:ident => $text:literal, )+ }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $( $(#[$vdoc])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The tag text.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        tag_impls!($name);
    };
}

enum_tag!(
    /// Buy or sell.
    Side {
        /// A bid.
        Buy => "buy",
        /// An ask.
        Sell => "sell",
    }
);

impl From<voltmesh_engine::Side> for Side {
    fn from(side: voltmesh_engine::Side) -> Self {
        match side {
            voltmesh_engine::Side::Buy => Side::Buy,
            voltmesh_engine::Side::Sell => Side::Sell,
        }
    }
}

enum_tag!(
    /// The clearing mechanism, spelled as `voltmesh_engine::Mechanism::name` spells it.
    MechanismTag {
        /// Uniform-price double auction.
        Uniform => "uniform",
        /// Pay-as-bid matching.
        PayAsBid => "pay-as-bid",
        /// Continuous double auction.
        Continuous => "cda",
    }
);

impl From<voltmesh_engine::Mechanism> for MechanismTag {
    fn from(mechanism: voltmesh_engine::Mechanism) -> Self {
        match mechanism {
            voltmesh_engine::Mechanism::Uniform { .. } => MechanismTag::Uniform,
            voltmesh_engine::Mechanism::PayAsBid { .. } => MechanismTag::PayAsBid,
            voltmesh_engine::Mechanism::Continuous => MechanismTag::Continuous,
        }
    }
}

enum_tag!(
    /// Why a node refused an order or a block.
    RejectionReason {
        /// The signature does not verify.
        BadSignature => "bad_signature",
        /// The signer is not a participant in genesis.
        UnknownParticipant => "unknown_participant",
        /// The bytes do not decode.
        Malformed => "malformed",
        /// The order's interval is not open (too late or too early).
        WrongInterval => "wrong_interval",
        /// The quantity is zero.
        ZeroQuantity => "zero_quantity",
        /// The quantity exceeds the market's per-order bound.
        QuantityTooLarge => "quantity_too_large",
        /// The limit is below the feed-in tariff.
        BelowFeedIn => "below_feed_in",
        /// The limit is above the retail price.
        AboveRetail => "above_retail",
        /// An order with this id already exists.
        DuplicateOrder => "duplicate_order",
        /// A cancel names no live order.
        UnknownOrder => "unknown_order",
        /// The interval's gate has closed.
        MarketClosed => "market_closed",
        /// The sender exceeded its rate.
        RateLimited => "rate_limited",
        /// A bounded queue was full.
        QueueFull => "queue_full",
        /// A block's clearing differs from the local re-execution.
        ClearingMismatch => "clearing_mismatch",
        /// The signer's key may not sign for the participant.
        KeyNotAllowed => "key_not_allowed",
        /// The nonce is not above the participant's last (a replay).
        ReplayedNonce => "replayed_nonce",
        /// A proposed block was refused (wrong leader, block time, or invalid payload).
        RejectedProposal => "rejected_proposal",
    }
);

impl From<&RejectReason> for RejectionReason {
    fn from(reason: &RejectReason) -> Self {
        match reason {
            RejectReason::ZeroQuantity => RejectionReason::ZeroQuantity,
            RejectReason::QuantityTooLarge { .. } => RejectionReason::QuantityTooLarge,
            RejectReason::BelowFeedIn { .. } => RejectionReason::BelowFeedIn,
            RejectReason::AboveRetail { .. } => RejectionReason::AboveRetail,
            RejectReason::DuplicateId(_) => RejectionReason::DuplicateOrder,
            RejectReason::UnknownOrder(_) => RejectionReason::UnknownOrder,
            RejectReason::Closed => RejectionReason::MarketClosed,
        }
    }
}

enum_tag!(
    /// Why the bridge could not use a meter message (mirrors the bridge's error kinds).
    DecodeErrorKind {
        /// The payload exceeds the size limit.
        TooLarge => "too_large",
        /// No decoder claims the topic/payload.
        UnknownFormat => "unknown_format",
        /// Syntax or structure is wrong.
        Malformed => "malformed",
        /// A DSMR CRC does not match.
        CrcMismatch => "crc_mismatch",
        /// A DSMR 4+ telegram has no CRC.
        MissingCrc => "missing_crc",
        /// A required field is missing.
        MissingField => "missing_field",
        /// A value is out of range, has the wrong unit or does not parse.
        BadValue => "bad_value",
        /// A timestamp does not parse or does not exist.
        BadTimestamp => "bad_timestamp",
        /// The meter id is unusable.
        BadMeterId => "bad_meter_id",
        /// A per-device accumulator is full.
        TooManyDevices => "too_many_devices",
        /// The meter is not in the registry.
        UnknownMeter => "unknown_meter",
        /// A cumulative register decreased.
        RegisterWentBackwards => "register_went_backwards",
        /// The reading is stamped too far in the future.
        TimestampInFuture => "timestamp_in_future",
        /// The reading is older than the meter's last accepted one.
        OutOfOrder => "out_of_order",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_plain_text_and_reject_the_rest() {
        assert_eq!(
            HouseholdId::new("hh-07").map(|h| h.to_string()),
            Ok("hh-07".into())
        );
        assert_eq!(NodeId::new(""), Err(IdError::Empty));
        assert!(matches!(
            Neighborhood::new(&"x".repeat(65)),
            Err(IdError::TooLong { .. })
        ));
        assert!(matches!(
            HouseholdId::new("a b"),
            Err(IdError::BadChar { bad: ' ', .. })
        ));
        assert!(matches!(
            HouseholdId::new("a,b=c"),
            Err(IdError::BadChar { bad: ',', .. })
        ));
    }

    #[test]
    fn lossy_ids_replace_bad_characters_and_cut_to_the_bound() {
        assert_eq!(
            HouseholdId::lossy("LV1.101 Load 1").map(|h| h.to_string()),
            Ok("LV1.101_Load_1".into())
        );
        let long = HouseholdId::lossy(&"é".repeat(100)).expect("non-empty");
        assert_eq!(long.as_str(), "_".repeat(BoundedId::MAX_LEN));
        assert!(HouseholdId::new(long.as_str()).is_ok());
        assert_eq!(HouseholdId::lossy(""), Err(IdError::Empty));
    }

    #[test]
    fn enum_tags_match_engine_spelling() {
        for mechanism in [
            voltmesh_engine::Mechanism::default(),
            voltmesh_engine::Mechanism::Continuous,
            voltmesh_engine::Mechanism::PayAsBid {
                pricing: voltmesh_engine::PayAsBidPricing::Midpoint,
            },
        ] {
            assert_eq!(MechanismTag::from(mechanism).as_str(), mechanism.name());
        }
        assert_eq!(Side::from(voltmesh_engine::Side::Sell).tag_str(), "sell");
    }

    #[test]
    fn enum_tag_texts_are_distinct() {
        let mut seen: Vec<&str> = RejectionReason::ALL.iter().map(|r| r.as_str()).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), RejectionReason::ALL.len());
        let mut kinds: Vec<&str> = DecodeErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), DecodeErrorKind::ALL.len());
    }
}
