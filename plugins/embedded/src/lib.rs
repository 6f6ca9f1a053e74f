//! `weft-embedded`: the embedded, persistent Weft connector (plugin name `embedded`), the default
//! store of `weft serve`. Config: `{"path": DIR}`.
//!
//! It keeps Things and Actions (with their version numbers and history), the key tree and the
//! two documents in one [redb](https://docs.rs/redb) database, `DIR/weft.redb`: a pure-Rust,
//! ACID store of copy-on-write B-trees whose commits are durable (fsynced) before they return
//! and never half applied after a crash.
//!
//! * **One process per directory.** `DIR/LOCK` is locked (an OS file lock, released when the
//!   process ends however it ends) and holds the owner's pid; a second process is refused with
//!   a message naming the directory and that pid.
//! * **Format version.** The database stores [`FORMAT_VERSION`]; a file from a newer version is
//!   refused with a message saying so, one from an older version upgraded when opened.
//! * **Writes** go to one writer thread, which takes every write waiting and applies them in
//!   **one** redb transaction (group commit), then commits once and answers them all: an
//!   acknowledged write is on disk, and concurrent writers share the cost of an fsync. Each write
//!   checks before it changes anything, so a refused one (`Conflict`, `NotFound`) leaves no
//!   trace; if the store itself fails, the whole transaction is aborted and every write in it
//!   answers the failure. The objects table is keyed by id, the class and owner indexes by
//!   creation time and id: with the time-ordered (v7) ids `weft serve` gives new objects, a
//!   group's keys land next to each other instead of on a random page per object and table
//!   (measured: ~51,000 creates/s against ~24,000 with random ids, `tests/import_bench.rs`).
//! * **Reads** run on the plugin's own small tokio runtime's blocking pool (never on the host's
//!   threads), each in a redb read transaction: a consistent snapshot.
//! * **Indexes** (kept in the same transaction as the object): by class, by owner, and by
//!   primitive property value (numbers, strings, booleans), plus a count per class and per
//!   owner. The class and owner indexes keep each class's and owner's objects newest first, so
//!   a page without a filter (a list, a GraphQL `Get` of a class) reads only its own objects
//!   and takes its total from the counters. A query
//!   whose filter has an indexable `Equal`/range comparison (also inside `And`/`Or`) reads only
//!   the candidates the index gives; otherwise the class index, the owner index or a scan of the
//!   kind. Every candidate is still checked with the reference semantics of
//!   [`weft_plugin_api::support`], so indexes change how much is read, never an answer. A
//!   count-only aggregate without a filter (GetMeta `count`) reads the counters. Dates
//!   (RFC 3339 strings, by instant) are indexed too; `NotEqual` reads the property's values of
//!   that type only. `Not` and reference paths are not answered from the index (a `Not` matches
//!   objects without the property, which no value index holds).
//!
//! * **Backup** ([`backup`]): a consistent copy in another directory from one read snapshot,
//!   while writes go on; restore is starting on the copy.
//!
//! Declares `HISTORY`, `FILTER`, `FILTER_REFERENCE_PATHS`, `AGGREGATE`, `PERSISTENT`,
//! `VERSIONED_WRITES` and `BACKUP`.

pub mod backup;
mod codec;
mod index;
mod store;
mod tables;

use std::future::Future;
use std::sync::{Arc, OnceLock};

use weft_plugin_api::{
    BackupReport, Capabilities, Connector, DocumentName, Id, ObjectHistory, ObjectKind, ObjectPage,
    ObjectQuery, PluginContext, PluginError, PluginLogger, PluginResult, StoredKey, StoredObject,
    VersionedDocument, VersionedObject,
};

pub use store::{Store, FORMAT_VERSION};

/// The declared plugin name.
pub const PLUGIN_NAME: &str = "embedded";

/// What this connector can do.
pub const CAPABILITIES: Capabilities = Capabilities::HISTORY
    .union(Capabilities::FILTER)
    .union(Capabilities::FILTER_REFERENCE_PATHS)
    .union(Capabilities::AGGREGATE)
    .union(Capabilities::PERSISTENT)
    .union(Capabilities::VERSIONED_WRITES)
    .union(Capabilities::BACKUP);

