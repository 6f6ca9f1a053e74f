//! Object vectors and search by meaning (`VECTOR_SEARCH`, interface 1.5): a vector is written
//! with its object in one step, `search_vectors` answers the nearest objects that pass the
//! query's class, owners and filter (filter first), nearest first with their true cosine
//! distance, and an update or a delete never leaves a stale hit.
//!
//! A connector may answer from an approximate index: the checks compare with the reference
//! ([`weft_plugin_api::vector::exact_nearest`]) by recall (at least 0.9 of the exact top k),
//! and check every answered distance exactly.

use std::collections::HashSet;

use abi_stable::std_types::{RString, RVec};
use serde_json::json;
use weft_plugin_api::vector::{cosine_distance, exact_nearest};
use weft_plugin_api::{
    Capabilities, ErrorKind, Id, ObjectKind, PluginResult, StoredObject, VectorHit, VectorQuery,
    VectorsBox,
};

use crate::support::*;
use crate::Subject;

/// The length of the checks' vectors.
const DIMS: usize = 16;
/// The recall an approximate index must reach against exact search.
const RECALL: f64 = 0.9;

/// A small deterministic generator (xorshift), so a failure repeats.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// In [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    fn vector(&mut self) -> Vec<f32> {
        (0..DIMS).map(|_| self.unit()).collect()
    }
}

impl Conn<'_> {
    fn vectors(&self) -> &VectorsBox {
        match &self.x {
            Some(x) => x,
            None => self.fail(
                "declares VECTOR_SEARCH but has no vectors object (build it against interface 1.5 or later, and open it with open_connector)",
            ),
        }
    }

    async fn create_with_vector(&self, o: &StoredObject, v: &[f32]) {
        let r = self
            .vectors()
            .create_object_with_vector(o.clone(), RVec::from(v.to_vec()))
            .await
            .into_result();
        self.ok(&format!("create_object_with_vector({})", describe(o)), r)
    }

    async fn try_search(&self, q: &VectorQuery) -> PluginResult<Vec<VectorHit>> {
        self.vectors()
            .search_vectors(q.clone())
            .await
            .into_result()
            .map(RVec::into_vec)
    }

    async fn search(&self, what: &str, q: &VectorQuery) -> Vec<VectorHit> {
        let r = self.try_search(q).await;
        self.ok(&format!("search_vectors({what})"), r)
    }

    async fn vector_of(&self, o: &StoredObject) -> Option<Vec<f32>> {
        let r = self.vectors().get_vector(o.kind, o.id).await.into_result();
        self.ok(&format!("get_vector({})", describe(o)), r)
            .into_option()
            .map(RVec::into_vec)
    }

    /// Checks one answer against the exact one over `held` (objects with their vectors, already
    /// restricted to what the query allows): order, true distances, only allowed objects, the
    /// right number of hits and a recall of at least `RECALL`. Answers the recall.
    fn judge(
        &self,
        what: &str,
        q: &VectorQuery,
        got: &[VectorHit],
        held: &[(StoredObject, Vec<f32>)],
    ) -> f64 {
        let want = exact_nearest(
            held.iter().map(|(o, v)| (o, v.as_slice())),
            &q.vector,
            q.k as usize,
            q.max_distance,
        );
        ensure!(
            self,
            got.len() == want.len(),
            "search_vectors({what}) answered {} hits; {} objects pass the query (k = {})",
            got.len(),
            want.len(),
            q.k
        );
        let allowed: std::collections::HashMap<Id, &(StoredObject, Vec<f32>)> =
            held.iter().map(|h| (h.0.id, h)).collect();
        let mut seen = HashSet::new();
        for (i, hit) in got.iter().enumerate() {
            let Some((o, v)) = allowed.get(&hit.object.id) else {
                self.fail(format!(
                    "search_vectors({what}) answered {}, which the query does not allow (class, owners, filter) or which has no vector",
                    describe(&hit.object)
                ));
            };
            ensure!(
                self,
                seen.insert(hit.object.id),
                "search_vectors({what}) answered {} twice",
                describe(o)
            );
            self.same_object(
                &format!("hit {i} of search_vectors({what})"),
                o,
                &hit.object,
            );
            let d = cosine_distance(v, &q.vector);
            let exact = (d - hit.distance).abs() <= 1e-3;
            ensure!(
                self,
                exact,
                "search_vectors({what}): hit {i} ({}) has distance {}, but 1 − cos of its vector and the query is {d}",
                describe(o),
                hit.distance
            );
            if i > 0 {
                let ordered = got[i - 1].distance <= hit.distance + 1e-6;
                ensure!(
                    self,
                    ordered,
                    "search_vectors({what}): hits must come nearest first, but hit {} is at {} and hit {i} at {}",
                    i - 1,
                    got[i - 1].distance,
                    hit.distance
                );
            }
        }
        if want.is_empty() {
            return 1.0;
        }
        let want_ids: HashSet<Id> = want.iter().map(|h| h.object.id).collect();
        let found = got
            .iter()
            .filter(|h| want_ids.contains(&h.object.id))
            .count();
        found as f64 / want.len() as f64
    }
}

