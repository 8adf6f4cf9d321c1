//! The node's driver task.

use std::future::Future;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{error, info, warn};
use voltmesh_engine::ParticipantId;
use voltmesh_wire::api::{
    Balance, BillsView, CommunityView, CorrectionsView, ParticipantView, PendingProposalView,
    ProposalAnswer, ScheduledRules, SettlementView, SettlementsView, SnapshotView, StatusView,
};
use voltmesh_wire::{Genesis, OrderRejection, SignedOrder};

use super::api::{self, ApiRequest};
use super::epochs::{self, Peers};
use super::metrics::{Health, NodeMetrics, NodeMetricsError};
use super::timer::TickTimer;
use super::NodeConfig;
use crate::chain::{chain_of, epoch_chain, validator_set};
use crate::index::Index;
use crate::ledger::{LedgerApp, LedgerState};
use crate::net;
use crate::protocol::{
    committed_sync_response, App, Chain, Config as ReplicaConfig, Input, Msg, Output, Persist,
    Replica, RetiredApp, SafetyState, ValidatorIndex,
};
use crate::state_sync;
use crate::store::{Store, StoreError};

/// Capacity of the API → driver queue.
const API_QUEUE: usize = 1024;

/// `GET /v1/snapshot` reads the store again after this many committed blocks.
const SNAPSHOT_REFRESH_BLOCKS: u64 = 16;

/// Most committed blocks one pruning pass deletes (one transaction, after a snapshot): a node
/// switched to pruning mode on a long chain works its backlog off a slice at a time.
const PRUNE_PER_SNAPSHOT: usize = 4_096;

