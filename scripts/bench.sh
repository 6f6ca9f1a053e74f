#!/usr/bin/env bash
# The benchmark command (README, "Benchmarks and soak"), run on demand:
#
#   scripts/bench.sh [--no-contextionary | --with-faiss]
#
# One run, every ratio against a baseline measured in the same run; results in target/bench/
# (results.json: everything; plugin-get.txt, server.json, server-embedded.json,
# contextionary.txt: the parts; server.log, server-embedded.log: the servers' logs), a table with
# the machine and the goals on stdout. Parts, in order:
#
# 1. plugin call through the .so vs the statically linked connector
#    (`cargo bench -p weft-dev-memory --bench get`; goal ≤ 1.10). ~15 s (+1 min to compile it the
#    first time).
# 2. `weft serve` (release, fresh root key) on 127.0.0.1, driven by `weft-bench server`
#    (benches/server), twice:
#    a. with dev-memory, ~1 min:
#       - batch import of 200,000 things, 1,000 per POST /batching/things, 2 in flight (goal
#         ≥ 50,000 things/s);
#       - GraphQL `Get` with an equality filter and `GetMeta`, at 10,000 and at 200,000 objects
#         of the class, one connection, ≤ 5 s or 500 queries each: the cost ratio 200k/10k;
#       - REST GET /things/{id} with the root key over 64 connections against a bare poem route
#         answering the same JSON (`weft-bench serve-ceiling`, its own process): 5 rounds, each
#         3 s per side back to back after 1 s of warm-up each; the ratio is the median of the
#         rounds' ratios (goal ≥ 0.5 of the ceiling, no errors).
#    b. with embedded in its default, durable configuration (every acknowledged write is
#       fsynced; one fsync per group commit) in a fresh data directory under target/bench/
#       (removed afterwards), `--skip-get`, the same sizes: the batch import (goal ≥ 20,000
#       things/s) and the same GraphQL queries at the two sizes, reported next to dev-memory's.
#       ~15 s (the import of 200,000 takes ~4 s at the 52,000–58,000 things/s measured on the
#       project's 2 cores).
# 3. the contextionary numbers of benches/contextionary/run.sh, Weft side (`cargo bench -p
#    weft-contextionary-core --bench nearest` on the full GloVe 6B 50d, 400,000 words: exact and
#    HNSW search of 1,000 queries, recall, start-up by mmap vs parsing the text format), ~30 s,
#    when the full contextionary exists (data/glove-6b-50d.fifu, else
#    target/bench-contextionary/glove-6b-50d.fifu, or $WEFT_BENCH_CONTEXTIONARY); otherwise
#    skipped with a note. `--with-faiss` runs the whole run.sh instead: it makes the contextionary
#    when missing (once, ~4 min) and compares with faiss-cpu in a virtual environment, whose HNSW
#    build alone takes 2–3.5 min on 2 cores: 3.5–6 min instead of 30 s. `--no-contextionary`
#    skips it.
# Without the build, the default run takes about 2.5 minutes on 2 cores.
#
# Exit 0 when every goal is met, 1 when one is not, 2 when the run failed.
# WEFT_BENCH_NO_BUILD=1 skips the build. Sizes and durations: WEFT_BENCH_SERVER_ARGS, given to
# both server runs, e.g. "--large 100000 --rounds 3" or "--import-connections 4" (see
# `target/release/weft-bench server --help`).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="$root/target/bench"
contextionary=weft
[[ -n "${WEFT_BENCH_NO_CONTEXTIONARY:-}" ]] && contextionary=no
for arg in "$@"; do
  case "$arg" in
    --no-contextionary) contextionary=no ;;
    --with-faiss) contextionary=faiss ;;
    *) echo "bench: unknown argument $arg (--no-contextionary, --with-faiss)" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
# This run's files only (target/bench also holds the soak's).
rm -rf "$out/contextionary" \
  "$out"/{plugin-get,server,server-embedded,contextionary,contextionary-weft,results,ceiling-body}.* \
  "$out/contextionary.skipped" "$out"/embedded-data.*
timings=()
t0=$SECONDS

echo "== bench: build (release: weft, dev-memory, embedded, weft-bench)"
if [[ -z "${WEFT_BENCH_NO_BUILD:-}" ]]; then
  cargo build --release -p weft -p weft-dev-memory -p weft-embedded -p weft-benches
fi
weft="$root/target/release/weft"
bench="$root/target/release/weft-bench"
for f in "$weft" "$bench" "$root/target/release/libweft_dev_memory.so" \
  "$root/target/release/libweft_embedded.so"; do
  [[ -e "$f" ]] || { echo "bench: $f is missing" >&2; exit 2; }
done
timings+=("--timing" "build=$((SECONDS - t0))")

echo "== bench 1/3: plugin call, loaded .so vs statically linked"
t=$SECONDS
if ! cargo bench -p weft-dev-memory --bench get >"$out/plugin-get.txt" 2>"$out/plugin-get.log"; then
  echo "bench: cargo bench -p weft-dev-memory --bench get failed:" >&2
  tail -n 20 "$out/plugin-get.log" >&2
  exit 2
