//! The migration's order, refusals and resumption, between two dev-memory stores linked
//! statically (the real `.so` files and the real servers are `tests/migrate.rs`'s).
use abi_stable::std_types::{ROption, RString, RVec};
use futures::executor::block_on;
use weft_dev_memory::DevMemory;
use weft_migrate::{MigrateOptions, MigrateReport, Progress, Role, Side};
use weft_plugin_api::{
    connector_parts, ConnectorBox, DocumentName, Id, MigrationBox, ObjectKind, ObjectRecord,
    OpenedConnector, StoredKey, StoredObject,
};

struct Quiet;
impl Progress for Quiet {
    fn start(&self, _: u64) {}
    fn moved(&self, _: &MigrateReport) {}
}

/// One store and handles to it that outlive the `Side` made from it.
struct Store {
    connector: ConnectorBox,
    migration: MigrationBox,
    side: Side,
}

fn store(role: Role) -> Store {
    let shared = std::sync::Arc::new(DevMemory::new());
    let a: OpenedConnector = connector_parts(std::sync::Arc::clone(&shared));
    let b: OpenedConnector = connector_parts(shared);
    Store {
        connector: a.connector,
        migration: a.migration.unwrap(),
        side: Side::from_opened(b, role, "dev-memory").unwrap(),
    }
}

fn options(resume: bool) -> MigrateOptions {
    MigrateOptions {
        resume,
        batch: 7,
        parallel: 3,
    }
}

fn key(parent: Option<Id>, n: i64) -> StoredKey {
    StoredKey {
        id: Id::time_ordered(),
        parent: parent.into(),
        token_hash: RString::from(format!("hash-{n}")),
        email: RString::from(format!("k{n}@example.org")),
        ip_origin: RVec::from(vec![RString::from("127.0.0.0/8")]),
        expires_ms: if n % 2 == 0 { -1 } else { 4_102_444_800_000 },
        read: true,
        write: n % 3 != 0,
        delete: n % 2 == 0,
        execute: false,
        created_ms: 1_700_000_000_000 + n,
    }
}

