//! Governance on the ledger state: proposals collect approvals in blocks and take effect at the
//! threshold; members join, leave and rotate keys; rules change from an open interval on; every
//! refusal has its own kind; validators re-executing a proposer's bodies reach the same state,
//! and a snapshot carries the community; a validator change ends the epoch at its block.

mod ledger_support;

use ledger_support::{at, child, key, pk, t0, T0};
use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use voltmesh_consensus::ledger::{BlockBody, BlockRejection, LedgerApp, LedgerState};
use voltmesh_consensus::protocol::{App, Block};
use voltmesh_consensus::wire::governance::{
    Action, GovernanceRejection, Policy, Proposal, Rules, Scope, SignedProposal,
};
use voltmesh_consensus::wire::{
    Genesis, GenesisValidator, OrderRejection, OrderTicket, PublicKey, SignedOrder,
};
use voltmesh_engine::{
    AdmissionLimits, IntervalSpec, MarketConfig, MarketRules, Mechanism, Price, Side, Tariffs, K,
};

const NB: &str = "testville";

fn p(s: &str) -> Price {
    s.parse().unwrap()
}

/// The interval `n` intervals after the one of T0 (15 minutes each; the gate closes 5 minutes
/// before the start).
fn interval(n: i64) -> i64 {
    t0() + 900 * n
}

/// Four validators (keys 100..=103); h1 (key 1) and h2 (key 2) are members.
fn genesis() -> Genesis {
    Genesis {
        neighborhood: NB.into(),
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
        participants: BTreeMap::from([("h1".into(), vec![pk(1)]), ("h2".into(), vec![pk(2)])]),
        snapshot_interval_blocks: 0,
        governance: None,
        deliveries: Default::default(),
        billing_keys: Vec::new(),
    }
    .validate()
    .unwrap()
}

fn order(
    signer: u8,
    participant: &str,
    interval: i64,
    id: &str,
    side: Side,
    price: &str,
) -> SignedOrder {
    OrderTicket {
        participant: participant.into(),
        interval_start: interval,
        id: id.into(),
        side,
        quantity_wh: 100,
        limit_price: p(price),
        nonce: 0,
    }
    .sign(NB, &key(signer))
}

fn proposal(id: &str, action: Action) -> Proposal {
    Proposal {
        id: id.into(),
        valid_until_ms: at(3600),
        action,
    }
}

fn signed(proposal: &Proposal, signers: &[u8]) -> SignedProposal {
    let keys: Vec<SigningKey> = signers.iter().map(|&n| key(n)).collect();
    let refs: Vec<&SigningKey> = keys.iter().collect();
    SignedProposal::signed(proposal.clone(), NB, &refs)
}

fn add_h7() -> Proposal {
    proposal(
        "add-h7",
        Action::AddParticipant {
            participant: "h7".into(),
            keys: vec![pk(7)],
        },
    )
}

#[test]
fn a_member_joins_when_the_quorum_of_approvals_is_committed() {
    let g = genesis();
    let mut state = LedgerState::new(&g);
    let h7 = order(7, "h7", interval(1), "a", Side::Buy, "0.20");
    assert!(matches!(
        state.admit(&g, &h7, at(60)),
        Err(OrderRejection::UnknownParticipant(_))
    ));
    // Two of the three approvals the default policy (2f + 1 of 4 validators) needs: nothing.
    state
        .apply_proposal(&g, &signed(&add_h7(), &[100, 101]), at(60))
        .unwrap();
    assert!(state.admit(&g, &h7, at(60)).is_err(), "below the threshold");
    let pending = state.community().pending();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending.values().next().unwrap().approvals.len(), 2);
    // The same approvals again bring nothing.
    assert!(matches!(
        state.apply_proposal(&g, &signed(&add_h7(), &[101]), at(61)),
        Err(GovernanceRejection::DuplicateApproval(_))
    ));
    // The third approval, from another organisation's machine: h7 may trade.
    state
        .apply_proposal(&g, &signed(&add_h7(), &[103]), at(62))
        .unwrap();
    assert!(state.community().pending().is_empty());
    assert_eq!(state.community().actions_applied(), 1);
    state.insert(&g, &h7, at(63)).unwrap();
    // A replay of the whole proposal is refused as such, and as expired after its deadline.
    let all = signed(&add_h7(), &[100, 101, 103]);
    assert!(matches!(
        state.apply_proposal(&g, &all, at(64)),
        Err(GovernanceRejection::Replayed(_))
    ));
    assert_eq!(
        state.apply_proposal(&g, &all, at(3601)).unwrap_err().kind(),
        "expired"
    );
}

