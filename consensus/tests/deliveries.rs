//! Metered deliveries on the ledger (issue 14, deliverable 1): one signed delivery per
//! participant and interval, inside the window after the interval's end, from a key allowed for
//! the participant; every refusal has its own kind; blocks carry them, validators re-check them,
//! snapshots keep them, and a closed window forgets them.

mod ledger_support;

use ledger_support::{at, child, key, meters_genesis as genesis, t0, NB};
use std::sync::Arc;

use voltmesh_consensus::ledger::{BlockBody, BlockRejection, LedgerApp, LedgerState};
use voltmesh_consensus::protocol::{App, Block};
use voltmesh_consensus::wire::delivery::{DeliveryTicket, SignedDelivery};
use voltmesh_consensus::wire::governance::{Action, Proposal, SignedProposal};

/// `participant`'s delivery for the interval starting at `T0 + start_secs`, signed with `signer`.
fn delivery(signer: u8, participant: &str, start_secs: i64, import_wh: u64) -> SignedDelivery {
    DeliveryTicket {
        participant: participant.into(),
        interval_start: t0() + start_secs,
        import_wh,
        export_wh: 0,
        meters: vec![format!("meter-{participant}")],
    }
    .sign(NB, &key(signer))
}

#[test]
fn every_refusal_has_its_own_kind() {
    let g = genesis();
    let mut state = LedgerState::new(&g);
    let kind = |state: &LedgerState, d: &SignedDelivery, secs: i64| {
        state.admit_delivery(&g, d, at(secs)).map_err(|e| e.kind())
    };
    // The 10:00 interval ends at 10:15; its window closes at 11:15.
    let ok = delivery(1, "h1", 0, 400);
    assert_eq!(kind(&state, &ok, 900), Ok(()));
    assert_eq!(kind(&state, &ok, 899), Err("not_delivered"));
    assert_eq!(kind(&state, &ok, 900 + 3600), Ok(()));
    assert_eq!(kind(&state, &ok, 900 + 3601), Err("late"));
    assert_eq!(
        kind(&state, &delivery(1, "h1", 60, 400), 1000),
        Err("wrong_interval")
    );
    assert_eq!(
        kind(&state, &delivery(9, "h9", 0, 400), 1000),
        Err("unknown_participant")
    );
    assert_eq!(
        kind(&state, &delivery(2, "h1", 0, 400), 1000),
        Err("key_not_allowed")
    );
    // 50 kW over 15 minutes is 12.5 kWh.
    assert_eq!(kind(&state, &delivery(1, "h1", 0, 12_500), 1000), Ok(()));
    assert_eq!(
        kind(&state, &delivery(1, "h1", 0, 12_501), 1000),
        Err("absurd_energy")
    );
    let mut no_meter = delivery(1, "h1", 0, 400);
    no_meter.ticket.meters.clear();
    assert_eq!(kind(&state, &no_meter, 1000), Err("malformed_delivery"));
    let mut forged = ok.clone();
    forged.ticket.import_wh = 1;
    assert_eq!(kind(&state, &forged, 1000), Err("bad_signature"));
    state.insert_delivery(&g, &ok, at(1000)).unwrap();
    assert_eq!(kind(&state, &ok, 1001), Err("duplicate_delivery"));
    // A member removed from the 10:30 interval on delivers for 10:15, not for 10:30.
    let remove = Proposal {
        id: "remove-h2".into(),
        valid_until_ms: at(7200),
        action: Action::RemoveParticipant {
            participant: "h2".into(),
            from_interval: t0() + 1800,
        },
    };
    let refs = [&key(100), &key(101), &key(102)];
    state
        .apply_proposal(&g, &SignedProposal::signed(remove, NB, &refs), at(1000))
        .unwrap();
    assert_eq!(kind(&state, &delivery(2, "h2", 900, 10), 1800), Ok(()));
    assert_eq!(
        kind(&state, &delivery(2, "h2", 1800, 10), 2700),
        Err("participant_removed")
    );
}

#[test]
fn blocks_carry_deliveries_validators_recheck_them_and_a_closed_window_forgets_them() {
    let g = Arc::new(genesis());
    let genesis_block = Block::genesis(g.genesis_time_ms(), NB.as_bytes().to_vec());
    let mut leader = LedgerApp::new(Arc::clone(&g), &genesis_block);
    let mut follower = LedgerApp::new(Arc::clone(&g), &genesis_block);
    let answers = leader.submit_deliveries(
        vec![
            delivery(1, "h1", 0, 400),
            delivery(2, "h2", 0, 250),
            delivery(1, "h1", 0, 400),
            delivery(1, "h1", 900, 10),
        ],
        at(1000),
    );
    let kinds: Vec<_> = answers
        .iter()
        .map(|a| a.clone().map_err(|e| e.kind()))
        .collect();
    assert_eq!(
        kinds,
        [
            Ok(()),
            Ok(()),
            Err("duplicate_delivery"),
            Err("not_delivered")
        ]
    );
    assert_eq!(leader.delivery_pool().len(), 2);
    let b1 = child(
        &genesis_block,
        1000,
        leader.propose(&genesis_block, at(1000)),
    );
    let body = BlockBody::decode(b1.payload()).unwrap();
    assert_eq!(body.deliveries.len(), 2);
    follower
        .validate(&genesis_block, b1.payload(), at(1000))
        .unwrap();
    // A delivery altered after signing makes the block invalid.
    let mut forged = body;
    forged.deliveries[0].ticket.import_wh = 1;
    assert!(matches!(
        LedgerState::new(&g).execute(&g, &forged, at(1000)),
        Err(BlockRejection::Delivery { index: 0, .. })
    ));
    for app in [&mut leader, &mut follower] {
        app.certified(&b1);
        app.commit(&b1);
        let held: Vec<_> = app
            .committed()
            .deliveries()
            .map(|((start, p), m)| (*start - t0(), p.to_string(), m.import_wh))
            .collect();
        assert_eq!(held, [(0, "h1".to_owned(), 400), (0, "h2".to_owned(), 250)]);
    }
    assert!(
        leader.delivery_pool().is_empty(),
        "committed deliveries leave the pool"
    );
    // The snapshot keeps them.
    let bytes = leader.committed().snapshot_bytes();
    let restored = LedgerState::from_snapshot(&g, &bytes).unwrap();
    assert_eq!(restored.snapshot_bytes(), bytes);
    assert_eq!(restored.deliveries().count(), 2);
    // A block after the window closed (11:15) forgets them.
    let b2 = child(&b1, 4501, leader.propose(&b1, at(4501)));
    leader.certified(&b2);
    leader.commit(&b2);
    assert_eq!(leader.committed().deliveries().count(), 0);
}
