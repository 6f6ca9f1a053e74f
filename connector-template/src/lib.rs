//! A Weft storage connector that keeps every object as a JSON file in a directory — and the
//! template to copy when writing your own connector (see `README.md` and `CONNECTORS.md` in
//! the Weft repository).
//!
//! # What a connector crate consists of
//!
//! 1. A type implementing [`weft_plugin_api::Connector`] — here [`JsonFileStore`]. Each method
//!    below says what the contract asks of it and what an author must do there.
//! 2. One [`weft_plugin_api::export_connector!`] call: the plugin's name (what
//!    `database.name` in the host's config refers to), its [`Capabilities`], a help text for
//!    its config, and its constructor. The macro makes the ABI objects and runs the
//!    constructor, every call and every poll of every returned future under `catch_unwind`:
//!    a panic costs one call an `Internal` error, never the host process.
//! 3. `tests/conformance.rs`: the conformance kit (`weft-connector-tests`) against the built
//!    `.so`, honouring the declared capabilities; plus tests of your own (here
//!    `tests/persistence.rs`, since the kit cannot restart a process).
//!
//! # This connector
//!
//! Config (`database.database_config`): `{"path": "/some/dir"}` (required; created when
//! missing) and `"fsync": false` (optional; default `true`) to skip flushing each write to the
//! disk (faster, not crash-safe). The files are described in [`store`]; all file work is
//! synchronous code in [`store`] and [`disk`], run on the plugin's own tokio runtime (never
//! the host's) by `JsonFileStore::run`.
//!
//! Capabilities: `HISTORY` (one file per object holds its versions), `FILTER`,
//! `FILTER_REFERENCE_PATHS` and `AGGREGATE` (evaluated in memory with the reference
//! implementations in [`weft_plugin_api::filter`] and [`weft_plugin_api::aggregate`]),
//! `PERSISTENT` (everything is on disk) and `VERSIONED_WRITES` (each object's file keeps its
//! version number; `update_object_if` compares and writes under the store's lock). A connector
//! that does not implement an optional behaviour simply leaves its flag out and answers
//! [`PluginError::unsupported`] there (for `VERSIONED_WRITES` the trait's default methods
//! already do).
//!
//! What most connectors do alike — filter parsing, newest-first paging, owner and class
//! matching, the key-deletion cascade, version checks — comes from
//! [`weft_plugin_api::support`]; replace any of it when your store can do better (a query
//! language, an index).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod disk;
pub mod store;

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;
use weft_plugin_api::{
    Capabilities, Connector, DocumentName, Id, ObjectHistory, ObjectKind, ObjectPage, ObjectQuery,
    PluginContext, PluginError, PluginLogger, PluginResult, StoredKey, StoredObject,
    VersionedDocument, VersionedObject,
};

use crate::store::Store;

/// The plugin's name: `database.name` in the host's config, `--database` on its command line.
/// `rename.sh` changes it.
pub const PLUGIN_NAME: &str = "connector-template";

/// What this connector can do. The host and the conformance kit read these flags: the kit
/// checks every declared behaviour, and checks that every undeclared one answers
/// `Unsupported`.
pub const CAPABILITIES: Capabilities = Capabilities::HISTORY
    .union(Capabilities::FILTER)
    .union(Capabilities::FILTER_REFERENCE_PATHS)
    .union(Capabilities::AGGREGATE)
    .union(Capabilities::PERSISTENT)
    .union(Capabilities::VERSIONED_WRITES);

/// Shown by `weft plugins check`: every config key, what it means, an example.
pub const CONFIG_HELP: &str = "path (required): the directory to keep things, actions, keys and \
documents in, one JSON file each; created when missing; must be new, empty or a store of this \
connector. fsync (optional, default true): flush every write to the disk before answering; \
false is faster but a machine crash may lose the last writes. Example: {\"path\": \
\"/var/lib/weft/store\"}";

weft_plugin_api::export_connector! {
    name: PLUGIN_NAME,
    capabilities: CAPABILITIES,
    config_help: CONFIG_HELP,
    new: JsonFileStore::open,
}

/// The connector's config, parsed from `database.database_config`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Config {
    path: Option<PathBuf>,
    #[serde(default = "yes")]
    fsync: bool,
}

