#!/usr/bin/env bash
# start-nginx.sh - serve a directory read-only over HTTP and HTTPS on 127.0.0.1, for the
# http store's tests: static files (HEAD, Content-Length, Range) plus a few fixed answers
# that a real web server can be made to give.
#
# Environment (all optional):
#   SERVICES_DIR         parent of every service's data dir       (default /tmp/glance-services)
#   NGINX_DATA_DIR       config, certificates, logs, pidfile       (default $SERVICES_DIR/nginx)
#   NGINX_ROOT           directory to serve                        (default $NGINX_DATA_DIR/www)
#   NGINX_PORT           HTTP port on 127.0.0.1, or "auto"         (default 58080)
#   NGINX_HTTPS_PORT     HTTPS port on 127.0.0.1, or "auto"        (default 58443)
#   NGINX_PROXY_PORT     a forward proxy for http URLs of IP addresses, or "auto"
#                        (default 58088)
#   NGINX_START_TIMEOUT  seconds to wait for readiness             (default 30)
#
# Besides the files under NGINX_ROOT, both listeners answer:
#   /status/403, /status/500, /status/502, /status/503   that status
#   /redirect/<rest>       302 to /<rest>: /redirect/redirect/a.img is a chain of two
#   /moved/<rest>          301 to /<rest>
#   /to?url=<url>          302 to <url> (anywhere: another host, another address)
#   /loop                  302 to itself, forever
#   /slow/<file>           NGINX_ROOT/<file> at 1 byte a second, headers included (a stall)
#   /trickle/<file>        NGINX_ROOT/<file> at 100 bytes a second (slow but steady)
#   /stall/<file>          nothing for minutes: nginx waits for /slow/<file>'s headers
#
# The HTTPS listener uses a certificate for 127.0.0.1 and localhost signed by a CA made
# here once ($NGINX_DATA_DIR/tls/ca.pem), which clients must be told to trust.
#
# Stdout's last line is the HTTP base URL, e.g. http://127.0.0.1:58080/;
# $NGINX_DATA_DIR/service.env holds NGINX_URL, NGINX_HTTPS_URL, NGINX_PROXY_URL, NGINX_ROOT,
# NGINX_CA_FILE.
set -euo pipefail

SERVICES_DIR="${SERVICES_DIR:-/tmp/glance-services}"
NGINX_DATA_DIR="${NGINX_DATA_DIR:-$SERVICES_DIR/nginx}"
NGINX_ROOT="${NGINX_ROOT:-$NGINX_DATA_DIR/www}"
NGINX_PORT="${NGINX_PORT:-58080}"
NGINX_HTTPS_PORT="${NGINX_HTTPS_PORT:-58443}"
NGINX_PROXY_PORT="${NGINX_PROXY_PORT:-58088}"
NGINX_START_TIMEOUT="${NGINX_START_TIMEOUT:-30}"

PIDFILE="$NGINX_DATA_DIR/nginx.master.pid"
ENVFILE="$NGINX_DATA_DIR/service.env"
CONF="$NGINX_DATA_DIR/nginx.conf"
ROUTES="$NGINX_DATA_DIR/routes.conf"
TLS="$NGINX_DATA_DIR/tls"

