//! The contextionary check at start-up: a peer runs with its network's contextionary.
//!
//! Before serving, a peer asks the genesis (`GET {genesis}/contextionary`) or the first
//! bootstrapped peer that answers (`GET {peer}/weaviate/v1/p2p/contextionary`) which
//! contextionary the network uses, signed both ways; the genesis's answer also pins the
//! genesis's key (or is checked against `network.genesis_key`, or the key pinned before). Same
//! hash as this server's (or none): kept. Different: with `P2P.requestContextionary` the file
//! is downloaded from the address that announced it and verified by its hash; otherwise start-up
//! stops with one line naming both hashes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use weft_core::ContextionaryHandle;
use weft_peer_protocol::wire::ContextionaryOffer;
use weft_peer_protocol::{Call, PeerUri};

use crate::config::{mode, Mode, P2pConfig};
use crate::transport::Transport;

/// One call to the genesis or a bootstrapped peer at start-up.
const STARTUP_CALL: Duration = Duration::from_secs(10);
/// One contextionary file download.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(600);
/// The largest contextionary file downloaded (a bound against a misbehaving source).
const MAX_DOWNLOAD_BYTES: u64 = 8 << 30;
/// How long start-up waits for the genesis (or a bootstrapped peer) to say which contextionary
/// the network uses.
const STARTUP_WAIT: Duration = Duration::from_secs(20);
/// The longest pause between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// This server's contextionary, as peers may download it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalContextionary {
    /// The finalfusion file (`None` when the plugin's config names no `path`).
    pub path: Option<PathBuf>,
    /// Its nearest-neighbour index, when there is one.
    pub index_path: Option<PathBuf>,
    /// Its content hash (`content_hash("md5")`).
    pub md5: String,
}

impl LocalContextionary {
    /// The file's name, as served at `/p2p/contextionary/{file}`.
    pub fn file_name(&self) -> Option<String> {
        self.path
            .as_ref()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .map(str::to_string)
    }
}

/// What the network says its contextionary is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkContextionary {
    /// The hash algorithm (`md5`).
    pub algorithm: String,
    /// The hash.
    pub hash: String,
    /// Where the file is, as announced.
    pub url: Option<String>,
    /// Where its index is, as announced.
    pub index_url: Option<String>,
    /// Who said so (the genesis's or the bootstrapped peer's base URL).
    pub source: PeerUri,
}

impl NetworkContextionary {
    /// The offer `w` made by `source`; `None` when it names no hash.
    pub fn from_wire(w: ContextionaryOffer, source: &PeerUri) -> Option<Self> {
        let hash = w.hash.filter(|h| !h.value.trim().is_empty())?;
        Some(NetworkContextionary {
            algorithm: if hash.algorithm.trim().is_empty() {
                "md5".into()
            } else {
                hash.algorithm.trim().to_ascii_lowercase()
            },
            hash: hash.value.trim().to_ascii_lowercase(),
            url: w.url.filter(|u| !u.trim().is_empty()),
            index_url: w.index_url.filter(|u| !u.trim().is_empty()),
            source: source.clone(),
        })
    }
}

fn backoff(attempt: u32, cap: Duration) -> Duration {
    let ms = 200u64.saturating_mul(1u64 << attempt.min(10));
    Duration::from_millis(ms).min(cap)
}