fn yes() -> bool {
    true
}

impl Config {
    /// Every mistake is an `Invalid` error naming the key and saying what to write instead.
    fn parse(config: &serde_json::Value) -> PluginResult<(PathBuf, bool)> {
        let config: Config = serde_json::from_value(config.clone()).map_err(|e| {
            PluginError::invalid(format!(
                "{PLUGIN_NAME}: database_config is not valid: {e}; expected {{\"path\": \"/some/dir\"}} (see `weft plugins check` for every key)"
            ))
        })?;
        match config.path {
            Some(path) if !path.as_os_str().is_empty() => Ok((path, config.fsync)),
            _ => Err(PluginError::invalid(format!(
                "{PLUGIN_NAME}: database_config.path is missing: give the directory to store data in, e.g. {{\"path\": \"/var/lib/weft/store\"}}"
            ))),
        }
    }
}

/// The connector object the host holds: the store, plus the runtime its file work runs on.
pub struct JsonFileStore {
    store: Arc<Store>,
    /// The plugin's own runtime ([`runtime`]).
    runtime: tokio::runtime::Handle,
    log: PluginLogger,
}

/// The plugin's own tokio runtime, made by the first connector and shared by all of them.
///
/// The host never lends its runtime to a plugin (the plugin has its own copy of tokio, whose
/// thread-locals the host's threads do not set), so a connector that does I/O brings one.
/// Blocking file I/O goes to its blocking pool and never stalls the host's worker threads. It
/// lives in a `static`, so it is never dropped while a connector or a task still uses it.
static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

fn runtime() -> PluginResult<tokio::runtime::Handle> {
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt.handle().clone());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(8)
        .thread_name("weft-connector-template-io")
        .enable_all()
        .build()
        .map_err(|e| {
            PluginError::unavailable(format!("{PLUGIN_NAME}: cannot start its runtime: {e}"))
        })?;
    // Another thread may have made one meanwhile; then ours is dropped unused.
    Ok(RUNTIME.get_or_init(|| rt).handle().clone())
}

impl JsonFileStore {
    /// The constructor `export_connector!` calls with the host's config and logger.
    ///
    /// What an author does here: parse the config (an `Invalid` error naming the key when it is
    /// wrong — the host prints it and refuses to start), connect or open the store
    /// (`Unavailable` when it cannot be reached), get a runtime for I/O, and log one line
    /// saying where the data goes.
    pub fn open(ctx: PluginContext) -> PluginResult<Self> {
        let (path, fsync) = Config::parse(&ctx.config)?;
        let store = Store::open(path, fsync, &ctx.log)?;
        let runtime = runtime()?;
        ctx.log.info(&format!(
            "keeping things, actions, keys and documents as JSON files in {}{}",
            store.root().display(),
            if fsync { "" } else { " (fsync off)" }
        ));
        Ok(JsonFileStore {
            store: Arc::new(store),
            runtime,
            log: ctx.log,
        })
    }

    /// Runs `work` on the plugin's runtime and answers a `'static + Send` future of its
    /// result — the shape every contract method returns.
    ///
    /// `work` runs to completion even when the host drops the future (a request timeout):
    /// a write is then either done or not started, never half done. A connector whose calls
    /// can take long (network) should instead abort the task when the future is dropped.
    /// Failures of the store (`Unavailable`, `Internal`) are also logged through the host.
    fn run<T: Send + 'static>(
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
            if let Err(e) = &result {
                use weft_plugin_api::ErrorKind::{Internal, Unavailable};
                if matches!(e.kind, Internal | Unavailable) {
                    log.error(&format!("{op}: {}", e.message));
                }
            }
            result
        }
    }
}

/// The contract, method by method. Every method returns a `'static + Send` future; none may
/// borrow `self` into the future (clone what it needs, as `JsonFileStore::run` does), and
/// none may panic on bad input — answer a [`PluginError`] instead.
impl Connector for JsonFileStore {
    /// Stores a new Thing or Action.
    ///
    /// What you must do: write the object atomically; answer `Conflict` when an object of the
    /// same kind and id exists **or existed and was deleted** (ids are never reused, so keep a
    /// tombstone). Things and Actions are separate id spaces.
    fn create_object(
        &self,
        object: StoredObject,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        self.run("create_object", move |s| s.create_object(object))
    }

