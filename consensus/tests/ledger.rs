//! The ledger application on its own: orders are checked, intervals clear at gate closure by block
//! time, and validators accept exactly the bodies an honest proposer builds.

mod ledger_support;

use ledger_support::{at, child, key, pk, T0};
use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use voltmesh_consensus::ledger::{BlockBody, BlockRejection, LedgerApp, LedgerState};
use voltmesh_consensus::protocol::{App, Block};
use voltmesh_consensus::wire::{
    Genesis, GenesisValidator, OrderRejection, OrderTicket, SignedOrder,
};
use voltmesh_engine::{
    AdmissionLimits, IntervalSpec, MarketConfig, MarketRules, Mechanism, Price, Side, Tariffs, K,
};

fn p(s: &str) -> Price {
    s.parse().unwrap()
}

fn genesis() -> Genesis {
    Genesis {
        neighborhood: "testville".into(),
        genesis_time: T0.parse::<DateTime<Utc>>().unwrap(),
        currency: voltmesh_wire::Currency::EUR,
        market: MarketConfig {
            mechanism: Mechanism::Uniform { k: K::HALF },
            rules: MarketRules {
                tariffs: Tariffs::new(p("0.08"), p("0.32")).unwrap(),
                max_order_wh: 1_000_000,
            },
            network_fee: p("0.01"),
            interval: IntervalSpec::DEFAULT,
            admission: AdmissionLimits::DEFAULT,
        },
        validators: (100..104)
            .map(|n| GenesisValidator {
                public_key: pk(n),
                address: format!("/ip4/127.0.0.1/tcp/{n}"),
            })
            .collect(),
        // h1 signs with its own key 1 or the bridge key 9; h2 with key 2; h3 with key 3.
        participants: BTreeMap::from([
            ("h1".into(), vec![pk(1), pk(9)]),
            ("h2".into(), vec![pk(2)]),
            ("h3".into(), vec![pk(3)]),
        ]),
        snapshot_interval_blocks: 0,
        governance: None,
        deliveries: Default::default(),
        billing_keys: Vec::new(),
    }
    .validate()
    .unwrap()
}

/// The 10:15 interval (gate closes at 10:10).
fn next_interval() -> i64 {
    T0.parse::<DateTime<Utc>>().unwrap().timestamp() + 900
}

fn order(
    signer: u8,
    participant: &str,
    id: &str,
    side: Side,
    wh: u64,
    price: &str,
    nonce: u64,
) -> SignedOrder {
    OrderTicket {
        participant: participant.into(),
        interval_start: next_interval(),
        id: id.into(),
        side,
        quantity_wh: wh,
        limit_price: p(price),
        nonce,
    }
    .sign("testville", &key(signer))
}

/// Household h1's 100 Wh order at 0.10 for `interval`, signed with key `signer` (1 is h1's own
/// key, 9 the bridge's).
fn h1_order(interval: i64, id: &str, side: Side, nonce: u64, signer: u8) -> SignedOrder {
    OrderTicket {
        participant: "h1".into(),
        interval_start: interval,
        id: id.into(),
        side,
        quantity_wh: 100,
        limit_price: p("0.10"),
        nonce,
    }
    .sign("testville", &key(signer))
}

#[test]
fn every_rejection_reason() {
    let g = genesis();
    let mut state = LedgerState::new(&g);
    let ok = order(1, "h1", "a", Side::Sell, 500, "0.10", 1);
    state.insert(&g, &ok, at(60)).unwrap();

    let mut forged = order(2, "h2", "b", Side::Buy, 500, "0.20", 1);
    forged.ticket.quantity_wh = 5_000; // changed after signing
    assert_eq!(
        state.admit(&g, &forged, at(60)),
        Err(OrderRejection::BadSignature)
    );
    let stranger = order(7, "h7", "c", Side::Buy, 500, "0.20", 1);
    assert!(matches!(
        state.admit(&g, &stranger, at(60)),
        Err(OrderRejection::UnknownParticipant(_))
    ));
    let wrong_key = order(2, "h1", "d", Side::Buy, 500, "0.20", 2);
    assert!(matches!(
        state.admit(&g, &wrong_key, at(60)),
        Err(OrderRejection::KeyNotAllowed { .. })
    ));
    // A replay of an included order is a duplicate id while the interval is open (and a closed
    // interval after); the nonce is not a gate (audit M3).
    assert_eq!(
        state.admit(&g, &ok, at(60)).unwrap_err().kind(),
        "duplicate_id"
    );
    assert_eq!(
        state.admit(&g, &ok, at(600)).unwrap_err().kind(),
        "closed_interval"
    );
    let same_nonce = order(9, "h1", "e", Side::Sell, 500, "0.10", 1);
    state.admit(&g, &same_nonce, at(60)).unwrap();
    let mut off_grid = order(2, "h2", "f", Side::Buy, 500, "0.20", 1).ticket;
    off_grid.interval_start += 60;
    let off_grid = off_grid.sign("testville", &key(2));
    assert!(matches!(
        state.admit(&g, &off_grid, at(60)),
        Err(OrderRejection::WrongInterval(_))
    ));
    let mut far = order(2, "h2", "f", Side::Buy, 500, "0.20", 1).ticket;
    far.interval_start += 900 * 200;
    let far = far.sign("testville", &key(2));
    assert!(matches!(
        state.admit(&g, &far, at(60)),
        Err(OrderRejection::WrongInterval(_))
    ));
    let late = order(2, "h2", "g", Side::Buy, 500, "0.20", 1);
    assert!(matches!(
        state.admit(&g, &late, at(600)),
        Err(OrderRejection::ClosedInterval(_))
    ));
    let pricey = order(2, "h2", "h", Side::Buy, 500, "0.40", 1);
    let err = state.admit(&g, &pricey, at(60)).unwrap_err();
    assert_eq!(err.kind(), "price_outside_tariffs", "{err}");
    let dup = order(9, "h1", "a", Side::Sell, 500, "0.10", 2);
    assert_eq!(
        state.admit(&g, &dup, at(60)).unwrap_err().kind(),
        "duplicate_id"
    );
    // The same ticket id from another participant is fine: ids are per participant.
    let same_id_other = order(2, "h2", "a", Side::Buy, 500, "0.20", 1);
    state.admit(&g, &same_id_other, at(60)).unwrap();
    // Orders signed for another neighborhood do not verify here.
    let mut elsewhere = order(2, "h2", "i", Side::Buy, 500, "0.20", 1)
        .ticket
        .sign("otherville", &key(2));
    elsewhere.ticket.id = "i".into();
    assert_eq!(
        state.admit(&g, &elsewhere, at(60)),
        Err(OrderRejection::BadSignature)
    );
}

