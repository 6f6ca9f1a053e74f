//! The host's crates depend in one direction, and the core knows no HTTP: checked on the real
//! dependency tree (`cargo tree`), so a dependency added by accident fails here.
use std::collections::BTreeSet;
use std::process::Command;

/// Every package `package` depends on (normal dependencies, transitively), by name.
fn dependencies(package: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-p",
            package,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

const HTTP: [&str; 7] = [
    "poem",
    "poem-openapi",
    "async-graphql",
    "async-graphql-poem",
    "reqwest",
    "hyper",
    "http",
];

#[test]
fn weft_core_has_no_http_crate() {
    let deps = dependencies("weft-core");
    assert!(deps.contains("weft-plugin-api"), "{deps:?}");
    let found: Vec<&str> = HTTP.iter().copied().filter(|h| deps.contains(*h)).collect();
    assert!(
        found.is_empty(),
        "weft-core depends on HTTP crates {found:?}"
    );
    for above in [
        "weft-rest",
        "weft-graphql",
        "weft-p2p",
        "weft-peer-protocol",
        "weft-genesis",
        "weft",
    ] {
        assert!(
            !deps.contains(above),
            "weft-core depends on {above}, a layer above it"
        );
    }
}

/// What crosses between servers (the peer protocol) knows nothing of the core, the front ends
/// or either server; the genesis stands on the protocol alone.
#[test]
fn the_peer_protocol_is_below_both_the_peer_and_the_genesis() {
    let protocol = dependencies("weft-peer-protocol");
    for not in [
        "weft-core",
        "weft-plugin-api",
        "weft-p2p",
        "weft-genesis",
        "weft-rest",
        "weft-graphql",
        "weft",
    ] {
        assert!(
            !protocol.contains(not),
            "weft-peer-protocol depends on {not}"
        );
    }
    let genesis = dependencies("weft-genesis");
    assert!(genesis.contains("weft-peer-protocol"), "{genesis:?}");
    for not in [
        "weft-core",
        "weft-plugin-api",
        "weft-p2p",
        "weft-rest",
        "weft-graphql",
        "weft",
    ] {
        assert!(
            !genesis.contains(not),
            "weft-genesis depends on {not}: the genesis knows no peer's core"
        );
    }
    let p2p = dependencies("weft-p2p");
    assert!(p2p.contains("weft-peer-protocol"));
    assert!(
        !p2p.contains("weft-genesis"),
        "weft-p2p depends on the genesis server"
    );
}

#[test]
fn front_ends_sit_on_the_core_and_not_on_each_other_upwards() {
    let graphql = dependencies("weft-graphql");
    assert!(graphql.contains("weft-core"));
    for not in ["weft-rest", "weft", "poem", "poem-openapi"] {
        assert!(!graphql.contains(not), "weft-graphql depends on {not}");
    }
    // Network queries reach the network through weft-core's `Network` port, not weft-p2p.
    assert!(
        !graphql.contains("weft-p2p"),
        "weft-graphql depends on weft-p2p"
    );
    let p2p = dependencies("weft-p2p");
    assert!(p2p.contains("weft-core"));
    for not in ["weft-rest", "weft-graphql", "weft"] {
        assert!(
            !p2p.contains(not),
            "weft-p2p depends on {not}, a front end beside or above it"
        );
    }
    let rest = dependencies("weft-rest");
    assert!(rest.contains("weft-core") && rest.contains("weft-graphql"));
    assert!(
        !rest.contains("weft"),
        "weft-rest depends on the binary crate"
    );
}
