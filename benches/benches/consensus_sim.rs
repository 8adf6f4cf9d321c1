//! Consensus core: CPU cost of committing blocks with 4 and 7 validators in a simulated,
//! loss-free network (virtual time, 5 ms delay, 64-byte payloads). Everything a node's core does
//! per block is timed: signing and verifying proposals, votes and QCs, hashing, the wire
//! encoding and decoding of every message. Network and disk time are not. The reported
//! throughput is committed blocks per second of CPU, an upper bound for the node (which paces
//! blocks at one per 500 ms).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use criterion::{
    black_box, criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput,
};
use ed25519_dalek::SigningKey;
use voltmesh_consensus::protocol::{
    App, Block, Chain, Config, Input, Msg, Output, Reject, Replica, ValidatorIndex, ValidatorSet,
};

const BLOCKS: u64 = 40;
const DELAY_MS: u64 = 5;
const START_MS: u64 = 1_700_000_000_000;

#[derive(Debug)]
struct NullApp;

impl App for NullApp {
    fn propose(&mut self, parent: &Block, _block_time_ms: u64) -> Vec<u8> {
        let mut p = vec![0u8; 64];
        p[..8].copy_from_slice(&parent.height().to_be_bytes());
        p
    }
    fn validate(&mut self, _parent: &Block, payload: &[u8], _t: u64) -> Result<(), Reject> {
        if payload.len() == 64 {
            Ok(())
        } else {
            Err(Reject::new("bad length"))
        }
    }
    fn commit(&mut self, block: &Block) {
        black_box(block.height());
    }
}

enum Event {
    Deliver { from: usize, bytes: Vec<u8> },
    Tick(u64),
}

struct Net {
    replicas: Vec<Replica<NullApp>>,
    tick_at: Vec<Option<u64>>,
    heap: BinaryHeap<Reverse<(u64, u64)>>,
    events: BTreeMap<u64, (usize, Event)>,
    seq: u64,
    now: u64,
    committed: u64,
}

impl Net {
    fn new(n: usize) -> Self {
        let keys: Vec<SigningKey> = (0..n)
            .map(|i| SigningKey::from_bytes(&[u8::try_from(i + 1).unwrap_or(1); 32]))
            .collect();
        let set =
            ValidatorSet::new(keys.iter().map(SigningKey::verifying_key)).expect("validators");
        let chain = Chain::new(set, Block::genesis(START_MS, b"bench".to_vec()));
        let mut keys = keys;
        keys.sort_by_key(|k| chain.validators().index_of(&k.verifying_key()));
        let replicas = keys
            .into_iter()
            .map(|k| Replica::new(chain.clone(), k, Config::default(), NullApp).expect("replica"))
            .collect();
        let mut net = Self {
            replicas,
            tick_at: vec![None; n],
            heap: BinaryHeap::new(),
            events: BTreeMap::new(),
            seq: 0,
            now: START_MS,
            committed: 0,
        };
        for i in 0..n {
            net.step(i, Input::Tick);
        }
        net
    }

    fn push(&mut self, at: u64, to: usize, event: Event) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq)));
        self.events.insert(self.seq, (to, event));
    }

    fn step(&mut self, node: usize, input: Input) {
        let outputs = self.replicas[node].handle(self.now, input);
        for out in outputs {
            match out {
                Output::Send(to, msg) => self.send(node, usize::from(to.0), &msg),
                Output::Broadcast(msg) => {
                    for to in 0..self.replicas.len() {
                        if to != node {
                            self.send(node, to, &msg);
                        }
                    }
                }
                Output::Commit(_) if node == 0 => self.committed += 1,
                Output::ScheduleTick(at) => {
                    self.tick_at[node] = Some(at);
                    self.push(at.max(self.now), node, Event::Tick(at));
                }
                _ => {}
            }
        }
    }

    fn send(&mut self, from: usize, to: usize, msg: &Msg) {
        let bytes = msg.encode();
        self.push(self.now + DELAY_MS, to, Event::Deliver { from, bytes });
    }

    fn run_until_committed(&mut self, blocks: u64) {
        while self.committed < blocks {
            let Some(Reverse((at, seq))) = self.heap.pop() else {
                panic!("network went idle at {} commits", self.committed);
            };
            let Some((to, event)) = self.events.remove(&seq) else {
                continue;
            };
            self.now = at;
            match event {
                Event::Deliver { from, bytes } => {
                    let msg = Msg::decode(&bytes).expect("decodes");
                    let from = ValidatorIndex(u16::try_from(from).unwrap_or(0));
                    self.step(to, Input::Message { from, msg });
                }
                Event::Tick(at) if self.tick_at[to] == Some(at) => {
                    self.tick_at[to] = None;
                    self.step(to, Input::Tick);
                }
                Event::Tick(_) => {}
            }
        }
    }
}

fn bench_commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("consensus_commit");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BLOCKS));
    for n in [4usize, 7] {
        group.bench_with_input(BenchmarkId::new("validators", n), &n, |b, &n| {
            b.iter_batched_ref(
                || Net::new(n),
                |net| net.run_until_committed(BLOCKS),
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, bench_commit);
criterion_main!(benches);
