//! No double vote after a restart: a replica that voted in a view, crashed and restarted from
//! its persisted state never signs a second vote in that view, not even for a conflicting
//! block its leader equivocates with. (The randomized runs in `sim_safety` also check, for
//! every vote sent, that no validator ever voted for two blocks in one view.)

mod sim;

use ed25519_dalek::SigningKey;
use sim::SimApp;
use voltmesh_consensus::protocol::{
    Block, Chain, Config, Input, Msg, Output, Persist, Proposal, Replica, SafetyState,
    ValidatorIndex, ValidatorSet,
};

const GENESIS_MS: u64 = 1_700_000_000_000;

struct Setup {
    chain: Chain,
    keys: Vec<SigningKey>,
}

fn setup() -> Setup {
    let keys: Vec<SigningKey> = (1..=4u8)
        .map(|i| SigningKey::from_bytes(&[i; 32]))
        .collect();
    let set = ValidatorSet::new(keys.iter().map(SigningKey::verifying_key)).expect("set");
    let mut keys = keys;
    keys.sort_by_key(|k| set.index_of(&k.verifying_key()));
    let chain = Chain::new(set, Block::genesis(GENESIS_MS, b"dv".to_vec()));
    Setup { chain, keys }
}

fn votes(outputs: &[Output]) -> usize {
    outputs
        .iter()
        .filter(|o| {
            matches!(
                o,
                Output::Broadcast(Msg::Vote(_)) | Output::Send(_, Msg::Vote(_))
            )
        })
        .count()
}

/// The leader of view 1 proposes; returns its proposal.
fn leader_proposal(s: &Setup, now: u64) -> (ValidatorIndex, Proposal) {
    for (i, key) in s.keys.iter().enumerate() {
        let mut r = Replica::new(
            s.chain.clone(),
            key.clone(),
            Config::default(),
            SimApp::default(),
        )
        .expect("replica");
        for out in r.handle(now, Input::Tick) {
            if let Output::Broadcast(Msg::Proposal(p)) = out {
                return (ValidatorIndex(i as u16), p);
            }
        }
    }
    panic!("nobody leads view 1");
}

/// A second, conflicting block for the same view, signed by the same leader.
fn equivocation(s: &Setup, leader: ValidatorIndex, original: &Proposal) -> Proposal {
    let b = &original.block;
    let mut payload = (1u64).to_be_bytes().to_vec();
    payload.extend_from_slice(&(b.timestamp_ms() + 1).to_be_bytes());
    payload.extend_from_slice(b"ok");
    let other = Block::new(
        b.height(),
        b.view(),
        leader,
        b.timestamp_ms() + 1,
        b.justify().clone(),
        payload,
    );
    assert_ne!(other.hash(), b.hash());
    Proposal::new(&s.chain, &s.keys[usize::from(leader.0)], other, None)
}

#[test]
fn restarted_replica_does_not_vote_twice_in_a_view() {
    let s = setup();
    let now = GENESIS_MS + 500;
    let (leader, proposal) = leader_proposal(&s, now);
    let voter = (usize::from(leader.0) + 1) % 4;
    let key = s.keys[voter].clone();

    let mut replica = Replica::new(
        s.chain.clone(),
        key.clone(),
        Config::default(),
        SimApp::default(),
    )
    .expect("r");
    let out = replica.handle(
        now,
        Input::Message {
            from: leader,
            msg: Msg::Proposal(proposal.clone()),
        },
    );
    assert_eq!(
        votes(&out),
        1,
        "the replica should vote for a valid proposal"
    );
    // What the driver persisted, in order, before the vote left.
    let mut safety = None;
    let mut blocks = Vec::new();
    for o in &out {
        match o {
            Output::Persist(Persist::Safety(st)) => safety = Some(st.clone()),
            Output::Persist(Persist::Block(b)) => blocks.push(Block::clone(b)),
            Output::Broadcast(Msg::Vote(_)) => break,
            _ => {}
        }
    }
    let safety = safety.expect("safety state persisted before the vote");
    drop(replica); // crash

    let other = equivocation(&s, leader, &proposal);
    let restored = |safety: SafetyState, blocks: Vec<Block>| {
        Replica::restore(
            s.chain.clone(),
            key.clone(),
            Config::default(),
            SimApp::default(),
            safety,
            blocks,
            s.chain.genesis().hash(),
        )
        .expect("restore")
    };
    let mut replica = restored(safety, blocks);
    let out = replica.handle(
        now + 10,
        Input::Message {
            from: leader,
            msg: Msg::Proposal(other.clone()),
        },
    );
    assert_eq!(votes(&out), 0, "voted twice in view 1 after a restart");
    let out = replica.handle(
        now + 20,
        Input::Message {
            from: leader,
            msg: Msg::Proposal(proposal),
        },
    );
    assert_eq!(
        votes(&out),
        0,
        "re-voted for the same block after a restart"
    );

    // Control: without the persisted state the same replica would have voted again.
    let mut amnesiac =
        Replica::new(s.chain.clone(), key, Config::default(), SimApp::default()).expect("r");
    let out = amnesiac.handle(
        now + 10,
        Input::Message {
            from: leader,
            msg: Msg::Proposal(other),
        },
    );
    assert_eq!(
        votes(&out),
        1,
        "control: a fresh replica votes for the other block"
    );
}

#[test]
fn replica_that_timed_out_does_not_vote_in_that_view() {
    let s = setup();
    // View 1's timer runs from genesis + block interval (500 ms) for 2 s; the leader proposes
    // late enough that its block time is still within the voter's clock drift.
    let now = GENESIS_MS + 2_600;
    let (leader, proposal) = leader_proposal(&s, now);
    let voter = (usize::from(leader.0) + 1) % 4;
    let mut replica = Replica::new(
        s.chain.clone(),
        s.keys[voter].clone(),
        Config::default(),
        SimApp::default(),
    )
    .expect("r");
    replica.handle(GENESIS_MS, Input::Tick);
    // Past the view timeout: the replica times out view 1 and broadcasts its timeout.
    let out = replica.handle(GENESIS_MS + 2_600, Input::Tick);
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Broadcast(Msg::Timeout(t)) if t.view == 1)));
    let out = replica.handle(
        GENESIS_MS + 2_650,
        Input::Message {
            from: leader,
            msg: Msg::Proposal(proposal),
        },
    );
    assert_eq!(votes(&out), 0, "voted in a view it had timed out of");
}
