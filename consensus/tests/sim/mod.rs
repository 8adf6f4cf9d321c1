//! Deterministic network simulation for the consensus core.
//!
//! One `u64` seed drives everything: keys, message loss, delay, duplication, reordering and
//! clock skew. Time is virtual (ms); nothing sleeps. Messages go through the real wire encoding.
//! Every commit and every vote is checked on the fly:
//! - safety: no two replicas commit different blocks at one height; each replica commits
//!   heights in order without gaps;
//! - no validator sends two different votes for one view (across restarts).
//!
//! Seeds: `VOLTMESH_SEED=<n>` runs exactly that seed; `VOLTMESH_SEEDS=<count>` runs that many
//! (default: a few per test). A failing run panics with its seed.

#![allow(dead_code, unreachable_pub)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use voltmesh_consensus::protocol::{
    App, Block, BlockHash, Chain, Config, Input, Msg, Output, Persist, Proposal, Reject, Replica,
    SafetyState, TestFault, ValidatorIndex, ValidatorSet, Vote, MAX_MESSAGE_BYTES,
};

/// Seeds to run: `VOLTMESH_SEED` alone, or `VOLTMESH_SEEDS` (default `default`) derived ones.
pub fn seeds(default: u64) -> Vec<u64> {
    if let Some(seed) = std::env::var("VOLTMESH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return vec![seed];
    }
    let count = std::env::var("VOLTMESH_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    (0..count).map(|i| 0x5EED_0000 + i).collect()
}

/// Runs `f` for every seed, reporting the seed of a failure.
pub fn for_each_seed(default: u64, f: impl Fn(u64) + std::panic::RefUnwindSafe) {
    for seed in seeds(default) {
        let result = std::panic::catch_unwind(|| f(seed));
        if result.is_err() {
            panic!("simulation failed; reproduce with VOLTMESH_SEED={seed}");
        }
    }
}

/// The safety oracle: records `block` as committed at its height, or panics if another block
/// was committed there by anyone.
pub fn check_commit(committed: &mut BTreeMap<u64, BlockHash>, block: &Block, seed: u64) {
    let expected = *committed.entry(block.height()).or_insert(block.hash());
    assert_eq!(
        expected,
        block.hash(),
        "seed {seed}: SAFETY VIOLATION at height {}",
        block.height()
    );
}

/// The network's fate for one message: no delivery (lost with probability `loss`), or one
/// delay per copy (a second copy with probability `duplicate`), each in `delay_ms`.
pub fn delivery_delays(
    rng: &mut ChaCha8Rng,
    loss: f64,
    duplicate: f64,
    delay_ms: (u64, u64),
) -> Vec<u64> {
    if loss > 0.0 && rng.gen_bool(loss) {
        return Vec::new();
    }
    let copies = if duplicate > 0.0 && rng.gen_bool(duplicate) {
        2
    } else {
        1
    };
    (0..copies)
        .map(|_| rng.gen_range(delay_ms.0..=delay_ms.1))
        .collect()
}

/// The test application: payload = next height ‖ block time ‖ "ok" ‖ `pad` zero bytes.
#[derive(Debug, Default)]
pub struct SimApp {
    pub committed: u64,
    pub pad: usize,
    /// Stateful mode (audit H3): `validate` needs the state after the parent, which the app
    /// holds only for its committed tip and for blocks `certified` reported (parents first).
    /// A restart keeps only the committed tip's, like the ledger.
    pub stateful: bool,
    /// Blocks whose state this app holds (stateful mode).
    pub known: BTreeSet<BlockHash>,
    /// `certified` calls for a block whose parent's state was unknown (must stay 0).
    pub out_of_order: u64,
    /// Idle-pacing mode: when work appears (ms of simulation time, as every node's mempool
    /// would see it at once). A block carries work (`"wk"`) if work appeared since its parent;
    /// work is pending until a block at or after it commits. `None`: always work (the
    /// trait's default).
    pub work: Option<std::sync::Arc<Vec<u64>>>,
    /// Time of the last committed block.
    pub committed_ms: u64,
}

pub fn payload_valid(parent_height: u64, payload: &[u8], block_time_ms: u64) -> bool {
    payload.len() >= 18
        && payload[..8] == (parent_height + 1).to_be_bytes()
        && payload[8..16] == block_time_ms.to_be_bytes()
        && (&payload[16..18] == b"ok" || &payload[16..18] == b"wk")
        && payload[18..].iter().all(|b| *b == 0)
}

impl App for SimApp {
    fn propose(&mut self, parent: &Block, block_time_ms: u64) -> Vec<u8> {
        let mut p = (parent.height() + 1).to_be_bytes().to_vec();
        p.extend_from_slice(&block_time_ms.to_be_bytes());
        let carries = self.work.as_ref().is_some_and(|work| {
            work.iter()
                .any(|w| *w > parent.timestamp_ms() && *w <= block_time_ms)
        });
        p.extend_from_slice(if carries { b"wk" } else { b"ok" });
        p.resize(18 + self.pad, 0);
        p
    }

    fn validate(
        &mut self,
        parent: &Block,
        payload: &[u8],
        block_time_ms: u64,
    ) -> Result<(), Reject> {
        if self.stateful && !self.known.contains(&parent.hash()) {
            return Err(Reject::new("state after the parent block unknown"));
        }
        if payload_valid(parent.height(), payload, block_time_ms) {
            Ok(())
        } else {
            Err(Reject::new("payload does not re-execute to the same bytes"))
        }
    }

    fn certified(&mut self, block: &Block) {
        if !self.stateful {
            return;
        }
        if self.known.contains(&block.parent()) {
            self.known.insert(block.hash());
        } else {
            self.out_of_order += 1;
        }
    }

    fn has_work(&self, now_ms: u64) -> bool {
        self.work
            .as_ref()
            .is_none_or(|work| work.iter().any(|w| *w > self.committed_ms && *w <= now_ms))
    }

    fn work_due_at(&self) -> Option<u64> {
        let work = self.work.as_ref()?;
        work.iter().copied().find(|w| *w > self.committed_ms)
    }

    fn is_empty(&self, payload: &[u8]) -> bool {
        self.work.is_some() && payload.get(16..18) == Some(b"ok".as_slice())
    }

    fn commit(&mut self, block: &Block) {
        self.committed = block.height();
        self.committed_ms = block.timestamp_ms();
        if self.stateful {
            self.known.insert(block.hash());
        }
    }

    fn propose_invalid(&mut self, _parent: &Block, _block_time_ms: u64) -> Vec<u8> {
        b"wrong clearing result".to_vec()
    }
}

/// Network and replica settings of a simulation.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub validators: usize,
    /// Probability that a message is lost.
    pub loss: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    pub min_delay_ms: u64,
    pub max_delay_ms: u64,
    /// Each node's clock is off by up to this much (either way).
    pub max_clock_skew_ms: u64,
    /// Extra payload bytes per block.
    pub payload_pad: usize,
    /// A validator that equivocates: two conflicting proposals per turn, votes for both.
    pub equivocator: Option<usize>,
    pub replica: Config,
    /// Every node runs [`SimApp`]'s stateful mode.
    pub stateful_app: bool,
    /// [`SimApp::work`] for every node (idle pacing).
    pub work: Option<std::sync::Arc<Vec<u64>>>,
}

