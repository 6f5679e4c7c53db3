#!/usr/bin/env bash
# start-keystone.sh - a real OpenStack Keystone (identity v3) on 127.0.0.1 for the tests of the
# keystone flavors: keystone from PyPI in a venv of its own, served by gunicorn (one worker),
# SQLite database, fernet tokens. Idempotent: a running Keystone is left as it is.
#
# What it holds (all in domain "default"; created through the API, idempotently):
#   admin     / project admin     role admin
#   demo      / project demo      role member    (tenant one)
#   alt_demo  / project alt_demo  role member    (tenant two)
#   glance    / project service   role service   (the services' own user: enough for
#                                                 keystonemiddleware to check tokens, and
#                                                 what it asks of a service token)
#
# Environment (all optional):
#   SERVICES_DIR              parent of every service's directory  (default /tmp/glance-services)
#   KEYSTONE_DATA_DIR         config, database, keys, logs, pids    (default $SERVICES_DIR/keystone)
#   KEYSTONE_VENV             venv holding keystone and gunicorn    (default $SERVICES_DIR/keystone-venv)
#   KEYSTONE_PYTHON           interpreter for that venv, >= 3.11    (default python3)
#   KEYSTONE_PIP_SPEC         what pip installs there   (default "keystone==30.0.0 gunicorn==27.0.1")
#   KEYSTONE_PORT             TCP port on 127.0.0.1, or "auto"      (default 35357)
#   KEYSTONE_ADMIN_PASSWORD / KEYSTONE_DEMO_PASSWORD / KEYSTONE_ALT_PASSWORD /
#   KEYSTONE_SERVICE_PASSWORD                   (default adminpass / demopass / altpass / glancepass)
#   KEYSTONE_IMAGE_URL        if set, an "image" service with endpoints there is registered, so
#                             that clients find glance-api in the catalog
#   KEYSTONE_START_TIMEOUT    seconds to wait for readiness         (default 90)
#
# Stdout's last line is the auth URL, e.g. http://127.0.0.1:35357/v3.
# $KEYSTONE_DATA_DIR/test.env exports what the test suite reads:
#   GLANCE_LITE_TEST_KEYSTONE_URL                      the auth URL (identity v3)
#   GLANCE_LITE_TEST_KEYSTONE_{ADMIN,DEMO,ALT,SERVICE}_{USER,PASSWORD,PROJECT}
# (the domain is "default" for every user and project).
set -euo pipefail

SERVICES_DIR="${SERVICES_DIR:-/tmp/glance-services}"
KEYSTONE_DATA_DIR="${KEYSTONE_DATA_DIR:-$SERVICES_DIR/keystone}"
KEYSTONE_VENV="${KEYSTONE_VENV:-$SERVICES_DIR/keystone-venv}"
KEYSTONE_PYTHON="${KEYSTONE_PYTHON:-python3}"
KEYSTONE_PIP_SPEC="${KEYSTONE_PIP_SPEC:-keystone==30.0.0 gunicorn==27.0.1}"
KEYSTONE_PORT="${KEYSTONE_PORT:-35357}"
KEYSTONE_ADMIN_PASSWORD="${KEYSTONE_ADMIN_PASSWORD:-adminpass}"
KEYSTONE_DEMO_PASSWORD="${KEYSTONE_DEMO_PASSWORD:-demopass}"
KEYSTONE_ALT_PASSWORD="${KEYSTONE_ALT_PASSWORD:-altpass}"
KEYSTONE_SERVICE_PASSWORD="${KEYSTONE_SERVICE_PASSWORD:-glancepass}"
KEYSTONE_IMAGE_URL="${KEYSTONE_IMAGE_URL:-}"
KEYSTONE_START_TIMEOUT="${KEYSTONE_START_TIMEOUT:-90}"

D="$KEYSTONE_DATA_DIR"
PIDFILE="$D/gunicorn.pid"
ENVFILE="$D/test.env"
export OS_KEYSTONE_CONFIG_DIR="$D/etc"   # where keystone's WSGI app finds keystone.conf
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore::DeprecationWarning}"

