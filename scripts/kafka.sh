#!/usr/bin/env bash
# Runs a real Apache Kafka (KRaft, no ZooKeeper) cluster on 127.0.0.1 for tests.
# The jars come from Maven Central (there is no other way to get Kafka here).
#
#   scripts/kafka.sh fetch                 download Kafka + deps into scripts/.kafka-lib/VERSION (cached)
#   scripts/kafka.sh start DIR N           start N combined broker+controller nodes (data under DIR),
#                                          wait until all are up, print the bootstrap servers
#   scripts/kafka.sh stop DIR              stop every node (SIGTERM, SIGKILL after a bound)
#   scripts/kafka.sh stop-node DIR K       graceful stop of node K (1-based)
#   scripts/kafka.sh kill DIR K            kill -9 node K
#   scripts/kafka.sh restart-node DIR K    start node K again on its old data, wait until it is up
#   scripts/kafka.sh bootstrap DIR         print the bootstrap servers of the cluster in DIR
#   scripts/kafka.sh status DIR            print "K PORT running|stopped" for every node
#   scripts/kafka.sh tool CLASS ARGS...    run a Kafka CLI main class, e.g.
#                                          org.apache.kafka.tools.TopicCommand --list --bootstrap-server ...
#   Aliases for `tool`:
#     topics               org.apache.kafka.tools.TopicCommand                       (kafka-topics.sh)
#     console-producer     org.apache.kafka.tools.ConsoleProducer                    (kafka-console-producer.sh)
#     console-consumer     org.apache.kafka.tools.consumer.ConsoleConsumer           (kafka-console-consumer.sh)
#     consumer-groups      org.apache.kafka.tools.consumer.group.ConsumerGroupCommand (kafka-consumer-groups.sh)
#     get-offsets          org.apache.kafka.tools.GetOffsetShell                     (kafka-get-offsets.sh)
#     broker-api-versions  org.apache.kafka.tools.BrokerApiVersionsCommand           (kafka-broker-api-versions.sh)
#     metadata-quorum      org.apache.kafka.tools.MetadataQuorumCommand              (kafka-metadata-quorum.sh)
#     storage              kafka.tools.StorageTool                                   (kafka-storage.sh)
#
# Environment:
#   KAFKA_VERSION              Kafka release to fetch/run (4.1.1); KAFKA_LOG4J_VERSION must match it (2.24.3)
#   KAFKA_LIB_DIR              jar cache (scripts/.kafka-lib/$KAFKA_VERSION)
#   KAFKA_BASE_PORT            broker port of node 1; node K uses BASE+K-1 (19092)
#   KAFKA_CONTROLLER_BASE_PORT controller port of node 1 (19192)
#   KAFKA_HEAP_OPTS            broker heap (-Xms512m -Xmx512m)
#   KAFKA_JVM_OPTS             extra broker JVM options
#   KAFKA_NUM_PARTITIONS       num.partitions for auto-created topics (1)
#   KAFKA_EXTRA_PROPERTIES     extra server.properties lines (newline separated), appended last so they win
#   KAFKA_START_TIMEOUT        seconds to wait for the nodes to come up (90)
#   KAFKA_STOP_TIMEOUT         seconds between SIGTERM and SIGKILL (30)
#
# Layout of DIR: cluster.env (ports, cluster id), nodeK.pid, nodeK/server.properties,
# nodeK/data/ (log.dirs + KRaft metadata), nodeK/server.log (Log4j), nodeK/stdout.log (JVM output).
# `start` on a DIR that already holds a stopped cluster starts it again on its data.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export LOG_PREFIX=kafka.sh # used by log() in common.sh
# shellcheck source=common.sh
source "$SCRIPT_DIR/common.sh"

KAFKA_VERSION=${KAFKA_VERSION:-4.1.1}
KAFKA_LOG4J_VERSION=${KAFKA_LOG4J_VERSION:-2.24.3}
KAFKA_LIB_DIR=${KAFKA_LIB_DIR:-$SCRIPT_DIR/.kafka-lib/$KAFKA_VERSION}
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java

# The line KafkaRaftServer logs once startup() returned; for a node with the
# broker role that is after it caught up with the metadata log and was unfenced,
# i.e. it accepts produce/fetch requests.
STARTED_LINE='Kafka Server started'

