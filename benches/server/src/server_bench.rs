//! `weft-bench server`: the server's part of `scripts/bench.sh`, against a running `weft serve`
//! (its address and root key given; `scripts/bench.sh` runs it against dev-memory, then against
//! embedded with `--skip-get`), in this order:
//!
//! 1. batch import of `--small` objects of the class City (`POST /batching/things`, `--batch`
//!    items per request, `--import-connections` requests in flight), then GraphQL `Get` with an
//!    equality filter and `GetMeta` at that size, one connection, queries back to back;
//! 2. the import of the rest up to `--large` objects, and the same queries at that size;
//!    import throughput is over all of it (bodies are serialised before the clock starts);
//! 3. `GET /things/{id}` with the root key over `--connections` connections against the bare
//!    poem route of `weft-bench serve-ceiling` (a child process answering the same JSON), in
//!    rounds (each side back to back after a short warm-up, alternating which goes first); the
//!    ratio is the median of the rounds' ratios. `--skip-get` leaves this part out (and
//!    `rest_get` out of the JSON).

use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use bytes::Bytes;
use hyper::{Method, Request, StatusCode};
use serde_json::{json, Value};

use crate::load::{self, graphql_data, short, Body, Bounds, Conn, Endpoint, Rng, Workload};

#[derive(clap::Args, Debug)]
pub struct ServerArgs {
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
    pub json: std::path::PathBuf,
    /// Objects of the class at the first GraphQL measurement.
    #[arg(long, default_value_t = 10_000)]
    pub small: usize,
    /// Objects of the class at the second.
    #[arg(long, default_value_t = 200_000)]
    pub large: usize,
    /// Items per batch request.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Batch requests in flight.
    #[arg(long, default_value_t = 2)]
    pub import_connections: usize,
    /// Seconds per GraphQL measurement (at most; `--graphql-queries` bounds the count).
    #[arg(long, default_value_t = 5.0)]
    pub graphql_seconds: f64,
    /// Queries per GraphQL measurement (at most).
    #[arg(long, default_value_t = 500)]
    pub graphql_queries: usize,
    /// Connections for the REST GET comparison.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Seconds per measured REST GET round (each side), after `--warmup-seconds`.
    #[arg(long, default_value_t = 3.0)]
    pub get_seconds: f64,
    /// Rounds of the REST GET comparison (ceiling then weft, or the other way round, back to
    /// back); the ratio is the median of the rounds' ratios, so that load from other processes
    /// that changes between rounds cancels out.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Unmeasured load before each REST GET round, seconds.
    #[arg(long, default_value_t = 1.0)]
    pub warmup_seconds: f64,
    /// Most requests per REST GET round.
    #[arg(long, default_value_t = 5_000_000)]
    pub max_requests: u64,
    /// Leave out the REST GET comparison (import and GraphQL only; the JSON then has no
    /// `rest_get`): for a second, cheaper run against another connector.
    #[arg(long)]
    pub skip_get: bool,
}

/// The batch bodies of objects `from..to`.
fn batch_bodies(from: usize, to: usize, batch: usize) -> Vec<Bytes> {
    (from..to)
        .collect::<Vec<_>>()
        .chunks(batch)
        .map(|chunk| {
            let items: Vec<Value> = chunk
                .iter()
                .map(|i| {
                    json!({"@context": "http://example.org/bench", "@class": "City",
                    "schema": {"name": format!("City {i}"), "population": i, "isCapital": i % 10 == 0}})
                })
                .collect();
            serde_json::to_vec(&json!({ "things": items }))
                .expect("json")
                .into()
        })
        .collect()
}

struct Import {
    objects: usize,
    seconds: f64,
    errors: usize,
    /// The first answers (for ids).
    kept: Vec<Bytes>,
}

