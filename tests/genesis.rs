//! `weft genesis` end to end: the real binary, with small stub peers (a std `TcpListener` that
//! has its own Ed25519 identity, answers `GET /weaviate/v1/p2p/ping` signed with it and records
//! every `PUT /weaviate/v1/p2p/genesis`, checking its signature).
//!
//! The genesis takes only signed registrations, pings and leaves (Weaviate 0.12 peers, which
//! cannot sign, only with `--accept-unsigned-peers`); most tests here are written as attacks:
//! each says what an attacker does and what must happen.
//!
//! Build first: `cargo build -p weft -p weft-contextionary` (the contextionary test loads the
//! plugin library to compute the md5 peers compare), and `scripts/fetch-test-contextionary.sh`.
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use weft_e2e_tests::{assert_error_shape, build_dir, message, test_contextionary, weft_bin};
use weft_peer_protocol::client::now_s;
use weft_peer_protocol::signature::{
    sign_request, sign_response, verify_request, verify_response, SignatureHeaders, Target,
    GENESIS_NAME, MAX_SKEW_S,
};
use weft_peer_protocol::{Identity, PublicKey};

/// What the genesis answers for every failed reachability check, whatever the reason.
const NO_ECHO: &str = "the peer did not answer the echo";

// ---------------------------------------------------------------------------------------------
// The genesis process.

/// A running `weft genesis` on 127.0.0.1 with a free port; killed when dropped.
struct Genesis {
    child: std::process::Child,
    url: String,
    /// `127.0.0.1:PORT`: the `@authority` requests to it are signed for.
    authority: String,
    /// The identity it printed at start.
    identity: PublicKey,
    /// Its `--data-dir` (in `_temp` unless the test gave one).
    data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    http: reqwest::blocking::Client,
}

/// One answer of the genesis.
struct Reply {
    status: u16,
    /// The JSON body (`Null` when empty, a string when not JSON).
    body: Value,
    /// The body's bytes as received.
    raw: Vec<u8>,
    headers: reqwest::header::HeaderMap,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Genesis {
    /// Starts it with `args`, in a fresh temporary `--data-dir` unless `args` name one.
    fn start(args: &[&str]) -> Genesis {
        if args.contains(&"--data-dir") {
            let i = args.iter().position(|a| *a == "--data-dir").unwrap();
            let dir = PathBuf::from(args.get(i + 1).expect("--data-dir DIR"));
            return Self::launch(args, dir, None);
        }
        let temp = tempfile::tempdir().expect("a temporary data directory");
        let dir = temp.path().to_path_buf();
        let mut all: Vec<&str> = args.to_vec();
        let d = dir.to_str().unwrap().to_string();
        all.extend(["--data-dir", &d]);
        Self::launch(&all, dir, Some(temp))
    }

    /// Starts it on `dir` (kept by the caller, e.g. to restart on it).
    fn start_in(dir: &Path, args: &[&str]) -> Genesis {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--data-dir", dir.to_str().unwrap()]);
        Self::launch(&all, dir.to_path_buf(), None)
    }

    fn launch(args: &[&str], data_dir: PathBuf, temp: Option<tempfile::TempDir>) -> Genesis {
        let mut cmd = std::process::Command::new(weft_bin());
        cmd.args(["genesis", "--listen", "127.0.0.1:0"])
            .args(args)
            .env(
                "WEFT_LOG",
                std::env::var("WEFT_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit());
        for v in [
            "WEFT_GENESIS_ADMIN_KEY",
            "WEFT_GENESIS_ADMIN_TOKEN",
            "WEFT_TLS_CERT",
            "WEFT_TLS_KEY",
            "WEFT_CA_FILE",
        ] {
            cmd.env_remove(v);
        }
        let mut child = cmd.spawn().expect("start weft genesis");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut printed = vec![];
        let mut identity = None;
        let url = loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("weft genesis: listening on ") {
                        break url.to_string();
                    }
                    if let Some(key) = line.strip_prefix("weft genesis: identity ") {
                        identity = Some(key.parse::<PublicKey>().unwrap_or_else(|e| {
                            panic!("the identity line names no public key: {line:?}: {e}")
                        }));
                    }
                    printed.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("weft genesis did not report its address within 30 s; it printed {printed:?}");
                }
            }
        };
        let Some(identity) = identity else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("weft genesis printed no identity line before its address: {printed:?}");
        };
        assert!(
            url.starts_with("http://127.0.0.1:") && !url.ends_with(":0"),
            "the listening line names the real port: {url}"
        );
        let authority = url.trim_start_matches("http://").to_string();
        Genesis {
            child,
            url,
            authority,
            identity,
            data_dir,
            _temp: temp,
            http: reqwest::blocking::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(15))
                .build()
                .unwrap(),
        }
    }

    /// The signature headers of `method path` with `body`, signed by `identity` as `peer` at
    /// `created` (Unix seconds).
    fn sign(
        &self,
        identity: &Identity,
        peer: &str,
        method: &str,
        path: &str,
        body: &[u8],
        created: i64,
    ) -> SignatureHeaders {
        sign_request(
            identity,
            peer,
            &Target {
                method,
                authority: &self.authority,
                path,
                query: None,
            },
            body,
            created,
        )
        .expect("sign the request")
    }

    /// `method path` with exactly `body` and `headers`. Every 4xx/5xx must carry the error
    /// body with a message.
    fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(m, format!("{}{path}", self.url));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_vec());
        }
        let resp = req.send().expect("the genesis answers");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let raw = resp.bytes().map(|b| b.to_vec()).unwrap_or_default();
        let body = if raw.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&raw)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&raw).into_owned()))
        };
        if status >= 400 {
            assert_error_shape(method, path, status, &body);
        }
        Reply {
            status,
            body,
            raw,
            headers,
        }
    }

    /// `method path` with a JSON body, signed by `identity` as `peer` now.
    fn signed(
        &self,
        identity: &Identity,
        peer: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Reply {
        let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
        let s = self.sign(
            identity,
            peer,
            method,
            path,
            bytes.as_deref().unwrap_or_default(),
            now_s(),
        );
        self.raw(method, path, bytes.as_deref(), &s.pairs())
    }

    /// `method path` with a JSON body, signed as `stub` (its key, `Weft-Peer` its name) when
    /// given, else unsigned (a Weaviate 0.12 peer, or anybody).
    fn send_as(
        &self,
        stub: Option<&StubPeer>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let r = match stub {
            Some(s) => self.signed(&s.identity, &s.name, method, path, body.as_ref()),
            None => {
                let bytes = body.map(|b| serde_json::to_vec(&b).unwrap());
                self.raw(method, path, bytes.as_deref(), &[])
            }
        };
        (r.status, r.body)
    }

    /// Unsigned `method path`.
    fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.send_as(None, method, path, body)
    }

    /// `POST /peers/register` of `peer` at its own URI, signed with its key.
    fn try_register(&self, peer: &StubPeer) -> (u16, Value) {
        self.send_as(
            Some(peer),
            "POST",
            "/peers/register",
            Some(json!({"peerName": peer.name, "peerUri": peer.url})),
        )
    }

    /// Registers `peer` (signed): 200, the answer.
    fn register(&self, peer: &StubPeer) -> Value {
        let (s, b) = self.try_register(peer);
        assert_eq!(s, 200, "registering {}: {b}", peer.name);
        b
    }

    /// Registers `peer` unsigned, as a Weaviate 0.12 peer does.
    fn register_unsigned(&self, peer: &StubPeer) -> (u16, Value) {
        self.send(
            "POST",
            "/peers/register",
            Some(json!({"peerName": peer.name, "peerUri": peer.url})),
        )
    }

    /// `POST /peers/{id}/ping` signed as `peer`; the status.
    fn ping(&self, peer: &StubPeer, id: &str, body: Value) -> u16 {
        self.send_as(Some(peer), "POST", &format!("/peers/{id}/ping"), Some(body))
            .0
    }

    /// `DELETE /peers/{id}` signed as `peer`; the status.
    fn leave(&self, peer: &StubPeer, id: &str) -> u16 {
        self.send_as(Some(peer), "DELETE", &format!("/peers/{id}"), None)
            .0
    }

    /// `GET /peers`.
    fn peers(&self) -> Vec<Value> {
        let (s, b) = self.send("GET", "/peers", None);
        assert_eq!(s, 200, "{b}");
        b.as_array()
            .unwrap_or_else(|| panic!("GET /peers is not an array: {b}"))
            .clone()
    }

    /// The entry of `GET /peers` named `name`.
    fn peer_named(&self, name: &str) -> Option<Value> {
        self.peers().into_iter().find(|p| p["peerName"] == name)
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .peers()
            .iter()
            .map(|p| p["peerName"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Genesis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Stub peers and other small servers.

/// One `PUT /weaviate/v1/p2p/genesis` a stub received.
#[derive(Debug, Clone)]
struct Push {
    /// Header names in lower case.
    headers: HashMap<String, String>,
    body: Value,
    /// The key the push is signed with (its signature verified for this stub's address), or
    /// why it did not verify.
    signer: Result<PublicKey, String>,
    /// The `Weft-Peer` it was signed as.
    signed_as: Option<String>,
}

impl Push {
    /// The peer names of a full list (the 0.12 array).
    fn names(&self) -> Option<Vec<String>> {
        let mut n: Vec<String> = self
            .body
            .as_array()?
            .iter()
            .map(|p| p["name"].as_str().unwrap_or_default().to_string())
            .collect();
        n.sort();
        Some(n)
    }
}

/// How a stub answers a signed ping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Echo {
    /// Signed with its own key (a Weft peer).
    Signed,
    /// Signed with another key than its own (somebody else's server at that address).
    WrongKey,
    /// Not signed (a Weaviate 0.12 peer, or any HTTP server).
    Unsigned,
}

struct StubState {
    name: String,
    port: u16,
    identity: Arc<Identity>,
    /// The key of [`Echo::WrongKey`].
    other: Identity,
    echo: Mutex<Echo>,
    pushes: Mutex<Vec<Push>>,
    /// The signer of every ping request received (`None`: unsigned or not verifying).
    pings: Mutex<Vec<Option<PublicKey>>>,
    alive: AtomicBool,
    stop: AtomicBool,
}

/// A tiny peer with its own identity: answers its ping endpoint (while `alive`; signed as
/// [`Echo`] says) and records the lists pushed to it.
struct StubPeer {
    name: String,
    url: String,
    identity: Arc<Identity>,
    state: Arc<StubState>,
}

impl StubPeer {
    fn start(name: &str) -> StubPeer {
        Self::start_with(name, Echo::Signed)
    }

    fn start_with(name: &str, echo: Echo) -> StubPeer {
        let listener = listener();
        let port = listener.local_addr().unwrap().port();
        let identity = Arc::new(Identity::generate());
        let state = Arc::new(StubState {
            name: name.into(),
            port,
            identity: identity.clone(),
            other: Identity::generate(),
            echo: Mutex::new(echo),
            pushes: Mutex::new(vec![]),
            pings: Mutex::new(vec![]),
            alive: AtomicBool::new(true),
            stop: AtomicBool::new(false),
        });
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || serve_stub(conn, &st));
            }
        });
        StubPeer {
            name: name.into(),
            url: format!("http://127.0.0.1:{port}"),
            identity,
            state,
        }
    }

    fn key(&self) -> PublicKey {
        self.identity.public()
    }

    fn set_echo(&self, echo: Echo) {
        *self.state.echo.lock().unwrap() = echo;
    }

    fn set_alive(&self, alive: bool) {
        self.state.alive.store(alive, Ordering::SeqCst);
    }

    fn pushes(&self) -> Vec<Push> {
        self.state.pushes.lock().unwrap().clone()
    }

    fn pings(&self) -> Vec<Option<PublicKey>> {
        self.state.pings.lock().unwrap().clone()
    }

    /// Waits (at most `within`) for a push that satisfies `f`; the first such.
    fn wait_for_push(&self, within: Duration, what: &str, f: impl Fn(&Push) -> bool) -> Push {
        let deadline = Instant::now() + within;
        loop {
            if let Some(p) = self.pushes().into_iter().find(|p| f(p)) {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "{} received no push with {what} within {within:?}; it received {:?}",
                self.name,
                self.pushes()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for StubPeer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.state.port));
    }
}

