//! `weft-dev-memory`: the in-memory Weft connector, the embedded default (`weft serve` with no
//! arguments uses it).
//!
//! It owns, in the process's memory:
//! * Things and Actions (two separate id spaces), each with its current version, its version
//!   number (1 at creation, one more per update: `VERSIONED_WRITES`) and its history (every
//!   version replaced by an update or a delete, kept newest last internally and answered newest
//!   first);
//! * the key tree (keys by id, plus an index of each key's children);
//! * the two versioned documents (ontology and connector state), written by compare-and-set.
//!
//! **It keeps nothing across restarts**: everything is lost when the process exits, so it does
//! not declare [`Capabilities::PERSISTENT`]. It declares `HISTORY`, `FILTER`,
//! `FILTER_REFERENCE_PATHS`, `AGGREGATE`, `VERSIONED_WRITES` and `MIGRATE` (export pages in id
//! order, the cursor the last id), evaluating filters and
//! aggregates with the reference implementations in [`weft_plugin_api::filter`] and
//! [`weft_plugin_api::aggregate`] (through [`weft_connector_sdk::support`], which also gives it
//! the contract's paging order, key-deletion cascade and version checks).
//!
//! The exported root module sits behind the default cargo feature `plugin`; a library that
//! links dev-memory (e.g. a fixture plugin delegating to [`DevMemory`]) turns it off.
//!
//! Concurrency: objects, keys and documents each sit behind one lock (`RwLock` for objects and
//! keys, `Mutex` for documents); every write takes its lock once and does the whole change under
//! it, so writes are atomic and none is lost. A poisoned lock is recovered (`into_inner`), never
//! turned into a panic. All work is synchronous; each method returns an already completed
//! future (`std::future::ready`), and the plugin uses no async runtime: it implements
//! [`Connector`] itself rather than the SDK's `Store`, whose adapter would spawn each call on a
//! runtime (≈ 25 µs) for work that takes well under one.
//!
//! It must not know about HTTP, the ontology's content or how the host hashes tokens: documents
//! and property bags are opaque JSON text to it.

use std::collections::HashMap;
use std::future::{ready, Future};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use abi_stable::std_types::{ROption, RString};
use weft_connector_sdk::support::{self, QueryMatcher};
use weft_plugin_api::{
    now_ms, Capabilities, Connector, DocumentName, Id, ObjectHistory, ObjectKind, ObjectPage,
    ObjectQuery, ObjectRecord, ObjectVersion, PluginContext, PluginError, PluginResult, RecordPage,
    StoredKey, StoredObject, VectorHit, VectorQuery, VersionedDocument, VersionedObject,
};

/// What this connector can do (no `PERSISTENT`: it forgets everything on exit).
pub const CAPABILITIES: Capabilities = Capabilities::HISTORY
    .union(Capabilities::FILTER)
    .union(Capabilities::FILTER_REFERENCE_PATHS)
    .union(Capabilities::AGGREGATE)
    .union(Capabilities::VERSIONED_WRITES)
    .union(Capabilities::MIGRATE)
    .union(Capabilities::VECTOR_SEARCH);

/// Help text for `weft plugins check`.
pub const CONFIG_HELP: &str = "dev-memory takes no configuration (database_config may be omitted \
or {}). It keeps every object, key and document in the process's memory: nothing survives a \
restart.";

#[cfg(feature = "plugin")]
weft_plugin_api::export_connector! {
    name: "dev-memory",
    capabilities: CAPABILITIES,
    config_help: CONFIG_HELP,
    new: DevMemory::from_context,
}

/// One object id's life: its current version (`None` once deleted), that version's number and
/// earlier versions, oldest first.
#[derive(Debug)]
struct Entry {
    current: Option<StoredObject>,
    /// The current version's vector (empty: none).
    vector: Vec<f32>,
    version: u64,
    history: Vec<ObjectVersion>,
}

/// Every Thing and Action, in two id spaces.
#[derive(Debug, Default)]
struct Objects {
    things: HashMap<Id, Entry>,
    actions: HashMap<Id, Entry>,
}

impl Objects {
    fn space(&self, kind: ObjectKind) -> &HashMap<Id, Entry> {
        match kind {
            ObjectKind::Thing => &self.things,
            ObjectKind::Action => &self.actions,
        }
    }

