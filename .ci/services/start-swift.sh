#!/usr/bin/env bash
# start-swift.sh - start a single-node OpenStack Swift (all-in-one) on 127.0.0.1 for tests.
#
# What runs (each one process, workers = 0, PIDs in $SWIFT_DATA_DIR/swift.pids):
#   memcached          127.0.0.1:$SWIFT_PORT+4   (tempauth keeps its tokens there)
#   swift-object-server    $SWIFT_PORT+1
#   swift-container-server $SWIFT_PORT+2
#   swift-account-server   $SWIFT_PORT+3
#   swift-proxy-server     $SWIFT_PORT   with tempauth and the s3api middleware (S3 API on the same port)
# Rings: one replica, one device (a directory under $SWIFT_DATA_DIR/node), built with swift-ring-builder.
# No replicators, auditors, updaters, reaper or expirer run: objects, containers and
# accounts work, but account usage counters are not refreshed and expired objects stay.
# Swift serves a dynamic large object's segments after the tenth at one a second (its
# dlo defaults): tests keep to ten segments or fewer per object.
#
# Environment (all optional):
#   SERVICES_DIR          parent of every service's data dir (default /tmp/glance-services)
#   SWIFT_DATA_DIR        this service's directory             (default $SERVICES_DIR/swift)
#   SWIFT_PORT            proxy port on 127.0.0.1; backends use the next four (default 28080),
#                         or "auto": five free consecutive ports are picked
#   SWIFT_ACCOUNT / SWIFT_USER / SWIFT_KEY   tempauth identity (default test / tester / testing)
#   SWIFT_START_TIMEOUT   seconds to wait for readiness        (default 60)
#
# Stdout's last line: "<auth URL> <account:user> <key>", e.g.
#   http://127.0.0.1:28080/auth/v1.0 test:tester testing
# $SWIFT_DATA_DIR/service.env holds these plus the S3 endpoint/keys as shell variables.
set -euo pipefail

SERVICES_DIR="${SERVICES_DIR:-/tmp/glance-services}"
SWIFT_DATA_DIR="${SWIFT_DATA_DIR:-$SERVICES_DIR/swift}"
SWIFT_PORT="${SWIFT_PORT:-28080}"
SWIFT_ACCOUNT="${SWIFT_ACCOUNT:-test}"
SWIFT_USER="${SWIFT_USER:-tester}"
SWIFT_KEY="${SWIFT_KEY:-testing}"
SWIFT_START_TIMEOUT="${SWIFT_START_TIMEOUT:-60}"

free_ports() {  # a base port such that it and the next four are free on 127.0.0.1
    python3 - <<'PY'
import random, socket
for _ in range(200):
    base = random.randrange(20000, 60000)
    socks = []
    try:
        for port in range(base, base + 5):
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", port))
        print(base)
        break
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
PY
}

ETC="$SWIFT_DATA_DIR/etc"
NODE="$SWIFT_DATA_DIR/node"
LOGS="$SWIFT_DATA_DIR/log"
PIDFILE="$SWIFT_DATA_DIR/swift.pids"
ENVFILE="$SWIFT_DATA_DIR/service.env"

log() { echo "[start-swift] $*" >&2; }

apt_install() {
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    if ! $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$@" >&2; then
        $sudo apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
        $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$@" >&2
    fi
}

