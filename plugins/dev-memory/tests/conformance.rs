//! The conformance kit against the dev-memory connector, loaded from its cdylib the way the host
//! loads it (`target/<profile>/libweft_dev_memory.so`, or `WEFT_CONNECTOR_SO`).

use weft_connector_tests::weft_plugin_api::Capabilities;
use weft_connector_tests::{cdylib_path, conformance_tests, Subject};

conformance_tests!(Subject::from_library(&cdylib_path("weft_dev_memory"), "{}"));

/// dev-memory declares what it implements: everything but persistence and backup.
#[test]
fn declares_name_and_capabilities() {
    let s = conformance_subject();
    assert_eq!(s.name, "dev-memory");
    let everything_but_persistence = [
        Capabilities::HISTORY,
        Capabilities::FILTER,
        Capabilities::FILTER_REFERENCE_PATHS,
        Capabilities::AGGREGATE,
        Capabilities::VERSIONED_WRITES,
        Capabilities::MIGRATE,
        Capabilities::VECTOR_SEARCH,
    ]
    .into_iter()
    .fold(Capabilities::empty(), Capabilities::union);
    assert_eq!(s.capabilities, everything_but_persistence);
}

/// The library has the 1.2 root-module field: opening it answers the versioned-writes object
/// over the same connector.
#[test]
fn opens_with_a_versions_object_over_the_same_connector() {
    use futures::executor::block_on;
    use weft_connector_tests::weft_plugin_api::{Id, ObjectKind, StoredObject};

    let opened = conformance_subject().open();
    let versions = opened.versions.expect("dev-memory is built against 1.2");
    let object = StoredObject {
        kind: ObjectKind::Thing,
        id: Id::random(),
        class: "City".into(),
        context: "".into(),
        owner: Id::default(),
        created_ms: 1,
        updated_ms: 1,
        properties_json: "{}".into(),
    };
    block_on(opened.connector.create_object(object.clone())).unwrap();
    let got = block_on(versions.get_object_versioned(object.kind, object.id))
        .unwrap()
        .unwrap();
    assert_eq!((got.object, got.version), (object, 1));
}
