//! `/schema`: read and change the ontology. Rules live in `crate::ontology`; this module adds
//! what needs the data: a class or property with stored objects is not renamed or deleted
//! (that would orphan them), and says so.

use std::sync::Arc;

use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use weft_plugin_api::{ObjectKind, ObjectQuery};

use super::models::*;
use super::{ApiError, ApiResult, ApiTags};
use crate::ontology::{self, kind_word, Ontology};
use crate::server::App;

/// The schema operations.
pub struct SchemaApi(pub Arc<App>);

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

impl App {
    /// How many objects of `class` are stored.
    async fn instances(&self, kind: ObjectKind, class: &str) -> ApiResult<u64> {
        let mut q = ObjectQuery::all(kind, 0);
        q.class = class.into();
        Ok(self.conn.query_objects(q).await?.total)
    }

    async fn refuse_if_instances(
        &self,
        kind: ObjectKind,
        class: &str,
        what: &str,
    ) -> ApiResult<()> {
        let n = self.instances(kind, class).await?;
        if n > 0 {
            return Err(ApiError::unprocessable(format!(
                "cannot {what}: class {class} has {n} stored {}{}; delete them first (changing the schema under stored objects would orphan their data)",
                kind_word(kind),
                if n == 1 { "" } else { "s" }
            )));
        }
        Ok(())
    }

    async fn add_class(&self, kind: ObjectKind, class: SemanticSchemaClass) -> ApiResult<SchemaOk> {
        let c: ontology::Class = to_ontology(&class)?;
        self.change_ontology(|o| o.add_class(kind, c.clone()))
            .await?;
        Ok(SchemaOk::Ok)
    }

    async fn update_class(
        &self,
        kind: ObjectKind,
        name: &str,
        body: RenameRequest,
    ) -> ApiResult<SchemaOk> {
        if body.new_name.as_deref().is_some_and(|n| n != name) {
            self.refuse_if_instances(kind, name, &format!("rename class {name}"))
                .await?;
        }
        let k = keywords(body.keywords)?;
        self.change_ontology(|o| o.update_class(kind, name, body.new_name.clone(), k.clone()))
            .await?;
        Ok(SchemaOk::Ok)
    }

    async fn delete_class(&self, kind: ObjectKind, name: &str) -> ApiResult<SchemaOk> {
        if self.ontology().await?.class(kind, name).is_none() {
            return Err(ApiError::bad_request(format!(
                "there is no {} class {name:?} to delete",
                kind_word(kind)
            )));
        }
        self.refuse_if_instances(kind, name, &format!("delete class {name}"))
            .await
            .map_err(|e| ApiError::bad_request(e.body().error[0].message.clone()))?;
        self.change_ontology(|o| o.delete_class(kind, name))
            .await
            .map_err(|e| match e {
                ApiError::Unprocessable(b) | ApiError::NotFound(b) => ApiError::BadRequest(b),
                e => e,
            })?;
        Ok(SchemaOk::Ok)
    }

    async fn add_property(
        &self,
        kind: ObjectKind,
        class: &str,
        p: SemanticSchemaClassProperty,
    ) -> ApiResult<SchemaOk> {
        let p: ontology::Property = to_ontology(&p)?;
        self.change_ontology(|o| o.add_property(kind, class, p.clone()))
            .await?;
        Ok(SchemaOk::Ok)
    }

    async fn update_property(
        &self,
        kind: ObjectKind,
        class: &str,
        name: &str,
        body: RenameRequest,
    ) -> ApiResult<SchemaOk> {
        if body.new_name.as_deref().is_some_and(|n| n != name) {
            self.refuse_if_instances(kind, class, &format!("rename property {class}.{name}"))
                .await?;
        }
        let k = keywords(body.keywords)?;
        self.change_ontology(|o| {
            o.update_property(kind, class, name, body.new_name.clone(), k.clone())
        })
        .await?;
        Ok(SchemaOk::Ok)
    }

    async fn delete_property(
        &self,
        kind: ObjectKind,
        class: &str,
        name: &str,
    ) -> ApiResult<SchemaOk> {
        self.refuse_if_instances(kind, class, &format!("delete property {class}.{name}"))
            .await?;
        self.change_ontology(|o| o.delete_property(kind, class, name))
            .await?;
        Ok(SchemaOk::Ok)
    }
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