/// One HTTP/1.1 request as a stub reads it.
struct Request {
    method: String,
    path: String,
    /// Names in lower case.
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

fn read_request(conn: &TcpStream) -> Option<Request> {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(conn.try_clone().ok()?);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

fn respond(mut conn: TcpStream, status: &str, headers: &[(&str, &str)], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body);
    let _ = conn.flush();
}

/// Verifies the signature of `req`, received on `port`.
fn verify_at(port: u16, req: &Request) -> Result<weft_peer_protocol::signature::Verified, String> {
    let mut h = http::HeaderMap::new();
    for (k, v) in &req.headers {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            http::HeaderValue::from_str(v),
        ) {
            h.insert(n, v);
        }
    }
    let (path, query) = match req.path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (req.path.as_str(), None),
    };
    let authority = format!("127.0.0.1:{port}");
    verify_request(
        &Target {
            method: &req.method,
            authority: &authority,
            path,
            query,
        },
        &h,
        &req.body,
        now_s(),
    )
    .map_err(|e| e.to_string())
}

fn serve_stub(conn: TcpStream, st: &StubState) {
    let Some(req) = read_request(&conn) else {
        return;
    };
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/weaviate/v1/p2p/ping") => {
            st.pings
                .lock()
                .unwrap()
                .push(verify_at(st.port, &req).ok().map(|v| v.key));
            if !st.alive.load(Ordering::SeqCst) {
                return respond(conn, "503 Service Unavailable", &[], b"");
            }
            let body = serde_json::to_vec(&json!({"peerName": st.name})).unwrap();
            let request_signature = req
                .headers
                .get("signature")
                .map(|s| s.strip_prefix("weft=").unwrap_or(s).to_string());
            let echo = *st.echo.lock().unwrap();
            let signer = match (&request_signature, echo) {
                (Some(_), Echo::Signed) => Some(&*st.identity),
                (Some(_), Echo::WrongKey) => Some(&st.other),
                _ => None,
            };
            let signed = signer.map(|id| {
                sign_response(
                    id,
                    &st.name,
                    200,
                    &body,
                    request_signature.as_deref().unwrap(),
                    now_s(),
                )
                .expect("sign the answer")
            });
            let mut headers = vec![("Content-Type", "application/json")];
            if let Some(s) = &signed {
                headers.extend(s.pairs());
            }
            respond(conn, "200 OK", &headers, &body)
        }
        ("PUT", "/weaviate/v1/p2p/genesis") => {
            let verified = verify_at(st.port, &req);
            let body = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            st.pushes.lock().unwrap().push(Push {
                signed_as: verified.as_ref().ok().map(|v| v.peer.clone()),
                signer: verified.map(|v| v.key),
                headers: req.headers,
                body,
            });
            respond(conn, "200 OK", &[], b"")
        }
        _ => respond(conn, "404 Not Found", &[], b""),
    }
}

