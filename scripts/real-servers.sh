#!/usr/bin/env bash
# Real servers for the distributed connectors' tests, run from Maven Central jars with plain java
# (no Docker): Apache Cassandra 5.0, TinkerPop Gremlin Server 3.7 (TinkerGraph) and JanusGraph 1.1
# (in-memory). All listen on 127.0.0.1 only.
#
#   scripts/real-servers.sh start  [--fresh] SERVER...   start in the background, wait until ready
#   scripts/real-servers.sh stop   SERVER...             SIGTERM, after 60 s SIGKILL
#   scripts/real-servers.sh status [SERVER...]           running or not (exit 3 if one is not)
#   scripts/real-servers.sh env    SERVER...             the WEFT_* variables the tests read
#
# SERVER is cassandra (CQL on 9042, storage port 7000), gremlin (ws://127.0.0.1:8182/gremlin) or
# janusgraph (ws://127.0.0.1:8183/gremlin); WEFT_CASSANDRA_PORT, WEFT_CASSANDRA_STORAGE_PORT,
# WEFT_GREMLIN_PORT and WEFT_JANUSGRAPH_PORT move them (use another WEFT_SERVERS_RUN as well to
# run a second set beside the first). `start` of a running server says so and succeeds;
# it keeps the data of earlier runs unless --fresh is given (then it also restarts a running one).
#
# Jars: resolved once with mvn from scripts/real-servers/SERVER/pom.xml into
#   ${WEFT_SERVERS_CACHE:-~/.cache/weft/servers}/SERVER-VERSION/lib
# Run folder (config, data, logs, pid file):
#   ${WEFT_SERVERS_RUN:-${TMPDIR:-/tmp}/weft-servers}/SERVER/
# Other settings: WEFT_CASSANDRA_VERSION (5.0.6), WEFT_GREMLIN_VERSION (3.7.5),
# WEFT_JANUSGRAPH_VERSION (1.1.0), WEFT_CASSANDRA_AUTHENTICATOR (e.g. PasswordAuthenticator: a
# Cassandra that asks for a login, user and password "cassandra"), WEFT_SERVERS_JAVA (a java binary; else Java 17 or 11 is
# looked for), WEFT_SERVERS_JVM_OPTS (extra JVM flags, appended last), WEFT_SERVERS_WAIT
# (seconds to wait for readiness, 180), WEFT_SERVERS_PYTHON (a python with cassandra-driver for
# the stricter Cassandra check; default target/real-servers-venv/bin/python when present).
# Servers get MALLOC_ARENA_MAX=4. Logs: RUN/SERVER/logs/ (console.log has each start's command).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
conf_root="$root/scripts/real-servers"
cache_root="${WEFT_SERVERS_CACHE:-$HOME/.cache/weft/servers}"
run_root="${WEFT_SERVERS_RUN:-${TMPDIR:-/tmp}/weft-servers}"
wait_secs="${WEFT_SERVERS_WAIT:-180}"
dependency_plugin="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

usage() {
  cat >&2 <<'EOF'
usage: scripts/real-servers.sh start [--fresh] SERVER...
       scripts/real-servers.sh stop SERVER...
       scripts/real-servers.sh status [SERVER...]
       scripts/real-servers.sh env SERVER...
SERVER: cassandra | gremlin | janusgraph
EOF
  exit 2
}

say() { echo "real-servers: $*"; }
die() { echo "real-servers: $*" >&2; exit 1; }

# --- what each server is ---------------------------------------------------------------------

server_version() {
  case "$1" in
    cassandra) echo "${WEFT_CASSANDRA_VERSION:-5.0.6}" ;;
    gremlin) echo "${WEFT_GREMLIN_VERSION:-3.7.5}" ;;
    janusgraph) echo "${WEFT_JANUSGRAPH_VERSION:-1.1.0}" ;;
  esac
}

server_port() {
  case "$1" in
    cassandra) echo "${WEFT_CASSANDRA_PORT:-9042}" ;;
    gremlin) echo "${WEFT_GREMLIN_PORT:-8182}" ;;
    janusgraph) echo "${WEFT_JANUSGRAPH_PORT:-8183}" ;;
  esac
}

# Cassandra's internode (storage) port: bound too, though nothing else talks to it.
storage_port() { echo "${WEFT_CASSANDRA_STORAGE_PORT:-7000}"; }

# Ports the server binds besides its client port (checked free before a start).
server_other_ports() {
  case "$1" in
    cassandra) storage_port ;;
    *) echo "" ;;
  esac
}