    /// Add a Thing class.
    #[oai(
        path = "/schema/things",
        method = "post",
        operation_id = "weaviate.schema.things.create"
    )]
    async fn things_create(&self, body: Json<SemanticSchemaClass>) -> ApiResult<SchemaOk> {
        self.0.add_class(ObjectKind::Thing, body.0).await
    }

    /// Rename a Thing class or replace its keywords.
    #[oai(
        path = "/schema/things/:className",
        method = "put",
        operation_id = "weaviate.schema.things.update"
    )]
    async fn things_update(
        &self,
        #[oai(name = "className")] class: Path<String>,
        body: Json<RenameRequest>,
    ) -> ApiResult<SchemaOk> {
        self.0
            .update_class(ObjectKind::Thing, &class.0, body.0)
            .await
    }

    /// Delete a Thing class (refused while it has Things or is referred to).
    #[oai(
        path = "/schema/things/:className",
        method = "delete",
        operation_id = "weaviate.schema.things.delete"
    )]
    async fn things_delete(
        &self,
        #[oai(name = "className")] class: Path<String>,
    ) -> ApiResult<SchemaOk> {
        self.0.delete_class(ObjectKind::Thing, &class.0).await
    }

    /// Add a property to a Thing class.
    #[oai(
        path = "/schema/things/:className/properties",
        method = "post",
        operation_id = "weaviate.schema.things.properties.add"
    )]
    async fn things_property_add(
        &self,
        #[oai(name = "className")] class: Path<String>,
        body: Json<SemanticSchemaClassProperty>,
    ) -> ApiResult<SchemaOk> {
        self.0
            .add_property(ObjectKind::Thing, &class.0, body.0)
            .await
    }

    /// Rename a property of a Thing class or replace its keywords.
    #[oai(
        path = "/schema/things/:className/properties/:propertyName",
        method = "put",
        operation_id = "weaviate.schema.things.properties.update"
    )]
    async fn things_property_update(
        &self,
        #[oai(name = "className")] class: Path<String>,
        #[oai(name = "propertyName")] property: Path<String>,
        body: Json<RenameRequest>,
    ) -> ApiResult<SchemaOk> {
        self.0
            .update_property(ObjectKind::Thing, &class.0, &property.0, body.0)
            .await
    }

    /// Delete a property of a Thing class.
    #[oai(
        path = "/schema/things/:className/properties/:propertyName",
        method = "delete",
        operation_id = "weaviate.schema.things.properties.delete"
    )]
    async fn things_property_delete(
        &self,
        #[oai(name = "className")] class: Path<String>,
        #[oai(name = "propertyName")] property: Path<String>,
    ) -> ApiResult<SchemaOk> {
        self.0
            .delete_property(ObjectKind::Thing, &class.0, &property.0)
            .await
    }

    /// Add an Action class.
    #[oai(
        path = "/schema/actions",
        method = "post",
        operation_id = "weaviate.schema.actions.create"
    )]
    async fn actions_create(&self, body: Json<SemanticSchemaClass>) -> ApiResult<SchemaOk> {
        self.0.add_class(ObjectKind::Action, body.0).await
    }

    /// Rename an Action class or replace its keywords.
    #[oai(
        path = "/schema/actions/:className",
        method = "put",
        operation_id = "weaviate.schema.actions.update"
    )]
    async fn actions_update(
        &self,
        #[oai(name = "className")] class: Path<String>,
        body: Json<RenameRequest>,
    ) -> ApiResult<SchemaOk> {
        self.0
            .update_class(ObjectKind::Action, &class.0, body.0)
            .await
    }

    /// Delete an Action class (refused while it has Actions or is referred to).
    #[oai(
        path = "/schema/actions/:className",
        method = "delete",
        operation_id = "weaviate.schema.actions.delete"
    )]
    async fn actions_delete(
        &self,
        #[oai(name = "className")] class: Path<String>,
    ) -> ApiResult<SchemaOk> {
        self.0.delete_class(ObjectKind::Action, &class.0).await
    }

    /// Add a property to an Action class.
    #[oai(
        path = "/schema/actions/:className/properties",
        method = "post",
        operation_id = "weaviate.schema.actions.properties.add"
    )]
    async fn actions_property_add(
        &self,
        #[oai(name = "className")] class: Path<String>,
        body: Json<SemanticSchemaClassProperty>,
    ) -> ApiResult<SchemaOk> {
        self.0
            .add_property(ObjectKind::Action, &class.0, body.0)
            .await
    }

    /// Rename a property of an Action class or replace its keywords.
    #[oai(
        path = "/schema/actions/:className/properties/:propertyName",
        method = "put",
        operation_id = "weaviate.schema.actions.properties.update"
    )]
    async fn actions_property_update(
        &self,
        #[oai(name = "className")] class: Path<String>,
        #[oai(name = "propertyName")] property: Path<String>,
        body: Json<RenameRequest>,
    ) -> ApiResult<SchemaOk> {
        self.0
            .update_property(ObjectKind::Action, &class.0, &property.0, body.0)
            .await
    }

    /// Delete a property of an Action class.
    #[oai(
        path = "/schema/actions/:className/properties/:propertyName",
        method = "delete",
        operation_id = "weaviate.schema.actions.properties.delete"
    )]
    async fn actions_property_delete(
        &self,
        #[oai(name = "className")] class: Path<String>,
        #[oai(name = "propertyName")] property: Path<String>,
    ) -> ApiResult<SchemaOk> {
        self.0
            .delete_property(ObjectKind::Action, &class.0, &property.0)
            .await
    }
}
