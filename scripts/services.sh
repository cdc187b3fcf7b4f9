#!/usr/bin/env bash
# Installs, starts, checks and stops the real services that ldd's tests and benchmarks use:
# Apache Kafka (single node, KRaft; a PLAINTEXT listener and a SASL_PLAINTEXT one with
# mechanism PLAIN and a test user whose password is random at every start), FerretDB (MongoDB wire protocol, SQLite backend),
# InfluxDB 1.8 with Flux and InfluxDB 2.7 (tokens, organisations, buckets). Everything listens
# on 127.0.0.1 on fixed, non-default ports.
#
#   scripts/services.sh install [svc...]   # fetch/build (idempotent, fast when cached)
#   scripts/services.sh start [svc...]     # install if needed, start fresh, health-check
#   scripts/services.sh stop [svc...]      # stop by pid file, remove the data (logs stay)
#   scripts/services.sh crash kafka        # fault tests: SIGKILL the broker, keep its data
#   scripts/services.sh revive kafka       # fault tests: restart a crashed broker on its data
#   scripts/services.sh status             # up/down per service
#   scripts/services.sh env                # the variables the tests read (for eval)
#
# Services: kafka, mongo (FerretDB), influx (1.8), influx2 (2.7). No service names means all, except for
# crash and revive, which take kafka only and must name it. `crash` kills the broker without a
# clean shutdown (SIGKILL), removes its pid file and keeps its data directory; `revive` starts
# the broker again on that data (no storage format, nothing deleted) and health-checks it like
# `start`; the log of the crashed broker stays at the top of the log file. `start` after a
# crash still makes a fresh broker, and `stop` removes the data as usual.
# Environment: LDD_CACHE_DIR (default ~/.cache/ldd) holds the builds and jars, one directory
# per version; LDD_RUN_DIR (default $LDD_CACHE_DIR/run) holds data, pid files and logs;
# LDD_INFLUX2_TOKEN (default: random at every start) is the 2.x operator token;
# LDD_KAFKA_HEAP (default 1g) is the broker's heap; LDD_START_TIMEOUT (default 90) is how many
# seconds a service may take to become healthy.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE_DIR="$(realpath -m "${LDD_CACHE_DIR:-$HOME/.cache/ldd}")"
RUN_DIR="$(realpath -m "${LDD_RUN_DIR:-$CACHE_DIR/run}")"
LOG_DIR="$RUN_DIR/logs"
START_TIMEOUT="${LDD_START_TIMEOUT:-90}"
KAFKA_HEAP="${LDD_KAFKA_HEAP:-1g}"

KAFKA_VERSION=4.1.2
FERRETDB_VERSION=v1.24.2
INFLUXDB_VERSION=v1.8.10
INFLUXDB2_VERSION=v2.7.12
# The Go tool that builds libflux (Flux's Rust core) with cargo when cgo asks pkg-config.
INFLUX_PKG_CONFIG_VERSION=v0.2.7

KAFKA_PORT=19092
KAFKA_CONTROLLER_PORT=19093
# SASL_PLAINTEXT (mechanism PLAIN) on loopback, for the tests of client security settings.
KAFKA_SASL_PORT=19094
KAFKA_SASL_USER=ldd
MONGO_PORT=37017
MONGO_DEBUG_PORT=37018
INFLUX_PORT=18086
INFLUX_RPC_PORT=18088
INFLUX2_PORT=18087
# The organisation and first bucket made by the 2.x set-up.
INFLUX2_ORG=ldd
INFLUX2_BUCKET=ldd

KAFKA_HOME="$CACHE_DIR/kafka-$KAFKA_VERSION"
FERRETDB_BIN="$CACHE_DIR/ferretdb-$FERRETDB_VERSION/bin/ferretdb"
INFLUXD_BIN="$CACHE_DIR/influxdb-$INFLUXDB_VERSION/bin/influxd"
INFLUXD2_BIN="$CACHE_DIR/influxdb-$INFLUXDB2_VERSION/bin/influxd"

ALL_SERVICES=(kafka mongo influx influx2)

log() { printf '[services] %s\n' "$*" >&2; }
die() {
  printf '[services] error: %s\n' "$*" >&2
  exit 1
}
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is required but not installed ($2)"; }

