//! [`run`]: the whole bridge as one future, stopped by a shutdown future (mini-redis style).
//!
//! # Tasks
//! * the subscribing connection: its event loop, which also records every message in the shared
//!   [`Ingest`](crate::Ingest) and acknowledges it ([`crate::runtime::mqtt::subscriber`]);
//! * the publishing connection's event loop ([`crate::runtime::mqtt::publisher`]);
//! * the order planner ([`planner`]): before every interval's gate closure, plans each
//!   household's order from the shared [`Ingest`](crate::Ingest), signs it and submits it to the
//!   [`OrderSink`], retrying until gate closure; hands the intervals the node took to
//! * the follow-up task ([`followups`]): reads each interval's committed clearing from the node
//!   once the gate has closed, and with the registers decides (a pure state machine,
//!   [`FollowUps`]) each household's fills, the clearing summary and, once its meters have read
//!   past the interval's end, its settlement (the bridge's estimate); they go to
//! * the bills task, unless `node.publish_bills = false` ([`bills`]): once per interval, after
//!   the bills of an interval have committed on the ledger, reads every household's committed
//!   bill from the node and hands the new ones to
//! * the results task: [`ResultMessage`]s → household topics ([`crate::household::topic`]),
//!   retained, on the publishing connection; a second one publishes what tests hand in on
//!   [`Io::results`], if given;
//! * the metrics task ([`metrics`]);
//! * the reload task, if [`Io::reload`] is given ([`reload`]): re-reads the `[[household]]` list
//!   on request (SIGHUP) or when the file changes, and swaps it into the shared ingest state.
//! * Home Assistant, unless `home_assistant.discovery = false` ([`home_assistant`]): a third
//!   connection for Home Assistant's birth message and the households' control commands, and a
//!   task that publishes discovery configs and states (totals read from the node) on the
//!   publishing connection, whose last will (`offline` on `<results_prefix>/bridge/status`) is
//!   every entity's availability.
//!
//! # Community
//! The planner follows the node's community (members, keys, market rules per interval; see
//! [`planner`] and [`crate::community`]): `node.genesis` is only where it starts, and the
//! fallback while no node answers.
//!
//! ```text
//!  broker ─► subscriber ─► Ingest (shared) ◄── planner ──► OrderSink (node)
//!               │                │               │ intervals taken  │ clearings
//!               │                └─ registers ─► follow-ups ◄───────┘
//!               ▼ dead letters                   │ results
//!           publisher ◄──────────── results task ◄┘
//! ```
//!
//! # Time
//! No task reads a clock of its own: they all read [`Io::clock`] ([`clock`]), the one place the
//! time enters the bridge, so tests drive the planner and follow-ups with paused tokio time.
//!
//! # Shutdown
//! When `shutdown` completes, [`run`] broadcasts the signal, then waits until every task has
//! dropped its clone of an `mpsc::Sender` (the receiver's `recv` returns `None`). Messages
//! received but not yet acknowledged stay with the broker for the next session.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use rumqttc::{AsyncClient, LastWill, QoS, SubscribeFilter};
use tokio::sync::{broadcast, mpsc, watch};
use tracing::info;

use crate::config::Config;
use crate::household::home_assistant::{Discovery, OFFLINE};
use crate::household::topic::{
    bridge_status_topic, control_command_filter, subscription_filters, PREFERENCES_SUFFIX,
};
use crate::order_sink::OrderSink;
use crate::reading::Reading;
use crate::runtime::followups::{run_followups, run_results, FollowUps, FOLLOW_QUEUE};
use crate::runtime::home_assistant::{
    run_ha_connection, run_home_assistant, HomeAssistant, HA_QUEUE, HA_REQUEST_QUEUE,
};
use crate::runtime::mqtt::backoff::Backoff;
use crate::runtime::mqtt::options::{mqtt_options, OptionsError};
use crate::runtime::mqtt::publisher::{run_publisher_loop, Online, Publisher};
use crate::runtime::mqtt::results::ResultMessage;
use crate::runtime::mqtt::subscriber::{Handler, Subscriber, REQUEST_QUEUE};
use crate::runtime::planner::run_planner;
use crate::shutdown::Shutdown;

pub mod bills;
pub mod clock;
pub mod deliveries;
pub mod failover;
pub mod followups;
pub mod home_assistant;
pub mod http;
pub mod market_board;
pub mod metrics;
pub mod mqtt;
pub mod node_sink;
pub mod planner;
pub mod reload;
pub mod shared;
#[cfg(test)]
mod testing;

pub use clock::{Clock, SharedClock, TokioClock, WallClock};
pub use followups::FOLLOW_INTERVALS;
pub use mqtt::subscriber::LinkStatus;
pub use shared::{lock, new_ingest, SharedIngest, Unacked};

