//! `weft-genesis`: the genesis server (`weft genesis`), the directory of a network's peers.
//!
//! The operations are those of Weaviate 0.12's genesis contract
//! (`weaviate-genesis-0.12.0-openapi.json`), at the root of the server, with Weft's trust rules:
//!
//! * `POST /peers/register` (`{peerName, peerUri}`), **signed by the peer**
//!   ([`weft_peer_protocol::signature`], `Weft-Peer` = `peerName`). A name is bound to the first
//!   key it registers with ([`weft_peer_protocol::bindings`], kept in
//!   `<data_dir>/peer-keys.json`): another key for it is 409 until an operator removes the
//!   peer (`DELETE /admin/peers/{peerName}` with the admin key). Before storing, the genesis
//!   asks `GET {peerUri}/weaviate/v1/p2p/ping`, signed, and needs the answer signed with the
//!   registering key: the address is the key holder's. When it is not, the answer is 400
//!   "the peer did not answer the echo" and nothing else (no status, no body, no connection
//!   error: the genesis is nobody's port scanner). Registering a name again (same key) replaces
//!   the old registration, with a new id.
//! * `GET /peers`: every registered peer, with its key.
//! * `POST /peers/{peerId}/ping` (`{schemaHash, peerListVersion}`) and `DELETE /peers/{peerId}`:
//!   signed by the key registered under that id (403 otherwise); 404 for an id the genesis does
//!   not know (the peer then registers again).
//! * Extensions: `GET /contextionary` (`{url, hash}`), `GET /contextionary/{file}` (the
//!   configured finalfusion file and its `.hnsw` index), `DELETE /admin/peers/{peerName}`,
//!   `GET /network` (the network as the genesis sees it, with the admin key), `GET /openapi.json`.
//! * The browser console's network page, `GET /console` (`weft-console`; a browser's `GET /`
//!   is sent there), which fetches `GET /network` with the admin key the user enters.
//!
//! Weaviate 0.12 peers cannot sign: a genesis started with `--accept-unsigned-peers` registers
//! them (and takes their unsigned pings), which trusts the network perimeter.
//!
//! After every change of the list the genesis pushes it, **signed**, to every registered peer
//! (`PUT {peerUri}/weaviate/v1/p2p/genesis`), each peer by its own task, each push bounded in
//! time; a failed push is retried on that peer's next ping. A peer that never said
//! `peerListVersion` gets Weaviate 0.12's `PeerUpdateList`; one that did gets the changes
//! ([`weft_peer_protocol::peerlist`]). Peers pin the genesis's key at their first registration.
//!
//! Budgets: at most `max_peers` registered (and bound) names; at most
//! `registrations_per_minute` registrations from one address. Liveness: peers not heard from
//! for longer than the liveness timeout are dropped (their names stay bound).
//!
//! Admission: every peer talks to the genesis, so it serves through the same admission loop as
//! `weft serve` (`weft-admission`): at most [`MAX_CONNECTIONS`] connections (one more is closed
//! at once; `weft genesis` first raises its soft open-file limit to the hard one, as `weft serve`
//! does, and serves fewer connections only when even that leaves no room for 1,024), a request's headers within the header-read timeout (`--header-read-timeout`,
//! [`DEFAULT_HEADER_READ_TIMEOUT`]; a slowloris client is closed then), idle connections closed
//! after [`IDLE_TIMEOUT`], at most [`MAX_REQUESTS_IN_PROGRESS`] requests answered at once (503
//! with `Retry-After` past it) and each answered within [`REQUEST_TIMEOUT`]. No incoming request
//! is held open: the list is pushed by the genesis's own outgoing `PUT`s, and a contextionary
//! download streams its body after the answer's headers (bounded by the idle timeout, not the
//! request timeout).
//!
//! Owns: the genesis's state and operations. Must not know: peers' objects, keys or schemas.

mod console_page;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use poem::listener::{Acceptor, AcceptorExt, Listener, TcpListener};
use poem::{Body, Endpoint, EndpointExt, Route};
use poem_openapi::param::Path;
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiResponse, Object, OpenApi, OpenApiService};
use tokio::sync::{watch, Notify};
use uuid::Uuid;
use weft_peer_protocol::bindings::{self, Bindings};
use weft_peer_protocol::budget::PerMinute;
use weft_peer_protocol::peerlist::{Peer, PeerList};
use weft_peer_protocol::signature::{Verified, GENESIS_NAME};
use weft_peer_protocol::signed_http::{self, Signing};
use weft_peer_protocol::tls::ServerTls;
use weft_peer_protocol::wire::{
    check_peer_name, ContentHash, ContextionaryOffer, ErrorBody, Ping, Refusal, RegisteredPeer,
    Registration, RegistrationAnswer,
};
use weft_peer_protocol::{Call, Identity, PeerClient, PeerUri, PublicKey};

