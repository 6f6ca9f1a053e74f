//! `/keys`: the key tree over HTTP. The rules are in `weft_core::keys`.

use std::sync::Arc;

use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use weft_plugin_api::{Id, StoredKey};

use super::models::{RefType, SingleRef};
use super::{ApiError, ApiResult, ApiTags};
use crate::context::principal;
use crate::payload::CheckedJson;
use weft_core::keys::NewKey;
use weft_core::Core;

/// The key operations.
pub struct KeysApi(pub Arc<Core>);

/// Body of `POST /keys`: the child's rights (each at most the parent's), e-mail, allowed
/// address ranges and expiry.
#[derive(Object, Debug, Clone, Default)]
#[oai(example)]
pub struct KeyCreate {
    /// Right to read.
    #[oai(default)]
    pub read: bool,
    /// Right to write.
    #[oai(default)]
    pub write: bool,
    /// Right to delete.
    #[oai(default)]
    pub delete: bool,
    /// Right to execute network queries.
    #[oai(default)]
    pub execute: bool,
    /// E-mail associated with the key.
    #[oai(skip_serializing_if_is_none)]
    pub email: Option<String>,
    /// CIDR ranges requests with this key may come from (empty: anywhere).
    #[oai(rename = "ipOrigin", default)]
    pub ip_origin: Vec<String>,
    /// Expiry as Unix time in milliseconds; 0 or absent for never (not after the parent's).
    #[oai(rename = "keyExpiresUnix", skip_serializing_if_is_none)]
    pub key_expires_unix: Option<i64>,
    /// Ignored (a created key is never a root).
    #[oai(rename = "isRoot", skip_serializing_if_is_none)]
    pub is_root: Option<bool>,
}

impl poem_openapi::types::Example for KeyCreate {
    fn example() -> Self {
        KeyCreate {
            read: true,
            email: Some("reader@example.org".into()),
            ip_origin: vec!["127.0.0.0/8".into()],
            key_expires_unix: Some(0),
            ..KeyCreate::default()
        }
    }
}

/// A key as shown (never its token).
#[derive(Object, Debug, Clone)]
pub struct KeyGetResponse {
    /// Its id (`X-API-KEY`).
    #[oai(rename = "keyId")]
    pub key_id: uuid::Uuid,
    /// Its parent (absent for the root).
    #[oai(skip_serializing_if_is_none)]
    pub parent: Option<SingleRef>,
    /// Right to read.
    pub read: bool,
    /// Right to write.
    pub write: bool,
    /// Right to delete.
    pub delete: bool,
    /// Right to execute.
    pub execute: bool,
    /// E-mail.
    pub email: String,
    /// Allowed CIDR ranges.
    #[oai(rename = "ipOrigin")]
    pub ip_origin: Vec<String>,
    /// Expiry in Unix milliseconds; 0 for never.
    #[oai(rename = "keyExpiresUnix")]
    pub key_expires_unix: i64,
    /// Whether it is the root key.
    #[oai(rename = "isRoot")]
    pub is_root: bool,
}

/// A key with its token (only when created or renewed).
#[derive(Object, Debug, Clone)]
pub struct KeyTokenGetResponse {
    /// The key.
    #[oai(flatten)]
    pub key: KeyGetResponse,
    /// Its token (`X-API-TOKEN`), shown only now.
    pub token: uuid::Uuid,
}

/// The direct children of a key.
#[derive(Object, Debug, Clone)]
pub struct KeyChildrenGetResponse {
    /// References to the children.
    pub children: Vec<SingleRef>,
}

fn key_ref(id: Id) -> SingleRef {
    SingleRef {
        cref: id.to_uuid(),
        location_url: weft_core::ontology::LOCALHOST_URL.to_string(),
        kind: RefType::Key,
    }
}

impl From<&StoredKey> for KeyGetResponse {
    fn from(k: &StoredKey) -> Self {
        KeyGetResponse {
            key_id: k.id.to_uuid(),
            parent: k.parent.into_option().map(key_ref),
            read: k.read,
            write: k.write,
            delete: k.delete,
            execute: k.execute,
            email: k.email.to_string(),
            ip_origin: k.ip_origin.iter().map(|c| c.to_string()).collect(),
            key_expires_unix: k.expires_ms.max(0),
            is_root: k.parent.is_none(),
        }
    }
}

fn with_token(k: &StoredKey, token: &str) -> ApiResult<KeyTokenGetResponse> {
    Ok(KeyTokenGetResponse {
        key: k.into(),
        token: token
            .parse()
            .map_err(|_| ApiError::internal("a generated token is not a UUID"))?,
    })
}