data_dir() {
  case "$1" in
    kafka) echo "$RUN_DIR/kafka" ;;
    mongo) echo "$RUN_DIR/ferretdb" ;;
    influx) echo "$RUN_DIR/influxdb" ;;
    influx2) echo "$RUN_DIR/influxdb2" ;;
  esac
}
main_port() {
  case "$1" in
    kafka) echo "$KAFKA_PORT" ;;
    mongo) echo "$MONGO_PORT" ;;
    influx) echo "$INFLUX_PORT" ;;
    influx2) echo "$INFLUX2_PORT" ;;
  esac
}
ports() {
  case "$1" in
    kafka) echo "$KAFKA_PORT $KAFKA_CONTROLLER_PORT $KAFKA_SASL_PORT" ;;
    mongo) echo "$MONGO_PORT $MONGO_DEBUG_PORT" ;;
    influx) echo "$INFLUX_PORT $INFLUX_RPC_PORT" ;;
    influx2) echo "$INFLUX2_PORT" ;;
  esac
}
log_file() { echo "$LOG_DIR/$1.log"; }
pid_file() { echo "$RUN_DIR/$1.pid"; }

# ---------------------------------------------------------------- install

# The jars depend on the pom too (e.g. the log4j version): a changed pom means a new install.
kafka_pom_sum() { sha256sum "$SCRIPT_DIR/kafka/pom.xml" | cut -d' ' -f1; }

install_kafka() {
  if [ -f "$KAFKA_HOME/libs/kafka_2.13-$KAFKA_VERSION.jar" ] &&
    [ "$(cat "$KAFKA_HOME/pom.sha256" 2>/dev/null)" = "$(kafka_pom_sum)" ]; then
    return
  fi
  need mvn "e.g. apt-get install maven"
  need java "a Java 17+ runtime, e.g. apt-get install openjdk-17-jre-headless"
  log "kafka: collecting the Apache Kafka $KAFKA_VERSION jars from Maven Central"
  local tmp="$KAFKA_HOME.tmp"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  mvn -B -Dstyle.color=never -f "$SCRIPT_DIR/kafka/pom.xml" dependency:copy-dependencies \
    -Dkafka.version="$KAFKA_VERSION" -DincludeScope=runtime -DoutputDirectory="$tmp/libs" \
    >"$tmp/mvn.log" 2>&1 || {
    tail -n 30 "$tmp/mvn.log" >&2
    die "kafka: mvn dependency:copy-dependencies failed (log: $tmp/mvn.log)"
  }
  [ -f "$tmp/libs/kafka_2.13-$KAFKA_VERSION.jar" ] || die "kafka: the broker jar is missing after mvn"
  kafka_pom_sum >"$tmp/pom.sha256"
  rm -rf "$KAFKA_HOME"
  mv "$tmp" "$KAFKA_HOME"
}

# Downloads a Go module and copies its source to a writable directory, for modules that
# `go install module@version` cannot build as they are.
go_module_source() { # service module@version dest
  local mod_dir
  mod_dir="$(cd "$(dirname "$3")" && GO111MODULE=on go mod download -json "$2" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  if [ -z "$mod_dir" ] || [ ! -d "$mod_dir" ]; then die "$1: could not download the Go module $2"; fi
  rm -rf "$3"
  cp -r "$mod_dir" "$3"
  chmod -R u+w "$3"
}

install_ferretdb() {
  [ -x "$FERRETDB_BIN" ] && return
  need go "install Go 1.24 or newer"
  log "mongo: building FerretDB $FERRETDB_VERSION from its Go module"
  # A plain `go install .../cmd/ferretdb@version` gives a binary that panics at start: the
  # module lacks the generated build/version/version.txt. Build a writable copy with it.
  local home src
  home="$(dirname "$(dirname "$FERRETDB_BIN")")"
  mkdir -p "$home"
  src="$home/src.tmp"
  go_module_source mongo "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" "$src"
  echo "$FERRETDB_VERSION" >"$src/build/version/version.txt"
  mkdir -p "$(dirname "$FERRETDB_BIN")"
  (cd "$src" && go build -buildvcs=false -trimpath -o "$FERRETDB_BIN.tmp" ./cmd/ferretdb) ||
    die "mongo: building FerretDB failed"
  mv "$FERRETDB_BIN.tmp" "$FERRETDB_BIN"
  rm -rf "$src"
}

