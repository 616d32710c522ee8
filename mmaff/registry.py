"""mmaff registries and the plain-name aliases in the downstream ones.

``MODELS``, ``DATASETS``, ``TRANSFORMS``, ``VISUALIZERS`` and ``HOOKS`` are
children of mmengine's root registries of the same name with scope
``mmaff``, so ``type='mmaff.AFFNet'``, ``type='mmaff.CheckedCocoDataset'``,
``type='mmaff.CheckSegLabels'``, ``type='mmaff.SegOverlayVisualizer'`` or
``type='mmaff.PrepareForInferenceHook'`` resolve from any downstream scope
(mmdet, mmseg, mmpretrain): mmengine imports ``mmaff.registry`` for the
``mmaff.`` prefix and then the registry's ``locations`` lazily.

Plain names (``type='AFFNet'`` under ``default_scope='mmdet'``) are aliases
in the downstream packages' registries, listed in :data:`DOWNSTREAM_ALIASES`
and added by :func:`register_downstream_aliases` when the package defining
the class is imported: :mod:`mmaff.models` on ``import mmaff``; the heads,
:mod:`mmaff.datasets` and :mod:`mmaff.visualization` on their own import
(``import mmaff`` does not import them, to keep mmdet's, mmseg's and
mmpretrain's model and dataset code out of it).
"""
import importlib
import sys
from collections.abc import Iterable

import mmengine.registry
from mmengine.registry import Registry

#: Registry -> (mmengine's name for its kind, the modules that fill it).
REGISTRY_LOCATIONS: dict[str, tuple[str, list[str]]] = {
    'MODELS': ('model', [
        'mmaff.models', 'mmaff.models.heads', 'mmaff.models.decode_heads',
        'mmaff.models.dense_heads'
    ]),
    'DATASETS': ('dataset', ['mmaff.datasets']),
    'TRANSFORMS': ('transform', ['mmaff.datasets']),
    'VISUALIZERS': ('visualizer', ['mmaff.visualization']),
    'HOOKS': ('hook', ['mmaff.engine.hooks']),
}


def _child_of_mmengine(registry: str) -> Registry:
    """The ``mmaff``-scoped child of mmengine's root ``registry``."""
    kind, locations = REGISTRY_LOCATIONS[registry]
    return Registry(kind,
                    parent=getattr(mmengine.registry, registry),
                    scope='mmaff',
                    locations=locations)


MODELS = _child_of_mmengine('MODELS')
DATASETS = _child_of_mmengine('DATASETS')
TRANSFORMS = _child_of_mmengine('TRANSFORMS')
VISUALIZERS = _child_of_mmengine('VISUALIZERS')
HOOKS = _child_of_mmengine('HOOKS')

#: (mmaff registry, name) -> the downstream packages whose registry of the
#: same name gets the plain ``name`` as an alias of mmaff's class.
DOWNSTREAM_ALIASES: dict[tuple[str, str], tuple[str, ...]] = {
    ('MODELS', 'AFFNet'): ('mmdet', 'mmseg', 'mmpretrain'),
    ('MODELS', 'DropoutLinearClsHead'): ('mmpretrain', ),
    ('MODELS', 'AFFNetASPPHead'): ('mmseg', ),
    ('MODELS', 'SSDHeadWithLossCls'): ('mmdet', ),
    ('TRANSFORMS', 'CheckSegLabels'): ('mmseg', ),
    ('VISUALIZERS', 'SegOverlayVisualizer'): ('mmseg', ),
}


def register_downstream_aliases(
        names: Iterable[str]) -> dict[str, list[str]]:
    """Register each of ``names`` (registered in mmaff already) under its
    plain name in the installed downstream registries
    :data:`DOWNSTREAM_ALIASES` lists for it.

    Only ``<package>.registry`` is imported, never a model zoo; a package
    that does not import is skipped. An existing entry of the same name
    (another package's class) is left in place rather than overwritten.

    Returns:
        dict[str, list[str]]: For each name, the packages in whose registry
        it now resolves to mmaff's class.
    """
    names = set(names)
    resolved: dict[str, list[str]] = {}
    for (registry, name), packages in DOWNSTREAM_ALIASES.items():
        if name not in names:
            continue
        module = globals()[registry].module_dict[name]  # e.g. MODELS here
        resolved[name] = []
        for package in packages:
            try:
                downstream = getattr(
                    importlib.import_module(f'{package}.registry'), registry)
            except ImportError:
                continue
            if name not in downstream.module_dict:
                downstream.register_module(name=name, module=module)
            if downstream.module_dict[name] is module:
                resolved[name].append(package)
    unknown = names - set(resolved)
    if unknown:
        raise KeyError(f'no downstream aliases listed for {sorted(unknown)}')
    return resolved


def package_available(package: str, module: str, names: list[str],
                      registry: Registry) -> bool:
    """Whether ``package`` (mmdet, mmseg or mmpretrain) imports, asked by
    the mmaff ``module`` (its ``__name__``) whose ``names`` need it.

    When it does not, the names are left out: ``module`` gets a
    ``__getattr__`` and ``registry`` placeholders that raise an
    ``ImportError`` naming the package and how to install it
    (:func:`mmaff.utils.optional.missing_getattr`).
    """
    from mmaff.utils.optional import import_error, missing_getattr
    error = import_error(package)
    if error is not None:
        sys.modules[module].__getattr__ = missing_getattr(
            module, package, names, error, registry)
    return error is None
