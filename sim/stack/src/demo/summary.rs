//! Per-interval records and the closing summary of a demo run: what was ordered, traded and
//! paid, and what each household saved against the no-market baseline.
//!
//! # Settlement
//! Each cleared interval is settled with the engine (`voltmesh_engine::settlement::settle`)
//! against the energy the households' meters really recorded in it (the register difference over
//! the interval), not against their forecasts: a buyer who bought more than it used sells the
//! rest to the utility at the feed-in tariff, one who bought less buys the rest at retail. The
//! baseline bills the same metered energy with no market: import at retail, export at feed-in.
//!
//! # Local share
//! The share of the households' metered import that neighbours supplied:
//! `Σ (import − bought from the utility) / Σ import` over the interval's households.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::NaiveDateTime;
use serde::Serialize;
use voltmesh_engine::settlement::settle;
use voltmesh_engine::{Money, ParticipantId, Price, Tariffs};

use super::households::DemoHousehold;
use super::neighborhood::Prices;
use super::progress::IntervalView;
use super::DemoError;

/// One interval of the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntervalRecord {
    /// Start, Unix seconds.
    pub start: i64,
    /// The profile time it plays (`YYYY-MM-DD HH:MM`).
    pub profile_time: String,
    /// Orders in its book.
    pub orders: usize,
    /// Trades.
    pub trades: usize,
    /// Energy traded between neighbours, Wh.
    pub volume_wh: u64,
    /// The uniform price, if anything traded.
    pub price: Option<Price>,
    /// Households' metered import, Wh.
    pub import_wh: u64,
    /// Households' metered export, Wh.
    pub export_wh: u64,
    /// Share of the import that neighbours supplied (0..=1), if there was import.
    pub local_share: Option<f64>,
    /// Committed height when it was read.
    pub height: u64,
    /// All households' bills with the market.
    pub market_cost: Money,
    /// All households' bills without it.
    pub baseline_cost: Money,
}

/// The closing summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Intervals shown.
    pub intervals: usize,
    /// Intervals that had orders and cleared.
    pub cleared: usize,
    /// Orders finalized over the run.
    pub orders: usize,
    /// Trades over the run.
    pub trades: usize,
    /// Energy traded, Wh.
    pub traded_wh: u64,
    /// Mean of the intervals' prices, per kWh.
    pub mean_price: Option<f64>,
    /// Volume-weighted price, per kWh.
    pub volume_weighted_price: Option<f64>,
    /// Lowest and highest price.
    pub price_range: Option<(Price, Price)>,
    /// Feed-in tariff.
    pub feed_in: Price,
    /// Retail price.
    pub retail: Price,
    /// Share of the metered import that neighbours supplied.
    pub local_share: Option<f64>,
    /// Blocks committed while the intervals ran.
    pub blocks: u64,
    /// Households' total saving against the baseline.
    pub savings_total: Money,
    /// Saving per household, by participant.
    pub savings: BTreeMap<ParticipantId, Money>,
}

/// Collects the run's records.
#[derive(Debug, Clone)]
pub struct Ledger {
    prices: Prices,
    tariffs: Tariffs,
    /// Records so far.
    pub records: Vec<IntervalRecord>,
    savings: BTreeMap<ParticipantId, Money>,
    first_height: Option<u64>,
}

fn kwh(wh: u64) -> f64 {
    wh as f64 / 1000.0
}

fn price_f64(p: Price) -> f64 {
    p.micros() as f64 / 1e6
}

impl Ledger {
    /// An empty ledger for `prices`.
    ///
    /// # Errors
    /// [`DemoError::Options`] if the tariffs are inconsistent.
    pub fn new(prices: Prices) -> Result<Ledger, DemoError> {
        let tariffs = Tariffs::new(prices.feed_in, prices.retail)
            .map_err(|e| DemoError::Options(format!("tariffs: {e}")))?;
        Ok(Ledger {
            prices,
            tariffs,
            records: Vec::new(),
            savings: BTreeMap::new(),
            first_height: None,
        })
    }

    /// Settles `view`, whose energy the meters recorded in profile step `step` (index into the
    /// meters' playback), and records it.
    ///
    /// # Errors
    /// [`DemoError::Stalled`] if the clearing names a participant that is not a household.
    pub fn record(
        &mut self,
        view: &IntervalView,
        step: usize,
        profile_time: NaiveDateTime,
        homes: &[DemoHousehold],
    ) -> Result<&IntervalRecord, DemoError> {
        let metered: BTreeMap<ParticipantId, i64> = homes
            .iter()
            .map(|h| (h.participant.clone(), h.meter.profile.metered_net_wh(step)))
            .collect();
        let trades = view.outcome().map(|o| o.trades.as_slice()).unwrap_or(&[]);
        let settlement = settle(trades, &metered, self.tariffs, self.prices.network_fee)
            .map_err(|e| DemoError::Stalled(format!("interval {}: {e}", view.start)))?;
        let mut record = IntervalRecord {
            start: view.start,
            profile_time: profile_time.format("%Y-%m-%d %H:%M").to_string(),
            orders: view.orders(),
            trades: trades.len(),
            volume_wh: view.volume_wh(),
            price: view.price(),
            import_wh: 0,
            export_wh: 0,
            local_share: None,
            height: view.height,
            market_cost: Money::ZERO,
            baseline_cost: Money::ZERO,
        };
        let mut from_utility = 0u64;
        for bill in &settlement.bills {
            let net = bill.metered_net_export_wh;
            let (import, export) = ((-net).max(0).unsigned_abs(), net.max(0).unsigned_abs());
            let baseline =
                Money::of(import, self.prices.retail) - Money::of(export, self.prices.feed_in);
            record.import_wh += import;
            record.export_wh += export;
            from_utility += bill.from_utility_wh.min(import);
            record.market_cost += bill.total;
            record.baseline_cost += baseline;
            *self
                .savings
                .entry(bill.participant.clone())
                .or_insert(Money::ZERO) += baseline - bill.total;
        }
        if record.import_wh > 0 {
            record.local_share =
                Some((record.import_wh - from_utility) as f64 / record.import_wh as f64);
        }
        self.first_height.get_or_insert(view.height);
        self.records.push(record);
        let last = self.records.len() - 1;
        Ok(&self.records[last])
    }

