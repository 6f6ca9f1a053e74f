//! The state of this server's membership, beside the directory: registration, the list as the
//! genesis pushed it, schema downloads, and the flags of the membership loop. Read and changed by
//! [`crate::membership`] only.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use tokio::sync::Notify;
use uuid::Uuid;
use weft_peer_protocol::peerlist::LocalList;

use crate::contextionary::LocalContextionary;

/// How a peer's schema download stands.
#[derive(Default, Clone)]
pub(super) struct SchemaState {
    /// The hash downloaded.
    pub(super) downloaded: Option<String>,
    /// Failed downloads in a row.
    pub(super) failures: u32,
    /// No attempt before.
    pub(super) next_attempt: Option<Instant>,
    /// Why the last one failed.
    pub(super) error: Option<String>,
}

/// What this server knows about its membership, beside the directory.
pub struct Membership {
    /// Bootstrapped mode: this peer's id, made at start.
    pub(super) self_id: Uuid,
    /// Genesis mode: the id of the current registration.
    pub(super) registration: Mutex<Option<Uuid>>,
    /// Held for each call to the genesis, so that leaving never races a registration.
    pub(super) genesis_gate: tokio::sync::Mutex<()>,
    /// The list as the genesis pushed it.
    pub(super) list: Mutex<LocalList>,
    /// This server's contextionary.
    pub(super) contextionary: OnceLock<LocalContextionary>,
    pub(super) leaving: AtomicBool,
    pub(super) joined: AtomicBool,
    pub(super) started: AtomicBool,
    /// Wakes the membership loop (leaving, or a list that needs the genesis to learn our
    /// version).
    pub(super) wake: Notify,
    /// Peers whose schema is being downloaded.
    pub(super) downloading: Mutex<HashSet<String>>,
    /// Each peer's schema download.
    pub(super) schemas: Mutex<HashMap<String, SchemaState>>,
    /// Bootstrapped mode: echo failures in a row, per peer.
    pub(super) echo_failures: Mutex<HashMap<String, u32>>,
    /// Whether the directory's cap was logged.
    pub(super) warned_full: AtomicBool,
}

impl Default for Membership {
    fn default() -> Self {
        Membership {
            self_id: Uuid::new_v4(),
            registration: Mutex::new(None),
            genesis_gate: tokio::sync::Mutex::new(()),
            list: Mutex::new(LocalList::new()),
            contextionary: OnceLock::new(),
            leaving: AtomicBool::new(false),
            joined: AtomicBool::new(false),
            started: AtomicBool::new(false),
            wake: Notify::new(),
            downloading: Mutex::new(HashSet::new()),
            schemas: Mutex::new(HashMap::new()),
            echo_failures: Mutex::new(HashMap::new()),
            warned_full: AtomicBool::new(false),
        }
    }
}
