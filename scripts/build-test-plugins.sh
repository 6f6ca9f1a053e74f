#!/usr/bin/env bash
# Builds the fixture plugins the plugin-loading tests use, once, into target/fixtures/:
#   test-panicky.so, interface-1-0.so, interface-1-1.so, interface-1-2.so, interface-2-0.so,
#   layout-change.so
# (interface-1-1.so is "legacy-memory" and interface-1-2.so "memory-1-2": weft-dev-memory built
# against the 1.1 and the 1.2 interface).
# They are built outside the workspace so their interface features never reach the host.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/target/fixtures"
mkdir -p "$out"
manifest="$root/tests/fixtures/test-connector/Cargo.toml"
# Same dependency versions as the workspace.
cp "$root/Cargo.lock" "$root/tests/fixtures/test-connector/Cargo.lock"
build() { # flavour features
  cargo build --quiet --manifest-path "$manifest" --target-dir "$out/build" ${2:+--features "$2"}
  cp "$out/build/debug/libweft_test_connector.so" "$out/$1.so"
}
build test-panicky ""
build interface-1-0 interface-1-0
build interface-1-1 interface-1-1
build interface-1-2 interface-1-2
build interface-2-0 interface-2-0
build layout-change layout-change
echo "fixture plugins in $out: $(cd "$out" && ls *.so | tr '\n' ' ')"
