//! Every participant's running totals over its committed bills (exact money, energy bought and
//! sold), for the `balance` points the node writes ([`super::metrics`]); kept on disk in the
//! node's redb store, next to the API index it is derived from.
//!
//! # Why on disk
//! The households dashboard reads a household's balance as the LAST `balance` point
//! (`amount_total`, `bought_wh_total`, `sold_wh_total`: totals since the ledger began), as
//! `voltmesh sim` writes it. A node writes that point for each participant of each interval a
//! block settles, so it needs the participant's totals before the interval:
//! * a map of every participant in memory would grow with the community and start from zero
//!   after a restart;
//! * the index's statement from genesis reads every settled interval for each participant of
//!   each interval (quadratic over the ledger's life);
//! * so the totals live in a table keyed by participant: the node reads and writes only the
//!   participants of the intervals a block settles, and memory does not grow with history.
//!
//! # Invariants
//! - [`TOTALS`] holds, per participant, the sum of its bills of every settled interval up to
//!   and including the interval recorded as `through` in [`COUNTERS`], and nothing else:
//!   intervals are added once each, oldest first, in the transaction that moves `through`.
//! - The totals are derived from the index ([`Index::settled_bills`]), a pure function of the
//!   committed chain, so after a crash they catch up from it ([`BillTotals::open`],
//!   [`BillTotals::add`]). Like the index's, their transactions are made durable by the block
//!   commit that follows.
//! - `complete` ([`BillTotals::is_complete`]) is decided when the table is first made: true if
//!   the store then held the chain from genesis (its index then holds every bill). A node that
//!   started from a snapshot (state sync) or had already pruned its history does not know the
//!   bills below its base, so its totals are not everyone's; it writes no `balance` points
//!   (every validator writes the same ledger series, and the others write them).

use std::sync::Arc;

use redb::{Database, Durability, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use voltmesh_engine::{Money, ParticipantId};
use voltmesh_wire::bill::IntervalBills;

use crate::index::Index;
use crate::store::StoreError;

/// Participant → its [`Totals`], JSON.
const TOTALS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("metrics_bill_totals");
/// `through`: the last interval start added (absent: none); `complete`: 1 if the totals
/// start at genesis.
const COUNTERS: TableDefinition<'_, &str, i64> = TableDefinition::new("metrics_bill_counters");

/// Settled intervals read from the index per catch-up transaction.
const CATCH_UP_PAGE: usize = 500;

/// A participant's running totals over its committed bills.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Totals {
    /// The bills' exact `total`s summed (positive: paid).
    pub(crate) amount: Money,
    /// Energy bought locally, Wh.
    pub(crate) bought_wh: u64,
    /// Energy sold locally, Wh.
    pub(crate) sold_wh: u64,
}

fn db_err<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Database(e.to_string())
}

/// The running totals, on disk.
#[derive(Debug)]
pub(crate) struct BillTotals {
    db: Arc<Database>,
    /// The last interval added.
    through: Option<i64>,
    complete: bool,
}

impl BillTotals {
    /// The totals kept in `db`, caught up with every interval `index` holds settled (a first
    /// start on a long ledger reads its bills once). `full_history`: the store holds the chain
    /// from genesis now (decides `complete` when the table is new).
    ///
    /// # Errors
    /// [`StoreError`] if the tables cannot be made, read or written.
    pub(crate) fn open(
        db: Arc<Database>,
        index: &Index,
        full_history: bool,
    ) -> Result<BillTotals, StoreError> {
        let tx = db.begin_write().map_err(db_err)?;
        tx.open_table(TOTALS).map_err(db_err)?;
        let (through, complete) = {
            let mut counters = tx.open_table(COUNTERS).map_err(db_err)?;
            let through = counters.get("through").map_err(db_err)?.map(|v| v.value());
            let stored = counters.get("complete").map_err(db_err)?.map(|v| v.value());
            let complete = match stored {
                Some(flag) => flag == 1,
                None => {
                    counters
                        .insert("complete", i64::from(full_history))
                        .map_err(db_err)?;
                    full_history
                }
            };
            (through, complete)
        };
        tx.commit().map_err(db_err)?;
        let mut totals = BillTotals {
            db,
            through,
            complete,
        };
        let caught_up = totals.catch_up(index, i64::MAX)?;
        if caught_up > 0 {
            tracing::info!(
                intervals = caught_up,
                "bill totals for the balance metrics caught up with the index"
            );
        }
        Ok(totals)
    }

    /// True if the totals start at genesis (module docs).
    pub(crate) fn is_complete(&self) -> bool {
        self.complete
    }

