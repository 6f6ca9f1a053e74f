//! The P2P network end to end: `weft genesis` and `weft serve` peers as real processes on
//! 127.0.0.1, in both modes (genesis, bootstrapped), with shortened timings: peers ping every
//! 0.3 s, the genesis drops peers silent for 1.5 s.
//!
//! Build first: `cargo build -p weft -p weft-dev-memory` (and the `finalfusion` contextionary
//! plugin, `scripts/fetch-test-contextionary.sh` for the contextionary tests).
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use weft_e2e_tests::{
    assert_error_shape, get_json, identity_in, p2p_client, peer_env, serve_until_exit, signed_call,
    small_test_contextionary, start_peer, test_contextionary, wait_for, GenesisServer, Identity,
    Server,
};

/// How often the test peers ping (or echo).
const PING: &str = "0.3";
/// Time for a whole network to form.
const FORM: Duration = Duration::from_secs(20);

fn names(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// Starts peers `names` at `genesis`; each with its own data directory.
fn genesis_peers(genesis: &GenesisServer, names: &[&str], dir: &tempfile::TempDir) -> Vec<Server> {
    names
        .iter()
        .map(|n| {
            let mut env = peer_env(n, &dir.path().join(n), PING);
            env.push(("WEFT_GENESIS_URL".into(), genesis.url.clone()));
            start_peer(&[], &env)
        })
        .collect()
}

/// Waits until every peer lists exactly the others; panics naming what each lists otherwise.
fn wait_full_lists(peers: &[(&str, &Server)], timeout: Duration) -> Duration {
    let all: Vec<&str> = peers.iter().map(|(n, _)| *n).collect();
    let took = wait_for(timeout, || {
        peers.iter().all(|(n, s)| {
            let others: Vec<&str> = all.iter().copied().filter(|o| o != n).collect();
            s.known_peers() == names(&others)
        })
    });
    took.unwrap_or_else(|| {
        let seen: Vec<(String, Vec<String>)> = peers
            .iter()
            .map(|(n, s)| (n.to_string(), s.known_peers()))
            .collect();
        panic!("the peers did not list each other within {timeout:?}: {seen:?}")
    })
}

#[test]
fn three_peers_of_a_genesis_list_each_other_and_a_killed_peer_disappears() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = GenesisServer::start(&["--liveness-timeout", "1.5"]);
    let mut peers = genesis_peers(&genesis, &["alpha", "beta", "gamma"], &dir);
    let took = wait_full_lists(
        &[
            ("alpha", &peers[0]),
            ("beta", &peers[1]),
            ("gamma", &peers[2]),
        ],
        FORM,
    );
    eprintln!("genesis mode: three peers list each other after {took:?}");
    assert_eq!(genesis.peer_names(), names(&["alpha", "beta", "gamma"]));

    // Every peer is healthy, and has downloaded the others' schemas (at the hash they ping
    // with, which is the md5 their /p2p/schema answers).
    for p in &peers {
        let h = get_json(&p.at("/p2p/health")).expect("healthy");
        assert_eq!(h["mode"], "genesis", "{h}");
    }
    let hashes: Vec<String> = peers
        .iter()
        .map(|p| {
            let s = get_json(&p.at("/p2p/schema")).expect("/p2p/schema");
            assert!(s["schema"].is_object(), "{s}");
            s["hash"].as_str().unwrap().to_string()
        })
        .collect();
    let downloaded = wait_for(Duration::from_secs(10), || {
        let list = get_json(&peers[0].at("/p2p/peers")).unwrap_or_default();
        list.as_array().is_some_and(|l| {
            l.len() == 2
                && l.iter().all(|p| {
                    p["schemaDownloaded"] == true
                        && hashes.contains(&p["schemaHash"].as_str().unwrap_or("").to_string())
                })
        })
    });
    assert!(
        downloaded.is_some(),
        "alpha did not download the others' schemas: {:?}",
        get_json(&peers[0].at("/p2p/peers"))
    );

    // SIGKILL: no goodbye; the genesis drops gamma after 1.5 s of silence and tells the others.
    let killed = Instant::now();
    peers[2].kill();
    let gone = wait_for(Duration::from_secs(8), || {
        peers[0].known_peers() == names(&["beta"]) && peers[1].known_peers() == names(&["alpha"])
    });
    let gone = gone.unwrap_or_else(|| {
        panic!(
            "gamma (killed) is still listed: alpha {:?}, beta {:?}",
            peers[0].known_peers(),
            peers[1].known_peers()
        )
    });
    eprintln!(
        "genesis mode: a SIGKILLed peer left every list after {:?} (liveness 1.5 s)",
        killed.elapsed()
    );
    assert!(
        gone >= Duration::from_millis(1000),
        "gone after {gone:?}: before the liveness window, so not by liveness"
    );
    assert!(gone <= Duration::from_secs(4), "gone only after {gone:?}");
}

