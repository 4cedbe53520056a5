#!/usr/bin/env bash
# Runs a real, throw-away, single-member etcd for tests.
#
#   scripts/etcd.sh install                          install etcd + etcdctl (Debian packages)
#   scripts/etcd.sh start DIR [CLIENT_PORT] [PEER_PORT]
#                                                    start etcd with data in DIR/etcd, print endpoint
#   scripts/etcd.sh stop DIR                         stop it (SIGTERM, SIGKILL after a bound)
#   scripts/etcd.sh endpoint DIR                     print the endpoint of a running etcd
#   scripts/etcd.sh ctl ARGS...                      etcdctl ARGS (set ETCDCTL_ENDPOINTS or pass --endpoints)
#
# Environment:
#   ETCD_CLIENT_PORT   default client port (12379)
#   ETCD_PEER_PORT     default peer port (12380)
#   ETCD_START_TIMEOUT seconds to wait for "endpoint health" (30)
#   ETCD_STOP_TIMEOUT  seconds between SIGTERM and SIGKILL (10)
#   LOGAGENT_ETCD_TLS_CERT, LOGAGENT_ETCD_TLS_KEY, LOGAGENT_ETCD_TLS_CA
#                      serve https:// with this certificate and key, requiring client
#                      certificates signed by this CA (not ETCD_*: etcd reads those
#                      itself). The health check's etcdctl then needs ETCDCTL_CACERT,
#                      ETCDCTL_CERT and ETCDCTL_KEY in the environment.
#
# Everything listens on 127.0.0.1 only. Files in DIR: etcd/ (data), etcd.log,
# etcd.pid, etcd.endpoint.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export LOG_PREFIX=etcd.sh # used by log() in common.sh
# shellcheck source=common.sh
source "$SCRIPT_DIR/common.sh"

cmd_install() {
  if command -v etcd >/dev/null && command -v etcdctl >/dev/null; then
    return 0
  fi
  # The etcd-server postinst would start the packaged service, holding the
  # default ports 2379/2380 in the background: kept from starting.
  apt_install_no_start etcd-server etcd-client || die "could not install etcd-server etcd-client"
  disable_system_etcd
  command -v etcd >/dev/null || die "etcd not on PATH after install"
  command -v etcdctl >/dev/null || die "etcdctl not on PATH after install"
  log "installed $(etcd --version 2>/dev/null | head -n1)"
}

# disable_system_etcd: make sure the distribution's etcd service is not
# running (it would use 2379/2380) and will not start at boot.
disable_system_etcd() {
  if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
    as_root systemctl disable --now etcd.service >/dev/null 2>&1 || true
  fi
  if [[ -x /etc/init.d/etcd ]]; then
    # The sysvinit script keeps its pid in /var/run/etcd.pid.
    local pid
    if pid=$(read_pid /var/run/etcd.pid); then
      log "stopping the packaged etcd service (pid $pid)"
      as_root /etc/init.d/etcd stop >/dev/null 2>&1 || as_root kill -TERM "$pid" 2>/dev/null || true
    fi
    as_root update-rc.d etcd disable >/dev/null 2>&1 || true
  fi
}

need_etcd() {
  if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
    die "etcd/etcdctl not installed: run scripts/etcd.sh install (or scripts/deps.sh)"
  fi
}

# healthy ENDPOINT
healthy() {
  ETCDCTL_API=3 etcdctl --endpoints "$1" --dial-timeout=1s --command-timeout=2s \
    endpoint health >/dev/null 2>&1
}

cmd_start() {
  (($# >= 1)) || usage
  local dir=$1
  local cport=${2:-${ETCD_CLIENT_PORT:-12379}} pport=${3:-${ETCD_PEER_PORT:-12380}}
  local timeout=${ETCD_START_TIMEOUT:-30}
  need_etcd
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  local pid
  if pid=$(read_pid "$dir/etcd.pid"); then
    die "etcd already running from $dir (pid $pid); run: scripts/etcd.sh stop $dir"
  fi
  local p
  for p in "$cport" "$pport"; do
    port_open "$p" && die "port 127.0.0.1:$p is already in use (set ETCD_CLIENT_PORT/ETCD_PEER_PORT or pass ports)"
  done
  local endpoint=http://127.0.0.1:$cport peer=http://127.0.0.1:$pport tls=()
  if [[ -n ${LOGAGENT_ETCD_TLS_CERT:-} ]]; then
    endpoint=https://127.0.0.1:$cport
    tls=(--cert-file "$LOGAGENT_ETCD_TLS_CERT" --key-file "$LOGAGENT_ETCD_TLS_KEY"
      --trusted-ca-file "$LOGAGENT_ETCD_TLS_CA" --client-cert-auth)
  fi
  # etcd maps every ETCD_* environment variable to a flag and warns about (or
  # is confused by) ones it does not know, such as our ETCD_CLIENT_PORT; give
  # it a clean environment in that respect.
  local unset_env=() v
  for v in $(compgen -e); do
    [[ $v == ETCD_* ]] && unset_env+=(-u "$v")
  done
  log "starting etcd on $endpoint (data $dir/etcd)"
  env "${unset_env[@]}" etcd \
    --name logagent-test \
    --data-dir "$dir/etcd" \
    --listen-client-urls "$endpoint" \
    --advertise-client-urls "$endpoint" \
    --listen-peer-urls "$peer" \
    --initial-advertise-peer-urls "$peer" \
    --initial-cluster "logagent-test=$peer" \
    --initial-cluster-state new \
    --initial-cluster-token logagent-test \
    --logger zap --log-outputs stderr "${tls[@]}" \
    </dev/null >>"$dir/etcd.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/etcd.pid"
  echo "$endpoint" >"$dir/etcd.endpoint"

  local deadline=$((SECONDS + timeout))
  until healthy "$endpoint"; do
    if ! pid_alive "$pid"; then
      rm -f "$dir/etcd.pid"
      show_tail "$dir/etcd.log"
      die "etcd exited during startup"
    fi
    if ((SECONDS >= deadline)); then
      show_tail "$dir/etcd.log"
      stop_pid "$pid" 5
      rm -f "$dir/etcd.pid"
      die "etcd not healthy on $endpoint after ${timeout}s"
    fi
    sleep 0.2
  done
  log "etcd ready (pid $pid)"
  echo "$endpoint"
}

cmd_stop() {
  (($# == 1)) || usage
  local dir=$1 pid
  if pid=$(read_pid "$dir/etcd.pid"); then
    stop_pid "$pid" "${ETCD_STOP_TIMEOUT:-10}"
    log "etcd stopped (pid $pid)"
  fi
  rm -f "$dir/etcd.pid"
}

cmd_endpoint() {
  (($# == 1)) || usage
  read_pid "$1/etcd.pid" >/dev/null || die "no etcd running from $1"
  cat "$1/etcd.endpoint"
}

main() {
  (($#)) || usage
  local cmd=$1
  shift
  case $cmd in
    install) cmd_install "$@" ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    endpoint) cmd_endpoint "$@" ;;
    ctl) need_etcd; ETCDCTL_API=3 exec etcdctl "$@" ;;
    -h | --help | help) usage ;;
    *) log "unknown command: $cmd"; usage ;;
  esac
}

main "$@"
