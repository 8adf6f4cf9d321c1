//! Deterministic simulation of validator set changes: replicas of successive epochs on one
//! simulated network (issue 13; the rule is in `consensus/README.md`, "Validator set changes").
//!
//! Every node is a key of a fixed universe; an epoch's validators are a subset. A node runs
//! the replica of its current epoch and keeps the one of the epoch before, retired, to answer
//! laggards. Messages travel as `epoch ‖ wire bytes` and reach the replica of that epoch
//! (other epochs' messages are dropped, as the node's network adapter does).
//!
//! The application ([`EpochApp`]) makes one block of an epoch its reconfiguration block: its
//! payload is tagged `rc` and carries the next validator set's keys; every block extending it
//! in the same epoch must be an empty suffix block (`sx`). When a node's replica commits the
//! `rc` block `B`, the driver records `B` as its last block of the epoch (commits of suffix
//! blocks are discarded), retires the replica and, if the node is in the new set, starts a
//! replica on `chain.next_epoch(B, new set)`. A validator that joins in the new epoch is
//! handed that chain after a state-sync delay.
//!
//! Checked on the fly, across epochs: no two nodes commit different blocks at one height;
//! each node commits heights in order without gaps; every node derives the same chain id for
//! each epoch; no validator signs two different votes for one view of one epoch; no node
//! commits a block of an epoch above its reconfiguration block.
//!
//! It shares the safety oracle and the network's randomness with `sim/mod.rs`: a test crate
//! that uses it declares `mod sim;` too.

#![allow(dead_code, unreachable_pub)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use voltmesh_consensus::protocol::{
    App, Block, BlockHash, Chain, Config, Input, Msg, Output, Persist, Reject, Replica,
    SafetyState, ValidatorIndex, ValidatorSet,
};

/// Simulation time at the start (ms).
pub const T0: u64 = 1_700_000_000_000;

const OK: &[u8; 2] = b"ok";
const RECONFIG: &[u8; 2] = b"rc";
const SUFFIX: &[u8; 2] = b"sx";

/// A block's tag: `ok`, `rc` (reconfiguration) or `sx` (suffix), if the payload has one.
pub fn tag(block: &Block) -> Option<&[u8]> {
    block.payload().get(16..18)
}

/// The validator keys a reconfiguration payload names.
pub fn reconfig_keys(block: &Block) -> Option<Vec<[u8; 32]>> {
    if tag(block) != Some(RECONFIG.as_slice()) {
        return None;
    }
    let keys = block.payload().get(18..)?;
    if keys.is_empty() || keys.len() % 32 != 0 {
        return None;
    }
    keys.chunks(32)
        .map(|k| <[u8; 32]>::try_from(k).ok())
        .collect()
}

/// The replicated application: payload = next height ‖ block time ‖ tag ‖ (keys for `rc`).
#[derive(Debug, Default)]
pub struct EpochApp {
    /// Propose a reconfiguration to these keys once the block time reaches `.0`.
    pub reconfigure: Option<(u64, Vec<[u8; 32]>)>,
    /// A faulty (Byzantine) app: proposes `ok` blocks on top of a reconfiguration and accepts
    /// anything.
    pub faulty: bool,
    pub committed: u64,
    /// The epoch's root block: a reconfiguration of the epoch before, which starts this one.
    pub root: BlockHash,
}

fn head(parent: &Block, block_time_ms: u64, tag: &[u8; 2]) -> Vec<u8> {
    let mut p = (parent.height() + 1).to_be_bytes().to_vec();
    p.extend_from_slice(&block_time_ms.to_be_bytes());
    p.extend_from_slice(tag);
    p
}

impl EpochApp {
    /// Whether `parent` ends this epoch's payload-carrying blocks: it is this epoch's
    /// reconfiguration (`rc`, not the root, which is the epoch before's) or a suffix block.
    fn in_suffix(&self, parent: &Block) -> bool {
        parent.hash() != self.root
            && matches!(tag(parent), Some(t) if t == RECONFIG.as_slice() || t == SUFFIX.as_slice())
    }
}

