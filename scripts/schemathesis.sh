#!/usr/bin/env bash
# The REST contract, checked by schemathesis: the real server answers what its served OpenAPI
# document (/weaviate/v1/openapi.json) says, and nothing else.
#
# Two runs, each against a fresh `weft serve` on 127.0.0.1 (a free port) with plugins from
# target/debug and a fixed root key (the tests' one, tests/support/mod.rs):
#   1. with the default, persistent `embedded` connector on a fresh data directory
#      (target/schemathesis/c11y-data, so `POST /backups` makes real backups) and the test
#      contextionary (target/contextionary/glove-top20000.fifu, made by
#      scripts/fetch-test-contextionary.sh when missing), as the README starts the server, and
#      as the first peer of a network (`--first-peer`) that takes unsigned peers
#      (`--accept-unsigned-peers`: schemathesis cannot sign), so the P2P operations are
#      exercised rather than all answered 404: a little schema and data first (so that
#      operations have something to act on, and half of the ids, class and property names
#      schemathesis sends are real ones), then every operation;
#   2. with dev-memory (nothing is kept) and without a contextionary, the /c11y operations only:
#      each must answer its documented 501,
#      whose message says how to start with one (checked here too).
# schemathesis runs with its default checks, the phases examples, coverage and fuzzing, and both
# key headers. Its configuration (written to target/schemathesis/) only states what no static
# document can: a request of the documented shape that the ontology, the key tree or the stored
# state refuses is answered 422 (and 400 where Weaviate 0.12 answers 400: deleting a class that
# cannot be deleted, a PATCH that is not a JSON Patch); the /c11y operations of run 2 answer 501.
#
# Exits non-zero on any finding (or if a server does not start), and ends with one line:
#   schemathesis: PASS|FAIL — N cases, F failures, E errors (with contextionary: …; without: …) in T s
# Reports (JUnit and JSON) and the servers' logs are in target/schemathesis/.
#
# Bounded: SCHEMATHESIS_MAX_TIME (default 150) and SCHEMATHESIS_MAX_TIME_PLAIN (default 30)
# seconds of testing for runs 1 and 2, SCHEMATHESIS_MAX_EXAMPLES (default 40) cases per operation
# and phase, SCHEMATHESIS_WORKERS (default 1) — about three minutes in all on 2 cores.
# SCHEMATHESIS_SEED=N repeats a run's choices; WEFT_SKIP_BUILD=1 uses target/debug as it is.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

max_time="${SCHEMATHESIS_MAX_TIME:-150}"
max_time_plain="${SCHEMATHESIS_MAX_TIME_PLAIN:-30}"
max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-40}"
# One worker: schemathesis's workers are threads, and CPython 3.11 before 3.11.8 can fail two
# threads' parsing at once ("AST constructor recursion depth mismatch", a tool error, not a finding).
workers="${SCHEMATHESIS_WORKERS:-1}"
root_key="0b1d3a3e-7d2b-4c55-9c1e-6f3f0a000001"
root_token="0b1d3a3e-7d2b-4c55-9c1e-6f3f0a000002"
build_dir="$root/target/debug"
contextionary="${WEFT_TEST_CONTEXTIONARY:-$root/target/contextionary/glove-top20000.fifu}"
out="$root/target/schemathesis"
started=$SECONDS

say() { echo "schemathesis.sh: $*" >&2; }

scripts/python-env.sh >&2
python="$root/target/py-venv/bin/python"
st="$root/target/py-venv/bin/schemathesis"
if [[ -z "${WEFT_SKIP_BUILD:-}" ]]; then
  cargo build --quiet -p weft -p weft-dev-memory -p weft-embedded -p weft-contextionary
fi
if [[ ! -f "$contextionary" ]]; then
  scripts/fetch-test-contextionary.sh >&2
fi

rm -rf "$out"
mkdir -p "$out"

# Servers this script started, stopped (by their pid) on any exit.
pids=()
stop_servers() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  pids=()
}
trap stop_servers EXIT