    /// Adds `settled` (one block's intervals, oldest first) after catching up with what
    /// `index` holds settled before them, and returns each bill's participant's totals after
    /// it: `out[i][j]` for `settled[i].bills[j]`. An interval already added is skipped (its
    /// entry is empty).
    ///
    /// # Errors
    /// [`StoreError`] on a read or write failure; nothing of `settled` is added then.
    pub(crate) fn add(
        &mut self,
        index: &Index,
        settled: &[IntervalBills],
    ) -> Result<Vec<Vec<Totals>>, StoreError> {
        let Some(first) = settled.first() else {
            return Ok(Vec::new());
        };
        self.catch_up(index, first.interval_start)?;
        let mut tx = self.db.begin_write().map_err(db_err)?;
        tx.set_durability(Durability::Eventual);
        let mut through = self.through;
        let mut out = Vec::with_capacity(settled.len());
        for interval in settled {
            if through.is_some_and(|t| interval.interval_start <= t) {
                out.push(Vec::new());
                continue;
            }
            out.push(add_interval(&tx, interval)?);
            through = Some(interval.interval_start);
        }
        if through != self.through {
            set_through(&tx, through)?;
        }
        tx.commit().map_err(db_err)?;
        self.through = through;
        Ok(out)
    }

    /// Adds the intervals `index` holds settled after `through` and before `before`, a page
    /// at a time; returns how many.
    fn catch_up(&mut self, index: &Index, before: i64) -> Result<usize, StoreError> {
        let mut added = 0;
        loop {
            let from = self.through.map_or(i64::MIN, |t| t.saturating_add(1));
            if from >= before {
                return Ok(added);
            }
            let page = index.settled(from, before, CATCH_UP_PAGE)?;
            let Some(last) = page.last().map(|s| s.interval_start) else {
                return Ok(added);
            };
            let mut tx = self.db.begin_write().map_err(db_err)?;
            tx.set_durability(Durability::Eventual);
            for settled in &page {
                let Some(stored) = index.settled_bills(settled.interval_start)? else {
                    continue;
                };
                let interval = IntervalBills {
                    interval_start: settled.interval_start,
                    currency: stored.settled.currency,
                    feed_in: stored.settled.feed_in,
                    retail: stored.settled.retail,
                    network_fee: stored.settled.network_fee,
                    bills: stored.bills,
                    utility: stored.settled.utility,
                    network: stored.settled.network,
                };
                add_interval(&tx, &interval)?;
            }
            set_through(&tx, Some(last))?;
            tx.commit().map_err(db_err)?;
            self.through = Some(last);
            added += page.len();
        }
    }
}

/// Adds one interval's bills to the participants' totals in `tx`; the totals after each bill.
fn add_interval(
    tx: &WriteTransaction,
    interval: &IntervalBills,
) -> Result<Vec<Totals>, StoreError> {
    let mut table = tx.open_table(TOTALS).map_err(db_err)?;
    let mut out = Vec::with_capacity(interval.bills.len());
    for bill in &interval.bills {
        let mut totals = read(&table, &bill.participant)?;
        totals.amount += bill.total;
        totals.bought_wh = totals.bought_wh.saturating_add(bill.bought_wh);
        totals.sold_wh = totals.sold_wh.saturating_add(bill.sold_wh);
        let bytes = serde_json::to_vec(&totals).map_err(|e| StoreError::Corrupt {
            what: "bill totals",
            detail: e.to_string(),
        })?;
        table
            .insert(bill.participant.as_str(), bytes.as_slice())
            .map_err(db_err)?;
        out.push(totals);
    }
    Ok(out)
}

fn set_through(tx: &WriteTransaction, through: Option<i64>) -> Result<(), StoreError> {
    if let Some(at) = through {
        tx.open_table(COUNTERS)
            .map_err(db_err)?
            .insert("through", at)
            .map_err(db_err)?;
    }
    Ok(())
}

fn read(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    participant: &ParticipantId,
) -> Result<Totals, StoreError> {
    table
        .get(participant.as_str())
        .map_err(db_err)?
        .map(|bytes| {
            serde_json::from_slice(bytes.value()).map_err(|e| StoreError::Corrupt {
                what: "bill totals",
                detail: e.to_string(),
            })
        })
        .transpose()
        .map(Option::unwrap_or_default)
}

#[cfg(test)]
mod tests {
    use voltmesh_engine::Price;
    use voltmesh_wire::bill::{Bill, PartyLine};
    use voltmesh_wire::Currency;

    use super::*;
    use crate::ledger::CommittedBlock;
    use crate::protocol::BlockHash;