install_influx() {
  [ -x "$INFLUXD_BIN" ] && return
  need go "install Go 1.24 or newer"
  log "influx: building InfluxDB $INFLUXDB_VERSION (with Flux) from its Go module"
  local bin_dir
  bin_dir="$(dirname "$INFLUXD_BIN")"
  mkdir -p "$bin_dir"
  # The version is stamped so that /ping reports it (X-Influxdb-Version).
  GOBIN="$bin_dir" GO111MODULE=on go install -buildvcs=false -trimpath \
    -ldflags "-X main.version=${INFLUXDB_VERSION#v}" \
    "github.com/influxdata/influxdb/cmd/influxd@$INFLUXDB_VERSION" ||
    die "influx: building InfluxDB failed"
}

# InfluxDB 2.x is built from its Go module and libflux's crates, both from package registries
# (measured on two cores: 3 min 24 s for the build once the Go modules are downloaded):
# - `go install .../influxdb/v2/cmd/influxd@version` refuses (its go.mod has replace
#   directives), so the module's own source is copied and built;
# - cgo asks pkg-config for flux; InfluxData's pkg-config wrapper answers by building libflux
#   with cargo. Flux pins an old toolchain in rust-toolchain.toml (stable is used instead) and
#   flux-core denies warnings that newer rustc versions emit, so a wrapper caps lints for the
#   flux workspace (RUSTFLAGS does not reach flux-core: it is a host build dependency);
# - the UI assets are not built: the HTTP API is complete without them.
install_influx2() {
  [ -x "$INFLUXD2_BIN" ] && return
  need go "install Go 1.24 or newer"
  need cargo "install Rust (rustup) for libflux"
  log "influx2: building InfluxDB $INFLUXDB2_VERSION (with libflux) from its Go module and crates"
  local home tools src
  home="$(dirname "$(dirname "$INFLUXD2_BIN")")"
  tools="$home/tools"
  mkdir -p "$tools" "$(dirname "$INFLUXD2_BIN")"
  [ -x "$tools/pkg-config" ] ||
    GOBIN="$tools" GO111MODULE=on go install "github.com/influxdata/pkg-config@$INFLUX_PKG_CONFIG_VERSION" ||
    die "influx2: installing InfluxData's pkg-config wrapper failed"
  cat >"$tools/rustc-cap-lints" <<'SH'
#!/bin/sh
# cargo runs this as `rustc-cap-lints rustc ARGS...` for the flux workspace's crates.
exec "$@" --cap-lints=warn
SH
  chmod +x "$tools/rustc-cap-lints"
  src="$home/src.tmp"
  go_module_source influx2 "github.com/influxdata/influxdb/v2@$INFLUXDB2_VERSION" "$src"
  (cd "$src" && PATH="$tools:$PATH" PKG_CONFIG="$tools/pkg-config" RUSTUP_TOOLCHAIN=stable \
    RUSTC_WORKSPACE_WRAPPER="$tools/rustc-cap-lints" CGO_ENABLED=1 \
    go build -buildvcs=false -trimpath -tags sqlite_foreign_keys,sqlite_json \
    -ldflags "-s -w -X main.version=${INFLUXDB2_VERSION#v}" -o "$INFLUXD2_BIN.tmp" ./cmd/influxd) ||
    die "influx2: building InfluxDB $INFLUXDB2_VERSION failed"
  mv "$INFLUXD2_BIN.tmp" "$INFLUXD2_BIN"
  rm -rf "$src"
}

cmd_install() {
  mkdir -p "$CACHE_DIR"
  local svc
  for svc in "$@"; do
    case "$svc" in
      kafka) install_kafka ;;
      mongo) install_ferretdb ;;
      influx) install_influx ;;
      influx2) install_influx2 ;;
    esac
  done
}

# ---------------------------------------------------------------- processes

# The pid in the pid file, if that process is alive and is ours: every service gets a path
# under the run directory on its command line, which guards against a reused pid.
running_pid() {
  local f pid
  f="$(pid_file "$1")"
  [ -f "$f" ] || return 1
  pid="$(cat "$f")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$RUN_DIR/" || return 1
  echo "$pid"
}

