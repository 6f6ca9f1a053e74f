//! `weft-graphql`: GraphQL: `Local { Get, GetMeta, Aggregate }` over the objects of this server,
//! and — when this server is a peer — `Network { Get, Fetch, Introspect }` over the peers it
//! knows ([`network_query`]), with a schema generated at run time from the ontology and the peers'
//! downloaded schemas.
//!
//! Owns: the schema (built by [`schema`], which composes [`local_query`] and [`network_query`]
//! over the shared [`registry`], from one ontology version and one version of the network's peer
//! list, and swapped atomically when either changes, so a class added over REST — or a peer
//! that joined — is queryable by the very next request); the
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
mod local_query;
pub mod network_query;
mod registry;
mod schema;

use std::sync::{Arc, PoisonError, RwLock};

use async_graphql::dynamic::Schema;
use async_graphql::{Response, ServerError, Variables};

use weft_core::network::CallerKey;
use weft_core::{Core, Principal};

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

/// What a schema is built from: the ontology version and, when this server is a peer, the
/// version of its peer list (which moves when a peer comes, goes or changes its schema).
type Version = (u64, Option<u64>);

/// The GraphQL service: the schema cached by (ontology version, network version).
///
/// A change of either version makes the next request build the schema anew. The build is
/// **single-flight** — the first request to see the change builds, every other one arriving
/// meanwhile waits for that build (`building`) instead of making its own — and runs on the
/// blocking pool (`spawn_blocking`), never on the async workers that serve other requests.
#[derive(Default)]
pub struct Graphql {
    current: RwLock<Option<(Version, Built)>>,
    building: tokio::sync::Mutex<()>,
    builds: std::sync::atomic::AtomicU64,
}

impl Graphql {
    /// A service with no schema built yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many schemas this service has built (each change of the ontology or the peer list
    /// costs one, however many requests arrive during it).
    pub fn builds(&self) -> u64 {
        self.builds.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The cached schema when it is of `version`.
    fn cached(&self, version: Version) -> Option<Built> {
        match self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            Some((v, built)) if *v == version => Some(built.clone()),
            _ => None,
        }
    }

    /// The schema of the current ontology and peer list: the cached one while both versions
    /// are unchanged, otherwise built anew (once, off the async workers) and swapped in.
    async fn schema(&self, core: &Core) -> weft_core::Result<Built> {
        let (ontology_version, ontology) = core.ontology_versioned().await?;
        let peers = core.network().map(|n| n.peers());
        let version = (ontology_version, peers.as_ref().map(|p| p.0));
        if let Some(built) = self.cached(version) {
            return Ok(built);
        }
        let _building = self.building.lock().await;
        // Another request may have built it while this one waited.
        if let Some(built) = self.cached(version) {
            return Ok(built);
        }
        let limits = core.limits.clone();
        let built: Built = match tokio::task::spawn_blocking(move || {
            Arc::new(schema::build(
                ontology,
                peers.as_ref().map(|(_, p)| p.as_slice()),
                &limits,
            ))
        })
        .await
        {
            Ok(built) => built,
            Err(e) => Arc::new(Err(format!(
                "building the GraphQL schema failed ({e}); the next request tries again"
            ))),
        };
        self.builds
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Err(e) = built.as_ref() {
            tracing::debug!("GraphQL schema of (ontology, network) version {version:?}: {e}");
        }
        *self.current.write().unwrap_or_else(PoisonError::into_inner) =
            Some((version, built.clone()));
        Ok(built)
    }

    /// The schema in GraphQL SDL, or why there is none.
    pub async fn sdl(&self, core: &Core) -> weft_core::Result<Result<String, String>> {
        Ok(self
            .schema(core)
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
        core: &Arc<Core>,
        principal: &Principal,
        requests: Vec<GraphqlRequest>,
    ) -> weft_core::Result<Vec<Response>> {
        self.execute_as(core, principal, None, requests).await
    }

    /// [`Graphql::execute`] for a caller that presented `caller_key` (which a `Network` query
    /// forwards to peers without configured credentials when `network.forward_caller_key` is
    /// on).
    pub async fn execute_as(
        &self,
        core: &Arc<Core>,
        principal: &Principal,
        caller_key: Option<CallerKey>,
        requests: Vec<GraphqlRequest>,
    ) -> weft_core::Result<Vec<Response>> {
        let built = self.schema(core).await?;
        let env = Arc::new(data::RequestEnv::new(core.clone(), principal, caller_key).await?);
        let mut out = Vec::with_capacity(requests.len());
        for r in requests {
            let error = |m: &str| Response::from_errors(vec![ServerError::new(m, None)]);
            let answer = match (built.as_ref(), r.query) {
                (_, None) => error(
                    "the request has no \"query\"; send {\"query\": \"{ Local { Get { Things { <Class> { uuid } } } } }\"}",
                ),
                (Err(why), Some(_)) => error(why),
                (Ok(schema), Some(query)) if aliases(&query) > core.limits.max_graphql_aliases => {
                    error(&format!(
                        "the query has {} aliased fields, over the limit limits.max_graphql_aliases = {}; ask for fewer, or raise limits.max_graphql_aliases in the configuration",
                        aliases(&query),
                        core.limits.max_graphql_aliases
                    ))
                }
                (Ok(schema), Some(query)) => {
                    let mut req = async_graphql::Request::new(query).data(env.clone());
                    if let Some(name) = r.operation_name {
                        req = req.operation_name(name);
                    }
                    if let Some(vars) = r.variables {
                        req = req.variables(Variables::from_json(vars));
                    }
                    name_the_limits(schema.execute(req).await, &core.limits)
                }
            };
            out.push(answer);
        }
        Ok(out)
    }
}

/// How many aliased fields a query document has, in its operations and its fragments (0 for a
/// document that does not parse: execution then answers the parse error). Counted before the
/// query runs, so a query of thousands of aliased `Get`s is refused without doing any of them.
fn aliases(query: &str) -> usize {
    use async_graphql::parser::types::{Selection, SelectionSet};
    fn count(set: &SelectionSet) -> usize {
        set.items
            .iter()
            .map(|s| match &s.node {
                Selection::Field(f) => {
                    usize::from(f.node.alias.is_some()) + count(&f.node.selection_set.node)
                }
                Selection::InlineFragment(i) => count(&i.node.selection_set.node),
                Selection::FragmentSpread(_) => 0,
            })
            .sum()
    }
    let Ok(doc) = async_graphql::parser::parse_query(query) else {
        return 0;
    };
    let ops: usize = doc
        .operations
        .iter()
        .map(|(_, op)| count(&op.node.selection_set.node))
        .sum();
    let fragments: usize = doc
        .fragments
        .values()
        .map(|f| count(&f.node.selection_set.node))
        .sum();
    ops + fragments
}

/// async-graphql refuses a too deep or too complex query before running it, in words that do not
/// say which setting decides; this says it.
fn name_the_limits(mut r: Response, limits: &weft_core::Limits) -> Response {
    for e in &mut r.errors {
        if e.message.contains("nested too deep") || e.message.contains("recursion limit exceeded") {
            e.message = format!(
                "the query is nested deeper than the limit limits.max_graphql_depth = {}; select less deeply, or raise limits.max_graphql_depth in the configuration",
                limits.max_graphql_depth
            );
        } else if e.message.contains("too complex") {
            e.message = format!(
                "the query is more complex than the limit limits.max_graphql_complexity = {} (each field counts one); ask for fewer fields or objects, or raise limits.max_graphql_complexity in the configuration",
                limits.max_graphql_complexity
            );
        }
    }
    r
}
