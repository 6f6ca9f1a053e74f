//! `weft-cassandra`: a Weft connector on Apache Cassandra (plugin name `cassandra`), written
//! against Cassandra 5.0 through the ScyllaDB Rust driver (`scylla`). Config:
//! `{"contact_points": ["127.0.0.1:9042"], "keyspace": "weft"}` plus optional keys
//! ([`CONFIG_HELP`]).
//!
//! Declares `HISTORY`, `FILTER`, `FILTER_REFERENCE_PATHS`, `AGGREGATE`, `PERSISTENT`,
//! `VERSIONED_WRITES`, `MIGRATE` and `VECTOR_SEARCH`. Several Weft hosts may share one keyspace: every write that
//! two hosts could race on is a lightweight transaction (Paxos), so they share one ontology, one
//! key tree and the objects without losing each other's writes.
//!
//! # Tables (keyspace created with `IF NOT EXISTS`, the driver waits for schema agreement)
//!
//! | table | primary key | access path |
//! |---|---|---|
//! | `objects` | `((kind, id), seq)`, `seq DESC` | object by kind+id; its history newest first |
//! | `objects_by_class` | `((kind, class), created_ms, id)` | objects of a class |
//! | `objects_by_owner` | `((kind, owner), created_ms, id)` | objects of an owner |
//! | `objects_by_kind` | `((kind), created_ms, id)` | every object of a kind |
//! | `keys` | `(id)` | key by id, with its state `adding`/`live`/`deleting` |
//! | `key_children` | `((parent), created_ms, id)` | the children of a key |
//! | `root_keys` | `((bucket), created_ms, id)`, bucket 0 | the keys without a parent |
//! | `documents` | `(name)` | the ontology and the connector state, with a version |
//! | `object_vectors_<n>` | `((kind, id), write_id)` | the vectors of `n` dimensions, by write; SAI indexes on `v` (cosine), `object_kind`, `class` |
//!
//! * **One partition per object.** The current version lives in *static* columns (`version`,
//!   `deleted`, `class`, …, `properties`), its earlier versions in the clustering rows
//!   (`seq` = the version that was archived, newest first). An update or a delete is then one
//!   conditional batch on one partition: `UPDATE … IF version = v` of the static row plus the
//!   `INSERT` of history row `v`. Cassandra applies a conditional single-partition batch
//!   atomically, so the archive and the new version are one step, and the version column is
//!   the compare-and-set of `update_object_if` (and of `update_object`, which retries on a lost
//!   race, so that no concurrent update is lost and history holds each version once).
//! * **Ids are never reused.** `create_object` is `INSERT … IF NOT EXISTS`; a delete keeps the
//!   partition as a tombstone (`deleted = true`, the object columns null, the history kept), so a
//!   later create of that id fails with `Conflict`.
//! * **Candidate indexes.** `objects_by_*` cannot be written in the same LWT (another
//!   partition), so they are kept as a *superset*: the entries of a new version are written
//!   before its LWT, the entries the new version no longer has are removed after it. Every query
//!   reads ids from an index and then the objects themselves from `objects`, and checks kind,
//!   class, owner and filter there, so a stale entry (a lost race, a crash between the steps)
//!   costs a read, never a wrong answer. Index writes carry `USING TIMESTAMP` derived from the
//!   object version (`2v + 1` for an entry of version `v`, `2v` for the removal of an entry
//!   version `v` dropped), so the entry of a later version always wins over the clean-up of an
//!   earlier one, whatever order they reach the replicas in.
//! * **Queries push down** the owner (one partition per owner) or else the class (one
//!   partition), else read the kind's partition; the rest of the filter is evaluated in the
//!   plugin with the shared reference semantics (`weft_connector_sdk::support`). Filters and
//!   aggregates through reference paths fetch the referenced objects round by round (one round
//!   per hop) until the evaluation needs nothing unseen. **Bound:** one query or aggregate reads
//!   at most `max_query_objects` index entries (default 10 000; references add at most twice
//!   that); above it the call answers `Invalid` saying so — never a silently truncated answer.
//!   Offset and limit do not lower the bound, because `total` counts every match.
//! * **Keys.** `keys` holds each key with a state. `add_key` writes the row as `adding`
//!   (`IF NOT EXISTS`: `Conflict`), its tree entry, reads the parent *serially* (linearisable
//!   with LWTs) and turns the row `live` (`IF state = 'adding'`). `delete_key` marks the key
//!   `deleting` (`IF state = 'live'`: of two hosts deleting it one wins), then each level of
//!   descendants, then removes the rows (`DELETE … IF state = 'deleting'`) and tree entries. An
//!   `add_key` racing with the deletion of its parent is either deleted with it or answers
//!   `NotFound`; readers only see `live` keys and check each tree entry against its key row.
//! * **Documents** are compare-and-set: `INSERT … IF NOT EXISTS` for version 0, else
//!   `UPDATE … SET version = v + 1 IF version = v`. The ontology is shared by every host on the
//!   keyspace.
//! * **Moving a store** (`MIGRATE`, `migrate.rs`). `export_objects` scans `objects` in
//!   partition-token order (`token(kind, id) >= ?`, paged by the driver), skips the other
//!   kind's partitions and answers each partition whole: the current version (none once
//!   deleted, version 0), its history rows newest first. The cursor is
//!   `<token>:<ids answered at that token>`, valid in any process. `import_objects` reads which
//!   of the call's ids are taken (`id IN ?` reads of up to 100 ids) and compares those whole
//!   (the same record is a no-op, another `Conflict` and nothing of the call is written), then
//!   writes the index entries of the others (unlogged batches of one index partition each,
//!   timestamps of the record's version) and then the records *unconditionally*, each one
//!   mutation of its own partition (static row, current or deleted tombstone, plus its history
//!   rows), several records of one replica per unlogged batch, at write timestamp 1 µs so that
//!   any later LWT wins. Not detected: a writer creating the same id between the read and the
//!   write — `weft migrate` rules that out (empty target, no server on it; see `migrate.rs`).
//! * **Object vectors** (`VECTOR_SEARCH`, `vectors.rs`) use Cassandra 5.0's `VECTOR<FLOAT, n>`
//!   and SAI. The length is known only when a vector is written, so `object_vectors_<n>` and its
//!   indexes (`v` with `similarity_function = 'COSINE'`, `object_kind`, `class`) are created
//!   then, `IF NOT EXISTS`, with a table id derived from the `objects` table's id and `n`
//!   (`WITH ID`), so that hosts racing to create it create the same table. **Write order:** a
//!   vector row is keyed by the `write_id` of the object write it belongs to, and is written
//!   *before* that write's LWT, which stores the same `write_id` and `vector_dims = n` in the
//!   object's static columns. **Visibility rule:** a row counts only while the object's current
//!   `write_id` is its own, so the LWT switches object and vector in one step; a write whose
//!   LWT fails (or a plain write, a delete, a crash in between) leaves at most an invisible
//!   row, which the writer removes (the superseded write's row after a success, its own after a
//!   failure). Rows are never updated in place, so no search or `get_vector` can answer a
//!   vector of another version. **Search, filter first:** by kind or class alone, `SELECT …
//!   WHERE object_kind = ? [AND class = ?] ORDER BY v ANN OF ? LIMIT ?` at `ONE`/`LOCAL_ONE`
//!   (the only levels Cassandra 5.0 runs ANN at; the objects are then read at `consistency`),
//!   asking for `2k + 10` rows and up to four times more while rows were dropped by the
//!   visibility rule (at most 1 000, Cassandra's ANN limit); every answered distance is
//!   computed exactly from the stored vector, and the rows are re-ranked by it. With owners or
//!   a filter, or for a query Cassandra cannot index (a zero vector), or while a new index is
//!   still being built, the candidates of `query_objects` (at most `max_query_objects`) are
//!   searched exactly (`vector::exact_nearest`'s order). Vectors Cassandra's cosine index
//!   refuses or mishandles (zero, non-finite, subnormal or overflowing components) are kept
//!   exactly in `raw`, with their direction (or nothing, for a zero vector) in `v`; a zero
//!   vector is then found only by the exact path, as is a vector of another length than the
//!   query (at distance 1).
//! * **Unknown outcomes.** An LWT that times out may or may not have been applied. Every
//!   conditional write carries a random `write_id`; after a timeout a *serial* read (which
//!   completes a Paxos round in flight) tells whether the stored write is ours, and the call
//!   answers accordingly or retries. If even that read fails the call answers `Unavailable`
//!   saying the outcome is unknown.
//! * **No `ALLOW FILTERING`**, every request-path statement is prepared, every value is bound
//!   (class names, properties, ids, documents, vectors); the validated keyspace name and the
//!   vector tables' names (`object_vectors_<n>`, a number) are the only identifiers written
//!   into CQL text (and, when the keyspace or a vector table is created, the validated
//!   replication settings and the table's id). Big reads (index partitions, histories, key lists) are paged by the
//!   driver.
//!
//! * **Consistency.** Reads and writes use `consistency` (default `LOCAL_QUORUM`); LWTs run
//!   their Paxos round at `SERIAL` (`LOCAL_SERIAL` with a `LOCAL_` level) and commit at
//!   `consistency`. Compare-and-set stays correct at any level; with `ONE`/`LOCAL_ONE` on a
//!   multi-node cluster a read may miss a write just acknowledged (a compare-and-set based on
//!   it then answers `Conflict` and the writer reads again).
//!
//! Limits, by design: the history of an object and the objects of one class or owner live in
//! one partition each (Cassandra partitions stay healthy up to some 100 000 rows or 100 MB); one
//! write (an object plus, on update, its previous version) must fit in one Cassandra request
//! (16 MiB by default: larger answers `Invalid`); several hosts creating a new keyspace at the
//! very same moment may race on `CREATE TABLE` (start one first).
//!
//! # Failures
//!
//! * Unreachable server at start: the constructor answers one line naming the contact points,
//!   within `connect_timeout_ms`. Wrong or missing credentials: one line saying so.
//! * Server lost later: calls answer `Unavailable` (HTTP 503). The driver keeps reconnecting to
//!   each known node (exponential backoff from 50 ms up to 10 s), so calls work again once the
//!   server is back.
//!
//! # Runtime
//!
//! The plugin owns a small multi-thread tokio runtime (the host never lends its own; two worker
//! threads, the SDK's [`PluginRuntime`]); the connector is the SDK's [`OnRuntime`] over [`Db`],
//! which runs every call there as a task. A read whose future the host drops is aborted; a
//! write runs to completion, so that its steps (index entries, LWT, clean-up) are never cut
//! short (the SDK's default [`Run`](weft_connector_sdk::Run) choice).

