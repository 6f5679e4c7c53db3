#!/usr/bin/env bash
# stop-swift-keystone.sh - stop the proxy started by start-swift-keystone.sh, by its PID.
set -euo pipefail

SERVICES_DIR="${SERVICES_DIR:-/tmp/glance-services}"
D="${SWIFT_KEYSTONE_DIR:-$SERVICES_DIR/swift-keystone}"

log() { echo "[stop-swift-keystone] $*" >&2; }
pid_alive() { [ -n "${1:-}" ] && [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q -- "$2"; }

pid=$(cat "$D/proxy.pid" 2>/dev/null || true)
if pid_alive "$pid" proxy-keystone.conf; then
    kill -TERM "$pid" || true
    for _ in $(seq 100); do pid_alive "$pid" proxy-keystone.conf || break; sleep 0.2; done
    if pid_alive "$pid" proxy-keystone.conf; then kill -KILL "$pid" || true; fi
    log "stopped ($pid)"
else
    log "not running"
fi
rm -f "$D/proxy.pid"
