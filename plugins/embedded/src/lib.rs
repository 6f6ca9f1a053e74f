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
//!   threads), each in a redb read transaction: a consistent snapshot. The connector is the
//!   SDK's [`OnRuntime`] over [`Embedded`], whose [`Run`] choice says so (reads
//!   [`Run::Blocking`], writes [`Run::Inline`]: the writer thread does their work).
//! * **Indexes** (kept in the same transaction as the object): by class, by owner, and by
//!   primitive property value (numbers, strings, booleans), plus a count per class and per
//!   owner. The class and owner indexes keep each class's and owner's objects newest first, so
//!   a page without a filter (a list, a GraphQL `Get` of a class) reads only its own objects
//!   and takes its total from the counters. A query
//!   whose filter has an indexable `Equal`/range comparison (also inside `And`/`Or`) reads only
//!   the candidates the index gives; otherwise the class index, the owner index or a scan of the
//!   kind. Every candidate is still checked with the reference semantics of
//!   [`weft_connector_sdk::support`], so indexes change how much is read, never an answer. A
//!   count-only aggregate without a filter (GetMeta `count`) reads the counters. Dates
//!   (RFC 3339 strings, by instant) are indexed too; `NotEqual` reads the property's values of
//!   that type only. A comparison through a reference (`[property, Class, …]`) reads the objects
//!   that refer to what the rest of its path finds (the reference index, format version 8).
//!   `Not` is answered as its scope less the inner filter's checked hits; a `Not` matches
//!   objects without the property, which no value index holds.
//!
//! * **Backup** ([`backup`]): a consistent copy in another directory from one read snapshot,
//!   while writes go on; restore is starting on the copy.
//!
//! * **Moving a store** (`MIGRATE`): `export_objects` walks the objects table of one kind in id
//!   order from the cursor (the last id of the page before), reading each page's objects and
//!   their history in one pass each from one read snapshot. `import_objects` is **one** write
//!   on the writer thread (one transaction, one fsync per call, however many records): every
//!   record is first compared with what is held (held exactly so: skipped; differently:
//!   `Conflict`, and nothing of the call is written), then written as given with the indexes and
//!   counts a create keeps, through the same code (`Indexes` in `store.rs`).
//!
//! * **Vectors** (`VECTOR_SEARCH`, `vectors.rs`): an object's vector is stored in redb in the
//!   transaction that writes the object (a plain write stores none and drops an old one); one
//!   inverted-file index (IVF-flat: k-means lists of unit `f32` vectors) per kind and class, in
//!   memory only, built from redb at open (searches are exact until it is done) and updated by
//!   an indexer thread behind the writer (vectors not yet indexed are searched exactly).
//!   Searches filter first: a restricted one (owners, filter) takes the allowed objects from
//!   the indexes above and compares them exactly up to [`EXACT_SEARCH_MAX`], else searches the
//!   vector indexes, skipping what they do not allow; every hit's distance comes from the
//!   stored vector.
//!
//! Declares `HISTORY`, `FILTER`, `FILTER_REFERENCE_PATHS`, `AGGREGATE`, `PERSISTENT`,
//! `VERSIONED_WRITES`, `BACKUP`, `MIGRATE` and `VECTOR_SEARCH`.

pub mod backup;
mod codec;
mod index;
mod store;
mod tables;
mod vectors;

use weft_connector_sdk::{Call, OnRuntime, PluginRuntime, Run, RuntimeOptions};
use weft_plugin_api::{
    BackupReport, Capabilities, DocumentName, Id, ObjectHistory, ObjectKind, ObjectPage,
    ObjectQuery, ObjectRecord, PluginContext, PluginError, PluginLogger, PluginResult, RecordPage,
    StoredKey, StoredObject, VectorHit, VectorQuery, VersionedDocument, VersionedObject,
};

pub use store::{Store, FORMAT_VERSION};
pub use vectors::EXACT_SEARCH_MAX;

/// The declared plugin name.
pub const PLUGIN_NAME: &str = "embedded";

