#!/usr/bin/env bash
# Makes sure Debian's Chromium is at /usr/bin/chromium for the browser end-to-end test
# (test/e2e/, driven by playwright-core). It never downloads a browser build: the only source is
# Debian's `chromium` package, installed with apt-get, and only when running as root.
#   scripts/ensure-chromium.sh            install if missing (root), else say what to do
#   scripts/ensure-chromium.sh --if-root  the npm `pretest` hook: silently skip when not root
set -euo pipefail

CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
	exit 0
fi
if [ "$(id -u)" != "0" ]; then
	if [ "${1:-}" = "--if-root" ]; then
		exit 0
	fi
	echo "ensure-chromium: $CHROMIUM is missing; install Debian's package: sudo apt-get install -y chromium" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "ensure-chromium: $CHROMIUM is missing and there is no apt-get here; install Chromium at $CHROMIUM" >&2
	exit 1
fi
echo "ensure-chromium: installing Debian's chromium package (apt-get)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends chromium
"$CHROMIUM" --version
