//! Object vectors on the real Cassandra (`WEFT_CASSANDRA_CONTACT_POINTS`), beyond the kit's
//! checks: that a search by kind or class is answered by an SAI ANN query on the vector table
//! (`object_vectors_<n>`, `VECTOR<FLOAT, n>`, index with `similarity_function = 'COSINE'`), that
//! a vector row of a write which is not the object's current one is never answered, that
//! vectors Cassandra cannot index (zero, tiny) are kept exactly, and that a vector of a new
//! length moves the object to that length's table.
//!
//! Without `WEFT_CASSANDRA_CONTACT_POINTS` every test prints that it skips and passes.

mod common;

use std::time::{Duration, Instant};

use abi_stable::std_types::{RString, RVec};
use futures::executor::block_on;
use uuid::Uuid;
use weft_connector_tests::weft_plugin_api::{
    ErrorKind, Id, ObjectKind, PluginResult, StoredObject, VectorHit, VectorQuery, VectorsBox,
};

use common::*;

fn object(class: &str, owner: Id, n: i64) -> StoredObject {
    StoredObject {
        kind: ObjectKind::Thing,
        id: Id::random(),
        class: class.into(),
        context: "".into(),
        owner,
        created_ms: n,
        updated_ms: n,
        properties_json: format!("{{\"n\":{n}}}").into(),
    }
}

fn query(class: &str, vector: &[f32], k: u64) -> VectorQuery {
    VectorQuery {
        kind: ObjectKind::Thing,
        class: class.into(),
        owners: RVec::new(),
        filter_json: RString::new(),
        vector: RVec::from(vector.to_vec()),
        k,
        max_distance: 2.0,
    }
}

fn search(x: &VectorsBox, q: &VectorQuery) -> PluginResult<Vec<VectorHit>> {
    block_on(x.search_vectors(q.clone()))
        .into_result()
        .map(RVec::into_vec)
}

fn create(x: &VectorsBox, o: &StoredObject, v: &[f32]) {
    block_on(x.create_object_with_vector(o.clone(), RVec::from(v.to_vec())))
        .into_result()
        .unwrap();
}

fn get_vector(x: &VectorsBox, o: &StoredObject) -> Option<Vec<f32>> {
    block_on(x.get_vector(o.kind, o.id))
        .into_result()
        .unwrap()
        .into_option()
        .map(RVec::into_vec)
}

/// A CQL query of the test's own session, its rows as `R`.
fn rows<R>(points: &[String], cql: String) -> Vec<R>
where
    R: for<'f, 'm> scylla::deserialize::row::DeserializeRow<'f, 'm>,
{
    runtime().block_on(async {
        admin(points)
            .query_unpaged(cql.clone(), ())
            .await
            .unwrap_or_else(|e| panic!("{cql}: {e}"))
            .into_rows_result()
            .unwrap()
            .rows::<R>()
            .unwrap()
            .collect::<Result<Vec<R>, _>>()
            .unwrap()
    })
}

/// Runs a CQL statement of the test's own session.
fn cql(points: &[String], cql: String) {
    runtime().block_on(async {
        admin(points)
            .query_unpaged(cql.clone(), ())
            .await
            .unwrap_or_else(|e| panic!("{cql}: {e}"));
    })
}

/// A vector of 4 dimensions pointing mostly along axis `i % 4`.
fn along(i: usize) -> Vec<f32> {
    let mut v = vec![0.1f32 * (i as f32 % 7.0 + 1.0); 4];
    v[i % 4] = 5.0 + i as f32;
    v
}

