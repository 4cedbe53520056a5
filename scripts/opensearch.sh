#!/usr/bin/env bash
# Runs a real single-node OpenSearch on 127.0.0.1 for tests and the search demo.
# The jars come from Maven Central (scripts/opensearch-pom.xml); a small launcher
# (scripts/opensearch/Launcher.java, compiled here) starts the node from them.
#
#   scripts/opensearch.sh fetch              download the jars into scripts/.opensearch-lib/VERSION and
#                                            compile the launcher (cached)
#   scripts/opensearch.sh start DIR [PORT]   start a node (data and logs under DIR) on HTTP port PORT
#                                            (default $OPENSEARCH_PORT or 19200; transport: PORT+100),
#                                            wait until it answers, print its URL
#   scripts/opensearch.sh stop DIR           stop the node (SIGTERM, SIGKILL after a bound)
#   scripts/opensearch.sh url DIR            print the URL of the node in DIR
#
# SEARCH_ENGINE=elasticsearch runs Elasticsearch 8 the same way instead
# (scripts/elasticsearch-pom.xml, scripts/elasticsearch/, scripts/.elasticsearch-lib):
# only to check the transfer and the search page against it (make e2e-es8).
#
# Environment:
#   SEARCH_ENGINE             opensearch (default) or elasticsearch
#   OPENSEARCH_VERSION        release to fetch/run (2.19.6; Java 17; 3.x needs Java 21 and other jars)
#   OPENSEARCH_LIB_DIR        jar cache (scripts/.opensearch-lib/$OPENSEARCH_VERSION)
#   ELASTICSEARCH_VERSION, ELASTICSEARCH_LIB_DIR   the same with SEARCH_ENGINE=elasticsearch
#                             (8.19.0, scripts/.elasticsearch-lib/$ELASTICSEARCH_VERSION)
#   OPENSEARCH_HEAP_OPTS      heap (-Xms512m -Xmx512m)
#   OPENSEARCH_START_TIMEOUT  seconds to wait for the node (90)
#   OPENSEARCH_STOP_TIMEOUT   seconds between SIGTERM and SIGKILL (20)
#
# Layout of DIR: node.env (ports), node.pid, node.log (the node's own log), data/.
# `start` on a DIR that holds a stopped node starts it again on its data.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export LOG_PREFIX=opensearch.sh # used by log() in common.sh
# shellcheck source=common.sh
source "$SCRIPT_DIR/common.sh"

ENGINE=${SEARCH_ENGINE:-opensearch}
# Below, OPENSEARCH_VERSION and OPENSEARCH_LIB_DIR are the engine's, whichever it is.
case $ENGINE in
  opensearch)
    NAME=OpenSearch
    OPENSEARCH_VERSION=${OPENSEARCH_VERSION:-2.19.6}
    OPENSEARCH_LIB_DIR=${OPENSEARCH_LIB_DIR:-$SCRIPT_DIR/.opensearch-lib/$OPENSEARCH_VERSION}
    ;;
  elasticsearch)
    NAME=Elasticsearch
    OPENSEARCH_VERSION=${ELASTICSEARCH_VERSION:-8.19.0}
    OPENSEARCH_LIB_DIR=${ELASTICSEARCH_LIB_DIR:-$SCRIPT_DIR/.elasticsearch-lib/$OPENSEARCH_VERSION}
    ;;
  *) die "SEARCH_ENGINE must be opensearch or elasticsearch, got '$ENGINE'" ;;
esac
LAUNCHER_SRC=$SCRIPT_DIR/$ENGINE # Launcher.java and, for Elasticsearch, the classes it needs in its packages
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
JAVAC=${JAVA_HOME:+$JAVA_HOME/bin/}javac
CLASSES=$OPENSEARCH_LIB_DIR/classes

