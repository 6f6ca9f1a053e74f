//! The store itself: plain synchronous code over the files of [`crate::disk`], and the
//! contract's calls on it (`impl weft_connector_sdk::Store for JsonFileStore`, the one place to
//! read what each call must do).
//!
//! Layout under the configured directory:
//!
//! ```text
//! weft-store.json            marker: {"format": 1, "plugin": "..."}
//! things/<uuid>.json         one Thing: current version (null once deleted), its version
//!                            number and its history
//! actions/<uuid>.json        one Action, likewise (a separate id space)
//! keys/<uuid>.json           one key of the key tree
//! documents/ontology.json    {"version": n, "json": "..."}
//! documents/connector-state.json
//! ```
//!
//! **Atomicity.** Every method takes one process-wide lock (`LOCK`, a `std::sync::Mutex`) for
//! its whole duration, so concurrent calls never interleave (no lost update, compare-and-set
//! is exact: `put_document` and `update_object_if` read, compare and write under it). Every change of one object, key or document is one atomic file replacement
//! ([`crate::disk::write_json`]), so a crash never leaves half a change. The one multi-file
//! change, deleting a key subtree, removes the deepest keys first: if it is interrupted, what
//! remains is still a valid tree, and deleting the key again finishes the job.
//!
//! **Limits** (fine for a template, worth knowing before copying): one process per directory
//! (the lock is per process; a second `weft` on the same directory would race — take an OS
//! file lock to prevent it); queries read every file of their kind (no index); an object's
//! file grows with its history.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use abi_stable::std_types::{ROption, RVec};
use weft_connector_sdk::support::{self, QueryMatcher};
use weft_connector_sdk::{Call, Run};
use weft_plugin_api::{
    now_ms, DocumentName, Id, ObjectHistory, ObjectKind, ObjectPage, ObjectQuery, PluginError,
    PluginLogger, PluginResult, StoredKey, StoredObject, VersionedDocument, VersionedObject,
};

use crate::disk::{self, DocumentRecord, KeyRecord, Marker, ObjectFile, ObjectRecord};
use crate::disk::{VersionRecord, FORMAT};

/// The process-wide lock every store operation holds (see the module docs). A panic while it
/// is held cannot leave a half-written file (writes are atomic renames), so a poisoned lock is
/// safe to take over.
static LOCK: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

const MARKER: &str = "weft-store.json";
const SUBDIRS: [&str; 4] = ["things", "actions", "keys", "documents"];

/// A store in one directory.
pub struct JsonFileStore {
    root: PathBuf,
    fsync: bool,
}

fn kind_dir(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Thing => "things",
        ObjectKind::Action => "actions",
    }
}

fn document_file(name: DocumentName) -> &'static str {
    match name {
        DocumentName::Ontology => "ontology.json",
        DocumentName::ConnectorState => "connector-state.json",
    }
}

/// Looks up referenced objects for filters and aggregates, reading each file at most once.
/// The resolver callback of [`weft_plugin_api::filter`] cannot fail, so the first I/O error is
/// kept and reported by [`Resolver::finish`] instead of being turned into "no such object".
struct Resolver<'a> {
    store: &'a JsonFileStore,
    cache: RefCell<HashMap<(ObjectKind, Id), Option<StoredObject>>>,
    error: RefCell<Option<PluginError>>,
}

impl<'a> Resolver<'a> {
    fn new(store: &'a JsonFileStore, known: &[StoredObject]) -> Self {
        let cache = known
            .iter()
            .map(|o| ((o.kind, o.id), Some(o.clone())))
            .collect();
        Resolver {
            store,
            cache: RefCell::new(cache),
            error: RefCell::new(None),
        }
    }

    fn get(&self, kind: ObjectKind, id: Id) -> Option<StoredObject> {
        if let Some(hit) = self.cache.borrow().get(&(kind, id)) {
            return hit.clone();
        }
        let found = match self.store.read_object(kind, id) {
            Ok(file) => file.and_then(|(_, current)| current),
            Err(e) => {
                self.error.borrow_mut().get_or_insert(e);
                None
            }
        };
        self.cache.borrow_mut().insert((kind, id), found.clone());
        found
    }

