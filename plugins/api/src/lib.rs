//! `weft-plugin-api`: the stable ABI between the Weft host and the plugins it loads at run time,
//! and the contract's reference semantics — nothing else. Its version is the interface version.
//!
//! A plugin is a `cdylib` that exports one *root module*: a [`ConnectorModule`] (storage) or a
//! [`ContextionaryModule`] (word embeddings). Plugin authors implement a plain Rust trait —
//! [`Connector`] or [`Contextionary`] — and export it with [`export_connector!`] or
//! [`export_contextionary!`]; the macros make the ABI objects and run every entry point under
//! `catch_unwind`, so a plugin panic becomes an [`ErrorKind::Internal`] error for that one call.
//!
//! # What this crate owns
//!
//! What crosses the boundary, and what both sides must agree on:
//! * the envelopes ([`StoredObject`], [`StoredKey`], [`ObjectQuery`], [`ObjectPage`],
//!   [`VersionedObject`], [`BackupReport`], …), [`PluginError`] with an [`ErrorKind`] the host
//!   maps to an HTTP status, and the [`Capabilities`] a connector declares;
//! * the contracts as safe traits ([`Connector`], [`Contextionary`]) and their `#[sabi_trait]`
//!   twins ([`ConnectorFfi`], [`ObjectVersionsFfi`] since 1.2, [`MaintenanceFfi`] since 1.3;
//!   [`ContextionaryFfi`], [`WordLookupFfi`]) with the panic-catching adapters ([`Guarded`],
//!   [`GuardedContextionary`]);
//! * the root modules and the export macros ([`module`]), and the [`INTERFACE_VERSION`];
//! * the logging callback ([`HostLogger`], [`PluginLogger`]);
//! * the reference semantics of the JSON that crosses: the filter tree ([`filter`]) and
//!   aggregation ([`aggregate`]), which connectors that evaluate in memory and the host's own
//!   fallback both use, so that they answer alike.
//!
//! # What it must not know
//!
//! HTTP, configuration files, any particular store, tokio or any runtime, and how a library is
//! found and opened. Two crates beside it hold what used to live here (after Arrow ADBC's split
//! of header, driver framework and driver manager):
//! * **`weft-connector-sdk`** (`plugins/sdk`): what helps a connector author and never crosses
//!   the boundary — `support` (filter parsing, owner and class matching, newest-first paging,
//!   the key cascade, version checks, the common messages) and the adapter that runs a store's
//!   calls on the plugin's own runtime. A connector depends on it; the interface does not.
//! * **`weft-plugin-loader`** (`host/loader`): the host's side — opening a library, checking its
//!   version and layout, one-line errors. Plugins never link it.
//!
//! So this crate's version moves only with the interface, and a new SDK helper or a loader fix
//! needs no new interface version.
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
//! * a new `#[sabi_trait]` or `#[repr(C)]` type reached **only** through such a new root-module
//!   field (e.g. [`ObjectVersionsFfi`] and [`ConnectorParts`] through `new_connector_parts` in
//!   1.2): a plugin built before it lacks the field, so its layout never meets the new type;
//! * a new method **with a default body** on the safe traits [`Connector`] and
//!   [`Contextionary`] (existing source compiles unchanged), reaching the host through such a
//!   new ABI object;
//! * documentation, and helpers in [`filter`] and [`aggregate`] that do not change the JSON
//!   formats;
//! * anything in `weft-connector-sdk` or `weft-plugin-loader`: neither is part of the
//!   interface (they have their own versions).
//!
//! Breaking (major release):
//! * any change to a `#[sabi_trait]` ([`ConnectorFfi`], [`ContextionaryFfi`]): adding, removing,
//!   reordering or changing a method (abi_stable refuses an older plugin's shorter vtable);
//! * any change to a `#[repr(C)]` envelope ([`StoredObject`], [`StoredKey`], …) or an enum
//!   ([`ErrorKind`], [`ObjectKind`], …);
//! * any change to the prefix fields of a root module, or to the JSON formats of filters,
//!   aggregates and documents.
//!
//! How the host keeps the promise: its loader (`weft-plugin-loader`) has abi_stable check a
//! plugin of the same or a newer minor version as usual, and checks a plugin of an older minor
//! version field by field the other way round, since abi_stable itself only accepts libraries at
//! least as new as the loader.
//!
//! A host refuses a plugin of another major version with one line naming both versions. The
//! repository tests the promise with fixture plugins built against the 1.0 shape (feature
//! `fixture-interface-1-0`, which lacks `config_help` and the 1.2 fields), the 1.1 shape
//! (feature `fixture-interface-1-1`, which lacks `new_connector_parts` and
//! `new_contextionary_parts`), the 1.2 shape (feature `fixture-interface-1-2`, which lacks
//! `new_connector_parts_1_3` and `new_connector_parts_1_4`) and a 2.0 interface, and with a connector built from this crate's
//! sources as they were at 1.3.0 before the SDK and the loader left it (`interface-1-3`, built
//! by `scripts/build-test-plugins.sh` from the repository's history): moving code out of this
//! crate must not change a layout.
//!
//! # What each minor version added
//!
//! * **1.1**: `config_help` in both root modules.
//! * **1.2**: [`Capabilities::VERSIONED_WRITES`], [`VersionedObject`], [`ObjectVersionsFfi`],
//!   [`ConnectorParts`] and the connector root module's `new_connector_parts`
//!   ([`Connector::get_object_versioned`], [`Connector::update_object_if`]);
//!   [`WordLookupFfi`], [`ContextionaryParts`] and the contextionary root module's
//!   `new_contextionary_parts` (look-ups whose panics are errors);
//!   [`PANIC_MESSAGE_PREFIX`] and [`PluginError::panicked_in`] (the message format is the one
//!   earlier plugins produce); the `support` module (since moved to `weft-connector-sdk`).
//! * **1.3**: [`Capabilities::BACKUP`], [`BackupReport`], [`MaintenanceFfi`],
//!   [`ConnectorParts13`] and the connector root module's `new_connector_parts_1_3`
//!   ([`Connector::backup`]: a consistent copy of the store while it serves). Later, with the
//!   interface unchanged (same layouts, still 1.3.0): `support` moved to `weft-connector-sdk`
//!   and `loader` to `weft-plugin-loader` — a source change for code that named them here, none
//!   for a built plugin.
//! * **1.4**: [`Capabilities::MIGRATE`], [`ObjectRecord`], [`RecordPage`], [`MigrationFfi`],
//!   [`ConnectorParts14`] and the connector root module's `new_connector_parts_1_4`
//!   ([`Connector::export_objects`], [`Connector::import_objects`]: a whole store read and
//!   written back exactly, what `weft migrate` moves a store between connectors with).
#![deny(missing_docs)]
#![allow(non_local_definitions)]

