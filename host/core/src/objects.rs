//! The object service: create, read, list, replace, patch, delete, history, references and
//! batches of Things and Actions, on a neutral [`ObjectView`].
//!
//! Writes never lose data:
//! * every read-modify-write (PUT, PATCH, the three reference operations) reads the object with
//!   its version and stores with compare-and-set, retrying a bounded number of times when
//!   another writer moved it (409 only when contention persists); with a connector that keeps no
//!   versions, this host holds the object's lock from the read to the write instead;
//! * an object is validated and stored while holding the schema gate shared, so no schema change
//!   of this host interleaves; and after storing, the ontology version it was validated against is
//!   compared with the current one: when another host changed the schema meanwhile and the object
//!   no longer fits, the write is undone and answered 409.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use serde_json::{Map, Value};
use weft_plugin_api::{now_ms, ErrorKind as PErr, Id, ObjectKind, ObjectQuery, StoredObject};

use crate::access::Visibility;
use crate::core::{Core, MAX_ATTEMPTS};
use crate::handles::ConnectorHandle;
use crate::keys::Principal;
use crate::ontology::{kind_word, parse_reference, Ontology};
use crate::{Error, Result};

/// The fields a client sends for an object.
#[derive(Debug, Clone, Default)]
pub struct ObjectBody {
    /// `@context`.
    pub context: Option<String>,
    /// `@class`.
    pub class: Option<String>,
    /// `schema`.
    pub schema: Option<Map<String, Value>>,
}

/// A stored object, as the front ends present it.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectView {
    /// Id.
    pub id: Id,
    /// `@context`.
    pub context: String,
    /// `@class`.
    pub class: String,
    /// `schema`.
    pub schema: Map<String, Value>,
    /// Owning key.
    pub owner: Id,
    /// Creation time (ms).
    pub created: i64,
    /// Last update (ms).
    pub updated: i64,
}

impl ObjectView {
    /// From the connector's envelope.
    pub fn from_stored(o: &StoredObject) -> Self {
        ObjectView {
            id: o.id,
            context: o.context.to_string(),
            class: o.class.to_string(),
            schema: o.properties(),
            owner: o.owner,
            created: o.created_ms,
            updated: o.updated_ms,
        }
    }
}

/// One earlier version.
#[derive(Debug, Clone)]
pub struct VersionView {
    /// The object as it was.
    pub object: ObjectView,
    /// When it was replaced (ms).
    pub archived: i64,
}

/// A history.
#[derive(Debug, Clone)]
pub struct HistoryView {
    /// Id.
    pub id: Id,
    /// Owning key.
    pub owner: Id,
    /// Deleted?
    pub deleted: bool,
    /// Versions, newest first.
    pub versions: Vec<VersionView>,
}

/// A change to a reference property.
#[derive(Debug, Clone)]
pub enum RefChange {
    /// POST: add one (a `SingleRef` as JSON).
    Add(Value),
    /// PUT: replace all.
    ReplaceAll(Vec<Value>),
    /// DELETE: remove the reference to this id.
    Remove(Id),
}

/// What a read-modify-write does to the object it read.
enum Change<'a> {
    Replace(ObjectBody),
    Patch {
        patch: Value,
        id_field: &'a str,
    },
    References {
        property: &'a str,
        change: RefChange,
    },
}

/// Writes of one batch in flight at once. A group-committing store (embedded) makes one
/// transaction, and one fsync, of whatever writes are waiting, so this bounds its group size:
/// measured on 2 cores, 64 gave ~24,000 things/s through `/batching/things`, 256 ~36,000 and
/// 1,024 ~60,000. Remote stores queue them on their connections.
const BATCH_WRITES_IN_FLIGHT: usize = 1024;

fn not_found(kind: ObjectKind, id: Id) -> Error {
    Error::not_found(format!("there is no {} with id {id}", kind_word(kind)))
}

/// A short pause before retrying a compare-and-set, growing with the attempt, jittered so
/// that contending writers spread out.
async fn backoff(attempt: u32) {
    let jitter = (Id::random().0[0] as u64) * 4; // 0..1020 µs
    let micros = 200 * u64::from(attempt.min(20)) + jitter;
    tokio::time::sleep(Duration::from_micros(micros)).await;
}

