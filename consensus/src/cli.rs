//! The node's subcommands' arguments, behind the `clap` feature: `voltmesh keygen`,
//! `voltmesh node` and `voltmesh verify` (the `voltmesh` binary flattens them).

use std::path::PathBuf;

/// Arguments of `voltmesh keygen`.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Where to write the secret key (refuses to overwrite).
    #[arg(long, default_value = "node.key")]
    pub out: PathBuf,
}

/// Arguments of `voltmesh node`.
#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    /// The node's configuration file.
    #[arg(long, default_value = "node.toml")]
    pub config: PathBuf,
    /// This node's data directory was restored from a backup, or wiped or lost while keeping
    /// the key: sign nothing until peers show the node is past every view it could have signed
    /// in (sets `untrusted_safety_record` in the configuration for this run).
    #[arg(long)]
    pub untrusted_safety_record: bool,
}

/// Arguments of `voltmesh verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// A stopped node's data directory (or a copy of it).
    #[arg(long)]
    pub data_dir: PathBuf,
}
