//! `weft-plugin-loader`: how the Weft host opens a plugin library from disk, with one-line errors.
//!
//! Owns: opening a library (`lib_header_from_path` + `init_root_module`, never
//! `RootModule::load_from_file`, which caches one module per type, so a second connector file
//! would silently return the first), telling its kind from its root module's name, checking its
//! interface version and layout — a plugin of another major version, or of the same version with
//! another layout, is refused in one line naming both versions, abi_stable's layout dump kept
//! in [`LoadError::detail`] for the debug log — and opening a connector or contextionary with every
//! ABI object its plugin has ([`LoadedPlugin::open_connector`], [`LoadedPlugin::open_contextionary`]).
//! Keeps the compatibility promise of `weft-plugin-api` for plugins older by a minor version:
//! abi_stable only accepts libraries at least as new as the loader, so [`load`] checks their
//! layout in the reverse direction itself (see `init`).
//!
//! Used by the host (`weft-core`'s handles, the `weft` binary's plugin directory scan), the
//! conformance kit (which loads a connector's `.so` exactly as the host does) and tests.
//!
//! Must not know: any particular plugin, HTTP, configuration files. And no plugin links it: a
//! plugin's dependency tree holds `weft-plugin-api` and `weft-connector-sdk`, never this crate
//! (`plugins/sdk/tests/dependency_tree.rs` checks it).

use std::fmt;
use std::path::{Path, PathBuf};

use abi_stable::library::{lib_header_from_path, LibHeader, LibraryError};
use abi_stable::std_types::RStr;

use weft_plugin_api::module::{CONNECTOR_MODULE_NAME, CONTEXTIONARY_MODULE_NAME};
use weft_plugin_api::{
    Capabilities, ConnectorBox, ConnectorModuleRef, ConnectorParts, ConnectorParts13,
    ConnectorParts14, ConnectorParts15, ContextionaryBox, ContextionaryModuleRef,
    ContextionaryParts, ContextionaryParts15, HostLogger, OpenedConnector, OpenedContextionary,
    PluginError, PluginKind, INTERFACE_VERSION,
};

/// Why a library could not be loaded. `Display` is the one line for the user; `detail` holds
/// what abi_stable said (a layout dump can be 20–30 KB) for the debug log.
#[derive(Debug, Clone)]
pub struct LoadError {
    /// The file.
    pub path: PathBuf,
    /// One line: what is wrong and what to do.
    pub message: String,
    /// The full underlying error, if any.
    pub detail: Option<String>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "plugin {}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for LoadError {}

#[derive(Clone, Copy)]
enum Module {
    Connector(ConnectorModuleRef),
    Contextionary(ContextionaryModuleRef),
}

/// A loaded plugin library. The library stays loaded for the life of the process.
#[derive(Clone)]
pub struct LoadedPlugin {
    /// Where it was loaded from.
    pub path: PathBuf,
    /// Its declared name.
    pub name: String,
    /// Connector or contextionary.
    pub kind: PluginKind,
    /// The `weft-plugin-api` version it was built against.
    pub interface_version: String,
    /// Declared capabilities (connectors; empty for contextionaries).
    pub capabilities: Capabilities,
    /// Help text for its config keys (`None` for plugins built against interface 1.0).
    pub config_help: Option<String>,
    module: Module,
}

impl fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("path", &self.path)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("interface_version", &self.interface_version)
            .field("capabilities", &self.capabilities)
            .finish()
    }
}

fn major(v: &str) -> &str {
    v.split('.').next().unwrap_or(v)
}

