"""Checkpoints: reading them with one-line errors, checking that they fit a
model, finding the one to resume from, and converting official AFFNet
weights.

- :mod:`.errors`: :class:`CheckpointError` and its kinds;
- :mod:`.reading`: :func:`read_checkpoint`, :func:`check_checkpoint_file`,
  :func:`describe_failure`;
- :mod:`.fitting`: :func:`check_model_fits`,
  :func:`check_pretrained_prefixes`;
- :mod:`.resume`: :func:`find_resumable_checkpoint`;
- :mod:`.mmengine_loader`: :func:`install_checkpoint_loader`, the one-line
  errors for mmengine's own loading (an explicit call: it changes global
  state);
- :mod:`.official`: official (TokenMixers / ml-cvnets) weights to mmaff
  keys;
- :mod:`.pretrained`: :func:`load_pretrained_backbone`, what an AFFNet's
  ``init_cfg=dict(type='Pretrained', ...)`` does with an official file, a
  converted one, a runner checkpoint or a URL (:func:`fetch_checkpoint`,
  :func:`download_checkpoint`).

The Runner hook that refuses a checkpoint of another model is
:class:`mmaff.engine.hooks.CheckpointFitHook`.
"""
from .errors import (
    CheckpointError,
    CheckpointMismatchError,
    CheckpointNotFoundError,
    UnsafeCheckpointError,
)
from .fitting import (
    LOAD_HINT,
    RESUME_HINT,
    check_model_fits,
    check_pretrained_prefixes,
)
from .mmengine_loader import install_checkpoint_loader
from .official import (
    CheckpointConversionError,
    convert_official_state_dict,
    infer_arch,
    unwrap_state_dict,
)
from .pretrained import (
    ARCH_NAMES,
    DEFAULT_WEIGHTS,
    OFFICIAL_README,
    download_checkpoint,
    fetch_checkpoint,
    load_pretrained_backbone,
)
from .reading import check_checkpoint_file, describe_failure, read_checkpoint
from .resume import find_resumable_checkpoint

__all__ = [
    'ARCH_NAMES', 'DEFAULT_WEIGHTS', 'OFFICIAL_README',
    'download_checkpoint', 'fetch_checkpoint', 'load_pretrained_backbone',
    'CheckpointConversionError', 'CheckpointError', 'CheckpointMismatchError',
    'CheckpointNotFoundError', 'LOAD_HINT', 'RESUME_HINT',
    'UnsafeCheckpointError', 'check_checkpoint_file', 'check_model_fits',
    'check_pretrained_prefixes', 'convert_official_state_dict',
    'describe_failure', 'find_resumable_checkpoint', 'infer_arch',
    'install_checkpoint_loader', 'read_checkpoint', 'unwrap_state_dict'
]
