//! `/c11y`: the contextionary over HTTP — words, their neighbours, and the classes nearest to a
//! word or a class. Answers 501 when no contextionary is configured (a server without one never
//! has one until it is restarted with one: not 503, which would invite a retry), saying how to
//! start with one.

use std::sync::Arc;

use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use weft_plugin_api::ObjectKind;

use super::{ApiError, ApiResult, ApiTags, ErrorResponse};
use weft_core::c11y::{name_parts, nearest_classes};
use weft_core::ContextionaryHandle;
use weft_core::Core;

/// The contextionary operations.
pub struct C11yApi(pub Arc<Core>);

/// A word and its distance to a query.
#[derive(Object, Debug, Clone)]
pub struct NearestNeighbor {
    /// The word.
    pub word: String,
    /// Cosine distance (1 − cosine similarity).
    pub distance: f32,
}

/// What the contextionary knows of a word.
#[derive(Object, Debug, Clone)]
pub struct WordInfo {
    /// Its vector.
    pub vector: Vec<f32>,
    /// Its nearest words, nearest first.
    #[oai(rename = "nearestNeighbors")]
    pub nearest_neighbors: Vec<NearestNeighbor>,
}

/// One word of the request.
#[derive(Object, Debug, Clone)]
pub struct IndividualWord {
    /// The word (lower-cased).
    pub word: String,
    /// Whether the contextionary knows it.
    pub present: bool,
    /// Its vector and neighbours, when present.
    #[oai(skip_serializing_if_is_none)]
    pub info: Option<WordInfo>,
}

/// `GET /c11y/words/{words}`.
#[derive(Object, Debug, Clone)]
pub struct C11yWordsResponse {
    /// Each word, in request order.
    #[oai(rename = "individualWords")]
    pub individual_words: Vec<IndividualWord>,
}

/// A class and its distance to a query.
#[derive(Object, Debug, Clone)]
pub struct NearestClass {
    /// The class name.
    pub class: String,
    /// `thing` or `action`.
    pub kind: String,
    /// Cosine distance between the class's vector and the query.
    pub distance: f32,
}

/// `GET /c11y/classes/nearest`.
#[derive(Object, Debug, Clone)]
pub struct NearestClassesResponse {
    /// Nearest first.
    pub classes: Vec<NearestClass>,
}

/// `GET /c11y/classes/{className}`.
#[derive(Object, Debug, Clone)]
pub struct ClassVector {
    /// The class name.
    pub class: String,
    /// `thing` or `action`.
    pub kind: String,
    /// Its vector: the weighted centroid of its keywords, or the mean of its name's parts.
    pub vector: Vec<f32>,
}

/// The message of the 501 every `/c11y` operation answers without a contextionary.
pub const NO_CONTEXTIONARY: &str = "this server runs without a contextionary: make one with `weft contextionary fetch` (it writes data/glove-6b-50d.fifu), then start the server with `--contextionary PATH` (or WEFT_CONTEXTIONARY=PATH)";

fn contextionary(core: &Core) -> ApiResult<&ContextionaryHandle> {
    core.c11y
        .as_ref()
        .ok_or_else(|| ApiError::NotImplemented(Json(ErrorResponse::new(NO_CONTEXTIONARY))))
}

async fn neighbours(
    c: &ContextionaryHandle,
    word: &str,
    k: u32,
) -> ApiResult<Vec<NearestNeighbor>> {
    Ok(c.nearest_to_word(word, k)
        .await?
        .into_iter()
        .map(|w| NearestNeighbor {
            word: w.word.to_string(),
            distance: w.distance,
        })
        .collect())
}

fn kind_name(k: ObjectKind) -> String {
    weft_core::ontology::kind_word(k).to_string()
}

/// `k` (default 10), from 1 to `limits.max_c11y_k` — the range the document states for it, so
/// a `k` outside it is a parameter out of its range (422) whose message names the limit.
fn check_k(k: Option<u32>, limits: &weft_core::Limits) -> ApiResult<u32> {
    match k.unwrap_or(10) {
        0 => Err(ApiError::unprocessable("k must be at least 1")),
        k if k > limits.max_c11y_k => Err(ApiError::unprocessable(
            weft_core::Limits::refuse(&format!("k {k}"), "max_c11y_k", limits.max_c11y_k).message,
        )),
        k => Ok(k),
    }
}

