//! A whole SimBench grid folder: elements, merged buses and profiles.
//!
//! # Merge semantics
//! Closed bus-bus switches (`cond` = 1) merge their two nodes into one bus; open ones are ignored.
//! A merged bus is named after its first non-auxiliary node in Node.csv order (else its first
//! node), which is the name the reference power flows use.
//!
//! # Invariants (checked on reading)
//! Every element refers to a known node and type; every bus is reachable from the external grid
//! through lines and transformers; every load and generator has its profile columns.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::elements::{
    Bus, ExternalNet, Line, LineType, Load, Node, Res, Switch, Transformer, TransformerType,
};
use super::table::{Row, Table};
use super::{GridError, Profiles};

/// A SimBench grid, read and checked.
#[derive(Debug, Clone)]
pub struct Grid {
    /// The folder name.
    pub name: String,
    /// The folder.
    pub dir: PathBuf,
    /// Nodes in Node.csv order.
    pub nodes: Vec<Node>,
    /// Buses after merging, ordered by their naming node's position in Node.csv.
    pub buses: Vec<Bus>,
    /// Line types in LineType.csv order.
    pub line_types: Vec<LineType>,
    /// Lines in Line.csv order.
    pub lines: Vec<Line>,
    /// Transformer types in TransformerType.csv order.
    pub transformer_types: Vec<TransformerType>,
    /// Transformers in Transformer.csv order.
    pub transformers: Vec<Transformer>,
    /// The slack.
    pub external_net: ExternalNet,
    /// Switches in Switch.csv order.
    pub switches: Vec<Switch>,
    /// Loads in Load.csv order.
    pub loads: Vec<Load>,
    /// Generators in RES.csv order.
    pub res: Vec<Res>,
    /// LoadProfile.csv.
    pub load_profiles: Profiles,
    /// RESProfile.csv.
    pub res_profiles: Profiles,
}

/// Per-bus demand of one interval in MW / Mvar: positive is consumption, negative is generation.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BusPower {
    /// Active power per bus in MW.
    pub p_mw: Vec<f64>,
    /// Reactive power per bus in Mvar.
    pub q_mvar: Vec<f64>,
}

impl BusPower {
    /// All zero for `n` buses.
    pub fn zeros(n: usize) -> BusPower {
        BusPower {
            p_mw: vec![0.0; n],
            q_mvar: vec![0.0; n],
        }
    }

    /// Sets every entry to zero.
    pub fn clear(&mut self) {
        self.p_mw.fill(0.0);
        self.q_mvar.fill(0.0);
    }
}

impl Grid {
    /// Reads a SimBench grid folder.
    ///
    /// # Errors
    /// A [`GridError`] naming the file and line of the first problem found.
    pub fn read(dir: &Path) -> Result<Grid, GridError> {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let node_table = Table::read(
            dir,
            "Node.csv",
            &["id", "type", "vmSetp", "vaSetp", "vmR", "vmMin", "vmMax"],
        )?;
        let mut nodes = Vec::with_capacity(node_table.len());
        let mut node_index: HashMap<String, usize> = HashMap::new();
        for row in node_table.rows() {
            let id = row.id("id")?;
            if node_index.insert(id.clone(), nodes.len()).is_some() {
                return Err(duplicate(&row, id));
            }
            nodes.push(Node {
                id,
                kind: row.str("type").to_owned(),
                vm_setpoint_pu: row.opt_f64("vmSetp")?,
                va_setpoint_deg: row.opt_f64("vaSetp")?,
                vn_kv: positive(&row, "vmR")?,
                vm_min_pu: row.opt_f64("vmMin")?,
                vm_max_pu: row.opt_f64("vmMax")?,
                bus: usize::MAX,
                line: row.line,
            });
        }
        let node_of = |row: &Row<'_>, column: &str| -> Result<usize, GridError> {
            let id = row.str(column);
            node_index
                .get(id)
                .copied()
                .ok_or_else(|| GridError::UnknownNode {
                    file: row.file().to_owned(),
                    line: row.line,
                    node: id.to_owned(),
                })
        };

