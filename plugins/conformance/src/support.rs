//! What the checks share: a connector handle whose calls fail with clear messages, builders for
//! objects and keys, and comparisons that say field by field what differs.

use std::collections::BTreeSet;
use std::fmt::{Debug, Display};

use abi_stable::std_types::{ROption, RString, RVec};
use serde_json::{json, Map, Value};
use weft_plugin_api::{
    Capabilities, ConnectorBox, DocumentName, ErrorKind, Id, ObjectHistory, ObjectKind, ObjectPage,
    ObjectQuery, ObjectVersionsBox, PluginResult, StoredKey, StoredObject, VersionedDocument,
    VersionedObject,
};

use crate::Subject;

/// 2018-11-21T10:20:00Z: the base of every timestamp the checks write.
pub(crate) const T0: i64 = 1_542_795_600_000;

/// Owner keys used by the checks.
pub(crate) const OWNER_A: Id = Id([0xa1; 16]);
pub(crate) const OWNER_B: Id = Id([0xb2; 16]);
pub(crate) const OWNER_C: Id = Id([0xc3; 16]);

/// A limit large enough for every listing the checks make.
pub(crate) const ALL: u64 = 100_000;

/// Shortens long text for a message (on a char boundary).
pub(crate) fn short(s: &str) -> String {
    const MAX: usize = 300;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &s[..end], s.len())
}

/// `Debug`, shortened.
pub(crate) fn dbg<T: Debug + ?Sized>(v: &T) -> String {
    short(&format!("{v:?}"))
}

/// `"Thing 1234… (class City, label x)"`.
pub(crate) fn describe(o: &StoredObject) -> String {
    let label = o
        .properties()
        .get("label")
        .and_then(Value::as_str)
        .map(|l| format!(", label {l:?}"))
        .unwrap_or_default();
    format!(
        "{:?} {} (class {:?}{label})",
        o.kind,
        o.id,
        o.class.as_str()
    )
}

/// The `label` property the checks give their objects, or the id when there is none.
pub(crate) fn label(o: &StoredObject) -> String {
    o.properties()
        .get("label")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| o.id.to_string())
}

/// Labels of a page, in order.
pub(crate) fn labels(objects: &[StoredObject]) -> Vec<String> {
    objects.iter().map(label).collect()
}

/// A new object with a random id, created and updated at `created_ms`.
pub(crate) fn object(
    kind: ObjectKind,
    class: &str,
    owner: Id,
    created_ms: i64,
    properties: Value,
) -> StoredObject {
    StoredObject {
        kind,
        id: Id::random(),
        class: class.into(),
        context: RString::new(),
        owner,
        created_ms,
        updated_ms: created_ms,
        properties_json: properties.to_string().into(),
    }
}

/// A Thing owned by `OWNER_A` with a `label` property added to `properties`.
pub(crate) fn labelled(
    kind: ObjectKind,
    class: &str,
    label: &str,
    created_ms: i64,
    properties: Value,
) -> StoredObject {
    let mut props = match properties {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        other => panic!("kit bug: properties must be an object, got {other}"),
    };
    props.insert("label".into(), Value::String(label.into()));
    object(kind, class, OWNER_A, created_ms, Value::Object(props))
}

/// The same object with other properties and a later update time.
pub(crate) fn with_properties(
    o: &StoredObject,
    updated_ms: i64,
    properties: Value,
) -> StoredObject {
    StoredObject {
        updated_ms,
        properties_json: properties.to_string().into(),
        ..o.clone()
    }
}

/// A local reference to `o`.
pub(crate) fn cref(o: &StoredObject) -> Value {
    json!({"$cref": o.id.to_string(), "locationUrl": "http://localhost/", "type": o.kind.as_str()})
}

/// Every object of `kind`, first `ALL`.
pub(crate) fn query(kind: ObjectKind) -> ObjectQuery {
    ObjectQuery::all(kind, ALL)
}

/// A query of Things of `class` with a filter.
pub(crate) fn filtered(class: &str, filter: &Value) -> ObjectQuery {
    ObjectQuery {
        class: class.into(),
        filter_json: filter.to_string().into(),
        ..query(ObjectKind::Thing)
    }
}

