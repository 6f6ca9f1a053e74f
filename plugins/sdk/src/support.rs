//! What most connectors implement alike, written once: use it, or read it as the reference for
//! your own store. Helpers only: nothing here crosses the plugin boundary, so a connector may
//! ignore it. (In `weft-plugin-api` 1.2 and 1.3 this was `weft_plugin_api::support`; it moved
//! here, unchanged, when the SDK became its own crate.)
//!
//! * **Queries** ([`Connector::query_objects`](weft_plugin_api::Connector::query_objects) and
//!   [`aggregate`](weft_plugin_api::Connector::aggregate)): [`QueryMatcher`] decides which objects a
//!   [`ObjectQuery`] selects — its kind, its class (empty: every class), its owners (empty:
//!   every owner, as the ABI says) and its filter, parsed once by [`parse_filter`] — and
//!   [`page`] orders the matches **newest first** (`created_ms` descending, ties by id
//!   descending), skips `offset`, keeps at most `limit` and counts `total`.
//!   [`parse_aggregate_request`] and [`aggregate_json`] wrap the reference aggregation.
//! * **Keys**: [`sort_oldest_first`] (the order of `key_children` and `root_keys`),
//!   [`key_subtree`] (the ids `delete_key` removes and answers, the key first) and
//!   [`check_same_parent`] (a key never moves).
//! * **Versions** (documents, and objects with
//!   [`VERSIONED_WRITES`](weft_plugin_api::Capabilities::VERSIONED_WRITES)): [`FIRST_VERSION`],
//!   [`next_version`] for an unconditional write and [`compare_and_bump`] for a
//!   compare-and-set, with the `Conflict` message the contract asks for.
//! * **Messages**: [`object_missing`], [`object_exists`], [`key_missing`] and
//!   [`document_label`], so every
//!   connector words the common errors alike.
//!
//! ```
//! use weft_connector_sdk::support::{page, QueryMatcher};
//! use weft_plugin_api::{ObjectKind, ObjectQuery, StoredObject};
//!
//! fn query(stored: &[StoredObject], q: &ObjectQuery) -> weft_plugin_api::PluginResult<weft_plugin_api::ObjectPage> {
//!     let matcher = QueryMatcher::new(q)?;
//!     let resolve = |kind: ObjectKind, id| stored.iter().find(|o| o.kind == kind && o.id == id).cloned();
//!     let matches: Vec<&StoredObject> = stored.iter().filter(|o| matcher.matches(o, &resolve)).collect();
//!     Ok(page(matches, q))
//! }
//! ```

use std::borrow::Borrow;
use std::fmt::Display;

use abi_stable::std_types::RVec;

use weft_plugin_api::aggregate::{self, AggregateRequest};
use weft_plugin_api::filter::{Resolver, WhereFilter};
use weft_plugin_api::{
    DocumentName, Id, ObjectKind, ObjectPage, ObjectQuery, PluginError, PluginResult, StoredKey,
    StoredObject,
};

// ----- queries -----------------------------------------------------------------------------

/// Parses a query's `filter_json`: `None` for an empty (or blank) filter, `Invalid` with the
/// parser's message when it does not parse.
pub fn parse_filter(json: &str) -> PluginResult<Option<WhereFilter>> {
    if json.trim().is_empty() {
        return Ok(None);
    }
    WhereFilter::parse(json)
        .map(Some)
        .map_err(PluginError::invalid)
}

/// A `u64` from the wire (`offset`, `limit`) as a `usize`, saturating on 32-bit targets.
pub fn saturating_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Whether `object` belongs to `class`; an empty `class` means every class.
pub fn in_class(object: &StoredObject, class: &str) -> bool {
    class.is_empty() || object.class.as_str() == class
}

/// Whether `object` is owned by one of `owners`; an empty list means every owner (as
/// [`ObjectQuery::owners`] says).
pub fn owned_by(object: &StoredObject, owners: &[Id]) -> bool {
    owners.is_empty() || owners.contains(&object.owner)
}

/// Which objects an [`ObjectQuery`] selects: its kind, class, owners and filter (the filter
/// parsed once, by [`QueryMatcher::new`]).
#[derive(Debug, Clone)]
pub struct QueryMatcher<'q> {
    query: &'q ObjectQuery,
    filter: Option<WhereFilter>,
}

