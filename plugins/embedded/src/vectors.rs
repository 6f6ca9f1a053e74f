//! Object vectors (`VECTOR_SEARCH`): stored in redb with their object, searched through one
//! in-memory inverted-file index (IVF-flat) per kind and class, built from redb at open.
//!
//! * **The truth is redb.** [`VECTORS`] holds each current object's vector with a sequence
//!   number, [`VECTOR_KEYS`] the same vectors by class and sequence number; both are written in
//!   the transaction (group commit) that writes the object, so a crash loses no acknowledged
//!   vector. Every change of a vector (stored or dropped) takes the next number of `meta`'s
//!   [`SEQ_KEY`], so that number names the state of the vectors.
//! * **The indexes are a cache, in memory only.** Each ([`Ivf`]) is keyed by the sequence
//!   numbers (a new vector gets a new number, so an old one is never mistaken for it) and holds
//!   a unit-length `f32` copy and an `i8` code of each vector in *lists*: below [`TRAIN_MIN`]
//!   vectors one flat list (a search compares the query with every vector), above it one list
//!   per centroid of a spherical k-means ([`Ivf::build`]), each vector in its nearest centroid's
//!   list; a search ranks the centroids and compares the query with every vector of the
//!   [`nprobe`] best lists (by their codes first, when unrestricted: [`RESCORE_MIN`]). Once a transaction is committed, and before its writes are answered, the writer
//!   thread stages its [`Change`]s ([`Vectors::stage`]): each new vector becomes *pending* in
//!   its class, and the indexer thread ([`Vectors::run_indexer`]) adds it to the index behind
//!   the writer, so the writer never waits for an index. A search compares the query with every
//!   pending vector exactly and then searches the index, so an acknowledged write is
//!   searchable at once; at most [`PENDING_MAX`] vectors are pending (beyond it the writer waits
//!   for the indexer: back-pressure). When a class has grown [`RETRAIN_GROWTH`] times past the
//!   vectors its index was trained on, the indexer copies the index's vectors and trains a new
//!   one on a thread of its own, going on with its work meanwhile (searches use the old index);
//!   once trained, the indexer brings the new index up to the old one's vectors (adding what it
//!   added since the copy, removing what it removed: it is the only one that changes an index,
//!   so nothing changes between) and swaps it in under the class's lock, so every vector the
//!   old index held stays findable. Nothing is saved: at open the indexer builds every class's
//!   index from the snapshot open saw, first thing, the writes since queued behind it; until
//!   that is done every search is exact, so opening never waits for an index (a `vectors`
//!   directory of the HNSW files older versions saved is removed at open).
//! * **Every hit is checked in the read snapshot**: its key must still be the object's vector
//!   and the object current, and its distance is computed from the stored vector with the
//!   reference ([`cosine_distance`]), so a stale or approximate index can only cost recall.
//! * **Filter first** ([`crate::store::Store::search_vectors`]): without owners or filter, a
//!   class's index is searched directly; with them, the objects they allow are found through
//!   the store's indexes, then searched exactly when at most [`EXACT_SEARCH_MAX`], else through
//!   the vector indexes, skipping the candidates the allow-list does not hold. Either way the
//!   candidates of the probed lists are checked nearest first until no further one can be among
//!   the `k` best; when the lists run out first (hits dropped: changed since, not allowed), more
//!   lists are probed.

use std::collections::VecDeque;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};
use weft_plugin_api::vector::{cosine_distance, Nearest};
use weft_plugin_api::{
    Id, ObjectKind, PluginError, PluginLogger, PluginResult, StoredObject, VectorHit, VectorQuery,
};

use crate::codec::{byte_kind, kind_byte, object_key, Entry};
use crate::index;
use crate::tables::{st, Bytes, META, OBJECTS, VECTORS, VECTOR_KEYS};

/// A restricted search (owners or a filter) whose allowed objects are at most this many
/// compares the query with each of their vectors (exact); above it, the vector indexes are
/// searched, skipping what the allow-list does not hold. Weaviate's switch point
/// (`flatSearchCutoff`).
pub const EXACT_SEARCH_MAX: usize = 40_000;

/// The `meta` entry holding the last sequence number given to a vector change.
pub(crate) const SEQ_KEY: &str = "vector_seq";

/// Committed vectors the indexer may be behind by. Each search compares the query with every
/// one of them exactly, so this bounds that cost (10,000 × 50 dimensions: about 0.2 ms); above
/// it, the writer waits before answering its writes (back-pressure on the clients).
pub(crate) const PENDING_MAX: usize = 10_000;
/// The data directories whose store's build at open waits while listed (tests).
#[cfg(test)]
static HOLD_REBUILD: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// The data directories whose store's trainings wait, once they have copied the old index's
/// vectors, while listed (tests: writes meanwhile).
#[cfg(test)]
static HOLD_RETRAIN: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// The indexer takes at most this much work at once.
const INDEX_BATCH: usize = 1_024;

/// A class's index is one flat list (searched whole) until it holds this many vectors, then
/// trained: a flat scan of 4,096 vectors costs less than a search of a trained index of
/// 200,000 (about 25,000 vectors scanned, see [`nprobe`]).
const TRAIN_MIN: usize = 4_096;
/// A class's index is trained again once it holds this many times the vectors it was trained
/// on (the lists grow long; the training's cost, spread over the vectors added since, stays a
/// small part of theirs).
const RETRAIN_GROWTH: usize = 4;
/// Lists of a trained index: 4·√N (N its vectors), at most this many. More lists make a search
/// scan fewer vectors for the same recall but rank more centroids, and make training and each
/// add dearer (an add compares its vector with every centroid).
const NLIST_MAX: usize = 1_024;
/// k-means trains on at most this many vectors per list (a sample), for this many rounds.
const SAMPLE_PER_LIST: usize = 32;
const KMEANS_ROUNDS: usize = 8;
/// The distance a search's candidates (from the unit copies) may be off the reference's (`f64`
/// over the stored vector) by: `f32` rounding, about 1e-6.
const SLACK: f32 = 1e-4;

/// The lists a search of an index of `nlist` lists probes first (1/8, at least 64). Measured
/// with `weft-bench explore` (200,000 objects of generated text, GloVe 50d weighted means,
/// crowded into a narrow cone; one-word queries, far from that crowd; 2 cores, 4 connections;
/// the index trained on 65,536 of them, 1,024 lists of about 195): probing 1/4 of the lists
/// found 0.995 of the exact top-10 at 519 queries/s, 1/8 found 0.976 at 818 queries/s (the
/// HNSW graph this replaced: 0.955 at 167). Small classes probe at least 64 lists (at 6,000
/// generated cone vectors, 309 lists, 1/8 of them found only 0.93).
fn nprobe(nlist: usize) -> usize {
    (nlist / NPROBE_DIVISOR).max(NPROBE_MIN).min(nlist)
}
const NPROBE_DIVISOR: usize = 8;
const NPROBE_MIN: usize = 64;
// ----- encodings ---------------------------------------------------------------------------------

/// A [`VECTORS`] value: the sequence number, then the vector.
pub(crate) fn encode(seq: u64, vector: &[f32]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + 4 * vector.len());
    v.extend_from_slice(&seq.to_be_bytes());
    for x in vector {
        v.extend_from_slice(&x.to_le_bytes());
    }
    v
}

/// A [`VECTORS`] value's sequence number and vector.
pub(crate) fn decode(bytes: &[u8]) -> PluginResult<(u64, Vec<f32>)> {
    let corrupt = || PluginError::internal("embedded: a stored vector is corrupt");
    let (seq, rest) = bytes.split_first_chunk::<8>().ok_or_else(corrupt)?;
    if !rest.len().is_multiple_of(4) {
        return Err(corrupt());
    }
    let vector = rest
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok((u64::from_be_bytes(*seq), vector))
}

/// A [`VECTOR_KEYS`] key: kind, class (escaped, as [`index::class_prefix`]), sequence number.
pub(crate) fn vector_key(kind: ObjectKind, class: &str, seq: u64) -> Vec<u8> {
    let mut k = index::class_prefix(kind, class);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The first and last possible [`VECTOR_KEYS`] key of a class.
fn class_range(kind: ObjectKind, class: &str) -> (Vec<u8>, Vec<u8>) {
    (
        vector_key(kind, class, 0),
        vector_key(kind, class, u64::MAX),
    )
}

/// The kind, class and sequence number of a [`VECTOR_KEYS`] key.
fn parse_key(key: &[u8]) -> PluginResult<(ObjectKind, String, u64)> {
    let corrupt = || PluginError::internal("embedded: a stored vector key is corrupt");
    let (head, seq) = key.split_last_chunk::<8>().ok_or_else(corrupt)?;
    let kind = byte_kind(*head.first().ok_or_else(corrupt)?)?;
    Ok((kind, index::string_of(head, 1), u64::from_be_bytes(*seq)))
}

fn id_of(bytes: &[u8]) -> PluginResult<Id> {
    <[u8; 16]>::try_from(bytes)
        .map(Id)
        .map_err(|_| PluginError::internal("embedded: a stored vector key names a corrupt id"))
}

/// Whether an index (cosine) can hold or search `v`: not empty, finite, not zero. Others (the
/// reference puts a zero vector at distance 1 from everything) are searched exactly.
fn regular(v: &[f32]) -> bool {
    !v.is_empty() && v.iter().all(|x| x.is_finite()) && v.iter().any(|x| *x != 0.0)
}

// ----- writes ------------------------------------------------------------------------------------

/// A change to the vector indexes a committed transaction made.
#[derive(Debug)]
pub(crate) enum Change {
    Add {
        kind: ObjectKind,
        class: String,
        id: Id,
        seq: u64,
        vector: Vec<f32>,
    },
    Remove {
        kind: ObjectKind,
        class: String,
        seq: u64,
    },
}

/// In `tx`: drops the vector of object `kind`/`id` (held under `old_class`, the class of its
/// current version, when it has one) and stores `new` (its class and vector; an empty vector:
/// none) instead; what the vector indexes must change is pushed to `changes`. Writes nothing when
/// there is neither an old nor a new vector.
pub(crate) fn replace(
    tx: &WriteTransaction,
    changes: &mut Vec<Change>,
    kind: ObjectKind,
    id: Id,
    old_class: Option<&str>,
    new: Option<(&str, &[f32])>,
) -> PluginResult<()> {
    let new = new.filter(|(_, v)| !v.is_empty());
    if old_class.is_none() && new.is_none() {
        return Ok(());
    }
    let mut vectors = tx.open_table(VECTORS).map_err(st)?;
    let at = object_key(kind, id);
    let old = match old_class {
        Some(_) => vectors
            .remove(&at[..])
            .map_err(st)?
            .map(|g| decode(g.value()))
            .transpose()?,
        None => None,
    };
    if old.is_none() && new.is_none() {
        return Ok(());
    }
    let mut keys = tx.open_table(VECTOR_KEYS).map_err(st)?;
    let mut meta = tx.open_table(META).map_err(st)?;
    let mut seq = meta.get(SEQ_KEY).map_err(st)?.map_or(0, |g| g.value());
    if let (Some((old_seq, _)), Some(class)) = (old, old_class) {
        keys.remove(&vector_key(kind, class, old_seq)[..])
            .map_err(st)?;
        seq += 1;
        changes.push(Change::Remove {
            kind,
            class: class.to_string(),
            seq: old_seq,
        });
    }
    if let Some((class, vector)) = new {
        seq += 1;
        vectors
            .insert(&at[..], &encode(seq, vector)[..])
            .map_err(st)?;
        keys.insert(&vector_key(kind, class, seq)[..], &id.0[..])
            .map_err(st)?;
        changes.push(Change::Add {
            kind,
            class: class.to_string(),
            id,
            seq,
            vector: vector.to_vec(),
        });
    }
    meta.insert(SEQ_KEY, seq).map_err(st)?;
    Ok(())
}

// ----- the distance kernel -----------------------------------------------------------------------

/// Appends to `out` the dot product of `query` with each row of `rows` (`query.len()` numbers
/// each). Written for LLVM to vectorise (eight lanes, a multiply-add each); compiled twice, for
/// the baseline ISA and for AVX2 with FMA, picked at run time.
fn dots(query: &[f32], rows: &[f32], out: &mut Vec<f32>) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features the function is compiled for (checked above).
        unsafe { dots_avx2(query, rows, out) };
        return;
    }
    dots_with::<false>(query, rows, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dots_avx2(query: &[f32], rows: &[f32], out: &mut Vec<f32>) {
    dots_with::<true>(query, rows, out)
}

/// The kernel: with `FMA`, fused multiply-adds (one instruction where the CPU has them; only
/// for the AVX2+FMA build, since elsewhere `mul_add` is a slow library call).
#[inline(always)]
fn dots_with<const FMA: bool>(query: &[f32], rows: &[f32], out: &mut Vec<f32>) {
    let dims = query.len();
    if dims == 0 {
        return;
    }
    let (q8, q_tail) = query.split_at(dims - dims % 8);
    out.reserve(rows.len() / dims);
    for row in rows.chunks_exact(dims) {
        let (r8, r_tail) = row.split_at(dims - dims % 8);
        let mut acc = [0f32; 8];
        for (q, r) in q8.chunks_exact(8).zip(r8.chunks_exact(8)) {
            for i in 0..8 {
                acc[i] = if FMA {
                    q[i].mul_add(r[i], acc[i])
                } else {
                    acc[i] + q[i] * r[i]
                };
            }
        }
        let mut sum =
            (acc[0] + acc[4]) + (acc[1] + acc[5]) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        for (q, r) in q_tail.iter().zip(r_tail) {
            sum += q * r;
        }
        out.push(sum);
    }
}

/// Which [`dots`] kernel this CPU runs.
fn kernel() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        return "AVX2+FMA";
    }
    "portable"
}

