//! `voltmesh export`: the community's billing for a period, from a node's committed bills
//! (issue 14, deliverable 4), as two CSV files that reconcile to zero.
//!
//! - `intervals.csv`: one row per party and settled interval (`entry` `bill`): every
//!   participant's bill, and the utility's and the network operator's lines, with the block
//!   height and hash that hold them; then one row per party of each correction of the interval
//!   from official metering data (`entry` `correction`, the import's id in `import`; members'
//!   energy columns are the changes, `from_utility_wh` and `to_utility_wh` signed), with the
//!   block that committed it. Bills are never rewritten: a corrected interval has both.
//! - `members.csv`: one row per party, billing period (`--period month|day|all`, UTC) and
//!   entry: the interval rows summed; a `bill` row has the carry before the period's first bill
//!   and after its last, a `correction` row the sums of its entries' carries (corrections of a
//!   period's intervals arrive whenever the official data does, so their carries do not chain
//!   within a period).
//!
//! # Signs and reconciliation
//! Every amount is what the party pays: a participant's bill as the ledger has it, the
//! utility's and the network operator's revenue negated. So in every interval and every period
//! the parties' exact `total`s sum to zero, and every row's `billed` equals `total + carry_in -
//! carry_out` (the rounding rule of [`voltmesh_wire::bill`]). The export checks both before it
//! writes anything and fails, naming the interval, if the node's bills do not reconcile.
//!
//! The reads are signed with a billing key (genesis `billing_keys`): a participant's bills are
//! not served to anyone else.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use voltmesh_engine::{Money, Wh};
use voltmesh_wire::api::SettlementView;
use voltmesh_wire::bill::Bill;
use voltmesh_wire::correction::{CorrectionEntry, IntervalCorrections};

use super::BadInput;

/// How `members.csv` groups intervals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Period {
    /// Calendar months (UTC).
    Month,
    /// Days (UTC).
    Day,
    /// The whole range as one period.
    All,
}

/// Arguments of `voltmesh export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// A node's API, e.g. `http://127.0.0.1:7600`.
    #[arg(long)]
    pub node: String,
    /// The billing key file (a key genesis names in `billing_keys`).
    #[arg(long)]
    pub key: PathBuf,
    /// First day (inclusive), `YYYY-MM-DD` (UTC), or an interval start in Unix seconds.
    #[arg(long)]
    pub from: String,
    /// Last day (exclusive), `YYYY-MM-DD` (UTC), or an interval start in Unix seconds.
    #[arg(long)]
    pub to: String,
    /// The billing period of the rows of `members.csv`.
    #[arg(long, value_enum, default_value = "month")]
    pub period: Period,
    /// Directory to write `members.csv` and `intervals.csv` to (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

/// One party's line of one interval, signed as the party pays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Line {
    bought_wh: i64,
    sold_wh: i64,
    from_utility_wh: i64,
    to_utility_wh: i64,
    local_energy: Money,
    network_fees: Money,
    utility: Money,
    total: Money,
    billed: Money,
    carry_in: Money,
    carry_out: Money,
    no_market: Money,
    unmetered: u64,
    intervals: u64,
}

impl Line {
    /// The names of [`Line::cells`], in order (both files have these columns).
    const COLUMNS: [&'static str; 12] = [
        "bought_wh",
        "sold_wh",
        "from_utility_wh",
        "to_utility_wh",
        "local_energy",
        "network_fees",
        "utility",
        "total",
        "billed",
        "carry_in",
        "carry_out",
        "no_market",
    ];

    /// The line's energy and money, as [`Line::COLUMNS`] name them.
    fn cells(&self) -> [String; 12] {
        [
            self.bought_wh.to_string(),
            self.sold_wh.to_string(),
            self.from_utility_wh.to_string(),
            self.to_utility_wh.to_string(),
            self.local_energy.to_string(),
            self.network_fees.to_string(),
            self.utility.to_string(),
            self.total.to_string(),
            self.billed.to_string(),
            self.carry_in.to_string(),
            self.carry_out.to_string(),
            self.no_market.to_string(),
        ]
    }

    fn of(bill: &Bill) -> Line {
        Line {
            bought_wh: wh(bill.bought_wh),
            sold_wh: wh(bill.sold_wh),
            from_utility_wh: wh(bill.from_utility_wh),
            to_utility_wh: wh(bill.to_utility_wh),
            local_energy: bill.local_energy,
            network_fees: bill.network_fees,
            utility: bill.utility,
            total: bill.total,
            billed: bill.billed,
            carry_in: bill.billed + bill.carry - bill.total,
            carry_out: bill.carry,
            no_market: bill.no_market,
            unmetered: u64::from(!bill.metered),
            intervals: 1,
        }
    }

