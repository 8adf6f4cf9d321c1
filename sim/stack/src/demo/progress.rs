//! Reading the neighborhood's progress from a node's HTTP API, one market interval at a time.
//!
//! An interval's clearing is committed in the first block whose time passes its gate closure;
//! `GET /v1/intervals/{start}` answers 404 until then. An interval that received no orders never
//! gets a clearing: once the node has committed a block [`EMPTY_AFTER_MS`] past the gate
//! closure and the interval is still unknown, [`wait_for_interval`] reports it as empty.

use std::collections::BTreeSet;
use std::time::Duration;

use voltmesh_engine::{ClearingOutcome, Price};
use voltmesh_wire::api::{BlockView, StatusView};
use voltmesh_wire::client::{ClientError, NodeClient};
use voltmesh_wire::IntervalClearing;

use super::DemoError;

/// How long after an interval's gate closure a committed block must be before an unknown
/// interval counts as empty.
pub const EMPTY_AFTER_MS: i64 = 2_000;

/// A node's HTTP API, read through the wire contract's typed client; a node that does not answer
/// reads as "nothing yet" (the demo polls).
#[derive(Debug, Clone)]
pub struct NodeApi {
    client: Option<NodeClient>,
}

impl NodeApi {
    /// The API at `addr` (`host:port`), its reads signed with `key`: an unsigned read of an
    /// interval or a block gets the aggregates only; the demo signs with its bridge's key,
    /// which genesis allows for every household, so it sees every trade and order.
    pub fn new(addr: &str, neighborhood: &str, key: &ed25519_dalek::SigningKey) -> NodeApi {
        NodeApi {
            client: NodeClient::new(&format!("http://{addr}"))
                .ok()
                .map(|c| c.with_read_key(neighborhood, key.clone())),
        }
    }

    /// `GET /v1/status`, or `None` if the node does not answer.
    pub async fn status(&self) -> Option<StatusView> {
        self.client.as_ref()?.status().await.ok()
    }

    /// The committed height (0 if the node does not answer).
    pub async fn height(&self) -> u64 {
        self.status().await.map_or(0, |s| s.height)
    }

    /// The interval's committed clearing, `Ok(None)` while there is none.
    ///
    /// # Errors
    /// [`DemoError::Stalled`] if the node answers 200 with something that is not a clearing.
    pub async fn interval(&self, start: i64) -> Result<Option<IntervalClearing>, DemoError> {
        let Some(client) = &self.client else {
            return Ok(None);
        };
        match client.interval(start).await {
            Ok(clearing) => Ok(clearing),
            Err(e @ ClientError::Unexpected { status: 200, .. }) => Err(DemoError::Stalled(
                format!("interval {start}: bad answer: {e}"),
            )),
            Err(_) => Ok(None),
        }
    }

    /// The committed block at `height`, as the API shows it.
    pub async fn block(&self, height: u64) -> Option<BlockView> {
        self.client.as_ref()?.block(height).await.ok().flatten()
    }
}

/// Waits until every node answers its status and sees all the others, for at most `timeout`.
///
/// # Errors
/// [`DemoError::Stalled`] naming the nodes that did not.
pub async fn wait_for_peers(apis: &[NodeApi], timeout: Duration) -> Result<(), DemoError> {
    let start = tokio::time::Instant::now();
    let want = apis.len().saturating_sub(1);
    loop {
        let mut missing = Vec::new();
        for (i, api) in apis.iter().enumerate() {
            let peers = api.status().await.map_or(0, |s| s.peers);
            if peers < want {
                missing.push(i);
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(DemoError::Stalled(format!(
                "nodes {missing:?} did not connect to every other validator within {} s",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One market interval as the demo shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntervalView {
    /// Start, Unix seconds.
    pub start: i64,
    /// The committed clearing, if the interval had orders.
    pub clearing: Option<IntervalClearing>,
    /// The node's committed height when the interval was read.
    pub height: u64,
}

impl IntervalView {
    /// The outcome, if any.
    pub fn outcome(&self) -> Option<&ClearingOutcome> {
        self.clearing.as_ref().map(|c| &c.outcome)
    }

    /// Orders in the interval's book (every order is in a trade, in `unfilled`, or both).
    pub fn orders(&self) -> usize {
        self.outcome().map_or(0, |o| {
            o.trades
                .iter()
                .flat_map(|t| [&t.buy_id, &t.sell_id])
                .chain(o.unfilled.iter().map(|u| &u.id))
                .collect::<BTreeSet<_>>()
                .len()
        })
    }

    /// Energy traded, Wh.
    pub fn volume_wh(&self) -> u64 {
        self.outcome().map_or(0, |o| o.volume_wh)
    }

    /// The uniform price, if anything traded.
    pub fn price(&self) -> Option<Price> {
        self.outcome().and_then(|o| o.clearing_price)
    }
}

/// Waits for interval `start` (gate-closure lead `lead_secs`) to clear or to be known empty,
/// for at most `timeout`.
///
/// # Errors
/// [`DemoError::Stalled`] after `timeout`, with the node's last status.
pub async fn wait_for_interval(
    api: &NodeApi,
    start: i64,
    lead_secs: u32,
    timeout: Duration,
) -> Result<IntervalView, DemoError> {
    let began = tokio::time::Instant::now();
    let closure_ms = (start - i64::from(lead_secs)) * 1000;
    loop {
        let status = api.status().await;
        let height = status.as_ref().map_or(0, |s| s.height);
        if let Some(clearing) = api.interval(start).await? {
            return Ok(IntervalView {
                start,
                clearing: Some(clearing),
                height,
            });
        }
        let last_commit = status
            .as_ref()
            .and_then(|s| s.last_commit_ms)
            .map_or(0, |ms| i64::try_from(ms).unwrap_or(i64::MAX));
        if last_commit >= closure_ms + EMPTY_AFTER_MS {
            // Read once more: the clearing may have been committed between the two requests.
            let clearing = api.interval(start).await?;
            return Ok(IntervalView {
                start,
                clearing,
                height,
            });
        }
        if began.elapsed() > timeout {
            return Err(DemoError::Stalled(format!(
                "interval {start} did not clear within {} s (node status: {})",
                timeout.as_secs(),
                status.map_or("unreachable".into(), |s| format!("{s:?}"))
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
