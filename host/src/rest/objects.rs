//! What Things and Actions have in common: create, read, list, replace, patch, delete, history,
//! references and batches, on a neutral [`ObjectView`]. `things.rs` and `actions.rs` are thin
//! typed handlers over these functions.

use serde_json::{Map, Value};
use weft_plugin_api::{now_ms, ErrorKind, Id, ObjectKind, ObjectQuery, StoredObject};

use super::models::{PatchDocument, PropertyBag, RefType, SingleRef};
use super::{ApiError, ApiResult};
use crate::auth::Principal;
use crate::ontology::{kind_word, parse_reference, Ontology};
use crate::server::App;

/// The fields a client sends for an object.
#[derive(Debug, Clone, Default)]
pub struct ObjectBody {
    /// `@context`.
    pub context: Option<String>,
    /// `@class`.
    pub class: Option<String>,
    /// `schema`.
    pub schema: Option<PropertyBag>,
}

/// A stored object, as the handlers present it.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectView {
    /// Id.
    pub id: Id,
    /// `@context`.
    pub context: String,
    /// `@class`.
    pub class: String,
    /// `schema`.
    pub schema: PropertyBag,
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
            schema: o.properties().into_iter().collect(),
            owner: o.owner,
            created: o.created_ms,
            updated: o.updated_ms,
        }
    }

    /// The `key` reference to the owner.
    pub fn key_ref(&self) -> SingleRef {
        key_ref(self.owner)
    }
}

