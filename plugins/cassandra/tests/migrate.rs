//! `MIGRATE` on a real Cassandra beyond the kit's checks: export pages over many objects of
//! both kinds, a cursor taken to another connector instance, records from a store without
//! versioned writes (version 0) and deleted ones, a refused import that leaves the held record
//! alone, two hosts importing the same records at once; and, when `WEFT_CASSANDRA_MIGRATE_BENCH=<records>` is set, the import and export rate.
//!
//! Needs a real server (`WEFT_CASSANDRA_CONTACT_POINTS`); without it every test prints that it
//! skips and passes.

mod common;

use std::collections::BTreeMap;
use std::time::Instant;

use abi_stable::std_types::{ROption, RString, RVec};
use futures::executor::block_on;
use futures::stream::{FuturesUnordered, StreamExt};
use weft_connector_tests::weft_plugin_api::{
    ErrorKind, FfiResult, Id, MigrationBox, ObjectKind, ObjectQuery, ObjectRecord, ObjectVersion,
    OpenedConnector, StoredObject,
};

use common::*;

fn object(kind: ObjectKind, class: &str, owner: Id, ms: i64, props: String) -> StoredObject {
    StoredObject {
        kind,
        id: Id::random(),
        class: class.into(),
        context: "http://example.org".into(),
        owner,
        created_ms: ms,
        updated_ms: ms,
        properties_json: props.into(),
    }
}

fn migration(c: &OpenedConnector) -> &MigrationBox {
    c.migration
        .as_ref()
        .expect("the cassandra plugin has a migration object")
}

/// Every record of `kind`, `limit` per page, checking the pages' rules on the way; each page
/// through the next connector of `via` in turn (a cursor works in any instance).
fn export_all(via: &[&OpenedConnector], kind: ObjectKind, limit: u64) -> Vec<ObjectRecord> {
    let mut all = Vec::new();
    let mut cursor = RString::new();
    for page_no in 0usize.. {
        let c = via[page_no % via.len()];
        let page = block_on(migration(c).export_objects(kind, cursor.clone(), limit))
            .into_result()
            .unwrap_or_else(|e| panic!("export page {page_no}: {e}"));
        assert!(page.records.len() as u64 <= limit);
        assert!(!page.records.is_empty() || page.next.is_empty());
        assert!(page.records.iter().all(|r| r.kind == kind));
        all.extend(page.records);
        if page.next.is_empty() {
            return all;
        }
        cursor = page.next;
    }
    unreachable!()
}

fn by_id(records: Vec<ObjectRecord>) -> BTreeMap<Id, ObjectRecord> {
    let n = records.len();
    let map: BTreeMap<Id, ObjectRecord> = records.into_iter().map(|r| (r.id, r)).collect();
    assert_eq!(map.len(), n, "a record came twice");
    map
}

