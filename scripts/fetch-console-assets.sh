#!/usr/bin/env bash
# Refreshes the browser console's third-party files in host/console/assets/ (checked in: the
# server builds without npm; run this only to refresh or to check them).
#
# Takes GraphiQL 4.1.2 (the last release with a prebuilt browser bundle), React 18.3.1 and
# ReactDOM 18.3.1 (the last with UMD files) with the ordinary npm client (`npm pack`, the
# registry npm is configured with), checks each tarball against the sha512 pinned below (the
# `integrity` npm prints), and copies out:
#   graphiql.min.js, graphiql.min.css         (graphiql/)
#   react.production.min.js                   (react/umd/)
#   react-dom.production.min.js               (react-dom/umd/)
#   LICENSE.graphiql, LICENSE.react, LICENSE.react-dom
# The files are copied byte for byte (the server serves them as they are).
#
# To move to other versions: change the version and its integrity below together (`npm pack
# --json NAME@VERSION` prints the integrity), run this script, look at the diff, and commit.
#
#   scripts/fetch-console-assets.sh          # fetch, check, copy
#   scripts/fetch-console-assets.sh --check  # fetch and check, then compare with the checked-in files
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/host/console/assets"

# name version sha512-integrity
packages=(
  "graphiql 4.1.2 sha512-rNlzQIAzm6i2KBXmVQWBgLvt0TloxFVB2d18bukvdsvjEuFDHsKx5IVOomL1W1o5WW+tE54+ioHb2AEKzO2cUg=="
  "react 18.3.1 sha512-wS+hAgJShR0KhEvPJArfuPVN1+Hz1t0Y6n5jLrGQbkb4urgPE/0Rve+1kMB1v/oWgHgm4WIcV+i7F2pTVj+2iQ=="
  "react-dom 18.3.1 sha512-5m4nQKp+rZRb09LNH59GM4BxTh9251/ylbKIbpe7TpGxfJ+9kv6BLkLBXIjjspbgbnIBNqlI23tRnTWT0snUIw=="
)
# name: file in the package -> file in assets/
files=(
  "graphiql package/graphiql.min.js graphiql.min.js"
  "graphiql package/graphiql.min.css graphiql.min.css"
  "graphiql package/LICENSE LICENSE.graphiql"
  "react package/umd/react.production.min.js react.production.min.js"
  "react package/LICENSE LICENSE.react"
  "react-dom package/umd/react-dom.production.min.js react-dom.production.min.js"
  "react-dom package/LICENSE LICENSE.react-dom"
)

check_only=0
[[ "${1:-}" == "--check" ]] && check_only=1

for tool in npm tar python3; do
  command -v "$tool" >/dev/null || { echo "fetch-console-assets: $tool not found" >&2; exit 1; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

for p in "${packages[@]}"; do
  read -r name version integrity <<<"$p"
  echo "fetch-console-assets: npm pack $name@$version" >&2
  tgz="$(npm pack --silent "$name@$version" | tail -n 1)"
  got="sha512-$(python3 -c 'import base64,hashlib,sys; print(base64.b64encode(hashlib.sha512(open(sys.argv[1],"rb").read()).digest()).decode())' "$tgz")"
  if [[ "$got" != "$integrity" ]]; then
    echo "fetch-console-assets: $tgz has $got, pinned $integrity: refusing it" >&2
    exit 1
  fi
  mkdir -p "x/$name"
  tar -xzf "$tgz" -C "x/$name"
done

status=0
for f in "${files[@]}"; do
  read -r name from to <<<"$f"
  src="x/$name/$from"
  [[ -f "$src" ]] || { echo "fetch-console-assets: $name has no $from" >&2; exit 1; }
  if ((check_only)); then
    if ! cmp -s "$src" "$dest/$to"; then
      echo "fetch-console-assets: host/console/assets/$to differs from $name's $from" >&2
      status=1
    fi
  else
    mkdir -p "$dest"
    cp "$src" "$dest/$to"
    echo "fetch-console-assets: $name $from -> host/console/assets/$to" >&2
  fi
done
if ((check_only)) && ((status == 0)); then
  echo "fetch-console-assets: the checked-in files are the pinned packages' files" >&2
fi
exit "$status"