mod config;
mod migrate;
mod schema;
mod store;
mod vectors;

use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::NewSessionError;
use weft_connector_sdk::{OnRuntime, PluginRuntime, RuntimeOptions};
use weft_plugin_api::{Capabilities, PluginContext, PluginError, PluginLogger, PluginResult};

pub use config::{valid_keyspace, Config, Replication, CONFIG_HELP};
pub use store::Db;

use crate::schema::one_line;

/// The declared plugin name.
pub const PLUGIN_NAME: &str = "cassandra";

/// What this connector can do.
pub const CAPABILITIES: Capabilities = Capabilities::HISTORY
    .union(Capabilities::FILTER)
    .union(Capabilities::FILTER_REFERENCE_PATHS)
    .union(Capabilities::AGGREGATE)
    .union(Capabilities::PERSISTENT)
    .union(Capabilities::VERSIONED_WRITES)
    .union(Capabilities::MIGRATE)
    .union(Capabilities::VECTOR_SEARCH);

#[cfg(feature = "plugin")]
weft_plugin_api::export_connector! {
    name: "cassandra",
    capabilities: CAPABILITIES,
    config_help: CONFIG_HELP,
    new: open,
}

/// How long the keyspace and table creation and the statement preparation at start may take
/// (plus one request timeout).
const SETUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The connector object the host holds: the keyspace's [`Db`] on the plugin's runtime.
pub type Cassandra = OnRuntime<Db>;

