//! A connector that panics is poisoned: the call that panicked answers 500, every later storage
//! call 503 naming the plugin and the operation and saying the server must be restarted; the
//! process lives, and `/meta` says what happened.
use serde_json::json;
use weft_e2e_tests::{fixture_so, message, Api, Server};

#[test]
fn after_a_panic_the_connector_is_poisoned_and_the_server_lives() {
    let so = fixture_so("test-panicky");
    let api = Api::new(Server::start_on(so.parent().unwrap(), "test-panicky"));
    api.ok(
        "POST",
        "/schema/things",
        Some(json!({"class": "City", "properties": [{"name": "name", "@dataType": ["string"]}]})),
    );
    // An object the fixture reads back without panicking (not an id starting 0xEE or 0xEF).
    let id = loop {
        let made = api.ok(
            "POST",
            "/things",
            Some(json!({"thing": {"@context": "", "@class": "City", "schema": {"name": "Rome"}}})),
        );
        let id = made["thingId"].as_str().unwrap().to_string();
        if !id.starts_with("ee") && !id.starts_with("ef") {
            break id;
        }
    };
    api.ok("GET", &format!("/things/{id}"), None);

    // The fixture's get_object panics for ids whose first byte is 0xEE.
    let (s, b) = api.get("/things/ee000000-0000-4000-8000-000000000000");
    assert_eq!(s, 500, "{b}");
    assert!(message(&b).contains("panicked in get_object"), "{b}");

    // Every later storage call: 503, naming the plugin and the operation, saying to restart.
    for path in [
        format!("/things/{id}"),
        "/things".to_string(),
        "/schema".to_string(),
    ] {
        let (s, b) = api.get(&path);
        assert_eq!(s, 503, "GET {path}: {b}");
        let m = message(&b);
        assert!(
            m.contains("test-panicky") && m.contains("get_object") && m.contains("restart"),
            "GET {path}: {m}"
        );
    }
    let (s, b) = api.post(
        "/things",
        json!({"thing": {"@context": "", "@class": "City", "schema": {"name": "Oslo"}}}),
    );
    assert_eq!(s, 503, "{b}");

    // The process lives, and /meta says which plugin is poisoned.
    assert!(api.server.is_running_ref(), "the server process died");
    let meta = api.ok("GET", "/meta", None);
    let status = meta["plugins"][0]["status"].as_str().unwrap_or_default();
    assert!(
        status.starts_with("poisoned") && status.contains("get_object"),
        "{meta}"
    );
}