#[test]
fn every_refusal_has_its_own_kind() {
    let g = genesis();
    let state = LedgerState::new(&g);
    let kind = |signed: &SignedProposal, secs: i64| {
        state
            .check_proposal(&g, signed, at(secs))
            .map(|_| ())
            .map_err(|e| e.kind())
    };
    // A household key may not approve member changes.
    assert_eq!(kind(&signed(&add_h7(), &[1]), 60), Err("unauthorised"));
    let mut forged = signed(&add_h7(), &[100]);
    forged.approvals[0].signature[3] ^= 1;
    assert_eq!(kind(&forged, 60), Err("bad_signature"));
    let mut long = add_h7();
    long.valid_until_ms = at(60) + 31 * 24 * 3600 * 1000;
    assert_eq!(kind(&signed(&long, &[100]), 60), Err("lifetime_too_long"));
    assert_eq!(kind(&signed(&add_h7(), &[100]), 3601), Err("expired"));
    let mut unsorted = signed(&add_h7(), &[100, 101]);
    unsorted.approvals.reverse();
    assert_eq!(kind(&unsorted, 60), Err("malformed_proposal"));
    let existing = proposal(
        "again",
        Action::AddParticipant {
            participant: "h1".into(),
            keys: vec![pk(11)],
        },
    );
    assert_eq!(kind(&signed(&existing, &[100]), 60), Err("already_member"));
    let stranger = proposal(
        "who",
        Action::AddKey {
            participant: "h9".into(),
            key: pk(19),
        },
    );
    assert_eq!(
        kind(&signed(&stranger, &[100]), 60),
        Err("unknown_participant")
    );
    let last = proposal(
        "last",
        Action::RevokeKey {
            participant: "h1".into(),
            key: pk(1),
        },
    );
    assert_eq!(kind(&signed(&last, &[100]), 60), Err("bad_key"));
    // The 10:15 interval's gate closed at 10:10: a change from it on is retroactive at 10:11.
    let rules = Rules::of(&g.market);
    let late = proposal(
        "late",
        Action::ChangeRules {
            from_interval: interval(1),
            rules,
        },
    );
    assert_eq!(kind(&signed(&late, &[100]), 660), Err("retroactive"));
    let off_grid = proposal(
        "off-grid",
        Action::ChangeRules {
            from_interval: interval(2) + 1,
            rules,
        },
    );
    assert_eq!(kind(&signed(&off_grid, &[100]), 60), Err("retroactive"));
    let mut absurd = rules;
    absurd.rules.tariffs.feed_in = p("0.50");
    let absurd = proposal(
        "absurd",
        Action::ChangeRules {
            from_interval: interval(2),
            rules: absurd,
        },
    );
    assert_eq!(kind(&signed(&absurd, &[100]), 60), Err("bad_rules"));
    let empty_policy = proposal(
        "nobody",
        Action::SetPolicy {
            scope: Scope::Members,
            policy: Policy {
                keys: vec![pk(100)],
                threshold: 2,
            },
        },
    );
    assert_eq!(kind(&signed(&empty_policy, &[100]), 60), Err("bad_policy"));
}

/// Applies `proposal` with the quorum of validator keys at `secs`.
fn enact(g: &Genesis, state: &mut LedgerState, proposal: &Proposal, secs: i64) {
    state
        .apply_proposal(g, &signed(proposal, &[100, 101, 102]), at(secs))
        .unwrap();
}

