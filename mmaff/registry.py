"""mmaff registries.

``MODELS``, ``DATASETS`` and ``TRANSFORMS`` are children of mmengine's root
registries with scope ``mmaff``, so ``type='mmaff.AFFNet'``,
``type='mmaff.CheckedCocoDataset'`` or ``type='mmaff.CheckSegLabels'``
resolve from any downstream scope (mmdet, mmseg, mmpretrain): mmengine
imports ``mmaff.registry`` for the ``mmaff.`` prefix and then ``locations``
lazily. Unprefixed aliases for the downstream registries are added in
:mod:`mmaff.models` (on ``import mmaff``) and :mod:`mmaff.datasets` (when it
is imported: it is not imported by ``import mmaff``, to keep mmdet's dataset
code out of it).
"""
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry

MODELS = Registry(
    'model',
    parent=MMENGINE_MODELS,
    scope='mmaff',
    locations=[
        'mmaff.models', 'mmaff.models.heads', 'mmaff.models.decode_heads'
    ])
DATASETS = Registry(
    'dataset',
    parent=MMENGINE_DATASETS,
    scope='mmaff',
    locations=['mmaff.datasets'])
TRANSFORMS = Registry(
    'transform',
    parent=MMENGINE_TRANSFORMS,
    scope='mmaff',
    locations=['mmaff.datasets'])
