//! The persistent default store (`embedded`) through the real binary:
//! * restart: the default command (no database configured) in a fresh working directory keeps
//!   the schema, the things and the keys in `data/store` across a SIGTERM and a new start;
//! * crash: concurrent batch and single writes, SIGKILL mid-way; every acknowledged object is
//!   there and readable afterwards, every object has its history, every key's parent exists;
//! * one process per data directory: a second one is refused naming the directory and the pid;
//! * search by meaning: every acknowledged vector is kept across a SIGKILL under writes.
use std::collections::HashMap;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use weft_e2e_tests::{build_dir, weft_bin, P2P_ENV, ROOT_KEY, ROOT_TOKEN};
use weft_plugin_api::{HostLogger, Id, ObjectKind};

/// Runs a plugin call to completion (the plugin brings its own runtime; this only polls).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

/// A `weft serve` started by these tests; killed when dropped.
struct Weft {
    child: Child,
    url: String,
    stderr: Arc<Mutex<String>>,
}

/// The command: `weft serve` on 127.0.0.1:0 with the workspace's plugins, the fixed root key,
/// no database configured (unless `args` does), in the working directory `cwd`.
fn command(cwd: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(weft_bin());
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--plugin-dir"])
        .arg(build_dir())
        .args(args)
        .current_dir(cwd)
        .env("WEFT_LOG", "warn")
        .env("WEFT_ROOT_KEY", ROOT_KEY)
        .env("WEFT_ROOT_TOKEN", ROOT_TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in [
        "WEFT_CONFIG_FILE",
        "WEFT_LISTEN",
        "WEFT_PLUGIN_DIR",
        "WEFT_DATABASE",
        "WEFT_DATABASE_CONFIG",
        "WEFT_DATA_DIR",
    ]
    .into_iter()
    .chain(P2P_ENV)
    {
        cmd.env_remove(var);
    }
    cmd
}

impl Weft {
    /// Starts it and waits (at most 60 s) for `weft: listening on URL`; `Err(stderr)` when it
    /// exits first.
    fn start(cwd: &Path, args: &[&str]) -> Result<Weft, String> {
        let mut child = command(cwd, args).spawn().expect("start weft");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("weft: listening on ") {
                        return Ok(Weft {
                            child,
                            url: url.to_string(),
                            stderr,
                        });
                    }
                }
                Err(_) => {
                    // Exited (stdout closed) or never listened.
                    let _ = child.kill();
                    let _ = child.wait();
                    std::thread::sleep(Duration::from_millis(200));
                    let e = stderr.lock().unwrap().clone();
                    return Err(e);
                }
            }
        }
    }

    fn sigterm(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                assert!(
                    s.success(),
                    "weft exited with {s} after SIGTERM: {}",
                    self.stderr()
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("weft did not exit within 60 s of SIGTERM");
    }

    fn sigkill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Weft {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client of one server as one key.
#[derive(Clone)]
struct Client {
    http: reqwest::blocking::Client,
    url: String,
    key: String,
    token: String,
}

impl Client {
    fn root(w: &Weft) -> Client {
        Client {
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            url: w.url.clone(),
            key: ROOT_KEY.into(),
            token: ROOT_TOKEN.into(),
        }
    }

    fn as_key(&self, key: &str, token: &str) -> Client {
        Client {
            key: key.into(),
            token: token.into(),
            ..self.clone()
        }
    }

    /// `Err` when the request got no answer (the server is gone).
    fn try_call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), String> {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(m, format!("{}{path}", self.url))
            .header("X-API-KEY", &self.key)
            .header("X-API-TOKEN", &self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let text = resp.text().map_err(|e| e.to_string())?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (s, b) = self
            .try_call(method, path, body.as_ref())
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        assert!((200..300).contains(&s), "{method} {path} answered {s}: {b}");
        b
    }
}

fn city_class(c: &Client) {
    c.ok(
        "POST",
        "/schema/things",
        Some(json!({"class": "City", "properties": [
            {"name": "name", "@dataType": ["string"]},
            {"name": "population", "@dataType": ["int"]}]})),
    );
}

fn city(name: &str) -> Value {
    json!({"@context": "", "@class": "City", "schema": {"name": name}})
}

#[test]
fn the_default_command_keeps_schema_things_and_keys_across_a_restart() {
    let cwd = tempfile::tempdir().unwrap();
    let mut w = Weft::start(cwd.path(), &[]).unwrap_or_else(|e| panic!("weft did not start: {e}"));
    let c = Client::root(&w);
    let meta = c.ok("GET", "/meta", None);
    assert_eq!(meta["plugins"][0]["name"], "embedded", "{meta}");
    city_class(&c);
    let mut things = HashMap::new();
    for i in 0..20 {
        let b = c.ok(
            "POST",
            "/things",
            Some(json!({ "thing": city(&format!("City {i}")) })),
        );
        things.insert(
            b["thingId"].as_str().unwrap().to_string(),
            format!("City {i}"),
        );
    }
    let key = c.ok(
        "POST",
        "/keys",
        Some(json!({"read": true, "write": true, "delete": false, "execute": false})),
    );
    let (key_id, token) = (
        key["keyId"].as_str().unwrap().to_string(),
        key["token"].as_str().unwrap().to_string(),
    );
    let own =
        c.as_key(&key_id, &token)
            .ok("POST", "/things", Some(json!({ "thing": city("Own") })));
    let own = own["thingId"].as_str().unwrap().to_string();
    w.sigterm();
    let store = cwd.path().join("data/store");
    assert!(
        store.join("weft.redb").is_file(),
        "the default store is data/store under the working directory"
    );

    let w = Weft::start(cwd.path(), &[]).unwrap_or_else(|e| panic!("weft did not restart: {e}"));
    let c = Client::root(&w);
    let schema = c.ok("GET", "/schema", None);
    assert!(schema.to_string().contains("\"City\""), "{schema}");
    for (id, name) in &things {
        let got = c.ok("GET", &format!("/things/{id}"), None);
        assert_eq!(got["schema"]["name"], json!(name), "{got}");
    }
    // The key survived, with its token and rights: it reads its own thing, may not delete it,
    // and a wrong token is refused.
    let child = c.as_key(&key_id, &token);
    let got = child.ok("GET", &format!("/things/{own}"), None);
    assert_eq!(got["schema"]["name"], "Own");
    let (s, b) = child
        .try_call("DELETE", &format!("/things/{own}"), None)
        .unwrap();
    assert_eq!(s, 403, "{b}");
    let (s, _) = c
        .as_key(&key_id, ROOT_TOKEN)
        .try_call("GET", &format!("/things/{own}"), None)
        .unwrap();
    assert_eq!(s, 401);
}

/// What a writer thread saw acknowledged.
#[derive(Default)]
struct Acked {
    /// Object id → (last acknowledged name, acknowledged updates).
    objects: HashMap<String, (String, usize)>,
    /// Key id → parent key id.
    keys: HashMap<String, String>,
}

#[test]
fn a_sigkill_under_concurrent_writes_loses_no_acknowledged_write() {
    let cwd = tempfile::tempdir().unwrap();
    let data = cwd.path().join("weftdata");
    let data_arg = data.display().to_string();
    let args = ["--data-dir", data_arg.as_str()];
    let mut w =
        Weft::start(cwd.path(), &args).unwrap_or_else(|e| panic!("weft did not start: {e}"));
    let c = Client::root(&w);
    city_class(&c);
    let acked = Arc::new(Mutex::new(Acked::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = vec![];
    for t in 0..6usize {
        let (c, acked, stop) = (c.clone(), Arc::clone(&acked), Arc::clone(&stop));
        threads.push(std::thread::spawn(move || {
            for i in 0..100_000usize {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let done = match t {
                    // Batches of 50.
                    0 | 1 => {
                        let items: Vec<Value> =
                            (0..50).map(|j| city(&format!("b{t}-{i}-{j}"))).collect();
                        match c.try_call("POST", "/batching/things", Some(&json!({ "things": items }))) {
                            Ok((200, b)) => {
                                let mut a = acked.lock().unwrap();
                                for (j, item) in b.as_array().unwrap().iter().enumerate() {
                                    if item["result"]["status"] == "SUCCESS" {
                                        let id = item["thingId"].as_str().unwrap().to_string();
                                        a.objects.insert(id, (format!("b{t}-{i}-{j}"), 0));
                                    }
                                }
                                true
                            }
                            _ => false,
                        }
                    }
                    // Single creates, each updated twice.
                    2..=4 => {
                        let name = format!("s{t}-{i}");
                        match c.try_call("POST", "/things", Some(&json!({ "thing": city(&name) }))) {
                            Ok((200, b)) => {
                                let id = b["thingId"].as_str().unwrap().to_string();
                                acked.lock().unwrap().objects.insert(id.clone(), (name, 0));
                                let mut ok = true;
                                for u in 1..=2 {
                                    let renamed = format!("s{t}-{i}-u{u}");
                                    let patch = json!([{"op": "add", "path": "/schema/name", "value": renamed}]);
                                    match c.try_call("PATCH", &format!("/things/{id}"), Some(&patch)) {
                                        Ok((200, _)) => {
                                            acked.lock().unwrap().objects.insert(id.clone(), (renamed, u));
                                        }
                                        _ => {
                                            ok = false;
                                            break;
                                        }
                                    }
                                }
                                ok
                            }
                            _ => false,
                        }
                    }
                    // Keys, each with a child.
                    _ => {
                        let rights = json!({"read": true, "write": true, "delete": true, "execute": true});
                        match c.try_call("POST", "/keys", Some(&rights)) {
                            Ok((200, k)) => {
                                let id = k["keyId"].as_str().unwrap().to_string();
                                acked.lock().unwrap().keys.insert(id.clone(), ROOT_KEY.to_string());
                                let parent = c.as_key(&id, k["token"].as_str().unwrap());
                                match parent.try_call("POST", "/keys", Some(&rights)) {
                                    Ok((200, child)) => {
                                        let child = child["keyId"].as_str().unwrap().to_string();
                                        acked.lock().unwrap().keys.insert(child, id);
                                        true
                                    }
                                    _ => false,
                                }
                            }
                            _ => false,
                        }
                    }
                };
                if !done {
                    return;
                }
            }
        }));
    }
    // Kill it mid-way: after some writes were acknowledged, while writers are busy.
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.lock().unwrap().objects.len() < 1500 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    w.sigkill();
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    let acked = Arc::try_unwrap(acked).ok().unwrap().into_inner().unwrap();
    assert!(
        acked.objects.len() >= 1500,
        "only {} writes acknowledged",
        acked.objects.len()
    );

    // The store itself, opened through the plugin as the host opens it: the invariants.
    {
        let plugin = weft::plugins::load_file(&build_dir().join("libweft_embedded.so")).unwrap();
        let config = json!({ "path": data.join("store") }).to_string();
        let conn = plugin
            .open_connector(&config, HostLogger::discard())
            .unwrap()
            .connector;
        for (id, (name, updates)) in &acked.objects {
            let id: Id = id.parse().unwrap();
            let o = block_on(conn.get_object(ObjectKind::Thing, id))
                .unwrap()
                .into_option()
                .unwrap_or_else(|| panic!("acknowledged thing {id} is missing"));
            let props: Value = serde_json::from_str(&o.properties_json).unwrap();
            let h = block_on(conn.object_history(ObjectKind::Thing, id))
                .unwrap_or_else(|e| panic!("thing {id} has no history: {e}"));
            let archived = h.versions.len();
            // The last acknowledged write is there, or a later one that was in flight.
            assert!(
                archived == *updates && props["name"] == json!(name) || archived == updates + 1,
                "thing {id}: acknowledged {updates} updates (last name {name}), found {archived} archived versions and {props}"
            );
        }
        for (id, parent) in &acked.keys {
            let key: Id = id.parse().unwrap();
            let k = block_on(conn.get_key(key))
                .unwrap()
                .into_option()
                .unwrap_or_else(|| panic!("acknowledged key {id} is missing"));
            assert_eq!(
                k.parent.into_option().map(|p| p.to_string()),
                Some(parent.clone())
            );
            let p: Id = parent.parse().unwrap();
            assert!(
                block_on(conn.get_key(p)).unwrap().is_some(),
                "key {id} without its parent"
            );
        }
    }

    // The server restarts on the same directory and answers every acknowledged object.
    let w = Weft::start(cwd.path(), &args).unwrap_or_else(|e| panic!("weft did not restart: {e}"));
    let c = Client::root(&w);
    for id in acked.objects.keys() {
        c.ok("GET", &format!("/things/{id}"), None);
    }
    eprintln!(
        "crash test: {} acknowledged objects and {} keys all there after SIGKILL",
        acked.objects.len(),
        acked.keys.len()
    );
}

#[test]
fn a_second_process_on_the_same_directory_is_refused() {
    let cwd = tempfile::tempdir().unwrap();
    let data: PathBuf = cwd.path().join("shared");
    let data_arg = data.display().to_string();
    let args = ["--data-dir", data_arg.as_str()];
    let first =
        Weft::start(cwd.path(), &args).unwrap_or_else(|e| panic!("weft did not start: {e}"));
    let e = match Weft::start(cwd.path(), &args) {
        Ok(_) => panic!("a second weft served the same data directory"),
        Err(e) => e,
    };
    let dir = data.join("store").display().to_string();
    assert!(
        e.contains(&dir) && e.contains(&format!("pid {}", first.child.id())),
        "the refusal names the directory {dir} and the holder's pid {}: {e}",
        first.child.id()
    );
    // `--database dev-memory` still serves from memory beside it.
    let mem = Weft::start(cwd.path(), &["--database", "dev-memory"])
        .unwrap_or_else(|e| panic!("dev-memory did not start: {e}"));
    let meta = Client::root(&mem).ok("GET", "/meta", None);
    assert_eq!(meta["plugins"][0]["name"], "dev-memory");
}

/// Runs `weft backup` against `w` as `key`/`token`; (exit success, stdout + stderr).
fn weft_backup(w: &Weft, to: &Path, key: &str, token: &str) -> (bool, String) {
    let base = w.url.trim_end_matches("/weaviate/v1");
    let out = Command::new(weft_bin())
        .args(["backup", "--to"])
        .arg(to)
        .args(["--url", base, "--api-key", key, "--api-token", token])
        .env_remove("WEFT_URL")
        .output()
        .expect("run weft backup");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Every thing id the server lists, page by page.
fn all_thing_ids(c: &Client) -> Vec<String> {
    let mut ids = Vec::new();
    for page in 1.. {
        let b = c.ok("GET", &format!("/things?maxResults=100&page={page}"), None);
        let things = b["things"].as_array().cloned().unwrap_or_default();
        if things.is_empty() {
            break;
        }
        ids.extend(
            things
                .iter()
                .map(|t| t["thingId"].as_str().unwrap().to_string()),
        );
    }
    ids
}

/// `weft backup --to DIR` copies a running server's store while writers keep writing: the copy
/// has every write acknowledged before the backup began and nothing never acknowledged, and a
/// server started on it (restore) serves the schema, the things and the keys. A key that is not
/// root, a directory in use and a connector without backups are refused with messages that say
/// what to do.
#[test]
fn weft_backup_copies_a_running_server_and_a_server_starts_on_the_copy() {
    let cwd = tempfile::tempdir().unwrap();
    let w = Weft::start(cwd.path(), &[]).unwrap_or_else(|e| panic!("weft did not start: {e}"));
    let c = Client::root(&w);
    city_class(&c);
    let mut before = Vec::new();
    for i in 0..50 {
        let b = c.ok(
            "POST",
            "/things",
            Some(json!({ "thing": city(&format!("City {i}")) })),
        );
        before.push(b["thingId"].as_str().unwrap().to_string());
    }
    let key = c.ok(
        "POST",
        "/keys",
        Some(json!({"read": true, "write": true, "delete": true, "execute": false})),
    );
    let (key_id, token) = (
        key["keyId"].as_str().unwrap().to_string(),
        key["token"].as_str().unwrap().to_string(),
    );

    // Writers run through the backup.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let writers: Vec<_> = (0..2)
        .map(|t| {
            let (c, stop, acked) = (c.clone(), Arc::clone(&stop), Arc::clone(&acked));
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) && n < 5_000 {
                    n += 1;
                    let b = c.ok(
                        "POST",
                        "/things",
                        Some(json!({ "thing": city(&format!("W{t}-{n}")) })),
                    );
                    acked
                        .lock()
                        .unwrap()
                        .push(b["thingId"].as_str().unwrap().to_string());
                }
            })
        })
        .collect();
    while acked.lock().unwrap().len() < 20 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let acked_before: Vec<String> = acked.lock().unwrap().clone();
    let copy = cwd.path().join("backup-1");
    let (ok, out) = weft_backup(&w, &copy, ROOT_KEY, ROOT_TOKEN);
    assert!(ok, "weft backup failed: {out}");
    assert!(
        out.contains("backup: ") && out.contains("restore: weft serve --database-config"),
        "{out}"
    );
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    for t in writers {
        t.join().unwrap();
    }
    let acked_all: std::collections::HashSet<String> = acked
        .lock()
        .unwrap()
        .iter()
        .chain(before.iter())
        .cloned()
        .collect();
    assert!(copy.join("weft.redb").is_file(), "{out}");
    assert!(!copy.join(".backup.tar.partial").exists());

    // Restore: a server on the copy (beside the running one).
    let config = json!({ "path": copy }).to_string();
    let restored = Weft::start(cwd.path(), &["--database-config", config.as_str()])
        .unwrap_or_else(|e| panic!("weft did not start on the copy: {e}"));
    let r = Client::root(&restored);
    let schema = r.ok("GET", "/schema", None);
    assert!(schema.to_string().contains("\"City\""), "{schema}");
    let ids = all_thing_ids(&r);
    let listed: std::collections::HashSet<&String> = ids.iter().collect();
    for id in before.iter().chain(acked_before.iter()) {
        assert!(
            listed.contains(id),
            "{id} was acknowledged before the backup, not in it"
        );
    }
    for id in &ids {
        assert!(
            acked_all.contains(id),
            "{id} is in the copy but was never acknowledged"
        );
    }
    let (s, b) = r
        .as_key(&key_id, &token)
        .try_call("GET", "/keys/me", None)
        .unwrap();
    assert_eq!(s, 200, "the child key works on the copy: {b}");
    // The restored server is a store of its own.
    r.ok(
        "POST",
        "/things",
        Some(json!({ "thing": city("Only in the copy") })),
    );
    assert_eq!(all_thing_ids(&Client::root(&w)).len(), acked_all.len());

    // Refusals.
    let (ok, out) = weft_backup(&w, &cwd.path().join("backup-2"), &key_id, &token);
    assert!(!ok && out.contains("403") && out.contains("root"), "{out}");
    assert!(!cwd.path().join("backup-2").join("weft.redb").exists());
    let (ok, out) = weft_backup(&w, &copy, ROOT_KEY, ROOT_TOKEN);
    assert!(
        !ok && out.contains("not empty") && out.contains(&copy.display().to_string()),
        "{out}"
    );
    let mem = Weft::start(cwd.path(), &["--database", "dev-memory"])
        .unwrap_or_else(|e| panic!("dev-memory did not start: {e}"));
    let (ok, out) = weft_backup(&mem, &cwd.path().join("backup-3"), ROOT_KEY, ROOT_TOKEN);
    assert!(
        !ok && out.contains("501") && out.contains("cannot make a backup"),
        "{out}"
    );
}

/// One backup at a time: of four `POST /backups` sent together (real threads, the real binary),
/// the ones that find a backup running are 409 saying so, at least one succeeds, the next one
/// after them succeeds, and no scratch files are left.
#[test]
fn concurrent_backups_run_one_at_a_time() {
    let cwd = tempfile::tempdir().unwrap();
    let w = Weft::start(cwd.path(), &[]).unwrap_or_else(|e| panic!("weft did not start: {e}"));
    let c = Client::root(&w);
    city_class(&c);
    // Enough data that a backup takes a moment.
    for b in 0..4 {
        let things: Vec<Value> = (0..500).map(|i| city(&format!("C{b}-{i}"))).collect();
        c.ok(
            "POST",
            "/batching/things",
            Some(json!({ "things": things })),
        );
    }
    let answers = weft_e2e_tests::on_threads(4, |_| {
        c.try_call("POST", "/backups", None)
            .map(|(s, b)| (s, if s == 200 { Value::Null } else { b }))
            .unwrap()
    });
    let ok = answers.iter().filter(|(s, _)| *s == 200).count();
    assert!(ok >= 1, "{answers:?}");
    assert!(
        ok < answers.len(),
        "the four overlapped, yet every one ran: {answers:?}"
    );
    for (s, b) in answers.iter().filter(|(s, _)| *s != 200) {
        assert_eq!(*s, 409, "{b}");
        assert!(
            b.to_string().contains("already running"),
            "the refusal says why: {b}"
        );
    }
    let (s, _) = c.try_call("POST", "/backups", None).unwrap();
    assert_eq!(s, 200, "a backup after the others have finished");
    let scratch = cwd.path().join("data/tmp");
    let left: Vec<_> = std::fs::read_dir(&scratch)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "scratch files left behind: {left:?}");
}

/// Search by meaning on the default store: every acknowledged write's vector — the vector of
/// the object's last acknowledged version, made by the host from its words — is in the store
/// after a SIGKILL under concurrent creates and updates, and after the restart the server finds
/// objects by meaning again (the HNSW indexes rebuilt from the store: none was saved).
#[test]
fn every_acknowledged_vector_survives_a_sigkill_under_writes_and_a_restart() {
    use weft_core::ontology::{Class, Property};
    const WORDS: [&str; 8] = [
        "harbour", "mountain", "river", "castle", "market", "village", "bridge", "island",
    ];
    let description =
        |i: usize, u: usize| format!("{} {} town", WORDS[i % 8], WORDS[(i / 8 + u) % 8]);
    let cwd = tempfile::tempdir().unwrap();
    let data = cwd.path().join("weftdata");
    let data_arg = data.display().to_string();
    let c11y = weft_e2e_tests::test_contextionary().display().to_string();
    let args = [
        "--data-dir",
        data_arg.as_str(),
        "--contextionary",
        c11y.as_str(),
    ];
    let mut w =
        Weft::start(cwd.path(), &args).unwrap_or_else(|e| panic!("weft did not start: {e}"));
    let c = Client::root(&w);
    c.ok(
        "POST",
        "/schema/things",
        Some(json!({"class": "City", "properties": [
            {"name": "name", "@dataType": ["string"]},
            {"name": "description", "@dataType": ["text"]}]})),
    );
    // id → (name, description) of the last acknowledged version.
    let acked: Arc<Mutex<HashMap<String, (String, String)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let thing = |name: &str, d: &str| json!({"@context": "", "@class": "City", "schema": {"name": name, "description": d}});
    let mut threads = vec![];
    for t in 0..4usize {
        let (c, acked, stop) = (c.clone(), Arc::clone(&acked), Arc::clone(&stop));
        threads.push(std::thread::spawn(move || {
            for i in 0..100_000usize {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let n = t * 100_000 + i;
                let ok = if t < 2 {
                    // Batches of 20.
                    let items: Vec<Value> = (0..20)
                        .map(|j| thing(&format!("b{n}-{j}"), &description(n + j, 0)))
                        .collect();
                    match c.try_call("POST", "/batching/things", Some(&json!({ "things": items }))) {
                        Ok((200, b)) => {
                            let mut a = acked.lock().unwrap();
                            for (j, item) in b.as_array().unwrap().iter().enumerate() {
                                if item["result"]["status"] == "SUCCESS" {
                                    a.insert(
                                        item["thingId"].as_str().unwrap().to_string(),
                                        (format!("b{n}-{j}"), description(n + j, 0)),
                                    );
                                }
                            }
                            true
                        }
                        _ => false,
                    }
                } else {
                    // A create, then an update of its description.
                    let name = format!("s{n}");
                    match c.try_call("POST", "/things", Some(&json!({ "thing": thing(&name, &description(n, 0)) }))) {
                        Ok((200, b)) => {
                            let id = b["thingId"].as_str().unwrap().to_string();
                            acked.lock().unwrap().insert(id.clone(), (name.clone(), description(n, 0)));
                            let patch = json!([{"op": "replace", "path": "/schema/description", "value": description(n, 3)}]);
                            match c.try_call("PATCH", &format!("/things/{id}"), Some(&patch)) {
                                Ok((200, _)) => {
                                    acked.lock().unwrap().insert(id, (name, description(n, 3)));
                                    true
                                }
                                _ => false,
                            }
                        }
                        _ => false,
                    }
                };
                if !ok {
                    return;
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.lock().unwrap().len() < 800 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    w.sigkill();
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    let acked = Arc::try_unwrap(acked).ok().unwrap().into_inner().unwrap();
    assert!(
        acked.len() >= 800,
        "only {} writes acknowledged",
        acked.len()
    );

    // The vectors the host makes of those versions, with the same contextionary in process.
    let c11y_plugin =
        weft::plugins::load_file(&build_dir().join("libweft_contextionary.so")).unwrap();
    let words =
        weft_core::ContextionaryHandle::open(&c11y_plugin, &json!({ "path": c11y })).unwrap();
    let class = Class {
        class: "City".into(),
        properties: vec![
            Property {
                name: "name".into(),
                data_type: vec!["string".into()],
                ..Default::default()
            },
            Property {
                name: "description".into(),
                data_type: vec!["text".into()],
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    {
        let plugin = weft::plugins::load_file(&build_dir().join("libweft_embedded.so")).unwrap();
        let config = json!({ "path": data.join("store") }).to_string();
        let opened = plugin
            .open_connector(&config, HostLogger::discard())
            .unwrap();
        let vectors = opened
            .vectors
            .expect("the embedded plugin has vectors (interface 1.5)");
        let mut updated_later = 0;
        for (id, (name, d)) in &acked {
            let props = json!({"name": name, "description": d});
            let want =
                weft_core::meaning::object_vector(&words, &class, props.as_object().unwrap())
                    .unwrap()
                    .expect("every description has known words");
            let got = block_on(vectors.get_vector(ObjectKind::Thing, id.parse().unwrap()))
                .unwrap()
                .into_option()
                .unwrap_or_else(|| panic!("acknowledged thing {id} ({d}) has no vector"));
            let same =
                got.len() == want.len() && got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-5);
            if !same {
                // An update in flight at the kill may have landed after the acknowledged
                // version: then the vector is the updated description's.
                let n: usize = name.trim_start_matches('s').parse().unwrap_or(usize::MAX);
                let next = json!({"name": name, "description": description(n, 3)});
                let next =
                    weft_core::meaning::object_vector(&words, &class, next.as_object().unwrap())
                        .unwrap()
                        .unwrap();
                assert!(
                    name.starts_with('s') && got.iter().zip(&next).all(|(a, b)| (a - b).abs() < 1e-5),
                    "thing {id}: its vector is neither its acknowledged version's ({d}) nor an update's"
                );
                updated_later += 1;
            }
        }
        assert!(updated_later <= 2, "{updated_later} vectors of later versions: at most one write per updating thread was in flight");
    }

    // Restarted, the server finds by meaning again: searching with an object's own words (its
    // class name and description; its name "s<n>" is no word) finds it at certainty 1.
    let w = Weft::start(cwd.path(), &args).unwrap_or_else(|e| panic!("weft did not restart: {e}"));
    let c = Client::root(&w);
    let (id, (_, d)) = acked
        .iter()
        .find(|(_, (name, _))| name.starts_with('s'))
        .expect("an acknowledged single create");
    let q = format!(
        r#"{{ Local {{ Get {{ Things {{ City(explore: {{concepts: ["city", "{d}"]}}, first: 200) {{ uuid _certainty }} }} }} }} }}"#
    );
    let b = c.ok("POST", "/graphql", Some(json!({ "query": q })));
    let hits = b["data"]["Local"]["Get"]["Things"]["City"]
        .as_array()
        .unwrap_or_else(|| panic!("{b}"));
    assert!(hits[0]["_certainty"].as_f64().unwrap() > 0.9999, "{b}");
    assert!(
        hits.iter().any(|h| h["uuid"] == id.as_str()),
        "{id} ({d}) is among the objects nearest to its own words: {b}"
    );
    eprintln!(
        "vector crash test: {} acknowledged vectors all there after SIGKILL",
        acked.len()
    );
}
