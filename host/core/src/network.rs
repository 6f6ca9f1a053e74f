//! The network port: what the core and the front ends may ask of the P2P network, without
//! knowing how it talks (that is `weft-p2p`, which implements [`Network`] and is handed to the
//! core at start-up with [`crate::Core::set_network`]).
//!
//! Owns: the shapes of peers, network questions and their answers. Must not know: HTTP,
//! genesis or bootstrap protocols.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use weft_plugin_api::ObjectKind;

use crate::ontology::Ontology;
use crate::Result;

/// A peer of the network, as this server knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// Its registration id (from the genesis, or made by the bootstrapped peer that stored it).
    pub id: uuid::Uuid,
    /// Its name: a DNS-like label, unique in the network (`peerName`).
    pub name: String,
    /// Its base URL, e.g. `http://127.0.0.1:8081` (`peerUri`).
    pub uri: String,
    /// The MD5 of its schema (ontology JSON) as it last said.
    pub schema_hash: String,
    /// Its public key, `ed25519:…` (`None`: a Weaviate 0.12 peer, which cannot sign).
    #[serde(default)]
    pub identity: Option<String>,
    /// When it was last heard from, Unix ms (0 when unknown).
    pub last_contact_ms: i64,
}

/// A known peer with its schema, once downloaded.
#[derive(Debug, Clone)]
pub struct KnownPeer {
    /// The peer.
    pub peer: Peer,
    /// Its ontology, `None` until downloaded (or when the download failed).
    pub schema: Option<Arc<Ontology>>,
}

/// The key a caller presented (`X-API-KEY`, `X-API-TOKEN`), carried only so that a network
/// query may forward it to a peer when `network.forward_caller_key` is configured.
#[derive(Clone, PartialEq, Eq)]
pub struct CallerKey {
    /// `X-API-KEY`.
    pub key: String,
    /// `X-API-TOKEN`.
    pub token: String,
}

impl std::fmt::Debug for CallerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallerKey")
            .field("key", &self.key)
            .field("token", &"…")
            .finish()
    }
}

/// A keyword of a network question, with its weight (> 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuestionKeyword {
    /// The word.
    pub value: String,
    /// Its weight.
    pub weight: f32,
}

/// A class a network question asks about: by name and keywords, matched by meaning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassQuestion {
    /// The class name as the asker calls it (e.g. `Town`).
    pub name: String,
    /// Keywords with weights that place it (empty: the name's parts).
    #[serde(default)]
    pub keywords: Vec<QuestionKeyword>,
    /// The least certainty (0..1, 1 − cosine distance) a class must match with.
    pub certainty: f32,
    /// At most this many objects per matching class (`None`: the server's limit).
    #[serde(default)]
    pub first: Option<u64>,
}

/// A property condition of a network question: the property is matched by meaning, its value
/// by `operator`. Without `operator` (introspection) only the property's meaning is asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropertyQuestion {
    /// The property name as the asker calls it.
    pub name: String,
    /// Keywords with weights (empty: the name's parts).
    #[serde(default)]
    pub keywords: Vec<QuestionKeyword>,
    /// The least certainty the property must match with.
    pub certainty: f32,
    /// `Equal`, `NotEqual`, `GreaterThan`, `GreaterThanEqual`, `LessThan`, `LessThanEqual`, as
    /// in `where` filters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// The value compared with: a JSON string, number or boolean. A string compared with a
    /// `date` property is read as an RFC 3339 date; a value of another type than the matched
    /// property's never matches (as in `where` filters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
}

/// What a network question asks (GraphQL `Network { Fetch | Introspect }`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Question {
    /// Things or Actions.
    pub kind: ObjectKindName,
    /// Classes, by meaning.
    pub classes: Vec<ClassQuestion>,
    /// Property conditions, by meaning (all must hold).
    #[serde(default)]
    pub properties: Vec<PropertyQuestion>,
    /// Introspect: answer which classes and properties match, no objects.
    #[serde(default)]
    pub introspect: bool,
    /// Explore: the objects of `kind` nearest in meaning to these concepts, over every class
    /// (then `classes` and `properties` are not asked and may be empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explore: Option<ExploreQuestion>,
}

/// A `moveTo` or `moveAwayFrom`: other concepts and how far (0 to 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Movement {
    /// The concepts to move towards or away from.
    pub concepts: Vec<String>,
    /// How far, from 0 (not at all) to 1.
    pub force: f64,
}