    fn finish(self) -> PluginResult<()> {
        match self.error.into_inner() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl JsonFileStore {
    /// Opens (creating when needed) the store in `root`.
    ///
    /// * `root` exists but is a file: `Invalid`.
    /// * `root` is a non-empty directory without the marker file: `Invalid` (it is not a store
    ///   of this connector; refusing protects whatever is there).
    /// * the marker has another format: `Invalid`.
    /// * it cannot be created or read: `Unavailable`.
    pub fn open(root: PathBuf, fsync: bool, log: &PluginLogger) -> PluginResult<JsonFileStore> {
        let _guard = lock();
        if root.exists() && !root.is_dir() {
            return Err(PluginError::invalid(format!(
                "database_config.path {} is a file; it must be a directory (it is created when missing)",
                root.display()
            )));
        }
        fs::create_dir_all(&root).map_err(|e| disk::io_error("create the directory", &root, &e))?;
        let marker_path = root.join(MARKER);
        match disk::read_json::<Marker>(&marker_path)? {
            Some(m) if m.format == FORMAT => {}
            Some(m) => {
                return Err(PluginError::invalid(format!(
                    "{} is a store of format {}, but this connector reads format {FORMAT}; use a connector version that matches, or a new directory",
                    root.display(),
                    m.format
                )))
            }
            None => {
                let mut entries =
                    fs::read_dir(&root).map_err(|e| disk::io_error("list", &root, &e))?;
                if entries.next().is_some() {
                    return Err(PluginError::invalid(format!(
                        "database_config.path {} is not empty and holds no {MARKER}, so it is not a store of this connector; give a new or empty directory",
                        root.display()
                    )));
                }
                let marker = Marker {
                    format: FORMAT,
                    plugin: crate::PLUGIN_NAME.to_string(),
                };
                disk::write_json(&marker_path, &marker, fsync)?;
                log.info(&format!("created a new store in {}", root.display()));
            }
        }
        for sub in SUBDIRS {
            let dir = root.join(sub);
            fs::create_dir_all(&dir)
                .map_err(|e| disk::io_error("create the directory", &dir, &e))?;
            let stale = disk::remove_stale_temp_files(&dir)?;
            if stale > 0 {
                log.warn(&format!(
                    "removed {stale} temporary file(s) of interrupted writes in {}",
                    dir.display()
                ));
            }
        }
        Ok(JsonFileStore { root, fsync })
    }

    /// The directory the store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    // ---- objects ----------------------------------------------------------------------

    fn object_path(&self, kind: ObjectKind, id: Id) -> PathBuf {
        self.root.join(kind_dir(kind)).join(format!("{id}.json"))
    }

    /// The object's file and its current version (`None` when deleted); `None` when the id
    /// was never used.
    fn read_object(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> PluginResult<Option<(ObjectFile, Option<StoredObject>)>> {
        let path = self.object_path(kind, id);
        let Some(file) = disk::read_json::<ObjectFile>(&path)? else {
            return Ok(None);
        };
        let current = match &file.current {
            Some(record) => Some(record.to_stored(kind, &path)?),
            None => None,
        };
        Ok(Some((file, current)))
    }

    /// Every current (not deleted) object of `kind`.
    fn current_objects(&self, kind: ObjectKind) -> PluginResult<Vec<StoredObject>> {
        let mut objects = Vec::new();
        for path in disk::list_json(&self.root.join(kind_dir(kind)))? {
            let Some(file) = disk::read_json::<ObjectFile>(&path)? else {
                continue; // deleted between listing and reading: cannot happen under the lock
            };
            if let Some(record) = &file.current {
                objects.push(record.to_stored(kind, &path)?);
            }
        }
        Ok(objects)
    }

    /// Current objects matching `query`'s class, owners and filter (unordered, not paged).
    fn matching(&self, query: &ObjectQuery) -> PluginResult<(Vec<StoredObject>, Resolver<'_>)> {
        let matcher = QueryMatcher::new(query)?;
        let all = self.current_objects(query.kind)?;
        let resolver = Resolver::new(self, &all);
        let resolve = |kind: ObjectKind, id: Id| resolver.get(kind, id);
        let matches: Vec<StoredObject> = all
            .into_iter()
            .filter(|o| matcher.matches(o, &resolve))
            .collect();
        Ok((matches, resolver))
    }

    /// Replaces (`Some(new)`) or deletes (`None`) the current version of an object, archiving
    /// the previous one in the same file write, and answers the version it leaves. A
    /// replacement adds one to the version; with `expected_version` only if the stored version
    /// is that one (`Conflict` otherwise, and nothing is written). `NotFound` when missing or
    /// deleted. The caller holds the lock, so the compare and the write are one step.
    fn replace_object(
        &self,
        kind: ObjectKind,
        id: Id,
        new: Option<&StoredObject>,
        expected_version: Option<u64>,
    ) -> PluginResult<u64> {
        let new = new.map(ObjectRecord::from_stored).transpose()?;
        let mut file = match self.read_object(kind, id)? {
            Some((file, Some(_))) => file,
            _ => return Err(support::object_missing(kind, id)),
        };
        if new.is_some() {
            let what = format!("{} {id}", kind.as_str());
            file.version = match expected_version {
                Some(expected) => support::compare_and_bump(what, file.version, expected)?,
                None => support::next_version(what, file.version)?,
            };
        }
        if let Some(previous) = std::mem::replace(&mut file.current, new) {
            file.history.push(VersionRecord::new(previous, now_ms()));
        }
        disk::write_json(&self.object_path(kind, id), &file, self.fsync)?;
        Ok(file.version)
    }

    // ---- keys -------------------------------------------------------------------------

    fn key_path(&self, id: Id) -> PathBuf {
        self.root.join("keys").join(format!("{id}.json"))
    }

    fn read_key(&self, id: Id) -> PluginResult<Option<StoredKey>> {
        let path = self.key_path(id);
        match disk::read_json::<KeyRecord>(&path)? {
            Some(record) => record.to_stored(&path).map(Some),
            None => Ok(None),
        }
    }

    fn all_keys(&self) -> PluginResult<Vec<StoredKey>> {
        disk::list_json(&self.root.join("keys"))?
            .iter()
            .filter_map(|path| match disk::read_json::<KeyRecord>(path) {
                Ok(Some(record)) => Some(record.to_stored(path)),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            })
            .collect()
    }

    // ---- documents --------------------------------------------------------------------

    fn document_path(&self, name: DocumentName) -> PathBuf {
        self.root.join("documents").join(document_file(name))
    }
}

/// The contract, method by method: what the host calls, run by `weft_connector_sdk::OnRuntime`
/// on the plugin's own runtime. Each method is plain synchronous file work (an `async fn`
/// that never waits), so [`run`](weft_connector_sdk::Store::run) sends every call to the
/// runtime's blocking pool, never to the host's threads. None may panic on bad input: answer a
/// [`PluginError`] instead.
impl weft_connector_sdk::Store for JsonFileStore {
    /// Every call is synchronous file I/O: on the blocking pool. A call runs to completion even
    /// when the host stops waiting for it (a request timeout), so a write is either done or not
    /// started, never half done. (A store whose calls await a network would keep the default,
    /// tasks the SDK aborts when the host gives up on a read.)
    fn run(_: Call) -> Run {
        Run::Blocking
    }

    // ---- objects ----------------------------------------------------------------------

    /// Stores a new Thing or Action.
    ///
    /// What you must do: write the object atomically; answer `Conflict` when an object of the
    /// same kind and id exists **or existed and was deleted** (ids are never reused, so keep a
    /// tombstone). Things and Actions are separate id spaces.
    async fn create_object(&self, object: StoredObject) -> PluginResult<()> {
        let _guard = lock();
        let (kind, id) = (object.kind, object.id);
        match self.read_object(kind, id)? {
            Some((_, current)) => Err(support::object_exists(kind, id, current.is_none())),
            None => {
                let file = ObjectFile {
                    current: Some(ObjectRecord::from_stored(&object)?),
                    version: support::FIRST_VERSION,
                    history: Vec::new(),
                };
                disk::write_json(&self.object_path(kind, id), &file, self.fsync)
            }
        }
    }

    /// The current version of one object.
    ///
    /// What you must do: answer `None` (not an error) when the id is unknown or deleted.
    async fn get_object(&self, kind: ObjectKind, id: Id) -> PluginResult<Option<StoredObject>> {
        let _guard = lock();
        Ok(self.read_object(kind, id)?.and_then(|(_, current)| current))
    }

    /// Many objects at once: answer `i` belongs to `ids[i]`, `None` when missing.
    ///
    /// What you must do: keep the order and the length of `ids` (duplicates included). A
    /// networked store should fetch them in one round trip; here it is one lock for all.
    async fn get_objects(
        &self,
        kind: ObjectKind,
        ids: Vec<Id>,
    ) -> PluginResult<Vec<Option<StoredObject>>> {
        let _guard = lock();
        ids.iter()
            .map(|id| Ok(self.read_object(kind, *id)?.and_then(|(_, c)| c)))
            .collect()
    }

    /// Lists objects: of `query.kind`, of `query.class` (empty: all), owned by one of
    /// `query.owners` (empty: all), matching `query.filter_json` (empty: all).
    ///
    /// What you must do: order newest first (`created_ms` descending, ties by id descending),
    /// skip `offset`, return at most `limit`, and count every match in `total`. A filter that
    /// does not parse is `Invalid`. Without the `FILTER` capability, any non-empty filter is
    /// `Unsupported` (never unfiltered results); without `FILTER_REFERENCE_PATHS`, so is a
    /// filter whose path goes through a reference. This connector evaluates filters with
    /// [`weft_plugin_api::filter::WhereFilter::matches`] (through
    /// [`support::QueryMatcher`]), following references by reading the referenced objects'
    /// files, and pages with [`support::page`].
    async fn query_objects(&self, query: ObjectQuery) -> PluginResult<ObjectPage> {
        let _guard = lock();
        let (matches, resolver) = self.matching(&query)?;
        resolver.finish()?;
        Ok(support::page(matches, &query))
    }

    /// Replaces an object (same kind and id) with the given version.
    ///
    /// What you must do: `NotFound` when it does not exist (or was deleted). With `HISTORY`,
    /// archive the previous version with the time it was replaced **in the same atomic step**
    /// as the replacement — here both live in the object's one file.
    async fn update_object(&self, object: StoredObject) -> PluginResult<()> {
        let _guard = lock();
        self.replace_object(object.kind, object.id, Some(&object), None)
            .map(|_| ())
    }

    /// Deletes an object.
    ///
    /// What you must do: `NotFound` when missing. Afterwards `get_object` answers `None` and
    /// `create_object` with the same id answers `Conflict`. With `HISTORY`, archive the last
    /// version and mark the history deleted.
    async fn delete_object(&self, kind: ObjectKind, id: Id) -> PluginResult<()> {
        let _guard = lock();
        self.replace_object(kind, id, None, None).map(|_| ())
    }

    /// The earlier versions of an object, newest first, and whether it is deleted.
    ///
    /// What you must do: `NotFound` when the id was never used; an empty list for an object
    /// never changed. Without `HISTORY`, answer `Unsupported` — never an empty history.
    async fn object_history(&self, kind: ObjectKind, id: Id) -> PluginResult<ObjectHistory> {
        let _guard = lock();
        let path = self.object_path(kind, id);
        let Some(file) = disk::read_json::<ObjectFile>(&path)? else {
            return Err(PluginError::not_found(format!(
                "{} {id} never existed",
                kind.as_str()
            )));
        };
        let versions = file
            .history
            .iter()
            .rev()
            .map(|v| v.to_version(kind, &path))
            .collect::<PluginResult<RVec<_>>>()?;
        Ok(ObjectHistory {
            deleted: file.current.is_none(),
            versions,
        })
    }

    /// Aggregates the objects `query` matches (its `offset` and `limit` are ignored).
    ///
    /// What you must do: parse `request_json` as
    /// [`weft_plugin_api::aggregate::AggregateRequest`] (`Invalid` when it does not parse) and
    /// answer an [`weft_plugin_api::aggregate::AggregateResult`] as JSON, exactly as
    /// [`weft_plugin_api::aggregate::compute`] would. Without `AGGREGATE`, answer
    /// `Unsupported` (the host then aggregates itself).
    async fn aggregate(&self, query: ObjectQuery, request_json: String) -> PluginResult<String> {
        let request = support::parse_aggregate_request(&request_json)?;
        let _guard = lock();
        let (matches, resolver) = self.matching(&query)?;
        let resolve = |kind: ObjectKind, id: Id| resolver.get(kind, id);
        let result = support::aggregate_json(&matches, &request, &resolve);
        resolver.finish()?;
        result
    }

    // ---- keys -------------------------------------------------------------------------

    /// Stores a new key of the authorisation tree.
    ///
    /// What you must do: `Conflict` when the id exists; `NotFound` when `parent` is set but
    /// does not exist. Store the token hash as given (never a token).
    async fn add_key(&self, key: StoredKey) -> PluginResult<()> {
        let _guard = lock();
        if self.key_path(key.id).exists() {
            return Err(PluginError::conflict(format!(
                "key {} already exists",
                key.id
            )));
        }
        if let ROption::RSome(parent) = key.parent {
            if self.read_key(parent)?.is_none() {
                return Err(PluginError::not_found(format!(
                    "parent key {parent} of key {} does not exist",
                    key.id
                )));
            }
        }
        disk::write_json(
            &self.key_path(key.id),
            &KeyRecord::from_stored(&key),
            self.fsync,
        )
    }

    /// One key, `None` when missing.
    async fn get_key(&self, id: Id) -> PluginResult<Option<StoredKey>> {
        let _guard = lock();
        self.read_key(id)
    }

    /// The direct children of a key (one level only), oldest first (`created_ms`, then id
    /// ascending).
    ///
    /// What you must do: `NotFound` when the key is missing; an empty list for a leaf.
    async fn key_children(&self, id: Id) -> PluginResult<Vec<StoredKey>> {
        let _guard = lock();
        if self.read_key(id)?.is_none() {
            return Err(support::key_missing(id));
        }
        let mut children: Vec<StoredKey> = self
            .all_keys()?
            .into_iter()
            .filter(|k| k.parent == ROption::RSome(id))
            .collect();
        support::sort_oldest_first(&mut children);
        Ok(children)
    }

    /// Every key without a parent, oldest first (`created_ms`, then id ascending).
    async fn root_keys(&self) -> PluginResult<Vec<StoredKey>> {
        let _guard = lock();
        let mut roots: Vec<StoredKey> = self
            .all_keys()?
            .into_iter()
            .filter(|k| k.parent.is_none())
            .collect();
        support::sort_oldest_first(&mut roots);
        Ok(roots)
    }

    /// Replaces a key (same id).
    ///
    /// What you must do: `NotFound` when missing; `Invalid` when the new version has another
    /// parent (a key never moves in the tree).
    async fn update_key(&self, key: StoredKey) -> PluginResult<()> {
        let _guard = lock();
        let Some(stored) = self.read_key(key.id)? else {
            return Err(support::key_missing(key.id));
        };
        support::check_same_parent(&stored, &key)?;
        disk::write_json(
            &self.key_path(key.id),
            &KeyRecord::from_stored(&key),
            self.fsync,
        )
    }

    /// Deletes a key and its whole subtree.
    ///
    /// What you must do: `NotFound` when missing; otherwise delete the key and every
    /// descendant atomically and answer their ids, the key first. This connector answers them
    /// breadth first, each level oldest first ([`support::key_subtree`]), and removes the files
    /// deepest first, so an interruption leaves a valid (smaller) tree.
    async fn delete_key(&self, id: Id) -> PluginResult<Vec<Id>> {
        let _guard = lock();
        if self.read_key(id)?.is_none() {
            return Err(support::key_missing(id));
        }
        let mut children: HashMap<Id, Vec<StoredKey>> = HashMap::new();
        for key in self.all_keys()? {
            if let ROption::RSome(parent) = key.parent {
                children.entry(parent).or_default().push(key);
            }
        }
        let subtree =
            support::key_subtree(id, |parent| children.remove(&parent).unwrap_or_default());
        for gone in subtree.iter().rev() {
            disk::remove(&self.key_path(*gone), self.fsync)?;
        }
        Ok(subtree)
    }

    // ---- documents --------------------------------------------------------------------

    /// A stored document: the ontology or the connector state.
    ///
    /// What you must do: answer it verbatim with its version; version 0 and empty JSON when
    /// it was never written. The host owns the content; the connector never interprets it.
    async fn get_document(&self, name: DocumentName) -> PluginResult<VersionedDocument> {
        let _guard = lock();
        Ok(
            disk::read_json::<DocumentRecord>(&self.document_path(name))?
                .unwrap_or_default()
                .to_document(),
        )
    }

    /// Writes a document by compare-and-set.
    ///
    /// What you must do: store `json` only if the stored version is `expected_version`, and
    /// answer the new version (`expected_version + 1`); otherwise `Conflict` and change
    /// nothing. Several hosts sharing one store rely on this to never lose each other's
    /// ontology changes, so it must be atomic against concurrent writers.
    async fn put_document(
        &self,
        name: DocumentName,
        json: String,
        expected_version: u64,
    ) -> PluginResult<u64> {
        let _guard = lock();
        let path = self.document_path(name);
        let stored = disk::read_json::<DocumentRecord>(&path)?.unwrap_or_default();
        let version = support::compare_and_bump(
            format_args!("the {} document", support::document_label(name)),
            stored.version,
            expected_version,
        )?;
        disk::write_json(&path, &DocumentRecord { version, json }, self.fsync)?;
        Ok(version)
    }

    // ---- versioned writes (capability VERSIONED_WRITES) -------------------------------

    /// The current version of one object and its version number (`VERSIONED_WRITES`).
    ///
    /// What you must do: answer `None` when the id is unknown or deleted; otherwise the object
    /// with its version — 1 after `create_object`, one more per successful `update_object` or
    /// `update_object_if`. Keep the number with the object so that both change in one atomic
    /// write (here it is a field of the object's file; a file written before the connector kept
    /// versions reads as version 1). Without `VERSIONED_WRITES`, leave this method out: the
    /// trait's default answers `Unsupported`.
    async fn get_object_versioned(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> PluginResult<Option<VersionedObject>> {
        let _guard = lock();
        let Some((file, Some(object))) = self.read_object(kind, id)? else {
            return Ok(None);
        };
        Ok(Some(VersionedObject {
            object,
            version: file.version,
        }))
    }

    /// Replaces an object only if its stored version is `expected_version` (compare-and-set).
    ///
    /// What you must do: `NotFound` when missing or deleted; `Conflict`, naming the stored and
    /// the expected version, when the stored version is another — and then change nothing.
    /// Otherwise replace it exactly as `update_object` does (with `HISTORY`, archiving the
    /// previous version in the same atomic step) and answer the new version
    /// (`expected_version + 1`). The compare and the write must be one atomic step against
    /// every other writer — here both run under the store's process-wide lock; a networked
    /// store uses its own conditional write (a `WHERE version = ?` update, a lightweight
    /// transaction, an `If-Match`).
    async fn update_object_if(
        &self,
        object: StoredObject,
        expected_version: u64,
    ) -> PluginResult<u64> {
        let _guard = lock();
        self.replace_object(
            object.kind,
            object.id,
            Some(&object),
            Some(expected_version),
        )
    }
}
