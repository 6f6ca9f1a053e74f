#!/usr/bin/env bash
# The project's test command (README): builds the binary and the plugins once, then runs every
# test in the workspace against those real files.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace
scripts/build-test-plugins.sh
scripts/fetch-test-contextionary.sh
cargo test --workspace "$@"
# The REST, GraphQL and newest-first end-to-end tests once more through each distributed connector
# whose real server is up (.ci/run starts them with scripts/real-servers.sh and exports the
# variables); each test server gets a fresh keyspace or namespace ({unique}).
through() { # database config
  echo "== the REST, GraphQL and newest-first end-to-end tests through $1"
  WEFT_TEST_DATABASE="$1" WEFT_TEST_DATABASE_CONFIG="$2" \
    cargo test -p weft-e2e-tests --test rest_api --test graphql --test newest_first
}
if [[ -n "${WEFT_CASSANDRA_CONTACT_POINTS:-}" ]]; then
  points="\"${WEFT_CASSANDRA_CONTACT_POINTS//,/\",\"}\""
  through cassandra "{\"contact_points\": [$points], \"keyspace\": \"weft_{unique}\"}"
else
  echo "== skipping the end-to-end pass through cassandra: WEFT_CASSANDRA_CONTACT_POINTS is not set (scripts/real-servers.sh start cassandra)"
fi
if [[ -n "${WEFT_GREMLIN_URL:-}" ]]; then
  through gremlin "{\"url\": \"$WEFT_GREMLIN_URL\", \"namespace\": \"{unique}\"}"
else
  echo "== skipping the end-to-end pass through gremlin: WEFT_GREMLIN_URL is not set (scripts/real-servers.sh start gremlin)"
fi
# Clients generated from the Weaviate 0.12 contract and from openapi/weft-openapi.json, against
# the binary built above (tests/clients). pytest exits non-zero on a failure, and with 5 when it
# collected no test, so neither passes here.
scripts/python-env.sh
# The contract is exact: schemathesis (examples, coverage, fuzzing) against the served document,
# with and without a contextionary; bounded to about three minutes; fails on any finding.
WEFT_SKIP_BUILD=1 scripts/schemathesis.sh
target/py-venv/bin/python -m pytest tests/clients -q
