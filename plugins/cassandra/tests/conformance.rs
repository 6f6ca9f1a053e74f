//! The conformance kit against the Cassandra connector, loaded from its built `.so` exactly as
//! the host loads it, talking to a **real** Cassandra: `WEFT_CASSANDRA_CONTACT_POINTS` (e.g.
//! `127.0.0.1:9042`, from `scripts/real-servers.sh start cassandra`). Every check gets a fresh,
//! empty keyspace `weft_kit_<pid>_<n>`; the keyspaces of earlier runs are dropped when the next
//! run starts.
//!
//! Without `WEFT_CASSANDRA_CONTACT_POINTS` every real-server test prints that it skips and
//! passes. The tests that need no server (name, capabilities, config errors, an unreachable
//! address) always run.
//!
//! The kit's checks are listed here rather than expanded by `conformance_tests!`, because that
//! macro cannot skip at run time; `kit_list_is_the_kits` fails when the kit gains a check this
//! list lacks.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures::executor::block_on;
use weft_connector_tests::weft_plugin_api::{
    Capabilities, DocumentName, ErrorKind, Id, ObjectKind, StoredObject,
};
use weft_connector_tests::{all_checks, Subject};

use common::*;

/// The subject of the kit: a fresh keyspace per connector; `None` without a server.
fn subject() -> Option<&'static Subject> {
    static SUBJECT: OnceLock<Option<Subject>> = OnceLock::new();
    SUBJECT
        .get_or_init(|| {
            let points = contact_points()?;
            let plugin = load_plugin();
            Some(Subject::new(
                plugin.name.clone(),
                plugin.capabilities,
                move || {
                    drop_stale_keyspaces(&points);
                    let keyspace = fresh_keyspace("kit");
                    open(&plugin, &config(&points, &keyspace)).unwrap_or_else(|e| panic!("{e}"))
                },
            ))
        })
        .as_ref()
}

macro_rules! kit {
    ($($check:ident)*) => {
        const KIT: &[&str] = &[$(stringify!($check)),*];
        $(
            #[test]
            fn $check() {
                let Some(s) = subject() else {
                    println!("{SKIP}");
                    return;
                };
                weft_connector_tests::run_check(
                    stringify!($check),
                    weft_connector_tests::checks::$check(s),
                );
                if let Some(points) = contact_points() {
                    drop_keyspaces_made_by(&points, stringify!($check));
                }
            }
        )*
    };
}

kit! {
    check_create_then_get check_create_duplicate_is_conflict check_get_missing_is_none
    check_get_objects_order_and_missing check_update_replaces check_update_missing_is_not_found
    check_delete_removes check_delete_missing_is_not_found check_ids_not_reused_after_delete
    check_things_and_actions_are_separate
    check_history_missing_is_not_found check_history_of_unchanged_object_is_empty
    check_history_after_updates check_history_after_delete
    check_query_newest_first check_query_paging check_query_owner_filter check_query_class_filter
    check_filter_int check_filter_number check_filter_string check_filter_text
    check_filter_boolean check_filter_date check_filter_missing_property_never_matches
    check_filter_type_mismatch_never_matches check_filter_and_or_not check_filter_reference_path
    check_filter_reference_array_and_hops check_filter_malformed_is_invalid
    check_filter_with_paging_owner_and_class
    check_aggregate_count_and_numbers check_aggregate_strings check_aggregate_booleans
    check_aggregate_group_by check_aggregate_respects_query
    check_key_add_and_get check_key_add_errors check_key_children_one_level check_key_root_keys
    check_key_update check_key_delete_cascade
    check_versioned_create_is_version_1 check_versioned_writes_count
    check_versioned_stale_is_conflict check_versioned_missing_is_not_found
    check_versioned_history
    check_document_initially_empty check_document_compare_and_set
    check_documents_are_independent
    check_concurrent_creates check_concurrent_updates_of_one_object check_concurrent_key_adds
    check_concurrent_document_writes check_concurrent_versioned_counter
    check_concurrent_versioned_appends check_concurrent_versioned_disjoint_properties
    check_large_object check_unicode_round_trip check_unicode_filters
    check_capability_history check_capability_filter check_capability_filter_reference_paths
    check_capability_aggregate check_capability_persistent check_capability_versioned_writes
    check_capability_backup check_capability_migrate
    check_migrate_round_trip check_migrate_import_is_idempotent
    check_vectors_nearest_match_exact_search check_vectors_filter_first
    check_vectors_follow_updates_and_deletes check_capability_vector_search
}

