//! Network questions and network queries: the peer-facing operations `/peers/questions` and
//! `/peers/answers/{answerId}`, and the [`weft_core::Network`] implementation of
//! [`crate::PeerNode`] that GraphQL `Network { Get | Fetch | Introspect }` uses.
//!
//! **Question the network** (`Fetch`, `Introspect`):
//!
//! 1. The asker posts `{answerTo, peerName, question}`, signed, to every known peer's
//!    `POST /weaviate/v1/peers/questions`, concurrently.
//! 2. A peer accepts a question only signed with the key of a peer it knows, whose known URI
//!    is `answerTo` (403 otherwise: strangers get no answers, and nobody is made to call an
//!    address nobody vouched for), within its budgets (`limits.peer_questions_per_minute` per
//!    asker, `limits.max_answers_in_progress` at once: 429; `limits.max_question_classes`,
//!    `_properties`, `_keywords`: 413). It answers `202 {answerId}`, then computes the answer in
//!    the background ([`weft_core::Core::answer_question`]: classes and properties matched by
//!    meaning, beacons of the objects `network.share_key` may see, never their contents) and
//!    posts `{peerName, answer}` — or `{peerName, error}` — signed, to
//!    `POST {the asker's known URI}/weaviate/v1/peers/answers/{answerId}`.
//! 3. The asker accepts an answer only signed with the key of the peer it asked, for an id it
//!    waits for from that peer (404 for an unknown or expired id, 403 from another peer). An
//!    answer may overtake the 202 that announces its id: while the asker still waits for a
//!    peer's 202, that peer's answers are held (a few at most) and matched when the id arrives.
//! 4. The asker collects answers until the timeout; a peer that did not answer in time has an
//!    error of its own.
//!
//! The answers being waited for live in a table of the [`crate::PeerNode`].
//!
//! **Network queries** (`Get`): [`weft_core::Network::query_peer`] posts a `Local` GraphQL
//! query, signed, to the peer's `/weaviate/v1/graphql` with the credentials configured for the
//! peer's URL (`network.peers[]`: `{url, api_key, api_token}`); without an entry, with the
//! caller's own `X-API-KEY`/`X-API-TOKEN` when `network.forward_caller_key` is true, otherwise
//! without a key. The answer must be signed with the peer's key, so a key is only ever sent to
//! the server that holds the peer's name.

pub(crate) mod waiting;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde_json::Value;
use tokio::time::Instant;
use uuid::Uuid;
use weft_core::network::{
    Answer, Beacon, CallerKey, ClassQuestion, ExploreQuestion, KnownPeer, MatchedClass,
    MatchedProperty, ObjectKindName, Peer, PeerAnswer, PropertyQuestion, Question, QuestionKeyword,
};
use weft_core::{Error, Result};
use weft_peer_protocol::signature::Verified;
use weft_peer_protocol::signed_http;
use weft_peer_protocol::wire::{ErrorBody, Refusal};
use weft_peer_protocol::{Call, CallError, PeerClient, PeerUri};

use crate::node::PeerNode;
use waiting::{Refused, Waiting};

/// How long a peer may spend answering one question before it gives up.
const ANSWER_LIMIT: Duration = Duration::from_secs(60);
/// How long posting an answer back may take.
const POST_ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

// ---------------------------------------------------------------------------------------------
// Wire models.

/// A keyword of a question, with its weight.
#[derive(Object, Debug, Clone)]
#[oai(rename = "NetworkQuestionKeyword")]
pub struct KeywordModel {
    /// The word.
    pub value: String,
    /// Its weight, more than 0.
    pub weight: f32,
}

/// A class a question asks about, matched by meaning.
#[derive(Object, Debug, Clone)]
#[oai(rename = "NetworkQuestionClass")]
pub struct ClassModel {
    /// The class as the asker calls it, e.g. `Town`.
    pub name: String,
    /// Keywords placing it (default: its name's CamelCase parts).
    #[oai(default)]
    pub keywords: Vec<KeywordModel>,
    /// The least certainty (1 − cosine distance, 0..1) a class must match with.
    pub certainty: f32,
    /// At most this many objects per matching class.
    #[oai(skip_serializing_if_is_none)]
    pub first: Option<u64>,
}

