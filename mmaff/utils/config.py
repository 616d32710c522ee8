"""Configs and the models they describe, for any task: finding a config
(also by the name of one shipped with mmaff), reading it, and building its
model as the Runner does.

One set of tools serves mmdet, mmseg and mmpretrain configs alike: the
config's ``default_scope`` picks the registries (:data:`SCOPE_TASKS`).
"""
import glob
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

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
    ``cfg_options`` merged in.

    Raises:
        FileNotFoundError: If ``path`` names no config.
    """
    cfg = Config.fromfile(find_config(path))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def build_model_from_config(cfg: Config,
                            checkpoint: str | None = None,
                            strict: bool = True) -> torch.nn.Module:
    """Build ``cfg.model`` in the config's ``default_scope`` as the Runner
    builds it, optionally load weights, and return it in eval mode.

    Args:
        cfg (Config): A config with a ``model`` entry.
        checkpoint (str, optional): Weights, loaded with mmengine's
            ``load_checkpoint`` (a bad file raises a one-line
            ``CheckpointError`` once
            :func:`mmaff.checkpoint.install_checkpoint_loader` ran).
        strict (bool): Whether every key must fit. Defaults to True.

    Returns:
        torch.nn.Module: The model, in eval mode.
    """
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
