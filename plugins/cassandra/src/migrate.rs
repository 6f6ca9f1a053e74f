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
//! * **Import** checks every record (`Invalid` before anything is written), then reads which
//!   of the call's partitions exist (`SELECT DISTINCT kind, id … WHERE kind = ? AND id IN ?`,
//!   up to [`IMPORT_READ_IDS`] ids of one replica per read, at the configured consistency) and
//!   compares each existing one whole with its record: the same record is a no-op, another one
//!   `Conflict`, and then nothing of the call is written. Then the candidate-index entries of
//!   the records to write (grouped per index partition into unlogged single-partition batches,
//!   with the timestamp of the record's version, as `create_object` writes its entries before
//!   its LWT: the indexes stay a superset), then the records themselves, **unconditionally**:
//!   each record is the static row (the current version, or the tombstone of a deleted object,
//!   which keeps its id taken) plus one row per earlier version, all in one partition, so
//!   Cassandra applies it as one mutation, atomically and isolated; up to
//!   [`IMPORT_BATCH_RECORDS`] records of one replica share an unlogged batch (each record still
//!   its own mutation), [`IMPORT_IN_FLIGHT`] batches at once. Every row is written at
//!   [`IMPORT_TIMESTAMP`] (1 µs), below any Paxos ballot, so that a later LWT of a server
//!   (update, delete, vector) wins over the imported row whatever the nodes' clocks, and
//!   `create_object` of an imported id sees it taken. A batch is idempotent (the same values at
//!   the same timestamp) and sent again after a failure that may pass; an import interrupted
//!   at any point leaves each record whole or absent, and repeating it compares what was
//!   written and writes the rest.
//!
//!   One Paxos round per object (the conditional `INSERT … IF NOT EXISTS` this connector used
//!   before) made the import some 1,000–1,300 objects/s on a 2-core machine; the read and the
//!   plain batches are several times faster. **What is given up:** between the read and the
//!   write nothing holds the id, so a writer creating the *same id* in the same moment (another
//!   import of a different record under that id, or a server's `create_object`) is not
//!   detected: both writes land and the partition holds a mix of the two (cells merge by
//!   timestamp). Two imports of the *same* record at once are harmless (the same cells). This
//!   cannot happen in `weft migrate` as documented: ids are random UUIDs made by the source,
//!   the target must be empty (or, with `--resume`, hold what an earlier run of the same
//!   migration wrote), and no server may use the target while it runs.
//!
//! History rows get `seq` below the stored version (newest `v − 1`, then `v − 2`, …; below 0
//! for a record of version 0 from a store without versioned writes), so that a later update
//! archives version `v` at `seq = v` as for any object. A deleted record is stored with version
//! `n + 1` over its `n` history rows (`n … 1`), as a delete leaves it, and exported as version 0.

use std::collections::{HashMap, HashSet};

use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use scylla::cluster::ClusterState;
use scylla::serialize::row::{RowSerializationContext, SerializeRow};
use scylla::serialize::writers::RowWriter;
use scylla::serialize::SerializationError;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::DeserializeRow;
use uuid::Uuid;
use weft_connector_sdk::support;
use weft_plugin_api::{
    ErrorKind, Id, ObjectKind, ObjectRecord, ObjectVersion, PluginError, PluginResult, RecordPage,
    StoredObject,
};

use crate::schema::{one_line, Statements, EXPORT_PAGE_SIZE};
use crate::store::{
    backoff, bad_answer, failed, failed_pager, index_put_ts, kind_code, Db, IN_FLIGHT,
};

/// How many record batches of one `import_objects` call are written at once.
pub const IMPORT_IN_FLIGHT: usize = 64;
/// Ids per read of which partitions exist (`id IN ?`).
const IMPORT_READ_IDS: usize = 100;
/// Records per unlogged batch: Cassandra warns (in its log and to the client) about an unlogged
/// batch over more partitions (`unlogged_batch_across_partitions_warn_threshold`, 10).
const IMPORT_BATCH_RECORDS: usize = 10;
/// About how many bytes (as Cassandra counts them: values and each row's and cell's overhead)
/// one batch of several records holds at most: Cassandra warns about a batch of several
/// partitions above `batch_size_warn_threshold` (5 KiB) and refuses one above
/// `batch_size_fail_threshold` (50 KiB); a larger record is written alone.
const IMPORT_BATCH_BYTES: usize = 4_500;
/// How often an import batch is sent before a failure that may pass is answered.
const IMPORT_ATTEMPTS: u32 = 5;
/// The write timestamp (microseconds) of every imported row of `objects`: far below the
/// timestamp of any lightweight transaction (its Paxos ballot, the clock in microseconds), so
/// that any later update, delete or vector write of the object wins over the imported row
/// whatever the clocks of the nodes say.
pub(crate) const IMPORT_TIMESTAMP: i64 = 1;
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

