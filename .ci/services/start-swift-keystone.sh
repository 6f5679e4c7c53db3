#!/usr/bin/env bash
# start-swift-keystone.sh - a second proxy for the Swift of start-swift.sh that takes Keystone
# tokens (keystonemiddleware's auth_token, then Swift's keystoneauth) where the first takes
# tempauth's: for the swift store's tests with keystone accounts (auth_version 3). Same rings,
# storage servers and memcached; a project's account is AUTH_<project id>, created on first use.
# Run it after start-swift.sh and start-keystone.sh. Needs keystonemiddleware in Swift's Python
# (Debian: python3-keystonemiddleware). The tests put the proxy in Keystone's catalog themselves
# (a region of their own), so Keystone's catalog is left as it is here.
#
# Environment (all optional):
#   SERVICES_DIR           parent of every service's directory    (default /tmp/glance-services)
#   SWIFT_DATA_DIR         start-swift.sh's directory             (default $SERVICES_DIR/swift)
#   KEYSTONE_DATA_DIR      start-keystone.sh's directory          (default $SERVICES_DIR/keystone)
#   SWIFT_KEYSTONE_DIR     this proxy's config, log and pid       (default $SERVICES_DIR/swift-keystone)
#   SWIFT_KEYSTONE_PORT    TCP port on 127.0.0.1, or "auto"       (default auto)
#   SWIFT_KEYSTONE_START_TIMEOUT  seconds to wait for readiness  (default 30)
#
# Stdout's last line: the proxy's URL, e.g. http://127.0.0.1:28090 (accounts under /v1/).
set -euo pipefail

SERVICES_DIR="${SERVICES_DIR:-/tmp/glance-services}"
SWIFT_DATA_DIR="${SWIFT_DATA_DIR:-$SERVICES_DIR/swift}"
KEYSTONE_DATA_DIR="${KEYSTONE_DATA_DIR:-$SERVICES_DIR/keystone}"
D="${SWIFT_KEYSTONE_DIR:-$SERVICES_DIR/swift-keystone}"
PORT="${SWIFT_KEYSTONE_PORT:-auto}"
TIMEOUT="${SWIFT_KEYSTONE_START_TIMEOUT:-30}"

log() { echo "[start-swift-keystone] $*" >&2; }
pid_alive() { [ -n "${1:-}" ] && [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q -- "$2"; }

SWIFT_ETC="$SWIFT_DATA_DIR/etc"
[ -f "$SWIFT_ETC/proxy-server.conf" ] || { log "no $SWIFT_ETC/proxy-server.conf: run start-swift.sh first"; exit 1; }
[ -f "$KEYSTONE_DATA_DIR/test.env" ] || { log "no $KEYSTONE_DATA_DIR/test.env: run start-keystone.sh first"; exit 1; }
SWIFT_PYTHON=$(head -n 1 "$(command -v swift-proxy-server)" | sed 's/^#! *//; s/ .*//')
"$SWIFT_PYTHON" -c 'import keystonemiddleware' 2>/dev/null \
    || { log "Swift's Python lacks keystonemiddleware (apt-get install python3-keystonemiddleware)"; exit 1; }
# shellcheck disable=SC1091
. "$KEYSTONE_DATA_DIR/test.env"
MEMCACHE=$(sed -n 's/^memcache_servers = //p' "$SWIFT_ETC/proxy-server.conf" | head -n 1)
OS_USER=$(sed -n 's/^user = //p' "$SWIFT_ETC/proxy-server.conf" | head -n 1)

mkdir -p "$D"
[ "$(id -u)" -eq 0 ] && chown "$OS_USER" "$D"
if [ -f "$D/proxy.pid" ] && pid_alive "$(cat "$D/proxy.pid")" proxy-keystone.conf; then
    log "already running"
    echo "http://127.0.0.1:$(cat "$D/port")"
    exit 0
fi
if [ "$PORT" = auto ]; then
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi

# start-swift.sh's proxy config with this port and keystone's two filters in tempauth's place
PIPELINE="catch_errors gatekeeper healthcheck proxy-logging cache listing_formats authtoken keystoneauth copy dlo slo proxy-logging proxy-server"
sed -e "s/^bind_port = .*/bind_port = $PORT/" -e "s/^pipeline = .*/pipeline = $PIPELINE/" \
    "$SWIFT_ETC/proxy-server.conf" >"$D/proxy-keystone.conf"
cat >>"$D/proxy-keystone.conf" <<EOF

[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
www_authenticate_uri = $GLANCE_LITE_TEST_KEYSTONE_URL
auth_url = $GLANCE_LITE_TEST_KEYSTONE_URL
auth_type = password
username = $GLANCE_LITE_TEST_KEYSTONE_SERVICE_USER
password = $GLANCE_LITE_TEST_KEYSTONE_SERVICE_PASSWORD
project_name = $GLANCE_LITE_TEST_KEYSTONE_SERVICE_PROJECT
user_domain_id = default
project_domain_id = default
delay_auth_decision = true
memcached_servers = $MEMCACHE

[filter:keystoneauth]
use = egg:swift#keystoneauth
operator_roles = admin, member
EOF
echo "$PORT" >"$D/port"

setsid swift-proxy-server "$D/proxy-keystone.conf" --verbose </dev/null >>"$D/proxy.log" 2>&1 &
echo $! >"$D/proxy.pid"

deadline=$(($(date +%s) + TIMEOUT))
until curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/healthcheck" 2>/dev/null; do
    if ! pid_alive "$(cat "$D/proxy.pid")" proxy-keystone.conf; then
        log "the proxy exited"; tail -n 20 "$D/proxy.log" >&2; exit 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then log "not ready after ${TIMEOUT}s"; tail -n 20 "$D/proxy.log" >&2; exit 1; fi
    sleep 0.2
done
log "ready on $PORT"
echo "http://127.0.0.1:$PORT"