/// `objects` as the contract orders a listing: newest first, ties by id descending.
pub(crate) fn newest_first(objects: &[StoredObject]) -> Vec<StoredObject> {
    let mut v = objects.to_vec();
    v.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(b.id.cmp(&a.id)));
    v
}

/// A key with every field set.
pub(crate) fn key(parent: Option<Id>, created_ms: i64, email: &str) -> StoredKey {
    StoredKey {
        id: Id::random(),
        parent: parent.into(),
        token_hash: format!("sha256:{}", Id::random()).into(),
        email: email.into(),
        ip_origin: RVec::from(vec![RString::from("127.0.0.0/8"), RString::from("::1/128")]),
        expires_ms: -1,
        read: true,
        write: true,
        delete: false,
        execute: true,
        created_ms,
    }
}

/// Relative equality for floats computed in different orders.
pub(crate) fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Prints that a check is skipped because the subject lacks a capability. Answers whether the
/// check should go on.
pub(crate) fn requires(s: &Subject, capability: Capabilities, check: &str) -> bool {
    if s.has(capability) {
        return true;
    }
    let names = capability.names().join(" + ");
    eprintln!(
        "note: {check} skipped: connector {:?} does not declare {names}; check_capability_* verifies \
         that the operation answers Unsupported instead",
        s.name
    );
    false
}

/// A fresh connector of the subject, with calls that fail the check with clear messages.
pub(crate) struct Conn<'s> {
    pub(crate) s: &'s Subject,
    pub(crate) c: ConnectorBox,
    /// Its versioned writes over the same instance (`None` for a plugin built before 1.2).
    pub(crate) v: Option<ObjectVersionsBox>,
    /// Its maintenance calls (`None` for a plugin built before 1.3).
    pub(crate) m: Option<weft_plugin_api::MaintenanceBox>,
    /// Its export and import calls (`None` for a plugin built before 1.4).
    pub(crate) g: Option<weft_plugin_api::MigrationBox>,
    /// Its vectors (`None` for a plugin built before 1.5).
    pub(crate) x: Option<weft_plugin_api::VectorsBox>,
}

/// `if !cond { c.fail(format!(…)) }`.
macro_rules! ensure {
    ($c:expr, $cond:expr, $($arg:tt)+) => {
        if !$cond {
            $c.fail(format!($($arg)+));
        }
    };
}
pub(crate) use ensure;

impl<'s> Conn<'s> {
    /// A fresh, empty connector.
    pub(crate) fn new(s: &'s Subject) -> Self {
        let opened = s.open();
        Conn {
            s,
            c: opened.connector,
            v: opened.versions,
            m: opened.maintenance,
            g: opened.migration,
            x: opened.vectors,
        }
    }

    /// Fails the check, naming the connector.
    pub(crate) fn fail(&self, message: impl Display) -> ! {
        panic!("connector {:?}: {message}", self.s.name)
    }

    /// The value of a call that must succeed.
    pub(crate) fn ok<T>(&self, what: &str, r: PluginResult<T>) -> T {
        match r {
            Ok(v) => v,
            Err(e) => self.fail(format!(
                "{what} failed with {:?} ({}), but it should succeed",
                e.kind, e.message
            )),
        }
    }

    /// A call that must fail with `want`; `rule` says why.
    pub(crate) fn expect_err<T: Debug>(
        &self,
        what: &str,
        r: PluginResult<T>,
        want: ErrorKind,
        rule: &str,
    ) {
        match r {
            Err(e) if e.kind == want => {}
            Err(e) => self.fail(format!(
                "{what}: expected error kind {want:?} ({rule}), got {:?}: {}",
                e.kind, e.message
            )),
            Ok(v) => self.fail(format!(
                "{what}: expected error kind {want:?} ({rule}), but it succeeded and answered {}",
                dbg(&v)
            )),
        }
    }

    /// `got == want`, or fail with both.
    pub(crate) fn same<T: PartialEq + Debug>(&self, what: &str, got: &T, want: &T) {
        if got != want {
            self.fail(format!("{what}: expected {}, got {}", dbg(want), dbg(got)));
        }
    }

    // ----- objects -----

