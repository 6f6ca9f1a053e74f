//! The distributed connectors through the real binary, against the real servers
//! `scripts/real-servers.sh` starts (`.ci/run` does): Cassandra (`WEFT_CASSANDRA_CONTACT_POINTS`),
//! Gremlin Server with TinkerGraph (`WEFT_GREMLIN_URL`) and JanusGraph (`WEFT_JANUSGRAPH_URL`).
//! A store whose variable is not set is skipped, saying so (with `WEFT_REQUIRE_REAL_SERVERS=1`,
//! as in CI, it fails instead).
//!
//! * two `weft serve` processes on one keyspace (namespace): a class created through one is used
//!   through the other, and concurrent reference additions through both lose nothing;
//! * hostile strings travel as values: stored through REST and read back unchanged;
//! * `weft plugins check` accepts both libraries.
//!
//! The outage test (a real server stopped under a running Weft) is `tests/real_server_outage.rs`,
//! a test binary of its own so that stopping a server disturbs no other test.
use std::collections::BTreeSet;

use serde_json::{json, Value};
use weft_e2e_tests::{build_dir, on_threads, real_server, weft_bin, Api, Server};

/// A real store the tests can reach: its connector, and the config of a fresh store in it.
struct Real {
    /// What the messages call it.
    what: &'static str,
    /// The connector plugin.
    database: &'static str,
    /// The config of the store named `unique` (a keyspace, a namespace).
    config: Box<dyn Fn(&str) -> String>,
}

/// The real stores whose variables are set; prints a line for each one that is skipped (and
/// fails instead when `WEFT_REQUIRE_REAL_SERVERS=1`: [`real_server`]).
fn reals(test: &str) -> Vec<Real> {
    let mut out = Vec::new();
    if let Some(cp) = real_server(test, "WEFT_CASSANDRA_CONTACT_POINTS") {
        out.push(Real {
            what: "Cassandra",
            database: "cassandra",
            config: Box::new(move |u| {
                let points: Vec<&str> = cp.split(',').collect();
                json!({"contact_points": points, "keyspace": format!("weft_{u}")}).to_string()
            }),
        });
    }
    for (what, var) in [
        ("Gremlin Server (TinkerGraph)", "WEFT_GREMLIN_URL"),
        ("JanusGraph", "WEFT_JANUSGRAPH_URL"),
    ] {
        if let Some(url) = real_server(test, var) {
            out.push(Real {
                what,
                database: "gremlin",
                config: Box::new(move |u| json!({"url": url, "namespace": u}).to_string()),
            });
        }
    }
    out
}

fn start(real: &Real, config: &str) -> Api {
    Api::new(Server::start_with(
        &["--database", real.database, "--database-config", config],
        &[],
    ))
}

fn city(api: &Api, name: &str) -> String {
    let b = api.ok(
        "POST",
        "/things",
        Some(json!({"thing": {"@context": "", "@class": "City", "schema": {"name": name}}})),
    );
    b["thingId"].as_str().unwrap().to_string()
}

#[test]
fn two_servers_on_one_store_share_the_ontology_and_lose_no_reference() {
    for real in reals("two_servers_on_one_store") {
        let config = (real.config)(&weft_e2e_tests::unique_name("two"));
        let (a, b) = (start(&real, &config), start(&real, &config));
        a.ok(
            "POST",
            "/schema/things",
            Some(json!({"class": "City", "properties": [
                {"name": "name", "@dataType": ["string"]},
                {"name": "near", "@dataType": ["City"], "cardinality": "many"}]})),
        );
        // B has never seen the class: it reads the shared ontology.
        let hub = city(&b, "Hub");
        let schema = b.ok("GET", "/schema", None);
        assert!(
            schema.to_string().contains("\"near\""),
            "{}: the class made through A is in B's schema: {schema}",
            real.what
        );
        let got = a.ok("GET", &format!("/things/{hub}"), None);
        assert_eq!(got["schema"]["name"], "Hub", "{}", real.what);

        // 24 concurrent reference additions to one object, alternating between the servers.
        let spokes: Vec<String> = (0..24).map(|i| city(&a, &format!("Spoke {i}"))).collect();
        let answers = on_threads(spokes.len(), |i| {
            let via = if i % 2 == 0 { &a } else { &b };
            via.send(
                "POST",
                &format!("/things/{hub}/properties/near"),
                Some(json!({"$cref": spokes[i], "locationUrl": "http://localhost/", "type": "Thing"})),
            )
        });
        for (i, (s, body)) in answers.iter().enumerate() {
            assert_eq!(*s, 200, "{}: reference addition {i}: {s} {body}", real.what);
        }
        for via in [&a, &b] {
            let got = via.ok("GET", &format!("/things/{hub}"), None);
            let kept: BTreeSet<&str> = got["schema"]["near"]
                .as_array()
                .unwrap_or_else(|| panic!("{}: no references kept: {got}", real.what))
                .iter()
                .map(|r| r["$cref"].as_str().unwrap())
                .collect();
            let sent: BTreeSet<&str> = spokes.iter().map(String::as_str).collect();
            assert_eq!(
                kept,
                sent,
                "{}: 24 acknowledged additions through two servers, {} kept",
                real.what,
                kept.len()
            );
        }
        // A schema change through B is seen by A.
        b.ok(
            "POST",
            "/schema/things/City/properties",
            Some(json!({"name": "population", "@dataType": ["int"]})),
        );
        let (s, body) = a.send(
            "PATCH",
            &format!("/things/{hub}"),
            Some(json!([{"op": "add", "path": "/schema/population", "value": 7}])),
        );
        assert_eq!(s, 200, "{}: A uses B's new property: {body}", real.what);
    }
}

