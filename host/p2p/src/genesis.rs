//! The genesis server (`weft genesis`): the directory of a network's peers.
//!
//! The operations are those of Weaviate 0.12's genesis contract
//! (`weaviate-genesis-0.12.0-openapi.json`), at the root of the server:
//!
//! * `POST /peers/register` (`{peerName, peerUri}`): the genesis first checks that the peer
//!   answers `GET {peerUri}/weaviate/v1/p2p/ping` with a 2xx within [`GenesisConfig::ping_timeout`]
//!   (400 "peer not reachable" otherwise, and nothing is stored). Registering a name (or a URI)
//!   again replaces the old registration, with a new id. The answer is the peer with its id and
//!   the network's contextionary.
//! * `GET /peers`: every registered peer.
//! * `POST /peers/{peerId}/ping` (`{schemaHash}`, plus the extension `peerListVersion`): keeps
//!   a peer alive and records its schema hash; 404 for an id the genesis does not know (the
//!   peer then registers again).
//! * `DELETE /peers/{peerId}`: deregistration, 204.
//! * Extensions: `GET /contextionary` (`{url, hash}`) and `GET /contextionary/{file}` (the
//!   configured finalfusion file and its `.hnsw` index, streamed); `GET /openapi.json`.
//!
//! **No operation needs a key**: the genesis contract has no key scheme, so anyone who can reach
//! the genesis can register, ping, deregister and download. Run it where only the network's
//! peers reach it.
//!
//! After every change of the list (a registration, a deregistration, a peer dropped for silence,
//! a changed schema hash) the genesis pushes the list to every registered peer with
//! `PUT {peerUri}/weaviate/v1/p2p/genesis`, each peer by its own task (so a slow peer delays
//! nobody else), each push bounded by [`GenesisConfig::push_timeout`]; a failed push is logged
//! and retried on that peer's next ping. A peer that never said `peerListVersion` gets Weaviate
//! 0.12's `PeerUpdateList` (a JSON array of `{id, name, uri, schemaHash}`); one that did gets
//! what changed since that version (see [`crate::peerlist`]).
//!
//! Liveness: a sweeper runs every quarter of [`GenesisConfig::liveness_timeout`] (at least every
//! 100 ms) and drops every peer not heard from (registration or ping) for longer than the
//! timeout, then pushes.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Body, EndpointExt, Route};
use poem_openapi::param::Path;
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiResponse, Object, OpenApi, OpenApiService};
use tokio::sync::{watch, Notify};
use uuid::Uuid;
use weft_core::network::Peer;

use crate::peerlist::PeerList;

/// How long the reachability check at registration waits for the peer's ping endpoint.
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one push of the list to one peer may take.
pub const DEFAULT_PUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// The default liveness timeout (`--liveness-timeout`).
pub const DEFAULT_LIVENESS_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a graceful shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// The peers' API base path: the genesis reaches `{peerUri}{PEER_BASE}/p2p/…`.
const PEER_BASE: &str = "/weaviate/v1";

/// The network's contextionary file, served for download and announced by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextionaryFile {
    /// The finalfusion file (`.fifu`); its index, when there, is `<path>.hnsw`.
    pub path: PathBuf,
    /// Its content hash as the `finalfusion` plugin computes it (`content_hash("md5")`), which
    /// peers compare with their own contextionary's. The binary computes it (so this crate does
    /// not link the contextionary).
    pub md5: String,
}

/// How the genesis runs.
#[derive(Debug, Clone)]
pub struct GenesisConfig {
    /// Address to listen on (`127.0.0.1:0` for any free port).
    pub listen: String,
    /// Peers not heard from for longer are dropped.
    pub liveness_timeout: Duration,
    /// The network's contextionary, if it has one.
    pub contextionary: Option<ContextionaryFile>,
    /// The URL peers reach the genesis at, for the contextionary's download URL. `None`: the
    /// `Host` the registering peer used, else the address the genesis is bound to.
    pub public_url: Option<String>,
    /// The reachability check's time limit.
    pub ping_timeout: Duration,
    /// One push's time limit.
    pub push_timeout: Duration,
}

