//! Listens for the bridge's shutdown signal (mini-redis style).
//!
//! [`crate::runtime::run`] owns a `broadcast::Sender<()>`; every task holds a [`Shutdown`] made
//! from a receiver. The signal is a send or the sender being dropped; once seen it is remembered.

use tokio::sync::broadcast;

/// A task's view of the shutdown signal.
#[derive(Debug)]
pub struct Shutdown {
    is_shutdown: bool,
    notify: broadcast::Receiver<()>,
}

impl Shutdown {
    /// Wraps a receiver of the shutdown broadcast.
    pub fn new(notify: broadcast::Receiver<()>) -> Shutdown {
        Shutdown {
            is_shutdown: false,
            notify,
        }
    }

    /// Whether the signal has been seen.
    pub fn is_shutdown(&self) -> bool {
        self.is_shutdown
    }

    /// Waits for the signal (returns at once if already seen).
    ///
    /// # Cancel safety
    /// Cancel-safe.
    pub async fn recv(&mut self) {
        if self.is_shutdown {
            return;
        }
        // Lagged, closed or a value: all mean shut down.
        let _ = self.notify.recv().await;
        self.is_shutdown = true;
    }
}
