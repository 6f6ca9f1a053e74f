//! Answering network questions from this server's own objects, by meaning.
//!
//! A question names classes (and properties) as the asker calls them; this peer places each in
//! its contextionary's space — the weighted centroid of its keywords, or the mean of its name's
//! CamelCase parts, exactly as it places its own classes ([`crate::c11y::place`]) — and compares
//! it with the vector stored with each of its own classes and properties: certainty is
//! 1 − cosine distance, and a class or property matches at or above the asked certainty. So
//! different ontologies meet by meaning: a question for `Town` finds this peer's `City`.
//!
//! A class matches when its certainty reaches one asked class's and every property condition
//! is matched by one of its properties (the most certain one is used). Objects of matching
//! classes (at most `first` per class) must satisfy every condition's `operator` and value with
//! the `where` filter semantics of the plugin contract ([`WhereFilter`]).
//!
//! Visibility: a network question comes from another server, not from a key of this one. It is
//! answered over the objects one configured key may see (`network.share_key`: its own and its
//! descendants', or every object for a root key), never more; without that key a peer answers
//! which classes match (Introspect) but finds no objects (Fetch says so). Answers carry only
//! beacons (`weaviate://<peer>/<uuid>`), class names and certainties, never an object's
//! contents — but a Fetch's conditions compare values, so whatever the shared key may see can
//! be learnt by enough questions: share only what the network may read.
//!
//! Must not know: how questions travel (that is `weft-p2p`).

use serde_json::Value;
use weft_plugin_api::filter::{Operator, WhereFilter};
use weft_plugin_api::{Capabilities, ObjectKind, ObjectQuery, StoredObject};

use crate::c11y::{cosine_distance, place};
use crate::core::Core;
use crate::handles::ContextionaryHandle;
use crate::network::{
    Answer, Beacon, ClassQuestion, ExploreQuestion, MatchedClass, MatchedProperty,
    PropertyQuestion, Question, QuestionKeyword,
};
use crate::ontology::{kind_word, Class, Keyword, Property};
use crate::{Error, Result};

/// Objects fetched per call when the host pages through a class to evaluate conditions.
const CHUNK: u64 = 500;

/// One class of this peer that matched, with the property matched for each condition.
struct ClassMatch<'o> {
    class: &'o Class,
    certainty: f32,
    first: Option<u64>,
    properties: Vec<(&'o Property, f32, &'o PropertyQuestion)>,
}

fn keywords(k: &[QuestionKeyword]) -> Vec<Keyword> {
    k.iter()
        .map(|k| Keyword {
            keyword: k.value.clone(),
            weight: f64::from(k.weight),
        })
        .collect()
}

fn certainty(a: &[f32], b: &[f32]) -> f32 {
    (1.0 - cosine_distance(a, b)).clamp(0.0, 1.0)
}

/// Checks what the asker may not leave to chance: certainties in 0..=1, positive weights, known
/// operators with a value.
fn check(q: &Question) -> Result<()> {
    if q.classes.is_empty() {
        return Err(Error::unprocessable(
            "the question names no class; ask for at least one, e.g. {name: \"City\", certainty: 0.7}",
        ));
    }
    let check_one = |what: String, certainty: f32, kws: &[QuestionKeyword]| -> Result<()> {
        if !(0.0..=1.0).contains(&certainty) {
            return Err(Error::unprocessable(format!(
                "{what}: certainty {certainty} is not between 0 and 1"
            )));
        }
        if let Some(k) = kws.iter().find(|k| k.weight.is_nan() || k.weight <= 0.0) {
            return Err(Error::unprocessable(format!(
                "{what}: keyword {:?} has weight {}; weights must be more than 0",
                k.value, k.weight
            )));
        }
        Ok(())
    };
    for c in &q.classes {
        check_one(format!("class {}", c.name), c.certainty, &c.keywords)?;
    }
    for p in &q.properties {
        check_one(format!("property {}", p.name), p.certainty, &p.keywords)?;
        if q.introspect {
            continue;
        }
        match (&p.operator, &p.value) {
            (Some(op), Some(v)) => {
                condition(op, v, "x", "string")
                    .map_err(|e| Error::unprocessable(format!("property {}: {e}", p.name)))?;
            }
            _ => {
                return Err(Error::unprocessable(format!(
                    "property {}: a Fetch condition needs an operator and a value",
                    p.name
                )))
            }
        }
    }
    Ok(())
}

