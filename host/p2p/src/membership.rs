//! The peer side of the network: how this server joins, stays in and leaves a network, and the
//! peers it knows.
//!
//! **Genesis mode** (`network.genesis_url`): before serving, the network's contextionary is
//! compared with this server's ([`settle_contextionary`]); once listening, the server registers
//! (`POST {genesis}/peers/register`, retried with back-off), pings every
//! `network.ping_interval_s` (`POST {genesis}/peers/{id}/ping` with its schema hash and the
//! version of the peer list it holds), registers again when a ping answers 404 (the genesis
//! restarted or dropped it), applies the lists the genesis pushes (`PUT /p2p/genesis`, accepted
//! only from the genesis's address) and deregisters (`DELETE {genesis}/peers/{id}`) on
//! SIGINT/SIGTERM.
//!
//! **Bootstrapped mode** (`P2P.bootstrappedPeers`, no genesis): once listening, the server
//! announces itself (`POST {peer}/weaviate/v1/peers`) to the first bootstrapped peer that
//! answers, and stores the peers that peer answers with. A peer that receives an announcement
//! echo-checks the newcomer (`GET {peerUri}/weaviate/v1/peers/echo`), ignores one it already
//! knows (same name and URI), otherwise stores it and announces it to every peer it knows.
//! Liveness: every ping interval each peer echoes the peers it knows and drops one that failed
//! [`ECHO_FAILURES_TO_DROP`] times in a row. A peer whose echo shows a new id (it restarted) is
//! told about this one again; a peer that knows nobody any more announces itself again.
//!
//! In both modes the schema of every new or changed peer is downloaded
//! (`GET {uri}/weaviate/v1/p2p/schema`, bounded time), and the server only ever calls the
//! genesis, its bootstrapped peers, and URIs the genesis or a peer vouched for (a newcomer's URI
//! is called only for the echo check the protocol asks for).
//!
//! Owns: the membership protocols, the peer directory's content, the contextionary check.
//! Must not know: REST request shapes (that is [`crate::api`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use uuid::Uuid;
use weft_core::network::{KnownPeer, Peer};
use weft_core::ontology::Ontology;
use weft_core::ContextionaryHandle;

use crate::peerlist::{ListUpdate, LocalList};
use crate::{P2pConfig, PeerNode};

/// The peers' API base path.
pub const PEER_BASE: &str = "/weaviate/v1";
/// What the peer-facing operations answer when this server is no peer.
pub const NOT_A_PEER: &str = "this server is not part of a P2P network; configure network.peer_name and network.genesis_url or P2P.bootstrappedPeers";
/// The default time between pings (and, in bootstrapped mode, echo rounds).
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(10);
/// Bootstrapped mode: a peer whose echo fails this many times in a row is dropped.
pub const ECHO_FAILURES_TO_DROP: u32 = 3;
/// One call to the genesis (registration includes the genesis's reachability check of us).
const GENESIS_TIMEOUT: Duration = Duration::from_secs(10);
/// One echo check.
const ECHO_TIMEOUT: Duration = Duration::from_secs(2);
/// One announcement (the receiver echo-checks the newcomer before answering).
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(8);
/// One schema download.
const SCHEMA_TIMEOUT: Duration = Duration::from_secs(5);
/// One contextionary file download.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(600);
/// The largest contextionary file downloaded (a bound against a misbehaving source).
const MAX_DOWNLOAD_BYTES: u64 = 8 << 30;
/// How long start-up waits for the genesis (or a bootstrapped peer) to say which contextionary
/// the network uses.
const STARTUP_WAIT: Duration = Duration::from_secs(20);
/// The longest pause between registration (or announcement) attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------------
// Wire shapes (what this server sends and reads; the REST side has its documented twins in
// `api.rs`).

/// `{peerName, peerUri}` (+ this server's extensions `id`, `schemaHash`): a registration at the
/// genesis, or an announcement to a peer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Announcement {
    /// The peer's name (a DNS label).
    #[serde(rename = "peerName")]
    pub peer_name: String,
    /// Its base URL.
    #[serde(rename = "peerUri")]
    pub peer_uri: String,
    /// Its id (bootstrapped mode: made by the peer itself at start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// The MD5 of its schema.
    #[serde(
        rename = "schemaHash",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub schema_hash: Option<String>,
}

/// A peer on the wire (0.12's `PeerUpdate`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WirePeer {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its base URL.
    pub uri: String,
    /// The MD5 of its schema.
    #[serde(rename = "schemaHash", default)]
    pub schema_hash: String,
}

impl From<&Peer> for WirePeer {
    fn from(p: &Peer) -> Self {
        WirePeer {
            id: p.id,
            name: p.name.clone(),
            uri: p.uri.clone(),
            schema_hash: p.schema_hash.clone(),
        }
    }
}

/// A content hash on the wire.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WireHash {
    /// `md5`.
    #[serde(default)]
    pub algorithm: String,
    /// The hex digest.
    #[serde(default)]
    pub value: String,
}

/// A contextionary on the wire: where to download it and its hash (the genesis contract's
/// `Contextionary`, with the extension `indexUrl`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct WireContextionary {
    /// The finalfusion file.
    #[serde(default)]
    pub url: Option<String>,
    /// Its content hash.
    #[serde(default)]
    pub hash: Option<WireHash>,
    /// Its nearest-neighbour index.
    #[serde(rename = "indexUrl", default, skip_serializing_if = "Option::is_none")]
    pub index_url: Option<String>,
}

/// What a peer answers an announcement with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnnounceAnswer {
    /// The MD5 of the network's (this peer's) contextionary; `None` without one.
    #[serde(rename = "contextionaryMD5", default)]
    pub contextionary_md5: Option<String>,
    /// Where to download it.
    #[serde(default)]
    pub contextionary: Option<WireContextionary>,
    /// The newcomer as stored.
    pub peer: WirePeer,
    /// The peers the answering peer knows, itself included, the newcomer not.
    #[serde(default)]
    pub peers: Vec<WirePeer>,
}

