//! Results back to households: for every interval whose orders the node took, the committed
//! clearing is read from the node once the gate has closed ([`OrderSink::clearing`], polled with
//! backoff), each household's fills and the clearing summary are published, and once a household's
//! meters have read past the interval's end, its settlement (its trades against its metered
//! energy, at the tariffs and network fee in force for that interval, which the planner hands in
//! with it: the node's rule schedule, see [`crate::community`]). What is still missing [`FOLLOW_INTERVALS`] intervals after
//! the interval's end is given up.
//!
//! # A state machine and a task
//! [`FollowUps`] decides, without I/O and with the time passed in: which intervals' clearings are
//! due to be read ([`FollowUps::due`]), what a clearing answer means ([`FollowUps::on_clearing`]:
//! fills and the summary, or when to ask again), and, given the registers, who can be settled and
//! what to give up ([`FollowUps::tick`]). It returns [`Decision`]s. `run_followups` only polls
//! the node, reads the registers under the lock and carries the decisions out (results go to the
//! results task's queue, which publishes them retained).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use voltmesh_engine::settlement::SettlementError;
use voltmesh_engine::{ClearingOutcome, Interval, ParticipantId, Price, Tariffs, Trade};
use voltmesh_wire::clearing::Withheld;
use voltmesh_wire::Currency;

use crate::community::IntervalRules;
use crate::order_sink::{OrderSink, SinkError};
use crate::runtime::clock::SharedClock;
use crate::runtime::market_board::MarketBoard;
use crate::runtime::mqtt::backoff::Backoff;
use crate::runtime::mqtt::publisher::Publisher;
use crate::runtime::mqtt::results::{
    ClearingSummary, HouseholdFills, ResultMessage, SettlementNotice,
};
use crate::runtime::shared::{lock, SharedIngest};
use crate::shutdown::Shutdown;

/// How many intervals past its end the bridge keeps following an interval (waiting for its
/// clearing, then for meter readings past its end) before it gives up on what is still missing.
pub const FOLLOW_INTERVALS: i64 = 8;
/// What the planner hands the follow-up task: an interval, the households whose orders the node
/// took, and the rules in force for that interval.
pub(crate) type Follow = (Interval, BTreeSet<ParticipantId>, IntervalRules);
/// Follow-ups waiting between the planner and the follow-up task.
pub(crate) const FOLLOW_QUEUE: usize = 16;
/// How often the follow-up task looks at the intervals it follows.
const FOLLOW_TICK: Duration = Duration::from_millis(250);
/// First and longest wait between two reads of a clearing that is not there yet.
const POLL_MIN: Duration = Duration::from_millis(250);
const POLL_MAX: Duration = Duration::from_secs(5);

/// The node's answer to "what did this interval clear?".
#[derive(Debug, Clone, PartialEq)]
pub enum ClearingAnswer {
    /// Committed: the engine's outcome as the node showed it to the bridge (its households'
    /// trades and unfilled orders), and how many of the others it withheld.
    Cleared(ClearingOutcome, Withheld),
    /// Not committed yet (404): ask again later.
    NotYet,
    /// The node could not be asked (down, busy, timeout): ask again later.
    Failed,
    /// The sink cannot read clearings at all: stop following the interval.
    Unsupported,
}

/// What the follow-up task must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Publish this result (retained).
    Publish(ResultMessage),
    /// A household's bill could not be made (logged; the household is not followed further).
    NotSettled {
        /// The interval's start, Unix seconds.
        interval: i64,
        /// The household.
        participant: ParticipantId,
        /// Why.
        cause: SettlementError,
    },
    /// The interval is no longer followed, with results still missing.
    GaveUp {
        /// The interval's start, Unix seconds.
        interval: i64,
        /// True if its clearing was read (so only settlements are missing).
        cleared: bool,
        /// Households not settled.
        households: BTreeSet<ParticipantId>,
    },
}

