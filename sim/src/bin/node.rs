//! `voltmesh keygen`, `voltmesh node` and `voltmesh verify` (the work lives in
//! `voltmesh_consensus`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use voltmesh_consensus::net::keyfile;
use voltmesh_consensus::node::NodeConfig;

/// Arguments of `voltmesh keygen`.
#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// Where to write the secret key (refuses to overwrite).
    #[arg(long, default_value = "node.key")]
    out: PathBuf,
}

/// Arguments of `voltmesh node`.
#[derive(Debug, Args)]
pub(crate) struct NodeArgs {
    /// The node's configuration file.
    #[arg(long, default_value = "node.toml")]
    config: PathBuf,
}

/// Arguments of `voltmesh verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// A stopped node's data directory (or a copy of it).
    #[arg(long)]
    data_dir: PathBuf,
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    let _ = writeln!(std::io::stderr().lock(), "error: {message}");
    ExitCode::FAILURE
}

fn say(message: impl std::fmt::Display) {
    let _ = writeln!(std::io::stdout().lock(), "{message}");
}

pub(crate) fn keygen(args: &KeygenArgs) -> ExitCode {
    if args.out.exists() {
        return fail(format!(
            "{} exists; not overwriting a key",
            args.out.display()
        ));
    }
    let keypair = keyfile::generate_keypair();
    if let Err(e) = keyfile::save_keypair(&args.out, &keypair) {
        return fail(e);
    }
    match (
        keyfile::public_key_hex(&keypair),
        keypair.public().to_peer_id(),
    ) {
        (Ok(public), peer_id) => {
            say(format!(
                "public_key = \"{public}\"\npeer_id = \"{peer_id}\"\nsecret key written to {}",
                args.out.display()
            ));
            ExitCode::SUCCESS
        }
        (Err(e), _) => fail(e),
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,libp2p_gossipsub=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

pub(crate) fn node(args: &NodeArgs) -> ExitCode {
    init_logging();
    let config = match NodeConfig::load(&args.config) {
        Ok(config) => config,
        Err(e) => return fail(e),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match runtime.block_on(voltmesh_consensus::node::run(config, shutdown)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

pub(crate) fn verify(args: &VerifyArgs) -> ExitCode {
    match voltmesh_consensus::verify::verify(&args.data_dir) {
        Ok(report) => {
            say(format!(
                "all {} blocks check out ({} orders, {} interval clearings re-executed)",
                report.blocks, report.orders, report.clearings
            ));
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}
