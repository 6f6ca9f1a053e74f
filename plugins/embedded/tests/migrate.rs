//! Moving a store (`export_objects`, `import_objects`, capability MIGRATE) through the built
//! `.so`, beyond the kit's round trip: an imported store is whole after a restart (the file
//! reopened), its indexes and counts answer class, owner and property queries as the source's
//! do, an imported deleted id stays taken, and a refused import call writes nothing of itself.
//!
//! On demand, the rates of a migration's two halves (export pages of 5,000, import calls of
//! 5,000, durable):
//! `cargo test --release -p weft-embedded --test migrate -- --ignored --nocapture`
//! (`WEFT_EMBEDDED_BENCH_MIGRATE` objects, default 200,000).

mod common;

use common::{fresh_dir, load_plugin, open};

use std::collections::BTreeMap;
use std::time::Instant;

use futures::executor::block_on;
use weft_connector_tests::weft_plugin_api::{
    Capabilities, ErrorKind, Id, MigrationBox, ObjectKind, ObjectQuery, ObjectRecord,
    OpenedConnector, PluginError, StoredObject,
};

fn migration(c: &OpenedConnector) -> &MigrationBox {
    c.migration
        .as_ref()
        .expect("a 1.4 plugin has a migration object")
}

const OWNERS: [Id; 3] = [Id([1; 16]), Id([2; 16]), Id([3; 16])];
const CLASSES: [&str; 3] = ["City", "Town", "Village"];

fn object(kind: ObjectKind, i: usize) -> StoredObject {
    StoredObject {
        kind,
        id: Id::time_ordered(),
        class: CLASSES[i % 3].into(),
        context: "http://example.org/migrate".into(),
        owner: OWNERS[i % OWNERS.len()],
        // Ties in the creation time, so pages must order them by id.
        created_ms: 1_800_000_000_000 + (i / 2) as i64,
        updated_ms: 1_800_000_000_000 + i as i64,
        properties_json: format!(
            r#"{{"name":"c{i}","population":{i},"isCapital":{},"founded":"20{:02}-01-01T00:00:00Z"}}"#,
            i.is_multiple_of(10),
            i % 30
        )
        .into(),
    }
}

/// Runs `writes`, 1,000 at a time polled together (a write reaches the writer thread when first
/// polled; the writer commits those waiting in one transaction).
fn in_flight<F, T>(writes: impl IntoIterator<Item = F>)
where
    F: std::future::Future<Output = abi_stable::std_types::RResult<T, PluginError>>,
{
    let mut writes = writes.into_iter().peekable();
    while writes.peek().is_some() {
        let batch: Vec<F> = writes.by_ref().take(1_000).collect();
        for r in block_on(futures::future::join_all(batch)) {
            r.unwrap();
        }
    }
}

/// `n` things and `n / 4` actions, a third of the things updated (every other one of those
/// twice), every seventh deleted: a store with history, deleted ids, classes and owners to
/// carry.
fn fill(c: &OpenedConnector, n: usize) {
    let things: Vec<StoredObject> = (0..n).map(|i| object(ObjectKind::Thing, i)).collect();
    in_flight(things.iter().map(|o| c.connector.create_object(o.clone())));
    in_flight((0..n / 4).map(|i| c.connector.create_object(object(ObjectKind::Action, i))));
    for round in 1..=2 {
        in_flight(
            things
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 3 == 0 && (round == 1 || i % 2 == 1))
                .map(|(i, o)| {
                    let mut changed = o.clone();
                    changed.updated_ms += round;
                    changed.properties_json = format!(
                        r#"{{"name":"c{i}","population":{},"round":{round}}}"#,
                        i * 10
                    )
                    .into();
                    c.connector.update_object(changed)
                }),
        );
    }
    in_flight(
        things
            .iter()
            .step_by(7)
            .map(|o| c.connector.delete_object(o.kind, o.id)),
    );
}

