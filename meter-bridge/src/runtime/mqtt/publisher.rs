//! The publishing connection: dead letters and household results, QoS 1.
//!
//! A second MQTT connection (`<client_id>-out`) so that publishing never competes with the
//! acknowledgements of the subscribing connection: if this one is slow or down, its bounded
//! request queue fills and [`Publisher`] calls wait (backpressure), while the subscribing
//! connection keeps its own queue free for acks. Its session is persistent too, so QoS 1
//! publishes not yet acknowledged by the broker are resent after a reconnect.
//!
//! # Availability
//! The connection carries a last will, `offline` retained on `<results_prefix>/bridge/status`
//! ([`crate::household::topic::bridge_status_topic`]), and publishes `online` there, retained,
//! every time it connects: the broker publishes the will when the connection drops
//! without a DISCONNECT (a crash, a lost network, or the bridge stopping), so whoever reads
//! the topic (Home Assistant's availability) knows whether the bridge is there.

use rumqttc::{AsyncClient, Event, EventLoop, Packet, QoS};
use serde::Serialize;
use tracing::{debug, info, warn};

use crate::dead_letter::DeadLetter;
use crate::runtime::mqtt::backoff::Backoff;
use crate::shutdown::Shutdown;

/// Why a publish was not queued.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The message could not be serialized.
    #[error("serialize: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The publishing connection's event loop has stopped (bridge shutting down).
    #[error("publishing connection closed: {0}")]
    Closed(#[from] rumqttc::ClientError),
}

/// A cheap handle to the publishing connection.
#[derive(Debug, Clone)]
pub struct Publisher {
    client: AsyncClient,
    dead_letter_topic: String,
}

impl Publisher {
    /// A publisher on `client`, sending dead letters to `dead_letter_topic`.
    pub fn new(client: AsyncClient, dead_letter_topic: String) -> Self {
        Publisher {
            client,
            dead_letter_topic,
        }
    }

    /// Queues `letter` as JSON on the dead-letter topic (QoS 1, not retained). Waits while the
    /// connection's queue is full.
    ///
    /// # Errors
    /// [`PublishError::Closed`] once the publishing connection has stopped.
    ///
    /// # Cancel safety
    /// Cancel-safe: if cancelled, the letter was either queued whole or not at all.
    pub async fn dead_letter(&self, letter: &DeadLetter) -> Result<(), PublishError> {
        self.json(&self.dead_letter_topic, letter, false).await
    }

    /// Queues `message` as JSON on `topic` at QoS 1.
    ///
    /// # Errors
    /// [`PublishError`] if it does not serialize or the connection has stopped.
    ///
    /// # Cancel safety
    /// Cancel-safe, as [`Publisher::dead_letter`].
    pub async fn json<T: Serialize + ?Sized>(
        &self,
        topic: &str,
        message: &T,
        retain: bool,
    ) -> Result<(), PublishError> {
        let payload = serde_json::to_vec(message)?;
        self.bytes(topic, payload, retain).await
    }

    /// Queues `payload` on `topic` at QoS 1.
    ///
    /// # Errors
    /// [`PublishError::Closed`] once the publishing connection has stopped.
    ///
    /// # Cancel safety
    /// Cancel-safe, as [`Publisher::dead_letter`].
    pub async fn bytes(
        &self,
        topic: &str,
        payload: Vec<u8>,
        retain: bool,
    ) -> Result<(), PublishError> {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload)
            .await?;
        Ok(())
    }
}

/// What the publishing connection publishes each time it connects: `online`, retained, on
/// the topic its last will names.
#[derive(Debug, Clone)]
pub(crate) struct Online {
    /// The connection's client.
    pub(crate) client: AsyncClient,
    /// The availability topic.
    pub(crate) topic: String,
}

impl Online {
    /// Queues `online` from a task, so the event loop never waits on its own request queue.
    fn announce(&self) {
        let Online { client, topic } = self.clone();
        tokio::spawn(async move {
            let payload = crate::household::home_assistant::ONLINE;
            if let Err(e) = client
                .publish(topic, QoS::AtLeastOnce, true, payload.as_bytes().to_vec())
                .await
            {
                debug!(cause = %e, "availability not published (shutting down)");
            }
        });
    }
}

/// Polls the publishing connection until shutdown, reconnecting with `backoff`, and announces
/// `online` on every connection.
pub(crate) async fn run_publisher_loop(
    mut eventloop: EventLoop,
    mut backoff: Backoff,
    online: Online,
    mut shutdown: Shutdown,
) {
    loop {
        let event = tokio::select! {
            biased;
            () = shutdown.recv() => return,
            event = eventloop.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                backoff.reset();
                info!(
                    session_present = ack.session_present,
                    "publishing connection up"
                );
                online.announce();
            }
            Ok(other) => debug!(event = ?other, "publishing connection"),
            Err(e) => {
                let delay = backoff.next_delay();
                warn!(cause = %e, delay_ms = delay.as_millis() as u64, "publishing connection lost; reconnecting");
                tokio::select! {
                    biased;
                    () = shutdown.recv() => return,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}
