//! `weft genesis` end to end: the real binary, with small stub peers (a std `TcpListener`
//! answering `GET /weaviate/v1/p2p/ping` and recording `PUT /weaviate/v1/p2p/genesis`).
//!
//! Build first: `cargo build -p weft -p weft-contextionary` (the contextionary test loads the
//! plugin library to compute the md5 peers compare), and `scripts/fetch-test-contextionary.sh`.
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use weft_e2e_tests::{assert_error_shape, build_dir, message, test_contextionary, weft_bin};

// ---------------------------------------------------------------------------------------------
// The genesis process.

/// A running `weft genesis` on 127.0.0.1 with a free port; killed when dropped.
struct Genesis {
    child: std::process::Child,
    url: String,
    http: reqwest::blocking::Client,
}

impl Genesis {
    fn start(args: &[&str]) -> Genesis {
        let mut child = std::process::Command::new(weft_bin())
            .args(["genesis", "--listen", "127.0.0.1:0"])
            .args(args)
            .env(
                "WEFT_LOG",
                std::env::var("WEFT_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("start weft genesis");
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
        let url = loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => match line.strip_prefix("weft genesis: listening on ") {
                    Some(url) => break url.to_string(),
                    None => printed.push(line),
                },
                Err(_) => {
                    let _ = child.kill();
                    panic!("weft genesis did not report its address within 30 s; it printed {printed:?}");
                }
            }
        };
        assert!(
            url.starts_with("http://127.0.0.1:") && !url.ends_with(":0"),
            "the listening line names the real port: {url}"
        );
        Genesis {
            child,
            url,
            http: reqwest::blocking::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        }
    }

    /// `method path` with a JSON body; status and body (every 4xx/5xx must carry the error
    /// body with a message).
    fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(m, format!("{}{path}", self.url));
        if let Some(b) = &body {
            req = req.json(b);
        }
        let resp = req.send().expect("the genesis answers");
        let status = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status >= 400 {
            assert_error_shape(method, path, status, &body);
        }
        (status, body)
    }

    fn register(&self, peer: &StubPeer) -> Value {
        let (s, b) = self.send(
            "POST",
            "/peers/register",
            Some(json!({"peerName": peer.name, "peerUri": peer.url})),
        );
        assert_eq!(s, 200, "registering {}: {b}", peer.name);
        b
    }

    fn ping(&self, id: &str, body: Value) -> u16 {
        self.send("POST", &format!("/peers/{id}/ping"), Some(body))
            .0
    }

    fn names(&self) -> Vec<String> {
        let (s, b) = self.send("GET", "/peers", None);
        assert_eq!(s, 200, "{b}");
        let mut names: Vec<String> = b
            .as_array()
            .unwrap_or_else(|| panic!("GET /peers is not an array: {b}"))
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
// Stub peers.

/// One `PUT /weaviate/v1/p2p/genesis` a stub received.
#[derive(Debug, Clone)]
struct Push {
    /// Header names in lower case.
    headers: HashMap<String, String>,
    body: Value,
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

/// A tiny peer: answers its ping endpoint (while `alive`) and records the lists pushed to it.
struct StubPeer {
    name: String,
    url: String,
    pushes: Arc<Mutex<Vec<Push>>>,
    alive: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    port: u16,
}

impl StubPeer {
    fn start(name: &str) -> StubPeer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let pushes = Arc::new(Mutex::new(vec![]));
        let alive = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, a, s) = (pushes.clone(), alive.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (p, a) = (p.clone(), a.clone());
                std::thread::spawn(move || serve_one(conn, &p, &a));
            }
        });
        StubPeer {
            name: name.into(),
            url: format!("http://127.0.0.1:{port}"),
            pushes,
            alive,
            stop,
            port,
        }
    }

    fn pushes(&self) -> Vec<Push> {
        self.pushes.lock().unwrap().clone()
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
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve_one(conn: TcpStream, pushes: &Mutex<Vec<Push>>, alive: &AtomicBool) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
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
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let status = match (method.as_str(), path.as_str()) {
        ("GET", "/weaviate/v1/p2p/ping") if alive.load(Ordering::SeqCst) => "200 OK",
        ("GET", "/weaviate/v1/p2p/ping") => "503 Service Unavailable",
        ("PUT", "/weaviate/v1/p2p/genesis") => {
            let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
            pushes.lock().unwrap().push(Push { headers, body });
            "200 OK"
        }
        _ => "404 Not Found",
    };
    let mut conn = conn;
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
}

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

