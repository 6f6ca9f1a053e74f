#!/usr/bin/env bash
# The benchmark command (README, "Benchmarks and soak"), run on demand:
#
#   scripts/bench.sh [--no-contextionary | --with-faiss] [--no-explore] [--explore-objects N]
#
# One run, every ratio against a baseline measured in the same run; results in target/bench/
# (results.json: everything; plugin-get.txt, server.json, server-embedded.json,
# contextionary.txt, explore.json, explore-baseline.json: the parts; server.log,
# server-embedded.log, explore.log, explore-baseline.log: the servers' logs), a table with the
# machine and the goals on stdout. Parts, in order:
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
#    skips it. With `--with-faiss` the report also compares the two HNSW indexes at equal
#    recall, 1 thread and 2 (goal: Weft ≤ faiss time).
# 4. search by meaning on embedded (durable, fresh data directories under target/bench/, removed
#    afterwards), driven by `weft-bench explore` over HTTP, with the full contextionary of part 3
#    when it exists, else the 20,000-word test slice target/contextionary/glove-top20000.fifu
#    (scripts/fetch-test-contextionary.sh; the output says which):
#    - batch import of 1,000,000 things of the class Doc (`text`: 8–12 words drawn from the
#      contextionary's vocabulary with a Zipf-like distribution, deterministic; `bucket`: int,
#      i % 100), 1,000 per POST /batching/things, 4 in flight, into a server started with the
#      contextionary (goal ≥ 20,000 things/s durable), and before it, as the baseline, the
#      same objects into a server started without one (so no vectors): the ratio;
#    - GraphQL `Explore` top-10 of 100 single-word concepts: recall@10 against the exact
#      top-10, brute-forced by weft-bench with the same contextionary library and the host's
#      own vector code (goal ≥ 0.95), then queries/s over 4 connections for ≤ 10 s (goal ≥ 1,000
#      q/s on 2 cores);
#    - `Get … explore` with `where` bucket = 7 (1% of the class): the same (goals ≥ 0.95,
#      report the rate).
#    Long at 1,000,000: measured 2026-12-07 on 2 cores under other load, the baseline import
#    took 3 min (5,354 things/s) and the import with vectors ran at ~650 things/s (single-threaded
#    HNSW insertion in the writer), i.e. ~25 min; the ground truth and the queries add ~1 min.
#    `--explore-objects N` changes the size (20000: ~30 s),
#    WEFT_BENCH_EXPLORE_ARGS passes other options (`target/release/weft-bench explore --help`),
#    `--no-explore` skips the part.
# Without the build, the default run takes over an hour on 2 cores, most of it importing
# 1,000,000 things with vectors (about 7 minutes with --explore-objects 200000, 2.5 with --no-explore).
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
explore=yes
explore_objects=1000000
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-contextionary) contextionary=no ;;
    --with-faiss) contextionary=faiss ;;
    --no-explore) explore=no ;;
    --explore-objects)
      [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || { echo "bench: --explore-objects needs a number" >&2; exit 2; }
      explore_objects="$2"
      shift
      ;;
    *)
      echo "bench: unknown argument $1 (--no-contextionary, --with-faiss, --no-explore, --explore-objects N)" >&2
      exit 2
      ;;
  esac
  shift
done
mkdir -p "$out"
# This run's files only (target/bench also holds the soak's).
rm -rf "$out/contextionary" \
  "$out"/{plugin-get,server,server-embedded,contextionary,contextionary-weft,contextionary-faiss,results,ceiling-body}.* \
  "$out"/{explore,explore-baseline}.* "$out/contextionary.skipped" "$out"/embedded-data.*
timings=()
t0=$SECONDS

echo "== bench: build (release: weft, dev-memory, embedded, contextionary, weft-bench)"
if [[ -z "${WEFT_BENCH_NO_BUILD:-}" ]]; then
  cargo build --release -p weft -p weft-dev-memory -p weft-embedded -p weft-contextionary \
    -p weft-benches
fi
weft="$root/target/release/weft"
bench="$root/target/release/weft-bench"
for f in "$weft" "$bench" "$root/target/release/libweft_dev_memory.so" \
  "$root/target/release/libweft_embedded.so" "$root/target/release/libweft_contextionary.so"; do
  [[ -e "$f" ]] || { echo "bench: $f is missing" >&2; exit 2; }