/// Why a node stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The genesis file is unusable.
    #[error("genesis {path}: {message}")]
    Genesis {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The key file is unusable.
    #[error("key file: {0}")]
    Key(#[from] net::KeyFileError),
    /// This node's key is not a validator of the epoch its ledger is in.
    #[error("this node's key is not one of the validators of epoch {0}")]
    NotAValidator(u64),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The store cannot be used at startup: corrupt, truncated, or its committed chain broken
    /// (audit L5).
    #[error("store {path}: {source}")]
    StoreFile {
        /// The database file.
        path: String,
        /// What is wrong.
        source: StoreError,
    },
    /// The store holds committed blocks but no safety record: it was wiped in part or restored
    /// from a backup, and this node no longer knows what it signed (audit M5). Start it with
    /// `untrusted_safety_record = true` (or `voltmesh node --untrusted-safety-record`) to
    /// rejoin without signing until peers prove it is past every view it could have signed in.
    #[error(
        "store {path} holds {committed} committed blocks but no safety record (what this \
         validator voted is lost); refusing to start. If the store was restored or partly \
         lost, start with untrusted_safety_record = true (voltmesh node \
         --untrusted-safety-record)"
    )]
    LostSafetyRecord {
        /// The database file.
        path: String,
        /// How many committed blocks it holds.
        committed: usize,
    },
    /// The network could not start.
    #[error("network: {0}")]
    Net(#[from] net::NetError),
    /// The replica could not start.
    #[error("consensus: {0}")]
    Replica(String),
    /// The metrics configuration is unusable.
    #[error("metrics: {0}")]
    Metrics(#[from] NodeMetricsError),
    /// A committed block did not execute on this node's ledger (audit L9): it stops rather than
    /// serve a state that diverged from the chain.
    #[error("ledger halted: {0}")]
    LedgerHalted(String),
    /// The API address could not be bound.
    #[error("api {addr}: {source}")]
    Api {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Wall-clock milliseconds: the only wall-clock read; the replica and the ledger get time from
/// here or from block timestamps. Timers run on the monotonic clock (see `timer.rs`).
#[allow(clippy::disallowed_methods)] // the one allowed clock read (consensus/clippy.toml)
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Runs a node until `shutdown` completes.
///
/// # Errors
/// [`NodeError`] if the node cannot start, or its store fails while running (it stops rather
/// than vote without durable safety state).
///
/// # Cancel safety
/// Dropping the future stops the node without a clean shutdown of the API server; prefer
/// completing `shutdown`.
pub async fn run(config: NodeConfig, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
    let genesis_text = std::fs::read(&config.genesis).map_err(|e| NodeError::Genesis {
        path: config.genesis.display().to_string(),
        message: e.to_string(),
    })?;
    let genesis = Genesis::from_json(&String::from_utf8_lossy(&genesis_text)).map_err(|e| {
        NodeError::Genesis {
            path: config.genesis.display().to_string(),
            message: e.to_string(),
        }
    })?;
    let genesis = Arc::new(genesis);
    let keypair = net::keyfile::load_keypair(&config.key_file)?;
    let signing = SigningKey::from_bytes(&net::keyfile::secret_key_bytes(&keypair)?);

    let store_path = Store::path_in(&config.data_dir).display().to_string();
    let store_file = |source: StoreError| NodeError::StoreFile {
        path: store_path.clone(),
        source,
    };
    let store =
        Store::open_with(&config.data_dir, config.storage.keep_blocks > 0).map_err(store_file)?;
    store.bind_genesis(&genesis_text).map_err(store_file)?;
    let genesis_chain = chain_of(&genesis, &genesis_text)?;

    let replica_config = ReplicaConfig {
        min_block_interval_ms: config.block_interval_ms,
        idle_block_interval_ms: config.idle_block_interval_ms,
        test_fault: config.testing.test_fault(),
        ..ReplicaConfig::default()
    };
    // Stores written by older versions are brought to the current layout once (audit H2: dead
    // forks below the committed height deleted).
    let pruned = store.upgrade_layout().map_err(store_file)?;
    if pruned > 0 {
        info!(
            blocks = pruned,
            "deleted stored blocks of dead forks below the committed height"
        );
    }
    // An empty store (a new or wiped node) starts from a verified snapshot when it can.
    let mut state_synced = false;
    if store.committed_height().map_err(store_file)? == 0 && !config.state_sync.peers.is_empty() {
        match state_sync::fetch(&config.state_sync.peers, &genesis_chain, &genesis, &signing).await
        {
            Ok(snapshot) => {
                store
                    .install_snapshot(&snapshot.block, &snapshot.bytes)
                    .map_err(store_file)?;
                info!(
                    height = snapshot.block.height(),
                    "starting from a verified ledger snapshot"
                );
                state_synced = true;
            }
            Err(e) => warn!(cause = %e, "no usable snapshot; replaying the chain from genesis"),
        }
    }
    let base = store.base().map_err(store_file)?;
    // The store holds the chain from genesis (the API index then holds every bill).
    let full_history = base.is_none();
    // What the replica needs: the retained committed tail and the uncommitted blocks.
    let mut recovered = store
        .recover(replica_config.retained_committed_blocks)
        .map_err(store_file)?;
    for (key, cause) in &recovered.quarantined {
        warn!(block = %key, %cause, store = %store_path, "skipping an undecodable uncommitted block");
    }
    // A state-synced store without a safety record never voted since the sync, but its key may
    // have before the wipe: it starts guarded, like `untrusted_safety_record`.
    let untrusted = config.untrusted_safety_record
        || state_synced
        || (base.is_some() && recovered.safety.is_none());
    if recovered.safety.is_none() && recovered.committed_height > 0 && !untrusted {
        return Err(NodeError::LostSafetyRecord {
            path: store_path,
            committed: usize::try_from(recovered.committed_height).unwrap_or(usize::MAX),
        });
    }
    // Rebuild the ledger state from the newest stored snapshot the API index has reached (or
    // from genesis), replaying only the committed chain above it, streamed from the store a
    // chunk at a time; the index catches up on the way.
    let mut index = Index::open(store.database()).map_err(store_file)?;
    let start = replay_start(&store, &genesis, base, index.height()).map_err(store_file)?;
    let (mut app, start) = match start {
        Some((block, state)) => (
            LedgerApp::from_snapshot(Arc::clone(&genesis), &block, state),
            Some(block),
        ),
        None => (
            LedgerApp::new(Arc::clone(&genesis), genesis_chain.genesis()),
            None,
        ),
    };
    // One pass: each block is checked to extend the one below it, then replayed.
    store
        .for_each_linked(start.as_ref(), genesis_chain.genesis().hash(), |block| {
            app.commit(&block);
            // A validator change ended the epoch at this block: the next are the next epoch's.
            if app.epoch_ended().is_some() {
                app.enter_epoch();
            }
            for committed in app.take_committed() {
                index.apply(&committed)?;
            }
            Ok::<(), StoreError>(())
        })
        .map_err(store_file)?;
    if let Some(reason) = app.halted() {
        return Err(NodeError::LedgerHalted(reason.to_owned()));
    }
    // The chain of the epoch the ledger is in, derived from genesis one root after the other.
    let epochs = app.committed().community().epochs().to_vec();
    let chain = epoch_chain(&genesis_chain, &epochs, |epoch| {
        match store.epoch_root(epoch.number).map_err(store_file)? {
            Some(root) => Ok(Some(root)),
            None => store.committed_block(epoch.root_height).map_err(store_file),
        }
    })?;
    let epoch = epochs.last().map_or(0, |e| e.number);
    if epoch > 0 && store.epoch_root(epoch).map_err(store_file)?.is_none() {
        // Stopped between committing the epoch's root and switching: switch now (nothing was
        // signed in the new epoch yet), and read back what the new epoch's replica takes.
        info!(epoch, "finishing the switch to the new validator set");
        store
            .start_epoch(
                epoch,
                chain.genesis(),
                &SafetyState::initial(chain.genesis_qc()),
            )
            .map_err(store_file)?;
        recovered = store
            .recover(replica_config.retained_committed_blocks)
            .map_err(store_file)?;
    }
    let me = chain
        .validators()
        .index_of(&signing.verifying_key())
        .ok_or(NodeError::NotAValidator(epoch))?;
    // The replica of this epoch is rooted at the epoch's root: older blocks are the epochs
    // before's.
    let root_height = chain.genesis().height();
    recovered.blocks.retain(|b| b.height() >= root_height);
    let last_committed = recovered
        .last_committed
        .unwrap_or_else(|| chain.genesis().hash());
    let replica = match (recovered.safety, untrusted) {
        (safety, true) => {
            warn!(store = %store_path, "untrusted safety record: signing nothing until peers show this node is past every view it could have signed in");
            Replica::restore_untrusted(
                chain.clone(),
                signing.clone(),
                replica_config.clone(),
                app,
                safety.unwrap_or_else(|| SafetyState::initial(chain.genesis_qc())),
                recovered.blocks,
                last_committed,
            )
        }
        (Some(safety), false) => Replica::restore(
            chain.clone(),
            signing.clone(),
            replica_config.clone(),
            app,
            safety,
            recovered.blocks,
            last_committed,
        ),
        (None, false) => Replica::new(chain.clone(), signing.clone(), replica_config.clone(), app),
    }
    .map_err(|e| NodeError::Replica(e.to_string()))?;
    info!(validator = %me, height = recovered.committed_height, "node starting");
    let metrics = NodeMetrics::start(
        config.metrics.to_config(|key| std::env::var(key).ok()),
        &genesis,
        config.metrics.node.as_deref(),
        me.0,
        (store.database(), &index, full_history),
    )?;

    // Network: the adapter numbers validators by their position in the list it is given: the
    // epoch's validators in consensus order (`epochs.rs` translates indices).
    let listen: net::Multiaddr = config
        .listen
        .parse()
        .map_err(|e: libp2p::multiaddr::Error| NodeError::Genesis {
            path: "listen".into(),
            message: e.to_string(),
        })?;
    let current = epochs
        .last()
        .map_or(genesis.validators.as_slice(), |e| e.validators.as_slice());
    let (validators, peers) = epochs::net_validators(&chain, current, &[])?;
    let (client, events, event_loop) = net::new(net::NetConfig::new(
        keypair.clone(),
        listen.clone(),
        validators,
        genesis.neighborhood.clone(),
    ))?;
    let net_task = tokio::spawn(event_loop.run());

    let (api_tx, api_rx) = mpsc::channel(API_QUEUE);
    let listener = tokio::net::TcpListener::bind(config.api)
        .await
        .map_err(|source| NodeError::Api {
            addr: config.api,
            source,
        })?;
    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let api_limits = config.api_limits.clone();
    let api_task = tokio::spawn(async move {
        let stopped = async {
            let _ = api_stopped.await;
        };
        if let Err(e) = api::serve(listener, api_tx, &api_limits, stopped).await {
            warn!(cause = %e, "api server stopped");
        }
    });
    info!(api = %config.api, listen = %config.listen, "node listening");

    let mut driver = Driver {
        replica,
        retired: None,
        store,
        index,
        net: client,
        net_task,
        peers,
        net_rebuild: None,
        keypair,
        listen,
        signing,
        replica_config,
        genesis,
        timer: TickTimer::default(),
        metrics,
        keep_blocks: config.storage.keep_blocks,
        snapshot_served: None,
    };
    let result = driver.run(events, api_rx, shutdown).await;
    if driver.metrics.is_enabled() {
        driver.metrics.finish().await.log_stopped();
    }
    let _ = stop_api.send(());
    let _ = api_task.await;
    driver.net_task.abort();
    result
}

/// Where a restart replays the ledger from: the newest stored snapshot at or below the API
/// index's height (so the index misses no block), else the base of a state-synced store, else
/// genesis (`None`).
fn replay_start(
    store: &Store,
    genesis: &Genesis,
    base: Option<crate::protocol::Block>,
    index_height: u64,
) -> Result<Option<(crate::protocol::Block, LedgerState)>, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        what: "snapshot",
        detail,
    };
    let heights = store.snapshot_heights()?;
    let base_height = base.as_ref().map(crate::protocol::Block::height);
    let chosen = heights
        .iter()
        .copied()
        .find(|h| *h <= index_height && base_height.is_none_or(|b| *h >= b))
        .or(base_height);
    let Some(height) = chosen else {
        return Ok(None);
    };
    let bytes = store
        .snapshot(height)?
        .ok_or_else(|| corrupt(format!("no stored snapshot at height {height}")))?;
    let block = store
        .committed_block(height)?
        .ok_or_else(|| corrupt(format!("no committed block at height {height}")))?;
    let state = LedgerState::from_snapshot(genesis, &bytes)
        .map_err(|e| corrupt(format!("height {height}: {e}")))?;
    Ok(Some((block, state)))
}

struct Driver {
    /// The replica of the epoch the ledger is in (retired in place if this node left the
    /// validator set).
    replica: Replica<LedgerApp>,
    /// The replica of the epoch before, retired: it answers that epoch's laggards.
    retired: Option<Replica<RetiredApp>>,
    store: Store,
    index: Index,
    net: net::Client,
    net_task: tokio::task::JoinHandle<()>,
    /// Translates the adapter's indices ([`epochs`]).
    peers: Peers,
    /// After an epoch switch: the adapter's new peer list, for [`Driver::run`] to restart the
    /// adapter with.
    net_rebuild: Option<(Vec<net::Validator>, Peers)>,
    keypair: net::Keypair,
    listen: net::Multiaddr,
    signing: SigningKey,
    replica_config: ReplicaConfig,
    genesis: Arc<Genesis>,
    timer: TickTimer,
    metrics: NodeMetrics,
    /// `[storage] keep_blocks` (0: full history).
    keep_blocks: u64,
    /// The snapshot last served, and the committed height it was read at.
    snapshot_served: Option<(u64, Option<Arc<SnapshotView>>)>,
}

impl Driver {
    async fn run(
        &mut self,
        events: net::Events,
        mut api: mpsc::Receiver<ApiRequest>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), NodeError> {
        let (mut consensus, mut orders) = events.split();
        tokio::pin!(shutdown);
        let outputs = self.replica.handle(now_ms(), Input::Tick);
        self.execute(outputs)?;
        loop {
            if let Some((validators, peers)) = self.net_rebuild.take() {
                (consensus, orders) = self.restart_net(validators, peers).await?.split();
            }
            let deadline = self.timer.deadline(Instant::now());
            // Not `biased`: tokio picks a ready branch at random, so consensus messages, gossiped
            // orders, API requests and the timer each get served under load (audit M1); one
            // validator's flood is already confined to its own queue by the adapter.
            tokio::select! {
                () = &mut shutdown => {
                    info!("node stopping");
                    return Ok(());
                }
                Some(event) = consensus.recv() => self.on_network(event)?,
                Some(event) = orders.recv() => self.on_network(event)?,
                Some(request) = api.recv() => self.on_api(request)?,
                () = tokio::time::sleep_until(deadline) => {
                    self.timer.fired();
                    let outputs = self.replica.handle(now_ms(), Input::Tick);
                    self.execute(outputs)?;
                }
            }
        }
    }

    fn on_network(&mut self, event: net::Event) -> Result<(), NodeError> {
        match event {
            net::Event::Message { from, bytes, .. } => self.on_message(from, &bytes)?,
            net::Event::Order { bytes, .. } => {
                // Gossiped orders are checked like any other; refusals are normal (races). A
                // message holds one order, or a JSON array of the orders one API batch admitted.
                let admitted = self
                    .replica
                    .app_mut()
                    .submit_batch(super::gossip::decode(&bytes), now_ms())
                    .iter()
                    .any(Result::is_ok);
                if admitted {
                    self.wake_if_quiet()?;
                }
            }
            net::Event::PeerConnected { validator, .. } => info!(%validator, "peer connected"),
            net::Event::PeerDisconnected { validator, .. } => {
                info!(%validator, "peer disconnected")
            }
            net::Event::Listening { address } => info!(%address, "p2p listening"),
        }
        Ok(())
    }

    /// A consensus frame from the adapter's validator `from`: to the replica of its epoch, if
    /// `from` is one of that epoch's validators; dropped otherwise.
    fn on_message(&mut self, from: net::ValidatorIndex, bytes: &[u8]) -> Result<(), NodeError> {
        let Some((epoch, bytes)) = epochs::unframe(bytes) else {
            warn!(validator = %from, "consensus message without an epoch");
            return Ok(());
        };
        let msg = match Msg::decode(bytes) {
            Ok(msg) => msg,
            Err(e) => {
                warn!(validator = %from, cause = %e, "undecodable consensus message");
                return Ok(());
            }
        };
        if epoch == self.replica.chain().epoch() {
            let Some(from) = self.peers.of_net(self.replica.chain(), from) else {
                return Ok(());
            };
            let outputs = self.replica.handle(now_ms(), Input::Message { from, msg });
            return self.execute(outputs);
        }
        if let Some(retired) = &mut self.retired {
            if epoch == retired.chain().epoch() {
                let Some(from) = self.peers.of_net(retired.chain(), from) else {
                    return Ok(());
                };
                let outputs = retired.handle(now_ms(), Input::Message { from, msg });
                let chain = retired.chain().clone();
                return self.execute_retired(&chain, outputs);
            }
        }
        tracing::debug!(validator = %from, epoch, "consensus message of another epoch dropped");
        Ok(())
    }

    /// Sends `msg` to `chain`'s validator `to`, framed with `chain`'s epoch.
    fn send(&self, chain: &Chain, to: ValidatorIndex, msg: &Msg) {
        if let Some(to) = self.peers.net_of(chain, to) {
            let _ = self
                .net
                .try_send(to, epochs::frame(chain.epoch(), &msg.encode()));
        }
    }

    /// Sends `msg` to every other validator of `chain`.
    fn broadcast(&self, chain: &Chain, me: ValidatorIndex, msg: &Msg) {
        let bytes = epochs::frame(chain.epoch(), &msg.encode());
        for v in chain.validators().indices().filter(|v| *v != me) {
            if let Some(to) = self.peers.net_of(chain, v) {
                let _ = self.net.try_send(to, bytes.clone());
            }
        }
    }

    /// Serves committed blocks `from_height..=to_height` to `chain`'s validator `to`.
    fn serve_committed(
        &self,
        chain: &Chain,
        to: ValidatorIndex,
        from_height: u64,
        to_height: u64,
    ) -> Result<(), NodeError> {
        let blocks = self
            .store
            .committed_blocks(from_height, to_height.saturating_add(1))?;
        // A pruned store may no longer hold `from_height`: then say nothing, and the peer asks
        // another validator.
        let held = blocks.first().is_some_and(|b| b.height() == from_height);
        if let Some(msg) = committed_sync_response(blocks).filter(|_| held) {
            self.send(chain, to, &msg);
        }
        Ok(())
    }

    /// The retired replica's outputs: answers to laggards of its epoch.
    fn execute_retired(&mut self, chain: &Chain, outputs: Vec<Output>) -> Result<(), NodeError> {
        let me = self
            .retired
            .as_ref()
            .map_or(ValidatorIndex(0), Replica::index);
        for output in outputs {
            match output {
                Output::Send(to, msg) => self.send(chain, to, &msg),
                Output::Broadcast(msg) => self.broadcast(chain, me, &msg),
                Output::ServeCommitted {
                    to,
                    from_height,
                    to_height,
                } => self.serve_committed(chain, to, from_height, to_height)?,
                // A retired replica persists, commits and schedules nothing.
                Output::Persist(_) | Output::Commit(_) | Output::ScheduleTick(_) => {}
            }
        }
        Ok(())
    }

    /// The ledger ended the epoch (its validator change committed): retire this epoch's
    /// replica, start the next epoch's on the same ledger (if this node is one of its
    /// validators), and plan the adapter's new peers.
    fn switch_epoch(&mut self) -> Result<(), NodeError> {
        let Some(next) = self.replica.app().epoch_ended().cloned() else {
            return Ok(());
        };
        let root = self
            .store
            .committed_block(next.root_height)?
            .ok_or_else(|| {
                NodeError::Replica(format!(
                    "the block ending epoch {} (height {}) is not in the store",
                    next.number - 1,
                    next.root_height
                ))
            })?;
        let previous = self.community_validators();
        let chain = self
            .replica
            .chain()
            .next_epoch(root.clone(), validator_set(&next.validators)?);
        self.replica.app_mut().enter_epoch();
        self.store.start_epoch(
            next.number,
            &root,
            &SafetyState::initial(chain.genesis_qc()),
        )?;
        let member = chain
            .validators()
            .index_of(&self.signing.verifying_key())
            .is_some();
        if member {
            let placeholder = LedgerApp::new(Arc::clone(&self.genesis), chain.genesis());
            let app = std::mem::replace(self.replica.app_mut(), placeholder);
            let replica = Replica::new(
                chain.clone(),
                self.signing.clone(),
                self.replica_config.clone(),
                app,
            )
            .map_err(|e| NodeError::Replica(e.to_string()))?;
            let (retired, _placeholder) =
                std::mem::replace(&mut self.replica, replica).retire_into_parts();
            self.retired = Some(retired);
            info!(epoch = next.number, height = next.root_height, validators = next.validators.len(), validator = %self.replica.index(), "switched to the new validator set");
        } else {
            // Not a validator any more: the replica answers the ended epoch's laggards; the
            // ledger stays at the epoch's last block.
            self.replica.retire();
            self.retired = None;
            warn!(epoch = next.number, height = next.root_height, "this node is not a validator of the new set: it stops at the end of its epoch and only answers laggards");
        }
        let net_chain = if member {
            chain
        } else {
            self.replica.chain().clone()
        };
        let (current, before) = if member {
            (next.validators, previous)
        } else {
            (previous, next.validators)
        };
        self.net_rebuild = Some(epochs::net_validators(&net_chain, &current, &before)?);
        if member {
            let outputs = self.replica.handle(now_ms(), Input::Tick);
            self.execute(outputs)?;
        }
        Ok(())
    }

    /// The validators (with their addresses) of the epoch the replica runs, as the ledger's
    /// epochs record them.
    fn community_validators(&self) -> Vec<voltmesh_wire::GenesisValidator> {
        let epoch = self.replica.chain().epoch();
        self.replica
            .app()
            .committed()
            .community()
            .epochs()
            .iter()
            .find(|e| e.number == epoch)
            .map_or_else(|| self.genesis.validators.clone(), |e| e.validators.clone())
    }

    /// Stops the network adapter and starts it again with `validators` (after an epoch
    /// switch): connections drop and are dialed again; consensus messages in flight are lost,
    /// which the protocol's timeouts and sync recover.
    async fn restart_net(
        &mut self,
        validators: Vec<net::Validator>,
        peers: Peers,
    ) -> Result<net::Events, NodeError> {
        self.net_task.abort();
        let _ = (&mut self.net_task).await;
        let (client, events, event_loop) = net::new(net::NetConfig::new(
            self.keypair.clone(),
            self.listen.clone(),
            validators,
            self.genesis.neighborhood.clone(),
        ))?;
        self.net_task = tokio::spawn(event_loop.run());
        self.net = client;
        self.peers = peers;
        Ok(events)
    }

    /// Idle pacing: a replica that was waiting on a quiet chain re-judges it now (the mempool
    /// may have gained an order), so that a waiting leader proposes at once.
    fn wake_if_quiet(&mut self) -> Result<(), NodeError> {
        if self.replica.is_quiet() {
            let outputs = self.replica.handle(now_ms(), Input::Tick);
            self.execute(outputs)?;
        }
        Ok(())
    }

    /// Admits an order from the API into the mempool and gossips it; other nodes' mempools get
    /// it by gossip, and a full gossip queue only delays it to whoever proposes next from here.
    fn submit_order(&mut self, order: SignedOrder, now: u64) -> Result<(), OrderRejection> {
        let bytes = serde_json::to_vec(&order).unwrap_or_default();
        let result = self.replica.app_mut().submit(order, now);
        match &result {
            Ok(()) => {
                if let Err(e) = self.net.try_publish_order(bytes) {
                    warn!(cause = %e, "order not gossiped");
                }
            }
            Err(rejection) => self.metrics.order_rejected(rejection),
        }
        result
    }

    /// Admits a batch from the API (signatures checked in one batch) and gossips the admitted
    /// orders as JSON arrays ([`super::gossip`]), so that the other nodes check them in batches
    /// too.
    fn submit_batch(
        &mut self,
        orders: Vec<SignedOrder>,
        now: u64,
    ) -> Vec<Result<(), OrderRejection>> {
        let encoded: Vec<Vec<u8>> = orders
            .iter()
            .map(|o| serde_json::to_vec(o).unwrap_or_default())
            .collect();
        let results = self.replica.app_mut().submit_batch(orders, now);
        let mut admitted = Vec::new();
        for (bytes, result) in encoded.into_iter().zip(&results) {
            match result {
                Ok(()) => admitted.push(bytes),
                Err(rejection) => self.metrics.order_rejected(rejection),
            }
        }
        for message in super::gossip::batch_messages(admitted, super::gossip::GOSSIP_BATCH_BYTES) {
            if let Err(e) = self.net.try_publish_order(message) {
                warn!(cause = %e, "orders not gossiped");
            }
        }
        results
    }

    /// Whether a read may see `participant`'s data (`None`: every participant's).
    fn authorize(
        &self,
        participant: Option<&ParticipantId>,
        auth: &super::api_reads::ReadAuth,
    ) -> Result<(), voltmesh_wire::read::ReadRejection> {
        super::read_access::authorize(
            &self.genesis,
            self.replica.app().committed().community(),
            participant,
            auth,
            now_ms(),
        )
    }

    /// What the reader `auth` describes may see of intervals, blocks and snapshots.
    fn scope(
        &self,
        auth: &super::api_reads::ReadAuth,
    ) -> Result<super::read_access::Scope, voltmesh_wire::read::ReadRejection> {
        super::read_access::Scope::of(
            &self.genesis,
            self.replica.app().committed().community(),
            auth,
            now_ms(),
        )
    }

    fn on_api(&mut self, request: ApiRequest) -> Result<(), NodeError> {
        match request {
            ApiRequest::SubmitOrder(order, reply) => {
                let _ = reply.send(self.submit_order(order, now_ms()));
                self.wake_if_quiet()?;
            }
            ApiRequest::SubmitBatch(orders, reply) => {
                let results = self.submit_batch(orders, now_ms());
                let _ = reply.send(results);
                self.wake_if_quiet()?;
            }
            ApiRequest::OrderStatus(participant, id, interval, auth, reply) => {
                if let Err(refused) = self.authorize(Some(&participant), &auth) {
                    let _ = reply.send(Err(refused));
                    return Ok(());
                }
                let app = self.replica.app();
                let status = self.index.order_status(app, &participant, &id, interval)?;
                let _ = reply.send(Ok(status));
            }
            ApiRequest::Interval(start, auth, reply) => {
                let answer = match self.scope(&auth) {
                    Ok(scope) => Ok(self.index.clearing(start)?.map(|c| scope.clearing(c))),
                    Err(refused) => Err(refused),
                };
                let _ = reply.send(answer);
            }
            ApiRequest::Participant(participant, query, auth, reply) => {
                if let Err(refused) = self.authorize(Some(&participant), &auth) {
                    let _ = reply.send(Err(refused));
                    return Ok(());
                }
                let page = self
                    .index
                    .trades_of(&participant, query.from, query.to, query.limit)?;
                let _ = reply.send(Ok(ParticipantView {
                    balance: Balance {
                        currency: self.genesis.currency,
                        ..self.index.balance_of(&participant)?
                    },
                    trades: page.trades,
                    next_from: page.next_from,
                    participant,
                }));
            }
            ApiRequest::Bills(participant, period, auth, reply) => {
                if let Err(refused) = self.authorize(Some(&participant), &auth) {
                    let _ = reply.send(Err(refused));
                    return Ok(());
                }
                let (bills, next_from) =
                    self.index
                        .bills_of(&participant, period.from, period.to, period.limit)?;
                let _ = reply.send(Ok(BillsView {
                    participant,
                    bills,
                    next_from,
                }));
            }
            ApiRequest::Statement(participant, period, auth, reply) => {
                if let Err(refused) = self.authorize(Some(&participant), &auth) {
                    let _ = reply.send(Err(refused));
                    return Ok(());
                }
                let statement = self.index.statement(
                    &participant,
                    self.genesis.currency,
                    period.from,
                    period.to,
                )?;
                let _ = reply.send(Ok(statement));
            }
            ApiRequest::Settlements(period, reply) => {
                let (settled, next_from) =
                    self.index
                        .settled_page(period.from, period.to, period.limit)?;
                let _ = reply.send(SettlementsView { settled, next_from });
            }
            ApiRequest::Settlement(start, auth, reply) => {
                if let Err(refused) = self.authorize(None, &auth) {
                    let _ = reply.send(Err(refused));
                    return Ok(());
                }
                let view = match self.index.settled_bills(start)? {
                    Some(s) => Some(SettlementView {
                        settled: s.settled,
                        bills: s.bills,
                        corrections: self.index.corrections(start, start.saturating_add(1))?,
                    }),
                    None => None,
                };
                let _ = reply.send(Ok(view));
            }
            ApiRequest::Block(height, auth, reply) => {
                let scope = match self.scope(&auth) {
                    Ok(scope) => scope,
                    Err(refused) => {
                        let _ = reply.send(Err(refused));
                        return Ok(());
                    }
                };
                let block = self.store.committed_block(height)?;
                let view = block
                    .map(|b| api::block_view(&b, &self.index))
                    .transpose()?;
                let _ = reply.send(Ok(view.map(|v| scope.block(v))));
            }
            ApiRequest::Snapshot(auth, reply) => {
                let allowed = self.scope(&auth).and_then(|scope| scope.snapshot(&auth));
                let answer = match allowed {
                    Ok(()) => Ok(self.latest_snapshot()?),
                    Err(refused) => Err(refused),
                };
                let _ = reply.send(answer);
            }
            ApiRequest::SubmitProposal(signed, reply) => {
                let hash = signed.proposal.hash(&self.genesis.neighborhood);
                let kind = signed.proposal.action.kind();
                let result = self
                    .replica
                    .app_mut()
                    .submit_proposal(signed, now_ms())
                    .map(|accepted| ProposalAnswer {
                        hash,
                        approved: accepted.approved,
                        threshold: accepted.threshold,
                    });
                match &result {
                    Ok(answer) => {
                        info!(proposal = %hash, action = kind, approved = answer.approved, threshold = answer.threshold, "governance proposal taken")
                    }
                    Err(rejection) => {
                        info!(proposal = %hash, action = kind, reason = rejection.kind(), "governance proposal refused")
                    }
                }
                let _ = reply.send(result);
                self.wake_if_quiet()?;
            }
            ApiRequest::Community(reply) => {
                let _ = reply.send(self.community_view());
            }
            ApiRequest::Corrections(period, auth, reply) => {
                if let Err(refused) = self.authorize(None, &auth) {
                    let _ = reply.send(Err(refused));
                    return Ok(());
                }
                let (corrections, next_from) =
                    self.index
                        .corrections_page(period.from, period.to, period.limit)?;
                let _ = reply.send(Ok(CorrectionsView {
                    corrections,
                    next_from,
                }));
            }
            ApiRequest::SubmitCorrection(correction, reply) => {
                let digest = correction.digest();
                let id = correction.ticket.id.clone();
                let result = self
                    .replica
                    .app_mut()
                    .submit_correction(correction)
                    .map(|()| digest.clone());
                match &result {
                    Ok(_) => info!(import = %id, digest = %digest, "correction import taken"),
                    Err(rejection) => {
                        info!(import = %id, reason = rejection.kind(), error = %rejection, "correction import refused")
                    }
                }
                let _ = reply.send(result);
                self.wake_if_quiet()?;
            }
            ApiRequest::SubmitDeliveries(deliveries, reply) => {
                let results = self
                    .replica
                    .app_mut()
                    .submit_deliveries(deliveries, now_ms());
                let _ = reply.send(results);
                self.wake_if_quiet()?;
            }
            ApiRequest::Status(reply) => {
                let status = self.replica.status();
                let _ = reply.send(StatusView {
                    neighborhood: self.genesis.neighborhood.clone(),
                    validator: self.replica.index().0,
                    height: status.committed_height,
                    committed_hash: hex::encode(status.committed_hash.0),
                    view: status.view,
                    peers: usize::try_from(self.net.stats().connected_validators)
                        .unwrap_or(usize::MAX),
                    validators: self.replica.chain().validators().len(),
                    last_commit_ms: self.index.last_commit_ms(),
                    mempool: self.replica.app().mempool().len(),
                    orders_committed: self.index.orders_committed(),
                    rejected_proposals: self.replica.stats().rejected_proposals,
                    votes: self.replica.stats().votes,
                });
            }
        }
        Ok(())
    }

    /// The community as the committed ledger says, and the proposals this node holds.
    fn community_view(&self) -> CommunityView {
        let app = self.replica.app();
        let community = app.committed().community();
        let policies = community.policies();
        CommunityView {
            neighborhood: self.genesis.neighborhood.clone(),
            currency: self.genesis.currency,
            height: self.replica.status().committed_height,
            epoch: community.epoch().number,
            validators: community.epoch().validators.clone(),
            policies: policies.clone(),
            rules: community
                .schedule()
                .map(|(from_interval, rules)| ScheduledRules {
                    from_interval,
                    rules: *rules,
                })
                .collect(),
            participants: community.members().clone(),
            prices: community.prices().clone(),
            pending: community
                .pending()
                .iter()
                .map(|(&hash, pending)| PendingProposalView {
                    hash,
                    proposal: pending.proposal.clone(),
                    approved_by: pending.approvals.keys().copied().collect(),
                    threshold: policies
                        .of(pending.proposal.action.scope())
                        .map_or(0, |p| p.threshold),
                })
                .collect(),
            actions_applied: community.actions_applied(),
            held: app.proposals().to_vec(),
        }
    }

    /// Executes the replica's outputs in order; a persist is durable before anything after it.
    fn execute(&mut self, outputs: Vec<Output>) -> Result<(), NodeError> {
        let chain = self.replica.chain().clone();
        let me = self.replica.index();
        // The last block of the epoch, once its validator change committed: the blocks above
        // it in this epoch are never committed on this node (the ledger does not apply them).
        let epoch_end = self.replica.app().epoch_ended().map(|e| e.root_height);
        for output in outputs {
            match output {
                Output::Persist(Persist::Block(block)) => self.store.put_block(&block)?,
                Output::Persist(Persist::Safety(safety)) => self.store.put_safety(&safety)?,
                Output::Send(to, msg) => self.send(&chain, to, &msg),
                Output::Broadcast(msg) => self.broadcast(&chain, me, &msg),
                Output::Commit(block) => {
                    if epoch_end.is_none_or(|end| block.height() <= end) {
                        self.store.commit(&block)?;
                    }
                }
                Output::ServeCommitted {
                    to,
                    from_height,
                    to_height,
                } => self.serve_committed(&chain, to, from_height, to_height)?,
                Output::ScheduleTick(at) => self.timer.schedule(at, now_ms(), Instant::now()),
            }
        }
        for committed in self.replica.app_mut().take_committed() {
            info!(
                height = committed.height,
                orders = committed.orders.len(),
                clearings = committed.clearings.len(),
                "committed"
            );
            self.index.apply(&committed)?;
            if let Some(snapshot) = &committed.snapshot {
                self.store.put_snapshot(committed.height, snapshot)?;
                self.prune(committed.height)?;
            }
            if self.metrics.is_enabled() {
                let health = self.health();
                self.metrics
                    .committed(&committed, &self.index, now_ms(), health);
            }
        }
        if let Some(reason) = self.replica.app().halted() {
            error!(%reason, "the ledger halted; stopping the node");
            return Err(NodeError::LedgerHalted(reason.to_owned()));
        }
        self.switch_epoch()?;
        let now = now_ms();
        if self.metrics.health_due(now) {
            let health = self.health();
            self.metrics.health(now, health);
        }
        Ok(())
    }

    /// Pruning mode (`[storage] keep_blocks`): after a snapshot at `tip`, deletes committed
    /// blocks more than `keep_blocks` below it, never above the oldest stored snapshot (a
    /// restart replays from a stored snapshot and needs the blocks above it).
    fn prune(&mut self, tip: u64) -> Result<(), NodeError> {
        if self.keep_blocks == 0 {
            return Ok(());
        }
        let Some(oldest) = self.store.snapshot_heights()?.last().copied() else {
            return Ok(());
        };
        let below = oldest.min(tip.saturating_sub(self.keep_blocks));
        let deleted = self
            .store
            .prune_committed_below(below, PRUNE_PER_SNAPSHOT)?;
        if deleted > 0 {
            info!(deleted, below, "pruned committed blocks");
        }
        Ok(())
    }

    /// The snapshot `GET /v1/snapshot` serves: read from the store (the state and up to
    /// [`state_sync`]'s proof search of blocks) at most once per [`SNAPSHOT_REFRESH_BLOCKS`]
    /// committed blocks, so a flood of requests costs the driver nothing more.
    fn latest_snapshot(&mut self) -> Result<Option<Arc<SnapshotView>>, NodeError> {
        let height = self.replica.status().committed_height;
        let fresh = self
            .snapshot_served
            .as_ref()
            .is_some_and(|(at, _)| height < at.saturating_add(SNAPSHOT_REFRESH_BLOCKS));
        if !fresh {
            let view = state_sync::latest_snapshot(&self.store)?.map(Arc::new);
            self.snapshot_served = Some((height, view));
        }
        Ok(self.snapshot_served.as_ref().and_then(|(_, v)| v.clone()))
    }

    /// The node's consensus health for metrics.
    fn health(&self) -> Health {
        let status = self.replica.status();
        Health {
            height: status.committed_height,
            view: status.view,
            peers: self.net.stats().connected_validators,
            pending_orders: self.replica.app().mempool().len(),
            rejected_proposals: self.replica.stats().rejected_proposals,
        }
    }
}
