//! The peer side of the network: how this server joins, stays in and leaves a network, and the
//! peers it knows.
//!
//! **Genesis mode** (`network.genesis_url`): the genesis's key is pinned before serving (see
//! [`crate::contextionary`]); once listening, the server registers
//! (`POST {genesis}/peers/register`, signed, retried with back-off), pings every
//! `network.ping_interval_s` (signed, with its schema hash and the version of the peer list it
//! holds), registers again when a ping answers 404, applies the lists the genesis pushes
//! (`PUT /p2p/genesis`, accepted only signed with the pinned genesis key) and deregisters on
//! SIGINT/SIGTERM. Every answer of the genesis must be signed with its key.
//!
//! **Bootstrapped mode** (`P2P.bootstrappedPeers`, no genesis): once listening, the server
//! announces itself (`POST {peer}/weaviate/v1/peers`, signed) to the first bootstrapped peer
//! that answers, and stores the peers that peer answers with, each bound to its key. A peer that
//! receives an announcement (signed by the newcomer, or by a known peer passing it on)
//! checks that the name is not bound to another key, echo-checks the newcomer
//! (`GET {peerUri}/weaviate/v1/peers/echo`, the answer signed with the newcomer's key), binds
//! the name and, when the newcomer announced itself here, passes it on to every peer it knows
//! (who check it the same way and pass it on no further: one message per peer per join); a peer
//! already known with the same key and address is answered and nothing more. Liveness: every ping interval each
//! peer echoes the peers it knows (answers signed with their keys) and drops one that failed
//! [`ECHO_FAILURES_TO_DROP`] times in a row; its name stays bound.
//!
//! In both modes the schema of every new or changed peer is downloaded
//! (`GET {uri}/weaviate/v1/p2p/schema`, signed with its key, bounded in bytes and time) and
//! checked by the rules a local ontology is built with; a schema that fails is left out, named
//! in the log, and tried again with growing pauses.
//!
//! Owns: the membership protocols, the peer directory's content.
//! Must not know: REST request shapes (that is [`crate::api`]).

pub mod state;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use uuid::Uuid;
use weft_core::network::{KnownPeer, Peer};
use weft_core::ontology::Ontology;
use weft_peer_protocol::bindings::Refused as Binding;
use weft_peer_protocol::peerlist::{self, ListUpdate};
use weft_peer_protocol::signature::Verified;
use weft_peer_protocol::wire::{
    check_peer_name, AnnounceAnswer, Announcement, ContentHash, ContextionaryOffer, Echo,
    ListedPeer, Ping, Refusal, Registration, RegistrationAnswer, SchemaAnswer,
};
use weft_peer_protocol::{Call, PeerUri, PublicKey};

use crate::config::{mode, Mode};
use crate::contextionary::{check_genesis_key, LocalContextionary, NetworkContextionary};
use crate::directory::key_of;
use crate::node::PeerNode;
use state::SchemaState;

/// What the peer-facing operations answer when this server is no peer.
pub const NOT_A_PEER: &str = "this server is not part of a P2P network; configure network.peer_name and network.genesis_url or P2P.bootstrappedPeers";
/// Bootstrapped mode: a peer whose echo fails this many times in a row is dropped.
pub const ECHO_FAILURES_TO_DROP: u32 = 3;
/// What a failed echo check answers, whatever the reason.
pub const NO_ECHO: &str = "the peer did not answer the echo";
/// One call to the genesis (registration includes the genesis's reachability check of us).
const GENESIS_TIMEOUT: Duration = Duration::from_secs(10);
/// One echo check.
const ECHO_TIMEOUT: Duration = Duration::from_secs(2);
/// One announcement (the receiver echo-checks the newcomer before answering).
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(8);
/// One schema download.
const SCHEMA_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest pause between registration (or announcement) attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The longest pause between attempts to download a schema that failed.
const MAX_SCHEMA_BACKOFF: Duration = Duration::from_secs(600);
/// Schema downloads at once.
const SCHEMA_DOWNLOADS: usize = 8;
/// The most classes, and properties per class, of a peer's schema.
const MAX_PEER_CLASSES: usize = 1_000;
const MAX_PEER_PROPERTIES: usize = 1_000;

// ---------------------------------------------------------------------------------------------
// Helpers.

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

fn backoff(attempt: u32, cap: Duration) -> Duration {
    let ms = 200u64.saturating_mul(1u64 << attempt.min(10));
    Duration::from_millis(ms).min(cap)
}

fn listed(p: &Peer) -> ListedPeer {
    ListedPeer {
        id: p.id,
        name: p.name.clone(),
        uri: p.uri.clone(),
        schema_hash: p.schema_hash.clone(),
        identity: p.identity.clone(),
    }
}