impl SimConfig {
    pub fn new(validators: usize) -> Self {
        Self {
            validators,
            loss: 0.0,
            duplicate: 0.0,
            min_delay_ms: 2,
            max_delay_ms: 40,
            max_clock_skew_ms: 0,
            payload_pad: 0,
            equivocator: None,
            replica: Config::default(),
            stateful_app: false,
            work: None,
        }
    }

    pub fn lossy(mut self) -> Self {
        self.loss = 0.05;
        self.duplicate = 0.02;
        self.min_delay_ms = 1;
        self.max_delay_ms = 150;
        self.max_clock_skew_ms = 200;
        self
    }
}

/// What a node keeps on disk.
#[derive(Debug, Default, Clone)]
pub struct Store {
    pub safety: Option<SafetyState>,
    pub blocks: BTreeMap<BlockHash, Block>,
    /// Committed blocks, heights 1.. in order.
    pub committed: Vec<Arc<Block>>,
    /// `(virtual time, height)` of each commit.
    pub commit_times: Vec<(u64, u64)>,
}

pub struct Node {
    pub replica: Option<Replica<SimApp>>,
    pub store: Store,
    pub key: SigningKey,
    pub index: ValidatorIndex,
    pub skew: i64,
    tick_at: Option<u64>,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Deliver {
        from: usize,
        to: usize,
        bytes: Vec<u8>,
    },
    Tick {
        node: usize,
        at: u64,
    },
}