/// Every check of the kit is run here (and nothing else is).
#[test]
fn kit_list_is_the_kits() {
    let mut kit: Vec<&str> = all_checks().iter().map(|c| c.name).collect();
    let mut here = KIT.to_vec();
    kit.sort_unstable();
    here.sort_unstable();
    assert_eq!(here, kit, "update the kit! list in this file");
}

#[test]
fn declares_name_and_capabilities() {
    let plugin = load_plugin();
    assert_eq!(plugin.name, "cassandra");
    let want = Capabilities::HISTORY
        | Capabilities::FILTER
        | Capabilities::FILTER_REFERENCE_PATHS
        | Capabilities::AGGREGATE
        | Capabilities::PERSISTENT
        | Capabilities::VERSIONED_WRITES
        | Capabilities::MIGRATE
        | Capabilities::VECTOR_SEARCH;
    assert_eq!(plugin.capabilities, want);
}

// ----- config errors (no server needed) --------------------------------------------------------

fn refused(config: serde_json::Value) -> (ErrorKind, String) {
    let plugin = load_plugin();
    match plugin.open_connector(
        &config.to_string(),
        weft_connector_tests::weft_plugin_api::HostLogger::discard(),
    ) {
        Ok(_) => panic!("config {config} was accepted"),
        Err(e) => (e.kind, e.message.to_string()),
    }
}

#[test]
fn config_errors_name_the_key() {
    use serde_json::json;
    let ok = || json!({"contact_points": ["127.0.0.1:1"], "keyspace": "weft"});
    let with = |key: &str, value: serde_json::Value| {
        let mut c = ok();
        c[key] = value;
        c
    };
    let without = |key: &str| {
        let mut c = ok();
        c.as_object_mut().unwrap().remove(key);
        c
    };
    let cases: Vec<(serde_json::Value, &str)> = vec![
        (json!("nonsense"), "database_config must be a JSON object"),
        (with("keyspaces", json!("weft")), "keyspaces"),
        (without("contact_points"), "contact_points is missing"),
        (without("keyspace"), "keyspace is missing"),
        (with("contact_points", json!([])), "contact_points"),
        (
            with("contact_points", json!("127.0.0.1:9042")),
            "contact_points",
        ),
        (with("contact_points", json!([9042])), "contact_points"),
        (
            with("keyspace", json!("weft; DROP KEYSPACE system")),
            "keyspace",
        ),
        (with("keyspace", json!("1weft")), "keyspace"),
        (with("keyspace", json!("a".repeat(49))), "keyspace"),
        (with("keyspace", json!(7)), "keyspace"),
        (with("consistency", json!("SOMETIMES")), "consistency"),
        (with("consistency", json!("ANY")), "consistency"),
        (with("consistency", json!(1)), "consistency"),
        (with("username", json!("cassandra")), "password is missing"),
        (with("password", json!("cassandra")), "username is missing"),
        (with("username", json!(5)), "username"),
        (with("connect_timeout_ms", json!(0)), "connect_timeout_ms"),
        (
            with("connect_timeout_ms", json!("5s")),
            "connect_timeout_ms",
        ),
        (with("request_timeout_ms", json!(-1)), "request_timeout_ms"),
        (with("max_query_objects", json!(0)), "max_query_objects"),
        (with("replication", json!("SimpleStrategy")), "replication"),
        (
            with("replication", json!({"class": "LocalStrategy"})),
            "replication.class",
        ),
        (
            with("replication", json!({"class": "SimpleStrategy"})),
            "replication.factor",
        ),
        (
            with(
                "replication",
                json!({"class": "SimpleStrategy", "factor": 0}),
            ),
            "replication.factor",
        ),
        (
            with(
                "replication",
                json!({"class": "SimpleStrategy", "factor": 1, "dc1": 3}),
            ),
            "replication.dc1",
        ),
        (
            with(
                "replication",
                json!({"class": "NetworkTopologyStrategy", "datacenters": {"dc1'}; DROP": 3}}),
            ),
            "replication.datacenters",
        ),
    ];
    for (config, names) in cases {
        let (kind, message) = refused(config.clone());
        assert_eq!(kind, ErrorKind::Invalid, "{config}: {message}");
        assert!(
            message.contains(names),
            "{config}: {message:?} should name {names:?}"
        );
        assert!(!message.contains('\n'), "one line: {message:?}");
    }
}

