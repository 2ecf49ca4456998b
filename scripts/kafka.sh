#!/usr/bin/env bash
# A real, local, single-node Apache Kafka broker (KRaft: broker + controller in one JVM),
# assembled from Maven Central jars: no Docker, no tarball.
#
#   scripts/kafka.sh fetch    resolve the broker's classpath into the cache (once)
#   scripts/kafka.sh start    fetch, format storage (once), launch, wait until ready, create topics
#   scripts/kafka.sh stop     SIGTERM the broker by its pid file, SIGKILL after ~30 s
#   scripts/kafka.sh status   exit 0 if a broker answers a metadata request, 1 otherwise
#
# Environment (all optional):
#   KAFKA_PORT (9092)  KAFKA_CONTROLLER_PORT (9093)  KAFKA_DATA (<repo>/var/kafka)
#   KAFKA_LIBS (~/.cache/isams-sync/kafka-<version>/libs)  KAFKA_START_TIMEOUT (90)
#   KAFKA_HEAP_OPTS (-Xmx512m -Xms256m)  KAFKA_JVM_OPTS (GC and friends, see below)
#   SYNC_KAFKA_TOPIC_PREFIX (prepended to the docs/design.md §2.3 topic names)
#   KAFKA_ADMIN_PYTHON (<repo>/.venv/bin/python: runs consumers.adapters.kafka.admin)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
POM="$REPO/scripts/kafka/pom.xml"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")"
SLF4J_VERSION="$(sed -n 's:.*<slf4j.version>\(.*\)</slf4j.version>.*:\1:p' "$POM")"

PORT="${KAFKA_PORT:-9092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
BOOTSTRAP="127.0.0.1:$PORT"
LIBS="${KAFKA_LIBS:-$HOME/.cache/isams-sync/kafka-$KAFKA_VERSION/libs}"
DATA="${KAFKA_DATA:-$REPO/var/kafka}"
LOG="$DATA/broker.log"
PIDFILE="$DATA/broker.pid"
PROPS="$DATA/server.properties"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT=30
PYTHON="${KAFKA_ADMIN_PYTHON:-$REPO/.venv/bin/python}"
TOPIC_PREFIX="${SYNC_KAFKA_TOPIC_PREFIX:-}"
TOPICS=("${TOPIC_PREFIX}isams.changes" "${TOPIC_PREFIX}isams.changes.retry" "${TOPIC_PREFIX}isams.changes.dlq" "${TOPIC_PREFIX}isams.changes.bulk")
# Measured on 2 cores (Kafka 4.4.0, Java 17): ~60 MB live heap after a full GC, ~280 MB RSS
# idle, ~300 MB while 200k x 1 KB records go through (young GCs only, 0.04 s in all).
# SerialGC: no GC threads competing with the tests for the two cores.
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"
JVM_OPTS="${KAFKA_JVM_OPTS:--XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true}"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
LOG_OPTS=(
  -Dorg.slf4j.simpleLogger.showDateTime=true
  "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSS"
)

say() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# --- fetch -----------------------------------------------------------------------------------

libs_complete() { [[ -f "$LIBS/.complete" ]]; }

