# Sourced by scripts/bench.sh and scripts/soak.sh: starts the release `weft serve` on
# 127.0.0.1:0 with dev-memory from target/release and the root key $key/$token, no config file
# and no WEFT_* setting from the caller's environment. Sets $pid and $url; stops the server on
# exit. Usage: start_weft WHO LOG   (WHO names the script in messages; needs $weft and $root)
start_weft() {
  local who="$1" log="$2"
  (
    for v in $(compgen -e | grep '^WEFT_' || true); do unset "$v"; done
    export WEFT_ROOT_KEY="$key" WEFT_ROOT_TOKEN="$token" WEFT_LOG=warn
    exec "$weft" serve --listen 127.0.0.1:0 --plugin-dir "$root/target/release" --database dev-memory
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
