#!/usr/bin/env bash
# Installs the mmaff offline kit without a package index and checks the result.
#
# Usage: bash kit/install_and_check.sh [--python PY] [--target DIR]
#            [--mmcv-wheel FILE] [--device auto|cuda|cpu] [--results DIR]
#            [--iters N]
#   --python PY       the Python whose environment gets the kit (default: python3);
#                     it must have torch, torchvision, numpy and opencv
#   --target DIR      install into DIR (pip --target, no dependency check)
#                     instead of PY's environment; later steps put DIR first on
#                     PYTHONPATH
#   --mmcv-wheel FILE install this mmcv 2.1.0 wheel instead of building one
#   --device          where the checks run (default: cuda when torch sees a GPU)
#   --results DIR     where logs, summary.md and summary.json go
#                     (default: ./mmaff-kit-check-<date>)
#   --iters N         training iterations per toy run (default: 20 on CUDA, 2 on CPU)
# Environment: MAX_JOBS (default: all cores), CUDA_HOME (default: the nvcc on
# PATH, else /usr/local/cuda), TORCH_CUDA_ARCH_LIST (default: the visible GPUs),
# MMAFF_WHEELHOUSE (built mmcv wheels are kept and reused there; default
# ~/.cache/mmaff/wheels).
#
# Steps, each timed against a budget (for 16 cores and one GPU): install the
# kit's wheels with pip --no-index, keeping the installed torch, torchvision,
# numpy and opencv; build mmcv 2.1.0's ops (CUDA ops for the local GPU's arch
# when a GPU is visible, CPU ops otherwise; C++20 source as tools/install_env.sh
# builds it; gpu_check runs beside the build, it needs no compiled ops); then
# tools/misc/check_mmcv_ops.py, tools/benchmarks/gpu_check.py (--tiny on CPU)
# and short training runs plus a test pass of SSDLite-AFFNet-ET and
# DeepLabv3-AFFNet-ET on the toy sets (--amp float16 and bfloat16 on CUDA).
# Writes one Markdown table and one JSON file; exit code 1 if a step failed.
set -euo pipefail

KIT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${PYTHON:-python3}"
TARGET=""
MMCV_WHEEL=""
DEVICE_ARG=auto
RESULTS=""
ITERS=""
MMCV_VERSION=2.1.0

die() { printf 'error: %s\n' "$*" >&2; exit 1; }
need_value() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --python) need_value "$@"; PY="$2"; shift 2 ;;
        --target) need_value "$@"; TARGET="$2"; shift 2 ;;
        --mmcv-wheel) need_value "$@"; MMCV_WHEEL="$2"; shift 2 ;;
        --device) need_value "$@"; DEVICE_ARG="$2"; shift 2 ;;
        --results) need_value "$@"; RESULTS="$2"; shift 2 ;;
        --iters) need_value "$@"; ITERS="$2"; shift 2 ;;
        -h|--help) sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
case "$DEVICE_ARG" in auto|cuda|cpu) ;; *) die "--device $DEVICE_ARG: use auto, cuda or cpu" ;; esac
[ -z "$ITERS" ] || [[ "$ITERS" =~ ^[1-9][0-9]*$ ]] || die "--iters $ITERS: give a positive whole number"
command -v "$PY" >/dev/null 2>&1 || die "--python $PY: no such Python"
[ -f "$KIT/manifest.json" ] || die "$KIT has no manifest.json: not an mmaff kit"
if [ -n "$MMCV_WHEEL" ]; then
    [ -f "$MMCV_WHEEL" ] || die "--mmcv-wheel $MMCV_WHEEL: no such file"
    MMCV_WHEEL="$(cd "$(dirname "$MMCV_WHEEL")" && pwd)/$(basename "$MMCV_WHEEL")"
fi
RESULTS="${RESULTS:-$PWD/mmaff-kit-check-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$RESULTS"
RESULTS="$(cd "$RESULTS" && pwd)"
WORK="$RESULTS/work"
mkdir -p "$WORK"
if [ -n "$TARGET" ]; then
    mkdir -p "$TARGET"
    TARGET="$(cd "$TARGET" && pwd)"
fi

# Nothing may come from an index or another folder, whatever pip's
# configuration says: the kit is the only source.
export PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_CONFIG_FILE=/dev/null
unset PIP_FIND_LINKS PIP_EXTRA_INDEX_URL PIP_INDEX_URL PIP_CONSTRAINT PIP_REQUIREMENT
STEPS=("$PY" "$KIT/tools/kit_steps.py")
say() { printf '[kit] %s\n' "$*"; }
# step NAME BUDGET [--note-regex RE] -- COMMAND...
step() {
    local name="$1" budget="$2"
    shift 2
    "${STEPS[@]}" step --results "$RESULTS" --name "$name" --budget "$budget" "$@"
}
finish() {
    "${STEPS[@]}" report --results "$RESULTS"
    exit $?
}
# A step that later steps need: stop (with the table) if it failed.
must() { "$@" || { say "stopping: a step the others need failed"; finish; }; }

