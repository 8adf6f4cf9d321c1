//! Committed bills to households (issue 14): once an interval's bills have committed on the
//! ledger, the bridge reads each of its households' bill from the node
//! ([`OrderSink::bills`], the signed `GET /v1/participants/{id}/bills`) and publishes it,
//! retained, on `<prefix>/households/<participant>/bill` exactly as the node served it: a
//! [`CommittedBill`] with the height and hash of the block that holds it, so the household can
//! check it against any node. The `settlement` topic next to it stays the bridge's own estimate
//! from its registers ([`crate::runtime::followups`]).
//!
//! # When
//! The validators settle an interval in the first block after its delivery window closes (its
//! end plus genesis `deliveries.window_secs`, [`voltmesh_wire::bill`]). A *round* is due once per
//! interval, when a new interval's window has closed and a grace has passed (a quarter of an
//! interval, at most [`MAX_GRACE`], for that block to commit). A round asks the node, once per
//! household of the registry, for the bills of the last [`LOOKBACK_INTERVALS`] intervals whose
//! windows have closed (one request each, at most [`READS_IN_FLIGHT`] at a time), and publishes
//! every bill not published yet, oldest first. A bill that was not committed yet, or that a
//! failed read missed, is found by one of the next rounds; one older than the lookback is
//! no longer published (the node still serves it, and its statement sums it).
//!
//! # Once per interval
//! [`CommittedBills`] keeps which (interval, household) bills it published, only for the
//! intervals of the current lookback: its memory is bounded by the lookback times the households,
//! whatever the age of the chain. A restarted bridge publishes the lookback's bills again (the
//! same bytes, retained).
//!
//! # Bad answers
//! Nothing here stops the bridge. A refused read (the node answers 401/403: the bridge key is
//! not allowed to read the household's bills) is logged at `warn` once per round with the number
//! of households refused, and asked again next round. A node that cannot be reached (every node,
//! with failover) ends the round at once, logged at `warn`; the households not asked are asked
//! next round. A node without the route (404: older than bills on the ledger) ends the task with
//! one `info` line.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};
use voltmesh_engine::{IntervalSpec, ParticipantId};
use voltmesh_wire::bill::CommittedBill;

use crate::order_sink::{OrderSink, SinkError};
use crate::runtime::clock::SharedClock;
use crate::runtime::mqtt::results::ResultMessage;
use crate::runtime::shared::{lock, SharedIngest};
use crate::shutdown::Shutdown;

/// Intervals whose windows have closed that each round asks for, back from the newest.
pub const LOOKBACK_INTERVALS: i64 = 4;
/// The longest wait after an interval's window closes before its round (module docs).
pub const MAX_GRACE: Duration = Duration::from_secs(30);
/// Bill reads a round has in flight at most.
pub const READS_IN_FLIGHT: usize = 8;
/// How often the task looks whether a round is due.
const BILLS_TICK: Duration = Duration::from_millis(250);

/// The intervals a round asks for: those starting in `from..to` (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// The oldest interval's start (inclusive).
    pub from: i64,
    /// The newest interval's end (exclusive).
    pub to: i64,
}

/// When rounds are due and which bills were published (module docs). Pure: times are arguments.
///
/// # Invariant
/// `published` holds only intervals of the last round returned by [`CommittedBills::due`].
#[derive(Debug, Clone)]
pub struct CommittedBills {
    length: i64,
    /// From an interval's end to its round: the delivery window plus the grace.
    wait: TimeDelta,
    /// The last round.
    last: Option<Round>,
    published: BTreeMap<i64, BTreeSet<ParticipantId>>,
}

impl CommittedBills {
    /// Nothing published yet, for intervals of `spec` whose bills commit `window_secs` after
    /// their end (genesis `deliveries.window_secs`).
    #[must_use]
    pub fn new(spec: IntervalSpec, window_secs: u32) -> CommittedBills {
        let length = i64::from(spec.length_secs());
        let max_grace = i64::try_from(MAX_GRACE.as_millis()).unwrap_or(i64::MAX);
        let grace = TimeDelta::milliseconds((length * 1000 / 4).min(max_grace));
        CommittedBills {
            length,
            wait: TimeDelta::seconds(i64::from(window_secs)) + grace,
            last: None,
            published: BTreeMap::new(),
        }
    }

