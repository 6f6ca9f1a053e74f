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
