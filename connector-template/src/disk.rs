//! The files on disk: their JSON formats, atomic writes and error mapping.
//!
//! Nothing here knows the connector contract; [`crate::store`] decides what to write when.
//!
//! Every write goes to a temporary file in the same directory (`.<name>.<pid>-<n>.tmp`), which
//! is flushed to disk (`fsync`, unless the config turns it off) and then renamed over the real
//! file. A rename within one directory is atomic on POSIX file systems: a reader, or a restart
//! after a crash, sees the old file or the new one, never half of one. Listings skip names
//! starting with `.`, and [`remove_stale_temp_files`] deletes what a crash left behind.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use abi_stable::std_types::{ROption, RString, RVec};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use weft_plugin_api::{Id, ObjectKind, ObjectVersion, PluginError, PluginResult, StoredKey};
use weft_plugin_api::{StoredObject, VersionedDocument};

/// The on-disk format version written into the store's marker file. Bump it when the files
/// change shape, and teach [`crate::store::JsonFileStore::open`] to read (or refuse) older stores.
pub const FORMAT: u32 = 1;

/// `<root>/weft-store.json`: marks a directory as a store of this connector.
#[derive(Serialize, Deserialize, Debug)]
pub struct Marker {
    /// [`FORMAT`] of the files.
    pub format: u32,
    /// The plugin that created the store (informational).
    pub plugin: String,
}

/// `<root>/things/<id>.json` (or `actions/`): one object's whole life in one file, so that an
/// update, the archiving of the previous version and the new version number are one atomic
/// write.
#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ObjectFile {
    /// The current version; `None` once deleted (the file stays, so the id is never reused).
    pub current: Option<ObjectRecord>,
    /// The version number of `current` (`VERSIONED_WRITES`): 1 when created, one more per
    /// update. A file written before the connector kept versions has none and reads as 1, so
    /// old stores stay readable (and the format number unchanged).
    #[serde(default = "first_version")]
    pub version: u64,
    /// Earlier versions, **oldest first** (answered newest first).
    #[serde(default)]
    pub history: Vec<VersionRecord>,
}

fn first_version() -> u64 {
    weft_connector_sdk::support::FIRST_VERSION
}

/// One version of an object. The property bag is stored as JSON (not as a string), so the
/// files are readable.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRecord {
    id: String,
    class: String,
    #[serde(default)]
    context: String,
    owner: String,
    created_ms: i64,
    updated_ms: i64,
    properties: Value,
}

/// An archived version and when it was replaced or deleted.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct VersionRecord {
    archived_ms: i64,
    object: ObjectRecord,
}

/// `<root>/keys/<id>.json`: one key of the key tree.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct KeyRecord {
    id: String,
    parent: Option<String>,
    token_hash: String,
    email: String,
    ip_origin: Vec<String>,
    expires_ms: i64,
    read: bool,
    write: bool,
    delete: bool,
    execute: bool,
    created_ms: i64,
}

/// `<root>/documents/<name>.json`: a versioned document (ontology, connector state).
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct DocumentRecord {
    /// 0 when never written.
    pub version: u64,
    /// The document's JSON text, kept verbatim.
    pub json: String,
}

/// Parses an id written by this connector; a bad one means the file was changed by hand.
fn parse_id(text: &str, file: &Path) -> PluginResult<Id> {
    text.parse().map_err(|e| {
        PluginError::internal(format!(
            "{}: {text:?} is not an id ({e}); was the file edited by hand?",
            file.display()
        ))
    })
}

impl ObjectRecord {
    /// The record of `object`. `Invalid` when its property bag is not JSON.
    pub fn from_stored(object: &StoredObject) -> PluginResult<Self> {
        let properties = serde_json::from_str(&object.properties_json).map_err(|e| {
            PluginError::invalid(format!(
                "the properties of {} {} are not valid JSON: {e}",
                object.kind.as_str(),
                object.id
            ))
        })?;
        Ok(ObjectRecord {
            id: object.id.to_string(),
            class: object.class.to_string(),
            context: object.context.to_string(),
            owner: object.owner.to_string(),
            created_ms: object.created_ms,
            updated_ms: object.updated_ms,
            properties,
        })
    }

