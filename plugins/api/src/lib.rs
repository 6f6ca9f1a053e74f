//! `weft-plugin-api`: the stable ABI between the Weft host and the plugins it loads at run time.
//!
//! A plugin is a `cdylib` that exports one *root module*: a [`ConnectorModule`] (storage) or a
//! [`ContextionaryModule`] (word embeddings). Plugin authors implement a plain Rust trait —
//! [`Connector`] or [`Contextionary`] — and export it with [`export_connector!`] or
//! [`export_contextionary!`]; the macros make the ABI objects and run every entry point under
//! `catch_unwind`, so a plugin panic becomes an [`ErrorKind::Internal`] error for that one call.
//!
//! Main types:
//! * [`Connector`] / [`ConnectorFfi`]: the storage contract (objects, history, keys, documents,
//!   queries with [`filter::WhereFilter`] trees, [`aggregate`]).
//! * [`StoredObject`], [`StoredKey`], [`ObjectQuery`], [`ObjectPage`]: the envelopes.
//! * [`PluginError`] with an [`ErrorKind`] the host maps to an HTTP status.
//! * [`Capabilities`]: optional behaviours a connector declares.
//! * [`loader`]: how a host (or the conformance kit) loads a library, with one-line errors.
//!
//! ```ignore
//! use weft_plugin_api::*;
//!
//! struct Nothing;
//! impl Connector for Nothing { /* … every method … */ }
//!
//! export_connector! {
//!     name: "nothing",
//!     capabilities: Capabilities::empty(),
//!     config_help: "no configuration",
//!     new: |_ctx: PluginContext| Ok::<_, PluginError>(Nothing),
//! }
//! ```
//!
//! # Compatibility promise
//!
//! The interface version is this crate's version, `MAJOR.MINOR.PATCH` ([`INTERFACE_VERSION`]).
//! A host loads a plugin whose interface has the **same major version**, older or newer minor.
//!
//! Not breaking (minor or patch release):
//! * a new field **after** `#[sabi(last_prefix_field)]` in a root module, marked "Added in
//!   1.N"; its accessor returns `Option`, `None` for plugins built before it;
//! * a new [`Capabilities`] flag (older plugins never declare it, so the host treats them as
//!   lacking it);
//! * documentation, helpers in [`filter`] and [`aggregate`] that do not change the JSON formats.
//!
//! Breaking (major release):
//! * any change to a `#[sabi_trait]` ([`ConnectorFfi`], [`ContextionaryFfi`]): adding, removing,
//!   reordering or changing a method (abi_stable refuses an older plugin's shorter vtable);
//! * any change to a `#[repr(C)]` envelope ([`StoredObject`], [`StoredKey`], …) or an enum
//!   ([`ErrorKind`], [`ObjectKind`], …);
//! * any change to the prefix fields of a root module, or to the JSON formats of filters,
//!   aggregates and documents.
//!
//! How the loader keeps the promise: a plugin of the same or a newer minor version is checked
//! by abi_stable as usual; a plugin of an older minor version is checked field by field the other
//! way round (see [`loader`]), since abi_stable itself only accepts libraries at least as new as
//! the loader.
//!
//! A host refuses a plugin of another major version with one line naming both versions. The
//! repository tests the promise with a fixture plugin built against the 1.0 shape (feature
//! `fixture-interface-1-0`, which lacks `config_help`) and one built as a 2.0 interface.
#![deny(missing_docs)]
#![allow(non_local_definitions)]

pub mod aggregate;
pub mod connector;
pub mod contextionary;
pub mod error;
pub mod filter;
pub mod loader;
pub mod log;
pub mod module;
pub mod types;

pub use async_ffi::{FfiFuture, FutureExt as FfiFutureExt};
pub use connector::{
    connector_box, Connector, ConnectorBox, ConnectorFfi, ConnectorFfi_TO, DocumentName, FfiResult,
    Guarded,
};
pub use contextionary::{
    contextionary_box, Contextionary, ContextionaryBox, ContextionaryFfi, ContextionaryFfi_TO,
    GuardedContextionary,
};
pub use error::{Capabilities, ErrorKind, PluginError, PluginResult};
pub use log::{HostLogger, LogLevel, PluginLogger};
pub use module::{
    ConnectorModule, ConnectorModuleRef, ContextionaryModule, ContextionaryModuleRef,
    INTERFACE_VERSION,
};
pub use types::*;

/// What a plugin's constructor receives.
#[derive(Debug, Clone)]
pub struct PluginContext {
    /// The plugin's declared name.
    pub name: &'static str,
    /// Its JSON config (`database.database_config` or the `contextionary` object); an empty
    /// object when none was given.
    pub config: serde_json::Value,
    /// Where to log.
    pub log: PluginLogger,
}

impl PluginContext {
    /// Parses the config JSON handed over by the host (`Invalid` when it is not JSON).
    pub fn parse(name: &'static str, config_json: &str, log: HostLogger) -> PluginResult<Self> {
        let config = if config_json.trim().is_empty() {
            serde_json::Value::Object(Default::default())
        } else {
            serde_json::from_str(config_json).map_err(|e| {
                PluginError::invalid(format!("plugin {name}: its config is not valid JSON: {e}"))
            })?
        };
        Ok(PluginContext {
            name,
            config,
            log: PluginLogger::new(log, name),
        })
    }

    /// A context with an empty config that discards logs (tests, statically linked use).
    pub fn empty(name: &'static str) -> Self {
        PluginContext {
            name,
            config: serde_json::Value::Object(Default::default()),
            log: PluginLogger::new(HostLogger::discard(), name),
        }
    }
}

/// Current time as Unix milliseconds (what envelopes use).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
