//! `weft-bench explore`: the search-by-meaning part of `scripts/bench.sh`, against a running
//! `weft serve` (its address and root key given; `scripts/bench.sh` runs it against embedded,
//! durable, on a fresh data directory), in this order:
//!
//! 1. the class `Doc` (`text`: text, `bucket`: int) and `--objects` things of generated text:
//!    8–12 words each, drawn from the contextionary's vocabulary (its first `--vocabulary`
//!    words made of letters and digits only, most frequent first) with Zipf-like
//!    probabilities (`1/(rank+1)^--zipf`), deterministic for `--seed`; `bucket` is the
//!    object's number modulo 100. Imported through `POST /batching/things` (`--batch` items
//!    per request, `--import-connections` requests in flight; bodies are serialised before the
//!    clock starts). `--import-only` stops here (the same-run baseline: the same objects into a
//!    server started without a contextionary, so with no vectors); `--baseline FILE` reads that
//!    run's JSON and prints the ratio.
//! 2. the ground truth, in this process: the same contextionary library the server loads
//!    (`libweft_contextionary.so`, `--plugin`) opened on the same file, each object's vector
//!    made by the host's own code (`weft_core::meaning::object_vector`, with the class as the
//!    server's `GET /schema` answers it), and the exact top-10 of `--queries` single-word
//!    concepts by brute force over every object (cosine distance of unit vectors);
//! 3. `Local { Explore(concepts: [w], limit: 10) }`: recall@10 against the exact top-10 (each
//!    query once, one connection; a hit counts when its exact distance is within 1e-5 of the
//!    10th nearest's, so ties do not count as misses), then queries/s over `--connections`
//!    connections (random queries of the set, `--seconds` or `--max-queries`, whichever first);
//! 4. the same for `Get { Things { Doc(explore: {concepts: [w]}, where: bucket = 7, first: 10) } }`:
//!    1% of the class, recall against the exact top-10 over that 1%.
//!
//! The certainty the server answers for each hit is compared with the one computed here (the
//! largest difference is reported): it shows the vectors agree.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use bytes::Bytes;
use hyper::{Method, Request, StatusCode};
use serde_json::{json, Value};

use crate::load::{self, count, graphql_data, short, Body, Bounds, Conn, Endpoint, Rng, Workload};

/// The class the objects are made in.
const CLASS: &str = "Doc";
/// Hits per query.
const K: usize = 10;
/// The bucket the filtered queries allow (1% of the class).
const BUCKET: usize = 7;
/// Distances within this of the 10th nearest count as ties.
const TIE: f32 = 1e-5;