/// What this connector can do.
pub const CAPABILITIES: Capabilities = Capabilities::HISTORY
    .union(Capabilities::FILTER)
    .union(Capabilities::FILTER_REFERENCE_PATHS)
    .union(Capabilities::AGGREGATE)
    .union(Capabilities::PERSISTENT)
    .union(Capabilities::VERSIONED_WRITES)
    .union(Capabilities::BACKUP)
    .union(Capabilities::MIGRATE)
    .union(Capabilities::VECTOR_SEARCH);

/// Help text for `weft plugins check`.
pub const CONFIG_HELP: &str = "embedded: {\"path\": DIR} (required): the data directory, created \
when missing. Everything (objects with their history and vectors, keys, the ontology) is kept \
in DIR/weft.redb, an ACID redb database; every acknowledged write is on disk. The indexes of \
the vectors are kept in memory, built from the database at open. One process owns a \
directory at a time (DIR/LOCK). `weft serve` uses DIR = <data_dir>/store by default.";

#[cfg(feature = "plugin")]
weft_plugin_api::export_connector! {
    name: "embedded",
    capabilities: CAPABILITIES,
    config_help: CONFIG_HELP,
    new: open,
}

/// The connector object the host holds: the store on the plugin's own runtime (reads on its
/// blocking pool; writes handed to the store's writer thread).
pub type EmbeddedConnector = OnRuntime<Embedded>;

/// The constructor `export_connector!` calls: reads `path`, takes the directory's lock and
/// opens (or creates) the database.
pub fn open(ctx: PluginContext) -> PluginResult<EmbeddedConnector> {
    let path = match ctx.config.get("path").and_then(|p| p.as_str()) {
        Some(p) if !p.trim().is_empty() => std::path::PathBuf::from(p),
        _ => {
            return Err(PluginError::invalid(
                "embedded: database_config.path is missing: give the directory to keep the data in, e.g. {\"path\": \"data/store\"}",
            ))
        }
    };
    let store = Store::open(&path, ctx.log)?;
    // Reads run on the blocking pool (at most eight at once), writes on the writer thread.
    let runtime = PluginRuntime::get(ctx.name, RuntimeOptions::BLOCKING_IO)?;
    ctx.log.info(&format!(
        "keeping things, actions, keys and the ontology in {} (redb, format version {FORMAT_VERSION})",
        store.file().display()
    ));
    Ok(OnRuntime::new(
        runtime,
        Embedded {
            store,
            log: ctx.log,
        },
        ctx.log,
    ))
}

/// The store as the SDK runs it: reads are synchronous redb read transactions (a consistent
/// snapshot each) on the runtime's blocking pool; writes go to the writer thread, which commits
/// every waiting write in one transaction, and are awaited where the host polls (no task: the
/// writer thread does the work).
pub struct Embedded {
    store: Store,
    log: PluginLogger,
}

impl Embedded {
    /// Hands a write to the writer thread (group commit) and answers once it is committed.
    async fn write<T: Send + 'static>(
        &self,
        op: &'static str,
        work: impl FnOnce(&store::Tx) -> store::WriteResult<T> + Send + 'static,
    ) -> PluginResult<T> {
        self.store.submit(work).await.unwrap_or_else(|_| {
            Err(PluginError::unavailable(format!(
                "embedded: {op}: the store's writer has stopped"
            )))
        })
    }
}

impl weft_connector_sdk::Store for Embedded {
    fn run(call: Call) -> Run {
        if call.is_write() {
            Run::Inline
        } else {
            Run::Blocking
        }
    }

    async fn create_object(&self, object: StoredObject) -> PluginResult<()> {
        self.write("create_object", move |tx| store::create_object(tx, object))
            .await
    }

    async fn get_object(&self, kind: ObjectKind, id: Id) -> PluginResult<Option<StoredObject>> {
        self.store.get_object(kind, id)
    }

    async fn get_objects(
        &self,
        kind: ObjectKind,
        ids: Vec<Id>,
    ) -> PluginResult<Vec<Option<StoredObject>>> {
        self.store.get_objects(kind, &ids)
    }

    async fn query_objects(&self, query: ObjectQuery) -> PluginResult<ObjectPage> {
        self.store.query_objects(&query)
    }

    async fn update_object(&self, object: StoredObject) -> PluginResult<()> {
        self.write("update_object", move |tx| {
            store::update_object(tx, object, None).map(|r| r.map(|_| ()))
        })
        .await
    }

