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

    fn spawn(args: &[&str], envs: &[(&str, &str)], fixed_root: bool) -> Server {
        use std::io::BufRead;
        dev_memory_so();
        let mut cmd = std::process::Command::new(weft_bin());
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--plugin-dir"])
            .arg(build_dir())
            .args(args)
            .env_remove("WEFT_CONFIG_FILE")
            .env_remove("WEFT_LISTEN")
            .env_remove("WEFT_PLUGIN_DIR")
            .env(
                "WEFT_LOG",
                std::env::var("WEFT_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env_remove("WEFT_ROOT_KEY")
            .env_remove("WEFT_ROOT_TOKEN")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit());
        if fixed_root {
            cmd.env("WEFT_ROOT_KEY", ROOT_KEY)
                .env("WEFT_ROOT_TOKEN", ROOT_TOKEN);
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