impl Core {
    /// Validates a body against the ontology and checks its local references: each must point
    /// to an object that exists, that the caller may see and whose class the property allows.
    /// A reference to an object the caller may not see is refused exactly like one to a missing
    /// object. Answers class, context and properties.
    async fn check_body(
        &self,
        kind: ObjectKind,
        body: &ObjectBody,
        ontology: &Ontology,
        vis: &Visibility,
    ) -> Result<(String, String, Map<String, Value>)> {
        let class = body
            .class
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                Error::unprocessable(format!(
                    "the {} has no \"@class\"; name one of the {} classes of the schema",
                    kind_word(kind),
                    kind_word(kind)
                ))
            })?;
        let context = body.context.clone().ok_or_else(|| {
            Error::unprocessable(format!(
                "the {} has no \"@context\"; give the URL of its context (may be \"\")",
                kind_word(kind)
            ))
        })?;
        let props: Map<String, Value> = body.schema.clone().unwrap_or_default();
        let refs = ontology
            .validate_object(kind, &class, &props)
            .map_err(Error::unprocessable)?;
        for r in refs {
            if !self.check_location(&r.property, &r.reference.location_url)? {
                continue; // a known peer's object: the network resolves it
            }
            let Some(target_kind) = r.reference.kind else {
                return Err(Error::unprocessable(format!(
                    "property {:?} refers to a key; it must refer to a {}",
                    r.property,
                    r.allowed_classes.join(" or ")
                )));
            };
            let target = self
                .conn
                .get_object(target_kind, r.reference.id)
                .await?
                .filter(|t| vis.sees(t.owner));
            let Some(target) = target else {
                return Err(Error::unprocessable(format!(
                    "property {:?} refers to {} {} which does not exist; create it first or fix the $cref",
                    r.property,
                    kind_word(target_kind),
                    r.reference.id
                )));
            };
            if !r.allowed_classes.iter().any(|c| c == target.class.as_str()) {
                return Err(Error::unprocessable(format!(
                    "property {:?} may refer to {} but {} is a {}",
                    r.property,
                    r.allowed_classes.join(" or "),
                    r.reference.id,
                    target.class
                )));
            }
        }
        Ok((class, context, props))
    }

    async fn get_visible(&self, p: &Principal, kind: ObjectKind, id: Id) -> Result<StoredObject> {
        let o = self
            .conn
            .get_object(kind, id)
            .await?
            .ok_or_else(|| not_found(kind, id))?;
        self.check_owner(p, o.owner).await?;
        Ok(o)
    }

    /// After a write validated against ontology `version`: when the ontology has changed since
    /// (another host sharing the store), checks the stored object against the current one and,
    /// when it no longer fits, undoes the write with `undo` and answers 409.
    async fn recheck_after_store(
        &self,
        kind: ObjectKind,
        stored: &StoredObject,
        version: u64,
        undo: Undo,
    ) -> Result<()> {
        let (now, ontology) = self.ontology_versioned().await?;
        self.recheck_against(kind, stored, version, (now, &ontology), undo)
            .await
    }

    /// [`Self::recheck_after_store`] with the ontology already read (`now`: its version and
    /// itself): one read serves every object of a batch.
    async fn recheck_against(
        &self,
        kind: ObjectKind,
        stored: &StoredObject,
        version: u64,
        now: (u64, &Ontology),
        undo: Undo,
    ) -> Result<()> {
        let (now, ontology) = now;
        if now == version {
            return Ok(());
        }
        let Err(why) = ontology.validate_object(kind, &stored.class, &stored.properties()) else {
            return Ok(());
        };
        let undone = match undo {
            Undo::Delete => self.conn.delete_object(kind, stored.id).await,
            Undo::Restore(old) => {
                // The old version goes back with its own vector.
                let vector = self
                    .vector_for(ontology, kind, &old.class, &old.properties())
                    .unwrap_or(None);
                self.conn.update_object_with(old, vector).await
            }
        };
        if let Err(e) = undone {
            tracing::error!(
                "{} {} no longer fits the schema ({why}) and could not be undone: {e}",
                kind_word(kind),
                stored.id
            );
        }
        Err(Error::conflict(format!(
            "the schema changed while this {} was being stored ({why}); the write was undone: send it again against the current schema",
            kind_word(kind)
        )))
    }

    /// `POST /{things,actions}/validate`: as a create would check it, for this caller.
    pub async fn validate_object(
        &self,
        p: &Principal,
        kind: ObjectKind,
        body: ObjectBody,
    ) -> Result<()> {
        let ontology = self.ontology().await?;
        let vis = self.visibility(p).await?;
        self.check_body(kind, &body, &ontology, &vis)
            .await
            .map(|_| ())
    }

    /// `POST /{things,actions}`: validates, then stores (or, when `is_async`, answers first
    /// and stores in the background; such a write is drained at shutdown).
    pub async fn create_object(
        &self,
        p: &Principal,
        kind: ObjectKind,
        body: ObjectBody,
        is_async: bool,
    ) -> Result<ObjectView> {
        let mut out = self.batch_create(p, kind, vec![body], is_async).await?;
        out.pop()
            .unwrap_or_else(|| Err(Error::internal("a create answered nothing")))
    }

    /// `POST /batching/{things,actions}`: each item on its own, answers in request order; the
    /// ontology and the caller's visibility are read once for the whole batch.
    pub async fn batch_create(
        &self,
        p: &Principal,
        kind: ObjectKind,
        bodies: Vec<ObjectBody>,
        is_async: bool,
    ) -> Result<Vec<Result<ObjectView>>> {
        crate::Limits::check(
            "the batch's number of items",
            "max_batch_items",
            bodies.len(),
            self.limits.max_batch_items,
        )?;
        // Room in the async backlog for every object of the request, before any work: a
        // request that does not fit is refused whole (nothing of it accepted).
        let mut permit = if is_async {
            Some(
                self.backlog
                    .reserve(bodies.len(), self.limits.max_async_backlog)?,
            )
        } else {
            None
        };
        let gate = self.gate.clone().read_owned().await;
        let (version, ontology) = self.ontology_versioned().await?;
        let vis = self.visibility(p).await?;
        let mut out = Vec::with_capacity(bodies.len());
        let mut accepted = vec![];
        let mut pending = vec![];
        for b in bodies {
            let checked = self.check_body(kind, &b, &ontology, &vis).await;
            let (class, context, props) = match checked {
                Ok(c) => c,
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            };
            // The object's vector, where the connector keeps vectors.
            let vector = match self.vector_for(&ontology, kind, &class, &props) {
                Ok(v) => v,
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            };
            // The creation time is the id's: "newer" is "larger id" (`time_ordered_id`).
            let (id, now) = crate::time_ordered_id();
            let stored = StoredObject {
                kind,
                id,
                class: class.into(),
                context: context.into(),
                owner: p.id(),
                created_ms: now,
                updated_ms: now,
                properties_json: Value::Object(props).to_string().into(),
            };
            let view = ObjectView::from_stored(&stored);
            if is_async {
                accepted.push((stored, vector));
                out.push(Ok(view));
                continue;
            }
            // Stored below, many at once (a connector can commit them together).
            pending.push((out.len(), stored, view, vector));
            out.push(Err(Error::internal("not stored yet")));
        }
        // The items of a batch are independent: their writes go to the connector concurrently
        // (bounded), so a persistent connector can group-commit them instead of syncing once per
        // item. Answers keep the request's order.
        let written: Vec<(usize, StoredObject, ObjectView, Result<()>)> =
            futures::stream::iter(pending)
                .map(|(i, stored, view, vector)| async move {
                    let r = self.conn.create_object_with(stored.clone(), vector).await;
                    (i, stored, view, r.map_err(Error::from))
                })
                .buffer_unordered(BATCH_WRITES_IN_FLIGHT)
                .collect()
                .await;
        // Whether the schema changed meanwhile (another host sharing the store) is read once,
        // after every write of the batch is stored, not once per item.
        let (now, current) = self.ontology_versioned().await?;
        for (i, stored, view, r) in written {
            out[i] = match r {
                Ok(()) => self
                    .recheck_against(kind, &stored, version, (now, &current), Undo::Delete)
                    .await
                    .map(|_| view),
                Err(e) => Err(e),
            };
        }
        // The request's hold on the gate ends here; the background writes take it per group.
        drop(gate);
        if let Some(mut permit) = permit.take() {
            // Items that failed validation take no room.
            permit.release(permit.held() - accepted.len());
            if !accepted.is_empty() {
                self.background.spawn(write_in_background(
                    self.conn.clone(),
                    self.gate.clone(),
                    kind,
                    accepted,
                    (version, ontology),
                    permit,
                ));
            }
        }
        Ok(out)
    }

    /// `GET /{things,actions}/{id}`.
    pub async fn get_object(&self, p: &Principal, kind: ObjectKind, id: Id) -> Result<ObjectView> {
        Ok(ObjectView::from_stored(
            &self.get_visible(p, kind, id).await?,
        ))
    }

    /// `GET /{things,actions}`: newest first; `page` starts at 1; `max_results` is capped at
    /// the configured `limit`.
    pub async fn list_objects(
        &self,
        p: &Principal,
        kind: ObjectKind,
        max_results: Option<i64>,
        page: Option<i64>,
    ) -> Result<(Vec<ObjectView>, u64)> {
        let limit = match max_results {
            None => self.limit,
            Some(n) if n < 0 => {
                return Err(Error::unprocessable(format!(
                    "maxResults {n} is negative; give a number from 0 to {}",
                    self.limit
                )))
            }
            Some(n) => (n as u64).min(self.limit),
        };
        let page = match page {
            None => 1,
            Some(n) if n < 1 => {
                return Err(Error::unprocessable(format!(
                    "page {n} does not exist; pages start at 1"
                )))
            }
            Some(n) => n as u64,
        };
        let mut q = ObjectQuery::all(kind, limit);
        q.offset = (page - 1).saturating_mul(limit);
        self.visibility(p).await?.restrict(&mut q);
        let r = self.conn.query_objects(q).await?;
        Ok((
            r.objects.iter().map(ObjectView::from_stored).collect(),
            r.total,
        ))
    }

    /// The body `change` makes of `old`.
    fn apply(
        &self,
        change: &Change<'_>,
        kind: ObjectKind,
        old: &StoredObject,
        ontology: &Ontology,
    ) -> Result<ObjectBody> {
        match change {
            Change::Replace(body) => Ok(body.clone()),
            Change::Patch { patch, id_field } => apply_patch(kind, old, patch, id_field),
            Change::References { property, change } => {
                self.apply_references(kind, old, ontology, property, change)
            }
        }
    }

    /// Reads the object, makes the new version with `change`, validates it and stores it with
    /// compare-and-set; retries while other writers move the object.
    async fn modify(
        &self,
        p: &Principal,
        kind: ObjectKind,
        id: Id,
        change: Change<'_>,
    ) -> Result<StoredObject> {
        let _gate = self.gate.read().await;
        let _lock = self.conn.object_lock(kind, id).await;
        let vis = self.visibility(p).await?;
        for attempt in 0..MAX_ATTEMPTS {
            let current = self
                .conn
                .get_object_versioned(kind, id)
                .await?
                .ok_or_else(|| not_found(kind, id))?;
            let old = current.object;
            self.check_owner(p, old.owner).await?;
            let (version, ontology) = self.ontology_versioned().await?;
            let body = self.apply(&change, kind, &old, &ontology)?;
            let (class, context, props) = self.check_body(kind, &body, &ontology, &vis).await?;
            let vector = self.vector_for(&ontology, kind, &class, &props)?;
            let new = StoredObject {
                class: class.into(),
                context: context.into(),
                updated_ms: now_ms().max(old.updated_ms),
                properties_json: Value::Object(props).to_string().into(),
                ..old.clone()
            };
            match self
                .conn
                .update_object_if_with(new.clone(), current.version, vector)
                .await
            {
                Ok(()) => {
                    self.recheck_after_store(kind, &new, version, Undo::Restore(old))
                        .await?;
                    return Ok(new);
                }
                Err(e) if e.kind == PErr::Conflict && self.cas() => backoff(attempt).await,
                Err(e) if e.kind == PErr::NotFound => return Err(not_found(kind, id)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::conflict(format!(
            "{} {id} kept changing under this request ({MAX_ATTEMPTS} attempts, other writers won each time); try again",
            kind_word(kind)
        )))
    }

    /// `PUT /{things,actions}/{id}`: full replace (owner and creation time kept).
    pub async fn replace_object(
        &self,
        p: &Principal,
        kind: ObjectKind,
        id: Id,
        body: ObjectBody,
    ) -> Result<ObjectView> {
        let new = self.modify(p, kind, id, Change::Replace(body)).await?;
        Ok(ObjectView::from_stored(&new))
    }

    /// `PATCH /{things,actions}/{id}`: a JSON Patch applied to the object as GET shows it
    /// (`@context`, `@class`, `schema`, `key`, ids and times); the result is validated again.
    pub async fn patch_object(
        &self,
        p: &Principal,
        kind: ObjectKind,
        id: Id,
        patch: Value,
        id_field: &str,
    ) -> Result<ObjectView> {
        let new = self
            .modify(p, kind, id, Change::Patch { patch, id_field })
            .await?;
        Ok(ObjectView::from_stored(&new))
    }

    /// The three reference sub-resources.
    pub async fn change_references(
        &self,
        p: &Principal,
        kind: ObjectKind,
        id: Id,
        property: &str,
        change: RefChange,
    ) -> Result<()> {
        self.modify(p, kind, id, Change::References { property, change })
            .await
            .map(drop)
    }

    /// `DELETE /{things,actions}/{id}`.
    pub async fn delete_object(&self, p: &Principal, kind: ObjectKind, id: Id) -> Result<()> {
        let _lock = self.conn.object_lock(kind, id).await;
        self.get_visible(p, kind, id).await?;
        self.conn.delete_object(kind, id).await?;
        Ok(())
    }

    /// `GET /{things,actions}/{id}/history`: also for deleted objects.
    pub async fn object_history(
        &self,
        p: &Principal,
        kind: ObjectKind,
        id: Id,
    ) -> Result<HistoryView> {
        let h = self
            .conn
            .object_history(kind, id)
            .await
            .map_err(|e| match e.kind {
                PErr::NotFound => not_found(kind, id),
                _ => e.into(),
            })?;
        let owner = match self.conn.get_object(kind, id).await? {
            Some(o) => o.owner,
            None => h
                .versions
                .first()
                .map(|v| v.object.owner)
                .ok_or_else(|| not_found(kind, id))?,
        };
        self.check_owner(p, owner).await?;
        Ok(HistoryView {
            id,
            owner,
            deleted: h.deleted,
            versions: h
                .versions
                .iter()
                .map(|v| VersionView {
                    object: ObjectView::from_stored(&v.object),
                    archived: v.archived_ms,
                })
                .collect(),
        })
    }

    /// The reference property `name` of the object, or 422 naming what is wrong.
    fn reference_property(
        &self,
        ontology: &Ontology,
        kind: ObjectKind,
        class: &str,
        name: &str,
    ) -> Result<crate::ontology::Property> {
        let c = ontology.class(kind, class).ok_or_else(|| {
            Error::unprocessable(format!(
                "the object's class {class} is no longer in the schema"
            ))
        })?;
        let p = c
            .properties
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                Error::unprocessable(format!("class {class} has no property {name:?}"))
            })?;
        if !p.is_reference() {
            return Err(Error::unprocessable(format!(
                "property {name:?} of class {class} holds a {}, not references; set it with PUT or PATCH",
                p.data_type.join("")
            )));
        }
        Ok(p.clone())
    }

    fn apply_references(
        &self,
        kind: ObjectKind,
        old: &StoredObject,
        ontology: &Ontology,
        property: &str,
        change: &RefChange,
    ) -> Result<ObjectBody> {
        let prop = self.reference_property(ontology, kind, old.class.as_str(), property)?;
        let mut props = old.properties();
        let mut current: Vec<Value> = match props.get(property) {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(a)) => a.clone(),
            Some(v) => vec![v.clone()],
        };
        match change {
            RefChange::Add(r) => {
                if !prop.is_many() && !current.is_empty() {
                    return Err(Error::unprocessable(format!(
                        "property {property:?} holds at most one reference and has one; replace it with PUT or delete it first"
                    )));
                }
                current.push(r.clone());
            }
            RefChange::ReplaceAll(refs) => current = refs.clone(),
            RefChange::Remove(id) => {
                let before = current.len();
                current.retain(|v| parse_reference(v).map(|x| x.id != *id).unwrap_or(true));
                if current.len() == before {
                    return Err(Error::not_found(format!(
                        "property {property:?} has no reference to {id}"
                    )));
                }
            }
        }
        let value = if prop.is_many() {
            Value::Array(current)
        } else {
            current.pop().unwrap_or(Value::Null)
        };
        if value.is_null() {
            props.remove(property);
        } else {
            props.insert(property.to_string(), value);
        }
        Ok(ObjectBody {
            context: Some(old.context.to_string()),
            class: Some(old.class.to_string()),
            schema: Some(props),
        })
    }
}

