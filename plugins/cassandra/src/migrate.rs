//! Moving a store (`MIGRATE`, interface 1.4): [`Db::export`] reads every object of a kind whole,
//! deleted ones included, and [`Db::import`] writes such records back exactly.
//!
//! * **Export** walks the `objects` table in partition-token order (`token(kind, id) >= ?`, a
//!   range scan the driver pages; no `ALLOW FILTERING`) and assembles each partition — its
//!   static columns (the current version or the deleted tombstone) and its history rows, newest
//!   first exactly as `object_history` reads them — into one record. Partitions of the other
//!   kind are skipped on the way. The cursor is text: the token of the page's last record and
//!   the ids already answered at that token (`<token>:<id>,…`; two ids may share one 64-bit
//!   token), so a walk goes on in another process.
//! * **Import** first writes the candidate-index entries of every live record of the call
//!   (grouped per index partition into unlogged single-partition batches, with the timestamp
//!   of the record's version, as `create_object` writes its entries before its LWT: the indexes
//!   stay a superset), then writes each record as one conditional batch on its own partition:
//!   `INSERT … IF NOT EXISTS` of the static row (the current version, or the tombstone of a
//!   deleted object, which keeps its id taken) plus one row per earlier version. Up to
//!   [`IMPORT_IN_FLIGHT`] records run at once. A refused condition means the id is taken: the
//!   partition is read (the refused LWT's Paxos round completed any write in flight; after an
//!   unknown outcome a serial read does) and compared —
//!   the same record is a no-op, another one `Conflict`, and nothing of the record is written.
//!
//! History rows get `seq` below the stored version (newest `v − 1`, then `v − 2`, …; below 0
//! for a record of version 0 from a store without versioned writes), so that a later update
//! archives version `v` at `seq = v` as for any object. A deleted record is stored with version
//! `n + 1` over its `n` history rows (`n … 1`), as a delete leaves it, and exported as version 0.

use std::collections::HashMap;

use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use scylla::serialize::row::{RowSerializationContext, SerializeRow};
use scylla::serialize::writers::RowWriter;
use scylla::serialize::SerializationError;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::DeserializeRow;
use uuid::Uuid;
use weft_connector_sdk::support;
use weft_plugin_api::{
    Id, ObjectKind, ObjectRecord, ObjectVersion, PluginError, PluginResult, RecordPage,
    StoredObject,
};

use crate::schema::{one_line, EXPORT_PAGE_SIZE};
use crate::store::{
    backoff, bad_answer, failed, failed_pager, index_put_ts, kind_code, too_many_attempts,
    unknown_outcome, Cas, Db, IN_FLIGHT, MAX_ATTEMPTS,
};

/// How many records of one `import_objects` call are written at once (each one lightweight
/// transaction on its own partition).
pub const IMPORT_IN_FLIGHT: usize = 128;
/// Candidate-index entries per unlogged batch (all in one index partition, so one mutation).
const INDEX_BATCH: usize = 256;

/// One row of an object's partition as [`crate::schema::RECORD_COLUMNS`] selects it: the static
/// columns (repeated on every row) and one history row (`seq` null when there is none).
#[derive(DeserializeRow)]
struct RecordRow {
    tk: i64,
    kind: i8,
    id: Uuid,
    version: Option<i64>,
    deleted: Option<bool>,
    class: Option<String>,
    context: Option<String>,
    owner: Option<Uuid>,
    created_ms: Option<i64>,
    updated_ms: Option<i64>,
    properties: Option<String>,
    seq: Option<i64>,
    archived_ms: Option<i64>,
    h_class: Option<String>,
    h_context: Option<String>,
    h_owner: Option<Uuid>,
    h_created_ms: Option<i64>,
    h_updated_ms: Option<i64>,
    h_properties: Option<String>,
}

