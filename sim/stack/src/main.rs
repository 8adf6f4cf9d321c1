//! `voltmesh`: the one command-line binary users type. It only parses arguments, sets up logging
//! and reports errors; each subcommand's work lives in [`voltmesh::cmd`] and the crates it wires.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use voltmesh::cmd::{self, admin, bridge, clear, correct, demo, export, node, sim};

/// Voltmesh: a peer-to-peer energy exchange for one neighborhood.
///
/// Households' smart meters publish over MQTT to the meter bridge, which turns each household's
/// expected surplus or deficit into signed bids and asks for the next market interval. Validator
/// nodes clear every interval with a double auction between the utility's feed-in tariff and
/// retail price, and finalize the trades by HotStuff consensus. Start with `voltmesh demo`.
#[derive(Debug, Parser)]
#[command(name = "voltmesh", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a whole neighborhood on this machine: validators, broker, simulated meters, bridge.
    Demo(demo::DemoArgs),
    /// Run a neighborhood validator node.
    Node(voltmesh_consensus::cli::NodeArgs),
    /// Generate a node key (ed25519: libp2p identity and validator key at once).
    Keygen(voltmesh_consensus::cli::KeygenArgs),
    /// Re-execute a stopped node's committed ledger from genesis and report the first mismatch.
    Verify(voltmesh_consensus::cli::VerifyArgs),
    /// Write the community's billing for a period as CSV (members.csv, intervals.csv) from a
    /// node's committed bills, signed with a billing key; every interval and period reconciles
    /// to zero.
    Export(export::ExportArgs),
    /// Import the grid operator's official metering data (EDA, MSCONS as CSV) as corrections
    /// of settled intervals, signed with a billing key; bills stay, corrections are new entries.
    Correct(correct::CorrectArgs),
    /// Governance: draft, sign, combine and submit proposals (members, keys, rules, policies);
    /// show the community.
    Admin(admin::AdminArgs),
    /// Run the meter bridge: meters over MQTT to signed orders on a node, results back.
    Bridge(voltmesh_meter_bridge::cli::BridgeArgs),
    /// Clear a book of orders from a JSON file and print the result as JSON.
    Clear(voltmesh_engine::cli::ClearArgs),
    /// Simulate a neighbourhood on a SimBench grid (or `sim powerflow` one moment).
    Sim(Box<voltmesh_sim::cli::SimArgs>),
}

impl Command {
    /// The log filter when `RUST_LOG` is unset: the long-running services say what they do, the
    /// one-shot commands only warn.
    fn default_log_filter(&self) -> &'static str {
        match self {
            Command::Node(_) => "info,libp2p_gossipsub=warn",
            Command::Bridge(_) => "info",
            _ => "warn,libp2p=error",
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cmd::init_logging(cli.command.default_log_filter());
    cmd::report(match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Node(args) => node::node(&args),
        Command::Keygen(args) => node::keygen(&args),
        Command::Verify(args) => node::verify(&args),
        Command::Export(args) => export::run(&args),
        Command::Correct(args) => correct::run(&args),
        Command::Admin(args) => admin::run(&args),
        Command::Bridge(args) => bridge::run(&args),
        Command::Clear(args) => clear::run(&args),
        Command::Sim(args) => sim::run(&args),
    })
}