/// How to take back a write that no longer fits the schema.
enum Undo {
    Delete,
    Restore(StoredObject),
}

/// The body a JSON Patch makes of `old`, shown to the patch as GET shows it.
fn apply_patch(
    kind: ObjectKind,
    old: &StoredObject,
    patch: &Value,
    id_field: &str,
) -> Result<ObjectBody> {
    let view = ObjectView::from_stored(old);
    let mut doc = serde_json::json!({
        "@context": view.context,
        "@class": view.class,
        "schema": view.schema,
        "key": {
            "$cref": view.owner.to_string(),
            "locationUrl": crate::ontology::LOCALHOST_URL,
            "type": "Key",
        },
        "creationTimeUnix": view.created,
        "lastUpdateTimeUnix": view.updated,
        id_field: view.id.to_string(),
    });
    let before = doc.clone();
    let ops: json_patch::Patch = serde_json::from_value(patch.clone()).map_err(|e| {
        Error::bad_request(format!(
            "the body is not a JSON Patch (RFC 6902): {e}; send e.g. [{{\"op\":\"replace\",\"path\":\"/schema/name\",\"value\":\"Berlin\"}}]"
        ))
    })?;
    // `patch_unsafe`: `doc` is a scratch copy (a refused patch changes nothing stored), and the
    // undoing `patch` panics when it cannot undo a failed operation (json-patch 4.2).
    json_patch::patch_unsafe(&mut doc, &ops).map_err(|e| {
        Error::unprocessable(format!(
            "the patch cannot be applied to this {}: {e}; paths look like /schema/<property> or /@class",
            kind_word(kind)
        ))
    })?;
    for fixed in [id_field, "key", "creationTimeUnix"] {
        if doc.get(fixed) != before.get(fixed) {
            return Err(Error::unprocessable(format!(
                "the patch changes \"{fixed}\", which cannot be changed; patch only @context, @class and schema"
            )));
        }
    }
    let schema = match doc.get("schema") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m.clone()),
        Some(_) => return Err(Error::unprocessable(
            "after the patch, \"schema\" is not an object; it must map property names to values",
        )),
    };
    let text = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_string);
    Ok(ObjectBody {
        context: text("@context"),
        class: text("@class"),
        schema,
    })
}

