#!/usr/bin/env bash
# The project's test command (README): builds the binary and the plugins once, then runs every
# test in the workspace against those real files.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace
scripts/build-test-plugins.sh
cargo test --workspace "$@"