/// One partition of `objects`, assembled from its rows (in clustering order: newest first).
struct Partition {
    kind: ObjectKind,
    id: Id,
    /// `None` for a partition without a static row (never an object).
    version: Option<i64>,
    current: Option<StoredObject>,
    history: Vec<ObjectVersion>,
}

impl Partition {
    /// The partition whose first row is `row`.
    fn new(kind: ObjectKind, row: RecordRow) -> Partition {
        let id = Id::from(row.id);
        let current = (row.deleted != Some(true)).then(|| StoredObject {
            kind,
            id,
            class: row.class.clone().unwrap_or_default().into(),
            context: row.context.clone().unwrap_or_default().into(),
            owner: row.owner.map(Id::from).unwrap_or_default(),
            created_ms: row.created_ms.unwrap_or_default(),
            updated_ms: row.updated_ms.unwrap_or_default(),
            properties_json: row.properties.clone().unwrap_or_default().into(),
        });
        let mut p = Partition {
            kind,
            id,
            version: row.version,
            current,
            history: Vec::new(),
        };
        p.add(row);
        p
    }

    /// Adds the history row of `row` (a row of this partition), if it has one.
    fn add(&mut self, row: RecordRow) {
        if row.seq.is_none() {
            return; // the static row alone: no history
        }
        self.history.push(ObjectVersion {
            object: StoredObject {
                kind: self.kind,
                id: self.id,
                class: row.h_class.unwrap_or_default().into(),
                context: row.h_context.unwrap_or_default().into(),
                owner: row.h_owner.map(Id::from).unwrap_or_default(),
                created_ms: row.h_created_ms.unwrap_or_default(),
                updated_ms: row.h_updated_ms.unwrap_or_default(),
                properties_json: row.h_properties.unwrap_or_default().into(),
            },
            archived_ms: row.archived_ms.unwrap_or_default(),
        });
    }

    /// The record, as export answers it (`None` when the partition holds no object).
    fn into_record(self) -> Option<ObjectRecord> {
        let version = self.version?;
        let version = if self.current.is_some() {
            version.max(0) as u64
        } else {
            0
        };
        Some(ObjectRecord {
            kind: self.kind,
            id: self.id,
            current: self.current.into(),
            version,
            history: self.history.into(),
        })
    }
}

fn kind_of(code: i8) -> Option<ObjectKind> {
    match code {
        0 => Some(ObjectKind::Thing),
        1 => Some(ObjectKind::Action),
        _ => None,
    }
}

/// Where an export page starts: at partition token `token`, after the ids in `done` (those
/// already answered at that token).
#[derive(Debug, PartialEq)]
struct Cursor {
    token: i64,
    done: Vec<Uuid>,
}

impl Cursor {
    /// `None` for the empty cursor (the first page).
    fn parse(text: &str) -> PluginResult<Option<Cursor>> {
        if text.is_empty() {
            return Ok(None);
        }
        let bad = || {
            PluginError::invalid(format!(
                "export cursor {text:?} is not one the cassandra connector gave (<token>:<id>,…)"
            ))
        };
        let (token, ids) = text.split_once(':').ok_or_else(bad)?;
        let token = token.parse::<i64>().map_err(|_| bad())?;
        let done = ids
            .split(',')
            .map(|id| Uuid::parse_str(id).map_err(|_| bad()))
            .collect::<PluginResult<Vec<_>>>()?;
        Ok(Some(Cursor { token, done }))
    }

    fn text(&self) -> String {
        let ids: Vec<String> = self.done.iter().map(Uuid::to_string).collect();
        format!("{}:{}", self.token, ids.join(","))
    }

    fn skips(&self, token: i64, id: Uuid) -> bool {
        token == self.token && self.done.contains(&id)
    }
}

