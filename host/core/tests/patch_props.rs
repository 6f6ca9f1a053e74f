//! Property tests of JSON Patch application through the core (`Core::patch_object`, what
//! `PATCH /things/{id}` runs), over the in-memory connector linked statically: any patch
//! document answers the patched object or a 4xx-kind error, never panics; a refused patch changes
//! nothing; an accepted one stores exactly what RFC 6902 makes of the object as GET shows it.
//!
//! Bounded and reproducible: `PROPTEST_CASES` cases (default below) from the fixed seed
//! `PROPTEST_RNG_SEED` (default below). Failures are saved in
//! `tests/proptest-regressions/patch_props.txt`.

use std::sync::{Arc, OnceLock};

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, RngSeed};
use serde_json::{json, Map, Value};

use weft_core::objects::{ObjectBody, ObjectView};
use weft_core::ontology::{Class, LOCALHOST_URL};
use weft_core::{ConnectorHandle, Core, CoreConfig, ErrorKind, NewKey, Principal};
use weft_plugin_api::{Id, ObjectKind};

const CASES: u32 = 400;
const SEED: u64 = 0x5eed_0a7c;

fn config(cases: u32) -> Config {
    let mut c = Config {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/proptest-regressions/patch_props.txt",
        ))),
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = cases;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        c.rng_seed = RngSeed::Fixed(SEED);
    }
    c
}

/// What `PATCH /things/{thingId}` passes as the id field.
const ID_FIELD: &str = "thingId";

/// One core shared by every case: a runtime, the root and a child key, `Country` and `City`
/// classes and one Country.
struct Fixture {
    rt: tokio::runtime::Runtime,
    core: Arc<Core>,
    root: Principal,
    /// A child of the root: it does not see the root's objects.
    child: Principal,
    country: Id,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let conn = ConnectorHandle::from_opened(
            weft_plugin_api::connector_parts(weft_dev_memory::DevMemory::new()),
            "dev-memory",
            weft_dev_memory::CAPABILITIES,
        );
        let core = Arc::new(Core::new(conn, CoreConfig::default(), vec![]));
        let (root, child, country) = rt.block_on(async {
            let key: Id = "0b1d3a3e-7d2b-4c55-9c1e-6f3f0a000001".parse().unwrap();
            core.keys
                .ensure_root(Some((key, "t".into())))
                .await
                .unwrap();
            let root = core
                .keys
                .authenticate(Some(&key.to_string()), Some("t"), None)
                .await
                .unwrap();
            let (child, token) = core
                .keys
                .create_child(
                    &root,
                    NewKey {
                        read: true,
                        write: true,
                        delete: true,
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            let child = core
                .keys
                .authenticate(Some(&child.id.to_string()), Some(&token), None)
                .await
                .unwrap();
            for class in [
                json!({"class": "Country", "properties": [
                    {"name": "name", "@dataType": ["string"]}]}),
                json!({"class": "City", "properties": [
                    {"name": "name", "@dataType": ["string"]},
                    {"name": "description", "@dataType": ["text"]},
                    {"name": "population", "@dataType": ["int"]},
                    {"name": "area", "@dataType": ["number"]},
                    {"name": "isCapital", "@dataType": ["boolean"]},
                    {"name": "founded", "@dataType": ["date"]},
                    {"name": "inCountry", "@dataType": ["Country"]}]}),
            ] {
                let class: Class = serde_json::from_value(class).unwrap();
                core.add_class(ObjectKind::Thing, class).await.unwrap();
            }
            let country = core
                .create_object(
                    &root,
                    ObjectKind::Thing,
                    body("Country", json!({"name": "France"})),
                    false,
                )
                .await
                .unwrap()
                .id;
            (root, child, country)
        });
        Fixture {
            rt,
            core,
            root,
            child,
            country,
        }
    })
}

fn body(class: &str, schema: Value) -> ObjectBody {
    ObjectBody {
        context: Some("http://example.org/context".into()),
        class: Some(class.into()),
        schema: schema.as_object().cloned(),
    }
}

fn reference(id: &str) -> Value {
    json!({"$cref": id, "locationUrl": "http://localhost/", "type": "Thing"})
}

