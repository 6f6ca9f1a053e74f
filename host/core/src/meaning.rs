//! Search by meaning: the vector of each object, made from its words at write time, and the
//! search over them (`Explore`, `Get … explore`).
//!
//! Owns:
//! * **The corpus of an object** (after Weaviate 0.22): the class name's CamelCase parts unless
//!   the class says `"vectorizeClassName": false`; then, in the class's property order, the
//!   value of every `string`/`text` property (and the property name's parts before it when the
//!   property says `"vectorizePropertyName": true`). Text is lower-cased and split on every
//!   character that is not a letter or digit; NLTK's English stop words are dropped.
//! * **The vector**: the weighted mean of the known words' vectors, where a word of frequency
//!   rank `r` (0 = the contextionary's most frequent word) weighs `ln(r + 2)`: "the" weighs
//!   0.7, a word of rank 1,000 weighs 6.9, of rank 100,000 weighs 11.5. Unknown words are
//!   skipped; an object with no known word has no vector and is never found by meaning. The
//!   vector is scaled to unit length.
//! * **Concepts** (the query): the same words and weights, but every word must be known (an
//!   unknown one is an error naming it, with the contextionary's suggestions); `moveTo` pulls
//!   the query towards other concepts (`v·(1 − f/2) + t·(f/2)`), `moveAwayFrom` pushes it away
//!   (`v + (f/2)·(v − t)`); certainty is `(1 + cos)/2`, i.e. `1 − distance/2`.
//! * **Where the search runs**: a connector that declares `vector-search` (interface 1.5)
//!   stores each object's vector with it and answers the nearest itself, filter first; for any
//!   other the host compares every object it may read (class, owners, filter), vectorized on
//!   the fly, bounded by `limits.max_query_objects`.
//!
//! Must not know: HTTP, GraphQL, how a connector indexes vectors.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use abi_stable::std_types::{RString, RVec};
use serde_json::{Map, Value};
use weft_plugin_api::vector::{cosine_distance, normalize, Nearest};
use weft_plugin_api::{ObjectKind, ObjectQuery, StoredObject, VectorQuery};

use crate::c11y::name_parts;
use crate::handles::ContextionaryHandle;
use crate::keys::Principal;
use crate::ontology::{kind_word, Class, Ontology};
use crate::{Core, Error, Limits, Result, Visibility};

/// NLTK's English stop words.
static STOP_WORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    use stopwords::{Language, Stopwords, NLTK};
    NLTK::stopwords(Language::English)
        .unwrap_or_default()
        .iter()
        .copied()
        .collect()
});

/// Whether `word` (lower case) is a stop word.
pub fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.contains(word)
}

/// The words of a text: lower-cased, split on everything that is not a letter or a digit,
/// stop words dropped.
pub fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| !is_stop_word(w))
}

/// The words an object of `class` with `props` is vectorized from (see the module docs).
pub fn corpus(class: &Class, props: &Map<String, Value>) -> Vec<String> {
    let mut words = vec![];
    if class.vectorize_class_name != Some(false) {
        words.extend(
            name_parts(&class.class)
                .into_iter()
                .filter(|w| !is_stop_word(w)),
        );
    }
    for p in &class.properties {
        let textual = matches!(p.data_type.as_slice(), [t] if t == "string" || t == "text");
        if !textual {
            continue;
        }
        let Some(Value::String(value)) = props.get(&p.name) else {
            continue;
        };
        if p.vectorize_property_name == Some(true) {
            words.extend(name_parts(&p.name).into_iter().filter(|w| !is_stop_word(w)));
        }
        words.extend(tokens(value));
    }
    words
}

/// The weight of a word of frequency rank `rank` (0: most frequent) in a vocabulary of
/// `vocabulary` words; a word of unknown rank weighs as the rarest.
pub fn weight(rank: Option<u64>, vocabulary: u64) -> f32 {
    ((rank.unwrap_or(vocabulary).saturating_add(2)) as f64).ln() as f32
}

