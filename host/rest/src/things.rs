//! `/things`: the typed handlers for Things (the shared logic is `weft_core::objects`).

use super::models::*;
use super::ApiTags;

crate::object_api! {
    api: ThingsApi,
    kind: weft_plugin_api::ObjectKind::Thing,
    tag: "ApiTags::Things",
    noun: "Thing",
    id_param: "thingId",
    create: ThingCreate,
    get: ThingGetResponse,
    list: ThingsListResponse,
    create_request: ThingCreateRequest,
    history_object: ThingHistoryObject,
    history: ThingGetHistoryResponse,
    list_path: "/things",
    validate_path: "/things/validate",
    item_path: "/things/:thingId",
    history_path: "/things/:thingId/history",
    property_path: "/things/:thingId/properties/:propertyName",
    ops: {
        list: "weaviate.things.list",
        create: "weaviate.things.create",
        validate: "weaviate.things.validate",
        get: "weaviate.things.get",
        update: "weaviate.things.update",
        patch: "weaviate.things.patch",
        delete: "weaviate.things.delete",
        history: "weaviate.thing.history.get",
        ref_create: "weaviate.things.properties.create",
        ref_update: "weaviate.things.properties.update",
        ref_delete: "weaviate.things.properties.delete",
    },
}
