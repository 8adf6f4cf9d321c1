//! `voltmesh keygen`, `voltmesh node` and `voltmesh verify` (the work and the arguments live in
//! `voltmesh_consensus`).

use std::io::Write;

use anyhow::{bail, Context};
use voltmesh_consensus::cli::{KeygenArgs, NodeArgs, VerifyArgs};
use voltmesh_consensus::net::keyfile;
use voltmesh_consensus::node::NodeConfig;

fn say(message: impl std::fmt::Display) {
    let _ = writeln!(std::io::stdout().lock(), "{message}");
}

/// `voltmesh keygen`: writes a new secret key and prints its public key and peer id.
///
/// # Errors
/// If the file exists (a key is never overwritten) or cannot be written.
pub fn keygen(args: &KeygenArgs) -> anyhow::Result<()> {
    if args.out.exists() {
        bail!("{} exists; not overwriting a key", args.out.display());
    }
    let keypair = keyfile::generate_keypair();
    keyfile::save_keypair(&args.out, &keypair)?;
    let public = keyfile::public_key_hex(&keypair)?;
    let peer_id = keypair.public().to_peer_id();
    say(format!(
        "public_key = \"{public}\"\npeer_id = \"{peer_id}\"\nsecret key written to {}",
        args.out.display()
    ));
    Ok(())
}

/// `voltmesh node`: runs a validator until Ctrl-C.
///
/// # Errors
/// A bad configuration, or a node that cannot start or stops on an error.
pub fn node(args: &NodeArgs) -> anyhow::Result<()> {
    let mut config = NodeConfig::load(&args.config)?;
    config.untrusted_safety_record |= args.untrusted_safety_record;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    runtime.block_on(voltmesh_consensus::node::run(config, shutdown))?;
    Ok(())
}

/// `voltmesh verify`: re-executes a stopped node's ledger from genesis.
///
/// # Errors
/// The first block that does not check out, or a data directory that cannot be read.
pub fn verify(args: &VerifyArgs) -> anyhow::Result<()> {
    let report = voltmesh_consensus::verify::verify(&args.data_dir)?;
    say(format!(
        "all {} blocks check out ({} orders, {} interval clearings re-executed, {} intervals \
         settled with {} bills and {} correction entries recomputed); the index serves the same \
         bills and corrections through height {}",
        report.blocks,
        report.orders,
        report.clearings,
        report.settled_intervals,
        report.bills,
        report.corrections,
        report.index_height
    ));
    Ok(())
}