# start_server NAME [ARGS…]: sets $url to the server's http://127.0.0.1:PORT/weaviate/v1. ARGS
# must name the connector (`--database …`).
start_server() {
  local name="$1"
  shift
  # The files exist before the server starts: the loop below reads stdout at once, before the
  # background job may have opened it.
  : >"$out/$name.stdout"
  : >"$out/$name.log"
  env -u WEFT_CONFIG_FILE -u WEFT_CONFIG -u WEFT_LISTEN -u WEFT_PLUGIN_DIR -u WEFT_DATABASE \
    -u WEFT_DATABASE_CONFIG -u WEFT_CONTEXTIONARY -u WEFT_PUBLIC_URL -u WEFT_PEER_NAME \
    -u WEFT_GENESIS_URL -u WEFT_BOOTSTRAPPED_PEERS -u WEFT_FIRST_PEER \
    -u WEFT_REQUEST_CONTEXTIONARY -u WEFT_PING_INTERVAL_S -u WEFT_DATA_DIR -u WEFT_TLS_CERT \
    -u WEFT_TLS_KEY -u WEFT_CA_FILE -u WEFT_GENESIS_KEY -u WEFT_SHARE_KEY \
    -u WEFT_ACCEPT_UNSIGNED_PEERS \
    WEFT_ROOT_KEY="$root_key" WEFT_ROOT_TOKEN="$root_token" WEFT_LOG="${WEFT_LOG:-warn}" \
    "$build_dir/weft" serve --listen 127.0.0.1:0 --plugin-dir "$build_dir" "$@" \
    >"$out/$name.stdout" 2>"$out/$name.log" &
  local pid=$!
  pids+=("$pid")
  local deadline=$((SECONDS + 60))
  url=""
  while [[ -z "$url" ]]; do
    url="$(sed -n 's/^weft: listening on //p' "$out/$name.stdout" | head -n1)"
    if [[ -z "$url" ]]; then
      if ! kill -0 "$pid" 2>/dev/null || ((SECONDS > deadline)); then
        say "the $name server did not start; its log:"
        tail -n 20 "$out/$name.log" >&2
        echo "schemathesis: FAIL — the $name server did not start (see target/schemathesis/$name.log)"
        exit 1
      fi
      sleep 0.2
    fi
  done
  say "$name server: $url"
}

# run_schemathesis NAME URL CONFIG MAX_TIME [ARGS…]: one schemathesis run; its exit status.
run_schemathesis() {
  local name="$1" url="$2" config="$3" time="$4"
  shift 4
  local seed=()
  [[ -n "${SCHEMATHESIS_SEED:-}" ]] && seed=(--seed "$SCHEMATHESIS_SEED")
  mkdir -p "$out/$name"
  say "$name: schemathesis against $url/openapi.json (at most ${time} s)"
  # Run from its own directory: its example database and reports stay under target/.
  (
    cd "$out/$name"
    "$st" --config-file "$config" run "$url/openapi.json" \
      -H "X-API-KEY: $root_key" -H "X-API-TOKEN: $root_token" \
      --phases examples,coverage,fuzzing \
      --max-examples "$max_examples" --max-time "$time" --workers "$workers" \
      --request-timeout 30 --no-color \
      --report junit,json --report-dir "$out/$name" \
      "${seed[@]}" "$@"
  )
}

# --- Run 1: with the contextionary, over a little schema and data. ------------------------------
rm -rf "$out/c11y-data"
start_server c11y --database embedded --data-dir "$out/c11y-data" --contextionary "$contextionary" \
  --first-peer --peer-name fuzz-peer --public-url http://127.0.0.1:0 --accept-unsigned-peers \
  --share-key "$root_key"
c11y_url="$url"
if ! "$python" - "$c11y_url" "$root_key" "$root_token" "$out/c11y.toml" <<'EOF'
"""Makes a little schema and data, then writes the schemathesis configuration of run 1."""
import json
import sys
import urllib.error
import urllib.request

url, key, token, config = sys.argv[1:5]


