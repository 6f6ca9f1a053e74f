//! The host's crates depend in one direction, and the core knows no HTTP: checked on the real
//! dependency tree (`cargo tree`), so a dependency added by accident fails here. Inside every
//! crate of the workspace, modules depend in one direction too: checked on the source
//! ([`crate::rust_modules`]).
use std::collections::BTreeSet;

use crate::rust_modules::{cargo, workspace};

/// Every package `package` depends on (normal dependencies, transitively), by name.
fn dependencies(package: &str) -> BTreeSet<String> {
    let out = cargo(&["tree", "-e", "normal", "--prefix", "none", "-p", package]);
    String::from_utf8_lossy(&out)
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

/// Admission control (`weft-admission`) is one loop below both servers: it knows no crate of
/// the workspace, and `weft-rest` and `weft-genesis` both serve through it.
#[test]
fn admission_control_stands_below_both_servers() {
    let admission = dependencies("weft-admission");
    let own: Vec<&String> = admission
        .iter()
        .filter(|d| d.starts_with("weft") && d.as_str() != "weft-admission")
        .collect();
    assert!(own.is_empty(), "weft-admission depends on {own:?}");
    for server in ["weft-rest", "weft-genesis"] {
        assert!(
            dependencies(server).contains("weft-admission"),
            "{server} does not serve through weft-admission"
        );
    }
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

/// `weft migrate`'s work goes through the plugin interface alone: `weft-migrate` stands on the
/// loader and the interface, never on the core, a server or an HTTP crate.
#[test]
fn the_migration_stands_on_the_plugin_interface_alone() {
    let migrate = dependencies("weft-migrate");
    let own: Vec<&String> = migrate
        .iter()
        .filter(|d| {
            d.starts_with("weft")
                && !["weft-migrate", "weft-plugin-loader", "weft-plugin-api"].contains(&d.as_str())
        })
        .collect();
    assert!(own.is_empty(), "weft-migrate depends on {own:?}");
    let found: Vec<&str> = HTTP
        .iter()
        .copied()
        .filter(|h| migrate.contains(*h))
        .collect();
    assert!(
        found.is_empty(),
        "weft-migrate depends on HTTP crates {found:?}"
    );
    assert!(dependencies("weft").contains("weft-migrate"));
}

/// The browser console's files stand alone: the servers (`weft-rest`, `weft-genesis`) serve them;
/// the console knows no server, no other crate of the workspace and no HTTP framework.
#[test]
fn the_console_stands_below_the_servers_that_serve_it() {
    let console = dependencies("weft-console");
    let own: Vec<&String> = console
        .iter()
        .filter(|d| d.starts_with("weft") && d.as_str() != "weft-console")
        .collect();
    assert!(own.is_empty(), "weft-console depends on {own:?}");
    let found: Vec<&str> = HTTP
        .iter()
        .copied()
        .filter(|h| console.contains(*h))
        .collect();
    assert!(
        found.is_empty(),
        "weft-console depends on HTTP crates {found:?}"
    );
    assert!(dependencies("weft-rest").contains("weft-console"));
    assert!(dependencies("weft-genesis").contains("weft-console"));
}

/// No module imports one that imports it back, in any crate of the workspace.
///
/// The rule, on each library and binary crate's module tree (read from its root file through its
/// `mod` declarations, `#[path]` and inline `mod x { … }` modules included):
/// * module A *names* module B when a path in A's code or in one of A's own `use` declarations
///   leads into B: `crate::b::…`, `super::…`, `self::…`, `$crate::…` (in a macro: the module
///   that defines the macro), or a path that starts with the name of one of A's child modules. A
///   path to an item leads to the module that defines it, through re-exports (`pub use`) and
///   globs (`use x::*`);
/// * `pub use` (and every `pub(…) use`) only re-exports: it is no edge, so a crate root that
///   re-exports its modules' types may define what they use;
/// * a `mod` declaration is no edge either: a module may name its own submodules, and a
///   submodule (a `tests` module, say) its parent, only as long as there is no path back;
/// * a cycle is any set of two or more modules each reachable from the others (a strongly
///   connected component of this graph); the test lists each with the edges inside it.
///
/// As a check of the reading itself, every `mod x;` must find its file and every `.rs` file under
/// a package's `src/` must be a module of one of the package's crates.
#[test]
fn no_module_imports_one_that_imports_it_back() {
    let mut problems = vec![];
    for package in workspace() {
        let crates = package.crates();
        let mut reached = BTreeSet::new();
        for krate in &crates {
            problems.extend(krate.missing.iter().cloned());
            reached.extend(krate.files());
            let edges = krate.edges();
            for cycle in krate.cycles() {
                let inside: Vec<String> = edges
                    .iter()
                    .filter(|e| cycle.contains(&e.from) && cycle.contains(&e.to))
                    .map(|e| format!("    {} -> {}  at {}", e.from, e.to, e.at))
                    .collect();
                problems.push(format!(
                    "{}: a module cycle among {}:\n{}",
                    krate.name,
                    cycle.join(", "),
                    inside.join("\n")
                ));
            }
        }
        for file in crate::rust_modules::rust_files(&package.dir.join("src")) {
            if !reached.contains(&file) {
                problems.push(format!(
                    "{}: {} is a module of none of its crates",
                    package.name,
                    file.display()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
