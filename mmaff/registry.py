"""mmaff registries.

``MODELS``, ``DATASETS``, ``TRANSFORMS`` and ``VISUALIZERS`` are children of
mmengine's root registries with scope ``mmaff``, so ``type='mmaff.AFFNet'``,
``type='mmaff.CheckedCocoDataset'``, ``type='mmaff.CheckSegLabels'`` or
``type='mmaff.SegOverlayVisualizer'`` or ``type='mmaff.PrepareForInferenceHook'``
resolve from any downstream scope
(mmdet, mmseg, mmpretrain): mmengine imports ``mmaff.registry`` for the
``mmaff.`` prefix and then ``locations`` lazily. Unprefixed aliases for the
downstream registries are added in :mod:`mmaff.models` (on ``import
mmaff``), :mod:`mmaff.datasets` and :mod:`mmaff.visualization` (when they
are imported: ``import mmaff`` does not, to keep mmdet's dataset code and
mmseg's visualizer out of it).
"""
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
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
VISUALIZERS = Registry(
    'visualizer',
    parent=MMENGINE_VISUALIZERS,
    scope='mmaff',
    locations=['mmaff.visualization'])
HOOKS = Registry(
    'hook',
    parent=MMENGINE_HOOKS,
    scope='mmaff',
    locations=['mmaff.engine.hooks'])