# Whether the process just launched is still alive. Unlike running_pid, this does not look
# at its command line: right after the fork it may still be the shell about to exec the
# service, whose command line is not yet the service's (that race failed start-ups).
launched_alive() {
  local f pid
  f="$(pid_file "$1")"
  [ -f "$f" ] || return 1
  pid="$(cat "$f")"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

show_log_tail() {
  local f
  f="$(log_file "$1")"
  if [ -f "$f" ]; then
    printf -- '---- last lines of %s ----\n' "$f" >&2
    tail -n 40 "$f" >&2
    printf -- '----\n' >&2
  fi
}

# Runs "$@" until it succeeds; fails if the service exits or the deadline passes.
wait_healthy() { # name deadline(SECONDS value) what command...
  local name="$1" deadline="$2" what="$3"
  shift 3
  until "$@"; do
    launched_alive "$name" || fail_start "$name" "exited during start-up"
    [ "$SECONDS" -lt "$deadline" ] || fail_start "$name" "$what not ready within ${START_TIMEOUT}s"
    sleep 0.5
  done
}

# Set while reviving: a failed revive keeps the data (the fault test may want to look at it).
REVIVING=0

# Shows the log, stops what was launched (nothing is left running) and fails.
fail_start() { # name message
  show_log_tail "$1"
  if [ "$REVIVING" = 1 ]; then
    stop_one "$1" keep-data
    die "$1: $2 (log: $(log_file "$1"); data kept in $(data_dir "$1"))"
  fi
  stop_one "$1"
  die "$1: $2 (log: $(log_file "$1"))"
}

# Starts a service in the background, its output in its log (truncated unless --append).
launch() { # [--append] name command...
  local append=0
  if [ "$1" = --append ]; then
    append=1
    shift
  fi
  local name="$1"
  shift
  mkdir -p "$LOG_DIR"
  [ "$append" = 1 ] || : >"$(log_file "$name")"
  nohup "$@" >>"$(log_file "$name")" 2>&1 </dev/null &
  echo $! >"$(pid_file "$name")"
}

# ---------------------------------------------------------------- kafka

# Light JVM for the short-lived Kafka tools (health check, admin commands).
kafka_tool() {
  java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Dlog4j2.level=WARN \
    -cp "$KAFKA_HOME/libs/*" "$@"
}

kafka_metadata_ok() {
  kafka_tool org.apache.kafka.tools.TopicCommand \
    --bootstrap-server "127.0.0.1:$KAFKA_PORT" --list >/dev/null 2>&1
}

# The SASL test user's password and a client config using it (both made at start, mode 600).
kafka_sasl_password_file() { echo "$RUN_DIR/kafka/sasl-password"; }
kafka_sasl_client_config() { echo "$RUN_DIR/kafka/sasl-client.properties"; }

# The SASL listener answers metadata to the test user.
kafka_sasl_metadata_ok() {
  kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_SASL_PORT" \
    --command-config "$(kafka_sasl_client_config)" --list >/dev/null 2>&1
}

# A cluster id as Kafka makes them: 16 random bytes, URL-safe base64, no padding, no leading '-'.
kafka_cluster_id() {
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [ "${id:0:1}" != "-" ] && break
  done
  echo "$id"
}

# Writes the broker's configuration into its directory, with a new random password for the
# SASL test user (the files holding it are readable by this user only).
kafka_config() { # dir
  local dir="$1" password
  password="$(head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  local jaas="org.apache.kafka.common.security.plain.PlainLoginModule required"
  (
    umask 077
    echo "$password" >"$(kafka_sasl_password_file)"
    cat >"$(kafka_sasl_client_config)" <<PROPS
security.protocol=SASL_PLAINTEXT
sasl.mechanism=PLAIN
sasl.jaas.config=$jaas username="$KAFKA_SASL_USER" password="$password";
PROPS
    cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=$jaas user_$KAFKA_SASL_USER="$password";
log.dirs=$dir/data
num.partitions=4
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
message.max.bytes=67108864
replica.fetch.max.bytes=67108864
log.retention.hours=24
PROPS
  )
  # Kafka 4 logs through log4j2 (slf4j binding in scripts/kafka/pom.xml); stdout goes to the log.
  cat >"$dir/log4j2.properties" <<PROPS
rootLogger.level=INFO
rootLogger.appenderRef.stdout.ref=stdout
appender.stdout.type=Console
appender.stdout.name=stdout
appender.stdout.layout.type=PatternLayout
appender.stdout.layout.pattern=[%d] %p %m (%c)%n
logger.state-change.name=state.change.logger
logger.state-change.level=WARN
PROPS
}

# Formats the storage of a new single-node cluster (a fresh cluster id).
kafka_format_storage() { # dir
  local dir="$1"
  kafka_tool -Dlog4j2.configurationFile="$dir/log4j2.properties" kafka.tools.StorageTool format \
    --cluster-id "$(kafka_cluster_id)" --config "$dir/server.properties" >"$dir/format.log" 2>&1 ||
    {
      cat "$dir/format.log" >&2
      die "kafka: formatting the storage failed (see above)"
    }
}

# `start_kafka` makes a fresh broker (config, storage format); `start_kafka revive` restarts a
# crashed one on its existing directory: nothing is rewritten, formatted or deleted.
start_kafka() { # [fresh|revive]
  local mode="${1:-fresh}"
  need java "a Java 17+ runtime, e.g. apt-get install openjdk-17-jre-headless"
  local dir="$RUN_DIR/kafka" deadline=$((SECONDS + START_TIMEOUT))
  local launcher=(launch kafka)
  if [ "$mode" = revive ]; then
    local f
    for f in server.properties log4j2.properties data/meta.properties; do
      [ -f "$dir/$f" ] ||
        die "kafka: no $f in $dir: nothing to revive ('start kafka' makes a fresh broker)"
    done
    launcher=(launch --append kafka)
    mkdir -p "$LOG_DIR"
    printf -- '==== [services] revived at %s on the existing data ====\n' "$(date -u +%FT%TZ)" \
      >>"$(log_file kafka)"
  else
    mkdir -p "$dir/data"
    kafka_config "$dir"
    kafka_format_storage "$dir"
  fi
  # The broker's JVM flags are those of Kafka's own start script.
  "${launcher[@]}" java "-Xms$KAFKA_HEAP" "-Xmx$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$dir/log4j2.properties" \
    -cp "$KAFKA_HOME/libs/*" kafka.Kafka "$dir/server.properties"
  wait_healthy kafka "$deadline" "port $KAFKA_PORT" port_open "$KAFKA_PORT"
  wait_healthy kafka "$deadline" "metadata (TopicCommand --list)" kafka_metadata_ok
  wait_healthy kafka "$deadline" "SASL metadata (TopicCommand --list on $KAFKA_SASL_PORT)" \
    kafka_sasl_metadata_ok
  local version
  version="$(sed -n 's/.*Kafka version: \([^ ]*\).*/\1/p' "$(log_file kafka)" | tail -n 1)"
  log "kafka: up, Apache Kafka ${version:-?} (KRaft broker+controller) on 127.0.0.1:$KAFKA_PORT, SASL_PLAINTEXT (PLAIN, user $KAFKA_SASL_USER) on 127.0.0.1:$KAFKA_SASL_PORT"
}

# ---------------------------------------------------------------- ferretdb

# A MongoDB wire-protocol round trip: OP_MSG {buildInfo: 1} on admin; prints the versions.
mongo_build_info() {
  python3 - "$MONGO_PORT" <<'PY'
import socket, struct, sys

def cstr(s): return s.encode() + b"\0"

def bson(*elems):
    body = b"".join(elems) + b"\0"
    return struct.pack("<i", len(body) + 4) + body

def int32(k, v): return b"\x10" + cstr(k) + struct.pack("<i", v)

def string(k, v):
    b = cstr(v)
    return b"\x02" + cstr(k) + struct.pack("<i", len(b)) + b

def recv(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise SystemExit("connection closed")
        buf += chunk
    return buf

def get_string(doc, k):
    key = b"\x02" + cstr(k)
    i = doc.find(key)
    if i < 0: return "?"
    i += len(key)
    (n,) = struct.unpack_from("<i", doc, i)
    return doc[i + 4:i + 3 + n].decode()

with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5) as s:
    payload = struct.pack("<I", 0) + b"\0" + bson(int32("buildInfo", 1), string("$db", "admin"))
    s.sendall(struct.pack("<iiii", 16 + len(payload), 1, 0, 2013) + payload)
    length, _, response_to, opcode = struct.unpack("<iiii", recv(s, 16))
    doc = recv(s, length - 16)[5:]
    ok = doc.find(b"\x01ok\0")
    if opcode != 2013 or response_to != 1 or ok < 0 or struct.unpack_from("<d", doc, ok + 4)[0] != 1.0:
        raise SystemExit("unexpected buildInfo reply")
    print(f"FerretDB {get_string(doc, 'ferretdbVersion')} (MongoDB {get_string(doc, 'version')} compatible)")
PY
}

mongo_ping() { mongo_build_info >/dev/null 2>&1; }

start_mongo() {
  local dir="$RUN_DIR/ferretdb" deadline=$((SECONDS + START_TIMEOUT))
  mkdir -p "$dir"
  launch mongo "$FERRETDB_BIN" --handler=sqlite --sqlite-url="file:$dir/" --state-dir="$dir" \
    --listen-addr="127.0.0.1:$MONGO_PORT" --debug-addr="127.0.0.1:$MONGO_DEBUG_PORT" \
    --telemetry=disable --log-level=warn
  wait_healthy mongo "$deadline" "port $MONGO_PORT" port_open "$MONGO_PORT"
  local version
  if command -v python3 >/dev/null 2>&1; then
    wait_healthy mongo "$deadline" "buildInfo over the wire protocol" mongo_ping
    version="$(mongo_build_info)"
  else
    version="FerretDB $("$FERRETDB_BIN" --version 2>/dev/null | sed -n 's/^version: //p') (port check only: no python3)"
  fi
  log "mongo: up, $version, SQLite backend, on 127.0.0.1:$MONGO_PORT"
}

# ---------------------------------------------------------------- influxdb

influx_ping() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$INFLUX_PORT/ping")" = 204 ]; }

