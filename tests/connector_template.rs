//! The connector author's path, end to end: the template copied out of the workspace, renamed
//! with its `rename.sh`, built and tested with its own `cargo test` (the conformance kit), then
//! checked by `weft plugins check` and served by `weft serve`, which stores a thing over REST
//! and still has it after a restart. And a copy built against an incompatible interface
//! version is refused in one line naming both versions.
//!
//! The nested cargo runs use their own target directory, `<target>/template-build` (this test
//! runs inside `cargo test`, which holds the lock on the workspace's target directory; a
//! nested cargo on the same directory would wait for it forever). It is kept between runs, so
//! only the first run compiles the template's dependencies. The copies live in the system's
//! temporary directory (`weft-template-e2e-<hash of this checkout>/`), removed when the test
//! passes. Needs `cargo` (the one running the tests, `$CARGO`, or the one on PATH).
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{json, Value};
use weft_e2e_tests::{target_dir, weft_bin};

/// What the test servers are started with (and the requests carry).
const KEY: &str = "6a1c2e7e-0000-4000-8000-00000000c0de";
const TOKEN: &str = "6a1c2e7e-0000-4000-8000-00000000f00d";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("the repository root")
}

/// The shared target directory of the nested builds.
fn build_target() -> PathBuf {
    let dir = target_dir().join("template-build");
    std::fs::create_dir_all(&dir).expect("create target/template-build");
    dir.canonicalize().expect("target/template-build")
}

/// A scratch directory outside the workspace, at a fixed place per checkout and test (so the
/// nested builds' artifacts in `target/template-build` are replaced run after run, not piled
/// up under ever new paths). Emptied when made; removed when the test passes, kept for a look
/// when it fails.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new(test: &str) -> WorkDir {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        repo().hash(&mut h);
        let dir = std::env::temp_dir()
            .join(format!("weft-template-e2e-{:016x}", h.finish()))
            .join(test);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        WorkDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept {} for a look", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn cargo_program() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Copies `from` into `to`, leaving out build output and lock files.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" || name == "Cargo.lock" {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap(); // keeps rename.sh executable
        }
    }
}

/// Runs a command to completion; panics with its output when it fails.
fn run(what: &str, cmd: &mut Command) -> Output {
    let started = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"));
    eprintln!("{what}: {:.1} s", started.elapsed().as_secs_f64());
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            tail(&out.stdout),
            tail(&out.stderr)
        );
    }
    out
}

/// The last lines of a command's output (enough for a compiler error or a failing check).
fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(80)..].join("\n")
}

/// `cargo ARGS` in `dir`, on the shared target directory.
fn cargo(what: &str, dir: &Path, args: &[&str]) -> Output {
    run(
        what,
        Command::new(cargo_program())
            .args(args)
            .current_dir(dir)
            .env("CARGO_TARGET_DIR", build_target())
            .env_remove("WEFT_CONNECTOR_SO"),
    )
}

/// A renamed copy of the template in `parent/<crate>`, its dependencies at `weft_dir`, with the
/// workspace's lock file (same dependency versions as the host, nothing to resolve).
fn renamed_copy(parent: &Path, name: &str, weft_dir: &Path) -> PathBuf {
    let copy = parent.join(format!("weft-{name}"));
    copy_tree(&repo().join("connector-template"), &copy);
    std::fs::copy(repo().join("Cargo.lock"), copy.join("Cargo.lock")).unwrap();
    run(
        "rename.sh",
        Command::new(copy.join("rename.sh"))
            .arg(name)
            .env("WEFT_DIR", weft_dir)
            .current_dir(&copy),
    );
    copy
}

struct Check {
    code: i32,
    stdout: String,
}