/// The simulated network of replicas.
pub struct Sim {
    pub seed: u64,
    pub config: SimConfig,
    pub chain: Chain,
    pub nodes: Vec<Node>,
    pub now: u64,
    rng: ChaCha8Rng,
    queue: BinaryHeap<Reverse<(u64, u64, Event)>>,
    seq: u64,
    /// Group of each node while partitioned.
    partition: Option<Vec<u8>>,
    /// Oracle: the block committed at each height by anyone.
    pub committed: BTreeMap<u64, BlockHash>,
    /// Oracle: the block each validator voted for in each view.
    pub votes: BTreeMap<(ValidatorIndex, u64), BlockHash>,
    pub delivered: u64,
    /// Largest message sent.
    pub max_message: usize,
}

impl Sim {
    pub fn new(seed: u64, config: SimConfig) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let keys: Vec<SigningKey> = (0..config.validators)
            .map(|_| SigningKey::from_bytes(&rng.gen()))
            .collect();
        let set = ValidatorSet::new(keys.iter().map(SigningKey::verifying_key))
            .expect("valid validator set");
        let chain = Chain::new(set, Block::genesis(1_700_000_000_000, b"sim".to_vec()));
        let nodes = keys
            .into_iter()
            .map(|key| {
                let index = chain
                    .validators()
                    .index_of(&key.verifying_key())
                    .expect("validator");
                let skew = if config.max_clock_skew_ms == 0 {
                    0
                } else {
                    let s = config.max_clock_skew_ms as i64;
                    rng.gen_range(-s..=s)
                };
                Node {
                    replica: None,
                    store: Store::default(),
                    key,
                    index,
                    skew,
                    tick_at: None,
                }
            })
            .collect();
        // Nodes are ordered by validator index so `nodes[i]` is validator `i`.
        let mut nodes: Vec<Node> = nodes;
        nodes.sort_by_key(|n| n.index);
        let mut sim = Self {
            seed,
            config,
            chain,
            nodes,
            now: 1_700_000_000_000,
            rng,
            queue: BinaryHeap::new(),
            seq: 0,
            partition: None,
            committed: BTreeMap::new(),
            votes: BTreeMap::new(),
            delivered: 0,
            max_message: 0,
        };
        for i in 0..sim.nodes.len() {
            sim.start_replica(i, sim.config.replica.clone());
        }
        sim
    }

    /// Milliseconds since the simulation started.
    pub fn elapsed(&self) -> u64 {
        self.now - 1_700_000_000_000
    }

    pub fn set_fault(&mut self, node: usize, fault: TestFault) {
        self.config.replica.test_fault = None;
        let mut cfg = self.config.replica.clone();
        cfg.test_fault = Some(fault);
        self.start_replica(node, cfg);
    }

    /// A fresh app whose only state is its committed tip, at height `committed`.
    fn sim_app(&self, committed: u64, tip: BlockHash) -> SimApp {
        SimApp {
            committed,
            pad: self.config.payload_pad,
            stateful: self.config.stateful_app,
            known: [self.chain.genesis().hash(), tip].into_iter().collect(),
            out_of_order: 0,
            work: self.config.work.clone(),
            committed_ms: 0,
        }
    }

    /// (Re)starts node `i`'s replica on `config` with a fresh app, and ticks it once.
    fn start_replica(&mut self, i: usize, config: Config) {
        let replica = Replica::new(
            self.chain.clone(),
            self.nodes[i].key.clone(),
            config,
            self.sim_app(0, self.chain.genesis().hash()),
        )
        .expect("replica");
        self.nodes[i].replica = Some(replica);
        self.step(i, Input::Tick);
    }

    fn push(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, event)));
    }

    fn node_now(&self, node: usize) -> u64 {
        self.now.saturating_add_signed(self.nodes[node].skew)
    }

    fn step(&mut self, node: usize, input: Input) {
        let now = self.node_now(node);
        let Some(replica) = self.nodes[node].replica.as_mut() else {
            return;
        };
        let outputs = replica.handle(now, input);
        for out in outputs {
            self.apply(node, out);
        }
    }

    fn apply(&mut self, node: usize, out: Output) {
        match out {
            Output::Send(to, msg) => {
                self.observe(node, &msg);
                self.send(node, usize::from(to.0), &msg);
            }
            Output::Broadcast(Msg::Proposal(p)) if self.config.equivocator == Some(node) => {
                self.equivocate(node, p);
            }
            Output::Broadcast(msg) => {
                self.observe(node, &msg);
                for to in 0..self.nodes.len() {
                    if to != node {
                        self.send(node, to, &msg);
                    }
                }
            }
            Output::Persist(Persist::Block(block)) => {
                self.nodes[node]
                    .store
                    .blocks
                    .insert(block.hash(), Block::clone(&block));
            }
            Output::Persist(Persist::Safety(state)) => {
                let bytes = state.to_bytes();
                let back = SafetyState::from_bytes(&bytes).expect("safety state roundtrip");
                self.nodes[node].store.safety = Some(back);
            }
            Output::Commit(block) => self.on_commit(node, block),
            Output::ServeCommitted {
                to,
                from_height,
                to_height,
            } => {
                // What the node's driver does: read the committed heights from the store.
                let stored = &self.nodes[node].store.committed;
                let blocks: Vec<Block> = (from_height..=to_height + 1)
                    .filter_map(|h| stored.get(usize::try_from(h).ok()?.checked_sub(1)?))
                    .map(|b| Block::clone(b))
                    .collect();
                if let Some(msg) = voltmesh_consensus::protocol::committed_sync_response(blocks) {
                    self.observe(node, &msg);
                    self.send(node, usize::from(to.0), &msg);
                }
            }
            Output::ScheduleTick(at) => {
                // Replica time is skewed; convert back to simulation time.
                let at = at
                    .saturating_add_signed(-self.nodes[node].skew)
                    .max(self.now);
                self.nodes[node].tick_at = Some(at);
                self.push(at, Event::Tick { node, at });
            }
        }
    }

    /// A byzantine leader: sends its proposal to even-numbered nodes and a conflicting block
    /// for the same view (valid payload, later timestamp) to odd-numbered ones, and votes for
    /// both.
    fn equivocate(&mut self, node: usize, p: Proposal) {
        let b = &p.block;
        let ts = b.timestamp_ms() + 1;
        let mut payload = b.height().to_be_bytes().to_vec();
        payload.extend_from_slice(&ts.to_be_bytes());
        payload.extend_from_slice(b"ok");
        payload.resize(18 + self.config.payload_pad, 0);
        let other = Block::new(
            b.height(),
            b.view(),
            b.proposer(),
            ts,
            b.justify().clone(),
            payload,
        )
        .with_failed_leaders(b.failed_leaders().to_vec());
        let key = self.nodes[node].key.clone();
        let other_vote = Vote::new(
            &self.chain,
            &key,
            b.proposer(),
            b.view(),
            b.height(),
            other.hash(),
        );
        let other = Proposal::new(&self.chain, &key, other, p.tc.clone());
        let first = Msg::Proposal(p);
        let second = Msg::Proposal(other);
        for to in 0..self.nodes.len() {
            if to != node {
                let msg = if to % 2 == 0 { &first } else { &second };
                self.send(node, to, msg);
                self.send(node, to, &Msg::Vote(other_vote.clone()));
            }
        }
    }

    fn observe(&mut self, node: usize, msg: &Msg) {
        if let Msg::Vote(v) = msg {
            assert_eq!(
                usize::from(v.voter.0),
                node,
                "seed {}: vote by another key",
                self.seed
            );
            if let Some(prev) = self.votes.insert((v.voter, v.view), v.block) {
                assert_eq!(
                    prev, v.block,
                    "seed {}: {} voted twice in view {}",
                    self.seed, v.voter, v.view
                );
            }
        }
    }

    fn on_commit(&mut self, node: usize, block: Arc<Block>) {
        let store = &mut self.nodes[node].store;
        assert_eq!(
            block.height(),
            store.committed.len() as u64 + 1,
            "seed {}: node {node} committed out of order",
            self.seed
        );
        check_commit(&mut self.committed, &block, self.seed);
        store.commit_times.push((self.now, block.height()));
        store.committed.push(block);
    }

    fn send(&mut self, from: usize, to: usize, msg: &Msg) {
        if self.nodes[to].replica.is_none() {
            return;
        }
        if let Some(groups) = &self.partition {
            if groups[from] != groups[to] {
                return;
            }
        }
        let delays = delivery_delays(
            &mut self.rng,
            self.config.loss,
            self.config.duplicate,
            (self.config.min_delay_ms, self.config.max_delay_ms),
        );
        let bytes = msg.encode();
        assert!(
            bytes.len() <= MAX_MESSAGE_BYTES,
            "seed {}: a {} of {} bytes exceeds the wire limit",
            self.seed,
            msg.kind(),
            bytes.len()
        );
        self.max_message = self.max_message.max(bytes.len());
        for delay in delays {
            self.push(
                self.now + delay,
                Event::Deliver {
                    from,
                    to,
                    bytes: bytes.clone(),
                },
            );
        }
    }

    /// Runs events up to `until_ms` after the start.
    pub fn run_until(&mut self, until_ms: u64) {
        let until = 1_700_000_000_000 + until_ms;
        while let Some(Reverse((at, _, _))) = self.queue.peek() {
            if *at > until {
                break;
            }
            let Some(Reverse((at, _, event))) = self.queue.pop() else {
                break;
            };
            self.now = at;
            match event {
                Event::Deliver { from, to, bytes } => {
                    if self.nodes[to].replica.is_none() {
                        continue;
                    }
                    let msg = Msg::decode(&bytes).expect("our own encoding decodes");
                    self.delivered += 1;
                    let from = self.nodes[from].index;
                    self.step(to, Input::Message { from, msg });
                }
                Event::Tick { node, at } => {
                    if self.nodes[node].tick_at == Some(at) {
                        self.nodes[node].tick_at = None;
                        self.step(node, Input::Tick);
                    }
                }
            }
        }
        self.now = until;
    }

    pub fn run_for(&mut self, ms: u64) {
        let t = self.elapsed() + ms;
        self.run_until(t);
    }

    /// Stops a node; it loses everything but its store.
    pub fn crash(&mut self, node: usize) {
        self.nodes[node].replica = None;
        self.nodes[node].tick_at = None;
    }

    pub fn is_up(&self, node: usize) -> bool {
        self.nodes[node].replica.is_some()
    }

    /// Restarts a crashed node from its store.
    pub fn restart(&mut self, node: usize) {
        self.restart_from_store(node, true);
    }

    /// Restarts a crashed node from its store, with `Replica::restore` if its safety record is
    /// `trusted`, else with `Replica::restore_untrusted` (audit M5).
    fn restart_from_store(&mut self, node: usize, trusted: bool) {
        let store = &self.nodes[node].store;
        let safety = store
            .safety
            .clone()
            .unwrap_or_else(|| SafetyState::initial(self.chain.genesis_qc()));
        let blocks: Vec<Block> = store.blocks.values().cloned().collect();
        let committed = store.committed.len() as u64;
        let last_committed = store
            .committed
            .last()
            .map_or(self.chain.genesis().hash(), |b| b.hash());
        let restore = if trusted {
            Replica::restore
        } else {
            Replica::restore_untrusted
        };
        let replica = restore(
            self.chain.clone(),
            self.nodes[node].key.clone(),
            self.config.replica.clone(),
            self.sim_app(committed, last_committed),
            safety,
            blocks,
            last_committed,
        )
        .expect("restore from store");
        self.nodes[node].replica = Some(replica);
        self.step(node, Input::Tick);
    }

    /// Splits the network: `groups[i]` is node `i`'s side.
    pub fn partition(&mut self, groups: Vec<u8>) {
        self.partition = Some(groups);
    }

    pub fn heal(&mut self) {
        self.partition = None;
    }

    pub fn committed_height(&self, node: usize) -> u64 {
        self.nodes[node].store.committed.len() as u64
    }

    /// Lowest committed height among running nodes.
    pub fn min_live_height(&self) -> u64 {
        (0..self.nodes.len())
            .filter(|i| self.is_up(*i))
            .map(|i| self.committed_height(i))
            .min()
            .unwrap_or(0)
    }

    /// Commits of `node` in the virtual-time window `[from_ms, to_ms)` after the start.
    pub fn commits_between(&self, node: usize, from_ms: u64, to_ms: u64) -> usize {
        let (a, b) = (1_700_000_000_000 + from_ms, 1_700_000_000_000 + to_ms);
        self.nodes[node]
            .store
            .commit_times
            .iter()
            .filter(|(t, _)| *t >= a && *t < b)
            .count()
    }

    /// Longest time without a commit at `node` within `[from_ms, to_ms)`.
    pub fn max_commit_gap(&self, node: usize, from_ms: u64, to_ms: u64) -> u64 {
        let (a, b) = (1_700_000_000_000 + from_ms, 1_700_000_000_000 + to_ms);
        let mut last = a;
        let mut gap = 0;
        for (t, _) in &self.nodes[node].store.commit_times {
            if *t < a || *t >= b {
                continue;
            }
            gap = gap.max(t - last);
            last = *t;
        }
        gap.max(b - last)
    }

    pub fn replica(&self, node: usize) -> &Replica<SimApp> {
        self.nodes[node].replica.as_ref().expect("node is up")
    }

    /// Views in which honest validators (all but `except`) voted for different blocks.
    pub fn split_views(&self, except: usize) -> usize {
        let mut per_view: BTreeMap<u64, std::collections::BTreeSet<BlockHash>> = BTreeMap::new();
        for ((voter, view), block) in &self.votes {
            if usize::from(voter.0) != except {
                per_view.entry(*view).or_default().insert(*block);
            }
        }
        per_view.values().filter(|blocks| blocks.len() > 1).count()
    }

    /// Asserts that every committed block of every node re-validates.
    pub fn assert_committed_payloads_valid(&self) {
        for node in &self.nodes {
            let mut parent_height = 0;
            for block in &node.store.committed {
                assert!(
                    payload_valid(parent_height, block.payload(), block.timestamp_ms()),
                    "seed {}: invalid payload committed at height {}",
                    self.seed,
                    block.height()
                );
                parent_height = block.height();
            }
        }
    }
}

