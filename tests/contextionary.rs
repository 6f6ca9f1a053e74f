//! The contextionary end to end: the real `finalfusion` plugin over the real GloVe slice,
//! behind the real server.
use serde_json::{json, Value};
use weft_e2e_tests::{message, test_contextionary, Api, Server};

fn with_contextionary() -> Api {
    let path = test_contextionary();
    Api::new(Server::start_with(
        &["--contextionary", path.to_str().unwrap()],
        &[],
    ))
}

fn vector(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a vector: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn city_has_town_among_its_five_nearest_words() {
    let api = with_contextionary();
    let (s, b) = api.send("GET", "/c11y/words/city?k=5", None);
    assert_eq!(s, 200, "{b}");
    let w = &b["individualWords"][0];
    assert_eq!(w["word"], "city");
    assert_eq!(w["present"], true);
    let near: Vec<&str> = w["info"]["nearestNeighbors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["word"].as_str().unwrap())
        .collect();
    assert_eq!(near.len(), 5);
    assert!(near.contains(&"town"), "{near:?}");
    assert!(
        !near.contains(&"city"),
        "a word is not its own neighbour: {near:?}"
    );
    let (_, b) = api.send("GET", "/c11y/words/zebrafoo", None);
    assert_eq!(b["individualWords"][0]["present"], false, "{b}");
}

#[test]
fn a_class_whose_name_is_not_a_word_is_refused_naming_the_word() {
    let api = with_contextionary();
    let (s, b) = api.send("POST", "/schema/things", Some(json!({"class": "Zebrafoo"})));
    assert_eq!(s, 422, "{b}");
    let m = message(&b);
    assert!(m.contains("\"zebrafoo\""), "{m}");
    assert!(m.contains("contextionary"), "{m}");
    assert!(m.contains("keywords"), "{m}");
    // A misspelt property part gets a suggestion.
    let (s, b) = api.send(
        "POST",
        "/schema/things",
        Some(json!({"class": "Town", "properties": [{"name": "inCountryy", "@dataType": ["string"]}]})),
    );
    assert_eq!(s, 422, "{b}");
    assert!(message(&b).contains("did you mean \"country\""), "{b}");
    // Nothing was stored.
    let (_, dump) = api.send("GET", "/schema", None);
    assert_eq!(dump["things"]["classes"], json!([]), "{dump}");
    // The same name is fine with keywords that are words.
    let (s, b) = api.send(
        "POST",
        "/schema/things",
        Some(json!({"class": "Zebrafoo", "keywords": [{"keyword": "animal", "weight": 1.0}]})),
    );
    assert_eq!(s, 200, "{b}");
}

#[test]
fn a_class_vector_is_the_weighted_centroid_of_its_keywords() {
    let api = with_contextionary();
    let (s, b) = api.send(
        "POST",
        "/schema/things",
        Some(json!({"class": "City", "keywords": [
            {"keyword": "place", "weight": 1.0}, {"keyword": "town", "weight": 0.5}]})),
    );
    assert_eq!(s, 200, "{b}");
    let (_, words) = api.send("GET", "/c11y/words/place,town?k=1", None);
    let place = vector(&words["individualWords"][0]["info"]["vector"]);
    let town = vector(&words["individualWords"][1]["info"]["vector"]);
    let (s, class) = api.send("GET", "/c11y/classes/City", None);
    assert_eq!(s, 200, "{class}");
    let got = vector(&class["vector"]);
    assert_eq!(got.len(), 50);
    for i in 0..50 {
        let want = (1.0 * place[i] + 0.5 * town[i]) / 1.5;
        assert!(
            (got[i] - want).abs() < 1e-5,
            "dimension {i}: {} vs {want}",
            got[i]
        );
    }
    // Without keywords, the mean of the name's parts.
    let (s, b) = api.send("POST", "/schema/things", Some(json!({"class": "AirPort"})));
    assert_eq!(s, 200, "{b}");
    let (_, words) = api.send("GET", "/c11y/words/air,port?k=1", None);
    let air = vector(&words["individualWords"][0]["info"]["vector"]);
    let port = vector(&words["individualWords"][1]["info"]["vector"]);
    let got = vector(&api.send("GET", "/c11y/classes/AirPort", None).1["vector"]);
    for i in 0..50 {
        assert!(
            (got[i] - (air[i] + port[i]) / 2.0).abs() < 1e-5,
            "dimension {i}"
        );
    }
    // Renewing the keywords moves the class.
    let (s, b) = api.send(
        "PUT",
        "/schema/things/City",
        Some(json!({"keywords": [{"keyword": "town", "weight": 1.0}]})),
    );
    assert_eq!(s, 200, "{b}");
    let got = vector(&api.send("GET", "/c11y/classes/City", None).1["vector"]);
    for i in 0..50 {
        assert!((got[i] - town[i]).abs() < 1e-5, "dimension {i}");
    }
    // The classes nearest to a word.
    let (s, b) = api.send("GET", "/c11y/classes/nearest?word=village&k=1", None);
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["classes"][0]["class"], "City", "{b}");
    // Weights must be in (0, 1].
    let (s, b) = api.send(
        "POST",
        "/schema/things",
        Some(json!({"class": "Harbor", "keywords": [{"keyword": "port", "weight": 0}]})),
    );
    assert_eq!(s, 422, "{b}");
}

#[test]
fn without_a_contextionary_the_schema_is_not_checked_and_c11y_says_why() {
    let api = Api::new(Server::start());
    let (s, b) = api.send("POST", "/schema/things", Some(json!({"class": "Zebrafoo"})));
    assert_eq!(s, 200, "{b}");
    let (s, b) = api.send("GET", "/c11y/words/city", None);
    assert_eq!(s, 501, "{b}");
    assert!(message(&b).contains("--contextionary"), "{b}");
}
