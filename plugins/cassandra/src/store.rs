//! Every contract operation on the Cassandra tables of [`crate::schema`]: reads at the
//! configured consistency, conditional writes as lightweight transactions (LWT), and the
//! resolution of an LWT whose outcome the server left unknown (a timeout) by a serial read.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use abi_stable::std_types::{ROption, RString, RVec};
use futures::{StreamExt, TryStreamExt};
use scylla::client::session::Session;
use scylla::errors::{DbError, ExecutionError, PagerExecutionError, RequestAttemptError};
use scylla::response::query_result::QueryResult;
use scylla::serialize::batch::BatchValues;
use scylla::serialize::row::SerializeRow;
use scylla::statement::batch::Batch;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlValue, Row};
use uuid::Uuid;
use weft_connector_sdk::support::{self, QueryMatcher};
use weft_connector_sdk::Store;
use weft_plugin_api::{
    now_ms, DocumentName, Id, ObjectHistory, ObjectKind, ObjectPage, ObjectQuery, ObjectRecord,
    ObjectVersion, PluginError, PluginLogger, PluginResult, RecordPage, StoredKey, StoredObject,
    VectorHit, VectorQuery, VersionedDocument, VersionedObject,
};

use crate::schema::{one_line, Statements};

/// How many requests one call keeps in flight (point reads of candidates, references, keys).
pub(crate) const IN_FLIGHT: usize = 64;
/// How often a write retries an LWT that lost a race (`update_object`) or whose outcome the
/// server left unknown, before it answers `Unavailable`.
pub(crate) const MAX_ATTEMPTS: u32 = 2000;
/// How many rounds of reference look-ups one filter or aggregate may need (one per hop).
const MAX_REFERENCE_ROUNDS: usize = 32;

/// The connection, the prepared statements and the limits.
pub struct Db {
    pub session: Session,
    pub st: Statements,
    pub keyspace: String,
    pub max_query_objects: usize,
    pub log: PluginLogger,
    /// The vector tables (their calls are in `crate::vectors`).
    pub vectors: Vectors,
}

/// The prepared statements of one vector table (made and used in `crate::vectors`; defined here
/// so that this module, which holds them in [`Db`], needs nothing of that one).
pub(crate) struct VectorTable {
    pub(crate) insert: PreparedStatement,
    pub(crate) delete: PreparedStatement,
    pub(crate) get: PreparedStatement,
    pub(crate) ann_kind: PreparedStatement,
    pub(crate) ann_class: PreparedStatement,
}

/// The vector tables this process has opened, and what it needs to open more (its calls are
/// in `crate::vectors`).
pub struct Vectors {
    pub(crate) tables: std::sync::Mutex<HashMap<usize, std::sync::Arc<VectorTable>>>,
    /// Held while a table is created and prepared, so that one process does it once.
    pub(crate) ddl: tokio::sync::Mutex<()>,
    /// The id of the keyspace's `objects` table: the seed of the vector tables' ids.
    pub(crate) objects_table: Uuid,
    /// The consistency of ANN queries: Cassandra 5.0 runs them at `ONE`/`LOCAL_ONE` only.
    pub(crate) ann_consistency: scylla::frame::types::Consistency,
}

// ----- errors ------------------------------------------------------------------------------

/// A failed request as the contract's error: the server's refusal of our own CQL is a bug
/// (`Internal`); everything else (no connection, timeouts, not enough replicas, overload) is
/// `Unavailable`, which the host answers with 503.
pub(crate) fn failed(op: &str, e: &ExecutionError) -> PluginError {
    if let ExecutionError::LastAttemptError(RequestAttemptError::DbError(DbError::Invalid, msg)) = e
    {
        if ["too large", "too big", "exceeds"]
            .iter()
            .any(|w| msg.contains(w))
        {
            return PluginError::invalid(one_line(&format!(
                "cassandra: {op}: the write is too large for Cassandra ({msg}); a write holds \
                 the object and, on update, its previous version, and Cassandra refuses \
                 requests above native_transport_max_message_size and mutations above half \
                 its commit-log segment size (16 MiB by default)"
            )));
        }
    }
    let internal = match e {
        ExecutionError::BadQuery(_) => true,
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(db, _)) => matches!(
            db,
            DbError::SyntaxError
                | DbError::Invalid
                | DbError::AlreadyExists { .. }
                | DbError::FunctionFailure { .. }
                | DbError::ProtocolError
        ),
        ExecutionError::LastAttemptError(RequestAttemptError::SerializationError(_)) => true,
        _ => false,
    };
    if internal {
        PluginError::internal(one_line(&format!(
            "cassandra: {op}: the server refused the request: {e}"
        )))
    } else {
        PluginError::unavailable(one_line(&format!(
            "cassandra: {op}: Cassandra is unavailable: {e}"
        )))
    }
}

pub(crate) fn failed_pager(op: &str, e: &PagerExecutionError) -> PluginError {
    PluginError::unavailable(one_line(&format!(
        "cassandra: {op}: Cassandra is unavailable: {e}"
    )))
}

pub(crate) fn bad_answer(op: &str, e: impl std::fmt::Display) -> PluginError {
    PluginError::internal(one_line(&format!(
        "cassandra: {op}: unexpected answer from Cassandra: {e}"
    )))
}

/// Whether a failed LWT may nevertheless have been applied (the server timed out or the
/// connection broke after the request was sent). Errors raised before a request reached a
/// coordinator, or refusals before any proposal (`Unavailable`, `Overloaded`, …), are not.
fn maybe_applied(e: &ExecutionError) -> bool {
    match e {
        ExecutionError::BadQuery(_)
        | ExecutionError::EmptyPlan
        | ExecutionError::PrepareError(_)
        | ExecutionError::ConnectionPoolError(_)
        | ExecutionError::UseKeyspaceError(_) => false,
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(db, _)) => !matches!(
            db,
            DbError::Unavailable { .. }
                | DbError::Overloaded
                | DbError::IsBootstrapping
                | DbError::SyntaxError
                | DbError::Invalid
                | DbError::Unauthorized
                | DbError::ConfigError
                | DbError::AlreadyExists { .. }
                | DbError::Unprepared { .. }
                | DbError::ProtocolError
                | DbError::AuthenticationError
                | DbError::RateLimitReached { .. }
        ),
        ExecutionError::LastAttemptError(
            RequestAttemptError::SerializationError(_)
            | RequestAttemptError::CqlRequestSerialization(_)
            | RequestAttemptError::UnableToAllocStreamId,
        ) => false,
        _ => true,
    }
}

pub(crate) fn unknown_outcome(op: &str, e: &ExecutionError) -> PluginError {
    PluginError::unavailable(one_line(&format!(
        "cassandra: {op}: Cassandra did not confirm the write and could not be asked whether it \
         happened ({e}); read the data again before retrying"
    )))
}

pub(crate) fn too_many_attempts(op: &str) -> PluginError {
    PluginError::unavailable(format!(
        "cassandra: {op}: gave up after {MAX_ATTEMPTS} attempts under contention or timeouts; retry later"
    ))
}

