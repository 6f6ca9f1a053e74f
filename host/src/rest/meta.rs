//! `/meta`: who this server is, its schemas, and the plugins it runs with.

use std::sync::Arc;

use poem_openapi::payload::Json;
use poem_openapi::OpenApi;

use super::models::Meta;
use super::schema::dump;
use super::{ApiResult, ApiTags};
use crate::server::App;

/// The meta operation.
pub struct MetaApi(pub Arc<App>);

#[OpenApi(tag = "ApiTags::Meta")]
impl MetaApi {
    /// Information about this server: its URL, both schemas and its plugins.
    #[oai(path = "/meta", method = "get", operation_id = "weaviate.meta.get")]
    async fn meta(&self) -> ApiResult<Json<Meta>> {
        let schema = dump(&*self.0.ontology().await?)?;
        Ok(Json(Meta {
            hostname: self.0.public_url.clone(),
            actions_schema: schema.actions,
            things_schema: schema.things,
            plugins: self.0.plugins.clone(),
        }))
    }
}
