//! Shared helpers for the end-to-end tests: where the built binary and plugins are.
//!
//! The tests use what `scripts/test.sh` builds: `cargo build --workspace` (the `weft` binary and
//! the workspace's plugin libraries in `target/debug`) and `scripts/build-test-plugins.sh` (the
//! fixture plugins in `target/fixtures`).
use std::path::PathBuf;

/// The cargo target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

fn must_exist(p: PathBuf, how: &str) -> PathBuf {
    assert!(p.exists(), "{} is missing: {how}", p.display());
    p
}

/// `target/debug`, where the workspace's binary and plugins are.
pub fn build_dir() -> PathBuf {
    target_dir().join("debug")
}

/// The `weft` binary.
pub fn weft_bin() -> PathBuf {
    must_exist(
        build_dir().join("weft"),
        "run `cargo build --workspace` (scripts/test.sh does)",
    )
}

/// The dev-memory plugin library.
pub fn dev_memory_so() -> PathBuf {
    must_exist(
        build_dir().join("libweft_dev_memory.so"),
        "run `cargo build --workspace` (scripts/test.sh does)",
    )
}

/// A fixture plugin from `target/fixtures` (`test-panicky`, `interface-1-0`, `interface-2-0`).
pub fn fixture_so(name: &str) -> PathBuf {
    must_exist(
        target_dir().join("fixtures").join(format!("{name}.so")),
        "run scripts/build-test-plugins.sh (scripts/test.sh does)",
    )
}

/// The connector a [`Server`] runs on: dev-memory, or the one `WEFT_TEST_DATABASE` names with the
/// config `WEFT_TEST_DATABASE_CONFIG`, in which every `{unique}` becomes a name no other server of
/// this run uses (a fresh Cassandra keyspace, a fresh Gremlin namespace). `scripts/test.sh` runs
/// the REST, GraphQL and concurrency end-to-end tests once more through each real-server
/// connector this way.
pub fn test_database() -> (String, Option<String>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    match std::env::var("WEFT_TEST_DATABASE") {
        Ok(name) if !name.is_empty() && name != "dev-memory" => {
            let config = std::env::var("WEFT_TEST_DATABASE_CONFIG").unwrap_or_default();
            let unique = format!(
                "e2e_{}_{}_{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() % 1_000_000),
                N.fetch_add(1, Ordering::Relaxed)
            );
            (name, Some(config.replace("{unique}", &unique)))
        }
        _ => ("dev-memory".into(), None),
    }
}

