//! Exact (exhaustive) cosine search over a row-major matrix of unit vectors.
//!
//! Queries are normalised and multiplied with blocks of the matrix by `matrixmultiply`'s SGEMM
//! (runtime-detected AVX/FMA/AVX-512 kernels), `QUERY_BLOCK` queries by `ROW_BLOCK` rows at a
//! time so the score block stays in L2; each query keeps a size-k min-heap, and a block of scores
//! is only looked at element by element where it beats the current k-th best. The rows are split
//! into one contiguous range per thread and the per-thread heaps are merged at the end.

use std::cmp::Ordering;

/// One search result: a row of the matrix and its cosine similarity to the query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbour {
    /// Row (word index) in the matrix.
    pub row: u32,
    /// Cosine similarity in [-1, 1]; the distance the plugin reports is `1 - similarity`.
    pub similarity: f32,
}

/// Queries multiplied at once (rows of the score block).
const QUERY_BLOCK: usize = 64;
/// Matrix rows multiplied at once (columns of the score block): 64 × 2048 × 4 B = 512 KiB.
const ROW_BLOCK: usize = 2048;
/// Below this many query × row products a second thread costs more than it saves.
const MIN_WORK_PER_THREAD: usize = 1 << 17;
/// Up to this many queries, dot products row by row beat SGEMM (whose packing and micro-kernel
/// are made for many queries).
const DIRECT_MAX_QUERIES: usize = 4;

/// A row-major matrix of unit vectors (zero rows allowed) to search.
#[derive(Debug, Clone, Copy)]
pub struct UnitMatrix<'a> {
    data: &'a [f32],
    rows: usize,
    dims: usize,
}

impl<'a> UnitMatrix<'a> {
    /// Wraps `data` (`rows × dims`, row-major). Panics when the length does not match.
    pub fn new(data: &'a [f32], rows: usize, dims: usize) -> Self {
        assert_eq!(data.len(), rows * dims, "matrix length is not rows × dims");
        assert!(rows <= u32::MAX as usize, "more rows than u32 can index");
        UnitMatrix { data, rows, dims }
    }
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Length of every row.
    pub fn dims(&self) -> usize {
        self.dims
    }
    /// Row `i`.
    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.dims..(i + 1) * self.dims]
    }
    /// The whole matrix.
    pub fn as_slice(&self) -> &'a [f32] {
        self.data
    }

    /// The `k` rows most similar to each query (`queries`: `n × dims`, row-major, any length;
    /// they are normalised here), most similar first, ties by lower row. A query of zero length
    /// (or with NaN) gets no results. Uses up to `threads` threads.
    pub fn nearest_batch(&self, queries: &[f32], k: usize, threads: usize) -> Vec<Vec<Neighbour>> {
        assert_eq!(
            queries.len() % self.dims.max(1),
            0,
            "query length is not a multiple of dims"
        );
        let nq = queries.len().checked_div(self.dims).unwrap_or(0);
        let k = k.min(self.rows);
        if nq == 0 || k == 0 {
            return vec![Vec::new(); nq];
        }
        let mut q = queries.to_vec();
        let mut valid = vec![true; nq];
        for (i, v) in q.chunks_exact_mut(self.dims).enumerate() {
            valid[i] = normalize(v) > 0.0;
        }

        let threads = threads
            .max(1)
            .min((nq * self.rows / MIN_WORK_PER_THREAD).max(1))
            .min(self.rows.div_ceil(ROW_BLOCK));
        let per_thread = self.rows.div_ceil(threads).div_ceil(ROW_BLOCK) * ROW_BLOCK;
        let partials: Vec<Vec<TopK>> = if threads == 1 {
            vec![self.scan_rows(&q, nq, k, 0, self.rows)]
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        let start = (t * per_thread).min(self.rows);
                        let end = ((t + 1) * per_thread).min(self.rows);
                        let q = &q;
                        s.spawn(move || self.scan_rows(q, nq, k, start, end))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("a search thread panicked"))
                    .collect()
            })
        };

        let mut merged: Vec<TopK> = (0..nq).map(|_| TopK::new(k)).collect();
        for part in partials {
            for (m, p) in merged.iter_mut().zip(part) {
                for (s, r) in p.heap {
                    m.push(s, r);
                }
            }
        }
        merged
            .into_iter()
            .zip(valid)
            .map(|(t, ok)| if ok { t.into_sorted() } else { Vec::new() })
            .collect()
    }

    /// Top-k of every query over rows `start..end`.
    fn scan_rows(&self, q: &[f32], nq: usize, k: usize, start: usize, end: usize) -> Vec<TopK> {
        let d = self.dims;
        let mut tops: Vec<TopK> = (0..nq).map(|_| TopK::new(k)).collect();
        let mut scores = vec![0f32; QUERY_BLOCK.min(nq) * ROW_BLOCK];
        if nq <= DIRECT_MAX_QUERIES {
            let mut r0 = start;
            while r0 < end {
                let nr = ROW_BLOCK.min(end - r0);
                let rows = &self.data[r0 * d..(r0 + nr) * d];
                for (j, query) in q.chunks_exact(d).enumerate() {
                    let c = &mut scores[j * nr..(j + 1) * nr];
                    dots(rows, query, c);
                    tops[j].scan(c, r0 as u32);
                }
                r0 += nr;
            }
            return tops;
        }
        let mut r0 = start;
        while r0 < end {
            let nr = ROW_BLOCK.min(end - r0);
            let rows = &self.data[r0 * d..(r0 + nr) * d];
            let mut q0 = 0;
            while q0 < nq {
                let mq = QUERY_BLOCK.min(nq - q0);
                let c = &mut scores[..mq * nr];
                // C (mq × nr) = Q (mq × d) · Rᵀ (d × nr); R is row-major nr × d, so Rᵀ has
                // row stride 1 and column stride d.
                // SAFETY: the pointers and strides describe the slices above, which are long
                // enough (mq·d, nr·d, mq·nr elements) and do not overlap.
                unsafe {
                    matrixmultiply::sgemm(
                        mq,
                        d,
                        nr,
                        1.0,
                        q[q0 * d..].as_ptr(),
                        d as isize,
                        1,
                        rows.as_ptr(),
                        1,
                        d as isize,
                        0.0,
                        c.as_mut_ptr(),
                        nr as isize,
                        1,
                    );
                }
                for (i, row_scores) in c.chunks_exact(nr).enumerate() {
                    tops[q0 + i].scan(row_scores, r0 as u32);
                }
                q0 += mq;
            }
            r0 += nr;
        }
        tops
    }
}

