//! The GraphQL schema, generated from one version of the ontology with `async_graphql::dynamic`,
//! shaped as Weaviate 0.12 shaped it:
//!
//! ```graphql
//! { Local {
//!     Get { Things { City(first: Int, after: Int, where: WhereInpObj) {
//!       uuid name population InCountry { ... on Country { name } } } } }
//!     GetMeta { Things { City(where: WhereInpObj) {
//!       meta { count } population { type count lowest highest average sum } } } }
//!     Aggregate { Things { City(groupBy: ["isCapital"], where: WhereInpObj) {
//!       groupedBy { path value } meta { count } name { topOccurrences(first: 3) { value occurs } } } } }
//! } }
//! ```
//!
//! Type names: a class's Get type is the class name (so `... on Country` reads naturally); a
//! reference property's union is `<Class><Property>Obj`; GetMeta and Aggregate types are
//! `Meta<Class>Obj` and `Aggregate<Class>Obj`; the fixed types are named as in 0.12
//! (`WeaviateObj`, `WeaviateLocalGetThingsObj`, `WhereInpObj`, …). A class whose name collides
//! with a generated one makes the build fail with a message naming both.
//!
//! The schema is composed here from its parts: the shared registry and filter input
//! ([`crate::registry`]), `Local` ([`crate::local_query`]) and, on a peer, `Network`
//! ([`crate::network_query`]).

use std::sync::Arc;

use async_graphql::dynamic::{Object, Schema};
use weft_core::network::KnownPeer;
use weft_core::ontology::{Class, Ontology};
use weft_plugin_api::ObjectKind;

use crate::registry::Registry;

const QUERY: &str = "WeaviateObj";

/// Builds the schema of `ontology` and, when this server is a peer, of the `peers` it knows
/// (`Network`). Fails when there is nothing to query (no class and no network) or a class name
/// collides with a generated type name. Peers' schemas come from other servers: when the
/// schema cannot be built with them, it is built without their `Network.Get` types (the
/// failure is logged), so `Local`, `Fetch` and `Introspect` never depend on another server.
pub fn build(
    ontology: Arc<Ontology>,
    peers: Option<&[KnownPeer]>,
    limits: &weft_core::Limits,
) -> Result<Schema, String> {
    match (build_with(ontology.clone(), peers, limits), peers) {
        (Err(e), Some(peers)) if peers.iter().any(|k| k.schema.is_some()) => {
            tracing::warn!(
                "the peers' schemas leave the GraphQL schema unbuildable ({e}); serving it without Network.Get"
            );
            let bare: Vec<KnownPeer> = peers
                .iter()
                .map(|k| KnownPeer {
                    peer: k.peer.clone(),
                    schema: None,
                })
                .collect();
            build_with(ontology, Some(&bare), limits)
        }
        (built, _) => built,
    }
}

fn build_with(
    ontology: Arc<Ontology>,
    peers: Option<&[KnownPeer]>,
    limits: &weft_core::Limits,
) -> Result<Schema, String> {
    let kinds: Vec<(ObjectKind, &str, &[Class])> = [
        (ObjectKind::Thing, "Things", &ontology.things.classes[..]),
        (ObjectKind::Action, "Actions", &ontology.actions.classes[..]),
    ]
    .into_iter()
    .filter(|(_, _, classes)| !classes.is_empty())
    .collect();
    if kinds.is_empty() && peers.is_none() {
        return Err(
            "the schema has no classes yet, so there is nothing to query; add one with POST /schema/things or POST /schema/actions"
                .into(),
        );
    }
    let mut reg = Registry::new();
    crate::registry::filter_types(&mut reg)?;
    crate::local_query::aggregate_types(&mut reg)?;
    crate::local_query::explore_types(&mut reg)?;
    let mut root = Object::new(QUERY);
    if !kinds.is_empty() {
        root = root.field(crate::local_query::types(&mut reg, &ontology, &kinds)?);
    }
    if let Some(peers) = peers {
        root = root.field(crate::network_query::types(&mut reg, peers)?);
    }
    reg.add(QUERY, "the query root".into(), root)?;
    let mut builder = Schema::build(QUERY, None, None);
    for t in reg.into_types() {
        builder = builder.register(t);
    }
    builder
        .data(ontology)
        .limit_depth(limits.max_graphql_depth)
        .limit_complexity(limits.max_graphql_complexity)
        .finish()
        .map_err(|e| format!("the GraphQL schema cannot be built: {}", e.0))
}