say "kit $KIT -> $([ -n "$TARGET" ] && echo "--target $TARGET" || echo "the environment of $PY"); results in $RESULTS"
must step verify 5 --quiet -- bash -c "cd '$KIT' && sha256sum -c --quiet SHA256SUMS"
must step preflight 15 -- "${STEPS[@]}" preflight --kit "$KIT" --device "$DEVICE_ARG"
eval "$(grep -E '^(DEVICE|TORCH_VERSION)=' "$RESULTS/logs/preflight.log")"
[ -n "$ITERS" ] || ITERS=$([ "$DEVICE" = cuda ] && echo 20 || echo 2)

# ------------------------------------------------------------------ install
PIP=("$PY" -m pip install --no-index --disable-pip-version-check)
if [ -n "$TARGET" ]; then
    # --target ignores what the environment has: every kit wheel goes in,
    # without a dependency check (torch and the rest stay where they are).
    must step install 45 -- "${PIP[@]}" --no-deps --target "$TARGET" --upgrade "$KIT"/wheels/*.whl
    export PYTHONPATH="$TARGET${PYTHONPATH:+:$PYTHONPATH}" PATH="$TARGET/bin:$PATH"
else
    "${STEPS[@]}" requirements --kit "$KIT" --constraints "$WORK/constraints.txt" > "$WORK/requirements.txt"
    must step install 45 -- "${PIP[@]}" --find-links "$KIT/wheels" \
        -c "$WORK/constraints.txt" -r "$WORK/requirements.txt"
fi
# mmaff's configs and tools, found without importing mmaff (no mmcv yet)
MIM="$("$PY" -c 'import importlib.util, os; print(os.path.join(importlib.util.find_spec("mmaff").submodule_search_locations[0], ".mim"))')"
[ -f "$MIM/tools/train.py" ] || die "the installed mmaff has no $MIM/tools/train.py"

# ------------------------------------------------------------------ mmcv
install_mmcv() {
    if [ -n "$TARGET" ]; then
        "${PIP[@]}" --no-deps --target "$TARGET" --upgrade "$1"
    else
        "${PIP[@]}" --no-deps --force-reinstall "$1"
    fi
}
GPU_CHECK=("$PY" "$MIM/tools/benchmarks/gpu_check.py" --device "$DEVICE"
           --out "$RESULTS/gpu_check.md" --json "$RESULTS/gpu_check.json")
[ "$DEVICE" = cuda ] || GPU_CHECK+=(--tiny)
GPU_CHECK_BUDGET=$([ "$DEVICE" = cuda ] && echo 300 || echo 150)
GPU_CHECK_DONE=0
if [ -n "$MMCV_WHEEL" ]; then
    must step mmcv-install 10 -- bash -c "$(declare -p PIP TARGET; declare -f install_mmcv); install_mmcv '$MMCV_WHEEL'"
else
    # The same decisions as tools/install_env.sh (tools/misc/mmcv_build_plan.py),
    # with the machine's own nvcc: there is no index to fetch one from.
    if [ -z "${CUDA_HOME:-}" ]; then
        if command -v nvcc >/dev/null 2>&1; then
            CUDA_HOME="$(cd "$(dirname "$(command -v nvcc)")/.." && pwd)"
        elif [ -x /usr/local/cuda/bin/nvcc ]; then
            CUDA_HOME=/usr/local/cuda
        fi
    fi
    [ -n "${CUDA_HOME:-}" ] && export CUDA_HOME
    [ "$DEVICE" = cpu ] && export FORCE_CUDA="${FORCE_CUDA:-0}"
    PLAN_OUT="$("$PY" "$KIT/tools/mmcv_build_plan.py" plan --torch "$TORCH_VERSION" \
        --wheelhouse-root "${MMAFF_WHEELHOUSE:-$HOME/.cache/mmaff/wheels}")" \
        || die "cannot decide how to build mmcv (see above)"
    eval "$PLAN_OUT"
    if [ "$MMCV_BUILD" = cuda ] && [ "${USE_SYSTEM_CUDA:-0}" != 1 ]; then
        die "no nvcc of torch's CUDA release found (CUDA_HOME=${CUDA_HOME:-unset}): point CUDA_HOME at it; offline, the plan's '$CUDA_PACKAGES' cannot be fetched"
    fi
    shopt -s nullglob
    built=("$WHEELHOUSE"/mmcv-"$MMCV_VERSION"-*.whl)
    shopt -u nullglob
    if [ ${#built[@]} -gt 0 ] && [ "$("$PY" "$KIT/tools/mmcv_build_plan.py" wheel-kind "${built[0]}")" = "$MMCV_BUILD" ]; then
        say "reusing ${built[0]} ($MMCV_BUILD ops, built here before)"
        must step mmcv-install 10 -- bash -c "$(declare -p PIP TARGET; declare -f install_mmcv); install_mmcv '${built[0]}'"
    else
        SRC="$WORK/mmcv-src"
        rm -rf "$SRC"
        mkdir -p "$SRC"
        tar -xzf "$KIT/src/mmcv-$MMCV_VERSION.tar.gz" -C "$SRC"
        grep -q -- '-std=c++1[47]' "$SRC/mmcv-$MMCV_VERSION/setup.py" \
            && die "the kit's mmcv setup.py is not patched to C++20"
        if [ "$MMCV_BUILD" = cuda ]; then
            # torch links the extension with -lcudart; some CUDA installs ship
            # only the versioned libcudart.so.N.
            if [ ! -e "$CUDA_HOME/lib64/libcudart.so" ] && [ ! -e "$CUDA_HOME/lib/libcudart.so" ]; then
                shopt -s nullglob
                cudart=("$CUDA_HOME"/lib*/libcudart.so.[0-9]*)
                shopt -u nullglob
                [ ${#cudart[@]} -gt 0 ] || die "no libcudart.so under $CUDA_HOME"
                mkdir -p "$WORK/link"
                ln -sf "${cudart[0]}" "$WORK/link/libcudart.so"
                export LIBRARY_PATH="$WORK/link${LIBRARY_PATH:+:$LIBRARY_PATH}"
            fi
            export FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST PATH="$CUDA_HOME/bin:$PATH"
            BUILD_BUDGET=300
        else
            export FORCE_CUDA=0
            BUILD_BUDGET=150
        fi
        # gpu_check needs mmcv's Python code but none of its compiled ops: it
        # runs beside the build with the source's pure-Python mmcv (as with
        # mmcv-lite) and mmdet / mmseg hidden (they import mmcv.ops; mmaff
        # then leaves their models out, and gpu_check builds classifiers).
        LITE="$WORK/mmcv-lite"
        mkdir -p "$LITE/mmdet" "$LITE/mmseg"
        cp -r "$SRC/mmcv-$MMCV_VERSION/mmcv" "$LITE/"
        for hidden in mmdet mmseg; do
            echo "raise ImportError('$hidden is hidden while mmcv builds')" > "$LITE/$hidden/__init__.py"
        done
        (
            export PYTHONPATH="$LITE${PYTHONPATH:+:$PYTHONPATH}"
            step gpu_check "$GPU_CHECK_BUDGET" --quiet -- "${GPU_CHECK[@]}" || true
            "${STEPS[@]}" parallel --results "$RESULTS" --name gpu_check
        ) &
        GPU_CHECK_PID=$!
        GPU_CHECK_DONE=1
        say "building mmcv $MMCV_VERSION with $MMCV_BUILD ops, $MAX_JOBS jobs (gpu_check runs beside it; its output is in $RESULTS/logs/gpu_check.log)"
        # --no-build-isolation: setup.py imports torch and must see this one.
        # CUDA_VISIBLE_DEVICES is left alone for a CUDA build: the plan decided.
        build_env=(env MMCV_WITH_OPS=1 MAX_JOBS="$MAX_JOBS")
        [ "$MMCV_BUILD" = cpu ] && build_env+=(CUDA_VISIBLE_DEVICES=)
        build_ok=1
        step mmcv-build "$BUILD_BUDGET" --quiet -- "${build_env[@]}" "$PY" -m pip wheel --no-index \
            --no-deps --no-build-isolation -w "$WORK/mmcv-dist" "$SRC/mmcv-$MMCV_VERSION" || build_ok=0
        wait "$GPU_CHECK_PID" || true
        [ "$build_ok" = 1 ] || { say "stopping: the mmcv build failed (log: $RESULTS/logs/mmcv-build.log)"; finish; }
        wheel=("$WORK"/mmcv-dist/mmcv-"$MMCV_VERSION"-*.whl)
        mkdir -p "$WHEELHOUSE"
        cp "${wheel[0]}" "$WHEELHOUSE"/
        must step mmcv-install 10 -- bash -c "$(declare -p PIP TARGET; declare -f install_mmcv); install_mmcv '${wheel[0]}'"
    fi
fi
step imports 15 -- "$PY" -c "import mmcv.ops, mmdet.models, mmseg.models, mmpretrain.models, mmaff; print('imports ok: mmcv', mmcv.__version__, 'from', mmcv.__file__)" \
    || { say "stopping: the installed packages do not import"; finish; }

# ------------------------------------------------------------------ checks
if [ "$DEVICE" = cuda ]; then
    step check_mmcv_ops 15 -- "$PY" "$MIM/tools/misc/check_mmcv_ops.py" --device cuda || true
else
    "${STEPS[@]}" skip --results "$RESULTS" --name check_mmcv_ops --budget 15 \
        --reason "it checks a device's ops against mmcv's CPU kernels (sigmoid_focal_loss has none); on CPU, mmcv._ext loads in 'imports' and NMS runs in 'test ssdlite'"
fi
if [ "$GPU_CHECK_DONE" = 0 ]; then
    step gpu_check "$GPU_CHECK_BUDGET" --quiet -- "${GPU_CHECK[@]}" || true
fi

# Toy sets: a training batch per run times --iters repeats gives --iters
# iterations of SSDLite (epoch-based); DeepLabv3 is iteration-based.
if [ "$DEVICE" = cuda ]; then
    BATCH=8 SIZE=320 WORKERS=2 DTYPES="float16 bfloat16"
else
    BATCH=2 SIZE=128 WORKERS=0 DTYPES="float32"
fi
DATA="$WORK/data"
step toy-data 10 -- bash -c "'$PY' '$MIM/tools/dataset_converters/make_toy_coco.py' '$DATA/coco' --num-train $BATCH --num-val 4 --size $SIZE && '$PY' '$MIM/tools/dataset_converters/make_toy_ade20k.py' '$DATA/ade' --num-train $BATCH --num-val 4 --size 128" \
    || { say "stopping: no toy data"; finish; }

DET_CFG="$MIM/configs/detection/ssdlite_affnet-et_8xb24-600e_coco_toy.py"
SEG_CFG="$MIM/configs/segmentation/deeplabv3_affnet-et-d8_4xb4-80k_ade20k-512x512_toy.py"
loaders() {  # data root, train dataset key
    local root="$1" key="$2" split
    echo "$key.data_root=$root" "val_dataloader.dataset.data_root=$root" \
        "test_dataloader.dataset.data_root=$root" "train_dataloader.batch_size=$BATCH"
    for split in train val test; do
        echo "${split}_dataloader.num_workers=$WORKERS"
        [ "$WORKERS" -gt 0 ] || echo "${split}_dataloader.persistent_workers=False"
    done
}
ANN="$DATA/coco/annotations/instances_val.json"
DET_OPTS=($(loaders "$DATA/coco/" train_dataloader.dataset.dataset)
          "val_evaluator.ann_file=$ANN" "test_evaluator.ann_file=$ANN"
          train_dataloader.dataset.times="$ITERS" train_cfg.max_epochs=1
          train_cfg.val_begin=2 default_hooks.logger.interval=5)
SEG_OPTS=($(loaders "$DATA/ade/" train_dataloader.dataset)
          train_cfg.max_iters="$ITERS" train_cfg.val_begin="$((ITERS + 1))"
          default_hooks.checkpoint.interval="$ITERS" default_hooks.logger.interval=5)
# Budgets are for one GPU (on CPU the runs are 2 iterations).
for dtype in $DTYPES; do
    amp=()
    [ "$dtype" = float32 ] || amp=(--amp --amp-dtype "$dtype")
    W="$WORK/ssdlite-$dtype"
    if step "train ssdlite $dtype" 30 -- "$PY" "$MIM/tools/train.py" "$DET_CFG" --work-dir "$W" \
            "${amp[@]}" --cfg-options "${DET_OPTS[@]}"; then
        step "test ssdlite $dtype" 15 --note-regex 'coco/bbox_mAP: [-0-9.]+' -- \
            "$PY" "$MIM/tools/test.py" "$DET_CFG" "$W/epoch_1.pth" --work-dir "$W" \
            --device "$DEVICE" --cfg-options "${DET_OPTS[@]}" || true
    fi
    W="$WORK/deeplabv3-$dtype"
    if step "train deeplabv3 $dtype" 30 -- "$PY" "$MIM/tools/train.py" "$SEG_CFG" --work-dir "$W" \
            "${amp[@]}" --cfg-options "${SEG_OPTS[@]}"; then
        step "test deeplabv3 $dtype" 15 --note-regex 'mIoU: [-0-9.]+' -- \
            "$PY" "$MIM/tools/test.py" "$SEG_CFG" "$W/iter_$ITERS.pth" --work-dir "$W" \
            --device "$DEVICE" --cfg-options "${SEG_OPTS[@]}" || true
    fi
done
finish
