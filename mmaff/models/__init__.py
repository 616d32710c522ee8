"""mmaff models.

Importing this module (e.g. through ``custom_imports``) also registers
``AFFNet`` under its plain name in the model registries of mmdet, mmseg and
mmpretrain, when they are installed, so ``type='AFFNet'`` works under their
``default_scope``. ``type='mmaff.AFFNet'`` works everywhere without that.

The classification heads in :mod:`mmaff.models.heads` build on mmpretrain
(an optional dependency) and are imported lazily: ``type=
'mmaff.DropoutLinearClsHead'`` imports them through the registry's
``locations``; importing ``mmaff.models.heads`` also registers the plain name
in mmpretrain's registry. Importing mmpretrain's models here would pull in
mmdet's as well and add seconds to every ``import mmaff``.
"""
import importlib

from .backbones import AFFNet
from .layers import DFT_MODES, AdaptiveFrequencyFilter, set_dft_mode

DOWNSTREAM_SCOPES = ('mmdet', 'mmseg', 'mmpretrain')


def register_alias(registry, name: str, module: type) -> bool:
    """Register ``module`` as ``name`` unless the name is taken.

    Returns:
        bool: Whether ``name`` now resolves to ``module`` in ``registry``.
    """
    existing = registry.module_dict.get(name)
    if existing is None:
        registry.register_module(name=name, module=module)
        existing = module
    return existing is module


def register_downstream_aliases() -> list[str]:
    """Register AFFNet in each installed downstream model registry.

    An existing entry of the same name (another package's AFFNet) is left in
    place rather than overwritten.

    Returns:
        list[str]: Scopes in which ``AFFNet`` now resolves to this class.
    """
    scopes = []
    for scope in DOWNSTREAM_SCOPES:
        try:
            registry = importlib.import_module(f'{scope}.registry').MODELS
        except ImportError:
            continue
        if register_alias(registry, 'AFFNet', AFFNet):
            scopes.append(scope)
    return scopes


register_downstream_aliases()

__all__ = [
    'AFFNet', 'AdaptiveFrequencyFilter', 'DFT_MODES', 'register_alias',
    'register_downstream_aliases', 'set_dft_mode'
]
