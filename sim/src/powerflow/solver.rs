//! Backward/forward sweep power flow for radial grids.
//!
//! # Method
//! Loads are constant power. Each iteration computes every node's current draw from the present
//! voltages (`conj(S/V)` plus shunt current), sums currents towards the slack (backward), then
//! updates voltages away from it (forward). It stops when no voltage moves by more than the
//! tolerance. On a radial grid one iteration costs O(buses); LV grids converge in a handful.
//! The branch currents reported (transformer loading, the external grid's power) are those of
//! the last backward sweep, computed from voltages that moved less than the tolerance since.
//!
//! # Warm start
//! Each solve starts from the voltages the previous one converged to (the previous interval's),
//! not from a flat start: consecutive intervals differ little, so the sweep needs fewer
//! iterations to reach the same fixed point (within the tolerance; the tests compare warm and
//! cold solves). A solve that fails to converge resets to a flat start; [`PowerFlow::reset`] does
//! so on demand, and [`PowerFlow::start_from`] starts from another flow's solution instead.
//!
//! # Performance
//! The model and all buffers are allocated once in [`PowerFlow::new`]; [`PowerFlow::solve`]
//! allocates nothing. The sweeps walk one flat array of branches in breadth-first order (no
//! `Option` per node), skip the ratio of the branches without one (every branch but a
//! transformer's), and compare squared voltage changes, so an iteration takes no square root
//! per node.

use num_complex::Complex64;

use super::model::{Model, S_BASE_MVA};
use super::{PowerFlowError, Solution};
use crate::simbench::{BusPower, Grid};

/// Solver settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerFlowOptions {
    /// Stop when no voltage changes by more than this (p.u.) in one iteration.
    pub tolerance_pu: f64,
    /// Give up (and report non-convergence) after this many iterations.
    pub max_iterations: usize,
}

impl Default for PowerFlowOptions {
    fn default() -> Self {
        PowerFlowOptions {
            tolerance_pu: 1e-10,
            max_iterations: 100,
        }
    }
}

/// One branch of the sweep: the edge from `parent` to `node`.
#[derive(Debug, Clone, Copy)]
struct Branch {
    node: usize,
    parent: usize,
    /// Series impedance, p.u. on the node's side.
    z: Complex64,
    /// Ideal ratio (1 for lines): node-side voltage = parent voltage / ratio - z·current.
    ratio: f64,
    /// The node's shunt admittance, p.u.
    shunt: Complex64,
}

/// A power flow solver for one grid: model and work buffers, reused across intervals.
#[derive(Debug, Clone)]
pub struct PowerFlow {
    model: Model,
    options: PowerFlowOptions,
    /// Every non-slack node's edge, parents before children (the model's `order`).
    branches: Vec<Branch>,
    /// The nodes without an edge: the slack (and any node it does not reach).
    roots: Vec<usize>,
    v: Vec<Complex64>,
    s: Vec<Complex64>,
    current: Vec<Complex64>,
}

impl PowerFlow {
    /// Builds the per-unit model of `grid`.
    ///
    /// # Errors
    /// [`PowerFlowError::Meshed`] for a grid with loops, [`PowerFlowError::ZeroImpedance`] or
    /// [`PowerFlowError::VoltageMismatch`] for elements the model cannot represent.
    pub fn new(grid: &Grid, options: PowerFlowOptions) -> Result<PowerFlow, PowerFlowError> {
        let model = Model::build(grid)?;
        let n = model.edges.len();
        let zero = Complex64::new(0.0, 0.0);
        let branches = model
            .order
            .iter()
            .skip(1)
            .filter_map(|&node| {
                model.edges[node].map(|e| Branch {
                    node,
                    parent: e.parent,
                    z: e.z,
                    ratio: e.ratio,
                    shunt: model.shunt[node],
                })
            })
            .collect();
        let roots = (0..n).filter(|&k| model.edges[k].is_none()).collect();
        Ok(PowerFlow {
            branches,
            roots,
            v: vec![model.v_slack; n],
            s: vec![zero; n],
            current: vec![zero; n],
            model,
            options,
        })
    }

    /// Number of buses the demand vectors must have.
    pub fn buses(&self) -> usize {
        self.model.n_bus
    }

    /// Starts the next [`PowerFlow::solve`] from `other`'s voltages instead of this flow's own
    /// last ones: a second flow of the same grid at the same instant (the no-market baseline
    /// beside the market) is nearer to the first's solution than to its own previous interval's.
    /// Does nothing if `other` models a different grid (another number of nodes).
    pub fn start_from(&mut self, other: &PowerFlow) {
        if self.v.len() == other.v.len() {
            self.v.copy_from_slice(&other.v);
        }
    }

    /// Forgets the previous solution: the next [`PowerFlow::solve`] starts flat (every node at
    /// the slack's voltage), as the first one does.
    pub fn reset(&mut self) {
        self.v.fill(self.model.v_slack);
    }

