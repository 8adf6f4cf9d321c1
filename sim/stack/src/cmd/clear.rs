//! `voltmesh clear`: clear a book file and print the result (see `voltmesh_engine::book_file`).

use super::BadInput;
use voltmesh_engine::book_file;
use voltmesh_engine::cli::ClearArgs;

/// Runs `voltmesh clear`: prints the report on stdout.
///
/// # Errors
/// Every error is [`BadInput`] (exit status 2, one line that names the order or the flag).
pub fn run(args: &ClearArgs) -> anyhow::Result<()> {
    let result = args.market().and_then(|(mechanism, rules)| {
        let text = match &args.orders {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            None => book_file::EXAMPLE_BOOK.to_owned(),
        };
        book_file::clear_text(&text, mechanism, rules).map_err(|e| e.to_string())
    });
    let report = result.map_err(|message| BadInput(anyhow::anyhow!(message)))?;
    super::print(&report);
    Ok(())
}