/// A reference to a key of this server.
pub fn key_ref(id: Id) -> SingleRef {
    SingleRef {
        cref: id.to_uuid(),
        location_url: crate::ontology::LOCALHOST_URL.to_string(),
        kind: RefType::Key,
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

fn not_found(kind: ObjectKind, id: Id) -> ApiError {
    ApiError::not_found(format!("there is no {} with id {id}", kind_word(kind)))
}

impl App {
    /// Validates a body against the ontology and checks its local references exist and have
    /// an allowed class. Answers the envelope to store (id, owner and times filled by caller).
    async fn check_body(
        &self,
        kind: ObjectKind,
        body: &ObjectBody,
        ontology: &Ontology,
    ) -> ApiResult<(String, String, Map<String, Value>)> {
        let class = body
            .class
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                ApiError::unprocessable(format!(
                    "the {} has no \"@class\"; name one of the {} classes of the schema",
                    kind_word(kind),
                    kind_word(kind)
                ))
            })?;
        let context = body.context.clone().ok_or_else(|| {
            ApiError::unprocessable(format!(
                "the {} has no \"@context\"; give the URL of its context (may be \"\")",
                kind_word(kind)
            ))
        })?;
        let props: Map<String, Value> = body
            .schema
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let refs = ontology
            .validate_object(kind, &class, &props)
            .map_err(ApiError::unprocessable)?;
        for r in refs {
            if !self.is_local(&r.reference.location_url) {
                continue; // a peer's object: the network layer resolves it
            }
            let Some(target_kind) = r.reference.kind else {
                return Err(ApiError::unprocessable(format!(
                    "property {:?} refers to a key; it must refer to a {}",
                    r.property,
                    r.allowed_classes.join(" or ")
                )));
            };
            let target = self.conn.get_object(target_kind, r.reference.id).await?;
            let Some(target) = target else {
                return Err(ApiError::unprocessable(format!(
                    "property {:?} refers to {} {} which does not exist; create it first or fix the $cref",
                    r.property,
                    kind_word(target_kind),
                    r.reference.id
                )));
            };
            if !r.allowed_classes.iter().any(|c| c == target.class.as_str()) {
                return Err(ApiError::unprocessable(format!(
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

    /// Whether a reference's `locationUrl` names this server.
    pub fn is_local(&self, url: &str) -> bool {
        let norm = |u: &str| u.trim_end_matches('/').to_string();
        norm(url) == norm(crate::ontology::LOCALHOST_URL) || norm(url) == norm(&self.public_url)
    }

    async fn get_visible(
        &self,
        p: &Principal,
        kind: ObjectKind,
        id: Id,
    ) -> ApiResult<StoredObject> {
        let o = self
            .conn
            .get_object(kind, id)
            .await?
            .ok_or_else(|| not_found(kind, id))?;
        self.check_owner(p, o.owner).await?;
        Ok(o)
    }

    /// `POST /{things,actions}/validate`.
    pub async fn validate_object(&self, kind: ObjectKind, body: ObjectBody) -> ApiResult<()> {
        let ontology = self.ontology().await?;
        self.check_body(kind, &body, &ontology).await.map(|_| ())
    }

    /// `POST /{things,actions}`: validates, then stores (or, when `is_async`, answers first
    /// and stores in the background).
    pub async fn create_object(
        &self,
        p: &Principal,
        kind: ObjectKind,
        body: ObjectBody,
        is_async: bool,
    ) -> ApiResult<ObjectView> {
        let ontology = self.ontology().await?;
        self.create_with(p, kind, body, is_async, &ontology).await
    }

    /// Creates one object against an ontology already read (a batch reads it once).
    async fn create_with(
        &self,
        p: &Principal,
        kind: ObjectKind,
        body: ObjectBody,
        is_async: bool,
        ontology: &Ontology,
    ) -> ApiResult<ObjectView> {
        let (class, context, props) = self.check_body(kind, &body, ontology).await?;
        let now = now_ms();
        let stored = StoredObject {
            kind,
            id: Id::random(),
            class: class.into(),
            context: context.into(),
            owner: p.id(),
            created_ms: now,
            updated_ms: now,
            properties_json: Value::Object(props).to_string().into(),
        };
        let view = ObjectView::from_stored(&stored);
        if is_async {
            let conn = self.conn.clone();
            tokio::spawn(async move {
                let id = stored.id;
                if let Err(e) = conn.create_object(stored).await {
                    tracing::error!("async create of {} {id} failed: {e}", kind_word(kind));
                }
            });
        } else {
            self.conn.create_object(stored).await?;
        }
        Ok(view)
    }

    /// `GET /{things,actions}/{id}`.
    pub async fn get_object(
        &self,
        p: &Principal,
        kind: ObjectKind,
        id: Id,
    ) -> ApiResult<ObjectView> {
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
    ) -> ApiResult<(Vec<ObjectView>, u64)> {
        let limit = match max_results {
            None => self.limit,
            Some(n) if n < 0 => {
                return Err(ApiError::unprocessable(format!(
                    "maxResults {n} is negative; give a number from 0 to {}",
                    self.limit
                )))
            }
            Some(n) => (n as u64).min(self.limit),
        };
        let page = match page {
            None => 1,
            Some(n) if n < 1 => {
                return Err(ApiError::unprocessable(format!(
                    "page {n} does not exist; pages start at 1"
                )))
            }
            Some(n) => n as u64,
        };
        let mut q = ObjectQuery::all(kind, limit);
        q.offset = (page - 1).saturating_mul(limit);
        q.owners = self.visible_owners(p).await?.into();
        let r = self.conn.query_objects(q).await?;
        Ok((
            r.objects.iter().map(ObjectView::from_stored).collect(),
            r.total,
        ))
    }

    /// Stores `body` as the new version of `id` (full replace; owner and creation time kept).
    async fn replace_with(
        &self,
        kind: ObjectKind,
        old: &StoredObject,
        body: ObjectBody,
    ) -> ApiResult<ObjectView> {
        let ontology = self.ontology().await?;
        let (class, context, props) = self.check_body(kind, &body, &ontology).await?;
        let new = StoredObject {
            class: class.into(),
            context: context.into(),
            updated_ms: now_ms().max(old.updated_ms),
            properties_json: Value::Object(props).to_string().into(),
            ..old.clone()
        };
        self.conn.update_object(new.clone()).await?;
        Ok(ObjectView::from_stored(&new))
    }

    /// `PUT /{things,actions}/{id}`.
    pub async fn replace_object(
        &self,
        p: &Principal,
        kind: ObjectKind,
        id: Id,
        body: ObjectBody,
    ) -> ApiResult<ObjectView> {
        let old = self.get_visible(p, kind, id).await?;
        self.replace_with(kind, &old, body).await
    }

    /// `PATCH /{things,actions}/{id}`: the patch applies to the object as GET shows it
    /// (`@context`, `@class`, `schema`, `key`, ids and times); the result is validated again.
    pub async fn patch_object(
        &self,
        p: &Principal,
        kind: ObjectKind,
        id: Id,
        patch: Vec<PatchDocument>,
        id_field: &str,
    ) -> ApiResult<ObjectView> {
        let old = self.get_visible(p, kind, id).await?;
        let view = ObjectView::from_stored(&old);
        let mut doc = serde_json::json!({
            "@context": view.context,
            "@class": view.class,
            "schema": view.schema,
            "key": view.key_ref(),
            "creationTimeUnix": view.created,
            "lastUpdateTimeUnix": view.updated,
            id_field: view.id.to_string(),
        });
        let before = doc.clone();
        let ops: json_patch::Patch = serde_json::to_value(&patch)
            .and_then(serde_json::from_value)
            .map_err(|e| {
                ApiError::bad_request(format!(
                    "the body is not a JSON Patch (RFC 6902): {e}; send e.g. [{{\"op\":\"replace\",\"path\":\"/schema/name\",\"value\":\"Berlin\"}}]"
                ))
            })?;
        json_patch::patch(&mut doc, &ops).map_err(|e| {
            ApiError::unprocessable(format!(
                "the patch cannot be applied to this {}: {e}; paths look like /schema/<property> or /@class",
                kind_word(kind)
            ))
        })?;
        for fixed in [id_field, "key", "creationTimeUnix"] {
            if doc.get(fixed) != before.get(fixed) {
                return Err(ApiError::unprocessable(format!(
                    "the patch changes \"{fixed}\", which cannot be changed; patch only @context, @class and schema"
                )));
            }
        }
        let schema = match doc.get("schema") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m.clone().into_iter().collect()),
            Some(_) => {
                return Err(ApiError::unprocessable(
                    "after the patch, \"schema\" is not an object; it must map property names to values",
                ))
            }
        };
        let text = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_string);
        let body = ObjectBody {
            context: text("@context"),
            class: text("@class"),
            schema,
        };
        self.replace_with(kind, &old, body).await
    }

    /// `DELETE /{things,actions}/{id}`.
    pub async fn delete_object(&self, p: &Principal, kind: ObjectKind, id: Id) -> ApiResult<()> {
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
    ) -> ApiResult<HistoryView> {
        let h = self
            .conn
            .object_history(kind, id)
            .await
            .map_err(|e| match e.kind {
                ErrorKind::NotFound => not_found(kind, id),
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
    ) -> ApiResult<crate::ontology::Property> {
        let c = ontology.class(kind, class).ok_or_else(|| {
            ApiError::unprocessable(format!(
                "the object's class {class} is no longer in the schema"
            ))
        })?;
        let p = c
            .properties
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                ApiError::unprocessable(format!("class {class} has no property {name:?}"))
            })?;
        if !p.is_reference() {
            return Err(ApiError::unprocessable(format!(
                "property {name:?} of class {class} holds a {}, not references; set it with PUT or PATCH",
                p.data_type.join("")
            )));
        }
        Ok(p.clone())
    }

    /// The three reference sub-resources. `change` turns the property's current references into
    /// the new ones.
    pub async fn change_references(
        &self,
        p: &Principal,
        kind: ObjectKind,
        id: Id,
        property: &str,
        change: RefChange,
    ) -> ApiResult<()> {
        let old = self.get_visible(p, kind, id).await?;
        let ontology = self.ontology().await?;
        let prop = self.reference_property(&ontology, kind, old.class.as_str(), property)?;
        let mut props = old.properties();
        let mut current: Vec<Value> = match props.get(property) {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(a)) => a.clone(),
            Some(v) => vec![v.clone()],
        };
        match change {
            RefChange::Add(r) => {
                let r = serde_json::to_value(r).map_err(|e| ApiError::internal(e.to_string()))?;
                if !prop.is_many() && !current.is_empty() {
                    return Err(ApiError::unprocessable(format!(
                        "property {property:?} holds at most one reference and has one; replace it with PUT or delete it first"
                    )));
                }
                current.push(r);
            }
            RefChange::ReplaceAll(refs) => {
                current = refs
                    .into_iter()
                    .map(|r| serde_json::to_value(r).map_err(|e| ApiError::internal(e.to_string())))
                    .collect::<ApiResult<_>>()?;
            }
            RefChange::Remove(r) => {
                let before = current.len();
                current.retain(|v| {
                    parse_reference(v)
                        .map(|x| x.id != Id::from(r.cref))
                        .unwrap_or(true)
                });
                if current.len() == before {
                    return Err(ApiError::not_found(format!(
                        "property {property:?} has no reference to {}",
                        r.cref
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
        let body = ObjectBody {
            context: Some(old.context.to_string()),
            class: Some(old.class.to_string()),
            schema: Some(props.into_iter().collect()),
        };
        self.replace_with(kind, &old, body).await.map(|_| ())
    }

    /// `POST /batching/{things,actions}`: each item on its own, answers in request order; the
    /// ontology is read once for the whole batch.
    pub async fn batch_create(
        &self,
        p: &Principal,
        kind: ObjectKind,
        bodies: Vec<ObjectBody>,
        is_async: bool,
    ) -> ApiResult<Vec<ApiResult<ObjectView>>> {
        let ontology = self.ontology().await?;
        let mut out = Vec::with_capacity(bodies.len());
        for b in bodies {
            out.push(self.create_with(p, kind, b, is_async, &ontology).await);
        }
        Ok(out)
    }
}

/// A change to a reference property.
#[derive(Debug, Clone)]
pub enum RefChange {
    /// POST: add one.
    Add(SingleRef),
    /// PUT: replace all.
    ReplaceAll(Vec<SingleRef>),
    /// DELETE: remove one.
    Remove(SingleRef),
}