/// A short random pause before retrying an LWT, growing with the attempt, so that writers
/// racing for one partition do not keep colliding.
pub(crate) async fn backoff(attempt: u32) {
    let cap = 2u64 << attempt.min(6); // 2 … 128 ms
    let jitter = u64::from(Uuid::new_v4().as_u128() as u16) % cap;
    tokio::time::sleep(Duration::from_millis(jitter)).await;
}

// ----- lightweight transactions ------------------------------------------------------------

/// What an LWT answered.
pub(crate) enum Cas {
    /// The condition held and the write happened.
    Applied,
    /// The condition failed; the columns the server returned (the current values).
    Rejected(Columns),
    /// The outcome is unknown (e.g. a write timeout): resolve it with a serial read.
    Unknown(Box<ExecutionError>),
}

/// The columns of an LWT answer, by name.
#[derive(Default)]
pub(crate) struct Columns(HashMap<String, CqlValue>);

impl Columns {
    fn i64(&self, name: &str) -> Option<i64> {
        self.0.get(name).and_then(CqlValue::as_bigint)
    }
    fn bool(&self, name: &str) -> Option<bool> {
        self.0.get(name).and_then(CqlValue::as_boolean)
    }
}

fn parse_cas(op: &str, result: QueryResult) -> PluginResult<Cas> {
    let rows = result.into_rows_result().map_err(|e| bad_answer(op, e))?;
    let Some(row) = rows
        .maybe_first_row::<Row>()
        .map_err(|e| bad_answer(op, e))?
    else {
        return Err(bad_answer(op, "a conditional write answered no row"));
    };
    let mut columns = Columns::default();
    let mut applied = None;
    for (spec, value) in rows.column_specs().iter().zip(row.columns) {
        if spec.name() == "[applied]" {
            applied = value.as_ref().and_then(CqlValue::as_boolean);
        } else if let Some(v) = value {
            columns.0.insert(spec.name().to_string(), v);
        }
    }
    match applied {
        Some(true) => Ok(Cas::Applied),
        Some(false) => Ok(Cas::Rejected(columns)),
        None => Err(bad_answer(
            op,
            "a conditional write answered no [applied] column",
        )),
    }
}

pub(crate) fn kind_code(kind: ObjectKind) -> i8 {
    match kind {
        ObjectKind::Thing => 0,
        ObjectKind::Action => 1,
    }
}

/// The bind values of the history row archiving `previous` as version `version`, written by
/// `write_id` (the second statement of the update and the delete batch).
#[allow(clippy::type_complexity)]
fn history_row(
    kind: ObjectKind,
    id: Id,
    version: u64,
    previous: &StoredObject,
    write_id: Uuid,
) -> (i8, Uuid, i64, i64, &str, &str, Uuid, i64, i64, &str, Uuid) {
    (
        kind_code(kind),
        id.to_uuid(),
        version as i64,
        now_ms(),
        previous.class.as_str(),
        previous.context.as_str(),
        previous.owner.to_uuid(),
        previous.created_ms,
        previous.updated_ms,
        previous.properties_json.as_str(),
        write_id,
    )
}

/// The timestamp of a candidate-index entry written for object version `v`: every index
/// write carries one, so that the entries of a later version win over the clean-up of an
/// earlier one whatever order they reach the server in (see the crate docs).
pub(crate) fn index_put_ts(version: u64) -> i64 {
    (version as i64).saturating_mul(2).saturating_add(1)
}

/// The timestamp of the clean-up of an entry that version `v` no longer has.
fn index_del_ts(version: u64) -> i64 {
    (version as i64).saturating_mul(2)
}

type ObjectRow = (
    Option<i64>,
    Option<bool>,
    Option<String>,
    Option<String>,
    Option<Uuid>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<Uuid>,
    Option<i32>,
);

type HistoryRow = (
    Option<i64>,
    Option<bool>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<Uuid>,
    Option<i64>,
    Option<i64>,
    Option<String>,
);

type KeyRow = (
    Option<Uuid>,
    Option<String>,
    Option<String>,
    Option<Vec<String>>,
    Option<i64>,
    Option<bool>,
    Option<bool>,
    Option<bool>,
    Option<bool>,
    Option<i64>,
    Option<String>,
);

/// The stored state of an object id: never used (`None`), deleted, or current.
pub(crate) struct Current {
    pub version: u64,
    pub object: Option<StoredObject>,
    /// The current version's vector: the write it belongs to and its table.
    pub vector: Option<VectorRef>,
}

/// Where the vector of one write of an object is: the row `write_id` of the vector table of
/// dimension `dims` (`crate::vectors`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct VectorRef {
    pub write_id: Uuid,
    pub dims: usize,
}

/// One key as stored, with its life-cycle state.
struct KeyEntry {
    key: StoredKey,
    state: String,
}

const LIVE: &str = "live";

fn document_name(name: DocumentName) -> &'static str {
    match name {
        DocumentName::Ontology => "ontology",
        DocumentName::ConnectorState => "connector_state",
    }
}

impl Db {
    pub(crate) async fn exec(
        &self,
        op: &str,
        st: &PreparedStatement,
        values: impl SerializeRow,
    ) -> PluginResult<QueryResult> {
        self.session
            .execute_unpaged(st, values)
            .await
            .map_err(|e| failed(op, &e))
    }

    /// Runs an LWT statement.
    pub(crate) async fn cas(
        &self,
        op: &str,
        st: &PreparedStatement,
        values: impl SerializeRow,
    ) -> PluginResult<Cas> {
        match self.session.execute_unpaged(st, values).await {
            Ok(r) => parse_cas(op, r),
            Err(e) if maybe_applied(&e) => Ok(Cas::Unknown(Box::new(e))),
            Err(e) => Err(failed(op, &e)),
        }
    }

    /// Runs a conditional batch (one partition).
    pub(crate) async fn cas_batch(
        &self,
        op: &str,
        batch: &Batch,
        values: impl BatchValues,
    ) -> PluginResult<Cas> {
        match self.session.batch(batch, values).await {
            Ok(r) => parse_cas(op, r),
            Err(e) if maybe_applied(&e) => Ok(Cas::Unknown(Box::new(e))),
            Err(e) => Err(failed(op, &e)),
        }
    }

    /// Every `Uuid` a paged single-column read answers.
    async fn ids(
        &self,
        op: &str,
        st: &PreparedStatement,
        values: impl SerializeRow,
        limit: Option<usize>,
        out: &mut Vec<Uuid>,
        seen: &mut HashSet<Uuid>,
    ) -> PluginResult<()> {
        let mut rows = self
            .session
            .execute_iter(st.clone(), values)
            .await
            .map_err(|e| failed_pager(op, &e))?
            .rows_stream::<(Uuid,)>()
            .map_err(|e| bad_answer(op, e))?;
        while let Some(row) = rows.next().await {
            let (id,) = row.map_err(|e| {
                PluginError::unavailable(one_line(&format!(
                    "cassandra: {op}: Cassandra is unavailable: {e}"
                )))
            })?;
            if seen.insert(id) {
                out.push(id);
                if let Some(limit) = limit {
                    if out.len() > limit {
                        return Err(self.too_broad(op));
                    }
                }
            }
        }
        Ok(())
    }