/// How long the reachability check at registration waits for the peer's ping endpoint.
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one push of the list to one peer may take.
pub const DEFAULT_PUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// The default liveness timeout (`--liveness-timeout`).
pub const DEFAULT_LIVENESS_TIMEOUT: Duration = Duration::from_secs(60);
/// The default most peers (`--max-peers`).
pub const DEFAULT_MAX_PEERS: usize = 1000;
/// The default most registrations per minute from one address (`--registrations-per-minute`).
pub const DEFAULT_REGISTRATIONS_PER_MINUTE: u32 = 30;
/// The most bytes read of a peer's answer, and of a request body.
const MAX_MESSAGE_BYTES: usize = 1 << 20;
/// How long a graceful shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// The most connections open at once (admission control; one more is closed as soon as it is
/// accepted).
pub const MAX_CONNECTIONS: usize = 1024;
/// The default time from a request's first byte to the end of its headers
/// (`--header-read-timeout`).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection with no request in progress and no byte either way stays open.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The most requests answered at once; past it a request is answered 503 with `Retry-After`.
pub const MAX_REQUESTS_IN_PROGRESS: usize = 256;
/// The most time from a request's headers to its answer's headers (a registration's
/// reachability check included: at least twice the ping timeout).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// What a failed reachability check answers, whatever the reason.
pub const NO_ECHO: &str = "the peer did not answer the echo";

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

/// The operator's credentials for `DELETE /admin/peers/{peerName}`.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminKey {
    /// `X-API-KEY`.
    pub key: String,
    /// `X-API-TOKEN`.
    pub token: String,
}

impl std::fmt::Debug for AdminKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AdminKey({}, …)", self.key)
    }
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
    /// The URL peers reach the genesis at: the contextionary's download URL, and the address
    /// signed messages must be meant for. `None`: the `Host` the caller used, any address.
    pub public_url: Option<PeerUri>,
    /// The reachability check's time limit.
    pub ping_timeout: Duration,
    /// One push's time limit.
    pub push_timeout: Duration,
    /// Where the genesis keeps its identity and the peers' keys.
    pub data_dir: PathBuf,
    /// Serve HTTPS with this certificate.
    pub tls: Option<ServerTls>,
    /// Extra CAs to trust when calling peers (`--ca-file`).
    pub ca: Vec<reqwest::Certificate>,
    /// Register Weaviate 0.12 peers, which cannot sign.
    pub accept_unsigned: bool,
    /// The operator's key, for removing a peer.
    pub admin: Option<AdminKey>,
    /// The most peers registered (and names bound) at once.
    pub max_peers: usize,
    /// The most registrations per minute from one address.
    pub registrations_per_minute: u32,
    /// From a request's first byte to the end of its headers (admission control).
    pub header_read_timeout: Duration,
    /// The most connections open at once (admission control): [`MAX_CONNECTIONS`], or fewer
    /// when the process's open-file limit leaves less room (`weft genesis` derives it).
    pub max_connections: usize,
}

impl GenesisConfig {
    /// Listens on `listen` with the defaults, no contextionary, data in `data_dir`.
    pub fn new(listen: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        GenesisConfig {
            listen: listen.into(),
            liveness_timeout: DEFAULT_LIVENESS_TIMEOUT,
            contextionary: None,
            public_url: None,
            ping_timeout: DEFAULT_PING_TIMEOUT,
            push_timeout: DEFAULT_PUSH_TIMEOUT,
            data_dir: data_dir.into(),
            tls: None,
            ca: vec![],
            accept_unsigned: false,
            admin: None,
            max_peers: DEFAULT_MAX_PEERS,
            registrations_per_minute: DEFAULT_REGISTRATIONS_PER_MINUTE,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
        }
    }
}

/// Serves the genesis on `config.listen` until `shutdown` resolves. Prints two lines on stdout
/// once bound: `weft genesis: identity ed25519:…` and `weft genesis: listening on
/// http(s)://ADDR` (the real port when asked for port 0).
pub async fn run(config: GenesisConfig, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let listen = config.listen.clone();
    let (identity, made) = Identity::load_or_create(&config.data_dir)?;
    if made {
        tracing::info!(
            "made this genesis's identity {} in {}",
            identity.public(),
            config
                .data_dir
                .join(weft_peer_protocol::identity::IDENTITY_FILE)
                .display()
        );
    }
    let bindings =
        Bindings::open(&config.data_dir, config.max_peers).map_err(anyhow::Error::msg)?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let listener = TcpListener::bind(listen.clone());
    let bind_error = |e: std::io::Error| {
        anyhow::anyhow!(
            "--listen {listen}: cannot listen there: {e}; choose another address (e.g. 127.0.0.1:0 for any free port)"
        )
    };
    let acceptor = match &config.tls {
        Some(tls) => tls
            .acceptor(listener.into_acceptor().await.map_err(bind_error)?)
            .boxed(),
        None => listener.into_acceptor().await.map_err(bind_error)?.boxed(),
    };
    let addr = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().copied())
        .map(|a| a.to_string())
        .unwrap_or_else(|| listen.clone());
    let genesis = Genesis::new(
        config,
        Arc::new(identity),
        bindings,
        format!("{scheme}://{addr}"),
    )?;
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
        "genesis: peers silent for {:?} are dropped; registrations are {}",
        genesis.config.liveness_timeout,
        if genesis.config.accept_unsigned {
            "signed, or unsigned from Weaviate 0.12 peers (--accept-unsigned-peers: the network perimeter is trusted)"
        } else {
            "signed by each peer's key"
        }
    );
    if genesis.config.public_url.is_none() {
        tracing::warn!(
            "no --public-url: signed messages are taken whatever address they were signed for, so a message signed for another genesis could be replayed here; give the URL peers reach this genesis at"
        );
    }
    if scheme == "http" && !addr.starts_with("127.") && !addr.starts_with("[::1]") {
        tracing::warn!(
            "the genesis serves plain HTTP on {addr}: messages are signed, but not private; give it a certificate (--tls-cert, --tls-key) to serve HTTPS"
        );
    }
    println!("weft genesis: identity {}", genesis.identity.public());
    println!("weft genesis: listening on {scheme}://{addr}");
    let admission = admission(&genesis.config);
    tracing::info!(
        "admission: at most {} connections, {} requests in progress; header read {} ms, idle {} ms, request {} ms",
        admission.max_connections,
        admission.max_requests_in_progress,
        admission.header_read_timeout.as_millis(),
        admission.idle_timeout.as_millis(),
        admission.request_timeout.as_millis()
    );
    let served = weft_admission::serve(
        acceptor,
        routes(genesis.clone()),
        admission,
        shutdown,
        SHUTDOWN_GRACE,
    )
    .await
    .map_err(|e| anyhow::anyhow!("the genesis server stopped: {e}"));
    sweeper.abort();
    // Every push task sees `closing` on this change and ends.
    genesis.closing.store(true, Ordering::SeqCst);
    genesis.changed();
    served
}

