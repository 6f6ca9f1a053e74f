//! The keyspace's tables (created idempotently) and every prepared statement of the request
//! paths. The table design and the reasons for it are in the crate docs (`lib.rs`).
//!
//! The keyspace name is the only identifier written into CQL text; it was validated by
//! [`crate::config::valid_keyspace`]. Every value travels as a bound value.

use std::time::Duration;

use scylla::client::session::Session;
use scylla::frame::types::Consistency;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::unprepared::Statement;
use weft_plugin_api::{PluginError, PluginResult};

use crate::config::Config;

/// The tables, as `CREATE TABLE IF NOT EXISTS` statements with `{ks}` for the keyspace.
const TABLES: &[&str] = &[
    // One partition per object: the current version in static columns, its history in the
    // clustering rows (seq = the version that was archived), so that an update or delete and
    // the archiving of the previous version are one conditional batch on one partition.
    "CREATE TABLE IF NOT EXISTS {ks}.objects (
        kind tinyint, id uuid, seq bigint,
        version bigint static, deleted boolean static,
        class text static, context text static, owner uuid static,
        created_ms bigint static, updated_ms bigint static, properties text static,
        write_id uuid static, vector_dims int static,
        archived_ms bigint,
        h_class text, h_context text, h_owner uuid,
        h_created_ms bigint, h_updated_ms bigint, h_properties text,
        replaced_by uuid,
        PRIMARY KEY ((kind, id), seq)
    ) WITH CLUSTERING ORDER BY (seq DESC)",
    // Candidate indexes (a superset of the truth, checked against `objects` on every read),
    // clustered in the contract's order: newest first, ties by id descending. Keyspaces made
    // by an older version keep `id ASC` (a table's clustering order never changes); that is
    // harmless: `query_objects` reads every candidate and orders the page with
    // `support::page`, never by the clustering order.
    "CREATE TABLE IF NOT EXISTS {ks}.objects_by_class (
        kind tinyint, class text, created_ms bigint, id uuid,
        PRIMARY KEY ((kind, class), created_ms, id)
    ) WITH CLUSTERING ORDER BY (created_ms DESC, id DESC)",
    "CREATE TABLE IF NOT EXISTS {ks}.objects_by_owner (
        kind tinyint, owner uuid, created_ms bigint, id uuid,
        PRIMARY KEY ((kind, owner), created_ms, id)
    ) WITH CLUSTERING ORDER BY (created_ms DESC, id DESC)",
    "CREATE TABLE IF NOT EXISTS {ks}.objects_by_kind (
        kind tinyint, created_ms bigint, id uuid,
        PRIMARY KEY ((kind), created_ms, id)
    ) WITH CLUSTERING ORDER BY (created_ms DESC, id DESC)",
    // Keys: one row per key with its life-cycle state ('adding', 'live', 'deleting').
    "CREATE TABLE IF NOT EXISTS {ks}.keys (
        id uuid PRIMARY KEY, parent uuid, token_hash text, email text,
        ip_origin list<text>, expires_ms bigint,
        can_read boolean, can_write boolean, can_delete boolean, can_execute boolean,
        created_ms bigint, state text, write_id uuid
    )",
    "CREATE TABLE IF NOT EXISTS {ks}.key_children (
        parent uuid, created_ms bigint, id uuid,
        PRIMARY KEY ((parent), created_ms, id)
    )",
    "CREATE TABLE IF NOT EXISTS {ks}.root_keys (
        bucket int, created_ms bigint, id uuid,
        PRIMARY KEY ((bucket), created_ms, id)
    )",
    "CREATE TABLE IF NOT EXISTS {ks}.documents (
        name text PRIMARY KEY, json text, version bigint, write_id uuid
    )",
];

