//! The key tree over real HTTP: the authorisation matrix generated from the OpenAPI document,
//! and the tree's rules.
use std::net::IpAddr;
use std::time::Duration;

use reqwest::blocking::Client;
use serde_json::{json, Value};
use weft_e2e_tests::{message, Api, Creds, Server};

fn all_rights() -> Value {
    json!({"read": true, "write": true, "delete": true, "execute": true})
}

fn now_ms() -> i64 {
    weft_plugin_api::now_ms()
}

/// The right an operation needs, as it declares it (`x-weft-access`, from the one table in
/// `weft_rest::access`): `None` for any valid key.
fn needed(op: &Value, what: &str) -> Option<&'static str> {
    match op["x-weft-access"].as_str() {
        Some("root") => Some("root"),
        Some("read") => Some("read"),
        Some("write") => Some("write"),
        Some("delete") => Some("delete"),
        Some("execute") => Some("execute"),
        Some("any-key") => None,
        other => panic!("{what}: x-weft-access is {other:?}; every keyed operation declares one"),
    }
}

/// A body that parses for the operation, so a refusal is about the credentials, not the body.
fn sample_body(op: &Value, thing: &str) -> Value {
    let schema = op["requestBody"]["content"]
        .as_object()
        .and_then(|c| c.values().next())
        .map(|c| c["schema"].clone())
        .unwrap_or(Value::Null);
    if schema["type"] == "array" {
        json!([])
    } else if schema["$ref"]
        .as_str()
        .is_some_and(|r| r.ends_with("/SingleRef"))
    {
        json!({"$cref": thing, "locationUrl": "http://localhost/", "type": "Thing"})
    } else {
        json!({})
    }
}

