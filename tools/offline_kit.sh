#!/usr/bin/env bash
# Builds the offline kit for a GPU machine without internet access (docs/offline_kit.md).
#
# Usage: bash tools/offline_kit.sh --python 3.12 [--out kit/] [--wheel-cache DIR]
#            [--platform manylinux_2_28_x86_64] [--max-mib 60]
# Run on a connected machine with the set-up's venv (make setup): it downloads
# the wheels mmaff needs beyond torch / torchvision / numpy / opencv for the
# target Python, mmcv 2.1.0's source patched to C++20 and builds mmaff's wheel
# into one folder of at most 60 MiB with a manifest. Copy the folder to the
# offline machine and run: bash kit/install_and_check.sh
# Environment: PYTHON (the Python that builds the kit; default .venv/bin/python).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
case "${1:-}" in
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PYTHON" ] || command -v "$PYTHON" >/dev/null 2>&1 \
    || { echo "error: no Python at $PYTHON: run make setup or set PYTHON" >&2; exit 1; }
# Local package folders configured for pip warn about every package they do not hold.
exec "$PYTHON" "$ROOT/tools/kit/build_kit.py" "$@" 2> >(grep -v "^WARNING: Location 'file:" >&2)
