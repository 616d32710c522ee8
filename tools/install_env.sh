#!/usr/bin/env bash
# Creates .venv with the pinned OpenMMLab stack and installs mmaff in editable mode.
#
# mmcv 2.1.0 (the newest release mmdet 3.3.0 and mmseg 1.2.2 accept) ships no
# Linux wheel, so it is built from source with its compiled ops once per machine
# and kept in a wheelhouse keyed by torch version, CUDA version (or cpu) and
# CUDA arch list; later runs reuse it. CUDA ops are built when torch sees a GPU
# or FORCE_CUDA=1 asks for them, with an nvcc from the package registry that
# matches torch's CUDA (tools/misc/mmcv_build_plan.py makes the decisions).
#
# Usage: bash tools/install_env.sh [--dry-run]
#   --dry-run   print every decision and install nothing
# Environment: FORCE_CUDA=1|0, TORCH_CUDA_ARCH_LIST (e.g. 9.0), CUDA_HOME (used
# only if its nvcc is torch's CUDA release), MAX_JOBS, MMAFF_WHEELHOUSE (root of
# the keyed wheelhouses), VENV, PYTHON.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DRY_RUN=0
for arg in "$@"; do
    case "$arg" in
        --dry-run) DRY_RUN=1 ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "[install_env] error: unknown argument '$arg' (only --dry-run)" >&2; exit 2 ;;
    esac
done
PYTHON="${PYTHON:-python3.11}"
VENV="${VENV:-$ROOT/.venv}"
MMCV_VERSION="2.1.0"
TORCH_VERSION="$(sed -n 's/^torch==\(.*\)$/\1/p' requirements/torch.txt)"
WHEEL_ROOT="${MMAFF_WHEELHOUSE:-$HOME/.cache/mmaff/wheels}"
PLAN=(tools/misc/mmcv_build_plan.py)

say() { printf '[install_env] %s\n' "$*"; }
die() { printf '[install_env] error: %s\n' "$*" >&2; exit 1; }
elapsed() { printf '%ds' "$((SECONDS - $1))"; }

