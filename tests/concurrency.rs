//! Concurrent writers through the real binary (real threads, real HTTP on 127.0.0.1): no
//! acknowledged write is lost, and no object outlives the schema it was validated against.
//! Run against dev-memory (compare-and-set writes) and against a connector built for interface
//! 1.1 (the host serialises its writes itself).
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use weft_e2e_tests::{fixture_so, on_threads, Api, Server};

fn city_schema(api: &Api) {
    api.ok(
        "POST",
        "/schema/things",
        Some(json!({"class": "City", "properties": [
            {"name": "name", "@dataType": ["string"]},
            {"name": "population", "@dataType": ["int"]},
            {"name": "near", "@dataType": ["City"], "cardinality": "many"}]})),
    );
}

fn create_city(api: &Api, name: &str) -> String {
    let b = api.ok(
        "POST",
        "/things",
        Some(json!({"thing": {"@context": "", "@class": "City", "schema": {"name": name}}})),
    );
    b["thingId"].as_str().unwrap().to_string()
}

/// 32 concurrent `POST /things/{id}/properties/near`: every one answered 200 and all 32 kept.
fn reference_additions_are_all_kept(api: &Api) {
    let target = create_city(api, "Hub");
    let others: Vec<String> = (0..32)
        .map(|i| create_city(api, &format!("Spoke {i}")))
        .collect();
    let statuses = on_threads(32, |i| {
        api.send(
            "POST",
            &format!("/things/{target}/properties/near"),
            Some(json!({"$cref": others[i], "locationUrl": "http://localhost/", "type": "Thing"})),
        )
    });
    for (i, (s, b)) in statuses.iter().enumerate() {
        assert_eq!(*s, 200, "reference addition {i} answered {s}: {b}");
    }
    let got = api.ok("GET", &format!("/things/{target}"), None);
    let kept: BTreeSet<String> = got["schema"]["near"]
        .as_array()
        .unwrap_or_else(|| panic!("no references kept: {got}"))
        .iter()
        .map(|r| r["$cref"].as_str().unwrap().to_string())
        .collect();
    let sent: BTreeSet<String> = others.into_iter().collect();
    assert_eq!(
        kept.len(),
        32,
        "32 acknowledged reference additions, {} kept",
        kept.len()
    );
    assert_eq!(kept, sent);
}

/// Two writers PATCH two different properties of one object, 20 times each, at once: both
/// last values are kept.
fn patches_of_two_properties_keep_both(api: &Api) {
    let id = create_city(api, "Start");
    let n = 20;
    on_threads(2, |t| {
        for i in 0..n {
            let patch = if t == 0 {
                json!([{"op": "add", "path": "/schema/name", "value": format!("name {i}")}])
            } else {
                json!([{"op": "add", "path": "/schema/population", "value": i}])
            };
            let (s, b) = api.send("PATCH", &format!("/things/{id}"), Some(patch));
            assert_eq!(s, 200, "patch {i} of writer {t}: {s} {b}");
        }
    });
    let got = api.ok("GET", &format!("/things/{id}"), None);
    assert_eq!(
        got["schema"]["name"],
        json!(format!("name {}", n - 1)),
        "{got}"
    );
    assert_eq!(got["schema"]["population"], json!(n - 1), "{got}");
}

fn all_things(api: &Api) -> Vec<Value> {
    let mut out = vec![];
    for page in 1.. {
        let b = api.ok("GET", &format!("/things?maxResults=100&page={page}"), None);
        let items = b["things"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            break;
        }
        out.extend(items);
    }
    out
}

/// A class is deleted while a batch of objects of it is being validated and stored: once the
/// deletion is acknowledged, no stored object has that class. The batch's first items fail
/// validation one by one (each refers to a missing City), which keeps the batch between reading
/// the schema and storing its last, valid items long enough for the deletion to land there.
fn no_object_outlives_its_class(api: &Api) {
    for (round, delay_ms) in [40u64, 80, 120, 160, 200, 250, 300, 400]
        .into_iter()
        .enumerate()
    {
        api.ok(
            "POST",
            "/schema/things",
            Some(json!({"class": "Ephemeral", "properties": [
                {"name": "name", "@dataType": ["string"]},
                {"name": "near", "@dataType": ["City"], "cardinality": "many"}]})),
        );
        let invalid = |j: usize| {
            let missing = weft_plugin_api::Id::random().to_string();
            json!({"@context": "", "@class": "Ephemeral", "schema": {"name": format!("bad {j}"),
                "near": [{"$cref": missing, "locationUrl": "http://localhost/", "type": "Thing"}]}})
        };
        let mut items: Vec<Value> = (0..6000).map(invalid).collect();
        items.extend((0..10).map(|j| {
            json!({"@context": "", "@class": "Ephemeral", "schema": {"name": format!("good {j}")}})
        }));
        let batch = json!({ "things": items });
        let deleted = AtomicBool::new(false);
        on_threads(2, |t| {
            if t == 0 {
                let (s, b) = api.send("POST", "/batching/things", Some(batch.clone()));
                assert!(matches!(s, 200 | 409 | 422), "the batch answered {s}: {b}");
                return;
            }
            std::thread::sleep(Duration::from_millis(delay_ms));
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                let (s, _) = api.send("DELETE", "/schema/things/Ephemeral", None);
                if s == 200 {
                    deleted.store(true, Ordering::SeqCst);
                    return;
                }
                for o in all_things(api) {
                    if o["@class"] == "Ephemeral" {
                        let id = o["thingId"].as_str().unwrap();
                        let _ = api.send("DELETE", &format!("/things/{id}"), None);
                    }
                }
            }
            panic!("round {round}: the class could not be deleted within 30 s");
        });
        assert!(deleted.load(Ordering::SeqCst));
        let leftovers: Vec<Value> = all_things(api)
            .into_iter()
            .filter(|o| o["@class"] == "Ephemeral")
            .collect();
        assert!(
            leftovers.is_empty(),
            "round {round}: {} stored objects of the deleted class, e.g. {:?}",
            leftovers.len(),
            leftovers.first()
        );
        // And a create of the deleted class is refused.
        let (s, b) = api.post(
            "/things",
            json!({"thing": {"@context": "", "@class": "Ephemeral", "schema": {"name": "late"}}}),
        );
        assert_eq!(s, 422, "{b}");
    }
}

#[test]
fn concurrent_writers_lose_nothing_with_compare_and_set() {
    let api = Api::new(Server::start());
    let meta = api.ok("GET", "/meta", None);
    assert_eq!(
        meta["plugins"][0]["writeMode"], "compare-and-set",
        "dev-memory declares versioned writes: {meta}"
    );
    city_schema(&api);
    reference_additions_are_all_kept(&api);
    patches_of_two_properties_keep_both(&api);
    no_object_outlives_its_class(&api);
}

#[test]
fn a_connector_built_for_interface_1_1_loads_and_the_host_serialises_its_writes() {
    let so = fixture_so("interface-1-1");
    let api = Api::new(Server::start_on(so.parent().unwrap(), "legacy-memory"));
    let meta = api.ok("GET", "/meta", None);
    let conn = &meta["plugins"][0];
    assert_eq!(conn["name"], "legacy-memory", "{meta}");
    assert_eq!(conn["interfaceVersion"], "1.1.0", "{meta}");
    assert_eq!(conn["writeMode"], "serialised-by-host", "{meta}");
    city_schema(&api);
    reference_additions_are_all_kept(&api);
    patches_of_two_properties_keep_both(&api);
}