fetch() {
  if libs_complete; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found: install Maven 3.8+ (apt-get install maven)"
  say "fetching Kafka $KAFKA_VERSION jars from Maven Central into $LIBS"
  local partial="$LIBS.partial.$$"
  rm -rf "$partial"
  mkdir -p "$(dirname "$LIBS")"
  local mvn_log="$partial.log"
  if ! mvn -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$partial" >"$mvn_log" 2>&1; then
    grep -E 'ERROR|BUILD' "$mvn_log" | tail -n 20 >&2 || tail -n 20 "$mvn_log" >&2
    rm -rf "$partial" "$mvn_log"
    die "mvn could not resolve the broker's classpath from Maven Central"
  fi
  rm -f "$mvn_log"
  # The broker logs nothing unless the binding matches the API (1.7 ignores 2.x providers).
  local apis=("$partial"/slf4j-api-*.jar)
  if [[ ${#apis[@]} -ne 1 || "${apis[0]}" != "$partial/slf4j-api-$SLF4J_VERSION.jar" \
        || ! -f "$partial/slf4j-simple-$SLF4J_VERSION.jar" ]]; then
    rm -rf "$partial"
    die "slf4j mismatch: classpath has ${apis[*]##*/}, pom pins slf4j-simple $SLF4J_VERSION"
  fi
  if [[ ! -f "$partial/kafka_2.13-$KAFKA_VERSION.jar" ]]; then
    rm -rf "$partial"
    die "kafka_2.13-$KAFKA_VERSION.jar missing from the resolved classpath"
  fi
  local jars=("$partial"/*.jar)
  printf '%s\n' "${jars[@]##*/}" >"$partial/.complete"
  rm -rf "$LIBS"
  mv "$partial" "$LIBS"
  say "fetched ${#jars[@]} jars ($(du -sh "$LIBS" | cut -f1))"
}

# --- helpers ---------------------------------------------------------------------------------

require_python() { [[ -x "$PYTHON" ]] || die "$PYTHON not found: run 'make venv' first"; }

admin() { (cd "$REPO" && "$PYTHON" -m consumers.adapters.kafka.admin "$@"); }

# Whether a broker answers a metadata request (false, too, when there is no venv to ask with).
answers() {
  [[ -x "$PYTHON" ]] && admin ping --bootstrap "$BOOTSTRAP" --timeout "${1:-3}" 2>/dev/null
}

# Whether pid is a live Kafka broker. Reading its command line (not `kill -0`) also rules out
# a reused pid and a zombie: the broker is our child until this script exits, and a dead
# child stays a zombie (with an empty command line) until then.
is_broker() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q ' kafka\.Kafka '; }

# Whether pid is alive and not a zombie; unlike is_broker, true in the instant between fork
# and exec, right after launch.
alive() {
  local state
  state="$(ps -o stat= -p "$1" 2>/dev/null || true)"
  [[ -n "$state" && "$state" != Z* ]]
}

# The pid from the pid file, if that process is still our broker.
broker_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid="$(cat "$PIDFILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] && is_broker "$pid" || return 1
  printf '%s\n' "$pid"
}

