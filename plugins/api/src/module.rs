//! The two root modules a plugin library exports, and the macros that export them.
//!
//! Root modules are abi_stable *prefix types*: fields up to `#[sabi(last_prefix_field)]` exist in
//! every 1.x plugin; fields after it were added in a later minor version, and their accessors
//! return `Option` so a host can tell that an older plugin lacks them.

use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RResult, RStr};
use abi_stable::{declare_root_module_statics, StableAbi};

use crate::connector::ConnectorBox;
use crate::contextionary::ContextionaryBox;
use crate::error::{Capabilities, PluginError};
use crate::log::HostLogger;

/// The interface version this copy of `weft-plugin-api` speaks (`MAJOR.MINOR.PATCH`).
#[cfg(not(any(
    feature = "fixture-interface-1-0",
    feature = "fixture-interface-1-1",
    feature = "fixture-interface-1-2",
    feature = "fixture-interface-2-0"
)))]
pub const INTERFACE_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Test fixture: an older minor interface (1.0).
#[cfg(feature = "fixture-interface-1-0")]
pub const INTERFACE_VERSION: &str = "1.0.0";
/// Test fixture: the previous minor interface (1.1).
#[cfg(feature = "fixture-interface-1-1")]
pub const INTERFACE_VERSION: &str = "1.1.0";
/// Test fixture: the previous minor interface (1.2).
#[cfg(feature = "fixture-interface-1-2")]
pub const INTERFACE_VERSION: &str = "1.2.0";
/// Test fixture: a future, incompatible major interface.
#[cfg(feature = "fixture-interface-2-0")]
pub const INTERFACE_VERSION: &str = "2.0.0";

/// The root module of a connector library.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = ConnectorModuleRef)))]
#[sabi(missing_field(option))]
pub struct ConnectorModule {
    /// The plugin's name, as `database.name` in the config refers to it (e.g. `dev-memory`).
    pub plugin_name: extern "C" fn() -> RStr<'static>,
    /// The `weft-plugin-api` version the plugin was built against.
    pub interface_version: extern "C" fn() -> RStr<'static>,
    /// What the connector can do.
    pub capabilities: extern "C" fn() -> Capabilities,
    /// A test fixture field that only an incompatible interface has.
    #[cfg(any(feature = "fixture-interface-2-0", feature = "fixture-layout-change"))]
    pub fixture_breaking_change: extern "C" fn() -> u64,
    /// Builds a connector from its JSON config (`database.database_config`).
    #[sabi(last_prefix_field)]
    pub new_connector:
        extern "C" fn(config_json: RStr<'_>, log: HostLogger) -> RResult<ConnectorBox, PluginError>,
    /// **Added in 1.1.** Help text for the plugin's config keys, shown by `weft plugins check`.
    #[cfg(not(feature = "fixture-interface-1-0"))]
    pub config_help: extern "C" fn() -> RStr<'static>,
    /// **Added in 1.2.** Builds a connector like `new_connector`, answering both its ABI objects
    /// over one instance: the contract and its versioned writes
    /// ([`ConnectorParts`](crate::ConnectorParts)). The host prefers it when present
    /// (`LoadedPlugin::open_connector` of the host's loader, `weft-plugin-loader`).
    #[cfg(not(any(feature = "fixture-interface-1-0", feature = "fixture-interface-1-1")))]
    pub new_connector_parts:
        extern "C" fn(
            config_json: RStr<'_>,
            log: HostLogger,
        ) -> RResult<crate::connector::ConnectorParts, PluginError>,
    /// **Added in 1.3.** Builds a connector like `new_connector`, answering its three ABI
    /// objects over one instance: the contract, its versioned writes and its maintenance calls
    /// ([`ConnectorParts13`](crate::ConnectorParts13)). The host prefers it when present.
    #[cfg(not(any(
        feature = "fixture-interface-1-0",
        feature = "fixture-interface-1-1",
        feature = "fixture-interface-1-2"
    )))]
    pub new_connector_parts_1_3:
        extern "C" fn(
            config_json: RStr<'_>,
            log: HostLogger,
        ) -> RResult<crate::connector::ConnectorParts13, PluginError>,
    /// **Added in 1.4.** Builds a connector like `new_connector`, answering its four ABI
    /// objects over one instance: the three of 1.3 and its export and import calls
    /// ([`ConnectorParts14`](crate::ConnectorParts14)). The host prefers it when present.
    #[cfg(not(any(
        feature = "fixture-interface-1-0",
        feature = "fixture-interface-1-1",
        feature = "fixture-interface-1-2"
    )))]
    pub new_connector_parts_1_4:
        extern "C" fn(
            config_json: RStr<'_>,
            log: HostLogger,
        ) -> RResult<crate::connector::ConnectorParts14, PluginError>,
    /// **Added in 1.5.** Builds a connector like `new_connector`, answering its five ABI
    /// objects over one instance: the four of 1.4 and its vectors
    /// ([`ConnectorParts15`](crate::ConnectorParts15)). The host prefers it when present.
    #[cfg(not(any(
        feature = "fixture-interface-1-0",
        feature = "fixture-interface-1-1",
        feature = "fixture-interface-1-2"
    )))]
    pub new_connector_parts_1_5:
        extern "C" fn(
            config_json: RStr<'_>,
            log: HostLogger,
        ) -> RResult<crate::connector::ConnectorParts15, PluginError>,
}

