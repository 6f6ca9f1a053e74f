//! GraphQL `Network`: queries over the peers this server knows, present when it is a peer.
//!
//! ```graphql
//! { Network(networkTimeout: 5) {
//!     Get { beta { Things { City(first: 10, where: {…}) {
//!       uuid name InCountry { ... on Network_beta_Country { name } } } } } }
//!     Fetch { Things(where: {class: [{name: "Town", certainty: 0.7, keywords: [{value: "town", weight: 1}], first: 10}],
//!                            properties: [{name: "population", certainty: 0.7, operator: GreaterThan, valueInt: 1000}]}) {
//!       beacon certainty peer class } }
//!     Introspect { Things(where: {class: [{name: "Town", certainty: 0.7}], properties: [{name: "name"}]}) {
//!       peer class certainty properties { property certainty } } }
//! } }
//! ```
//!
//! * `Get` has one field per known peer whose schema has been downloaded (its name with every
//!   character other than letters, digits and `_` written `_`), and below it that peer's
//!   classes, typed from its schema; type names are namespaced per peer
//!   (`Network_<peer>_<Class>`, `Network_<peer>_<Class>_<Property>Obj` for references,
//!   `NetworkGet_<peer>_Obj`, …), so two peers' `City` never clash. Resolving: the selection
//!   below each peer (arguments, aliases, fragments and variables resolved) is written as
//!   `{ Local { Get { … } } }` and sent to that peer; all named peers are asked concurrently,
//!   each bounded by `networkTimeout`.
//! * `Fetch` and `Introspect` ask every known peer a network question (`weft-p2p`'s
//!   `/peers/questions`) and collect the answers until `networkTimeout`: classes and properties
//!   are matched by meaning (contextionary vectors, certainty = 1 − cosine distance), so a
//!   question for `Town` finds a peer's `City`. `Fetch` answers beacons
//!   (`weaviate://<peer>/<uuid>`), the peer's class and certainty, never objects' contents;
//!   `Introspect` answers which classes and properties of which peers match.
//!
//! What arrived is returned; each peer that did not answer in time or failed has a GraphQL error
//! of its own, naming it. `Network` needs the key's `execute` right (the HTTP operation itself
//! needs `read`); `networkTimeout` is 1 to 60 seconds, default 5.
//!
//! Credentials (`Get` only; questions need no key): a peer is queried with the key configured for
//! its URL (`network.peers[]`: `{url, api_key, api_token}`); a peer without one is queried with
//! the caller's own `X-API-KEY`/`X-API-TOKEN` when `network.forward_caller_key` is true, and
//! without a key otherwise. The caller's headers reach the resolvers through
//! [`crate::Graphql::execute_as`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_graphql::dynamic::{
    Field, FieldFuture, FieldValue, InputObject, InputValue, Object, ResolverContext, TypeRef,
    Union,
};
use async_graphql::parser::types::{Directive, Field as GqlField, Selection, SelectionSet};
use async_graphql::{Error, Name, Number, PathSegment, Positioned, ServerError, Value as GqlValue};
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::Value;
use weft_core::keys::Right;
use weft_core::network::{
    ClassQuestion, KnownPeer, ObjectKindName, PeerAnswer, PropertyQuestion, Question,
    QuestionKeyword,
};
use weft_core::ontology::{Class, Ontology, Property};

use crate::data::RequestEnv;
use crate::registry::{capitalised, report, Registry, OPERATOR, WHERE};

/// `networkTimeout` when not given, in seconds.
pub const DEFAULT_TIMEOUT_S: i64 = 5;
/// The longest `networkTimeout`, in seconds.
pub const MAX_TIMEOUT_S: i64 = 60;
/// The certainty a class or property must match with when the question does not say.
pub const DEFAULT_CERTAINTY: f32 = 0.7;

const NETWORK: &str = "WeaviateNetworkObj";
const NETWORK_GET: &str = "WeaviateNetworkGetObj";
const NETWORK_FETCH: &str = "WeaviateNetworkFetchObj";
const NETWORK_INTROSPECT: &str = "WeaviateNetworkIntrospectObj";
const KEYWORD_IN: &str = "NetworkKeywordInpObj";
const CLASS_IN: &str = "NetworkWhereClassInpObj";
const FETCH_WHERE: &str = "NetworkFetchWhereInpObj";
const FETCH_PROPERTY_IN: &str = "NetworkFetchWherePropertyInpObj";
const INTROSPECT_WHERE: &str = "NetworkIntrospectWhereInpObj";
const INTROSPECT_PROPERTY_IN: &str = "NetworkIntrospectWherePropertyInpObj";
const FETCH_RESULT: &str = "NetworkFetchResultObj";
const INTROSPECT_RESULT: &str = "NetworkIntrospectResultObj";
const INTROSPECT_PROPERTY: &str = "NetworkIntrospectPropertyObj";

const NETWORK_DOC: &str = "Queries of the peers of the network this server is part of; needs the execute right. \
`networkTimeout` (seconds, 1 to 60, default 5) bounds how long each peer is waited for: what arrived in time \
is returned, and every peer that did not answer in time or failed has a GraphQL error naming it. \
Credentials: `Get` queries a peer with the key configured for its URL (`network.peers[]`: url, api_key, \
api_token); for a peer without one, with the caller's own X-API-KEY/X-API-TOKEN when \
`network.forward_caller_key` is true, otherwise without a key. `Fetch` and `Introspect` are network questions, \
which need no key: a peer answers them over all its objects but only with beacons, class names and \
certainties, never objects' contents.";

/// The time budget of one `Network` query.
#[derive(Clone, Copy)]
struct Budget(Duration);

/// The GraphQL name of a peer: letters, digits and `_` kept, anything else `_`; `p_` in front
/// of a name that would start with a digit or `__`.
pub fn peer_field_name(peer: &str) -> String {
    let s: String = peer
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) || s.starts_with("__") {
        format!("p_{s}")
    } else {
        s
    }
}

/// Whether `name` is a GraphQL name (a peer's schema comes from another server).
fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

/// Class names as peers' Get types: letters and digits only, so `_` separates the namespace.
fn is_class_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Registers the `Network` types for `peers` and answers the `Network` field.
pub(crate) fn types(reg: &mut Registry, peers: &[KnownPeer]) -> Result<Field, String> {
    question_types(reg)?;
    let mut network = Object::new(NETWORK).description(NETWORK_DOC);
    let mut get = Object::new(NETWORK_GET).description(
        "One field per known peer (its name, with characters other than letters, digits and _ written _): that peer's Local Get.",
    );
    let mut any_peer = false;
    let mut seen = HashSet::new();
    for known in peers {
        let Some(schema) = known.schema.as_ref() else {
            continue;
        };
        let field = peer_field_name(&known.peer.name);
        if !seen.insert(field.clone()) {
            tracing::warn!(
                "peer {} is left out of Network.Get: another peer is already queried as {field}",
                known.peer.name
            );
            continue;
        }
        // One peer's schema never breaks the others' (or Local): a type name taken already, or
        // twice in its own schema, leaves that peer out.
        let Some(types) = peer_types(&field, schema) else {
            continue;
        };
        let mut own = HashSet::new();
        let clash = types
            .iter()
            .find(|(n, _)| reg.has(n) || !own.insert(n.clone()))
            .map(|(n, _)| n.clone());
        if let Some(name) = clash {
            tracing::warn!(
                "peer {} is left out of Network.Get: its type name {name} is taken (by another peer, or twice in its schema)",
                known.peer.name
            );
            continue;
        }
        for (name, ty) in types {
            reg.add(&name, format!("Network.Get.{field}"), ty)?;
        }
        get = get.field(peer_field(&known.peer.name, &field));
        any_peer = true;
    }
    if any_peer {
        reg.add(NETWORK_GET, "Network.Get".into(), get)?;
        network = network.field(pass_through("Get", NETWORK_GET).description(
            "The peers' objects: each peer named here is sent the selection below it as a Local Get query.",
        ));
    }
    let fetch = Object::new(NETWORK_FETCH)
        .description("Objects of every known peer whose classes match by meaning: beacons and certainties only.")
        .field(question_field("Things", false))
        .field(question_field("Actions", false));
    reg.add(NETWORK_FETCH, "Network.Fetch".into(), fetch)?;
    let introspect = Object::new(NETWORK_INTROSPECT)
        .description("Which classes and properties of which peers match by meaning.")
        .field(question_field("Things", true))
        .field(question_field("Actions", true));
    reg.add(NETWORK_INTROSPECT, "Network.Introspect".into(), introspect)?;
    network = network
        .field(pass_through("Fetch", NETWORK_FETCH))
        .field(pass_through("Introspect", NETWORK_INTROSPECT))
        .field(explore_field());
    reg.add(NETWORK, "Network".into(), network)?;
    Ok(Field::new("Network", TypeRef::named(NETWORK), |ctx| {
        FieldFuture::new(async move {
            let r = async {
                let Budget(timeout) = budget(&ctx)?;
                let fetched = prefetch(&ctx, timeout).await?;
                Ok(Some(FieldValue::owned_any(Arc::new(fetched))))
            };
            report(&ctx, r.await)
        })
    })
    .description(NETWORK_DOC)
    .argument(
        InputValue::new("networkTimeout", TypeRef::named(TypeRef::INT)).description(format!(
            "Seconds to wait for the peers, 1 to {MAX_TIMEOUT_S} (default {DEFAULT_TIMEOUT_S})."
        )),
    ))
}

