//! `/actions`: the typed handlers for Actions (the shared logic is `weft_core::objects`).

use super::models::*;
use super::ApiTags;

crate::object_api! {
    api: ActionsApi,
    kind: weft_plugin_api::ObjectKind::Action,
    tag: "ApiTags::Actions",
    noun: "Action",
    id_param: "actionId",
    create: ActionCreate,
    get: ActionGetResponse,
    list: ActionsListResponse,
    create_request: ActionCreateRequest,
    history_object: ActionHistoryObject,
    history: ActionGetHistoryResponse,
    list_path: "/actions",
    validate_path: "/actions/validate",
    item_path: "/actions/:actionId",
    history_path: "/actions/:actionId/history",
    property_path: "/actions/:actionId/properties/:propertyName",
    ops: {
        list: "weaviate.actions.list",
        create: "weaviate.actions.create",
        validate: "weaviate.actions.validate",
        get: "weaviate.actions.get",
        update: "weaviate.action.update",
        patch: "weaviate.actions.patch",
        delete: "weaviate.actions.delete",
        history: "weaviate.action.history.get",
        ref_create: "weaviate.actions.properties.create",
        ref_update: "weaviate.actions.properties.update",
        ref_delete: "weaviate.actions.properties.delete",
    },
}
