//! The result of one interval's power flow and its limit violations.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::simbench::Grid;

/// One interval's power flow result, indexed like the grid's buses, lines and transformers.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Solution {
    /// Voltage magnitude per bus, p.u.
    pub vm_pu: Vec<f64>,
    /// Loading per line: the larger end current over the rated current, percent.
    pub line_loading_percent: Vec<f64>,
    /// Each line's loading limit, percent.
    pub line_loading_max_percent: Vec<f64>,
    /// Loading per transformer: the larger of HV and LV current over rated current at rated
    /// voltage (so `sR`), percent.
    pub trafo_loading_percent: Vec<f64>,
    /// Each transformer's loading limit, percent.
    pub trafo_loading_max_percent: Vec<f64>,
    /// Active power drawn from the external grid, MW (negative: export).
    pub ext_grid_p_mw: f64,
    /// Reactive power drawn from the external grid, Mvar.
    pub ext_grid_q_mvar: f64,
}

/// The voltage band that counts as a violation when left.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct VoltageBand {
    /// Lower limit, p.u.
    pub min_pu: f64,
    /// Upper limit, p.u.
    pub max_pu: f64,
}

impl Default for VoltageBand {
    fn default() -> Self {
        VoltageBand {
            min_pu: 0.9,
            max_pu: 1.1,
        }
    }
}

/// Counts of limit violations in one interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Violations {
    /// Buses below the band.
    pub undervoltage_buses: u32,
    /// Buses above the band.
    pub overvoltage_buses: u32,
    /// Lines loaded above their limit.
    pub overloaded_lines: u32,
    /// Transformers loaded above their limit.
    pub overloaded_trafos: u32,
}

impl Violations {
    /// True if nothing is violated.
    pub fn is_empty(&self) -> bool {
        *self == Violations::default()
    }

    /// Sum of all counts.
    pub fn total(&self) -> u32 {
        self.undervoltage_buses
            + self.overvoltage_buses
            + self.overloaded_lines
            + self.overloaded_trafos
    }
}

impl Solution {
    /// The violations of `band` and of each element's loading limit.
    pub fn violations(&self, band: VoltageBand) -> Violations {
        let count = |it: &mut dyn Iterator<Item = bool>| it.filter(|b| *b).count() as u32;
        Violations {
            undervoltage_buses: count(&mut self.vm_pu.iter().map(|&v| v < band.min_pu)),
            overvoltage_buses: count(&mut self.vm_pu.iter().map(|&v| v > band.max_pu)),
            overloaded_lines: count(
                &mut self
                    .line_loading_percent
                    .iter()
                    .zip(&self.line_loading_max_percent)
                    .map(|(l, m)| l > m),
            ),
            overloaded_trafos: count(
                &mut self
                    .trafo_loading_percent
                    .iter()
                    .zip(&self.trafo_loading_max_percent)
                    .map(|(l, m)| l > m),
            ),
        }
    }

    /// Lowest and highest bus voltage, p.u.
    pub fn vm_range(&self) -> (f64, f64) {
        self.vm_pu
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            })
    }

    /// Highest line loading, percent (0 without lines).
    pub fn max_line_loading(&self) -> f64 {
        self.line_loading_percent
            .iter()
            .copied()
            .fold(0.0, f64::max)
    }

    /// Highest transformer loading, percent (0 without transformers).
    pub fn max_trafo_loading(&self) -> f64 {
        self.trafo_loading_percent
            .iter()
            .copied()
            .fold(0.0, f64::max)
    }

    /// The result keyed by the grid's names, in the shape of the reference JSON files.
    pub fn snapshot(&self, grid: &Grid, time: String, index: usize) -> Snapshot {
        Snapshot {
            time,
            index,
            bus_vm_pu: Named(
                grid.buses
                    .iter()
                    .map(|b| b.name.clone())
                    .zip(self.vm_pu.iter().copied())
                    .collect(),
            ),
            line_loading_percent: Named(
                grid.lines
                    .iter()
                    .map(|l| l.id.clone())
                    .zip(self.line_loading_percent.iter().copied())
                    .collect(),
            ),
            trafo_loading_percent: Named(
                grid.transformers
                    .iter()
                    .map(|t| t.id.clone())
                    .zip(self.trafo_loading_percent.iter().copied())
                    .collect(),
            ),
            ext_grid_p_mw: self.ext_grid_p_mw,
        }
    }
}

/// Values keyed by name, serialized as a JSON object in grid order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Named(pub Vec<(String, f64)>);

impl Serialize for Named {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// One power flow keyed by CSV names: the shape of `reference/<grid>.json` snapshots.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// Interval start, `YYYY-MM-DD HH:MM`.
    pub time: String,
    /// Interval index in the profiles.
    pub index: usize,
    /// Bus voltage, p.u.
    pub bus_vm_pu: Named,
    /// Line loading, percent.
    pub line_loading_percent: Named,
    /// Transformer loading, percent.
    pub trafo_loading_percent: Named,
    /// Power from the external grid, MW.
    pub ext_grid_p_mw: f64,
}