    /// The round due at `now`, if any: when the newest interval whose window closed (plus the
    /// grace) by `now` is newer than the last round's. Forgets what was published for intervals
    /// before the new round.
    pub fn due(&mut self, now: DateTime<Utc>) -> Option<Round> {
        let waited = (now - self.wait).timestamp();
        // The interval containing `waited` has not ended by then; the one before it has.
        let newest = waited.div_euclid(self.length) * self.length - self.length;
        let to = newest + self.length;
        if self.last.is_some_and(|last| last.to >= to) {
            return None;
        }
        let round = Round {
            from: newest - (LOOKBACK_INTERVALS - 1) * self.length,
            to,
        };
        self.published = self.published.split_off(&round.from);
        self.last = Some(round);
        Some(round)
    }

    /// Of `bills`, the node's answer for `participant` in the last round, the ones to publish:
    /// `participant`'s, in the round's intervals and not published yet, oldest first. Marks them
    /// published.
    pub fn take(
        &mut self,
        participant: &ParticipantId,
        mut bills: Vec<CommittedBill>,
    ) -> Vec<CommittedBill> {
        let Some(round) = self.last else {
            return Vec::new();
        };
        bills.sort_by_key(|b| b.interval_start);
        bills.retain(|b| {
            &b.bill.participant == participant
                && (round.from..round.to).contains(&b.interval_start)
                && self
                    .published
                    .entry(b.interval_start)
                    .or_default()
                    .insert(participant.clone())
        });
        bills
    }

    /// How many (interval, household) bills are remembered as published.
    pub fn remembered(&self) -> usize {
        self.published.values().map(BTreeSet::len).sum()
    }
}

/// What a round saw, for its log lines.
#[derive(Debug, Default)]
struct Tally {
    asked: usize,
    published: usize,
    refused: usize,
    first_refusal: Option<(ParticipantId, SinkError)>,
    /// The node could not be reached: the round stopped here.
    unavailable: Option<SinkError>,
}

/// How a round ended.
enum RoundEnd {
    /// Every household asked, or the round stopped on an unreachable node.
    Done(Tally),
    /// The node serves no bills: stop the task.
    Unsupported,
    /// Shutdown, or the results task is gone.
    Stop,
}

/// Runs a round whenever one is due, every [`BILLS_TICK`], until shutdown (module docs). The
/// bills go to the results task on `results`, which publishes them retained.
pub(crate) async fn run_bills<S: OrderSink>(
    sink: Arc<S>,
    ingest: SharedIngest,
    mut bills: CommittedBills,
    results: mpsc::Sender<ResultMessage>,
    clock: SharedClock,
    mut shutdown: Shutdown,
) {
    let mut tick = tokio::time::interval(BILLS_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = shutdown.recv() => return,
            _ = tick.tick() => {}
        }
        let Some(round) = bills.due(clock.now()) else {
            continue;
        };
        let households: Vec<ParticipantId> = lock(&ingest)
            .registry()
            .households()
            .map(|(p, _)| p.clone())
            .collect();
        let total = households.len();
        match read_round(
            &sink,
            households,
            round,
            &mut bills,
            &results,
            &mut shutdown,
        )
        .await
        {
            RoundEnd::Stop => return,
            RoundEnd::Unsupported => {
                info!("the node serves no bills; the bridge publishes none on the bill topics");
                return;
            }
            RoundEnd::Done(tally) => log_round(round, total, &tally),
        }
    }
}

