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

/// The real servers the distributed connectors' suites use, each as (variable, what it is, how
/// to start it): `scripts/real-servers.sh` starts them and prints the variables (`.ci/run` does).
pub const REAL_SERVERS: [(&str, &str, &str); 4] = [
    (
        "WEFT_CASSANDRA_CONTACT_POINTS",
        "Cassandra",
        "scripts/real-servers.sh start cassandra",
    ),
    (
        "WEFT_GREMLIN_URL",
        "Gremlin Server (TinkerGraph)",
        "scripts/real-servers.sh start gremlin",
    ),
    (
        "WEFT_JANUSGRAPH_URL",
        "JanusGraph",
        "scripts/real-servers.sh start janusgraph",
    ),
    (
        "WEFT_CASSANDRA_AUTH_CONTACT_POINTS",
        "a Cassandra that asks for a login",
        "WEFT_CASSANDRA_AUTHENTICATOR=PasswordAuthenticator scripts/real-servers.sh start cassandra, on another port and run folder",
    ),
];

/// Whether every real server is required (`WEFT_REQUIRE_REAL_SERVERS=1`, as `.ci/run` sets):
/// then a real-server test whose variable is missing fails instead of skipping.
pub fn real_servers_required() -> bool {
    std::env::var("WEFT_REQUIRE_REAL_SERVERS").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The value of the real server variable `var` (one of [`REAL_SERVERS`]), or `None` after
/// printing that `test` skips that server; when [`real_servers_required`], a missing variable
/// fails the test instead.
pub fn real_server(test: &str, var: &str) -> Option<String> {
    let (_, what, how) = REAL_SERVERS
        .iter()
        .find(|(v, _, _)| *v == var)
        .unwrap_or_else(|| panic!("{var} is not one of REAL_SERVERS"));
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ => {
            assert!(
                !real_servers_required(),
                "{test}: {var} is not set ({how}), and WEFT_REQUIRE_REAL_SERVERS=1 does not let {what} be skipped"
            );
            eprintln!("{test}: skipping {what}: {var} is not set ({how})");
            None
        }
    }
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

    /// [`Server::start_on`] with more arguments.
    pub fn start_on_with(dir: &std::path::Path, database: &str, args: &[&str]) -> Server {
        let mut all = vec!["--database", database];
        all.extend_from_slice(args);
        Self::spawn_in(dir, &all, &[], true)
    }

    /// Starts it with extra arguments and environment variables, its command changed by
    /// `configure` before it is spawned (e.g. resource limits set in `pre_exec`).
    pub fn start_configured(
        args: &[&str],
        envs: &[(&str, &str)],
        configure: impl FnOnce(&mut std::process::Command),
    ) -> Server {
        dev_memory_so();
        Self::spawn_in_configured(&build_dir(), args, envs, true, configure)
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
        Self::spawn_in_configured(dir, args, envs, fixed_root, |_| {})
    }

    fn spawn_in_configured(
        dir: &std::path::Path,
        args: &[&str],
        envs: &[(&str, &str)],
        fixed_root: bool,
        configure: impl FnOnce(&mut std::process::Command),
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
        configure(&mut cmd);
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

/// Every 4xx/5xx carries `{"error":[{"message": "…"}]}` with a non-empty message. Read from the
/// JSON itself, not through `weft_peer_protocol::wire::ErrorBody`: this checks the wire shape
/// that type produces, so it must not take the type's word for it (so does [`message`]).
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
pub const P2P_ENV: [&str; 14] = [
    "WEFT_PEER_NAME",
    "WEFT_GENESIS_URL",
    "WEFT_BOOTSTRAPPED_PEERS",
    "WEFT_FIRST_PEER",
    "WEFT_REQUEST_CONTEXTIONARY",
    "WEFT_PING_INTERVAL_S",
    "WEFT_DATA_DIR",
    "WEFT_SHARE_KEY",
    "WEFT_GENESIS_KEY",
    "WEFT_ACCEPT_UNSIGNED_PEERS",
    "WEFT_CA_FILE",
    "WEFT_TLS_CERT",
    "WEFT_TLS_KEY",
    "WEFT_PUBLIC_URL",
];

/// A running `weft genesis` on 127.0.0.1; killed (SIGKILL) when dropped.
pub struct GenesisServer {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its port.
    pub port: u16,
    /// Its public key as it printed it (`weft genesis: identity ed25519:…`).
    pub identity: String,
    /// Its data directory (its `identity.key`, the peers' keys): `--data-dir` when the arguments
    /// name one, else a temporary directory kept as long as this value.
    pub data_dir: PathBuf,
    args: Vec<String>,
    _dir: Option<std::sync::Arc<tempfile::TempDir>>,
}

impl GenesisServer {
    /// Starts `weft genesis --listen 127.0.0.1:0 ARGS` (e.g. `--liveness-timeout 1.5`), with a
    /// fresh temporary `--data-dir` unless `args` name one.
    pub fn start(args: &[&str]) -> GenesisServer {
        Self::start_on(0, args)
    }

    /// Starts it like [`GenesisServer::start`], its command changed by `configure` before it is
    /// spawned (e.g. resource limits set in `pre_exec`).
    pub fn start_configured(
        args: &[&str],
        configure: impl FnOnce(&mut std::process::Command),
    ) -> GenesisServer {
        let t = tempfile::tempdir().expect("a temporary directory");
        let data_dir = t.path().to_path_buf();
        let args = args.iter().map(|a| a.to_string()).collect();
        Self::spawn_configured(0, args, data_dir, Some(std::sync::Arc::new(t)), configure)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts it on `port` (0: any free port), e.g. again on the port of one stopped.
    pub fn start_on(port: u16, args: &[&str]) -> GenesisServer {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let named = args
            .iter()
            .position(|a| a == "--data-dir")
            .and_then(|i| args.get(i + 1))
            .map(PathBuf::from);
        let (data_dir, dir) = match named {
            Some(d) => (d, None),
            None => {
                let t = tempfile::tempdir().expect("a temporary directory");
                (t.path().to_path_buf(), Some(std::sync::Arc::new(t)))
            }
        };
        Self::spawn(port, args, data_dir, dir)
    }

    fn spawn(
        port: u16,
        args: Vec<String>,
        data_dir: PathBuf,
        dir: Option<std::sync::Arc<tempfile::TempDir>>,
    ) -> GenesisServer {
        Self::spawn_configured(port, args, data_dir, dir, |_| {})
    }

    fn spawn_configured(
        port: u16,
        args: Vec<String>,
        data_dir: PathBuf,
        dir: Option<std::sync::Arc<tempfile::TempDir>>,
        configure: impl FnOnce(&mut std::process::Command),
    ) -> GenesisServer {
        use std::io::BufRead;
        let mut cmd = std::process::Command::new(weft_bin());
        cmd.args(["genesis", "--listen", &format!("127.0.0.1:{port}")])
            .args(&args);
        configure(&mut cmd);
        if !args.iter().any(|a| a == "--data-dir") {
            cmd.arg("--data-dir").arg(&data_dir);
        }
        let mut child = cmd
            .env(
                "WEFT_LOG",
                std::env::var("WEFT_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env_remove("WEFT_GENESIS_ADMIN_KEY")
            .env_remove("WEFT_GENESIS_ADMIN_TOKEN")
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
        let mut identity = None;
        let url = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("weft genesis: listening on ") {
                        break url.trim_end_matches('/').to_string();
                    }
                    if let Some(k) = line.strip_prefix("weft genesis: identity ") {
                        identity = Some(k.trim().to_string());
                    }
                    printed.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("weft genesis did not report its address within 30 s; it printed {printed:?}");
                }
            }
        };
        let identity = identity.unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "weft genesis did not print its identity before listening; it printed {printed:?}"
            )
        });
        let port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {url}"));
        GenesisServer {
            child,
            url,
            port,
            identity,
            data_dir,
            args,
            _dir: dir,
        }
    }

    /// Kills it (SIGKILL) and starts it again on the same port with the same arguments and data
    /// directory (so with the same identity).
    pub fn restart(&mut self) {
        self.kill();
        let again = Self::spawn(
            self.port,
            self.args.clone(),
            self.data_dir.clone(),
            self._dir.clone(),
        );
        let old = std::mem::replace(self, again);
        drop(old);
    }

    /// Its signing key, read from its data directory (to sign as the genesis).
    pub fn signing_identity(&self) -> weft_peer_protocol::Identity {
        identity_in(&self.data_dir)
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
    // Tests of one binary run in parallel: one of them makes the files, the others wait for it.
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _making = MAKING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
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

// ---------------------------------------------------------------------------------------------
// Signed calls, and peers played by the tests themselves.

pub use weft_peer_protocol::signature::Verified;
pub use weft_peer_protocol::{Identity, PublicKey};

/// The identity a server keeps in `dir` (`identity.key`), which must exist: to sign as that
/// server (what only its operator could do).
pub fn identity_in(dir: &std::path::Path) -> Identity {
    let (identity, made) = Identity::load_or_create(dir)
        .unwrap_or_else(|e| panic!("the identity in {}: {e}", dir.display()));
    assert!(!made, "{} held no identity yet", dir.display());
    identity
}

/// What a call got back.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status.
    pub status: u16,
    /// The JSON body (`Null` when empty, a string when it is no JSON).
    pub body: serde_json::Value,
    /// The headers.
    pub headers: reqwest::header::HeaderMap,
    /// Who signed the answer, its signature verified against the request's (`None`: unsigned,
    /// or the request was not signed).
    pub signer: Option<Verified>,
}

