//! The peer-facing operations under `/weaviate/v1` (no key needed): `/p2p/health`,
//! `/p2p/ping`, `/p2p/genesis`, `/p2p/peers`, `/p2p/schema`, `/peers` (announce), `/peers/echo`.
//! (Being written.)

use std::sync::Arc;

use poem_openapi::OpenApi;

use crate::PeerNode;

/// The membership operations; answer 404 "not part of a network" when this server is no peer.
pub struct PeerApi {
    /// The peer, when this server is one.
    pub node: Option<Arc<PeerNode>>,
}

impl PeerApi {
    /// The operations over `node`.
    pub fn new(node: Option<Arc<PeerNode>>) -> Self {
        PeerApi { node }
    }
}

#[OpenApi]
impl PeerApi {}