    /// The current version of one object.
    ///
    /// What you must do: answer `None` (not an error) when the id is unknown or deleted.
    fn get_object(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<Option<StoredObject>>> + Send + 'static {
        self.run("get_object", move |s| s.get_object(kind, id))
    }

    /// Many objects at once: answer `i` belongs to `ids[i]`, `None` when missing.
    ///
    /// What you must do: keep the order and the length of `ids` (duplicates included). A
    /// networked store should fetch them in one round trip; here it is one lock for all.
    fn get_objects(
        &self,
        kind: ObjectKind,
        ids: Vec<Id>,
    ) -> impl Future<Output = PluginResult<Vec<Option<StoredObject>>>> + Send + 'static {
        self.run("get_objects", move |s| s.get_objects(kind, &ids))
    }

    /// Lists objects: of `query.kind`, of `query.class` (empty: all), owned by one of
    /// `query.owners` (empty: all), matching `query.filter_json` (empty: all).
    ///
    /// What you must do: order newest first (`created_ms` descending, ties by id descending),
    /// skip `offset`, return at most `limit`, and count every match in `total`. A filter that
    /// does not parse is `Invalid`. Without the `FILTER` capability, any non-empty filter is
    /// `Unsupported` (never unfiltered results); without `FILTER_REFERENCE_PATHS`, so is a
    /// filter whose path goes through a reference. This connector evaluates filters with
    /// [`weft_plugin_api::filter::WhereFilter::matches`], following references by reading the
    /// referenced objects' files.
    fn query_objects(
        &self,
        query: ObjectQuery,
    ) -> impl Future<Output = PluginResult<ObjectPage>> + Send + 'static {
        self.run("query_objects", move |s| s.query_objects(&query))
    }

    /// Replaces an object (same kind and id) with the given version.
    ///
    /// What you must do: `NotFound` when it does not exist (or was deleted). With `HISTORY`,
    /// archive the previous version with the time it was replaced **in the same atomic step**
    /// as the replacement — here both live in the object's one file.
    fn update_object(
        &self,
        object: StoredObject,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        self.run("update_object", move |s| s.update_object(object))
    }

    /// Deletes an object.
    ///
    /// What you must do: `NotFound` when missing. Afterwards `get_object` answers `None` and
    /// `create_object` with the same id answers `Conflict`. With `HISTORY`, archive the last
    /// version and mark the history deleted.
    fn delete_object(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        self.run("delete_object", move |s| s.delete_object(kind, id))
    }

    /// The earlier versions of an object, newest first, and whether it is deleted.
    ///
    /// What you must do: `NotFound` when the id was never used; an empty list for an object
    /// never changed. Without `HISTORY`, answer `Unsupported` — never an empty history.
    fn object_history(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<ObjectHistory>> + Send + 'static {
        self.run("object_history", move |s| s.object_history(kind, id))
    }

    /// Aggregates the objects `query` matches (its `offset` and `limit` are ignored).
    ///
    /// What you must do: parse `request_json` as
    /// [`weft_plugin_api::aggregate::AggregateRequest`] (`Invalid` when it does not parse) and
    /// answer an [`weft_plugin_api::aggregate::AggregateResult`] as JSON, exactly as
    /// [`weft_plugin_api::aggregate::compute`] would. Without `AGGREGATE`, answer
    /// `Unsupported` (the host then aggregates itself).
    fn aggregate(
        &self,
        query: ObjectQuery,
        request_json: String,
    ) -> impl Future<Output = PluginResult<String>> + Send + 'static {
        self.run("aggregate", move |s| s.aggregate(&query, &request_json))
    }

    /// Stores a new key of the authorisation tree.
    ///
    /// What you must do: `Conflict` when the id exists; `NotFound` when `parent` is set but
    /// does not exist. Store the token hash as given (never a token).
    fn add_key(&self, key: StoredKey) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        self.run("add_key", move |s| s.add_key(key))
    }

    /// One key, `None` when missing.
    fn get_key(
        &self,
        id: Id,
    ) -> impl Future<Output = PluginResult<Option<StoredKey>>> + Send + 'static {
        self.run("get_key", move |s| s.get_key(id))
    }

    /// The direct children of a key (one level only), oldest first (`created_ms`, then id
    /// ascending).
    ///
    /// What you must do: `NotFound` when the key is missing; an empty list for a leaf.
    fn key_children(
        &self,
        id: Id,
    ) -> impl Future<Output = PluginResult<Vec<StoredKey>>> + Send + 'static {
        self.run("key_children", move |s| s.key_children(id))
    }

    /// Every key without a parent, oldest first (`created_ms`, then id ascending).
    fn root_keys(&self) -> impl Future<Output = PluginResult<Vec<StoredKey>>> + Send + 'static {
        self.run("root_keys", |s| s.root_keys())
    }

    /// Replaces a key (same id).
    ///
    /// What you must do: `NotFound` when missing; `Invalid` when the new version has another
    /// parent (a key never moves in the tree).
    fn update_key(
        &self,
        key: StoredKey,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        self.run("update_key", move |s| s.update_key(key))
    }

    /// Deletes a key and its whole subtree.
    ///
    /// What you must do: `NotFound` when missing; otherwise delete the key and every
    /// descendant atomically and answer their ids, the key first. This connector answers them
    /// breadth first, each level oldest first, and removes the files deepest first, so an
    /// interruption leaves a valid (smaller) tree.
    fn delete_key(&self, id: Id) -> impl Future<Output = PluginResult<Vec<Id>>> + Send + 'static {
        self.run("delete_key", move |s| s.delete_key(id))
    }

    /// A stored document: the ontology or the connector state.
    ///
    /// What you must do: answer it verbatim with its version; version 0 and empty JSON when
    /// it was never written. The host owns the content; the connector never interprets it.
    fn get_document(
        &self,
        document: DocumentName,
    ) -> impl Future<Output = PluginResult<VersionedDocument>> + Send + 'static {
        self.run("get_document", move |s| s.get_document(document))
    }

    /// Writes a document by compare-and-set.
    ///
    /// What you must do: store `json` only if the stored version is `expected_version`, and
    /// answer the new version (`expected_version + 1`); otherwise `Conflict` and change
    /// nothing. Several hosts sharing one store rely on this to never lose each other's
    /// ontology changes, so it must be atomic against concurrent writers.
    fn put_document(
        &self,
        document: DocumentName,
        json: String,
        expected_version: u64,
    ) -> impl Future<Output = PluginResult<u64>> + Send + 'static {
        self.run("put_document", move |s| {
            s.put_document(document, json, expected_version)
        })
    }

    /// The current version of one object and its version number (`VERSIONED_WRITES`).
    ///
    /// What you must do: answer `None` when the id is unknown or deleted; otherwise the object
    /// with its version — 1 after `create_object`, one more per successful `update_object` or
    /// `update_object_if`. Keep the number with the object so that both change in one atomic
    /// write (here it is a field of the object's file; a file written before the connector kept
    /// versions reads as version 1). Without `VERSIONED_WRITES`, leave this method out: the
    /// trait's default answers `Unsupported`.
    fn get_object_versioned(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<Option<VersionedObject>>> + Send + 'static {
        self.run("get_object_versioned", move |s| {
            s.get_object_versioned(kind, id)
        })
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
    fn update_object_if(
        &self,
        object: StoredObject,
        expected_version: u64,
    ) -> impl Future<Output = PluginResult<u64>> + Send + 'static {
        self.run("update_object_if", move |s| {
            s.update_object_if(object, expected_version)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_errors_name_the_key() {
        let e = Config::parse(&json!({})).unwrap_err();
        assert_eq!(e.kind, weft_plugin_api::ErrorKind::Invalid);
        assert!(e.message.contains("database_config.path"), "{e}");
        let e = Config::parse(&json!({"pth": "/x"})).unwrap_err();
        assert!(e.message.contains("pth"), "{e}");
        let e = Config::parse(&json!({"path": 3})).unwrap_err();
        assert_eq!(e.kind, weft_plugin_api::ErrorKind::Invalid);
        let (path, fsync) = Config::parse(&json!({"path": "/x", "fsync": false})).unwrap();
        assert_eq!((path, fsync), (PathBuf::from("/x"), false));
        assert!(Config::parse(&json!({"path": "/x"})).unwrap().1);
    }
}