#[derive(clap::Args, Debug)]
pub struct ExploreArgs {
    /// The server's base URL, `http://127.0.0.1:PORT/weaviate/v1`.
    #[arg(long)]
    pub url: String,
    /// Root key id (`X-API-KEY`).
    #[arg(long, env = "WEFT_BENCH_KEY")]
    pub key: String,
    /// Root key token (`X-API-TOKEN`).
    #[arg(long, env = "WEFT_BENCH_TOKEN")]
    pub token: String,
    /// Where to write the results as JSON.
    #[arg(long)]
    pub json: PathBuf,
    /// The contextionary file (.fifu) the server was started with (or, with `--import-only`,
    /// the one the words are drawn from).
    #[arg(long)]
    pub contextionary: PathBuf,
    /// The contextionary library [default: libweft_contextionary.so beside this executable].
    #[arg(long)]
    pub plugin: Option<PathBuf>,
    /// Things to import.
    #[arg(long, default_value_t = 1_000_000)]
    pub objects: usize,
    /// Items per batch request.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Batch requests in flight.
    #[arg(long, default_value_t = 4)]
    pub import_connections: usize,
    /// Words the text is drawn from: the contextionary's first N words of letters and digits.
    #[arg(long, default_value_t = 50_000)]
    pub vocabulary: usize,
    /// The Zipf exponent of the word distribution.
    #[arg(long, default_value_t = 1.0)]
    pub zipf: f64,
    /// Seed of the generated text.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Query concepts (single words) for recall and throughput.
    #[arg(long, default_value_t = 100)]
    pub queries: usize,
    /// Connections for the throughput measurements.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Seconds per throughput measurement (at most).
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Queries per throughput measurement (at most).
    #[arg(long, default_value_t = 100_000)]
    pub max_queries: u64,
    /// Import only (the baseline run against a server without a contextionary).
    #[arg(long)]
    pub import_only: bool,
    /// The JSON of the `--import-only` run of this bench run, for the ratio.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Ground-truth threads (vectors and brute force).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

/// The schema of the class, as posted.
fn class_json() -> Value {
    json!({"class": CLASS, "properties": [
        {"name": "text", "@dataType": ["text"]},
        {"name": "bucket", "@dataType": ["int"]}
    ]})
}

/// The words text is drawn from, most frequent first, and the cumulative Zipf weights.
struct Vocabulary {
    words: Vec<String>,
    cdf: Vec<f64>,
}

impl Vocabulary {
    fn new(all: &[String], n: usize, s: f64) -> anyhow::Result<Vocabulary> {
        let words: Vec<String> = all
            .iter()
            .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_alphanumeric()))
            .filter(|w| w.to_lowercase() == **w)
            .take(n)
            .cloned()
            .collect();
        if words.len() < 100 {
            bail!(
                "the contextionary has only {} words of letters and digits",
                words.len()
            );
        }
        let mut cdf = Vec::with_capacity(words.len());
        let mut total = 0.0;
        for r in 0..words.len() {
            total += 1.0 / ((r + 1) as f64).powf(s);
            cdf.push(total);
        }
        Ok(Vocabulary { words, cdf })
    }

    fn draw(&self, rng: &mut Rng) -> &str {
        let total = *self.cdf.last().expect("words");
        let x = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
        let i = self.cdf.partition_point(|c| *c <= x);
        &self.words[i.min(self.words.len() - 1)]
    }

    /// The text of object `i`: 8–12 words.
    fn text(&self, seed: u64, i: usize) -> String {
        let mut rng = Rng::new(seed ^ (i as u64).wrapping_mul(0xd134_2543_de82_ef95));
        let n = 8 + rng.below(5);
        let mut s = String::with_capacity(n * 8);
        for j in 0..n {
            if j > 0 {
                s.push(' ');
            }
            s.push_str(self.draw(&mut rng));
        }
        s
    }

    /// `n` query words: not stop words, spread over the ranks 100 to 10,000 (or the vocabulary).
    fn queries(&self, n: usize) -> Vec<String> {
        let top = self.words.len().min(10_000);
        let candidates: Vec<&String> = self.words[100.min(top / 2)..top]
            .iter()
            .filter(|w| !weft_core::meaning::is_stop_word(w) && w.len() > 2)
            .collect();
        let step = (candidates.len() / n.max(1)).max(1);
        candidates
            .iter()
            .step_by(step)
            .take(n)
            .map(|w| (*w).clone())
            .collect()
    }
}

fn props(text: &str, i: usize) -> Value {
    json!({"text": text, "bucket": i % 100})
}

/// The batch bodies of every object.
fn batch_bodies(texts: &[String], batch: usize) -> Vec<Bytes> {
    (0..texts.len())
        .collect::<Vec<_>>()
        .chunks(batch)
        .map(|chunk| {
            let items: Vec<Value> = chunk
                .iter()
                .map(|&i| {
                    json!({"@context": "http://example.org/bench", "@class": CLASS,
                    "schema": props(&texts[i], i)})
                })
                .collect();
            serde_json::to_vec(&json!({ "things": items }))
                .expect("json")
                .into()
        })
        .collect()
}