        let switches = Table::read_rows(
            dir,
            "Switch.csv",
            &["id", "nodeA", "nodeB", "cond"],
            |row| {
                let cond = row.int("cond")?;
                Ok(Switch {
                    id: row.id("id")?,
                    node_a: node_of(row, "nodeA")?,
                    node_b: node_of(row, "nodeB")?,
                    closed: cond == 1,
                })
            },
        )?;
        let buses = merge(&mut nodes, &switches);
        let bus_of = |row: &Row<'_>, column: &str| node_of(row, column).map(|n| nodes[n].bus);

        let line_types =
            Table::read_rows(dir, "LineType.csv", &["id", "r", "x", "b", "iMax"], |row| {
                Ok(LineType {
                    id: row.id("id")?,
                    r_ohm_per_km: non_negative(row, "r")?,
                    x_ohm_per_km: row.f64("x")?,
                    b_us_per_km: row.f64("b")?,
                    i_max_a: positive(row, "iMax")?,
                })
            })?;
        let lines = Table::read_rows(
            dir,
            "Line.csv",
            &["id", "nodeA", "nodeB", "type", "length", "loadingMax"],
            |row| {
                let id = row.id("id")?;
                let length_km = row.f64("length")?;
                if length_km < 0.0 {
                    return Err(GridError::NegativeLength {
                        file: row.file().to_owned(),
                        line: row.line,
                        id,
                        length: length_km,
                    });
                }
                let (from_bus, to_bus) = (bus_of(row, "nodeA")?, bus_of(row, "nodeB")?);
                check_not_self_loop(row, &id, from_bus, to_bus, &buses)?;
                Ok(Line {
                    line_type: type_of(row, &line_types, |t| &t.id, "LineType.csv")?,
                    id,
                    from_bus,
                    to_bus,
                    length_km,
                    loading_max_percent: row.opt_f64("loadingMax")?.unwrap_or(100.0),
                })
            },
        )?;

        let transformer_types = Table::read_rows(
            dir,
            "TransformerType.csv",
            &[
                "id", "sR", "vmHV", "vmLV", "va0", "vmImp", "pCu", "pFe", "iNoLoad", "tapside",
                "dVm", "tapNeutr",
            ],
            |row| {
                Ok(TransformerType {
                    id: row.id("id")?,
                    sr_mva: positive(row, "sR")?,
                    vm_hv_kv: positive(row, "vmHV")?,
                    vm_lv_kv: positive(row, "vmLV")?,
                    va0_deg: row.opt_f64("va0")?.unwrap_or(0.0),
                    vm_imp_percent: positive(row, "vmImp")?,
                    p_cu_kw: non_negative(row, "pCu")?,
                    p_fe_kw: non_negative(row, "pFe")?,
                    i_no_load_percent: non_negative(row, "iNoLoad")?,
                    tap_on_hv: row.str("tapside") != "LV",
                    d_vm_percent: row.opt_f64("dVm")?.unwrap_or(0.0),
                    tap_neutral: if row.opt_f64("tapNeutr")?.is_some() {
                        row.int("tapNeutr")?
                    } else {
                        0
                    },
                })
            },
        )?;
        let transformers = Table::read_rows(
            dir,
            "Transformer.csv",
            &["id", "nodeHV", "nodeLV", "type", "tappos", "loadingMax"],
            |row| {
                let id = row.id("id")?;
                let (hv_bus, lv_bus) = (bus_of(row, "nodeHV")?, bus_of(row, "nodeLV")?);
                check_not_self_loop(row, &id, hv_bus, lv_bus, &buses)?;
                Ok(Transformer {
                    trafo_type: type_of(row, &transformer_types, |t| &t.id, "TransformerType.csv")?,
                    id,
                    hv_bus,
                    lv_bus,
                    tap_pos: if row.opt_f64("tappos")?.is_some() {
                        row.int("tappos")?
                    } else {
                        0
                    },
                    loading_max_percent: row.opt_f64("loadingMax")?.unwrap_or(100.0),
                })
            },
        )?;

        let ext_table = Table::read(dir, "ExternalNet.csv", &["id", "node"])?;
        if ext_table.len() != 1 {
            return Err(GridError::ExternalNetCount {
                file: ext_table.file.clone(),
                found: ext_table.len(),
            });
        }
        let mut external_net = None;
        for row in ext_table.rows() {
            let node = node_of(&row, "node")?;
            external_net = Some(ExternalNet {
                id: row.id("id")?,
                bus: nodes[node].bus,
                vm_pu: nodes[node].vm_setpoint_pu.unwrap_or(1.0),
            });
        }
        let external_net = external_net.ok_or_else(|| GridError::ExternalNetCount {
            file: ext_table.file.clone(),
            found: 0,
        })?;