/// The bind values of one statement of an import batch.
enum ImportRow<'a> {
    /// `import_live`: kind, id, version, class, context, owner, created, updated, properties,
    /// write id.
    Live(
        (
            i8,
            Uuid,
            i64,
            &'a str,
            &'a str,
            Uuid,
            i64,
            i64,
            &'a str,
            Uuid,
        ),
    ),
    /// `import_deleted`: kind, id, version, write id.
    Deleted((i8, Uuid, i64, Uuid)),
    /// `history_insert`: kind, id, seq, archived, class, context, owner, created, updated,
    /// properties, write id.
    History(
        (
            i8,
            Uuid,
            i64,
            i64,
            &'a str,
            &'a str,
            Uuid,
            i64,
            i64,
            &'a str,
            Uuid,
        ),
    ),
}

impl SerializeRow for ImportRow<'_> {
    fn serialize(
        &self,
        ctx: &RowSerializationContext<'_>,
        writer: &mut RowWriter,
    ) -> Result<(), SerializationError> {
        match self {
            ImportRow::Live(v) => v.serialize(ctx, writer),
            ImportRow::Deleted(v) => v.serialize(ctx, writer),
            ImportRow::History(v) => v.serialize(ctx, writer),
        }
    }

    fn is_empty(&self) -> bool {
        false
    }
}

/// Refuses what this store cannot hold exactly (besides [`ObjectRecord::check`]).
fn importable(record: &ObjectRecord) -> PluginResult<()> {
    record.check()?;
    if record.current.is_some() && record.version > i64::MAX as u64 {
        return Err(PluginError::invalid(format!(
            "record {} {}: version {} is above the largest this connector stores ({})",
            record.kind.as_str(),
            record.id,
            record.version,
            i64::MAX
        )));
    }
    Ok(())
}

/// Whether the store's record `held` is `given` (whose version does not count once deleted).
fn same_record(held: &ObjectRecord, given: &ObjectRecord) -> bool {
    let version = if given.current.is_some() {
        given.version
    } else {
        0
    };
    held.current == given.current && held.version == version && held.history == given.history
}

impl Db {
    /// `export_objects`: one page of `kind`'s records in token order (see the module docs).
    pub(crate) async fn export(
        &self,
        kind: ObjectKind,
        cursor: &str,
        limit: u64,
    ) -> PluginResult<RecordPage> {
        let op = "export_objects";
        let from = Cursor::parse(cursor)?;
        let limit = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
        // The page's records, the first row after them (which tells the last one is whole)
        // and some history rows in one round trip; more pages come as needed. A larger page
        // would be read and thrown away: the next call scans again from its cursor.
        let page_size = i32::try_from(limit.saturating_add(limit / 8).saturating_add(16))
            .unwrap_or(i32::MAX)
            .clamp(100, EXPORT_PAGE_SIZE);
        let pager = match &from {
            None => {
                let mut st = self.st.export_first.clone();
                st.set_page_size(page_size);
                self.session.execute_iter(st, ()).await
            }
            Some(c) => {
                let mut st = self.st.export_from.clone();
                st.set_page_size(page_size);
                self.session.execute_iter(st, (c.token,)).await
            }
        }
        .map_err(|e| failed_pager(op, &e))?;
        let mut rows = pager
            .rows_stream::<RecordRow>()
            .map_err(|e| bad_answer(op, e))?;
        let code = kind_code(kind);
        let mut records: Vec<ObjectRecord> = Vec::new();
        // The token of the last record taken and the ids taken at it.
        let mut last = Cursor {
            token: 0,
            done: Vec::new(),
        };
        let mut take = |records: &mut Vec<ObjectRecord>, token: i64, p: Partition| {
            let Some(r) = p.into_record() else { return };
            if last.done.is_empty() || last.token != token {
                last.token = token;
                last.done.clear();
            }
            last.done.push(r.id.to_uuid());
            records.push(r);
        };
        let mut seen: Option<(i64, i8, Uuid)> = None;
        let mut open: Option<(i64, Partition)> = None;
        let mut more = false;
        while let Some(row) = rows.next().await {
            let row = row.map_err(|e| {
                PluginError::unavailable(one_line(&format!(
                    "cassandra: {op}: Cassandra is unavailable: {e}"
                )))
            })?;
            let key = (row.tk, row.kind, row.id);
            if seen == Some(key) {
                if let Some((_, p)) = &mut open {
                    p.add(row);
                }
                continue;
            }
            // A new partition starts: the open one is complete.
            seen = Some(key);
            if let Some((token, p)) = open.take() {
                take(&mut records, token, p);
            }
            let wanted =
                row.kind == code && !from.as_ref().is_some_and(|c| c.skips(row.tk, row.id));
            if !wanted {
                continue;
            }
            if records.len() >= limit {
                more = true;
                break;
            }
            open = Some((row.tk, Partition::new(kind, row)));
        }
        if let Some((token, p)) = open.take() {
            take(&mut records, token, p);
        }
        let next = if more && !last.done.is_empty() {
            // Ids answered at this token on earlier pages stay answered.
            if let Some(from) = from.filter(|f| f.token == last.token) {
                last.done.extend(from.done);
            }
            last.text()
        } else {
            String::new()
        };
        Ok(RecordPage {
            records: records.into(),
            next: next.into(),
        })
    }

