//! Attacks on a P2P network, end to end: real `weft serve` peers (bootstrapped mode, on
//! 127.0.0.1) and attackers played by the test — [`FakePeer`]s, in-process servers that speak
//! the peer protocol with keys of their own, and signed calls the test makes itself. Each test
//! says what the attacker does and what must happen; each fails on a network that trusts
//! whoever calls itself a peer (README "Running a network across organisations").
//!
//! Build first: `cargo build -p weft -p weft-dev-memory -p weft-embedded -p weft-contextionary`
//! and `scripts/fetch-test-contextionary.sh`.
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use weft_e2e_tests::{
    get_json, identity_in, p2p_client, peer_env, signed_call, start_peer, test_contextionary,
    wait_for, Api, Creds, FakeOptions, FakePeer, PlainServer, PublicKey, Reply, Server,
};
use weft_peer_protocol::client::now_s;
use weft_peer_protocol::signature;

/// How often the test peers echo each other (a peer is dropped after three failed echoes).
const PING: &str = "0.5";
/// Time for a network to form, a schema to be downloaded, a peer to be taken.
const FORM: Duration = Duration::from_secs(30);

/// Writes a config file `<dir>/<name>.json` holding one environment `env` (its name added).
fn config_file(dir: &Path, name: &str, mut env: Value) -> String {
    env["name"] = json!("default");
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, json!({ "environments": [env] }).to_string()).unwrap();
    path.display().to_string()
}

/// Starts the peer `name` (data directory `<dir>/<name>`): the first peer of its network when
/// `bootstrap` is `None`, else announcing itself to `bootstrap`; `extra` environment variables
/// and `args` added.
fn peer(
    dir: &Path,
    name: &str,
    bootstrap: Option<&Server>,
    extra: &[(&str, &str)],
    args: &[&str],
) -> Api {
    peer_in(&dir.join(name), name, bootstrap, extra, args)
}

/// [`peer`] with the data directory `data_dir`.
fn peer_in(
    data_dir: &Path,
    name: &str,
    bootstrap: Option<&Server>,
    extra: &[(&str, &str)],
    args: &[&str],
) -> Api {
    let mut env = peer_env(name, data_dir, PING);
    match bootstrap {
        None => env.push(("WEFT_FIRST_PEER".into(), "true".into())),
        Some(b) => env.push(("WEFT_BOOTSTRAPPED_PEERS".into(), b.base())),
    }
    for (k, v) in extra {
        env.push((k.to_string(), v.to_string()));
    }
    Api::new(start_peer(args, &env))
}

/// The public key a peer keeps in its data directory.
fn key_of(dir: &Path) -> PublicKey {
    identity_in(dir).public()
}

/// Runs `query` on `api` as the root key: the GraphQL body.
fn graphql(api: &Api, query: &str) -> Value {
    let (s, b) = api.post("/graphql", json!({ "query": query }));
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

fn names_of(list: &Value) -> Vec<String> {
    let mut v: Vec<String> = list
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|o| o["name"].as_str().unwrap_or_default().to_string())
        .collect();
    v.sort();
    v
}