/// `announced` read against `source`: the same path at `source`'s origin, so a download never
/// goes anywhere but where the genesis (or the bootstrapped peer) is.
pub fn at_source(source: &PeerUri, announced: &str) -> Result<String, String> {
    let base = reqwest::Url::parse(source.as_str())
        .map_err(|e| format!("{source:?} is not a URL ({e})"))?;
    let url = base
        .join(announced)
        .map_err(|e| format!("{announced:?} is not a URL ({e})"))?;
    let mut out = format!(
        "{}://{}{}",
        base.scheme(),
        base.host_str().unwrap_or_default(),
        base.port().map(|p| format!(":{p}")).unwrap_or_default()
    );
    out.push_str(url.path());
    if let Some(q) = url.query() {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

/// Checks the genesis's key on an answer from it: `network.genesis_key`, else the key pinned
/// before, else this one is pinned (first contact). An unsigned answer is taken only with
/// `P2P.acceptUnsignedPeers` (a Weaviate 0.12 genesis).
pub fn check_genesis_key(
    config: &P2pConfig,
    transport: &Transport,
    genesis: &PeerUri,
    answer: &weft_peer_protocol::Answer,
) -> Result<(), String> {
    let Some(signer) = &answer.signer else {
        if config.accept_unsigned {
            return Ok(());
        }
        return Err(format!(
            "the genesis {genesis} answered without a signature: it is not a Weft genesis of this version, or something between rewrites its answers; a Weaviate 0.12 genesis is trusted only with P2P.acceptUnsignedPeers: true"
        ));
    };
    let expected = config
        .genesis_key
        .or_else(|| transport.bindings.pinned_genesis(genesis));
    match expected {
        Some(k) if k == signer.key => Ok(()),
        Some(k) => Err(format!(
            "the genesis {genesis} answered with the key {}, not {k}, the one {}; if the genesis's identity changed on purpose, set network.genesis_key to the new key (weft identity on the genesis prints it)",
            signer.key,
            if config.genesis_key.is_some() {
                "network.genesis_key names"
            } else {
                "pinned at first contact (in peer-keys.json of the data directory)"
            }
        )),
        None => {
            tracing::info!(
                "pinned the genesis {genesis}'s key {} (first contact; network.genesis_key pins it in advance)",
                signer.key
            );
            transport.bindings.pin_genesis(genesis, signer.key);
            Ok(())
        }
    }
}

/// Asks the genesis (`GET {genesis}/contextionary`) or the first bootstrapped peer that answers
/// (`GET {peer}/weaviate/v1/p2p/contextionary`) which contextionary the network uses, retrying
/// for up to 20 s. `None`: the network has none (or this is the first peer of a bootstrapped
/// network).
pub async fn network_contextionary(
    config: &P2pConfig,
    transport: &Transport,
) -> anyhow::Result<Option<NetworkContextionary>> {
    let sources: Vec<(PeerUri, String)> = match mode(config) {
        Mode::Genesis(g) => vec![(g.clone(), g.at("/contextionary"))],
        Mode::Bootstrapped(peers) => peers
            .into_iter()
            .map(|p| {
                let url = p.api("/p2p/contextionary");
                (p, url)
            })
            .collect(),
    };
    if sources.is_empty() {
        return Ok(None);
    }
    let genesis_mode = matches!(mode(config), Mode::Genesis(_));
    let deadline = Instant::now() + STARTUP_WAIT;
    let mut attempt = 0;
    loop {
        let mut why = vec![];
        for (source, url) in &sources {
            match transport
                .client
                .send(Call::get(url).timeout(STARTUP_CALL))
                .await
            {
                Ok(a) if genesis_mode && (a.ok() || a.status == 404) => {
                    check_genesis_key(config, transport, source, &a).map_err(anyhow::Error::msg)?;
                    if a.status == 404 {
                        // The genesis has no contextionary.
                        return Ok(None);
                    }
                    let w: ContextionaryOffer = a.json().map_err(|e| {
                        anyhow::anyhow!(
                            "GET {url}: the answer is not a contextionary ({{url, hash}}): {e}"
                        )
                    })?;
                    return Ok(NetworkContextionary::from_wire(w, source));
                }
                Ok(a) if a.ok() => {
                    let w: ContextionaryOffer = a.json().map_err(|e| {
                        anyhow::anyhow!(
                            "GET {url}: the answer is not a contextionary ({{url, hash}}): {e}"
                        )
                    })?;
                    return Ok(NetworkContextionary::from_wire(w, source));
                }
                Ok(a) => why.push(format!(
                    "GET {url} answered {}: {}",
                    a.status,
                    a.error_message()
                )),
                Err(e @ weft_peer_protocol::CallError::Certificate(_)) => {
                    anyhow::bail!("GET {url}: {e}")
                }
                Err(e) => why.push(format!("GET {url}: {e}")),
            }
        }
        if Instant::now() + backoff(attempt, MAX_BACKOFF) > deadline {
            let what = if genesis_mode {
                "the genesis (network.genesis_url) did not say which contextionary the network uses"
            } else {
                "no bootstrapped peer (P2P.bootstrappedPeers) said which contextionary the network uses"
            };
            anyhow::bail!(
                "{what} within {}s ({}); start it first or correct the URL",
                STARTUP_WAIT.as_secs(),
                why.join("; ")
            );
        }
        tokio::time::sleep(backoff(attempt, MAX_BACKOFF)).await;
        attempt += 1;
    }
}

/// Downloads `url` to `dest` (through `dest.part`, then renamed). `Ok(false)` when the source
/// answers 404. The content is vouched for by its hash, checked by the caller.
async fn download(http: &reqwest::Client, url: &str, dest: &Path) -> anyhow::Result<bool> {
    use tokio::io::AsyncWriteExt;
    let mut r = http
        .get(url)
        .timeout(DOWNLOAD_TIMEOUT)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("GET {url}: {e}"))?;
    if r.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(false);
    }
    if !r.status().is_success() {
        anyhow::bail!("GET {url} answered {}", r.status());
    }
    let mut part = dest.as_os_str().to_owned();
    part.push(".part");
    let part = PathBuf::from(part);
    let mut f = tokio::fs::File::create(&part)
        .await
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", part.display()))?;
    let mut written = 0u64;
    while let Some(chunk) = r
        .chunk()
        .await
        .map_err(|e| anyhow::anyhow!("GET {url}: {e}"))?
    {
        written += chunk.len() as u64;
        if written > MAX_DOWNLOAD_BYTES {
            let _ = tokio::fs::remove_file(&part).await;
            anyhow::bail!("GET {url}: the file is larger than {MAX_DOWNLOAD_BYTES} bytes");
        }
        f.write_all(&chunk)
            .await
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", part.display()))?;
    }
    f.sync_all()
        .await
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", part.display()))?;
    drop(f);
    tokio::fs::rename(&part, dest).await.map_err(|e| {
        anyhow::anyhow!("cannot move {} to {}: {e}", part.display(), dest.display())
    })?;
    Ok(true)
}

