//! `weft-contextionary-core`: the finalfusion contextionary that the `weft-contextionary` plugin
//! (plugin name `finalfusion`) exports, and the writers `weft contextionary fetch` uses.
//!
//! * [`FinalfusionContextionary`] mmaps a finalfusion file and implements
//!   [`weft_plugin_api::Contextionary`]: word lookup, vectors, nearest neighbours by cosine
//!   (exact — [`exact`] — or through the approximate [`index`]), content hashes.
//! * [`write_embeddings`] writes a finalfusion file (unit vectors plus their norms, so the plugin
//!   searches the mmapped matrix directly), and [`index::ApproximateIndex`] builds, saves and loads
//!   the HNSW index kept beside it.
//!
//! This is a plain library so that the host can link it (for `fetch`) without linking the plugin's
//! exported root module: the cdylib in `plugins/contextionary` is only the export.
//!
//! **Invariant:** knows nothing of HTTP, the host's config file or where the data comes from.

pub mod exact;
pub mod files;
pub mod index;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use finalfusion::io::{ReadMetadata, WriteEmbeddings};
use finalfusion::metadata::Metadata;
use finalfusion::norms::NdNorms;
use finalfusion::prelude::{Embeddings, MmapEmbeddings, StorageWrap, VocabWrap};
use finalfusion::storage::{NdArray, Storage, StorageView};
use finalfusion::vocab::{SimpleVocab, Vocab, WordIndex};
use md5::Md5;
use sha2::{Digest, Sha256};
use weft_plugin_api::{
    Contextionary, PluginContext, PluginError, PluginLogger, PluginResult, WordDistance,
};

pub use exact::{Neighbour, UnitMatrix};
pub use files::write_atomically;
pub use index::{default_index_path, ApproximateIndex, IndexHeader, IndexParams};

/// The plugin's declared name (`contextionary.name` in the config).
pub const PLUGIN_NAME: &str = "finalfusion";

/// Help text for the plugin's config keys.
pub const CONFIG_HELP: &str = "path: the finalfusion embeddings file (.fifu), required — \
`weft contextionary fetch` writes data/glove-6b-50d.fifu; index_path: the approximate \
nearest-neighbour index built by fetch (default: <path>.hnsw; without it every search is exact); \
ef_search: the approximate search's candidate list size (default 64; higher is slower and more \
exact); threads: threads for exact searches (default: all cores)";

/// The plugin's config: the `contextionary` object of the environment, less `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The finalfusion file.
    pub path: PathBuf,
    /// The approximate index; `None` means [`default_index_path`].
    pub index_path: Option<PathBuf>,
    /// Threads for exact searches; `None` means all cores.
    pub threads: Option<usize>,
    /// The approximate search's candidate list size; `None` means the index's default.
    pub ef_search: Option<usize>,
}

impl Config {
    /// A config for the file at `path`, other keys at their defaults.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Config {
            path: path.into(),
            index_path: None,
            threads: None,
            ef_search: None,
        }
    }

    /// Reads the JSON config; `Invalid` naming the key when one is missing or of the wrong type.
    pub fn from_json(config: &serde_json::Value) -> PluginResult<Self> {
        let obj = config.as_object().ok_or_else(|| {
            PluginError::invalid("contextionary: its config must be a JSON object")
        })?;
        let path = match obj.get("path") {
            Some(serde_json::Value::String(p)) if !p.is_empty() => PathBuf::from(p),
            Some(_) => {
                return Err(PluginError::invalid(
                    "contextionary.path must be a string: the finalfusion (.fifu) file",
                ))
            }
            None => {
                return Err(PluginError::invalid(
                    "contextionary.path is missing: set it to a finalfusion (.fifu) file; run \
                     `weft contextionary fetch` to download the default one \
                     (data/glove-6b-50d.fifu)",
                ))
            }
        };
        let index_path = match obj.get("index_path") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(p)) if !p.is_empty() => Some(PathBuf::from(p)),
            Some(_) => {
                return Err(PluginError::invalid(
                    "contextionary.index_path must be a string: the approximate index file",
                ))
            }
        };
        let positive = |key: &str| match obj.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if n >= 1 => Ok(Some(n as usize)),
                _ => Err(PluginError::invalid(format!(
                    "contextionary.{key} must be a positive integer"
                ))),
            },
        };
        Ok(Config {
            path,
            index_path,
            threads: positive("threads")?,
            ef_search: positive("ef_search")?,
        })
    }
}

