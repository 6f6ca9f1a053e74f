//! What the tests and benchmarks of the built library share. Each test binary uses part of it.
#![allow(dead_code)]

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

/// The built embedded library, loaded as the host loads it.
pub fn load_plugin() -> loader::LoadedPlugin {
    loader::load(&cdylib_path("weft_embedded")).unwrap_or_else(|e| panic!("{e}"))
}

/// A new directory path for one store of the test binary `suite` (the binary's earlier runs'
/// directories are removed on first use).
pub fn fresh_dir(suite: &str, name: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    static CLEANED: std::sync::Once = std::sync::Once::new();
    let base = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("weft_embedded-{suite}"));
    CLEANED.call_once(|| {
        let _ = std::fs::remove_dir_all(&base);
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    base.join(format!("{}-{n}-{name}", std::process::id()))
}

/// The store in `dir` through `plugin`, with every ABI object (as the host opens it).
pub fn open(
    plugin: &loader::LoadedPlugin,
    dir: &std::path::Path,
) -> weft_connector_tests::weft_plugin_api::OpenedConnector {
    let config = serde_json::json!({ "path": dir }).to_string();
    plugin
        .open_connector(&config, HostLogger::discard())
        .unwrap_or_else(|e| panic!("{e}"))
}
