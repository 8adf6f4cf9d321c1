//! The per-unit, tree-ordered model of a radial grid, built once per grid.
//!
//! # Model
//! Base power 1 MVA, base voltage the bus's rated voltage. Lines are π-sections: series
//! `(r + jx)·length` and half the shunt susceptance `b·length` at each end. A transformer is a
//! T-equivalent from its type: short-circuit impedance `vk = vmImp`, `vkr = pCu / sR`, split half
//! on each side of a magnetising branch `g = pFe / sR`, `|y| = iNoLoad` (inductive), behind an ideal
//! ratio that accounts for taps and for rated voltages that differ from the buses'. The phase shift
//! `va0` is ignored: in a radial grid fed from one slack it rotates angles downstream and changes
//! no magnitude.
//!
//! # Ordering invariant
//! `order` lists the nodes so that each node's parent comes before it (breadth-first from the
//! slack); buses are nodes `0..n_bus`, transformer mid points follow.

use std::collections::BTreeMap;

use num_complex::Complex64;

use super::PowerFlowError;
use crate::simbench::Grid;

/// Base power in MVA.
pub(crate) const S_BASE_MVA: f64 = 1.0;
const SQRT3: f64 = 1.732_050_807_568_877_2;

/// The edge from a node's parent to the node.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Edge {
    pub(crate) parent: usize,
    /// Series impedance, p.u. on the child's side.
    pub(crate) z: Complex64,
    /// Ideal ratio: child-side voltage = parent voltage / ratio - z·current.
    pub(crate) ratio: f64,
}

/// A line in p.u.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LinePu {
    pub(crate) a: usize,
    pub(crate) b: usize,
    pub(crate) y_series: Complex64,
    pub(crate) y_half: Complex64,
    /// Current base in kA divided by the rated current in kA, times 100.
    pub(crate) percent_per_pu: f64,
    pub(crate) loading_max_percent: f64,
}

/// A transformer in p.u.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TrafoPu {
    pub(crate) mid: usize,
    pub(crate) lv: usize,
    pub(crate) ratio: f64,
    pub(crate) hv_percent_per_pu: f64,
    pub(crate) lv_percent_per_pu: f64,
    pub(crate) loading_max_percent: f64,
}

/// The radial per-unit model.
#[derive(Debug, Clone)]
pub(crate) struct Model {
    pub(crate) n_bus: usize,
    pub(crate) slack: usize,
    pub(crate) v_slack: Complex64,
    pub(crate) order: Vec<usize>,
    pub(crate) edges: Vec<Option<Edge>>,
    pub(crate) shunt: Vec<Complex64>,
    pub(crate) lines: Vec<LinePu>,
    pub(crate) trafos: Vec<TrafoPu>,
}

