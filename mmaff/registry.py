"""mmaff registries.

``MODELS`` and ``DATASETS`` are children of mmengine's root registries with
scope ``mmaff``, so ``type='mmaff.AFFNet'`` or
``type='mmaff.CheckedCocoDataset'`` resolve from any downstream scope (mmdet,
mmseg, mmpretrain): mmengine imports ``mmaff.registry`` for the ``mmaff.``
prefix and then ``locations`` lazily. Unprefixed aliases for the downstream
registries are added in :mod:`mmaff.models`.
"""
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

MODELS = Registry(
    'model', parent=MMENGINE_MODELS, scope='mmaff', locations=['mmaff.models'])
DATASETS = Registry(
    'dataset',
    parent=MMENGINE_DATASETS,
    scope='mmaff',
    locations=['mmaff.datasets'])