#[test]
fn gate_closure_by_block_time_clears_the_interval() {
    let g = genesis();
    let mut proposer = LedgerState::new(&g);
    let orders = [
        order(1, "h1", "s1", Side::Sell, 600, "0.10", 1),
        order(2, "h2", "b1", Side::Buy, 400, "0.30", 1),
        order(3, "h3", "b2", Side::Buy, 400, "0.20", 1),
    ];
    let first = proposer.build(&g, &[], orders.iter(), at(60), 100);
    assert_eq!(first.orders.len(), 3);
    assert!(
        first.clearings.is_empty(),
        "the gate is still open at 10:01"
    );
    // 10:09:59.999: still open.
    let body = proposer.build(&g, &[], [].iter(), at(600) - 1, 100);
    assert!(body.clearings.is_empty());
    // 10:10:00: the gate of 10:15 closes; the interval clears in this block.
    let mut validator = LedgerState::new(&g);
    validator.execute(&g, &first, at(60)).unwrap();
    let body = proposer.build(&g, &[], [].iter(), at(600), 100);
    assert_eq!(body.clearings.len(), 1);
    let record = &body.clearings[0];
    assert_eq!(record.volume_wh, 600);
    // Partly filled marginal bid b2 pins the price to 0.20.
    assert_eq!(record.clearing_price, Some(p("0.20")));
    assert_eq!(record.interval_start, next_interval());
    assert_eq!(proposer.open_intervals().count(), 0);
    // The block carries the record; executing it gives the full clearing it records.
    let clearings = validator.execute(&g, &body, at(600)).unwrap();
    assert_eq!(clearings.len(), 1);
    assert!(record.records(&clearings[0]));
    assert_eq!(clearings[0].outcome.trades.len(), 2);
    assert_eq!(clearings[0].outcome.unfilled[0].id.as_str(), "h3:b2");
}

#[test]
fn validators_accept_honest_bodies_and_refuse_wrong_clearings() {
    let g = genesis();
    let orders = [
        order(1, "h1", "s1", Side::Sell, 600, "0.10", 1),
        order(2, "h2", "b1", Side::Buy, 400, "0.30", 1),
    ];
    let mut proposer = LedgerState::new(&g);
    let first = proposer.build(&g, &[], orders.iter(), at(60), 100);
    let closing = proposer.build(&g, &[], [].iter(), at(601), 100);

    let mut validator = LedgerState::new(&g);
    let bytes = first.encode();
    validator
        .execute(&g, &BlockBody::decode(&bytes).unwrap(), at(60))
        .unwrap();
    let mut honest = validator.clone();
    honest.execute(&g, &closing, at(601)).unwrap();

    // A record whose digest names another clearing (say one trade at another price) is wrong,
    // however right its summary fields are.
    let mut wrong = closing.clone();
    wrong.clearings[0].sha256 = "00".repeat(32);
    let err = validator.clone().execute(&g, &wrong, at(601)).unwrap_err();
    assert!(matches!(err, BlockRejection::WrongClearing { .. }), "{err}");
    let mut wrong = closing.clone();
    wrong.clearings[0].volume_wh += 1;
    assert!(validator.clone().execute(&g, &wrong, at(601)).is_err());
    // Leaving the clearing out is as wrong as changing it.
    let mut missing = closing.clone();
    missing.clearings.clear();
    assert!(validator.clone().execute(&g, &missing, at(601)).is_err());
    // A clearing before the gate closed is refused too.
    assert!(validator.clone().execute(&g, &closing, at(599)).is_err());
    // Non-canonical bytes are refused.
    let mut padded = bytes;
    padded.push(b' ');
    assert!(matches!(
        BlockBody::decode(&padded),
        Err(BlockRejection::Malformed(_))
    ));
}

#[test]
fn app_proposes_validates_and_commits() {
    let g = Arc::new(genesis());
    let genesis_block = Block::genesis(g.genesis_time_ms(), b"testville".to_vec());
    let mut leader = LedgerApp::new(Arc::clone(&g), &genesis_block);
    let mut follower = LedgerApp::new(Arc::clone(&g), &genesis_block);
    leader
        .submit(order(1, "h1", "s1", Side::Sell, 600, "0.10", 1), at(30))
        .unwrap();
    follower
        .submit(order(2, "h2", "b1", Side::Buy, 400, "0.30", 1), at(30))
        .unwrap();
    assert_eq!(
        leader
            .submit(order(1, "h1", "s1", Side::Sell, 600, "0.10", 1), at(31))
            .unwrap_err()
            .kind(),
        "duplicate_id"
    );
    let payload = leader.propose(&genesis_block, at(60));
    follower.validate(&genesis_block, &payload, at(60)).unwrap();
    let bad = leader.propose_invalid(&genesis_block, at(60));
    assert!(follower.validate(&genesis_block, &bad, at(60)).is_err());
    let body = BlockBody::decode(&payload).unwrap();
    assert_eq!(body.orders.len(), 1, "the leader only knows its own order");
}

