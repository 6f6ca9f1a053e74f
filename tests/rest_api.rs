//! The REST API end to end: the real binary, the real dev-memory plugin, real HTTP.
use serde_json::{json, Value};
use weft_e2e_tests::{message, Api, Server};

fn reference(id: &str) -> Value {
    json!({"$cref": id, "locationUrl": "http://localhost/", "type": "Thing"})
}

fn city_schema(api: &Api) {
    api.ok(
        "POST",
        "/schema/things",
        Some(
            json!({"class": "Country", "properties": [{"name": "name", "@dataType": ["string"]}]}),
        ),
    );
    api.ok(
        "POST",
        "/schema/things",
        Some(json!({
            "class": "City",
            "keywords": [{"keyword": "town", "weight": 0.5}],
            "properties": [
                {"name": "name", "@dataType": ["string"]},
                {"name": "population", "@dataType": ["int"]},
                {"name": "area", "@dataType": ["number"]},
                {"name": "isCapital", "@dataType": ["boolean"]},
                {"name": "founded", "@dataType": ["date"]},
                {"name": "inCountry", "@dataType": ["Country"]},
                {"name": "twinCities", "@dataType": ["City"], "cardinality": "many"}
            ]
        })),
    );
}

fn create(api: &Api, class: &str, schema: Value) -> String {
    let b = api.ok(
        "POST",
        "/things",
        Some(json!({"thing": {"@context": "http://example.org/ctx", "@class": class, "schema": schema}})),
    );
    b["thingId"].as_str().unwrap().to_string()
}

#[test]
fn thing_lifecycle_create_get_list_put_patch_history_references_delete() {
    let api = Api::new(Server::start());
    city_schema(&api);
    let de = create(&api, "Country", json!({"name": "Germany"}));
    let nl = create(&api, "Country", json!({"name": "Netherlands"}));
    let schema = json!({
        "name": "Berlin", "population": 3_600_000, "area": 891.8, "isCapital": true,
        "founded": "1237-01-01T00:00:00Z", "inCountry": reference(&de)
    });
    let created = api.ok(
        "POST",
        "/things",
        Some(json!({"thing": {"@context": "http://example.org/ctx", "@class": "City", "schema": schema}})),
    );
    let id = created["thingId"].as_str().unwrap().to_string();

    // Get it back field for field.
    let got = api.ok("GET", &format!("/things/{id}"), None);
    assert_eq!(got["@class"], "City");
    assert_eq!(got["@context"], "http://example.org/ctx");
    assert_eq!(got["schema"], schema);
    assert_eq!(got["thingId"], id.as_str());
    assert_eq!(got["key"]["type"], "Key");
    assert!(got["creationTimeUnix"].as_i64().unwrap() > 0);
    assert_eq!(got, created);

    // List: newest first, with the total. The three creates may share a millisecond: ties are
    // by the time-ordered id, descending, so the list is still the reverse creation order.
    let list = api.ok("GET", "/things", None);
    assert_eq!(list["totalResults"], 3);
    assert_eq!(list["things"][0]["thingId"], id.as_str());
    let page2 = api.ok("GET", "/things?maxResults=2&page=2", None);
    assert_eq!(page2["things"].as_array().unwrap().len(), 1);
    assert_eq!(page2["totalResults"], 3);
    assert_eq!(page2["things"][0]["thingId"], de.as_str());

    // PUT: full replace (answered 202, as the contract says).
    let (s, put) = api.send(
        "PUT",
        &format!("/things/{id}"),
        Some(json!({"@context": "http://example.org/ctx", "@class": "City", "schema": {"name": "Berlin", "population": 3_700_000}})),
    );
    assert_eq!(s, 202, "{put}");
    assert_eq!(
        put["schema"],
        json!({"name": "Berlin", "population": 3_700_000})
    );

    // PATCH: RFC 6902 on the object as GET shows it.
    let patched = api.ok(
        "PATCH",
        &format!("/things/{id}"),
        Some(json!([
            {"op": "replace", "path": "/schema/population", "value": 3_800_000},
            {"op": "add", "path": "/schema/inCountry", "value": reference(&nl)}
        ])),
    );
    assert_eq!(patched["schema"]["population"], 3_800_000);
    assert_eq!(patched["schema"]["inCountry"]["$cref"], nl.as_str());

    // History: the old versions, newest first.
    let h = api.ok("GET", &format!("/things/{id}/history"), None);
    assert_eq!(h["deleted"], false);
    let versions = h["propertyHistory"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["schema"]["population"], 3_700_000);
    assert_eq!(versions[1]["schema"], schema);

    // References: add two to a `many` property, remove one, replace all, and the atMostOne rule.
    let hamburg = create(&api, "City", json!({"name": "Hamburg"}));
    let munich = create(&api, "City", json!({"name": "Munich"}));
    let refs = format!("/things/{id}/properties/twinCities");
    api.ok("POST", &refs, Some(reference(&hamburg)));
    api.ok("POST", &refs, Some(reference(&munich)));
    let twins = api.ok("GET", &format!("/things/{id}"), None)["schema"]["twinCities"].clone();
    assert_eq!(twins.as_array().unwrap().len(), 2);
    let (s, _) = api.send("DELETE", &refs, Some(reference(&hamburg)));
    assert_eq!(s, 204);
    let twins = api.ok("GET", &format!("/things/{id}"), None)["schema"]["twinCities"].clone();
    assert_eq!(twins, json!([reference(&munich)]));
    let (s, b) = api.send("DELETE", &refs, Some(reference(&hamburg)));
    assert_eq!(s, 404, "{b}");
    api.ok("PUT", &refs, Some(json!([reference(&hamburg)])));
    let twins = api.ok("GET", &format!("/things/{id}"), None)["schema"]["twinCities"].clone();
    assert_eq!(twins, json!([reference(&hamburg)]));
    let (s, b) = api.post(
        &format!("/things/{id}/properties/inCountry"),
        reference(&de),
    );
    assert_eq!(s, 422, "{b}");
    assert!(message(&b).contains("at most one"), "{b}");

    // DELETE, then 404, and the history says deleted.
    let (s, _) = api.send("DELETE", &format!("/things/{id}"), None);
    assert_eq!(s, 204);
    let (s, b) = api.get(&format!("/things/{id}"));
    assert_eq!(s, 404, "{b}");
    let h = api.ok("GET", &format!("/things/{id}/history"), None);
    assert_eq!(h["deleted"], true);
    let (s, _) = api.send("DELETE", &format!("/things/{id}"), None);
    assert_eq!(s, 404);
}