// ---------------------------------------------------------------------------------------------
// Generators.

const PATHS: &[&str] = &[
    "",
    "/",
    "/schema",
    "/schema/name",
    "/schema/description",
    "/schema/population",
    "/schema/area",
    "/schema/isCapital",
    "/schema/founded",
    "/schema/inCountry",
    "/schema/inCountry/$cref",
    "/schema/inCountry/type",
    "/schema/inCountry/0",
    "/schema/inCountry/-",
    "/schema/unknown",
    "/schema/-",
    "/schema/0",
    "/schema/name/0",
    "/schema/~1",
    "/schema/~01",
    "/schema/~2",
    "/schema/~",
    "/schema//",
    "/@class",
    "/@context",
    "/key",
    "/key/$cref",
    "/key/type",
    "/thingId",
    "/id",
    "/uuid",
    "/creationTimeUnix",
    "/lastUpdateTimeUnix",
    "/0",
    "/-",
    "schema/name",
    "#/schema/name",
    "/schema/name/",
    "/\u{0}",
    "/schema/\u{1F600}",
];

const OPS: &[&str] = &[
    "add", "remove", "replace", "move", "copy", "test", "ADD", "bogus", "",
];

/// Marker strings the value generator turns into references to the fixture's objects.
const COUNTRY: &str = "<country>";
const SELF: &str = "<self>";

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => prop::sample::select(PATHS).prop_map(str::to_string),
        2 => "(/[a-zA-Z~0-9$@-]{0,6}){0,4}",
        1 => ".{0,10}",
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1_000_000i32..1_000_000).prop_map(|n| Value::from(f64::from(n) / 16.0)),
        ".{0,10}".prop_map(Value::from),
        prop::sample::select(PATHS).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        prop::sample::select(&["op", "path", "value", "from", "$cref", "name"][..])
                            .prop_map(str::to_string),
                        ".{0,6}"
                    ],
                    inner
                ),
                0..5
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A value for a patch: often one that fits some property, sometimes a reference (to the
/// Country, to the object itself, to nothing), sometimes anything.
fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        2 => prop::sample::select(&["Berlin", "", "Zürich", "City", "Country", "Nope", "2018-11-21T10:00:00Z", "yesterday"][..])
            .prop_map(Value::from),
        2 => (-1000i64..1000).prop_map(Value::from),
        1 => (-1000i32..1000).prop_map(|n| Value::from(f64::from(n) / 8.0)),
        1 => any::<bool>().prop_map(Value::from),
        2 => prop::sample::select(&[COUNTRY, SELF, "00000000-0000-4000-8000-000000000000", "not-a-uuid"][..])
            .prop_map(reference),
        1 => prop::collection::vec(prop::sample::select(&[COUNTRY, SELF][..]).prop_map(reference), 0..3)
            .prop_map(Value::Array),
        1 => prop::collection::vec(
                (prop::sample::select(&["name", "population", "area", "inCountry", "nope"][..]), (-5i64..5).prop_map(Value::from)),
                0..3,
            )
            .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        2 => any_json(),
    ]
}

/// A well-formed operation: one of the six, with the members it needs.
fn well_formed_operation() -> impl Strategy<Value = Value> {
    (prop::sample::select(&OPS[..6]), path(), value(), path()).prop_map(
        |(op, path, value, from)| match op {
            "remove" => json!({"op": op, "path": path}),
            "move" | "copy" => json!({"op": op, "path": path, "from": from}),
            _ => json!({"op": op, "path": path, "value": value}),
        },
    )
}

/// Any operation object: members missing, extra, or of the wrong type.
fn any_operation() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(OPS),
        path(),
        prop::option::weighted(0.8, value()),
        prop::option::weighted(0.3, path()),
        prop::option::weighted(0.1, any_json()),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(op, path, value, from, extra, drop_path)| {
            let mut m = Map::new();
            m.insert("op".into(), Value::from(op));
            if !drop_path {
                m.insert("path".into(), Value::from(path));
            }
            if let Some(v) = value {
                m.insert("value".into(), v);
            }
            if let Some(f) = from {
                m.insert("from".into(), Value::from(f));
            }
            if let Some(x) = extra {
                m.insert("extra".into(), x);
            }
            Value::Object(m)
        })
}

