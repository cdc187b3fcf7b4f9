#!/usr/bin/env bash
# Installs, starts, checks and stops the real services ldd's tests and benchmarks use:
# Apache Kafka (KRaft, single node), FerretDB (MongoDB wire protocol) and InfluxDB 1.8
# with Flux, all on 127.0.0.1. Downloads and builds are cached outside the repository.
#
#   scripts/services.sh install            # fetch/build everything (idempotent)
#   scripts/services.sh start [svc...]     # install if needed, start, health-check
#   scripts/services.sh stop [svc...]      # stop by pid file, remove data
#   scripts/services.sh status             # up/down per service
#   scripts/services.sh env                # the env vars the tests read
#
# Services: kafka, mongo, influx. Overrides: LDD_CACHE_DIR (default ~/.cache/ldd),
# LDD_RUN_DIR (default $LDD_CACHE_DIR/run).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE_DIR="${LDD_CACHE_DIR:-$HOME/.cache/ldd}"
RUN_DIR="${LDD_RUN_DIR:-$CACHE_DIR/run}"

KAFKA_VERSION=4.1.2
FERRETDB_VERSION=v1.24.2
INFLUXDB_VERSION=v1.8.10

KAFKA_PORT=19092
KAFKA_CONTROLLER_PORT=19093
MONGO_PORT=37017
MONGO_DEBUG_PORT=37018
INFLUX_PORT=18086
INFLUX_RPC_PORT=18088

KAFKA_HOME="$CACHE_DIR/kafka-$KAFKA_VERSION"
FERRETDB_BIN="$CACHE_DIR/ferretdb-$FERRETDB_VERSION/bin/ferretdb"
INFLUXD_BIN="$CACHE_DIR/influxdb-$INFLUXDB_VERSION/bin/influxd"

ALL_SERVICES=(kafka mongo influx)

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] error: %s\n' "$*" >&2; exit 1; }

need() { command -v "$1" >/dev/null 2>&1 || die "$1 is required but not installed ($2)"; }

# ---------------------------------------------------------------- install

install_kafka() {
  if [ -f "$KAFKA_HOME/libs/kafka_2.13-$KAFKA_VERSION.jar" ]; then return; fi
  need mvn "install Maven (apt-get install maven)"
  need java "install a Java 17 runtime"
  log "collecting Apache Kafka $KAFKA_VERSION jars from Maven Central"
  local tmp="$KAFKA_HOME.tmp"
  rm -rf "$tmp"
  mvn -q -B -f "$SCRIPT_DIR/kafka/pom.xml" dependency:copy-dependencies \
    -Dkafka.version="$KAFKA_VERSION" -DincludeScope=runtime -DoutputDirectory="$tmp/libs" >/dev/null
  rm -rf "$KAFKA_HOME"
  mv "$tmp" "$KAFKA_HOME"
}

install_ferretdb() {
  if [ -x "$FERRETDB_BIN" ]; then return; fi
  need go "install Go"
  log "building FerretDB $FERRETDB_VERSION"
  # `go install` of FerretDB panics at start: its module lacks build/version/version.txt.
  # Build from a writable copy of the module with that file written.
  (cd "$CACHE_DIR" && GOFLAGS=-mod=mod go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" >/dev/null)
  local mod_dir
  mod_dir="$(cd "$CACHE_DIR" && go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')"
  [ -d "$mod_dir" ] || die "could not download the FerretDB module"
  local src="$CACHE_DIR/ferretdb-src"
  rm -rf "$src"
  cp -r "$mod_dir" "$src"
  chmod -R u+w "$src"
  echo "$FERRETDB_VERSION" > "$src/build/version/version.txt"
  mkdir -p "$(dirname "$FERRETDB_BIN")"
  (cd "$src" && go build -o "$FERRETDB_BIN.tmp" ./cmd/ferretdb)
  mv "$FERRETDB_BIN.tmp" "$FERRETDB_BIN"
  rm -rf "$src"
}

install_influx() {
  if [ -x "$INFLUXD_BIN" ]; then return; fi
  need go "install Go"
  log "building InfluxDB $INFLUXDB_VERSION (with Flux)"
  mkdir -p "$(dirname "$INFLUXD_BIN")"
  GOBIN="$(dirname "$INFLUXD_BIN")" go install -ldflags "-X main.version=${INFLUXDB_VERSION#v}" \
    "github.com/influxdata/influxdb/cmd/influxd@$INFLUXDB_VERSION"
}

cmd_install() {
  mkdir -p "$CACHE_DIR"
  local svc
  for svc in "$@"; do
    case "$svc" in
      kafka) install_kafka ;;
      mongo) install_ferretdb ;;
      influx) install_influx ;;
    esac
  done
}