/// The weighted mean of `words`' vectors (unit length), and the unknown words (skipped).
/// `unknown`, answered as `Err` with the first of them. `None` when no word is known.
fn weighted_mean(
    c: &ContextionaryHandle,
    words: &[String],
) -> Result<(Option<Vec<f32>>, Vec<String>)> {
    let mut counts: HashMap<&str, u32> = HashMap::new();
    let mut order = vec![];
    for w in words {
        let n = counts.entry(w.as_str()).or_insert(0);
        if *n == 0 {
            order.push(w.clone());
        }
        *n += 1;
    }
    let found = c.word_vectors(&order)?;
    let vocabulary = c.vocabulary_size();
    let mut sum = vec![0f64; c.dimensions() as usize];
    let mut total = 0f64;
    let mut unknown = vec![];
    for (w, v) in order.iter().zip(found) {
        let Some(v) = v else {
            unknown.push(w.clone());
            continue;
        };
        if v.vector.len() != sum.len() {
            return Err(Error::internal(format!(
                "the contextionary {:?} answered a vector of {} numbers for {w:?}; it declares {}",
                c.name,
                v.vector.len(),
                sum.len()
            )));
        }
        let k = counts[w.as_str()] as f64 * weight(v.rank.into_option(), vocabulary) as f64;
        for (s, x) in sum.iter_mut().zip(v.vector.iter()) {
            *s += k * *x as f64;
        }
        total += k;
    }
    if total <= 0.0 {
        return Ok((None, unknown));
    }
    let mut v: Vec<f32> = sum.into_iter().map(|s| (s / total) as f32).collect();
    normalize(&mut v);
    Ok((Some(v), unknown))
}

/// The vector of an object of `class` with `props`: `None` when none of its words is known.
pub fn object_vector(
    c: &ContextionaryHandle,
    class: &Class,
    props: &Map<String, Value>,
) -> Result<Option<Vec<f32>>> {
    Ok(weighted_mean(c, &corpus(class, props))?.0)
}

pub use crate::network::{Concepts, Movement};

/// Where a search by meaning looks.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    /// Every class of Things and Actions the caller may read.
    Everything,
    /// Every class of one kind.
    Kind(ObjectKind),
    /// One class, with a filter (the `where` of `Get`, as filter JSON; empty for none).
    Class {
        /// Thing or Action.
        kind: ObjectKind,
        /// The class.
        class: String,
        /// A filter tree as JSON, or empty.
        filter_json: String,
    },
}

/// One object found by meaning.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The object, as the caller may read it.
    pub object: StoredObject,
    /// `(1 + cos)/2` of its vector and the query's.
    pub certainty: f64,
}

/// Certainty from cosine distance.
fn certainty(distance: f32) -> f64 {
    (1.0 - distance as f64 / 2.0).clamp(0.0, 1.0)
}

impl Core {
    fn c11y_for_search(&self) -> Result<&ContextionaryHandle> {
        self.c11y.as_ref().ok_or_else(|| {
            Error::unsupported(
                "search by meaning needs a contextionary, and this server runs without one: configure one (\"contextionary\": {\"name\": \"finalfusion\", …}; `weft contextionary fetch` downloads GloVe) and restart",
            )
        })
    }

    /// The vector stored with an object of `kind`/`class` with `props`: `None` when the
    /// connector keeps no vectors (the host then vectorizes while it searches), when there is
    /// no contextionary, or when none of the object's words is known.
    pub(crate) fn vector_for(
        &self,
        ontology: &Ontology,
        kind: ObjectKind,
        class: &str,
        props: &Map<String, Value>,
    ) -> Result<Option<Vec<f32>>> {
        if !self.conn.searches_vectors() {
            return Ok(None);
        }
        let (Some(c), Some(class)) = (&self.c11y, ontology.class(kind, class)) else {
            return Ok(None);
        };
        object_vector(c, class, props)
    }

