//! The router ↔ client contract: the node's real API router on a loopback port, with a stub
//! driver, answers the wire crate's `NodeClient`; every answer class the client documents is
//! produced by the router and classified as documented, and every answer of every route
//! validates against the OpenAPI document the node serves (generated from the wire types).

use chrono::DateTime;
use serde_json::Value;
use tokio::sync::mpsc;
use voltmesh_consensus::node::api::{router, ApiRequest};
use voltmesh_consensus::node::api_reads::ReadAuth;
use voltmesh_consensus::wire::api::CorrectionsView;
use voltmesh_consensus::wire::api::ParticipantTrade;
use voltmesh_consensus::wire::api::{
    error_kind, Balance, BlockView, OrderState, OrderStatusEntry, OrderStatusView, ParticipantView,
    StatusView, MAX_BATCH_ORDERS,
};
use voltmesh_consensus::wire::api::{
    BillsView, CommunityView, ProposalAnswer, SettlementView, SettlementsView,
};
use voltmesh_consensus::wire::bill::{Bill, CommittedBill, PartyLine, Settled, Statement};
use voltmesh_consensus::wire::client::{ClientError, NodeClient, SubmitCounts, Submitted};
use voltmesh_consensus::wire::correction::{
    CommittedCorrections, CorrectionEntry, CorrectionRejection, CorrectionTicket,
    IntervalCorrection, IntervalCorrections, LeafCorrection, ParticipantCorrection, SettledLeaf,
    SignedCorrection, UtilityExchange,
};
use voltmesh_consensus::wire::delivery::{DeliveryRejection, DeliveryTicket, SignedDelivery};
use voltmesh_consensus::wire::governance::{
    Action, GovernanceRejection, Policies, Policy, Proposal, Scope, SignedProposal,
};
use voltmesh_consensus::wire::read::ReadRejection;
use voltmesh_consensus::wire::Currency;
use voltmesh_consensus::wire::{IntervalClearing, OrderRejection, OrderTicket, SignedOrder};
use voltmesh_engine::{
    ClearingOutcome, IntervalSpec, Mechanism, Money, PriceRange, RejectReason, Side, Trade,
    Unfilled,
};

const CLEARED: i64 = 1_790_000_100;
const HEIGHT: u64 = 7;

fn status() -> StatusView {
    StatusView {
        neighborhood: "nb".into(),
        validator: 1,
        height: HEIGHT,
        committed_hash: "ab".repeat(32),
        view: 9,
        peers: 3,
        validators: 4,
        last_commit_ms: Some(1_790_000_000_000),
        mempool: 2,
        orders_committed: 5,
        rejected_proposals: 0,
        votes: 9,
    }
}

fn trade() -> Trade {
    Trade {
        buy_id: "hh-2:b".into(),
        sell_id: "hh-1:s".into(),
        buyer: "hh-2".into(),
        seller: "hh-1".into(),
        quantity_wh: 100,
        price: "0.200000".parse().unwrap(),
    }
}

/// A clearing with every part of an outcome present (trades, unfilled, price and range).
fn clearing(start: i64) -> IntervalClearing {
    IntervalClearing {
        withheld: None,
        interval_start: start,
        outcome: ClearingOutcome {
            trades: vec![trade()],
            volume_wh: 100,
            clearing_price: Some("0.200000".parse().unwrap()),
            mechanism: Mechanism::default(),
            price_range: Some(PriceRange {
                lo: "0.100000".parse().unwrap(),
                hi: "0.300000".parse().unwrap(),
            }),
            unfilled: vec![Unfilled {
                id: "hh-3:b".into(),
                side: Side::Buy,
                remaining_wh: 50,
            }],
        },
    }
}

/// The stub's one known order: `hh-1`'s `hh-1-x-sell`, committed in [`CLEARED`], pending in the
/// next interval, expired and refused in two others.
fn order_status(interval: Option<i64>) -> Option<OrderStatusView> {
    let message = |kind: &str| format!("{kind} happened");
    let orders: Vec<OrderStatusEntry> = [
        (
            CLEARED - 1800,
            OrderState::Expired {
                reason: "closed_interval".into(),
                message: message("closed"),
            },
        ),
        (
            CLEARED - 900,
            OrderState::Refused {
                reason: "interval_full".into(),
                message: message("full"),
            },
        ),
        (
            CLEARED,
            OrderState::Committed {
                height: HEIGHT,
                block_hash: "11".repeat(32),
            },
        ),
        (CLEARED + 900, OrderState::Pending),
    ]
    .into_iter()
    .filter(|(start, _)| interval.is_none_or(|i| i == *start))
    .map(|(interval_start, status)| OrderStatusEntry {
        interval_start,
        status,
    })
    .collect();
    (!orders.is_empty()).then(|| OrderStatusView {
        participant: "hh-1".into(),
        id: "hh-1-x-sell".into(),
        orders,
    })
}

fn block(order: &SignedOrder) -> BlockView {
    BlockView {
        height: HEIGHT,
        hash: "11".repeat(32),
        parent: "22".repeat(32),
        view: 9,
        proposer: 2,
        failed_leaders: vec![1],
        justify_signers: vec![0, 1, 3],
        timestamp_ms: 1_790_000_000_000,
        orders: vec![order.clone()],
        clearings: vec![clearing(CLEARED)],
        deliveries: 2,
    }
}

