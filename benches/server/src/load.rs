//! The load generator: N workers, each owning one HTTP/1.1 connection (keep-alive) and sending
//! its requests back to back on it, until a deadline or a total request count, whichever comes
//! first. Every response is checked by the workload; a failed check, a transport error or a
//! timeout counts as an error of that operation (and a broken connection is reopened).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;

/// A request body.
pub type Body = Full<Bytes>;

/// How long one request may take before it counts as an error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A small, fast pseudo-random generator (xorshift64*), one per worker.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Where requests go: `http://host:port/prefix`, with headers sent on every request.
#[derive(Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    authority: String,
    prefix: String,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Endpoint {
    /// `url` is `http://127.0.0.1:PORT[/prefix]`.
    pub fn parse(url: &str) -> anyhow::Result<Endpoint> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("{url}: only http:// URLs"))?;
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let addr: SocketAddr = authority
            .parse()
            .with_context(|| format!("{url}: the host must be an IP address and port"))?;
        Ok(Endpoint {
            addr,
            authority: authority.to_string(),
            prefix: prefix.to_string(),
            headers: vec![],
        })
    }

    /// The same endpoint with `X-API-KEY` and `X-API-TOKEN` on every request.
    pub fn with_key(mut self, key: &str, token: &str) -> anyhow::Result<Endpoint> {
        self.headers.push((
            HeaderName::from_static("x-api-key"),
            HeaderValue::from_str(key)?,
        ));
        self.headers.push((
            HeaderName::from_static("x-api-token"),
            HeaderValue::from_str(token)?,
        ));
        Ok(self)
    }

    /// A request for `prefix + path`; a body is sent as JSON.
    pub fn request(&self, method: Method, path: &str, body: Option<Bytes>) -> Request<Body> {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.prefix))
            .header(HOST, &self.authority);
        for (k, v) in &self.headers {
            b = b.header(k, v);
        }
        let body = match body {
            Some(bytes) => {
                b = b.header(CONTENT_TYPE, "application/json");
                Full::new(bytes)
            }
            None => Full::new(Bytes::new()),
        };
        b.body(body).expect("a valid request")
    }

    /// A GraphQL request (`POST {prefix}/graphql`).
    pub fn graphql(&self, query: &str) -> Request<Body> {
        let body = serde_json::to_vec(&serde_json::json!({ "query": query })).expect("json");
        self.request(Method::POST, "/graphql", Some(body.into()))
    }
}

/// One open HTTP/1.1 connection.
pub struct Conn {
    sender: http1::SendRequest<Body>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Conn> {
        let stream = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        .map_err(|_| anyhow!("connect to {addr}: timed out"))?
        .with_context(|| format!("connect to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { sender })
    }

    /// Sends `req` and reads the whole answer (within `timeout`).
    pub async fn send(
        &mut self,
        req: Request<Body>,
        timeout: Duration,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let work = async {
            self.sender.ready().await?;
            let resp = self.sender.send_request(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, body))
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| anyhow!("no complete answer within {timeout:?}"))?
    }
}

/// What a load run sends and how it checks the answers.
pub trait Workload: Send + Sync + 'static {
    /// Names of the kinds of operation (indexes are what `next` answers).
    fn kinds(&self) -> &'static [&'static str];
    /// The next request, and its kind.
    fn next(&self, rng: &mut Rng) -> (usize, Request<Body>);
    /// Checks an answer; `Err` counts as an error.
    fn check(&self, kind: usize, status: StatusCode, body: &Bytes) -> Result<(), String>;
}

/// How long and how much.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub duration: Duration,
    pub max_requests: u64,
}

/// Results of one kind of operation.
#[derive(Debug, Default, Clone)]
pub struct KindStats {
    pub requests: u64,
    pub errors: u64,
    /// Microseconds per request (successful or not).
    pub latencies_us: Vec<u32>,
}

/// Results of a run.
#[derive(Debug)]
pub struct Stats {
    pub kinds: Vec<(&'static str, KindStats)>,
    pub elapsed: Duration,
    pub connections: usize,
    /// The first few error messages.
    pub error_samples: Vec<String>,
}

impl Stats {
    pub fn requests(&self) -> u64 {
        self.kinds.iter().map(|(_, k)| k.requests).sum()
    }

    pub fn errors(&self) -> u64 {
        self.kinds.iter().map(|(_, k)| k.errors).sum()
    }