/// What a search by meaning looks for, here and in a network question (`crate::meaning`
/// searches with it).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Concepts {
    /// Words or phrases (`"big city"`).
    pub concepts: Vec<String>,
    /// Pulls the query towards other concepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub move_to: Option<Movement>,
    /// Pushes the query away from other concepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub move_away_from: Option<Movement>,
}

/// A search by meaning over a peer's objects (GraphQL `Network { Explore }`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExploreQuestion {
    /// The concepts and their moves.
    #[serde(flatten)]
    pub concepts: Concepts,
    /// Leave out objects less certain than this (0..1, `(1 + cos)/2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certainty: Option<f64>,
    /// At most this many objects (the answering peer's `limits.max_explore_k` bounds it).
    pub limit: u64,
}

/// `thing` or `action` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKindName {
    /// Things.
    Thing,
    /// Actions.
    Action,
}

impl From<ObjectKindName> for ObjectKind {
    fn from(k: ObjectKindName) -> Self {
        match k {
            ObjectKindName::Thing => ObjectKind::Thing,
            ObjectKindName::Action => ObjectKind::Action,
        }
    }
}

impl From<ObjectKind> for ObjectKindName {
    fn from(k: ObjectKind) -> Self {
        match k {
            ObjectKind::Thing => ObjectKindName::Thing,
            ObjectKind::Action => ObjectKindName::Action,
        }
    }
}

/// One object a peer found: `weaviate://<peer>/<uuid>` and how certain the match is. A network
/// question never sees an object's contents: only its id, the class it is of and the
/// certainty with which that class (and the asked properties) matched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Beacon {
    /// `weaviate://<peerName>/<uuid>`.
    pub beacon: String,
    /// 0..1: the lowest of the certainties of its class and of the properties the conditions
    /// matched.
    pub certainty: f32,
    /// The peer's class the object is of.
    #[serde(default)]
    pub class: String,
}

/// A property of a peer's class that matched a property of the question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchedProperty {
    /// The peer's property name.
    pub property: String,
    /// 0..1.
    pub certainty: f32,
}

/// A class of a peer that matched, with the properties that matched (introspection).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchedClass {
    /// The peer's class name.
    pub class: String,
    /// 0..1.
    pub certainty: f32,
    /// The peer's properties that matched the question's, one per asked property, in the
    /// question's order.
    #[serde(default)]
    pub properties: Vec<MatchedProperty>,
}

/// One peer's answer to a question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Answer {
    /// The objects found (Fetch).
    #[serde(default)]
    pub beacons: Vec<Beacon>,
    /// The classes that matched (Introspect, and Fetch for reference).
    #[serde(default)]
    pub classes: Vec<MatchedClass>,
}

/// What came back from one peer: its answer, or why none came.
#[derive(Debug, Clone)]
pub struct PeerAnswer {
    /// The peer's name.
    pub peer: String,
    /// Its answer, or an error (e.g. "did not answer within 2 s").
    pub answer: Result<Answer>,
}

/// The network, as the core and the front ends use it.
pub trait Network: Send + Sync {
    /// The peers known now, with their schemas once downloaded, and a version that changes
    /// whenever the set of peers or one of their schemas changes (what caches built from it,
    /// such as the GraphQL schema, are keyed by).
    fn peers(&self) -> (u64, Vec<KnownPeer>);

    /// Whether `url` (a reference's `locationUrl`) names a known peer.
    fn knows_url(&self, url: &str) -> bool;

    /// Runs a `Local` GraphQL query on the peer named `peer` with the credentials configured for
    /// its URL — or, when none are and forwarding is configured, with `caller` (the key the
    /// caller of this server presented); otherwise without a key. Answers the peer's JSON
    /// response (`{"data": …, "errors": …}`), or an error when it did not answer within
    /// `timeout` or refused (the message need not name the peer: the caller does).
    fn query_peer(
        &self,
        peer: &str,
        query: String,
        timeout: Duration,
        caller: Option<CallerKey>,
    ) -> BoxFuture<'static, Result<serde_json::Value>>;

    /// Asks every known peer `question` and collects the answers that arrive within `timeout`;
    /// a peer that did not answer in time has an error naming it.
    fn ask(&self, question: Question, timeout: Duration) -> BoxFuture<'static, Vec<PeerAnswer>>;
}