/// A signed proposal named `id`.
fn proposal(id: &str) -> SignedProposal {
    let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let proposal = Proposal {
        id: id.into(),
        valid_until_ms: 1_790_000_000_000,
        action: Action::AddParticipant {
            participant: "hh-9".into(),
            keys: vec![voltmesh_consensus::wire::PublicKey(
                key.verifying_key().to_bytes(),
            )],
        },
    };
    SignedProposal::signed(proposal, "nb", &[&key])
}

/// The stub's community: one member, the genesis rules, no proposals.
fn community() -> CommunityView {
    let key = voltmesh_consensus::wire::PublicKey(
        ed25519_dalek::SigningKey::from_bytes(&[3; 32])
            .verifying_key()
            .to_bytes(),
    );
    let policy = Policy {
        keys: vec![key],
        threshold: 1,
    };
    CommunityView {
        neighborhood: "nb".into(),
        currency: "CHF".parse().expect("currency"),
        height: HEIGHT,
        epoch: 0,
        validators: Vec::new(),
        policies: Policies {
            members: policy.clone(),
            rules: policy,
            prices: None,
        },
        rules: Vec::new(),
        prices: std::collections::BTreeMap::new(),
        participants: std::collections::BTreeMap::from([(
            "hh-1".into(),
            voltmesh_consensus::wire::governance::Member {
                keys: vec![key],
                removed_from: None,
            },
        )]),
        pending: Vec::new(),
        actions_applied: 0,
        held: vec![proposal("held")],
    }
}

/// The node's real API router on a loopback port, with a driver that answers submissions from
/// `answers` in turn, knows one cleared interval ([`CLEARED`]) and one block ([`HEIGHT`]). With
/// `answers` = `None` the driver is gone, so the API answers 503.
async fn node(answers: Option<Vec<Result<(), OrderRejection>>>) -> NodeClient {
    let (tx, mut rx) = mpsc::channel::<ApiRequest>(8);
    match answers {
        Some(answers) => {
            tokio::spawn(async move {
                let mut answers = answers.into_iter();
                while let Some(request) = rx.recv().await {
                    match request {
                        ApiRequest::SubmitOrder(_, reply) => {
                            let _ = reply.send(answers.next().unwrap_or(Ok(())));
                        }
                        ApiRequest::SubmitBatch(orders, reply) => {
                            let _ = reply.send(
                                orders
                                    .iter()
                                    .map(|_| answers.next().unwrap_or(Ok(())))
                                    .collect(),
                            );
                        }
                        // How much of a clearing or block a reader sees is decided by the node
                        // (tested with real nodes in sim/stack/tests/node_cluster.rs).
                        ApiRequest::Interval(start, _, reply) => {
                            let _ = reply.send(Ok((start == CLEARED).then(|| clearing(start))));
                        }
                        ApiRequest::OrderStatus(participant, id, interval, auth, reply) => {
                            let known = participant.as_str() == "hh-1" && id == "hh-1-x-sell";
                            let _ = reply.send(
                                signed_read(&auth)
                                    .map(|()| order_status(interval).filter(|_| known)),
                            );
                        }
                        ApiRequest::Block(height, _, reply) => {
                            let _ = reply.send(Ok((height == HEIGHT).then(|| block(&signed()))));
                        }
                        // The stub refuses unsigned reads; who may read what is decided by the
                        // node (tested in sim/stack/tests/bills.rs with real nodes).
                        ApiRequest::Bills(participant, _, auth, reply) => {
                            let _ = reply.send(signed_read(&auth).map(|()| BillsView {
                                bills: vec![committed_bill(&participant)],
                                participant,
                                next_from: None,
                            }));
                        }
                        ApiRequest::Statement(participant, period, auth, reply) => {
                            let _ = reply.send(signed_read(&auth).map(|()| {
                                let mut statement = Statement::new(
                                    participant.clone(),
                                    Currency::EUR,
                                    period.from,
                                    period.to,
                                );
                                statement.add(&committed_bill(&participant));
                                if let Some(c) = ParticipantCorrection::of(
                                    &committed_corrections(),
                                    &participant,
                                ) {
                                    statement.add_correction(c);
                                }
                                statement
                            }));
                        }
                        ApiRequest::Settlements(_, reply) => {
                            let _ = reply.send(SettlementsView {
                                settled: vec![settled()],
                                next_from: None,
                            });
                        }
                        ApiRequest::Settlement(start, auth, reply) => {
                            let _ = reply.send(signed_read(&auth).map(|()| {
                                (start == CLEARED).then(|| SettlementView {
                                    settled: settled(),
                                    bills: vec![committed_bill(&"hh-1".into()).bill],
                                    corrections: vec![committed_corrections()],
                                })
                            }));
                        }
                        ApiRequest::Participant(participant, _query, auth, reply) => {
                            if let Err(e) = signed_read(&auth) {
                                let _ = reply.send(Err(e));
                                continue;
                            }
                            let _ = reply.send(Ok(ParticipantView {
                                participant,
                                balance: Balance {
                                    bought_wh: 100,
                                    sold_wh: 0,
                                    net_paid: Money::from_nanos(25_000_000),
                                    paid: Money::from_nanos(25_000_000),
                                    received: Money::ZERO,
                                    currency: "CHF".parse().expect("currency"),
                                },
                                trades: vec![ParticipantTrade {
                                    interval_start: CLEARED,
                                    side: Side::Sell,
                                    trade: trade(),
                                }],
                                next_from: None,
                            }));
                        }
                        ApiRequest::Status(reply) => {
                            let _ = reply.send(status());
                        }
                        ApiRequest::Snapshot(auth, reply) => {
                            // The stub has no ledger to snapshot: the 404 `no_snapshot` path.
                            let _ = reply.send(signed_read(&auth).map(|()| None));
                        }
                        ApiRequest::SubmitProposal(signed, reply) => {
                            // The ledger's answers are tested with real nodes
                            // (sim/stack/tests/governance.rs); the stub takes the proposal
                            // named "ok" and refuses the others.
                            let _ = reply.send(if signed.proposal.id == "ok" {
                                Ok(ProposalAnswer {
                                    hash: signed.proposal.hash("nb"),
                                    approved: 1,
                                    threshold: 3,
                                })
                            } else {
                                Err(GovernanceRejection::Unauthorised {
                                    scope: Scope::Members,
                                    key: "k".into(),
                                })
                            });
                        }
                        ApiRequest::Community(reply) => {
                            let _ = reply.send(community());
                        }
                        ApiRequest::SubmitCorrection(signed, reply) => {
                            // The ledger's answers are tested in consensus/tests/corrections.rs;
                            // the stub takes the import named "ok" and refuses the others.
                            let _ = reply.send(if signed.ticket.id == "ok" {
                                Ok(signed.digest())
                            } else {
                                Err(CorrectionRejection::BadProof(CLEARED))
                            });
                        }
                        ApiRequest::Corrections(_, auth, reply) => {
                            let _ = reply.send(signed_read(&auth).map(|()| CorrectionsView {
                                corrections: vec![committed_corrections()],
                                next_from: None,
                            }));
                        }
                        ApiRequest::SubmitDeliveries(deliveries, reply) => {
                            // The ledger's answers are tested in consensus/tests/deliveries.rs;
                            // the stub takes hh-1's and refuses the others.
                            let _ = reply.send(
                                deliveries
                                    .iter()
                                    .map(|d| {
                                        if d.ticket.participant.as_str() == "hh-1" {
                                            Ok(())
                                        } else {
                                            Err(DeliveryRejection::UnknownParticipant(
                                                d.ticket.participant.to_string(),
                                            ))
                                        }
                                    })
                                    .collect(),
                            );
                        }
                    }
                }
            });
        }
        None => drop(rx),
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router(tx)).await;
    });
    NodeClient::new(&format!("http://{addr}"))
        .unwrap()
        .with_read_key("nb", ed25519_dalek::SigningKey::from_bytes(&[7; 32]))
}