fn vq(kind: ObjectKind, class: &str, vector: &[f32], k: u64) -> VectorQuery {
    VectorQuery {
        kind,
        class: class.into(),
        owners: RVec::new(),
        filter_json: RString::new(),
        vector: RVec::from(vector.to_vec()),
        k,
        max_distance: 2.0,
    }
}

/// 240 Things in two classes and three owners, every tenth without a vector, and 20 Actions.
async fn fill(c: &Conn<'_>, rng: &mut Rng) -> Vec<(StoredObject, Vec<f32>)> {
    let mut held = vec![];
    for i in 0..240 {
        let class = if i % 3 == 0 { "Village" } else { "City" };
        let owner = [OWNER_A, OWNER_B, OWNER_C][i % 3 / 2 + (i % 5 == 0) as usize];
        let mut o = object(
            ObjectKind::Thing,
            class,
            owner,
            T0 + i as i64,
            json!({"label": format!("t{i}"), "population": i}),
        );
        o.updated_ms = T0 + i as i64;
        let v = if i % 10 == 7 { vec![] } else { rng.vector() };
        c.create_with_vector(&o, &v).await;
        held.push((o, v));
    }
    for i in 0..20 {
        let o = object(
            ObjectKind::Action,
            "Visit",
            OWNER_A,
            T0 + i,
            json!({"label": format!("a{i}")}),
        );
        let v = rng.vector();
        c.create_with_vector(&o, &v).await;
        held.push((o, v));
    }
    held
}

/// `search_vectors` answers the k nearest objects of a kind (or of one class) with their true
/// cosine distances, nearest first, objects without a vector never; an approximate index
/// must find at least 90 % of the exact top k over 20 questions. Vectors never mix kinds.
pub async fn check_vectors_nearest_match_exact_search(s: &Subject) {
    if !requires(
        s,
        Capabilities::VECTOR_SEARCH,
        "check_vectors_nearest_match_exact_search",
    ) {
        return;
    }
    let c = Conn::new(s);
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let held = fill(&c, &mut rng).await;
    let mut recall = 0.0;
    let mut questions = 0.0;
    for q_no in 0..20 {
        let v = rng.vector();
        let (class, kind) = match q_no % 4 {
            0 => ("", ObjectKind::Thing),
            1 => ("City", ObjectKind::Thing),
            2 => ("Village", ObjectKind::Thing),
            _ => ("", ObjectKind::Action),
        };
        let q = vq(kind, class, &v, 10);
        let allowed: Vec<(StoredObject, Vec<f32>)> = held
            .iter()
            .filter(|(o, _)| o.kind == kind && (class.is_empty() || o.class == class))
            .cloned()
            .collect();
        let got = c
            .search(&format!("{kind:?}, class {class:?}, k 10"), &q)
            .await;
        recall += c.judge(&format!("question {q_no}"), &q, &got, &allowed);
        questions += 1.0;
    }
    let recall = recall / questions;
    let enough = recall >= RECALL;
    ensure!(
        c,
        enough,
        "search_vectors found {:.0} % of the exact 10 nearest over 20 questions; at least {:.0} % is required",
        recall * 100.0,
        RECALL * 100.0
    );
    // k larger than what there is: every object with a vector, once.
    let q = vq(ObjectKind::Action, "", &rng.vector(), 1_000);
    let actions: Vec<_> = held
        .iter()
        .filter(|(o, _)| o.kind == ObjectKind::Action)
        .cloned()
        .collect();
    let got = c.search("every Action, k 1000", &q).await;
    c.judge("every Action, k 1000", &q, &got, &actions);
    // max_distance leaves out the farther ones.
    let mut q = vq(ObjectKind::Thing, "City", &rng.vector(), 50);
    q.max_distance = 0.8;
    let cities: Vec<_> = held
        .iter()
        .filter(|(o, _)| o.class == "City")
        .cloned()
        .collect();
    let got = c.search("Cities, max distance 0.8", &q).await;
    let near = got.iter().all(|h| h.distance <= 0.8 + 1e-6);
    ensure!(
        c,
        near,
        "search_vectors with max_distance 0.8 answered a hit at {}",
        got.iter().map(|h| h.distance).fold(0f32, f32::max)
    );
    c.judge("Cities, max distance 0.8", &q, &got, &cities);
}