// ---- helper "votes" (amnesia guard, injected messages): begin ----

impl Sim {
    /// Runs `n` validators with seed `seed` until `until_ms`, the validators `bad` with `fault`;
    /// the sim, the faulty validators' indexes and the honest nodes.
    pub fn run_with_faulty(
        seed: u64,
        n: usize,
        bad: &[usize],
        fault: TestFault,
        until_ms: u64,
    ) -> (Sim, BTreeSet<ValidatorIndex>, Vec<usize>) {
        let mut sim = Sim::new(seed, SimConfig::new(n));
        for &b in bad {
            sim.set_fault(b, fault);
        }
        sim.run_until(until_ms);
        let bad_set = bad
            .iter()
            .map(|&b| ValidatorIndex(u16::try_from(b).expect("small")))
            .collect();
        let honest = (0..n).filter(|i| !bad.contains(i)).collect();
        (sim, bad_set, honest)
    }

    /// Restarts a crashed node from its store as a replica whose safety record cannot be
    /// trusted (`Replica::restore_untrusted`, audit M5).
    pub fn restart_untrusted(&mut self, node: usize) {
        self.restart_from_store(node, false);
    }

    /// Delivers `msg` from `from` to `to` now, ahead of anything queued for a later time.
    pub fn inject(&mut self, from: usize, to: usize, msg: &Msg) {
        let bytes = msg.encode();
        self.push(self.now, Event::Deliver { from, to, bytes });
    }