/// Whether a read carried a signature (the stub checks no more).
fn signed_read(auth: &ReadAuth) -> Result<(), ReadRejection> {
    auth.signature
        .as_ref()
        .map(|_| ())
        .ok_or(ReadRejection::Unsigned)
}

fn settled() -> Settled {
    Settled {
        interval_start: CLEARED,
        height: HEIGHT,
        block: "ab".repeat(32),
        currency: Currency::EUR,
        feed_in: "0.08".parse().unwrap(),
        retail: "0.32".parse().unwrap(),
        network_fee: "0.01".parse().unwrap(),
        bills: 1,
        unmetered: 0,
        utility: PartyLine {
            revenue: Money::from_nanos(32_000_000),
            billed: Money::from_nanos(30_000_000),
            carry: Money::from_nanos(2_000_000),
        },
        network: PartyLine::default(),
    }
}

fn committed_bill(participant: &voltmesh_engine::ParticipantId) -> CommittedBill {
    CommittedBill {
        interval_start: CLEARED,
        height: HEIGHT,
        block: "ab".repeat(32),
        currency: Currency::EUR,
        bill: Bill {
            participant: participant.clone(),
            bought_wh: 0,
            sold_wh: 0,
            metered: true,
            metered_net_export_wh: -100,
            from_utility_wh: 100,
            to_utility_wh: 0,
            local_energy: Money::ZERO,
            network_fees: Money::ZERO,
            utility: Money::from_nanos(32_000_000),
            total: Money::from_nanos(32_000_000),
            billed: Money::from_nanos(30_000_000),
            carry: Money::from_nanos(2_000_000),
            no_market: Money::from_nanos(32_000_000),
        },
    }
}

/// hh-1's bill of [`committed_bill`] corrected: the official data says it imported 80 Wh, not
/// 100.
fn committed_corrections() -> CommittedCorrections {
    let tariffs =
        voltmesh_engine::Tariffs::new("0.08".parse().unwrap(), "0.32".parse().unwrap()).unwrap();
    let leaf = SettledLeaf {
        participant: "hh-1".into(),
        contract_wh: 0,
        metered: true,
        metered_net_export_wh: -100,
    };
    let corrected = SettledLeaf {
        metered_net_export_wh: -80,
        ..leaf.clone()
    };
    let (before, after) = (
        UtilityExchange::of(&leaf, tariffs),
        UtilityExchange::of(&corrected, tariffs),
    );
    let total = after.utility - before.utility;
    CommittedCorrections {
        height: HEIGHT + 9,
        block: "cd".repeat(32),
        corrections: IntervalCorrections {
            interval_start: CLEARED,
            import: "eda-2026-11".into(),
            source: "EDA".into(),
            digest: "ef".repeat(32),
            currency: Currency::EUR,
            feed_in: tariffs.feed_in,
            retail: tariffs.retail,
            entries: vec![CorrectionEntry {
                participant: "hh-1".into(),
                metering_points: vec!["AT0030000000000000000000000001".into()],
                import_wh: 80,
                export_wh: 0,
                was_metered: true,
                before,
                after,
                total,
                carry_in: Money::ZERO,
                billed: Money::from_nanos(-10_000_000),
                carry: total + Money::from_nanos(10_000_000),
            }],
            utility: PartyLine {
                revenue: total,
                billed: Money::from_nanos(-10_000_000),
                carry: total + Money::from_nanos(10_000_000),
            },
        },
    }
}

