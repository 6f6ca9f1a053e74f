//! Network questions and network queries: the peer-facing operations `/peers/questions` and
//! `/peers/answers/{answerId}` (no key), and the [`weft_core::Network`] implementation of
//! [`crate::PeerNode`] that GraphQL `Network { Get | Fetch | Introspect }` uses.
//!
//! **Question the network** (`Fetch`, `Introspect`):
//!
//! 1. The asker posts `{answerTo, peerName, question}` to every known peer's
//!    `POST /weaviate/v1/peers/questions`, concurrently.
//! 2. A peer accepts a question only when `answerTo` is the URI of a peer it knows (403
//!    otherwise: it never calls an address nobody vouched for), answers `202 {answerId}`, then
//!    computes the answer in the background ([`weft_core::Core::answer_question`]: classes
//!    and properties matched by meaning, beacons of every object, never their contents) and
//!    posts `{peerName, answer}` — or `{peerName, error}` — to
//!    `POST {its known URI}/weaviate/v1/peers/answers/{answerId}`.
//! 3. The asker accepts an answer only for an id it is waiting for, from the peer it asked
//!    (404 for an unknown or expired id, 403 from another peer). An answer may overtake the
//!    202 that announces its id: while the asker still waits for a peer's 202, that peer's
//!    answers are held (a few at most) and matched when the id arrives.
//! 4. The asker collects answers until the timeout; a peer that did not answer in time has an
//!    error of its own.
//!
//! The answer id is a random UUID that only the two peers know; together with the known-peer
//! rule it is what keeps strangers from injecting answers. The answers being waited for live
//! in a table of this module, per asking server (keyed by its public URL).
//!
//! **Network queries** (`Get`): [`weft_core::Network::query_peer`] posts a `Local` GraphQL
//! query to the peer's `/weaviate/v1/graphql` with the credentials configured for the peer's
//! URL (`network.peers[]`: `{url, api_key, api_token}`); without an entry, with the caller's own
//! `X-API-KEY`/`X-API-TOKEN` when `network.forward_caller_key` is true, otherwise without a key.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use futures::future::BoxFuture;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::time::Instant;
use uuid::Uuid;
use weft_core::network::{
    Answer, Beacon, CallerKey, ClassQuestion, KnownPeer, MatchedClass, MatchedProperty,
    ObjectKindName, Peer, PeerAnswer, PropertyQuestion, Question, QuestionKeyword,
};
use weft_core::{Error, Result};

use crate::PeerNode;

/// How long a peer may spend answering one question before it gives up.
const ANSWER_LIMIT: Duration = Duration::from_secs(60);
/// How long posting an answer back may take.
const POST_ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// How many answers that overtook their 202 are held per (asker, peer).
const EARLY_ANSWERS: usize = 16;

/// `http://host:port` or `…/weaviate/v1` + `/weaviate/v1` + `path`.
pub fn api_url(uri: &str, path: &str) -> String {
    let base = uri.trim_end_matches('/');
    if base.ends_with("/weaviate/v1") {
        format!("{base}{path}")
    } else {
        format!("{base}/weaviate/v1{path}")
    }
}

/// A peer URL as compared: lower case, without trailing slashes or the API's base path.
fn norm_url(u: &str) -> String {
    let u = u.trim().trim_end_matches('/').to_ascii_lowercase();
    u.strip_suffix("/weaviate/v1").unwrap_or(&u).to_string()
}

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

/// One error message.
#[derive(Object, Debug, Clone)]
#[oai(rename = "NetworkQuestionErrorMessage")]
pub struct ErrorMessage {
    /// What is wrong.
    pub message: String,
}

/// The error body, as every other operation's.
#[derive(Object, Debug, Clone)]
#[oai(rename = "NetworkQuestionErrorResponse")]
pub struct ErrorBody {
    /// The messages.
    pub error: Vec<ErrorMessage>,
}

/// What the question operations answer.
#[derive(ApiResponse, Debug)]
pub enum QuestionResponse {
    /// The question is accepted; the answer will be posted under `answerId`.
    #[oai(status = 202)]
    Accepted(Json<Accepted>),
    /// The answer is accepted.
    #[oai(status = 204)]
    Received,
    /// The asker (or the answering peer) is not a known peer.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// This server is not part of a network, or no question waits for this answer id.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The question is not valid.
    #[oai(status = 422)]
    Unprocessable(Json<ErrorBody>),
}