    pub(crate) async fn try_create(&self, o: &StoredObject) -> PluginResult<()> {
        self.c.create_object(o.clone()).await.into_result()
    }
    pub(crate) async fn create(&self, o: &StoredObject) {
        let r = self.try_create(o).await;
        self.ok(&format!("create_object({})", describe(o)), r)
    }
    pub(crate) async fn create_all(&self, objects: &[StoredObject]) {
        for o in objects {
            self.create(o).await;
        }
    }
    pub(crate) async fn try_get(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> PluginResult<Option<StoredObject>> {
        self.c
            .get_object(kind, id)
            .await
            .into_result()
            .map(ROption::into_option)
    }
    pub(crate) async fn get(&self, kind: ObjectKind, id: Id) -> Option<StoredObject> {
        let r = self.try_get(kind, id).await;
        self.ok(&format!("get_object({kind:?} {id})"), r)
    }
    /// `get_object` of an object that must exist and equal `want`.
    pub(crate) async fn get_same(&self, what: &str, want: &StoredObject) {
        match self.get(want.kind, want.id).await {
            Some(got) => self.same_object(what, want, &got),
            None => self.fail(format!(
                "{what}: get_object({}) answered None, but the object should exist",
                describe(want)
            )),
        }
    }
    /// `get_object` that must answer `None`.
    pub(crate) async fn get_none(&self, what: &str, kind: ObjectKind, id: Id) {
        if let Some(o) = self.get(kind, id).await {
            self.fail(format!(
                "{what}: get_object({kind:?} {id}) should answer None, got {}",
                describe(&o)
            ));
        }
    }
    pub(crate) async fn get_many(&self, kind: ObjectKind, ids: &[Id]) -> Vec<Option<StoredObject>> {
        let r = self
            .c
            .get_objects(kind, ids.to_vec().into())
            .await
            .into_result()
            .map(|v| v.into_iter().map(ROption::into_option).collect());
        self.ok(&format!("get_objects({kind:?}, {} ids)", ids.len()), r)
    }
    pub(crate) async fn try_query(&self, q: &ObjectQuery) -> PluginResult<ObjectPage> {
        self.c.query_objects(q.clone()).await.into_result()
    }
    pub(crate) async fn query(&self, q: &ObjectQuery) -> ObjectPage {
        let r = self.try_query(q).await;
        self.ok(&format!("query_objects({})", describe_query(q)), r)
    }
    pub(crate) async fn try_update(&self, o: &StoredObject) -> PluginResult<()> {
        self.c.update_object(o.clone()).await.into_result()
    }
    pub(crate) async fn update(&self, o: &StoredObject) {
        let r = self.try_update(o).await;
        self.ok(&format!("update_object({})", describe(o)), r)
    }
    pub(crate) async fn try_delete(&self, kind: ObjectKind, id: Id) -> PluginResult<()> {
        self.c.delete_object(kind, id).await.into_result()
    }
    pub(crate) async fn delete(&self, o: &StoredObject) {
        let r = self.try_delete(o.kind, o.id).await;
        self.ok(&format!("delete_object({})", describe(o)), r)
    }
    pub(crate) async fn try_history(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> PluginResult<ObjectHistory> {
        self.c.object_history(kind, id).await.into_result()
    }
    pub(crate) async fn history(&self, o: &StoredObject) -> ObjectHistory {
        let r = self.try_history(o.kind, o.id).await;
        self.ok(&format!("object_history({})", describe(o)), r)
    }
    pub(crate) async fn try_aggregate(
        &self,
        q: &ObjectQuery,
        request: &Value,
    ) -> PluginResult<String> {
        self.c
            .aggregate(q.clone(), request.to_string().into())
            .await
            .into_result()
            .map(RString::into_string)
    }

    // ----- versioned writes -----

    /// The versioned-writes object, which a connector declaring `VERSIONED_WRITES` must have.
    pub(crate) fn versions(&self) -> &ObjectVersionsBox {
        match &self.v {
            Some(v) => v,
            None => self.fail(
                "declares VERSIONED_WRITES, but opening it gave no versioned-writes object (its \
                 root module has no new_connector_parts: was it built against weft-plugin-api \
                 older than 1.2?)",
            ),
        }
    }
    pub(crate) async fn try_get_versioned(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> PluginResult<Option<VersionedObject>> {
        self.versions()
            .get_object_versioned(kind, id)
            .await
            .into_result()
            .map(ROption::into_option)
    }
    pub(crate) async fn get_versioned(&self, kind: ObjectKind, id: Id) -> Option<VersionedObject> {
        let r = self.try_get_versioned(kind, id).await;
        self.ok(&format!("get_object_versioned({kind:?} {id})"), r)
    }
    /// `get_object_versioned` of an object that must exist.
    pub(crate) async fn current_version(&self, o: &StoredObject) -> VersionedObject {
        match self.get_versioned(o.kind, o.id).await {
            Some(v) => v,
            None => self.fail(format!(
                "get_object_versioned({}) answered None, but the object exists",
                describe(o)
            )),
        }
    }
    pub(crate) async fn try_update_if(&self, o: &StoredObject, expected: u64) -> PluginResult<u64> {
        self.versions()
            .update_object_if(o.clone(), expected)
            .await
            .into_result()
    }
    pub(crate) async fn update_if(&self, o: &StoredObject, expected: u64) -> u64 {
        let r = self.try_update_if(o, expected).await;
        self.ok(
            &format!(
                "update_object_if({}, expected version {expected})",
                describe(o)
            ),
            r,
        )
    }

    // ----- keys -----

    pub(crate) async fn try_add_key(&self, k: &StoredKey) -> PluginResult<()> {
        self.c.add_key(k.clone()).await.into_result()
    }
    pub(crate) async fn add_key(&self, k: &StoredKey) {
        let r = self.try_add_key(k).await;
        self.ok(&format!("add_key({})", describe_key(k)), r)
    }
    pub(crate) async fn get_key(&self, id: Id) -> Option<StoredKey> {
        let r = self
            .c
            .get_key(id)
            .await
            .into_result()
            .map(ROption::into_option);
        self.ok(&format!("get_key({id})"), r)
    }
    pub(crate) async fn try_children(&self, id: Id) -> PluginResult<Vec<StoredKey>> {
        self.c
            .key_children(id)
            .await
            .into_result()
            .map(RVec::into_vec)
    }
    pub(crate) async fn children(&self, id: Id) -> Vec<StoredKey> {
        let r = self.try_children(id).await;
        self.ok(&format!("key_children({id})"), r)
    }
    pub(crate) async fn root_keys(&self) -> Vec<StoredKey> {
        let r = self.c.root_keys().await.into_result().map(RVec::into_vec);
        self.ok("root_keys()", r)
    }
    pub(crate) async fn try_update_key(&self, k: &StoredKey) -> PluginResult<()> {
        self.c.update_key(k.clone()).await.into_result()
    }
    pub(crate) async fn try_delete_key(&self, id: Id) -> PluginResult<Vec<Id>> {
        self.c
            .delete_key(id)
            .await
            .into_result()
            .map(RVec::into_vec)
    }

    // ----- documents -----

    pub(crate) async fn get_document(&self, d: DocumentName) -> VersionedDocument {
        let r = self.c.get_document(d).await.into_result();
        self.ok(&format!("get_document({d:?})"), r)
    }
    pub(crate) async fn try_put_document(
        &self,
        d: DocumentName,
        json: &str,
        expected: u64,
    ) -> PluginResult<u64> {
        self.c
            .put_document(d, json.into(), expected)
            .await
            .into_result()
    }

    // ----- comparisons -----

    /// Fails when `got` differs from `want` in any field, listing the fields.
    pub(crate) fn same_object(&self, what: &str, want: &StoredObject, got: &StoredObject) {
        let diffs = object_diffs(want, got);
        if !diffs.is_empty() {
            self.fail(format!(
                "{what}: the object read back differs from the one written, {}:\n  {}",
                describe(want),
                diffs.join("\n  ")
            ));
        }
    }

    /// Fails when `got` differs from `want` in any field, listing the fields.
    pub(crate) fn same_key(&self, what: &str, want: &StoredKey, got: &StoredKey) {
        let mut d = vec![];
        macro_rules! field {
            ($f:ident) => {
                if want.$f != got.$f {
                    d.push(format!(
                        "{}: expected {}, got {}",
                        stringify!($f),
                        dbg(&want.$f),
                        dbg(&got.$f)
                    ));
                }
            };
        }
        field!(id);
        field!(parent);
        field!(token_hash);
        field!(email);
        field!(ip_origin);
        field!(expires_ms);
        field!(read);
        field!(write);
        field!(delete);
        field!(execute);
        field!(created_ms);
        if !d.is_empty() {
            self.fail(format!(
                "{what}: the key read back differs from the one written, key {}:\n  {}",
                want.id,
                d.join("\n  ")
            ));
        }
    }

    /// The labels of a listing must be `want` (in order) and its total `total`.
    pub(crate) fn same_page(&self, what: &str, page: &ObjectPage, want: &[String], total: u64) {
        let got = labels(&page.objects);
        if got == want && page.total == total {
            return;
        }
        if want.len() <= 20 && got.len() <= 20 {
            self.fail(format!(
                "{what}: expected objects {want:?} with total {total}, got {got:?} with total {}",
                page.total
            ));
        }
        let at = want.iter().zip(&got).position(|(w, g)| w != g);
        let diff = match at {
            Some(i) => format!(
                "first difference at position {i}: expected {:?}, got {:?}",
                want[i], got[i]
            ),
            None => "one list is a prefix of the other".into(),
        };
        self.fail(format!(
            "{what}: expected {} objects with total {total}, got {} objects with total {}; {diff}; \
             expected {}, got {}",
            want.len(),
            got.len(),
            page.total,
            short(&format!("{want:?}")),
            short(&format!("{got:?}"))
        ));
    }
}

/// The fields in which two objects differ (properties compared as JSON).
pub(crate) fn object_diffs(want: &StoredObject, got: &StoredObject) -> Vec<String> {
    let mut d = vec![];
    macro_rules! field {
        ($f:ident) => {
            if want.$f != got.$f {
                d.push(format!(
                    "{}: expected {}, got {}",
                    stringify!($f),
                    dbg(&want.$f),
                    dbg(&got.$f)
                ));
            }
        };
    }
    field!(kind);
    field!(id);
    field!(class);
    field!(context);
    field!(owner);
    field!(created_ms);
    field!(updated_ms);
    let wanted: Value = serde_json::from_str(&want.properties_json).expect("kit bug: bad JSON");
    match serde_json::from_str::<Value>(&got.properties_json) {
        Err(e) => d.push(format!(
            "properties_json: not valid JSON ({e}): {}",
            short(&got.properties_json)
        )),
        Ok(got_v) if got_v != wanted => match (&wanted, &got_v) {
            (Value::Object(w), Value::Object(g)) => {
                let names: BTreeSet<&String> = w.keys().chain(g.keys()).collect();
                for n in names {
                    match (w.get(n), g.get(n)) {
                        (Some(a), Some(b)) if a == b => {}
                        (Some(a), Some(b)) => d.push(format!(
                            "property {n:?}: expected {}, got {}",
                            short(&a.to_string()),
                            short(&b.to_string())
                        )),
                        (Some(a), None) => d.push(format!(
                            "property {n:?} is missing (expected {})",
                            short(&a.to_string())
                        )),
                        (None, Some(b)) => d.push(format!(
                            "property {n:?} was not written but reads as {}",
                            short(&b.to_string())
                        )),
                        (None, None) => {}
                    }
                }
            }
            _ => d.push(format!(
                "properties_json: expected {}, got {}",
                short(&want.properties_json),
                short(&got.properties_json)
            )),
        },
        Ok(_) => {}
    }
    d
}

/// A query in words, for messages.
pub(crate) fn describe_query(q: &ObjectQuery) -> String {
    let mut parts = vec![format!("{:?}s", q.kind)];
    if !q.class.is_empty() {
        parts.push(format!("class {:?}", q.class.as_str()));
    }
    if !q.owners.is_empty() {
        parts.push(format!("owners {:?}", q.owners.as_slice()));
    }
    if !q.filter_json.is_empty() {
        parts.push(format!("filter {}", short(&q.filter_json)));
    }
    parts.push(format!("offset {}", q.offset));
    parts.push(format!("limit {}", q.limit));
    parts.join(", ")
}

/// `"key 1234… (parent …)"`.
pub(crate) fn describe_key(k: &StoredKey) -> String {
    match k.parent {
        ROption::RSome(p) => format!("key {} (parent {p})", k.id),
        ROption::RNone => format!("key {} (root)", k.id),
    }
}