fn fill(s: &Store) -> u64 {
    let c = &s.connector;
    block_on(c.put_document(DocumentName::Ontology, r#"{"things":[]}"#.into(), 0))
        .into_result()
        .unwrap();
    let root = key(None, 0);
    let child = key(Some(root.id), 1);
    let grandchild = key(Some(child.id), 2);
    for k in [&root, &child, &grandchild] {
        block_on(c.add_key(k.clone())).into_result().unwrap();
    }
    let mut n = 0;
    for i in 0..100 {
        let kind = if i % 4 == 0 {
            ObjectKind::Action
        } else {
            ObjectKind::Thing
        };
        let o = StoredObject {
            kind,
            id: Id::time_ordered(),
            class: "City".into(),
            context: RString::new(),
            owner: [root.id, child.id, grandchild.id][i % 3],
            created_ms: 1_700_000_000_000 + i as i64,
            updated_ms: 1_700_000_000_000 + i as i64,
            properties_json: format!(r#"{{"n":{i}}}"#).into(),
        };
        block_on(c.create_object(o.clone())).into_result().unwrap();
        if i % 5 == 0 {
            let mut o2 = o.clone();
            o2.properties_json = format!(r#"{{"n":{i},"v":2}}"#).into();
            o2.updated_ms += 10;
            block_on(c.update_object(o2)).into_result().unwrap();
        }
        if i % 9 == 0 {
            block_on(c.delete_object(kind, o.id)).into_result().unwrap();
        }
        n += 1;
    }
    n
}

fn export(s: &Store) -> Vec<ObjectRecord> {
    let mut all = vec![];
    for kind in [ObjectKind::Thing, ObjectKind::Action] {
        let page = block_on(s.migration.export_objects(kind, RString::new(), 10_000))
            .into_result()
            .unwrap();
        assert!(page.next.is_empty());
        all.extend(page.records.into_vec());
    }
    all
}

fn keys(s: &Store) -> Vec<StoredKey> {
    let mut level = block_on(s.connector.root_keys())
        .into_result()
        .unwrap()
        .into_vec();
    let mut all = vec![];
    while !level.is_empty() {
        let mut next = vec![];
        for k in &level {
            next.extend(
                block_on(s.connector.key_children(k.id))
                    .into_result()
                    .unwrap()
                    .into_vec(),
            );
        }
        all.append(&mut level);
        level = next;
    }
    all
}

fn same_store(a: &Store, b: &Store) {
    assert_eq!(export(a), export(b));
    assert_eq!(keys(a), keys(b));
    for d in [DocumentName::Ontology, DocumentName::ConnectorState] {
        let (x, y) = (
            block_on(a.connector.get_document(d)).into_result().unwrap(),
            block_on(b.connector.get_document(d)).into_result().unwrap(),
        );
        assert_eq!(x.json, y.json, "{d:?}");
    }
}

#[test]
fn a_migration_copies_documents_keys_and_every_object_with_history() {
    let (from, to) = (store(Role::Source), store(Role::Target));
    let n = fill(&from);
    let r = weft_migrate::run(&from.side, &to.side, &options(false), &Quiet).unwrap();
    assert_eq!(r.things + r.actions, n);
    assert_eq!((r.things, r.actions), (75, 25));
    assert_eq!(r.deleted, 12);
    assert_eq!(r.versions, 20 + 12);
    assert_eq!((r.keys, r.documents), (3, 1));
    same_store(&from, &to);
}

#[test]
fn a_full_target_is_refused_unless_resuming_and_resuming_finishes_a_partial_copy() {
    let (from, to) = (store(Role::Source), store(Role::Target));
    fill(&from);
    // A copy interrupted after some records: the first ones are in, keys and documents not.
    let some: Vec<ObjectRecord> = export(&from).into_iter().take(30).collect();
    block_on(to.migration.import_objects(RVec::from(some)))
        .into_result()
        .unwrap();
    let e = weft_migrate::run(&from.side, &to.side, &options(false), &Quiet)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("is not empty") && e.contains("things") && e.contains("--resume"),
        "{e}"
    );
    let r = weft_migrate::run(&from.side, &to.side, &options(true), &Quiet).unwrap();
    assert_eq!(r.things + r.actions, 100);
    same_store(&from, &to);
    // Again: nothing changes.
    weft_migrate::run(&from.side, &to.side, &options(true), &Quiet).unwrap();
    same_store(&from, &to);
}

#[test]
fn a_target_holding_something_else_is_refused_naming_it() {
    let (from, to) = (store(Role::Source), store(Role::Target));
    fill(&from);
    let mut other = keys(&from)[0].clone();
    other.email = "someone-else@example.org".into();
    block_on(to.connector.add_key(other.clone()))
        .into_result()
        .unwrap();
    let e = weft_migrate::run(&from.side, &to.side, &options(true), &Quiet)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("key {}", other.id)) && e.contains("differs"),
        "{e}"
    );

    let (from, to) = (store(Role::Source), store(Role::Target));
    fill(&from);
    let mut record = export(&from)
        .into_iter()
        .find(|r| r.current.is_some())
        .unwrap();
    if let ROption::RSome(o) = &mut record.current {
        o.properties_json = r#"{"changed":true}"#.into();
    }
    let id = record.id;
    block_on(to.migration.import_objects(RVec::from(vec![record])))
        .into_result()
        .unwrap();
    let e = weft_migrate::run(&from.side, &to.side, &options(true), &Quiet)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&id.to_string())
            && e.contains("differs from the record imported")
            && e.contains("migrate into an empty store"),
        "{e}"
    );
}

#[test]
fn an_empty_source_is_refused() {
    let (from, to) = (store(Role::Source), store(Role::Target));
    let e = weft_migrate::run(&from.side, &to.side, &options(false), &Quiet)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("source store") && e.contains("is empty") && e.contains("--from-config"),
        "{e}"
    );
}
