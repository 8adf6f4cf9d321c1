//! The seam between the simulation loop and whatever watches it (the InfluxDB recorder in
//! [`crate::metrics`]): after each market interval [`crate::run::run_observed`] hands an
//! [`IntervalObserver`] an [`IntervalView`] of what the engine and the power flow produced.
//!
//! Observers only read: nothing they do can change the run, so a run's report is the same with or
//! without one. The unit observer `()` does nothing and compiles away, so a run without metrics
//! pays nothing for the seam.

use chrono::NaiveDateTime;
use voltmesh_engine::{ClearingOutcome, Order, Settlement, Tariffs};

use crate::powerflow::Violations;
use crate::record::IntervalRecord;

/// One market interval as the simulation saw it.
#[derive(Debug, Clone, Copy)]
pub struct IntervalView<'a> {
    /// Interval start in simulated time (the profiles' standard time, read as UTC).
    pub start: NaiveDateTime,
    /// The book that was cleared (admitted orders, in submission order).
    pub orders: &'a [Order],
    /// The engine's result.
    pub outcome: &'a ClearingOutcome,
    /// The interval's bills, in participant-id order.
    pub settlement: &'a Settlement,
    /// Feed-in tariff and retail price.
    pub tariffs: Tariffs,
    /// The interval's record (grid figures, energy, costs).
    pub record: &'a IntervalRecord,
    /// Per kind, the most buses/lines/transformers in violation at any step of the interval
    /// (with the market).
    pub worst: Violations,
}

/// Watches a run, one call per market interval, in time order.
pub trait IntervalObserver {
    /// Called after the interval has been cleared, settled and checked.
    fn interval(&mut self, view: &IntervalView<'_>);
}

impl IntervalObserver for () {
    #[inline]
    fn interval(&mut self, _: &IntervalView<'_>) {}
}