fn body(m: impl Into<String>) -> Json<ErrorBody> {
    Json(ErrorBody {
        error: vec![ErrorMessage { message: m.into() }],
    })
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
// The answers being waited for.

/// (asker's URL, normalised; the peer asked).
type Slot = (String, String);

struct Waiter {
    slot: Slot,
    tx: oneshot::Sender<Result<Answer>>,
}

#[derive(Default)]
struct Waiting {
    by_id: HashMap<Uuid, Waiter>,
    /// Questions whose 202 has not been read yet, per slot.
    expecting: HashMap<Slot, usize>,
    /// Answers that arrived before their 202, per slot.
    early: HashMap<Slot, Vec<(Uuid, Result<Answer>)>>,
}

static WAITING: LazyLock<Mutex<Waiting>> = LazyLock::new(Mutex::default);

fn waiting() -> std::sync::MutexGuard<'static, Waiting> {
    WAITING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// While it lives, answers of its peer may arrive before their id is known.
struct Expecting(Slot);

impl Expecting {
    fn new(slot: Slot) -> Self {
        *waiting().expecting.entry(slot.clone()).or_default() += 1;
        Expecting(slot)
    }
}

impl Drop for Expecting {
    fn drop(&mut self) {
        let mut w = waiting();
        let n = w.expecting.get(&self.0).copied().unwrap_or(1) - 1;
        if n == 0 {
            w.expecting.remove(&self.0);
            w.early.remove(&self.0);
        } else {
            w.expecting.insert(self.0.clone(), n);
        }
    }
}

/// Waits for answer `id` of `slot` (delivered at once when it arrived early).
fn wait_for(id: Uuid, slot: Slot) -> oneshot::Receiver<Result<Answer>> {
    let (tx, rx) = oneshot::channel();
    let mut w = waiting();
    let early = w.early.get_mut(&slot).and_then(|list| {
        let i = list.iter().position(|(e, _)| *e == id)?;
        Some(list.swap_remove(i).1)
    });
    match early {
        Some(answer) => {
            let _ = tx.send(answer);
        }
        None => {
            w.by_id.insert(id, Waiter { slot, tx });
        }
    }
    rx
}

/// While it lives, answer `id` is waited for; dropped (answered, timed out, or the asking
/// request gone), it is not any more.
struct Forget(Uuid);

impl Drop for Forget {
    fn drop(&mut self) {
        waiting().by_id.remove(&self.0);
    }
}

/// Why an answer was refused.
enum Refused {
    NotWaiting(String),
    WrongPeer(String),
}

/// Hands answer `id` from `peer` to the question of `asker` waiting for it.
fn deliver(
    asker: &str,
    peer: &str,
    id: Uuid,
    answer: Result<Answer>,
) -> std::result::Result<(), Refused> {
    let mut w = waiting();
    let asked = w.by_id.get(&id).map(|x| x.slot.clone());
    match asked {
        Some((a, p)) if a == asker => {
            if p != peer {
                return Err(Refused::WrongPeer(format!(
                    "answer {id} was asked of peer {p}, not of {peer}"
                )));
            }
            if let Some(waiter) = w.by_id.remove(&id) {
                let _ = waiter.tx.send(answer);
            }
            Ok(())
        }
        _ => {
            let slot = (asker.to_string(), peer.to_string());
            if w.expecting.get(&slot).is_some_and(|n| *n > 0) {
                let list = w.early.entry(slot).or_default();
                if list.len() < EARLY_ANSWERS {
                    list.push((id, answer));
                }
                return Ok(());
            }
            Err(Refused::NotWaiting(format!(
                "no question waits for answer {id} from peer {peer:?}: it was never asked here, or its networkTimeout has passed"
            )))
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

    fn node(&self) -> std::result::Result<&Arc<PeerNode>, QuestionResponse> {
        self.node.as_ref().ok_or_else(|| {
            QuestionResponse::NotFound(body(
                "this server is not part of a network; configure network.peer_name and a genesis or P2P.bootstrappedPeers",
            ))
        })
    }
}

#[OpenApi]
impl QuestionsApi {
    /// Asks this peer a network question (peer-facing, no key).
    ///
    /// Accepted only from a known peer: `answerTo` must be the URI of a peer this server knows
    /// (403 otherwise). Answers 202 with an `answerId`, then matches the question's classes
    /// and properties with its own by meaning (contextionary vectors, certainty = 1 − cosine
    /// distance) and posts the answer — beacons `weaviate://<peer>/<uuid>` and certainties of
    /// every matching object, never their contents — to
    /// `{answerTo}/weaviate/v1/peers/answers/{answerId}`.
    #[oai(
        path = "/peers/questions",
        method = "post",
        operation_id = "weaviate.peers.questions.create"
    )]
    async fn create(&self, request: Json<QuestionRequest>) -> QuestionResponse {
        let node = match self.node() {
            Ok(n) => n.clone(),
            Err(r) => return r,
        };
        let request = request.0;
        let Some(asker) = node.directory.by_url(&request.answer_to) else {
            return QuestionResponse::Forbidden(body(format!(
                "answerTo {:?} is not a peer this server knows; questions are answered only to peers of the network",
                request.answer_to
            )));
        };
        let question = match request.question.into_question() {
            Ok(q) => q,
            Err(e) => return QuestionResponse::Unprocessable(body(format!("question: {e}"))),
        };
        let id = Uuid::new_v4();
        tracing::debug!(
            "peer {} asks: {} (answer {id})",
            asker.name,
            weft_core::questions::describe(&question)
        );
        tokio::spawn(answer_in_background(node, asker, question, id));
        QuestionResponse::Accepted(Json(Accepted { answer_id: id }))
    }

    /// Receives a peer's answer to a question this server asked (peer-facing, no key).
    ///
    /// Accepted only for an `answerId` this server is waiting for (404 otherwise: never asked,
    /// or its `networkTimeout` has passed), from the peer it asked (403 otherwise). 204.
    #[oai(
        path = "/peers/answers/:answerId",
        method = "post",
        operation_id = "weaviate.peers.answers.create"
    )]
    async fn answer(
        &self,
        #[oai(name = "answerId")] answer_id: Path<String>,
        request: Json<AnswerRequest>,
    ) -> QuestionResponse {
        let node = match self.node() {
            Ok(n) => n,
            Err(r) => return r,
        };
        let Ok(id) = answer_id.0.parse::<Uuid>() else {
            return QuestionResponse::NotFound(body(format!(
                "answer id {:?} is not a UUID; no question waits for it",
                answer_id.0
            )));
        };
        let request = request.0;
        let answer = match (request.answer, request.error) {
            (_, Some(e)) => Err(Error::unavailable(e)),
            (Some(a), None) => Ok(a.into_answer()),
            (None, None) => Ok(Answer::default()),
        };
        match deliver(
            &norm_url(&node.config.public_url),
            &request.peer_name,
            id,
            answer,
        ) {
            Ok(()) => QuestionResponse::Received,
            Err(Refused::NotWaiting(m)) => QuestionResponse::NotFound(body(m)),
            Err(Refused::WrongPeer(m)) => QuestionResponse::Forbidden(body(m)),
        }
    }
}