/// The comparison `operator` of property `prop` (of `@dataType` `data_type`) with `value`.
fn condition(operator: &str, value: &Value, prop: &str, data_type: &str) -> Result<WhereFilter> {
    let op: Operator = serde_json::from_value(Value::String(operator.to_string()))
        .ok()
        .filter(|op| !matches!(op, Operator::And | Operator::Or | Operator::Not))
        .ok_or_else(|| {
            Error::unprocessable(format!(
                "operator {operator:?} is not a comparison; use Equal, NotEqual, GreaterThan, GreaterThanEqual, LessThan or LessThanEqual"
            ))
        })?;
    let mut f = WhereFilter {
        operator: Some(op),
        path: vec![prop.to_string()],
        ..WhereFilter::default()
    };
    match value {
        Value::Bool(b) => f.value_boolean = Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => f.value_int = Some(i),
            None => f.value_number = n.as_f64(),
        },
        Value::String(s) if data_type == "date" => f.value_date = Some(s.clone()),
        Value::String(s) => f.value_string = Some(s.clone()),
        v => {
            return Err(Error::unprocessable(format!(
                "the value {v} is not a string, number or boolean"
            )))
        }
    }
    f.validate().map_err(Error::unprocessable)?;
    Ok(f)
}

impl Core {
    /// Answers an Explore question: the objects of `kind` the shared key may see, nearest in
    /// meaning to the concepts (beacons, classes and certainties only).
    async fn answer_explore(
        &self,
        e: &ExploreQuestion,
        kind: ObjectKind,
        peer_name: &str,
        share: Option<weft_plugin_api::Id>,
    ) -> Result<Answer> {
        let Some(share) = share else {
            return Err(Error::forbidden(format!(
                "peer {peer_name} shares no objects with the network (its operator has not set network.share_key), so Explore finds nothing here"
            )));
        };
        let visible = self.shared_visibility(share).await?;
        let found = self
            .explore_visible(
                &visible,
                &e.concepts,
                &crate::meaning::Scope::Kind(kind),
                e.limit,
                e.certainty,
            )
            .await?;
        Ok(Answer {
            beacons: found
                .into_iter()
                .map(|f| Beacon {
                    beacon: format!("weaviate://{peer_name}/{}", f.object.id),
                    certainty: f.certainty as f32,
                    class: f.object.class.to_string(),
                })
                .collect(),
            classes: vec![],
        })
    }