/// A server that answers every request with `status` and the body `secret`, counting them.
struct Canned {
    url: String,
    secret: String,
    hits: Arc<AtomicUsize>,
}

impl Canned {
    fn start(status: &'static str) -> Canned {
        Self::start_with(status, None)
    }

    /// With a `Location` header (a redirect).
    fn start_with(status: &'static str, location: Option<String>) -> Canned {
        let listener = listener();
        let port = listener.local_addr().unwrap().port();
        let secret = format!("SECRET-{}", Identity::generate().public().key_id());
        let hits = Arc::new(AtomicUsize::new(0));
        let (s, h) = (secret.clone(), hits.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (s, h, l) = (s.clone(), h.clone(), location.clone());
                std::thread::spawn(move || {
                    if read_request(&conn).is_some() {
                        h.fetch_add(1, Ordering::SeqCst);
                        let mut headers =
                            vec![("Content-Type", "text/plain"), ("X-Secret", s.as_str())];
                        if let Some(l) = &l {
                            headers.push(("Location", l.as_str()));
                        }
                        respond(conn, status, &headers, s.as_bytes());
                    }
                });
            }
        });
        Canned {
            url: format!("http://127.0.0.1:{port}"),
            secret,
            hits,
        }
    }
}

/// A listener on a free port whose number contains no status code the tests look for in
/// messages ("500", "503", "302").
fn listener() -> TcpListener {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port().to_string();
        if !["500", "503", "302"].iter().any(|c| port.contains(c)) {
            return l;
        }
    }
}

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    listener().local_addr().unwrap().port()
}

static NEXT: AtomicU16 = AtomicU16::new(0);

/// A peer name unique in this test binary.
fn name(prefix: &str) -> String {
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::SeqCst))
}

