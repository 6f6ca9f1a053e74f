//! `PERSISTENT`: what one connector wrote, a new connector on the same directory reads back —
//! the conformance kit cannot check this within one connector's life, so the connector's own
//! suite does. Also the config errors an operator sees.

mod support;

use abi_stable::std_types::{ROption, RString, RVec};
use futures::executor::block_on;
use weft_connector_tests::weft_plugin_api::{
    DocumentName, ErrorKind, HostLogger, Id, ObjectKind, ObjectQuery, StoredKey, StoredObject,
};

fn thing(id: Id, created_ms: i64, properties: &str) -> StoredObject {
    StoredObject {
        kind: ObjectKind::Thing,
        id,
        class: "City".into(),
        context: "http://example.org/ctx".into(),
        owner: Id([7; 16]),
        created_ms,
        updated_ms: created_ms,
        properties_json: properties.into(),
    }
}

fn key(id: Id, parent: Option<Id>) -> StoredKey {
    StoredKey {
        id,
        parent: parent.into(),
        token_hash: "hash".into(),
        email: "ops@example.org".into(),
        ip_origin: RVec::from(vec![RString::from("127.0.0.0/8")]),
        expires_ms: -1,
        read: true,
        write: true,
        delete: false,
        execute: false,
        created_ms: 1,
    }
}