log() { echo "[start-nginx] $*" >&2; }
pid_alive() { [ -n "${1:-}" ] && [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q -- "$2"; }
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

apt_install() {
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    if ! $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$@" >&2; then
        $sudo apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
        $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$@" >&2
    fi
}

# Already running? Print the recorded URL and stop here (idempotent).
if [ -f "$PIDFILE" ] && pid_alive "$(cat "$PIDFILE")" nginx && [ -f "$ENVFILE" ]; then
    log "already running (pid $(cat "$PIDFILE"))"
    # shellcheck disable=SC1090
    . "$ENVFILE"; echo "$NGINX_URL"; exit 0
fi

# Debian's postinst may try to start the system nginx on port 80; that one is not touched.
NGINX_BIN="$(command -v nginx || echo /usr/sbin/nginx)"
if [ ! -x "$NGINX_BIN" ]; then
    log "installing nginx from Debian packages"
    apt_install nginx-light || apt_install nginx
    NGINX_BIN="$(command -v nginx || echo /usr/sbin/nginx)"
fi
command -v curl >/dev/null 2>&1 || apt_install curl
command -v openssl >/dev/null 2>&1 || apt_install openssl
[ "$NGINX_PORT" = "auto" ] && NGINX_PORT="$(free_port)"
[ "$NGINX_HTTPS_PORT" = "auto" ] && NGINX_HTTPS_PORT="$(free_port)"
[ "$NGINX_PROXY_PORT" = "auto" ] && NGINX_PROXY_PORT="$(free_port)"

mkdir -p "$NGINX_DATA_DIR/tmp" "$NGINX_ROOT" "$TLS"
chmod a+rx "$NGINX_ROOT"

# A CA of our own and a server certificate it signs (made once; kept across restarts).
if [ ! -f "$TLS/server.pem" ]; then
    log "making a test CA and a certificate for 127.0.0.1 and localhost"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=glance-lite test CA" \
        -keyout "$TLS/ca.key" -out "$TLS/ca.pem" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -new -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$TLS/server.key" -out "$TLS/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$TLS/server.ext"
    openssl x509 -req -in "$TLS/server.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" -CAcreateserial \
        -days 3650 -extfile "$TLS/server.ext" -out "$TLS/server.pem" 2>/dev/null
    chmod a+r "$TLS/ca.pem"
fi

USER_LINE=""
if [ "$(id -u)" -eq 0 ]; then
    # Workers drop to an unprivileged account: files under NGINX_ROOT must be world-readable.
    if id www-data >/dev/null 2>&1; then USER_LINE="user www-data;"; else USER_LINE="user nobody;"; fi
fi
MIME_INCLUDE=""
[ -f /etc/nginx/mime.types ] && MIME_INCLUDE="include /etc/nginx/mime.types;"

cat >"$ROUTES" <<EOF
root $NGINX_ROOT;
autoindex on;
location / {
    limit_except GET HEAD { deny all; }
    try_files \$uri \$uri/ =404;
}
location = /status/403 { return 403; }
location = /status/500 { return 500; }
location = /status/502 { return 502; }
location = /status/503 { return 503; }
location ~ ^/redirect/(.*)\$ { return 302 /\$1; }
location ~ ^/moved/(.*)\$ { return 301 /\$1; }
location = /to { return 302 \$arg_url; }
location = /loop { return 302 /loop; }
location /slow/ {
    alias $NGINX_ROOT/;
    sendfile off;
    limit_rate 1;
}
location /stall/ {
    proxy_pass http://127.0.0.1:$NGINX_PORT/slow/;
    proxy_read_timeout 600s;
}
location /trickle/ {
    alias $NGINX_ROOT/;
    sendfile off;
    limit_rate 100;
}
EOF

cat >"$CONF" <<EOF
$USER_LINE
worker_processes 1;
daemon off;
pid $NGINX_DATA_DIR/nginx.pid;
error_log $NGINX_DATA_DIR/error.log warn;
events { worker_connections 256; }
http {
    $MIME_INCLUDE
    default_type application/octet-stream;
    access_log $NGINX_DATA_DIR/access.log;
    client_body_temp_path $NGINX_DATA_DIR/tmp/client_body;
    proxy_temp_path $NGINX_DATA_DIR/tmp/proxy;
    fastcgi_temp_path $NGINX_DATA_DIR/tmp/fastcgi;
    uwsgi_temp_path $NGINX_DATA_DIR/tmp/uwsgi;
    scgi_temp_path $NGINX_DATA_DIR/tmp/scgi;
    sendfile on;
    server_tokens off;
    absolute_redirect off;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        server_name localhost;
        include $ROUTES;
    }
    server {
        listen 127.0.0.1:$NGINX_HTTPS_PORT ssl;
        server_name localhost;
        ssl_certificate $TLS/server.pem;
        ssl_certificate_key $TLS/server.key;
        include $ROUTES;
    }
    server {
        # a forward proxy (http only, hosts given as IP addresses: no resolver); it says
        # it was there in an X-Via-Proxy header
        listen 127.0.0.1:$NGINX_PROXY_PORT;
        location / {
            proxy_pass http://\$http_host;
            add_header X-Via-Proxy yes always;
        }
    }
}
EOF

"$NGINX_BIN" -t -q -e "$NGINX_DATA_DIR/error.log" -p "$NGINX_DATA_DIR" -c "$CONF" >&2 || { tail -n 20 "$NGINX_DATA_DIR/error.log" >&2; exit 1; }
log "serving $NGINX_ROOT on 127.0.0.1:$NGINX_PORT (http) and :$NGINX_HTTPS_PORT (https)"
setsid "$NGINX_BIN" -e "$NGINX_DATA_DIR/error.log" -p "$NGINX_DATA_DIR" -c "$CONF" </dev/null >>"$NGINX_DATA_DIR/stdout.log" 2>&1 &
echo $! >"$PIDFILE"

deadline=$(( $(date +%s) + NGINX_START_TIMEOUT ))
until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$NGINX_PORT/")" != "000" ] &&
      [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$TLS/ca.pem" "https://127.0.0.1:$NGINX_HTTPS_PORT/")" != "000" ]; do
    pid_alive "$(cat "$PIDFILE")" nginx || { log "nginx exited"; tail -n 20 "$NGINX_DATA_DIR/error.log" >&2; exit 1; }
    [ "$(date +%s)" -lt "$deadline" ] || { log "not ready after ${NGINX_START_TIMEOUT}s"; exit 1; }
    sleep 0.1
done

NGINX_URL="http://127.0.0.1:$NGINX_PORT/"
NGINX_HTTPS_URL="https://127.0.0.1:$NGINX_HTTPS_PORT/"
NGINX_PROXY_URL="http://127.0.0.1:$NGINX_PROXY_PORT"
printf 'NGINX_URL=%s\nNGINX_HTTPS_URL=%s\nNGINX_PROXY_URL=%s\nNGINX_ROOT=%s\nNGINX_CA_FILE=%s\n' \
    "$NGINX_URL" "$NGINX_HTTPS_URL" "$NGINX_PROXY_URL" "$NGINX_ROOT" "$TLS/ca.pem" >"$ENVFILE"
log "ready (pid $(cat "$PIDFILE")); env in $ENVFILE"
echo "$NGINX_URL"