    /// A correction entry: what changed with the utility.
    fn correction(entry: &CorrectionEntry) -> Line {
        let (before, after) = (&entry.before, &entry.after);
        Line {
            from_utility_wh: wh(after.from_utility_wh) - wh(before.from_utility_wh),
            to_utility_wh: wh(after.to_utility_wh) - wh(before.to_utility_wh),
            utility: entry.total,
            total: entry.total,
            billed: entry.billed,
            carry_in: entry.carry_in,
            carry_out: entry.carry,
            no_market: after.no_market - before.no_market,
            intervals: 1,
            ..Line::default()
        }
    }

    /// A revenue line (utility, network operator) as what the party pays.
    fn revenue(line: &voltmesh_wire::bill::PartyLine) -> Line {
        let neg = |m: Money| Money::ZERO - m;
        Line {
            total: neg(line.revenue),
            billed: neg(line.billed),
            carry_in: neg(line.billed + line.carry - line.revenue),
            carry_out: neg(line.carry),
            intervals: 1,
            ..Line::default()
        }
    }

    /// Adds a later interval's line: bills' carries chain (the first's in, the last's out),
    /// corrections' are summed (module docs).
    fn add(&mut self, later: &Line, entry: Entry) {
        match entry {
            Entry::Bill if self.intervals == 0 => self.carry_in = later.carry_in,
            Entry::Bill => {}
            Entry::Correction => {
                self.carry_in += later.carry_in;
                self.carry_out += later.carry_out;
            }
        }
        self.bought_wh += later.bought_wh;
        self.sold_wh += later.sold_wh;
        self.from_utility_wh += later.from_utility_wh;
        self.to_utility_wh += later.to_utility_wh;
        self.local_energy += later.local_energy;
        self.network_fees += later.network_fees;
        self.utility += later.utility;
        self.total += later.total;
        self.billed += later.billed;
        if entry == Entry::Bill {
            self.carry_out = later.carry_out;
        }
        self.no_market += later.no_market;
        self.unmetered += later.unmetered;
        self.intervals += later.intervals;
    }
}

/// Whether a row is a bill or a correction of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Entry {
    Bill,
    Correction,
}

impl Entry {
    fn name(self) -> &'static str {
        match self {
            Entry::Bill => "bill",
            Entry::Correction => "correction",
        }
    }
}

fn wh(energy: Wh) -> i64 {
    i64::try_from(energy).unwrap_or(i64::MAX)
}

