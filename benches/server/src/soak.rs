//! `weft-bench soak`: mixed reads and writes, REST and GraphQL, over many connections for a
//! fixed time; passes when no request failed and the server's resident memory at the end is
//! within the stated bound of what it was after the warm-up.
//!
//! The bound. dev-memory keeps every object *and every earlier version of it* in memory (a
//! PATCH adds a history entry), so a correct server grows with what is written. The soak counts
//! the versions it stores after the warm-up sample (successful creates and PATCHes) and allows
//! `--bytes-per-version` (default 1024) for each, plus `--slack-mib` (default 32) for the rest
//! (allocator arenas, connection buffers, a hash table doubling). What one version really costs
//! in dev-memory is printed too: 400–450 B on the reference runs (the property JSON, the
//! object's strings, its history slot), so the allowance is more than twice that. Reads — 70 % of the
//! requests — store nothing, so a leak of a few hundred bytes per request exceeds the bound.
//! Growth per request is printed as well.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use hyper::{Method, Request, StatusCode};
use serde_json::{json, Value};

use crate::load::{self, graphql_data, mib, short, Body, Bounds, Endpoint, Rng, Workload};

#[derive(clap::Args, Debug)]
pub struct SoakArgs {
    /// The server's base URL, `http://127.0.0.1:PORT/weaviate/v1`.
    #[arg(long)]
    pub url: String,
    /// The server's process id (its `/proc/<pid>/status` is read for VmRSS).
    #[arg(long)]
    pub pid: u32,
    /// Root key id (`X-API-KEY`).
    #[arg(long, env = "WEFT_SOAK_KEY")]
    pub key: String,
    /// Root key token (`X-API-TOKEN`).
    #[arg(long, env = "WEFT_SOAK_TOKEN")]
    pub token: String,
    /// Length of the load, seconds (the warm-up is the first part of it).
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Seconds of load before the warm-up memory sample.
    #[arg(long, default_value_t = 10)]
    pub warmup: u64,
    /// Connections (each sends its requests back to back).
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Objects created (in batches) before the load starts.
    #[arg(long, default_value_t = 1000)]
    pub preload: usize,
    /// Most requests in the whole run (the run ends at the time or the count, whichever first).
    #[arg(long, default_value_t = 20_000_000)]
    pub max_requests: u64,
    /// Memory allowed per version stored after warm-up, bytes.
    #[arg(long, default_value_t = 1024)]
    pub bytes_per_version: u64,
    /// Memory allowed on top, MiB.
    #[arg(long, default_value_t = 32)]
    pub slack_mib: u64,
    /// Where to write the results as JSON.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

const KINDS: &[&str] = &[
    "REST create",
    "REST get",
    "REST patch",
    "REST list",
    "GraphQL Get where",
    "GraphQL Get page",
];
/// Share of each kind, percent (same order).
const WEIGHTS: &[usize] = &[5, 40, 25, 10, 10, 10];

struct Soak {
    ep: Endpoint,
    /// Ids of the objects that exist (preloaded and created).
    ids: Mutex<Vec<String>>,
    preload: usize,
    next_name: AtomicU64,
    created: AtomicU64,
    patched: AtomicU64,
}

fn pick(ids: &Mutex<Vec<String>>, rng: &mut Rng) -> String {
    let ids = ids.lock().unwrap_or_else(|e| e.into_inner());
    ids[rng.below(ids.len())].clone()
}

impl Workload for Soak {
    fn kinds(&self) -> &'static [&'static str] {
        KINDS
    }

    fn next(&self, rng: &mut Rng) -> (usize, Request<Body>) {
        let mut roll = rng.below(100);
        let mut kind = 0;
        while roll >= WEIGHTS[kind] {
            roll -= WEIGHTS[kind];
            kind += 1;
        }
        let req = match kind {
            0 => {
                let n = self.next_name.fetch_add(1, Ordering::Relaxed);
                let body = json!({"thing": {
                    "@context": "http://example.org/soak",
                    "@class": "City",
                    "schema": {"name": format!("Soak {n}"), "population": n, "isCapital": n % 7 == 3}
                }});
                self.ep.request(
                    Method::POST,
                    "/things",
                    Some(serde_json::to_vec(&body).expect("json").into()),
                )
            }
            1 => {
                let id = pick(&self.ids, rng);
                self.ep.request(Method::GET, &format!("/things/{id}"), None)
            }
            2 => {
                let id = pick(&self.ids, rng);
                let body = json!([
                    {"op": "replace", "path": "/schema/population", "value": rng.below(10_000_000)}
                ]);
                self.ep.request(
                    Method::PATCH,
                    &format!("/things/{id}"),
                    Some(serde_json::to_vec(&body).expect("json").into()),
                )
            }
            3 => self.ep.request(Method::GET, "/things?maxResults=10", None),
            4 => {
                let i = rng.below(self.preload);
                self.ep.graphql(&format!(
                    r#"{{ Local {{ Get {{ Things {{ City(where: {{operator: Equal, path: ["name"], valueString: "Soak {i}"}}) {{ uuid name population }} }} }} }} }}"#
                ))
            }
            _ => self.ep.graphql(
                "{ Local { Get { Things { City(first: 10) { uuid name population isCapital } } } } }",
            ),
        };
        (kind, req)
    }