/// Every record of `kind`, page by page (`limit` a page).
fn export_all(c: &OpenedConnector, kind: ObjectKind, limit: u64) -> Vec<ObjectRecord> {
    let mut all = Vec::new();
    let mut cursor = "".into();
    loop {
        let page = block_on(migration(c).export_objects(kind, cursor, limit)).unwrap();
        assert!(page.records.len() as u64 <= limit);
        all.extend(page.records);
        if page.next.is_empty() {
            return all;
        }
        cursor = page.next;
    }
}

fn export_everything(c: &OpenedConnector) -> Vec<ObjectRecord> {
    let mut all = export_all(c, ObjectKind::Thing, 97);
    all.extend(export_all(c, ObjectKind::Action, 97));
    all
}

fn import(c: &OpenedConnector, records: &[ObjectRecord]) -> Result<(), ErrorKind> {
    block_on(migration(c).import_objects(records.to_vec().into()))
        .into_result()
        .map_err(|e| e.kind)
}

/// The queries whose answers must agree: unfiltered pages by class and by owner (read from the
/// class and owner indexes, totals from the counters), filters answered from the property
/// index, and counts.
fn queries() -> Vec<ObjectQuery> {
    let all = |kind| ObjectQuery::all(kind, 10_000);
    let filtered = |f: serde_json::Value| ObjectQuery {
        filter_json: f.to_string().into(),
        ..all(ObjectKind::Thing)
    };
    let mut q = vec![all(ObjectKind::Thing), all(ObjectKind::Action)];
    for class in CLASSES {
        q.push(ObjectQuery {
            class: class.into(),
            ..all(ObjectKind::Thing)
        });
        q.push(ObjectQuery {
            class: class.into(),
            offset: 3,
            limit: 5,
            ..all(ObjectKind::Action)
        });
    }
    for owner in OWNERS {
        q.push(ObjectQuery {
            owners: vec![owner].into(),
            ..all(ObjectKind::Thing)
        });
    }
    q.push(ObjectQuery {
        owners: vec![OWNERS[0], OWNERS[2]].into(),
        offset: 10,
        limit: 20,
        ..all(ObjectKind::Thing)
    });
    q.push(filtered(serde_json::json!({
        "operator": "Equal", "path": ["name"], "valueString": "c20"
    })));
    q.push(filtered(serde_json::json!({
        "operator": "GreaterThan", "path": ["population"], "valueInt": 1500
    })));
    q.push(filtered(serde_json::json!({
        "operator": "Equal", "path": ["isCapital"], "valueBoolean": true
    })));
    q.push(filtered(serde_json::json!({
        "operator": "LessThan", "path": ["founded"], "valueDate": "2003-06-01T00:00:00Z"
    })));
    q.push(filtered(serde_json::json!({
        "operator": "Equal", "path": ["round"], "valueInt": 2
    })));
    q.push(ObjectQuery {
        class: "Town".into(),
        ..filtered(serde_json::json!({
            "operator": "And", "operands": [
                {"operator": "GreaterThanEqual", "path": ["population"], "valueInt": 100},
                {"operator": "LessThan", "path": ["population"], "valueNumber": 900.5}
            ]
        }))
    });
    q
}

/// Every query's page and its count (GetMeta's, from the counters when unfiltered).
fn answers(c: &OpenedConnector) -> Vec<(String, u64)> {
    queries()
        .into_iter()
        .map(|q| {
            let page = block_on(c.connector.query_objects(q.clone())).unwrap();
            let count = block_on(c.connector.aggregate(q.clone(), "{}".into())).unwrap();
            let count: serde_json::Value = serde_json::from_str(&count).unwrap();
            assert_eq!(count["groups"][0]["count"], page.total, "count of {q:?}");
            let ids: Vec<String> = page.objects.iter().map(|o| o.id.to_string()).collect();
            (ids.join(","), page.total)
        })
        .collect()
}

#[test]
fn declares_migrate() {
    assert!(load_plugin().capabilities.contains(Capabilities::MIGRATE));
}