    /// `import_objects`: every record checked first (`Invalid` before anything is written),
    /// then the index entries of the live ones, then the records, `IMPORT_IN_FLIGHT` at once
    /// (see the module docs).
    pub(crate) async fn import(&self, records: Vec<ObjectRecord>) -> PluginResult<()> {
        let op = "import_objects";
        for record in &records {
            importable(record)?;
        }
        self.import_indexes(op, &records).await?;
        // By index: a closure over `&ObjectRecord` would make the future's `Send` depend on a
        // higher-ranked lifetime the compiler cannot prove.
        let records = &records;
        futures::stream::iter(0..records.len())
            .map(|i| self.import_record(op, &records[i]))
            .buffer_unordered(IMPORT_IN_FLIGHT)
            .try_for_each(|()| async { Ok(()) })
            .await
    }

    /// The candidate-index entries (by kind, class and owner) of the live records, before the
    /// records themselves: each index partition's entries go as unlogged batches of one
    /// partition, with the timestamp `create_object` and `update_object` give version `v`.
    async fn import_indexes(&self, op: &str, records: &[ObjectRecord]) -> PluginResult<()> {
        type KindEntry = (i8, i64, Uuid, i64);
        type ClassEntry<'a> = (i8, &'a str, i64, Uuid, i64);
        type OwnerEntry = (i8, Uuid, i64, Uuid, i64);
        let mut by_kind: HashMap<i8, Vec<KindEntry>> = HashMap::new();
        let mut by_class: HashMap<(i8, &str), Vec<ClassEntry<'_>>> = HashMap::new();
        let mut by_owner: HashMap<(i8, Uuid), Vec<OwnerEntry>> = HashMap::new();
        for record in records {
            let Some(o) = record.current.as_ref().into_option() else {
                continue;
            };
            let (kind, id, created) = (kind_code(record.kind), record.id.to_uuid(), o.created_ms);
            let ts = index_put_ts(record.version);
            let owner = o.owner.to_uuid();
            by_kind
                .entry(kind)
                .or_default()
                .push((kind, created, id, ts));
            by_class.entry((kind, o.class.as_str())).or_default().push((
                kind,
                o.class.as_str(),
                created,
                id,
                ts,
            ));
            by_owner
                .entry((kind, owner))
                .or_default()
                .push((kind, owner, created, id, ts));
        }
        let mut batches: Vec<BoxFuture<'_, PluginResult<()>>> = Vec::new();
        for entries in by_kind.values() {
            for chunk in entries.chunks(INDEX_BATCH) {
                batches.push(Box::pin(self.index_batch(
                    op,
                    &self.st.index_kind_put,
                    chunk,
                )));
            }
        }
        for entries in by_class.values() {
            for chunk in entries.chunks(INDEX_BATCH) {
                batches.push(Box::pin(self.index_batch(
                    op,
                    &self.st.index_class_put,
                    chunk,
                )));
            }
        }
        for entries in by_owner.values() {
            for chunk in entries.chunks(INDEX_BATCH) {
                batches.push(Box::pin(self.index_batch(
                    op,
                    &self.st.index_owner_put,
                    chunk,
                )));
            }
        }
        futures::stream::iter(batches)
            .buffer_unordered(IN_FLIGHT)
            .try_for_each(|()| async { Ok(()) })
            .await
    }

    /// One unlogged batch of `st` over `rows` (all of one partition: one mutation).
    async fn index_batch<T: SerializeRow + Sync>(
        &self,
        op: &str,
        st: &PreparedStatement,
        rows: &[T],
    ) -> PluginResult<()> {
        let mut batch = Batch::new(BatchType::Unlogged);
        for _ in rows {
            batch.append_statement(st.clone());
        }
        batch.set_is_idempotent(true);
        self.session
            .batch(&batch, rows)
            .await
            .map(drop)
            .map_err(|e| failed(op, &e))
    }

    /// Writes one record as one conditional batch on its partition (a single `INSERT … IF NOT
    /// EXISTS` when it has no history); when the id is taken, compares.
    async fn import_record(&self, op: &str, record: &ObjectRecord) -> PluginResult<()> {
        let (kind, id) = (record.kind, record.id);
        let (code, uuid) = (kind_code(kind), id.to_uuid());
        let write_id = Uuid::new_v4();
        let current = record.current.as_ref().into_option();
        let (head, head_st, top) = match current {
            Some(o) => {
                let version = record.version as i64; // importable: at most i64::MAX
                (
                    ImportRow::Live((
                        code,
                        uuid,
                        version,
                        o.class.as_str(),
                        o.context.as_str(),
                        o.owner.to_uuid(),
                        o.created_ms,
                        o.updated_ms,
                        o.properties_json.as_str(),
                        write_id,
                    )),
                    &self.st.import_live,
                    version - 1,
                )
            }
            None => {
                let n = record.history.len() as i64;
                (
                    ImportRow::Deleted((code, uuid, n + 1, write_id)),
                    &self.st.import_deleted,
                    n,
                )
            }
        };
        let mut values = Vec::with_capacity(1 + record.history.len());
        values.push(head);
        for (seq, v) in (0..).map(|i: i64| top - i).zip(record.history.iter()) {
            let o = &v.object;
            values.push(ImportRow::History((
                code,
                uuid,
                seq,
                v.archived_ms,
                o.class.as_str(),
                o.context.as_str(),
                o.owner.to_uuid(),
                o.created_ms,
                o.updated_ms,
                o.properties_json.as_str(),
                write_id,
            )));
        }
        let batch = (values.len() > 1).then(|| {
            let mut b = Batch::new(BatchType::Logged);
            b.append_statement(head_st.clone());
            for _ in 1..values.len() {
                b.append_statement(self.st.history_insert.clone());
            }
            b
        });
        for attempt in 0..MAX_ATTEMPTS {
            let outcome = match &batch {
                Some(b) => self.cas_batch(op, b, &values).await?,
                None => self.cas(op, head_st, &values[0]).await?,
            };
            match outcome {
                Cas::Applied => return Ok(()),
                // The refused LWT's Paxos round completed any write in flight on the
                // partition, so a plain read sees at least what refused it.
                Cas::Rejected(_) => {
                    return match self.held(op, kind, id, false).await? {
                        Some((_, held)) if same_record(&held, record) => Ok(()),
                        _ => Err(support::import_conflict(kind, id)),
                    }
                }
                Cas::Unknown(e) => match self.held(op, kind, id, true).await {
                    Ok(Some((writer, held))) => {
                        return if writer == Some(write_id) || same_record(&held, record) {
                            Ok(())
                        } else {
                            Err(support::import_conflict(kind, id))
                        }
                    }
                    // Not written: try again.
                    Ok(None) => backoff(attempt).await,
                    Err(_) => return Err(unknown_outcome(op, &e)),
                },
            }
        }
        Err(too_many_attempts(op))
    }

    /// The record the store holds under `kind` and `id`, with the id of its last write when
    /// `serial`, `None` when the id was never used. With `serial` a serial read first completes
    /// any write in flight on the partition (after an LWT whose outcome is unknown), so the
    /// read after it sees the partition as the last LWT left it.
    async fn held(
        &self,
        op: &str,
        kind: ObjectKind,
        id: Id,
        serial: bool,
    ) -> PluginResult<Option<(Option<Uuid>, ObjectRecord)>> {
        let key = (kind_code(kind), id.to_uuid());
        let mut writer = None;
        if serial {
            let r = self
                .session
                .execute_unpaged(&self.st.get_object_serial, key)
                .await
                .map_err(|e| failed(op, &e))?;
            let row = r
                .into_rows_result()
                .map_err(|e| bad_answer(op, e))?
                .maybe_first_row::<(Option<i64>, Option<bool>, Option<Uuid>)>()
                .map_err(|e| bad_answer(op, e))?;
            let Some((Some(_), _, w)) = row else {
                return Ok(None);
            };
            writer = w;
        }
        let mut rows = self
            .session
            .execute_iter(self.st.record.clone(), key)
            .await
            .map_err(|e| failed_pager(op, &e))?
            .rows_stream::<RecordRow>()
            .map_err(|e| bad_answer(op, e))?;
        let mut partition: Option<Partition> = None;
        while let Some(row) = rows.next().await {
            let row = row.map_err(|e| {
                PluginError::unavailable(one_line(&format!(
                    "cassandra: {op}: Cassandra is unavailable: {e}"
                )))
            })?;
            match &mut partition {
                Some(p) => p.add(row),
                None => {
                    let Some(k) = kind_of(row.kind) else { continue };
                    partition = Some(Partition::new(k, row));
                }
            }
        }
        Ok(partition
            .and_then(Partition::into_record)
            .map(|record| (writer, record)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_strangers() {
        let c = Cursor {
            token: -42,
            done: vec![Uuid::from_u128(1), Uuid::from_u128(2)],
        };
        assert_eq!(Cursor::parse(&c.text()).unwrap(), Some(c));
        assert_eq!(Cursor::parse("").unwrap(), None);
        for bad in [
            "x",
            "12",
            "12:",
            "a:00000000-0000-0000-0000-000000000001",
            "1:zz",
        ] {
            let e = Cursor::parse(bad).unwrap_err();
            assert_eq!(e.kind, weft_plugin_api::ErrorKind::Invalid, "{bad}");
        }
    }

    #[test]
    fn a_deleted_record_is_the_same_whatever_version_it_gives() {
        let id = Id::random();
        let o = StoredObject {
            kind: ObjectKind::Thing,
            id,
            class: "C".into(),
            context: "".into(),
            owner: Id::random(),
            created_ms: 1,
            updated_ms: 2,
            properties_json: "{}".into(),
        };
        let held = ObjectRecord {
            kind: ObjectKind::Thing,
            id,
            current: None.into(),
            version: 0,
            history: vec![ObjectVersion {
                object: o.clone(),
                archived_ms: 3,
            }]
            .into(),
        };
        let given = ObjectRecord {
            version: 7,
            ..held.clone()
        };
        assert!(same_record(&held, &given));
        let live = ObjectRecord {
            current: Some(o).into(),
            version: 2,
            ..held.clone()
        };
        assert!(!same_record(&held, &live));
        assert!(!same_record(
            &ObjectRecord {
                version: 1,
                ..live.clone()
            },
            &live
        ));
    }
}
