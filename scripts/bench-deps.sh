#!/usr/bin/env bash
# Installs the peers `go run ./bench` measures logagent against, on Debian 12
# (as root, or with sudo). Idempotent and silent when all is present.
#
#   - kcat                    (Debian package kcat: librdkafka's producer CLI)
#   - rsyslog + rsyslog-kafka (imfile → omkafka)
#
# Installing rsyslog must not leave a system rsyslogd running during the
# benchmark (it would compete for the CPU): its start is suppressed with a
# temporary policy-rc.d, and an rsyslogd that the install started anyway is
# stopped again. An rsyslogd that was running before is left alone.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export LOG_PREFIX=bench-deps.sh # used by log() in common.sh
# shellcheck source=common.sh
source "$SCRIPT_DIR/common.sh"

pkgs=(kcat rsyslog rsyslog-kafka)
missing=()
for p in "${pkgs[@]}"; do
  [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == 'install ok installed' ]] || missing+=("$p")
done
((${#missing[@]})) || exit 0

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || die "need root (or sudo) to install ${missing[*]}"
  sudo=(sudo)
fi

# Pids of rsyslogd processes running now (none on a fresh machine).
rsyslogd_pids() { pgrep -x rsyslogd 2>/dev/null | sort || true; }
before=$(rsyslogd_pids)

# policy-rc.d exit 101 = "action forbidden": invoke-rc.d and deb-systemd-invoke
# then do not start the service the package installs. Only ours, only now.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [[ ! -e $policy ]]; then
  "${sudo[@]}" sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 0755 $policy"
  own_policy=1
fi
cleanup() {
  if ((own_policy)); then "${sudo[@]}" rm -f "$policy"; fi
}
trap cleanup EXIT

apt_install "${missing[@]}" || die "could not install ${missing[*]}"

# Stop an rsyslogd the install started (there was none before it).
if [[ -z $before ]]; then
  if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
    "${sudo[@]}" systemctl stop rsyslog.service syslog.socket 2>/dev/null || true
  fi
  for pid in $(rsyslogd_pids); do
    log "stopping the system rsyslogd (pid $pid) that the install started"
    "${sudo[@]}" kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      pid_alive "$pid" || break
      sleep 0.1
    done
  done
fi

for t in kcat rsyslogd; do
  command -v "$t" >/dev/null || die "$t is still missing after the install"
done
compgen -G '/usr/lib/*/rsyslog/omkafka.so' >/dev/null || die "rsyslog's omkafka.so is missing after the install"