#[test]
fn invalid_objects_are_refused_with_the_property_named_and_nothing_stored() {
    let api = Api::new(Server::start());
    city_schema(&api);
    let cases = [
        (json!({"name": "X", "populaton": 1}), "populaton"),
        (json!({"population": "many"}), "population"),
        (json!({"population": 1.5}), "population"),
        (json!({"isCapital": "yes"}), "isCapital"),
        (json!({"founded": "last tuesday"}), "founded"),
        (json!({"inCountry": reference(&uuid_string())}), "inCountry"),
        (
            json!({"inCountry": [reference(&uuid_string())]}),
            "inCountry",
        ),
        (
            json!({"inCountry": {"$cref": "not-a-uuid", "type": "Thing"}}),
            "inCountry",
        ),
    ];
    for (schema, prop) in cases {
        let (s, b) = api.post(
            "/things",
            json!({"thing": {"@context": "", "@class": "City", "schema": schema}}),
        );
        assert_eq!(s, 422, "{schema}: {b}");
        assert!(message(&b).contains(prop), "{schema}: {b}");
        // The validate endpoint agrees.
        let (s, _) = api.post(
            "/things/validate",
            json!({"@context": "", "@class": "City", "schema": schema}),
        );
        assert_eq!(s, 422);
    }
    // A reference to an object of a class the property does not allow.
    let city = create(&api, "City", json!({"name": "Paris"}));
    let (s, b) = api.post(
        "/things",
        json!({"thing": {"@context": "", "@class": "City", "schema": {"inCountry": reference(&city)}}}),
    );
    assert_eq!(s, 422, "{b}");
    assert!(message(&b).contains("Country"), "{b}");
    // Missing @class, unknown class, action class sent to /things.
    let (s, b) = api.post("/things", json!({"thing": {"@context": "", "schema": {}}}));
    assert_eq!(s, 422);
    assert!(message(&b).contains("@class"), "{b}");
    let (s, b) = api.post(
        "/things",
        json!({"thing": {"@context": "", "@class": "Planet"}}),
    );
    assert_eq!(s, 422);
    assert!(message(&b).contains("Planet"), "{b}");
    api.ok(
        "POST",
        "/schema/actions",
        Some(json!({"class": "Flight", "properties": []})),
    );
    let (s, b) = api.post(
        "/things",
        json!({"thing": {"@context": "", "@class": "Flight"}}),
    );
    assert_eq!(s, 422);
    assert!(message(&b).contains("/actions"), "{b}");
    // Only Paris was stored.
    assert_eq!(api.ok("GET", "/things", None)["totalResults"], 1);

    // A failed PATCH changes nothing; a malformed one is a 400.
    let before = api.ok("GET", &format!("/things/{city}"), None);
    let (s, b) = api.send(
        "PATCH",
        &format!("/things/{city}"),
        Some(json!([{"op": "replace", "path": "/schema/population", "value": "lots"}])),
    );
    assert_eq!(s, 422, "{b}");
    let (s, b) = api.send(
        "PATCH",
        &format!("/things/{city}"),
        Some(json!({"op": "replace"})),
    );
    assert_eq!(s, 400, "{b}");
    let (s, b) = api.send(
        "PATCH",
        &format!("/things/{city}"),
        Some(json!([{"op": "replace", "path": "/thingId", "value": uuid_string()}])),
    );
    assert_eq!(s, 422, "{b}");
    let (s, b) = api.send(
        "PATCH",
        &format!("/things/{city}"),
        Some(json!([{"op": "remove", "path": "/schema/nothing"}])),
    );
    assert_eq!(s, 422, "{b}");
    assert_eq!(api.ok("GET", &format!("/things/{city}"), None), before);
    let h = api.ok("GET", &format!("/things/{city}/history"), None);
    assert_eq!(h["propertyHistory"], json!([]));
}

