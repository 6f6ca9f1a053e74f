//! The HTTP server: application state ([`App`]), the caller ([`Principal`]), the ontology cache,
//! and the routes under `/weaviate/v1`.
//!
//! Owns: wiring plugins, ontology and REST together; start-up and shutdown.
//! Must not know: request shapes (in `rest`), schema rules (in `ontology`).

use std::sync::Arc;

use poem::listener::TcpListener;
use poem::{EndpointExt, Route};
use poem_openapi::OpenApiService;
use tokio::sync::RwLock;
use weft_plugin_api::{DocumentName, ErrorKind, Id, PluginKind};

use crate::auth::{KeyTree, Principal, Right};
use crate::config::Environment;
use crate::ontology::{Ontology, SchemaError};
use crate::plugins::{ConnectorHandle, ContextionaryHandle};
use crate::rest::models::PluginInfo;
use crate::rest::{ApiError, ApiResult};

/// The API's base path.
pub const BASE_PATH: &str = "/weaviate/v1";

/// Everything a request handler needs.
pub struct App {
    /// The storage connector.
    pub conn: ConnectorHandle,
    /// This server's public URL (references to it are local).
    pub public_url: String,
    /// Default and maximum page size.
    pub limit: u64,
    /// The plugins this server runs with (for `/meta`).
    pub plugins: Vec<PluginInfo>,
    /// The key tree.
    pub keys: KeyTree,
    /// The contextionary, when one is configured (schema words are then validated).
    pub c11y: Option<ContextionaryHandle>,
    ontology: RwLock<(u64, Arc<Ontology>)>,
}

impl App {
    /// A new application over `conn`.
    pub fn new(conn: ConnectorHandle, env: &Environment, plugins: Vec<PluginInfo>) -> Self {
        let public_url = env
            .network
            .as_ref()
            .and_then(|n| n.public_url.clone())
            .unwrap_or_else(|| format!("http://{}", env.listen));
        App {
            keys: KeyTree::new(conn.clone()),
            c11y: None,
            conn,
            public_url,
            limit: env.limit,
            plugins,
            ontology: RwLock::new((u64::MAX, Arc::new(Ontology::default()))),
        }
    }

    /// Runs with `c` as the contextionary.
    pub fn with_contextionary(mut self, c: ContextionaryHandle) -> Self {
        self.c11y = Some(c);
        self
    }

    /// 403 unless the caller reaches objects owned by `owner` (its own or its descendants').
    pub async fn check_owner(&self, p: &Principal, owner: Id) -> ApiResult<()> {
        if self.keys.reaches(p, owner).await? {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "key {} may not access this object: it belongs to key {owner}, which is not in its subtree",
                p.id()
            )))
        }
    }

    /// The owners whose objects the caller sees; empty means all (the root).
    pub async fn visible_owners(&self, p: &Principal) -> ApiResult<Vec<Id>> {
        if p.is_root() {
            return Ok(vec![]);
        }
        self.keys.subtree(p.id()).await
    }

    /// The current ontology (re-read from the connector when its version changed, so several
    /// hosts sharing one store see each other's changes).
    pub async fn ontology(&self) -> ApiResult<Arc<Ontology>> {
        Ok(self.ontology_versioned().await?.1)
    }

    /// [`App::ontology`] with the version of the stored document it was read from (what
    /// caches derived from the ontology, such as the GraphQL schema, are keyed by).
    pub async fn ontology_versioned(&self) -> ApiResult<(u64, Arc<Ontology>)> {
        let doc = self.conn.get_document(DocumentName::Ontology).await?;
        {
            let cached = self.ontology.read().await;
            if cached.0 == doc.version {
                return Ok((doc.version, cached.1.clone()));
            }
        }
        let parsed = Arc::new(Ontology::from_json(&doc.json).map_err(ApiError::internal)?);
        *self.ontology.write().await = (doc.version, parsed.clone());
        Ok((doc.version, parsed))
    }

    /// Applies `change` to the ontology and stores it with compare-and-set, retrying when
    /// another host changed it meanwhile. Nothing is stored when `change` refuses.
    pub async fn change_ontology<F>(&self, change: F) -> ApiResult<Arc<Ontology>>
    where
        F: Fn(&mut Ontology) -> Result<(), SchemaError>,
    {
        for _ in 0..8 {
            let doc = self.conn.get_document(DocumentName::Ontology).await?;
            let before = Ontology::from_json(&doc.json).map_err(ApiError::internal)?;
            let mut o = before.clone();
            change(&mut o).map_err(|e| match e {
                SchemaError::Invalid(m) => ApiError::unprocessable(m),
                SchemaError::NotFound(m) => ApiError::not_found(m),
            })?;
            if let Some(c) = &self.c11y {
                crate::c11y::annotate(c, &before, &mut o).map_err(ApiError::unprocessable)?;
            }
            match self
                .conn
                .put_document(DocumentName::Ontology, o.to_json(), doc.version)
                .await
            {
                Ok(v) => {
                    let o = Arc::new(o);
                    *self.ontology.write().await = (v, o.clone());
                    return Ok(o);
                }
                Err(e) if e.kind == ErrorKind::Conflict => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::internal(
            "the ontology kept changing under this request; try again",
        ))
    }
}

