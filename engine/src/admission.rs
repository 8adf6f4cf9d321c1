//! [`AdmissionLimits`]: how much one participant and one interval may put on the ledger.
//!
//! The limits are market rules (genesis `market.admission`, later changeable by governance), not
//! node settings: every validator must apply the same ones, because the ledger refuses orders
//! over them when it executes a block. They bound the size of an interval's clearing, which every
//! block at the interval's gate must carry (audit finding C1), and how much of the mempool and of
//! each block one participant can take (audit finding M2).

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// Per-participant and per-interval admission limits.
///
/// # Invariant
/// Every field is positive (checked by [`AdmissionLimits::validate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdmissionLimits {
    /// Longest order id, in bytes.
    pub max_order_id_bytes: u32,
    /// Most orders one participant may have in one interval's book.
    pub max_orders_per_participant_interval: u32,
    /// Most orders one interval's book may hold (bounds the interval's clearing).
    pub max_orders_per_interval: u32,
    /// Most orders of one participant a node keeps pending (not yet in a block).
    pub max_pending_per_participant: u32,
}

impl AdmissionLimits {
    /// The defaults: 64-byte ids, 16 orders per participant and interval, 1000 orders per
    /// interval, 256 pending orders per participant. Blocks record a clearing in a bounded form
    /// (its digest), so `max_orders_per_interval` bounds each node's work and memory per
    /// interval, not a block's size: a community of 10,000 households raises it.
    pub const DEFAULT: AdmissionLimits = AdmissionLimits {
        max_order_id_bytes: 64,
        max_orders_per_participant_interval: 16,
        max_orders_per_interval: 1_000,
        max_pending_per_participant: 256,
    };

    /// Checks that every limit is positive.
    ///
    /// # Errors
    /// [`ConfigError::ZeroAdmissionLimit`] naming the field.
    pub fn validate(self) -> Result<AdmissionLimits, ConfigError> {
        for (name, value) in [
            ("max_order_id_bytes", self.max_order_id_bytes),
            (
                "max_orders_per_participant_interval",
                self.max_orders_per_participant_interval,
            ),
            ("max_orders_per_interval", self.max_orders_per_interval),
            (
                "max_pending_per_participant",
                self.max_pending_per_participant,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::ZeroAdmissionLimit(name));
            }
        }
        Ok(self)
    }
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        AdmissionLimits::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_fields_take_the_defaults_and_zero_is_refused() {
        let limits: AdmissionLimits =
            serde_json::from_str(r#"{"max_orders_per_interval":10}"#).unwrap();
        assert_eq!(limits.max_orders_per_interval, 10);
        assert_eq!(limits.max_order_id_bytes, 64);
        assert_eq!(
            AdmissionLimits::DEFAULT.validate(),
            Ok(AdmissionLimits::DEFAULT)
        );
        let zero = AdmissionLimits {
            max_pending_per_participant: 0,
            ..AdmissionLimits::DEFAULT
        };
        assert_eq!(
            zero.validate(),
            Err(ConfigError::ZeroAdmissionLimit(
                "max_pending_per_participant"
            ))
        );
    }
}