/// Runs `f(i)` on `n` real threads released together (a barrier); their answers in thread
/// order.
pub fn on_threads<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = std::sync::Barrier::new(n);
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..n)
            .map(|i| {
                let (f, barrier) = (&f, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    f(i)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// The root key id the test servers are started with (`WEFT_ROOT_KEY`).
pub const ROOT_KEY: &str = "0b1d3a3e-7d2b-4c55-9c1e-6f3f0a000001";
/// The root token the test servers are started with (`WEFT_ROOT_TOKEN`).
pub const ROOT_TOKEN: &str = "0b1d3a3e-7d2b-4c55-9c1e-6f3f0a000002";

/// A running `weft serve` on 127.0.0.1 with a free port; killed when dropped.
pub struct Server {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT/weaviate/v1`.
    pub url: String,
    /// What the server printed on stdout before it listened (e.g. `ROOTKEY=…`).
    pub early_stdout: Vec<String>,
}

impl Server {
    /// Starts the real binary with the dev-memory plugin from `target/debug`.
    pub fn start() -> Server {
        Self::start_with(&[], &[])
    }

    /// Starts it with extra arguments and environment variables.
    pub fn start_with(args: &[&str], envs: &[(&str, &str)]) -> Server {
        Self::spawn(args, envs, true)
    }

    /// Starts it without `WEFT_ROOT_KEY`/`WEFT_ROOT_TOKEN`, so it makes and prints a root key.
    pub fn start_generating_root() -> Server {
        Self::spawn(&[], &[], false)
    }

    /// Starts it on the plugin directory `dir` with `--database database` (e.g. a fixture).
    pub fn start_on(dir: &std::path::Path, database: &str) -> Server {
        Self::spawn_in(dir, &["--database", database], &[], true)
    }

    fn spawn(args: &[&str], envs: &[(&str, &str)], fixed_root: bool) -> Server {
        dev_memory_so();
        Self::spawn_in(&build_dir(), args, envs, fixed_root)
    }

    fn spawn_in(
        dir: &std::path::Path,
        args: &[&str],
        envs: &[(&str, &str)],
        fixed_root: bool,
    ) -> Server {
        use std::io::BufRead;
        let mut cmd = std::process::Command::new(weft_bin());
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--plugin-dir"])
            .arg(dir)
            .args(args)
            .env_remove("WEFT_CONFIG_FILE")
            .env_remove("WEFT_LISTEN")
            .env_remove("WEFT_PLUGIN_DIR")
            .env_remove("WEFT_DATABASE_CONFIG")
            .env(
                "WEFT_LOG",
                std::env::var("WEFT_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env_remove("WEFT_ROOT_KEY")
            .env_remove("WEFT_ROOT_TOKEN")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit());
        for var in P2P_ENV {
            cmd.env_remove(var);
        }
        if fixed_root {
            cmd.env("WEFT_ROOT_KEY", ROOT_KEY)
                .env("WEFT_ROOT_TOKEN", ROOT_TOKEN);
        }
        // dev-memory, not the persistent default, unless the run names another connector
        // (`--database` in `args` wins over both).
        if args.contains(&"--database") {
            cmd.env("WEFT_DATABASE", "dev-memory");
        } else {
            let (database, config) = test_database();
            cmd.env("WEFT_DATABASE", database);
            if let Some(config) = config {
                cmd.env("WEFT_DATABASE_CONFIG", config);
            }
        }
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start weft");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut early_stdout = vec![];
        let url = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => match line.strip_prefix("weft: listening on ") {
                    Some(url) => break url.to_string(),
                    None => early_stdout.push(line),
                },
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "weft did not report its address within 30 s; it printed {early_stdout:?}"
                    );
                }
            }
        };
        Server {
            child,
            url,
            early_stdout,
        }
    }

    /// `url` + `path`.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

impl Server {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL (no shutdown of any kind) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits (at most `timeout`) for the process to exit; its exit status.
    pub fn terminate(&mut self, timeout: std::time::Duration) -> Option<std::process::ExitStatus> {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Whether the process is still running (without reaping it: `kill -0`).
    pub fn is_running_ref(&self) -> bool {
        std::process::Command::new("kill")
            .args(["-0", &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test contextionary (the 20,000 most frequent GloVe words), made by
/// `scripts/fetch-test-contextionary.sh`, or `WEFT_TEST_CONTEXTIONARY`.
pub fn test_contextionary() -> PathBuf {
    let p = std::env::var_os("WEFT_TEST_CONTEXTIONARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("contextionary/glove-top20000.fifu"));
    must_exist(
        p,
        "run scripts/fetch-test-contextionary.sh (scripts/test.sh does)",
    )
}

/// A key id and its token.
#[derive(Clone, Debug)]
pub struct Creds {
    /// `X-API-KEY`.
    pub key: String,
    /// `X-API-TOKEN`.
    pub token: String,
}

impl Creds {
    /// The root key the test servers are started with.
    pub fn root() -> Creds {
        Creds {
            key: ROOT_KEY.into(),
            token: ROOT_TOKEN.into(),
        }
    }
}

/// A JSON client of one running server. Every 4xx/5xx answer it sees must carry the contract's
/// error body `{"error":[{"message": "…"}]}` with a non-empty message.
pub struct Api {
    /// The server.
    pub server: Server,
    /// The HTTP client.
    pub http: reqwest::blocking::Client,
}

impl Api {
    /// A client of `server`.
    pub fn new(server: Server) -> Api {
        Api {
            server,
            http: reqwest::blocking::Client::builder()
                .timeout(std::time::Duration::from_secs(120))
                .build()
                .expect("an HTTP client"),
        }
    }

    /// `method path` with exactly these headers, through `http`.
    pub fn raw(
        &self,
        http: &reqwest::blocking::Client,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        let mut req = http.request(m, self.server.at(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().expect("the request is answered");
        let status = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        let body = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        };
        if status >= 400 {
            assert_error_shape(method, path, status, &body);
        }
        (status, body)
    }

    /// `method path` as `c`.
    pub fn call(
        &self,
        c: &Creds,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let headers = [
            ("X-API-KEY", c.key.as_str()),
            ("X-API-TOKEN", c.token.as_str()),
        ];
        self.raw(&self.http, method, path, &headers, body.as_ref())
    }

    /// `method path` as `c`, which must succeed; its body.
    pub fn ok_as(
        &self,
        c: &Creds,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let (s, b) = self.call(c, method, path, body);
        assert!(
            (200..300).contains(&s),
            "{method} {path} as {} answered {s}: {b}",
            c.key
        );
        b
    }

    /// `method path` as the root key.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        self.call(&Creds::root(), method, path, body)
    }

    /// `method path` as the root key, which must succeed; its body.
    pub fn ok(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        self.ok_as(&Creds::root(), method, path, body)
    }

    /// `GET path` as the root key.
    pub fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.send("GET", path, None)
    }

    /// `POST path` as the root key.
    pub fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.send("POST", path, Some(body))
    }

    /// A new child of `parent` with `spec` (`POST /keys`).
    pub fn child(&self, parent: &Creds, spec: serde_json::Value) -> Creds {
        let b = self.ok_as(parent, "POST", "/keys", Some(spec));
        Creds {
            key: b["keyId"].as_str().expect("keyId").into(),
            token: b["token"].as_str().expect("token").into(),
        }
    }
}

/// Every 4xx/5xx carries `{"error":[{"message": "…"}]}` with a non-empty message.
pub fn assert_error_shape(method: &str, path: &str, status: u16, body: &serde_json::Value) {
    let msgs = body["error"].as_array().unwrap_or_else(|| {
        panic!("{method} {path} answered {status} without the contract's error body: {body}")
    });
    assert!(!msgs.is_empty(), "{method} {path}: empty error list");
    for m in msgs {
        let text = m["message"].as_str().unwrap_or_default();
        assert!(
            !text.is_empty(),
            "{method} {path}: error without a message: {body}"
        );
    }
}

/// The first error message of an error body.
pub fn message(body: &serde_json::Value) -> String {
    body["error"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// P2P: genesis servers and peers as real processes.

/// The environment variables of the P2P settings, removed from every server the tests start
/// unless a test sets them.
pub const P2P_ENV: [&str; 7] = [
    "WEFT_PEER_NAME",
    "WEFT_GENESIS_URL",
    "WEFT_BOOTSTRAPPED_PEERS",
    "WEFT_FIRST_PEER",
    "WEFT_REQUEST_CONTEXTIONARY",
    "WEFT_PING_INTERVAL_S",
    "WEFT_DATA_DIR",
];

/// A running `weft genesis` on 127.0.0.1; killed (SIGKILL) when dropped.
pub struct GenesisServer {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its port.
    pub port: u16,
}

impl GenesisServer {
    /// Starts `weft genesis --listen 127.0.0.1:0 ARGS` (e.g. `--liveness-timeout 1.5`).
    pub fn start(args: &[&str]) -> GenesisServer {
        Self::start_on(0, args)
    }

    /// Starts it on `port` (0: any free port), e.g. again on the port of one stopped.
    pub fn start_on(port: u16, args: &[&str]) -> GenesisServer {
        use std::io::BufRead;
        let mut child = std::process::Command::new(weft_bin())
            .args(["genesis", "--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .env(
                "WEFT_LOG",
                std::env::var("WEFT_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("start weft genesis");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut printed = vec![];
        let url = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => match line.strip_prefix("weft genesis: listening on ") {
                    Some(url) => break url.trim_end_matches('/').to_string(),
                    None => printed.push(line),
                },
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("weft genesis did not report its address within 30 s; it printed {printed:?}");
                }
            }
        };
        let port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {url}"));
        GenesisServer { child, url, port }
    }

    /// Kills it with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `GET /peers`: the names of the registered peers, sorted.
    pub fn peer_names(&self) -> Vec<String> {
        let b = get_json(&format!("{}/peers", self.url)).unwrap_or_default();
        let mut names: Vec<String> = b
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["peerName"].as_str().map(str::to_string))
            .collect();
        names.sort();
        names
    }
}

impl Drop for GenesisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A blocking client for the P2P tests: no proxy, 5 s per request.
pub fn p2p_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .expect("an HTTP client")
}

/// `GET url` without a key: the JSON body of a 2xx answer, else `None`.
pub fn get_json(url: &str) -> Option<serde_json::Value> {
    let r = p2p_client().get(url).send().ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().ok()
}

/// The environment of a peer named `name`: its public URL is `http://127.0.0.1:0` (the port it
/// binds), its data directory `data_dir`, its ping interval `ping_interval_s`.
pub fn peer_env(
    name: &str,
    data_dir: &std::path::Path,
    ping_interval_s: &str,
) -> Vec<(String, String)> {
    vec![
        ("WEFT_PEER_NAME".into(), name.into()),
        ("WEFT_PUBLIC_URL".into(), "http://127.0.0.1:0".into()),
        ("WEFT_PING_INTERVAL_S".into(), ping_interval_s.into()),
        ("WEFT_DATA_DIR".into(), data_dir.display().to_string()),
    ]
}

/// Starts a peer (`weft serve` with dev-memory) with `env` and `args`.
pub fn start_peer(args: &[&str], env: &[(String, String)]) -> Server {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Server::start_with(args, &env)
}

impl Server {
    /// The server's base URL, `http://127.0.0.1:PORT` (what peers know it by).
    pub fn base(&self) -> String {
        self.url.trim_end_matches("/weaviate/v1").to_string()
    }

    /// `GET /weaviate/v1/p2p/peers` without a key: the known peers' names, sorted (empty when
    /// the request fails).
    pub fn known_peers(&self) -> Vec<String> {
        let b = get_json(&self.at("/p2p/peers")).unwrap_or_default();
        let mut names: Vec<String> = b
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["name"].as_str().map(str::to_string))
            .collect();
        names.sort();
        names
    }
}

/// Runs `weft serve` (dev-memory, 127.0.0.1:0) with `args` and `env` until it exits (at most
/// `timeout`, else it is killed and this panics): its exit status, stdout and stderr.
pub fn serve_until_exit(
    args: &[&str],
    env: &[(String, String)],
    timeout: std::time::Duration,
) -> (std::process::ExitStatus, String, String) {
    use std::io::Read;
    dev_memory_so();
    let mut cmd = std::process::Command::new(weft_bin());
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--plugin-dir"])
        .arg(build_dir())
        .args(args)
        .env_remove("WEFT_CONFIG_FILE")
        .env_remove("WEFT_LISTEN")
        .env_remove("WEFT_PLUGIN_DIR")
        .env("WEFT_DATABASE", "dev-memory") // not the persistent default
        .env("WEFT_LOG", "warn")
        .env("WEFT_ROOT_KEY", ROOT_KEY)
        .env("WEFT_ROOT_TOKEN", ROOT_TOKEN)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for var in P2P_ENV {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start weft");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("weft serve did not exit within {timeout:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    (
        status,
        out_t.join().unwrap_or_default(),
        err_t.join().unwrap_or_default(),
    )
}

/// A second, smaller contextionary (the 2,000 most frequent GloVe words): another content hash
/// than [`test_contextionary`]'s. `WEFT_TEST_CONTEXTIONARY_SMALL`, else
/// `target/contextionary/glove-top2000.fifu`, made with `weft contextionary fetch --top 2000`
/// when missing (from the package cache `scripts/fetch-test-contextionary.sh` filled).
pub fn small_test_contextionary() -> PathBuf {
    if let Some(p) = std::env::var_os("WEFT_TEST_CONTEXTIONARY_SMALL") {
        return must_exist(
            PathBuf::from(p),
            "WEFT_TEST_CONTEXTIONARY_SMALL names no file",
        );
    }
    let p = target_dir().join("contextionary/glove-top2000.fifu");
    let mut index = p.as_os_str().to_owned();
    index.push(".hnsw");
    if !p.exists() || !PathBuf::from(index).exists() {
        let out = std::process::Command::new(weft_bin())
            .args(["contextionary", "fetch", "--top", "2000", "--out"])
            .arg(&p)
            .output()
            .expect("run weft contextionary fetch");
        assert!(
            out.status.success(),
            "weft contextionary fetch --top 2000 --out {} failed: {}",
            p.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    must_exist(p, "weft contextionary fetch --top 2000 did not write it")
}

/// Polls `check` every 50 ms until it holds or `timeout` passes; how long it took, or `None`.
pub fn wait_for(
    timeout: std::time::Duration,
    mut check: impl FnMut() -> bool,
) -> Option<std::time::Duration> {
    let start = std::time::Instant::now();
    loop {
        if check() {
            return Some(start.elapsed());
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

impl Server {
    /// The server's resident memory now, in KiB (from /proc).
    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}