#[test]
fn a_removed_member_is_refused_from_its_interval_on_and_its_booked_orders_there_expire() {
    let g = genesis();
    let mut state = LedgerState::new(&g);
    // h1 has orders for the next interval and the one after.
    state
        .insert(
            &g,
            &order(1, "h1", interval(1), "a", Side::Sell, "0.10"),
            at(60),
        )
        .unwrap();
    state
        .insert(
            &g,
            &order(1, "h1", interval(2), "b", Side::Sell, "0.10"),
            at(60),
        )
        .unwrap();
    state
        .insert(
            &g,
            &order(2, "h2", interval(2), "c", Side::Buy, "0.30"),
            at(60),
        )
        .unwrap();
    let remove = proposal(
        "remove-h1",
        Action::RemoveParticipant {
            participant: "h1".into(),
            from_interval: interval(2),
        },
    );
    enact(&g, &mut state, &remove, 120);
    assert_eq!(state.orders_in(interval(1)), 1, "before its interval: kept");
    assert_eq!(
        state.orders_in(interval(2)),
        1,
        "h1's order expired, h2's stays"
    );
    assert_eq!(state.participant_orders_in(&"h1".into(), interval(2)), 0);
    assert!(state
        .admit(
            &g,
            &order(1, "h1", interval(1), "d", Side::Sell, "0.10"),
            at(130)
        )
        .is_ok());
    assert_eq!(
        state
            .admit(
                &g,
                &order(1, "h1", interval(2), "e", Side::Sell, "0.10"),
                at(130)
            )
            .unwrap_err()
            .kind(),
        "participant_removed"
    );
    // It stays on the member list, removed; it cannot be removed twice.
    assert_eq!(
        state.community().members()[&"h1".into()].removed_from,
        Some(interval(2))
    );
    let again = proposal(
        "remove-h1-again",
        Action::RemoveParticipant {
            participant: "h1".into(),
            from_interval: interval(3),
        },
    );
    assert_eq!(
        state
            .check_proposal(&g, &signed(&again, &[100]), at(130))
            .unwrap_err()
            .kind(),
        "participant_removed"
    );
}

#[test]
fn a_rotated_key_signs_and_the_revoked_one_is_refused() {
    let g = genesis();
    let mut state = LedgerState::new(&g);
    let add = proposal(
        "h1-new-phone",
        Action::AddKey {
            participant: "h1".into(),
            key: pk(11),
        },
    );
    let revoke = proposal(
        "h1-lost-phone",
        Action::RevokeKey {
            participant: "h1".into(),
            key: pk(1),
        },
    );
    enact(&g, &mut state, &add, 60);
    enact(&g, &mut state, &revoke, 61);
    assert!(state
        .admit(
            &g,
            &order(11, "h1", interval(1), "new", Side::Sell, "0.10"),
            at(62)
        )
        .is_ok());
    assert!(matches!(
        state.admit(
            &g,
            &order(1, "h1", interval(1), "old", Side::Sell, "0.10"),
            at(62)
        ),
        Err(OrderRejection::KeyNotAllowed { .. })
    ));
}