/// The root module of a contextionary library.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = ContextionaryModuleRef)))]
#[sabi(missing_field(option))]
pub struct ContextionaryModule {
    /// The plugin's name, as `contextionary.name` in the config refers to it.
    pub plugin_name: extern "C" fn() -> RStr<'static>,
    /// The `weft-plugin-api` version the plugin was built against.
    pub interface_version: extern "C" fn() -> RStr<'static>,
    /// Builds a contextionary from its JSON config (the `contextionary` object).
    #[sabi(last_prefix_field)]
    pub new_contextionary: extern "C" fn(
        config_json: RStr<'_>,
        log: HostLogger,
    ) -> RResult<ContextionaryBox, PluginError>,
    /// **Added in 1.1.** Help text for the plugin's config keys.
    #[cfg(not(feature = "fixture-interface-1-0"))]
    pub config_help: extern "C" fn() -> RStr<'static>,
    /// **Added in 1.2.** Builds a contextionary like `new_contextionary`, answering both its ABI
    /// objects over one instance: the contract and the look-ups that report panics
    /// ([`ContextionaryParts`](crate::ContextionaryParts)). The host prefers it when present
    /// (`LoadedPlugin::open_contextionary` of the host's loader, `weft-plugin-loader`).
    #[cfg(not(any(feature = "fixture-interface-1-0", feature = "fixture-interface-1-1")))]
    pub new_contextionary_parts:
        extern "C" fn(
            config_json: RStr<'_>,
            log: HostLogger,
        ) -> RResult<crate::contextionary::ContextionaryParts, PluginError>,
    /// **Added in 1.5.** Builds a contextionary like `new_contextionary`, answering its three
    /// ABI objects over one instance: the two of 1.2 and its batch look-up of words with their
    /// frequency ranks ([`ContextionaryParts15`](crate::ContextionaryParts15)), which object
    /// vectors are made with. The host prefers it when present.
    #[cfg(not(any(feature = "fixture-interface-1-0", feature = "fixture-interface-1-1")))]
    pub new_contextionary_parts_1_5:
        extern "C" fn(
            config_json: RStr<'_>,
            log: HostLogger,
        ) -> RResult<crate::contextionary::ContextionaryParts15, PluginError>,
}

/// `RootModule::NAME` of connector libraries; the loader reads it to tell kinds apart.
pub const CONNECTOR_MODULE_NAME: &str = "weft connector";
/// `RootModule::NAME` of contextionary libraries.
pub const CONTEXTIONARY_MODULE_NAME: &str = "weft contextionary";

impl RootModule for ConnectorModuleRef {
    declare_root_module_statics! {ConnectorModuleRef}
    const BASE_NAME: &'static str = "weft_connector";
    const NAME: &'static str = CONNECTOR_MODULE_NAME;
    const VERSION_STRINGS: VersionStrings = VersionStrings::new(INTERFACE_VERSION);
}

impl RootModule for ContextionaryModuleRef {
    declare_root_module_statics! {ContextionaryModuleRef}
    const BASE_NAME: &'static str = "weft_contextionary";
    const NAME: &'static str = CONTEXTIONARY_MODULE_NAME;
    const VERSION_STRINGS: VersionStrings = VersionStrings::new(INTERFACE_VERSION);
}

