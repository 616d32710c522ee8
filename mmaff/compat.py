"""Fixes for known problems of the pinned OpenMMLab stack.

Each fix names the upstream problem it works around. :func:`apply_all` runs
on ``import mmaff``; the distributed helpers are called by ``tools/train.py``
and ``tools/test.py`` (or by anyone building a Runner by hand on CPU).
Nothing here patches another package's classes or hooks the import system.

F1  mmdet 3.3.0: ``SSDHead`` has no ``loss_cls`` but ``BaseDenseHead``
    reads ``self.loss_cls`` in ``predict_by_feat``, so every SSD val/test
    crashes with ``AttributeError`` (mmdetection#11063, #11305, unmerged).
    Fixed by a head, not here: ``mmaff.SSDHeadWithLossCls``
    (:mod:`mmaff.models.dense_heads`), ``SSDHead`` with ``loss_cls = None``,
    which the SSDLite configs use; mmdet's own ``SSDHead`` is left as it is.
    The subclass is harmless on an mmdet that fixes this, so it is not
    gated; the table below records the version it was written for.
F2  torch >= 2.6 loads checkpoints with ``weights_only=True``; mmengine
    0.10.7 calls ``torch.load`` without the flag, and runner checkpoints
    (``resume`` / ``load_from``) hold mmengine objects the safe unpickler
    rejects (mmengine#1655, fixed only after 0.10.7). We allow-list exactly
    the globals mmengine writes instead of switching the check off. Pickle
    protocol 2 stores ``HistoryBuffer.min`` (its ``statistics_methods``) as
    ``getattr(HistoryBuffer, 'min')``: ``builtins.getattr`` is mapped to a
    stand-in that only returns those four methods, never the real getattr.
F3  mmengine's pytorch and slurm launchers call ``torch.cuda.set_device``:
    CPU-only multi-process runs die with "Found no NVIDIA driver". We start
    the process group with gloo first; the Runner then skips its own start.
    For slurm, torch's variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
    ``MASTER_ADDR``, ``MASTER_PORT``) are first derived from srun's as
    mmengine's ``_init_dist_slurm`` derives them.
F4  mmengine passes ``device_ids=[LOCAL_RANK]`` to DDP, which CPU modules
    reject: the wrapper gets ``device_ids=None``.
F5  SyncBN needs CUDA tensors: on CPU it becomes BN.
F6  torch 2.14 deprecates DDP's ``broadcast_buffers`` (FutureWarning in
    every run); the wrapper gets the new ``forward_sync_buffers=False``,
    which is what mmengine's ``broadcast_buffers=False`` default meant for
    the forward passes (buffers are now also synced once at init, a no-op
    for the identically seeded ranks mmengine builds). A
    ``broadcast_buffers`` in ``model_wrapper_cfg`` keeps its value.

Fixes F2-F6 are applied only to the package versions they were written and
tested for (:data:`TESTED_VERSIONS`); with any other version a fix is left
out and a warning, once per fix, names the fix and the version found.
"""
import importlib
import importlib.metadata
import os
import pickle
import warnings

import torch
from packaging.version import InvalidVersion, Version

# --------------------------------------------------------------------------
# Version gates

#: Fix -> (what it works around, package, the releases it was written and
#: tested for). A release matches on as many components as given, so
#: ``'2.14'`` stands for every torch 2.14.x build.
TESTED_VERSIONS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    'F1': ('SSDHead without loss_cls', 'mmdet', ('3.3.0', )),
    'F2': ('weights_only loads of runner checkpoints', 'mmengine',
           ('0.10.7', )),
    'F3-F5': ('CPU multi-process runs', 'mmengine', ('0.10.7', )),
    'F6': ('DDP broadcast_buffers deprecation', 'torch', ('2.14', )),
    # not a fix: mmaff.deployment.onednn calls private torch ops
    'oneDNN': ('prepacked oneDNN convolutions of prepared models', 'torch',
               ('2.14', )),
}
_warned: set[str] = set()


