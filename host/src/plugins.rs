//! Finding and loading plugin libraries, and the host-side handles to them.
//!
//! Owns: the plugin directory scan, name lookup, duplicate detection, the logging callback the
//! plugins write through, and [`ConnectorHandle`] — the only way the rest of the host reaches
//! storage. Must not know: HTTP, the ontology, how any particular connector stores data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use abi_stable::std_types::{RStr, RString, RVec};
use weft_plugin_api::loader::{self, LoadError, LoadedPlugin};
use weft_plugin_api::*;

/// The directory plugins are looked up in when none is configured: the one holding `weft`.
pub fn default_plugin_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."))
}

extern "C" fn host_log(level: LogLevel, plugin: RStr<'_>, message: RStr<'_>) {
    let (plugin, message) = (plugin.as_str(), message.as_str());
    match level {
        LogLevel::Error => tracing::error!(target: "weft::plugin", plugin, "{message}"),
        LogLevel::Warn => tracing::warn!(target: "weft::plugin", plugin, "{message}"),
        LogLevel::Info => tracing::info!(target: "weft::plugin", plugin, "{message}"),
        LogLevel::Debug => tracing::debug!(target: "weft::plugin", plugin, "{message}"),
        LogLevel::Trace => tracing::trace!(target: "weft::plugin", plugin, "{message}"),
    }
}

/// The callback handed to every plugin: its lines land in the host's log under its name.
pub fn host_logger() -> HostLogger {
    HostLogger { log: host_log }
}

/// Loads one file, logging abi_stable's full explanation (possibly a 20–30 KB layout dump) at
/// debug level only; the error itself is one line.
pub fn load_file(path: &Path) -> Result<LoadedPlugin, LoadError> {
    loader::load(path).inspect_err(|e| {
        if let Some(detail) = &e.detail {
            tracing::debug!(path = %path.display(), "full loader error: {detail}");
        }
    })
}

fn is_library(path: &Path) -> bool {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    path.is_file() && matches!(ext, "so" | "dylib" | "dll")
}

/// Every plugin found in `dir`, keyed by declared name. Libraries that are not Weft plugins are
/// skipped (logged at debug); two plugins declaring one name is an error naming both files.
pub fn scan(dir: &Path) -> anyhow::Result<BTreeMap<String, LoadedPlugin>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        anyhow::anyhow!(
            "plugin directory {}: cannot read it ({e}); set plugin_dir or --plugin-dir to the directory holding the plugin .so files",
            dir.display()
        )
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_library(p))
        .collect();
    paths.sort();
    let mut found: BTreeMap<String, LoadedPlugin> = BTreeMap::new();
    for path in paths {
        match load_file(&path) {
            Ok(p) => {
                if let Some(first) = found.get(&p.name) {
                    anyhow::bail!(
                        "two plugins declare the name {:?}: {} and {}; remove one from {}",
                        p.name,
                        first.path.display(),
                        p.path.display(),
                        dir.display()
                    );
                }
                found.insert(p.name.clone(), p);
            }
            Err(e) => tracing::debug!("skipping {e}"),
        }
    }
    Ok(found)
}

/// The plugin named `name` of `kind` in `dir`, or a one-line error saying what to do.
pub fn find(dir: &Path, name: &str, kind: PluginKind) -> anyhow::Result<LoadedPlugin> {
    let mut all = scan(dir)?;
    match all.remove(name) {
        Some(p) if p.kind == kind => Ok(p),
        Some(p) => anyhow::bail!(
            "plugin {:?} ({}) is a {}, but a {kind} is needed here; name a {kind} plugin",
            name,
            p.path.display(),
            p.kind
        ),
        None => {
            let known: Vec<String> = all
                .values()
                .filter(|p| p.kind == kind)
                .map(|p| p.name.clone())
                .collect();
            anyhow::bail!(
                "no {kind} plugin named {name:?} in {} (found: {}); build it (cargo build --workspace) or point plugin_dir / --plugin-dir at it",
                dir.display(),
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            )
        }
    }
}

/// A connector as the host uses it: the ABI object plus what the plugin declared. Cheap to clone.
#[derive(Clone)]
pub struct ConnectorHandle {
    inner: Option<Arc<ConnectorBox>>,
    /// The plugin's declared name.
    pub name: Arc<str>,
    /// Its declared capabilities.
    pub capabilities: Capabilities,
}

