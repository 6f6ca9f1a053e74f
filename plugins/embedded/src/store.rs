//! The redb store: the data directory (lock file, database file, format version), the writer
//! thread that group-commits writes, and every contract operation on redb tables.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::ops::{Bound, Deref};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use abi_stable::std_types::{ROption, RString, RVec};
use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use weft_connector_sdk::support::{self, QueryMatcher};
use weft_plugin_api::aggregate::{
    AggregateGroup, AggregateRequest, AggregateResult, Occurrence, PropertyAggregate,
};
use weft_plugin_api::filter::{FilterValue, Operator, WhereFilter};
use weft_plugin_api::{
    now_ms, DocumentName, Id, ObjectHistory, ObjectKind, ObjectPage, ObjectQuery, ObjectRecord,
    ObjectVersion, PluginError, PluginLogger, PluginResult, RecordPage, StoredKey, StoredObject,
    VectorHit, VectorQuery, VersionedDocument, VersionedObject,
};

use crate::codec::{history_key, kind_byte, object_key, Entry, Reader, Writer};
use crate::index;
use crate::tables::{
    st, Bytes, CLASS_COUNTS, CLASS_INDEX, CLASS_STATS, CLASS_VALUES, DOCUMENTS, HISTORY, KEYS,
    KEY_CHILDREN, META, OBJECTS, OWNER_CLASS_COUNTS, OWNER_CLASS_INDEX, OWNER_COUNTS, OWNER_INDEX,
    PROPERTY_INDEX, REFERENCE_INDEX, VECTORS, VECTOR_KEYS,
};
use crate::vectors::{self, Vectors};

/// The version of the layout this crate writes (tables, keys, record encodings). A database
/// stamped with a higher number is refused; a lower one is upgraded when opened.
///
/// * 1: the first layout.
/// * 2: the property index also keys RFC 3339 date strings by instant ([`index`]); a version 1
///   file gets those keys on its first open by this version.
/// * 3: class and owner index keys hold the creation time (newest first) before the id, and
///   each owner has a count, so a page without a filter reads only its own objects; an older
///   file's class and owner indexes are rebuilt on its first open by this version.
/// * 4: ties in creation time are by id descending in class and owner keys (the id inverted, as
///   the contract's order changed); an older file's class and owner indexes are rebuilt on its
///   first open by this version.
/// * 5: per class and property, running totals ([`index::Stats`]) and a count per primitive
///   value, so statistics of a whole class are answered without reading its objects; and an
///   index and counts by owner and class, so a page of a class and owners reads only its own
///   objects; an older file gets them, made from its current objects, on its first open by
///   this version.
/// * 6: object vectors ([`crate::vectors`]: the tables `vectors` and `vector_keys`, and
///   `meta`'s `vector_seq`); an older file has none, and gets the empty tables on its first
///   open by this version.
/// * 7: the per-class running totals hold the exact sum of every number
///   ([`weft_plugin_api::exact_sum`]), so sums and means of numbers that are not integers come
///   from them too; an older file's statistics are made again from its current objects on its
///   first open by this version.
/// * 8: an index of references (`index_reference`: [`index::reference_keys`]), so a filter
///   through a reference (`[property, Class, …]`) reads only the objects that refer to what the
///   rest of its path finds; an older file gets it, made from its current objects, on its first
///   open by this version.
pub const FORMAT_VERSION: u64 = 8;

/// The most writes one transaction takes (the rest wait for the next one).
const MAX_BATCH: usize = 4096;

/// The most writes waiting for the writer thread: a writer arriving when this many wait is
/// held (its future pends, nothing is queued) until the writer has taken some, so memory stays
/// bounded however fast writes come. One full queue is one group commit.
pub const QUEUE_BOUND: usize = MAX_BATCH;

/// A write's outcome: the outer `Err` is a failure of the store (the whole transaction is
/// aborted), the inner one the write's own refusal (it changed nothing).
pub type WriteResult<T> = Result<PluginResult<T>, PluginError>;

/// The transaction the writer thread hands to each write of a group: redb's (every write
/// function takes it as a `&WriteTransaction` too), and the changes the writes make to the
/// vector indexes, staged once it is committed ([`Vectors::stage`]).
pub struct Tx<'a> {
    tx: &'a WriteTransaction,
    vector_changes: RefCell<Vec<vectors::Change>>,
}

impl Deref for Tx<'_> {
    type Target = WriteTransaction;
    fn deref(&self) -> &WriteTransaction {
        self.tx
    }
}

impl Tx<'_> {
    /// [`vectors::replace`] in this transaction, its index changes collected.
    fn replace_vector(
        &self,
        kind: ObjectKind,
        id: Id,
        old_class: Option<&str>,
        new: Option<(&str, &[f32])>,
    ) -> PluginResult<()> {
        let mut changes = self.vector_changes.borrow_mut();
        vectors::replace(self.tx, &mut changes, kind, id, old_class, new)
    }
}

/// One write waiting for the writer thread.
trait Job: Send {
    /// Applies the write inside `tx`; `Err` when the store failed (abort everything).
    fn run(&mut self, tx: &Tx) -> Result<(), PluginError>;
    /// Answers the writer once the transaction is committed (or failed).
    fn finish(self: Box<Self>, commit: Result<(), PluginError>);
}

struct Pending<T, F> {
    work: Option<F>,
    result: Option<PluginResult<T>>,
    reply: oneshot::Sender<PluginResult<T>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Tx) -> WriteResult<T> + Send + 'static,
{
    fn run(&mut self, tx: &Tx) -> Result<(), PluginError> {
        let Some(work) = self.work.take() else {
            return Ok(());
        };
        match catch_unwind(AssertUnwindSafe(|| work(tx))) {
            Ok(Ok(result)) => {
                self.result = Some(result);
                Ok(())
            }
            Ok(Err(failure)) => Err(failure),
            Err(_) => Err(PluginError::internal(
                "embedded: a write panicked; its transaction was rolled back",
            )),
        }
    }

    fn finish(self: Box<Self>, commit: Result<(), PluginError>) {
        let answer = match (commit, self.result) {
            // A refused write changed nothing: its own answer holds whatever became of the rest.
            (_, Some(Err(refused))) => Err(refused),
            (Ok(()), Some(Ok(v))) => Ok(v),
            (Ok(()), None) => Err(PluginError::internal("embedded: a write was never applied")),
            (Err(e), _) => Err(e),
        };
        let _ = self.reply.send(answer);
    }
}

/// An open data directory.
pub struct Store {
    db: Arc<Database>,
    file: PathBuf,
    /// The vector indexes (in memory; built at open, updated by the indexer thread).
    vectors: Arc<Vectors>,
    /// The one sender of the bounded queue (a channel of `QUEUE_BOUND - 1` places plus the
    /// sender's own: [`QUEUE_BOUND`] in all), taken in turn by writers.
    writer: futures::lock::Mutex<Option<mpsc::Sender<Box<dyn Job>>>>,
    /// How many writes are queued now, and the most there ever were.
    depth: Arc<QueueDepth>,
    writer_thread: Option<JoinHandle<()>>,
    /// Adds committed vectors to the vector indexes behind the writer ([`Vectors::run_indexer`]).
    indexer_thread: Option<JoinHandle<()>>,
    /// Held (locked) as long as the store is open; the OS releases it when the process ends.
    _lock: File,
}

impl Drop for Store {
    fn drop(&mut self) {
        // Stop the writer after it has finished what is queued, so the database closes cleanly.
        self.writer.get_mut().take();
        if let Some(t) = self.writer_thread.take() {
            let _ = t.join();
        }
        // Then the indexer, once it has added every committed vector (the vector indexes are
        // in memory only: built from the database at the next open).
        self.vectors.close();
        if let Some(t) = self.indexer_thread.take() {
            let _ = t.join();
        }
    }
}

