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

use crate::config::Environment;
use crate::ontology::{Ontology, SchemaError};
use crate::plugins::ConnectorHandle;
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
    /// The root key.
    pub root_key: Id,
    ontology: RwLock<(u64, Arc<Ontology>)>,
}

/// Who makes a request. Until keys are enforced every request acts as the root key.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The key id.
    pub key: Id,
    /// Whether it is the root key.
    pub is_root: bool,
}

impl Principal {
    /// 403 unless the caller may read or change objects owned by `owner`.
    pub async fn may_access(&self, _app: &App, _owner: Id) -> ApiResult<()> {
        if self.is_root {
            return Ok(());
        }
        Err(ApiError::forbidden("this key may not access that object"))
    }

    /// The owners whose objects the caller sees; empty means all.
    pub async fn visible_owners(&self, _app: &App) -> ApiResult<Vec<Id>> {
        if self.is_root {
            return Ok(vec![]);
        }
        Ok(vec![self.key])
    }
}

impl App {
    /// A new application over `conn`.
    pub fn new(conn: ConnectorHandle, env: &Environment, plugins: Vec<PluginInfo>) -> Self {
        let public_url = env
            .network
            .as_ref()
            .and_then(|n| n.public_url.clone())
            .unwrap_or_else(|| format!("http://{}", env.listen));
        let root_key = env
            .auth
            .root_key
            .as_deref()
            .and_then(|k| k.parse().ok())
            .unwrap_or_else(Id::random);
        App {
            conn,
            public_url,
            limit: env.limit,
            plugins,
            root_key,
            ontology: RwLock::new((u64::MAX, Arc::new(Ontology::default()))),
        }
    }

    /// The caller of a request.
    pub fn principal(&self) -> Principal {
        Principal {
            key: self.root_key,
            is_root: true,
        }
    }

    /// The current ontology (re-read from the connector when its version changed, so several
    /// hosts sharing one store see each other's changes).
    pub async fn ontology(&self) -> ApiResult<Arc<Ontology>> {
        let doc = self.conn.get_document(DocumentName::Ontology).await?;
        {
            let cached = self.ontology.read().await;
            if cached.0 == doc.version {
                return Ok(cached.1.clone());
            }
        }
        let parsed = Arc::new(Ontology::from_json(&doc.json).map_err(ApiError::internal)?);
        *self.ontology.write().await = (doc.version, parsed.clone());
        Ok(parsed)
    }

    /// Applies `change` to the ontology and stores it with compare-and-set, retrying when
    /// another host changed it meanwhile. Nothing is stored when `change` refuses.
    pub async fn change_ontology<F>(&self, change: F) -> ApiResult<Arc<Ontology>>
    where
        F: Fn(&mut Ontology) -> Result<(), SchemaError>,
    {
        for _ in 0..8 {
            let doc = self.conn.get_document(DocumentName::Ontology).await?;
            let mut o = Ontology::from_json(&doc.json).map_err(ApiError::internal)?;
            change(&mut o).map_err(|e| match e {
                SchemaError::Invalid(m) => ApiError::unprocessable(m),
                SchemaError::NotFound(m) => ApiError::not_found(m),
            })?;
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
    crate::rest::things::ThingsApi,
    crate::rest::actions::ActionsApi,
    crate::rest::batching::BatchingApi,
    crate::rest::schema::SchemaApi,
    crate::rest::meta::MetaApi,
);

fn service(app: Arc<App>) -> OpenApiService<Apis, ()> {
    let apis = (
        crate::rest::things::ThingsApi(app.clone()),
        crate::rest::actions::ActionsApi(app.clone()),
        crate::rest::batching::BatchingApi(app.clone()),
        crate::rest::schema::SchemaApi(app.clone()),
        crate::rest::meta::MetaApi(app),
    );
    OpenApiService::new(apis, "Weft", env!("CARGO_PKG_VERSION"))
        .description(
            "Knowledge-graph server with pluggable storage, wire-compatible with the Weaviate 0.12 REST API.",
        )
        .server(BASE_PATH)
}

/// The OpenAPI document of the REST API, pretty JSON.
pub fn openapi_document() -> String {
    // The document does not depend on state; build it over an inert connector.
    let conn = ConnectorHandle::unavailable();
    let app = Arc::new(App::new(conn, &Environment::default(), vec![]));
    service(app).spec()
}

/// The routes: the API, its OpenAPI document and a Swagger UI (served from the binary).
pub fn routes(app: Arc<App>) -> impl poem::Endpoint {
    let api = service(app);
    let spec = api.spec_endpoint();
    let ui = api.swagger_ui();
    Route::new()
        .nest(BASE_PATH, api)
        .at(format!("{BASE_PATH}/openapi.json"), spec)
        .nest(format!("{BASE_PATH}/swagger"), ui)
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
    let info = vec![PluginInfo {
        name: plugin.name.clone(),
        kind: plugin.kind.to_string(),
        interface_version: plugin.interface_version.clone(),
        capabilities: plugin
            .capabilities
            .names()
            .into_iter()
            .map(String::from)
            .collect(),
    }];
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
        let app = Arc::new(App::new(conn, &env, info));
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