    fn too_broad(&self, op: &str) -> PluginError {
        PluginError::invalid(format!(
            "cassandra: {op}: the query reaches more than {} objects, the most this connector \
             reads for one query or aggregate (database_config.max_query_objects); narrow it by \
             class or owner, or raise max_query_objects",
            self.max_query_objects
        ))
    }

    // ----- objects: reads ----------------------------------------------------------------

    pub(crate) async fn current(
        &self,
        op: &str,
        kind: ObjectKind,
        id: Id,
    ) -> PluginResult<Option<Current>> {
        let r = self
            .exec(op, &self.st.get_object, (kind_code(kind), id.to_uuid()))
            .await?;
        let rows = r.into_rows_result().map_err(|e| bad_answer(op, e))?;
        let Some(row) = rows
            .maybe_first_row::<ObjectRow>()
            .map_err(|e| bad_answer(op, e))?
        else {
            return Ok(None);
        };
        let (
            version,
            deleted,
            class,
            context,
            owner,
            created_ms,
            updated_ms,
            properties,
            write_id,
            vector_dims,
        ) = row;
        let Some(version) = version else {
            return Ok(None);
        };
        let object = (deleted != Some(true)).then(|| StoredObject {
            kind,
            id,
            class: class.unwrap_or_default().into(),
            context: context.unwrap_or_default().into(),
            owner: owner.map(Id::from).unwrap_or_default(),
            created_ms: created_ms.unwrap_or_default(),
            updated_ms: updated_ms.unwrap_or_default(),
            properties_json: properties.unwrap_or_default().into(),
        });
        let vector = match (write_id, vector_dims) {
            (Some(write_id), Some(dims)) if dims > 0 && object.is_some() => Some(VectorRef {
                write_id,
                dims: dims as usize,
            }),
            _ => None,
        };
        Ok(Some(Current {
            version: version.max(0) as u64,
            object,
            vector,
        }))
    }

    /// Current objects, answer `i` for `ids[i]`, `IN_FLIGHT` point reads at a time.
    async fn objects(
        &self,
        op: &str,
        kind: ObjectKind,
        ids: &[Id],
    ) -> PluginResult<Vec<Option<StoredObject>>> {
        futures::stream::iter(ids.iter().copied())
            .map(|id| async move { Ok(self.current(op, kind, id).await?.and_then(|c| c.object)) })
            .buffered(IN_FLIGHT)
            .try_collect()
            .await
    }

    /// The current objects a query's kind, class and owners select (its filter aside), read
    /// through the narrowest candidate index: the owners' partitions, else the class's, else
    /// the kind's. Refused when the index gives more than `max_query_objects` ids.
    async fn selected(
        &self,
        op: &str,
        query: &ObjectQuery,
        matcher: &QueryMatcher<'_>,
    ) -> PluginResult<Vec<StoredObject>> {
        Ok(self
            .selected_current(op, query, matcher)
            .await?
            .into_iter()
            .map(|(o, _)| o)
            .collect())
    }