    /// A second, conflicting proposal for `block`'s view, signed by its proposer: same parent,
    /// height and justify, a valid payload one millisecond later.
    pub fn equivocation_of(&self, block: &Block) -> Msg {
        let ts = block.timestamp_ms() + 1;
        let mut payload = block.height().to_be_bytes().to_vec();
        payload.extend_from_slice(&ts.to_be_bytes());
        payload.extend_from_slice(b"ok");
        payload.resize(18 + self.config.payload_pad, 0);
        let other = Block::new(
            block.height(),
            block.view(),
            block.proposer(),
            ts,
            block.justify().clone(),
            payload,
        )
        .with_failed_leaders(block.failed_leaders().to_vec());
        let key = &self.nodes[usize::from(block.proposer().0)].key;
        Msg::Proposal(Proposal::new(&self.chain, key, other, None))
    }
}

// ---- helper "votes": end ----

/// Per live node after a crash: `(commits, longest gap ms, view timeouts)` from 15 s to 45 s.
#[derive(Debug, Clone, Copy)]
pub struct CrashRun {
    pub node: usize,
    pub commits: usize,
    pub max_gap_ms: u64,
    pub timeouts: u64,
    /// Longest time without a commit in the 10 s right after the crash.
    pub gap_after_crash_ms: u64,
}