impl GenesisConfig {
    /// Listens on `listen` with the default timeouts and no contextionary.
    pub fn new(listen: impl Into<String>) -> Self {
        GenesisConfig {
            listen: listen.into(),
            liveness_timeout: DEFAULT_LIVENESS_TIMEOUT,
            contextionary: None,
            public_url: None,
            ping_timeout: DEFAULT_PING_TIMEOUT,
            push_timeout: DEFAULT_PUSH_TIMEOUT,
        }
    }
}

/// Serves the genesis on `config.listen` until `shutdown` resolves. Prints one line on stdout,
/// `weft genesis: listening on http://ADDR` (the real port when asked for port 0), once bound.
pub async fn run(config: GenesisConfig, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let listen = config.listen.clone();
    let acceptor = TcpListener::bind(listen.clone())
        .into_acceptor()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "--listen {listen}: cannot listen there: {e}; choose another address (e.g. 127.0.0.1:0 for any free port)"
            )
        })?;
    let addr = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().copied())
        .map(|a| a.to_string())
        .unwrap_or(listen);
    let genesis = Genesis::new(config, addr.clone())?;
    let sweeper = tokio::spawn(sweep(genesis.clone()));
    if let Some(c) = &genesis.config.contextionary {
        tracing::info!(
            "contextionary {} (md5 {}) served at /contextionary/{}",
            c.path.display(),
            c.md5,
            genesis.file_name
        );
    }
    tracing::info!(
        "genesis: peers silent for {:?} are dropped; no operation needs a key",
        genesis.config.liveness_timeout
    );
    println!("weft genesis: listening on http://{addr}");
    let served = poem::Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(routes(genesis.clone()), shutdown, Some(SHUTDOWN_GRACE))
        .await
        .map_err(|e| anyhow::anyhow!("the genesis server stopped: {e}"));
    sweeper.abort();
    // Every push task sees `closing` on this change and ends.
    genesis.closing.store(true, Ordering::SeqCst);
    genesis.changed();
    served
}

/// The genesis's OpenAPI document (pretty JSON), as `GET /openapi.json` serves it and
/// `openapi/weft-genesis-openapi.json` holds it.
pub fn openapi_document() -> String {
    let spec = service(None).spec();
    serde_json::from_str::<serde_json::Value>(&spec)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or(spec)
}

fn service(genesis: Option<Arc<Genesis>>) -> OpenApiService<GenesisApi, ()> {
    OpenApiService::new(
        GenesisApi(genesis),
        "Weft genesis server",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "The genesis server of a Weft (Weaviate 0.12 compatible) P2P network: peers register, \
         ping and leave; the genesis checks that they answer, drops silent ones and pushes the \
         peer list to every peer (PUT {peerUri}/weaviate/v1/p2p/genesis). No operation needs a \
         key: the genesis contract has no key scheme. Errors are {\"error\":[{\"message\"}]}.",
    )
}

fn routes(genesis: Arc<Genesis>) -> impl poem::Endpoint {
    let doc = openapi_document();
    Route::new()
        .at(
            "/openapi.json",
            poem::endpoint::make_sync(move |_| {
                poem::Response::builder()
                    .content_type("application/json")
                    .body(doc.clone())
            }),
        )
        .nest("/", service(Some(genesis)))
        .catch_all_error(error_body)
        .with(poem::middleware::Tracing)
}

/// Turns errors poem or poem-openapi answer by themselves (unknown path, wrong method, a body
/// that does not parse) into `{"error":[{"message"}]}`, keeping the status.
async fn error_body(err: poem::Error) -> poem::Response {
    if err.is_from_response() {
        return err.into_response();
    }
    let status = err.status();
    let message = match status.as_u16() {
        404 => format!(
            "{err}; the genesis has /peers, /peers/register, /peers/{{peerId}}, /peers/{{peerId}}/ping and /contextionary, see /openapi.json"
        ),
        405 => format!("{err}; see /openapi.json for the operations on this path"),
        400 => format!("{err}; send a JSON body as /openapi.json describes it"),
        415 => format!("{err}; send the body as JSON with Content-Type: application/json"),
        _ => err.to_string(),
    };
    poem::Response::builder()
        .status(status)
        .content_type("application/json")
        .body(serde_json::json!({"error": [{"message": message}]}).to_string())
}