    fn check(&self, kind: usize, status: StatusCode, body: &Bytes) -> Result<(), String> {
        match kind {
            0 => {
                if !status.is_success() {
                    return Err(format!("{status}: {}", short(body)));
                }
                let v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
                let id = v["thingId"]
                    .as_str()
                    .ok_or_else(|| format!("no thingId in {}", short(body)))?;
                self.ids
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(id.to_string());
                self.created.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            1..=3 => {
                if status != StatusCode::OK {
                    return Err(format!("{status}: {}", short(body)));
                }
                if kind == 2 {
                    self.patched.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }
            4 => {
                let data = graphql_data(status, body)?;
                let found = data["Local"]["Get"]["Things"]["City"]
                    .as_array()
                    .map_or(0, Vec::len);
                if found != 1 {
                    return Err(format!("expected 1 object, got {found}: {}", short(body)));
                }
                Ok(())
            }
            _ => {
                let data = graphql_data(status, body)?;
                let found = data["Local"]["Get"]["Things"]["City"]
                    .as_array()
                    .map_or(0, Vec::len);
                if found != 10 {
                    return Err(format!("expected 10 objects, got {found}: {}", short(body)));
                }
                Ok(())
            }
        }
    }
}

/// The soak's class.
pub async fn create_city_class(ep: &Endpoint) -> anyhow::Result<()> {
    let class = json!({"class": "City", "properties": [
        {"name": "name", "@dataType": ["string"]},
        {"name": "population", "@dataType": ["int"]},
        {"name": "isCapital", "@dataType": ["boolean"]}
    ]});
    load::one(
        ep,
        ep.request(
            Method::POST,
            "/schema/things",
            Some(serde_json::to_vec(&class)?.into()),
        ),
    )
    .await
    .context("create the class City")?;
    Ok(())
}

/// The ids in a `/batching/things` answer, and how many items failed.
pub fn batch_ids(body: &[u8]) -> anyhow::Result<(Vec<String>, usize)> {
    let items: Vec<Value> = serde_json::from_slice(body).context("batch answer")?;
    let mut ids = vec![];
    let mut failed = 0;
    for item in items {
        match item["thingId"].as_str() {
            Some(id) if item["result"]["status"] == "SUCCESS" => ids.push(id.to_string()),
            _ => failed += 1,
        }
    }
    Ok((ids, failed))
}

pub async fn soak(a: SoakArgs) -> anyhow::Result<bool> {
    anyhow::ensure!(
        a.warmup < a.seconds,
        "--warmup must be shorter than --seconds"
    );
    anyhow::ensure!(a.preload > 0, "--preload must be at least 1");
    let ep = Endpoint::parse(&a.url)?.with_key(&a.key, &a.token)?;
    create_city_class(&ep).await?;
    let mut ids = vec![];
    for chunk in (0..a.preload).collect::<Vec<_>>().chunks(500) {
        let items: Vec<Value> = chunk
            .iter()
            .map(|i| {
                json!({"@context": "http://example.org/soak", "@class": "City",
                "schema": {"name": format!("Soak {i}"), "population": i, "isCapital": false}})
            })
            .collect();
        let body = serde_json::to_vec(&json!({ "things": items }))?;
        let answer = load::one(
            &ep,
            ep.request(Method::POST, "/batching/things", Some(body.into())),
        )
        .await?;
        let (got, failed) = batch_ids(&answer)?;
        anyhow::ensure!(failed == 0, "{failed} preloaded objects failed");
        ids.extend(got);
    }
    let rss_start = load::rss_bytes(a.pid)?;
    let workload = Arc::new(Soak {
        ep: ep.clone(),
        ids: Mutex::new(ids),
        preload: a.preload,
        next_name: AtomicU64::new(a.preload as u64),
        created: AtomicU64::new(0),
        patched: AtomicU64::new(0),
    });
    let versions = |w: &Soak| w.created.load(Ordering::Relaxed) + w.patched.load(Ordering::Relaxed);

    println!(
        "soak: {} s of load ({} s warm-up), {} connections, {} objects preloaded; mix: {}",
        a.seconds,
        a.warmup,
        a.connections,
        a.preload,
        KINDS
            .iter()
            .zip(WEIGHTS)
            .map(|(k, w)| format!("{k} {w}%"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // The monitor: RSS every second, the warm-up sample at `warmup` seconds.
    let done = Arc::new(AtomicBool::new(false));
    let monitor = {
        let w = workload.clone();
        let done = done.clone();
        let pid = a.pid;
        let warmup = Duration::from_secs(a.warmup);
        tokio::spawn(async move {
            let start = Instant::now();
            let mut warm: Option<(u64, u64, f64)> = None;
            let mut peak = 0u64;
            let mut samples = vec![];
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            while !done.load(Ordering::Relaxed) {
                tick.tick().await;
                let Ok(rss) = load::rss_bytes(pid) else {
                    break;
                };
                peak = peak.max(rss);
                samples.push((start.elapsed().as_secs_f64(), rss));
                if warm.is_none() && start.elapsed() >= warmup {
                    warm = Some((rss, versions(&w), start.elapsed().as_secs_f64()));
                }
            }
            (warm, peak, samples)
        })
    };
    let stats = load::run(
        &ep,
        workload.clone(),
        a.connections,
        Bounds {
            duration: Duration::from_secs(a.seconds),
            max_requests: a.max_requests,
        },
        None,
    )
    .await;
    done.store(true, Ordering::Relaxed);
    let rss_end = load::rss_bytes(a.pid).context("the server is gone at the end of the soak")?;
    let (warm, peak, samples) = monitor.await?;
    let (rss_warm, versions_warm, warm_at) =
        warm.context("no warm-up memory sample (the server stopped?)")?;
    let versions_end = versions(&workload);
    let written = versions_end - versions_warm;
    let allowed = rss_warm + a.slack_mib * 1024 * 1024 + a.bytes_per_version * written;
    let growth = rss_end as i64 - rss_warm as i64;
    let per_version = if written > 0 {
        growth as f64 / written as f64
    } else {
        0.0
    };
    let per_request = growth as f64 / stats.requests().max(1) as f64;
    let errors = stats.errors();
    let memory_ok = rss_end <= allowed;
    let pass = errors == 0 && memory_ok;

    println!(
        "  requests: {}  errors: {}  requests/s: {:.0}  latency p50 {:.2} ms, p99 {:.2} ms",
        stats.requests(),
        errors,
        stats.per_second(),
        stats.percentile_ms(0.5),
        stats.percentile_ms(0.99)
    );
    for (name, k) in &stats.kinds {
        let mut l = k.latencies_us.clone();
        println!(
            "    {name:<18} {:>9} requests  {:>4} errors  p50 {:>7.2} ms  p99 {:>7.2} ms",
            k.requests,
            k.errors,
            load::percentile_ms(&mut l, 0.5),
            load::percentile_ms(&mut l, 0.99)
        );
    }
    for e in &stats.error_samples {
        println!("    error: {e}");
    }
    println!(
        "  server RSS (VmRSS): before the load {:.1} MiB; after warm-up ({warm_at:.0} s) {:.1} MiB; at the end {:.1} MiB; peak {:.1} MiB",
        mib(rss_start),
        mib(rss_warm),
        mib(rss_end),
        mib(peak)
    );
    println!(
        "  stored versions written after warm-up: {written} (creates and PATCHes; {} objects at the end); growth {:.1} MiB = {per_version:.0} B per version, {per_request:.0} B per request",
        workload.ids.lock().unwrap_or_else(|e| e.into_inner()).len(),
        growth as f64 / (1024.0 * 1024.0)
    );
    println!(
        "  bound: warm-up RSS + {} MiB + {} B x {written} versions = {:.1} MiB -> {}",
        a.slack_mib,
        a.bytes_per_version,
        mib(allowed),
        if memory_ok { "within" } else { "EXCEEDED" }
    );
    println!(
        "  soak {}",
        if pass {
            "PASSED"
        } else if errors > 0 {
            "FAILED: errors"
        } else {
            "FAILED: memory"
        }
    );
    if let Some(path) = &a.json {
        let report = json!({
            "pass": pass,
            "machine": crate::machine::info(),
            "seconds": a.seconds,
            "warmup_s": a.warmup,
            "preload": a.preload,
            "mix_percent": KINDS.iter().zip(WEIGHTS).map(|(k, w)| (k.to_string(), json!(w))).collect::<serde_json::Map<_, _>>(),
            "load": stats.to_json(),
            "rss_before_load_bytes": rss_start,
            "rss_after_warmup_bytes": rss_warm,
            "rss_end_bytes": rss_end,
            "rss_peak_bytes": peak,
            "rss_samples": samples.iter().map(|(t, r)| json!([t, r])).collect::<Vec<_>>(),
            "versions_written_after_warmup": written,
            "growth_bytes_per_version": per_version,
            "growth_bytes_per_request": per_request,
            "bound_bytes": allowed,
            "bound": {"slack_mib": a.slack_mib, "bytes_per_version": a.bytes_per_version},
        });
        crate::output::write_json(path, &report)?;
    }
    Ok(pass)
}
