//! The scratch directory (`<data_dir>/tmp`): where a backup is written and packed on its way
//! to the client. It cleans itself: every backup works in a directory of its own
//! (`backup-<uuid>`) removed when its [`ScratchDir`] is dropped — on success, on an error and
//! when the request is abandoned — and what a killed process left behind is removed at start
//! ([`remove_stale`]). Before a backup starts, the free space is checked
//! ([`check_free_space`]): a backup that would fill the disk is refused with a 507 naming the
//! space needed and the space free.

use std::io;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The prefix of a backup's own directory in the scratch directory.
pub const BACKUP_PREFIX: &str = "backup-";

/// Free space kept beyond a backup's own estimate (file-system metadata, the archive's headers,
/// what other writers need meanwhile).
pub const SPACE_MARGIN_BYTES: u64 = 16 * 1024 * 1024;

/// How the bytes free to this process under a path are found (injectable for tests).
pub type FreeSpace = fn(&Path) -> io::Result<u64>;

/// Bytes an unprivileged process may still write on the file system holding `path`
/// (`statvfs`: available blocks times the fragment size).
pub fn free_space(path: &Path) -> io::Result<u64> {
    let s = rustix::fs::statvfs(path)?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

/// The bytes of the regular files under `path` (0 when it does not exist).
pub fn dir_size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_file() {
        return meta.len();
    }
    if !meta.is_dir() {
        return 0;
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

/// Removes every `backup-*` entry of `scratch` (what a process killed during a backup left);
/// answers what it removed and its size. A scratch directory that does not exist is clean.
pub fn remove_stale(scratch: &Path) -> io::Result<Vec<(PathBuf, u64)>> {
    let entries = match std::fs::read_dir(scratch) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    let mut removed = vec![];
    for entry in entries {
        let entry = entry?;
        if !entry
            .file_name()
            .to_string_lossy()
            .starts_with(BACKUP_PREFIX)
        {
            continue;
        }
        let path = entry.path();
        let size = dir_size(&path);
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
        removed.push((path, size));
    }
    Ok(removed)
}

/// `Ok` when `needed` bytes are free under `dir`, else the 507 naming both numbers. `what`
/// says what the space is for.
pub fn check_free_space(dir: &Path, needed: u64, what: &str, free: FreeSpace) -> Result<()> {
    let available = free(dir).map_err(|e| {
        Error::internal(format!(
            "cannot read the free space of the scratch directory {}: {e}",
            dir.display()
        ))
    })?;
    if available < needed {
        return Err(Error::insufficient_storage(format!(
            "{what} needs about {} of free space in the scratch directory {}, and {} is free there; free some space on that file system, or start the server with a data directory (--data-dir) on a larger one",
            bytes(needed),
            dir.display(),
            bytes(available)
        )));
    }
    Ok(())
}

/// `n` bytes for a person: `1234567 bytes (1.2 MiB)`.
fn bytes(n: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    format!("{n} bytes ({:.1} MiB)", n as f64 / MIB)
}

/// A directory of its own in the scratch directory, removed with everything in it when dropped.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// A new, empty `<scratch>/<prefix><uuid>` (the scratch directory made when missing).
    pub fn create(scratch: &Path, prefix: &str) -> Result<ScratchDir> {
        let path = scratch.join(format!("{prefix}{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).map_err(|e| {
            Error::internal(format!(
                "cannot create {} in the scratch directory: {e}; check that the data directory is writable",
                path.display()
            ))
        })?;
        Ok(ScratchDir { path })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(
                    "cannot remove the scratch directory {}: {e}",
                    self.path.display()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn a_scratch_dir_is_gone_when_dropped_and_stale_backups_are_removed() {
        let root = tempfile_dir();
        let d = ScratchDir::create(&root, BACKUP_PREFIX).unwrap();
        std::fs::write(d.path().join("f"), b"x").unwrap();
        let p = d.path().to_path_buf();
        drop(d);
        assert!(!p.exists());

        std::fs::create_dir_all(root.join("backup-old/store")).unwrap();
        std::fs::write(root.join("backup-old/store/weft.redb"), vec![0u8; 1000]).unwrap();
        std::fs::write(root.join("keep.txt"), b"y").unwrap();
        let removed = remove_stale(&root).unwrap();
        assert_eq!(removed, vec![(root.join("backup-old"), 1000)]);
        assert!(root.join("keep.txt").exists());
        assert!(remove_stale(&root.join("missing")).unwrap().is_empty());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn too_little_free_space_is_a_507_naming_what_is_needed_and_free() {
        fn tiny(_: &Path) -> io::Result<u64> {
            Ok(1024)
        }
        let e = check_free_space(Path::new("/scratch"), 5 << 20, "this backup", tiny).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InsufficientStorage);
        assert_eq!(e.kind.http_status(), 507);
        assert!(
            e.message.contains("5242880 bytes (5.0 MiB)"),
            "{}",
            e.message
        );
        assert!(e.message.contains("1024 bytes"), "{}", e.message);
        assert!(e.message.contains("/scratch"), "{}", e.message);
        check_free_space(Path::new("/scratch"), 1000, "this backup", tiny).unwrap();
        // The real source answers for a real directory.
        assert!(free_space(&std::env::temp_dir()).unwrap() > 0);
    }

    fn tempfile_dir() -> PathBuf {
        let p = std::env::temp_dir().join(format!("weft-scratch-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&p).unwrap();
        p
    }
}
