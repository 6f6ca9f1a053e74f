//! Envelope types that cross the plugin boundary.
//!
//! Everything here is `#[repr(C)]` + `StableAbi`. Dynamic data (an object's property bag, the
//! ontology document, connector state, filters) crosses as JSON text, because its shape is decided
//! at run time by the ontology.

use std::fmt;

use abi_stable::std_types::{ROption, RString, RVec};
use abi_stable::StableAbi;

/// A 128-bit identifier (object id, key id) as raw bytes. Displays as a hyphenated UUID.
#[repr(transparent)]
#[derive(StableAbi, Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Id(pub [u8; 16]);

impl Id {
    /// A new random (v4) id.
    pub fn random() -> Self {
        Id(*uuid::Uuid::new_v4().as_bytes())
    }
    /// A new time-ordered (v7) id: the creation time in milliseconds, then random bits, and
    /// increasing within this process. Stores keyed by id append such ids next to each other
    /// instead of at random places, which keeps their B-trees' writes few and local.
    pub fn time_ordered() -> Self {
        Id(*uuid::Uuid::now_v7().as_bytes())
    }
    /// The Unix time in milliseconds a time-ordered (v7) id holds in its top 48 bits; `None`
    /// for any other version. Within one process a larger v7 id never holds an earlier time.
    pub fn unix_ms(&self) -> Option<i64> {
        if self.to_uuid().get_version_num() != 7 {
            return None;
        }
        let mut ms = [0u8; 8];
        ms[2..].copy_from_slice(&self.0[..6]);
        Some(i64::from_be_bytes(ms))
    }
    /// As a `uuid::Uuid`.
    pub fn to_uuid(self) -> uuid::Uuid {
        uuid::Uuid::from_bytes(self.0)
    }
}

impl From<uuid::Uuid> for Id {
    fn from(u: uuid::Uuid) -> Self {
        Id(*u.as_bytes())
    }
}

impl From<Id> for uuid::Uuid {
    fn from(id: Id) -> Self {
        uuid::Uuid::from_bytes(id.0)
    }
}

impl std::str::FromStr for Id {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s).map(Id::from)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_uuid(), f)
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.to_uuid())
    }
}

/// Whether an object is a Thing or an Action. Things and Actions live in separate id spaces.
#[repr(u8)]
#[derive(StableAbi, Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    /// A Thing (`/things`).
    Thing,
    /// An Action (`/actions`).
    Action,
}

impl ObjectKind {
    /// `"thing"` or `"action"`, as used in references (`SingleRef.type`).
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Thing => "thing",
            ObjectKind::Action => "action",
        }
    }
}

/// One stored Thing or Action, as the connector keeps it.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct StoredObject {
    /// Thing or Action.
    pub kind: ObjectKind,
    /// The object's id.
    pub id: Id,
    /// Its class name in the ontology.
    pub class: RString,
    /// Its `@context` URL (may be empty).
    pub context: RString,
    /// The key that created it (and owns it).
    pub owner: Id,
    /// Creation time, Unix milliseconds.
    pub created_ms: i64,
    /// Last update time, Unix milliseconds.
    pub updated_ms: i64,
    /// The property bag (`schema` in the REST API) as a JSON object, e.g. `{"name":"Berlin"}`.
    /// A reference value is `{"$cref":"<uuid>","locationUrl":"…","type":"Thing|Action"}` or an
    /// array of those.
    pub properties_json: RString,
}

impl StoredObject {
    /// Parses [`properties_json`](Self::properties_json). An unparsable bag reads as empty.
    pub fn properties(&self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::from_str(&self.properties_json) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        }
    }
}

/// One earlier version of an object, kept by a connector before each update and delete.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct ObjectVersion {
    /// The object as it was before the change.
    pub object: StoredObject,
    /// When it was replaced or deleted, Unix milliseconds.
    pub archived_ms: i64,
}

/// The history of one object.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct ObjectHistory {
    /// True when the object has been deleted (the last version is then in `versions`).
    pub deleted: bool,
    /// Earlier versions, **newest first**.
    pub versions: RVec<ObjectVersion>,
}

/// A page of objects plus the total number of objects that matched.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct ObjectPage {
    /// The objects on this page, in the order the call defines.
    pub objects: RVec<StoredObject>,
    /// How many objects matched in all (not only on this page).
    pub total: u64,
}