// ---------------------------------------------------------------------------------------------
// State.

/// What the genesis knows about one registered peer beyond the list.
struct Contact {
    /// Last registration or ping (monotonic: a clock change drops nobody).
    last_seen: Instant,
    /// The list version the peer said it has (`peerListVersion`), or, once a push to a peer that
    /// says it can take changes succeeded, the version pushed. `None`: a 0.12 peer, which gets
    /// full lists.
    known: Option<u64>,
    /// The list version last pushed to it successfully.
    delivered: Option<u64>,
    /// Wakes its push task outside a change (a ping that shows it is behind).
    kick: Arc<Notify>,
}

struct State {
    list: PeerList,
    contacts: HashMap<Uuid, Contact>,
}

struct Genesis {
    config: GenesisConfig,
    /// `http://ADDR` as bound.
    bound_url: String,
    /// The contextionary's file name (empty without one).
    file_name: String,
    /// Whether `<contextionary>.hnsw` exists (at start).
    has_index: bool,
    state: Mutex<State>,
    /// Bumped on every change of the list; every push task watches it.
    changes: watch::Sender<u64>,
    closing: AtomicBool,
    http: reqwest::Client,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Genesis {
    fn new(config: GenesisConfig, addr: String) -> anyhow::Result<Arc<Self>> {
        let (file_name, has_index) = match &config.contextionary {
            None => (String::new(), false),
            Some(c) => {
                let name = c
                    .path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "--contextionary {}: not a file name the genesis can serve; give the path of a .fifu file",
                            c.path.display()
                        )
                    })?
                    .to_string();
                (name, index_path(&c.path).is_file())
            }
        };
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.ping_timeout)
            .build()
            .map_err(|e| anyhow::anyhow!("cannot make the HTTP client: {e}"))?;
        Ok(Arc::new(Genesis {
            config,
            bound_url: format!("http://{addr}"),
            file_name,
            has_index,
            state: Mutex::new(State {
                list: PeerList::new(),
                contacts: HashMap::new(),
            }),
            changes: watch::channel(0).0,
            closing: AtomicBool::new(false),
            http,
        }))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn changed(&self) {
        self.changes.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// The contextionary as announced to a peer that reached the genesis at `host`.
    fn contextionary(&self, host: Option<&str>) -> Option<Contextionary> {
        let c = self.config.contextionary.as_ref()?;
        let base = match (&self.config.public_url, host) {
            (Some(u), _) => u.trim_end_matches('/').to_string(),
            (None, Some(h)) => format!("http://{h}"),
            (None, None) => self.bound_url.clone(),
        };
        let url = format!("{base}/contextionary/{}", encode_segment(&self.file_name));
        Some(Contextionary {
            index_url: self.has_index.then(|| format!("{url}.hnsw")),
            url,
            hash: ContextionaryHash {
                algorithm: "md5".into(),
                value: c.md5.clone(),
            },
        })
    }

    /// Checks that `uri` answers its ping endpoint.
    async fn reachable(&self, uri: &str) -> Result<(), String> {
        let url = format!("{uri}{PEER_BASE}/p2p/ping");
        match self
            .http
            .get(&url)
            .timeout(self.config.ping_timeout)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("GET {url} answered {}", r.status())),
            Err(e) if e.is_timeout() => Err(format!(
                "GET {url} did not answer within {:?}",
                self.config.ping_timeout
            )),
            Err(e) => Err(format!("GET {url}: {}", error_chain(&e.without_url()))),
        }
    }

    /// Registers `peer` (already checked), replacing any registration of its name or URI; the
    /// replaced ids.
    fn register(self: &Arc<Self>, peer: Peer) -> Vec<Uuid> {
        let id = peer.id;
        let kick = Arc::new(Notify::new());
        let replaced = {
            let mut st = self.state();
            let same: Vec<Uuid> = st
                .list
                .peers()
                .into_iter()
                .filter(|p| p.name == peer.name || same_uri(&p.uri, &peer.uri))
                .map(|p| p.id)
                .collect();
            for old in &same {
                st.list.remove(*old);
                st.contacts.remove(old);
            }
            st.list.upsert(peer);
            st.contacts.insert(
                id,
                Contact {
                    last_seen: Instant::now(),
                    known: None,
                    delivered: None,
                    kick: kick.clone(),
                },
            );
            same
        };
        self.changed();
        tokio::spawn(push_task(self.clone(), id, kick));
        replaced
    }

    /// What to push to peer `id` now.
    fn next_push(&self, id: Uuid) -> NextPush {
        if self.closing.load(Ordering::SeqCst) {
            return NextPush::Gone;
        }
        let st = self.state();
        let (Some(contact), Some(peer)) = (st.contacts.get(&id), st.list.get(id)) else {
            return NextPush::Gone;
        };
        let version = st.list.version();
        let up_to_date = match contact.known {
            Some(v) => v == version,
            None => contact.delivered == Some(version),
        };
        if up_to_date {
            return NextPush::UpToDate;
        }
        let (headers, body) = st.list.update_for(contact.known).to_request();
        NextPush::Send {
            uri: peer.uri.clone(),
            headers,
            body,
            version,
        }
    }

    fn delivered(&self, id: Uuid, version: u64) {
        let mut st = self.state();
        if let Some(c) = st.contacts.get_mut(&id) {
            c.delivered = Some(version);
            if c.known.is_some() {
                c.known = Some(version);
            }
        }
    }

    /// Drops every peer silent for longer than the liveness timeout; their names.
    fn drop_silent(&self) -> Vec<String> {
        let timeout = self.config.liveness_timeout;
        let dropped: Vec<String> = {
            let mut st = self.state();
            let expired: Vec<Uuid> = st
                .contacts
                .iter()
                .filter(|(_, c)| c.last_seen.elapsed() > timeout)
                .map(|(id, _)| *id)
                .collect();
            expired
                .into_iter()
                .filter_map(|id| {
                    st.contacts.remove(&id);
                    st.list.remove(id).map(|p| p.name)
                })
                .collect()
        };
        if !dropped.is_empty() {
            tracing::info!(
                "dropped {} (silent for longer than {timeout:?})",
                dropped.join(", ")
            );
            self.changed();
        }
        dropped
    }
}