fn correction(id: &str) -> SignedCorrection {
    CorrectionTicket {
        id: id.into(),
        source: "EDA".into(),
        intervals: vec![IntervalCorrection {
            interval_start: CLEARED,
            corrections: vec![LeafCorrection {
                index: 0,
                leaf: SettledLeaf {
                    participant: "hh-1".into(),
                    contract_wh: 0,
                    metered: true,
                    metered_net_export_wh: -100,
                },
                metering_points: vec!["AT0030000000000000000000000001".into()],
                import_wh: 80,
                export_wh: 0,
            }],
            proof: Vec::new(),
        }],
    }
    .sign("nb", &ed25519_dalek::SigningKey::from_bytes(&[7; 32]))
}

fn signed() -> SignedOrder {
    let interval = IntervalSpec::DEFAULT.containing(DateTime::from_timestamp(CLEARED, 0).unwrap());
    OrderTicket {
        participant: "hh-1".into(),
        interval_start: interval.start_unix(),
        id: "hh-1-x-sell".into(),
        side: Side::Sell,
        quantity_wh: 100,
        limit_price: "0.10".parse().unwrap(),
        nonce: 1,
    }
    .sign("nb", &ed25519_dalek::SigningKey::from_bytes(&[3; 32]))
}

#[tokio::test]
async fn order_answers_are_classified_as_documented() {
    let answers = vec![
        Ok(()),
        Err(OrderRejection::ReplayedNonce { nonce: 1, last: 1 }),
        Err(OrderRejection::Market(RejectReason::DuplicateId(
            "x".into(),
        ))),
        Err(OrderRejection::MempoolFull),
        Err(OrderRejection::ParticipantPendingFull { max: 256 }),
        Err(OrderRejection::BadSignature),
        Err(OrderRejection::ClosedInterval(CLEARED)),
    ];
    let node = node(Some(answers)).await;
    let order = signed();
    assert_eq!(node.submit(&order).await, Ok(Submitted::Accepted));
    assert_eq!(node.submit(&order).await, Ok(Submitted::AlreadyThere));
    assert_eq!(node.submit(&order).await, Ok(Submitted::AlreadyThere));
    let full = node.submit(&order).await.unwrap_err();
    assert!(full.is_retryable(), "{full}");
    let quota = node.submit(&order).await.unwrap_err();
    assert!(
        quota.is_retryable(),
        "a participant's pending quota frees up: {quota}"
    );
    let bad = node.submit(&order).await.unwrap_err();
    assert!(
        matches!(&bad, ClientError::Rejected { kind, .. } if kind == "bad_signature"),
        "{bad}"
    );
    assert!(!bad.is_retryable());
    let closed = node.submit(&order).await.unwrap_err();
    assert!(
        matches!(&closed, ClientError::Rejected { kind, .. } if kind == "closed_interval"),
        "{closed}"
    );
    assert_eq!(
        node.counts(),
        SubmitCounts {
            accepted: 1,
            already_there: 2,
            rejected: 2,
            unavailable: 2,
            ..SubmitCounts::default()
        }
    );
}

/// `POST /v1/orders` with an array: one request, each order classified as if alone, counted
/// once; an empty array is an empty answer; a longer array than the node takes, or a malformed
/// one, fails as a whole.
#[tokio::test]
async fn a_batch_is_answered_order_by_order() {
    let node = node(Some(vec![
        Ok(()),
        Err(OrderRejection::Market(RejectReason::DuplicateId(
            "x".into(),
        ))),
        Err(OrderRejection::MempoolFull),
        Err(OrderRejection::BadSignature),
    ]))
    .await;
    let results = node.submit_batch(&vec![signed(); 4]).await.unwrap();
    assert_eq!(results[0], Ok(Submitted::Accepted));
    assert_eq!(results[1], Ok(Submitted::AlreadyThere));
    assert!(
        matches!(&results[2], Err(e) if e.is_retryable()),
        "{results:?}"
    );
    assert!(
        matches!(&results[3], Err(ClientError::Rejected { kind, .. }) if kind == "bad_signature"),
        "{results:?}"
    );
    assert_eq!(
        node.counts(),
        SubmitCounts {
            accepted: 1,
            already_there: 1,
            rejected: 1,
            unavailable: 1,
            ..SubmitCounts::default()
        }
    );
    assert_eq!(node.submit_batch(&[]).await, Ok(Vec::new()));
    let too_many = node
        .submit_batch(&vec![signed(); MAX_BATCH_ORDERS + 1])
        .await
        .unwrap_err();
    assert!(
        matches!(&too_many, ClientError::Unexpected { status: 413, body } if body.contains("batch_too_large")),
        "{too_many}"
    );
    let answer = node
        .raw("POST", "/v1/orders", Some(b"[{}]".to_vec()))
        .await
        .unwrap();
    assert_eq!(answer.status, 400);
    assert_eq!(answer.error().unwrap().error, error_kind::MALFORMED_BODY);
}