impl<'q> QueryMatcher<'q> {
    /// Parses the query's filter (see [`parse_filter`]): `Invalid` when it does not parse.
    pub fn new(query: &'q ObjectQuery) -> PluginResult<Self> {
        Ok(QueryMatcher {
            query,
            filter: parse_filter(&query.filter_json)?,
        })
    }

    /// The parsed filter, `None` when the query has none.
    pub fn filter(&self) -> Option<&WhereFilter> {
        self.filter.as_ref()
    }

    /// Whether `object` is of the query's kind and class and owned by one of its owners
    /// (the filter aside).
    pub fn matches_kind_class_and_owner(&self, object: &StoredObject) -> bool {
        object.kind == self.query.kind
            && in_class(object, &self.query.class)
            && owned_by(object, &self.query.owners)
    }

    /// Whether the query selects `object`: [`matches_kind_class_and_owner`] and its filter,
    /// evaluated with the reference semantics ([`WhereFilter::matches`]); `resolve` looks up
    /// the current version of a referenced object (`None` when missing or deleted).
    ///
    /// [`matches_kind_class_and_owner`]: QueryMatcher::matches_kind_class_and_owner
    pub fn matches(&self, object: &StoredObject, resolve: Resolver<'_>) -> bool {
        self.matches_kind_class_and_owner(object)
            && self
                .filter
                .as_ref()
                .is_none_or(|f| f.matches(object, resolve))
    }
}

/// Sorts objects the way the contract lists them: newest first (`created_ms` descending), ties
/// by id descending. The host gives new objects time-ordered (v7) ids whose time is their
/// `created_ms`, so of two objects created by one host in one millisecond the later one (the
/// larger id) comes first. Ids are unique, so this is a total order.
pub fn sort_newest_first<O: Borrow<StoredObject>>(objects: &mut [O]) {
    objects.sort_unstable_by(|a, b| {
        let (a, b) = (a.borrow(), b.borrow());
        b.created_ms.cmp(&a.created_ms).then(b.id.cmp(&a.id))
    });
}

/// The page `query` asks for out of all its `matches` (in any order): newest first
/// ([`sort_newest_first`]: `created_ms` descending, ties by id descending), `offset` skipped, at
/// most `limit` objects, `total` counting every match. The order is total, so the same query
/// answers the same page, and consecutive pages neither repeat nor skip an object while
/// nothing is written. Only the objects on the page are cloned.
pub fn page<O: Borrow<StoredObject>>(mut matches: Vec<O>, query: &ObjectQuery) -> ObjectPage {
    let total = matches.len() as u64;
    sort_newest_first(&mut matches);
    let objects: RVec<StoredObject> = matches
        .iter()
        .skip(saturating_usize(query.offset))
        .take(saturating_usize(query.limit))
        .map(|o| o.borrow().clone())
        .collect();
    ObjectPage { objects, total }
}

/// Parses the `request_json` of [`Connector::aggregate`](weft_plugin_api::Connector::aggregate):
/// `Invalid` when it is not an [`AggregateRequest`].
pub fn parse_aggregate_request(request_json: &str) -> PluginResult<AggregateRequest> {
    serde_json::from_str(request_json)
        .map_err(|e| PluginError::invalid(format!("the aggregate request is not valid: {e}")))
}

/// Aggregates `matches` with the reference implementation ([`aggregate::compute`]) and answers
/// the JSON [`Connector::aggregate`](weft_plugin_api::Connector::aggregate) returns.
pub fn aggregate_json(
    matches: &[StoredObject],
    request: &AggregateRequest,
    resolve: Resolver<'_>,
) -> PluginResult<String> {
    let result = aggregate::compute(matches, request, resolve);
    serde_json::to_string(&result).map_err(|e| {
        PluginError::internal(format!("could not serialise the aggregate result: {e}"))
    })
}

// ----- keys --------------------------------------------------------------------------------

/// Sorts keys the way `key_children` and `root_keys` answer them: oldest first
/// (`created_ms`, then id ascending). The host gives new keys time-ordered (v7) ids whose time
/// is their `created_ms`, so keys one host made in one millisecond come in creation order.
pub fn sort_oldest_first(keys: &mut [StoredKey]) {
    keys.sort_by(|a, b| a.created_ms.cmp(&b.created_ms).then(a.id.cmp(&b.id)));
}