/// Checks the execute right and `networkTimeout`.
fn budget(ctx: &ResolverContext<'_>) -> Result<Budget, Error> {
    let env = ctx.data::<Arc<RequestEnv>>()?;
    env.principal().require(Right::Execute).map_err(|e| {
        Error::new(format!(
            "Network queries need the execute right: {}",
            e.message
        ))
    })?;
    if env.network().is_none() {
        return Err(Error::new("this server is not part of a network"));
    }
    let seconds = match ctx.args.get("networkTimeout") {
        Some(v) if !v.is_null() => v.i64()?,
        _ => DEFAULT_TIMEOUT_S,
    };
    if !(1..=MAX_TIMEOUT_S).contains(&seconds) {
        return Err(Error::new(format!(
            "networkTimeout {seconds} is out of range (422): give 1 to {MAX_TIMEOUT_S} seconds, or leave it out for {DEFAULT_TIMEOUT_S}"
        )));
    }
    Ok(Budget(Duration::from_secs(seconds as u64)))
}

/// A field that groups others and hands what was fetched down.
fn pass_through(name: &str, ty: &str) -> Field {
    Field::new(name, TypeRef::named_nn(ty), |ctx| {
        let f = ctx.parent_value.downcast_ref::<Arc<Fetched>>().cloned();
        FieldFuture::Value(f.map(FieldValue::owned_any))
    })
}

/// What one peer or one question answered.
enum Outcome {
    /// A peer's answer to a Get (its JSON response), or why there is none.
    Peer(Result<Value, String>),
    /// The peers' answers to a question, or why it was not asked.
    Answers(Result<Vec<PeerAnswer>, String>),
}

/// Everything a `Network` field asked, by the response-key path below it (`["Get", "beta"]`,
/// `["Fetch", "Things"]`). async-graphql resolves the fields of nested objects one after the
/// other, so the `Network` field makes every call itself, all at once, and the fields below only
/// read their outcome.
struct Fetched(HashMap<Vec<String>, Outcome>);

impl Fetched {
    /// The outcome of the field being resolved.
    fn of<'a>(ctx: &ResolverContext<'a>) -> Result<&'a Outcome, Error> {
        let fetched = ctx.parent_value.try_downcast_ref::<Arc<Fetched>>()?;
        let path = ctx.path_node.map(|n| n.to_string_vec()).unwrap_or_default();
        fetched
            .0
            .get(path.get(1..).unwrap_or_default())
            .ok_or_else(|| Error::new("this part of the network query was not asked"))
    }
}

/// Groups fields by response key, in order (fields with one key are merged, as GraphQL merges
/// them).
fn by_key<'q>(fields: Vec<&'q GqlField>) -> Vec<(String, Vec<&'q GqlField>)> {
    let mut out: Vec<(String, Vec<&'q GqlField>)> = vec![];
    for f in fields {
        let key = f.response_key().node.to_string();
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.push(f),
            None => out.push((key, vec![f])),
        }
    }
    out
}