    fn space_mut(&mut self, kind: ObjectKind) -> &mut HashMap<Id, Entry> {
        match kind {
            ObjectKind::Thing => &mut self.things,
            ObjectKind::Action => &mut self.actions,
        }
    }

    /// The current version, `None` when missing or deleted.
    fn current(&self, kind: ObjectKind, id: &Id) -> Option<&StoredObject> {
        self.space(kind).get(id).and_then(|e| e.current.as_ref())
    }

    /// Current objects of `query.kind` matching class, owners and filter (unordered).
    fn matching(&self, query: &ObjectQuery) -> PluginResult<Vec<&StoredObject>> {
        let matcher = QueryMatcher::new(query)?;
        let resolve = |kind: ObjectKind, id: Id| self.current(kind, &id).cloned();
        Ok(self
            .space(query.kind)
            .values()
            .filter_map(|e| e.current.as_ref())
            .filter(|o| matcher.matches(o, &resolve))
            .collect())
    }
}

/// The key tree.
#[derive(Debug, Default)]
struct Keys {
    by_id: HashMap<Id, StoredKey>,
    /// Direct children of each key that has any (unordered; sorted when read).
    children: HashMap<Id, Vec<Id>>,
}

impl Keys {
    /// `ids` as keys, oldest first (created_ms, then id).
    fn sorted(&self, ids: impl Iterator<Item = Id>) -> Vec<StoredKey> {
        let mut keys: Vec<StoredKey> = ids.filter_map(|id| self.by_id.get(&id).cloned()).collect();
        support::sort_oldest_first(&mut keys);
        keys
    }
}

#[derive(Debug)]
struct Documents {
    ontology: VersionedDocument,
    connector_state: VersionedDocument,
}

impl Default for Documents {
    fn default() -> Self {
        let never_written = || VersionedDocument {
            json: RString::new(),
            version: 0,
        };
        Documents {
            ontology: never_written(),
            connector_state: never_written(),
        }
    }
}

impl Documents {
    fn get_mut(&mut self, name: DocumentName) -> &mut VersionedDocument {
        match name {
            DocumentName::Ontology => &mut self.ontology,
            DocumentName::ConnectorState => &mut self.connector_state,
        }
    }
}

/// The in-memory connector. Build it with [`DevMemory::new`] (statically linked use, e.g.
/// `weft_plugin_api::connector_box(DevMemory::new())`) or load the library as a plugin.
#[derive(Debug, Default)]
pub struct DevMemory {
    objects: RwLock<Objects>,
    keys: RwLock<Keys>,
    documents: Mutex<Documents>,
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

fn lock<T>(lock: &Mutex<T>) -> MutexGuard<'_, T> {
    lock.lock().unwrap_or_else(PoisonError::into_inner)
}

impl DevMemory {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The plugin constructor: dev-memory has no configuration keys; any given are ignored
    /// with a warning.
    pub fn from_context(ctx: PluginContext) -> PluginResult<Self> {
        match &ctx.config {
            serde_json::Value::Null => {}
            serde_json::Value::Object(m) if m.is_empty() => {}
            serde_json::Value::Object(m) => ctx.log.warn(&format!(
                "dev-memory takes no configuration; ignoring keys {:?}",
                m.keys().collect::<Vec<_>>()
            )),
            other => {
                return Err(PluginError::invalid(format!(
                    "dev-memory's config must be a JSON object (or omitted), not {other}"
                )))
            }
        }
        ctx.log
            .info("keeping everything in memory: nothing survives a restart");
        Ok(Self::new())
    }

    fn do_create(&self, object: StoredObject, vector: Vec<f32>) -> PluginResult<()> {
        let mut objects = write(&self.objects);
        let space = objects.space_mut(object.kind);
        match space.get(&object.id) {
            Some(e) => Err(support::object_exists(
                object.kind,
                object.id,
                e.current.is_none(),
            )),
            None => {
                space.insert(
                    object.id,
                    Entry {
                        current: Some(object),
                        vector,
                        version: support::FIRST_VERSION,
                        history: Vec::new(),
                    },
                );
                Ok(())
            }
        }
    }

