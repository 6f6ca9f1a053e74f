//! `weft-peer-protocol`: what crosses between the servers of a Weft network, for both the peers
//! (`weft-p2p`) and the genesis (`weft-genesis`).
//!
//! * [`identity`]: a server's Ed25519 key (`<data_dir>/identity.key`) and public keys as text;
//! * [`signature`]: signed requests and answers (a fixed RFC 9421 profile), the replay guard;
//!   [`signed_http`]: the middleware that checks them on arrival and signs the answers;
//! * [`client`]: [`client::PeerClient`], through which every call to another server goes
//!   (signed, its answer's signature checked, bounded in bytes and time);
//! * [`tls`]: certificates for listening, CA files and the HTTP client for calling;
//! * [`uri`]: [`PeerUri`], the one way peer URLs are compared;
//! * [`wire`]: the JSON shapes, one type each;
//! * [`peerlist`]: the versioned peer list a genesis pushes, and [`simulation`], which measures
//!   it with many simulated peers;
//! * [`bindings`]: peer names bound to their keys (kept on disk), the pinned genesis key;
//! * [`budget`]: per-sender rates and bounded work in progress.
//!
//! Owns: the bytes and their authenticity. Must not know: the core (objects, keys, the
//! ontology), serving routes, or who may send what (the receivers' rules).

pub mod bindings;
pub mod budget;
pub mod client;
pub mod identity;
pub mod peerlist;
pub mod signature;
pub mod signed_http;
pub mod simulation;
pub mod tls;
pub mod uri;
pub mod wire;

pub use client::{Answer, Call, CallError, PeerClient};
pub use identity::{Identity, PublicKey};
pub use uri::PeerUri;