fn parse_key_id(raw: &str) -> ApiResult<Id> {
    raw.parse()
        .map_err(|_| ApiError::not_found(format!("there is no key {raw:?}: key ids are UUIDs")))
}

fn children(keys: Vec<StoredKey>) -> KeyChildrenGetResponse {
    KeyChildrenGetResponse {
        children: keys.iter().map(|k| key_ref(k.id)).collect(),
    }
}

/// A deletion.
#[derive(ApiResponse)]
pub enum KeyDeleted {
    /// Deleted with its whole subtree.
    #[oai(status = 204)]
    NoContent,
}

#[OpenApi(tag = "ApiTags::Keys")]
impl KeysApi {
    /// Create a child of the calling key. Its token is in this answer only.
    #[oai(path = "/keys", method = "post", operation_id = "weaviate.key.create")]
    async fn create(
        &self,
        req: &poem::Request,
        body: CheckedJson<KeyCreate>,
    ) -> ApiResult<Json<KeyTokenGetResponse>> {
        let p = principal(req)?;
        let b = body.0;
        let (k, token) = self
            .0
            .keys
            .create_child(
                &p,
                NewKey {
                    read: b.read,
                    write: b.write,
                    delete: b.delete,
                    execute: b.execute,
                    email: b.email,
                    ip_origin: b.ip_origin,
                    expires_ms: b.key_expires_unix,
                },
            )
            .await?;
        Ok(Json(with_token(&k, &token)?))
    }

    /// The calling key.
    #[oai(
        path = "/keys/me",
        method = "get",
        operation_id = "weaviate.keys.me.get"
    )]
    async fn me(&self, req: &poem::Request) -> ApiResult<Json<KeyGetResponse>> {
        let p = principal(req)?;
        Ok(Json((&p.key).into()))
    }

    /// The direct children of the calling key.
    #[oai(
        path = "/keys/me/children",
        method = "get",
        operation_id = "weaviate.keys.me.children.get"
    )]
    async fn my_children(&self, req: &poem::Request) -> ApiResult<Json<KeyChildrenGetResponse>> {
        let p = principal(req)?;
        Ok(Json(children(self.0.keys.children(&p, p.id()).await?)))
    }

    /// A key of the caller's subtree.
    #[oai(
        path = "/keys/:keyId",
        method = "get",
        operation_id = "weaviate.keys.get"
    )]
    async fn get(
        &self,
        req: &poem::Request,
        #[oai(name = "keyId")] id: Path<String>,
    ) -> ApiResult<Json<KeyGetResponse>> {
        let p = principal(req)?;
        let k = self.0.keys.visible_key(&p, parse_key_id(&id.0)?).await?;
        Ok(Json((&k).into()))
    }

    /// The direct children of a key of the caller's subtree.
    #[oai(
        path = "/keys/:keyId/children",
        method = "get",
        operation_id = "weaviate.keys.children.get"
    )]
    async fn get_children(
        &self,
        req: &poem::Request,
        #[oai(name = "keyId")] id: Path<String>,
    ) -> ApiResult<Json<KeyChildrenGetResponse>> {
        let p = principal(req)?;
        Ok(Json(children(
            self.0.keys.children(&p, parse_key_id(&id.0)?).await?,
        )))
    }

    /// Delete a descendant key and its whole subtree.
    #[oai(
        path = "/keys/:keyId",
        method = "delete",
        operation_id = "weaviate.keys.delete"
    )]
    async fn delete(
        &self,
        req: &poem::Request,
        #[oai(name = "keyId")] id: Path<String>,
    ) -> ApiResult<KeyDeleted> {
        let p = principal(req)?;
        self.0.delete_key(&p, parse_key_id(&id.0)?).await?;
        Ok(KeyDeleted::NoContent)
    }

    /// Give a descendant key (or, for the root, itself) a new token; the old one stops working.
    #[oai(
        path = "/keys/:keyId/renew-token",
        method = "put",
        operation_id = "weaviate.keys.renew.token"
    )]
    async fn renew(
        &self,
        req: &poem::Request,
        #[oai(name = "keyId")] id: Path<String>,
    ) -> ApiResult<Json<KeyTokenGetResponse>> {
        let p = principal(req)?;
        let (k, token) = self.0.keys.renew(&p, parse_key_id(&id.0)?).await?;
        Ok(Json(with_token(&k, &token)?))
    }
}
