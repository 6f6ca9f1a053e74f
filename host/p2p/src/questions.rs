//! Network questions: `/peers/questions` and `/peers/answers/{answerId}`, and the
//! [`weft_core::Network`] implementation of [`crate::PeerNode`]. (Being written.)

use std::sync::Arc;

use poem_openapi::OpenApi;

use crate::PeerNode;

/// The question and answer operations.
pub struct QuestionsApi {
    /// The peer, when this server is one.
    pub node: Option<Arc<PeerNode>>,
}

impl QuestionsApi {
    /// The operations over `node`.
    pub fn new(node: Option<Arc<PeerNode>>) -> Self {
        QuestionsApi { node }
    }
}

#[OpenApi]
impl QuestionsApi {}

impl weft_core::Network for PeerNode {
    fn peers(&self) -> (u64, Vec<weft_core::network::KnownPeer>) {
        self.directory.snapshot()
    }

    fn knows_url(&self, url: &str) -> bool {
        self.directory.by_url(url).is_some()
    }

    fn query_peer(
        &self,
        peer: &str,
        _query: String,
        _timeout: std::time::Duration,
    ) -> futures::future::BoxFuture<'static, weft_core::Result<serde_json::Value>> {
        let peer = peer.to_string();
        Box::pin(async move {
            Err(weft_core::Error::unsupported(format!(
                "network queries to {peer} are not built yet"
            )))
        })
    }

    fn ask(
        &self,
        _question: weft_core::network::Question,
        _timeout: std::time::Duration,
    ) -> futures::future::BoxFuture<'static, Vec<weft_core::network::PeerAnswer>> {
        Box::pin(async { vec![] })
    }
}