/// One interval the bridge submitted orders for, followed until every household's results are out.
#[derive(Debug, Clone)]
struct FollowUp {
    interval: Interval,
    /// Households whose orders the node took and who are not settled yet.
    households: BTreeSet<ParticipantId>,
    /// The committed trades, once the clearing was read and fills published.
    trades: Option<Vec<Trade>>,
    /// When to read the clearing next (first: at gate closure).
    next_poll: DateTime<Utc>,
    /// The interval's tariffs and network fee, for settlements.
    tariffs: Tariffs,
    network_fee: Price,
    backoff: Backoff,
    /// After this, what is still missing is given up.
    give_up: DateTime<Utc>,
}

/// Every interval followed, keyed by start (module docs). Pure: times are arguments.
#[derive(Debug, Clone)]
pub struct FollowUps {
    followed: BTreeMap<i64, FollowUp>,
    tariffs: Tariffs,
    network_fee: Price,
    /// The genesis currency, carried by every message.
    currency: Currency,
}

impl FollowUps {
    /// Nothing followed yet; settlements at `tariffs` plus `network_fee` per kWh traded locally,
    /// amounts in `currency`.
    pub fn new(tariffs: Tariffs, network_fee: Price, currency: Currency) -> FollowUps {
        FollowUps {
            followed: BTreeMap::new(),
            tariffs,
            network_fee,
            currency,
        }
    }

    /// Follows `interval` for `households` (those whose orders the node took), settled at the
    /// tariffs and fee given to [`FollowUps::new`]. Following an interval again replaces the
    /// earlier follow-up.
    pub fn follow(&mut self, interval: Interval, households: BTreeSet<ParticipantId>) {
        let (tariffs, network_fee) = (self.tariffs, self.network_fee);
        self.follow_under(interval, households, tariffs, network_fee);
    }

    /// [`FollowUps::follow`], settled at `tariffs` plus `network_fee` per kWh traded locally (the
    /// rules in force for `interval`).
    pub fn follow_under(
        &mut self,
        interval: Interval,
        households: BTreeSet<ParticipantId>,
        tariffs: Tariffs,
        network_fee: Price,
    ) {
        let length = interval.next().start() - interval.start();
        let follow = i32::try_from(FOLLOW_INTERVALS).unwrap_or(8);
        self.followed.insert(
            interval.start_unix(),
            FollowUp {
                interval,
                households,
                trades: None,
                next_poll: interval.gate_closure(),
                tariffs,
                network_fee,
                backoff: Backoff::new(POLL_MIN, POLL_MAX),
                give_up: interval.end() + length * follow,
            },
        );
    }

    /// True if nothing is followed.
    pub fn is_empty(&self) -> bool {
        self.followed.is_empty()
    }