pub mod aggregate;
pub mod connector;
pub mod contextionary;
pub mod error;
pub mod exact_sum;
pub mod filter;
pub mod log;
pub mod module;
pub mod types;
pub mod vector;

pub use async_ffi::{FfiFuture, FutureExt as FfiFutureExt};
pub use connector::{
    connector_box, connector_parts, Connector, ConnectorBox, ConnectorFfi, ConnectorFfi_TO,
    ConnectorParts, ConnectorParts13, ConnectorParts14, ConnectorParts15, DocumentName, FfiResult,
    Guarded, MaintenanceBox, MaintenanceFfi, MaintenanceFfi_TO, MigrationBox, MigrationFfi,
    MigrationFfi_TO, ObjectVersionsBox, ObjectVersionsFfi, ObjectVersionsFfi_TO, OpenedConnector,
    VectorsBox, VectorsFfi, VectorsFfi_TO,
};
pub use contextionary::{
    contextionary_box, contextionary_parts, Contextionary, ContextionaryBox, ContextionaryFfi,
    ContextionaryFfi_TO, ContextionaryParts, ContextionaryParts15, GuardedContextionary,
    OpenedContextionary, WordLookupBox, WordLookupFfi, WordLookupFfi_TO, WordVectorsBox,
    WordVectorsFfi, WordVectorsFfi_TO,
};
pub use error::{Capabilities, ErrorKind, PluginError, PluginResult, PANIC_MESSAGE_PREFIX};
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