# Config files rendered into RUN/conf (@RUN@, @CONF@, @PORT@, @STORAGE_PORT@, @JAMM@ replaced).
server_files() {
  case "$1" in
    cassandra) echo "cassandra.yaml logback.xml" ;;
    gremlin) echo "gremlin-server.yaml tinkergraph.properties init.groovy logback.xml" ;;
    janusgraph) echo "janusgraph-server.yaml janusgraph.properties init.groovy logback.xml" ;;
  esac
}

# JVM option lists, read in this order (a later flag wins).
server_option_files() {
  case "$1" in
    cassandra) echo "jvm-server.options jvm17-server.options weft.options" ;;
    *) echo "jvm.options" ;;
  esac
}

server_main() {
  case "$1" in
    cassandra) echo org.apache.cassandra.service.CassandraDaemon ;;
    gremlin) echo org.apache.tinkerpop.gremlin.server.GremlinServer ;;
    janusgraph) echo org.janusgraph.graphdb.server.JanusGraphServer ;;
  esac
}

server_arg() {
  case "$1" in
    cassandra) echo "" ;;
    gremlin) echo "conf/gremlin-server.yaml" ;;
    janusgraph) echo "conf/janusgraph-server.yaml" ;;
  esac
}

server_log() {
  case "$1" in
    cassandra) echo "logs/system.log" ;;
    gremlin) echo "logs/gremlin-server.log" ;;
    janusgraph) echo "logs/janusgraph-server.log" ;;
  esac
}

server_ready_line() {
  case "$1" in
    cassandra) echo "Startup complete" ;;
    *) echo "Channel started at port $(server_port "$1")" ;;
  esac
}

env_line() {
  case "$1" in
    cassandra) echo "export WEFT_CASSANDRA_CONTACT_POINTS=127.0.0.1:$(server_port "$1")" ;;
    gremlin) echo "export WEFT_GREMLIN_URL=ws://127.0.0.1:$(server_port "$1")/gremlin" ;;
    janusgraph) echo "export WEFT_JANUSGRAPH_URL=ws://127.0.0.1:$(server_port "$1")/gremlin" ;;
  esac
}

run_dir() { echo "$run_root/$1"; }
pid_file() { echo "$(run_dir "$1")/server.pid"; }
# A system property that marks the server's java command line as ours (checked before a signal).
marker() { echo "-Dweft.real-server=$(run_dir "$1")"; }

# --- processes -------------------------------------------------------------------------------

# True when PID is alive (not a zombie) and its command line carries SERVER's marker.
is_ours() {
  local server="$1" pid="$2" cmdline
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  cmdline="$({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null)" || return 1
  [[ "$cmdline" == *"$(marker "$server") "* ]]
}

# True while PID exists and is not a zombie (whatever it runs).
alive() {
  local state
  state="$({ sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f1; } 2>/dev/null)" || return 1
  [[ -n "$state" && "$state" != Z ]]
}

# Prints the pid of the running SERVER, or fails (removing a stale pid file).
running_pid() {
  local server="$1" file pid
  file="$(pid_file "$server")"
  [[ -f "$file" ]] || return 1
  pid="$(cat "$file" 2>/dev/null || true)"
  if is_ours "$server" "$pid"; then
    echo "$pid"
    return 0
  fi
  # Stale: the process is gone. (One that is alive but not yet ours may be a start in progress.)
  alive "$pid" || rm -f "$file"
  return 1
}

# Seconds (one decimal) since T0, a `date +%s.%N` value.
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

