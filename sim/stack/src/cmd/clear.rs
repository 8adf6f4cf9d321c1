//! `voltmesh clear`: clear a book file and print the result (see `voltmesh_engine::book_file`).

use super::BadInput;
use voltmesh_engine::cli::ClearArgs;

/// Runs `voltmesh clear`: prints the report on stdout.
///
/// # Errors
/// Every error is [`BadInput`] (exit status 2, one line that names the order or the flag).
pub fn run(args: &ClearArgs) -> anyhow::Result<()> {
    let result = args.report(None);
    let report = result.map_err(|message| BadInput(anyhow::anyhow!(message)))?;
    super::print(&report);
    Ok(())
}