    pub fn per_second(&self) -> f64 {
        self.requests() as f64 / self.elapsed.as_secs_f64()
    }

    /// Latency percentile over every kind, milliseconds.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        let mut all: Vec<u32> = self
            .kinds
            .iter()
            .flat_map(|(_, k)| k.latencies_us.iter().copied())
            .collect();
        percentile_ms(&mut all, p)
    }

    pub fn to_json(&self) -> serde_json::Value {
        let kinds: serde_json::Map<String, serde_json::Value> = self
            .kinds
            .iter()
            .map(|(name, k)| {
                let mut l = k.latencies_us.clone();
                (
                    name.to_string(),
                    serde_json::json!({
                        "requests": k.requests,
                        "errors": k.errors,
                        "p50_ms": percentile_ms(&mut l, 0.50),
                        "p99_ms": percentile_ms(&mut l, 0.99),
                    }),
                )
            })
            .collect();
        serde_json::json!({
            "connections": self.connections,
            "seconds": self.elapsed.as_secs_f64(),
            "requests": self.requests(),
            "errors": self.errors(),
            "requests_per_s": self.per_second(),
            "p50_ms": self.percentile_ms(0.50),
            "p99_ms": self.percentile_ms(0.99),
            "by_operation": kinds,
            "error_samples": self.error_samples,
        })
    }
}

pub fn percentile_ms(v: &mut [u32], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_unstable();
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    v[i] as f64 / 1000.0
}

const KEEP_ERRORS: usize = 8;

/// Runs `workload` over `connections` connections to `ep` within `bounds`; `stop` ends it
/// early when set.
pub async fn run<W: Workload>(
    ep: &Endpoint,
    workload: Arc<W>,
    connections: usize,
    bounds: Bounds,
    stop: Option<Arc<AtomicBool>>,
) -> Stats {
    let issued = Arc::new(AtomicU64::new(0));
    let samples = Arc::new(Mutex::new(Vec::<String>::new()));
    let start = Instant::now();
    let deadline = start + bounds.duration;
    let mut tasks = Vec::with_capacity(connections);
    for worker in 0..connections {
        let w = workload.clone();
        let issued = issued.clone();
        let samples = samples.clone();
        let stop = stop.clone();
        let addr = ep.addr;
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(worker as u64 + 1);
            let mut stats: Vec<KindStats> = vec![KindStats::default(); w.kinds().len()];
            let mut conn: Option<Conn> = None;
            let note = |msg: String| {
                let mut s = samples.lock().unwrap_or_else(|e| e.into_inner());
                if s.len() < KEEP_ERRORS {
                    s.push(msg);
                }
            };
            loop {
                if Instant::now() >= deadline
                    || stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed))
                    || issued.fetch_add(1, Ordering::Relaxed) >= bounds.max_requests
                {
                    break;
                }
                let (kind, req) = w.next(&mut rng);
                let t = Instant::now();
                let c = match conn.as_mut() {
                    Some(c) => c,
                    None => match Conn::open(addr).await {
                        Ok(c) => conn.insert(c),
                        Err(e) => {
                            stats[kind].requests += 1;
                            stats[kind].errors += 1;
                            note(format!("{}: {e:#}", w.kinds()[kind]));
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                    },
                };
                let answer = c.send(req, REQUEST_TIMEOUT).await;
                let us = t.elapsed().as_micros().min(u32::MAX as u128) as u32;
                let s = &mut stats[kind];
                s.requests += 1;
                s.latencies_us.push(us);
                match answer {
                    Ok((status, body)) => {
                        if let Err(m) = w.check(kind, status, &body) {
                            s.errors += 1;
                            note(format!("{}: {m}", w.kinds()[kind]));
                        }
                    }
                    Err(e) => {
                        s.errors += 1;
                        note(format!("{}: {e:#}", w.kinds()[kind]));
                        conn = None;
                    }
                }
            }
            stats
        }));
    }
    let mut total: Vec<KindStats> = vec![KindStats::default(); workload.kinds().len()];
    for t in tasks {
        let stats = t.await.expect("a load worker panicked");
        for (acc, s) in total.iter_mut().zip(stats) {
            acc.requests += s.requests;
            acc.errors += s.errors;
            acc.latencies_us.extend(s.latencies_us);
        }
    }
    let elapsed = start.elapsed();
    let error_samples = samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Stats {
        kinds: workload.kinds().iter().copied().zip(total).collect(),
        elapsed,
        connections,
        error_samples,
    }
}

