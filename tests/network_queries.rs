//! Network queries and network questions end to end: three `weft serve` peers as real processes
//! on 127.0.0.1, with the test contextionary, forming a network in bootstrapped mode (no
//! genesis): `beta` starts the network, `gamma` and then `alpha` announce themselves to it.
//!
//! * `beta` stores `City` objects, `gamma` `Person` objects, `alpha` (the one asked) `Country`
//!   and `Region` objects.
//! * `alpha` has credentials for `beta` in its configuration (`network.peers`) and forwards the
//!   caller's key to peers without any (`network.forward_caller_key`), so `gamma` is asked with
//!   the caller's key.
//!
//! Build first: `cargo build -p weft -p weft-dev-memory -p weft-contextionary` and
//! `scripts/fetch-test-contextionary.sh`.
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use weft_e2e_tests::{
    identity_in, message, peer_env, signed_call, start_peer, test_contextionary, wait_for, Api,
    Creds, Identity, Server, ROOT_KEY, ROOT_TOKEN,
};

/// How often the test peers echo each other. Long enough that a peer frozen for a few seconds
/// is not dropped (three failed echoes in a row drop it) while a test runs.
const PING: &str = "3";
/// Time for the network to form and every schema to be downloaded.
const FORM: Duration = Duration::from_secs(60);

/// The three peers, each with its JSON client.
struct Network {
    alpha: Api,
    beta: Api,
    gamma: Api,
    _dir: tempfile::TempDir,
}

fn class(api: &Api, c: Value) {
    api.ok("POST", "/schema/things", Some(c));
}

fn thing(api: &Api, class: &str, schema: Value) -> String {
    let b = api.ok(
        "POST",
        "/things",
        Some(json!({"thing": {"@context": "", "@class": class, "schema": schema}})),
    );
    b["thingId"].as_str().expect("thingId").to_string()
}

/// Runs a GraphQL query on `api` as `c`: (status, body).
fn graphql_as(api: &Api, c: &Creds, query: &str) -> (u16, Value) {
    api.call(c, "POST", "/graphql", Some(json!({ "query": query })))
}

fn graphql(api: &Api, query: &str) -> Value {
    let (s, b) = graphql_as(api, &Creds::root(), query);
    assert_eq!(s, 200, "{b}");
    b
}