#[test]
fn new_rules_apply_exactly_from_their_interval() {
    let g = genesis();
    let mut state = LedgerState::new(&g);
    // Booked before the change: a sell at 0.09 for interval 2 (below the coming feed-in 0.10).
    state
        .insert(
            &g,
            &order(1, "h1", interval(2), "cheap", Side::Sell, "0.09"),
            at(60),
        )
        .unwrap();
    state
        .insert(
            &g,
            &order(1, "h1", interval(1), "cheap", Side::Sell, "0.09"),
            at(60),
        )
        .unwrap();
    let mut rules = Rules::of(&g.market);
    rules.rules.tariffs = Tariffs::new(p("0.10"), p("0.30")).unwrap();
    rules.mechanism = Mechanism::Uniform {
        k: K::from_ppm(0).unwrap(),
    };
    let change = proposal(
        "tariffs-2027",
        Action::ChangeRules {
            from_interval: interval(2),
            rules,
        },
    );
    enact(&g, &mut state, &change, 120);
    assert_eq!(
        state
            .community()
            .rules_for(interval(1))
            .rules
            .tariffs
            .feed_in,
        p("0.08")
    );
    assert_eq!(
        state
            .community()
            .rules_for(interval(2))
            .rules
            .tariffs
            .feed_in,
        p("0.10")
    );
    assert_eq!(
        state
            .community()
            .rules_for(interval(9))
            .rules
            .tariffs
            .feed_in,
        p("0.10")
    );
    assert_eq!(
        state.orders_in(interval(1)),
        1,
        "the old rules still hold there"
    );
    assert_eq!(
        state.orders_in(interval(2)),
        0,
        "refused by the new rules: expired"
    );
    assert_eq!(
        state
            .admit(
                &g,
                &order(1, "h1", interval(2), "x", Side::Sell, "0.09"),
                at(130)
            )
            .unwrap_err()
            .kind(),
        "price_outside_tariffs"
    );
    assert!(state
        .admit(
            &g,
            &order(1, "h1", interval(1), "y", Side::Sell, "0.09"),
            at(130)
        )
        .is_ok());
    // The clearing of interval 2 uses the new mechanism: k = 0 prices at the ask.
    state
        .insert(
            &g,
            &order(1, "h1", interval(2), "s", Side::Sell, "0.12"),
            at(130),
        )
        .unwrap();
    state
        .insert(
            &g,
            &order(2, "h2", interval(2), "b", Side::Buy, "0.28"),
            at(130),
        )
        .unwrap();
    let body = state.build(&g, &[], [].iter(), at(1200), 10);
    assert_eq!(body.clearings.len(), 1, "interval 1 clears at 10:25");
    let body = state.build(&g, &[], [].iter(), at(2100), 10);
    assert_eq!(body.clearings[0].interval_start, interval(2));
    assert_eq!(body.clearings[0].clearing_price, Some(p("0.12")));
}

#[test]
fn validators_re_execute_proposals_and_snapshots_carry_the_community() {
    let g = genesis();
    let mut proposer = LedgerState::new(&g);
    let mut validator = LedgerState::new(&g);
    // Block 1: two approvals of h7's admission and one of a rule change; block 2: the third
    // approval, in the same block as h7's first order.
    let mut rules = Rules::of(&g.market);
    rules.network_fee = p("0.02");
    let change = proposal(
        "fee",
        Action::ChangeRules {
            from_interval: interval(3),
            rules,
        },
    );
    let first = proposer.build(
        &g,
        &[signed(&add_h7(), &[100, 101]), signed(&change, &[102])],
        [].iter(),
        at(60),
        10,
    );
    assert_eq!(first.actions.len(), 2);
    let bytes = first.encode();
    assert!(!BlockBody::is_empty_payload(&bytes));
    validator
        .execute(&g, &BlockBody::decode(&bytes).unwrap(), at(60))
        .unwrap();
    let h7 = order(7, "h7", interval(1), "a", Side::Buy, "0.20");
    let second = proposer.build(&g, &[signed(&add_h7(), &[102])], [h7].iter(), at(61), 10);
    assert_eq!((second.actions.len(), second.orders.len()), (1, 1));
    validator.execute(&g, &second, at(61)).unwrap();
    assert_eq!(proposer.snapshot_bytes(), validator.snapshot_bytes());
    // A body carrying an approval the ledger has is refused, naming it.
    let mut bad = LedgerState::clone(&validator);
    let replay = BlockBody {
        actions: vec![signed(&add_h7(), &[100])],
        ..BlockBody::default()
    };
    assert!(matches!(
        bad.execute(&g, &replay, at(62)),
        Err(BlockRejection::Proposal { index: 0, .. })
    ));
    // The snapshot holds members, schedule and the pending rule change; it decodes to a state
    // that encodes the same and behaves the same.
    let snapshot = validator.snapshot_bytes();
    let restored = LedgerState::from_snapshot(&g, &snapshot).unwrap();
    assert_eq!(restored.snapshot_bytes(), snapshot);
    assert!(restored.community().members().contains_key(&"h7".into()));
    assert_eq!(restored.community().pending().len(), 1);
    assert_eq!(restored.community(), validator.community());
    // A state governance never touched snapshots as before (no community field).
    let fresh = LedgerState::new(&g).snapshot_bytes();
    assert!(!String::from_utf8(fresh).unwrap().contains("community"));
    // The pending change expires with its deadline.
    let later = proposer.build(&g, &[], [].iter(), at(3601), 10);
    validator.execute(&g, &later, at(3601)).unwrap();
    assert!(validator.community().pending().is_empty());
}

