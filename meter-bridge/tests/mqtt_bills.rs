//! Committed bills reach households over a real Mosquitto: once an interval's bills have
//! committed, the bridge reads each household's bill from the node and publishes it, retained,
//! on `voltmesh/households/<participant>/bill`, exactly as the node served it (height, block,
//! currency, bill), once per interval; a node that is down or refuses a household's read is
//! asked again the next interval and the bridge keeps going.
//!
//! The node is an in-process [`OrderSink`] serving bills from a table the test fills, like the
//! other bridge tests' sinks (`tests/mqtt_home_assistant.rs`); the node's own bills route and its
//! signed reads are tested in `consensus/tests/api_contract.rs`, and the whole chain with real
//! nodes in `sim/stack/tests`.

mod mqtt_support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mqtt_support::{
    bridge_config, client_options, wait_until, BrokerOptions, Mosquitto, RunningBridge, TestClient,
};
use voltmesh_engine::{IntervalSpec, Money, ParticipantId};
use voltmesh_meter_bridge::order_sink::{ClientError, OrderSink, SinkError, Submitted};
use voltmesh_wire::bill::{Bill, CommittedBill};
use voltmesh_wire::{Currency, IntervalClearing, SignedOrder};

/// The node's committed bills as far as the bridge reads them.
#[derive(Debug, Default)]
struct Ledger {
    bills: Mutex<Vec<CommittedBill>>,
    /// Households whose reads the node refuses (403 `forbidden`).
    refused: BTreeSet<String>,
    /// The node cannot be reached.
    down: AtomicBool,
    /// Every read: participant, from, to, and whether the node answered.
    asked: Mutex<Vec<(String, i64, i64, bool)>>,
}

impl Ledger {
    fn asked(&self) -> Vec<(String, i64, i64, bool)> {
        self.asked.lock().expect("asked").clone()
    }

    /// The ranges `participant` was asked for with the node up, oldest first.
    fn answered(&self, participant: &str) -> Vec<(i64, i64)> {
        self.asked()
            .into_iter()
            .filter(|(p, _, _, up)| p == participant && *up)
            .map(|(_, from, to, _)| (from, to))
            .collect()
    }
}

#[derive(Debug, Clone, Default)]
struct Node(Arc<Ledger>);

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
        let up = !self.0.down.load(Ordering::SeqCst);
        self.0
            .asked
            .lock()
            .expect("asked")
            .push((participant.to_string(), from, to, up));
        if !up {
            return Err(SinkError::Node(ClientError::Unavailable(
                "connection refused".into(),
            )));
        }
        if self.0.refused.contains(participant.as_str()) {
            return Err(SinkError::Node(ClientError::Rejected {
                kind: "forbidden".into(),
                message: "this key may not read the participant".into(),
            }));
        }
        Ok(self
            .0
            .bills
            .lock()
            .expect("bills")
            .iter()
            .filter(|b| {
                &b.bill.participant == participant && (from..to).contains(&b.interval_start)
            })
            .cloned()
            .collect())
    }
}

/// A bill of `participant` for the interval at `start`, committed at `height`.
fn bill(participant: &str, start: i64, height: u64) -> CommittedBill {
    let nanos = |n: i128| Money::from_nanos(n);
    CommittedBill {
        interval_start: start,
        height,
        block: format!("{:064x}", u128::from(height) * 0x9e37_79b9),
        currency: "CHF".parse::<Currency>().expect("currency"),
        bill: Bill {
            participant: participant.into(),
            bought_wh: 700,
            sold_wh: 0,
            metered: true,
            metered_net_export_wh: -650,
            from_utility_wh: 0,
            to_utility_wh: 50,
            local_energy: nanos(147_000_000),
            network_fees: nanos(14_000_000),
            utility: nanos(-4_000_000),
            total: nanos(157_000_000),
            billed: nanos(160_000_000),
            carry: nanos(-3_000_000),
            no_market: nanos(191_000_000),
        },
    }
}

/// Waits for the next message on `watch` and checks it is `expected` on `native`'s bill topic,
/// as JSON equal to the node's.
async fn expect_bill(watch: &mut TestClient, expected: &CommittedBill) {
    let m = watch.next().await;
    assert_eq!(m.topic, "voltmesh/households/native/bill");
    let got: CommittedBill = serde_json::from_slice(&m.payload).expect("a CommittedBill");
    assert_eq!(&got, expected);
    let json: serde_json::Value = serde_json::from_slice(&m.payload).expect("JSON");
    assert_eq!(json, serde_json::to_value(expected).expect("JSON"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_bills_are_published_once_each_with_their_block() {
    let broker = Mosquitto::start(&BrokerOptions::default());
    let mut config = bridge_config(broker.port, "bridge-bills", "", "");
    // 2 s intervals whose bills commit 1 s after their end: a round every 2 s, half a second
    // after the window (a quarter of an interval of grace).
    config.market = IntervalSpec::new(2, 1).expect("spec");
    config.deliveries.window_secs = 1;
    let ledger = Arc::new(Ledger {
        refused: ["kaifa".to_owned()].into(),
        down: AtomicBool::new(true),
        ..Ledger::default()
    });
    let mut watch = TestClient::connect(
        client_options(broker.port, "bills-watch"),
        &["voltmesh/households/+/bill"],
    )
    .await;
    let mut bridge = RunningBridge::start_with_sink(config, 16, Node(Arc::clone(&ledger)));
    bridge.wait_subscribed(1).await;

    // The node is down for two rounds: every household asked, nothing published, the bridge on.
    wait_until("two rounds with the node down", || {
        let rounds: BTreeSet<i64> = ledger.asked().iter().map(|a| a.2).collect();
        rounds.len() >= 2
    })
    .await;
    ledger.down.store(false, Ordering::SeqCst);
    wait_until("a round with the node up", || {
        !ledger.answered("native").is_empty()
    })
    .await;
    // A bill for the newest interval of that round: still in the next rounds' lookback.
    let (_, to) = ledger.answered("native")[0];
    let first = bill("native", to - 2, 41);
    ledger.bills.lock().expect("bills").push(first.clone());
    expect_bill(&mut watch, &first).await;

    // Every round whose lookback holds that interval (four) asks for it again: it is not
    // published again.
    wait_until("every round with the bill in range", || {
        let rounds = ledger.answered("native");
        let holding = rounds
            .iter()
            .filter(|(from, to)| (*from..*to).contains(&first.interval_start))
            .count();
        holding >= 4
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        watch.messages.try_recv().is_err(),
        "the bill was published once"
    );

    // The next interval's bill follows; the topic keeps the newest, retained.
    let (_, to) = *ledger.answered("native").last().expect("a round");
    let second = bill("native", to, 57);
    ledger.bills.lock().expect("bills").push(second.clone());
    expect_bill(&mut watch, &second).await;
    let mut late = TestClient::connect(
        client_options(broker.port, "bills-late"),
        &["voltmesh/households/native/bill"],
    )
    .await;
    let m = late.next().await;
    assert!(m.retain, "retained");
    assert_eq!(
        serde_json::from_slice::<CommittedBill>(&m.payload).expect("bill"),
        second
    );

    // The household whose reads the node refuses was asked every round, and never published.
    let kaifa = ledger
        .asked()
        .iter()
        .filter(|a| a.0 == "kaifa" && a.3)
        .count();
    assert!(kaifa >= 4, "asked again every interval: {kaifa}");
    assert!(watch.messages.try_recv().is_err(), "nothing else published");
    bridge.shutdown().await;
}