/// A property condition of a question: the property matched by meaning, its value by
/// `operator`.
#[derive(Object, Debug, Clone)]
#[oai(rename = "NetworkQuestionProperty")]
pub struct PropertyModel {
    /// The property as the asker calls it.
    pub name: String,
    /// Keywords placing it (default: its name's parts).
    #[oai(default)]
    pub keywords: Vec<KeywordModel>,
    /// The least certainty the property must match with.
    pub certainty: f32,
    /// `Equal`, `NotEqual`, `GreaterThan`, `GreaterThanEqual`, `LessThan`, `LessThanEqual`
    /// (absent in introspection).
    #[oai(skip_serializing_if_is_none)]
    pub operator: Option<String>,
    /// A string, number or boolean compared with the property's value.
    #[oai(skip_serializing_if_is_none)]
    pub value: Option<Value>,
}

/// `moveTo`/`moveAwayFrom` of an Explore question.
#[derive(Object, Debug, Clone)]
#[oai(rename = "NetworkExploreMove")]
pub struct MoveModel {
    /// The concepts to move towards or away from.
    pub concepts: Vec<String>,
    /// How far, 0 to 1.
    pub force: f64,
}

/// An Explore question: the asked kind's objects nearest in meaning to the concepts.
#[derive(Object, Debug, Clone)]
#[oai(rename = "NetworkExplore")]
pub struct ExploreModel {
    /// Words or phrases.
    pub concepts: Vec<String>,
    /// Pulls the search towards other concepts.
    #[oai(rename = "moveTo", skip_serializing_if_is_none)]
    pub move_to: Option<MoveModel>,
    /// Pushes the search away from other concepts.
    #[oai(rename = "moveAwayFrom", skip_serializing_if_is_none)]
    pub move_away_from: Option<MoveModel>,
    /// The least certainty, 0 to 1 ((1 + cos)/2).
    #[oai(skip_serializing_if_is_none)]
    pub certainty: Option<f64>,
    /// At most this many objects.
    pub limit: u64,
}

fn move_in(m: MoveModel) -> weft_core::meaning::Movement {
    weft_core::meaning::Movement {
        concepts: m.concepts,
        force: m.force,
    }
}

fn move_out(m: &weft_core::meaning::Movement) -> MoveModel {
    MoveModel {
        concepts: m.concepts.clone(),
        force: m.force,
    }
}

/// What a question asks.
#[derive(Object, Debug, Clone)]
#[oai(rename = "NetworkQuestion")]
pub struct QuestionModel {
    /// `thing` or `action`.
    pub kind: String,
    /// The classes asked for (a class of the peer matches when it matches one of them).
    pub classes: Vec<ClassModel>,
    /// Conditions every matching class must have a property for (and, in a Fetch, every
    /// object must satisfy).
    #[oai(default)]
    pub properties: Vec<PropertyModel>,
    /// Answer which classes and properties match, without objects.
    #[oai(default)]
    pub introspect: bool,
    /// Explore: answer the objects nearest in meaning, over every class of `kind` (`classes`
    /// and `properties` are then left empty).
    #[oai(skip_serializing_if_is_none)]
    pub explore: Option<ExploreModel>,
}

/// `POST /peers/questions`: a question and where to answer it.
#[derive(Object, Debug, Clone)]
#[oai(rename = "NetworkQuestionRequest")]
pub struct QuestionRequest {
    /// The asker's URI as the network knows it; the answer goes to
    /// `{answerTo}/weaviate/v1/peers/answers/{answerId}`.
    #[oai(rename = "answerTo")]
    pub answer_to: String,
    /// The asker's peer name.
    #[oai(rename = "peerName", default)]
    pub peer_name: String,
    /// The question.
    pub question: QuestionModel,
}

/// The 202 of `POST /peers/questions`.
#[derive(Object, Debug, Clone)]
#[oai(rename = "NetworkQuestionAccepted")]
pub struct Accepted {
    /// The id the answer will be posted under.
    #[oai(rename = "answerId")]
    pub answer_id: Uuid,
}

