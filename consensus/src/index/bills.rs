//! The committed bills in the API's index: each interval's settlement summary, and every bill
//! keyed by interval then participant, so that one participant's statement for a period is a
//! point read per settled interval and the community's billing for a period is one range scan.
//!
//! # Invariants
//! Written in the transaction of the block that committed them ([`super::Index::apply`]); an
//! interval is in `SETTLED` if and only if its bills are in `BILLS`.

use redb::{TableDefinition, WriteTransaction};
use voltmesh_engine::ParticipantId;
use voltmesh_wire::bill::{Bill, CommittedBill, Settled, Statement};
use voltmesh_wire::Currency;

use super::{corrupt, db_err, Index};
use crate::ledger::CommittedBlock;
use crate::store::StoreError;

/// Interval start → the settlement's summary ([`Settled`]), JSON.
const SETTLED: TableDefinition<'_, i64, &[u8]> = TableDefinition::new("index_settled");
/// (interval start, participant) → the participant's bill ([`Bill`]), JSON.
const BILLS: TableDefinition<'_, (i64, &str), &[u8]> = TableDefinition::new("index_bills");

pub use voltmesh_wire::api::MAX_SETTLED_PAGE;

pub(super) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(SETTLED).map_err(db_err)?;
    tx.open_table(BILLS).map_err(db_err)?;
    Ok(())
}

/// Writes the bills `block` committed.
pub(super) fn apply(tx: &WriteTransaction, block: &CommittedBlock) -> Result<(), StoreError> {
    if block.bills.is_empty() {
        return Ok(());
    }
    let mut settled = tx.open_table(SETTLED).map_err(db_err)?;
    let mut bills = tx.open_table(BILLS).map_err(db_err)?;
    let hash = block.hash.to_string();
    for interval in &block.bills {
        let summary = Settled::of(interval, block.height, hash.clone());
        let bytes = serde_json::to_vec(&summary).map_err(corrupt("settled"))?;
        settled
            .insert(interval.interval_start, bytes.as_slice())
            .map_err(db_err)?;
        for bill in &interval.bills {
            let bytes = serde_json::to_vec(bill).map_err(corrupt("bill"))?;
            bills
                .insert(
                    (interval.interval_start, bill.participant.as_str()),
                    bytes.as_slice(),
                )
                .map_err(db_err)?;
        }
    }
    Ok(())
}

/// One interval's settlement with every bill, as the index holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettledBills {
    /// The summary.
    pub settled: Settled,
    /// Every bill, by participant.
    pub bills: Vec<Bill>,
}

impl Index {
    /// The settlement summaries of the intervals `from..to` (Unix seconds), oldest first, at
    /// most `limit` (capped at [`MAX_SETTLED_PAGE`]), with the interval the next page starts at
    /// when the range holds more.
    ///
    /// # Errors
    /// [`StoreError`] on a read failure or a record that does not decode.
    pub fn settled_page(
        &self,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<(Vec<Settled>, Option<i64>), StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(SETTLED).map_err(db_err)?;
        let mut out = Vec::new();
        for entry in table.range(from..to).map_err(db_err)? {
            let (start, bytes) = entry.map_err(db_err)?;
            if out.len() == limit.clamp(1, MAX_SETTLED_PAGE) {
                return Ok((out, Some(start.value())));
            }
            out.push(serde_json::from_slice(bytes.value()).map_err(corrupt("settled"))?);
        }
        Ok((out, None))
    }

    /// As [`Index::settled_page`], without the next page's start.
    ///
    /// # Errors
    /// As [`Index::settled_page`].
    pub fn settled(&self, from: i64, to: i64, limit: usize) -> Result<Vec<Settled>, StoreError> {
        Ok(self.settled_page(from, to, limit)?.0)
    }

    /// One interval's settlement with every bill, if it is settled.
    ///
    /// # Errors
    /// [`StoreError`] on a read failure or a record that does not decode.
    pub fn settled_bills(&self, interval_start: i64) -> Result<Option<SettledBills>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let settled = tx.open_table(SETTLED).map_err(db_err)?;
        let Some(summary) = settled.get(interval_start).map_err(db_err)? else {
            return Ok(None);
        };
        let settled: Settled =
            serde_json::from_slice(summary.value()).map_err(corrupt("settled"))?;
        let table = tx.open_table(BILLS).map_err(db_err)?;
        let mut bills = Vec::new();
        let range = (interval_start, "")..(interval_start.saturating_add(1), "");
        for entry in table.range(range).map_err(db_err)? {
            let (_, bytes) = entry.map_err(db_err)?;
            bills.push(serde_json::from_slice(bytes.value()).map_err(corrupt("bill"))?);
        }
        Ok(Some(SettledBills { settled, bills }))
    }

    /// `participant`'s committed bills of the intervals `from..to`, oldest first, looking at
    /// most `limit` settled intervals (capped at [`MAX_SETTLED_PAGE`]); with the interval the
    /// next page starts at when more are settled.
    ///
    /// # Errors
    /// [`StoreError`] on a read failure or a record that does not decode.
    pub fn bills_of(
        &self,
        participant: &ParticipantId,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<(Vec<CommittedBill>, Option<i64>), StoreError> {
        let limit = limit.clamp(1, MAX_SETTLED_PAGE);
        let tx = self.db.begin_read().map_err(db_err)?;
        let settled = tx.open_table(SETTLED).map_err(db_err)?;
        let bills = tx.open_table(BILLS).map_err(db_err)?;
        let mut out = Vec::new();
        for (n, entry) in settled.range(from..to).map_err(db_err)?.enumerate() {
            let (start, summary) = entry.map_err(db_err)?;
            let start = start.value();
            if n == limit {
                return Ok((out, Some(start)));
            }
            let Some(bytes) = bills.get((start, participant.as_str())).map_err(db_err)? else {
                continue;
            };
            let summary: Settled =
                serde_json::from_slice(summary.value()).map_err(corrupt("settled"))?;
            out.push(CommittedBill {
                interval_start: start,
                height: summary.height,
                block: summary.block,
                currency: summary.currency,
                bill: serde_json::from_slice(bytes.value()).map_err(corrupt("bill"))?,
            });
        }
        Ok((out, None))
    }

    /// `participant`'s statement for the intervals `from..to`: every committed bill summed.
    ///
    /// # Errors
    /// [`StoreError`] on a read failure or a record that does not decode.
    pub fn statement(
        &self,
        participant: &ParticipantId,
        currency: Currency,
        from: i64,
        to: i64,
    ) -> Result<Statement, StoreError> {
        let mut statement = Statement::new(participant.clone(), currency, from, to);
        let mut next = Some(from);
        while let Some(at) = next {
            let (bills, more) = self.bills_of(participant, at, to, MAX_SETTLED_PAGE)?;
            for bill in &bills {
                statement.add(bill);
            }
            next = more;
        }
        for correction in self.corrections_of(participant, from, to)? {
            statement.add_correction(correction);
        }
        Ok(statement)
    }
}