fn plugins_check(so: &Path) -> Check {
    let out = Command::new(weft_bin())
        .args(["plugins", "check"])
        .arg(so)
        .env_remove("WEFT_LOG")
        .output()
        .expect("run weft plugins check");
    Check {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

/// `weft serve` with the connector `name` from `plugin_dir` on the store in `data`; killed
/// when dropped.
struct Serve {
    child: std::process::Child,
    url: String,
}

impl Serve {
    fn start(plugin_dir: &Path, name: &str, data: &Path) -> Serve {
        use std::io::BufRead;
        let mut cmd = Command::new(weft_bin());
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--plugin-dir"])
            .arg(plugin_dir)
            .args(["--database", name, "--database-config"])
            .arg(json!({ "path": data }).to_string());
        for var in [
            "WEFT_CONFIG_FILE",
            "WEFT_CONFIG",
            "WEFT_LISTEN",
            "WEFT_PLUGIN_DIR",
            "WEFT_DATABASE",
            "WEFT_DATABASE_CONFIG",
            "WEFT_PUBLIC_URL",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("WEFT_ROOT_KEY", KEY)
            .env("WEFT_ROOT_TOKEN", TOKEN)
            .env(
                "WEFT_LOG",
                std::env::var("WEFT_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("start weft serve");
        let stdout = child.stdout.take().expect("weft's stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("weft: listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => Serve { child, url },
            Err(_) => {
                let status = child.try_wait().ok().flatten();
                let _ = child.kill();
                panic!("weft serve with {name} did not report its address within 30 s (exit status: {status:?}; its stderr is above)");
            }
        }
    }

    fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = Client::new()
            .request(method, format!("{}{path}", self.url))
            .header("X-API-KEY", KEY)
            .header("X-API-TOKEN", TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().expect("HTTP request");
        let status = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn ok(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let what = format!("{method} {path}");
        let (status, body) = self.send(method, path, body);
        assert!(
            (200..300).contains(&status),
            "{what} answered {status}: {body}"
        );
        body
    }
}

impl Serve {
    /// SIGTERM, then waits (at most `timeout`) for the exit status.
    fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_template_copied_renamed_built_and_tested_serves_things_that_survive_a_restart() {
    let started = Instant::now();
    let tmp = WorkDir::new("serve");
    let copy = renamed_copy(tmp.path(), "e2e-store", &repo());
    let manifest = std::fs::read_to_string(copy.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("name = \"weft-e2e-store\""), "{manifest}");
    assert!(manifest.contains("name = \"weft_e2e_store\""), "{manifest}");
    assert!(!manifest.contains("../plugins/"), "{manifest}");

    // Build everything (with the tests' dependency features, so `cargo test` builds nothing
    // more), then run the crate's own tests: the conformance kit and the persistence test.
    cargo("cargo build", &copy, &["build", "--all-targets"]);
    let tested = cargo("cargo test", &copy, &["test"]);
    let report = String::from_utf8_lossy(&tested.stdout);
    assert!(
        report.contains("declares_name_and_capabilities ... ok"),
        "the kit did not run:\n{report}"
    );
    assert!(
        report.contains("check_capability_persistent ... ok"),
        "{report}"
    );

    // Install: the plugin file in a plugin directory.
    let built = build_target().join("debug").join("libweft_e2e_store.so");
    let plugins = tmp.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let installed = plugins.join("libweft_e2e_store.so");
    std::fs::copy(&built, &installed).unwrap();

    let check = plugins_check(&installed);
    assert_eq!(check.code, 0, "{}", check.stdout);
    let line = check.stdout.lines().next().unwrap_or_default();
    assert!(line.starts_with("ok: "), "{line}");
    assert!(line.contains("name=e2e-store"), "{line}");
    assert!(line.contains("kind=connector"), "{line}");
    assert!(line.contains("persistent"), "{line}");

    // Serve with it, store a thing over REST, read it back.
    let data = tmp.path().join("data");
    let id = {
        let weft = Serve::start(&plugins, "e2e-store", &data);
        weft.ok(
            reqwest::Method::POST,
            "/schema/things",
            Some(json!({
                "class": "Lighthouse",
                "properties": [
                    {"name": "name", "@dataType": ["string"]},
                    {"name": "height", "@dataType": ["number"]}
                ]
            })),
        );
        let created = weft.ok(
            reqwest::Method::POST,
            "/things",
            Some(json!({"thing": {
                "@context": "http://example.org/ctx",
                "@class": "Lighthouse",
                "schema": {"name": "Fastnet Rock", "height": 54.0}
            }})),
        );
        let id = created["thingId"].as_str().expect("thingId").to_string();
        let got = weft.ok(reqwest::Method::GET, &format!("/things/{id}"), None);
        assert_eq!(got["schema"]["name"], "Fastnet Rock", "{got}");
        // Keys are stored through the connector too.
        let child = weft.ok(
            reqwest::Method::POST,
            "/keys",
            Some(json!({"read": true, "email": "keeper@example.org"})),
        );
        (id, child)
        // The server is killed here (SIGKILL: no chance to flush anything).
    };
    let (id, child) = id;
    assert!(
        data.join("things").join(format!("{id}.json")).exists(),
        "one JSON file per object"
    );

    // Restart on the same directory: the thing and its class are still there.
    let weft = Serve::start(&plugins, "e2e-store", &data);
    let got = weft.ok(reqwest::Method::GET, &format!("/things/{id}"), None);
    assert_eq!(got["@class"], "Lighthouse", "{got}");
    assert_eq!(got["schema"]["name"], "Fastnet Rock", "{got}");
    assert_eq!(got["schema"]["height"], 54.0, "{got}");
    let schema = weft.ok(reqwest::Method::GET, "/schema", None);
    assert!(schema.to_string().contains("Lighthouse"), "{schema}");
    // The child key made before the restart still works, with its token.
    let me: Value = Client::new()
        .get(format!("{}/keys/me", weft.url))
        .header("X-API-KEY", child["keyId"].as_str().unwrap())
        .header("X-API-TOKEN", child["token"].as_str().unwrap())
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(me["email"], "keeper@example.org", "{me}");
    assert_eq!(me["keyId"], child["keyId"], "{me}");

    // `async` creates accepted before a graceful shutdown (SIGTERM) are stored before the
    // process exits.
    let items: Vec<Value> = (0..300)
        .map(|i| json!({"@context": "", "@class": "Lighthouse", "schema": {"name": format!("async {i}")}}))
        .collect();
    let (status, body) = weft.send(
        reqwest::Method::POST,
        "/batching/things",
        Some(json!({"things": items, "async": true})),
    );
    assert_eq!(status, 202, "{body}");
    let mut weft = weft;
    let exit = weft.terminate(Duration::from_secs(60));
    assert!(
        exit.is_some_and(|s| s.success()),
        "weft did not exit cleanly on SIGTERM: {exit:?}"
    );
    drop(weft);
    let weft = Serve::start(&plugins, "e2e-store", &data);
    let listed = weft.ok(reqwest::Method::GET, "/things?maxResults=1", None);
    assert_eq!(
        listed["totalResults"], 301,
        "300 async creates were accepted before SIGTERM; after the restart: {listed}"
    );
    eprintln!(
        "template copied, renamed, built, tested and served in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The crates a connector builds against (the interface, the SDK) and tests with (the kit, which
/// loads with the host's loader): what a minimal Weft checkout for the template holds.
const TEMPLATE_CRATES: [&str; 4] = [
    "plugins/api",
    "plugins/sdk",
    "plugins/conformance",
    "host/loader",
];

/// A minimal Weft checkout in `dir` whose weft-plugin-api claims `version` (its layout is
/// unchanged: only the version differs, which alone must be enough to refuse it).
fn weft_checkout_with_interface(dir: &Path, version: &str) {
    let root = repo();
    for krate in TEMPLATE_CRATES {
        copy_tree(&root.join(krate), &dir.join(krate));
    }
    let api = dir.join("plugins/api/Cargo.toml");
    let manifest = std::fs::read_to_string(&api).unwrap();
    let ours = format!("version = \"{}\"", weft_plugin_api::INTERFACE_VERSION);
    assert!(manifest.contains(&ours), "{manifest}");
    std::fs::write(
        &api,
        manifest.replacen(&ours, &format!("version = \"{version}\""), 1),
    )
    .unwrap();
    // The workspace root the two crates inherit from (`edition.workspace = true`, …): the
    // root's [workspace.package] and [workspace.dependencies], with only them as members.
    let root_manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let members: Vec<String> = TEMPLATE_CRATES.iter().map(|c| format!("{c:?}")).collect();
    let mut workspace = format!(
        "[workspace]\nresolver = \"2\"\nmembers = [{}]\n",
        members.join(", ")
    );
    let mut keep = false;
    for line in root_manifest.lines() {
        let header = line.trim_start();
        if header.starts_with('[') && !header.starts_with("[[") && header.trim_end().ends_with(']')
        {
            keep = matches!(
                header.trim_end(),
                "[workspace.package]" | "[workspace.dependencies]"
            );
        }
        if keep {
            workspace.push_str(line);
            workspace.push('\n');
        }
    }
    assert!(
        workspace.contains("[workspace.dependencies]"),
        "{workspace}"
    );
    std::fs::write(dir.join("Cargo.toml"), workspace).unwrap();
}

#[test]
fn a_copy_built_against_another_major_interface_is_refused_naming_both_versions() {
    let tmp = WorkDir::new("incompatible");
    let weft2 = tmp.path().join("weft-2");
    weft_checkout_with_interface(&weft2, "2.0.0");
    let copy = renamed_copy(tmp.path(), "e2e-incompatible", &weft2);
    // Same features as the first test's build, so the two share compiled dependencies.
    cargo(
        "cargo build (interface 2.0.0)",
        &copy,
        &["build", "--all-targets"],
    );
    let so = build_target()
        .join("debug")
        .join("libweft_e2e_incompatible.so");

    let check = plugins_check(&so);
    assert_ne!(check.code, 0, "{}", check.stdout);
    let errors: Vec<&str> = check
        .stdout
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{}", check.stdout);
    let want = format!(
        "built against weft-plugin-api 2.0.0, this host speaks {}",
        weft_plugin_api::INTERFACE_VERSION
    );
    assert!(errors[0].contains(&want), "{}", errors[0]);
    assert_eq!(check.stdout.lines().count(), 1, "{}", check.stdout);
}
