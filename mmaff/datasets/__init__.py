"""mmaff datasets and data transforms.

``import mmaff`` does not import this module; mmengine imports it on the
first lookup of an ``mmaff.`` dataset or transform name (e.g.
``type='mmaff.CheckSegLabels'``), which works from any scope. Importing it
(e.g. ``custom_imports=dict(imports=['mmaff.datasets'])``) also registers
``CheckSegLabels`` under its plain name in mmseg's transform registry, when
mmseg is installed. ``CheckedCocoDataset`` needs mmdet: without it the
module still imports and asking for the dataset names the missing package.
"""
from mmaff import registry

from .transforms import CheckSegLabels

__all__ = ['CheckSegLabels', 'CheckedCocoDataset']
if registry.package_available('mmdet', __name__, ['CheckedCocoDataset'],
                              registry.DATASETS):
    from .coco import CheckedCocoDataset
registry.register_downstream_aliases(['CheckSegLabels'])