/// `v` scaled to unit length (`v` regular).
fn unit(v: &[f32]) -> Vec<f32> {
    let len = v
        .iter()
        .map(|x| (*x as f64) * (*x as f64))
        .sum::<f64>()
        .sqrt();
    v.iter().map(|x| (*x as f64 / len) as f32).collect()
}

// ----- the IVF indexes ---------------------------------------------------------------------------

/// One list of an [`Ivf`]: sequence numbers and their unit vectors, one after another.
#[derive(Default, Clone)]
struct List {
    seqs: Vec<u64>,
    data: Vec<f32>,
    /// The same vectors as `i8` codes ([`quantize`]), [`Ivf::code_len`] bytes each: what an
    /// unrestricted search scans first (a quarter of the memory traffic of `data`).
    codes: Vec<i8>,
}

/// An inverted-file index of unit vectors of one length: its centroids (none: one flat list)
/// and a list per centroid, and where each vector is.
struct Ivf {
    dims: usize,
    /// Bytes of each vector's `i8` code: `dims` rounded up to [`CODE_LANES`] (zero-padded).
    code_len: usize,
    /// `lists.len()` unit centroids, one after another; empty while flat.
    centroids: Vec<f32>,
    lists: Vec<List>,
    /// Each vector's list and place in it (removals swap the list's last into the place).
    place: HashMap<u64, (u32, u32)>,
    /// How many vectors it was trained on (0: flat).
    trained_on: usize,
}

impl Ivf {
    fn flat(dims: usize) -> Ivf {
        Ivf {
            dims,
            code_len: dims.div_ceil(CODE_LANES) * CODE_LANES,
            centroids: Vec::new(),
            lists: vec![List::default()],
            place: HashMap::new(),
            trained_on: 0,
        }
    }

    fn len(&self) -> usize {
        self.place.len()
    }

    /// Whether it should be trained (again): [`TRAIN_MIN`] vectors, [`RETRAIN_GROWTH`] times
    /// as many as it was trained on.
    fn wants_training(&self) -> bool {
        self.len() >= TRAIN_MIN.max(self.trained_on.saturating_mul(RETRAIN_GROWTH))
    }

    /// The list of unit vector `u`: its nearest centroid's (`scores` a buffer).
    fn assign(&self, u: &[f32], scores: &mut Vec<f32>) -> usize {
        if self.centroids.is_empty() {
            return 0;
        }
        scores.clear();
        dots(u, &self.centroids, scores);
        argmax(scores)
    }

    /// Adds unit vector `u` as `seq` to list `list`.
    fn insert(&mut self, list: usize, seq: u64, u: &[f32]) {
        self.remove(seq);
        let l = &mut self.lists[list];
        self.place.insert(seq, (list as u32, l.seqs.len() as u32));
        l.seqs.push(seq);
        l.data.extend_from_slice(u);
        quantize(u, self.code_len, &mut l.codes);
    }

    fn remove(&mut self, seq: u64) -> bool {
        let Some((list, at)) = self.place.remove(&seq) else {
            return false;
        };
        let (list, at, dims, code) = (list as usize, at as usize, self.dims, self.code_len);
        let l = &mut self.lists[list];
        let last = l.seqs.len() - 1;
        l.seqs.swap_remove(at);
        if at != last {
            l.data
                .copy_within(last * dims..(last + 1) * dims, at * dims);
            l.codes
                .copy_within(last * code..(last + 1) * code, at * code);
            self.place.insert(l.seqs[at], (list as u32, at as u32));
        }
        l.data.truncate(last * dims);
        l.codes.truncate(last * code);
        true
    }

    /// The unit vector of `seq`.
    fn get(&self, seq: u64) -> Option<&[f32]> {
        let &(list, at) = self.place.get(&seq)?;
        let at = at as usize * self.dims;
        Some(&self.lists[list as usize].data[at..at + self.dims])
    }

    /// Every vector: sequence numbers and unit vectors, one after another.
    fn copy(&self) -> (Vec<u64>, Vec<f32>) {
        let mut seqs = Vec::with_capacity(self.len());
        let mut data = Vec::with_capacity(self.len() * self.dims);
        for l in &self.lists {
            seqs.extend_from_slice(&l.seqs);
            data.extend_from_slice(&l.data);
        }
        (seqs, data)
    }

    /// An index of the unit vectors `data` (`seqs` their numbers): flat below [`TRAIN_MIN`],
    /// else trained on them (a spherical k-means of 4·√N centroids, at most [`NLIST_MAX`], on
    /// a sample of at most [`SAMPLE_PER_LIST`] per centroid, [`KMEANS_ROUNDS`] rounds) and each
    /// vector put in its nearest centroid's list; on `threads` threads. `None` when `stop`
    /// says so (checked between rounds).
    fn build(
        dims: usize,
        seqs: Vec<u64>,
        data: Vec<f32>,
        threads: usize,
        stop: &dyn Fn() -> bool,
    ) -> Option<Ivf> {
        let n = seqs.len();
        let mut ivf = Ivf::flat(dims);
        if n < TRAIN_MIN {
            for (seq, u) in seqs.iter().zip(data.chunks_exact(dims)) {
                ivf.insert(0, *seq, u);
            }
            return Some(ivf);
        }
        let nlist = ((4.0 * (n as f64).sqrt()) as usize).clamp(1, NLIST_MAX);
        // The sample: evenly spaced (vectors come in the order of their numbers).
        let m = n.min(SAMPLE_PER_LIST * nlist);
        let mut sample = Vec::with_capacity(m * dims);
        for i in 0..m {
            let at = i * n / m;
            sample.extend_from_slice(&data[at * dims..(at + 1) * dims]);
        }
        // Seeds: evenly spaced sample vectors.
        let mut centroids = Vec::with_capacity(nlist * dims);
        for c in 0..nlist {
            let at = c * m / nlist;
            centroids.extend_from_slice(&sample[at * dims..(at + 1) * dims]);
        }
        for round in 0..KMEANS_ROUNDS {
            if stop() {
                return None;
            }
            let assigned = assign_all(&centroids, &sample, dims, threads);
            let mut sums = vec![0f64; nlist * dims];
            let mut counts = vec![0usize; nlist];
            for (i, &c) in assigned.iter().enumerate() {
                counts[c as usize] += 1;
                let row = &sample[i * dims..(i + 1) * dims];
                for (s, x) in sums[c as usize * dims..].iter_mut().zip(row) {
                    *s += *x as f64;
                }
            }
            for c in 0..nlist {
                let sum = &sums[c * dims..(c + 1) * dims];
                let len = sum.iter().map(|x| x * x).sum::<f64>().sqrt();
                let centroid = &mut centroids[c * dims..(c + 1) * dims];
                if counts[c] == 0 || len == 0.0 {
                    // An empty list: reseeded with a sample vector (a different one each round).
                    let at = (c * 7_919 + round * 104_729) % m;
                    centroid.copy_from_slice(&sample[at * dims..(at + 1) * dims]);
                } else {
                    for (x, s) in centroid.iter_mut().zip(sum) {
                        *x = (s / len) as f32;
                    }
                }
            }
        }
        if stop() {
            return None;
        }
        let assigned = assign_all(&centroids, &data, dims, threads);
        let mut counts = vec![0usize; nlist];
        for &c in &assigned {
            counts[c as usize] += 1;
        }
        ivf.lists = counts
            .iter()
            .map(|&k| List {
                seqs: Vec::with_capacity(k),
                data: Vec::with_capacity(k * dims),
                codes: Vec::with_capacity(k * ivf.code_len),
            })
            .collect();
        ivf.centroids = centroids;
        ivf.place.reserve(n);
        for ((seq, u), &c) in seqs.iter().zip(data.chunks_exact(dims)).zip(&assigned) {
            ivf.insert(c as usize, *seq, u);
        }
        ivf.trained_on = n;
        Some(ivf)
    }

    /// The lists ranked for unit query `u`: each list's score (its centroid's dot product
    /// with `u`) and number.
    fn ranked_lists(&self, u: &[f32]) -> Vec<(f32, u32)> {
        if self.centroids.is_empty() {
            return vec![(0.0, 0)];
        }
        let mut scores = Vec::with_capacity(self.lists.len());
        dots(u, &self.centroids, &mut scores);
        scores
            .into_iter()
            .enumerate()
            .map(|(i, s)| (s, i as u32))
            .collect()
    }

    /// The candidates of list `list` for unit query `u`: (distance, sequence number), pushed
    /// to `out` (`scores` a buffer).
    fn scan(&self, list: usize, u: &[f32], scores: &mut Vec<f32>, out: &mut Vec<(f32, u64)>) {
        let l = &self.lists[list];
        scores.clear();
        dots(u, &l.data, scores);
        out.extend(scores.iter().zip(&l.seqs).map(|(s, seq)| (1.0 - s, *seq)));
    }

    /// The `i8` scores of list `list`'s codes for the query's code `q`: (score, list, place),
    /// pushed to `out` (`scores` a buffer).
    fn scan_codes(
        &self,
        list: usize,
        q: &[i8],
        scores: &mut Vec<i32>,
        out: &mut Vec<(i32, u32, u32)>,
    ) {
        let l = &self.lists[list];
        scores.clear();
        code_dots(q, &l.codes, scores);
        out.extend(
            scores
                .iter()
                .enumerate()
                .map(|(at, s)| (*s, list as u32, at as u32)),
        );
    }

