#!/usr/bin/env bash
# stop-s3.sh - stop what start-s3.sh started: the Swift all-in-one that serves the S3 API
# (the same one stop-swift.sh stops when they share a data directory).
# Usage: stop-s3.sh [--purge]
set -euo pipefail

SERVICES_DIR="${SERVICES_DIR:-/tmp/glance-services}"
HERE="$(cd "$(dirname "$0")" && pwd)"
SWIFT_DATA_DIR="${S3_DATA_DIR:-${SWIFT_DATA_DIR:-$SERVICES_DIR/swift}}" bash "$HERE/stop-swift.sh" "$@"
