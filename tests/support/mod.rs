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

/// A running `weft serve` on 127.0.0.1 with a free port; killed when dropped.
pub struct Server {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT/weaviate/v1`.
    pub url: String,
}

impl Server {
    /// Starts the real binary with the dev-memory plugin from `target/debug`.
    pub fn start() -> Server {
        Self::start_with(&[], &[])
    }

    /// Starts it with extra arguments and environment variables.
    pub fn start_with(args: &[&str], envs: &[(&str, &str)]) -> Server {
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
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start weft");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("weft: listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let url = match rx.recv_timeout(std::time::Duration::from_secs(30)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("weft did not report its address within 30 s");
            }
        };
        Server { child, url }
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