/// Nothing listens on 127.0.0.1:1: the constructor answers within the connect timeout, in one
/// line naming the address.
#[test]
fn unreachable_address_is_one_line_within_the_timeout() {
    let started = Instant::now();
    let (kind, message) = refused(serde_json::json!({
        "contact_points": ["127.0.0.1:1"], "keyspace": "weft", "connect_timeout_ms": 2000
    }));
    let took = started.elapsed();
    assert_eq!(kind, ErrorKind::Unavailable, "{message}");
    assert!(message.contains("127.0.0.1:1"), "{message}");
    assert!(!message.contains('\n'), "one line: {message:?}");
    assert!(
        took < Duration::from_millis(2500),
        "took {took:?}: {message}"
    );
    println!("unreachable address answered in {took:?}: {message}");
}

/// A server that accepts connections and never answers: the constructor still answers within
/// `connect_timeout_ms`, in one line naming the address.
#[test]
fn silent_server_times_out_naming_the_address() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    let started = Instant::now();
    let (kind, message) = refused(serde_json::json!({
        "contact_points": [address], "keyspace": "weft", "connect_timeout_ms": 1500
    }));
    let took = started.elapsed();
    assert_eq!(kind, ErrorKind::Unavailable, "{message}");
    assert!(
        message.contains(&address) && !message.contains('\n'),
        "{message}"
    );
    assert!(
        took < Duration::from_millis(2500),
        "took {took:?}: {message}"
    );
    println!("silent server answered in {took:?}: {message}");
}

// ----- real server: what the kit cannot check ---------------------------------------------------

fn thing(props: &str) -> StoredObject {
    StoredObject {
        kind: ObjectKind::Thing,
        id: Id::random(),
        class: "City".into(),
        context: "".into(),
        owner: Id::random(),
        created_ms: 1,
        updated_ms: 1,
        properties_json: props.into(),
    }
}

