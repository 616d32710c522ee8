"""Config handling shared by ``tools/train.py`` and ``tools/test.py``.

One set of tools serves mmdet, mmseg and mmpretrain configs alike: the
config's ``default_scope`` picks the registries, and the few task-specific
switches (visualisation) are chosen by the hook type the config uses.
"""
import argparse
import os
import os.path as osp

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import DefaultScope

from mmaff.compat import prepare_cpu_distributed


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Options every tool has (add the positional arguments first)."""
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


def load_config(args: argparse.Namespace) -> Config:
    """Read the config, apply ``--cfg-options``, the work dir and the
    launcher (with the CPU multi-process fixes of :mod:`mmaff.compat`)."""
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    if not osp.isfile(args.config):
        raise SystemExit(f'error: config file {args.config} does not exist')
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    prepare_cpu_distributed(cfg, args.launcher)
    return cfg


def enable_amp(cfg: Config) -> None:
    """Switch the optimizer wrapper to mixed precision (CUDA only: mmengine's
    ``AmpOptimWrapper`` refuses other devices)."""
    if not torch.cuda.is_available():
        raise SystemExit('error: --amp needs a CUDA device; mmengine 0.10.7 '
                         'AmpOptimWrapper does not run on CPU')
    optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if optim_wrapper == 'AmpOptimWrapper':
        return
    if optim_wrapper != 'OptimWrapper':
        raise SystemExit(
            f'error: --amp works with OptimWrapper, the config uses '
            f'{optim_wrapper}')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')


def enable_visualization(cfg: Config, show_dir: str) -> None:
    """Make the test loop draw predictions into ``show_dir``."""
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        raise SystemExit('error: --show-dir needs a visualization hook in '
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
        raise SystemExit(f'error: --show-dir does not know how to drive a '
                         f'{hook_type}')


def build_runner(cfg: Config):
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def config_from_path(path: str, root: str | None = None) -> Config:
    """A Config from a file path or ``package::path`` inside an installed mm
    package's ``.mim/configs`` (mmengine resolves that prefix only inside
    ``_base_``), e.g. ``'mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e
    _coco.py'``. Relative file paths are taken from ``root`` when given."""
    if '::' in path:
        package, rel = path.split('::', 1)
        module = __import__(package)
        path = osp.join(osp.dirname(module.__file__), '.mim', 'configs', rel)
    elif root is not None and not osp.isabs(path):
        path = osp.join(root, path)
    return Config.fromfile(path)


def build_model_from_config(cfg: Config,
                            checkpoint: str | None = None,
                            strict: bool = True) -> torch.nn.Module:
    """Build ``cfg.model`` in the config's ``default_scope`` (outside a
    Runner), optionally load weights, and return it in eval mode."""
    from mmengine.registry import MODELS
    from mmengine.runner import load_checkpoint
    scope = cfg.get('default_scope')
    if scope:
        # registers the task package's models under its scope
        __import__(f'{scope}.models')
    with DefaultScope.overwrite_default_scope(scope or 'mmengine'):
        model = MODELS.build(cfg.model)
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
