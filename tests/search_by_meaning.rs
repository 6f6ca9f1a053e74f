//! Search by meaning end to end: the real binary with the real `finalfusion` contextionary over
//! the 20,000-word GloVe slice, on the connector `WEFT_TEST_DATABASE` names (dev-memory by
//! default; `scripts/test.sh` runs this module again through cassandra, which searches with its
//! own vector index, and gremlin, where the host searches): cities, rivers and people imported
//! over REST and found with GraphQL `Explore` and `Get … explore`.
use serde_json::{json, Value};
use weft_e2e_tests::{fixture_so, test_contextionary, Api, Creds, Server};

const CITIES: [(&str, &str, i64); 5] = [
    (
        "Amsterdam",
        "capital city of the netherlands with canals",
        900_000,
    ),
    ("Berlin", "large city and capital of germany", 3_600_000),
    ("Hamburg", "port city in northern germany", 1_800_000),
    ("Lyon", "french city known for food", 500_000),
    ("Porto", "coastal city in portugal", 230_000),
];
const RIVERS: [(&str, &str); 3] = [
    ("Rhine", "long river flowing into the north sea"),
    (
        "Danube",
        "river flowing through vienna and budapest to the black sea",
    ),
    ("Thames", "river through london"),
];
const PEOPLE: [(&str, &str); 3] = [
    ("Einstein", "physicist who developed relativity"),
    ("Shakespeare", "english playwright and poet"),
    ("Mozart", "austrian composer of classical music"),
];

fn server() -> Api {
    let path = test_contextionary();
    Api::new(Server::start_with(
        &["--contextionary", path.to_str().unwrap()],
        &[],
    ))
}

fn graphql_as(api: &Api, c: &Creds, query: &str) -> Value {
    let (s, b) = api.call(c, "POST", "/graphql", Some(json!({ "query": query })));
    assert_eq!(s, 200, "{query}: {b}");
    b
}

fn graphql(api: &Api, query: &str) -> Value {
    graphql_as(api, &Creds::root(), query)
}

fn error_of(b: &Value) -> String {
    b["errors"][0]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error: {b}"))
        .to_string()
}

/// `Local.Explore` as `(className, certainty, uuid)`, best first.
fn explore_as(api: &Api, c: &Creds, args: &str) -> Vec<(String, f64, String)> {
    let b = graphql_as(
        api,
        c,
        &format!("{{ Local {{ Explore({args}) {{ beacon certainty className }} }} }}"),
    );
    let hits = b["data"]["Local"]["Explore"]
        .as_array()
        .unwrap_or_else(|| panic!("Explore({args}) answered no list: {b}"));
    hits.iter()
        .map(|h| {
            let beacon = h["beacon"].as_str().unwrap();
            let uuid = beacon
                .strip_prefix("weaviate://localhost/things/")
                .unwrap_or_else(|| panic!("a beacon of a local thing: {beacon}"));
            (
                h["className"].as_str().unwrap().to_string(),
                h["certainty"].as_f64().unwrap(),
                uuid.to_string(),
            )
        })
        .collect()
}

fn explore(api: &Api, args: &str) -> Vec<(String, f64, String)> {
    explore_as(api, &Creds::root(), args)
}

fn schema(api: &Api) {
    for class in ["City", "River", "Person"] {
        api.ok(
            "POST",
            "/schema/things",
            Some(json!({"class": class, "properties": [
                {"name": "name", "@dataType": ["string"]},
                {"name": "description", "@dataType": ["text"]},
                {"name": "population", "@dataType": ["int"]}
            ]})),
        );
    }
}

/// Creates the fixture; answers the ids by name.
fn import(api: &Api) -> std::collections::HashMap<&'static str, String> {
    let mut items = vec![];
    let mut names = vec![];
    for (name, description, population) in CITIES {
        items.push(json!({"@class": "City", "@context": "", "schema":
            {"name": name, "description": description, "population": population}}));
        names.push(name);
    }
    for (class, rows) in [("River", &RIVERS), ("Person", &PEOPLE)] {
        for (name, description) in rows.iter() {
            items.push(json!({"@class": class, "@context": "", "schema":
                {"name": name, "description": description, "population": 0}}));
            names.push(name);
        }
    }
    let b = api.ok("POST", "/batching/things", Some(json!({ "things": items })));
    let answers = b.as_array().expect("a batch answers a list");
    names
        .into_iter()
        .zip(answers)
        .map(|(n, a)| {
            assert_eq!(a["result"]["status"], "SUCCESS", "{a}");
            (n, a["thingId"].as_str().expect("thingId").to_string())
        })
        .collect()
}

fn position(hits: &[(String, f64, String)], id: &str) -> Option<usize> {
    hits.iter().position(|h| h.2 == id)
}

