//! `/batching/{things,actions}`: create many objects in one request; every item succeeds or
//! fails on its own and the answer lists them in request order.

use std::sync::Arc;

use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use weft_plugin_api::ObjectKind;

use super::models::*;
use super::{ApiResult, ApiTags, ErrorResponse};
use crate::payload::CheckedJson;
use weft_core::objects::ObjectView;
use weft_core::Core;

fn outcome(r: &weft_core::Result<ObjectView>, is_async: bool) -> ItemResult {
    match r {
        Ok(_) => ItemResult {
            status: if is_async {
                ResultStatus::Pending
            } else {
                ResultStatus::Success
            },
            errors: None,
        },
        Err(e) => ItemResult {
            status: ResultStatus::Failed,
            errors: Some(ErrorResponse::new(e.message.clone())),
        },
    }
}

/// Declares the batch operation of one kind.
macro_rules! batch_api {
    (
        api: $api:ident,
        response: $Response:ident,
        kind: $kind:expr,
        noun: $noun:literal,
        path: $path:literal,
        operation_id: $op:literal,
        request: $Request:ident,
        item: $Item:ident $(,)?
    ) => {
        #[doc = concat!("Answer of a ", $noun, " batch.")]
        #[derive(ApiResponse)]
        pub enum $Response {
            /// Every item's outcome, in request order.
            #[oai(status = 200)]
            Ok(Json<Vec<$Item>>),
            /// Accepted; items are stored in the background.
            #[oai(status = 202)]
            Accepted(Json<Vec<$Item>>),
        }

        #[doc = concat!("The ", $noun, " batch operation.")]
        pub struct $api(pub Arc<Core>);

        #[OpenApi(tag = "ApiTags::Batching")]
        impl $api {
            #[doc = concat!("Create many ", $noun, "s; each item succeeds or fails on its own.")]
            #[oai(path = $path, method = "post", operation_id = $op)]
            async fn create(
                &self,
                req: &poem::Request,
                body: CheckedJson<$Request>,
            ) -> ApiResult<$Response> {
                let p = crate::context::principal(req)?;
                let is_async = body.0.is_async;
                let inputs = body.0.items;
                let bodies = inputs.iter().cloned().map(Into::into).collect();
                let results = self.0.batch_create(&p, $kind, bodies, is_async).await?;
                let items = results
                    .into_iter()
                    .zip(inputs)
                    .map(|(r, input)| {
                        let result = outcome(&r, is_async);
                        match r {
                            Ok(v) => $Item {
                                key: Some(key_ref(v.owner)),
                                context: Some(v.context),
                                class: Some(v.class),
                                schema: Some(v.schema.into_iter().collect()),
                                creation_time_unix: Some(v.created),
                                last_update_time_unix: Some(v.updated),
                                id: Some(v.id.to_uuid()),
                                result,
                            },
                            Err(_) => $Item {
                                key: None,
                                context: input.context,
                                class: input.class,
                                schema: input.schema,
                                creation_time_unix: None,
                                last_update_time_unix: None,
                                id: None,
                                result,
                            },
                        }
                    })
                    .collect();
                Ok(if is_async {
                    $Response::Accepted(Json(items))
                } else {
                    $Response::Ok(Json(items))
                })
            }
        }
    };
}

batch_api! {
    api: BatchingThingsApi,
    response: ThingsBatchResponse,
    kind: ObjectKind::Thing,
    noun: "Thing",
    path: "/batching/things",
    operation_id: "weaviate.batching.things.create",
    request: ThingsBatchRequest,
    item: ThingsGetResponse,
}

batch_api! {
    api: BatchingActionsApi,
    response: ActionsBatchResponse,
    kind: ObjectKind::Action,
    noun: "Action",
    path: "/batching/actions",
    operation_id: "weaviate.batching.actions.create",
    request: ActionsBatchRequest,
    item: ActionsGetResponse,
}