/// Crashes `crashed` after 5 s and measures commits from 15 s to 45 s.
pub fn run_with_crashes(n: usize, crashed: &[usize], seed: u64, window: usize) -> Vec<CrashRun> {
    let mut config = SimConfig::new(n);
    config.replica.reputation_window = window;
    let mut sim = Sim::new(seed, config);
    sim.run_until(5_000);
    let h0 = sim.min_live_height();
    assert!(
        h0 >= 5,
        "seed {seed}: healthy network committed only {h0} blocks in 5 s"
    );
    for &c in crashed {
        sim.crash(c);
    }
    // Warm-up: the crashed validators still lead a view or two until they leave the rotation.
    sim.run_until(15_000);
    let live: Vec<usize> = (0..n).filter(|i| !crashed.contains(i)).collect();
    let before: Vec<u64> = live
        .iter()
        .map(|&i| sim.replica(i).stats().timeouts)
        .collect();
    sim.run_until(45_000);
    live.iter()
        .zip(before)
        .map(|(&i, before)| CrashRun {
            node: i,
            commits: sim.commits_between(i, 15_000, 45_000),
            max_gap_ms: sim.max_commit_gap(i, 15_000, 45_000),
            timeouts: sim.replica(i).stats().timeouts - before,
            gap_after_crash_ms: sim.max_commit_gap(i, 5_000, 15_000),
        })
        .collect()
}

