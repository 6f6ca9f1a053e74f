#!/usr/bin/env bash
# Builds the fixture plugins the plugin-loading tests use, once, into target/fixtures/:
#   test-panicky.so, interface-1-0.so, interface-1-1.so, interface-1-2.so, interface-1-3.so,
#   interface-2-0.so, layout-change.so
# (interface-1-1.so is "legacy-memory" and interface-1-2.so "memory-1-2": weft-dev-memory built
# against the 1.1 and the 1.2 interface).
# They are built outside the workspace so their interface features never reach the host.
#
# interface-1-3.so is dev-memory as it was at interface 1.3.0 before the SDK and the loader left
# weft-plugin-api: its sources (and that weft-plugin-api's) come from the repository's history,
# commit 263524b, extracted into target/fixtures/src/interface-1-3/ and built there. It proves
# that a plugin built against 1.3 keeps loading after the split. Needs the full history (CI
# clones have it).
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

# dev-memory and weft-plugin-api as they were at 1.3.0, before the split.
PRESPLIT=263524b
if ! git -C "$root" cat-file -e "$PRESPLIT^{commit}" 2>/dev/null; then
  echo "build-test-plugins.sh: commit $PRESPLIT (interface 1.3.0 before the SDK split) is not in this clone; fetch the full history (git fetch --unshallow) to build the interface-1-3 fixture" >&2
  exit 1
fi
src="$out/src/interface-1-3"
rm -rf "$src"
mkdir -p "$src"
git -C "$root" archive "$PRESPLIT" Cargo.toml Cargo.lock plugins/api plugins/dev-memory plugins/conformance \
  | tar -x -C "$src"
# A workspace of its own (the crates inherit edition, versions and dependencies from it): the
# old root manifest with only these members.
mv "$src/Cargo.toml" "$src/Cargo.toml.orig"
{
  printf '[workspace]\nresolver = "2"\nmembers = ["plugins/api", "plugins/dev-memory"]\n\n'
  awk '/^\[/ { keep = ($0 == "[workspace.package]" || $0 == "[workspace.dependencies]") } keep' \
    "$src/Cargo.toml.orig"
} > "$src/Cargo.toml"
# A target directory of its own: a cdylib's file name has no hash, so the interface-1-1 and 1-2
# builds above (today's dev-memory, without its root module) would overwrite
# deps/libweft_dev_memory.so, and a fresh build here would copy theirs.
cargo build --quiet --manifest-path "$src/plugins/dev-memory/Cargo.toml" --target-dir "$out/build-1-3" --lib
cp "$out/build-1-3/debug/libweft_dev_memory.so" "$out/interface-1-3.so"

echo "fixture plugins in $out: $(cd "$out" && ls *.so | tr '\n' ' ')"