start_influx() {
  need curl "e.g. apt-get install curl"
  local dir="$RUN_DIR/influxdb" deadline=$((SECONDS + START_TIMEOUT))
  mkdir -p "$dir"
  cat >"$dir/influxdb.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:$INFLUX_RPC_PORT"
[meta]
  dir = "$dir/meta"
[data]
  dir = "$dir/data"
  wal-dir = "$dir/wal"
  query-log-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:$INFLUX_PORT"
  auth-enabled = false
  log-enabled = false
  flux-enabled = true
  max-body-size = 0
[logging]
  level = "info"
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
CONF
  launch influx "$INFLUXD_BIN" run -config "$dir/influxdb.conf"
  wait_healthy influx "$deadline" "/ping" influx_ping
  local version flux
  version="$(curl -s -o /dev/null -D - "http://127.0.0.1:$INFLUX_PORT/ping" |
    sed -n 's/^[Xx]-[Ii]nfluxdb-[Vv]ersion: *//p' | tr -d '\r')"
  flux="$(curl -s -o /dev/null -w '%{http_code}' -XPOST "http://127.0.0.1:$INFLUX_PORT/api/v2/query" \
    -H 'Content-Type: application/vnd.flux' -H 'Accept: application/csv' --data-binary 'buckets()')"
  [ "$flux" = 200 ] || fail_start influx "InfluxDB answers but Flux does not (HTTP $flux from /api/v2/query)"
  log "influx: up, InfluxDB ${version:-?} with Flux, on 127.0.0.1:$INFLUX_PORT"
}

