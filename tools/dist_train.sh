#!/usr/bin/env bash
# Multi-process training: tools/dist_train.sh CONFIG NUM_PROCS [train.py args]
set -euo pipefail
source "$(dirname "$0")/dist_common.sh"
dist_run train.py "$2" "$1" --launcher pytorch "${@:3}"