        let load_profiles = Profiles::read(&dir.join("LoadProfile.csv"))?;
        let res_profiles = Profiles::read(&dir.join("RESProfile.csv"))?;
        let profile_col = |row: &Row<'_>, profiles: &Profiles, column: String, file: &str| {
            profiles
                .column_index(&column)
                .ok_or_else(|| GridError::MissingProfile {
                    file: row.file().to_owned(),
                    line: row.line,
                    column,
                    profile_file: dir.join(file),
                })
        };
        let mut load_ids = std::collections::HashSet::new();
        let loads = Table::read_rows(
            dir,
            "Load.csv",
            &["id", "node", "profile", "pLoad", "qLoad"],
            |row| {
                let profile = row.id("profile")?;
                let id = row.id("id")?;
                if !load_ids.insert(id.clone()) {
                    return Err(duplicate(row, id));
                }
                Ok(Load {
                    id,
                    bus: bus_of(row, "node")?,
                    p_column: profile_col(
                        row,
                        &load_profiles,
                        format!("{profile}_pload"),
                        "LoadProfile.csv",
                    )?,
                    q_column: profile_col(
                        row,
                        &load_profiles,
                        format!("{profile}_qload"),
                        "LoadProfile.csv",
                    )?,
                    profile,
                    p_mw: row.f64("pLoad")?,
                    q_mvar: row.f64("qLoad")?,
                    sr_mva: row.opt_f64("sR")?.unwrap_or(0.0),
                })
            },
        )?;
        let res = Table::read_rows(
            dir,
            "RES.csv",
            &["id", "node", "type", "profile", "pRES", "qRES"],
            |row| {
                let profile = row.id("profile")?;
                Ok(Res {
                    id: row.id("id")?,
                    bus: bus_of(row, "node")?,
                    kind: row.str("type").to_owned(),
                    column: profile_col(row, &res_profiles, profile.clone(), "RESProfile.csv")?,
                    profile,
                    p_mw: row.f64("pRES")?,
                    q_mvar: row.opt_f64("qRES")?.unwrap_or(0.0),
                })
            },
        )?;

        let grid = Grid {
            name,
            dir: dir.to_owned(),
            nodes,
            buses,
            line_types,
            lines,
            transformer_types,
            transformers,
            external_net,
            switches,
            loads,
            res,
            load_profiles,
            res_profiles,
        };
        grid.check_connected(&node_table.file)?;
        Ok(grid)
    }

    /// Every bus must be reachable from the slack through lines and transformers.
    fn check_connected(&self, node_file: &Path) -> Result<(), GridError> {
        let mut adjacency: Vec<Vec<usize>> = vec![Vec::new(); self.buses.len()];
        let branches = self
            .lines
            .iter()
            .map(|l| (l.from_bus, l.to_bus))
            .chain(self.transformers.iter().map(|t| (t.hv_bus, t.lv_bus)));
        for (a, b) in branches {
            adjacency[a].push(b);
            adjacency[b].push(a);
        }
        let mut seen = vec![false; self.buses.len()];
        let mut stack = vec![self.external_net.bus];
        seen[self.external_net.bus] = true;
        while let Some(bus) = stack.pop() {
            for &next in &adjacency[bus] {
                if !seen[next] {
                    seen[next] = true;
                    stack.push(next);
                }
            }
        }
        if let Some(bus) = seen.iter().position(|s| !s) {
            let node = &self.nodes[self.buses[bus].nodes[0]];
            return Err(GridError::IslandedBus {
                file: node_file.to_owned(),
                line: node.line,
                node: self.buses[bus].name.clone(),
            });
        }
        Ok(())
    }

    /// The index of the bus called `name`.
    pub fn bus_index(&self, name: &str) -> Option<usize> {
        self.buses.iter().position(|b| b.name == name)
    }

    /// Number of intervals in the profiles (the shorter of the two files).
    pub fn intervals(&self) -> usize {
        self.load_profiles.len().min(self.res_profiles.len())
    }

    /// Fills `out` with every load's and generator's power at interval `t`, as given by the
    /// profiles (demand positive, generation negative).
    pub fn bus_power_at(&self, t: usize, out: &mut BusPower) {
        out.clear();
        for load in &self.loads {
            out.p_mw[load.bus] += load.p_mw * value(&self.load_profiles, load.p_column, t);
            out.q_mvar[load.bus] += load.q_mvar * value(&self.load_profiles, load.q_column, t);
        }
        for gen in &self.res {
            let scale = value(&self.res_profiles, gen.column, t);
            out.p_mw[gen.bus] -= gen.p_mw * scale;
            out.q_mvar[gen.bus] -= gen.q_mvar * scale;
        }
    }

    /// Voltage limits per bus in p.u. from Node.csv (the naming node's `vmMin`/`vmMax`).
    pub fn bus_limits(&self) -> Vec<(Option<f64>, Option<f64>)> {
        self.buses
            .iter()
            .map(|b| {
                let n = &self.nodes[b.nodes[0]];
                (n.vm_min_pu, n.vm_max_pu)
            })
            .collect()
    }
}