/// Makes every call the selection below `Network` needs, concurrently, each bounded by
/// `timeout`.
async fn prefetch(ctx: &ResolverContext<'_>, timeout: Duration) -> Result<Fetched, Error> {
    let env = ctx.data::<Arc<RequestEnv>>()?;
    let network = env
        .network()
        .ok_or_else(|| Error::new("this server is not part of a network"))?;
    let w = Writer {
        ctx,
        class_prefix: String::new(),
    };
    let peers = network.peers().1;
    let mut calls: Vec<BoxFuture<'static, (Vec<String>, Outcome)>> = vec![];
    let mut top = vec![];
    w.fields(&ctx.ctx.item.node.selection_set.node, &mut top)?;
    for (section_key, sections) in by_key(top) {
        let section = sections[0].name.node.as_str();
        if section == "Explore" {
            let path = vec![section_key.clone()];
            match explore_question(&w, sections[0], env.max_explore_k()) {
                Ok(e) => {
                    // One question per kind, asked together; the answers are merged.
                    let asks: Vec<_> = [ObjectKindName::Thing, ObjectKindName::Action]
                        .into_iter()
                        .map(|kind| {
                            network.ask(
                                Question {
                                    kind,
                                    classes: vec![],
                                    properties: vec![],
                                    introspect: false,
                                    explore: Some(e.clone()),
                                },
                                timeout,
                            )
                        })
                        .collect();
                    calls.push(Box::pin(async move {
                        let answers = futures::future::join_all(asks).await;
                        (path, Outcome::Answers(Ok(merge_kinds(answers))))
                    }));
                }
                Err(e) => {
                    let why = e.message;
                    calls.push(Box::pin(async move { (path, Outcome::Answers(Err(why))) }));
                }
            }
            continue;
        }
        let mut below = vec![];
        for f in &sections {
            w.fields(&f.selection_set.node, &mut below)?;
        }
        for (key, fields) in by_key(below) {
            let name = fields[0].name.node.to_string();
            if name.starts_with("__") {
                continue;
            }
            let path = vec![section_key.clone(), key];
            match section {
                "Get" => {
                    let Some(peer) = peers
                        .iter()
                        .find(|k| peer_field_name(&k.peer.name) == name)
                        .map(|k| k.peer.name.clone())
                    else {
                        let why = format!("peer {name} is no longer known here");
                        calls.push(Box::pin(async move { (path, Outcome::Peer(Err(why))) }));
                        continue;
                    };
                    let w = Writer {
                        ctx,
                        class_prefix: format!("Network_{name}_"),
                    };
                    let mut query = String::from("{ Local { Get { ");
                    for f in &fields {
                        w.set(&mut query, &f.selection_set.node, 0)?;
                    }
                    query.push_str("} } }");
                    let call = network.query_peer(&peer, query, timeout, env.caller_key());
                    calls.push(Box::pin(async move {
                        let r = call
                            .await
                            .map_err(|e| format!("peer {peer}: {}", e.message));
                        (path, Outcome::Peer(r))
                    }));
                }
                "Fetch" | "Introspect" => {
                    let kind = match name.as_str() {
                        "Things" => ObjectKindName::Thing,
                        _ => ObjectKindName::Action,
                    };
                    let q = w.argument(fields[0], "where").and_then(|v| {
                        question(strip_nulls(v), kind, section == "Introspect").map_err(Error::new)
                    });
                    match q {
                        Ok(q) => {
                            let call = network.ask(q, timeout);
                            calls.push(Box::pin(async move {
                                (path, Outcome::Answers(Ok(call.await)))
                            }));
                        }
                        Err(e) => {
                            let why = e.message;
                            calls.push(Box::pin(async move { (path, Outcome::Answers(Err(why))) }));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    Ok(Fetched(
        futures::future::join_all(calls).await.into_iter().collect(),
    ))
}

// ---------------------------------------------------------------------------------------------
// Get.

fn class_type(peer: &str, class: &str) -> String {
    format!("Network_{peer}_{class}")
}

/// The types of one peer's Get, or `None` when it has no class to query.
fn peer_types(peer: &str, o: &Ontology) -> Option<Vec<(String, async_graphql::dynamic::Type)>> {
    let mut out: Vec<(String, async_graphql::dynamic::Type)> = vec![];
    let mut top = Object::new(format!("NetworkGet_{peer}_Obj"));
    let mut any = false;
    for (word, classes) in [
        ("Things", &o.things.classes),
        ("Actions", &o.actions.classes),
    ] {
        let classes: Vec<&Class> = classes.iter().filter(|c| is_class_name(&c.class)).collect();
        if classes.is_empty() {
            continue;
        }
        let kind_name = format!("NetworkGet_{peer}_{word}Obj");
        let mut kind_obj = Object::new(&kind_name);
        for class in classes {
            kind_obj = kind_obj.field(
                Field::new(
                    &class.class,
                    TypeRef::named_list(class_type(peer, &class.class)),
                    |ctx| FieldFuture::Value(json_list(&ctx, None)),
                )
                .argument(InputValue::new("first", TypeRef::named(TypeRef::INT)))
                .argument(InputValue::new("after", TypeRef::named(TypeRef::INT)))
                .argument(InputValue::new("where", TypeRef::named(WHERE))),
            );
            let mut obj =
                Object::new(class_type(peer, &class.class)).field(json_scalar("uuid", "string"));
            if let Some(d) = &class.description {
                obj = obj.description(d.clone());
            }
            for p in class.properties.iter().filter(|p| is_name(&p.name)) {
                if !p.is_reference() {
                    obj = obj.field(json_scalar(&p.name, p.data_type.first().map_or("", |t| t)));
                    continue;
                }
                let targets: Vec<&str> = p
                    .data_type
                    .iter()
                    .filter(|t| is_class_name(t) && o.kind_of(t).is_some())
                    .map(String::as_str)
                    .collect();
                if targets.is_empty() {
                    continue;
                }
                let field = capitalised(&p.name);
                let union_name = format!("Network_{peer}_{}_{field}Obj", class.class);
                let union = targets.iter().fold(Union::new(&union_name), |u, t| {
                    u.possible_type(class_type(peer, t))
                });
                out.push((union_name.clone(), union.into()));
                obj = obj.field(reference_field(p, &field, &union_name, peer));
            }
            out.push((class_type(peer, &class.class), obj.into()));
        }
        out.push((kind_name.clone(), kind_obj.into()));
        top = top.field(json_object(word, &kind_name));
        any = true;
    }
    if !any {
        return None;
    }
    out.push((format!("NetworkGet_{peer}_Obj"), top.into()));
    Some(out)
}

/// The JSON a peer answered for the field being resolved (by its response key).
fn json_child<'a>(ctx: &ResolverContext<'a>) -> Option<&'a Value> {
    let parent = ctx.parent_value.downcast_ref::<Value>()?;
    let field = ctx.ctx.item.node.response_key().node.as_str();
    parent.get(field).filter(|v| !v.is_null())
}

fn json_object(name: &str, ty: &str) -> Field {
    Field::new(name, TypeRef::named(ty), |ctx| {
        FieldFuture::Value(json_child(&ctx).cloned().map(FieldValue::owned_any))
    })
}

/// A list of objects; with `peer`, each typed by the `__typename` the peer answered.
fn json_list<'a>(ctx: &ResolverContext<'a>, peer: Option<&str>) -> Option<FieldValue<'a>> {
    let items = json_child(ctx)?.as_array()?;
    Some(FieldValue::list(items.iter().filter_map(|item| {
        let v = FieldValue::owned_any(item.clone());
        match peer {
            None => Some(v),
            Some(p) => {
                let t = item.get("__typename")?.as_str()?;
                is_class_name(t).then(|| v.with_type(class_type(p, t)))
            }
        }
    })))
}

fn json_scalar(name: &str, data_type: &str) -> Field {
    let data_type = data_type.to_string();
    let ty = match data_type.as_str() {
        "int" => TypeRef::INT,
        "number" => TypeRef::FLOAT,
        "boolean" => TypeRef::BOOLEAN,
        _ => TypeRef::STRING,
    };
    Field::new(name, TypeRef::named(ty), move |ctx| {
        let v = json_child(&ctx)
            .filter(|v| match data_type.as_str() {
                "int" => v.is_i64() || v.is_u64(),
                "number" => v.is_number(),
                "boolean" => v.is_boolean(),
                _ => v.is_string(),
            })
            .and_then(|v| GqlValue::from_json(v.clone()).ok());
        FieldFuture::Value(v.map(FieldValue::value))
    })
}

fn reference_field(p: &Property, field: &str, union_name: &str, peer: &str) -> Field {
    let peer = peer.to_string();
    let mut f = Field::new(field, TypeRef::named_list(union_name), move |ctx| {
        FieldFuture::Value(json_list(&ctx, Some(&peer)))
    });
    if let Some(d) = &p.description {
        f = f.description(d.clone());
    }
    f
}

/// The field of one peer under `Network.Get`: what the peer answered, its errors named.
fn peer_field(peer: &str, field: &str) -> Field {
    let description = format!("The objects of peer {peer}.");
    let peer = peer.to_string();
    Field::new(
        field,
        TypeRef::named(format!("NetworkGet_{field}_Obj")),
        move |ctx| {
            let peer = peer.clone();
            FieldFuture::new(async move {
                let r = async {
                    let answer = match Fetched::of(&ctx)? {
                        Outcome::Peer(Ok(a)) => a,
                        Outcome::Peer(Err(why)) => return Err(Error::new(why.clone())),
                        Outcome::Answers(_) => return Ok(None),
                    };
                    for e in answer["errors"].as_array().into_iter().flatten() {
                        let message = e["message"]
                            .as_str()
                            .unwrap_or("an error without a message");
                        ctx.add_error(
                            ServerError::new(format!("peer {peer}: {message}"), Some(ctx.item.pos))
                                .with_path(path_of(&ctx)),
                        );
                    }
                    Ok(answer
                        .pointer("/data/Local/Get")
                        .filter(|v| v.is_object())
                        .cloned()
                        .map(FieldValue::owned_any))
                };
                report(&ctx, r.await)
            })
        },
    )
    .description(description)
}

fn path_of(ctx: &ResolverContext<'_>) -> Vec<PathSegment> {
    ctx.path_node
        .map(|n| n.to_string_vec())
        .unwrap_or_default()
        .into_iter()
        .map(PathSegment::Field)
        .collect()
}

/// The selection below a peer's field is written as the `Local` query the peer answers
/// ([`Writer::set`]): aliases and arguments kept, variables replaced by their values, fragments
/// inlined (type conditions on the peer's classes kept, renamed to its own names),
/// `@skip`/`@include` applied, `__typename` asked everywhere (to type references).
struct Writer<'c, 'a> {
    ctx: &'c ResolverContext<'a>,
    class_prefix: String,
}

impl<'a> Writer<'_, 'a> {
    fn var(&self, name: &Name) -> Result<GqlValue, Error> {
        let env = &self.ctx.ctx.query_env;
        env.operation
            .node
            .variable_definitions
            .iter()
            .find(|d| d.node.name.node == *name)
            .and_then(|d| {
                env.variables
                    .get(&d.node.name.node)
                    .or_else(|| d.node.default_value())
                    .cloned()
            })
            .ok_or_else(|| Error::new(format!("variable ${name} is not defined")))
    }

    /// The value of argument `name` of `f`, variables replaced, as JSON.
    fn argument(&self, f: &GqlField, name: &str) -> Result<Value, Error> {
        let v = f
            .arguments
            .iter()
            .find(|(n, _)| n.node == name)
            .map(|(_, v)| v.node.clone().into_const_with(|n| self.var(&n)))
            .transpose()?
            .unwrap_or(GqlValue::Null);
        Ok(v.into_json()?)
    }

    /// The fields of `set`, fragments inlined, `@skip`/`@include` applied.
    fn fields<'q>(&self, set: &'q SelectionSet, out: &mut Vec<&'q GqlField>) -> Result<(), Error>
    where
        'a: 'q,
    {
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    if self.included(&f.node.directives)? {
                        out.push(&f.node);
                    }
                }
                Selection::InlineFragment(fr) => {
                    if self.included(&fr.node.directives)? {
                        self.fields(&fr.node.selection_set.node, out)?;
                    }
                }
                Selection::FragmentSpread(sp) => {
                    if !self.included(&sp.node.directives)? {
                        continue;
                    }
                    let name = &sp.node.fragment_name.node;
                    let def = self
                        .ctx
                        .ctx
                        .query_env
                        .fragments
                        .get(name)
                        .ok_or_else(|| Error::new(format!("fragment {name} is not defined")))?;
                    if self.included(&def.node.directives)? {
                        self.fields(&def.node.selection_set.node, out)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn included(&self, directives: &[Positioned<Directive>]) -> Result<bool, Error> {
        for d in directives {
            let name = d.node.name.node.as_str();
            if name != "skip" && name != "include" {
                continue;
            }
            let cond = d
                .node
                .arguments
                .iter()
                .find(|(n, _)| n.node == "if")
                .map(|(_, v)| v.node.clone().into_const_with(|n| self.var(&n)))
                .transpose()?;
            let cond = matches!(cond, Some(GqlValue::Boolean(true)));
            if (name == "skip" && cond) || (name == "include" && !cond) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn set(&self, out: &mut String, set: &SelectionSet, depth: usize) -> Result<(), Error> {
        if depth > 64 {
            return Err(Error::new(
                "the query is nested too deeply for a network query",
            ));
        }
        out.push_str("__typename ");
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    let f = &f.node;
                    if !self.included(&f.directives)? || f.name.node.starts_with("__") {
                        continue;
                    }
                    if let Some(a) = &f.alias {
                        out.push_str(&format!("{}: ", a.node));
                    }
                    out.push_str(&f.name.node);
                    if !f.arguments.is_empty() {
                        out.push('(');
                        for (i, (name, value)) in f.arguments.iter().enumerate() {
                            if i > 0 {
                                out.push_str(", ");
                            }
                            let v = value.node.clone().into_const_with(|n| self.var(&n))?;
                            out.push_str(&format!("{}: ", name.node));
                            write_value(out, &v, Some(name.node.as_str()));
                        }
                        out.push(')');
                    }
                    out.push(' ');
                    if !f.selection_set.node.items.is_empty() {
                        out.push_str("{ ");
                        self.set(out, &f.selection_set.node, depth + 1)?;
                        out.push_str("} ");
                    }
                }
                Selection::InlineFragment(fr) => {
                    if !self.included(&fr.node.directives)? {
                        continue;
                    }
                    let on = fr
                        .node
                        .type_condition
                        .as_ref()
                        .map(|t| t.node.on.node.as_str());
                    self.fragment(out, on, &fr.node.selection_set.node, depth)?;
                }
                Selection::FragmentSpread(sp) => {
                    if !self.included(&sp.node.directives)? {
                        continue;
                    }
                    let name = &sp.node.fragment_name.node;
                    let def = self
                        .ctx
                        .ctx
                        .query_env
                        .fragments
                        .get(name)
                        .ok_or_else(|| Error::new(format!("fragment {name} is not defined")))?;
                    if !self.included(&def.node.directives)? {
                        continue;
                    }
                    let on = def.node.type_condition.node.on.node.as_str();
                    self.fragment(out, Some(on), &def.node.selection_set.node, depth)?;
                }
            }
        }
        Ok(())
    }

    /// A fragment: on one of the peer's classes it stays a fragment on that class's own name;
    /// on anything else (a container, a union) its fields are inlined.
    fn fragment(
        &self,
        out: &mut String,
        on: Option<&str>,
        set: &SelectionSet,
        depth: usize,
    ) -> Result<(), Error> {
        let class = on
            .and_then(|t| t.strip_prefix(&self.class_prefix))
            .filter(|c| is_class_name(c));
        match class {
            Some(c) => {
                out.push_str(&format!("... on {c} {{ "));
                self.set(out, set, depth + 1)?;
                out.push_str("} ");
            }
            None => {
                out.push_str("... { ");
                self.set(out, set, depth + 1)?;
                out.push_str("} ");
            }
        }
        Ok(())
    }
}

/// A value as GraphQL text; the string of an `operator` is written as the enum value it is.
fn write_value(out: &mut String, v: &GqlValue, key: Option<&str>) {
    match v {
        GqlValue::Null => out.push_str("null"),
        GqlValue::Number(n) => out.push_str(&n.to_string()),
        GqlValue::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        GqlValue::Enum(e) => out.push_str(e),
        GqlValue::String(s) if key == Some("operator") && is_name(s) => out.push_str(s),
        GqlValue::String(s) => {
            out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()))
        }
        GqlValue::Binary(_) => out.push_str("null"),
        GqlValue::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item, key);
            }
            out.push(']');
        }
        GqlValue::Object(m) => {
            out.push('{');
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&format!("{k}: "));
                write_value(out, item, Some(k.as_str()));
            }
            out.push('}');
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fetch and Introspect.