/// Sends one request on a fresh connection and expects a 2xx; the body.
pub async fn one(ep: &Endpoint, req: Request<Body>) -> anyhow::Result<Bytes> {
    let what = format!("{} {}", req.method(), req.uri());
    let mut c = Conn::open(ep.addr).await?;
    let (status, body) = c.send(req, REQUEST_TIMEOUT).await?;
    if !status.is_success() {
        anyhow::bail!("{what}: {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(body)
}

/// Checks a GraphQL answer: 200, JSON, no `errors`; the `data`.
pub fn graphql_data(status: StatusCode, body: &Bytes) -> Result<serde_json::Value, String> {
    if status != StatusCode::OK {
        return Err(format!("{status}: {}", short(body)));
    }
    let mut v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON ({e}): {}", short(body)))?;
    if v.get("errors").is_some_and(|e| !e.is_null()) {
        return Err(format!("GraphQL errors: {}", short(body)));
    }
    Ok(v["data"].take())
}

/// The first 300 bytes of a body, for messages.
pub fn short(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    if s.len() > 300 {
        format!("{}…", &s[..s.floor_char_boundary_compat(300)])
    } else {
        s.into_owned()
    }
}

trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, i: usize) -> usize;
}

impl FloorCharBoundary for str {
    fn floor_char_boundary_compat(&self, mut i: usize) -> usize {
        while !self.is_char_boundary(i) {
            i -= 1;
        }
        i
    }
}

/// `VmRSS` of process `pid`, bytes.
pub fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status (is the server running?)"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or_else(|| anyhow!("/proc/{pid}/status has no VmRSS"))?;
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .ok_or_else(|| anyhow!("cannot read {line:?}"))?;
    Ok(kb * 1024)
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Occurrences of `needle` in `hay`.
pub fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// What [`import`] did.
pub struct Imported {
    /// Items in the bodies sent.
    pub objects: usize,
    pub seconds: f64,
    /// Items not stored (failed items, and every item of a batch that failed).
    pub errors: usize,
}

/// A successful batch's answer, with the batch's index and body.
pub type Answered = Arc<dyn Fn(usize, &Bytes, Bytes) + Send + Sync>;

/// Sends the `POST /batching/things` `bodies` (about `batch` items each) over `connections`
/// connections, each batch within `timeout`; every item must succeed (failures are counted
/// and printed). `answered` is given each successful batch's answer.
pub async fn import(
    ep: &Endpoint,
    bodies: Vec<Bytes>,
    connections: usize,
    batch: usize,
    timeout: Duration,
    answered: Answered,
) -> Imported {
    let bodies = Arc::new(bodies);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = vec![];
    for _ in 0..connections {
        let (bodies, next, ep, answered) =
            (bodies.clone(), next.clone(), ep.clone(), answered.clone());
        tasks.push(tokio::spawn(async move {
            let mut errors = 0usize;
            let mut conn: Option<Conn> = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break };
                let c = match conn.as_mut() {
                    Some(c) => c,
                    None => match Conn::open(ep.addr).await {
                        Ok(c) => conn.insert(c),
                        Err(e) => {
                            eprintln!("import: {e:#}");
                            errors += batch;
                            continue;
                        }
                    },
                };
                let req = ep.request(Method::POST, "/batching/things", Some(body.clone()));
                match c.send(req, timeout).await {
                    Ok((status, answer)) if status == StatusCode::OK => {
                        let ok = count(&answer, b"\"SUCCESS\"");
                        let items = count(body, b"\"@class\"");
                        if ok != items {
                            eprintln!(
                                "import: {} of {items} items failed: {}",
                                items - ok,
                                short(&answer)
                            );
                            errors += items - ok;
                        }
                        answered(i, body, answer);
                    }
                    Ok((status, answer)) => {
                        eprintln!("import: {status}: {}", short(&answer));
                        errors += batch;
                    }
                    Err(e) => {
                        eprintln!("import: {e:#}");
                        errors += batch;
                        conn = None;
                    }
                }
            }
            errors
        }));
    }
    let mut errors = 0;
    for t in tasks {
        errors += t.await.expect("an import task panicked");
    }
    Imported {
        objects: bodies.iter().map(|b| count(b, b"\"@class\"")).sum(),
        seconds: start.elapsed().as_secs_f64(),
        errors,
    }
}