    /// Answers a network question from this server's objects, by meaning (see the module
    /// documentation); `peer_name` is this server's name in the network, used in the beacons;
    /// `share` is the key whose objects the network may see (`None`: none). Without a
    /// contextionary, answers an error saying this peer cannot match by meaning.
    pub async fn answer_question(
        &self,
        q: &Question,
        peer_name: &str,
        share: Option<weft_plugin_api::Id>,
    ) -> Result<Answer> {
        let Some(c11y) = &self.c11y else {
            return Err(Error::unsupported(format!(
                "peer {peer_name} runs without a contextionary, so it cannot match classes or properties by meaning"
            )));
        };
        let kind: ObjectKind = q.kind.into();
        if let Some(e) = &q.explore {
            return self.answer_explore(e, kind, peer_name, share).await;
        }
        check(q)?;
        let ontology = self.ontology().await?;
        let asked_classes = vectors_of_classes(c11y, &q.classes).await?;
        let asked_props = vectors_of_properties(c11y, &q.properties).await?;
        let mut matches: Vec<ClassMatch<'_>> = vec![];
        for class in &ontology.schema(kind).classes {
            let Some(cv) = &class.vector else { continue };
            let best = asked_classes
                .iter()
                .map(|(cq, v)| (cq, certainty(v, cv)))
                .filter(|(cq, c)| *c >= cq.certainty)
                .max_by(|a, b| a.1.total_cmp(&b.1));
            let Some((cq, class_certainty)) = best else {
                continue;
            };
            let mut properties = vec![];
            for (pq, pv) in &asked_props {
                let found = class
                    .properties
                    .iter()
                    .filter(|p| q.introspect || pq.operator.is_none() || !p.is_reference())
                    .filter_map(|p| p.vector.as_ref().map(|v| (p, certainty(pv, v))))
                    .filter(|(_, c)| *c >= pq.certainty)
                    .max_by(|a, b| a.1.total_cmp(&b.1).then_with(|| b.0.name.cmp(&a.0.name)));
                match found {
                    Some((p, c)) => properties.push((p, c, *pq)),
                    None => break,
                }
            }
            if properties.len() < asked_props.len() {
                continue;
            }
            matches.push(ClassMatch {
                class,
                certainty: class_certainty,
                first: cq.first,
                properties,
            });
        }
        matches.sort_by(|a, b| {
            b.certainty
                .total_cmp(&a.certainty)
                .then_with(|| a.class.class.cmp(&b.class.class))
        });
        let classes = matches
            .iter()
            .map(|m| MatchedClass {
                class: m.class.class.clone(),
                certainty: m.certainty,
                properties: m
                    .properties
                    .iter()
                    .map(|(p, c, _)| MatchedProperty {
                        property: p.name.clone(),
                        certainty: *c,
                    })
                    .collect(),
            })
            .collect();
        if q.introspect {
            return Ok(Answer {
                beacons: vec![],
                classes,
            });
        }
        let Some(share) = share else {
            return Err(Error::forbidden(format!(
                "peer {peer_name} shares no objects with the network (its operator has not set network.share_key); Introspect still says which of its classes match"
            )));
        };
        let visible = self.shared_visibility(share).await?;
        let mut beacons = vec![];
        for m in &matches {
            let conditions = m
                .properties
                .iter()
                .filter_map(|(p, _, pq)| {
                    let (op, v) = (pq.operator.as_deref()?, pq.value.as_ref()?);
                    let data_type = p.data_type.first().map(String::as_str).unwrap_or("");
                    Some(condition(op, v, &p.name, data_type))
                })
                .collect::<Result<Vec<_>>>()?;
            let filter = match conditions.len() {
                0 => None,
                1 => conditions.into_iter().next(),
                _ => Some(WhereFilter {
                    operator: Some(Operator::And),
                    operands: conditions,
                    ..WhereFilter::default()
                }),
            };
            let first = m.first.map_or(self.limit, |n| n.min(self.limit));
            let found = self
                .matching_objects(kind, &m.class.class, filter.as_ref(), first, &visible)
                .await?;
            let certainty = m
                .properties
                .iter()
                .map(|(_, c, _)| *c)
                .fold(m.certainty, f32::min);
            beacons.extend(found.into_iter().map(|o| Beacon {
                beacon: format!("weaviate://{peer_name}/{}", o.id),
                certainty,
                class: m.class.class.clone(),
            }));
        }
        Ok(Answer { beacons, classes })
    }

    /// At most `limit` objects of `class` that `visible` may see and that match `filter`,
    /// newest first: the connector filters when it declares `FILTER`, otherwise the host pages
    /// through.
    async fn matching_objects(
        &self,
        kind: ObjectKind,
        class: &str,
        filter: Option<&WhereFilter>,
        limit: u64,
        visible: &crate::access::Visibility,
    ) -> Result<Vec<StoredObject>> {
        if limit == 0 {
            return Ok(vec![]);
        }
        let mut q = ObjectQuery::all(kind, limit);
        q.class = class.into();
        visible.restrict(&mut q);
        if filter.is_none() || self.conn.has(Capabilities::FILTER) {
            if let Some(f) = filter {
                q.filter_json = serde_json::to_string(f)
                    .map_err(|e| Error::internal(e.to_string()))?
                    .into();
            }
            return Ok(self.conn.query_objects(q).await?.objects.into_vec());
        }
        let f = filter.expect("a filter");
        let none = |_: ObjectKind, _: weft_plugin_api::Id| None;
        let mut out = vec![];
        q.limit = CHUNK;
        loop {
            let page = self.conn.query_objects(q.clone()).await?;
            let n = page.objects.len() as u64;
            for o in page.objects {
                if f.matches(&o, &none) {
                    out.push(o);
                    if out.len() as u64 >= limit {
                        return Ok(out);
                    }
                }
            }
            q.offset += n;
            if n == 0 || q.offset >= page.total {
                return Ok(out);
            }
        }
    }
}

