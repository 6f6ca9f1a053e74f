//! `weft-p2p`: this server as a peer of a network, on `weft-core` beside REST and GraphQL.
//!
//! * [`membership`]: registering at a genesis and pinging it, or announcing to a bootstrapped
//!   peer and echoing the peers known; the known peers and their (checked) schemas;
//! * [`contextionary`]: the contextionary check at start-up (and the network's download);
//! * [`api`]: the peer-facing operations under `/weaviate/v1` (`/p2p/*`, `/peers`,
//!   `/peers/echo`), and the operator's `DELETE /p2p/peers/{name}`;
//! * [`questions`]: network questions and answers (`/peers/questions`,
//!   `/peers/answers/{answerId}`) and the [`weft_core::Network`] implementation the GraphQL
//!   `Network` queries use.
//!
//! Trust (see README "Running a network across organisations"): every message to another
//! server is signed with this server's key and every answer's signature checked
//! ([`weft_peer_protocol`]); every message from another server is verified before a handler
//! sees it (the [`Signing`] middleware), and each operation says whose signature it needs: the
//! pinned genesis key for pushed lists, a known peer's bound key for questions and answers, the
//! announced key for an announcement. A peer name is bound to one key. Every peer-facing
//! operation has a budget (`limits.*`).
//!
//! Owns: every byte this server sends to or accepts from another server. Must not know: REST
//! or GraphQL request shapes, schema or key rules (the core's).
//!
//! Safety rule: this server only ever calls addresses somebody configured — the genesis, the
//! bootstrapped peers, and peers the genesis or a bootstrapped peer vouched for, after checking
//! they answer with their key.

pub mod api;
pub mod contextionary;
pub mod membership;
pub mod questions;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use weft_core::network::{KnownPeer, Peer};
use weft_core::Core;
use weft_peer_protocol::bindings::Bindings;
use weft_peer_protocol::budget::{InProgress, PerMinute};
use weft_peer_protocol::signed_http::Signing;
use weft_peer_protocol::{Identity, PeerClient, PeerUri, PublicKey};

pub use weft_peer_protocol;

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
    /// The genesis's public key, when the operator pins it (`network.genesis_key`); otherwise
    /// it is pinned at first contact.
    pub genesis_key: Option<PublicKey>,
    /// Peers to announce to when there is no genesis (`P2P.bootstrappedPeers`).
    pub bootstrapped_peers: Vec<String>,
    /// Download the network's contextionary when it differs from this one's
    /// (`P2P.requestContextionary`).
    pub request_contextionary: bool,
    /// Take unsigned messages from Weaviate 0.12 peers (`P2P.acceptUnsignedPeers`).
    pub accept_unsigned: bool,
    /// Between pings to the genesis (`network.ping_interval_s`, default 10 s).
    pub ping_interval: Duration,
    /// Keys for network queries, per peer URL (`network.peers`).
    pub credentials: Vec<Credentials>,
    /// Forward the caller's key to peers without configured credentials.
    pub forward_caller_key: bool,
    /// The key whose objects network questions are answered over (`network.share_key`).
    pub share_key: Option<uuid::Uuid>,
    /// Where this server keeps its identity and the peers' keys (`data_dir`).
    pub data_dir: PathBuf,
    /// Extra CAs trusted when calling other servers (`network.ca_file`).
    pub ca: Vec<reqwest::Certificate>,
}

/// This server's means of talking to others, made before it serves (the start-up contextionary
/// check already talks to the network): its identity, the client, the bound peer names.
pub struct Transport {
    /// This server's key.
    pub identity: Arc<Identity>,
    /// Every call to another server goes through it.
    pub client: PeerClient,
    /// Peer names bound to keys, and the pinned genesis key (`<data_dir>/peer-keys.json`).
    pub bindings: Bindings,
}

impl Transport {
    /// Loads (or makes) the identity in `config.data_dir`, opens the bindings, makes the client
    /// (reading at most `max_answer_bytes` of an answer, keeping at most `max_peers` bindings).
    pub fn open(
        config: &P2pConfig,
        max_answer_bytes: usize,
        max_peers: usize,
    ) -> anyhow::Result<Transport> {
        let (identity, made) = Identity::load_or_create(&config.data_dir)?;
        if made {
            tracing::info!(
                "made this server's identity {} in {}",
                identity.public(),
                config
                    .data_dir
                    .join(weft_peer_protocol::identity::IDENTITY_FILE)
                    .display()
            );
        }
        let identity = Arc::new(identity);
        let http = weft_peer_protocol::tls::http_client(&config.ca, Duration::from_secs(5))
            .map_err(anyhow::Error::msg)?;
        Ok(Transport {
            client: PeerClient::new(
                http,
                identity.clone(),
                config.peer_name.clone(),
                max_answer_bytes,
            ),
            bindings: Bindings::open(&config.data_dir, max_peers).map_err(anyhow::Error::msg)?,
            identity,
        })
    }
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