    fn do_query(&self, query: &ObjectQuery) -> PluginResult<ObjectPage> {
        let objects = read(&self.objects);
        Ok(support::page(objects.matching(query)?, query))
    }

    fn do_get_versioned(&self, kind: ObjectKind, id: Id) -> Option<VersionedObject> {
        let objects = read(&self.objects);
        let entry = objects.space(kind).get(&id)?;
        Some(VersionedObject {
            object: entry.current.clone()?,
            version: entry.version,
        })
    }

    /// `update_object` (`expected_version` `None`) and `update_object_if`: one write lock for
    /// the check, the replacement, the archived version and the new version number.
    fn do_update(
        &self,
        object: StoredObject,
        expected_version: Option<u64>,
        vector: Vec<f32>,
    ) -> PluginResult<u64> {
        let mut objects = write(&self.objects);
        let (kind, id) = (object.kind, object.id);
        let entry = objects
            .space_mut(kind)
            .get_mut(&id)
            .filter(|e| e.current.is_some());
        let Some(entry) = entry else {
            return Err(support::object_missing(kind, id));
        };
        let stored = entry.version;
        let version = match expected_version {
            Some(expected) => {
                support::compare_and_bump(format_args!("{} {id}", kind.as_str()), stored, expected)?
            }
            None => support::next_version(format_args!("{} {id}", kind.as_str()), stored)?,
        };
        if let Some(previous) = entry.current.replace(object) {
            entry.history.push(ObjectVersion {
                object: previous,
                archived_ms: now_ms(),
            });
        }
        entry.version = version;
        entry.vector = vector;
        Ok(version)
    }

    fn do_delete(&self, kind: ObjectKind, id: Id) -> PluginResult<()> {
        let mut objects = write(&self.objects);
        let previous = objects
            .space_mut(kind)
            .get_mut(&id)
            .and_then(|e| e.current.take().map(|p| (e, p)));
        let Some((entry, previous)) = previous else {
            return Err(support::object_missing(kind, id));
        };
        entry.vector = Vec::new();
        entry.history.push(ObjectVersion {
            object: previous,
            archived_ms: now_ms(),
        });
        Ok(())
    }

    fn do_history(&self, kind: ObjectKind, id: Id) -> PluginResult<ObjectHistory> {
        let objects = read(&self.objects);
        let Some(entry) = objects.space(kind).get(&id) else {
            return Err(PluginError::not_found(format!(
                "{} {id} never existed",
                kind.as_str()
            )));
        };
        Ok(ObjectHistory {
            deleted: entry.current.is_none(),
            versions: entry.history.iter().rev().cloned().collect(),
        })
    }

    fn do_aggregate(&self, query: &ObjectQuery, request_json: &str) -> PluginResult<String> {
        let request = support::parse_aggregate_request(request_json)?;
        let objects = read(&self.objects);
        let matches: Vec<StoredObject> = objects.matching(query)?.into_iter().cloned().collect();
        let resolve = |kind: ObjectKind, id: Id| objects.current(kind, &id).cloned();
        support::aggregate_json(&matches, &request, &resolve)
    }

    fn do_add_key(&self, key: StoredKey) -> PluginResult<()> {
        let mut keys = write(&self.keys);
        if keys.by_id.contains_key(&key.id) {
            return Err(PluginError::conflict(format!(
                "key {} already exists",
                key.id
            )));
        }
        if let ROption::RSome(parent) = key.parent {
            if !keys.by_id.contains_key(&parent) {
                return Err(PluginError::not_found(format!(
                    "parent key {parent} of key {} does not exist",
                    key.id
                )));
            }
            keys.children.entry(parent).or_default().push(key.id);
        }
        keys.by_id.insert(key.id, key);
        Ok(())
    }

    fn do_key_children(&self, id: Id) -> PluginResult<Vec<StoredKey>> {
        let keys = read(&self.keys);
        if !keys.by_id.contains_key(&id) {
            return Err(support::key_missing(id));
        }
        let children = keys.children.get(&id).into_iter().flatten().copied();
        Ok(keys.sorted(children))
    }

    fn do_root_keys(&self) -> Vec<StoredKey> {
        let keys = read(&self.keys);
        let roots = keys
            .by_id
            .values()
            .filter(|k| k.parent.is_none())
            .map(|k| k.id);
        keys.sorted(roots)
    }