/// Scales `v` to unit length in place and returns its original length (0 when zero or NaN,
/// in which case `v` is left as it was).
pub fn normalize(v: &mut [f32]) -> f32 {
    let norm = dot(v, v).sqrt();
    if norm > 0.0 && norm.is_finite() {
        let inv = 1.0 / norm;
        v.iter_mut().for_each(|x| *x *= inv);
        norm
    } else {
        0.0
    }
}

/// `out[i] = rows[i] · query` for the row-major `rows`, with AVX2 when the CPU has it.
fn dots(rows: &[f32], query: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        unsafe { dots_avx2(rows, query, out) };
        return;
    }
    dots_portable(rows, query, out);
}

/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dots_avx2(rows: &[f32], query: &[f32], out: &mut [f32]) {
    dots_portable(rows, query, out);
}

#[inline(always)]
fn dots_portable(rows: &[f32], query: &[f32], out: &mut [f32]) {
    for (r, o) in rows.chunks_exact(query.len()).zip(out) {
        *o = dot(r, query);
    }
}

/// Dot product, written so that it vectorises (8 independent accumulators).
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = (acc[0] + acc[4]) + (acc[1] + acc[5]) + (acc[2] + acc[6]) + (acc[3] + acc[7]);
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// The k best (similarity, row) pairs seen so far: a min-heap on similarity, so the root is the
/// current threshold.
struct TopK {
    k: usize,
    heap: Vec<(f32, u32)>,
}

/// Worse-first order: lower similarity, or equal similarity and higher row.
fn worse(a: (f32, u32), b: (f32, u32)) -> bool {
    a.0 < b.0 || (a.0 == b.0 && a.1 > b.1)
}

impl TopK {
    fn new(k: usize) -> Self {
        TopK {
            k,
            heap: Vec::with_capacity(k),
        }
    }

    /// Scores below or equal to this cannot enter (−∞ until the heap is full).
    #[inline]
    fn threshold(&self) -> f32 {
        if self.heap.len() < self.k {
            f32::NEG_INFINITY
        } else {
            self.heap[0].0
        }
    }

    fn push(&mut self, s: f32, row: u32) {
        if self.heap.len() < self.k {
            self.heap.push((s, row));
            let mut i = self.heap.len() - 1;
            while i > 0 {
                let p = (i - 1) / 2;
                if worse(self.heap[i], self.heap[p]) {
                    self.heap.swap(i, p);
                    i = p;
                } else {
                    break;
                }
            }
        } else if worse(self.heap[0], (s, row)) {
            self.heap[0] = (s, row);
            let n = self.heap.len();
            let mut i = 0;
            loop {
                let (l, r) = (2 * i + 1, 2 * i + 2);
                let mut m = i;
                if l < n && worse(self.heap[l], self.heap[m]) {
                    m = l;
                }
                if r < n && worse(self.heap[r], self.heap[m]) {
                    m = r;
                }
                if m == i {
                    break;
                }
                self.heap.swap(i, m);
                i = m;
            }
        }
    }

