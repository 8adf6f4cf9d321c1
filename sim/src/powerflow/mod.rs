//! Balanced positive-sequence power flow for radial low-voltage grids.
//!
//! Build a [`PowerFlow`] once per grid, then call [`PowerFlow::solve`] per interval with each bus's
//! demand. See `model` for the element models and `solver` for the method.
//!
//! # Known limitations
//! Radial grids only (parallel lines are fine); constant-power loads; transformer phase shift
//! ignored (angles downstream are rotated, magnitudes are not affected).

mod error;
mod model;
mod solution;
mod solver;

pub use error::PowerFlowError;
pub use solution::{Named, Snapshot, Solution, Violations, VoltageBand};
pub use solver::{PowerFlow, PowerFlowOptions};

use crate::simbench::{BusPower, Grid};

/// Solves the grid as given by its profiles at interval `index` and names the result.
///
/// # Errors
/// Any [`PowerFlowError`] from building the model or solving the interval.
pub fn snapshot_at(grid: &Grid, index: usize) -> Result<Snapshot, PowerFlowError> {
    let mut pf = PowerFlow::new(grid, PowerFlowOptions::default())?;
    let mut power = BusPower::zeros(grid.buses.len());
    grid.bus_power_at(index, &mut power);
    let mut solution = Solution::default();
    pf.solve(&power, &mut solution)?;
    let time = grid
        .load_profiles
        .time_of(index)
        .format("%Y-%m-%d %H:%M")
        .to_string();
    Ok(solution.snapshot(grid, time, index))
}
