# Sourced by slurm_train.sh and slurm_test.sh.
#
# slurm_usage MIN USAGE ARGS...: exits 2 with "usage: SCRIPT USAGE" unless
# ARGS holds at least MIN arguments.
#
# slurm_run PARTITION JOB_NAME SCRIPT ARGS...: runs tools/SCRIPT with ARGS in
# GPUS tasks (GPUS_PER_NODE per node, CPUS_PER_TASK cores each) through
# srun; the scripts pass --launcher slurm. Environment: GPUS (8),
# GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS (extra srun options, split
# on whitespace) and PYTHON (python). Without CUDA the tasks talk over gloo
# (mmaff.compat.prepare_cpu_distributed).
slurm_usage() {
    local min=$1 usage=$2
    shift 2
    if (( $# < min )); then
        echo "usage: $0 $usage" >&2
        exit 2
    fi
}

slurm_run() {
    local tools root partition=$1 job_name=$2 script=$3
    local -a srun_args=()
    shift 3
    tools=$(dirname "${BASH_SOURCE[0]}")
    # Absolute: the tasks may start on other nodes (same shared checkout).
    root=$(cd "$tools/.." && pwd)
    # SRUN_ARGS holds several options in one string; split it without
    # glob expansion.
    read -r -a srun_args <<< "${SRUN_ARGS:-}"
    # The checkout's mmaff, also when it is not installed; srun hands the
    # environment on to every task.
    PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" \
    srun -p "$partition" \
        --job-name="$job_name" \
        --gres=gpu:"${GPUS_PER_NODE:-8}" \
        --ntasks="${GPUS:-8}" \
        --ntasks-per-node="${GPUS_PER_NODE:-8}" \
        --cpus-per-task="${CPUS_PER_TASK:-5}" \
        --kill-on-bad-exit=1 \
        "${srun_args[@]}" \
        "${PYTHON:-python}" -u "$tools/$script" "$@"
}