    /// The summary of everything recorded.
    pub fn summary(&self) -> Summary {
        let priced: Vec<(Price, u64)> = self
            .records
            .iter()
            .filter_map(|r| r.price.map(|p| (p, r.volume_wh)))
            .collect();
        let traded_wh: u64 = self.records.iter().map(|r| r.volume_wh).sum();
        let import: u64 = self.records.iter().map(|r| r.import_wh).sum();
        let local: f64 = self
            .records
            .iter()
            .map(|r| r.local_share.unwrap_or(0.0) * r.import_wh as f64)
            .sum();
        let last_height = self.records.last().map_or(0, |r| r.height);
        Summary {
            intervals: self.records.len(),
            cleared: self.records.iter().filter(|r| r.orders > 0).count(),
            orders: self.records.iter().map(|r| r.orders).sum(),
            trades: self.records.iter().map(|r| r.trades).sum(),
            traded_wh,
            mean_price: (!priced.is_empty()).then(|| {
                priced.iter().map(|(p, _)| price_f64(*p)).sum::<f64>() / priced.len() as f64
            }),
            volume_weighted_price: (traded_wh > 0).then(|| {
                priced
                    .iter()
                    .map(|(p, v)| price_f64(*p) * *v as f64)
                    .sum::<f64>()
                    / traded_wh as f64
            }),
            price_range: priced
                .iter()
                .map(|(p, _)| *p)
                .min()
                .zip(priced.iter().map(|(p, _)| *p).max()),
            feed_in: self.prices.feed_in,
            retail: self.prices.retail,
            local_share: (import > 0).then(|| local / import as f64),
            blocks: last_height.saturating_sub(self.first_height.unwrap_or(last_height)),
            savings_total: self.savings.values().copied().sum(),
            savings: self.savings.clone(),
        }
    }
}

/// The header of the per-interval lines.
pub fn row_header() -> String {
    format!(
        "{:>8}  {:>16}  {:>6}  {:>10}  {:>9}  {:>7}  {:>6}",
        "interval", "profile time", "orders", "traded kWh", "price/kWh", "local", "height"
    )
}

/// One per-interval line.
pub fn row(r: &IntervalRecord) -> String {
    let time = chrono::DateTime::from_timestamp(r.start, 0)
        .map_or_else(|| r.start.to_string(), |t| t.format("%H:%M:%S").to_string());
    format!(
        "{time:>8}  {:>16}  {:>6}  {:>10.3}  {:>9}  {:>7}  {:>6}",
        r.profile_time,
        r.orders,
        kwh(r.volume_wh),
        r.price
            .map_or("-".into(), |p| format!("{:.4}", price_f64(p))),
        r.local_share
            .map_or("-".into(), |s| format!("{:.1} %", s * 100.0)),
        r.height
    )
}

/// The closing table.
pub fn table(s: &Summary, households: usize) -> String {
    let p4 = |p: f64| format!("{p:.4}");
    let mut out = String::new();
    let _ = writeln!(out, "== summary");
    let _ = writeln!(
        out,
        "intervals          {} ({} with orders)",
        s.intervals, s.cleared
    );
    let _ = writeln!(out, "orders finalized   {} ({} trades)", s.orders, s.trades);
    let _ = writeln!(out, "traded             {:.3} kWh", kwh(s.traded_wh));
    let _ = writeln!(
        out,
        "price per kWh      mean {}, volume-weighted {}, range {} (feed-in {}, retail {})",
        s.mean_price.map_or("-".into(), p4),
        s.volume_weighted_price.map_or("-".into(), p4),
        s.price_range.map_or("-".into(), |(lo, hi)| format!(
            "{}..{}",
            p4(price_f64(lo)),
            p4(price_f64(hi))
        )),
        p4(price_f64(s.feed_in)),
        p4(price_f64(s.retail)),
    );
    let _ = writeln!(
        out,
        "local share        {} of the households' metered import came from neighbours",
        s.local_share
            .map_or("-".into(), |x| format!("{:.1} %", x * 100.0))
    );
    let _ = writeln!(out, "blocks             {} committed meanwhile", s.blocks);
    let (min, max) = (
        s.savings.values().min().copied().unwrap_or(Money::ZERO),
        s.savings.values().max().copied().unwrap_or(Money::ZERO),
    );
    let _ = writeln!(
        out,
        "household savings  {:.4} in total vs no market ({} households; per household {:.4} .. {:.4})",
        s.savings_total.round_to(4),
        households,
        min.round_to(4),
        max.round_to(4),
    );
    out
}