impl Reply {
    /// The key the answer was signed with.
    pub fn signer_key(&self) -> Option<PublicKey> {
        self.signer.as_ref().map(|v| v.key)
    }

    /// The first error message.
    pub fn message(&self) -> String {
        message(&self.body)
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

/// `method url` with `body` through `http`, signed as the peer `name` with `identity` when
/// `sign` is given (the answer's signature is checked against the request's: a bad one panics).
/// Every 4xx/5xx must carry the contract's error body.
pub fn signed_call(
    http: &reqwest::blocking::Client,
    sign: Option<(&Identity, &str)>,
    method: &str,
    url: &str,
    body: Option<&serde_json::Value>,
) -> Reply {
    use weft_peer_protocol::signature::{self, Target};
    let parsed = reqwest::Url::parse(url).unwrap_or_else(|e| panic!("{url:?}: {e}"));
    let bytes = body
        .map(|b| serde_json::to_vec(b).expect("JSON"))
        .unwrap_or_default();
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
    let mut req = http.request(m, parsed.clone());
    let mut request_signature = None;
    if let Some((identity, name)) = sign {
        let authority = signature::authority_of(&parsed);
        let target = Target {
            method,
            authority: &authority,
            path: parsed.path(),
            query: parsed.query(),
        };
        let h = signature::sign_request(
            identity,
            name,
            &target,
            &bytes,
            weft_peer_protocol::client::now_s(),
        )
        .expect("a signable request");
        for (k, v) in h.pairs() {
            req = req.header(k, v);
        }
        request_signature = Some(h.signature_value().to_string());
    }
    if body.is_some() {
        req = req.header("content-type", "application/json").body(bytes);
    }
    let resp = req
        .send()
        .unwrap_or_else(|e| panic!("{method} {url} is not answered: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let raw = resp.bytes().unwrap_or_default();
    let signer = request_signature.and_then(|s| {
        signature::verify_response(
            status,
            &headers,
            &raw,
            &s,
            weft_peer_protocol::client::now_s(),
        )
        .unwrap_or_else(|e| panic!("{method} {url}: the answer's signature is bad: {e}"))
    });
    let body = if raw.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&raw).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&raw).into_owned())
        })
    };
    if status >= 400 {
        assert_error_shape(method, url, status, &body);
    }
    Reply {
        status,
        body,
        headers,
        signer,
    }
}

