//! `MIGRATE` against the real servers, beyond the kit's checks: what the graph holds after an
//! import is what the normal writes left (vertices, history and reference edges), a walk goes
//! on with its cursor after the connector is reopened, values that look like code travel as
//! data, a repeated import adds nothing, a bad record leaves nothing of its call, and how fast
//! a few thousand records go in (printed). Runs against `WEFT_GREMLIN_URL` (TinkerGraph) and,
//! when set, `WEFT_JANUSGRAPH_URL`; without them each test prints that it skips and passes.

use std::collections::BTreeMap;
use std::time::Instant;

use abi_stable::std_types::{ROption, RString, RVec};
use futures::executor::block_on;
use serde_json::{json, Value};
use weft_connector_tests::cdylib_path;
use weft_connector_tests::loader;
use weft_connector_tests::weft_plugin_api::{
    ErrorKind, HostLogger, Id, ObjectKind, ObjectRecord, ObjectVersion, OpenedConnector,
    PluginContext, StoredObject,
};

mod common;

fn urls() -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (name, var) in [
        ("gremlin", "WEFT_GREMLIN_URL"),
        ("janusgraph", "WEFT_JANUSGRAPH_URL"),
    ] {
        if let Some(url) = std::env::var(var).ok().filter(|u| !u.trim().is_empty()) {
            common::purge_old_namespaces(&url);
            out.push((name, url));
        }
    }
    if out.is_empty() {
        println!("skipping: neither WEFT_GREMLIN_URL nor WEFT_JANUSGRAPH_URL is set (scripts/real-servers.sh start gremlin janusgraph)");
    }
    out
}