fn log_round(round: Round, households: usize, tally: &Tally) {
    if tally.published > 0 {
        info!(
            from = round.from,
            to = round.to,
            published = tally.published,
            households,
            "committed bills published"
        );
    } else {
        debug!(
            from = round.from,
            to = round.to,
            households,
            "no new committed bills"
        );
    }
    if let Some((participant, cause)) = &tally.first_refusal {
        warn!(
            from = round.from,
            to = round.to,
            refused = tally.refused,
            %participant,
            cause = %cause,
            "the node refused to serve committed bills (is the bridge key allowed to read them?); \
             asking again next interval"
        );
    }
    if let Some(cause) = &tally.unavailable {
        warn!(
            from = round.from,
            to = round.to,
            not_asked = households.saturating_sub(tally.asked),
            cause = %cause,
            "committed bills not read: node unavailable; asking again next interval"
        );
    }
}

/// Asks the node for every household's bills of `round`, at most [`READS_IN_FLIGHT`] at a time,
/// and queues the new ones on `results` as their answers come in.
async fn read_round<S: OrderSink>(
    sink: &Arc<S>,
    households: Vec<ParticipantId>,
    round: Round,
    bills: &mut CommittedBills,
    results: &mpsc::Sender<ResultMessage>,
    shutdown: &mut Shutdown,
) -> RoundEnd {
    let mut tally = Tally::default();
    let mut waiting = households.into_iter();
    let mut reads = JoinSet::new();
    loop {
        while tally.unavailable.is_none() && reads.len() < READS_IN_FLIGHT {
            let Some(participant) = waiting.next() else {
                break;
            };
            tally.asked += 1;
            let sink = Arc::clone(sink);
            reads.spawn(async move {
                let answer = sink.bills(&participant, round.from, round.to).await;
                (participant, answer)
            });
        }
        let joined = tokio::select! {
            biased;
            () = shutdown.recv() => return RoundEnd::Stop,
            joined = reads.join_next() => joined,
        };
        let Some(joined) = joined else {
            return RoundEnd::Done(tally);
        };
        let (participant, answer) = match joined {
            Ok(read) => read,
            Err(e) => {
                warn!(cause = %e, "a committed bill read failed");
                continue;
            }
        };
        match answer {
            Ok(served) => {
                for bill in bills.take(&participant, served) {
                    debug!(
                        %participant,
                        interval = bill.interval_start,
                        height = bill.height,
                        block = %bill.block,
                        "committed bill published"
                    );
                    tally.published += 1;
                    let sent = tokio::select! {
                        biased;
                        () = shutdown.recv() => return RoundEnd::Stop,
                        sent = results.send(ResultMessage::Bill(bill)) => sent,
                    };
                    if sent.is_err() {
                        return RoundEnd::Stop;
                    }
                }
            }
            Err(SinkError::Unsupported) => return RoundEnd::Unsupported,
            Err(e) if e.is_retryable() => {
                tally.unavailable.get_or_insert(e);
            }
            Err(e) => {
                tally.refused += 1;
                tally.first_refusal.get_or_insert((participant, e));
            }
        }
    }
}

/// A committed bill for tests.
#[cfg(test)]
pub(crate) mod sample {
    use voltmesh_engine::{Money, ParticipantId};
    use voltmesh_wire::bill::{Bill, CommittedBill};
    use voltmesh_wire::Currency;