fn errors(b: &Value) -> Vec<String> {
    b["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A peer frozen with SIGSTOP; resumed (SIGCONT) when dropped, whatever happens.
struct Frozen(u32);

impl Frozen {
    fn new(s: &Server) -> Frozen {
        let ok = std::process::Command::new("kill")
            .args(["-STOP", &s.pid().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -STOP {}", s.pid());
        Frozen(s.pid())
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-CONT", &self.0.to_string()])
            .status();
    }
}

const GET_BOTH: &str = r#"{ Network(networkTimeout: 10) { Get {
    beta { Things { City { name population } } }
    gamma { Things { Person { name } } } } } }"#;

impl Network {
    fn start() -> Network {
        let dir = tempfile::tempdir().unwrap();
        let c11y = test_contextionary().display().to_string();
        // Every peer shares what its root key sees: the point here is matching by meaning
        // (what a share key limits is tests/peer_attacks.rs's).
        let env = |name: &str| {
            let mut e = peer_env(name, &dir.path().join(name), PING);
            e.push(("WEFT_CONTEXTIONARY".into(), c11y.clone()));
            e.push(("WEFT_SHARE_KEY".into(), ROOT_KEY.into()));
            e
        };
        let mut e = env("beta");
        e.push(("WEFT_FIRST_PEER".into(), "true".into()));
        let beta = Api::new(start_peer(&[], &e));
        let mut e = env("gamma");
        e.push(("WEFT_BOOTSTRAPPED_PEERS".into(), beta.server.base()));
        let gamma = Api::new(start_peer(&[], &e));
        // alpha: credentials for beta, the caller's key for anyone else.
        let config = dir.path().join("alpha.json");
        std::fs::write(
            &config,
            json!({"environments": [{"name": "default", "network": {
                "peers": [{"url": beta.server.base(), "api_key": ROOT_KEY, "api_token": ROOT_TOKEN}],
                "forward_caller_key": true}}]})
            .to_string(),
        )
        .unwrap();
        let mut e = env("alpha");
        e.push(("WEFT_BOOTSTRAPPED_PEERS".into(), beta.server.base()));
        e.push(("WEFT_CONFIG_FILE".into(), config.display().to_string()));
        let alpha = Api::new(start_peer(&[], &e));

        class(
            &beta,
            json!({"class": "City", "properties": [
                {"name": "name", "@dataType": ["string"]},
                {"name": "population", "@dataType": ["int"]}]}),
        );
        for (name, population) in [("Berlin", 3_600_000), ("Paris", 2_100_000)] {
            thing(
                &beta,
                "City",
                json!({"name": name, "population": population}),
            );
        }
        class(
            &gamma,
            json!({"class": "Person", "properties": [{"name": "name", "@dataType": ["string"]}]}),
        );
        thing(&gamma, "Person", json!({"name": "Ada"}));
        class(
            &alpha,
            json!({"class": "Country", "properties": [{"name": "name", "@dataType": ["string"]}]}),
        );
        class(
            &alpha,
            json!({"class": "Region", "properties": [
                {"name": "name", "@dataType": ["string"]},
                {"name": "inCountry", "@dataType": ["Country"]}]}),
        );
        let net = Network {
            alpha,
            beta,
            gamma,
            _dir: dir,
        };
        // Formed: alpha knows both others and their current schemas, so a network Get over
        // both answers without errors.
        let mut last = Value::Null;
        let formed = wait_for(FORM, || {
            last = graphql(&net.alpha, GET_BOTH);
            last["errors"].is_null()
        });
        assert!(
            formed.is_some(),
            "the network did not form within {FORM:?}; alpha knows {:?}, answers {last}",
            net.alpha.server.known_peers()
        );
        eprintln!("network formed after {formed:?}");
        net
    }
}

/// Every scenario over one network (starting three peers is the slow part).
#[test]
fn network_queries_and_questions_over_three_peers() {
    let net = Network::start();
    network_get_returns_each_peers_objects(&net);
    a_frozen_peer_is_named_and_the_others_answer_within_the_timeout(&net);
    network_queries_need_execute_and_keys_flow_as_configured(&net);
    a_network_fetch_for_town_finds_another_peers_cities_with_certainty(&net);
    a_network_explore_finds_the_peers_objects_by_meaning(&net);
    introspection_names_the_matching_classes(&net);
    a_reference_must_point_to_this_server_or_a_known_peer(&net);
    peers_take_questions_and_answers_only_from_known_peers(&net);
}

fn names(list: &Value) -> Vec<String> {
    let mut v: Vec<String> = list
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|o| o["name"].as_str().unwrap_or_default().to_string())
        .collect();
    v.sort();
    v
}

fn network_get_returns_each_peers_objects(net: &Network) {
    let b = graphql(&net.alpha, GET_BOTH);
    let get = &b["data"]["Network"]["Get"];
    assert_eq!(
        names(&get["beta"]["Things"]["City"]),
        ["Berlin", "Paris"],
        "{b}"
    );
    assert_eq!(names(&get["gamma"]["Things"]["Person"]), ["Ada"], "{b}");
    // Arguments travel with the query; aliases and fragments too.
    let b = graphql(
        &net.alpha,
        r#"{ Network { Get { beta { Things {
            big: City(where: {operator: GreaterThan, path: ["population"], valueInt: 3000000}) { ...C }
            one: City(first: 1) { name } } } } } }
          fragment C on Network_beta_City { name population }"#,
    );
    assert!(b["errors"].is_null(), "{b}");
    let things = &b["data"]["Network"]["Get"]["beta"]["Things"];
    assert_eq!(
        things["big"],
        json!([{"name": "Berlin", "population": 3_600_000}])
    );
    assert_eq!(things["one"].as_array().map(Vec::len), Some(1), "{b}");
    // A peer's own errors come back naming it.
    let b = graphql(
        &net.alpha,
        r#"{ Network { Get { beta { Things { City(where: {operator: Equal, path: ["population"], valueString: "x"}) { name } } } } } }"#,
    );
    let e = errors(&b);
    assert!(
        e.len() == 1 && e[0].starts_with("peer beta: ") && e[0].contains("population"),
        "{b}"
    );
}

