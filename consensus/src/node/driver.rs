//! The node's driver task.

use std::future::Future;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{error, info, warn};
use voltmesh_wire::api::{
    Balance, CommunityView, ParticipantView, PendingProposalView, ProposalAnswer, ScheduledRules,
    SnapshotView, StatusView,
};
use voltmesh_wire::governance::{Action, GovernanceRejection};
use voltmesh_wire::{Genesis, OrderRejection, SignedOrder};

use super::api::{self, ApiRequest};
use super::metrics::{Health, NodeMetrics, NodeMetricsError};
use super::timer::TickTimer;
use super::NodeConfig;
use crate::chain::chain_of;
use crate::index::Index;
use crate::ledger::{LedgerApp, LedgerState};
use crate::net;
use crate::protocol::{
    committed_sync_response, Config as ReplicaConfig, Input, Msg, Output, Persist, Replica,
    SafetyState,
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
    /// This node's key is not a genesis validator.
    #[error("this node's key is not one of the genesis validators")]
    NotAValidator,
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
    let chain = chain_of(&genesis, &genesis_text)?;
    let me = chain
        .validators()
        .index_of(&signing.verifying_key())
        .ok_or(NodeError::NotAValidator)?;

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
        match state_sync::fetch(&config.state_sync.peers, &chain, &genesis).await {
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
    // What the replica needs: the retained committed tail and the uncommitted blocks.
    let recovered = store
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
        None => (LedgerApp::new(Arc::clone(&genesis), chain.genesis()), None),
    };
    // One pass: each block is checked to extend the one below it, then replayed.
    store
        .for_each_linked(start.as_ref(), chain.genesis().hash(), |block| {
            crate::protocol::App::commit(&mut app, &block);
            for committed in app.take_committed() {
                index.apply(&committed)?;
            }
            Ok::<(), StoreError>(())
        })
        .map_err(store_file)?;
    if let Some(reason) = app.halted() {
        return Err(NodeError::LedgerHalted(reason.to_owned()));
    }
    let last_committed = recovered
        .last_committed
        .unwrap_or_else(|| chain.genesis().hash());
    let replica = match (recovered.safety, untrusted) {
        (safety, true) => {
            warn!(store = %store_path, "untrusted safety record: signing nothing until peers show this node is past every view it could have signed in");
            Replica::restore_untrusted(
                chain.clone(),
                signing,
                replica_config,
                app,
                safety.unwrap_or_else(|| SafetyState::initial(chain.genesis_qc())),
                recovered.blocks,
                last_committed,
            )
        }
        (Some(safety), false) => Replica::restore(
            chain.clone(),
            signing,
            replica_config,
            app,
            safety,
            recovered.blocks,
            last_committed,
        ),
        (None, false) => Replica::new(chain.clone(), signing, replica_config, app),
    }
    .map_err(|e| NodeError::Replica(e.to_string()))?;
    info!(validator = %me, height = recovered.committed_height, "node starting");
    let metrics = NodeMetrics::start(
        config.metrics.to_config(|key| std::env::var(key).ok()),
        &genesis,
        config.metrics.node.as_deref(),
        me.0,
    )?;

    // Network: the adapter numbers validators by their position in the list it is given, so
    // list them in the consensus set's order (keys sorted by bytes); then a network index is the
    // protocol's `ValidatorIndex` and nothing is translated (see `net/validator.rs`).
    let listen: net::Multiaddr = config
        .listen
        .parse()
        .map_err(|e: libp2p::multiaddr::Error| NodeError::Genesis {
            path: "listen".into(),
            message: e.to_string(),
        })?;
    let mut validators = Vec::with_capacity(genesis.validators.len());
    for (i, v) in genesis.validators.iter().enumerate() {
        let bad = |message: String| NodeError::Genesis {
            path: config.genesis.display().to_string(),
            message,
        };
        let key = v
            .public_key
            .verifying_key()
            .map_err(|e| bad(format!("validator {i} key: {e}")))?;
        let index = chain
            .validators()
            .index_of(&key)
            .ok_or(NodeError::NotAValidator)?;
        let public_key = libp2p::identity::ed25519::PublicKey::try_from_bytes(key.as_bytes())
            .map_err(|e| bad(format!("validator {i} key: {e}")))?;
        let addr = v
            .address
            .parse()
            .map_err(|e: libp2p::multiaddr::Error| bad(format!("validator {i} address: {e}")))?;
        validators.push((index, net::Validator { public_key, addr }));
    }
    validators.sort_by_key(|(index, _)| *index);
    // The consensus set is built from exactly these keys, so the sorted indices are 0..n.
    if validators
        .iter()
        .zip(0u16..)
        .any(|((index, _), position)| index.0 != position)
    {
        return Err(NodeError::Genesis {
            path: config.genesis.display().to_string(),
            message: "validator keys do not match the consensus validator set".into(),
        });
    }
    let validators = validators.into_iter().map(|(_, v)| v).collect();
    let (client, events, event_loop) = net::new(net::NetConfig::new(
        keypair,
        listen,
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
        store,
        index,
        net: client,
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
    net_task.abort();
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
    replica: Replica<LedgerApp>,
    store: Store,
    index: Index,
    net: net::Client,
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
            net::Event::Message { from, bytes, .. } => match Msg::decode(&bytes) {
                Ok(msg) => {
                    let outputs = self.replica.handle(now_ms(), Input::Message { from, msg });
                    self.execute(outputs)?;
                }
                Err(e) => warn!(validator = %from, cause = %e, "undecodable consensus message"),
            },
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
            ApiRequest::OrderStatus(participant, id, interval, reply) => {
                let app = self.replica.app();
                let _ = reply.send(self.index.order_status(app, &participant, &id, interval)?);
            }
            ApiRequest::Interval(start, reply) => {
                let _ = reply.send(self.index.clearing(start)?);
            }
            ApiRequest::Participant(participant, query, reply) => {
                let page = self
                    .index
                    .trades_of(&participant, query.from, query.to, query.limit)?;
                let _ = reply.send(ParticipantView {
                    balance: Balance {
                        currency: self.genesis.currency,
                        ..self.index.balance_of(&participant)?
                    },
                    trades: page.trades,
                    next_from: page.next_from,
                    participant,
                });
            }
            ApiRequest::Block(height, reply) => {
                let block = self.store.committed_block(height)?;
                let view = block
                    .map(|b| api::block_view(&b, &self.index))
                    .transpose()?;
                let _ = reply.send(view);
            }
            ApiRequest::Snapshot(reply) => {
                let _ = reply.send(self.latest_snapshot()?);
            }
            ApiRequest::SubmitProposal(signed, reply) => {
                let hash = signed.proposal.hash(&self.genesis.neighborhood);
                let kind = signed.proposal.action.kind();
                // The ledger knows validator changes, but this node cannot switch to the next
                // epoch's replica yet (issue 13): an approved change would end the epoch and
                // freeze the ledger, so the node does not take one.
                let result = if matches!(signed.proposal.action, Action::SetValidators { .. }) {
                    Err(GovernanceRejection::BadValidators(
                        "this node version cannot switch to a new validator set yet; \
                         validator changes are refused"
                            .into(),
                    ))
                } else {
                    self.replica.app_mut().submit_proposal(signed, now_ms())
                }
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
                    validators: self.genesis.validators.len(),
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
        for output in outputs {
            match output {
                Output::Persist(Persist::Block(block)) => self.store.put_block(&block)?,
                Output::Persist(Persist::Safety(safety)) => self.store.put_safety(&safety)?,
                Output::Send(to, msg) => {
                    let _ = self.net.try_send(to, msg.encode());
                }
                Output::Broadcast(msg) => {
                    let _ = self.net.try_broadcast(msg.encode());
                }
                Output::Commit(block) => self.store.commit(&block)?,
                Output::ServeCommitted {
                    to,
                    from_height,
                    to_height,
                } => {
                    let blocks = self
                        .store
                        .committed_blocks(from_height, to_height.saturating_add(1))?;
                    // A pruned store may no longer hold `from_height`: then say nothing, and
                    // the peer asks another validator.
                    let held = blocks.first().is_some_and(|b| b.height() == from_height);
                    if let Some(msg) = committed_sync_response(blocks).filter(|_| held) {
                        let _ = self.net.try_send(to, msg.encode());
                    }
                }
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
                self.metrics.committed(&committed, now_ms(), health);
            }
        }
        if let Some(reason) = self.replica.app().halted() {
            error!(%reason, "the ledger halted; stopping the node");
            return Err(NodeError::LedgerHalted(reason.to_owned()));
        }
        if let Some(next) = self.replica.app().epoch_ended() {
            let reason = format!(
                "the validator set changed at height {} (epoch {}), and this node version cannot \
                 switch epochs yet",
                next.root_height, next.number
            );
            error!(%reason, "stopping the node");
            return Err(NodeError::LedgerHalted(reason));
        }
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
