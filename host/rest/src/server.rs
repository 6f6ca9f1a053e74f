//! The HTTP side of the server: the routes under `/weaviate/v1`, the authorisation middleware
//! (each operation's access comes from [`crate::access`]), the OpenAPI document and the Swagger
//! UI.
//!
//! Owns: routing, authentication from the headers, the finished document. Must not know:
//! schema, key or object rules (in `weft-core`).

use std::sync::Arc;

use poem::{EndpointExt, Route};
use poem_openapi::OpenApiService;
use weft_core::{Access, ConnectorHandle, Core, CoreConfig, Principal};
use weft_p2p::PeerNode;

use crate::access::Operations;
use crate::{ApiError, ApiResult};

/// The application state the handlers share: the core.
pub type App = Core;

/// The API's base path.
pub const BASE_PATH: &str = "/weaviate/v1";

type Apis = (
    crate::keys::KeysApi,
    crate::things::ThingsApi,
    crate::actions::ActionsApi,
    crate::batching::BatchingThingsApi,
    crate::batching::BatchingActionsApi,
    crate::schema::SchemaApi,
    crate::schema::SchemaThingsApi,
    crate::schema::SchemaActionsApi,
    crate::meta::MetaApi,
    crate::c11y::C11yApi,
    crate::graphql::GraphqlApi,
    weft_p2p::Apis,
);

fn service(app: Arc<App>, peer: Option<Arc<PeerNode>>) -> OpenApiService<Apis, ()> {
    let apis = (
        crate::keys::KeysApi(app.clone()),
        crate::things::ThingsApi(app.clone()),
        crate::actions::ActionsApi(app.clone()),
        crate::batching::BatchingThingsApi(app.clone()),
        crate::batching::BatchingActionsApi(app.clone()),
        crate::schema::SchemaApi(app.clone()),
        crate::schema::SchemaThingsApi(app.clone()),
        crate::schema::SchemaActionsApi(app.clone()),
        crate::meta::MetaApi(app.clone()),
        crate::c11y::C11yApi(app.clone()),
        crate::graphql::GraphqlApi::new(app),
        weft_p2p::apis(peer),
    );
    OpenApiService::new(apis, "Weft", env!("CARGO_PKG_VERSION"))
        .description(
            "Knowledge-graph server with pluggable storage, wire-compatible with the Weaviate 0.12 REST API.",
        )
        .server(BASE_PATH)
}

/// Finishes poem-openapi's document for generated clients:
/// * adds the contract's two header schemes, required **together** on every operation
///   (poem-openapi can only express alternatives);
/// * writes a described enum-typed field as a plain `$ref` instead of poem-openapi's
///   `allOf: [{$ref}, {description}]`, which client generators (openapi-python-client) refuse
///   for non-object schemas.
fn finish_document(spec: &str) -> String {
    let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(spec) else {
        return spec.to_string();
    };
    let enums: Vec<String> = doc["components"]["schemas"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, s)| s.get("enum").is_some())
                .map(|(n, _)| format!("#/components/schemas/{n}"))
                .collect()
        })
        .unwrap_or_default();
    unwrap_enum_refs(&mut doc, &enums);
    let scheme = |name: &str, what: &str| serde_json::json!({"type": "apiKey", "in": "header", "name": name, "description": what});
    doc["components"]["securitySchemes"] = serde_json::json!({
        "apiKey": scheme("X-API-KEY", "The key id."),
        "apiToken": scheme("X-API-TOKEN", "The key's token."),
    });
    if let Some(paths) = doc["paths"].as_object_mut() {
        for ops in paths.values_mut() {
            if let Some(ops) = ops.as_object_mut() {
                for op in ops.values_mut() {
                    let access = op["operationId"]
                        .as_str()
                        .and_then(crate::access::access_of);
                    if access != Some(Access::None) {
                        op["security"] = serde_json::json!([{"apiKey": [], "apiToken": []}]);
                    }
                    if let Some(a) = access {
                        op["x-weft-access"] = serde_json::json!(a.as_str());
                    }
                }
            }
        }
    }
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| spec.to_string())
}

fn unwrap_enum_refs(v: &mut serde_json::Value, enums: &[String]) {
    use serde_json::Value;
    if let Value::Object(m) = v {
        let target = m
            .get("allOf")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(|first| first.get("$ref"))
            .and_then(Value::as_str)
            .filter(|r| enums.iter().any(|e| e == r))
            .map(str::to_string);
        if let Some(r) = target {
            *v = serde_json::json!({ "$ref": r });
            return;
        }
        for child in m.values_mut() {
            unwrap_enum_refs(child, enums);
        }
    } else if let Value::Array(items) = v {
        for child in items {
            unwrap_enum_refs(child, enums);
        }
    }
}

/// The OpenAPI document of the REST API, pretty JSON.
pub fn openapi_document() -> String {
    // The document does not depend on state; build it over an inert connector.
    let conn = ConnectorHandle::unavailable();
    let app = Arc::new(App::new(conn, CoreConfig::default(), vec![]));
    finish_document(&service(app, None).spec())
}

/// The caller of a request (set by the authorisation middleware).
pub fn principal(req: &poem::Request) -> ApiResult<Principal> {
    req.extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| ApiError::unauthorized(weft_core::keys::MISSING_HEADERS))
}