# ---------------------------------------------------------------- influxdb 2

influx2_health() { curl -s "http://127.0.0.1:$INFLUX2_PORT/health" | grep -q '"status": *"pass"'; }
influx2_token_file() { echo "$RUN_DIR/influxdb2/operator-token"; }

# Starts a fresh 2.x server and runs its initial set-up through the HTTP API: a user with a
# random password (never printed), the organisation, a first bucket and an operator token,
# random too, which `env` hands to the tests.
start_influx2() {
  need curl "e.g. apt-get install curl"
  local dir="$RUN_DIR/influxdb2" deadline=$((SECONDS + START_TIMEOUT))
  mkdir -p "$dir"
  launch influx2 "$INFLUXD2_BIN" run --bolt-path "$dir/influxd.bolt" --engine-path "$dir/engine" \
    --sqlite-path "$dir/influxd.sqlite" --http-bind-address "127.0.0.1:$INFLUX2_PORT" \
    --reporting-disabled --log-level warn
  wait_healthy influx2 "$deadline" "/health" influx2_health
  local token password status
  token="${LDD_INFLUX2_TOKEN:-ldd-$(head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')}"
  password="$(head -c 24 /dev/urandom | base64 | tr -d '=+/\n')"
  status="$(curl -s -o "$dir/setup.json" -w '%{http_code}' -XPOST "http://127.0.0.1:$INFLUX2_PORT/api/v2/setup" \
    -H 'Content-Type: application/json' \
    --data-binary @- <<JSON
{"username": "ldd", "password": "$password", "org": "$INFLUX2_ORG", "bucket": "$INFLUX2_BUCKET", "token": "$token"}
JSON
  )"
  rm -f "$dir/setup.json"
  [ "$status" = 201 ] || fail_start influx2 "the initial set-up (POST /api/v2/setup) answered HTTP $status"
  (umask 077 && echo "$token" >"$(influx2_token_file)")
  local flux
  flux="$(curl -s -o /dev/null -w '%{http_code}' -XPOST "http://127.0.0.1:$INFLUX2_PORT/api/v2/query?org=$INFLUX2_ORG" \
    -H "Authorization: Token $token" -H 'Content-Type: application/vnd.flux' -H 'Accept: application/csv' \
    --data-binary 'buckets()')"
  [ "$flux" = 200 ] || fail_start influx2 "set up, but Flux with the operator token answers HTTP $flux"
  log "influx2: up, InfluxDB ${INFLUXDB2_VERSION#v}, org $INFLUX2_ORG, on 127.0.0.1:$INFLUX2_PORT"
}