    /// The candidate at `list`/`at` for unit query `u`: its distance (from its `f32` copy) and
    /// sequence number.
    fn rescore(&self, list: u32, at: u32, u: &[f32]) -> (f32, u64) {
        let l = &self.lists[list as usize];
        let at = at as usize;
        let row = &l.data[at * self.dims..(at + 1) * self.dims];
        let mut acc = [0f32; 8];
        let split = self.dims - self.dims % 8;
        for (q, r) in u[..split].chunks_exact(8).zip(row[..split].chunks_exact(8)) {
            for i in 0..8 {
                acc[i] += q[i] * r[i];
            }
        }
        let tail: f32 = u[split..]
            .iter()
            .zip(&row[split..])
            .map(|(q, r)| q * r)
            .sum();
        (1.0 - (acc.iter().sum::<f32>() + tail), l.seqs[at])
    }
}

/// Code lanes: an `i8` code is padded to a multiple of this (one AVX2 register).
const CODE_LANES: usize = 32;
/// An unrestricted search compares the query's code with the codes of the probed lists, then
/// rescores this many of the best (times `k`/10, at least this many) with their `f32` copies
/// before checking them nearest first: the codes only choose which. (Unit vectors' components
/// are in [-1, 1]; each code component is off by at most 1/254, so a code's dot product by at
/// most about 2·√dims/254 and typically a tenth of that, within which many of these crowded
/// vectors lie.) Measured with `weft-bench explore` at 200,000 things (server CPU per `Explore`,
/// the machine loaded): without codes 1.97 ms a query at recall@10 0.981; rescoring 256 1.26 ms
/// at 0.976, 512 1.22–1.44 ms at 0.979–0.982, 2,048 1.78 ms at 0.986 (each rescore reads a
/// row from memory the scan did not touch).
const RESCORE_MIN: usize = 512;

/// Appends `u`'s code (a unit vector's components times 127, rounded; zero-padded to
/// `code_len`) to `out`.
fn quantize(u: &[f32], code_len: usize, out: &mut Vec<i8>) {
    out.extend(
        u.iter()
            .map(|x| (x * 127.0).round().clamp(-127.0, 127.0) as i8),
    );
    out.extend(std::iter::repeat_n(0i8, code_len - u.len()));
}

/// Appends to `out` the dot product of the code `q` with each code of `rows` (`q.len()` bytes
/// each, a multiple of [`CODE_LANES`]); compiled for AVX2 and for the baseline, picked at run
/// time.
fn code_dots(q: &[i8], rows: &[i8], out: &mut Vec<i32>) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has the feature the function is compiled for (checked above).
        unsafe { code_dots_avx2(q, rows, out) };
        return;
    }
    code_dots_with(q, rows, out)
}

/// The AVX2 kernel: each 16 bytes of a code widened to `i16`, multiplied with the query's and
/// summed in pairs into `i32` lanes (`vpmaddwd`), the lanes summed at the end of each code.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn code_dots_avx2(q: &[i8], rows: &[i8], out: &mut Vec<i32>) {
    use std::arch::x86_64::*;
    let len = q.len();
    if len == 0 || !len.is_multiple_of(16) {
        return code_dots_with(q, rows, out);
    }
    // SAFETY (the loads): every 16-byte load is within `q` or within one `len`-byte row.
    let widened: Vec<__m256i> = q
        .chunks_exact(16)
        .map(|c| unsafe { _mm256_cvtepi8_epi16(_mm_loadu_si128(c.as_ptr().cast())) })
        .collect();
    out.reserve(rows.len() / len);
    for row in rows.chunks_exact(len) {
        let mut acc = _mm256_setzero_si256();
        for (qh, r) in widened.iter().zip(row.chunks_exact(16)) {
            let r = unsafe { _mm256_cvtepi8_epi16(_mm_loadu_si128(r.as_ptr().cast())) };
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(*qh, r));
        }
        let s = _mm_add_epi32(
            _mm256_castsi256_si128(acc),
            _mm256_extracti128_si256::<1>(acc),
        );
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
        out.push(_mm_cvtsi128_si32(s));
    }
}

/// The kernel: `i8` products summed as `i16` pairs into `i32` lanes (what `pmaddwd` does).
#[inline(always)]
fn code_dots_with(q: &[i8], rows: &[i8], out: &mut Vec<i32>) {
    let len = q.len();
    if len == 0 {
        return;
    }
    out.reserve(rows.len() / len);
    for row in rows.chunks_exact(len) {
        let mut acc = [0i32; 16];
        for (q, r) in q.chunks_exact(CODE_LANES).zip(row.chunks_exact(CODE_LANES)) {
            for i in 0..16 {
                acc[i] += q[2 * i] as i16 as i32 * r[2 * i] as i16 as i32
                    + q[2 * i + 1] as i16 as i32 * r[2 * i + 1] as i16 as i32;
            }
        }
        out.push(acc.iter().sum());
    }
}

/// The place of the largest of `scores` (the first of equals).
fn argmax(scores: &[f32]) -> usize {
    let mut best = 0;
    for (i, s) in scores.iter().enumerate() {
        if *s > scores[best] {
            best = i;
        }
    }
    best
}