/// A search by class (no owners, no filter) is answered by the SAI ANN query on
/// `object_vectors_4`: the table and its COSINE index exist, the ANN query run directly
/// answers the same nearest object, and the search works although the class holds more objects
/// than `max_query_objects` — the bound of the candidate path, which a search with owners
/// takes and which refuses it.
#[test]
fn class_search_is_an_sai_ann_query() {
    let Some(points) = server_or_skip() else {
        return;
    };
    let plugin = load_plugin();
    drop_stale_keyspaces(&points);
    let keyspace = fresh_keyspace("it");
    let mut cfg = config(&points, &keyspace);
    cfg["max_query_objects"] = serde_json::json!(5);
    let opened = open(&plugin, &cfg).unwrap();
    let x = opened.vectors.as_ref().expect("a vectors object");
    let owner = Id::random();
    let mut held = vec![];
    for i in 0..24 {
        let o = object(if i % 2 == 0 { "City" } else { "Village" }, owner, i);
        let v = along(i as usize);
        create(x, &o, &v);
        held.push((o, v));
    }
    // The table, its vector column and the indexes.
    let tables: Vec<(String,)> = rows(
        &points,
        format!("SELECT table_name FROM system_schema.tables WHERE keyspace_name = '{keyspace}'"),
    );
    assert!(
        tables.iter().any(|(t,)| t == "object_vectors_4"),
        "{tables:?}"
    );
    let columns: Vec<(String, String)> = rows(
        &points,
        format!(
            "SELECT column_name, type FROM system_schema.columns WHERE keyspace_name = \
             '{keyspace}' AND table_name = 'object_vectors_4'"
        ),
    );
    assert!(
        columns
            .iter()
            .any(|(c, t)| c == "v" && t == "vector<float, 4>"),
        "{columns:?}"
    );
    let indexes: Vec<(String, std::collections::HashMap<String, String>)> = rows(
        &points,
        format!(
            "SELECT index_name, options FROM system_schema.indexes WHERE keyspace_name = \
             '{keyspace}' AND table_name = 'object_vectors_4'"
        ),
    );
    let v_index = indexes
        .iter()
        .find(|(_, o)| o.get("target").map(String::as_str) == Some("v"))
        .unwrap_or_else(|| panic!("no index on v: {indexes:?}"));
    assert_eq!(v_index.1.get("class_name").map(String::as_str), Some("sai"));
    assert_eq!(
        v_index.1.get("similarity_function").map(String::as_str),
        Some("COSINE")
    );
    // The search by class: the index may still be building just after it was made (then the
    // connector searches exactly, which the bound of 5 refuses here): wait until ANN answers.
    let near = along(6);
    let q = query("City", &near, 3);
    let since = Instant::now();
    let hits = loop {
        match search(x, &q) {
            Ok(hits) => break hits,
            Err(e) if e.kind == ErrorKind::Invalid && since.elapsed() < Duration::from_secs(60) => {
                std::thread::sleep(Duration::from_millis(200))
            }
            Err(e) => panic!("search by class: {e:?}"),
        }
    };
    assert_eq!(hits.len(), 3);
    assert_eq!(
        hits[0].object, held[6].0,
        "the object with the query's own vector"
    );
    assert!(hits[0].distance.abs() < 1e-5);
    assert!(hits.iter().all(|h| h.object.class == "City"));
    // The same ANN query, run directly, finds that object first.
    let direct: Vec<(Uuid,)> = rows(
        &points,
        format!(
            "SELECT id FROM {keyspace}.object_vectors_4 WHERE object_kind = 0 AND class = \
             'City' ORDER BY v ANN OF {near:?} LIMIT 3"
        ),
    );
    assert_eq!(direct[0].0, held[6].0.id.to_uuid());
    // With owners the candidates come from the objects' indexes, bounded by max_query_objects.
    let mut by_owner = q.clone();
    by_owner.owners = RVec::from(vec![owner]);
    let e = search(x, &by_owner).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{}", e.message);
    assert!(e.message.contains("max_query_objects"), "{}", e.message);
    drop(opened);
    drop_my_keyspaces(&points);
}

/// A vector row whose `write_id` is not the object's current one (a lost race, a crash
/// between the row and the object's write) is never answered, even when it is the nearest;
/// after a plain update the old row is gone from the table.
#[test]
fn rows_of_other_writes_are_never_answered() {
    let Some(points) = server_or_skip() else {
        return;
    };
    let plugin = load_plugin();
    drop_stale_keyspaces(&points);
    let keyspace = fresh_keyspace("it");
    let opened = open(&plugin, &config(&points, &keyspace)).unwrap();
    let x = opened.vectors.as_ref().unwrap();
    let owner = Id::random();
    let a = object("City", owner, 1);
    let b = object("City", owner, 2);
    create(x, &a, &[1.0, 0.0, 0.0, 0.0]);
    create(x, &b, &[0.0, 1.0, 0.0, 0.0]);
    // A row for `b` of a write that never became its current one, right at the query.
    let stray = Uuid::new_v4();
    cql(
        &points,
        format!(
            "INSERT INTO {keyspace}.object_vectors_4 (kind, id, write_id, object_kind, class, v) \
             VALUES (0, {}, {stray}, 0, 'City', [1.0, 0.01, 0.0, 0.0])",
            b.id.to_uuid()
        ),
    );
    for mut q in [
        query("City", &[1.0, 0.0, 0.0, 0.0], 2),
        query("", &[1.0, 0.0, 0.0, 0.0], 2),
    ] {
        for owners in [vec![], vec![owner]] {
            q.owners = RVec::from(owners);
            let hits = search(x, &q).unwrap();
            let got: Vec<(Id, f32)> = hits.iter().map(|h| (h.object.id, h.distance)).collect();
            assert_eq!(got.len(), 2, "{got:?}");
            assert_eq!(got[0], (a.id, 0.0));
            assert_eq!(got[1].0, b.id);
            assert!((got[1].1 - 1.0).abs() < 1e-6, "b's own vector: {got:?}");
        }
    }
    assert_eq!(get_vector(x, &b), Some(vec![0.0, 1.0, 0.0, 0.0]));
    // A plain update drops a's vector: not found, row gone.
    block_on(opened.connector.update_object(a.clone()))
        .into_result()
        .unwrap();
    assert_eq!(get_vector(x, &a), None);
    let left: Vec<(Uuid,)> = rows(
        &points,
        format!(
            "SELECT write_id FROM {keyspace}.object_vectors_4 WHERE kind = 0 AND id = {}",
            a.id.to_uuid()
        ),
    );
    assert!(left.is_empty(), "{left:?}");
    let hits = search(x, &query("City", &[1.0, 0.0, 0.0, 0.0], 5)).unwrap();
    assert_eq!(
        hits.iter().map(|h| h.object.id).collect::<Vec<_>>(),
        vec![b.id]
    );
    drop(opened);
    drop_my_keyspaces(&points);
}

