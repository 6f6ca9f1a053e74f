//! Online backup (`Connector::backup`, capability BACKUP) through the built `.so`: a copy taken
//! while writers run holds every write acknowledged before it began, nothing that was never
//! acknowledged, no half write; it opens as a store of its own; bad targets are refused.

mod common;

use common::{fresh_dir, load_plugin, open};

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::executor::block_on;
use weft_connector_tests::weft_plugin_api::{
    Capabilities, DocumentName, ErrorKind, Id, ObjectKind, ObjectQuery, OpenedConnector, StoredKey,
    StoredObject,
};

fn thing(i: usize, owner: Id) -> StoredObject {
    StoredObject {
        kind: ObjectKind::Thing,
        id: Id::random(),
        class: if i.is_multiple_of(2) { "City" } else { "Town" }.into(),
        context: "".into(),
        owner,
        created_ms: i as i64,
        updated_ms: i as i64,
        properties_json: format!(r#"{{"name":"c{i}","population":{i}}}"#).into(),
    }
}

fn key(parent: Option<Id>) -> StoredKey {
    StoredKey {
        id: Id::random(),
        parent: parent.into(),
        token_hash: "hash".into(),
        email: "".into(),
        ip_origin: Default::default(),
        expires_ms: -1,
        read: true,
        write: true,
        delete: true,
        execute: false,
        created_ms: 1,
    }
}

/// Everything a store holds, as comparable values: objects with their history, keys by id,
/// the documents.
#[derive(Debug, PartialEq)]
struct Contents {
    objects: BTreeMap<Id, (StoredObject, usize)>,
    keys: BTreeMap<Id, StoredKey>,
    documents: Vec<(String, u64)>,
}

fn contents(c: &OpenedConnector) -> Contents {
    let mut objects = BTreeMap::new();
    let page = block_on(
        c.connector
            .query_objects(ObjectQuery::all(ObjectKind::Thing, u64::MAX)),
    )
    .unwrap();
    assert_eq!(page.total as usize, page.objects.len());
    for o in page.objects {
        let history = block_on(c.connector.object_history(ObjectKind::Thing, o.id)).unwrap();
        objects.insert(o.id, (o, history.versions.len()));
    }
    let mut keys = BTreeMap::new();
    let mut todo: Vec<StoredKey> = block_on(c.connector.root_keys()).unwrap().into();
    while let Some(k) = todo.pop() {
        todo.extend(block_on(c.connector.key_children(k.id)).unwrap());
        keys.insert(k.id, k);
    }
    let documents = [DocumentName::Ontology, DocumentName::ConnectorState]
        .into_iter()
        .map(|d| {
            let doc = block_on(c.connector.get_document(d)).unwrap();
            (doc.json.to_string(), doc.version)
        })
        .collect();
    Contents {
        objects,
        keys,
        documents,
    }
}

#[test]
fn declares_backup() {
    assert!(load_plugin().capabilities.contains(Capabilities::BACKUP));
}

/// Writers keep creating and updating things and adding keys while the backup runs. The copy has
/// every write acknowledged before the backup started, only acknowledged writes, each object
/// with exactly the history it had at one moment, every key with its parent; after the writers
/// stop, a second backup equals its source exactly.
#[test]
fn a_backup_taken_under_concurrent_writes_is_consistent_and_complete() {
    let plugin = load_plugin();
    let dir = fresh_dir("backup", "source");
    let store = Arc::new(open(&plugin, &dir));
    let root = key(None);
    block_on(store.connector.add_key(root.clone())).unwrap();
    block_on(
        store
            .connector
            .put_document(DocumentName::Ontology, r#"{"classes":[]}"#.into(), 0),
    )
    .unwrap();
    for i in 0..2000 {
        block_on(store.connector.create_object(thing(i, root.id))).unwrap();
    }

    // Acknowledged writes: (object id, number of its updates acknowledged), keys.
    let acked_objects = Arc::new(Mutex::new(BTreeMap::<Id, usize>::new()));
    let acked_keys = Arc::new(Mutex::new(vec![root.id]));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (store, acked_objects, acked_keys, stop) = (
                Arc::clone(&store),
                Arc::clone(&acked_objects),
                Arc::clone(&acked_keys),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || {
                let mut n = 0usize;
                let mut parent = root.id;
                while !stop.load(Ordering::Relaxed) && n < 20_000 {
                    n += 1;
                    let mut o = thing(10_000 + w * 100_000 + n, parent);
                    block_on(store.connector.create_object(o.clone())).unwrap();
                    acked_objects.lock().unwrap().insert(o.id, 0);
                    o.properties_json = format!(r#"{{"name":"changed{n}"}}"#).into();
                    block_on(store.connector.update_object(o.clone())).unwrap();
                    *acked_objects.lock().unwrap().get_mut(&o.id).unwrap() = 1;
                    if n.is_multiple_of(10) {
                        let k = key(Some(parent));
                        block_on(store.connector.add_key(k.clone())).unwrap();
                        acked_keys.lock().unwrap().push(k.id);
                        parent = k.id;
                    }
                }
                n
            })
        })
        .collect();
    // Let the writers get going, then back up.
    while acked_objects.lock().unwrap().len() < 200 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let before_objects = acked_objects.lock().unwrap().clone();
    let before_keys: HashSet<Id> = acked_keys.lock().unwrap().iter().copied().collect();
    let copy_dir = fresh_dir("backup", "copy");
    let maintenance = store.maintenance.as_ref().expect("a 1.3 plugin");
    let report = block_on(maintenance.backup(copy_dir.display().to_string().into()))
        .unwrap_or_else(|e| panic!("{e}"));
    // Let writes continue past the backup, then stop.
    std::thread::sleep(std::time::Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let written: usize = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(
        written > 200,
        "the writers ran during the backup ({written} creates)"
    );
    let after_objects = acked_objects.lock().unwrap().clone();
    let after_keys: HashSet<Id> = acked_keys.lock().unwrap().iter().copied().collect();

    assert!(copy_dir.join("weft.redb").is_file());
    assert!(!copy_dir.join("weft.redb.partial").exists());
    assert!(report.bytes > 0);
    let copy = open(&plugin, &copy_dir);
    let got = contents(&copy);
    assert_eq!(report.objects as usize, got.objects.len(), "{report:?}");
    assert_eq!(got.documents[0].0, r#"{"classes":[]}"#);
    let source_now = contents(&store);
    for (id, (object, history)) in &got.objects {
        let preloaded = object.created_ms < 10_000;
        if preloaded {
            assert_eq!(*history, 0);
            continue;
        }
        let acked = after_objects.get(id).unwrap_or_else(|| {
            panic!("{id:?} is in the copy but its create was never acknowledged")
        });
        // The object and its history change in one transaction: never one without the other.
        let changed = object.properties_json.starts_with(r#"{"name":"changed"#);
        assert_eq!(
            changed,
            *history == 1,
            "{object:?} with {history} history entries"
        );
        assert!(
            *history <= *acked,
            "{object:?}: a history entry whose update was never acknowledged"
        );
        // Every version in the copy is one the source had (now or before).
        let (current, _) = &source_now.objects[id];
        assert_eq!((current.id, current.owner), (object.id, object.owner));
    }
    for (id, updates) in &before_objects {
        let (object, history) = got
            .objects
            .get(id)
            .unwrap_or_else(|| panic!("{id:?} was acknowledged before the backup, not in it"));
        assert!(*history >= *updates, "{object:?}");
    }
    assert_eq!(
        got.objects
            .values()
            .filter(|(o, _)| o.created_ms < 10_000)
            .count(),
        2000
    );
    for id in &before_keys {
        assert!(
            got.keys.contains_key(id),
            "key acknowledged before the backup is missing"
        );
    }
    for k in got.keys.values() {
        assert!(after_keys.contains(&k.id));
        if let Some(parent) = k.parent.into_option() {
            assert!(
                got.keys.contains_key(&parent),
                "a key without its parent in the copy"
            );
        }
    }
    drop(copy);

    // Quiet now: a second backup is exactly its source.
    let quiet_dir = fresh_dir("backup", "quiet");
    block_on(maintenance.backup(quiet_dir.display().to_string().into())).unwrap();
    let quiet = open(&plugin, &quiet_dir);
    assert_eq!(contents(&quiet), source_now);
    // The copy is a store of its own: writes to it do not reach the source.
    block_on(quiet.connector.create_object(thing(1, root.id))).unwrap();
    assert_eq!(contents(&store).objects.len(), source_now.objects.len());
}

#[test]
fn refuses_targets_that_are_not_new_empty_absolute_directories_outside_the_store() {
    let plugin = load_plugin();
    let dir = fresh_dir("backup", "refusals");
    let store = open(&plugin, &dir);
    let m = store.maintenance.as_ref().unwrap();
    let backup = |to: &str| block_on(m.backup(to.into()));

    let e = backup("relative/dir").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(
        e.message.contains("relative") && e.message.contains("absolute"),
        "{e}"
    );

    let full = fresh_dir("backup", "full");
    std::fs::create_dir_all(&full).unwrap();
    std::fs::write(full.join("something"), "x").unwrap();
    let e = backup(&full.display().to_string()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(
        e.message.contains("not empty") && e.message.contains(&full.display().to_string()),
        "{e}"
    );

    let inside = std::fs::canonicalize(&dir).unwrap().join("backup");
    let e = backup(&inside.display().to_string()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(e.message.contains("inside the data directory"), "{e}");
    assert!(!inside.exists(), "a refused backup leaves nothing behind");

    let file = fresh_dir("backup", "a-file");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "x").unwrap();
    let e = backup(&file.display().to_string()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e}");

    // An empty existing directory is fine.
    let empty = fresh_dir("backup", "empty");
    std::fs::create_dir_all(&empty).unwrap();
    let report = backup(&empty.display().to_string()).unwrap();
    assert_eq!(report.objects, 0);
}