#[OpenApi(tag = "ApiTags::Contextionary")]
impl C11yApi {
    /// What the contextionary knows of some words: each known word's vector and its nearest
    /// words. `words` is a comma-separated list; CamelCase words are split into their parts.
    #[oai(
        path = "/c11y/words/:words",
        method = "get",
        operation_id = "weft.c11y.words"
    )]
    async fn words(
        &self,
        words: Path<String>,
        /// How many neighbours per word (default 10).
        k: Query<Option<u32>>,
    ) -> ApiResult<Json<C11yWordsResponse>> {
        let c = contextionary(&self.0)?;
        let k = check_k(k.0, &self.0.limits)?;
        let asked: Vec<String> = words.0.split(',').flat_map(name_parts).collect();
        weft_core::Limits::check(
            "the number of words",
            "max_c11y_words",
            asked.len(),
            self.0.limits.max_c11y_words,
        )?;
        let mut out = vec![];
        for w in asked {
            let info = match c.vector(&w)? {
                Some(vector) => Some(WordInfo {
                    vector,
                    nearest_neighbors: neighbours(c, &w, k).await?,
                }),
                None => None,
            };
            out.push(IndividualWord {
                present: info.is_some(),
                word: w,
                info,
            });
        }
        Ok(Json(C11yWordsResponse {
            individual_words: out,
        }))
    }

    /// The classes nearest to a word or to a class (give exactly one of `word` and `class`).
    #[oai(
        path = "/c11y/classes/nearest",
        method = "get",
        operation_id = "weft.c11y.classes.nearest"
    )]
    async fn nearest(
        &self,
        /// A word.
        word: Query<Option<String>>,
        /// A class name.
        class: Query<Option<String>>,
        /// How many classes (default 10).
        k: Query<Option<u32>>,
    ) -> ApiResult<Json<NearestClassesResponse>> {
        let c = contextionary(&self.0)?;
        let k = check_k(k.0, &self.0.limits)?;
        let ontology = self.0.ontology().await?;
        let (v, skip) = match (word.0, class.0) {
            (Some(w), None) => (
                c.vector(&w)?.ok_or_else(|| {
                    ApiError::unprocessable(format!("\"{w}\" is not a word of the contextionary"))
                })?,
                None,
            ),
            (None, Some(name)) => {
                let kind = ontology
                    .kind_of(&name)
                    .ok_or_else(|| ApiError::not_found(format!("there is no class {name:?}")))?;
                let v = ontology
                    .class(kind, &name)
                    .and_then(|cl| cl.vector.clone())
                    .ok_or_else(|| {
                        ApiError::unprocessable(format!("class {name} has no vector yet"))
                    })?;
                (v, Some(name))
            }
            _ => {
                return Err(ApiError::unprocessable(
                    "give exactly one of the query parameters word and class",
                ))
            }
        };
        let classes = nearest_classes(&ontology, &v, k as usize + usize::from(skip.is_some()))
            .into_iter()
            .filter(|(_, name, _)| Some(name) != skip.as_ref())
            .take(k as usize)
            .map(|(kind, class, distance)| NearestClass {
                class,
                kind: kind_name(kind),
                distance,
            })
            .collect();
        Ok(Json(NearestClassesResponse { classes }))
    }

    /// A class's vector.
    #[oai(
        path = "/c11y/classes/:className",
        method = "get",
        operation_id = "weft.c11y.classes.get"
    )]
    async fn class_vector(
        &self,
        #[oai(name = "className")] class: Path<String>,
    ) -> ApiResult<Json<ClassVector>> {
        contextionary(&self.0)?;
        let ontology = self.0.ontology().await?;
        let kind = ontology
            .kind_of(&class.0)
            .ok_or_else(|| ApiError::not_found(format!("there is no class {:?}", class.0)))?;
        let vector = ontology
            .class(kind, &class.0)
            .and_then(|c| c.vector.clone())
            .ok_or_else(|| {
                ApiError::unprocessable(format!(
                    "class {} has no vector: it was made while no contextionary was configured",
                    class.0
                ))
            })?;
        Ok(Json(ClassVector {
            class: class.0,
            kind: kind_name(kind),
            vector,
        }))
    }
}
