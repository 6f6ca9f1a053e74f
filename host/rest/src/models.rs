//! Request and response bodies with the contract's JSON names.
//!
//! Things and Actions have the same shapes with different names (`thingId`/`actionId`,
//! `things`/`actions`, …); `object_models!` declares both sets from one definition.

use std::collections::BTreeMap;

use poem_openapi::types::{Example, MaybeUndefined};
use poem_openapi::{Enum, Object};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A reference to another object (`SingleRef`).
#[derive(Object, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[oai(example)]
pub struct SingleRef {
    /// The UUID of the object referred to.
    #[oai(rename = "$cref")]
    #[serde(rename = "$cref")]
    pub cref: uuid::Uuid,
    /// Where it lives; `http://localhost/` (the default) or this server's public URL mean
    /// this server, any other URL a peer.
    #[oai(rename = "locationUrl", default = "default_location")]
    #[serde(rename = "locationUrl", default = "default_location")]
    pub location_url: String,
    /// What it is.
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub kind: RefType,
}

fn default_location() -> String {
    weft_core::ontology::LOCALHOST_URL.to_string()
}

/// The type of a reference.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefType {
    /// A Thing.
    Thing,
    /// An Action.
    Action,
    /// A key.
    Key,
}

/// Status of one item of a batch.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "UPPERCASE")]
pub enum ResultStatus {
    /// Stored.
    Success,
    /// Accepted, being stored (async).
    Pending,
    /// Not stored; see `errors`.
    Failed,
}

/// The outcome of one item of a batch.
#[derive(Object, Debug, Clone)]
pub struct ItemResult {
    /// Outcome.
    pub status: ResultStatus,
    /// Why it failed.
    #[oai(skip_serializing_if_is_none)]
    pub errors: Option<super::ErrorResponse>,
}

/// One JSON Patch operation (RFC 6902).
#[derive(Object, Debug, Clone, Serialize)]
#[oai(example)]
pub struct PatchDocument {
    /// The operation.
    pub op: PatchOp,
    /// A JSON Pointer, e.g. `/schema/name`.
    pub path: String,
    /// `move` and `copy`: where from.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// `add`, `replace`, `test`: the value (any JSON, `null` too).
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub value: MaybeUndefined<Value>,
}

/// JSON Patch operations.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum PatchOp {
    /// Add.
    Add,
    /// Remove.
    Remove,
    /// Replace.
    Replace,
    /// Move.
    Move,
    /// Copy.
    Copy,
    /// Test.
    Test,
}

/// A reference to a key of this server.
pub fn key_ref(id: weft_plugin_api::Id) -> SingleRef {
    SingleRef {
        cref: id.to_uuid(),
        location_url: weft_core::ontology::LOCALHOST_URL.to_string(),
        kind: RefType::Key,
    }
}

/// A model as the JSON the core works on.
pub fn to_json<T: Serialize>(v: &T) -> crate::ApiResult<Value> {
    serde_json::to_value(v).map_err(|e| crate::ApiError::internal(e.to_string()))
}

/// The property bag of an object (`schema`): property name to value.
pub type PropertyBag = BTreeMap<String, Value>;

