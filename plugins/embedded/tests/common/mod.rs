//! What the on-demand benchmarks (`query_bench.rs`, `import_bench.rs`) share.

use weft_connector_tests::cdylib_path;
use weft_connector_tests::loader;
use weft_connector_tests::weft_plugin_api::{ConnectorBox, HostLogger};

/// The connector of the built library `lib` (`weft_embedded` in `dir`, or `weft_dev_memory`),
/// or `None` when that library is not built.
pub fn load(dir: &std::path::Path, lib: &str) -> Option<ConnectorBox> {
    let plugin = loader::load(&cdylib_path(lib)).ok()?;
    let config = if lib == "weft_embedded" {
        serde_json::json!({ "path": dir }).to_string()
    } else {
        "{}".to_string()
    };
    Some(
        plugin
            .open_connector(&config, HostLogger::discard())
            .unwrap()
            .connector,
    )
}