log() { echo "[start-keystone] $*" >&2; }
pid_alive() {  # pid_alive PID NAME-FRAGMENT
    [ -n "${1:-}" ] && [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q -- "$2"
}
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

if [ -f "$PIDFILE" ] && pid_alive "$(cat "$PIDFILE")" keystone_wsgi && [ -f "$ENVFILE" ]; then
    log "already running (pid $(cat "$PIDFILE"))"
    # shellcheck disable=SC1090
    . "$ENVFILE"
    echo "$GLANCE_LITE_TEST_KEYSTONE_URL"
    exit 0
fi

command -v curl >/dev/null 2>&1 || { log "curl is needed"; exit 1; }

# 1. Install keystone into its own venv, once per spec (about 35 s).
if [ ! -x "$KEYSTONE_VENV/bin/gunicorn" ] || [ ! -x "$KEYSTONE_VENV/bin/keystone-manage" ] ||
   [ "$(cat "$KEYSTONE_VENV/.keystone-spec" 2>/dev/null)" != "$KEYSTONE_PIP_SPEC" ]; then
    "$KEYSTONE_PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
        log "$KEYSTONE_PYTHON is older than 3.11, which keystone 30 needs: set KEYSTONE_PYTHON"; exit 1; }
    log "installing $KEYSTONE_PIP_SPEC into $KEYSTONE_VENV"
    [ -x "$KEYSTONE_VENV/bin/python" ] || "$KEYSTONE_PYTHON" -m venv "$KEYSTONE_VENV"
    # shellcheck disable=SC2086
    "$KEYSTONE_VENV/bin/pip" install -q --disable-pip-version-check $KEYSTONE_PIP_SPEC 2>&1 |
        grep -v 'is ignored: it is neither a file nor a directory' >&2 || true
    [ -x "$KEYSTONE_VENV/bin/keystone-manage" ] && [ -x "$KEYSTONE_VENV/bin/gunicorn" ] || {
        log "pip install failed"; exit 1; }
    echo "$KEYSTONE_PIP_SPEC" >"$KEYSTONE_VENV/.keystone-spec"
fi
manage() {
    "$KEYSTONE_VENV/bin/keystone-manage" --config-file "$D/etc/keystone.conf" "$@" \
        >>"$D/log/manage.log" 2>&1 || { log "keystone-manage $1 failed:"; tail -n 20 "$D/log/manage.log" >&2; exit 1; }
}

[ "$KEYSTONE_PORT" = "auto" ] && KEYSTONE_PORT="$(free_port)"
AUTH_URL="http://127.0.0.1:$KEYSTONE_PORT/v3"

# 2. Configuration: SQLite, fernet tokens, an in-process cache (without it each token check
# costs most of a second of CPU).
mkdir -p "$D/etc" "$D/log"
cat >"$D/etc/keystone.conf" <<EOF
[DEFAULT]
log_file = $D/log/keystone.log
[database]
connection = sqlite:///$D/keystone.db
[token]
provider = fernet
[fernet_tokens]
key_repository = $D/fernet-keys
[fernet_receipts]
key_repository = $D/fernet-keys
[credential]
key_repository = $D/credential-keys
[cache]
enabled = true
backend = dogpile.cache.memory
EOF
# keystone's app parses sys.argv with oslo.config: gunicorn's own arguments would kill
# every worker at import. This module hides them.
cat >"$D/etc/keystone_wsgi.py" <<'EOF'
import sys

sys.argv = sys.argv[:1]
from keystone.wsgi.api import application  # noqa: E402,F401
EOF

me="$(id -un)"; grp="$(id -gn)"
[ -f "$D/.db_synced" ] || { log "db_sync"; manage db_sync; touch "$D/.db_synced"; }
[ -f "$D/fernet-keys/0" ] || manage fernet_setup --keystone-user "$me" --keystone-group "$grp"
[ -f "$D/credential-keys/0" ] || manage credential_setup --keystone-user "$me" --keystone-group "$grp"
boot_key="$KEYSTONE_PORT $KEYSTONE_ADMIN_PASSWORD"
if [ "$(cat "$D/.bootstrapped" 2>/dev/null)" != "$boot_key" ]; then
    # again when the port changes: bootstrap moves the identity endpoints
    log "bootstrap (admin, RegionOne, identity endpoints $AUTH_URL)"
    manage bootstrap --bootstrap-password "$KEYSTONE_ADMIN_PASSWORD" --bootstrap-username admin \
        --bootstrap-project-name admin --bootstrap-role-name admin \
        --bootstrap-service-name keystone --bootstrap-region-id RegionOne \
        --bootstrap-admin-url "$AUTH_URL" --bootstrap-public-url "$AUTH_URL" \
        --bootstrap-internal-url "$AUTH_URL"
    echo "$boot_key" >"$D/.bootstrapped"
fi

# 3. Start gunicorn in a session of its own; its pid is recorded for stop-keystone.sh.
log "starting on 127.0.0.1:$KEYSTONE_PORT"
rm -f "$PIDFILE"
setsid "$KEYSTONE_VENV/bin/gunicorn" --chdir "$D/etc" --bind "127.0.0.1:$KEYSTONE_PORT" \
    --workers 1 --threads 4 --timeout 120 --no-control-socket \
    --error-logfile "$D/log/gunicorn.log" keystone_wsgi:application \
    </dev/null >>"$D/log/gunicorn.out" 2>&1 &
echo $! >"$PIDFILE"

