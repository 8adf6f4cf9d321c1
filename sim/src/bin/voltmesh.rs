//! `voltmesh`: the one command-line binary. Each subcommand lives in the crate that owns it.

fn main() {}