port_open() {
  # shellcheck disable=SC2016 # $1 is expanded by the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# Serialises start/stop of one server between concurrent callers (fd 9, closed for the server).
lock() {
  mkdir -p "$run_root"
  exec 9>"$run_root/.$1.lock"
  flock -w 600 9 || die "$1: another start/stop is still running (lock $run_root/.$1.lock)"
}

unlock() { exec 9>&-; }

# --- java and jars ---------------------------------------------------------------------------

java_major() {
  local v
  v="$("$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
  v="${v#1.}"
  echo "${v%%.*}"
}

# The java to run SERVER with: WEFT_SERVERS_JAVA, else the first Java 17 (then 11) found.
# Cassandra 5.0 runs on Java 11 and 17 only (it installs a SecurityManager, which JDK 24+
# refuses); TinkerPop 3.7 and JanusGraph 1.1 are run on the same.
find_java() {
  local server="$1" cand major want
  if [[ -n "${WEFT_SERVERS_JAVA:-}" ]]; then
    [[ -x "$WEFT_SERVERS_JAVA" ]] || die "WEFT_SERVERS_JAVA=$WEFT_SERVERS_JAVA is not executable"
    major="$(java_major "$WEFT_SERVERS_JAVA")"
    if [[ "$server" == cassandra && "$major" != 11 && "$major" != 17 ]]; then
      die "cassandra: Cassandra 5.0 runs on Java 11 or 17 only; WEFT_SERVERS_JAVA is Java $major"
    fi
    echo "$WEFT_SERVERS_JAVA"
    return
  fi
  local -a cands=()
  [[ -n "${JAVA_HOME:-}" ]] && cands+=("$JAVA_HOME/bin/java")
  cands+=(/usr/lib/jvm/java-17-openjdk*/bin/java /usr/lib/jvm/*17*/bin/java /usr/lib/jvm/*11*/bin/java)
  cand="$(command -v java || true)"
  [[ -n "$cand" ]] && cands+=("$cand")
  for want in 17 11; do
    for cand in "${cands[@]}"; do
      [[ -x "$cand" ]] || continue
      major="$(java_major "$cand")"
      if [[ "$major" == "$want" ]]; then
        echo "$cand"
        return
      fi
    done
  done
  die "$server: no Java 17 or 11 found (set WEFT_SERVERS_JAVA=/path/to/java)"
}

# Resolves SERVER's jars into the cache once; prints the lib folder. The marker file holds the
# pom's checksum: a changed pom resolves again.
ensure_lib() {
  local server="$1" version dir pom sum
  version="$(server_version "$server")"
  dir="$cache_root/$server-$version"
  pom="$conf_root/$server/pom.xml"
  sum="$(sha256sum "$pom" | cut -d' ' -f1)"
  if [[ -d "$dir/lib" && "$(cat "$dir/lib.complete" 2>/dev/null || true)" == "$sum" ]]; then
    echo "$dir/lib"
    return
  fi
  command -v mvn >/dev/null || die "$server: mvn is needed once to fetch the jars (apt-get install maven)"
  mkdir -p "$dir"
  rm -rf "$dir/lib.tmp" "$dir/lib.complete"
  say "$server: fetching $server $version jars with mvn into $dir/lib (once)" >&2
  if ! mvn -B -q -f "$pom" -Dserver.version="$version" \
    "$dependency_plugin:copy-dependencies" -DincludeScope=runtime \
    -DoutputDirectory="$dir/lib.tmp" >"$dir/mvn.log" 2>&1; then
    tail -n 40 "$dir/mvn.log" >&2
    die "$server: mvn could not resolve $server $version (log: $dir/mvn.log)"
  fi
  rm -rf "${dir:?}/lib"
  mv "$dir/lib.tmp" "$dir/lib"
  echo "$sum" >"$dir/lib.complete"
  echo "$dir/lib"
}

# --- readiness -------------------------------------------------------------------------------

# CQL handshake: an OPTIONS request (protocol v4) must be answered with SUPPORTED.
cql_options_ok() {
  local reply
  # shellcheck disable=SC2016 # $1 is expanded by the inner bash
  reply="$(timeout 5 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "\x04\x00\x00\x00\x05\x00\x00\x00\x00" >&3
    head -c 9 <&3 | od -An -tx1 | tr -d " \n"' _ "$1" 2>/dev/null)" || return 1
  [[ "$reply" == 8400000006* ]]
}

cql_python() {
  local py="${WEFT_SERVERS_PYTHON:-$root/target/real-servers-venv/bin/python}"
  [[ -x "$py" ]] && "$py" -c 'import cassandra.cluster' 2>/dev/null && echo "$py"
  return 0
}

# Stricter: the driver connects and system.local says the node finished bootstrapping.
cql_bootstrapped() {
  "$1" - "$2" <<'EOF' 2>/dev/null
import os, sys
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster
auth = None
if os.environ.get("WEFT_CASSANDRA_AUTHENTICATOR"):
    auth = PlainTextAuthProvider(username="cassandra", password="cassandra")
cluster = Cluster(["127.0.0.1"], port=int(sys.argv[1]), connect_timeout=5, auth_provider=auth)
try:
    row = cluster.connect().execute("SELECT bootstrapped FROM system.local").one()
    sys.exit(0 if row and row.bootstrapped == "COMPLETED" else 1)
finally:
    cluster.shutdown()
EOF
}

# Gremlin: a script evaluated over HTTP (WsAndHttpChannelizer) must answer 200.
gremlin_http_ok() {
  command -v curl >/dev/null || return 0
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
    -H 'Content-Type: application/json' -d '{"gremlin":"g.V().limit(1).count()"}' \
    "http://127.0.0.1:$1/" 2>/dev/null)" || return 1
  [[ "$code" == 200 ]]
}