static NEXT: AtomicU16 = AtomicU16::new(0);

/// A peer name unique in this test binary.
fn name(prefix: &str) -> String {
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::SeqCst))
}

fn id_of(registration: &Value) -> String {
    registration["peer"]["id"].as_str().unwrap().to_string()
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[test]
fn an_unreachable_peer_is_refused_with_400_and_nothing_is_stored() {
    let g = Genesis::start(&[]);
    let port = closed_port();
    let (s, b) = g.send(
        "POST",
        "/peers/register",
        Some(json!({"peerName": "ghost", "peerUri": format!("http://127.0.0.1:{port}")})),
    );
    assert_eq!(s, 400, "{b}");
    let m = message(&b);
    assert!(m.contains("not reachable"), "{m}");
    assert!(
        m.contains(&port.to_string()) && m.contains("peerUri"),
        "{m}"
    );

    // A peer whose ping endpoint fails is not reachable either.
    let sick = StubPeer::start(&name("sick"));
    sick.alive.store(false, Ordering::SeqCst);
    let (s, b) = g.send(
        "POST",
        "/peers/register",
        Some(json!({"peerName": sick.name, "peerUri": sick.url})),
    );
    assert_eq!(s, 400, "{b}");
    assert!(message(&b).contains("503"), "{b}");
    assert_eq!(g.names(), Vec::<String>::new());
    assert!(sick.pushes().is_empty());
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
        let (s, b) = g.send("POST", "/peers/register", Some(body.clone()));
        assert_eq!(s, 422, "{body} → {b}");
        assert!(message(&b).contains(field), "{body} → {b}");
    }
    // Not JSON at all: a 400 with the error body.
    let resp = g
        .http
        .post(format!("{}/peers/register", g.url))
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let b: Value = resp.json().unwrap();
    assert_error_shape("POST", "/peers/register", 400, &b);
    assert_eq!(g.names(), Vec::<String>::new());
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
    // The contract's Peer, and no contextionary when the genesis has none.
    assert_eq!(ra["peer"]["peerName"], a.name.as_str());
    assert_eq!(ra["peer"]["peerUri"], a.url.as_str());
    assert!(ra["peer"]["last_contact_at"].as_i64().unwrap() > 0, "{ra}");
    assert_eq!(ra["peer"]["schema_hash"], "");
    assert!(ra.get("contextionary").is_none(), "{ra}");
    let both = {
        let mut v = vec![a.name.clone(), b.name.clone()];
        v.sort();
        v
    };
    assert_eq!(g.names(), both);
    for peer in [&a, &b] {
        let p = peer.wait_for_push(Duration::from_secs(5), "both peers", |p| {
            p.names().as_ref() == Some(&both)
        });
        // Weaviate 0.12's PeerUpdateList: [{id, name, uri, schemaHash}].
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
        let mut keys: Vec<&String> = entry.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["id", "name", "schemaHash", "uri"], "{entry}");
        assert!(
            p.headers.contains_key("x-weft-peer-list-version"),
            "{:?}",
            p.headers
        );
    }

    // Registering a name again replaces the registration, with a new id.
    let again = g.register(&a);
    assert_ne!(id_of(&again), id_of(&ra));
    assert_eq!(g.names(), both);
    assert_eq!(g.ping(&id_of(&ra), json!({"schemaHash": "x"})), 404);
    assert_eq!(g.ping(&id_of(&again), json!({"schemaHash": "x"})), 200);
}

