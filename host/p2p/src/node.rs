//! This server as a peer of a network ([`PeerNode`]): what it is made of — the core it answers
//! from, its configuration, transport, directory, budgets, and the state of its membership and of
//! the answers it waits for. What it does is in [`crate::membership`] and [`crate::asking`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use weft_core::Core;
use weft_peer_protocol::budget::{InProgress, PerMinute};
use weft_peer_protocol::signed_http::Signing;
use weft_peer_protocol::{PeerClient, PeerUri, PublicKey};

use crate::asking::waiting::Waiting;
use crate::config::P2pConfig;
use crate::directory::Directory;
use crate::membership::state::Membership;
use crate::transport::Transport;

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
    /// ([`crate::membership`]).
    pub membership: Membership,
    /// The answers this peer waits for ([`crate::asking`]).
    pub(crate) waiting: Waiting,
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
            membership: Membership::default(),
            waiting: Waiting::default(),
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