    /// `participant`'s bill for the interval at `start`, committed at `height`.
    pub(crate) fn committed(participant: &str, start: i64, height: u64) -> CommittedBill {
        let total = Money::from_nanos(i128::from(height) * 1_000_000 + 123);
        CommittedBill {
            interval_start: start,
            height,
            block: format!("{height:064x}"),
            currency: Currency::EUR,
            bill: Bill {
                participant: ParticipantId::from(participant),
                bought_wh: 100,
                sold_wh: 0,
                metered: true,
                metered_net_export_wh: -120,
                from_utility_wh: 20,
                to_utility_wh: 0,
                local_energy: total,
                network_fees: Money::ZERO,
                utility: Money::ZERO,
                total,
                billed: total,
                carry: Money::ZERO,
                no_market: total,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::sample::committed;
    use super::*;
    use crate::order_sink::{ClientError, Submitted};
    use crate::runtime::testing;
    use voltmesh_wire::{IntervalClearing, SignedOrder};

    fn p(name: &str) -> ParticipantId {
        ParticipantId::from(name)
    }

    /// 15-minute intervals, bills an hour after their end, rounds 30 s (the longest grace) after.
    fn bills() -> CommittedBills {
        CommittedBills::new(IntervalSpec::DEFAULT, 3600)
    }

    #[test]
    fn a_round_is_due_once_per_interval_after_its_window_and_the_grace() {
        let mut bills = bills();
        let t0 = testing::T0;
        // At T0 + 1 h + 30 s the interval ending at T0 has its window closed and the grace out.
        let at = |secs: i64| DateTime::from_timestamp(t0 + 3600 + 30 + secs, 0).unwrap();
        assert_eq!(
            bills.due(at(0)),
            Some(Round {
                from: t0 - 4 * 900,
                to: t0
            })
        );
        assert_eq!(bills.due(at(0)), None, "once");
        assert_eq!(
            bills.due(at(899)),
            None,
            "not before the next interval's window"
        );
        assert_eq!(
            bills.due(at(900)),
            Some(Round {
                from: t0 - 3 * 900,
                to: t0 + 900
            })
        );
        // Time going back does not repeat a round; a jump forward gives the newest round.
        assert_eq!(bills.due(at(-10)), None);
        assert_eq!(
            bills.due(at(9_000)).map(|r| r.to),
            Some(t0 + 9_000),
            "the newest only"
        );
        // Short intervals: a quarter of an interval of grace.
        let mut short = CommittedBills::new(IntervalSpec::new(20, 5).unwrap(), 1);
        let start = t0 + 20;
        let ends = DateTime::from_timestamp(start + 20, 0).unwrap();
        let round = |secs: i64| ends + TimeDelta::milliseconds(secs);
        assert_eq!(short.due(round(5_999)).map(|r| r.to), Some(start));
        assert_eq!(short.due(round(6_000)).map(|r| r.to), Some(start + 20));
    }

    #[test]
    fn each_bill_is_taken_once_and_memory_stays_with_the_lookback() {
        let mut bills = bills();
        let t0 = testing::T0;
        let at = |secs: i64| DateTime::from_timestamp(t0 + 3600 + 30 + secs, 0).unwrap();
        assert_eq!(bills.take(&p("a"), vec![committed("a", t0 - 900, 7)]), []);
        let round = bills.due(at(0)).unwrap();
        let newest = round.to - 900;
        let answer = vec![
            committed("a", newest, 9),
            committed("a", newest - 900, 8),
            committed("a", newest, 9),
            committed("b", newest, 9),
            committed("a", round.to, 10),
            committed("a", round.from - 900, 3),
        ];
        let taken = bills.take(&p("a"), answer.clone());
        let starts: Vec<(i64, u64)> = taken.iter().map(|b| (b.interval_start, b.height)).collect();
        assert_eq!(
            starts,
            [(newest - 900, 8), (newest, 9)],
            "a's, in the round, once each, oldest first"
        );
        assert_eq!(bills.take(&p("a"), answer), [], "published already");
        assert_eq!(
            bills.take(&p("b"), vec![committed("b", newest, 9)]).len(),
            1
        );
        assert_eq!(bills.remembered(), 3);
        // A day of rounds later only the lookback's intervals are remembered.
        for step in 1..=96 {
            let round = bills.due(at(900 * step)).unwrap();
            for who in ["a", "b", "c"] {
                let served = (0..LOOKBACK_INTERVALS)
                    .map(|k| committed(who, round.from + k * 900, 1))
                    .collect();
                bills.take(&p(who), served);
            }
            assert!(bills.remembered() <= 3 * 4, "{}", bills.remembered());
        }
        assert_eq!(bills.remembered(), 12);
    }

    /// A node that serves bills from a table, refuses some households and can be down.
    #[derive(Debug, Default)]
    struct Node {
        bills: Mutex<Vec<CommittedBill>>,
        refused: BTreeSet<ParticipantId>,
        down: std::sync::atomic::AtomicBool,
        asked: Mutex<Vec<(ParticipantId, i64, i64)>>,
    }

    impl OrderSink for Node {
        async fn submit(&self, _: &SignedOrder) -> Result<Submitted, SinkError> {
            Ok(Submitted::Accepted)
        }

        async fn clearing(&self, _: i64) -> Result<Option<IntervalClearing>, SinkError> {
            Ok(None)
        }

        async fn bills(
            &self,
            participant: &ParticipantId,
            from: i64,
            to: i64,
        ) -> Result<Vec<CommittedBill>, SinkError> {
            self.asked
                .lock()
                .unwrap()
                .push((participant.clone(), from, to));
            if self.down.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(SinkError::Node(ClientError::Unavailable("down".into())));
            }
            if self.refused.contains(participant) {
                return Err(SinkError::Node(ClientError::Rejected {
                    kind: "forbidden".into(),
                    message: "not allowed".into(),
                }));
            }
            Ok(self
                .bills
                .lock()
                .unwrap()
                .iter()
                .filter(|b| {
                    &b.bill.participant == participant && (from..to).contains(&b.interval_start)
                })
                .cloned()
                .collect())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_task_publishes_each_committed_bill_once_and_rides_out_refusals_and_outages() {
        let clock = testing::clock();
        let ingest = testing::ingest();
        let t0 = testing::T0;
        // Bills an hour after each interval: the first round (at T0) asks for intervals that
        // ended an hour and 30 s before.
        let first = t0 - 3600 - 900 * 2;
        let node = Arc::new(Node {
            bills: Mutex::new(vec![committed("hh-01", first, 40)]),
            refused: [p("hh-02")].into(),
            ..Node::default()
        });
        let (results_tx, mut results) = mpsc::channel(16);
        let (notify, shutdown) = testing::shutdown();
        let task = tokio::spawn(run_bills(
            Arc::clone(&node),
            ingest,
            bills(),
            results_tx,
            clock.clone(),
            shutdown,
        ));
        let Some(ResultMessage::Bill(got)) = results.recv().await else {
            panic!("a bill")
        };
        assert_eq!(got, committed("hh-01", first, 40));
        // Every interval: both households asked again, nothing published twice.
        tokio::time::sleep(Duration::from_secs(900 * 2)).await;
        assert!(results.try_recv().is_err(), "published once");
        let asked = node.asked.lock().unwrap().clone();
        assert_eq!(asked.len(), 6, "two households, three rounds: {asked:?}");
        assert!(asked.iter().filter(|a| a.0 == p("hh-02")).count() == 3);
        // The node is down for a round: nothing published, asked again at the next.
        node.down.store(true, std::sync::atomic::Ordering::Relaxed);
        let next = first + 900 * 3;
        node.bills
            .lock()
            .unwrap()
            .push(committed("hh-01", next, 44));
        tokio::time::sleep(Duration::from_secs(900)).await;
        assert!(results.try_recv().is_err());
        node.down.store(false, std::sync::atomic::Ordering::Relaxed);
        let Some(ResultMessage::Bill(got)) = results.recv().await else {
            panic!("a bill")
        };
        assert_eq!(got, committed("hh-01", next, 44));
        assert!(clock.now() >= testing::at(2_730), "at the next round");
        drop(notify);
        task.await.expect("stops at shutdown");
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_without_bills_ends_the_task() {
        let (results_tx, _results) = mpsc::channel(1);
        let (_notify, shutdown) = testing::shutdown();
        let sink = Arc::new(testing::FakeSink::new(testing::clock()));
        tokio::time::timeout(
            Duration::from_secs(5),
            run_bills(
                sink,
                testing::ingest(),
                bills(),
                results_tx,
                testing::clock(),
                shutdown,
            ),
        )
        .await
        .expect("ends on its own");
    }
}