/// `participant`'s metered delivery for the cleared interval (the stub takes `hh-1`'s only).
fn delivery(participant: &str) -> SignedDelivery {
    DeliveryTicket {
        participant: participant.into(),
        interval_start: CLEARED,
        import_wh: 100,
        export_wh: 0,
        meters: vec!["m-1".into()],
    }
    .sign("nb", &ed25519_dalek::SigningKey::from_bytes(&[1; 32]))
}

#[tokio::test]
async fn deliveries_are_answered_one_by_one() {
    let node = node(Some(Vec::new())).await;
    let answers = node
        .submit_deliveries(&[delivery("hh-1"), delivery("hh-9")])
        .await
        .unwrap();
    assert!(answers[0].is_ok());
    assert!(
        matches!(&answers[1], Err(ClientError::Rejected { kind, .. }) if kind == "unknown_participant"),
        "{answers:?}"
    );
    let too_many = vec![delivery("hh-1"); 1_001];
    assert!(matches!(
        node.submit_deliveries(&too_many).await,
        Err(ClientError::Malformed(_))
    ));
}

#[tokio::test]
async fn every_rejection_kind_reaches_the_client() {
    let rejections = vec![
        OrderRejection::BadSignature,
        OrderRejection::UnknownParticipant("x".into()),
        OrderRejection::KeyNotAllowed {
            participant: "x".into(),
            key: "y".into(),
        },
        OrderRejection::WrongInterval(1),
        OrderRejection::ClosedInterval(1),
        OrderRejection::Market(RejectReason::DuplicateId("x".into())),
        OrderRejection::BadOrderId(voltmesh_consensus::wire::order::OrderIdError::Empty),
        OrderRejection::OrderIdTooLong { bytes: 65, max: 64 },
        OrderRejection::ParticipantIntervalFull {
            interval_start: 1,
            max: 16,
        },
        OrderRejection::IntervalFull {
            interval_start: 1,
            max: 1000,
        },
    ];
    let kinds: Vec<&str> = rejections.iter().map(OrderRejection::kind).collect();
    let node = node(Some(rejections.into_iter().map(Err).collect())).await;
    for kind in kinds {
        let answer = node.submit(&signed()).await;
        match kind {
            error_kind::DUPLICATE_ID => assert_eq!(answer, Ok(Submitted::AlreadyThere)),
            _ => assert!(
                matches!(&answer, Err(ClientError::Rejected { kind: k, .. }) if k == kind),
                "{kind}: {answer:?}"
            ),
        }
    }
}

#[tokio::test]
async fn malformed_requests_answer_400_with_an_error_body() {
    let node = node(Some(Vec::new())).await;
    for (method, path, body, kind) in [
        (
            "POST",
            "/v1/orders",
            Some(b"{".to_vec()),
            error_kind::MALFORMED_BODY,
        ),
        (
            "GET",
            "/v1/intervals/soon",
            None,
            error_kind::MALFORMED_INTERVAL,
        ),
        ("GET", "/v1/blocks/-1", None, error_kind::MALFORMED_HEIGHT),
    ] {
        let answer = node.raw(method, path, body).await.unwrap();
        assert_eq!(answer.status, 400, "{path}");
        assert_eq!(answer.error().expect("error body").error, kind, "{path}");
    }
    // A price without six decimals is still a price: the node decodes it, then checks the
    // signature over its own (six-decimal) encoding.
    let text = serde_json::to_string(&signed()).unwrap();
    assert!(text.contains("\"limit_price\":\"0.100000\""), "{text}");
}

#[tokio::test]
async fn read_routes_answer_their_views() {
    let node = node(Some(Vec::new())).await;
    assert_eq!(node.interval(CLEARED - 900).await, Ok(None), "404: not yet");
    assert_eq!(node.interval(CLEARED).await, Ok(Some(clearing(CLEARED))));
    let rfc3339 = DateTime::from_timestamp(CLEARED, 0).unwrap().to_rfc3339();
    let answer = node
        .raw("GET", &format!("/v1/intervals/{rfc3339}"), None)
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(node.block(HEIGHT + 1).await, Ok(None));
    assert_eq!(node.block(HEIGHT).await, Ok(Some(block(&signed()))));
    assert_eq!(node.status().await, Ok(status()));
    let view = node.participant("hh-1").await.unwrap();
    assert_eq!(
        node.balance("hh-1").await.unwrap(),
        view.balance,
        "the balance alone, through the same route"
    );
    assert_eq!(view.participant.as_str(), "hh-1");
    assert_eq!(view.balance.net_paid, Money::from_nanos(25_000_000));
    assert_eq!(
        (view.balance.paid, view.balance.received),
        (Money::from_nanos(25_000_000), Money::ZERO)
    );
    let not_found = node.raw("GET", "/v1/nothing", None).await.unwrap();
    assert_eq!(not_found.status, 404);
}