/// Export → import (calls of 1,000) → the target exports the same records, answers every query
/// (class, owner, property filters, counts) as the source, and still does after a restart; a
/// deleted id stays taken; a write after the import goes on from the imported version.
#[test]
fn an_imported_store_is_whole_indexed_and_survives_a_restart() {
    let plugin = load_plugin();
    let src = open(&plugin, &fresh_dir("migrate", "source"));
    fill(&src, 2_000);
    let exported = export_everything(&src);
    assert_eq!(exported.len(), 2_000 + 500);
    let deleted: Vec<&ObjectRecord> = exported.iter().filter(|r| r.current.is_none()).collect();
    assert_eq!(deleted.len(), 2_000usize.div_ceil(7));
    assert!(deleted
        .iter()
        .all(|r| r.version == 0 && !r.history.is_empty()));
    let want_answers = answers(&src);
    // Every query finds something, so that agreeing is not agreeing on nothing.
    for (q, (ids, total)) in queries().iter().zip(&want_answers) {
        assert!(*total > 0 && !ids.is_empty(), "{q:?} finds nothing");
    }

    let dir = fresh_dir("migrate", "target");
    {
        let dst = open(&plugin, &dir);
        for chunk in exported.chunks(1_000) {
            import(&dst, chunk).unwrap();
        }
        assert_eq!(export_everything(&dst), exported);
        assert_eq!(answers(&dst), want_answers);
    }
    // A restart: the file reopened.
    let dst = open(&plugin, &dir);
    assert_eq!(export_everything(&dst), exported);
    assert_eq!(answers(&dst), want_answers);
    for r in exported.iter().step_by(50) {
        let got = block_on(dst.connector.object_history(r.kind, r.id)).unwrap();
        assert_eq!(
            (got.deleted, &got.versions),
            (r.current.is_none(), &r.history)
        );
        let versioned = block_on(
            dst.versions
                .as_ref()
                .unwrap()
                .get_object_versioned(r.kind, r.id),
        )
        .unwrap();
        assert_eq!(
            versioned.into_option().map(|v| (v.object, v.version)),
            r.current.clone().into_option().map(|o| (o, r.version))
        );
    }
    // Importing it all again changes nothing.
    import(&dst, &exported).unwrap();
    assert_eq!(export_everything(&dst), exported);

    let gone = deleted[0].history[0].object.clone();
    assert_eq!(
        block_on(dst.connector.create_object(gone))
            .into_result()
            .map_err(|e| e.kind),
        Err(ErrorKind::Conflict),
        "an imported deleted id stays taken"
    );
    let live = exported
        .iter()
        .find(|r| r.kind == ObjectKind::Thing && r.current.is_some() && r.history.len() == 2)
        .unwrap();
    let mut next = live.current.clone().unwrap();
    next.properties_json = r#"{"name":"after"}"#.into();
    let version = block_on(
        dst.versions
            .as_ref()
            .unwrap()
            .update_object_if(next, live.version),
    )
    .unwrap();
    assert_eq!(version, live.version + 1);
    let history = block_on(dst.connector.object_history(live.kind, live.id)).unwrap();
    assert_eq!(history.versions.len(), 3);
    assert_eq!(&history.versions[1..], &live.history[..]);
}