fn index_path(path: &std::path::Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".hnsw");
    PathBuf::from(s)
}

fn same_uri(a: &str, b: &str) -> bool {
    a.trim_end_matches('/')
        .eq_ignore_ascii_case(b.trim_end_matches('/'))
}

/// Percent-encodes everything but unreserved characters (a file name as one path segment).
fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
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

/// Pushes the list to peer `id` whenever it changes (and when kicked), until the peer is gone.
/// One task per peer: pushes to one peer never overlap, so they arrive in order.
async fn push_task(genesis: Arc<Genesis>, id: Uuid, kick: Arc<Notify>) {
    let mut changes = genesis.changes.subscribe();
    loop {
        changes.borrow_and_update();
        match genesis.next_push(id) {
            NextPush::Gone => return,
            NextPush::UpToDate => {}
            NextPush::Send {
                uri,
                headers,
                body,
                version,
            } => push(&genesis, id, &uri, headers, &body, version).await,
        }
        tokio::select! {
            r = changes.changed() => if r.is_err() { return },
            _ = kick.notified() => {}
        }
    }
}

/// What a peer's push task does next.
enum NextPush {
    /// The peer is gone (or the genesis is stopping): the task ends.
    Gone,
    /// The peer has the current list.
    UpToDate,
    /// Send it this.
    Send {
        uri: String,
        headers: Vec<(&'static str, String)>,
        body: serde_json::Value,
        version: u64,
    },
}

/// One `PUT {uri}/weaviate/v1/p2p/genesis`; a failure is logged.
async fn push(
    genesis: &Genesis,
    id: Uuid,
    uri: &str,
    headers: Vec<(&'static str, String)>,
    body: &serde_json::Value,
    version: u64,
) {
    let url = format!("{uri}{PEER_BASE}/p2p/genesis");
    let mut req = genesis
        .http
        .put(&url)
        .timeout(genesis.config.push_timeout)
        .json(body);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    match req.send().await {
        Ok(r) if r.status().is_success() => {
            tracing::debug!("pushed list version {version} to {uri}");
            genesis.delivered(id, version);
        }
        Ok(r) => tracing::warn!(
            "pushing the peer list (version {version}) to {url}: answered {}; retried on its next ping",
            r.status()
        ),
        Err(e) => tracing::warn!(
            "pushing the peer list (version {version}) to {url}: {}; retried on its next ping",
            error_chain(&e.without_url())
        ),
    }
}

/// Drops silent peers every quarter of the liveness timeout (at least every 100 ms).
async fn sweep(genesis: Arc<Genesis>) {
    let every = (genesis.config.liveness_timeout / 4).max(Duration::from_millis(100));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        genesis.drop_silent();
    }
}

// ---------------------------------------------------------------------------------------------
// Wire types: the genesis contract's names.

/// A registration (the contract's `PeerUpdate`).
#[derive(Object, Debug)]
#[oai(rename = "PeerUpdate")]
pub struct PeerUpdate {
    /// The peer's name, unique in the network: a DNS label (letters, digits and `-`, at most
    /// 63 characters, not starting or ending with `-`). Registering a name again replaces its
    /// registration.
    #[oai(rename = "peerName")]
    pub peer_name: Option<String>,
    /// The peer's base URL as the genesis reaches it, e.g. `http://10.0.0.5:8080` (without
    /// `/weaviate/v1`). The genesis checks `GET {peerUri}/weaviate/v1/p2p/ping` before storing.
    #[oai(rename = "peerUri")]
    pub peer_uri: Option<String>,
}

/// A registered peer (the contract's `Peer`).
#[derive(Object, Debug, Clone)]
#[oai(rename = "Peer")]
pub struct PeerModel {
    /// This registration's id; a new one on every registration.
    pub id: Uuid,
    /// The peer's name.
    #[oai(rename = "peerName")]
    pub peer_name: String,
    /// The peer's base URL.
    #[oai(rename = "peerUri")]
    pub peer_uri: String,
    /// When the genesis last heard from the peer (registration or ping), Unix milliseconds.
    pub last_contact_at: i64,
    /// The MD5 of the peer's schema as it last said in a ping (empty before its first ping).
    pub schema_hash: String,
}

impl From<Peer> for PeerModel {
    fn from(p: Peer) -> Self {
        PeerModel {
            id: p.id,
            peer_name: p.name,
            peer_uri: p.uri,
            last_contact_at: p.last_contact_ms,
            schema_hash: p.schema_hash,
        }
    }
}

/// A content hash.
#[derive(Object, Debug, Clone)]
#[oai(rename = "ContextionaryHash")]
pub struct ContextionaryHash {
    /// Always `md5`.
    pub algorithm: String,
    /// The hex digest the `finalfusion` plugin answers for `content_hash("md5")` over the file.
    pub value: String,
}

/// The network's contextionary (the contract's `Contextionary`).
#[derive(Object, Debug, Clone)]
#[oai(rename = "Contextionary")]
pub struct Contextionary {
    /// Where the finalfusion file can be downloaded (`GET /contextionary/{file}` of this
    /// genesis).
    pub url: String,
    /// Its content hash.
    pub hash: ContextionaryHash,
    /// Extension: where its nearest-neighbour index can be downloaded (`{url}.hnsw`); absent
    /// when the genesis has none.
    #[oai(rename = "indexUrl", skip_serializing_if_is_none)]
    pub index_url: Option<String>,
}

/// The answer to a registration (the contract's `PeerRegistrationResponse`).
#[derive(Object, Debug)]
#[oai(rename = "PeerRegistrationResponse")]
pub struct PeerRegistrationResponse {
    /// The peer as registered, with its new id (keep it for pings and leaving).
    pub peer: PeerModel,
    /// The network's contextionary: **absent when the genesis has none** (started without
    /// `--contextionary`); a peer then keeps its own.
    #[oai(skip_serializing_if_is_none)]
    pub contextionary: Option<Contextionary>,
}

/// A ping (the contract's `PeerPing`).
#[derive(Object, Debug)]
#[oai(rename = "PeerPing")]
pub struct PeerPing {
    /// The MD5 (hex) of the peer's current schema; absent: unchanged. A changed hash is pushed
    /// to every peer (they download the changed schema).
    #[oai(rename = "schemaHash")]
    pub schema_hash: Option<String>,
    /// Extension: the version of the peer list the peer has. A peer that sends it receives only
    /// what changed since (see `weft_p2p::peerlist`) instead of full lists; when it is behind,
    /// the genesis pushes to it at once.
    #[oai(rename = "peerListVersion")]
    pub peer_list_version: Option<u64>,
}

/// `{"error":[{"message"}]}`.
#[derive(Object, Debug)]
#[oai(rename = "ErrorResponse")]
pub struct ErrorResponse {
    /// The errors (one).
    pub error: Vec<ErrorMessage>,
}

/// One error.
#[derive(Object, Debug)]
#[oai(rename = "ErrorMessage")]
pub struct ErrorMessage {
    /// What is wrong and what to change.
    pub message: String,
}

/// The errors the genesis answers.
#[derive(ApiResponse, Debug)]
pub enum GenesisError {
    /// The peer could not be reached (registration), or the request is malformed.
    #[oai(status = 400)]
    BadRequest(Json<ErrorResponse>),
    /// No such peer (or file).
    #[oai(status = 404)]
    NotFound(Json<ErrorResponse>),
    /// A field is missing or invalid.
    #[oai(status = 422)]
    Unprocessable(Json<ErrorResponse>),
    /// A fault of the genesis (e.g. the contextionary file cannot be read).
    #[oai(status = 500)]
    Internal(Json<ErrorResponse>),
}

fn body(m: impl Into<String>) -> Json<ErrorResponse> {
    Json(ErrorResponse {
        error: vec![ErrorMessage { message: m.into() }],
    })
}

type GenesisResult<T> = Result<T, GenesisError>;

/// `DELETE /peers/{peerId}`'s answer.
#[derive(ApiResponse, Debug)]
pub enum Left {
    /// The peer left the network.
    #[oai(status = 204)]
    Left,
}

/// `POST /peers/{peerId}/ping`'s answer.
#[derive(ApiResponse, Debug)]
pub enum PingReceived {
    /// Ping received.
    #[oai(status = 200)]
    Received,
}

/// `GET /contextionary/{file}`'s answer.
#[derive(ApiResponse)]
pub enum Download {
    /// The file's bytes.
    #[oai(status = 200)]
    File(
        Binary<Body>,
        /// The file's size in bytes.
        #[oai(header = "Content-Length")]
        u64,
    ),
}

/// Checks a peer name: a DNS label.
pub fn check_peer_name(name: &str) -> Result<(), String> {
    let ok_chars = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if name.is_empty()
        || name.len() > 63
        || !ok_chars
        || name.starts_with('-')
        || name.ends_with('-')
    {
        return Err(format!(
            "peerName {name:?} is not a DNS label; use 1 to 63 letters, digits and '-', not starting or ending with '-' (e.g. \"peer-1\")"
        ));
    }
    Ok(())
}

/// Checks a peer URI and answers it without trailing slashes.
pub fn check_peer_uri(uri: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(uri).map_err(|e| {
        format!("peerUri {uri:?} is not a URL ({e}); give the peer's base URL, e.g. \"http://10.0.0.5:8080\"")
    })?;
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(format!(
                "peerUri {uri:?}: this genesis reaches peers over plain http only (it is built without TLS); give the peer's http:// address"
            ))
        }
        other => {
            return Err(format!(
                "peerUri {uri:?} has scheme {other:?}; give the peer's http:// base URL, e.g. \"http://10.0.0.5:8080\""
            ))
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "peerUri {uri:?} has no host; give the peer's base URL, e.g. \"http://10.0.0.5:8080\""
        ));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(format!(
            "peerUri {uri:?}: give only scheme, host, port (and a path prefix if the peer has one), without user, query or fragment"
        ));
    }
    Ok(uri.trim_end_matches('/').to_string())
}