#[test]
fn data_survives_a_new_connector_on_the_same_directory() {
    let plugin = support::load_plugin();
    let dir = support::fresh_dir("persistence");
    let (city, gone, root, child) = (Id::random(), Id::random(), Id::random(), Id::random());
    {
        let c = support::open(&plugin, &dir);
        block_on(async {
            c.create_object(thing(city, 10, r#"{"name":"Berlin"}"#))
                .await
                .unwrap();
            c.update_object(thing(city, 10, r#"{"name":"Berlin","population":3700000}"#))
                .await
                .unwrap();
            c.create_object(thing(gone, 11, "{}")).await.unwrap();
            c.delete_object(ObjectKind::Thing, gone).await.unwrap();
            c.add_key(key(root, None)).await.unwrap();
            c.add_key(key(child, Some(root))).await.unwrap();
            let v = c
                .put_document(DocumentName::Ontology, r#"{"things":[]}"#.into(), 0)
                .await
                .unwrap();
            assert_eq!(v, 1);
        });
        // `c` is dropped here, as when the host exits.
    }
    let c = support::open(&plugin, &dir);
    block_on(async {
        let got = c.get_object(ObjectKind::Thing, city).await.unwrap();
        let got = got.into_option().expect("the thing survives");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&got.properties_json).unwrap(),
            serde_json::json!({"name": "Berlin", "population": 3700000})
        );
        assert_eq!(got.context.as_str(), "http://example.org/ctx");
        let history = c.object_history(ObjectKind::Thing, city).await.unwrap();
        assert_eq!(history.versions.len(), 1, "the update archived one version");
        assert!(!history.deleted);
        // The deleted object stays deleted and its id stays used.
        assert!(c
            .get_object(ObjectKind::Thing, gone)
            .await
            .unwrap()
            .is_none());
        let e = c
            .create_object(thing(gone, 12, "{}"))
            .await
            .into_result()
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Conflict);
        let page = c
            .query_objects(ObjectQuery::all(ObjectKind::Thing, 10))
            .await
            .unwrap();
        assert_eq!(page.total, 1);
        // Keys, with the tree.
        assert_eq!(
            c.get_key(child)
                .await
                .unwrap()
                .into_option()
                .map(|k| k.parent),
            Some(ROption::RSome(root))
        );
        let children = c.key_children(root).await.unwrap();
        assert_eq!(children.len(), 1);
        // The document and its version.
        let doc = c.get_document(DocumentName::Ontology).await.unwrap();
        assert_eq!((doc.version, doc.json.as_str()), (1, r#"{"things":[]}"#));
        let doc = c.get_document(DocumentName::ConnectorState).await.unwrap();
        assert_eq!((doc.version, doc.json.as_str()), (0, ""));
    });
}

/// `VERSIONED_WRITES`: an object's version survives a new connector, and a file written before
/// the connector kept versions (no `version` field) reads as version 1 and can be updated.
#[test]
fn versions_survive_and_files_without_a_version_read_as_version_1() {
    let plugin = support::load_plugin();
    let dir = support::fresh_dir("persistence");
    let (city, old) = (Id::random(), Id::random());
    {
        let c = support::open_connector(&plugin, &dir);
        let v = c.versions.expect("the template is built against 1.2");
        block_on(async {
            c.connector
                .create_object(thing(city, 10, r#"{"n":1}"#))
                .await
                .unwrap();
            c.connector
                .update_object(thing(city, 10, r#"{"n":2}"#))
                .await
                .unwrap();
            assert_eq!(
                v.update_object_if(thing(city, 10, r#"{"n":3}"#), 2)
                    .await
                    .unwrap(),
                3
            );
            c.connector
                .create_object(thing(old, 11, r#"{"n":1}"#))
                .await
                .unwrap();
        });
    }
    // Make `old` look like a file of an earlier template: no version field.
    let file = dir.join("things").join(format!("{old}.json"));
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(json["version"], 1, "{json}");
    json.as_object_mut().unwrap().remove("version");
    std::fs::write(&file, json.to_string()).unwrap();

    let c = support::open_connector(&plugin, &dir);
    let v = c.versions.unwrap();
    block_on(async {
        let got = v
            .get_object_versioned(ObjectKind::Thing, city)
            .await
            .unwrap();
        let got = got.into_option().expect("the thing survives");
        assert_eq!(
            (got.version, got.object.properties_json.as_str()),
            (3, r#"{"n":3}"#)
        );
        let got = v
            .get_object_versioned(ObjectKind::Thing, old)
            .await
            .unwrap();
        assert_eq!(got.into_option().map(|g| g.version), Some(1));
        let e = v
            .update_object_if(thing(old, 11, r#"{"n":9}"#), 2)
            .await
            .into_result()
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Conflict, "{e}");
        assert_eq!(
            v.update_object_if(thing(old, 11, r#"{"n":2}"#), 1)
                .await
                .unwrap(),
            2
        );
    });
}

#[test]
fn files_left_by_an_interrupted_write_are_cleaned_up() {
    let plugin = support::load_plugin();
    let dir = support::fresh_dir("persistence");
    drop(support::open(&plugin, &dir));
    let stale = dir.join("things").join(".half-written.json.1-0.tmp");
    std::fs::write(&stale, "{\"current\":").unwrap();
    let c = support::open(&plugin, &dir);
    assert!(!stale.exists());
    let page = block_on(c.query_objects(ObjectQuery::all(ObjectKind::Thing, 10))).unwrap();
    assert_eq!(page.total, 0);
}

fn refusal(config: &str) -> String {
    let plugin = support::load_plugin();
    match plugin.new_connector(config, HostLogger::discard()) {
        Ok(_) => panic!("config {config} was accepted"),
        Err(e) => {
            assert_eq!(e.kind, ErrorKind::Invalid, "{e}");
            e.message.to_string()
        }
    }
}

#[test]
fn config_mistakes_are_refused_naming_the_key() {
    assert!(refusal("{}").contains("database_config.path is missing"));
    assert!(refusal(r#"{"path": "/tmp/x", "fsnyc": false}"#).contains("fsnyc"));
    // A directory with other files in it is not taken over.
    let dir = support::fresh_dir("persistence");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    let config = serde_json::json!({ "path": dir }).to_string();
    let message = refusal(&config);
    assert!(message.contains("not empty"), "{message}");
    // Nor is a file.
    let config = serde_json::json!({ "path": dir.join("notes.txt") }).to_string();
    assert!(refusal(&config).contains("is a file"));
}