pid_alive() { [ -n "${1:-}" ] && [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q -- "$2"; }

all_alive() {
    [ -s "$PIDFILE" ] || return 1
    local pid name
    while read -r pid name; do pid_alive "$pid" "$name" || return 1; done <"$PIDFILE"
}

http_ok() { curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; }

if [ "$SWIFT_PORT" = "auto" ]; then  # the running instance's, else five free ones
    SWIFT_PORT=""
    if all_alive && [ -f "$ENVFILE" ]; then SWIFT_PORT=$(. "$ENVFILE"; echo "${SWIFT_PORT:-}"); fi
    [ -n "$SWIFT_PORT" ] || SWIFT_PORT=$(free_ports)
    [ -n "$SWIFT_PORT" ] || { log "no five free consecutive ports found"; exit 1; }
fi
OBJ_PORT=$((SWIFT_PORT + 1)); CONT_PORT=$((SWIFT_PORT + 2)); ACC_PORT=$((SWIFT_PORT + 3)); MEMC_PORT=$((SWIFT_PORT + 4))

if all_alive && [ -f "$ENVFILE" ] && http_ok "http://127.0.0.1:$SWIFT_PORT/healthcheck"; then
    log "already running"
    # shellcheck disable=SC1090
    . "$ENVFILE"
    echo "$SWIFT_AUTH_URL $SWIFT_AUTH_USER $SWIFT_AUTH_KEY"
    exit 0
fi
if [ -s "$PIDFILE" ]; then
    log "stale or partial instance found; stopping it first"
    SWIFT_DATA_DIR="$SWIFT_DATA_DIR" bash "$(dirname "$0")/stop-swift.sh" || true
fi

# 1. Install when missing: Debian's swift servers (system python3), memcached, curl.
missing=()
for b in swift-proxy-server swift-object-server swift-container-server swift-account-server swift-ring-builder; do
    command -v "$b" >/dev/null 2>&1 || missing+=("$b")
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing swift from Debian packages"
    apt_install swift swift-proxy swift-object swift-container swift-account
fi
command -v memcached >/dev/null 2>&1 || apt_install memcached
command -v curl >/dev/null 2>&1 || apt_install curl

# Swift reads the hash prefix/suffix and storage policies from the fixed path /etc/swift/swift.conf.
# Debian's package ships one (single policy, placeholder hashes: fine for a test node).
if [ ! -f /etc/swift/swift.conf ]; then
    log "creating /etc/swift/swift.conf (test-only hash prefix/suffix)"
    mkdir -p /etc/swift
    printf '[swift-hash]\nswift_hash_path_prefix = glance-test\nswift_hash_path_suffix = glance-test\n\n[storage-policy:0]\nname = Policy-0\ndefault = yes\n' >/etc/swift/swift.conf
fi

OS_USER="$(id -un)"
if [ "$(id -u)" -eq 0 ] && id swift >/dev/null 2>&1; then OS_USER=swift; fi

mkdir -p "$ETC" "$NODE/d1" "$LOGS" "$SWIFT_DATA_DIR/cache" "$SWIFT_DATA_DIR/run"
[ "$(id -u)" -eq 0 ] && chown -R "$OS_USER" "$SWIFT_DATA_DIR"

# 2. The object store keeps metadata in user xattrs: refuse early with a clear message if unsupported.
if ! python3 - "$NODE/d1" <<'EOF'
import os, sys, tempfile
fd, p = tempfile.mkstemp(dir=sys.argv[1])
try:
    os.setxattr(p, "user.swift.test", b"x" * 4000)
    assert os.getxattr(p, "user.swift.test") == b"x" * 4000
finally:
    os.close(fd); os.unlink(p)
EOF
then
    log "filesystem under $NODE does not support user xattrs; set SWIFT_DATA_DIR to an ext4/xfs path"
    exit 1
fi

# 3. Configuration.
common_default() {  # common_default PORT
    cat <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $1
workers = 0
user = $OS_USER
swift_dir = $ETC
devices = $NODE
mount_check = false
disable_fallocate = true
log_level = INFO
EOF
}
for kind in object container account; do
    case $kind in object) port=$OBJ_PORT;; container) port=$CONT_PORT;; account) port=$ACC_PORT;; esac
    {
        common_default "$port"
        cat <<EOF

[pipeline:main]
pipeline = healthcheck recon $kind-server

[app:$kind-server]
use = egg:swift#$kind

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:recon]
use = egg:swift#recon
recon_cache_path = $SWIFT_DATA_DIR/cache
EOF
    } >"$ETC/$kind-server.conf"
done

cat >"$ETC/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $SWIFT_PORT
workers = 0
user = $OS_USER
swift_dir = $ETC
log_level = INFO

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl ratelimit s3api tempauth copy container-quotas account-quotas slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true

[filter:tempauth]
use = egg:swift#tempauth
user_admin_admin = admin .admin .reseller_admin
user_${SWIFT_ACCOUNT}_${SWIFT_USER} = $SWIFT_KEY .admin

[filter:s3api]
use = egg:swift#s3api
location = us-east-1

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MEMC_PORT

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:tempurl]
use = egg:swift#tempurl
[filter:ratelimit]
use = egg:swift#ratelimit
[filter:copy]
use = egg:swift#copy
[filter:container-quotas]
use = egg:swift#container_quotas
[filter:account-quotas]
use = egg:swift#account_quotas
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_versioned_writes = true
[filter:symlink]
use = egg:swift#symlink
EOF

