//! `weft-graphql`: GraphQL: `Local { Get, GetMeta, Aggregate }` over the objects of this server, with a schema
//! generated at run time from the ontology.
//!
//! Owns: the schema (built by [`schema`] from one ontology version and swapped atomically when the
//! version changes, so a class added over REST is queryable by the very next request); the
//! `where`/`groupBy` arguments and their type checks ([`arguments`]); where answers come from —
//! the connector when it declares the capability, the host otherwise — and who may see what
//! ([`data`]). Must not know: HTTP (the endpoints are in `weft-rest`), how a connector stores
//! anything; who may see what is asked of `weft-core` ([`weft_core::Visibility`]).
//!
//! Visibility: a caller sees the objects owned by its key and its descendants (all of them for
//! the root), and a referenced object only when it would see that object itself; references to
//! peers are skipped.

mod arguments;
mod data;
mod schema;

use std::sync::{Arc, PoisonError, RwLock};

use async_graphql::dynamic::Schema;
use async_graphql::{Response, ServerError, Variables};

use weft_core::{Core as App, Principal, Result as ApiResult};

/// One GraphQL request: `{query, operationName, variables}`.
#[derive(Debug, Clone, Default)]
pub struct GraphqlRequest {
    /// The query document.
    pub query: Option<String>,
    /// Which operation of the document to run.
    pub operation_name: Option<String>,
    /// Variable values (a JSON object).
    pub variables: Option<serde_json::Value>,
}

/// A schema built from one ontology version, or why none could be built.
type Built = Arc<Result<Schema, String>>;

/// The GraphQL service: the schema cached by ontology version.
#[derive(Default)]
pub struct Graphql {
    current: RwLock<Option<(u64, Built)>>,
}

impl Graphql {
    /// A service with no schema built yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The schema of the current ontology: the cached one while the version is unchanged,
    /// otherwise built anew and swapped in.
    async fn schema(&self, app: &App) -> ApiResult<Built> {
        let (version, ontology) = app.ontology_versioned().await?;
        if let Some((v, built)) = self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            if *v == version {
                return Ok(built.clone());
            }
        }
        let built: Built = Arc::new(schema::build(ontology));
        if let Err(e) = built.as_ref() {
            tracing::debug!("GraphQL schema of ontology version {version}: {e}");
        }
        *self.current.write().unwrap_or_else(PoisonError::into_inner) =
            Some((version, built.clone()));
        Ok(built)
    }

    /// The schema in GraphQL SDL, or why there is none.
    pub async fn sdl(&self, app: &App) -> ApiResult<Result<String, String>> {
        Ok(self
            .schema(app)
            .await?
            .as_ref()
            .as_ref()
            .map(Schema::sdl)
            .map_err(Clone::clone))
    }

    /// Runs `requests` for `principal`, answering in request order. A GraphQL error (a query
    /// that does not parse or validate, a filter of the wrong type) is inside its response; an
    /// `Err` means the ontology or the caller's keys could not be read.
    pub async fn execute(
        &self,
        app: &Arc<App>,
        principal: &Principal,
        requests: Vec<GraphqlRequest>,
    ) -> ApiResult<Vec<Response>> {
        let built = self.schema(app).await?;
        let env = Arc::new(data::RequestEnv::new(app.clone(), principal).await?);
        let mut out = Vec::with_capacity(requests.len());
        for r in requests {
            let error = |m: &str| Response::from_errors(vec![ServerError::new(m, None)]);
            let answer = match (built.as_ref(), r.query) {
                (_, None) => error(
                    "the request has no \"query\"; send {\"query\": \"{ Local { Get { Things { <Class> { uuid } } } } }\"}",
                ),
                (Err(why), Some(_)) => error(why),
                (Ok(schema), Some(query)) => {
                    let mut req = async_graphql::Request::new(query).data(env.clone());
                    if let Some(name) = r.operation_name {
                        req = req.operation_name(name);
                    }
                    if let Some(vars) = r.variables {
                        req = req.variables(Variables::from_json(vars));
                    }
                    schema.execute(req).await
                }
            };
            out.push(answer);
        }
        Ok(out)
    }
}