# Waits until SERVER (pid PID, whose log had OFFSET bytes before the start) is ready.
wait_ready() {
  local server="$1" pid="$2" offset="$3" t0="$4" run log port line py="" deadline
  run="$(run_dir "$server")"
  log="$run/$(server_log "$server")"
  port="$(server_port "$server")"
  line="$(server_ready_line "$server")"
  [[ "$server" == cassandra ]] && py="$(cql_python)"
  deadline=$((SECONDS + wait_secs))
  while true; do
    # (Not is_ours: for a moment after the fork the child is still a copy of this script.)
    if ! alive "$pid"; then
      fail_start "$server" "the server exited during start-up" "$offset"
    fi
    if [[ -f "$log" ]] && tail -c +"$((offset + 1))" "$log" | grep -qF "$line" && port_open "$port"; then
      case "$server" in
        cassandra)
          if cql_options_ok "$port" && { [[ -z "$py" ]] || cql_bootstrapped "$py" "$port"; }; then
            break
          fi
          ;;
        *)
          if gremlin_http_ok "$port"; then
            break
          fi
          ;;
      esac
    fi
    if ((SECONDS >= deadline)); then
      kill -KILL "$pid" 2>/dev/null || true
      fail_start "$server" "not ready within $wait_secs s (killed it)" "$offset"
    fi
    sleep 0.5
  done
  local secs checks="log \"$line\", port $port"
  secs="$(since "$t0")"
  case "$server" in
    cassandra) checks+=", CQL OPTIONS${py:+, driver: system.local bootstrapped}" ;;
    *) command -v curl >/dev/null && checks+=", HTTP script" ;;
  esac
  say "$server $(server_version "$server") ready in $secs s (pid $pid; $checks); $(env_line "$server")"
}

fail_start() {
  local server="$1" why="$2" offset="${3:-0}" run log
  run="$(run_dir "$server")"
  log="$run/$(server_log "$server")"
  rm -f "$(pid_file "$server")"
  {
    echo "real-servers: $server: $why; last 40 lines that this start wrote to $log:"
    if [[ -f "$log" ]] && (($(stat -c %s "$log") > offset)); then
      tail -c +"$((offset + 1))" "$log" | tail -n 40
    else
      echo "(nothing)"
    fi
    if [[ -s "$run/logs/console.log" ]]; then
      echo "--- the JVM's own output in this start ($run/logs/console.log), last 15 lines:"
      awk '/^=== /{n=0; next} {line[n++]=$0} END {for (i = (n > 15 ? n - 15 : 0); i < n; i++) print line[i]}' \
        "$run/logs/console.log"
    fi
  } >&2
  exit 1
}

# --- commands --------------------------------------------------------------------------------

render() {
  local src="$1" dst="$2" run="$3" port="$4" jamm="$5"
  sed -e "s|@RUN@|$run|g" -e "s|@CONF@|$run/conf|g" -e "s|@PORT@|$port|g" -e "s|@JAMM@|$jamm|g" \
    -e "s|@STORAGE_PORT@|$(storage_port)|g" "$src" >"$dst"
}

