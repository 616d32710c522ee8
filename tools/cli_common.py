"""Command-line handling shared by ``tools/train.py`` and ``tools/test.py``.

The scripts run as ``python tools/<script>.py`` (or from ``mmaff/.mim/tools``
under ``mim train``), which puts this folder on ``sys.path``: they import
this module as ``cli_common``.
"""
import argparse
import contextlib
import os
import subprocess
from collections.abc import Iterator

from mmengine.config import Config, DictAction

from mmaff.checkpoint import CheckpointError
from mmaff.utils.runner_setup import load_config


def tool_parser(description: str,
                *positionals: tuple[str, str]) -> argparse.ArgumentParser:
    """A parser with the positional arguments and the options every tool
    has; add the tool's own options to it.

    Args:
        description (str): What the tool does.
        *positionals (tuple[str, str]): Name and help of each positional
            argument, in order.

    Returns:
        argparse.ArgumentParser: The parser.
    """
    parser = argparse.ArgumentParser(description=description)
    for name, help_text in positionals:
        parser.add_argument(name, help=help_text)
    parser.add_argument('--work-dir', help='directory for logs and outputs')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, e.g. train_cfg.max_iters=20')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher (pytorch = torchrun, see tools/dist_train.sh)')
    # torch.distributed.launch passes --local-rank; torchrun sets the env.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser


def set_slurm_master_addr() -> None:
    """For ``--launcher slurm``: set ``MASTER_ADDR`` to the first host of
    the job's node list, as mmengine's slurm start-up does, unless it is
    set or this is no srun task (then
    :func:`mmaff.compat.prepare_cpu_distributed` names what is missing).

    Raises:
        RuntimeError: If ``scontrol show hostname`` fails or names no
            host.
    """
    node_list = os.environ.get('SLURM_NODELIST')
    if 'MASTER_ADDR' in os.environ or node_list is None:
        return
    command = ['scontrol', 'show', 'hostname', node_list]
    try:
        hosts = subprocess.run(command, capture_output=True, text=True,
                               check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError) as e:
        raise RuntimeError(f'launcher=slurm: `{" ".join(command)}` failed: '
                           f'{e}') from e
    if not hosts:
        raise RuntimeError(f'launcher=slurm: `{" ".join(command)}` printed '
                           'no host')
    os.environ['MASTER_ADDR'] = hosts[0]


def config_from_args(args: argparse.Namespace) -> Config:
    """The config of ``args.config`` with the options of
    :func:`tool_parser` applied (see
    :func:`mmaff.utils.runner_setup.load_config`).

    Args:
        args (argparse.Namespace): Parsed options.

    Returns:
        Config: The config.
    """
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    if args.launcher == 'slurm':
        set_slurm_master_addr()
    return load_config(args.config, args.cfg_options, args.work_dir,
                       args.launcher)


@contextlib.contextmanager
def exit_on_error() -> Iterator[None]:
    """Turn what the set-up of a run raises (a missing file, an option the
    config cannot take) into ``error: <message>`` and exit code 1.

    Wrap the set-up only: a failure during training keeps its traceback.
    """
    try:
        yield
    except (OSError, ValueError, RuntimeError) as e:
        raise SystemExit(f'error: {e}') from e


@contextlib.contextmanager
def exit_on_checkpoint_error() -> Iterator[None]:
    """Turn a :class:`~mmaff.checkpoint.CheckpointError` raised while
    the Runner works (loading ``load_from``, ``resume`` or
    ``init_cfg=Pretrained`` weights) into ``error: <message>`` and exit
    code 1.

    Wrap ``runner.train()`` / ``runner.test()``: any other failure keeps its
    traceback. In a multi-process run every rank reads the checkpoint and
    fails alike; each leaves the process group without waiting for the
    others (a barrier could wait forever for a rank that failed otherwise)
    and exits, so torchrun ends the job with a non-zero code.
    """
    try:
        yield
    except CheckpointError as e:
        import torch.distributed as dist
        if dist.is_available() and dist.is_initialized():
            # gloo's threads must be gone before exit, or the process may
            # abort ("terminate called without an active exception").
            with contextlib.suppress(Exception):
                dist.destroy_process_group()
        raise SystemExit(f'error: {e}') from e
