//! `weft-gremlin`: the Weft connector on an Apache TinkerPop **Gremlin Server** (plugin name
//! `gremlin`), tested against TinkerGraph (TinkerPop 3.7) and JanusGraph 1.1. Config (see
//! [`CONFIG_HELP`]): `{"url": "ws://127.0.0.1:8182/gremlin", "username", "password",
//! "traversal_source": "g", "connect_timeout_ms": 5000, "request_timeout_ms": 30000,
//! "graph_prefix": "weft", "namespace": "default"}`.
//!
//! # The graph model
//!
//! Every name below is `<graph_prefix>_<name>` (default prefix `weft`), and every vertex and
//! edge the connector writes carries `<p>_ns` = the configured `namespace`, which is part of
//! every lookup: several Weft stores (or test runs) share one graph without seeing each other.
//! Vertices are found by `(<p>_ns, <p>_uid)`, a key unique within a namespace.
//!
//! | vertex label | what | properties |
//! |---|---|---|
//! | `<p>_object` | a Thing or Action, current version (or tombstone) | `uid` = `thing:<uuid>` / `action:<uuid>`, `kind` (`thing`/`action`), `id` (uuid), `class`, `context`, `owner` (uuid), `created_ms`, `updated_ms` (Long), `properties` (the property bag, JSON text: the source of truth), `version` (Long, 1 after create, +1 per update), `deleted` (Boolean: a tombstone keeps the id from being reused), `history_count` (Long) |
//! | `<p>_old_version` | one archived version of an object | `seq` (Long, 1 = oldest), `archived_ms`, and the archived `class`, `context`, `owner`, `created_ms`, `updated_ms`, `properties` |
//! | `<p>_key` | one key of the authorisation tree | `uid` = `key:<uuid>`, `id`, `parent_id` (uuid, `""` for a root), `token_hash`, `email`, `ip_origin` (JSON array text), `expires_ms`, `read`, `write`, `delete`, `execute`, `created_ms` |
//! | `<p>_document` | the ontology or the connector state | `uid` = `document:ontology` / `document:connector_state`, `json` (text), `version` (Long, for compare-and-set) |
//!
//! | edge label | from → to | what |
//! |---|---|---|
//! | `<p>_history` | object → old version | its archived versions |
//! | `<p>_child_of` | key → parent key | the key tree (`key_children` follows it; `delete_key` cascades along it) |
//! | `<p>_refers_to` | object → object, property `ref_property` | a reference in the property bag to an object that existed when the bag was written: a navigation aid for Gremlin users. The bag stays the source of truth; answers never depend on these edges (a reference to an object created later gets its edge when the referring object is next written; deleting an object removes its edges) |
//!
//! All names are plain strings and every value a plain Long, Boolean or String, so the model
//! works unchanged on TinkerGraph and JanusGraph. Vertex ids are the graph's business: the
//! connector never looks a vertex up by id; where a JanusGraph is configured with
//! `graph.set-vertex-id=true` (ids chosen by the client) it gives each new vertex a random one
//! (a string without `-` with `graph.allow-custom-vid-types`, else a random count made into a
//! vertex id by JanusGraph's id manager). On **JanusGraph** the connector creates, at
//! start-up, composite indexes on `(ns, uid)`, `(ns, kind)`, `(ns, kind, class)` and
//! `(ns, parent_id)` (through the management API, in a fixed script with bindings); on other
//! graphs it logs that it skips them.
//!
//! # Atomicity and compare-and-set
//!
//! Gremlin Server runs the requests of all clients concurrently (its `gremlinPool`, one thread
//! per core by default), and TinkerGraph has no transactions, so a conditional write inside one
//! traversal (`coalesce`/`choose` on the version) is **not** atomic: two such traversals can
//! both see version 5 and both write 6. So every operation is one request evaluating a **fixed
//! Groovy script** ([`scripts`]; values only as bindings) whose body runs inside
//! `synchronized (graph)` on the server: the check and the write it guards (create unless the
//! id exists, update if the version matches, archive + replace, delete a key's subtree, a
//! document's compare-and-set) are one atomic step against every other client of that graph
//! on that server, in any process. On a transactional graph (JanusGraph) the script commits
//! before it leaves the lock, and rolls back on any failure, so a refused or failed write
//! leaves nothing behind. Reads take the lock too (TinkerGraph's vertices are not safe to read
//! while another thread writes them). What does **not** hold: several JanusGraph *servers* on one
//! storage backend each have their own lock, so compare-and-set is atomic only among the
//! clients of one server (use one Gremlin Server per JanusGraph cluster for Weft, or add
//! JanusGraph's locking); the server must run the `gremlin-groovy` script engine (standard).
//!
//! # Queries, filters, aggregates
//!
//! Kind, class and owners are pushed down into the traversal. Without a filter, sorting
//! (newest first, ties by id descending) and paging happen on the server and only the page is
//! sent. With a filter, every object of the kind/class/owners is read once and the filter is
//! evaluated here with the reference semantics ([`weft_plugin_api::support`]); a path through
//! references fetches the referenced objects in one request per hop. Aggregates use
//! `weft_plugin_api::aggregate::compute` the same way. Bounds (never a silent truncation): an
//! answer larger than [`client::MAX_MESSAGE_BYTES`] (256 MiB) or a request larger than the
//! server's `maxContentLength` (10 MiB by default) fails with an error; a query with a filter
//! holds every candidate of its class in memory once; the objects read for one query are not
//! a snapshot (each request is consistent on its own).
//!
//! # Capabilities
//!
//! `HISTORY`, `FILTER`, `FILTER_REFERENCE_PATHS`, `AGGREGATE`, `PERSISTENT` (below) and
//! `VERSIONED_WRITES`.
//!
//! # Persistence
//!
//! `PERSISTENT` is declared because the connector keeps nothing itself: the data lives in the
//! server's graph, and whether it survives a **server** restart is the server's storage
//! choice — TinkerGraph only with `gremlin.tinkergraph.graphLocation`/`graphFormat` configured
//! (it writes the graph on a clean shutdown), JanusGraph always (its storage backend). A
//! restart of the Weft host loses nothing.
//!
//! # Failures
//!
//! An unreachable server at start-up: the constructor answers, within `connect_timeout_ms`,
//! one line naming the URL. Wrong credentials: one line saying the server refused them. The
//! server lost later: calls answer `Unavailable`, and the next call reconnects (with back-off,
//! see [`client`]).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod client;
pub mod config;
pub mod scripts;
pub mod store;

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll};