    /// The envelope the host gets back. `file` is named in errors.
    pub fn to_stored(&self, kind: ObjectKind, file: &Path) -> PluginResult<StoredObject> {
        Ok(StoredObject {
            kind,
            id: parse_id(&self.id, file)?,
            class: RString::from(self.class.as_str()),
            context: RString::from(self.context.as_str()),
            owner: parse_id(&self.owner, file)?,
            created_ms: self.created_ms,
            updated_ms: self.updated_ms,
            properties_json: RString::from(self.properties.to_string()),
        })
    }
}

impl VersionRecord {
    /// `object` archived at `archived_ms`.
    pub fn new(object: ObjectRecord, archived_ms: i64) -> Self {
        VersionRecord {
            archived_ms,
            object,
        }
    }

    /// The envelope the host gets back.
    pub fn to_version(&self, kind: ObjectKind, file: &Path) -> PluginResult<ObjectVersion> {
        Ok(ObjectVersion {
            object: self.object.to_stored(kind, file)?,
            archived_ms: self.archived_ms,
        })
    }
}

impl KeyRecord {
    /// The record of `key`.
    pub fn from_stored(key: &StoredKey) -> Self {
        KeyRecord {
            id: key.id.to_string(),
            parent: key.parent.as_ref().map(|p| p.to_string()).into_option(),
            token_hash: key.token_hash.to_string(),
            email: key.email.to_string(),
            ip_origin: key.ip_origin.iter().map(|r| r.to_string()).collect(),
            expires_ms: key.expires_ms,
            read: key.read,
            write: key.write,
            delete: key.delete,
            execute: key.execute,
            created_ms: key.created_ms,
        }
    }

    /// The envelope the host gets back. `file` is named in errors.
    pub fn to_stored(&self, file: &Path) -> PluginResult<StoredKey> {
        let parent = match &self.parent {
            Some(p) => ROption::RSome(parse_id(p, file)?),
            None => ROption::RNone,
        };
        Ok(StoredKey {
            id: parse_id(&self.id, file)?,
            parent,
            token_hash: RString::from(self.token_hash.as_str()),
            email: RString::from(self.email.as_str()),
            ip_origin: self
                .ip_origin
                .iter()
                .map(|r| RString::from(r.as_str()))
                .collect::<RVec<_>>(),
            expires_ms: self.expires_ms,
            read: self.read,
            write: self.write,
            delete: self.delete,
            execute: self.execute,
            created_ms: self.created_ms,
        })
    }
}

impl DocumentRecord {
    /// The envelope the host gets back.
    pub fn to_document(&self) -> VersionedDocument {
        VersionedDocument {
            json: RString::from(self.json.as_str()),
            version: self.version,
        }
    }
}

/// An I/O failure as the host should see it: `Unavailable` (the disk may come back; retrying
/// may help), naming what was being done and the file.
pub fn io_error(what: &str, path: &Path, e: &io::Error) -> PluginError {
    PluginError::unavailable(format!("cannot {what} {}: {e}", path.display()))
}

/// Reads and parses a JSON file; `None` when it does not exist. A file that does not parse is
/// `Internal` (it was written by this connector, so someone else changed it).
pub fn read_json<T: DeserializeOwned>(path: &Path) -> PluginResult<Option<T>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("read", path, &e)),
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        PluginError::internal(format!(
            "{} is not a valid file of this store ({e}); was it edited by hand?",
            path.display()
        ))
    })
}