/// The query's owners and filter apply **before** the search: the answer is the k nearest of
/// the objects they allow, also when those are few and far from the query.
pub async fn check_vectors_filter_first(s: &Subject) {
    if !requires(s, Capabilities::VECTOR_SEARCH, "check_vectors_filter_first") {
        return;
    }
    let c = Conn::new(s);
    let mut rng = Rng(0x5eed_1234_abcd_0002);
    let held = fill(&c, &mut rng).await;
    for q_no in 0..6 {
        let v = rng.vector();
        // Owners: OWNER_B only.
        let mut q = vq(ObjectKind::Thing, "", &v, 10);
        q.owners = RVec::from(vec![OWNER_B]);
        let allowed: Vec<_> = held
            .iter()
            .filter(|(o, _)| o.kind == ObjectKind::Thing && o.owner == OWNER_B)
            .cloned()
            .collect();
        let got = c.search(&format!("owner B, question {q_no}"), &q).await;
        let r = c.judge(&format!("owner B, question {q_no}"), &q, &got, &allowed);
        let enough = r >= RECALL;
        ensure!(
            c,
            enough,
            "search_vectors restricted to one owner found {:.0} % of the exact top 10",
            r * 100.0
        );
        // A filter that allows 6 Cities of 160: all of them come back, nearest first.
        let mut q = vq(ObjectKind::Thing, "City", &v, 10);
        let f = json!({"operator": "LessThan", "path": ["population"], "valueInt": 9});
        q.filter_json = f.to_string().into();
        let allowed: Vec<_> = held
            .iter()
            .filter(|(o, _)| {
                o.kind == ObjectKind::Thing
                    && o.class == "City"
                    && o.properties()["population"].as_i64().unwrap_or(0) < 9
            })
            .cloned()
            .collect();
        let got = c.search(&format!("Cities, filter {f}"), &q).await;
        let r = c.judge(&format!("Cities, filter {f}"), &q, &got, &allowed);
        let all = r == 1.0;
        ensure!(
            c,
            all,
            "search_vectors with a filter allowing {} objects (k 10) must answer all of them: the filter applies before the search",
            allowed.iter().filter(|(_, v)| !v.is_empty()).count()
        );
    }
}

