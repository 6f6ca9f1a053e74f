//! Object vectors and the search over them (`VECTOR_SEARCH`) on Cassandra 5.0's own vector
//! type and storage-attached index (SAI). The design and its reasons are in the crate docs
//! (`lib.rs`, "Object vectors"); in short:
//!
//! * One table per dimension, made when the first vector of that length is written:
//!   `object_vectors_<n>`, key `((kind, id), write_id)`, a `VECTOR<FLOAT, n>` column `v` with an
//!   SAI index (`similarity_function = 'COSINE'`) and SAI indexes on `object_kind` and `class`,
//!   so that `… WHERE object_kind = ? [AND class = ?] ORDER BY v ANN OF ? LIMIT ?` answers a
//!   search by kind or class. The table id is derived from the keyspace's `objects` table and
//!   the dimension (`WITH ID`), so two hosts creating it at once create the same table.
//! * A vector row belongs to one write of its object: `write_id` is the id the object's
//!   conditional write stores in `objects.write_id`, and `objects.vector_dims` names the
//!   table. The row is written **before** that write and is visible only while the object's
//!   current `write_id` is its own, so the object and its vector change in one atomic step (the
//!   LWT), and no search or `get_vector` ever answers an old vector.
//! * Search is filter first: by kind and class only, the ANN query (over-fetched, re-ranked by
//!   the exact distance, rows of superseded writes dropped); with owners, a filter, a query
//!   Cassandra cannot index, or an index not yet built, the candidates of `query_objects` (up
//!   to `max_query_objects`) and exact search over their vectors.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use futures::{StreamExt, TryStreamExt};
use scylla::client::session::Session;
use scylla::errors::{DbError, ExecutionError, RequestAttemptError};
use scylla::frame::types::Consistency;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::unprepared::Statement;
use scylla::value::MaybeUnset;
use uuid::Uuid;
use weft_connector_sdk::support::QueryMatcher;
use weft_plugin_api::vector::{cosine_distance, normalize, Nearest};
use weft_plugin_api::{
    Id, ObjectKind, PluginError, PluginResult, StoredObject, VectorHit, VectorQuery,
};

use crate::config::Config;
use crate::schema::{one_line, DDL_TIMEOUT};
use crate::store::{bad_answer, failed, kind_code, Db, VectorRef, VectorTable, Vectors, IN_FLIGHT};

/// The most rows one ANN query may ask for (Cassandra 5.0 refuses a larger `LIMIT` with
/// `ANN OF`).
pub(crate) const ANN_MAX_LIMIT: usize = 1000;

/// The name of the vector table of dimension `dims` (a number: safe in CQL text).
pub fn table_name(dims: usize) -> String {
    format!("object_vectors_{dims}")
}

impl Vectors {
    /// Reads the id of the keyspace's `objects` table (made by [`crate::schema::create`]).
    pub async fn new(session: &Session, config: &Config) -> PluginResult<Vectors> {
        let op = "opening the vector tables";
        let r = session
            .query_unpaged(
                "SELECT id FROM system_schema.tables WHERE keyspace_name = ? AND table_name = ?",
                (config.keyspace.as_str(), "objects"),
            )
            .await
            .map_err(|e| failed(op, &e))?;
        let objects_table = r
            .into_rows_result()
            .map_err(|e| bad_answer(op, e))?
            .maybe_first_row::<(Uuid,)>()
            .map_err(|e| bad_answer(op, e))?
            .map(|(id,)| id)
            .ok_or_else(|| bad_answer(op, "the objects table is not in system_schema.tables"))?;
        let ann_consistency = if matches!(
            config.consistency,
            Consistency::LocalQuorum | Consistency::LocalOne | Consistency::EachQuorum
        ) {
            Consistency::LocalOne
        } else {
            Consistency::One
        };
        Ok(Vectors {
            tables: Mutex::default(),
            ddl: tokio::sync::Mutex::new(()),
            objects_table,
            ann_consistency,
        })
    }

