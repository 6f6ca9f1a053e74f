//! `POST /backups` (a Weft addition, root key only): a consistent copy of the whole store,
//! downloaded as a tar archive while the server keeps serving. `weft backup --to DIR` calls it.
//!
//! The connector writes its backup into a fresh directory under the server's scratch directory
//! (`<data_dir>/tmp`); that directory is packed into one tar file, hashed, opened and deleted
//! before the answer starts, so nothing is left behind however the download ends. Nothing is
//! written anywhere a request names: the client decides where the copy goes, on its side.

use std::io::Seek;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use poem::Body;
use poem_openapi::payload::Binary;
use poem_openapi::{ApiResponse, OpenApi};
use sha2::{Digest, Sha256};

use super::{ApiError, ApiResult, ApiTags};
use crate::context::principal;
use weft_core::Core;

/// The backup operation.
pub struct BackupApi(pub Arc<Core>);

/// A finished backup.
#[derive(ApiResponse)]
pub enum BackupDownload {
    /// A tar archive (sent as `application/octet-stream`, which every generated client takes as
    /// a file) of the connector's backup directory: a consistent copy of the store at one
    /// moment during the request (with the embedded connector: `weft.redb`). Restore: unpack it
    /// into a directory and start a server with `--database-config '{"path": "DIR"}'` (or as
    /// `<data_dir>/store`).
    #[oai(status = 200, content_type = "application/octet-stream")]
    Ok(
        Binary<Body>,
        /// The archive's SHA-256 (hex): check it once downloaded.
        #[oai(header = "X-Weft-Backup-Sha256")]
        String,
        /// Things and Actions in the copy.
        #[oai(header = "X-Weft-Backup-Objects")]
        u64,
    ),
}

#[OpenApi(tag = "ApiTags::Backups")]
impl BackupApi {
    /// Back up the whole store (objects with their history, keys, the ontology) while the server
    /// keeps serving; root key only. Answers a tar archive of the copy. 409 while another
    /// backup of this server runs (one at a time); 501 when the connector cannot make backups
    /// (e.g. dev-memory).
    #[oai(
        path = "/backups",
        method = "post",
        operation_id = "weft.backups.create"
    )]
    async fn create(&self, req: &poem::Request) -> ApiResult<BackupDownload> {
        let p = principal(req)?;
        let work = self
            .0
            .scratch_dir
            .join(format!("backup-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&self.0.scratch_dir).map_err(|e| {
            ApiError::from(weft_core::Error::new(
                weft_core::ErrorKind::Internal,
                format!(
                    "cannot create the scratch directory {} for the backup: {e}",
                    self.0.scratch_dir.display()
                ),
            ))
        })?;
        let dir = work.join("store");
        let result = self.0.backup(&p, &dir.display().to_string()).await;
        let packed = match result {
            Ok(backup) => {
                let work = work.clone();
                // `backup` (holding the server's backup slot) lives until the archive is made.
                tokio::task::spawn_blocking(move || pack(&work, backup))
                    .await
                    .unwrap_or_else(|e| Err(format!("packing did not finish: {e}")))
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&work);
                return Err(e.into());
            }
        };
        let (file, sha, objects) = match packed {
            Ok(v) => v,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&work);
                return Err(weft_core::Error::new(
                    weft_core::ErrorKind::Internal,
                    format!("the backup could not be packed: {e}"),
                )
                .into());
            }
        };
        // The open file keeps its contents readable after the directory is gone.
        let _ = std::fs::remove_dir_all(&work);
        Ok(BackupDownload::Ok(
            Binary(Body::from_async_read(tokio::fs::File::from_std(file))),
            sha,
            objects,
        ))
    }
}

/// Packs `work/store` into `work/backup.tar`; answers it opened, its SHA-256 and the objects in
/// it.
fn pack(work: &Path, backup: weft_core::Backup) -> Result<(std::fs::File, String, u64), String> {
    let tar_path: PathBuf = work.join("backup.tar");
    {
        let file = std::fs::File::create(&tar_path).map_err(|e| e.to_string())?;
        let mut builder = tar::Builder::new(std::io::BufWriter::new(file));
        builder.follow_symlinks(false);
        builder
            .append_dir_all(".", work.join("store"))
            .map_err(|e| e.to_string())?;
        builder
            .into_inner()
            .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
            .map_err(|e| e.to_string())?;
    }
    let mut file = std::fs::File::open(&tar_path).map_err(|e| e.to_string())?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| e.to_string())?;
    file.rewind().map_err(|e| e.to_string())?;
    Ok((file, hex::encode(hasher.finalize()), backup.objects))
}