#[test]
fn pending_orders_survive_commits_of_other_blocks() {
    use voltmesh_consensus::protocol::{QuorumCert, ValidatorIndex};
    let g = Arc::new(genesis());
    let genesis_block = Block::genesis(g.genesis_time_ms(), b"testville".to_vec());
    let mut app = LedgerApp::new(Arc::clone(&g), &genesis_block);
    let o = order(1, "h1", "s1", Side::Sell, 600, "0.10", 1);
    app.submit(o.clone(), at(30)).unwrap();
    // Another node's empty block commits.
    let empty = Block::new(
        1,
        1,
        ValidatorIndex(1),
        at(31),
        QuorumCert::empty(genesis_block.hash()),
        BlockBody::default().encode(),
    );
    app.commit(&empty);
    assert_eq!(app.mempool().len(), 1, "the pending order is kept");
    assert_eq!(app.submit(o, at(32)).unwrap_err().kind(), "duplicate_id");
}

#[test]
fn resubmitting_a_pending_order_is_a_duplicate() {
    let g = Arc::new(genesis());
    let genesis_block = Block::genesis(g.genesis_time_ms(), b"testville".to_vec());
    let mut app = LedgerApp::new(Arc::clone(&g), &genesis_block);
    let o = order(1, "h1", "s1", Side::Sell, 600, "0.10", 1);
    app.submit(o.clone(), at(30)).unwrap();
    let json = serde_json::to_vec(&o).unwrap();
    let again: SignedOrder = serde_json::from_slice(&json).unwrap();
    assert_eq!(
        app.submit(again, at(32)).unwrap_err().kind(),
        "duplicate_id"
    );
    // The same id with another nonce is the same order (participant, interval, id).
    let renonced = order(1, "h1", "s1", Side::Sell, 600, "0.10", 7);
    assert_eq!(
        app.submit(renonced, at(32)).unwrap_err().kind(),
        "duplicate_id"
    );
}

#[test]
fn a_participants_orders_are_all_proposed_whatever_their_nonces() {
    let g = Arc::new(genesis());
    let genesis_block = Block::genesis(g.genesis_time_ms(), b"testville".to_vec());
    let mut app = LedgerApp::new(Arc::clone(&g), &genesis_block);
    // Gossip delivered nonce 2 before nonce 1; nonces no longer order anything (audit M3).
    app.submit(order(1, "h1", "late", Side::Sell, 100, "0.10", 2), at(30))
        .unwrap();
    app.submit(order(1, "h1", "early", Side::Sell, 100, "0.10", 1), at(30))
        .unwrap();
    let body = BlockBody::decode(&app.propose(&genesis_block, at(60))).unwrap();
    let ids: Vec<&str> = body.orders.iter().map(|o| o.ticket.id.as_str()).collect();
    assert_eq!(
        ids,
        ["late", "early"],
        "both orders make it, in arrival order"
    );
}

/// Audit M3: an order for a later interval (with the bridge's nonce = interval start, a higher
/// nonce) committed first does not void the participant's pending order for an earlier interval.
#[test]
fn a_later_intervals_order_committed_first_does_not_void_an_earlier_one() {
    let g = Arc::new(genesis());
    let genesis_block = Block::genesis(g.genesis_time_ms(), b"testville".to_vec());
    let i1 = next_interval();
    let i2 = i1 + 900;
    let bridge_order =
        |interval: i64, id: &str| h1_order(interval, id, Side::Sell, interval as u64, 9);
    // A leader that only has I2's order (gossip, or censorship) commits it first.
    let mut leader = LedgerApp::new(Arc::clone(&g), &genesis_block);
    leader.submit(bridge_order(i2, "i2"), at(30)).unwrap();
    let b1 = child(&genesis_block, 60, leader.propose(&genesis_block, at(60)));
    assert_eq!(BlockBody::decode(b1.payload()).unwrap().orders.len(), 1);

    let mut node = LedgerApp::new(Arc::clone(&g), &genesis_block);
    node.submit(bridge_order(i1, "i1"), at(30)).unwrap();
    node.submit(bridge_order(i2, "i2"), at(31)).unwrap();
    node.validate(&genesis_block, b1.payload(), at(60)).unwrap();
    node.commit(&b1);
    assert_eq!(node.mempool().len(), 1, "I1's order is still pending");
    let b2 = child(&b1, 61, node.propose(&b1, at(61)));
    let body = BlockBody::decode(b2.payload()).unwrap();
    assert_eq!(body.orders.len(), 1);
    assert_eq!(body.orders[0].ticket.interval_start, i1);
    leader.validate(&b1, b2.payload(), at(61)).unwrap();
    node.commit(&b2);
    assert!(node.mempool().is_empty());
    let open: Vec<(i64, usize)> = node.committed().open_intervals().collect();
    assert_eq!(open, [(i1, 1), (i2, 1)], "no interval lost its order");
}

