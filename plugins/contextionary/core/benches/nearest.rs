//! The Weft side of `benches/contextionary/run.sh` (run on demand, asserts nothing):
//!
//! ```text
//! WEFT_BENCH_CONTEXTIONARY=data/glove-6b-50d.fifu WEFT_BENCH_OUT=target/bench-contextionary \
//!     cargo bench -p weft-contextionary-core --bench nearest
//! ```
//!
//! Picks `WEFT_BENCH_QUERIES` (default 1000) words spread pseudo-randomly over the vocabulary,
//! times exact batch search, exact one-at-a-time search, approximate (HNSW) search and its
//! recall@k against exact, and start-up from the mmapped file against parsing the text format
//! (written once to `$WEFT_BENCH_TEXT`, default `<fifu>.txt`). Prints one JSON object on stdout
//! and writes the query rows and result rows to `$WEFT_BENCH_OUT` for the faiss script.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use finalfusion::prelude::{Embeddings, ReadText};
use finalfusion::storage::NdArray;
use finalfusion::vocab::SimpleVocab;
use weft_contextionary_core::{default_index_path, Config, FinalfusionContextionary, Neighbour};
use weft_plugin_api::{Contextionary, HostLogger, PluginLogger};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn query_rows(rows: usize, n: usize) -> Vec<usize> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(n);
    while out.len() < n.min(rows) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let r = (x % rows as u64) as usize;
        if seen.insert(r) {
            out.push(r);
        }
    }
    out
}

fn rows_json(results: &[Vec<Neighbour>]) -> String {
    let lists: Vec<String> = results
        .iter()
        .map(|r| {
            let ids: Vec<String> = r.iter().map(|n| n.row.to_string()).collect();
            format!("[{}]", ids.join(","))
        })
        .collect();
    format!("[{}]", lists.join(",\n"))
}

fn recall(approx: &[Vec<Neighbour>], exact: &[Vec<Neighbour>], k: usize) -> f64 {
    let mut hit = 0usize;
    for (a, e) in approx.iter().zip(exact) {
        let truth: std::collections::HashSet<u32> = e.iter().take(k).map(|n| n.row).collect();
        hit += a.iter().take(k).filter(|n| truth.contains(&n.row)).count();
    }
    hit as f64 / (exact.len() * k) as f64
}

/// Writes the GloVe text format (`word v1 … vn` per line) once.
fn ensure_text(c: &FinalfusionContextionary, path: &Path) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    eprintln!(
        "nearest bench: writing the text format once to {}",
        path.display()
    );
    weft_contextionary_core::write_atomically(path, |f| {
        let mut w = BufWriter::with_capacity(1 << 20, f);
        for w_ in c.words() {
            let v = c.vector(w_).expect("own word");
            write!(w, "{w_}")?;
            for x in v {
                write!(w, " {x}")?;
            }
            writeln!(w)?;
        }
        w.flush()
    })
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