/// Writes `value` as JSON to `path` atomically (temporary file, fsync, rename, fsync of the
/// directory). On any error the old file is unchanged and the temporary file removed.
pub fn write_json<T: Serialize>(path: &Path, value: &T, fsync: bool) -> PluginResult<()> {
    let bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| PluginError::internal(format!("cannot encode {}: {e}", path.display())))?;
    write_atomic(path, &bytes, fsync).map_err(|e| io_error("write", path, &e))
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn write_atomic(path: &Path, bytes: &[u8], fsync: bool) -> io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = dir.join(format!(".{name}.{}-{n}.tmp", std::process::id()));
    let result = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        if fsync {
            file.sync_all()?;
        }
        drop(file);
        fs::rename(&temp, path)?;
        if fsync {
            sync_dir(dir)?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Removes a file (already gone is fine), making the removal durable when `fsync` is set.
pub fn remove(path: &Path, fsync: bool) -> PluginResult<()> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error("delete", path, &e)),
    }
    if fsync {
        if let Some(dir) = path.parent() {
            sync_dir(dir).map_err(|e| io_error("sync the directory", dir, &e))?;
        }
    }
    Ok(())
}

/// Makes a directory's entries (a rename, a removal) durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The data files (`*.json`, not hidden) in `dir`, sorted by name.
pub fn list_json(dir: &Path) -> PluginResult<Vec<PathBuf>> {
    let entries = fs::read_dir(dir).map_err(|e| io_error("list", dir, &e))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_error("list", dir, &e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with('.') && name.ends_with(".json") {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// Deletes the temporary files an interrupted write left in `dir`; answers how many.
pub fn remove_stale_temp_files(dir: &Path) -> PluginResult<usize> {
    let entries = fs::read_dir(dir).map_err(|e| io_error("list", dir, &e))?;
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|e| io_error("list", dir, &e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(".tmp") {
            let path = entry.path();
            fs::remove_file(&path).map_err(|e| io_error("delete", &path, &e))?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("weft-template-disk-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_file() {
        let dir = scratch("write");
        let file = dir.join("a.json");
        write_json(&file, &DocumentRecord::default(), true).unwrap();
        let doc = DocumentRecord {
            version: 2,
            json: "{\"x\":1}".into(),
        };
        write_json(&file, &doc, false).unwrap();
        let back: DocumentRecord = read_json(&file).unwrap().unwrap();
        assert_eq!((back.version, back.json.as_str()), (2, "{\"x\":1}"));
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "only a.json");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn listing_skips_temp_files_and_cleanup_removes_them() {
        let dir = scratch("list");
        fs::write(dir.join("b.json"), "{}").unwrap();
        fs::write(dir.join(".b.json.1-0.tmp"), "{half").unwrap();
        fs::write(dir.join("notes.txt"), "").unwrap();
        assert_eq!(list_json(&dir).unwrap(), vec![dir.join("b.json")]);
        assert_eq!(remove_stale_temp_files(&dir).unwrap(), 1);
        assert!(!dir.join(".b.json.1-0.tmp").exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_object_file_without_a_version_reads_as_version_1() {
        let old: ObjectFile = serde_json::from_str(
            r#"{"current": {"id": "00000000-0000-4000-8000-000000000001", "class": "City",
                "owner": "00000000-0000-4000-8000-000000000002", "createdMs": 1, "updatedMs": 2,
                "properties": {"name": "Berlin"}}, "history": []}"#,
        )
        .unwrap();
        assert_eq!(old.version, 1);
        let written = serde_json::to_value(&old).unwrap();
        assert_eq!(written["version"], 1, "{written}");
    }

    #[test]
    fn a_corrupt_file_is_internal_and_named() {
        let dir = scratch("corrupt");
        let file = dir.join("c.json");
        fs::write(&file, "{not json").unwrap();
        let e = read_json::<DocumentRecord>(&file).unwrap_err();
        assert_eq!(e.kind, weft_plugin_api::ErrorKind::Internal);
        assert!(e.message.contains("c.json"), "{e}");
        assert!(read_json::<DocumentRecord>(&dir.join("none.json"))
            .unwrap()
            .is_none());
        fs::remove_dir_all(&dir).unwrap();
    }
}