/// The peer address of a request, IPv4-mapped IPv6 addresses as IPv4.
fn peer(req: &poem::Request) -> Option<std::net::IpAddr> {
    req.remote_addr()
        .as_socket_addr()
        .map(|a| a.ip())
        .map(|ip| match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map(std::net::IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        })
}

/// Authenticates a request and checks the access its operation declares. `None` when the
/// operation needs no key.
async fn authorize(
    app: &App,
    ops: &Operations,
    req: &poem::Request,
) -> Result<Option<Principal>, poem::Response> {
    use poem::IntoResponse;
    // Nested under the base path, the request's path is already relative to it.
    let path = req.uri().path();
    let rel = path.strip_prefix(BASE_PATH).unwrap_or(path);
    let matched = ops.find(req.method(), rel);
    if matched.as_ref().is_some_and(|m| !m.access.needs_key()) {
        return Ok(None);
    }
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let p = app
        .keys
        .authenticate(
            header("X-API-KEY"),
            header("X-API-TOKEN"),
            app.client_address(
                peer(req),
                &req.headers()
                    .get_all("x-forwarded-for")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect::<Vec<_>>(),
            ),
        )
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    // Fail closed: a request no operation matches reaches no handler, whatever the router
    // would make of it; a valid key learns that the path (or the method) does not exist.
    let Some(m) = matched else {
        let allowed = ops.methods_of(rel);
        let (status, message) = if allowed.is_empty() {
            (
                poem::http::StatusCode::NOT_FOUND,
                format!(
                    "there is no operation at {BASE_PATH}{rel}; see {BASE_PATH}/openapi.json for the API"
                ),
            )
        } else {
            (
                poem::http::StatusCode::METHOD_NOT_ALLOWED,
                format!(
                    "{} is not an operation of {BASE_PATH}{rel}, which has {}; see {BASE_PATH}/openapi.json",
                    req.method(),
                    allowed.join(", ")
                ),
            )
        };
        let body = serde_json::json!({"error": [{"message": message}]});
        return Err(poem::Response::builder()
            .status(status)
            .content_type("application/json")
            .body(body.to_string()));
    };
    m.access
        .check(&p, crate::access::root_purpose(&m.operation_id))
        .map_err(|e| ApiError::from(e).into_response())?;
    Ok(Some(p))
}

/// The 413 answer for a body over `limits.max_body_bytes`.
fn too_large(limit: usize) -> poem::Response {
    use poem::IntoResponse;
    ApiError::from(weft_core::Limits::refuse(
        "the request body",
        "max_body_bytes",
        format!("{limit} bytes"),
    ))
    .into_response()
}

/// The routes: the API (behind the key check), its OpenAPI document and a Swagger UI (served
/// from the binary, no network needed).
pub fn routes(app: Arc<App>, peer: Option<Arc<PeerNode>>) -> impl poem::Endpoint {
    use poem::IntoResponse;
    let api = service(app.clone(), peer);
    let raw = api.spec();
    let spec = finish_document(&raw);
    let ui = Arc::new(api.swagger_ui_html().replace(&raw, &spec));
    let ui2 = ui.clone();
    let doc: serde_json::Value = serde_json::from_str(&spec).unwrap_or_default();
    let ops = Arc::new(Operations::new(&doc).unwrap_or_else(|e| panic!("{e}")));
    let guarded = api.around(move |ep, mut req| {
        let (app, ops) = (app.clone(), ops.clone());
        async move {
            let limit = app.limits.max_body_bytes;
            // A declared length over the limit is refused before anything else is read.
            let declared = req
                .headers()
                .get(poem::http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > limit as u64) {
                return Ok(too_large(limit));
            }
            match authorize(&app, &ops, &req).await {
                Ok(p) => {
                    if let Some(p) = p {
                        req.extensions_mut().insert(p);
                    }
                    // A body without a declared length is read up to the limit, no further.
                    if declared.is_none() {
                        match req.take_body().into_bytes_limit(limit).await {
                            Ok(bytes) => req.set_body(bytes),
                            Err(poem::error::ReadBodyError::PayloadTooLarge) => {
                                return Ok(too_large(limit))
                            }
                            Err(e) => {
                                return Ok(ApiError::bad_request(format!(
                                    "the request body could not be read: {e}"
                                ))
                                .into_response())
                            }
                        }
                    }
                    ep.call(req).await.map(IntoResponse::into_response)
                }
                Err(refused) => Ok(refused),
            }
        }
    });
    Route::new()
        .nest(BASE_PATH, guarded)
        .at(
            format!("{BASE_PATH}/openapi.json"),
            poem::endpoint::make_sync(move |_| {
                poem::Response::builder()
                    .content_type("application/json")
                    .body(spec.clone())
            }),
        )
        .at(
            format!("{BASE_PATH}/swagger"),
            poem::endpoint::make_sync(move |_| poem::web::Html(ui.to_string())),
        )
        .at(
            format!("{BASE_PATH}/swagger/"),
            poem::endpoint::make_sync(move |_| poem::web::Html(ui2.to_string())),
        )
        .catch_all_error(crate::error_body)
        .with(poem::middleware::Tracing)
}