/// Creates the keyspace (with the configured replication) and the tables when missing; the
/// driver waits for schema agreement after each change.
pub async fn create(session: &Session, config: &Config) -> PluginResult<()> {
    let ks = &config.keyspace;
    let replication = config.replication.cql();
    // Schema changes wait for agreement and queue behind other schema changes on the server:
    // they get their own, longer timeout than requests (the whole start-up is bounded too).
    let ddl = |cql: String| {
        let mut statement = Statement::new(cql);
        statement.set_request_timeout(Some(DDL_TIMEOUT));
        statement
    };
    let failed = |e: scylla::errors::ExecutionError, what: String| {
        PluginError::unavailable(one_line(&format!(
            "cassandra: could not create {what}: {e}"
        )))
    };
    session
        .query_unpaged(
            ddl(format!(
                "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {replication}"
            )),
            (),
        )
        .await
        .map_err(|e| failed(e, format!("keyspace {ks}")))?;
    for table in TABLES {
        session
            .query_unpaged(ddl(table.replace("{ks}", ks)), ())
            .await
            .map_err(|e| failed(e, format!("the tables of keyspace {ks}")))?;
    }
    // Keyspaces made before object vectors: the column naming the current version's vector
    // table (a no-op where it exists).
    session
        .query_unpaged(
            ddl(format!(
                "ALTER TABLE {ks}.objects ADD IF NOT EXISTS vector_dims int static"
            )),
            (),
        )
        .await
        .map_err(|e| failed(e, format!("the vector column of {ks}.objects")))?;
    Ok(())
}

/// The timeout of one schema change.
pub(crate) const DDL_TIMEOUT: Duration = Duration::from_secs(30);

/// A message on one line (driver errors may span several).
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The columns of the current version of an object, as [`Statements::get_object`] selects
/// them.
pub const OBJECT_COLUMNS: &str = "version, deleted, class, context, owner, created_ms, \
     updated_ms, properties, write_id, vector_dims";

/// The columns of an object's whole partition (its token, key, current version and every
/// history row), as [`Statements::export_first`], [`Statements::export_from`] and
/// [`Statements::record`] select them (`crate::migrate::RecordRow`).
pub const RECORD_COLUMNS: &str = "token(kind, id) AS tk, kind, id, version, deleted, class, \
     context, owner, created_ms, updated_ms, properties, seq, archived_ms, h_class, h_context, \
     h_owner, h_created_ms, h_updated_ms, h_properties";

/// Every prepared statement of the request paths.
pub struct Statements {
    // objects
    pub get_object: PreparedStatement,
    pub get_object_serial: PreparedStatement,
    pub history_row_serial: PreparedStatement,
    pub history: PreparedStatement,
    pub create_object: PreparedStatement,
    /// Conditional batch: replace the current version `IF version = ?` and archive the
    /// previous one.
    pub update_object: Batch,
    /// Conditional batch: mark deleted `IF version = ?` and archive the last version.
    pub delete_object: Batch,
    /// One history row (`seq` = the version it archived), the second statement of the update
    /// and delete batches and the history of an imported record.
    pub history_insert: PreparedStatement,
    // moving a store (export, import)
    /// Every partition of `objects`, whole, in token order (the first export page).
    pub export_first: PreparedStatement,
    /// Every partition of `objects` from a token on, whole (the next export pages).
    pub export_from: PreparedStatement,
    /// One object's partition, whole (what an import compares a record with).
    pub record: PreparedStatement,
    /// Which of some partitions exist (`kind = ? AND id IN ?`): the ids an import finds taken.
    pub import_taken: PreparedStatement,
    /// The current version of an imported live object (unconditional: an import writes only
    /// ids it found free, at `crate::migrate::IMPORT_TIMESTAMP`).
    pub import_live: PreparedStatement,
    /// The tombstone of an imported deleted object (unconditional, as `import_live`).
    pub import_deleted: PreparedStatement,
    // candidate indexes
    pub index_class_put: PreparedStatement,
    pub index_class_del: PreparedStatement,
    pub index_owner_put: PreparedStatement,
    pub index_owner_del: PreparedStatement,
    pub index_kind_put: PreparedStatement,
    pub index_kind_del: PreparedStatement,
    pub by_class: PreparedStatement,
    pub by_owner: PreparedStatement,
    pub by_kind: PreparedStatement,
    // keys
    pub get_key: PreparedStatement,
    pub get_key_serial: PreparedStatement,
    pub insert_key: PreparedStatement,
    pub key_live: PreparedStatement,
    pub update_key: PreparedStatement,
    pub key_deleting: PreparedStatement,
    pub key_deleting_any: PreparedStatement,
    pub key_remove: PreparedStatement,
    pub key_abandon: PreparedStatement,
    pub child_put: PreparedStatement,
    pub child_del: PreparedStatement,
    pub children_del_all: PreparedStatement,
    pub children: PreparedStatement,
    pub root_put: PreparedStatement,
    pub root_del: PreparedStatement,
    pub roots: PreparedStatement,
    // documents
    pub get_document: PreparedStatement,
    pub get_document_serial: PreparedStatement,
    pub insert_document: PreparedStatement,
    pub update_document: PreparedStatement,
}