/// Data, versions, history and documents survive closing the connector and opening a new one on
/// the same keyspace.
#[test]
fn persists_across_reopen() {
    let Some(points) = server_or_skip() else {
        return;
    };
    let plugin = load_plugin();
    drop_stale_keyspaces(&points);
    let cfg = config(&points, &fresh_keyspace("it"));
    let object = thing(r#"{"name":"Berlin"}"#);
    {
        let opened = open(&plugin, &cfg).unwrap();
        block_on(opened.connector.create_object(object.clone())).unwrap();
        let mut changed = object.clone();
        changed.properties_json = r#"{"name":"Bonn"}"#.into();
        block_on(opened.connector.update_object(changed)).unwrap();
        block_on(opened.connector.put_document(
            DocumentName::Ontology,
            r#"{"classes":[]}"#.into(),
            0,
        ))
        .unwrap();
    }
    let opened = open(&plugin, &cfg).unwrap();
    let versions = opened.versions.unwrap();
    let got = block_on(versions.get_object_versioned(ObjectKind::Thing, object.id))
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.object.properties_json.as_str(), got.version),
        (r#"{"name":"Bonn"}"#, 2)
    );
    let history = block_on(
        opened
            .connector
            .object_history(ObjectKind::Thing, object.id),
    )
    .unwrap();
    assert_eq!(history.versions.len(), 1);
    assert_eq!(history.versions[0].object, object);
    let doc = block_on(opened.connector.get_document(DocumentName::Ontology)).unwrap();
    assert_eq!((doc.json.as_str(), doc.version), (r#"{"classes":[]}"#, 1));
    drop((opened.connector, versions));
    drop_my_keyspaces(&points);
}

/// Two hosts on one keyspace share one ontology: a write of one is read by the other, and a
/// stale compare-and-set of either is refused.
#[test]
fn hosts_on_one_keyspace_share_the_ontology() {
    let Some(points) = server_or_skip() else {
        return;
    };
    let plugin = load_plugin();
    drop_stale_keyspaces(&points);
    let cfg = config(&points, &fresh_keyspace("it"));
    let a = open(&plugin, &cfg).unwrap().connector;
    let b = open(&plugin, &cfg).unwrap().connector;
    let v1 = block_on(a.put_document(DocumentName::Ontology, "{\"by\":\"a\"}".into(), 0)).unwrap();
    let seen = block_on(b.get_document(DocumentName::Ontology)).unwrap();
    assert_eq!((seen.json.as_str(), seen.version), ("{\"by\":\"a\"}", v1));
    let stale = block_on(b.put_document(DocumentName::Ontology, "{\"by\":\"b\"}".into(), 0));
    assert_eq!(stale.unwrap_err().kind, ErrorKind::Conflict);
    let v2 = block_on(b.put_document(DocumentName::Ontology, "{\"by\":\"b\"}".into(), v1)).unwrap();
    let e =
        block_on(a.put_document(DocumentName::Ontology, "{\"by\":\"a2\"}".into(), v1)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert!(
        e.message.contains(&format!("version {v2}")),
        "{}",
        e.message
    );
    // Objects too: one host creates, the other updates with compare-and-set.
    let object = thing("{}");
    block_on(a.create_object(object.clone())).unwrap();
    let e = block_on(b.create_object(object.clone())).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    drop((a, b));
    drop_my_keyspaces(&points);
}

/// A TCP proxy in front of the real server (CQL protocol v4 frames) that can drop every
/// connection and refuse new ones for a while — a "lost server" without touching the server —
/// and can swallow the server's answer to the next BATCH requests (conditional object writes),
/// so that the client times out on a write the server did apply.
struct Proxy {
    port: u16,
    down: Arc<AtomicBool>,
    swallow_batch_answers: Arc<AtomicUsize>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

/// Reads one CQL v4 frame (9-byte header, body); `None` at the end of the stream.
fn read_frame(from: &mut TcpStream) -> Option<Vec<u8>> {
    let mut frame = vec![0u8; 9];
    from.read_exact(&mut frame).ok()?;
    let len = u32::from_be_bytes([frame[5], frame[6], frame[7], frame[8]]) as usize;
    frame.resize(9 + len, 0);
    from.read_exact(&mut frame[9..]).ok()?;
    Some(frame)
}

impl Proxy {
    fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let swallow_batch_answers = Arc::new(AtomicUsize::new(0));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (d, o, sw) = (
            Arc::clone(&down),
            Arc::clone(&open),
            Arc::clone(&swallow_batch_answers),
        );
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if d.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                {
                    let mut o = o.lock().unwrap();
                    o.push(client.try_clone().unwrap());
                    o.push(server.try_clone().unwrap());
                }
                // Streams whose answer is swallowed, on this connection.
                let muted: Arc<Mutex<Vec<[u8; 2]>>> = Arc::default();
                let (mut from, mut to) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (m, sw) = (Arc::clone(&muted), Arc::clone(&sw));
                std::thread::spawn(move || {
                    while let Some(frame) = read_frame(&mut from) {
                        let is_batch = frame[4] == 0x0D;
                        if is_batch
                            && sw
                                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                                    n.checked_sub(1)
                                })
                                .is_ok()
                        {
                            m.lock().unwrap().push([frame[2], frame[3]]);
                        }
                        if to.write_all(&frame).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(Shutdown::Both);
                });
                let (mut from, mut to) = (server, client);
                std::thread::spawn(move || {
                    while let Some(frame) = read_frame(&mut from) {
                        let stream = [frame[2], frame[3]];
                        {
                            let mut m = muted.lock().unwrap();
                            if let Some(i) = m.iter().position(|s| *s == stream) {
                                m.remove(i);
                                continue;
                            }
                        }
                        if to.write_all(&frame).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(Shutdown::Both);
                });
            }
        });
        Proxy {
            port,
            down,
            swallow_batch_answers,
            open,
        }
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
        if down {
            for s in self.open.lock().unwrap().drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

/// A conditional write the server applied but whose answer never came (the client timed out):
/// the connector finds out by a serial read that its write is the stored one, answers success
/// and does not write again — one version more, one history entry, not two.
#[test]
fn unanswered_writes_are_resolved_not_repeated() {
    let Some(points) = server_or_skip() else {
        return;
    };
    let plugin = load_plugin();
    drop_stale_keyspaces(&points);
    let proxy = Proxy::start(points[0].clone());
    let via_proxy = vec![format!("127.0.0.1:{}", proxy.port)];
    let mut cfg = config(&via_proxy, &fresh_keyspace("it"));
    cfg["request_timeout_ms"] = serde_json::json!(1500);
    let opened = open(&plugin, &cfg).unwrap();
    let (c, versions) = (opened.connector, opened.versions.unwrap());
    let object = thing(r#"{"n":0}"#);
    block_on(c.create_object(object.clone())).unwrap();

    proxy.swallow_batch_answers.store(1, Ordering::SeqCst);
    let mut changed = object.clone();
    changed.properties_json = r#"{"n":1}"#.into();
    let started = Instant::now();
    block_on(c.update_object(changed.clone())).unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "the answer was not swallowed"
    );
    assert_eq!(proxy.swallow_batch_answers.load(Ordering::SeqCst), 0);

    proxy.swallow_batch_answers.store(1, Ordering::SeqCst);
    changed.properties_json = r#"{"n":2}"#.into();
    assert_eq!(
        block_on(versions.update_object_if(changed.clone(), 2)).unwrap(),
        3
    );

    let got = block_on(versions.get_object_versioned(ObjectKind::Thing, object.id))
        .unwrap()
        .unwrap();
    assert_eq!((got.object, got.version), (changed, 3));
    let history = block_on(c.object_history(ObjectKind::Thing, object.id)).unwrap();
    assert_eq!(history.versions.len(), 2, "{history:?}");

    proxy.swallow_batch_answers.store(1, Ordering::SeqCst);
    block_on(c.delete_object(ObjectKind::Thing, object.id)).unwrap();
    let history = block_on(c.object_history(ObjectKind::Thing, object.id)).unwrap();
    assert!(history.deleted);
    assert_eq!(history.versions.len(), 3, "{history:?}");
    drop((c, versions));
    drop_my_keyspaces(&points);
}

/// The server lost after start: calls answer `Unavailable`; once it is back, the driver has
/// reconnected by itself and calls work again.
#[test]
fn lost_server_is_unavailable_then_recovers() {
    let Some(points) = server_or_skip() else {
        return;
    };
    let plugin = load_plugin();
    drop_stale_keyspaces(&points);
    let proxy = Proxy::start(points[0].clone());
    let via_proxy = vec![format!("127.0.0.1:{}", proxy.port)];
    let mut cfg = config(&via_proxy, &fresh_keyspace("it"));
    cfg["request_timeout_ms"] = serde_json::json!(3000);
    let c = open(&plugin, &cfg).unwrap().connector;
    let object = thing("{}");
    block_on(c.create_object(object.clone())).unwrap();

    proxy.set_down(true);
    let started = Instant::now();
    let e = block_on(c.get_object(ObjectKind::Thing, object.id)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unavailable, "{}", e.message);
    let e = block_on(c.create_object(thing("{}"))).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unavailable, "{}", e.message);
    println!(
        "while the server was away: {} (after {:?})",
        e.message,
        started.elapsed()
    );

    proxy.set_down(false);
    let back = Instant::now();
    let got = loop {
        match block_on(c.get_object(ObjectKind::Thing, object.id)).into_result() {
            Ok(got) => break got,
            Err(e) if back.elapsed() < Duration::from_secs(30) => {
                assert_eq!(e.kind, ErrorKind::Unavailable, "{}", e.message);
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("30 s after the server came back calls still fail: {e}"),
        }
    };
    assert_eq!(got.into_option(), Some(object));
    block_on(c.create_object(thing("{}"))).unwrap();
    println!(
        "calls work again {:?} after the server came back",
        back.elapsed()
    );
    drop(c);
    drop_my_keyspaces(&points);
}

/// A fake CQL server that asks for a password and refuses every one (the handshake of a
/// Cassandra with `PasswordAuthenticator`), listening on a free loopback port.
fn refusing_server() -> u16 {
    fn frame(stream: [u8; 2], version: u8, opcode: u8, body: &[u8]) -> Vec<u8> {
        let mut f = vec![version | 0x80, 0, stream[0], stream[1], opcode];
        f.extend_from_slice(&(body.len() as u32).to_be_bytes());
        f.extend_from_slice(body);
        f
    }
    fn string(s: &str) -> Vec<u8> {
        let mut b = (s.len() as u16).to_be_bytes().to_vec();
        b.extend_from_slice(s.as_bytes());
        b
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || loop {
                let mut header = [0u8; 9];
                if conn.read_exact(&mut header).is_err() {
                    return;
                }
                let len = u32::from_be_bytes([header[5], header[6], header[7], header[8]]);
                let mut body = vec![0u8; len as usize];
                if conn.read_exact(&mut body).is_err() {
                    return;
                }
                let (version, stream, opcode) = (header[0], [header[2], header[3]], header[4]);
                let reply = match opcode {
                    0x05 => frame(stream, version, 0x06, &0u16.to_be_bytes()), // OPTIONS → SUPPORTED
                    0x01 => frame(
                        stream,
                        version,
                        0x03, // STARTUP → AUTHENTICATE
                        &string("org.apache.cassandra.auth.PasswordAuthenticator"),
                    ),
                    0x0F => {
                        // AUTH_RESPONSE → ERROR 0x0100 (bad credentials)
                        let mut b = 0x0100u32.to_be_bytes().to_vec();
                        b.extend(string(
                            "Provided username weft and/or password are incorrect",
                        ));
                        frame(stream, version, 0x00, &b)
                    }
                    _ => return,
                };
                if conn.write_all(&reply).is_err() {
                    return;
                }
            });
        }
    });
    port
}