/// Runs a constructor under `catch_unwind` (used by the export macros).
#[doc(hidden)]
pub fn construct<T>(
    op: &'static str,
    f: impl FnOnce() -> Result<T, PluginError>,
) -> RResult<T, PluginError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r.into(),
        Err(p) => RResult::RErr(crate::connector::panic_error(op, &*p)),
    }
}

/// Exports a [`Connector`](crate::Connector) as a Weft connector library.
///
/// ```ignore
/// weft_plugin_api::export_connector! {
///     name: "my-store",
///     capabilities: Capabilities::HISTORY.union(Capabilities::FILTER),
///     config_help: "path: directory to keep objects in",
///     new: |ctx: PluginContext| MyStore::open(ctx),
/// }
/// ```
///
/// `new` receives a [`PluginContext`](crate::PluginContext) and returns
/// `Result<impl Connector, PluginError>`. The constructor, every call and every poll run under
/// `catch_unwind`. The root module carries both constructors: `new_connector` (the
/// [`ConnectorBox`]) and, since 1.2, `new_connector_parts` (that box plus the versioned-writes
/// object over the same instance).
#[macro_export]
macro_rules! export_connector {
    (
        name: $name:expr,
        capabilities: $caps:expr,
        config_help: $help:expr,
        new: $new:expr $(,)?
    ) => {
        #[::abi_stable::export_root_module]
        pub fn weft_connector_root_module() -> $crate::ConnectorModuleRef {
            use ::abi_stable::prefix_type::PrefixTypeTrait;
            extern "C" fn plugin_name() -> ::abi_stable::std_types::RStr<'static> {
                ::abi_stable::std_types::RStr::from_str($name)
            }
            extern "C" fn interface_version() -> ::abi_stable::std_types::RStr<'static> {
                ::abi_stable::std_types::RStr::from_str($crate::INTERFACE_VERSION)
            }
            extern "C" fn capabilities() -> $crate::Capabilities {
                $caps
            }
            #[allow(dead_code)]
            extern "C" fn config_help() -> ::abi_stable::std_types::RStr<'static> {
                ::abi_stable::std_types::RStr::from_str($help)
            }
            extern "C" fn new_connector(
                config_json: ::abi_stable::std_types::RStr<'_>,
                log: $crate::HostLogger,
            ) -> ::abi_stable::std_types::RResult<$crate::ConnectorBox, $crate::PluginError> {
                $crate::module::construct("new_connector", || {
                    let ctx = $crate::PluginContext::parse($name, config_json.as_str(), log)?;
                    #[allow(clippy::redundant_closure_call)]
                    let connector = ($new)(ctx)?;
                    Ok($crate::connector_box(connector))
                })
            }
            #[allow(dead_code)]
            extern "C" fn new_connector_parts(
                config_json: ::abi_stable::std_types::RStr<'_>,
                log: $crate::HostLogger,
            ) -> ::abi_stable::std_types::RResult<$crate::ConnectorParts, $crate::PluginError> {
                $crate::module::construct("new_connector_parts", || {
                    let ctx = $crate::PluginContext::parse($name, config_json.as_str(), log)?;
                    #[allow(clippy::redundant_closure_call)]
                    let connector = ($new)(ctx)?;
                    Ok($crate::ConnectorParts::of(connector))
                })
            }
            #[allow(dead_code)]
            extern "C" fn new_connector_parts_1_3(
                config_json: ::abi_stable::std_types::RStr<'_>,
                log: $crate::HostLogger,
            ) -> ::abi_stable::std_types::RResult<$crate::ConnectorParts13, $crate::PluginError>
            {
                $crate::module::construct("new_connector_parts_1_3", || {
                    let ctx = $crate::PluginContext::parse($name, config_json.as_str(), log)?;
                    #[allow(clippy::redundant_closure_call)]
                    let connector = ($new)(ctx)?;
                    Ok($crate::ConnectorParts13::of(connector))
                })
            }
            #[allow(dead_code)]
            extern "C" fn new_connector_parts_1_4(
                config_json: ::abi_stable::std_types::RStr<'_>,
                log: $crate::HostLogger,
            ) -> ::abi_stable::std_types::RResult<$crate::ConnectorParts14, $crate::PluginError>
            {
                $crate::module::construct("new_connector_parts_1_4", || {
                    let ctx = $crate::PluginContext::parse($name, config_json.as_str(), log)?;
                    #[allow(clippy::redundant_closure_call)]
                    let connector = ($new)(ctx)?;
                    Ok($crate::ConnectorParts14::of(connector))
                })
            }
            #[allow(dead_code)]
            extern "C" fn new_connector_parts_1_5(
                config_json: ::abi_stable::std_types::RStr<'_>,
                log: $crate::HostLogger,
            ) -> ::abi_stable::std_types::RResult<$crate::ConnectorParts15, $crate::PluginError>
            {
                $crate::module::construct("new_connector_parts_1_5", || {
                    let ctx = $crate::PluginContext::parse($name, config_json.as_str(), log)?;
                    #[allow(clippy::redundant_closure_call)]
                    let connector = ($new)(ctx)?;
                    Ok($crate::ConnectorParts15::of(connector))
                })
            }
            $crate::__connector_module!(
                plugin_name,
                interface_version,
                capabilities,
                new_connector,
                config_help,
                new_connector_parts,
                new_connector_parts_1_3,
                new_connector_parts_1_4,
                new_connector_parts_1_5
            )
            .leak_into_prefix()
        }
    };
}