    async fn delete_object(&self, kind: ObjectKind, id: Id) -> PluginResult<()> {
        self.write("delete_object", move |tx| {
            store::delete_object(tx, kind, id)
        })
        .await
    }

    async fn object_history(&self, kind: ObjectKind, id: Id) -> PluginResult<ObjectHistory> {
        self.store.object_history(kind, id)
    }

    async fn aggregate(&self, query: ObjectQuery, request_json: String) -> PluginResult<String> {
        self.store.aggregate(&query, &request_json)
    }

    async fn add_key(&self, key: StoredKey) -> PluginResult<()> {
        self.write("add_key", move |tx| store::add_key(tx, key))
            .await
    }

    async fn get_key(&self, id: Id) -> PluginResult<Option<StoredKey>> {
        self.store.get_key(id)
    }

    async fn key_children(&self, id: Id) -> PluginResult<Vec<StoredKey>> {
        self.store.key_children(id)
    }

    async fn root_keys(&self) -> PluginResult<Vec<StoredKey>> {
        self.store.root_keys()
    }

    async fn update_key(&self, key: StoredKey) -> PluginResult<()> {
        self.write("update_key", move |tx| store::update_key(tx, key))
            .await
    }

    async fn delete_key(&self, id: Id) -> PluginResult<Vec<Id>> {
        self.write("delete_key", move |tx| store::delete_key(tx, id))
            .await
    }

    async fn get_document(&self, document: DocumentName) -> PluginResult<VersionedDocument> {
        self.store.get_document(document)
    }

    async fn put_document(
        &self,
        document: DocumentName,
        json: String,
        expected_version: u64,
    ) -> PluginResult<u64> {
        self.write("put_document", move |tx| {
            store::put_document(tx, document, json, expected_version)
        })
        .await
    }

    async fn get_object_versioned(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> PluginResult<Option<VersionedObject>> {
        self.store.get_object_versioned(kind, id)
    }

    async fn update_object_if(
        &self,
        object: StoredObject,
        expected_version: u64,
    ) -> PluginResult<u64> {
        self.write("update_object_if", move |tx| {
            store::update_object(tx, object, Some(expected_version))
        })
        .await
    }

    async fn export_objects(
        &self,
        kind: ObjectKind,
        cursor: String,
        limit: u64,
    ) -> PluginResult<RecordPage> {
        self.store.export_objects(kind, &cursor, limit)
    }

    async fn import_objects(&self, records: Vec<ObjectRecord>) -> PluginResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        self.write("import_objects", move |tx| {
            store::import_objects(tx, records)
        })
        .await
    }

    async fn create_object_with_vector(
        &self,
        object: StoredObject,
        vector: Vec<f32>,
    ) -> PluginResult<()> {
        self.write("create_object_with_vector", move |tx| {
            store::create_object_with_vector(tx, object, vector)
        })
        .await
    }

    async fn update_object_with_vector(
        &self,
        object: StoredObject,
        vector: Vec<f32>,
    ) -> PluginResult<()> {
        self.write("update_object_with_vector", move |tx| {
            store::update_object_with_vector(tx, object, None, vector).map(|r| r.map(|_| ()))
        })
        .await
    }

    async fn update_object_if_with_vector(
        &self,
        object: StoredObject,
        expected_version: u64,
        vector: Vec<f32>,
    ) -> PluginResult<u64> {
        self.write("update_object_if_with_vector", move |tx| {
            store::update_object_with_vector(tx, object, Some(expected_version), vector)
        })
        .await
    }

    async fn get_vector(&self, kind: ObjectKind, id: Id) -> PluginResult<Option<Vec<f32>>> {
        self.store.get_vector(kind, id)
    }

    async fn search_vectors(&self, query: VectorQuery) -> PluginResult<Vec<VectorHit>> {
        self.store.search_vectors(&query)
    }

    async fn backup(&self, to: String) -> PluginResult<BackupReport> {
        let started = std::time::Instant::now();
        let report = self.store.backup(std::path::Path::new(&to))?;
        self.log.info(&format!(
            "backup: {} objects, {} bytes written to {} in {} ms",
            report.objects,
            report.bytes,
            report.path,
            started.elapsed().as_millis()
        ));
        Ok(report)
    }
}