#[test]
fn a_named_supplier_publishes_per_interval_tariffs_before_their_gates() {
    use voltmesh_consensus::wire::governance::Policies;
    // Without a prices policy nobody may publish tariffs, not even the validators.
    let plain = genesis();
    let mut prices = BTreeMap::new();
    prices.insert(interval(2), Tariffs::new(p("0.12"), p("0.25")).unwrap());
    let publish = proposal("day-ahead", Action::SetPrices { prices });
    assert_eq!(
        LedgerState::new(&plain)
            .check_proposal(&plain, &signed(&publish, &[100]), at(60))
            .unwrap_err()
            .kind(),
        "unauthorised"
    );
    // The community names the supplier's key 50 (one signature suffices).
    let mut g = genesis();
    let quorum = g.policies().members;
    g.governance = Some(Policies {
        members: quorum.clone(),
        rules: quorum,
        prices: Some(Policy {
            keys: vec![pk(50)],
            threshold: 1,
        }),
    });
    let g = g.validate().unwrap();
    let mut state = LedgerState::new(&g);
    state
        .insert(
            &g,
            &order(1, "h1", interval(2), "low", Side::Sell, "0.10"),
            at(60),
        )
        .unwrap();
    state
        .apply_proposal(&g, &signed(&publish, &[50]), at(120))
        .unwrap();
    assert_eq!(
        state.orders_in(interval(2)),
        0,
        "below the published feed-in: expired"
    );
    for (n, ok) in [(1, true), (2, false), (3, true)] {
        let result = state.admit(
            &g,
            &order(1, "h1", interval(n), &format!("s{n}"), Side::Sell, "0.10"),
            at(130),
        );
        assert_eq!(result.is_ok(), ok, "interval {n}: {result:?}");
    }
    assert_eq!(
        state
            .community()
            .rules_for(interval(2))
            .rules
            .tariffs
            .retail,
        p("0.25")
    );
    // A publication after the interval's gate is refused.
    let mut late_prices = BTreeMap::new();
    late_prices.insert(interval(1), Tariffs::new(p("0.12"), p("0.25")).unwrap());
    let late = proposal(
        "too-late",
        Action::SetPrices {
            prices: late_prices,
        },
    );
    assert_eq!(
        state
            .check_proposal(&g, &signed(&late, &[50]), at(660))
            .unwrap_err()
            .kind(),
        "retroactive"
    );
    // Interval 2's tariffs outlive its clearing (its bills need them) and are forgotten once its
    // delivery window (an hour after its end) has closed: memory stays flat.
    state.build(&g, &[], [].iter(), at(1200), 10);
    assert_eq!(state.community().prices().len(), 1);
    state.build(&g, &[], [].iter(), at(2700 + 3600), 10);
    assert_eq!(state.community().prices().len(), 1);
    state.build(&g, &[], [].iter(), at(2700 + 3600 + 1), 10);
    assert!(state.community().prices().is_empty());
}

/// The genesis set with validator 103 replaced by 104.
fn replace_103() -> Proposal {
    let mut validators = genesis().validators;
    validators.retain(|v| v.public_key != pk(103));
    validators.push(GenesisValidator {
        public_key: pk(104),
        address: "/ip4/127.0.0.1/tcp/104".into(),
    });
    proposal("replace-103", Action::SetValidators { validators })
}