/// Loads the plugin library at `path`.
pub fn load(path: &Path) -> Result<LoadedPlugin, LoadError> {
    let err = |message: String, detail: Option<String>| LoadError {
        path: path.to_path_buf(),
        message,
        detail,
    };
    if !path.exists() {
        return Err(err(
            "no such file; check the path (or plugin_dir / --plugin-dir), and build the plugin first".into(),
            None,
        ));
    }
    if path.is_dir() {
        return Err(err(
            "is a directory, not a plugin library (.so)".into(),
            None,
        ));
    }
    let header: &'static LibHeader = lib_header_from_path(path).map_err(|e| match e {
        LibraryError::OpenError { .. } => err(
            "is not a loadable shared library; a Weft plugin is a cdylib (.so) built with weft-plugin-api".into(),
            Some(e.to_string()),
        ),
        LibraryError::GetSymbolError { .. } => err(
            "is a shared library but not a Weft plugin (no abi_stable root module); export one with weft_plugin_api::export_connector! or export_contextionary!".into(),
            Some(e.to_string()),
        ),
        LibraryError::InvalidAbiHeader(_) => err(
            "was built with an incompatible abi_stable version; rebuild it against this host's weft-plugin-api".into(),
            Some(e.to_string()),
        ),
        other => err(format!("cannot be loaded: {}", first_line(&other.to_string())), Some(other.to_string())),
    })?;

    let consts = header.root_mod_consts();
    let module_name = consts.name().as_str();
    let theirs = consts.version_strings().to_string();
    let ours = INTERFACE_VERSION;
    let kind = match module_name {
        CONNECTOR_MODULE_NAME => PluginKind::Connector,
        CONTEXTIONARY_MODULE_NAME => PluginKind::Contextionary,
        other => {
            return Err(err(
                format!(
                    "is an abi_stable library but not a Weft plugin (its root module is {other:?})"
                ),
                None,
            ))
        }
    };
    let mismatch = |detail: Option<String>| {
        let message = if theirs == ours {
            format!("built against weft-plugin-api {theirs}, this host speaks {ours}, but their types differ (a modified copy of weft-plugin-api?); rebuild it against the unmodified weft-plugin-api {ours}")
        } else {
            format!("built against weft-plugin-api {theirs}, this host speaks {ours}; rebuild it against weft-plugin-api {}.x", major(ours))
        };
        err(message, detail)
    };
    if major(&theirs) != major(ours) {
        return Err(mismatch(None));
    }
    let older = is_older_minor(&theirs, ours);
    let module = match kind {
        PluginKind::Connector => Module::Connector(
            init::<ConnectorModuleRef>(header, older).map_err(|e| mismatch(Some(e)))?,
        ),
        PluginKind::Contextionary => Module::Contextionary(
            init::<ContextionaryModuleRef>(header, older).map_err(|e| mismatch(Some(e)))?,
        ),
    };
    let (name, interface_version, capabilities, config_help) = match module {
        Module::Connector(m) => (
            (m.plugin_name())(),
            (m.interface_version())(),
            (m.capabilities())(),
            connector_help(m),
        ),
        Module::Contextionary(m) => (
            (m.plugin_name())(),
            (m.interface_version())(),
            Capabilities::empty(),
            contextionary_help(m),
        ),
    };
    Ok(LoadedPlugin {
        path: path.to_path_buf(),
        name: name.to_string(),
        kind,
        interface_version: interface_version.to_string(),
        capabilities,
        config_help,
        module,
    })
}

/// `config_help` (added in 1.1): `None` for a plugin built against 1.0.
fn connector_help(m: ConnectorModuleRef) -> Option<String> {
    m.config_help().map(|f| f().to_string())
}

/// `config_help` (added in 1.1): `None` for a plugin built against 1.0.
fn contextionary_help(m: ContextionaryModuleRef) -> Option<String> {
    m.config_help().map(|f| f().to_string())
}

/// The signature of `new_connector_parts` (added in 1.2).
type NewConnectorParts =
    extern "C" fn(
        RStr<'_>,
        HostLogger,
    ) -> abi_stable::std_types::RResult<ConnectorParts, PluginError>;
/// The signature of `new_connector_parts_1_3` (added in 1.3).
type NewConnectorParts13 =
    extern "C" fn(
        RStr<'_>,
        HostLogger,
    ) -> abi_stable::std_types::RResult<ConnectorParts13, PluginError>;
/// The signature of `new_connector_parts_1_4` (added in 1.4).
type NewConnectorParts14 =
    extern "C" fn(
        RStr<'_>,
        HostLogger,
    ) -> abi_stable::std_types::RResult<ConnectorParts14, PluginError>;