# 4. Rings (rebuilt only when the ports change): part power 8, 1 replica, 1 device.
stamp="$ETC/rings.ports"
if [ "$(cat "$stamp" 2>/dev/null)" != "$OBJ_PORT $CONT_PORT $ACC_PORT" ]; then
    log "building rings"
    for kind in object container account; do
        case $kind in object) port=$OBJ_PORT;; container) port=$CONT_PORT;; account) port=$ACC_PORT;; esac
        rm -f "$ETC/$kind.builder" "$ETC/$kind.ring.gz"
        swift-ring-builder "$ETC/$kind.builder" create 8 1 1 >/dev/null
        swift-ring-builder "$ETC/$kind.builder" add "r1z1-127.0.0.1:$port/d1" 100 >/dev/null
        swift-ring-builder "$ETC/$kind.builder" rebalance >/dev/null || [ -f "$ETC/$kind.ring.gz" ]
    done
    echo "$OBJ_PORT $CONT_PORT $ACC_PORT" >"$stamp"
    [ "$(id -u)" -eq 0 ] && chown -R "$OS_USER" "$ETC"
fi

# 5. Start the processes, recording "PID NAME" lines.
: >"$PIDFILE"
start_bg() {  # start_bg NAME LOGFILE CMD...
    local name=$1 logf=$2; shift 2
    setsid "$@" </dev/null >>"$logf" 2>&1 &
    echo "$! $name" >>"$PIDFILE"
}
MEMC_USER_OPT=()
[ "$(id -u)" -eq 0 ] && MEMC_USER_OPT=(-u nobody)
start_bg memcached "$LOGS/memcached.log" memcached -l 127.0.0.1 -p "$MEMC_PORT" -U 0 -m 64 "${MEMC_USER_OPT[@]}"
for kind in object container account proxy; do
    start_bg "swift-$kind-server" "$LOGS/$kind.log" "swift-$kind-server" "$ETC/$kind-server.conf" --verbose
done
log "started: $(awk '{printf "%s(%s) ", $2, $1}' "$PIDFILE")"

# 6. Wait until every server answers its healthcheck and tempauth issues a token.
deadline=$(( $(date +%s) + SWIFT_START_TIMEOUT ))
wait_for() {
    until eval "$1"; do
        if ! all_alive; then log "a process exited; logs in $LOGS"; tail -n 20 "$LOGS"/*.log >&2; exit 1; fi
        if [ "$(date +%s)" -ge "$deadline" ]; then log "not ready after ${SWIFT_START_TIMEOUT}s"; tail -n 20 "$LOGS"/*.log >&2; exit 1; fi
        sleep 0.2
    done
}
for port in $OBJ_PORT $CONT_PORT $ACC_PORT $SWIFT_PORT; do
    wait_for "http_ok http://127.0.0.1:$port/healthcheck"
done
wait_for "curl -fsS -o /dev/null --max-time 5 -H 'X-Auth-User: $SWIFT_ACCOUNT:$SWIFT_USER' -H 'X-Auth-Key: $SWIFT_KEY' http://127.0.0.1:$SWIFT_PORT/auth/v1.0"

cat >"$ENVFILE" <<EOF
SWIFT_PORT=$SWIFT_PORT
SWIFT_AUTH_URL=http://127.0.0.1:$SWIFT_PORT/auth/v1.0
SWIFT_AUTH_USER=$SWIFT_ACCOUNT:$SWIFT_USER
SWIFT_AUTH_KEY=$SWIFT_KEY
SWIFT_STORAGE_URL=http://127.0.0.1:$SWIFT_PORT/v1/AUTH_$SWIFT_ACCOUNT
S3_ENDPOINT_URL=http://127.0.0.1:$SWIFT_PORT
S3_ACCESS_KEY=$SWIFT_ACCOUNT:$SWIFT_USER
S3_SECRET_KEY=$SWIFT_KEY
S3_REGION=us-east-1
EOF
log "ready; env in $ENVFILE"
echo "http://127.0.0.1:$SWIFT_PORT/auth/v1.0 $SWIFT_ACCOUNT:$SWIFT_USER $SWIFT_KEY"