    /// The starts of the intervals followed, ascending.
    pub fn intervals(&self) -> impl Iterator<Item = i64> + '_ {
        self.followed.keys().copied()
    }

    /// The intervals whose clearing should be read at `now`: not read yet, gate closed, and the
    /// backoff since the last answer waited out. Ascending.
    pub fn due(&self, now: DateTime<Utc>) -> Vec<i64> {
        self.followed
            .iter()
            .filter(|(_, f)| f.trades.is_none() && now >= f.next_poll)
            .map(|(start, _)| *start)
            .collect()
    }

    /// When the clearing of `interval` is read next, if it is still to be read.
    pub fn next_poll(&self, interval: i64) -> Option<DateTime<Utc>> {
        self.followed
            .get(&interval)
            .filter(|f| f.trades.is_none())
            .map(|f| f.next_poll)
    }

    /// Takes the node's answer about `interval` at `now`. A clearing gives every followed
    /// household's fills (an empty fill list for a household that did not trade) and the
    /// clearing summary, in that order; a missing one moves the next read out by the backoff
    /// (250 ms doubling to 5 s); [`ClearingAnswer::Unsupported`] stops following the interval.
    pub fn on_clearing(
        &mut self,
        interval: i64,
        answer: ClearingAnswer,
        now: DateTime<Utc>,
    ) -> Vec<Decision> {
        let Some(f) = self.followed.get_mut(&interval) else {
            return Vec::new();
        };
        if f.trades.is_some() {
            return Vec::new();
        }
        match answer {
            ClearingAnswer::Cleared(outcome, withheld) => {
                let mut decisions: Vec<Decision> = HouseholdFills::for_households(
                    f.interval,
                    &outcome,
                    &f.households,
                    self.currency,
                )
                .into_iter()
                .map(|fills| Decision::Publish(ResultMessage::Fills(fills)))
                .collect();
                decisions.push(Decision::Publish(ResultMessage::Clearing(
                    ClearingSummary::from_outcome(f.interval, &outcome, withheld, self.currency),
                )));
                f.trades = Some(outcome.trades);
                decisions
            }
            ClearingAnswer::NotYet | ClearingAnswer::Failed => {
                let delay = TimeDelta::from_std(f.backoff.next_delay()).unwrap_or(TimeDelta::MAX);
                f.next_poll = now + delay;
                Vec::new()
            }
            ClearingAnswer::Unsupported => {
                self.followed.remove(&interval);
                Vec::new()
            }
        }
    }

    /// Settles every household of a cleared interval whose metered net export `net_export`
    /// knows (`Some` once its meters have read past the interval's end), stops following an
    /// interval once all its households are settled, and gives up on intervals past their
    /// [`FOLLOW_INTERVALS`] at `now`.
    pub fn tick(
        &mut self,
        now: DateTime<Utc>,
        mut net_export: impl FnMut(&ParticipantId, Interval) -> Option<i64>,
    ) -> Vec<Decision> {
        let mut decisions = Vec::new();
        let mut done = Vec::new();
        let currency = self.currency;
        for (&start, f) in &mut self.followed {
            if let Some(trades) = &f.trades {
                let ready: Vec<(ParticipantId, i64)> = f
                    .households
                    .iter()
                    .filter_map(|p| net_export(p, f.interval).map(|net| (p.clone(), net)))
                    .collect();
                for (participant, net) in ready {
                    f.households.remove(&participant);
                    decisions.push(
                        match SettlementNotice::for_household(
                            f.interval,
                            trades,
                            &participant,
                            net,
                            f.tariffs,
                            f.network_fee,
                            currency,
                        ) {
                            Ok(notice) => Decision::Publish(ResultMessage::Settlement(notice)),
                            Err(cause) => Decision::NotSettled {
                                interval: start,
                                participant,
                                cause,
                            },
                        },
                    );
                }
                if f.households.is_empty() {
                    done.push(start);
                    continue;
                }
            }
            if now > f.give_up {
                decisions.push(Decision::GaveUp {
                    interval: start,
                    cleared: f.trades.is_some(),
                    households: f.households.clone(),
                });
                done.push(start);
            }
        }
        for start in done {
            self.followed.remove(&start);
        }
        decisions
    }
}

