#!/usr/bin/env bash
# The migration benchmark (README, "From one machine to a cluster"), run on demand:
#
#   scripts/bench-migrate.sh [OBJECTS]        (default 1,000,000)
#
# Makes an embedded store of OBJECTS things (generated text of ~200 bytes each, every tenth with
# an earlier version, every fiftieth deleted; `weft-bench fill-store` through the embedded .so),
# then times `weft migrate` from it, twice in one run:
#   1. into dev-memory: the baseline (reading the embedded store, the plugin calls and the
#      in-memory writes: everything but the target's storage);
#   2. into the real Cassandra (a fresh keyspace; WEFT_CASSANDRA_CONTACT_POINTS, which
#      scripts/real-servers.sh prints): the goal is ≥ 20,000 objects/s on 2 cores.
# Prints each rate and the ratio Cassandra/baseline; the lines also go to target/bench/migrate.txt.
# WEFT_BENCH_NO_BUILD=1 skips the release build. Exit 0 when the goal is met, 1 when not, 2 when
# the run failed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
objects="${1:-1000000}"
out="$root/target/bench"
src="$out/migrate-source"
[[ -n "${WEFT_CASSANDRA_CONTACT_POINTS:-}" ]] || {
  echo "bench-migrate: WEFT_CASSANDRA_CONTACT_POINTS is not set (scripts/real-servers.sh start cassandra; eval \"\$(scripts/real-servers.sh env cassandra)\")" >&2
  exit 2
}
if [[ -z "${WEFT_BENCH_NO_BUILD:-}" ]]; then
  cargo build --release -p weft -p weft-embedded -p weft-dev-memory -p weft-cassandra -p weft-benches
fi
rel="${CARGO_TARGET_DIR:-$root/target}/release"
mkdir -p "$out"
rm -rf "$src"
trap 'rm -rf "$src"' EXIT
echo "== bench-migrate: filling an embedded store with $objects things"
"$rel/weft-bench" fill-store --plugin "$rel/libweft_embedded.so" \
  --config "{\"path\": \"$src\"}" --objects "$objects" | tee "$out/migrate.txt"
rate() { # the objects/s of the summary line weft migrate printed
  sed -n 's/.*(\([0-9]*\) objects\/s).*/\1/p' | tail -1
}
migrate() { # target-name target-config
  WEFT_LOG=warn "$rel/weft" migrate --plugin-dir "$rel" --from embedded \
    --from-config "{\"path\": \"$src\"}" --to "$1" --to-config "$2" --progress-every 10
}
echo "== bench-migrate: embedded → dev-memory (baseline)"
base_line="$(migrate dev-memory '{}')"
echo "$base_line" | tee -a "$out/migrate.txt"
points="\"${WEFT_CASSANDRA_CONTACT_POINTS//,/\",\"}\""
keyspace="weft_bench_migrate_$(date +%s)"
echo "== bench-migrate: embedded → cassandra (keyspace $keyspace)"
cass_line="$(migrate cassandra "{\"contact_points\": [$points], \"keyspace\": \"$keyspace\"}")"
echo "$cass_line" | tee -a "$out/migrate.txt"
base="$(echo "$base_line" | rate)"
cass="$(echo "$cass_line" | rate)"
[[ -n "$base" && -n "$cass" ]] || { echo "bench-migrate: no rate in the output" >&2; exit 2; }
ratio="$(awk -v c="$cass" -v b="$base" 'BEGIN { printf "%.3f", c / b }')"
echo "bench-migrate: embedded → cassandra $cass objects/s, baseline (→ dev-memory) $base objects/s, ratio $ratio (goal: ≥ 20,000 objects/s)" | tee -a "$out/migrate.txt"
[[ "$cass" -ge 20000 ]] || exit 1