#[doc(hidden)]
#[cfg(not(feature = "fixture-interface-1-0"))]
#[cfg(not(feature = "fixture-interface-1-1"))]
#[cfg(not(feature = "fixture-interface-1-2"))]
#[cfg(not(feature = "fixture-interface-2-0"))]
#[cfg(not(feature = "fixture-layout-change"))]
#[macro_export]
macro_rules! __connector_module {
    ($n:ident, $v:ident, $c:ident, $new:ident, $help:ident, $parts:ident, $parts13:ident, $parts14:ident, $parts15:ident) => {
        $crate::ConnectorModule {
            plugin_name: $n,
            interface_version: $v,
            capabilities: $c,
            new_connector: $new,
            config_help: $help,
            new_connector_parts: $parts,
            new_connector_parts_1_3: $parts13,
            new_connector_parts_1_4: $parts14,
            new_connector_parts_1_5: $parts15,
        }
    };
}

#[doc(hidden)]
#[cfg(feature = "fixture-interface-1-2")]
#[macro_export]
macro_rules! __connector_module {
    ($n:ident, $v:ident, $c:ident, $new:ident, $help:ident, $parts:ident, $parts13:ident, $parts14:ident, $parts15:ident) => {
        $crate::ConnectorModule {
            plugin_name: $n,
            interface_version: $v,
            capabilities: $c,
            new_connector: $new,
            config_help: $help,
            new_connector_parts: $parts,
        }
    };
}

#[doc(hidden)]
#[cfg(feature = "fixture-interface-1-0")]
#[macro_export]
macro_rules! __connector_module {
    ($n:ident, $v:ident, $c:ident, $new:ident, $help:ident, $parts:ident, $parts13:ident, $parts14:ident, $parts15:ident) => {
        $crate::ConnectorModule {
            plugin_name: $n,
            interface_version: $v,
            capabilities: $c,
            new_connector: $new,
        }
    };
}

#[doc(hidden)]
#[cfg(feature = "fixture-interface-1-1")]
#[macro_export]
macro_rules! __connector_module {
    ($n:ident, $v:ident, $c:ident, $new:ident, $help:ident, $parts:ident, $parts13:ident, $parts14:ident, $parts15:ident) => {
        $crate::ConnectorModule {
            plugin_name: $n,
            interface_version: $v,
            capabilities: $c,
            new_connector: $new,
            config_help: $help,
        }
    };
}

#[doc(hidden)]
#[cfg(any(feature = "fixture-interface-2-0", feature = "fixture-layout-change"))]
#[macro_export]
macro_rules! __connector_module {
    ($n:ident, $v:ident, $c:ident, $new:ident, $help:ident, $parts:ident, $parts13:ident, $parts14:ident, $parts15:ident) => {{
        extern "C" fn fixture_breaking_change() -> u64 {
            2
        }
        $crate::ConnectorModule {
            plugin_name: $n,
            interface_version: $v,
            capabilities: $c,
            fixture_breaking_change,
            new_connector: $new,
            config_help: $help,
            new_connector_parts: $parts,
            new_connector_parts_1_3: $parts13,
            new_connector_parts_1_4: $parts14,
            new_connector_parts_1_5: $parts15,
        }
    }};
}

