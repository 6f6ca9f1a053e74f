//! The approximate nearest-neighbour index: an HNSW graph (`usearch`) over the unit vectors,
//! built once by `weft contextionary fetch`, stored beside the embeddings and mmapped (viewed,
//! not loaded or rebuilt) at start-up.
//!
//! File format: a 64-byte header — the magic `WEFTHNSW`, a format version (`u32`), the number of
//! rows (`u64`), the dimensions (`u32`), the [`fingerprint`] of the embeddings it was built from
//! (`u64`), then `connectivity`, `expansion_add` and `expansion_search` (`u32` each), all
//! little-endian, zero-padded — followed by the usearch index (inner product over unit vectors,
//! f32, keys = rows). A file whose header does not match the embeddings is refused, never used.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use crate::exact::{Neighbour, UnitMatrix};

const MAGIC: &[u8; 8] = b"WEFTHNSW";
const FORMAT_VERSION: u32 = 2;
/// The header is padded to 64 bytes so that the mmapped usearch data stays 64-byte aligned.
const HEADER_LEN: usize = 64;

/// Build and search parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexParams {
    /// Links per node (HNSW's M; twice that on the bottom layer).
    pub connectivity: usize,
    /// Candidate list size while inserting (efConstruction).
    pub expansion_add: usize,
    /// Candidate list size while searching (efSearch); stored as the index's default and
    /// overridable per plugin instance (`ef_search` in the config).
    pub expansion_search: usize,
}

impl Default for IndexParams {
    /// Measured on the full GloVe 6B 50d matrix (benches/contextionary/run.sh): recall@10 about
    /// 0.97 against exact search, built in about a minute on 2 cores.
    fn default() -> Self {
        IndexParams {
            connectivity: 16,
            expansion_add: 128,
            expansion_search: 64,
        }
    }
}

/// Where the index of the embeddings at `embeddings` lives by default: `<embeddings>.hnsw`.
pub fn default_index_path(embeddings: &Path) -> PathBuf {
    let mut s = embeddings.as_os_str().to_owned();
    s.push(".hnsw");
    PathBuf::from(s)
}

/// A cheap identity of a set of embeddings (FNV-1a over the shape, every word and a sample of
/// rows), stored in the index header so an index is never used with other embeddings.
pub fn fingerprint(words: &[String], matrix: UnitMatrix<'_>) -> u64 {
    let mut h = Fnv::new();
    h.write(&(matrix.rows() as u64).to_le_bytes());
    h.write(&(matrix.dims() as u32).to_le_bytes());
    for w in words {
        h.write(w.as_bytes());
        h.write(b"\n");
    }
    let stride = (matrix.rows() / 1024).max(1);
    for i in (0..matrix.rows()).step_by(stride) {
        for x in matrix.row(i) {
            h.write(&x.to_le_bytes());
        }
    }
    h.0
}

struct Fnv(u64);
impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// What an index file says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexHeader {
    /// Rows indexed.
    pub rows: u64,
    /// Vector length.
    pub dims: u32,
    /// [`fingerprint`] of the embeddings it was built from.
    pub fingerprint: u64,
    /// The parameters it was built with.
    pub params: IndexParams,
}

impl IndexHeader {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        let mut w = &mut b[..];
        w.write_all(MAGIC).unwrap();
        w.write_all(&FORMAT_VERSION.to_le_bytes()).unwrap();
        w.write_all(&self.rows.to_le_bytes()).unwrap();
        w.write_all(&self.dims.to_le_bytes()).unwrap();
        w.write_all(&self.fingerprint.to_le_bytes()).unwrap();
        for p in [
            self.params.connectivity,
            self.params.expansion_add,
            self.params.expansion_search,
        ] {
            w.write_all(&(p as u32).to_le_bytes()).unwrap();
        }
        b
    }

    fn decode(b: &[u8]) -> Result<Self, String> {
        if b.len() < HEADER_LEN || &b[..8] != MAGIC {
            return Err("not a Weft approximate index (bad magic)".into());
        }
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        let version = u32_at(8);
        if version != FORMAT_VERSION {
            return Err(format!(
                "index format version {version}, this build reads {FORMAT_VERSION}"
            ));
        }
        Ok(IndexHeader {
            rows: u64_at(12),
            dims: u32_at(20),
            fingerprint: u64_at(24),
            params: IndexParams {
                connectivity: u32_at(32) as usize,
                expansion_add: u32_at(36) as usize,
                expansion_search: u32_at(40) as usize,
            },
        })
    }

    /// Reads only the header of the index file at `path`.
    pub fn read(path: &Path) -> Result<Self, String> {
        let mut f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut b = [0u8; HEADER_LEN];
        f.read_exact(&mut b)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Self::decode(&b).map_err(|e| format!("{}: {e}", path.display()))
    }
}

fn options(dims: usize, params: IndexParams) -> IndexOptions {
    IndexOptions {
        dimensions: dims,
        metric: MetricKind::IP,
        quantization: ScalarKind::F32,
        connectivity: params.connectivity,
        expansion_add: params.expansion_add,
        expansion_search: params.expansion_search,
        multi: false,
    }
}

/// A built or mmapped HNSW index.
pub struct ApproximateIndex {
    header: IndexHeader,
    // Declared before `_mapping`: a viewed index must be dropped before the memory it views.
    index: Index,
    _mapping: Option<memmap2::Mmap>,
    /// usearch keeps one search context per thread it was sized for and fails a search beyond
    /// that; this gate keeps concurrent searches within the count.
    gate: Gate,
}