/// Audit L6: engine ids are `participant:id`; with `:` banned from order ids, participant `h1:b`'s
/// order `c` and participant `h1`'s order `b:c` cannot meet as the same engine id.
#[test]
fn engine_ids_of_different_participants_never_collide() {
    let mut g = genesis();
    g.participants.insert("h1:b".into(), vec![pk(4)]);
    let g = g.validate().unwrap();
    let mut state = LedgerState::new(&g);
    state
        .insert(
            &g,
            &order(4, "h1:b", "c", Side::Sell, 100, "0.10", 1),
            at(60),
        )
        .unwrap();
    let other = order(1, "h1", "b:c", Side::Sell, 100, "0.10", 1);
    assert_eq!(
        state.admit(&g, &other, at(60)).unwrap_err().kind(),
        "bad_order_id",
        "refused for its id, not as a duplicate of another participant's order"
    );
    state
        .insert(
            &g,
            &order(1, "h1", "b-c", Side::Sell, 100, "0.10", 1),
            at(60),
        )
        .unwrap();
}

/// Audit H3: a replica that knows only the committed tip (say after a restart) learns the state of
/// certified, uncommitted blocks from `certified`, and can then validate a proposal on top of them.
#[test]
fn certified_blocks_give_their_state_to_a_replica_that_never_validated_them() {
    let g = Arc::new(genesis());
    let genesis_block = Block::genesis(g.genesis_time_ms(), b"testville".to_vec());
    let mut leader = LedgerApp::new(Arc::clone(&g), &genesis_block);
    leader
        .submit(order(1, "h1", "s1", Side::Sell, 600, "0.10", 1), at(30))
        .unwrap();
    let b1 = child(&genesis_block, 60, leader.propose(&genesis_block, at(60)));
    leader
        .submit(order(2, "h2", "b1", Side::Buy, 400, "0.30", 1), at(61))
        .unwrap();
    let b2 = child(&b1, 62, leader.propose(&b1, at(62)));
    let b3_payload = leader.propose(&b2, at(601));
    assert_eq!(BlockBody::decode(&b3_payload).unwrap().clearings.len(), 1);

    let mut restarted = LedgerApp::new(Arc::clone(&g), &genesis_block);
    restarted.certified(&b1);
    restarted.certified(&b2);
    restarted
        .validate(&b2, &b3_payload, at(601))
        .expect("the state after the certified chain is known");
    // A wrong payload on the same parent is still refused.
    let bad = leader.propose_invalid(&b2, at(601));
    assert!(restarted.validate(&b2, &bad, at(601)).is_err());
}

/// Audit L9: a committed block this replica cannot execute halts the ledger; nothing after it is
/// applied and `halted` says why.
#[test]
fn a_committed_block_that_does_not_execute_halts_the_ledger() {
    let g = Arc::new(genesis());
    let genesis_block = Block::genesis(g.genesis_time_ms(), b"testville".to_vec());
    let mut app = LedgerApp::new(Arc::clone(&g), &genesis_block);
    assert_eq!(app.halted(), None);
    let mut forged = order(1, "h1", "s1", Side::Sell, 600, "0.10", 1);
    forged.ticket.quantity_wh = 6_000;
    let bad = child(
        &genesis_block,
        60,
        BlockBody {
            orders: vec![forged],
            clearings: Vec::new(),
            actions: Vec::new(),
            deliveries: Vec::new(),
            bills: Vec::new(),
            corrections: Vec::new(),
            state: None,
        }
        .encode(),
    );
    app.commit(&bad);
    let reason = app.halted().expect("the ledger halted").to_owned();
    assert!(reason.contains("does not execute"), "{reason}");
    assert!(app.take_committed().is_empty());
    let next = child(&bad, 61, BlockBody::default().encode());
    app.commit(&next);
    assert!(
        app.take_committed().is_empty(),
        "nothing is applied after a halt"
    );
    assert_eq!(app.halted(), Some(reason.as_str()));
}

/// A genesis with `n` participants whose ids are 48 bytes long (key `10 + i` each).
fn crowded_genesis(n: u8) -> (Genesis, Vec<String>) {
    let mut g = genesis();
    let names: Vec<String> = (0..n)
        .map(|i| format!("{:-<48}", format!("participant-{i:03}")))
        .collect();
    for (i, name) in names.iter().enumerate() {
        g.participants
            .insert(name.as_str().into(), vec![pk(10 + i as u8)]);
    }
    (g.validate().unwrap(), names)
}