    fn memory_db() -> Arc<Database> {
        Arc::new(
            Database::builder()
                .create_with_backend(redb::backends::InMemoryBackend::new())
                .expect("in-memory redb"),
        )
    }

    fn bill(who: &str, total_nanos: i128, bought_wh: u64, sold_wh: u64) -> Bill {
        Bill {
            participant: who.into(),
            bought_wh,
            sold_wh,
            metered: false,
            metered_net_export_wh: 0,
            from_utility_wh: 0,
            to_utility_wh: 0,
            local_energy: Money::from_nanos(total_nanos),
            network_fees: Money::ZERO,
            utility: Money::ZERO,
            total: Money::from_nanos(total_nanos),
            billed: Money::ZERO,
            carry: Money::from_nanos(total_nanos),
            no_market: Money::ZERO,
        }
    }

    /// hh-1 sells 100 Wh to hh-2 for 0.02 in the interval at `start`.
    fn interval(start: i64) -> IntervalBills {
        let price = |s: &str| s.parse::<Price>().expect("price");
        IntervalBills {
            interval_start: start,
            currency: Currency::EUR,
            feed_in: price("0.08"),
            retail: price("0.32"),
            network_fee: price("0.01"),
            bills: vec![
                bill("hh-1", -20_000_000, 0, 100),
                bill("hh-2", 20_000_000, 100, 0),
            ],
            utility: PartyLine::default(),
            network: PartyLine::default(),
        }
    }

    fn commit(index: &mut Index, height: u64, bills: Vec<IntervalBills>) {
        index
            .apply(&CommittedBlock {
                height,
                hash: {
                    let mut hash = [0; 32];
                    hash[..8].copy_from_slice(&height.to_be_bytes());
                    BlockHash(hash)
                },
                timestamp_ms: height * 1_000,
                orders: Vec::new(),
                clearings: Vec::new(),
                bills,
                corrections: Vec::new(),
                snapshot: None,
            })
            .expect("apply");
    }

    fn amounts(after: &[Totals]) -> Vec<(i128, u64, u64)> {
        after
            .iter()
            .map(|t| (t.amount.nanos(), t.bought_wh, t.sold_wh))
            .collect()
    }

    #[test]
    fn totals_run_across_intervals_and_survive_a_reopen_without_double_counting() {
        let mut index = Index::in_memory();
        let db = memory_db();
        commit(&mut index, 1, vec![interval(900)]);
        // Opened on a ledger that already settled 900: caught up from the index.
        let mut totals = BillTotals::open(Arc::clone(&db), &index, true).expect("open");
        assert!(totals.is_complete());
        commit(&mut index, 2, vec![interval(1800)]);
        let after = totals.add(&index, &[interval(1800)]).expect("add");
        assert_eq!(
            amounts(&after[0]),
            [(-40_000_000, 0, 200), (40_000_000, 200, 0)]
        );
        // The same interval again (a block seen twice) adds nothing.
        assert_eq!(
            totals.add(&index, &[interval(1800)]).expect("add"),
            vec![Vec::<Totals>::new()]
        );
        // Reopened (a restart): the totals and the flag are the stored ones.
        let mut reopened = BillTotals::open(Arc::clone(&db), &index, false).expect("reopen");
        assert!(reopened.is_complete(), "decided when the table was made");
        commit(&mut index, 3, vec![interval(2700)]);
        let after = reopened.add(&index, &[interval(2700)]).expect("add");
        assert_eq!(
            amounts(&after[0]),
            [(-60_000_000, 0, 300), (60_000_000, 300, 0)]
        );
    }

    #[test]
    fn intervals_the_totals_missed_are_added_from_the_index_first() {
        let mut index = Index::in_memory();
        let mut totals = BillTotals::open(memory_db(), &index, false).expect("open");
        assert!(
            !totals.is_complete(),
            "a store without the chain from genesis"
        );
        // Blocks reached the index but not the totals (a crash between the two writes), more
        // than one catch-up page of them.
        let missed = i64::try_from(CATCH_UP_PAGE).expect("small") + 2;
        commit(&mut index, 1, vec![interval(900), interval(1800)]);
        for n in 3..=missed {
            commit(
                &mut index,
                u64::try_from(n).expect("positive"),
                vec![interval(n * 900)],
            );
        }
        let next = (missed + 1) * 900;
        commit(&mut index, 1_000, vec![interval(next)]);
        let after = totals.add(&index, &[interval(next)]).expect("add");
        let n = i128::from(missed + 1);
        let wh = u64::try_from(missed + 1).expect("positive") * 100;
        assert_eq!(
            amounts(&after[0]),
            [(-20_000_000 * n, 0, wh), (20_000_000 * n, wh, 0)]
        );
    }
}
