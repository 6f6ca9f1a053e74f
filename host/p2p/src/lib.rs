//! `weft-p2p`: this server as a peer of a network, on `weft-core` beside REST and GraphQL.
//!
//! From the bottom up:
//! * [`config`]: how this server takes part ([`P2pConfig`], its mode); [`transport`]: its
//!   identity, client and bound peer names; [`directory`]: the peers it knows;
//! * [`contextionary`]: the contextionary check at start-up (and the network's download);
//! * [`node`]: [`PeerNode`], this server as a peer — what it is made of, including the state
//!   of its membership and of the answers it waits for;
//! * [`membership`]: registering at a genesis and pinging it, or announcing to a bootstrapped
//!   peer and echoing the peers known; the known peers and their (checked) schemas;
//! * [`network_view`]: the network as this peer sees it, for the browser console's network page;
//! * [`api`]: the peer-facing operations under `/weaviate/v1` (`/p2p/*`, `/peers`,
//!   `/peers/echo`), the operator's `DELETE /p2p/peers/{name}` and the console's
//!   `GET /p2p/network` (read right);
//! * [`asking`]: asking peers network questions and taking their answers
//!   (`/peers/questions`, `/peers/answers/{answerId}`; a peer's question is answered by
//!   `weft_core::answering`), and the [`weft_core::Network`] implementation the GraphQL
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
pub mod asking;
pub mod config;
pub mod contextionary;
pub mod directory;
pub mod membership;
pub mod network_view;
pub mod node;
pub mod transport;

use std::sync::Arc;

pub use config::{Credentials, P2pConfig};
pub use directory::{key_of, Directory};
pub use node::{Budgets, PeerNode};
pub use transport::Transport;
pub use weft_peer_protocol;

/// The peer-facing REST operations, for the REST front end to serve under its base path.
pub type Apis = (api::PeerApi, asking::QuestionsApi);

/// The operations over `node` (`None`: this server is no peer, and they say so).
pub fn apis(node: Option<Arc<PeerNode>>) -> Apis {
    (
        api::PeerApi::new(node.clone()),
        asking::QuestionsApi::new(node),
    )
}