fn operation() -> impl Strategy<Value = Value> {
    prop_oneof![
        9 => well_formed_operation(),
        1 => any_operation(),
    ]
}

/// A patch document: mostly a list of operations, sometimes any JSON at all.
fn patch() -> impl Strategy<Value = Value> {
    prop_oneof![
        8 => prop::collection::vec(operation(), 0..4).prop_map(Value::Array),
        1 => any_json(),
        1 => prop::collection::vec(any_json(), 0..3).prop_map(Value::Array),
    ]
}

/// Replaces the reference markers with the fixture's ids.
fn resolve_markers(v: &mut Value, country: Id, this: Id) {
    match v {
        Value::String(s) if s == COUNTRY => *s = country.to_string(),
        Value::String(s) if s == SELF => *s = this.to_string(),
        Value::Array(items) => items
            .iter_mut()
            .for_each(|i| resolve_markers(i, country, this)),
        Value::Object(m) => m
            .values_mut()
            .for_each(|i| resolve_markers(i, country, this)),
        _ => {}
    }
}

/// The object as GET shows it: what the core applies a patch to.
fn as_document(v: &ObjectView) -> Value {
    json!({
        "@context": v.context,
        "@class": v.class,
        "schema": v.schema,
        "key": {"$cref": v.owner.to_string(), "locationUrl": LOCALHOST_URL, "type": "Key"},
        "creationTimeUnix": v.created,
        "lastUpdateTimeUnix": v.updated,
        ID_FIELD: v.id.to_string(),
    })
}

/// What RFC 6902 makes of `doc`: `Err(true)` when the document is no patch, `Err(false)` when it
/// cannot be applied.
fn rfc6902(doc: &Value, patch: &Value) -> Result<Value, bool> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone()).map_err(|_| true)?;
    let mut out = doc.clone();
    json_patch::patch(&mut out, &ops).map_err(|_| false)?;
    Ok(out)
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn any_patch_answers_the_object_or_a_4xx_and_a_refusal_changes_nothing(
        mut patch in patch(),
        as_child in prop::bool::weighted(0.1),
        template in 0usize..3,
    ) {
        let f = fixture();
        let core = &f.core;
        let schema = [
            json!({"name": "Berlin", "population": 3, "inCountry": reference(&f.country.to_string())}),
            json!({"name": "Lyon", "area": 47.5, "isCapital": false, "founded": "1400-06-06T08:30:00Z",
                   "description": "a city"}),
            json!({}),
        ][template].clone();
        let before = f.rt.block_on(core.create_object(&f.root, ObjectKind::Thing, body("City", schema), false))
            .map_err(|e| TestCaseError::fail(e.message))?;
        resolve_markers(&mut patch, f.country, before.id);
        let who = if as_child { &f.child } else { &f.root };
        let answer = f.rt.block_on(core.patch_object(who, ObjectKind::Thing, before.id, patch.clone(), ID_FIELD));
        let after = f.rt.block_on(core.get_object(&f.root, ObjectKind::Thing, before.id))
            .map_err(|e| TestCaseError::fail(e.message))?;
        let expected = rfc6902(&as_document(&before), &patch);
        match answer {
            Err(e) => {
                let status = e.kind.http_status();
                prop_assert!((400..500).contains(&status), "{} answered {} {}", patch, status, e.message);
                prop_assert!(!e.message.is_empty());
                prop_assert_eq!(&after, &before, "a refused patch changed the object: {}", patch);
                if as_child {
                    // The core answers 403 for an object outside the caller's subtree.
                    prop_assert!(matches!(e.kind, ErrorKind::Forbidden | ErrorKind::NotFound), "{}", e.message);
                } else {
                    match &expected {
                        Err(true) => prop_assert_eq!(e.kind, ErrorKind::BadRequest, "{}", e.message),
                        Err(false) => prop_assert_eq!(e.kind, ErrorKind::Invalid, "{}", e.message),
                        Ok(_) => prop_assert_eq!(e.kind, ErrorKind::Invalid, "{}", e.message),
                    }
                }
            }
            Ok(view) => {
                prop_assert!(!as_child, "a key that cannot see the object patched it");
                prop_assert_eq!(&view, &after, "the answer is not what is stored");
                prop_assert_eq!(view.id, before.id);
                prop_assert_eq!(view.owner, before.owner);
                prop_assert_eq!(view.created, before.created);
                prop_assert!(view.updated >= before.updated);
                let doc = expected.map_err(|_| TestCaseError::fail(format!("{patch} is no applicable patch, but it was applied")))?;
                prop_assert_eq!(Some(&Value::from(view.class.clone())), doc.get("@class"));
                prop_assert_eq!(Some(&Value::from(view.context.clone())), doc.get("@context"));
                let schema = match doc.get("schema") {
                    None | Some(Value::Null) => Map::new(),
                    Some(Value::Object(m)) => m.clone(),
                    Some(other) => return Err(TestCaseError::fail(format!("schema became {other}, and was accepted"))),
                };
                prop_assert_eq!(&view.schema, &schema);
                let original = as_document(&before);
                for fixed in [ID_FIELD, "key", "creationTimeUnix"] {
                    prop_assert_eq!(doc.get(fixed), original.get(fixed));
                }
            }
        }
    }
}