impl ConnectorHandle {
    /// Builds a connector from a loaded plugin and its JSON config.
    pub fn open(plugin: &LoadedPlugin, config: &serde_json::Value) -> anyhow::Result<Self> {
        let conn = plugin
            .new_connector(&config.to_string(), host_logger())
            .map_err(|e| {
                anyhow::anyhow!(
                    "connector {:?} refused its database_config: {}",
                    plugin.name,
                    e.message
                )
            })?;
        Ok(Self::from_box(conn, &plugin.name, plugin.capabilities))
    }

    /// Wraps an ABI object (e.g. one linked statically).
    pub fn from_box(conn: ConnectorBox, name: &str, capabilities: Capabilities) -> Self {
        ConnectorHandle {
            inner: Some(Arc::new(conn)),
            name: Arc::from(name),
            capabilities,
        }
    }

    /// A handle with no connector behind it: every call answers `Unavailable`. Used where
    /// state is needed only for its shape (printing the OpenAPI document).
    pub fn unavailable() -> Self {
        ConnectorHandle {
            inner: None,
            name: Arc::from("none"),
            capabilities: Capabilities::empty(),
        }
    }

    fn conn(&self) -> PluginResult<&ConnectorBox> {
        self.inner
            .as_deref()
            .ok_or_else(|| PluginError::unavailable("no connector is loaded"))
    }

    /// Whether the connector declared `c`.
    pub fn has(&self, c: Capabilities) -> bool {
        self.capabilities.contains(c)
    }

    /// [`Connector::create_object`].
    pub async fn create_object(&self, o: StoredObject) -> PluginResult<()> {
        self.conn()?.create_object(o).await.into_result()
    }
    /// [`Connector::get_object`].
    pub async fn get_object(&self, kind: ObjectKind, id: Id) -> PluginResult<Option<StoredObject>> {
        Ok(self
            .conn()?
            .get_object(kind, id)
            .await
            .into_result()?
            .into_option())
    }
    /// [`Connector::get_objects`].
    pub async fn get_objects(
        &self,
        kind: ObjectKind,
        ids: Vec<Id>,
    ) -> PluginResult<Vec<Option<StoredObject>>> {
        let r = self
            .conn()?
            .get_objects(kind, RVec::from(ids))
            .await
            .into_result()?;
        Ok(r.into_iter().map(|o| o.into_option()).collect())
    }
    /// [`Connector::query_objects`].
    pub async fn query_objects(&self, q: ObjectQuery) -> PluginResult<ObjectPage> {
        self.conn()?.query_objects(q).await.into_result()
    }
    /// [`Connector::update_object`].
    pub async fn update_object(&self, o: StoredObject) -> PluginResult<()> {
        self.conn()?.update_object(o).await.into_result()
    }
    /// [`Connector::delete_object`].
    pub async fn delete_object(&self, kind: ObjectKind, id: Id) -> PluginResult<()> {
        self.conn()?.delete_object(kind, id).await.into_result()
    }
    /// [`Connector::object_history`].
    pub async fn object_history(&self, kind: ObjectKind, id: Id) -> PluginResult<ObjectHistory> {
        self.conn()?.object_history(kind, id).await.into_result()
    }
    /// [`Connector::aggregate`].
    pub async fn aggregate(&self, q: ObjectQuery, request_json: String) -> PluginResult<String> {
        Ok(self
            .conn()?
            .aggregate(q, RString::from(request_json))
            .await
            .into_result()?
            .into_string())
    }
    /// [`Connector::add_key`].
    pub async fn add_key(&self, k: StoredKey) -> PluginResult<()> {
        self.conn()?.add_key(k).await.into_result()
    }
    /// [`Connector::get_key`].
    pub async fn get_key(&self, id: Id) -> PluginResult<Option<StoredKey>> {
        Ok(self.conn()?.get_key(id).await.into_result()?.into_option())
    }
    /// [`Connector::key_children`].
    pub async fn key_children(&self, id: Id) -> PluginResult<Vec<StoredKey>> {
        Ok(self
            .conn()?
            .key_children(id)
            .await
            .into_result()?
            .into_vec())
    }
    /// [`Connector::root_keys`].
    pub async fn root_keys(&self) -> PluginResult<Vec<StoredKey>> {
        Ok(self.conn()?.root_keys().await.into_result()?.into_vec())
    }
    /// [`Connector::update_key`].
    pub async fn update_key(&self, k: StoredKey) -> PluginResult<()> {
        self.conn()?.update_key(k).await.into_result()
    }
    /// [`Connector::delete_key`].
    pub async fn delete_key(&self, id: Id) -> PluginResult<Vec<Id>> {
        Ok(self.conn()?.delete_key(id).await.into_result()?.into_vec())
    }
    /// [`Connector::get_document`].
    pub async fn get_document(&self, d: DocumentName) -> PluginResult<VersionedDocument> {
        self.conn()?.get_document(d).await.into_result()
    }
    /// [`Connector::put_document`].
    pub async fn put_document(
        &self,
        d: DocumentName,
        json: String,
        expected: u64,
    ) -> PluginResult<u64> {
        self.conn()?
            .put_document(d, RString::from(json), expected)
            .await
            .into_result()
    }
}

