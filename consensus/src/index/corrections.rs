//! The committed corrections in the API's index ([`voltmesh_wire::correction`]): each import's
//! corrections of one interval, keyed by (interval, height, position in the block), so that the
//! corrections of a period are one range scan and an interval's are in the order the chain
//! committed them.
//!
//! # Invariants
//! Written in the transaction of the block that committed them ([`super::Index::apply`]).

use redb::{TableDefinition, WriteTransaction};
use voltmesh_engine::ParticipantId;
use voltmesh_wire::correction::{CommittedCorrections, ParticipantCorrection};

use super::{corrupt, db_err, Index};
use crate::ledger::CommittedBlock;
use crate::store::StoreError;

/// (interval start, height, position) → [`CommittedCorrections`], JSON.
const CORRECTIONS: TableDefinition<'_, (i64, u64, u32), &[u8]> =
    TableDefinition::new("index_corrections");

pub use voltmesh_wire::api::MAX_SETTLED_PAGE;

pub(super) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(CORRECTIONS).map_err(db_err)?;
    Ok(())
}

/// Writes the corrections `block` committed.
pub(super) fn apply(tx: &WriteTransaction, block: &CommittedBlock) -> Result<(), StoreError> {
    if block.corrections.is_empty() {
        return Ok(());
    }
    let mut table = tx.open_table(CORRECTIONS).map_err(db_err)?;
    let hash = block.hash.to_string();
    for (position, corrections) in block.corrections.iter().enumerate() {
        let committed = CommittedCorrections {
            height: block.height,
            block: hash.clone(),
            corrections: corrections.clone(),
        };
        let bytes = serde_json::to_vec(&committed).map_err(corrupt("corrections"))?;
        let position = u32::try_from(position).unwrap_or(u32::MAX);
        table
            .insert(
                (corrections.interval_start, block.height, position),
                bytes.as_slice(),
            )
            .map_err(db_err)?;
    }
    Ok(())
}

impl Index {
    /// The corrections of the intervals `from..to`, by interval then as committed, at most
    /// `limit` (capped at [`MAX_SETTLED_PAGE`]), with the interval the next page starts at when
    /// the range holds more (a page never splits an interval).
    ///
    /// # Errors
    /// [`StoreError`] on a read failure or a record that does not decode.
    pub fn corrections_page(
        &self,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<(Vec<CommittedCorrections>, Option<i64>), StoreError> {
        let limit = limit.clamp(1, MAX_SETTLED_PAGE);
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(CORRECTIONS).map_err(db_err)?;
        let mut out: Vec<CommittedCorrections> = Vec::new();
        for entry in table.range((from, 0, 0)..(to, 0, 0)).map_err(db_err)? {
            let (key, bytes) = entry.map_err(db_err)?;
            let (start, _, _) = key.value();
            let new_interval = out
                .last()
                .is_none_or(|last| last.corrections.interval_start != start);
            if out.len() >= limit && new_interval {
                return Ok((out, Some(start)));
            }
            out.push(serde_json::from_slice(bytes.value()).map_err(corrupt("corrections"))?);
        }
        Ok((out, None))
    }

    /// Every correction of the intervals `from..to`, by interval then as committed.
    ///
    /// # Errors
    /// As [`Index::corrections_page`].
    pub fn corrections(&self, from: i64, to: i64) -> Result<Vec<CommittedCorrections>, StoreError> {
        let mut out = Vec::new();
        let mut next = Some(from);
        while let Some(at) = next {
            let (page, more) = self.corrections_page(at, to, MAX_SETTLED_PAGE)?;
            out.extend(page);
            next = more;
        }
        Ok(out)
    }

    /// `participant`'s correction entries of the intervals `from..to`, by interval then as
    /// committed.
    ///
    /// # Errors
    /// As [`Index::corrections_page`].
    pub fn corrections_of(
        &self,
        participant: &ParticipantId,
        from: i64,
        to: i64,
    ) -> Result<Vec<ParticipantCorrection>, StoreError> {
        Ok(self
            .corrections(from, to)?
            .iter()
            .flat_map(|c| ParticipantCorrection::of(c, participant))
            .collect())
    }
}