# ---------------------------------------------------------------- processes

pid_file() { echo "$RUN_DIR/$1.pid"; }

is_running() {
  local f pid
  f="$(pid_file "$1")"
  [ -f "$f" ] || return 1
  pid="$(cat "$f")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # name seconds command...
  local name="$1" secs="$2"
  shift 2
  local deadline=$((SECONDS + secs))
  until "$@"; do
    if ! is_running "$name"; then
      tail -n 40 "$RUN_DIR/$name.log" >&2 || true
      die "$name exited during start-up (log: $RUN_DIR/$name.log)"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 40 "$RUN_DIR/$name.log" >&2 || true
      die "$name did not become healthy within ${secs}s (log: $RUN_DIR/$name.log)"
    fi
    sleep 0.5
  done
}

launch() { # name command...
  local name="$1"
  shift
  nohup "$@" >"$RUN_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$(pid_file "$name")"
}

# ---------------------------------------------------------------- kafka

kafka_java() { java -cp "$KAFKA_HOME/libs/*" "$@"; }

kafka_topics_ok() {
  kafka_java -Xmx256m org.apache.kafka.tools.TopicCommand \
    --bootstrap-server "127.0.0.1:$KAFKA_PORT" --list >/dev/null 2>&1
}

start_kafka() {
  local dir="$RUN_DIR/kafka"
  rm -rf "$dir"
  mkdir -p "$dir/data"
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=4
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
message.max.bytes=67108864
replica.fetch.max.bytes=67108864
log.retention.hours=24
PROPS
  cat >"$dir/log4j2.properties" <<PROPS
rootLogger.level=INFO
rootLogger.appenderRef.file.ref=file
appender.file.type=File
appender.file.name=file
appender.file.fileName=$dir/server.log
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=[%d] %p %m (%c)%n
PROPS
  local cluster_id
  cluster_id="$(kafka_java -Xmx256m kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)"
  kafka_java -Xmx256m -Dlog4j2.configurationFile="$dir/log4j2.properties" kafka.tools.StorageTool \
    format -t "$cluster_id" -c "$dir/server.properties" >"$dir/format.log" 2>&1 \
    || { cat "$dir/format.log" >&2; die "formatting Kafka storage failed"; }
  launch kafka java -Xms1g -Xmx1g -XX:+UseG1GC \
    -Dlog4j2.configurationFile="$dir/log4j2.properties" \
    -cp "$KAFKA_HOME/libs/*" kafka.Kafka "$dir/server.properties"
  wait_for kafka 120 port_open "$KAFKA_PORT"
  wait_for kafka 120 kafka_topics_ok
  log "kafka: Apache Kafka $KAFKA_VERSION (KRaft) on 127.0.0.1:$KAFKA_PORT"
}

# ---------------------------------------------------------------- ferretdb

start_mongo() {
  local dir="$RUN_DIR/ferretdb"
  rm -rf "$dir"
  mkdir -p "$dir"
  launch mongo "$FERRETDB_BIN" --handler=sqlite --sqlite-url="file:$dir/" --state-dir="$dir" \
    --listen-addr="127.0.0.1:$MONGO_PORT" --debug-addr="127.0.0.1:$MONGO_DEBUG_PORT" \
    --telemetry=disable --log-level=warn
  wait_for mongo 60 port_open "$MONGO_PORT"
  log "mongo: FerretDB $("$FERRETDB_BIN" --version 2>/dev/null | sed -n 's/^version: //p') (SQLite backend) on 127.0.0.1:$MONGO_PORT"
}