/// Help text for `weft plugins check`.
pub const CONFIG_HELP: &str = "embedded: {\"path\": DIR} (required): the data directory, created \
when missing. Everything (objects with their history, keys, the ontology) is kept in \
DIR/weft.redb, an ACID redb database; every acknowledged write is on disk. One process owns a \
directory at a time (DIR/LOCK). `weft serve` uses DIR = <data_dir>/store by default.";

#[cfg(feature = "plugin")]
weft_plugin_api::export_connector! {
    name: "embedded",
    capabilities: CAPABILITIES,
    config_help: CONFIG_HELP,
    new: Embedded::from_context,
}

/// The plugin's own tokio runtime for blocking reads, made by the first connector and shared by
/// all (the host never lends its runtime to a plugin). It lives in a `static`, so it is never
/// dropped while a task still uses it.
static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

fn runtime() -> PluginResult<tokio::runtime::Handle> {
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt.handle().clone());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(8)
        .thread_name("weft-embedded-io")
        .enable_all()
        .build()
        .map_err(|e| {
            PluginError::unavailable(format!("embedded: cannot start its runtime: {e}"))
        })?;
    Ok(RUNTIME.get_or_init(|| rt).handle().clone())
}

/// The connector object the host holds.
pub struct Embedded {
    store: Arc<Store>,
    runtime: tokio::runtime::Handle,
    log: PluginLogger,
}

impl Embedded {
    /// The constructor `export_connector!` calls: reads `path`, takes the directory's lock and
    /// opens (or creates) the database.
    pub fn from_context(ctx: PluginContext) -> PluginResult<Self> {
        let path = match ctx.config.get("path").and_then(|p| p.as_str()) {
            Some(p) if !p.trim().is_empty() => std::path::PathBuf::from(p),
            _ => {
                return Err(PluginError::invalid(
                    "embedded: database_config.path is missing: give the directory to keep the data in, e.g. {\"path\": \"data/store\"}",
                ))
            }
        };
        let store = Store::open(&path, ctx.log)?;
        let runtime = runtime()?;
        ctx.log.info(&format!(
            "keeping things, actions, keys and the ontology in {} (redb, format version {FORMAT_VERSION})",
            store.file().display()
        ));
        Ok(Embedded {
            store: Arc::new(store),
            runtime,
            log: ctx.log,
        })
    }

    /// Runs a read on the plugin's runtime's blocking pool.
    fn read<T: Send + 'static>(
        &self,
        op: &'static str,
        work: impl FnOnce(&Store) -> PluginResult<T> + Send + 'static,
    ) -> impl Future<Output = PluginResult<T>> + Send + 'static {
        let store = Arc::clone(&self.store);
        let task = self.runtime.spawn_blocking(move || work(&store));
        let log = self.log;
        async move {
            let result = task.await.unwrap_or_else(|e| {
                Err(PluginError::internal(format!("{op} did not finish: {e}")))
            });
            log_failure(log, op, &result);
            result
        }
    }

    /// Hands a write to the writer thread (group commit) and answers once it is committed.
    fn write<T: Send + 'static>(
        &self,
        op: &'static str,
        work: impl FnOnce(&redb::WriteTransaction) -> store::WriteResult<T> + Send + 'static,
    ) -> impl Future<Output = PluginResult<T>> + Send + 'static {
        let pending = self.store.submit(work);
        let log = self.log;
        async move {
            let result = pending.await.unwrap_or_else(|_| {
                Err(PluginError::unavailable(format!(
                    "embedded: {op}: the store's writer has stopped"
                )))
            });
            log_failure(log, op, &result);
            result
        }
    }
}

fn log_failure<T>(log: PluginLogger, op: &str, result: &PluginResult<T>) {
    if let Err(e) = result {
        use weft_plugin_api::ErrorKind::{Internal, Unavailable};
        if matches!(e.kind, Internal | Unavailable) {
            log.error(&format!("{op}: {}", e.message));
        }
    }
}

