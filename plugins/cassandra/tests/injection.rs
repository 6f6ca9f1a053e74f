//! Values that look like CQL (or Gremlin) are data: stored and read back verbatim through every
//! path — class names, contexts, property values, key fields, documents, filters — and nothing
//! is executed (the keyspaces named in them still exist, the tables still answer).
//!
//! Needs a real server (`WEFT_CASSANDRA_CONTACT_POINTS`); without it the test prints that it
//! skips and passes.

mod common;

use abi_stable::std_types::{ROption, RVec};
use futures::executor::block_on;
use serde_json::json;
use weft_connector_tests::weft_plugin_api::{
    DocumentName, Id, ObjectKind, ObjectQuery, StoredKey, StoredObject,
};

use common::*;

const NASTY: &[&str] = &[
    "'); DROP KEYSPACE {ks}; --",
    "x' OR '1'='1",
    "\"; DROP TABLE {ks}.objects; --",
    "g.V().drop()",
    "g.V().drop().iterate(); '",
    "$$ BEGIN BATCH DELETE FROM {ks}.keys WHERE id = 1; APPLY BATCH $$",
    "Robert'); DROP TABLE documents;--",
    "\u{0} nul \\ backslash ' quote \" dquote ? marker",
];

#[test]
fn cql_and_gremlin_lookalikes_are_stored_verbatim() {
    let Some(points) = server_or_skip() else {
        return;
    };
    let plugin = load_plugin();
    drop_stale_keyspaces(&points);
    let keyspace = fresh_keyspace("it");
    let opened = open(&plugin, &config(&points, &keyspace)).unwrap();
    let c = &opened.connector;
    let nasty: Vec<String> = NASTY.iter().map(|s| s.replace("{ks}", &keyspace)).collect();

    // Objects: class names, contexts, property names and values.
    let mut objects = Vec::new();
    for (i, s) in nasty.iter().enumerate() {
        let props = json!({ s.as_str(): s, "name": s, "n": i });
        let o = StoredObject {
            kind: ObjectKind::Thing,
            id: Id::random(),
            class: s.as_str().into(),
            context: s.as_str().into(),
            owner: Id::random(),
            created_ms: i as i64,
            updated_ms: i as i64,
            properties_json: props.to_string().into(),
        };
        block_on(c.create_object(o.clone())).unwrap();
        objects.push(o);
    }
    for o in &objects {
        let got = block_on(c.get_object(ObjectKind::Thing, o.id)).unwrap();
        assert_eq!(got.into_option().as_ref(), Some(o));
        // Query by the nasty class (pushed down as a bound value) and by a filter on it.
        let mut q = ObjectQuery::all(ObjectKind::Thing, 10);
        q.class = o.class.clone();
        let page = block_on(c.query_objects(q.clone())).unwrap();
        assert_eq!(
            page.objects.as_slice(),
            std::slice::from_ref(o),
            "class {:?}",
            o.class
        );
        q.class = "".into();
        q.filter_json = json!({
            "operator": "Equal", "path": ["name"], "valueString": o.class.as_str()
        })
        .to_string()
        .into();
        let page = block_on(c.query_objects(q)).unwrap();
        assert_eq!(page.objects.as_slice(), std::slice::from_ref(o));
        // Update and history carry it too.
        let mut changed = o.clone();
        changed.properties_json = json!({"name": format!("{} again", o.class)})
            .to_string()
            .into();
        block_on(c.update_object(changed)).unwrap();
        let h = block_on(c.object_history(ObjectKind::Thing, o.id)).unwrap();
        assert_eq!(&h.versions[0].object, o);
    }
    let mut by_owner = ObjectQuery::all(ObjectKind::Thing, 10);
    by_owner.owners = RVec::from(vec![objects[0].owner]);
    assert_eq!(block_on(c.query_objects(by_owner)).unwrap().total, 1);
    let count = block_on(c.aggregate(
        ObjectQuery::all(ObjectKind::Thing, 0),
        json!({"properties": ["name"]}).to_string().into(),
    ))
    .unwrap();
    let count: serde_json::Value = serde_json::from_str(&count).unwrap();
    assert_eq!(count["groups"][0]["count"], json!(nasty.len()));

    // Keys: token hash, e-mail, ip origins.
    let root = StoredKey {
        id: Id::random(),
        parent: ROption::RNone,
        token_hash: nasty[0].as_str().into(),
        email: nasty[3].as_str().into(),
        ip_origin: nasty.iter().map(|s| s.as_str().into()).collect(),
        expires_ms: -1,
        read: true,
        write: true,
        delete: true,
        execute: true,
        created_ms: 1,
    };
    block_on(c.add_key(root.clone())).unwrap();
    assert_eq!(
        block_on(c.get_key(root.id)).unwrap().into_option(),
        Some(root.clone())
    );
    let child = StoredKey {
        id: Id::random(),
        parent: ROption::RSome(root.id),
        token_hash: nasty[2].as_str().into(),
        ..root.clone()
    };
    block_on(c.add_key(child.clone())).unwrap();
    assert_eq!(
        block_on(c.key_children(root.id)).unwrap(),
        vec![child.clone()]
    );
    assert_eq!(
        block_on(c.delete_key(root.id)).unwrap(),
        vec![root.id, child.id]
    );

    // Documents, verbatim.
    for (name, text) in [
        (DocumentName::Ontology, nasty[0].clone()),
        (DocumentName::ConnectorState, nasty[5].clone()),
    ] {
        let json = json!({ "text": text }).to_string();
        assert_eq!(
            block_on(c.put_document(name, json.clone().into(), 0)).unwrap(),
            1
        );
        assert_eq!(block_on(c.get_document(name)).unwrap().json.as_str(), json);
    }

    // Nothing was executed: the keyspace and its tables are still there and answer.
    assert!(keyspace_exists(&points, &keyspace));
    assert_eq!(
        block_on(c.get_object(ObjectKind::Thing, objects[0].id))
            .unwrap()
            .into_option()
            .map(|o| o.id),
        Some(objects[0].id)
    );
    drop(opened);
    drop_my_keyspaces(&points);
}
