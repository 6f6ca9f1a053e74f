//! Limits on one request (issue "Hardening"): each over-limit request is refused quickly with a
//! 4xx naming the limit and its setting, before the work; the server answers the next request
//! normally, and its memory stays bounded.
use std::io::Read;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use weft_e2e_tests::{message, Api, Creds, Server};

/// A reader of `n` bytes of JSON-ish filler, produced on the fly (never held in memory).
struct Filler {
    left: u64,
}

impl Read for Filler {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        buf[..n].fill(b' ');
        self.left -= n as u64;
        Ok(n)
    }
}

fn post_body(api: &Api, path: &str, body: reqwest::blocking::Body) -> (u16, Value) {
    let r = Creds::root();
    let resp = api
        .http
        .post(api.server.at(path))
        .header("X-API-KEY", &r.key)
        .header("X-API-TOKEN", &r.token)
        .header("Content-Type", "application/json")
        .body(body)
        .send();
    match resp {
        Ok(resp) => {
            let status = resp.status().as_u16();
            (status, resp.json().unwrap_or(Value::Null))
        }
        // The server may close the connection after answering 413 while the client still
        // sends; that is a refusal too, checked by the next request working.
        Err(e) => (0, json!({"transport": e.to_string()})),
    }
}

#[test]
fn oversized_requests_are_refused_before_the_work_and_memory_stays_bounded() {
    let api = Api::new(Server::start());
    api.ok(
        "POST",
        "/schema/things",
        Some(json!({"class": "City", "properties": [{"name": "name", "@dataType": ["string"]}]})),
    );
    let before = api.server.rss_kib();

    // 96 MiB with a declared length: 413 at once, naming the setting.
    let t = Instant::now();
    let size = 96 * 1024 * 1024;
    let (s, b) = post_body(
        &api,
        "/things",
        reqwest::blocking::Body::sized(Filler { left: size }, size),
    );
    assert!(s == 413 || s == 0, "a 96 MiB body answered {s}: {b}");
    if s == 413 {
        assert!(message(&b).contains("limits.max_body_bytes"), "{b}");
    }
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "took {:?}",
        t.elapsed()
    );

    // The same without a declared length (chunked): read up to the limit, then 413.
    let (s, b) = post_body(
        &api,
        "/things",
        reqwest::blocking::Body::new(Filler { left: size }),
    );
    assert!(
        s == 413 || s == 0,
        "a chunked 96 MiB body answered {s}: {b}"
    );
    if s == 413 {
        assert!(message(&b).contains("limits.max_body_bytes"), "{b}");
    }

    // A batch over limits.max_batch_items: 413 naming it, nothing stored.
    let items: Vec<Value> = (0..10_001)
        .map(|i| json!({"@context": "", "@class": "City", "schema": {"name": format!("c{i}")}}))
        .collect();
    let (s, b) = api.post("/batching/things", json!({"things": items}));
    assert_eq!(s, 413, "{b}");
    assert!(message(&b).contains("limits.max_batch_items"), "{b}");
    let listed = api.ok("GET", "/things?maxResults=1", None);
    assert_eq!(listed["totalResults"], 0, "{listed}");

    // The server answers the next request normally, and holds no 96 MiB.
    let made = api.ok(
        "POST",
        "/things",
        Some(json!({"thing": {"@context": "", "@class": "City", "schema": {"name": "Rome"}}})),
    );
    assert!(made["thingId"].is_string(), "{made}");
    let after = api.server.rss_kib();
    assert!(
        after < before + 64 * 1024,
        "resident memory grew from {before} KiB to {after} KiB"
    );
}

fn graphql(api: &Api, query: &str) -> (u16, Value) {
    api.post("/graphql", json!({ "query": query }))
}

