//! Helpers shared by this crate's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use weft_connector_tests::loader::{self, LoadedPlugin};
use weft_connector_tests::weft_plugin_api::{ConnectorBox, HostLogger, OpenedConnector};

/// The crate's library name: the built plugin is `lib<LIB_NAME>.so`. `rename.sh` changes it.
pub const LIB_NAME: &str = "weft_connector_template";

/// Loads the built plugin the way the host does (`cdylib_path` explains where it is found).
pub fn load_plugin() -> LoadedPlugin {
    let path = weft_connector_tests::cdylib_path(LIB_NAME);
    loader::load(&path).unwrap_or_else(|e| {
        panic!("{e} (build it with `cargo build`, or let `cargo test` build it; WEFT_CONNECTOR_SO overrides the path)")
    })
}

/// A connector on the store in `dir`, with its versioned-writes object (as the host opens it).
pub fn open_connector(plugin: &LoadedPlugin, dir: &std::path::Path) -> OpenedConnector {
    let config = serde_json::json!({ "path": dir }).to_string();
    plugin
        .open_connector(&config, HostLogger::discard())
        .unwrap_or_else(|e| panic!("open_connector with {config} failed: {e}"))
}

/// A connector on the store in `dir`.
pub fn open(plugin: &LoadedPlugin, dir: &std::path::Path) -> ConnectorBox {
    open_connector(plugin, dir).connector
}

/// A new directory path (not yet created) under `<target>/tmp/<LIB_NAME>-<suite>/`. The first
/// call of a test process empties that folder, so runs do not pile up data.
pub fn fresh_dir(suite: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    static CLEANED: std::sync::Once = std::sync::Once::new();
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{LIB_NAME}-{suite}"));
    CLEANED.call_once(|| {
        let _ = std::fs::remove_dir_all(&base);
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    base.join(format!("{}-{n}", std::process::id()))
}
