"""mmaff datasets and data transforms.

``import mmaff`` does not import this module; mmengine imports it on the
first lookup of an ``mmaff.`` dataset or transform name (e.g.
``type='mmaff.CheckSegLabels'``), which works from any scope. Importing it
(e.g. ``custom_imports=dict(imports=['mmaff.datasets'])``) also registers
``CheckSegLabels`` under its plain name in mmseg's transform registry, when
mmseg is installed. ``CheckedCocoDataset`` needs mmdet: without it the
module still imports and asking for the dataset names the missing package.
"""
from mmaff.models import register_alias
from mmaff.utils.optional import import_error, missing_getattr

from .transforms import CheckSegLabels

_mmdet_error = import_error('mmdet')
if _mmdet_error is None:
    from .coco import CheckedCocoDataset
else:
    from mmaff.registry import DATASETS

    __getattr__ = missing_getattr(__name__, 'mmdet', ['CheckedCocoDataset'],
                                  _mmdet_error, DATASETS)


def register_downstream_aliases() -> list[str]:
    """Register the transforms in mmseg's ``TRANSFORMS`` (if installed).

    An existing entry of the same name is left in place.

    Returns:
        list[str]: Scopes in which ``CheckSegLabels`` now resolves to this
        class.
    """
    if import_error('mmseg') is not None:
        return []
    from mmseg.registry import TRANSFORMS
    if register_alias(TRANSFORMS, 'CheckSegLabels', CheckSegLabels):
        return ['mmseg']
    return []


register_downstream_aliases()

__all__ = [
    'CheckSegLabels', 'CheckedCocoDataset', 'register_downstream_aliases'
]