/// The parties of one correction of an interval: the members it corrects by id, then
/// `utility`.
fn correction_lines(corrections: &IntervalCorrections) -> Vec<(String, &'static str, Line)> {
    let mut out: Vec<(String, &'static str, Line)> = corrections
        .entries
        .iter()
        .map(|e| (e.participant.to_string(), "member", Line::correction(e)))
        .collect();
    out.push((
        "utility".into(),
        "utility",
        Line::revenue(&corrections.utility),
    ));
    out
}

/// The parties of a settlement, in order: members by id, then `utility`, then `network`.
fn lines(view: &SettlementView) -> Vec<(String, &'static str, Line)> {
    let mut out: Vec<(String, &'static str, Line)> = view
        .bills
        .iter()
        .map(|b| (b.participant.to_string(), "member", Line::of(b)))
        .collect();
    out.push((
        "utility".into(),
        "utility",
        Line::revenue(&view.settled.utility),
    ));
    out.push((
        "network".into(),
        "network_operator",
        Line::revenue(&view.settled.network),
    ));
    out
}

fn parse_bound(text: &str) -> anyhow::Result<i64> {
    if let Ok(secs) = text.parse::<i64>() {
        return Ok(secs);
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| BadInput(anyhow::anyhow!("{text:?}: use YYYY-MM-DD or Unix seconds")))?;
    Ok(day
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc()
        .timestamp())
}

fn period_of(period: Period, interval_start: i64) -> String {
    let at = DateTime::<Utc>::from_timestamp(interval_start, 0).unwrap_or_default();
    match period {
        Period::Month => format!("{:04}-{:02}", at.year(), at.month()),
        Period::Day => at.format("%Y-%m-%d").to_string(),
        Period::All => "all".into(),
    }
}

/// `voltmesh export` (module docs).
///
/// # Errors
/// Bad arguments, a node that does not answer or refuses the key, bills that do not reconcile,
/// or files that cannot be written.
pub fn run(args: &ExportArgs) -> anyhow::Result<()> {
    let (from, to) = (parse_bound(&args.from)?, parse_bound(&args.to)?);
    if from > to {
        return Err(BadInput(anyhow::anyhow!("--from is after --to")).into());
    }
    let (client, _, _) = super::billing_client(&args.node, &args.key)?;
    let mut settled = Vec::new();
    let mut next = Some(from);
    while let Some(at) = next {
        let page = client
            .settlements(at, to)
            .with_context(|| format!("listing settlements on {}", args.node))?;
        settled.extend(page.settled);
        next = page.next_from;
    }
    let mut currency = None;
    let mut detail = csv::Writer::from_writer(Vec::new());
    detail.write_record(
        [
            "interval_start",
            "party",
            "kind",
            "entry",
            "import",
            "metered",
        ]
        .into_iter()
        .chain(Line::COLUMNS)
        .chain(["currency", "height", "block"]),
    )?;
    let mut periods: BTreeMap<(String, String, Entry), (&'static str, Line)> = BTreeMap::new();
    let mut corrections = 0usize;
    for summary in &settled {
        let start = summary.interval_start;
        let view = client
            .settlement(start)
            .with_context(|| format!("reading the bills of interval {start}"))?
            .with_context(|| format!("interval {start} is listed as settled but not served"))?;
        currency.get_or_insert(view.settled.currency);
        let mut groups = vec![(
            Entry::Bill,
            String::new(),
            view.settled.height,
            view.settled.block.clone(),
            lines(&view),
        )];
        for c in &view.corrections {
            corrections += 1;
            groups.push((
                Entry::Correction,
                c.corrections.import.clone(),
                c.height,
                c.block.clone(),
                correction_lines(&c.corrections),
            ));
        }
        for (entry, import, height, block, lines) in groups {
            let sum: Money = lines.iter().map(|(_, _, l)| l.total).sum();
            if sum != Money::ZERO {
                bail!(
                    "the {} lines of interval {start} do not reconcile: the parties' totals sum to {sum}",
                    entry.name()
                );
            }
            let time = DateTime::<Utc>::from_timestamp(start, 0)
                .unwrap_or_default()
                .to_rfc3339();
            for (party, kind, line) in &lines {
                if line.billed != line.total + line.carry_in - line.carry_out {
                    bail!(
                        "interval {start}, {party}: billed {} is not total + carry in - carry out",
                        line.billed
                    );
                }
                let metered = if *kind == "member" && entry == Entry::Bill {
                    (line.unmetered == 0).to_string()
                } else {
                    String::new()
                };
                detail.write_record(
                    [
                        time.clone(),
                        party.clone(),
                        (*kind).to_owned(),
                        entry.name().to_owned(),
                        import.clone(),
                        metered,
                    ]
                    .into_iter()
                    .chain(line.cells())
                    .chain([
                        view.settled.currency.code().to_owned(),
                        height.to_string(),
                        block.clone(),
                    ]),
                )?;
                periods
                    .entry((period_of(args.period, start), party.clone(), entry))
                    .or_insert_with(|| (kind, Line::default()))
                    .1
                    .add(line, entry);
            }
        }
    }
    let mut members = csv::Writer::from_writer(Vec::new());
    members.write_record(
        [
            "period",
            "party",
            "kind",
            "entry",
            "intervals",
            "unmetered_intervals",
        ]
        .into_iter()
        .chain(Line::COLUMNS)
        .chain(["savings", "currency"]),
    )?;
    let code = currency.map_or("", |c| c.code()).to_owned();
    let mut per_period: BTreeMap<&str, Money> = BTreeMap::new();
    for ((period, party, entry), (kind, line)) in &periods {
        *per_period.entry(period).or_default() += line.total;
        let savings = if *kind == "member" {
            (line.no_market - line.total).to_string()
        } else {
            String::new()
        };
        members.write_record(
            [
                period.clone(),
                party.clone(),
                (*kind).to_owned(),
                entry.name().to_owned(),
                line.intervals.to_string(),
                line.unmetered.to_string(),
            ]
            .into_iter()
            .chain(line.cells())
            .chain([savings, code.clone()]),
        )?;
    }
    if let Some((period, sum)) = per_period.iter().find(|(_, sum)| **sum != Money::ZERO) {
        bail!("period {period} does not reconcile: the parties' totals sum to {sum}");
    }
    write(&args.out, "intervals.csv", detail)?;
    write(&args.out, "members.csv", members)?;
    super::print(&format!(
        "{} settled intervals, {} corrections, {} period rows; every interval, correction and period reconciles to zero; wrote {} and {}\n",
        settled.len(),
        corrections,
        periods.len(),
        args.out.join("members.csv").display(),
        args.out.join("intervals.csv").display(),
    ));
    Ok(())
}

fn write(dir: &Path, name: &str, writer: csv::Writer<Vec<u8>>) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let bytes = writer.into_inner().context("CSV buffer")?;
    let path = dir.join(name);
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
}