#[test]
fn export_walks_both_kinds_in_pages_across_instances() {
    let Some(points) = server_or_skip() else {
        return;
    };
    let plugin = load_plugin();
    drop_stale_keyspaces(&points);
    let cfg = config(&points, &fresh_keyspace("it"));
    let a = open(&plugin, &cfg).unwrap();
    let b = open(&plugin, &cfg).unwrap();
    let owner = Id::random();
    let mut things = Vec::new();
    for i in 0..60 {
        let kind = if i % 3 == 0 {
            ObjectKind::Action
        } else {
            ObjectKind::Thing
        };
        let o = object(kind, "C", owner, i, format!(r#"{{"n":{i}}}"#));
        block_on(a.connector.create_object(o.clone()))
            .into_result()
            .unwrap();
        if i % 7 == 0 {
            block_on(a.connector.delete_object(kind, o.id))
                .into_result()
                .unwrap();
        }
        if kind == ObjectKind::Thing {
            things.push(o.id);
        }
    }
    for limit in [1, 7, 1000] {
        let records = by_id(export_all(&[&a, &b], ObjectKind::Thing, limit));
        assert_eq!(
            records.keys().copied().collect::<Vec<_>>(),
            {
                let mut t = things.clone();
                t.sort();
                t
            },
            "limit {limit}"
        );
        assert_eq!(export_all(&[&b], ObjectKind::Action, limit).len(), 20);
    }
    let e = block_on(migration(&a).export_objects(ObjectKind::Thing, "nonsense".into(), 5))
        .into_result()
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e}");
    drop_my_keyspaces(&points);
}

#[test]
fn records_of_a_store_without_versions_and_deleted_ones_import_exactly() {
    let Some(points) = server_or_skip() else {
        return;
    };
    let plugin = load_plugin();
    drop_stale_keyspaces(&points);
    let c = open(&plugin, &config(&points, &fresh_keyspace("it"))).unwrap();
    let owner = Id::random();
    let v = |o: &StoredObject, ms: i64, props: &str| ObjectVersion {
        object: StoredObject {
            updated_ms: ms,
            properties_json: props.into(),
            ..o.clone()
        },
        archived_ms: ms + 1,
    };
    // Version 0 (a source without VERSIONED_WRITES) with two earlier versions.
    let live = object(ObjectKind::Thing, "City", owner, 10, r#"{"n":3}"#.into());
    let unversioned = ObjectRecord {
        kind: ObjectKind::Thing,
        id: live.id,
        current: ROption::RSome(live.clone()),
        version: 0,
        history: RVec::from(vec![v(&live, 9, r#"{"n":2}"#), v(&live, 8, r#"{"n":1}"#)]),
    };
    let gone = object(ObjectKind::Thing, "City", owner, 11, "{}".into());
    let deleted = ObjectRecord {
        kind: ObjectKind::Thing,
        id: gone.id,
        current: ROption::RNone,
        version: 5, // a deleted record's version does not count
        history: RVec::from(vec![v(&gone, 12, "{}")]),
    };
    let records = vec![unversioned.clone(), deleted.clone()];
    block_on(migration(&c).import_objects(RVec::from(records.clone())))
        .into_result()
        .unwrap();
    // Again: a no-op.
    block_on(migration(&c).import_objects(RVec::from(records)))
        .into_result()
        .unwrap();
    let got = by_id(export_all(&[&c], ObjectKind::Thing, 10));
    assert_eq!(got[&live.id], unversioned);
    assert_eq!(
        got[&gone.id],
        ObjectRecord {
            version: 0,
            ..deleted.clone()
        }
    );
    let h = block_on(c.connector.object_history(ObjectKind::Thing, live.id))
        .into_result()
        .unwrap();
    assert_eq!(h.versions, unversioned.history);
    assert!(!h.deleted);
    let h = block_on(c.connector.object_history(ObjectKind::Thing, gone.id))
        .into_result()
        .unwrap();
    assert!(h.deleted);
    assert_eq!(h.versions, deleted.history);
    let e = block_on(c.connector.create_object(gone.clone()))
        .into_result()
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    // Listed by owner and class; an update goes on from version 0 and archives the current
    // version as the newest.
    let page = block_on(c.connector.query_objects(ObjectQuery {
        owners: RVec::from(vec![owner]),
        ..ObjectQuery::all(ObjectKind::Thing, 10)
    }))
    .into_result()
    .unwrap();
    assert_eq!(page.objects.to_vec(), vec![live.clone()]);
    let next = StoredObject {
        updated_ms: 20,
        properties_json: r#"{"n":4}"#.into(),
        ..live.clone()
    };
    let versions = c.versions.as_ref().unwrap();
    assert_eq!(
        block_on(versions.update_object_if(next.clone(), 0))
            .into_result()
            .unwrap(),
        1
    );
    let h = block_on(c.connector.object_history(ObjectKind::Thing, live.id))
        .into_result()
        .unwrap();
    assert_eq!(h.versions.len(), 3);
    assert_eq!(h.versions[0].object, live);
    assert_eq!(h.versions[1..], unversioned.history[..]);

    // A record held differently (another history): Conflict, and nothing of it is written.
    let other = ObjectRecord {
        history: RVec::from(vec![v(&gone, 13, r#"{"x":1}"#)]),
        ..deleted.clone()
    };
    let e = block_on(migration(&c).import_objects(RVec::from(vec![other])))
        .into_result()
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict, "{e}");
    assert!(e.message.contains(&gone.id.to_string()), "{e}");
    let h = block_on(c.connector.object_history(ObjectKind::Thing, gone.id))
        .into_result()
        .unwrap();
    assert_eq!(h.versions, deleted.history);
    drop_my_keyspaces(&points);
}

#[test]
fn the_same_records_imported_at_once_by_two_hosts_are_written_once() {
    let Some(points) = server_or_skip() else {
        return;
    };
    let plugin = load_plugin();
    drop_stale_keyspaces(&points);
    let cfg = config(&points, &fresh_keyspace("it"));
    let (a, b) = (open(&plugin, &cfg).unwrap(), open(&plugin, &cfg).unwrap());
    let owner = Id::random();
    let records: Vec<ObjectRecord> = (0..300)
        .map(|i| {
            let o = object(
                ObjectKind::Action,
                "Visit",
                owner,
                i,
                format!(r#"{{"n":{i}}}"#),
            );
            let earlier = ObjectVersion {
                object: StoredObject {
                    properties_json: "{}".into(),
                    ..o.clone()
                },
                archived_ms: i,
            };
            ObjectRecord {
                kind: ObjectKind::Action,
                id: o.id,
                current: if i % 5 == 0 {
                    ROption::RNone
                } else {
                    ROption::RSome(o)
                },
                version: if i % 5 == 0 { 0 } else { 2 },
                history: RVec::from(vec![earlier]),
            }
        })
        .collect();
    let (ra, rb) = block_on(futures::future::join(
        migration(&a).import_objects(RVec::from(records.clone())),
        migration(&b).import_objects(RVec::from(records.clone())),
    ));
    ra.into_result().unwrap();
    rb.into_result().unwrap();
    let mut want = records;
    want.sort_by_key(|r| r.id);
    let mut got = export_all(&[&b], ObjectKind::Action, 100);
    got.sort_by_key(|r| r.id);
    assert_eq!(got, want);
    let page = block_on(a.connector.query_objects(ObjectQuery {
        class: "Visit".into(),
        ..ObjectQuery::all(ObjectKind::Action, 1000)
    }))
    .into_result()
    .unwrap();
    assert_eq!(page.total, 240);
    drop_my_keyspaces(&points);
}

/// The import and export rate: `WEFT_CASSANDRA_MIGRATE_BENCH=20000` records (live, version 1,
/// no history, ~150 bytes of properties, 10 classes, 100 owners), imported in calls of 1000
/// with 4 calls in flight (as `weft migrate` does by default), then exported in pages of 1000.
/// Point `WEFT_CONNECTOR_SO` at a release build for a representative figure.
#[test]
fn import_and_export_rate() {
    let Some(n) = std::env::var("WEFT_CASSANDRA_MIGRATE_BENCH")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    else {
        println!("skipping the rate measurement: set WEFT_CASSANDRA_MIGRATE_BENCH=<records>");
        return;
    };
    let Some(points) = server_or_skip() else {
        return;
    };
    let plugin = load_plugin();
    drop_stale_keyspaces(&points);
    let c = open(&plugin, &config(&points, &fresh_keyspace("it"))).unwrap();
    let owners: Vec<Id> = (0..100).map(|_| Id::random()).collect();
    let records: Vec<ObjectRecord> = (0..n)
        .map(|i| {
            let o = StoredObject {
                id: Id::time_ordered(),
                ..object(
                    ObjectKind::Thing,
                    &format!("Class{}", i % 10),
                    owners[i % owners.len()],
                    1_700_000_000_000 + i as i64,
                    format!(
                        r#"{{"name":"object number {i}","population":{i},"description":"a record of the migration benchmark, some text"}}"#
                    ),
                )
            };
            ObjectRecord {
                kind: ObjectKind::Thing,
                id: o.id,
                current: ROption::RSome(o),
                version: 1,
                history: RVec::new(),
            }
        })
        .collect();
    let (batch, parallel) = (1000, 4);
    let m = migration(&c);
    let started = Instant::now();
    block_on(async {
        let mut in_flight: FuturesUnordered<FfiResult<()>> = FuturesUnordered::new();
        for chunk in records.chunks(batch) {
            while in_flight.len() >= parallel {
                in_flight.next().await.unwrap().into_result().unwrap();
            }
            in_flight.push(m.import_objects(RVec::from(chunk.to_vec())));
        }
        while let Some(done) = in_flight.next().await {
            done.into_result().unwrap();
        }
    });
    let import = started.elapsed();
    let started = Instant::now();
    let exported = export_all(&[&c], ObjectKind::Thing, batch as u64);
    let export = started.elapsed();
    assert_eq!(exported.len(), n);
    let rate = |d: std::time::Duration| n as f64 / d.as_secs_f64();
    println!(
        "cassandra migrate rate: {n} records imported in {:.2} s ({:.0}/s), exported in {:.2} s ({:.0}/s)",
        import.as_secs_f64(),
        rate(import),
        export.as_secs_f64(),
        rate(export)
    );
    // Re-importing what is held is a no-op (a resumed migration): its rate too.
    let started = Instant::now();
    block_on(m.import_objects(RVec::from(records[..n.min(5000)].to_vec())))
        .into_result()
        .unwrap();
    let again = started.elapsed();
    println!(
        "cassandra migrate rate: {} records re-imported (held already, compared) in {:.2} s ({:.0}/s)",
        n.min(5000),
        again.as_secs_f64(),
        n.min(5000) as f64 / again.as_secs_f64()
    );
    drop_my_keyspaces(&points);
}
