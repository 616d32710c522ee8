#!/usr/bin/env bash
# Training under slurm:
#   tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args]
# GPUS, GPUS_PER_NODE, CPUS_PER_TASK, SRUN_ARGS, PYTHON: see slurm_common.sh
set -euo pipefail
source "$(dirname "$0")/slurm_common.sh"
slurm_usage 4 'PARTITION JOB_NAME CONFIG WORK_DIR [train.py args]' "$@"
slurm_run "$1" "$2" train.py "$3" --work-dir="$4" --launcher slurm "${@:5}"
