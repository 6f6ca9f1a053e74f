//! `/schema`: read and change the ontology. Rules live in `weft_core::ontology`; this module adds
//! what needs the data: a class or property with stored objects is not renamed or deleted
//! (that would orphan them), and says so.

use std::sync::Arc;

use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use weft_plugin_api::ObjectKind;

use super::models::*;
use super::{ApiError, ApiResult, ApiTags};
use crate::payload::CheckedJson;
use weft_core::ontology::{self, Ontology};
use weft_core::Core;

/// The schema operations.
pub struct SchemaApi(pub Arc<Core>);

/// An empty success.
#[derive(ApiResponse)]
pub enum SchemaOk {
    /// Done.
    #[oai(status = 200)]
    Ok,
}

/// The ontology in the contract's shape.
pub fn dump(o: &Ontology) -> ApiResult<SchemaDump> {
    serde_json::to_value(o)
        .and_then(serde_json::from_value)
        .map_err(|e| ApiError::internal(format!("the ontology cannot be shown: {e}")))
}

fn to_ontology<T: serde::Serialize, U: serde::de::DeserializeOwned>(v: &T) -> ApiResult<U> {
    serde_json::to_value(v)
        .and_then(serde_json::from_value)
        .map_err(|e| ApiError::unprocessable(e.to_string()))
}

fn keywords(k: Option<Vec<Keyword>>) -> ApiResult<Option<Vec<ontology::Keyword>>> {
    k.map(|k| to_ontology(&k)).transpose()
}

#[OpenApi(tag = "ApiTags::Schema")]
impl SchemaApi {
    /// Both schemas: the classes of Things and of Actions.
    #[oai(
        path = "/schema",
        method = "get",
        operation_id = "weaviate.schema.dump"
    )]
    async fn dump(&self) -> ApiResult<Json<SchemaDump>> {
        Ok(Json(dump(&*self.0.ontology().await?)?))
    }
}

/// Declares the schema operations of one kind (`/schema/things/…` or `/schema/actions/…`).
macro_rules! schema_kind_api {
    (
        api: $api:ident,
        kind: $kind:expr,
        noun: $noun:literal,
        classes: $classes:literal,
        class: $class:literal,
        properties: $properties:literal,
        property: $property:literal,
        ops: [$create:literal, $update:literal, $delete:literal, $padd:literal, $pupdate:literal, $pdelete:literal $(,)?] $(,)?
    ) => {
        #[doc = concat!("The schema operations on ", $noun, " classes.")]
        pub struct $api(pub Arc<Core>);

        #[OpenApi(tag = "ApiTags::Schema")]
        impl $api {
            #[doc = concat!("Add a ", $noun, " class.")]
            #[oai(path = $classes, method = "post", operation_id = $create)]
            async fn create(&self, body: CheckedJson<SemanticSchemaClass>) -> ApiResult<SchemaOk> {
                self.0.add_class($kind, to_ontology(&body.0)?).await?;
                Ok(SchemaOk::Ok)
            }

            #[doc = concat!("Rename a ", $noun, " class or replace its keywords.")]
            #[oai(path = $class, method = "put", operation_id = $update)]
            async fn update(
                &self,
                #[oai(name = "className")] class: Path<String>,
                body: CheckedJson<RenameRequest>,
            ) -> ApiResult<SchemaOk> {
                let k = keywords(body.0.keywords)?;
                self.0.update_class($kind, &class.0, body.0.new_name, k).await?;
                Ok(SchemaOk::Ok)
            }

            #[doc = concat!("Delete a ", $noun, " class (refused while it has objects or is referred to).")]
            #[oai(path = $class, method = "delete", operation_id = $delete)]
            async fn delete(&self, #[oai(name = "className")] class: Path<String>) -> ApiResult<SchemaOk> {
                self.0.delete_class($kind, &class.0).await?;
                Ok(SchemaOk::Ok)
            }

            #[doc = concat!("Add a property to a ", $noun, " class.")]
            #[oai(path = $properties, method = "post", operation_id = $padd)]
            async fn property_add(
                &self,
                #[oai(name = "className")] class: Path<String>,
                body: CheckedJson<SemanticSchemaClassProperty>,
            ) -> ApiResult<SchemaOk> {
                self.0.add_property($kind, &class.0, to_ontology(&body.0)?).await?;
                Ok(SchemaOk::Ok)
            }

            #[doc = concat!("Rename a property of a ", $noun, " class or replace its keywords.")]
            #[oai(path = $property, method = "put", operation_id = $pupdate)]
            async fn property_update(
                &self,
                #[oai(name = "className")] class: Path<String>,
                #[oai(name = "propertyName")] property: Path<String>,
                body: CheckedJson<RenameRequest>,
            ) -> ApiResult<SchemaOk> {
                let k = keywords(body.0.keywords)?;
                self.0.update_property($kind, &class.0, &property.0, body.0.new_name, k).await?;
                Ok(SchemaOk::Ok)
            }

            #[doc = concat!("Delete a property of a ", $noun, " class.")]
            #[oai(path = $property, method = "delete", operation_id = $pdelete)]
            async fn property_delete(
                &self,
                #[oai(name = "className")] class: Path<String>,
                #[oai(name = "propertyName")] property: Path<String>,
            ) -> ApiResult<SchemaOk> {
                self.0.delete_property($kind, &class.0, &property.0).await?;
                Ok(SchemaOk::Ok)
            }
        }
    };
}

schema_kind_api! {
    api: SchemaThingsApi,
    kind: ObjectKind::Thing,
    noun: "Thing",
    classes: "/schema/things",
    class: "/schema/things/:className",
    properties: "/schema/things/:className/properties",
    property: "/schema/things/:className/properties/:propertyName",
    ops: [
        "weaviate.schema.things.create",
        "weaviate.schema.things.update",
        "weaviate.schema.things.delete",
        "weaviate.schema.things.properties.add",
        "weaviate.schema.things.properties.update",
        "weaviate.schema.things.properties.delete",
    ],
}

schema_kind_api! {
    api: SchemaActionsApi,
    kind: ObjectKind::Action,
    noun: "Action",
    classes: "/schema/actions",
    class: "/schema/actions/:className",
    properties: "/schema/actions/:className/properties",
    property: "/schema/actions/:className/properties/:propertyName",
    ops: [
        "weaviate.schema.actions.create",
        "weaviate.schema.actions.update",
        "weaviate.schema.actions.delete",
        "weaviate.schema.actions.properties.add",
        "weaviate.schema.actions.properties.update",
        "weaviate.schema.actions.properties.delete",
    ],
}
