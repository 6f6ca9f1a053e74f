//! The versioned peer list: what the genesis pushes to its peers on every change.
//!
//! Weaviate 0.12 pushed the whole list (`PUT /weaviate/v1/p2p/genesis`, body: the swagger's
//! `PeerUpdateList`, an array of `{id, name, uri, schemaHash}`) to every peer on every change:
//! N messages of O(N) bytes per churn event, O(N²) bytes. Weft keeps that request for 0.12
//! peers and versions the list, so that a peer that says which version it holds receives only
//! what changed since.
//!
//! * [`PeerList`] (genesis side): the peers, a version that moves on every list change, and a
//!   bounded log of the recent changes; [`PeerList::update_for`] answers what to send a peer that
//!   holds a given version.
//! * [`ListUpdate`]: a full list or the changes between two versions, and its wire form
//!   ([`ListUpdate::to_request`], [`ListUpdate::from_request`]).
//! * [`LocalList`] (peer side): the list as a peer holds it, and the version it holds.
//!
//! Wire form of `PUT /weaviate/v1/p2p/genesis`:
//!
//! | update | headers | body |
//! |---|---|---|
//! | full list | `X-Weft-Peer-List-Version: <version>` (absent when unknown) | the 0.12 `PeerUpdateList` array |
//! | changes | `X-Weft-Peer-List: changes` | `{"from": v, "to": w, "upserted": [PeerUpdate…], "removed": [uuid…]}` |
//!
//! A 0.12 peer ignores the extra header of a full list and so understands it; changes are only
//! sent to a peer that reported a version (0.12 peers never do), which is how a peer "says it
//! can".
//!
//! Versions are opaque to peers. A [`PeerList`] starts at a version derived from the time it was
//! made (Unix ms × 1000), so after a genesis restart the versions peers hold from the old genesis
//! are below the new list's change log and get a full list, never changes of another history.
//! Version 0 ([`UNKNOWN_VERSION`]) is never a list's version: it stands for "unknown" in
//! [`ListUpdate::Full`] (a 0.12 genesis's list).

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::identity::PublicKey;

/// The header carrying a full list's version.
pub const VERSION_HEADER: &str = "X-Weft-Peer-List-Version";
/// The header that marks a body of changes (value [`CHANGES`]).
pub const FORMAT_HEADER: &str = "X-Weft-Peer-List";
/// The value of [`FORMAT_HEADER`] for changes.
pub const CHANGES: &str = "changes";
/// The version of a full list whose version is not known (a 0.12 genesis's list).
pub const UNKNOWN_VERSION: u64 = 0;
/// How many changes a [`PeerList`] made with [`PeerList::new`] remembers.
pub const DEFAULT_LOG_CAPACITY: usize = 4096;

/// A peer of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Its registration id (from the genesis).
    pub id: Uuid,
    /// Its name, a DNS label unique in the network.
    pub name: String,
    /// Its base URL (a [`crate::PeerUri`]'s text).
    pub uri: String,
    /// The MD5 of its schema, as it last said.
    pub schema_hash: String,
    /// Its public key (`None`: a Weaviate 0.12 peer, which cannot sign).
    pub identity: Option<PublicKey>,
    /// When it was last heard from, Unix ms (0 when unknown; not carried by the list).
    pub last_contact_ms: i64,
}

/// One peer on the wire: the swagger's `PeerUpdate`, with the extension `identity` (a 0.12
/// peer ignores it).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PeerUpdate {
    id: Uuid,
    #[serde(default)]
    name: String,
    #[serde(default)]
    uri: String,
    #[serde(rename = "schemaHash", default)]
    schema_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    identity: Option<PublicKey>,
}

impl From<&Peer> for PeerUpdate {
    fn from(p: &Peer) -> Self {
        PeerUpdate {
            id: p.id,
            name: p.name.clone(),
            uri: p.uri.clone(),
            schema_hash: p.schema_hash.clone(),
            identity: p.identity,
        }
    }
}

impl From<PeerUpdate> for Peer {
    fn from(p: PeerUpdate) -> Self {
        Peer {
            id: p.id,
            name: p.name,
            uri: p.uri,
            schema_hash: p.schema_hash,
            identity: p.identity,
            last_contact_ms: 0,
        }
    }
}