use serde_json::Value;
use weft_plugin_api::{
    Capabilities, Connector, DocumentName, Id, ObjectHistory, ObjectKind, ObjectPage, ObjectQuery,
    PluginContext, PluginError, PluginLogger, PluginResult, StoredKey, StoredObject,
    VersionedDocument, VersionedObject,
};

pub use client::{Client, ClientError, ServerInfo};
pub use config::{Config, CONFIG_HELP};
pub use store::{Names, Store};

/// The declared plugin name.
pub const PLUGIN_NAME: &str = "gremlin";

/// What this connector can do.
pub const CAPABILITIES: Capabilities = Capabilities::HISTORY
    .union(Capabilities::FILTER)
    .union(Capabilities::FILTER_REFERENCE_PATHS)
    .union(Capabilities::AGGREGATE)
    .union(Capabilities::PERSISTENT)
    .union(Capabilities::VERSIONED_WRITES);

#[cfg(feature = "plugin")]
weft_plugin_api::export_connector! {
    name: "gremlin",
    capabilities: CAPABILITIES,
    config_help: CONFIG_HELP,
    new: Gremlin::from_context,
}

/// The plugin's own tokio runtime (network I/O), made by the first connector and shared by
/// all; it lives in a `static`, so it is never dropped while a task still uses it.
static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

fn runtime() -> PluginResult<tokio::runtime::Handle> {
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt.handle().clone());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("weft-gremlin-io")
        .enable_all()
        .build()
        .map_err(|e| PluginError::unavailable(format!("gremlin: cannot start its runtime: {e}")))?;
    Ok(RUNTIME.get_or_init(|| rt).handle().clone())
}

/// The connector object the host holds.
pub struct Gremlin {
    store: Arc<Store>,
    runtime: tokio::runtime::Handle,
}

/// A task on the plugin's runtime; dropping it (the host gave up on the call) aborts the task.
struct Task<T>(tokio::task::JoinHandle<PluginResult<T>>, &'static str);

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for Task<T> {
    type Output = PluginResult<T>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let op = self.1;
        Pin::new(&mut self.0).poll(cx).map(|r| {
            r.unwrap_or_else(|e| {
                Err(PluginError::internal(format!(
                    "gremlin: {op} did not finish: {e}"
                )))
            })
        })
    }
}

/// Index set-ups already attempted in this process, by `url|source|prefix`.
static INDEXED: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();

