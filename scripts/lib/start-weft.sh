# shellcheck shell=bash disable=SC2154
# (SC2154: $root, $weft, $key and $token are set by the script that sources this file.)
# Sourced by scripts/bench.sh and scripts/soak.sh: starts the release `weft serve` on
# 127.0.0.1:0 with a connector from target/release and the root key $key/$token, no config file
# and no WEFT_* setting from the caller's environment. Sets $pid and $url; stops the server on
# exit. Usage: start_weft WHO LOG [DATABASE [SERVE ARGS…]]   (WHO names the script in
# messages; needs $weft and $root; SERVE ARGS go to `weft serve` as they are, e.g.
# --contextionary FILE)
#
# DATABASE is dev-memory (the default) or embedded. For embedded the server gets `--database
# embedded --data-dir DIR` with DIR a fresh directory under target/bench/ (the store's default,
# durable configuration: every acknowledged write is fsynced); start_weft sets $data_dir to it
# and the caller removes it (after stop_weft). $data_dir is empty for dev-memory.
start_weft() {
  local who="$1" log="$2" database="${3:-dev-memory}"
  shift $(($# < 3 ? $# : 3))
  local args=(--database "$database" "$@")
  data_dir=""
  case "$database" in
    dev-memory) ;;
    embedded)
      mkdir -p "$root/target/bench"
      data_dir="$(mktemp -d "$root/target/bench/embedded-data.XXXXXX")"
      args+=(--data-dir "$data_dir")
      ;;
    *) echo "$who: start_weft: unknown database $database (dev-memory, embedded)" >&2; exit 2 ;;
  esac
  (
    for v in $(compgen -e | grep '^WEFT_' || true); do unset "$v"; done
    export WEFT_ROOT_KEY="$key" WEFT_ROOT_TOKEN="$token" WEFT_LOG=warn
    exec "$weft" serve --listen 127.0.0.1:0 --plugin-dir "$root/target/release" "${args[@]}"
  ) >"$log" 2>&1 &
  pid=$!
  trap stop_weft EXIT
  url=""
  for _ in $(seq 300); do
    url="$(sed -n 's/^weft: listening on //p' "$log" | head -n1)"
    [[ -n "$url" ]] && return 0
    kill -0 "$pid" 2>/dev/null || { echo "$who: the server exited:" >&2; cat "$log" >&2; exit 2; }
    sleep 0.1
  done
  echo "$who: the server did not listen within 30 s" >&2
  cat "$log" >&2
  exit 2
}

stop_weft() {
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