/// The body of a [`ListUpdate::Changes`].
#[derive(Debug, Serialize, Deserialize)]
struct ChangesBody {
    from: u64,
    to: u64,
    #[serde(default)]
    upserted: Vec<PeerUpdate>,
    #[serde(default)]
    removed: Vec<Uuid>,
}

/// Whether two peers differ in what the list carries (name, URI, schema hash, identity; not
/// last contact).
fn differs(a: &Peer, b: &Peer) -> bool {
    a.name != b.name || a.uri != b.uri || a.schema_hash != b.schema_hash || a.identity != b.identity
}

/// One change in the log.
#[derive(Debug, Clone, Copy)]
enum Change {
    Upsert(Uuid),
    Remove(Uuid),
}

/// The network's peer list as the genesis keeps it: peers by id, a version that moves on every
/// list change, and a bounded log of recent changes to answer "what changed since v".
#[derive(Debug, Clone)]
pub struct PeerList {
    peers: BTreeMap<Uuid, Peer>,
    version: u64,
    /// `(version after the change, change)`, oldest first.
    log: VecDeque<(u64, Change)>,
    /// The oldest version whose changes up to now the log holds.
    log_base: u64,
    log_capacity: usize,
}

impl Default for PeerList {
    fn default() -> Self {
        PeerList::new()
    }
}

impl PeerList {
    /// An empty list, at a version derived from the clock (Unix ms × 1000), remembering
    /// [`DEFAULT_LOG_CAPACITY`] changes.
    pub fn new() -> Self {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        PeerList::starting_at(now_ms.saturating_mul(1000), DEFAULT_LOG_CAPACITY)
    }

    /// An empty list at version `version` (0 is taken as 1: 0 means unknown) that remembers the
    /// last `log_capacity` changes (deterministic versions, for tests and the simulation).
    pub fn starting_at(version: u64, log_capacity: usize) -> Self {
        let version = version.max(1);
        PeerList {
            peers: BTreeMap::new(),
            version,
            log: VecDeque::new(),
            log_base: version,
            log_capacity,
        }
    }

    /// The list's version; it moves on every change of the list.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The peers, by id.
    pub fn peers(&self) -> Vec<Peer> {
        self.peers.values().cloned().collect()
    }

    /// How many peers the list holds.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether the list holds no peer.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// One peer by id.
    pub fn get(&self, id: Uuid) -> Option<&Peer> {
        self.peers.get(&id)
    }

    fn record(&mut self, change: Change) {
        self.version += 1;
        self.log.push_back((self.version, change));
        while self.log.len() > self.log_capacity {
            if let Some((v, _)) = self.log.pop_front() {
                self.log_base = v;
            }
        }
        if self.log_capacity == 0 {
            self.log_base = self.version;
        }
    }

    /// Adds `p` or replaces the peer with its id. True when that changed the list: the peer is
    /// new, or its name, URI or schema hash changed (then the version moves). Its last contact
    /// is kept either way, but alone is no list change.
    pub fn upsert(&mut self, p: Peer) -> bool {
        let id = p.id;
        let changed = self.peers.get(&id).is_none_or(|old| differs(old, &p));
        self.peers.insert(id, p);
        if changed {
            self.record(Change::Upsert(id));
        }
        changed
    }

    /// Removes the peer `id`, answering it (the version moves) or `None` when unknown.
    pub fn remove(&mut self, id: Uuid) -> Option<Peer> {
        let p = self.peers.remove(&id)?;
        self.record(Change::Remove(id));
        Some(p)
    }

    /// A ping from peer `id` at `now_ms` with its schema hash: `None` when the id is unknown,
    /// `Some(true)` when the schema hash changed (a list change: the version moves),
    /// `Some(false)` otherwise.
    pub fn touch(&mut self, id: Uuid, now_ms: i64, schema_hash: &str) -> Option<bool> {
        let p = self.peers.get_mut(&id)?;
        p.last_contact_ms = now_ms;
        if p.schema_hash == schema_hash {
            return Some(false);
        }
        p.schema_hash = schema_hash.to_string();
        self.record(Change::Upsert(id));
        Some(true)
    }