def call(method, path, body=None):
    req = urllib.request.Request(
        url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"X-API-KEY": key, "X-API-TOKEN": token, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read()
    except urllib.error.HTTPError as e:
        sys.exit(f"schemathesis.sh: {method} {path} answered {e.code}: {e.read()!r}")
    return json.loads(text) if text else None


call("POST", "/schema/things", {
    "class": "Country", "description": "A country.",
    "keywords": [{"keyword": "nation", "weight": 0.9}],
    "properties": [{"name": "name", "@dataType": ["string"]}],
})
call("POST", "/schema/things", {
    "class": "City",
    "properties": [
        {"name": "name", "@dataType": ["string"]},
        {"name": "population", "@dataType": ["int"]},
        {"name": "founded", "@dataType": ["date"]},
        {"name": "inCountry", "@dataType": ["Country"]},
        {"name": "sisterCity", "@dataType": ["City"], "cardinality": "many"},
    ],
})
call("POST", "/schema/actions", {
    "class": "Journey",
    "properties": [
        {"name": "distance", "@dataType": ["number"]},
        {"name": "toCity", "@dataType": ["City"]},
    ],
})


def ref(uuid, kind):
    return {"$cref": uuid, "locationUrl": "http://localhost/", "type": kind}


things, actions = [], []
for country in ["Netherlands", "France"]:
    t = call("POST", "/things", {"thing": {
        "@context": "http://example.org", "@class": "Country", "schema": {"name": country}}})
    things.append(t["thingId"])
for i, (city, population) in enumerate([("Amsterdam", 800000), ("Paris", 2100000),
                                        ("Utrecht", 360000)]):
    t = call("POST", "/things", {"thing": {
        "@context": "http://example.org", "@class": "City",
        "schema": {"name": city, "population": population, "founded": "1275-10-27T00:00:00Z",
                   "inCountry": ref(things[i % 2], "Thing")}}})
    things.append(t["thingId"])
call("POST", f"/things/{things[2]}/properties/sisterCity", ref(things[3], "Thing"))
for distance in [40.5, 500.0]:
    a = call("POST", "/actions", {"action": {
        "@context": "http://example.org", "@class": "Journey",
        "schema": {"distance": distance, "toCity": ref(things[2], "Thing")}}})
    actions.append(a["actionId"])
keys = [call("POST", "/keys", {"read": True, "write": True, "email": "reader@example.org"})["keyId"]]
# What the DELETE operations may delete, so that the others keep something to act on.
doomed_things = [call("POST", "/things", {"thing": {
    "@context": "http://example.org", "@class": "City", "schema": {"name": f"Ghost town {i}"}}}
)["thingId"] for i in range(3)]
doomed_actions = [call("POST", "/actions", {"action": {
    "@context": "http://example.org", "@class": "Journey", "schema": {"distance": 1.0 + i}}}
)["actionId"] for i in range(3)]
doomed_keys = [call("POST", "/keys", {"read": True, "email": f"leaving{i}@example.org"})["keyId"]
               for i in range(3)]


def toml_list(values):
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


# What every operation may answer to a request of the documented shape (schemathesis's
# positive_data_acceptance): its defaults, and 422 — the contract's answer when the ontology, the
# key tree or the stored state refuses a well-formed request (an unknown class or property, a
# class name that is no word, an expiry in the past, …), which no static document can describe.
accepted = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]
# Where Weaviate 0.12 answers 400 for that: a class that cannot be deleted (missing, with
# objects, referred to), and a PATCH body that is not a JSON Patch (RFC 6902's members per
# operation are not in the document).
accepted_400 = [
    "weaviate.schema.things.delete", "weaviate.schema.actions.delete",
    "weaviate.things.patch", "weaviate.actions.patch",
    # An announced peer that does not answer its echo (any URL schemathesis makes up).
    "weaviate.peers.announce",
]
# A network question of the documented shape may ask for more than the limits.max_question_*.
accepted_413 = ["weaviate.peers.questions.create"]
with open(config, "w") as f:
    f.write(f"""# Written by scripts/schemathesis.sh (run 1: with the contextionary).
[checks.positive_data_acceptance]
expected-statuses = {toml_list(accepted)}

[[operations]]
include-operation-id = {toml_list(accepted_400)}
checks.positive_data_acceptance.expected-statuses = {toml_list(accepted + ["400"])}

[[operations]]
include-operation-id = {toml_list(accepted_413)}
checks.positive_data_acceptance.expected-statuses = {toml_list(accepted + ["413"])}

# Half of the ids and names sent are ones that exist.
[parameters]
"path.thingId" = {{ dictionary = "things", probability = 0.5 }}
"path.actionId" = {{ dictionary = "actions", probability = 0.5 }}
"path.className" = {{ dictionary = "classes", probability = 0.5 }}
"path.propertyName" = {{ dictionary = "properties", probability = 0.5 }}
"path.keyId" = {{ dictionary = "keys", probability = 0.5 }}
"path.words" = {{ dictionary = "words", probability = 0.5 }}
"query.class" = {{ dictionary = "classes", probability = 0.5 }}
"query.word" = {{ dictionary = "words", probability = 0.5 }}

[[operations]]
include-operation-id = "weaviate.things.delete"
parameters = {{ "path.thingId" = {{ dictionary = "doomed_things", probability = 0.5 }} }}
[[operations]]
include-operation-id = "weaviate.actions.delete"
parameters = {{ "path.actionId" = {{ dictionary = "doomed_actions", probability = 0.5 }} }}
[[operations]]
include-operation-id = "weaviate.keys.delete"
parameters = {{ "path.keyId" = {{ dictionary = "doomed_keys", probability = 0.5 }} }}

[dictionaries.doomed_things]
values = {toml_list(doomed_things)}
[dictionaries.doomed_actions]
values = {toml_list(doomed_actions)}
[dictionaries.doomed_keys]
values = {toml_list(doomed_keys)}
[dictionaries.things]
values = {toml_list(things)}
[dictionaries.actions]
values = {toml_list(actions)}
[dictionaries.classes]
values = ["City", "Country", "Journey"]
[dictionaries.properties]
values = ["name", "population", "founded", "inCountry", "sisterCity", "distance", "toCity"]
[dictionaries.keys]
values = {toml_list(keys)}
[dictionaries.words]
values = ["city", "country,nation", "journey", "CityName", "zebrafoo"]
""")
print(f"schemathesis.sh: seeded 3 classes, {len(things) + len(doomed_things)} things, "
      f"{len(actions) + len(doomed_actions)} actions, {len(keys) + len(doomed_keys)} keys",
      file=sys.stderr)
