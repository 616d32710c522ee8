"""mmaff datasets and data transforms.

``import mmaff`` does not import this module; mmengine imports it on the
first lookup of an ``mmaff.`` dataset or transform name (e.g.
``type='mmaff.CheckSegLabels'``), which works from any scope. Importing it
(e.g. ``custom_imports=dict(imports=['mmaff.datasets'])``) also registers
``CheckSegLabels`` under its plain name in mmseg's transform registry, when
mmseg is installed.
"""
from .coco import CheckedCocoDataset
from .transforms import CheckSegLabels


def register_downstream_aliases() -> list[str]:
    """Register the transforms in mmseg's ``TRANSFORMS`` (if installed).

    An existing entry of the same name is left in place.

    Returns:
        list[str]: Scopes in which ``CheckSegLabels`` now resolves to this
        class.
    """
    try:
        from mmseg.registry import TRANSFORMS
    except ImportError:
        return []
    existing = TRANSFORMS.module_dict.get('CheckSegLabels')
    if existing is None:
        TRANSFORMS.register_module(
            name='CheckSegLabels', module=CheckSegLabels)
        existing = CheckSegLabels
    return ['mmseg'] if existing is CheckSegLabels else []


register_downstream_aliases()

__all__ = [
    'CheckSegLabels', 'CheckedCocoDataset', 'register_downstream_aliases'
]
