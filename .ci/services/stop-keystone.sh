#!/usr/bin/env bash
# stop-keystone.sh - stop the Keystone start-keystone.sh started: SIGTERM to the gunicorn
# master recorded in its pidfile (its worker goes with it), SIGKILL after STOP_TIMEOUT.
# Usage: stop-keystone.sh [--purge]   (--purge also deletes $KEYSTONE_DATA_DIR; the venv stays)
set -euo pipefail

SERVICES_DIR="${SERVICES_DIR:-/tmp/glance-services}"
KEYSTONE_DATA_DIR="${KEYSTONE_DATA_DIR:-$SERVICES_DIR/keystone}"
PIDFILE="$KEYSTONE_DATA_DIR/gunicorn.pid"
STOP_TIMEOUT="${STOP_TIMEOUT:-30}"

log() { echo "[stop-keystone] $*" >&2; }
pid_alive() {  # pid_alive PID NAME-FRAGMENT
    [ -n "${1:-}" ] && [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q -- "$2"
}

if [ -f "$PIDFILE" ]; then
    pid="$(cat "$PIDFILE")"
    if pid_alive "$pid" keystone_wsgi; then
        workers="$(ps -o pid= --ppid "$pid" 2>/dev/null || true)"
        kill -TERM "$pid"
        for _ in $(seq $((STOP_TIMEOUT * 5))); do pid_alive "$pid" keystone_wsgi || break; sleep 0.2; done
        if pid_alive "$pid" keystone_wsgi; then log "pid $pid still alive, sending SIGKILL"; kill -KILL "$pid" || true; fi
        for w in $workers; do
            if pid_alive "$w" keystone_wsgi; then kill -KILL "$w" || true; fi
        done
        log "stopped pid $pid"
    else
        log "pid $pid is not running"
    fi
    rm -f "$PIDFILE"
else
    log "no pidfile at $PIDFILE; nothing to stop"
fi

if [ "${1:-}" = "--purge" ]; then rm -rf "$KEYSTONE_DATA_DIR"; log "removed $KEYSTONE_DATA_DIR"; fi