/// What `GET /peers/echo` answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Echo {
    /// The peer's name.
    #[serde(rename = "peerName")]
    pub peer_name: String,
    /// Its id.
    pub id: Uuid,
    /// The MD5 of its schema.
    #[serde(rename = "schemaHash", default)]
    pub schema_hash: String,
}

/// What `GET /p2p/schema` answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SchemaAnswer {
    /// The peer's ontology (`{actions, things}`).
    pub schema: Ontology,
    /// The MD5 of its JSON.
    pub hash: String,
}

#[derive(Serialize)]
struct RegisterBody<'a> {
    #[serde(rename = "peerName")]
    peer_name: &'a str,
    #[serde(rename = "peerUri")]
    peer_uri: &'a str,
}

#[derive(Deserialize)]
struct RegisterAnswer {
    peer: RegisteredPeer,
    #[serde(default)]
    contextionary: Option<WireContextionary>,
}

#[derive(Deserialize)]
struct RegisteredPeer {
    id: Uuid,
}

#[derive(Serialize)]
struct PingBody {
    #[serde(rename = "schemaHash")]
    schema_hash: String,
    #[serde(rename = "peerListVersion", skip_serializing_if = "Option::is_none")]
    peer_list_version: Option<u64>,
}

/// A refused peer-facing request: its status and one-line message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 400, 403, 404, 409 or 500.
    pub status: u16,
    /// What is wrong and what to change.
    pub message: String,
}

impl Refusal {
    fn new(status: u16, message: impl Into<String>) -> Self {
        Refusal {
            status,
            message: message.into(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// How a peer takes part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Registered at a genesis.
    Genesis(String),
    /// Announced to bootstrapped peers (none: the first peer of its network).
    Bootstrapped(Vec<String>),
}

/// The mode of `config`.
pub fn mode(config: &P2pConfig) -> Mode {
    match &config.genesis_url {
        Some(g) => Mode::Genesis(base_url(g)),
        None => Mode::Bootstrapped(
            config
                .bootstrapped_peers
                .iter()
                .map(|b| base_url(b))
                .collect(),
        ),
    }
}

/// A peer's base URL as written in configuration: without trailing slashes and without the
/// API's base path (`http://h:8080/weaviate/v1/` → `http://h:8080`).
pub fn base_url(url: &str) -> String {
    let u = url.trim().trim_end_matches('/');
    u.strip_suffix(PEER_BASE).unwrap_or(u).to_string()
}

fn same_uri(a: &str, b: &str) -> bool {
    base_url(a).eq_ignore_ascii_case(&base_url(b))
}

/// `url` with port 0 replaced by `port` (the port actually bound): `public_url` may say
/// `http://127.0.0.1:0` when the listener picks its port.
pub fn with_bound_port(url: &str, port: u16) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if u.port() == Some(0) => {
            let _ = u.set_port(Some(port));
            u.as_str().trim_end_matches('/').to_string()
        }
        _ => url.trim_end_matches('/').to_string(),
    }
}

/// The MD5 (hex) of an ontology's JSON: a peer's schema hash.
pub fn schema_hash(o: &Ontology) -> String {
    hex::encode(Md5::digest(serde_json::to_vec(o).unwrap_or_default()))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
        source = cause.source();
    }
    s
}

/// A response's status and (shortened) body, for messages.
async fn describe(r: reqwest::Response) -> String {
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    let text: String = text.chars().take(300).collect();
    if text.is_empty() {
        status.to_string()
    } else {
        format!("{status}: {}", text.replace('\n', " "))
    }
}

fn backoff(attempt: u32, cap: Duration) -> Duration {
    let ms = 200u64.saturating_mul(1u64 << attempt.min(10));
    Duration::from_millis(ms).min(cap)
}

/// The origin (`scheme://host:port`) of `url`.
fn origin(url: &reqwest::Url) -> String {
    format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.port().map(|p| format!(":{p}")).unwrap_or_default()
    )
}

/// `announced` read against `source`: the same path at `source`'s origin, so a download never
/// goes anywhere but where the genesis (or the bootstrapped peer) is.
fn at_source(source: &str, announced: &str) -> Result<String, String> {
    let base = reqwest::Url::parse(source).map_err(|e| format!("{source:?} is not a URL ({e})"))?;
    let url = base
        .join(announced)
        .map_err(|e| format!("{announced:?} is not a URL ({e})"))?;
    let mut out = origin(&base);
    out.push_str(url.path());
    if let Some(q) = url.query() {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The contextionary check at start-up.

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
    pub source: String,
}

impl NetworkContextionary {
    fn from_wire(w: WireContextionary, source: &str) -> Option<Self> {
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
            source: source.to_string(),
        })
    }
}

