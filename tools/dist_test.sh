#!/usr/bin/env bash
# Multi-process testing: tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCS [test.py args]
set -euo pipefail
source "$(dirname "$0")/dist_common.sh"
dist_run test.py "$3" "$1" "$2" --launcher pytorch "${@:4}"
