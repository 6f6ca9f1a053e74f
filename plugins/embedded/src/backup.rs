//! Online backup: a consistent copy of the store in another directory while it keeps serving.
//!
//! The copy is read from **one** redb read transaction, a snapshot of the last commit before the
//! backup began: every write acknowledged before that moment is in it, none after, and never
//! half of one (a write commits all its tables at once). Writers are not stopped; they commit
//! beside the snapshot. The copy is written to `weft.redb.partial` in chunks (each commit
//! non-durable but the last, which syncs everything) and renamed to `weft.redb` only when
//! complete, so a failed or interrupted backup never leaves a file that looks like a good one.
//! Restore = start a server (or this connector) with `path` pointing at the copy.

use std::fs::File;
use std::path::{Path, PathBuf};

use abi_stable::std_types::RString;
use redb::{Database, ReadTransaction};
use weft_plugin_api::{BackupReport, PluginError, PluginResult};

use crate::tables::{self, st};

/// Writes the snapshot `src` of the store to `to/weft.redb`.
pub fn backup(src: &ReadTransaction, source_dir: &Path, to: &Path) -> PluginResult<BackupReport> {
    let to = prepare(source_dir, to)?;
    let partial = to.join("weft.redb.partial");
    let result = copy_all(src, &partial).and_then(|objects| {
        let file = to.join("weft.redb");
        std::fs::rename(&partial, &file).map_err(|e| io("rename the copy into place", &file, e))?;
        File::open(&to)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("sync", &to, e))?;
        let bytes = std::fs::metadata(&file)
            .map_err(|e| io("read the size of", &file, e))?
            .len();
        Ok(BackupReport {
            path: RString::from(to.display().to_string()),
            bytes,
            objects,
        })
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// Checks `to` (absolute, outside the data directory, new or empty) and creates it; answers it
/// canonical.
fn prepare(source_dir: &Path, to: &Path) -> PluginResult<PathBuf> {
    if !to.is_absolute() {
        return Err(PluginError::invalid(format!(
            "embedded: backup directory {} is relative: give an absolute path (it is written by the server process)",
            to.display()
        )));
    }
    match std::fs::read_dir(to) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(PluginError::invalid(format!(
                    "embedded: backup directory {} already exists and is not empty: give a new or empty directory",
                    to.display()
                )));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(to).map_err(|e| io("create", to, e))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            return Err(PluginError::invalid(format!(
                "embedded: backup target {} is a file: give a new or empty directory",
                to.display()
            )))
        }
        Err(e) => return Err(io("read", to, e)),
    }
    let to = std::fs::canonicalize(to).map_err(|e| io("resolve", to, e))?;
    if to.starts_with(source_dir) {
        let _ = std::fs::remove_dir(&to);
        return Err(PluginError::invalid(format!(
            "embedded: backup directory {} is inside the data directory {}: give a directory outside it",
            to.display(),
            source_dir.display()
        )));
    }
    Ok(to)
}

fn io(what: &str, path: &Path, e: std::io::Error) -> PluginError {
    // Permissions, a full disk: the machine's, not the request's, so `Unavailable` (503)
    // naming the directory and the cause.
    PluginError::unavailable(format!(
        "embedded: backup: cannot {what} {}: {e}",
        path.display()
    ))
}

/// Copies every table of the snapshot into a new database at `file`; answers the number of
/// current objects.
fn copy_all(src: &ReadTransaction, file: &Path) -> PluginResult<u64> {
    let _ = std::fs::remove_file(file);
    let dst = Database::create(file).map_err(|e| {
        PluginError::unavailable(format!(
            "embedded: backup: cannot create {}: {e}",
            file.display()
        ))
    })?;
    for t in tables::TABLES {
        t.copy(src, &dst)?;
    }
    // The last commit is durable and makes every earlier non-durable one durable too.
    let tx = dst.begin_write().map_err(st)?;
    tx.commit().map_err(st)?;
    tables::current_objects(src)
}
