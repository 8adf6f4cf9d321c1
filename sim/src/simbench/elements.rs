//! The elements of a SimBench grid, as read from its tables, with node references resolved to
//! merged bus indices.
//!
//! Units are SimBench's: MW, Mvar, MVA, kV, km, ohm/km, µS/km, A, kW, percent.

use serde::Serialize;

/// A row of Node.csv.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    /// Node id.
    pub id: String,
    /// `busbar`, `auxiliary`, ... (an `auxiliary` node never names a merged bus if a non-auxiliary
    /// node is in its group).
    pub kind: String,
    /// Voltage setpoint in p.u. (set on the slack node).
    pub vm_setpoint_pu: Option<f64>,
    /// Angle setpoint in degrees.
    pub va_setpoint_deg: Option<f64>,
    /// Rated voltage in kV.
    pub vn_kv: f64,
    /// Lower voltage limit in p.u.
    pub vm_min_pu: Option<f64>,
    /// Upper voltage limit in p.u.
    pub vm_max_pu: Option<f64>,
    /// The merged bus the node belongs to (index into [`super::Grid::buses`]).
    pub bus: usize,
    /// Line in Node.csv.
    pub line: u64,
}

/// A bus after closed bus-bus switches have merged nodes: invariant, every node is in exactly one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bus {
    /// The name of the group: its first non-auxiliary node in Node.csv order (else its first node).
    pub name: String,
    /// Rated voltage in kV (of the naming node).
    pub vn_kv: f64,
    /// Indices into [`super::Grid::nodes`] of the merged nodes.
    pub nodes: Vec<usize>,
}

/// A row of LineType.csv.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineType {
    /// Type id.
    pub id: String,
    /// Series resistance in ohm/km.
    pub r_ohm_per_km: f64,
    /// Series reactance in ohm/km.
    pub x_ohm_per_km: f64,
    /// Shunt susceptance in µS/km (SimBench's `b`; capacitance c = b / (2π·50 Hz)).
    pub b_us_per_km: f64,
    /// Thermal current limit in A.
    pub i_max_a: f64,
}

/// A row of Line.csv.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    /// Line id.
    pub id: String,
    /// Bus at end A.
    pub from_bus: usize,
    /// Bus at end B.
    pub to_bus: usize,
    /// Index into [`super::Grid::line_types`].
    pub line_type: usize,
    /// Length in km (non-negative).
    pub length_km: f64,
    /// Loading limit in percent.
    pub loading_max_percent: f64,
}

/// A row of TransformerType.csv.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransformerType {
    /// Type id.
    pub id: String,
    /// Rated power in MVA.
    pub sr_mva: f64,
    /// Rated HV voltage in kV.
    pub vm_hv_kv: f64,
    /// Rated LV voltage in kV.
    pub vm_lv_kv: f64,
    /// Phase shift in degrees (ignored: it rotates angles downstream, not magnitudes).
    pub va0_deg: f64,
    /// Short-circuit voltage in percent.
    pub vm_imp_percent: f64,
    /// Copper losses in kW.
    pub p_cu_kw: f64,
    /// Iron losses in kW.
    pub p_fe_kw: f64,
    /// No-load current in percent.
    pub i_no_load_percent: f64,
    /// Tap changer side: true if on the HV side.
    pub tap_on_hv: bool,
    /// Voltage change per tap step in percent.
    pub d_vm_percent: f64,
    /// Neutral tap position.
    pub tap_neutral: i64,
}

/// A row of Transformer.csv.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transformer {
    /// Transformer id.
    pub id: String,
    /// HV bus.
    pub hv_bus: usize,
    /// LV bus.
    pub lv_bus: usize,
    /// Index into [`super::Grid::transformer_types`].
    pub trafo_type: usize,
    /// Tap position.
    pub tap_pos: i64,
    /// Loading limit in percent.
    pub loading_max_percent: f64,
}

/// The row of ExternalNet.csv: the slack.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExternalNet {
    /// Id.
    pub id: String,
    /// Its bus.
    pub bus: usize,
    /// Voltage magnitude in p.u. (the node's `vmSetp`, 1.0 if absent).
    pub vm_pu: f64,
}

/// A row of Switch.csv.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Switch {
    /// Id.
    pub id: String,
    /// Node A (index into [`super::Grid::nodes`]).
    pub node_a: usize,
    /// Node B.
    pub node_b: usize,
    /// Closed (`cond` = 1): the two nodes are merged into one bus.
    pub closed: bool,
}

/// A row of Load.csv, with its profile columns resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Load {
    /// Id.
    pub id: String,
    /// Its bus.
    pub bus: usize,
    /// Profile name (columns `<profile>_pload` and `<profile>_qload`).
    pub profile: String,
    /// Scale of active power in MW.
    pub p_mw: f64,
    /// Scale of reactive power in Mvar.
    pub q_mvar: f64,
    /// Rated apparent power in MVA.
    pub sr_mva: f64,
    /// Index of the `_pload` column in [`super::Grid::load_profiles`].
    pub p_column: usize,
    /// Index of the `_qload` column.
    pub q_column: usize,
}

/// A row of RES.csv (PV, wind, ...), with its profile column resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Res {
    /// Id.
    pub id: String,
    /// Its bus.
    pub bus: usize,
    /// `PV`, `Wind`, ...
    pub kind: String,
    /// Profile name (a column of RESProfile.csv).
    pub profile: String,
    /// Scale of active power in MW.
    pub p_mw: f64,
    /// Reactive power scale in Mvar.
    pub q_mvar: f64,
    /// Index of the column in [`super::Grid::res_profiles`].
    pub column: usize,
}
