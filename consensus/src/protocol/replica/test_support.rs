//! Shared fixture for the handler tests: four validators, a tiny app, and builders for signed
//! blocks, proposals, votes, certificates and timeouts.
//!
//! On a young chain (fewer than a quorum of validators seen in the reputation window) the leader
//! of view `v` is validator `v mod 4`, so [`ME`] (validator 0) leads none of views 1–3: a
//! replica under test only proposes when a test asks it to.

use std::sync::Arc;

use ed25519_dalek::SigningKey;

use super::{Input, Output, Persist, Replica};
use crate::protocol::app::{App, Reject};
use crate::protocol::block::Block;
use crate::protocol::certificate::{QuorumCert, Vote};
use crate::protocol::chain::Chain;
use crate::protocol::config::Config;
use crate::protocol::message::{Msg, Proposal};
use crate::protocol::safety::SafetyState;
use crate::protocol::timeout::{timeout_message, Timeout, TimeoutCert};
use crate::protocol::validators::{sign, ValidatorIndex, ValidatorSet};

/// The replica under test in most handler tests; it leads none of views 1–3.
pub(super) const ME: ValidatorIndex = ValidatorIndex(0);
/// The time of the first input, and block 1's timestamp (≥ genesis + `min_block_interval_ms`).
pub(super) const T0: u64 = 1_000;
/// The default view timeout (`Config::default().base_view_timeout_ms`).
pub(super) const VIEW_TIMEOUT: u64 = 2_000;

/// Payload = the block height as 8 big-endian bytes; commits are recorded.
#[derive(Debug, Default)]
pub(super) struct TestApp {
    /// Heights passed to `commit`, in order.
    pub(super) committed: Vec<u64>,
    /// Refuse every payload in `validate`.
    pub(super) refuse: bool,
    /// Heights passed to `certified`, in order.
    pub(super) certified: Vec<u64>,
}

impl App for TestApp {
    fn propose(&mut self, parent: &Block, _block_time_ms: u64) -> Vec<u8> {
        (parent.height() + 1).to_be_bytes().to_vec()
    }

    fn validate(
        &mut self,
        parent: &Block,
        payload: &[u8],
        _block_time_ms: u64,
    ) -> Result<(), Reject> {
        if !self.refuse && payload == (parent.height() + 1).to_be_bytes() {
            Ok(())
        } else {
            Err(Reject::new("test app refuses"))
        }
    }

    fn certified(&mut self, block: &Block) {
        self.certified.push(block.height());
    }

    fn commit(&mut self, block: &Block) {
        self.committed.push(block.height());
    }
}

/// Shorthand for a validator index.
pub(super) fn v(i: u16) -> ValidatorIndex {
    ValidatorIndex(i)
}

/// A message from validator `from`.
pub(super) fn from(from: u16, msg: Msg) -> Input {
    Input::Message { from: v(from), msg }
}

/// The blocks persisted in `outputs`, in order.
pub(super) fn persisted_blocks(outputs: &[Output]) -> Vec<Arc<Block>> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Persist(Persist::Block(b)) => Some(Arc::clone(b)),
            _ => None,
        })
        .collect()
}

/// The last safety state persisted in `outputs`.
pub(super) fn last_safety(outputs: &[Output]) -> Option<SafetyState> {
    outputs.iter().rev().find_map(|o| match o {
        Output::Persist(Persist::Safety(s)) => Some(s.clone()),
        _ => None,
    })
}

/// Four validators and their keys; `keys[i]` is `ValidatorIndex(i)`.
pub(super) struct Net {
    pub(super) chain: Chain,
    keys: Vec<SigningKey>,
}

impl Net {
    pub(super) fn new() -> Self {
        let mut keys: Vec<SigningKey> = (1..=4u8)
            .map(|i| SigningKey::from_bytes(&[i; 32]))
            .collect();
        let validators = ValidatorSet::new(keys.iter().map(SigningKey::verifying_key))
            .expect("four distinct keys");
        keys.sort_by_key(|k| validators.index_of(&k.verifying_key()));
        let chain = Chain::new(validators, Block::genesis(0, b"replica tests".to_vec()));
        Self { chain, keys }
    }

    pub(super) fn key(&self, i: ValidatorIndex) -> &SigningKey {
        &self.keys[usize::from(i.0)]
    }

    /// A fresh replica for validator `me` with the default config.
    pub(super) fn replica(&self, me: ValidatorIndex) -> Replica<TestApp> {
        self.replica_with(me, Config::default())
    }

    pub(super) fn replica_with(&self, me: ValidatorIndex, config: Config) -> Replica<TestApp> {
        Replica::new(
            self.chain.clone(),
            self.key(me).clone(),
            config,
            TestApp::default(),
        )
        .expect("a validator with a valid config")
    }

    pub(super) fn genesis(&self) -> Block {
        self.chain.genesis().clone()
    }

    pub(super) fn genesis_qc(&self) -> QuorumCert {
        self.chain.genesis_qc()
    }

    /// A valid child of `parent` in `view`, justified by `justify` (which must certify
    /// `parent`), proposed by the young-chain leader of `view` at time `ts`.
    pub(super) fn child(&self, parent: &Block, justify: QuorumCert, view: u64, ts: u64) -> Block {
        assert_eq!(
            justify.block,
            parent.hash(),
            "justify must certify the parent"
        );
        let proposer = v(u16::try_from(view % 4).expect("small"));
        Block::new(
            parent.height() + 1,
            view,
            proposer,
            ts,
            justify,
            (parent.height() + 1).to_be_bytes().to_vec(),
        )
    }

    /// `block` signed by its proposer.
    pub(super) fn proposal(&self, block: Block, tc: Option<TimeoutCert>) -> Msg {
        let key = self.key(block.proposer()).clone();
        Msg::Proposal(Proposal::new(&self.chain, &key, block, tc))
    }

    pub(super) fn vote(&self, voter: u16, block: &Block) -> Vote {
        Vote::new(
            &self.chain,
            self.key(v(voter)),
            v(voter),
            block.view(),
            block.height(),
            block.hash(),
        )
    }

    /// A QC for `block` signed by `signers` (ascending).
    pub(super) fn qc(&self, block: &Block, signers: &[u16]) -> QuorumCert {
        QuorumCert {
            block: block.hash(),
            view: block.view(),
            height: block.height(),
            signatures: signers
                .iter()
                .map(|&i| (v(i), self.vote(i, block).signature))
                .collect(),
        }
    }

    pub(super) fn timeout(&self, sender: u16, view: u64, high_qc: QuorumCert) -> Timeout {
        Timeout::new(
            &self.chain,
            self.key(v(sender)),
            v(sender),
            view,
            high_qc,
            None,
        )
    }

    /// A TC for `view` signed by `signers` (ascending), each reporting `high_qc`.
    pub(super) fn tc(&self, view: u64, high_qc: QuorumCert, signers: &[u16]) -> TimeoutCert {
        let msg = timeout_message(&self.chain, view, high_qc.view);
        TimeoutCert {
            view,
            entries: signers
                .iter()
                .map(|&i| (v(i), high_qc.view, sign(self.key(v(i)), &msg)))
                .collect(),
            high_qc,
        }
    }
}
