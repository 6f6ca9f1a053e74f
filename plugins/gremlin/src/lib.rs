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
//! | `<p>_object` | a Thing or Action, current version (or tombstone) | `uid` = `thing:<uuid>` / `action:<uuid>`, `kind` (`thing`/`action`), `id` (uuid), `class`, `context`, `owner` (uuid), `created_ms`, `updated_ms` (Long), `properties` (the property bag, JSON text: the source of truth), `version` (Long, 1 after create, +1 per update; as given by `import_objects`, 0 on an imported tombstone), `deleted` (Boolean: a tombstone keeps the id from being reused), `history_count` (Long) |
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
//! evaluated here with the reference semantics ([`weft_connector_sdk::support`]); a path through
//! references fetches the referenced objects in one request per hop. Aggregates use
//! `weft_plugin_api::aggregate::compute` the same way. Bounds (never a silent truncation): an
//! answer larger than [`client::MAX_MESSAGE_BYTES`] (256 MiB) or a request larger than the
//! server's `maxContentLength` (10 MiB by default) fails with an error; a query with a filter
//! holds every candidate of its class in memory once; the objects read for one query are not
//! a snapshot (each request is consistent on its own).
//!
//! # Capabilities
//!
//! `HISTORY`, `FILTER`, `FILTER_REFERENCE_PATHS`, `AGGREGATE`, `PERSISTENT` (below),
//! `VERSIONED_WRITES` and `MIGRATE` (below).
//!
//! # Moving a store (`MIGRATE`)
//!
//! `export_objects` is one script per page: the object vertices of the kind, tombstones
//! included, whose **vertex id** is above the cursor, in vertex id order (numbers, then ids
//! compared as text), each with its version and its `old_version` vertices read as
//! `object_history` reads them; at most 1,000 records a page whatever the limit (one answer
//! stays bounded). The cursor is the vertex id of the last record of the page before
//! (`n:<number>` or `s:<text>`): plain text, valid in any process, since vertex ids never
//! change (a graph exported and reloaded with new ids makes a walk start again). The vertex id
//! orders the walk because the index hits carry it: on JanusGraph a page reads the ids of the
//! kind's objects from the `(ns, kind)` index (a composite index has no ranges) and loads only
//! the page's vertices (reading the `id` property of every object instead took 1.5 to 2 s
//! against 0.1 s for 3,000 objects, per page). On TinkerGraph (no indexes) every script scans
//! the graph anyway.
//!
//! `import_objects` checks every record first (`ObjectRecord::check`, a version that fits a
//! Long: `Invalid`, nothing written), then runs one script per chunk of records (up to 250, or
//! about 2 MiB of bindings; the server refuses requests above its `maxContentLength`), under
//! the same lock as every write. The script looks up the chunk's ids and the targets of their
//! references in one query, then per record either compares it with what the graph holds (the
//! same current object, version and history: nothing to do; anything else: `Conflict`, and
//! the import stops there, the records before it written) or writes the vertices and edges a
//! create, its updates and its delete would have left: the object vertex (a tombstone without
//! `properties` when deleted, its fields those of its last version, version 0), one
//! `old_version` vertex per version with `seq` and `archived_ms` as given and its `history`
//! edge, and the `refers_to` edges of the live ones to objects that exist and are not deleted.
//! References to objects of later chunks of the same call are linked by one more script after
//! the last chunk, so a call's edges do not depend on its chunking; a reference to an object
//! imported by a *later call* gets its edge when the referring object is next written, as for
//! a normal create (answers never depend on these edges).
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
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use serde_json::Value;
use weft_connector_sdk::{OnRuntime, PluginRuntime, RuntimeOptions};
use weft_plugin_api::{Capabilities, PluginContext, PluginError, PluginResult};

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
    .union(Capabilities::VERSIONED_WRITES)
    .union(Capabilities::MIGRATE);

#[cfg(feature = "plugin")]
weft_plugin_api::export_connector! {
    name: "gremlin",
    capabilities: CAPABILITIES,
    config_help: CONFIG_HELP,
    new: open,
}

/// The connector object the host holds: the graph's [`Store`] on the plugin's own runtime (its
/// network I/O). Maintenance outside the contract (tools and tests) runs through
/// [`OnRuntime::block_on`], e.g. `g.block_on("namespaces", |s| async move {
/// s.namespaces("test-").await })`.
pub type Gremlin = OnRuntime<Store>;

/// Index set-ups already attempted in this process, by `url|source|prefix`.
static INDEXED: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();

/// The constructor `export_connector!` calls: parses the config, connects (under the connect
/// timeout), and on JanusGraph makes the composite indexes.
pub fn open(ctx: PluginContext) -> PluginResult<Gremlin> {
    let config = Config::parse(&ctx.config)?;
    let runtime = PluginRuntime::get(ctx.name, RuntimeOptions::ASYNC_IO)?;
    let log = ctx.log;
    let store = Arc::new(Store::new(Client::new(&config, log), &config, log));
    let started = Arc::clone(&store);
    let connected = runtime.block_on(
        "connecting",
        async move { started.client().connect().await },
    );
    let info = match connected {
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
        Err(e) => return Err(e),
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
            match runtime.block_on("the JanusGraph index set-up", async move {
                janusgraph_indexes(&s).await
            }) {
                Ok(Ok(note)) => log.info(&note),
                Ok(Err(e)) => log.warn(&format!(
                    "could not create the JanusGraph composite indexes (lookups work, but scan): {}",
                    e.message
                )),
                Err(e) => log.warn(&e.message),
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
    Ok(OnRuntime::shared(runtime, store, log))
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
