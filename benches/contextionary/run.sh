#!/usr/bin/env bash
# Contextionary benchmark, run on demand (not in CI): Weft's nearest-neighbour search against
# faiss-cpu on the full GloVe 6B 50d matrix (400,000 × 50), the same 1000 queries, in one run.
#
#   benches/contextionary/run.sh
#
# Prints: exact batch time vs faiss IndexFlatIP (BLAS path forced, threads fixed to the same
# number as Weft's), approximate time and recall@10 vs faiss IndexHNSWFlat (M=16, normalised
# vectors), the two HNSW indexes at equal recall (faiss's time interpolated at Weft's recalls, 1
# thread and Weft's thread count; goal: Weft ≤ faiss time at Weft's default ef; also in
# target/bench-contextionary/faiss.json), and start-up time of the mmapped finalfusion file vs
# parsing the text format (written once to target/bench-contextionary/glove-6b-50d.txt). Prints
# ratios; asserts nothing.
#
# Needs python3 with venv and pip (a virtual environment with faiss-cpu, numpy and threadpoolctl
# is made under target/bench-contextionary/venv). Fetches the full contextionary with
# `weft contextionary fetch` (idempotent) into $WEFT_BENCH_CONTEXTIONARY, default
# data/glove-6b-50d.fifu, using the release binary (built when missing; WEFT_BIN overrides).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
work="$root/target/bench-contextionary"
venv="$work/venv"
fifu="${WEFT_BENCH_CONTEXTIONARY:-$root/data/glove-6b-50d.fifu}"
case "$fifu" in /*) ;; *) fifu="$root/$fifu" ;; esac
cache="${WEFT_CACHE_DIR:-$HOME/.cache/weft}"
mkdir -p "$work"

if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check faiss-cpu numpy threadpoolctl

weft="${WEFT_BIN:-$root/target/release/weft}"
if [[ ! -x "$weft" ]]; then
  cargo build --release -p weft
fi
"$weft" contextionary fetch --out "$fifu"

echo "weft side (cargo bench -p weft-contextionary-core --bench nearest) ..." >&2
rm -f "$work/weft_approx.json" "$work/faiss.json"
WEFT_BENCH_CONTEXTIONARY="$fifu" WEFT_BENCH_OUT="$work" WEFT_BENCH_TEXT="$work/glove-6b-50d.txt" \
  cargo bench --quiet -p weft-contextionary-core --bench nearest >"$work/weft.json"
cat "$work/weft.json" >&2

echo "faiss side ..." >&2
threads="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["threads"])' "$work/weft.json")"
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE may be set on this machine for old OpenBLAS builds; they
# slow a current one, so they are unset for this command only.
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
  OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads" \
  "$venv/bin/python" "$root/benches/contextionary/faiss_side.py" --work "$work" --cache "$cache"