# ---------------------------------------------------------------- fetch

cmd_fetch() {
  if [[ -f $KAFKA_LIB_DIR/.complete ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (apt-get install maven, or run scripts/deps.sh)"
  check_java
  # Tests may call start/tool concurrently on a fresh clone: let one fetch.
  mkdir -p "$(dirname "$KAFKA_LIB_DIR")"
  exec 9>"$KAFKA_LIB_DIR.lock"
  flock -w 600 9 || die "timed out waiting for another fetch ($KAFKA_LIB_DIR.lock)"
  if [[ -f $KAFKA_LIB_DIR/.complete ]]; then
    exec 9>&-
    return 0
  fi
  log "fetching Apache Kafka $KAFKA_VERSION from Maven Central into $KAFKA_LIB_DIR"
  # Copy into a temporary folder and rename it at the end, so an interrupted
  # fetch never leaves a half-filled lib dir that looks complete.
  local tmp="$KAFKA_LIB_DIR.tmp.$$" out rc=0
  rm -rf "$tmp"
  mkdir -p "$tmp"
  out=$(mvn -q -B -ntp -Dstyle.color=never -f "$SCRIPT_DIR/kafka-pom.xml" \
    -Dkafka.version="$KAFKA_VERSION" -Dlog4j.version="$KAFKA_LOG4J_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1) || rc=$?
  if ((rc != 0)); then
    printf '%s\n' "$out" | tail -n 30 >&2
    rm -rf "$tmp"
    die "mvn could not fetch Kafka $KAFKA_VERSION"
  fi
  [[ -f $tmp/kafka_2.13-$KAFKA_VERSION.jar && -f $tmp/kafka-tools-$KAFKA_VERSION.jar ]] ||
    { rm -rf "$tmp"; die "mvn succeeded but the Kafka jars are missing in $tmp"; }
  echo "$KAFKA_VERSION" >"$tmp/.complete"
  rm -rf "$KAFKA_LIB_DIR"
  mv "$tmp" "$KAFKA_LIB_DIR"
  exec 9>&-
  log "fetched $(find "$KAFKA_LIB_DIR" -name '*.jar' | wc -l) jars"
}

# check_java: Kafka 4.x brokers and tools need Java 17+.
check_java() {
  command -v "$JAVA" >/dev/null || die "java not found (Kafka $KAFKA_VERSION needs Java 17+)"
  local v
  v=$("$JAVA" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
  [[ ${v%%.*} =~ ^[0-9]+$ && ${v%%.*} -ge 17 ]] || die "Kafka $KAFKA_VERSION needs Java 17+, $JAVA is ${v:-unknown}"
}

ensure_fetched() {
  [[ -f $KAFKA_LIB_DIR/.complete ]] || cmd_fetch
}

# ---------------------------------------------------------------- tools

# run_tool CLASS ARGS...: run a Kafka CLI class in the foreground (exec).
# Small heap, serial GC and C1 only: these JVMs live a few seconds and on a
# 2-core machine start-up time is what matters.
run_tool() {
  ensure_fetched
  local cls=$1
  shift
  # shellcheck disable=SC2086
  exec "$JAVA" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto \
    -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$SCRIPT_DIR/kafka-tools-log4j2.xml" \
    ${KAFKA_TOOL_OPTS:-} -cp "$KAFKA_LIB_DIR/*" "$cls" "$@"
}

# tool_capture CLASS ARGS...: same, in a subshell, for use inside this script.
tool_capture() { (run_tool "$@"); }

# ---------------------------------------------------------------- cluster

# load_cluster DIR: read DIR/cluster.env (written by start) into CL_* variables.
load_cluster() {
  local dir=$1
  [[ -f $dir/cluster.env ]] || die "no Kafka cluster in $dir (missing cluster.env; use: kafka.sh start $dir N)"
  # shellcheck disable=SC1091
  source "$dir/cluster.env"
}

broker_port() { echo $((CL_BASE_PORT + $1 - 1)); }
controller_port() { echo $((CL_CONTROLLER_BASE_PORT + $1 - 1)); }

bootstrap_servers() {
  local k s=
  for ((k = 1; k <= CL_NODES; k++)); do
    s+="${s:+,}127.0.0.1:$(broker_port "$k")"
  done
  echo "$s"
}

check_node_arg() {
  if ! [[ $1 =~ ^[0-9]+$ ]] || (($1 < 1 || $1 > CL_NODES)); then
    die "node must be 1..$CL_NODES, got '$1'"
  fi
}

# write_properties DIR K
write_properties() {
  local dir=$1 k=$2 n=$CL_NODES voters='' i
  for ((i = 1; i <= n; i++)); do
    voters+="${voters:+,}$i@127.0.0.1:$(controller_port "$i")"
  done
  # Replication of internal topics must not exceed the node count, or the
  # first consumer group / transaction waits forever for the topic.
  local rf=$((n < 3 ? n : 3))
  local isr=$((rf >= 3 ? 2 : 1))
  cat >"$dir/node$k/server.properties" <<EOF
# Generated by scripts/kafka.sh for node $k of a $n-node test cluster.
process.roles=broker,controller
node.id=$k
# Static quorum (all nodes listed up front): no --standalone /
# --initial-controllers needed when formatting, works the same for 1 and 3 nodes.
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$(broker_port "$k"),CONTROLLER://127.0.0.1:$(controller_port "$k")
advertised.listeners=PLAINTEXT://127.0.0.1:$(broker_port "$k")
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$dir/node$k/data

auto.create.topics.enable=true
delete.topic.enable=true
num.partitions=${KAFKA_NUM_PARTITIONS:-1}
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
# The default 50 partitions make the first consumer group slow to start.
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
group.initial.rebalance.delay.ms=0

# Small machine (2 cores): fewer threads than the defaults.
num.network.threads=2
num.io.threads=4
background.threads=4
num.recovery.threads.per.data.dir=1
num.replica.fetchers=1
# Notice a dead node sooner than the default 9 s so failover tests are quicker.
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=6000
EOF
  if [[ -n ${KAFKA_EXTRA_PROPERTIES:-} ]]; then
    printf '\n# KAFKA_EXTRA_PROPERTIES\n%s\n' "$KAFKA_EXTRA_PROPERTIES" >>"$dir/node$k/server.properties"
  fi
}

# launch_node DIR K: start the JVM of node K in the background, record its pid.
# Prints the byte offset of server.log before the start, so the caller only
# looks for the "started" line written by this run.
launch_node() {
  local dir=$1 k=$2
  local nd=$dir/node$k
  local offset=0
  [[ -f $nd/server.log ]] && offset=$(stat -c %s "$nd/server.log")
  local port
  for port in "$(broker_port "$k")" "$(controller_port "$k")"; do
    port_open "$port" && die "port 127.0.0.1:$port (node $k) is already in use; set KAFKA_BASE_PORT / KAFKA_CONTROLLER_BASE_PORT"
  done
  # stdin/stdout/stderr are redirected so that a caller capturing our output
  # (e.g. Go's exec.Cmd.Output) is not kept waiting by the broker.
  # shellcheck disable=SC2086
  nohup "$JAVA" ${KAFKA_HEAP_OPTS:--Xms512m -Xmx512m} \
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true \
    -Dkafka.logs.dir="$nd" \
    -Dlog4j2.configurationFile="$SCRIPT_DIR/kafka-log4j2.xml" \
    ${KAFKA_JVM_OPTS:-} \
    -cp "$KAFKA_LIB_DIR/*" kafka.Kafka "$nd/server.properties" \
    </dev/null >>"$nd/stdout.log" 2>&1 &
  echo $! >"$dir/node$k.pid"
  echo "$offset"
}

# node_started DIR K OFFSET: true once this run of node K logged STARTED_LINE.
node_started() {
  local f=$1/node$2/server.log
  [[ -f $f ]] && tail -c +"$(($3 + 1))" "$f" | grep -qF "$STARTED_LINE"
}

# node_logs DIR K: print the tails of node K's logs to stderr.
node_logs() {
  show_tail "$1/node$2/server.log" 40
  [[ -s $1/node$2/stdout.log ]] && show_tail "$1/node$2/stdout.log" 20
  return 0
}

# wait_nodes DIR "K:OFFSET ..." : wait until each listed node has started.
# On failure prints the logs and returns 1 (the caller decides what to stop).
wait_nodes() {
  local dir=$1 specs=$2 timeout=${KAFKA_START_TIMEOUT:-90}
  local deadline=$((SECONDS + timeout)) pending spec k off pid
  while :; do
    pending=()
    for spec in $specs; do
      k=${spec%%:*} off=${spec#*:}
      node_started "$dir" "$k" "$off" && continue
      pid=$(<"$dir/node$k.pid")
      if ! pid_alive "$pid"; then
        log "node $k (pid $pid) exited during startup"
        node_logs "$dir" "$k"
        return 1
      fi
      pending+=("$k")
    done
    ((${#pending[@]} == 0)) && return 0
    if ((SECONDS >= deadline)); then
      log "timed out after ${timeout}s waiting for node(s) ${pending[*]}"
      for k in "${pending[@]}"; do node_logs "$dir" "$k"; done
      return 1
    fi
    sleep 0.25
  done
}

# format_node DIR K: format node K's storage unless it is already formatted.
format_node() {
  local dir=$1 k=$2 out
  [[ -f $dir/node$k/data/meta.properties ]] && return 0
  out=$(tool_capture kafka.tools.StorageTool format --ignore-formatted \
    --cluster-id "$CL_CLUSTER_ID" --config "$dir/node$k/server.properties" 2>&1) ||
    { printf '%s\n' "$out" >&2; die "formatting storage of node $k failed"; }
}

cmd_start() {
  (($# == 2)) || usage
  local dir=$1 n=$2
  [[ $n =~ ^[1-9]$ ]] || die "node count must be 1..9 (normally 1 or 3), got '$n'"
  ensure_fetched
  check_java
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)

  if [[ -f $dir/cluster.env ]]; then
    load_cluster "$dir"
    [[ $CL_NODES == "$n" ]] || die "$dir holds a $CL_NODES-node cluster; remove it or use another DIR"
    local k pid
    for ((k = 1; k <= n; k++)); do
      pid=$(read_pid "$dir/node$k.pid") && die "node $k already running (pid $pid); run: kafka.sh stop $dir"
    done
    log "restarting the $n-node cluster in $dir on its existing data"
  else
    local cluster_id
    cluster_id=$(tool_capture kafka.tools.StorageTool random-uuid) || die "random-uuid failed"
    cat >"$dir/cluster.env" <<EOF
CL_NODES=$n
CL_BASE_PORT=${KAFKA_BASE_PORT:-19092}
CL_CONTROLLER_BASE_PORT=${KAFKA_CONTROLLER_BASE_PORT:-19192}
CL_CLUSTER_ID=$cluster_id
CL_VERSION=$KAFKA_VERSION
EOF
    load_cluster "$dir"
  fi

  local k
  for ((k = 1; k <= n; k++)); do
    mkdir -p "$dir/node$k/data"
    write_properties "$dir" "$k"
  done
  # Formatting is a JVM start per node: do them in parallel.
  local fpids=()
  for ((k = 1; k <= n; k++)); do
    format_node "$dir" "$k" &
    fpids+=($!)
  done
  for k in "${fpids[@]}"; do wait "$k" || die "storage format failed"; done

  local specs=() off
  for ((k = 1; k <= n; k++)); do
    if ! off=$(launch_node "$dir" "$k"); then
      KAFKA_STOP_TIMEOUT=5 stop_nodes "$dir"
      die "could not launch node $k"
    fi
    specs+=("$k:$off")
  done
  log "started $n node(s) (pids $(cat "$dir"/node*.pid | tr '\n' ' ')), waiting for them"
  if ! wait_nodes "$dir" "${specs[*]}"; then
    KAFKA_STOP_TIMEOUT=5 stop_nodes "$dir"
    die "Kafka cluster in $dir did not start"
  fi
  log "Kafka $KAFKA_VERSION ready: $(bootstrap_servers)"
  bootstrap_servers
}

# stop_nodes DIR [K...]: SIGTERM all listed (default: all) nodes at once, then
# wait for all of them together, SIGKILL whatever is left after the bound.
stop_nodes() {
  local dir=$1
  shift
  load_cluster "$dir"
  local nodes=("$@") k pid pids=() timeout=${KAFKA_STOP_TIMEOUT:-30}
  ((${#nodes[@]})) || for ((k = 1; k <= CL_NODES; k++)); do nodes+=("$k"); done
  for k in "${nodes[@]}"; do
    if pid=$(read_pid "$dir/node$k.pid"); then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$k:$pid")
    fi
    rm -f "$dir/node$k.pid"
  done
  local deadline=$((SECONDS + timeout)) left spec
  while :; do
    left=()
    for spec in "${pids[@]}"; do pid_alive "${spec#*:}" && left+=("$spec"); done
    ((${#left[@]} == 0)) && break
    if ((SECONDS >= deadline)); then
      for spec in "${left[@]}"; do
        log "node ${spec%%:*} (pid ${spec#*:}) still running after ${timeout}s, sending SIGKILL"
        stop_pid "${spec#*:}" 0
      done
      break
    fi
    sleep 0.1
  done
}

cmd_stop() {
  (($# == 1)) || usage
  [[ -f $1/cluster.env ]] || { log "no cluster in $1, nothing to stop"; return 0; }
  stop_nodes "$1"
  log "stopped cluster in $1"
}

cmd_stop_node() {
  (($# == 2)) || usage
  load_cluster "$1"
  check_node_arg "$2"
  stop_nodes "$1" "$2"
  log "stopped node $2"
}

cmd_kill() {
  (($# == 2)) || usage
  local dir=$1 k=$2 pid
  load_cluster "$dir"
  check_node_arg "$k"
  if pid=$(read_pid "$dir/node$k.pid"); then
    kill -KILL "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 50; i++)); do pid_alive "$pid" || break; sleep 0.1; done
    pid_alive "$pid" && die "node $k (pid $pid) survived SIGKILL"
    log "killed node $k (pid $pid)"
  else
    log "node $k is not running"
  fi
  rm -f "$dir/node$k.pid"
}

cmd_restart_node() {
  (($# == 2)) || usage
  local dir=$1 k=$2 pid
  load_cluster "$dir"
  check_node_arg "$k"
  ensure_fetched
  pid=$(read_pid "$dir/node$k.pid") && die "node $k is still running (pid $pid); stop-node or kill it first"
  [[ -f $dir/node$k/data/meta.properties ]] || die "node $k has no formatted data in $dir/node$k/data"
  local off
  off=$(launch_node "$dir" "$k") || exit 1
  if ! wait_nodes "$dir" "$k:$off"; then
    KAFKA_STOP_TIMEOUT=5 stop_nodes "$dir" "$k"
    die "node $k did not start again"
  fi
  log "node $k running again (pid $(<"$dir/node$k.pid"))"
}

cmd_bootstrap() {
  (($# == 1)) || usage
  load_cluster "$1"
  bootstrap_servers
}

cmd_status() {
  (($# == 1)) || usage
  load_cluster "$1"
  local k pid
  for ((k = 1; k <= CL_NODES; k++)); do
    if pid=$(read_pid "$1/node$k.pid"); then
      echo "$k $(broker_port "$k") running $pid"
    else
      echo "$k $(broker_port "$k") stopped"
    fi
  done
}

main() {
  (($#)) || usage
  local cmd=$1
  shift
  case $cmd in
    fetch) cmd_fetch "$@" ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    stop-node) cmd_stop_node "$@" ;;
    kill) cmd_kill "$@" ;;
    restart-node) cmd_restart_node "$@" ;;
    bootstrap) cmd_bootstrap "$@" ;;
    status) cmd_status "$@" ;;
    tool) (($#)) || usage; run_tool "$@" ;;
    topics) run_tool org.apache.kafka.tools.TopicCommand "$@" ;;
    console-producer) run_tool org.apache.kafka.tools.ConsoleProducer "$@" ;;
    console-consumer) run_tool org.apache.kafka.tools.consumer.ConsoleConsumer "$@" ;;
    consumer-groups) run_tool org.apache.kafka.tools.consumer.group.ConsumerGroupCommand "$@" ;;
    get-offsets) run_tool org.apache.kafka.tools.GetOffsetShell "$@" ;;
    broker-api-versions) run_tool org.apache.kafka.tools.BrokerApiVersionsCommand "$@" ;;
    metadata-quorum) run_tool org.apache.kafka.tools.MetadataQuorumCommand "$@" ;;
    storage) run_tool kafka.tools.StorageTool "$@" ;;
    -h | --help | help) usage ;;
    *) log "unknown command: $cmd"; usage ;;
  esac
}

main "$@"