impl App for EpochApp {
    fn propose(&mut self, parent: &Block, block_time_ms: u64) -> Vec<u8> {
        if self.in_suffix(parent) && !self.faulty {
            return head(parent, block_time_ms, SUFFIX);
        }
        match &self.reconfigure {
            Some((at, keys)) if block_time_ms >= *at && !self.faulty => {
                let mut p = head(parent, block_time_ms, RECONFIG);
                for key in keys {
                    p.extend_from_slice(key);
                }
                p
            }
            _ => head(parent, block_time_ms, OK),
        }
    }

    fn validate(
        &mut self,
        parent: &Block,
        payload: &[u8],
        block_time_ms: u64,
    ) -> Result<(), Reject> {
        if payload.len() < 18
            || payload[..8] != (parent.height() + 1).to_be_bytes()
            || payload[8..16] != block_time_ms.to_be_bytes()
        {
            return Err(Reject::new("payload does not re-execute to the same bytes"));
        }
        if self.faulty {
            return Ok(());
        }
        let tag = &payload[16..18];
        if self.in_suffix(parent) {
            return if tag == SUFFIX && payload.len() == 18 {
                Ok(())
            } else {
                Err(Reject::new("a block after a reconfiguration must be empty"))
            };
        }
        if tag == OK && payload.len() == 18 {
            return Ok(());
        }
        if tag == RECONFIG {
            let keys = &payload[18..];
            let parsed: Option<Vec<[u8; 32]>> = keys
                .chunks(32)
                .map(|k| <[u8; 32]>::try_from(k).ok())
                .collect();
            if !keys.is_empty()
                && parsed.is_some_and(|keys| ValidatorSet::from_bytes(&keys).is_ok())
            {
                return Ok(());
            }
        }
        Err(Reject::new("malformed payload"))
    }

    fn commit(&mut self, block: &Block) {
        self.committed = block.height();
    }
}

/// The replica of one epoch.
pub struct EpochReplica {
    pub chain: Chain,
    pub replica: Replica<EpochApp>,
}

/// What a node keeps on disk.
#[derive(Debug, Default, Clone)]
pub struct Store {
    /// The chain of each epoch this node knows, by epoch.
    pub epochs: BTreeMap<u64, Chain>,
    pub safety: BTreeMap<u64, SafetyState>,
    pub blocks: BTreeMap<(u64, BlockHash), Block>,
    /// Committed blocks by height (a joiner's start above its snapshot).
    pub committed: BTreeMap<u64, Arc<Block>>,
    /// `(virtual time, height)` of each commit.
    pub commit_times: Vec<(u64, u64)>,
}

impl Store {
    pub fn tip(&self) -> Option<&Arc<Block>> {
        self.committed.values().next_back()
    }
}

pub struct Node {
    pub key: SigningKey,
    pub up: bool,
    pub current: Option<EpochReplica>,
    pub retired: Option<EpochReplica>,
    pub store: Store,
    /// Byzantine: never retires its replica; its app ignores the suffix rule.
    pub byzantine: bool,
    /// A reconfiguration committed in the step being processed.
    switch_at: Option<Arc<Block>>,
    tick_at: Option<(u64, u64)>,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Deliver {
        from: usize,
        to: usize,
        epoch: u64,
        bytes: Vec<u8>,
    },
    Tick {
        node: usize,
        epoch: u64,
        at: u64,
    },
    /// A joiner finishes state sync to `epoch`.
    Join {
        node: usize,
        epoch: u64,
    },
}

/// The simulated network.
pub struct EpochSim {
    pub seed: u64,
    pub config: Config,
    pub nodes: Vec<Node>,
    pub now: u64,
    /// Loss and duplication probabilities; delay range (ms).
    pub loss: f64,
    pub duplicate: f64,
    pub delay_ms: (u64, u64),
    /// When (ms after the start) and to whom (node indexes) the first epoch reconfigures.
    pub reconfigure: Option<(u64, Vec<usize>)>,
    /// Delay from the first commit of a reconfiguration to a joiner's start (state sync).
    pub join_delay_ms: u64,
    rng: ChaCha8Rng,
    queue: BinaryHeap<Reverse<(u64, u64, Event)>>,
    seq: u64,
    partition: Option<Vec<u8>>,
    /// Oracle: the block committed at each height by anyone.
    pub committed: BTreeMap<u64, BlockHash>,
    /// Oracle: each epoch's chain id, as the first node to enter it derived it.
    pub epoch_ids: BTreeMap<u64, [u8; 32]>,
    /// Oracle: each epoch's reconfiguration block.
    pub reconfig_blocks: BTreeMap<u64, BlockHash>,
    /// Oracle: the block each key voted for in each view of each epoch.
    pub votes: BTreeMap<(u64, [u8; 32], u64), BlockHash>,
}