impl Connector for Embedded {
    fn create_object(
        &self,
        object: StoredObject,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        self.write("create_object", move |tx| store::create_object(tx, object))
    }

    fn get_object(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<Option<StoredObject>>> + Send + 'static {
        self.read("get_object", move |s| s.get_object(kind, id))
    }

    fn get_objects(
        &self,
        kind: ObjectKind,
        ids: Vec<Id>,
    ) -> impl Future<Output = PluginResult<Vec<Option<StoredObject>>>> + Send + 'static {
        self.read("get_objects", move |s| s.get_objects(kind, &ids))
    }

    fn query_objects(
        &self,
        query: ObjectQuery,
    ) -> impl Future<Output = PluginResult<ObjectPage>> + Send + 'static {
        self.read("query_objects", move |s| s.query_objects(&query))
    }

    fn update_object(
        &self,
        object: StoredObject,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        self.write("update_object", move |tx| {
            store::update_object(tx, object, None).map(|r| r.map(|_| ()))
        })
    }

    fn delete_object(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        self.write("delete_object", move |tx| {
            store::delete_object(tx, kind, id)
        })
    }

    fn object_history(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<ObjectHistory>> + Send + 'static {
        self.read("object_history", move |s| s.object_history(kind, id))
    }

    fn aggregate(
        &self,
        query: ObjectQuery,
        request_json: String,
    ) -> impl Future<Output = PluginResult<String>> + Send + 'static {
        self.read("aggregate", move |s| s.aggregate(&query, &request_json))
    }

    fn add_key(&self, key: StoredKey) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        self.write("add_key", move |tx| store::add_key(tx, key))
    }

    fn get_key(
        &self,
        id: Id,
    ) -> impl Future<Output = PluginResult<Option<StoredKey>>> + Send + 'static {
        self.read("get_key", move |s| s.get_key(id))
    }

    fn key_children(
        &self,
        id: Id,
    ) -> impl Future<Output = PluginResult<Vec<StoredKey>>> + Send + 'static {
        self.read("key_children", move |s| s.key_children(id))
    }

    fn root_keys(&self) -> impl Future<Output = PluginResult<Vec<StoredKey>>> + Send + 'static {
        self.read("root_keys", |s| s.root_keys())
    }

    fn update_key(
        &self,
        key: StoredKey,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        self.write("update_key", move |tx| store::update_key(tx, key))
    }

    fn delete_key(&self, id: Id) -> impl Future<Output = PluginResult<Vec<Id>>> + Send + 'static {
        self.write("delete_key", move |tx| store::delete_key(tx, id))
    }

    fn get_document(
        &self,
        document: DocumentName,
    ) -> impl Future<Output = PluginResult<VersionedDocument>> + Send + 'static {
        self.read("get_document", move |s| s.get_document(document))
    }

    fn put_document(
        &self,
        document: DocumentName,
        json: String,
        expected_version: u64,
    ) -> impl Future<Output = PluginResult<u64>> + Send + 'static {
        self.write("put_document", move |tx| {
            store::put_document(tx, document, json, expected_version)
        })
    }

    fn get_object_versioned(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<Option<VersionedObject>>> + Send + 'static {
        self.read("get_object_versioned", move |s| {
            s.get_object_versioned(kind, id)
        })
    }

    fn update_object_if(
        &self,
        object: StoredObject,
        expected_version: u64,
    ) -> impl Future<Output = PluginResult<u64>> + Send + 'static {
        self.write("update_object_if", move |tx| {
            store::update_object(tx, object, Some(expected_version))
        })
    }

    fn backup(
        &self,
        to: String,
    ) -> impl Future<Output = PluginResult<BackupReport>> + Send + 'static {
        let log = self.log;
        let started = std::time::Instant::now();
        let task = self.read("backup", move |s| s.backup(std::path::Path::new(&to)));
        async move {
            let report = task.await?;
            log.info(&format!(
                "backup: {} objects, {} bytes written to {} in {} ms",
                report.objects,
                report.bytes,
                report.path,
                started.elapsed().as_millis()
            ));
            Ok(report)
        }
    }
}