/// Audit C1: one interval filled to every admission limit with the longest ids, plus an attempt
/// to add orders with huge ids; the block at the gate (which must carry the clearing) still
/// builds, fits in a payload, and executes on a validator. Without the limits the huge-id orders
/// are admitted and the clearing outgrows the payload: the chain could never pass the gate.
#[test]
fn a_full_interval_still_clears_within_one_payload() {
    use voltmesh_consensus::ledger::MAX_ORDERS_PER_BLOCK;
    use voltmesh_consensus::protocol::MAX_PAYLOAD_BYTES;
    let (g, names) = crowded_genesis(63);
    let limits = g.market.admission;
    let g = Arc::new(g);
    let genesis_block = Block::genesis(g.genesis_time_ms(), b"testville".to_vec());
    let mut leader = LedgerApp::new(Arc::clone(&g), &genesis_block);
    let mut validator = LedgerApp::new(Arc::clone(&g), &genesis_block);
    let ticket = |who: usize, interval: i64, id: String| {
        let sell = who % 2 == 0;
        OrderTicket {
            participant: names[who].as_str().into(),
            interval_start: interval,
            id: id.as_str().into(),
            side: if sell { Side::Sell } else { Side::Buy },
            quantity_wh: if sell { 1_000 } else { 700 },
            limit_price: p(if sell { "0.10" } else { "0.30" }),
            nonce: 1,
        }
        .sign("testville", &key(10 + who as u8))
    };
    let max_id = |k: usize| format!("{k:0>64}");
    let interval = next_interval();
    let mut accepted = 0;
    'fill: for who in 0..names.len() {
        for k in 0..limits.max_orders_per_participant_interval as usize {
            if accepted == limits.max_orders_per_interval as usize {
                let refused = leader.submit(ticket(who, interval, max_id(k)), at(30));
                assert_eq!(refused.unwrap_err().kind(), "interval_full");
                break 'fill;
            }
            leader
                .submit(ticket(who, interval, max_id(k)), at(30))
                .unwrap();
            accepted += 1;
        }
        let over = ticket(who, interval, max_id(99));
        assert_eq!(
            leader.submit(over, at(30)).unwrap_err().kind(),
            "participant_interval_full"
        );
    }
    assert_eq!(accepted, 1_000);
    // The attack: ids of 8 KiB, which no ordinary rule refused.
    let mut attack = Vec::new();
    for k in 0..300 {
        let huge = ticket(62, interval, format!("{k:x>8192}"));
        attack.push(leader.submit(huge, at(31)));
    }
    assert!(attack
        .iter()
        .all(|r| r.as_ref().is_err_and(|e| e.kind() == "order_id_too_long")));
    // The next interval fills too (its orders compete with the clearing at the gate).
    for who in 0..names.len() {
        for k in 0..limits.max_orders_per_participant_interval as usize {
            let _ = leader.submit(ticket(who, interval + 900, max_id(k)), at(32));
        }
    }

    let mut parent = genesis_block;
    let mut secs = 60;
    loop {
        let payload = leader.propose(&parent, at(secs));
        assert!(
            payload.len() <= MAX_PAYLOAD_BYTES,
            "{} bytes",
            payload.len()
        );
        let body = BlockBody::decode(&payload).unwrap();
        assert!(body.orders.len() <= MAX_ORDERS_PER_BLOCK);
        validator.validate(&parent, &payload, at(secs)).unwrap();
        let block = child(&parent, secs, payload);
        leader.commit(&block);
        validator.commit(&block);
        parent = block;
        secs += 1;
        if secs == 600 || leader.committed().orders_in(interval) == 1_000 {
            break;
        }
    }
    assert_eq!(leader.committed().orders_in(interval), 1_000);
    // At the gate: the clearing of the full interval, plus whatever orders still fit.
    let payload = leader.propose(&parent, at(600));
    assert!(
        payload.len() <= MAX_PAYLOAD_BYTES,
        "the gate block takes {} bytes",
        payload.len()
    );
    let body = BlockBody::decode(&payload).unwrap();
    assert_eq!(body.clearings.len(), 1);
    assert_eq!(body.clearings[0].interval_start, interval);
    let record = serde_json::to_vec(&body.clearings[0]).unwrap().len();
    assert!(record < 200, "the record takes {record} bytes");
    validator.validate(&parent, &payload, at(600)).unwrap();
    let gate = child(&parent, 600, payload);
    validator.commit(&gate);
    assert_eq!(validator.halted(), None);
    assert_eq!(validator.committed().orders_in(interval), 0, "cleared");
}

/// `count` orders of participant h1 (key 1), spread over the intervals after the next one,
/// nonces 1.., signed once.
fn flood(count: usize, per_interval: usize) -> Vec<SignedOrder> {
    (0..count)
        .map(|k| {
            let interval = next_interval() + 900 * (1 + (k / per_interval) as i64);
            h1_order(interval, &format!("flood-{k}"), Side::Sell, k as u64 + 1, 1)
        })
        .collect()
}

/// Proposes and commits blocks on `app` until `done` holds, returning how many blocks it took.
fn blocks_until(
    app: &mut LedgerApp,
    from: &Block,
    mut done: impl FnMut(&LedgerApp) -> bool,
) -> usize {
    let mut parent = from.clone();
    for n in 1..=10 {
        let secs = 60 + n as i64;
        let block = child(&parent, secs, app.propose(&parent, at(secs)));
        app.commit(&block);
        if done(app) {
            return n;
        }
        parent = block;
    }
    panic!("not done after 10 blocks");
}

/// Audit M2: a participant flooding the mempool (here with quotas raised so only fairness is at
/// work) does not delay another participant's order: blocks take participants round-robin.
#[test]
fn a_flooding_participant_cannot_delay_another_participants_order() {
    let mut g = genesis();
    g.market.admission.max_orders_per_participant_interval = 1_000;
    g.market.admission.max_pending_per_participant = 10_000;
    let g = Arc::new(g.validate().unwrap());
    let genesis_block = Block::genesis(g.genesis_time_ms(), b"testville".to_vec());
    let mut app = LedgerApp::new(Arc::clone(&g), &genesis_block);
    for o in flood(4_100, 820) {
        app.submit(o, at(30)).unwrap();
    }
    // A bridge order (nonce = interval start), arriving last.
    let mut bridge = order(2, "h2", "b1", Side::Buy, 400, "0.30", 0).ticket;
    bridge.nonce = next_interval() as u64;
    app.submit(bridge.sign("testville", &key(2)), at(31))
        .unwrap();
    let blocks = blocks_until(&mut app, &genesis_block, |app| {
        app.committed()
            .participant_orders_in(&"h2".into(), next_interval())
            == 1
    });
    assert_eq!(blocks, 1, "h2's order is in the first block");
}

