//! Reader tests on small grids written to temporary folders.

use std::path::{Path, PathBuf};

use super::{Grid, GridError};

/// A tiny valid grid: MV slack, a transformer, two LV buses, one line, a load and a PV.
fn files() -> Vec<(&'static str, String)> {
    let node = "id;type;vmSetp;vaSetp;vmR;vmMin;vmMax;substation;coordID;subnet;voltLvl\n\
        MV Bus;busbar;1.02;0.0;20;0.9;1.1;NULL;c;s;5\n\
        MV Bus_1;auxiliary;NULL;NULL;20;0.9;1.1;NULL;c;s;5\n\
        LV Bus 1_1;auxiliary;NULL;NULL;0.4;0.9;1.1;NULL;c;s;7\n\
        LV Bus 1;busbar;NULL;NULL;0.4;0.9;1.1;NULL;c;s;7\n\
        LV Bus 2;busbar;NULL;NULL;0.4;0.9;1.1;NULL;c;s;7\n";
    let switch = "id;nodeA;nodeB;type;cond;substation;subnet;voltLvl\n\
        S1;MV Bus;MV Bus_1;CB;1;NULL;s;5\n\
        S2;LV Bus 1;LV Bus 1_1;LS;1;NULL;s;7\n";
    let line = "id;nodeA;nodeB;type;length;loadingMax;subnet;voltLvl\n\
        Line 1;LV Bus 1_1;LV Bus 2;NAYY;0.1;100;s;7\n";
    let line_type = "id;r;x;b;iMax;type\nNAYY;0.2067;0.0804248;260.752;270.0;cable\n";
    let trafo =
        "id;nodeHV;nodeLV;type;tappos;autoTap;autoTapSide;loadingMax;substation;subnet;voltLvl\n\
        T1;MV Bus_1;LV Bus 1;TT;0;0;NULL;100;NULL;s;6\n";
    let trafo_type = "id;sR;vmHV;vmLV;va0;vmImp;pCu;pFe;iNoLoad;tapable;tapside;dVm;dVa;tapNeutr;tapMin;tapMax\n\
        TT;0.16;20.0;0.4;150.0;4.0;2.35;0.46;0.28751;1;HV;2.5;0;0;-2;2\n";
    let ext = "id;node;calc_type;dspf;pExtNet;qExtNet;pWardShunt;qWardShunt;rXWard;xXWard;vmXWard;subnet;voltLvl\n\
        Grid;MV Bus;vavm;1;NULL;NULL;NULL;NULL;NULL;NULL;NULL;s;5\n";
    let load = "id;node;profile;pLoad;qLoad;sR;subnet;voltLvl\nLoad 1;LV Bus 2;H0-A;0.004;0.001;0.005;s;7\n";
    let res = "id;node;type;profile;calc_type;pRES;qRES;sR;subnet;voltLvl\nPV 1;LV Bus 2;PV;PV5;pq;0.01;0;0.01;s;7\n";
    let load_profile = "time;H0-A_qload;H0-A_pload\n\
        01.01.2016 00:00;0.1;0.5\n01.01.2016 00:15;0.1;0.6\n01.01.2016 00:30;0.1;0.7\n";
    let res_profile = "time;PV5\n01.01.2016 00:00;0\n01.01.2016 00:15;0.5\n01.01.2016 00:30;1\n";
    vec![
        ("Node.csv", node.into()),
        ("Switch.csv", switch.into()),
        ("Line.csv", line.into()),
        ("LineType.csv", line_type.into()),
        ("Transformer.csv", trafo.into()),
        ("TransformerType.csv", trafo_type.into()),
        ("ExternalNet.csv", ext.into()),
        ("Load.csv", load.into()),
        ("RES.csv", res.into()),
        ("LoadProfile.csv", load_profile.into()),
        ("RESProfile.csv", res_profile.into()),
    ]
}

/// Writes the grid with `edit` applied to file `name` into a fresh temporary folder.
fn write_grid(test: &str, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("voltmesh-sim-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (file, text) in files() {
        let text = if file == name { edit(text) } else { text };
        std::fs::write(dir.join(file), text).unwrap();
    }
    dir
}

fn read(dir: &Path) -> Result<Grid, GridError> {
    let result = Grid::read(dir);
    let _ = std::fs::remove_dir_all(dir);
    result
}