    /// The vector of a list of concepts: every word must be known.
    async fn concepts_vector(&self, what: &str, concepts: &[String]) -> Result<Vec<f32>> {
        let c = self.c11y_for_search()?;
        let words: Vec<String> = concepts.iter().flat_map(|t| tokens(t)).collect();
        Limits::check(
            &format!("the number of words of {what}"),
            "max_c11y_words",
            words.len(),
            self.limits.max_c11y_words,
        )?;
        if words.is_empty() {
            return Err(Error::unprocessable(format!(
                "{what} ({concepts:?}) has no words to search by (stop words such as \"the\" do not count); give at least one word"
            )));
        }
        let (v, unknown) = weighted_mean(c, &words)?;
        if let Some(w) = unknown.first() {
            return Err(Error::unprocessable(format!(
                "{what}: \"{w}\" is not a word of the contextionary ({}); {}",
                c.name,
                crate::c11y::suggestion(c, w).await?
            )));
        }
        v.ok_or_else(|| Error::internal("the contextionary answered no vector for known words"))
    }

    /// The query vector of `concepts`, moved as they say.
    pub async fn query_vector(&self, concepts: &Concepts) -> Result<Vec<f32>> {
        let mut v = self.concepts_vector("concepts", &concepts.concepts).await?;
        for (movement, towards) in [(&concepts.move_to, true), (&concepts.move_away_from, false)] {
            let Some(m) = movement else { continue };
            let name = if towards { "moveTo" } else { "moveAwayFrom" };
            if !(0.0..=1.0).contains(&m.force) {
                return Err(Error::unprocessable(format!(
                    "{name}.force is {}; give a number from 0 to 1",
                    m.force
                )));
            }
            let t = self
                .concepts_vector(&format!("{name}.concepts"), &m.concepts)
                .await?;
            let f = (m.force / 2.0) as f32;
            for (x, y) in v.iter_mut().zip(&t) {
                *x = if towards {
                    *x * (1.0 - f) + y * f
                } else {
                    *x + f * (*x - y)
                };
            }
            normalize(&mut v);
        }
        Ok(v)
    }

    /// The objects nearest to `concepts` that the caller may read in `scope`, most certain
    /// first, at most `limit` and none below `min_certainty`.
    pub async fn explore(
        &self,
        p: &Principal,
        concepts: &Concepts,
        scope: &Scope,
        limit: u64,
        min_certainty: Option<f64>,
    ) -> Result<Vec<Found>> {
        let vis = self.visibility(p).await?;
        self.explore_visible(&vis, concepts, scope, limit, min_certainty)
            .await
    }

    /// [`Core::explore`] over what `vis` sees (a network question: the shared key's objects).
    pub async fn explore_visible(
        &self,
        vis: &Visibility,
        concepts: &Concepts,
        scope: &Scope,
        limit: u64,
        min_certainty: Option<f64>,
    ) -> Result<Vec<Found>> {
        if limit > self.limits.max_explore_k {
            return Err(Limits::refuse(
                &format!("a search by meaning for {limit} objects"),
                "max_explore_k",
                self.limits.max_explore_k,
            ));
        }
        if let Some(c) = min_certainty {
            if !(0.0..=1.0).contains(&c) {
                return Err(Error::unprocessable(format!(
                    "certainty is {c}; give a number from 0 to 1"
                )));
            }
        }
        let vector = self.query_vector(concepts).await?;
        let max_distance = min_certainty.map_or(2.0, |c| (2.0 * (1.0 - c)) as f32);
        let mut owners_query = ObjectQuery::all(ObjectKind::Thing, 0);
        vis.restrict(&mut owners_query);
        let kinds = match scope {
            Scope::Kind(kind) => vec![*kind],
            _ => vec![ObjectKind::Thing, ObjectKind::Action],
        };
        let questions: Vec<VectorQuery> = match scope {
            Scope::Everything | Scope::Kind(_) => kinds
                .into_iter()
                .map(|kind| VectorQuery {
                    kind,
                    class: RString::new(),
                    owners: owners_query.owners.clone(),
                    filter_json: RString::new(),
                    vector: RVec::from(vector.clone()),
                    k: limit,
                    max_distance,
                })
                .collect(),
            Scope::Class {
                kind,
                class,
                filter_json,
            } => vec![VectorQuery {
                kind: *kind,
                class: class.as_str().into(),
                owners: owners_query.owners.clone(),
                filter_json: filter_json.as_str().into(),
                vector: RVec::from(vector.clone()),
                k: limit,
                max_distance,
            }],
        };
        let mut best = Nearest::new(limit as usize);
        for q in questions {
            let hits = if self.conn.searches_vectors() {
                self.conn.search_vectors(q).await?
            } else {
                self.exact_search(&q).await?
            };
            for h in hits {
                let o = h.object;
                best.offer(o.id, h.distance, || o);
            }
        }
        Ok(best
            .into_hits()
            .into_iter()
            .map(|h| Found {
                certainty: certainty(h.distance),
                object: h.object,
            })
            .collect())
    }