/// The genesis's admission control (see the crate's documentation).
fn admission(config: &GenesisConfig) -> weft_admission::Admission {
    weft_admission::Admission {
        max_connections: config.max_connections,
        max_requests_in_progress: MAX_REQUESTS_IN_PROGRESS,
        header_read_timeout: config.header_read_timeout,
        idle_timeout: IDLE_TIMEOUT,
        request_timeout: REQUEST_TIMEOUT.max(config.ping_timeout * 2),
        answers: Arc::new(GenesisAnswers),
    }
}

/// The genesis's refusals, in its error shape `{"error":[{"message"}]}`.
struct GenesisAnswers;

impl weft_admission::Answers for GenesisAnswers {
    fn too_many_requests(&self, max_requests_in_progress: usize) -> poem::Response {
        ErrorBody::new(format!(
            "the genesis is answering {max_requests_in_progress} requests already (its most at once); send this one again after Retry-After seconds"
        ))
        .response(poem::http::StatusCode::SERVICE_UNAVAILABLE)
    }

    fn too_slow(&self, request_timeout: Duration) -> poem::Response {
        ErrorBody::new(format!(
            "the genesis did not answer the request within {} ms and stopped it; send it again",
            request_timeout.as_millis()
        ))
        .response(poem::http::StatusCode::SERVICE_UNAVAILABLE)
    }

    fn names(&self) -> weft_admission::Names {
        weft_admission::Names {
            max_connections: "the genesis's connection cap (weft_genesis::MAX_CONNECTIONS)",
            header_read_timeout: "--header-read-timeout",
            idle_timeout: "the genesis's idle timeout (weft_genesis::IDLE_TIMEOUT)",
        }
    }
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
         ping and leave with requests signed by their Ed25519 keys (HTTP Message Signatures, \
         RFC 9421: Signature-Input, Signature, Content-Digest, Weft-Peer); a peer name is bound \
         to the key it first registered with. The genesis checks that a peer answers at its \
         address with its key, drops silent ones and pushes the signed peer list to every peer \
         (PUT {peerUri}/weaviate/v1/p2p/genesis). Errors are {\"error\":[{\"message\"}]}.",
    )
}