impl Model {
    pub(crate) fn build(grid: &Grid) -> Result<Model, PowerFlowError> {
        let n_bus = grid.buses.len();
        let n_nodes = n_bus + grid.transformers.len();
        let mut shunt = vec![Complex64::new(0.0, 0.0); n_nodes];
        // Undirected branches: (a, b, series admittance on b's side, ratio a->b, name).
        let mut adjacency: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n_nodes];
        struct Branch {
            a: usize,
            b: usize,
            y: Complex64,
            ratio: f64,
            name: String,
        }
        let mut branches: Vec<Branch> = Vec::new();
        let mut parallel: BTreeMap<(usize, usize), usize> = BTreeMap::new();
        let mut lines = Vec::with_capacity(grid.lines.len());
        for line in &grid.lines {
            let t = &grid.line_types[line.line_type];
            let vn = grid.buses[line.from_bus].vn_kv;
            if (grid.buses[line.to_bus].vn_kv - vn).abs() > 1e-9 * vn {
                return Err(PowerFlowError::VoltageMismatch {
                    element: line.id.clone(),
                });
            }
            let z_base = vn * vn / S_BASE_MVA;
            let z = Complex64::new(t.r_ohm_per_km, t.x_ohm_per_km) * line.length_km / z_base;
            if z.norm() == 0.0 {
                return Err(PowerFlowError::ZeroImpedance {
                    element: line.id.clone(),
                });
            }
            let y_half = Complex64::new(0.0, t.b_us_per_km * 1e-6 * line.length_km * z_base / 2.0);
            shunt[line.from_bus] += y_half;
            shunt[line.to_bus] += y_half;
            let i_base_ka = S_BASE_MVA / (SQRT3 * vn);
            lines.push(LinePu {
                a: line.from_bus,
                b: line.to_bus,
                y_series: z.inv(),
                y_half,
                percent_per_pu: i_base_ka / (t.i_max_a / 1000.0) * 100.0,
                loading_max_percent: line.loading_max_percent,
            });
            let key = (
                line.from_bus.min(line.to_bus),
                line.from_bus.max(line.to_bus),
            );
            if let Some(&existing) = parallel.get(&key) {
                branches[existing].y += z.inv();
            } else {
                parallel.insert(key, branches.len());
                branches.push(Branch {
                    a: line.from_bus,
                    b: line.to_bus,
                    y: z.inv(),
                    ratio: 1.0,
                    name: line.id.clone(),
                });
            }
        }
        let mut trafos = Vec::with_capacity(grid.transformers.len());
        for (i, tr) in grid.transformers.iter().enumerate() {
            let t = &grid.transformer_types[tr.trafo_type];
            let mid = n_bus + i;
            let steps = (tr.tap_pos - t.tap_neutral) as f64 * t.d_vm_percent / 100.0;
            let (vm_hv, vm_lv) = if t.tap_on_hv {
                (t.vm_hv_kv * (1.0 + steps), t.vm_lv_kv)
            } else {
                (t.vm_hv_kv, t.vm_lv_kv * (1.0 + steps))
            };
            let (vn_hv, vn_lv) = (grid.buses[tr.hv_bus].vn_kv, grid.buses[tr.lv_bus].vn_kv);
            let ratio = (vm_hv / vm_lv) / (vn_hv / vn_lv);
            // Impedance in p.u. of the transformer, referred to the LV bus's base.
            let to_net = S_BASE_MVA / t.sr_mva * (t.vm_lv_kv / vn_lv).powi(2);
            let vk = t.vm_imp_percent / 100.0;
            let vkr = t.p_cu_kw / 1000.0 / t.sr_mva;
            let xk = (vk * vk - vkr * vkr).max(0.0).sqrt();
            let z = Complex64::new(vkr, xk) * to_net;
            if z.norm() == 0.0 {
                return Err(PowerFlowError::ZeroImpedance {
                    element: tr.id.clone(),
                });
            }
            let g = t.p_fe_kw / 1000.0 / t.sr_mva;
            let y_abs = t.i_no_load_percent / 100.0;
            let b = (y_abs * y_abs - g * g).max(0.0).sqrt();
            shunt[mid] += Complex64::new(g, -b) / to_net;
            let z_half = z / 2.0;
            branches.push(Branch {
                a: tr.hv_bus,
                b: mid,
                y: z_half.inv(),
                ratio,
                name: tr.id.clone(),
            });
            branches.push(Branch {
                a: mid,
                b: tr.lv_bus,
                y: z_half.inv(),
                ratio: 1.0,
                name: tr.id.clone(),
            });
            let hv_i_base = S_BASE_MVA / (SQRT3 * vn_hv);
            let lv_i_base = S_BASE_MVA / (SQRT3 * vn_lv);
            trafos.push(TrafoPu {
                mid,
                lv: tr.lv_bus,
                ratio,
                hv_percent_per_pu: hv_i_base * t.vm_hv_kv * SQRT3 / t.sr_mva * 100.0,
                lv_percent_per_pu: lv_i_base * t.vm_lv_kv * SQRT3 / t.sr_mva * 100.0,
                loading_max_percent: tr.loading_max_percent,
            });
        }
        for (i, br) in branches.iter().enumerate() {
            adjacency[br.a].push((br.b, i));
            adjacency[br.b].push((br.a, i));
        }
        // Breadth-first from the slack; a branch to an already reached node closes a loop.
        let slack = grid.external_net.bus;
        let mut edges: Vec<Option<Edge>> = vec![None; n_nodes];
        let mut reached = vec![false; n_nodes];
        let mut used = vec![false; branches.len()];
        let mut order = Vec::with_capacity(n_nodes);
        order.push(slack);
        reached[slack] = true;
        let mut head = 0;
        while let Some(&node) = order.get(head) {
            head += 1;
            for &(next, bi) in &adjacency[node] {
                if used[bi] {
                    continue;
                }
                used[bi] = true;
                let br = &branches[bi];
                if reached[next] {
                    return Err(PowerFlowError::Meshed {
                        element: br.name.clone(),
                    });
                }
                reached[next] = true;
                // Orient the branch parent -> child; a ratio on a branch walked backwards inverts.
                let ratio = if br.a == node {
                    br.ratio
                } else {
                    1.0 / br.ratio
                };
                let z = br.y.inv();
                // The impedance sits on the `b` side of the ideal ratio; walked backwards it is on
                // the parent's side, so refer it to the child's side.
                let z = if br.a == node {
                    z
                } else {
                    z * br.ratio * br.ratio
                };
                edges[next] = Some(Edge {
                    parent: node,
                    z,
                    ratio,
                });
                order.push(next);
            }
        }
        let slack_node = &grid.nodes[grid.buses[slack].nodes[0]];
        let va = grid.buses[slack]
            .nodes
            .iter()
            .find_map(|&n| grid.nodes[n].va_setpoint_deg)
            .or(slack_node.va_setpoint_deg)
            .unwrap_or(0.0);
        Ok(Model {
            n_bus,
            slack,
            v_slack: Complex64::from_polar(grid.external_net.vm_pu, va.to_radians()),
            order,
            edges,
            shunt,
            lines,
            trafos,
        })
    }
}