/// `weft plugins check FILE…`: one line per file, `Ok(true)` when every file loaded and no
/// two declare the same name.
pub fn check_files(files: &[PathBuf], out: &mut impl std::io::Write) -> std::io::Result<bool> {
    let mut all_ok = true;
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for f in files {
        match load_file(f) {
            Ok(p) => {
                if let Some(first) = seen.get(&p.name) {
                    all_ok = false;
                    writeln!(
                        out,
                        "error: plugin {}: declares the name {:?}, already declared by {}; a plugin directory must hold one plugin per name, remove one",
                        f.display(),
                        p.name,
                        first.display()
                    )?;
                    continue;
                }
                seen.insert(p.name.clone(), f.clone());
                let caps = p.capabilities.names();
                writeln!(
                    out,
                    "ok: {}: name={} kind={} interface={} capabilities={}",
                    f.display(),
                    p.name,
                    p.kind,
                    p.interface_version,
                    if caps.is_empty() {
                        "none".to_string()
                    } else {
                        caps.join(",")
                    }
                )?;
                if let Some(help) = &p.config_help {
                    writeln!(out, "    config: {help}")?;
                }
            }
            Err(e) => {
                all_ok = false;
                writeln!(out, "error: {e}")?;
            }
        }
    }
    Ok(all_ok)
}

/// A contextionary as the host uses it. Cheap to clone.
#[derive(Clone)]
pub struct ContextionaryHandle {
    inner: Arc<ContextionaryBox>,
    /// The plugin's declared name.
    pub name: Arc<str>,
}

impl ContextionaryHandle {
    /// Builds a contextionary from a loaded plugin and its JSON config.
    pub fn open(plugin: &LoadedPlugin, config: &serde_json::Value) -> anyhow::Result<Self> {
        let c = plugin
            .new_contextionary(&config.to_string(), host_logger())
            .map_err(|e| {
                anyhow::anyhow!(
                    "contextionary {:?} refused its config: {}",
                    plugin.name,
                    e.message
                )
            })?;
        Ok(Self::from_box(c, &plugin.name))
    }

    /// Wraps an ABI object (e.g. one linked statically).
    pub fn from_box(c: ContextionaryBox, name: &str) -> Self {
        ContextionaryHandle {
            inner: Arc::new(c),
            name: Arc::from(name),
        }
    }

    /// Length of every vector.
    pub fn dimensions(&self) -> u32 {
        self.inner.dimensions()
    }
    /// Number of known words.
    pub fn vocabulary_size(&self) -> u64 {
        self.inner.vocabulary_size()
    }
    /// Whether `word` is known (looked up lower-cased).
    pub fn contains(&self, word: &str) -> bool {
        self.inner.contains(RStr::from_str(&word.to_lowercase()))
    }
    /// The vector of `word` (lower-cased), if known.
    pub fn vector(&self, word: &str) -> Option<Vec<f32>> {
        self.inner
            .vector(RStr::from_str(&word.to_lowercase()))
            .into_option()
            .map(RVec::into_vec)
    }
    /// The `k` words nearest to `word` (lower-cased).
    pub fn nearest_to_word(&self, word: &str, k: u32) -> PluginResult<Vec<WordDistance>> {
        self.inner
            .nearest_to_word(RStr::from_str(&word.to_lowercase()), k, false)
            .into_result()
            .map(RVec::into_vec)
    }
    /// The `k` words nearest to `vector`.
    pub fn nearest_to_vector(&self, vector: &[f32], k: u32) -> PluginResult<Vec<WordDistance>> {
        self.inner
            .nearest_to_vector(abi_stable::std_types::RSlice::from_slice(vector), k, false)
            .into_result()
            .map(RVec::into_vec)
    }
    /// A hex digest of the embeddings (`md5` or `sha256`).
    pub fn content_hash(&self, algorithm: &str) -> PluginResult<String> {
        self.inner
            .content_hash(RStr::from_str(algorithm))
            .into_result()
            .map(RString::into_string)
    }
}