    fn do_update_key(&self, key: StoredKey) -> PluginResult<()> {
        let mut keys = write(&self.keys);
        let Some(stored) = keys.by_id.get_mut(&key.id) else {
            return Err(support::key_missing(key.id));
        };
        support::check_same_parent(stored, &key)?;
        *stored = key;
        Ok(())
    }

    fn do_delete_key(&self, id: Id) -> PluginResult<Vec<Id>> {
        let mut keys = write(&self.keys);
        let Some(parent) = keys.by_id.get(&id).map(|k| k.parent) else {
            return Err(support::key_missing(id));
        };
        // The key first, then breadth first, each level's children oldest first.
        let mut children = std::mem::take(&mut keys.children);
        let deleted = support::key_subtree(id, |parent| {
            keys.sorted(children.remove(&parent).unwrap_or_default().into_iter())
        });
        keys.children = children;
        for gone in &deleted {
            keys.by_id.remove(gone);
        }
        if let ROption::RSome(parent) = parent {
            if let Some(siblings) = keys.children.get_mut(&parent) {
                siblings.retain(|c| *c != id);
                if siblings.is_empty() {
                    keys.children.remove(&parent);
                }
            }
        }
        Ok(deleted)
    }

    fn do_put_document(
        &self,
        name: DocumentName,
        json: String,
        expected_version: u64,
    ) -> PluginResult<u64> {
        let mut documents = lock(&self.documents);
        let doc = documents.get_mut(name);
        let version = support::compare_and_bump(
            format_args!("the {} document", support::document_label(name)),
            doc.version,
            expected_version,
        )?;
        *doc = VersionedDocument {
            json: RString::from(json),
            version,
        };
        Ok(version)
    }

    /// Records of `kind` with ids above `cursor` (a hyphenated id; empty: from the first),
    /// ascending by id, at most `limit`.
    fn do_export(&self, kind: ObjectKind, cursor: &str, limit: u64) -> PluginResult<RecordPage> {
        let after = if cursor.is_empty() {
            None
        } else {
            Some(cursor.parse::<Id>().map_err(|e| {
                PluginError::invalid(format!(
                    "export cursor {cursor:?} is not one dev-memory gave (an object id): {e}"
                ))
            })?)
        };
        let objects = read(&self.objects);
        let mut ids: Vec<Id> = objects
            .space(kind)
            .keys()
            .filter(|id| after.is_none_or(|a| **id > a))
            .copied()
            .collect();
        ids.sort_unstable();
        let limit = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
        let more = ids.len() > limit;
        ids.truncate(limit);
        let records = ids
            .iter()
            .map(|id| {
                let entry = &objects.space(kind)[id];
                ObjectRecord {
                    kind,
                    id: *id,
                    current: entry.current.clone().into(),
                    version: if entry.current.is_some() {
                        entry.version
                    } else {
                        0
                    },
                    history: entry.history.iter().rev().cloned().collect(),
                }
            })
            .collect();
        let next = match (more, ids.last()) {
            (true, Some(last)) => RString::from(last.to_string()),
            _ => RString::new(),
        };
        Ok(RecordPage { records, next })
    }

    fn do_import(&self, records: Vec<ObjectRecord>) -> PluginResult<()> {
        for record in &records {
            record.check()?;
        }
        let mut objects = write(&self.objects);
        for record in records {
            let space = objects.space_mut(record.kind);
            let history: Vec<ObjectVersion> = record.history.into_iter().rev().collect();
            let current = record.current.into_option();
            let version = if current.is_some() { record.version } else { 0 };
            if let Some(held) = space.get(&record.id) {
                let held_version = if held.current.is_some() {
                    held.version
                } else {
                    0
                };
                if held.current == current && held_version == version && held.history == history {
                    continue;
                }
                return Err(support::import_conflict(record.kind, record.id));
            }
            space.insert(
                record.id,
                Entry {
                    vector: Vec::new(),
                    current,
                    version,
                    history,
                },
            );
        }
        Ok(())
    }
}