/// A patch of nothing but `test` operations that hold changes nothing and succeeds; one that
/// does not hold is refused with 422.
#[test]
fn test_operations_check_without_changing() {
    let f = fixture();
    let core = &f.core;
    let before =
        f.rt.block_on(core.create_object(
            &f.root,
            ObjectKind::Thing,
            body("City", json!({"name": "Berlin"})),
            false,
        ))
        .unwrap();
    let holds = json!([{"op": "test", "path": "/schema/name", "value": "Berlin"}]);
    let v =
        f.rt.block_on(core.patch_object(&f.root, ObjectKind::Thing, before.id, holds, ID_FIELD))
            .unwrap();
    assert_eq!(v.schema, before.schema);
    let fails = json!([{"op": "test", "path": "/schema/name", "value": "Paris"},
                       {"op": "replace", "path": "/schema/name", "value": "Paris"}]);
    let e =
        f.rt.block_on(core.patch_object(&f.root, ObjectKind::Thing, before.id, fails, ID_FIELD))
            .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{}", e.message);
    let after =
        f.rt.block_on(core.get_object(&f.root, ObjectKind::Thing, before.id))
            .unwrap();
    assert_eq!(after.schema["name"], "Berlin");
}

/// Was a bug, now fixed (found by `any_patch_answers_the_object_or_a_4xx_and_a_refusal_changes_nothing`):
/// a patch with an operation that fails after one json-patch cannot undo panics inside
/// `json_patch::patch` (json-patch 4.2: `unreachable!("unable to undo applied patches …")`),
/// called from weft-core's `apply_patch` (`host/core/src/objects.rs`). Over REST, `PATCH
/// /things/{id}` with either body below gets no answer at all (the connection is dropped; the
/// server logs the panic and goes on). Expected: 422, object unchanged. A fix in `apply_patch`:
/// apply with `json_patch::patch_unsafe` (the document is a scratch copy, so nothing needs
/// undoing). Un-ignore when fixed, and remove `hits_known_json_patch_panic`.
#[test]
fn a_patch_json_patch_cannot_undo_is_refused_not_a_panic() {
    let f = fixture();
    let core = &f.core;
    for patch in [
        json!([{"op": "move", "from": "/schema", "path": ""},
               {"op": "add", "path": "/schema/name", "value": "Paris"}]),
        json!([{"op": "add", "path": "/-", "value": "Berlin"},
               {"op": "move", "from": "/-", "path": "/schema/name/0"}]),
    ] {
        let before =
            f.rt.block_on(core.create_object(
                &f.root,
                ObjectKind::Thing,
                body("City", json!({"name": "Berlin"})),
                false,
            ))
            .unwrap();
        let e =
            f.rt.block_on(core.patch_object(
                &f.root,
                ObjectKind::Thing,
                before.id,
                patch.clone(),
                ID_FIELD,
            ))
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid, "{patch}: {}", e.message);
        let after =
            f.rt.block_on(core.get_object(&f.root, ObjectKind::Thing, before.id))
                .unwrap();
        assert_eq!(after, before, "{patch}");
    }
}