/// A call with a record held differently, or a malformed one, is refused as a whole: the new
/// records before and after it in the call are not written. A record repeated within a call is
/// written once; a repeat that differs is a conflict.
#[test]
fn a_refused_import_call_writes_nothing() {
    let plugin = load_plugin();
    let src = open(&plugin, &fresh_dir("migrate", "source"));
    fill(&src, 40);
    let records = export_all(&src, ObjectKind::Thing, 1_000);
    let dst = open(&plugin, &fresh_dir("migrate", "target"));
    import(&dst, &records[..10]).unwrap();

    let mut changed = records[3].clone();
    changed.version += 1;
    let call = [records[10].clone(), changed, records[11].clone()];
    assert_eq!(import(&dst, &call), Err(ErrorKind::Conflict));
    let mut bad = records[12].clone();
    bad.id = Id::random();
    let call = [records[10].clone(), bad, records[11].clone()];
    assert_eq!(import(&dst, &call), Err(ErrorKind::Invalid));
    let mut other = records[13].clone();
    if let Some(o) = other.current.as_mut().into_option() {
        o.properties_json = r#"{"name":"other"}"#.into();
    } else {
        other.history.truncate(other.history.len() - 1);
    }
    let call = [records[13].clone(), records[10].clone(), other];
    assert_eq!(import(&dst, &call), Err(ErrorKind::Conflict));
    assert_eq!(
        export_all(&dst, ObjectKind::Thing, 1_000),
        &records[..10],
        "nothing of a refused call was written"
    );
    let twice = [records[10].clone(), records[10].clone(), records[1].clone()];
    import(&dst, &twice).unwrap();
    import(&dst, &records).unwrap();
    assert_eq!(export_all(&dst, ObjectKind::Thing, 7), records);
    assert_eq!(import(&dst, &[]), Ok(()));
    // A cursor this connector never gave.
    let e = block_on(migration(&dst).export_objects(ObjectKind::Thing, "page 2".into(), 10))
        .into_result()
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{}", e.message);
}

/// The CPU time this process has used (all threads, user and system), where Linux tells it:
/// on a busy machine a steadier measure than the wall clock.
fn cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command (in parentheses): utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// On demand: export and import rates, embedded → embedded, pages and calls of 5,000.
#[test]
#[ignore = "a benchmark: run on demand with --release --ignored --nocapture"]
fn migrate_rate() {
    const PAGE: u64 = 5_000;
    let n: usize = std::env::var("WEFT_EMBEDDED_BENCH_MIGRATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let plugin = load_plugin();
    let src = open(&plugin, &fresh_dir("migrate", "bench-source"));
    let started = Instant::now();
    fill(&src, n);
    println!(
        "filled {n} things and {} actions (a third updated, a seventh deleted) in {:.1} s",
        n / 4,
        started.elapsed().as_secs_f64()
    );
    let dst = open(&plugin, &fresh_dir("migrate", "bench-target"));
    let (mut exported, mut export_secs, mut import_secs) = (0usize, 0f64, 0f64);
    let (mut export_cpu, mut import_cpu) = (0f64, 0f64);
    let mut versions = BTreeMap::new();
    for kind in [ObjectKind::Thing, ObjectKind::Action] {
        let mut cursor = "".into();
        loop {
            let (t, cpu) = (Instant::now(), cpu_secs().unwrap_or(0.0));
            let page = block_on(migration(&src).export_objects(kind, cursor, PAGE)).unwrap();
            export_secs += t.elapsed().as_secs_f64();
            export_cpu += cpu_secs().unwrap_or(0.0) - cpu;
            exported += page.records.len();
            for r in page.records.iter() {
                *versions.entry(r.history.len()).or_insert(0usize) += 1;
            }
            let (t, cpu) = (Instant::now(), cpu_secs().unwrap_or(0.0));
            block_on(migration(&dst).import_objects(page.records)).unwrap();
            import_secs += t.elapsed().as_secs_f64();
            import_cpu += cpu_secs().unwrap_or(0.0) - cpu;
            if page.next.is_empty() {
                break;
            }
            cursor = page.next;
        }
    }
    println!("records by history length: {versions:?}");
    println!(
        "export: {exported} records in {export_secs:.2} s = {:.0} records/s (pages of {PAGE}; {export_cpu:.2} CPU s)",
        exported as f64 / export_secs
    );
    println!(
        "import: {exported} records in {import_secs:.2} s = {:.0} records/s (calls of {PAGE}, durable; {import_cpu:.2} CPU s)",
        exported as f64 / import_secs
    );
    let t = Instant::now();
    let again = export_everything(&dst).len();
    println!(
        "target re-export (pages of 97): {again} records in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(again, exported);
}