#[tokio::test]
async fn a_busy_absent_or_misrouted_node_is_classified() {
    let busy = node(None).await;
    let e = busy.submit(&signed()).await.unwrap_err();
    assert!(e.is_retryable(), "503: {e}");
    let answer = busy.raw("GET", "/v1/status", None).await.unwrap();
    assert_eq!(answer.status, 503);
    assert_eq!(answer.error().unwrap().error, error_kind::BUSY);
    assert!(busy.interval(CLEARED).await.unwrap_err().is_retryable());
    assert!(busy.status().await.unwrap_err().is_retryable());

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let absent = NodeClient::new(&format!("http://127.0.0.1:{port}")).unwrap();
    let e = absent.submit(&signed()).await.unwrap_err();
    assert!(e.is_retryable(), "refused: {e}");
    assert_eq!(absent.counts().unavailable, 1);

    // A base URL with a wrong path prefix: the router answers 404, which orders never get.
    let live = node(Some(Vec::new())).await;
    let wrong = NodeClient::new(&format!("{}/api", live.base())).unwrap();
    let e = wrong.submit(&signed()).await.unwrap_err();
    assert!(
        matches!(e, ClientError::Unexpected { status: 404, .. }),
        "{e}"
    );
    assert_eq!(wrong.counts().unexpected, 1);
}