#[test]
fn a_peer_stopped_with_sigterm_leaves_at_once() {
    let dir = tempfile::tempdir().unwrap();
    // A long liveness window: only deregistration can remove the peer quickly.
    let genesis = GenesisServer::start(&["--liveness-timeout", "30"]);
    let mut peers = genesis_peers(&genesis, &["alpha", "beta", "gamma"], &dir);
    wait_full_lists(
        &[
            ("alpha", &peers[0]),
            ("beta", &peers[1]),
            ("gamma", &peers[2]),
        ],
        FORM,
    );
    let stopped = Instant::now();
    let status = peers[2]
        .terminate(Duration::from_secs(10))
        .expect("gamma exits on SIGTERM");
    assert!(status.success(), "gamma exited with {status}");
    let gone = wait_for(Duration::from_secs(5), || {
        genesis.peer_names() == names(&["alpha", "beta"])
            && peers[0].known_peers() == names(&["beta"])
            && peers[1].known_peers() == names(&["alpha"])
    });
    assert!(
        gone.is_some(),
        "gamma (SIGTERM) is still listed: genesis {:?}, alpha {:?}, beta {:?}",
        genesis.peer_names(),
        peers[0].known_peers(),
        peers[1].known_peers()
    );
    let took = stopped.elapsed();
    eprintln!(
        "genesis mode: a peer stopped with SIGTERM left every list after {took:?} (liveness 30 s)"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn a_restarted_genesis_is_repopulated_by_its_peers() {
    let dir = tempfile::tempdir().unwrap();
    let mut genesis = GenesisServer::start(&["--liveness-timeout", "30"]);
    let identity = genesis.identity.clone();
    let peers = genesis_peers(&genesis, &["alpha", "beta", "gamma"], &dir);
    wait_full_lists(
        &[
            ("alpha", &peers[0]),
            ("beta", &peers[1]),
            ("gamma", &peers[2]),
        ],
        FORM,
    );
    genesis.kill();
    // The peers keep their lists while the genesis is away.
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(peers[0].known_peers(), names(&["beta", "gamma"]));
    // Restarted on its port with its data directory: the same identity, which the peers pinned.
    let restarted = Instant::now();
    genesis.restart();
    assert_eq!(genesis.identity, identity);
    let back = wait_for(Duration::from_secs(10), || {
        genesis.peer_names() == names(&["alpha", "beta", "gamma"])
    });
    assert!(
        back.is_some(),
        "the restarted genesis lists {:?}",
        genesis.peer_names()
    );
    eprintln!(
        "genesis mode: a restarted genesis knew every peer again after {:?}",
        restarted.elapsed()
    );
    // And its pushes reach the peers again: the lists stay whole.
    wait_full_lists(
        &[
            ("alpha", &peers[0]),
            ("beta", &peers[1]),
            ("gamma", &peers[2]),
        ],
        Duration::from_secs(5),
    );
    // Every registration is new: the genesis's ids are the ones the peers now list.
    let ids: Vec<Value> = get_json(&format!("{}/peers", genesis.url))
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].clone())
        .collect();
    let listed = get_json(&peers[0].at("/p2p/peers")).unwrap();
    for p in listed.as_array().unwrap() {
        assert!(
            ids.contains(&p["id"]),
            "{p} is not a current registration ({ids:?})"
        );
    }
}