type Apis = (
    crate::rest::keys::KeysApi,
    crate::rest::things::ThingsApi,
    crate::rest::actions::ActionsApi,
    crate::rest::batching::BatchingThingsApi,
    crate::rest::batching::BatchingActionsApi,
    crate::rest::schema::SchemaApi,
    crate::rest::schema::SchemaThingsApi,
    crate::rest::schema::SchemaActionsApi,
    crate::rest::meta::MetaApi,
    crate::rest::c11y::C11yApi,
    crate::rest::graphql::GraphqlApi,
);

fn service(app: Arc<App>) -> OpenApiService<Apis, ()> {
    let apis = (
        crate::rest::keys::KeysApi(app.clone()),
        crate::rest::things::ThingsApi(app.clone()),
        crate::rest::actions::ActionsApi(app.clone()),
        crate::rest::batching::BatchingThingsApi(app.clone()),
        crate::rest::batching::BatchingActionsApi(app.clone()),
        crate::rest::schema::SchemaApi(app.clone()),
        crate::rest::schema::SchemaThingsApi(app.clone()),
        crate::rest::schema::SchemaActionsApi(app.clone()),
        crate::rest::meta::MetaApi(app.clone()),
        crate::rest::c11y::C11yApi(app.clone()),
        crate::rest::graphql::GraphqlApi::new(app),
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
                    op["security"] = serde_json::json!([{"apiKey": [], "apiToken": []}]);
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
    let app = Arc::new(App::new(conn, &Environment::default(), vec![]));
    finish_document(&service(app).spec())
}

/// The caller of a request (set by the authorisation middleware).
pub fn principal(req: &poem::Request) -> ApiResult<Principal> {
    req.extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| ApiError::unauthorized(crate::auth::MISSING_HEADERS))
}

/// What an operation needs beyond a valid key, by method and path.
enum Needs {
    Right(Right),
    Root(&'static str),
    AnyKey,
}

fn needs(method: &poem::http::Method, path: &str) -> Needs {
    use poem::http::Method;
    let rel = path.strip_prefix(BASE_PATH).unwrap_or(path);
    if rel == "/schema" || rel.starts_with("/schema/") {
        return Needs::Root("changing or reading the schema");
    }
    if rel == "/keys" || rel.starts_with("/keys/") {
        return Needs::AnyKey; // the key tree's own rules apply in the handlers
    }
    if rel.starts_with("/graphql") {
        return Needs::Right(Right::Read);
    }
    match *method {
        Method::GET | Method::HEAD => Needs::Right(Right::Read),
        Method::DELETE => Needs::Right(Right::Delete),
        _ => Needs::Right(Right::Write),
    }
}

async fn authorize(app: &App, req: &poem::Request) -> ApiResult<Principal> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let peer = req
        .remote_addr()
        .as_socket_addr()
        .map(|a| a.ip())
        .map(|ip| match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map(std::net::IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        });
    let p = app
        .keys
        .authenticate(header("X-API-KEY"), header("X-API-TOKEN"), peer)
        .await?;
    match needs(req.method(), req.uri().path()) {
        Needs::Right(r) => p.require(r)?,
        Needs::Root(what) => p.require_root(what)?,
        Needs::AnyKey => {}
    }
    Ok(p)
}