fn id_of(registration: &Value) -> String {
    registration["peer"]["id"].as_str().unwrap().to_string()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The message of a refused registration tells the echo failed and nothing of the target.
fn assert_tells_nothing(what: &str, status: u16, body: &Value, secret: Option<&str>) {
    assert_eq!(status, 400, "{what}: {body}");
    let m = message(body);
    assert!(m.contains(NO_ECHO), "{what}: {m}");
    let lower = m.to_ascii_lowercase();
    for leak in [
        "500",
        "503",
        "302",
        "refused",
        "connection",
        "timed out",
        "reset",
    ] {
        assert!(
            !lower.contains(leak),
            "{what}: the refusal leaks {leak:?}: {m}"
        );
    }
    if let Some(s) = secret {
        assert!(
            !m.contains(s),
            "{what}: the refusal leaks the target's body: {m}"
        );
        assert!(
            !body.to_string().contains(s),
            "{what}: the answer leaks the target's body: {body}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Weaviate 0.12 compatibility and the basic contract, signed.

/// A Weaviate 0.12 peer cannot sign: a genesis refuses its registration 401 (naming the flag)
/// unless started with `--accept-unsigned-peers`, which registers it, takes its unsigned pings
/// and leave, and pushes it the 0.12 `PeerUpdateList`. Even then an unsigned request cannot
/// take a name bound to a key nor act for a signed peer.
#[test]
fn a_weaviate_0_12_registration_is_refused_401_without_the_flag_and_taken_with_it() {
    let strict = Genesis::start(&[]);
    let old = StubPeer::start_with(&name("weaviate"), Echo::Unsigned);
    let (s, b) = strict.register_unsigned(&old);
    assert_eq!(s, 401, "{b}");
    assert!(message(&b).contains("--accept-unsigned-peers"), "{b}");
    assert!(strict.names().is_empty());
    assert!(
        old.pings().is_empty(),
        "an unsigned registration was checked"
    );
    drop(strict);

    let g = Genesis::start(&["--accept-unsigned-peers"]);
    let (s, r) = g.register_unsigned(&old);
    assert_eq!(s, 200, "{r}");
    let id = id_of(&r);
    assert!(r["peer"].get("identity").is_none(), "{r}");
    let listed = g.peer_named(&old.name).expect("registered");
    assert!(listed.get("identity").is_none(), "{listed}");
    // Pushed as 0.12's PeerUpdateList: [{id, name, uri, schemaHash}], nothing more.
    let p = old.wait_for_push(Duration::from_secs(10), "itself", |p| {
        p.names() == Some(vec![old.name.clone()])
    });
    let entry = &p.body[0];
    let mut keys: Vec<&String> = entry.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["id", "name", "schemaHash", "uri"], "{entry}");
    assert_eq!(entry["id"], id.as_str());
    assert_eq!(entry["uri"], old.url.as_str());
    let (s, b) = g.send(
        "POST",
        &format!("/peers/{id}/ping"),
        Some(json!({"schemaHash": "0.12"})),
    );
    assert_eq!(s, 200, "{b}");
    assert_eq!(g.peer_named(&old.name).unwrap()["schema_hash"], "0.12");

    // A signed peer in the same network: unsigned requests cannot touch it.
    let weft = StubPeer::start(&name("weft"));
    let wid = id_of(&g.register(&weft));
    let impostor = StubPeer::start_with(&weft.name, Echo::Unsigned);
    let (s, b) = g.register_unsigned(&impostor);
    assert_eq!(s, 409, "an unsigned registration took a bound name: {b}");
    for (method, path, body) in [
        (
            "POST",
            format!("/peers/{wid}/ping"),
            Some(json!({"schemaHash": "evil"})),
        ),
        ("DELETE", format!("/peers/{wid}"), None),
    ] {
        let (s, b) = g.send(method, &path, body);
        assert_eq!(s, 401, "unsigned {method} {path} for a signed peer: {b}");
    }
    let w = g.peer_named(&weft.name).expect("the signed peer stays");
    assert_eq!(w["peerUri"], weft.url.as_str());
    assert_eq!(w["schema_hash"], "");
    assert_eq!(w["identity"], weft.key().to_string().as_str());

    let (s, b) = g.send("DELETE", &format!("/peers/{id}"), None);
    assert_eq!(s, 204, "{b}");
    assert_eq!(g.names(), vec![weft.name.clone()]);
}

#[test]
fn invalid_registrations_are_422_naming_the_field() {
    let g = Genesis::start(&[]);
    let peer = StubPeer::start(&name("valid"));
    for (body, field) in [
        (
            json!({"peerName": "no spaces", "peerUri": peer.url}),
            "peerName",
        ),
        (
            json!({"peerName": "-dash", "peerUri": peer.url}),
            "peerName",
        ),
        (json!({"peerUri": peer.url}), "peerName"),
        (
            json!({"peerName": "ok", "peerUri": "ftp://127.0.0.1/"}),
            "peerUri",
        ),
        (json!({"peerName": "ok", "peerUri": "not a url"}), "peerUri"),
        (json!({"peerName": "ok"}), "peerUri"),
    ] {
        // Signed as the name it registers (when it has one), so only the field is wrong.
        let signer = body["peerName"].as_str().unwrap_or(&peer.name).to_string();
        let r = g.signed(
            &peer.identity,
            &signer,
            "POST",
            "/peers/register",
            Some(&body),
        );
        assert_eq!(r.status, 422, "{body} → {}", r.body);
        assert!(message(&r.body).contains(field), "{body} → {}", r.body);
    }
    // Not JSON at all: a 400 with the error body.
    let bytes = b"{nope";
    let s = g.sign(
        &peer.identity,
        &peer.name,
        "POST",
        "/peers/register",
        bytes,
        now_s(),
    );
    let r = g.raw("POST", "/peers/register", Some(bytes), &s.pairs());
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(g.names(), Vec::<String>::new());
    assert!(
        peer.pings().is_empty(),
        "an invalid registration was checked"
    );
}

#[test]
fn two_peers_each_receive_a_pushed_list_with_both() {
    let g = Genesis::start(&[]);
    let (a, b) = (
        StubPeer::start(&name("alpha")),
        StubPeer::start(&name("beta")),
    );
    let ra = g.register(&a);
    let rb = g.register(&b);
    // The contract's Peer with the peer's key, and no contextionary when the genesis has none.
    assert_eq!(ra["peer"]["peerName"], a.name.as_str());
    assert_eq!(ra["peer"]["peerUri"], a.url.as_str());
    assert_eq!(ra["peer"]["identity"], a.key().to_string().as_str(), "{ra}");
    assert!(ra["peer"]["last_contact_at"].as_i64().unwrap() > 0, "{ra}");
    assert_eq!(ra["peer"]["schema_hash"], "");
    assert!(ra.get("contextionary").is_none(), "{ra}");
    let both = sorted(vec![a.name.clone(), b.name.clone()]);
    assert_eq!(g.names(), both);
    for (peer, key) in [(&a, a.key()), (&b, b.key())] {
        assert_eq!(
            g.peer_named(&peer.name).unwrap()["identity"],
            key.to_string().as_str()
        );
    }
    for peer in [&a, &b] {
        let p = peer.wait_for_push(Duration::from_secs(10), "both peers", |p| {
            p.names().as_ref() == Some(&both)
        });
        // Weaviate 0.12's PeerUpdateList: [{id, name, uri, schemaHash}], with each peer's key.
        let entry = p
            .body
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == b.name.as_str())
            .unwrap()
            .clone();
        assert_eq!(entry["id"], rb["peer"]["id"], "{entry}");
        assert_eq!(entry["uri"], b.url.as_str(), "{entry}");
        assert_eq!(entry["schemaHash"], "", "{entry}");
        assert_eq!(entry["identity"], b.key().to_string().as_str(), "{entry}");
        let mut keys: Vec<&String> = entry.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            ["id", "identity", "name", "schemaHash", "uri"],
            "{entry}"
        );
        assert!(
            p.headers.contains_key("x-weft-peer-list-version"),
            "{:?}",
            p.headers
        );
        assert_eq!(p.signer.as_ref().ok(), Some(&g.identity), "{p:?}");
    }

    // Registering a name again (same key) replaces the registration, with a new id.
    let again = g.register(&a);
    assert_ne!(id_of(&again), id_of(&ra));
    assert_eq!(g.names(), both);
    assert_eq!(g.ping(&a, &id_of(&ra), json!({"schemaHash": "x"})), 404);
    assert_eq!(g.ping(&a, &id_of(&again), json!({"schemaHash": "x"})), 200);
}

#[test]
fn a_silent_peer_is_dropped_a_pinging_one_kept_and_schema_changes_pushed() {
    let g = Genesis::start(&["--liveness-timeout", "1.5"]);
    let (a, b) = (
        StubPeer::start(&name("pinger")),
        StubPeer::start(&name("silent")),
    );
    let ida = id_of(&g.register(&a));
    // B is heard from last at its registration, after `start`: it cannot be dropped before
    // `start` + 1.5 s.
    let start = Instant::now();
    g.register(&b);
    // A pings with a new schema hash: a change every peer is told about.
    assert_eq!(g.ping(&a, &ida, json!({"schemaHash": "0123abcd"})), 200);
    b.wait_for_push(Duration::from_secs(10), "pinger's new schema hash", |p| {
        p.body.as_array().is_some_and(|l| {
            l.iter()
                .any(|e| e["name"] == a.name.as_str() && e["schemaHash"] == "0123abcd")
        })
    });
    // A keeps pinging (every 300 ms) for more than twice the timeout; B stays silent.
    let mut dropped_after = None;
    let deadline = start + Duration::from_secs(20);
    loop {
        assert_eq!(g.ping(&a, &ida, json!({"schemaHash": "0123abcd"})), 200);
        let names = g.names();
        assert!(
            names.contains(&a.name),
            "a pinging peer was dropped: {names:?}"
        );
        if dropped_after.is_none() && !names.contains(&b.name) {
            dropped_after = Some(start.elapsed());
        }
        if dropped_after.is_some() && start.elapsed() >= Duration::from_millis(3500) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the silent peer was not dropped within 20 s of a 1.5 s liveness timeout"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let after = dropped_after.unwrap();
    assert!(
        after >= Duration::from_millis(1450),
        "dropped too early, after {after:?}"
    );
    a.wait_for_push(
        Duration::from_secs(10),
        "the list without the silent peer",
        |p| p.names().as_ref() == Some(&vec![a.name.clone()]),
    );
    assert_eq!(g.names(), vec![a.name.clone()]);
    let peers = g.peers();
    assert_eq!(peers[0]["schema_hash"], "0123abcd", "{peers:?}");
}

#[test]
fn delete_removes_at_once_and_pushes_and_unknown_ids_are_404() {
    let g = Genesis::start(&[]);
    let (a, b) = (
        StubPeer::start(&name("stay")),
        StubPeer::start(&name("leave")),
    );
    // A registered peer that then dies: pushes to it fail, which stops nothing.
    let dead = StubPeer::start(&name("dead"));
    g.register(&a);
    g.register(&dead);
    let dead_name = dead.name.clone();
    drop(dead);
    let idb = id_of(&g.register(&b));
    assert_eq!(g.leave(&b, &idb), 204);
    let left = sorted(vec![a.name.clone(), dead_name]);
    assert_eq!(g.names(), left);
    a.wait_for_push(
        Duration::from_secs(10),
        "the list without the leaver",
        |p| p.names().as_ref() == Some(&left),
    );
    let (s, body) = g.send_as(Some(&b), "DELETE", &format!("/peers/{idb}"), None);
    assert_eq!(s, 404, "{body}");

    let (s, body) = g.send_as(
        Some(&b),
        "POST",
        &format!("/peers/{idb}/ping"),
        Some(json!({"schemaHash": "abc"})),
    );
    assert_eq!(s, 404, "{body}");
    assert!(message(&body).contains("register again"), "{body}");
    let (s, body) = g.send_as(
        Some(&b),
        "POST",
        "/peers/not-a-uuid/ping",
        Some(json!({"schemaHash": "abc"})),
    );
    assert_eq!(s, 404, "{body}");
    assert!(message(&body).contains("register"), "{body}");
}

#[test]
fn a_peer_that_reports_its_list_version_receives_only_changes() {
    let g = Genesis::start(&[]);
    let (a, b) = (
        StubPeer::start(&name("delta")),
        StubPeer::start(&name("other")),
    );
    let ida = id_of(&g.register(&a));
    let idb = id_of(&g.register(&b));
    let both = sorted(vec![a.name.clone(), b.name.clone()]);
    let full = a.wait_for_push(Duration::from_secs(10), "both peers", |p| {
        p.names().as_ref() == Some(&both)
    });
    let version: u64 = full.headers["x-weft-peer-list-version"].parse().unwrap();
    assert_eq!(
        g.ping(
            &a,
            &ida,
            json!({"schemaHash": "", "peerListVersion": version})
        ),
        200
    );
    assert_eq!(g.leave(&b, &idb), 204);
    let changes = a.wait_for_push(Duration::from_secs(10), "changes", |p| {
        p.headers.get("x-weft-peer-list").map(String::as_str) == Some("changes")
    });
    assert_eq!(changes.body["from"], version, "{:?}", changes.body);
    assert_eq!(changes.body["removed"], json!([idb]), "{:?}", changes.body);
    assert_eq!(changes.body["upserted"], json!([]), "{:?}", changes.body);
    assert_eq!(
        changes.signer.as_ref().ok(),
        Some(&g.identity),
        "{changes:?}"
    );
}

#[test]
fn the_contextionary_is_announced_by_the_plugins_md5_and_downloadable() {
    let fifu = test_contextionary();
    let g = Genesis::start(&["--contextionary", fifu.to_str().unwrap()]);
    let peer = StubPeer::start(&name("c11y"));
    let r = g.register(&peer);
    let c = &r["contextionary"];
    assert_eq!(c["hash"]["algorithm"], "md5", "{r}");
    assert_eq!(c["hash"]["value"], plugin_md5(&fifu).as_str(), "{r}");
    let (s, announced) = g.send("GET", "/contextionary", None);
    assert_eq!(s, 200);
    assert_eq!(&announced, c);

    let file_name = fifu.file_name().unwrap().to_str().unwrap();
    let url = c["url"].as_str().unwrap();
    assert_eq!(url, format!("{}/contextionary/{file_name}", g.url));
    let got = g.http.get(url).send().unwrap();
    assert_eq!(got.status().as_u16(), 200);
    assert!(got.bytes().unwrap().as_ref() == std::fs::read(&fifu).unwrap().as_slice());

    let index = fifu.with_file_name(format!("{file_name}.hnsw"));
    let index_url = c["indexUrl"].as_str().expect("the index is announced");
    assert_eq!(index_url, format!("{url}.hnsw"));
    let got = g.http.get(index_url).send().unwrap();
    assert_eq!(got.status().as_u16(), 200);
    assert!(got.bytes().unwrap().as_ref() == std::fs::read(&index).unwrap().as_slice());

    for other in ["other.fifu", "..%2F..%2Fetc%2Fpasswd"] {
        let (s, b) = g.send("GET", &format!("/contextionary/{other}"), None);
        assert_eq!(s, 404, "{other}: {b}");
    }
}

/// The md5 the `finalfusion` plugin answers for `content_hash("md5")`, as a peer computes it.
fn plugin_md5(fifu: &Path) -> String {
    let so = build_dir().join("libweft_contextionary.so");
    assert!(
        so.exists(),
        "{} is missing: run `cargo build -p weft-contextionary`",
        so.display()
    );
    let plugin = weft::plugins::load_file(&so).expect("load the contextionary plugin");
    let handle =
        weft_core::ContextionaryHandle::open(&plugin, &json!({"path": fifu.to_str().unwrap()}))
            .expect("open the test contextionary");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(handle.content_hash("md5"))
        .expect("md5")
}

#[test]
fn without_a_contextionary_the_genesis_says_so() {
    let g = Genesis::start(&[]);
    let (s, b) = g.send("GET", "/contextionary", None);
    assert_eq!(s, 404, "{b}");
    assert!(message(&b).contains("--contextionary"), "{b}");
}

#[test]
fn committed_genesis_openapi_document_matches_the_handlers_and_is_served() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi/weft-genesis-openapi.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed.trim_end() == weft_genesis::openapi_document().trim_end(),
        "openapi/weft-genesis-openapi.json is stale: the genesis handlers changed. Regenerate it with\n  cargo run -p weft -- genesis --print-openapi > openapi/weft-genesis-openapi.json"
    );
    let g = Genesis::start(&[]);
    let (s, served) = g.send("GET", "/openapi.json", None);
    assert_eq!(s, 200);
    let committed: Value = serde_json::from_str(&committed).unwrap();
    assert!(
        served == committed,
        "GET /openapi.json differs from the committed document"
    );
    let ops: Vec<&str> = [
        "/peers",
        "/peers/register",
        "/peers/{peerId}",
        "/peers/{peerId}/ping",
        "/admin/peers/{peerName}",
    ]
    .into_iter()
    .filter(|p| served["paths"].get(*p).is_none())
    .collect();
    assert!(ops.is_empty(), "the contract's paths {ops:?} are missing");
}

