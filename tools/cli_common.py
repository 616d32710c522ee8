"""Command-line handling shared by ``tools/train.py`` and ``tools/test.py``:
their common options, the config and Runner changes their options ask for
(launcher, ``--amp``, ``--show-dir``, ``--device``), building the Runner,
and turning errors into an ``error: ...`` line and exit code 1.

The functions raise exceptions worded as the options;
:func:`exit_on_error` and :func:`exit_on_checkpoint_error` turn them into
the ``error:`` line.

The scripts run as ``python tools/<script>.py`` (or from ``mmaff/.mim/tools``
under ``mim train``), which puts this folder on ``sys.path``: they import
this module as ``cli_common``.
"""
import argparse
import contextlib
import os
import os.path as osp
import subprocess
from collections.abc import Iterator

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log

from mmaff.checkpoint import CheckpointError
from mmaff.compat import prepare_cpu_distributed, replace_sync_bn
from mmaff.utils.config import read_config
from mmaff.utils.device import DeviceError, pick_device


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
    :func:`load_config`).

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


def device_option(device: str) -> str:
    """:func:`mmaff.utils.device.pick_device` for a ``--device`` option.

    Raises:
        ValueError: ``--device <name>: <problem>``.
    """
    try:
        return pick_device(device)
    except DeviceError as e:
        raise ValueError(f'--device {e.device}: {e.problem}') from e


def load_config(path: str,
                cfg_options: dict | None = None,
                work_dir: str | None = None,
                launcher: str = 'none') -> Config:
    """Read a config and apply the overrides of a training or test run.

    Args:
        path (str): Config file, or the file name of a config shipped with
            mmaff (see :func:`mmaff.utils.config.find_config`).
        cfg_options (dict, optional): Entries to merge into the config, as
            ``--cfg-options`` gives them (``{'train_cfg.max_iters': 20}``).
        work_dir (str, optional): Work dir; defaults to the config's, else
            ``./work_dirs/<config name>``.
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``;
            multi-process runs on CPU get the fixes of
            :func:`mmaff.compat.prepare_cpu_distributed`; single-process
            ones get BN for SyncBN (:func:`revert_sync_bn`). Defaults to
            ``'none'``.

    Returns:
        Config: The config, ready for :func:`build_runner`.

    Raises:
        FileNotFoundError: If ``path`` names no config.
    """
    cfg = read_config(path, cfg_options)
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(path))[0])
    if launcher == 'none':
        revert_sync_bn(cfg)
    prepare_cpu_distributed(cfg, launcher)
    return cfg


#: ``--amp-dtype`` choices: what autocast computes in.
AMP_DTYPES = ('float16', 'bfloat16')


def enable_amp(cfg: Config, dtype: str = 'float16') -> None:
    """Switch the optimizer wrapper to mixed precision (``train.py --amp``).

    Autocast runs the convolutions and matrix products in ``dtype``; the
    AFF filters keep their FFTs in float32 (they leave autocast), and
    float16 gets a dynamic loss scale, bfloat16 none (it has float32's
    exponent range).

    Args:
        cfg (Config): Runner config, changed in place.
        dtype (str): ``'float16'`` or ``'bfloat16'``. Defaults to
            ``'float16'``.

    Raises:
        RuntimeError: Without a CUDA device (mmengine's ``AmpOptimWrapper``
            refuses other devices), or for bfloat16 on a GPU without it.
        ValueError: For another ``dtype``, or if the config uses another
            wrapper than ``OptimWrapper``.
    """
    if dtype not in AMP_DTYPES:
        raise ValueError(f'--amp-dtype {dtype}: use one of {AMP_DTYPES}')
    if not torch.cuda.is_available():
        raise RuntimeError('--amp needs a CUDA device; mmengine 0.10.7 '
                           'AmpOptimWrapper does not run on CPU')
    if dtype == 'bfloat16' and not torch.cuda.is_bf16_supported():
        raise RuntimeError(f'--amp-dtype bfloat16: '
                           f'{torch.cuda.get_device_name()} has no bfloat16; '
                           'use float16')
    optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if optim_wrapper not in ('OptimWrapper', 'AmpOptimWrapper'):
        raise ValueError(f'--amp works with OptimWrapper, the config uses '
                         f'{optim_wrapper}')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.dtype = dtype
    if dtype == 'float16':
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    else:
        # loss scaling exists for float16's narrow range only
        cfg.optim_wrapper.pop('loss_scale', None)


def revert_sync_bn(cfg: Config) -> bool:
    """Make a single-process run of a SyncBN config use BN.

    SyncBN synchronises statistics across the processes of a distributed
    run; one process has nothing to synchronise with, and mmcv's
    ``MMSyncBN`` cannot even be built without a process group. As mmseg's
    own train script did, the config gets BN (``sync_bn`` is dropped too);
    multi-process runs keep SyncBN.

    Args:
        cfg (Config): Runner config, changed in place.

    Returns:
        bool: Whether the config had SyncBN.
    """
    changed = replace_sync_bn(cfg)
    if changed:
        print_log('single-process run: SyncBN layers of the config are BN '
                  '(a distributed launcher keeps SyncBN)', logger='current')
    return changed


def place_runner_model(runner, device: str) -> None:
    """Move a single-process runner's model to ``device`` (the Runner puts
    it on the first GPU whenever there is one).

    Args:
        runner (Runner): A built runner.
        device (str): As :func:`mmaff.utils.device.pick_device` returns it.

    Raises:
        ValueError: In a distributed run, whose devices the launcher sets.
    """
    if runner.distributed:
        raise ValueError('--device is for single-process runs; a '
                         'distributed run gives each process its GPU')
    if device.startswith('cuda'):
        torch.cuda.set_device(torch.device(device))
    # also moves the data preprocessor, which puts each batch there
    runner.model.to(device)


def enable_visualization(cfg: Config, show_dir: str) -> None:
    """Make the test loop draw predictions into ``show_dir``
    (``test.py --show-dir``).

    Args:
        cfg (Config): Runner config, changed in place.
        show_dir (str): Directory for the drawings.

    Raises:
        ValueError: If the config has no visualization hook in
            ``default_hooks``, or one of an unknown type.
    """
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        raise ValueError('--show-dir needs a visualization hook in '
                         'default_hooks (the mm base configs have one)')
    hook_type = hook.get('type', '')
    if hook_type.endswith('DetVisualizationHook'):
        hook.draw = True
        hook.test_out_dir = osp.abspath(show_dir)
    elif hook_type.endswith('SegVisualizationHook'):
        hook.draw = True
        # mmseg draws only every `interval`-th batch (default 50, also with
        # mmseg's own tools/test.py): draw all unless the config says so.
        if 'interval' not in hook:
            hook.interval = 1
        # drawings land in SHOW_DIR/vis_data/vis_image/
        cfg.visualizer.save_dir = show_dir
    elif hook_type.endswith('VisualizationHook'):
        hook.enable = True
        hook.out_dir = show_dir
    else:
        raise ValueError(f'--show-dir does not know how to drive a '
                         f'{hook_type}')


def build_runner(cfg: Config):
    """The config's ``runner_type`` if it names one, else mmengine's Runner.

    Args:
        cfg (Config): Runner config.

    Returns:
        Runner: The runner, not started.
    """
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


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