fn first_error(b: &Value) -> String {
    b["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn graphql_requests_over_a_limit_are_refused_before_they_run() {
    let api = Api::new(Server::start());
    api.ok(
        "POST",
        "/schema/things",
        Some(json!({"class": "City", "properties": [
            {"name": "name", "@dataType": ["string"]},
            {"name": "near", "@dataType": ["City"], "cardinality": "many"}]})),
    );
    let before = api.server.rss_kib();

    // 3,000 aliased Gets (the review's attack): refused at once, nothing run.
    let t = Instant::now();
    let body: String = (0..3000)
        .map(|i| format!("a{i}: Local {{ Get {{ Things {{ City {{ name }} }} }} }} "))
        .collect();
    let (s, b) = graphql(&api, &format!("{{ {body} }}"));
    assert_eq!(s, 200, "{b}");
    assert!(
        first_error(&b).contains("limits.max_graphql_aliases"),
        "{b}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );

    // Deeper than limits.max_graphql_depth (32).
    let mut sel = "name".to_string();
    for _ in 0..40 {
        sel = format!("Near {{ ... on City {{ {sel} }} }}");
    }
    let (s, b) = graphql(
        &api,
        &format!("{{ Local {{ Get {{ Things {{ City {{ {sel} }} }} }} }} }}"),
    );
    assert_eq!(s, 200, "{b}");
    assert!(first_error(&b).contains("limits.max_graphql_depth"), "{b}");

    // More complex than limits.max_graphql_complexity, without aliases: many fields through
    // fragments spread again and again.
    let spreads: String = (0..5000).map(|_| "...F ").collect();
    let q = format!(
        "{{ Local {{ Get {{ Things {{ City {{ {spreads} }} }} }} }} }} fragment F on City {{ name uuid Near {{ ... on City {{ name uuid }} }} }}"
    );
    let (s, b) = graphql(&api, &q);
    assert_eq!(s, 200, "{b}");
    let e = first_error(&b);
    assert!(
        e.contains("limits.max_graphql_complexity") || e.contains("limits.max_graphql_depth"),
        "{b}"
    );

    // A batch over limits.max_graphql_batch: 413 naming it.
    let batch: Vec<Value> = (0..101)
        .map(|_| json!({"query": "{ Local { Get { Things { City { name } } } } }"}))
        .collect();
    let (s, b) = api.post("/graphql/batch", json!(batch));
    assert_eq!(s, 413, "{b}");
    assert!(message(&b).contains("limits.max_graphql_batch"), "{b}");

    // The next query runs normally, and memory stayed bounded.
    let (s, b) = graphql(&api, "{ Local { Get { Things { City { name } } } } }");
    assert_eq!(s, 200, "{b}");
    assert!(b["errors"].is_null(), "{b}");
    let after = api.server.rss_kib();
    assert!(
        after < before + 64 * 1024,
        "resident memory grew from {before} KiB to {after} KiB"
    );
}

#[test]
fn a_query_that_would_read_too_many_objects_is_refused_and_the_limit_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("weft.json");
    std::fs::write(
        &config,
        json!({"environments": [{"name": "default", "limits": {"max_query_objects": 50}}]})
            .to_string(),
    )
    .unwrap();
    let api = Api::new(Server::start_with(
        &["--config-file", config.to_str().unwrap()],
        &[],
    ));
    api.ok(
        "POST",
        "/schema/things",
        Some(json!({"class": "City", "properties": [
            {"name": "name", "@dataType": ["string"]},
            {"name": "population", "@dataType": ["int"]}
        ]})),
    );
    let items: Vec<Value> = (0..60)
        .map(|i| json!({"@context": "", "@class": "City", "schema": {"name": format!("c{i}"), "population": i}}))
        .collect();
    api.ok("POST", "/batching/things", Some(json!({"things": items})));
    let (s, b) = graphql(
        &api,
        "{ Local { Get { Things { City(first: 40) { name } } } } }",
    );
    assert_eq!(s, 200, "{b}");
    assert!(
        b["errors"].is_null(),
        "40 objects are within the limit: {b}"
    );
    let (s, b) = graphql(
        &api,
        "{ Local { Get { Things { City(first: 60) { name } } } } }",
    );
    assert_eq!(s, 200, "{b}");
    assert!(first_error(&b).contains("limits.max_query_objects"), "{b}");
    // Statistics of the whole class are the connector's to answer (it declares `aggregate`):
    // the host reads no object for them, so the limit does not apply.
    let (s, b) = graphql(
        &api,
        "{ Local { GetMeta { Things { City { meta { count } population { lowest highest sum } } } } } }",
    );
    assert_eq!(s, 200, "{b}");
    assert!(b["errors"].is_null(), "{b}");
    let city = &b["data"]["Local"]["GetMeta"]["Things"]["City"];
    assert_eq!(city["meta"]["count"], 60, "{b}");
    assert_eq!(city["population"]["highest"].as_f64(), Some(59.0), "{b}");
    assert_eq!(city["population"]["sum"].as_f64(), Some(1770.0), "{b}");
    // A misspelt limit is a configuration error naming it.
    std::fs::write(
        &config,
        json!({"environments": [{"name": "default", "limits": {"max_query_object": 50}}]})
            .to_string(),
    )
    .unwrap();
    let out = std::process::Command::new(weft_e2e_tests::weft_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--config-file"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("max_query_object"), "{err}");
}