fn a_frozen_peer_is_named_and_the_others_answer_within_the_timeout(net: &Network) {
    let frozen = Frozen::new(&net.gamma.server);
    let start = Instant::now();
    // A Get of both and a Fetch asking everyone, in one request: all concurrently.
    let b = graphql(
        &net.alpha,
        r#"{ Network(networkTimeout: 2) {
            Get { beta { Things { City { name } } } gamma { Things { Person { name } } } }
            Fetch { Things(where: {class: [{name: "Town", certainty: 0.6}]}) { peer } } } }"#,
    );
    let took = start.elapsed();
    drop(frozen);
    eprintln!("a network Get and Fetch with a frozen peer took {took:?}");
    assert!(took >= Duration::from_secs(2), "{took:?}: {b}");
    assert!(took < Duration::from_millis(3500), "{took:?}: {b}");
    let get = &b["data"]["Network"]["Get"];
    assert_eq!(
        names(&get["beta"]["Things"]["City"]),
        ["Berlin", "Paris"],
        "{b}"
    );
    assert!(get["gamma"].is_null(), "{b}");
    assert_eq!(
        errors(&b),
        ["peer gamma: did not answer within 2 s"; 2],
        "one error for the Get, one for the Fetch: {b}"
    );
    let fetched = b["data"]["Network"]["Fetch"]["Things"].as_array().unwrap();
    assert!(
        fetched.len() == 2 && fetched.iter().all(|f| f["peer"] == "beta"),
        "{b}"
    );
    // Resumed, it answers again.
    let again = wait_for(Duration::from_secs(10), || {
        graphql(&net.alpha, GET_BOTH)["errors"].is_null()
    });
    assert!(again.is_some(), "gamma does not answer after SIGCONT");
}

fn network_queries_need_execute_and_keys_flow_as_configured(net: &Network) {
    let root = Creds::root();
    let reader = net
        .alpha
        .child(&root, json!({"read": true, "execute": false}));
    let (s, b) = graphql_as(&net.alpha, &reader, GET_BOTH);
    assert_eq!(s, 200, "{b}");
    assert!(b["data"]["Network"].is_null(), "{b}");
    assert!(errors(&b)[0].contains("execute right"), "{b}");
    // Outside 1..=60 seconds.
    for t in [0, 61] {
        let b = graphql(
            &net.alpha,
            &format!("{{ Network(networkTimeout: {t}) {{ Get {{ beta {{ Things {{ City {{ name }} }} }} }} }} }}"),
        );
        assert!(errors(&b)[0].contains("out of range"), "{b}");
    }
    // A key of alpha that may execute: beta is asked with the configured key and answers;
    // gamma gets this key forwarded, which gamma does not know.
    let executor = net
        .alpha
        .child(&root, json!({"read": true, "execute": true}));
    let (s, b) = graphql_as(&net.alpha, &executor, GET_BOTH);
    assert_eq!(s, 200, "{b}");
    let get = &b["data"]["Network"]["Get"];
    assert_eq!(
        names(&get["beta"]["Things"]["City"]),
        ["Berlin", "Paris"],
        "{b}"
    );
    assert!(get["gamma"].is_null(), "{b}");
    let e = errors(&b);
    assert!(
        e.len() == 1 && e[0].starts_with("peer gamma: answered 401"),
        "{b}"
    );
    // Without a read right the HTTP operation itself is refused.
    let executor_only = net
        .alpha
        .child(&root, json!({"read": false, "execute": true}));
    let (s, _) = graphql_as(&net.alpha, &executor_only, GET_BOTH);
    assert_eq!(s, 403);
}

const TOWN: &str = r#"{name: "Town", certainty: 0.6}"#;

fn a_network_fetch_for_town_finds_another_peers_cities_with_certainty(net: &Network) {
    let b = graphql(
        &net.alpha,
        &format!(
            "{{ Network(networkTimeout: 10) {{ Fetch {{ Things(where: {{class: [{TOWN}]}}) {{ beacon certainty peer class }} }} }} }}"
        ),
    );
    assert!(b["errors"].is_null(), "{b}");
    let found = b["data"]["Network"]["Fetch"]["Things"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    eprintln!("Fetch Town: {found:?}");
    assert_eq!(found.len(), 2, "{b}");
    let cities: Vec<String> = net.beta.ok("GET", "/things", None)["things"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| format!("weaviate://beta/{}", t["thingId"].as_str().unwrap()))
        .collect();
    for f in &found {
        assert_eq!(f["peer"], "beta");
        assert_eq!(f["class"], "City");
        assert!(
            cities.contains(&f["beacon"].as_str().unwrap().to_string()),
            "{f}"
        );
        let c = f["certainty"].as_f64().unwrap();
        assert!((0.6..=1.0).contains(&c), "{f}");
    }
    // With a condition on a property named differently ("inhabitants" for "population").
    let b = graphql(
        &net.alpha,
        &format!(
            r#"{{ Network {{ Fetch {{ Things(where: {{class: [{TOWN}],
                properties: [{{name: "inhabitants", certainty: 0.5, operator: GreaterThan, valueInt: 3000000}}]}}) {{ beacon certainty }} }} }} }}"#
        ),
    );
    assert!(b["errors"].is_null(), "{b}");
    let found = b["data"]["Network"]["Fetch"]["Things"].as_array().unwrap();
    let berlin = net.beta.ok("GET", "/things", None)["things"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["schema"]["name"] == "Berlin")
        .map(|t| format!("weaviate://beta/{}", t["thingId"].as_str().unwrap()))
        .unwrap();
    assert_eq!(found.len(), 1, "{b}");
    assert_eq!(found[0]["beacon"], berlin.as_str());
    // Persons are not towns: nothing of gamma's.
    let b = graphql(
        &net.alpha,
        r#"{ Network { Fetch { Things(where: {class: [{name: "Person", certainty: 0.9}]}) { beacon peer } } } }"#,
    );
    let found = b["data"]["Network"]["Fetch"]["Things"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{b}");
    assert_eq!(found[0]["peer"], "gamma");
}