#[test]
fn objects_are_found_by_meaning_and_follow_every_write() {
    let api = server();
    schema(&api);
    let ids = import(&api);

    // "town" ranks the five cities first, most certain first.
    let hits = explore(&api, r#"concepts: ["town"], limit: 8"#);
    assert_eq!(hits.len(), 8, "{hits:?}");
    assert!(
        hits[..5].iter().all(|h| h.0 == "City"),
        "the cities come first for \"town\": {hits:?}"
    );
    assert!(
        hits.windows(2).all(|w| w[0].1 >= w[1].1),
        "most certain first: {hits:?}"
    );
    assert!(hits.iter().all(|h| h.1 > 0.0 && h.1 <= 1.0), "{hits:?}");

    // moveAwayFrom pushes the query away from "river": every river loses certainty, and a
    // city takes the first place from a river.
    let water = explore(&api, r#"concepts: ["water"], limit: 11"#);
    let away = explore(
        &api,
        r#"concepts: ["water"], limit: 11, moveAwayFrom: {concepts: ["river"], force: 0.9}"#,
    );
    assert_eq!(water[0].0, "River", "{water:?}");
    assert_eq!(away[0].0, "City", "{away:?}");
    for (name, _) in RIVERS {
        let id = &ids[name];
        let before = water.iter().find(|h| &h.2 == id).unwrap().1;
        let after = away.iter().find(|h| &h.2 == id).unwrap().1;
        assert!(after < before, "{name}: {before} → {after}");
    }
    // moveTo pulls it halfway towards "music" (force 1): the composer climbs and gains
    // certainty.
    let music = explore(
        &api,
        r#"concepts: ["water"], limit: 11, moveTo: {concepts: ["music"], force: 1.0}"#,
    );
    let (was, now) = (
        position(&water, &ids["Mozart"]).unwrap(),
        position(&music, &ids["Mozart"]).unwrap(),
    );
    assert!(
        now < was && now < 3,
        "Mozart from {was} to {now}: {music:?}"
    );
    assert!(music[now].1 > water[was].1, "{music:?}");

    // certainty leaves out the less certain.
    let sure = explore(&api, r#"concepts: ["town"], certainty: 0.86"#);
    assert!(!sure.is_empty() && sure.len() < 11, "{sure:?}");
    assert!(sure.iter().all(|h| h.1 >= 0.86), "{sure:?}");

    // Get with explore and where: only cities over a million, by certainty, with _certainty.
    let b = graphql(
        &api,
        r#"{ Local { Get { Things { City(explore: {concepts: ["harbour"]}, where: {operator: GreaterThan, path: ["population"], valueInt: 1000000}, first: 5) { name population _certainty } } } } }"#,
    );
    let cities = b["data"]["Local"]["Get"]["Things"]["City"]
        .as_array()
        .unwrap_or_else(|| panic!("{b}"));
    let names: Vec<&str> = cities.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Hamburg", "Berlin"], "the port city first: {b}");
    assert!(cities
        .iter()
        .all(|c| c["population"].as_i64().unwrap() > 1_000_000));
    let certainties: Vec<f64> = cities
        .iter()
        .map(|c| c["_certainty"].as_f64().unwrap())
        .collect();
    assert!(certainties[0] >= certainties[1], "{certainties:?}");
    // Without explore there is no certainty.
    let b = graphql(
        &api,
        r#"{ Local { Get { Things { City(first: 1) { _certainty } } } } }"#,
    );
    assert_eq!(
        b["data"]["Local"]["Get"]["Things"]["City"][0]["_certainty"],
        Value::Null,
        "{b}"
    );

    // An update moves an object in the ranking.
    let town = explore(&api, r#"concepts: ["town"], limit: 11"#);
    let before = position(&town, &ids["Mozart"]).unwrap();
    api.ok(
        "PATCH",
        &format!("/things/{}", ids["Mozart"]),
        Some(json!([{"op": "replace", "path": "/schema/description", "value": "small town by the sea"}])),
    );
    let town = explore(&api, r#"concepts: ["town"], limit: 11"#);
    let after = position(&town, &ids["Mozart"]).unwrap();
    assert!(
        after < before,
        "Mozart moved from {before} to {after}: {town:?}"
    );
    assert!(
        after < 6,
        "a town by the sea ranks with the cities: {town:?}"
    );

    // A deleted object is never found.
    api.ok("DELETE", &format!("/things/{}", ids["Hamburg"]), None);
    let all = explore(&api, r#"concepts: ["port"], limit: 1000"#);
    assert_eq!(all.len(), 10, "every thing but the deleted one: {all:?}");
    assert!(position(&all, &ids["Hamburg"]).is_none(), "{all:?}");
}

#[test]
fn a_key_finds_only_its_own_objects_by_meaning() {
    let api = server();
    schema(&api);
    let ids = import(&api);
    let child = api.child(
        &Creds::root(),
        json!({"read": true, "write": true, "delete": true, "execute": true}),
    );
    let (s, b) = api.call(
        &child,
        "POST",
        "/things",
        Some(json!({"thing": {"@class": "City", "@context": "", "schema":
            {"name": "Venice", "description": "town of canals", "population": 250000}}})),
    );
    assert!(s == 200 || s == 202, "{b}");
    let own = b["thingId"].as_str().unwrap().to_string();
    let mine = explore_as(&api, &child, r#"concepts: ["town"], limit: 100"#);
    assert_eq!(
        mine.iter().map(|h| h.2.as_str()).collect::<Vec<_>>(),
        [own.as_str()],
        "the child sees only its own city: {mine:?}"
    );
    let b = graphql_as(
        &api,
        &child,
        r#"{ Local { Get { Things { City(explore: {concepts: ["town"]}) { uuid } } } } }"#,
    );
    assert_eq!(
        b["data"]["Local"]["Get"]["Things"]["City"],
        json!([{ "uuid": own }]),
        "{b}"
    );
    // The root key sees everything, the child's city among the cities.
    let all = explore(&api, r#"concepts: ["town"], limit: 100"#);
    assert_eq!(all.len(), 12, "{all:?}");
    assert!(position(&all, &own).unwrap() < 6, "{all:?}");
    assert!(position(&all, &ids["Lyon"]).is_some());
}

#[test]
fn a_wrong_search_by_meaning_says_what_to_change() {
    let api = server();
    schema(&api);
    let b = graphql(
        &api,
        r#"{ Local { Explore(concepts: ["tonw"]) { beacon } } }"#,
    );
    let m = error_of(&b);
    assert!(
        m.contains("\"tonw\"") && m.contains("did you mean"),
        "an unknown word is named with suggestions: {m}"
    );
    let b = graphql(
        &api,
        r#"{ Local { Explore(concepts: ["town"], limit: 5000) { beacon } } }"#,
    );
    assert!(error_of(&b).contains("limits.max_explore_k"), "{b}");
    let b = graphql(
        &api,
        r#"{ Local { Explore(concepts: ["town"], certainty: 1.5) { beacon } } }"#,
    );
    assert!(error_of(&b).contains("from 0 to 1"), "{b}");
    let b = graphql(
        &api,
        r#"{ Local { Explore(concepts: ["the"]) { beacon } } }"#,
    );
    assert!(error_of(&b).contains("no words"), "{b}");
    // Without a contextionary.
    let bare = Api::new(Server::start());
    schema(&bare);
    let b = graphql(
        &bare,
        r#"{ Local { Explore(concepts: ["town"]) { beacon } } }"#,
    );
    assert!(error_of(&b).contains("needs a contextionary"), "{b}");
}

#[test]
fn a_connector_without_vector_search_is_searched_by_the_host_within_max_query_objects() {
    // legacy-memory: dev-memory built against interface 1.1, which stores no vectors.
    // Its plugin directory holds it and the contextionary plugin.
    let dir = tempfile::tempdir().unwrap();
    for so in [
        fixture_so("interface-1-1"),
        weft_e2e_tests::build_dir().join("libweft_contextionary.so"),
    ] {
        std::os::unix::fs::symlink(&so, dir.path().join(so.file_name().unwrap())).unwrap();
    }
    let config = dir.path().join("weft.json");
    std::fs::write(
        &config,
        json!({"environments": [{"name": "default", "limits": {"max_query_objects": 8}}]})
            .to_string(),
    )
    .unwrap();
    let c11y = test_contextionary();
    let api = Api::new(Server::start_on_with(
        dir.path(),
        "legacy-memory",
        &[
            "--contextionary",
            c11y.to_str().unwrap(),
            "--config-file",
            config.to_str().unwrap(),
        ],
    ));
    // Built against 1.1, it has no vectors object (whatever bits it declares), so the host
    // searches by meaning itself.
    let meta = api.ok("GET", "/meta", None);
    assert_eq!(meta["plugins"][0]["interfaceVersion"], "1.1.0", "{meta}");
    schema(&api);
    import(&api);
    // The five cities fit under the bound: the host vectorizes and ranks them.
    let b = graphql(
        &api,
        r#"{ Local { Get { Things { City(explore: {concepts: ["harbour"]}, where: {operator: GreaterThan, path: ["population"], valueInt: 1000000}, first: 2) { name _certainty } } } } }"#,
    );
    let cities = &b["data"]["Local"]["Get"]["Things"]["City"];
    assert_eq!(cities[1]["name"], "Berlin", "{b}");
    assert_eq!(cities[0]["name"], "Hamburg", "{b}");
    assert!(cities[0]["_certainty"].as_f64().unwrap() >= cities[1]["_certainty"].as_f64().unwrap());
    // Every thing (11) does not: an error naming the setting, never a partial answer.
    let b = graphql(
        &api,
        r#"{ Local { Explore(concepts: ["town"]) { beacon } } }"#,
    );
    let m = error_of(&b);
    assert!(
        m.contains("limits.max_query_objects") && m.contains("does not search vectors"),
        "{m}"
    );
}
