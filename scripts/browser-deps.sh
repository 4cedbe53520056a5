#!/usr/bin/env bash
# Installs what the console's browser tests need: Debian's chromium (headless,
# driven by chromedp from the Go tests), only when it is missing: about 155 MB
# to download and 480 MB on disk.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export LOG_PREFIX=browser-deps.sh # used by log() in common.sh
# shellcheck source=common.sh
source "$SCRIPT_DIR/common.sh"

command -v chromium >/dev/null && exit 0
log "installing chromium for the console's browser tests (once)"
apt_install chromium || die "could not install chromium"
