//! Finding plugin libraries on disk: the directory scan, lookup by name, `weft plugins check`.
//!
//! Owns: the plugin directory scan, name lookup, duplicate detection and `weft plugins check`.
//! The handles the rest of the host reaches plugins through are `weft-core`'s. Must not know:
//! HTTP, the ontology, how any particular connector stores data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use weft_plugin_api::*;
use weft_plugin_loader as loader;
pub use weft_plugin_loader::{LoadError, LoadedPlugin};

/// The directory plugins are looked up in when none is configured: the one holding `weft`.
pub fn default_plugin_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."))
}

pub use weft_core::plugin_log::host_logger;

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