/// Audit M2: pending orders per participant are capped at submission (`participant_pending_full`),
/// and the cap frees up as orders are committed.
#[test]
fn pending_orders_per_participant_are_capped() {
    let g = Arc::new(genesis());
    let max = g.market.admission.max_pending_per_participant as usize;
    let genesis_block = Block::genesis(g.genesis_time_ms(), b"testville".to_vec());
    let mut app = LedgerApp::new(Arc::clone(&g), &genesis_block);
    let orders = flood(max + 1, 16);
    for o in &orders[..max] {
        app.submit(o.clone(), at(30)).unwrap();
    }
    assert_eq!(
        app.submit(orders[max].clone(), at(30)).unwrap_err().kind(),
        "participant_pending_full"
    );
    app.submit(order(2, "h2", "b1", Side::Buy, 400, "0.30", 1), at(30))
        .unwrap();
    blocks_until(&mut app, &genesis_block, |app| app.mempool().is_empty());
    app.submit(orders[max].clone(), at(90)).unwrap();
}

/// The deliverable "an accepted order is committed, or the submitter learns why": one id in four
/// intervals, committed in one, pending in one, expired (gate closed first) in one, refused (the
/// participant's one order slot in the interval taken by an order another node accepted) in one;
/// the node's index answers all four, oldest first, or one with an interval.
#[test]
fn order_status_tells_pending_committed_expired_and_refused_apart() {
    use voltmesh_consensus::index::Index;
    use voltmesh_consensus::wire::api::OrderState;
    let mut g = genesis();
    g.market.admission.max_orders_per_participant_interval = 1;
    let g = Arc::new(g);
    let genesis_block = Block::genesis(g.genesis_time_ms(), b"testville".to_vec());
    let i1 = next_interval();
    let (i2, i3, i4) = (i1 + 900, i1 + 1800, i1 + 2700);
    let order_x = |interval: i64, id: &str| h1_order(interval, id, Side::Sell, 1, 1);
    let x = |interval: i64| order_x(interval, "x");
    let mut node = LedgerApp::new(Arc::clone(&g), &genesis_block);
    let mut other = LedgerApp::new(Arc::clone(&g), &genesis_block);
    let mut index = Index::in_memory();
    node.submit(x(i1), at(30)).unwrap();
    node.submit(x(i2), at(30)).unwrap();
    other.submit(order_x(i2, "z"), at(30)).unwrap(); // takes h1's one slot in i2
    other.submit(x(i3), at(30)).unwrap();
    node.submit(x(i3), at(30)).unwrap();
    // Another node's block commits its own i2 and i3 orders.
    let b1 = child(&genesis_block, 60, other.propose(&genesis_block, at(60)));
    node.commit(&b1);
    for committed in node.take_committed() {
        index.apply(&committed).expect("index");
    }
    node.submit(x(i4), at(61)).unwrap();
    // The chain stalls past i1's gate; an empty block at 10:10 drops i1's order.
    let b2 = child(&b1, 600, BlockBody::default().encode());
    node.commit(&b2);
    for committed in node.take_committed() {
        index.apply(&committed).expect("index");
    }
    let view = index
        .order_status(&node, &"h1".into(), "x", None)
        .expect("read")
        .expect("known");
    let states: Vec<(i64, &OrderState)> = view
        .orders
        .iter()
        .map(|e| (e.interval_start, &e.status))
        .collect();
    assert!(
        matches!(states[0], (s, OrderState::Expired { reason, .. }) if s == i1 && reason == "closed_interval"),
        "{states:?}"
    );
    assert!(
        matches!(states[1], (s, OrderState::Refused { reason, .. }) if s == i2 && reason == "participant_interval_full"),
        "{states:?}"
    );
    assert_eq!(
        states[2],
        (
            i3,
            &OrderState::Committed {
                height: 1,
                block_hash: b1.hash().to_string()
            }
        )
    );
    assert_eq!(states[3], (i4, &OrderState::Pending));
    let one = index
        .order_status(&node, &"h1".into(), "x", Some(i4))
        .expect("read")
        .expect("known");
    assert_eq!(one.orders.len(), 1);
    assert!(index
        .order_status(&node, &"h1".into(), "y", None)
        .expect("read")
        .is_none());
    assert!(index
        .order_status(&node, &"h2".into(), "x", None)
        .expect("read")
        .is_none());
}

/// Audit C1: after a stall, gates that closed together are cleared one per block, oldest first,
/// and no order reaches an interval whose gate closed while it waits its turn.
#[test]
fn gates_closed_together_clear_in_consecutive_blocks() {
    let g = genesis();
    let i1 = next_interval();
    let mut state = LedgerState::new(&g);
    let in_interval = |interval: i64, id: &str| h1_order(interval, id, Side::Sell, 1, 1);
    let orders = [in_interval(i1, "a"), in_interval(i1 + 900, "b")];
    let body = state.build(&g, &[], orders.iter(), at(60), 100);
    assert_eq!(body.orders.len(), 2);
    // Both gates (10:10 and 10:25) have closed by 10:30.
    let late = in_interval(i1 + 900, "c");
    let first = state.build(&g, &[], [late.clone()].iter(), at(1800), 100);
    assert!(
        first.orders.is_empty(),
        "the second interval's gate closed too"
    );
    let starts: Vec<i64> = first.clearings.iter().map(|c| c.interval_start).collect();
    assert_eq!(starts, [i1]);
    let second = state.build(&g, &[], [late].iter(), at(1801), 100);
    assert!(second.orders.is_empty());
    let starts: Vec<i64> = second.clearings.iter().map(|c| c.interval_start).collect();
    assert_eq!(starts, [i1 + 900]);
    // A validator agrees, and refuses both clearings in one block.
    let mut validator = LedgerState::new(&g);
    validator.execute(&g, &body, at(60)).unwrap();
    let mut both = first.clone();
    both.clearings.extend(second.clearings.clone());
    assert!(validator.clone().execute(&g, &both, at(1800)).is_err());
    validator.execute(&g, &first, at(1800)).unwrap();
    validator.execute(&g, &second, at(1801)).unwrap();
}