/// Runs [`FollowUps`] for the intervals the planner hands in: every [`FOLLOW_TICK`] reads the
/// clearings that are due from `sink`, then settles and gives up against the registers in
/// `ingest`, and queues every result for the results task on `results`.
pub(crate) async fn run_followups<S: OrderSink>(
    mut intervals: mpsc::Receiver<Follow>,
    sink: Arc<S>,
    ingest: SharedIngest,
    mut followups: FollowUps,
    results: mpsc::Sender<ResultMessage>,
    clock: SharedClock,
    mut shutdown: Shutdown,
) {
    let mut tick = tokio::time::interval(FOLLOW_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = shutdown.recv() => return,
            next = intervals.recv() => {
                let Some((interval, households, rules)) = next else { return };
                followups.follow_under(interval, households, rules.tariffs, rules.network_fee);
                continue;
            }
            _ = tick.tick() => {}
        }
        let mut decisions = Vec::new();
        for start in followups.due(clock.now()) {
            let (answer, failure) = match sink.clearing(start).await {
                Ok(Some(clearing)) => (
                    ClearingAnswer::Cleared(
                        clearing.outcome,
                        clearing.withheld.unwrap_or_default(),
                    ),
                    None,
                ),
                Ok(None) => (ClearingAnswer::NotYet, None),
                Err(SinkError::Unsupported) => (ClearingAnswer::Unsupported, None),
                Err(e) => (ClearingAnswer::Failed, Some(e)),
            };
            let now = clock.now();
            decisions.extend(followups.on_clearing(start, answer, now));
            if let (Some(e), Some(next)) = (failure, followups.next_poll(start)) {
                let delay_ms = (next - now).num_milliseconds();
                warn!(interval = start, cause = %e, delay_ms, "clearing not read; retrying");
            }
        }
        {
            let ingest = lock(&ingest);
            decisions.extend(followups.tick(clock.now(), |participant, interval| {
                ingest
                    .book()
                    .household_net_export(ingest.registry(), participant, interval)
                    .ok()
                    .flatten()
            }));
        }
        for decision in decisions {
            if carry_out(decision, &results, &mut shutdown).await.is_err() {
                return;
            }
        }
    }
}

/// Logs a decision and queues its result. `Err(())` on shutdown or if the results task is gone.
async fn carry_out(
    decision: Decision,
    results: &mpsc::Sender<ResultMessage>,
    shutdown: &mut Shutdown,
) -> Result<(), ()> {
    let message = match decision {
        Decision::Publish(message) => message,
        Decision::NotSettled {
            interval,
            participant,
            cause,
        } => {
            warn!(interval, %participant, cause = %cause, "not settled");
            return Ok(());
        }
        Decision::GaveUp {
            interval,
            cleared,
            households,
        } => {
            warn!(
                interval,
                cleared,
                households = ?households,
                "gave up following the interval (no clearing or no readings past its end)"
            );
            return Ok(());
        }
    };
    match &message {
        ResultMessage::Clearing(c) => info!(
            interval = c.interval_start.timestamp(),
            volume_wh = c.volume_wh,
            "clearing published"
        ),
        ResultMessage::Settlement(s) => info!(
            interval = s.interval_start.timestamp(),
            participant = %s.bill.participant,
            metered_net_export_wh = s.bill.metered_net_export_wh,
            total = %s.bill.total,
            "settlement published"
        ),
        ResultMessage::Fills(_) | ResultMessage::PriceSignal(_) | ResultMessage::Bill(_) => {}
    }
    tokio::select! {
        biased;
        () = shutdown.recv() => Err(()),
        sent = results.send(message) => sent.map_err(|_| ()),
    }
}

/// Publishes the results queued on `results` (retained, QoS 1) until shutdown or until every
/// sender is gone; after each household's fills with a trade, hands the household to `traded`
/// (the Home Assistant task reads its new totals), if given.
pub(crate) async fn run_results(
    mut results: mpsc::Receiver<ResultMessage>,
    publisher: Publisher,
    prefix: String,
    board: MarketBoard,
    traded: Option<mpsc::Sender<ParticipantId>>,
    mut shutdown: Shutdown,
) {
    loop {
        let message = tokio::select! {
            biased;
            () = shutdown.recv() => return,
            m = results.recv() => match m { Some(m) => m, None => return },
        };
        if publish_result(&publisher, &prefix, &board, &message, &mut shutdown)
            .await
            .is_err()
        {
            return;
        }
        if let (Some(traded), ResultMessage::Fills(fills)) = (&traded, &message) {
            if fills.bought_wh > 0 || fills.sold_wh > 0 {
                let sent = tokio::select! {
                    biased;
                    () = shutdown.recv() => return,
                    sent = traded.send(fills.participant.clone()) => sent,
                };
                if sent.is_err() {
                    debug!("home assistant task gone");
                }
            }
        }
    }
}

