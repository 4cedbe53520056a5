# shellcheck shell=bash
# Helpers shared by scripts/kafka.sh, scripts/etcd.sh, scripts/deps.sh and
# scripts/bench-deps.sh.
# Source it; it does not change shell options of the caller.

# log MSG...: progress/diagnostics go to stderr so that stdout stays clean for
# values callers capture (bootstrap servers, endpoints).
log() { printf '%s: %s\n' "${LOG_PREFIX:-${0##*/}}" "$*" >&2; }

die() { log "error: $*"; exit 1; }

# show_tail FILE [LINES]: print the tail of a server log to stderr, used on
# every failure so a red CI run says why the server did not come up.
show_tail() {
  local f=$1 n=${2:-40}
  if [[ -s $f ]]; then
    printf -- '----- last %s lines of %s -----\n' "$n" "$f" >&2
    tail -n "$n" "$f" >&2
    printf -- '----- end of %s -----\n' "$f" >&2
  else
    printf -- '(%s is missing or empty)\n' "$f" >&2
  fi
}

# port_open PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
# Uses bash's /dev/tcp so no netcat is needed on a fresh machine.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# pid_alive PID: true while PID runs. A zombie counts as dead: servers are
# started in the background by a script that exits, so once they die they wait
# for PID 1 to reap them, and in a container PID 1 may take its time.
pid_alive() {
  [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null || return 1
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0 # no procfs: trust kill -0
  stat=${stat##*) }                                   # field 3, after "(comm) "
  [[ ${stat%% *} != Z ]]
}

# read_pid FILE: print the pid stored in FILE if that process still runs.
read_pid() {
  local f=$1 pid
  [[ -f $f ]] || return 1
  pid=$(<"$f")
  pid_alive "$pid" || return 1
  printf '%s\n' "$pid"
}

# stop_pid PID TIMEOUT_SECONDS: SIGTERM, wait up to TIMEOUT, then SIGKILL.
# Returns once the process is gone.
stop_pid() {
  local pid=$1 timeout=$2 i
  pid_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
  log "pid $pid still alive after ${timeout}s, sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
  die "pid $pid survived SIGKILL"
}

# usage: print the calling script's header comment (its usage) and exit 2.
usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

# as_root CMD...: run CMD as root: directly, or with sudo.
as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  else
    command -v sudo >/dev/null || die "need root (or sudo) for: $*"
    sudo "$@"
  fi
}

# installed PKG...: true when every one of the Debian packages is installed.
installed() {
  local p
  for p in "$@"; do
    [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == 'install ok installed' ]] || return 1
  done
}

# apt_install_no_start PKG...: apt_install, keeping the services the packages
# ship from starting: a temporary /usr/sbin/policy-rc.d that exits 101
# ("action forbidden"), which invoke-rc.d and deb-systemd-invoke honour.
# A policy already in place (containers often have one) is left alone.
apt_install_no_start() {
  local policy=/usr/sbin/policy-rc.d rc=0
  if [[ -e $policy ]]; then
    apt_install "$@"
    return
  fi
  as_root sh -c "printf '#!/bin/sh\n# temporary, written by logagent scripts\nexit 101\n' > $policy && chmod 0755 $policy"
  trap 'as_root rm -f /usr/sbin/policy-rc.d' EXIT
  apt_install "$@" || rc=$?
  as_root rm -f "$policy"
  trap - EXIT
  return "$rc"
}

# apt_install PKG...: install Debian packages that are not installed yet.
# Quiet and fast when everything is present. `apt-get update` runs only when
# needed: when a missing package has no install candidate in the current lists
# (fresh machine: the lists may be empty), or when installing from the current
# lists failed (stale lists pointing at files the mirror no longer has).
apt_install() {
  local missing=() p
  for p in "$@"; do
    [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == 'install ok installed' ]] || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "need root (or sudo) to install ${missing[*]}"
    sudo=(sudo)
  fi
  local updated=0
  for p in "${missing[@]}"; do
    # (no `| grep -q` here: with pipefail an early grep exit fails the pipe)
    if [[ $(apt-cache policy "$p" 2>/dev/null) != *'Candidate: '[0-9]* ]]; then
      _apt_update "${sudo[@]}"; updated=1; break
    fi
  done
  log "apt-get install ${missing[*]}"
  if ! _apt_get_install "${sudo[@]}" "${missing[@]}"; then
    ((updated)) && return 1
    _apt_update "${sudo[@]}"
    _apt_get_install "${sudo[@]}" "${missing[@]}"
  fi
}

_apt_update() {
  log "apt-get update"
  "$@" apt-get update -qq >/dev/null || die "apt-get update failed"
}

# _apt_get_install [sudo] PKG...: output is kept and shown only on failure.
_apt_get_install() {
  local out rc=0 pre=()
  [[ ${1:-} == sudo ]] && { pre=(sudo); shift; }
  out=$("${pre[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends "$@" 2>&1) || rc=$?
  ((rc == 0)) || printf '%s\n' "$out" | tail -n 20 >&2
  return "$rc"
}