#[test]
fn bad_flags_are_one_line_errors_naming_the_flag() {
    let data = tempfile::tempdir().unwrap();
    for (args, flag) in [
        (vec!["--liveness-timeout", "soon"], "--liveness-timeout"),
        (vec!["--liveness-timeout", "0"], "--liveness-timeout"),
        (
            vec!["--header-read-timeout", "soon"],
            "--header-read-timeout",
        ),
        (vec!["--header-read-timeout", "0"], "--header-read-timeout"),
        (
            vec!["--contextionary", "/nonexistent/x.fifu"],
            "--contextionary",
        ),
        (vec!["--contextionary", "Cargo.toml"], "--contextionary"),
        (vec!["--max-peers", "0"], "--max-peers"),
    ] {
        let out = std::process::Command::new(weft_bin())
            .args(["genesis", "--listen", "127.0.0.1:0"])
            .args(["--data-dir", data.path().to_str().unwrap()])
            .args(&args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?}: {err}");
    }
}

#[test]
fn sigterm_right_after_start_stops_the_genesis_gracefully() {
    let mut g = Genesis::start(&[]);
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &g.child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = g.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "weft genesis ignored SIGTERM for 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // Exit code 0, not "killed by signal": the handler was installed before the line.
    assert_eq!(status.code(), Some(0), "{status:?}");
}

// ---------------------------------------------------------------------------------------------
// Attacks.

/// An attacker with its own key and its own server (answering pings signed with that key)
/// registers the name "alpha" that peer A holds, to receive alpha's traffic: 409 naming both
/// keys and how the operator frees a name; alpha stays at A's URI with A's key, and the
/// attacker's URI is never stored nor pushed to.
#[test]
fn taking_over_a_registered_name_with_another_key_is_409() {
    let g = Genesis::start(&[]);
    let a = StubPeer::start(&name("alpha"));
    let ida = id_of(&g.register(&a));
    let b = StubPeer::start(&a.name);
    assert_ne!(a.key(), b.key());

    let (s, body) = g.try_register(&b);
    assert_eq!(s, 409, "{body}");
    let m = message(&body);
    for part in [
        a.key().to_string(),
        b.key().to_string(),
        format!("DELETE /admin/peers/{}", a.name),
    ] {
        assert!(m.contains(&part), "the refusal does not name {part}: {m}");
    }
    let peers = g.peers();
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert_eq!(peers[0]["peerName"], a.name.as_str());
    assert_eq!(peers[0]["peerUri"], a.url.as_str());
    assert_eq!(peers[0]["id"], ida.as_str());
    assert_eq!(peers[0]["identity"], a.key().to_string().as_str());
    assert!(
        !serde_json::to_string(&peers).unwrap().contains(&b.url),
        "the attacker's URI was stored: {peers:?}"
    );
    // A's pushes never carry the attacker's URI, and the attacker receives none.
    let p = a.wait_for_push(Duration::from_secs(10), "itself", |p| {
        p.names() == Some(vec![a.name.clone()])
    });
    assert!(!p.body.to_string().contains(&b.url), "{p:?}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        b.pushes().is_empty(),
        "the attacker received {:?}",
        b.pushes()
    );
    assert!(a
        .pushes()
        .iter()
        .all(|p| !p.body.to_string().contains(&b.url)));
    // A itself still registers again.
    assert_eq!(g.try_register(&a).0, 200);
}