T0=$SECONDS
if [ "$DRY_RUN" = 1 ]; then
    say "dry run: nothing is installed"
    if [ -x "$VENV/bin/python" ]; then
        say "venv $VENV exists; torch and mmcv decisions come from its Python"
        PLAN_PY="$VENV/bin/python"
    else
        say "would create $VENV with $PYTHON and install torch $TORCH_VERSION"
        PLAN_PY="$PYTHON"
    fi
    PLAN_OUT="$("$PLAN_PY" "${PLAN[@]}" plan --torch "$TORCH_VERSION" --wheelhouse-root "$WHEEL_ROOT")" || exit 2
    eval "$PLAN_OUT"
    shopt -s nullglob
    wheels=("$WHEELHOUSE"/mmcv-"$MMCV_VERSION"-*.whl)
    legacy=("$WHEEL_ROOT/torch-$TORCH_VERSION"/mmcv-"$MMCV_VERSION"-*.whl)
    if [ ${#wheels[@]} -gt 0 ]; then
        say "would reuse ${wheels[0]}"
    elif [ "$MMCV_BUILD" = cpu ] && [ ${#legacy[@]} -gt 0 ]; then
        say "would copy ${legacy[0]} (if it has CPU ops) to $WHEELHOUSE and reuse it"
    else
        [ "$MMCV_BUILD" = cuda ] && [ -n "${CUDA_PACKAGES:-}" ] && say "would install $CUDA_PACKAGES"
        say "would build mmcv $MMCV_VERSION with $MMCV_BUILD ops (patched to C++20) into $WHEELHOUSE"
    fi
    say "would install mmengine, mmdet, mmsegmentation, mmpretrain, mmdeploy and mmaff (editable)"
    exit 0
fi

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

PLAN_OUT="$("$VENV/bin/python" "${PLAN[@]}" plan --torch "$TORCH_VERSION" --wheelhouse-root "$WHEEL_ROOT")" \
    || die "cannot decide how to build mmcv (see above)"
eval "$PLAN_OUT"
wheel_kind() { "$VENV/bin/python" "${PLAN[@]}" wheel-kind "$1"; }

shopt -s nullglob
wheels=("$WHEELHOUSE"/mmcv-"$MMCV_VERSION"-*.whl)
legacy=("$WHEEL_ROOT/torch-$TORCH_VERSION"/mmcv-"$MMCV_VERSION"-*.whl)
if [ ${#wheels[@]} -eq 0 ] && [ "$MMCV_BUILD" = cpu ] && [ ${#legacy[@]} -gt 0 ] \
        && [ "$(wheel_kind "${legacy[0]}")" = cpu ]; then
    # Wheelhouses were keyed by the torch version alone before CUDA builds existed.
    say "copying the CPU wheel ${legacy[0]##*/} from ${legacy[0]%/*} to $WHEELHOUSE"
    mkdir -p "$WHEELHOUSE"
    cp "${legacy[0]}" "$WHEELHOUSE"/
    wheels=("$WHEELHOUSE"/mmcv-"$MMCV_VERSION"-*.whl)
fi

if [ ${#wheels[@]} -eq 0 ]; then
    T1=$SECONDS
    say "no mmcv $MMCV_VERSION wheel in $WHEELHOUSE"
    SRC="$(mktemp -d)"
    trap 'rm -rf "$SRC"' EXIT
    if [ "$MMCV_BUILD" = cuda ]; then
        if [ -n "$CUDA_PACKAGES" ]; then
            say "installing the CUDA compiler matching torch: $CUDA_PACKAGES"
            # read -a, not $CUDA_PACKAGES unquoted: "[nvcc,cccl,crt]" is a glob
            read -ra cuda_packages <<< "$CUDA_PACKAGES"
            pip_ install -q -c requirements/torch.txt "${cuda_packages[@]}"
        fi
        [ -x "$CUDA_HOME/bin/nvcc" ] || die "no nvcc at $CUDA_HOME/bin/nvcc after installing $CUDA_PACKAGES"
        # torch links the extension with -lcudart; the registry's runtime ships
        # only the versioned libcudart.so.N, so give the linker the plain name.
        if [ ! -e "$CUDA_HOME/lib64/libcudart.so" ] && [ ! -e "$CUDA_HOME/lib/libcudart.so" ]; then
            cudart=("$CUDA_HOME"/lib/libcudart.so.[0-9]*)
            [ ${#cudart[@]} -gt 0 ] || die "no libcudart.so.* under $CUDA_HOME/lib"
            mkdir -p "$SRC/link"
            ln -s "${cudart[0]}" "$SRC/link/libcudart.so"
            export LIBRARY_PATH="$SRC/link${LIBRARY_PATH:+:$LIBRARY_PATH}"
        fi
        export FORCE_CUDA=1 CUDA_HOME TORCH_CUDA_ARCH_LIST PATH="$CUDA_HOME/bin:$PATH"
        say "building mmcv $MMCV_VERSION with CPU and CUDA ops for arch $TORCH_CUDA_ARCH_LIST with $("$CUDA_HOME/bin/nvcc" --version | sed -n 's/.*\(release [0-9.]*\).*/nvcc \1/p'): about 30 minutes on 2 cores per arch (58 .cu files), once per machine"
    else
        # mmcv's setup.py adds CUDA ops whenever torch sees a GPU.
        export FORCE_CUDA=0 CUDA_VISIBLE_DEVICES=""
        say "building mmcv $MMCV_VERSION with compiled CPU ops from source: this takes about 15 minutes on 2 cores, once per machine"
    fi
    pip_ download -q --no-deps --no-binary :all: --no-build-isolation -d "$SRC" "mmcv==$MMCV_VERSION"
    tar -xzf "$SRC"/mmcv-"$MMCV_VERSION".tar.gz -C "$SRC"
    # torch 2.14's headers stop with "C++20 or later compatible compiler is required"
    # while mmcv 2.1.0's setup.py forces -std=c++14/c++17 (for g++ and nvcc): build it as C++20.
    say "patching mmcv setup.py to -std=c++20 (torch $TORCH_VERSION headers require C++20)"
    sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' "$SRC/mmcv-$MMCV_VERSION/setup.py"
    if grep -q -- '-std=c++1[47]' "$SRC/mmcv-$MMCV_VERSION/setup.py"; then
        die "the C++ standard patch did not apply"
    fi
    mkdir -p "$WHEELHOUSE"
    # --no-build-isolation: mmcv's setup.py imports torch and must see the pinned one.
    export MMCV_WITH_OPS=1 MAX_JOBS
    pip_ wheel --no-deps --no-build-isolation \
        -w "$SRC/dist" "$SRC/mmcv-$MMCV_VERSION"
    built=("$SRC"/dist/mmcv-"$MMCV_VERSION"-*.whl)
    [ "$(wheel_kind "${built[0]}")" = "$MMCV_BUILD" ] \
        || die "the build produced a $(wheel_kind "${built[0]}") wheel, $MMCV_BUILD was asked for"
    mv "${built[0]}" "$WHEELHOUSE"/
    wheels=("$WHEELHOUSE"/mmcv-"$MMCV_VERSION"-*.whl)
    say "built ${wheels[0]##*/} ($MMCV_BUILD ops) in $(elapsed "$T1")"
else
    kind="$(wheel_kind "${wheels[0]}")"
    [ "$kind" = "$MMCV_BUILD" ] \
        || die "${wheels[0]} has $kind ops but $MMCV_BUILD ops are needed here: remove it and run again"
    say "reusing ${wheels[0]##*/} ($kind ops) from $WHEELHOUSE"
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
if [ "$MMCV_BUILD" = cuda ]; then
    if "$VENV/bin/python" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
        say "checking mmcv's CUDA ops against CPU results"
        "$VENV/bin/python" tools/misc/check_mmcv_ops.py --device cuda \
            || die "mmcv's CUDA ops are missing or wrong (see above); remove $WHEELHOUSE and run again"
    else
        say "no GPU visible here: run 'python tools/misc/check_mmcv_ops.py' on the GPU machine"
    fi
fi
say "environment ready in $(elapsed "$T0")"
