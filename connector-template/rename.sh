#!/usr/bin/env bash
# Turns a copy of connector-template into your own connector crate.
#
#   cp -r /path/to/weft/connector-template mystore && cd mystore
#   WEFT_DIR=/path/to/weft ./rename.sh mystore
#
# NAME (letters, digits and '-', starting with a letter; a leading "weft-" is dropped) becomes:
#   package  weft-NAME          (Cargo.toml)
#   library  weft_NAME          (the plugin file: libweft_NAME.so)
#   plugin   NAME               (what database.name / --database refer to)
# in the code: every *.rs, *.toml and Cargo.lock of the copy (not target/; the README is yours
# to rewrite).
#
# WEFT_DIR (optional): a Weft checkout. The dependencies on weft-plugin-api, weft-connector-sdk
# and weft-connector-tests then point at WEFT_DIR/plugins/api, WEFT_DIR/plugins/sdk and
# WEFT_DIR/plugins/conformance (absolute paths) instead of the template's relative
# ../plugins/... paths, which only work inside a Weft checkout. To depend on a git repository
# or a published version instead, edit Cargo.toml afterwards (its comments show how).
#
# Run it once, in the copy, never in the template itself.
set -euo pipefail

usage() {
  echo "usage: [WEFT_DIR=/path/to/weft] $0 NAME   (e.g. $0 mystore -> crate weft-mystore)" >&2
  exit 2
}
[ $# -eq 1 ] || usage
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

name="${1#weft-}"
if ! [[ "$name" =~ ^[a-z][a-z0-9]*(-[a-z0-9]+)*$ ]]; then
  echo "rename.sh: $1 is not a usable name: use lower-case letters, digits and single '-', starting with a letter (e.g. mystore, my-store)" >&2
  exit 2
fi
lib="weft_${name//-/_}"
crate="weft-$name"

if ! grep -q '^name = "weft-connector-template"$' Cargo.toml; then
  echo "rename.sh: Cargo.toml is not the untouched template's (package weft-connector-template); it was renamed already?" >&2
  exit 1
fi
if [ -f ../Cargo.toml ] && grep -q 'exclude = \["connector-template"\]' ../Cargo.toml \
   && [ "$(basename "$here")" = connector-template ]; then
  echo "rename.sh: this is the template inside the Weft checkout; copy it first (cp -r connector-template ../mystore)" >&2
  exit 1
fi

weft_dir=""
if [ -n "${WEFT_DIR:-}" ]; then
  weft_dir="$(cd "$WEFT_DIR" 2>/dev/null && pwd)" || { echo "rename.sh: WEFT_DIR=$WEFT_DIR is not a directory" >&2; exit 1; }
  for crate_dir in plugins/api plugins/sdk plugins/conformance; do
    if [ ! -f "$weft_dir/$crate_dir/Cargo.toml" ]; then
      echo "rename.sh: WEFT_DIR=$weft_dir has no $crate_dir/Cargo.toml; give the root of a Weft checkout" >&2
      exit 1
    fi
  done
fi

# Escape a string for use as a sed replacement (\, & and the | delimiter).
escape() { printf '%s' "$1" | sed -e 's/[\\&|]/\\&/g'; }

# Longest names first: weft-connector-template contains connector-template.
rules=(
  -e "s|weft-connector-template|$crate|g"
  -e "s|weft_connector_template|$lib|g"
  -e "s|connector-template|$name|g"
)
if [ -n "$weft_dir" ]; then
  w="$(escape "$weft_dir")"
  rules+=(
    -e "s|path = \"\\.\\./plugins/api\"|path = \"$w/plugins/api\"|"
    -e "s|path = \"\\.\\./plugins/sdk\"|path = \"$w/plugins/sdk\"|"
    -e "s|path = \"\\.\\./plugins/conformance\"|path = \"$w/plugins/conformance\"|"
  )
fi

changed=0
while IFS= read -r -d '' file; do
  # Portable in-place edit (GNU and BSD sed differ on -i).
  sed "${rules[@]}" "$file" > "$file.rename-tmp"
  if cmp -s "$file" "$file.rename-tmp"; then
    rm -f "$file.rename-tmp"
  else
    cat "$file.rename-tmp" > "$file" && rm -f "$file.rename-tmp"
    changed=$((changed + 1))
  fi
done < <(find . -path ./target -prune -o -type f \( -name '*.rs' -o -name '*.toml' -o -name Cargo.lock \) -print0)

echo "renamed to package $crate (library $lib, plugin name \"$name\") in $changed file(s)"
if [ -n "$weft_dir" ]; then
  echo "weft-plugin-api, weft-connector-sdk and weft-connector-tests now come from $weft_dir"
elif [ ! -f ../plugins/api/Cargo.toml ]; then
  echo "note: ../plugins/api does not exist from here; set WEFT_DIR=/path/to/weft and run again on a fresh copy, or edit the dependencies in Cargo.toml" >&2
fi
echo "next: cargo test   (builds lib$lib.so and runs the conformance kit against it)"