/// Word embeddings from an mmapped finalfusion file, searchable by cosine.
pub struct FinalfusionContextionary {
    path: PathBuf,
    embeddings: Embeddings<VocabWrap, StorageWrap>,
    /// A normalised copy of the matrix, only when the file's storage is not already a plain
    /// matrix of unit vectors (no norms chunk, or quantised).
    owned_unit: Option<Vec<f32>>,
    rows: usize,
    dims: usize,
    threads: usize,
    index: Option<ApproximateIndex>,
    md5: OnceLock<String>,
    sha256: OnceLock<String>,
}

impl std::fmt::Debug for FinalfusionContextionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FinalfusionContextionary")
            .field("path", &self.path)
            .field("rows", &self.rows)
            .field("dims", &self.dims)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

fn fetch_hint() -> &'static str {
    "run `weft contextionary fetch` to create it"
}

impl FinalfusionContextionary {
    /// The plugin constructor: reads the config, mmaps the embeddings, loads the index.
    pub fn from_context(ctx: PluginContext) -> PluginResult<Self> {
        let config = Config::from_json(&ctx.config)?;
        Self::open(&config, &ctx.log)
    }

    /// Mmaps the embeddings at `config.path` and loads the approximate index beside them (a
    /// missing or mismatched index is logged and searches become exact).
    pub fn open(config: &Config, log: &PluginLogger) -> PluginResult<Self> {
        let mut c = Self::open_embeddings(&config.path)?;
        if let Some(t) = config.threads {
            c.threads = t;
        }
        let index_path = config
            .index_path
            .clone()
            .unwrap_or_else(|| default_index_path(&config.path));
        if index_path.exists() {
            match ApproximateIndex::load(&index_path, c.rows, c.dims, c.fingerprint()) {
                Ok(index) => {
                    if let Some(ef) = config.ef_search {
                        index.set_expansion_search(ef);
                    }
                    c.index = Some(index)
                }
                Err(e) => log.warn(&format!(
                    "approximate index not used, searches are exact: {e}; {}",
                    "run `weft contextionary fetch` to rebuild it"
                )),
            }
        } else {
            log.warn(&format!(
                "no approximate index at {}: searches are exact; run `weft contextionary fetch` \
                 to build it",
                index_path.display()
            ));
        }
        log.info(&format!(
            "{}: {} words × {} dimensions{}",
            config.path.display(),
            c.rows,
            c.dims,
            if c.index.is_some() {
                ", with approximate index"
            } else {
                ""
            }
        ));
        Ok(c)
    }

    /// Mmaps the embeddings at `path`, without an approximate index.
    pub fn open_embeddings(path: &Path) -> PluginResult<Self> {
        let file = File::open(path).map_err(|e| {
            PluginError::invalid(format!(
                "contextionary.path {}: cannot open it ({e}); {}",
                path.display(),
                fetch_hint()
            ))
        })?;
        let embeddings: Embeddings<VocabWrap, StorageWrap> =
            Embeddings::mmap_embeddings(&mut BufReader::new(file)).map_err(|e| {
                PluginError::invalid(format!(
                    "contextionary.path {}: not a finalfusion embeddings file ({e}); {}",
                    path.display(),
                    fetch_hint()
                ))
            })?;
        let rows = embeddings.vocab().words_len();
        let dims = embeddings.dims();
        let direct = embeddings.norms().is_some()
            && match embeddings.storage() {
                StorageWrap::MmapArray(a) => a.view().as_slice().is_some(),
                StorageWrap::NdArray(a) => a.view().as_slice().is_some(),
                _ => false,
            };
        let owned_unit = if direct {
            None
        } else {
            let mut m = Vec::with_capacity(rows * dims);
            for i in 0..rows {
                let start = m.len();
                m.extend(embeddings.storage().embedding(i).iter().copied());
                exact::normalize(&mut m[start..]);
            }
            Some(m)
        };
        Ok(FinalfusionContextionary {
            path: path.to_owned(),
            embeddings,
            owned_unit,
            rows,
            dims,
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            index: None,
            md5: OnceLock::new(),
            sha256: OnceLock::new(),
        })
    }

