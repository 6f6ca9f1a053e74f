//! Peer names bound to keys: the first key a name is seen with owns it, on this server, until
//! an operator removes the binding. Kept on disk (`<data_dir>/peer-keys.json`, written whole
//! and renamed into place on every change), so a restart opens no window for a takeover, and
//! bounded in count. A peer also pins its genesis's key here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::identity::PublicKey;
use crate::uri::PeerUri;

/// The file name in a data directory.
pub const BINDINGS_FILE: &str = "peer-keys.json";

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct OnDisk {
    /// Peer name → its key.
    #[serde(default)]
    peers: BTreeMap<String, PublicKey>,
    /// The genesis this peer pinned, and its key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    genesis: Option<(PeerUri, PublicKey)>,
}

/// Why a name cannot be bound to a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The name is bound to another key.
    Taken(PublicKey),
    /// The table is full.
    Full(usize),
}

/// The bindings of one server.
pub struct Bindings {
    path: Option<PathBuf>,
    state: Mutex<OnDisk>,
    capacity: usize,
}

impl Bindings {
    /// Bindings kept in memory only (tests, tools).
    pub fn in_memory(capacity: usize) -> Bindings {
        Bindings {
            path: None,
            state: Mutex::new(OnDisk::default()),
            capacity,
        }
    }

    /// The bindings kept in `<dir>/peer-keys.json` (none yet when the file is missing), at most
    /// `capacity` names.
    pub fn open(dir: &Path, capacity: usize) -> Result<Bindings, String> {
        let path = dir.join(BINDINGS_FILE);
        let state = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                format!(
                    "{}: not this server's peer keys ({e}); fix it or move it away (peers then bind their names again)",
                    path.display()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => OnDisk::default(),
            Err(e) => return Err(format!("{}: cannot read it: {e}", path.display())),
        };
        Ok(Bindings {
            path: Some(path),
            state: Mutex::new(state),
            capacity,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OnDisk> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn save(&self, state: &OnDisk) {
        let Some(path) = &self.path else {
            return;
        };
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
            std::fs::write(&tmp, serde_json::to_vec_pretty(state).unwrap_or_default())?;
            std::fs::rename(&tmp, path)
        };
        if let Err(e) = write() {
            tracing::error!(
                "cannot keep the peer keys in {}: {e}; a restart forgets the bindings made since",
                path.display()
            );
        }
    }

    /// The key `name` is bound to.
    pub fn get(&self, name: &str) -> Option<PublicKey> {
        self.lock().peers.get(name).copied()
    }

    /// Whether `name` may be bound to `key` (it is unbound, or bound to `key`), without binding.
    pub fn check(&self, name: &str, key: &PublicKey) -> Result<(), Refused> {
        let st = self.lock();
        match st.peers.get(name) {
            Some(k) if k == key => Ok(()),
            Some(k) => Err(Refused::Taken(*k)),
            None if st.peers.len() >= self.capacity => Err(Refused::Full(self.capacity)),
            None => Ok(()),
        }
    }

    /// Binds `name` to `key`; `Ok(true)` when the binding is new.
    pub fn bind(&self, name: &str, key: PublicKey) -> Result<bool, Refused> {
        let mut st = self.lock();
        match st.peers.get(name) {
            Some(k) if *k == key => return Ok(false),
            Some(k) => return Err(Refused::Taken(*k)),
            None if st.peers.len() >= self.capacity => return Err(Refused::Full(self.capacity)),
            None => {}
        }
        st.peers.insert(name.to_string(), key);
        self.save(&st);
        Ok(true)
    }

    /// Removes the binding of `name` (an operator's decision); the key it had.
    pub fn remove(&self, name: &str) -> Option<PublicKey> {
        let mut st = self.lock();
        let k = st.peers.remove(name)?;
        self.save(&st);
        Some(k)
    }

    /// How many names are bound.
    pub fn len(&self) -> usize {
        self.lock().peers.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The genesis key pinned for `genesis`, if any.
    pub fn pinned_genesis(&self, genesis: &PeerUri) -> Option<PublicKey> {
        self.lock()
            .genesis
            .as_ref()
            .filter(|(u, _)| u == genesis)
            .map(|(_, k)| *k)
    }

    /// Pins `key` as the key of `genesis` (replacing a pin of another genesis).
    pub fn pin_genesis(&self, genesis: &PeerUri, key: PublicKey) {
        let mut st = self.lock();
        st.genesis = Some((genesis.clone(), key));
        self.save(&st);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    #[test]
    fn a_name_stays_with_its_first_key_across_a_restart_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (Identity::generate().public(), Identity::generate().public());
        let bindings = Bindings::open(dir.path(), 10).unwrap();
        assert_eq!(bindings.bind("alpha", a), Ok(true));
        assert_eq!(bindings.bind("alpha", a), Ok(false));
        assert_eq!(bindings.bind("alpha", b), Err(Refused::Taken(a)));
        let g = PeerUri::parse("https://genesis.example").unwrap();
        bindings.pin_genesis(&g, b);
        drop(bindings);
        let bindings = Bindings::open(dir.path(), 10).unwrap();
        assert_eq!(bindings.check("alpha", &b), Err(Refused::Taken(a)));
        assert_eq!(bindings.pinned_genesis(&g), Some(b));
        assert_eq!(bindings.remove("alpha"), Some(a));
        assert_eq!(bindings.bind("alpha", b), Ok(true));
    }

    #[test]
    fn the_table_is_bounded() {
        let bindings = Bindings::in_memory(1);
        bindings.bind("a", Identity::generate().public()).unwrap();
        assert_eq!(
            bindings.bind("b", Identity::generate().public()),
            Err(Refused::Full(1))
        );
    }
}
