//! `voltmesh correct`: imports the grid operator's official quarter-hour data (Austria's EDA,
//! Germany's MSCONS, exported to CSV) as a correction of settled intervals (issue 14,
//! deliverable 5; the rule is [`voltmesh_wire::correction`]'s).
//!
//! # Input
//! - `--readings`: CSV with the header `metering_point,interval_start,import_wh,export_wh`; one
//!   row per metering point and interval; `interval_start` in RFC 3339 or Unix seconds, on the
//!   chain's interval grid; energies in whole Wh.
//! - `--points`: CSV with the header `metering_point,participant`: which member each official
//!   metering point belongs to (a member may have several: their readings are summed).
//!
//! # What it does
//! For every interval the readings name, it reads the interval's bills and earlier corrections
//! from the node (signed with the billing key), and corrects each member whose official reading
//! differs from the one its bill (or last correction) was settled on. Intervals not settled yet
//! and members without a bill in an interval are reported and left alone; so are readings equal
//! to what was billed. The corrections go to the node as signed imports (split so that each
//! fits a block), and the command waits until the chain has committed them, then prints what
//! each interval's entries changed. An unknown metering point, a duplicate row or a malformed
//! value fails before anything is sent.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::DateTime;
use voltmesh_engine::{Money, ParticipantId, Wh};
use voltmesh_wire::api::SettlementView;
use voltmesh_wire::correction::{
    settlement_proof, CorrectionTicket, IntervalCorrection, LeafCorrection, SettledLeaf,
    MAX_CORRECTIONS,
};

use super::BadInput;

/// Arguments of `voltmesh correct`.
#[derive(Debug, clap::Args)]
pub struct CorrectArgs {
    /// A node's API, e.g. `http://127.0.0.1:7600`.
    #[arg(long)]
    pub node: String,
    /// The billing key file (a key genesis names in `billing_keys`): it signs the import and
    /// the reads.
    #[arg(long)]
    pub key: PathBuf,
    /// The official readings (module docs).
    #[arg(long)]
    pub readings: PathBuf,
    /// Which member each metering point belongs to (module docs).
    #[arg(long)]
    pub points: PathBuf,
    /// The import's id, shown in statements and the export (split imports get `-2`, `-3`, ...).
    #[arg(long)]
    pub id: String,
    /// Where the data comes from.
    #[arg(long, default_value = "EDA")]
    pub source: String,
    /// How long to wait for the chain to commit the imports, seconds.
    #[arg(long, default_value_t = 60)]
    pub wait_secs: u64,
}

/// The most bytes of JSON an import is built to (the node refuses more than
/// `MAX_CORRECTION_BYTES`, 256 KiB).
const IMPORT_BUDGET: usize = 200 * 1024;

/// One member's official energy in one interval, summed over its metering points.
#[derive(Debug, Default)]
struct Official {
    points: Vec<String>,
    import_wh: Wh,
    export_wh: Wh,
}

fn parse_start(text: &str) -> Option<i64> {
    text.parse::<i64>().ok().or_else(|| {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.timestamp())
    })
}

fn read_csv(path: &PathBuf, header: &[&str]) -> anyhow::Result<Vec<csv::StringRecord>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| BadInput(anyhow::anyhow!("{}: {e}", path.display())))?;
    let found: Vec<&str> = reader
        .headers()
        .map_err(|e| BadInput(anyhow::anyhow!("{}: {e}", path.display())))?
        .iter()
        .collect();
    if found != header {
        return Err(BadInput(anyhow::anyhow!(
            "{}: the header must be {}",
            path.display(),
            header.join(",")
        ))
        .into());
    }
    let mut rows = Vec::new();
    for (line, row) in reader.records().enumerate() {
        rows.push(
            row.map_err(|e| BadInput(anyhow::anyhow!("{} row {}: {e}", path.display(), line + 2)))?,
        );
    }
    Ok(rows)
}

/// The official readings by interval and member.
fn officials(
    args: &CorrectArgs,
) -> anyhow::Result<BTreeMap<i64, BTreeMap<ParticipantId, Official>>> {
    let mut points: BTreeMap<String, ParticipantId> = BTreeMap::new();
    for row in read_csv(&args.points, &["metering_point", "participant"])? {
        if points.insert(row[0].to_owned(), row[1].into()).is_some() {
            return Err(BadInput(anyhow::anyhow!(
                "{}: metering point {} is listed twice",
                args.points.display(),
                &row[0]
            ))
            .into());
        }
    }
    let mut out: BTreeMap<i64, BTreeMap<ParticipantId, Official>> = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for (n, row) in read_csv(
        &args.readings,
        &["metering_point", "interval_start", "import_wh", "export_wh"],
    )?
    .iter()
    .enumerate()
    {
        let at = || format!("{} row {}", args.readings.display(), n + 2);
        let point = &row[0];
        let participant = points.get(point).ok_or_else(|| {
            BadInput(anyhow::anyhow!(
                "{}: metering point {point} is not in {}",
                at(),
                args.points.display()
            ))
        })?;
        let start = parse_start(&row[1]).ok_or_else(|| {
            BadInput(anyhow::anyhow!(
                "{}: interval_start {:?}: use RFC 3339 or Unix seconds",
                at(),
                &row[1]
            ))
        })?;
        let wh = |i: usize| {
            row[i].parse::<Wh>().map_err(|_| {
                BadInput(anyhow::anyhow!(
                    "{}: {:?} is not a whole number of Wh",
                    at(),
                    &row[i]
                ))
            })
        };
        let (import_wh, export_wh) = (wh(2)?, wh(3)?);
        if !seen.insert((point.to_owned(), start)) {
            return Err(BadInput(anyhow::anyhow!(
                "{}: metering point {point} has two readings for interval {start}",
                at()
            ))
            .into());
        }
        let official = out
            .entry(start)
            .or_default()
            .entry(participant.clone())
            .or_default();
        official.points.push(point.to_owned());
        official.import_wh = official.import_wh.saturating_add(import_wh);
        official.export_wh = official.export_wh.saturating_add(export_wh);
    }
    Ok(out)
}