/// An attacker signs with its own key (`Weft-Peer: mallory`) a registration of another name,
/// hoping the name is checked against the body only: 403, nothing stored, the name not bound.
#[test]
fn registering_another_name_than_the_signer_is_403() {
    let g = Genesis::start(&[]);
    let mallory = StubPeer::start(&name("mallory"));
    let victim = name("victim");
    let r = g.signed(
        &mallory.identity,
        &mallory.name,
        "POST",
        "/peers/register",
        Some(&json!({"peerName": victim, "peerUri": mallory.url})),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let m = message(&r.body);
    assert!(m.contains("Weft-Peer") && m.contains(&victim), "{m}");
    assert!(g.names().is_empty());
    assert!(mallory.pushes().is_empty());
    // The name is still free for its owner.
    let owner = StubPeer::start(&victim);
    assert_eq!(g.try_register(&owner).0, 200);
}

/// An attacker registers its name with a peerUri where another server answers (somebody else's
/// Weft peer, signing with its own key; or any unsigned HTTP server), to make the network send
/// traffic there or to evict the peer at that URI: the genesis asks that address, signed, and
/// refuses 400 "the peer did not answer the echo" unless the answer is signed with the
/// registering key; nothing is stored, the address's own peer stays, the name stays unbound.
#[test]
fn an_address_that_does_not_answer_with_the_registering_key_is_refused() {
    let g = Genesis::start(&[]);
    // Someone else's key answers at the address.
    let wrong = StubPeer::start_with(&name("wrongkey"), Echo::WrongKey);
    let (s, b) = g.try_register(&wrong);
    assert_tells_nothing("an answer signed with another key", s, &b, None);
    // An answer without signature.
    let unsigned = StubPeer::start_with(&name("unsigned"), Echo::Unsigned);
    let (s, b) = g.try_register(&unsigned);
    assert_tells_nothing("an unsigned answer", s, &b, None);
    assert!(g.names().is_empty(), "{:?}", g.peers());
    // The genesis did ask each address, signed with its printed identity.
    for stub in [&wrong, &unsigned] {
        let pings = stub.pings();
        assert!(!pings.is_empty(), "{} was never asked", stub.name);
        assert!(
            pings.iter().all(|k| k.as_ref() == Some(&g.identity)),
            "{}: {pings:?}",
            stub.name
        );
        assert!(stub.pushes().is_empty());
    }

    // An attacker claims the URI of a registered peer A: A answers with A's key.
    let a = StubPeer::start(&name("alpha"));
    let ida = id_of(&g.register(&a));
    let mallory = Identity::generate();
    let evil = name("mallory");
    let r = g.signed(
        &mallory,
        &evil,
        "POST",
        "/peers/register",
        Some(&json!({"peerName": evil, "peerUri": a.url})),
    );
    assert_tells_nothing("another peer's address", r.status, &r.body, None);
    let peers = g.peers();
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert_eq!(peers[0]["id"], ida.as_str(), "A was evicted: {peers:?}");
    assert_eq!(g.ping(&a, &ida, json!({"schemaHash": ""})), 200);

    // Nothing was bound: once the addresses answer with the registering keys, both register.
    wrong.set_echo(Echo::Signed);
    unsigned.set_echo(Echo::Signed);
    assert_eq!(g.try_register(&wrong).0, 200);
    assert_eq!(g.try_register(&unsigned).0, 200);
}

/// An attacker uses the genesis as a port scanner / request forwarder: it registers peerUris
/// pointing at internal services (one answering 500 with a secret body, one answering 200 with
/// a secret, one redirecting to another internal service, a service answering 503) and at a
/// closed port. Each is 400 "the peer did not
/// answer the echo", and the refusal tells nothing of the target: neither its body, nor its
/// status, nor the connection error; redirects are not followed. Nothing is stored.
#[test]
fn the_genesis_is_no_port_scanner_refusals_tell_nothing_of_the_target() {
    let g = Genesis::start(&[]);
    let attacker = Identity::generate();
    let failing = Canned::start("500 Internal Server Error");
    let answering = Canned::start("200 OK");
    let sick = StubPeer::start(&name("sick"));
    sick.set_alive(false);
    let closed = format!("http://127.0.0.1:{}", closed_port());
    // A redirect to an internal service the attacker cannot reach itself.
    let internal = Canned::start("200 OK");
    let redirect = Canned::start_with(
        "302 Found",
        Some(format!("{}/weaviate/v1/p2p/ping", internal.url)),
    );
    for (what, uri, secret, hits) in [
        (
            "a 500 with a secret",
            failing.url.clone(),
            Some(&failing.secret),
            Some(&failing.hits),
        ),
        (
            "a 200 with a secret",
            answering.url.clone(),
            Some(&answering.secret),
            Some(&answering.hits),
        ),
        (
            "a redirect",
            redirect.url.clone(),
            Some(&redirect.secret),
            Some(&redirect.hits),
        ),
        ("a 503", sick.url.clone(), None, None),
        ("a closed port", closed.clone(), None, None),
    ] {
        let peer = name("scanner");
        let r = g.signed(
            &attacker,
            &peer,
            "POST",
            "/peers/register",
            Some(&json!({"peerName": peer, "peerUri": uri})),
        );
        assert_tells_nothing(what, r.status, &r.body, secret.map(String::as_str));
        // What it does say is the operator's own input: the address asked.
        let m = message(&r.body);
        assert!(m.contains(&uri) && m.contains("peerUri"), "{what}: {m}");
        if let Some(s) = secret {
            let raw = String::from_utf8_lossy(&r.raw);
            assert!(!raw.contains(s.as_str()), "{what}: {raw}");
            assert!(
                r.headers
                    .values()
                    .all(|v| !v.to_str().unwrap_or("").contains(s.as_str())),
                "{what}: a header leaks the secret: {:?}",
                r.headers
            );
        }
        // The genesis did reach the target: the refusal is the echo check's.
        if let Some(h) = hits {
            assert!(h.load(Ordering::SeqCst) >= 1, "{what}: never asked");
        }
    }
    assert!(!sick.pings().is_empty(), "the 503 service was never asked");
    assert_eq!(
        internal.hits.load(Ordering::SeqCst),
        0,
        "the genesis followed a redirect"
    );
    assert!(g.names().is_empty(), "{:?}", g.peers());
}

/// A stranger acts for a registered peer A by A's id (from `GET /peers`): it pings with a
/// forged schema hash or deletes A, signed with its own key (also while claiming A's name in
/// `Weft-Peer`, also as a registered peer itself) — 403; unsigned — 401. A stays registered,
/// its schema hash untouched, and A itself still pings.
#[test]
fn a_stranger_cannot_ping_or_remove_another_peers_registration() {
    let g = Genesis::start(&[]);
    let a = StubPeer::start(&name("alpha"));
    let ida = id_of(&g.register(&a));
    let stranger = StubPeer::start(&name("mallory"));
    g.register(&stranger);
    let outsider = Identity::generate();
    let ping = format!("/peers/{ida}/ping");
    let leave = format!("/peers/{ida}");
    let forged = json!({"schemaHash": "forged"});
    for (who, identity, as_name) in [
        (
            "a registered stranger",
            &*stranger.identity,
            stranger.name.as_str(),
        ),
        ("an outsider", &outsider, "outsider"),
        ("an outsider claiming A's name", &outsider, a.name.as_str()),
    ] {
        let r = g.signed(identity, as_name, "POST", &ping, Some(&forged));
        assert_eq!(r.status, 403, "{who} pinged A: {}", r.body);
        let r = g.signed(identity, as_name, "DELETE", &leave, None);
        assert_eq!(r.status, 403, "{who} deleted A: {}", r.body);
        assert!(
            message(&r.body).contains(&a.key().to_string()),
            "{}",
            r.body
        );
    }
    let unsigned_ping = g.send("POST", &ping, Some(forged.clone()));
    let unsigned_leave = g.send("DELETE", &leave, None);

    let listed = g.peer_named(&a.name).expect("A stays registered");
    assert_eq!(listed["id"], ida.as_str());
    assert_eq!(listed["schema_hash"], "", "a stranger set A's schema hash");
    assert_eq!(g.ping(&a, &ida, json!({"schemaHash": "mine"})), 200);
    assert_eq!(g.peer_named(&a.name).unwrap()["schema_hash"], "mine");
    // Unsigned requests are not authenticated at all: 401, as for registrations.
    let (s, b) = unsigned_ping;
    assert_eq!(s, 401, "an unsigned ping of a signed peer: {b}");
    assert!(message(&b).contains(&a.key().to_string()), "{b}");
    let (s, b) = unsigned_leave;
    assert_eq!(s, 401, "an unsigned delete of a signed peer: {b}");
}

/// An attacker on the path tampers with signed messages: it swaps the body of A's signed
/// re-registration (to move A to its own address), claims A's key for a message it signed
/// itself, replays A's signed registration (which would give A a new id and orphan its pings),
/// and sends A's messages with a stale or future `created`. Each is 401 with its reason, and
/// nothing changes.
#[test]
fn tampered_forged_replayed_or_stale_signatures_are_401_with_the_reason() {
    let g = Genesis::start(&[]);
    let a = StubPeer::start(&name("alpha"));
    let ida = id_of(&g.register(&a));
    let evil = StubPeer::start(&name("evil"));

    // Tampered body: signed for A's URI, sent with the attacker's.
    let signed_body = serde_json::to_vec(&json!({"peerName": a.name, "peerUri": a.url})).unwrap();
    let sent_body = serde_json::to_vec(&json!({"peerName": a.name, "peerUri": evil.url})).unwrap();
    let s = g.sign(
        &a.identity,
        &a.name,
        "POST",
        "/peers/register",
        &signed_body,
        now_s(),
    );
    let r = g.raw("POST", "/peers/register", Some(&sent_body), &s.pairs());
    assert_eq!(r.status, 401, "a tampered body: {}", r.body);
    assert!(message(&r.body).contains("Content-Digest"), "{}", r.body);
    // …and with a digest fitting the new body: the signature covers the digest.
    let digest = weft_peer_protocol::signature::content_digest(&sent_body);
    let mut headers = s.pairs().map(|(k, v)| (k, v.to_string()));
    headers[0].1 = digest;
    let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = g.raw("POST", "/peers/register", Some(&sent_body), &pairs);
    assert_eq!(r.status, 401, "a tampered body and digest: {}", r.body);
    assert!(message(&r.body).contains("does not verify"), "{}", r.body);

    // Wrong key: signed by the attacker, keyid A's.
    let mallory = Identity::generate();
    let body = serde_json::to_vec(&json!({"schemaHash": "forged"})).unwrap();
    let path = format!("/peers/{ida}/ping");
    let s = g.sign(&mallory, &a.name, "POST", &path, &body, now_s());
    let forged_input = s
        .signature_input
        .replace(&mallory.public().key_id(), &a.key().key_id());
    assert_ne!(forged_input, s.signature_input);
    let r = g.raw(
        "POST",
        &path,
        Some(&body),
        &[
            ("content-digest", &s.content_digest),
            ("weft-peer", &s.peer),
            ("signature-input", &forged_input),
            ("signature", &s.signature),
        ],
    );
    assert_eq!(r.status, 401, "another key's signature: {}", r.body);
    assert!(
        message(&r.body).contains("does not verify under its keyid"),
        "{}",
        r.body
    );

    // Replay: A's signed registration sent again by the attacker.
    let reg = serde_json::to_vec(&json!({"peerName": a.name, "peerUri": a.url})).unwrap();
    let s = g.sign(
        &a.identity,
        &a.name,
        "POST",
        "/peers/register",
        &reg,
        now_s(),
    );
    let first = g.raw("POST", "/peers/register", Some(&reg), &s.pairs());
    assert_eq!(first.status, 200, "{}", first.body);
    let current = id_of(&first.body);
    let again = g.raw("POST", "/peers/register", Some(&reg), &s.pairs());
    assert_eq!(again.status, 401, "a replay: {}", again.body);
    assert!(
        message(&again.body).contains("received before"),
        "{}",
        again.body
    );
    assert_eq!(g.ping(&a, &current, json!({"schemaHash": ""})), 200);

    // Stale and future timestamps.
    const _: () = assert!(400 > MAX_SKEW_S);
    for (what, created) in [("stale", now_s() - 400), ("future", now_s() + 400)] {
        let body = serde_json::to_vec(&json!({"schemaHash": what})).unwrap();
        let path = format!("/peers/{current}/ping");
        let s = g.sign(&a.identity, &a.name, "POST", &path, &body, created);
        let r = g.raw("POST", &path, Some(&body), &s.pairs());
        assert_eq!(r.status, 401, "a {what} signature: {}", r.body);
        assert!(message(&r.body).contains("stale"), "{}", r.body);
    }

    // Nothing changed: A at its URI, with its id and its schema hash.
    let peers = g.peers();
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert_eq!(peers[0]["peerUri"], a.url.as_str());
    assert_eq!(peers[0]["id"], current.as_str());
    assert_eq!(peers[0]["schema_hash"], "");
    assert!(evil.pings().is_empty(), "the attacker's address was asked");
}

/// An attacker who can reach a peer PUTs a forged peer list to it; the peer tells the genesis's
/// pushes (and echo pings) from forgeries only by their signatures: every push verifies for
/// the peer's address under the identity the genesis printed, as `Weft-Peer: genesis`, and the
/// genesis's answers to signed requests are signed with it, bound to the request.
#[test]
fn pushes_and_answers_are_signed_by_the_genesis_printed_identity() {
    let g = Genesis::start(&[]);
    let (a, b) = (StubPeer::start(&name("one")), StubPeer::start(&name("two")));
    let ida = id_of(&g.register(&a));
    let body = serde_json::to_vec(&json!({"peerName": b.name, "peerUri": b.url})).unwrap();
    let s = g.sign(
        &b.identity,
        &b.name,
        "POST",
        "/peers/register",
        &body,
        now_s(),
    );
    let r = g.raw("POST", "/peers/register", Some(&body), &s.pairs());
    assert_eq!(r.status, 200, "{}", r.body);
    let mut h = http::HeaderMap::new();
    for (k, v) in &r.headers {
        h.insert(k.clone(), v.clone());
    }
    let answer = verify_response(200, &h, &r.raw, s.signature_value(), now_s())
        .expect("the answer's signature verifies")
        .expect("the answer to a signed registration is signed");
    assert_eq!(answer.key, g.identity);
    assert_eq!(answer.peer, GENESIS_NAME);

    assert_eq!(g.ping(&a, &ida, json!({"schemaHash": "h"})), 200);
    let both = sorted(vec![a.name.clone(), b.name.clone()]);
    for peer in [&a, &b] {
        peer.wait_for_push(Duration::from_secs(10), "both peers", |p| {
            p.names().as_ref() == Some(&both)
        });
        let pushes = peer.pushes();
        for p in &pushes {
            assert_eq!(p.signer.as_ref(), Ok(&g.identity), "{}: {p:?}", peer.name);
            assert_eq!(p.signed_as.as_deref(), Some(GENESIS_NAME), "{p:?}");
        }
        let pings = peer.pings();
        assert!(!pings.is_empty());
        assert!(
            pings.iter().all(|k| k.as_ref() == Some(&g.identity)),
            "{pings:?}"
        );
    }
    // Another genesis has another identity: the assertion above could fail.
    let other = Genesis::start(&[]);
    assert_ne!(other.identity, g.identity);
    // Each keeps it in its own (temporary) --data-dir.
    for x in [&g, &other] {
        assert!(
            x.data_dir.join("identity.key").is_file(),
            "{:?}",
            x.data_dir
        );
    }
    assert_ne!(g.data_dir, other.data_dir);
}

/// An attacker floods the genesis with registrations from one address, or fills it with names:
/// with `--registrations-per-minute 3` the 4th registration within a minute from 127.0.0.1 is
/// 429 with `Retry-After` and the flag in the message, and not stored.
#[test]
fn a_registration_flood_from_one_address_is_429_after_the_budget() {
    let g = Genesis::start(&["--registrations-per-minute", "3"]);
    let stubs: Vec<StubPeer> = (0..4).map(|_| StubPeer::start(&name("flood"))).collect();
    for s in &stubs[..3] {
        g.register(s);
    }
    let r = g.signed(
        &stubs[3].identity,
        &stubs[3].name,
        "POST",
        "/peers/register",
        Some(&json!({"peerName": stubs[3].name, "peerUri": stubs[3].url})),
    );
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(
        message(&r.body).contains("--registrations-per-minute"),
        "{}",
        r.body
    );
    let retry: u64 = r
        .header("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After: {:?}", r.headers))
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert!(!g.names().contains(&stubs[3].name));
    assert!(
        stubs[3].pings().is_empty(),
        "a registration over budget was checked"
    );
}

