#!/usr/bin/env bash
# The project's test command (README): builds the binary and the plugins once, then runs every
# test in the workspace against those real files.
set -euo pipefail
cd "$(dirname "$0")/.."
# WEFT_REQUIRE_REAL_SERVERS=1 (.ci/run sets it): every real-server suite must run, none may skip;
# a missing server variable fails here at once (and in the suites themselves, should they run
# without this script).
real_servers=(WEFT_CASSANDRA_CONTACT_POINTS WEFT_GREMLIN_URL WEFT_JANUSGRAPH_URL WEFT_CASSANDRA_AUTH_CONTACT_POINTS)
required() { [[ -n "${WEFT_REQUIRE_REAL_SERVERS:-}" && "${WEFT_REQUIRE_REAL_SERVERS}" != 0 ]]; }
if required; then
  for var in "${real_servers[@]}"; do
    if [[ -z "${!var:-}" ]]; then
      echo "scripts/test.sh: WEFT_REQUIRE_REAL_SERVERS=1 but $var is not set (.ci/run starts the real servers and exports their variables)" >&2
      exit 1
    fi
  done
fi
# Says that the end-to-end pass through $1 is skipped ($2: why), or fails when it may not be.
skip_pass() {
  if required; then
    echo "scripts/test.sh: WEFT_REQUIRE_REAL_SERVERS=1 but the end-to-end pass through $1 would be skipped: $2" >&2
    exit 1
  fi
  echo "== skipping the end-to-end pass through $1: $2"
}
cargo build --workspace
scripts/build-test-plugins.sh
scripts/fetch-test-contextionary.sh
cargo test --workspace "$@"
# The REST, GraphQL, newest-first and search-by-meaning end-to-end tests once more through each
# distributed connector
# whose real server is up (.ci/run starts them with scripts/real-servers.sh and exports the
# variables); each test server gets a fresh keyspace or namespace ({unique}). The three are
# modules of the one end-to-end binary, chosen by their test names' module prefix.
through() { # database config
  echo "== the REST, GraphQL, newest-first and search-by-meaning end-to-end tests through $1"
  WEFT_TEST_DATABASE="$1" WEFT_TEST_DATABASE_CONFIG="$2" \
    cargo test -p weft-e2e-tests --test e2e -- rest_api:: graphql:: newest_first:: search_by_meaning::
}
if [[ -n "${WEFT_CASSANDRA_CONTACT_POINTS:-}" ]]; then
  points="\"${WEFT_CASSANDRA_CONTACT_POINTS//,/\",\"}\""
  through cassandra "{\"contact_points\": [$points], \"keyspace\": \"weft_{unique}\"}"
else
  skip_pass cassandra "WEFT_CASSANDRA_CONTACT_POINTS is not set (scripts/real-servers.sh start cassandra)"
fi
if [[ -n "${WEFT_GREMLIN_URL:-}" ]]; then
  through gremlin "{\"url\": \"$WEFT_GREMLIN_URL\", \"namespace\": \"{unique}\"}"
else
  skip_pass gremlin "WEFT_GREMLIN_URL is not set (scripts/real-servers.sh start gremlin)"
fi
# Clients generated from the Weaviate 0.12 contract and from openapi/weft-openapi.json, against
# the binary built above (tests/clients). pytest exits non-zero on a failure, and with 5 when it
# collected no test, so neither passes here.
scripts/python-env.sh
# The contract is exact: schemathesis (examples, coverage, fuzzing) against the served document,
# with and without a contextionary; bounded to about three minutes; fails on any finding.
WEFT_SKIP_BUILD=1 scripts/schemathesis.sh
target/py-venv/bin/python -m pytest tests/clients -q
# The browser console in headless Chromium (Debian's `chromium`, which .ci/run installs):
# GraphiQL and the network page against real servers, nothing loaded from outside 127.0.0.1
# (tests/browser; screenshots under target/console/). Without chromium it is skipped here, and
# fails under WEFT_REQUIRE_REAL_SERVERS=1.
if command -v chromium >/dev/null 2>&1 || [[ -n "${WEFT_CHROMIUM:-}" ]]; then
  echo "== the browser console in headless Chromium (tests/browser)"
  target/py-venv/bin/python -m pytest tests/browser -q
elif required; then
  echo "scripts/test.sh: WEFT_REQUIRE_REAL_SERVERS=1 but chromium is not installed (.ci/run installs it: apt-get install chromium)" >&2
  exit 1
else
  echo "== skipping the browser console tests (tests/browser): chromium is not installed (apt-get install chromium)"
fi