/// The signature of `new_connector_parts_1_5` (added in 1.5).
type NewConnectorParts15 =
    extern "C" fn(
        RStr<'_>,
        HostLogger,
    ) -> abi_stable::std_types::RResult<ConnectorParts15, PluginError>;
/// The signature of `new_contextionary_parts_1_5` (added in 1.5).
type NewContextionaryParts15 =
    extern "C" fn(
        RStr<'_>,
        HostLogger,
    ) -> abi_stable::std_types::RResult<ContextionaryParts15, PluginError>;
/// The signature of `new_contextionary_parts` (added in 1.2).
type NewContextionaryParts =
    extern "C" fn(
        RStr<'_>,
        HostLogger,
    ) -> abi_stable::std_types::RResult<ContextionaryParts, PluginError>;

/// `new_connector_parts` (added in 1.2): `None` for a plugin built before it.
fn connector_parts_fn(m: ConnectorModuleRef) -> Option<NewConnectorParts> {
    m.new_connector_parts()
}

/// `new_contextionary_parts` (added in 1.2): `None` for a plugin built before it.
fn contextionary_parts_fn(m: ContextionaryModuleRef) -> Option<NewContextionaryParts> {
    m.new_contextionary_parts()
}

/// `new_connector_parts_1_3` (added in 1.3): `None` for a plugin built before it.
fn connector_parts_13_fn(m: ConnectorModuleRef) -> Option<NewConnectorParts13> {
    m.new_connector_parts_1_3()
}

/// `new_connector_parts_1_4` (added in 1.4): `None` for a plugin built before it.
fn connector_parts_14_fn(m: ConnectorModuleRef) -> Option<NewConnectorParts14> {
    m.new_connector_parts_1_4()
}

/// `new_connector_parts_1_5` (added in 1.5): `None` for a plugin built before it.
fn connector_parts_15_fn(m: ConnectorModuleRef) -> Option<NewConnectorParts15> {
    m.new_connector_parts_1_5()
}

/// `new_contextionary_parts_1_5` (added in 1.5): `None` for a plugin built before it.
fn contextionary_parts_15_fn(m: ContextionaryModuleRef) -> Option<NewContextionaryParts15> {
    m.new_contextionary_parts_1_5()
}

/// Whether `theirs` has the same major but a lower minor version than `ours`.
fn is_older_minor(theirs: &str, ours: &str) -> bool {
    let minor = |v: &str| -> u64 {
        v.split('.')
            .nth(1)
            .and_then(|m| m.parse().ok())
            .unwrap_or(0)
    };
    major(theirs) == major(ours) && minor(theirs) < minor(ours)
}