/// "No interval silently empty": the meter bridge signs with nonce = interval start, the same
/// nonce for every order of a participant in one interval. Orders of one interval sharing a nonce,
/// and an earlier interval's order arriving after a later one's was committed, all commit.
#[test]
fn bridge_nonces_never_void_an_interval() {
    let g = Arc::new(genesis());
    let genesis_block = Block::genesis(g.genesis_time_ms(), b"testville".to_vec());
    let i1 = next_interval();
    let bridge =
        |interval: i64, id: &str, side: Side| h1_order(interval, id, side, interval as u64, 9);
    let mut app = LedgerApp::new(Arc::clone(&g), &genesis_block);
    app.submit(bridge(i1 + 900, "later", Side::Sell), at(30))
        .unwrap();
    let b1 = child(&genesis_block, 60, app.propose(&genesis_block, at(60)));
    app.commit(&b1);
    app.submit(bridge(i1, "sell", Side::Sell), at(61)).unwrap();
    app.submit(bridge(i1, "buy", Side::Buy), at(61)).unwrap();
    let b2 = child(&b1, 62, app.propose(&b1, at(62)));
    app.commit(&b2);
    assert!(app.mempool().is_empty());
    assert_eq!(
        app.committed().orders_in(i1),
        2,
        "the earlier interval is not empty"
    );
    assert_eq!(app.committed().orders_in(i1 + 900), 1);
    assert_eq!(app.dropped().count(), 0);
}

/// A validator does not verify again the signature of an order it holds in its mempool (the
/// exact bytes were verified at admission), but an order that differs from the pending one in
/// any byte, its signature included, is verified and refused if forged.
#[test]
fn only_the_exact_pending_order_skips_signature_verification() {
    let g = Arc::new(genesis());
    let genesis_block = Block::genesis(g.genesis_time_ms(), b"testville".to_vec());
    let honest = order(1, "h1", "o", Side::Sell, 100, "0.10", 1);
    let mut forged = honest.clone();
    forged.signature[0] ^= 1;
    let mut validator = LedgerApp::new(Arc::clone(&g), &genesis_block);
    validator.submit(honest.clone(), at(30)).unwrap();
    assert!(validator.mempool().holds(&honest));
    assert!(!validator.mempool().holds(&forged));
    let body = |o: &SignedOrder| {
        BlockBody {
            orders: vec![o.clone()],
            clearings: Vec::new(),
            actions: Vec::new(),
            deliveries: Vec::new(),
            bills: Vec::new(),
            corrections: Vec::new(),
            state: None,
        }
        .encode()
    };
    let refused = validator
        .validate(&genesis_block, &body(&forged), at(60))
        .unwrap_err();
    assert!(refused.reason.contains("signature"), "{}", refused.reason);
    validator
        .validate(&genesis_block, &body(&honest), at(60))
        .unwrap();
}

/// Issue 12 (batch verification): a batch is answered order by order exactly as submitting the
/// orders one after the other is, bad signatures, unknown participants, duplicates inside the
/// batch and quota refusals included, and leaves the same mempool.
#[test]
fn a_batch_submission_answers_as_one_by_one_submissions() {
    let g = Arc::new(genesis());
    let genesis_block = Block::genesis(g.genesis_time_ms(), b"testville".to_vec());
    let mut batch = Vec::new();
    for n in 0..20u64 {
        batch.push(order(
            1,
            "h1",
            &format!("a{n}"),
            Side::Sell,
            100 + n,
            "0.10",
            n,
        ));
    }
    let mut forged = order(2, "h2", "f", Side::Buy, 500, "0.20", 1);
    forged.ticket.quantity_wh = 5_000;
    batch.insert(3, forged);
    batch.insert(7, order(7, "h7", "stranger", Side::Buy, 500, "0.20", 1));
    batch.insert(9, batch[0].clone()); // a duplicate inside the batch
    batch.insert(11, order(2, "h1", "wrong-key", Side::Buy, 500, "0.20", 1));
    batch.push(order(3, "h3", "late", Side::Buy, 500, "0.20", 1));
    let mut one_by_one = LedgerApp::new(Arc::clone(&g), &genesis_block);
    let mut batched = LedgerApp::new(Arc::clone(&g), &genesis_block);
    let expected: Vec<Result<(), OrderRejection>> = batch
        .iter()
        .map(|o| one_by_one.submit(o.clone(), at(60)))
        .collect();
    let got = batched.submit_batch(batch.clone(), at(60));
    assert_eq!(got, expected);
    let kinds: Vec<&str> = got
        .iter()
        .filter_map(|r| r.as_ref().err().map(OrderRejection::kind))
        .collect();
    // h1 may have 16 orders per interval: 4 of its 20 valid ones are over the quota.
    assert_eq!(
        kinds,
        [
            "bad_signature",
            "unknown_participant",
            "duplicate_id",
            "key_not_allowed",
            "participant_interval_full",
            "participant_interval_full",
            "participant_interval_full",
            "participant_interval_full",
        ]
    );
    assert_eq!(batched.mempool().len(), one_by_one.mempool().len());
    assert_eq!(batched.mempool().len(), 17);
}