/// Exports a [`Contextionary`](crate::Contextionary) as a Weft contextionary library.
///
/// ```ignore
/// weft_plugin_api::export_contextionary! {
///     name: "finalfusion",
///     config_help: "path: the .fifu file",
///     new: |ctx: PluginContext| MyEmbeddings::open(ctx),
/// }
/// ```
#[macro_export]
macro_rules! export_contextionary {
    (
        name: $name:expr,
        config_help: $help:expr,
        new: $new:expr $(,)?
    ) => {
        #[::abi_stable::export_root_module]
        pub fn weft_contextionary_root_module() -> $crate::ContextionaryModuleRef {
            use ::abi_stable::prefix_type::PrefixTypeTrait;
            extern "C" fn plugin_name() -> ::abi_stable::std_types::RStr<'static> {
                ::abi_stable::std_types::RStr::from_str($name)
            }
            extern "C" fn interface_version() -> ::abi_stable::std_types::RStr<'static> {
                ::abi_stable::std_types::RStr::from_str($crate::INTERFACE_VERSION)
            }
            #[allow(dead_code)]
            extern "C" fn config_help() -> ::abi_stable::std_types::RStr<'static> {
                ::abi_stable::std_types::RStr::from_str($help)
            }
            extern "C" fn new_contextionary(
                config_json: ::abi_stable::std_types::RStr<'_>,
                log: $crate::HostLogger,
            ) -> ::abi_stable::std_types::RResult<$crate::ContextionaryBox, $crate::PluginError>
            {
                $crate::module::construct("new_contextionary", || {
                    let ctx = $crate::PluginContext::parse($name, config_json.as_str(), log)?;
                    #[allow(clippy::redundant_closure_call)]
                    let c = ($new)(ctx)?;
                    Ok($crate::contextionary_box(c))
                })
            }
            #[allow(dead_code)]
            extern "C" fn new_contextionary_parts(
                config_json: ::abi_stable::std_types::RStr<'_>,
                log: $crate::HostLogger,
            ) -> ::abi_stable::std_types::RResult<$crate::ContextionaryParts, $crate::PluginError>
            {
                $crate::module::construct("new_contextionary_parts", || {
                    let ctx = $crate::PluginContext::parse($name, config_json.as_str(), log)?;
                    #[allow(clippy::redundant_closure_call)]
                    let c = ($new)(ctx)?;
                    Ok($crate::ContextionaryParts::of(c))
                })
            }
            #[allow(dead_code)]
            extern "C" fn new_contextionary_parts_1_5(
                config_json: ::abi_stable::std_types::RStr<'_>,
                log: $crate::HostLogger,
            ) -> ::abi_stable::std_types::RResult<$crate::ContextionaryParts15, $crate::PluginError>
            {
                $crate::module::construct("new_contextionary_parts_1_5", || {
                    let ctx = $crate::PluginContext::parse($name, config_json.as_str(), log)?;
                    #[allow(clippy::redundant_closure_call)]
                    let c = ($new)(ctx)?;
                    Ok($crate::ContextionaryParts15::of(c))
                })
            }
            $crate::__contextionary_module!(
                plugin_name,
                interface_version,
                new_contextionary,
                config_help,
                new_contextionary_parts,
                new_contextionary_parts_1_5
            )
            .leak_into_prefix()
        }
    };
}

#[doc(hidden)]
#[cfg(not(feature = "fixture-interface-1-0"))]
#[cfg(not(feature = "fixture-interface-1-1"))]
#[macro_export]
macro_rules! __contextionary_module {
    ($n:ident, $v:ident, $new:ident, $help:ident, $parts:ident, $parts15:ident) => {
        $crate::ContextionaryModule {
            plugin_name: $n,
            interface_version: $v,
            new_contextionary: $new,
            config_help: $help,
            new_contextionary_parts: $parts,
            new_contextionary_parts_1_5: $parts15,
        }
    };
}

#[doc(hidden)]
#[cfg(feature = "fixture-interface-1-0")]
#[macro_export]
macro_rules! __contextionary_module {
    ($n:ident, $v:ident, $new:ident, $help:ident, $parts:ident, $parts15:ident) => {
        $crate::ContextionaryModule {
            plugin_name: $n,
            interface_version: $v,
            new_contextionary: $new,
        }
    };
}

#[doc(hidden)]
#[cfg(feature = "fixture-interface-1-1")]
#[macro_export]
macro_rules! __contextionary_module {
    ($n:ident, $v:ident, $new:ident, $help:ident, $parts:ident, $parts15:ident) => {
        $crate::ContextionaryModule {
            plugin_name: $n,
            interface_version: $v,
            new_contextionary: $new,
            config_help: $help,
        }
    };
}