/// Which objects [`ConnectorFfi::list_objects`](crate::ConnectorFfi) and `query_class` return.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct ObjectQuery {
    /// Thing or Action.
    pub kind: ObjectKind,
    /// Only objects of this class; empty means every class.
    pub class: RString,
    /// Only objects owned by one of these keys; empty means every owner.
    pub owners: RVec<Id>,
    /// A filter tree as JSON ([`crate::filter::WhereFilter`]); empty means no filter.
    pub filter_json: RString,
    /// Skip this many matching objects.
    pub offset: u64,
    /// Return at most this many objects (0 returns none, but still counts `total`).
    pub limit: u64,
}

impl ObjectQuery {
    /// Every object of `kind`, first page of `limit`.
    pub fn all(kind: ObjectKind, limit: u64) -> Self {
        ObjectQuery {
            kind,
            class: RString::new(),
            owners: RVec::new(),
            filter_json: RString::new(),
            offset: 0,
            limit,
        }
    }
}

/// One key of the authorisation tree.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct StoredKey {
    /// The key id (`X-API-KEY`).
    pub id: Id,
    /// The parent key; `None` for a root key.
    pub parent: ROption<Id>,
    /// A hash of the token (never the token itself). Format decided by the host.
    pub token_hash: RString,
    /// Contact e-mail address (may be empty).
    pub email: RString,
    /// CIDR ranges requests with this key may come from; empty means anywhere.
    pub ip_origin: RVec<RString>,
    /// Expiry, Unix milliseconds; `-1` means never.
    pub expires_ms: i64,
    /// Right to read.
    pub read: bool,
    /// Right to write.
    pub write: bool,
    /// Right to delete.
    pub delete: bool,
    /// Right to execute network queries.
    pub execute: bool,
    /// Creation time, Unix milliseconds.
    pub created_ms: i64,
}

/// A versioned JSON document (the ontology): the version lets several hosts sharing one store
/// change it without losing each other's writes.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct VersionedDocument {
    /// The document, JSON text.
    pub json: RString,
    /// 0 when never written; every successful write adds one.
    pub version: u64,
}

/// What kind of plugin a library is.
#[repr(u8)]
#[derive(StableAbi, Copy, Clone, Debug, PartialEq, Eq)]
pub enum PluginKind {
    /// A storage connector (`database.name` in the config).
    Connector,
    /// A contextionary (`contextionary.name` in the config).
    Contextionary,
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PluginKind::Connector => "connector",
            PluginKind::Contextionary => "contextionary",
        })
    }
}

/// A word and its cosine distance (1 − cosine similarity) to a query.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct WordDistance {
    /// The word.
    pub word: RString,
    /// 1 − cosine similarity; 0 is identical direction.
    pub distance: f32,
}

/// An object together with its version, as
/// [`Connector::get_object_versioned`](crate::Connector::get_object_versioned) answers it.
/// **Added in 1.2.**
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct VersionedObject {
    /// The current version of the object.
    pub object: StoredObject,
    /// 1 after `create_object`; every successful `update_object` or `update_object_if` adds 1.
    pub version: u64,
}

/// What a finished [`Connector::backup`](crate::Connector::backup) answers. **Added in 1.3.**
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct BackupReport {
    /// The directory the copy was written to, as the connector resolved it.
    pub path: RString,
    /// Bytes written.
    pub bytes: u64,
    /// Objects (Things and Actions, not deleted) in the copy.
    pub objects: u64,
}

/// One object as a store holds it, whole: its current state (or none, once deleted), its
/// version and every earlier version. What [`Connector::export_objects`] reads and
/// [`Connector::import_objects`] writes back, unchanged, to move a store to another connector.
/// **Added in 1.4.**
///
/// [`Connector::export_objects`]: crate::Connector::export_objects
/// [`Connector::import_objects`]: crate::Connector::import_objects
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct ObjectRecord {
    /// Thing or Action.
    pub kind: ObjectKind,
    /// The object's id (the same in `current` and in every version).
    pub id: Id,
    /// The current version; `None` when the object was deleted (its history then ends with
    /// the deleted version).
    pub current: ROption<StoredObject>,
    /// The version number as `get_object_versioned` answers it (1 after create, +1 per
    /// update); 0 from a connector without `VERSIONED_WRITES`, and for a deleted object.
    pub version: u64,
    /// Earlier versions, **newest first**, as `object_history` answers them.
    pub history: RVec<ObjectVersion>,
}

/// A page of [`ObjectRecord`]s and where the next one starts. **Added in 1.4.**
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct RecordPage {
    /// The records of this page.
    pub records: RVec<ObjectRecord>,
    /// The cursor of the next page; empty when this was the last.
    pub next: RString,
}

