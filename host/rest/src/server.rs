//! The HTTP side of the server: the routes under `/weaviate/v1`, the authorisation middleware
//! (each operation's access comes from [`crate::access`]), the OpenAPI document, the Swagger
//! UI and the browser console ([`crate::console_pages`]).
//!
//! Owns: routing, authentication from the headers, the finished document; the composition of
//! every handler group (so no handler module may import this one). Must not know: schema, key
//! or object rules (in `weft-core`).

use std::sync::Arc;

use poem::{Endpoint, EndpointExt, Route};
use poem_openapi::OpenApiService;
use weft_core::{Access, ConnectorHandle, Core, CoreConfig, Principal};
use weft_p2p::PeerNode;

use crate::access::Operations;
use crate::{ApiError, BASE_PATH};

type Apis = (
    crate::keys::KeysApi,
    crate::things::ThingsApi,
    crate::actions::ActionsApi,
    crate::batching::BatchingThingsApi,
    crate::batching::BatchingActionsApi,
    crate::schema_endpoints::SchemaApi,
    crate::schema_endpoints::SchemaThingsApi,
    crate::schema_endpoints::SchemaActionsApi,
    crate::meta::MetaApi,
    crate::c11y::C11yApi,
    crate::graphql::GraphqlApi,
    crate::backup_endpoint::BackupApi,
    weft_p2p::Apis,
);

fn service(core: Arc<Core>, peer: Option<Arc<PeerNode>>) -> OpenApiService<Apis, ()> {
    let apis = (
        crate::keys::KeysApi(core.clone()),
        crate::things::ThingsApi(core.clone()),
        crate::actions::ActionsApi(core.clone()),
        crate::batching::BatchingThingsApi(core.clone()),
        crate::batching::BatchingActionsApi(core.clone()),
        crate::schema_endpoints::SchemaApi(core.clone()),
        crate::schema_endpoints::SchemaThingsApi(core.clone()),
        crate::schema_endpoints::SchemaActionsApi(core.clone()),
        crate::meta::MetaApi(core.clone()),
        crate::c11y::C11yApi(core.clone()),
        crate::graphql::GraphqlApi::new(core.clone()),
        crate::backup_endpoint::BackupApi(core),
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
///   for non-object schemas;
/// * documents the answers every operation can get from outside its handler (the key check,
///   the body limit, poem's parsing of parameters and bodies: [`document_common_answers`]);
/// * states the ranges of the parameters the core checks, with this server's limits
///   ([`document_parameter_ranges`]).
fn finish_document(spec: &str, limits: &weft_core::Limits) -> String {
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
    crate::contract::document_request_schemas(&mut doc);
    let scheme = |name: &str, what: &str| serde_json::json!({"type": "apiKey", "in": "header", "name": name, "description": what});
    doc["components"]["securitySchemes"] = serde_json::json!({
        "apiKey": scheme("X-API-KEY", "The key id."),
        "apiToken": scheme("X-API-TOKEN", "The key's token."),
    });
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, ops) in paths.iter_mut() {
            let c11y = path.starts_with("/c11y/");
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
                    document_common_answers(op, access.is_none_or(|a| a.needs_key()));
                    document_parameter_ranges(op, limits);
                    if c11y {
                        op["responses"]["501"]["description"] = serde_json::json!(format!(
                            "The server runs without a contextionary; the message says how to start it with one: {}.",
                            crate::c11y::NO_CONTEXTIONARY
                        ));
                    }
                }
            }
        }
    }
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| spec.to_string())
}

