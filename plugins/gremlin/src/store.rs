//! The contract's operations as scripts with bindings ([`crate::scripts`]), and the decoding of
//! their answers.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use abi_stable::std_types::RString;
use serde_json::{Map, Value};
use weft_connector_sdk::support::{self, QueryMatcher};
use weft_connector_sdk::{Call, Run};
use weft_plugin_api::filter::{references, Resolver};
use weft_plugin_api::{
    now_ms, DocumentName, Id, ObjectHistory, ObjectKind, ObjectPage, ObjectQuery, ObjectRecord,
    ObjectVersion, PluginError, PluginLogger, PluginResult, RecordPage, StoredKey, StoredObject,
    VersionedDocument, VersionedObject,
};

use crate::client::{list, long, map, Client};
use crate::config::Config;
use crate::scripts;

/// The labels and property keys the connector writes, each `<graph_prefix>_<name>`.
#[derive(Debug, Clone)]
pub struct Names {
    /// The prefix.
    pub prefix: String,
    /// `(binding name, full name)`, in the order of [`NAME_PARTS`].
    pub all: Vec<(&'static str, String)>,
}

/// `(name in the scripts' `K` map, suffix after the prefix)`.
pub const NAME_PARTS: &[(&str, &str)] = &[
    // vertex labels
    ("lObject", "object"),
    ("lVersion", "old_version"),
    ("lKey", "key"),
    ("lDocument", "document"),
    // edge labels
    ("ref", "refers_to"),
    ("history", "history"),
    ("parentEdge", "child_of"),
    // property keys
    ("ns", "ns"),
    ("uid", "uid"),
    ("kind", "kind"),
    ("id", "id"),
    ("cls", "class"),
    ("ctx", "context"),
    ("owner", "owner"),
    ("created", "created_ms"),
    ("updated", "updated_ms"),
    ("props", "properties"),
    ("version", "version"),
    ("deleted", "deleted"),
    ("hseq", "history_count"),
    ("seq", "seq"),
    ("archived", "archived_ms"),
    ("refName", "ref_property"),
    ("parent", "parent_id"),
    ("tokenHash", "token_hash"),
    ("email", "email"),
    ("ipOrigin", "ip_origin"),
    ("expires", "expires_ms"),
    ("read", "read"),
    ("write", "write"),
    ("delete", "delete"),
    ("execute", "execute"),
    ("json", "json"),
];

impl Names {
    /// The names for `prefix`.
    pub fn new(prefix: &str) -> Names {
        Names {
            prefix: prefix.to_string(),
            all: NAME_PARTS
                .iter()
                .map(|(k, suffix)| (*k, format!("{prefix}_{suffix}")))
                .collect(),
        }
    }

    /// The full name of `key` (a binding name of [`NAME_PARTS`]).
    pub fn get(&self, key: &str) -> String {
        self.all
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    fn binding(&self) -> Value {
        map(self
            .all
            .iter()
            .map(|(k, v)| (*k, Value::String(v.clone())))
            .collect())
    }
}

/// The lookup key of an object: unique per namespace.
fn object_uid(kind: ObjectKind, id: Id) -> String {
    format!("{}:{id}", kind.as_str())
}

fn key_uid(id: Id) -> String {
    format!("key:{id}")
}

fn document_uid(name: DocumentName) -> &'static str {
    match name {
        DocumentName::Ontology => "document:ontology",
        DocumentName::ConnectorState => "document:connector_state",
    }
}

fn kind_name(kind: ObjectKind) -> &'static str {
    kind.as_str()
}

/// The store: a client, the names, the namespace.
pub struct Store {
    client: Client,
    names: Names,
    namespace: String,
    log: PluginLogger,
}

fn bad(what: &str, v: &Value) -> PluginError {
    let mut s = v.to_string();
    if s.len() > 200 {
        let cut = s.char_indices().nth(200).map_or(s.len(), |(i, _)| i);
        s.truncate(cut);
        s.push('…');
    }
    PluginError::internal(format!(
        "gremlin: the server answered {what} that cannot be read: {s}"
    ))
}

fn str_field(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_string()
}

fn i64_field(v: &Value, k: &str) -> i64 {
    v[k].as_i64().unwrap_or_default()
}

fn parse_id(v: &Value, k: &str) -> PluginResult<Id> {
    v[k].as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(&format!("an id ({k})"), v))
}

