#!/usr/bin/env bash
# Installs what the end-to-end tests need on a fresh Debian 12 machine (run as
# root, or with sudo available). Idempotent and silent when all is present.
#
#   - etcd + etcdctl           (Debian packages etcd-server, etcd-client)
#   - Java 17+ and Maven       (Debian packages; only if missing)
#   - Apache Kafka jars        (Maven Central, cached in scripts/.kafka-lib/)
#   - systemd-analyze, openssl, curl (Debian packages systemd, openssl, curl)
#   - OpenSearch jars          (Maven Central, cached in scripts/.opensearch-lib/, launcher compiled)
# (kcat and rsyslog, the benchmark's peers, come from scripts/bench-deps.sh.)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export LOG_PREFIX=deps.sh # used by log() in common.sh
# shellcheck source=common.sh
source "$SCRIPT_DIR/common.sh"

# Java and Maven are on the CI image already; install them only when absent
# (a JDK is needed, not just a JRE, only by Maven itself; a headless one is enough).
if ! command -v javac >/dev/null || ! command -v mvn >/dev/null; then
  apt_install openjdk-17-jdk-headless maven || die "could not install Java 17 / Maven"
fi

# systemd-analyze (the unit's verify test), openssl (the certificates the
# e2e security test makes), curl (opensearch.sh asks the node if it is up).
if ! command -v systemd-analyze >/dev/null || ! command -v openssl >/dev/null || ! command -v curl >/dev/null; then
  apt_install_no_start systemd openssl curl || die "could not install systemd / openssl / curl"
fi

"$SCRIPT_DIR/etcd.sh" install
"$SCRIPT_DIR/kafka.sh" fetch
"$SCRIPT_DIR/opensearch.sh" fetch