macro_rules! object_models {
    (
        noun: $noun:literal,
        id_field: $id_field:literal,
        list_field: $list_field:literal,
        create: $Create:ident,
        get: $Get:ident,
        list: $List:ident,
        create_request: $CreateRequest:ident,
        create_field: $create_field:literal,
        history_object: $HistoryObject:ident,
        history: $History:ident,
        batch_request: $BatchRequest:ident,
        batch_item: $BatchItem:ident $(,)?
    ) => {
        #[doc = concat!("A ", $noun, " as sent to be created or validated.")]
        #[derive(Object, Debug, Clone, Default)]
        #[oai(example)]
        pub struct $Create {
            /// The context URL.
            #[oai(rename = "@context", skip_serializing_if_is_none)]
            pub context: Option<String>,
            /// The class, defined in the schema.
            #[oai(rename = "@class", skip_serializing_if_is_none)]
            pub class: Option<String>,
            /// The property values.
            #[oai(skip_serializing_if_is_none)]
            pub schema: Option<PropertyBag>,
        }

        // Also `Serialize` with the same names, for `payload::SerdeJson` (checked there).
        #[doc = concat!("A stored ", $noun, ".")]
        #[derive(Object, Debug, Clone, Serialize)]
        pub struct $Get {
            /// The context URL.
            #[oai(rename = "@context")]
            #[serde(rename = "@context")]
            pub context: String,
            /// The class.
            #[oai(rename = "@class")]
            #[serde(rename = "@class")]
            pub class: String,
            /// The property values.
            pub schema: PropertyBag,
            /// The key that owns it.
            pub key: SingleRef,
            /// Creation time, Unix milliseconds.
            #[oai(rename = "creationTimeUnix")]
            #[serde(rename = "creationTimeUnix")]
            pub creation_time_unix: i64,
            /// Last update time, Unix milliseconds.
            #[oai(rename = "lastUpdateTimeUnix")]
            #[serde(rename = "lastUpdateTimeUnix")]
            pub last_update_time_unix: i64,
            /// Its id.
            #[oai(rename = $id_field)]
            #[serde(rename = $id_field)]
            pub id: uuid::Uuid,
        }

        #[doc = concat!("A page of ", $noun, "s.")]
        #[derive(Object, Debug, Clone)]
        pub struct $List {
            /// The objects on this page, newest first.
            #[oai(rename = $list_field)]
            pub items: Vec<$Get>,
            /// How many there are in all.
            #[oai(rename = "totalResults")]
            pub total_results: i64,
        }

        #[doc = concat!("Body of a create request.")]
        #[derive(Object, Debug, Clone)]
        #[oai(example)]
        pub struct $CreateRequest {
            #[doc = concat!("The ", $noun, " to create.")]
            #[oai(rename = $create_field, skip_serializing_if_is_none)]
            pub object: Option<$Create>,
            /// Answer 202 before the write is stored.
            #[oai(rename = "async", default)]
            pub is_async: bool,
        }

        #[doc = concat!("An earlier version of a ", $noun, ".")]
        #[derive(Object, Debug, Clone)]
        pub struct $HistoryObject {
            /// The context URL.
            #[oai(rename = "@context")]
            pub context: String,
            /// The class.
            #[oai(rename = "@class")]
            pub class: String,
            /// The property values.
            pub schema: PropertyBag,
            /// When this version was replaced, Unix milliseconds.
            #[oai(rename = "creationTimeUnix")]
            pub creation_time_unix: i64,
        }

        #[doc = concat!("The history of a ", $noun, ".")]
        #[derive(Object, Debug, Clone)]
        pub struct $History {
            /// Whether it has been deleted.
            pub deleted: bool,
            /// The key that owns it.
            pub key: SingleRef,
            /// Earlier versions, newest first.
            #[oai(rename = "propertyHistory")]
            pub property_history: Vec<$HistoryObject>,
            /// Its id.
            #[oai(rename = $id_field)]
            pub id: uuid::Uuid,
        }

        #[doc = concat!("Body of a batch of ", $noun, "s.")]
        #[derive(Object, Debug, Clone)]
        #[oai(example)]
        pub struct $BatchRequest {
            #[doc = concat!("The ", $noun, "s to create, answered in this order.")]
            #[oai(rename = $list_field, default)]
            pub items: Vec<$Create>,
            /// Answer before the writes are stored.
            #[oai(rename = "async", default)]
            pub is_async: bool,
            /// Which fields to return (accepted for compatibility; all are returned).
            #[oai(default)]
            pub fields: Vec<String>,
        }

        impl Example for $CreateRequest {
            fn example() -> Self {
                $CreateRequest {
                    object: Some(<$Create>::example()),
                    is_async: false,
                }
            }
        }

        impl Example for $BatchRequest {
            fn example() -> Self {
                $BatchRequest {
                    items: vec![<$Create>::example()],
                    is_async: false,
                    fields: vec![],
                }
            }
        }

        #[doc = concat!("One answer of a batch: the ", $noun, " and its outcome.")]
        #[derive(Object, Debug, Clone)]
        pub struct $BatchItem {
            /// The context URL.
            #[oai(rename = "@context", skip_serializing_if_is_none)]
            pub context: Option<String>,
            /// The class.
            #[oai(rename = "@class", skip_serializing_if_is_none)]
            pub class: Option<String>,
            /// The property values.
            #[oai(skip_serializing_if_is_none)]
            pub schema: Option<PropertyBag>,
            /// The key that owns it.
            #[oai(skip_serializing_if_is_none)]
            pub key: Option<SingleRef>,
            /// Creation time.
            #[oai(rename = "creationTimeUnix", skip_serializing_if_is_none)]
            pub creation_time_unix: Option<i64>,
            /// Last update time.
            #[oai(rename = "lastUpdateTimeUnix", skip_serializing_if_is_none)]
            pub last_update_time_unix: Option<i64>,
            /// Its id, when created.
            #[oai(rename = $id_field, skip_serializing_if_is_none)]
            pub id: Option<uuid::Uuid>,
            /// The outcome.
            pub result: ItemResult,
        }
    };
}

