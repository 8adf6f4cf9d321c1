//! Voltmesh grid simulation: SimBench grids and profiles, household agents, power flow and KPIs.