    fn cached(&self, dims: usize) -> Option<Arc<VectorTable>> {
        self.tables
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&dims)
            .cloned()
    }

    /// The id of the vector table of dimension `dims`: the same on every host of the keyspace
    /// (derived from the `objects` table's id, which they share), so that hosts racing to create
    /// it create one table, and new for a new keyspace of the same name.
    pub(crate) fn table_id(&self, dims: usize) -> Uuid {
        let mut bytes = [0u8; 16];
        for (half, seed) in [0xcbf2_9ce4_8422_2325u64, 0x8422_2325_cbf2_9ce4]
            .iter()
            .enumerate()
        {
            // FNV-1a over the objects table's id and the dimension, twice with two seeds.
            let mut h = *seed;
            for b in self
                .objects_table
                .as_bytes()
                .iter()
                .chain(&(dims as u64).to_be_bytes())
            {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            bytes[half * 8..half * 8 + 8].copy_from_slice(&h.to_be_bytes());
        }
        bytes[6] = (bytes[6] & 0x0f) | 0x80; // version 8: custom
        bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
        Uuid::from_bytes(bytes)
    }
}

/// The copy of a vector the ANN index holds: the vector itself when Cassandra can index it as
/// it is, else its direction (unit length, tiny components flushed to zero: the cosine is the
/// same); `None` when it has none (zero, or a component not finite). Cassandra refuses zero
/// vectors for cosine similarity and misbehaves on subnormal components.
pub(crate) fn indexed_copy(vector: &[f32]) -> Option<Cow<'_, [f32]>> {
    fn indexable(v: &[f32]) -> bool {
        v.iter().all(|x| *x == 0.0 || x.is_normal())
            && v.iter().map(|x| x * x).sum::<f32>().is_normal()
    }
    if vector.is_empty() {
        return None;
    }
    if indexable(vector) {
        return Some(Cow::Borrowed(vector));
    }
    if !vector.iter().all(|x| x.is_finite()) {
        return None;
    }
    let mut unit = vector.to_vec();
    normalize(&mut unit);
    for x in &mut unit {
        if !x.is_normal() {
            *x = 0.0;
        }
    }
    indexable(&unit).then_some(Cow::Owned(unit))
}

/// Whether an ANN query failed because its index cannot answer yet (still being built after
/// `CREATE INDEX`: `INDEX_NOT_AVAILABLE` from a replica): the exact path answers instead.
fn index_not_ready(e: &ExecutionError) -> bool {
    matches!(
        e,
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(
            DbError::ReadFailure { .. },
            _
        ))
    )
}

/// One row of an ANN answer.
type AnnRow = (Uuid, Uuid, Option<Vec<f32>>, Option<Vec<f32>>);

