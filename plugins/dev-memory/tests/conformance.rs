//! The conformance kit against the dev-memory connector, loaded from its cdylib the way the host
//! loads it (`target/<profile>/libweft_dev_memory.so`, or `WEFT_CONNECTOR_SO`).

use weft_connector_tests::weft_plugin_api::Capabilities;
use weft_connector_tests::{cdylib_path, conformance_tests, Subject};

conformance_tests!(Subject::from_library(&cdylib_path("weft_dev_memory"), "{}"));

/// dev-memory declares what it implements: everything but persistence.
#[test]
fn declares_name_and_capabilities() {
    let s = conformance_subject();
    assert_eq!(s.name, "dev-memory");
    let want = Capabilities::HISTORY
        | Capabilities::FILTER
        | Capabilities::FILTER_REFERENCE_PATHS
        | Capabilities::AGGREGATE;
    assert_eq!(s.capabilities, want);
}