impl EpochSim {
    /// `universe` keys; the first `validators` form epoch 0.
    pub fn new(seed: u64, universe: usize, validators: usize, config: Config) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let keys: Vec<SigningKey> = (0..universe)
            .map(|_| SigningKey::from_bytes(&rng.gen()))
            .collect();
        let set = ValidatorSet::new(keys[..validators].iter().map(SigningKey::verifying_key))
            .expect("valid validator set");
        let chain = Chain::new(set, Block::genesis(T0, b"epochs".to_vec()));
        let nodes = keys
            .into_iter()
            .map(|key| Node {
                key,
                up: true,
                current: None,
                retired: None,
                store: Store::default(),
                byzantine: false,
                switch_at: None,
                tick_at: None,
            })
            .collect();
        let mut sim = Self {
            seed,
            config,
            nodes,
            now: T0,
            loss: 0.0,
            duplicate: 0.0,
            delay_ms: (2, 40),
            reconfigure: None,
            join_delay_ms: 500,
            rng,
            queue: BinaryHeap::new(),
            seq: 0,
            partition: None,
            committed: BTreeMap::new(),
            epoch_ids: BTreeMap::new(),
            reconfig_blocks: BTreeMap::new(),
            votes: BTreeMap::new(),
        };
        sim.epoch_ids.insert(0, *chain.id());
        for i in 0..validators {
            sim.nodes[i].store.epochs.insert(0, chain.clone());
        }
        sim
    }

    /// Lossy network: 5 % loss, 2 % duplicates, 1–150 ms delay.
    pub fn lossy(mut self) -> Self {
        self.loss = 0.05;
        self.duplicate = 0.02;
        self.delay_ms = (1, 150);
        self
    }

    /// Starts every node of epoch 0. Call after setting `reconfigure` and `byzantine`.
    pub fn start(&mut self) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].store.epochs.contains_key(&0) {
                self.start_current(i, 0, None);
            }
        }
    }

    fn app(&self, node: usize, epoch: u64, committed: u64) -> EpochApp {
        let reconfigure = match (&self.reconfigure, epoch) {
            (Some((at, to)), 0) => Some((
                T0 + at,
                to.iter()
                    .map(|&i| self.nodes[i].key.verifying_key().to_bytes())
                    .collect(),
            )),
            _ => None,
        };
        EpochApp {
            reconfigure,
            faulty: self.nodes[node].byzantine,
            committed,
            root: self.epoch_chain(epoch).expect("epoch").genesis().hash(),
        }
    }

    /// Starts (or restores, when `restore` has the blocks) node `i`'s replica of `epoch`.
    fn start_current(&mut self, i: usize, epoch: u64, restore: Option<()>) {
        let chain = self.nodes[i].store.epochs[&epoch].clone();
        let replica = self.build_replica(i, &chain, restore.is_some());
        self.nodes[i].current = Some(EpochReplica { chain, replica });
        self.step(i, epoch, Input::Tick);
    }

    fn build_replica(&self, i: usize, chain: &Chain, restore: bool) -> Replica<EpochApp> {
        let epoch = chain.epoch();
        let node = &self.nodes[i];
        let root = chain.genesis().hash();
        let committed_in_epoch = node
            .store
            .committed
            .values()
            .rfind(|b| {
                b.height() > chain.genesis().height()
                    && node.store.blocks.contains_key(&(epoch, b.hash()))
            })
            .map_or(root, |b| b.hash());
        let committed = node
            .store
            .tip()
            .map_or(chain.genesis().height(), |b| b.height());
        let app = self.app(i, epoch, committed);
        if !restore {
            return Replica::new(chain.clone(), node.key.clone(), self.config.clone(), app)
                .expect("replica");
        }
        let safety = node
            .store
            .safety
            .get(&epoch)
            .cloned()
            .unwrap_or_else(|| SafetyState::initial(chain.genesis_qc()));
        let blocks: Vec<Block> = node
            .store
            .blocks
            .iter()
            .filter(|((e, _), _)| *e == epoch)
            .map(|(_, b)| b.clone())
            .collect();
        Replica::restore(
            chain.clone(),
            node.key.clone(),
            self.config.clone(),
            app,
            safety,
            blocks,
            committed_in_epoch,
        )
        .expect("restore from store")
    }

    fn push(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, event)));
    }

    /// The replica of `epoch` at node `i`, current or retired.
    fn replica_mut(&mut self, i: usize, epoch: u64) -> Option<&mut Replica<EpochApp>> {
        let node = &mut self.nodes[i];
        if !node.up {
            return None;
        }
        if let Some(r) = node.current.as_mut().filter(|r| r.chain.epoch() == epoch) {
            return Some(&mut r.replica);
        }
        node.retired
            .as_mut()
            .filter(|r| r.chain.epoch() == epoch)
            .map(|r| &mut r.replica)
    }

    fn chain_of(&self, i: usize, epoch: u64) -> Option<&Chain> {
        self.nodes[i].store.epochs.get(&epoch)
    }

    fn step(&mut self, i: usize, epoch: u64, input: Input) {
        let now = self.now;
        let Some(replica) = self.replica_mut(i, epoch) else {
            return;
        };
        let outputs = replica.handle(now, input);
        for out in outputs {
            self.apply(i, epoch, out);
        }
        if let Some(b) = self.nodes[i].switch_at.take() {
            self.switch(i, epoch, b);
        }
    }

    fn node_of(&self, epoch: u64, index: ValidatorIndex) -> Option<usize> {
        let key = self.epoch_chain(epoch)?.validators().key(index)?.to_bytes();
        self.nodes
            .iter()
            .position(|n| n.key.verifying_key().to_bytes() == key)
    }

    /// Any node's chain of `epoch` (they agree: checked at every switch).
    pub fn epoch_chain(&self, epoch: u64) -> Option<&Chain> {
        self.nodes.iter().find_map(|n| n.store.epochs.get(&epoch))
    }

    fn apply(&mut self, i: usize, epoch: u64, out: Output) {
        match out {
            Output::Send(to, msg) => {
                self.observe(i, epoch, &msg);
                if let Some(to) = self.node_of(epoch, to) {
                    self.send(i, to, epoch, &msg);
                }
            }
            Output::Broadcast(msg) => {
                self.observe(i, epoch, &msg);
                let set = self.epoch_chain(epoch).expect("epoch").validators().clone();
                for to in 0..self.nodes.len() {
                    if to != i && set.index_of(&self.nodes[to].key.verifying_key()).is_some() {
                        self.send(i, to, epoch, &msg);
                    }
                }
            }
            Output::Persist(Persist::Block(block)) => {
                self.nodes[i]
                    .store
                    .blocks
                    .insert((epoch, block.hash()), Block::clone(&block));
            }
            Output::Persist(Persist::Safety(state)) => {
                self.nodes[i].store.safety.insert(epoch, state);
            }
            Output::Commit(block) => self.on_commit(i, epoch, block),
            Output::ServeCommitted {
                to,
                from_height,
                to_height,
            } => {
                let stored = &self.nodes[i].store;
                let blocks: Vec<Block> = (from_height..=to_height + 1)
                    .filter_map(|h| stored.committed.get(&h))
                    .filter(|b| stored.blocks.contains_key(&(epoch, b.hash())))
                    .map(|b| Block::clone(b))
                    .collect();
                if let Some(msg) = voltmesh_consensus::protocol::committed_sync_response(blocks) {
                    if let Some(to) = self.node_of(epoch, to) {
                        self.send(i, to, epoch, &msg);
                    }
                }
            }
            Output::ScheduleTick(at) => {
                let at = at.max(self.now);
                self.nodes[i].tick_at = Some((epoch, at));
                self.push(at, Event::Tick { node: i, epoch, at });
            }
        }
    }

    fn observe(&mut self, i: usize, epoch: u64, msg: &Msg) {
        if let Msg::Vote(v) = msg {
            let key = self.nodes[i].key.verifying_key().to_bytes();
            if let Some(prev) = self.votes.insert((epoch, key, v.view), v.block) {
                assert_eq!(
                    prev, v.block,
                    "seed {}: node {i} voted twice in view {} of epoch {epoch}",
                    self.seed, v.view
                );
            }
        }
    }

    fn on_commit(&mut self, i: usize, epoch: u64, block: Arc<Block>) {
        let node = &mut self.nodes[i];
        let current = node.current.as_ref().map(|r| r.chain.epoch());
        if node.switch_at.is_some() || current != Some(epoch) {
            // A suffix block committed with (or after) the reconfiguration: discarded, which
            // loses nothing only because it carries nothing.
            assert!(
                node.byzantine || tag(&block) == Some(SUFFIX.as_slice()),
                "seed {}: node {i} committed a payload after its epoch's reconfiguration",
                self.seed
            );
            return;
        }
        if let Some(tip) = node.store.tip() {
            assert_eq!(
                block.height(),
                tip.height() + 1,
                "seed {}: node {i} committed out of order",
                self.seed
            );
        }
        if let Some(rc) = self.reconfig_blocks.get(&epoch) {
            let rc_height = self
                .committed
                .iter()
                .find(|(_, h)| *h == rc)
                .map(|(height, _)| *height);
            assert!(
                rc_height.is_none_or(|h| block.height() <= h),
                "seed {}: node {i} committed a block of epoch {epoch} above its reconfiguration",
                self.seed
            );
        }
        crate::sim::check_commit(&mut self.committed, &block, self.seed);
        node.store.commit_times.push((self.now, block.height()));
        node.store
            .committed
            .insert(block.height(), Arc::clone(&block));
        if reconfig_keys(&block).is_some() {
            let first = *self.reconfig_blocks.entry(epoch).or_insert(block.hash());
            assert_eq!(
                first,
                block.hash(),
                "seed {}: two reconfigurations of epoch {epoch}",
                self.seed
            );
            self.nodes[i].switch_at = Some(block);
        }
    }

    /// Node `i` committed `rc`, the reconfiguration block of `epoch`.
    fn switch(&mut self, i: usize, epoch: u64, rc: Arc<Block>) {
        let keys = reconfig_keys(&rc).expect("reconfiguration");
        let set = ValidatorSet::from_bytes(&keys).expect("validated");
        let old = self.nodes[i].current.take().expect("current replica");
        let next = old.chain.next_epoch(Block::clone(&rc), set.clone());
        let id = *self.epoch_ids.entry(epoch + 1).or_insert(*next.id());
        assert_eq!(
            id,
            *next.id(),
            "seed {}: node {i} derived another chain id for epoch {}",
            self.seed,
            epoch + 1
        );
        let first_switch = !self
            .nodes
            .iter()
            .any(|n| n.store.epochs.contains_key(&(epoch + 1)));
        self.nodes[i].store.epochs.insert(epoch + 1, next);
        let mut old = old;
        if !self.nodes[i].byzantine {
            old.replica.retire();
        }
        self.nodes[i].retired = Some(old);
        self.nodes[i].tick_at = None;
        if set.index_of(&self.nodes[i].key.verifying_key()).is_some() {
            self.start_current(i, epoch + 1, None);
        }
        if first_switch {
            for j in 0..self.nodes.len() {
                let joins = !self.nodes[j].store.epochs.contains_key(&epoch)
                    && set.index_of(&self.nodes[j].key.verifying_key()).is_some();
                if joins {
                    let at = self.now + self.join_delay_ms;
                    self.push(
                        at,
                        Event::Join {
                            node: j,
                            epoch: epoch + 1,
                        },
                    );
                }
            }
        }
        if self.nodes[i].byzantine {
            // Keeps running the old epoch: tick it.
            self.step(i, epoch, Input::Tick);
        }
    }

    fn send(&mut self, from: usize, to: usize, epoch: u64, msg: &Msg) {
        if let Some(groups) = &self.partition {
            if groups[from] != groups[to] {
                return;
            }
        }
        let delays =
            crate::sim::delivery_delays(&mut self.rng, self.loss, self.duplicate, self.delay_ms);
        let bytes = msg.encode();
        for delay in delays {
            self.push(
                self.now + delay,
                Event::Deliver {
                    from,
                    to,
                    epoch,
                    bytes: bytes.clone(),
                },
            );
        }
    }

    /// Runs events up to `until_ms` after the start.
    pub fn run_until(&mut self, until_ms: u64) {
        let until = T0 + until_ms;
        while let Some(Reverse((at, _, _))) = self.queue.peek() {
            if *at > until {
                break;
            }
            let Some(Reverse((at, _, event))) = self.queue.pop() else {
                break;
            };
            self.now = at;
            match event {
                Event::Deliver {
                    from,
                    to,
                    epoch,
                    bytes,
                } => {
                    let Some(sender) = self.chain_of(to, epoch).and_then(|c| {
                        c.validators()
                            .index_of(&self.nodes[from].key.verifying_key())
                    }) else {
                        continue; // an epoch this node does not run (yet), or a non-member
                    };
                    let msg = Msg::decode(&bytes).expect("our own encoding decodes");
                    self.step(to, epoch, Input::Message { from: sender, msg });
                }
                Event::Tick { node, epoch, at } => {
                    if self.nodes[node].tick_at == Some((epoch, at)) {
                        self.nodes[node].tick_at = None;
                        self.step(node, epoch, Input::Tick);
                    }
                }
                Event::Join { node, epoch } => self.join(node, epoch),
            }
        }
        self.now = until;
    }

    /// State sync for a joiner: the chain of `epoch` and its root block, as a verified snapshot
    /// would give them.
    fn join(&mut self, i: usize, epoch: u64) {
        if !self.nodes[i].up || self.nodes[i].current.is_some() {
            return;
        }
        let chain = self.epoch_chain(epoch).expect("epoch").clone();
        let root = Arc::new(chain.genesis().clone());
        let store = &mut self.nodes[i].store;
        store.epochs.insert(epoch, chain);
        store.committed.insert(root.height(), root);
        self.start_current(i, epoch, None);
    }

    /// Stops a node; it keeps only its store.
    pub fn crash(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.up = false;
        node.current = None;
        node.retired = None;
        node.tick_at = None;
    }

    /// Restarts a crashed node from its store: the replica of its latest epoch (if it is a
    /// validator there) and the one before, retired.
    pub fn restart(&mut self, i: usize) {
        self.nodes[i].up = true;
        let epochs: Vec<u64> = self.nodes[i].store.epochs.keys().copied().collect();
        let Some(&latest) = epochs.last() else {
            return;
        };
        if latest > 0 {
            let prev = self.nodes[i].store.epochs[&(latest - 1)].clone();
            if prev
                .validators()
                .index_of(&self.nodes[i].key.verifying_key())
                .is_some()
            {
                let mut replica = self.build_replica(i, &prev, true);
                replica.retire();
                self.nodes[i].retired = Some(EpochReplica {
                    chain: prev,
                    replica,
                });
            }
        }
        let chain = &self.nodes[i].store.epochs[&latest];
        if chain
            .validators()
            .index_of(&self.nodes[i].key.verifying_key())
            .is_some()
        {
            self.start_current(i, latest, Some(()));
        }
    }

    /// Splits the network: `groups[i]` is node `i`'s side.
    pub fn partition(&mut self, groups: Vec<u8>) {
        self.partition = Some(groups);
    }

    pub fn heal(&mut self) {
        self.partition = None;
    }

    /// The epoch node `i` runs (its current replica's), if any.
    pub fn epoch_of(&self, i: usize) -> Option<u64> {
        self.nodes[i].current.as_ref().map(|r| r.chain.epoch())
    }

    pub fn committed_height(&self, i: usize) -> u64 {
        self.nodes[i].store.tip().map_or(0, |b| b.height())
    }

    /// Height of `epoch`'s reconfiguration block, once committed.
    pub fn reconfig_height(&self, epoch: u64) -> Option<u64> {
        let rc = self.reconfig_blocks.get(&epoch)?;
        self.committed
            .iter()
            .find(|(_, h)| *h == rc)
            .map(|(height, _)| *height)
    }

    /// Laggards answered by node `i`'s retired replica.
    pub fn retired_answers(&self, i: usize) -> u64 {
        self.nodes[i]
            .retired
            .as_ref()
            .map_or(0, |r| r.replica.stats().retired_answers)
    }

    /// When node `i` committed `height` (ms after the start).
    pub fn commit_time(&self, i: usize, height: u64) -> Option<u64> {
        self.nodes[i]
            .store
            .commit_times
            .iter()
            .find(|(_, h)| *h == height)
            .map(|(t, _)| t - T0)
    }

    /// The replica node `i` runs now.
    pub fn replica(&self, i: usize) -> &Replica<EpochApp> {
        &self.nodes[i].current.as_ref().expect("running").replica
    }
}