/// An object that matched: its beacon, its class and how certain the match is.
#[derive(Object, Debug, Clone)]
#[oai(rename = "NetworkBeacon")]
pub struct BeaconModel {
    /// `weaviate://<peerName>/<uuid>`.
    pub beacon: String,
    /// 0..1.
    pub certainty: f32,
    /// The answering peer's class.
    #[oai(default)]
    pub class: String,
}

/// A property of a matching class.
#[derive(Object, Debug, Clone)]
#[oai(rename = "NetworkMatchedProperty")]
pub struct MatchedPropertyModel {
    /// The answering peer's property.
    pub property: String,
    /// 0..1.
    pub certainty: f32,
}

/// A class that matched.
#[derive(Object, Debug, Clone)]
#[oai(rename = "NetworkMatchedClass")]
pub struct MatchedClassModel {
    /// The answering peer's class.
    pub class: String,
    /// 0..1.
    pub certainty: f32,
    /// One property per asked property, in the question's order.
    #[oai(default)]
    pub properties: Vec<MatchedPropertyModel>,
}

/// What a peer found.
#[derive(Object, Debug, Clone)]
#[oai(rename = "NetworkAnswer")]
pub struct AnswerModel {
    /// The objects (Fetch).
    #[oai(default)]
    pub beacons: Vec<BeaconModel>,
    /// The classes that matched.
    #[oai(default)]
    pub classes: Vec<MatchedClassModel>,
}

/// `POST /peers/answers/{answerId}`: a peer's answer, or why it has none.
#[derive(Object, Debug, Clone)]
#[oai(rename = "NetworkAnswerRequest")]
pub struct AnswerRequest {
    /// The answering peer's name.
    #[oai(rename = "peerName")]
    pub peer_name: String,
    /// Its answer.
    #[oai(skip_serializing_if_is_none)]
    pub answer: Option<AnswerModel>,
    /// Why it could not answer (e.g. it has no contextionary).
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<String>,
}

/// `POST /peers/questions` taken.
#[derive(ApiResponse, Debug)]
pub enum QuestionAccepted {
    /// The question is accepted; the answer will be posted under `answerId`.
    #[oai(status = 202)]
    Accepted(Json<Accepted>),
}

/// `POST /peers/answers/{answerId}` taken.
#[derive(ApiResponse, Debug)]
pub enum AnswerReceived {
    /// The answer is accepted.
    #[oai(status = 204)]
    Received,
}

fn keywords_in(k: Vec<KeywordModel>) -> Vec<QuestionKeyword> {
    k.into_iter()
        .map(|k| QuestionKeyword {
            value: k.value,
            weight: k.weight,
        })
        .collect()
}

fn keywords_out(k: &[QuestionKeyword]) -> Vec<KeywordModel> {
    k.iter()
        .map(|k| KeywordModel {
            value: k.value.clone(),
            weight: k.weight,
        })
        .collect()
}

impl QuestionModel {
    fn into_question(self) -> std::result::Result<Question, String> {
        let kind = match self.kind.to_ascii_lowercase().as_str() {
            "thing" | "things" => ObjectKindName::Thing,
            "action" | "actions" => ObjectKindName::Action,
            k => return Err(format!("kind {k:?} is neither \"thing\" nor \"action\"")),
        };
        Ok(Question {
            kind,
            classes: self
                .classes
                .into_iter()
                .map(|c| ClassQuestion {
                    name: c.name,
                    keywords: keywords_in(c.keywords),
                    certainty: c.certainty,
                    first: c.first,
                })
                .collect(),
            properties: self
                .properties
                .into_iter()
                .map(|p| PropertyQuestion {
                    name: p.name,
                    keywords: keywords_in(p.keywords),
                    certainty: p.certainty,
                    operator: p.operator,
                    value: p.value,
                })
                .collect(),
            introspect: self.introspect,
            explore: self.explore.map(|e| ExploreQuestion {
                concepts: weft_core::meaning::Concepts {
                    concepts: e.concepts,
                    move_to: e.move_to.map(move_in),
                    move_away_from: e.move_away_from.map(move_in),
                },
                certainty: e.certainty,
                limit: e.limit,
            }),
        })
    }

