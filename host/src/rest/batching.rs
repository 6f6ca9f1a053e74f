//! `/batching/{things,actions}`: create many objects in one request; every item succeeds or
//! fails on its own and the answer lists them in request order.

use std::sync::Arc;

use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use weft_plugin_api::ObjectKind;

use super::models::*;
use super::objects::ObjectView;
use super::{ApiResult, ApiTags, ErrorResponse};
use crate::server::App;

/// The batching operations.
pub struct BatchingApi(pub Arc<App>);

/// Answer of a Things batch.
#[derive(ApiResponse)]
pub enum ThingsBatchResponse {
    /// Every item's outcome, in request order.
    #[oai(status = 200)]
    Ok(Json<Vec<ThingsGetResponse>>),
    /// Accepted; items are stored in the background.
    #[oai(status = 202)]
    Accepted(Json<Vec<ThingsGetResponse>>),
}

/// Answer of an Actions batch.
#[derive(ApiResponse)]
pub enum ActionsBatchResponse {
    /// Every item's outcome, in request order.
    #[oai(status = 200)]
    Ok(Json<Vec<ActionsGetResponse>>),
    /// Accepted; items are stored in the background.
    #[oai(status = 202)]
    Accepted(Json<Vec<ActionsGetResponse>>),
}

fn outcome(r: &ApiResult<ObjectView>, is_async: bool) -> ItemResult {
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
            errors: Some(ErrorResponse {
                error: e.body().error.clone(),
            }),
        },
    }
}

macro_rules! batch_item {
    ($Item:ident, $r:expr, $is_async:expr, $input:expr) => {{
        let result = outcome(&$r, $is_async);
        match $r {
            Ok(v) => $Item {
                key: Some(v.key_ref()),
                context: Some(v.context),
                class: Some(v.class),
                schema: Some(v.schema),
                creation_time_unix: Some(v.created),
                last_update_time_unix: Some(v.updated),
                id: Some(v.id.to_uuid()),
                result,
            },
            Err(_) => $Item {
                key: None,
                context: $input.context,
                class: $input.class,
                schema: $input.schema,
                creation_time_unix: None,
                last_update_time_unix: None,
                id: None,
                result,
            },
        }
    }};
}

#[OpenApi(tag = "ApiTags::Batching")]
impl BatchingApi {
    /// Create many Things; each item succeeds or fails on its own.
    #[oai(
        path = "/batching/things",
        method = "post",
        operation_id = "weaviate.batching.things.create"
    )]
    async fn things(
        &self,
        req: &poem::Request,
        body: Json<ThingsBatchRequest>,
    ) -> ApiResult<ThingsBatchResponse> {
        let p = crate::server::principal(req)?;
        let is_async = body.0.is_async;
        let inputs = body.0.items;
        let results = self
            .0
            .batch_create(
                &p,
                ObjectKind::Thing,
                inputs.iter().cloned().map(Into::into).collect(),
                is_async,
            )
            .await;
        let items = results
            .into_iter()
            .zip(inputs)
            .map(|(r, input)| batch_item!(ThingsGetResponse, r, is_async, input))
            .collect();
        Ok(if is_async {
            ThingsBatchResponse::Accepted(Json(items))
        } else {
            ThingsBatchResponse::Ok(Json(items))
        })
    }

    /// Create many Actions; each item succeeds or fails on its own.
    #[oai(
        path = "/batching/actions",
        method = "post",
        operation_id = "weaviate.batching.actions.create"
    )]
    async fn actions(
        &self,
        req: &poem::Request,
        body: Json<ActionsBatchRequest>,
    ) -> ApiResult<ActionsBatchResponse> {
        let p = crate::server::principal(req)?;
        let is_async = body.0.is_async;
        let inputs = body.0.items;
        let results = self
            .0
            .batch_create(
                &p,
                ObjectKind::Action,
                inputs.iter().cloned().map(Into::into).collect(),
                is_async,
            )
            .await;
        let items = results
            .into_iter()
            .zip(inputs)
            .map(|(r, input)| batch_item!(ActionsGetResponse, r, is_async, input))
            .collect();
        Ok(if is_async {
            ActionsBatchResponse::Accepted(Json(items))
        } else {
            ActionsBatchResponse::Ok(Json(items))
        })
    }
}
