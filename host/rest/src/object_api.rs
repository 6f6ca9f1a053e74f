//! `object_api!`: the REST handlers of one object resource (`/things` or `/actions`), declared
//! once for both. Each handler converts its typed body into the neutral form of `objects.rs`,
//! calls the shared logic and converts the answer back.

/// Declares the handler struct `$api` with the eleven operations of an object resource, and the
/// conversions between its models and `objects::ObjectView`.
#[macro_export]
macro_rules! object_api {
    (
        api: $api:ident,
        kind: $kind:expr,
        tag: $tag:literal,
        noun: $noun:literal,
        id_param: $id_param:literal,
        create: $Create:ident,
        get: $Get:ident,
        list: $List:ident,
        create_request: $CreateRequest:ident,
        history_object: $HistoryObject:ident,
        history: $History:ident,
        list_path: $list_path:literal,
        validate_path: $validate_path:literal,
        item_path: $item_path:literal,
        history_path: $history_path:literal,
        property_path: $property_path:literal,
        ops: {
            list: $op_list:literal,
            create: $op_create:literal,
            validate: $op_validate:literal,
            get: $op_get:literal,
            update: $op_update:literal,
            patch: $op_patch:literal,
            delete: $op_delete:literal,
            history: $op_history:literal,
            ref_create: $op_ref_create:literal,
            ref_update: $op_ref_update:literal,
            ref_delete: $op_ref_delete:literal $(,)?
        } $(,)?
    ) => {
        use std::sync::Arc;

        use poem_openapi::param::{Path, Query};
        use poem_openapi::payload::Json;
        use poem_openapi::{ApiResponse, OpenApi};
        use weft_plugin_api::{Id, ObjectKind};

        use weft_core::objects::{HistoryView, ObjectBody, ObjectView, RefChange};
        use $crate::payload::CheckedJson;
        use $crate::ApiResult;
        use weft_core::Core;

        const KIND: ObjectKind = $kind;

        impl From<$Create> for ObjectBody {
            fn from(c: $Create) -> Self {
                ObjectBody {
                    context: c.context,
                    class: c.class,
                    schema: c.schema.map(|s| s.into_iter().collect()),
                }
            }
        }

        impl From<ObjectView> for $Get {
            fn from(v: ObjectView) -> Self {
                $Get {
                    key: $crate::models::key_ref(v.owner),
                    context: v.context,
                    class: v.class,
                    schema: v.schema.into_iter().collect(),
                    creation_time_unix: v.created,
                    last_update_time_unix: v.updated,
                    id: v.id.to_uuid(),
                }
            }
        }

        impl From<HistoryView> for $History {
            fn from(h: HistoryView) -> Self {
                $History {
                    deleted: h.deleted,
                    key: $crate::models::key_ref(h.owner),
                    property_history: h
                        .versions
                        .into_iter()
                        .map(|v| $HistoryObject {
                            context: v.object.context,
                            class: v.object.class,
                            schema: v.object.schema.into_iter().collect(),
                            creation_time_unix: v.archived,
                        })
                        .collect(),
                    id: h.id.to_uuid(),
                }
            }
        }

        /// Answer of a create or patch: stored (200) or accepted (202, `async`).
        #[derive(ApiResponse)]
        pub enum StoredResponse {
            /// Stored.
            #[oai(status = 200)]
            Ok(Json<$Get>),
            /// Accepted; stored in the background.
            #[oai(status = 202)]
            Accepted(Json<$Get>),
        }

        /// Answer of a full replace (the contract answers 202; the write is stored before it).
        #[derive(ApiResponse)]
        pub enum ReplacedResponse {
            /// Stored.
            #[oai(status = 202)]
            Accepted(Json<$Get>),
        }

        /// An empty success.
        #[derive(ApiResponse)]
        pub enum OkResponse {
            /// Done.
            #[oai(status = 200)]
            Ok,
        }

        /// A deletion.
        #[derive(ApiResponse)]
        pub enum DeletedResponse {
            /// Deleted.
            #[oai(status = 204)]
            NoContent,
        }

        #[doc = concat!("The ", $noun, " operations.")]
        pub struct $api(pub Arc<Core>);

        fn parse_id(raw: &str) -> ApiResult<Id> {
            raw.parse().map_err(|_| {
                $crate::ApiError::not_found(format!(
                    "there is no {} with {} {raw:?}: ids are UUIDs, as answered when it was created",
                    $noun,
                    $id_param
                ))
            })
        }

        #[OpenApi(tag = $tag)]
        impl $api {
            #[doc = concat!("List the ", $noun, "s the key may see, newest first.")]
            #[oai(path = $list_path, method = "get", operation_id = $op_list)]
            async fn list(&self, req: &poem::Request,
                /// Page size; default and maximum: the server's `limit`.
                #[oai(name = "maxResults")]
                max_results: Query<Option<i64>>,
                /// Page number, from 1.
                page: Query<Option<i64>>,
            ) -> ApiResult<Json<$List>> {
                let p = $crate::context::principal(req)?;
                let (items, total) = self.0.list_objects(&p, KIND, max_results.0, page.0).await?;
                Ok(Json($List {
                    items: items.into_iter().map(<$Get>::from).collect(),
                    total_results: total as i64,
                }))
            }

            #[doc = concat!("Create a ", $noun, ".")]
            #[oai(path = $list_path, method = "post", operation_id = $op_create)]
            async fn create(&self, req: &poem::Request, body: CheckedJson<$CreateRequest>) -> ApiResult<StoredResponse> {
                let p = $crate::context::principal(req)?;
                let obj = body.0.object.ok_or_else(|| {
                    $crate::ApiError::unprocessable(format!(
                        "the body has no {:?} object; send {{\"{}\": {{\"@context\": …, \"@class\": …, \"schema\": {{…}}}}}}",
                        $noun.to_lowercase(),
                        $noun.to_lowercase()
                    ))
                })?;
                let view = self.0.create_object(&p, KIND, obj.into(), body.0.is_async).await?;
                Ok(if body.0.is_async {
                    StoredResponse::Accepted(Json(view.into()))
                } else {
                    StoredResponse::Ok(Json(view.into()))
                })
            }

            #[doc = concat!("Validate a ", $noun, " against the ontology without storing it.")]
            #[oai(path = $validate_path, method = "post", operation_id = $op_validate)]
            async fn validate(&self, req: &poem::Request, body: CheckedJson<$Create>) -> ApiResult<OkResponse> {
                let p = $crate::context::principal(req)?;
                self.0.validate_object(&p, KIND, body.0.into()).await?;
                Ok(OkResponse::Ok)
            }

            #[doc = concat!("Get one ", $noun, ".")]
            #[oai(path = $item_path, method = "get", operation_id = $op_get)]
            async fn get(&self, req: &poem::Request, #[oai(name = $id_param)] id: Path<String>) -> ApiResult<$crate::payload::SerdeJson<$Get>> {
                let p = $crate::context::principal(req)?;
                let view = self.0.get_object(&p, KIND, parse_id(&id.0)?).await?;
                Ok($crate::payload::SerdeJson(view.into()))
            }

            #[doc = concat!("Replace a ", $noun, " (its earlier version is kept in its history).")]
            #[oai(path = $item_path, method = "put", operation_id = $op_update)]
            async fn update(&self, req: &poem::Request,
                #[oai(name = $id_param)] id: Path<String>,
                body: CheckedJson<$Create>,
            ) -> ApiResult<ReplacedResponse> {
                let p = $crate::context::principal(req)?;
                let view = self
                    .0
                    .replace_object(&p, KIND, parse_id(&id.0)?, body.0.into())
                    .await?;
                Ok(ReplacedResponse::Accepted(Json(view.into())))
            }

            #[doc = concat!("Change a ", $noun, " with a JSON Patch (RFC 6902) applied to it as GET shows it.")]
            #[oai(path = $item_path, method = "patch", operation_id = $op_patch)]
            async fn patch(&self, req: &poem::Request,
                #[oai(name = $id_param)] id: Path<String>,
                /// Answer 202 (the write is stored before answering either way).
                #[oai(name = "async")]
                is_async: Query<Option<bool>>,
                body: CheckedJson<Vec<PatchDocument>>,
            ) -> ApiResult<StoredResponse> {
                let p = $crate::context::principal(req)?;
                let view = self
                    .0
                    .patch_object(&p, KIND, parse_id(&id.0)?, $crate::models::to_json(&body.0)?, $id_param)
                    .await?;
                Ok(if is_async.0.unwrap_or(false) {
                    StoredResponse::Accepted(Json(view.into()))
                } else {
                    StoredResponse::Ok(Json(view.into()))
                })
            }

            #[doc = concat!("Delete a ", $noun, " (its last version is kept in its history).")]
            #[oai(path = $item_path, method = "delete", operation_id = $op_delete)]
            async fn delete(&self, req: &poem::Request, #[oai(name = $id_param)] id: Path<String>) -> ApiResult<DeletedResponse> {
                let p = $crate::context::principal(req)?;
                self.0.delete_object(&p, KIND, parse_id(&id.0)?).await?;
                Ok(DeletedResponse::NoContent)
            }

            #[doc = concat!("Earlier versions of a ", $noun, ", newest first, and whether it is deleted.")]
            #[oai(path = $history_path, method = "get", operation_id = $op_history)]
            async fn history(&self, req: &poem::Request, #[oai(name = $id_param)] id: Path<String>) -> ApiResult<Json<$History>> {
                let p = $crate::context::principal(req)?;
                let h = self.0.object_history(&p, KIND, parse_id(&id.0)?).await?;
                Ok(Json(h.into()))
            }

            #[doc = concat!("Add a reference to a reference property of a ", $noun, ".")]
            #[oai(path = $property_path, method = "post", operation_id = $op_ref_create)]
            async fn add_reference(&self, req: &poem::Request,
                #[oai(name = $id_param)] id: Path<String>,
                #[oai(name = "propertyName")] property: Path<String>,
                body: CheckedJson<SingleRef>,
            ) -> ApiResult<OkResponse> {
                let p = $crate::context::principal(req)?;
                self.0
                    .change_references(&p, KIND, parse_id(&id.0)?, &property.0, RefChange::Add($crate::models::to_json(&body.0)?))
                    .await?;
                Ok(OkResponse::Ok)
            }

            #[doc = concat!("Replace all references of a reference property of a ", $noun, ".")]
            #[oai(path = $property_path, method = "put", operation_id = $op_ref_update)]
            async fn replace_references(&self, req: &poem::Request,
                #[oai(name = $id_param)] id: Path<String>,
                #[oai(name = "propertyName")] property: Path<String>,
                body: CheckedJson<Vec<SingleRef>>,
            ) -> ApiResult<OkResponse> {
                let p = $crate::context::principal(req)?;
                self.0
                    .change_references(&p, KIND, parse_id(&id.0)?, &property.0, RefChange::ReplaceAll(body.0.iter().map($crate::models::to_json).collect::<ApiResult<_>>()?))
                    .await?;
                Ok(OkResponse::Ok)
            }

            #[doc = concat!("Remove one reference from a reference property of a ", $noun, ".")]
            #[oai(path = $property_path, method = "delete", operation_id = $op_ref_delete)]
            async fn delete_reference(&self, req: &poem::Request,
                #[oai(name = $id_param)] id: Path<String>,
                #[oai(name = "propertyName")] property: Path<String>,
                body: CheckedJson<SingleRef>,
            ) -> ApiResult<DeletedResponse> {
                let p = $crate::context::principal(req)?;
                self.0
                    .change_references(&p, KIND, parse_id(&id.0)?, &property.0, RefChange::Remove(Id::from(body.0.cref)))
                    .await?;
                Ok(DeletedResponse::NoContent)
            }
        }
    };
}