/// The constructor `export_connector!` calls: checks the config, connects (within
/// `connect_timeout_ms`), creates the keyspace and tables when missing and prepares the
/// statements.
pub fn open(ctx: PluginContext) -> PluginResult<Cassandra> {
    let config = Config::parse(&ctx.config)?;
    let runtime = PluginRuntime::get(ctx.name, RuntimeOptions::ASYNC_IO)?;
    // Connect on the plugin's runtime and wait here (the constructor is synchronous); the
    // connect itself is bounded by `connect_timeout_ms`, the DDL by the request timeout.
    let db = runtime.block_on("connecting", connect(config, ctx.log))??;
    Ok(OnRuntime::new(runtime, db, ctx.log))
}

/// Why the session could not be opened, in one line naming the contact points.
fn connect_error(config: &Config, e: &NewSessionError) -> PluginError {
    let nodes = config.contact_points.join(", ");
    let detail = one_line(&e.to_string());
    if detail.contains("Authentication is required") {
        return PluginError::unavailable(format!(
            "cassandra: Cassandra at {nodes} requires a login: set database_config.username and password"
        ));
    }
    if detail.contains("Authentication failed") || detail.contains("AuthenticationError") {
        let user = config
            .credentials
            .as_ref()
            .map(|(u, _)| u.as_str())
            .unwrap_or_default();
        let server = detail
            .rsplit("Error message: ")
            .next()
            .filter(|m| *m != detail)
            .unwrap_or("bad credentials");
        return PluginError::unavailable(format!(
            "cassandra: Cassandra at {nodes} refused the username {user:?} and its password: {server}"
        ));
    }
    PluginError::unavailable(format!(
        "cassandra: cannot connect to Cassandra at {nodes}: {detail}"
    ))
}