# The first errors (the cause; the shutdown that follows is noise) and the last lines.
log_tail() {
  [[ -f "$LOG" ]] || return 0
  if grep -q -E ' (ERROR|FATAL) ' "$LOG"; then
    say "first errors in $LOG:"
    grep -m 3 -A 2 -E ' (ERROR|FATAL) ' "$LOG" | cut -c1-400 >&2
  fi
  say "last lines of $LOG:"
  tail -n 15 "$LOG" | cut -c1-400 >&2
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

write_properties() {
  # Rewritten on every start so port changes apply. The quorum is static
  # (controller.quorum.voters), so the controller port is not baked into the formatted storage.
  cat >"$PROPS" <<EOF
# Written by scripts/kafka.sh on each start; edits here are lost.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA/data
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
# The cleaner (it compacts __consumer_offsets) keeps this buffer for the JVM's life; the
# default 128 MiB was most of the live heap. 32 MiB indexes ~1.3 M keys per pass: plenty here.
log.cleaner.dedupe.buffer.size=33554432
log.cleaner.threads=1
EOF
}

format_storage() {
  [[ -f "$DATA/data/meta.properties" ]] && return 0
  local cluster_id
  # A Kafka cluster id is a base64url UUID without padding that must not start with '-'.
  cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
  while [[ "$cluster_id" == -* ]]; do
    cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
  done
  say "formatting storage in $DATA/data (cluster $cluster_id)"
  # shellcheck disable=SC2086 # the option strings are meant to split into words
  if ! "$JAVA" $HEAP_OPTS $JVM_OPTS "${LOG_OPTS[@]}" -cp "$LIBS/*" kafka.tools.StorageTool \
      format -t "$cluster_id" -c "$PROPS" >>"$LOG" 2>&1; then
    log_tail
    die "formatting storage failed"
  fi
}

launch() {
  # nohup + setsid: the broker outlives this shell and ignores its terminal's signals.
  # 9>&-: do not let the broker inherit the start lock.
  # shellcheck disable=SC2086 # the option strings are meant to split into words
  nohup setsid "$JAVA" $HEAP_OPTS $JVM_OPTS "${LOG_OPTS[@]}" -cp "$LIBS/*" kafka.Kafka "$PROPS" </dev/null >>"$LOG" 2>&1 9>&- &
  echo $! >"$PIDFILE"
}

wait_ready() {
  local pid="$1" deadline=$((SECONDS + START_TIMEOUT)) err=""
  while ((SECONDS < deadline)); do
    if ! alive "$pid"; then
      rm -f "$PIDFILE"
      log_tail
      die "the broker (pid $pid) exited during start-up"
    fi
    if err="$(admin wait --bootstrap "$BOOTSTRAP" --timeout 3 2>&1 >/dev/null)"; then
      return 0
    fi
    sleep 1
  done
  log_tail
  [[ -z "$err" ]] || say "$err"
  die "the broker (pid $pid) did not answer on $BOOTSTRAP within ${START_TIMEOUT} s; it is left running (scripts/kafka.sh stop)"
}

# --- commands --------------------------------------------------------------------------------

start() {
  require_python
  mkdir -p "$DATA"
  # One start at a time (two test runs starting together must not launch two brokers).
  exec 9>"$DATA/.start.lock"
  flock -w $((START_TIMEOUT + 60)) 9 || die "another 'kafka.sh start' holds $DATA/.start.lock"
  if answers 3; then
    say "a broker already answers on $BOOTSTRAP; nothing to do"
    admin ensure --bootstrap "$BOOTSTRAP" --topic "${TOPICS[0]}" --topic "${TOPICS[1]}" --topic "${TOPICS[2]}"
    return 0
  fi
  local started=$SECONDS pid
  if pid="$(broker_pid)"; then
    say "broker pid $pid is running but not answering yet; waiting for it"
  else
    rm -f "$PIDFILE"
    local port
    for port in "$PORT" "$CONTROLLER_PORT"; do
      if port_open "$port"; then
        die "127.0.0.1:$port is taken by something that is not our Kafka broker (ss -ltnp | grep $port)"
      fi
    done
    if [[ -f "$LOG" ]]; then mv -f "$LOG" "$LOG.1"; fi
    fetch
    "$JAVA" -version 2>&1 | grep -Eq 'version "(1[7-9]|[2-9][0-9])' \
      || die "Kafka $KAFKA_VERSION needs Java 17 or newer: $("$JAVA" -version 2>&1 | head -1)"
    write_properties
    format_storage
    launch
    pid="$(cat "$PIDFILE")"
    say "started Kafka $KAFKA_VERSION (pid $pid), log $LOG; waiting for $BOOTSTRAP"
  fi
  wait_ready "$pid"
  if ! admin ensure --bootstrap "$BOOTSTRAP" --topic "${TOPICS[0]}" --topic "${TOPICS[1]}" --topic "${TOPICS[2]}"; then
    log_tail
    die "the broker answers but creating the topics failed"
  fi
  say "ready on $BOOTSTRAP after $((SECONDS - started)) s"
}

stop() {
  local pid
  if ! pid="$(broker_pid)"; then
    rm -f "$PIDFILE"
    if answers 2; then
      say "a broker answers on $BOOTSTRAP but was not started from $DATA; not touching it"
      exit 1
    fi
    say "not running"
    return 0
  fi
  say "stopping the broker (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while is_broker "$pid" && ((SECONDS < deadline)); do
    sleep 0.5
  done
  if is_broker "$pid"; then
    say "still running after ${STOP_TIMEOUT} s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while is_broker "$pid"; do sleep 0.2; done
  fi
  rm -f "$PIDFILE"
  say "stopped"
}

status() {
  require_python
  if answers 3; then
    local pid
    pid="$(broker_pid || echo "not started by this script")"
    say "Kafka answers on $BOOTSTRAP (pid $pid)"
    return 0
  fi
  say "Kafka does not answer on $BOOTSTRAP"
  return 1
}

case "${1:-}" in
  fetch) fetch; say "Kafka $KAFKA_VERSION jars in $LIBS" ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) die "usage: $0 {start|stop|status|fetch}" ;;
esac
