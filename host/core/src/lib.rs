//! `weft-core`: what every front end of Weft (REST, GraphQL, the P2P network) shares — the
//! caller ([`Principal`]) and the key tree, who may do and see what ([`Access`],
//! [`Visibility`]), and the services: objects (validation, reference checks, atomic writes),
//! the ontology (schema rules, the contextionary's annotation) and keys — with one [`Error`]
//! type whose [`ErrorKind`] each front end maps to its protocol.
//!
//! Owns: the rules. Reaches storage only through [`ConnectorHandle`] and embeddings only
//! through [`ContextionaryHandle`]; blocking plugin work (nearest-neighbour searches) runs on
//! tokio's blocking pool.
//!
//! Must not know: HTTP or GraphQL (no poem, poem-openapi, async-graphql, reqwest or hyper: a
//! test in `tests/` checks the dependency tree), request and response shapes, configuration
//! files, how plugins are found on disk.

pub mod access;
pub mod answering;
pub mod backlog;
pub mod c11y;
mod core;
pub mod error;
pub mod handles;
pub mod keys;
pub mod limits;
pub mod meaning;
pub mod network;
pub mod objects;
pub mod ontology;
mod ownership;
pub mod plugin_log;
pub mod scratch;

pub use crate::access::{Access, Visibility};
pub use crate::core::{Backup, Core, CoreConfig, PluginInfo, PluginStatus};
pub use crate::error::{Error, ErrorKind, Result};
pub use crate::handles::{ConnectorHandle, ContextionaryHandle, WriteMode};
pub use crate::keys::{KeyTree, NewKey, Principal, Right};
pub use crate::limits::Limits;
pub use crate::network::Network;

/// A new time-ordered (v7) id and the Unix time in milliseconds it holds, the `created_ms` of
/// the object or key it names. Ids of this process increase, and so never hold an earlier time
/// (uuid's shared v7 context keeps its last time when the clock steps back), so "created later"
/// is exactly "larger id": newest-first and oldest-first listings break ties by id.
pub(crate) fn time_ordered_id() -> (weft_plugin_api::Id, i64) {
    let id = weft_plugin_api::Id::time_ordered();
    let ms = id.unix_ms().unwrap_or_else(weft_plugin_api::now_ms);
    (id, ms)
}