fn routes(genesis: Arc<Genesis>) -> impl poem::Endpoint {
    let doc = openapi_document();
    let signing = genesis.signing.clone();
    Route::new()
        .at(
            "/openapi.json",
            poem::endpoint::make_sync(move |_| {
                poem::Response::builder()
                    .content_type("application/json")
                    .body(doc.clone())
            }),
        )
        .at("/console", console_page::page)
        .at("/console/assets/:name", console_page::asset)
        .nest("/", service(Some(genesis)))
        .catch_all_error(error_body)
        // A browser's `GET /` is sent to the network page (the operations' router has `/`).
        .around(|ep, req| async move {
            match console_page::browser_at_root(&req) {
                Some(redirect) => Ok(redirect),
                None => ep.call(req).await.map(poem::IntoResponse::into_response),
            }
        })
        .around(move |ep, req| signing.clone().serve(ep, req))
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
            "{err}; the genesis has /peers, /peers/register, /peers/{{peerId}}, /peers/{{peerId}}/ping, /admin/peers/{{peerName}}, /network and /contextionary, see /openapi.json; a browser's network page is /console"
        ),
        405 => format!("{err}; see /openapi.json for the operations on this path"),
        400 => format!("{err}; send a JSON body as /openapi.json describes it"),
        415 => format!("{err}; send the body as JSON with Content-Type: application/json"),
        _ => err.to_string(),
    };
    ErrorBody::new(message).response(status)
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
    identity: Arc<Identity>,
    signing: Arc<Signing>,
    bindings: Bindings,
    client: PeerClient,
    registrations: PerMinute,
    /// `http(s)://ADDR` as bound.
    bound_url: String,
    /// The contextionary's file name (empty without one).
    file_name: String,
    /// Whether `<contextionary>.hnsw` exists (at start).
    has_index: bool,
    state: Mutex<State>,
    /// Bumped on every change of the list; every push task watches it.
    changes: watch::Sender<u64>,
    closing: AtomicBool,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Genesis {
    fn new(
        config: GenesisConfig,
        identity: Arc<Identity>,
        bindings: Bindings,
        bound_url: String,
    ) -> anyhow::Result<Arc<Self>> {
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
        let http = weft_peer_protocol::tls::http_client(&config.ca, config.ping_timeout)
            .map_err(anyhow::Error::msg)?;
        let client = PeerClient::new(http, identity.clone(), GENESIS_NAME, MAX_MESSAGE_BYTES);
        let authorities = config.public_url.iter().map(PeerUri::authority).collect();
        let signing = Signing::new(
            identity.clone(),
            GENESIS_NAME,
            authorities,
            MAX_MESSAGE_BYTES,
        );
        Ok(Arc::new(Genesis {
            registrations: PerMinute::new(config.registrations_per_minute, 100_000),
            config,
            identity,
            signing,
            bindings,
            client,
            bound_url,
            file_name,
            has_index,
            state: Mutex::new(State {
                list: PeerList::new(),
                contacts: HashMap::new(),
            }),
            changes: watch::channel(0).0,
            closing: AtomicBool::new(false),
        }))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn changed(&self) {
        self.changes.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// The contextionary as announced to a peer that reached the genesis at `host`.
    fn contextionary(&self, host: Option<&str>) -> Option<ContextionaryOffer> {
        let c = self.config.contextionary.as_ref()?;
        let base = match (&self.config.public_url, host) {
            (Some(u), _) => u.to_string(),
            (None, Some(h)) => format!(
                "{}://{h}",
                if self.config.tls.is_some() {
                    "https"
                } else {
                    "http"
                }
            ),
            (None, None) => self.bound_url.clone(),
        };
        let url = format!("{base}/contextionary/{}", encode_segment(&self.file_name));
        Some(ContextionaryOffer {
            index_url: self.has_index.then(|| format!("{url}.hnsw")),
            url: Some(url),
            hash: Some(ContentHash {
                algorithm: "md5".into(),
                value: c.md5.clone(),
            }),
        })
    }

    /// Whether `uri` answers its ping endpoint, signed by `key` (any 2xx from a peer that
    /// cannot sign when `key` is `None`). The reason is for this genesis's log only.
    async fn reachable(&self, uri: &PeerUri, key: Option<&PublicKey>) -> Result<(), String> {
        let call = Call::get(uri.api("/p2p/ping")).timeout(self.config.ping_timeout);
        let answer = self.client.send(call).await.map_err(|e| e.to_string())?;
        if !answer.ok() {
            return Err(format!("answered {}", answer.status));
        }
        match key {
            Some(k) if !answer.signed_by(k) => Err(format!(
                "answered, but not signed with {k} (signed by {:?})",
                answer.signer.as_ref().map(|v| v.key.to_string())
            )),
            _ => Ok(()),
        }
    }

    fn register(self: &Arc<Self>, peer: Peer) -> Vec<Uuid> {
        let id = peer.id;
        let kick = Arc::new(Notify::new());
        let replaced = {
            let mut st = self.state();
            let same: Vec<Uuid> = st
                .list
                .peers()
                .into_iter()
                .filter(|p| p.name == peer.name || p.uri == peer.uri)
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

    /// The request carries the operator's admin key (`X-API-KEY`, `X-API-TOKEN` as given with
    /// `--admin-key`, `--admin-token`; compared in constant time): 403 naming what it is
    /// needed for (`what`) otherwise, or saying how to give this genesis one (`to`).
    fn check_admin(&self, req: &poem::Request, what: &str, to: &str) -> GenesisResult<()> {
        let Some(admin) = &self.config.admin else {
            return Err(GenesisError::Forbidden(ErrorBody::json(format!(
                "this genesis has no admin key; start it with --admin-key and --admin-token (WEFT_GENESIS_ADMIN_KEY, WEFT_GENESIS_ADMIN_TOKEN) {to}"
            ))));
        };
        let header = |n: &str| {
            req.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let same = |a: &str, b: &str| {
            use subtle::ConstantTimeEq;
            a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
        };
        if !(same(&header("x-api-key"), &admin.key) && same(&header("x-api-token"), &admin.token)) {
            return Err(GenesisError::Forbidden(ErrorBody::json(format!(
                "{what} needs the genesis's admin key: send X-API-KEY and X-API-TOKEN as given with --admin-key and --admin-token"
            ))));
        }
        Ok(())
    }

    /// The network as the genesis sees it now.
    fn network_view(&self) -> GenesisNetworkView {
        let st = self.state();
        let mut peers: Vec<GenesisNetworkPeer> = st
            .list
            .peers()
            .into_iter()
            .map(|p| {
                let contact = st.contacts.get(&p.id);
                GenesisNetworkPeer {
                    silent_for_ms: contact
                        .map(|c| c.last_seen.elapsed().as_millis() as u64)
                        .unwrap_or(0),
                    list_version: contact.and_then(|c| c.known),
                    liveness: "alive".into(),
                    name: p.name,
                    id: p.id,
                    uri: p.uri,
                    fingerprint: p.identity.map(|k| k.fingerprint()),
                    identity: p.identity.map(|k| k.to_string()),
                    schema_hash: p.schema_hash,
                    last_contact_at: p.last_contact_ms,
                }
            })
            .collect();
        peers.sort_by(|a, b| a.name.cmp(&b.name));
        let key = self.identity.public();
        GenesisNetworkView {
            mode: "genesis-server".into(),
            this: GenesisNetworkSelf {
                name: GENESIS_NAME.into(),
                uri: self
                    .config
                    .public_url
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| self.bound_url.clone()),
                identity: key.to_string(),
                fingerprint: key.fingerprint(),
            },
            contextionary_hash: self.config.contextionary.as_ref().map(|c| c.md5.clone()),
            liveness_window_ms: self.config.liveness_timeout.as_millis() as u64,
            list_version: st.list.version(),
            peers,
        }
    }

    /// The registered peer `id` may be acted for by this request: it is signed with the key
    /// registered under `id` (or the peer cannot sign and the genesis accepts that).
    fn acts_for(&self, id: Uuid, signer: Option<&Verified>) -> GenesisResult<()> {
        let key = {
            let st = self.state();
            match st.list.get(id) {
                Some(p) => p.identity,
                None => return Ok(()), // the handler answers 404
            }
        };
        match (key, signer) {
            (Some(k), Some(v)) if v.key == k => Ok(()),
            (None, _) if self.config.accept_unsigned => Ok(()),
            (Some(k), None) => Err(GenesisError::Unauthorized(ErrorBody::json(format!(
                "the request is not signed: only the peer registered as {id} may do this, signing with its key {k}"
            )))),
            (Some(k), Some(_)) => Err(GenesisError::Forbidden(ErrorBody::json(format!(
                "only the peer registered as {id} may do this: sign the request with its key {k}"
            )))),
            (None, _) => Err(GenesisError::Forbidden(ErrorBody::json(
                "this genesis takes only signed requests",
            ))),
        }
    }
}

fn index_path(path: &std::path::Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".hnsw");
    PathBuf::from(s)
}

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

enum NextPush {
    Gone,
    UpToDate,
    Send {
        uri: String,
        headers: Vec<(&'static str, String)>,
        body: serde_json::Value,
        version: u64,
    },
}

async fn push(
    genesis: &Genesis,
    id: Uuid,
    uri: &str,
    headers: Vec<(&'static str, String)>,
    body: &serde_json::Value,
    version: u64,
) {
    let Ok(uri) = PeerUri::parse(uri) else {
        return;
    };
    let url = uri.api("/p2p/genesis");
    let mut call =
        Call::json(poem::http::Method::PUT, &url, body).timeout(genesis.config.push_timeout);
    for (k, v) in headers {
        call = call.header(k, v);
    }
    match genesis.client.send(call).await {
        Ok(a) if a.ok() => {
            tracing::debug!("pushed list version {version} to {uri}");
            genesis.delivered(id, version);
        }
        Ok(a) => tracing::warn!(
            "pushing the peer list (version {version}) to {url}: answered {} ({}); retried on its next ping",
            a.status,
            a.error_message()
        ),
        Err(e) => tracing::warn!(
            "pushing the peer list (version {version}) to {url}: {e}; retried on its next ping"
        ),
    }
}

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
// Answers.

fn registered(p: Peer) -> RegisteredPeer {
    RegisteredPeer {
        id: p.id,
        peer_name: p.name,
        peer_uri: p.uri,
        last_contact_at: p.last_contact_ms,
        schema_hash: p.schema_hash,
        identity: p.identity.map(|k| k.to_string()),
    }
}

/// The errors the genesis answers: the peer protocol's refusals (one type for both servers).
pub type GenesisError = Refusal;

type GenesisResult<T> = Result<T, GenesisError>;

/// `DELETE /peers/{peerId}` and `DELETE /admin/peers/{peerName}`: done.
#[derive(ApiResponse, Debug)]
pub enum Left {
    /// The peer is removed.
    #[oai(status = 204)]
    Left,
}

/// `POST /peers/{peerId}/ping`: received.
#[derive(ApiResponse, Debug)]
pub enum PingReceived {
    /// Received.
    #[oai(status = 200)]
    Received,
}

/// A file download.
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

/// The genesis in its network view.
#[derive(Object, Debug, Clone)]
pub struct GenesisNetworkSelf {
    /// `genesis`.
    pub name: String,
    /// Its URL (`--public-url`, else the address it listens on).
    pub uri: String,
    /// Its public key, `ed25519:…`.
    pub identity: String,
    /// The key's fingerprint (the first 8 bytes of its SHA-256, hex).
    pub fingerprint: String,
}

/// A registered peer in the genesis's network view.
#[derive(Object, Debug, Clone)]
pub struct GenesisNetworkPeer {
    /// Its name.
    pub name: String,
    /// Its registration id.
    pub id: Uuid,
    /// Its base URL.
    pub uri: String,
    /// Its public key (absent for a Weaviate 0.12 peer, which cannot sign).
    #[oai(skip_serializing_if_is_none)]
    pub identity: Option<String>,
    /// That key's fingerprint.
    #[oai(skip_serializing_if_is_none)]
    pub fingerprint: Option<String>,
    /// The MD5 of its schema, as its last ping said.
    #[oai(rename = "schemaHash")]
    pub schema_hash: String,
    /// Its last registration or ping, Unix ms.
    #[oai(rename = "lastContactAt")]
    pub last_contact_at: i64,
    /// How long it has been silent (ms); past `livenessWindowMs` it is dropped.
    #[oai(rename = "silentForMs")]
    pub silent_for_ms: u64,
    /// `alive`: registered and heard from within the liveness timeout (silent ones are
    /// dropped, so every listed peer is).
    pub liveness: String,
    /// The list version it said it holds (absent: a 0.12 peer, sent full lists).
    #[oai(rename = "listVersion", skip_serializing_if_is_none)]
    pub list_version: Option<u64>,
}

/// `GET /network`: the network as the genesis sees it (the browser console's network page).
#[derive(Object, Debug, Clone)]
pub struct GenesisNetworkView {
    /// `genesis-server`.
    pub mode: String,
    /// The genesis itself.
    #[oai(rename = "self")]
    pub this: GenesisNetworkSelf,
    /// The MD5 of the network's contextionary (`null`: none; peers keep their own).
    #[oai(rename = "contextionaryHash")]
    pub contextionary_hash: Option<String>,
    /// Peers silent for longer are dropped (`--liveness-timeout`, ms).
    #[oai(rename = "livenessWindowMs")]
    pub liveness_window_ms: u64,
    /// The peer list's version.
    #[oai(rename = "listVersion")]
    pub list_version: u64,
    /// Every registered peer, by name.
    pub peers: Vec<GenesisNetworkPeer>,
}

/// Checks a peer URI: an `http(s)` base URL; answers it normalised.
pub fn check_peer_uri(uri: &str) -> Result<PeerUri, String> {
    PeerUri::parse(uri).map_err(|e| format!("peerUri: {e}"))
}

fn parse_id(raw: &str) -> GenesisResult<Uuid> {
    raw.parse().map_err(|_| {
        GenesisError::NotFound(ErrorBody::json(format!(
            "no peer is registered with id {raw:?} (peer ids are UUIDs); register with POST /peers/register to get one"
        )))
    })
}

fn remote_ip(req: &poem::Request) -> String {
    req.remote_addr()
        .as_socket_addr()
        .map(|a| match a.ip() {
            std::net::IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(|v4| v4.to_string())
                .unwrap_or_else(|| v6.to_string()),
            v4 => v4.to_string(),
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Operations.

/// The genesis's operations.
pub struct GenesisApi(Option<Arc<Genesis>>);

impl GenesisApi {
    fn genesis(&self) -> GenesisResult<&Arc<Genesis>> {
        self.0
            .as_ref()
            .ok_or_else(|| GenesisError::Internal(ErrorBody::json("the genesis is not running")))
    }
}

#[OpenApi]
impl GenesisApi {
    /// Every registered peer, by name, with its key.
    #[oai(path = "/peers", method = "get", operation_id = "genesis.peers.list")]
    async fn list(&self) -> GenesisResult<Json<Vec<RegisteredPeer>>> {
        let g = self.genesis()?;
        let mut peers: Vec<RegisteredPeer> =
            g.state().list.peers().into_iter().map(registered).collect();
        peers.sort_by(|a, b| a.peer_name.cmp(&b.peer_name));
        Ok(Json(peers))
    }

    /// Register a peer, signed with its key (`Weft-Peer` = `peerName`). The genesis first asks
    /// `GET {peerUri}/weaviate/v1/p2p/ping` and needs an answer signed with the same key (400
    /// "the peer did not answer the echo" otherwise; nothing is stored). A name is bound to the
    /// first key it registered with: another key is 409 until the operator removes the peer.
    /// Registering again (same name, same key) replaces the old registration with a new id.
    #[oai(
        path = "/peers/register",
        method = "post",
        operation_id = "genesis.peers.register"
    )]
    async fn register(
        &self,
        req: &poem::Request,
        body_in: Json<Registration>,
    ) -> GenesisResult<Json<RegistrationAnswer>> {
        let g = self.genesis()?;
        let signer = signed_http::verified(req).cloned();
        if signer.is_none() && !g.config.accept_unsigned {
            return Err(GenesisError::Unauthorized(ErrorBody::json(
                "sign the registration with the peer's key (HTTP Message Signatures; see README \"Running a network across organisations\"); a Weaviate 0.12 peer, which cannot sign, is taken only by a genesis started with --accept-unsigned-peers",
            )));
        }
        let ip = remote_ip(req);
        if let Err(over) = g.registrations.take(&ip) {
            return Err(GenesisError::TooMany(
                ErrorBody::json(format!(
                    "more than {} registrations from {ip} in a minute (--registrations-per-minute); try again in {} s",
                    g.registrations.per_minute(),
                    over.retry_after_s
                )),
                over.retry_after_s,
            ));
        }
        let name = body_in.0.peer_name.ok_or_else(|| {
            GenesisError::Unprocessable(ErrorBody::json(
                "peerName is missing; give the peer's name, a DNS label such as \"peer-1\"",
            ))
        })?;
        check_peer_name(&name).map_err(|m| GenesisError::Unprocessable(ErrorBody::json(m)))?;
        let uri = body_in.0.peer_uri.ok_or_else(|| {
            GenesisError::Unprocessable(ErrorBody::json(
                "peerUri is missing; give the peer's base URL as the genesis reaches it, e.g. \"https://10.0.0.5:8080\"",
            ))
        })?;
        let uri =
            check_peer_uri(&uri).map_err(|m| GenesisError::Unprocessable(ErrorBody::json(m)))?;
        let key = signer.as_ref().map(|v| v.key);
        if let Some(v) = &signer {
            if v.peer != name {
                return Err(GenesisError::Forbidden(ErrorBody::json(format!(
                    "the request is signed as peer {:?} (Weft-Peer) but registers {name:?}; a peer registers its own name",
                    v.peer
                ))));
            }
        }
        let known = g.state().list.peers().iter().any(|p| p.name == name);
        match (key, g.bindings.get(&name)) {
            (Some(k), Some(bound)) if k != bound => {
                return Err(GenesisError::Conflict(ErrorBody::json(format!(
                    "peer name {name:?} is bound to another key ({bound}); this request is signed with {k}. If the peer lost its key, the genesis's operator removes the name with DELETE /admin/peers/{name}; otherwise choose another network.peer_name"
                ))))
            }
            (None, Some(bound)) => {
                return Err(GenesisError::Conflict(ErrorBody::json(format!(
                    "peer name {name:?} is bound to the key {bound}; register with a request signed by it"
                ))))
            }
            (Some(k), None) => {
                if let Err(bindings::Refused::Full(n)) = g.bindings.check(&name, &k) {
                    return Err(GenesisError::TooMany(
                        ErrorBody::json(format!(
                            "this genesis holds {n} peers, its limit (--max-peers); the operator removes departed ones with DELETE /admin/peers/{{peerName}}"
                        )),
                        60,
                    ));
                }
            }
            _ => {}
        }
        if !known && g.state().list.len() >= g.config.max_peers {
            return Err(GenesisError::TooMany(
                ErrorBody::json(format!(
                    "this genesis holds {} peers, its limit (--max-peers); try again later",
                    g.config.max_peers
                )),
                60,
            ));
        }
        if let Err(why) = g.reachable(&uri, key.as_ref()).await {
            tracing::info!("refused the registration of {name} at {uri}: {why}");
            return Err(GenesisError::BadRequest(ErrorBody::json(format!(
                "peer not reachable: {NO_ECHO} at {} (signed with its key); check that peerUri is the address the genesis reaches it at",
                uri.api("/p2p/ping")
            ))));
        }
        if let Some(k) = key {
            match g.bindings.bind(&name, k) {
                Ok(true) => tracing::info!("peer name {name} is bound to {k}"),
                Ok(false) => {}
                Err(bindings::Refused::Taken(bound)) => {
                    return Err(GenesisError::Conflict(ErrorBody::json(format!(
                        "peer name {name:?} is bound to another key ({bound})"
                    ))))
                }
                Err(bindings::Refused::Full(n)) => {
                    return Err(GenesisError::TooMany(
                        ErrorBody::json(format!(
                            "this genesis holds {n} peers, its limit (--max-peers)"
                        )),
                        60,
                    ))
                }
            }
        }
        let peer = Peer {
            id: Uuid::new_v4(),
            name,
            uri: uri.to_string(),
            schema_hash: String::new(),
            identity: key,
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
        Ok(Json(RegistrationAnswer {
            peer: registered(peer),
            contextionary: g.contextionary(host),
        }))
    }

    /// Mark a peer alive and record its schema hash; signed with the peer's key. 404 for an id
    /// the genesis does not know (it forgot it, or dropped it for silence): register again.
    #[oai(
        path = "/peers/:peerId/ping",
        method = "post",
        operation_id = "genesis.peers.ping"
    )]
    async fn ping(
        &self,
        req: &poem::Request,
        #[oai(name = "peerId")] peer_id: Path<String>,
        ping: Json<Ping>,
    ) -> GenesisResult<PingReceived> {
        let g = self.genesis()?;
        let id = parse_id(&peer_id.0)?;
        g.acts_for(id, signed_http::verified(req))?;
        let (schema_changed, kick) = {
            let mut st = g.state();
            let current = st.list.version();
            let Some(contact) = st.contacts.get_mut(&id) else {
                return Err(GenesisError::NotFound(ErrorBody::json(format!(
                    "no peer is registered with id {id} (the genesis restarted, or dropped it after more than {:?} without a ping); register again with POST /peers/register",
                    g.config.liveness_timeout
                ))));
            };
            contact.last_seen = Instant::now();
            match ping.0.peer_list_version {
                Some(v) => contact.known = Some(v),
                // A peer that reported versions and now reports none holds a list of unknown
                // version (say, a full list without one): it gets the full list again.
                None if contact.known.is_some() => {
                    contact.known = None;
                    contact.delivered = None;
                }
                None => {}
            }
            let behind = match contact.known {
                Some(v) => v != current,
                None => contact.delivered != Some(current),
            };
            let kick = behind.then(|| contact.kick.clone());
            let hash = match ping.0.schema_hash {
                Some(h) => h.chars().take(64).collect(),
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
                return Err(GenesisError::NotFound(ErrorBody::json(format!(
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

    /// Leave the network, signed with the peer's key: the peer is removed at once and the list
    /// pushed to the others (its name stays bound to its key).
    #[oai(
        path = "/peers/:peerId",
        method = "delete",
        operation_id = "genesis.peers.leave"
    )]
    async fn leave(
        &self,
        req: &poem::Request,
        #[oai(name = "peerId")] peer_id: Path<String>,
    ) -> GenesisResult<Left> {
        let g = self.genesis()?;
        let id = parse_id(&peer_id.0)?;
        g.acts_for(id, signed_http::verified(req))?;
        let removed = {
            let mut st = g.state();
            st.contacts.remove(&id);
            st.list.remove(id)
        };
        let Some(p) = removed else {
            return Err(GenesisError::NotFound(ErrorBody::json(format!(
                "no peer is registered with id {id}; GET /peers lists the registered ones"
            ))));
        };
        tracing::info!("{} ({}) left the network", p.name, p.uri);
        g.changed();
        Ok(Left::Left)
    }

    /// The operator removes a peer and frees its name (for a peer that lost its key, or left
    /// for good): needs the genesis's admin key (`X-API-KEY` and `X-API-TOKEN`, as given with
    /// `--admin-key` and `--admin-token`). The name may then register with a new key.
    #[oai(
        path = "/admin/peers/:peerName",
        method = "delete",
        operation_id = "genesis.admin.peers.remove"
    )]
    async fn remove(
        &self,
        req: &poem::Request,
        #[oai(name = "peerName")] peer_name: Path<String>,
    ) -> GenesisResult<Left> {
        let g = self.genesis()?;
        g.check_admin(req, "removing a peer", "to remove peers")?;
        let name = peer_name.0;
        let removed: Vec<Peer> = {
            let mut st = g.state();
            let ids: Vec<Uuid> = st
                .list
                .peers()
                .iter()
                .filter(|p| p.name == name)
                .map(|p| p.id)
                .collect();
            ids.into_iter()
                .filter_map(|id| {
                    st.contacts.remove(&id);
                    st.list.remove(id)
                })
                .collect()
        };
        let unbound = g.bindings.remove(&name);
        if removed.is_empty() && unbound.is_none() {
            return Err(GenesisError::NotFound(ErrorBody::json(format!(
                "no peer is named {name:?} here, and the name is bound to no key"
            ))));
        }
        tracing::info!(
            "the operator removed peer {name}{}",
            unbound
                .map(|k| format!(" and freed its name (was bound to {k})"))
                .unwrap_or_default()
        );
        if !removed.is_empty() {
            g.changed();
        }
        Ok(Left::Left)
    }

    /// Extension: the network as the genesis sees it, for the browser console's page
    /// (`/console`): the genesis (URL, key and fingerprint), the network's contextionary hash,
    /// the liveness timeout, and every registered peer with its key and fingerprint, schema
    /// hash, last contact and how long it has been silent. Needs the admin key (`X-API-KEY`
    /// and `X-API-TOKEN` as given with `--admin-key` and `--admin-token`; 403 otherwise, and on
    /// a genesis without one).
    #[oai(path = "/network", method = "get", operation_id = "genesis.network")]
    async fn network(&self, req: &poem::Request) -> GenesisResult<Json<GenesisNetworkView>> {
        let g = self.genesis()?;
        g.check_admin(req, "the network view", "to see the network")?;
        Ok(Json(g.network_view()))
    }

    /// Extension: the network's contextionary, as in a registration's answer. 404 when the
    /// genesis has none.
    #[oai(
        path = "/contextionary",
        method = "get",
        operation_id = "genesis.contextionary.get"
    )]
    async fn contextionary(&self, req: &poem::Request) -> GenesisResult<Json<ContextionaryOffer>> {
        let g = self.genesis()?;
        let host = req
            .headers()
            .get(poem::http::header::HOST)
            .and_then(|h| h.to_str().ok());
        g.contextionary(host).map(Json).ok_or_else(|| {
            GenesisError::NotFound(ErrorBody::json(
                "this genesis has no contextionary (it was started without --contextionary PATH); peers keep their own",
            ))
        })
    }

    /// Extension: download the network's contextionary file, or its index `<file>.hnsw`. Only
    /// those two names are served; the hash in `GET /contextionary` vouches for them.
    #[oai(
        path = "/contextionary/:file",
        method = "get",
        operation_id = "genesis.contextionary.download"
    )]
    async fn download(&self, file: Path<String>) -> GenesisResult<Download> {
        let g = self.genesis()?;
        let Some(c) = &g.config.contextionary else {
            return Err(GenesisError::NotFound(ErrorBody::json(
                "this genesis has no contextionary (it was started without --contextionary PATH)",
            )));
        };
        let path = if file.0 == g.file_name {
            c.path.clone()
        } else if file.0 == format!("{}.hnsw", g.file_name) {
            index_path(&c.path)
        } else {
            return Err(GenesisError::NotFound(ErrorBody::json(format!(
                "there is no file {:?} here; this genesis serves {:?} and its index {:?} (see GET /contextionary)",
                file.0,
                g.file_name,
                format!("{}.hnsw", g.file_name)
            ))));
        };
        let f = tokio::fs::File::open(&path).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                GenesisError::NotFound(ErrorBody::json(format!(
                    "{} is not there ({e}); the genesis serves the index only when it exists beside the contextionary (weft contextionary fetch writes it)",
                    path.display()
                )))
            } else {
                GenesisError::Internal(ErrorBody::json(format!("cannot read {}: {e}", path.display())))
            }
        })?;
        let len = f
            .metadata()
            .await
            .map_err(|e| {
                GenesisError::Internal(ErrorBody::json(format!(
                    "cannot read {}: {e}",
                    path.display()
                )))
            })?
            .len();
        Ok(Download::File(Binary(Body::from_async_read(f)), len))
    }
}
