//! The conformance kit against the embedded connector, loaded from its built `.so` exactly as
//! the host loads it (`target/<profile>/libweft_embedded.so`, or `WEFT_CONNECTOR_SO`). Every
//! check gets a fresh connector on a fresh, empty data directory.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::executor::block_on;
use weft_connector_tests::loader::{self, LoadedPlugin};
use weft_connector_tests::weft_plugin_api::{
    Capabilities, HostLogger, Id, ObjectKind, OpenedConnector, StoredObject,
};
use weft_connector_tests::{cdylib_path, conformance_tests, Subject};

fn load_plugin() -> LoadedPlugin {
    let path = cdylib_path("weft_embedded");
    loader::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// A new directory path (not yet created) under `<target>/tmp/weft_embedded-conformance/`; the
/// first call of a test process empties that folder.
fn fresh_dir() -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    static CLEANED: std::sync::Once = std::sync::Once::new();
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("weft_embedded-conformance");
    CLEANED.call_once(|| {
        let _ = std::fs::remove_dir_all(&base);
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    base.join(format!("{}-{n}", std::process::id()))
}

fn open(plugin: &LoadedPlugin, dir: &std::path::Path) -> Result<OpenedConnector, String> {
    let config = serde_json::json!({ "path": dir }).to_string();
    plugin
        .open_connector(&config, HostLogger::discard())
        .map_err(|e| e.to_string())
}

fn subject() -> Subject {
    let plugin = load_plugin();
    Subject::new(plugin.name.clone(), plugin.capabilities, move || {
        open(&plugin, &fresh_dir()).unwrap()
    })
}

conformance_tests!(subject());

#[test]
fn declares_name_and_capabilities() {
    let s = conformance_subject();
    assert_eq!(s.name, "embedded");
    let want = Capabilities::HISTORY
        | Capabilities::FILTER
        | Capabilities::FILTER_REFERENCE_PATHS
        | Capabilities::AGGREGATE
        | Capabilities::PERSISTENT
        | Capabilities::VERSIONED_WRITES
        | Capabilities::BACKUP
        | Capabilities::MIGRATE
        | Capabilities::VECTOR_SEARCH;
    assert_eq!(s.capabilities, want);
}

fn thing(props: &str) -> StoredObject {
    StoredObject {
        kind: ObjectKind::Thing,
        id: Id::random(),
        class: "City".into(),
        context: "".into(),
        owner: Id::default(),
        created_ms: 1,
        updated_ms: 1,
        properties_json: props.into(),
    }
}

/// Data, versions and history survive closing and reopening the directory; a second open of a
/// directory in use is refused naming it and the holder's pid.
#[test]
fn persists_across_reopen_and_locks_its_directory() {
    let plugin = load_plugin();
    let dir = fresh_dir();
    let object = thing(r#"{"name":"Berlin"}"#);
    {
        let opened = open(&plugin, &dir).unwrap();
        block_on(opened.connector.create_object(object.clone())).unwrap();
        let mut changed = object.clone();
        changed.properties_json = r#"{"name":"Bonn"}"#.into();
        block_on(opened.connector.update_object(changed)).unwrap();
        let e = open(&plugin, &dir).expect_err("a second open is refused");
        assert!(
            e.contains(&dir.display().to_string())
                && e.contains(&format!("pid {}", std::process::id())),
            "{e}"
        );
    }
    let opened = open(&plugin, &dir).unwrap();
    let versions = opened.versions.unwrap();
    let got = block_on(versions.get_object_versioned(ObjectKind::Thing, object.id))
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.object.properties_json.as_str(), got.version),
        (r#"{"name":"Bonn"}"#, 2)
    );
    let history = block_on(
        opened
            .connector
            .object_history(ObjectKind::Thing, object.id),
    )
    .unwrap();
    assert_eq!(history.versions.len(), 1);
    assert_eq!(history.versions[0].object, object);
}

/// A database stamped with a newer format version is refused with a message saying so.
#[test]
fn refuses_a_newer_format_version() {
    let plugin = load_plugin();
    let dir = fresh_dir();
    drop(open(&plugin, &dir).unwrap());
    {
        let db = redb::Database::create(dir.join("weft.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut meta = tx
                .open_table(redb::TableDefinition::<&str, u64>::new("meta"))
                .unwrap();
            meta.insert("format_version", 99).unwrap();
        }
        tx.commit().unwrap();
    }
    let e = open(&plugin, &dir).expect_err("a newer format is refused");
    assert!(
        e.contains("format version 99") && e.contains("newer"),
        "{e}"
    );
}

/// Group commit: writes in flight together share one transaction. Prints creates/s through the
/// loaded `.so` with 1 and with 1,000 creates in flight (durable, fsynced commits). On demand:
/// `cargo test --release -p weft-embedded --test conformance -- --ignored --nocapture`.
#[test]
#[ignore]
fn group_commit_throughput() {
    let plugin = load_plugin();
    for in_flight in [1usize, 16, 1000] {
        let opened = open(&plugin, &fresh_dir()).unwrap();
        let total = if in_flight == 1 { 500 } else { 20_000 };
        let start = std::time::Instant::now();
        let mut done = 0;
        while done < total {
            let pending: Vec<_> = (0..in_flight.min(total - done))
                .map(|i| {
                    let mut o = thing(&format!(r#"{{"name":"c{}","population":{i}}}"#, done + i));
                    o.created_ms = (done + i) as i64;
                    opened.connector.create_object(o)
                })
                .collect();
            done += pending.len();
            // Polled together (a write reaches the writer thread when first polled).
            for r in block_on(futures::future::join_all(pending)) {
                r.into_result().unwrap();
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "embedded: {total} creates, {in_flight} in flight: {secs:.2} s = {:.0} creates/s",
            total as f64 / secs
        );
    }
}