/// The answers an operation can get before (or around) its handler, added where the handler's
/// own responses do not list them, all with the contract's error body:
/// * 400 — a parameter or body that does not parse as its schema (poem's parsing), or a body
///   that could not be read;
/// * 401/403 — keyed operations: missing or wrong credentials, or a key without the right
///   (the authorisation middleware);
/// * 413 — a body over `limits.max_body_bytes` (operations with a body);
/// * 415 — a body without a JSON `Content-Type` (operations with a body);
/// * 503 with `Retry-After` — every operation: admission control's cap on requests in progress
///   and its request timeout.
///
/// A path no operation has is answered 404 and a method a path does not have 405 (with
/// `Allow`), both after the key check; neither belongs to an operation.
fn document_common_answers(op: &mut serde_json::Value, keyed: bool) {
    let has_body = op.get("requestBody").is_some();
    let has_params = op
        .get("parameters")
        .and_then(serde_json::Value::as_array)
        .is_some_and(|p| !p.is_empty());
    let mut add = |status: &str, description: &str| {
        let Some(responses) = op["responses"].as_object_mut() else {
            return;
        };
        responses.entry(status).or_insert_with(|| {
            serde_json::json!({
                "description": description,
                "content": {"application/json; charset=utf-8": {
                    "schema": {"$ref": "#/components/schemas/ErrorResponse"}
                }}
            })
        });
    };
    if has_body || has_params {
        add(
            "400",
            "A parameter or the body does not parse as its schema.",
        );
    }
    if keyed {
        add(
            "401",
            "Credentials are missing or wrong (`X-API-KEY` and `X-API-TOKEN`).",
        );
        add(
            "403",
            "The key does not have the right this operation needs.",
        );
    }
    // Admission control (admission.rs) answers any operation 503 with `Retry-After` when the
    // server is answering `limits.max_requests_in_progress` requests already.
    add(
        "503",
        "The server is too busy to take the request now (`limits.max_requests_in_progress`) or did not answer it within `limits.request_timeout_ms`; the message says which. With `Retry-After`, send it again after that many seconds.",
    );
    if has_body {
        add(
            "413",
            "The body is over `limits.max_body_bytes`; the message names the limit.",
        );
        add(
            "415",
            "The body has no `Content-Type`, or not a JSON one: send `Content-Type: application/json`.",
        );
    }
    if let Some(busy) = op["responses"]["503"].as_object_mut() {
        let headers = busy
            .entry("headers")
            .or_insert_with(|| serde_json::json!({}));
        if let Some(h) = headers.as_object_mut() {
            h.entry("RETRY-AFTER").or_insert_with(|| {
                serde_json::json!({
                    "description": "Seconds to wait before sending the request again (when waiting helps).",
                    "deprecated": false,
                    "schema": {"type": "integer", "format": "uint64"}
                })
            });
        }
    }
}