/// Objects an `async` batch accepted, written in the background a group at a time: each group
/// holds the schema gate (shared) only while it is written, so a schema change waits for one
/// group, not for the whole batch, and ordinary writes queued behind that change wait about
/// one group commit. Before each group the ontology's version is read again; when a schema
/// change came between groups, every item of the group is checked against the new ontology and
/// one that no longer fits is not stored (logged, as any failed background write).
async fn write_in_background(
    conn: ConnectorHandle,
    gate: Arc<tokio::sync::RwLock<()>>,
    kind: ObjectKind,
    accepted: Vec<(StoredObject, Option<Vec<f32>>)>,
    validated: (u64, Arc<Ontology>),
    mut permit: crate::backlog::BacklogPermit,
) {
    let (mut version, mut ontology) = validated;
    let mut items = accepted.into_iter().peekable();
    while items.peek().is_some() {
        let group: Vec<(StoredObject, Option<Vec<f32>>)> =
            items.by_ref().take(ASYNC_GROUP).collect();
        let _gate = gate.read().await;
        match conn.get_document(weft_plugin_api::DocumentName::Ontology).await {
            Ok(doc) if doc.version != version => match Ontology::from_json(&doc.json) {
                Ok(now) => (version, ontology) = (doc.version, Arc::new(now)),
                Err(e) => tracing::error!(
                    "async batch: the stored ontology (version {}) does not parse ({e}); the rest of the batch is checked against version {version}",
                    doc.version
                ),
            },
            Ok(_) => {}
            Err(e) => tracing::warn!(
                "async batch: could not read the ontology's version ({e}); writing against version {version}"
            ),
        }
        let fits = |(o, _): &(StoredObject, Option<Vec<f32>>)| match ontology.validate_object(
            kind,
            &o.class,
            &o.properties(),
        ) {
            Ok(_) => true,
            Err(why) => {
                tracing::error!(
                    "async create of {} {} is not stored: the schema changed before it was written ({why})",
                    kind_word(kind),
                    o.id
                );
                false
            }
        };
        let taken = group.len();
        let group: Vec<(StoredObject, Option<Vec<f32>>)> = group.into_iter().filter(fits).collect();
        futures::stream::iter(group)
            .for_each_concurrent(BATCH_WRITES_IN_FLIGHT, |(stored, vector)| {
                let conn = conn.clone();
                async move {
                    let id = stored.id;
                    if let Err(e) = conn.create_object_with(stored, vector).await {
                        tracing::error!(
                            "async create of {} {id} failed, the object is not stored: {e}",
                            kind_word(kind)
                        );
                    }
                }
            })
            .await;
        // The group is out of the backlog: stored, or failed and logged.
        permit.release(taken);
    }
}