#[test]
fn a_valid_grid_merges_closed_switches_and_names_groups_by_their_busbar() {
    let grid = read(&write_grid("valid", "", |t| t)).unwrap();
    let names: Vec<&str> = grid.buses.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["MV Bus", "LV Bus 1", "LV Bus 2"]);
    assert_eq!(grid.lines[0].from_bus, 1);
    assert_eq!(grid.external_net.vm_pu, 1.02);
    assert_eq!(grid.intervals(), 3);
    let mut power = super::BusPower::zeros(3);
    grid.bus_power_at(2, &mut power);
    assert!((power.p_mw[2] - (0.004 * 0.7 - 0.01)).abs() < 1e-12);
}

#[test]
fn unknown_node_names_file_and_line() {
    let err = read(&write_grid("unknown", "Line.csv", |t| {
        t.replace("LV Bus 2;NAYY", "LV Bus 9;NAYY")
    }))
    .unwrap_err();
    assert!(
        matches!(&err, GridError::UnknownNode { file, line: 2, node } if file.ends_with("Line.csv") && node == "LV Bus 9"),
        "{err}"
    );
    assert!(err.to_string().contains("Line.csv, line 2"), "{err}");
}

#[test]
fn missing_profile_column_names_the_load_row() {
    let err = read(&write_grid("profile", "Load.csv", |t| {
        t.replace("H0-A", "H0-Z")
    }))
    .unwrap_err();
    assert!(
        matches!(&err, GridError::MissingProfile { file, line: 2, column, .. } if file.ends_with("Load.csv") && column == "H0-Z_pload"),
        "{err}"
    );
}

#[test]
fn negative_length_is_rejected() {
    let err = read(&write_grid("length", "Line.csv", |t| {
        t.replace(";0.1;", ";-0.1;")
    }))
    .unwrap_err();
    assert!(
        matches!(&err, GridError::NegativeLength { line: 2, .. }),
        "{err}"
    );
}

#[test]
fn an_open_switch_islands_the_buses_behind_it() {
    let err = read(&write_grid("open", "Switch.csv", |t| {
        t.replace("LS;1;", "LS;0;")
    }))
    .unwrap_err();
    assert!(
        matches!(&err, GridError::IslandedBus { file, line: 4, node } if file.ends_with("Node.csv") && node == "LV Bus 1_1"),
        "{err}"
    );
}

#[test]
fn a_bus_with_nothing_attached_is_islanded() {
    let err = read(&write_grid("island", "Node.csv", |t| {
        t + "LV Bus 3;busbar;NULL;NULL;0.4;0.9;1.1;NULL;c;s;7\n"
    }))
    .unwrap_err();
    assert!(
        matches!(&err, GridError::IslandedBus { line: 7, .. }),
        "{err}"
    );
}

#[test]
fn a_comma_separated_file_is_not_simbench() {
    let err = read(&write_grid("commas", "Node.csv", |t| t.replace(';', ","))).unwrap_err();
    assert!(
        matches!(&err, GridError::NotSimBench { file, .. } if file.ends_with("Node.csv")),
        "{err}"
    );
}

#[test]
fn a_bad_number_names_its_column() {
    let err = read(&write_grid("number", "LineType.csv", |t| {
        t.replace("0.2067", "zero")
    }))
    .unwrap_err();
    assert!(
        matches!(&err, GridError::BadValue { line: 2, column, .. } if column == "r"),
        "{err}"
    );
}

#[test]
fn a_profile_that_jumps_in_time_is_rejected() {
    let err = read(&write_grid("time", "RESProfile.csv", |t| {
        t.replace("01.01.2016 00:30", "02.01.2016 00:30")
    }))
    .unwrap_err();
    assert!(
        matches!(&err, GridError::IrregularTime { line: 4, .. }),
        "{err}"
    );
}

#[test]
fn duplicate_load_ids_are_rejected() {
    let err = read(&write_grid("dup", "Load.csv", |t| {
        format!("{t}Load 1;LV Bus 1;H0-A;0.001;0.0;0.001;s;7\n")
    }))
    .unwrap_err();
    assert!(
        matches!(&err, GridError::DuplicateId { line: 3, id, .. } if id == "Load 1"),
        "{err}"
    );
}