impl Gremlin {
    /// The constructor `export_connector!` calls: parses the config, connects (under the connect
    /// timeout), and on JanusGraph makes the composite indexes.
    pub fn from_context(ctx: PluginContext) -> PluginResult<Self> {
        let config = Config::parse(&ctx.config)?;
        let runtime = runtime()?;
        let log = ctx.log;
        let store = Arc::new(Store::new(Client::new(&config, log), &config, log));
        let started = Arc::clone(&store);
        let task = runtime.spawn(async move { started.client().connect().await });
        let info = match futures::executor::block_on(task) {
            Ok(Ok(info)) => info,
            Ok(Err(ClientError::Auth(m))) => {
                return Err(PluginError::unavailable(format!(
                    "gremlin: the Gremlin Server at {} {}",
                    config.url,
                    one_line(&m)
                )))
            }
            Ok(Err(e)) => {
                let m = match e {
                    ClientError::Unavailable(m) | ClientError::Protocol(m) => m,
                    ClientError::Server(code, m) => format!("it answered {code}: {m}"),
                    ClientError::Auth(m) => m,
                };
                return Err(PluginError::unavailable(format!(
                    "gremlin: cannot use the Gremlin Server at {}: {}",
                    config.url,
                    one_line(&m)
                )));
            }
            Err(e) => {
                return Err(PluginError::internal(format!(
                    "gremlin: connecting to {} did not finish: {e}",
                    config.url
                )))
            }
        };
        if info.graph_class.to_ascii_lowercase().contains("janusgraph") {
            let key = format!(
                "{}|{}|{}",
                config.url, config.traversal_source, config.graph_prefix
            );
            let first = INDEXED
                .get_or_init(Default::default)
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(key);
            if first {
                let s = Arc::clone(&store);
                let task = runtime.spawn(async move { janusgraph_indexes(&s).await });
                match futures::executor::block_on(task) {
                    Ok(Ok(note)) => log.info(&note),
                    Ok(Err(e)) => log.warn(&format!(
                        "could not create the JanusGraph composite indexes (lookups work, but scan): {}",
                        e.message
                    )),
                    Err(e) => log.warn(&format!("the JanusGraph index set-up did not finish: {e}")),
                }
            }
        } else {
            log.debug(&format!(
                "the graph is a {}, not JanusGraph: no composite indexes to create",
                info.graph_class
            ));
        }
        log.info(&format!(
            "keeping things, actions, keys and the ontology in the graph {:?} ({}{}) of the Gremlin Server at {}, namespace {:?}, names prefixed {:?}; the server's storage decides whether they survive its restart",
            config.traversal_source,
            info.graph_class,
            if info.transactions { ", transactional" } else { "" },
            config.url,
            config.namespace,
            config.graph_prefix,
        ));
        Ok(Gremlin { store, runtime })
    }

    /// Maintenance, outside the contract (tools and tests; blocks the calling thread, never
    /// call it on an async runtime's thread): the namespaces in the graph, under this
    /// connector's `graph_prefix`, whose name starts with `prefix`. Scans the graph.
    pub fn namespaces(&self, prefix: &str) -> PluginResult<Vec<String>> {
        let prefix = prefix.to_string();
        futures::executor::block_on(self.run("namespaces", move |s| async move {
            s.namespaces(&prefix).await
        }))
    }

    /// Maintenance, outside the contract (tools and tests; blocks the calling thread): deletes
    /// every vertex and edge of the given namespaces (under this connector's `graph_prefix`),
    /// answering how many vertices went. The connector's own namespace is not special: drop it
    /// only when nothing uses it.
    pub fn drop_namespaces(&self, namespaces: Vec<String>) -> PluginResult<u64> {
        futures::executor::block_on(self.run("drop_namespaces", move |s| async move {
            s.drop_namespaces(namespaces).await
        }))
    }