cmd_fetch() {
  if [[ -f $OPENSEARCH_LIB_DIR/.complete && -f $CLASSES/Launcher.class &&
    -z $(find "$LAUNCHER_SRC" -name '*.java' -newer "$CLASSES/Launcher.class") ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (apt-get install maven, or run scripts/deps.sh)"
  command -v "$JAVAC" >/dev/null || die "javac not found (a JDK 17+ is needed to compile the launcher)"
  mkdir -p "$(dirname "$OPENSEARCH_LIB_DIR")"
  # Tests may start nodes concurrently on a fresh clone: let one fetch.
  exec 9>"$OPENSEARCH_LIB_DIR.lock"
  flock -w 600 9 || die "timed out waiting for another fetch ($OPENSEARCH_LIB_DIR.lock)"
  if [[ ! -f $OPENSEARCH_LIB_DIR/.complete ]]; then
    log "fetching $NAME $OPENSEARCH_VERSION from Maven Central into $OPENSEARCH_LIB_DIR"
    # A temporary folder renamed at the end: an interrupted fetch never
    # leaves a half-filled lib dir that looks complete.
    local tmp="$OPENSEARCH_LIB_DIR.tmp.$$" out rc=0
    rm -rf "$tmp"
    mkdir -p "$tmp"
    out=$(mvn -q -B -ntp -Dstyle.color=never -f "$SCRIPT_DIR/$ENGINE-pom.xml" \
      -D"$ENGINE.version=$OPENSEARCH_VERSION" \
      dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1) || rc=$?
    if ((rc != 0)); then
      printf '%s\n' "$out" | tail -n 30 >&2
      rm -rf "$tmp"
      die "mvn could not fetch $NAME $OPENSEARCH_VERSION"
    fi
    [[ -f $tmp/$ENGINE-$OPENSEARCH_VERSION.jar ]] ||
      { rm -rf "$tmp"; die "mvn succeeded but $ENGINE-$OPENSEARCH_VERSION.jar is missing in $tmp"; }
    echo "$OPENSEARCH_VERSION" >"$tmp/.complete"
    rm -rf "$OPENSEARCH_LIB_DIR"
    mv "$tmp" "$OPENSEARCH_LIB_DIR"
    log "fetched $(find "$OPENSEARCH_LIB_DIR" -name '*.jar' | wc -l) jars"
  fi
  rm -rf "$CLASSES.tmp"
  mkdir -p "$CLASSES.tmp"
  local sources
  mapfile -t sources < <(find "$LAUNCHER_SRC" -name '*.java')
  "$JAVAC" -nowarn -d "$CLASSES.tmp" -cp "$OPENSEARCH_LIB_DIR/*" "${sources[@]}" ||
    die "compiling the launcher in $LAUNCHER_SRC failed"
  [[ ! -f $LAUNCHER_SRC/log4j2.properties ]] || cp "$LAUNCHER_SRC/log4j2.properties" "$CLASSES.tmp/"
  rm -rf "$CLASSES"
  mv "$CLASSES.tmp" "$CLASSES"
  exec 9>&-
}

load_node() {
  [[ -f $1/node.env ]] || die "no $NAME node in $1 (missing node.env; use: opensearch.sh start $1)"
  # shellcheck disable=SC1091
  source "$1/node.env"
}

# answering PORT: true once the node's HTTP API answers (Elasticsearch's
# root is a module that the launcher leaves out: ask for the cluster's health).
answering() {
  curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$1/_cluster/health" 2>/dev/null
}

cmd_start() {
  (($# == 1 || $# == 2)) || usage
  local dir=$1
  cmd_fetch
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  local pid
  pid=$(read_pid "$dir/node.pid") && die "a node already runs in $dir (pid $pid); run: opensearch.sh stop $dir"
  if [[ ! -f $dir/node.env || $# == 2 ]]; then
    local port=${2:-${OPENSEARCH_PORT:-19200}}
    [[ $port =~ ^[0-9]+$ ]] || die "port must be a number, got '$port'"
    printf 'OS_HTTP_PORT=%s\nOS_TRANSPORT_PORT=%s\n' "$port" "$((port + 100))" >"$dir/node.env"
  fi
  load_node "$dir"
  local p
  for p in "$OS_HTTP_PORT" "$OS_TRANSPORT_PORT"; do
    port_open "$p" && die "port 127.0.0.1:$p is already in use; pass another PORT"
  done
  # stdin/stdout/stderr are redirected so that a caller capturing our
  # output (Go's exec.Cmd.Output) is not kept waiting by the node.
  # shellcheck disable=SC2086
  nohup "$JAVA" ${OPENSEARCH_HEAP_OPTS:--Xms512m -Xmx512m} \
    -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dlog4j.shutdownHookEnabled=false -Dlog4j2.disable.jmx=true \
    -cp "$OPENSEARCH_LIB_DIR/*:$CLASSES" Launcher "$dir" "$OS_HTTP_PORT" "$OS_TRANSPORT_PORT" \
    </dev/null >>"$dir/node.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/node.pid"
  local deadline=$((SECONDS + ${OPENSEARCH_START_TIMEOUT:-90}))
  until answering "$OS_HTTP_PORT"; do
    if ! pid_alive "$pid"; then
      show_tail "$dir/node.log" 40
      die "$NAME (pid $pid) exited during startup"
    fi
    if ((SECONDS >= deadline)); then
      show_tail "$dir/node.log" 40
      stop_pid "$pid" 5
      die "$NAME did not answer on 127.0.0.1:$OS_HTTP_PORT within ${OPENSEARCH_START_TIMEOUT:-90}s"
    fi
    sleep 0.25
  done
  log "$NAME $OPENSEARCH_VERSION ready (pid $pid)"
  echo "http://127.0.0.1:$OS_HTTP_PORT"
}

cmd_stop() {
  (($# == 1)) || usage
  local pid
  if pid=$(read_pid "$1/node.pid"); then
    stop_pid "$pid" "${OPENSEARCH_STOP_TIMEOUT:-20}"
    log "stopped $NAME in $1"
  fi
  rm -f "$1/node.pid"
}

cmd_url() {
  (($# == 1)) || usage
  load_node "$1"
  echo "http://127.0.0.1:$OS_HTTP_PORT"
}

main() {
  (($#)) || usage
  local cmd=$1
  shift
  case $cmd in
    fetch) cmd_fetch "$@" ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    url) cmd_url "$@" ;;
    -h | --help | help) usage ;;
    *) log "unknown command: $cmd"; usage ;;
  esac
}

main "$@"