/// Vectors Cassandra's cosine index refuses or mishandles (zero, subnormal components) are
/// stored and answered exactly; a zero query finds everything at distance 1; a vector of
/// another length moves the object to that length's table.
#[test]
fn odd_vectors_and_new_lengths() {
    let Some(points) = server_or_skip() else {
        return;
    };
    let plugin = load_plugin();
    drop_stale_keyspaces(&points);
    let keyspace = fresh_keyspace("it");
    let opened = open(&plugin, &config(&points, &keyspace)).unwrap();
    let x = opened.vectors.as_ref().unwrap();
    let owner = Id::random();
    let zero = object("City", owner, 1);
    let tiny = object("City", owner, 2);
    let huge = object("City", owner, 3);
    let plain = object("City", owner, 4);
    let vectors = [
        (&zero, vec![0.0f32, 0.0, 0.0, 0.0]),
        (&tiny, vec![1e-44f32, 0.0, 1e-44, 0.0]),
        (&huge, vec![3e30f32, 0.0, 1e30, 0.0]),
        (&plain, vec![0.0f32, 1.0, 0.0, 0.0]),
    ];
    for (o, v) in &vectors {
        create(x, o, v);
    }
    for (o, v) in &vectors {
        assert_eq!(get_vector(x, o).as_ref(), Some(v), "{}", o.properties_json);
    }
    // Near [1, 0, 1, 0]: tiny (its direction is the query's), huge, then plain and zero at 1
    // (zero is not in the index: the ANN path does not find it).
    let q = query("City", &[1.0, 0.0, 1.0, 0.0], 10);
    let got: Vec<Id> = search(x, &q).unwrap().iter().map(|h| h.object.id).collect();
    assert_eq!(&got[..2], &[tiny.id, huge.id]);
    assert!(got.contains(&plain.id));
    let mut exact = q.clone();
    exact.owners = RVec::from(vec![owner]);
    let hits = search(x, &exact).unwrap();
    assert_eq!(hits.len(), 4, "every object has a vector");
    assert_eq!(hits[0].object.id, tiny.id);
    assert_eq!(hits[1].object.id, huge.id);
    let d_tiny = weft_connector_tests::weft_plugin_api::vector::cosine_distance(
        &vectors[1].1,
        &[1.0, 0.0, 1.0, 0.0],
    );
    assert!((hits[0].distance - d_tiny).abs() < 1e-6);
    // A zero query: everything at distance 1, smaller id first.
    let hits = search(x, &query("City", &[0.0; 4], 10)).unwrap();
    assert_eq!(hits.len(), 4);
    assert!(hits.iter().all(|h| h.distance == 1.0));
    // A vector of another length: the object's row moves to object_vectors_3.
    block_on(x.update_object_with_vector(plain.clone(), RVec::from(vec![0.0f32, 0.0, 1.0])))
        .into_result()
        .unwrap();
    assert_eq!(get_vector(x, &plain), Some(vec![0.0, 0.0, 1.0]));
    let old: Vec<(Uuid,)> = rows(
        &points,
        format!(
            "SELECT write_id FROM {keyspace}.object_vectors_4 WHERE kind = 0 AND id = {}",
            plain.id.to_uuid()
        ),
    );
    assert!(old.is_empty(), "{old:?}");
    let hits = search(x, &query("", &[0.0, 0.0, 2.0], 1)).unwrap();
    assert_eq!(hits[0].object.id, plain.id);
    assert!(hits[0].distance.abs() < 1e-6);
    drop(opened);
    drop_my_keyspaces(&points);
}
