"""Config handling shared by ``tools/train.py`` and ``tools/test.py``.

One set of tools serves mmdet, mmseg and mmpretrain configs alike: the
config's ``default_scope`` picks the registries, and the few task-specific
switches (visualisation) are chosen by the hook type the config uses.

The functions raise exceptions; the tools turn them into an ``error: ...``
line and a non-zero exit code.
"""
import glob
import os.path as osp
import re

import torch
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import DefaultScope

from mmaff.compat import prepare_cpu_distributed, replace_sync_bn

#: The task of each OpenMMLab config scope (a config's ``default_scope``).
SCOPE_TASKS = {'mmdet': 'detection', 'mmseg': 'segmentation',
               'mmpretrain': 'classification'}


def shipped_config_dirs() -> list[str]:
    """Where mmaff's own configs are: ``mmaff/.mim/configs`` (a regular
    install copies them there, an editable one links the checkout's)."""
    import mmaff
    mim_configs = osp.join(osp.dirname(mmaff.__file__), '.mim', 'configs')
    return [mim_configs] if osp.isdir(mim_configs) else []


def find_config(path: str) -> str:
    """The config file ``path`` names: the file itself, or, for a bare file
    name such as ``ssdlite_affnet-et_8xb24-600e_coco.py``, the one config of
    that name shipped with mmaff (as ``mim train mmaff NAME`` finds it).

    Args:
        path (str): A path or the file name of a shipped config.

    Returns:
        str: An existing file.

    Raises:
        FileNotFoundError: If it is neither, or the name is ambiguous.
    """
    if osp.isfile(path):
        return path
    if osp.basename(path) == path and path.endswith('.py'):
        found = sorted({
            osp.realpath(match)
            for root in shipped_config_dirs()
            for match in glob.glob(osp.join(root, '**', path),
                                   recursive=True)
        })
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise FileNotFoundError(f'config name {path} is ambiguous: '
                                    f'{", ".join(found)}')
        raise FileNotFoundError(f'config file {path} does not exist, nor '
                                'does a config of that name ship with mmaff')
    raise FileNotFoundError(f'config file {path} does not exist')


def read_config(path: str, cfg_options: dict | None = None) -> Config:
    """The config ``path`` names (see :func:`find_config`) with
    ``cfg_options`` (``--cfg-options``) merged in.

    Raises:
        FileNotFoundError: If ``path`` names no config.
    """
    cfg = Config.fromfile(find_config(path))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def load_config(path: str,
                cfg_options: dict | None = None,
                work_dir: str | None = None,
                launcher: str = 'none') -> Config:
    """Read a config and apply the overrides of a training or test run.

    Args:
        path (str): Config file, or the file name of a config shipped with
            mmaff (see :func:`find_config`).
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


def pick_device(device: str | None) -> str:
    """Check a ``--device`` option: ``cpu``, ``cuda`` or ``cuda:N``.

    Args:
        device (str, optional): The option; None picks ``cuda`` when torch
            sees a GPU, else ``cpu``.

    Returns:
        str: The device.

    Raises:
        ValueError: For another name, a CUDA device torch does not see, or
            an index beyond the visible devices.
    """
    if device is None:
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    if device == 'cpu':
        return device
    match = re.fullmatch(r'cuda(?::(\d+))?', device)
    if match is None:
        raise ValueError(f'--device {device}: use cpu, cuda or cuda:N')
    if not torch.cuda.is_available():
        raise ValueError(f'--device {device}: torch sees no CUDA device')
    count = torch.cuda.device_count()
    if match.group(1) is not None and int(match.group(1)) >= count:
        raise ValueError(f'--device {device}: torch sees {count} CUDA '
                         f'device(s), cuda:0 to cuda:{count - 1}')
    return device


def place_runner_model(runner, device: str) -> None:
    """Move a single-process runner's model to ``device`` (the Runner puts
    it on the first GPU whenever there is one).

    Args:
        runner (Runner): A built runner.
        device (str): As :func:`pick_device` returns it.

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


def build_model_from_config(cfg: Config,
                            checkpoint: str | None = None,
                            strict: bool = True) -> torch.nn.Module:
    """Build ``cfg.model`` in the config's ``default_scope`` as the Runner
    builds it, optionally load weights, and return it in eval mode."""
    from mmengine.registry import MODELS
    from mmengine.runner import load_checkpoint
    scope = cfg.get('default_scope')
    if scope:
        # registers the task package's models under its scope
        __import__(f'{scope}.models')
    model_cfg = cfg.model.copy()
    # As the Runner does: a top-level data_preprocessor (mmpretrain configs
    # have one) is the model's unless the model sets its own.
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    with DefaultScope.overwrite_default_scope(scope or 'mmengine'):
        model = MODELS.build(model_cfg)
    if checkpoint:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=strict)
    return model.eval()


class TensorForward(torch.nn.Module):
    """``model(x, mode='tensor')`` (or only its backbone) as a module with a
    single tensor input, for tracing: FLOP counting and ONNX export.

    Args:
        model (torch.nn.Module): An mm classifier, detector or segmentor.
        backbone_only (bool): Run ``model.backbone`` alone. Defaults to
            False.
    """

    def __init__(self, model: torch.nn.Module,
                 backbone_only: bool = False) -> None:
        super().__init__()
        self.model = model
        self.backbone_only = backbone_only

    def forward(self, inputs: torch.Tensor):
        if self.backbone_only:
            return self.model.backbone(inputs)
        return self.model(inputs, mode='tensor')