fn question_types(reg: &mut Registry) -> Result<(), String> {
    let keywords = || {
        InputValue::new("keywords", TypeRef::named_nn_list(KEYWORD_IN)).description(
            "Words placing it by meaning, with weights (default: the name's CamelCase parts).",
        )
    };
    let certainty = || {
        InputValue::new("certainty", TypeRef::named(TypeRef::FLOAT)).description(format!(
            "The least certainty (1 − cosine distance, 0 to 1) to match with; default {DEFAULT_CERTAINTY}."
        ))
    };
    reg.add(
        KEYWORD_IN,
        "network question keywords".into(),
        InputObject::new(KEYWORD_IN)
            .field(InputValue::new("value", TypeRef::named_nn(TypeRef::STRING)))
            .field(InputValue::new("weight", TypeRef::named_nn(TypeRef::FLOAT))),
    )?;
    reg.add(
        CLASS_IN,
        "network question classes".into(),
        InputObject::new(CLASS_IN)
            .description("A class as you call it; every peer's classes that mean the same match.")
            .field(InputValue::new("name", TypeRef::named_nn(TypeRef::STRING)))
            .field(certainty())
            .field(keywords())
            .field(
                InputValue::new("first", TypeRef::named(TypeRef::INT))
                    .description("At most this many objects per matching class and peer (default and maximum: each peer's limit)."),
            ),
    )?;
    let value = |name: &str, ty: &str| InputValue::new(name, TypeRef::named(ty));
    reg.add(
        FETCH_PROPERTY_IN,
        "network Fetch property conditions".into(),
        InputObject::new(FETCH_PROPERTY_IN)
            .description("A property as you call it, matched by meaning, and a comparison its value must pass (one value).")
            .field(InputValue::new("name", TypeRef::named_nn(TypeRef::STRING)))
            .field(certainty())
            .field(keywords())
            .field(InputValue::new("operator", TypeRef::named_nn(OPERATOR)))
            .field(value("valueString", TypeRef::STRING))
            .field(value("valueText", TypeRef::STRING))
            .field(value("valueInt", TypeRef::INT))
            .field(value("valueNumber", TypeRef::FLOAT))
            .field(value("valueBoolean", TypeRef::BOOLEAN))
            .field(value("valueDate", TypeRef::STRING).description("An RFC 3339 date.")),
    )?;
    reg.add(
        INTROSPECT_PROPERTY_IN,
        "network Introspect properties".into(),
        InputObject::new(INTROSPECT_PROPERTY_IN)
            .description("A property as you call it, matched by meaning.")
            .field(InputValue::new("name", TypeRef::named_nn(TypeRef::STRING)))
            .field(certainty())
            .field(keywords()),
    )?;
    for (name, property) in [
        (FETCH_WHERE, FETCH_PROPERTY_IN),
        (INTROSPECT_WHERE, INTROSPECT_PROPERTY_IN),
    ] {
        reg.add(
            name,
            format!("the network question {name}"),
            InputObject::new(name)
                .description("A peer's class matches when it matches one of `class` and has a property matching each of `properties`.")
                .field(InputValue::new("class", TypeRef::named_nn_list_nn(CLASS_IN)))
                .field(InputValue::new("properties", TypeRef::named_nn_list(property))),
        )?;
    }
    let text = |name: &str, get: fn(&Found) -> Option<String>| {
        Field::new(name, TypeRef::named_nn(TypeRef::STRING), move |ctx| {
            let v = ctx.parent_value.downcast_ref::<Found>().and_then(get);
            FieldFuture::Value(v.map(|s| FieldValue::value(GqlValue::String(s))))
        })
    };
    let number = |name: &str, get: fn(&Found) -> Option<f32>| {
        Field::new(name, TypeRef::named_nn(TypeRef::FLOAT), move |ctx| {
            let v = ctx.parent_value.downcast_ref::<Found>().and_then(get);
            FieldFuture::Value(v.and_then(float).map(FieldValue::value))
        })
    };
    reg.add(
        FETCH_RESULT,
        "network Fetch results".into(),
        Object::new(FETCH_RESULT)
            .description("An object of a peer: where it is and how certain the match is; never its contents.")
            .field(text("beacon", |f| match f {
                Found::Object { beacon, .. } => Some(beacon.clone()),
                _ => None,
            }).description("weaviate://<peer>/<uuid>"))
            .field(number("certainty", |f| match f {
                Found::Object { certainty, .. } => Some(*certainty),
                _ => None,
            }).description("0 to 1: the lowest of its class's and the matched properties' certainties."))
            .field(text("peer", |f| match f {
                Found::Object { peer, .. } => Some(peer.clone()),
                _ => None,
            }))
            .field(text("class", |f| match f {
                Found::Object { class, .. } => Some(class.clone()),
                _ => None,
            }).description("The peer's class the object is of.")),
    )?;
    reg.add(
        INTROSPECT_PROPERTY,
        "network Introspect properties".into(),
        Object::new(INTROSPECT_PROPERTY)
            .field(
                text("property", |f| match f {
                    Found::Property { property, .. } => Some(property.clone()),
                    _ => None,
                })
                .description("The peer's property."),
            )
            .field(number("certainty", |f| match f {
                Found::Property { certainty, .. } => Some(*certainty),
                _ => None,
            })),
    )?;
    reg.add(
        INTROSPECT_RESULT,
        "network Introspect results".into(),
        Object::new(INTROSPECT_RESULT)
            .description(
                "A class of a peer that matches, with the property that matched each asked one.",
            )
            .field(text("peer", |f| match f {
                Found::Class { peer, .. } => Some(peer.clone()),
                _ => None,
            }))
            .field(
                text("class", |f| match f {
                    Found::Class { class, .. } => Some(class.clone()),
                    _ => None,
                })
                .description("The peer's class."),
            )
            .field(number("certainty", |f| match f {
                Found::Class { certainty, .. } => Some(*certainty),
                _ => None,
            }))
            .field(Field::new(
                "properties",
                TypeRef::named_nn_list_nn(INTROSPECT_PROPERTY),
                |ctx| {
                    let v = match ctx.parent_value.downcast_ref::<Found>() {
                        Some(Found::Class { properties, .. }) => {
                            Some(FieldValue::list(properties.iter().map(|(p, c)| {
                                FieldValue::owned_any(Found::Property {
                                    property: p.clone(),
                                    certainty: *c,
                                })
                            })))
                        }
                        _ => None,
                    };
                    FieldFuture::Value(v)
                },
            )),
    )?;
    Ok(())
}