/// Takes `DIR/LOCK` (an exclusive OS lock) and writes our pid into it; refused, naming the
/// directory and the holder's pid, when another process holds it.
fn lock_dir(dir: &Path) -> PluginResult<File> {
    let path = dir.join("LOCK");
    let unavailable = |e: std::io::Error| {
        PluginError::unavailable(format!(
            "embedded: cannot use the lock file {}: {e}",
            path.display()
        ))
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(unavailable)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => "unknown pid".to_string(),
                pid => format!("pid {pid}"),
            };
            return Err(PluginError::unavailable(format!(
                "embedded: the data directory {} is in use by another process ({holder}); stop it or give another directory (one process per data directory)",
                dir.display()
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(unavailable(e)),
    }
    file.set_len(0).map_err(unavailable)?;
    file.rewind().map_err(unavailable)?;
    writeln!(file, "{}", std::process::id()).map_err(unavailable)?;
    file.sync_all().map_err(unavailable)?;
    Ok(file)
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path, log: PluginLogger) -> PluginResult<Store> {
        std::fs::create_dir_all(dir).map_err(|e| {
            PluginError::unavailable(format!(
                "embedded: cannot create the data directory {}: {e}",
                dir.display()
            ))
        })?;
        // Messages and the log name the directory absolutely.
        let dir = &std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        let lock = lock_dir(dir)?;
        let file = dir.join("weft.redb");
        let db = Database::create(&file).map_err(|e| {
            PluginError::unavailable(format!(
                "embedded: cannot open the database {}: {e}",
                file.display()
            ))
        })?;
        init(&db, &file)?;
        let vectors = Arc::new(Vectors::open(dir, &db, log)?);
        let writer_vectors = Arc::clone(&vectors);
        let indexer_vectors = Arc::clone(&vectors);
        let indexer_thread = std::thread::Builder::new()
            .name("weft-embedded-indexer".into())
            .spawn(move || indexer_vectors.run_indexer())
            .map_err(|e| {
                PluginError::unavailable(format!("embedded: cannot start its indexer: {e}"))
            })?;
        let db = Arc::new(db);
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>(QUEUE_BOUND - 1);
        let writer_db = Arc::clone(&db);
        let depth = Arc::new(QueueDepth::default());
        let writer_depth = Arc::clone(&depth);
        let writer_thread = std::thread::Builder::new()
            .name("weft-embedded-writer".into())
            .spawn(move || write_loop(&writer_db, rx, &writer_depth, &writer_vectors, log))
            .map_err(|e| {
                vectors.close();
                PluginError::unavailable(format!("embedded: cannot start its writer: {e}"))
            })?;
        Ok(Store {
            db,
            file,
            vectors,
            writer: futures::lock::Mutex::new(Some(tx)),
            depth,
            writer_thread: Some(writer_thread),
            indexer_thread: Some(indexer_thread),
            _lock: lock,
        })
    }

    /// The vector indexes (tests).
    #[cfg(test)]
    pub(crate) fn vectors(&self) -> &Vectors {
        &self.vectors
    }

    /// The database file.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// How many vectors the indexer built the vector indexes of from the store after open
    /// (waits until it has).
    pub fn vectors_at_open(&self) -> usize {
        self.vectors.opened()
    }

    /// Queues a write for the writer thread and answers once it is committed. When
    /// [`QUEUE_BOUND`] writes are waiting already, this waits (pends) for room first: the
    /// caller feels the back-pressure, the queue never grows past its bound.
    pub async fn submit<T, F>(&self, work: F) -> Result<PluginResult<T>, oneshot::Canceled>
    where
        T: Send + 'static,
        F: FnOnce(&Tx) -> WriteResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Pending {
            work: Some(work),
            result: None,
            reply,
        });
        {
            // Writers take the one sender in turn (a fair queue of futures, holding their own
            // jobs), so the channel holds at most its bound.
            let mut writer = self.writer.lock().await;
            if let Some(sender) = writer.as_mut() {
                let ready = futures::future::poll_fn(|cx| sender.poll_ready(cx)).await;
                if ready.is_ok() {
                    self.depth.queued();
                    // A send to a stopped writer drops the job and with it `reply`: the caller
                    // then answers `Unavailable`.
                    if sender.start_send(job).is_err() {
                        self.depth.taken(1);
                    }
                }
            }
        }
        answer.await
    }

    /// The most writes that were ever waiting for the writer at once.
    pub fn peak_queue_depth(&self) -> usize {
        self.depth.peak.load(Ordering::Relaxed)
    }

    /// Writes a consistent copy of the store to `to` while it keeps serving ([`crate::backup`]).
    pub fn backup(&self, to: &Path) -> PluginResult<weft_plugin_api::BackupReport> {
        let snapshot = self.begin_read()?;
        let dir = self.file.parent().unwrap_or(Path::new("/"));
        crate::backup::backup(&snapshot, dir, to)
    }

    fn begin_read(&self) -> PluginResult<redb::ReadTransaction> {
        self.db.begin_read().map_err(st)
    }

    pub fn get_object(&self, kind: ObjectKind, id: Id) -> PluginResult<Option<StoredObject>> {
        let tx = self.begin_read()?;
        let t = tx.open_table(OBJECTS).map_err(st)?;
        Ok(entry(&t, kind, id)?.and_then(|e| e.current))
    }

    pub fn get_objects(
        &self,
        kind: ObjectKind,
        ids: &[Id],
    ) -> PluginResult<Vec<Option<StoredObject>>> {
        let tx = self.begin_read()?;
        let t = tx.open_table(OBJECTS).map_err(st)?;
        ids.iter()
            .map(|id| Ok(entry(&t, kind, *id)?.and_then(|e| e.current)))
            .collect()
    }

    pub fn get_object_versioned(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> PluginResult<Option<VersionedObject>> {
        let tx = self.begin_read()?;
        let t = tx.open_table(OBJECTS).map_err(st)?;
        Ok(entry(&t, kind, id)?.and_then(|e| {
            e.current.map(|object| VersionedObject {
                object,
                version: e.version,
            })
        }))
    }

    /// The current objects `query` selects (unordered), with a resolver of references, passed
    /// to `then`.
    fn with_matches<R>(
        &self,
        query: &ObjectQuery,
        then: impl FnOnce(Vec<StoredObject>, weft_plugin_api::filter::Resolver<'_>) -> PluginResult<R>,
    ) -> PluginResult<R> {
        matches_in(&self.begin_read()?, query, then)
    }

    pub fn get_vector(&self, kind: ObjectKind, id: Id) -> PluginResult<Option<Vec<f32>>> {
        vectors::get_vector(&self.begin_read()?, kind, id)
    }

    /// `search_vectors`, filter first ([`crate::vectors`]): without owners and filter, each
    /// class's vector index (the query's class, or every class of the kind); with them, the
    /// objects they allow (found as `query_objects` finds them, from one snapshot) compared
    /// exactly when at most [`vectors::EXACT_SEARCH_MAX`], else the vector indexes searched,
    /// skipping what they do not allow.
    pub fn search_vectors(&self, query: &VectorQuery) -> PluginResult<Vec<VectorHit>> {
        self.search_vectors_with(query, vectors::EXACT_SEARCH_MAX)
    }

    /// [`search_vectors`](Self::search_vectors) with the switch point `exact_max` (tests).
    pub(crate) fn search_vectors_with(
        &self,
        query: &VectorQuery,
        exact_max: usize,
    ) -> PluginResult<Vec<VectorHit>> {
        let candidates = query.candidates();
        // A filter that does not parse is `Invalid`, whatever else the query asks.
        QueryMatcher::new(&candidates)?;
        if query.k == 0 {
            return Ok(Vec::new());
        }
        let tx = self.begin_read()?;
        let classes = if query.class.is_empty() {
            self.vectors.classes_of(query.kind)
        } else {
            vec![query.class.to_string()]
        };
        if query.owners.is_empty() && query.filter_json.trim().is_empty() {
            return vectors::nearest(&self.vectors, &tx, query, &classes, None);
        }
        let allowed = matches_in(&tx, &candidates, |matches, _| Ok(matches))?;
        if allowed.len() <= exact_max {
            return vectors::exact_among(&tx, query, allowed);
        }
        let allowed: HashMap<Id, StoredObject> = allowed.into_iter().map(|o| (o.id, o)).collect();
        vectors::nearest(&self.vectors, &tx, query, &classes, Some(&allowed))
    }

    pub fn query_objects(&self, query: &ObjectQuery) -> PluginResult<ObjectPage> {
        if let Some(page) = self.newest_page(query)? {
            return Ok(page);
        }
        if let Some(page) = self.complement_page(query)? {
            return Ok(page);
        }
        self.with_matches(query, |matches, _| Ok(support::page(matches, query)))
    }

    /// The page of a query without a filter and of one class, or of some owners, or of the
    /// whole kind: read from the class or owner index, whose keys are in newest-first order
    /// (each scope's first `offset + limit` keys, merged), and counted by the counters. Only the
    /// page's objects are read. `None` for a query of another shape, or when an object of the
    /// page does not match it (an index out of step: the caller then reads every candidate).
    fn newest_page(&self, query: &ObjectQuery) -> PluginResult<Option<ObjectPage>> {
        let tx = self.begin_read()?;
        let Some(Scopes {
            table,
            prefixes,
            total,
        }) = scopes(&tx, query)?
        else {
            return Ok(None);
        };
        let offset = usize::try_from(query.offset).unwrap_or(usize::MAX);
        let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
        let want = offset.saturating_add(limit);
        let mut order = Vec::new();
        if limit > 0 {
            let t = tx.open_table(table).map_err(st)?;
            for prefix in &prefixes {
                let (lo, hi) = index::scope_range(prefix);
                for item in t.range(&lo[..]..=&hi[..]).map_err(st)?.take(want) {
                    let (k, _) = item.map_err(st)?;
                    order.push(index::newest_suffix(k.value()));
                }
            }
        }
        order.sort_unstable();
        order.dedup();
        let matcher = QueryMatcher::new(query)?;
        let t = tx.open_table(OBJECTS).map_err(st)?;
        let no_references = |_: ObjectKind, _: Id| None;
        let mut objects = RVec::new();
        for suffix in order.iter().skip(offset).take(limit) {
            match entry(&t, query.kind, index::scope_id(suffix))?.and_then(|e| e.current) {
                Some(o) if matcher.matches(&o, &no_references) => objects.push(o),
                _ => return Ok(None),
            }
        }
        Ok(Some(ObjectPage { objects, total }))
    }

    /// The page of a query whose filter is a `Not` of a filter the indexes answer (through
    /// references too: the hits are checked with references resolved), or
    /// a `NotEqual` of one property (numbers, strings or booleans) in one class: its matches
    /// are the scope's objects less the inner filter's (`Not`), or the class's objects with a
    /// value of that type less the `Equal` ones (`NotEqual`), so the total is a counter less
    /// the exceptions (counted by the class's value counts for an `Equal` of one property in
    /// a class, else read from the property index and checked), and the page is read from the
    /// scope's index, newest first, up to its end. `None` for another query, or when an object of the page
    /// does not match (then the caller reads every candidate).
    fn complement_page(&self, query: &ObjectQuery) -> PluginResult<Option<ObjectPage>> {
        let filter_json = query.filter_json.trim();
        if filter_json.is_empty() {
            return Ok(None);
        }
        let Ok(filter) = WhereFilter::parse(filter_json) else {
            return Ok(None);
        };
        let whole = ObjectQuery {
            filter_json: RString::new(),
            ..query.clone()
        };
        let tx = self.begin_read()?;
        let Some(scope) = scopes(&tx, &whole)? else {
            return Ok(None);
        };
        let t = tx.open_table(OBJECTS).map_err(st)?;
        let resolve =
            |kind: ObjectKind, id: Id| entry(&t, kind, id).ok().flatten().and_then(|e| e.current);
        let in_scope = QueryMatcher::new(&whole)?;
        // The objects of the scope that `inner` matches, read from its index plan.
        let exact = |inner: &WhereFilter| -> PluginResult<Option<BTreeSet<Id>>> {
            let Some(plan) = index::plan(query.kind, inner) else {
                return Ok(None);
            };
            let ids = planned_ids(&tx, &plan)?;
            let mut hits = BTreeSet::new();
            for id in ids {
                if let Some(o) = entry(&t, query.kind, id)?.and_then(|e| e.current) {
                    if in_scope.matches(&o, &resolve) && inner.matches(&o, &resolve) {
                        hits.insert(id);
                    }
                }
            }
            Ok(Some(hits))
        };
        // A comparison of one property in a class's own scope, and its `Equal` matches as
        // counted by the class's value counts (exact for the values `class_equal_key` takes).
        let class_only = !query.class.is_empty() && query.owners.is_empty();
        let equal_count = |c: &WhereFilter| -> PluginResult<Option<(index::Stats, u64)>> {
            if !class_only || c.path.len() != 1 {
                return Ok(None);
            }
            let Ok(value) = c.value() else {
                return Ok(None);
            };
            let Some(key) = index::class_equal_key(query.kind, &query.class, &c.path[0], &value)
            else {
                return Ok(None);
            };
            let n = tx
                .open_table(CLASS_VALUES)
                .map_err(st)?
                .get(&key[..])
                .map_err(st)?
                .map_or(0, |g| g.value());
            let stats = tx
                .open_table(CLASS_STATS)
                .map_err(st)?
                .get(&index::stats_key(query.kind, &query.class, &c.path[0])[..])
                .map_err(st)?
                .map(|g| index::Stats::decode(g.value()))
                .unwrap_or_default();
            Ok(Some((stats, n)))
        };
        let (total, excluded, check_each) = match filter.op() {
            Operator::Not if filter.operands.len() == 1 => {
                let inner = &filter.operands[0];
                match equal_count(inner)? {
                    Some((_, equal)) if inner.op() == Operator::Equal => {
                        (scope.total.saturating_sub(equal), BTreeSet::new(), true)
                    }
                    _ => {
                        let Some(hits) = exact(inner)? else {
                            return Ok(None);
                        };
                        (scope.total.saturating_sub(hits.len() as u64), hits, false)
                    }
                }
            }
            Operator::NotEqual => {
                // NotEqual matches the objects with a value of the compared type that is not
                // equal: those of the type less the equal ones.
                let Some((stats, equal)) = equal_count(&filter)? else {
                    return Ok(None);
                };
                let typed = match filter.value() {
                    Ok(FilterValue::Int(_) | FilterValue::Number(_)) => stats.ints + stats.floats,
                    Ok(FilterValue::String(_)) => stats.strings,
                    Ok(FilterValue::Boolean(_)) => stats.booleans,
                    _ => return Ok(None),
                };
                let typed = u64::try_from(typed).unwrap_or(0);
                (typed.saturating_sub(equal), BTreeSet::new(), true)
            }
            _ => return Ok(None),
        };
        let offset = usize::try_from(query.offset).unwrap_or(usize::MAX);
        let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
        let want = offset.saturating_add(limit);
        let matcher = QueryMatcher::new(query)?;
        // Each scope's first `want` matches, newest first (the excepted skipped by their ids;
        // for `NotEqual` every object read and checked, as one without a value of the type is
        // not counted either), merged.
        let mut order = Vec::new();
        if limit > 0 && total > 0 {
            let keys = tx.open_table(scope.table).map_err(st)?;
            for prefix in &scope.prefixes {
                let (lo, hi) = index::scope_range(prefix);
                let mut taken = 0usize;
                for item in keys.range(&lo[..]..=&hi[..]).map_err(st)? {
                    if taken >= want {
                        break;
                    }
                    let suffix = index::newest_suffix(item.map_err(st)?.0.value());
                    let id = index::scope_id(&suffix);
                    if excluded.contains(&id) {
                        continue;
                    }
                    if check_each {
                        match entry(&t, query.kind, id)?.and_then(|e| e.current) {
                            Some(o) if matcher.matches(&o, &resolve) => {}
                            _ => continue,
                        }
                    }
                    order.push(suffix);
                    taken += 1;
                }
            }
        }
        order.sort_unstable();
        order.dedup();
        let mut objects = RVec::new();
        for suffix in order.iter().skip(offset).take(limit) {
            match entry(&t, query.kind, index::scope_id(suffix))?.and_then(|e| e.current) {
                Some(o) if matcher.matches(&o, &resolve) => objects.push(o),
                _ => return Ok(None),
            }
        }
        Ok(Some(ObjectPage { objects, total }))
    }

    pub fn aggregate(&self, query: &ObjectQuery, request_json: &str) -> PluginResult<String> {
        let request = support::parse_aggregate_request(request_json)?;
        // A count of a whole class (GetMeta's `meta { count }`) comes from the class's counter,
        // without reading its objects: the reference answer over no objects, with that count.
        let count_only = request.group_by.is_none() && request.properties.is_empty();
        let counted = if count_only {
            match scopes(&self.begin_read()?, query)? {
                Some(s) => Some(s.total),
                None => self
                    .complement_page(&ObjectQuery {
                        offset: 0,
                        limit: 0,
                        ..query.clone()
                    })?
                    .map(|page| page.total),
            }
        } else {
            None
        };
        let result = match counted {
            Some(n) => {
                let mut result = weft_plugin_api::aggregate::compute(&[], &request, &|_, _| None);
                if let Some(group) = result.groups.first_mut() {
                    group.count = n;
                }
                Some(result)
            }
            None => self.class_statistics(query, &request)?,
        };
        if let Some(result) = result {
            return serde_json::to_string(&result).map_err(|e| {
                PluginError::internal(format!("could not serialise the aggregate result: {e}"))
            });
        }
        self.with_matches(query, |matches, resolve| {
            support::aggregate_json(&matches, &request, resolve)
        })
    }

    /// The aggregate of a whole class (no filter, no owners, no grouping) from its counter and
    /// its per-class statistics (running totals with the exact sum of the numbers, value counts:
    /// the lowest and highest number are the first and last number key), reading no object.
    /// `None` (the caller aggregates the objects) for a query of another shape, or when a
    /// property holds references or other non-primitive values.
    fn class_statistics(
        &self,
        query: &ObjectQuery,
        request: &AggregateRequest,
    ) -> PluginResult<Option<AggregateResult>> {
        if request.group_by.is_some()
            || !query.filter_json.trim().is_empty()
            || query.class.is_empty()
            || !query.owners.is_empty()
        {
            return Ok(None);
        }
        let tx = self.begin_read()?;
        let count = tx
            .open_table(CLASS_COUNTS)
            .map_err(st)?
            .get(&index::class_prefix(query.kind, &query.class)[..])
            .map_err(st)?
            .map_or(0, |g| g.value());
        let stats = tx.open_table(CLASS_STATS).map_err(st)?;
        let values = tx.open_table(CLASS_VALUES).map_err(st)?;
        let (kind, class) = (query.kind, query.class.as_str());
        let mut properties = BTreeMap::new();
        for p in &request.properties {
            let s = stats
                .get(&index::stats_key(kind, class, p)[..])
                .map_err(st)?
                .map(|g| index::Stats::decode(g.value()))
                .unwrap_or_default();
            let present = u64::try_from(s.present).unwrap_or(0);
            let mut a = PropertyAggregate {
                count: present,
                ..Default::default()
            };
            let primitive = s.ints + s.floats + s.strings + s.booleans;
            if s.present == 0 {
                a.kind = "none".into();
            } else if primitive != s.present {
                return Ok(None);
            } else if s.ints + s.floats == s.present {
                // The exact sum of the numbers, rounded once: the reference's sum, whatever
                // the order they were written in.
                let (lo, hi) = index::class_numbers(kind, class, p);
                let mut range = values.range(&lo[..]..&hi[..]).map_err(st)?;
                let lowest = range.next().transpose().map_err(st)?;
                let highest = range.next_back().transpose().map_err(st)?;
                let lowest = lowest.map(|(k, _)| index::number_of(k.value()));
                let highest = highest.map(|(k, _)| index::number_of(k.value())).or(lowest);
                let sum = s.sum.value();
                a.kind = if s.ints == s.present { "int" } else { "number" }.into();
                a.lowest = lowest;
                a.highest = highest;
                a.sum = Some(sum);
                a.average = Some(sum / present as f64);
            } else if s.strings == s.present {
                let (lo, hi) = index::class_strings(kind, class, p);
                let mut occ = Vec::new();
                for item in values.range(&lo[..]..&hi[..]).map_err(st)? {
                    let (k, n) = item.map_err(st)?;
                    occ.push(Occurrence {
                        value: index::string_of(k.value(), lo.len()),
                        occurs: n.value(),
                    });
                }
                occ.sort_by(|x, y| y.occurs.cmp(&x.occurs).then_with(|| x.value.cmp(&y.value)));
                a.kind = "string".into();
                a.top_occurrences = occ;
            } else if s.booleans == s.present {
                let held = |b: bool| -> PluginResult<u64> {
                    let k = index::class_boolean(kind, class, p, b);
                    Ok(values.get(&k[..]).map_err(st)?.map_or(0, |g| g.value()))
                };
                let t = held(true)?;
                let f = present.saturating_sub(t);
                a.kind = "boolean".into();
                a.total_true = Some(t);
                a.total_false = Some(f);
                a.percentage_true = Some(t as f64 / present as f64);
                a.percentage_false = Some(f as f64 / present as f64);
            } else {
                // Primitives of more than one type: never all references.
                a.kind = "mixed".into();
            }
            properties.insert(p.clone(), a);
        }
        Ok(Some(AggregateResult {
            groups: vec![AggregateGroup {
                grouped_by: None,
                count,
                properties,
            }],
        }))
    }

    pub fn object_history(&self, kind: ObjectKind, id: Id) -> PluginResult<ObjectHistory> {
        let tx = self.begin_read()?;
        let objects = tx.open_table(OBJECTS).map_err(st)?;
        let Some(e) = entry(&objects, kind, id)? else {
            return Err(PluginError::not_found(format!(
                "{} {id} never existed",
                kind.as_str()
            )));
        };
        let history = tx.open_table(HISTORY).map_err(st)?;
        Ok(ObjectHistory {
            deleted: e.current.is_none(),
            versions: versions_of(&history, kind, id)?.into(),
        })
    }

    /// One page of `export_objects`: the objects of `kind` with ids above `cursor` (the last id
    /// of the page before, hyphenated; empty: from the first), ascending by id, at most `limit`
    /// (at least one), each whole, from one read snapshot. The objects and their history are
    /// read in one pass each (both tables are keyed by kind and id, so a page's versions lie
    /// together in the order of its objects).
    pub fn export_objects(
        &self,
        kind: ObjectKind,
        cursor: &str,
        limit: u64,
    ) -> PluginResult<RecordPage> {
        let after = if cursor.is_empty() {
            None
        } else {
            Some(cursor.parse::<Id>().map_err(|e| {
                PluginError::invalid(format!(
                    "embedded: export cursor {cursor:?} is not one this connector gave (the last object id of a page): {e}"
                ))
            })?)
        };
        let limit = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
        let tx = self.begin_read()?;
        let objects = tx.open_table(OBJECTS).map_err(st)?;
        let history = tx.open_table(HISTORY).map_err(st)?;
        let end = [kind_byte(kind) + 1];
        let start = match after {
            Some(id) => Bound::Excluded(object_key(kind, id).to_vec()),
            None => Bound::Included(vec![kind_byte(kind)]),
        };
        let rows = objects
            .range::<&[u8]>((as_ref_bound(&start), Bound::Excluded(&end[..])))
            .map_err(st)?;
        // The history from the page's first object on, read along with the objects.
        let mut versions = None;
        let mut records = RVec::with_capacity(limit.min(8192));
        let mut more = false;
        for row in rows {
            let (key, value) = row.map_err(st)?;
            if records.len() == limit {
                more = true;
                break;
            }
            let key = key.value();
            let id = object_id(key)?;
            let e = Entry::decode(value.value())?;
            let versions = match &mut versions {
                Some(v) => v,
                None => versions.insert(
                    history
                        .range::<&[u8]>(&history_key(kind, id, 0)[..]..&end[..])
                        .map_err(st)?
                        .peekable(),
                ),
            };
            let mut older = Vec::with_capacity(e.archived as usize);
            // Versions of objects before this one (there are none) are passed over.
            while let Some(item) = versions.next_if(|item| {
                item.as_ref()
                    .map_or(true, |(k, _)| versioned_object(k.value()) <= key)
            }) {
                let (k, v) = item.map_err(st)?;
                if versioned_object(k.value()) == key {
                    older.push(decode_version(v.value())?);
                }
            }
            older.reverse();
            records.push(record(kind, id, e, older));
        }
        let next = match (more, records.last()) {
            (true, Some(last)) => RString::from(last.id.to_string()),
            _ => RString::new(),
        };
        Ok(RecordPage { records, next })
    }

    pub fn get_key(&self, id: Id) -> PluginResult<Option<StoredKey>> {
        let tx = self.begin_read()?;
        let t = tx.open_table(KEYS).map_err(st)?;
        key(&t, id)
    }

    pub fn key_children(&self, id: Id) -> PluginResult<Vec<StoredKey>> {
        let tx = self.begin_read()?;
        let keys = tx.open_table(KEYS).map_err(st)?;
        if key(&keys, id)?.is_none() {
            return Err(support::key_missing(id));
        }
        let children = tx.open_table(KEY_CHILDREN).map_err(st)?;
        let mut found = Vec::new();
        for child in children_of(&children, id)? {
            if let Some(k) = key(&keys, child)? {
                found.push(k);
            }
        }
        support::sort_oldest_first(&mut found);
        Ok(found)
    }

    pub fn root_keys(&self) -> PluginResult<Vec<StoredKey>> {
        let tx = self.begin_read()?;
        let t = tx.open_table(KEYS).map_err(st)?;
        let mut roots = Vec::new();
        for item in t.iter().map_err(st)? {
            let (_, value) = item.map_err(st)?;
            let k = Reader::new(value.value(), "key").key()?;
            if k.parent.is_none() {
                roots.push(k);
            }
        }
        support::sort_oldest_first(&mut roots);
        Ok(roots)
    }

    pub fn get_document(&self, name: DocumentName) -> PluginResult<VersionedDocument> {
        let tx = self.begin_read()?;
        let t = tx.open_table(DOCUMENTS).map_err(st)?;
        document(&t, name)
    }
}

/// The current objects `query` selects in the snapshot `tx` (unordered), with a resolver of
/// references, passed to `then`.
fn matches_in<R>(
    tx: &redb::ReadTransaction,
    query: &ObjectQuery,
    then: impl FnOnce(Vec<StoredObject>, weft_plugin_api::filter::Resolver<'_>) -> PluginResult<R>,
) -> PluginResult<R> {
    let matcher = QueryMatcher::new(query)?;
    let t = tx.open_table(OBJECTS).map_err(st)?;
    let resolve =
        |kind: ObjectKind, id: Id| entry(&t, kind, id).ok().flatten().and_then(|e| e.current);
    let mut matches = Vec::new();
    match candidates(tx, query, &matcher)? {
        Some(ids) => {
            for id in ids {
                if let Some(o) = entry(&t, query.kind, id)?.and_then(|e| e.current) {
                    if matcher.matches(&o, &resolve) {
                        matches.push(o);
                    }
                }
            }
        }
        None => {
            let lo = [kind_byte(query.kind)];
            let hi = [kind_byte(query.kind) + 1];
            for item in t.range(&lo[..]..&hi[..]).map_err(st)? {
                let (_, value) = item.map_err(st)?;
                objects_read(1);
                if let Some(o) = Entry::decode_current(value.value())? {
                    if matcher.matches(&o, &resolve) {
                        matches.push(o);
                    }
                }
            }
        }
    }
    then(matches, &resolve)
}

/// Where the objects of an unfiltered query are, newest first ([`scopes`]).
struct Scopes {
    /// The class or the owner index.
    table: TableDefinition<'static, Bytes, Bytes>,
    /// The prefix of each scope's keys in it.
    prefixes: Vec<Vec<u8>>,
    /// How many current objects they hold in all.
    total: u64,
}

/// For a query without a filter, with one class, with owners, with both (each owner's objects
/// of the class), or with neither (the whole kind, every class's scope): where its objects
/// are, and how many (from the counters). `None` for a query with a filter.
fn scopes(tx: &redb::ReadTransaction, query: &ObjectQuery) -> PluginResult<Option<Scopes>> {
    if !query.filter_json.trim().is_empty() {
        return Ok(None);
    }
    let counted = |table, key: &[u8]| -> PluginResult<u64> {
        let counts = tx.open_table(table).map_err(st)?;
        let n = counts.get(key).map_err(st)?.map_or(0, |g| g.value());
        Ok(n)
    };
    Ok(match (query.class.is_empty(), query.owners.is_empty()) {
        (false, false) => {
            let owners: BTreeSet<Id> = query.owners.iter().copied().collect();
            let (mut prefixes, mut n) = (Vec::new(), 0u64);
            for owner in owners {
                let prefix = index::owner_class_prefix(query.kind, owner, &query.class);
                n = n.saturating_add(counted(OWNER_CLASS_COUNTS, &prefix)?);
                prefixes.push(prefix);
            }
            Some(Scopes {
                table: OWNER_CLASS_INDEX,
                prefixes,
                total: n,
            })
        }
        (false, true) => {
            let prefix = index::class_prefix(query.kind, &query.class);
            let n = counted(CLASS_COUNTS, &prefix)?;
            Some(Scopes {
                table: CLASS_INDEX,
                prefixes: vec![prefix],
                total: n,
            })
        }
        (true, false) => {
            let owners: BTreeSet<Id> = query.owners.iter().copied().collect();
            let (mut prefixes, mut n) = (Vec::new(), 0u64);
            for owner in owners {
                let prefix = index::owner_prefix(query.kind, owner);
                n = n.saturating_add(counted(OWNER_COUNTS, &prefix)?);
                prefixes.push(prefix.to_vec());
            }
            Some(Scopes {
                table: OWNER_INDEX,
                prefixes,
                total: n,
            })
        }
        (true, true) => {
            let counts = tx.open_table(CLASS_COUNTS).map_err(st)?;
            let (lo, hi) = ([kind_byte(query.kind)], [kind_byte(query.kind) + 1]);
            let (mut prefixes, mut n) = (Vec::new(), 0u64);
            for item in counts.range(&lo[..]..&hi[..]).map_err(st)? {
                let (class, count) = item.map_err(st)?;
                if count.value() > 0 {
                    n = n.saturating_add(count.value());
                    prefixes.push(class.value().to_vec());
                }
            }
            Some(Scopes {
                table: CLASS_INDEX,
                prefixes,
                total: n,
            })
        }
    })
}

/// The ids an index narrows `query` to (a superset of its matches), or `None` when no index
/// applies and the kind must be scanned: the property index for a filter it can answer, else
/// the class index for a class, else the owner index for owners.
fn candidates(
    tx: &redb::ReadTransaction,
    query: &ObjectQuery,
    matcher: &QueryMatcher<'_>,
) -> PluginResult<Option<BTreeSet<Id>>> {
    // `id` reads the id of a key: [`index::id_of`] for property keys, [`index::scope_id`] for
    // class and owner keys.
    let ids_in = |t: &redb::ReadOnlyTable<Bytes, Bytes>,
                  lo: Bound<&[u8]>,
                  hi: Bound<&[u8]>,
                  id: fn(&[u8]) -> Id|
     -> PluginResult<BTreeSet<Id>> {
        let mut ids = BTreeSet::new();
        for item in t.range::<&[u8]>((lo, hi)).map_err(st)? {
            let (k, _) = item.map_err(st)?;
            ids.insert(id(k.value()));
        }
        Ok(ids)
    };
    if let Some(plan) = matcher.filter().and_then(|f| index::plan(query.kind, f)) {
        return planned_ids(tx, &plan).map(Some);
    }
    if !query.class.is_empty() && !query.owners.is_empty() {
        let t = tx.open_table(OWNER_CLASS_INDEX).map_err(st)?;
        let mut ids = BTreeSet::new();
        for owner in query.owners.iter() {
            let prefix = index::owner_class_prefix(query.kind, *owner, &query.class);
            let (lo, hi) = index::scope_range(&prefix);
            ids.extend(ids_in(
                &t,
                Bound::Included(&lo),
                Bound::Included(&hi),
                index::scope_id,
            )?);
        }
        return Ok(Some(ids));
    }
    if !query.class.is_empty() {
        let t = tx.open_table(CLASS_INDEX).map_err(st)?;
        let (lo, hi) = index::scope_range(&index::class_prefix(query.kind, &query.class));
        return ids_in(
            &t,
            Bound::Included(&lo),
            Bound::Included(&hi),
            index::scope_id,
        )
        .map(Some);
    }
    if !query.owners.is_empty() {
        let t = tx.open_table(OWNER_INDEX).map_err(st)?;
        let mut ids = BTreeSet::new();
        for owner in query.owners.iter() {
            let (lo, hi) = index::scope_range(&index::owner_prefix(query.kind, *owner));
            ids.extend(ids_in(
                &t,
                Bound::Included(&lo),
                Bound::Included(&hi),
                index::scope_id,
            )?);
        }
        return Ok(Some(ids));
    }
    Ok(None)
}

/// The ids a plan of the property and reference indexes gives ([`index::run`]).
fn planned_ids(tx: &redb::ReadTransaction, plan: &index::Plan) -> PluginResult<BTreeSet<Id>> {
    let property = tx.open_table(PROPERTY_INDEX).map_err(st)?;
    let reference = tx.open_table(REFERENCE_INDEX).map_err(st)?;
    index::run(plan, &mut |r: &index::KeyRange| {
        let t = match r.index {
            index::Index::Property => &property,
            index::Index::Reference => &reference,
        };
        let mut ids = BTreeSet::new();
        let range = (as_ref_bound(&r.lo), as_ref_bound(&r.hi));
        for item in t.range::<&[u8]>(range).map_err(st)? {
            ids.insert(index::id_of(item.map_err(st)?.0.value()));
        }
        Ok(ids)
    })
}

fn as_ref_bound(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(v) => Bound::Included(v.as_slice()),
        Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// Adds (`add`) or removes a current object's entries in every index.
fn reindex(tx: &WriteTransaction, object: &StoredObject, add: bool) -> PluginResult<()> {
    let mut indexes = Indexes::open(tx)?;
    indexes.apply(object, add);
    indexes.finish()
}

/// The index and count tables of a write transaction, and the changes to them that writes of
/// current objects make ([`Indexes::apply`]), written in key order by [`Indexes::finish`]: so
/// a write of many objects (an import) opens the tables once, changes each count once, and
/// goes through each index's B-tree in order instead of at a random place per key.
struct Indexes<'tx> {
    /// The class, owner, property, owner-and-class and reference indexes.
    tables: [redb::Table<'tx, Bytes, Bytes>; 5],
    /// Per index table, the keys to put in (`true`) or take out, the last change of a key
    /// winning (as applied one after the other: the tables are sets).
    changes: [BTreeMap<Vec<u8>, bool>; 5],
    /// The class, owner and owner-and-class counts.
    counts: [redb::Table<'tx, Bytes, u64>; 3],
    /// Per count table, what to add to each count.
    deltas: [BTreeMap<Vec<u8>, i64>; 3],
    /// The per-class statistics of properties.
    statistics: Statistics<'tx>,
}

/// The per-class statistics tables of a write transaction (value counts and running totals,
/// [`index::Stats`]) and the changes to them, written in key order by
/// [`Statistics::finish`].
struct Statistics<'tx> {
    values: redb::Table<'tx, Bytes, u64>,
    value_deltas: BTreeMap<Vec<u8>, i64>,
    stats: redb::Table<'tx, Bytes, Bytes>,
    stats_deltas: BTreeMap<Vec<u8>, index::Stats>,
}

impl<'tx> Statistics<'tx> {
    fn open(tx: &'tx WriteTransaction) -> PluginResult<Self> {
        Ok(Statistics {
            values: tx.open_table(CLASS_VALUES).map_err(st)?,
            value_deltas: BTreeMap::new(),
            stats: tx.open_table(CLASS_STATS).map_err(st)?,
            stats_deltas: BTreeMap::new(),
        })
    }

    /// Counts a current object's property values in (`add`) or out of its class's statistics.
    fn apply(&mut self, object: &StoredObject, add: bool) {
        let sign = if add { 1 } else { -1 };
        for (name, value) in object.properties().iter() {
            self.stats_deltas
                .entry(index::stats_key(object.kind, &object.class, name))
                .or_default()
                .add(value, sign);
        }
        for k in index::class_value_keys(object) {
            *self.value_deltas.entry(k).or_default() += sign;
        }
    }

    /// Writes what [`apply`](Self::apply) collected (a count or totals that reach zero are
    /// removed, so the first and last value keys are values some object holds).
    fn finish(mut self) -> PluginResult<()> {
        for (k, &delta) in self.value_deltas.iter().filter(|(_, d)| **d != 0) {
            let n = self
                .values
                .get(&k[..])
                .map_err(st)?
                .map_or(0, |g| g.value());
            match n.saturating_add_signed(delta) {
                0 => {
                    self.values.remove(&k[..]).map_err(st)?;
                }
                n => {
                    self.values.insert(&k[..], n).map_err(st)?;
                }
            }
        }
        for (k, delta) in self.stats_deltas.iter().filter(|(_, d)| !d.is_zero()) {
            let held = self
                .stats
                .get(&k[..])
                .map_err(st)?
                .map(|g| index::Stats::decode(g.value()))
                .unwrap_or_default();
            let now = held.plus(*delta);
            if now.is_zero() {
                self.stats.remove(&k[..]).map_err(st)?;
            } else {
                self.stats.insert(&k[..], &now.encode()[..]).map_err(st)?;
            }
        }
        Ok(())
    }
}

impl<'tx> Indexes<'tx> {
    fn open(tx: &'tx WriteTransaction) -> PluginResult<Self> {
        Ok(Indexes {
            tables: [
                tx.open_table(CLASS_INDEX).map_err(st)?,
                tx.open_table(OWNER_INDEX).map_err(st)?,
                tx.open_table(PROPERTY_INDEX).map_err(st)?,
                tx.open_table(OWNER_CLASS_INDEX).map_err(st)?,
                tx.open_table(REFERENCE_INDEX).map_err(st)?,
            ],
            changes: Default::default(),
            counts: [
                tx.open_table(CLASS_COUNTS).map_err(st)?,
                tx.open_table(OWNER_COUNTS).map_err(st)?,
                tx.open_table(OWNER_CLASS_COUNTS).map_err(st)?,
            ],
            deltas: Default::default(),
            statistics: Statistics::open(tx)?,
        })
    }

    /// Adds (`add`) or removes a current object's entries in every index, and counts it in (or
    /// out of) its class and its owner: written by [`finish`](Self::finish).
    fn apply(&mut self, object: &StoredObject, add: bool) {
        let delta = if add { 1 } else { -1 };
        let [class, owner, owner_class] = &mut self.deltas;
        *class
            .entry(index::class_prefix(object.kind, &object.class))
            .or_default() += delta;
        *owner
            .entry(index::owner_prefix(object.kind, object.owner).to_vec())
            .or_default() += delta;
        *owner_class
            .entry(index::owner_class_prefix(
                object.kind,
                object.owner,
                &object.class,
            ))
            .or_default() += delta;
        let [class, owner, property, owner_class, reference] = &mut self.changes;
        class.insert(index::class_key(object), add);
        owner.insert(index::owner_key(object).to_vec(), add);
        owner_class.insert(index::owner_class_key(object), add);
        for k in index::property_keys(object) {
            property.insert(k, add);
        }
        for k in index::reference_keys(object) {
            reference.insert(k, add);
        }
        self.statistics.apply(object, add);
    }

    /// Writes what [`apply`](Self::apply) collected.
    fn finish(mut self) -> PluginResult<()> {
        for (table, changes) in self.tables.iter_mut().zip(&self.changes) {
            for (k, &add) in changes {
                if add {
                    table.insert(&k[..], &[][..]).map_err(st)?;
                } else {
                    table.remove(&k[..]).map_err(st)?;
                }
            }
        }
        for (counts, deltas) in self.counts.iter_mut().zip(&self.deltas) {
            for (k, &delta) in deltas.iter().filter(|(_, d)| **d != 0) {
                add_to_count(counts, k, delta)?;
            }
        }
        self.statistics.finish()
    }
}

/// Adds one to (`add`) or takes one from the count at `key`.
fn count(counts: &mut redb::Table<Bytes, u64>, key: &[u8], add: bool) -> PluginResult<()> {
    add_to_count(counts, key, if add { 1 } else { -1 })
}

/// Adds `delta` to the count at `key` (never below 0).
fn add_to_count(counts: &mut redb::Table<Bytes, u64>, key: &[u8], delta: i64) -> PluginResult<()> {
    let n = counts.get(key).map_err(st)?.map_or(0, |g| g.value());
    let n = n.saturating_add_signed(delta);
    counts.insert(key, n).map_err(st)?;
    Ok(())
}

/// Creates the tables and checks (or stamps) the format version.
fn init(db: &Database, file: &Path) -> PluginResult<()> {
    let tx = db.begin_write().map_err(st)?;
    {
        let mut meta = tx.open_table(META).map_err(st)?;
        let stored = meta.get("format_version").map_err(st)?.map(|g| g.value());
        match stored {
            Some(v) if v > FORMAT_VERSION => {
                return Err(PluginError::invalid(format!(
                    "embedded: {} was written by a newer weft-embedded (format version {v}); this one reads format version {FORMAT_VERSION} at most: run a newer weft on it, or start from a backup made with this version",
                    file.display()
                )))
            }
            Some(v) if v < FORMAT_VERSION => {
                upgrade(&tx, v)?;
                meta.insert("format_version", FORMAT_VERSION).map_err(st)?;
            }
            Some(_) => {}
            None => {
                meta.insert("format_version", FORMAT_VERSION).map_err(st)?;
            }
        }
        tx.open_table(OBJECTS).map_err(st)?;
        tx.open_table(HISTORY).map_err(st)?;
        tx.open_table(KEYS).map_err(st)?;
        tx.open_table(KEY_CHILDREN).map_err(st)?;
        tx.open_table(DOCUMENTS).map_err(st)?;
        tx.open_table(CLASS_INDEX).map_err(st)?;
        tx.open_table(OWNER_INDEX).map_err(st)?;
        tx.open_table(PROPERTY_INDEX).map_err(st)?;
        tx.open_table(CLASS_COUNTS).map_err(st)?;
        tx.open_table(OWNER_COUNTS).map_err(st)?;
        tx.open_table(CLASS_VALUES).map_err(st)?;
        tx.open_table(CLASS_STATS).map_err(st)?;
        tx.open_table(OWNER_CLASS_INDEX).map_err(st)?;
        tx.open_table(OWNER_CLASS_COUNTS).map_err(st)?;
        tx.open_table(REFERENCE_INDEX).map_err(st)?;
        // Format version 6: a file of an older version has no vectors.
        tx.open_table(VECTORS).map_err(st)?;
        tx.open_table(VECTOR_KEYS).map_err(st)?;
    }
    tx.commit().map_err(st)
}

/// Brings a database of format version `from` to [`FORMAT_VERSION`] inside `tx` (committed with
/// the new version stamp, so an interrupted upgrade is simply done again).
fn upgrade(tx: &WriteTransaction, from: u64) -> PluginResult<()> {
    if from < 2 {
        // Version 2 adds date keys to the property index: re-add every current object's keys
        // (the ones already there are overwritten with themselves).
        let objects = tx.open_table(OBJECTS).map_err(st)?;
        let mut property = tx.open_table(PROPERTY_INDEX).map_err(st)?;
        for item in objects.iter().map_err(st)? {
            let (_, value) = item.map_err(st)?;
            if let Some(o) = Entry::decode_current(value.value())? {
                for k in index::property_keys(&o) {
                    property.insert(&k[..], &[][..]).map_err(st)?;
                }
            }
        }
    }
    if from < 4 {
        // Version 3 puts the creation time into class and owner keys and counts per owner,
        // version 4 inverts their ids (ties by id descending): both indexes and the owner
        // counts are made again from the current objects.
        tx.delete_table(CLASS_INDEX).map_err(st)?;
        tx.delete_table(OWNER_INDEX).map_err(st)?;
        tx.delete_table(OWNER_COUNTS).map_err(st)?;
        let objects = tx.open_table(OBJECTS).map_err(st)?;
        let mut class = tx.open_table(CLASS_INDEX).map_err(st)?;
        let mut owner = tx.open_table(OWNER_INDEX).map_err(st)?;
        let mut owners = tx.open_table(OWNER_COUNTS).map_err(st)?;
        for item in objects.iter().map_err(st)? {
            let (_, value) = item.map_err(st)?;
            if let Some(o) = Entry::decode_current(value.value())? {
                class
                    .insert(&index::class_key(&o)[..], &[][..])
                    .map_err(st)?;
                owner
                    .insert(&index::owner_key(&o)[..], &[][..])
                    .map_err(st)?;
                count(&mut owners, &index::owner_prefix(o.kind, o.owner), true)?;
            }
        }
    }
    if from < 7 {
        // Version 5 adds the per-class statistics, version 7 the exact sums in them: made
        // from the current objects.
        tx.delete_table(CLASS_STATS).map_err(st)?;
        tx.delete_table(CLASS_VALUES).map_err(st)?;
        let objects = tx.open_table(OBJECTS).map_err(st)?;
        let mut statistics = Statistics::open(tx)?;
        for item in objects.iter().map_err(st)? {
            let (_, value) = item.map_err(st)?;
            if let Some(o) = Entry::decode_current(value.value())? {
                statistics.apply(&o, true);
            }
        }
        statistics.finish()?;
    }
    if from < 5 {
        // Version 5 adds the owner-and-class index and counts: made from the current objects.
        tx.delete_table(OWNER_CLASS_INDEX).map_err(st)?;
        tx.delete_table(OWNER_CLASS_COUNTS).map_err(st)?;
        let objects = tx.open_table(OBJECTS).map_err(st)?;
        let mut owner_class = tx.open_table(OWNER_CLASS_INDEX).map_err(st)?;
        let mut counts: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
        for item in objects.iter().map_err(st)? {
            let (_, value) = item.map_err(st)?;
            if let Some(o) = Entry::decode_current(value.value())? {
                owner_class
                    .insert(&index::owner_class_key(&o)[..], &[][..])
                    .map_err(st)?;
                *counts
                    .entry(index::owner_class_prefix(o.kind, o.owner, &o.class))
                    .or_default() += 1;
            }
        }
        let mut owner_class_counts = tx.open_table(OWNER_CLASS_COUNTS).map_err(st)?;
        for (k, n) in counts {
            add_to_count(&mut owner_class_counts, &k, n)?;
        }
    }
    if from < 8 {
        // Version 8 adds the reference index: made from the current objects, written in key
        // order.
        tx.delete_table(REFERENCE_INDEX).map_err(st)?;
        let objects = tx.open_table(OBJECTS).map_err(st)?;
        let mut keys = BTreeSet::new();
        for item in objects.iter().map_err(st)? {
            let (_, value) = item.map_err(st)?;
            if let Some(o) = Entry::decode_current(value.value())? {
                keys.extend(index::reference_keys(&o));
            }
        }
        let mut reference = tx.open_table(REFERENCE_INDEX).map_err(st)?;
        for k in keys {
            reference.insert(&k[..], &[][..]).map_err(st)?;
        }
    }
    Ok(())
}

/// How many writes wait in the writer's queue (counted when a writer has room to put one in,
/// so never fewer than are in it), and the most that ever did.
#[derive(Default)]
struct QueueDepth {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl QueueDepth {
    fn queued(&self) {
        let n = self.now.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(n, Ordering::Relaxed);
    }

    fn taken(&self, n: usize) {
        self.now.fetch_sub(n, Ordering::Relaxed);
    }
}

/// The writer thread: takes every waiting write (up to [`MAX_BATCH`]), applies them in one
/// transaction, commits once, answers them all. Ends when the store is dropped.
fn write_loop(
    db: &Database,
    mut rx: mpsc::Receiver<Box<dyn Job>>,
    depth: &QueueDepth,
    vectors: &Vectors,
    log: PluginLogger,
) {
    let mut queue: VecDeque<Box<dyn Job>> = VecDeque::new();
    loop {
        // Each job is counted out as soon as it leaves the channel, so the count is behind the
        // channel by at most the one job being taken.
        if queue.is_empty() {
            match futures::executor::block_on(rx.next()) {
                Some(job) => {
                    depth.taken(1);
                    queue.push_back(job)
                }
                None => return,
            }
        }
        while queue.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => {
                    depth.taken(1);
                    queue.push_back(job)
                }
                Err(_) => break,
            }
        }
        let tx = match db.begin_write() {
            Ok(tx) => tx,
            Err(e) => {
                let e = st(e);
                log.error(&e.message);
                for job in queue.drain(..) {
                    job.finish(Err(e.clone()));
                }
                continue;
            }
        };
        let mut applied = Vec::with_capacity(queue.len());
        let mut failure = None;
        let group = Tx {
            tx: &tx,
            vector_changes: RefCell::new(Vec::new()),
        };
        while let Some(mut job) = queue.pop_front() {
            let outcome = job.run(&group);
            applied.push(job);
            if let Err(e) = outcome {
                failure = Some(e);
                break;
            }
        }
        let vector_changes = group.vector_changes.into_inner();
        let aborted = failure.is_some();
        let commit = match failure {
            Some(e) => {
                let _ = tx.abort();
                Err(e)
            }
            None => tx.commit().map_err(st),
        };
        match &commit {
            // Searchable before the writes are answered.
            Ok(()) => vectors.stage(vector_changes),
            Err(e) => {
                log.error(&format!(
                    "a transaction of {} writes failed: {}",
                    applied.len(),
                    e.message
                ));
                if !aborted && !vector_changes.is_empty() {
                    // A failed commit may still have been written.
                    vectors.distrust("a commit that changed vectors failed");
                }
            }
        }
        // Writes not yet applied when one failed stay queued for the next transaction.
        for job in applied {
            job.finish(commit.clone());
        }
    }
}

// ----- table helpers (read and write transactions alike) ---------------------------------------

#[cfg(test)]
thread_local! {
    /// How many objects this thread read from the objects table (tests: what a query reads).
    static OBJECTS_READ: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Counts `n` objects read (tests only).
fn objects_read(_n: u64) {
    #[cfg(test)]
    OBJECTS_READ.with(|read| read.set(read.get() + _n));
}

fn entry(
    t: &impl ReadableTable<Bytes, Bytes>,
    kind: ObjectKind,
    id: Id,
) -> PluginResult<Option<Entry>> {
    objects_read(1);
    let k = object_key(kind, id);
    let guard = t.get(&k[..]).map_err(st)?;
    guard.map(|g| Entry::decode(g.value())).transpose()
}

fn key(t: &impl ReadableTable<Bytes, Bytes>, id: Id) -> PluginResult<Option<StoredKey>> {
    let guard = t.get(&id.0[..]).map_err(st)?;
    guard
        .map(|g| Reader::new(g.value(), "key").key())
        .transpose()
}

fn children_of(t: &impl ReadableTable<Bytes, Bytes>, parent: Id) -> PluginResult<Vec<Id>> {
    let mut lo = [0u8; 32];
    lo[..16].copy_from_slice(&parent.0);
    let mut hi = [0xffu8; 32];
    hi[..16].copy_from_slice(&parent.0);
    let mut ids = Vec::new();
    for item in t.range(&lo[..]..=&hi[..]).map_err(st)? {
        let (k, _) = item.map_err(st)?;
        let mut child = [0u8; 16];
        child.copy_from_slice(&k.value()[16..32]);
        ids.push(Id(child));
    }
    Ok(ids)
}

fn child_key(parent: Id, child: Id) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..16].copy_from_slice(&parent.0);
    k[16..].copy_from_slice(&child.0);
    k
}

fn document_byte(name: DocumentName) -> u8 {
    match name {
        DocumentName::Ontology => 0,
        DocumentName::ConnectorState => 1,
    }
}

fn document(
    t: &impl ReadableTable<u8, Bytes>,
    name: DocumentName,
) -> PluginResult<VersionedDocument> {
    let guard = t.get(document_byte(name)).map_err(st)?;
    match guard {
        None => Ok(VersionedDocument {
            json: RString::new(),
            version: 0,
        }),
        Some(g) => {
            let mut r = Reader::new(g.value(), "document");
            let version = r.u64()?;
            let json = std::str::from_utf8(r.rest()).map_err(|_| {
                PluginError::internal("embedded: a stored document holds invalid UTF-8")
            })?;
            Ok(VersionedDocument {
                json: json.into(),
                version,
            })
        }
    }
}

/// The id in a key of the `objects` table ([`object_key`]).
fn object_id(key: &[u8]) -> PluginResult<Id> {
    key.get(1..17)
        .and_then(|b| <[u8; 16]>::try_from(b).ok())
        .map(Id)
        .ok_or_else(|| PluginError::internal("embedded: a stored object key is corrupt"))
}

/// The object key ([`object_key`]) a key of the `history` table ([`history_key`]) begins with.
fn versioned_object(history_key: &[u8]) -> &[u8] {
    history_key.get(..17).unwrap_or(history_key)
}

/// Every archived version of one object, newest first (as `object_history` answers them).
fn versions_of(
    history: &impl ReadableTable<Bytes, Bytes>,
    kind: ObjectKind,
    id: Id,
) -> PluginResult<Vec<ObjectVersion>> {
    let lo = history_key(kind, id, 0);
    let hi = history_key(kind, id, u32::MAX);
    let mut versions = Vec::new();
    for item in history.range(&lo[..]..=&hi[..]).map_err(st)? {
        let (_, value) = item.map_err(st)?;
        versions.push(decode_version(value.value())?);
    }
    versions.reverse();
    Ok(versions)
}

/// An object as `export_objects` answers it: its entry and its versions (newest first); the
/// version number as `get_object_versioned` answers it, 0 once deleted.
fn record(kind: ObjectKind, id: Id, e: Entry, history: Vec<ObjectVersion>) -> ObjectRecord {
    ObjectRecord {
        kind,
        id,
        version: if e.current.is_some() { e.version } else { 0 },
        current: e.current.into(),
        history: history.into(),
    }
}

fn decode_version(data: &[u8]) -> PluginResult<ObjectVersion> {
    let mut r = Reader::new(data, "history");
    let archived_ms = r.i64()?;
    Ok(ObjectVersion {
        object: r.object()?,
        archived_ms,
    })
}

fn put_entry(
    t: &mut redb::Table<Bytes, Bytes>,
    kind: ObjectKind,
    id: Id,
    e: &Entry,
) -> PluginResult<()> {
    let k = object_key(kind, id);
    t.insert(&k[..], &e.encode()[..]).map_err(st)?;
    Ok(())
}

/// Archives `previous` (replaced or deleted now) as version number `seq` of its object.
fn archive(tx: &WriteTransaction, previous: &StoredObject, seq: u32) -> PluginResult<()> {
    let mut history = tx.open_table(HISTORY).map_err(st)?;
    put_version(&mut history, previous, now_ms(), seq)
}

/// Writes `object`, archived at `archived_ms`, as version number `seq` of its object (0 the
/// oldest).
fn put_version(
    history: &mut redb::Table<Bytes, Bytes>,
    object: &StoredObject,
    archived_ms: i64,
    seq: u32,
) -> PluginResult<()> {
    let mut w = Writer::default();
    w.i64(archived_ms).object(object);
    let k = history_key(object.kind, object.id, seq);
    history.insert(&k[..], &w.0[..]).map_err(st)?;
    Ok(())
}

// ----- writes (run by the writer thread inside its transaction) --------------------------------

pub fn create_object(tx: &Tx, object: StoredObject) -> WriteResult<()> {
    create_object_with_vector(tx, object, Vec::new())
}

/// `create_object_with_vector`: the object and its vector (an empty one: none) in one step.
pub fn create_object_with_vector(
    tx: &Tx,
    object: StoredObject,
    vector: Vec<f32>,
) -> WriteResult<()> {
    let mut t = tx.open_table(OBJECTS).map_err(st)?;
    if let Some(e) = entry(&t, object.kind, object.id)? {
        return Ok(Err(support::object_exists(
            object.kind,
            object.id,
            e.current.is_none(),
        )));
    }
    let (kind, id) = (object.kind, object.id);
    reindex(tx, &object, true)?;
    tx.replace_vector(kind, id, None, Some((&object.class, &vector)))?;
    let e = Entry {
        version: support::FIRST_VERSION,
        archived: 0,
        current: Some(object),
    };
    put_entry(&mut t, kind, id, &e)?;
    Ok(Ok(()))
}

/// `update_object` (`expected` `None`) and `update_object_if`: the object without a vector
/// (an old one is dropped).
pub fn update_object(tx: &Tx, object: StoredObject, expected: Option<u64>) -> WriteResult<u64> {
    update_object_with_vector(tx, object, expected, Vec::new())
}

/// `update_object_with_vector` (`expected` `None`) and `update_object_if_with_vector`: the
/// object and its vector (empty: none) replaced in one step.
pub fn update_object_with_vector(
    tx: &Tx,
    object: StoredObject,
    expected: Option<u64>,
    vector: Vec<f32>,
) -> WriteResult<u64> {
    let (kind, id) = (object.kind, object.id);
    let mut t = tx.open_table(OBJECTS).map_err(st)?;
    let Some(mut e) = entry(&t, kind, id)?.filter(|e| e.current.is_some()) else {
        return Ok(Err(support::object_missing(kind, id)));
    };
    let what = format_args!("{} {id}", kind.as_str());
    let version = match expected {
        Some(expected) => support::compare_and_bump(what, e.version, expected),
        None => support::next_version(what, e.version),
    };
    let version = match version {
        Ok(v) => v,
        Err(refused) => return Ok(Err(refused)),
    };
    if let Some(previous) = e.current.replace(object) {
        reindex(tx, &previous, false)?;
        archive(tx, &previous, e.archived)?;
        e.archived += 1;
        if let Some(current) = &e.current {
            tx.replace_vector(
                kind,
                id,
                Some(&previous.class),
                Some((&current.class, &vector)),
            )?;
        }
    }
    if let Some(current) = &e.current {
        reindex(tx, current, true)?;
    }
    e.version = version;
    put_entry(&mut t, kind, id, &e)?;
    Ok(Ok(version))
}

pub fn delete_object(tx: &Tx, kind: ObjectKind, id: Id) -> WriteResult<()> {
    let mut t = tx.open_table(OBJECTS).map_err(st)?;
    let Some(mut e) = entry(&t, kind, id)? else {
        return Ok(Err(support::object_missing(kind, id)));
    };
    let Some(previous) = e.current.take() else {
        return Ok(Err(support::object_missing(kind, id)));
    };
    reindex(tx, &previous, false)?;
    archive(tx, &previous, e.archived)?;
    tx.replace_vector(kind, id, Some(&previous.class), None)?;
    e.archived += 1;
    put_entry(&mut t, kind, id, &e)?;
    Ok(Ok(()))
}

/// What `import_objects` checks before anything is written (so a refused call writes nothing):
/// every record is well formed ([`ObjectRecord::check`]) and its history numbers fit the store's
/// (`u32`) sequence numbers.
fn check_import(records: &[ObjectRecord]) -> PluginResult<()> {
    for r in records {
        r.check()?;
        if u32::try_from(r.history.len()).is_err() {
            return Err(PluginError::invalid(format!(
                "record {} {}: {} versions in its history, more than this connector keeps for one object",
                r.kind.as_str(),
                r.id,
                r.history.len()
            )));
        }
    }
    Ok(())
}

/// `import_objects`, as one write: first every record is checked ([`check_import`]: `Invalid`)
/// and compared with what the store holds (and with the records before it in the call); one
/// held differently answers `Conflict`; either way **nothing** of the call is written. Then every
/// record not yet held is written exactly as given (entry, versions with their archive times,
/// and for a current object every index and count [`Indexes::apply`] keeps, as a create does);
/// a deleted one keeps its id taken by its entry, as a delete leaves it. Records held exactly
/// so are left as they are.
pub fn import_objects(tx: &WriteTransaction, records: Vec<ObjectRecord>) -> WriteResult<()> {
    if let Err(invalid) = check_import(&records) {
        return Ok(Err(invalid));
    }
    let mut objects = tx.open_table(OBJECTS).map_err(st)?;
    let mut history = tx.open_table(HISTORY).map_err(st)?;
    let mut new: Vec<ObjectRecord> = Vec::with_capacity(records.len());
    let mut in_call: HashMap<(ObjectKind, Id), usize> = HashMap::with_capacity(records.len());
    for mut r in records {
        // A deleted object's version number is 0, as `export_objects` answers it.
        if r.current.is_none() {
            r.version = 0;
        }
        let at = (r.kind, r.id);
        let same = if let Some(&i) = in_call.get(&at) {
            new[i] == r
        } else if let Some(held) = entry(&objects, r.kind, r.id)? {
            record(r.kind, r.id, held, versions_of(&history, r.kind, r.id)?) == r
        } else {
            in_call.insert(at, new.len());
            new.push(r);
            continue;
        };
        if !same {
            return Ok(Err(support::import_conflict(at.0, at.1)));
        }
    }
    // In key order: neighbours in the objects and history tables are written together.
    new.sort_unstable_by_key(|r| (kind_byte(r.kind), r.id));
    let mut indexes = Indexes::open(tx)?;
    for r in new {
        // Fits: checked above.
        let archived = r.history.len() as u32;
        for (seq, v) in (0..archived).zip(r.history.iter().rev()) {
            put_version(&mut history, &v.object, v.archived_ms, seq)?;
        }
        let current = r.current.into_option();
        if let Some(o) = &current {
            indexes.apply(o, true);
        }
        let e = Entry {
            version: r.version,
            archived,
            current,
        };
        put_entry(&mut objects, r.kind, r.id, &e)?;
    }
    indexes.finish()?;
    Ok(Ok(()))
}

pub fn add_key(tx: &WriteTransaction, k: StoredKey) -> WriteResult<()> {
    let mut keys = tx.open_table(KEYS).map_err(st)?;
    if key(&keys, k.id)?.is_some() {
        return Ok(Err(PluginError::conflict(format!(
            "key {} already exists",
            k.id
        ))));
    }
    if let ROption::RSome(parent) = k.parent {
        if key(&keys, parent)?.is_none() {
            return Ok(Err(PluginError::not_found(format!(
                "parent key {parent} of key {} does not exist",
                k.id
            ))));
        }
        let mut children = tx.open_table(KEY_CHILDREN).map_err(st)?;
        children
            .insert(&child_key(parent, k.id)[..], &[][..])
            .map_err(st)?;
    }
    let mut w = Writer::default();
    w.key(&k);
    keys.insert(&k.id.0[..], &w.0[..]).map_err(st)?;
    Ok(Ok(()))
}

pub fn update_key(tx: &WriteTransaction, k: StoredKey) -> WriteResult<()> {
    let mut keys = tx.open_table(KEYS).map_err(st)?;
    let Some(stored) = key(&keys, k.id)? else {
        return Ok(Err(support::key_missing(k.id)));
    };
    if let Err(refused) = support::check_same_parent(&stored, &k) {
        return Ok(Err(refused));
    }
    let mut w = Writer::default();
    w.key(&k);
    keys.insert(&k.id.0[..], &w.0[..]).map_err(st)?;
    Ok(Ok(()))
}

pub fn delete_key(tx: &WriteTransaction, id: Id) -> WriteResult<Vec<Id>> {
    let mut keys = tx.open_table(KEYS).map_err(st)?;
    let mut children = tx.open_table(KEY_CHILDREN).map_err(st)?;
    let Some(stored) = key(&keys, id)? else {
        return Ok(Err(support::key_missing(id)));
    };
    let mut failure = None;
    let deleted = support::key_subtree(id, |parent| {
        let found = children_of(&children, parent).and_then(|ids| {
            ids.into_iter()
                .filter_map(|c| key(&keys, c).transpose())
                .collect::<PluginResult<Vec<_>>>()
        });
        found.unwrap_or_else(|e| {
            failure.get_or_insert(e);
            Vec::new()
        })
    });
    if let Some(e) = failure {
        return Err(e);
    }
    for gone in &deleted {
        keys.remove(&gone.0[..]).map_err(st)?;
        for child in children_of(&children, *gone)? {
            children.remove(&child_key(*gone, child)[..]).map_err(st)?;
        }
    }
    if let ROption::RSome(parent) = stored.parent {
        children.remove(&child_key(parent, id)[..]).map_err(st)?;
    }
    Ok(Ok(deleted))
}

pub fn put_document(
    tx: &WriteTransaction,
    name: DocumentName,
    json: String,
    expected: u64,
) -> WriteResult<u64> {
    let mut t = tx.open_table(DOCUMENTS).map_err(st)?;
    let stored = document(&t, name)?;
    let version = match support::compare_and_bump(
        format_args!("the {} document", support::document_label(name)),
        stored.version,
        expected,
    ) {
        Ok(v) => v,
        Err(refused) => return Ok(Err(refused)),
    };
    let mut w = Writer::default();
    w.u64(version);
    w.0.extend_from_slice(json.as_bytes());
    t.insert(document_byte(name), &w.0[..]).map_err(st)?;
    Ok(Ok(version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    /// Makes the closed store in `dir` look like a file of format `version`: `prepare` changes
    /// its tables in the transaction that stamps the version. Then opens it (which upgrades it)
    /// and checks it is stamped with the current version.
    fn reopen_as_version(
        dir: &Path,
        version: u64,
        prepare: impl FnOnce(&WriteTransaction),
    ) -> Store {
        {
            let db = Database::create(dir.join("weft.redb")).unwrap();
            let tx = db.begin_write().unwrap();
            prepare(&tx);
            tx.open_table(META)
                .unwrap()
                .insert("format_version", version)
                .unwrap();
            tx.commit().unwrap();
        }
        let store = Store::open(dir, PluginLogger::new(HostLogger::discard(), "embedded")).unwrap();
        let stamped = store
            .begin_read()
            .unwrap()
            .open_table(META)
            .unwrap()
            .get("format_version")
            .unwrap()
            .map(|g| g.value());
        assert_eq!(stamped, Some(FORMAT_VERSION));
        store
    }
    use weft_plugin_api::filter::WhereFilter;
    use weft_plugin_api::HostLogger;

    /// A small deterministic generator (no dependency).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Date strings: one instant in two offsets, instants around it, and (last, stored only) a
    /// string that is not a date.
    const DATES: [&str; 6] = [
        "2020-01-01T00:00:00Z",
        "2020-01-01T01:00:00+01:00",
        "2019-12-31T23:59:59.5Z",
        "2021-06-01T00:00:00-05:00",
        "1960-01-01T00:00:00Z",
        "2020-01-01",
    ];

    fn value(rng: &mut Rng) -> Option<serde_json::Value> {
        use serde_json::json;
        Some(match rng.below(9) {
            0 => return None,
            1 => json!(rng.below(7) as i64 - 3),
            2 => json!((rng.below(7) as f64 - 3.0) / 2.0),
            3 => json!(["a", "b", "", "a\u{0}", "ab", "é", "B"][rng.below(7) as usize]),
            4 => json!(rng.below(2) == 0),
            5 => json!([1, 2]),
            6 => json!(i64::MAX - rng.below(3) as i64),
            7 => json!(null),
            _ => json!(DATES[rng.below(DATES.len() as u64) as usize]),
        })
    }

    fn comparison(rng: &mut Rng) -> serde_json::Value {
        use serde_json::json;
        let ops = [
            "Equal",
            "NotEqual",
            "GreaterThan",
            "GreaterThanEqual",
            "LessThan",
            "LessThanEqual",
        ];
        let name = ["p", "q"][rng.below(2) as usize];
        let path = json!([name]);
        let text = ["a", "b", "", "a\u{0}", "ab", "é"][rng.below(6) as usize];
        let eq = ["Equal", "NotEqual"][rng.below(2) as usize];
        let op = ops[rng.below(6) as usize];
        match rng.below(6) {
            0 => json!({"operator": op, "path": path, "valueInt": rng.below(7) as i64 - 3}),
            1 => {
                json!({"operator": op, "path": path, "valueNumber": (rng.below(7) as f64 - 3.0) / 2.0})
            }
            2 => json!({"operator": op, "path": path, "valueString": text}),
            3 => json!({"operator": eq, "path": path, "valueBoolean": rng.below(2) == 0}),
            4 => json!({"operator": op, "path": path, "valueInt": i64::MAX - rng.below(3) as i64}),
            _ => {
                let d = DATES[rng.below(DATES.len() as u64 - 1) as usize];
                json!({"operator": op, "path": path, "valueDate": d})
            }
        }
    }

    fn filter(rng: &mut Rng, depth: u32) -> serde_json::Value {
        use serde_json::json;
        if depth == 0 || rng.below(3) == 0 {
            return comparison(rng);
        }
        let n = 1 + rng.below(3);
        let operands: Vec<_> = (0..n).map(|_| filter(rng, depth - 1)).collect();
        match rng.below(3) {
            0 => json!({"operator": "And", "operands": operands}),
            1 => json!({"operator": "Or", "operands": operands}),
            _ => json!({"operator": "Not", "operands": [operands[0]]}),
        }
    }

    /// Queries answered through the indexes equal the reference semantics over every object,
    /// also after updates and deletes changed the indexed values.
    #[test]
    fn indexed_queries_answer_like_the_reference() {
        let dir = std::env::temp_dir().join(format!(
            "weft-embedded-index-{}-{}",
            std::process::id(),
            now_ms()
        ));
        let store =
            Store::open(&dir, PluginLogger::new(HostLogger::discard(), "embedded")).unwrap();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let owners = [Id([1; 16]), Id([2; 16])];
        let mut objects = Vec::new();
        for i in 0..300i64 {
            let mut props = serde_json::Map::new();
            for name in ["p", "q"] {
                if let Some(v) = value(&mut rng) {
                    props.insert(name.into(), v);
                }
            }
            let object = StoredObject {
                kind: if i % 7 == 0 {
                    ObjectKind::Action
                } else {
                    ObjectKind::Thing
                },
                id: Id::random(),
                class: ["City", "Town"][rng.below(2) as usize].into(),
                context: RString::new(),
                owner: owners[rng.below(2) as usize],
                // Ties, so that pages must order them by id.
                created_ms: i / 3,
                updated_ms: i,
                properties_json: serde_json::Value::Object(props).to_string().into(),
            };
            let o = object.clone();
            block_on(store.submit(move |tx| create_object(tx, o)))
                .unwrap()
                .unwrap();
            objects.push(object);
        }
        // Change some, delete some.
        for (i, o) in objects.iter_mut().enumerate() {
            if i % 5 == 0 {
                let mut props = serde_json::Map::new();
                if let Some(v) = value(&mut rng) {
                    props.insert("p".into(), v);
                }
                o.properties_json = serde_json::Value::Object(props).to_string().into();
                let changed = o.clone();
                block_on(store.submit(move |tx| update_object(tx, changed, None)))
                    .unwrap()
                    .unwrap();
            }
        }
        let mut live: Vec<StoredObject> = Vec::new();
        for (i, o) in objects.iter().enumerate() {
            if i % 11 == 0 {
                let (kind, id) = (o.kind, o.id);
                block_on(store.submit(move |tx| delete_object(tx, kind, id)))
                    .unwrap()
                    .unwrap();
            } else {
                live.push(o.clone());
            }
        }
        check_like_reference(&store, &live, &owners, &mut rng, 400);
        // `Not` of an indexed filter, `NotEqual`, and a class and owners: from the indexes.
        for (filter, owners) in [
            (
                r#"{"operator":"Not","operands":[{"operator":"Equal","path":["p"],"valueInt":1}]}"#,
                vec![],
            ),
            (
                r#"{"operator":"NotEqual","path":["p"],"valueInt":1}"#,
                vec![],
            ),
            (
                r#"{"operator":"NotEqual","path":["q"],"valueString":"a"}"#,
                vec![],
            ),
            (
                r#"{"operator":"Not","operands":[{"operator":"Equal","path":["p"],"valueInt":1}]}"#,
                vec![owners[0]],
            ),
        ] {
            let query = ObjectQuery {
                class: "City".into(),
                owners: owners.into(),
                filter_json: filter.into(),
                ..ObjectQuery::all(ObjectKind::Thing, 5)
            };
            assert!(store.complement_page(&query).unwrap().is_some(), "{filter}");
        }
        let query = ObjectQuery {
            class: "City".into(),
            owners: vec![owners[1]].into(),
            ..ObjectQuery::all(ObjectKind::Thing, 5)
        };
        assert!(store.newest_page(&query).unwrap().is_some());
        // A format version 2 file (class and owner keys without the creation time, no owner
        // counts): simulated by putting version 2 keys in place and stamping version 2.
        drop(store);
        {
            let db = Database::create(dir.join("weft.redb")).unwrap();
            let tx = db.begin_write().unwrap();
            tx.delete_table(CLASS_INDEX).unwrap();
            tx.delete_table(OWNER_INDEX).unwrap();
            tx.delete_table(OWNER_COUNTS).unwrap();
            {
                let mut class = tx.open_table(CLASS_INDEX).unwrap();
                let mut owner = tx.open_table(OWNER_INDEX).unwrap();
                for o in &live {
                    let mut k = index::class_prefix(o.kind, &o.class);
                    k.extend_from_slice(&o.id.0);
                    class.insert(&k[..], &[][..]).unwrap();
                    let mut k = index::owner_prefix(o.kind, o.owner).to_vec();
                    k.extend_from_slice(&o.id.0);
                    owner.insert(&k[..], &[][..]).unwrap();
                }
            }
            tx.open_table(META)
                .unwrap()
                .insert("format_version", 2)
                .unwrap();
            tx.commit().unwrap();
        }
        let store =
            Store::open(&dir, PluginLogger::new(HostLogger::discard(), "embedded")).unwrap();
        check_like_reference(&store, &live, &owners, &mut rng, 200);
        // A format version 3 file (class and owner keys with the creation time newest first but
        // the id as it is, so ties in created_ms (`i / 3` above) are by id ascending there):
        // simulated by putting version 3 keys in place and stamping version 3.
        drop(store);
        {
            let db = Database::create(dir.join("weft.redb")).unwrap();
            let tx = db.begin_write().unwrap();
            tx.delete_table(CLASS_INDEX).unwrap();
            tx.delete_table(OWNER_INDEX).unwrap();
            {
                let mut class = tx.open_table(CLASS_INDEX).unwrap();
                let mut owner = tx.open_table(OWNER_INDEX).unwrap();
                for o in &live {
                    let mut newest = (!((o.created_ms as u64) ^ (1 << 63)))
                        .to_be_bytes()
                        .to_vec();
                    newest.extend_from_slice(&o.id.0);
                    let mut k = index::class_prefix(o.kind, &o.class);
                    k.extend_from_slice(&newest);
                    class.insert(&k[..], &[][..]).unwrap();
                    let mut k = index::owner_prefix(o.kind, o.owner).to_vec();
                    k.extend_from_slice(&newest);
                    owner.insert(&k[..], &[][..]).unwrap();
                }
            }
            tx.open_table(META)
                .unwrap()
                .insert("format_version", 3)
                .unwrap();
            tx.commit().unwrap();
        }
        let store =
            Store::open(&dir, PluginLogger::new(HostLogger::discard(), "embedded")).unwrap();
        check_like_reference(&store, &live, &owners, &mut rng, 200);
        // Every scope's first page, in full: the ties come back by id descending.
        for class in ["City", "Town"] {
            let query = ObjectQuery {
                class: class.into(),
                ..ObjectQuery::all(ObjectKind::Thing, u64::MAX)
            };
            let want: Vec<&StoredObject> = live
                .iter()
                .filter(|o| o.kind == ObjectKind::Thing && o.class.as_str() == class)
                .collect();
            let times: BTreeSet<i64> = want.iter().map(|o| o.created_ms).collect();
            assert!(times.len() < want.len(), "{class} has ties in created_ms");
            assert_eq!(
                store.query_objects(&query).unwrap(),
                support::page(want, &query)
            );
        }
        // A format version 1 file (no date keys): simulated by dropping the property index and
        // stamping version 1. Opening it upgrades it, and the answers are the same again.
        drop(store);
        let store = reopen_as_version(&dir, 1, |tx| {
            tx.delete_table(PROPERTY_INDEX).unwrap();
        });
        check_like_reference(&store, &live, &owners, &mut rng, 200);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Every entry of an index table, or the non-zero counts of a count table.
    fn index_tables(store: &Store) -> Vec<Vec<(Vec<u8>, u64)>> {
        let tx = store.begin_read().unwrap();
        let mut all = Vec::new();
        for table in [
            CLASS_INDEX,
            OWNER_INDEX,
            PROPERTY_INDEX,
            OWNER_CLASS_INDEX,
            REFERENCE_INDEX,
        ] {
            let t = tx.open_table(table).unwrap();
            let entries = t.iter().unwrap().map(|e| {
                let (k, v) = e.unwrap();
                assert!(v.value().is_empty());
                (k.value().to_vec(), 0)
            });
            all.push(entries.collect());
        }
        for table in [CLASS_COUNTS, OWNER_COUNTS, OWNER_CLASS_COUNTS, CLASS_VALUES] {
            let t = tx.open_table(table).unwrap();
            let entries = t.iter().unwrap().map(|e| {
                let (k, v) = e.unwrap();
                (k.value().to_vec(), v.value())
            });
            all.push(entries.filter(|(_, n)| *n > 0).collect());
        }
        // The running totals, as their bytes.
        let t = tx.open_table(CLASS_STATS).unwrap();
        let entries = t.iter().unwrap().map(|e| {
            let (k, v) = e.unwrap();
            let mut k = k.value().to_vec();
            k.extend_from_slice(v.value());
            (k, 0)
        });
        all.push(entries.collect());
        all
    }

    /// An import writes exactly the index and count entries the creates, updates and deletes
    /// that made its records wrote (compared table by table), and exactly their history.
    #[test]
    fn import_writes_the_indexes_and_counts_of_the_writes_it_copies() {
        let log = || PluginLogger::new(HostLogger::discard(), "embedded");
        let base = std::env::temp_dir().join(format!(
            "weft-embedded-import-{}-{}",
            std::process::id(),
            now_ms()
        ));
        let src = Store::open(&base.join("source"), log()).unwrap();
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let owners = [Id([1; 16]), Id([2; 16]), Id([3; 16])];
        let mut objects = Vec::new();
        for i in 0..400i64 {
            let mut props = serde_json::Map::new();
            for name in ["p", "q"] {
                if let Some(v) = value(&mut rng) {
                    props.insert(name.into(), v);
                }
            }
            objects.push(StoredObject {
                kind: if i % 5 == 0 {
                    ObjectKind::Action
                } else {
                    ObjectKind::Thing
                },
                id: Id::random(),
                class: ["City", "Town", "Gone"][rng.below(3) as usize].into(),
                context: RString::new(),
                owner: owners[rng.below(3) as usize],
                created_ms: i / 4,
                updated_ms: i,
                properties_json: serde_json::Value::Object(props).to_string().into(),
            });
        }
        fn write<F>(store: &Store, work: F)
        where
            F: FnOnce(&Tx) -> WriteResult<()> + Send + 'static,
        {
            block_on(store.submit(work)).unwrap().unwrap()
        }
        for o in &objects {
            let o = o.clone();
            write(&src, move |tx| create_object(tx, o));
        }
        for (i, o) in objects.iter().enumerate() {
            if i % 3 == 0 {
                let mut changed = o.clone();
                changed.class = "Town".into();
                changed.properties_json = format!(r#"{{"p":{i}}}"#).into();
                write(&src, move |tx| {
                    update_object(tx, changed, None).map(|r| r.map(|_| ()))
                });
            }
            // Every object of class "Gone" is deleted: its count is 0 in the source.
            if i % 4 == 0 || o.class.as_str() == "Gone" {
                let (kind, id) = (o.kind, o.id);
                write(&src, move |tx| delete_object(tx, kind, id));
            }
        }
        let mut records = Vec::new();
        for kind in [ObjectKind::Thing, ObjectKind::Action] {
            let mut cursor = String::new();
            loop {
                let page = src.export_objects(kind, &cursor, 33).unwrap();
                records.extend(page.records);
                if page.next.is_empty() {
                    break;
                }
                cursor = page.next.into();
            }
        }
        assert_eq!(records.len(), objects.len());
        let dst = Store::open(&base.join("target"), log()).unwrap();
        for chunk in records.chunks(150) {
            let chunk = chunk.to_vec();
            block_on(dst.submit(move |tx| import_objects(tx, chunk)))
                .unwrap()
                .unwrap();
        }
        assert_eq!(index_tables(&dst), index_tables(&src));
        let tables = |store: &Store| {
            let tx = store.begin_read().unwrap();
            let history: Vec<_> = tx
                .open_table(HISTORY)
                .unwrap()
                .iter()
                .unwrap()
                .map(|e| {
                    let (k, v) = e.unwrap();
                    (k.value().to_vec(), v.value().to_vec())
                })
                .collect();
            // The objects table, but a deleted object's version (0 once exported).
            let objects: Vec<_> = tx
                .open_table(OBJECTS)
                .unwrap()
                .iter()
                .unwrap()
                .map(|e| {
                    let (k, v) = e.unwrap();
                    let mut e = Entry::decode(v.value()).unwrap();
                    if e.current.is_none() {
                        e.version = 0;
                    }
                    (k.value().to_vec(), e.encode())
                })
                .collect();
            (history, objects)
        };
        assert_eq!(tables(&dst), tables(&src));
        drop((src, dst));
        let _ = std::fs::remove_dir_all(&base);
    }

    /// Many more concurrent writes than the queue holds: writers wait for room (none fails),
    /// the queue never holds more than its bound, and every acknowledged write is stored.
    #[test]
    fn the_writer_queue_is_bounded_and_every_acknowledged_write_is_stored() {
        let dir = std::env::temp_dir().join(format!(
            "weft-embedded-queue-{}-{}",
            std::process::id(),
            now_ms()
        ));
        let store = Arc::new(
            Store::open(&dir, PluginLogger::new(HostLogger::discard(), "embedded")).unwrap(),
        );
        let per_thread = QUEUE_BOUND + QUEUE_BOUND / 2;
        let threads: Vec<_> = (0..3u8)
            .map(|t| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    let writes = (0..per_thread).map(|i| {
                        let object = StoredObject {
                            kind: ObjectKind::Thing,
                            id: Id::random(),
                            class: "Queued".into(),
                            context: RString::new(),
                            owner: Id([t + 1; 16]),
                            created_ms: i as i64,
                            updated_ms: i as i64,
                            properties_json: format!(r#"{{"n":{i}}}"#).into(),
                        };
                        let id = object.id;
                        let write = store.submit(move |tx| create_object(tx, object));
                        async move { write.await.map(|r| r.map(|()| id)) }
                    });
                    block_on(futures::future::join_all(writes))
                })
            })
            .collect();
        let mut acknowledged = Vec::new();
        for t in threads {
            for answer in t.join().unwrap() {
                acknowledged.push(answer.unwrap().unwrap());
            }
        }
        assert_eq!(acknowledged.len(), 3 * per_thread);
        let peak = store.peak_queue_depth();
        // The channel holds at most QUEUE_BOUND; the count of it may be one ahead while the
        // writer takes a job (counted out just after it leaves the channel).
        assert!(peak <= QUEUE_BOUND + 1, "the queue held {peak} writes");
        assert!(peak > 1, "the writes never waited together");
        let stored = store.get_objects(ObjectKind::Thing, &acknowledged).unwrap();
        assert!(stored.iter().all(Option::is_some));
        let count: serde_json::Value = serde_json::from_str(
            &store
                .aggregate(
                    &ObjectQuery {
                        class: "Queued".into(),
                        ..ObjectQuery::all(ObjectKind::Thing, 0)
                    },
                    "{}",
                )
                .unwrap(),
        )
        .unwrap();
        assert_eq!(count["groups"][0]["count"], 3 * per_thread);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// `rounds` random queries (and their counts), pages of them among them, answered by
    /// `store` exactly as the reference semantics answer them over `live`.
    fn check_like_reference(
        store: &Store,
        live: &[StoredObject],
        owners: &[Id; 2],
        rng: &mut Rng,
        rounds: usize,
    ) {
        let none = |_: ObjectKind, _: Id| None;
        for round in 0..rounds {
            let f = filter(rng, 2).to_string();
            let parsed = WhereFilter::parse(&f).unwrap();
            let query = ObjectQuery {
                kind: if round % 5 == 0 {
                    ObjectKind::Action
                } else {
                    ObjectKind::Thing
                },
                class: ["", "City", "Town", "Village"][rng.below(4) as usize].into(),
                owners: match rng.below(6) {
                    0 => vec![owners[0]].into(),
                    1 => vec![owners[1]].into(),
                    2 => vec![owners[1], owners[0], owners[1]].into(),
                    3 => vec![Id([9; 16])].into(),
                    _ => Default::default(),
                },
                filter_json: if rng.below(3) == 0 {
                    RString::new()
                } else {
                    f.clone().into()
                },
                offset: [0, 0, 1, 7, 100, 1000, u64::MAX][rng.below(7) as usize],
                limit: [1000, 1000, 0, 1, 3, 25, u64::MAX][rng.below(7) as usize],
            };
            let want: Vec<&StoredObject> = live
                .iter()
                .filter(|o| {
                    QueryMatcher::new(&query).unwrap().matches(o, &none)
                        && (query.filter_json.is_empty() || parsed.matches(o, &none))
                })
                .collect();
            let want = support::page(want, &query);
            let got = store.query_objects(&query).unwrap();
            assert_eq!(got, want, "query {query:?}");
            let count = store.aggregate(&query, "{}").unwrap();
            let count: serde_json::Value = serde_json::from_str(&count).unwrap();
            assert_eq!(
                count["groups"][0]["count"], want.total,
                "count of {query:?}"
            );
            // Statistics, by the reference over the matches in id order (the order the store
            // reads them in when it reads them: a float sum depends on it).
            let mut matches: Vec<StoredObject> = live
                .iter()
                .filter(|o| {
                    QueryMatcher::new(&query).unwrap().matches(o, &none)
                        && (query.filter_json.is_empty() || parsed.matches(o, &none))
                })
                .cloned()
                .collect();
            matches.sort_by_key(|o| o.id);
            assert_like_reference(store, &query, &matches);
        }
    }

    /// `store`'s aggregate of `query` (statistics of `p` and `q`, and of a property no object
    /// has) equals the reference's over `matches`.
    fn assert_like_reference(store: &Store, query: &ObjectQuery, matches: &[StoredObject]) {
        let request = r#"{"properties": ["p", "q", "none"]}"#;
        let got: serde_json::Value =
            serde_json::from_str(&store.aggregate(query, request).unwrap()).unwrap();
        let parsed = support::parse_aggregate_request(request).unwrap();
        let want = support::aggregate_json(matches, &parsed, &|_, _| None).unwrap();
        let want: serde_json::Value = serde_json::from_str(&want).unwrap();
        assert_eq!(got, want, "statistics of {query:?}");
    }

    /// Statistics of whole classes whose properties hold one type each (answered from the
    /// per-class statistics) and of classes of mixed values, after every change of random
    /// creates, updates and deletes, equal the reference's over the objects.
    #[test]
    fn class_statistics_answer_like_the_reference() {
        let dir = std::env::temp_dir().join(format!(
            "weft-embedded-stats-{}-{}",
            std::process::id(),
            now_ms()
        ));
        let store =
            Store::open(&dir, PluginLogger::new(HostLogger::discard(), "embedded")).unwrap();
        let mut rng = Rng(0x5851_f42d_4c95_7f2d);
        const CLASSES: [&str; 5] = ["Ints", "Strings", "Booleans", "Numbers", "Mixed"];
        let typed = |rng: &mut Rng, class: &str| -> Option<serde_json::Value> {
            use serde_json::json;
            if rng.below(6) == 0 {
                return None;
            }
            Some(match class {
                "Ints" => match rng.below(8) {
                    0 => json!(i64::MIN + rng.below(2) as i64),
                    1 => json!(u64::MAX - rng.below(2)),
                    _ => json!(rng.below(2001) as i64 - 1000),
                },
                "Strings" => json!(["a", "b", "", "a\u{0}", "ab", "é", "B"][rng.below(7) as usize]),
                "Booleans" => json!(rng.below(3) == 0),
                // Tenths are not exact in binary: their sum depends on the order of adding,
                // unless it is exact and rounded once, as the reference's and the statistics'.
                "Numbers" => match rng.below(3) {
                    0 => json!((rng.below(2001) as f64 - 1000.0) / 8.0),
                    1 => json!((rng.below(2001) as f64 - 1000.0) / 10.0),
                    _ => json!(rng.below(1000) as i64),
                },
                _ => value(rng)?,
            })
        };
        let mut live: Vec<StoredObject> = Vec::new();
        let check = |store: &Store, live: &[StoredObject]| {
            for class in CLASSES {
                let query = ObjectQuery {
                    class: class.into(),
                    ..ObjectQuery::all(ObjectKind::Thing, 0)
                };
                let mut matches: Vec<StoredObject> = live
                    .iter()
                    .filter(|o| o.class.as_str() == class)
                    .cloned()
                    .collect();
                matches.sort_by_key(|o| o.id);
                assert_like_reference(store, &query, &matches);
                // Integers, numbers, strings and booleans (never another type here) come from
                // the statistics.
                if class != "Mixed" {
                    let request = support::parse_aggregate_request(r#"{"properties":["p"]}"#);
                    let answered = store.class_statistics(&query, &request.unwrap()).unwrap();
                    assert!(answered.is_some(), "{class} read its objects");
                }
            }
        };
        for round in 0..600 {
            match rng.below(4) {
                0 | 1 => {
                    let class = CLASSES[rng.below(5) as usize];
                    // Large integers are rare, so that most rounds answer from the statistics.
                    let mut props = serde_json::Map::new();
                    for name in ["p", "q"] {
                        if let Some(v) = typed(&mut rng, class) {
                            if class != "Ints"
                                || rng.below(10) == 0
                                || v.as_i64().is_some_and(|i| i.unsigned_abs() <= 1000)
                            {
                                props.insert(name.into(), v);
                            }
                        }
                    }
                    let o = StoredObject {
                        kind: ObjectKind::Thing,
                        id: Id::random(),
                        class: class.into(),
                        context: RString::new(),
                        owner: Id([1; 16]),
                        created_ms: round,
                        updated_ms: round,
                        properties_json: serde_json::Value::Object(props).to_string().into(),
                    };
                    let created = o.clone();
                    block_on(store.submit(move |tx| create_object(tx, created)))
                        .unwrap()
                        .unwrap();
                    live.push(o);
                }
                2 if !live.is_empty() => {
                    let i = rng.below(live.len() as u64) as usize;
                    let class = live[i].class.to_string();
                    let mut props = serde_json::Map::new();
                    if let Some(v) = typed(&mut rng, &class) {
                        if class != "Ints" || v.as_i64().is_some_and(|i| i.unsigned_abs() <= 1000) {
                            props.insert("p".into(), v);
                        }
                    }
                    live[i].properties_json = serde_json::Value::Object(props).to_string().into();
                    let changed = live[i].clone();
                    block_on(store.submit(move |tx| update_object(tx, changed, None)))
                        .unwrap()
                        .unwrap();
                }
                3 if !live.is_empty() => {
                    let o = live.swap_remove(rng.below(live.len() as u64) as usize);
                    block_on(store.submit(move |tx| delete_object(tx, o.kind, o.id)))
                        .unwrap()
                        .unwrap();
                }
                _ => {}
            }
            if round % 20 == 0 {
                check(&store, &live);
            }
        }
        check(&store, &live);
        // A format version 6 file (statistics without the exact sum, in their older layout):
        // opening it makes them again.
        drop(store);
        let store = reopen_as_version(&dir, 6, |tx| {
            let mut stats = tx.open_table(CLASS_STATS).unwrap();
            {
                let rows: Vec<(Vec<u8>, Vec<u8>)> = stats
                    .iter()
                    .unwrap()
                    .map(|r| {
                        let (k, v) = r.unwrap();
                        let mut old = v.value()[..40].to_vec();
                        old.extend_from_slice(&[0; 32]);
                        (k.value().to_vec(), old)
                    })
                    .collect();
                assert!(!rows.is_empty());
                for (k, v) in rows {
                    stats.insert(&k[..], &v[..]).unwrap();
                }
            }
        });
        check(&store, &live);
        // A format version 4 file (no per-class statistics): opening it makes them again.
        drop(store);
        let store = reopen_as_version(&dir, 4, |tx| {
            tx.delete_table(CLASS_VALUES).unwrap();
            tx.delete_table(CLASS_STATS).unwrap();
        });
        check(&store, &live);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A reference to one of `ids` (sometimes with the other kind's `type`, which resolves to
    /// nothing, or without a `type`, a Thing), or a dangling one.
    fn reference(rng: &mut Rng, ids: &[(ObjectKind, Id)]) -> serde_json::Value {
        use serde_json::json;
        let (kind, id) = match rng.below(8) {
            0 => (ObjectKind::Thing, Id::random()),
            1 => (ObjectKind::Action, Id::random()),
            _ => ids[rng.below(ids.len() as u64) as usize],
        };
        let kind = match (rng.below(12), kind) {
            (0, ObjectKind::Thing) => ObjectKind::Action,
            (0, ObjectKind::Action) => ObjectKind::Thing,
            (_, k) => k,
        };
        match (kind, rng.below(3)) {
            (ObjectKind::Thing, 0) => json!({"$cref": id.to_string()}),
            (ObjectKind::Thing, 1) => json!({"$cref": id.to_string(), "type": "thing"}),
            (ObjectKind::Thing, _) => json!({"$cref": id.to_string(), "type": "Thing"}),
            (ObjectKind::Action, 0) => json!({"$cref": id.to_string(), "type": "action"}),
            (ObjectKind::Action, _) => json!({"$cref": id.to_string(), "type": "Action"}),
        }
    }

    /// A reference property's value: none, one reference, an array of them (with a stray
    /// number at times), or a value that is no reference.
    fn references_value(rng: &mut Rng, ids: &[(ObjectKind, Id)]) -> Option<serde_json::Value> {
        use serde_json::json;
        Some(match rng.below(7) {
            0 => return None,
            1 | 2 => reference(rng, ids),
            3 | 4 => json!((0..rng.below(4))
                .map(|_| reference(rng, ids))
                .collect::<Vec<_>>()),
            5 => json!([reference(rng, ids), 3, reference(rng, ids)]),
            _ => json!("not a reference"),
        })
    }

    const REFERENCE_CLASSES: [&str; 4] = ["City", "Town", "Country", "Visit"];

    /// An object's properties: `p`, `q` and `name` primitive, `r` and `s` references.
    fn referring_properties(rng: &mut Rng, ids: &[(ObjectKind, Id)]) -> RString {
        let mut props = serde_json::Map::new();
        for name in ["p", "q"] {
            if let Some(v) = value(rng) {
                props.insert(name.into(), v);
            }
        }
        if rng.below(4) > 0 {
            props.insert("name".into(), ["X", "Y", "Z"][rng.below(3) as usize].into());
        }
        for name in ["r", "s"] {
            if let Some(v) = references_value(rng, ids) {
                props.insert(name.into(), v);
            }
        }
        serde_json::Value::Object(props).to_string().into()
    }

    /// A comparison of one property, or (mostly) through one or two references.
    fn reference_comparison(rng: &mut Rng) -> serde_json::Value {
        use serde_json::json;
        let mut c = comparison(rng);
        let leaf = c["path"][0].clone();
        let class = |rng: &mut Rng| REFERENCE_CLASSES[rng.below(4) as usize];
        let by = |rng: &mut Rng| ["r", "s"][rng.below(2) as usize];
        match rng.below(6) {
            0 => {}
            1 | 2 => c["path"] = json!([by(rng), class(rng), leaf]),
            3 => c["path"] = json!([by(rng), class(rng), by(rng), class(rng), leaf]),
            _ => {
                let eq = ["Equal", "NotEqual"][rng.below(2) as usize];
                let name = ["X", "Y", "W"][rng.below(3) as usize];
                c = json!({
                    "operator": eq,
                    "path": [by(rng), class(rng), "name"],
                    "valueString": name,
                });
            }
        }
        c
    }

    fn reference_filter(rng: &mut Rng, depth: u32) -> serde_json::Value {
        use serde_json::json;
        if depth == 0 || rng.below(3) == 0 {
            return reference_comparison(rng);
        }
        let n = 1 + rng.below(3);
        let operands: Vec<_> = (0..n).map(|_| reference_filter(rng, depth - 1)).collect();
        match rng.below(5) {
            0 | 1 => json!({"operator": "And", "operands": operands}),
            2 | 3 => json!({"operator": "Or", "operands": operands}),
            _ => json!({"operator": "Not", "operands": [operands[0]]}),
        }
    }

    /// `rounds` random queries through references (and their counts) answered by `store`
    /// exactly as the reference semantics answer them over `live`, references resolved among
    /// `live`.
    fn check_references_like_reference(
        store: &Store,
        live: &[StoredObject],
        owners: &[Id; 2],
        rng: &mut Rng,
        rounds: usize,
    ) {
        let by_id: HashMap<(ObjectKind, Id), &StoredObject> =
            live.iter().map(|o| ((o.kind, o.id), o)).collect();
        let resolve = |kind: ObjectKind, id: Id| by_id.get(&(kind, id)).map(|o| (*o).clone());
        let mut planned = 0;
        for round in 0..rounds {
            let f = reference_filter(rng, 2).to_string();
            let parsed = WhereFilter::parse(&f).unwrap();
            let query = ObjectQuery {
                kind: if round % 5 == 0 {
                    ObjectKind::Action
                } else {
                    ObjectKind::Thing
                },
                class: ["", "City", "Town", "Country", "Visit"][rng.below(5) as usize].into(),
                owners: match rng.below(5) {
                    0 => vec![owners[0]].into(),
                    1 => vec![owners[1], owners[0]].into(),
                    _ => Default::default(),
                },
                filter_json: f.clone().into(),
                offset: [0, 0, 1, 7, 1000][rng.below(5) as usize],
                limit: [1000, 1000, 0, 1, 3, 25, u64::MAX][rng.below(7) as usize],
            };
            if parsed.uses_reference_paths() && index::plan(query.kind, &parsed).is_some() {
                planned += 1;
            }
            let matcher = QueryMatcher::new(&query).unwrap();
            let want: Vec<&StoredObject> = live
                .iter()
                .filter(|o| matcher.matches(o, &resolve))
                .collect();
            let want = support::page(want, &query);
            let got = store.query_objects(&query).unwrap();
            assert_eq!(got, want, "query {query:?}");
            let count = store.aggregate(&query, "{}").unwrap();
            let count: serde_json::Value = serde_json::from_str(&count).unwrap();
            assert_eq!(
                count["groups"][0]["count"], want.total,
                "count of {query:?}"
            );
        }
        assert!(planned > rounds / 4, "{planned} of {rounds} planned");
    }

    /// Queries through references (single ones and arrays, to things and actions, dangling
    /// ones, ones of the wrong type, one and two hops, inside `And`/`Or`/`Not`) answered through
    /// the reference index equal the reference semantics over every object, also after updates
    /// changed the references and deletes removed targets and sources; and after a format
    /// version 7 file (without the reference index) is opened.
    #[test]
    fn reference_path_queries_answer_like_the_reference() {
        let dir = std::env::temp_dir().join(format!(
            "weft-embedded-references-{}-{}",
            std::process::id(),
            now_ms()
        ));
        let store =
            Store::open(&dir, PluginLogger::new(HostLogger::discard(), "embedded")).unwrap();
        let mut rng = Rng(0x1405_7b7e_f767_814f);
        let owners = [Id([1; 16]), Id([2; 16])];
        // Every id first, so that references point forward and backward.
        let ids: Vec<(ObjectKind, Id)> = (0..240)
            .map(|i| {
                let kind = if i % 6 == 0 {
                    ObjectKind::Action
                } else {
                    ObjectKind::Thing
                };
                (kind, Id::random())
            })
            .collect();
        let class = |rng: &mut Rng, kind: ObjectKind| -> RString {
            match kind {
                ObjectKind::Thing => ["City", "Town", "Country"][rng.below(3) as usize].into(),
                ObjectKind::Action => ["Visit", "Country"][rng.below(2) as usize].into(),
            }
        };
        let mut objects = Vec::new();
        for (i, &(kind, id)) in ids.iter().enumerate() {
            let object = StoredObject {
                kind,
                id,
                class: class(&mut rng, kind),
                context: RString::new(),
                owner: owners[rng.below(2) as usize],
                created_ms: i as i64 / 3,
                updated_ms: i as i64,
                properties_json: referring_properties(&mut rng, &ids),
            };
            let o = object.clone();
            block_on(store.submit(move |tx| create_object(tx, o)))
                .unwrap()
                .unwrap();
            objects.push(object);
        }
        // Change some (their references and class too), delete some (targets and sources).
        for (i, o) in objects.iter_mut().enumerate() {
            if i % 4 == 1 {
                o.properties_json = referring_properties(&mut rng, &ids);
                if rng.below(3) == 0 {
                    o.class = class(&mut rng, o.kind);
                }
                let changed = o.clone();
                block_on(store.submit(move |tx| update_object(tx, changed, None)))
                    .unwrap()
                    .unwrap();
            }
        }
        let mut live: Vec<StoredObject> = Vec::new();
        for (i, o) in objects.iter().enumerate() {
            if i % 9 == 4 {
                let (kind, id) = (o.kind, o.id);
                block_on(store.submit(move |tx| delete_object(tx, kind, id)))
                    .unwrap()
                    .unwrap();
            } else {
                live.push(o.clone());
            }
        }
        check_references_like_reference(&store, &live, &owners, &mut rng, 500);
        // A format version 7 file (no reference index): simulated by dropping the table and
        // stamping version 7. Opening it makes the index from the current objects, exactly as
        // the writes made it.
        let indexes = index_tables(&store);
        assert!(!indexes[4].is_empty());
        drop(store);
        let store = reopen_as_version(&dir, 7, |tx| {
            tx.delete_table(REFERENCE_INDEX).unwrap();
        });
        assert_eq!(index_tables(&store), indexes);
        check_references_like_reference(&store, &live, &owners, &mut rng, 200);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A filter through a reference reads only the objects that refer to what the rest of its
    /// path finds (and their referred objects, to check them), in a page, a count, statistics
    /// and the matches a vector search takes; one of two hops too, and inside `And`/`Or`; a
    /// `Not` of one reads those and its page.
    #[test]
    fn a_filter_through_a_reference_reads_only_its_candidates() {
        use serde_json::json;
        let dir = std::env::temp_dir().join(format!(
            "weft-embedded-reference-reads-{}-{}",
            std::process::id(),
            now_ms()
        ));
        let store =
            Store::open(&dir, PluginLogger::new(HostLogger::discard(), "embedded")).unwrap();
        let create = |kind: ObjectKind, class: &str, created_ms: i64, props: serde_json::Value| {
            let o = StoredObject {
                kind,
                id: Id::random(),
                class: class.into(),
                context: RString::new(),
                owner: Id([1; 16]),
                created_ms,
                updated_ms: created_ms,
                properties_json: props.to_string().into(),
            };
            let id = o.id;
            block_on(store.submit(move |tx| create_object(tx, o)))
                .unwrap()
                .unwrap();
            id
        };
        let continents: Vec<Id> = (0..2)
            .map(|j| {
                create(
                    ObjectKind::Action,
                    "Continent",
                    0,
                    json!({"name": format!("m{j}")}),
                )
            })
            .collect();
        let countries: Vec<Id> = (0..20)
            .map(|j| {
                let continent = json!({"$cref": continents[j % 2].to_string(), "type": "Action"});
                create(
                    ObjectKind::Thing,
                    "Country",
                    0,
                    json!({"name": format!("k{j}"), "inContinent": continent}),
                )
            })
            .collect();
        for i in 0..600i64 {
            let country = json!({"$cref": countries[i as usize % 20].to_string(), "type": "Thing"});
            create(
                ObjectKind::Thing,
                "City",
                i,
                json!({"population": i, "inCountry": [country]}),
            );
        }
        let reads = |what: &str, limit: u64, f: serde_json::Value| {
            let query = ObjectQuery {
                class: "City".into(),
                filter_json: f.to_string().into(),
                ..ObjectQuery::all(ObjectKind::Thing, limit)
            };
            let read = || OBJECTS_READ.with(|n| n.get());
            let before = read();
            let page = store.query_objects(&query).unwrap();
            let page_reads = read() - before;
            let before = read();
            let count = store.aggregate(&query, "{}").unwrap();
            let count_reads = read() - before;
            let before = read();
            store
                .aggregate(&query, r#"{"properties":["population"]}"#)
                .unwrap();
            let stats_reads = read() - before;
            let before = read();
            let tx = store.begin_read().unwrap();
            let n = matches_in(&tx, &query, |matches, _| Ok(matches.len())).unwrap();
            let match_reads = read() - before;
            let matcher = QueryMatcher::new(&query).unwrap();
            let candidates = candidates(&tx, &query, &matcher).unwrap().unwrap().len() as u64;
            let count: serde_json::Value = serde_json::from_str(&count).unwrap();
            assert_eq!(count["groups"][0]["count"], page.total, "{what}");
            assert_eq!(n as u64, page.total, "{what}");
            println!("{what}: {} matches, {page_reads} objects read", page.total);
            (
                page.total,
                candidates,
                [page_reads, count_reads, stats_reads, match_reads],
            )
        };
        let name = |n: &str| json!({"operator": "Equal", "path": ["inCountry", "Country", "name"], "valueString": n});
        // Each candidate and its country: 2 reads a match.
        let (n, candidates, read) = reads("one country", 5, name("k3"));
        assert_eq!((n, candidates), (30, 30));
        assert!(read.iter().all(|&r| r <= 2 * n), "{read:?}");
        // Two hops: each candidate, its country and that country's continent.
        let two_hops = json!({"operator": "Equal", "path": ["inCountry", "Country", "inContinent", "Continent", "name"], "valueString": "m1"});
        let (n, candidates, read) = reads("two hops", 5, two_hops);
        assert_eq!((n, candidates), (300, 300));
        assert!(read.iter().all(|&r| r <= 3 * n), "{read:?}");
        let (n, candidates, read) = reads(
            "Or of two countries",
            5,
            json!({"operator": "Or", "operands": [name("k3"), name("k4")]}),
        );
        assert_eq!((n, candidates), (60, 60));
        // (The check resolves a country once per operand it tries.)
        assert!(read.iter().all(|&r| r <= 3 * n), "{read:?}");
        // And with a `Not` (not planned): the planned part narrows.
        let not_low = json!({"operator": "Not", "operands": [
            {"operator": "LessThan", "path": ["population"], "valueInt": 300}
        ]});
        let (n, candidates, read) = reads(
            "And with a Not",
            5,
            json!({"operator": "And", "operands": [name("k3"), not_low]}),
        );
        assert_eq!((n, candidates), (15, 30));
        assert!(read.iter().all(|&r| r <= 2 * 30), "{read:?}");
        // `Not` of one: the page from the class index, the total as the class less the hits.
        let query = ObjectQuery {
            class: "City".into(),
            filter_json: json!({"operator": "Not", "operands": [name("k3")]})
                .to_string()
                .into(),
            ..ObjectQuery::all(ObjectKind::Thing, 5)
        };
        let before = OBJECTS_READ.with(|n| n.get());
        let page = store.query_objects(&query).unwrap();
        let read = OBJECTS_READ.with(|n| n.get()) - before;
        assert_eq!((page.objects.len(), page.total), (5, 570));
        assert!(read <= 2 * 30 + 2 * 5, "{read}");
        // A name no country has: nothing read.
        let (n, candidates, read) = reads("no country", 5, name("nowhere"));
        assert_eq!((n, candidates), (0, 0));
        assert_eq!(read, [0; 4]);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