impl Db {
    /// The vector table of dimension `dims`, created (with its indexes) when missing and
    /// prepared once per process.
    pub(crate) async fn vector_table(&self, dims: usize) -> PluginResult<Arc<VectorTable>> {
        if let Some(t) = self.vectors.cached(dims) {
            return Ok(t);
        }
        let _one_at_a_time = self.vectors.ddl.lock().await;
        if let Some(t) = self.vectors.cached(dims) {
            return Ok(t);
        }
        let ks = &self.keyspace;
        let t = table_name(dims);
        let ddl = [
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.{t} (
                    kind tinyint, id uuid, write_id uuid,
                    object_kind tinyint, class text,
                    v vector<float, {dims}>, raw vector<float, {dims}>,
                    PRIMARY KEY ((kind, id), write_id)
                ) WITH ID = {}",
                self.vectors.table_id(dims)
            ),
            format!(
                "CREATE INDEX IF NOT EXISTS {t}_v ON {ks}.{t} (v) USING 'sai' \
                 WITH OPTIONS = {{'similarity_function': 'COSINE'}}"
            ),
            format!("CREATE INDEX IF NOT EXISTS {t}_kind ON {ks}.{t} (object_kind) USING 'sai'"),
            format!("CREATE INDEX IF NOT EXISTS {t}_class ON {ks}.{t} (class) USING 'sai'"),
        ];
        for cql in ddl {
            let mut statement = Statement::new(cql);
            statement.set_request_timeout(Some(DDL_TIMEOUT));
            self.session
                .query_unpaged(statement, ())
                .await
                .map_err(|e| {
                    PluginError::unavailable(one_line(&format!(
                        "cassandra: could not create the vector table {ks}.{t} (vectors of \
                         {dims} dimensions): {e}"
                    )))
                })?;
        }
        let t = t.as_str();
        let prep = |cql: String| async move {
            self.session.prepare(cql).await.map_err(|e| {
                PluginError::unavailable(one_line(&format!(
                    "cassandra: could not prepare a statement on {ks}.{t}: {e}"
                )))
            })
        };
        let idempotent = |mut p: PreparedStatement| {
            p.set_is_idempotent(true);
            p
        };
        let ann = |mut p: PreparedStatement| {
            p.set_is_idempotent(true);
            p.set_consistency(self.vectors.ann_consistency);
            p
        };
        let table = Arc::new(VectorTable {
            insert: idempotent(
                prep(format!(
                    "INSERT INTO {ks}.{t} (kind, id, write_id, object_kind, class, v, raw) \
                     VALUES (?, ?, ?, ?, ?, ?, ?)"
                ))
                .await?,
            ),
            delete: idempotent(
                prep(format!(
                    "DELETE FROM {ks}.{t} WHERE kind = ? AND id = ? AND write_id = ?"
                ))
                .await?,
            ),
            get: idempotent(
                prep(format!(
                    "SELECT v, raw FROM {ks}.{t} WHERE kind = ? AND id = ? AND write_id = ?"
                ))
                .await?,
            ),
            ann_kind: ann(prep(format!(
                "SELECT id, write_id, v, raw FROM {ks}.{t} WHERE object_kind = ? \
                 ORDER BY v ANN OF ? LIMIT ?"
            ))
            .await?),
            ann_class: ann(prep(format!(
                "SELECT id, write_id, v, raw FROM {ks}.{t} WHERE object_kind = ? AND class = ? \
                 ORDER BY v ANN OF ? LIMIT ?"
            ))
            .await?),
        });
        self.vectors
            .tables
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(dims, Arc::clone(&table));
        Ok(table)
    }

    /// Whether the vector table of dimension `dims` exists (a search never creates one).
    async fn vector_table_exists(&self, op: &str, dims: usize) -> PluginResult<bool> {
        if self.vectors.cached(dims).is_some() {
            return Ok(true);
        }
        let r = self
            .session
            .query_unpaged(
                "SELECT table_name FROM system_schema.tables \
                 WHERE keyspace_name = ? AND table_name = ?",
                (self.keyspace.as_str(), table_name(dims)),
            )
            .await
            .map_err(|e| failed(op, &e))?;
        Ok(r.into_rows_result()
            .map_err(|e| bad_answer(op, e))?
            .rows_num()
            > 0)
    }

    /// Writes the vector row of write `write_id` of `object`, before the object's conditional
    /// write (which makes it visible). Answers what `objects.vector_dims` gets: `None` for an
    /// empty vector (no row).
    pub(crate) async fn put_vector(
        &self,
        op: &str,
        object: &StoredObject,
        write_id: Uuid,
        vector: &[f32],
    ) -> PluginResult<Option<i32>> {
        if vector.is_empty() {
            return Ok(None);
        }
        let dims = i32::try_from(vector.len()).map_err(|_| {
            PluginError::invalid(format!(
                "cassandra: {op}: a vector of {} dimensions is too long",
                vector.len()
            ))
        })?;
        let table = self.vector_table(vector.len()).await?;
        let indexed = indexed_copy(vector);
        let raw = match &indexed {
            Some(Cow::Borrowed(_)) => MaybeUnset::Unset,
            _ => MaybeUnset::Set(vector),
        };
        let v = match &indexed {
            Some(copy) => MaybeUnset::Set(copy.as_ref()),
            None => MaybeUnset::Unset,
        };
        self.exec(
            op,
            &table.insert,
            (
                kind_code(object.kind),
                object.id.to_uuid(),
                write_id,
                kind_code(object.kind),
                object.class.as_str(),
                v,
                raw,
            ),
        )
        .await?;
        Ok(Some(dims))
    }

    /// Removes the vector row of a write that is not (or no longer) the object's current one.
    /// Best effort: such a row is invisible anyway (its `write_id` is not the object's), so a
    /// failure is logged, not answered.
    pub(crate) async fn drop_vector(&self, op: &str, kind: ObjectKind, id: Id, old: VectorRef) {
        let result = async {
            let table = self.vector_table(old.dims).await?;
            self.exec(
                op,
                &table.delete,
                (kind_code(kind), id.to_uuid(), old.write_id),
            )
            .await
        }
        .await;
        if let Err(e) = result {
            self.log.warn(&format!(
                "{op}: an invisible vector row of {} {id} stays behind: {}",
                kind.as_str(),
                e.message
            ));
        }
    }

    /// The vector of a write of an object.
    async fn vector_of(
        &self,
        op: &str,
        kind: ObjectKind,
        id: Id,
        at: VectorRef,
    ) -> PluginResult<Option<Vec<f32>>> {
        let table = self.vector_table(at.dims).await?;
        let r = self
            .exec(op, &table.get, (kind_code(kind), id.to_uuid(), at.write_id))
            .await?;
        let row = r
            .into_rows_result()
            .map_err(|e| bad_answer(op, e))?
            .maybe_first_row::<(Option<Vec<f32>>, Option<Vec<f32>>)>()
            .map_err(|e| bad_answer(op, e))?;
        Ok(row.and_then(|(v, raw)| raw.or(v)))
    }

    /// `get_vector`: the vector of the object's current write, if it has one.
    pub(crate) async fn get_vector(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> PluginResult<Option<Vec<f32>>> {
        let op = "get_vector";
        let Some(current) = self.current(op, kind, id).await? else {
            return Ok(None);
        };
        match (current.object, current.vector) {
            (Some(_), Some(at)) => self.vector_of(op, kind, id, at).await,
            _ => Ok(None),
        }
    }

    /// `search_vectors`: filter first, then nearest (see the module docs).
    pub(crate) async fn search_vectors(&self, query: VectorQuery) -> PluginResult<Vec<VectorHit>> {
        let op = "search_vectors";
        let candidates = query.candidates();
        let matcher = QueryMatcher::new(&candidates)?;
        let k = usize::try_from(query.k).unwrap_or(usize::MAX);
        if k == 0 {
            return Ok(Vec::new());
        }
        if query.owners.is_empty() && matcher.filter().is_none() {
            if let Some(direction) = indexed_copy(&query.vector) {
                if let Some(hits) = self.ann(op, &query, &matcher, &direction, k).await? {
                    return Ok(hits);
                }
            }
        }
        self.exact(op, &query, &matcher, k).await
    }

    /// The ANN path: `ORDER BY v ANN OF ? LIMIT ?` restricted by kind (and class), asking for
    /// more rows than `k` (rows of superseded writes are dropped, and the exact distance
    /// re-ranks them), more again while rows were dropped and more exist. `None` when the
    /// exact path must answer (no table of this dimension, an index not built yet, more than
    /// `ANN_MAX_LIMIT` rows needed).
    async fn ann(
        &self,
        op: &str,
        query: &VectorQuery,
        matcher: &QueryMatcher<'_>,
        direction: &[f32],
        k: usize,
    ) -> PluginResult<Option<Vec<VectorHit>>> {
        let dims = query.vector.len();
        if !self.vector_table_exists(op, dims).await? {
            return Ok(None);
        }
        let table = self.vector_table(dims).await?;
        let kind = kind_code(query.kind);
        let mut limit = k.saturating_mul(2).saturating_add(10).min(ANN_MAX_LIMIT);
        loop {
            let limit_value = limit as i32;
            let answer = if query.class.is_empty() {
                self.session
                    .execute_unpaged(&table.ann_kind, (kind, direction, limit_value))
                    .await
            } else {
                self.session
                    .execute_unpaged(
                        &table.ann_class,
                        (kind, query.class.as_str(), direction, limit_value),
                    )
                    .await
            };
            let answer = match answer {
                Ok(a) => a,
                Err(e) if index_not_ready(&e) => {
                    self.log.debug(&format!(
                        "{op}: the vector index of {} cannot answer yet ({}); searching exactly",
                        table_name(dims),
                        one_line(&e.to_string())
                    ));
                    return Ok(None);
                }
                Err(e) => return Err(failed(op, &e)),
            };
            let rows: Vec<AnnRow> = answer
                .into_rows_result()
                .map_err(|e| bad_answer(op, e))?
                .rows::<AnnRow>()
                .map_err(|e| bad_answer(op, e))?
                .collect::<Result<_, _>>()
                .map_err(|e| bad_answer(op, e))?;
            let fetched = rows.len();
            let mut seen = HashSet::new();
            let rows: Vec<(Id, Uuid, Vec<f32>)> = rows
                .into_iter()
                .filter_map(|(id, write_id, v, raw)| {
                    let vector = raw.or(v)?;
                    seen.insert((id, write_id))
                        .then_some((Id::from(id), write_id, vector))
                })
                .collect();
            let ids: Vec<Id> = rows.iter().map(|(id, _, _)| *id).collect();
            let currents: Vec<_> = futures::stream::iter(ids)
                .map(|id| self.current(op, query.kind, id))
                .buffered(IN_FLIGHT)
                .try_collect()
                .await?;
            let mut best = Nearest::new(k);
            let mut farthest = 0f32;
            for ((id, write_id, vector), current) in rows.iter().zip(currents) {
                let distance = cosine_distance(vector, &query.vector);
                farthest = farthest.max(distance);
                let Some(current) = current else { continue };
                let (Some(object), Some(at)) = (current.object, current.vector) else {
                    continue;
                };
                if at.write_id != *write_id
                    || !matcher.matches_kind_class_and_owner(&object)
                    || distance > query.max_distance
                {
                    continue;
                }
                best.offer(*id, distance, || object);
            }
            let hits = best.into_hits();
            if hits.len() >= k || fetched < limit || farthest > query.max_distance {
                return Ok(Some(hits));
            }
            if limit >= ANN_MAX_LIMIT {
                return Ok(None);
            }
            limit = limit.saturating_mul(4).min(ANN_MAX_LIMIT);
        }
    }

    /// The exact path: the objects `query_objects` would answer (kind, class, owners, filter;
    /// at most `max_query_objects`), each with its vector, the `k` nearest of them. A vector of
    /// another length is at distance 1 (`cosine_distance`), without reading it.
    async fn exact(
        &self,
        op: &str,
        query: &VectorQuery,
        matcher: &QueryMatcher<'_>,
        k: usize,
    ) -> PluginResult<Vec<VectorHit>> {
        let candidates = query.candidates();
        let selected = self.selected_current(op, &candidates, matcher).await?;
        let objects: Vec<StoredObject> = selected.iter().map(|(o, _)| o.clone()).collect();
        let keep: Vec<bool> = if matcher.filter().is_none() {
            vec![true; objects.len()]
        } else {
            self.with_references(op, &objects, |resolve| {
                objects
                    .iter()
                    .map(|o| matcher.matches(o, resolve))
                    .collect::<Vec<bool>>()
            })
            .await?
        };
        let dims = query.vector.len();
        let with_vectors = selected
            .into_iter()
            .zip(keep)
            .filter_map(|((object, at), keep)| Some((object, at?)).filter(|_| keep));
        let scored: Vec<Option<(StoredObject, f32)>> = futures::stream::iter(with_vectors)
            .map(|(object, at)| async move {
                if at.dims != dims {
                    return Ok::<_, PluginError>(Some((object, 1.0)));
                }
                let vector = self.vector_of(op, object.kind, object.id, at).await?;
                Ok(vector.map(|v| {
                    let distance = cosine_distance(&v, &query.vector);
                    (object, distance)
                }))
            })
            .buffered(IN_FLIGHT)
            .try_collect()
            .await?;
        let mut best = Nearest::new(k);
        for (object, distance) in scored.into_iter().flatten() {
            if distance <= query.max_distance {
                best.offer(object.id, distance, || object);
            }
        }
        Ok(best.into_hits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexed_copies() {
        let clean = [0.5f32, -0.25, 0.0];
        assert!(matches!(indexed_copy(&clean), Some(Cow::Borrowed(_))));
        assert!(indexed_copy(&[0.0, 0.0]).is_none());
        assert!(indexed_copy(&[-0.0, 0.0]).is_none());
        assert!(indexed_copy(&[f32::NAN, 1.0]).is_none());
        assert!(indexed_copy(&[]).is_none());
        // Tiny (subnormal) or huge components: the direction, same cosine.
        for odd in [
            vec![1e-44f32, 0.0, 2e-44],
            vec![1e-30, 3e-30, 0.0],
            vec![1e30, -1e30, 0.5],
        ] {
            let Some(Cow::Owned(copy)) = indexed_copy(&odd) else {
                panic!("{odd:?} has a direction")
            };
            assert!(copy.iter().all(|x| *x == 0.0 || x.is_normal()));
            let norm: f32 = copy.iter().map(|x| x * x).sum();
            assert!((norm - 1.0).abs() < 1e-5, "{copy:?}");
        }
    }

    #[test]
    fn table_ids_are_per_keyspace_and_dimension() {
        let vectors = |seed: u128| Vectors {
            tables: Mutex::default(),
            ddl: tokio::sync::Mutex::new(()),
            objects_table: Uuid::from_u128(seed),
            ann_consistency: Consistency::One,
        };
        let (a, b) = (vectors(1), vectors(2));
        assert_eq!(a.table_id(16), vectors(1).table_id(16));
        assert_ne!(a.table_id(16), a.table_id(17));
        assert_ne!(a.table_id(16), b.table_id(16));
        assert_eq!(a.table_id(300).get_version_num(), 8);
    }
}