async fn connect(config: Config, log: PluginLogger) -> PluginResult<Db> {
    let profile = ExecutionProfile::builder()
        .consistency(config.consistency)
        .serial_consistency(Some(config.serial_consistency))
        .request_timeout(Some(config.request_timeout))
        .build()
        .into_handle();
    let mut builder = SessionBuilder::new()
        .known_nodes(&config.contact_points)
        .connection_timeout(config.connect_timeout)
        .default_execution_profile_handle(profile)
        .schema_agreement_timeout(std::time::Duration::from_secs(60))
        .keyspaces_to_fetch([config.keyspace.clone()]);
    if let Some((user, password)) = &config.credentials {
        builder = builder.user(user, password);
    }
    let nodes = config.contact_points.join(", ");
    let session = match tokio::time::timeout(config.connect_timeout, builder.build()).await {
        Ok(Ok(session)) => session,
        Ok(Err(e)) => return Err(connect_error(&config, &e)),
        Err(_) => {
            return Err(PluginError::unavailable(format!(
                "cassandra: no Cassandra node answered at {nodes} within {} ms (database_config.connect_timeout_ms); check contact_points and that the server runs",
                config.connect_timeout.as_millis()
            )))
        }
    };
    // Creating a keyspace waits for schema agreement across the cluster; bound it all the same.
    let setup_limit = SETUP_TIMEOUT + config.request_timeout;
    let setup = async {
        schema::create(&session, &config).await?;
        let st = schema::Statements::prepare(&session, &config).await?;
        let vectors = store::Vectors::new(&session, &config).await?;
        Ok((st, vectors))
    };
    let (st, vectors) = tokio::time::timeout(setup_limit, setup)
        .await
        .unwrap_or_else(|_| {
            Err(PluginError::unavailable(format!(
                "cassandra: Cassandra at {nodes} did not finish creating or preparing keyspace {} within {} s",
                config.keyspace,
                setup_limit.as_secs()
            )))
        })?;
    log.info(&format!(
        "keeping things, actions, keys and the ontology in keyspace {} on Cassandra at {nodes} (consistency {})",
        config.keyspace, config.consistency_name
    ));
    Ok(Db {
        session,
        st,
        keyspace: config.keyspace,
        max_query_objects: config.max_query_objects,
        log,
        vectors,
    })
}