/// The ids (`"thingId":"…"`) of an answer, in order.
fn thing_ids(answer: &[u8]) -> Vec<u128> {
    const KEY: &[u8] = b"\"thingId\":\"";
    let mut ids = vec![];
    let mut at = 0;
    while let Some(p) = find(&answer[at..], KEY) {
        let start = at + p + KEY.len();
        let Some(end) = answer[start..].iter().position(|b| *b == b'"') else {
            break;
        };
        if let Some(id) = std::str::from_utf8(&answer[start..start + end])
            .ok()
            .and_then(parse_uuid)
        {
            ids.push(id);
        }
        at = start + end;
    }
    ids
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_uuid(s: &str) -> Option<u128> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    u128::from_str_radix(&hex, 16).ok()
}

struct Import {
    objects: usize,
    seconds: f64,
    errors: usize,
    /// The ids of each batch's objects, in order (empty where a batch failed).
    ids: Vec<Vec<u128>>,
}

/// Sends `bodies` over `connections` connections ([`load::import`]), keeping every object's id.
async fn import(ep: &Endpoint, bodies: Vec<Bytes>, connections: usize, batch: usize) -> Import {
    let ids = Arc::new(Mutex::new(vec![Vec::new(); bodies.len()]));
    let keep = ids.clone();
    let done = load::import(
        ep,
        bodies,
        connections,
        batch,
        Duration::from_secs(300),
        Arc::new(move |i, body: &Bytes, answer: Bytes| {
            let items = count(body, b"\"@class\"");
            let got = thing_ids(&answer);
            if got.len() == items {
                keep.lock().unwrap_or_else(|e| e.into_inner())[i] = got;
            } else {
                eprintln!("import: {} ids in an answer of {items}", got.len());
            }
        }),
    )
    .await;
    let ids = std::mem::take(&mut *ids.lock().unwrap_or_else(|e| e.into_inner()));
    Import {
        objects: done.objects,
        seconds: done.seconds,
        errors: done.errors,
        ids,
    }
}

/// The contextionary library beside this executable.
fn default_plugin() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe
        .parent()
        .ok_or_else(|| anyhow!("{} has no directory", exe.display()))?
        .join("libweft_contextionary.so"))
}

/// The contextionary as the server opens it: the plugin library, config `{"path": …}`.
fn open_contextionary(a: &ExploreArgs) -> anyhow::Result<weft_core::ContextionaryHandle> {
    let so = match &a.plugin {
        Some(p) => p.clone(),
        None => default_plugin()?,
    };
    let plugin = weft_plugin_loader::load(&so).map_err(|e| anyhow!("{}: {e}", so.display()))?;
    weft_core::ContextionaryHandle::open(&plugin, &json!({ "path": a.contextionary }))
}

/// The class `Doc` as the server holds it (`GET /schema`).
async fn class_from_server(ep: &Endpoint) -> anyhow::Result<weft_core::ontology::Class> {
    let body = load::one(ep, ep.request(Method::GET, "/schema", None)).await?;
    let v: Value = serde_json::from_slice(&body)?;
    let class = v["things"]["classes"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["class"] == CLASS))
        .ok_or_else(|| anyhow!("GET /schema has no thing class {CLASS}: {}", short(&body)))?;
    serde_json::from_value(class.clone()).context("the class Doc of GET /schema")
}