fn a_network_explore_finds_the_peers_objects_by_meaning(net: &Network) {
    let b = graphql(
        &net.alpha,
        r#"{ Network(networkTimeout: 10) { Explore(concepts: ["town"], limit: 10) { beacon certainty peer class } } }"#,
    );
    assert!(b["errors"].is_null(), "{b}");
    let found = b["data"]["Network"]["Explore"].as_array().unwrap();
    eprintln!("Explore town: {found:?}");
    // beta's two cities and gamma's person (alpha has no objects), cities first.
    assert_eq!(found.len(), 3, "{b}");
    let peers: Vec<&str> = found.iter().map(|f| f["peer"].as_str().unwrap()).collect();
    assert_eq!(peers, ["beta", "beta", "gamma"], "{b}");
    let cities: Vec<String> = net.beta.ok("GET", "/things", None)["things"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| format!("weaviate://beta/{}", t["thingId"].as_str().unwrap()))
        .collect();
    for f in &found[..2] {
        assert_eq!(f["class"], "City", "{f}");
        assert!(
            cities.contains(&f["beacon"].as_str().unwrap().to_string()),
            "{f}"
        );
    }
    let c: Vec<f64> = found
        .iter()
        .map(|f| f["certainty"].as_f64().unwrap())
        .collect();
    assert!(
        c.windows(2).all(|w| w[0] >= w[1]),
        "most certain first: {c:?}"
    );
    // A certainty between the cities' and the person's leaves the person out.
    let b = graphql(
        &net.alpha,
        &format!(
            r#"{{ Network(networkTimeout: 10) {{ Explore(concepts: ["town"], certainty: {}) {{ peer }} }} }}"#,
            (c[1] + c[2]) / 2.0
        ),
    );
    assert_eq!(
        b["data"]["Network"]["Explore"],
        json!([{"peer": "beta"}, {"peer": "beta"}]),
        "{b}"
    );
    // Over the asker's own bound: refused before anything is asked.
    let b = graphql(
        &net.alpha,
        r#"{ Network { Explore(concepts: ["town"], limit: 5000) { beacon } } }"#,
    );
    assert!(
        errors(&b)
            .iter()
            .any(|e| e.contains("limits.max_explore_k")),
        "{b}"
    );
}

fn introspection_names_the_matching_classes(net: &Network) {
    let b = graphql(
        &net.alpha,
        &format!(
            r#"{{ Network {{ Introspect {{ Things(where: {{class: [{TOWN}], properties: [{{name: "inhabitants", certainty: 0.5}}]}}) {{
                peer class certainty properties {{ property certainty }} }} }} }} }}"#
        ),
    );
    assert!(b["errors"].is_null(), "{b}");
    let found = b["data"]["Network"]["Introspect"]["Things"]
        .as_array()
        .unwrap();
    eprintln!("Introspect Town: {found:?}");
    assert_eq!(found.len(), 1, "{b}");
    assert_eq!(found[0]["peer"], "beta");
    assert_eq!(found[0]["class"], "City");
    assert_eq!(found[0]["properties"][0]["property"], "population");
    assert!(found[0]["certainty"].as_f64().unwrap() >= 0.6);
}

