#!/usr/bin/env bash
# Makes sure Debian's Prometheus (`prometheus` and `promtool`) is on PATH for the /metrics
# end-to-end test (test/e2e/metrics.test.ts: `promtool check metrics` on the exposition, and a
# real Prometheus server scraping the Worker). The only source is Debian's `prometheus` package,
# installed with apt-get, and only when running as root.
#   scripts/ensure-prometheus.sh            install if missing (root), else say what to do
#   scripts/ensure-prometheus.sh --if-root  the npm `pretest` hook: silently skip when not root
#
# The package ships a system service (port 9090, data in /var/lib/prometheus). The test never
# uses it: it starts its own server on a free loopback port with its own data directory. So the
# install runs with a policy-rc.d that forbids starting services (unless the machine already
# has one), and on a systemd machine the unit is then disabled and stopped.
set -euo pipefail

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
	exit 0
fi
if [ "$(id -u)" != "0" ]; then
	if [ "${1:-}" = "--if-root" ]; then
		exit 0
	fi
	echo "ensure-prometheus: prometheus or promtool is missing; install Debian's package: sudo apt-get install -y --no-install-recommends prometheus" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "ensure-prometheus: prometheus or promtool is missing and there is no apt-get here; install Prometheus (prometheus and promtool on PATH)" >&2
	exit 1
fi

POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
	# Ours for the duration of the install only: exit 101 = "service actions not allowed".
	printf '#!/bin/sh\nexit 101\n' >"$POLICY"
	chmod 755 "$POLICY"
	trap 'rm -f "$POLICY"' EXIT
fi

echo "ensure-prometheus: installing Debian's prometheus package (apt-get)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends prometheus

# A systemd machine may still have enabled the unit: keep the system server off port 9090.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl disable --now prometheus.service >/dev/null 2>&1 || true
fi

prometheus --version 2>&1 | head -n1
promtool --version 2>&1 | head -n1