/// A vector is replaced with its object: after `update_object_with_vector` (and, with
/// `VERSIONED_WRITES`, `update_object_if_with_vector`) the object is found by its new vector
/// only, after a plain `update_object` by none, and after `delete_object` never; `get_vector`
/// answers the same. A failed compare-and-set changes neither object nor vector.
pub async fn check_vectors_follow_updates_and_deletes(s: &Subject) {
    if !requires(
        s,
        Capabilities::VECTOR_SEARCH,
        "check_vectors_follow_updates_and_deletes",
    ) {
        return;
    }
    let c = Conn::new(s);
    let mut rng = Rng(0x5eed_1234_abcd_0003);
    let held = fill(&c, &mut rng).await;
    let (target, old) = held[4].clone();
    let found_at = |hits: &[VectorHit], id: Id| hits.iter().position(|h| h.object.id == id);
    // Found first by its own vector.
    let hits = c
        .search("its own vector", &vq(ObjectKind::Thing, "", &old, 5))
        .await;
    let first = found_at(&hits, target.id) == Some(0) && hits[0].distance < 1e-3;
    ensure!(
        c,
        first,
        "searching with an object's own vector must answer it first at distance 0; got {:?}",
        hits.iter()
            .map(|h| (label(&h.object), h.distance))
            .collect::<Vec<_>>()
    );
    c.same(
        "get_vector after create",
        &c.vector_of(&target).await,
        &Some(old.clone()),
    );
    // Moved to a new vector.
    let new: Vec<f32> = old.iter().map(|x| -x).collect();
    let moved = with_properties(&target, T0 + 10_000, json!({"label": "moved"}));
    let r = c
        .vectors()
        .update_object_with_vector(moved.clone(), RVec::from(new.clone()))
        .await
        .into_result();
    c.ok("update_object_with_vector", r);
    let hits = c
        .search("the old vector", &vq(ObjectKind::Thing, "", &old, 5))
        .await;
    ensure!(
        c,
        found_at(&hits, target.id).is_none(),
        "after update_object_with_vector the object was still found near its old vector: a stale hit"
    );
    let hits = c
        .search("the new vector", &vq(ObjectKind::Thing, "", &new, 5))
        .await;
    ensure!(
        c,
        found_at(&hits, target.id) == Some(0),
        "after update_object_with_vector the object was not found first by its new vector"
    );
    c.same_object("the hit after the update", &moved, &hits[0].object);
    c.same(
        "get_vector after update",
        &c.vector_of(&target).await,
        &Some(new.clone()),
    );
    if s.has(Capabilities::VERSIONED_WRITES) {
        let version = c.current_version(&moved).await.version;
        let third = rng.vector();
        let stale = c
            .vectors()
            .update_object_if_with_vector(
                with_properties(&moved, T0 + 20_000, json!({"label": "stale"})),
                version + 7,
                RVec::from(third.clone()),
            )
            .await
            .into_result();
        c.expect_err(
            "update_object_if_with_vector with a stale version",
            stale,
            ErrorKind::Conflict,
            "the stored version is another",
        );
        c.same(
            "get_vector after a failed compare-and-set",
            &c.vector_of(&target).await,
            &Some(new.clone()),
        );
        let again = with_properties(&moved, T0 + 30_000, json!({"label": "again"}));
        let r = c
            .vectors()
            .update_object_if_with_vector(again, version, RVec::from(third.clone()))
            .await
            .into_result();
        c.ok("update_object_if_with_vector", r);
        let hits = c
            .search("the third vector", &vq(ObjectKind::Thing, "", &third, 3))
            .await;
        ensure!(
            c,
            found_at(&hits, target.id) == Some(0),
            "after update_object_if_with_vector the object was not found first by its new vector"
        );
    }
    // A plain update stores no vector.
    let plain = with_properties(&target, T0 + 40_000, json!({"label": "plain"}));
    let r = c.c.update_object(plain).await.into_result();
    c.ok("update_object", r);
    c.same(
        "get_vector after a plain update",
        &c.vector_of(&target).await,
        &None,
    );
    let everything = vq(ObjectKind::Thing, "", &new, 1_000);
    let hits = c.search("every Thing", &everything).await;
    ensure!(
        c,
        found_at(&hits, target.id).is_none(),
        "after a plain update_object (no vector) the object was still found by meaning"
    );
    // A deleted object is never found.
    let (gone, gone_vector) = held[5].clone();
    let r = c.c.delete_object(gone.kind, gone.id).await.into_result();
    c.ok("delete_object", r);
    let hits = c
        .search(
            "a deleted object's vector",
            &vq(ObjectKind::Thing, "", &gone_vector, 1_000),
        )
        .await;
    ensure!(
        c,
        found_at(&hits, gone.id).is_none(),
        "a deleted object was found by meaning"
    );
    c.same(
        "get_vector of a deleted object",
        &c.vector_of(&gone).await,
        &None,
    );
}

/// Without `VECTOR_SEARCH`, the vector calls answer `Unsupported`.
pub async fn check_capability_vector_search(s: &Subject) {
    if s.has(Capabilities::VECTOR_SEARCH) {
        return;
    }
    let c = Conn::new(s);
    let Some(x) = &c.x else { return };
    c.expect_err(
        "search_vectors",
        x.search_vectors(vq(ObjectKind::Thing, "", &[1.0; DIMS], 3))
            .await
            .into_result(),
        ErrorKind::Unsupported,
        "the connector does not declare VECTOR_SEARCH",
    );
    let o = labelled(ObjectKind::Thing, "City", "x", T0, json!({}));
    c.expect_err(
        "create_object_with_vector",
        x.create_object_with_vector(o, RVec::from(vec![1.0; DIMS]))
            .await
            .into_result(),
        ErrorKind::Unsupported,
        "the connector does not declare VECTOR_SEARCH",
    );
}