/// How many objects of an `async` batch are written under one hold of the schema gate.
const ASYNC_GROUP: usize = 64;

#[cfg(test)]
mod tests {
    //! Two hosts sharing one store: a schema change made by the other host between a batch's
    //! validation and its writes. The other host is a second [`Core`] on the same connector;
    //! the connector double (dev-memory underneath) lets it act at exactly that moment.

    use std::future::Future;
    use std::sync::{Arc, Mutex, OnceLock};

    use serde_json::json;
    use weft_dev_memory::DevMemory;
    use weft_plugin_api::{
        connector_box, BackupReport, Connector, DocumentName, ObjectHistory, ObjectPage,
        PluginResult, StoredKey, VersionedDocument, VersionedObject,
    };

    use super::*;
    use crate::core::CoreConfig;
    use crate::handles::ConnectorHandle;

    type Hook = Box<dyn FnOnce() -> futures::future::BoxFuture<'static, ()> + Send>;

    /// dev-memory, plus a hook run once, before the first object create reaches the store.
    struct BeforeFirstCreate {
        inner: Arc<DevMemory>,
        hook: Arc<Mutex<Option<Hook>>>,
    }

    impl Connector for BeforeFirstCreate {
        fn create_object(
            &self,
            o: StoredObject,
        ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
            let hook = self.hook.lock().unwrap().take();
            let inner = self.inner.clone();
            async move {
                if let Some(hook) = hook {
                    hook().await;
                }
                inner.create_object(o).await
            }
        }
        fn get_object(
            &self,
            k: ObjectKind,
            id: Id,
        ) -> impl Future<Output = PluginResult<Option<StoredObject>>> + Send + 'static {
            self.inner.get_object(k, id)
        }
        fn get_objects(
            &self,
            k: ObjectKind,
            ids: Vec<Id>,
        ) -> impl Future<Output = PluginResult<Vec<Option<StoredObject>>>> + Send + 'static
        {
            self.inner.get_objects(k, ids)
        }
        fn query_objects(
            &self,
            q: ObjectQuery,
        ) -> impl Future<Output = PluginResult<ObjectPage>> + Send + 'static {
            self.inner.query_objects(q)
        }
        fn update_object(
            &self,
            o: StoredObject,
        ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
            self.inner.update_object(o)
        }
        fn delete_object(
            &self,
            k: ObjectKind,
            id: Id,
        ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
            self.inner.delete_object(k, id)
        }
        fn object_history(
            &self,
            k: ObjectKind,
            id: Id,
        ) -> impl Future<Output = PluginResult<ObjectHistory>> + Send + 'static {
            self.inner.object_history(k, id)
        }
        fn aggregate(
            &self,
            q: ObjectQuery,
            r: String,
        ) -> impl Future<Output = PluginResult<String>> + Send + 'static {
            self.inner.aggregate(q, r)
        }
        fn add_key(&self, k: StoredKey) -> impl Future<Output = PluginResult<()>> + Send + 'static {
            self.inner.add_key(k)
        }
        fn get_key(
            &self,
            id: Id,
        ) -> impl Future<Output = PluginResult<Option<StoredKey>>> + Send + 'static {
            self.inner.get_key(id)
        }
        fn key_children(
            &self,
            id: Id,
        ) -> impl Future<Output = PluginResult<Vec<StoredKey>>> + Send + 'static {
            self.inner.key_children(id)
        }
        fn root_keys(&self) -> impl Future<Output = PluginResult<Vec<StoredKey>>> + Send + 'static {
            self.inner.root_keys()
        }
        fn update_key(
            &self,
            k: StoredKey,
        ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
            self.inner.update_key(k)
        }
        fn delete_key(
            &self,
            id: Id,
        ) -> impl Future<Output = PluginResult<Vec<Id>>> + Send + 'static {
            self.inner.delete_key(id)
        }
        fn get_document(
            &self,
            d: DocumentName,
        ) -> impl Future<Output = PluginResult<VersionedDocument>> + Send + 'static {
            self.inner.get_document(d)
        }
        fn put_document(
            &self,
            d: DocumentName,
            json: String,
            expected: u64,
        ) -> impl Future<Output = PluginResult<u64>> + Send + 'static {
            self.inner.put_document(d, json, expected)
        }
        fn get_object_versioned(
            &self,
            k: ObjectKind,
            id: Id,
        ) -> impl Future<Output = PluginResult<Option<VersionedObject>>> + Send + 'static {
            self.inner.get_object_versioned(k, id)
        }
        fn update_object_if(
            &self,
            o: StoredObject,
            expected: u64,
        ) -> impl Future<Output = PluginResult<u64>> + Send + 'static {
            self.inner.update_object_if(o, expected)
        }
        fn backup(
            &self,
            to: String,
        ) -> impl Future<Output = PluginResult<BackupReport>> + Send + 'static {
            self.inner.backup(to)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_class_deleted_by_another_host_during_a_batch_undoes_the_batch_with_409() {
        let hook: Arc<Mutex<Option<Hook>>> = Arc::default();
        let conn = ConnectorHandle::from_box(
            connector_box(BeforeFirstCreate {
                inner: Arc::new(DevMemory::new()),
                hook: hook.clone(),
            }),
            "dev-memory (with a hook before the first create)",
            weft_dev_memory::CAPABILITIES,
        );
        let a = Arc::new(Core::new(conn.clone(), CoreConfig::default(), vec![]));
        let b = Arc::new(Core::new(conn, CoreConfig::default(), vec![]));
        let key: Id = "0b1d3a3e-7d2b-4c55-9c1e-6f3f0a000002".parse().unwrap();
        a.keys.ensure_root(Some((key, "t".into()))).await.unwrap();
        let root = a
            .keys
            .authenticate(Some(&key.to_string()), Some("t"), None)
            .await
            .unwrap();
        for class in ["Town", "Village"] {
            let c =
                json!({"class": class, "properties": [{"name": "name", "@dataType": ["string"]}]});
            a.add_class(ObjectKind::Thing, serde_json::from_value(c).unwrap())
                .await
                .unwrap();
        }
        // Host B deletes Town (still empty) after A validated its batch, before A's first
        // write is stored.
        let deleted: Arc<OnceLock<Result<()>>> = Arc::default();
        let (b2, done) = (b.clone(), deleted.clone());
        *hook.lock().unwrap() = Some(Box::new(move || {
            Box::pin(async move {
                let _ = done.set(b2.delete_class(ObjectKind::Thing, "Town").await);
            })
        }));
        let bodies = (0..40)
            .map(|i| ObjectBody {
                context: Some(String::new()),
                class: Some("Town".into()),
                schema: serde_json::from_value(json!({"name": format!("t{i}")})).ok(),
            })
            .collect();
        let answers = a
            .batch_create(&root, ObjectKind::Thing, bodies, false)
            .await
            .unwrap();
        assert!(
            matches!(deleted.get(), Some(Ok(()))),
            "host B could not delete the class: {:?}",
            deleted.get()
        );
        assert_eq!(answers.len(), 40);
        for answer in &answers {
            let e = answer
                .as_ref()
                .expect_err("a write of a deleted class was kept");
            assert_eq!(e.kind.http_status(), 409, "{e}");
            assert!(e.to_string().contains("the schema changed"), "{e}");
        }
        let left = a
            .conn
            .query_objects(ObjectQuery::all(ObjectKind::Thing, 100))
            .await
            .unwrap();
        assert_eq!(
            left.total, 0,
            "objects of the deleted class stayed: {left:?}"
        );

        // Without a change in between, a batch is stored whole.
        let bodies = (0..40)
            .map(|i| ObjectBody {
                context: Some(String::new()),
                class: Some("Village".into()),
                schema: serde_json::from_value(json!({"name": format!("v{i}")})).ok(),
            })
            .collect();
        let answers = a
            .batch_create(&root, ObjectKind::Thing, bodies, false)
            .await
            .unwrap();
        assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    }

    /// Objects listed newest first come back exactly in reverse creation order, also when
    /// several share a millisecond: each takes its `created_ms` from its time-ordered id.
    #[tokio::test]
    async fn creates_list_in_reverse_creation_order_with_created_ms_from_the_id() {
        let conn = ConnectorHandle::from_box(
            connector_box(DevMemory::new()),
            "dev-memory",
            weft_dev_memory::CAPABILITIES,
        );
        let core = Core::new(conn, CoreConfig::default(), vec![]);
        let key: Id = "0b1d3a3e-7d2b-4c55-9c1e-6f3f0a000003".parse().unwrap();
        core.keys
            .ensure_root(Some((key, "t".into())))
            .await
            .unwrap();
        let root = core
            .keys
            .authenticate(Some(&key.to_string()), Some("t"), None)
            .await
            .unwrap();
        let c = json!({"class": "Town", "properties": [{"name": "name", "@dataType": ["string"]}]});
        core.add_class(ObjectKind::Thing, serde_json::from_value(c).unwrap())
            .await
            .unwrap();
        let body = |i: usize| ObjectBody {
            context: Some(String::new()),
            class: Some("Town".into()),
            schema: serde_json::from_value(json!({"name": format!("t{i}")})).ok(),
        };
        let mut made = vec![];
        for i in 0..60 {
            let view = core
                .create_object(&root, ObjectKind::Thing, body(i), false)
                .await
                .unwrap();
            made.push(view);
        }
        let batch = core
            .batch_create(
                &root,
                ObjectKind::Thing,
                (60..120).map(body).collect(),
                false,
            )
            .await
            .unwrap();
        made.extend(batch.into_iter().map(Result::unwrap));
        for pair in made.windows(2) {
            assert!(pair[0].id < pair[1].id, "ids in creation order: {pair:?}");
        }
        for view in &made {
            assert_eq!(Some(view.created), view.id.unix_ms(), "{view:?}");
            assert_eq!(view.updated, view.created, "{view:?}");
        }
        let mut listed = vec![];
        for page in 1..=3 {
            let (objects, total) = core
                .list_objects(&root, ObjectKind::Thing, Some(50), Some(page))
                .await
                .unwrap();
            assert_eq!(total, 120);
            listed.extend(objects.iter().map(|v| v.id));
        }
        let newest_first: Vec<Id> = made.iter().rev().map(|v| v.id).collect();
        assert_eq!(listed, newest_first);
    }
}