    /// Solves one interval: `power` is each bus's demand (generation negative). Starts from the
    /// previous interval's voltages (see the module's "Warm start").
    ///
    /// # Errors
    /// [`PowerFlowError::NotConverged`] if the sweep does not converge (the solver is reset to a
    /// flat start for the next call), [`PowerFlowError::WrongSize`] for a bad demand vector.
    pub fn solve(&mut self, power: &BusPower, out: &mut Solution) -> Result<usize, PowerFlowError> {
        let (n_bus, slack, v_slack) = (self.model.n_bus, self.model.slack, self.model.v_slack);
        if power.p_mw.len() != n_bus || power.q_mvar.len() != n_bus {
            return Err(PowerFlowError::WrongSize {
                expected: n_bus,
                got: power.p_mw.len().min(power.q_mvar.len()),
            });
        }
        for (i, s) in self.s.iter_mut().enumerate().take(n_bus) {
            *s = Complex64::new(power.p_mw[i], power.q_mvar[i]) / S_BASE_MVA;
        }
        self.v[slack] = v_slack;
        let mut mismatch = f64::INFINITY;
        let mut iterations = 0;
        while iterations < self.options.max_iterations {
            iterations += 1;
            self.backward();
            mismatch = self.forward();
            if !mismatch.is_finite() {
                break;
            }
            if mismatch < self.options.tolerance_pu {
                self.write(out);
                return Ok(iterations);
            }
        }
        self.reset();
        Err(PowerFlowError::NotConverged {
            iterations,
            mismatch_pu: mismatch,
        })
    }

    /// Currents drawn at each node, summed towards the slack: children before parents, so each
    /// node's current is complete (its own draw plus its children's) when it is passed up.
    fn backward(&mut self) {
        let zero = Complex64::new(0.0, 0.0);
        self.current.fill(zero);
        for b in self.branches.iter().rev() {
            let k = b.node;
            let i = self.current[k] + draw(self.s[k], self.v[k], b.shunt);
            self.current[k] = i;
            self.current[b.parent] += if b.ratio == 1.0 { i } else { i / b.ratio };
        }
        for &k in &self.roots {
            self.current[k] += draw(self.s[k], self.v[k], self.model.shunt[k]);
        }
    }

    /// Voltages from the slack outwards; returns the largest change.
    fn forward(&mut self) -> f64 {
        // The largest squared change: `max` of squares orders as `max` of magnitudes, and NaN is
        // skipped by both, so only the one square root at the end remains.
        let mut largest: f64 = 0.0;
        for b in &self.branches {
            let parent = self.v[b.parent];
            let parent = if b.ratio == 1.0 {
                parent
            } else {
                parent / b.ratio
            };
            let v = parent - b.z * self.current[b.node];
            largest = largest.max((v - self.v[b.node]).norm_sqr());
            self.v[b.node] = v;
        }
        largest.sqrt()
    }

    fn write(&self, out: &mut Solution) {
        let m = &self.model;
        out.vm_pu.clear();
        out.vm_pu
            .extend(self.v[..m.n_bus].iter().map(|v| v.norm_sqr().sqrt()));
        out.line_loading_percent.clear();
        out.line_loading_max_percent.clear();
        for l in &m.lines {
            let (va, vb) = (self.v[l.a], self.v[l.b]);
            let series = (va - vb) * l.y_series;
            let ia = (series + l.y_half * va).norm_sqr();
            let ib = (-series + l.y_half * vb).norm_sqr();
            out.line_loading_percent
                .push(ia.max(ib).sqrt() * l.percent_per_pu);
            out.line_loading_max_percent.push(l.loading_max_percent);
        }
        out.trafo_loading_percent.clear();
        out.trafo_loading_max_percent.clear();
        for t in &m.trafos {
            let i_hv = self.current[t.mid].norm() / t.ratio;
            let i_lv = self.current[t.lv].norm();
            // Fed from the HV side (the radial build from the slack): the mid node's edge carries
            // the HV terminal current, the LV bus's edge the LV terminal current.
            out.trafo_loading_percent
                .push((i_hv * t.hv_percent_per_pu).max(i_lv * t.lv_percent_per_pu));
            out.trafo_loading_max_percent.push(t.loading_max_percent);
        }
        let s_slack = self.v[m.slack] * self.current[m.slack].conj() * S_BASE_MVA;
        out.ext_grid_p_mw = s_slack.re;
        out.ext_grid_q_mvar = s_slack.im;
    }
}

/// The current a node draws at voltage `v`: its constant-power demand `s`, `conj(s / v)`, plus its
/// shunt's `y·v`. `conj(s / v) = conj(s)·v / |v|²`, with one division.
#[inline]
fn draw(s: Complex64, v: Complex64, shunt: Complex64) -> Complex64 {
    let own = shunt * v;
    if s.re == 0.0 && s.im == 0.0 {
        return own;
    }
    let inv = 1.0 / v.norm_sqr();
    Complex64::new(
        (s.re * v.re + s.im * v.im) * inv + own.re,
        (s.re * v.im - s.im * v.re) * inv + own.im,
    )
}