EOF
then
  echo "schemathesis: FAIL — could not make the schema and data to test on (see above)"
  exit 1
fi

status_c11y=0
run_schemathesis c11y "$c11y_url" "$out/c11y.toml" "$max_time" || status_c11y=$?
stop_servers

# --- Run 2: without a contextionary, the /c11y operations. -------------------------------------
start_server plain --database dev-memory
plain_url="$url"
plain_check=0
"$python" - "$plain_url" "$root_key" "$root_token" "$out/plain.toml" <<'EOF' || plain_check=$?
"""Checks the 501 of every /c11y operation, then writes the configuration of run 2."""
import json
import sys
import urllib.error
import urllib.request

url, key, token, config = sys.argv[1:5]
bad = 0
for path in ["/c11y/words/city", "/c11y/classes/nearest?word=city", "/c11y/classes/City"]:
    req = urllib.request.Request(url + path, headers={"X-API-KEY": key, "X-API-TOKEN": token})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    message = json.loads(body)["error"][0]["message"] if body else ""
    if status != 501 or "--contextionary" not in message or "weft contextionary fetch" not in message:
        print(f"schemathesis.sh: GET {path} without a contextionary answered {status}: {body!r}; "
              "expected 501 saying how to start with one", file=sys.stderr)
        bad += 1
with open(config, "w") as f:
    f.write("""# Written by scripts/schemathesis.sh (run 2: no contextionary, /c11y only).
# Every /c11y operation answers its documented 501 ("runs without a contextionary"), which
# not_a_server_error would otherwise count as a server fault.
[checks.not_a_server_error]
expected-statuses = ["2xx", "3xx", "4xx", "501"]
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]
""")
sys.exit(1 if bad else 0)
EOF

status_plain=0
run_schemathesis plain "$plain_url" "$out/plain.toml" "$max_time_plain" \
  --include-path-regex '^/c11y/' || status_plain=$?
stop_servers

# --- Summary. ----------------------------------------------------------------------------------
elapsed=$((SECONDS - started))
summary="$("$python" - "$out" <<'EOF'
"""One line per run from its JSON report: cases, failures by code, errors."""
import glob
import json
import os
import sys

out = sys.argv[1]
total = {"cases": 0, "failures": 0, "errors": 0}
parts = []
for name, label in [("c11y", "with contextionary"), ("plain", "without, /c11y")]:
    reports = sorted(glob.glob(os.path.join(out, name, "*.json")))
    if not reports:
        parts.append(f"{label}: no report")
        total["errors"] += 1
        continue
    r = json.load(open(reports[-1]))
    cases = r["test_cases"]["generated"]
    failures = sum(f["count"] for f in r["failures"])
    errors = len(r["errors"])
    by_code = ", ".join(f"{f['code']} {f['title']}: {f['count']}" for f in r["failures"])
    total["cases"] += cases
    total["failures"] += failures
    total["errors"] += errors
    parts.append(f"{label}: {cases} cases, {r['operations']['tested']} operations, "
                 f"{failures} failures{' (' + by_code + ')' if by_code else ''}, {errors} errors, "
                 f"seed {r['seed']}")
print(f"{total['cases']} cases, {total['failures']} failures, {total['errors']} errors "
      f"({'; '.join(parts)})")
EOF
)" || summary="no summary (reports unreadable)"

if ((status_c11y == 0 && status_plain == 0 && plain_check == 0)); then
  echo "schemathesis: PASS — $summary in ${elapsed} s"
else
  echo "schemathesis: FAIL — $summary in ${elapsed} s; exit statuses: with contextionary $status_c11y, without $status_plain, 501 check $plain_check; reports in target/schemathesis/"
  exit 1
fi