# ---------------------------------------------------------------- commands

cmd_start() {
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  cmd_install "$@"
  local svc pid port
  for svc in "$@"; do
    if pid="$(running_pid "$svc")"; then
      log "$svc: already running (pid $pid); 'stop $svc' first for a fresh one"
      continue
    fi
    rm -f "$(pid_file "$svc")"
    for port in $(ports "$svc"); do
      port_open "$port" && die "$svc: port $port is already in use by a process this script did not start"
    done
    rm -rf "$(data_dir "$svc")"
    local t0=$SECONDS
    "start_$svc"
    log "$svc: healthy after $((SECONDS - t0))s (log: $(log_file "$svc"))"
  done
}

stop_one() { # name [keep-data]
  local name="$1" keep="${2:-}" pid
  if pid="$(running_pid "$name")"; then
    kill "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        log "$name: still running 30s after SIGTERM, sending SIGKILL"
        kill -9 "$pid" 2>/dev/null || true
        sleep 0.5
        break
      fi
      sleep 0.2
    done
    kill -0 "$pid" 2>/dev/null && die "$name: pid $pid survived SIGKILL"
    log "$name: stopped (pid $pid)"
  elif [ -f "$(pid_file "$name")" ]; then
    log "$name: not running (stale pid file removed)"
  fi
  rm -f "$(pid_file "$name")"
  [ "$keep" = keep-data ] || rm -rf "$(data_dir "$name")"
  port_open "$(main_port "$name")" &&
    log "$name: warning: port $(main_port "$name") is still in use by a process this script did not start"
  return 0
}

cmd_stop() {
  local svc
  for svc in "$@"; do stop_one "$svc"; done
}

# Whether any thread of a process is still alive. A zombie whose threads have all exited
# (killed, not yet reaped by its parent) counts as gone; a zombie leader whose other threads
# are still exiting (they hold the sockets of a JVM) does not.
pid_alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local state threads
  state="$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)" || return 1
  case "$state" in
    Z | X)
      threads="$(find "/proc/$1/task" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)"
      [ "$threads" -gt 1 ]
      ;;
    *) return 0 ;;
  esac
}

only_kafka() { # cmd service...
  local cmd="$1"
  shift
  if [ "$#" -ne 1 ] || [ "$1" != kafka ]; then
    die "$cmd: only kafka supports fault injection (usage: $0 $cmd kafka)"
  fi
}

# SIGKILLs the broker (no clean shutdown: unflushed data may be lost, as in a real crash),
# waits until it is gone and removes the pid file. The data directory stays for `revive`.
cmd_crash() {
  only_kafka crash "$@"
  local name=kafka pid
  pid="$(running_pid "$name")" || die "$name: not running (by its pid file): nothing to crash"
  kill -9 "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 30)) port
  while pid_alive "$pid"; do
    [ "$SECONDS" -lt "$deadline" ] || die "$name: pid $pid still alive 30s after SIGKILL"
    sleep 0.1
  done
  rm -f "$(pid_file "$name")"
  # Gone means its ports are closed too (`revive` needs them).
  for port in $(ports "$name"); do
    while port_open "$port"; do
      [ "$SECONDS" -lt "$deadline" ] || die "$name: port $port still open 30s after SIGKILL of pid $pid"
      sleep 0.1
    done
  done
  log "$name: crashed (SIGKILL to pid $pid); data kept in $(data_dir "$name"); '$0 revive $name' restarts it"
}

