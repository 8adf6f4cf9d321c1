//! Test support for the runtime's tasks: a recording [`OrderSink`], a small ingest state and
//! helpers to run a task under paused tokio time.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::broadcast;
use voltmesh_engine::{
    ClearingOutcome, Interval, IntervalSpec, Mechanism, ParticipantId, Price, Tariffs, Trade,
};
use voltmesh_wire::api::OrderState;
use voltmesh_wire::{IntervalClearing, SignedOrder};

use crate::household::registry::Registry;
use crate::ingest::{Ingest, IngestConfig, Outcome};
use crate::order_sink::{OrderSink, SinkError, Submitted};
use crate::runtime::clock::{SharedClock, TokioClock};
use crate::runtime::shared::{lock, SharedIngest};
use crate::shutdown::Shutdown;

/// An interval start (a multiple of 900 s) to start test clocks at.
pub(crate) const T0: i64 = 1_789_999_200;

/// The time `secs` after [`T0`].
pub(crate) fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(T0, 0).expect("time") + TimeDelta::seconds(secs)
}

/// A [`TokioClock`] reading [`T0`] now (call with time paused).
pub(crate) fn clock() -> SharedClock {
    TokioClock::shared(at(0))
}

/// A shutdown signal and its sender (drop the sender to shut down).
pub(crate) fn shutdown() -> (broadcast::Sender<()>, Shutdown) {
    let (notify, rx) = broadcast::channel(1);
    (notify, Shutdown::new(rx))
}

/// Ingest state for households `hh-01` (meter `m1`) and `hh-02` (meter `m2`), with their own
/// order topics under `voltmesh`.
pub(crate) fn ingest() -> SharedIngest {
    let registry = Registry::from_config(
        toml::from_str(
            "[[household]]\nparticipant = \"hh-01\"\nmeters = [\"m1\"]\n\
             buy_limit = \"0.30\"\nsell_limit = \"0.10\"\n\
             [[household]]\nparticipant = \"hh-02\"\nmeters = [\"m2\"]\n\
             buy_limit = \"0.30\"\nsell_limit = \"0.10\"",
        )
        .expect("registry toml"),
    )
    .expect("registry");
    let ingest = Ingest::new(IngestConfig::default(), registry, IntervalSpec::DEFAULT)
        .with_household_topics("voltmesh", Tariffs::UNBOUNDED);
    Arc::new(Mutex::new(ingest))
}

/// `participant` sends its own order for `interval` at `now`.
pub(crate) fn own_order(
    ingest: &SharedIngest,
    participant: &str,
    side: &str,
    interval: Interval,
    now: DateTime<Utc>,
) {
    let payload = format!(
        r#"{{"interval_start": {}, "side": "{side}", "quantity_wh": 400, "limit_price": "0.20"}}"#,
        interval.start_unix()
    );
    let topic = format!("voltmesh/households/{participant}/orders/set");
    let outcome = lock(ingest).handle(&topic, payload.as_bytes(), now);
    assert!(matches!(outcome, Outcome::Household(_)), "{outcome:?}");
}

/// Meter `meter` reads `import_wh`/`export_wh` at `t` (received at `t`).
pub(crate) fn reading(
    ingest: &SharedIngest,
    meter: &str,
    t: DateTime<Utc>,
    import: u64,
    export: u64,
) {
    let payload = format!(
        r#"{{"meter":"{meter}","ts":"{}","import_wh":{import},"export_wh":{export},"power_w":0}}"#,
        t.to_rfc3339()
    );
    let outcome = lock(ingest).handle("voltmesh/meters/x", payload.as_bytes(), t);
    assert!(matches!(outcome, Outcome::Accepted(_)), "{outcome:?}");
}

/// `seller` sold `quantity_wh` to `buyer` at 0.20 in the interval.
pub(crate) fn outcome(buyer: &str, seller: &str, quantity_wh: u64) -> ClearingOutcome {
    let price: Price = "0.200000".parse().expect("price");
    ClearingOutcome {
        mechanism: Mechanism::default(),
        clearing_price: Some(price),
        price_range: None,
        volume_wh: quantity_wh,
        trades: vec![Trade {
            buy_id: format!("{buyer}-b").into(),
            sell_id: format!("{seller}-s").into(),
            buyer: buyer.into(),
            seller: seller.into(),
            quantity_wh,
            price,
        }],
        unfilled: Vec::new(),
    }
}

/// One call the [`FakeSink`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    /// `submit` of a participant's order for an interval, at a time.
    Submit {
        at: DateTime<Utc>,
        participant: ParticipantId,
        interval: i64,
    },
    /// `clearing` of an interval, at a time.
    Clearing { at: DateTime<Utc>, interval: i64 },
    /// `status` of a participant's order.
    Status { participant: ParticipantId },
}

/// An [`OrderSink`] that records every call with the clock's time, answers submissions from a
/// script (then accepts), and has a clearing from a given time on.
#[derive(Debug)]
pub(crate) struct FakeSink {
    clock: SharedClock,
    pub(crate) calls: Mutex<Vec<Call>>,
    /// Answers to the next submissions, in order; `Accepted` once empty (or `always` if set).
    pub(crate) answers: Mutex<VecDeque<Result<Submitted, SinkError>>>,
    pub(crate) always: Option<Result<Submitted, SinkError>>,
    /// The clearing the node has, and from when on.
    pub(crate) clearing: Option<(DateTime<Utc>, ClearingOutcome)>,
    /// Answers to the next `status` calls, in order; `Unsupported` once empty.
    pub(crate) statuses: Mutex<VecDeque<Result<Option<OrderState>, SinkError>>>,
}

impl FakeSink {
    pub(crate) fn new(clock: SharedClock) -> FakeSink {
        FakeSink {
            clock,
            calls: Mutex::new(Vec::new()),
            answers: Mutex::new(VecDeque::new()),
            always: None,
            clearing: None,
            statuses: Mutex::new(VecDeque::new()),
        }
    }

    pub(crate) fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("calls").clone()
    }
}

impl OrderSink for FakeSink {
    async fn submit(&self, order: &SignedOrder) -> Result<Submitted, SinkError> {
        self.calls.lock().expect("calls").push(Call::Submit {
            at: self.clock.now(),
            participant: order.ticket.participant.clone(),
            interval: order.ticket.interval_start,
        });
        if let Some(answer) = &self.always {
            return answer.clone();
        }
        let next = self.answers.lock().expect("answers").pop_front();
        next.unwrap_or(Ok(Submitted::Accepted))
    }

    async fn clearing(&self, interval_start: i64) -> Result<Option<IntervalClearing>, SinkError> {
        let now = self.clock.now();
        self.calls.lock().expect("calls").push(Call::Clearing {
            at: now,
            interval: interval_start,
        });
        Ok(self
            .clearing
            .as_ref()
            .filter(|(from, _)| now >= *from)
            .map(|(_, outcome)| IntervalClearing {
                withheld: None,
                interval_start,
                outcome: outcome.clone(),
            }))
    }

    async fn status(&self, order: &SignedOrder) -> Result<Option<OrderState>, SinkError> {
        self.calls.lock().expect("calls").push(Call::Status {
            participant: order.ticket.participant.clone(),
        });
        let next = self.statuses.lock().expect("statuses").pop_front();
        next.unwrap_or(Err(SinkError::Unsupported))
    }
}