#[test]
fn every_protected_operation_refuses_bad_credentials() {
    let api = Api::new(Server::start());
    let r = Creds::root();
    api.ok_as(&r, "POST", "/schema/things", Some(json!({"class": "City", "properties": [
        {"name": "name", "@dataType": ["string"]}, {"name": "near", "@dataType": ["City"], "cardinality": "many"}]})));
    api.ok_as(
        &r,
        "POST",
        "/schema/actions",
        Some(json!({"class": "Visit", "properties": [{"name": "note", "@dataType": ["string"]}]})),
    );
    // Subtree A owns the objects; B is a sibling subtree with every right.
    let a = api.child(&r, all_rights());
    let a_child = api.child(&a, all_rights());
    let b = api.child(&r, all_rights());
    let thing = api.ok_as(
        &a,
        "POST",
        "/things",
        Some(json!({"thing": {"@context": "", "@class": "City", "schema": {"name": "Rome"}}})),
    );
    let thing = thing["thingId"].as_str().unwrap().to_string();
    let action = api.ok_as(
        &a,
        "POST",
        "/actions",
        Some(json!({"action": {"@context": "", "@class": "Visit", "schema": {"note": "x"}}})),
    );
    let action = action["actionId"].as_str().unwrap().to_string();
    let lacking = |right: &str| {
        let mut rights = all_rights();
        rights[right] = json!(false);
        api.child(&r, rights)
    };
    let lacks: Vec<(&str, Creds)> = ["read", "write", "delete"]
        .iter()
        .map(|r| (*r, lacking(r)))
        .collect();
    let expiring = api.child(
        &r,
        json!({"read": true, "write": true, "delete": true, "keyExpiresUnix": now_ms() + 1500}),
    );
    std::thread::sleep(Duration::from_millis(1600));

    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../openapi/weft-openapi.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut checked = 0;
    for (template, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let Some(security) = op.get("security") else {
                continue;
            };
            // Both schemes are required together.
            assert_eq!(
                security,
                &json!([{"apiKey": [], "apiToken": []}]),
                "{method} {template}"
            );
            let path = template
                .replace("{thingId}", &thing)
                .replace("{actionId}", &action)
                .replace("{keyId}", &a_child.key)
                .replace("{className}", "City")
                .replace("{propertyName}", "near");
            let m = method.to_uppercase();
            let body = sample_body(op, &thing);
            // Operations on an object or key of subtree A (a class is not owned by a key).
            let targeted = ["{thingId}", "{actionId}", "{keyId}"]
                .iter()
                .any(|p| template.contains(p));
            let what = format!("{m} {template}");
            let mut cases: Vec<(String, Vec<(&str, String)>)> = vec![
                ("no headers".into(), vec![]),
                ("only X-API-KEY".into(), vec![("X-API-KEY", r.key.clone())]),
                (
                    "only X-API-TOKEN".into(),
                    vec![("X-API-TOKEN", r.token.clone())],
                ),
                (
                    "a wrong token".into(),
                    vec![
                        ("X-API-KEY", r.key.clone()),
                        ("X-API-TOKEN", weft_plugin_api::Id::random().to_string()),
                    ],
                ),
                (
                    "an expired key".into(),
                    vec![
                        ("X-API-KEY", expiring.key.clone()),
                        ("X-API-TOKEN", expiring.token.clone()),
                    ],
                ),
            ];
            let need = needed(op, &what);
            if targeted || need == Some("root") {
                cases.push((
                    "a key of another subtree".into(),
                    vec![
                        ("X-API-KEY", b.key.clone()),
                        ("X-API-TOKEN", b.token.clone()),
                    ],
                ));
            }
            if let Some((right, k)) = lacks.iter().find(|(r, _)| Some(*r) == need) {
                cases.push((
                    format!("a key lacking the {right} right"),
                    vec![
                        ("X-API-KEY", k.key.clone()),
                        ("X-API-TOKEN", k.token.clone()),
                    ],
                ));
            }
            for (case, headers) in cases {
                let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let (s, resp) = api.raw(&api.http, &m, &path, &h, Some(&body));
                assert!(
                    !(200..300).contains(&s),
                    "{what} with {case} answered {s}: {resp}"
                );
                let msg = message(&resp);
                match case.as_str() {
                    "no headers" | "only X-API-KEY" | "only X-API-TOKEN" => {
                        assert_eq!(s, 401, "{what} with {case}: {resp}");
                        assert_eq!(
                            msg, "Please provide both X-API-KEY and X-API-TOKEN headers.",
                            "{what}"
                        );
                    }
                    "a wrong token" => assert_eq!(s, 401, "{what} with {case}: {resp}"),
                    "an expired key" => {
                        assert_eq!(s, 401, "{what} with {case}: {resp}");
                        assert!(msg.contains("expired"), "{what}: {msg}");
                    }
                    "a key of another subtree" => assert_eq!(s, 403, "{what} with {case}: {resp}"),
                    _ => {
                        assert_eq!(s, 403, "{what} with {case}: {resp}");
                        assert!(msg.contains("right"), "{what}: {msg}");
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(
        checked > 200,
        "only {checked} cases checked: are operations missing their security?"
    );
    // The objects survived every refused request.
    assert_eq!(
        api.ok_as(&a, "GET", &format!("/things/{thing}"), None)["schema"]["name"],
        "Rome"
    );
    assert_eq!(
        api.ok_as(&r, "GET", &format!("/keys/{}", a_child.key), None)["keyId"],
        a_child.key.as_str()
    );
}

#[test]
fn a_generated_root_key_is_printed_once_and_works() {
    let server = Server::start_generating_root();
    let line = |prefix: &str| {
        server
            .early_stdout
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix} line in {:?}", server.early_stdout))
            .to_string()
    };
    let creds = Creds {
        key: line("ROOTKEY="),
        token: line("ROOTTOKEN="),
    };
    let api = Api::new(server);
    let me = api.ok_as(&creds, "GET", "/keys/me", None);
    assert_eq!(me["isRoot"], true);
    assert_eq!(me["keyExpiresUnix"], 0);
    assert!(
        me.get("token").is_none(),
        "a key is never shown with its token: {me}"
    );
}

#[test]
fn the_tree_rules_hold() {
    let api = Api::new(Server::start());
    let r = Creds::root();
    // Making a child needs the write right.
    let reader = api.child(&r, json!({"read": true}));
    let (s, b) = api.call(&reader, "POST", "/keys", Some(json!({"read": true})));
    assert_eq!(s, 403, "{b}");
    assert!(message(&b).contains("write right"), "{b}");
    // A child cannot exceed its parent's rights.
    let writer = api.child(&r, json!({"read": true, "write": true}));
    let (s, b) = api.call(
        &writer,
        "POST",
        "/keys",
        Some(json!({"read": true, "delete": true})),
    );
    assert_eq!(s, 422, "{b}");
    assert!(message(&b).contains("delete right"), "{b}");
    // A child cannot outlive its parent, nor expire in the past.
    let t = now_ms() + 60_000;
    let mortal = api.child(
        &r,
        json!({"read": true, "write": true, "keyExpiresUnix": t}),
    );
    for exp in [json!(0), json!(t + 1)] {
        let (s, b) = api.call(
            &mortal,
            "POST",
            "/keys",
            Some(json!({"read": true, "keyExpiresUnix": exp})),
        );
        assert_eq!(s, 422, "{exp}: {b}");
        assert!(message(&b).contains("outlive"), "{b}");
    }
    let (s, b) = api.call(
        &r,
        "POST",
        "/keys",
        Some(json!({"read": true, "keyExpiresUnix": 1000})),
    );
    assert_eq!(s, 422, "{b}");
    assert!(message(&b).contains("past"), "{b}");
    api.child(&mortal, json!({"read": true, "keyExpiresUnix": t}));

    // A child cannot read its parent (key or objects); a parent reads its child's.
    api.ok_as(
        &r,
        "POST",
        "/schema/things",
        Some(json!({"class": "City", "properties": [{"name": "name", "@dataType": ["string"]}]})),
    );
    let parent = api.child(&r, all_rights());
    let child = api.child(&parent, all_rights());
    let grandchild = api.child(&child, all_rights());
    let pt = api.ok_as(
        &parent,
        "POST",
        "/things",
        Some(json!({"thing": {"@context": "", "@class": "City", "schema": {"name": "P"}}})),
    );
    let ct = api.ok_as(
        &child,
        "POST",
        "/things",
        Some(json!({"thing": {"@context": "", "@class": "City", "schema": {"name": "C"}}})),
    );
    let (s, _) = api.call(&child, "GET", &format!("/keys/{}", parent.key), None);
    assert_eq!(s, 403);
    let (s, _) = api.call(
        &child,
        "GET",
        &format!("/things/{}", pt["thingId"].as_str().unwrap()),
        None,
    );
    assert_eq!(s, 403);
    api.ok_as(
        &parent,
        "GET",
        &format!("/things/{}", ct["thingId"].as_str().unwrap()),
        None,
    );
    // Lists show only the caller's subtree.
    assert_eq!(
        api.ok_as(&parent, "GET", "/things", None)["totalResults"],
        2
    );
    assert_eq!(api.ok_as(&child, "GET", "/things", None)["totalResults"], 1);
    assert_eq!(api.ok_as(&r, "GET", "/things", None)["totalResults"], 2);
    // A missing object is 404 even for another subtree.
    let (s, _) = api.call(
        &child,
        "GET",
        &format!("/things/{}", weft_plugin_api::Id::random()),
        None,
    );
    assert_eq!(s, 404);
    // Children, one level.
    let kids = api.ok_as(&parent, "GET", "/keys/me/children", None);
    assert_eq!(kids["children"].as_array().unwrap().len(), 1);
    assert_eq!(kids["children"][0]["$cref"], child.key.as_str());
    let kids = api.ok_as(
        &parent,
        "GET",
        &format!("/keys/{}/children", child.key),
        None,
    );
    assert_eq!(kids["children"][0]["$cref"], grandchild.key.as_str());

    // Renewing a token invalidates the old one at once.
    api.ok_as(&grandchild, "GET", "/keys/me", None);
    let renewed = api.ok_as(
        &parent,
        "PUT",
        &format!("/keys/{}/renew-token", grandchild.key),
        None,
    );
    let (s, _) = api.call(&grandchild, "GET", "/keys/me", None);
    assert_eq!(s, 401);
    let fresh = Creds {
        key: grandchild.key.clone(),
        token: renewed["token"].as_str().unwrap().into(),
    };
    api.ok_as(&fresh, "GET", "/keys/me", None);
    // A key cannot renew or delete itself (the root may renew its own).
    let (s, _) = api.call(
        &child,
        "PUT",
        &format!("/keys/{}/renew-token", child.key),
        None,
    );
    assert_eq!(s, 403);
    let (s, _) = api.call(&child, "DELETE", &format!("/keys/{}", child.key), None);
    assert_eq!(s, 403);

    // Deleting a key deletes its whole subtree.
    let (s, _) = api.call(&parent, "DELETE", &format!("/keys/{}", child.key), None);
    assert_eq!(s, 204);
    for k in [&child, &fresh] {
        let (s, b) = api.call(k, "GET", "/keys/me", None);
        assert_eq!(s, 401, "{b}");
    }
    let (s, _) = api.call(&r, "GET", &format!("/keys/{}", grandchild.key), None);
    assert_eq!(s, 404);
}

#[test]
fn ip_origin_is_enforced_against_the_peer_address() {
    let api = Api::new(Server::start());
    let local = api.child(
        &Creds::root(),
        json!({"read": true, "ipOrigin": ["127.0.0.2/32"]}),
    );
    let (s, b) = api.call(&local, "GET", "/keys/me", None);
    assert_eq!(s, 403, "{b}");
    assert!(message(&b).contains("127.0.0.1"), "{b}");
    let from_2 = Client::builder()
        .local_address(Some("127.0.0.2".parse::<IpAddr>().unwrap()))
        .build()
        .unwrap();
    let (s, b) = api.raw(
        &from_2,
        "GET",
        "/keys/me",
        &[("X-API-KEY", &local.key), ("X-API-TOKEN", &local.token)],
        None,
    );
    assert_eq!(s, 200, "{b}");
    // Not a CIDR range: refused when the key is made.
    let (s, b) = api.call(
        &Creds::root(),
        "POST",
        "/keys",
        Some(json!({"read": true, "ipOrigin": ["localhost"]})),
    );
    assert_eq!(s, 422, "{b}");
}

/// A reference to an object the caller may not see is refused exactly like a reference to a
/// missing object: same status, same message (but for the id), and never the target's class —
/// on create, replace, reference addition and `/validate` alike.
#[test]
fn a_reference_to_an_invisible_object_reads_as_a_missing_one() {
    let api = Api::new(Server::start());
    let r = Creds::root();
    api.ok_as(&r, "POST", "/schema/things", Some(json!({"class": "City", "properties": [
        {"name": "name", "@dataType": ["string"]}, {"name": "near", "@dataType": ["City"], "cardinality": "many"}]})));
    api.ok_as(
        &r,
        "POST",
        "/schema/things",
        Some(json!({"class": "Secret", "properties": [
        {"name": "name", "@dataType": ["string"]}]})),
    );
    let a = api.child(&r, all_rights());
    let b = api.child(&r, all_rights());
    let create = |c: &Creds, class: &str| {
        let made = api.ok_as(
            c,
            "POST",
            "/things",
            Some(json!({"thing": {"@context": "", "@class": class, "schema": {"name": "x"}}})),
        );
        made["thingId"].as_str().unwrap().to_string()
    };
    // A's objects: a City (right class) and a Secret (wrong class for `near`).
    let a_city = create(&a, "City");
    let a_secret = create(&a, "Secret");
    let b_city = create(&b, "City");
    let missing = weft_plugin_api::Id::random().to_string();
    let reference =
        |id: &str| json!({"$cref": id, "locationUrl": "http://localhost/", "type": "Thing"});
    let with_ref = |id: &str| json!({"@context": "", "@class": "City", "schema": {"name": "y", "near": [reference(id)]}});
    // What B is told about each target, with the id taken out.
    let attempts = |id: &str| -> Vec<(u16, String)> {
        let calls = [
            (
                "POST",
                "/things".to_string(),
                json!({"thing": with_ref(id)}),
            ),
            ("POST", "/things/validate".to_string(), with_ref(id)),
            ("PUT", format!("/things/{b_city}"), with_ref(id)),
            (
                "POST",
                format!("/things/{b_city}/properties/near"),
                reference(id),
            ),
        ];
        calls
            .into_iter()
            .map(|(m, p, body)| {
                let (s, body) = api.call(&b, m, &p, Some(body));
                (s, message(&body).replace(id, "<id>"))
            })
            .collect()
    };
    let for_missing = attempts(&missing);
    for (s, m) in &for_missing {
        assert_eq!(*s, 422, "{m}");
        assert!(m.contains("does not exist"), "{m}");
    }
    for (what, id) in [("A's City", &a_city), ("A's Secret", &a_secret)] {
        let got = attempts(id);
        assert_eq!(
            got, for_missing,
            "a reference by B to {what} is told apart from a missing one"
        );
        for (_, m) in &got {
            assert!(!m.contains("Secret"), "the class of {what} leaked: {m}");
        }
    }
    // A itself may refer to its own City, and is told the class of its own Secret.
    let (s, body) = api.call(
        &a,
        "POST",
        "/things",
        Some(json!({"thing": with_ref(&a_city)})),
    );
    assert_eq!(s, 200, "{body}");
    let (s, body) = api.call(
        &a,
        "POST",
        "/things",
        Some(json!({"thing": with_ref(&a_secret)})),
    );
    assert_eq!(s, 422, "{body}");
    assert!(message(&body).contains("Secret"), "{body}");
}

/// Issue "Hardening", key tree: a key is held to its ancestors' `ipOrigin` (and shown it), a
/// child's ranges lie within its parent's, renewing needs write and deleting delete, and a
/// deleted key's objects go to its parent.
#[test]
fn restrictions_are_inherited_and_a_deleted_keys_objects_go_to_its_parent() {
    let api = Api::new(Server::start());
    let r = Creds::root();
    let from_2 = Client::builder()
        .local_address(Some("127.0.0.2".parse::<IpAddr>().unwrap()))
        .build()
        .unwrap();
    let as_from_2 = |c: &Creds, path: &str| {
        api.raw(
            &from_2,
            "GET",
            path,
            &[("X-API-KEY", &c.key), ("X-API-TOKEN", &c.token)],
            None,
        )
    };
    // A parent limited to 127.0.0.1; its child asks for no range of its own.
    let parent = api.child(
        &r,
        json!({"read": true, "write": true, "delete": true, "ipOrigin": ["127.0.0.1/32"]}),
    );
    let child = api.child(&parent, json!({"read": true, "write": true}));
    let me = api.ok_as(&child, "GET", "/keys/me", None);
    assert_eq!(me["ipOrigin"], json!(["127.0.0.1/32"]), "{me}");
    let (s, b) = as_from_2(&child, "/keys/me");
    assert_eq!(
        s, 403,
        "the child works from outside its parent's range: {b}"
    );
    assert!(message(&b).contains("127.0.0.1/32"), "{b}");
    // A range outside the parent's is refused; one inside it is fine.
    let (s, b) = api.call(
        &parent,
        "POST",
        "/keys",
        Some(json!({"read": true, "ipOrigin": ["127.0.0.0/8"]})),
    );
    assert_eq!(s, 422, "{b}");
    assert!(message(&b).contains("within"), "{b}");
    api.child(&parent, json!({"read": true, "ipOrigin": ["127.0.0.1/32"]}));

    // Renewing needs write, deleting needs delete (on top of the tree rules).
    let no_write = api.child(&r, json!({"read": true, "delete": true}));
    let no_delete = api.child(&r, json!({"read": true, "write": true}));
    let leaf = api.child(&no_delete, json!({"read": true}));
    let (s, b) = api.call(&no_delete, "DELETE", &format!("/keys/{}", leaf.key), None);
    assert_eq!(s, 403, "deleting without the delete right: {b}");
    assert!(message(&b).contains("delete right"), "{b}");
    let (s, b) = api.call(
        &no_write,
        "PUT",
        &format!("/keys/{}/renew-token", no_write.key),
        None,
    );
    assert_eq!(s, 403, "{b}");

    // Deleting a key moves its subtree's objects to its parent.
    api.ok_as(
        &r,
        "POST",
        "/schema/things",
        Some(json!({"class": "City", "properties": [{"name": "name", "@dataType": ["string"]}]})),
    );
    let a = api.child(&r, all_rights());
    let a1 = api.child(&a, all_rights());
    let a11 = api.child(&a1, all_rights());
    let mut ids = vec![];
    for (who, name) in [(&a1, "one"), (&a11, "two")] {
        let made = api.ok_as(
            who,
            "POST",
            "/things",
            Some(json!({"thing": {"@context": "", "@class": "City", "schema": {"name": name}}})),
        );
        ids.push(made["thingId"].as_str().unwrap().to_string());
    }
    let (s, b) = api.call(&a, "DELETE", &format!("/keys/{}", a1.key), None);
    assert_eq!(s, 204, "{b}");
    for id in &ids {
        let got = api.ok_as(&a, "GET", &format!("/things/{id}"), None);
        assert_eq!(got["key"]["$cref"], a.key.as_str(), "{got}");
    }
    let listed = api.ok_as(&a, "GET", "/things", None);
    assert_eq!(listed["totalResults"], 2, "{listed}");
    // And a root deleting A: A's objects now belong to the root.
    let (s, b) = api.call(&r, "DELETE", &format!("/keys/{}", a.key), None);
    assert_eq!(s, 204, "{b}");
    let got = api.ok_as(&r, "GET", &format!("/things/{}", ids[0]), None);
    assert_eq!(got["key"]["$cref"], r.key.as_str(), "{got}");
}

/// Behind a reverse proxy: `X-Forwarded-For` names the client only when the connection comes
/// from a `trusted_proxies` address, and then only its right-most untrusted hop counts.
#[test]
fn x_forwarded_for_is_honoured_only_from_trusted_proxies() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("weft.json");
    std::fs::write(
        &config,
        json!({"environments": [{"name": "default", "trusted_proxies": ["127.0.0.1/32"]}]})
            .to_string(),
    )
    .unwrap();
    let api = Api::new(Server::start_with(
        &["--config-file", config.to_str().unwrap()],
        &[],
    ));
    let k = api.child(
        &Creds::root(),
        json!({"read": true, "ipOrigin": ["10.9.8.7/32"]}),
    );
    let from_2 = Client::builder()
        .local_address(Some("127.0.0.2".parse::<IpAddr>().unwrap()))
        .build()
        .unwrap();
    let me = |http: &Client, xff: &str| {
        api.raw(
            http,
            "GET",
            "/keys/me",
            &[
                ("X-API-KEY", &k.key),
                ("X-API-TOKEN", &k.token),
                ("X-Forwarded-For", xff),
            ],
            None,
        )
        .0
    };
    assert_eq!(me(&api.http, "10.9.8.7"), 200, "from the trusted proxy");
    assert_eq!(me(&api.http, "10.9.8.6"), 403);
    assert_eq!(
        me(&api.http, "10.9.8.7, 192.0.2.1"),
        403,
        "a forged left entry"
    );
    assert_eq!(
        me(&api.http, "192.0.2.1, 10.9.8.7"),
        200,
        "the right-most hop"
    );
    assert_eq!(me(&from_2, "10.9.8.7"), 403, "from an untrusted address");
    // A range that does not parse stops the server with one line naming the key.
    std::fs::write(
        &config,
        json!({"environments": [{"name": "default", "trusted_proxies": ["proxy"]}]}).to_string(),
    )
    .unwrap();
    let out = std::process::Command::new(weft_e2e_tests::weft_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--config-file"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("trusted_proxies[0]"));
}