    /// Runs `work` on the plugin's runtime; logs store failures.
    fn run<T, F, Fut>(
        &self,
        op: &'static str,
        work: F,
    ) -> impl Future<Output = PluginResult<T>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce(Arc<Store>) -> Fut + Send + 'static,
        Fut: Future<Output = PluginResult<T>> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        let log = store.log();
        let task = Task(self.runtime.spawn(async move { work(store).await }), op);
        async move {
            let result = task.await;
            log_failure(log, op, &result);
            result
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Creates the JanusGraph composite indexes; answers a line for the log.
async fn janusgraph_indexes(store: &Store) -> PluginResult<String> {
    let n = store.names();
    let specs = [
        ("by_uid", vec!["ns", "uid"]),
        ("by_kind", vec!["ns", "kind"]),
        ("by_class", vec!["ns", "kind", "cls"]),
        ("by_parent", vec!["ns", "parent"]),
    ];
    let indexes: Vec<Value> = specs
        .iter()
        .map(|(name, keys)| {
            client::list(vec![
                Value::String(format!("{}_{name}", n.prefix)),
                client::list(keys.iter().map(|k| Value::String(n.get(k))).collect()),
            ])
        })
        .collect();
    let r = store
        .run_plain(
            scripts::JANUSGRAPH_INDEXES,
            vec![("indexes", client::list(indexes))],
        )
        .await?;
    let names = |v: &Value| -> String {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let (made, skipped) = (names(&r["made"]), names(&r["skipped"]));
    let mut note = format!(
        "JanusGraph composite indexes {}_by_uid, _by_kind, _by_class, _by_parent: ",
        n.prefix
    );
    note.push_str(&match (made.is_empty(), skipped.is_empty()) {
        (true, true) => "present".to_string(),
        (false, true) => format!("created {made}"),
        (_, false) => format!(
            "created [{made}]; NOT created [{skipped}]: their property keys exist already (data written before), so they would need a reindex (JanusGraph management: updateIndex REINDEX)"
        ),
    });
    Ok(note)
}

fn log_failure<T>(log: PluginLogger, op: &str, result: &PluginResult<T>) {
    if let Err(e) = result {
        use weft_plugin_api::ErrorKind::{Internal, Unavailable};
        if matches!(e.kind, Internal | Unavailable) {
            log.error(&format!("{op}: {}", e.message));
        }
    }
}

impl Connector for Gremlin {
    fn create_object(
        &self,
        object: StoredObject,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        self.run("create_object", move |s| async move {
            s.create_object(object).await
        })
    }

    fn get_object(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<Option<StoredObject>>> + Send + 'static {
        self.run("get_object", move |s| async move {
            Ok(s.get_objects(kind, vec![id]).await?.pop().flatten())
        })
    }

    fn get_objects(
        &self,
        kind: ObjectKind,
        ids: Vec<Id>,
    ) -> impl Future<Output = PluginResult<Vec<Option<StoredObject>>>> + Send + 'static {
        self.run("get_objects", move |s| async move {
            s.get_objects(kind, ids).await
        })
    }

    fn query_objects(
        &self,
        query: ObjectQuery,
    ) -> impl Future<Output = PluginResult<ObjectPage>> + Send + 'static {
        self.run("query_objects", move |s| async move {
            s.query_objects(query).await
        })
    }

    fn update_object(
        &self,
        object: StoredObject,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        self.run("update_object", move |s| async move {
            s.update_object(object, None).await.map(|_| ())
        })
    }

    fn delete_object(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        self.run("delete_object", move |s| async move {
            s.delete_object(kind, id).await
        })
    }

    fn object_history(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<ObjectHistory>> + Send + 'static {
        self.run("object_history", move |s| async move {
            s.object_history(kind, id).await
        })
    }

    fn aggregate(
        &self,
        query: ObjectQuery,
        request_json: String,
    ) -> impl Future<Output = PluginResult<String>> + Send + 'static {
        self.run("aggregate", move |s| async move {
            s.aggregate(query, request_json).await
        })
    }

    fn add_key(&self, key: StoredKey) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        self.run("add_key", move |s| async move { s.add_key(key).await })
    }

    fn get_key(
        &self,
        id: Id,
    ) -> impl Future<Output = PluginResult<Option<StoredKey>>> + Send + 'static {
        self.run("get_key", move |s| async move { s.get_key(id).await })
    }

    fn key_children(
        &self,
        id: Id,
    ) -> impl Future<Output = PluginResult<Vec<StoredKey>>> + Send + 'static {
        self.run(
            "key_children",
            move |s| async move { s.key_children(id).await },
        )
    }

    fn root_keys(&self) -> impl Future<Output = PluginResult<Vec<StoredKey>>> + Send + 'static {
        self.run("root_keys", |s| async move { s.root_keys().await })
    }

    fn update_key(
        &self,
        key: StoredKey,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        self.run(
            "update_key",
            move |s| async move { s.update_key(key).await },
        )
    }

    fn delete_key(&self, id: Id) -> impl Future<Output = PluginResult<Vec<Id>>> + Send + 'static {
        self.run("delete_key", move |s| async move { s.delete_key(id).await })
    }

    fn get_document(
        &self,
        document: DocumentName,
    ) -> impl Future<Output = PluginResult<VersionedDocument>> + Send + 'static {
        self.run("get_document", move |s| async move {
            s.get_document(document).await
        })
    }

    fn put_document(
        &self,
        document: DocumentName,
        json: String,
        expected_version: u64,
    ) -> impl Future<Output = PluginResult<u64>> + Send + 'static {
        self.run("put_document", move |s| async move {
            s.put_document(document, json, expected_version).await
        })
    }

    fn get_object_versioned(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<Option<VersionedObject>>> + Send + 'static {
        self.run("get_object_versioned", move |s| async move {
            s.get_object_versioned(kind, id).await
        })
    }

    fn update_object_if(
        &self,
        object: StoredObject,
        expected_version: u64,
    ) -> impl Future<Output = PluginResult<u64>> + Send + 'static {
        self.run("update_object_if", move |s| async move {
            s.update_object(object, Some(expected_version)).await
        })
    }
}
