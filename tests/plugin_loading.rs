//! Loading real plugin libraries in-process, through the host's own loader and handle.
use weft::plugins::load_file;
use weft_core::ConnectorHandle;
use weft_e2e_tests::*;
use weft_plugin_api::*;

fn object(id: Id, class: &str) -> StoredObject {
    StoredObject {
        kind: ObjectKind::Thing,
        id,
        class: class.into(),
        context: "".into(),
        owner: Id::default(),
        created_ms: now_ms(),
        updated_ms: now_ms(),
        properties_json: r#"{"name":"x"}"#.into(),
    }
}

fn open(path: &std::path::Path) -> ConnectorHandle {
    let plugin = load_file(path).unwrap_or_else(|e| panic!("{e}"));
    ConnectorHandle::open(&plugin, &serde_json::json!({})).unwrap()
}

fn id_starting_with(byte: u8) -> Id {
    let mut id = Id::random();
    id.0[0] = byte;
    id
}

#[tokio::test]
async fn a_panic_in_a_plugin_costs_one_call_then_poisons_the_handle_not_the_host() {
    for (byte, what) in [
        (0xEE, "panicked in get_object"),
        (0xEF, "deliberate panic while polling"),
    ] {
        // Panic while the plugin builds the future (0xEE) or while the host polls it (0xEF).
        let conn = open(&fixture_so("test-panicky"));
        let id = id_starting_with(0x01);
        conn.create_object(object(id, "City")).await.unwrap();
        let e = conn
            .get_object(ObjectKind::Thing, id_starting_with(byte))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Internal);
        assert!(e.message.contains(what), "{e}");
        assert!(conn.poisoned().is_some_and(|p| p.contains("get_object")));
        // Every later call: Unavailable, naming the plugin and what panicked; the host lives.
        for _ in 0..2 {
            let e = conn.get_object(ObjectKind::Thing, id).await.unwrap_err();
            assert_eq!(e.kind, ErrorKind::Unavailable, "{e}");
            assert!(
                e.message.contains("test-panicky")
                    && e.message.contains("get_object")
                    && e.message.contains("restart"),
                "{e}"
            );
        }
        let e = conn
            .create_object(object(Id::random(), "City"))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unavailable, "{e}");
    }
    // Another handle of the same library is not poisoned by the first.
    let fresh = open(&fixture_so("test-panicky"));
    assert!(fresh.poisoned().is_none());
    assert_eq!(
        fresh
            .get_object(ObjectKind::Thing, id_starting_with(0x02))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn two_connector_files_in_one_process_are_two_libraries() {
    let memory = load_file(&dev_memory_so()).unwrap();
    let panicky = load_file(&fixture_so("test-panicky")).unwrap();
    assert_eq!(memory.name, "dev-memory");
    assert_eq!(panicky.name, "test-panicky");
    assert_ne!(memory.capabilities, panicky.capabilities);

    let a = ConnectorHandle::open(&memory, &serde_json::json!({})).unwrap();
    let b = ConnectorHandle::open(&panicky, &serde_json::json!({})).unwrap();
    // The same call runs different code: dev-memory lists, the fixture does not implement it.
    let page = a
        .query_objects(ObjectQuery::all(ObjectKind::Thing, 10))
        .await
        .unwrap();
    assert_eq!(page.total, 0);
    let e = b
        .query_objects(ObjectQuery::all(ObjectKind::Thing, 10))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    // And their data is separate.
    let id = id_starting_with(0x03);
    a.create_object(object(id, "City")).await.unwrap();
    assert_eq!(b.get_object(ObjectKind::Thing, id).await.unwrap(), None);
}

#[tokio::test]
async fn a_plugin_built_against_the_previous_minor_interface_still_loads() {
    let old = load_file(&fixture_so("interface-1-0")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(old.interface_version, "1.0.0");
    // `config_help` was added in 1.1 as a new root-module field: the old plugin lacks it.
    assert_eq!(old.config_help, None);
    let current = load_file(&dev_memory_so()).unwrap();
    assert!(current.config_help.is_some());
    // And it works.
    let conn = ConnectorHandle::open(&old, &serde_json::json!({})).unwrap();
    let id = id_starting_with(0x02);
    conn.create_object(object(id, "Old")).await.unwrap();
    let back = conn
        .get_object(ObjectKind::Thing, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.class.as_str(), "Old");
}

/// Opens `plugin` through the host's handle, which must write by compare-and-set, and creates
/// an object (id starting with `first_byte`) that reads back at version 1.
async fn stores_a_versioned_object(
    plugin: &weft::plugins::LoadedPlugin,
    first_byte: u8,
) -> (ConnectorHandle, Id) {
    let conn = ConnectorHandle::open(plugin, &serde_json::json!({})).unwrap();
    assert_eq!(conn.write_mode(), weft_core::WriteMode::CompareAndSet);
    let id = id_starting_with(first_byte);
    conn.create_object(object(id, "Old")).await.unwrap();
    let v = conn
        .get_object_versioned(ObjectKind::Thing, id)
        .await
        .unwrap()
        .expect("the object just created");
    assert_eq!(v.version, 1);
    (conn, id)
}

/// A 1.2 plugin (no `new_connector_parts_1_3`) loads in this 1.3 host with its versioned
/// writes, has no maintenance object, and a backup through it is `Unsupported` naming it; a
/// 1.3 plugin has one.
#[tokio::test]
async fn a_plugin_built_against_interface_1_2_keeps_versioned_writes_and_has_no_backup() {
    let old = load_file(&fixture_so("interface-1-2")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (old.name.as_str(), old.interface_version.as_str()),
        ("memory-1-2", "1.2.0")
    );
    let opened = old
        .open_connector("{}", HostLogger::discard())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(opened.versions.is_some());
    assert!(opened.maintenance.is_none());
    let (conn, _) = stores_a_versioned_object(&old, 0x03).await;
    let e = conn.backup("/nowhere").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(e.message.contains("memory-1-2"), "{e}");

    let current = load_file(&dev_memory_so()).unwrap();
    let opened = current.open_connector("{}", HostLogger::discard()).unwrap();
    let m = opened
        .maintenance
        .expect("a 1.3 plugin has a maintenance object");
    // dev-memory does not declare BACKUP: the default body answers.
    let e = m.backup("/nowhere".into()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(e.message.contains("backup capability"), "{e}");
}

/// A connector built from the 1.3.0 sources as they were before the SDK and the loader left
/// weft-plugin-api (dev-memory and weft-plugin-api at commit 263524b, built by
/// scripts/build-test-plugins.sh) loads in this host (interface 1.4) with all three of its ABI
/// objects, without the migration object 1.4 added, and stores and reads through the host's
/// handle: the split changed no layout.
#[tokio::test]
async fn a_plugin_built_against_1_3_before_the_sdk_split_still_loads_and_works() {
    let old = load_file(&fixture_so("interface-1-3")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (old.name.as_str(), old.interface_version.as_str()),
        ("dev-memory", "1.3.0")
    );
    assert!(old.config_help.is_some());
    let opened = old
        .open_connector("{}", HostLogger::discard())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        opened.versions.is_some(),
        "a 1.3 plugin has versioned writes"
    );
    assert!(
        opened.maintenance.is_some(),
        "a 1.3 plugin has a maintenance object"
    );
    assert!(
        opened.migration.is_none(),
        "a 1.3 plugin has no migration object (added in 1.4)"
    );

    let (conn, id) = stores_a_versioned_object(&old, 0x13).await;
    let back = conn
        .get_object(ObjectKind::Thing, id)
        .await
        .unwrap()
        .expect("the object just created");
    assert_eq!(back.class.as_str(), "Old");
    assert_eq!(back.properties_json.as_str(), r#"{"name":"x"}"#);
    let page = conn
        .query_objects(ObjectQuery::all(ObjectKind::Thing, 10))
        .await
        .unwrap();
    assert_eq!(page.total, 1);
}

#[test]
fn a_plugin_of_another_major_interface_is_refused_in_process_too() {
    let e = load_file(&fixture_so("interface-2-0")).unwrap_err();
    let line = e.to_string();
    assert!(!line.contains('\n'), "{line}");
    assert!(
        line.contains("2.0.0") && line.contains(INTERFACE_VERSION),
        "{line}"
    );
}

#[test]
fn the_plugin_directory_scan_finds_plugins_by_declared_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(dev_memory_so(), dir.path().join("libsomething.so")).unwrap();
    std::fs::copy(
        fixture_so("interface-2-0"),
        dir.path().join("incompatible.so"),
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.so"), "text").unwrap();
    let found = weft::plugins::find(dir.path(), "dev-memory", PluginKind::Connector).unwrap();
    assert!(found.path.ends_with("libsomething.so"));
    let e = weft::plugins::find(dir.path(), "cassandra", PluginKind::Connector)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no connector plugin named \"cassandra\""), "{e}");
    assert!(e.contains("found: dev-memory"), "{e}");
    let e = weft::plugins::find(dir.path(), "dev-memory", PluginKind::Contextionary)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("is a connector, but a contextionary is needed"),
        "{e}"
    );
    std::fs::copy(dev_memory_so(), dir.path().join("libcopy.so")).unwrap();
    let e = weft::plugins::find(dir.path(), "dev-memory", PluginKind::Connector)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("two plugins declare the name \"dev-memory\""),
        "{e}"
    );
}
