//! Every test file runs. Cargo builds only the targets a package declares (and, for a package
//! with its own `tests/` directory, the files at its top level), so a file nobody declares is
//! silently never compiled: here each `.rs` file under a package's `tests/` directory — for this
//! package, under `tests/` itself — must be a module of one of the package's targets (followed
//! through `mod` declarations), or lie in a directory listed in [`OWN_CRATES`].
use std::collections::BTreeSet;

use crate::rust_modules::{rust_files, workspace, Crate};

/// Directories under `tests/` that hold crates of their own, with why.
const OWN_CRATES: [(&str, &str); 1] = [(
    "fixtures/test-connector",
    "the fixture connector, built outside the workspace in six flavours by scripts/build-test-plugins.sh",
)];

#[test]
fn every_file_under_tests_is_a_module_of_a_test_binary_or_listed() {
    let mut problems = vec![];
    for package in workspace() {
        let tests = if package.name == "weft-e2e-tests" {
            package.dir.clone()
        } else {
            package.dir.join("tests")
        };
        let mut reached = BTreeSet::new();
        for (name, _, root) in &package.targets {
            let krate = Crate::read(name, root);
            problems.extend(krate.missing.iter().cloned());
            reached.extend(krate.files());
        }
        let own: Vec<_> = if package.name == "weft-e2e-tests" {
            OWN_CRATES.iter().map(|(d, _)| tests.join(d)).collect()
        } else {
            vec![]
        };
        for dir in &own {
            if !dir.join("Cargo.toml").exists() {
                problems.push(format!(
                    "{} is listed in OWN_CRATES but holds no Cargo.toml",
                    dir.display()
                ));
            }
        }
        for file in rust_files(&tests) {
            if !reached.contains(&file) && !own.iter().any(|d| file.starts_with(d)) {
                problems.push(format!(
                    "{} ({}) is a module of no test target, so it never runs: declare it \
                     (`mod name;` in tests/e2e.rs for an end-to-end test), give it a [[test]] of \
                     its own in the package's Cargo.toml, or — a crate of its own — list its \
                     directory in OWN_CRATES",
                    file.display(),
                    package.name
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
