//! The `voltmesh` binary's subcommands, one module each. Every subcommand returns
//! `anyhow::Result<()>`; the binary reports an error in one place ([`report`]) and picks the exit
//! status from it ([`BadInput`] is 2, anything else 1).

pub mod admin;
pub mod bridge;
pub mod clear;
pub mod correct;
pub mod demo;
pub mod export;
pub mod node;
pub mod sim;

use std::io::Write;
use std::process::ExitCode;

/// Exit status for bad input (a book, a payload, a flag value), as for a command-line usage error.
pub const BAD_INPUT: u8 = 2;

/// An error caused by the input the user gave, not by the machine: the binary exits with
/// [`BAD_INPUT`] instead of 1. Wrap the cause: `Err(BadInput(err.into()).into())`.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct BadInput(pub anyhow::Error);

/// Sets up logging to stderr once: `RUST_LOG` if set, else `default_filter`.
pub fn init_logging(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The one error reporter: prints `error: <cause chain>` on stderr and returns the exit status.
pub fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr().lock(), "error: {e:#}");
            if e.downcast_ref::<BadInput>().is_some() {
                ExitCode::from(BAD_INPUT)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Writes `text` to stdout; a closed stdout (`| head`) is not worth a panic.
pub(crate) fn print(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// A client of the node at `node` whose reads are signed with the key in `key_file` (a billing
/// key for `voltmesh export` and `voltmesh correct`), with the key and the node's neighborhood.
///
/// # Errors
/// An unreadable key file, a bad address or a node that does not answer.
pub(crate) fn billing_client(
    node: &str,
    key_file: &std::path::Path,
) -> anyhow::Result<(
    voltmesh_wire::client::BlockingNodeClient,
    ed25519_dalek::SigningKey,
    String,
)> {
    use anyhow::Context;
    let key = voltmesh_wire::key::read(key_file)
        .with_context(|| format!("billing key file {}", key_file.display()))?;
    let plain = voltmesh_wire::client::BlockingNodeClient::new(node)
        .with_context(|| format!("node API {node}"))?;
    let neighborhood = plain
        .status()
        .with_context(|| format!("reading {node}"))?
        .neighborhood;
    Ok((
        plain.with_read_key(&neighborhood, key.clone()),
        key,
        neighborhood,
    ))
}