/// Computes the answer to `question` and posts it to `asker` (its known URI).
async fn answer_in_background(node: Arc<PeerNode>, asker: Peer, question: Question, id: Uuid) {
    let name = node.config.peer_name.clone();
    let answer =
        match tokio::time::timeout(ANSWER_LIMIT, node.core.answer_question(&question, &name)).await
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
    let url = api_url(&asker.uri, &format!("/peers/answers/{id}"));
    let sent = node
        .http
        .post(&url)
        .json(&poem_openapi::types::ToJSON::to_json(&body).unwrap_or_default())
        .timeout(POST_ANSWER_TIMEOUT)
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => tracing::debug!(
            "peer {} refused answer {id} with {} (its question has probably timed out)",
            asker.name,
            r.status()
        ),
        Err(e) => tracing::warn!("answer {id} could not be posted to {url}: {e}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The Network implementation.

impl PeerNode {
    /// The known peers other than this server.
    fn others(&self) -> Vec<KnownPeer> {
        let me = norm_url(&self.config.public_url);
        self.directory
            .snapshot()
            .1
            .into_iter()
            .filter(|k| k.peer.name != self.config.peer_name && norm_url(&k.peer.uri) != me)
            .collect()
    }

    /// The key to present at `uri`: the configured one, else (when forwarding is on) the
    /// caller's, else none.
    fn key_for(&self, uri: &str, caller: Option<CallerKey>) -> Option<CallerKey> {
        let want = norm_url(uri);
        self.config
            .credentials
            .iter()
            .find(|c| norm_url(&c.url) == want)
            .map(|c| CallerKey {
                key: c.api_key.clone(),
                token: c.api_token.clone(),
            })
            .or_else(|| caller.filter(|_| self.config.forward_caller_key))
    }
}

/// The message of a `{"error":[{"message"}]}` body, or the text.
fn error_message(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v["error"][0]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| text.chars().take(300).collect())
}

impl weft_core::Network for PeerNode {
    fn peers(&self) -> (u64, Vec<KnownPeer>) {
        (self.directory.snapshot().0, self.others())
    }

    fn knows_url(&self, url: &str) -> bool {
        let want = norm_url(url);
        self.directory
            .snapshot()
            .1
            .iter()
            .any(|k| norm_url(&k.peer.uri) == want)
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
        let http = self.http.clone();
        let peer = peer.to_string();
        Box::pin(async move {
            let Some(known) = known else {
                return Err(Error::not_found(format!(
                    "{peer} is not a peer this server knows (any more)"
                )));
            };
            let url = api_url(&known.peer.uri, "/graphql");
            let mut req = http
                .post(&url)
                .json(&serde_json::json!({ "query": query }))
                .timeout(timeout);
            if let Some(k) = key {
                req = req
                    .header("X-API-KEY", k.key)
                    .header("X-API-TOKEN", k.token);
            }
            let call = async {
                let resp = req.send().await?;
                let status = resp.status();
                let text = resp.text().await?;
                Ok::<_, reqwest::Error>((status, text))
            };
            match tokio::time::timeout(timeout, call).await {
                Err(_) => Err(Error::unavailable(format!(
                    "did not answer within {}",
                    seconds(timeout)
                ))),
                Ok(Err(e)) if e.is_timeout() => Err(Error::unavailable(format!(
                    "did not answer within {}",
                    seconds(timeout)
                ))),
                Ok(Err(e)) => Err(Error::unavailable(format!(
                    "could not be reached at {url}: {e}"
                ))),
                Ok(Ok((status, text))) if !status.is_success() => Err(Error::unavailable(format!(
                    "answered {}: {}",
                    status.as_u16(),
                    error_message(&text)
                ))),
                Ok(Ok((_, text))) => serde_json::from_str(&text).map_err(|e| {
                    Error::unavailable(format!("answered something that is not JSON: {e}"))
                }),
            }
        })
    }

    fn ask(&self, question: Question, timeout: Duration) -> BoxFuture<'static, Vec<PeerAnswer>> {
        let peers: Vec<Peer> = self.others().into_iter().map(|k| k.peer).collect();
        let http = self.http.clone();
        let asker = norm_url(&self.config.public_url);
        let request = QuestionRequest {
            answer_to: self.config.public_url.clone(),
            peer_name: self.config.peer_name.clone(),
            question: QuestionModel::of(&question),
        };
        Box::pin(async move {
            use poem_openapi::types::ToJSON;
            let deadline = Instant::now() + timeout;
            let json = request.to_json().unwrap_or_default();
            let asks = peers.into_iter().map(|peer| {
                let (http, asker, json) = (http.clone(), asker.clone(), json.clone());
                async move {
                    let answer = ask_one(&http, asker, &peer, json, deadline, timeout).await;
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

/// Asks one peer and waits for its answer until `deadline`.
async fn ask_one(
    http: &reqwest::Client,
    asker: String,
    peer: &Peer,
    question: Value,
    deadline: Instant,
    timeout: Duration,
) -> Result<Answer> {
    let late = || Error::unavailable(format!("did not answer within {}", seconds(timeout)));
    let slot = (asker, peer.name.clone());
    let expecting = Expecting::new(slot.clone());
    let url = api_url(&peer.uri, "/peers/questions");
    let call = async {
        let resp = http.post(&url).json(&question).send().await?;
        let status = resp.status();
        let text = resp.text().await?;
        Ok::<_, reqwest::Error>((status, text))
    };
    let (status, text) = match tokio::time::timeout_at(deadline, call).await {
        Err(_) => return Err(late()),
        Ok(Err(e)) => {
            return Err(Error::unavailable(format!(
                "could not be asked at {url}: {e}"
            )))
        }
        Ok(Ok(r)) => r,
    };
    if !status.is_success() {
        return Err(Error::unavailable(format!(
            "refused the question with {}: {}",
            status.as_u16(),
            error_message(&text)
        )));
    }
    let id = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["answerId"].as_str().and_then(|s| s.parse::<Uuid>().ok()))
        .ok_or_else(|| {
            Error::unavailable(format!(
                "accepted the question without an answerId: {}",
                text.chars().take(200).collect::<String>()
            ))
        })?;
    let rx = wait_for(id, slot);
    let _forget = Forget(id);
    drop(expecting);
    match tokio::time::timeout_at(deadline, rx).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) | Err(_) => Err(late()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(n: usize) -> Answer {
        Answer {
            beacons: (0..n)
                .map(|i| Beacon {
                    beacon: format!("weaviate://beta/{i}"),
                    certainty: 0.9,
                    class: "City".into(),
                })
                .collect(),
            classes: vec![],
        }
    }

    #[test]
    fn urls_are_compared_without_case_slashes_or_base_path() {
        assert_eq!(
            norm_url("HTTP://127.0.0.1:80/weaviate/v1/"),
            "http://127.0.0.1:80"
        );
        assert_eq!(
            api_url("http://a:1/", "/graphql"),
            "http://a:1/weaviate/v1/graphql"
        );
        assert_eq!(
            api_url("http://a:1/weaviate/v1", "/graphql"),
            "http://a:1/weaviate/v1/graphql"
        );
    }

    #[tokio::test]
    async fn an_answer_is_delivered_to_the_question_waiting_for_its_id_from_its_peer_only() {
        let asker = "http://asker-1".to_string();
        let id = Uuid::new_v4();
        let rx = wait_for(id, (asker.clone(), "beta".into()));
        // Another peer cannot answer in beta's place; another asker's table is not this one.
        assert!(matches!(
            deliver(&asker, "gamma", id, Ok(answer(1))),
            Err(Refused::WrongPeer(_))
        ));
        assert!(matches!(
            deliver("http://asker-2", "beta", id, Ok(answer(1))),
            Err(Refused::NotWaiting(_))
        ));
        assert!(deliver(&asker, "beta", id, Ok(answer(2))).is_ok());
        assert_eq!(rx.await.unwrap().unwrap().beacons.len(), 2);
        // Once delivered, the id is no longer waited for.
        assert!(matches!(
            deliver(&asker, "beta", id, Ok(answer(1))),
            Err(Refused::NotWaiting(_))
        ));
    }

    #[tokio::test]
    async fn an_answer_that_overtakes_its_202_is_held_until_the_id_is_known() {
        let slot = ("http://asker-3".to_string(), "beta".to_string());
        let id = Uuid::new_v4();
        // Nobody expects beta's answers: refused.
        assert!(matches!(
            deliver(&slot.0, "beta", id, Ok(answer(1))),
            Err(Refused::NotWaiting(_))
        ));
        let expecting = Expecting::new(slot.clone());
        assert!(deliver(&slot.0, "beta", id, Ok(answer(3))).is_ok());
        let rx = wait_for(id, slot.clone());
        drop(expecting);
        assert_eq!(rx.await.unwrap().unwrap().beacons.len(), 3);
        assert!(!waiting().expecting.contains_key(&slot));
        assert!(!waiting().early.contains_key(&slot));
    }

    #[test]
    fn questions_cross_the_wire_unchanged() {
        let q = Question {
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
            beacons: answer(1).beacons,
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
