//! No plugin links the host: every plugin's normal and build dependencies (what goes into its
//! `.so`) hold `weft-plugin-api` — and, for connectors, this SDK — but neither the host's
//! loader (`weft-plugin-loader`) nor any other crate of the host (`host/`). Checked on the real
//! dependency tree (`cargo tree --offline`), so a dependency added by accident fails here; the
//! loader reaches plugins' tests only as a dev-dependency (through the conformance kit).
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every plugin library of the workspace, and whether it is a connector (which uses the SDK).
const PLUGINS: [(&str, bool); 5] = [
    ("weft-dev-memory", true),
    ("weft-embedded", true),
    ("weft-cassandra", true),
    ("weft-gremlin", true),
    ("weft-contextionary", false),
];

fn cargo(args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("cargo prints UTF-8")
}

/// The workspace's root directory.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root")
}

/// The packages whose manifest lies under `host/`: the host's crates, the loader among them.
fn host_crates() -> BTreeSet<String> {
    let metadata: serde_json::Value = serde_json::from_str(&cargo(&[
        "metadata",
        "--offline",
        "--no-deps",
        "--format-version",
        "1",
    ]))
    .expect("cargo metadata answers JSON");
    let host = root().join("host");
    metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter(|p| {
            p["manifest_path"]
                .as_str()
                .is_some_and(|m| Path::new(m).starts_with(&host))
        })
        .map(|p| p["name"].as_str().expect("a name").to_string())
        .collect()
}

/// Every package in the normal and build dependencies of `package`, transitively, by name.
fn linked_into(package: &str) -> BTreeSet<String> {
    cargo(&[
        "tree",
        "--offline",
        "-e",
        "normal,build",
        "--prefix",
        "none",
        "-p",
        package,
    ])
    .lines()
    .filter_map(|l| l.split_whitespace().next())
    .map(str::to_string)
    .collect()
}

#[test]
fn no_plugin_links_the_loader_or_any_host_crate() {
    let host = host_crates();
    for expected in ["weft-plugin-loader", "weft-core", "weft"] {
        assert!(
            host.contains(expected),
            "{expected} not found under host/: {host:?}"
        );
    }
    for (plugin, connector) in PLUGINS {
        let deps = linked_into(plugin);
        assert!(deps.contains("weft-plugin-api"), "{plugin}: {deps:?}");
        if connector {
            assert!(deps.contains("weft-connector-sdk"), "{plugin}: {deps:?}");
        }
        let linked: Vec<&String> = deps.intersection(&host).collect();
        assert!(
            linked.is_empty(),
            "{plugin} links host crates {linked:?}: a plugin's .so must hold no host code (use them as dev-dependencies only)"
        );
        assert!(
            !deps.contains("weft-connector-tests"),
            "{plugin} links the conformance kit (a dev-dependency)"
        );
    }
}

/// The interface and the SDK themselves: what every plugin links.
#[test]
fn the_interface_and_the_sdk_stand_alone() {
    let host = host_crates();
    let api = linked_into("weft-plugin-api");
    assert!(!api.contains("weft-connector-sdk"), "{api:?}");
    assert!(
        !api.contains("tokio"),
        "the interface needs no runtime: {api:?}"
    );
    for (name, deps) in [
        ("weft-plugin-api", api),
        ("weft-connector-sdk", linked_into("weft-connector-sdk")),
    ] {
        let linked: Vec<&String> = deps.intersection(&host).collect();
        assert!(linked.is_empty(), "{name} links host crates {linked:?}");
    }
}