object_models! {
    noun: "Thing",
    id_field: "thingId",
    list_field: "things",
    create: ThingCreate,
    get: ThingGetResponse,
    list: ThingsListResponse,
    create_request: ThingCreateRequest,
    create_field: "thing",
    history_object: ThingHistoryObject,
    history: ThingGetHistoryResponse,
    batch_request: ThingsBatchRequest,
    batch_item: ThingsGetResponse,
}

object_models! {
    noun: "Action",
    id_field: "actionId",
    list_field: "actions",
    create: ActionCreate,
    get: ActionGetResponse,
    list: ActionsListResponse,
    create_request: ActionCreateRequest,
    create_field: "action",
    history_object: ActionHistoryObject,
    history: ActionGetHistoryResponse,
    batch_request: ActionsBatchRequest,
    batch_item: ActionsGetResponse,
}

/// Weighted keyword (`SemanticSchemaKeywords` item).
#[derive(Object, Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Keyword {
    /// The word.
    pub keyword: String,
    /// Its weight, in (0, 1].
    pub weight: f64,
}

/// Property cardinality.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cardinality {
    /// At most one value (default).
    #[oai(rename = "atMostOne")]
    #[serde(rename = "atMostOne")]
    AtMostOne,
    /// Many references.
    #[oai(rename = "many")]
    #[serde(rename = "many")]
    Many,
}

/// A property of a class (`SemanticSchemaClassProperty`).
#[derive(Object, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[oai(example)]
pub struct SemanticSchemaClassProperty {
    /// Its name (camelCase).
    pub name: String,
    /// One primitive (`string`, `text`, `int`, `number`, `boolean`, `date`) or class names.
    #[oai(rename = "@dataType", default)]
    #[serde(rename = "@dataType", default)]
    pub data_type: Vec<String>,
    /// `atMostOne` (default) or `many` (references only).
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cardinality: Option<Cardinality>,
    /// Description.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Weighted keywords.
    #[oai(default, skip_serializing_if_is_empty)]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<Keyword>,
    /// Whether the property's name goes into its objects' vectors beside its value (search by
    /// meaning; default false; only `string` and `text` properties are vectorized).
    #[oai(rename = "vectorizePropertyName", skip_serializing_if_is_none)]
    #[serde(
        rename = "vectorizePropertyName",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub vectorize_property_name: Option<bool>,
}

/// A class (`SemanticSchemaClass`).
#[derive(Object, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[oai(example)]
pub struct SemanticSchemaClass {
    /// Its name (CamelCase).
    pub class: String,
    /// Description.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Weighted keywords.
    #[oai(default, skip_serializing_if_is_empty)]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<Keyword>,
    /// Its properties.
    #[oai(default)]
    #[serde(default)]
    pub properties: Vec<SemanticSchemaClassProperty>,
    /// Whether the class name goes into its objects' vectors (search by meaning; default
    /// true).
    #[oai(rename = "vectorizeClassName", skip_serializing_if_is_none)]
    #[serde(
        rename = "vectorizeClassName",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub vectorize_class_name: Option<bool>,
}

/// One schema (`SemanticSchema`).
#[derive(Object, Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct SemanticSchema {
    /// Context URL.
    #[oai(rename = "@context", skip_serializing_if_is_none)]
    #[serde(rename = "@context", skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The classes.
    #[oai(default)]
    #[serde(default)]
    pub classes: Vec<SemanticSchemaClass>,
    /// Maintainer's e-mail.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maintainer: Option<String>,
    /// Schema name.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `thing` or `action`.
    #[oai(rename = "type", skip_serializing_if_is_none)]
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// Both schemas (`GET /schema`).
#[derive(Object, Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct SchemaDump {
    /// Classes of Actions.
    pub actions: SemanticSchema,
    /// Classes of Things.
    pub things: SemanticSchema,
}