fn open(url: &str, ns: &str) -> OpenedConnector {
    loader::load(&cdylib_path("weft_gremlin"))
        .unwrap_or_else(|e| panic!("{e}"))
        .open_connector(
            &json!({"url": url, "namespace": ns}).to_string(),
            HostLogger::discard(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
}

fn import(c: &OpenedConnector, records: &[ObjectRecord]) -> Result<(), (ErrorKind, String)> {
    let m = c.migration.as_ref().expect("a migration object");
    block_on(m.import_objects(RVec::from(records.to_vec())))
        .into_result()
        .map_err(|e| (e.kind, e.message.to_string()))
}

/// Every record of `kind`, `page` at a time, sorted by id; after the first page the connector
/// is dropped and a new one (a restart of the host) goes on with the cursor.
fn export_all(url: &str, ns: &str, kind: ObjectKind, page: u64) -> Vec<ObjectRecord> {
    let mut c = open(url, ns);
    let mut all = Vec::new();
    let mut cursor = RString::new();
    for n in 0.. {
        let m = c.migration.as_ref().expect("a migration object");
        let p = block_on(m.export_objects(kind, cursor, page))
            .into_result()
            .unwrap_or_else(|e| panic!("export_objects({kind:?}, page {n}): {e}"));
        assert!(p.records.len() as u64 <= page);
        all.extend(p.records.into_vec());
        if p.next.is_empty() {
            break;
        }
        cursor = p.next;
        if n == 0 {
            drop(c);
            c = open(url, ns);
        }
    }
    // Each record once; in (kind, id) order, to compare walks.
    all.sort_by_key(|r| r.id);
    for pair in all.windows(2) {
        assert!(pair[0].id != pair[1].id, "exported twice: {pair:?}");
    }
    all
}

/// What the graph holds for a namespace: vertices by label, the number of history edges, and
/// every reference edge as (from uid, to uid, property).
const FINGERPRINT: &str = r#"
def gr = g.getGraph()
def out
synchronized (gr) {
  def vs = g.V().has(prefix + '_ns', ns).toList()
  def labels = [:]
  vs.each { v -> labels[v.label()] = (labels[v.label()] ?: 0) + 1 }
  def refs = g.V().has(prefix + '_ns', ns).outE(prefix + '_refers_to').toList().collect { e ->
    [e.outVertex().value(prefix + '_uid'), e.inVertex().value(prefix + '_uid'), e.value(prefix + '_ref_property')]
  }.sort { it.toString() }
  def history = g.V().has(prefix + '_ns', ns).outE(prefix + '_history').count().next()
  out = [labels: labels, refs: refs, history: history]
}
groovy.json.JsonOutput.toJson(out)
"#;

fn maintenance(url: &str) -> weft_gremlin::Gremlin {
    let config = json!({"url": url, "namespace": common::fresh_namespace("maint")}).to_string();
    PluginContext::parse("gremlin", &config, HostLogger::discard())
        .and_then(weft_gremlin::open)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn fingerprint(url: &str, ns: &str) -> Value {
    let ns = ns.to_string();
    maintenance(url)
        .block_on("fingerprint", move |s| async move {
            s.run_plain(
                FINGERPRINT,
                vec![
                    ("prefix", Value::String("weft".into())),
                    ("ns", Value::String(ns)),
                ],
            )
            .await
        })
        .and_then(|r| r)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn drop_namespace(url: &str, ns: &str) {
    let ns = ns.to_string();
    let _ = maintenance(url).block_on(
        "drop",
        move |s| async move { s.drop_namespaces(vec![ns]).await },
    );
}

fn object(kind: ObjectKind, class: &str, created_ms: i64, props: Value) -> StoredObject {
    StoredObject {
        kind,
        id: Id::random(),
        class: class.into(),
        context: "".into(),
        owner: Id::random(),
        created_ms,
        updated_ms: created_ms,
        properties_json: props.to_string().into(),
    }
}

fn cref(o: &StoredObject) -> Value {
    json!({"$cref": o.id.to_string(), "locationUrl": "http://localhost/", "type": o.kind.as_str()})
}

const NASTY: &str = "\"); g.V().drop().iterate(); (\" ${g.V().drop()} ' + System.exit(0) + '";

/// A store made by normal writes (references to earlier objects, updates, a delete, values
/// that look like code) moves to another namespace page by page across a reopened connector;
/// the target's export is the source's, and its graph holds the same vertices, history edges
/// and reference edges. Importing it again adds nothing; a different record is `Conflict`; a
/// call with a malformed record writes none of its records.
#[test]
fn import_leaves_the_graph_normal_writes_leave() {
    for (server, url) in urls() {
        let src_ns = common::fresh_namespace("mig-src");
        let dst_ns = common::fresh_namespace("mig-dst");
        let src = open(&url, &src_ns);
        let c = &src.connector;
        let b = object(ObjectKind::Thing, "City", 1, json!({"name": NASTY}));
        let a = object(
            ObjectKind::Thing,
            NASTY,
            2,
            json!({"inCountry": cref(&b), NASTY: 1}),
        );
        let d = object(ObjectKind::Thing, "City", 3, json!({"name": "atlantis"}));
        let e = object(
            ObjectKind::Thing,
            "City",
            4,
            json!({"near": [cref(&a), cref(&b), cref(&d)]}),
        );
        let act = object(ObjectKind::Action, "Visit", 5, json!({"to": cref(&a)}));
        for o in [&b, &a, &d, &e, &act] {
            block_on(c.create_object(o.clone())).unwrap();
        }
        let mut a2 = a.clone();
        a2.updated_ms = 10;
        a2.properties_json = json!({"inCountry": cref(&b), "v": 2}).to_string().into();
        block_on(c.update_object(a2.clone())).unwrap();
        block_on(c.update_object(a2)).unwrap();
        block_on(c.delete_object(ObjectKind::Thing, d.id)).unwrap();
        let mut exported = Vec::new();
        for kind in [ObjectKind::Thing, ObjectKind::Action] {
            exported.extend(export_all(&url, &src_ns, kind, 2));
        }
        assert_eq!(exported.len(), 5, "{server}");
        let m = src.migration.as_ref().unwrap();
        let err = block_on(m.export_objects(ObjectKind::Thing, "'); g.V().drop()".into(), 2))
            .into_result()
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid, "{server}: {err}");

        let dst = open(&url, &dst_ns);
        import(&dst, &exported).unwrap_or_else(|e| panic!("{server}: {e:?}"));
        let mut again = Vec::new();
        for kind in [ObjectKind::Thing, ObjectKind::Action] {
            again.extend(export_all(&url, &dst_ns, kind, 3));
        }
        assert_eq!(again, exported, "{server}: export → import → export");
        let want = fingerprint(&url, &src_ns);
        assert_eq!(
            want["refs"].as_array().map(Vec::len),
            Some(4),
            "{server}: {want}"
        );
        assert_eq!(
            fingerprint(&url, &dst_ns),
            want,
            "{server}: the graph after import"
        );

        // Again: nothing changes, nothing is added.
        import(&dst, &exported).unwrap_or_else(|e| panic!("{server}: {e:?}"));
        assert_eq!(
            fingerprint(&url, &dst_ns),
            want,
            "{server}: after a second import"
        );

        // A record held with another history is a conflict, and stays as it was.
        let mut changed = exported.iter().find(|r| r.id == a.id).unwrap().clone();
        changed.history = changed
            .history
            .into_iter()
            .map(|mut v| {
                v.archived_ms += 1;
                v
            })
            .collect();
        let err = import(&dst, &[changed]).unwrap_err();
        assert_eq!(err.0, ErrorKind::Conflict, "{server}: {err:?}");
        assert!(err.1.contains(&a.id.to_string()), "{server}: {err:?}");
        assert_eq!(
            fingerprint(&url, &dst_ns),
            want,
            "{server}: after a conflict"
        );

        // A malformed record: Invalid, and the good record before it is not written either.
        let last = object(ObjectKind::Thing, "City", 6, json!({"name": "vineta"}));
        let good = ObjectRecord {
            kind: ObjectKind::Thing,
            id: last.id,
            current: ROption::RNone,
            version: 0,
            history: RVec::from(vec![ObjectVersion {
                object: last,
                archived_ms: 7,
            }]),
        };
        let malformed = ObjectRecord {
            history: RVec::new(),
            id: Id::random(),
            ..good.clone()
        };
        let err = import(&dst, &[good.clone(), malformed]).unwrap_err();
        assert_eq!(err.0, ErrorKind::Invalid, "{server}: {err:?}");
        assert_eq!(fingerprint(&url, &dst_ns), want, "{server}: after Invalid");
        // Alone it goes in, as a tombstone: its id is taken, its history readable.
        import(&dst, std::slice::from_ref(&good)).unwrap_or_else(|e| panic!("{server}: {e:?}"));
        let h = block_on(dst.connector.object_history(ObjectKind::Thing, good.id)).unwrap();
        assert!(
            h.deleted && h.versions.to_vec() == good.history.to_vec(),
            "{server}"
        );
        let err = block_on(dst.connector.create_object(good.history[0].object.clone()))
            .into_result()
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Conflict, "{server}: {err}");
        drop_namespace(&url, &src_ns);
        drop_namespace(&url, &dst_ns);
    }
}

/// `n` made-up records: a third with two earlier versions, one in ten deleted, one in five
/// referring to another record (earlier or later in the call).
fn made_up(n: usize) -> Vec<ObjectRecord> {
    let ids: Vec<Id> = (0..n).map(|_| Id::random()).collect();
    let owners = [Id::random(), Id::random()];
    ids.iter()
        .enumerate()
        .map(|(i, id)| {
            let at = |k: i64, props: Value| StoredObject {
                kind: ObjectKind::Thing,
                id: *id,
                class: ["City", "River", "Person"][i % 3].into(),
                context: if i % 2 == 0 { "" } else { "http://example.org/" }.into(),
                owner: owners[i % 2],
                created_ms: 1_000 + i as i64,
                updated_ms: 1_000 + i as i64 + k,
                properties_json: props.to_string().into(),
            };
            let mut props = json!({"name": format!("object {i}"), "n": i, "text": "x".repeat(100)});
            if i % 5 == 0 {
                let target = ids[(i * 7 + 3) % n];
                props["rel"] = json!({"$cref": target.to_string(), "locationUrl": "http://localhost/", "type": "thing"});
            }
            let versions = if i % 3 == 0 { 2 } else { 0 };
            let mut history: Vec<ObjectVersion> = (0..versions)
                .rev()
                .map(|k| ObjectVersion {
                    object: at(k, json!({"name": format!("object {i} v{k}")})),
                    archived_ms: 5_000 + k,
                })
                .collect();
            let deleted = i % 10 == 1;
            if deleted {
                history.insert(
                    0,
                    ObjectVersion {
                        object: at(versions, props.clone()),
                        archived_ms: 9_000,
                    },
                );
            }
            ObjectRecord {
                kind: ObjectKind::Thing,
                id: *id,
                current: if deleted {
                    ROption::RNone
                } else {
                    ROption::RSome(at(versions, props))
                },
                version: if deleted { 0 } else { versions as u64 + 1 },
                history: history.into(),
            }
        })
        .collect()
}

/// A few thousand records go in through one call (its chunks), are exported back exactly,
/// and the rates are printed (`cargo test -p weft-gremlin --test migrate -- --nocapture`).
#[test]
fn import_and_export_a_few_thousand_records() {
    const N: usize = 3_000;
    for (server, url) in urls() {
        let ns = common::fresh_namespace("mig-rate");
        let mut records = made_up(N);
        let c = open(&url, &ns);
        let started = Instant::now();
        import(&c, &records).unwrap_or_else(|e| panic!("{server}: {e:?}"));
        let took = started.elapsed();
        let vertices: usize = records.iter().map(|r| 1 + r.history.len()).sum();
        println!(
            "{server}: imported {N} records ({vertices} vertices) in {:.2} s: {:.0} records/s",
            took.as_secs_f64(),
            N as f64 / took.as_secs_f64()
        );
        let started = Instant::now();
        let again = export_all(&url, &ns, ObjectKind::Thing, 500);
        let took = started.elapsed();
        println!(
            "{server}: exported them in pages of 500 in {:.2} s: {:.0} records/s",
            took.as_secs_f64(),
            N as f64 / took.as_secs_f64()
        );
        records.sort_by_key(|r| r.id);
        assert!(
            again == records,
            "{server}: the export differs from the import"
        );
        let fp = fingerprint(&url, &ns);
        let refs = records
            .iter()
            .filter(|r| {
                r.current.is_some()
                    && r.current
                        .as_ref()
                        .unwrap()
                        .properties_json
                        .contains("$cref")
            })
            .filter(|r| {
                let target = r.current.as_ref().unwrap().properties()["rel"]["$cref"]
                    .as_str()
                    .unwrap()
                    .to_string();
                records
                    .iter()
                    .any(|t| t.id.to_string() == target && t.current.is_some())
            })
            .count();
        assert_eq!(fp["refs"].as_array().map(Vec::len), Some(refs), "{server}");
        let by_label: BTreeMap<String, u64> = serde_json::from_value(fp["labels"].clone()).unwrap();
        assert_eq!(by_label.get("weft_object"), Some(&(N as u64)), "{server}");
        drop_namespace(&url, &ns);
    }
}