/// Crashes `crashed` after 5 s and checks steady commits from 15 s to 45 s.
pub fn crashed_validators_steady(n: usize, crashed: &[usize], seed: u64) {
    let window = Config::default().reputation_window;
    for run in run_with_crashes(n, crashed, seed, window) {
        let CrashRun {
            node,
            commits,
            max_gap_ms,
            timeouts,
            gap_after_crash_ms,
        } = run;
        eprintln!("seed {seed} n {n} node {node}: gap after crash {gap_after_crash_ms} ms; then {commits} commits in 30 s, max gap {max_gap_ms} ms, {timeouts} timeouts");
        // The pace is one block per 500 ms plus network delay: demand at least 1.5 per second.
        assert!(
            commits >= 45,
            "seed {seed}: node {node} committed only {commits} blocks in 30 s"
        );
        assert!(
            max_gap_ms < 1_000,
            "seed {seed}: node {node} went {max_gap_ms} ms without a commit"
        );
        // Bar (b): commits continue within 10 s of the crash.
        assert!(
            gap_after_crash_ms < 10_000,
            "seed {seed}: node {node} went {gap_after_crash_ms} ms without a commit after the crash"
        );
        assert_eq!(
            timeouts, 0,
            "seed {seed}: node {node} still timed out views after warm-up"
        );
    }
}

// ---- BEGIN helper "sync" additions (Byzantine sync traffic) ----
impl Sim {
    /// Test-only Byzantine traffic: `from` sends `msg` to `to` as if its replica had sent it
    /// (same loss, delay and partition rules; [`Sim::inject`] delivers at once instead).
    pub fn send_as(&mut self, from: usize, to: usize, msg: &Msg) {
        self.send(from, to, msg);
    }
}
// ---- END helper "sync" additions ----