    /// The embeddings file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The vocabulary, in row order.
    pub fn words(&self) -> &[String] {
        &self.embeddings.vocab().words()[..self.rows]
    }

    /// The row of `word`, `None` when unknown.
    pub fn row_of(&self, word: &str) -> Option<usize> {
        match self.embeddings.vocab().idx(word) {
            Some(WordIndex::Word(i)) if i < self.rows => Some(i),
            _ => None,
        }
    }

    /// The matrix of unit vectors that searches run over (mmapped when the file has norms).
    pub fn unit_matrix(&self) -> UnitMatrix<'_> {
        let data: &[f32] = match &self.owned_unit {
            Some(m) => m,
            None => match self.embeddings.storage() {
                StorageWrap::MmapArray(a) => a.view().to_slice().expect("checked at open"),
                StorageWrap::NdArray(a) => a.view().to_slice().expect("checked at open"),
                _ => unreachable!("other storage is copied at open"),
            },
        };
        UnitMatrix::new(&data[..self.rows * self.dims], self.rows, self.dims)
    }

    /// The stored metadata (TOML values rendered as strings; strings without quotes).
    pub fn metadata(&self) -> BTreeMap<String, String> {
        metadata_map(self.embeddings.metadata())
    }

    /// The identity of these embeddings that an index file must carry.
    pub fn fingerprint(&self) -> u64 {
        index::fingerprint(self.words(), self.unit_matrix())
    }

    /// Builds an approximate index over these embeddings (does not attach it);
    /// `progress(done, total)` is called now and then.
    pub fn build_index(
        &self,
        params: IndexParams,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<ApproximateIndex, String> {
        ApproximateIndex::build(self.unit_matrix(), self.words(), params, progress)
    }

    /// Whether the index file at `path` was built from these embeddings.
    pub fn index_matches(&self, path: &Path) -> bool {
        IndexHeader::read(path).is_ok_and(|h| {
            h.rows == self.rows as u64
                && h.dims == self.dims as u32
                && h.fingerprint == self.fingerprint()
        })
    }

    /// Attaches an index (e.g. one just built); `Err` when it belongs to other embeddings.
    pub fn set_index(&mut self, index: ApproximateIndex) -> Result<(), String> {
        let h = index.header();
        if h.rows != self.rows as u64 || h.fingerprint != self.fingerprint() {
            return Err("the index was built for other embeddings".into());
        }
        self.index = Some(index);
        Ok(())
    }

    /// The attached approximate index.
    pub fn index(&self) -> Option<&ApproximateIndex> {
        self.index.as_ref()
    }

    /// Threads exact searches use.
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.max(1);
    }

    /// Exact search for many queries at once (`queries`: `n × dims`, row-major; normalised
    /// here): for each, the `k` most similar words' rows, most similar first. Zero-length
    /// queries get no results.
    pub fn nearest_batch(&self, queries: &[f32], k: usize) -> Vec<Vec<Neighbour>> {
        self.unit_matrix().nearest_batch(queries, k, self.threads)
    }

    /// Like [`nearest_batch`](Self::nearest_batch) through the approximate index (the queries
    /// split over the same threads); `None` without an index.
    pub fn nearest_batch_approximate(
        &self,
        queries: &[f32],
        k: usize,
    ) -> Option<Vec<Vec<Neighbour>>> {
        let index = self.index.as_ref()?;
        let one = |q: &[f32]| {
            let mut q = q.to_vec();
            if exact::normalize(&mut q) > 0.0 {
                index.search(&q, k).unwrap_or_else(|| {
                    self.unit_matrix()
                        .nearest_batch(&q, k, 1)
                        .pop()
                        .unwrap_or_default()
                })
            } else {
                Vec::new()
            }
        };
        let nq = queries.len() / self.dims.max(1);
        let threads = self.threads.min(nq).max(1);
        if threads == 1 {
            return Some(queries.chunks_exact(self.dims).map(one).collect());
        }
        let per = nq.div_ceil(threads) * self.dims;
        Some(std::thread::scope(|s| {
            let handles: Vec<_> = queries
                .chunks(per)
                .map(|part| {
                    s.spawn(move || part.chunks_exact(self.dims).map(one).collect::<Vec<_>>())
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("a search thread panicked"))
                .collect()
        }))
    }

    /// The original (unnormalised) vector of row `i`.
    fn original_vector(&self, i: usize) -> Vec<f32> {
        let norm = self.embeddings.norms().map(|n| n[i]).unwrap_or(1.0);
        self.embeddings
            .storage()
            .embedding(i)
            .iter()
            .map(|x| x * norm)
            .collect()
    }

    /// Search for the unit vector `unit`; `skip` is left out of the results.
    fn search_unit(
        &self,
        unit: &[f32],
        k: usize,
        exact: bool,
        skip: Option<usize>,
    ) -> Vec<WordDistance> {
        let want = k + usize::from(skip.is_some());
        let approximate = match &self.index {
            Some(index) if !exact => index.search(unit, want),
            _ => None,
        };
        let found = approximate.unwrap_or_else(|| {
            self.unit_matrix()
                .nearest_batch(unit, want, self.threads)
                .pop()
                .unwrap_or_default()
        });
        let words = self.words();
        found
            .into_iter()
            .filter(|n| Some(n.row as usize) != skip)
            .take(k)
            .map(|n| WordDistance {
                word: words[n.row as usize].as_str().into(),
                distance: 1.0 - n.similarity,
            })
            .collect()
    }

    fn digest<D: Digest>(&self) -> String {
        let mut d = D::new();
        let mut buf = Vec::with_capacity(1 << 16);
        let mut feed = |xs: &mut dyn Iterator<Item = f32>, d: &mut D| {
            for x in xs {
                buf.extend_from_slice(&x.to_le_bytes());
                if buf.len() >= 1 << 16 {
                    d.update(&buf);
                    buf.clear();
                }
            }
            d.update(&buf);
            buf.clear();
        };
        feed(&mut self.unit_matrix().as_slice().iter().copied(), &mut d);
        let norms = self.embeddings.norms();
        feed(
            &mut (0..self.rows).map(|i| norms.map(|n| n[i]).unwrap_or(1.0)),
            &mut d,
        );
        for w in self.words() {
            d.update(w.as_bytes());
            d.update(b"\n");
        }
        d.finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    }
}

