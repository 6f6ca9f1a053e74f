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