/// Publishes one result (retained, QoS 1), and posts the market topics' payloads on `board` for
/// the HTTP server. `Err(())` if the publishing connection is closed or shutdown came first; a
/// message that cannot be published (bad participant id) is logged and skipped.
async fn publish_result(
    publisher: &Publisher,
    prefix: &str,
    board: &MarketBoard,
    message: &ResultMessage,
    shutdown: &mut Shutdown,
) -> Result<(), ()> {
    let publications = match message.publications(prefix) {
        Ok(publications) => publications,
        Err(e) => {
            warn!(cause = %e, "result not published");
            return Ok(());
        }
    };
    for (topic, payload) in publications {
        board.post(prefix, &topic, &payload);
        let sent = tokio::select! {
            biased;
            () = shutdown.recv() => return Err(()),
            sent = publisher.bytes(&topic, payload, true) => sent,
        };
        sent.map_err(|e| warn!(cause = %e, %topic, "publishing connection closed"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::testing::{self, at, Call, FakeSink};
    use voltmesh_engine::IntervalSpec;

    fn p(text: &str) -> ParticipantId {
        ParticipantId::from(text)
    }

    fn households(names: &[&str]) -> BTreeSet<ParticipantId> {
        names.iter().map(|n| p(n)).collect()
    }

    fn tariffs() -> Tariffs {
        Tariffs::new("0.08".parse().unwrap(), "0.30".parse().unwrap()).unwrap()
    }

    fn followups() -> FollowUps {
        FollowUps::new(tariffs(), "0.01".parse().unwrap(), Currency::EUR)
    }

    /// The interval after the one starting at [`testing::T0`].
    fn interval() -> Interval {
        IntervalSpec::DEFAULT.containing(at(0)).next()
    }

    fn kinds(decisions: &[Decision]) -> Vec<String> {
        decisions
            .iter()
            .map(|d| match d {
                Decision::Publish(ResultMessage::Fills(f)) => format!("fills {}", f.participant),
                Decision::Publish(ResultMessage::Clearing(_)) => "clearing".to_owned(),
                Decision::Publish(ResultMessage::Settlement(s)) => {
                    format!("settlement {}", s.bill.participant)
                }
                Decision::Publish(ResultMessage::PriceSignal(_)) => "price signal".to_owned(),
                Decision::Publish(ResultMessage::Bill(b)) => format!("bill {}", b.bill.participant),
                Decision::NotSettled { participant, .. } => format!("not settled {participant}"),
                Decision::GaveUp { cleared, .. } => format!("gave up (cleared: {cleared})"),
            })
            .collect()
    }

    #[test]
    fn the_clearing_is_read_from_gate_closure_on_with_backoff() {
        let i = interval();
        let mut f = followups();
        f.follow(i, households(&["hh-01"]));
        let closure = i.gate_closure();
        assert!(f.due(closure - TimeDelta::milliseconds(1)).is_empty());
        assert_eq!(f.due(closure), [i.start_unix()]);
        assert!(f
            .on_clearing(i.start_unix(), ClearingAnswer::NotYet, closure)
            .is_empty());
        assert_eq!(
            f.next_poll(i.start_unix()),
            Some(closure + TimeDelta::milliseconds(250))
        );
        assert!(f.due(closure + TimeDelta::milliseconds(249)).is_empty());
        let later = closure + TimeDelta::milliseconds(250);
        assert!(f
            .on_clearing(i.start_unix(), ClearingAnswer::Failed, later)
            .is_empty());
        assert_eq!(
            f.next_poll(i.start_unix()),
            Some(later + TimeDelta::milliseconds(500))
        );
    }

    #[test]
    fn a_clearing_gives_every_households_fills_then_the_summary_once() {
        let i = interval();
        let mut f = followups();
        f.follow(i, households(&["hh-01", "hh-02", "hh-03"]));
        let now = i.gate_closure() + TimeDelta::seconds(3);
        let decisions = f.on_clearing(
            i.start_unix(),
            ClearingAnswer::Cleared(testing::outcome("hh-01", "hh-02", 300), Withheld::default()),
            now,
        );
        assert_eq!(
            kinds(&decisions),
            ["fills hh-01", "fills hh-02", "fills hh-03", "clearing"],
            "a household that did not trade gets its empty fills"
        );
        let Decision::Publish(ResultMessage::Fills(fills)) = &decisions[0] else {
            panic!("fills first")
        };
        assert_eq!((fills.bought_wh, fills.interval_start), (300, i.start()));
        assert!(f.due(now + TimeDelta::hours(1)).is_empty(), "read once");
        let again = f.on_clearing(
            i.start_unix(),
            ClearingAnswer::Cleared(testing::outcome("hh-01", "hh-02", 300), Withheld::default()),
            now,
        );
        assert!(again.is_empty(), "published once");
    }

    #[test]
    fn households_are_settled_as_their_registers_come_in_then_the_interval_is_done() {
        let i = interval();
        let mut f = followups();
        f.follow(i, households(&["hh-01", "hh-02"]));
        let now = i.end() + TimeDelta::minutes(1);
        assert!(
            f.tick(now, |_, _| Some(0)).is_empty(),
            "not cleared: nothing to bill"
        );
        f.on_clearing(
            i.start_unix(),
            ClearingAnswer::Cleared(
                testing::outcome("hh-01", "hh-02", 1_000),
                Withheld::default(),
            ),
            now,
        );
        let decisions = f.tick(now, |p, _| (p.as_str() == "hh-01").then_some(-1_500));
        assert_eq!(kinds(&decisions), ["settlement hh-01"]);
        let Decision::Publish(ResultMessage::Settlement(notice)) = &decisions[0] else {
            panic!("a settlement")
        };
        // 1 kWh bought at 0.20 + 0.01 fee, 0.5 kWh more from the utility at 0.30.
        assert_eq!(notice.bill.total.to_string(), "0.360000000");
        assert!(f
            .tick(now, |p, _| (p.as_str() == "hh-01").then_some(-1_500))
            .is_empty());
        assert_eq!(kinds(&f.tick(now, |_, _| Some(800))), ["settlement hh-02"]);
        assert!(f.is_empty(), "every household settled: no longer followed");
    }

    #[test]
    fn what_is_missing_is_given_up_after_the_follow_intervals() {
        let i = interval();
        let give_up = i.end() + TimeDelta::minutes(15 * FOLLOW_INTERVALS);
        let mut f = followups();
        f.follow(i, households(&["hh-01"]));
        assert!(
            f.tick(give_up, |_, _| None).is_empty(),
            "not yet at the limit"
        );
        let decisions = f.tick(give_up + TimeDelta::seconds(1), |_, _| None);
        assert_eq!(
            decisions,
            [Decision::GaveUp {
                interval: i.start_unix(),
                cleared: false,
                households: households(&["hh-01"]),
            }]
        );
        assert!(f.is_empty());

        f.follow(i, households(&["hh-01", "hh-02"]));
        f.on_clearing(
            i.start_unix(),
            ClearingAnswer::Cleared(testing::outcome("hh-01", "hh-02", 100), Withheld::default()),
            i.end(),
        );
        let decisions = f.tick(give_up + TimeDelta::seconds(1), |p, _| {
            (p.as_str() == "hh-02").then_some(100)
        });
        assert_eq!(
            kinds(&decisions),
            ["settlement hh-02", "gave up (cleared: true)"]
        );
        assert!(f.is_empty());
    }

    #[test]
    fn a_sink_without_clearings_ends_the_follow_up_silently() {
        let i = interval();
        let mut f = followups();
        f.follow(i, households(&["hh-01"]));
        let now = i.gate_closure();
        assert!(f
            .on_clearing(i.start_unix(), ClearingAnswer::Unsupported, now)
            .is_empty());
        assert!(f.is_empty());
        assert!(f.tick(now + TimeDelta::days(1), |_, _| None).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn the_task_publishes_fills_once_the_clearing_is_there_then_the_settlement() {
        let i = interval();
        // From just before gate closure: the task ticks every 250 ms of (paused) time.
        let clock =
            crate::runtime::clock::TokioClock::shared(i.gate_closure() - TimeDelta::seconds(1));
        let ingest = testing::ingest();
        // hh-01's meter read at the interval's start and end: it can be billed.
        testing::reading(&ingest, "m1", i.start(), 10_000, 0);
        testing::reading(&ingest, "m1", i.end(), 11_600, 0);
        let committed = i.gate_closure() + TimeDelta::seconds(7);
        let mut sink = FakeSink::new(clock.clone());
        sink.clearing = Some((committed, testing::outcome("hh-01", "hh-02", 1_000)));
        let sink = Arc::new(sink);
        let (follow_tx, follow_rx) = mpsc::channel(4);
        let (results_tx, mut results_rx) = mpsc::channel(16);
        let (notify, shutdown) = testing::shutdown();
        let real = std::time::Instant::now();
        let task = tokio::spawn(run_followups(
            follow_rx,
            sink.clone(),
            ingest,
            followups(),
            results_tx,
            clock.clone(),
            shutdown,
        ));
        // The interval's rules (as the node's schedule says) carry another fee than the
        // follow-ups' default (0.01): the settlement uses the interval's.
        let rules = IntervalRules {
            tariffs: tariffs(),
            network_fee: "0.05".parse().unwrap(),
            max_order_wh: 1_000_000,
            mechanism: voltmesh_engine::Mechanism::default(),
        };
        follow_tx
            .send((i, households(&["hh-01", "hh-02"]), rules))
            .await
            .unwrap();

        let mut got = Vec::new();
        for _ in 0..4 {
            let message = results_rx.recv().await.expect("a result");
            got.push((clock.now(), message));
        }
        let names: Vec<String> = got
            .iter()
            .map(|(_, m)| match m {
                ResultMessage::Fills(f) => format!("fills {}", f.participant),
                ResultMessage::Clearing(_) => "clearing".to_owned(),
                ResultMessage::Settlement(s) => format!("settlement {}", s.bill.participant),
                ResultMessage::PriceSignal(_) => "price signal".to_owned(),
                ResultMessage::Bill(b) => format!("bill {}", b.bill.participant),
            })
            .collect();
        assert_eq!(
            names,
            ["fills hh-01", "fills hh-02", "clearing", "settlement hh-01"]
        );
        let (published, _) = &got[0];
        assert!(*published >= committed, "not before the node committed it");
        assert!(
            *published < committed + TimeDelta::seconds(5),
            "within a backoff step"
        );
        let polls: Vec<DateTime<Utc>> = sink
            .calls()
            .iter()
            .filter_map(|c| match c {
                Call::Clearing { at, .. } => Some(*at),
                Call::Submit { .. } | Call::Status { .. } => None,
            })
            .collect();
        assert!(polls[0] >= i.gate_closure(), "not read before gate closure");
        assert!(polls.len() >= 3, "polled until it was there: {polls:?}");
        let ResultMessage::Settlement(notice) = &got[3].1 else {
            panic!("settlement last")
        };
        assert_eq!(notice.bill.metered_net_export_wh, -1_600);
        assert_eq!(
            notice.bill.network_fees,
            voltmesh_engine::Money::of(1_000, "0.05".parse().unwrap()),
            "1 kWh bought at the interval's fee"
        );

        // hh-02 never reads: nothing more is published (giving up is the state machine's test).
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(results_rx.try_recv().is_err());
        assert!(
            real.elapsed() < std::time::Duration::from_secs(2),
            "paused time"
        );
        drop(notify);
        task.await.expect("stops at shutdown");
    }
}
