//! A network entirely over HTTPS: a genesis and three peers as real processes on 127.0.0.1,
//! each serving TLS with a certificate of a test CA made here (rcgen), each trusting that CA
//! (`--ca-file` / `WEFT_CA_FILE`). They register, ping, answer a Network Get and a Fetch, and
//! one leaves; every message between them is signed as well.
//!
//! A peer that does not trust the CA refuses to start with one line saying so; a peer whose own
//! certificate another CA signed is never registered (the genesis cannot reach it), and says why
//! in one line of its log.
//!
//! Build first: `cargo build -p weft -p weft-dev-memory -p weft-contextionary` and
//! `scripts/fetch-test-contextionary.sh`.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use serde_json::{json, Value};
use weft_e2e_tests::{
    build_dir, serve_until_exit, test_contextionary, wait_for, weft_bin, ROOT_KEY, ROOT_TOKEN,
};

/// A CA and a server certificate it signed for 127.0.0.1 and localhost, written as PEM files.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn pki(dir: &Path, name: &str) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{name} test CA"));
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    let p = Pki {
        ca: dir.join(format!("{name}-ca.pem")),
        cert: dir.join(format!("{name}-cert.pem")),
        key: dir.join(format!("{name}-key.pem")),
    };
    std::fs::write(&p.ca, ca_cert.pem()).unwrap();
    std::fs::write(&p.cert, leaf.pem()).unwrap();
    std::fs::write(&p.key, leaf_key.serialize_pem()).unwrap();
    p
}

/// A child process, killed when dropped, with the URL it printed.
struct Proc {
    child: Child,
    url: String,
    stderr: PathBuf,
}

impl Proc {
    fn spawn(mut cmd: Command, prefix: &str, stderr: PathBuf) -> Proc {
        use std::io::BufRead;
        let log = std::fs::File::create(&stderr).unwrap();
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start weft");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let url = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(u) = line.strip_prefix(prefix) {
                        break u.trim_end_matches("/weaviate/v1").to_string();
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "no {prefix:?} line within 60 s; its log: {}",
                        std::fs::read_to_string(&stderr).unwrap_or_default()
                    );
                }
            }
        };
        Proc { child, url, stderr }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGTERM, then wait (at most 10 s).
    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client that trusts only the test CA.