/// An attacker fills the genesis with names: with `--max-peers 2` a third name is 429 naming
/// `--max-peers` (with `Retry-After`) while registered peers still register again; a name
/// that left stays bound and counted until the operator removes it, which makes room.
#[test]
fn a_genesis_at_max_peers_refuses_a_new_name_with_429() {
    let g = Genesis::start(&[
        "--max-peers",
        "2",
        "--admin-key",
        "k1",
        "--admin-token",
        "t1",
    ]);
    let (p1, p2, p3) = (
        StubPeer::start(&name("first")),
        StubPeer::start(&name("second")),
        StubPeer::start(&name("third")),
    );
    g.register(&p1);
    let id2 = id_of(&g.register(&p2));
    let full = |what: &str| {
        let r = g.signed(
            &p3.identity,
            &p3.name,
            "POST",
            "/peers/register",
            Some(&json!({"peerName": p3.name, "peerUri": p3.url})),
        );
        assert_eq!(r.status, 429, "{what}: {}", r.body);
        assert!(
            message(&r.body).contains("--max-peers"),
            "{what}: {}",
            r.body
        );
        assert!(r.header("retry-after").is_some(), "{what}: {:?}", r.headers);
    };
    full("a third name");
    assert_eq!(
        g.try_register(&p1).0,
        200,
        "a registered peer registers again"
    );
    assert_eq!(g.leave(&p2, &id2), 204);
    full("a third name after the second left (its name stays bound)");
    let r = g.raw(
        "DELETE",
        &format!("/admin/peers/{}", p2.name),
        None,
        &[("X-API-KEY", "k1"), ("X-API-TOKEN", "t1")],
    );
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(g.try_register(&p3).0, 200);
    assert_eq!(g.names(), sorted(vec![p1.name.clone(), p3.name.clone()]));
}