/// The subtree `delete_key(id)` removes, in the order it answers it: the key first, then
/// breadth first, each level's children oldest first. `children(k)` answers the direct
/// children of key `k` (in any order; empty for a leaf). It is called once per key of the
/// subtree.
pub fn key_subtree(id: Id, mut children: impl FnMut(Id) -> Vec<StoredKey>) -> Vec<Id> {
    let mut subtree = vec![id];
    let mut next = 0;
    while next < subtree.len() {
        let mut level = children(subtree[next]);
        sort_oldest_first(&mut level);
        subtree.extend(level.iter().map(|k| k.id));
        next += 1;
    }
    subtree
}

/// `NotFound`: the key is missing (for `key_children`, `update_key`, `delete_key`).
pub fn key_missing(id: Id) -> PluginError {
    PluginError::not_found(format!("key {id} does not exist"))
}

/// `update_key`'s rule that a key never moves in the tree: `Invalid` when `new` has another
/// parent than the `stored` key.
pub fn check_same_parent(stored: &StoredKey, new: &StoredKey) -> PluginResult<()> {
    if stored.parent != new.parent {
        return Err(PluginError::invalid(format!(
            "the parent of key {} cannot change",
            new.id
        )));
    }
    Ok(())
}

// ----- versions ----------------------------------------------------------------------------

/// The version `create_object` stores (with `VERSIONED_WRITES`); a document never written is
/// at version 0, so its first write also stores 1.
pub const FIRST_VERSION: u64 = 1;

/// The version after one more successful write of `what` (e.g. `"thing 1234…"`), stored at
/// `stored`: `stored + 1`, or `Internal` in the (theoretical) case it cannot grow.
pub fn next_version(what: impl Display, stored: u64) -> PluginResult<u64> {
    stored.checked_add(1).ok_or_else(|| {
        PluginError::internal(format!("the version of {what} cannot grow past {stored}"))
    })
}

/// Compare-and-set: the new version of `what` when its `stored` version is the
/// `expected` one ([`next_version`]); otherwise `Conflict`, naming both versions, and the
/// caller must change nothing.
pub fn compare_and_bump(what: impl Display, stored: u64, expected: u64) -> PluginResult<u64> {
    if stored != expected {
        return Err(PluginError::conflict(format!(
            "{what} is at version {stored}, but the write expected version {expected}; read it again and retry"
        )));
    }
    next_version(what, stored)
}

// ----- messages ----------------------------------------------------------------------------

/// `NotFound`: the object is missing or deleted (for update, delete and
/// `update_object_if`).
pub fn object_missing(kind: ObjectKind, id: Id) -> PluginError {
    PluginError::not_found(format!("{} {id} does not exist", kind.as_str()))
}

/// `Conflict` for `import_objects` of a record the store holds differently (an import must not
/// change what it finds: the target was not empty, or another source wrote it).
pub fn import_conflict(kind: ObjectKind, id: Id) -> PluginError {
    PluginError::conflict(format!(
        "{} {id} is in this store already, and differs from the record imported; import into an empty store, or resume only the migration that wrote it",
        kind.as_str()
    ))
}

/// `Conflict` for `create_object` of an id in use: it exists, or (`deleted`) it existed and was
/// deleted — ids are never reused.
pub fn object_exists(kind: ObjectKind, id: Id, deleted: bool) -> PluginError {
    if deleted {
        PluginError::conflict(format!(
            "{} {id} existed and was deleted; ids are never reused, choose a new one",
            kind.as_str()
        ))
    } else {
        PluginError::conflict(format!("{} {id} already exists", kind.as_str()))
    }
}