/// Parameter ranges the handlers and the core check (answering 422 outside them, with a
/// message naming the range or the limit), stated in the document so that a client knows them:
/// `page` from 1, `maxResults` from 0 (larger pages are cut to the server's `limit`), `k` of
/// `/c11y` from 1 to `limits.max_c11y_k`.
fn document_parameter_ranges(op: &mut serde_json::Value, limits: &weft_core::Limits) {
    let Some(params) = op
        .get_mut("parameters")
        .and_then(serde_json::Value::as_array_mut)
    else {
        return;
    };
    for p in params {
        let (min, max) = match (p["in"].as_str(), p["name"].as_str()) {
            (Some("query"), Some("page")) => (1, None),
            (Some("query"), Some("maxResults")) => (0, None),
            (Some("query"), Some("k")) => (1, Some(limits.max_c11y_k)),
            _ => continue,
        };
        p["schema"]["minimum"] = serde_json::json!(min);
        if let Some(max) = max {
            p["schema"]["maximum"] = serde_json::json!(max);
        }
    }
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
    let core = Arc::new(Core::new(conn, CoreConfig::default(), vec![]));
    let limits = core.limits.clone();
    finish_document(&service(core, None).spec(), &limits)
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
    core: &Core,
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
    let p = core
        .keys
        .authenticate(
            header("X-API-KEY"),
            header("X-API-TOKEN"),
            core.client_address(
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
        return Err(crate::ErrorResponse::new(message).response(status));
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

/// The operations' paths of a finished document, each as its segments (`None` for a path
/// parameter) with the methods it has, for the `Allow` header of a 405.
type PathMethods = Vec<(Vec<Option<String>>, Vec<String>)>;

fn path_methods(doc: &serde_json::Value) -> PathMethods {
    doc["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(path, ops)| {
            let mut methods: Vec<String> = ops
                .as_object()
                .into_iter()
                .flatten()
                .map(|(m, _)| m.to_uppercase())
                .collect();
            methods.sort();
            (crate::contract::segments(path), methods)
        })
        .collect()
}

/// The methods of the path the router routes `path` (relative to the base) to: of the
/// templates that match it, the one with a fixed segment where the others have a parameter,
/// earliest first (as poem's router chooses: `/keys/me` before `/keys/{keyId}`).
fn allowed_methods(paths: &PathMethods, path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    paths
        .iter()
        .filter(|(segments, _)| crate::contract::matches(segments, &parts))
        .max_by_key(|(segments, _)| crate::contract::specificity(segments))
        .map(|(_, methods)| methods.join(", "))
}

/// The routes: the API (behind the key check), its OpenAPI document, a Swagger UI and the
/// browser console (GraphiQL, the start and network pages: `console_pages`), all served from
/// the binary, no network needed. Every 405 says in `Allow` which methods the path has
/// (RFC 9110).
pub fn routes(core: Arc<Core>, peer: Option<Arc<PeerNode>>) -> impl poem::Endpoint {
    use poem::IntoResponse;
    let signing = peer.as_ref().map(|p| p.signing());
    let api = service(core.clone(), peer);
    let raw = api.spec();
    let spec = finish_document(&raw, &core.limits);
    let ui = Arc::new(api.swagger_ui_html().replace(&raw, &spec));
    let ui2 = ui.clone();
    let doc: serde_json::Value = serde_json::from_str(&spec).unwrap_or_default();
    let ops = Arc::new(Operations::new(&doc).unwrap_or_else(|e| panic!("{e}")));
    let paths = Arc::new(path_methods(&doc));
    // Bodies are checked against the document after the key check, before the handler.
    let bodies = Arc::new(crate::contract::BodySchemas::new(&doc));
    let api = crate::contract::CheckBodies {
        inner: poem::IntoEndpoint::into_endpoint(api),
        bodies,
    };
    let pages = Arc::new(weft_console::ServerPages::new(BASE_PATH));
    let graphiql = pages.clone();
    let guarded = api.around(move |ep, mut req| {
        let (core, ops, graphiql) = (core.clone(), ops.clone(), graphiql.clone());
        async move {
            // A browser's GET of the GraphQL endpoint is GraphiQL (a static page: no key
            // needed); every other request to it is the API's, key check first.
            if crate::console_pages::is_graphiql_request(&req) {
                return Ok(crate::console_pages::page(&graphiql.graphiql));
            }
            let limit = core.limits.max_body_bytes;
            // A declared length over the limit is refused before anything else is read.
            let declared = req
                .headers()
                .get(poem::http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > limit as u64) {
                return Ok(too_large(limit));
            }
            match authorize(&core, &ops, &req).await {
                Ok(p) => {
                    if let Some(p) = p {
                        crate::context::set_principal(&mut req, p);
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
    crate::console_pages::mount(Route::new(), pages)
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
        .around(move |ep, req| {
            let paths = paths.clone();
            async move {
                let path = req.uri().path().to_string();
                let mut resp = ep.call(req).await?;
                if resp.status() == poem::http::StatusCode::METHOD_NOT_ALLOWED
                    && !resp.headers().contains_key(poem::http::header::ALLOW)
                {
                    let rel = path.strip_prefix(BASE_PATH).unwrap_or(&path);
                    if let Some(allow) = allowed_methods(&paths, rel)
                        .and_then(|a| poem::http::HeaderValue::from_str(&a).ok())
                    {
                        resp.headers_mut().insert(poem::http::header::ALLOW, allow);
                    }
                }
                Ok(resp)
            }
        })
        // As a peer: a request signed by another server is verified before anything else (a
        // bad signature is a 401), and its answer is signed (weft-p2p).
        .around(move |ep, req| {
            let signing = signing.clone();
            async move {
                match signing {
                    Some(s) => s.serve(ep, req).await,
                    None => ep.call(req).await.map(IntoResponse::into_response),
                }
            }
        })
        .with(poem::middleware::Tracing)
}