/// Sends `bodies` over `connections` connections ([`load::import`]), keeping the first ten
/// answers.
async fn import(ep: &Endpoint, bodies: Vec<Bytes>, connections: usize, batch: usize) -> Import {
    let kept = Arc::new(Mutex::new(Vec::new()));
    let keep = kept.clone();
    let done = load::import(
        ep,
        bodies,
        connections,
        batch,
        Duration::from_secs(120),
        Arc::new(move |_, _: &Bytes, answer: Bytes| {
            let mut k = keep.lock().unwrap_or_else(|e| e.into_inner());
            if k.len() < 10 {
                k.push(answer);
            }
        }),
    )
    .await;
    let kept = std::mem::take(&mut *kept.lock().unwrap_or_else(|e| e.into_inner()));
    Import {
        objects: done.objects,
        seconds: done.seconds,
        errors: done.errors,
        kept,
    }
}

/// Times one kind of GraphQL query back to back on one connection: per-query milliseconds.
async fn time_queries(
    ep: &Endpoint,
    seconds: f64,
    max: usize,
    mut query: impl FnMut(&mut Rng) -> String,
    check: impl Fn(&Value) -> Result<(), String>,
) -> anyhow::Result<Value> {
    let mut conn = Conn::open(ep.addr).await?;
    let mut rng = Rng::new(42);
    let mut times = vec![];
    let mut errors = 0usize;
    let mut first_error = None;
    // Two unmeasured queries (schema cache, page cache), then at most `max` or `seconds`.
    let start = Instant::now();
    let mut i = 0usize;
    while i < max + 2 && (i < 5 || start.elapsed().as_secs_f64() < seconds) {
        let q = query(&mut rng);
        let t = Instant::now();
        let (status, body) = conn.send(ep.graphql(&q), load::REQUEST_TIMEOUT).await?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if let Err(e) = graphql_data(status, &body).and_then(|d| check(&d)) {
            errors += 1;
            first_error.get_or_insert(e);
        }
        if i >= 2 {
            times.push(ms);
        }
        i += 1;
    }
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    Ok(json!({
        "queries": times.len(),
        "errors": errors,
        "first_error": first_error,
        "mean_ms": mean,
        "median_ms": sorted[sorted.len() / 2],
        "min_ms": sorted[0],
    }))
}

async fn graphql_at(ep: &Endpoint, n: usize, a: &ServerArgs) -> anyhow::Result<Value> {
    let get = time_queries(
        ep,
        a.graphql_seconds,
        a.graphql_queries,
        |rng| {
            let i = rng.below(n);
            format!(
                r#"{{ Local {{ Get {{ Things {{ City(where: {{operator: Equal, path: ["name"], valueString: "City {i}"}}) {{ uuid name population }} }} }} }} }}"#
            )
        },
        |d| {
            let found = d["Local"]["Get"]["Things"]["City"]
                .as_array()
                .map_or(0, Vec::len);
            if found == 1 {
                Ok(())
            } else {
                Err(format!("expected 1 object, got {found}"))
            }
        },
    )
    .await?;
    let meta = time_queries(
        ep,
        a.graphql_seconds,
        a.graphql_queries,
        |_| {
            "{ Local { GetMeta { Things { City { meta { count } population { lowest highest average sum } } } } } }".into()
        },
        |d| {
            let m = &d["Local"]["GetMeta"]["Things"]["City"];
            let c = m["meta"]["count"].as_u64();
            if c == Some(n as u64) {
                Ok(())
            } else {
                Err(format!("expected meta count {n}, got {m}"))
            }
        },
    )
    .await?;
    println!(
        "  GraphQL at {n:>7} objects: Get where name = …: {:8.2} ms/query (median {:.2}, {} queries); GetMeta: {:8.2} ms/query (median {:.2}, {} queries)",
        get["mean_ms"].as_f64().unwrap_or(0.0),
        get["median_ms"].as_f64().unwrap_or(0.0),
        get["queries"],
        meta["mean_ms"].as_f64().unwrap_or(0.0),
        meta["median_ms"].as_f64().unwrap_or(0.0),
        meta["queries"]
    );
    Ok(json!({"objects": n, "get_where_equal": get, "getmeta": meta}))
}

