//! Metered deliveries on the ledger (issue 14, deliverable 1): what each participant's meters
//! recorded per interval, admitted by the rules of [`voltmesh_wire::delivery`].
//!
//! # Invariants
//! [`LedgerState`] holds at most one [`Metered`] per `(interval, participant)`, and only for
//! intervals whose delivery window was still open at the last block (a block first forgets the
//! intervals whose window closed before its time, then admits its deliveries); a delivery the
//! state holds was admitted by [`LedgerState::admit_delivery`] at its block's time.

use chrono::DateTime;
use voltmesh_engine::{Interval, ParticipantId, Wh};
use voltmesh_wire::delivery::{DeliveryRejection, SignedDelivery};
use voltmesh_wire::{Genesis, OrderRejection};

use super::LedgerState;

/// One participant's metered energy in one interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Metered {
    /// Taken from the grid, Wh.
    pub import_wh: Wh,
    /// Fed into the grid, Wh.
    pub export_wh: Wh,
}

/// The end of the interval starting at `interval_start`, and when its delivery window closes,
/// ms since the Unix epoch; `None` off the chain's grid.
pub(super) fn window_of(genesis: &Genesis, interval_start: i64) -> Option<(u64, u64)> {
    let spec = genesis.market.interval;
    let interval = DateTime::from_timestamp(interval_start, 0)
        .and_then(|start| Interval::starting_at(spec, start))?;
    let ends_ms = u64::try_from(interval.end().timestamp_millis()).ok()?;
    let closes_ms = ends_ms + u64::from(genesis.deliveries.window_secs) * 1000;
    Some((ends_ms, closes_ms))
}

impl LedgerState {
    /// The deliveries held, by interval and participant (intervals whose window is open).
    pub fn deliveries(&self) -> impl Iterator<Item = (&(i64, ParticipantId), &Metered)> + '_ {
        self.deliveries.iter()
    }

    /// Checks a delivery against this state at time `at_ms`, without changing anything: form,
    /// interval, window, signer, energy, duplicate, and the signature last.
    ///
    /// # Errors
    /// The first check it fails, with its own [`DeliveryRejection::kind`].
    pub fn admit_delivery(
        &self,
        genesis: &Genesis,
        delivery: &SignedDelivery,
        at_ms: u64,
    ) -> Result<(), DeliveryRejection> {
        self.admit_delivery_unsigned(genesis, delivery, at_ms)?;
        if !delivery.signature_valid(&genesis.neighborhood) {
            return Err(DeliveryRejection::BadSignature);
        }
        Ok(())
    }

    /// Every check of [`LedgerState::admit_delivery`] but the signature (for deliveries whose
    /// signature a node verified when it took them).
    ///
    /// # Errors
    /// As [`LedgerState::admit_delivery`].
    pub fn admit_delivery_unsigned(
        &self,
        genesis: &Genesis,
        delivery: &SignedDelivery,
        at_ms: u64,
    ) -> Result<(), DeliveryRejection> {
        let ticket = &delivery.ticket;
        ticket.check_meters()?;
        let (ends_ms, closes_ms) = window_of(genesis, ticket.interval_start)
            .ok_or(DeliveryRejection::WrongInterval(ticket.interval_start))?;
        if at_ms < ends_ms {
            return Err(DeliveryRejection::NotDelivered {
                interval_start: ticket.interval_start,
                ends_ms,
            });
        }
        if at_ms > closes_ms {
            return Err(DeliveryRejection::Late {
                interval_start: ticket.interval_start,
                closed_ms: closes_ms,
            });
        }
        self.community
            .check_signer(
                &ticket.participant,
                &delivery.public_key,
                ticket.interval_start,
            )
            .map_err(|e| match e {
                OrderRejection::ParticipantRemoved {
                    participant,
                    from_interval,
                } => DeliveryRejection::ParticipantRemoved {
                    participant,
                    from_interval,
                },
                OrderRejection::KeyNotAllowed { participant, key } => {
                    DeliveryRejection::KeyNotAllowed { participant, key }
                }
                _ => DeliveryRejection::UnknownParticipant(ticket.participant.to_string()),
            })?;
        let max = genesis
            .deliveries
            .max_wh(genesis.market.interval.length_secs());
        let wh = ticket.import_wh.max(ticket.export_wh);
        if wh > max {
            return Err(DeliveryRejection::AbsurdEnergy { wh, max });
        }
        if self
            .deliveries
            .contains_key(&(ticket.interval_start, ticket.participant.clone()))
        {
            return Err(DeliveryRejection::Duplicate {
                participant: ticket.participant.to_string(),
                interval_start: ticket.interval_start,
            });
        }
        Ok(())
    }

    /// Admits and records a delivery at `at_ms`.
    ///
    /// # Errors
    /// As [`LedgerState::admit_delivery`]; the state is unchanged on error.
    pub fn insert_delivery(
        &mut self,
        genesis: &Genesis,
        delivery: &SignedDelivery,
        at_ms: u64,
    ) -> Result<(), DeliveryRejection> {
        self.admit_delivery(genesis, delivery, at_ms)?;
        self.record_delivery(delivery);
        Ok(())
    }

    /// As [`LedgerState::insert_delivery`] for a delivery whose signature was verified (a
    /// node's pool takes only such).
    ///
    /// # Errors
    /// As [`LedgerState::admit_delivery_unsigned`]; the state is unchanged on error.
    pub(super) fn insert_verified_delivery(
        &mut self,
        genesis: &Genesis,
        delivery: &SignedDelivery,
        at_ms: u64,
    ) -> Result<(), DeliveryRejection> {
        self.admit_delivery_unsigned(genesis, delivery, at_ms)?;
        self.record_delivery(delivery);
        Ok(())
    }

    fn record_delivery(&mut self, delivery: &SignedDelivery) {
        let ticket = &delivery.ticket;
        std::sync::Arc::make_mut(&mut self.deliveries).insert(
            (ticket.interval_start, ticket.participant.clone()),
            Metered {
                import_wh: ticket.import_wh,
                export_wh: ticket.export_wh,
            },
        );
    }
}