/// The page size of big reads (index partitions, histories, key lists).
const PAGE_SIZE: i32 = 1000;

/// The page size of the export scans (rows: an object's current version and each of its
/// earlier versions is one); `crate::migrate` lowers it for small export pages.
pub const EXPORT_PAGE_SIZE: i32 = 5000;

impl Statements {
    /// Prepares every statement against the keyspace.
    pub async fn prepare(session: &Session, config: &Config) -> PluginResult<Statements> {
        let ks = &config.keyspace;
        let serial = match config.serial_consistency {
            scylla::frame::types::SerialConsistency::Serial => Consistency::Serial,
            scylla::frame::types::SerialConsistency::LocalSerial => Consistency::LocalSerial,
        };
        let prep = |cql: String| async move {
            session.prepare(cql.replace("{ks}", ks)).await.map_err(|e| {
                PluginError::unavailable(one_line(&format!(
                    "cassandra: could not prepare a statement on keyspace {ks}: {e}"
                )))
            })
        };
        let idempotent = |mut p: PreparedStatement| {
            p.set_is_idempotent(true);
            p
        };
        let paged = |mut p: PreparedStatement| {
            p.set_page_size(PAGE_SIZE);
            p.set_is_idempotent(true);
            p
        };
        let serial_read = |mut p: PreparedStatement| {
            p.set_consistency(serial);
            p.set_is_idempotent(true);
            p
        };
        let s = |cql: &str| cql.to_string();

        let history_insert = prep(s(
            "INSERT INTO {ks}.objects (kind, id, seq, archived_ms, h_class, h_context, h_owner, \
             h_created_ms, h_updated_ms, h_properties, replaced_by) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ))
        .await?;
        let replace_current = prep(s(
            "UPDATE {ks}.objects SET class = ?, context = ?, owner = ?, created_ms = ?, \
             updated_ms = ?, properties = ?, version = ?, write_id = ?, vector_dims = ? \
             WHERE kind = ? AND id = ? IF version = ?",
        ))
        .await?;
        let mark_deleted = prep(s(
            "UPDATE {ks}.objects SET deleted = true, version = ?, write_id = ?, class = null, \
             context = null, owner = null, created_ms = null, updated_ms = null, \
             properties = null, vector_dims = null WHERE kind = ? AND id = ? IF version = ?",
        ))
        .await?;
        let batch = |first: &PreparedStatement| {
            let mut b = Batch::new(BatchType::Logged);
            b.append_statement(first.clone());
            b.append_statement(history_insert.clone());
            b
        };
        let update_object = batch(&replace_current);
        let delete_object = batch(&mark_deleted);

        Ok(Statements {
            get_object: idempotent(
                prep(format!(
                    "SELECT {OBJECT_COLUMNS} FROM {{ks}}.objects WHERE kind = ? AND id = ? LIMIT 1"
                ))
                .await?,
            ),
            get_object_serial: serial_read(
                prep(s("SELECT version, deleted, write_id FROM {ks}.objects \
                     WHERE kind = ? AND id = ? LIMIT 1"))
                .await?,
            ),
            history_row_serial: serial_read(
                prep(s(
                    "SELECT replaced_by FROM {ks}.objects WHERE kind = ? AND id = ? AND seq = ?",
                ))
                .await?,
            ),
            history: paged(
                prep(s(
                    "SELECT version, deleted, seq, archived_ms, h_class, h_context, h_owner, \
                     h_created_ms, h_updated_ms, h_properties FROM {ks}.objects \
                     WHERE kind = ? AND id = ?",
                ))
                .await?,
            ),
            create_object: prep(s(
                "INSERT INTO {ks}.objects (kind, id, version, deleted, class, context, owner, \
                 created_ms, updated_ms, properties, write_id, vector_dims) \
                 VALUES (?, ?, 1, false, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS",
            ))
            .await?,
            update_object,
            delete_object,
            history_insert,
            export_first: paged(
                prep(format!("SELECT {RECORD_COLUMNS} FROM {{ks}}.objects")).await?,
            ),
            export_from: paged(
                prep(format!(
                    "SELECT {RECORD_COLUMNS} FROM {{ks}}.objects WHERE token(kind, id) >= ?"
                ))
                .await?,
            ),
            record: paged(
                prep(format!(
                    "SELECT {RECORD_COLUMNS} FROM {{ks}}.objects WHERE kind = ? AND id = ?"
                ))
                .await?,
            ),
            import_taken: idempotent(
                prep(s(
                    "SELECT DISTINCT kind, id FROM {ks}.objects WHERE kind = ? AND id IN ?",
                ))
                .await?,
            ),
            import_live: idempotent(
                prep(s(
                    "INSERT INTO {ks}.objects (kind, id, version, deleted, class, context, \
                     owner, created_ms, updated_ms, properties, write_id) \
                     VALUES (?, ?, ?, false, ?, ?, ?, ?, ?, ?, ?)",
                ))
                .await?,
            ),
            import_deleted: idempotent(
                prep(s(
                    "INSERT INTO {ks}.objects (kind, id, version, deleted, write_id) \
                     VALUES (?, ?, ?, true, ?)",
                ))
                .await?,
            ),
            index_class_put: idempotent(
                prep(s(
                    "INSERT INTO {ks}.objects_by_class (kind, class, created_ms, id) \
                        VALUES (?, ?, ?, ?) USING TIMESTAMP ?",
                ))
                .await?,
            ),
            index_class_del: idempotent(
                prep(s(
                    "DELETE FROM {ks}.objects_by_class USING TIMESTAMP ? \
                        WHERE kind = ? AND class = ? AND created_ms = ? AND id = ?",
                ))
                .await?,
            ),
            index_owner_put: idempotent(
                prep(s(
                    "INSERT INTO {ks}.objects_by_owner (kind, owner, created_ms, id) \
                        VALUES (?, ?, ?, ?) USING TIMESTAMP ?",
                ))
                .await?,
            ),
            index_owner_del: idempotent(
                prep(s(
                    "DELETE FROM {ks}.objects_by_owner USING TIMESTAMP ? \
                        WHERE kind = ? AND owner = ? AND created_ms = ? AND id = ?",
                ))
                .await?,
            ),
            index_kind_put: idempotent(
                prep(s(
                    "INSERT INTO {ks}.objects_by_kind (kind, created_ms, id) \
                        VALUES (?, ?, ?) USING TIMESTAMP ?",
                ))
                .await?,
            ),
            index_kind_del: idempotent(
                prep(s("DELETE FROM {ks}.objects_by_kind USING TIMESTAMP ? \
                        WHERE kind = ? AND created_ms = ? AND id = ?"))
                .await?,
            ),
            by_class: paged(
                prep(s(
                    "SELECT id FROM {ks}.objects_by_class WHERE kind = ? AND class = ?",
                ))
                .await?,
            ),
            by_owner: paged(
                prep(s(
                    "SELECT id FROM {ks}.objects_by_owner WHERE kind = ? AND owner = ?",
                ))
                .await?,
            ),
            by_kind: paged(prep(s("SELECT id FROM {ks}.objects_by_kind WHERE kind = ?")).await?),
            get_key: idempotent(
                prep(s(
                    "SELECT parent, token_hash, email, ip_origin, expires_ms, can_read, \
                     can_write, can_delete, can_execute, created_ms, state \
                     FROM {ks}.keys WHERE id = ?",
                ))
                .await?,
            ),
            get_key_serial: serial_read(
                prep(s("SELECT state, write_id FROM {ks}.keys WHERE id = ?")).await?,
            ),
            insert_key: prep(s(
                "INSERT INTO {ks}.keys (id, parent, token_hash, email, ip_origin, expires_ms, \
                 can_read, can_write, can_delete, can_execute, created_ms, state, write_id) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'adding', ?) IF NOT EXISTS",
            ))
            .await?,
            key_live: prep(s(
                "UPDATE {ks}.keys SET state = 'live', write_id = ? WHERE id = ? \
                 IF state = 'adding'",
            ))
            .await?,
            update_key: prep(s(
                "UPDATE {ks}.keys SET token_hash = ?, email = ?, ip_origin = ?, expires_ms = ?, \
                 can_read = ?, can_write = ?, can_delete = ?, can_execute = ?, created_ms = ?, \
                 write_id = ? WHERE id = ? IF state = 'live'",
            ))
            .await?,
            key_deleting: prep(s(
                "UPDATE {ks}.keys SET state = 'deleting', write_id = ? WHERE id = ? \
                 IF state = 'live'",
            ))
            .await?,
            key_deleting_any: prep(s(
                "UPDATE {ks}.keys SET state = 'deleting', write_id = ? WHERE id = ? \
                 IF state IN ('live', 'adding')",
            ))
            .await?,
            key_remove: prep(s(
                "DELETE FROM {ks}.keys WHERE id = ? IF state = 'deleting'",
            ))
            .await?,
            key_abandon: prep(s("DELETE FROM {ks}.keys WHERE id = ? IF state = 'adding'")).await?,
            child_put: idempotent(
                prep(s(
                    "INSERT INTO {ks}.key_children (parent, created_ms, id) VALUES (?, ?, ?)",
                ))
                .await?,
            ),
            child_del: idempotent(
                prep(s(
                    "DELETE FROM {ks}.key_children WHERE parent = ? AND created_ms = ? AND id = ?",
                ))
                .await?,
            ),
            children_del_all: idempotent(
                prep(s("DELETE FROM {ks}.key_children WHERE parent = ?")).await?,
            ),
            children: paged(prep(s("SELECT id FROM {ks}.key_children WHERE parent = ?")).await?),
            root_put: idempotent(
                prep(s(
                    "INSERT INTO {ks}.root_keys (bucket, created_ms, id) VALUES (0, ?, ?)",
                ))
                .await?,
            ),
            root_del: idempotent(
                prep(s(
                    "DELETE FROM {ks}.root_keys WHERE bucket = 0 AND created_ms = ? AND id = ?",
                ))
                .await?,
            ),
            roots: paged(prep(s("SELECT id FROM {ks}.root_keys WHERE bucket = 0")).await?),
            get_document: idempotent(
                prep(s("SELECT json, version FROM {ks}.documents WHERE name = ?")).await?,
            ),
            get_document_serial: serial_read(
                prep(s(
                    "SELECT version, write_id FROM {ks}.documents WHERE name = ?",
                ))
                .await?,
            ),
            insert_document: prep(s(
                "INSERT INTO {ks}.documents (name, json, version, write_id) \
                 VALUES (?, ?, 1, ?) IF NOT EXISTS",
            ))
            .await?,
            update_document: prep(s(
                "UPDATE {ks}.documents SET json = ?, version = ?, write_id = ? \
                 WHERE name = ? IF version = ?",
            ))
            .await?,
        })
    }
}
