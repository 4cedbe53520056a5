#!/usr/bin/env bash
# Installs the peers `go run ./bench` measures logagent against, on Debian 12
# (as root, or with sudo). Idempotent and silent when all is present.
#
#   - kcat                    (Debian package kcat: librdkafka's producer CLI)
#   - rsyslog + rsyslog-kafka (imfile → omkafka)
#   - the OpenTelemetry Collector (filelog → kafka, bench/otelcol-builder.yaml),
#     built once from the Go module proxy with the collector builder into
#     ${XDG_CACHE_HOME:-~/.cache}/logagent-bench/otelcol-0.165.1/otelcol (the
#     build takes minutes; GOFLAGS=-p=1 keeps it to one compile at a time)
#
# Installing rsyslog must not leave a system rsyslogd running during the
# benchmark (it would compete for the CPU): its start is suppressed
# (apt_install_no_start), and an rsyslogd that the install started anyway is
# stopped again. An rsyslogd that was running before is left alone.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export LOG_PREFIX=bench-deps.sh # used by log() in common.sh
# shellcheck source=common.sh
source "$SCRIPT_DIR/common.sh"

pkgs=(kcat rsyslog rsyslog-kafka)

install_packages() {
  # Pids of rsyslogd processes running now (none on a fresh machine).
  rsyslogd_pids() { pgrep -x rsyslogd 2>/dev/null | sort || true; }
  before=$(rsyslogd_pids)

  apt_install_no_start "${pkgs[@]}" || die "could not install ${pkgs[*]}"

  # Stop an rsyslogd the install started (there was none before it).
  if [[ -z $before ]]; then
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
      as_root systemctl stop rsyslog.service syslog.socket 2>/dev/null || true
    fi
    for pid in $(rsyslogd_pids); do
      log "stopping the system rsyslogd (pid $pid) that the install started"
      as_root kill -TERM "$pid" 2>/dev/null || true
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
}

installed "${pkgs[@]}" || install_packages

OTELCOL_RELEASE=0.165.1
OTELCOL_BUILDER=go.opentelemetry.io/collector/cmd/builder@v0.165.0
otelcol_dir=${XDG_CACHE_HOME:-$HOME/.cache}/logagent-bench/otelcol-$OTELCOL_RELEASE
if [[ ! -x $otelcol_dir/otelcol ]]; then
  command -v go >/dev/null || die "go is needed to build the OpenTelemetry Collector"
  log "building the OpenTelemetry Collector $OTELCOL_RELEASE into $otelcol_dir (once)"
  mkdir -p "$otelcol_dir"
  sed "s|OUTPUT_PATH|$otelcol_dir|" "$SCRIPT_DIR/../bench/otelcol-builder.yaml" >"$otelcol_dir/builder.yaml"
  start=$SECONDS
  (cd "$otelcol_dir" && CGO_ENABLED=0 GOFLAGS=-p=1 go run "$OTELCOL_BUILDER" --config builder.yaml >build.log 2>&1) ||
    { show_tail "$otelcol_dir/build.log"; die "could not build the OpenTelemetry Collector"; }
  [[ -x $otelcol_dir/otelcol ]] || die "the collector builder made no $otelcol_dir/otelcol"
  log "built $otelcol_dir/otelcol in $((SECONDS - start)) s"
fi