/// The nearest centroid of each unit vector of `data`, on `threads` threads.
fn assign_all(centroids: &[f32], data: &[f32], dims: usize, threads: usize) -> Vec<u32> {
    let n = data.len() / dims;
    let chunk = n.div_ceil(threads.max(1)).max(1);
    let one = |part: &[f32]| -> Vec<u32> {
        let mut scores = Vec::with_capacity(centroids.len() / dims);
        part.chunks_exact(dims)
            .map(|u| {
                scores.clear();
                dots(u, centroids, &mut scores);
                argmax(&scores) as u32
            })
            .collect()
    };
    if threads <= 1 || n < 1_024 {
        return one(data);
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = data
            .chunks(chunk * dims)
            .map(|part| s.spawn(move || one(part)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// One kind and class's vectors as searched: an index of the regular ones of its dimension,
/// and the keys of the rest (searched exactly).
struct ClassIndex {
    ivf: Option<Ivf>,
    /// Keys not in `ivf`: zero or non-finite vectors, and vectors of another length than the
    /// index's. While there are any, the class is searched exactly.
    irregular: BTreeSet<u64>,
}

impl ClassIndex {
    fn new() -> Self {
        ClassIndex {
            ivf: None,
            irregular: BTreeSet::new(),
        }
    }

    /// Whether unit vectors of `v`'s length go to the index (else `v` is irregular).
    fn takes(&self, v: &[f32]) -> bool {
        regular(v) && self.ivf.as_ref().is_none_or(|i| i.dims == v.len())
    }

    fn remove(&mut self, seq: u64) {
        if !self.irregular.remove(&seq) {
            if let Some(ivf) = &mut self.ivf {
                ivf.remove(seq);
            }
        }
    }

    #[cfg(test)]
    fn size(&self) -> usize {
        self.ivf.as_ref().map_or(0, Ivf::len) + self.irregular.len()
    }

    /// The index, when it answers `query` for the whole class: it holds every vector of the
    /// class and `query` is regular and of its length.
    fn searchable(&self, query: &[f32]) -> Option<&Ivf> {
        let ivf = self.ivf.as_ref()?;
        (self.irregular.is_empty() && regular(query) && ivf.dims == query.len()).then_some(ivf)
    }
}

/// A vector committed (its write may be answered) but not yet in its class's index: the
/// object's id and the vector.
type Pending = (Id, Arc<[f32]>);

/// One kind and class: its index, and the vectors the indexer has not yet added to it.
struct ClassEntry {
    index: RwLock<ClassIndex>,
    /// By sequence number. A search compares the query with each of these exactly, before it
    /// searches the index (the indexer adds a vector to the index before it removes it from
    /// here, so a search sees it in one or the other, or both).
    pending: RwLock<HashMap<u64, Pending>>,
}

impl ClassEntry {
    fn new(index: ClassIndex) -> Arc<ClassEntry> {
        Arc::new(ClassEntry {
            index: RwLock::new(index),
            pending: RwLock::new(HashMap::new()),
        })
    }
}

/// Work for the indexer, in commit order.
struct Queued {
    entry: Arc<ClassEntry>,
    seq: u64,
    /// Add the pending vector `seq` (else remove `seq` from the index).
    add: bool,
}

/// A class's index trained anew (`None`: the training was cut short), for the indexer to swap
/// in.
struct Trained {
    entry: Arc<ClassEntry>,
    ivf: Option<Ivf>,
    seconds: f64,
}

/// The indexer's queue, and whether the store is closing.
#[derive(Default)]
struct Backlog {
    queue: VecDeque<Queued>,
    closing: bool,
    /// The indexer is working on a batch taken from the queue.
    busy: bool,
    /// The indexer takes no work (tests: searches while it is behind).
    paused: bool,
    /// A class's index is being trained anew (one at a time).
    training: bool,
    /// A training's result, for the indexer.
    trained: Option<Trained>,
}

type ClassKey = (u8, String);

/// A vector with its sequence number.
type Numbered = (u64, Arc<[f32]>);

/// One class's vectors as a build at open reads them: its key, the length of its first regular
/// vector, the regular ones of that length (numbers and unit vectors) and the numbers of the
/// rest.
type ClassRead = (ClassKey, Option<usize>, Vec<u64>, Vec<f32>, BTreeSet<u64>);

/// The vector indexes of one store, by kind and class.
pub(crate) struct Vectors {
    /// The data directory.
    dir: PathBuf,
    classes: RwLock<BTreeMap<ClassKey, Arc<ClassEntry>>>,
    /// What the indexer is to do; [`Vectors::stage`] waits while it holds [`PENDING_MAX`].
    backlog: Mutex<Backlog>,
    /// Signalled when work is queued or a training is done (the indexer waits on it) and when
    /// work is done (the writer, held back, and the close wait on it).
    backlog_changed: Condvar,
    /// False once the indexes may differ from the committed vectors (a commit that failed
    /// after it may have been written, a panic while applying changes): said once in the log;
    /// the next open builds them anew from the store.
    trusted: AtomicBool,
    log: PluginLogger,
    /// How many vectors the indexer built the indexes of from the store after open.
    built: AtomicUsize,
    /// What open left to build from the store, for the indexer to do first.
    rebuild: Mutex<Option<Rebuild>>,
    /// Until the build is done, every search compares the query with each stored vector.
    rebuilding: AtomicBool,
}

/// The indexes to build by the indexer from the store as open saw it (the writes since are
/// queued behind it), while searches are answered exactly.
struct Rebuild {
    tx: ReadTransaction,
}

fn lock<T>(l: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    l.lock().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

impl Vectors {
    /// The indexes of the store in `data_dir` (whose database `db` is open and initialised):
    /// empty, every class with stored vectors known, built from the vectors tables by the
    /// indexer as its first work. Removes the `vectors` directory older versions kept their
    /// index files in. Logs the index and its distance kernel once.
    pub(crate) fn open(data_dir: &Path, db: &Database, log: PluginLogger) -> PluginResult<Vectors> {
        log.info(&format!(
            "vector search: in-memory IVF-flat indexes (exact below {TRAIN_MIN} vectors a class; up to {NLIST_MAX} lists), cosine over f32; distance kernel: {}",
            kernel()
        ));
        let old = data_dir.join("vectors");
        if old.is_dir() {
            match std::fs::remove_dir_all(&old) {
                Ok(()) => log.info(&format!(
                    "vector search: removed {} (HNSW index files of an older version; the indexes are built from the store at open now)",
                    old.display()
                )),
                Err(e) => log.warn(&format!(
                    "vector search: cannot remove {} (index files of an older version, unused): {e}",
                    old.display()
                )),
            }
        }
        let tx = db.begin_read().map_err(st)?;
        let mut classes = BTreeMap::new();
        // Every class with stored vectors is known from the start (searches list them), even
        // before the indexer has built its index.
        for key in stored_classes(&tx)? {
            classes
                .entry(key)
                .or_insert_with(|| ClassEntry::new(ClassIndex::new()));
        }
        let rebuild = (!classes.is_empty()).then_some(Rebuild { tx });
        Ok(Vectors {
            dir: data_dir.to_path_buf(),
            classes: RwLock::new(classes),
            backlog: Mutex::new(Backlog::default()),
            backlog_changed: Condvar::new(),
            trusted: AtomicBool::new(true),
            log,
            built: AtomicUsize::new(0),
            rebuilding: AtomicBool::new(rebuild.is_some()),
            rebuild: Mutex::new(rebuild),
        })
    }

    /// How many vectors the indexer built the indexes of from the store after open (once it
    /// has: this waits for the build).
    pub(crate) fn opened(&self) -> usize {
        let mut backlog = lock(&self.backlog);
        while self.rebuilding.load(Ordering::Acquire) && !backlog.closing {
            backlog = self
                .backlog_changed
                .wait(backlog)
                .unwrap_or_else(|e| e.into_inner());
        }
        self.built.load(Ordering::Relaxed)
    }

    /// The indexer's first work: every class's index built from the store as open saw it.
    /// Searches are exact until it is done; a build that fails (or is cut short by the close)
    /// leaves them exact.
    fn rebuild_at_open(&self, threads: usize) {
        {
            let mut backlog = lock(&self.backlog);
            if lock(&self.rebuild).is_none() {
                return;
            }
            backlog.busy = true;
        }
        #[cfg(test)]
        while lock(&HOLD_REBUILD).contains(&self.dir) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let Some(r) = lock(&self.rebuild).take() else {
            return;
        };
        let started = std::time::Instant::now();
        match self.rebuild_from(&r.tx, threads) {
            Ok(built) => {
                self.built.store(built, Ordering::Relaxed);
                self.log.info(&format!(
                    "vector search: built the indexes of {built} vectors from the store in {} in {} ms; searches were exact meanwhile",
                    self.dir.display(),
                    started.elapsed().as_millis(),
                ));
                self.rebuilding.store(false, Ordering::Release);
            }
            Err(why) => self.distrust(&format!(
                "building the vector indexes at open stopped ({why}); searches stay exact"
            )),
        }
        lock(&self.backlog).busy = false;
        self.backlog_changed.notify_all();
    }

    /// Builds the index of every class from its stored vectors (as `tx` has them); answers how
    /// many. Stops early, with an error, when the store closes.
    fn rebuild_from(&self, tx: &ReadTransaction, threads: usize) -> Result<usize, String> {
        let keys = tx.open_table(VECTOR_KEYS).map_err(|e| e.to_string())?;
        let vectors = tx.open_table(VECTORS).map_err(|e| e.to_string())?;
        let closing = || lock(&self.backlog).closing;
        let mut n = 0usize;
        // One class at a time (the keys are ordered by class): its regular vectors of the
        // first one's length, unit, and the keys of the rest.
        let mut class: Option<ClassRead> = None;
        let finish = |c: ClassRead| {
            let (key, dims, seqs, data, irregular) = c;
            let ivf = match dims {
                Some(dims) => Some(
                    Ivf::build(dims, seqs, data, threads, &closing)
                        .ok_or("the store is closing")?,
                ),
                None => None,
            };
            let kind = byte_kind(key.0).map_err(|e| e.message.to_string())?;
            *write(&self.class_or_new(kind, &key.1).index) = ClassIndex { ivf, irregular };
            Ok::<(), String>(())
        };
        for item in keys.range::<&[u8]>(..).map_err(|e| e.to_string())? {
            let (k, v) = item.map_err(|e| e.to_string())?;
            let (kind, name, seq) = parse_key(k.value()).map_err(|e| e.message.to_string())?;
            let id = id_of(v.value()).map_err(|e| e.message.to_string())?;
            let Some(stored) = vectors
                .get(&object_key(kind, id)[..])
                .map_err(|e| e.to_string())?
            else {
                continue;
            };
            let (stored_seq, vector) = decode(stored.value()).map_err(|e| e.message.to_string())?;
            if stored_seq != seq {
                continue;
            }
            let key = (kind_byte(kind), name);
            if class.as_ref().is_none_or(|c| c.0 != key) {
                if closing() {
                    return Err("the store is closing".into());
                }
                if let Some(c) = class.take() {
                    finish(c)?;
                }
                class = Some((key, None, Vec::new(), Vec::new(), BTreeSet::new()));
            }
            let Some((_, dims, seqs, data, irregular)) = class.as_mut() else {
                continue;
            };
            if regular(&vector) && dims.is_none_or(|d| d == vector.len()) {
                *dims = Some(vector.len());
                seqs.push(seq);
                data.extend(unit(&vector));
            } else {
                irregular.insert(seq);
            }
            n += 1;
        }
        if let Some(c) = class.take() {
            finish(c)?;
        }
        Ok(n)
    }

    /// Takes a committed transaction's changes (the writer calls it before answering the
    /// writes): each new vector becomes pending in its class (searched exactly from now on, so
    /// an acknowledged write is searchable) and is queued for the indexer, as is each removal.
    /// While the indexer is [`PENDING_MAX`] behind, this waits for it.
    pub(crate) fn stage(&self, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        let mut queued = Vec::with_capacity(changes.len());
        for change in changes {
            match change {
                Change::Add {
                    kind,
                    class,
                    id,
                    seq,
                    vector,
                } => {
                    let entry = self.class_or_new(kind, &class);
                    write(&entry.pending).insert(seq, (id, Arc::from(vector)));
                    queued.push(Queued {
                        entry,
                        seq,
                        add: true,
                    });
                }
                Change::Remove { kind, class, seq } => {
                    if let Some(entry) = self.class(kind, &class) {
                        queued.push(Queued {
                            entry,
                            seq,
                            add: false,
                        });
                    }
                }
            }
        }
        let mut backlog = lock(&self.backlog);
        backlog.queue.extend(queued);
        self.backlog_changed.notify_all();
        while backlog.queue.len() > PENDING_MAX && !backlog.closing {
            backlog = self
                .backlog_changed
                .wait(backlog)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The indexer thread's work: adds the pending vectors to their indexes (and removes what
    /// is to be removed), in commit order, a batch at a time, and swaps in the indexes trained
    /// anew, until [`Vectors::close`] and the queue is empty (a training then under way is cut
    /// short).
    pub(crate) fn run_indexer(&self) {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        self.rebuild_at_open(threads);
        let cancel = AtomicBool::new(false);
        std::thread::scope(|s| {
            loop {
                let (batch, trained): (Vec<Queued>, Option<Trained>) = {
                    let mut backlog = lock(&self.backlog);
                    backlog.busy = false;
                    self.backlog_changed.notify_all();
                    while (backlog.paused
                        || (backlog.queue.is_empty() && backlog.trained.is_none()))
                        && !backlog.closing
                    {
                        backlog = self
                            .backlog_changed
                            .wait(backlog)
                            .unwrap_or_else(|e| e.into_inner());
                    }
                    let trained = backlog.trained.take();
                    if trained.is_some() {
                        backlog.training = false;
                    }
                    if backlog.queue.is_empty() && trained.is_none() {
                        break;
                    }
                    backlog.busy = true;
                    let n = backlog.queue.len().min(INDEX_BATCH);
                    (backlog.queue.drain(..n).collect(), trained)
                };
                let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    if let Some(t) = trained {
                        self.swap_in(t);
                    }
                    let grown = self.index(batch, threads);
                    if let Some(entry) = grown {
                        self.start_training(s, entry, &cancel);
                    }
                }));
                if done.is_err() {
                    self.distrust("changing the vector indexes panicked");
                }
            }
            cancel.store(true, Ordering::Relaxed);
        });
    }

    /// One batch of the indexer: the adds, class by class (their lists found on up to
    /// `threads` threads when there are many, under the shared lock; then added under the
    /// exclusive one), then the removals. Answers a class whose index wants training, when no
    /// training is under way.
    fn index(&self, batch: Vec<Queued>, threads: usize) -> Option<Arc<ClassEntry>> {
        let mut adds: Vec<(Arc<ClassEntry>, Vec<Numbered>)> = Vec::new();
        let mut removes = Vec::new();
        for q in batch {
            if !q.add {
                removes.push(q);
                continue;
            }
            let Some(vector) = read(&q.entry.pending)
                .get(&q.seq)
                .map(|(_, v)| Arc::clone(v))
            else {
                continue;
            };
            match adds.iter_mut().find(|(e, _)| Arc::ptr_eq(e, &q.entry)) {
                Some((_, items)) => items.push((q.seq, vector)),
                None => adds.push((q.entry, vec![(q.seq, vector)])),
            }
        }
        let mut grown = None;
        for (entry, items) in adds {
            add_many(&entry.index, &items, threads);
            let mut pending = write(&entry.pending);
            for (seq, _) in &items {
                pending.remove(seq);
            }
            drop(pending);
            if read(&entry.index)
                .ivf
                .as_ref()
                .is_some_and(Ivf::wants_training)
            {
                grown = Some(entry);
            }
        }
        for q in removes {
            write(&q.entry.index).remove(q.seq);
        }
        grown.filter(|_| !lock(&self.backlog).training)
    }

    /// Trains `entry`'s index anew on a thread of its own, from a copy of its vectors; the
    /// result goes to the indexer through the backlog ([`Vectors::swap_in`]).
    fn start_training<'s, 'v: 's>(
        &'v self,
        s: &'s std::thread::Scope<'s, '_>,
        entry: Arc<ClassEntry>,
        cancel: &'s AtomicBool,
    ) {
        let Some((dims, seqs, data)) = read(&entry.index)
            .ivf
            .as_ref()
            .map(|i| (i.dims, i.copy()))
            .map(|(d, (s, v))| (d, s, v))
        else {
            return;
        };
        lock(&self.backlog).training = true;
        s.spawn(move || {
            #[cfg(test)]
            while lock(&HOLD_RETRAIN).contains(&self.dir) && !cancel.load(Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let started = std::time::Instant::now();
            let stop = || cancel.load(Ordering::Relaxed);
            let ivf = std::panic::catch_unwind(|| Ivf::build(dims, seqs, data, 1, &stop))
                .ok()
                .flatten();
            let mut backlog = lock(&self.backlog);
            backlog.trained = Some(Trained {
                entry,
                ivf,
                seconds: started.elapsed().as_secs_f64(),
            });
            self.backlog_changed.notify_all();
        });
    }

    /// Swaps in an index trained anew, once it holds what the class's index holds now: the
    /// vectors added since its copy was taken are added to it, those removed since removed.
    /// Only the indexer (this thread) changes an index, so nothing changes meanwhile; searches
    /// go on with the old index until the swap.
    fn swap_in(&self, t: Trained) {
        let Some(mut new) = t.ivf else {
            return;
        };
        {
            let old = read(&t.entry.index);
            let Some(cur) = old.ivf.as_ref().filter(|c| c.dims == new.dims) else {
                return;
            };
            let mut scores = Vec::new();
            for seq in cur.place.keys() {
                if !new.place.contains_key(seq) {
                    if let Some(u) = cur.get(*seq) {
                        let list = new.assign(u, &mut scores);
                        new.insert(list, *seq, u);
                    }
                }
            }
            let gone: Vec<u64> = new
                .place
                .keys()
                .filter(|seq| !cur.place.contains_key(seq))
                .copied()
                .collect();
            for seq in gone {
                new.remove(seq);
            }
        }
        let (n, lists) = (new.len(), new.lists.len());
        write(&t.entry.index).ivf = Some(new);
        self.log.debug(&format!(
            "vector search: trained an index of {n} vectors anew ({lists} lists) in {:.1} s",
            t.seconds
        ));
    }

    /// Waits until the indexer has done everything queued so far, and any training under way
    /// is swapped in (tests: the indexes then hold every committed vector).
    #[cfg(test)]
    pub(crate) fn wait_indexed(&self) {
        let mut backlog = lock(&self.backlog);
        while !backlog.queue.is_empty()
            || backlog.busy
            || backlog.training
            || lock(&self.rebuild).is_some()
        {
            backlog = self
                .backlog_changed
                .wait(backlog)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Waits until the indexer has done everything queued so far (not a training under way).
    #[cfg(test)]
    pub(crate) fn wait_queue(&self) {
        let mut backlog = lock(&self.backlog);
        while !backlog.queue.is_empty() || backlog.busy {
            backlog = self
                .backlog_changed
                .wait(backlog)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The index of a class: its vectors, lists, and how many it was trained on (tests).
    #[cfg(test)]
    pub(crate) fn shape(&self, kind: ObjectKind, class: &str) -> (usize, usize, usize) {
        self.class(kind, class)
            .and_then(|e| {
                read(&e.index)
                    .ivf
                    .as_ref()
                    .map(|i| (i.len(), i.lists.len(), i.trained_on))
            })
            .unwrap_or_default()
    }

    /// Holds the indexer back (`true`) or lets it go on (tests).
    #[cfg(test)]
    pub(crate) fn pause_indexer(&self, paused: bool) {
        lock(&self.backlog).paused = paused;
        self.backlog_changed.notify_all();
    }

    /// How many committed vectors are not yet in an index.
    #[cfg(test)]
    pub(crate) fn pending_count(&self) -> usize {
        read(&self.classes)
            .values()
            .map(|e| read(&e.pending).len())
            .sum()
    }

    /// Tells the indexer to stop once it has done what is queued (the writer has stopped;
    /// the caller then joins the indexer's thread).
    pub(crate) fn close(&self) {
        let mut backlog = lock(&self.backlog);
        backlog.closing = true;
        self.backlog_changed.notify_all();
    }

    /// Says (once) that the indexes may differ from the store until the next open builds them
    /// anew. Searches may then miss vectors, never answer a wrong one (every hit is checked).
    pub(crate) fn distrust(&self, why: &str) {
        if self.trusted.swap(false, Ordering::Relaxed) {
            self.log.warn(&format!(
                "vector search: {why}; the vector indexes may miss vectors until the next open builds them anew"
            ));
        }
    }

    fn class(&self, kind: ObjectKind, class: &str) -> Option<Arc<ClassEntry>> {
        read(&self.classes)
            .get(&(kind_byte(kind), class.to_string()))
            .cloned()
    }

    fn class_or_new(&self, kind: ObjectKind, class: &str) -> Arc<ClassEntry> {
        if let Some(c) = self.class(kind, class) {
            return c;
        }
        let mut classes = write(&self.classes);
        Arc::clone(
            classes
                .entry((kind_byte(kind), class.to_string()))
                .or_insert_with(|| ClassEntry::new(ClassIndex::new())),
        )
    }

    /// The classes of `kind` that had a stored vector at open or got one since.
    pub(crate) fn classes_of(&self, kind: ObjectKind) -> Vec<String> {
        let kb = kind_byte(kind);
        read(&self.classes)
            .keys()
            .filter(|(k, _)| *k == kb)
            .map(|(_, c)| c.clone())
            .collect()
    }
}

/// Adds `items` to `index`: their unit vectors and lists found under the shared lock (on
/// `threads` threads when there are many; searches go on), then put in their lists under the
/// exclusive lock. Only the indexer changes an index, so the lists found stay right. Vectors
/// the index cannot hold are kept as irregular.
fn add_many(index: &RwLock<ClassIndex>, items: &[Numbered], threads: usize) {
    let place = |part: &[Numbered]| -> Vec<Option<(usize, Vec<f32>)>> {
        let c = read(index);
        let mut scores = Vec::new();
        part.iter()
            .map(|(_, v)| {
                let ivf = c.ivf.as_ref().filter(|_| c.takes(v))?;
                let u = unit(v);
                Some((ivf.assign(&u, &mut scores), u))
            })
            .collect()
    };
    let threads = if items.len() >= 256 {
        threads.max(1)
    } else {
        1
    };
    let placed: Vec<Option<(usize, Vec<f32>)>> = if threads == 1 {
        place(items)
    } else {
        let chunk = items.len().div_ceil(threads);
        std::thread::scope(|s| {
            let handles: Vec<_> = items
                .chunks(chunk)
                .map(|part| s.spawn(move || place(part)))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    };
    let mut c = write(index);
    let mut scores = Vec::new();
    for ((seq, v), found) in items.iter().zip(placed) {
        match found {
            Some((list, u)) => {
                if let Some(ivf) = &mut c.ivf {
                    ivf.insert(list, *seq, &u);
                }
            }
            None if c.takes(v) => {
                // The class's first regular vector (a flat index of its length), or one after
                // it in this batch.
                let u = unit(v);
                let ivf = c.ivf.get_or_insert_with(|| Ivf::flat(v.len()));
                let list = ivf.assign(&u, &mut scores);
                ivf.insert(list, *seq, &u);
            }
            None => {
                c.irregular.insert(*seq);
            }
        }
    }
}

/// The kinds and classes that have stored vectors (one look-up per class: each skips past the
/// last possible key of the one before).
fn stored_classes(tx: &ReadTransaction) -> PluginResult<Vec<ClassKey>> {
    let keys = tx.open_table(VECTOR_KEYS).map_err(st)?;
    let mut found = Vec::new();
    let mut from: Vec<u8> = Vec::new();
    loop {
        let next = keys.range(&from[..]..).map_err(st)?.next();
        let Some(item) = next else {
            return Ok(found);
        };
        let (k, _) = item.map_err(st)?;
        let (kind, class, _) = parse_key(k.value())?;
        from = class_range(kind, &class).1;
        from.push(0);
        found.push((kind_byte(kind), class));
    }
}

// ----- reads -------------------------------------------------------------------------------------

/// The vector stored with the current object `kind`/`id`, if any.
pub(crate) fn get_vector(
    tx: &ReadTransaction,
    kind: ObjectKind,
    id: Id,
) -> PluginResult<Option<Vec<f32>>> {
    let vectors = tx.open_table(VECTORS).map_err(st)?;
    let found = vectors.get(&object_key(kind, id)[..]).map_err(st)?;
    found.map(|g| decode(g.value()).map(|(_, v)| v)).transpose()
}

/// The tables a search reads, from one snapshot.
struct Snapshot {
    vectors: redb::ReadOnlyTable<Bytes, Bytes>,
    keys: redb::ReadOnlyTable<Bytes, Bytes>,
    objects: redb::ReadOnlyTable<Bytes, Bytes>,
}

impl Snapshot {
    fn open(tx: &ReadTransaction) -> PluginResult<Self> {
        Ok(Snapshot {
            vectors: tx.open_table(VECTORS).map_err(st)?,
            keys: tx.open_table(VECTOR_KEYS).map_err(st)?,
            objects: tx.open_table(OBJECTS).map_err(st)?,
        })
    }

    /// The object with the vector `seq` of `class`, when that is still its vector: its id.
    fn id_of(&self, kind: ObjectKind, class: &str, seq: u64) -> Option<Id> {
        let found = self.keys.get(&vector_key(kind, class, seq)[..]).ok()??;
        id_of(found.value()).ok()
    }

    /// The stored vector of `kind`/`id` when its sequence number is `seq` (any when `None`).
    fn vector(&self, kind: ObjectKind, id: Id, seq: Option<u64>) -> PluginResult<Option<Vec<f32>>> {
        let Some(found) = self.vectors.get(&object_key(kind, id)[..]).map_err(st)? else {
            return Ok(None);
        };
        let (stored, vector) = decode(found.value())?;
        Ok((seq.is_none_or(|s| s == stored)).then_some(vector))
    }

    fn object(&self, kind: ObjectKind, id: Id) -> PluginResult<Option<StoredObject>> {
        let found = self.objects.get(&object_key(kind, id)[..]).map_err(st)?;
        Ok(found
            .map(|g| Entry::decode_current(g.value()))
            .transpose()?
            .flatten())
    }
}

/// The search's state: its query, the best hits so far, and (when restricted) the allowed
/// objects by id.
struct Search<'a> {
    query: &'a VectorQuery,
    k: usize,
    best: Nearest,
    allowed: Option<&'a HashMap<Id, StoredObject>>,
    snapshot: Snapshot,
}

impl Search<'_> {
    /// Offers the object `id` of `class` with its stored `vector`; answers whether it is within
    /// the query's distance.
    fn offer(&mut self, class: &str, id: Id, vector: &[f32]) -> PluginResult<bool> {
        let distance = cosine_distance(vector, &self.query.vector);
        if distance.is_nan() || distance > self.query.max_distance {
            return Ok(false);
        }
        if self.best.would_keep(id, distance) {
            let object = match self.allowed {
                Some(allowed) => allowed.get(&id).cloned(),
                None => self.snapshot.object(self.query.kind, id)?,
            };
            if let Some(o) = object.filter(|o| o.class.as_str() == class) {
                self.best.offer(id, distance, || o);
            }
        }
        Ok(true)
    }

    /// The class's vectors not yet in its index, compared with the query.
    fn pending(
        &mut self,
        class: &str,
        pending: &RwLock<HashMap<u64, Pending>>,
    ) -> PluginResult<()> {
        let mut near: Vec<(f32, Id, u64, Arc<[f32]>)> = read(pending)
            .iter()
            .filter(|(_, (id, _))| self.allowed.is_none_or(|a| a.contains_key(id)))
            .filter_map(|(seq, (id, v))| {
                let d = cosine_distance(v, &self.query.vector);
                (d <= self.query.max_distance).then(|| (d, *id, *seq, Arc::clone(v)))
            })
            .collect();
        near.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        for (d, id, seq, v) in near {
            if !self.best.would_keep(id, d) {
                break;
            }
            // Still the object's vector in this snapshot (a pending one may be newer or gone).
            if self
                .snapshot
                .vector(self.query.kind, id, Some(seq))?
                .is_some()
            {
                self.offer(class, id, &v)?;
            }
        }
        Ok(())
    }

    /// Every vector of `class`, compared with the query.
    fn exact_class(&mut self, class: &str) -> PluginResult<()> {
        let kind = self.query.kind;
        let (lo, hi) = class_range(kind, class);
        let mut found = Vec::new();
        for item in self.snapshot.keys.range(&lo[..]..=&hi[..]).map_err(st)? {
            let (k, v) = item.map_err(st)?;
            let (_, _, seq) = parse_key(k.value())?;
            found.push((seq, id_of(v.value())?));
        }
        for (seq, id) in found {
            if self.allowed.is_some_and(|a| !a.contains_key(&id)) {
                continue;
            }
            if let Some(v) = self.snapshot.vector(kind, id, Some(seq))? {
                self.offer(class, id, &v)?;
            }
        }
        Ok(())
    }

    /// The class's index searched for the query: the [`nprobe`] lists whose centroids are
    /// nearest, their candidates checked nearest first (those the allow-list, when there is
    /// one, does not hold skipped) until no further one can be among the `k` best (or within
    /// the query's distance); when the candidates run out first, four times as many lists
    /// more are probed, up to every list. Without an allow-list, the candidates are the
    /// [`RESCORE_MIN`] (or more) best by their `i8` codes, rescored with their `f32` copies.
    fn approximate(&mut self, class: &str, ivf: &Ivf) -> PluginResult<()> {
        if ivf.len() == 0 {
            return Ok(());
        }
        let u = unit(&self.query.vector);
        let mut code = Vec::with_capacity(ivf.code_len);
        quantize(&u, ivf.code_len, &mut code);
        let mut lists = ivf.ranked_lists(&u);
        let (mut probed, mut more) = (0usize, nprobe(lists.len()));
        let mut candidates = Vec::new();
        let mut coded = Vec::new();
        let mut scores = Vec::new();
        let mut code_scores = Vec::new();
        let mut rescore = RESCORE_MIN.max(self.k.saturating_mul(RESCORE_MIN / 10));
        loop {
            let end = (probed + more).min(lists.len());
            if end < lists.len() {
                lists[probed..]
                    .select_nth_unstable_by(end - probed - 1, |a, b| b.0.total_cmp(&a.0));
            }
            candidates.clear();
            if self.allowed.is_none() {
                // Unrestricted: the codes choose which candidates are rescored with their
                // `f32` copies (restricted searches skip most candidates: they rescore all).
                coded.clear();
                for &(_, list) in &lists[probed..end] {
                    ivf.scan_codes(list as usize, &code, &mut code_scores, &mut coded);
                }
                if coded.len() > rescore {
                    coded.select_nth_unstable_by(rescore - 1, |a, b| b.0.cmp(&a.0));
                    coded.truncate(rescore);
                }
                for &(_, list, at) in &coded {
                    candidates.push(ivf.rescore(list, at, &u));
                }
            } else {
                for &(_, list) in &lists[probed..end] {
                    ivf.scan(list as usize, &u, &mut scores, &mut candidates);
                }
            }
            probed = end;
            if self.walk(class, &mut candidates)? || probed == lists.len() {
                return Ok(());
            }
            more = more.saturating_mul(4);
            rescore = rescore.saturating_mul(4);
        }
    }

    /// Offers the `candidates` (distance from the index, sequence number) nearest first, each
    /// checked in the snapshot; answers `true` once no further one can be kept, `false` when
    /// they ran out first. Sorts them a part at a time, as far as it gets.
    fn walk(&mut self, class: &str, candidates: &mut [(f32, u64)]) -> PluginResult<bool> {
        let kind = self.query.kind;
        let by_distance = |a: &(f32, u64), b: &(f32, u64)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
        let (mut start, mut part) = (0usize, self.k.saturating_add(self.k / 2).saturating_add(8));
        while start < candidates.len() {
            let len = candidates.len();
            let end = start.saturating_add(part).min(len);
            let rest = &mut candidates[start..];
            if end < len {
                rest.select_nth_unstable_by(end - start - 1, by_distance);
            }
            rest[..end - start].sort_unstable_by(by_distance);
            for &(d, seq) in &candidates[start..end] {
                // Nearest first: once one cannot be kept (even `SLACK` nearer and before every
                // id), none after it can.
                if d - SLACK > self.query.max_distance
                    || !self.best.would_keep(Id([0; 16]), d - SLACK)
                {
                    return Ok(true);
                }
                let Some(id) = self.snapshot.id_of(kind, class, seq) else {
                    continue;
                };
                if self.allowed.is_some_and(|a| !a.contains_key(&id)) {
                    continue;
                }
                if let Some(v) = self.snapshot.vector(kind, id, Some(seq))? {
                    self.offer(class, id, &v)?;
                }
            }
            start = end;
            part = part.saturating_mul(4);
        }
        Ok(false)
    }
}

/// The query's `k` nearest among the vectors of `classes` (and of the objects in `allowed`,
/// when given: the allow-list of a restricted query), through each class's index where it can
/// answer, else exactly.
pub(crate) fn nearest(
    vectors: &Vectors,
    tx: &ReadTransaction,
    query: &VectorQuery,
    classes: &[String],
    allowed: Option<&HashMap<Id, StoredObject>>,
) -> PluginResult<Vec<VectorHit>> {
    let k = usize::try_from(query.k).unwrap_or(usize::MAX);
    let mut search = Search {
        query,
        k,
        best: Nearest::new(k),
        allowed,
        snapshot: Snapshot::open(tx)?,
    };
    for class in classes {
        let Some(entry) = vectors.class(query.kind, class) else {
            continue;
        };
        // Pending first: a vector the indexer moves meanwhile is then found in the index.
        // While the indexes are built after open, every class is searched exactly.
        let searchable = !vectors.rebuilding.load(Ordering::Acquire)
            && read(&entry.index).searchable(&query.vector).is_some();
        if searchable {
            search.pending(class, &entry.pending)?;
        }
        let index = read(&entry.index);
        let answered = match index.searchable(&query.vector) {
            Some(ivf) if searchable => {
                search.approximate(class, ivf)?;
                true
            }
            _ => false,
        };
        drop(index);
        if !answered {
            search.exact_class(class)?;
        }
    }
    Ok(search.best.into_hits())
}

/// The query's `k` nearest among `allowed` (the objects a restricted query allows, from the
/// snapshot `tx`), each compared with the query.
pub(crate) fn exact_among(
    tx: &ReadTransaction,
    query: &VectorQuery,
    allowed: Vec<StoredObject>,
) -> PluginResult<Vec<VectorHit>> {
    let k = usize::try_from(query.k).unwrap_or(usize::MAX);
    let vectors = tx.open_table(VECTORS).map_err(st)?;
    let mut best = Nearest::new(k);
    for o in allowed {
        let Some(found) = vectors.get(&object_key(o.kind, o.id)[..]).map_err(st)? else {
            continue;
        };
        let (_, vector) = decode(found.value())?;
        let distance = cosine_distance(&vector, &query.vector);
        if distance <= query.max_distance {
            best.offer(o.id, distance, || o);
        }
    }
    Ok(best.into_hits())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{
        create_object_with_vector, delete_object, update_object, update_object_with_vector, Store,
        FORMAT_VERSION,
    };
    use abi_stable::std_types::{RString, RVec};
    use futures::executor::block_on;
    use weft_plugin_api::vector::exact_nearest;
    use weft_plugin_api::{now_ms, HostLogger};

    const DIMS: usize = 8;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn vector(&mut self) -> Vec<f32> {
            (0..DIMS)
                .map(|_| (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
                .collect()
        }
    }

    fn log() -> PluginLogger {
        PluginLogger::new(HostLogger::discard(), "embedded")
    }

    fn temp_dir(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "weft-embedded-vectors-{name}-{}-{}",
            std::process::id(),
            now_ms()
        ))
    }

    const OWNERS: [Id; 3] = [Id([1; 16]), Id([2; 16]), Id([3; 16])];

    fn object(i: usize, kind: ObjectKind, class: &str) -> StoredObject {
        StoredObject {
            kind,
            id: Id::random(),
            class: class.into(),
            context: RString::new(),
            owner: OWNERS[i % 3],
            created_ms: i as i64,
            updated_ms: i as i64,
            properties_json: format!(r#"{{"n":{i}}}"#).into(),
        }
    }

    /// What the store should hold: every current object with its vector (empty: none).
    type Held = Vec<(StoredObject, Vec<f32>)>;

    fn create(store: &Store, held: &mut Held, o: StoredObject, v: Vec<f32>) {
        let (o2, v2) = (o.clone(), v.clone());
        block_on(store.submit(move |tx| create_object_with_vector(tx, o2, v2)))
            .unwrap()
            .unwrap();
        held.push((o, v));
    }

    /// Creates `n` Things of classes City and Town and `n / 10` Actions, with vectors (every
    /// 17th none); then updates every 5th with a new vector, every 7th without one, and deletes
    /// every 11th.
    fn fill(store: &Store, held: &mut Held, rng: &mut Rng, n: usize) {
        let start = held.len();
        for i in 0..n {
            let class = if i.is_multiple_of(3) { "Town" } else { "City" };
            let v = if i.is_multiple_of(17) {
                vec![]
            } else {
                rng.vector()
            };
            create(store, held, object(i, ObjectKind::Thing, class), v);
            if i.is_multiple_of(10) {
                let v = rng.vector();
                create(store, held, object(i, ObjectKind::Action, "Visit"), v);
            }
        }
        let (mut i, mut n) = (start, 0usize);
        while i < held.len() {
            let (o, _) = held[i].clone();
            n += 1;
            if n.is_multiple_of(11) {
                block_on(store.submit(move |tx| delete_object(tx, o.kind, o.id)))
                    .unwrap()
                    .unwrap();
                held.remove(i);
                continue;
            }
            if n.is_multiple_of(5) {
                let v = rng.vector();
                let (o2, v2) = (o.clone(), v.clone());
                block_on(store.submit(move |tx| update_object_with_vector(tx, o2, None, v2)))
                    .unwrap()
                    .unwrap();
                held[i].1 = v;
            } else if n.is_multiple_of(7) {
                let o2 = o.clone();
                block_on(store.submit(move |tx| update_object(tx, o2, None)))
                    .unwrap()
                    .unwrap();
                held[i].1 = vec![];
            }
            i += 1;
        }
    }

    fn query(kind: ObjectKind, class: &str, v: Vec<f32>, k: u64) -> VectorQuery {
        VectorQuery {
            kind,
            class: class.into(),
            owners: RVec::new(),
            filter_json: RString::new(),
            vector: v.into(),
            k,
            max_distance: 2.0,
        }
    }

    /// `got` against the exact answer over the objects of `held` that `allowed` lets through:
    /// only those, true distances, nearest first, as many; answers the recall.
    fn judge(
        got: &[VectorHit],
        q: &VectorQuery,
        held: &Held,
        allowed: impl Fn(&StoredObject) -> bool,
    ) -> f64 {
        let pass: Vec<_> = held.iter().filter(|(o, _)| allowed(o)).collect();
        let want = exact_nearest(
            pass.iter().map(|(o, v)| (o, v.as_slice())),
            &q.vector,
            q.k as usize,
            q.max_distance,
        );
        assert_eq!(got.len(), want.len(), "{q:?}");
        for (i, hit) in got.iter().enumerate() {
            let (o, v) = pass
                .iter()
                .find(|(o, _)| o.id == hit.object.id)
                .unwrap_or_else(|| panic!("hit {i} is not allowed or has no vector"));
            assert_eq!(&hit.object, o);
            assert!((hit.distance - cosine_distance(v, &q.vector)).abs() < 1e-6);
            if i > 0 {
                assert!(got[i - 1].distance <= hit.distance);
            }
        }
        if want.is_empty() {
            return 1.0;
        }
        let found = want
            .iter()
            .filter(|w| got.iter().any(|h| h.object.id == w.object.id))
            .count();
        found as f64 / want.len() as f64
    }

    /// Questions of every shape (kind, one class or all, owners, a filter), each answered like
    /// the exact search (recall at least 0.9 over all), through the vector indexes and, with
    /// `exact_max` 0, through them with a filter too; `get_vector` answers every held vector.
    fn check(store: &Store, held: &Held, rng: &mut Rng) {
        for (o, v) in held {
            let got = store.get_vector(o.kind, o.id).unwrap();
            assert_eq!(got, (!v.is_empty()).then(|| v.clone()));
        }
        let (mut recall, mut n) = (0.0, 0.0);
        for round in 0..24 {
            let (kind, class) = [
                (ObjectKind::Thing, ""),
                (ObjectKind::Thing, "City"),
                (ObjectKind::Thing, "Town"),
                (ObjectKind::Action, ""),
            ][round % 4];
            let mut q = query(kind, class, rng.vector(), 10);
            let restricted = round % 3;
            if restricted == 1 {
                q.owners = vec![OWNERS[1]].into();
            } else if restricted == 2 {
                q.filter_json = r#"{"operator":"GreaterThan","path":["n"],"valueInt":40}"#.into();
            }
            let allowed = |o: &StoredObject| {
                o.kind == kind
                    && (class.is_empty() || o.class.as_str() == class)
                    && (restricted != 1 || o.owner == OWNERS[1])
                    && (restricted != 2 || o.properties()["n"].as_i64().is_some_and(|n| n > 40))
            };
            for exact_max in [EXACT_SEARCH_MAX, 0] {
                let got = store.search_vectors_with(&q, exact_max).unwrap();
                recall += judge(&got, &q, held, allowed);
                n += 1.0;
            }
        }
        assert!(recall / n >= 0.9, "recall {}", recall / n);
    }

    /// While the indexer is behind (paused), new, updated and deleted vectors are committed
    /// and acknowledged: searches find them (and never a replaced or deleted one) as the exact
    /// search does; once it has caught up nothing is pending, and they still do.
    #[test]
    fn searches_while_the_indexer_is_behind_answer_every_acknowledged_write() {
        let dir = temp_dir("behind");
        let store = Store::open(&dir, log()).unwrap();
        let (mut held, mut rng) = (Held::new(), Rng(0x5eed_0001));
        fill(&store, &mut held, &mut rng, 300);
        store.vectors().wait_indexed();
        assert_eq!(store.vectors().pending_count(), 0);
        store.vectors().pause_indexer(true);
        // Indexed objects changed while the indexer waits: new vectors for some, others deleted.
        for (o, held_v) in held.iter_mut().take(40) {
            let v = rng.vector();
            let (o2, v2) = (o.clone(), v.clone());
            block_on(store.submit(move |tx| update_object_with_vector(tx, o2, None, v2)))
                .unwrap()
                .unwrap();
            *held_v = v;
        }
        for _ in 0..20 {
            let (o, _) = held.remove(50);
            block_on(store.submit(move |tx| delete_object(tx, o.kind, o.id)))
                .unwrap()
                .unwrap();
        }
        fill(&store, &mut held, &mut rng, 200);
        let behind = store.vectors().pending_count();
        assert!(behind > 200, "only {behind} vectors pending");
        check(&store, &held, &mut rng);
        // The queries that see pending vectors answer exactly: ask for every City.
        let cities = held
            .iter()
            .filter(|(o, v)| {
                o.class.as_str() == "City" && !v.is_empty() && o.kind == ObjectKind::Thing
            })
            .count();
        let q = query(ObjectKind::Thing, "City", rng.vector(), cities as u64);
        let got = store.search_vectors(&q).unwrap();
        assert_eq!(got.len(), cities, "every City with a vector, once");
        store.vectors().pause_indexer(false);
        store.vectors().wait_indexed();
        assert_eq!(store.vectors().pending_count(), 0);
        check(&store, &held, &mut rng);
        drop(store);
        let store = Store::open(&dir, log()).unwrap();
        check(&store, &held, &mut rng);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// After an open, searches are exact until the indexes are built from the store, writes
    /// meanwhile are found too, and once it is done the indexes hold everything.
    #[test]
    fn searches_are_exact_while_the_indexes_are_rebuilt_after_open() {
        let dir = temp_dir("rebuilding");
        let (mut held, mut rng) = (Held::new(), Rng(0x5eed_0002));
        {
            let store = Store::open(&dir, log()).unwrap();
            fill(&store, &mut held, &mut rng, 300);
        }
        let data_dir = std::fs::canonicalize(&dir).unwrap();
        lock(&HOLD_REBUILD).push(data_dir.clone());
        let store = Store::open(&dir, log()).unwrap();
        assert!(store.vectors().rebuilding.load(Ordering::Acquire));
        let empty: usize = read(&store.vectors().classes)
            .values()
            .map(|e| read(&e.index).size())
            .sum();
        assert_eq!(empty, 0, "nothing is indexed before the rebuild");
        check(&store, &held, &mut rng);
        fill(&store, &mut held, &mut rng, 100);
        check(&store, &held, &mut rng);
        let things = held
            .iter()
            .filter(|(o, v)| o.kind == ObjectKind::Thing && !v.is_empty())
            .count();
        let q = query(ObjectKind::Thing, "", rng.vector(), things as u64);
        assert_eq!(store.search_vectors(&q).unwrap().len(), things);
        lock(&HOLD_REBUILD).retain(|d| d != &data_dir);
        let built = store.vectors_at_open();
        assert!(built > 0 && built <= vector_count(&held), "{built}");
        assert!(!store.vectors().rebuilding.load(Ordering::Acquire));
        store.vectors().wait_indexed();
        assert_eq!(store.vectors().pending_count(), 0);
        check(&store, &held, &mut rng);
        drop(store);
        let store = Store::open(&dir, log()).unwrap();
        assert_eq!(store.vectors_at_open(), vector_count(&held));
        check(&store, &held, &mut rng);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn vector_count(held: &Held) -> usize {
        held.iter().filter(|(_, v)| !v.is_empty()).count()
    }

    /// Vectors survive closing and reopening, their indexes built anew from the store at each
    /// open (nothing is saved); the `vectors` directory of an older version's index files is
    /// removed at open.
    #[test]
    fn vectors_survive_reopening_and_their_indexes_are_built_at_open() {
        let dir = temp_dir("reopen");
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let mut held = Held::new();
        let store = Store::open(&dir, log()).unwrap();
        assert_eq!(store.vectors_at_open(), 0);
        fill(&store, &mut held, &mut rng, 300);
        check(&store, &held, &mut rng);
        drop(store);
        let vectors_dir = dir.join("vectors");
        assert!(
            !vectors_dir.exists(),
            "nothing is saved beside the database"
        );

        let store = Store::open(&dir, log()).unwrap();
        assert_eq!(store.vectors_at_open(), vector_count(&held));
        check(&store, &held, &mut rng);
        fill(&store, &mut held, &mut rng, 60);
        drop(store);

        // An older version's index files: removed, the indexes built from the store.
        std::fs::create_dir_all(&vectors_dir).unwrap();
        std::fs::write(vectors_dir.join("manifest.json"), r#"{"format":2}"#).unwrap();
        std::fs::write(vectors_dir.join("thing-City-0.usearch"), b"old").unwrap();
        let store = Store::open(&dir, log()).unwrap();
        assert!(!vectors_dir.exists(), "removed at open");
        assert_eq!(store.vectors_at_open(), vector_count(&held));
        check(&store, &held, &mut rng);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Vectors an index cannot hold (zero, another length) make their class searched
    /// exactly, and a query it cannot search (zero, another length) is answered exactly: the
    /// reference's answers to the last tie.
    #[test]
    fn irregular_vectors_and_queries_are_answered_exactly() {
        let dir = temp_dir("irregular");
        let mut rng = Rng(0x0fed_cba9_8765_4321);
        let mut held = Held::new();
        let store = Store::open(&dir, log()).unwrap();
        for i in 0..60usize {
            let v = match i % 10 {
                2 => vec![0.0; DIMS],
                4 => vec![1.0, 2.0, 3.0],
                _ => rng.vector(),
            };
            let class = if i.is_multiple_of(2) { "Odd" } else { "Plain" };
            create(&store, &mut held, object(i, ObjectKind::Thing, class), v);
        }
        for round in 0..3 {
            for v in [vec![0.0; DIMS], vec![1.0, 0.5], rng.vector(), vec![]] {
                let class = ["", "Odd", "Plain"][round];
                let q = query(ObjectKind::Thing, class, v, 25);
                let got = store.search_vectors(&q).unwrap();
                let want = exact_nearest(
                    held.iter()
                        .filter(|(o, _)| class.is_empty() || o.class.as_str() == class)
                        .map(|(o, v)| (o, v.as_slice())),
                    &q.vector,
                    25,
                    2.0,
                );
                if class == "Plain" && q.vector.len() == DIMS && q.vector.iter().any(|x| *x != 0.0)
                {
                    // Through the index: by recall.
                    let r = judge(&got, &q, &held, |o| o.class.as_str() == "Plain");
                    assert!(r >= 0.9, "recall {r}");
                } else {
                    assert_eq!(got, want, "{q:?}");
                }
            }
        }
        drop(store);
        // Irregular vectors are found again by the indexes built at open.
        let store = Store::open(&dir, log()).unwrap();
        assert_eq!(store.vectors_at_open(), 60);
        let q = query(ObjectKind::Thing, "Odd", vec![1.0, 2.0, 3.0], 10);
        let got = store.search_vectors(&q).unwrap();
        assert!(got.len() == 10 && got[0].distance < 1e-6, "{got:?}");
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The `i8` code kernels (AVX2 where the CPU has it, and the portable one) answer the exact
    /// integer dot products, and a code is each component times 127, rounded, zero-padded.
    #[test]
    fn code_dot_products_are_exact() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for len in [32, 64, 96] {
            let byte = |rng: &mut Rng| ((rng.next() % 255) as i32 - 127) as i8;
            let q: Vec<i8> = (0..len).map(|_| byte(&mut rng)).collect();
            let rows: Vec<i8> = (0..len * 37).map(|_| byte(&mut rng)).collect();
            let want: Vec<i32> = rows
                .chunks_exact(len)
                .map(|r| q.iter().zip(r).map(|(a, b)| *a as i32 * *b as i32).sum())
                .collect();
            let (mut fast, mut portable) = (Vec::new(), Vec::new());
            code_dots(&q, &rows, &mut fast);
            code_dots_with(&q, &rows, &mut portable);
            assert_eq!(fast, want, "code length {len}");
            assert_eq!(portable, want, "code length {len}");
        }
        let mut code = Vec::new();
        quantize(&[1.0, -1.0, 0.5, -0.004, 0.0], 32, &mut code);
        assert_eq!(&code[..5], &[127, -127, 64, -1, 0]);
        assert_eq!(code.len(), 32);
        assert!(code[5..].iter().all(|c| *c == 0));
    }

    /// Opening a store logs its vector index and the distance kernel this CPU runs once.
    #[test]
    fn opening_logs_the_distance_kernel() {
        static LINES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
        extern "C" fn capture(
            _: weft_plugin_api::LogLevel,
            _: abi_stable::std_types::RStr<'_>,
            message: abi_stable::std_types::RStr<'_>,
        ) {
            if let Ok(mut lines) = LINES.lock() {
                lines.push(message.to_string());
            }
        }
        let dir = temp_dir("log");
        let host = HostLogger { log: capture };
        drop(Store::open(&dir, PluginLogger::new(host, "embedded")).unwrap());
        let lines = LINES.lock().unwrap();
        let kernel_lines: Vec<_> = lines
            .iter()
            .filter(|l| l.contains("distance kernel"))
            .collect();
        assert_eq!(kernel_lines.len(), 1, "{lines:?}");
        assert!(kernel_lines[0].contains(kernel()));
        println!("{}", kernel_lines[0]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A format version 5 file (no vector tables) opens, holds no vectors, and takes them.
    #[test]
    fn a_format_5_file_opens_without_vectors() {
        let dir = temp_dir("format5");
        let mut rng = Rng(0x5555_aaaa_5555_aaab);
        let mut held = Held::new();
        let store = Store::open(&dir, log()).unwrap();
        create(
            &store,
            &mut held,
            object(1, ObjectKind::Thing, "City"),
            rng.vector(),
        );
        drop(store);
        {
            let db = Database::create(dir.join("weft.redb")).unwrap();
            let tx = db.begin_write().unwrap();
            tx.delete_table(VECTORS).unwrap();
            tx.delete_table(VECTOR_KEYS).unwrap();
            {
                let mut meta = tx.open_table(META).unwrap();
                meta.remove(SEQ_KEY).unwrap();
                meta.insert("format_version", 5).unwrap();
            }
            tx.commit().unwrap();
        }
        let store = Store::open(&dir, log()).unwrap();
        let o = held[0].0.clone();
        assert_eq!(store.get_vector(o.kind, o.id).unwrap(), None);
        assert!(store.get_object(o.kind, o.id).unwrap().is_some());
        let q = query(ObjectKind::Thing, "", rng.vector(), 10);
        assert!(store.search_vectors(&q).unwrap().is_empty());
        let v = rng.vector();
        let o2 = o.clone();
        let v2 = v.clone();
        block_on(store.submit(move |tx| update_object_with_vector(tx, o2, None, v2)))
            .unwrap()
            .unwrap();
        assert_eq!(store.get_vector(o.kind, o.id).unwrap(), Some(v));
        drop(store);
        let db = Database::create(dir.join("weft.redb")).unwrap();
        let tx = db.begin_read().unwrap();
        let meta = tx.open_table(META).unwrap();
        let version = meta.get("format_version").unwrap().map(|g| g.value());
        assert_eq!(version, Some(FORMAT_VERSION));
        const { assert!(FORMAT_VERSION > 5) };
        drop((meta, tx, db));
        let _ = std::fs::remove_dir_all(&dir);
    }

    const CONE_DIMS: usize = 50;

    /// A vector like an object's (a weighted mean of word vectors): near a direction they all
    /// share, nearer one of 24 topics, plus noise; 50 dimensions.
    fn cone(rng: &mut Rng) -> Vec<f32> {
        let topic = (rng.next() % 24) as usize;
        let mut t = Rng(0x70b1_c000 + topic as u64);
        (0..CONE_DIMS)
            .map(|_| {
                let noise = (rng.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0;
                let pull = (t.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0;
                1.0 + 0.4 * pull + 0.3 * noise
            })
            .collect()
    }

    /// A query like a word's vector: any direction, far from the cone.
    fn direction(rng: &mut Rng) -> Vec<f32> {
        (0..CONE_DIMS)
            .map(|_| (rng.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
            .collect()
    }

    /// Creates `n` Things of class `class` with cone vectors, `batch` a transaction.
    fn fill_cone(store: &Store, held: &mut Held, rng: &mut Rng, class: &str, n: usize) {
        let mut left = n;
        while left > 0 {
            let items: Vec<(StoredObject, Vec<f32>)> = (0..left.min(500))
                .map(|i| (object(held.len() + i, ObjectKind::Thing, class), cone(rng)))
                .collect();
            left -= items.len();
            held.extend(items.iter().cloned());
            block_on(store.submit(move |tx| {
                for (o, v) in items {
                    if let Err(e) = create_object_with_vector(tx, o, v)? {
                        return Ok(Err(e));
                    }
                }
                Ok(Ok(()))
            }))
            .unwrap()
            .unwrap();
        }
    }

    /// A trained index (cone vectors, queries far from them) finds at least 0.95 of the exact
    /// 10 nearest probing its first `nprobe` lists alone; through the store (its candidates
    /// checked, more lists probed when they run out) too, after an open builds it anew too.
    #[test]
    fn a_trained_index_finds_the_exact_nearest() {
        let mut rng = Rng(0x1f1f_0000_2222_3333);
        let n = 6_000;
        let mut data = Vec::with_capacity(n * CONE_DIMS);
        for _ in 0..n {
            data.extend(unit(&cone(&mut rng)));
        }
        let seqs: Vec<u64> = (1..=n as u64).collect();
        let ivf = Ivf::build(CONE_DIMS, seqs, data.clone(), 2, &|| false).unwrap();
        assert_eq!(ivf.len(), n);
        assert_eq!(ivf.trained_on, n);
        assert!(ivf.lists.len() > 100, "{} lists", ivf.lists.len());
        let (mut found, mut scanned) = (0usize, 0usize);
        let queries = 100;
        for _ in 0..queries {
            let u = unit(&direction(&mut rng));
            let mut exact = Vec::new();
            dots(&u, &data, &mut exact);
            let mut want: Vec<u64> = (1..=n as u64).collect();
            want.sort_by(|a, b| exact[*b as usize - 1].total_cmp(&exact[*a as usize - 1]));
            want.truncate(10);
            let mut lists = ivf.ranked_lists(&u);
            lists.sort_by(|a, b| b.0.total_cmp(&a.0));
            let (mut scores, mut candidates) = (Vec::new(), Vec::new());
            for &(_, l) in &lists[..nprobe(lists.len())] {
                ivf.scan(l as usize, &u, &mut scores, &mut candidates);
            }
            scanned += candidates.len();
            candidates.sort_by(|a, b| a.0.total_cmp(&b.0));
            found += want
                .iter()
                .filter(|w| candidates.iter().take(10).any(|c| c.1 == **w))
                .count();
        }
        let recall = found as f64 / (queries * 10) as f64;
        println!(
            "IVF of {n}: {} lists, probing {}: recall@10 {recall:.3}, {:.0} vectors scanned a query",
            ivf.lists.len(),
            nprobe(ivf.lists.len()),
            scanned as f64 / queries as f64
        );
        assert!(recall >= 0.95, "recall {recall}");

        // Through the store.
        let dir = temp_dir("trained");
        let mut held = Held::new();
        let store = Store::open(&dir, log()).unwrap();
        fill_cone(&store, &mut held, &mut rng, "Cone", 6_000);
        store.vectors().wait_indexed();
        let (len, lists, trained_on) = store.vectors().shape(ObjectKind::Thing, "Cone");
        assert_eq!(len, 6_000);
        assert!(
            lists > 1 && trained_on >= TRAIN_MIN,
            "{lists} lists, trained on {trained_on}"
        );
        let through_store = |store: &Store, rng: &mut Rng| {
            let mut recall = 0.0;
            for round in 0..40 {
                let mut q = query(ObjectKind::Thing, "Cone", direction(rng), 10);
                if round % 4 == 3 {
                    // Restricted, above the exact switch point: through the index, skipping.
                    q.owners = vec![OWNERS[1]].into();
                    let got = store.search_vectors_with(&q, 0).unwrap();
                    recall += judge(&got, &q, &held, |o| o.owner == OWNERS[1]);
                } else {
                    let got = store.search_vectors(&q).unwrap();
                    recall += judge(&got, &q, &held, |_| true);
                }
            }
            recall / 40.0
        };
        let recall = through_store(&store, &mut rng);
        assert!(recall >= 0.95, "recall {recall}");
        drop(store);
        let store = Store::open(&dir, log()).unwrap();
        assert_eq!(store.vectors_at_open(), 6_000);
        let (_, lists, trained_on) = store.vectors().shape(ObjectKind::Thing, "Cone");
        assert!(lists > 1 && trained_on == 6_000, "built trained at open");
        let recall = through_store(&store, &mut rng);
        assert!(recall >= 0.95, "recall {recall}");
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// While a class's index is trained (anew), vectors are added, replaced and deleted (and
    /// indexed in the old index meanwhile): every acknowledged one is found at once, and once
    /// the new index is swapped in it holds exactly the class's current vectors, each found by
    /// searching for itself, no replaced or deleted one ever answered.
    #[test]
    fn a_training_under_writes_loses_no_acknowledged_vector() {
        let dir = temp_dir("retrain");
        let mut rng = Rng(0x3e3e_4444_5555_6666);
        let mut held = Held::new();
        let store = Store::open(&dir, log()).unwrap();
        let data_dir = std::fs::canonicalize(&dir).unwrap();
        fill_cone(&store, &mut held, &mut rng, "Cone", TRAIN_MIN - 100);
        store.vectors().wait_indexed();
        assert_eq!(
            store.vectors().shape(ObjectKind::Thing, "Cone").2,
            0,
            "flat"
        );
        lock(&HOLD_RETRAIN).push(data_dir.clone());
        // Past the training threshold: a training starts and waits with its copy.
        fill_cone(&store, &mut held, &mut rng, "Cone", 200);
        store.vectors().wait_queue();
        assert!(
            lock(&store.vectors().backlog).training,
            "a training is under way"
        );
        let found_itself = |store: &Store, o: &StoredObject, v: &[f32]| {
            let q = query(ObjectKind::Thing, "Cone", v.to_vec(), 1);
            let got = store.search_vectors(&q).unwrap();
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].object.id, o.id, "found itself");
            assert!(got[0].distance < 1e-6);
        };
        for round in 0..6 {
            // New vectors for some, deletions, creations; each found once acknowledged.
            for i in 0..50 {
                let at = (round * 50 + i) * 7 % held.len();
                let (o, _) = held[at].clone();
                let v = cone(&mut rng);
                let (o2, v2) = (o.clone(), v.clone());
                block_on(store.submit(move |tx| update_object_with_vector(tx, o2, None, v2)))
                    .unwrap()
                    .unwrap();
                held[at].1 = v.clone();
                found_itself(&store, &o, &v);
            }
            for i in 0..30 {
                let at = (round * 30 + i) * 13 % held.len();
                let (o, _) = held.remove(at);
                block_on(store.submit(move |tx| delete_object(tx, o.kind, o.id)))
                    .unwrap()
                    .unwrap();
            }
            let before = held.len();
            fill_cone(&store, &mut held, &mut rng, "Cone", 100);
            for (o, v) in &held[before..before + 5] {
                found_itself(&store, o, v);
            }
            if round % 2 == 1 {
                // Indexed into the old index, the training still held.
                store.vectors().wait_queue();
                assert_eq!(store.vectors().pending_count(), 0);
            }
            let q = query(ObjectKind::Thing, "Cone", direction(&mut rng), 10);
            let got = store.search_vectors(&q).unwrap();
            judge(&got, &q, &held, |_| true);
        }
        assert!(lock(&store.vectors().backlog).training, "still held");
        lock(&HOLD_RETRAIN).retain(|d| d != &data_dir);
        store.vectors().wait_indexed();
        assert_eq!(store.vectors().pending_count(), 0);
        let (len, lists, trained_on) = store.vectors().shape(ObjectKind::Thing, "Cone");
        assert!(
            lists > 1 && trained_on >= TRAIN_MIN,
            "swapped in: {lists} lists"
        );
        assert_eq!(len, held.len(), "exactly the current vectors");
        for (o, v) in &held {
            found_itself(&store, o, v);
        }
        let mut recall = 0.0;
        for _ in 0..20 {
            let q = query(ObjectKind::Thing, "Cone", direction(&mut rng), 10);
            let got = store.search_vectors(&q).unwrap();
            recall += judge(&got, &q, &held, |_| true);
        }
        assert!(recall / 20.0 >= 0.95, "recall {}", recall / 20.0);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The list a vector is removed from keeps every other one findable: removals swap the
    /// list's last vector into the place, and the places follow.
    #[test]
    fn removals_keep_the_places_right() {
        let mut rng = Rng(0x9a9a_1111_2222_3333);
        let mut ivf = Ivf::flat(CONE_DIMS);
        let vs: Vec<Vec<f32>> = (0..300).map(|_| unit(&cone(&mut rng))).collect();
        for (i, v) in vs.iter().enumerate() {
            ivf.insert(0, i as u64, v);
        }
        for i in (0..300).step_by(3) {
            assert!(ivf.remove(i as u64));
            assert!(!ivf.remove(i as u64));
        }
        assert_eq!(ivf.len(), 200);
        for (i, v) in vs.iter().enumerate() {
            assert_eq!(ivf.get(i as u64), (i % 3 != 0).then_some(v.as_slice()));
        }
    }
}