fn a_reference_must_point_to_this_server_or_a_known_peer(net: &Network) {
    let alpha = &net.alpha;
    let country = thing(alpha, "Country", json!({"name": "France"}));
    let port = alpha.server.base().rsplit(':').next().unwrap().to_string();
    let region = |url: &str, id: &str| {
        json!({"thing": {"@context": "", "@class": "Region", "schema": {"name": "Alsace",
            "inCountry": {"$cref": id, "locationUrl": url, "type": "Thing"}}}})
    };
    // This server in other spellings.
    for url in [
        format!("http://LOCALHOST:{port}"),
        format!("http://127.0.0.1:{port}/"),
        "http://localhost/".to_string(),
    ] {
        let (s, b) = alpha.post("/things", region(&url, &country));
        assert!((200..300).contains(&s), "{url}: {s} {b}");
    }
    // A known peer.
    let remote = "6f0e6c5e-1c38-4b8e-9d4c-2f4a7c1d0b11";
    let (s, b) = alpha.post(
        "/things",
        region(&format!("{}/", net.beta.server.base()), remote),
    );
    assert!((200..300).contains(&s), "{s} {b}");
    // Anything else.
    for url in ["http://127.0.0.1:1/", "http://169.254.169.254/latest"] {
        let (s, b) = alpha.post("/things", region(url, remote));
        assert_eq!(s, 422, "{url}: {b}");
        let m = message(&b);
        assert!(
            m.contains(url) && m.contains("http://localhost/") && m.contains("known peer"),
            "{m}"
        );
    }
}

/// Questions and answers travel only between peers, each signed with the sender's bound key:
/// an unsigned question is 401; one signed by a key no peer is bound to, or under a known
/// peer's name with another key, or by a known peer asking for its answer elsewhere, is 403;
/// the known peer itself, signing with its key, is answered (202). Answers likewise.
fn peers_take_questions_and_answers_only_from_known_peers(net: &Network) {
    let c = weft_e2e_tests::p2p_client();
    let q = json!({"kind": "thing", "classes": [{"name": "Town", "certainty": 0.6}]});
    let questions = net.beta.server.at("/peers/questions");
    let gamma_key = identity_in(&net._dir.path().join("gamma"));
    let stranger = Identity::generate();
    let from_gamma =
        json!({"answerTo": net.gamma.server.base(), "peerName": "gamma", "question": q});
    // Unsigned, even naming a known peer and its address.
    let r = signed_call(&c, None, "POST", &questions, Some(&from_gamma));
    assert_eq!(r.status, 401, "{:?}", r.body);
    // Signed by a key nobody is bound to, as itself or under gamma's name.
    let r = signed_call(
        &c,
        Some((&stranger, "stranger")),
        "POST",
        &questions,
        Some(&json!({"answerTo": "http://127.0.0.1:1", "peerName": "stranger", "question": q})),
    );
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert!(
        r.message().contains("not a peer this server knows"),
        "{:?}",
        r.body
    );
    let r = signed_call(
        &c,
        Some((&stranger, "gamma")),
        "POST",
        &questions,
        Some(&from_gamma),
    );
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert!(
        r.message().contains("not a peer this server knows"),
        "{:?}",
        r.body
    );
    // gamma itself, asking for the answer at another address.
    let r = signed_call(
        &c,
        Some((&gamma_key, "gamma")),
        "POST",
        &questions,
        Some(&json!({"answerTo": "http://127.0.0.1:1", "peerName": "gamma", "question": q})),
    );
    assert_eq!(r.status, 403, "{:?}", r.body);
    // gamma, with its key and its address: accepted, and the acceptance is signed by beta.
    let r = signed_call(
        &c,
        Some((&gamma_key, "gamma")),
        "POST",
        &questions,
        Some(&from_gamma),
    );
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert!(r.body["answerId"].as_str().is_some(), "{:?}", r.body);
    let beta_key = identity_in(&net._dir.path().join("beta"));
    assert_eq!(r.signer_key(), Some(beta_key.public()));

    // Answers: only signed by a known peer (401 unsigned, 403 a stranger), and only for an id
    // that peer was asked (404 for one nobody waits for).
    let answers = net.alpha.server.at(&format!(
        "/peers/answers/{}",
        "0d8f0a4e-8a53-4c5b-9d10-6a3b6b0a1f00"
    ));
    let answer = json!({"peerName": "beta", "answer": {"beacons": []}});
    let r = signed_call(&c, None, "POST", &answers, Some(&answer));
    assert_eq!(r.status, 401, "{:?}", r.body);
    let r = signed_call(
        &c,
        Some((&stranger, "beta")),
        "POST",
        &answers,
        Some(&answer),
    );
    assert_eq!(r.status, 403, "{:?}", r.body);
    let r = signed_call(
        &c,
        Some((&beta_key, "beta")),
        "POST",
        &answers,
        Some(&answer),
    );
    assert_eq!(r.status, 404, "{:?}", r.body);
}
