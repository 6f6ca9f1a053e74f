//! The peers this server knows, and the key each is bound to.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

use weft_core::network::{KnownPeer, Peer};
use weft_peer_protocol::{PeerUri, PublicKey};

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