/// Results waiting between the follow-up task and the results task.
const RESULTS_QUEUE: usize = 64;

/// Why the bridge could not start.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The connection options (TLS files) are unusable.
    #[error(transparent)]
    Options(#[from] OptionsError),
    /// `[http] listen` cannot be bound.
    #[error("http.listen = {addr}: {source}")]
    Http {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Everything [`run`] talks to besides the broker.
#[derive(Debug)]
pub struct Io<S> {
    /// Where signed orders go ([`voltmesh_wire::client::NodeClient`] in production).
    pub orders: S,
    /// The bridge key named in genesis.
    pub signing_key: SigningKey,
    /// Where every task reads the time ([`WallClock::shared`] in production, a
    /// [`TokioClock`] in tests under paused tokio time).
    pub clock: SharedClock,
    /// Extra results to publish to households, besides the ones the follow-ups build from the
    /// node's clearings (`None` in production; tests hand results in here).
    pub results: Option<mpsc::Receiver<ResultMessage>>,
    /// Optional consumer of every accepted reading (waited for before the reading is acked).
    pub readings: Option<mpsc::Sender<Reading>>,
    /// Receives the subscribing connection's status.
    pub status: watch::Sender<LinkStatus>,
    /// Where and when to reload the household list (`None`: never; see [`reload`]).
    pub reload: Option<reload::Reload>,
}

/// Runs the bridge until `shutdown` completes (see the module docs).
///
/// # Errors
/// [`BridgeError`] if it cannot start; once running, broker and node failures are retried, never
/// returned.
pub async fn run<S: OrderSink>(
    config: Config,
    ingest: SharedIngest,
    io: Io<S>,
    shutdown: impl Future,
) -> Result<(), BridgeError> {
    let (min, max) = config.broker.backoff();
    let sub_options = mqtt_options(
        &config.broker,
        &config.broker.client_id,
        true,
        REQUEST_QUEUE,
    )?;
    let mut pub_options = mqtt_options(
        &config.broker,
        &format!("{}-out", config.broker.client_id),
        false,
        config.queues.publish,
    )?;
    let availability = bridge_status_topic(&config.topics.results_prefix);
    pub_options.set_last_will(LastWill::new(
        availability.clone(),
        OFFLINE,
        QoS::AtLeastOnce,
        true,
    ));
    let (sub_client, sub_loop) = AsyncClient::new(sub_options, REQUEST_QUEUE);
    let (pub_client, pub_loop) = AsyncClient::new(pub_options, config.queues.publish);
    let online = Online {
        client: pub_client.clone(),
        topic: availability,
    };
    let publisher = Publisher::new(pub_client, config.topics.dead_letter.clone());

    let (notify, _) = broadcast::channel::<()>(1);
    let (complete_tx, mut complete_rx) = mpsc::channel::<()>(1);
    let unacked = Unacked::default();
    // Metrics ([metrics], else VOLTMESH_INFLUX_*; off without a URL): see `crate::runtime::metrics`.
    let metrics = crate::runtime::metrics::BridgeMetrics::start(
        config.metrics.to_config(|key| std::env::var(key).ok()),
        &config,
    );
    let filters: Vec<SubscribeFilter> = config
        .subscriptions
        .iter()
        .map(|s| SubscribeFilter::new(s.filter.clone(), QoS::AtLeastOnce))
        .chain(
            subscription_filters(&config.topics.households_prefix)
                .into_iter()
                .map(|f| SubscribeFilter::new(f, QoS::AtLeastOnce)),
        )
        .collect();
    let spawn = |fut: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>| {
        let done = complete_tx.clone();
        tokio::spawn(async move {
            fut.await;
            drop(done);
        });
    };

    spawn(Box::pin(
        Subscriber {
            client: sub_client,
            filters,
            backoff: Backoff::new(min, max),
            status: io.status,
            handler: Handler {
                ingest: ingest.clone(),
                publisher: publisher.clone(),
                readings: io.readings,
                unacked: unacked.clone(),
                clock: io.clock.clone(),
            },
            shutdown: Shutdown::new(notify.subscribe()),
        }
        .run(sub_loop),
    ));
    spawn(Box::pin(run_publisher_loop(
        pub_loop,
        Backoff::new(min, max),
        online,
        Shutdown::new(notify.subscribe()),
    )));
    let sink = Arc::new(metrics.count_orders(io.orders));
    // Home Assistant (on unless `home_assistant.discovery = false`): its connection and task.
    let (traded, reloaded) = if config.home_assistant.discovery {
        let mut options = mqtt_options(
            &config.broker,
            &format!("{}-ha", config.broker.client_id),
            false,
            HA_REQUEST_QUEUE,
        )?;
        options.set_clean_session(true);
        let (ha_client, ha_loop) = AsyncClient::new(options, HA_REQUEST_QUEUE);
        let discovery = Discovery {
            discovery_prefix: config.home_assistant.discovery_prefix.clone(),
            results_prefix: config.topics.results_prefix.clone(),
            households_prefix: config.topics.households_prefix.clone(),
            neighborhood: config.node.neighborhood.clone(),
            currency: config.settlement.currency,
            tariffs: config.settlement.tariffs(),
        };
        let hprefix = &config.topics.households_prefix;
        let filters = [
            discovery.birth_topic(),
            control_command_filter(hprefix),
            format!("{hprefix}/households/+/{PREFERENCES_SUFFIX}"),
        ]
        .into_iter()
        .map(|f| SubscribeFilter::new(f, QoS::AtLeastOnce))
        .collect();
        let (events_tx, events_rx) = mpsc::channel(HA_QUEUE);
        let (traded_tx, traded_rx) = mpsc::channel(HA_QUEUE);
        let (reloaded_tx, reloaded_rx) = watch::channel(config.registry.clone());
        spawn(Box::pin(run_ha_connection(
            ha_loop,
            ha_client,
            filters,
            Backoff::new(min, max),
            events_tx,
            Shutdown::new(notify.subscribe()),
        )));
        spawn(Box::pin(run_home_assistant(
            HomeAssistant {
                discovery,
                publisher: publisher.clone(),
                sink: sink.clone(),
                clock: io.clock.clone(),
                configured: home_assistant::configured(&config.registry),
                wishes: BTreeMap::new(),
                announced: BTreeSet::new(),
                pending: BTreeSet::new(),
            },
            events_rx,
            traded_rx,
            io.reload.is_some().then_some(reloaded_rx),
            Shutdown::new(notify.subscribe()),
        )));
        (Some(traded_tx), Some(reloaded_tx))
    } else {
        (None, None)
    };
    // The market topics' latest payloads, served over HTTP with `[http] listen`.
    let board = market_board::MarketBoard::default();
    if let Some(addr) = config.http.listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| BridgeError::Http { addr, source })?;
        tracing::info!(%addr, "serving the market topics over http");
        let mut stop = Shutdown::new(notify.subscribe());
        let board = board.clone();
        spawn(Box::pin(async move {
            let stopped = async move { stop.recv().await };
            if let Err(e) = http::serve(listener, board, stopped).await {
                tracing::warn!(cause = %e, "http server stopped");
            }
        }));
    }
    if let Some(results) = io.results {
        spawn(Box::pin(run_results(
            results,
            publisher.clone(),
            config.topics.results_prefix.clone(),
            board.clone(),
            traded.clone(),
            Shutdown::new(notify.subscribe()),
        )));
    }
    spawn(Box::pin(metrics.run(
        ingest.clone(),
        unacked,
        io.clock.clone(),
        Shutdown::new(notify.subscribe()),
    )));
    let (follow_tx, follow_rx) = mpsc::channel(FOLLOW_QUEUE);
    let (results_tx, results_rx) = mpsc::channel(RESULTS_QUEUE);
    spawn(Box::pin(run_results(
        results_rx,
        publisher,
        config.topics.results_prefix.clone(),
        board,
        traded,
        Shutdown::new(notify.subscribe()),
    )));
    spawn(Box::pin(run_followups(
        follow_rx,
        sink.clone(),
        ingest.clone(),
        FollowUps::new(
            config.settlement.tariffs(),
            config.settlement.network_fee,
            config.settlement.currency,
        ),
        results_tx.clone(),
        io.clock.clone(),
        Shutdown::new(notify.subscribe()),
    )));
    if config.node.publish_bills {
        spawn(Box::pin(bills::run_bills(
            sink.clone(),
            ingest.clone(),
            bills::CommittedBills::new(config.market, config.deliveries.window_secs),
            results_tx.clone(),
            io.clock.clone(),
            Shutdown::new(notify.subscribe()),
        )));
    }
    if let Some(reload) = io.reload {
        spawn(Box::pin(reload::run_reloads(
            reload,
            ingest.clone(),
            reloaded,
            Shutdown::new(notify.subscribe()),
        )));
    }
    if config.node.submit_deliveries {
        spawn(Box::pin(deliveries::run_deliveries(
            sink.clone(),
            ingest.clone(),
            io.signing_key.clone(),
            config.node.neighborhood.clone(),
            io.clock.clone(),
            Shutdown::new(notify.subscribe()),
        )));
    }
    spawn(Box::pin(run_planner(
        ingest,
        config,
        sink,
        io.signing_key,
        planner::Outlets {
            follow: follow_tx,
            signal: results_tx,
        },
        io.clock,
        Shutdown::new(notify.subscribe()),
    )));

    shutdown.await;
    info!("shutting down");
    drop(notify);
    drop(complete_tx);
    let _ = complete_rx.recv().await;
    Ok(())
}
