#!/usr/bin/env bash
# Creates the Python environment of the generated-client tests (tests/clients), the browser
# tests (tests/browser) and scripts/schemathesis.sh at target/py-venv, and installs
# tests/clients/requirements.txt, tests/browser/requirements.txt and the schemathesis pins below
# into it with pip. Idempotent: when the stamp file in the venv matches
# the requirements (and the Python that built it), it does nothing.
# Prints where the environment is; use its python: target/py-venv/bin/python -m pytest tests/clients
#
# Needs python3 (3.10 or newer) with pip; PYTHON=/path/to/python3 picks another interpreter.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/target/py-venv"
req="$root/tests/clients/requirements.txt"
browser_req="$root/tests/browser/requirements.txt"
stamp="$venv/.requirements.stamp"
python="${PYTHON:-python3}"

# scripts/schemathesis.sh: schemathesis and what it needs beyond tests/clients/requirements.txt,
# every version pinned, transitive ones too (resolved together with that file).
schemathesis_pins=(
  schemathesis==4.32.5
  click==8.5.1
  harfile==0.6.0
  hypothesis==6.170.17
  hypothesis-graphql==0.13.5
  jsonschema_rs==0.60.3
  pyrate-limiter==4.5.1
  PyYAML==6.0.4
  sortedcontainers==2.4.0
  Werkzeug==3.1.9
)

if ! command -v "$python" >/dev/null 2>&1; then
  echo "python-env: $python not found; install Python 3 (3.10 or newer) with pip" >&2
  exit 1
fi

# What the venv is built from: the requirements' content and the interpreter's version.
want="$("$python" - "$req" "$browser_req" "${schemathesis_pins[@]}" <<'EOF'
import hashlib, sys
h = hashlib.sha256()
for path in sys.argv[1:3]:
    with open(path, "rb") as f:
        h.update(f.read())
h.update("\n".join(sys.argv[3:]).encode())
print(f"{h.hexdigest()} python-{sys.version.split()[0]}")
EOF
)"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$venv/bin/python" ]] \
  && "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
  echo "python-env: up to date: $venv (python: $venv/bin/python)"
  exit 0
fi

echo "python-env: creating $venv from ${req#"$root/"}, ${browser_req#"$root/"} and the schemathesis pins" >&2
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"

# pip inside the venv: `python3 -m venv` brings it with ensurepip. Where ensurepip is missing
# (Debian without python3-venv), make the venv without pip and drive it with the interpreter's
# own pip (pip >= 22.3 installs into another environment with --python).
pip=("$venv/bin/python" -m pip)
if ! "$python" -m venv "$venv" >/dev/null 2>&1; then
  rm -rf "$venv"
  if "$python" -m venv --without-pip "$venv" && "$python" -m pip --version >/dev/null 2>&1; then
    echo "python-env: no ensurepip here; using $python's pip for the venv" >&2
    pip=("$python" -m pip --python "$venv/bin/python")
  else
    rm -rf "$venv"
    echo "python-env: cannot create a venv with $python: install its venv module and pip" \
      "(Debian: apt-get install python3-venv python3-pip)" >&2
    exit 1
  fi
fi

"${pip[@]}" install --disable-pip-version-check --no-input --quiet -r "$req" -r "$browser_req" "${schemathesis_pins[@]}"
# Pins are complete: fail here, not in a test, if something is missing or conflicting.
if ! out="$("${pip[@]}" check --disable-pip-version-check 2>&1)"; then
  echo "$out" >&2
  exit 1
fi

printf '%s\n' "$want" >"$stamp"
echo "python-env: ready: $venv (python: $venv/bin/python)"