deadline=$(( $(date +%s) + KEYSTONE_START_TIMEOUT ))
until curl -sf --max-time 2 -o /dev/null "$AUTH_URL"; do
    pid_alive "$(cat "$PIDFILE")" keystone_wsgi || { log "gunicorn exited:"; tail -n 30 "$D/log/gunicorn.log" >&2; exit 1; }
    if [ "$(date +%s)" -ge "$deadline" ]; then
        log "no answer after ${KEYSTONE_START_TIMEOUT}s:"; tail -n 30 "$D/log/gunicorn.log" >&2; exit 1
    fi
    sleep 0.2
done

# 4. Projects, users and roles, through the API (idempotent).
cat >"$D/etc/fixtures.py" <<'EOF'
import os

from keystoneauth1 import session
from keystoneauth1.identity import v3
from keystoneclient.v3 import client

url = os.environ["AUTH_URL"]


def password_session(name, password, project=None):
    scope = {"project_name": project, "project_domain_id": "default"} if project else {"unscoped": True}
    auth = v3.Password(auth_url=url, username=name, password=password, user_domain_id="default", **scope)
    return session.Session(auth=auth, timeout=30)


ks = client.Client(session=password_session("admin", os.environ["ADMIN_PW"], "admin"))


def project(name):
    found = ks.projects.list(domain="default", name=name)
    return found[0] if found else ks.projects.create(name, "default")


def user(name, password, proj, role_names):
    found = ks.users.list(domain="default", name=name)
    if not found:
        account = ks.users.create(name, domain="default", password=password)
    else:
        account = found[0]
        try:  # changing a password revokes the user's tokens: only when it differs
            password_session(name, password).get_token()
        except Exception:
            account = ks.users.update(account, password=password)
    for role_name in role_names:
        found = ks.roles.list(name=role_name)
        role = found[0] if found else ks.roles.create(role_name)
        ks.roles.grant(role, user=account, project=proj)


user("demo", os.environ["DEMO_PW"], project("demo"), ["member"])
user("alt_demo", os.environ["ALT_PW"], project("alt_demo"), ["member"])
user("glance", os.environ["SERVICE_PW"], project("service"), ["service"])

image_url = os.environ.get("IMAGE_URL")
if image_url:
    services = ks.services.list(type="image")
    service = services[0] if services else ks.services.create("glance", "image")
    have = {e.interface: e for e in ks.endpoints.list(service=service, region="RegionOne")}
    for interface in ("public", "internal", "admin"):
        if interface not in have:
            ks.endpoints.create(service, image_url, interface=interface, region="RegionOne")
        elif have[interface].url != image_url:
            ks.endpoints.update(have[interface], url=image_url)
EOF
AUTH_URL="$AUTH_URL" ADMIN_PW="$KEYSTONE_ADMIN_PASSWORD" DEMO_PW="$KEYSTONE_DEMO_PASSWORD" \
ALT_PW="$KEYSTONE_ALT_PASSWORD" SERVICE_PW="$KEYSTONE_SERVICE_PASSWORD" IMAGE_URL="$KEYSTONE_IMAGE_URL" \
    "$KEYSTONE_VENV/bin/python" "$D/etc/fixtures.py" >>"$D/log/fixtures.log" 2>&1 ||
    { log "creating projects and users failed:"; tail -n 20 "$D/log/fixtures.log" >&2; exit 1; }

cat >"$ENVFILE" <<EOF
export GLANCE_LITE_TEST_KEYSTONE_URL=$AUTH_URL
export GLANCE_LITE_TEST_KEYSTONE_ADMIN_USER=admin
export GLANCE_LITE_TEST_KEYSTONE_ADMIN_PASSWORD=$KEYSTONE_ADMIN_PASSWORD
export GLANCE_LITE_TEST_KEYSTONE_ADMIN_PROJECT=admin
export GLANCE_LITE_TEST_KEYSTONE_DEMO_USER=demo
export GLANCE_LITE_TEST_KEYSTONE_DEMO_PASSWORD=$KEYSTONE_DEMO_PASSWORD
export GLANCE_LITE_TEST_KEYSTONE_DEMO_PROJECT=demo
export GLANCE_LITE_TEST_KEYSTONE_ALT_USER=alt_demo
export GLANCE_LITE_TEST_KEYSTONE_ALT_PASSWORD=$KEYSTONE_ALT_PASSWORD
export GLANCE_LITE_TEST_KEYSTONE_ALT_PROJECT=alt_demo
export GLANCE_LITE_TEST_KEYSTONE_SERVICE_USER=glance
export GLANCE_LITE_TEST_KEYSTONE_SERVICE_PASSWORD=$KEYSTONE_SERVICE_PASSWORD
export GLANCE_LITE_TEST_KEYSTONE_SERVICE_PROJECT=service
EOF
log "ready (pid $(cat "$PIDFILE")); test variables in $ENVFILE"
echo "$AUTH_URL"
