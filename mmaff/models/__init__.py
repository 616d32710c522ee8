"""mmaff models.

Importing this module (e.g. through ``custom_imports``) also registers
``AFFNet`` under its plain name in the model registries of mmdet, mmseg and
mmpretrain, when they are installed, so ``type='AFFNet'`` works under their
``default_scope``. ``type='mmaff.AFFNet'`` works everywhere without that.

The heads in :mod:`mmaff.models.heads` (classification, mmpretrain),
:mod:`mmaff.models.decode_heads` (segmentation, mmseg) and
:mod:`mmaff.models.dense_heads` (detection, mmdet) build on optional
dependencies and are imported lazily: ``type='mmaff.DropoutLinearClsHead'``
imports them through the registry's ``locations``; importing one also
registers its plain names downstream (``DOWNSTREAM_ALIASES`` in
:mod:`mmaff.registry`). Importing mmpretrain's models here would pull in
mmdet's as well and add seconds to every ``import mmaff``.
"""
from mmaff.registry import register_downstream_aliases

from .backbones import AFFNet
from .layers import DFT_MODES, AdaptiveFrequencyFilter, set_dft_mode

register_downstream_aliases(['AFFNet'])

__all__ = ['AFFNet', 'AdaptiveFrequencyFilter', 'DFT_MODES', 'set_dft_mode']