#[test]
fn a_silent_peer_is_dropped_a_pinging_one_kept_and_schema_changes_pushed() {
    let g = Genesis::start(&["--liveness-timeout", "1.5"]);
    let (a, b) = (
        StubPeer::start(&name("pinger")),
        StubPeer::start(&name("silent")),
    );
    let ida = id_of(&g.register(&a));
    g.register(&b);
    let start = Instant::now();
    // A pings with a new schema hash: a change every peer is told about.
    assert_eq!(g.ping(&ida, json!({"schemaHash": "0123abcd"})), 200);
    b.wait_for_push(Duration::from_secs(5), "pinger's new schema hash", |p| {
        p.body.as_array().is_some_and(|l| {
            l.iter()
                .any(|e| e["name"] == a.name.as_str() && e["schemaHash"] == "0123abcd")
        })
    });
    // A keeps pinging (every 300 ms) for 3 s; B stays silent.
    let mut dropped_after = None;
    while start.elapsed() < Duration::from_secs(3) {
        assert_eq!(g.ping(&ida, json!({"schemaHash": "0123abcd"})), 200);
        let names = g.names();
        assert!(
            names.contains(&a.name),
            "a pinging peer was dropped: {names:?}"
        );
        if dropped_after.is_none() && !names.contains(&b.name) {
            dropped_after = Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let after = dropped_after.expect("the silent peer was not dropped within 3 s");
    assert!(
        after >= Duration::from_millis(1200),
        "dropped too early, after {after:?}"
    );
    a.wait_for_push(
        Duration::from_secs(3),
        "the list without the silent peer",
        |p| p.names().as_ref() == Some(&vec![a.name.clone()]),
    );
    assert_eq!(g.names(), vec![a.name.clone()]);
    let (_, peers) = g.send("GET", "/peers", None);
    assert_eq!(peers[0]["schema_hash"], "0123abcd", "{peers}");
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
    let (s, body) = g.send("DELETE", &format!("/peers/{idb}"), None);
    assert_eq!(s, 204, "{body}");
    let mut left = vec![a.name.clone(), dead_name];
    left.sort();
    assert_eq!(g.names(), left);
    a.wait_for_push(Duration::from_secs(5), "the list without the leaver", |p| {
        p.names().as_ref() == Some(&left)
    });
    let (s, body) = g.send("DELETE", &format!("/peers/{idb}"), None);
    assert_eq!(s, 404, "{body}");

    let (s, body) = g.send(
        "POST",
        &format!("/peers/{idb}/ping"),
        Some(json!({"schemaHash": "abc"})),
    );
    assert_eq!(s, 404, "{body}");
    assert!(message(&body).contains("register again"), "{body}");
    let (s, body) = g.send(
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
    let both = {
        let mut v = vec![a.name.clone(), b.name.clone()];
        v.sort();
        v
    };
    let full = a.wait_for_push(Duration::from_secs(5), "both peers", |p| {
        p.names().as_ref() == Some(&both)
    });
    let version: u64 = full.headers["x-weft-peer-list-version"].parse().unwrap();
    assert_eq!(
        g.ping(&ida, json!({"schemaHash": "", "peerListVersion": version})),
        200
    );
    let (s, _) = g.send("DELETE", &format!("/peers/{idb}"), None);
    assert_eq!(s, 204);
    let changes = a.wait_for_push(Duration::from_secs(5), "changes", |p| {
        p.headers.get("x-weft-peer-list").map(String::as_str) == Some("changes")
    });
    assert_eq!(changes.body["from"], version, "{:?}", changes.body);
    assert_eq!(changes.body["removed"], json!([idb]), "{:?}", changes.body);
    assert_eq!(changes.body["upserted"], json!([]), "{:?}", changes.body);
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
    let plugin = weft_plugin_api::loader::load(&so).expect("load the contextionary plugin");
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
        committed.trim_end() == weft_p2p::genesis::openapi_document().trim_end(),
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
    ]
    .into_iter()
    .filter(|p| served["paths"].get(*p).is_none())
    .collect();
    assert!(ops.is_empty(), "the contract's paths {ops:?} are missing");
}

#[test]
fn bad_flags_are_one_line_errors_naming_the_flag() {
    for (args, flag) in [
        (vec!["--liveness-timeout", "soon"], "--liveness-timeout"),
        (vec!["--liveness-timeout", "0"], "--liveness-timeout"),
        (
            vec!["--contextionary", "/nonexistent/x.fifu"],
            "--contextionary",
        ),
        (vec!["--contextionary", "Cargo.toml"], "--contextionary"),
    ] {
        let out = std::process::Command::new(weft_bin())
            .args(["genesis", "--listen", "127.0.0.1:0"])
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