/// The value of a profile column at interval `t` (0 past the end).
pub(crate) fn value(profiles: &Profiles, column: usize, t: usize) -> f64 {
    profiles.column(column).get(t).copied().unwrap_or(0.0)
}

/// Merges nodes joined by closed switches (union-find) and names each group.
fn merge(nodes: &mut [Node], switches: &[Switch]) -> Vec<Bus> {
    let mut parent: Vec<usize> = (0..nodes.len()).collect();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for s in switches.iter().filter(|s| s.closed) {
        let (a, b) = (find(&mut parent, s.node_a), find(&mut parent, s.node_b));
        if a != b {
            parent[a.max(b)] = a.min(b);
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..nodes.len() {
        let root = find(&mut parent, i);
        groups.entry(root).or_default().push(i);
    }
    let mut named: Vec<(usize, Vec<usize>)> = groups
        .into_values()
        .map(|members| {
            let namer = members
                .iter()
                .copied()
                .find(|&m| nodes[m].kind != "auxiliary")
                .unwrap_or(members[0]);
            (namer, members)
        })
        .collect();
    named.sort_by_key(|(namer, _)| *namer);
    let mut buses = Vec::with_capacity(named.len());
    for (namer, mut members) in named {
        members.retain(|&m| m != namer);
        members.insert(0, namer);
        for &m in &members {
            nodes[m].bus = buses.len();
        }
        buses.push(Bus {
            name: nodes[namer].id.clone(),
            vn_kv: nodes[namer].vn_kv,
            nodes: members,
        });
    }
    buses
}

fn duplicate(row: &Row<'_>, id: String) -> GridError {
    GridError::DuplicateId {
        file: row.file().to_owned(),
        line: row.line,
        id,
    }
}

fn positive(row: &Row<'_>, column: &str) -> Result<f64, GridError> {
    checked(row, column, |v| v > 0.0, "a positive number")
}

fn non_negative(row: &Row<'_>, column: &str) -> Result<f64, GridError> {
    checked(row, column, |v| v >= 0.0, "a non-negative number")
}

/// The number in `column`, if `ok` holds for it; else a [`GridError::BadValue`] that says what
/// was `expected`.
fn checked(
    row: &Row<'_>,
    column: &str,
    ok: impl Fn(f64) -> bool,
    expected: &'static str,
) -> Result<f64, GridError> {
    let v = row.f64(column)?;
    if ok(v) {
        Ok(v)
    } else {
        Err(GridError::BadValue {
            file: row.file().to_owned(),
            line: row.line,
            column: column.to_owned(),
            value: row.str(column).to_owned(),
            expected,
        })
    }
}

fn type_of<T>(
    row: &Row<'_>,
    types: &[T],
    id: impl Fn(&T) -> &String,
    type_file: &'static str,
) -> Result<usize, GridError> {
    let name = row.str("type");
    types
        .iter()
        .position(|t| id(t) == name)
        .ok_or_else(|| GridError::UnknownType {
            file: row.file().to_owned(),
            line: row.line,
            type_id: name.to_owned(),
            type_file,
        })
}

fn check_not_self_loop(
    row: &Row<'_>,
    id: &str,
    a: usize,
    b: usize,
    buses: &[Bus],
) -> Result<(), GridError> {
    if a == b {
        return Err(GridError::SelfLoop {
            file: row.file().to_owned(),
            line: row.line,
            id: id.to_owned(),
            bus: buses[a].name.clone(),
        });
    }
    Ok(())
}