fn parse_kind(s: &str) -> Option<ObjectKind> {
    match s {
        "thing" => Some(ObjectKind::Thing),
        "action" => Some(ObjectKind::Action),
        _ => None,
    }
}

/// A stored object from a script's object map (`wObj`).
fn object_from(v: &Value) -> PluginResult<StoredObject> {
    let kind =
        parse_kind(v["k"].as_str().unwrap_or_default()).ok_or_else(|| bad("an object", v))?;
    Ok(StoredObject {
        kind,
        id: parse_id(v, "i")?,
        class: str_field(v, "c").into(),
        context: str_field(v, "x").into(),
        owner: parse_id(v, "o")?,
        created_ms: i64_field(v, "cr"),
        updated_ms: i64_field(v, "up"),
        properties_json: str_field(v, "p").into(),
    })
}

fn object_binding(o: &StoredObject) -> Value {
    map(vec![
        ("k", Value::String(kind_name(o.kind).into())),
        ("i", Value::String(o.id.to_string())),
        ("c", Value::String(o.class.to_string())),
        ("x", Value::String(o.context.to_string())),
        ("o", Value::String(o.owner.to_string())),
        ("cr", long(o.created_ms)),
        ("up", long(o.updated_ms)),
        ("p", Value::String(o.properties_json.to_string())),
    ])
}

/// The archived versions of `kind`/`id` in a script's answer (`wHist`), newest first (by
/// `seq`), as `object_history` answers them.
fn versions_from(kind: ObjectKind, id: Id, list: &Value) -> PluginResult<Vec<ObjectVersion>> {
    let mut versions: Vec<(i64, ObjectVersion)> = Vec::new();
    for h in list.as_array().into_iter().flatten() {
        let object = StoredObject {
            kind,
            id,
            class: str_field(h, "c").into(),
            context: str_field(h, "x").into(),
            owner: parse_id(h, "o")?,
            created_ms: i64_field(h, "cr"),
            updated_ms: i64_field(h, "up"),
            properties_json: str_field(h, "p").into(),
        };
        versions.push((
            i64_field(h, "s"),
            ObjectVersion {
                object,
                archived_ms: i64_field(h, "a"),
            },
        ));
    }
    versions.sort_by_key(|v| std::cmp::Reverse(v.0));
    Ok(versions.into_iter().map(|(_, v)| v).collect())
}

/// One record of [`scripts::EXPORT_OBJECTS`]' answer.
fn record_from(kind: ObjectKind, v: &Value) -> PluginResult<ObjectRecord> {
    let o = &v["o"];
    if parse_kind(o["k"].as_str().unwrap_or_default()) != Some(kind) {
        return Err(bad("an exported object of another kind", v));
    }
    let id = parse_id(o, "i")?;
    let deleted = v["d"]
        .as_bool()
        .ok_or_else(|| bad("an exported record", v))?;
    let (current, version) = if deleted {
        (None, 0)
    } else {
        let version = o["v"].as_u64().ok_or_else(|| bad("a version", v))?;
        (Some(object_from(o)?), version)
    };
    Ok(ObjectRecord {
        kind,
        id,
        current: current.into(),
        version,
        history: versions_from(kind, id, &v["h"])?.into(),
    })
}

/// The most records one `export_objects` page answers, whatever the limit asked (the contract
/// allows fewer): one script's answer stays bounded.
const EXPORT_PAGE_MAX: u64 = 1_000;

/// The most records one import script writes, and (estimated) binding bytes past which a
/// chunk ends: the server refuses requests above its `maxContentLength` (10 MiB by default),
/// and a script waiting for the graph's lock behind others (imports run in parallel) spends
/// its evaluation timeout there, so each one stays short (250 records: about 0.5 s on
/// TinkerGraph, 1 to 4 s on JanusGraph on a busy two-core machine).
const IMPORT_CHUNK_RECORDS: usize = 250;
const IMPORT_CHUNK_BYTES: usize = 2 << 20;

/// The most references one [`scripts::LINK_REFS`] request links.
const LINK_CHUNK: usize = 5_000;

/// An archived version as [`scripts::IMPORT_OBJECTS`] takes it (and `wHeld` reads it back).
fn version_binding(v: &ObjectVersion) -> Value {
    let o = &v.object;
    map(vec![
        ("a", long(v.archived_ms)),
        ("c", Value::String(o.class.to_string())),
        ("x", Value::String(o.context.to_string())),
        ("o", Value::String(o.owner.to_string())),
        ("cr", long(o.created_ms)),
        ("up", long(o.updated_ms)),
        ("p", Value::String(o.properties_json.to_string())),
    ])
}

