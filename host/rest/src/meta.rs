//! `/meta`: who this server is, its schemas, and the plugins it runs with.

use std::sync::Arc;

use poem_openapi::payload::Json;
use poem_openapi::OpenApi;

use super::models::{Meta, PluginInfo};
use super::schema_endpoints::dump;
use super::{ApiResult, ApiTags};
use weft_core::Core;

/// The meta operation.
pub struct MetaApi(pub Arc<Core>);

#[OpenApi(tag = "ApiTags::Meta")]
impl MetaApi {
    /// Information about this server: its URL, both schemas and its plugins (with each
    /// connector's write mode and whether a plugin is poisoned).
    #[oai(path = "/meta", method = "get", operation_id = "weaviate.meta.get")]
    async fn meta(&self) -> ApiResult<Json<Meta>> {
        // `/meta` answers even when the connector cannot (it then says why, per plugin).
        let ontology = match self.0.ontology().await {
            Ok(o) => o,
            Err(_) => self.0.cached_ontology().await,
        };
        let schema = dump(&ontology)?;
        Ok(Json(Meta {
            hostname: self.0.public_url.clone(),
            actions_schema: schema.actions,
            things_schema: schema.things,
            plugins: self
                .0
                .plugin_status()
                .into_iter()
                .map(|p| PluginInfo {
                    name: p.info.name,
                    kind: p.info.kind,
                    interface_version: p.info.interface_version,
                    capabilities: p.info.capabilities,
                    write_mode: p.write_mode,
                    status: p.status,
                })
                .collect(),
        }))
    }
}