impl Connector for DevMemory {
    fn export_objects(
        &self,
        kind: ObjectKind,
        cursor: String,
        limit: u64,
    ) -> impl Future<Output = PluginResult<RecordPage>> + Send + 'static {
        ready(self.do_export(kind, &cursor, limit))
    }

    fn import_objects(
        &self,
        records: Vec<ObjectRecord>,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        ready(self.do_import(records))
    }

    fn create_object(
        &self,
        object: StoredObject,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        ready(self.do_create(object, Vec::new()))
    }

    fn get_object(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<Option<StoredObject>>> + Send + 'static {
        ready(Ok(read(&self.objects).current(kind, &id).cloned()))
    }

    fn get_objects(
        &self,
        kind: ObjectKind,
        ids: Vec<Id>,
    ) -> impl Future<Output = PluginResult<Vec<Option<StoredObject>>>> + Send + 'static {
        let objects = read(&self.objects);
        ready(Ok(ids
            .iter()
            .map(|id| objects.current(kind, id).cloned())
            .collect()))
    }

    fn query_objects(
        &self,
        query: ObjectQuery,
    ) -> impl Future<Output = PluginResult<ObjectPage>> + Send + 'static {
        ready(self.do_query(&query))
    }

    fn update_object(
        &self,
        object: StoredObject,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        ready(self.do_update(object, None, Vec::new()).map(|_| ()))
    }

    fn delete_object(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        ready(self.do_delete(kind, id))
    }

    fn object_history(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<ObjectHistory>> + Send + 'static {
        ready(self.do_history(kind, id))
    }

    fn aggregate(
        &self,
        query: ObjectQuery,
        request_json: String,
    ) -> impl Future<Output = PluginResult<String>> + Send + 'static {
        ready(self.do_aggregate(&query, &request_json))
    }

    fn add_key(&self, key: StoredKey) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        ready(self.do_add_key(key))
    }

    fn get_key(
        &self,
        id: Id,
    ) -> impl Future<Output = PluginResult<Option<StoredKey>>> + Send + 'static {
        ready(Ok(read(&self.keys).by_id.get(&id).cloned()))
    }

    fn key_children(
        &self,
        id: Id,
    ) -> impl Future<Output = PluginResult<Vec<StoredKey>>> + Send + 'static {
        ready(self.do_key_children(id))
    }

    fn root_keys(&self) -> impl Future<Output = PluginResult<Vec<StoredKey>>> + Send + 'static {
        ready(Ok(self.do_root_keys()))
    }

    fn update_key(
        &self,
        key: StoredKey,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        ready(self.do_update_key(key))
    }

    fn delete_key(&self, id: Id) -> impl Future<Output = PluginResult<Vec<Id>>> + Send + 'static {
        ready(self.do_delete_key(id))
    }

    fn get_document(
        &self,
        document: DocumentName,
    ) -> impl Future<Output = PluginResult<VersionedDocument>> + Send + 'static {
        ready(Ok(lock(&self.documents).get_mut(document).clone()))
    }

    fn put_document(
        &self,
        name: DocumentName,
        json: String,
        expected: u64,
    ) -> impl Future<Output = PluginResult<u64>> + Send + 'static {
        ready(self.do_put_document(name, json, expected))
    }

    fn get_object_versioned(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<Option<VersionedObject>>> + Send + 'static {
        ready(Ok(self.do_get_versioned(kind, id)))
    }

    fn update_object_if(
        &self,
        object: StoredObject,
        expected_version: u64,
    ) -> impl Future<Output = PluginResult<u64>> + Send + 'static {
        ready(self.do_update(object, Some(expected_version), Vec::new()))
    }

    fn create_object_with_vector(
        &self,
        object: StoredObject,
        vector: Vec<f32>,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        ready(self.do_create(object, vector))
    }

    fn update_object_with_vector(
        &self,
        object: StoredObject,
        vector: Vec<f32>,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        ready(self.do_update(object, None, vector).map(|_| ()))
    }

    fn update_object_if_with_vector(
        &self,
        object: StoredObject,
        expected_version: u64,
        vector: Vec<f32>,
    ) -> impl Future<Output = PluginResult<u64>> + Send + 'static {
        ready(self.do_update(object, Some(expected_version), vector))
    }

    fn get_vector(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<Option<Vec<f32>>>> + Send + 'static {
        let objects = read(&self.objects);
        ready(Ok(objects
            .space(kind)
            .get(&id)
            .filter(|e| e.current.is_some() && !e.vector.is_empty())
            .map(|e| e.vector.clone())))
    }

    /// Exact search: every current object the query's class, owners and filter allow.
    fn search_vectors(
        &self,
        query: VectorQuery,
    ) -> impl Future<Output = PluginResult<Vec<VectorHit>>> + Send + 'static {
        ready(self.do_search(&query))
    }
}

