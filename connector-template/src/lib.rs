//! A Weft storage connector that keeps every object as a JSON file in a directory — and the
//! template to copy when writing your own connector (see `README.md` and `CONNECTORS.md` in
//! the Weft repository).
//!
//! # What a connector crate consists of
//!
//! 1. A store implementing [`weft_connector_sdk::Store`] — here [`JsonFileStore`] in
//!    [`store`]: the calls of the contract as `async fn`s over your store. Each method there
//!    says what the contract asks of it and what an author must do.
//! 2. A constructor — here [`open`] — that parses the config, opens the store and puts it on
//!    the plugin's own runtime: [`weft_connector_sdk::OnRuntime`] is the
//!    [`weft_plugin_api::Connector`] the host calls, and runs each call on that runtime.
//! 3. One [`weft_plugin_api::export_connector!`] call: the plugin's name (what
//!    `database.name` in the host's config refers to), its [`Capabilities`], a help text for
//!    its config, and the constructor. The macro makes the ABI objects and runs the
//!    constructor, every call and every poll of every returned future under `catch_unwind`:
//!    a panic costs one call an `Internal` error, never the host process.
//! 4. `tests/conformance.rs`: the conformance kit (`weft-connector-tests`) against the built
//!    `.so`, honouring the declared capabilities; plus tests of your own (here
//!    `tests/persistence.rs`, since the kit cannot restart a process).
//!
//! # This connector
//!
//! Config (`database.database_config`): `{"path": "/some/dir"}` (required; created when
//! missing) and `"fsync": false` (optional; default `true`) to skip flushing each write to the
//! disk (faster, not crash-safe). The files are described in [`store`]; all file work is
//! synchronous code in [`store`] and [`disk`], which the SDK runs on the plugin's own tokio
//! runtime's blocking pool (never the host's threads): the store's
//! [`run`](weft_connector_sdk::Store::run) says so.
//!
//! Capabilities: `HISTORY` (one file per object holds its versions), `FILTER`,
//! `FILTER_REFERENCE_PATHS` and `AGGREGATE` (evaluated in memory with the reference
//! implementations in [`weft_plugin_api::filter`] and [`weft_plugin_api::aggregate`]),
//! `PERSISTENT` (everything is on disk) and `VERSIONED_WRITES` (each object's file keeps its
//! version number; `update_object_if` compares and writes under the store's lock). A connector
//! that does not implement an optional behaviour simply leaves its flag out and answers
//! [`PluginError::unsupported`] there (for `VERSIONED_WRITES` and `BACKUP` the trait's default
//! methods already do).
//!
//! What most connectors do alike — filter parsing, newest-first paging, owner and class
//! matching, the key-deletion cascade, version checks — comes from
//! [`weft_connector_sdk::support`]; replace any of it when your store can do better (a query
//! language, an index).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod disk;
pub mod store;

use std::path::PathBuf;

use serde::Deserialize;
use weft_connector_sdk::{OnRuntime, PluginRuntime, RuntimeOptions};
use weft_plugin_api::{Capabilities, PluginContext, PluginError, PluginResult};

pub use crate::store::JsonFileStore;

/// The plugin's name: `database.name` in the host's config, `--database` on its command line.
/// `rename.sh` changes it.
pub const PLUGIN_NAME: &str = "connector-template";

/// What this connector can do. The host and the conformance kit read these flags: the kit
/// checks every declared behaviour, and checks that every undeclared one answers
/// `Unsupported`.
pub const CAPABILITIES: Capabilities = Capabilities::HISTORY
    .union(Capabilities::FILTER)
    .union(Capabilities::FILTER_REFERENCE_PATHS)
    .union(Capabilities::AGGREGATE)
    .union(Capabilities::PERSISTENT)
    .union(Capabilities::VERSIONED_WRITES);

/// Shown by `weft plugins check`: every config key, what it means, an example.
pub const CONFIG_HELP: &str = "path (required): the directory to keep things, actions, keys and \
documents in, one JSON file each; created when missing; must be new, empty or a store of this \
connector. fsync (optional, default true): flush every write to the disk before answering; \
false is faster but a machine crash may lose the last writes. Example: {\"path\": \
\"/var/lib/weft/store\"}";

weft_plugin_api::export_connector! {
    name: PLUGIN_NAME,
    capabilities: CAPABILITIES,
    config_help: CONFIG_HELP,
    new: open,
}

/// The connector's config, parsed from `database.database_config`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Config {
    path: Option<PathBuf>,
    #[serde(default = "yes")]
    fsync: bool,
}

fn yes() -> bool {
    true
}

impl Config {
    /// Every mistake is an `Invalid` error naming the key and saying what to write instead.
    fn parse(config: &serde_json::Value) -> PluginResult<(PathBuf, bool)> {
        let config: Config = serde_json::from_value(config.clone()).map_err(|e| {
            PluginError::invalid(format!(
                "{PLUGIN_NAME}: database_config is not valid: {e}; expected {{\"path\": \"/some/dir\"}} (see `weft plugins check` for every key)"
            ))
        })?;
        match config.path {
            Some(path) if !path.as_os_str().is_empty() => Ok((path, config.fsync)),
            _ => Err(PluginError::invalid(format!(
                "{PLUGIN_NAME}: database_config.path is missing: give the directory to store data in, e.g. {{\"path\": \"/var/lib/weft/store\"}}"
            ))),
        }
    }
}

/// The constructor `export_connector!` calls with the host's config and logger.
///
/// What an author does here: parse the config (an `Invalid` error naming the key when it is
/// wrong — the host prints it and refuses to start), connect or open the store
/// (`Unavailable` when it cannot be reached), get the plugin's runtime, and log one line saying
/// where the data goes. The runtime is the plugin's own (the host never lends its runtime to a
/// plugin), built by the first connector and shared by all: here sized for blocking file work
/// (one worker thread, at most eight blocking ones). A store that connects over a network does so here,
/// on the runtime, with `runtime.block_on(...)` (bounded by a timeout).
pub fn open(ctx: PluginContext) -> PluginResult<OnRuntime<JsonFileStore>> {
    let (path, fsync) = Config::parse(&ctx.config)?;
    let store = JsonFileStore::open(path, fsync, &ctx.log)?;
    let runtime = PluginRuntime::get(ctx.name, RuntimeOptions::BLOCKING_IO)?;
    ctx.log.info(&format!(
        "keeping things, actions, keys and documents as JSON files in {}{}",
        store.root().display(),
        if fsync { "" } else { " (fsync off)" }
    ));
    Ok(OnRuntime::new(runtime, store, ctx.log))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_errors_name_the_key() {
        let e = Config::parse(&json!({})).unwrap_err();
        assert_eq!(e.kind, weft_plugin_api::ErrorKind::Invalid);
        assert!(e.message.contains("database_config.path"), "{e}");
        let e = Config::parse(&json!({"pth": "/x"})).unwrap_err();
        assert!(e.message.contains("pth"), "{e}");
        let e = Config::parse(&json!({"path": 3})).unwrap_err();
        assert_eq!(e.kind, weft_plugin_api::ErrorKind::Invalid);
        let (path, fsync) = Config::parse(&json!({"path": "/x", "fsync": false})).unwrap();
        assert_eq!((path, fsync), (PathBuf::from("/x"), false));
        assert!(Config::parse(&json!({"path": "/x"})).unwrap().1);
    }
}
