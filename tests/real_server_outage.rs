//! A real store stopped under a running Weft: requests answer 503 saying the store cannot be
//! reached (never hang, never 500), and once the store is back the same server answers again
//! with the data it had. Stops and starts the real servers with `scripts/real-servers.sh`, so
//! it is a test binary of its own (cargo runs test binaries one after another) with one test.
//! Cassandra (`WEFT_CASSANDRA_CONTACT_POINTS`) and Gremlin Server (`WEFT_GREMLIN_URL`); a store
//! whose variable is not set is skipped, saying so (with `WEFT_REQUIRE_REAL_SERVERS=1`, as in
//! CI, it fails instead).
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;
use weft_e2e_tests::{real_server, Api, Server};

fn real_servers(args: &[&str]) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/real-servers.sh");
    let status = std::process::Command::new("bash")
        .arg(&script)
        .args(args)
        .status()
        .expect("run scripts/real-servers.sh");
    assert!(status.success(), "scripts/real-servers.sh {args:?} failed");
}

/// Sends `GET path` as the root key until `want(status)` holds or `within` passes; the last
/// answer, and how long it took.
fn until(
    api: &Api,
    path: &str,
    within: Duration,
    want: impl Fn(u16) -> bool,
) -> ((u16, serde_json::Value), Duration) {
    let start = Instant::now();
    loop {
        let r = api.send("GET", path, None);
        if want(r.0) || start.elapsed() > within {
            return (r, start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_stopped_store_is_503_and_weft_recovers_when_it_is_back() {
    let test = "a_stopped_store_is_503_and_weft_recovers_when_it_is_back";
    let mut stores = Vec::new();
    if let Some(cp) = real_server(test, "WEFT_CASSANDRA_CONTACT_POINTS") {
        let points: Vec<&str> = cp.split(',').collect();
        stores.push((
            "cassandra",
            "cassandra",
            json!({"contact_points": points, "keyspace": format!("weft_outage_{}", std::process::id())}),
        ));
    }
    if let Some(url) = real_server(test, "WEFT_GREMLIN_URL") {
        stores.push((
            "gremlin",
            "gremlin",
            json!({"url": url, "namespace": format!("outage_{}", std::process::id())}),
        ));
    }
    for (server, database, config) in stores {
        let config = config.to_string();
        let api = Api::new(Server::start_with(
            &["--database", database, "--database-config", &config],
            &[],
        ));
        api.ok(
            "POST",
            "/schema/things",
            Some(
                json!({"class": "City", "properties": [{"name": "name", "@dataType": ["string"]}]}),
            ),
        );
        let b = api.ok(
            "POST",
            "/things",
            Some(
                json!({"thing": {"@context": "", "@class": "City", "schema": {"name": "Before"}}}),
            ),
        );
        let id = b["thingId"].as_str().unwrap().to_string();
        let path = format!("/things/{id}");

        real_servers(&["stop", server]);
        let ((status, body), took) = until(&api, &path, Duration::from_secs(90), |s| s == 503);
        let message = body.to_string();
        real_servers(&["start", server]);
        assert_eq!(
            status, 503,
            "{server} stopped: GET answered {status} after {took:?}: {body}"
        );
        assert!(
            message.contains(database) || message.to_lowercase().contains("unavailable"),
            "the 503 says the store cannot be reached: {message}"
        );
        eprintln!("{server} stopped: 503 after {took:?}: {message}");

        let ((status, body), took) = until(&api, &path, Duration::from_secs(120), |s| s == 200);
        assert_eq!(
            status, 200,
            "{server} back: GET still answered {status} after {took:?}: {body}"
        );
        assert_eq!(body["schema"]["name"], "Before", "{body}");
        eprintln!("{server} back: 200 after {took:?}");
        // And writes work again.
        api.ok(
            "POST",
            "/things",
            Some(json!({"thing": {"@context": "", "@class": "City", "schema": {"name": "After"}}})),
        );
    }
}