start_one() {
  local server="$1" fresh="$2" pid run lib java port p jamm="" offset=0 t0 f line
  lock "$server"
  if pid="$(running_pid "$server")"; then
    if [[ "$fresh" != 1 ]]; then
      say "$server is already running (pid $pid); $(env_line "$server")"
      unlock
      return 0
    fi
    say "$server is running (pid $pid): stopping it for --fresh"
    stop_pid "$server" "$pid"
  fi
  run="$(run_dir "$server")"
  port="$(server_port "$server")"
  for p in "$port" $(server_other_ports "$server"); do
    if port_open "$p"; then
      die "$server: port $p on 127.0.0.1 is already in use by another process (not started by this script)"
    fi
  done
  if [[ "$fresh" == 1 ]]; then
    rm -rf "$run/data" "$run/logs"
  fi
  lib="$(ensure_lib "$server")"
  java="$(find_java "$server")"
  mkdir -p "$run/conf/triggers" "$run/data" "$run/logs"
  jamm="$(find "$lib" -maxdepth 1 -name 'jamm-*.jar' | head -n 1)"
  for f in $(server_files "$server"); do
    render "$conf_root/$server/$f" "$run/conf/$f" "$run" "$port" "$jamm"
  done
  if [[ "$server" == cassandra && -n "${WEFT_CASSANDRA_AUTHENTICATOR:-}" ]]; then
    # A node that asks for a login (PasswordAuthenticator: user cassandra, password cassandra).
    echo "authenticator: $WEFT_CASSANDRA_AUTHENTICATOR" >>"$run/conf/cassandra.yaml"
  fi
  local -a opts=()
  for f in $(server_option_files "$server"); do
    render "$conf_root/$server/$f" "$run/conf/$f" "$run" "$port" "$jamm"
    while IFS= read -r line || [[ -n "$line" ]]; do
      line="${line%"${line##*[![:space:]]}"}"
      [[ "$line" == -* ]] || continue
      # "--add-opens x" style flags are two arguments.
      if [[ "$line" == --add-* && "$line" == *" "* ]]; then
        opts+=("${line%% *}" "${line#* }")
      else
        opts+=("$line")
      fi
    done <"$run/conf/$f"
  done
  # Extra flags from the caller, last (they win): WEFT_SERVERS_JVM_OPTS="-Xmx2G ...".
  local -a extra=()
  read -r -a extra <<<"${WEFT_SERVERS_JVM_OPTS:-}"
  opts+=("${extra[@]}" "$(marker "$server")")
  local -a args=()
  [[ -n "$(server_arg "$server")" ]] && args+=("$(server_arg "$server")")
  local log
  log="$run/$(server_log "$server")"
  [[ -f "$log" ]] && offset="$(stat -c %s "$log")"
  echo "=== $(date -u +%FT%TZ) start: $java ${opts[*]} -cp $lib/* $(server_main "$server") ${args[*]}" \
    >>"$run/logs/console.log"
  t0="$(date +%s.%N)"
  (
    cd "$run"
    export MALLOC_ARENA_MAX=4
    exec setsid "$java" "${opts[@]}" -cp "$lib/*" "$(server_main "$server")" "${args[@]}" \
      </dev/null >>"$run/logs/console.log" 2>&1 9>&-
  ) &
  pid=$!
  echo "$pid" >"$(pid_file "$server")"
  say "$server $(server_version "$server"): started pid $pid with $java (run folder $run); waiting up to $wait_secs s"
  wait_ready "$server" "$pid" "$offset" "$t0"
  unlock
}

# SIGTERM, then up to 60 s, then SIGKILL.
stop_pid() {
  local server="$1" pid="$2" t0 deadline
  t0="$(date +%s.%N)"
  deadline=$((SECONDS + 60))
  kill -TERM "$pid" 2>/dev/null || true
  while ((SECONDS < deadline)); do
    if ! is_ours "$server" "$pid"; then
      say "$server stopped (pid $pid, SIGTERM, $(since "$t0") s)"
      rm -f "$(pid_file "$server")"
      return 0
    fi
    sleep 0.2
  done
  kill -KILL "$pid" 2>/dev/null || true
  deadline=$((SECONDS + 10))
  while ((SECONDS < deadline)) && is_ours "$server" "$pid"; do sleep 0.2; done
  say "$server did not stop within 60 s of SIGTERM: killed pid $pid with SIGKILL"
  rm -f "$(pid_file "$server")"
}

stop_one() {
  local server="$1" pid
  lock "$server"
  if pid="$(running_pid "$server")"; then
    stop_pid "$server" "$pid"
  else
    say "$server is not running"
  fi
  unlock
}

status_one() {
  local server="$1" pid
  if pid="$(running_pid "$server")"; then
    if port_open "$(server_port "$server")"; then
      say "$server: running (pid $pid, 127.0.0.1:$(server_port "$server"), run folder $(run_dir "$server"))"
    else
      say "$server: running (pid $pid) but port $(server_port "$server") does not accept yet"
    fi
    return 0
  fi
  say "$server: not running"
  return 3
}

# --- arguments -------------------------------------------------------------------------------

[[ $# -ge 1 ]] || usage
cmd="$1"
shift
fresh=0
servers=()
for a in "$@"; do
  case "$a" in
    --fresh) [[ "$cmd" == start ]] || usage; fresh=1 ;;
    cassandra | gremlin | janusgraph) servers+=("$a") ;;
    *) usage ;;
  esac
done

case "$cmd" in
  start)
    [[ ${#servers[@]} -ge 1 ]] || usage
    for s in "${servers[@]}"; do start_one "$s" "$fresh"; done
    ;;
  stop)
    [[ ${#servers[@]} -ge 1 ]] || usage
    for s in "${servers[@]}"; do stop_one "$s"; done
    ;;
  status)
    [[ ${#servers[@]} -ge 1 ]] || servers=(cassandra gremlin janusgraph)
    rc=0
    for s in "${servers[@]}"; do status_one "$s" || rc=3; done
    exit "$rc"
    ;;
  env)
    [[ ${#servers[@]} -ge 1 ]] || usage
    for s in "${servers[@]}"; do env_line "$s"; done
    ;;
  -h | --help | help) usage ;;
  *) usage ;;
esac