fn from_list(p: peerlist::Peer) -> Peer {
    Peer {
        id: p.id,
        name: p.name,
        uri: p.uri,
        schema_hash: p.schema_hash,
        identity: p.identity.map(|k| k.to_string()),
        last_contact_ms: p.last_contact_ms,
    }
}

// ---------------------------------------------------------------------------------------------
// Membership state.

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

    /// This server's contextionary as other peers may download it.
    pub fn contextionary_wire(&self) -> Option<ContextionaryOffer> {
        let c = self.contextionary()?;
        let url = c
            .file_name()
            .map(|f| self.public_uri.api(&format!("/p2p/contextionary/{f}")));
        Some(ContextionaryOffer {
            index_url: match (&url, &c.index_path) {
                (Some(u), Some(_)) => Some(format!("{u}.hnsw")),
                _ => None,
            },
            url,
            hash: Some(ContentHash {
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

    /// What `GET /peers/echo` answers to a request signed by `asker` (if signed): with
    /// whether this peer knows the asker by that key.
    pub async fn echo(&self, asker: Option<&Verified>) -> Echo {
        Echo {
            peer_name: self.config.peer_name.clone(),
            id: self.peer_id().unwrap_or(self.membership.self_id),
            schema_hash: self.schema().await.1,
            identity: Some(self.identity().to_string()),
            knows_you: asker.map(|v| {
                self.directory
                    .get(&v.peer)
                    .is_some_and(|k| key_of(&k.peer) == Some(v.key))
            }),
        }
    }

    /// Whether the schema of the known peer `k` has been downloaded at its current hash.
    pub fn schema_current(&self, k: &KnownPeer) -> bool {
        k.schema.is_some()
            && lock(&self.membership.schemas)
                .get(&k.peer.name)
                .and_then(|s| s.downloaded.as_ref())
                .is_some_and(|h| *h == k.peer.schema_hash || k.peer.schema_hash.is_empty())
    }

    /// Why the schema of peer `name` was left out, if it was.
    pub fn schema_error(&self, name: &str) -> Option<String> {
        lock(&self.membership.schemas)
            .get(name)
            .and_then(|s| s.error.clone())
    }

    /// Bootstrapped mode: the echoes of peer `name` that failed in a row (it is dropped at
    /// [`ECHO_FAILURES_TO_DROP`]); always 0 in a genesis network, where the genesis decides.
    pub fn missed_echoes(&self, name: &str) -> u32 {
        lock(&self.membership.echo_failures)
            .get(name)
            .copied()
            .unwrap_or(0)
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
                self.warn_if_plain(&g);
                tokio::spawn(async move { me.genesis_loop(g).await });
            }
            Mode::Bootstrapped(b) => {
                if let Some(first) = b.first() {
                    self.warn_if_plain(first);
                }
                tokio::spawn(async move { me.bootstrapped_loop(b).await });
            }
        }
    }

    /// Leaves the network: stops the membership loop and, in genesis mode, deregisters
    /// (`DELETE {genesis}/peers/{id}`, signed), all within `timeout`.
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
            let url = genesis.at(&format!("/peers/{id}"));
            match self
                .client()
                .send(Call::delete(&url).timeout(timeout))
                .await
            {
                Ok(a) if a.ok() || a.status == 404 => {
                    tracing::info!("left the network (DELETE {url})");
                }
                Ok(a) => tracing::warn!(
                    "leaving the network: DELETE {url} answered {}: {}",
                    a.status,
                    a.error_message()
                ),
                Err(e) => tracing::warn!("leaving the network: DELETE {url}: {e}"),
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

    async fn genesis_loop(self: Arc<Self>, genesis: PeerUri) {
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

    async fn register(&self, genesis: &PeerUri) -> Result<Uuid, String> {
        let url = genesis.at("/peers/register");
        let body = Registration {
            peer_name: Some(self.config.peer_name.clone()),
            peer_uri: Some(self.public_uri.to_string()),
        };
        let call = Call::json(http::Method::POST, &url, &body).timeout(GENESIS_TIMEOUT);
        let a = self
            .client()
            .send(call)
            .await
            .map_err(|e| format!("POST {url}: {e}"))?;
        check_genesis_key(&self.config, &self.transport, genesis, &a)?;
        if !a.ok() {
            return Err(format!(
                "POST {url} answered {}: {}",
                a.status,
                a.error_message()
            ));
        }
        let r: RegistrationAnswer = a
            .json()
            .map_err(|e| format!("POST {url}: the answer is not a registration: {e}"))?;
        let network = r
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
        Ok(r.peer.id)
    }

    async fn ping(&self, genesis: &PeerUri, id: Uuid) -> Result<(), PingError> {
        let url = genesis.at(&format!("/peers/{id}/ping"));
        let body = Ping {
            schema_hash: Some(self.schema().await.1),
            peer_list_version: lock(&self.membership.list).version(),
        };
        let call = Call::json(http::Method::POST, &url, &body).timeout(GENESIS_TIMEOUT);
        let a = self
            .client()
            .send(call)
            .await
            .map_err(|e| PingError::Other(format!("POST {url}: {e}")))?;
        check_genesis_key(&self.config, &self.transport, genesis, &a).map_err(PingError::Other)?;
        if a.status == 404 {
            return Err(PingError::Forgotten);
        }
        if !a.ok() {
            return Err(PingError::Other(format!(
                "POST {url} answered {}: {}",
                a.status,
                a.error_message()
            )));
        }
        Ok(())
    }

    /// `PUT /p2p/genesis`: a list the genesis pushed, signed by `signer` (from `remote`).
    /// Accepted only signed with the genesis's pinned key (or, with `P2P.acceptUnsignedPeers`,
    /// unsigned from the genesis's address). Answers how many peers (other than this one) the
    /// list holds now.
    pub async fn accept_genesis_list(
        self: &Arc<Self>,
        signer: Option<&Verified>,
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
        let pinned = self
            .config
            .genesis_key
            .or_else(|| self.transport.bindings.pinned_genesis(&genesis));
        match (signer, pinned) {
            (Some(v), Some(k)) if v.key == k => {}
            (Some(v), Some(k)) => {
                return Err(Refusal::new(
                    403,
                    format!(
                        "peer lists are accepted only signed by this peer's genesis ({genesis}, key {k}); this one is signed with {}",
                        v.key
                    ),
                ))
            }
            (Some(_), None) => {
                return Err(Refusal::new(
                    403,
                    format!("this peer has not pinned the key of its genesis ({genesis}) yet; it accepts lists once it has registered"),
                ))
            }
            (None, _) if self.config.accept_unsigned => {
                let allowed = genesis_addresses(&genesis).await;
                if !remote.is_some_and(|r| allowed.contains(&r)) {
                    return Err(Refusal::new(
                        403,
                        format!("unsigned peer lists are accepted only from the address of this peer's genesis ({genesis})"),
                    ));
                }
            }
            (None, _) => {
                return Err(Refusal::new(
                    401,
                    format!("peer lists are accepted only signed by this peer's genesis ({genesis})"),
                ))
            }
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
        let n = self.sync_directory(peers.into_iter().map(from_list).collect());
        self.refresh_schemas();
        Ok(n)
    }

    /// Makes the directory the genesis's list (without this peer, at most `limits.max_peers`);
    /// how many peers it holds.
    fn sync_directory(&self, peers: Vec<Peer>) -> usize {
        let me = self.config.peer_name.clone();
        let max = self.core.limits.max_peers;
        let mut wanted: BTreeMap<String, Peer> = BTreeMap::new();
        for p in peers {
            if p.name == me || check_peer_name(&p.name).is_err() {
                continue;
            }
            let Ok(uri) = PeerUri::parse(&p.uri) else {
                continue;
            };
            if wanted.len() >= max {
                if !self.membership.warned_full.swap(true, Ordering::SeqCst) {
                    tracing::warn!(
                        "the genesis lists more than {max} peers (limits.max_peers): the rest are left out"
                    );
                }
                break;
            }
            wanted.insert(
                p.name.clone(),
                Peer {
                    uri: uri.to_string(),
                    ..p
                },
            );
        }
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
                            && k.peer.identity == p.identity
                            && k.peer.schema_hash == p.schema_hash => {}
                    Some(k) => {
                        if k.peer.uri != p.uri || k.peer.identity != p.identity {
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
            let mut s = lock(&self.membership.schemas);
            for r in &removed {
                s.remove(r);
            }
        }
        n
    }

    // -- Schemas -----------------------------------------------------------------------------

    /// Downloads, in the background, the schema of every known peer whose schema is missing
    /// or older than its hash, unless its last attempt failed too recently; at most a few at
    /// once.
    pub fn refresh_schemas(self: &Arc<Self>) {
        let (_, peers) = self.directory.snapshot();
        let now = Instant::now();
        for k in peers {
            if self.schema_current(&k) {
                continue;
            }
            let due = lock(&self.membership.schemas)
                .get(&k.peer.name)
                .and_then(|s| s.next_attempt)
                .is_none_or(|t| t <= now);
            if !due {
                continue;
            }
            {
                let mut d = lock(&self.membership.downloading);
                if d.len() >= SCHEMA_DOWNLOADS || !d.insert(k.peer.name.clone()) {
                    continue;
                }
            }
            let me = self.clone();
            tokio::spawn(async move { me.download_schema(k.peer).await });
        }
    }

    async fn fetch_schema(&self, peer: &Peer) -> Result<(Ontology, String), String> {
        let uri = PeerUri::parse(&peer.uri)?;
        let a = self
            .client()
            .send(Call::get(uri.api("/p2p/schema")).timeout(SCHEMA_TIMEOUT))
            .await
            .map_err(|e| e.to_string())?;
        self.check_signed_by(peer, &a)?;
        if !a.ok() {
            return Err(format!("answered {}: {}", a.status, a.error_message()));
        }
        let s: SchemaAnswer = a.json().map_err(|e| e.to_string())?;
        let o: Ontology = serde_json::from_value(s.schema)
            .map_err(|e| format!("its schema is not an ontology: {e}"))?;
        o.check(MAX_PEER_CLASSES, MAX_PEER_PROPERTIES)
            .map_err(|e| format!("its schema breaks the ontology rules: {e}"))?;
        Ok((o, s.hash))
    }

    async fn download_schema(self: Arc<Self>, peer: Peer) {
        let got = self.fetch_schema(&peer).await;
        lock(&self.membership.downloading).remove(&peer.name);
        match got {
            Ok((o, hash)) => {
                let schema = Arc::new(o);
                let stored = self.directory.update(|map| match map.get_mut(&peer.name) {
                    Some(k) if k.peer.uri == peer.uri && k.peer.identity == peer.identity => {
                        k.schema = Some(schema);
                        (true, true)
                    }
                    _ => (false, false),
                });
                if stored {
                    lock(&self.membership.schemas).insert(
                        peer.name.clone(),
                        SchemaState {
                            downloaded: Some(hash.clone()),
                            ..SchemaState::default()
                        },
                    );
                    tracing::debug!("downloaded the schema of {} ({hash})", peer.name);
                }
            }
            Err(e) => {
                let failures = {
                    let mut schemas = lock(&self.membership.schemas);
                    let s = schemas.entry(peer.name.clone()).or_default();
                    s.failures += 1;
                    let pause = self
                        .config
                        .ping_interval
                        .saturating_mul(1u32 << s.failures.min(10))
                        .min(MAX_SCHEMA_BACKOFF);
                    s.next_attempt = Some(Instant::now() + pause);
                    s.error = Some(e.clone());
                    s.failures
                };
                if failures == 1 {
                    tracing::warn!(
                        "peer {} is left out of Network: its schema could not be taken ({e}); trying again later, less and less often",
                        peer.name
                    );
                } else {
                    tracing::debug!("the schema of peer {} (failure {failures}): {e}", peer.name);
                }
            }
        }
    }

    /// An answer from `peer` must be signed with its bound key (unsigned only from a peer that
    /// cannot sign, with `P2P.acceptUnsignedPeers`).
    pub(crate) fn check_signed_by(
        &self,
        peer: &Peer,
        a: &weft_peer_protocol::Answer,
    ) -> Result<(), String> {
        match (key_of(peer), &a.signer) {
            (Some(k), Some(v)) if v.key == k => Ok(()),
            (Some(k), Some(v)) => Err(format!(
                "answered signed with {}, not with its key {k}",
                v.key
            )),
            (Some(k), None) => Err(format!("answered unsigned, not signed with its key {k}")),
            (None, _) if self.config.accept_unsigned => Ok(()),
            (None, _) => Err("has no key this peer knows".into()),
        }
    }

    // -- Bootstrapped mode -------------------------------------------------------------------

    async fn bootstrapped_loop(self: Arc<Self>, bootstrapped: Vec<PeerUri>) {
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
            if !bootstrapped.is_empty() && self.directory.is_empty() {
                self.announce_self(&bootstrapped).await;
            }
            self.refresh_schemas();
        }
    }

    async fn self_announcement(&self) -> Announcement {
        Announcement {
            peer_name: self.config.peer_name.clone(),
            peer_uri: self.public_uri.to_string(),
            id: Some(self.membership.self_id),
            schema_hash: Some(self.schema().await.1),
            identity: Some(self.identity().to_string()),
        }
    }

    /// Announces this peer to the first of `bootstrapped` that answers, and stores the peers it
    /// answers with. Whether one answered.
    async fn announce_self(self: &Arc<Self>, bootstrapped: &[PeerUri]) -> bool {
        let me = self.self_announcement().await;
        let mut why = vec![];
        for b in bootstrapped {
            if *b == self.public_uri {
                continue;
            }
            match self.post_announcement(b, &me).await {
                Ok((a, signer)) => {
                    if let (Some(theirs), Some(ours)) = (&a.contextionary_md5, self.contextionary())
                    {
                        if *theirs != ours.md5 {
                            tracing::error!(
                                "{b} answers with contextionary md5 {theirs}, this server uses md5 {}: restart it with the network's contextionary (or P2P.requestContextionary: true)",
                                ours.md5
                            );
                        }
                    }
                    // The answering peer lists itself: its entry must carry the key it signed with.
                    let peers: Vec<ListedPeer> = a
                        .peers
                        .into_iter()
                        .filter(|p| {
                            PeerUri::parse(&p.uri).ok().as_ref() != Some(b)
                                || signer.as_ref().map(|k| k.to_string()) == p.identity
                        })
                        .collect();
                    let n = peers.len();
                    self.store_vouched(peers);
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

    /// Posts `a` to `to`; the answer and the key it was signed with (`None`: unsigned, taken
    /// only with `P2P.acceptUnsignedPeers`).
    async fn post_announcement(
        &self,
        to: &PeerUri,
        a: &Announcement,
    ) -> Result<(AnnounceAnswer, Option<PublicKey>), String> {
        let url = to.api("/peers");
        let call = Call::json(http::Method::POST, &url, a).timeout(ANNOUNCE_TIMEOUT);
        let r = self
            .client()
            .send(call)
            .await
            .map_err(|e| format!("POST {url}: {e}"))?;
        let signer = r.signer.as_ref().map(|v| v.key);
        if signer.is_none() && !self.config.accept_unsigned {
            return Err(format!(
                "POST {url} answered unsigned: it is no Weft peer of this version (a Weaviate 0.12 peer is trusted only with P2P.acceptUnsignedPeers: true)"
            ));
        }
        if !r.ok() {
            return Err(format!(
                "POST {url} answered {}: {}",
                r.status,
                r.error_message()
            ));
        }
        let answer = r
            .json()
            .map_err(|e| format!("POST {url}: the answer is not an announcement's: {e}"))?;
        Ok((answer, signer))
    }

    /// Stores peers a bootstrapped peer answered with (it echo-checked them), each name bound
    /// to the key listed with it; a name bound to another key here is left out.
    fn store_vouched(&self, peers: Vec<ListedPeer>) {
        let me = self.config.peer_name.clone();
        let max = self.core.limits.max_peers;
        let bindings = &self.transport.bindings;
        let mut accepted = vec![];
        for p in peers {
            if p.name == me || check_peer_name(&p.name).is_err() {
                continue;
            }
            let Ok(uri) = PeerUri::parse(&p.uri) else {
                continue;
            };
            if uri == self.public_uri {
                continue;
            }
            let key: Option<PublicKey> = p.identity.as_deref().and_then(|k| k.parse().ok());
            match key {
                Some(k) => match bindings.bind(&p.name, k) {
                    Ok(_) => {}
                    Err(Binding::Taken(bound)) => {
                        tracing::warn!(
                            "left out peer {} at {uri}: it is listed with key {k}, but its name is bound to {bound} here",
                            p.name
                        );
                        continue;
                    }
                    Err(Binding::Full(n)) => {
                        tracing::warn!(
                            "left out peer {}: {n} peer names are bound here (limits.max_peers)",
                            p.name
                        );
                        continue;
                    }
                },
                None if self.config.accept_unsigned && bindings.get(&p.name).is_none() => {}
                None => continue,
            }
            accepted.push((p, uri, key));
        }
        self.directory.update(|map| {
            let mut changed = false;
            for (p, uri, key) in accepted {
                let identity = key.map(|k| k.to_string());
                match map.get_mut(&p.name) {
                    Some(k) if k.peer.uri == uri.as_str() && k.peer.identity == identity => {}
                    existing => {
                        if existing.is_none() && map.len() >= max {
                            continue;
                        }
                        map.insert(
                            p.name.clone(),
                            KnownPeer {
                                peer: Peer {
                                    id: p.id,
                                    name: p.name,
                                    uri: uri.to_string(),
                                    schema_hash: p.schema_hash,
                                    identity,
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

    /// `GET {uri}/weaviate/v1/peers/echo`, the answer signed with `key` (any key when `None`,
    /// or none with `P2P.acceptUnsignedPeers`). The error is for this server's log only.
    async fn get_echo(
        &self,
        uri: &PeerUri,
        key: Option<&PublicKey>,
    ) -> Result<(Echo, Option<PublicKey>), String> {
        let url = uri.api("/peers/echo");
        let a = self
            .client()
            .send(Call::get(&url).timeout(ECHO_TIMEOUT))
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let signer = a.signer.as_ref().map(|v| v.key);
        match (key, signer) {
            (Some(k), Some(s)) if *k == s => {}
            (Some(k), _) => {
                return Err(format!(
                    "GET {url}: the answer is not signed with {k} (signed with {signer:?})"
                ))
            }
            (None, None) if !self.config.accept_unsigned => {
                return Err(format!("GET {url}: the answer is not signed"))
            }
            _ => {}
        }
        if !a.ok() {
            return Err(format!("GET {url} answered {}", a.status));
        }
        let echo: Echo = a
            .json()
            .map_err(|e| format!("GET {url}: the answer is not an echo: {e}"))?;
        Ok((echo, signer))
    }

    /// Echoes every known peer once; drops those that failed [`ECHO_FAILURES_TO_DROP`] times in a
    /// row; re-introduces this peer to one that restarted.
    async fn echo_round(self: &Arc<Self>) {
        let (_, peers) = self.directory.snapshot();
        let checks = peers.into_iter().map(|k| {
            let me = self.clone();
            async move {
                let r = match PeerUri::parse(&k.peer.uri) {
                    Ok(uri) => me.get_echo(&uri, key_of(&k.peer).as_ref()).await,
                    Err(e) => Err(e),
                };
                (k, r)
            }
        });
        let results = futures::future::join_all(checks).await;
        for (k, r) in results {
            let name = k.peer.name.clone();
            match r {
                Ok((echo, _)) if echo.peer_name == name => {
                    lock(&self.membership.echo_failures).remove(&name);
                    let restarted = echo.id != k.peer.id;
                    let forgot_us = echo.knows_you == Some(false);
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
                    if restarted || forgot_us {
                        if restarted {
                            tracing::info!(
                                "peer {name} restarted (new id {}): announcing this peer to it again",
                                echo.id
                            );
                        } else {
                            tracing::info!(
                                "peer {name} does not know this peer (by its key): announcing this peer to it again"
                            );
                        }
                        let me = self.clone();
                        if let Ok(uri) = PeerUri::parse(&k.peer.uri) {
                            tokio::spawn(async move {
                                let a = me.self_announcement().await;
                                if let Err(e) = me.post_announcement(&uri, &a).await {
                                    tracing::warn!("announcing this peer to {uri} again: {e}");
                                }
                            });
                        }
                    }
                }
                other => {
                    let why = match other {
                        Ok((echo, _)) => format!("it answers as {}", echo.peer_name),
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
                        lock(&self.membership.schemas).remove(&name);
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

    /// `POST /peers`: a peer announces itself, or a known peer passes a newcomer on. See the
    /// module documentation for the rules; the answer carries this peer's contextionary and the
    /// peers it knows (itself included).
    pub async fn accept_announcement(
        self: &Arc<Self>,
        signer: Option<&Verified>,
        remote: Option<IpAddr>,
        a: Announcement,
    ) -> Result<AnnounceAnswer, Refusal> {
        if let Mode::Genesis(g) = self.mode() {
            return Err(Refusal::new(
                409,
                format!("this peer's network is run by the genesis {g}: register there (POST {g}/peers/register), not by announcing"),
            ));
        }
        if signer.is_none() && !self.config.accept_unsigned {
            return Err(Refusal::new(
                401,
                "sign the announcement with the sending peer's key (see README \"Running a network across organisations\"); a Weaviate 0.12 peer, which cannot sign, is taken only by peers with P2P.acceptUnsignedPeers: true",
            ));
        }
        let limit = self.core.limits.peer_announces_per_minute;
        let by_key = signer
            .map(|v| v.key.key_id())
            .unwrap_or_else(|| "unsigned".into());
        let by_address = remote.map(|r| r.to_string()).unwrap_or_default();
        for (budget, who) in [
            (&self.budgets.announces_by_key, &by_key),
            (&self.budgets.announces_by_address, &by_address),
        ] {
            if let Err(over) = budget.take(who) {
                return Err(Refusal::over_budget(
                    format!(
                        "more than {limit} announcements a minute from this sender (limits.peer_announces_per_minute); try again in {} s",
                        over.retry_after_s
                    ),
                    over.retry_after_s,
                ));
            }
        }
        check_peer_name(&a.peer_name).map_err(|e| Refusal::new(422, e))?;
        let uri =
            PeerUri::parse(&a.peer_uri).map_err(|e| Refusal::new(422, format!("peerUri: {e}")))?;
        let name = a.peer_name.clone();
        if name == self.config.peer_name {
            if uri == self.public_uri {
                return Ok(self.answer_for(&self.me_as_peer().await).await);
            }
            return Err(Refusal::new(
                409,
                format!(
                    "the peer name {name:?} is this peer's (at {}); choose another network.peer_name",
                    self.public_uri
                ),
            ));
        }
        let announced: Option<PublicKey> = match &a.identity {
            Some(k) => Some(
                k.parse()
                    .map_err(|e| Refusal::new(422, format!("identity: {e}")))?,
            ),
            None => None,
        };
        // Who vouches: the newcomer itself, or a known peer passing it on.
        let key = match signer {
            Some(v) if v.peer == name => {
                if announced.is_some_and(|k| k != v.key) {
                    return Err(Refusal::new(
                        422,
                        format!(
                            "identity {} is not the key the announcement is signed with ({})",
                            announced.map(|k| k.to_string()).unwrap_or_default(),
                            v.key
                        ),
                    ));
                }
                Some(v.key)
            }
            Some(v) => {
                let known = self.directory.get(&v.peer);
                if known.as_ref().and_then(|k| key_of(&k.peer)) != Some(v.key) {
                    return Err(Refusal::new(
                        403,
                        format!(
                            "peer {:?} announces {name:?}, but only a peer may announce itself, or a peer this one knows (by its key) pass a newcomer on",
                            v.peer
                        ),
                    ));
                }
                if announced.is_none() && !self.config.accept_unsigned {
                    return Err(Refusal::new(
                        422,
                        "a passed-on announcement names the newcomer's identity (its public key)",
                    ));
                }
                announced
            }
            None => announced,
        };
        let bindings = &self.transport.bindings;
        match key {
            Some(k) => match bindings.check(&name, &k) {
                Ok(()) => {}
                Err(Binding::Taken(bound)) => {
                    return Err(Refusal::new(
                        409,
                        format!(
                            "peer name {name:?} is bound to another key ({bound}) here; the announcement is for {k}. If that peer lost its key, this server's operator removes it with DELETE /weaviate/v1/p2p/peers/{name} (root key); otherwise choose another network.peer_name"
                        ),
                    ))
                }
                Err(Binding::Full(n)) => {
                    return Err(Refusal::over_budget(
                        format!("this peer knows {n} peers, its limit (limits.max_peers)"),
                        60,
                    ))
                }
            },
            None => {
                if let Some(bound) = bindings.get(&name) {
                    return Err(Refusal::new(
                        409,
                        format!("peer name {name:?} is bound to the key {bound}: announce with a request signed by it"),
                    ));
                }
            }
        }
        let identity = key.map(|k| k.to_string());
        let known = self.directory.get(&name);
        if let Some(k) = &known {
            if k.peer.uri == uri.as_str() && k.peer.identity == identity {
                // Known, same key and address: nothing to check or pass on.
                return Ok(self.answer_for(&k.peer).await);
            }
        } else if self.directory.len() >= self.core.limits.max_peers {
            return Err(Refusal::over_budget(
                format!(
                    "this peer knows {} peers, its limit (limits.max_peers)",
                    self.core.limits.max_peers
                ),
                60,
            ));
        }
        let (echo, _) = match self.get_echo(&uri, key.as_ref()).await {
            Ok(e) => e,
            Err(why) => {
                tracing::info!("refused the announcement of {name} at {uri}: {why}");
                return Err(Refusal::new(
                    400,
                    format!(
                        "peer not reachable: {NO_ECHO} at {} (signed with its key); check that peerUri is the address other peers reach it at",
                        uri.api("/peers/echo")
                    ),
                ));
            }
        };
        if echo.peer_name != name {
            tracing::info!(
                "refused the announcement of {name} at {uri}: it answers as {}",
                echo.peer_name
            );
            return Err(Refusal::new(
                400,
                format!(
                    "peer not reachable: {NO_ECHO} at {} as {name:?}",
                    uri.api("/peers/echo")
                ),
            ));
        }
        self.warn_if_plain(&uri);
        if let Some(k) = key {
            match bindings.bind(&name, k) {
                Ok(true) => tracing::info!("peer name {name} is bound to {k}"),
                Ok(false) => {}
                Err(Binding::Taken(bound)) => {
                    return Err(Refusal::new(
                        409,
                        format!("peer name {name:?} is bound to another key ({bound}) here"),
                    ))
                }
                Err(Binding::Full(n)) => {
                    return Err(Refusal::over_budget(
                        format!("this peer knows {n} peers, its limit (limits.max_peers)"),
                        60,
                    ))
                }
            }
        }
        let peer = Peer {
            id: echo.id,
            name: name.clone(),
            uri: uri.to_string(),
            schema_hash: echo.schema_hash.clone(),
            identity,
            last_contact_ms: now_ms(),
        };
        lock(&self.membership.echo_failures).remove(&name);
        self.directory.update(|map| {
            map.insert(
                name.clone(),
                KnownPeer {
                    peer: peer.clone(),
                    schema: None,
                },
            );
            (true, ())
        });
        tracing::info!("peer {name} at {uri} joined (announced, echo-checked with its key)");
        lock(&self.membership.schemas).remove(&name);
        // Pass it on, once, to everybody else — only when the newcomer announced itself here
        // (or cannot sign): a peer told by another peer leaves the passing on to that one, so a
        // join costs one message per peer, not one per pair.
        let self_announced = signer.is_none_or(|v| v.peer == name);
        if !self_announced {
            self.refresh_schemas();
            return Ok(self.answer_for(&peer).await);
        }
        let (_, others) = self.directory.snapshot();
        let forward = Announcement {
            peer_name: peer.name.clone(),
            peer_uri: peer.uri.clone(),
            id: Some(peer.id),
            schema_hash: Some(peer.schema_hash.clone()),
            identity: peer.identity.clone(),
        };
        let from = signer.map(|v| v.peer.clone());
        for k in others
            .into_iter()
            .filter(|k| k.peer.name != name && Some(&k.peer.name) != from.as_ref())
        {
            let me = self.clone();
            let forward = forward.clone();
            tokio::spawn(async move {
                let Ok(to) = PeerUri::parse(&k.peer.uri) else {
                    return;
                };
                if let Err(e) = me.post_announcement(&to, &forward).await {
                    tracing::debug!("passing {} on to {}: {e}", forward.peer_name, k.peer.name);
                }
            });
        }
        self.refresh_schemas();
        Ok(self.answer_for(&peer).await)
    }

    /// The operator removes peer `name` (it lost its key, or left for good): it is forgotten
    /// and its name freed, so it may announce itself with a new key. In a genesis network the
    /// genesis holds the names: 409 saying so.
    pub fn remove_peer(&self, name: &str) -> Result<(), Refusal> {
        if let Mode::Genesis(g) = self.mode() {
            return Err(Refusal::new(
                409,
                format!("in a network with a genesis the genesis binds peer names to keys: remove {name:?} there (DELETE {}, with the genesis's admin key)", g.at(&format!("/admin/peers/{name}"))),
            ));
        }
        let unbound = self.transport.bindings.remove(name);
        let known = self.directory.update(|map| {
            let removed = map.remove(name).is_some();
            (removed, removed)
        });
        lock(&self.membership.schemas).remove(name);
        lock(&self.membership.echo_failures).remove(name);
        if unbound.is_none() && !known {
            return Err(Refusal::new(
                404,
                format!("no peer is named {name:?} here, and the name is bound to no key"),
            ));
        }
        tracing::info!(
            "the operator removed peer {name}{}",
            unbound
                .map(|k| format!(" and freed its name (was bound to {k})"))
                .unwrap_or_default()
        );
        Ok(())
    }

    async fn me_as_peer(&self) -> Peer {
        Peer {
            id: self.peer_id().unwrap_or(self.membership.self_id),
            name: self.config.peer_name.clone(),
            uri: self.public_uri.to_string(),
            schema_hash: self.schema().await.1,
            identity: Some(self.identity().to_string()),
            last_contact_ms: now_ms(),
        }
    }

    async fn answer_for(&self, newcomer: &Peer) -> AnnounceAnswer {
        let me = self.me_as_peer().await;
        let (_, known) = self.directory.snapshot();
        let mut peers = vec![listed(&me)];
        peers.extend(
            known
                .iter()
                .filter(|k| k.peer.name != newcomer.name)
                .map(|k| listed(&k.peer)),
        );
        AnnounceAnswer {
            contextionary_md5: self.contextionary().map(|c| c.md5.clone()),
            contextionary: self.contextionary_wire(),
            peer: listed(newcomer),
            peers,
        }
    }
}

/// The addresses the genesis URL's host resolves to (IPv4-mapped IPv6 as IPv4).
async fn genesis_addresses(genesis: &PeerUri) -> Vec<IpAddr> {
    let Ok(url) = reqwest::Url::parse(genesis.as_str()) else {
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
    fn schema_hash_is_the_md5_of_the_ontology_json() {
        let o = Ontology::default();
        let want = hex::encode(Md5::digest(serde_json::to_vec(&o).unwrap()));
        assert_eq!(schema_hash(&o), want);
        assert_eq!(want.len(), 32);
    }
}