impl DevMemory {
    fn do_search(&self, query: &VectorQuery) -> PluginResult<Vec<VectorHit>> {
        let objects = read(&self.objects);
        let candidates = query.candidates();
        let matcher = QueryMatcher::new(&candidates)?;
        let resolve = |kind: ObjectKind, id: Id| objects.current(kind, &id).cloned();
        let matching = objects.space(query.kind).values().filter_map(|e| {
            let o = e.current.as_ref()?;
            matcher
                .matches(o, &resolve)
                .then_some((o, e.vector.as_slice()))
        });
        Ok(weft_plugin_api::vector::exact_nearest(
            matching,
            &query.vector,
            usize::try_from(query.k).unwrap_or(usize::MAX),
            query.max_distance,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi_stable::std_types::RVec;
    use std::sync::Arc;

    use futures::executor::block_on as now;

    fn thing(id: Id, created_ms: i64, props: &str) -> StoredObject {
        StoredObject {
            kind: ObjectKind::Thing,
            id,
            class: "City".into(),
            context: RString::new(),
            owner: Id([9; 16]),
            created_ms,
            updated_ms: created_ms,
            properties_json: props.into(),
        }
    }

    fn key(id: u8, parent: Option<u8>, created_ms: i64) -> StoredKey {
        StoredKey {
            id: Id([id; 16]),
            parent: parent.map(|p| Id([p; 16])).into(),
            token_hash: RString::new(),
            email: RString::new(),
            ip_origin: RVec::new(),
            expires_ms: -1,
            read: true,
            write: true,
            delete: true,
            execute: true,
            created_ms,
        }
    }

    #[test]
    fn concurrent_writers_lose_nothing() {
        let store = Arc::new(DevMemory::new());
        let id = Id::random();
        now(store.create_object(thing(id, 1, "{}"))).unwrap();
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    for i in 0..250u32 {
                        // Each thread creates its own objects and updates the shared one.
                        let mut own = thing(Id::random(), 2, "{}");
                        own.owner = Id([t; 16]);
                        now(store.create_object(own)).unwrap();
                        let props = format!(r#"{{"writer":{t},"n":{i}}}"#);
                        now(store.update_object(thing(id, 1, &props))).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let page = now(store.query_objects(ObjectQuery::all(ObjectKind::Thing, 0))).unwrap();
        assert_eq!(page.total, 1 + 4 * 250);
        let history = now(store.object_history(ObjectKind::Thing, id)).unwrap();
        assert_eq!(
            history.versions.len(),
            4 * 250,
            "every update archived one version"
        );
        assert_eq!(
            history.versions.last().unwrap().object.properties_json,
            "{}"
        );
    }

    #[test]
    fn documents_compare_and_set_under_contention() {
        let store = Arc::new(DevMemory::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    let mut won = 0;
                    while won < 100 {
                        let doc = now(store.get_document(DocumentName::Ontology)).unwrap();
                        let next = format!("{}", doc.version + 1);
                        if now(store.put_document(DocumentName::Ontology, next, doc.version))
                            .is_ok()
                        {
                            won += 1;
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let doc = now(store.get_document(DocumentName::Ontology)).unwrap();
        assert_eq!((doc.version, doc.json.as_str()), (400, "400"));
        let e = now(store.put_document(DocumentName::Ontology, "{}".into(), 7)).unwrap_err();
        assert!(e.message.contains("400") && e.message.contains('7'), "{e}");
    }

    #[test]
    fn delete_key_cascades_key_first_and_keeps_siblings() {
        let store = DevMemory::new();
        for k in [
            key(1, None, 1),
            key(2, Some(1), 3),
            key(3, Some(1), 2),
            key(4, Some(2), 4),
            key(5, None, 5),
            key(6, Some(5), 6),
        ] {
            now(store.add_key(k)).unwrap();
        }
        let deleted = now(store.delete_key(Id([1; 16]))).unwrap();
        assert_eq!(
            deleted,
            vec![Id([1; 16]), Id([3; 16]), Id([2; 16]), Id([4; 16])]
        );
        for gone in [1, 2, 3, 4] {
            assert!(now(store.get_key(Id([gone; 16]))).unwrap().is_none());
        }
        let roots: Vec<Id> = now(store.root_keys())
            .unwrap()
            .iter()
            .map(|k| k.id)
            .collect();
        assert_eq!(roots, vec![Id([5; 16])]);
        assert_eq!(now(store.key_children(Id([5; 16]))).unwrap().len(), 1);
        let e = now(store.key_children(Id([2; 16]))).unwrap_err();
        assert_eq!(e.kind, weft_plugin_api::ErrorKind::NotFound);
        // Deleting a child removes it from its parent's children.
        assert_eq!(
            now(store.delete_key(Id([6; 16]))).unwrap(),
            vec![Id([6; 16])]
        );
        assert!(now(store.key_children(Id([5; 16]))).unwrap().is_empty());
    }

    #[test]
    fn poisoned_lock_is_recovered() {
        let store = Arc::new(DevMemory::new());
        let s = Arc::clone(&store);
        let _ = std::thread::spawn(move || {
            let _guard = write(&s.objects);
            panic!("poison the lock");
        })
        .join();
        assert!(store.objects.is_poisoned());
        let id = Id::random();
        now(store.create_object(thing(id, 1, "{}"))).unwrap();
        assert!(now(store.get_object(ObjectKind::Thing, id))
            .unwrap()
            .is_some());
    }

    #[test]
    fn versions_count_writes_and_compare_and_set_is_exact() {
        let store = DevMemory::new();
        let id = Id::random();
        let get = |store: &DevMemory| now(store.get_object_versioned(ObjectKind::Thing, id));
        assert_eq!(get(&store).unwrap(), None);
        now(store.create_object(thing(id, 1, "{}"))).unwrap();
        assert_eq!(get(&store).unwrap().unwrap().version, 1);
        now(store.update_object(thing(id, 1, r#"{"n":1}"#))).unwrap();
        assert_eq!(
            now(store.update_object_if(thing(id, 1, r#"{"n":2}"#), 2)),
            Ok(3)
        );
        let e = now(store.update_object_if(thing(id, 1, r#"{"n":9}"#), 2)).unwrap_err();
        assert_eq!(e.kind, weft_plugin_api::ErrorKind::Conflict);
        assert!(
            e.message.contains("version 3") && e.message.contains("version 2"),
            "{e}"
        );
        let current = get(&store).unwrap().unwrap();
        assert_eq!(
            (current.version, current.object.properties_json.as_str()),
            (3, r#"{"n":2}"#)
        );
        let history = now(store.object_history(ObjectKind::Thing, id)).unwrap();
        assert_eq!(
            history.versions.len(),
            2,
            "update_object_if archives like update_object"
        );
        now(store.delete_object(ObjectKind::Thing, id)).unwrap();
        assert_eq!(get(&store).unwrap(), None);
        let e = now(store.update_object_if(thing(id, 1, "{}"), 3)).unwrap_err();
        assert_eq!(e.kind, weft_plugin_api::ErrorKind::NotFound);
    }

    #[test]
    fn deleted_ids_are_never_reused() {
        let store = DevMemory::new();
        let id = Id::random();
        now(store.create_object(thing(id, 1, "{}"))).unwrap();
        now(store.delete_object(ObjectKind::Thing, id)).unwrap();
        let e = now(store.create_object(thing(id, 2, "{}"))).unwrap_err();
        assert_eq!(e.kind, weft_plugin_api::ErrorKind::Conflict);
        let h = now(store.object_history(ObjectKind::Thing, id)).unwrap();
        assert!(h.deleted && h.versions.len() == 1);
        // The Action id space is separate.
        let mut action = thing(id, 3, "{}");
        action.kind = ObjectKind::Action;
        now(store.create_object(action)).unwrap();
    }
}