    /// Offers a block of scores for rows `base..base + scores.len()`.
    #[inline]
    fn scan(&mut self, scores: &[f32], base: u32) {
        const LANES: usize = 16;
        let mut thr = self.threshold();
        let mut chunks = scores.chunks_exact(LANES);
        let mut offset = 0u32;
        for chunk in &mut chunks {
            // Branch-free test of the whole chunk (vectorises); most chunks stop here.
            if chunk.iter().fold(false, |hit, &s| hit | (s > thr)) {
                for (j, &s) in chunk.iter().enumerate() {
                    if s > thr {
                        self.push(s, base + offset + j as u32);
                        thr = self.threshold();
                    }
                }
            }
            offset += LANES as u32;
        }
        for (j, &s) in chunks.remainder().iter().enumerate() {
            if s > thr {
                self.push(s, base + offset + j as u32);
                thr = self.threshold();
            }
        }
    }

    fn into_sorted(mut self) -> Vec<Neighbour> {
        self.heap.sort_by(|a, b| {
            b.0.partial_cmp(&a.0)
                .unwrap_or(Ordering::Equal)
                .then(a.1.cmp(&b.1))
        });
        self.heap
            .into_iter()
            .map(|(similarity, row)| Neighbour { row, similarity })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(m: &UnitMatrix<'_>, q: &[f32], k: usize) -> Vec<u32> {
        let mut q = q.to_vec();
        normalize(&mut q);
        let mut all: Vec<(f32, u32)> = (0..m.rows())
            .map(|i| (dot(m.row(i), &q), i as u32))
            .collect();
        all.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap().then(a.1.cmp(&b.1)));
        all.into_iter().take(k).map(|x| x.1).collect()
    }

    fn pseudo_random_matrix(rows: usize, dims: usize) -> Vec<f32> {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut data: Vec<f32> = (0..rows * dims)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect();
        data.chunks_exact_mut(dims).for_each(|r| {
            normalize(r);
        });
        data
    }

    #[test]
    fn batch_matches_brute_force_across_blocks_and_threads() {
        let (rows, dims) = (ROW_BLOCK * 2 + 77, 13);
        let data = pseudo_random_matrix(rows, dims);
        let m = UnitMatrix::new(&data, rows, dims);
        let queries: Vec<f32> = data[..(QUERY_BLOCK + 5) * dims]
            .iter()
            .map(|x| x * 3.0)
            .collect();
        for threads in [1, 2, 3] {
            let got = m.nearest_batch(&queries, 7, threads);
            assert_eq!(got.len(), QUERY_BLOCK + 5);
            for (i, res) in got.iter().enumerate() {
                let want = brute(&m, &queries[i * dims..(i + 1) * dims], 7);
                let rows: Vec<u32> = res.iter().map(|n| n.row).collect();
                assert_eq!(rows, want, "query {i}, {threads} threads");
                assert_eq!(res[0].row, i as u32, "a row is its own nearest");
                assert!((res[0].similarity - 1.0).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn few_queries_take_the_direct_path_and_match_brute_force() {
        let (rows, dims) = (ROW_BLOCK * 3 + 5, 50);
        let data = pseudo_random_matrix(rows, dims);
        let m = UnitMatrix::new(&data, rows, dims);
        for nq in 1..=DIRECT_MAX_QUERIES {
            let queries: Vec<f32> = data[dims * 7..dims * (7 + nq)].to_vec();
            for threads in [1, 2] {
                let got = m.nearest_batch(&queries, 10, threads);
                for (i, res) in got.iter().enumerate() {
                    let want = brute(&m, &queries[i * dims..(i + 1) * dims], 10);
                    let rows: Vec<u32> = res.iter().map(|n| n.row).collect();
                    assert_eq!(rows, want, "{nq} queries, {threads} threads");
                }
            }
        }
    }

    #[test]
    fn zero_query_and_large_k() {
        let data = pseudo_random_matrix(10, 4);
        let m = UnitMatrix::new(&data, 10, 4);
        let got = m.nearest_batch(&[0.0; 4], 3, 1);
        assert_eq!(got, vec![Vec::<Neighbour>::new()]);
        let got = m.nearest_batch(&data[..4], 50, 2);
        assert_eq!(got[0].len(), 10);
        assert!(got[0]
            .windows(2)
            .all(|w| w[0].similarity >= w[1].similarity));
    }
}