async fn vectors_of_classes<'q>(
    c: &ContextionaryHandle,
    classes: &'q [ClassQuestion],
) -> Result<Vec<(&'q ClassQuestion, Vec<f32>)>> {
    let mut out = vec![];
    for cq in classes {
        let v = place(
            c,
            &format!("asked class {}", cq.name),
            &cq.name,
            &keywords(&cq.keywords),
        )
        .await?;
        out.push((cq, v));
    }
    Ok(out)
}

async fn vectors_of_properties<'q>(
    c: &ContextionaryHandle,
    props: &'q [PropertyQuestion],
) -> Result<Vec<(&'q PropertyQuestion, Vec<f32>)>> {
    let mut out = vec![];
    for pq in props {
        let v = place(
            c,
            &format!("asked property {}", pq.name),
            &pq.name,
            &keywords(&pq.keywords),
        )
        .await?;
        out.push((pq, v));
    }
    Ok(out)
}

/// What a question asks, in words (for logs).
pub fn describe(q: &Question) -> String {
    let names: Vec<&str> = q.classes.iter().map(|c| c.name.as_str()).collect();
    format!(
        "{} {} classes like {}",
        if q.introspect { "introspect" } else { "fetch" },
        kind_word(q.kind.into()),
        names.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use serde_json::json;
    use weft_plugin_api::{
        connector_box, contextionary_parts, Contextionary, PluginResult, WordDistance,
    };

    use super::*;
    use crate::network::ObjectKindName;
    use crate::{ConnectorHandle, ContextionaryHandle, CoreConfig};

    /// A contextionary of a handful of words in three dimensions: places, people, sizes.
    struct Tiny(HashMap<&'static str, Vec<f32>>);

    impl Tiny {
        fn new() -> Self {
            Tiny(HashMap::from([
                ("city", vec![1.0, 0.1, 0.0]),
                ("town", vec![0.95, 0.2, 0.05]),
                ("village", vec![0.9, 0.25, 0.0]),
                ("country", vec![0.7, 0.0, 0.7]),
                ("person", vec![0.0, 1.0, 0.0]),
                ("name", vec![0.1, 0.6, 0.6]),
                ("title", vec![0.15, 0.55, 0.6]),
                ("population", vec![0.3, 0.0, 1.0]),
                ("inhabitants", vec![0.35, 0.05, 0.95]),
                ("age", vec![0.0, 0.7, 0.3]),
                ("in", vec![0.3, 0.3, 0.3]),
            ]))
        }
    }

    impl Contextionary for Tiny {
        fn dimensions(&self) -> u32 {
            3
        }
        fn vocabulary_size(&self) -> u64 {
            self.0.len() as u64
        }
        fn contains(&self, w: &str) -> bool {
            self.0.contains_key(w)
        }
        fn vector(&self, w: &str) -> Option<Vec<f32>> {
            self.0.get(w).cloned()
        }
        fn nearest_to_vector(&self, _: &[f32], _: u32, _: bool) -> PluginResult<Vec<WordDistance>> {
            Ok(vec![])
        }
        fn nearest_to_word(&self, _: &str, _: u32, _: bool) -> PluginResult<Vec<WordDistance>> {
            Ok(vec![])
        }
        fn content_hash(&self, _: &str) -> PluginResult<String> {
            Ok("tiny".into())
        }
    }

    fn core(with_c11y: bool) -> Arc<Core> {
        let conn = ConnectorHandle::from_box(
            connector_box(weft_dev_memory::DevMemory::new()),
            "dev-memory",
            weft_dev_memory::CAPABILITIES,
        );
        let mut core = Core::new(conn, CoreConfig::default(), vec![]);
        if with_c11y {
            core = core.with_contextionary(ContextionaryHandle::from_opened(
                contextionary_parts(Tiny::new()),
                "tiny",
            ));
        }
        Arc::new(core)
    }

    /// The root key of [`peer`], shared with the network in most tests.
    const ROOT: weft_plugin_api::Id = weft_plugin_api::Id([
        0x0b, 0x1d, 0x3a, 0x3e, 0x7d, 0x2b, 0x4c, 0x55, 0x9c, 0x1e, 0x6f, 0x3f, 0x0a, 0x00, 0x00,
        0x01,
    ]);

    /// A peer with `City {name, population, inCountry}`, `Country {name}` and `Person {name,
    /// age}`, and a few objects, as the root key.
    async fn peer() -> (Arc<Core>, crate::Principal) {
        let core = core(true);
        let key: weft_plugin_api::Id = "0b1d3a3e-7d2b-4c55-9c1e-6f3f0a000001".parse().unwrap();
        assert_eq!(key, ROOT);
        core.keys
            .ensure_root(Some((key, "t".into())))
            .await
            .unwrap();
        let root = core
            .keys
            .authenticate(Some(&key.to_string()), Some("t"), None)
            .await
            .unwrap();
        for class in [
            json!({"class": "Country", "properties": [{"name": "name", "@dataType": ["string"]}]}),
            json!({"class": "City", "properties": [
                {"name": "name", "@dataType": ["string"]},
                {"name": "population", "@dataType": ["int"]},
                {"name": "inCountry", "@dataType": ["Country"]}]}),
            json!({"class": "Person", "properties": [
                {"name": "name", "@dataType": ["string"]},
                {"name": "age", "@dataType": ["int"]}]}),
        ] {
            core.add_class(ObjectKind::Thing, serde_json::from_value(class).unwrap())
                .await
                .unwrap();
        }
        let object = |class: &str, schema: Value| crate::objects::ObjectBody {
            context: Some(String::new()),
            class: Some(class.into()),
            schema: serde_json::from_value(schema).ok(),
        };
        for (name, pop) in [
            ("Berlin", 3_600_000),
            ("Paris", 2_100_000),
            ("Ulm", 126_000),
        ] {
            core.create_object(
                &root,
                ObjectKind::Thing,
                object("City", json!({"name": name, "population": pop})),
                false,
            )
            .await
            .unwrap();
        }
        core.create_object(
            &root,
            ObjectKind::Thing,
            object("Person", json!({"name": "Ada", "age": 36})),
            false,
        )
        .await
        .unwrap();
        (core, root)
    }

    fn class(name: &str, certainty: f32) -> ClassQuestion {
        ClassQuestion {
            name: name.into(),
            keywords: vec![],
            certainty,
            first: None,
        }
    }

    fn question(classes: Vec<ClassQuestion>, properties: Vec<PropertyQuestion>) -> Question {
        Question {
            explore: None,
            kind: ObjectKindName::Thing,
            classes,
            properties,
            introspect: false,
        }
    }

    #[tokio::test]
    async fn a_town_finds_the_cities_by_meaning_with_beacons_and_certainty() {
        let (core, _) = peer().await;
        let a = core
            .answer_question(
                &question(vec![class("Town", 0.9)], vec![]),
                "beta",
                Some(ROOT),
            )
            .await
            .unwrap();
        assert_eq!(a.classes.len(), 1, "{a:?}");
        assert_eq!(a.classes[0].class, "City");
        assert!(a.classes[0].certainty > 0.9 && a.classes[0].certainty <= 1.0);
        assert_eq!(a.beacons.len(), 3, "{a:?}");
        for b in &a.beacons {
            assert!(b.beacon.starts_with("weaviate://beta/"), "{b:?}");
            assert_eq!(b.class, "City");
            assert_eq!(b.certainty, a.classes[0].certainty);
        }
        // Persons are not towns.
        let a = core
            .answer_question(
                &question(vec![class("Person", 0.9)], vec![]),
                "beta",
                Some(ROOT),
            )
            .await
            .unwrap();
        assert_eq!(a.beacons.len(), 1);
        assert_eq!(a.classes[0].class, "Person");
    }

    #[tokio::test]
    async fn certainty_first_and_keywords_bound_the_answer() {
        let (core, _) = peer().await;
        // Nothing is certain enough.
        let a = core
            .answer_question(
                &question(vec![class("Town", 1.0)], vec![]),
                "beta",
                Some(ROOT),
            )
            .await
            .unwrap();
        assert!(a.classes.is_empty() && a.beacons.is_empty(), "{a:?}");
        let mut c = class("Settlement", 0.95);
        c.keywords = vec![
            QuestionKeyword {
                value: "village".into(),
                weight: 1.0,
            },
            QuestionKeyword {
                value: "town".into(),
                weight: 0.5,
            },
        ];
        c.first = Some(2);
        let a = core
            .answer_question(&question(vec![c], vec![]), "beta", Some(ROOT))
            .await
            .unwrap();
        assert_eq!(a.beacons.len(), 2, "{a:?}");
    }

    #[tokio::test]
    async fn property_conditions_match_properties_by_meaning_and_values_by_operator() {
        let (core, _) = peer().await;
        let inhabitants = PropertyQuestion {
            name: "inhabitants".into(),
            keywords: vec![],
            certainty: 0.9,
            operator: Some("GreaterThan".into()),
            value: Some(json!(1_000_000)),
        };
        let a = core
            .answer_question(
                &question(vec![class("Town", 0.9)], vec![inhabitants.clone()]),
                "beta",
                Some(ROOT),
            )
            .await
            .unwrap();
        assert_eq!(a.beacons.len(), 2, "Berlin and Paris: {a:?}");
        assert_eq!(
            a.classes[0].properties,
            vec![MatchedProperty {
                property: "population".into(),
                certainty: a.classes[0].properties[0].certainty
            }]
        );
        let title = PropertyQuestion {
            name: "title".into(),
            keywords: vec![],
            certainty: 0.9,
            operator: Some("Equal".into()),
            value: Some(json!("Ulm")),
        };
        let a = core
            .answer_question(
                &question(vec![class("Town", 0.9)], vec![title]),
                "beta",
                Some(ROOT),
            )
            .await
            .unwrap();
        assert_eq!(a.beacons.len(), 1, "{a:?}");
        // A value of another type than the property's never matches.
        let mut wrong = inhabitants.clone();
        wrong.value = Some(json!("many"));
        let a = core
            .answer_question(
                &question(vec![class("Town", 0.9)], vec![wrong]),
                "beta",
                Some(ROOT),
            )
            .await
            .unwrap();
        assert!(a.beacons.is_empty(), "{a:?}");
        // No property of the class means what is asked: the class does not match.
        let mut age = inhabitants;
        age.name = "age".into();
        age.certainty = 0.99;
        let a = core
            .answer_question(
                &question(vec![class("Town", 0.9)], vec![age]),
                "beta",
                Some(ROOT),
            )
            .await
            .unwrap();
        assert!(a.beacons.is_empty() && a.classes.is_empty(), "{a:?}");
    }

    #[tokio::test]
    async fn host_side_evaluation_answers_as_the_connector_does() {
        let (core, _) = peer().await;
        let mut bare = core.conn.clone();
        bare.capabilities = Capabilities::empty();
        let host = Core::new(bare, CoreConfig::default(), vec![]).with_contextionary(
            ContextionaryHandle::from_opened(contextionary_parts(Tiny::new()), "tiny"),
        );
        let q = question(
            vec![class("Town", 0.9)],
            vec![PropertyQuestion {
                name: "population".into(),
                keywords: vec![],
                certainty: 0.9,
                operator: Some("LessThan".into()),
                value: Some(json!(2_500_000.5)),
            }],
        );
        let pushed = core.answer_question(&q, "beta", Some(ROOT)).await.unwrap();
        let hosted = host.answer_question(&q, "beta", Some(ROOT)).await.unwrap();
        assert_eq!(pushed.beacons.len(), 2, "{pushed:?}");
        assert_eq!(pushed, hosted);
    }

    /// A Fetch sees only what `network.share_key` may see: a child key's own objects, never
    /// another key's; without a share key (or with a key that is gone) it finds nothing and
    /// says so, while Introspect still answers.
    #[tokio::test]
    async fn a_fetch_is_answered_over_the_shared_keys_objects_only() {
        let (core, root) = peer().await;
        let (shared, shared_token) = core
            .keys
            .create_child(
                &root,
                crate::NewKey {
                    read: true,
                    write: true,
                    ..crate::NewKey::default()
                },
            )
            .await
            .unwrap();
        let child = core
            .keys
            .authenticate(Some(&shared.id.to_string()), Some(&shared_token), None)
            .await
            .unwrap();
        let body = crate::objects::ObjectBody {
            context: Some(String::new()),
            class: Some("City".into()),
            schema: serde_json::from_value(json!({"name": "Lyon", "population": 500_000})).ok(),
        };
        let lyon = core
            .create_object(&child, ObjectKind::Thing, body, false)
            .await
            .unwrap();
        let q = question(vec![class("Town", 0.9)], vec![]);
        let all = core.answer_question(&q, "beta", Some(ROOT)).await.unwrap();
        assert_eq!(all.beacons.len(), 4, "the root sees every city: {all:?}");
        let some = core
            .answer_question(&q, "beta", Some(shared.id))
            .await
            .unwrap();
        assert_eq!(
            some.beacons
                .iter()
                .map(|b| b.beacon.clone())
                .collect::<Vec<_>>(),
            vec![format!("weaviate://beta/{}", lyon.id)],
            "only the shared key's city: {some:?}"
        );
        let e = core.answer_question(&q, "beta", None).await.unwrap_err();
        assert!(e.message.contains("shares no objects"), "{e}");
        let gone = weft_plugin_api::Id::random();
        let e = core
            .answer_question(&q, "beta", Some(gone))
            .await
            .unwrap_err();
        assert!(e.message.contains("is not a key of this server"), "{e}");
        let mut i = q.clone();
        i.introspect = true;
        assert!(!core
            .answer_question(&i, "beta", None)
            .await
            .unwrap()
            .classes
            .is_empty());
    }

    #[tokio::test]
    async fn introspection_names_classes_and_properties_without_objects() {
        let (core, _) = peer().await;
        let mut q = question(
            vec![class("Town", 0.5), class("Country", 0.9)],
            vec![PropertyQuestion {
                name: "title".into(),
                keywords: vec![],
                certainty: 0.9,
                operator: None,
                value: None,
            }],
        );
        q.introspect = true;
        let a = core.answer_question(&q, "beta", Some(ROOT)).await.unwrap();
        assert!(a.beacons.is_empty());
        let names: Vec<&str> = a.classes.iter().map(|c| c.class.as_str()).collect();
        assert!(
            names.contains(&"City") && names.contains(&"Country"),
            "{a:?}"
        );
        assert!(a
            .classes
            .windows(2)
            .all(|w| w[0].certainty >= w[1].certainty));
        assert!(a
            .classes
            .iter()
            .all(|c| c.properties.len() == 1 && c.properties[0].property == "name"));
    }

    #[tokio::test]
    async fn without_a_contextionary_or_with_unknown_words_the_answer_says_why() {
        let bare = core(false);
        let e = bare
            .answer_question(
                &question(vec![class("Town", 0.5)], vec![]),
                "gamma",
                Some(ROOT),
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::Unsupported);
        assert!(
            e.message.contains("gamma") && e.message.contains("by meaning"),
            "{e}"
        );
        let (core, _) = peer().await;
        let e = core
            .answer_question(
                &question(vec![class("Zebrafoo", 0.5)], vec![]),
                "beta",
                Some(ROOT),
            )
            .await
            .unwrap_err();
        assert!(e.message.contains("zebrafoo"), "{e}");
        let e = core
            .answer_question(
                &question(vec![class("Town", 1.5)], vec![]),
                "beta",
                Some(ROOT),
            )
            .await
            .unwrap_err();
        assert!(e.message.contains("between 0 and 1"), "{e}");
        let e = core
            .answer_question(
                &question(
                    vec![class("Town", 0.5)],
                    vec![PropertyQuestion {
                        name: "name".into(),
                        keywords: vec![],
                        certainty: 0.5,
                        operator: Some("And".into()),
                        value: Some(json!(1)),
                    }],
                ),
                "beta",
                Some(ROOT),
            )
            .await
            .unwrap_err();
        assert!(e.message.contains("not a comparison"), "{e}");
    }

    #[test]
    fn a_question_is_described_in_words() {
        let q = question(vec![class("Town", 0.5)], vec![]);
        assert_eq!(describe(&q), "fetch thing classes like Town");
    }
}