/// Initialises the root module, checking its layout.
///
/// abi_stable checks a root module as "the library may have *more* prefix-type fields than the
/// loader": a newer plugin loads in an older host. The other direction — a plugin built against
/// an older minor interface, which lacks the fields a newer host added after
/// `last_prefix_field` — it refuses ("too many fields"), although the prefix type is made for it
/// (`missing_field(option)` answers `None` for a field the library lacks). So for an older-minor
/// plugin the loader runs the same layout check the other way round (the plugin's layout as the
/// interface, the host's as the implementation: every field the plugin has must match the
/// host's), and then initialises without abi_stable's own check.
fn init<M>(header: &'static LibHeader, older_minor: bool) -> Result<M, String>
where
    M: abi_stable::library::RootModule + abi_stable::StableAbi,
{
    if !older_minor {
        return header.init_root_module::<M>().map_err(|e| e.to_string());
    }
    let theirs = header
        .layout()
        .ok_or_else(|| "the library exports no root-module layout to check".to_string())?;
    abi_stable::abi_stability::abi_checking::check_layout_compatibility(theirs, M::LAYOUT)
        .map_err(|e| e.to_string())?;
    // SAFETY: the layout was checked just above, field by field, in the direction that fits
    // a library older than this host; the fields it lacks are read through `Option` accessors.
    unsafe { header.init_root_module_with_unchecked_layout::<M>() }.map_err(|e| e.to_string())
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

impl LoadedPlugin {
    /// Builds a connector from `config_json`. An `Invalid` error when this is a contextionary.
    pub fn new_connector(
        &self,
        config_json: &str,
        log: HostLogger,
    ) -> Result<ConnectorBox, PluginError> {
        let m = self.connector_module()?;
        (m.new_connector())(RStr::from_str(config_json), log).into_result()
    }

    /// **Added in 1.2.** Builds a connector from `config_json` with every ABI object its
    /// plugin has: through the root module's `new_connector_parts_1_5` when the plugin has it
    /// (built against 1.5 or later: every object is `Some`), else `new_connector_parts_1_4`
    /// (1.4: no `vectors`), else `new_connector_parts_1_3`
    /// (1.3: `versions` and `maintenance`, no `migration`), else through
    /// `new_connector_parts` (1.2: `versions` only), else through `new_connector`. An `Invalid` error when this is a contextionary.
    pub fn open_connector(
        &self,
        config_json: &str,
        log: HostLogger,
    ) -> Result<OpenedConnector, PluginError> {
        let m = self.connector_module()?;
        let config = RStr::from_str(config_json);
        if let Some(parts) = connector_parts_15_fn(m) {
            return parts(config, log).into_result().map(OpenedConnector::from);
        }
        if let Some(parts) = connector_parts_14_fn(m) {
            return parts(config, log).into_result().map(OpenedConnector::from);
        }
        if let Some(parts) = connector_parts_13_fn(m) {
            return parts(config, log).into_result().map(OpenedConnector::from);
        }
        match connector_parts_fn(m) {
            Some(parts) => parts(config, log).into_result().map(OpenedConnector::from),
            None => (m.new_connector())(config, log)
                .into_result()
                .map(OpenedConnector::from),
        }
    }

    /// Builds a contextionary from `config_json`. An `Invalid` error when this is a connector.
    pub fn new_contextionary(
        &self,
        config_json: &str,
        log: HostLogger,
    ) -> Result<ContextionaryBox, PluginError> {
        let m = self.contextionary_module()?;
        (m.new_contextionary())(RStr::from_str(config_json), log).into_result()
    }

    /// **Added in 1.2.** Builds a contextionary from `config_json` with every ABI object its
    /// plugin has: through `new_contextionary_parts_1_5` when the plugin has it (every object
    /// `Some`), else `new_contextionary_parts` (`lookups` is then `Some`, `words` `None`), else
    /// through `new_contextionary` with neither. An `Invalid` error when this is a connector.
    pub fn open_contextionary(
        &self,
        config_json: &str,
        log: HostLogger,
    ) -> Result<OpenedContextionary, PluginError> {
        let m = self.contextionary_module()?;
        let config = RStr::from_str(config_json);
        if let Some(parts) = contextionary_parts_15_fn(m) {
            return parts(config, log)
                .into_result()
                .map(OpenedContextionary::from);
        }
        match contextionary_parts_fn(m) {
            Some(parts) => parts(config, log)
                .into_result()
                .map(OpenedContextionary::from),
            None => (m.new_contextionary())(config, log)
                .into_result()
                .map(OpenedContextionary::from),
        }
    }

    fn connector_module(&self) -> Result<ConnectorModuleRef, PluginError> {
        match self.module {
            Module::Connector(m) => Ok(m),
            Module::Contextionary(_) => Err(PluginError::invalid(format!(
                "plugin {} ({}) is a contextionary, not a connector; name a connector in database.name",
                self.name,
                self.path.display()
            ))),
        }
    }

    fn contextionary_module(&self) -> Result<ContextionaryModuleRef, PluginError> {
        match self.module {
            Module::Contextionary(m) => Ok(m),
            Module::Connector(_) => Err(PluginError::invalid(format!(
                "plugin {} ({}) is a connector, not a contextionary; name a contextionary in contextionary.name",
                self.name,
                self.path.display()
            ))),
        }
    }
}