fi
cat "$out/plugin-get.txt"
timings+=("--timing" "plugin=$((SECONDS - t))")

echo "== bench 2/3: the server (import, GraphQL at two sizes, REST GET vs a bare poem route; then embedded)"
t=$SECONDS
key="$(cat /proc/sys/kernel/random/uuid)"
token="$(cat /proc/sys/kernel/random/uuid)"
# shellcheck source=lib/start-weft.sh
source "$root/scripts/lib/start-weft.sh"
# run_server DATABASE JSON LOG [weft-bench server options…]
run_server() {
  local database="$1" json="$2" log="$3"
  shift 3
  start_weft bench "$log" "$database"
  # The store's directory goes with the server, also when the run stops early.
  trap 'stop_weft; [[ -z "$data_dir" ]] || rm -rf -- "$data_dir"' EXIT
  echo "  weft with $database (pid $pid) at $url${data_dir:+, data in $data_dir}"
  # shellcheck disable=SC2086 # WEFT_BENCH_SERVER_ARGS is a list of options
  WEFT_BENCH_KEY="$key" WEFT_BENCH_TOKEN="$token" "$bench" server --url "$url" \
    --json "$json" "$@" ${WEFT_BENCH_SERVER_ARGS:-}
  echo "  server RSS at the end: $(grep VmRSS "/proc/$pid/status" | awk '{print $2/1024 " MiB"}')"
  if [[ -n "$data_dir" ]]; then
    echo "  store on disk at the end: $(du -sh "$data_dir" | cut -f1)"
  fi
  stop_weft
  [[ -z "$data_dir" ]] || rm -rf -- "$data_dir"
  trap - EXIT
}
echo "  -- dev-memory"
run_server dev-memory "$out/server.json" "$out/server.log"
timings+=("--timing" "server=$((SECONDS - t))")
echo "  -- embedded (durable: each group commit is fsynced before its writes are answered)"
t=$SECONDS
run_server embedded "$out/server-embedded.json" "$out/server-embedded.log" --skip-get
timings+=("--timing" "server-embedded=$((SECONDS - t))")

echo "== bench 3/3: contextionary (benches/contextionary/run.sh)"
t=$SECONDS
fifu="${WEFT_BENCH_CONTEXTIONARY:-}"
if [[ -z "$fifu" ]]; then
  fifu="$root/target/bench-contextionary/glove-6b-50d.fifu"
  [[ -f "$root/data/glove-6b-50d.fifu" ]] && fifu="$root/data/glove-6b-50d.fifu"
fi
case "$fifu" in /*) ;; *) fifu="$root/$fifu" ;; esac
c11y_work="$root/target/bench-contextionary"
mkdir -p "$c11y_work"
case "$contextionary" in
  no)
    echo "  skipped (--no-contextionary)"
    echo "not run (--no-contextionary)" >"$out/contextionary.skipped"
    ;;
  weft)
    if [[ -f "$fifu" && -f "$fifu.hnsw" ]]; then
      echo "  Weft side on $fifu (the faiss comparison: --with-faiss)"
      if WEFT_BENCH_CONTEXTIONARY="$fifu" WEFT_BENCH_OUT="$out/contextionary" \
        WEFT_BENCH_TEXT="$c11y_work/glove-6b-50d.txt" \
        cargo bench --quiet -p weft-contextionary-core --bench nearest \
        >"$out/contextionary-weft.json" 2>"$out/contextionary.log"; then
        cat "$out/contextionary-weft.json"
      else
        echo "  the nearest bench failed (see $out/contextionary.log):" >&2
        tail -n 20 "$out/contextionary.log" >&2
        echo "the nearest bench failed; see target/bench/contextionary.log" >"$out/contextionary.skipped"
      fi
    else
      echo "  skipped: no full contextionary at $fifu (scripts/bench.sh --with-faiss makes one, once)"
      echo "no full contextionary at $fifu; run scripts/bench.sh --with-faiss once (makes it)" \
        >"$out/contextionary.skipped"
    fi
    ;;
  faiss)
    if WEFT_BIN="$weft" WEFT_BENCH_CONTEXTIONARY="$fifu" benches/contextionary/run.sh \
      >"$out/contextionary.txt" 2>"$out/contextionary.log"; then
      cat "$out/contextionary.txt"
      cp "$c11y_work/weft.json" "$out/contextionary-weft.json"
    else
      echo "  benches/contextionary/run.sh failed (see $out/contextionary.log):" >&2
      tail -n 20 "$out/contextionary.log" >&2
      echo "run.sh failed; see target/bench/contextionary.log" >"$out/contextionary.skipped"
    fi
    ;;
esac
timings+=("--timing" "contextionary=$((SECONDS - t))")
timings+=("--timing" "total=$((SECONDS - t0))")

rc=0
"$bench" report --dir "$out" "${timings[@]}" || rc=$?
exit "$rc"
