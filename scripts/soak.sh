#!/usr/bin/env bash
# Soak test (README, "Benchmarks and soak"), run on demand:
#
#   scripts/soak.sh [--database dev-memory|embedded] [SECONDS] [weft-bench soak options…]
#
# Builds the release binary, dev-memory and the load generator (`weft-bench`, benches/server)
# once, starts `weft serve` on 127.0.0.1 (a free port) with dev-memory (or, with `--database
# embedded` or WEFT_SOAK_DATABASE=embedded, the default connector in its durable configuration:
# every acknowledged write fsynced, in a fresh directory under target/bench/, removed afterwards)
# and a fresh root key, makes
# the class City with 1,000 objects, then runs SECONDS (default 60, or $WEFT_SOAK_SECONDS) of
# mixed reads and writes over 64 connections (WEFT_SOAK_CONNECTIONS): REST creates 5 %, GETs
# 40 %, PATCHes 25 %, lists 10 %, GraphQL Get with an equality filter 10 % and GraphQL Get of a
# page 10 %. Prints requests, errors, requests/s, and the server's VmRSS after the warm-up (10 s,
# WEFT_SOAK_WARMUP) and at the end.
#
# Passes (exit 0) when no request failed and the end RSS is at most
#   warm-up RSS + 32 MiB + 1024 B × versions stored after the warm-up
# dev-memory keeps every object and every earlier version of it in memory, so each create and
# each PATCH legitimately grows it: 400–450 B per version measured, so the allowance is more than
# twice that; reads (70 % of the requests) store nothing, so a leak of a few hundred bytes per
# request fails the bound. `--bytes-per-version N` and `--slack-mib N` change it. Exit 1: failed;
# 2: could not run. Results also in target/bench/soak.json; the server's log in
# target/bench/soak-server.log. WEFT_SOAK_NO_BUILD=1 skips the build (uses target/release).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="$root/target/bench"
mkdir -p "$out"

database="${WEFT_SOAK_DATABASE:-dev-memory}"
if [[ $# -gt 1 && "$1" == --database ]]; then
  database="$2"
  shift 2
fi
seconds="${WEFT_SOAK_SECONDS:-60}"
if [[ $# -gt 0 && "$1" =~ ^[0-9]+$ ]]; then
  seconds="$1"
  shift
fi
warmup="${WEFT_SOAK_WARMUP:-10}"
connections="${WEFT_SOAK_CONNECTIONS:-64}"

if [[ -z "${WEFT_SOAK_NO_BUILD:-}" ]]; then
  cargo build --release -p weft -p weft-dev-memory -p weft-embedded -p weft-benches
fi
weft="$root/target/release/weft"
bench="$root/target/release/weft-bench"
for f in "$weft" "$bench" "$root/target/release/libweft_dev_memory.so"; do
  [[ -e "$f" ]] || { echo "soak: $f is missing (cargo build --release -p weft -p weft-dev-memory -p weft-benches)" >&2; exit 2; }
done

key="$(cat /proc/sys/kernel/random/uuid)"
token="$(cat /proc/sys/kernel/random/uuid)"
log="$out/soak-server.log"

# shellcheck source=lib/start-weft.sh
source "$root/scripts/lib/start-weft.sh"
start_weft soak "$log" "$database"
echo "soak: weft (pid $pid, $database) at $url; $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"

rc=0
WEFT_SOAK_KEY="$key" WEFT_SOAK_TOKEN="$token" "$bench" soak --url "$url" --pid "$pid" \
  --seconds "$seconds" --warmup "$warmup" --connections "$connections" \
  --json "$out/soak.json" "$@" || rc=$?
if ! kill -0 "$pid" 2>/dev/null; then
  echo "soak: FAILED: the server is no longer running" >&2
  rc=1
fi
if [[ -n "$data_dir" ]]; then
  stop_weft
  rm -rf "$data_dir"
fi
echo "soak: exit $rc ($([[ $rc == 0 ]] && echo passed || echo failed)); results in target/bench/soak.json unless --json was given"
exit "$rc"