/// Body of a class or property update.
#[derive(Object, Debug, Clone)]
#[oai(example)]
pub struct RenameRequest {
    /// The new name.
    #[oai(rename = "newName", skip_serializing_if_is_none)]
    pub new_name: Option<String>,
    /// New keywords (replacing the old ones).
    #[oai(skip_serializing_if_is_none)]
    pub keywords: Option<Vec<Keyword>>,
}

/// A loaded plugin, in `/meta`.
#[derive(Object, Debug, Clone)]
pub struct PluginInfo {
    /// Declared name.
    pub name: String,
    /// `connector` or `contextionary`.
    pub kind: String,
    /// The `weft-plugin-api` version it was built against.
    #[oai(rename = "interfaceVersion")]
    pub interface_version: String,
    /// Declared capabilities.
    pub capabilities: Vec<String>,
    /// Connectors: how writes of one object are kept atomic — `compare-and-set` (the connector
    /// compares versions, interface 1.2) or `serialised-by-host` (this server serialises them;
    /// safe with one server per store only).
    #[oai(rename = "writeMode", skip_serializing_if_is_none)]
    pub write_mode: Option<String>,
    /// `ok`, or `poisoned: …` after the plugin panicked (every later call then answers 503 until
    /// the server is restarted).
    pub status: String,
}

/// `GET /meta`.
#[derive(Object, Debug, Clone)]
pub struct Meta {
    /// The URL of this server.
    pub hostname: String,
    /// Classes of Actions.
    #[oai(rename = "actionsSchema")]
    pub actions_schema: SemanticSchema,
    /// Classes of Things.
    #[oai(rename = "thingsSchema")]
    pub things_schema: SemanticSchema,
    /// The plugins this server runs with.
    pub plugins: Vec<PluginInfo>,
}

// Examples in the document: what a client sends, and what schemathesis's examples phase sends.

impl Example for SingleRef {
    fn example() -> Self {
        SingleRef {
            cref: uuid::Uuid::from_u128(0x6c9a_2f2e_53a1_4c0e_9b7f_5e0c_1d2a_3b4c),
            location_url: default_location(),
            kind: RefType::Thing,
        }
    }
}

impl Example for PatchDocument {
    fn example() -> Self {
        PatchDocument {
            op: PatchOp::Replace,
            path: "/schema/population".into(),
            from: None,
            value: MaybeUndefined::Value(Value::from(810_000)),
        }
    }
}

impl Example for ThingCreate {
    fn example() -> Self {
        ThingCreate {
            context: Some("http://example.org".into()),
            class: Some("City".into()),
            schema: Some(PropertyBag::from([
                ("name".to_string(), Value::from("Amsterdam")),
                ("population".to_string(), Value::from(800_000)),
            ])),
        }
    }
}

impl Example for ActionCreate {
    fn example() -> Self {
        ActionCreate {
            context: Some("http://example.org".into()),
            class: Some("Journey".into()),
            schema: Some(PropertyBag::from([(
                "distance".to_string(),
                Value::from(40.5),
            )])),
        }
    }
}

impl Example for SemanticSchemaClassProperty {
    fn example() -> Self {
        SemanticSchemaClassProperty {
            name: "population".into(),
            data_type: vec!["int".into()],
            cardinality: None,
            description: Some("How many people live there.".into()),
            keywords: vec![],
            vectorize_property_name: None,
        }
    }
}

impl Example for SemanticSchemaClass {
    fn example() -> Self {
        SemanticSchemaClass {
            class: "Village".into(),
            description: Some("A small settlement.".into()),
            keywords: vec![Keyword {
                keyword: "hamlet".into(),
                weight: 0.8,
            }],
            properties: vec![SemanticSchemaClassProperty {
                name: "name".into(),
                data_type: vec!["string".into()],
                cardinality: None,
                description: None,
                keywords: vec![],
                vectorize_property_name: None,
            }],
            vectorize_class_name: None,
        }
    }
}

impl Example for RenameRequest {
    fn example() -> Self {
        RenameRequest {
            new_name: Some("Town".into()),
            keywords: None,
        }
    }
}