async fn hash_of(c: &ContextionaryHandle, algorithm: &str) -> anyhow::Result<String> {
    c.content_hash(algorithm)
        .await
        .map(|h| h.to_ascii_lowercase())
        .map_err(|e| anyhow::anyhow!("cannot hash the contextionary ({algorithm}): {}", e.message))
}

/// The contextionary this server runs with as a peer: its handle and what peers may download.
pub struct SettledContextionary {
    /// The contextionary.
    pub handle: ContextionaryHandle,
    /// Its file and hash.
    pub local: LocalContextionary,
    /// Whether it was downloaded from the network (rather than configured).
    pub downloaded: bool,
}

/// Checks this server's contextionary against the network's before the server starts serving.
///
/// `local` is the configured contextionary (handle, file, index); `open` opens a finalfusion
/// file with the configured contextionary plugin. Same hash (or the network has none): the local
/// one is kept. Different (or none here): with `P2P.requestContextionary` the network's file and
/// index are downloaded into `data_dir/network-contextionary/<hash>.fifu` (kept for the next
/// start), opened with `open` and verified; otherwise, and when the download does not verify,
/// an error of one line naming both hashes.
pub async fn settle_contextionary(
    config: &P2pConfig,
    transport: &Transport,
    local: Option<(ContextionaryHandle, Option<PathBuf>, Option<PathBuf>)>,
    data_dir: &Path,
    open: impl Fn(&Path) -> anyhow::Result<ContextionaryHandle>,
) -> anyhow::Result<Option<SettledContextionary>> {
    let network = network_contextionary(config, transport).await?;
    let algorithm = network
        .as_ref()
        .map(|n| n.algorithm.clone())
        .unwrap_or_else(|| "md5".into());
    let mut local_hash = None;
    if let Some((handle, path, index_path)) = &local {
        let h = hash_of(handle, &algorithm).await?;
        let md5 = if algorithm == "md5" {
            h.clone()
        } else {
            hash_of(handle, "md5").await?
        };
        local_hash = Some(h.clone());
        let keep = network.as_ref().is_none_or(|n| n.hash == h);
        if keep {
            if let Some(n) = &network {
                tracing::info!(
                    "the contextionary is the network's ({} {}, as {} says)",
                    n.algorithm,
                    n.hash,
                    n.source
                );
            }
            return Ok(Some(SettledContextionary {
                handle: handle.clone(),
                local: LocalContextionary {
                    path: path.clone(),
                    index_path: index_path.clone(),
                    md5,
                },
                downloaded: false,
            }));
        }
    }
    let Some(n) = network else {
        // Nothing here, nothing in the network.
        return Ok(None);
    };
    let ours = local_hash
        .map(|h| format!("{algorithm} {h}"))
        .unwrap_or_else(|| "none configured".into());
    if !config.request_contextionary {
        anyhow::bail!(
            "the network's contextionary ({} {}, announced by {}) is not this server's ({ours}): start with the network's contextionary, or set P2P.requestContextionary: true (WEFT_REQUEST_CONTEXTIONARY=true) to download and use it",
            n.algorithm,
            n.hash,
            n.source
        );
    }
    let Some(url) = &n.url else {
        anyhow::bail!(
            "the network's contextionary ({} {}) differs from this server's ({ours}), and {} announces no URL to download it from: start with the network's contextionary",
            n.algorithm,
            n.hash,
            n.source
        );
    };
    let dir = data_dir.join("network-contextionary");
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| anyhow::anyhow!("cannot make {} for the network's contextionary: {e}; set data_dir (WEFT_DATA_DIR) to a writable directory", dir.display()))?;
    let file: String = n
        .hash
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let path = dir.join(format!("{file}.fifu"));
    let mut index = path.as_os_str().to_owned();
    index.push(".hnsw");
    let index = PathBuf::from(index);
    // A file kept from an earlier start is used when it still verifies.
    if path.is_file() {
        if let Ok(handle) = open(&path) {
            if hash_of(&handle, &n.algorithm).await.ok().as_deref() == Some(n.hash.as_str()) {
                tracing::info!(
                    "using the network's contextionary downloaded before: {}",
                    path.display()
                );
                let md5 = hash_of(&handle, "md5").await?;
                return Ok(Some(SettledContextionary {
                    handle,
                    local: LocalContextionary {
                        path: Some(path),
                        index_path: index.is_file().then_some(index),
                        md5,
                    },
                    downloaded: true,
                }));
            }
        }
        let _ = tokio::fs::remove_file(&path).await;
        let _ = tokio::fs::remove_file(&index).await;
    }
    let file_url = at_source(&n.source, url)
        .map_err(|e| anyhow::anyhow!("{} announces its contextionary at {e}", n.source))?;
    let index_url = match &n.index_url {
        Some(i) => at_source(&n.source, i)
            .map_err(|e| anyhow::anyhow!("{} announces its index at {e}", n.source))?,
        None => format!("{file_url}.hnsw"),
    };
    tracing::info!(
        "downloading the network's contextionary ({} {}) from {file_url}",
        n.algorithm,
        n.hash
    );
    let started = Instant::now();
    let http = transport.client.http();
    if !download(http, &file_url, &path).await? {
        anyhow::bail!(
            "GET {file_url} answered 404: {} announces a contextionary it does not serve",
            n.source
        );
    }
    let has_index = match download(http, &index_url, &index).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(
                "the contextionary's index was not downloaded ({e}); searches are exact"
            );
            false
        }
    };
    let handle = open(&path)?;
    let got = hash_of(&handle, &n.algorithm).await?;
    if got != n.hash {
        let _ = tokio::fs::remove_file(&path).await;
        let _ = tokio::fs::remove_file(&index).await;
        anyhow::bail!(
            "the contextionary downloaded from {file_url} has {} {got}, not the network's {}: refusing to start",
            n.algorithm,
            n.hash
        );
    }
    tracing::info!(
        "downloaded and verified the network's contextionary in {:.1}s: {}{}",
        started.elapsed().as_secs_f64(),
        path.display(),
        if has_index { " (with its index)" } else { "" }
    );
    let md5 = hash_of(&handle, "md5").await?;
    Ok(Some(SettledContextionary {
        handle,
        local: LocalContextionary {
            path: Some(path),
            index_path: has_index.then_some(index),
            md5,
        },
        downloaded: true,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_peer_protocol::wire::ContentHash;

    #[test]
    fn downloads_stay_at_their_source() {
        let src = PeerUri::parse("http://127.0.0.1:7000").unwrap();
        assert_eq!(
            at_source(&src, "http://10.1.2.3:9/contextionary/a.fifu").unwrap(),
            "http://127.0.0.1:7000/contextionary/a.fifu"
        );
        assert_eq!(
            at_source(&src, "/contextionary/a.fifu").unwrap(),
            "http://127.0.0.1:7000/contextionary/a.fifu"
        );
    }

    #[test]
    fn a_contextionary_without_hash_is_none() {
        let g = PeerUri::parse("http://g").unwrap();
        assert_eq!(
            NetworkContextionary::from_wire(ContextionaryOffer::default(), &g),
            None
        );
        let n = NetworkContextionary::from_wire(
            ContextionaryOffer {
                url: Some("http://g/contextionary/x.fifu".into()),
                hash: Some(ContentHash {
                    algorithm: "MD5".into(),
                    value: "ABC".into(),
                }),
                index_url: None,
            },
            &g,
        )
        .unwrap();
        assert_eq!((n.algorithm.as_str(), n.hash.as_str()), ("md5", "abc"));
    }
}
