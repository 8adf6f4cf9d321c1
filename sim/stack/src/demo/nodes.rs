//! The demo's validators, in this process: each runs `voltmesh_consensus::node::run` on a thread
//! of its own with a single-threaded tokio runtime, as `voltmesh node` does in its own process.
//!
//! Threads rather than one shared runtime keep one node's signature checks from delaying
//! another's timers, as separate processes would. [`RunningNodes`] stops every node (its clean
//! shutdown path: the API server and the network close, the store is flushed) and joins every
//! thread when it is stopped or dropped, so nothing outlives it.

use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::neighborhood::DemoNode;
use super::DemoError;

/// Validator threads that are running.
#[derive(Debug)]
pub struct RunningNodes {
    nodes: Vec<Running>,
}

#[derive(Debug)]
struct Running {
    index: usize,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl Running {
    fn finish(&mut self) -> Result<(), DemoError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let index = self.index;
        match thread.join() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(DemoError::Node { index, message }),
            Err(_) => Err(DemoError::Node {
                index,
                message: "the node thread panicked".into(),
            }),
        }
    }
}

/// Starts one thread per node.
///
/// # Errors
/// [`DemoError::Io`] if a thread cannot be spawned (nodes already started are stopped).
pub fn start(nodes: &[DemoNode]) -> Result<RunningNodes, DemoError> {
    let mut running = RunningNodes { nodes: Vec::new() };
    for (index, node) in nodes.iter().enumerate() {
        let (stop, stopped) = oneshot::channel::<()>();
        let config = node.config.clone();
        let thread = std::thread::Builder::new()
            .name(format!("node{index}"))
            .spawn(move || -> Result<(), String> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start a runtime: {e}"))?;
                let shutdown = async {
                    let _ = stopped.await;
                };
                runtime
                    .block_on(voltmesh_consensus::node::run(config, shutdown))
                    .map_err(|e| e.to_string())
            })
            .map_err(super::io_error(format!("start node {index}")))?;
        running.nodes.push(Running {
            index,
            stop: Some(stop),
            thread: Some(thread),
        });
    }
    Ok(running)
}

impl RunningNodes {
    /// The first node whose thread has ended on its own (it failed to start or stopped), with
    /// its error.
    pub fn check(&mut self) -> Result<(), DemoError> {
        for node in &mut self.nodes {
            if node.thread.as_ref().is_some_and(JoinHandle::is_finished) {
                node.finish()?;
                return Err(DemoError::Node {
                    index: node.index,
                    message: "stopped unexpectedly".into(),
                });
            }
        }
        Ok(())
    }

    /// Stops every node and waits for its thread.
    ///
    /// # Errors
    /// The first node that failed; every node is stopped and joined regardless.
    pub fn stop(mut self) -> Result<(), DemoError> {
        self.stop_all()
    }

    fn stop_all(&mut self) -> Result<(), DemoError> {
        // Signal all first so they shut down in parallel, then join.
        for node in &mut self.nodes {
            if let Some(stop) = node.stop.take() {
                let _ = stop.send(());
            }
        }
        let mut first = Ok(());
        for node in &mut self.nodes {
            let result = node.finish();
            if first.is_ok() {
                first = result;
            }
        }
        first
    }
}

impl Drop for RunningNodes {
    fn drop(&mut self) {
        let _ = self.stop_all();
    }
}
