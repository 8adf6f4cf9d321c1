//! Metered deliveries to the node (issue 14): once a household's meters have read past an
//! interval's end, the bridge signs what they recorded in it (import and export Wh, with the
//! meter ids) and submits it; the node's ledger admits one per household and interval, within
//! its delivery window after the interval ([`voltmesh_wire::delivery`]). Every registered
//! household delivers, whether it traded or not: the bills are computed from these.
//!
//! # A state machine and a task
//! [`Deliveries`] decides, without I/O and with the time passed in, which deliveries are due:
//! every household not yet delivered for each of the last [`LOOKBACK_INTERVALS`] ended
//! intervals whose energy is complete. `run_deliveries` reads the registers under the lock,
//! signs, submits in batches, and marks a delivery done once the node holds it or refuses it
//! for good (logged); what the node could not take now is asked again at the next tick. A sink
//! that takes no deliveries (an older node) ends the task with one log line.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use ed25519_dalek::SigningKey;
use tracing::{debug, info, warn};
use voltmesh_engine::{Interval, IntervalSpec, ParticipantId};
use voltmesh_wire::delivery::{DeliveryTicket, SignedDelivery};

use crate::household::registers::IntervalEnergy;
use crate::order_sink::{OrderSink, SinkError};
use crate::runtime::clock::SharedClock;
use crate::runtime::shared::{lock, SharedIngest};
use crate::shutdown::Shutdown;

/// Ended intervals the bridge delivers for, back from the last one (the node's default window,
/// an hour, is four 15-minute intervals; older ones would be refused as late).
pub const LOOKBACK_INTERVALS: usize = 4;
/// How often the task looks for deliveries due.
const DELIVERY_TICK: Duration = Duration::from_secs(1);

/// Which deliveries are done (module docs).
///
/// # Invariant
/// `done` holds only intervals among the last [`LOOKBACK_INTERVALS`] ended at the last
/// [`Deliveries::due`].
#[derive(Debug)]
pub struct Deliveries {
    spec: IntervalSpec,
    done: BTreeMap<i64, BTreeSet<ParticipantId>>,
}

impl Deliveries {
    /// Nothing delivered yet, on the interval grid `spec`.
    #[must_use]
    pub fn new(spec: IntervalSpec) -> Deliveries {
        Deliveries {
            spec,
            done: BTreeMap::new(),
        }
    }

    /// The tickets due at `now`: for each of the last [`LOOKBACK_INTERVALS`] intervals ended by
    /// `now`, each of `households` not done whose energy `energy` knows (`Some((energy,
    /// meters))` once every meter has read past the interval's end).
    pub fn due<'a>(
        &mut self,
        now: DateTime<Utc>,
        households: impl Iterator<Item = &'a ParticipantId> + Clone,
        mut energy: impl FnMut(&ParticipantId, Interval) -> Option<(IntervalEnergy, Vec<String>)>,
    ) -> Vec<DeliveryTicket> {
        let mut intervals = Vec::with_capacity(LOOKBACK_INTERVALS);
        // The interval containing `now` has not ended; the ones before it have.
        let before = |i: Interval| self.spec.containing(i.start() - TimeDelta::seconds(1));
        let mut interval = before(self.spec.containing(now));
        for _ in 0..LOOKBACK_INTERVALS {
            intervals.push(interval);
            interval = before(interval);
        }
        let oldest = intervals
            .last()
            .map_or(i64::MIN, |i: &Interval| i.start_unix());
        self.done = self.done.split_off(&oldest);
        let mut tickets = Vec::new();
        for interval in intervals {
            let start = interval.start_unix();
            let done = self.done.get(&start);
            for participant in households.clone() {
                if done.is_some_and(|d| d.contains(participant)) {
                    continue;
                }
                if let Some((e, meters)) = energy(participant, interval) {
                    tickets.push(DeliveryTicket {
                        participant: participant.clone(),
                        interval_start: start,
                        import_wh: e.import_wh,
                        export_wh: e.export_wh,
                        meters,
                    });
                }
            }
        }
        tickets
    }

    /// Marks `participant`'s delivery for the interval at `interval_start` done.
    pub fn done(&mut self, interval_start: i64, participant: ParticipantId) {
        self.done
            .entry(interval_start)
            .or_default()
            .insert(participant);
    }
}