fn float(x: f32) -> Option<GqlValue> {
    // f32 → f64 through its decimal text, so 0.9 reads 0.9, not 0.899999976.
    let x: f64 = x.to_string().parse().ok()?;
    Number::from_f64(x).map(GqlValue::Number)
}

/// What the answers hold, as the result types show it.
enum Found {
    Object {
        peer: String,
        beacon: String,
        certainty: f32,
        class: String,
    },
    Class {
        peer: String,
        class: String,
        certainty: f32,
        properties: Vec<(String, f32)>,
    },
    Property {
        property: String,
        certainty: f32,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeywordArg {
    value: String,
    weight: f32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClassArg {
    name: String,
    certainty: Option<f32>,
    #[serde(default)]
    keywords: Option<Vec<KeywordArg>>,
    first: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PropertyArg {
    name: String,
    certainty: Option<f32>,
    #[serde(default)]
    keywords: Option<Vec<KeywordArg>>,
    operator: Option<String>,
    value_string: Option<String>,
    value_text: Option<String>,
    value_int: Option<i64>,
    value_number: Option<f64>,
    value_boolean: Option<bool>,
    value_date: Option<String>,
}

#[derive(Deserialize)]
struct WhereArg {
    class: Vec<ClassArg>,
    #[serde(default)]
    properties: Option<Vec<PropertyArg>>,
}

fn keywords(what: &str, k: Option<Vec<KeywordArg>>) -> Result<Vec<QuestionKeyword>, String> {
    k.unwrap_or_default()
        .into_iter()
        .map(|k| {
            if k.weight.is_finite() && k.weight > 0.0 {
                Ok(QuestionKeyword {
                    value: k.value,
                    weight: k.weight,
                })
            } else {
                Err(format!(
                    "where: {what}: keyword {:?} has weight {}; give a weight more than 0",
                    k.value, k.weight
                ))
            }
        })
        .collect()
}

fn certainty_of(what: &str, c: Option<f32>) -> Result<f32, String> {
    let c = c.unwrap_or(DEFAULT_CERTAINTY);
    if (0.0..=1.0).contains(&c) {
        Ok(c)
    } else {
        Err(format!(
            "where: {what}: certainty {c} is out of range; give 0 to 1"
        ))
    }
}

/// The question a `Fetch` or `Introspect` field asks, from its `where` argument.
fn question(where_json: Value, kind: ObjectKindName, introspect: bool) -> Result<Question, String> {
    let w: WhereArg = serde_json::from_value(where_json).map_err(|e| format!("where: {e}"))?;
    if w.class.is_empty() {
        return Err(
            "where: class is empty; ask for at least one class, e.g. {name: \"City\", certainty: 0.7}"
                .into(),
        );
    }
    let mut classes = vec![];
    for c in w.class {
        let what = format!("class {}", c.name);
        let first = match c.first {
            None => None,
            Some(n) => Some(
                u64::try_from(n)
                    .map_err(|_| format!("where: {what}: first {n} is negative; give 0 or more"))?,
            ),
        };
        classes.push(ClassQuestion {
            certainty: certainty_of(&what, c.certainty)?,
            keywords: keywords(&what, c.keywords)?,
            name: c.name,
            first,
        });
    }
    let mut properties = vec![];
    for p in w.properties.unwrap_or_default() {
        let what = format!("property {}", p.name);
        let values: Vec<Value> = [
            p.value_string.map(Value::from),
            p.value_text.map(Value::from),
            p.value_int.map(Value::from),
            p.value_number.map(Value::from),
            p.value_boolean.map(Value::from),
            p.value_date.map(Value::from),
        ]
        .into_iter()
        .flatten()
        .collect();
        let (operator, value) = if introspect {
            (None, None)
        } else {
            if values.len() != 1 {
                return Err(format!(
                    "where: {what}: give exactly one of valueString, valueText, valueInt, valueNumber, valueBoolean, valueDate (got {})",
                    values.len()
                ));
            }
            let op = p.operator.unwrap_or_default();
            if matches!(op.as_str(), "And" | "Or" | "Not") {
                return Err(format!(
                    "where: {what}: operator {op} is not a comparison; use Equal, NotEqual, GreaterThan, GreaterThanEqual, LessThan or LessThanEqual"
                ));
            }
            if values[0].is_boolean() && !matches!(op.as_str(), "Equal" | "NotEqual") {
                return Err(format!(
                    "where: {what}: valueBoolean supports only Equal and NotEqual, not {op}"
                ));
            }
            (Some(op), values.into_iter().next())
        };
        properties.push(PropertyQuestion {
            certainty: certainty_of(&what, p.certainty)?,
            keywords: keywords(&what, p.keywords)?,
            name: p.name,
            operator,
            value,
        });
    }
    Ok(Question {
        kind,
        classes,
        properties,
        introspect,
        explore: None,
    })
}

/// The answers of the per-kind Explore questions as one list per peer: beacons together, and
/// a peer's error once.
fn merge_kinds(per_kind: Vec<Vec<PeerAnswer>>) -> Vec<PeerAnswer> {
    let mut out: Vec<PeerAnswer> = vec![];
    for answers in per_kind {
        for a in answers {
            match out.iter_mut().find(|o| o.peer == a.peer) {
                None => out.push(a),
                Some(o) => match (&mut o.answer, a.answer) {
                    (Ok(mine), Ok(theirs)) => mine.beacons.extend(theirs.beacons),
                    (Ok(_), Err(e)) => o.answer = Err(e),
                    (Err(_), _) => {}
                },
            }
        }
    }
    out
}

/// The Explore question the arguments of `Network.Explore` ask.
fn explore_question(
    w: &Writer<'_, '_>,
    f: &GqlField,
    max_k: u64,
) -> Result<weft_core::network::ExploreQuestion, Error> {
    #[derive(Deserialize)]
    struct MoveArg {
        concepts: Vec<String>,
        force: f64,
    }
    let parse = |name: &str| -> Result<Value, Error> { Ok(strip_nulls(w.argument(f, name)?)) };
    let movement = |name: &str| -> Result<Option<weft_core::meaning::Movement>, Error> {
        let v = parse(name)?;
        if v.is_null() {
            return Ok(None);
        }
        let m: MoveArg =
            serde_json::from_value(v).map_err(|e| Error::new(format!("{name}: {e}")))?;
        Ok(Some(weft_core::meaning::Movement {
            concepts: m.concepts,
            force: m.force,
        }))
    };
    let concepts: Vec<String> = serde_json::from_value(parse("concepts")?)
        .map_err(|e| Error::new(format!("concepts: {e}")))?;
    let certainty = parse("certainty")?.as_f64();
    let limit = match parse("limit")? {
        Value::Null => DEFAULT_EXPLORE_LIMIT.min(max_k),
        v => v
            .as_u64()
            .ok_or_else(|| Error::new(format!("limit {v} is not a count; give 1 or more")))?,
    };
    if limit > max_k {
        return Err(Error::new(format!(
            "a search by meaning for {limit} objects is over the limit limits.max_explore_k = {max_k}; send less, or raise limits.max_explore_k in the configuration"
        )));
    }
    if let Some(c) = certainty.filter(|c| !(0.0..=1.0).contains(c)) {
        return Err(Error::new(format!(
            "certainty is {c}; give a number from 0 to 1"
        )));
    }
    Ok(weft_core::network::ExploreQuestion {
        concepts: weft_core::meaning::Concepts {
            concepts,
            move_to: movement("moveTo")?,
            move_away_from: movement("moveAwayFrom")?,
        },
        certainty,
        limit,
    })
}

/// How many objects `Network.Explore` asks each peer for when it gives no `limit`.
const DEFAULT_EXPLORE_LIMIT: u64 = 100;

/// `Network.Explore`: every known peer's objects nearest in meaning to the concepts (over what
/// each shares), merged most certain first.
fn explore_field() -> Field {
    answers_field("Explore", false)
        .description("The objects of every known peer nearest in meaning to the concepts, over what each peer shares (network.share_key), most certain first: beacons, classes and certainties only.")
        .argument(InputValue::new("concepts", TypeRef::named_nn_list_nn(TypeRef::STRING)))
        .argument(InputValue::new("limit", TypeRef::named(TypeRef::INT)).description(
            "How many objects each peer answers at most (default 100; at most limits.max_explore_k).",
        ))
        .argument(
            InputValue::new("certainty", TypeRef::named(TypeRef::FLOAT))
                .description("Leave out objects less certain than this, from 0 to 1: (1 + cos)/2."),
        )
        .argument(InputValue::new(
            "moveTo",
            TypeRef::named(crate::local_query::MOVE_INPUT),
        ))
        .argument(InputValue::new(
            "moveAwayFrom",
            TypeRef::named(crate::local_query::MOVE_INPUT),
        ))
}

fn question_field(word: &str, introspect: bool) -> Field {
    let where_type = if introspect {
        INTROSPECT_WHERE
    } else {
        FETCH_WHERE
    };
    answers_field(word, introspect)
        .argument(InputValue::new("where", TypeRef::named_nn(where_type)))
        .description(if introspect {
            "Which classes (and properties) of every known peer match the question by meaning, most certain first."
        } else {
            "The objects of every known peer whose classes (and properties) match the question by meaning, most certain first: beacons and certainties only."
        })
}

/// A field that lists what the peers answered to the question asked for it.
fn answers_field(word: &str, introspect: bool) -> Field {
    let result = if introspect {
        INTROSPECT_RESULT
    } else {
        FETCH_RESULT
    };
    Field::new(word, TypeRef::named_nn_list(result), move |ctx| {
        FieldFuture::new(async move {
            let r = async {
                let answers = match Fetched::of(&ctx)? {
                    Outcome::Answers(Ok(a)) => a,
                    Outcome::Answers(Err(why)) => return Err(Error::new(why.clone())),
                    Outcome::Peer(_) => return Ok(None),
                };
                let mut found = vec![];
                let mut failed = vec![];
                for a in answers {
                    match &a.answer {
                        Err(e) => failed.push(format!("peer {}: {}", a.peer, e.message)),
                        Ok(answer) if introspect => found.extend(answer.classes.iter().map(|c| {
                            Found::Class {
                                peer: a.peer.clone(),
                                class: c.class.clone(),
                                certainty: c.certainty,
                                properties: c
                                    .properties
                                    .iter()
                                    .map(|p| (p.property.clone(), p.certainty))
                                    .collect(),
                            }
                        })),
                        Ok(answer) => found.extend(answer.beacons.iter().map(|b| Found::Object {
                            peer: a.peer.clone(),
                            beacon: b.beacon.clone(),
                            certainty: b.certainty,
                            class: b.class.clone(),
                        })),
                    }
                }
                failed.sort();
                for m in failed {
                    ctx.add_error(ServerError::new(m, Some(ctx.item.pos)).with_path(path_of(&ctx)));
                }
                found.sort_by(|a, b| {
                    let (ka, kb) = (order_key(a), order_key(b));
                    kb.0.total_cmp(&ka.0).then_with(|| ka.1.cmp(&kb.1))
                });
                Ok(Some(FieldValue::list(
                    found.into_iter().map(FieldValue::owned_any),
                )))
            };
            report(&ctx, r.await)
        })
    })
}

/// Most certain first, then by peer and beacon or class.
fn order_key(f: &Found) -> (f32, (String, String)) {
    match f {
        Found::Object {
            peer,
            beacon,
            certainty,
            ..
        } => (*certainty, (peer.clone(), beacon.clone())),
        Found::Class {
            peer,
            class,
            certainty,
            ..
        } => (*certainty, (peer.clone(), class.clone())),
        Found::Property {
            property,
            certainty,
        } => (*certainty, (String::new(), property.clone())),
    }
}

/// Explicit `null`s in an input object mean "not given".
fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_nulls).collect()),
        v => v,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures::future::BoxFuture;
    use serde_json::json;
    use weft_core::network::KnownPeer;
    use weft_core::network::{
        Answer, Beacon, CallerKey, MatchedClass, MatchedProperty, Peer, PeerAnswer,
    };
    use weft_core::{ConnectorHandle, Core, CoreConfig, NewKey, Principal};
    use weft_plugin_api::connector_box;

    use super::*;
    use crate::{Graphql, GraphqlRequest};

    /// How long the slow peer and every question take.
    const PAUSE: Duration = Duration::from_millis(300);

    /// A `query_peer` call: peer, query, timeout, key.
    type Asked = (String, String, Duration, Option<CallerKey>);

    /// A network of canned answers that records what it was asked.
    #[derive(Default)]
    struct Fake {
        peers: Vec<KnownPeer>,
        queries: Mutex<Vec<Asked>>,
        questions: Mutex<Vec<Question>>,
        together: Arc<Together>,
    }

    /// The slow calls of a query, each waiting (up to 4 s, within the query's default 5 s
    /// `networkTimeout`) until `expected` of them are in flight at once, so that "asked at once"
    /// is a condition, not a time (0: each just takes [`PAUSE`]).
    #[derive(Default)]
    struct Together {
        expected: std::sync::atomic::AtomicUsize,
        arrived: Mutex<usize>,
        arrivals: tokio::sync::Notify,
        apart: std::sync::atomic::AtomicBool,
    }

    impl Together {
        async fn pause(&self) {
            use std::sync::atomic::Ordering;
            let want = self.expected.load(Ordering::SeqCst);
            if want == 0 {
                tokio::time::sleep(PAUSE).await;
                return;
            }
            *self.arrived.lock().unwrap() += 1;
            self.arrivals.notify_waiters();
            let all_in_flight = async {
                loop {
                    let n = self.arrivals.notified();
                    tokio::pin!(n);
                    n.as_mut().enable();
                    if *self.arrived.lock().unwrap() >= want {
                        return;
                    }
                    n.await;
                }
            };
            if tokio::time::timeout(Duration::from_secs(4), all_in_flight)
                .await
                .is_err()
            {
                self.apart.store(true, Ordering::SeqCst);
            }
        }
    }

    fn ontology(v: Value) -> Arc<Ontology> {
        Arc::new(serde_json::from_value(v).unwrap())
    }

    fn known(name: &str, schema: Option<Arc<Ontology>>) -> KnownPeer {
        KnownPeer {
            peer: Peer {
                id: uuid::Uuid::new_v4(),
                name: name.into(),
                uri: format!("http://{name}.test"),
                schema_hash: String::new(),
                identity: None,
                last_contact_ms: 0,
            },
            schema,
        }
    }

    fn fake() -> Fake {
        let cities = ontology(json!({"things": {"classes": [
            {"class": "City", "properties": [
                {"name": "name", "@dataType": ["string"]},
                {"name": "population", "@dataType": ["int"]},
                {"name": "inCountry", "@dataType": ["Country"]}]},
            {"class": "Country", "properties": [{"name": "name", "@dataType": ["string"]}]}]}}));
        let other = ontology(json!({"things": {"classes": [
            {"class": "City", "properties": [{"name": "label", "@dataType": ["text"]}]}]},
            "actions": {"classes": [{"class": "Move", "properties": []}]}}));
        Fake {
            peers: vec![
                known("beta", Some(cities)),
                known("gamma-1", Some(other)),
                known(
                    "slow",
                    Some(ontology(
                        json!({"things": {"classes": [{"class": "Thing1"}]}}),
                    )),
                ),
                known("nothing-yet", None),
            ],
            ..Fake::default()
        }
    }

    impl weft_core::Network for Fake {
        fn peers(&self) -> (u64, Vec<KnownPeer>) {
            (7, self.peers.clone())
        }
        fn knows_url(&self, _: &str) -> bool {
            false
        }
        fn query_peer(
            &self,
            peer: &str,
            query: String,
            timeout: Duration,
            caller: Option<CallerKey>,
        ) -> BoxFuture<'static, weft_core::Result<Value>> {
            self.queries
                .lock()
                .unwrap()
                .push((peer.into(), query, timeout, caller));
            let answer = match peer {
                "beta" => Ok(json!({"data": {"Local": {"Get": {"Things": {"c": [
                    {"__typename": "City", "name": "Berlin", "population": 3600000,
                     "InCountry": [{"__typename": "Country", "name": "Germany"}]},
                    {"__typename": "City", "name": "Bonn", "population": "not a number", "InCountry": null}
                ]}}}}, "errors": [{"message": "something small went wrong"}]})),
                "gamma-1" => Ok(json!({"data": {"Local": {"Get": {
                    "Things": {"City": [{"__typename": "City", "uuid": "u-1", "label": "Lyon"}]},
                    "Actions": {"Move": []}}}}})),
                _ => Err(weft_core::Error::unavailable(format!(
                    "did not answer within {} s",
                    timeout.as_secs()
                ))),
            };
            let slow = peer == "slow";
            let together = self.together.clone();
            Box::pin(async move {
                if slow {
                    together.pause().await;
                }
                answer
            })
        }
        fn ask(&self, q: Question, _: Duration) -> BoxFuture<'static, Vec<PeerAnswer>> {
            self.questions.lock().unwrap().push(q.clone());
            let beacon = |peer: &str, id: &str, certainty: f32| Beacon {
                beacon: format!("weaviate://{peer}/{id}"),
                certainty,
                class: "City".into(),
            };
            let answers = vec![
                PeerAnswer {
                    peer: "beta".into(),
                    answer: Ok(Answer {
                        beacons: vec![beacon("beta", "b1", 0.8), beacon("beta", "b2", 0.8)],
                        classes: vec![MatchedClass {
                            class: "City".into(),
                            certainty: 0.8,
                            properties: vec![MatchedProperty {
                                property: "population".into(),
                                certainty: 0.9,
                            }],
                        }],
                    }),
                },
                PeerAnswer {
                    peer: "gamma-1".into(),
                    answer: Ok(Answer {
                        beacons: vec![beacon("gamma-1", "g1", 0.95)],
                        classes: vec![MatchedClass {
                            class: "Town".into(),
                            certainty: 0.95,
                            properties: vec![],
                        }],
                    }),
                },
                PeerAnswer {
                    peer: "slow".into(),
                    answer: Err(weft_core::Error::unavailable("did not answer within 2 s")),
                },
            ];
            let together = self.together.clone();
            Box::pin(async move {
                together.pause().await;
                answers
            })
        }
    }

    struct Setup {
        core: Arc<Core>,
        fake: Arc<Fake>,
        root: Principal,
        graphql: Graphql,
    }

    async fn setup(with_local_class: bool) -> Setup {
        let conn = ConnectorHandle::from_box(
            connector_box(weft_dev_memory::DevMemory::new()),
            "dev-memory",
            weft_dev_memory::CAPABILITIES,
        );
        let core = Arc::new(Core::new(conn, CoreConfig::default(), vec![]));
        let key: weft_plugin_api::Id = "0b1d3a3e-7d2b-4c55-9c1e-6f3f0a000001".parse().unwrap();
        core.keys
            .ensure_root(Some((key, "t".into())))
            .await
            .unwrap();
        let root = core
            .keys
            .authenticate(Some(&key.to_string()), Some("t"), None)
            .await
            .unwrap();
        if with_local_class {
            core.add_class(
                weft_plugin_api::ObjectKind::Thing,
                serde_json::from_value(json!({"class": "City"})).unwrap(),
            )
            .await
            .unwrap();
        }
        let fake = Arc::new(fake());
        core.set_network(fake.clone());
        Setup {
            core,
            fake,
            root,
            graphql: Graphql::new(),
        }
    }

    impl Setup {
        async fn run(&self, p: &Principal, query: &str, variables: Option<Value>) -> Value {
            let r = self
                .graphql
                .execute_as(
                    &self.core,
                    p,
                    Some(CallerKey {
                        key: "k".into(),
                        token: "t".into(),
                    }),
                    vec![GraphqlRequest {
                        query: Some(query.into()),
                        operation_name: None,
                        variables,
                    }],
                )
                .await
                .unwrap()
                .pop()
                .unwrap();
            serde_json::to_value(&r).unwrap()
        }
    }

    fn messages(v: &Value) -> Vec<String> {
        v["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    #[test]
    fn peer_names_become_graphql_names() {
        assert_eq!(peer_field_name("beta"), "beta");
        assert_eq!(peer_field_name("gamma-1"), "gamma_1");
        assert_eq!(peer_field_name("1st"), "p_1st");
        assert_eq!(peer_field_name("__x"), "p___x");
    }

    #[tokio::test]
    async fn each_peer_has_its_own_types_and_the_schema_follows_the_network_version() {
        let s = setup(true).await;
        let sdl = s.graphql.sdl(&s.core).await.unwrap().unwrap();
        for t in [
            "type Network_beta_City",
            "type Network_gamma_1_City",
            "union Network_beta_City_InCountryObj",
            "type NetworkGet_gamma_1_ActionsObj",
            "type Network_slow_Thing1",
            "type City",
        ] {
            assert!(sdl.contains(t), "{t} missing from\n{sdl}");
        }
        assert!(
            !sdl.contains("nothing"),
            "a peer without a schema has no field"
        );
        assert!(sdl.contains("Local: WeaviateLocalObj"), "{sdl}");
        // Without local classes the server still answers Network queries.
        let s = setup(false).await;
        let sdl = s.graphql.sdl(&s.core).await.unwrap().unwrap();
        assert!(
            sdl.contains("Network(") && !sdl.contains("Local: WeaviateLocalObj"),
            "{sdl}"
        );
    }

    #[tokio::test]
    async fn a_peer_schema_that_cannot_become_types_leaves_only_that_peer_out() {
        // One class in Things and in Actions, as a crafted peer might serve it (downloads are
        // checked, this is the last line): Local and the other peers stay.
        let bad = ontology(json!({
            "things": {"classes": [{"class": "City", "properties": []}]},
            "actions": {"classes": [{"class": "City", "properties": []}]}}));
        let mut peers = fake().peers;
        peers.push(known("evil", Some(bad)));
        let o = ontology(json!({"things": {"classes": [{"class": "Town"}]}}));
        let schema = crate::schema::build(o, Some(&peers), &weft_core::Limits::default())
            .expect("the schema builds without the bad peer");
        let sdl = schema.sdl();
        assert!(sdl.contains("type Network_beta_City"), "{sdl}");
        assert!(!sdl.contains("Network_evil"), "{sdl}");
        assert!(sdl.contains("Local: WeaviateLocalObj"), "{sdl}");
    }

    #[tokio::test]
    async fn a_network_get_asks_each_named_peer_its_selection_as_a_local_query() {
        let s = setup(true).await;
        let q = r#"query($n: String = "Berlin", $skipPop: Boolean!) {
            Network(networkTimeout: 3) { Get {
              beta { Things { c: City(first: 2, where: {operator: Equal, path: ["name"], valueString: $n}) {
                  name population @skip(if: $skipPop) ...Where } } }
              gamma_1 { Things { City { uuid label } } Actions { Move { uuid } } }
              slow { Things { Thing1 { uuid } } }
            } } }
            fragment Where on Network_beta_City { InCountry { ... on Network_beta_Country { name } } }"#;
        let v = s.run(&s.root, q, Some(json!({"skipPop": false}))).await;
        let get = &v["data"]["Network"]["Get"];
        assert_eq!(
            get["beta"]["Things"]["c"],
            json!([
                {"name": "Berlin", "population": 3600000, "InCountry": [{"name": "Germany"}]},
                {"name": "Bonn", "population": null, "InCountry": null}
            ]),
            "{v}"
        );
        assert_eq!(
            get["gamma_1"]["Things"]["City"],
            json!([{"uuid": "u-1", "label": "Lyon"}])
        );
        assert_eq!(get["gamma_1"]["Actions"]["Move"], json!([]));
        assert!(get["slow"].is_null(), "{v}");
        let m = messages(&v);
        assert!(
            m.contains(&"peer slow: did not answer within 3 s".to_string()),
            "{m:?}"
        );
        assert!(
            m.contains(&"peer beta: something small went wrong".to_string()),
            "{m:?}"
        );
        let queries = s.fake.queries.lock().unwrap().clone();
        let beta = queries.iter().find(|q| q.0 == "beta").unwrap();
        assert_eq!(beta.2, Duration::from_secs(3));
        assert_eq!(beta.3.as_ref().map(|k| k.key.as_str()), Some("k"));
        let text = &beta.1;
        assert!(text.starts_with("{ Local { Get { "), "{text}");
        assert!(
            text.contains(r#"c: City(first: 2, where: {operator: Equal, path: ["name"], valueString: "Berlin"})"#),
            "{text}"
        );
        assert!(text.contains("population"), "{text}");
        assert!(text.contains("... on City { __typename InCountry { __typename ... { __typename ... on Country { __typename name } } } }")
            || text.contains("... on City { __typename InCountry { __typename ... on Country { __typename name } } }"), "{text}");
        // Every peer's query parses as GraphQL.
        for (_, q, _, _) in &queries {
            async_graphql::parser::parse_query(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        }
        // Skipped fields are not asked.
        let v = s.run(&s.root, q, Some(json!({"skipPop": true}))).await;
        assert!(v["data"]["Network"]["Get"]["beta"].is_object(), "{v}");
        let last = s
            .fake
            .queries
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|q| q.0 == "beta")
            .unwrap()
            .1
            .clone();
        assert!(!last.contains("population"), "{last}");
    }

    #[tokio::test]
    async fn every_peer_and_question_of_a_network_query_is_asked_at_once() {
        let s = setup(true).await;
        let q = r#"{ Network { Get { slow { Things { Thing1 { uuid } } } again: slow { Things { Thing1 { uuid } } } }
            Fetch { Things(where: {class: [{name: "Town"}]}) { beacon } Actions(where: {class: [{name: "Move"}]}) { beacon } }
            Introspect { Things(where: {class: [{name: "Town"}]}) { class } } } }"#;
        // Each of the 5 calls answers only once all 5 are in flight: asked one after another,
        // the first would wait alone (4 s) and say so.
        s.fake
            .together
            .expected
            .store(5, std::sync::atomic::Ordering::SeqCst);
        let v = s.run(&s.root, q, None).await;
        assert_eq!(s.fake.queries.lock().unwrap().len(), 2, "{v}");
        assert_eq!(s.fake.questions.lock().unwrap().len(), 3, "{v}");
        assert!(
            !s.fake
                .together
                .apart
                .load(std::sync::atomic::Ordering::SeqCst),
            "the 5 calls were not all in flight at once: {v}"
        );
        assert_eq!(
            v["data"]["Network"]["Fetch"]["Things"]
                .as_array()
                .map(Vec::len),
            Some(3),
            "{v}"
        );
        assert_eq!(
            s.fake
                .questions
                .lock()
                .unwrap()
                .iter()
                .filter(|q| q.kind == ObjectKindName::Action)
                .count(),
            1
        );
    }

    #[tokio::test]
    async fn network_needs_the_execute_right_and_a_timeout_in_range() {
        let s = setup(true).await;
        let (reader, _) = s
            .core
            .keys
            .create_child(
                &s.root,
                NewKey {
                    read: true,
                    write: false,
                    delete: false,
                    execute: false,
                    email: None,
                    ip_origin: vec![],
                    expires_ms: None,
                },
            )
            .await
            .unwrap();
        let reader = Principal {
            key: reader,
            ancestors: vec![s.root.key.clone()],
        };
        let q = "{ Network { Fetch { Things(where: {class: [{name: \"Town\"}]}) { beacon } } } }";
        let v = s.run(&reader, q, None).await;
        assert!(v["data"]["Network"].is_null(), "{v}");
        let m = messages(&v);
        assert!(m[0].contains("execute right"), "{m:?}");
        for t in [0, 61, -1] {
            let q = format!("{{ Network(networkTimeout: {t}) {{ Fetch {{ Things(where: {{class: [{{name: \"Town\"}}]}}) {{ beacon }} }} }} }}");
            let m = messages(&s.run(&s.root, &q, None).await);
            assert!(
                m[0].contains(&format!("networkTimeout {t} is out of range")),
                "{m:?}"
            );
        }
        assert!(s.fake.questions.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn fetch_and_introspect_ask_every_peer_and_combine_the_answers() {
        let s = setup(true).await;
        let q = r#"{ Network(networkTimeout: 2) {
            Fetch { Things(where: {class: [{name: "Town", keywords: [{value: "town", weight: 1}], first: 5}],
                                   properties: [{name: "inhabitants", certainty: 0.6, operator: GreaterThan, valueInt: 1000}]}) {
                beacon certainty peer class } }
            Introspect { Things(where: {class: [{name: "Town", certainty: 0.5}], properties: [{name: "inhabitants"}]}) {
                peer class certainty properties { property certainty } } } } }"#;
        let v = s.run(&s.root, q, None).await;
        let fetched = &v["data"]["Network"]["Fetch"]["Things"];
        assert_eq!(
            fetched,
            &json!([
                {"beacon": "weaviate://gamma-1/g1", "certainty": 0.95, "peer": "gamma-1", "class": "City"},
                {"beacon": "weaviate://beta/b1", "certainty": 0.8, "peer": "beta", "class": "City"},
                {"beacon": "weaviate://beta/b2", "certainty": 0.8, "peer": "beta", "class": "City"}
            ]),
            "{v}"
        );
        let classes = &v["data"]["Network"]["Introspect"]["Things"];
        assert_eq!(classes[0]["class"], "Town");
        assert_eq!(
            classes[1],
            json!({"peer": "beta", "class": "City", "certainty": 0.8,
                   "properties": [{"property": "population", "certainty": 0.9}]})
        );
        let m = messages(&v);
        assert_eq!(
            m,
            vec!["peer slow: did not answer within 2 s"; 2],
            "one error per failed peer and question"
        );
        let asked = s.fake.questions.lock().unwrap().clone();
        let fetch = asked.iter().find(|q| !q.introspect).unwrap();
        assert_eq!(fetch.kind, ObjectKindName::Thing);
        assert_eq!(fetch.classes[0].certainty, DEFAULT_CERTAINTY);
        assert_eq!(fetch.classes[0].first, Some(5));
        assert_eq!(fetch.classes[0].keywords[0].value, "town");
        assert_eq!(fetch.properties[0].operator.as_deref(), Some("GreaterThan"));
        assert_eq!(fetch.properties[0].value, Some(json!(1000)));
        let introspect = asked.iter().find(|q| q.introspect).unwrap();
        assert_eq!(introspect.properties[0].operator, None);
        // A condition needs exactly one value.
        let q = r#"{ Network { Fetch { Things(where: {class: [{name: "Town"}],
            properties: [{name: "x", operator: Equal}]}) { beacon } } } }"#;
        let m = messages(&s.run(&s.root, q, None).await);
        assert!(m[0].contains("exactly one of valueString"), "{m:?}");
        let q = r#"{ Network { Fetch { Things(where: {class: [{name: "Town", certainty: 2}]}) { beacon } } } }"#;
        let m = messages(&s.run(&s.root, q, None).await);
        assert!(m[0].contains("certainty 2 is out of range"), "{m:?}");
    }
}