    /// The host's search for a connector that does not search vectors: every object the query
    /// allows, read (at most `limits.max_query_objects`), vectorized and compared.
    async fn exact_search(&self, q: &VectorQuery) -> Result<Vec<weft_plugin_api::VectorHit>> {
        let c = self.c11y_for_search()?;
        let ontology = self.ontology().await?;
        let cap = self.limits.max_query_objects;
        let mut read = q.candidates();
        read.limit = cap.saturating_add(1);
        let page = self.conn.query_objects(read).await?;
        if page.total > cap {
            return Err(Error::too_large(format!(
                "searching {} {} by meaning means comparing {} objects here, because the connector {:?} does not search vectors itself; that is over limits.max_query_objects = {cap}: narrow the search with a class or `where`, raise limits.max_query_objects, or use a connector with vector search (embedded, cassandra)",
                if q.class.is_empty() { "every class of" } else { q.class.as_str() },
                kind_word(q.kind),
                page.total,
                self.conn.name
            )));
        }
        let mut best = Nearest::new(q.k as usize);
        for o in page.objects {
            let Some(class) = ontology.class(o.kind, &o.class) else {
                continue;
            };
            let Some(v) = object_vector(c, class, &o.properties())? else {
                continue;
            };
            let d = cosine_distance(&v, &q.vector);
            if d <= q.max_distance {
                best.offer(o.id, d, || o);
            }
        }
        Ok(best.into_hits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ontology::Property;

    fn class(vectorize_name: Option<bool>) -> Class {
        Class {
            class: "HarbourTown".into(),
            properties: vec![
                Property {
                    name: "name".into(),
                    data_type: vec!["string".into()],
                    ..Default::default()
                },
                Property {
                    name: "shortDescription".into(),
                    data_type: vec!["text".into()],
                    vectorize_property_name: Some(true),
                    ..Default::default()
                },
                Property {
                    name: "population".into(),
                    data_type: vec!["int".into()],
                    ..Default::default()
                },
            ],
            vectorize_class_name: vectorize_name,
            ..Default::default()
        }
    }

    #[test]
    fn the_corpus_follows_the_class_and_drops_stop_words() {
        let props: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "population": 5,
            "shortDescription": "The oldest port of the North-Sea!",
            "name": "Hamburg",
        }))
        .unwrap();
        assert_eq!(
            corpus(&class(None), &props),
            [
                "harbour",
                "town",
                "hamburg",
                "short",
                "description",
                "oldest",
                "port",
                "north",
                "sea"
            ]
        );
        assert_eq!(
            corpus(&class(Some(false)), &props)[..2],
            ["hamburg".to_string(), "short".to_string()]
        );
    }

    #[test]
    fn frequent_words_weigh_less() {
        assert!(weight(Some(0), 400_000) < weight(Some(1_000), 400_000));
        assert!((weight(Some(0), 10) - 2f32.ln()).abs() < 1e-6);
        assert_eq!(weight(None, 400_000), weight(Some(400_000), 400_000));
    }
}