#[test]
fn schema_changes_are_checked_and_stored() {
    let api = Api::new(Server::start());
    city_schema(&api);
    let dump = api.ok("GET", "/schema", None);
    let classes: Vec<&str> = dump["things"]["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["class"].as_str().unwrap())
        .collect();
    assert_eq!(classes, ["Country", "City"]);
    // Unique across things and actions.
    let (s, b) = api.post("/schema/actions", json!({"class": "City"}));
    assert_eq!(s, 422);
    assert!(message(&b).contains("unique"), "{b}");
    // Bad names, bad types, bad keyword weights.
    for (body, needle) in [
        (json!({"class": "city"}), "CamelCase"),
        (
            json!({"class": "Airport", "properties": [{"name": "City", "@dataType": ["string"]}]}),
            "camelCase",
        ),
        (
            json!({"class": "Airport", "properties": [{"name": "town", "@dataType": ["Town"]}]}),
            "Town",
        ),
        (
            json!({"class": "Airport", "properties": [{"name": "code", "@dataType": ["string", "int"]}]}),
            "mixes",
        ),
        (
            json!({"class": "Airport", "keywords": [{"keyword": "port", "weight": 0}]}),
            "weight",
        ),
    ] {
        let (s, b) = api.post("/schema/things", body.clone());
        assert_eq!(s, 422, "{body}: {b}");
        assert!(message(&b).contains(needle), "{body}: {b}");
    }
    // Properties: add, rename, delete.
    api.ok(
        "POST",
        "/schema/things/Country/properties",
        Some(json!({"name": "code", "@dataType": ["string"]})),
    );
    api.ok(
        "PUT",
        "/schema/things/Country/properties/code",
        Some(json!({"newName": "isoCode"})),
    );
    let (s, b) = api.post(
        "/schema/things/Country/properties",
        json!({"name": "isoCode", "@dataType": ["string"]}),
    );
    assert_eq!(s, 422, "{b}");
    api.ok("DELETE", "/schema/things/Country/properties/isoCode", None);
    // A class with stored things or referred to by another is not deleted.
    let (s, b) = api.send("DELETE", "/schema/things/Country", None);
    assert_eq!(s, 400, "{b}");
    assert!(message(&b).contains("City.inCountry"), "{b}");
    create(&api, "City", json!({"name": "Lyon"}));
    let (s, b) = api.send("DELETE", "/schema/things/City", None);
    assert_eq!(s, 400, "{b}");
    assert!(message(&b).contains("1 stored thing"), "{b}");
    let (s, _) = api.send("DELETE", "/schema/things/Nothing", None);
    assert_eq!(s, 400);
    // Meta shows both schemas and the plugin.
    let meta = api.ok("GET", "/meta", None);
    assert_eq!(meta["thingsSchema"]["classes"].as_array().unwrap().len(), 2);
    // The connector this run uses (dev-memory, or the one of WEFT_TEST_DATABASE).
    assert_eq!(
        meta["plugins"][0]["name"],
        weft_e2e_tests::test_database().0
    );
    assert!(meta["hostname"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));
}

#[test]
fn actions_have_their_own_resource_and_id_space() {
    let api = Api::new(Server::start());
    api.ok(
        "POST",
        "/schema/actions",
        Some(json!({"class": "Flight", "properties": [{"name": "code", "@dataType": ["string"]}]})),
    );
    let a = api.ok(
        "POST",
        "/actions",
        Some(json!({"action": {"@context": "", "@class": "Flight", "schema": {"code": "KL1001"}}})),
    );
    let id = a["actionId"].as_str().unwrap();
    assert_eq!(
        api.ok("GET", &format!("/actions/{id}"), None)["schema"]["code"],
        "KL1001"
    );
    let (s, _) = api.get(&format!("/things/{id}"));
    assert_eq!(s, 404);
    let list = api.ok("GET", "/actions", None);
    assert_eq!(list["totalResults"], 1);
    assert_eq!(list["actions"][0]["actionId"], id);
}

#[test]
fn batches_answer_every_item_in_order() {
    let api = Api::new(Server::start());
    city_schema(&api);
    let b = api.ok(
        "POST",
        "/batching/things",
        Some(json!({"things": [
            {"@context": "", "@class": "City", "schema": {"name": "A"}},
            {"@context": "", "@class": "City", "schema": {"population": "x"}},
            {"@context": "", "@class": "Country", "schema": {"name": "C"}}
        ]})),
    );
    let items = b.as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["result"]["status"], "SUCCESS");
    assert_eq!(items[0]["schema"]["name"], "A");
    assert_eq!(items[1]["result"]["status"], "FAILED");
    assert!(items[1]["result"]["errors"]["error"][0]["message"]
        .as_str()
        .unwrap()
        .contains("population"));
    assert_eq!(items[2]["result"]["status"], "SUCCESS");
    assert_eq!(items[2]["@class"], "Country");
    let id = items[2]["thingId"].as_str().unwrap();
    assert_eq!(
        api.ok("GET", &format!("/things/{id}"), None)["schema"]["name"],
        "C"
    );
    assert_eq!(api.ok("GET", "/things", None)["totalResults"], 2);
}

#[test]
fn unknown_routes_and_bad_parameters_answer_the_error_shape() {
    let api = Api::new(Server::start());
    let (s, b) = api.get("/nothing/here");
    assert_eq!(s, 404, "{b}");
    let (s, b) = api.get("/things?page=0");
    assert_eq!(s, 422, "{b}");
    let (s, b) = api.get("/things?maxResults=many");
    assert_eq!(s, 400, "{b}");
    let (s, b) = api.get("/things/not-a-uuid");
    assert_eq!(s, 404, "{b}");
    let (s, b) = api.send("POST", "/things", Some(json!("just a string")));
    assert_eq!(s, 400, "{b}");
}

fn uuid_string() -> String {
    weft_plugin_api::Id::random().to_string()
}