#[test]
fn hostile_strings_are_stored_and_read_back_as_values() {
    let hostile = [
        "'); DROP KEYSPACE weft; --",
        "g.V().drop()",
        "\"; g.V().drop().iterate(); \"",
        "${System.exit(1)}",
        "Robert'); DELETE FROM objects WHERE ('1'='1",
        "\\u0027 OR 1=1 --",
    ];
    for real in reals("hostile_strings") {
        let api = start(
            &real,
            &(real.config)(&weft_e2e_tests::unique_name("hostile")),
        );
        api.ok(
            "POST",
            "/schema/things",
            Some(json!({"class": "City", "properties": [
                {"name": "name", "@dataType": ["string"]},
                {"name": "description", "@dataType": ["text"]}]})),
        );
        let mut ids = Vec::new();
        for (i, h) in hostile.iter().enumerate() {
            let b = api.ok(
                "POST",
                "/things",
                Some(json!({"thing": {"@context": h, "@class": "City",
                    "schema": {"name": h, "description": format!("{h} {i}")}}})),
            );
            ids.push(b["thingId"].as_str().unwrap().to_string());
        }
        // A key with a hostile e-mail address.
        let key = api.ok(
            "POST",
            "/keys",
            Some(
                json!({"read": true, "write": false, "delete": false, "execute": false,
                "email": hostile[0]}),
            ),
        );
        let key_id = key["keyId"].as_str().unwrap();
        let got = api.ok("GET", &format!("/keys/{key_id}"), None);
        assert_eq!(got["email"], hostile[0], "{}: {got}", real.what);
        for (i, h) in hostile.iter().enumerate() {
            let got = api.ok("GET", &format!("/things/{}", ids[i]), None);
            assert_eq!(got["schema"]["name"], *h, "{}: {got}", real.what);
            assert_eq!(got["@context"], *h, "{}: {got}", real.what);
            // And as a filter value.
            let q = json!({"query": format!(
                "{{ Local {{ Get {{ Things {{ City(where: {{operator: Equal, path: [\"name\"], valueString: {}}}) {{ uuid name }} }} }} }} }}",
                serde_json::to_string(h).unwrap()
            )});
            let found = api.ok("POST", "/graphql", Some(q));
            let hits = found["data"]["Local"]["Get"]["Things"]["City"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert_eq!(
                hits.len(),
                1,
                "{}: {h:?} as a filter value: {found}",
                real.what
            );
        }
        // Nothing was dropped: everything is still there.
        let all: Value = api.ok("GET", "/things?maxResults=100", None);
        assert_eq!(
            all["things"].as_array().map_or(0, Vec::len),
            hostile.len(),
            "{}: {all}",
            real.what
        );
    }
}

#[test]
fn weft_plugins_check_accepts_both_libraries() {
    let files = [
        build_dir().join("libweft_cassandra.so"),
        build_dir().join("libweft_gremlin.so"),
    ];
    let out = std::process::Command::new(weft_bin())
        .args(["plugins", "check"])
        .args(&files)
        .output()
        .expect("run weft plugins check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["cassandra", "gremlin"] {
        assert!(
            stdout.lines().any(
                |l| l.starts_with("ok: ") && l.contains(&format!("name={name} kind=connector"))
            ),
            "{stdout}"
        );
    }
}

/// No server needed: a store nobody answers at stops `weft serve` at once with one line naming
/// the address (never a hang), for both connectors.
#[test]
fn an_unreachable_store_stops_weft_serve_with_one_line_naming_it() {
    for (database, config, address) in [
        (
            "cassandra",
            r#"{"contact_points": ["127.0.0.1:1"], "keyspace": "weft", "connect_timeout_ms": 2000}"#,
            "127.0.0.1:1",
        ),
        (
            "gremlin",
            r#"{"url": "ws://127.0.0.1:1/gremlin", "connect_timeout_ms": 2000}"#,
            "ws://127.0.0.1:1/gremlin",
        ),
    ] {
        let started = std::time::Instant::now();
        let (status, _, stderr) = weft_e2e_tests::serve_until_exit(
            &["--database", database, "--database-config", config],
            &[],
            std::time::Duration::from_secs(60),
        );
        assert!(!status.success(), "{database}: {stderr}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{database}: took {:?}",
            started.elapsed()
        );
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("weft: ")).collect();
        assert_eq!(errors.len(), 1, "{database}: one line: {stderr}");
        assert!(
            errors[0].contains(address),
            "{database}: names {address}: {stderr}"
        );
    }
}