# Starts a crashed broker again on its data directory and health-checks it like `start`.
cmd_revive() {
  only_kafka revive "$@"
  local name=kafka pid port
  if pid="$(running_pid "$name")"; then
    die "$name: already running (pid $pid): nothing to revive ('crash $name' first)"
  fi
  [ -d "$(data_dir "$name")" ] ||
    die "$name: no data directory $(data_dir "$name") to revive ('start $name' makes a fresh one)"
  cmd_install "$name"
  rm -f "$(pid_file "$name")"
  for port in $(ports "$name"); do
    port_open "$port" && die "$name: port $port is already in use by a process this script did not start"
  done
  REVIVING=1
  local t0=$SECONDS
  "start_$name" revive
  REVIVING=0
  log "$name: revived, healthy after $((SECONDS - t0))s (log: $(log_file "$name"))"
}

cmd_status() {
  local svc pid state=0
  for svc in "${ALL_SERVICES[@]}"; do
    if pid="$(running_pid "$svc")"; then
      if port_open "$(main_port "$svc")"; then
        echo "$svc: up (pid $pid, 127.0.0.1:$(main_port "$svc"))"
      else
        echo "$svc: starting or unhealthy (pid $pid, port $(main_port "$svc") closed)"
        state=1
      fi
    elif [ "$svc" = kafka ] && [ -d "$(data_dir "$svc")" ]; then
      echo "$svc: down, data kept (crashed? 'revive $svc' restarts it, 'stop $svc' removes it)"
      state=1
    else
      echo "$svc: down"
      state=1
    fi
  done
  return "$state"
}

cmd_env() {
  echo "export LDD_TEST_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT"
  # The SASL_PLAINTEXT listener and its test user (the password is made at start; gone with
  # `stop`).
  echo "export LDD_TEST_KAFKA_SASL_BROKERS=127.0.0.1:$KAFKA_SASL_PORT"
  echo "export LDD_TEST_KAFKA_SASL_USERNAME=$KAFKA_SASL_USER"
  if [ -r "$(kafka_sasl_password_file)" ]; then
    printf 'export LDD_TEST_KAFKA_SASL_PASSWORD=%q\n' "$(cat "$(kafka_sasl_password_file)")"
  fi
  echo "export LDD_TEST_MONGO_URL=mongodb://127.0.0.1:$MONGO_PORT/"
  echo "export LDD_TEST_INFLUX_URL=http://127.0.0.1:$INFLUX_PORT"
  echo "export LDD_TEST_INFLUX2_URL=http://127.0.0.1:$INFLUX2_PORT"
  echo "export LDD_TEST_INFLUX2_ORG=$INFLUX2_ORG"
  # The operator token of the running 2.x server (made at start; gone with `stop`).
  if [ -r "$(influx2_token_file)" ]; then
    printf 'export LDD_TEST_INFLUX2_TOKEN=%q\n' "$(cat "$(influx2_token_file)")"
  fi
  # Kafka's own tools (kafka-producer-perf-test and friends), for `ldd bench`.
  printf 'export LDD_KAFKA_CLASSPATH=%q\n' "$KAFKA_HOME/libs/*"
}

usage() {
  die "usage: $0 install|start|stop [kafka|mongo|influx|influx2...] | crash|revive kafka | status | env"
}

main() {
  local cmd="${1:-}"
  [ "$#" -gt 0 ] && shift
  local svc
  for svc in "$@"; do
    case "$svc" in kafka | mongo | influx | influx2) ;; *) die "unknown service '$svc' (kafka, mongo, influx, influx2)" ;; esac
  done
  # Fault injection names its service: no default to all of them.
  case "$cmd" in
    crash | revive)
      "cmd_$cmd" "$@"
      return
      ;;
  esac
  [ "$#" -gt 0 ] || set -- "${ALL_SERVICES[@]}"
  case "$cmd" in
    install) cmd_install "$@" ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status ;;
    env) cmd_env ;;
    *) usage ;;
  esac
}

main "$@"