/// Checks `value` against `schema` of the OpenAPI document `doc`: types, enums, required
/// properties, and no property the document does not name.
fn validate(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        let target = &doc["components"]["schemas"][name];
        if target.is_null() {
            return Err(format!("{at}: dangling {reference}"));
        }
        return validate(doc, target, value, at);
    }
    if let Some(options) = schema["oneOf"].as_array().or(schema["anyOf"].as_array()) {
        let errors: Vec<String> = options
            .iter()
            .filter_map(|o| validate(doc, o, value, at).err())
            .collect();
        return if errors.len() < options.len() {
            Ok(())
        } else {
            Err(errors.join("; "))
        };
    }
    if let Some(all) = schema["allOf"].as_array() {
        for s in all {
            validate(doc, s, value, at)?;
        }
    }
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let allowed: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let fits = |t: &&str| *t == kind || (*t == "number" && kind == "integer");
    if !allowed.is_empty() && !allowed.iter().any(fits) {
        return Err(format!("{at}: {kind}, documented as {allowed:?}"));
    }
    if let Some(options) = schema["enum"].as_array() {
        if !options.contains(value) {
            return Err(format!("{at}: {value} is not one of {options:?}"));
        }
    }
    match value {
        Value::Object(fields) => {
            let properties = schema["properties"].as_object();
            for required in schema["required"].as_array().into_iter().flatten() {
                let name = required.as_str().unwrap_or_default();
                if !fields.contains_key(name) {
                    return Err(format!("{at}: required {name} is missing"));
                }
            }
            // A schema with properties documents exactly those (an extra field fails); one
            // without is a free-form object (the document's `Object`: governance actions,
            // policies and rules, described in prose), whose fields are not checked.
            if properties.is_none() && schema["additionalProperties"].is_null() {
                return Ok(());
            }
            for (name, field) in fields {
                let property = match properties.and_then(|p| p.get(name)) {
                    Some(property) => property,
                    None if schema["additionalProperties"].is_object() => {
                        &schema["additionalProperties"]
                    }
                    None => return Err(format!("{at}: {name} is not documented")),
                };
                validate(doc, property, field, &format!("{at}.{name}"))?;
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                validate(doc, &schema["items"], item, &format!("{at}[{i}]"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[tokio::test]
async fn every_answer_validates_against_the_served_openapi_document() {
    let node = node(Some(vec![
        Ok(()),
        Err(OrderRejection::BadSignature),
        Err(OrderRejection::MempoolFull),
    ]))
    .await;
    let served = node.raw("GET", "/v1/openapi.json", None).await.unwrap();
    assert_eq!(served.status, 200);
    let doc: Value = serde_json::from_slice(&served.body).unwrap();
    assert_eq!(
        doc,
        serde_json::from_str::<Value>(&voltmesh_consensus::wire::openapi::json()).unwrap()
    );
    let order = serde_json::to_vec(&signed()).unwrap();
    let cleared = CLEARED.to_string();
    /// Method, documented route, path, body, expected status.
    type Case = (&'static str, &'static str, String, Option<Vec<u8>>, u16);
    let cases: Vec<Case> = vec![
        (
            "post",
            "/v1/orders",
            "/v1/orders".into(),
            Some(order.clone()),
            202,
        ),
        (
            "post",
            "/v1/orders",
            "/v1/orders".into(),
            Some(order.clone()),
            422,
        ),
        ("post", "/v1/orders", "/v1/orders".into(), Some(order), 422),
        (
            "post",
            "/v1/orders",
            "/v1/orders".into(),
            Some(b"{}".to_vec()),
            400,
        ),
        (
            "post",
            "/v1/orders",
            "/v1/orders".into(),
            Some(serde_json::to_vec(&[signed(), signed()]).unwrap()),
            200,
        ),
        (
            "post",
            "/v1/orders",
            "/v1/orders".into(),
            Some(serde_json::to_vec(&vec![signed(); MAX_BATCH_ORDERS + 1]).unwrap()),
            413,
        ),
        (
            "get",
            "/v1/intervals/{start}",
            format!("/v1/intervals/{cleared}"),
            None,
            200,
        ),
        (
            "get",
            "/v1/intervals/{start}",
            "/v1/intervals/0".into(),
            None,
            404,
        ),
        (
            "get",
            "/v1/intervals/{start}",
            "/v1/intervals/x".into(),
            None,
            400,
        ),
        (
            "get",
            "/v1/participants/{id}",
            "/v1/participants/hh-1".into(),
            None,
            200,
        ),
        (
            "get",
            "/v1/blocks/{height}",
            format!("/v1/blocks/{HEIGHT}"),
            None,
            200,
        ),
        (
            "get",
            "/v1/blocks/{height}",
            "/v1/blocks/0".into(),
            None,
            404,
        ),
        (
            "get",
            "/v1/blocks/{height}",
            "/v1/blocks/x".into(),
            None,
            400,
        ),
        ("get", "/v1/status", "/v1/status".into(), None, 200),
        ("get", "/v1/snapshot", "/v1/snapshot".into(), None, 404),
        (
            "get",
            "/v1/participants/{id}",
            "/v1/participants/hh-1?limit=0".into(),
            None,
            400,
        ),
        (
            "get",
            "/v1/participants/{id}",
            "/v1/participants/hh-1?from=yesterday".into(),
            None,
            400,
        ),
        (
            "get",
            "/v1/orders/{participant}/{id}",
            "/v1/orders/hh-1/hh-1-x-sell".into(),
            None,
            200,
        ),
        (
            "get",
            "/v1/orders/{participant}/{id}",
            format!("/v1/orders/hh-1/hh-1-x-sell?interval={cleared}"),
            None,
            200,
        ),
        (
            "get",
            "/v1/orders/{participant}/{id}",
            "/v1/orders/hh-1/nope".into(),
            None,
            404,
        ),
        (
            "get",
            "/v1/orders/{participant}/{id}",
            "/v1/orders/hh-1/hh-1-x-sell?interval=x".into(),
            None,
            400,
        ),
    ];
    let mut cases = cases;
    for (id, status) in [("ok", 202), ("no", 422)] {
        cases.push((
            "post",
            "/v1/governance",
            "/v1/governance".into(),
            Some(serde_json::to_vec(&proposal(id)).unwrap()),
            status,
        ));
    }
    cases.push((
        "post",
        "/v1/governance",
        "/v1/governance".into(),
        Some(b"{}".to_vec()),
        400,
    ));
    cases.push(("get", "/v1/governance", "/v1/governance".into(), None, 200));
    for (route, path, status) in [
        (
            "/v1/participants/{id}/bills",
            "/v1/participants/hh-1/bills?from=0&to=9999999999",
            200,
        ),
        (
            "/v1/participants/{id}/bills",
            "/v1/participants/hh-1/bills?from=0",
            400,
        ),
        (
            "/v1/participants/{id}/statement",
            "/v1/participants/hh-1/statement?from=0&to=9999999999",
            200,
        ),
        (
            "/v1/participants/{id}/statement",
            "/v1/participants/hh-1/statement?to=x",
            400,
        ),
        (
            "/v1/settlements",
            "/v1/settlements?from=0&to=9999999999",
            200,
        ),
        ("/v1/settlements", "/v1/settlements?from=9&to=0", 400),
        (
            "/v1/corrections",
            "/v1/corrections?from=0&to=9999999999",
            200,
        ),
        ("/v1/corrections", "/v1/corrections?from=x&to=1", 400),
        ("/v1/settlements/{start}", "/v1/settlements/0", 404),
        ("/v1/settlements/{start}", "/v1/settlements/x", 400),
    ] {
        cases.push(("get", route, path.into(), None, status));
    }
    cases.push((
        "get",
        "/v1/settlements/{start}",
        format!("/v1/settlements/{cleared}"),
        None,
        200,
    ));
    cases.push((
        "post",
        "/v1/deliveries",
        "/v1/deliveries".into(),
        Some(serde_json::to_vec(&[delivery("hh-1"), delivery("hh-9")]).unwrap()),
        200,
    ));
    cases.push((
        "post",
        "/v1/deliveries",
        "/v1/deliveries".into(),
        Some(b"{}".to_vec()),
        400,
    ));
    for (id, status) in [("ok", 202), ("stale", 422)] {
        cases.push((
            "post",
            "/v1/corrections",
            "/v1/corrections".into(),
            Some(serde_json::to_vec(&correction(id)).unwrap()),
            status,
        ));
    }
    cases.push((
        "post",
        "/v1/corrections",
        "/v1/corrections".into(),
        Some(b"[]".to_vec()),
        400,
    ));
    let mut routes = std::collections::BTreeSet::new();
    for (method, route, path, body, status) in cases {
        let answer = node.raw(&method.to_uppercase(), &path, body).await.unwrap();
        assert_eq!(answer.status, status, "{method} {path}");
        let value: Value = serde_json::from_slice(&answer.body).unwrap();
        let schema = &doc["paths"][route][method]["responses"][status.to_string()]["content"]
            ["application/json"]["schema"];
        assert!(
            !schema.is_null(),
            "{method} {route} {status} is not documented"
        );
        validate(&doc, schema, &value, &format!("{method} {path} {status}"))
            .unwrap_or_else(|e| panic!("{e}\n{value}"));
        routes.insert(route);
    }
    // An unsigned read of a participant's data is refused 401, as documented.
    let unsigned = NodeClient::new(node.base()).unwrap();
    for (route, path) in [
        ("/v1/participants/{id}", "/v1/participants/hh-1".to_owned()),
        (
            "/v1/participants/{id}/bills",
            "/v1/participants/hh-1/bills?from=0&to=1".to_owned(),
        ),
        (
            "/v1/participants/{id}/statement",
            "/v1/participants/hh-1/statement?from=0&to=1".to_owned(),
        ),
        (
            "/v1/settlements/{start}",
            format!("/v1/settlements/{cleared}"),
        ),
        ("/v1/corrections", "/v1/corrections?from=0&to=1".to_owned()),
        ("/v1/snapshot", "/v1/snapshot".to_owned()),
        (
            "/v1/orders/{participant}/{id}",
            "/v1/orders/hh-1/hh-1-x-sell".to_owned(),
        ),
    ] {
        let answer = unsigned.raw("GET", &path, None).await.unwrap();
        assert_eq!(answer.status, 401, "{path}");
        assert_eq!(answer.error().unwrap().error, "unsigned_read");
        let schema = &doc["paths"][route]["get"]["responses"]["401"]["content"]["application/json"]
            ["schema"];
        let value: Value = serde_json::from_slice(&answer.body).unwrap();
        validate(&doc, schema, &value, &path).unwrap_or_else(|e| panic!("{e}"));
    }
    // A node whose driver is gone answers 503, as documented on every route.
    let gone = crate::node(None).await;
    for (route, path) in [("/v1/orders", "/v1/orders"), ("/v1/status", "/v1/status")] {
        let method = if route == "/v1/orders" { "post" } else { "get" };
        let body = (method == "post").then(|| serde_json::to_vec(&signed()).unwrap());
        let answer = gone.raw(&method.to_uppercase(), path, body).await.unwrap();
        assert_eq!(answer.status, 503);
        let schema = &doc["paths"][route][method]["responses"]["503"]["content"]
            ["application/json"]["schema"];
        let value: Value = serde_json::from_slice(&answer.body).unwrap();
        validate(&doc, schema, &value, path).unwrap_or_else(|e| panic!("{e}"));
    }
    // The check has teeth: an undocumented field, a missing one or a wrong type fail.
    let status_schema = &doc["components"]["schemas"]["StatusView"];
    let mut value = serde_json::to_value(status()).unwrap();
    assert!(validate(&doc, status_schema, &value, "status").is_ok());
    value["time"] = Value::from(1);
    assert!(validate(&doc, status_schema, &value, "status").is_err());
    let refused = |schema: &str, value: &Value| {
        validate(&doc, &doc["components"]["schemas"][schema], value, schema).is_err()
    };
    let mut block = serde_json::to_value(block(&signed())).unwrap();
    block.as_object_mut().unwrap().remove("timestamp_ms");
    assert!(refused("BlockView", &block));
    let mut clearing = serde_json::to_value(clearing(CLEARED)).unwrap();
    clearing["outcome"]["trades"][0]["side"] = Value::from("sell");
    assert!(refused("IntervalClearing", &clearing));
    clearing = serde_json::to_value(self::clearing(CLEARED)).unwrap();
    clearing["outcome"]["unfilled"][0]["side"] = Value::from("both");
    assert!(refused("IntervalClearing", &clearing));

    // Every documented route (but the document itself) was exercised.
    let documented: std::collections::BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .filter(|p| *p != "/v1/openapi.json")
        .collect();
    assert_eq!(routes, documented);
}

/// `GET /v1/orders/{participant}/{id}` through the real router and the typed client (async and
/// blocking): every interval the id is known in, or one with `?interval=`, and `None` for an
/// unknown order.
#[tokio::test]
async fn order_status_answers_every_interval_or_one() {
    let node = node(Some(Vec::new())).await;
    let all = node
        .order_status("hh-1", "hh-1-x-sell", None)
        .await
        .unwrap()
        .expect("known");
    assert_eq!(Some(all.clone()), order_status(None));
    let states: Vec<&str> = all
        .orders
        .iter()
        .map(|e| match e.status {
            OrderState::Pending => "pending",
            OrderState::Committed { .. } => "committed",
            OrderState::Expired { .. } => "expired",
            OrderState::Refused { .. } => "refused",
        })
        .collect();
    assert_eq!(states, ["expired", "refused", "committed", "pending"]);
    let one = node
        .order_status("hh-1", "hh-1-x-sell", Some(CLEARED))
        .await
        .unwrap()
        .expect("known");
    assert_eq!(one.orders.len(), 1);
    assert!(matches!(
        one.orders[0].status,
        OrderState::Committed { height: HEIGHT, .. }
    ));
    assert_eq!(
        node.order_status("hh-1", "other", None).await.unwrap(),
        None
    );
    assert_eq!(
        node.order_status("hh-1", "hh-1-x-sell", Some(CLEARED + 7))
            .await
            .unwrap(),
        None
    );
    let base = node.base().to_owned();
    let blocking = tokio::task::spawn_blocking(move || {
        let client = voltmesh_consensus::wire::client::BlockingNodeClient::new(&base)
            .unwrap()
            .with_read_key("nb", ed25519_dalek::SigningKey::from_bytes(&[7; 32]));
        client.order_status("hh-1", "hh-1-x-sell", Some(CLEARED + 900))
    })
    .await
    .unwrap()
    .unwrap()
    .expect("known");
    assert_eq!(blocking.orders[0].status, OrderState::Pending);
}