    /// What to send a peer that holds version `known`: `None` → the full list; `Some(v)` → the
    /// changes from `v` to now (empty when `v` is the current version), or the full list when
    /// `v` is older than the change log reaches back or newer than the list (another genesis's
    /// version, e.g. before a restart).
    pub fn update_for(&self, known: Option<u64>) -> ListUpdate {
        let v = match known {
            Some(v) if v >= self.log_base && v <= self.version => v,
            _ => return self.full(),
        };
        // The last change per id since v decides: the peer as it is now, or removed.
        let mut last: BTreeMap<Uuid, bool> = BTreeMap::new();
        for (_, change) in self.log.iter().filter(|(cv, _)| *cv > v) {
            match *change {
                Change::Upsert(id) => last.insert(id, true),
                Change::Remove(id) => last.insert(id, false),
            };
        }
        let mut upserted = Vec::new();
        let mut removed = Vec::new();
        for (id, _) in last {
            match self.peers.get(&id) {
                Some(p) => upserted.push(p.clone()),
                None => removed.push(id),
            }
        }
        ListUpdate::Changes {
            from: v,
            to: self.version,
            upserted,
            removed,
        }
    }

    fn full(&self) -> ListUpdate {
        ListUpdate::Full {
            version: self.version,
            peers: self.peers(),
        }
    }
}

/// What the genesis sends a peer: the full list, or the changes between two versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListUpdate {
    /// The whole list at `version` ([`UNKNOWN_VERSION`] when not known: a 0.12 genesis's).
    Full {
        /// The list's version.
        version: u64,
        /// Every peer (last contact is not sent: 0 on arrival).
        peers: Vec<Peer>,
    },
    /// What changed from version `from` to version `to`.
    Changes {
        /// The version the changes apply to.
        from: u64,
        /// The version they lead to.
        to: u64,
        /// Peers new or changed since `from`, as they are at `to`.
        upserted: Vec<Peer>,
        /// Peers removed since `from` (possibly ones the receiver never knew).
        removed: Vec<Uuid>,
    },
}

impl ListUpdate {
    /// The version this update leads to (`None` for a full list of unknown version).
    pub fn version(&self) -> Option<u64> {
        match self {
            ListUpdate::Full { version, .. } => (*version != UNKNOWN_VERSION).then_some(*version),
            ListUpdate::Changes { to, .. } => Some(*to),
        }
    }

    /// The headers and JSON body of `PUT /weaviate/v1/p2p/genesis` carrying this update: a full
    /// list is the 0.12 `PeerUpdateList` array with header [`VERSION_HEADER`] (none when the
    /// version is unknown); changes are `{"from","to","upserted","removed"}` with header
    /// [`FORMAT_HEADER`]` = changes`.
    pub fn to_request(&self) -> (Vec<(&'static str, String)>, serde_json::Value) {
        match self {
            ListUpdate::Full { version, peers } => {
                let body: Vec<PeerUpdate> = peers.iter().map(PeerUpdate::from).collect();
                let headers = if *version == UNKNOWN_VERSION {
                    vec![]
                } else {
                    vec![(VERSION_HEADER, version.to_string())]
                };
                (headers, serde_json::to_value(body).unwrap_or_default())
            }
            ListUpdate::Changes {
                from,
                to,
                upserted,
                removed,
            } => {
                let body = ChangesBody {
                    from: *from,
                    to: *to,
                    upserted: upserted.iter().map(PeerUpdate::from).collect(),
                    removed: removed.clone(),
                };
                (
                    vec![(FORMAT_HEADER, CHANGES.to_string())],
                    serde_json::to_value(body).unwrap_or_default(),
                )
            }
        }
    }

    /// Reads a `PUT /weaviate/v1/p2p/genesis` request: `headers` answers a header's value by
    /// name (it is asked for the names as written above, then in lower case), `body` is the
    /// parsed JSON. A body without these headers is a 0.12 full list of unknown version.
    /// Errors are one line, fit for a 400 answer.
    pub fn from_request(
        headers: impl Fn(&str) -> Option<String>,
        body: &serde_json::Value,
    ) -> Result<ListUpdate, String> {
        let header = |name: &str| headers(name).or_else(|| headers(&name.to_ascii_lowercase()));
        match header(FORMAT_HEADER) {
            Some(format) if format.trim().eq_ignore_ascii_case(CHANGES) => {
                let b = ChangesBody::deserialize(body)
                    .map_err(|e| format!("invalid peer list changes: {e}"))?;
                if b.from > b.to {
                    return Err(format!(
                        "invalid peer list changes: from {} is after to {}",
                        b.from, b.to
                    ));
                }
                Ok(ListUpdate::Changes {
                    from: b.from,
                    to: b.to,
                    upserted: b.upserted.into_iter().map(Peer::from).collect(),
                    removed: b.removed,
                })
            }
            Some(format) => Err(format!("unknown peer list format {format:?}")),
            None => {
                let version = match header(VERSION_HEADER) {
                    None => UNKNOWN_VERSION,
                    Some(v) => v
                        .trim()
                        .parse::<u64>()
                        .map_err(|_| format!("invalid {VERSION_HEADER} {v:?}"))?,
                };
                let list = Vec::<PeerUpdate>::deserialize(body)
                    .map_err(|e| format!("invalid peer list: {e}"))?;
                Ok(ListUpdate::Full {
                    version,
                    peers: list.into_iter().map(Peer::from).collect(),
                })
            }
        }
    }
}

/// A peer could not apply changes: they start from another version than the one it holds.
/// It should report its version (or none) so that the genesis sends a full list or the right
/// changes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeedFull;

impl fmt::Display for NeedFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("peer list changes do not start from the version held here")
    }
}