done
timings+=("--timing" "build=$((SECONDS - t0))")

echo "== bench 1/4: plugin call, loaded .so vs statically linked"
t=$SECONDS
if ! cargo bench -p weft-dev-memory --bench get >"$out/plugin-get.txt" 2>"$out/plugin-get.log"; then
  echo "bench: cargo bench -p weft-dev-memory --bench get failed:" >&2
  tail -n 20 "$out/plugin-get.log" >&2
  exit 2
fi
cat "$out/plugin-get.txt"
timings+=("--timing" "plugin=$((SECONDS - t))")

echo "== bench 2/4: the server (import, GraphQL at two sizes, REST GET vs a bare poem route; then embedded)"
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

echo "== bench 3/4: contextionary (benches/contextionary/run.sh)"
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
      [[ ! -f "$c11y_work/faiss.json" ]] || cp "$c11y_work/faiss.json" "$out/contextionary-faiss.json"
    else
      echo "  benches/contextionary/run.sh failed (see $out/contextionary.log):" >&2
      tail -n 20 "$out/contextionary.log" >&2
      echo "run.sh failed; see target/bench/contextionary.log" >"$out/contextionary.skipped"
    fi
    ;;
esac
timings+=("--timing" "contextionary=$((SECONDS - t))")

echo "== bench 4/4: search by meaning on embedded (weft-bench explore, $explore_objects things)"
t=$SECONDS
# run_explore LOG JSON [--contextionary FILE (for weft serve)] [weft-bench explore options…]
run_explore() {
  local log="$1" json="$2"
  shift 2
  local serve=()
  if [[ "${1:-}" == --contextionary ]]; then
    serve=(--contextionary "$2")
    shift 2
  fi
  start_weft bench "$log" embedded "${serve[@]}"
  trap 'stop_weft; [[ -z "$data_dir" ]] || rm -rf -- "$data_dir"' EXIT
  echo "  weft with embedded${serve[*]:+ and ${serve[*]}} (pid $pid) at $url, data in $data_dir"
  # shellcheck disable=SC2086 # WEFT_BENCH_EXPLORE_ARGS is a list of options
  WEFT_BENCH_KEY="$key" WEFT_BENCH_TOKEN="$token" "$bench" explore --url "$url" --json "$json" \
    --contextionary "$explore_c11y" --objects "$explore_objects" "$@" ${WEFT_BENCH_EXPLORE_ARGS:-}
  echo "  server RSS at the end: $(grep VmRSS "/proc/$pid/status" | awk '{print $2/1024 " MiB"}'); store on disk: $(du -sh "$data_dir" | cut -f1)"
  stop_weft
  rm -rf -- "$data_dir"
  trap - EXIT
}
explore_c11y="$fifu"
if [[ ! -f "$explore_c11y" ]]; then
  explore_c11y="$root/target/contextionary/glove-top20000.fifu"
fi
if [[ "$explore" == no ]]; then
  echo "  skipped (--no-explore)"
  echo "not run (--no-explore)" >"$out/explore.skipped"
elif [[ ! -f "$explore_c11y" ]]; then
  echo "  skipped: neither the full contextionary ($fifu) nor the test slice ($explore_c11y; scripts/fetch-test-contextionary.sh makes it)"
  echo "no contextionary: neither $fifu nor $explore_c11y" >"$out/explore.skipped"
else
  if [[ "$explore_c11y" == "$fifu" ]]; then
    echo "  contextionary: the full GloVe 6B 50d, $explore_c11y"
  else
    echo "  contextionary: the 20,000-word TEST SLICE $explore_c11y (no full contextionary at $fifu)"
  fi
  echo "  -- baseline: the same objects into a server without a contextionary (no vectors)"
  run_explore "$out/explore-baseline.log" "$out/explore-baseline.json" --import-only
  echo "  -- with the contextionary: vectors at write time, Explore, Get … explore where"
  run_explore "$out/explore.log" "$out/explore.json" --contextionary "$explore_c11y" \
    --baseline "$out/explore-baseline.json"
fi
timings+=("--timing" "explore=$((SECONDS - t))")
timings+=("--timing" "total=$((SECONDS - t0))")

rc=0
"$bench" report --dir "$out" "${timings[@]}" || rc=$?
exit "$rc"