/// Submits every due delivery every [`DELIVERY_TICK`] until shutdown (module docs).
pub(crate) async fn run_deliveries<S: OrderSink>(
    sink: Arc<S>,
    ingest: SharedIngest,
    key: SigningKey,
    neighborhood: String,
    clock: SharedClock,
    mut shutdown: Shutdown,
) {
    let spec = lock(&ingest).book().spec();
    let mut deliveries = Deliveries::new(spec);
    let mut tick = tokio::time::interval(DELIVERY_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = shutdown.recv() => return,
            _ = tick.tick() => {}
        }
        let signed: Vec<SignedDelivery> = {
            let ingest = lock(&ingest);
            let registry = ingest.registry();
            let households: Vec<ParticipantId> =
                registry.households().map(|(p, _)| p.clone()).collect();
            deliveries
                .due(clock.now(), households.iter(), |participant, interval| {
                    let energy = ingest
                        .book()
                        .household_energy(registry, participant, interval)
                        .ok()
                        .flatten()?;
                    let meters = registry
                        .household(participant)
                        .ok()?
                        .meters
                        .iter()
                        .map(ToString::to_string)
                        .collect();
                    Some((energy, meters))
                })
                .into_iter()
                .map(|ticket| ticket.sign(&neighborhood, &key))
                .collect()
        };
        if signed.is_empty() {
            continue;
        }
        let answers = tokio::select! {
            biased;
            () = shutdown.recv() => return,
            answers = sink.submit_deliveries(&signed) => answers,
        };
        match answers {
            Ok(answers) => {
                let (mut taken, mut refused) = (0usize, 0usize);
                for (delivery, answer) in signed.into_iter().zip(answers) {
                    let t = delivery.ticket;
                    match answer {
                        Ok(()) => {
                            taken += 1;
                            deliveries.done(t.interval_start, t.participant);
                        }
                        Err(e) if e.is_retryable() => {
                            debug!(participant = %t.participant, interval = t.interval_start, cause = %e, "delivery not taken yet; retrying");
                        }
                        Err(e) => {
                            refused += 1;
                            warn!(participant = %t.participant, interval = t.interval_start, cause = %e, "node refused the delivery; not retrying");
                            deliveries.done(t.interval_start, t.participant);
                        }
                    }
                }
                debug!(taken, refused, "deliveries submitted");
            }
            Err(SinkError::Unsupported) => {
                info!("the node takes no metered deliveries; the bridge submits none");
                return;
            }
            Err(e) => {
                warn!(cause = %e, deliveries = signed.len(), "deliveries not submitted; retrying")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn p(name: &str) -> ParticipantId {
        ParticipantId::from(name)
    }

    #[test]
    fn ended_intervals_are_due_once_each_household_is_complete_and_done_ones_are_not() {
        let mut deliveries = Deliveries::new(IntervalSpec::DEFAULT);
        let households = [p("a"), p("b")];
        let energy = |complete: &'static [&'static str]| {
            move |who: &ParticipantId, interval: Interval| {
                complete.contains(&who.as_str()).then(|| {
                    (
                        IntervalEnergy {
                            import_wh: 10,
                            export_wh: u64::try_from(interval.start_unix() % 7).unwrap(),
                        },
                        vec![format!("m-{who}")],
                    )
                })
            }
        };
        // At 10:20 the 10:00 interval and the three before it have ended; only `a` is complete.
        let due = deliveries.due(
            at("2026-12-05T10:20:00Z"),
            households.iter(),
            energy(&["a"]),
        );
        let starts: Vec<i64> = due.iter().map(|t| t.interval_start).collect();
        let ten = at("2026-12-05T10:00:00Z").timestamp();
        assert_eq!(starts, [ten, ten - 900, ten - 1800, ten - 2700]);
        assert!(due
            .iter()
            .all(|t| t.participant == p("a") && t.meters == ["m-a"]));
        deliveries.done(ten, p("a"));
        let due = deliveries.due(
            at("2026-12-05T10:20:00Z"),
            households.iter(),
            energy(&["a", "b"]),
        );
        assert_eq!(due.len(), 7, "b's four, a's three not done");
        assert!(!due
            .iter()
            .any(|t| t.participant == p("a") && t.interval_start == ten));
        // An hour later the old intervals are out of the window and forgotten.
        let later = deliveries.due(at("2026-12-05T11:20:00Z"), households.iter(), energy(&[]));
        assert!(later.is_empty());
        assert!(deliveries.done.is_empty());
    }
}