    /// [`Db::selected`], each object with where its vector is (`None`: it has none).
    pub(crate) async fn selected_current(
        &self,
        op: &str,
        query: &ObjectQuery,
        matcher: &QueryMatcher<'_>,
    ) -> PluginResult<Vec<(StoredObject, Option<VectorRef>)>> {
        let kind = kind_code(query.kind);
        let limit = Some(self.max_query_objects);
        let mut ids = Vec::new();
        let mut seen = HashSet::new();
        if !query.owners.is_empty() {
            let owners: BTreeSet<Id> = query.owners.iter().copied().collect();
            for owner in owners {
                self.ids(
                    op,
                    &self.st.by_owner,
                    (kind, owner.to_uuid()),
                    limit,
                    &mut ids,
                    &mut seen,
                )
                .await?;
            }
        } else if !query.class.is_empty() {
            self.ids(
                op,
                &self.st.by_class,
                (kind, query.class.as_str()),
                limit,
                &mut ids,
                &mut seen,
            )
            .await?;
        } else {
            self.ids(op, &self.st.by_kind, (kind,), limit, &mut ids, &mut seen)
                .await?;
        }
        let currents: Vec<Option<Current>> = futures::stream::iter(ids)
            .map(|id| self.current(op, query.kind, Id::from(id)))
            .buffered(IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(currents
            .into_iter()
            .flatten()
            .filter_map(|c| Some((c.object?, c.vector)))
            .filter(|(o, _)| matcher.matches_kind_class_and_owner(o))
            .collect())
    }

    /// Runs `eval` with a resolver of references until it needs no object it has not seen:
    /// each round fetches the objects the previous one asked for (one round per reference
    /// hop), so filters and aggregates through reference paths answer exactly as with every
    /// object at hand.
    pub(crate) async fn with_references<R>(
        &self,
        op: &str,
        known: &[StoredObject],
        mut eval: impl FnMut(&dyn Fn(ObjectKind, Id) -> Option<StoredObject>) -> R,
    ) -> PluginResult<R> {
        let mut cache: HashMap<(ObjectKind, Id), Option<StoredObject>> = known
            .iter()
            .map(|o| ((o.kind, o.id), Some(o.clone())))
            .collect();
        for _ in 0..MAX_REFERENCE_ROUNDS {
            let misses = RefCell::new(BTreeSet::new());
            let result = {
                let resolve = |kind: ObjectKind, id: Id| match cache.get(&(kind, id)) {
                    Some(o) => o.clone(),
                    None => {
                        misses.borrow_mut().insert((kind, id));
                        None
                    }
                };
                eval(&resolve)
            };
            let misses = misses.into_inner();
            if misses.is_empty() {
                return Ok(result);
            }
            drop(result);
            if cache.len() + misses.len() > self.max_query_objects.saturating_mul(2) {
                return Err(self.too_broad(op));
            }
            let fetched: Vec<((ObjectKind, Id), Option<StoredObject>)> =
                futures::stream::iter(misses)
                    .map(|(kind, id)| async move {
                        Ok::<_, PluginError>((
                            (kind, id),
                            self.current(op, kind, id).await?.and_then(|c| c.object),
                        ))
                    })
                    .buffer_unordered(IN_FLIGHT)
                    .try_collect()
                    .await?;
            cache.extend(fetched);
        }
        Err(PluginError::invalid(format!(
            "cassandra: {op}: the reference paths need more than {MAX_REFERENCE_ROUNDS} hops"
        )))
    }

    // ----- objects: candidate indexes ----------------------------------------------------

    /// Writes the index entries of `object` that `previous` (the version it replaces) does not
    /// have, before the object is written: the indexes are always a superset.
    async fn index_add(
        &self,
        op: &str,
        object: &StoredObject,
        previous: Option<&StoredObject>,
        version: u64,
    ) -> PluginResult<()> {
        let ts = index_put_ts(version);
        let (kind, id, created) = (
            kind_code(object.kind),
            object.id.to_uuid(),
            object.created_ms,
        );
        let same_created = previous.is_some_and(|p| p.created_ms == created);
        let class = async {
            if same_created && previous.is_some_and(|p| p.class == object.class) {
                return Ok(());
            }
            self.exec(
                op,
                &self.st.index_class_put,
                (kind, object.class.as_str(), created, id, ts),
            )
            .await
            .map(drop)
        };
        let owner = async {
            if same_created && previous.is_some_and(|p| p.owner == object.owner) {
                return Ok(());
            }
            self.exec(
                op,
                &self.st.index_owner_put,
                (kind, object.owner.to_uuid(), created, id, ts),
            )
            .await
            .map(drop)
        };
        let all = async {
            if same_created {
                return Ok(());
            }
            self.exec(op, &self.st.index_kind_put, (kind, created, id, ts))
                .await
                .map(drop)
        };
        futures::try_join!(class, owner, all).map(drop)
    }

    /// Removes the index entries of `previous` that `object` (its successor at `version`;
    /// `None` when it was deleted) no longer has, after the write. A failure here leaves a
    /// stale entry, which readers skip: it is logged, not answered.
    async fn index_remove(
        &self,
        op: &str,
        previous: &StoredObject,
        object: Option<&StoredObject>,
        version: u64,
    ) {
        let ts = index_del_ts(version);
        let (kind, id, created) = (
            kind_code(previous.kind),
            previous.id.to_uuid(),
            previous.created_ms,
        );
        let same_created = object.is_some_and(|o| o.created_ms == created);
        let class = async {
            if same_created && object.is_some_and(|o| o.class == previous.class) {
                return Ok(());
            }
            self.exec(
                op,
                &self.st.index_class_del,
                (ts, kind, previous.class.as_str(), created, id),
            )
            .await
            .map(drop)
        };
        let owner = async {
            if same_created && object.is_some_and(|o| o.owner == previous.owner) {
                return Ok(());
            }
            self.exec(
                op,
                &self.st.index_owner_del,
                (ts, kind, previous.owner.to_uuid(), created, id),
            )
            .await
            .map(drop)
        };
        let all = async {
            if same_created {
                return Ok(());
            }
            self.exec(op, &self.st.index_kind_del, (ts, kind, created, id))
                .await
                .map(drop)
        };
        if let Err(e) = futures::try_join!(class, owner, all) {
            self.log.warn(&format!(
                "{op}: a stale index entry of {} {} stays behind (queries skip it): {}",
                previous.kind.as_str(),
                previous.id,
                e.message
            ));
        }
    }

    // ----- objects: writes ---------------------------------------------------------------

    /// Whether the write `write_id` archived version `seq` of the object (read serially, so
    /// that a write still in flight is completed first). `Err` when Cassandra cannot answer.
    /// Runs an update or delete batch (the conditional write of the object's partition plus
    /// the history row archiving `version`): whether it was applied, settling a lost answer by
    /// whether history row `version` carries `write_id`.
    async fn archive_batch(
        &self,
        op: &str,
        batch: &Batch,
        values: impl BatchValues,
        (kind, id, version): (ObjectKind, Id, u64),
        write_id: Uuid,
    ) -> PluginResult<bool> {
        match self.cas_batch(op, batch, values).await? {
            Cas::Applied => Ok(true),
            Cas::Rejected(_) => Ok(false),
            Cas::Unknown(e) => self
                .archived_by(kind, id, version, write_id)
                .await
                .map_err(|()| unknown_outcome(op, &e)),
        }
    }

    async fn archived_by(
        &self,
        kind: ObjectKind,
        id: Id,
        seq: u64,
        write_id: Uuid,
    ) -> Result<bool, ()> {
        let r = self
            .session
            .execute_unpaged(
                &self.st.history_row_serial,
                (kind_code(kind), id.to_uuid(), seq as i64),
            )
            .await
            .map_err(drop)?;
        let row = r
            .into_rows_result()
            .map_err(drop)?
            .maybe_first_row::<(Option<Uuid>,)>()
            .map_err(drop)?;
        Ok(matches!(row, Some((Some(w),)) if w == write_id))
    }

    /// `update_object` (`expected` `None`: the current version, whatever it is) and
    /// `update_object_if`, and both with a vector (empty: none): one conditional batch replaces
    /// the current version `IF version = v` and archives version `v` in the same partition; a
    /// lost race is retried (`update_object`) or answered `Conflict` (`update_object_if`). The
    /// new vector's row is written before the batch, under the batch's `write_id`, so the
    /// batch switches object and vector at once (`crate::vectors`); the old row is removed
    /// after it, and this attempt's own row when its batch lost.
    async fn update(
        &self,
        op: &str,
        object: StoredObject,
        expected: Option<u64>,
        vector: &[f32],
    ) -> PluginResult<u64> {
        let (kind, id) = (object.kind, object.id);
        for attempt in 0..MAX_ATTEMPTS {
            let Some(Current {
                version,
                object: Some(previous),
                vector: previous_vector,
            }) = self.current(op, kind, id).await?
            else {
                return Err(support::object_missing(kind, id));
            };
            let what = format!("{} {id}", kind.as_str());
            let next = match expected {
                Some(expected) => support::compare_and_bump(&what, version, expected)?,
                None => support::next_version(&what, version)?,
            };
            self.index_add(op, &object, Some(&previous), next).await?;
            let write_id = Uuid::new_v4();
            let vector_dims = self.put_vector(op, &object, write_id, vector).await?;
            let values = (
                (
                    object.class.as_str(),
                    object.context.as_str(),
                    object.owner.to_uuid(),
                    object.created_ms,
                    object.updated_ms,
                    object.properties_json.as_str(),
                    next as i64,
                    write_id,
                    vector_dims,
                    kind_code(kind),
                    id.to_uuid(),
                    version as i64,
                ),
                history_row(kind, id, version, &previous, write_id),
            );
            let applied = self
                .archive_batch(
                    op,
                    &self.st.update_object,
                    values,
                    (kind, id, version),
                    write_id,
                )
                .await?;
            if applied {
                self.index_remove(op, &previous, Some(&object), next).await;
                if let Some(old) = previous_vector {
                    self.drop_vector(op, kind, id, old).await;
                }
                return Ok(next);
            }
            self.drop_own_vector(op, &object, write_id, vector_dims)
                .await;
            // Another writer came first: read again (an `update_object_if` then answers
            // `Conflict`, naming the new version).
            backoff(attempt).await;
        }
        Err(too_many_attempts(op))
    }

    /// `create_object`, with a vector (empty: none): the vector's row is written first under
    /// the write's `write_id`, then the object `IF NOT EXISTS` naming it (`crate::vectors`);
    /// when the id is taken the row is removed again.
    async fn create(&self, op: &str, object: StoredObject, vector: &[f32]) -> PluginResult<()> {
        let (kind, id) = (object.kind, object.id);
        self.index_add(op, &object, None, support::FIRST_VERSION)
            .await?;
        let write_id = Uuid::new_v4();
        let vector_dims = self.put_vector(op, &object, write_id, vector).await?;
        for attempt in 0..MAX_ATTEMPTS {
            let outcome = self
                .cas(
                    op,
                    &self.st.create_object,
                    (
                        kind_code(kind),
                        id.to_uuid(),
                        object.class.as_str(),
                        object.context.as_str(),
                        object.owner.to_uuid(),
                        object.created_ms,
                        object.updated_ms,
                        object.properties_json.as_str(),
                        write_id,
                        vector_dims,
                    ),
                )
                .await?;
            match outcome {
                Cas::Applied => return Ok(()),
                Cas::Rejected(row) => {
                    self.drop_own_vector(op, &object, write_id, vector_dims)
                        .await;
                    return Err(support::object_exists(
                        kind,
                        id,
                        row.bool("deleted") == Some(true),
                    ));
                }
                Cas::Unknown(e) => {
                    // A serial read completes any write in flight on the partition and tells
                    // whether ours is the one stored.
                    let r = self
                        .session
                        .execute_unpaged(
                            &self.st.get_object_serial,
                            (kind_code(kind), id.to_uuid()),
                        )
                        .await
                        .map_err(|_| unknown_outcome(op, &e))?;
                    let row = r
                        .into_rows_result()
                        .map_err(|e| bad_answer(op, e))?
                        .maybe_first_row::<(Option<i64>, Option<bool>, Option<Uuid>)>()
                        .map_err(|e| bad_answer(op, e))?;
                    match row {
                        Some((Some(_), _, Some(w))) if w == write_id => return Ok(()),
                        Some((Some(_), deleted, _)) => {
                            self.drop_own_vector(op, &object, write_id, vector_dims)
                                .await;
                            return Err(support::object_exists(kind, id, deleted == Some(true)));
                        }
                        _ => backoff(attempt).await,
                    }
                }
            }
        }
        Err(too_many_attempts(op))
    }

    /// Removes the vector row a write wrote before its conditional write failed.
    async fn drop_own_vector(
        &self,
        op: &str,
        object: &StoredObject,
        write_id: Uuid,
        vector_dims: Option<i32>,
    ) {
        if let Some(dims) = vector_dims {
            let mine = VectorRef {
                write_id,
                dims: dims as usize,
            };
            self.drop_vector(op, object.kind, object.id, mine).await;
        }
    }

    // ----- keys --------------------------------------------------------------------------

    async fn key_entry(&self, op: &str, id: Id) -> PluginResult<Option<KeyEntry>> {
        let r = self.exec(op, &self.st.get_key, (id.to_uuid(),)).await?;
        let rows = r.into_rows_result().map_err(|e| bad_answer(op, e))?;
        let Some(row) = rows
            .maybe_first_row::<KeyRow>()
            .map_err(|e| bad_answer(op, e))?
        else {
            return Ok(None);
        };
        let (
            parent,
            token_hash,
            email,
            ip_origin,
            expires_ms,
            read,
            write,
            delete,
            execute,
            created_ms,
            state,
        ) = row;
        let Some(state) = state else {
            return Ok(None);
        };
        Ok(Some(KeyEntry {
            key: StoredKey {
                id,
                parent: parent.map(Id::from).into(),
                token_hash: token_hash.unwrap_or_default().into(),
                email: email.unwrap_or_default().into(),
                ip_origin: ip_origin
                    .unwrap_or_default()
                    .into_iter()
                    .map(RString::from)
                    .collect::<RVec<_>>(),
                expires_ms: expires_ms.unwrap_or(-1),
                read: read.unwrap_or(false),
                write: write.unwrap_or(false),
                delete: delete.unwrap_or(false),
                execute: execute.unwrap_or(false),
                created_ms: created_ms.unwrap_or_default(),
            },
            state,
        }))
    }

    /// A key that is live (added and not being deleted).
    async fn live_key(&self, op: &str, id: Id) -> PluginResult<Option<StoredKey>> {
        Ok(self
            .key_entry(op, id)
            .await?
            .filter(|e| e.state == LIVE)
            .map(|e| e.key))
    }

    /// The state and last write id of a key, read serially (completing a write in flight).
    async fn key_serial(&self, id: Id) -> Result<Option<(String, Option<Uuid>)>, ExecutionError> {
        let r = self
            .session
            .execute_unpaged(&self.st.get_key_serial, (id.to_uuid(),))
            .await?;
        let row = r.into_rows_result().ok().and_then(|rows| {
            rows.maybe_first_row::<(Option<String>, Option<Uuid>)>()
                .ok()
                .flatten()
        });
        Ok(row.and_then(|(state, w)| state.map(|s| (s, w))))
    }

    /// The live keys among `ids` whose parent is `parent`, oldest first.
    async fn keys_under(
        &self,
        op: &str,
        ids: Vec<Uuid>,
        parent: Option<Id>,
    ) -> PluginResult<Vec<StoredKey>> {
        let mut keys: Vec<StoredKey> = futures::stream::iter(ids)
            .map(|id| async move { self.live_key(op, Id::from(id)).await })
            .buffered(IN_FLIGHT)
            .try_collect::<Vec<_>>()
            .await?
            .into_iter()
            .flatten()
            .filter(|k| Option::from(k.parent) == parent)
            .collect();
        support::sort_oldest_first(&mut keys);
        Ok(keys)
    }

    async fn child_ids(&self, op: &str, parent: Id) -> PluginResult<Vec<Uuid>> {
        let (mut ids, mut seen) = (Vec::new(), HashSet::new());
        self.ids(
            op,
            &self.st.children,
            (parent.to_uuid(),),
            None,
            &mut ids,
            &mut seen,
        )
        .await?;
        Ok(ids)
    }

    async fn tree_put(&self, op: &str, key: &StoredKey) -> PluginResult<()> {
        match key.parent {
            ROption::RSome(parent) => self
                .exec(
                    op,
                    &self.st.child_put,
                    (parent.to_uuid(), key.created_ms, key.id.to_uuid()),
                )
                .await
                .map(drop),
            ROption::RNone => self
                .exec(op, &self.st.root_put, (key.created_ms, key.id.to_uuid()))
                .await
                .map(drop),
        }
    }

    async fn tree_del(
        &self,
        op: &str,
        parent: Option<Id>,
        created_ms: i64,
        id: Id,
    ) -> PluginResult<()> {
        match parent {
            Some(parent) => self
                .exec(
                    op,
                    &self.st.child_del,
                    (parent.to_uuid(), created_ms, id.to_uuid()),
                )
                .await
                .map(drop),
            None => self
                .exec(op, &self.st.root_del, (created_ms, id.to_uuid()))
                .await
                .map(drop),
        }
    }

    /// Marks a key 'deleting' (`IF state = 'live'` for the key asked for, `IF state IN
    /// ('live', 'adding')` for its descendants); answers whether this call marked it.
    async fn mark_deleting(&self, op: &str, id: Id, root: bool) -> PluginResult<bool> {
        let st = if root {
            &self.st.key_deleting
        } else {
            &self.st.key_deleting_any
        };
        let write_id = Uuid::new_v4();
        for attempt in 0..MAX_ATTEMPTS {
            match self.cas(op, st, (write_id, id.to_uuid())).await? {
                Cas::Applied => return Ok(true),
                Cas::Rejected(_) => return Ok(false),
                Cas::Unknown(e) => match self.key_serial(id).await {
                    Ok(Some((s, Some(w)))) if s == "deleting" && w == write_id => return Ok(true),
                    Ok(Some((s, _))) if s == LIVE || (!root && s == "adding") => {
                        backoff(attempt).await
                    }
                    Ok(_) => return Ok(false),
                    Err(_) => return Err(unknown_outcome(op, &e)),
                },
            }
        }
        Err(too_many_attempts(op))
    }
}

/// The contract, on Cassandra: the SDK runs each call as a task on the plugin's runtime (reads
/// aborted when the host gives up, writes run to completion so that their steps are never cut
/// short: the default [`Store::run`]).
impl Store for Db {
    // ----- objects: reads ----------------------------------------------------------------