impl ObjectRecord {
    /// Checks what every importer relies on: `current` and every version carry `kind` and
    /// `id`, and a deleted object has a history. `Invalid` naming the record otherwise.
    pub fn check(&self) -> Result<(), crate::PluginError> {
        let bad = |what: &str| {
            Err(crate::PluginError::invalid(format!(
                "record {} {}: {what}",
                self.kind.as_str(),
                self.id
            )))
        };
        if let ROption::RSome(o) = &self.current {
            if o.kind != self.kind || o.id != self.id {
                return bad("its current object has another kind or id");
            }
        } else if self.history.is_empty() {
            return bad("a deleted object with no history (nothing to import)");
        }
        if self
            .history
            .iter()
            .any(|v| v.object.kind != self.kind || v.object.id != self.id)
        {
            return bad("a version in its history has another kind or id");
        }
        Ok(())
    }
}

/// A nearest-neighbour question over object vectors ([`Connector::search_vectors`]). **Added
/// in 1.5.**
///
/// [`Connector::search_vectors`]: crate::Connector::search_vectors
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct VectorQuery {
    /// Thing or Action.
    pub kind: ObjectKind,
    /// Only objects of this class; empty: every class of `kind`.
    pub class: RString,
    /// Only objects of these owners (the key's visibility); empty: every owner.
    pub owners: RVec<Id>,
    /// Only objects this filter tree matches ([`crate::filter`]; empty: no filter). The
    /// filter is applied **before** the search: the answer is the `k` nearest of the matching
    /// objects, never fewer because non-matching ones were nearer.
    pub filter_json: RString,
    /// The query vector (the contextionary's dimensions; not necessarily of unit length).
    pub vector: RVec<f32>,
    /// At most this many hits.
    pub k: u64,
    /// Leave out hits farther than this cosine distance (`2.0`: none left out).
    pub max_distance: f32,
}

impl VectorQuery {
    /// The objects the search runs over, as an [`ObjectQuery`] (kind, class, owners, filter;
    /// no paging).
    pub fn candidates(&self) -> ObjectQuery {
        ObjectQuery {
            kind: self.kind,
            class: self.class.clone(),
            owners: self.owners.clone(),
            filter_json: self.filter_json.clone(),
            offset: 0,
            limit: u64::MAX,
        }
    }
}

/// One answer of a [`VectorQuery`]: the object as `get_object` answers it and its cosine
/// distance (`1 − cos`, from 0 to 2) to the query vector. **Added in 1.5.**
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct VectorHit {
    /// The object.
    pub object: StoredObject,
    /// `1 − cos(object's vector, query vector)`.
    pub distance: f32,
}

/// A word's vector and its frequency rank in the contextionary (0: the most frequent word).
/// **Added in 1.5.**
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct WordVector {
    /// The word's vector.
    pub vector: RVec<f32>,
    /// Its rank by frequency in the corpus the vectors were trained on (0: most frequent);
    /// `None` when the contextionary does not know the order.
    pub rank: ROption<u64>,
}

#[cfg(test)]
mod tests {
    use super::Id;

    #[test]
    fn time_ordered_ids_are_version_7_and_increase_within_the_process() {
        let ids: Vec<Id> = (0..10_000).map(|_| Id::time_ordered()).collect();
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1], "{} then {}", pair[0], pair[1]);
        }
        let first = ids[0].to_uuid();
        assert_eq!(first.get_version_num(), 7, "{first}");
        let (secs, _) = first.get_timestamp().expect("a v7 id has a time").to_unix();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(secs.abs_diff(now) < 60, "{secs} vs {now}");
        assert_eq!(Id::random().to_uuid().get_version_num(), 4);
    }

    #[test]
    fn unix_ms_reads_the_time_of_a_v7_id_only() {
        let ts = uuid::Timestamp::from_unix(uuid::NoContext, 1_700_000_000, 123_000_000);
        let id = Id::from(uuid::Uuid::new_v7(ts));
        assert_eq!(id.unix_ms(), Some(1_700_000_000_123));
        // The largest time 48 bits hold.
        let mut max = id;
        max.0[..6].copy_from_slice(&[0xff; 6]);
        assert_eq!(max.unix_ms(), Some((1 << 48) - 1));
        assert_eq!(Id::random().unix_ms(), None);
        assert_eq!(Id([0; 16]).unix_ms(), None);
        // Larger ids of this process never hold an earlier time.
        let ids: Vec<Id> = (0..1_000).map(|_| Id::time_ordered()).collect();
        for pair in ids.windows(2) {
            assert!(pair[0].unix_ms() <= pair[1].unix_ms(), "{pair:?}");
        }
    }
}
