//! Behaviour against a real Gremlin Server (`WEFT_GREMLIN_URL`, e.g.
//! `ws://127.0.0.1:8182/gremlin` from `scripts/real-servers.sh start gremlin`) that the kit does
//! not cover: values that look like code travel as data; a lost server answers `Unavailable`
//! and the connector reconnects once it is back; namespaces and graph prefixes separate stores.
//! Without `WEFT_GREMLIN_URL` each test prints that it skips and passes.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use futures::executor::block_on;
use serde_json::json;
use weft_connector_tests::cdylib_path;
use weft_connector_tests::loader::{self, LoadedPlugin};
use weft_connector_tests::weft_plugin_api::{
    filter, DocumentName, ErrorKind, HostLogger, Id, ObjectKind, ObjectQuery, OpenedConnector,
    StoredKey, StoredObject,
};

mod common;

const SKIP: &str =
    "skipping the real-server suite: WEFT_GREMLIN_URL is not set (scripts/real-servers.sh start gremlin)";

fn server_url() -> Option<String> {
    let url = std::env::var("WEFT_GREMLIN_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())?;
    common::purge_old_namespaces(&url);
    Some(url)
}

fn load_plugin() -> LoadedPlugin {
    loader::load(&cdylib_path("weft_gremlin")).unwrap_or_else(|e| panic!("{e}"))
}

fn open(config: serde_json::Value) -> OpenedConnector {
    load_plugin()
        .open_connector(&config.to_string(), HostLogger::discard())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn object(
    kind: ObjectKind,
    class: &str,
    props: serde_json::Value,
    created_ms: i64,
) -> StoredObject {
    StoredObject {
        kind,
        id: Id::random(),
        class: class.into(),
        context: "".into(),
        owner: Id::default(),
        created_ms,
        updated_ms: created_ms,
        properties_json: props.to_string().into(),
    }
}

const NASTY: &[&str] = &[
    "'); DROP KEYSPACE x; --",
    "g.V().drop()",
    "\"); g.V().drop().iterate(); (\"",
    "${g.V().drop().iterate()}",
    "' + g.V().drop().iterate() + '",
    "System.exit(0)",
    "}}]; g.V().drop(); [{{",
    "\\\\' \\\" \n\t\u{0}",
];

/// Values that look like Groovy, Gremlin or CQL are stored and read back verbatim in class
/// names, property values, property names, contexts, key fields and documents — and the graph
/// is intact afterwards (nothing was evaluated).
#[test]
fn code_like_values_are_data() {
    let Some(url) = server_url() else {
        println!("{SKIP}");
        return;
    };
    let ns = common::fresh_namespace("injection");
    let opened = open(json!({"url": url, "namespace": ns}));
    let c = &opened.connector;
    let mut created = Vec::new();
    for (i, nasty) in NASTY.iter().enumerate() {
        let mut props = serde_json::Map::new();
        props.insert("name".into(), json!(nasty));
        props.insert((*nasty).to_string(), json!([nasty, i]));
        let mut o = object(
            ObjectKind::Thing,
            nasty,
            serde_json::Value::Object(props),
            i as i64,
        );
        o.context = (*nasty).into();
        block_on(c.create_object(o.clone())).unwrap();
        let got = block_on(c.get_object(ObjectKind::Thing, o.id))
            .unwrap()
            .into_option();
        let got = got.unwrap_or_else(|| panic!("{nasty:?}: the object is gone"));
        assert_eq!(got.class, o.class);
        assert_eq!(got.context, o.context);
        let a: serde_json::Value = serde_json::from_str(&got.properties_json).unwrap();
        let b: serde_json::Value = serde_json::from_str(&o.properties_json).unwrap();
        assert_eq!(a, b, "{nasty:?}");
        // A query by the class (pushed down as a value) finds exactly it.
        let q = ObjectQuery {
            class: (*nasty).into(),
            ..ObjectQuery::all(ObjectKind::Thing, 10)
        };
        let page = block_on(c.query_objects(q)).unwrap();
        assert_eq!(page.total, 1, "{nasty:?}");
        // A filter whose value is the nasty string.
        let f = json!({"operator": "Equal", "path": ["name"], "valueString": nasty});
        filter::WhereFilter::parse(&f.to_string()).unwrap();
        let q = ObjectQuery {
            filter_json: f.to_string().into(),
            ..ObjectQuery::all(ObjectKind::Thing, 10)
        };
        let page = block_on(c.query_objects(q)).unwrap();
        assert_eq!(page.total, 1, "{nasty:?}");
        assert_eq!(page.objects[0].id, o.id);
        created.push(o);
    }
    // Keys and documents with the same strings.
    let key = StoredKey {
        id: Id::random(),
        parent: None.into(),
        token_hash: NASTY[0].into(),
        email: NASTY[1].into(),
        ip_origin: NASTY.iter().map(|s| (*s).into()).collect(),
        expires_ms: -1,
        read: true,
        write: false,
        delete: false,
        execute: true,
        created_ms: 1,
    };
    block_on(c.add_key(key.clone())).unwrap();
    assert_eq!(
        block_on(c.get_key(key.id)).unwrap().into_option(),
        Some(key)
    );
    let doc = json!({"classes": NASTY}).to_string();
    assert_eq!(
        block_on(c.put_document(DocumentName::Ontology, doc.clone().into(), 0)).unwrap(),
        1
    );
    let got = block_on(c.get_document(DocumentName::Ontology)).unwrap();
    assert_eq!((got.json.as_str(), got.version), (doc.as_str(), 1));
    // Nothing was dropped: every object is still there.
    let all = block_on(c.query_objects(ObjectQuery::all(ObjectKind::Thing, 100))).unwrap();
    assert_eq!(all.total as usize, NASTY.len());
    for o in &created {
        assert!(block_on(c.get_object(ObjectKind::Thing, o.id))
            .unwrap()
            .is_some());
    }
}

/// Two namespaces, and two graph prefixes, on one server do not see each other's data.
#[test]
fn namespaces_and_prefixes_are_separate_stores() {
    let Some(url) = server_url() else {
        println!("{SKIP}");
        return;
    };
    let ns = common::fresh_namespace("separate");
    let a = open(json!({"url": url, "namespace": ns}));
    let b = open(json!({"url": url, "namespace": format!("{ns}-b")}));
    let c = open(json!({"url": url, "namespace": ns, "graph_prefix": "other"}));
    let o = object(ObjectKind::Thing, "City", json!({"name": "Berlin"}), 1);
    block_on(a.connector.create_object(o.clone())).unwrap();
    for other in [&b, &c] {
        assert!(
            block_on(other.connector.get_object(ObjectKind::Thing, o.id))
                .unwrap()
                .is_none()
        );
        let page = block_on(
            other
                .connector
                .query_objects(ObjectQuery::all(ObjectKind::Thing, 10)),
        )
        .unwrap();
        assert_eq!(page.total, 0);
        // The same id is free there.
        block_on(other.connector.create_object(o.clone())).unwrap();
    }
    // A second connector on the same namespace sees the data (a restart of the host).
    let again = open(json!({"url": url, "namespace": ns}));
    assert_eq!(
        block_on(again.connector.get_object(ObjectKind::Thing, o.id))
            .unwrap()
            .into_option(),
        Some(o)
    );
}

/// A TCP proxy in front of the real server that can be cut and restored on the same port.
struct Proxy {
    port: u16,
    target: String,
    open: Arc<AtomicBool>,
    /// While set, bytes are swallowed instead of forwarded (a half-open connection).
    frozen: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = Proxy {
            port,
            target,
            open: Arc::new(AtomicBool::new(true)),
            frozen: Arc::new(AtomicBool::new(false)),
            conns: Arc::new(Mutex::new(Vec::new())),
            stop: Arc::new(AtomicBool::new(false)),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let (target, open, frozen, conns, stop) = (
            self.target.clone(),
            Arc::clone(&self.open),
            Arc::clone(&self.frozen),
            Arc::clone(&self.conns),
            Arc::clone(&self.stop),
        );
        listener.set_nonblocking(true).unwrap();
        thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((client, _)) => {
                        if !open.load(Ordering::Relaxed) {
                            let _ = client.shutdown(Shutdown::Both);
                            continue;
                        }
                        client.set_nonblocking(false).unwrap();
                        let Ok(server) = TcpStream::connect(&target) else {
                            continue;
                        };
                        let mut list = conns.lock().unwrap();
                        list.push(client.try_clone().unwrap());
                        list.push(server.try_clone().unwrap());
                        pipe(
                            client.try_clone().unwrap(),
                            server.try_clone().unwrap(),
                            Arc::clone(&frozen),
                        );
                        pipe(server, client, Arc::clone(&frozen));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
    }

    /// Refuses new connections and cuts the open ones.
    fn cut(&self) {
        self.open.store(false, Ordering::Relaxed);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.open.store(true, Ordering::Relaxed);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.cut();
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream, frozen: Arc<AtomicBool>) {
    thread::spawn(move || {
        let mut buf = [0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) if frozen.load(Ordering::Relaxed) => {}
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}

/// A proxy in front of the server at `url`, and the `ws://` URL that reaches it through it.
fn proxied(url: &str) -> (Proxy, String) {
    let rest = url.strip_prefix("ws://").expect("a ws:// URL");
    let (authority, path) = rest.split_once('/').unwrap_or((rest, "gremlin"));
    let proxy = Proxy::start(authority.to_string());
    let via = format!("ws://127.0.0.1:{}/{path}", proxy.port);
    (proxy, via)
}

/// The server lost after start-up: calls answer `Unavailable` (quickly, not hanging), and once
/// it is reachable again the next calls work, on a new connection.
#[test]
fn lost_server_is_unavailable_then_reconnects() {
    let Some(url) = server_url() else {
        println!("{SKIP}");
        return;
    };
    let (proxy, proxied) = proxied(&url);
    let opened = open(json!({
        "url": proxied,
        "namespace": common::fresh_namespace("reconnect"),
        "connect_timeout_ms": 1000,
        "request_timeout_ms": 5000,
    }));
    let c = &opened.connector;
    let o = object(ObjectKind::Thing, "City", json!({"name": "Berlin"}), 1);
    block_on(c.create_object(o.clone())).unwrap();

    proxy.cut();
    for _ in 0..3 {
        let started = Instant::now();
        let err = block_on(c.get_object(ObjectKind::Thing, o.id)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
        assert!(err.message.contains(&proxied), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "took {:?}",
            started.elapsed()
        );
    }

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(15);
    let got = loop {
        match block_on(c.get_object(ObjectKind::Thing, o.id)).into_result() {
            Ok(got) => break got.into_option(),
            Err(e) if Instant::now() < deadline => {
                assert_eq!(e.kind, ErrorKind::Unavailable, "{e}");
                thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("the connector did not reconnect: {e}"),
        }
    };
    assert_eq!(got, Some(o));
}

/// Everything survives dropping the connector and opening a new one on the same namespace
/// (a restart of the Weft host): objects with their versions and history, tombstones, keys and
/// documents. (Whether it survives a restart of the *server* is the server's storage choice.)
#[test]
fn data_survives_a_new_connector() {
    let Some(url) = server_url() else {
        println!("{SKIP}");
        return;
    };
    let config = json!({"url": url, "namespace": common::fresh_namespace("persist")});
    let o = object(ObjectKind::Action, "Trip", json!({"to": "Rome"}), 5);
    let gone = object(ObjectKind::Thing, "City", json!({"name": "Atlantis"}), 6);
    let root = StoredKey {
        id: Id::random(),
        parent: None.into(),
        token_hash: "hash".into(),
        email: "a@b.c".into(),
        ip_origin: vec!["127.0.0.0/8".into()].into(),
        expires_ms: -1,
        read: true,
        write: true,
        delete: true,
        execute: false,
        created_ms: 1,
    };
    let child = StoredKey {
        id: Id::random(),
        parent: Some(root.id).into(),
        created_ms: 2,
        ..root.clone()
    };
    {
        let opened = open(config.clone());
        let c = &opened.connector;
        block_on(c.create_object(o.clone())).unwrap();
        let mut changed = o.clone();
        changed.properties_json = json!({"to": "Paris"}).to_string().into();
        block_on(c.update_object(changed)).unwrap();
        block_on(c.create_object(gone.clone())).unwrap();
        block_on(c.delete_object(ObjectKind::Thing, gone.id)).unwrap();
        block_on(c.add_key(root.clone())).unwrap();
        block_on(c.add_key(child.clone())).unwrap();
        block_on(c.put_document(DocumentName::ConnectorState, "{\"a\":1}".into(), 0)).unwrap();
    }
    let opened = open(config);
    let c = &opened.connector;
    let versions = opened.versions.expect("a versioned-writes object");
    let got = block_on(versions.get_object_versioned(ObjectKind::Action, o.id))
        .unwrap()
        .into_option()
        .expect("the object survives");
    assert_eq!(
        (got.object.properties_json.as_str(), got.version),
        ("{\"to\":\"Paris\"}", 2)
    );
    let history = block_on(c.object_history(ObjectKind::Action, o.id)).unwrap();
    assert_eq!(history.versions.len(), 1);
    assert_eq!(history.versions[0].object, o);
    assert!(block_on(c.get_object(ObjectKind::Thing, gone.id))
        .unwrap()
        .is_none());
    let err = block_on(c.create_object(gone.clone())).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict, "{err}");
    assert!(
        block_on(c.object_history(ObjectKind::Thing, gone.id))
            .unwrap()
            .deleted
    );
    assert_eq!(
        block_on(c.root_keys()).unwrap().to_vec(),
        vec![root.clone()]
    );
    assert_eq!(
        block_on(c.key_children(root.id)).unwrap().to_vec(),
        vec![child.clone()]
    );
    let doc = block_on(c.get_document(DocumentName::ConnectorState)).unwrap();
    assert_eq!((doc.json.as_str(), doc.version), ("{\"a\":1}", 1));
    assert_eq!(
        block_on(c.delete_key(root.id)).unwrap().to_vec(),
        vec![root.id, child.id]
    );
}

/// Against a Gremlin Server with authentication (`WEFT_GREMLIN_AUTH_URL`, with a user
/// `WEFT_GREMLIN_AUTH_USER` / `WEFT_GREMLIN_AUTH_PASSWORD`; `scripts/real-servers.sh` does not
/// start one): the right credentials work (SASL PLAIN), wrong or missing ones are refused at
/// start-up with one line saying so.
#[test]
fn credentials_are_checked_at_start_up() {
    let vars = (
        std::env::var("WEFT_GREMLIN_AUTH_URL"),
        std::env::var("WEFT_GREMLIN_AUTH_USER"),
        std::env::var("WEFT_GREMLIN_AUTH_PASSWORD"),
    );
    let (Ok(url), Ok(user), Ok(password)) = vars else {
        println!("skipping the authentication test: WEFT_GREMLIN_AUTH_URL, WEFT_GREMLIN_AUTH_USER and WEFT_GREMLIN_AUTH_PASSWORD are not set (a Gremlin Server with SimpleAuthenticator)");
        return;
    };
    let plugin = load_plugin();
    let ns = common::fresh_namespace("auth");
    let opened = open(json!({"url": url, "namespace": ns, "username": user, "password": password}));
    let o = object(ObjectKind::Thing, "City", json!({"name": "Berlin"}), 1);
    block_on(opened.connector.create_object(o.clone())).unwrap();
    assert_eq!(
        block_on(opened.connector.get_object(ObjectKind::Thing, o.id))
            .unwrap()
            .into_option(),
        Some(o)
    );
    let refused = |config: serde_json::Value| -> String {
        match plugin.open_connector(&config.to_string(), HostLogger::discard()) {
            Ok(_) => panic!("{config} was accepted"),
            Err(e) => {
                assert_eq!(e.kind, ErrorKind::Unavailable, "{e}");
                assert!(!e.message.contains('\n'), "not one line: {e}");
                assert!(e.message.contains(&url), "{e}");
                e.message.into_string()
            }
        }
    };
    let wrong =
        refused(json!({"url": url, "username": user, "password": format!("{password}-wrong")}));
    assert!(wrong.contains("refused the credentials"), "{wrong}");
    let none = refused(json!({"url": url}));
    assert!(none.contains("requires authentication"), "{none}");
    println!("wrong credentials: {wrong}\nno credentials: {none}");
}

/// Compare-and-set holds across connections (as across processes): two connectors on one
/// namespace, each with its own WebSocket, increment one counter by read-modify-write from 4
/// threads each; no increment is lost.
#[test]
fn versioned_writes_are_atomic_across_connections() {
    let Some(url) = server_url() else {
        println!("{SKIP}");
        return;
    };
    let config = json!({"url": url, "namespace": common::fresh_namespace("cas")});
    let a = Arc::new(open(config.clone()));
    let b = Arc::new(open(config));
    let o = object(ObjectKind::Thing, "Counter", json!({"n": 0}), 1);
    block_on(a.connector.create_object(o.clone())).unwrap();
    let (threads, per_thread) = (4, 10);
    let workers: Vec<_> = (0..threads * 2)
        .map(|t| {
            let opened = Arc::clone(if t % 2 == 0 { &a } else { &b });
            let id = o.id;
            thread::spawn(move || {
                let versions = opened.versions.as_ref().expect("a versioned-writes object");
                let mut conflicts = 0;
                for _ in 0..per_thread {
                    loop {
                        let cur = block_on(versions.get_object_versioned(ObjectKind::Thing, id))
                            .unwrap()
                            .into_option()
                            .unwrap();
                        let n = cur.object.properties()["n"].as_i64().unwrap();
                        let mut next = cur.object.clone();
                        next.properties_json = json!({"n": n + 1}).to_string().into();
                        match block_on(versions.update_object_if(next, cur.version)).into_result() {
                            Ok(v) => {
                                assert_eq!(v, cur.version + 1);
                                break;
                            }
                            Err(e) if e.kind == ErrorKind::Conflict => conflicts += 1,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
                conflicts
            })
        })
        .collect();
    let conflicts: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let got = block_on(
        b.versions
            .as_ref()
            .unwrap()
            .get_object_versioned(ObjectKind::Thing, o.id),
    )
    .unwrap()
    .into_option()
    .unwrap();
    let total = (threads * 2 * per_thread) as i64;
    assert_eq!(got.object.properties()["n"], json!(total));
    assert_eq!(got.version, total as u64 + 1);
    let history = block_on(a.connector.object_history(ObjectKind::Thing, o.id)).unwrap();
    assert_eq!(history.versions.len() as i64, total);
    println!("{total} increments from 2 connections, {conflicts} conflicts retried");
}

/// A connection that stays open but answers nothing (half open): the request fails with
/// `Unavailable` within the request timeout, and once the path works again the next requests
/// succeed on a new connection.
#[test]
fn silent_connection_times_out_then_reconnects() {
    let Some(url) = server_url() else {
        println!("{SKIP}");
        return;
    };
    let (proxy, proxied) = proxied(&url);
    let opened = open(json!({
        "url": proxied,
        "namespace": common::fresh_namespace("silent"),
        "connect_timeout_ms": 1000,
        "request_timeout_ms": 1500,
    }));
    let c = &opened.connector;
    let o = object(ObjectKind::Thing, "City", json!({"name": "Berlin"}), 1);
    block_on(c.create_object(o.clone())).unwrap();

    proxy.frozen.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let err = block_on(c.get_object(ObjectKind::Thing, o.id)).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
    assert!(err.message.contains("1500 ms"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );

    proxy.frozen.store(false, Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(15);
    let got = loop {
        match block_on(c.get_object(ObjectKind::Thing, o.id)).into_result() {
            Ok(got) => break got.into_option(),
            Err(e) if Instant::now() < deadline => {
                assert_eq!(e.kind, ErrorKind::Unavailable, "{e}");
                thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("the connector did not reconnect: {e}"),
        }
    };
    assert_eq!(got, Some(o));
}