impl Contextionary for FinalfusionContextionary {
    fn dimensions(&self) -> u32 {
        self.dims as u32
    }

    /// The row: GloVe's files (and `weft contextionary fetch`, which keeps their order) list
    /// words most frequent first.
    fn word_rank(&self, word: &str) -> Option<u64> {
        self.row_of(word).map(|r| r as u64)
    }

    fn vocabulary_size(&self) -> u64 {
        self.rows as u64
    }

    fn contains(&self, word: &str) -> bool {
        self.row_of(word).is_some()
    }

    fn vector(&self, word: &str) -> Option<Vec<f32>> {
        self.row_of(word).map(|i| self.original_vector(i))
    }

    fn nearest_to_vector(
        &self,
        vector: &[f32],
        k: u32,
        exact: bool,
    ) -> PluginResult<Vec<WordDistance>> {
        if vector.len() != self.dims {
            return Err(PluginError::invalid(format!(
                "the vector has {} components; this contextionary's have {}",
                vector.len(),
                self.dims
            )));
        }
        let mut unit = vector.to_vec();
        if exact::normalize(&mut unit) == 0.0 {
            return Err(PluginError::invalid(
                "the vector has length zero (or is not finite): it has no direction to compare",
            ));
        }
        Ok(self.search_unit(&unit, k as usize, exact, None))
    }