/// The routes: the API (behind the key check), its OpenAPI document and a Swagger UI (served
/// from the binary, no network needed).
pub fn routes(app: Arc<App>) -> impl poem::Endpoint {
    use poem::IntoResponse;
    let api = service(app.clone());
    let raw = api.spec();
    let spec = finish_document(&raw);
    let ui = Arc::new(api.swagger_ui_html().replace(&raw, &spec));
    let ui2 = ui.clone();
    let guarded = api.around(move |ep, mut req| {
        let app = app.clone();
        async move {
            match authorize(&app, &req).await {
                Ok(p) => {
                    req.extensions_mut().insert(p);
                    ep.call(req).await.map(IntoResponse::into_response)
                }
                Err(e) => Ok(e.into_response()),
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
        .catch_all_error(crate::rest::error_body)
        .with(poem::middleware::Tracing)
}

/// Loads the plugins of `env`, then serves until interrupted.
pub fn serve(env: Environment) -> anyhow::Result<()> {
    let dir = env
        .plugin_dir
        .clone()
        .unwrap_or_else(crate::plugins::default_plugin_dir);
    let plugin = crate::plugins::find(&dir, &env.database.name, PluginKind::Connector)?;
    let conn = ConnectorHandle::open(&plugin, &env.database.database_config)?;
    let mut loaded = vec![plugin.clone()];
    let c11y = match &env.contextionary {
        None => {
            tracing::warn!(
                "no contextionary configured: class and property names are not checked against word embeddings (start with --contextionary PATH after `weft contextionary fetch`)"
            );
            None
        }
        Some(cfg) => {
            let p = crate::plugins::find(&dir, &cfg.name, PluginKind::Contextionary)?;
            let handle =
                ContextionaryHandle::open(&p, &serde_json::Value::Object(cfg.settings.clone()))?;
            tracing::info!(
                "contextionary {} ({}): {} words of {} dimensions",
                p.name,
                p.path.display(),
                handle.vocabulary_size(),
                handle.dimensions()
            );
            loaded.push(p);
            Some(handle)
        }
    };
    let info = loaded
        .iter()
        .map(|p| PluginInfo {
            name: p.name.clone(),
            kind: p.kind.to_string(),
            interface_version: p.interface_version.clone(),
            capabilities: p
                .capabilities
                .names()
                .into_iter()
                .map(String::from)
                .collect(),
        })
        .collect();
    let listen = env.listen.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        use poem::listener::{Acceptor, Listener};
        let acceptor = TcpListener::bind(listen.clone())
            .into_acceptor()
            .await
            .map_err(|e| {
                anyhow::anyhow!("cannot listen on {listen}: {e}; choose another address with --listen or WEFT_LISTEN")
            })?;
        let addr = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .map(|a| a.to_string())
            .unwrap_or(listen);
        let mut env = env;
        env.listen = addr.clone(); // the real port when asked for port 0
        let mut app = App::new(conn, &env, info);
        if let Some(c) = c11y {
            app = app.with_contextionary(c);
        }
        let app = Arc::new(app);
        let configured = match (&env.auth.root_key, &env.auth.root_token) {
            (Some(k), Some(t)) => Some((k.parse()?, t.clone())),
            (None, None) => None,
            _ => anyhow::bail!(
                "give both auth.root_key and auth.root_token (or WEFT_ROOT_KEY and WEFT_ROOT_TOKEN), or neither"
            ),
        };
        if let Some((key, token)) = app.keys.ensure_root(configured).await? {
            // Printed once, when the root key is made; only its hash is stored.
            println!("ROOTKEY={key}");
            println!("ROOTTOKEN={token}");
        }
        tracing::info!(
            "connector {} ({}), plugin interface {}",
            plugin.name,
            plugin.path.display(),
            plugin.interface_version
        );
        // One line on stdout that scripts and tests wait for.
        println!("weft: listening on http://{addr}{BASE_PATH}");
        poem::Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(
                routes(app),
                async {
                    let _ = tokio::signal::ctrl_c().await;
                },
                Some(std::time::Duration::from_secs(5)),
            )
            .await
            .map_err(|e| anyhow::anyhow!("the server stopped: {e}"))
    })
}