/// `GET /things/{id}` for random ids of a fixed set.
struct GetThing {
    ep: Endpoint,
    ids: Vec<String>,
}

impl Workload for GetThing {
    fn kinds(&self) -> &'static [&'static str] {
        &["GET /things/{id}"]
    }

    fn next(&self, rng: &mut Rng) -> (usize, Request<Body>) {
        let id = &self.ids[rng.below(self.ids.len())];
        (
            0,
            self.ep.request(Method::GET, &format!("/things/{id}"), None),
        )
    }

    fn check(&self, _: usize, status: StatusCode, body: &Bytes) -> Result<(), String> {
        if status == StatusCode::OK && body.len() > 2 {
            Ok(())
        } else {
            Err(format!("{status}: {}", short(body)))
        }
    }
}

/// The ceiling server, a child process; killed when dropped (and it exits when its stdin closes).
struct Ceiling {
    child: Child,
    url: String,
}

impl Ceiling {
    fn start(body_file: &std::path::Path) -> anyhow::Result<Ceiling> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .arg("serve-ceiling")
            .arg("--body-file")
            .arg(body_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("start the ceiling server")?;
        let stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        let url = line
            .trim()
            .strip_prefix("ceiling: listening on ")
            .ok_or_else(|| anyhow!("the ceiling server printed {line:?}"))?
            .to_string();
        Ok(Ceiling { child, url })
    }
}

impl Drop for Ceiling {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn get_rounds(
    weft: &Endpoint,
    ceiling: &Endpoint,
    ids: Vec<String>,
    a: &ServerArgs,
) -> anyhow::Result<Value> {
    let on = |ep: &Endpoint| {
        Arc::new(GetThing {
            ep: ep.clone(),
            ids: ids.clone(),
        })
    };
    let (w_load, c_load) = (on(weft), on(ceiling));
    let bounds = Bounds {
        duration: Duration::from_secs_f64(a.get_seconds),
        max_requests: a.max_requests,
    };
    let warm = Bounds {
        duration: Duration::from_secs_f64(a.warmup_seconds),
        max_requests: a.max_requests,
    };
    let mut rounds = vec![];
    let mut ratios = vec![];
    anyhow::ensure!(a.rounds > 0, "--rounds must be at least 1");
    let (mut w_req, mut w_s, mut w_err, mut c_req, mut c_s, mut c_err) = (0, 0.0, 0, 0, 0.0, 0);
    for round in 0..a.rounds {
        let mut pair = [None, None];
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            let (ep, w) = if side == 0 {
                (ceiling, &c_load)
            } else {
                (weft, &w_load)
            };
            let _ = load::run(ep, w.clone(), a.connections, warm, None).await;
            let s = load::run(ep, w.clone(), a.connections, bounds, None).await;
            for e in &s.error_samples {
                eprintln!("  REST GET error ({}): {e}", ["ceiling", "weft"][side]);
            }
            pair[side] = Some(s);
        }
        let [Some(c), Some(w)] = pair else {
            unreachable!()
        };
        println!(
            "  REST GET round {}: ceiling {:.0} req/s (p50 {:.2} ms, p99 {:.2} ms, {} errors); weft {:.0} req/s (p50 {:.2} ms, p99 {:.2} ms, {} errors); ratio {:.3}",
            round + 1,
            c.per_second(),
            c.percentile_ms(0.5),
            c.percentile_ms(0.99),
            c.errors(),
            w.per_second(),
            w.percentile_ms(0.5),
            w.percentile_ms(0.99),
            w.errors(),
            w.per_second() / c.per_second()
        );
        (c_req, c_s, c_err) = (
            c_req + c.requests(),
            c_s + c.elapsed.as_secs_f64(),
            c_err + c.errors(),
        );
        (w_req, w_s, w_err) = (
            w_req + w.requests(),
            w_s + w.elapsed.as_secs_f64(),
            w_err + w.errors(),
        );
        ratios.push(w.per_second() / c.per_second());
        rounds.push(json!({"ceiling": c.to_json(), "weft": w.to_json(), "ratio": w.per_second() / c.per_second()}));
    }
    let (w_rate, c_rate) = (w_req as f64 / w_s, c_req as f64 / c_s);
    ratios.sort_by(f64::total_cmp);
    let n = ratios.len();
    let median = (ratios[(n - 1) / 2] + ratios[n / 2]) / 2.0;
    Ok(json!({
        "connections": a.connections,
        "seconds_per_round": a.get_seconds,
        "rounds": rounds,
        "weft_requests_per_s": w_rate,
        "ceiling_requests_per_s": c_rate,
        "weft_errors": w_err,
        "ceiling_errors": c_err,
        "ratio_of_totals": w_rate / c_rate,
        "ratio": median,
        "ratio_is": "median of the rounds' ratios",
    }))
}