#[test]
fn a_validator_set_is_refused_with_its_own_kinds() {
    let g = genesis();
    let state = LedgerState::new(&g);
    let kind = |validators: Vec<GenesisValidator>| {
        let p = proposal("set", Action::SetValidators { validators });
        state
            .check_proposal(&g, &signed(&p, &[100]), at(60))
            .map(|_| ())
            .map_err(|e| e.kind())
    };
    let v = |n: u8, address: &str| GenesisValidator {
        public_key: pk(n),
        address: address.into(),
    };
    assert_eq!(kind(vec![]), Err("bad_validators"));
    assert_eq!(
        kind(vec![
            v(104, "/ip4/127.0.0.1/tcp/1"),
            v(104, "/ip4/127.0.0.1/tcp/2")
        ]),
        Err("bad_validators")
    );
    assert_eq!(kind(vec![v(104, "127.0.0.1:7100")]), Err("bad_validators"));
    assert_eq!(
        kind(vec![v(104, "/ip4/127.0.0.1/tcp/1 ")]),
        Err("bad_validators")
    );
    let weak = GenesisValidator {
        public_key: PublicKey([0; 32]),
        address: "/ip4/127.0.0.1/tcp/1".into(),
    };
    assert_eq!(kind(vec![weak]), Err("bad_key"));
    assert_eq!(
        kind(g.validators.clone()),
        Err("bad_validators"),
        "the set in force"
    );
    assert_eq!(
        kind(vec![v(104, "/dns4/validator.example/tcp/7100")]),
        Ok(())
    );
    // Rules scope: a household key may not approve it.
    assert_eq!(
        state
            .check_proposal(&g, &signed(&replace_103(), &[1]), at(60))
            .unwrap_err()
            .kind(),
        "unauthorised"
    );
}

#[test]
fn a_validator_change_takes_effect_at_the_quorum_and_ends_its_blocks_actions() {
    let g = genesis();
    let mut state = LedgerState::new(&g);
    // Two of four approvals collect; the epoch stays.
    state
        .apply_proposal(&g, &signed(&replace_103(), &[100, 101]), at(60))
        .unwrap();
    assert_eq!(state.community().epoch().number, 0);
    // The third, in a block (height 1) with another action after it: the block's actions end
    // with the change.
    let third = signed(&replace_103(), &[102]);
    let add = signed(&add_h7(), &[100, 101, 102]);
    let mut proposer = state.clone();
    let body = proposer.build(&g, &[third.clone(), add.clone()], [].iter(), at(61), 10);
    assert_eq!(body.actions, vec![third]);
    let epoch = proposer.community().epoch();
    assert_eq!((epoch.number, epoch.root_height), (1, 1));
    assert_eq!(epoch.validators, replace_103_set());
    assert_eq!(proposer.community().epochs().len(), 2);
    let mut both = body.clone();
    both.actions.push(add);
    let err = state.clone().execute(&g, &both, at(61)).unwrap_err();
    match err {
        BlockRejection::Proposal { index: 1, reason } => {
            assert_eq!(reason.kind(), "bad_validators");
        }
        other => panic!("expected the second action refused, got {other}"),
    }
    // A validator re-executing the proposer's body reaches the same state; a snapshot carries
    // the epochs.
    state.execute(&g, &body, at(61)).unwrap();
    assert_eq!(state.snapshot_bytes(), proposer.snapshot_bytes());
    let restored = LedgerState::from_snapshot(&g, &state.snapshot_bytes()).unwrap();
    assert_eq!(restored.community().epochs(), state.community().epochs());
    // The same set again is refused: it is the one in force.
    let again = proposal(
        "again",
        Action::SetValidators {
            validators: replace_103_set(),
        },
    );
    assert_eq!(
        state
            .check_proposal(&g, &signed(&again, &[100]), at(62))
            .unwrap_err()
            .kind(),
        "bad_validators"
    );
}