/// Wrong credentials, and a server that wants credentials when none are configured: one line
/// each, saying so and naming the address.
#[test]
fn credentials_refused_or_missing_are_one_line() {
    let port = refusing_server();
    let address = format!("127.0.0.1:{port}");
    let (kind, message) = refused(serde_json::json!({
        "contact_points": [address], "keyspace": "weft",
        "username": "weft", "password": "wrong", "connect_timeout_ms": 3000
    }));
    assert_eq!(kind, ErrorKind::Unavailable, "{message}");
    assert!(
        message.contains(&address)
            && message.contains("refused the username \"weft\"")
            && message.contains("password are incorrect")
            && !message.contains('\n'),
        "{message}"
    );
    println!("{message}");
    let (_, message) = refused(serde_json::json!({
        "contact_points": [address], "keyspace": "weft", "connect_timeout_ms": 3000
    }));
    assert!(
        message.contains(&address)
            && message.contains("requires a login")
            && !message.contains('\n'),
        "{message}"
    );
    println!("{message}");
}

/// The same against a **real** Cassandra that asks for a login
/// (`WEFT_CASSANDRA_AUTH_CONTACT_POINTS`: `.ci/run` starts a second node with
/// `WEFT_CASSANDRA_AUTHENTICATOR=PasswordAuthenticator`, whose only user is `cassandra` with the
/// password `cassandra`): a wrong password and missing credentials are one line each naming the
/// node, and the right ones store and read an object.
#[test]
fn credentials_against_a_real_cassandra_that_asks_for_a_login() {
    let points = match std::env::var("WEFT_CASSANDRA_AUTH_CONTACT_POINTS") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            println!(
                "skipping the real password check: WEFT_CASSANDRA_AUTH_CONTACT_POINTS is not set (WEFT_CASSANDRA_AUTHENTICATOR=PasswordAuthenticator scripts/real-servers.sh start cassandra, on another port and run folder)"
            );
            return;
        }
    };
    let points: Vec<&str> = points.split(',').collect();
    let keyspace = format!("weft_auth_{}", std::process::id());
    let (kind, message) = refused(serde_json::json!({
        "contact_points": points, "keyspace": keyspace,
        "username": "cassandra", "password": "wrong", "connect_timeout_ms": 10000
    }));
    assert_eq!(kind, ErrorKind::Unavailable, "{message}");
    assert!(
        message.contains(points[0])
            && message.contains("refused the username \"cassandra\"")
            && !message.contains('\n'),
        "{message}"
    );
    println!("{message}");
    let (_, message) = refused(serde_json::json!({
        "contact_points": points, "keyspace": keyspace, "connect_timeout_ms": 10000
    }));
    assert!(
        message.contains(points[0])
            && message.contains("requires a login")
            && !message.contains('\n'),
        "{message}"
    );
    println!("{message}");
    let plugin = load_plugin();
    let opened = open(
        &plugin,
        &serde_json::json!({
            "contact_points": points, "keyspace": keyspace,
            "username": "cassandra", "password": "cassandra", "connect_timeout_ms": 10000
        }),
    )
    .unwrap_or_else(|e| panic!("the right credentials: {e}"));
    let object = thing(r#"{"name":"Behind a login"}"#);
    block_on(opened.connector.create_object(object.clone())).unwrap();
    let got = block_on(opened.connector.get_object(object.kind, object.id))
        .unwrap()
        .unwrap();
    assert_eq!(got.properties_json.as_str(), r#"{"name":"Behind a login"}"#);
}

/// A query or aggregate that would read more than `max_query_objects` objects is refused with
/// `Invalid` saying so, never answered truncated; a narrower one still works.
#[test]
fn queries_above_the_bound_are_refused_not_truncated() {
    use weft_connector_tests::weft_plugin_api::ObjectQuery;
    let Some(points) = server_or_skip() else {
        return;
    };
    let plugin = load_plugin();
    drop_stale_keyspaces(&points);
    let mut cfg = config(&points, &fresh_keyspace("it"));
    cfg["max_query_objects"] = serde_json::json!(5);
    let c = open(&plugin, &cfg).unwrap().connector;
    for i in 0..6 {
        let mut o = thing(&format!("{{\"n\":{i}}}"));
        o.class = if i < 3 { "Small" } else { "Big" }.into();
        block_on(c.create_object(o)).unwrap();
    }
    let all = ObjectQuery::all(ObjectKind::Thing, 2);
    let e = block_on(c.query_objects(all.clone())).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{}", e.message);
    assert!(e.message.contains("more than 5 objects") && e.message.contains("max_query_objects"));
    let e = block_on(c.aggregate(all.clone(), "{}".into())).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{}", e.message);
    let mut small = all;
    small.class = "Small".into();
    assert_eq!(block_on(c.query_objects(small)).unwrap().total, 3);
    drop(c);
    drop_my_keyspaces(&points);
}

/// An object too large for one Cassandra write is refused as `Invalid` saying so (not a 500),
/// and nothing is stored.
#[test]
fn oversized_object_is_invalid() {
    let Some(points) = server_or_skip() else {
        return;
    };
    let plugin = load_plugin();
    drop_stale_keyspaces(&points);
    let c = open(&plugin, &config(&points, &fresh_keyspace("it")))
        .unwrap()
        .connector;
    let big = thing(&serde_json::json!({ "blob": "x".repeat(20 << 20) }).to_string());
    let e = block_on(c.create_object(big.clone())).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{}", e.message);
    assert!(e.message.contains("too large"), "{}", e.message);
    assert!(block_on(c.get_object(ObjectKind::Thing, big.id))
        .unwrap()
        .is_none());
    drop(c);
    drop_my_keyspaces(&points);
}
