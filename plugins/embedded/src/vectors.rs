//! Object vectors (`VECTOR_SEARCH`): stored in redb with their object, searched through one
//! HNSW index ([usearch](https://docs.rs/usearch)) per kind and class kept beside the database.
//!
//! * **The truth is redb.** [`VECTORS`] holds each current object's vector with a sequence
//!   number, [`VECTOR_KEYS`] the same vectors by class and sequence number; both are written in
//!   the transaction (group commit) that writes the object, so a crash loses no acknowledged
//!   vector. Every change of a vector (stored or dropped) takes the next number of `meta`'s
//!   [`SEQ_KEY`], so that number names the state of the vectors.
//! * **The HNSW indexes are a cache.** Each is keyed by the sequence numbers (a new vector gets
//!   a new number, so an old one is never mistaken for it) and held in memory. Once a
//!   transaction is committed, and before its writes are answered, the writer thread stages
//!   its [`Change`]s ([`Vectors::stage`]): each new vector becomes *pending* in its class, and
//!   the indexer thread ([`Vectors::run_indexer`]) adds it to the index behind the writer (on
//!   up to four threads), so the writer never waits for the graph. A search compares the query
//!   with every pending vector exactly and then searches the index, so an acknowledged write
//!   is searchable at once; at most [`PENDING_MAX`] vectors are pending (beyond it the writer
//!   waits for the indexer: back-pressure). At close the indexer finishes, every index is saved to
//!   `DIR/vectors/<kind>-<class>-<hash>.usearch` and `DIR/vectors/manifest.json` records the
//!   state they reflect; at open a manifest of the store's state is loaded (and removed, so a
//!   crash afterwards leaves none), anything else (no manifest, another state, a file missing
//!   or unreadable) is rebuilt from [`VECTOR_KEYS`] and [`VECTORS`] by the indexer, first
//!   thing, from the snapshot open saw; until that is done every search is exact, so opening
//!   never waits for a graph to be built.
//! * **Every hit is checked in the read snapshot**: its key must still be the object's vector
//!   and the object current, and its distance is computed from the stored vector with the
//!   reference ([`cosine_distance`]), so a stale or approximate index can only cost recall.
//! * **Filter first** ([`crate::store::Store::search_vectors`]): without owners or filter, a
//!   class's index is searched directly (asking for more than `k` while hits are dropped);
//!   with them, the objects they allow are found through the store's indexes, then searched
//!   exactly when at most [`EXACT_SEARCH_MAX`], else through the HNSW indexes with the
//!   allow-list as a filter predicate.

use std::collections::VecDeque;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};
use weft_plugin_api::vector::{cosine_distance, Nearest};
use weft_plugin_api::{
    Id, ObjectKind, PluginError, PluginLogger, PluginResult, StoredObject, VectorHit, VectorQuery,
};

use crate::codec::{byte_kind, kind_byte, object_key, Entry};
use crate::index;
use crate::tables::{st, Bytes, META, OBJECTS, VECTORS, VECTOR_KEYS};

/// A restricted search (owners or a filter) whose allowed objects are at most this many
/// compares the query with each of their vectors (exact); above it, the HNSW indexes are
/// searched with the allow-list as a filter. Weaviate's switch point (`flatSearchCutoff`).
pub const EXACT_SEARCH_MAX: usize = 40_000;

/// The `meta` entry holding the last sequence number given to a vector change.
pub(crate) const SEQ_KEY: &str = "vector_seq";

/// The manifest's own format (2: the indexes hold `i8`; files of format 1, `f32`, are rebuilt).
const MANIFEST_FORMAT: u64 = 2;
const MANIFEST: &str = "manifest.json";
/// Threads that may search (or add to) one index at once: the plugin runtime's blocking pool
/// (eight) and the writer, with room. A search finding no free slot is answered exactly.
const INDEX_THREADS: usize = 16;
/// HNSW parameters: usearch's defaults for the graph. Object vectors are weighted means of
/// word vectors, crowded into a narrow cone (every text shares frequent words), and queries are
/// a few words' vectors, far from that crowd: there usearch's default `expansion_search` of 64
/// finds 0.87 of the true top-10 (100,000 objects of generated text, GloVe 50d), 128 finds
/// 0.95, 256 finds 0.97 at half the speed of 128.
const CONNECTIVITY: usize = 16;
const EXPANSION_ADD: usize = 128;
const EXPANSION_SEARCH: usize = 256;
/// Committed vectors the indexer may be behind by. Each search compares the query with every
/// one of them exactly, so this bounds that cost (10,000 × 50 dimensions: about 0.2 ms); above
/// it, the writer waits before answering its writes (back-pressure on the clients).
pub(crate) const PENDING_MAX: usize = 10_000;
/// The `vectors` directories whose store's rebuild at open waits while listed (tests).
#[cfg(test)]
static HOLD_REBUILD: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// How far the index's distance (between `i8` copies of unit vectors, each component off by at
/// most 1/254) may be from the true one: 2·√dims/254 (0.056 for 50 dimensions; typically ten
/// times less).
fn quantization_slack(hnsw: &Index) -> f32 {
    2.0 * (hnsw.dimensions() as f32).sqrt() / 254.0 + 1e-3
}
/// The indexer takes at most this much work at once.
const INDEX_BATCH: usize = 1_024;

// ----- encodings ---------------------------------------------------------------------------------

/// A [`VECTORS`] value: the sequence number, then the vector.
pub(crate) fn encode(seq: u64, vector: &[f32]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + 4 * vector.len());
    v.extend_from_slice(&seq.to_be_bytes());
    for x in vector {
        v.extend_from_slice(&x.to_le_bytes());
    }
    v
}

/// A [`VECTORS`] value's sequence number and vector.
pub(crate) fn decode(bytes: &[u8]) -> PluginResult<(u64, Vec<f32>)> {
    let corrupt = || PluginError::internal("embedded: a stored vector is corrupt");
    let (seq, rest) = bytes.split_first_chunk::<8>().ok_or_else(corrupt)?;
    if !rest.len().is_multiple_of(4) {
        return Err(corrupt());
    }
    let vector = rest
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok((u64::from_be_bytes(*seq), vector))
}

