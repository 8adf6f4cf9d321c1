//! Voltmesh grid simulation: SimBench grids and profiles, household agents, power flow and KPIs.

pub mod data;
pub mod powerflow;
pub mod simbench;