fn client(ca: &Path) -> reqwest::blocking::Client {
    let pem = std::fs::read(ca).unwrap();
    reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn peer(
    dir: &Path,
    name: &str,
    genesis: &str,
    pki: &Pki,
    ca: &Path,
    extra: &[(&str, &str)],
) -> Proc {
    let mut cmd = Command::new(weft_bin());
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--plugin-dir"])
        .arg(build_dir())
        .env_remove("WEFT_CONFIG_FILE")
        .env("WEFT_DATABASE", "dev-memory")
        .env("WEFT_LOG", "info")
        .env("WEFT_ROOT_KEY", ROOT_KEY)
        .env("WEFT_ROOT_TOKEN", ROOT_TOKEN)
        .env("WEFT_PEER_NAME", name)
        .env("WEFT_PUBLIC_URL", "https://127.0.0.1:0")
        .env("WEFT_GENESIS_URL", genesis)
        .env("WEFT_PING_INTERVAL_S", "0.5")
        .env("WEFT_DATA_DIR", dir.join(name))
        .env("WEFT_CONTEXTIONARY", test_contextionary())
        .env("WEFT_SHARE_KEY", ROOT_KEY)
        .env("WEFT_TLS_CERT", &pki.cert)
        .env("WEFT_TLS_KEY", &pki.key)
        .env("WEFT_CA_FILE", ca);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    Proc::spawn(cmd, "weft: listening on ", dir.join(format!("{name}.log")))
}

fn call(
    c: &reqwest::blocking::Client,
    method: &str,
    url: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = c
        .request(m, url)
        .header("X-API-KEY", ROOT_KEY)
        .header("X-API-TOKEN", ROOT_TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn names(list: &Value, field: &str) -> Vec<String> {
    let mut v: Vec<String> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p[field].as_str().map(str::to_string))
        .collect();
    v.sort();
    v
}

#[test]
fn a_genesis_and_three_peers_work_entirely_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let net = pki(dir.path(), "network");
    let c = client(&net.ca);
    let mut genesis_cmd = Command::new(weft_bin());
    genesis_cmd
        .args([
            "genesis",
            "--listen",
            "127.0.0.1:0",
            "--liveness-timeout",
            "30",
        ])
        .arg("--data-dir")
        .arg(dir.path().join("genesis"))
        .arg("--tls-cert")
        .arg(&net.cert)
        .arg("--tls-key")
        .arg(&net.key)
        .arg("--ca-file")
        .arg(&net.ca)
        .env("WEFT_LOG", "info");
    let genesis = Proc::spawn(
        genesis_cmd,
        "weft genesis: listening on ",
        dir.path().join("genesis.log"),
    );
    assert!(
        genesis.url.starts_with("https://127.0.0.1:"),
        "{}",
        genesis.url
    );

    let beta = peer(dir.path(), "beta", &genesis.url, &net, &net.ca, &[]);
    let mut gamma = peer(dir.path(), "gamma", &genesis.url, &net, &net.ca, &[]);
    // alpha queries beta with a key of beta's (Weaviate 0.12's `network.peers`).
    let config = dir.path().join("alpha.json");
    std::fs::write(
        &config,
        json!({"environments": [{"name": "default", "network": {
            "peers": [{"url": beta.url, "api_key": ROOT_KEY, "api_token": ROOT_TOKEN}]}}]})
        .to_string(),
    )
    .unwrap();
    let config = config.display().to_string();
    let alpha = peer(
        dir.path(),
        "alpha",
        &genesis.url,
        &net,
        &net.ca,
        &[("WEFT_CONFIG_FILE", config.as_str())],
    );
    for p in [&alpha, &beta, &gamma] {
        assert!(p.url.starts_with("https://127.0.0.1:"), "{}", p.url);
    }
    // Registered over HTTPS (the genesis reached each peer's ping over HTTPS, with its key).
    let registered = wait_for(Duration::from_secs(60), || {
        names(
            &call(&c, "GET", &format!("{}/peers", genesis.url), None).1,
            "peerName",
        ) == ["alpha", "beta", "gamma"]
    });
    assert!(
        registered.is_some(),
        "not every peer registered over HTTPS; genesis log:\n{}",
        genesis.log()
    );
    let listed = call(&c, "GET", &format!("{}/peers", genesis.url), None).1;
    for p in listed.as_array().unwrap() {
        assert!(
            p["peerUri"].as_str().unwrap().starts_with("https://"),
            "{p}"
        );
        assert!(
            p["identity"].as_str().unwrap().starts_with("ed25519:"),
            "{p}"
        );
    }
    // The pushed lists (signed, over HTTPS) reached everyone, with every schema downloaded.
    let full = wait_for(Duration::from_secs(60), || {
        [&alpha, &beta, &gamma].iter().all(|p| {
            let known = call(&c, "GET", &format!("{}/weaviate/v1/p2p/peers", p.url), None).1;
            known
                .as_array()
                .is_some_and(|a| a.len() == 2 && a.iter().all(|k| k["schemaDownloaded"] == true))
        })
    });
    assert!(
        full.is_some(),
        "the peers' lists did not fill; alpha log:\n{}",
        alpha.log()
    );

    // Objects on beta; alpha asks the network for them.
    let (s, b) = call(
        &c,
        "POST",
        &format!("{}/weaviate/v1/schema/things", beta.url),
        Some(json!({"class": "City", "properties": [
            {"name": "name", "@dataType": ["string"]},
            {"name": "population", "@dataType": ["int"]}]})),
    );
    assert!((200..300).contains(&s), "{s} {b}");
    for (name, population) in [("Berlin", 3_600_000), ("Paris", 2_100_000)] {
        let (s, b) = call(
            &c,
            "POST",
            &format!("{}/weaviate/v1/things", beta.url),
            Some(json!({"thing": {"@context": "", "@class": "City",
                "schema": {"name": name, "population": population}}})),
        );
        assert!((200..300).contains(&s), "{s} {b}");
    }
    let get = r#"{ Network(networkTimeout: 10) { Get { beta { Things { City { name } } } } } }"#;
    let mut last = Value::Null;
    let answered = wait_for(Duration::from_secs(60), || {
        let (_, b) = call(
            &c,
            "POST",
            &format!("{}/weaviate/v1/graphql", alpha.url),
            Some(json!({ "query": get })),
        );
        last = b;
        names(
            &last["data"]["Network"]["Get"]["beta"]["Things"]["City"],
            "name",
        ) == ["Berlin", "Paris"]
    });
    assert!(answered.is_some(), "Network Get over HTTPS: {last}");
    let fetch = r#"{ Network(networkTimeout: 10) { Fetch { Things(where: {class: [{name: "Town", certainty: 0.6}]}) { beacon peer class } } } }"#;
    let (_, b) = call(
        &c,
        "POST",
        &format!("{}/weaviate/v1/graphql", alpha.url),
        Some(json!({ "query": fetch })),
    );
    let found = b["data"]["Network"]["Fetch"]["Things"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(b["errors"].is_null(), "{b}");
    assert_eq!(found.len(), 2, "Fetch over HTTPS: {b}");
    assert!(
        found
            .iter()
            .all(|f| f["peer"] == "beta" && f["class"] == "City"),
        "{b}"
    );

    // gamma leaves (a signed DELETE over HTTPS): the genesis drops it at once, long before its
    // liveness timeout (30 s).
    gamma.terminate();
    let left = wait_for(Duration::from_secs(10), || {
        names(
            &call(&c, "GET", &format!("{}/peers", genesis.url), None).1,
            "peerName",
        ) == ["alpha", "beta"]
    });
    assert!(
        left.is_some(),
        "gamma did not leave; genesis log:\n{}",
        genesis.log()
    );
    assert!(
        gamma.log().contains("left the network"),
        "gamma's log:\n{}",
        gamma.log()
    );

    // A peer that does not trust the network's CA refuses to start, in one line saying why.
    let (status, _, stderr) = serve_until_exit(
        &[],
        &[
            ("WEFT_PEER_NAME".into(), "delta".into()),
            ("WEFT_PUBLIC_URL".into(), "http://127.0.0.1:0".into()),
            ("WEFT_GENESIS_URL".into(), genesis.url.clone()),
            (
                "WEFT_DATA_DIR".into(),
                dir.path().join("delta").display().to_string(),
            ),
        ],
        Duration::from_secs(60),
    );
    assert!(!status.success(), "{stderr}");
    let last_line = stderr
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or_default();
    assert!(
        last_line.starts_with("weft: ")
            && last_line.contains("TLS certificate is not trusted")
            && last_line.contains("network.ca_file"),
        "{stderr}"
    );

    // A peer whose own certificate another CA signed trusts the network but is not trusted by
    // it: the genesis cannot reach it, so it is never registered, and its log says, in one line,
    // that the genesis did not get the echo.
    let rogue = pki(dir.path(), "rogue");
    let epsilon = peer(dir.path(), "epsilon", &genesis.url, &rogue, &net.ca, &[]);
    let refused = wait_for(Duration::from_secs(30), || {
        epsilon.log().contains("the peer did not answer the echo")
    });
    assert!(refused.is_some(), "epsilon's log:\n{}", epsilon.log());
    assert_eq!(
        names(
            &call(&c, "GET", &format!("{}/peers", genesis.url), None).1,
            "peerName"
        ),
        ["alpha", "beta"]
    );
    assert!(
        genesis.log().contains("certificate is not trusted"),
        "the genesis's own log names the reason: {}",
        genesis.log()
    );
    drop((alpha, beta, epsilon));
}