def installed_version(package: str) -> str | None:
    """The installed version of a distribution, read from its metadata
    (without importing it); None when it is not installed."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _matches(version: str, tested: str) -> bool:
    try:
        release = Version(version).release
    except InvalidVersion:
        return False
    wanted = Version(tested).release
    return release[:len(wanted)] == wanted


def fix_applies(fix: str) -> bool:
    """Whether ``fix`` (a key of :data:`TESTED_VERSIONS`) is meant for the
    installed package version.

    False without a warning when the package is not installed (nothing to
    fix); False with a warning, once per fix, for an untested version.
    """
    problem, package, tested = TESTED_VERSIONS[fix]
    version = installed_version(package)
    if version is None:
        return False
    if any(_matches(version, t) for t in tested):
        return True
    if fix not in _warned:
        _warned.add(fix)
        warnings.warn(
            f'mmaff.compat: fix {fix} ({problem}) was written for {package} '
            f'{" / ".join(tested)}; found {package} {version}, so it is not '
            'applied. If the problem persists with this version, please '
            'report it.',
            stacklevel=2)
    return False

# --------------------------------------------------------------------------
# F2


# HistoryBuffer's default statistics methods; mmengine 0.10.7 registers no
# others.
_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def _history_buffer_method(obj, name):
    """Stand-in for ``builtins.getattr`` in ``weights_only`` loads.

    Pickle protocol 2 (``torch.save``'s default) writes a method such as
    ``HistoryBuffer.min`` as ``getattr(HistoryBuffer, 'min')``. Only those
    lookups are answered; any other use of ``getattr`` in a checkpoint is
    rejected as the safe unpickler would reject an unknown global.
    """
    from mmengine.logging.history_buffer import HistoryBuffer
    if obj is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'getattr({obj!r}, {name!r}) is not allowed in weights_only loads: '
        f'mmaff only allows getattr(HistoryBuffer, name) for name in '
        f'{_HISTORY_BUFFER_METHODS}')


def checkpoint_safe_globals() -> list:
    """The globals (besides torch's defaults) that mmengine 0.10.7 pickles
    into runner checkpoints: the message hub's ``HistoryBuffer`` with its
    statistics methods and the numpy arrays, scalars and dtypes it and
    ``meta`` hold. ``builtins.getattr`` is not among them: its name maps to
    :func:`_history_buffer_method`."""
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer

    multiarray = importlib.import_module(
        'numpy._core.multiarray' if hasattr(np, '_core') else
        'numpy.core.multiarray')
    dtype_classes = [type(np.dtype(t)) for t in np.sctypeDict.values()]
    return [
        HistoryBuffer, (_history_buffer_method, 'builtins.getattr'),
        np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar,
        *sorted(set(dtype_classes), key=str)
    ]


def allow_mmengine_checkpoints() -> bool:
    """F2: let ``torch.load(weights_only=True)`` read runner checkpoints.

    Returns:
        bool: Whether the allow-list was installed.
    """
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    # torch < 2.6 has no weights_only default, hence nothing to allow
    if add_safe_globals is None or not fix_applies('F2'):
        return False
    add_safe_globals(checkpoint_safe_globals())
    return True


# --------------------------------------------------------------------------
# F3-F6


def _sync_bn_to_bn(node) -> bool:
    found = False
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'type' and value in ('SyncBN', 'MMSyncBN'):
                node[key] = 'BN'
                found = True
            else:
                found = _sync_bn_to_bn(value) or found
    elif isinstance(node, list | tuple):
        for value in node:
            found = _sync_bn_to_bn(value) or found
    return found


def replace_sync_bn(cfg) -> bool:
    """Make a Runner config use BN instead of SyncBN, in place: every
    ``SyncBN`` / ``MMSyncBN`` norm type in ``cfg.model`` (nested dicts and
    lists) becomes ``BN``, and ``sync_bn`` (the Runner's conversion to
    SyncBN) is dropped.

    Returns:
        bool: Whether there was any SyncBN.
    """
    found = _sync_bn_to_bn(cfg.get('model'))
    if cfg.get('sync_bn'):
        cfg['sync_bn'] = None
        found = True
    return found


def _slurm_environment(port=None) -> None:
    """F3 for ``launcher='slurm'``: set torch's ``env://`` variables from
    the task's slurm variables, as mmengine 0.10.7's ``_init_dist_slurm``
    does before its CUDA-only ``set_device``.

    ``MASTER_ADDR`` must be set already (to the first host of
    ``SLURM_NODELIST``: ``scontrol show hostname``, which the tools run);
    ``MASTER_PORT`` is ``port``, else the environment's, else 29500.

    Args:
        port (int, optional): ``env_cfg.dist_cfg.port`` of the config, which
            mmengine lets override ``MASTER_PORT`` for slurm.

    Raises:
        RuntimeError: If a slurm variable is missing (the script was not
            started by srun) or ``MASTER_ADDR`` is not set.
    """
    missing = [
        k for k in ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST')
        if k not in os.environ
    ]
    if missing:
        raise RuntimeError(
            f'launcher=slurm needs {missing} in the environment: start the '
            'script with srun (see tools/slurm_train.sh)')
    if 'MASTER_ADDR' not in os.environ:
        # resolving SLURM_NODELIST needs `scontrol`: the tools do it
        # (tools/cli_common.py), the library only reads the result
        raise RuntimeError(
            'launcher=slurm needs MASTER_ADDR, the first host of '
            '`scontrol show hostname $SLURM_NODELIST`; tools/train.py and '
            'tools/test.py set it')
    if port is not None:
        os.environ['MASTER_PORT'] = str(port)
    os.environ.setdefault('MASTER_PORT', '29500')
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    # mmengine falls back to PROCID % (CUDA device count) when srun gave no
    # SLURM_LOCALID; without CUDA there is no count to take it modulo.
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')


def prepare_cpu_distributed(cfg, launcher: str) -> bool:
    """F3-F6: make a multi-process Runner config work without CUDA.

    Starts the gloo process group from the launcher's environment (torchrun
    sets ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``; for
    slurm they are derived from srun's, see :func:`_slurm_environment`), sets
    a DDP wrapper config for CPU modules, and turns SyncBN into BN. Does
    nothing for ``launcher='none'`` or when CUDA is available.

    Args:
        cfg (mmengine.Config): The config the Runner will be built from;
            changed in place.
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.

    Returns:
        bool: Whether anything was changed.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if not fix_applies('F3-F5'):
        return False
    if launcher not in ('pytorch', 'slurm'):
        raise ValueError(f'CPU multi-process runs support the pytorch '
                         f'launcher (torchrun) and slurm only, got '
                         f'{launcher!r}')
    import torch.distributed as dist
    if not dist.is_initialized():
        if launcher == 'slurm':
            dist_cfg = (cfg.get('env_cfg') or {}).get('dist_cfg') or {}
            _slurm_environment(dist_cfg.get('port'))
        missing = [
            k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
            if k not in os.environ
        ]
        if missing:
            raise RuntimeError(
                f'launcher=pytorch needs {missing} in the environment: start '
                'the script with torchrun (see tools/dist_train.sh)')
        dist.init_process_group(backend='gloo')
    # Filled in and stored back: ``Config.setdefault`` stores a converted
    # copy of a missing default, so edits to the dict it returns are lost.
    env_cfg = cfg.get('env_cfg') or {}
    dist_cfg = env_cfg.get('dist_cfg') or {}
    dist_cfg['backend'] = 'gloo'
    env_cfg['dist_cfg'] = dist_cfg
    cfg['env_cfg'] = env_cfg
    wrapper = cfg.get('model_wrapper_cfg') or {}
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper['device_ids'] = None
    if fix_applies('F6'):
        # Keep the meaning of a ``broadcast_buffers`` the config asks for.
        broadcast_buffers = wrapper.pop('broadcast_buffers', None)
        wrapper.setdefault('forward_sync_buffers', bool(broadcast_buffers))
    cfg['model_wrapper_cfg'] = wrapper
    replace_sync_bn(cfg)
    return True


def finish_distributed() -> None:
    """Shut the process group down on every rank together.

    A rank that exits while gloo's threads are alive can abort with
    "terminate called without an active exception" (SIGABRT) and fail the
    whole torchrun job after the work is done; mmengine never destroys the
    group it starts. Does nothing when no group is running.
    """
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def apply_all() -> None:
    """Apply the fixes that take effect on import (F2)."""
    allow_mmengine_checkpoints()