fn replace_103_set() -> Vec<GenesisValidator> {
    match replace_103().action {
        Action::SetValidators { validators } => validators,
        _ => unreachable!(),
    }
}

/// The suffix rule (`consensus/README.md`, "Validator set changes"): blocks above the block
/// whose validator change took effect are empty and never applied; once it commits, the app
/// says the epoch ended, and after `enter_epoch` it builds on that block again.
#[test]
fn blocks_above_the_epochs_last_block_are_empty_and_never_applied() {
    let g = Arc::new(genesis());
    let genesis_block = Block::genesis(g.genesis_time_ms(), NB.as_bytes().to_vec());
    let mut leader = LedgerApp::new(Arc::clone(&g), &genesis_block);
    let mut follower = LedgerApp::new(Arc::clone(&g), &genesis_block);
    leader
        .submit_proposal(signed(&replace_103(), &[100, 101, 102]), at(30))
        .unwrap();
    let early = order(1, "h1", interval(1), "a", Side::Sell, "0.10");
    leader.submit(early, at(30)).unwrap();
    let b1 = child(&genesis_block, 60, leader.propose(&genesis_block, at(60)));
    let body = BlockBody::decode(b1.payload()).unwrap();
    assert_eq!((body.actions.len(), body.orders.len()), (1, 1));
    follower
        .validate(&genesis_block, b1.payload(), at(60))
        .unwrap();
    follower.certified(&b1);
    leader.certified(&b1);

    // Above b1 in epoch 0: empty payloads only, whatever the leader holds.
    let late = order(2, "h2", interval(1), "b", Side::Buy, "0.30");
    leader.submit(late.clone(), at(61)).unwrap();
    let p2 = leader.propose(&b1, at(62));
    assert!(
        p2.is_empty(),
        "a block above the epoch's last block is empty"
    );
    follower.validate(&b1, &p2, at(62)).unwrap();
    let stuffed = BlockBody {
        orders: vec![late.clone()],
        ..BlockBody::default()
    };
    let refused = follower
        .validate(&b1, &stuffed.encode(), at(62))
        .unwrap_err();
    assert!(refused.reason.contains("must be empty"), "{refused}");
    assert!(
        follower
            .validate(&b1, &BlockBody::default().encode(), at(62))
            .is_err(),
        "even an empty body's bytes: the payload is no bytes at all"
    );
    let b2 = child(&b1, 62, p2);
    let b3 = child(&b2, 63, leader.propose(&b2, at(63)));
    assert!(b3.payload().is_empty());
    for app in [&mut leader, &mut follower] {
        assert_eq!(app.epoch_ended(), None);
        app.certified(&b2);
        app.certified(&b3);
        app.commit(&b1);
        app.commit(&b2);
        app.commit(&b3);
        let committed: Vec<u64> = app.take_committed().iter().map(|b| b.height).collect();
        assert_eq!(committed, vec![1], "only the epoch's last block is applied");
        assert_eq!(app.committed().height(), 1);
        let next = app.epoch_ended().expect("epoch 0 ended at b1").clone();
        assert_eq!((next.number, next.root_height), (1, 1));
        assert_eq!(next.validators, replace_103_set());
        app.enter_epoch();
        assert_eq!((app.epoch(), app.epoch_ended()), (1, None));
    }
    // Epoch 1 extends b1: the order that waited goes in its first block.
    let first = child(&b1, 64, leader.propose(&b1, at(64)));
    let body = BlockBody::decode(first.payload()).unwrap();
    assert_eq!(body.orders, vec![late]);
    follower.validate(&b1, first.payload(), at(64)).unwrap();
    // A node restarting from the state after b1 starts in epoch 1.
    let restarted = LedgerApp::from_snapshot(
        Arc::clone(&g),
        &b1,
        LedgerState::from_snapshot(&g, &leader.committed().snapshot_bytes()).unwrap(),
    );
    assert_eq!((restarted.epoch(), restarted.epoch_ended()), (1, None));
}
