//! The conformance kit against this connector, loaded from its built `.so` exactly as the host
//! loads it. Every check gets a fresh connector on a fresh, empty directory.
//!
//! Run it with `cargo test` (one test per check; `cargo test --test conformance
//! check_filter_date` runs one).

mod support;

use weft_connector_tests::weft_plugin_api::Capabilities;
use weft_connector_tests::{conformance_tests, Subject};

/// Like `Subject::from_library`, but with a new `{"path": ...}` config for every connector.
fn subject() -> Subject {
    let plugin = support::load_plugin();
    Subject::new(plugin.name.clone(), plugin.capabilities, move || {
        support::open_connector(&plugin, &support::fresh_dir("conformance"))
    })
}

conformance_tests!(subject());

/// The connector declares the name and capabilities it is documented with.
#[test]
fn declares_name_and_capabilities() {
    let s = conformance_subject();
    assert_eq!(s.name, "connector-template");
    let want = Capabilities::HISTORY
        | Capabilities::FILTER
        | Capabilities::FILTER_REFERENCE_PATHS
        | Capabilities::AGGREGATE
        | Capabilities::PERSISTENT
        | Capabilities::VERSIONED_WRITES;
    assert_eq!(s.capabilities, want);
}