/// A [`VECTOR_KEYS`] key: kind, class (escaped, as [`index::class_prefix`]), sequence number.
pub(crate) fn vector_key(kind: ObjectKind, class: &str, seq: u64) -> Vec<u8> {
    let mut k = index::class_prefix(kind, class);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The first and last possible [`VECTOR_KEYS`] key of a class.
fn class_range(kind: ObjectKind, class: &str) -> (Vec<u8>, Vec<u8>) {
    (
        vector_key(kind, class, 0),
        vector_key(kind, class, u64::MAX),
    )
}

/// The kind, class and sequence number of a [`VECTOR_KEYS`] key.
fn parse_key(key: &[u8]) -> PluginResult<(ObjectKind, String, u64)> {
    let corrupt = || PluginError::internal("embedded: a stored vector key is corrupt");
    let (head, seq) = key.split_last_chunk::<8>().ok_or_else(corrupt)?;
    let kind = byte_kind(*head.first().ok_or_else(corrupt)?)?;
    Ok((kind, index::string_of(head, 1), u64::from_be_bytes(*seq)))
}

fn id_of(bytes: &[u8]) -> PluginResult<Id> {
    <[u8; 16]>::try_from(bytes)
        .map(Id)
        .map_err(|_| PluginError::internal("embedded: a stored vector key names a corrupt id"))
}

/// The last sequence number given, in a snapshot (0: never one).
fn stored_seq(tx: &ReadTransaction) -> PluginResult<u64> {
    let meta = tx.open_table(META).map_err(st)?;
    let seq = meta.get(SEQ_KEY).map_err(st)?.map_or(0, |g| g.value());
    Ok(seq)
}

/// Whether the HNSW (cosine) can hold or search `v`: not empty, finite, not zero. Others (the
/// reference puts a zero vector at distance 1 from everything) are searched exactly.
fn regular(v: &[f32]) -> bool {
    !v.is_empty() && v.iter().all(|x| x.is_finite()) && v.iter().any(|x| *x != 0.0)
}

// ----- writes ------------------------------------------------------------------------------------

/// A change to the HNSW indexes a committed transaction made.
#[derive(Debug)]
pub(crate) enum Change {
    Add {
        kind: ObjectKind,
        class: String,
        id: Id,
        seq: u64,
        vector: Vec<f32>,
    },
    Remove {
        kind: ObjectKind,
        class: String,
        seq: u64,
    },
}

/// In `tx`: drops the vector of object `kind`/`id` (held under `old_class`, the class of its
/// current version, when it has one) and stores `new` (its class and vector; an empty vector:
/// none) instead; what the HNSW indexes must change is pushed to `changes`. Writes nothing when
/// there is neither an old nor a new vector.
pub(crate) fn replace(
    tx: &WriteTransaction,
    changes: &mut Vec<Change>,
    kind: ObjectKind,
    id: Id,
    old_class: Option<&str>,
    new: Option<(&str, &[f32])>,
) -> PluginResult<()> {
    let new = new.filter(|(_, v)| !v.is_empty());
    if old_class.is_none() && new.is_none() {
        return Ok(());
    }
    let mut vectors = tx.open_table(VECTORS).map_err(st)?;
    let at = object_key(kind, id);
    let old = match old_class {
        Some(_) => vectors
            .remove(&at[..])
            .map_err(st)?
            .map(|g| decode(g.value()))
            .transpose()?,
        None => None,
    };
    if old.is_none() && new.is_none() {
        return Ok(());
    }
    let mut keys = tx.open_table(VECTOR_KEYS).map_err(st)?;
    let mut meta = tx.open_table(META).map_err(st)?;
    let mut seq = meta.get(SEQ_KEY).map_err(st)?.map_or(0, |g| g.value());
    if let (Some((old_seq, _)), Some(class)) = (old, old_class) {
        keys.remove(&vector_key(kind, class, old_seq)[..])
            .map_err(st)?;
        seq += 1;
        changes.push(Change::Remove {
            kind,
            class: class.to_string(),
            seq: old_seq,
        });
    }
    if let Some((class, vector)) = new {
        seq += 1;
        vectors
            .insert(&at[..], &encode(seq, vector)[..])
            .map_err(st)?;
        keys.insert(&vector_key(kind, class, seq)[..], &id.0[..])
            .map_err(st)?;
        changes.push(Change::Add {
            kind,
            class: class.to_string(),
            id,
            seq,
            vector: vector.to_vec(),
        });
    }
    meta.insert(SEQ_KEY, seq).map_err(st)?;
    Ok(())
}

// ----- the HNSW indexes --------------------------------------------------------------------------

/// One kind and class's vectors as searched: an HNSW index of the regular ones of its
/// dimension, and the keys of the rest (searched exactly).
struct ClassIndex {
    hnsw: Option<Index>,
    /// Keys not in `hnsw`: zero or non-finite vectors, vectors of another length than the
    /// index's, and any the index refused. While there are any, the class is searched exactly.
    irregular: BTreeSet<u64>,
    /// Changed since it was loaded from its file (or never saved).
    dirty: AtomicBool,
}

/// A vector committed (its write may be answered) but not yet in its class's HNSW index: the
/// object's id and the vector.
type Pending = (Id, Arc<[f32]>);

/// A vector with its sequence number.
type Numbered = (u64, Arc<[f32]>);

/// One kind and class: its index, and the vectors the indexer has not yet added to it.
struct ClassEntry {
    index: RwLock<ClassIndex>,
    /// By sequence number. A search compares the query with each of these exactly, before it
    /// searches the index (the indexer adds a vector to the index before it removes it from
    /// here, so a search sees it in one or the other, or both).
    pending: RwLock<HashMap<u64, Pending>>,
}

impl ClassEntry {
    fn new(index: ClassIndex) -> Arc<ClassEntry> {
        Arc::new(ClassEntry {
            index: RwLock::new(index),
            pending: RwLock::new(HashMap::new()),
        })
    }
}

/// Work for the indexer, in commit order.
struct Queued {
    entry: Arc<ClassEntry>,
    seq: u64,
    /// Add the pending vector `seq` (else remove `seq` from the index).
    add: bool,
}

/// The indexer's queue, and whether the store is closing.
#[derive(Default)]
struct Backlog {
    queue: VecDeque<Queued>,
    closing: bool,
    /// The indexer is working on a batch taken from the queue.
    busy: bool,
    /// The indexer takes no work (tests: searches while it is behind).
    paused: bool,
}

fn options(dimensions: usize) -> IndexOptions {
    IndexOptions {
        dimensions,
        metric: MetricKind::Cos,
        // The graph compares `i8` copies of the normalized vectors (a quarter of the memory,
        // twice the speed of `f32`, the same recall: every hit's distance is then computed from
        // the stored `f32` vector, and more than `k` are asked for).
        quantization: ScalarKind::I8,
        connectivity: CONNECTIVITY,
        expansion_add: EXPANSION_ADD,
        expansion_search: EXPANSION_SEARCH,
        multi: false,
    }
}

impl ClassIndex {
    fn new() -> Self {
        ClassIndex {
            hnsw: None,
            irregular: BTreeSet::new(),
            dirty: AtomicBool::new(true),
        }
    }

    /// Adds vector `seq`; an error (the vector is then kept as irregular) says why the index
    /// would not take it.
    fn add(&mut self, seq: u64, v: &[f32]) -> Result<(), String> {
        self.dirty.store(true, Ordering::Relaxed);
        if !regular(v) {
            self.irregular.insert(seq);
            return Ok(());
        }
        if self.hnsw.is_none() {
            let made = Index::new(&options(v.len())).and_then(|i| {
                i.reserve_capacity_and_threads(64, INDEX_THREADS)?;
                Ok(i)
            });
            match made {
                Ok(i) => self.hnsw = Some(i),
                Err(e) => {
                    self.irregular.insert(seq);
                    return Err(e.to_string());
                }
            }
        }
        let Some(hnsw) = &self.hnsw else {
            return Ok(());
        };
        if hnsw.dimensions() != v.len() {
            self.irregular.insert(seq);
            return Ok(());
        }
        let added = (|| {
            if hnsw.size() + 1 > hnsw.capacity() {
                hnsw.reserve_capacity_and_threads((hnsw.capacity() * 2).max(64), INDEX_THREADS)?;
            }
            hnsw.add(seq, v)
        })();
        added.map_err(|e| {
            self.irregular.insert(seq);
            e.to_string()
        })
    }

    /// Adds vector `seq` without the exclusive lock (usearch adds concurrently with searches
    /// and other adds); `false` when it needs [`add`](Self::add) instead (no index yet, an
    /// irregular vector or one of another length, no room, or a refusal, which `add` reports).
    fn add_shared(&self, seq: u64, v: &[f32]) -> bool {
        let Some(hnsw) = &self.hnsw else {
            return false;
        };
        if !regular(v) || hnsw.dimensions() != v.len() || hnsw.size() + 1 > hnsw.capacity() {
            return false;
        }
        self.dirty.store(true, Ordering::Relaxed);
        hnsw.add(seq, v).is_ok()
    }

    /// Room for `more` vectors beyond those held (doubling), so that they can be added shared.
    fn reserve(&mut self, more: usize) {
        if let Some(hnsw) = &self.hnsw {
            let want = hnsw.size() + more;
            if want > hnsw.capacity() {
                let _ =
                    hnsw.reserve_capacity_and_threads(want.max(hnsw.capacity() * 2), INDEX_THREADS);
            }
        }
    }

    fn remove(&mut self, seq: u64) {
        self.dirty.store(true, Ordering::Relaxed);
        if !self.irregular.remove(&seq) {
            if let Some(hnsw) = &self.hnsw {
                let _ = hnsw.remove(seq);
            }
        }
    }

    fn size(&self) -> usize {
        self.hnsw.as_ref().map_or(0, |h| h.size()) + self.irregular.len()
    }

    /// The index, when it answers `query` for the whole class: it holds every vector of the
    /// class and `query` is regular and of its length.
    fn searchable(&self, query: &[f32]) -> Option<&Index> {
        let hnsw = self.hnsw.as_ref()?;
        (self.irregular.is_empty() && regular(query) && hnsw.dimensions() == query.len())
            .then_some(hnsw)
    }
}

type ClassKey = (u8, String);

/// The HNSW indexes of one store, by kind and class.
pub(crate) struct Vectors {
    dir: PathBuf,
    classes: RwLock<BTreeMap<ClassKey, Arc<ClassEntry>>>,
    /// What the indexer is to do; [`Vectors::stage`] waits while it holds [`PENDING_MAX`].
    backlog: Mutex<Backlog>,
    /// Signalled when work is queued (the indexer waits on it) and when work is done (the
    /// writer, held back, and the close wait on it).
    backlog_changed: Condvar,
    /// False once the indexes may differ from the committed vectors (a commit that failed
    /// after it may have been written, a panic while applying changes): then they are not
    /// saved at close, and the next open rebuilds them.
    trusted: AtomicBool,
    log: PluginLogger,
    /// How many vectors open loaded from the files.
    loaded: usize,
    /// How many vectors the indexer rebuilt from the store after open.
    built: AtomicUsize,
    /// What open left to rebuild from the store, for the indexer to do first.
    rebuild: Mutex<Option<Rebuild>>,
    /// Until the rebuild is done, every search compares the query with each stored vector.
    rebuilding: AtomicBool,
}

/// The indexes open could not load: rebuilt by the indexer from the store as open saw it (the
/// writes since are queued behind it), while searches are answered exactly.
struct Rebuild {
    tx: ReadTransaction,
    /// The classes to rebuild (`None`: every class).
    only: Option<BTreeSet<ClassKey>>,
    /// Why (for the log).
    reason: String,
}

fn lock<T>(l: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    l.lock().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

fn io(what: &str, path: &Path, e: impl std::fmt::Display) -> String {
    format!("cannot {what} {}: {e}", path.display())
}

/// The file name of a class's index: kind, the class's name (characters other than ASCII
/// letters, digits and `_` as `_`), and a hash of the exact name (so no two classes share a
/// file, on case-insensitive file systems too).
fn file_name(kind: ObjectKind, class: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in class.bytes() {
        hash ^= b as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let readable: String = class
        .chars()
        .take(48)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{}-{readable}-{hash:016x}.usearch", kind.as_str())
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

impl Vectors {
    /// The indexes of the store in `data_dir` (whose database `db` is open and initialised):
    /// loaded from `data_dir/vectors` when its manifest describes the store's state, else (and
    /// for any class whose file fails) rebuilt from the vectors tables. Logs usearch's SIMD
    /// kernels once.
    pub(crate) fn open(data_dir: &Path, db: &Database, log: PluginLogger) -> PluginResult<Vectors> {
        // The kernel an index of ours picks (`Index::hardware_acceleration`): its cosine over
        // `i8`, of this CPU's best ISA.
        let picked = Index::new(&options(256))
            .map(|i| i.hardware_acceleration())
            .unwrap_or_else(|e| format!("unknown ({e})"));
        log.info(&format!(
            "vector search: usearch {} (HNSW, cosine over i8, kernel: {picked}); SIMD kernels compiled: {}; available on this CPU: {}",
            usearch::version(),
            usearch::hardware_acceleration_compiled(),
            usearch::hardware_acceleration_available()
        ));
        let dir = data_dir.join("vectors");
        std::fs::create_dir_all(&dir).map_err(|e| {
            PluginError::unavailable(format!("embedded: {}", io("create", &dir, e)))
        })?;
        let tx = db.begin_read().map_err(st)?;
        let seq = stored_seq(&tx)?;
        let mut classes = BTreeMap::new();
        // What to rebuild: `None` every class, else those whose file failed.
        let mut rebuild: Option<BTreeSet<ClassKey>> = None;
        let mut reason = String::new();
        let manifest_path = dir.join(MANIFEST);
        match std::fs::read_to_string(&manifest_path) {
            Ok(text) => match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(m) if m["format"] == MANIFEST_FORMAT && m["seq"] == seq => {
                    let mut failed = BTreeSet::new();
                    for entry in m["indexes"].as_array().into_iter().flatten() {
                        match load(&dir, entry) {
                            Ok((key, class)) => {
                                classes.insert(key, ClassEntry::new(class));
                            }
                            Err((key, why)) => {
                                log.warn(&format!("vector search: {why}; rebuilding it"));
                                if let Some(key) = key {
                                    failed.insert(key);
                                } else {
                                    failed.clear();
                                    rebuild = None;
                                    reason = why;
                                    break;
                                }
                            }
                        }
                    }
                    if reason.is_empty() {
                        rebuild = Some(failed);
                    } else {
                        classes.clear();
                    }
                }
                Ok(m) => {
                    reason = format!(
                        "the saved indexes reflect vector state {}, the store is at {seq}",
                        m["seq"]
                    )
                }
                Err(e) => reason = format!("{}: {e}", manifest_path.display()),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                reason =
                    "no saved indexes (a first open, an older store, or the last run did not close)"
                        .into()
            }
            Err(e) => reason = io("read", &manifest_path, e),
        }
        // From now on the files may fall behind the store: only a clean close writes a
        // manifest again.
        match std::fs::remove_file(&manifest_path) {
            Ok(()) => sync_dir(&dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(PluginError::unavailable(format!(
                    "embedded: {}",
                    io("remove", &manifest_path, e)
                )))
            }
        }
        let loaded: usize = classes.values().map(|c| read(&c.index).size()).sum();
        // Every class with stored vectors is known from the start (searches list them), even
        // before the indexer has rebuilt its index.
        for key in stored_classes(&tx)? {
            classes
                .entry(key)
                .or_insert_with(|| ClassEntry::new(ClassIndex::new()));
        }
        let rebuild = match rebuild {
            Some(failed) if failed.is_empty() => None,
            only => {
                if reason.is_empty() {
                    reason = "their index files failed".into();
                }
                Some(Rebuild { tx, only, reason })
            }
        };
        if loaded > 0 {
            log.info(&format!(
                "vector search: loaded the HNSW indexes of {loaded} vectors from {}",
                dir.display()
            ));
        }
        Ok(Vectors {
            dir,
            classes: RwLock::new(classes),
            backlog: Mutex::new(Backlog::default()),
            backlog_changed: Condvar::new(),
            trusted: AtomicBool::new(true),
            log,
            loaded,
            built: AtomicUsize::new(0),
            rebuilding: AtomicBool::new(rebuild.is_some()),
            rebuild: Mutex::new(rebuild),
        })
    }

    /// How many vectors open loaded from the saved indexes, and how many the indexer rebuilt
    /// from the store (once it has: this waits for the rebuild).
    pub(crate) fn opened(&self) -> (usize, usize) {
        let mut backlog = lock(&self.backlog);
        while self.rebuilding.load(Ordering::Acquire) && !backlog.closing {
            backlog = self
                .backlog_changed
                .wait(backlog)
                .unwrap_or_else(|e| e.into_inner());
        }
        (self.loaded, self.built.load(Ordering::Relaxed))
    }

    /// The indexer's first work: the indexes open could not load, rebuilt from the store as
    /// open saw it. Searches are exact until it is done; a rebuild that fails (or is cut short
    /// by the close) leaves them exact and the indexes untrusted (rebuilt at the next open).
    fn rebuild_at_open(&self, threads: usize) {
        {
            let mut backlog = lock(&self.backlog);
            if lock(&self.rebuild).is_none() {
                return;
            }
            backlog.busy = true;
        }
        #[cfg(test)]
        while lock(&HOLD_REBUILD).contains(&self.dir) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let Some(r) = lock(&self.rebuild).take() else {
            return;
        };
        let started = std::time::Instant::now();
        match self.rebuild_from(&r.tx, r.only.as_ref(), threads) {
            Ok(built) => {
                self.built.store(built, Ordering::Relaxed);
                if built > 0 {
                    self.log.info(&format!(
                        "vector search: rebuilt the HNSW indexes of {built} vectors from the store in {} ms ({}); searches were exact meanwhile",
                        started.elapsed().as_millis(),
                        r.reason
                    ));
                }
                self.rebuilding.store(false, Ordering::Release);
            }
            Err(why) => self.distrust(&format!(
                "rebuilding the HNSW indexes stopped ({why}); searches stay exact"
            )),
        }
        lock(&self.backlog).busy = false;
        self.backlog_changed.notify_all();
    }

    /// Adds the stored vectors of every class (`only` `None`), or of the classes in `only`, to
    /// their indexes (as `tx` has them); answers how many. Stops early, with an error, when
    /// the store closes.
    fn rebuild_from(
        &self,
        tx: &ReadTransaction,
        only: Option<&BTreeSet<ClassKey>>,
        threads: usize,
    ) -> Result<usize, String> {
        let keys = tx.open_table(VECTOR_KEYS).map_err(|e| e.to_string())?;
        let vectors = tx.open_table(VECTORS).map_err(|e| e.to_string())?;
        let mut ranges = Vec::new();
        match only {
            None => ranges.push((Vec::new(), vec![0xff])),
            Some(set) => {
                for (kb, class) in set {
                    let kind = byte_kind(*kb).map_err(|e| e.message.to_string())?;
                    ranges.push(class_range(kind, class));
                }
            }
        }
        let mut n = 0usize;
        // Read in runs of one class (the keys are ordered by class), added on `threads` threads.
        let mut run: Vec<(u64, Vec<f32>)> = Vec::new();
        let mut run_key: Option<ClassKey> = None;
        let flush = |key: &ClassKey, run: &mut Vec<(u64, Vec<f32>)>| -> Result<(), String> {
            if lock(&self.backlog).closing {
                return Err("the store is closing".into());
            }
            let kind = byte_kind(key.0).map_err(|e| e.message.to_string())?;
            let entry = self.class_or_new(kind, &key.1);
            add_many(&entry.index, run, threads, |e| {
                self.log.warn(&format!(
                    "vector search: the HNSW index of {} {} refused a vector ({e}); the class is searched exactly",
                    kind.as_str(),
                    key.1
                ))
            });
            run.clear();
            Ok(())
        };
        for (lo, hi) in ranges {
            let range = keys.range(&lo[..]..=&hi[..]).map_err(|e| e.to_string())?;
            for item in range {
                let (k, v) = item.map_err(|e| e.to_string())?;
                let (kind, class, seq) = parse_key(k.value()).map_err(|e| e.message.to_string())?;
                let id = id_of(v.value()).map_err(|e| e.message.to_string())?;
                let Some(stored) = vectors
                    .get(&object_key(kind, id)[..])
                    .map_err(|e| e.to_string())?
                else {
                    continue;
                };
                let (stored_seq, vector) =
                    decode(stored.value()).map_err(|e| e.message.to_string())?;
                if stored_seq != seq {
                    continue;
                }
                let key = (kind_byte(kind), class);
                if run_key.as_ref() != Some(&key) || run.len() >= REBUILD_RUN {
                    if let Some(k) = &run_key {
                        flush(k, &mut run)?;
                    }
                    run_key = Some(key);
                }
                run.push((seq, vector));
                n += 1;
            }
        }
        if let Some(k) = &run_key {
            flush(k, &mut run)?;
        }
        Ok(n)
    }

    /// Takes a committed transaction's changes (the writer calls it before answering the
    /// writes): each new vector becomes pending in its class (searched exactly from now on, so
    /// an acknowledged write is searchable) and is queued for the indexer, as is each removal.
    /// While the indexer is [`PENDING_MAX`] behind, this waits for it.
    pub(crate) fn stage(&self, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        let mut queued = Vec::with_capacity(changes.len());
        for change in changes {
            match change {
                Change::Add {
                    kind,
                    class,
                    id,
                    seq,
                    vector,
                } => {
                    let entry = self.class_or_new(kind, &class);
                    write(&entry.pending).insert(seq, (id, Arc::from(vector)));
                    queued.push(Queued {
                        entry,
                        seq,
                        add: true,
                    });
                }
                Change::Remove { kind, class, seq } => {
                    if let Some(entry) = self.class(kind, &class) {
                        queued.push(Queued {
                            entry,
                            seq,
                            add: false,
                        });
                    }
                }
            }
        }
        let mut backlog = lock(&self.backlog);
        backlog.queue.extend(queued);
        self.backlog_changed.notify_all();
        while backlog.queue.len() > PENDING_MAX && !backlog.closing {
            backlog = self
                .backlog_changed
                .wait(backlog)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The indexer thread's work: adds the pending vectors to their indexes (and removes what
    /// is to be removed), in commit order, a batch at a time, until [`Vectors::close`] and the
    /// queue is empty.
    pub(crate) fn run_indexer(&self) {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        self.rebuild_at_open(threads);
        loop {
            let batch: Vec<Queued> = {
                let mut backlog = lock(&self.backlog);
                backlog.busy = false;
                self.backlog_changed.notify_all();
                while (backlog.queue.is_empty() || backlog.paused) && !backlog.closing {
                    backlog = self
                        .backlog_changed
                        .wait(backlog)
                        .unwrap_or_else(|e| e.into_inner());
                }
                if backlog.queue.is_empty() {
                    return;
                }
                backlog.busy = true;
                let n = backlog.queue.len().min(INDEX_BATCH);
                backlog.queue.drain(..n).collect()
            };
            let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.index(batch, threads)
            }));
            if done.is_err() {
                self.distrust("adding vectors to the HNSW indexes panicked");
            }
        }
    }

    /// One batch of the indexer: the adds, class by class (on up to `threads` threads when
    /// there are many), then the removals.
    fn index(&self, batch: Vec<Queued>, threads: usize) {
        let mut adds: Vec<(Arc<ClassEntry>, Vec<Numbered>)> = Vec::new();
        let mut removes = Vec::new();
        for q in batch {
            if !q.add {
                removes.push(q);
                continue;
            }
            let Some(vector) = read(&q.entry.pending)
                .get(&q.seq)
                .map(|(_, v)| Arc::clone(v))
            else {
                continue;
            };
            match adds.iter_mut().find(|(e, _)| Arc::ptr_eq(e, &q.entry)) {
                Some((_, items)) => items.push((q.seq, vector)),
                None => adds.push((q.entry, vec![(q.seq, vector)])),
            }
        }
        for (entry, items) in adds {
            let threads = if items.len() >= 64 { threads } else { 1 };
            add_many(&entry.index, &items, threads, |e| {
                self.log.warn(&format!(
                    "vector search: an HNSW index refused a vector ({e}); its class is searched exactly"
                ))
            });
            let mut pending = write(&entry.pending);
            for (seq, _) in &items {
                pending.remove(seq);
            }
        }
        for q in removes {
            write(&q.entry.index).remove(q.seq);
        }
    }

    /// Waits until the indexer has done everything queued so far (tests: the HNSW indexes
    /// then hold every committed vector).
    #[cfg(test)]
    pub(crate) fn wait_indexed(&self) {
        let mut backlog = lock(&self.backlog);
        while !backlog.queue.is_empty() || backlog.busy || lock(&self.rebuild).is_some() {
            backlog = self
                .backlog_changed
                .wait(backlog)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Holds the indexer back (`true`) or lets it go on (tests).
    #[cfg(test)]
    pub(crate) fn pause_indexer(&self, paused: bool) {
        lock(&self.backlog).paused = paused;
        self.backlog_changed.notify_all();
    }

    /// How many committed vectors are not yet in an index.
    #[cfg(test)]
    pub(crate) fn pending_count(&self) -> usize {
        read(&self.classes)
            .values()
            .map(|e| read(&e.pending).len())
            .sum()
    }

    /// Tells the indexer to stop once it has done what is queued (the writer has stopped;
    /// the caller then joins the indexer's thread).
    pub(crate) fn close(&self) {
        let mut backlog = lock(&self.backlog);
        backlog.closing = true;
        self.backlog_changed.notify_all();
    }

    /// Marks the indexes as possibly out of step with the store: they are not saved at close.
    pub(crate) fn distrust(&self, why: &str) {
        if self.trusted.swap(false, Ordering::Relaxed) {
            self.log.warn(&format!(
                "vector search: {why}; the HNSW indexes will be rebuilt at the next open"
            ));
        }
    }

    fn class(&self, kind: ObjectKind, class: &str) -> Option<Arc<ClassEntry>> {
        read(&self.classes)
            .get(&(kind_byte(kind), class.to_string()))
            .cloned()
    }

    fn class_or_new(&self, kind: ObjectKind, class: &str) -> Arc<ClassEntry> {
        if let Some(c) = self.class(kind, class) {
            return c;
        }
        let mut classes = write(&self.classes);
        Arc::clone(
            classes
                .entry((kind_byte(kind), class.to_string()))
                .or_insert_with(|| ClassEntry::new(ClassIndex::new())),
        )
    }

    /// The classes of `kind` that ever had a vector since the store opened (or in its files).
    pub(crate) fn classes_of(&self, kind: ObjectKind) -> Vec<String> {
        let kb = kind_byte(kind);
        read(&self.classes)
            .keys()
            .filter(|(k, _)| *k == kb)
            .map(|(_, c)| c.clone())
            .collect()
    }

    /// Saves every index and then the manifest naming the store's vector state (the writer has
    /// stopped: nothing changes any more). Nothing is saved when the indexes are not trusted.
    pub(crate) fn save(&self, db: &Database) -> Result<(), String> {
        if !self.trusted.load(Ordering::Relaxed) {
            return Ok(());
        }
        let seq = db
            .begin_read()
            .map_err(|e| e.to_string())
            .and_then(|tx| stored_seq(&tx).map_err(|e| e.message.to_string()))?;
        let classes = read(&self.classes);
        let mut entries = Vec::new();
        let mut files = HashSet::new();
        for ((kb, class), entry) in classes.iter() {
            let c = write(&entry.index);
            if c.size() == 0 {
                continue;
            }
            let kind = byte_kind(*kb).map_err(|e| e.message.to_string())?;
            let name = file_name(kind, class);
            let path = self.dir.join(&name);
            if let Some(hnsw) = &c.hnsw {
                if c.dirty.load(Ordering::Relaxed) || !path.is_file() {
                    let tmp = self.dir.join(format!("{name}.partial"));
                    let tmp_str = tmp
                        .to_str()
                        .ok_or("the data directory's path is not UTF-8")?;
                    hnsw.save(tmp_str).map_err(|e| io("write", &tmp, e))?;
                    File::open(&tmp)
                        .and_then(|f| f.sync_all())
                        .map_err(|e| io("sync", &tmp, e))?;
                    std::fs::rename(&tmp, &path).map_err(|e| io("rename", &tmp, e))?;
                }
                files.insert(name.clone());
            }
            c.dirty.store(false, Ordering::Relaxed);
            entries.push(serde_json::json!({
                "kind": kb,
                "class": class,
                "file": if c.hnsw.is_some() { serde_json::Value::from(name) } else { serde_json::Value::Null },
                "dimensions": c.hnsw.as_ref().map_or(0, |h| h.dimensions()),
                "size": c.hnsw.as_ref().map_or(0, |h| h.size()),
                "irregular": c.irregular.iter().collect::<Vec<_>>(),
            }));
        }
        // Files of classes that have no vectors any more.
        if let Ok(listing) = std::fs::read_dir(&self.dir) {
            for f in listing.flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                if name.ends_with(".usearch") && !files.contains(&name) {
                    let _ = std::fs::remove_file(f.path());
                }
            }
        }
        sync_dir(&self.dir);
        let manifest = serde_json::json!({
            "format": MANIFEST_FORMAT,
            "seq": seq,
            "indexes": entries,
        });
        let path = self.dir.join(MANIFEST);
        let tmp = self.dir.join(format!("{MANIFEST}.partial"));
        File::create(&tmp)
            .and_then(|mut f| {
                f.write_all(manifest.to_string().as_bytes())?;
                f.sync_all()
            })
            .map_err(|e| io("write", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io("rename", &tmp, e))?;
        sync_dir(&self.dir);
        Ok(())
    }
}

/// Loads one manifest entry's index; on failure names the class (when the entry is readable)
/// and why.
fn load(
    dir: &Path,
    entry: &serde_json::Value,
) -> Result<(ClassKey, ClassIndex), (Option<ClassKey>, String)> {
    let (Some(kb), Some(class)) = (entry["kind"].as_u64(), entry["class"].as_str()) else {
        return Err((None, "the manifest is malformed".into()));
    };
    let key = (kb as u8, class.to_string());
    let fail = |why: String| Err((Some(key.clone()), why));
    let irregular: BTreeSet<u64> = entry["irregular"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_u64())
        .collect();
    let hnsw = match entry["file"].as_str() {
        None => None,
        Some(name) => {
            let path = dir.join(name);
            let dimensions = entry["dimensions"].as_u64().unwrap_or(0) as usize;
            let size = entry["size"].as_u64().unwrap_or(0) as usize;
            let Some(path_str) = path.to_str() else {
                return fail(format!("{} is not a UTF-8 path", path.display()));
            };
            if !path.is_file() {
                return fail(format!("the index file {} is missing", path.display()));
            }
            let loaded = Index::new(&options(dimensions)).and_then(|i| {
                i.load(path_str)?;
                i.change_expansion_search(EXPANSION_SEARCH);
                i.reserve_capacity_and_threads(i.capacity().max(i.size() + 64), INDEX_THREADS)?;
                Ok(i)
            });
            match loaded {
                Ok(i) if i.size() == size && i.dimensions() == dimensions => Some(i),
                Ok(i) => {
                    return fail(format!(
                        "the index file {} holds {} vectors of {} dimensions, its manifest says {size} of {dimensions}",
                        path.display(),
                        i.size(),
                        i.dimensions()
                    ))
                }
                Err(e) => return fail(io("load", &path, e)),
            }
        }
    };
    Ok((
        key,
        ClassIndex {
            hnsw,
            irregular,
            dirty: AtomicBool::new(false),
        },
    ))
}

/// The kinds and classes that have stored vectors (one look-up per class: each skips past the
/// last possible key of the one before).
fn stored_classes(tx: &ReadTransaction) -> PluginResult<Vec<ClassKey>> {
    let keys = tx.open_table(VECTOR_KEYS).map_err(st)?;
    let mut found = Vec::new();
    let mut from: Vec<u8> = Vec::new();
    loop {
        let next = keys.range(&from[..]..).map_err(st)?.next();
        let Some(item) = next else {
            return Ok(found);
        };
        let (k, _) = item.map_err(st)?;
        let (kind, class, _) = parse_key(k.value())?;
        from = class_range(kind, &class).1;
        from.push(0);
        found.push((kind_byte(kind), class));
    }
}

/// Vectors a rebuild reads before it adds them.
const REBUILD_RUN: usize = 65_536;

/// Adds `items` to `index`: on `threads` threads (shared) once the index exists and has room,
/// the rest (the first, irregular ones, any refused shared) exclusively; `refused` hears why
/// the index would not take one.
fn add_many<V: AsRef<[f32]> + Sync>(
    index: &RwLock<ClassIndex>,
    items: &[(u64, V)],
    threads: usize,
    refused: impl Fn(String),
) {
    let mut rest = items;
    // Until the index exists, one at a time.
    while let Some(((seq, v), tail)) = rest.split_first() {
        if read(index).hnsw.is_some() {
            break;
        }
        if let Err(e) = write(index).add(*seq, v.as_ref()) {
            refused(e);
        }
        rest = tail;
    }
    write(index).reserve(rest.len());
    let chunk = rest.len().div_ceil(threads.max(1)).max(1);
    let left: Vec<&(u64, V)> = std::thread::scope(|s| {
        let handles: Vec<_> = rest
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    let shared = read(index);
                    part.iter()
                        .filter(|(seq, v)| !shared.add_shared(*seq, v.as_ref()))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    for (seq, v) in left {
        if let Err(e) = write(index).add(*seq, v.as_ref()) {
            refused(e);
        }
    }
}

// ----- reads -------------------------------------------------------------------------------------

/// The vector stored with the current object `kind`/`id`, if any.
pub(crate) fn get_vector(
    tx: &ReadTransaction,
    kind: ObjectKind,
    id: Id,
) -> PluginResult<Option<Vec<f32>>> {
    let vectors = tx.open_table(VECTORS).map_err(st)?;
    let found = vectors.get(&object_key(kind, id)[..]).map_err(st)?;
    found.map(|g| decode(g.value()).map(|(_, v)| v)).transpose()
}

/// The tables a search reads, from one snapshot.
struct Snapshot {
    vectors: redb::ReadOnlyTable<Bytes, Bytes>,
    keys: redb::ReadOnlyTable<Bytes, Bytes>,
    objects: redb::ReadOnlyTable<Bytes, Bytes>,
}

impl Snapshot {
    fn open(tx: &ReadTransaction) -> PluginResult<Self> {
        Ok(Snapshot {
            vectors: tx.open_table(VECTORS).map_err(st)?,
            keys: tx.open_table(VECTOR_KEYS).map_err(st)?,
            objects: tx.open_table(OBJECTS).map_err(st)?,
        })
    }

    /// The object with the vector `seq` of `class`, when that is still its vector: its id.
    fn id_of(&self, kind: ObjectKind, class: &str, seq: u64) -> Option<Id> {
        let found = self.keys.get(&vector_key(kind, class, seq)[..]).ok()??;
        id_of(found.value()).ok()
    }

    /// The stored vector of `kind`/`id` when its sequence number is `seq` (any when `None`).
    fn vector(&self, kind: ObjectKind, id: Id, seq: Option<u64>) -> PluginResult<Option<Vec<f32>>> {
        let Some(found) = self.vectors.get(&object_key(kind, id)[..]).map_err(st)? else {
            return Ok(None);
        };
        let (stored, vector) = decode(found.value())?;
        Ok((seq.is_none_or(|s| s == stored)).then_some(vector))
    }

    fn object(&self, kind: ObjectKind, id: Id) -> PluginResult<Option<StoredObject>> {
        let found = self.objects.get(&object_key(kind, id)[..]).map_err(st)?;
        Ok(found
            .map(|g| Entry::decode_current(g.value()))
            .transpose()?
            .flatten())
    }
}

/// The search's state: its query, the best hits so far, and (when restricted) the allowed
/// objects by id.
struct Search<'a> {
    query: &'a VectorQuery,
    k: usize,
    best: Nearest,
    allowed: Option<&'a HashMap<Id, StoredObject>>,
    snapshot: Snapshot,
}

impl Search<'_> {
    /// Offers the object `id` of `class` with its stored `vector`; answers whether it is within
    /// the query's distance.
    fn offer(&mut self, class: &str, id: Id, vector: &[f32]) -> PluginResult<bool> {
        let distance = cosine_distance(vector, &self.query.vector);
        if distance.is_nan() || distance > self.query.max_distance {
            return Ok(false);
        }
        if self.best.would_keep(id, distance) {
            let object = match self.allowed {
                Some(allowed) => allowed.get(&id).cloned(),
                None => self.snapshot.object(self.query.kind, id)?,
            };
            if let Some(o) = object.filter(|o| o.class.as_str() == class) {
                self.best.offer(id, distance, || o);
            }
        }
        Ok(true)
    }

    /// The class's vectors not yet in its index, compared with the query.
    fn pending(
        &mut self,
        class: &str,
        pending: &RwLock<HashMap<u64, Pending>>,
    ) -> PluginResult<()> {
        let mut near: Vec<(f32, Id, u64, Arc<[f32]>)> = read(pending)
            .iter()
            .filter(|(_, (id, _))| self.allowed.is_none_or(|a| a.contains_key(id)))
            .filter_map(|(seq, (id, v))| {
                let d = cosine_distance(v, &self.query.vector);
                (d <= self.query.max_distance).then(|| (d, *id, *seq, Arc::clone(v)))
            })
            .collect();
        near.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        for (d, id, seq, v) in near {
            if !self.best.would_keep(id, d) {
                break;
            }
            // Still the object's vector in this snapshot (a pending one may be newer or gone).
            if self
                .snapshot
                .vector(self.query.kind, id, Some(seq))?
                .is_some()
            {
                self.offer(class, id, &v)?;
            }
        }
        Ok(())
    }

    /// Every vector of `class`, compared with the query.
    fn exact_class(&mut self, class: &str) -> PluginResult<()> {
        let kind = self.query.kind;
        let (lo, hi) = class_range(kind, class);
        let mut found = Vec::new();
        for item in self.snapshot.keys.range(&lo[..]..=&hi[..]).map_err(st)? {
            let (k, v) = item.map_err(st)?;
            let (_, _, seq) = parse_key(k.value())?;
            found.push((seq, id_of(v.value())?));
        }
        for (seq, id) in found {
            if self.allowed.is_some_and(|a| !a.contains_key(&id)) {
                continue;
            }
            if let Some(v) = self.snapshot.vector(kind, id, Some(seq))? {
                self.offer(class, id, &v)?;
            }
        }
        Ok(())
    }

    /// The class's HNSW index searched for the query (filtered by the allow-list when there is
    /// one), asking for more than `k` while hits are dropped (changed since, out of distance);
    /// `Ok(false)` when the index cannot answer (then the caller searches exactly).
    fn approximate(&mut self, class: &str, hnsw: &Index) -> PluginResult<bool> {
        let kind = self.query.kind;
        let size = hnsw.size();
        if size == 0 {
            return Ok(true);
        }
        let mut ask = (self.k.saturating_add(self.k / 2).saturating_add(8)).min(size);
        let mut seen = HashSet::new();
        let mut within = 0usize;
        loop {
            let matches = match self.allowed {
                None => hnsw.search(self.query.vector.as_slice(), ask),
                Some(allowed) => {
                    let snapshot = &self.snapshot;
                    hnsw.filtered_search(self.query.vector.as_slice(), ask, |seq| {
                        snapshot
                            .id_of(kind, class, seq)
                            .is_some_and(|id| allowed.contains_key(&id))
                    })
                }
            };
            let Ok(matches) = matches else {
                return Ok(false);
            };
            for &seq in &matches.keys {
                if !seen.insert(seq) {
                    continue;
                }
                let Some(id) = self.snapshot.id_of(kind, class, seq) else {
                    continue;
                };
                if self.allowed.is_some_and(|a| !a.contains_key(&id)) {
                    continue;
                }
                if let Some(v) = self.snapshot.vector(kind, id, Some(seq))? {
                    if self.offer(class, id, &v)? {
                        within += 1;
                    }
                }
            }
            // The index's distances are those of the reference up to quantization: once one is
            // beyond the query's by more than that, so are the rest.
            let beyond = matches
                .distances
                .last()
                .is_some_and(|d| *d > self.query.max_distance + quantization_slack(hnsw));
            if within >= self.k || beyond || ask >= size {
                return Ok(true);
            }
            ask = ask.saturating_mul(4).min(size);
        }
    }
}

/// The query's `k` nearest among the vectors of `classes` (and of the objects in `allowed`,
/// when given: the allow-list of a restricted query), through each class's HNSW index where
/// it can answer, else exactly.
pub(crate) fn nearest(
    vectors: &Vectors,
    tx: &ReadTransaction,
    query: &VectorQuery,
    classes: &[String],
    allowed: Option<&HashMap<Id, StoredObject>>,
) -> PluginResult<Vec<VectorHit>> {
    let k = usize::try_from(query.k).unwrap_or(usize::MAX);
    let mut search = Search {
        query,
        k,
        best: Nearest::new(k),
        allowed,
        snapshot: Snapshot::open(tx)?,
    };
    for class in classes {
        let Some(entry) = vectors.class(query.kind, class) else {
            continue;
        };
        // Pending first: a vector the indexer moves meanwhile is then found in the index.
        // While the indexes are rebuilt after open, every class is searched exactly.
        let searchable = !vectors.rebuilding.load(Ordering::Acquire)
            && read(&entry.index).searchable(&query.vector).is_some();
        if searchable {
            search.pending(class, &entry.pending)?;
        }
        let index = read(&entry.index);
        let answered = match index.searchable(&query.vector) {
            Some(hnsw) if searchable => search.approximate(class, hnsw)?,
            _ => false,
        };
        drop(index);
        if !answered {
            search.exact_class(class)?;
        }
    }
    Ok(search.best.into_hits())
}

/// The query's `k` nearest among `allowed` (the objects a restricted query allows, from the
/// snapshot `tx`), each compared with the query.
pub(crate) fn exact_among(
    tx: &ReadTransaction,
    query: &VectorQuery,
    allowed: Vec<StoredObject>,
) -> PluginResult<Vec<VectorHit>> {
    let k = usize::try_from(query.k).unwrap_or(usize::MAX);
    let vectors = tx.open_table(VECTORS).map_err(st)?;
    let mut best = Nearest::new(k);
    for o in allowed {
        let Some(found) = vectors.get(&object_key(o.kind, o.id)[..]).map_err(st)? else {
            continue;
        };
        let (_, vector) = decode(found.value())?;
        let distance = cosine_distance(&vector, &query.vector);
        if distance <= query.max_distance {
            best.offer(o.id, distance, || o);
        }
    }
    Ok(best.into_hits())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{
        create_object_with_vector, delete_object, update_object, update_object_with_vector, Store,
        FORMAT_VERSION,
    };
    use abi_stable::std_types::{RString, RVec};
    use futures::executor::block_on;
    use weft_plugin_api::vector::exact_nearest;
    use weft_plugin_api::{now_ms, HostLogger};

    const DIMS: usize = 8;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn vector(&mut self) -> Vec<f32> {
            (0..DIMS)
                .map(|_| (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
                .collect()
        }
    }

    fn log() -> PluginLogger {
        PluginLogger::new(HostLogger::discard(), "embedded")
    }

    fn temp_dir(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "weft-embedded-vectors-{name}-{}-{}",
            std::process::id(),
            now_ms()
        ))
    }

    const OWNERS: [Id; 3] = [Id([1; 16]), Id([2; 16]), Id([3; 16])];

    fn object(i: usize, kind: ObjectKind, class: &str) -> StoredObject {
        StoredObject {
            kind,
            id: Id::random(),
            class: class.into(),
            context: RString::new(),
            owner: OWNERS[i % 3],
            created_ms: i as i64,
            updated_ms: i as i64,
            properties_json: format!(r#"{{"n":{i}}}"#).into(),
        }
    }

    /// What the store should hold: every current object with its vector (empty: none).
    type Held = Vec<(StoredObject, Vec<f32>)>;

    fn create(store: &Store, held: &mut Held, o: StoredObject, v: Vec<f32>) {
        let (o2, v2) = (o.clone(), v.clone());
        block_on(store.submit(move |tx| create_object_with_vector(tx, o2, v2)))
            .unwrap()
            .unwrap();
        held.push((o, v));
    }

    /// Creates `n` Things of classes City and Town and `n / 10` Actions, with vectors (every
    /// 17th none); then updates every 5th with a new vector, every 7th without one, and deletes
    /// every 11th.
    fn fill(store: &Store, held: &mut Held, rng: &mut Rng, n: usize) {
        let start = held.len();
        for i in 0..n {
            let class = if i.is_multiple_of(3) { "Town" } else { "City" };
            let v = if i.is_multiple_of(17) {
                vec![]
            } else {
                rng.vector()
            };
            create(store, held, object(i, ObjectKind::Thing, class), v);
            if i.is_multiple_of(10) {
                let v = rng.vector();
                create(store, held, object(i, ObjectKind::Action, "Visit"), v);
            }
        }
        let (mut i, mut n) = (start, 0usize);
        while i < held.len() {
            let (o, _) = held[i].clone();
            n += 1;
            if n.is_multiple_of(11) {
                block_on(store.submit(move |tx| delete_object(tx, o.kind, o.id)))
                    .unwrap()
                    .unwrap();
                held.remove(i);
                continue;
            }
            if n.is_multiple_of(5) {
                let v = rng.vector();
                let (o2, v2) = (o.clone(), v.clone());
                block_on(store.submit(move |tx| update_object_with_vector(tx, o2, None, v2)))
                    .unwrap()
                    .unwrap();
                held[i].1 = v;
            } else if n.is_multiple_of(7) {
                let o2 = o.clone();
                block_on(store.submit(move |tx| update_object(tx, o2, None)))
                    .unwrap()
                    .unwrap();
                held[i].1 = vec![];
            }
            i += 1;
        }
    }

    fn query(kind: ObjectKind, class: &str, v: Vec<f32>, k: u64) -> VectorQuery {
        VectorQuery {
            kind,
            class: class.into(),
            owners: RVec::new(),
            filter_json: RString::new(),
            vector: v.into(),
            k,
            max_distance: 2.0,
        }
    }

    /// `got` against the exact answer over the objects of `held` that `allowed` lets through:
    /// only those, true distances, nearest first, as many; answers the recall.
    fn judge(
        got: &[VectorHit],
        q: &VectorQuery,
        held: &Held,
        allowed: impl Fn(&StoredObject) -> bool,
    ) -> f64 {
        let pass: Vec<_> = held.iter().filter(|(o, _)| allowed(o)).collect();
        let want = exact_nearest(
            pass.iter().map(|(o, v)| (o, v.as_slice())),
            &q.vector,
            q.k as usize,
            q.max_distance,
        );
        assert_eq!(got.len(), want.len(), "{q:?}");
        for (i, hit) in got.iter().enumerate() {
            let (o, v) = pass
                .iter()
                .find(|(o, _)| o.id == hit.object.id)
                .unwrap_or_else(|| panic!("hit {i} is not allowed or has no vector"));
            assert_eq!(&hit.object, o);
            assert!((hit.distance - cosine_distance(v, &q.vector)).abs() < 1e-6);
            if i > 0 {
                assert!(got[i - 1].distance <= hit.distance);
            }
        }
        if want.is_empty() {
            return 1.0;
        }
        let found = want
            .iter()
            .filter(|w| got.iter().any(|h| h.object.id == w.object.id))
            .count();
        found as f64 / want.len() as f64
    }

    /// Questions of every shape (kind, one class or all, owners, a filter), each answered like
    /// the exact search (recall at least 0.9 over all), through the HNSW indexes and, with
    /// `exact_max` 0, through them with a filter too; `get_vector` answers every held vector.
    fn check(store: &Store, held: &Held, rng: &mut Rng) {
        for (o, v) in held {
            let got = store.get_vector(o.kind, o.id).unwrap();
            assert_eq!(got, (!v.is_empty()).then(|| v.clone()));
        }
        let (mut recall, mut n) = (0.0, 0.0);
        for round in 0..24 {
            let (kind, class) = [
                (ObjectKind::Thing, ""),
                (ObjectKind::Thing, "City"),
                (ObjectKind::Thing, "Town"),
                (ObjectKind::Action, ""),
            ][round % 4];
            let mut q = query(kind, class, rng.vector(), 10);
            let restricted = round % 3;
            if restricted == 1 {
                q.owners = vec![OWNERS[1]].into();
            } else if restricted == 2 {
                q.filter_json = r#"{"operator":"GreaterThan","path":["n"],"valueInt":40}"#.into();
            }
            let allowed = |o: &StoredObject| {
                o.kind == kind
                    && (class.is_empty() || o.class.as_str() == class)
                    && (restricted != 1 || o.owner == OWNERS[1])
                    && (restricted != 2 || o.properties()["n"].as_i64().is_some_and(|n| n > 40))
            };
            for exact_max in [EXACT_SEARCH_MAX, 0] {
                let got = store.search_vectors_with(&q, exact_max).unwrap();
                recall += judge(&got, &q, held, allowed);
                n += 1.0;
            }
        }
        assert!(recall / n >= 0.9, "recall {}", recall / n);
    }

    /// While the indexer is behind (paused), new, updated and deleted vectors are committed
    /// and acknowledged: searches find them (and never a replaced or deleted one) as the exact
    /// search does; once it has caught up nothing is pending, and they still do.
    #[test]
    fn searches_while_the_indexer_is_behind_answer_every_acknowledged_write() {
        let dir = temp_dir("behind");
        let store = Store::open(&dir, log()).unwrap();
        let (mut held, mut rng) = (Held::new(), Rng(0x5eed_0001));
        fill(&store, &mut held, &mut rng, 300);
        store.vectors().wait_indexed();
        assert_eq!(store.vectors().pending_count(), 0);
        store.vectors().pause_indexer(true);
        // Indexed objects changed while the indexer waits: new vectors for some, others deleted.
        for (o, held_v) in held.iter_mut().take(40) {
            let v = rng.vector();
            let (o2, v2) = (o.clone(), v.clone());
            block_on(store.submit(move |tx| update_object_with_vector(tx, o2, None, v2)))
                .unwrap()
                .unwrap();
            *held_v = v;
        }
        for _ in 0..20 {
            let (o, _) = held.remove(50);
            block_on(store.submit(move |tx| delete_object(tx, o.kind, o.id)))
                .unwrap()
                .unwrap();
        }
        fill(&store, &mut held, &mut rng, 200);
        let behind = store.vectors().pending_count();
        assert!(behind > 200, "only {behind} vectors pending");
        check(&store, &held, &mut rng);
        // The queries that see pending vectors answer exactly: ask for every City.
        let cities = held
            .iter()
            .filter(|(o, v)| {
                o.class.as_str() == "City" && !v.is_empty() && o.kind == ObjectKind::Thing
            })
            .count();
        let q = query(ObjectKind::Thing, "City", rng.vector(), cities as u64);
        let got = store.search_vectors(&q).unwrap();
        assert_eq!(got.len(), cities, "every City with a vector, once");
        store.vectors().pause_indexer(false);
        store.vectors().wait_indexed();
        assert_eq!(store.vectors().pending_count(), 0);
        check(&store, &held, &mut rng);
        drop(store);
        let store = Store::open(&dir, log()).unwrap();
        check(&store, &held, &mut rng);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// After an open that must rebuild the indexes (no manifest: the last run did not close),
    /// searches are exact until the rebuild is done, writes meanwhile are found too, and once
    /// it is done the indexes hold everything.
    #[test]
    fn searches_are_exact_while_the_indexes_are_rebuilt_after_open() {
        let dir = temp_dir("rebuilding");
        let (mut held, mut rng) = (Held::new(), Rng(0x5eed_0002));
        {
            let store = Store::open(&dir, log()).unwrap();
            fill(&store, &mut held, &mut rng, 300);
        }
        std::fs::remove_file(dir.join("vectors").join(MANIFEST)).unwrap();
        let vectors_dir = std::fs::canonicalize(&dir).unwrap().join("vectors");
        lock(&HOLD_REBUILD).push(vectors_dir.clone());
        let store = Store::open(&dir, log()).unwrap();
        assert!(store.vectors().rebuilding.load(Ordering::Acquire));
        let empty: usize = read(&store.vectors().classes)
            .values()
            .map(|e| read(&e.index).size())
            .sum();
        assert_eq!(empty, 0, "nothing is indexed before the rebuild");
        check(&store, &held, &mut rng);
        fill(&store, &mut held, &mut rng, 100);
        check(&store, &held, &mut rng);
        let things = held
            .iter()
            .filter(|(o, v)| o.kind == ObjectKind::Thing && !v.is_empty())
            .count();
        let q = query(ObjectKind::Thing, "", rng.vector(), things as u64);
        assert_eq!(store.search_vectors(&q).unwrap().len(), things);
        lock(&HOLD_REBUILD).retain(|d| d != &vectors_dir);
        let (loaded, built) = store.vectors_at_open();
        assert_eq!(loaded, 0);
        assert!(built > 0 && built <= vector_count(&held), "{built}");
        assert!(!store.vectors().rebuilding.load(Ordering::Acquire));
        store.vectors().wait_indexed();
        assert_eq!(store.vectors().pending_count(), 0);
        check(&store, &held, &mut rng);
        drop(store);
        let store = Store::open(&dir, log()).unwrap();
        assert_eq!(store.vectors_at_open(), (vector_count(&held), 0));
        check(&store, &held, &mut rng);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn vector_count(held: &Held) -> usize {
        held.iter().filter(|(_, v)| !v.is_empty()).count()
    }

    /// Vectors and their indexes survive closing and reopening (loaded from the saved files,
    /// not rebuilt); a missing index file is rebuilt from the store; saved files that do not
    /// reflect the store (older than its last writes) or no manifest at all are rebuilt whole.
    #[test]
    fn vectors_survive_reopening_and_stale_or_missing_indexes_are_rebuilt() {
        let dir = temp_dir("reopen");
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let mut held = Held::new();
        let store = Store::open(&dir, log()).unwrap();
        assert_eq!(store.vectors_at_open(), (0, 0));
        fill(&store, &mut held, &mut rng, 300);
        check(&store, &held, &mut rng);
        drop(store);
        let vectors_dir = dir.join("vectors");
        assert!(vectors_dir.join(MANIFEST).is_file());
        let count = vector_count(&held);

        // Reopened: every index loaded from its file.
        let store = Store::open(&dir, log()).unwrap();
        assert_eq!(store.vectors_at_open(), (count, 0));
        assert!(!vectors_dir.join(MANIFEST).exists(), "removed while open");
        check(&store, &held, &mut rng);
        drop(store);

        // The City index's file is gone: rebuilt from the store, the others loaded.
        let city = vectors_dir.join(file_name(ObjectKind::Thing, "City"));
        std::fs::remove_file(&city).unwrap();
        let store = Store::open(&dir, log()).unwrap();
        let cities = held
            .iter()
            .filter(|(o, v)| o.class.as_str() == "City" && !v.is_empty())
            .count();
        assert_eq!(store.vectors_at_open(), (count - cities, cities));
        check(&store, &held, &mut rng);
        drop(store);
        assert!(city.is_file(), "saved again at close");

        // Files that reflect an older state of the store (as after a crash): rebuilt whole.
        let old = temp_dir("reopen-old-indexes");
        std::fs::create_dir_all(&old).unwrap();
        for f in std::fs::read_dir(&vectors_dir).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), old.join(f.file_name())).unwrap();
        }
        let store = Store::open(&dir, log()).unwrap();
        fill(&store, &mut held, &mut rng, 60);
        drop(store);
        for f in std::fs::read_dir(&old).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), vectors_dir.join(f.file_name())).unwrap();
        }
        let store = Store::open(&dir, log()).unwrap();
        assert_eq!(store.vectors_at_open(), (0, vector_count(&held)));
        check(&store, &held, &mut rng);
        drop(store);

        // No manifest (the last run did not close): rebuilt whole.
        std::fs::remove_file(vectors_dir.join(MANIFEST)).unwrap();
        let store = Store::open(&dir, log()).unwrap();
        assert_eq!(store.vectors_at_open(), (0, vector_count(&held)));
        check(&store, &held, &mut rng);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&old);
    }

    /// Vectors the HNSW index cannot hold (zero, another length) make their class searched
    /// exactly, and a query it cannot search (zero, another length) is answered exactly: the
    /// reference's answers to the last tie.
    #[test]
    fn irregular_vectors_and_queries_are_answered_exactly() {
        let dir = temp_dir("irregular");
        let mut rng = Rng(0x0fed_cba9_8765_4321);
        let mut held = Held::new();
        let store = Store::open(&dir, log()).unwrap();
        for i in 0..60usize {
            let v = match i % 10 {
                2 => vec![0.0; DIMS],
                4 => vec![1.0, 2.0, 3.0],
                _ => rng.vector(),
            };
            let class = if i.is_multiple_of(2) { "Odd" } else { "Plain" };
            create(&store, &mut held, object(i, ObjectKind::Thing, class), v);
        }
        for round in 0..3 {
            for v in [vec![0.0; DIMS], vec![1.0, 0.5], rng.vector(), vec![]] {
                let class = ["", "Odd", "Plain"][round];
                let q = query(ObjectKind::Thing, class, v, 25);
                let got = store.search_vectors(&q).unwrap();
                let want = exact_nearest(
                    held.iter()
                        .filter(|(o, _)| class.is_empty() || o.class.as_str() == class)
                        .map(|(o, v)| (o, v.as_slice())),
                    &q.vector,
                    25,
                    2.0,
                );
                if class == "Plain" && q.vector.len() == DIMS && q.vector.iter().any(|x| *x != 0.0)
                {
                    // Through the HNSW index: by recall.
                    let r = judge(&got, &q, &held, |o| o.class.as_str() == "Plain");
                    assert!(r >= 0.9, "recall {r}");
                } else {
                    assert_eq!(got, want, "{q:?}");
                }
            }
        }
        drop(store);
        // Irregular vectors are remembered by the saved indexes too.
        let store = Store::open(&dir, log()).unwrap();
        assert_eq!(store.vectors_at_open().1, 0);
        let q = query(ObjectKind::Thing, "Odd", vec![1.0, 2.0, 3.0], 10);
        let got = store.search_vectors(&q).unwrap();
        assert!(got.len() == 10 && got[0].distance < 1e-6, "{got:?}");
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Opening a store logs usearch's SIMD kernels (compiled, and available on this CPU) once.
    #[test]
    fn opening_logs_the_simd_kernels() {
        static LINES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
        extern "C" fn capture(
            _: weft_plugin_api::LogLevel,
            _: abi_stable::std_types::RStr<'_>,
            message: abi_stable::std_types::RStr<'_>,
        ) {
            if let Ok(mut lines) = LINES.lock() {
                lines.push(message.to_string());
            }
        }
        let dir = temp_dir("log");
        let host = HostLogger { log: capture };
        drop(Store::open(&dir, PluginLogger::new(host, "embedded")).unwrap());
        let lines = LINES.lock().unwrap();
        let simd: Vec<_> = lines
            .iter()
            .filter(|l| l.contains("SIMD kernels"))
            .collect();
        assert_eq!(simd.len(), 1, "{lines:?}");
        assert!(simd[0].contains(&usearch::hardware_acceleration_available()));
        println!("{}", simd[0]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A format version 5 file (no vector tables) opens, holds no vectors, and takes them.
    #[test]
    fn a_format_5_file_opens_without_vectors() {
        let dir = temp_dir("format5");
        let mut rng = Rng(0x5555_aaaa_5555_aaab);
        let mut held = Held::new();
        let store = Store::open(&dir, log()).unwrap();
        create(
            &store,
            &mut held,
            object(1, ObjectKind::Thing, "City"),
            rng.vector(),
        );
        drop(store);
        {
            let db = Database::create(dir.join("weft.redb")).unwrap();
            let tx = db.begin_write().unwrap();
            tx.delete_table(VECTORS).unwrap();
            tx.delete_table(VECTOR_KEYS).unwrap();
            {
                let mut meta = tx.open_table(META).unwrap();
                meta.remove(SEQ_KEY).unwrap();
                meta.insert("format_version", 5).unwrap();
            }
            tx.commit().unwrap();
        }
        std::fs::remove_dir_all(dir.join("vectors")).unwrap();
        let store = Store::open(&dir, log()).unwrap();
        let o = held[0].0.clone();
        assert_eq!(store.get_vector(o.kind, o.id).unwrap(), None);
        assert!(store.get_object(o.kind, o.id).unwrap().is_some());
        let q = query(ObjectKind::Thing, "", rng.vector(), 10);
        assert!(store.search_vectors(&q).unwrap().is_empty());
        let v = rng.vector();
        let o2 = o.clone();
        let v2 = v.clone();
        block_on(store.submit(move |tx| update_object_with_vector(tx, o2, None, v2)))
            .unwrap()
            .unwrap();
        assert_eq!(store.get_vector(o.kind, o.id).unwrap(), Some(v));
        drop(store);
        let db = Database::create(dir.join("weft.redb")).unwrap();
        let tx = db.begin_read().unwrap();
        let meta = tx.open_table(META).unwrap();
        let version = meta.get("format_version").unwrap().map(|g| g.value());
        assert_eq!(version, Some(FORMAT_VERSION));
        assert_eq!(FORMAT_VERSION, 6);
        drop((meta, tx, db));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