#[test]
fn three_bootstrapped_peers_without_genesis_reach_full_lists() {
    let dir = tempfile::tempdir().unwrap();
    let mut env1 = peer_env("one", &dir.path().join("one"), PING);
    env1.push(("WEFT_FIRST_PEER".into(), "true".into()));
    let one = start_peer(&[], &env1);
    let mut env2 = peer_env("two", &dir.path().join("two"), PING);
    env2.push(("WEFT_BOOTSTRAPPED_PEERS".into(), one.base()));
    let two = start_peer(&[], &env2);
    // The third knows only the second (and an address nobody answers at, tried first).
    let mut env3 = peer_env("three", &dir.path().join("three"), PING);
    env3.push((
        "WEFT_BOOTSTRAPPED_PEERS".into(),
        format!("http://127.0.0.1:1,{}", two.url),
    ));
    let mut three = start_peer(&[], &env3);
    let took = wait_full_lists(&[("one", &one), ("two", &two), ("three", &three)], FORM);
    eprintln!("bootstrapped mode: three peers list each other after {took:?}");
    for p in [&one, &two, &three] {
        let h = get_json(&p.at("/p2p/health")).expect("healthy");
        assert_eq!(h["mode"], "bootstrapped", "{h}");
        assert_eq!(h["peers"], 2, "{h}");
    }
    // Schemas are downloaded in this mode too.
    let downloaded = wait_for(Duration::from_secs(10), || {
        get_json(&one.at("/p2p/peers"))
            .and_then(|l| l.as_array().cloned())
            .is_some_and(|l| l.len() == 2 && l.iter().all(|p| p["schemaDownloaded"] == true))
    });
    assert!(
        downloaded.is_some(),
        "{:?}",
        get_json(&one.at("/p2p/peers"))
    );

    // An announcement of a peer already known (signed by it, same key and address) changes
    // nothing; unsigned, it is not taken at all.
    let c = p2p_client();
    let again = json!({"peerName": "three", "peerUri": three.base(),
        "identity": identity_in(&dir.path().join("three")).public().to_string()});
    let r = signed_call(&c, None, "POST", &one.at("/peers"), Some(&again));
    assert_eq!(r.status, 401, "{:?}", r.body);
    let three_key = identity_in(&dir.path().join("three"));
    let r = signed_call(
        &c,
        Some((&three_key, "three")),
        "POST",
        &one.at("/peers"),
        Some(&again),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let answer = r.body;
    let mut listed: Vec<String> = answer["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    listed.sort();
    assert_eq!(listed, names(&["one", "two"]), "{answer}");
    assert!(answer["contextionaryMD5"].is_null(), "{answer}");
    assert_eq!(one.known_peers(), names(&["three", "two"]));

    // An announced peer that does not answer its echo is refused.
    let ghost = Identity::generate();
    let r = signed_call(
        &c,
        Some((&ghost, "ghost")),
        "POST",
        &one.at("/peers"),
        Some(
            &json!({"peerName": "ghost", "peerUri": "http://127.0.0.1:1",
            "identity": ghost.public().to_string()}),
        ),
    );
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(
        r.message().contains("not reachable")
            && r.message().contains("the peer did not answer the echo"),
        "{:?}",
        r.body
    );
    assert_eq!(one.known_peers(), names(&["three", "two"]));

    // Liveness: a killed peer is dropped after three failed echoes in a row.
    let killed = Instant::now();
    three.kill();
    let gone = wait_for(Duration::from_secs(8), || {
        one.known_peers() == names(&["two"]) && two.known_peers() == names(&["one"])
    });
    assert!(
        gone.is_some(),
        "three (killed) is still listed: one {:?}, two {:?}",
        one.known_peers(),
        two.known_peers()
    );
    eprintln!(
        "bootstrapped mode: a SIGKILLed peer left every list after {:?} (3 failed echoes, every 0.3 s)",
        killed.elapsed()
    );
}

#[test]
fn membership_operations_need_no_key_and_answer_404_on_a_server_that_is_no_peer() {
    let plain = Server::start();
    let c = p2p_client();
    for path in [
        "/p2p/health",
        "/p2p/ping",
        "/p2p/peers",
        "/p2p/schema",
        "/p2p/contextionary",
        "/peers/echo",
    ] {
        let r = c.get(plain.at(path)).send().unwrap();
        assert_eq!(r.status(), 404, "GET {path}");
        let b: Value = r.json().unwrap();
        assert_error_shape("GET", path, 404, &b);
        assert!(
            b["error"][0]["message"]
                .as_str()
                .unwrap()
                .contains("not part of a P2P network"),
            "{b}"
        );
    }
    let r = c
        .put(plain.at("/p2p/genesis"))
        .json(&json!([]))
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[test]
fn peer_lists_are_accepted_only_signed_with_the_genesis_key() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = GenesisServer::start(&["--liveness-timeout", "30"]);
    let peers = genesis_peers(&genesis, &["alpha"], &dir);
    let alpha = &peers[0];
    wait_for(FORM, || genesis.peer_names() == names(&["alpha"])).expect("alpha registers");
    let c = p2p_client();
    // A 0.12 list (a plain array) signed with the genesis's key is taken.
    let list = json!([
        {"id": "6b1a1d7e-1c9b-4c55-9d3a-3f2d5c7e9a01", "name": "remote", "uri": "http://127.0.0.1:1",
         "schemaHash": "d41d8cd98f00b204e9800998ecf8427e"}
    ]);
    let genesis_key = genesis.signing_identity();
    assert_eq!(genesis_key.public().to_string(), genesis.identity);
    let r = signed_call(
        &c,
        Some((&genesis_key, "genesis")),
        "PUT",
        &alpha.at("/p2p/genesis"),
        Some(&list),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.body["peers"], 1,
        "alpha holds the pushed list: {:?}",
        r.body
    );
    assert_eq!(
        r.signer_key(),
        Some(identity_in(&dir.path().join("alpha")).public())
    );
    // Signed by another key, even under the genesis's name: 403; unsigned: 401. None of them
    // is taken. (alpha pings every 0.3 s and the genesis then pushes its real list, so what
    // alpha lists is checked by a name only the refused lists hold.)
    let intruder = json!([
        {"id": "6b1a1d7e-1c9b-4c55-9d3a-3f2d5c7e9a02", "name": "intruder", "uri": "http://127.0.0.1:2",
         "schemaHash": "d41d8cd98f00b204e9800998ecf8427e"}
    ]);
    let other = Identity::generate();
    for sign in [Some((&other, "genesis")), Some((&other, "mallory"))] {
        let r = signed_call(&c, sign, "PUT", &alpha.at("/p2p/genesis"), Some(&intruder));
        assert_eq!(r.status, 403, "{:?}", r.body);
        assert!(r.message().contains(&genesis.identity), "{:?}", r.body);
    }
    let r = signed_call(&c, None, "PUT", &alpha.at("/p2p/genesis"), Some(&intruder));
    assert_eq!(r.status, 401, "{:?}", r.body);
    assert!(!alpha.known_peers().contains(&"intruder".to_string()));
    // The genesis's next push (on alpha's next ping, its version being unknown to it) puts the
    // real list back.
    wait_for(Duration::from_secs(5), || alpha.known_peers().is_empty())
        .expect("the genesis's list replaces the made-up one");
    // Health, ping and echo answer without a key.
    for path in ["/p2p/health", "/p2p/ping", "/peers/echo"] {
        let b = get_json(&alpha.at(path)).unwrap_or_else(|| panic!("GET {path}"));
        assert_eq!(b["peerName"], "alpha", "{b}");
    }
}

#[test]
fn a_peer_refuses_to_join_with_another_contextionary_unless_it_may_download_the_networks() {
    let big = test_contextionary();
    let small = small_test_contextionary();
    let dir = tempfile::tempdir().unwrap();
    let genesis = GenesisServer::start(&[
        "--liveness-timeout",
        "30",
        "--contextionary",
        big.to_str().unwrap(),
    ]);
    let network = get_json(&format!("{}/contextionary", genesis.url)).expect("GET /contextionary");
    let network_md5 = network["hash"]["value"].as_str().unwrap().to_string();

    let mut env = peer_env("odd", &dir.path().join("odd"), PING);
    env.push(("WEFT_GENESIS_URL".into(), genesis.url.clone()));
    env.push(("WEFT_CONTEXTIONARY".into(), small.display().to_string()));
    let (status, _, stderr) = serve_until_exit(&[], &env, Duration::from_secs(30));
    assert!(!status.success(), "it started: {stderr}");
    let line = stderr.lines().last().unwrap_or_default();
    assert!(line.contains(&network_md5), "{line}");
    let hashes = line
        .split(|c: char| !c.is_ascii_hexdigit())
        .filter(|w| w.len() == 32)
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(hashes.len(), 2, "the line names both hashes: {line}");
    assert!(line.contains("P2P.requestContextionary"), "{line}");
    assert!(genesis.peer_names().is_empty());

    // With requestContextionary: downloads (file and index), verifies, uses it and joins.
    env.push(("WEFT_REQUEST_CONTEXTIONARY".into(), "true".into()));
    let started = Instant::now();
    let odd = start_peer(&[], &env);
    eprintln!(
        "requestContextionary: downloaded, verified and listening after {:?}",
        started.elapsed()
    );
    let downloaded = dir
        .path()
        .join("odd/network-contextionary")
        .join(format!("{network_md5}.fifu"));
    assert!(downloaded.is_file(), "{} is missing", downloaded.display());
    let mut index = downloaded.as_os_str().to_owned();
    index.push(".hnsw");
    assert!(std::path::PathBuf::from(index).is_file());
    let mine = get_json(&odd.at("/p2p/contextionary")).unwrap();
    assert_eq!(mine["hash"]["value"], network_md5.as_str(), "{mine}");
    wait_for(FORM, || genesis.peer_names() == names(&["odd"])).expect("odd joins");
    // It uses the network's words: "volcano" is among the 20,000 words, not among the 2,000.
    let api = weft_e2e_tests::Api::new(odd);
    let (s, b) = api.get("/c11y/words/volcano");
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["individualWords"][0]["present"], true, "{b}");

    // A peer of a bootstrapped network downloads from the peer it announces to.
    let mut env_first = peer_env("first", &dir.path().join("first"), PING);
    env_first.push(("WEFT_FIRST_PEER".into(), "true".into()));
    env_first.push(("WEFT_CONTEXTIONARY".into(), big.display().to_string()));
    let first = start_peer(&[], &env_first);
    let mut env_late = peer_env("late", &dir.path().join("late"), PING);
    env_late.push(("WEFT_BOOTSTRAPPED_PEERS".into(), first.base()));
    let (status, _, stderr) = serve_until_exit(&[], &env_late, Duration::from_secs(30));
    assert!(!status.success());
    let line = stderr.lines().last().unwrap_or_default();
    assert!(
        line.contains(&network_md5) && line.contains("none configured"),
        "{line}"
    );
    env_late.push(("WEFT_REQUEST_CONTEXTIONARY".into(), "true".into()));
    let late = start_peer(&[], &env_late);
    let theirs = get_json(&late.at("/p2p/contextionary")).unwrap();
    assert_eq!(theirs["hash"]["value"], network_md5.as_str(), "{theirs}");
    wait_full_lists(&[("first", &first), ("late", &late)], FORM);
}

#[test]
fn joining_needs_a_peer_name_and_a_public_url() {
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        (
            "WEFT_GENESIS_URL".to_string(),
            "http://127.0.0.1:1".to_string(),
        ),
        (
            "WEFT_DATA_DIR".to_string(),
            dir.path().display().to_string(),
        ),
    ];
    let (status, _, stderr) = serve_until_exit(&[], &env, Duration::from_secs(20));
    assert!(!status.success());
    let line = stderr.lines().last().unwrap_or_default();
    assert!(line.contains("network.peer_name"), "{line}");
    let mut env = env;
    env.push(("WEFT_PEER_NAME".into(), "not a label".into()));
    let (_, _, stderr) = serve_until_exit(&[], &env, Duration::from_secs(20));
    let line = stderr.lines().last().unwrap_or_default();
    assert!(
        line.contains("network.peer_name") && line.contains("DNS label"),
        "{line}"
    );
    env.pop();
    env.push(("WEFT_PEER_NAME".into(), "alpha".into()));
    let (_, _, stderr) = serve_until_exit(&[], &env, Duration::from_secs(20));
    let line = stderr.lines().last().unwrap_or_default();
    assert!(line.contains("network.public_url"), "{line}");
}