/// The bytes a record's rows take, about, as Cassandra counts a batch's size (values plus some
/// 300 bytes of keys, timestamps and cell overhead per row).
fn record_bytes(record: &ObjectRecord) -> usize {
    let object = |o: &StoredObject| 300 + o.class.len() + o.context.len() + o.properties_json.len();
    let current = record.current.as_ref().into_option().map_or(150, object);
    current
        + record
            .history
            .iter()
            .map(|v| object(&v.object))
            .sum::<usize>()
}

/// One unlogged batch of an import: whole records, each its partition's static row (the current
/// version, or the tombstone of a deleted object) and history rows, at [`IMPORT_TIMESTAMP`].
struct ImportBatch<'a> {
    batch: Batch,
    values: Vec<ImportRow<'a>>,
    records: usize,
    bytes: usize,
}

impl<'a> ImportBatch<'a> {
    fn new() -> ImportBatch<'a> {
        let mut batch = Batch::new(BatchType::Unlogged);
        batch.set_timestamp(Some(IMPORT_TIMESTAMP));
        batch.set_is_idempotent(true);
        ImportBatch {
            batch,
            values: Vec::new(),
            records: 0,
            bytes: 0,
        }
    }

    /// Adds `record`'s statements (`size`: [`record_bytes`]).
    fn add(&mut self, st: &Statements, record: &'a ObjectRecord, size: usize) {
        let (code, uuid) = (kind_code(record.kind), record.id.to_uuid());
        let write_id = Uuid::new_v4();
        let top = match record.current.as_ref().into_option() {
            Some(o) => {
                let version = record.version as i64; // importable: at most i64::MAX
                self.batch.append_statement(st.import_live.clone());
                self.values.push(ImportRow::Live((
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
                )));
                version - 1
            }
            None => {
                let n = record.history.len() as i64;
                self.batch.append_statement(st.import_deleted.clone());
                self.values
                    .push(ImportRow::Deleted((code, uuid, n + 1, write_id)));
                n
            }
        };
        for (seq, v) in (0..).map(|i: i64| top - i).zip(record.history.iter()) {
            let o = &v.object;
            self.batch.append_statement(st.history_insert.clone());
            self.values.push(ImportRow::History((
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
        self.records += 1;
        self.bytes += size;
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
    /// then the call's partitions read (which ids are taken) and the taken ones compared
    /// (`Conflict` before anything is written), then the index entries of the live records to
    /// write, then those records, in unlogged batches (see the module docs).
    pub(crate) async fn import(&self, records: Vec<ObjectRecord>) -> PluginResult<()> {
        let op = "import_objects";
        for record in &records {
            importable(record)?;
        }
        let taken = self.taken(op, &records).await?;
        // By index: a closure over `&ObjectRecord` would make the future's `Send` depend on a
        // higher-ranked lifetime the compiler cannot prove.
        let records = &records;
        let (held, new): (Vec<usize>, Vec<usize>) = (0..records.len()).partition(|&i| {
            let r = &records[i];
            taken.contains(&(kind_code(r.kind), r.id.to_uuid()))
        });
        futures::stream::iter(held)
            .map(|i| self.compare(op, &records[i]))
            .buffer_unordered(IN_FLIGHT)
            .try_for_each(|()| async { Ok(()) })
            .await?;
        if new.is_empty() {
            return Ok(());
        }
        let new: Vec<&ObjectRecord> = new.into_iter().map(|i| &records[i]).collect();
        self.import_indexes(op, &new).await?;
        let batches = self.import_batches(&new);
        let batches = &batches;
        futures::stream::iter(0..batches.len())
            .map(|i| self.import_batch(op, &batches[i]))
            .buffer_unordered(IMPORT_IN_FLIGHT)
            .try_for_each(|()| async { Ok(()) })
            .await
    }

    /// The first replica of the partition of `kind` and `id` (`None` when the driver does not
    /// know the keyspace's ring): reads and batches group by it, so that one node coordinates
    /// partitions it holds.
    fn replica(state: &ClusterState, keyspace: &str, code: i8, id: Uuid) -> Option<Uuid> {
        let replicas = state.get_endpoints(keyspace, "objects", &(code, id)).ok()?;
        replicas.first().map(|(node, _)| node.host_id)
    }

    /// The partitions of `records` that exist (kind code and id): `SELECT DISTINCT … WHERE kind
    /// = ? AND id IN ?` over up to [`IMPORT_READ_IDS`] ids of one replica, at the configured
    /// consistency.
    async fn taken(&self, op: &str, records: &[ObjectRecord]) -> PluginResult<HashSet<(i8, Uuid)>> {
        let state = self.session.get_cluster_state();
        let mut groups: HashMap<(Option<Uuid>, i8), Vec<Uuid>> = HashMap::new();
        for r in records {
            let (code, id) = (kind_code(r.kind), r.id.to_uuid());
            let replica = Db::replica(&state, &self.keyspace, code, id);
            groups.entry((replica, code)).or_default().push(id);
        }
        // Owned: a closure over borrowed ids would make the future's `Send` depend on a
        // higher-ranked lifetime the compiler cannot prove.
        let reads: Vec<(i8, Vec<Uuid>)> = groups
            .iter()
            .flat_map(|((_, code), ids)| ids.chunks(IMPORT_READ_IDS).map(|c| (*code, c.to_vec())))
            .collect();
        futures::stream::iter(reads)
            .map(|(code, ids)| async move {
                let r = self
                    .session
                    .execute_unpaged(&self.st.import_taken, (code, ids))
                    .await
                    .map_err(|e| failed(op, &e))?;
                let rows = r.into_rows_result().map_err(|e| bad_answer(op, e))?;
                rows.rows::<(i8, Uuid)>()
                    .map_err(|e| bad_answer(op, e))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad_answer(op, e))
            })
            .buffer_unordered(IN_FLIGHT)
            .try_fold(HashSet::new(), |mut taken, rows| async move {
                taken.extend(rows);
                Ok(taken)
            })
            .await
    }

    /// A record whose id is taken: the same record held is a no-op, anything else `Conflict`.
    async fn compare(&self, op: &str, record: &ObjectRecord) -> PluginResult<()> {
        match self.held(op, record.kind, record.id).await? {
            Some(held) if same_record(&held, record) => Ok(()),
            _ => Err(support::import_conflict(record.kind, record.id)),
        }
    }

    /// The unlogged batches writing `records`: each record's statements (its static row and
    /// history rows, one partition: one mutation, atomic and isolated), records of one replica
    /// together, up to [`IMPORT_BATCH_RECORDS`] records and about [`IMPORT_BATCH_BYTES`] (a
    /// larger record goes alone).
    fn import_batches<'a>(&self, records: &[&'a ObjectRecord]) -> Vec<ImportBatch<'a>> {
        let state = self.session.get_cluster_state();
        let mut groups: HashMap<Option<Uuid>, Vec<&'a ObjectRecord>> = HashMap::new();
        for r in records {
            let replica = Db::replica(&state, &self.keyspace, kind_code(r.kind), r.id.to_uuid());
            groups.entry(replica).or_default().push(r);
        }
        let mut batches = Vec::new();
        for group in groups.into_values() {
            let mut open = ImportBatch::new();
            for r in group {
                let size = record_bytes(r);
                if open.records > 0
                    && (open.records >= IMPORT_BATCH_RECORDS
                        || open.bytes + size > IMPORT_BATCH_BYTES)
                {
                    batches.push(std::mem::replace(&mut open, ImportBatch::new()));
                }
                open.add(&self.st, r, size);
            }
            if open.records > 0 {
                batches.push(open);
            }
        }
        batches
    }

    /// Runs one import batch, again after a failure that may pass (every write in it is
    /// idempotent: the same values at the same timestamp).
    async fn import_batch(&self, op: &str, b: &ImportBatch<'_>) -> PluginResult<()> {
        let mut attempt = 0;
        loop {
            match self.session.batch(&b.batch, &b.values).await {
                Ok(_) => return Ok(()),
                Err(e) => {
                    let error = failed(op, &e);
                    if error.kind != ErrorKind::Unavailable || attempt + 1 >= IMPORT_ATTEMPTS {
                        return Err(error);
                    }
                }
            }
            backoff(attempt).await;
            attempt += 1;
        }
    }

    /// The candidate-index entries (by kind, class and owner) of the live records, before the
    /// records themselves: each index partition's entries go as unlogged batches of one
    /// partition, with the timestamp `create_object` and `update_object` give version `v`.
    async fn import_indexes(&self, op: &str, records: &[&ObjectRecord]) -> PluginResult<()> {
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

    /// The record the store holds under `kind` and `id`, `None` when the id was never used.
    async fn held(&self, op: &str, kind: ObjectKind, id: Id) -> PluginResult<Option<ObjectRecord>> {
        let key = (kind_code(kind), id.to_uuid());
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
        Ok(partition.and_then(Partition::into_record))
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