/// A checked record as [`scripts::IMPORT_OBJECTS`] takes it, with the size it adds to a
/// request (estimated).
fn record_binding(r: &ObjectRecord) -> PluginResult<(Value, usize)> {
    r.check()?;
    let current = r.current.as_ref().into_option();
    let version = match current {
        Some(_) => i64::try_from(r.version).map_err(|_| {
            PluginError::invalid(format!(
                "record {} {}: version {} is larger than this connector stores",
                r.kind.as_str(),
                r.id,
                r.version
            ))
        })?,
        None => 0,
    };
    let size = |o: &StoredObject| {
        256 + o.class.len() + o.context.len() + o.properties_json.len() * 11 / 10
    };
    let bytes =
        256 + current.map_or(0, size) + r.history.iter().map(|v| size(&v.object)).sum::<usize>();
    let want = map(vec![
        ("cur", current.map_or(Value::Null, object_binding)),
        ("v", long(version)),
        ("h", list(r.history.iter().map(version_binding).collect())),
    ]);
    let binding = map(vec![
        ("u", Value::String(object_uid(r.kind, r.id))),
        ("k", Value::String(kind_name(r.kind).into())),
        ("i", Value::String(r.id.to_string())),
        ("d", Value::Bool(current.is_none())),
        ("want", want),
        (
            "refs",
            current.map_or_else(|| list(Vec::new()), refs_binding),
        ),
    ]);
    Ok((binding, bytes))
}

/// `[property, target uid]` of every reference in the bag (for the `refers_to` edges).
fn refs_binding(o: &StoredObject) -> Value {
    let mut refs = Vec::new();
    for (name, value) in o.properties() {
        for (kind, id) in references(&value) {
            refs.push(list(vec![
                Value::String(name.clone()),
                Value::String(object_uid(kind, id)),
            ]));
        }
    }
    list(refs)
}

fn key_from(v: &Value) -> PluginResult<StoredKey> {
    let parent = match v["pa"].as_str() {
        Some("") | None => None,
        Some(p) => Some(p.parse::<Id>().map_err(|_| bad("a key parent", v))?),
    };
    let ip_origin: Vec<String> = serde_json::from_str(v["ip"].as_str().unwrap_or("[]"))
        .map_err(|_| bad("a key's ip_origin", v))?;
    Ok(StoredKey {
        id: parse_id(v, "i")?,
        parent: parent.into(),
        token_hash: str_field(v, "th").into(),
        email: str_field(v, "em").into(),
        ip_origin: ip_origin.into_iter().map(Into::into).collect(),
        expires_ms: i64_field(v, "ex"),
        read: v["r"].as_bool().unwrap_or(false),
        write: v["w"].as_bool().unwrap_or(false),
        delete: v["d"].as_bool().unwrap_or(false),
        execute: v["x"].as_bool().unwrap_or(false),
        created_ms: i64_field(v, "cr"),
    })
}

fn key_binding(k: &StoredKey) -> Value {
    let ip: Vec<&str> = k.ip_origin.iter().map(|s| s.as_str()).collect();
    map(vec![
        ("i", Value::String(k.id.to_string())),
        ("th", Value::String(k.token_hash.to_string())),
        ("em", Value::String(k.email.to_string())),
        (
            "ip",
            Value::String(serde_json::to_string(&ip).unwrap_or_else(|_| "[]".into())),
        ),
        ("ex", long(k.expires_ms)),
        ("r", Value::Bool(k.read)),
        ("w", Value::Bool(k.write)),
        ("d", Value::Bool(k.delete)),
        ("x", Value::Bool(k.execute)),
        ("cr", long(k.created_ms)),
    ])
}

fn parent_string(k: &StoredKey) -> String {
    k.parent
        .into_option()
        .map(|p| p.to_string())
        .unwrap_or_default()
}

