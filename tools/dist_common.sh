# Sourced by dist_train.sh and dist_test.sh: dist_run SCRIPT NUM_PROCS ARGS...
# runs tools/SCRIPT in NUM_PROCS processes (torchrun) with ARGS and
# --launcher pytorch. NNODES, NODE_RANK, MASTER_ADDR, PORT and PYTHON come
# from the environment. On CPU the processes talk over gloo
# (mmaff.compat.prepare_cpu_distributed).
dist_run() {
    local tools script=$1 nprocs=$2
    tools=$(dirname "${BASH_SOURCE[0]}")
    shift 2
    # the checkout's mmaff, also when it is not installed
    PYTHONPATH="$tools/..${PYTHONPATH:+:$PYTHONPATH}" \
    "${PYTHON:-python}" -m torch.distributed.run \
        --nnodes="${NNODES:-1}" \
        --node_rank="${NODE_RANK:-0}" \
        --master_addr="${MASTER_ADDR:-127.0.0.1}" \
        --nproc_per_node="$nprocs" \
        --master_port="${PORT:-29500}" \
        "$tools/$script" "$@"
}
