//! Where the bundled and shared SimBench data live.
//!
//! `sim/data/` ships the 15-bus demo grid `1-LV-rural1--0-sw` and the reference power flows, so a
//! fresh clone can run it; larger grids are looked up in the team's shared data folder beside the
//! repository (`../shared/data/simbench` from the repository root), when it is there.

use std::path::PathBuf;

/// The name of the bundled demo grid.
pub const DEMO_GRID: &str = "1-LV-rural1--0-sw";

/// The 111-bus grid used by the year benchmark (in the shared data folder only).
pub const SEMIURB_GRID: &str = "1-LV-semiurb5--0-sw";

/// `sim/data/` in the source tree this crate was built from.
pub fn bundled_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// The bundled demo grid folder.
pub fn demo_grid_dir() -> PathBuf {
    bundled_dir().join(DEMO_GRID)
}

/// The shared SimBench folder beside the repository, if present.
pub fn shared_simbench_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/simbench");
    dir.is_dir().then_some(dir)
}

/// A grid folder by name: the bundled copy first, then the shared folder.
pub fn find_grid(name: &str) -> Option<PathBuf> {
    let bundled = bundled_dir().join(name);
    if bundled.join("Node.csv").is_file() {
        return Some(bundled);
    }
    shared_simbench_dir()
        .map(|d| d.join(name))
        .filter(|d| d.join("Node.csv").is_file())
}

/// The reference power flow JSON for a grid (bundled copy).
pub fn reference_json(name: &str) -> PathBuf {
    bundled_dir().join("reference").join(format!("{name}.json"))
}