    fn nearest_to_word(&self, word: &str, k: u32, exact: bool) -> PluginResult<Vec<WordDistance>> {
        let row = self.row_of(word).ok_or_else(|| {
            PluginError::not_found(format!("the word `{word}` is not in the contextionary"))
        })?;
        let unit = self.unit_matrix().row(row).to_vec();
        if unit.iter().all(|x| *x == 0.0) {
            return Ok(Vec::new());
        }
        Ok(self.search_unit(&unit, k as usize, exact, Some(row)))
    }

    /// Digest over the search matrix (unit vectors, little-endian f32, row-major), then the
    /// norms (little-endian f32; 1.0 where the file has none), then every word followed by
    /// `\n`. Computed once per algorithm.
    fn content_hash(&self, algorithm: &str) -> PluginResult<String> {
        match algorithm.to_ascii_lowercase().as_str() {
            "md5" => Ok(self.md5.get_or_init(|| self.digest::<Md5>()).clone()),
            "sha256" | "sha-256" => Ok(self.sha256.get_or_init(|| self.digest::<Sha256>()).clone()),
            other => Err(PluginError::unsupported(format!(
                "content hash `{other}`: this contextionary computes md5 and sha256"
            ))),
        }
    }
}

fn metadata_map(m: Option<&Metadata>) -> BTreeMap<String, String> {
    m.map(|m| {
        m.iter()
            .map(|(k, v)| {
                let v = match v {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect()
    })
    .unwrap_or_default()
}

/// Reads only the metadata of the finalfusion file at `path` (empty when it has none).
pub fn read_metadata(path: &Path) -> std::io::Result<BTreeMap<String, String>> {
    let f = File::open(path)?;
    let m =
        Option::<Metadata>::read_metadata(&mut BufReader::new(f)).map_err(std::io::Error::other)?;
    Ok(metadata_map(m.as_ref()))
}

/// Writes embeddings as a finalfusion file at `path`, atomically: a simple vocabulary of
/// `words` (in row order, no duplicates), the rows of `matrix` (`words.len() × dims`,
/// row-major) scaled to unit length, their original norms, and `metadata` as TOML strings.
pub fn write_embeddings(
    path: &Path,
    words: Vec<String>,
    mut matrix: Vec<f32>,
    dims: usize,
    metadata: &[(&str, String)],
) -> std::io::Result<()> {
    let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, m);
    if dims == 0 || matrix.len() != words.len() * dims {
        return Err(invalid(format!(
            "{} words but {} numbers for {dims} dimensions",
            words.len(),
            matrix.len()
        )));
    }
    let mut seen = std::collections::HashSet::with_capacity(words.len());
    if let Some(dup) = words.iter().find(|w| !seen.insert(w.as_str())) {
        return Err(invalid(format!("the word `{dup}` occurs twice")));
    }
    drop(seen);
    let norms: Vec<f32> = matrix
        .chunks_exact_mut(dims)
        .map(exact::normalize)
        .collect();
    let rows = words.len();
    let array = ndarray::Array2::from_shape_vec((rows, dims), matrix)
        .map_err(|e| invalid(e.to_string()))?;
    let table: toml::Table = metadata
        .iter()
        .map(|(k, v)| (k.to_string(), toml::Value::String(v.clone())))
        .collect();
    let embeddings = Embeddings::new(
        Some(Metadata::new(table)),
        SimpleVocab::new(words),
        NdArray::new(array),
        NdNorms::new(norms),
    );
    write_atomically(path, |f| {
        let mut w = BufWriter::with_capacity(1 << 20, f);
        embeddings
            .write_embeddings(&mut w)
            .map_err(std::io::Error::other)?;
        w.into_inner().map_err(|e| e.into_error())?;
        Ok(())
    })
}