/// What to call a document in messages: `"ontology"`, `"connector state"`.
pub fn document_label(name: DocumentName) -> &'static str {
    match name {
        DocumentName::Ontology => "ontology",
        DocumentName::ConnectorState => "connector state",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi_stable::std_types::{ROption, RString, RVec};
    use weft_plugin_api::ErrorKind;

    fn object(id: u8, created_ms: i64, class: &str, owner: u8) -> StoredObject {
        StoredObject {
            kind: ObjectKind::Thing,
            id: Id([id; 16]),
            class: class.into(),
            context: RString::new(),
            owner: Id([owner; 16]),
            created_ms,
            updated_ms: created_ms,
            properties_json: format!(r#"{{"n":{id}}}"#).into(),
        }
    }

    /// Keys with a parent, from `(id, parent, created_ms)`.
    fn keys(tree: &[(u8, u8, i64)]) -> Vec<StoredKey> {
        let blank = StoredKey {
            id: Id::default(),
            parent: ROption::RNone,
            token_hash: RString::new(),
            email: RString::new(),
            ip_origin: RVec::new(),
            expires_ms: -1,
            read: false,
            write: false,
            delete: false,
            execute: false,
            created_ms: 0,
        };
        tree.iter()
            .map(|&(id, parent, created_ms)| StoredKey {
                id: Id([id; 16]),
                parent: ROption::RSome(Id([parent; 16])),
                created_ms,
                ..blank.clone()
            })
            .collect()
    }

    fn ids(objects: &[StoredObject]) -> Vec<u8> {
        objects.iter().map(|o| o.id.0[0]).collect()
    }

    #[test]
    fn pages_newest_first_with_ties_by_id() {
        let all = vec![
            object(2, 10, "A", 1),
            object(1, 20, "A", 1),
            object(3, 10, "A", 1),
            object(4, 5, "A", 1),
        ];
        let mut q = ObjectQuery::all(ObjectKind::Thing, 2);
        let p = page(all.iter().collect(), &q);
        // Equal created_ms: the larger id (the later v7 id) first.
        assert_eq!((ids(&p.objects), p.total), (vec![1, 3], 4));
        q.offset = 2;
        let p = page(all.clone(), &q);
        assert_eq!((ids(&p.objects), p.total), (vec![2, 4], 4));
        q.offset = u64::MAX;
        q.limit = u64::MAX;
        assert!(page(all, &q).objects.is_empty());
    }

    #[test]
    fn matcher_checks_kind_class_owners_and_filter() {
        let q = ObjectQuery {
            class: "City".into(),
            owners: vec![Id([1; 16]), Id([2; 16])].into(),
            filter_json: r#"{"operator":"GreaterThan","path":["n"],"valueInt":4}"#.into(),
            ..ObjectQuery::all(ObjectKind::Thing, 10)
        };
        let m = QueryMatcher::new(&q).unwrap();
        let none = |_: ObjectKind, _: Id| None;
        assert!(m.matches(&object(5, 1, "City", 2), &none));
        assert!(!m.matches(&object(3, 1, "City", 2), &none), "filter");
        assert!(!m.matches(&object(5, 1, "Town", 2), &none), "class");
        assert!(!m.matches(&object(5, 1, "City", 3), &none), "owner");
        let mut action = object(5, 1, "City", 2);
        action.kind = ObjectKind::Action;
        assert!(!m.matches(&action, &none), "kind");
        // Empty class and owners select every class and owner.
        let every = ObjectQuery::all(ObjectKind::Thing, 10);
        let m = QueryMatcher::new(&every).unwrap();
        assert!(m.filter().is_none());
        assert!(m.matches(&object(9, 1, "Anything", 7), &none));
        let bad = ObjectQuery {
            filter_json: "{not json".into(),
            ..every
        };
        assert_eq!(
            QueryMatcher::new(&bad).unwrap_err().kind,
            ErrorKind::Invalid
        );
        assert!(parse_filter("  ").unwrap().is_none());
    }

    #[test]
    fn key_subtree_is_breadth_first_key_first_each_level_oldest_first() {
        let keys = keys(&[(2, 1, 3), (3, 1, 2), (4, 2, 4), (5, 3, 9), (6, 3, 1)]);
        let subtree = key_subtree(Id([1; 16]), |parent| {
            keys.iter()
                .filter(|k| k.parent == ROption::RSome(parent))
                .cloned()
                .collect()
        });
        let got: Vec<u8> = subtree.iter().map(|id| id.0[0]).collect();
        assert_eq!(got, vec![1, 3, 2, 6, 5, 4]);
    }

    #[test]
    fn compare_and_bump_names_both_versions() {
        assert_eq!(compare_and_bump("thing x", 3, 3), Ok(4));
        let e = compare_and_bump("thing x", 7, 400).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Conflict);
        assert!(
            e.message.contains("thing x is at version 7") && e.message.contains("version 400"),
            "{e}"
        );
        assert_eq!(
            next_version("thing x", u64::MAX).unwrap_err().kind,
            ErrorKind::Internal
        );
    }
}
