//! SimBench CSV grid folders: nodes, lines, transformers, the external grid, switches, loads,
//! generators and their yearly profiles.
//!
//! Format: `;`-separated tables, one per file, described in the data README. Closed bus-bus
//! switches merge nodes into buses (see [`Grid`]).

mod elements;
mod error;
mod grid;
mod profile;
mod table;

pub use elements::{
    Bus, ExternalNet, Line, LineType, Load, Node, Res, Switch, Transformer, TransformerType,
};
pub use error::GridError;
pub use grid::{BusPower, Grid};
pub use profile::Profiles;

#[cfg(test)]
mod tests;