/// Issue 12 (batch verification): the orders of a proposal that this node does not hold are
/// checked in one batch; one forged signature among them still gets the block refused, and the
/// block without it is accepted.
#[test]
fn a_forged_signature_among_unheld_orders_gets_the_block_refused() {
    let g = Arc::new(genesis());
    let genesis_block = Block::genesis(g.genesis_time_ms(), b"testville".to_vec());
    let mut orders: Vec<SignedOrder> = (0..12u64)
        .map(|n| order(2, "h2", &format!("b{n}"), Side::Buy, 100 + n, "0.20", n))
        .collect();
    let body = |orders: &[SignedOrder]| {
        BlockBody {
            orders: orders.to_vec(),
            clearings: Vec::new(),
            actions: Vec::new(),
            deliveries: Vec::new(),
            bills: Vec::new(),
            corrections: Vec::new(),
            state: None,
        }
        .encode()
    };
    let mut validator = LedgerApp::new(Arc::clone(&g), &genesis_block);
    let honest = body(&orders);
    orders[8].signature[10] ^= 1;
    let refused = validator
        .validate(&genesis_block, &body(&orders), at(60))
        .unwrap_err();
    assert!(
        refused.reason.contains("order 8") && refused.reason.contains("signature"),
        "{}",
        refused.reason
    );
    validator.validate(&genesis_block, &honest, at(60)).unwrap();
}

/// Issue 12 (snapshots): with `snapshot_interval_blocks = 2`, the blocks at heights 3, 5, …
/// carry the digest of the state after their parent; validators refuse a wrong, missing or
/// misplaced digest; a node that starts from the snapshot bytes (as state sync does) reaches
/// the same state and the same clearing as one that replayed every block.
#[test]
fn blocks_carry_checked_state_digests_and_snapshots_restore_the_same_ledger() {
    use voltmesh_consensus::ledger::snapshot::{carries_digest, digest};
    use voltmesh_consensus::ledger::LedgerState;
    use voltmesh_consensus::protocol::App;
    let mut g = genesis();
    g.snapshot_interval_blocks = 2;
    let g = Arc::new(g);
    let genesis_block = Block::genesis(g.genesis_time_ms(), b"testville".to_vec());
    let mut node = LedgerApp::new(Arc::clone(&g), &genesis_block);
    node.submit(order(1, "h1", "s1", Side::Sell, 600, "0.10", 1), at(10))
        .unwrap();
    node.submit(order(2, "h2", "b1", Side::Buy, 400, "0.30", 1), at(10))
        .unwrap();
    let mut chain = vec![genesis_block.clone()];
    let mut snapshots = Vec::new();
    for n in 1..=4 {
        let parent = chain.last().unwrap().clone();
        let payload = node.propose(&parent, at(20 + n));
        let body = BlockBody::decode(&payload).unwrap();
        assert_eq!(
            body.state.is_some(),
            carries_digest(&g, parent.height() + 1),
            "height {}",
            parent.height() + 1
        );
        let block = child(&parent, 20 + n, payload);
        node.commit(&block);
        for committed in node.take_committed() {
            if let Some(bytes) = committed.snapshot {
                snapshots.push((committed.height, bytes));
            }
        }
        chain.push(block);
    }
    assert_eq!(
        snapshots.iter().map(|(h, _)| *h).collect::<Vec<_>>(),
        [2, 4]
    );
    // Block 3 carries the digest of the state after block 2, which holds both orders.
    let (_, after_2) = &snapshots[0];
    let body_3 = BlockBody::decode(chain[3].payload()).unwrap();
    assert_eq!(body_3.state.as_deref(), Some(digest(after_2).as_str()));
    let text = String::from_utf8_lossy(after_2);
    assert!(text.contains("h1:s1") && text.contains("h2:b1"), "{text}");

    // A validator refuses a wrong digest, a missing one, and one where none belongs.
    let mut checker = LedgerApp::new(Arc::clone(&g), &genesis_block);
    for block in &chain[1..=2] {
        checker.commit(block);
    }
    let mut wrong = body_3.clone();
    wrong.state = Some(digest(b"another state"));
    let mut missing = body_3.clone();
    missing.state = None;
    for (body, what) in [(wrong, "wrong"), (missing, "missing")] {
        let err = checker
            .validate(&chain[2], &body.encode(), chain[3].timestamp_ms())
            .expect_err(what);
        assert!(err.reason.contains("state digest"), "{what}: {err}");
    }
    assert!(checker
        .validate(&chain[2], chain[3].payload(), chain[3].timestamp_ms())
        .is_ok());
    let mut misplaced = BlockBody::decode(chain[2].payload()).unwrap();
    misplaced.state = body_3.state;
    assert!(checker
        .validate(&chain[1], &misplaced.encode(), chain[2].timestamp_ms())
        .is_err());

    // Started from the snapshot after block 2, a node executes blocks 3 and 4 to the same
    // snapshot after block 4 as the node that replayed everything.
    let state = LedgerState::from_snapshot(&g, after_2).unwrap();
    assert_eq!(&state.snapshot_bytes(), after_2, "canonical round trip");
    let mut synced = LedgerApp::from_snapshot(Arc::clone(&g), &chain[2], state);
    for block in &chain[3..=4] {
        synced
            .validate(
                &chain[block.height() as usize - 1],
                block.payload(),
                block.timestamp_ms(),
            )
            .unwrap();
        synced.commit(block);
    }
    let from_snapshot: Vec<_> = synced.take_committed();
    assert_eq!(
        from_snapshot.last().unwrap().snapshot,
        Some(snapshots[1].1.clone())
    );
    // Non-canonical bytes are refused.
    let mut spaced = after_2.clone();
    spaced.insert(1, b' ');
    assert!(LedgerState::from_snapshot(&g, &spaced).is_err());
}