/// A peer lost its key; an attacker tries to free the name by the operator's endpoint without
/// (or with wrong) credentials, or signed by the name's own key: 403, the peer stays. With
/// the admin key (`--admin-key k1 --admin-token t1`) `DELETE /admin/peers/alpha` is 204, the
/// peer is gone and the name registers with a new key. A genesis without an admin key answers
/// 403 naming `--admin-key`.
#[test]
fn only_the_operator_frees_a_name_with_the_admin_key() {
    let g = Genesis::start(&["--admin-key", "k1", "--admin-token", "t1"]);
    let a = StubPeer::start(&name("alpha"));
    let ida = id_of(&g.register(&a));
    let b = StubPeer::start(&a.name);
    let path = format!("/admin/peers/{}", a.name);
    for (what, headers) in [
        ("no credentials", vec![]),
        (
            "a wrong token",
            vec![("X-API-KEY", "k1"), ("X-API-TOKEN", "t2")],
        ),
        (
            "a wrong key",
            vec![("X-API-KEY", "k2"), ("X-API-TOKEN", "t1")],
        ),
        ("the token only", vec![("X-API-TOKEN", "t1")]),
        ("swapped", vec![("X-API-KEY", "t1"), ("X-API-TOKEN", "k1")]),
    ] {
        let r = g.raw("DELETE", &path, None, &headers);
        assert_eq!(r.status, 403, "{what}: {}", r.body);
        assert!(message(&r.body).contains("X-API-KEY"), "{what}: {}", r.body);
    }
    // Signed by the name's own key is not the operator either.
    let r = g.signed(&b.identity, &b.name, "DELETE", &path, None);
    assert_eq!(r.status, 403, "signed by a peer: {}", r.body);
    assert_eq!(g.peer_named(&a.name).unwrap()["id"], ida.as_str());
    assert_eq!(g.try_register(&b).0, 409);

    let admin = [("X-API-KEY", "k1"), ("X-API-TOKEN", "t1")];
    let r = g.raw("DELETE", &path, None, &admin);
    assert_eq!(r.status, 204, "{}", r.body);
    assert!(g.names().is_empty());
    assert_eq!(g.ping(&a, &ida, json!({"schemaHash": ""})), 404);
    let rb = g.register(&b);
    assert_eq!(rb["peer"]["identity"], b.key().to_string().as_str());
    let listed = g.peer_named(&a.name).unwrap();
    assert_eq!(listed["peerUri"], b.url.as_str());
    assert_eq!(listed["identity"], b.key().to_string().as_str());
    // Now the old key is the stranger.
    assert_eq!(g.try_register(&a).0, 409);
    // An unknown name: 404.
    let r = g.raw("DELETE", "/admin/peers/nobody-here", None, &admin);
    assert_eq!(r.status, 404, "{}", r.body);

    let plain = Genesis::start(&[]);
    plain.register(&a);
    let r = plain.raw("DELETE", &path, None, &admin);
    assert_eq!(r.status, 403, "{}", r.body);
    let m = message(&r.body);
    assert!(
        m.contains("--admin-key") && m.contains("--admin-token"),
        "{m}"
    );
    assert!(plain.peer_named(&a.name).is_some());
}

/// An attacker waits for the genesis to restart, hoping it forgets who holds which name: a
/// genesis restarted on the same `--data-dir` prints the same identity (peers pinned it) and
/// still refuses another key for "alpha" (409), while alpha's own key registers again.
#[test]
fn a_restarted_genesis_keeps_its_identity_and_the_names_keys() {
    let dir = tempfile::tempdir().unwrap();
    let a = StubPeer::start(&name("alpha"));
    let b = StubPeer::start(&a.name);
    let g = Genesis::start_in(dir.path(), &[]);
    assert_eq!(g.data_dir, dir.path());
    let first = g.identity;
    g.register(&a);
    drop(g);
    assert!(dir.path().join("identity.key").is_file());
    assert!(dir.path().join("peer-keys.json").is_file());

    let g = Genesis::start_in(dir.path(), &[]);
    assert_eq!(g.identity, first, "the identity changed across a restart");
    let (s, body) = g.try_register(&b);
    assert_eq!(s, 409, "{body}");
    assert!(message(&body).contains(&a.key().to_string()), "{body}");
    assert!(g.names().is_empty());
    g.register(&a);
    let p = a.wait_for_push(Duration::from_secs(10), "a push after the restart", |p| {
        p.signer.as_ref() == Ok(&first) && p.names() == Some(vec![a.name.clone()])
    });
    assert_eq!(p.signed_as.as_deref(), Some(GENESIS_NAME));

    // Another data directory is another genesis.
    let other = Genesis::start(&[]);
    assert_ne!(other.identity, first);
    assert_eq!(other.try_register(&b).0, 200);
}
