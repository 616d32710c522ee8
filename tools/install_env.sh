#!/usr/bin/env bash
# Creates .venv with the pinned OpenMMLab stack and installs mmaff in editable mode.
#
# mmcv 2.1.0 (the newest release mmdet 3.3.0 and mmseg 1.2.2 accept) ships no
# Linux wheel, so it is built from source with its compiled ops once per machine
# and kept in a wheelhouse keyed by the torch version; later runs reuse it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3.11}"
VENV="${VENV:-$ROOT/.venv}"
MMCV_VERSION="2.1.0"
TORCH_VERSION="$(sed -n 's/^torch==\(.*\)$/\1/p' requirements/torch.txt)"
WHEELHOUSE="${MMAFF_WHEELHOUSE:-$HOME/.cache/mmaff/wheels/torch-$TORCH_VERSION}"
MAX_JOBS="${MAX_JOBS:-$(nproc)}"

say() { printf '[install_env] %s\n' "$*"; }
elapsed() { printf '%ds' "$((SECONDS - $1))"; }

T0=$SECONDS
if [ ! -x "$VENV/bin/python" ]; then
    say "creating virtual environment $VENV ($($PYTHON --version))"
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
# Local package folders configured for pip warn about every package they do
# not hold; keep the log readable.
pip_() {
    "${PIP[@]}" "$@" 2> >(grep -v "^WARNING: Location 'file:" >&2)
}

say "installing build tools and torch $TORCH_VERSION (pinned; ~1 min from local wheels)"
pip_ install -q --upgrade pip
pip_ install -q -r requirements/build.txt
pip_ install -q -r requirements/torch.txt -c requirements/torch.txt

shopt -s nullglob
wheels=("$WHEELHOUSE"/mmcv-"$MMCV_VERSION"-*.whl)
if [ ${#wheels[@]} -eq 0 ]; then
    T1=$SECONDS
    say "no mmcv $MMCV_VERSION wheel for torch $TORCH_VERSION in $WHEELHOUSE"
    say "building mmcv $MMCV_VERSION with compiled ops from source: this takes about 15 minutes on 2 cores, once per machine"
    SRC="$(mktemp -d)"
    trap 'rm -rf "$SRC"' EXIT
    pip_ download -q --no-deps --no-binary :all: --no-build-isolation -d "$SRC" "mmcv==$MMCV_VERSION"
    tar -xzf "$SRC"/mmcv-"$MMCV_VERSION".tar.gz -C "$SRC"
    # torch 2.14's headers stop with "C++20 or later compatible compiler is required"
    # while mmcv 2.1.0's setup.py forces -std=c++14/c++17: build it as C++20.
    say "patching mmcv setup.py to -std=c++20 (torch $TORCH_VERSION headers require C++20)"
    sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' "$SRC/mmcv-$MMCV_VERSION/setup.py"
    if grep -q -- '-std=c++1[47]' "$SRC/mmcv-$MMCV_VERSION/setup.py"; then
        say "error: the C++ standard patch did not apply" >&2
        exit 1
    fi
    mkdir -p "$WHEELHOUSE"
    # --no-build-isolation: mmcv's setup.py imports torch and must see the pinned one.
    export MMCV_WITH_OPS=1 MAX_JOBS
    pip_ wheel --no-deps --no-build-isolation \
        -w "$SRC/dist" "$SRC/mmcv-$MMCV_VERSION"
    mv "$SRC"/dist/mmcv-"$MMCV_VERSION"-*.whl "$WHEELHOUSE"/
    wheels=("$WHEELHOUSE"/mmcv-"$MMCV_VERSION"-*.whl)
    say "built ${wheels[0]##*/} in $(elapsed "$T1")"
else
    say "reusing ${wheels[0]##*/} from $WHEELHOUSE"
fi

say "installing mmcv, mmengine, mmdet, mmsegmentation, mmpretrain, openmim and test tools"
pip_ install -q -c requirements/torch.txt "${wheels[0]}" \
    -r requirements/mminstall.txt -r requirements/runtime.txt \
    -r requirements/tests.txt -r requirements/optional.txt \
    -r requirements/mim.txt
say "installing mmdeploy (--no-deps, see requirements/deploy.txt)"
pip_ install -q --no-deps -r requirements/deploy.txt
say "installing mmaff (editable)"
pip_ install -q --no-deps --no-build-isolation -e .
"$VENV/bin/python" -c "import mmcv.ops, mmdet.models, mmseg.models, mmpretrain.models, mmaff; print('[install_env] imports ok: torch', __import__('torch').__version__, 'mmcv', mmcv.__version__)"
say "environment ready in $(elapsed "$T0")"