fn sorted(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// Waits until `server`'s entry for peer `name` satisfies `check`; the entry, or a panic
/// naming what it lists.
fn wait_entry(server: &Server, name: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let mut last = None;
    let ok = wait_for(FORM, || {
        last = server.peer_entry(name);
        last.as_ref().is_some_and(&check)
    });
    assert!(
        ok.is_some(),
        "{}: peer {name} is not {what} within {FORM:?}: {:?}",
        server.base(),
        server.peer_entries()
    );
    last.unwrap()
}

fn class(api: &Api, c: Value) {
    api.ok("POST", "/schema/things", Some(c));
}

fn thing_as(api: &Api, who: &Creds, class: &str, schema: Value) -> String {
    let b = api.ok_as(
        who,
        "POST",
        "/things",
        Some(json!({"thing": {"@context": "", "@class": class, "schema": schema}})),
    );
    b["thingId"].as_str().expect("thingId").to_string()
}

const GET_BETA: &str =
    r#"{ Network(networkTimeout: 10) { Get { beta { Things { City { name } } } } } }"#;

/// alpha (the first peer, forwarding the caller's key to peers: `network.forward_caller_key`)
/// and beta (announced to alpha, storing the `City` Berlin); formed when alpha's Network Get
/// of beta answers Berlin.
fn alpha_and_beta(dir: &Path) -> (Api, Api) {
    let config = config_file(
        dir,
        "alpha",
        json!({"network": {"forward_caller_key": true}}),
    );
    let alpha = peer(dir, "alpha", None, &[("WEFT_CONFIG_FILE", &config)], &[]);
    let beta = peer(dir, "beta", Some(&alpha.server), &[], &[]);
    class(
        &beta,
        json!({"class": "City", "properties": [{"name": "name", "@dataType": ["string"]}]}),
    );
    thing_as(&beta, &Creds::root(), "City", json!({"name": "Berlin"}));
    let mut last = Value::Null;
    let formed = wait_for(FORM, || {
        last = graphql(&alpha, GET_BETA);
        last["errors"].is_null()
    });
    assert!(
        formed.is_some(),
        "alpha cannot ask beta within {FORM:?}: {last}; alpha knows {:?}",
        alpha.server.peer_entries()
    );
    (alpha, beta)
}

// ---------------------------------------------------------------------------------------------
// Names.

/// Name takeover and passing-on in one network (alpha, beta).
#[test]
fn nobody_takes_over_a_peer_name_or_vouches_for_a_newcomer_without_being_a_peer() {
    let dir = tempfile::tempdir().unwrap();
    let (alpha, beta) = alpha_and_beta(dir.path());
    let beta_key = key_of(&dir.path().join("beta"));
    a_server_announced_under_a_known_peers_name_is_refused(&alpha, &beta, &beta_key);
    a_stranger_cannot_pass_on_an_announcement(&alpha, &beta);
}

/// The attacker runs its own server (a FakePeer named "beta", with its own key) and announces
/// it to alpha under the name of the known peer beta, at its own address: signed with its own
/// key (409: the name is bound to beta's key), unsigned (401), or naming beta's key while
/// signing with its own (422). Alpha goes on listing beta at beta's address with beta's key,
/// and a Network query for beta asked on alpha with alpha's root key — which alpha forwards to
/// peers (`forward_caller_key`) — is answered by the real beta: the attacker's `/graphql` never
/// sees a request, so the root key never reaches it.
fn a_server_announced_under_a_known_peers_name_is_refused(
    alpha: &Api,
    beta: &Api,
    beta_key: &PublicKey,
) {
    let mallory = FakePeer::start("beta");
    mallory.set_graphql_answer(
        json!({"data": {"Local": {"Get": {"Things": {"City": [{"name": "Atlantis"}]}}}}}),
    );
    let announce = alpha.server.at("/peers");
    let r = mallory.announce_to(&alpha.server);
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert!(
        r.message().contains(&beta_key.to_string())
            && r.message().contains(&mallory.public().to_string()),
        "the refusal names both keys: {:?}",
        r.body
    );
    let r = mallory.call_as(None, "POST", &announce, Some(&mallory.announcement()));
    assert_eq!(r.status, 401, "{:?}", r.body);
    let mut claiming = mallory.announcement();
    claiming["identity"] = json!(beta_key.to_string());
    let r = mallory.call("POST", &announce, Some(&claiming));
    assert_eq!(r.status, 422, "{:?}", r.body);
    // And at beta itself, whose name it is: refused the same way (beta's own name).
    let r = mallory.announce_to(&beta.server);
    assert_eq!(r.status, 409, "{:?}", r.body);

    let entry = alpha.server.peer_entry("beta").expect("alpha lists beta");
    assert_eq!(entry["uri"], beta.server.base().as_str(), "{entry}");
    assert_eq!(entry["identity"], beta_key.to_string().as_str(), "{entry}");
    let b = graphql(alpha, GET_BETA);
    assert!(b["errors"].is_null(), "{b}");
    assert_eq!(
        names_of(&b["data"]["Network"]["Get"]["beta"]["Things"]["City"]),
        ["Berlin"],
        "{b}"
    );
    assert!(
        mallory.graphql_requests().is_empty(),
        "the attacker was asked (and given a key): {:?}",
        mallory.graphql_requests()
    );
    assert!(
        alpha
            .server
            .peer_entries()
            .iter()
            .chain(beta.server.peer_entries().iter())
            .all(|p| p["uri"] != mallory.base.as_str()),
        "a peer lists the attacker's address: alpha {:?}, beta {:?}",
        alpha.server.peer_entries(),
        beta.server.peer_entries()
    );
}

/// A stranger to alpha (a FakePeer "mallory" that never joined) passes on an announcement of
/// a newcomer "gamma" — a server that really answers as gamma, with gamma's key, as a known
/// peer passing gamma on would — signed with its own key, then under beta's name with its own
/// key: 403 both times, and nobody lists gamma. When gamma announces itself, it is taken, and
/// alpha passes it on to beta (alpha is a peer beta knows).
fn a_stranger_cannot_pass_on_an_announcement(alpha: &Api, beta: &Api) {
    let mallory = FakePeer::start("mallory");
    let gamma = FakePeer::start("gamma");
    let announce = alpha.server.at("/peers");
    let passed_on = gamma.announcement();
    let r = mallory.call("POST", &announce, Some(&passed_on));
    assert_eq!(r.status, 403, "{:?}", r.body);
    let r = mallory.call_as(
        Some((&mallory.identity, "beta")),
        "POST",
        &announce,
        Some(&passed_on),
    );
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert_eq!(alpha.server.known_peers(), ["beta"]);
    assert_eq!(beta.server.known_peers(), ["alpha"]);

    let r = gamma.announce_to(&alpha.server);
    assert_eq!(r.status, 200, "{:?}", r.body);
    wait_entry(&beta.server, "gamma", "passed on by alpha", |p| {
        p["uri"] == gamma.base.as_str() && p["identity"] == gamma.public().to_string().as_str()
    });
    assert_eq!(alpha.server.known_peers(), sorted(&["beta", "gamma"]));
}

// ---------------------------------------------------------------------------------------------
// What the network may see.

/// A Fetch of `City` objects whose `population` is greater than `than`.
fn greater_than(than: i64) -> Value {
    json!({"kind": "thing", "classes": [{"name": "City", "certainty": 0.9}],
        "properties": [{"name": "population", "certainty": 0.9, "operator": "GreaterThan",
            "value": than}]})
}

fn beacons(answer: &Value) -> Vec<String> {
    answer["answer"]["beacons"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| b["beacon"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The victim stores two cities: Lyon owned by the key K1, which it shares with the network
/// (`network.share_key`), and Marseille owned by K2, which it does not. The attacker joins (a
/// FakePeer "eve", a peer like any other) and asks 32 Fetch questions `population GreaterThan
/// v`, binary-searching the largest population it can find: it learns Lyon's exactly (what is
/// shared can be read this way, as the README says) and never gets a beacon of Marseille, so
/// it learns nothing of it. Before the share key is set, a Fetch answers the error "shares no
/// objects" (Introspect still answers).
#[test]
fn a_fetch_finds_only_what_the_share_key_may_see() {
    let dir = tempfile::tempdir().unwrap();
    let c11y = test_contextionary().display().to_string();
    let data = dir.path().join("victim");
    let embedded = ["--database", "embedded"];
    let victim = peer_in(
        &data,
        "victim",
        None,
        &[("WEFT_CONTEXTIONARY", &c11y)],
        &embedded,
    );
    let victim_key = key_of(&data);
    class(
        &victim,
        json!({"class": "City", "properties": [
            {"name": "name", "@dataType": ["string"]},
            {"name": "population", "@dataType": ["int"]}]}),
    );
    let root = Creds::root();
    let k1 = victim.child(&root, json!({"read": true, "write": true}));
    let k2 = victim.child(&root, json!({"read": true, "write": true}));
    let lyon = thing_as(
        &victim,
        &k1,
        "City",
        json!({"name": "Lyon", "population": 1_234_567}),
    );
    let marseille = thing_as(
        &victim,
        &k2,
        "City",
        json!({"name": "Marseille", "population": 7_654_321}),
    );

    let eve = FakePeer::start("eve");
    let r = eve.announce_to(&victim.server);
    assert_eq!(r.status, 200, "{:?}", r.body);
    // No share key: a Fetch finds nothing and says why; Introspect answers.
    let a = eve.ask_and_wait(&victim.server, &victim_key, &greater_than(0));
    assert!(
        a["error"]
            .as_str()
            .is_some_and(|e| e.contains("shares no objects")),
        "{a}"
    );
    assert!(beacons(&a).is_empty(), "{a}");
    let a = eve.ask_and_wait(
        &victim.server,
        &victim_key,
        &json!({"kind": "thing", "classes": [{"name": "City", "certainty": 0.9}],
            "introspect": true}),
    );
    assert_eq!(a["answer"]["classes"][0]["class"], "City", "{a}");

    // Restarted sharing K1 (same data directory: same store, same identity and bindings).
    let mut victim = victim;
    victim
        .server
        .terminate(Duration::from_secs(30))
        .expect("the victim stops on SIGTERM");
    let victim = peer_in(
        &data,
        "victim",
        None,
        &[("WEFT_CONTEXTIONARY", &c11y), ("WEFT_SHARE_KEY", &k1.key)],
        &embedded,
    );
    assert_eq!(key_of(&data), victim_key);
    let r = eve.announce_to(&victim.server);
    assert_eq!(r.status, 200, "{:?}", r.body);

    let lyon_beacon = format!("weaviate://victim/{lyon}");
    let marseille_id = marseille.clone();
    let mut seen: Vec<String> = vec![];
    let (mut lo, mut hi) = (0i64, 1i64 << 32);
    let mut asked = 0;
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        let a = eve.ask_and_wait(&victim.server, &victim_key, &greater_than(mid));
        assert!(a["error"].is_null(), "{a}");
        let found = beacons(&a);
        seen.extend(found.iter().cloned());
        if found.is_empty() {
            hi = mid;
        } else {
            lo = mid;
        }
        asked += 1;
    }
    eprintln!("{asked} Fetch questions: the largest population the network may see is {hi}");
    assert_eq!(asked, 32);
    assert!(
        seen.iter().all(|b| !b.contains(&marseille_id)),
        "a beacon of K2's object reached the network: {seen:?}"
    );
    assert!(seen.contains(&lyon_beacon), "{seen:?}");
    assert_eq!(hi, 1_234_567, "what the binary search learnt");
    // Without conditions: only the shared city.
    let a = eve.ask_and_wait(
        &victim.server,
        &victim_key,
        &json!({"kind": "thing", "classes": [{"name": "City", "certainty": 0.9}]}),
    );
    assert_eq!(beacons(&a), [lyon_beacon], "{a}");
}

// ---------------------------------------------------------------------------------------------
// Schemas.

/// The attacker joins (a FakePeer "mallory" announcing itself to alpha, which passes it on to
/// beta) and serves a crafted schema: one class, `City`, both among things and among actions —
/// which no ontology may hold and which, taken, would clash in the GraphQL types built per
/// peer. Both peers leave mallory out of `Network` (`GET /p2p/peers` shows its `schemaError`),
/// and GraphQL keeps working on both: `Local` queries, and alpha's Network Get of beta; mallory
/// is never asked.
#[test]
fn a_peer_serving_a_crafted_schema_is_left_out_and_graphql_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let (alpha, beta) = alpha_and_beta(dir.path());
    class(
        &alpha,
        json!({"class": "Country", "properties": [{"name": "name", "@dataType": ["string"]}]}),
    );
    thing_as(&alpha, &Creds::root(), "Country", json!({"name": "France"}));
    let mallory = FakePeer::start("mallory");
    let city = json!({"class": "City", "properties": [{"name": "name", "@dataType": ["string"]}]});
    mallory.set_schema(json!({"things": {"classes": [city]}, "actions": {"classes": [city]}}));
    let r = mallory.announce_to(&alpha.server);
    assert_eq!(r.status, 200, "{:?}", r.body);
    for p in [&alpha, &beta] {
        let e = wait_entry(&p.server, "mallory", "refused with a schemaError", |e| {
            e["schemaError"].is_string()
        });
        let why = e["schemaError"].as_str().unwrap();
        assert!(
            why.contains("ontology rules") && why.contains("City"),
            "{e}"
        );
        assert_eq!(e["schemaDownloaded"], false, "{e}");
    }
    let b = graphql(&alpha, "{ Local { Get { Things { Country { name } } } } }");
    assert!(b["errors"].is_null(), "{b}");
    assert_eq!(
        names_of(&b["data"]["Local"]["Get"]["Things"]["Country"]),
        ["France"]
    );
    let b = graphql(&beta, "{ Local { Get { Things { City { name } } } } }");
    assert!(b["errors"].is_null(), "{b}");
    assert_eq!(
        names_of(&b["data"]["Local"]["Get"]["Things"]["City"]),
        ["Berlin"]
    );
    let b = graphql(&alpha, GET_BETA);
    assert!(b["errors"].is_null(), "{b}");
    assert_eq!(
        names_of(&b["data"]["Network"]["Get"]["beta"]["Things"]["City"]),
        ["Berlin"]
    );
    // mallory is not among the peers a Network query may name.
    let b = graphql(
        &alpha,
        "{ Network { Get { mallory { Things { City { name } } } } } }",
    );
    assert!(!errors(&b).is_empty(), "{b}");
    assert!(mallory.graphql_requests().is_empty());
}

// ---------------------------------------------------------------------------------------------
// The echo check.

/// Checks that a refusal (400) says nothing about what answered at `uri` beyond "the peer did
/// not answer the echo": not its status, not its words, not how the connection failed.
fn assert_says_nothing_about(r: &Reply, uri: &str, secret: &str) {
    assert_eq!(r.status, 400, "{:?}", r.body);
    let m = r.message();
    assert!(m.contains("the peer did not answer the echo"), "{m}");
    let without_url = m.replace(&format!("{uri}/weaviate/v1/peers/echo"), "");
    let lower = without_url.to_ascii_lowercase();
    for word in [
        secret,
        "500",
        "404",
        "internal",
        "server error",
        "refused",
        "connect",
        "unsigned",
        "not signed",
        "timed out",
    ] {
        assert!(
            !lower.contains(&word.to_ascii_lowercase()),
            "the refusal tells {word:?}: {m}"
        );
    }
}

/// The attacker (a FakePeer "scout") announces itself with a `peerUri` where some other
/// service answers, to make the peer call there and tell what it got: an HTTP server
/// answering 500 with a secret body; a server answering its echo with the secret, signed with
/// its key, but 500 (a FakePeer "scout2" announcing itself); one answering its echo signed
/// with a key that is not the announced one (a FakePeer "scout3"); one answering a
/// good-looking echo unsigned; an address nobody listens at. Each is refused with 400 "the
/// peer did not answer the echo" and nothing more: no status, no body, no connection error.
#[test]
fn a_failed_echo_tells_nothing_about_what_answered() {
    let dir = tempfile::tempdir().unwrap();
    let victim = peer(dir.path(), "victim", None, &[], &[]);
    let secret = "s3cr3t-internal-admin-token";
    let scout = FakePeer::start("scout");
    let announce = |uri: &str| {
        let mut a = scout.announcement();
        a["peerUri"] = json!(uri);
        scout.call("POST", &victim.server.at("/peers"), Some(&a))
    };

    let plain = PlainServer::start(500, &format!("{{\"error\": \"{secret}\"}}"));
    assert_says_nothing_about(&announce(&plain.0), &plain.0, secret);

    let signed_500 = FakePeer::start_with(
        "scout2",
        FakeOptions {
            echo: Some((500, format!("internal: {secret}"))),
            ..FakeOptions::default()
        },
    );
    let r = signed_500.announce_to(&victim.server);
    assert_says_nothing_about(&r, &signed_500.base, secret);

    let other_key = FakePeer::start_with(
        "scout3",
        FakeOptions {
            answer_identity: Some(weft_e2e_tests::Identity::generate()),
            ..FakeOptions::default()
        },
    );
    let r = other_key.announce_to(&victim.server);
    assert_says_nothing_about(&r, &other_key.base, secret);

    let unsigned = PlainServer::start(
        200,
        &json!({"peerName": "scout", "id": "6b1a1d7e-1c9b-4c55-9d3a-3f2d5c7e9a01",
            "schemaHash": secret})
        .to_string(),
    );
    assert_says_nothing_about(&announce(&unsigned.0), &unsigned.0, secret);

    let nobody = "http://127.0.0.1:1";
    assert_says_nothing_about(&announce(nobody), nobody, secret);

    assert!(victim.server.known_peers().is_empty());
    // The same announcement at scout's own address is taken: the refusals were the echoes'.
    let r = scout.announce_to(&victim.server);
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(victim.server.known_peers(), ["scout"]);
}

// ---------------------------------------------------------------------------------------------
// Budgets.

const SMALL_LIMITS: &str = r#"{"peer_announces_per_minute": 3, "peer_questions_per_minute": 5,
    "max_question_classes": 2, "max_question_properties": 2, "max_question_keywords": 2,
    "max_peers": 3, "max_peer_response_bytes": 8192, "max_answers_in_progress": 3}"#;

/// A client that sends from `address` (another network address on the loopback).
fn client_from(address: &str) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .local_address(Some(address.parse().unwrap()))
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn fake_from(name: &str, address: &str) -> FakePeer {
    FakePeer::start_with(
        name,
        FakeOptions {
            client_address: Some(address.parse().unwrap()),
            ..FakeOptions::default()
        },
    )
}

/// A refusal over a budget: its status, the limit named, and a `Retry-After` of 1..=60 s.
fn assert_over_budget(r: &Reply, status: u16, limit: &str) {
    assert_eq!(r.status, status, "{:?}", r.body);
    assert!(r.message().contains(limit), "{:?}", r.body);
    if status == 429 {
        let after: u64 = r
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no Retry-After: {:?}", r.headers));
        assert!((1..=60).contains(&after), "Retry-After {after}");
    }
}

/// Everything other servers can make a peer do is bounded (alpha with small `limits`):
/// * a peer announcing itself more than `peer_announces_per_minute` times (3) is refused 429
///   with `Retry-After`, also when it sends from another address (the key's budget); another
///   key from the same address is refused too (the address's budget);
/// * with `max_peers` (3) known, a new peer's announcement is 429;
/// * a peer whose schema is larger than `max_peer_response_bytes` is left out, its
///   `schemaError` naming the limit;
/// * a peer asking more than `peer_questions_per_minute` (5) questions is refused 429; a
///   question with more classes, properties or keywords than `max_question_*` (2) is 413
///   naming the limit;
/// * a slow asker that keeps `max_answers_in_progress` (3) answers busy gets 429 for the next.
#[test]
fn every_budget_a_peer_grants_others_is_enforced_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let limits: Value = serde_json::from_str(SMALL_LIMITS).unwrap();
    let config = config_file(dir.path(), "alpha", json!({ "limits": limits }));
    let alpha = peer(
        dir.path(),
        "alpha",
        None,
        &[("WEFT_CONFIG_FILE", &config)],
        &[],
    );
    let alpha_key = key_of(&dir.path().join("alpha"));
    let announce = alpha.server.at("/peers");

    // Announcements per key and per address.
    let a = fake_from("aa", "127.0.0.2");
    for i in 0..3 {
        let r = a.announce_to(&alpha.server);
        assert_eq!(r.status, 200, "announcement {i}: {:?}", r.body);
    }
    let r = signed_call(
        &client_from("127.0.0.3"),
        Some((&a.identity, "aa")),
        "POST",
        &announce,
        Some(&a.announcement()),
    );
    assert_over_budget(&r, 429, "limits.peer_announces_per_minute");
    let b = fake_from("bb", "127.0.0.2");
    let r = b.announce_to(&alpha.server);
    assert_over_budget(&r, 429, "limits.peer_announces_per_minute");
    assert_eq!(alpha.server.known_peers(), ["aa"]);

    // Peers known; a schema too large to read; a slow asker.
    let d = FakePeer::start_with(
        "dd",
        FakeOptions {
            client_address: Some("127.0.0.4".parse().unwrap()),
            answers_delay: Some(Duration::from_secs(8)),
            ..FakeOptions::default()
        },
    );
    d.set_schema(
        json!({"things": {"classes": [], "name": "x".repeat(20_000)},
        "actions": {"classes": []}}),
    );
    assert_eq!(d.announce_to(&alpha.server).status, 200);
    let e = fake_from("ee", "127.0.0.5");
    assert_eq!(e.announce_to(&alpha.server).status, 200);
    let g = fake_from("gg", "127.0.0.6");
    let r = g.announce_to(&alpha.server);
    assert_over_budget(&r, 429, "limits.max_peers");
    assert_eq!(alpha.server.known_peers(), sorted(&["aa", "dd", "ee"]));
    let entry = wait_entry(&alpha.server, "dd", "refused with a schemaError", |e| {
        e["schemaError"].is_string()
    });
    assert!(
        entry["schemaError"]
            .as_str()
            .unwrap()
            .contains("limits.max_peer_response_bytes"),
        "{entry}"
    );
    assert_eq!(entry["schemaDownloaded"], false, "{entry}");
    // The well-sized schemas are taken.
    wait_entry(&alpha.server, "ee", "downloaded", |e| {
        e["schemaDownloaded"] == true
    });

    // Questions per asker per minute (each waited for, so that few are answered at once).
    let town = json!({"kind": "thing", "classes": [{"name": "Town", "certainty": 0.7}]});
    for _ in 0..5 {
        a.ask_and_wait(&alpha.server, &alpha_key, &town);
    }
    let r = a.ask(&alpha.server, &town);
    assert_over_budget(&r, 429, "limits.peer_questions_per_minute");

    // The size of a question.
    let c = |n: &str| json!({"name": n, "certainty": 0.7});
    let kw = |w: &str| json!({"value": w, "weight": 1.0});
    for (question, limit) in [
        (
            json!({"kind": "thing", "classes": [c("Town"), c("City"), c("Village")]}),
            "limits.max_question_classes",
        ),
        (
            json!({"kind": "thing", "classes": [c("Town")],
                "properties": [c("name"), c("size"), c("age")]}),
            "limits.max_question_properties",
        ),
        (
            json!({"kind": "thing", "classes": [{"name": "Town", "certainty": 0.7,
                "keywords": [kw("town"), kw("city"), kw("village")]}]}),
            "limits.max_question_keywords",
        ),
    ] {
        let r = e.ask(&alpha.server, &question);
        assert_over_budget(&r, 413, limit);
    }

    // Answers in progress: dd takes 8 s to take each answer, holding its place meanwhile.
    let mut statuses = vec![];
    for _ in 0..4 {
        let r = d.ask(&alpha.server, &town);
        statuses.push(r.status);
        if r.status != 202 {
            assert_over_budget(&r, 429, "limits.max_answers_in_progress");
            assert_eq!(r.header("retry-after").as_deref(), Some("1"));
            break;
        }
    }
    assert!(
        statuses.first() == Some(&202) && statuses.last() == Some(&429),
        "a 4th question while 3 answers are in progress: {statuses:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Identity.

fn delete_peer(api: &Api, name: &str, who: Option<&Creds>) -> (u16, Value) {
    let path = format!("/p2p/peers/{name}");
    match who {
        Some(c) => api.call(c, "DELETE", &path, None),
        None => api.raw(&p2p_client(), "DELETE", &path, &[], None),
    }
}

/// A peer is its key. gamma restarted with its data directory (so its identity) — at a new
/// address — is taken back by alpha and beta without anyone's intervention. gamma restarted
/// with a fresh data directory (a new key: what an attacker holding only the name has) is
/// refused under its old name: 409 naming both keys, at every peer, and it stays alone, until
/// each peer's operator removes the old binding (`DELETE /p2p/peers/gamma`, root key only:
/// 401 without a key, 403 with another key); then it is taken everywhere with its new key.
#[test]
fn a_peer_is_known_by_its_key_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let alpha = peer(dir.path(), "alpha", None, &[], &[]);
    let beta = peer(dir.path(), "beta", Some(&alpha.server), &[], &[]);
    let gamma = peer(dir.path(), "gamma", Some(&alpha.server), &[], &[]);
    let full = wait_for(FORM, || {
        alpha.server.known_peers() == sorted(&["beta", "gamma"])
            && beta.server.known_peers() == sorted(&["alpha", "gamma"])
            && gamma.server.known_peers() == sorted(&["alpha", "beta"])
    });
    assert!(full.is_some(), "the network did not form");
    let old_key = key_of(&dir.path().join("gamma"));

    // The same identity, restarted (SIGKILL: no goodbye) at another address.
    let mut gamma = gamma;
    gamma.server.kill();
    let gamma = peer(dir.path(), "gamma", Some(&alpha.server), &[], &[]);
    for p in [&alpha, &beta] {
        wait_entry(&p.server, "gamma", "taken back at its new address", |e| {
            e["uri"] == gamma.server.base().as_str()
                && e["identity"] == old_key.to_string().as_str()
        });
    }

    // A new identity under the old name.
    let mut gamma = gamma;
    gamma.server.kill();
    let fresh = dir.path().join("gamma-new");
    let gamma = peer_in(&fresh, "gamma", Some(&alpha.server), &[], &[]);
    let new_identity = identity_in(&fresh);
    let new_key = new_identity.public();
    assert_ne!(new_key, old_key);
    let again = json!({"peerName": "gamma", "peerUri": gamma.server.base(),
        "identity": new_key.to_string()});
    for p in [&alpha, &beta] {
        let r = signed_call(
            &p2p_client(),
            Some((&new_identity, "gamma")),
            "POST",
            &p.server.at("/peers"),
            Some(&again),
        );
        assert_eq!(r.status, 409, "{:?}", r.body);
        assert!(
            r.message().contains(&old_key.to_string())
                && r.message().contains(&new_key.to_string()),
            "{:?}",
            r.body
        );
    }
    // It stays alone (its own announcements are refused the same way) while the others never
    // list it with its new key.
    std::thread::sleep(Duration::from_secs(2));
    assert!(get_json(&gamma.server.at("/p2p/health")).is_none());
    assert!(gamma.server.known_peers().is_empty());
    for p in [&alpha, &beta] {
        assert!(
            p.server
                .peer_entries()
                .iter()
                .all(|e| e["identity"] != new_key.to_string().as_str()),
            "{:?}",
            p.server.peer_entries()
        );
    }

    // Only the root key removes a binding.
    let (s, _) = delete_peer(&beta, "gamma", None);
    assert_eq!(s, 401);
    let other = beta.child(
        &Creds::root(),
        json!({"read": true, "write": true, "delete": true, "execute": true}),
    );
    let (s, _) = delete_peer(&beta, "gamma", Some(&other));
    assert_eq!(s, 403);
    // alpha first (gamma announces itself to alpha): alpha takes gamma and passes it on to beta,
    // which refuses (409: it still binds the old key). Then beta's operator removes it too. beta
    // never hears of gamma again from alpha; gamma's own echo round finds that beta does not
    // know it (the echo says so) and announces itself to beta again.
    for p in [&alpha, &beta] {
        let (s, b) = delete_peer(p, "gamma", Some(&Creds::root()));
        assert_eq!(s, 204, "{b}");
        wait_entry(
            &alpha.server,
            "gamma",
            "taken by alpha with its new key",
            |e| e["identity"] == new_key.to_string().as_str(),
        );
    }
    for p in [&alpha, &beta] {
        wait_entry(&p.server, "gamma", "taken with its new key", |e| {
            e["uri"] == gamma.server.base().as_str()
                && e["identity"] == new_key.to_string().as_str()
        });
    }
    let joined = wait_for(FORM, || {
        gamma.server.known_peers() == sorted(&["alpha", "beta"])
    });
    assert!(joined.is_some(), "{:?}", gamma.server.known_peers());
}

// ---------------------------------------------------------------------------------------------
// Passing on.

/// Announcements are passed on once. FakePeers known to alpha count what they receive: a
/// newcomer ("repeat") announcing itself reaches the others once, passed on by alpha (signed
/// with alpha's key, naming the newcomer's key); "repeat" announcing itself again and again
/// (same key, same address) is answered each time and passed on to nobody; a newcomer that a
/// known peer passes on to alpha is taken and passed on no further. A passing-on replayed to
/// another server, a message replayed to its server, and one whose body was changed on the way
/// are refused (401).
#[test]
fn a_known_peer_announcing_itself_again_is_not_passed_on() {
    let dir = tempfile::tempdir().unwrap();
    let alpha = peer(dir.path(), "alpha", None, &[], &[]);
    let alpha_key = key_of(&dir.path().join("alpha"));
    let watcher = FakePeer::start("watcher");
    assert_eq!(watcher.announce_to(&alpha.server).status, 200);
    let repeat = FakePeer::start("repeat");
    assert_eq!(repeat.announce_to(&alpha.server).status, 200);
    let received = |fake: &FakePeer, name: &str| {
        fake.announcements()
            .into_iter()
            .filter(|a| a.body["peerName"] == name)
            .collect::<Vec<_>>()
    };
    let arrived = wait_for(FORM, || !received(&watcher, "repeat").is_empty());
    assert!(arrived.is_some(), "{:?}", watcher.announcements());
    let first = &received(&watcher, "repeat")[0];
    let signer = first.signer.as_ref().expect("passed on signed");
    assert_eq!(signer.key, alpha_key);
    assert_eq!(signer.peer, "alpha");
    assert_eq!(first.body["peerUri"], repeat.base.as_str());
    assert_eq!(first.body["identity"], repeat.public().to_string().as_str());

    // The passing-on, replayed by watcher to alpha word for word: refused (its signature covers
    // watcher's address), also with watcher's address forged in the Host header.
    let watcher_authority = watcher.base.trim_start_matches("http://").to_string();
    for host in [None, Some(watcher_authority.as_str())] {
        let mut replay = watcher
            .http
            .post(alpha.server.at("/peers"))
            .body(first.raw.clone());
        for h in [
            "content-type",
            "content-digest",
            "weft-peer",
            "signature-input",
            "signature",
        ] {
            replay = replay.header(h, first.header(h).expect(h));
        }
        if let Some(h) = host {
            replay = replay.header("host", h);
        }
        let r = replay.send().unwrap();
        assert_eq!(r.status(), 401, "Host {host:?}");
        let b: Value = r.json().unwrap();
        let m = weft_e2e_tests::message(&b);
        match host {
            None => assert!(m.contains("does not verify"), "{b}"),
            Some(h) => assert!(m.contains("signed for") && m.contains(h), "{b}"),
        }
    }

    // Somebody on the way keeps repeat's signed announcement: sent again as it is, it is a
    // replay; with another peerUri in the body, it no longer matches its digest. Both 401.
    let url = alpha.server.at("/peers");
    let parsed = reqwest::Url::parse(&url).unwrap();
    let body = serde_json::to_vec(&repeat.announcement()).unwrap();
    let authority = signature::authority_of(&parsed);
    let target = signature::Target {
        method: "POST",
        authority: &authority,
        path: parsed.path(),
        query: parsed.query(),
    };
    let signed =
        signature::sign_request(&repeat.identity, "repeat", &target, &body, now_s()).unwrap();
    let send = |body: Vec<u8>| {
        let mut req = repeat
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        for (k, v) in signed.pairs() {
            req = req.header(k, v);
        }
        let r = req.send().unwrap();
        let status = r.status().as_u16();
        (
            status,
            weft_e2e_tests::message(&r.json().unwrap_or_default()),
        )
    };
    let mut changed = repeat.announcement();
    changed["peerUri"] = json!(watcher.base);
    let (s, m) = send(serde_json::to_vec(&changed).unwrap());
    assert!(s == 401 && m.contains("Content-Digest"), "{s} {m}");
    let (s, m) = send(body.clone());
    assert_eq!(s, 200, "{m}");
    let (s, m) = send(body);
    assert!(s == 401 && m.contains("received before"), "{s} {m}");

    for _ in 0..3 {
        let r = repeat.announce_to(&alpha.server);
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.signer_key(), Some(alpha_key));
        let mut listed: Vec<String> = r.body["peers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect();
        listed.sort();
        assert_eq!(listed, sorted(&["alpha", "watcher"]), "{:?}", r.body);
    }
    // watcher passes a newcomer on (it is a known peer): alpha takes it and passes it on no
    // further (one message per peer per join).
    let late = FakePeer::start("late");
    let r = watcher.call(
        "POST",
        &alpha.server.at("/peers"),
        Some(&late.announcement()),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        alpha.server.known_peers(),
        sorted(&["late", "repeat", "watcher"])
    );
    // A newcomer announcing itself after all that is passed on to each: once it has arrived
    // everywhere, so would have anything alpha sent before it.
    let last = FakePeer::start("last");
    assert_eq!(last.announce_to(&alpha.server).status, 200);
    let arrived = wait_for(FORM, || {
        [&watcher, &repeat, &late]
            .iter()
            .all(|f| !received(f, "last").is_empty())
    });
    assert!(
        arrived.is_some(),
        "watcher {:?}, repeat {:?}, late {:?}",
        watcher.announcements(),
        repeat.announcements(),
        late.announcements()
    );
    std::thread::sleep(Duration::from_secs(1));
    for f in [&watcher, &repeat, &late] {
        assert_eq!(
            received(f, "last").len(),
            1,
            "{}: {:?}",
            f.name,
            f.announcements()
        );
        assert!(
            received(f, "late").is_empty(),
            "{}: {:?}",
            f.name,
            f.announcements()
        );
        assert!(received(f, &f.name).is_empty(), "{}", f.name);
    }
    assert_eq!(
        received(&watcher, "repeat").len(),
        1,
        "{:?}",
        watcher.announcements()
    );
    assert!(received(&repeat, "watcher").is_empty());
}