# ---------------------------------------------------------------- influxdb

influx_ping() { curl -sf -o /dev/null "http://127.0.0.1:$INFLUX_PORT/ping"; }

start_influx() {
  local dir="$RUN_DIR/influxdb"
  rm -rf "$dir"
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
  level = "warn"
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
CONF
  launch influx "$INFLUXD_BIN" run -config "$dir/influxdb.conf"
  wait_for influx 60 influx_ping
  local version flux
  version="$(curl -sI "http://127.0.0.1:$INFLUX_PORT/ping" | sed -n 's/^[Xx]-[Ii]nfluxdb-[Vv]ersion: *//p' | tr -d '\r')"
  flux="$(curl -s -o /dev/null -w '%{http_code}' -XPOST "http://127.0.0.1:$INFLUX_PORT/api/v2/query" \
    -H 'Content-Type: application/vnd.flux' -H 'Accept: application/csv' -d 'buckets()')"
  [ "$flux" = "200" ] || die "InfluxDB answers but Flux does not (HTTP $flux)"
  log "influx: InfluxDB ${version:-$INFLUXDB_VERSION} with Flux on 127.0.0.1:$INFLUX_PORT"
}

# ---------------------------------------------------------------- commands

services_or_all() {
  if [ "$#" -eq 0 ]; then echo "${ALL_SERVICES[@]}"; else echo "$@"; fi
}

check_names() {
  local svc
  for svc in "$@"; do
    case "$svc" in kafka | mongo | influx) ;; *) die "unknown service '$svc' (kafka, mongo, influx)" ;; esac
  done
}

cmd_start() {
  need curl "apt-get install curl"
  mkdir -p "$RUN_DIR"
  cmd_install "$@"
  local svc
  for svc in "$@"; do
    if is_running "$svc"; then
      log "$svc: already running (pid $(cat "$(pid_file "$svc")"))"
      continue
    fi
    "start_$svc"
  done
}

stop_one() {
  local name="$1" f pid
  f="$(pid_file "$name")"
  if [ -f "$f" ]; then
    pid="$(cat "$f")"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      local deadline=$((SECONDS + 30))
      while kill -0 "$pid" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
          log "$name: did not stop in 30s, killing"
          kill -9 "$pid" 2>/dev/null || true
          break
        fi
        sleep 0.2
      done
    fi
    rm -f "$f"
    log "$name: stopped"
  fi
  case "$name" in
    kafka) rm -rf "$RUN_DIR/kafka" ;;
    mongo) rm -rf "$RUN_DIR/ferretdb" ;;
    influx) rm -rf "$RUN_DIR/influxdb" ;;
  esac
}

cmd_stop() {
  local svc
  for svc in "$@"; do stop_one "$svc"; done
}

cmd_status() {
  local svc
  for svc in "${ALL_SERVICES[@]}"; do
    if is_running "$svc"; then echo "$svc: up (pid $(cat "$(pid_file "$svc")"))"; else echo "$svc: down"; fi
  done
}

cmd_env() {
  echo "export LDD_TEST_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT"
  echo "export LDD_TEST_MONGO_URL=mongodb://127.0.0.1:$MONGO_PORT/"
  echo "export LDD_TEST_INFLUX_URL=http://127.0.0.1:$INFLUX_PORT"
  echo "export LDD_KAFKA_CLASSPATH='$KAFKA_HOME/libs/*'"
}

main() {
  local cmd="${1:-}"
  [ "$#" -gt 0 ] && shift
  case "$cmd" in
    install) check_names "$@"; cmd_install $(services_or_all "$@") ;;
    start) check_names "$@"; cmd_start $(services_or_all "$@") ;;
    stop) check_names "$@"; cmd_stop $(services_or_all "$@") ;;
    status) cmd_status ;;
    env) cmd_env ;;
    *) die "usage: $0 install|start|stop|status|env [kafka|mongo|influx...]" ;;
  esac
}

main "$@"