fn parse_id(raw: &str) -> GenesisResult<Uuid> {
    raw.parse().map_err(|_| {
        GenesisError::NotFound(body(format!(
            "no peer is registered with id {raw:?} (peer ids are UUIDs); register with POST /peers/register to get one"
        )))
    })
}

// ---------------------------------------------------------------------------------------------
// Operations.

/// The genesis operations (none needs a key).
pub struct GenesisApi(Option<Arc<Genesis>>);

impl GenesisApi {
    fn genesis(&self) -> GenesisResult<&Arc<Genesis>> {
        self.0
            .as_ref()
            .ok_or_else(|| GenesisError::Internal(body("the genesis is not running")))
    }
}

#[OpenApi]
impl GenesisApi {
    /// List the registered peers (no key needed).
    #[oai(path = "/peers", method = "get", operation_id = "genesis.peers.list")]
    async fn list(&self) -> GenesisResult<Json<Vec<PeerModel>>> {
        let g = self.genesis()?;
        let mut peers: Vec<PeerModel> =
            g.state().list.peers().into_iter().map(Into::into).collect();
        peers.sort_by(|a, b| a.peer_name.cmp(&b.peer_name));
        Ok(Json(peers))
    }

    /// Register a peer in the network (no key needed). The genesis first checks that the peer
    /// answers `GET {peerUri}/weaviate/v1/p2p/ping` (400 and nothing stored otherwise); a
    /// registration of a name or URI already registered replaces that one, with a new id. Then
    /// the list is pushed to every peer.
    #[oai(
        path = "/peers/register",
        method = "post",
        operation_id = "genesis.peers.register"
    )]
    async fn register(
        &self,
        req: &poem::Request,
        body_in: Json<PeerUpdate>,
    ) -> GenesisResult<Json<PeerRegistrationResponse>> {
        let g = self.genesis()?;
        let name = body_in.0.peer_name.ok_or_else(|| {
            GenesisError::Unprocessable(body(
                "peerName is missing; give the peer's name, a DNS label such as \"peer-1\"",
            ))
        })?;
        check_peer_name(&name).map_err(|m| GenesisError::Unprocessable(body(m)))?;
        let uri = body_in.0.peer_uri.ok_or_else(|| {
            GenesisError::Unprocessable(body(
                "peerUri is missing; give the peer's base URL as the genesis reaches it, e.g. \"http://10.0.0.5:8080\"",
            ))
        })?;
        let uri = check_peer_uri(&uri).map_err(|m| GenesisError::Unprocessable(body(m)))?;
        g.reachable(&uri).await.map_err(|why| {
            GenesisError::BadRequest(body(format!(
                "peer not reachable at {uri}: {why}; check that peerUri is the address the genesis can reach it at"
            )))
        })?;
        let peer = Peer {
            id: Uuid::new_v4(),
            name,
            uri,
            schema_hash: String::new(),
            last_contact_ms: now_ms(),
        };
        let replaced = g.register(peer.clone());
        tracing::info!(
            "registered {} at {} as {}{}",
            peer.name,
            peer.uri,
            peer.id,
            if replaced.is_empty() {
                String::new()
            } else {
                format!(" (replacing {replaced:?})")
            }
        );
        let host = req
            .headers()
            .get(poem::http::header::HOST)
            .and_then(|h| h.to_str().ok());
        Ok(Json(PeerRegistrationResponse {
            peer: peer.into(),
            contextionary: g.contextionary(host),
        }))
    }

    /// Mark a peer alive and record its schema hash (no key needed). 404 for an id the genesis
    /// does not know (it forgot it, or dropped it for silence): register again.
    #[oai(
        path = "/peers/:peerId/ping",
        method = "post",
        operation_id = "genesis.peers.ping"
    )]
    async fn ping(
        &self,
        #[oai(name = "peerId")] peer_id: Path<String>,
        ping: Json<PeerPing>,
    ) -> GenesisResult<PingReceived> {
        let g = self.genesis()?;
        let id = parse_id(&peer_id.0)?;
        let (schema_changed, kick) = {
            let mut st = g.state();
            let current = st.list.version();
            let Some(contact) = st.contacts.get_mut(&id) else {
                return Err(GenesisError::NotFound(body(format!(
                    "no peer is registered with id {id} (the genesis restarted, or dropped it after more than {:?} without a ping); register again with POST /peers/register",
                    g.config.liveness_timeout
                ))));
            };
            contact.last_seen = Instant::now();
            if let Some(v) = ping.0.peer_list_version {
                contact.known = Some(v);
            }
            let behind = match contact.known {
                Some(v) => v != current,
                None => contact.delivered != Some(current),
            };
            let kick = behind.then(|| contact.kick.clone());
            let hash = match ping.0.schema_hash {
                Some(h) => h,
                None => st
                    .list
                    .get(id)
                    .map(|p| p.schema_hash.clone())
                    .unwrap_or_default(),
            };
            (st.list.touch(id, now_ms(), &hash), kick)
        };
        match schema_changed {
            None => {
                return Err(GenesisError::NotFound(body(format!(
                    "no peer is registered with id {id}; register again with POST /peers/register"
                ))))
            }
            Some(true) => g.changed(),
            Some(false) => {
                if let Some(k) = kick {
                    k.notify_one();
                }
            }
        }
        Ok(PingReceived::Received)
    }

    /// Leave the network (no key needed): the peer is removed at once and the list pushed to
    /// the others.
    #[oai(
        path = "/peers/:peerId",
        method = "delete",
        operation_id = "genesis.peers.leave"
    )]
    async fn leave(&self, #[oai(name = "peerId")] peer_id: Path<String>) -> GenesisResult<Left> {
        let g = self.genesis()?;
        let id = parse_id(&peer_id.0)?;
        let removed = {
            let mut st = g.state();
            st.contacts.remove(&id);
            st.list.remove(id)
        };
        let Some(p) = removed else {
            return Err(GenesisError::NotFound(body(format!(
                "no peer is registered with id {id}; GET /peers lists the registered ones"
            ))));
        };
        tracing::info!("{} ({}) left the network", p.name, p.uri);
        g.changed();
        Ok(Left::Left)
    }

    /// Extension: the network's contextionary, as in a registration's answer (no key needed).
    /// 404 when the genesis has none.
    #[oai(
        path = "/contextionary",
        method = "get",
        operation_id = "genesis.contextionary.get"
    )]
    async fn contextionary(&self, req: &poem::Request) -> GenesisResult<Json<Contextionary>> {
        let g = self.genesis()?;
        let host = req
            .headers()
            .get(poem::http::header::HOST)
            .and_then(|h| h.to_str().ok());
        g.contextionary(host).map(Json).ok_or_else(|| {
            GenesisError::NotFound(body(
                "this genesis has no contextionary (it was started without --contextionary PATH); peers keep their own",
            ))
        })
    }

    /// Extension: download the network's contextionary file, or its index `<file>.hnsw`
    /// (no key needed). Only those two names are served.
    #[oai(
        path = "/contextionary/:file",
        method = "get",
        operation_id = "genesis.contextionary.download"
    )]
    async fn download(&self, file: Path<String>) -> GenesisResult<Download> {
        let g = self.genesis()?;
        let Some(c) = &g.config.contextionary else {
            return Err(GenesisError::NotFound(body(
                "this genesis has no contextionary (it was started without --contextionary PATH)",
            )));
        };
        let path = if file.0 == g.file_name {
            c.path.clone()
        } else if file.0 == format!("{}.hnsw", g.file_name) {
            index_path(&c.path)
        } else {
            return Err(GenesisError::NotFound(body(format!(
                "there is no file {:?} here; this genesis serves {:?} and its index {:?} (see GET /contextionary)",
                file.0,
                g.file_name,
                format!("{}.hnsw", g.file_name)
            ))));
        };
        let f = tokio::fs::File::open(&path).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                GenesisError::NotFound(body(format!(
                    "{} is not there ({e}); the genesis serves the index only when it exists beside the contextionary (weft contextionary fetch writes it)",
                    path.display()
                )))
            } else {
                GenesisError::Internal(body(format!("cannot read {}: {e}", path.display())))
            }
        })?;
        let len = f
            .metadata()
            .await
            .map_err(|e| {
                GenesisError::Internal(body(format!("cannot read {}: {e}", path.display())))
            })?
            .len();
        Ok(Download::File(Binary(Body::from_async_read(f)), len))
    }
}
