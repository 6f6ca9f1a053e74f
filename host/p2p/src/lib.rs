//! `weft-p2p`: the P2P network front end, on `weft-core` beside REST and GraphQL.
//!
//! * [`genesis`]: the genesis server (`weft genesis`): registration with a reachability check,
//!   liveness, deregistration, the peer list pushed to every peer, the network's contextionary.
//! * [`membership`]: the peer side — registering at a genesis and pinging it, or announcing to a
//!   bootstrapped peer; keeping the list of known peers and their schemas.
//! * [`api`]: the peer-facing operations under `/weaviate/v1` (`/p2p/*`, `/peers`, `/peers/echo`),
//!   which need no key.
//! * [`questions`]: network questions and answers (`/peers/questions`, `/peers/answers/{id}`) and
//!   the [`weft_core::Network`] implementation the GraphQL `Network` queries use.
//! * [`peerlist`]: the versioned peer list (full lists for 0.12 peers, changes for those that say
//!   they can) and [`simulation`], which measures both ways with many simulated peers.
//!
//! Owns: every byte this server sends to or accepts from another server. Must not know: REST or
//! GraphQL request shapes, schema or key rules (the core's).
//!
//! Safety rule: this server only ever calls addresses somebody configured — the genesis, the
//! bootstrapped peers, and peers the genesis or a bootstrapped peer vouched for after checking
//! they answer.

pub mod api;
pub mod genesis;
pub mod membership;
pub mod peerlist;
pub mod questions;
pub mod simulation;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use weft_core::network::{KnownPeer, Peer};
use weft_core::Core;

/// Credentials this server uses at one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The peer's URL.
    pub url: String,
    /// `X-API-KEY` there.
    pub api_key: String,
    /// `X-API-TOKEN` there.
    pub api_token: String,
}

/// How this server takes part in a network.
#[derive(Debug, Clone)]
pub struct P2pConfig {
    /// This peer's name (`network.peer_name`).
    pub peer_name: String,
    /// The URL other servers reach this one at (`network.public_url`).
    pub public_url: String,
    /// The genesis server, if the network has one (`network.genesis_url`).
    pub genesis_url: Option<String>,
    /// Peers to announce to when there is no genesis (`P2P.bootstrappedPeers`).
    pub bootstrapped_peers: Vec<String>,
    /// Download the network's contextionary when it differs from this one's
    /// (`P2P.requestContextionary`).
    pub request_contextionary: bool,
    /// Between pings to the genesis (`network.ping_interval_s`, default 10 s).
    pub ping_interval: Duration,
    /// Keys for network queries, per peer URL (`network.peers`).
    pub credentials: Vec<Credentials>,
    /// Forward the caller's key to peers without configured credentials.
    pub forward_caller_key: bool,
}

/// The peers this server knows, with a version that moves on every change.
#[derive(Default)]
pub struct Directory {
    peers: RwLock<BTreeMap<String, KnownPeer>>,
    version: AtomicU64,
}

impl Directory {
    /// Every known peer and the version of the list.
    pub fn snapshot(&self) -> (u64, Vec<KnownPeer>) {
        let peers = self.peers.read().unwrap_or_else(PoisonError::into_inner);
        (
            self.version.load(Ordering::SeqCst),
            peers.values().cloned().collect(),
        )
    }

    /// One peer by name.
    pub fn get(&self, name: &str) -> Option<KnownPeer> {
        self.peers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Changes the list with `f` (which answers whether it changed anything); the version moves
    /// when it did.
    pub fn update<R>(&self, f: impl FnOnce(&mut BTreeMap<String, KnownPeer>) -> (bool, R)) -> R {
        let mut peers = self.peers.write().unwrap_or_else(PoisonError::into_inner);
        let (changed, r) = f(&mut peers);
        if changed {
            self.version.fetch_add(1, Ordering::SeqCst);
        }
        r
    }

    /// The peer whose URL is `url` (trailing slashes ignored).
    pub fn by_url(&self, url: &str) -> Option<Peer> {
        let norm = |u: &str| u.trim_end_matches('/').to_ascii_lowercase();
        let want = norm(url);
        self.peers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .find(|k| norm(&k.peer.uri) == want)
            .map(|k| k.peer.clone())
    }
}

/// This server as a peer of a network.
pub struct PeerNode {
    /// The core it answers from.
    pub core: Arc<Core>,
    /// How it takes part.
    pub config: P2pConfig,
    /// The peers it knows.
    pub directory: Directory,
    /// The client every outgoing call uses (bounded time-outs per call).
    pub http: reqwest::Client,
    /// Membership state: registration, the genesis's list, this server's contextionary
    /// ([`membership`]).
    pub membership: membership::Membership,
}

impl PeerNode {
    /// A peer over `core` that knows nobody yet.
    pub fn new(core: Arc<Core>, config: P2pConfig) -> Arc<Self> {
        Arc::new(PeerNode {
            core,
            config,
            directory: Directory::default(),
            http: http_client(),
            membership: membership::Membership::default(),
        })
    }
}

/// The HTTP client for calls to other servers: no proxy (peers are reached directly) and no
/// redirects (this server only calls addresses the configuration, the genesis or a bootstrapped
/// peer gave it); every call sets its own time-out.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

/// The peer-facing REST operations, for the REST front end to serve under its base path.
pub type Apis = (api::PeerApi, questions::QuestionsApi);

/// The operations over `node` (`None`: this server is no peer, and they say so).
pub fn apis(node: Option<Arc<PeerNode>>) -> Apis {
    (
        api::PeerApi::new(node.clone()),
        questions::QuestionsApi::new(node),
    )
}