impl std::fmt::Debug for ApproximateIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApproximateIndex")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl ApproximateIndex {
    /// Builds the index over every row of `matrix` on all cores. `progress(done, total)` is
    /// called from time to time (every 1% or so) from the building threads.
    pub fn build(
        matrix: UnitMatrix<'_>,
        words: &[String],
        params: IndexParams,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<Self, String> {
        let index = Index::new(&options(matrix.dims(), params)).map_err(|e| e.to_string())?;
        let threads = threads();
        index
            .reserve_capacity_and_threads(matrix.rows(), threads)
            .map_err(|e| e.to_string())?;
        let done = AtomicUsize::new(0);
        let step = (matrix.rows() / 100).max(1000);
        let failed: Mutex<Option<String>> = Mutex::new(None);
        std::thread::scope(|s| {
            for t in 0..threads {
                let (index, done, failed) = (&index, &done, &failed);
                s.spawn(move || {
                    for i in (t..matrix.rows()).step_by(threads) {
                        if let Err(e) = index.add(i as u64, matrix.row(i)) {
                            *failed.lock().unwrap() = Some(e.to_string());
                            return;
                        }
                        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if n % step == 0 || n == matrix.rows() {
                            progress(n, matrix.rows());
                        }
                    }
                });
            }
        });
        if let Some(e) = failed.into_inner().unwrap() {
            return Err(e);
        }
        Ok(ApproximateIndex {
            header: IndexHeader {
                rows: matrix.rows() as u64,
                dims: matrix.dims() as u32,
                fingerprint: fingerprint(words, matrix),
                params,
            },
            index,
            _mapping: None,
            gate: Gate::new(threads),
        })
    }

    /// Writes the index to `path` atomically (a temporary file beside it, then a rename).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let mut buf = vec![0u8; HEADER_LEN + self.index.serialized_length()];
        buf[..HEADER_LEN].copy_from_slice(&self.header.encode());
        self.index
            .save_to_buffer(&mut buf[HEADER_LEN..])
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        crate::files::write_atomically(path, |f| f.write_all(&buf))
    }

    /// Mmaps the index at `path` (nothing is copied or rebuilt); refuses one built for other
    /// embeddings (`expected_rows`, `expected_dims`, `expected_fingerprint`).
    pub fn load(
        path: &Path,
        expected_rows: usize,
        expected_dims: usize,
        expected_fingerprint: u64,
    ) -> Result<Self, String> {
        let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        // SAFETY: the file is only read; it is replaced by rename, never rewritten in place, so
        // the mapping stays valid while the index uses it.
        let mapping = unsafe { memmap2::Mmap::map(&file) }
            .map_err(|e| format!("{}: cannot map it: {e}", path.display()))?;
        let header =
            IndexHeader::decode(&mapping).map_err(|e| format!("{}: {e}", path.display()))?;
        if header.rows != expected_rows as u64
            || header.dims != expected_dims as u32
            || header.fingerprint != expected_fingerprint
        {
            return Err(format!(
                "{}: built for other embeddings ({} × {}, fingerprint {:016x}; these are {} × {}, \
                 {:016x})",
                path.display(),
                header.rows,
                header.dims,
                header.fingerprint,
                expected_rows,
                expected_dims,
                expected_fingerprint
            ));
        }
        let index = Index::new(&options(expected_dims, header.params))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        // SAFETY: `mapping` is stored next to `index` and dropped after it.
        unsafe { index.view_from_buffer(&mapping[HEADER_LEN..]) }
            .map_err(|e| format!("{}: corrupt index: {e}", path.display()))?;
        if index.size() != expected_rows {
            return Err(format!(
                "{}: corrupt index: {} points, header says {expected_rows}",
                path.display(),
                index.size()
            ));
        }
        index.change_expansion_search(header.params.expansion_search);
        Ok(ApproximateIndex {
            header,
            index,
            _mapping: Some(mapping),
            gate: Gate::new(threads()),
        })
    }

    /// What the index says about itself.
    pub fn header(&self) -> IndexHeader {
        self.header
    }

    /// Sets the candidate list size of searches (efSearch): higher is slower and more exact.
    pub fn set_expansion_search(&self, ef: usize) {
        self.index.change_expansion_search(ef.max(1));
    }

    /// The candidate list size searches use now.
    pub fn expansion_search(&self) -> usize {
        self.index.expansion_search()
    }

    /// The (approximately) `k` most similar rows to the unit vector `query`, most similar first.
    /// `None` when usearch fails (the caller then searches exactly).
    pub fn search(&self, query: &[f32], k: usize) -> Option<Vec<Neighbour>> {
        let _slot = self.gate.enter();
        let found = self.index.search(query, k).ok()?;
        Some(
            found
                .keys
                .iter()
                .zip(&found.distances)
                .map(|(&row, &d)| Neighbour {
                    row: row as u32,
                    similarity: 1.0 - d,
                })
                .collect(),
        )
    }
}

/// A counting semaphore.
struct Gate {
    free: Mutex<usize>,
    cv: Condvar,
}

struct Slot<'a>(&'a Gate);

impl Gate {
    fn new(n: usize) -> Self {
        Gate {
            free: Mutex::new(n.max(1)),
            cv: Condvar::new(),
        }
    }
    fn enter(&self) -> Slot<'_> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.cv.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.0.cv.notify_one();
    }
}
