#!/usr/bin/env bash
# Testing under slurm:
#   tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args]
# GPUS, GPUS_PER_NODE, CPUS_PER_TASK, SRUN_ARGS, PYTHON: see slurm_common.sh
set -euo pipefail
source "$(dirname "$0")/slurm_common.sh"
slurm_usage 4 'PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args]' "$@"
slurm_run "$1" "$2" test.py "$3" "$4" --launcher slurm "${@:5}"