/// Bindings as `(name, value)` pairs.
type Bindings = Vec<(&'static str, Value)>;

impl Store {
    /// A store over `client`.
    pub fn new(client: Client, config: &Config, log: PluginLogger) -> Store {
        Store {
            client,
            names: Names::new(&config.graph_prefix),
            namespace: config.namespace.clone(),
            log,
        }
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The names.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// Runs a locked script (body of [`scripts`]) with `K`, `ns` and `extra`, answering its
    /// decoded JSON result.
    async fn run(&self, op: &str, body: &str, extra: Bindings) -> PluginResult<Value> {
        let mut bindings = Map::new();
        bindings.insert("K".into(), self.names.binding());
        bindings.insert("ns".into(), Value::String(self.namespace.clone()));
        for (k, v) in extra {
            bindings.insert(k.into(), v);
        }
        let script = scripts::locked(body);
        let items = self
            .client
            .eval(&script, bindings)
            .await
            .map_err(|e| e.into_plugin(self.client.url()))?;
        let text = items
            .first()
            .and_then(Value::as_str)
            .ok_or_else(|| bad(&format!("{op} with {items:?}"), &Value::Null))?;
        let result: Value = serde_json::from_str(text).map_err(|e| {
            PluginError::internal(format!(
                "gremlin: {op}: the server's answer is not JSON: {e}"
            ))
        })?;
        Ok(result)
    }

    /// Runs `body` once at start-up without the data lock (index set-up).
    pub async fn run_plain(&self, script: &str, extra: Bindings) -> PluginResult<Value> {
        let mut bindings = Map::new();
        for (k, v) in extra {
            bindings.insert(k.into(), v);
        }
        let items = self
            .client
            .eval(script, bindings)
            .await
            .map_err(|e| e.into_plugin(self.client.url()))?;
        let text = items.first().and_then(Value::as_str).unwrap_or("null");
        serde_json::from_str(text)
            .map_err(|e| PluginError::internal(format!("gremlin: the answer is not JSON: {e}")))
    }

    // ----- objects ---------------------------------------------------------------------------

    async fn fetch(&self, uids: Vec<String>) -> PluginResult<Map<String, Value>> {
        if uids.is_empty() {
            return Ok(Map::new());
        }
        let r = self
            .run(
                "get_objects",
                scripts::GET_OBJECTS,
                vec![("uids", list(uids.into_iter().map(Value::String).collect()))],
            )
            .await?;
        match r {
            Value::Object(m) => Ok(m),
            other => Err(bad("get_objects", &other)),
        }
    }

    /// `update_object` (`expected` = None) and `update_object_if`; answers the new version.
    async fn update(&self, o: StoredObject, expected: Option<u64>) -> PluginResult<u64> {
        // A version past i64::MAX is never stored: i64::MAX then conflicts with any stored one.
        let expected_binding = match expected {
            Some(v) => long(i64::try_from(v).unwrap_or(i64::MAX)),
            None => long(-1),
        };
        let r = self
            .run(
                "update_object",
                scripts::UPDATE_OBJECT,
                vec![
                    ("uid", Value::String(object_uid(o.kind, o.id))),
                    ("o", object_binding(&o)),
                    ("refs", refs_binding(&o)),
                    ("expected", expected_binding),
                    ("now", long(now_ms())),
                ],
            )
            .await?;
        match r["r"].as_str() {
            Some("ok") => r["version"]
                .as_u64()
                .ok_or_else(|| bad("update_object", &r)),
            Some("missing") => Err(support::object_missing(o.kind, o.id)),
            Some("conflict") => {
                let stored = r["stored"].as_u64().unwrap_or_default();
                let what = format!("{} {}", o.kind.as_str(), o.id);
                support::compare_and_bump(what, stored, expected.unwrap_or_default())
            }
            _ => Err(bad("update_object", &r)),
        }
    }

    /// Every current object of `query`'s kind, class and owners (`page`: false), or the page
    /// of them (`page`: true, no filter), with the total.
    async fn candidates(
        &self,
        query: &ObjectQuery,
        page: bool,
    ) -> PluginResult<(Vec<StoredObject>, u64)> {
        let owners: Vec<Value> = query
            .owners
            .iter()
            .map(|o| Value::String(o.to_string()))
            .collect();
        let clamp = |n: u64| long(i64::try_from(n.min(i32::MAX as u64)).unwrap_or(i32::MAX as i64));
        let r = self
            .run(
                "query_objects",
                scripts::QUERY_OBJECTS,
                vec![
                    ("kind", Value::String(kind_name(query.kind).into())),
                    ("cls", Value::String(query.class.to_string())),
                    ("owners", list(owners)),
                    ("page", Value::Bool(page)),
                    ("offset", clamp(query.offset)),
                    ("limit", clamp(query.limit)),
                ],
            )
            .await?;
        let objects = r["objects"]
            .as_array()
            .ok_or_else(|| bad("query_objects", &r))?
            .iter()
            .map(object_from)
            .collect::<PluginResult<Vec<_>>>()?;
        Ok((objects, r["total"].as_u64().unwrap_or_default()))
    }

    /// Runs `work` with a resolver of references until every object it asked for is known:
    /// each round fetches (in one request) the objects the previous round missed, so a path
    /// of n references takes at most n + 1 rounds.
    async fn with_references<T>(&self, mut work: impl FnMut(Resolver<'_>) -> T) -> PluginResult<T> {
        let mut known: HashMap<(ObjectKind, Id), Option<StoredObject>> = HashMap::new();
        loop {
            let missed: RefCell<BTreeSet<(ObjectKind, Id)>> = RefCell::new(BTreeSet::new());
            let result = {
                let resolve = |kind: ObjectKind, id: Id| match known.get(&(kind, id)) {
                    Some(o) => o.clone(),
                    None => {
                        missed.borrow_mut().insert((kind, id));
                        None
                    }
                };
                work(&resolve)
            };
            let missed = missed.into_inner();
            if missed.is_empty() {
                return Ok(result);
            }
            drop(result);
            let uids: Vec<String> = missed.iter().map(|(k, id)| object_uid(*k, *id)).collect();
            let found = self.fetch(uids).await?;
            for (kind, id) in missed {
                let o = match found.get(&object_uid(kind, id)) {
                    Some(v) => Some(object_from(v)?),
                    None => None,
                };
                known.insert((kind, id), o);
            }
        }
    }

    async fn matching(
        &self,
        matcher: &QueryMatcher<'_>,
        all: Vec<StoredObject>,
    ) -> PluginResult<Vec<StoredObject>> {
        let keep = self
            .with_references(|resolve| {
                all.iter()
                    .map(|o| matcher.matches(o, resolve))
                    .collect::<Vec<bool>>()
            })
            .await?;
        Ok(all
            .into_iter()
            .zip(keep)
            .filter_map(|(o, k)| k.then_some(o))
            .collect())
    }

    fn keys_from(r: &Value) -> PluginResult<Vec<StoredKey>> {
        r["keys"]
            .as_array()
            .ok_or_else(|| bad("keys", r))?
            .iter()
            .map(key_from)
            .collect()
    }

    /// Runs [`scripts::IMPORT_OBJECTS`] on one chunk of record bindings, answering the
    /// references it could not link yet (their targets were not there).
    async fn import_chunk(&self, recs: Vec<Value>) -> PluginResult<Vec<Value>> {
        let r = self
            .run(
                "import_objects",
                scripts::IMPORT_OBJECTS,
                vec![("recs", list(recs))],
            )
            .await?;
        match r["r"].as_str() {
            Some("ok") => Ok(r["dangling"]
                .as_array()
                .ok_or_else(|| bad("import_objects", &r))?
                .iter()
                .map(|l| {
                    // Back as a binding: the version (a number in the JSON answer) as a Long.
                    let mut l = l.as_array().cloned().unwrap_or_default();
                    if let Some(v) = l.get_mut(3) {
                        *v = long(v.as_i64().unwrap_or(-1));
                    }
                    list(l)
                })
                .collect()),
            Some("conflict") => {
                let kind = parse_kind(r["k"].as_str().unwrap_or_default())
                    .ok_or_else(|| bad("import_objects", &r))?;
                Err(support::import_conflict(kind, parse_id(&r, "i")?))
            }
            _ => Err(bad("import_objects", &r)),
        }
    }

    // ----- maintenance -----------------------------------------------------------------------

    /// The namespaces in the graph (under this store's prefix) starting with `prefix`.
    pub async fn namespaces(&self, prefix: &str) -> PluginResult<Vec<String>> {
        let r = self
            .run(
                "namespaces",
                scripts::NAMESPACES,
                vec![("prefix", Value::String(prefix.into()))],
            )
            .await?;
        Ok(r["names"]
            .as_array()
            .ok_or_else(|| bad("namespaces", &r))?
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect())
    }

    /// Deletes everything of the given namespaces; answers how many vertices went.
    pub async fn drop_namespaces(&self, names: Vec<String>) -> PluginResult<u64> {
        if names.is_empty() {
            return Ok(0);
        }
        let r = self
            .run(
                "drop_namespaces",
                scripts::DROP_NAMESPACES,
                vec![(
                    "names",
                    list(names.into_iter().map(Value::String).collect()),
                )],
            )
            .await?;
        r["dropped"]
            .as_u64()
            .ok_or_else(|| bad("drop_namespaces", &r))
    }

    /// The logger.
    pub fn log(&self) -> PluginLogger {
        self.log
    }
}

/// The contract on the graph. The SDK runs every call as a task on the plugin's runtime, aborted
/// when the host gives up on it: each call is one or a few script requests, and a request the
/// server has received runs there whole (inside `synchronized (graph)`) whether or not its
/// answer is awaited.
impl weft_connector_sdk::Store for Store {
    fn run(_: Call) -> Run {
        Run::Task
    }

    // ----- objects ---------------------------------------------------------------------------

    async fn create_object(&self, o: StoredObject) -> PluginResult<()> {
        let r = self
            .run(
                "create_object",
                scripts::CREATE_OBJECT,
                vec![
                    ("uid", Value::String(object_uid(o.kind, o.id))),
                    ("o", object_binding(&o)),
                    ("refs", refs_binding(&o)),
                ],
            )
            .await?;
        match r["r"].as_str() {
            Some("ok") => Ok(()),
            Some("exists") => Err(support::object_exists(
                o.kind,
                o.id,
                r["deleted"].as_bool().unwrap_or(false),
            )),
            _ => Err(bad("create_object", &r)),
        }
    }

    async fn get_object(&self, kind: ObjectKind, id: Id) -> PluginResult<Option<StoredObject>> {
        Ok(self.get_objects(kind, vec![id]).await?.pop().flatten())
    }

    async fn get_objects(
        &self,
        kind: ObjectKind,
        ids: Vec<Id>,
    ) -> PluginResult<Vec<Option<StoredObject>>> {
        let uids: BTreeSet<String> = ids.iter().map(|id| object_uid(kind, *id)).collect();
        let found = self.fetch(uids.into_iter().collect()).await?;
        ids.iter()
            .map(|id| match found.get(&object_uid(kind, *id)) {
                Some(v) => object_from(v).map(Some),
                None => Ok(None),
            })
            .collect()
    }

    async fn get_object_versioned(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> PluginResult<Option<VersionedObject>> {
        let uid = object_uid(kind, id);
        let found = self.fetch(vec![uid.clone()]).await?;
        match found.get(&uid) {
            Some(v) => Ok(Some(VersionedObject {
                object: object_from(v)?,
                version: v["v"].as_u64().ok_or_else(|| bad("a version", v))?,
            })),
            None => Ok(None),
        }
    }

    async fn update_object(&self, object: StoredObject) -> PluginResult<()> {
        self.update(object, None).await.map(drop)
    }

    async fn update_object_if(&self, object: StoredObject, expected: u64) -> PluginResult<u64> {
        self.update(object, Some(expected)).await
    }

    async fn delete_object(&self, kind: ObjectKind, id: Id) -> PluginResult<()> {
        let r = self
            .run(
                "delete_object",
                scripts::DELETE_OBJECT,
                vec![
                    ("uid", Value::String(object_uid(kind, id))),
                    ("now", long(now_ms())),
                ],
            )
            .await?;
        match r["r"].as_str() {
            Some("ok") => Ok(()),
            Some("missing") => Err(support::object_missing(kind, id)),
            _ => Err(bad("delete_object", &r)),
        }
    }

    async fn object_history(&self, kind: ObjectKind, id: Id) -> PluginResult<ObjectHistory> {
        let r = self
            .run(
                "object_history",
                scripts::OBJECT_HISTORY,
                vec![("uid", Value::String(object_uid(kind, id)))],
            )
            .await?;
        match r["r"].as_str() {
            Some("ok") => {}
            Some("missing") => {
                return Err(PluginError::not_found(format!(
                    "{} {id} never existed",
                    kind.as_str()
                )))
            }
            _ => return Err(bad("object_history", &r)),
        }
        Ok(ObjectHistory {
            deleted: r["deleted"].as_bool().unwrap_or(false),
            versions: versions_from(kind, id, &r["versions"])?.into(),
        })
    }

    // ----- migration -------------------------------------------------------------------------

    /// One script: the objects of `kind` whose vertex id is above the cursor (`n:<number>` or
    /// `s:<text>`, the vertex id of the last record of the page before), in vertex id order,
    /// whole; one more than the page is read to know whether another follows.
    async fn export_objects(
        &self,
        kind: ObjectKind,
        cursor: String,
        limit: u64,
    ) -> PluginResult<RecordPage> {
        let refused = || {
            PluginError::invalid(format!(
                "export cursor {cursor:?} is not one the gremlin connector gave (n:<vertex id> or s:<vertex id>)"
            ))
        };
        let (after_type, after) = match cursor.split_once(':') {
            None if cursor.is_empty() => ("", String::new()),
            Some(("n", n)) => ("n", n.parse::<i64>().map_err(|_| refused())?.to_string()),
            Some(("s", s)) => ("s", s.to_string()),
            _ => return Err(refused()),
        };
        let limit = limit.clamp(1, EXPORT_PAGE_MAX);
        let r = self
            .run(
                "export_objects",
                scripts::EXPORT_OBJECTS,
                vec![
                    ("kind", Value::String(kind_name(kind).into())),
                    ("afterType", Value::String(after_type.into())),
                    ("after", Value::String(after)),
                    ("limit", long(limit as i64 + 1)),
                ],
            )
            .await?;
        let items = r["records"]
            .as_array()
            .ok_or_else(|| bad("export_objects", &r))?;
        let more = items.len() as u64 > limit;
        let page = &items[..items.len().min(limit as usize)];
        let records = page
            .iter()
            .map(|v| record_from(kind, v))
            .collect::<PluginResult<Vec<_>>>()?;
        let next = match (more, page.last()) {
            (true, Some(last)) => {
                let at = &last["at"];
                match (at[0].as_u64(), &at[1]) {
                    (Some(0), Value::Number(n)) => format!("n:{n}"),
                    (Some(1), Value::String(s)) => format!("s:{s}"),
                    _ => return Err(bad("a vertex id", last)),
                }
                .into()
            }
            _ => RString::new(),
        };
        Ok(RecordPage {
            records: records.into(),
            next,
        })
    }

    /// Every record checked first (`Invalid` before anything is written), then one script per
    /// chunk of records (a few hundred, or a few MiB of bindings).
    async fn import_objects(&self, records: Vec<ObjectRecord>) -> PluginResult<()> {
        let bindings = records
            .iter()
            .map(record_binding)
            .collect::<PluginResult<Vec<_>>>()?;
        let mut chunk: Vec<Value> = Vec::new();
        let mut dangling: Vec<Value> = Vec::new();
        let mut bytes = 0;
        let mut rest = bindings.into_iter().peekable();
        while let Some((binding, size)) = rest.next() {
            chunk.push(binding);
            bytes += size;
            let full = match rest.peek() {
                None => true,
                Some((_, next)) => {
                    chunk.len() >= IMPORT_CHUNK_RECORDS || bytes + next > IMPORT_CHUNK_BYTES
                }
            };
            if full {
                dangling.extend(self.import_chunk(std::mem::take(&mut chunk)).await?);
                bytes = 0;
            }
        }
        for links in dangling.chunks(LINK_CHUNK) {
            let r = self
                .run(
                    "import_objects (references)",
                    scripts::LINK_REFS,
                    vec![("links", list(links.to_vec()))],
                )
                .await?;
            if r["r"] != "ok" {
                return Err(bad("import_objects (references)", &r));
            }
        }
        Ok(())
    }

    async fn query_objects(&self, query: ObjectQuery) -> PluginResult<ObjectPage> {
        let matcher = QueryMatcher::new(&query)?;
        if matcher.filter().is_none() {
            let (objects, total) = self.candidates(&query, true).await?;
            return Ok(ObjectPage {
                objects: objects.into(),
                total,
            });
        }
        let (all, _) = self.candidates(&query, false).await?;
        let matches = self.matching(&matcher, all).await?;
        Ok(support::page(matches, &query))
    }

    async fn aggregate(&self, query: ObjectQuery, request_json: String) -> PluginResult<String> {
        let request = support::parse_aggregate_request(&request_json)?;
        let matcher = QueryMatcher::new(&query)?;
        let (all, _) = self.candidates(&query, false).await?;
        let matches = match matcher.filter() {
            None => all,
            Some(_) => self.matching(&matcher, all).await?,
        };
        self.with_references(|resolve| support::aggregate_json(&matches, &request, resolve))
            .await?
    }

    // ----- keys ------------------------------------------------------------------------------

    async fn add_key(&self, key: StoredKey) -> PluginResult<()> {
        let parent = parent_string(&key);
        let puid = key.parent.into_option().map(key_uid).unwrap_or_default();
        let r = self
            .run(
                "add_key",
                scripts::ADD_KEY,
                vec![
                    ("kuid", Value::String(key_uid(key.id))),
                    ("puid", Value::String(puid)),
                    ("kobj", key_binding(&key)),
                    ("parent", Value::String(parent.clone())),
                ],
            )
            .await?;
        match r["r"].as_str() {
            Some("ok") => Ok(()),
            Some("exists") => Err(PluginError::conflict(format!(
                "key {} already exists",
                key.id
            ))),
            Some("noparent") => Err(PluginError::not_found(format!(
                "the parent key {parent} of key {} does not exist",
                key.id
            ))),
            _ => Err(bad("add_key", &r)),
        }
    }

    async fn get_key(&self, id: Id) -> PluginResult<Option<StoredKey>> {
        let r = self
            .run(
                "get_key",
                scripts::GET_KEY,
                vec![("kuid", Value::String(key_uid(id)))],
            )
            .await?;
        match &r["key"] {
            Value::Null => Ok(None),
            k => key_from(k).map(Some),
        }
    }

    async fn key_children(&self, id: Id) -> PluginResult<Vec<StoredKey>> {
        let r = self
            .run(
                "key_children",
                scripts::KEY_CHILDREN,
                vec![("kuid", Value::String(key_uid(id)))],
            )
            .await?;
        if r["r"] == "missing" {
            return Err(support::key_missing(id));
        }
        let mut keys = Self::keys_from(&r)?;
        support::sort_oldest_first(&mut keys);
        Ok(keys)
    }

    async fn root_keys(&self) -> PluginResult<Vec<StoredKey>> {
        let r = self.run("root_keys", scripts::ROOT_KEYS, vec![]).await?;
        let mut keys = Self::keys_from(&r)?;
        support::sort_oldest_first(&mut keys);
        Ok(keys)
    }

    async fn update_key(&self, key: StoredKey) -> PluginResult<()> {
        let r = self
            .run(
                "update_key",
                scripts::UPDATE_KEY,
                vec![
                    ("kuid", Value::String(key_uid(key.id))),
                    ("kobj", key_binding(&key)),
                    ("parent", Value::String(parent_string(&key))),
                ],
            )
            .await?;
        match r["r"].as_str() {
            Some("ok") => Ok(()),
            Some("missing") => Err(support::key_missing(key.id)),
            Some("moved") => Err(PluginError::invalid(format!(
                "the parent of key {} cannot change",
                key.id
            ))),
            _ => Err(bad("update_key", &r)),
        }
    }

    async fn delete_key(&self, id: Id) -> PluginResult<Vec<Id>> {
        let r = self
            .run(
                "delete_key",
                scripts::DELETE_KEY,
                vec![("kuid", Value::String(key_uid(id)))],
            )
            .await?;
        if r["r"] == "missing" {
            return Err(support::key_missing(id));
        }
        let keys = Self::keys_from(&r)?;
        let mut children: HashMap<Id, Vec<StoredKey>> = HashMap::new();
        for k in keys {
            if let Some(p) = k.parent.into_option() {
                children.entry(p).or_default().push(k);
            }
        }
        Ok(support::key_subtree(id, |k| {
            children.remove(&k).unwrap_or_default()
        }))
    }

    // ----- documents -------------------------------------------------------------------------

    async fn get_document(&self, name: DocumentName) -> PluginResult<VersionedDocument> {
        let r = self
            .run(
                "get_document",
                scripts::GET_DOCUMENT,
                vec![("duid", Value::String(document_uid(name).into()))],
            )
            .await?;
        Ok(VersionedDocument {
            json: str_field(&r, "json").into(),
            version: r["version"]
                .as_u64()
                .ok_or_else(|| bad("get_document", &r))?,
        })
    }

    async fn put_document(
        &self,
        name: DocumentName,
        json: String,
        expected: u64,
    ) -> PluginResult<u64> {
        let what = support::document_label(name);
        let Ok(expected_i64) = i64::try_from(expected) else {
            return support::compare_and_bump(what, 0, expected);
        };
        let r = self
            .run(
                "put_document",
                scripts::PUT_DOCUMENT,
                vec![
                    ("duid", Value::String(document_uid(name).into())),
                    ("json", Value::String(json)),
                    ("expected", long(expected_i64)),
                ],
            )
            .await?;
        match r["r"].as_str() {
            Some("ok") => r["version"].as_u64().ok_or_else(|| bad("put_document", &r)),
            Some("conflict") => {
                support::compare_and_bump(what, r["stored"].as_u64().unwrap_or_default(), expected)
            }
            _ => Err(bad("put_document", &r)),
        }
    }
}
