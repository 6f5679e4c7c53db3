#!/usr/bin/env bash
# start-s3.sh - start an S3-compatible endpoint on 127.0.0.1 for tests.
#
# Real software: OpenStack Swift's s3api middleware, served by the Swift all-in-one of
# start-swift.sh (same proxy port). With the same ports and directories it is the SAME
# instance start-swift.sh starts (both scripts are idempotent); set S3_PORT/S3_DATA_DIR
# to get a separate one. Access key "<account>:<user>", secret = the tempauth key.
#
# Environment (all optional):
#   SERVICES_DIR     (default /tmp/glance-services)
#   S3_PORT          port on 127.0.0.1 (default SWIFT_PORT's: 28080, or "auto")
#   S3_DATA_DIR      (default $SERVICES_DIR/swift)
#   S3_START_TIMEOUT (default 60)
#
# Stdout's last line: "<endpoint URL> <access key> <secret key>", e.g.
#   http://127.0.0.1:28080 test:tester testing
# Clients use path-style addressing and region us-east-1.
set -euo pipefail

SERVICES_DIR="${SERVICES_DIR:-/tmp/glance-services}"
S3_START_TIMEOUT="${S3_START_TIMEOUT:-60}"
HERE="$(cd "$(dirname "$0")" && pwd)"

log() { echo "[start-s3] $*" >&2; }

export SWIFT_PORT="${S3_PORT:-${SWIFT_PORT:-28080}}"
export SWIFT_DATA_DIR="${S3_DATA_DIR:-${SWIFT_DATA_DIR:-$SERVICES_DIR/swift}}"
export SWIFT_START_TIMEOUT="$S3_START_TIMEOUT"
bash "$HERE/start-swift.sh" >/dev/null
# shellcheck disable=SC1090
. "$SWIFT_DATA_DIR/service.env"
log "S3 API (Swift s3api) ready; env in $SWIFT_DATA_DIR/service.env"
echo "$S3_ENDPOINT_URL $S3_ACCESS_KEY $S3_SECRET_KEY"
