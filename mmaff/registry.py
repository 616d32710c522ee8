"""mmaff registries.

``MODELS`` is a child of mmengine's root model registry with scope ``mmaff``,
so ``type='mmaff.AFFNet'`` resolves from any downstream scope (mmdet, mmseg,
mmpretrain): mmengine imports ``mmaff.registry`` for the ``mmaff.`` prefix and
then ``locations`` lazily. Unprefixed aliases for the downstream registries
are added in :mod:`mmaff.models`.
"""
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

MODELS = Registry(
    'model', parent=MMENGINE_MODELS, scope='mmaff', locations=['mmaff.models'])
