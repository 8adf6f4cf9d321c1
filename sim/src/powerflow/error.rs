//! Errors from building or solving a power flow.

/// Why a grid cannot be modelled, or why one interval's power flow has no solution.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PowerFlowError {
    /// The sweep solver needs a radial grid (parallel lines between two buses are fine).
    #[error("the grid is meshed: {element:?} closes a loop; only radial grids are supported")]
    Meshed {
        /// The branch that closes a loop.
        element: String,
    },
    /// A line or transformer has zero series impedance.
    #[error("{element:?} has zero series impedance")]
    ZeroImpedance {
        /// The element.
        element: String,
    },
    /// A line joins buses of different rated voltage.
    #[error("line {element:?} joins buses of different rated voltage")]
    VoltageMismatch {
        /// The line.
        element: String,
    },
    /// The iteration did not converge for this interval (the interval is reported, not fatal).
    #[error(
        "no convergence after {iterations} iterations (last voltage change {mismatch_pu:e} p.u.)"
    )]
    NotConverged {
        /// Iterations run.
        iterations: usize,
        /// Largest voltage change in the last iteration, p.u.
        mismatch_pu: f64,
    },
    /// The demand vector does not have one entry per bus.
    #[error("expected power for {expected} buses, got {got}")]
    WrongSize {
        /// Buses in the grid.
        expected: usize,
        /// Entries given.
        got: usize,
    },
}