/// The interval's leaves as the ledger holds them now: its bills, with every committed
/// correction applied in order.
fn current_leaves(view: &SettlementView) -> Vec<SettledLeaf> {
    let mut leaves: Vec<SettledLeaf> = view.bills.iter().map(SettledLeaf::of).collect();
    for committed in &view.corrections {
        for entry in &committed.corrections.entries {
            if let Some(leaf) = leaves
                .iter_mut()
                .find(|l| l.participant == entry.participant)
            {
                leaf.metered = true;
                leaf.metered_net_export_wh = entry.after.metered_net_export_wh;
            }
        }
    }
    leaves
}

/// `voltmesh correct` (module docs).
///
/// # Errors
/// Bad input files, a node that does not answer or refuses the key or an import, or imports
/// not committed within `--wait-secs`.
pub fn run(args: &CorrectArgs) -> anyhow::Result<()> {
    let officials = officials(args)?;
    let (client, key, neighborhood) = super::billing_client(&args.node, &args.key)?;
    let mut intervals = Vec::new();
    let mut report = String::new();
    for (&start, readings) in &officials {
        let Some(view) = client
            .settlement(start)
            .with_context(|| format!("reading the bills of interval {start}"))?
        else {
            report += &format!("interval {start}: not settled (yet); left alone\n");
            continue;
        };
        let leaves = current_leaves(&view);
        let mut corrections = Vec::new();
        for (participant, official) in readings {
            let Some(index) = leaves.iter().position(|l| &l.participant == participant) else {
                report += &format!("interval {start}, {participant}: no bill; left alone\n");
                continue;
            };
            let correction = LeafCorrection {
                index: u32::try_from(index).context("too many bills")?,
                leaf: leaves[index].clone(),
                metering_points: official.points.clone(),
                import_wh: official.import_wh,
                export_wh: official.export_wh,
            };
            if correction.corrected() != correction.leaf {
                corrections.push(correction);
            }
        }
        if corrections.is_empty() {
            report += &format!("interval {start}: every reading as billed\n");
            continue;
        }
        let hashes: Vec<[u8; 32]> = leaves.iter().map(SettledLeaf::hash).collect();
        let indices: Vec<usize> = corrections.iter().map(|c| c.index as usize).collect();
        intervals.push(IntervalCorrection {
            interval_start: start,
            proof: settlement_proof(&hashes, &indices),
            corrections,
        });
    }
    // Whole intervals per import, each within the byte budget and the leaf bound.
    let mut imports: Vec<Vec<IntervalCorrection>> = vec![Vec::new()];
    let (mut bytes, mut leaves) = (0usize, 0usize);
    for interval in intervals {
        let size = serde_json::to_vec(&interval).map_or(usize::MAX, |v| v.len());
        let n = interval.corrections.len();
        let current = imports.last().map_or(0, Vec::len);
        if current > 0 && (bytes + size > IMPORT_BUDGET || leaves + n > MAX_CORRECTIONS) {
            imports.push(Vec::new());
            (bytes, leaves) = (0, 0);
        }
        if size > IMPORT_BUDGET || n > MAX_CORRECTIONS {
            bail!(
                "interval {}: {n} corrections do not fit one import",
                interval.interval_start
            );
        }
        bytes += size;
        leaves += n;
        if let Some(last) = imports.last_mut() {
            last.push(interval);
        }
    }
    imports.retain(|i| !i.is_empty());
    let count = imports.len();
    let mut waiting = Vec::new();
    for (n, intervals) in imports.into_iter().enumerate() {
        let id = if count == 1 || n == 0 {
            args.id.clone()
        } else {
            format!("{}-{}", args.id, n + 1)
        };
        let span = (
            intervals.first().map_or(0, |i| i.interval_start),
            intervals.last().map_or(0, |i| i.interval_start) + 1,
        );
        let signed = CorrectionTicket {
            id: id.clone(),
            source: args.source.clone(),
            intervals,
        }
        .sign(&neighborhood, &key);
        let answer = client
            .submit_correction(&signed)
            .with_context(|| format!("submitting import {id}"))?;
        waiting.push((id, answer.digest, span));
    }
    let deadline = Instant::now() + Duration::from_secs(args.wait_secs);
    for (id, digest, (from, to)) in &waiting {
        loop {
            let committed: Vec<_> = client
                .corrections(*from, *to)?
                .corrections
                .into_iter()
                .filter(|c| &c.corrections.digest == digest)
                .collect();
            if !committed.is_empty() {
                for c in &committed {
                    let total: Money = c.corrections.entries.iter().map(|e| e.total).sum();
                    report += &format!(
                        "interval {}: {} entries, members pay {} {} more (import {id}, block {} at height {})\n",
                        c.corrections.interval_start,
                        c.corrections.entries.len(),
                        total,
                        c.corrections.currency.code(),
                        c.block,
                        c.height,
                    );
                }
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "import {id} was taken but not committed within {} s; its digest is {digest}",
                    args.wait_secs
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    report += &format!("{} import(s) committed\n", waiting.len());
    super::print(&report);
    Ok(())
}
