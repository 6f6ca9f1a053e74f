//! `POST /backups` (a Weft addition, root key only): a consistent copy of the whole store,
//! downloaded as a tar archive while the server keeps serving. `weft backup --to DIR` calls it.
//!
//! The connector writes its backup into a fresh directory under the server's scratch directory
//! (`<data_dir>/tmp/backup-<uuid>`, a `weft_core::scratch::ScratchDir`); that directory is
//! packed into one tar file, hashed, opened and deleted before the answer starts, so nothing is
//! left behind however the download ends — and however the backup fails or is abandoned (the
//! directory goes when its guard is dropped; what a killed server left is removed at its next
//! start). The free space is checked first, and again before packing (507 when short). Nothing is
//! written anywhere a request names: the client decides where the copy goes, on its side.

use std::io::Seek;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use poem::Body;
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiResponse, OpenApi};
use sha2::{Digest, Sha256};

use super::{ApiResult, ApiTags, ErrorResponse};
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
    /// Too little free space in the scratch directory (`<data_dir>/tmp`) for a copy of the
    /// store and its archive; the message names the space needed and the space free.
    #[oai(status = 507)]
    InsufficientStorage(Json<ErrorResponse>),
}

#[OpenApi(tag = "ApiTags::Backups")]
impl BackupApi {
    /// Back up the whole store (objects with their history, keys, the ontology) while the server
    /// keeps serving; root key only. Answers a tar archive of the copy. 409 while another
    /// backup of this server runs (one at a time); 501 when the connector cannot make backups
    /// (e.g. dev-memory); 507 when the scratch directory's file system has too little free
    /// space for the copy and its archive (the message names both).
    #[oai(
        path = "/backups",
        method = "post",
        operation_id = "weft.backups.create"
    )]
    async fn create(&self, req: &poem::Request) -> ApiResult<BackupDownload> {
        let p = principal(req)?;
        match self.make(&p).await {
            Err(e) if e.kind == weft_core::ErrorKind::InsufficientStorage => Ok(
                BackupDownload::InsufficientStorage(Json(ErrorResponse::new(e.message))),
            ),
            Err(e) => Err(e.into()),
            Ok(v) => Ok(v),
        }
    }
}

impl BackupApi {
    async fn make(&self, p: &weft_core::Principal) -> weft_core::Result<BackupDownload> {
        // Removed with everything in it when dropped: on success once the archive is open, on
        // an error, and when the request is abandoned midway.
        let work = self.0.backup_scratch(p)?;
        let dir = work.path().join("store");
        let backup = self.0.backup(p, &dir.display().to_string()).await?;
        let copied = weft_core::scratch::dir_size(&dir);
        self.0.check_scratch_space(
            copied,
            &format!("packing the backup (its copy of the store is {copied} bytes)"),
        )?;
        // `backup` (holding the server's backup slot) and `work` live until the archive is made.
        let (file, sha, objects) = tokio::task::spawn_blocking(move || {
            let packed = pack(work.path(), backup);
            drop(work);
            packed
        })
        .await
        .unwrap_or_else(|e| Err(format!("packing did not finish: {e}")))
        .map_err(|e| weft_core::Error::internal(format!("the backup could not be packed: {e}")))?;
        // The open file keeps its contents readable after the directory is gone.
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
