//! `voltmesh`: the one command-line binary users type. Each subcommand's work lives in the crate
//! that owns it; this file only parses arguments and dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bridge;
mod clear;
mod demo;
mod node;

/// Voltmesh: a peer-to-peer energy exchange for one neighborhood.
#[derive(Debug, Parser)]
#[command(name = "voltmesh", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a whole neighborhood on this machine: validators, broker, simulated meters, bridge.
    Demo(demo::DemoArgs),
    /// Clear a book of orders from a JSON file and print the result as JSON.
    Clear(clear::ClearArgs),
    /// Run the meter bridge: meters over MQTT to signed orders on a node, results back.
    Bridge(bridge::BridgeArgs),
    /// Simulate a neighbourhood on a SimBench grid (or `sim powerflow` one moment).
    Sim(Box<voltmesh_sim::cli::SimArgs>),
    /// Generate a node key (ed25519: libp2p identity and validator key at once).
    Keygen(node::KeygenArgs),
    /// Run a neighborhood validator node.
    Node(node::NodeArgs),
    /// Re-execute a stopped node's committed ledger from genesis and report the first mismatch.
    Verify(node::VerifyArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(args) => demo::demo(&args),
        Command::Clear(args) => clear::run(&args),
        Command::Bridge(args) => bridge::bridge(&args),
        Command::Sim(args) => voltmesh_sim::cli::run(&args),
        Command::Keygen(args) => node::keygen(&args),
        Command::Node(args) => node::node(&args),
        Command::Verify(args) => node::verify(&args),
    }
}