pub async fn server(a: ServerArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.small > 0 && a.small < a.large,
        "--small must be below --large"
    );
    let ep = Endpoint::parse(&a.url)?.with_key(&a.key, &a.token)?;
    crate::soak::create_city_class(&ep).await?;
    let dir = a
        .json
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();

    // 1. Import the small set, query.
    let first = import(
        &ep,
        batch_bodies(0, a.small, a.batch),
        a.import_connections,
        a.batch,
    )
    .await;
    println!(
        "  import of the first {} objects: {:.2} s ({:.0} things/s), {} errors",
        first.objects,
        first.seconds,
        first.objects as f64 / first.seconds,
        first.errors
    );
    let small = graphql_at(&ep, a.small, &a).await?;
    // 2. Import the rest, query.
    let rest = import(
        &ep,
        batch_bodies(a.small, a.large, a.batch),
        a.import_connections,
        a.batch,
    )
    .await;
    println!(
        "  import of the next {} objects: {:.2} s ({:.0} things/s), {} errors",
        rest.objects,
        rest.seconds,
        rest.objects as f64 / rest.seconds,
        rest.errors
    );
    let large = graphql_at(&ep, a.large, &a).await?;
    let objects = first.objects + rest.objects;
    let seconds = first.seconds + rest.seconds;
    let import_errors = first.errors + rest.errors;

    // 3. REST GET against the ceiling.
    let get = if a.skip_get {
        None
    } else {
        let mut ids = vec![];
        for body in &first.kept {
            ids.extend(crate::soak::batch_ids(body)?.0);
        }
        anyhow::ensure!(!ids.is_empty(), "the import answered no ids");
        let sample = load::one(
            &ep,
            ep.request(Method::GET, &format!("/things/{}", ids[0]), None),
        )
        .await?;
        let body_file = dir.join("ceiling-body.json");
        std::fs::write(&body_file, &sample)?;
        let ceiling = Ceiling::start(&body_file)?;
        let ceiling_ep = Endpoint::parse(&ceiling.url)?.with_key(&a.key, &a.token)?;
        let get = get_rounds(&ep, &ceiling_ep, ids, &a).await?;
        drop(ceiling);
        Some((get, sample.len()))
    };

    let ratio = |k: &str| {
        large[k]["mean_ms"].as_f64().unwrap_or(f64::NAN)
            / small[k]["mean_ms"].as_f64().unwrap_or(f64::NAN)
    };
    let mut report = json!({
        "import": {
            "objects": objects,
            "batch": a.batch,
            "connections": a.import_connections,
            "seconds": seconds,
            "things_per_s": objects as f64 / seconds,
            "errors": import_errors,
            "phases": [
                {"objects": first.objects, "seconds": first.seconds},
                {"objects": rest.objects, "seconds": rest.seconds}
            ],
        },
        "graphql": {
            "small": small,
            "large": large,
            "growth_objects": a.large as f64 / a.small as f64,
            "get_where_equal_ratio": ratio("get_where_equal"),
            "getmeta_ratio": ratio("getmeta"),
        },
    });
    if let Some((get, response_bytes)) = get {
        report["rest_get"] = get;
        report["response_bytes"] = json!(response_bytes);
    }
    crate::output::write_json(&a.json, &report)?;
    Ok(())
}