/// A request a [`FakePeer`] received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Its path, e.g. `/weaviate/v1/peers/answers/<id>`.
    pub path: String,
    /// Its JSON body (`Null` when empty or no JSON).
    pub body: serde_json::Value,
    /// Its body's bytes as received.
    pub raw: Vec<u8>,
    /// Its headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// Who signed it (verified by the fake's middleware, as a real peer's would).
    pub signer: Option<Verified>,
}

impl Received {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// How a [`FakePeer`] behaves beyond a well-behaved peer.
#[derive(Default)]
pub struct FakeOptions {
    /// Its identity (default: a new one).
    pub identity: Option<Identity>,
    /// Sign its answers with this key instead of its own (answering for somebody else).
    pub answer_identity: Option<Identity>,
    /// Answer `GET /peers/echo` with this status and body instead of an echo.
    pub echo: Option<(u16, String)>,
    /// The local address its client sends from (e.g. `127.0.0.2`: another network address).
    pub client_address: Option<std::net::IpAddr>,
    /// Wait this long before answering a posted answer (`POST /peers/answers/{id}`): a slow
    /// asker, which keeps the answering peer busy.
    pub answers_delay: Option<std::time::Duration>,
}

struct FakeState {
    name: String,
    id: String,
    identity: String,
    base: String,
    echo: Option<(u16, String)>,
    answers_delay: Option<std::time::Duration>,
    schema: std::sync::Mutex<(serde_json::Value, String)>,
    graphql_answer: std::sync::Mutex<serde_json::Value>,
    graphql: std::sync::Mutex<Vec<Received>>,
    answers: std::sync::Mutex<Vec<Received>>,
    announcements: std::sync::Mutex<Vec<Received>>,
    genesis: std::sync::Mutex<Vec<Received>>,
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A string shaped like a random UUID.
pub fn random_uuid() -> String {
    let k = Identity::generate().public().key_id();
    let hex: String = k
        .bytes()
        .map(|b| format!("{:x}", b % 16))
        .take(32)
        .collect();
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// A schema hash for `schema` (any stable string works: peers compare it with what the echo
/// says).
fn fake_schema_hash(schema: &serde_json::Value) -> String {
    use std::hash::{Hash, Hasher};
    let text = schema.to_string();
    let mut out = String::new();
    for salt in [1u8, 2] {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut h);
        text.hash(&mut h);
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// The empty ontology, as a peer with no classes serves it.
pub fn empty_schema() -> serde_json::Value {
    serde_json::json!({"actions": {"classes": []}, "things": {"classes": []}})
}

/// A peer played by the test: an in-process HTTP server on 127.0.0.1 (on its own tokio
/// runtime) that verifies signed requests and signs its answers with its own [`Identity`], as
/// a real peer does, and answers the peer protocol: `GET /peers/echo`, `GET /p2p/ping`,
/// `GET /p2p/health`, `GET /p2p/schema` (a schema the test sets), `POST /graphql` (an answer
/// the test sets), `POST /peers/answers/{id}`, `POST /peers` (an announcement: answered with
/// itself as the peer it knows) and `PUT /p2p/genesis`; every request to the last four is
/// recorded. Its client ([`FakePeer::call`]) signs as it. With [`FakeOptions`] it misbehaves.
pub struct FakePeer {
    /// Its peer name.
    pub name: String,
    /// Its key.
    pub identity: std::sync::Arc<Identity>,
    /// `http://127.0.0.1:PORT`, its base URL.
    pub base: String,
    /// Its client (no proxy, 20 s per request).
    pub http: reqwest::blocking::Client,
    state: std::sync::Arc<FakeState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    rt: Option<tokio::runtime::Runtime>,
}

impl FakePeer {
    /// A well-behaved fake peer named `name`, with an empty schema.
    pub fn start(name: &str) -> FakePeer {
        Self::start_with(name, FakeOptions::default())
    }

    /// A fake peer named `name` that behaves as `options` say.
    pub fn start_with(name: &str, options: FakeOptions) -> FakePeer {
        use poem::listener::{Acceptor, Listener};
        use poem::EndpointExt;
        let identity = std::sync::Arc::new(options.identity.unwrap_or_else(Identity::generate));
        let answer_identity = options
            .answer_identity
            .map(std::sync::Arc::new)
            .unwrap_or_else(|| identity.clone());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let acceptor = rt
            .block_on(poem::listener::TcpListener::bind("127.0.0.1:0").into_acceptor())
            .expect("bind 127.0.0.1:0");
        let port = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().map(|s| s.port()))
            .expect("a bound port");
        let base = format!("http://127.0.0.1:{port}");
        let schema = empty_schema();
        let state = std::sync::Arc::new(FakeState {
            name: name.to_string(),
            id: random_uuid(),
            identity: identity.public().to_string(),
            base: base.clone(),
            echo: options.echo,
            answers_delay: options.answers_delay,
            schema: std::sync::Mutex::new((schema.clone(), fake_schema_hash(&schema))),
            graphql_answer: std::sync::Mutex::new(serde_json::json!({"data": null})),
            graphql: Default::default(),
            answers: Default::default(),
            announcements: Default::default(),
            genesis: Default::default(),
        });
        let signing = weft_peer_protocol::signed_http::Signing::new(
            answer_identity,
            name.to_string(),
            vec![],
            16 << 20,
        );
        let handler_state = state.clone();
        let app = poem::endpoint::make(move |req: poem::Request| {
            let state = handler_state.clone();
            async move { fake_answer(state, req).await }
        })
        .around(move |ep, req| signing.clone().serve(ep, req));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        rt.spawn(
            poem::Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(
                app,
                async move {
                    let _ = rx.await;
                },
                Some(std::time::Duration::from_millis(200)),
            ),
        );
        let mut http = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(std::time::Duration::from_secs(20));
        if let Some(a) = options.client_address {
            http = http.local_address(a);
        }
        FakePeer {
            name: name.to_string(),
            identity,
            base,
            http: http.build().expect("an HTTP client"),
            state,
            stop: Some(tx),
            rt: Some(rt),
        }
    }

    /// Its public key.
    pub fn public(&self) -> PublicKey {
        self.identity.public()
    }

    /// `method url` signed as this peer.
    pub fn call(&self, method: &str, url: &str, body: Option<&serde_json::Value>) -> Reply {
        signed_call(
            &self.http,
            Some((&self.identity, &self.name)),
            method,
            url,
            body,
        )
    }

    /// `method url` from this peer's address, signed as `name` with `identity` (or unsigned).
    pub fn call_as(
        &self,
        sign: Option<(&Identity, &str)>,
        method: &str,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Reply {
        signed_call(&self.http, sign, method, url, body)
    }

    /// The announcement of itself at its own address with its key.
    pub fn announcement(&self) -> serde_json::Value {
        serde_json::json!({"peerName": self.name, "peerUri": self.base,
            "identity": self.public().to_string()})
    }

    /// Announces itself to `server` (`POST /peers`, signed).
    pub fn announce_to(&self, server: &Server) -> Reply {
        self.call("POST", &server.at("/peers"), Some(&self.announcement()))
    }

    /// Asks `server` the network question `question` (`POST /peers/questions`, signed, the
    /// answer to this peer's address).
    pub fn ask(&self, server: &Server, question: &serde_json::Value) -> Reply {
        let body = serde_json::json!({"answerTo": self.base, "peerName": self.name,
            "question": question});
        self.call("POST", &server.at("/peers/questions"), Some(&body))
    }

    /// Waits (at most `timeout`) for the answer posted under `id`.
    pub fn wait_answer(&self, id: &str, timeout: std::time::Duration) -> Option<Received> {
        let path = format!("/weaviate/v1/peers/answers/{id}");
        let mut found = None;
        wait_for(timeout, || {
            found = lock(&self.state.answers)
                .iter()
                .find(|r| r.path == path)
                .cloned();
            found.is_some()
        });
        found
    }

    /// Asks `server` `question` and waits (at most 20 s) for its answer's body: the question
    /// must be accepted (202) and answered, signed by `server_key`.
    pub fn ask_and_wait(
        &self,
        server: &Server,
        server_key: &PublicKey,
        question: &serde_json::Value,
    ) -> serde_json::Value {
        let r = self.ask(server, question);
        assert_eq!(r.status, 202, "{question}: {:?}", r.body);
        assert_eq!(r.signer_key().as_ref(), Some(server_key), "{:?}", r.body);
        let id = r.body["answerId"].as_str().expect("answerId").to_string();
        let a = self
            .wait_answer(&id, std::time::Duration::from_secs(20))
            .unwrap_or_else(|| panic!("no answer {id} to {question} within 20 s"));
        assert_eq!(
            a.signer.as_ref().map(|v| v.key).as_ref(),
            Some(server_key),
            "the answer is not signed by the asked peer: {a:?}"
        );
        a.body
    }

    /// Serves `schema` (an ontology's JSON) at `GET /p2p/schema` from now on; the echo's
    /// schema hash follows it.
    pub fn set_schema(&self, schema: serde_json::Value) {
        let hash = fake_schema_hash(&schema);
        *lock(&self.state.schema) = (schema, hash);
    }

    /// Answers `POST /graphql` with `answer` from now on.
    pub fn set_graphql_answer(&self, answer: serde_json::Value) {
        *lock(&self.state.graphql_answer) = answer;
    }

    /// The `POST /graphql` requests received.
    pub fn graphql_requests(&self) -> Vec<Received> {
        lock(&self.state.graphql).clone()
    }

    /// The `POST /peers/answers/{id}` requests received.
    pub fn answers(&self) -> Vec<Received> {
        lock(&self.state.answers).clone()
    }

    /// The `POST /peers` requests (announcements) received.
    pub fn announcements(&self) -> Vec<Received> {
        lock(&self.state.announcements).clone()
    }

    /// The `PUT /p2p/genesis` requests received.
    pub fn genesis_pushes(&self) -> Vec<Received> {
        lock(&self.state.genesis).clone()
    }
}

impl Drop for FakePeer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

async fn fake_answer(state: std::sync::Arc<FakeState>, mut req: poem::Request) -> poem::Response {
    let signer = weft_peer_protocol::signed_http::verified(&req).cloned();
    let path = req.uri().path().to_string();
    let method = req.method().as_str().to_string();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                v.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let raw = req.take_body().into_vec().await.unwrap_or_default();
    let body: serde_json::Value = serde_json::from_slice(&raw).unwrap_or(serde_json::Value::Null);
    let received = Received {
        path: path.clone(),
        body: body.clone(),
        raw,
        headers,
        signer,
    };
    let json = |status: u16, v: serde_json::Value| {
        poem::Response::builder()
            .status(poem::http::StatusCode::from_u16(status).expect("a status"))
            .content_type("application/json")
            .body(v.to_string())
    };
    let schema_hash = lock(&state.schema).1.clone();
    match (method.as_str(), path.as_str()) {
        ("GET", "/weaviate/v1/peers/echo") => match &state.echo {
            Some((status, text)) => poem::Response::builder()
                .status(poem::http::StatusCode::from_u16(*status).expect("a status"))
                .body(text.clone()),
            None => json(
                200,
                serde_json::json!({"peerName": state.name, "id": state.id,
                    "schemaHash": schema_hash, "identity": state.identity}),
            ),
        },
        ("GET", "/weaviate/v1/p2p/ping") => json(200, serde_json::json!({"peerName": state.name})),
        ("GET", "/weaviate/v1/p2p/health") => json(
            200,
            serde_json::json!({"status": "healthy", "peerName": state.name,
                "identity": state.identity, "mode": "bootstrapped", "peers": 0}),
        ),
        ("GET", "/weaviate/v1/p2p/schema") => {
            let (schema, hash) = lock(&state.schema).clone();
            json(200, serde_json::json!({"schema": schema, "hash": hash}))
        }
        ("POST", "/weaviate/v1/graphql") => {
            lock(&state.graphql).push(received);
            json(200, lock(&state.graphql_answer).clone())
        }
        ("POST", p) if p.starts_with("/weaviate/v1/peers/answers/") => {
            lock(&state.answers).push(received);
            if let Some(d) = state.answers_delay {
                tokio::time::sleep(d).await;
            }
            poem::Response::builder()
                .status(poem::http::StatusCode::NO_CONTENT)
                .finish()
        }
        ("POST", "/weaviate/v1/peers") => {
            lock(&state.announcements).push(received);
            let announced = serde_json::json!({
                "id": body["id"].as_str().map(str::to_string).unwrap_or_else(random_uuid),
                "name": body["peerName"], "uri": body["peerUri"],
                "schemaHash": body["schemaHash"].as_str().unwrap_or_default(),
                "identity": body["identity"]});
            json(
                200,
                serde_json::json!({"contextionaryMD5": null, "contextionary": null,
                    "peer": announced,
                    "peers": [{"id": state.id, "name": state.name, "uri": state.base,
                        "schemaHash": schema_hash, "identity": state.identity}]}),
            )
        }
        ("PUT", "/weaviate/v1/p2p/genesis") => {
            lock(&state.genesis).push(received);
            json(200, serde_json::json!({"peers": 0}))
        }
        _ => json(
            404,
            serde_json::to_value(weft_peer_protocol::wire::ErrorBody::new(format!(
                "the fake peer {} has no {method} {path}",
                state.name
            )))
            .expect("an error body is JSON"),
        ),
    }
}

/// A plain HTTP server on 127.0.0.1 (no peer, no signatures) that answers every request with
/// `status` and `body`; stopped when dropped. Its base URL is `.0`.
pub struct PlainServer(
    pub String,
    Option<tokio::sync::oneshot::Sender<()>>,
    Option<tokio::runtime::Runtime>,
);

impl PlainServer {
    /// Starts it.
    pub fn start(status: u16, body: &str) -> PlainServer {
        use poem::listener::{Acceptor, Listener};
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let acceptor = rt
            .block_on(poem::listener::TcpListener::bind("127.0.0.1:0").into_acceptor())
            .expect("bind 127.0.0.1:0");
        let port = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().map(|s| s.port()))
            .expect("a bound port");
        let body = body.to_string();
        let app = poem::endpoint::make(move |_req: poem::Request| {
            let body = body.clone();
            async move {
                poem::Response::builder()
                    .status(poem::http::StatusCode::from_u16(status).expect("a status"))
                    .content_type("text/plain")
                    .body(body)
            }
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        rt.spawn(
            poem::Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(
                app,
                async move {
                    let _ = rx.await;
                },
                Some(std::time::Duration::from_millis(200)),
            ),
        );
        PlainServer(format!("http://127.0.0.1:{port}"), Some(tx), Some(rt))
    }
}

impl Drop for PlainServer {
    fn drop(&mut self) {
        if let Some(tx) = self.1.take() {
            let _ = tx.send(());
        }
        if let Some(rt) = self.2.take() {
            rt.shutdown_background();
        }
    }
}

impl Server {
    /// `GET /p2p/peers` without a key: the known peers' entries (empty when it fails).
    pub fn peer_entries(&self) -> Vec<serde_json::Value> {
        get_json(&self.at("/p2p/peers"))
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    }

    /// The entry of the known peer `name` in `GET /p2p/peers`.
    pub fn peer_entry(&self, name: &str) -> Option<serde_json::Value> {
        self.peer_entries().into_iter().find(|p| p["name"] == name)
    }
}

/// A name no other store of this run has (a Cassandra keyspace, a Gremlin namespace):
/// `tag`, the process id, the time and a counter (two calls in one millisecond differ).
pub fn unique_name(tag: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{tag}_{}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() % 100_000_000),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
