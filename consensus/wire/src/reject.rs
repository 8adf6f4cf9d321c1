//! Why an order is refused, and the stable name of each reason (the API's `error` field).

use voltmesh_engine::RejectReason;

/// Why an order is refused (by the node API, the mempool or a validator).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderRejection {
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// Genesis does not know the participant.
    #[error("unknown participant {0}")]
    UnknownParticipant(String),
    /// The key is not one genesis allows for the participant.
    #[error("key {key} may not sign for participant {participant}")]
    KeyNotAllowed {
        /// The participant.
        participant: String,
        /// The signer's key.
        key: String,
    },
    /// The participant was removed from the community from `from_interval` on (governance).
    #[error("participant {participant} was removed from interval {from_interval} on")]
    ParticipantRemoved {
        /// The participant.
        participant: String,
        /// The first interval it may not trade in.
        from_interval: i64,
    },
    /// The nonce is not above the participant's last. Nodes no longer send it (audit finding M3:
    /// replays are `duplicate_id` or `closed_interval`); kept so that clients of older nodes still
    /// classify it.
    #[error("replayed nonce {nonce} (last accepted {last})")]
    ReplayedNonce {
        /// The order's nonce.
        nonce: u64,
        /// The participant's last accepted nonce.
        last: u64,
    },
    /// The order id is not allowed ([`crate::order::check_order_id`]).
    #[error("bad order id: {0}")]
    BadOrderId(#[from] crate::order::OrderIdError),
    /// The order id is longer than the market rules allow.
    #[error("the order id has {bytes} bytes; at most {max} are allowed")]
    OrderIdTooLong {
        /// The id's length.
        bytes: usize,
        /// The market's limit.
        max: u32,
    },
    /// The participant has as many orders in the interval (in the book or pending) as the market
    /// rules allow.
    #[error("participant already has {max} orders in interval {interval_start}, the most allowed")]
    ParticipantIntervalFull {
        /// The interval.
        interval_start: i64,
        /// The market's limit.
        max: u32,
    },
    /// The interval's book (with the orders pending for it) is full.
    #[error("interval {interval_start} already has {max} orders, the most allowed")]
    IntervalFull {
        /// The interval.
        interval_start: i64,
        /// The market's limit.
        max: u32,
    },
    /// The participant has as many pending orders on this node as the market rules allow; retry
    /// once some are in a block.
    #[error("participant already has {max} pending orders, the most allowed; retry later")]
    ParticipantPendingFull {
        /// The market's limit.
        max: u32,
    },
    /// The interval is not on the grid or too far ahead.
    #[error("wrong interval {0}: not aligned to the interval length or too far ahead")]
    WrongInterval(i64),
    /// The interval's gate has closed.
    #[error("interval {0} is closed (gate closure passed)")]
    ClosedInterval(i64),
    /// The node holds as many pending orders as it may; retry later.
    #[error("the node's mempool is full; retry later")]
    MempoolFull,
    /// The engine's rules refused it (price outside the tariffs, quantity, duplicate id).
    #[error("{0}")]
    Market(#[from] RejectReason),
}

impl OrderRejection {
    /// A stable, low-cardinality name for metrics and API error codes.
    pub fn kind(&self) -> &'static str {
        match self {
            OrderRejection::BadSignature => "bad_signature",
            OrderRejection::UnknownParticipant(_) => "unknown_participant",
            OrderRejection::KeyNotAllowed { .. } => "key_not_allowed",
            OrderRejection::ParticipantRemoved { .. } => "participant_removed",
            OrderRejection::ReplayedNonce { .. } => "replayed_nonce",
            OrderRejection::BadOrderId(_) => "bad_order_id",
            OrderRejection::OrderIdTooLong { .. } => "order_id_too_long",
            OrderRejection::ParticipantIntervalFull { .. } => "participant_interval_full",
            OrderRejection::IntervalFull { .. } => "interval_full",
            OrderRejection::ParticipantPendingFull { .. } => "participant_pending_full",
            OrderRejection::WrongInterval(_) => "wrong_interval",
            OrderRejection::ClosedInterval(_) => "closed_interval",
            OrderRejection::MempoolFull => "mempool_full",
            OrderRejection::Market(
                RejectReason::BelowFeedIn { .. } | RejectReason::AboveRetail { .. },
            ) => "price_outside_tariffs",
            OrderRejection::Market(RejectReason::DuplicateId(_)) => "duplicate_id",
            OrderRejection::Market(_) => "market_rules",
        }
    }
}