impl std::error::Error for NeedFull {}

/// The peer list as a peer holds it, with the version it holds (`None`: unknown, e.g. nothing
/// received yet or a 0.12 genesis's list).
#[derive(Debug, Clone, Default)]
pub struct LocalList {
    peers: BTreeMap<Uuid, Peer>,
    version: Option<u64>,
}

impl LocalList {
    /// An empty list of unknown version.
    pub fn new() -> Self {
        LocalList::default()
    }

    /// The version held: report it to the genesis to receive only changes.
    pub fn version(&self) -> Option<u64> {
        self.version
    }

    /// The peers, by id.
    pub fn peers(&self) -> Vec<Peer> {
        self.peers.values().cloned().collect()
    }

    /// How many peers the list holds.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether the list holds no peer.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Whether this list holds the same peers as the genesis's `list` (ids, names, URIs and
    /// schema hashes; last contact is not sent, so not compared). The versions are not compared.
    pub fn agrees_with(&self, list: &PeerList) -> bool {
        self.peers.len() == list.peers.len()
            && self
                .peers
                .values()
                .zip(list.peers.values())
                .all(|(a, b)| a.id == b.id && !differs(a, b))
    }

    /// Applies `u`, answering the peers that are new or changed (name, URI or schema hash), by
    /// id; removed ones are those of [`LocalList::peers`] no longer there. Changes whose `from`
    /// is not the version held (or when none is held) are refused with [`NeedFull`], leaving the
    /// list as it was.
    pub fn apply(&mut self, u: ListUpdate) -> Result<Vec<Peer>, NeedFull> {
        match u {
            ListUpdate::Full { version, peers } => {
                let mut new: BTreeMap<Uuid, Peer> = BTreeMap::new();
                for p in peers {
                    new.insert(p.id, p);
                }
                let changed = new
                    .values()
                    .filter(|p| self.peers.get(&p.id).is_none_or(|old| differs(old, p)))
                    .cloned()
                    .collect();
                self.peers = new;
                self.version = (version != UNKNOWN_VERSION).then_some(version);
                Ok(changed)
            }
            ListUpdate::Changes {
                from,
                to,
                upserted,
                removed,
            } => {
                if self.version != Some(from) {
                    return Err(NeedFull);
                }
                for id in removed {
                    self.peers.remove(&id);
                }
                let mut changed: BTreeMap<Uuid, Peer> = BTreeMap::new();
                for p in upserted {
                    if self.peers.get(&p.id).is_none_or(|old| differs(old, &p)) {
                        changed.insert(p.id, p.clone());
                    }
                    self.peers.insert(p.id, p);
                }
                self.version = Some(to);
                Ok(changed.into_values().collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn peer(n: u128, hash: &str) -> Peer {
        Peer {
            id: Uuid::from_u128(n),
            name: format!("peer{n}"),
            uri: format!("http://127.0.0.1:{}", 8000 + n),
            schema_hash: hash.to_string(),
            identity: None,
            last_contact_ms: 0,
        }
    }

    /// Peers without last contact, which the wire does not carry.
    fn wire(peers: Vec<Peer>) -> Vec<Peer> {
        peers
            .into_iter()
            .map(|p| Peer {
                identity: None,
                last_contact_ms: 0,
                ..p
            })
            .collect()
    }

    fn roundtrip(u: &ListUpdate) -> ListUpdate {
        let (headers, body) = u.to_request();
        // Through text, as on the wire; header look-up case-insensitive, like HTTP's.
        let body: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&body).unwrap()).unwrap();
        ListUpdate::from_request(
            |name| {
                headers
                    .iter()
                    .find(|(h, _)| h.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.clone())
            },
            &body,
        )
        .unwrap()
    }

    #[test]
    fn upsert_remove_touch_and_versions() {
        let mut l = PeerList::starting_at(100, 16);
        assert_eq!(l.version(), 100);
        assert!(l.upsert(peer(1, "a")));
        assert_eq!(l.version(), 101);
        // Same peer again, only last contact differs: no change.
        assert!(!l.upsert(Peer {
            identity: None,
            last_contact_ms: 5,
            ..peer(1, "a")
        }));
        assert_eq!(l.version(), 101);
        assert_eq!(l.get(Uuid::from_u128(1)).unwrap().last_contact_ms, 5);
        // A new URI, a new name, a new hash: changes.
        assert!(l.upsert(Peer {
            uri: "http://other".into(),
            ..peer(1, "a")
        }));
        assert!(l.upsert(Peer {
            name: "renamed".into(),
            uri: "http://other".into(),
            ..peer(1, "a")
        }));
        assert_eq!(l.version(), 103);
        assert!(l.upsert(peer(2, "b")));
        assert_eq!(l.version(), 104);

        assert_eq!(l.touch(Uuid::from_u128(9), 1, "x"), None);
        assert_eq!(l.touch(Uuid::from_u128(2), 7, "b"), Some(false));
        assert_eq!(l.version(), 104);
        assert_eq!(l.get(Uuid::from_u128(2)).unwrap().last_contact_ms, 7);
        assert_eq!(l.touch(Uuid::from_u128(2), 8, "c"), Some(true));
        assert_eq!(l.version(), 105);
        assert_eq!(l.get(Uuid::from_u128(2)).unwrap().schema_hash, "c");

        assert_eq!(l.remove(Uuid::from_u128(9)), None);
        assert_eq!(l.version(), 105);
        assert_eq!(l.remove(Uuid::from_u128(1)).unwrap().name, "renamed");
        assert_eq!(l.version(), 106);
        assert_eq!(l.peers().len(), 1);
        assert_eq!(l.len(), 1);

        // Version 0 is never a list's version.
        assert_eq!(PeerList::starting_at(0, 4).version(), 1);
        assert!(PeerList::new().version() > 1_000_000_000_000_000);
    }

    #[test]
    fn changes_since_v_equal_the_events() {
        let mut g = PeerList::starting_at(10, 64);
        for i in 0..5 {
            g.upsert(peer(i, "h0"));
        }
        let mut local = LocalList::new();
        let first = g.update_for(local.version());
        assert!(matches!(first, ListUpdate::Full { .. }));
        assert_eq!(local.apply(first).unwrap().len(), 5);
        assert_eq!(local.version(), Some(g.version()));
        assert_eq!(local.peers(), wire(g.peers()));

        let v = g.version();
        // Up to date: empty changes.
        assert_eq!(
            g.update_for(Some(v)),
            ListUpdate::Changes {
                from: v,
                to: v,
                upserted: vec![],
                removed: vec![]
            }
        );

        g.remove(Uuid::from_u128(0));
        g.touch(Uuid::from_u128(1), 3, "h1");
        g.upsert(peer(7, "h0"));
        g.remove(Uuid::from_u128(7)); // came and went
        g.upsert(peer(8, "h0"));
        g.remove(Uuid::from_u128(2));
        g.upsert(peer(2, "h2")); // went and came back, changed
        g.touch(Uuid::from_u128(3), 4, "h0"); // no change

        let u = g.update_for(Some(v));
        let ListUpdate::Changes {
            from,
            to,
            upserted,
            removed,
        } = &u
        else {
            panic!("expected changes, got {u:?}");
        };
        assert_eq!((*from, *to), (v, g.version()));
        let ids: Vec<u128> = upserted.iter().map(|p| p.id.as_u128()).collect();
        assert_eq!(ids, vec![1, 2, 8]);
        assert_eq!(removed, &vec![Uuid::from_u128(0), Uuid::from_u128(7)]);

        let changed = local.apply(roundtrip(&u)).unwrap();
        let ids: Vec<u128> = changed.iter().map(|p| p.id.as_u128()).collect();
        assert_eq!(ids, vec![1, 2, 8]);
        assert_eq!(local.peers(), wire(g.peers()));
        assert_eq!(local.version(), Some(g.version()));

        // Changes from another version than the one held are refused, the list untouched.
        g.upsert(peer(20, "h"));
        let before = local.peers();
        let stale = ListUpdate::Changes {
            from: v,
            to: g.version(),
            upserted: vec![peer(20, "h")],
            removed: vec![],
        };
        assert_eq!(local.apply(stale), Err(NeedFull));
        assert_eq!(local.peers(), before);
        assert_eq!(LocalList::new().apply(g.update_for(Some(v))), Err(NeedFull));
        // Reporting its version gets the right changes.
        local.apply(g.update_for(local.version())).unwrap();
        assert_eq!(local.peers(), wire(g.peers()));
    }

    #[test]
    fn changes_from_every_version_in_the_log_lead_to_the_list() {
        // Random events; a snapshot of the list at every version; then the changes since each
        // snapshot's version, through the wire, bring the snapshot to the current list.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rand = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut g = PeerList::starting_at(500, 1000);
        let mut snapshots = vec![];
        for step in 0..300u64 {
            let id = 1 + rand(20) as u128;
            match rand(4) {
                0 | 1 => {
                    g.upsert(peer(id, &format!("h{}", rand(3))));
                }
                2 => {
                    g.remove(Uuid::from_u128(id));
                }
                _ => {
                    g.touch(Uuid::from_u128(id), step as i64, &format!("h{}", rand(3)));
                }
            }
            if snapshots.last().map(|l: &LocalList| l.version()) != Some(Some(g.version())) {
                let mut l = LocalList::new();
                l.apply(roundtrip(&g.update_for(None))).unwrap();
                snapshots.push(l);
            }
        }
        assert!(snapshots.len() > 100);
        for mut l in snapshots {
            let from = l.version();
            let u = g.update_for(from);
            assert!(matches!(u, ListUpdate::Changes { .. }), "from {from:?}");
            l.apply(roundtrip(&u)).unwrap();
            assert!(l.agrees_with(&g), "from {from:?}");
            assert_eq!(l.peers(), wire(g.peers()));
            assert_eq!(l.version(), Some(g.version()));
        }
    }

    #[test]
    fn stale_or_future_versions_get_the_full_list() {
        let mut g = PeerList::starting_at(1000, 3);
        g.upsert(peer(1, "a"));
        let old = g.version(); // 1001
        g.upsert(peer(2, "a"));
        g.upsert(peer(3, "a"));
        g.upsert(peer(4, "a"));
        g.upsert(peer(5, "a")); // log holds 1003..=1005
        assert!(matches!(g.update_for(Some(old)), ListUpdate::Full { .. }));
        assert!(matches!(
            g.update_for(Some(old + 1)),
            ListUpdate::Changes { .. }
        ));
        assert!(matches!(g.update_for(Some(999)), ListUpdate::Full { .. }));
        assert!(matches!(g.update_for(Some(0)), ListUpdate::Full { .. }));
        assert!(matches!(
            g.update_for(Some(g.version() + 1)),
            ListUpdate::Full { .. }
        ));
        let full = g.update_for(None);
        assert_eq!(
            full,
            ListUpdate::Full {
                version: 1005,
                peers: g.peers()
            }
        );
        // Without a log, only the current version gets (empty) changes.
        let mut nolog = PeerList::starting_at(5, 0);
        nolog.upsert(peer(1, "a"));
        assert!(matches!(nolog.update_for(Some(5)), ListUpdate::Full { .. }));
        assert!(matches!(
            nolog.update_for(Some(6)),
            ListUpdate::Changes { .. }
        ));
        // A restarted genesis (a later clock) sends a full list to a peer of the old one.
        let mut restarted = PeerList::starting_at(2000, 16);
        restarted.upsert(peer(1, "a"));
        assert!(matches!(
            restarted.update_for(Some(1005)),
            ListUpdate::Full { .. }
        ));
    }

    #[test]
    fn wire_round_trip() {
        let mut g = PeerList::starting_at(42, 16);
        g.upsert(Peer {
            identity: None,
            last_contact_ms: 99,
            ..peer(1, "a")
        });
        g.upsert(peer(2, "b"));
        let full = g.update_for(None);
        let (headers, body) = full.to_request();
        assert_eq!(headers, vec![(VERSION_HEADER, "44".to_string())]);
        assert_eq!(
            body[0],
            json!({"id": Uuid::from_u128(1), "name": "peer1", "uri": "http://127.0.0.1:8001",
                   "schemaHash": "a"})
        );
        assert_eq!(
            roundtrip(&full),
            ListUpdate::Full {
                version: 44,
                peers: wire(g.peers())
            }
        );

        g.remove(Uuid::from_u128(1));
        g.upsert(peer(3, "c"));
        let changes = g.update_for(Some(44));
        let (headers, body) = changes.to_request();
        assert_eq!(headers, vec![(FORMAT_HEADER, CHANGES.to_string())]);
        assert_eq!(body["from"], 44);
        assert_eq!(body["to"], 46);
        assert_eq!(body["removed"], json!([Uuid::from_u128(1)]));
        assert_eq!(body["upserted"][0]["schemaHash"], "c");
        assert_eq!(roundtrip(&changes), changes);

        // Unknown version: no header, and back.
        let unknown = ListUpdate::Full {
            version: UNKNOWN_VERSION,
            peers: vec![peer(5, "x")],
        };
        assert!(unknown.to_request().0.is_empty());
        assert_eq!(roundtrip(&unknown), unknown);
        assert_eq!(unknown.version(), None);
        assert_eq!(changes.version(), Some(46));
    }

    #[test]
    fn a_0_12_array_without_headers_is_a_full_list_of_unknown_version() {
        let body = json!([
            {"id": "6b1a1d7e-1c9b-4c55-9d3a-3f2d5c7e9a01", "name": "alpha",
             "uri": "http://alpha:8080", "schemaHash": "d41d8cd98f00b204e9800998ecf8427e"},
            {"id": "6b1a1d7e-1c9b-4c55-9d3a-3f2d5c7e9a02", "name": "beta",
             "uri": "http://beta:8080"}
        ]);
        let u = ListUpdate::from_request(|_| None, &body).unwrap();
        let ListUpdate::Full { version, peers } = &u else {
            panic!("expected a full list, got {u:?}");
        };
        assert_eq!(*version, UNKNOWN_VERSION);
        assert_eq!(peers.len(), 2);
        assert_eq!(peers[0].name, "alpha");
        assert_eq!(peers[0].schema_hash, "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(peers[1].schema_hash, "");
        let mut local = LocalList::new();
        assert_eq!(local.apply(u).unwrap().len(), 2);
        assert_eq!(local.version(), None);
        // With no version held, changes are refused.
        let c = ListUpdate::Changes {
            from: 1,
            to: 2,
            upserted: vec![],
            removed: vec![],
        };
        assert_eq!(local.apply(c), Err(NeedFull));
        // An empty array is an empty list.
        assert_eq!(
            ListUpdate::from_request(|_| None, &json!([])).unwrap(),
            ListUpdate::Full {
                version: UNKNOWN_VERSION,
                peers: vec![]
            }
        );
    }

    #[test]
    fn bad_requests_are_refused_with_one_line() {
        let none = |_: &str| None;
        assert!(ListUpdate::from_request(none, &json!({"from": 1})).is_err());
        assert!(ListUpdate::from_request(none, &json!([{"name": "no id"}])).is_err());
        let changes = |n: &str| (n == FORMAT_HEADER).then(|| "changes".to_string());
        assert!(ListUpdate::from_request(changes, &json!([])).is_err());
        assert!(ListUpdate::from_request(changes, &json!({"from": 3, "to": 2})).is_err());
        assert!(ListUpdate::from_request(changes, &json!({"from": 2, "to": 3})).is_ok());
        let other = |n: &str| (n == FORMAT_HEADER).then(|| "patch".to_string());
        assert!(ListUpdate::from_request(other, &json!([])).is_err());
        let bad_version = |n: &str| (n == VERSION_HEADER).then(|| "x".to_string());
        let e = ListUpdate::from_request(bad_version, &json!([])).unwrap_err();
        assert!(!e.contains('\n'));
        // Lower-case header names are found too.
        let lower = |n: &str| (n == "x-weft-peer-list-version").then(|| "7".to_string());
        assert_eq!(
            ListUpdate::from_request(lower, &json!([])).unwrap(),
            ListUpdate::Full {
                version: 7,
                peers: vec![]
            }
        );
    }
}