    async fn get_object(&self, kind: ObjectKind, id: Id) -> PluginResult<Option<StoredObject>> {
        Ok(self
            .current("get_object", kind, id)
            .await?
            .and_then(|c| c.object))
    }

    async fn get_object_versioned(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> PluginResult<Option<VersionedObject>> {
        Ok(self
            .current("get_object_versioned", kind, id)
            .await?
            .and_then(|c| {
                c.object.map(|object| VersionedObject {
                    object,
                    version: c.version,
                })
            }))
    }

    async fn get_objects(
        &self,
        kind: ObjectKind,
        ids: Vec<Id>,
    ) -> PluginResult<Vec<Option<StoredObject>>> {
        self.objects("get_objects", kind, &ids).await
    }

    async fn object_history(&self, kind: ObjectKind, id: Id) -> PluginResult<ObjectHistory> {
        let op = "object_history";
        let mut rows = self
            .session
            .execute_iter(self.st.history.clone(), (kind_code(kind), id.to_uuid()))
            .await
            .map_err(|e| failed_pager(op, &e))?
            .rows_stream::<HistoryRow>()
            .map_err(|e| bad_answer(op, e))?;
        let mut exists = false;
        let mut deleted = false;
        let mut versions = Vec::new();
        while let Some(row) = rows.next().await {
            let row = row.map_err(|e| {
                PluginError::unavailable(one_line(&format!(
                    "cassandra: {op}: Cassandra is unavailable: {e}"
                )))
            })?;
            let (
                version,
                is_deleted,
                seq,
                archived_ms,
                class,
                context,
                owner,
                created,
                updated,
                props,
            ) = row;
            exists |= version.is_some();
            deleted |= is_deleted == Some(true);
            if seq.is_none() {
                continue; // the partition's static row alone: no history yet
            }
            versions.push(ObjectVersion {
                object: StoredObject {
                    kind,
                    id,
                    class: class.unwrap_or_default().into(),
                    context: context.unwrap_or_default().into(),
                    owner: owner.map(Id::from).unwrap_or_default(),
                    created_ms: created.unwrap_or_default(),
                    updated_ms: updated.unwrap_or_default(),
                    properties_json: props.unwrap_or_default().into(),
                },
                archived_ms: archived_ms.unwrap_or_default(),
            });
        }
        if !exists {
            return Err(PluginError::not_found(format!(
                "{} {id} never existed",
                kind.as_str()
            )));
        }
        Ok(ObjectHistory {
            deleted,
            versions: versions.into(),
        })
    }

    async fn query_objects(&self, query: ObjectQuery) -> PluginResult<ObjectPage> {
        let op = "query_objects";
        let matcher = QueryMatcher::new(&query)?;
        let selected = self.selected(op, &query, &matcher).await?;
        if matcher.filter().is_none() {
            return Ok(support::page(selected, &query));
        }
        let matches = self
            .with_references(op, &selected, |resolve| {
                selected
                    .iter()
                    .filter(|o| matcher.matches(o, resolve))
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .await?;
        Ok(support::page(matches, &query))
    }

    async fn aggregate(&self, query: ObjectQuery, request_json: String) -> PluginResult<String> {
        let op = "aggregate";
        let request = support::parse_aggregate_request(&request_json)?;
        let matcher = QueryMatcher::new(&query)?;
        let selected = self.selected(op, &query, &matcher).await?;
        self.with_references(op, &selected, |resolve| {
            let matches: Vec<StoredObject> = selected
                .iter()
                .filter(|o| matcher.matches(o, resolve))
                .cloned()
                .collect();
            support::aggregate_json(&matches, &request, resolve)
        })
        .await?
    }

    // ----- objects: writes ---------------------------------------------------------------

    async fn create_object(&self, object: StoredObject) -> PluginResult<()> {
        self.create("create_object", object, &[]).await
    }

    async fn create_object_with_vector(
        &self,
        object: StoredObject,
        vector: Vec<f32>,
    ) -> PluginResult<()> {
        self.create("create_object_with_vector", object, &vector)
            .await
    }

    async fn update_object_with_vector(
        &self,
        object: StoredObject,
        vector: Vec<f32>,
    ) -> PluginResult<()> {
        self.update("update_object_with_vector", object, None, &vector)
            .await
            .map(drop)
    }

    async fn update_object_if_with_vector(
        &self,
        object: StoredObject,
        expected: u64,
        vector: Vec<f32>,
    ) -> PluginResult<u64> {
        self.update(
            "update_object_if_with_vector",
            object,
            Some(expected),
            &vector,
        )
        .await
    }

    async fn get_vector(&self, kind: ObjectKind, id: Id) -> PluginResult<Option<Vec<f32>>> {
        Db::get_vector(self, kind, id).await
    }

    async fn search_vectors(&self, query: VectorQuery) -> PluginResult<Vec<VectorHit>> {
        Db::search_vectors(self, query).await
    }

    async fn update_object(&self, object: StoredObject) -> PluginResult<()> {
        self.update("update_object", object, None, &[])
            .await
            .map(drop)
    }

    async fn update_object_if(&self, object: StoredObject, expected: u64) -> PluginResult<u64> {
        self.update("update_object_if", object, Some(expected), &[])
            .await
    }

    // ----- moving a store (crate::migrate) -----------------------------------------------

    async fn export_objects(
        &self,
        kind: ObjectKind,
        cursor: String,
        limit: u64,
    ) -> PluginResult<RecordPage> {
        self.export(kind, &cursor, limit).await
    }

    async fn import_objects(&self, records: Vec<ObjectRecord>) -> PluginResult<()> {
        self.import(records).await
    }

    async fn delete_object(&self, kind: ObjectKind, id: Id) -> PluginResult<()> {
        let op = "delete_object";
        for attempt in 0..MAX_ATTEMPTS {
            let Some(Current {
                version,
                object: Some(previous),
                vector: previous_vector,
            }) = self.current(op, kind, id).await?
            else {
                return Err(support::object_missing(kind, id));
            };
            let next = support::next_version(format!("{} {id}", kind.as_str()), version)?;
            let write_id = Uuid::new_v4();
            let values = (
                (
                    next as i64,
                    write_id,
                    kind_code(kind),
                    id.to_uuid(),
                    version as i64,
                ),
                history_row(kind, id, version, &previous, write_id),
            );
            let applied = self
                .archive_batch(
                    op,
                    &self.st.delete_object,
                    values,
                    (kind, id, version),
                    write_id,
                )
                .await?;
            if applied {
                self.index_remove(op, &previous, None, next).await;
                if let Some(old) = previous_vector {
                    self.drop_vector(op, kind, id, old).await;
                }
                return Ok(());
            }
            backoff(attempt).await;
        }
        Err(too_many_attempts(op))
    }

    // ----- keys --------------------------------------------------------------------------

    async fn get_key(&self, id: Id) -> PluginResult<Option<StoredKey>> {
        self.live_key("get_key", id).await
    }

    async fn key_children(&self, id: Id) -> PluginResult<Vec<StoredKey>> {
        let op = "key_children";
        if self.live_key(op, id).await?.is_none() {
            return Err(support::key_missing(id));
        }
        let ids = self.child_ids(op, id).await?;
        self.keys_under(op, ids, Some(id)).await
    }

    async fn root_keys(&self) -> PluginResult<Vec<StoredKey>> {
        let op = "root_keys";
        let (mut ids, mut seen) = (Vec::new(), HashSet::new());
        self.ids(op, &self.st.roots, (), None, &mut ids, &mut seen)
            .await?;
        self.keys_under(op, ids, None).await
    }

    /// Adds a key in four steps, so that a concurrent `delete_key` of its parent either
    /// deletes it too or makes this call answer `NotFound`, never leaving an orphan: the row
    /// is written as 'adding' (`IF NOT EXISTS`), then its tree entry, then the parent is read
    /// serially (linearisable with the parent's 'deleting' mark), then the row turns 'live'
    /// (`IF state = 'adding'`, which fails if a cascade marked it meanwhile).
    async fn add_key(&self, key: StoredKey) -> PluginResult<()> {
        let op = "add_key";
        let parent: Option<Id> = key.parent.into();
        let parent_missing = |p: Id| {
            PluginError::not_found(format!("parent key {p} of key {} does not exist", key.id))
        };
        if let Some(p) = parent {
            if self.live_key(op, p).await?.is_none() {
                return Err(parent_missing(p));
            }
        }
        let write_id = Uuid::new_v4();
        let ip_origin: Vec<&str> = key.ip_origin.iter().map(RString::as_str).collect();
        let mut inserted = false;
        for attempt in 0..MAX_ATTEMPTS {
            let outcome = self
                .cas(
                    op,
                    &self.st.insert_key,
                    (
                        key.id.to_uuid(),
                        parent.map(Id::to_uuid),
                        key.token_hash.as_str(),
                        key.email.as_str(),
                        &ip_origin,
                        key.expires_ms,
                        key.read,
                        key.write,
                        key.delete,
                        key.execute,
                        key.created_ms,
                        write_id,
                    ),
                )
                .await?;
            match outcome {
                Cas::Applied => inserted = true,
                Cas::Rejected(_) => {
                    return Err(PluginError::conflict(format!(
                        "key {} already exists",
                        key.id
                    )))
                }
                Cas::Unknown(e) => match self.key_serial(key.id).await {
                    Ok(Some((_, Some(w)))) if w == write_id => inserted = true,
                    Ok(Some(_)) => {
                        return Err(PluginError::conflict(format!(
                            "key {} already exists",
                            key.id
                        )))
                    }
                    Ok(None) => backoff(attempt).await,
                    Err(_) => return Err(unknown_outcome(op, &e)),
                },
            }
            if inserted {
                break;
            }
        }
        if !inserted {
            return Err(too_many_attempts(op));
        }
        if let Err(e) = self.tree_put(op, &key).await {
            // Give the id back (best effort; an 'adding' row is invisible anyway).
            let _ = self
                .cas(op, &self.st.key_abandon, (key.id.to_uuid(),))
                .await;
            return Err(e);
        }
        if let Some(p) = parent {
            let parent_live = match self.key_serial(p).await {
                Ok(state) => state.is_some_and(|(s, _)| s == LIVE),
                Err(e) => return Err(failed(op, &e)),
            };
            if !parent_live {
                let _ = self
                    .cas(op, &self.st.key_abandon, (key.id.to_uuid(),))
                    .await;
                let _ = self.tree_del(op, parent, key.created_ms, key.id).await;
                return Err(parent_missing(p));
            }
        }
        let live_id = Uuid::new_v4();
        for attempt in 0..MAX_ATTEMPTS {
            match self
                .cas(op, &self.st.key_live, (live_id, key.id.to_uuid()))
                .await?
            {
                Cas::Applied => return Ok(()),
                Cas::Rejected(_) => {
                    return Err(PluginError::not_found(format!(
                        "the parent of key {} was deleted while the key was added",
                        key.id
                    )))
                }
                Cas::Unknown(e) => match self.key_serial(key.id).await {
                    Ok(Some((s, Some(w)))) if s == LIVE && w == live_id => return Ok(()),
                    Ok(Some((s, _))) if s == "adding" => backoff(attempt).await,
                    Ok(_) => {
                        return Err(PluginError::not_found(format!(
                            "the parent of key {} was deleted while the key was added",
                            key.id
                        )))
                    }
                    Err(_) => return Err(unknown_outcome(op, &e)),
                },
            }
        }
        Err(too_many_attempts(op))
    }

    async fn update_key(&self, key: StoredKey) -> PluginResult<()> {
        let op = "update_key";
        let Some(stored) = self.live_key(op, key.id).await? else {
            return Err(support::key_missing(key.id));
        };
        support::check_same_parent(&stored, &key)?;
        let moved = stored.created_ms != key.created_ms;
        if moved {
            self.tree_put(op, &key).await?;
        }
        let ip_origin: Vec<&str> = key.ip_origin.iter().map(RString::as_str).collect();
        for attempt in 0..MAX_ATTEMPTS {
            let write_id = Uuid::new_v4();
            let outcome = self
                .cas(
                    op,
                    &self.st.update_key,
                    (
                        key.token_hash.as_str(),
                        key.email.as_str(),
                        &ip_origin,
                        key.expires_ms,
                        key.read,
                        key.write,
                        key.delete,
                        key.execute,
                        key.created_ms,
                        write_id,
                        key.id.to_uuid(),
                    ),
                )
                .await?;
            match outcome {
                Cas::Applied => {
                    if moved {
                        let _ = self
                            .tree_del(op, stored.parent.into(), stored.created_ms, key.id)
                            .await;
                    }
                    return Ok(());
                }
                Cas::Rejected(_) => return Err(support::key_missing(key.id)),
                // Writing the same values again is harmless: just try again.
                Cas::Unknown(_) => backoff(attempt).await,
            }
        }
        Err(too_many_attempts(op))
    }

    /// Deletes a key and its subtree: marks the key 'deleting' (an LWT, so that of two hosts
    /// deleting it one wins and the other answers `NotFound`, and so that a concurrent
    /// `add_key` under it fails), then every descendant level by level, then removes the
    /// marked rows (`DELETE … IF state = 'deleting'`) and their tree entries.
    async fn delete_key(&self, id: Id) -> PluginResult<Vec<Id>> {
        let op = "delete_key";
        let Some(stored) = self.live_key(op, id).await? else {
            return Err(support::key_missing(id));
        };
        if !self.mark_deleting(op, id, true).await? {
            return Err(support::key_missing(id));
        }
        let mut subtree = vec![id];
        let mut next = 0;
        while next < subtree.len() {
            let parent = subtree[next];
            next += 1;
            let ids = self.child_ids(op, parent).await?;
            let mut children: Vec<StoredKey> = futures::stream::iter(ids)
                .map(|c| async move { self.key_entry(op, Id::from(c)).await })
                .buffered(IN_FLIGHT)
                .try_collect::<Vec<_>>()
                .await?
                .into_iter()
                .flatten()
                .filter(|e| e.state == LIVE || e.state == "adding")
                .map(|e| e.key)
                .filter(|k| Option::from(k.parent) == Some(parent))
                .collect();
            support::sort_oldest_first(&mut children);
            let level: Vec<Id> = children.iter().map(|k| k.id).collect();
            let marked: Vec<(Id, bool)> = futures::stream::iter(level)
                .map(|child| async move {
                    Ok::<_, PluginError>((child, self.mark_deleting(op, child, false).await?))
                })
                .buffered(IN_FLIGHT)
                .try_collect()
                .await?;
            subtree.extend(marked.into_iter().filter(|(_, m)| *m).map(|(c, _)| c));
        }
        let removals: Vec<()> = futures::stream::iter(subtree.iter().copied())
            .map(|gone| async move {
                for attempt in 0..8 {
                    match self.cas(op, &self.st.key_remove, (gone.to_uuid(),)).await {
                        Ok(Cas::Applied | Cas::Rejected(_)) => break,
                        Ok(Cas::Unknown(_)) | Err(_) => backoff(attempt).await,
                    }
                }
                let _ = self
                    .exec(op, &self.st.children_del_all, (gone.to_uuid(),))
                    .await;
                Ok::<(), PluginError>(())
            })
            .buffered(IN_FLIGHT)
            .try_collect()
            .await?;
        drop(removals);
        let _ = self
            .tree_del(op, stored.parent.into(), stored.created_ms, id)
            .await;
        Ok(subtree)
    }

    // ----- documents ---------------------------------------------------------------------

    async fn get_document(&self, name: DocumentName) -> PluginResult<VersionedDocument> {
        let op = "get_document";
        let r = self
            .exec(op, &self.st.get_document, (document_name(name),))
            .await?;
        let row = r
            .into_rows_result()
            .map_err(|e| bad_answer(op, e))?
            .maybe_first_row::<(Option<String>, Option<i64>)>()
            .map_err(|e| bad_answer(op, e))?;
        Ok(match row {
            Some((json, Some(version))) => VersionedDocument {
                json: json.unwrap_or_default().into(),
                version: version.max(0) as u64,
            },
            _ => VersionedDocument {
                json: RString::new(),
                version: 0,
            },
        })
    }

    /// Compare-and-set of a document: `INSERT … IF NOT EXISTS` for version 0, else
    /// `UPDATE … IF version = ?`, so that of several hosts writing the ontology at once exactly
    /// one wins.
    async fn put_document(
        &self,
        name: DocumentName,
        json: String,
        expected: u64,
    ) -> PluginResult<u64> {
        let op = "put_document";
        let what = format!("the {} document", support::document_label(name));
        let conflict = |stored: u64| {
            support::compare_and_bump(&what, stored, expected)
                .err()
                .unwrap_or_else(|| {
                    PluginError::conflict(format!(
                        "{what} changed while it was written; read it again and retry"
                    ))
                })
        };
        // Versions are stored as bigint: no stored version is above i64::MAX - 1, so such an
        // expectation can only be stale.
        if expected >= i64::MAX as u64 {
            return Err(conflict(self.get_document(name).await?.version));
        }
        let next = expected + 1;
        let write_id = Uuid::new_v4();
        for attempt in 0..MAX_ATTEMPTS {
            let outcome = if expected == 0 {
                self.cas(
                    op,
                    &self.st.insert_document,
                    (document_name(name), json.as_str(), write_id),
                )
                .await?
            } else {
                self.cas(
                    op,
                    &self.st.update_document,
                    (
                        json.as_str(),
                        next as i64,
                        write_id,
                        document_name(name),
                        expected as i64,
                    ),
                )
                .await?
            };
            match outcome {
                Cas::Applied => return Ok(next),
                Cas::Rejected(row) => {
                    return Err(conflict(row.i64("version").unwrap_or(0).max(0) as u64))
                }
                Cas::Unknown(e) => {
                    let r = self
                        .session
                        .execute_unpaged(&self.st.get_document_serial, (document_name(name),))
                        .await
                        .map_err(|_| unknown_outcome(op, &e))?;
                    let row = r
                        .into_rows_result()
                        .map_err(|e| bad_answer(op, e))?
                        .maybe_first_row::<(Option<i64>, Option<Uuid>)>()
                        .map_err(|e| bad_answer(op, e))?;
                    let (stored, writer) = match row {
                        Some((v, w)) => (v.unwrap_or(0).max(0) as u64, w),
                        None => (0, None),
                    };
                    if writer == Some(write_id) {
                        return Ok(next);
                    }
                    if stored != expected {
                        return Err(conflict(stored));
                    }
                    backoff(attempt).await;
                }
            }
        }
        Err(too_many_attempts(op))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scylla::errors::WriteType;
    use scylla::frame::types::Consistency;

    fn db(error: DbError) -> ExecutionError {
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(error, "msg".into()))
    }

    #[test]
    fn which_failed_writes_may_have_happened() {
        let cas_timeout = DbError::WriteTimeout {
            consistency: Consistency::Serial,
            received: 0,
            required: 1,
            write_type: WriteType::Cas,
        };
        assert!(maybe_applied(&db(cas_timeout)));
        assert!(maybe_applied(&db(DbError::Other(0x1700))));
        assert!(maybe_applied(&ExecutionError::RequestTimeout(
            Duration::from_secs(1)
        )));
        let unavailable = DbError::Unavailable {
            consistency: Consistency::Quorum,
            required: 2,
            alive: 1,
        };
        assert!(!maybe_applied(&db(unavailable)));
        assert!(!maybe_applied(&db(DbError::Overloaded)));
        assert!(!maybe_applied(&ExecutionError::EmptyPlan));
    }

    #[test]
    fn index_timestamps_order_versions() {
        // The entry of version v+1 beats the removal written when v+1 replaced v, and that
        // removal beats the entry of version v.
        for v in [1u64, 2, 1000] {
            assert!(index_put_ts(v) < index_del_ts(v + 1));
            assert!(index_del_ts(v + 1) < index_put_ts(v + 1));
        }
    }

    #[test]
    fn refused_requests_are_internal_and_the_rest_unavailable() {
        assert_eq!(
            failed("op", &db(DbError::Invalid)).kind,
            weft_plugin_api::ErrorKind::Internal
        );
        assert_eq!(
            failed("op", &ExecutionError::EmptyPlan).kind,
            weft_plugin_api::ErrorKind::Unavailable
        );
    }
}