/// Every object's vector, made by the host's code, on `threads` threads (row-major, unit
/// length; a zero row for an object with no known word).
fn object_vectors(
    c: &weft_core::ContextionaryHandle,
    class: &weft_core::ontology::Class,
    texts: &[String],
    threads: usize,
) -> anyhow::Result<(Vec<f32>, usize)> {
    let d = c.dimensions() as usize;
    let mut out = vec![0f32; texts.len() * d];
    let chunk = texts.len().div_ceil(threads.max(1)).max(1);
    let missing = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let mut handles = vec![];
        for (t, rows) in out.chunks_mut(chunk * d).enumerate() {
            let missing = &missing;
            handles.push(s.spawn(move || -> anyhow::Result<()> {
                for (j, row) in rows.chunks_mut(d).enumerate() {
                    let i = t * chunk + j;
                    let Value::Object(p) = props(&texts[i], i) else {
                        unreachable!()
                    };
                    match weft_core::meaning::object_vector(c, class, &p)
                        .map_err(|e| anyhow!("object {i}: {e}"))?
                    {
                        Some(v) => row.copy_from_slice(&v),
                        None => {
                            missing.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Ok(())
            }));
        }
        handles
            .into_iter()
            .try_for_each(|h| h.join().expect("a vector thread panicked"))
    })?;
    Ok((out, missing.into_inner()))
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The exact `K` nearest rows among `allowed` (every row when `None`) to each query: for each
/// query, the distance of the `K`th nearest (the tie threshold).
fn exact_kth(
    vectors: &[f32],
    d: usize,
    queries: &[Vec<f32>],
    allowed: impl Fn(usize) -> bool + Sync,
    threads: usize,
) -> Vec<f32> {
    let per = queries.len().div_ceil(threads.max(1)).max(1);
    let allowed = &allowed;
    std::thread::scope(|s| {
        let handles: Vec<_> = queries
            .chunks(per)
            .map(|qs| {
                s.spawn(move || {
                    qs.iter()
                        .map(|q| {
                            // The K smallest distances, kept sorted.
                            let mut best: Vec<f32> = Vec::with_capacity(K + 1);
                            for (i, row) in vectors.chunks(d).enumerate() {
                                if !allowed(i) || row.iter().all(|x| *x == 0.0) {
                                    continue;
                                }
                                let dist = 1.0 - dot(q, row);
                                if best.len() < K || dist < best[K - 1] {
                                    let at = best.partition_point(|b| *b <= dist);
                                    best.insert(at, dist);
                                    best.truncate(K);
                                }
                            }
                            best.last().copied().unwrap_or(f32::INFINITY)
                        })
                        .collect::<Vec<f32>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a ground-truth thread panicked"))
            .collect()
    })
}

/// Which GraphQL query.
#[derive(Clone, Copy)]
enum Shape {
    Explore,
    Filtered,
}

impl Shape {
    fn query(self, word: &str) -> String {
        match self {
            Shape::Explore => format!(
                r#"{{ Local {{ Explore(concepts: ["{word}"], limit: {K}) {{ beacon certainty className }} }} }}"#
            ),
            Shape::Filtered => format!(
                r#"{{ Local {{ Get {{ Things {{ {CLASS}(explore: {{concepts: ["{word}"]}}, where: {{operator: Equal, path: ["bucket"], valueInt: {BUCKET}}}, first: {K}) {{ uuid _certainty }} }} }} }} }}"#
            ),
        }
    }

    /// The hits of an answer: (uuid, certainty).
    fn hits(self, data: &Value) -> Result<Vec<(u128, f64)>, String> {
        let list = match self {
            Shape::Explore => &data["Local"]["Explore"],
            Shape::Filtered => &data["Local"]["Get"]["Things"][CLASS],
        };
        let list = list
            .as_array()
            .ok_or_else(|| format!("no list of hits: {data}"))?;
        list.iter()
            .map(|h| {
                let (id, c) = match self {
                    Shape::Explore => (
                        h["beacon"]
                            .as_str()
                            .and_then(|b| b.rsplit('/').next())
                            .unwrap_or(""),
                        &h["certainty"],
                    ),
                    Shape::Filtered => (h["uuid"].as_str().unwrap_or(""), &h["_certainty"]),
                };
                Ok((
                    parse_uuid(id).ok_or_else(|| format!("a hit without an id: {h}"))?,
                    c.as_f64()
                        .ok_or_else(|| format!("a hit without certainty: {h}"))?,
                ))
            })
            .collect()
    }
}

/// Random queries of a fixed set; each answer must hold `expect` hits.
struct Queries {
    ep: Endpoint,
    shape: Shape,
    bodies: Vec<Bytes>,
    expect: usize,
}

impl Workload for Queries {
    fn kinds(&self) -> &'static [&'static str] {
        &["GraphQL explore"]
    }

    fn next(&self, rng: &mut Rng) -> (usize, Request<Body>) {
        let body = self.bodies[rng.below(self.bodies.len())].clone();
        (0, self.ep.request(Method::POST, "/graphql", Some(body)))
    }

    fn check(&self, _: usize, status: StatusCode, body: &Bytes) -> Result<(), String> {
        let data = graphql_data(status, body)?;
        let n = self.shape.hits(&data)?.len();
        if n == self.expect {
            Ok(())
        } else {
            Err(format!("{n} hits, expected {}", self.expect))
        }
    }
}

/// Recall@K of one shape (each query once, one connection) and its throughput.
#[allow(clippy::too_many_arguments)]
async fn measure(
    ep: &Endpoint,
    a: &ExploreArgs,
    shape: Shape,
    words: &[String],
    qvecs: &[Vec<f32>],
    kth: &[f32],
    index_of: &HashMap<u128, usize>,
    vectors: &[f32],
    d: usize,
    expect: usize,
) -> anyhow::Result<Value> {
    let mut conn = Conn::open(ep.addr).await?;
    let (mut found, mut wanted, mut max_cert_diff) = (0usize, 0usize, 0f64);
    let mut short_answers = 0usize;
    let mut latencies = vec![];
    for ((w, q), t) in words.iter().zip(qvecs).zip(kth) {
        let t0 = Instant::now();
        let (status, body) = conn
            .send(ep.graphql(&shape.query(w)), load::REQUEST_TIMEOUT)
            .await?;
        latencies.push(t0.elapsed().as_secs_f64() * 1e3);
        let data = graphql_data(status, &body).map_err(|e| anyhow!("{w}: {e}"))?;
        let hits = shape.hits(&data).map_err(|e| anyhow!("{w}: {e}"))?;
        if hits.len() < expect {
            short_answers += 1;
        }
        wanted += expect;
        let mut seen = std::collections::HashSet::new();
        for (id, cert) in hits.iter().take(K) {
            let Some(&i) = index_of.get(id) else {
                bail!("{w}: a hit {id:032x} that is none of the imported objects");
            };
            let dist = 1.0 - dot(q, &vectors[i * d..(i + 1) * d]);
            max_cert_diff = max_cert_diff.max((cert - (1.0 - dist as f64 / 2.0)).abs());
            if seen.insert(*id) && dist <= t + TIE {
                found += 1;
            }
        }
    }
    let recall = found as f64 / wanted.max(1) as f64;
    latencies.sort_by(f64::total_cmp);
    let bodies: Vec<Bytes> = words
        .iter()
        .map(|w| {
            serde_json::to_vec(&json!({ "query": shape.query(w) }))
                .expect("json")
                .into()
        })
        .collect();
    let work = Arc::new(Queries {
        ep: ep.clone(),
        shape,
        bodies,
        expect,
    });
    let bounds = Bounds {
        duration: Duration::from_secs_f64(a.seconds),
        max_requests: a.max_queries,
    };
    let stats = load::run(ep, work, a.connections, bounds, None).await;
    for e in &stats.error_samples {
        eprintln!("  explore error: {e}");
    }
    Ok(json!({
        "queries": words.len(),
        "recall_at_10": recall,
        "short_answers": short_answers,
        "max_certainty_difference": max_cert_diff,
        "single_connection_median_ms": latencies.get(latencies.len() / 2),
        "throughput": stats.to_json(),
        "queries_per_s": stats.per_second(),
        "errors": stats.errors(),
    }))
}

fn c11y_label(path: &Path, vocabulary: u64) -> String {
    let what = if vocabulary >= 400_000 {
        "the full GloVe 6B 50d"
    } else {
        "the test slice of GloVe, NOT the full contextionary"
    };
    format!(
        "{} ({} words: {what})",
        path.display(),
        crate::report::fmt_int(vocabulary as f64)
    )
}

pub async fn explore(a: ExploreArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.objects > 0 && a.batch > 0,
        "--objects and --batch must be positive"
    );
    let ep = Endpoint::parse(&a.url)?.with_key(&a.key, &a.token)?;
    let words =
        weft_contextionary_core::FinalfusionContextionary::open_embeddings(&a.contextionary)
            .map_err(|e| anyhow!("{}: {}", a.contextionary.display(), e.message))?;
    let vocab = Vocabulary::new(words.words(), a.vocabulary, a.zipf)?;
    let vocabulary_size = words.words().len() as u64;
    drop(words);
    let label = c11y_label(&a.contextionary, vocabulary_size);
    println!(
        "  contextionary {label}; text drawn from its first {} words (Zipf s = {})",
        vocab.words.len(),
        a.zipf
    );

    // 1. The class and the import.
    load::one(
        &ep,
        ep.request(
            Method::POST,
            "/schema/things",
            Some(serde_json::to_vec(&class_json())?.into()),
        ),
    )
    .await
    .context("create the class Doc")?;
    let t = Instant::now();
    let texts: Vec<String> = (0..a.objects).map(|i| vocab.text(a.seed, i)).collect();
    let bodies = batch_bodies(&texts, a.batch);
    let body_bytes: usize = bodies.iter().map(Bytes::len).sum();
    println!(
        "  {} objects generated ({:.0} MB of batch bodies, {:.1} s; e.g. {:?})",
        texts.len(),
        body_bytes as f64 / 1e6,
        t.elapsed().as_secs_f64(),
        texts[0]
    );
    let imported = import(&ep, bodies, a.import_connections, a.batch).await;
    let rate = imported.objects as f64 / imported.seconds;
    let baseline: Option<Value> = match &a.baseline {
        Some(p) => Some(serde_json::from_slice(
            &std::fs::read(p).with_context(|| format!("{} (the baseline)", p.display()))?,
        )?),
        None => None,
    };
    let base_rate = baseline
        .as_ref()
        .and_then(|b| b["import"]["things_per_s"].as_f64());
    println!(
        "  import{}: {} things in {:.2} s: {:.0} things/s, {} errors{}",
        if a.import_only {
            " (no contextionary: no vectors)"
        } else {
            " with vectors"
        },
        imported.objects,
        imported.seconds,
        rate,
        imported.errors,
        base_rate.map_or(String::new(), |b| format!(
            "; without vectors {b:.0} things/s: ratio {:.2}",
            rate / b
        ))
    );
    let mut report = json!({
        "contextionary": a.contextionary,
        "contextionary_words": vocabulary_size,
        "contextionary_is_full": vocabulary_size >= 400_000,
        "text": {"vocabulary": vocab.words.len(), "zipf": a.zipf, "seed": a.seed, "words_per_object": "8-12"},
        "import": {
            "objects": imported.objects,
            "batch": a.batch,
            "connections": a.import_connections,
            "seconds": imported.seconds,
            "things_per_s": rate,
            "errors": imported.errors,
            "vectors": !a.import_only,
        },
    });
    if let Some(b) = &baseline {
        report["baseline_import"] = b["import"].clone();
        report["import_ratio_to_baseline"] = json!(base_rate.map(|b| rate / b));
    }
    if a.import_only {
        crate::output::write_json(&a.json, &report)?;
        return Ok(());
    }

    // 2. The ground truth.
    let t = Instant::now();
    let c11y = open_contextionary(&a)?;
    let class = class_from_server(&ep).await?;
    let d = c11y.dimensions() as usize;
    let (vectors, no_vector) = object_vectors(&c11y, &class, &texts, a.threads)?;
    let vectors_s = t.elapsed().as_secs_f64();
    let words = vocab.queries(a.queries);
    let qvecs: Vec<Vec<f32>> = words
        .iter()
        .map(|w| {
            let mut v = c11y
                .vector(w)
                .map_err(|e| anyhow!("{w}: {e}"))?
                .ok_or_else(|| anyhow!("{w} is not in the contextionary"))?;
            weft_plugin_api::vector::normalize(&mut v);
            Ok(v)
        })
        .collect::<anyhow::Result<_>>()?;
    let t = Instant::now();
    let kth_all = exact_kth(&vectors, d, &qvecs, |_| true, a.threads);
    let kth_filtered = exact_kth(&vectors, d, &qvecs, |i| i % 100 == BUCKET, a.threads);
    println!(
        "  ground truth: {} object vectors made in process in {:.1} s ({} without a known word), exact top-{K} of {} queries in {:.1} s",
        texts.len(),
        vectors_s,
        no_vector,
        words.len(),
        t.elapsed().as_secs_f64()
    );
    let mut index_of = HashMap::with_capacity(a.objects);
    let mut missing_ids = 0usize;
    for (b, ids) in imported.ids.iter().enumerate() {
        if ids.is_empty() {
            missing_ids += 1;
        }
        for (j, id) in ids.iter().enumerate() {
            index_of.insert(*id, b * a.batch + j);
        }
    }
    anyhow::ensure!(
        missing_ids == 0,
        "{missing_ids} batches answered no ids: recall cannot be computed"
    );
    let with_vector = |i: usize| vectors[i * d..(i + 1) * d].iter().any(|x| *x != 0.0);
    let all_expect = K.min((0..a.objects).filter(|i| with_vector(*i)).count());
    let filtered_expect = K.min(
        (0..a.objects)
            .filter(|i| i % 100 == BUCKET && with_vector(*i))
            .count(),
    );

    // 3. and 4.
    let mut results = vec![];
    for (shape, name, kth, expect) in [
        (Shape::Explore, "Explore", &kth_all, all_expect),
        (
            Shape::Filtered,
            "Get … explore where bucket = 7 (1%)",
            &kth_filtered,
            filtered_expect,
        ),
    ] {
        let r = measure(
            &ep, &a, shape, &words, &qvecs, kth, &index_of, &vectors, d, expect,
        )
        .await?;
        println!(
            "  {name} top-{K}: recall@{K} {:.4} against exact ({} queries, {} short answers, certainty within {:.1e} of the exact); {:.0} queries/s over {} connections (p50 {:.2} ms, p99 {:.2} ms, {} queries, {} errors)",
            r["recall_at_10"].as_f64().unwrap_or(f64::NAN),
            r["queries"],
            r["short_answers"],
            r["max_certainty_difference"].as_f64().unwrap_or(f64::NAN),
            r["queries_per_s"].as_f64().unwrap_or(f64::NAN),
            a.connections,
            r["throughput"]["p50_ms"].as_f64().unwrap_or(f64::NAN),
            r["throughput"]["p99_ms"].as_f64().unwrap_or(f64::NAN),
            r["throughput"]["requests"],
            r["errors"],
        );
        results.push(r);
    }
    let [all, filtered] = <[Value; 2]>::try_from(results).expect("two");
    report["ground_truth"] = json!({
        "how": "weft_core::meaning::object_vector with the contextionary plugin library in process, the class from GET /schema; brute force over every object",
        "vectors_seconds": vectors_s,
        "objects_without_vector": no_vector,
        "query_words": words,
    });
    report["explore"] = all;
    report["explore_filtered"] = filtered;
    report["explore_filtered"]["allowed_objects"] =
        json!((0..a.objects).filter(|i| i % 100 == BUCKET).count());
    report["connections"] = json!(a.connections);
    crate::output::write_json(&a.json, &report)?;
    Ok(())
}
