//! `weft backup --to DIR`: asks a running server for a consistent copy of its store
//! (`POST /weaviate/v1/backups`, root key) and unpacks it into `DIR` on this machine.
//!
//! The archive is written to `DIR/.backup.tar.partial` while it downloads, checked against the
//! SHA-256 the server sent, unpacked, synced, and only then deleted; a failed download leaves
//! `DIR` without a store file, never with a half one.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use sha2::{Digest, Sha256};
use weft_p2p::weft_peer_protocol::wire::ErrorBody;

/// What `weft backup` needs.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// The directory to write the copy into (new or empty).
    pub to: PathBuf,
    /// The server's base URL, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// The root key's id and token.
    pub key: String,
    /// See `key`.
    pub token: String,
    /// PEM certificates of CAs to trust beside the system's (a server with its own CA).
    pub ca_file: Option<PathBuf>,
}

/// A finished backup, as `weft backup` reports it.
#[derive(Debug, Clone)]
pub struct BackupSummary {
    /// Where the copy is.
    pub dir: PathBuf,
    /// Things and Actions in it.
    pub objects: u64,
    /// Bytes downloaded.
    pub bytes: u64,
    /// How long it took.
    pub took: Duration,
}

/// Downloads and unpacks a backup.
pub fn run(o: &BackupOptions) -> anyhow::Result<BackupSummary> {
    let started = Instant::now();
    check_target(&o.to)?;
    std::fs::create_dir_all(&o.to)
        .with_context(|| format!("cannot create the backup directory {}", o.to.display()))?;
    let partial = o.to.join(".backup.tar.partial");
    let result = download_and_unpack(o, &partial);
    let _ = std::fs::remove_file(&partial);
    let (objects, bytes) = result?;
    Ok(BackupSummary {
        dir: std::fs::canonicalize(&o.to).unwrap_or_else(|_| o.to.clone()),
        objects,
        bytes,
        took: started.elapsed(),
    })
}

fn check_target(to: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(to) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "the backup directory {} already exists and is not empty: give a new or empty directory",
                    to.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => bail!("cannot use {} as the backup directory: {e}", to.display()),
    }
}

fn download_and_unpack(o: &BackupOptions, partial: &Path) -> anyhow::Result<(u64, u64)> {
    let base = o.url.trim_end_matches('/');
    let url = format!("{base}/weaviate/v1/backups");
    weft_p2p::weft_peer_protocol::tls::install_provider();
    let mut builder = reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .connect_timeout(Duration::from_secs(10))
        // A large store takes a while: no overall timeout, but the connection must not stall.
        .timeout(None);
    if let Some(f) = &o.ca_file {
        for c in weft_p2p::weft_peer_protocol::tls::load_ca_file(f)
            .map_err(|e| anyhow!("{}", e.replace("network.ca_file", "--ca-file")))?
        {
            builder = builder.add_root_certificate(c);
        }
    }
    let client = builder.build()?;
    let mut response = client
        .post(&url)
        .header("X-API-KEY", &o.key)
        .header("X-API-TOKEN", &o.token)
        .send()
        .map_err(|e| anyhow!("cannot reach the server at {base}: {e} (is `weft serve` running there? give its address with --url)"))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().unwrap_or_default();
        let message = ErrorBody::message_in(body.as_bytes()).unwrap_or(body);
        bail!("the server at {base} refused the backup ({status}): {message}");
    }
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let want_sha = header("x-weft-backup-sha256").ok_or_else(|| {
        anyhow!("the server at {base} sent no X-Weft-Backup-Sha256 header: is it a weft server?")
    })?;
    let objects = header("x-weft-backup-objects")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);

    let mut file = std::fs::File::create(partial)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    let progress = Progress::new(response.content_length());
    loop {
        let n = response
            .read(&mut buf)
            .with_context(|| format!("the download from {base} broke off after {bytes} bytes"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])
            .with_context(|| format!("cannot write {}", partial.display()))?;
        bytes += n as u64;
        progress.set(bytes);
    }
    progress.finish(bytes);
    file.sync_all()?;
    drop(file);
    let got_sha = hex::encode(hasher.finalize());
    if got_sha != want_sha {
        bail!("the downloaded backup is damaged (SHA-256 {got_sha}, the server sent {want_sha}): run `weft backup` again");
    }
    let dir = partial.parent().unwrap_or(Path::new("."));
    tar::Archive::new(std::fs::File::open(partial)?)
        .unpack(dir)
        .with_context(|| format!("cannot unpack the backup into {}", dir.display()))?;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_file() && path != partial {
            std::fs::File::open(&path)?.sync_all()?;
        }
    }
    std::fs::File::open(dir)?.sync_all()?;
    Ok((objects, bytes))
}

/// The download's progress: a bar (indicatif; a spinner with the bytes when the server sends no
/// length, as for a streamed archive) when stderr is a terminal, otherwise a plain line every
/// five seconds and one at the end.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last: std::cell::Cell<Instant>,
}

impl Progress {
    const EVERY: Duration = Duration::from_secs(5);

    fn new(total: Option<u64>) -> Progress {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let target = indicatif::ProgressDrawTarget::stderr();
            let (bar, template) = match total {
                Some(t) => (
                    indicatif::ProgressBar::with_draw_target(Some(t), target),
                    "weft backup: downloading [{wide_bar}] {bytes}/{total_bytes}, {eta} left",
                ),
                None => (
                    indicatif::ProgressBar::with_draw_target(None, target),
                    "weft backup: downloading {spinner} {bytes} ({binary_bytes_per_sec})",
                ),
            };
            if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            last: std::cell::Cell::new(Instant::now()),
        }
    }

    fn set(&self, bytes: u64) {
        match &self.bar {
            Some(bar) => bar.set_position(bytes),
            None if self.last.get().elapsed() >= Self::EVERY => {
                self.last.set(Instant::now());
                eprintln!("weft backup: downloaded {:.1} MiB", mib(bytes));
            }
            None => {}
        }
    }

    fn finish(&self, bytes: u64) {
        match &self.bar {
            Some(bar) => bar.finish_and_clear(),
            None => eprintln!(
                "weft backup: downloaded {:.1} MiB, checking and unpacking",
                mib(bytes)
            ),
        }
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}