    fn of(q: &Question) -> Self {
        QuestionModel {
            kind: match q.kind {
                ObjectKindName::Thing => "thing",
                ObjectKindName::Action => "action",
            }
            .into(),
            classes: q
                .classes
                .iter()
                .map(|c| ClassModel {
                    name: c.name.clone(),
                    keywords: keywords_out(&c.keywords),
                    certainty: c.certainty,
                    first: c.first,
                })
                .collect(),
            properties: q
                .properties
                .iter()
                .map(|p| PropertyModel {
                    name: p.name.clone(),
                    keywords: keywords_out(&p.keywords),
                    certainty: p.certainty,
                    operator: p.operator.clone(),
                    value: p.value.clone(),
                })
                .collect(),
            introspect: q.introspect,
            explore: q.explore.as_ref().map(|e| ExploreModel {
                concepts: e.concepts.concepts.clone(),
                move_to: e.concepts.move_to.as_ref().map(move_out),
                move_away_from: e.concepts.move_away_from.as_ref().map(move_out),
                certainty: e.certainty,
                limit: e.limit,
            }),
        }
    }
}

impl AnswerModel {
    fn of(a: &Answer) -> Self {
        AnswerModel {
            beacons: a
                .beacons
                .iter()
                .map(|b| BeaconModel {
                    beacon: b.beacon.clone(),
                    certainty: b.certainty,
                    class: b.class.clone(),
                })
                .collect(),
            classes: a
                .classes
                .iter()
                .map(|c| MatchedClassModel {
                    class: c.class.clone(),
                    certainty: c.certainty,
                    properties: c
                        .properties
                        .iter()
                        .map(|p| MatchedPropertyModel {
                            property: p.property.clone(),
                            certainty: p.certainty,
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    fn into_answer(self) -> Answer {
        Answer {
            beacons: self
                .beacons
                .into_iter()
                .map(|b| Beacon {
                    beacon: b.beacon,
                    certainty: b.certainty,
                    class: b.class,
                })
                .collect(),
            classes: self
                .classes
                .into_iter()
                .map(|c| MatchedClass {
                    class: c.class,
                    certainty: c.certainty,
                    properties: c
                        .properties
                        .into_iter()
                        .map(|p| MatchedProperty {
                            property: p.property,
                            certainty: p.certainty,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The operations.

/// The question and answer operations.
pub struct QuestionsApi {
    /// The peer, when this server is one.
    pub node: Option<Arc<PeerNode>>,
}

impl QuestionsApi {
    /// The operations over `node`.
    pub fn new(node: Option<Arc<PeerNode>>) -> Self {
        QuestionsApi { node }
    }

    fn node(&self) -> std::result::Result<&Arc<PeerNode>, Refusal> {
        self.node.as_ref().ok_or_else(|| {
            Refusal::NotFound(ErrorBody::json(
                "this server is not part of a network; configure network.peer_name and a genesis or P2P.bootstrappedPeers",
            ))
        })
    }
}

/// The known peer that signed `signer` (with its bound key); without a signature, with
/// `P2P.acceptUnsignedPeers`, the known peer named `unsigned_name` that has no key.
fn sender(
    node: &PeerNode,
    signer: Option<&Verified>,
    unsigned_name: impl FnOnce() -> Option<Peer>,
) -> std::result::Result<Peer, Refusal> {
    match signer {
        Some(v) => match node.directory.get(&v.peer) {
            Some(k) if crate::directory::key_of(&k.peer) == Some(v.key) => Ok(k.peer),
            _ => Err(Refusal::Forbidden(ErrorBody::json(format!(
                "{:?} signed with {} is not a peer this server knows; questions and answers are taken only from peers of the network",
                v.peer, v.key
            )))),
        },
        None if node.config.accept_unsigned => match unsigned_name() {
            Some(p) if p.identity.is_none() => Ok(p),
            Some(p) => Err(Refusal::Unauthorized(ErrorBody::json(format!(
                "peer {} has a key: its questions and answers must be signed with it",
                p.name
            )))),
            None => Err(Refusal::Forbidden(ErrorBody::json(
                "the sender is not a peer this server knows; questions and answers are taken only from peers of the network",
            ))),
        },
        None => Err(Refusal::Unauthorized(ErrorBody::json(
            "sign the request with the sending peer's key (see README \"Running a network across organisations\")",
        ))),
    }
}

/// The question's size against `limits.max_question_*`.
fn check_size(q: &QuestionModel, limits: &weft_core::Limits) -> std::result::Result<(), String> {
    let over = |what: &str, n: usize, name: &str, limit: usize| {
        (n > limit).then(|| {
            format!(
                "the question has {n} {what}, over the limit limits.{name} = {limit}; ask for less"
            )
        })
    };
    let concepts = q.explore.as_ref().map_or(0, |e| {
        e.concepts.len()
            + e.move_to.as_ref().map_or(0, |m| m.concepts.len())
            + e.move_away_from.as_ref().map_or(0, |m| m.concepts.len())
    });
    let keywords = q
        .classes
        .iter()
        .map(|c| c.keywords.len())
        .chain(q.properties.iter().map(|p| p.keywords.len()))
        .max()
        .unwrap_or(0);
    match over(
        "classes",
        q.classes.len(),
        "max_question_classes",
        limits.max_question_classes,
    )
    .or_else(|| {
        over(
            "Explore concepts",
            concepts,
            "max_c11y_words",
            limits.max_c11y_words,
        )
    })
    .or_else(|| {
        let limit = q.explore.as_ref().map_or(0, |e| e.limit);
        over(
            "as its Explore limit",
            usize::try_from(limit).unwrap_or(usize::MAX),
            "max_explore_k",
            usize::try_from(limits.max_explore_k).unwrap_or(usize::MAX),
        )
    })
    .or_else(|| {
        over(
            "properties",
            q.properties.len(),
            "max_question_properties",
            limits.max_question_properties,
        )
    })
    .or_else(|| {
        over(
            "keywords for one class or property",
            keywords,
            "max_question_keywords",
            limits.max_question_keywords,
        )
    }) {
        Some(m) => Err(m),
        None => Ok(()),
    }
}

#[OpenApi]
impl QuestionsApi {
    /// Ask this peer a network question, signed with the asking peer's key: accepted only from
    /// a peer this one knows by that key, whose known URI is `answerTo` (403 otherwise), within
    /// `limits.peer_questions_per_minute` per asker and `limits.max_answers_in_progress` at once
    /// (429) and `limits.max_question_classes`/`_properties`/`_keywords` (413). Answers `202
    /// {answerId}` and posts the answer, signed, to the asker's
    /// `/weaviate/v1/peers/answers/{answerId}`: over the objects `network.share_key` may see
    /// (none without it: a Fetch then answers an error saying so), beacons and certainties only.
    #[oai(
        path = "/peers/questions",
        method = "post",
        operation_id = "weaviate.peers.questions.create"
    )]
    async fn create(
        &self,
        req: &poem::Request,
        request: Json<QuestionRequest>,
    ) -> std::result::Result<QuestionAccepted, Refusal> {
        let node = self.node()?.clone();
        let request = request.0;
        let answer_to = PeerUri::parse(&request.answer_to).ok();
        let asker = sender(&node, signed_http::verified(req), || {
            answer_to.as_ref().and_then(|u| node.directory.by_uri(u))
        })?;
        if answer_to.as_ref().map(PeerUri::as_str) != Some(asker.uri.as_str()) {
            return Err(Refusal::Forbidden(ErrorBody::json(format!(
                "answerTo {:?} is not the address this server knows peer {} by ({}); answers go only there",
                request.answer_to, asker.name, asker.uri
            ))));
        }
        let limits = &node.core.limits;
        if let Err(over) = node.budgets.questions.take(&asker.name) {
            return Err(Refusal::TooMany(
                ErrorBody::json(format!(
                    "peer {} asked more than {} questions in a minute (limits.peer_questions_per_minute); try again in {} s",
                    asker.name, limits.peer_questions_per_minute, over.retry_after_s
                )),
                over.retry_after_s,
            ));
        }
        if let Err(m) = check_size(&request.question, limits) {
            return Err(Refusal::TooLarge(ErrorBody::json(m)));
        }
        let question = match request.question.into_question() {
            Ok(q) => q,
            Err(e) => {
                return Err(Refusal::Unprocessable(ErrorBody::json(format!(
                    "question: {e}"
                ))))
            }
        };
        let Some(slot) = node.budgets.answering.try_take() else {
            return Err(Refusal::TooMany(
                ErrorBody::json(format!(
                    "this peer is answering {} questions, its limit (limits.max_answers_in_progress); try again in a second",
                    node.budgets.answering.limit()
                )),
                1,
            ));
        };
        let id = Uuid::new_v4();
        tracing::debug!(
            "peer {} asks: {} (answer {id})",
            asker.name,
            weft_core::answering::describe(&question)
        );
        tokio::spawn(async move {
            let _slot = slot;
            answer_in_background(node, asker, question, id).await;
        });
        Ok(QuestionAccepted::Accepted(Json(Accepted { answer_id: id })))
    }

    /// Post the answer to a question this peer asked, signed with the answering peer's key:
    /// accepted only for an id this peer waits for, from the peer it asked.
    #[oai(
        path = "/peers/answers/:answerId",
        method = "post",
        operation_id = "weaviate.peers.answers.create"
    )]
    async fn answer(
        &self,
        req: &poem::Request,
        #[oai(name = "answerId")] answer_id: Path<String>,
        request: Json<AnswerRequest>,
    ) -> std::result::Result<AnswerReceived, Refusal> {
        let node = self.node()?;
        let Ok(id) = answer_id.0.parse::<Uuid>() else {
            return Err(Refusal::NotFound(ErrorBody::json(format!(
                "answer id {:?} is not a UUID; no question waits for it",
                answer_id.0
            ))));
        };
        let request = request.0;
        let from = sender(node, signed_http::verified(req), || {
            node.directory.get(&request.peer_name).map(|k| k.peer)
        })?;
        if from.name != request.peer_name {
            return Err(Refusal::Forbidden(ErrorBody::json(format!(
                "the answer says it is from {:?} but is signed by {}",
                request.peer_name, from.name
            ))));
        }
        let answer = match (request.answer, request.error) {
            (_, Some(e)) => Err(Error::unavailable(e)),
            (Some(a), None) => Ok(a.into_answer()),
            (None, None) => Ok(Answer::default()),
        };
        match node
            .waiting
            .deliver(node.public_uri.as_str(), &from.name, id, answer)
        {
            Ok(()) => Ok(AnswerReceived::Received),
            Err(Refused::NotWaiting(m)) => Err(Refusal::NotFound(ErrorBody::json(m))),
            Err(Refused::WrongPeer(m)) => Err(Refusal::Forbidden(ErrorBody::json(m))),
        }
    }
}

async fn answer_in_background(node: Arc<PeerNode>, asker: Peer, question: Question, id: Uuid) {
    let name = node.config.peer_name.clone();
    let answer = match tokio::time::timeout(
        ANSWER_LIMIT,
        node.core
            .answer_question(&question, &name, node.config.share_key.map(Into::into)),
    )
    .await
    {
        Ok(a) => a,
        Err(_) => Err(Error::unavailable(format!(
            "peer {name} could not answer within {}",
            seconds(ANSWER_LIMIT)
        ))),
    };
    let (answer, error) = match answer {
        Ok(a) => (Some(AnswerModel::of(&a)), None),
        Err(e) => (None, Some(e.message)),
    };
    let body = AnswerRequest {
        peer_name: name,
        answer,
        error,
    };
    let Ok(uri) = PeerUri::parse(&asker.uri) else {
        return;
    };
    let url = uri.api(&format!("/peers/answers/{id}"));
    let json = poem_openapi::types::ToJSON::to_json(&body).unwrap_or_default();
    let call = Call::json(http::Method::POST, &url, &json).timeout(POST_ANSWER_TIMEOUT);
    match node.client().send(call).await {
        Ok(r) if r.ok() => {}
        Ok(r) => tracing::debug!(
            "peer {} refused answer {id} with {} (its question has probably timed out)",
            asker.name,
            r.status
        ),
        Err(e) => tracing::warn!("answer {id} could not be posted to {url}: {e}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The Network implementation.

impl PeerNode {
    fn others(&self) -> Vec<KnownPeer> {
        self.directory
            .snapshot()
            .1
            .into_iter()
            .filter(|k| {
                k.peer.name != self.config.peer_name && k.peer.uri != self.public_uri.as_str()
            })
            .collect()
    }

    fn key_for(&self, uri: &str, caller: Option<CallerKey>) -> Option<CallerKey> {
        let want = PeerUri::parse(uri).ok();
        self.config
            .credentials
            .iter()
            .find(|c| PeerUri::parse(&c.url).ok() == want)
            .map(|c| CallerKey {
                key: c.api_key.clone(),
                token: c.api_token.clone(),
            })
            .or_else(|| caller.filter(|_| self.config.forward_caller_key))
    }
}

fn call_error(e: &CallError, timeout: Duration) -> Error {
    match e {
        CallError::Timeout(_) => {
            Error::unavailable(format!("did not answer within {}", seconds(timeout)))
        }
        other => Error::unavailable(other.to_string()),
    }
}

impl weft_core::Network for PeerNode {
    fn peers(&self) -> (u64, Vec<KnownPeer>) {
        (self.directory.snapshot().0, self.others())
    }

    fn knows_url(&self, url: &str) -> bool {
        PeerUri::parse(url)
            .ok()
            .is_some_and(|u| self.directory.by_uri(&u).is_some())
    }

    fn query_peer(
        &self,
        peer: &str,
        query: String,
        timeout: Duration,
        caller: Option<CallerKey>,
    ) -> BoxFuture<'static, Result<Value>> {
        let known = self.directory.get(peer);
        let key = known
            .as_ref()
            .and_then(|k| self.key_for(&k.peer.uri, caller));
        let client = self.client().clone();
        let accept_unsigned = self.config.accept_unsigned;
        let peer = peer.to_string();
        Box::pin(async move {
            let Some(known) = known else {
                return Err(Error::not_found(format!(
                    "{peer} is not a peer this server knows (any more)"
                )));
            };
            let uri = PeerUri::parse(&known.peer.uri).map_err(Error::unavailable)?;
            let url = uri.api("/graphql");
            let mut call = Call::json(
                http::Method::POST,
                &url,
                &serde_json::json!({ "query": query }),
            )
            .timeout(timeout);
            if let Some(k) = key {
                call = call
                    .header("X-API-KEY", k.key)
                    .header("X-API-TOKEN", k.token);
            }
            let a = client
                .send(call)
                .await
                .map_err(|e| call_error(&e, timeout))?;
            match (crate::directory::key_of(&known.peer), &a.signer) {
                (Some(k), Some(v)) if v.key == k => {}
                (None, _) if accept_unsigned => {}
                _ => {
                    return Err(Error::unavailable(
                        "answered without the signature of its key; its answer is not used",
                    ))
                }
            }
            if !a.ok() {
                return Err(Error::unavailable(format!(
                    "answered {}: {}",
                    a.status,
                    a.error_message()
                )));
            }
            a.json::<Value>().map_err(|e| {
                Error::unavailable(format!("answered something that is not JSON: {e}"))
            })
        })
    }

    fn ask(&self, question: Question, timeout: Duration) -> BoxFuture<'static, Vec<PeerAnswer>> {
        let peers: Vec<Peer> = self.others().into_iter().map(|k| k.peer).collect();
        let client = self.client().clone();
        let waiting = self.waiting.clone();
        let accept_unsigned = self.config.accept_unsigned;
        let asker = self.public_uri.to_string();
        let request = QuestionRequest {
            answer_to: self.public_uri.to_string(),
            peer_name: self.config.peer_name.clone(),
            question: QuestionModel::of(&question),
        };
        Box::pin(async move {
            use poem_openapi::types::ToJSON;
            let deadline = Instant::now() + timeout;
            let json = request.to_json().unwrap_or_default();
            let asks = peers.into_iter().map(|peer| {
                let (client, waiting, asker, json) =
                    (client.clone(), waiting.clone(), asker.clone(), json.clone());
                async move {
                    let answer = ask_one(
                        &client,
                        &waiting,
                        asker,
                        &peer,
                        json,
                        deadline,
                        timeout,
                        accept_unsigned,
                    )
                    .await;
                    PeerAnswer {
                        peer: peer.name,
                        answer,
                    }
                }
            });
            futures::future::join_all(asks).await
        })
    }
}

#[allow(clippy::too_many_arguments)]
async fn ask_one(
    client: &PeerClient,
    waiting: &Waiting,
    asker: String,
    peer: &Peer,
    question: Value,
    deadline: Instant,
    timeout: Duration,
    accept_unsigned: bool,
) -> Result<Answer> {
    let late = || Error::unavailable(format!("did not answer within {}", seconds(timeout)));
    let slot = (asker, peer.name.clone());
    let expecting = waiting.expecting(slot.clone());
    let uri = PeerUri::parse(&peer.uri).map_err(Error::unavailable)?;
    let left = deadline.saturating_duration_since(Instant::now());
    let call = Call::json(http::Method::POST, uri.api("/peers/questions"), &question).timeout(left);
    let a = client.send(call).await.map_err(|e| match e {
        CallError::Timeout(_) => late(),
        e => Error::unavailable(format!("could not be asked: {e}")),
    })?;
    match (crate::directory::key_of(peer), &a.signer) {
        (Some(k), Some(v)) if v.key == k => {}
        (None, _) if accept_unsigned => {}
        _ => {
            return Err(Error::unavailable(
                "answered without the signature of its key; its answer is not used",
            ))
        }
    }
    if !a.ok() {
        return Err(Error::unavailable(format!(
            "refused the question with {}: {}",
            a.status,
            a.error_message()
        )));
    }
    let id = a
        .json::<Value>()
        .ok()
        .and_then(|v| v["answerId"].as_str().and_then(|s| s.parse::<Uuid>().ok()))
        .ok_or_else(|| Error::unavailable("accepted the question without an answerId"))?;
    let (rx, _forget) = waiting.wait_for(id, slot);
    drop(expecting);
    match tokio::time::timeout_at(deadline, rx).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) | Err(_) => Err(late()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_question_over_the_size_limits_names_the_limit() {
        let limits = weft_core::Limits {
            max_question_classes: 1,
            ..weft_core::Limits::default()
        };
        let class = |n: &str| ClassModel {
            name: n.into(),
            keywords: vec![],
            certainty: 0.7,
            first: None,
        };
        let mut q = QuestionModel {
            kind: "thing".into(),
            classes: vec![class("Town")],
            properties: vec![],
            introspect: false,
            explore: None,
        };
        check_size(&q, &limits).unwrap();
        q.classes.push(class("City"));
        assert!(check_size(&q, &limits)
            .unwrap_err()
            .contains("limits.max_question_classes = 1"));
        // Explore questions are bounded by concepts and by their limit.
        q.classes.clear();
        q.explore = Some(ExploreModel {
            concepts: vec!["town".into(); limits.max_c11y_words],
            move_to: None,
            move_away_from: Some(MoveModel {
                concepts: vec!["river".into()],
                force: 0.5,
            }),
            certainty: None,
            limit: 10,
        });
        assert!(check_size(&q, &limits)
            .unwrap_err()
            .contains("limits.max_c11y_words"));
        let e = q.explore.as_mut().unwrap();
        e.concepts = vec!["town".into()];
        check_size(&q, &limits).unwrap();
        q.explore.as_mut().unwrap().limit = limits.max_explore_k + 1;
        assert!(check_size(&q, &limits)
            .unwrap_err()
            .contains("limits.max_explore_k"));
    }

    #[test]
    fn questions_cross_the_wire_unchanged() {
        let q = Question {
            explore: None,
            kind: ObjectKindName::Action,
            classes: vec![ClassQuestion {
                name: "Town".into(),
                keywords: vec![QuestionKeyword {
                    value: "town".into(),
                    weight: 1.0,
                }],
                certainty: 0.7,
                first: Some(3),
            }],
            properties: vec![PropertyQuestion {
                name: "population".into(),
                keywords: vec![],
                certainty: 0.6,
                operator: Some("GreaterThan".into()),
                value: Some(serde_json::json!(1000)),
            }],
            introspect: false,
        };
        assert_eq!(QuestionModel::of(&q).into_question().unwrap(), q);
        let a = Answer {
            beacons: vec![Beacon {
                beacon: "weaviate://beta/0".into(),
                certainty: 0.9,
                class: "City".into(),
            }],
            classes: vec![MatchedClass {
                class: "City".into(),
                certainty: 0.8,
                properties: vec![MatchedProperty {
                    property: "population".into(),
                    certainty: 0.9,
                }],
            }],
        };
        assert_eq!(AnswerModel::of(&a).into_answer(), a);
    }
}