/// Asks the genesis (`GET {genesis}/contextionary`) or the first bootstrapped peer that answers
/// (`GET {peer}/weaviate/v1/p2p/contextionary`) which contextionary the network uses, retrying
/// for up to 20 s. `None`: the network has none (or this is the first peer of a bootstrapped
/// network).
pub async fn network_contextionary(
    config: &P2pConfig,
    http: &reqwest::Client,
) -> anyhow::Result<Option<NetworkContextionary>> {
    let sources: Vec<(String, String)> = match mode(config) {
        Mode::Genesis(g) => vec![(g.clone(), format!("{g}/contextionary"))],
        Mode::Bootstrapped(peers) => peers
            .into_iter()
            .map(|p| (p.clone(), format!("{p}{PEER_BASE}/p2p/contextionary")))
            .collect(),
    };
    if sources.is_empty() {
        return Ok(None);
    }
    let deadline = Instant::now() + STARTUP_WAIT;
    let mut attempt = 0;
    loop {
        let mut why = vec![];
        for (source, url) in &sources {
            match http.get(url).timeout(GENESIS_TIMEOUT).send().await {
                Ok(r) if r.status().is_success() => {
                    let w: WireContextionary = r.json().await.map_err(|e| {
                        anyhow::anyhow!(
                            "GET {url}: the answer is not a contextionary ({{url, hash}}): {}",
                            error_chain(&e)
                        )
                    })?;
                    return Ok(NetworkContextionary::from_wire(w, source));
                }
                // The genesis answers 404 when it has no contextionary (a peer answers 200
                // with nulls; its 404 means it is no peer).
                Ok(r)
                    if r.status() == reqwest::StatusCode::NOT_FOUND
                        && matches!(mode(config), Mode::Genesis(_)) =>
                {
                    return Ok(None)
                }
                Ok(r) => why.push(format!("GET {url} answered {}", describe(r).await)),
                Err(e) => why.push(format!("GET {url}: {}", error_chain(&e))),
            }
        }
        if Instant::now() + backoff(attempt, MAX_BACKOFF) > deadline {
            let what = match mode(config) {
                Mode::Genesis(_) => {
                    "the genesis (network.genesis_url) did not say which contextionary the network uses"
                }
                Mode::Bootstrapped(_) => {
                    "no bootstrapped peer (P2P.bootstrappedPeers) said which contextionary the network uses"
                }
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
/// answers 404.
async fn download(http: &reqwest::Client, url: &str, dest: &Path) -> anyhow::Result<bool> {
    use tokio::io::AsyncWriteExt;
    let mut r = http
        .get(url)
        .timeout(DOWNLOAD_TIMEOUT)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("GET {url}: {}", error_chain(&e)))?;
    if r.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(false);
    }
    if !r.status().is_success() {
        anyhow::bail!("GET {url} answered {}", describe(r).await);
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
        .map_err(|e| anyhow::anyhow!("GET {url}: {}", error_chain(&e)))?
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
    local: Option<(ContextionaryHandle, Option<PathBuf>, Option<PathBuf>)>,
    data_dir: &Path,
    open: impl Fn(&Path) -> anyhow::Result<ContextionaryHandle>,
) -> anyhow::Result<Option<SettledContextionary>> {
    let http = &crate::http_client();
    let network = network_contextionary(config, http).await?;
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

// ---------------------------------------------------------------------------------------------
// Membership state.

/// What this server knows about its membership, beside the directory.
pub struct Membership {
    /// Bootstrapped mode: this peer's id, made at start.
    self_id: Uuid,
    /// Genesis mode: the id of the current registration.
    registration: Mutex<Option<Uuid>>,
    /// Held for each call to the genesis, so that leaving never races a registration.
    genesis_gate: tokio::sync::Mutex<()>,
    /// The list as the genesis pushed it.
    list: Mutex<LocalList>,
    /// This server's contextionary.
    contextionary: OnceLock<LocalContextionary>,
    leaving: AtomicBool,
    joined: AtomicBool,
    started: AtomicBool,
    /// Wakes the membership loop (leaving, or a list that needs the genesis to learn our
    /// version).
    wake: Notify,
    /// Peers whose schema is being downloaded.
    downloading: Mutex<HashSet<String>>,
    /// The hash of each peer's schema as downloaded.
    downloaded: Mutex<HashMap<String, String>>,
    /// Failed schema downloads in a row, per peer (only the first is a warning).
    schema_failures: Mutex<HashMap<String, u32>>,
    /// Bootstrapped mode: echo failures in a row, per peer.
    echo_failures: Mutex<HashMap<String, u32>>,
}

impl Default for Membership {
    fn default() -> Self {
        Membership {
            self_id: Uuid::new_v4(),
            registration: Mutex::new(None),
            genesis_gate: tokio::sync::Mutex::new(()),
            list: Mutex::new(LocalList::new()),
            contextionary: OnceLock::new(),
            leaving: AtomicBool::new(false),
            joined: AtomicBool::new(false),
            started: AtomicBool::new(false),
            wake: Notify::new(),
            downloading: Mutex::new(HashSet::new()),
            downloaded: Mutex::new(HashMap::new()),
            schema_failures: Mutex::new(HashMap::new()),
            echo_failures: Mutex::new(HashMap::new()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why a ping failed.
enum PingError {
    /// 404: the genesis does not know this registration.
    Forgotten,
    Other(String),
}

impl PeerNode {
    /// How this server takes part.
    pub fn mode(&self) -> Mode {
        mode(&self.config)
    }

    /// This peer's id: the genesis registration's, or (bootstrapped) the one made at start.
    pub fn peer_id(&self) -> Option<Uuid> {
        match self.mode() {
            Mode::Genesis(_) => *lock(&self.membership.registration),
            Mode::Bootstrapped(_) => Some(self.membership.self_id),
        }
    }

    /// Whether this server has joined its network (registered at the genesis, or announced
    /// to a bootstrapped peer, or is the first peer).
    pub fn is_joined(&self) -> bool {
        self.membership.joined.load(Ordering::SeqCst)
    }

    /// Records the contextionary peers may download from this server (once, at start-up).
    pub fn set_contextionary(&self, c: LocalContextionary) {
        let _ = self.membership.contextionary.set(c);
    }

    /// This server's contextionary, when it has one.
    pub fn contextionary(&self) -> Option<&LocalContextionary> {
        self.membership.contextionary.get()
    }

    /// This server's base URL as peers reach it.
    pub fn public_url(&self) -> String {
        base_url(&self.config.public_url)
    }

    /// This server's contextionary as other peers may download it.
    pub fn contextionary_wire(&self) -> Option<WireContextionary> {
        let c = self.contextionary()?;
        let url = c
            .file_name()
            .map(|f| format!("{}{PEER_BASE}/p2p/contextionary/{f}", self.public_url()));
        Some(WireContextionary {
            index_url: match (&url, &c.index_path) {
                (Some(u), Some(_)) => Some(format!("{u}.hnsw")),
                _ => None,
            },
            url,
            hash: Some(WireHash {
                algorithm: "md5".into(),
                value: c.md5.clone(),
            }),
        })
    }

    /// This server's ontology and its hash (recomputed on each call).
    pub async fn schema(&self) -> (Arc<Ontology>, String) {
        let o = match self.core.ontology().await {
            Ok(o) => o,
            Err(_) => self.core.cached_ontology().await,
        };
        let h = schema_hash(&o);
        (o, h)
    }

    /// What `GET /peers/echo` answers.
    pub async fn echo(&self) -> Echo {
        Echo {
            peer_name: self.config.peer_name.clone(),
            id: self.peer_id().unwrap_or(self.membership.self_id),
            schema_hash: self.schema().await.1,
        }
    }

    /// Whether the schema of the known peer `k` has been downloaded at its current hash.
    pub fn schema_current(&self, k: &KnownPeer) -> bool {
        k.schema.is_some()
            && lock(&self.membership.downloaded)
                .get(&k.peer.name)
                .is_some_and(|h| *h == k.peer.schema_hash || k.peer.schema_hash.is_empty())
    }

    /// Starts joining the network in the background (once): registering and pinging, or
    /// announcing and echoing. Call once the server listens.
    pub fn start(self: &Arc<Self>) {
        if self.membership.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let me = self.clone();
        match self.mode() {
            Mode::Genesis(g) => {
                tokio::spawn(async move { me.genesis_loop(g).await });
            }
            Mode::Bootstrapped(b) => {
                tokio::spawn(async move { me.bootstrapped_loop(b).await });
            }
        }
    }

    /// Leaves the network: stops the membership loop and, in genesis mode, deregisters
    /// (`DELETE {genesis}/peers/{id}`), all within `timeout`.
    pub async fn leave(&self, timeout: Duration) {
        self.membership.leaving.store(true, Ordering::SeqCst);
        self.membership.wake.notify_waiters();
        self.membership.wake.notify_one();
        let Mode::Genesis(genesis) = self.mode() else {
            return;
        };
        let work = async {
            // Wait for a registration or ping in flight (bounded by its own time-out).
            let _gate = self.membership.genesis_gate.lock().await;
            let Some(id) = lock(&self.membership.registration).take() else {
                return;
            };
            let url = format!("{genesis}/peers/{id}");
            match self.http.delete(&url).timeout(timeout).send().await {
                Ok(r)
                    if r.status().is_success() || r.status() == reqwest::StatusCode::NOT_FOUND =>
                {
                    tracing::info!("left the network (DELETE {url})");
                }
                Ok(r) => tracing::warn!(
                    "leaving the network: DELETE {url} answered {}",
                    describe(r).await
                ),
                Err(e) => tracing::warn!("leaving the network: DELETE {url}: {}", error_chain(&e)),
            }
        };
        if tokio::time::timeout(timeout, work).await.is_err() {
            tracing::warn!(
                "leaving the network took longer than {timeout:?}; the genesis drops this peer when its liveness timeout passes"
            );
        }
    }

    fn leaving(&self) -> bool {
        self.membership.leaving.load(Ordering::SeqCst)
    }

    /// Sleeps `d`, or less when woken (leaving); false when leaving.
    async fn pause(&self, d: Duration) -> bool {
        if self.leaving() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = self.membership.wake.notified() => {}
        }
        !self.leaving()
    }

    // -- Genesis mode ------------------------------------------------------------------------

    async fn genesis_loop(self: Arc<Self>, genesis: String) {
        let interval = self.config.ping_interval;
        let mut failures = 0u32;
        loop {
            if self.leaving() {
                return;
            }
            let registered = *lock(&self.membership.registration);
            match registered {
                None => {
                    let r = {
                        let _gate = self.membership.genesis_gate.lock().await;
                        if self.leaving() {
                            return;
                        }
                        self.register(&genesis).await
                    };
                    match r {
                        Ok(id) => {
                            failures = 0;
                            *lock(&self.membership.registration) = Some(id);
                            self.membership.joined.store(true, Ordering::SeqCst);
                            tracing::info!(
                                "registered at the genesis {genesis} as {} ({id})",
                                self.config.peer_name
                            );
                            if !self.pause(interval).await {
                                return;
                            }
                        }
                        Err(e) => {
                            failures += 1;
                            if failures == 1 || failures.is_multiple_of(10) {
                                tracing::warn!(
                                    "registering at the genesis (attempt {failures}): {e}; trying again"
                                );
                            } else {
                                tracing::debug!(
                                    "registering at the genesis (attempt {failures}): {e}"
                                );
                            }
                            if !self
                                .pause(backoff(failures, MAX_BACKOFF.max(interval)))
                                .await
                            {
                                return;
                            }
                        }
                    }
                }
                Some(id) => {
                    let r = {
                        let _gate = self.membership.genesis_gate.lock().await;
                        if self.leaving() {
                            return;
                        }
                        self.ping(&genesis, id).await
                    };
                    match r {
                        Ok(()) => {
                            if failures > 0 {
                                tracing::info!("the genesis {genesis} answers pings again");
                            }
                            failures = 0;
                        }
                        Err(PingError::Forgotten) => {
                            tracing::info!(
                                "the genesis {genesis} does not know this peer any more (it restarted, or dropped it): registering again"
                            );
                            let mut reg = lock(&self.membership.registration);
                            if *reg == Some(id) {
                                *reg = None;
                                self.membership.joined.store(false, Ordering::SeqCst);
                            }
                            continue;
                        }
                        Err(PingError::Other(e)) => {
                            failures += 1;
                            if failures == 1 || failures.is_multiple_of(10) {
                                tracing::warn!("pinging the genesis (failure {failures}): {e}");
                            } else {
                                tracing::debug!("pinging the genesis (failure {failures}): {e}");
                            }
                        }
                    }
                    self.refresh_schemas();
                    if !self.pause(interval).await {
                        return;
                    }
                }
            }
        }
    }

    async fn register(&self, genesis: &str) -> Result<Uuid, String> {
        let url = format!("{genesis}/peers/register");
        let body = RegisterBody {
            peer_name: &self.config.peer_name,
            peer_uri: &self.public_url(),
        };
        let r = self
            .http
            .post(&url)
            .timeout(GENESIS_TIMEOUT)
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("POST {url}: {}", error_chain(&e)))?;
        if !r.status().is_success() {
            return Err(format!("POST {url} answered {}", describe(r).await));
        }
        let a: RegisterAnswer = r.json().await.map_err(|e| {
            format!(
                "POST {url}: the answer is not a registration: {}",
                error_chain(&e)
            )
        })?;
        let network = a
            .contextionary
            .and_then(|c| NetworkContextionary::from_wire(c, genesis));
        if let (Some(n), Some(ours)) = (&network, self.contextionary()) {
            if n.algorithm == "md5" && n.hash != ours.md5 {
                tracing::error!(
                    "the genesis now announces contextionary md5 {}, this server uses md5 {}: restart it with the network's contextionary (or P2P.requestContextionary: true)",
                    n.hash,
                    ours.md5
                );
            }
        }
        Ok(a.peer.id)
    }

    async fn ping(&self, genesis: &str, id: Uuid) -> Result<(), PingError> {
        let url = format!("{genesis}/peers/{id}/ping");
        let body = PingBody {
            schema_hash: self.schema().await.1,
            peer_list_version: lock(&self.membership.list).version(),
        };
        let r = self
            .http
            .post(&url)
            .timeout(GENESIS_TIMEOUT)
            .json(&body)
            .send()
            .await
            .map_err(|e| PingError::Other(format!("POST {url}: {}", error_chain(&e))))?;
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(PingError::Forgotten);
        }
        if !r.status().is_success() {
            return Err(PingError::Other(format!(
                "POST {url} answered {}",
                describe(r).await
            )));
        }
        Ok(())
    }

    /// `PUT /p2p/genesis`: a list the genesis pushed, from `remote`. Answers how many peers
    /// (other than this one) the list holds now.
    pub async fn accept_genesis_list(
        self: &Arc<Self>,
        remote: Option<IpAddr>,
        header: impl Fn(&str) -> Option<String>,
        body: &serde_json::Value,
    ) -> Result<usize, Refusal> {
        let Mode::Genesis(genesis) = self.mode() else {
            return Err(Refusal::new(
                403,
                "this peer has no genesis (it is in a bootstrapped network): it accepts no peer lists",
            ));
        };
        let Some(remote) = remote else {
            return Err(Refusal::new(403, "peer lists are accepted only from this peer's genesis; the request's address is unknown"));
        };
        let allowed = genesis_addresses(&genesis).await;
        if !allowed.contains(&remote) {
            return Err(Refusal::new(
                403,
                format!("peer lists are accepted only from this peer's genesis ({genesis}); {remote} is not its address"),
            ));
        }
        let update = ListUpdate::from_request(header, body).map_err(|e| Refusal::new(400, e))?;
        let peers = {
            let mut list = lock(&self.membership.list);
            match list.apply(update) {
                Ok(_) => list.peers(),
                Err(need) => {
                    // The next ping tells the genesis which version this peer holds.
                    self.membership.wake.notify_one();
                    return Err(Refusal::new(
                        409,
                        format!(
                            "{need}; this peer holds version {:?} and says so with its next ping",
                            list.version()
                        ),
                    ));
                }
            }
        };
        let n = self.sync_directory(peers);
        self.refresh_schemas();
        Ok(n)
    }

    /// Makes the directory the genesis's list (without this peer); how many peers it holds.
    fn sync_directory(&self, peers: Vec<Peer>) -> usize {
        let me = self.config.peer_name.clone();
        let wanted: BTreeMap<String, Peer> = peers
            .into_iter()
            .filter(|p| p.name != me)
            .map(|p| (p.name.clone(), p))
            .collect();
        let n = wanted.len();
        let (added, removed) = self.directory.update(|map| {
            let mut changed = false;
            let gone: Vec<String> = map
                .keys()
                .filter(|k| !wanted.contains_key(*k))
                .cloned()
                .collect();
            for g in &gone {
                map.remove(g);
                changed = true;
            }
            let mut added = vec![];
            for (name, p) in wanted {
                match map.get_mut(&name) {
                    Some(k)
                        if k.peer.id == p.id
                            && k.peer.uri == p.uri
                            && k.peer.schema_hash == p.schema_hash => {}
                    Some(k) => {
                        if k.peer.uri != p.uri {
                            k.schema = None;
                        }
                        k.peer = Peer {
                            last_contact_ms: now_ms(),
                            ..p
                        };
                        changed = true;
                    }
                    None => {
                        added.push(name.clone());
                        map.insert(
                            name,
                            KnownPeer {
                                peer: Peer {
                                    last_contact_ms: now_ms(),
                                    ..p
                                },
                                schema: None,
                            },
                        );
                        changed = true;
                    }
                }
            }
            (changed, (added, gone))
        });
        if !added.is_empty() || !removed.is_empty() {
            tracing::info!(
                "peer list: {n} other peers{}{}",
                if added.is_empty() {
                    String::new()
                } else {
                    format!("; new: {}", added.join(", "))
                },
                if removed.is_empty() {
                    String::new()
                } else {
                    format!("; gone: {}", removed.join(", "))
                }
            );
            let mut d = lock(&self.membership.downloaded);
            let mut f = lock(&self.membership.schema_failures);
            for r in &removed {
                d.remove(r);
                f.remove(r);
            }
        }
        n
    }

    // -- Schemas -----------------------------------------------------------------------------

    /// Downloads, in the background, the schema of every known peer whose schema is missing
    /// or older than its hash.
    pub fn refresh_schemas(self: &Arc<Self>) {
        let (_, peers) = self.directory.snapshot();
        for k in peers {
            if !self.schema_current(&k) {
                let me = self.clone();
                tokio::spawn(async move { me.download_schema(k.peer).await });
            }
        }
    }

    async fn download_schema(self: Arc<Self>, peer: Peer) {
        if !lock(&self.membership.downloading).insert(peer.name.clone()) {
            return;
        }
        let url = format!("{}{PEER_BASE}/p2p/schema", base_url(&peer.uri));
        let got = async {
            let r = self
                .http
                .get(&url)
                .timeout(SCHEMA_TIMEOUT)
                .send()
                .await
                .map_err(|e| error_chain(&e))?;
            if !r.status().is_success() {
                return Err(format!("answered {}", describe(r).await));
            }
            r.json::<SchemaAnswer>().await.map_err(|e| error_chain(&e))
        }
        .await;
        lock(&self.membership.downloading).remove(&peer.name);
        match got {
            Ok(s) => {
                let schema = Arc::new(s.schema);
                let stored = self.directory.update(|map| match map.get_mut(&peer.name) {
                    Some(k) if same_uri(&k.peer.uri, &peer.uri) => {
                        k.schema = Some(schema);
                        (true, true)
                    }
                    _ => (false, false),
                });
                lock(&self.membership.schema_failures).remove(&peer.name);
                if stored {
                    lock(&self.membership.downloaded).insert(peer.name.clone(), s.hash.clone());
                    tracing::debug!("downloaded the schema of {} ({})", peer.name, s.hash);
                }
            }
            Err(e) => {
                let failures = {
                    let mut f = lock(&self.membership.schema_failures);
                    let n = f.entry(peer.name.clone()).or_insert(0);
                    *n += 1;
                    *n
                };
                if failures == 1 {
                    tracing::warn!(
                        "cannot download the schema of peer {} (GET {url}): {e}; trying again every ping interval",
                        peer.name
                    );
                } else {
                    tracing::debug!(
                        "cannot download the schema of peer {} (failure {failures}): {e}",
                        peer.name
                    );
                }
            }
        }
    }

    // -- Bootstrapped mode -------------------------------------------------------------------

    async fn bootstrapped_loop(self: Arc<Self>, bootstrapped: Vec<String>) {
        let interval = self.config.ping_interval;
        if bootstrapped.is_empty() {
            self.membership.joined.store(true, Ordering::SeqCst);
            tracing::info!(
                "first peer of a bootstrapped network as {}: waiting for others to announce themselves",
                self.config.peer_name
            );
        } else {
            // A few quick attempts; afterwards once per interval while nobody is known.
            for attempt in 0..6 {
                if self.announce_self(&bootstrapped).await {
                    break;
                }
                if !self.pause(backoff(attempt, MAX_BACKOFF)).await {
                    return;
                }
            }
        }
        loop {
            if !self.pause(interval).await {
                return;
            }
            self.echo_round().await;
            if self.leaving() {
                return;
            }
            if !bootstrapped.is_empty() && self.directory.snapshot().1.is_empty() {
                self.announce_self(&bootstrapped).await;
            }
            self.refresh_schemas();
        }
    }

    async fn self_announcement(&self) -> Announcement {
        Announcement {
            peer_name: self.config.peer_name.clone(),
            peer_uri: self.public_url(),
            id: Some(self.membership.self_id),
            schema_hash: Some(self.schema().await.1),
        }
    }

    /// Announces this peer to the first of `bootstrapped` that answers, and stores the peers it
    /// answers with. Whether one answered.
    async fn announce_self(self: &Arc<Self>, bootstrapped: &[String]) -> bool {
        let me = self.self_announcement().await;
        let mut why = vec![];
        for b in bootstrapped {
            if same_uri(b, &me.peer_uri) {
                continue;
            }
            match self.post_announcement(b, &me).await {
                Ok(a) => {
                    if let (Some(theirs), Some(ours)) = (&a.contextionary_md5, self.contextionary())
                    {
                        if *theirs != ours.md5 {
                            tracing::error!(
                                "{b} answers with contextionary md5 {theirs}, this server uses md5 {}: restart it with the network's contextionary (or P2P.requestContextionary: true)",
                                ours.md5
                            );
                        }
                    }
                    let n = a.peers.len();
                    self.store_vouched(a.peers);
                    self.membership.joined.store(true, Ordering::SeqCst);
                    tracing::info!(
                        "announced {} to {b}, which knows {n} peers",
                        self.config.peer_name
                    );
                    self.refresh_schemas();
                    return true;
                }
                Err(e) => why.push(e),
            }
        }
        tracing::warn!(
            "no bootstrapped peer took this peer's announcement ({}); trying again",
            why.join("; ")
        );
        false
    }

    async fn post_announcement(
        &self,
        to: &str,
        a: &Announcement,
    ) -> Result<AnnounceAnswer, String> {
        let url = format!("{}{PEER_BASE}/peers", base_url(to));
        let r = self
            .http
            .post(&url)
            .timeout(ANNOUNCE_TIMEOUT)
            .json(a)
            .send()
            .await
            .map_err(|e| format!("POST {url}: {}", error_chain(&e)))?;
        if !r.status().is_success() {
            return Err(format!("POST {url} answered {}", describe(r).await));
        }
        r.json().await.map_err(|e| {
            format!(
                "POST {url}: the answer is not an announcement's: {}",
                error_chain(&e)
            )
        })
    }

    /// Stores peers a bootstrapped peer answered with (it echo-checked them).
    fn store_vouched(&self, peers: Vec<WirePeer>) {
        let me = self.config.peer_name.clone();
        let my_uri = self.public_url();
        self.directory.update(|map| {
            let mut changed = false;
            for p in peers {
                if p.name == me || same_uri(&p.uri, &my_uri) {
                    continue;
                }
                if crate::genesis::check_peer_name(&p.name).is_err()
                    || crate::genesis::check_peer_uri(&p.uri).is_err()
                {
                    continue;
                }
                let uri = base_url(&p.uri);
                match map.get_mut(&p.name) {
                    Some(k) if same_uri(&k.peer.uri, &uri) && k.peer.id == p.id => {}
                    _ => {
                        map.insert(
                            p.name.clone(),
                            KnownPeer {
                                peer: Peer {
                                    id: p.id,
                                    name: p.name,
                                    uri,
                                    schema_hash: p.schema_hash,
                                    last_contact_ms: now_ms(),
                                },
                                schema: None,
                            },
                        );
                        changed = true;
                    }
                }
            }
            (changed, ())
        });
    }

    async fn get_echo(&self, uri: &str) -> Result<Echo, String> {
        let url = format!("{}{PEER_BASE}/peers/echo", base_url(uri));
        let r = self
            .http
            .get(&url)
            .timeout(ECHO_TIMEOUT)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {}", error_chain(&e)))?;
        if !r.status().is_success() {
            return Err(format!("GET {url} answered {}", describe(r).await));
        }
        r.json()
            .await
            .map_err(|e| format!("GET {url}: the answer is not an echo: {}", error_chain(&e)))
    }

    /// Echoes every known peer once; drops those that failed [`ECHO_FAILURES_TO_DROP`] times in a
    /// row; re-introduces this peer to one that restarted.
    async fn echo_round(self: &Arc<Self>) {
        let (_, peers) = self.directory.snapshot();
        let checks = peers.into_iter().map(|k| {
            let me = self.clone();
            async move {
                let r = me.get_echo(&k.peer.uri).await;
                (k, r)
            }
        });
        let results = futures::future::join_all(checks).await;
        for (k, r) in results {
            let name = k.peer.name.clone();
            match r {
                Ok(echo) if echo.peer_name == name => {
                    lock(&self.membership.echo_failures).remove(&name);
                    let restarted = echo.id != k.peer.id;
                    self.directory.update(|map| match map.get_mut(&name) {
                        Some(e) if e.peer.uri == k.peer.uri => {
                            e.peer.last_contact_ms = now_ms();
                            let changed =
                                e.peer.id != echo.id || e.peer.schema_hash != echo.schema_hash;
                            e.peer.id = echo.id;
                            e.peer.schema_hash = echo.schema_hash.clone();
                            (changed, ())
                        }
                        _ => (false, ()),
                    });
                    if restarted {
                        tracing::info!(
                            "peer {name} restarted (new id {}): announcing this peer to it again",
                            echo.id
                        );
                        let me = self.clone();
                        let uri = k.peer.uri.clone();
                        tokio::spawn(async move {
                            let a = me.self_announcement().await;
                            if let Err(e) = me.post_announcement(&uri, &a).await {
                                tracing::warn!("announcing this peer to {uri} again: {e}");
                            }
                        });
                    }
                }
                other => {
                    let why = match other {
                        Ok(echo) => format!("it answers as {}", echo.peer_name),
                        Err(e) => e,
                    };
                    let failures = {
                        let mut f = lock(&self.membership.echo_failures);
                        let n = f.entry(name.clone()).or_insert(0);
                        *n += 1;
                        *n
                    };
                    if failures >= ECHO_FAILURES_TO_DROP {
                        lock(&self.membership.echo_failures).remove(&name);
                        lock(&self.membership.downloaded).remove(&name);
                        let dropped = self.directory.update(|map| match map.get(&name) {
                            Some(e) if e.peer.uri == k.peer.uri => {
                                map.remove(&name);
                                (true, true)
                            }
                            _ => (false, false),
                        });
                        if dropped {
                            tracing::info!(
                                "dropped peer {name}: its echo failed {failures} times in a row ({why})"
                            );
                        }
                    } else {
                        tracing::debug!("echo of peer {name} failed ({failures}): {why}");
                    }
                }
            }
        }
    }

    /// `POST /peers`: a peer announces itself (or another peer announces a newcomer). The
    /// newcomer is echo-checked; one already known (same name and URI) is left as it is;
    /// otherwise it is stored and announced to every known peer. The answer carries this
    /// peer's contextionary and the peers it knows (itself included).
    pub async fn accept_announcement(
        self: &Arc<Self>,
        a: Announcement,
    ) -> Result<AnnounceAnswer, Refusal> {
        if let Mode::Genesis(g) = self.mode() {
            return Err(Refusal::new(
                409,
                format!("this peer's network is run by the genesis {g}: register there (POST {g}/peers/register), not by announcing"),
            ));
        }
        crate::genesis::check_peer_name(&a.peer_name).map_err(|e| Refusal::new(422, e))?;
        let uri = crate::genesis::check_peer_uri(&a.peer_uri).map_err(|e| Refusal::new(422, e))?;
        let uri = base_url(&uri);
        if a.peer_name == self.config.peer_name {
            if same_uri(&uri, &self.public_url()) {
                return Ok(self.answer_for(&self.me_as_peer().await).await);
            }
            return Err(Refusal::new(
                409,
                format!(
                    "the peer name {:?} is this peer's (at {}); choose another network.peer_name",
                    a.peer_name,
                    self.public_url()
                ),
            ));
        }
        let echo = self.get_echo(&uri).await.map_err(|e| {
            Refusal::new(400, format!("peer not reachable: {e}; check that peerUri is the address other peers reach it at"))
        })?;
        if echo.peer_name != a.peer_name {
            return Err(Refusal::new(
                400,
                format!(
                    "{uri} answers its echo as peer {:?}, not {:?}",
                    echo.peer_name, a.peer_name
                ),
            ));
        }
        let peer = Peer {
            id: echo.id,
            name: a.peer_name.clone(),
            uri: uri.clone(),
            schema_hash: echo.schema_hash.clone(),
            last_contact_ms: now_ms(),
        };
        lock(&self.membership.echo_failures).remove(&peer.name);
        let is_new = self.directory.update(|map| match map.get_mut(&peer.name) {
            Some(k) if same_uri(&k.peer.uri, &peer.uri) => {
                // Known: keep it, with what its echo says now.
                let changed = k.peer.id != peer.id || k.peer.schema_hash != peer.schema_hash;
                k.peer.id = peer.id;
                k.peer.schema_hash = peer.schema_hash.clone();
                k.peer.last_contact_ms = peer.last_contact_ms;
                (changed, false)
            }
            _ => {
                map.insert(
                    peer.name.clone(),
                    KnownPeer {
                        peer: peer.clone(),
                        schema: None,
                    },
                );
                (true, true)
            }
        });
        if is_new {
            tracing::info!(
                "peer {} at {} joined (announced, echo-checked)",
                peer.name,
                peer.uri
            );
            lock(&self.membership.downloaded).remove(&peer.name);
            // Tell everybody else.
            let (_, known) = self.directory.snapshot();
            let forward = Announcement {
                peer_name: peer.name.clone(),
                peer_uri: peer.uri.clone(),
                id: Some(peer.id),
                schema_hash: Some(peer.schema_hash.clone()),
            };
            for k in known.into_iter().filter(|k| k.peer.name != peer.name) {
                let me = self.clone();
                let forward = forward.clone();
                tokio::spawn(async move {
                    if let Err(e) = me.post_announcement(&k.peer.uri, &forward).await {
                        tracing::warn!("announcing {} to {}: {e}", forward.peer_name, k.peer.name);
                    }
                });
            }
        }
        self.refresh_schemas();
        Ok(self.answer_for(&peer).await)
    }

    async fn me_as_peer(&self) -> Peer {
        Peer {
            id: self.peer_id().unwrap_or(self.membership.self_id),
            name: self.config.peer_name.clone(),
            uri: self.public_url(),
            schema_hash: self.schema().await.1,
            last_contact_ms: now_ms(),
        }
    }

    async fn answer_for(&self, newcomer: &Peer) -> AnnounceAnswer {
        let me = self.me_as_peer().await;
        let (_, known) = self.directory.snapshot();
        let mut peers = vec![WirePeer::from(&me)];
        peers.extend(
            known
                .iter()
                .filter(|k| k.peer.name != newcomer.name)
                .map(|k| WirePeer::from(&k.peer)),
        );
        AnnounceAnswer {
            contextionary_md5: self.contextionary().map(|c| c.md5.clone()),
            contextionary: self.contextionary_wire(),
            peer: WirePeer::from(newcomer),
            peers,
        }
    }
}

/// The addresses the genesis URL's host resolves to (IPv4-mapped IPv6 as IPv4).
async fn genesis_addresses(genesis: &str) -> Vec<IpAddr> {
    let Ok(url) = reqwest::Url::parse(genesis) else {
        return vec![];
    };
    let Some(host) = url.host_str() else {
        return vec![];
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    if let Ok(ip) = host.parse::<IpAddr>() {
        return vec![canonical(ip)];
    }
    let port = url.port_or_known_default().unwrap_or(80);
    let lookup = tokio::net::lookup_host(format!("{host}:{port}"));
    let found = tokio::time::timeout(Duration::from_secs(2), lookup).await;
    match found {
        Ok(Ok(addrs)) => addrs.map(|a| canonical(a.ip())).collect(),
        _ => vec![],
    }
}

/// An IPv4-mapped IPv6 address as IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_drop_slashes_and_the_api_path() {
        assert_eq!(base_url("http://h:1/"), "http://h:1");
        assert_eq!(base_url("http://h:1/weaviate/v1/"), "http://h:1");
        assert_eq!(base_url("http://h:1/weaviate/v1"), "http://h:1");
        assert!(same_uri("http://H:1/", "http://h:1"));
    }

    #[test]
    fn port_zero_becomes_the_bound_port() {
        assert_eq!(
            with_bound_port("http://127.0.0.1:0", 8123),
            "http://127.0.0.1:8123"
        );
        assert_eq!(
            with_bound_port("http://127.0.0.1:0/", 8123),
            "http://127.0.0.1:8123"
        );
        assert_eq!(
            with_bound_port("http://127.0.0.1:9000", 8123),
            "http://127.0.0.1:9000"
        );
        assert_eq!(
            with_bound_port("http://example.test", 8123),
            "http://example.test"
        );
    }

    #[test]
    fn downloads_stay_at_their_source() {
        assert_eq!(
            at_source(
                "http://127.0.0.1:7000",
                "http://10.1.2.3:9/contextionary/a.fifu"
            )
            .unwrap(),
            "http://127.0.0.1:7000/contextionary/a.fifu"
        );
        assert_eq!(
            at_source("http://127.0.0.1:7000", "/contextionary/a.fifu").unwrap(),
            "http://127.0.0.1:7000/contextionary/a.fifu"
        );
    }

    #[test]
    fn schema_hash_is_the_md5_of_the_ontology_json() {
        let o = Ontology::default();
        let want = hex::encode(Md5::digest(serde_json::to_vec(&o).unwrap()));
        assert_eq!(schema_hash(&o), want);
        assert_eq!(want.len(), 32);
    }

    #[test]
    fn a_contextionary_without_hash_is_none() {
        assert_eq!(
            NetworkContextionary::from_wire(WireContextionary::default(), "http://g"),
            None
        );
        let n = NetworkContextionary::from_wire(
            WireContextionary {
                url: Some("http://g/contextionary/x.fifu".into()),
                hash: Some(WireHash {
                    algorithm: "MD5".into(),
                    value: "ABC".into(),
                }),
                index_url: None,
            },
            "http://g",
        )
        .unwrap();
        assert_eq!((n.algorithm.as_str(), n.hash.as_str()), ("md5", "abc"));
    }
}