    /// How many peers are known.
    pub fn len(&self) -> usize {
        self.peers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

    /// The peer at `uri`.
    pub fn by_uri(&self, uri: &PeerUri) -> Option<Peer> {
        self.peers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .find(|k| PeerUri::parse(&k.peer.uri).ok().as_ref() == Some(uri))
            .map(|k| k.peer.clone())
    }
}

/// The key a known peer is bound to, parsed (`None`: a peer that cannot sign).
pub fn key_of(p: &Peer) -> Option<PublicKey> {
    p.identity.as_deref().and_then(|k| k.parse().ok())
}

/// The budgets of the peer-facing operations (`limits.*`).
pub struct Budgets {
    /// Announcements per peer key per minute.
    pub announces_by_key: PerMinute,
    /// Announcements per network address per minute.
    pub announces_by_address: PerMinute,
    /// Questions per asking peer per minute.
    pub questions: PerMinute,
    /// Answers being computed at once.
    pub answering: InProgress,
}

/// This server as a peer of a network.
pub struct PeerNode {
    /// The core it answers from.
    pub core: Arc<Core>,
    /// How it takes part.
    pub config: P2pConfig,
    /// Its base URL as peers reach it.
    pub public_uri: PeerUri,
    /// The peers it knows.
    pub directory: Directory,
    /// Its identity, client and bindings.
    pub transport: Transport,
    /// Checks signed messages on arrival and signs the answers ([`PeerNode::signing`]).
    signing: Arc<Signing>,
    /// Budgets of the peer-facing operations.
    pub budgets: Budgets,
    /// Membership state: registration, the genesis's list, this server's contextionary
    /// ([`membership`]).
    pub membership: membership::Membership,
    /// The answers this peer waits for ([`questions`]).
    pub(crate) waiting: questions::Waiting,
    /// Whether the warning about plain HTTP was logged.
    warned_plain: AtomicBool,
}

impl PeerNode {
    /// A peer over `core` that knows nobody yet. `config.public_url` must hold the port bound.
    pub fn new(
        core: Arc<Core>,
        config: P2pConfig,
        transport: Transport,
    ) -> anyhow::Result<Arc<Self>> {
        let public_uri = PeerUri::parse(&config.public_url)
            .map_err(|e| anyhow::anyhow!("network.public_url: {e}"))?;
        let limits = core.limits.clone();
        let signing = Signing::new(
            transport.identity.clone(),
            config.peer_name.clone(),
            vec![public_uri.authority()],
            limits.max_body_bytes,
        );
        Ok(Arc::new(PeerNode {
            budgets: Budgets {
                announces_by_key: PerMinute::new(limits.peer_announces_per_minute, 100_000),
                announces_by_address: PerMinute::new(limits.peer_announces_per_minute, 100_000),
                questions: PerMinute::new(
                    limits.peer_questions_per_minute,
                    limits.max_peers.saturating_add(16),
                ),
                answering: InProgress::new(limits.max_answers_in_progress),
            },
            core,
            config,
            public_uri,
            directory: Directory::default(),
            transport,
            signing,
            membership: membership::Membership::default(),
            waiting: questions::Waiting::default(),
            warned_plain: AtomicBool::new(false),
        }))
    }

    /// The middleware that verifies signed requests and signs their answers: the REST front
    /// end wraps every route in it.
    pub fn signing(&self) -> Arc<Signing> {
        self.signing.clone()
    }

    /// The client every call to another server goes through.
    pub fn client(&self) -> &PeerClient {
        &self.transport.client
    }

    /// This server's public key.
    pub fn identity(&self) -> PublicKey {
        self.transport.identity.public()
    }

    /// Logs once that the network is joined over plain HTTP from an address others reach.
    pub(crate) fn warn_if_plain(&self, other: &PeerUri) {
        let plain = !self.public_uri.is_https() || !other.is_https();
        if plain
            && !(self.public_uri.is_loopback() && other.is_loopback())
            && !self.warned_plain.swap(true, Ordering::SeqCst)
        {
            tracing::warn!(
                "this peer talks to {other} over plain HTTP: messages are signed but readable on the way, keys and tokens included; serve HTTPS (tls.cert, tls.key) and use https:// addresses"
            );
        }
    }
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