fn main() {
    let Some(path) = std::env::var_os("WEFT_BENCH_CONTEXTIONARY").map(PathBuf::from) else {
        eprintln!(
            "nearest bench: skipped — set WEFT_BENCH_CONTEXTIONARY to a .fifu file (see \
             benches/contextionary/run.sh)"
        );
        return;
    };
    let out_dir = std::env::var_os("WEFT_BENCH_OUT").map(PathBuf::from);
    let nq = env_usize("WEFT_BENCH_QUERIES", 1000);
    let k = env_usize("WEFT_BENCH_K", 10);
    let repeats = env_usize("WEFT_BENCH_REPEATS", 3).max(1);
    let log = PluginLogger::new(HostLogger::discard(), "finalfusion");

    // Start-up: mmap (embeddings only, then with the index) vs parsing text.
    let mut mmap_s = Vec::new();
    for _ in 0..repeats {
        let t = Instant::now();
        let c = FinalfusionContextionary::open_embeddings(&path).expect("open");
        std::hint::black_box(c.contains("the"));
        mmap_s.push(t.elapsed().as_secs_f64());
    }
    let t = Instant::now();
    let mut c = FinalfusionContextionary::open(&Config::new(&path), &log).expect("open");
    let open_with_index_s = t.elapsed().as_secs_f64();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    c.set_threads(threads);
    let rows = c.words().len();
    let dims = c.unit_matrix().dims();

    let text_path = std::env::var_os("WEFT_BENCH_TEXT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(format!("{}.txt", path.display())));
    ensure_text(&c, &text_path).expect("write text format");
    let mut text_s = Vec::new();
    for _ in 0..repeats.min(2) {
        let t = Instant::now();
        let e: Embeddings<SimpleVocab, NdArray> =
            Embeddings::read_text(&mut BufReader::new(File::open(&text_path).unwrap()))
                .expect("read text");
        std::hint::black_box(e.embedding("the"));
        text_s.push(t.elapsed().as_secs_f64());
    }
    // A plain line-by-line parse too, so the library's text reader is not the only baseline.
    let t = Instant::now();
    let mut parsed = 0usize;
    for line in BufReader::new(File::open(&text_path).unwrap()).lines() {
        let line = line.unwrap();
        let mut parts = line.split(' ');
        let _word = parts.next();
        let v: Vec<f32> = parts.map(|p| p.parse().unwrap()).collect();
        parsed += v.len();
    }
    std::hint::black_box(parsed);
    let text_plain_s = t.elapsed().as_secs_f64();

    // Queries: the raw vectors of pseudo-random words.
    let qrows = query_rows(rows, nq);
    let mut queries = Vec::with_capacity(qrows.len() * dims);
    for &r in &qrows {
        queries.extend(c.vector(&c.words()[r]).expect("own word"));
    }

    // Exact, batched.
    let _ = c.nearest_batch(&queries[..dims], k); // warm the page cache
    let mut exact_s = Vec::new();
    let mut exact = Vec::new();
    for _ in 0..repeats {
        let t = Instant::now();
        exact = c.nearest_batch(&queries, k);
        exact_s.push(t.elapsed().as_secs_f64());
    }
    let mut exact1_s = Vec::new();
    c.set_threads(1);
    for _ in 0..repeats {
        let t = Instant::now();
        std::hint::black_box(c.nearest_batch(&queries, k));
        exact1_s.push(t.elapsed().as_secs_f64());
    }
    c.set_threads(threads);

    // Exact, one query at a time (what a REST call does).
    let single_n = qrows.len().min(100);
    let t = Instant::now();
    for q in queries.chunks_exact(dims).take(single_n) {
        std::hint::black_box(c.nearest_batch(q, k));
    }
    let exact_single_s = t.elapsed().as_secs_f64() / single_n as f64;

    // Approximate, at the index's default candidate list size and a sweep of others.
    let mut approx_default = None;
    let mut sweep = Vec::new();
    if let Some(index) = c.index() {
        let default_ef = index.expansion_search();
        let mut efs: Vec<usize> = std::env::var("WEFT_BENCH_EF")
            .unwrap_or_else(|_| "16,32,64,128,256".into())
            .split(',')
            .filter_map(|x| x.trim().parse().ok())
            .collect();
        if !efs.contains(&default_ef) {
            efs.push(default_ef);
        }
        efs.sort_unstable();
        for ef in efs {
            c.index().unwrap().set_expansion_search(ef);
            let mut approx = Vec::new();
            let mut s2 = Vec::new();
            for _ in 0..repeats {
                let t = Instant::now();
                approx = c.nearest_batch_approximate(&queries, k).unwrap();
                s2.push(t.elapsed().as_secs_f64());
            }
            c.set_threads(1);
            let mut s1 = Vec::new();
            for _ in 0..repeats {
                let t = Instant::now();
                std::hint::black_box(c.nearest_batch_approximate(&queries, k));
                s1.push(t.elapsed().as_secs_f64());
            }
            c.set_threads(threads);
            let r = recall(&approx, &exact, k);
            sweep.push(format!(
                "{{\"ef\": {ef}, \"batch_s\": {:.6}, \"batch_1thread_s\": {:.6}, \"recall\": {r:.6}}}",
                median(s2.clone()),
                median(s1.clone())
            ));
            if ef == default_ef {
                approx_default = Some((median(s2), median(s1), r, ef));
                if let Some(dir) = &out_dir {
                    std::fs::create_dir_all(dir).unwrap();
                    std::fs::write(dir.join("weft_approx.json"), rows_json(&approx)).unwrap();
                }
            }
        }
        c.index().unwrap().set_expansion_search(default_ef);
    }
    let t = Instant::now();
    let md5 = c.content_hash("md5").unwrap();
    let md5_s = t.elapsed().as_secs_f64();

    if let Some(dir) = &out_dir {
        std::fs::create_dir_all(dir).unwrap();
        let ids: Vec<String> = qrows.iter().map(|r| r.to_string()).collect();
        std::fs::write(dir.join("queries.json"), format!("[{}]", ids.join(","))).unwrap();
        std::fs::write(dir.join("weft_exact.json"), rows_json(&exact)).unwrap();
    }

    let opt = |x: Option<f64>| x.map_or("null".to_string(), |v| format!("{v:.6}"));
    println!(
        "{{\"rows\": {rows}, \"dims\": {dims}, \"queries\": {}, \"k\": {k}, \"threads\": {threads}, \
         \"exact_batch_s\": {:.6}, \"exact_batch_1thread_s\": {:.6}, \"exact_single_query_s\": {:.6}, \
         \"approx_batch_s\": {}, \"approx_batch_1thread_s\": {}, \"approx_recall\": {}, \
         \"ef_search\": {}, \"hnsw_m\": {}, \"hnsw_ef_construction\": {}, \
         \"approx_sweep\": [{}], \"startup_mmap_s\": {:.6}, \
         \"startup_mmap_with_index_s\": {:.6}, \"startup_text_finalfusion_s\": {:.6}, \
         \"startup_text_plain_parse_s\": {:.6}, \"md5_s\": {:.6}, \"md5\": \"{md5}\", \
         \"index\": \"{}\"}}",
        qrows.len(),
        median(exact_s),
        median(exact1_s),
        exact_single_s,
        opt(approx_default.map(|a| a.0)),
        opt(approx_default.map(|a| a.1)),
        opt(approx_default.map(|a| a.2)),
        approx_default.map_or(0, |a| a.3),
        c.index().map_or(0, |i| i.header().params.connectivity),
        c.index().map_or(0, |i| i.header().params.expansion_add),
        sweep.join(", "),
        median(mmap_s),
        open_with_index_s,
        median(text_s),
        text_plain_s,
        md5_s,
        default_index_path(&path).display()
    );
}
