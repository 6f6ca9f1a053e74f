//! The reference semantics of vector search (**added in 1.5**, capability
//! [`VECTOR_SEARCH`](crate::Capabilities::VECTOR_SEARCH)): the distance every connector
//! answers, and the exact search an approximate index is measured against.
//!
//! The distance is the cosine distance `1 − cos(a, b)`, from 0 (same direction) to 2
//! (opposite); a zero vector is at distance 1 from everything. Hits come nearest first, ties by
//! id (smaller first), so two exact searches over the same objects answer the same list.

use std::cmp::Ordering;

use crate::types::{Id, StoredObject, VectorHit};

/// `1 − cos(a, b)`; 1 when either is zero or their lengths differ.
pub fn cosine_distance(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 1.0;
    }
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (*x as f64, *y as f64);
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return 1.0;
    }
    (1.0 - dot / (na.sqrt() * nb.sqrt())).clamp(0.0, 2.0) as f32
}

/// Scales `v` to unit length in place (a zero vector stays zero); answers the old length.
pub fn normalize(v: &mut [f32]) -> f32 {
    let len = v
        .iter()
        .map(|x| (*x as f64) * (*x as f64))
        .sum::<f64>()
        .sqrt();
    if len > 0.0 {
        for x in v.iter_mut() {
            *x = (*x as f64 / len) as f32;
        }
    }
    len as f32
}

/// The order of hits: nearer first, then smaller id.
pub fn hit_order(a: &VectorHit, b: &VectorHit) -> Ordering {
    a.distance
        .total_cmp(&b.distance)
        .then_with(|| a.object.id.cmp(&b.object.id))
}

/// The `k` nearest of `candidates` (objects with their vectors, already filtered) to `query`,
/// leaving out those farther than `max_distance`: the exact answer of
/// [`Connector::search_vectors`](crate::Connector::search_vectors). Objects without a vector
/// (empty) are never found.
pub fn exact_nearest<'a>(
    candidates: impl IntoIterator<Item = (&'a StoredObject, &'a [f32])>,
    query: &[f32],
    k: usize,
    max_distance: f32,
) -> Vec<VectorHit> {
    let mut best = Nearest::new(k);
    for (object, vector) in candidates {
        if vector.is_empty() {
            continue;
        }
        let distance = cosine_distance(vector, query);
        if distance <= max_distance {
            best.offer(object.id, distance, || object.clone());
        }
    }
    best.into_hits()
}

/// The `k` best hits seen so far, kept without holding every candidate.
pub struct Nearest {
    k: usize,
    hits: Vec<VectorHit>,
}

impl Nearest {
    /// Keeps at most `k` hits.
    pub fn new(k: usize) -> Self {
        Nearest { k, hits: vec![] }
    }

    /// Whether a hit at `distance` with `id` would be kept.
    pub fn would_keep(&self, id: Id, distance: f32) -> bool {
        if self.k == 0 {
            return false;
        }
        if self.hits.len() < self.k {
            return true;
        }
        let worst = &self.hits[self.hits.len() - 1];
        distance
            .total_cmp(&worst.distance)
            .then_with(|| id.cmp(&worst.object.id))
            == Ordering::Less
    }

    /// Offers a hit; `object` is only called when it is kept. The same hit offered again (an
    /// object found twice, at the same distance) is kept once.
    pub fn offer(&mut self, id: Id, distance: f32, object: impl FnOnce() -> StoredObject) {
        if !self.would_keep(id, distance) {
            return;
        }
        let Err(at) = self.hits.binary_search_by(|h| {
            h.distance
                .total_cmp(&distance)
                .then_with(|| h.object.id.cmp(&id))
        }) else {
            return;
        };
        let hit = VectorHit {
            object: object(),
            distance,
        };
        self.hits.insert(at, hit);
        self.hits.truncate(self.k);
    }

    /// The hits, nearest first.
    pub fn into_hits(self) -> Vec<VectorHit> {
        self.hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ObjectKind;

    fn obj(n: u8) -> StoredObject {
        StoredObject {
            kind: ObjectKind::Thing,
            id: Id([n; 16]),
            class: "City".into(),
            context: "".into(),
            owner: Id([0; 16]),
            created_ms: 0,
            updated_ms: 0,
            properties_json: "{}".into(),
        }
    }

    #[test]
    fn distance_is_one_minus_cosine() {
        assert!(cosine_distance(&[1.0, 0.0], &[2.0, 0.0]).abs() < 1e-6);
        assert!((cosine_distance(&[1.0, 0.0], &[0.0, 3.0]) - 1.0).abs() < 1e-6);
        assert!((cosine_distance(&[1.0, 0.0], &[-1.0, 0.0]) - 2.0).abs() < 1e-6);
        assert_eq!(cosine_distance(&[0.0, 0.0], &[1.0, 0.0]), 1.0);
        assert_eq!(cosine_distance(&[1.0], &[1.0, 0.0]), 1.0);
    }

    #[test]
    fn nearest_first_ties_by_id_and_no_vector_is_never_found() {
        let objects: Vec<(StoredObject, Vec<f32>)> = vec![
            (obj(3), vec![1.0, 1.0]),
            (obj(1), vec![1.0, 0.0]),
            (obj(2), vec![1.0, 1.0]),
            (obj(4), vec![]),
            (obj(5), vec![-1.0, 0.0]),
        ];
        let hits = exact_nearest(
            objects.iter().map(|(o, v)| (o, v.as_slice())),
            &[1.0, 0.0],
            3,
            2.0,
        );
        let ids: Vec<u8> = hits.iter().map(|h| h.object.id.0[0]).collect();
        assert_eq!(ids, vec![1, 2, 3]);
        let near = exact_nearest(
            objects.iter().map(|(o, v)| (o, v.as_slice())),
            &[1.0, 0.0],
            10,
            0.5,
        );
        assert_eq!(near.len(), 3, "the opposite one is farther than 0.5");
    }
}
